/* Internal: the description of one compiled model, generated per model by qc
 * (qc_model_desc.c) and read by the runtime (qc_runtime.c). Not part of the ABI. */
#ifndef QC_MODEL_DESC_H
#define QC_MODEL_DESC_H

#include <stdint.h>

typedef struct {
  const char *name;
  int32_t dtype;
  int32_t rank;
  const int64_t *shape;
  int64_t bytes;
  int32_t elem_size;
} qc_tensor_desc;

typedef struct {
  int32_t num_inputs;
  int32_t num_outputs;
  const qc_tensor_desc *inputs;
  const qc_tensor_desc *outputs;
  const char *target_triple;
  /* Bytes of the context's arena for intermediates (qc-plan-memory); 0: none. */
  int64_t arena_bytes;
  /* Bytes of scratch each thread of a context needs (GEMM panels); 0: none. */
  int64_t scratch_bytes;
  /* Calls the generated entry with one pointer per input, then per output,
   * and the context's arena. */
  void (*invoke)(void *const *inputs, void *const *outputs, void *arena);
  /* Nonzero: the code uses x86 AMX tiles, which Linux grants a process
   * only on request (qc_run asks once, and fails if refused). */
  int32_t uses_amx;
} qc_model_desc;

extern const qc_model_desc qc_model_description __attribute__((visibility("hidden")));

#endif
