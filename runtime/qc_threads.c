/* The thread pool behind qc_parallel_for: one pool per context, started on
 * first use with num_threads - 1 workers (the calling thread is the first).
 * A job splits [0, n) into one contiguous chunk per thread; generated code
 * calls it for the outer loop of a GEMM or of an elementwise loop nest,
 * whose chunks write disjoint parts of the output, so results do not depend
 * on the thread count.
 *
 * A model runs one job per layer, often tens of microseconds each, back to
 * back: waking a worker from a condition variable costs about as much. So
 * a worker that finished a job spins on the job counter for a while
 * (QC_SPIN_ROUNDS pauses, 0.2 to 0.3 ms) before it sleeps, and the caller
 * spins as long for its workers to finish; a run keeps them awake, an idle
 * pool sleeps. Either side then blocks, so a machine with more threads
 * running than cores (a worker not scheduled) costs a wake-up, not a time
 * slice of spinning. */
#define _GNU_SOURCE
#include "qc_threads.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>

#if defined(__x86_64__) || defined(__i386__)
#define QC_PAUSE() __asm__ __volatile__("pause") /* not immintrin.h: it adds 0.4 s to every link */
#elif defined(__aarch64__)
#define QC_PAUSE() __asm__ __volatile__("yield")
#else
#define QC_PAUSE() __asm__ __volatile__("" ::: "memory")
#endif

#define QC_SPIN_ROUNDS 8000

/* One round of a spin-wait. Every 32nd yields the core: the scheduler may
 * have put a woken worker on the core of the thread waiting for it, which
 * would otherwise spin through its time slice while the worker waits. */
static void spin_round(int i) {
  if ((i & 31) == 31)
    sched_yield();
  else
    QC_PAUSE();
}

struct qc_pool {
  int num_threads;
  pthread_t *workers;
  pthread_mutex_t mu;
  pthread_cond_t work, done;
  atomic_ulong generation; /* bumped for each job (and to quit) */
  atomic_int pending;      /* workers still running the current job */
  atomic_int sleepers;     /* workers waiting on `work` */
  atomic_int waiting;      /* the caller waits on `done` */
  atomic_int caller_cpu;   /* where the caller published the current job (-1: unknown) */
  atomic_int quit;
  /* The current job: written before `generation` is bumped. */
  qc_range_fn fn;
  void *arg;
  int64_t n;
  char *scratch; /* thread t's scratch: scratch + t * stride */
  size_t stride;
};

typedef struct {
  qc_pool *pool;
  int index;
} worker_arg;

static void run_chunk(qc_pool *p, int t) {
  int64_t lo = p->n * t / p->num_threads, hi = p->n * (t + 1) / p->num_threads;
  if (lo < hi) p->fn(p->arg, lo, hi, p->scratch ? p->scratch + (size_t)t * p->stride : NULL);
}

/* A worker may find itself on the core of the thread that publishes its
 * jobs: placed there when that thread woke it (Linux's wake-affine
 * placement), or the caller moved. Seen on a 2-vCPU VM, where it stuck:
 * both threads on one core, the run slower than on one thread. Then the
 * worker moves to another core it may use (and keeps its set of cores). */
static void leave_caller_core(qc_pool *p) {
#ifdef __linux__
  int here = sched_getcpu(), caller = atomic_load(&p->caller_cpu);
  if (here < 0 || here != caller) return;
  cpu_set_t all, others;
  if (sched_getaffinity(0, sizeof all, &all) != 0) return;
  others = all;
  CPU_CLR(caller, &others);
  if (CPU_COUNT(&others) == 0) return;
  if (sched_setaffinity(0, sizeof others, &others) == 0) sched_setaffinity(0, sizeof all, &all);
#else
  (void)p;
#endif
}

/* Returns the generation after `seen`, spinning first, then sleeping. */
static unsigned long next_job(qc_pool *p, unsigned long seen) {
  for (int i = 0; i < QC_SPIN_ROUNDS; i++) {
    unsigned long g = atomic_load_explicit(&p->generation, memory_order_acquire);
    if (g != seen) {
      leave_caller_core(p);
      return g;
    }
    spin_round(i);
  }
  pthread_mutex_lock(&p->mu);
  /* sleepers++ before reading generation, as qc_pool_run bumps generation
   * before reading sleepers (both sequentially consistent): one of the two
   * sees the other's write, so a job is never missed. */
  atomic_fetch_add(&p->sleepers, 1);
  unsigned long g;
  while ((g = atomic_load(&p->generation)) == seen) pthread_cond_wait(&p->work, &p->mu);
  atomic_fetch_sub(&p->sleepers, 1);
  pthread_mutex_unlock(&p->mu);
  leave_caller_core(p);
  return g;
}

static void *worker_main(void *raw) {
  worker_arg *wa = (worker_arg *)raw;
  qc_pool *p = wa->pool;
  int t = wa->index;
  free(wa);
  unsigned long seen = 0;
  for (;;) {
    seen = next_job(p, seen);
    if (atomic_load(&p->quit)) break;
    run_chunk(p, t);
    /* pending-- before reading waiting, as the caller sets waiting before
     * reading pending: the last worker out wakes a caller that sleeps. */
    if (atomic_fetch_sub(&p->pending, 1) == 1 && atomic_load(&p->waiting)) {
      pthread_mutex_lock(&p->mu);
      pthread_cond_broadcast(&p->done);
      pthread_mutex_unlock(&p->mu);
    }
  }
  return NULL;
}

static void publish(qc_pool *p) {
#ifdef __linux__
  atomic_store_explicit(&p->caller_cpu, sched_getcpu(), memory_order_relaxed);
#endif
  atomic_fetch_add(&p->generation, 1);
  if (atomic_load(&p->sleepers) > 0) {
    pthread_mutex_lock(&p->mu);
    pthread_cond_broadcast(&p->work);
    pthread_mutex_unlock(&p->mu);
  }
}

qc_pool *qc_pool_create(int num_threads) {
  qc_pool *p = (qc_pool *)calloc(1, sizeof(qc_pool));
  if (!p) return NULL;
  p->num_threads = num_threads;
  pthread_mutex_init(&p->mu, NULL);
  pthread_cond_init(&p->work, NULL);
  pthread_cond_init(&p->done, NULL);
  atomic_init(&p->waiting, 0);
  atomic_init(&p->caller_cpu, -1);
  atomic_init(&p->generation, 0);
  atomic_init(&p->pending, 0);
  atomic_init(&p->sleepers, 0);
  atomic_init(&p->quit, 0);
  p->workers = (pthread_t *)calloc((size_t)num_threads, sizeof(pthread_t));
  if (!p->workers) {
    free(p);
    return NULL;
  }
  for (int t = 1; t < num_threads; t++) {
    worker_arg *wa = (worker_arg *)malloc(sizeof(worker_arg));
    if (wa) {
      wa->pool = p;
      wa->index = t;
    }
    if (!wa || pthread_create(&p->workers[t], NULL, worker_main, wa) != 0) {
      free(wa);
      p->num_threads = t; /* run with the threads that did start */
      break;
    }
  }
  return p;
}

void qc_pool_destroy(qc_pool *p) {
  if (!p) return;
  atomic_store(&p->quit, 1);
  publish(p); /* a job that every worker takes as the signal to return */
  for (int t = 1; t < p->num_threads; t++) pthread_join(p->workers[t], NULL);
  pthread_mutex_destroy(&p->mu);
  pthread_cond_destroy(&p->work);
  pthread_cond_destroy(&p->done);
  free(p->workers);
  free(p);
}

void qc_pool_run(qc_pool *p, int64_t n, qc_range_fn fn, void *arg, char *scratch, size_t stride) {
  if (!p || p->num_threads <= 1 || n <= 1) {
    fn(arg, 0, n, scratch);
    return;
  }
  p->fn = fn;
  p->arg = arg;
  p->n = n;
  p->scratch = scratch;
  p->stride = stride;
  atomic_store_explicit(&p->pending, p->num_threads - 1, memory_order_relaxed);
  publish(p); /* sequentially consistent: the job's fields are visible to whoever sees it */
  run_chunk(p, 0);
  for (int i = 0; i < QC_SPIN_ROUNDS; i++) {
    if (atomic_load_explicit(&p->pending, memory_order_acquire) == 0) return;
    spin_round(i);
  }
  pthread_mutex_lock(&p->mu);
  atomic_store(&p->waiting, 1);
  while (atomic_load(&p->pending) > 0) pthread_cond_wait(&p->done, &p->mu);
  atomic_store(&p->waiting, 0);
  pthread_mutex_unlock(&p->mu);
}
