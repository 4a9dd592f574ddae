/* qc model ABI, version 1.
 *
 * A model compiled by qc is one shared library (or one object file plus this
 * header) that exports the functions below and depends on nothing beyond
 * libc and libm. Every tensor is a dense, row-major (C order) buffer whose
 * element type is given by a qc_dtype code (ONNX's TensorProto numbering).
 *
 * Typical use:
 *   qc_context *ctx = qc_context_create();
 *   const void *in[] = {x};          void *out[] = {y};
 *   int64_t in_bytes[] = {sizeof x}; int64_t out_bytes[] = {sizeof y};
 *   if (qc_run(ctx, in, in_bytes, out, out_bytes) != QC_OK)
 *     fprintf(stderr, "%s\n", qc_last_error(ctx));
 *   qc_context_destroy(ctx);
 *
 * Metadata functions are pure and thread-safe. A context may be used by one
 * thread at a time; separate contexts may run concurrently.
 */
#ifndef QC_RUNTIME_H
#define QC_RUNTIME_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define QC_ABI_VERSION 1

#if defined(__GNUC__)
#define QC_API __attribute__((visibility("default")))
#else
#define QC_API
#endif

typedef enum {
  QC_FLOAT32 = 1, QC_UINT8 = 2, QC_INT8 = 3, QC_UINT16 = 4, QC_INT16 = 5,
  QC_INT32 = 6, QC_INT64 = 7, QC_BOOL = 9, QC_FLOAT16 = 10, QC_FLOAT64 = 11,
  QC_UINT32 = 12, QC_UINT64 = 13
} qc_dtype;

typedef enum {
  QC_OK = 0,
  QC_ERROR_NULL = 1,      /* a required pointer is NULL */
  QC_ERROR_SIZE = 2,      /* a buffer's byte size differs from the tensor's */
  QC_ERROR_ALIGN = 3,     /* a buffer is not aligned to its element size */
  QC_ERROR_ALLOC = 4,     /* out of memory */
  QC_ERROR_ARGUMENT = 5   /* another bad argument (index, thread count) */
} qc_status;

typedef struct qc_context qc_context;

/* ABI version of this library (QC_ABI_VERSION when it was built). */
QC_API int32_t qc_abi_version(void);
/* The LLVM target triple the model code was generated for. */
QC_API const char *qc_target_triple(void);
/* What the code was generated for, as words: "triple=... cpu=... features=..."
 * (and "vlen=N" for RISC-V vectors); also in the library's .qc_target section. */
QC_API const char *qc_target_info(void);

QC_API int32_t qc_num_inputs(void);
QC_API int32_t qc_num_outputs(void);
/* Per-tensor metadata; an index out of range gives NULL / 0 / -1. */
QC_API const char *qc_input_name(int32_t i);
QC_API int32_t qc_input_dtype(int32_t i);
QC_API int32_t qc_input_rank(int32_t i);
QC_API const int64_t *qc_input_shape(int32_t i); /* rank entries; NULL for rank 0 */
QC_API int64_t qc_input_bytes(int32_t i);
QC_API const char *qc_output_name(int32_t i);
QC_API int32_t qc_output_dtype(int32_t i);
QC_API int32_t qc_output_rank(int32_t i);
QC_API const int64_t *qc_output_shape(int32_t i);
QC_API int64_t qc_output_bytes(int32_t i);

/* Bytes of memory each context holds for the model's intermediate tensors:
 * one arena, allocated by qc_context_create, whose layout was planned at
 * compile time (buffers whose lifetimes do not overlap share bytes). A run
 * allocates nothing more from the second run on. Weights are not included:
 * they are read-only data of the library, shared by every context. */
QC_API int64_t qc_arena_bytes(void);

/* A context holds per-run state (the arena, a thread pool) and the last
 * error message. NULL if out of memory. */
QC_API qc_context *qc_context_create(void);
/* Threads a run on this context may use (default 1). The GEMMs split their
 * output columns across them; results are the same for every count. */
QC_API qc_status qc_context_set_num_threads(qc_context *ctx, int32_t num_threads);
QC_API int32_t qc_context_num_threads(const qc_context *ctx);
QC_API void qc_context_destroy(qc_context *ctx);

/* Runs the model. inputs[i] / outputs[i] point to the i-th tensor's buffer.
 * input_bytes / output_bytes, if not NULL, give each buffer's size in bytes
 * and are checked against the metadata. Outputs must not overlap inputs. */
QC_API qc_status qc_run(qc_context *ctx, const void *const *inputs, const int64_t *input_bytes,
                        void *const *outputs, const int64_t *output_bytes);

/* The message for the last failed call on ctx ("" if none). */
QC_API const char *qc_last_error(const qc_context *ctx);
QC_API const char *qc_status_string(qc_status status);

#ifdef __cplusplus
}
#endif
#endif /* QC_RUNTIME_H */
