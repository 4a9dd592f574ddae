/* concurrent: one model run from several threads at once.
 *
 *   concurrent MODEL.so THREADS RUNS CONTEXT_THREADS
 *
 * The ABI promises that separate contexts may run concurrently. Each of
 * THREADS pthreads gets its own context (with CONTEXT_THREADS pool threads)
 * and its own inputs, and runs the model RUNS times; every result must be
 * bit-identical to a single-threaded run of the same inputs, made first on
 * one context in the main thread. The inputs differ per thread, so a run
 * that read another thread's inputs or scratch would show. Prints
 * "ok THREADS x RUNS runs" or names the first mismatch; exit status 1 then.
 */
#define _POSIX_C_SOURCE 200809L
#include <dlfcn.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qc_runtime.h"

enum { MAX_THREADS = 16 };

static struct {
  int32_t (*num[2])(void);
  int32_t (*dtype[2])(int32_t);
  int64_t (*bytes[2])(int32_t);
  qc_context *(*create)(void);
  qc_status (*set_threads)(qc_context *, int32_t);
  void (*destroy)(qc_context *);
  qc_status (*run)(qc_context *, const void *const *, const int64_t *, void *const *, const int64_t *);
  const char *(*last_error)(const qc_context *);
} api;

enum { IN = 0, OUT = 1 };

typedef struct {
  int index, runs, context_threads;
  void **in, **out, **want; /* want: the single-threaded results */
  char error[256];          /* "" if every run matched */
} job;

static void die(const char *what, const char *detail) {
  fprintf(stderr, "concurrent: %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
  exit(1);
}

static void *sym(void *lib, const char *name) {
  void *p = dlsym(lib, name);
  if (!p) die("not a qc model, missing", name);
  return p;
}

static void load(const char *path) {
  void *lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  if (!lib) die("cannot load", dlerror());
  *(void **)&api.num[IN] = sym(lib, "qc_num_inputs");
  *(void **)&api.num[OUT] = sym(lib, "qc_num_outputs");
  *(void **)&api.dtype[IN] = sym(lib, "qc_input_dtype");
  *(void **)&api.dtype[OUT] = sym(lib, "qc_output_dtype");
  *(void **)&api.bytes[IN] = sym(lib, "qc_input_bytes");
  *(void **)&api.bytes[OUT] = sym(lib, "qc_output_bytes");
  *(void **)&api.create = sym(lib, "qc_context_create");
  *(void **)&api.set_threads = sym(lib, "qc_context_set_num_threads");
  *(void **)&api.destroy = sym(lib, "qc_context_destroy");
  *(void **)&api.run = sym(lib, "qc_run");
  *(void **)&api.last_error = sym(lib, "qc_last_error");
}

/* One 64-byte aligned buffer per tensor of kind k. */
static void **buffers(int k) {
  void **bufs = calloc((size_t)api.num[k]() + 1, sizeof(void *));
  if (!bufs) die("out of memory", NULL);
  for (int32_t i = 0; i < api.num[k](); i++) {
    size_t size = ((size_t)api.bytes[k](i) + 63) / 64 * 64;
    if (!(bufs[i] = aligned_alloc(64, size ? size : 64))) die("out of memory", NULL);
  }
  return bufs;
}

/* Deterministic inputs, different for every seed: floats uniform in [-1, 1),
 * integers in 0..3, booleans 0 or 1 (xorshift64). */
static void fill_inputs(void **in, uint64_t seed) {
  uint64_t x = 0x9e3779b97f4a7c15ull * (seed + 1);
  for (int32_t i = 0; i < api.num[IN](); i++) {
    int64_t bytes = api.bytes[IN](i);
    for (int64_t b = 0; b < bytes;) {
      x ^= x << 13, x ^= x >> 7, x ^= x << 17;
      float u = (float)(x >> 40) / (float)(1 << 24) * 2.0f - 1.0f;
      char *p = (char *)in[i] + b;
      switch (api.dtype[IN](i)) {
        case QC_FLOAT32: *(float *)p = u; b += 4; break;
        case QC_FLOAT64: *(double *)p = u; b += 8; break;
        case QC_INT64: *(int64_t *)p = (int64_t)(x & 3); b += 8; break;
        case QC_INT32: *(int32_t *)p = (int32_t)(x & 3); b += 4; break;
        case QC_INT8: case QC_UINT8: *(uint8_t *)p = (uint8_t)(x & 3); b += 1; break;
        case QC_BOOL: *(uint8_t *)p = (uint8_t)(x & 1); b += 1; break;
        default: die("this test fills float32/64, int8/32/64, uint8 and bool inputs only", NULL);
      }
    }
  }
}

static void run_or_die(qc_context *ctx, void **in, void **out) {
  if (api.run(ctx, (const void *const *)in, NULL, out, NULL) != QC_OK) die("run failed", api.last_error(ctx));
}

static void *worker(void *raw) {
  job *j = raw;
  qc_context *ctx = api.create();
  if (!ctx || api.set_threads(ctx, j->context_threads) != QC_OK) die("cannot create a context", NULL);
  for (int r = 0; r < j->runs && !j->error[0]; r++) {
    for (int32_t i = 0; i < api.num[OUT](); i++) memset(j->out[i], 0xA5, (size_t)api.bytes[OUT](i));
    run_or_die(ctx, j->in, j->out);
    for (int32_t i = 0; i < api.num[OUT](); i++)
      if (memcmp(j->out[i], j->want[i], (size_t)api.bytes[OUT](i)))
        snprintf(j->error, sizeof j->error, "thread %d, run %d: output %d differs from the single-threaded run",
                 j->index, r, (int)i);
  }
  api.destroy(ctx);
  return NULL;
}

int main(int argc, char **argv) {
  if (argc != 5) die("usage: concurrent MODEL.so THREADS RUNS CONTEXT_THREADS", NULL);
  load(argv[1]);
  int threads = atoi(argv[2]), runs = atoi(argv[3]), context_threads = atoi(argv[4]);
  if (threads < 2 || threads > MAX_THREADS || runs < 1) die("need 2..16 threads and 1 or more runs", NULL);

  job jobs[MAX_THREADS];
  qc_context *ref = api.create();
  if (!ref) die("cannot create a context", NULL);
  for (int t = 0; t < threads; t++) {
    jobs[t] = (job){t, runs, context_threads, buffers(IN), buffers(OUT), buffers(OUT), ""};
    fill_inputs(jobs[t].in, (uint64_t)t);
    run_or_die(ref, jobs[t].in, jobs[t].want);
  }
  api.destroy(ref);
  /* Different inputs must give different results, or a mix-up could not show. */
  int distinct = 0;
  for (int32_t i = 0; i < api.num[OUT](); i++)
    distinct |= memcmp(jobs[0].want[i], jobs[1].want[i], (size_t)api.bytes[OUT](i)) != 0;
  if (!distinct) die("threads 0 and 1 get the same results: the inputs do not tell them apart", NULL);

  pthread_t ids[MAX_THREADS];
  for (int t = 0; t < threads; t++)
    if (pthread_create(&ids[t], NULL, worker, &jobs[t])) die("cannot start a thread", NULL);
  for (int t = 0; t < threads; t++) pthread_join(ids[t], NULL);
  for (int t = 0; t < threads; t++)
    if (jobs[t].error[0]) die("mismatch", jobs[t].error);
  printf("ok %d x %d runs\n", threads, runs);
  return 0;
}
