/* Internal: the runtime's thread pool (qc_threads.c). Not part of the ABI. */
#ifndef QC_THREADS_H
#define QC_THREADS_H

#include <stdint.h>

typedef void (*qc_range_fn)(void *arg, int64_t lo, int64_t hi);
typedef struct qc_pool qc_pool;

qc_pool *qc_pool_create(int num_threads);
void qc_pool_destroy(qc_pool *pool);
/* fn(arg, lo, hi) over a split of [0, n); returns when every chunk is done. */
void qc_pool_run(qc_pool *pool, int64_t n, qc_range_fn fn, void *arg);

/* For generated code: splits [0, n) over the threads of the context whose
 * run is executing on this thread (one chunk if none). */
void qc_parallel_for(int64_t n, qc_range_fn fn, void *arg);

#endif
