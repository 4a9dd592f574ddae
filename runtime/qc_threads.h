/* Internal: the runtime's thread pool (qc_threads.c). Not part of the ABI. */
#ifndef QC_THREADS_H
#define QC_THREADS_H

#include <stddef.h>
#include <stdint.h>

/* One chunk [lo, hi) of a parallel loop; scratch: the running thread's own
 * scratch buffer (the context's, see qc_parallel_for). */
typedef void (*qc_range_fn)(void *arg, int64_t lo, int64_t hi, void *scratch);
typedef struct qc_pool qc_pool;

qc_pool *qc_pool_create(int num_threads);
void qc_pool_destroy(qc_pool *pool);
/* fn(arg, lo, hi, scratch + t * stride) over a split of [0, n), chunk t on
 * thread t; returns when every chunk is done. */
void qc_pool_run(qc_pool *pool, int64_t n, qc_range_fn fn, void *arg, char *scratch, size_t stride);

/* For generated code: splits [0, n) over the threads of the context whose
 * run is executing on this thread (one chunk if none). work: the loop's
 * multiply-adds (a GEMM) or ops and operands per iteration times its
 * iterations (another loop nest), 0 if unknown; below QC_SERIAL_WORK it stays
 * on the calling thread, since handing half of it to a spinning worker
 * (about a microsecond) would cost more than it saves. */
#define QC_SERIAL_WORK (1 << 18)
void qc_parallel_for(int64_t n, qc_range_fn fn, void *arg, int64_t work);

#endif
