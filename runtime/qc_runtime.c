/* The qc runtime: the model ABI (qc_runtime.h) over one generated model
 * description. Checks every argument it can, and reports errors by status
 * and message instead of crashing. */
#if defined(__linux__) && !defined(_GNU_SOURCE)
#define _GNU_SOURCE /* syscall() under -std=c11 */
#endif
#include "qc_runtime.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qc_model_desc.h"
#include "qc_threads.h"

#if defined(__x86_64__) && defined(__linux__)
#include <sys/syscall.h>
#include <unistd.h>
#endif

#define D qc_model_description

/* Buffers the generated code allocates for intermediates, kept across runs:
 * a model allocates the same sizes in the same order on every run, so from
 * the second run on every request is served from here, with no malloc, no
 * page faults and no zeroing of fresh pages by the kernel. */
typedef struct {
  void *ptr;
  size_t size;
  int in_use;
} qc_block;

struct qc_context {
  char error[256];
  void *arena; /* the model's intermediates, at offsets planned at compile time */
  char *scratch; /* num_threads scratch buffers of scratch_stride() bytes, one per thread */
  qc_block *blocks;
  size_t num_blocks, cap_blocks;
  int num_threads;
  qc_pool *pool; /* started on the first parallel loop with num_threads > 1 */
};

/* The context whose run is executing on this thread (set by qc_run). */
static _Thread_local qc_context *qc_current;

int32_t qc_abi_version(void) { return QC_ABI_VERSION; }
const char *qc_target_triple(void) { return D.target_triple; }
int32_t qc_num_inputs(void) { return D.num_inputs; }
int32_t qc_num_outputs(void) { return D.num_outputs; }
int64_t qc_arena_bytes(void) { return D.arena_bytes; }

static const qc_tensor_desc *input_desc(int32_t i) {
  return (i >= 0 && i < D.num_inputs) ? &D.inputs[i] : NULL;
}
static const qc_tensor_desc *output_desc(int32_t i) {
  return (i >= 0 && i < D.num_outputs) ? &D.outputs[i] : NULL;
}

#define META(kind, field, type, none)                       \
  type qc_##kind##_##field(int32_t i) {                   \
    const qc_tensor_desc *t = kind##_desc(i);               \
    return t ? t->field : (none);                           \
  }
META(input, name, const char *, NULL)
META(input, dtype, int32_t, 0)
META(input, rank, int32_t, -1)
META(input, shape, const int64_t *, NULL)
META(input, bytes, int64_t, -1)
META(output, name, const char *, NULL)
META(output, dtype, int32_t, 0)
META(output, rank, int32_t, -1)
META(output, shape, const int64_t *, NULL)
META(output, bytes, int64_t, -1)

static size_t scratch_stride(void) { return ((size_t)D.scratch_bytes + 63) & ~(size_t)63; }

/* One scratch buffer per thread, allocated outside runs (at creation and
 * when the thread count changes), so a run allocates nothing. */
static int alloc_scratch(qc_context *ctx, int num_threads) {
  if (D.scratch_bytes <= 0) return 1;
  char *s = (char *)aligned_alloc(64, scratch_stride() * (size_t)num_threads);
  if (!s) return 0;
  free(ctx->scratch);
  ctx->scratch = s;
  return 1;
}

qc_context *qc_context_create(void) {
  qc_context *ctx = (qc_context *)calloc(1, sizeof(qc_context));
  if (!ctx) return NULL;
  ctx->num_threads = 1;
  if (D.arena_bytes > 0) {
    /* 64-byte aligned (the plan's offsets are multiples of 64): one cache
     * line, and the widest vector a kernel loads. */
    size_t size = ((size_t)D.arena_bytes + 63) & ~(size_t)63;
    ctx->arena = aligned_alloc(64, size);
    if (!ctx->arena) {
      free(ctx);
      return NULL;
    }
  }
  if (!alloc_scratch(ctx, 1)) {
    free(ctx->arena);
    free(ctx);
    return NULL;
  }
  return ctx;
}

qc_status qc_context_set_num_threads(qc_context *ctx, int32_t num_threads) {
  if (!ctx) return QC_ERROR_NULL;
  if (num_threads < 1 || num_threads > 1024) {
    snprintf(ctx->error, sizeof ctx->error, "thread count %d is not in 1..1024", (int)num_threads);
    return QC_ERROR_ARGUMENT;
  }
  if (num_threads != ctx->num_threads) {
    if (!alloc_scratch(ctx, num_threads)) {
      snprintf(ctx->error, sizeof ctx->error, "out of memory for %d threads' scratch", (int)num_threads);
      return QC_ERROR_ALLOC;
    }
    qc_pool_destroy(ctx->pool);
    ctx->pool = NULL;
    ctx->num_threads = num_threads;
  }
  return QC_OK;
}

int32_t qc_context_num_threads(const qc_context *ctx) { return ctx ? ctx->num_threads : 0; }

void qc_parallel_for(int64_t n, qc_range_fn fn, void *arg, int64_t work) {
  qc_context *ctx = qc_current;
  if (!ctx || ctx->num_threads <= 1 || (work > 0 && work < QC_SERIAL_WORK)) {
    fn(arg, 0, n, ctx ? ctx->scratch : NULL);
    return;
  }
  if (!ctx->pool) ctx->pool = qc_pool_create(ctx->num_threads);
  qc_pool_run(ctx->pool, n, fn, arg, ctx->scratch, scratch_stride());
}

void qc_context_destroy(qc_context *ctx) {
  if (!ctx) return;
  qc_pool_destroy(ctx->pool);
  for (size_t i = 0; i < ctx->num_blocks; i++) free(ctx->blocks[i].ptr);
  free(ctx->blocks);
  free(ctx->arena);
  free(ctx->scratch);
  free(ctx);
}

/* memref.alloc / memref.dealloc in generated code (finalize-memref-to-llvm's
 * generic allocation functions), for the buffers the arena does not hold
 * (dynamic sizes, allocations inside loops). A cached free block is reused when it is big
 * enough and at most twice the size asked for. */
void *_mlir_memref_to_llvm_alloc(size_t size) {
  qc_context *ctx = qc_current;
  if (!ctx) return malloc(size);
  qc_block *best = NULL;
  for (size_t i = 0; i < ctx->num_blocks; i++) {
    qc_block *b = &ctx->blocks[i];
    if (!b->in_use && b->size >= size && b->size <= 2 * size + 64 && (!best || b->size < best->size))
      best = b;
  }
  if (best) {
    best->in_use = 1;
    return best->ptr;
  }
  if (ctx->num_blocks == ctx->cap_blocks) {
    size_t cap = ctx->cap_blocks ? 2 * ctx->cap_blocks : 16;
    qc_block *nb = (qc_block *)realloc(ctx->blocks, cap * sizeof(qc_block));
    if (!nb) return malloc(size);
    ctx->blocks = nb;
    ctx->cap_blocks = cap;
  }
  void *p = malloc(size);
  if (!p) return NULL;
  ctx->blocks[ctx->num_blocks++] = (qc_block){p, size, 1};
  return p;
}

void _mlir_memref_to_llvm_free(void *ptr) {
  qc_context *ctx = qc_current;
  if (ctx) {
    for (size_t i = 0; i < ctx->num_blocks; i++) {
      if (ctx->blocks[i].ptr == ptr) {
        ctx->blocks[i].in_use = 0;
        return;
      }
    }
  }
  free(ptr);
}

static qc_status fail(qc_context *ctx, qc_status s, const char *fmt, ...) {
  if (ctx) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ctx->error, sizeof ctx->error, fmt, ap);
    va_end(ap);
  }
  return s;
}

static qc_status check(qc_context *ctx, const char *kind, const qc_tensor_desc *t, int32_t n,
                       const void *const *bufs, const int64_t *bytes) {
  if (n > 0 && !bufs) return fail(ctx, QC_ERROR_NULL, "%s array is NULL", kind);
  for (int32_t i = 0; i < n; i++) {
    if (!bufs[i]) return fail(ctx, QC_ERROR_NULL, "%s %d ('%s') is NULL", kind, i, t[i].name);
    if (bytes && bytes[i] != t[i].bytes)
      return fail(ctx, QC_ERROR_SIZE, "%s %d ('%s') has %lld bytes, expected %lld", kind, i,
                  t[i].name, (long long)bytes[i], (long long)t[i].bytes);
    if ((uintptr_t)bufs[i] % (uintptr_t)t[i].elem_size)
      return fail(ctx, QC_ERROR_ALIGN, "%s %d ('%s') is not aligned to %d bytes", kind, i,
                  t[i].name, t[i].elem_size);
  }
  return QC_OK;
}

/* Whether this process may run AMX tile instructions: Linux (5.16 on) grants
 * the tile data state only to a process that asks for it, for all of its
 * threads; asked once, the answer kept (a race only asks twice). */
static int amx_granted(void) {
#if defined(__x86_64__) && defined(__linux__)
  static volatile int state; /* 0: not asked, 1: granted, -1: refused */
  if (!state) {
    enum { ARCH_REQ_XCOMP_PERM = 0x1023, XFEATURE_XTILEDATA = 18 };
    state = syscall(SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) == 0 ? 1 : -1;
  }
  return state > 0;
#else
  return 0;
#endif
}

qc_status qc_run(qc_context *ctx, const void *const *inputs, const int64_t *input_bytes,
                 void *const *outputs, const int64_t *output_bytes) {
  if (!ctx) return QC_ERROR_NULL;
  ctx->error[0] = '\0';
  qc_status s = check(ctx, "input", D.inputs, D.num_inputs, inputs, input_bytes);
  if (s != QC_OK) return s;
  s = check(ctx, "output", D.outputs, D.num_outputs, (const void *const *)outputs, output_bytes);
  if (s != QC_OK) return s;
  if (D.uses_amx && !amx_granted())
    return fail(ctx, QC_ERROR_ARGUMENT,
                "this model was compiled for AMX tiles (%s), which this system does not grant "
                "(arch_prctl ARCH_REQ_XCOMP_PERM failed); compile it for a target without amx-int8",
                D.target_triple);
  qc_current = ctx;
  D.invoke((void *const *)inputs, outputs, ctx->arena);
  qc_current = NULL;
  return QC_OK;
}

const char *qc_last_error(const qc_context *ctx) { return ctx ? ctx->error : "context is NULL"; }

const char *qc_status_string(qc_status status) {
  switch (status) {
    case QC_OK: return "ok";
    case QC_ERROR_NULL: return "null pointer";
    case QC_ERROR_SIZE: return "wrong buffer size";
    case QC_ERROR_ALIGN: return "misaligned buffer";
    case QC_ERROR_ALLOC: return "out of memory";
    case QC_ERROR_ARGUMENT: return "bad argument";
  }
  return "unknown status";
}

/* Strided copy between two memrefs of any rank, called by generated code for a
 * memref.copy whose layouts are not both contiguous (the MLIR lowering's
 * runtime entry; same name and arguments as MLIR's C runner utils). */
typedef struct {
  int64_t rank;
  void *descriptor; /* {base, data, offset, sizes[rank], strides[rank]} */
} qc_unranked_memref;

void memrefCopy(int64_t elem_size, qc_unranked_memref *src, qc_unranked_memref *dst) {
  int64_t rank = src->rank;
  char **sd = (char **)src->descriptor, **dd = (char **)dst->descriptor;
  const int64_t *s_meta = (const int64_t *)(sd + 2), *d_meta = (const int64_t *)(dd + 2);
  const int64_t *sizes = s_meta + 1, *s_strides = s_meta + 1 + rank, *d_strides = d_meta + 1 + rank;
  char *s = sd[1] + s_meta[0] * elem_size, *d = dd[1] + d_meta[0] * elem_size;
  int64_t total = 1;
  for (int64_t i = 0; i < rank; i++) total *= sizes[i];
  if (total == 0) return;
  if (rank == 0) {
    memcpy(d, s, (size_t)elem_size);
    return;
  }
  int64_t idx[16] = {0};
  if (rank > 16) return; /* generated code never has rank > 16 */
  for (int64_t n = 0; n < total; n++) {
    int64_t so = 0, doff = 0;
    for (int64_t i = 0; i < rank; i++) {
      so += idx[i] * s_strides[i];
      doff += idx[i] * d_strides[i];
    }
    memcpy(d + doff * elem_size, s + so * elem_size, (size_t)elem_size);
    for (int64_t i = rank - 1; i >= 0; i--) {
      if (++idx[i] < sizes[i]) break;
      idx[i] = 0;
    }
  }
}
