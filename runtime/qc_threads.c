/* The thread pool behind qc_parallel_for: one pool per context, started on
 * first use with num_threads - 1 workers (the calling thread is the first).
 * A job splits [0, n) into one contiguous chunk per thread; generated code
 * calls it for the outer loop of a GEMM, whose chunks write disjoint parts
 * of the output, so results do not depend on the thread count. */
#define _GNU_SOURCE
#include "qc_threads.h"

#include <pthread.h>
#include <stdlib.h>

struct qc_pool {
  int num_threads;
  pthread_t *workers;
  pthread_mutex_t mu;
  pthread_cond_t work, done;
  unsigned long generation; /* bumped for each job */
  int pending;              /* workers still running the current job */
  int quit;
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

static void *worker_main(void *raw) {
  worker_arg *wa = (worker_arg *)raw;
  qc_pool *p = wa->pool;
  int t = wa->index;
  free(wa);
  unsigned long seen = 0;
  pthread_mutex_lock(&p->mu);
  for (;;) {
    while (!p->quit && p->generation == seen) pthread_cond_wait(&p->work, &p->mu);
    if (p->quit) break;
    seen = p->generation;
    pthread_mutex_unlock(&p->mu);
    run_chunk(p, t);
    pthread_mutex_lock(&p->mu);
    if (--p->pending == 0) pthread_cond_signal(&p->done);
  }
  pthread_mutex_unlock(&p->mu);
  return NULL;
}

qc_pool *qc_pool_create(int num_threads) {
  qc_pool *p = (qc_pool *)calloc(1, sizeof(qc_pool));
  if (!p) return NULL;
  p->num_threads = num_threads;
  pthread_mutex_init(&p->mu, NULL);
  pthread_cond_init(&p->work, NULL);
  pthread_cond_init(&p->done, NULL);
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
  pthread_mutex_lock(&p->mu);
  p->quit = 1;
  pthread_cond_broadcast(&p->work);
  pthread_mutex_unlock(&p->mu);
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
  pthread_mutex_lock(&p->mu);
  p->fn = fn;
  p->arg = arg;
  p->n = n;
  p->scratch = scratch;
  p->stride = stride;
  p->pending = p->num_threads - 1;
  p->generation++;
  pthread_cond_broadcast(&p->work);
  pthread_mutex_unlock(&p->mu);
  run_chunk(p, 0);
  pthread_mutex_lock(&p->mu);
  while (p->pending > 0) pthread_cond_wait(&p->done, &p->mu);
  pthread_mutex_unlock(&p->mu);
}
