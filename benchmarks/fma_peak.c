/* Measures one core's fp32 FMA throughput: 12 independent chains of 256-bit
 * (or, with -DWIDE, 512-bit) fused multiply-adds, enough to cover FMA latency
 * x FMA pipes. Prints GFLOP/s. Built and run by benchmarks/gemm.py. */
#include <immintrin.h>
#include <stdio.h>
#include <time.h>

#ifdef WIDE
typedef __m512 V;
#define SET1 _mm512_set1_ps
#define FMA _mm512_fmadd_ps
#define LANES 16
#define SUM(v) _mm512_reduce_add_ps(v)
#else
typedef __m256 V;
#define SET1 _mm256_set1_ps
#define FMA _mm256_fmadd_ps
#define LANES 8
static float SUM(__m256 v) { float t[8]; _mm256_storeu_ps(t, v); return t[0] + t[7]; }
#endif

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

int main(void) {
  V c0 = SET1(0.f), c1 = SET1(.1f), c2 = SET1(.2f), c3 = SET1(.3f), c4 = SET1(.4f), c5 = SET1(.5f);
  V c6 = SET1(.6f), c7 = SET1(.7f), c8 = SET1(.8f), c9 = SET1(.9f), c10 = SET1(1.f), c11 = SET1(1.1f);
  V a = SET1(0.999999f), b = SET1(1e-7f);
  const long iters = 100000000;
  double best = 1e30;
  for (int rep = 0; rep < 5; rep++) {
    double t0 = now();
    for (long it = 0; it < iters / 5; it++) {
      /* Named registers, not an array: the chains must stay in registers. */
      c0 = FMA(c0, a, b); c1 = FMA(c1, a, b); c2 = FMA(c2, a, b); c3 = FMA(c3, a, b);
      c4 = FMA(c4, a, b); c5 = FMA(c5, a, b); c6 = FMA(c6, a, b); c7 = FMA(c7, a, b);
      c8 = FMA(c8, a, b); c9 = FMA(c9, a, b); c10 = FMA(c10, a, b); c11 = FMA(c11, a, b);
    }
    double dt = now() - t0;
    if (dt < best) best = dt;
  }
  float s = SUM(c0) + SUM(c1) + SUM(c2) + SUM(c3) + SUM(c4) + SUM(c5) + SUM(c6) + SUM(c7) +
            SUM(c8) + SUM(c9) + SUM(c10) + SUM(c11);
  printf("%.2f %g\n", (double)(iters / 5) * 12 * LANES * 2 / best / 1e9, s);
  return 0;
}
