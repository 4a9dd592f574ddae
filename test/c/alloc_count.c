/* alloc_count: counts the allocator calls a model makes while it runs.
 *
 *   alloc_count MODEL.so THREADS RUNS
 *
 * This executable defines malloc, calloc, realloc, free, posix_memalign,
 * aligned_alloc and memalign itself, forwarding each to glibc's own
 * (__libc_malloc, ...): the dynamic linker binds every library's calls to
 * them, the dlopen()ed model's included, and each call bumps a counter. The
 * program creates a context with THREADS threads, runs the model once (the
 * warm-up may allocate: buffers, the thread pool), then counts the calls
 * made during RUNS more runs. It prints
 *   create N      calls during qc_context_create and qc_context_set_num_threads
 *   warmup N      calls during the first run
 *   running N     calls during the next RUNS runs (a model that allocates nothing
 *                 while it runs prints 0)
 * The first two show that the counter does see the model's calls.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qc_runtime.h"

extern void *__libc_malloc(size_t size);
extern void *__libc_calloc(size_t n, size_t size);
extern void *__libc_realloc(void *p, size_t size);
extern void *__libc_memalign(size_t align, size_t size);
extern void __libc_free(void *p);

static atomic_long calls; /* from every thread: the pool's workers too */

void *malloc(size_t size) {
  atomic_fetch_add(&calls, 1);
  return __libc_malloc(size);
}
void *calloc(size_t n, size_t size) {
  atomic_fetch_add(&calls, 1);
  return __libc_calloc(n, size);
}
void *realloc(void *p, size_t size) {
  atomic_fetch_add(&calls, 1);
  return __libc_realloc(p, size);
}
void free(void *p) {
  atomic_fetch_add(&calls, 1);
  __libc_free(p);
}
void *memalign(size_t align, size_t size) {
  atomic_fetch_add(&calls, 1);
  return __libc_memalign(align, size);
}
void *aligned_alloc(size_t align, size_t size) {
  atomic_fetch_add(&calls, 1);
  return __libc_memalign(align, size);
}
int posix_memalign(void **out, size_t align, size_t size) {
  atomic_fetch_add(&calls, 1);
  if (align < sizeof(void *) || (align & (align - 1))) return EINVAL;
  void *p = __libc_memalign(align, size);
  if (!p) return ENOMEM;
  *out = p;
  return 0;
}

static void die(const char *what, const char *detail) {
  fprintf(stderr, "alloc_count: %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
  exit(1);
}

static void *sym(void *lib, const char *name) {
  void *p = dlsym(lib, name);
  if (!p) die("not a qc model, missing", name);
  return p;
}

int main(int argc, char **argv) {
  if (argc != 4) die("usage: alloc_count MODEL.so THREADS RUNS", NULL);
  void *lib = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
  if (!lib) die("cannot load", dlerror());
  int32_t (*num[2])(void) = {sym(lib, "qc_num_inputs"), sym(lib, "qc_num_outputs")};
  int64_t (*bytes[2])(int32_t) = {sym(lib, "qc_input_bytes"), sym(lib, "qc_output_bytes")};
  qc_context *(*create)(void) = sym(lib, "qc_context_create");
  qc_status (*set_threads)(qc_context *, int32_t) = sym(lib, "qc_context_set_num_threads");
  qc_status (*run)(qc_context *, const void *const *, const int64_t *, void *const *, const int64_t *) =
      sym(lib, "qc_run");
  const char *(*last_error)(const qc_context *) = sym(lib, "qc_last_error");
  int threads = atoi(argv[2]), runs = atoi(argv[3]);

  /* Inputs and outputs, allocated before counting; inputs hold small
   * deterministic values (any values do: only allocations are counted). */
  void **bufs[2];
  for (int k = 0; k < 2; k++) {
    bufs[k] = calloc((size_t)num[k]() + 1, sizeof(void *));
    for (int32_t i = 0; i < num[k](); i++) {
      size_t size = ((size_t)bytes[k](i) + 63) / 64 * 64;
      bufs[k][i] = aligned_alloc(64, size ? size : 64);
      if (!bufs[k][i]) die("out of memory", NULL);
      for (size_t b = 0; b < size; b++) ((unsigned char *)bufs[k][i])[b] = (unsigned char)(b % 7 == 0);
    }
  }

  long before = atomic_load(&calls);
  qc_context *ctx = create();
  if (!ctx || set_threads(ctx, threads) != QC_OK) die("cannot create a context", ctx ? last_error(ctx) : NULL);
  long after_create = atomic_load(&calls);
  if (run(ctx, (const void *const *)bufs[0], NULL, bufs[1], NULL) != QC_OK) die("run failed", last_error(ctx));
  long after_warmup = atomic_load(&calls);
  for (int r = 0; r < runs; r++)
    if (run(ctx, (const void *const *)bufs[0], NULL, bufs[1], NULL) != QC_OK) die("run failed", last_error(ctx));
  long after_runs = atomic_load(&calls);
  printf("create %ld\nwarmup %ld\nrunning %ld\n", after_create - before, after_warmup - after_create,
         after_runs - after_warmup);
  return 0;
}
