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
 * iterations (another loop nest), 0 if unknown or if the compiler chose to
 * split it (qc-parallel-loops' `local` ops); below QC_SERIAL_WORK it stays
 * on the calling thread, since handing half of it to a spinning worker
 * (about a microsecond) would cost more than it saves. At 1 << 18 the
 * padded buffers' fills of ShuffleNet (122,400 floats: 245,000) stayed on
 * one thread, and at two threads a memset of lines the other core had
 * written took 8% of the model; at 1 << 16 it runs 0.94x -> 1.05-1.09x
 * onnxruntime on two threads, the other example models unchanged. */
#define QC_SERIAL_WORK (1 << 16)
void qc_parallel_for(int64_t n, qc_range_fn fn, void *arg, int64_t work);

#endif
