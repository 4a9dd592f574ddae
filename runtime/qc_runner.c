/* qc_runner: runs a qc model library in a process of its own, so that a
 * library built for another ISA can run under qemu-user. Built per target
 * with that target's C compiler (qc.runtime.qemu does it and caches it).
 *
 *   qc_runner LIB --info                       print the metadata, one line each
 *   qc_runner LIB --run IN... -- OUT...        one run: raw input files in, raw output files out
 *   qc_runner LIB --serve                      the metadata, then runs requested on stdin
 *
 * The metadata lines are
 *   abi VERSION
 *   triple TRIPLE
 *   target RECORD              (what the code was generated for, e.g. "... vlen=256"; "-" if unknown)
 *   input DTYPE RANK D0 .. Dn NAME
 *   output DTYPE RANK D0 .. Dn NAME
 *   end
 * and a raw file holds a tensor's bytes in C order, exactly qc_*_bytes long.
 *
 * --serve protocol on stdin/stdout, after the metadata:
 *   'R', then every input's bytes      -> 'K', then every output's bytes
 *                                      or 'E', a u32 length and the error message
 *   'T', a u32 count n                 -> 'K', then n int64 nanoseconds: n timed runs
 *                                         on the last inputs
 *   'Q' or end of input                -> exit 0
 * Exit status: 0 ok, 1 a run failed, 2 bad usage or library.
 */
#define _POSIX_C_SOURCE 200809L
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "qc_runtime.h"

typedef struct {
  int32_t (*abi_version)(void);
  const char *(*target_triple)(void);
  const char *(*target_info)(void); /* optional: libraries before the target record lack it */
  int32_t (*num[2])(void);
  const char *(*name[2])(int32_t);
  int32_t (*dtype[2])(int32_t);
  int32_t (*rank[2])(int32_t);
  const int64_t *(*shape[2])(int32_t);
  int64_t (*bytes[2])(int32_t);
  qc_context *(*context_create)(void);
  qc_status (*run)(qc_context *, const void *const *, const int64_t *, void *const *, const int64_t *);
  const char *(*last_error)(const qc_context *);
} api;

enum { IN = 0, OUT = 1 };

static void die(const char *what, const char *detail) {
  fprintf(stderr, "qc_runner: %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
  exit(2);
}

static void *sym(void *lib, const char *name, int required) {
  void *p = dlsym(lib, name);
  if (!p && required) die("not a qc model library, missing", name);
  return p;
}

static void load(api *a, const char *path) {
  void *lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  if (!lib) die("cannot load", dlerror());
  *(void **)&a->abi_version = sym(lib, "qc_abi_version", 1);
  *(void **)&a->target_triple = sym(lib, "qc_target_triple", 1);
  *(void **)&a->target_info = sym(lib, "qc_target_info", 0);
  static const char *kinds[2] = {"input", "output"};
  char name[64];
  for (int k = 0; k < 2; k++) {
    snprintf(name, sizeof name, "qc_num_%ss", kinds[k]);
    *(void **)&a->num[k] = sym(lib, name, 1);
#define FIELD(f)                                              \
    snprintf(name, sizeof name, "qc_%s_" #f, kinds[k]);       \
    *(void **)&a->f[k] = sym(lib, name, 1);
    FIELD(name) FIELD(dtype) FIELD(rank) FIELD(shape) FIELD(bytes)
#undef FIELD
  }
  *(void **)&a->context_create = sym(lib, "qc_context_create", 1);
  *(void **)&a->run = sym(lib, "qc_run", 1);
  *(void **)&a->last_error = sym(lib, "qc_last_error", 1);
  if (a->abi_version() != QC_ABI_VERSION) die("unsupported model ABI version", NULL);
}

static void print_info(const api *a, FILE *f) {
  fprintf(f, "abi %d\ntriple %s\ntarget %s\n", (int)a->abi_version(), a->target_triple(),
          a->target_info ? a->target_info() : "-");
  static const char *kinds[2] = {"input", "output"};
  for (int k = 0; k < 2; k++) {
    for (int32_t i = 0; i < a->num[k](); i++) {
      int32_t rank = a->rank[k](i);
      const int64_t *shape = a->shape[k](i);
      fprintf(f, "%s %d %d", kinds[k], (int)a->dtype[k](i), (int)rank);
      for (int32_t d = 0; d < rank; d++) fprintf(f, " %lld", (long long)shape[d]);
      fprintf(f, " %s\n", a->name[k](i));
    }
  }
  fprintf(f, "end\n");
  fflush(f);
}

/* One buffer per tensor, sized from the metadata (at least 1 byte, so that
 * an empty tensor still has a non-NULL pointer). */
static void **alloc_buffers(const api *a, int k) {
  int32_t n = a->num[k]();
  void **bufs = calloc((size_t)n + 1, sizeof(void *));
  if (!bufs) die("out of memory", NULL);
  for (int32_t i = 0; i < n; i++) {
    size_t size = (size_t)a->bytes[k](i);
    if (posix_memalign(&bufs[i], 64, size ? size : 1)) die("out of memory", NULL);
  }
  return bufs;
}

static int read_exact(FILE *f, void *p, size_t n) { return fread(p, 1, n, f) == n; }

static void write_exact(FILE *f, const void *p, size_t n) {
  if (fwrite(p, 1, n, f) != n) die("cannot write output", NULL);
}

static void run_files(const api *a, char **in_paths, int n_in, char **out_paths, int n_out) {
  if (n_in != a->num[IN]() || n_out != a->num[OUT]()) {
    fprintf(stderr, "qc_runner: the model takes %d input and %d output file(s), got %d and %d\n",
            (int)a->num[IN](), (int)a->num[OUT](), n_in, n_out);
    exit(2);
  }
  void **in = alloc_buffers(a, IN), **out = alloc_buffers(a, OUT);
  for (int i = 0; i < n_in; i++) {
    FILE *f = fopen(in_paths[i], "rb");
    if (!f) die("cannot open input", in_paths[i]);
    size_t size = (size_t)a->bytes[IN](i);
    if (!read_exact(f, in[i], size) || fgetc(f) != EOF) {
      fprintf(stderr, "qc_runner: %s: expected exactly %zu bytes for input '%s'\n", in_paths[i], size,
              a->name[IN](i));
      exit(2);
    }
    fclose(f);
  }
  qc_context *ctx = a->context_create();
  if (!ctx) die("out of memory", NULL);
  if (a->run(ctx, (const void *const *)in, NULL, out, NULL) != QC_OK) {
    fprintf(stderr, "qc_runner: run failed: %s\n", a->last_error(ctx));
    exit(1);
  }
  for (int i = 0; i < n_out; i++) {
    FILE *f = fopen(out_paths[i], "wb");
    if (!f) die("cannot create output", out_paths[i]);
    write_exact(f, out[i], (size_t)a->bytes[OUT](i));
    if (fclose(f)) die("cannot write output", out_paths[i]);
  }
}

static int64_t now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

static void serve(const api *a) {
  print_info(a, stdout);
  void **in = alloc_buffers(a, IN), **out = alloc_buffers(a, OUT);
  qc_context *ctx = a->context_create();
  if (!ctx) die("out of memory", NULL);
  for (;;) {
    int cmd = fgetc(stdin);
    if (cmd == EOF || cmd == 'Q') return;
    if (cmd == 'R') {
      for (int32_t i = 0; i < a->num[IN](); i++)
        if (!read_exact(stdin, in[i], (size_t)a->bytes[IN](i))) die("input ended inside a tensor", NULL);
      if (a->run(ctx, (const void *const *)in, NULL, out, NULL) != QC_OK) {
        const char *msg = a->last_error(ctx);
        uint32_t len = (uint32_t)strlen(msg);
        fputc('E', stdout);
        write_exact(stdout, &len, sizeof len);
        write_exact(stdout, msg, len);
      } else {
        fputc('K', stdout);
        for (int32_t i = 0; i < a->num[OUT](); i++) write_exact(stdout, out[i], (size_t)a->bytes[OUT](i));
      }
    } else if (cmd == 'T') {
      uint32_t n;
      if (!read_exact(stdin, &n, sizeof n)) die("input ended inside a command", NULL);
      fputc('K', stdout);
      for (uint32_t r = 0; r < n; r++) {
        int64_t t0 = now_ns();
        a->run(ctx, (const void *const *)in, NULL, out, NULL);
        int64_t dt = now_ns() - t0;
        write_exact(stdout, &dt, sizeof dt);
      }
    } else {
      die("unknown command on stdin", NULL);
    }
    fflush(stdout);
  }
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: qc_runner LIB --info | --serve | --run IN... -- OUT...\n");
    return 2;
  }
  api a;
  load(&a, argv[1]);
  if (!strcmp(argv[2], "--info")) {
    print_info(&a, stdout);
  } else if (!strcmp(argv[2], "--serve")) {
    serve(&a);
  } else if (!strcmp(argv[2], "--run")) {
    int sep = 3;
    while (sep < argc && strcmp(argv[sep], "--")) sep++;
    run_files(&a, argv + 3, sep - 3, argv + sep + 1, sep < argc ? argc - sep - 1 : 0);
  } else {
    die("unknown mode (expected --info, --serve or --run)", argv[2]);
  }
  return 0;
}
