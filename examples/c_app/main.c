/* qc_app: runs a model compiled by qc from a C program, through the model ABI
 * in qc_runtime.h.
 *
 *   qc_app MODEL.so INPUT.bin [--threads N] [--runs N]     dlopen()s the model
 *   qc_app INPUT.bin [--threads N] [--runs N]              built with -DQC_STATIC,
 *                                                          linked with `qc compile --emit obj`'s object
 *
 * INPUT.bin holds the inputs' raw bytes (C order), concatenated in input order.
 * Prints the model's metadata, runs it (--runs times, reporting the best time),
 * then prints each output: a line "NAME: DTYPE [SHAPE]", then one value per line.
 * Every error is one line on stderr and exit status 1.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "qc_runtime.h"

#ifndef QC_STATIC
#include <dlfcn.h>
#endif

/* The ABI functions this program calls, once as a list: a table of pointers to
 * them is filled by dlsym() or, with -DQC_STATIC, by the linker. */
#define QC_FUNCTIONS(X)                                                                    \
  X(target_triple) X(arena_bytes) X(num_inputs) X(num_outputs)                           \
  X(input_name) X(input_dtype) X(input_rank) X(input_shape) X(input_bytes)                 \
  X(output_name) X(output_dtype) X(output_rank) X(output_shape) X(output_bytes)            \
  X(context_create) X(context_set_num_threads) X(context_num_threads) X(context_destroy) X(run) X(last_error)     \
  X(status_string)

typedef struct {
  int32_t (*abi_version)(void);
#define FIELD(f) __typeof__(qc_##f) *f;
  QC_FUNCTIONS(FIELD)
#undef FIELD
} qc_api;

/* Every error ends the program with one line on stderr and exit status 1. */
static void die(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "qc_app: ");
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  exit(1);
}

/* The model's ABI version must be the one this program was compiled against
 * (QC_ABI_VERSION of its qc_runtime.h). */
static void check_version(const qc_api *api, const char *path) {
  int32_t version = api->abi_version();
  if (version != QC_ABI_VERSION)
    die("%s has model ABI version %d, this program reads version %d", path, (int)version, QC_ABI_VERSION);
}

#ifdef QC_STATIC
static void load_api(qc_api *api, const char *path) {
  api->abi_version = qc_abi_version;
#define BIND(f) api->f = qc_##f;
  QC_FUNCTIONS(BIND)
#undef BIND
  check_version(api, path);
}
#else
/* The version is checked before the other symbols are looked up: a library of
 * another ABI version may lack some of them, and the version is the real news.
 * The library stays loaded until the program exits. */
static void load_api(qc_api *api, const char *path) {
  void *lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  if (!lib) die("cannot load %s", dlerror());
  if (!(*(void **)&api->abi_version = dlsym(lib, "qc_abi_version")))
    die("%s is not a qc model: it has no qc_abi_version", path);
  check_version(api, path);
#define BIND(f)                                   \
  if (!(*(void **)&api->f = dlsym(lib, "qc_" #f))) \
    die("%s is not a qc model: it has no %s", path, "qc_" #f);
  QC_FUNCTIONS(BIND)
#undef BIND
}
#endif

static const char *dtype_name(int32_t dtype) {
  switch (dtype) {
    case QC_FLOAT32: return "float32";
    case QC_FLOAT64: return "float64";
    case QC_FLOAT16: return "float16";
    case QC_INT8: return "int8";
    case QC_INT16: return "int16";
    case QC_INT32: return "int32";
    case QC_INT64: return "int64";
    case QC_UINT8: return "uint8";
    case QC_UINT16: return "uint16";
    case QC_UINT32: return "uint32";
    case QC_UINT64: return "uint64";
    case QC_BOOL: return "bool";
  }
  return "unknown";
}

static void print_tensor_header(const char *name, int32_t dtype, int32_t rank, const int64_t *shape) {
  printf("%s: %s [", name, dtype_name(dtype));
  for (int32_t d = 0; d < rank; d++) printf("%s%lld", d ? ", " : "", (long long)shape[d]);
  printf("]");
}

static void print_metadata(const qc_api *api, const char *path) {
  printf("model   %s\nabi     %d\ntarget  %s\n", path, (int)api->abi_version(), api->target_triple());
  printf("arena   %lld bytes per context\n", (long long)api->arena_bytes());
  for (int32_t i = 0; i < api->num_inputs(); i++) {
    printf("input %d ", (int)i);
    print_tensor_header(api->input_name(i), api->input_dtype(i), api->input_rank(i), api->input_shape(i));
    printf(" (%lld bytes)\n", (long long)api->input_bytes(i));
  }
  for (int32_t i = 0; i < api->num_outputs(); i++) {
    printf("output %d ", (int)i);
    print_tensor_header(api->output_name(i), api->output_dtype(i), api->output_rank(i),
                        api->output_shape(i));
    printf(" (%lld bytes)\n", (long long)api->output_bytes(i));
  }
}

/* IEEE half -> float, exactly: a normal half is 2^(e-15) * 1.m, so its exponent
 * is rebiased by 127 - 15 = 112 and its 10 mantissa bits become the top of
 * float's 23; a subnormal half is m * 2^-24. */
static float half_to_float(uint16_t h) {
  uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, mant = h & 0x3ff;
  if (exp == 0) {
    float mag = (float)mant / 16777216.0f;
    return sign ? -mag : mag;
  }
  uint32_t bits = sign | (exp == 31 ? 0xffu : exp + 112) << 23 | mant << 13;
  float f;
  memcpy(&f, &bits, sizeof f);
  return f;
}

/* Element i of a buffer of dtype, as one line: floats with enough digits to
 * read back the same value (%.9g for float32, %.17g for float64). */
static void print_value(const void *buf, int32_t dtype, int64_t i) {
  switch (dtype) {
    case QC_FLOAT32: printf("%.9g\n", (double)((const float *)buf)[i]); break;
    case QC_FLOAT64: printf("%.17g\n", ((const double *)buf)[i]); break;
    case QC_FLOAT16: printf("%.9g\n", (double)half_to_float(((const uint16_t *)buf)[i])); break;
    case QC_INT8: printf("%d\n", ((const int8_t *)buf)[i]); break;
    case QC_INT16: printf("%d\n", ((const int16_t *)buf)[i]); break;
    case QC_INT32: printf("%d\n", ((const int32_t *)buf)[i]); break;
    case QC_INT64: printf("%lld\n", (long long)((const int64_t *)buf)[i]); break;
    case QC_UINT8: printf("%u\n", ((const uint8_t *)buf)[i]); break;
    case QC_BOOL: printf("%u\n", ((const uint8_t *)buf)[i]); break;
    case QC_UINT16: printf("%u\n", ((const uint16_t *)buf)[i]); break;
    case QC_UINT32: printf("%u\n", ((const uint32_t *)buf)[i]); break;
    case QC_UINT64: printf("%llu\n", (unsigned long long)((const uint64_t *)buf)[i]); break;
    default: printf("?\n"); /* an element type this program does not know */
  }
}

/* A buffer for one tensor, 64-byte aligned (a cache line, and enough for any
 * vector load). aligned_alloc wants a multiple of the alignment; an empty
 * tensor still gets a non-NULL pointer. */
static void *alloc_tensor(int64_t bytes) {
  size_t size = ((size_t)bytes + 63) / 64 * 64;
  return aligned_alloc(64, size ? size : 64);
}

/* Reads INPUT.bin into one buffer per input; its size must be the sum of the
 * inputs' sizes. */
static void read_inputs(const qc_api *api, const char *path, void **inputs) {
  FILE *f = fopen(path, "rb");
  if (!f) die("cannot open %s: %s", path, strerror(errno));
  int64_t want = 0;
  for (int32_t i = 0; i < api->num_inputs(); i++) want += api->input_bytes(i);
  int64_t have = fseek(f, 0, SEEK_END) == 0 ? (int64_t)ftell(f) : -1;
  rewind(f);
  if (have < 0) die("cannot read %s: it is not a regular file", path);
  if (have != want) {
    fprintf(stderr, "qc_app: %s has %lld bytes, but the model's %d input(s) take %lld:", path,
            (long long)have, (int)api->num_inputs(), (long long)want);
    for (int32_t i = 0; i < api->num_inputs(); i++)
      fprintf(stderr, "%s '%s' %lld", i ? " +" : "", api->input_name(i), (long long)api->input_bytes(i));
    fprintf(stderr, " (the raw bytes of each input, C order, in input order)\n");
    exit(1);
  }
  for (int32_t i = 0; i < api->num_inputs(); i++) {
    size_t n = (size_t)api->input_bytes(i);
    if (!(inputs[i] = alloc_tensor((int64_t)n))) die("out of memory");
    if (fread(inputs[i], 1, n, f) != n) die("cannot read %s: %s", path, strerror(errno));
  }
  fclose(f);
}

static int32_t parse_count(const char *flag, const char *text) {
  if (!text) die("%s needs a positive integer after it", flag);
  char *end;
  errno = 0;
  long v = strtol(text, &end, 10);
  if (*end || errno || v < 1 || v > 1000000) die("%s needs a positive integer, got '%s'", flag, text);
  return (int32_t)v;
}

static double now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

/* Runs the model `runs` times and prints the best time. */
static void run(const qc_api *api, qc_context *ctx, void **inputs, void **outputs, int32_t runs) {
  int32_t threads = api->context_num_threads(ctx);
  double best = 0;
  for (int32_t r = 0; r < runs; r++) {
    double t0 = now_ms();
    qc_status s = api->run(ctx, (const void *const *)inputs, NULL, outputs, NULL);
    double dt = now_ms() - t0;
    if (s != QC_OK) die("run failed: %s: %s", api->status_string(s), api->last_error(ctx));
    if (r == 0 || dt < best) best = dt;
  }
  printf("ran     %d time(s) on %d thread(s), best %.3f ms\n", (int)runs, (int)threads, best);
}

static void print_outputs(const qc_api *api, void **outputs) {
  for (int32_t i = 0; i < api->num_outputs(); i++) {
    int32_t rank = api->output_rank(i);
    const int64_t *shape = api->output_shape(i);
    int64_t count = 1;
    for (int32_t d = 0; d < rank; d++) count *= shape[d];
    print_tensor_header(api->output_name(i), api->output_dtype(i), rank, shape);
    printf("\n");
    for (int64_t k = 0; k < count; k++) print_value(outputs[i], api->output_dtype(i), k);
  }
}

#ifdef QC_STATIC
#define USAGE "usage: qc_app INPUT.bin [--threads N] [--runs N]\n"
enum { NUM_PATHS = 1 }; /* INPUT.bin */
#else
#define USAGE "usage: qc_app MODEL.so INPUT.bin [--threads N] [--runs N]\n"
enum { NUM_PATHS = 2 }; /* MODEL.so INPUT.bin */
#endif

int main(int argc, char **argv) {
  const char *paths[NUM_PATHS] = {NULL};
  int num_paths = 0;
  int32_t threads = 1, runs = 1;
  for (int a = 1; a < argc; a++) {
    if (!strcmp(argv[a], "--threads")) {
      threads = parse_count("--threads", argv[++a]); /* argv[argc] is NULL */
    } else if (!strcmp(argv[a], "--runs")) {
      runs = parse_count("--runs", argv[++a]);
    } else if (argv[a][0] == '-' || num_paths == NUM_PATHS) {
      fputs(USAGE, stderr);
      return 2;
    } else {
      paths[num_paths++] = argv[a];
    }
  }
  if (num_paths != NUM_PATHS) {
    fputs(USAGE, stderr);
    return 2;
  }
  const char *model_path = NUM_PATHS == 2 ? paths[0] : "(linked in)";
  const char *input_path = paths[NUM_PATHS - 1];

  qc_api api;
  load_api(&api, model_path);
  print_metadata(&api, model_path);

  int32_t n_in = api.num_inputs(), n_out = api.num_outputs();
  void **inputs = calloc((size_t)n_in + 1, sizeof(void *));
  void **outputs = calloc((size_t)n_out + 1, sizeof(void *));
  if (!inputs || !outputs) die("out of memory");
  read_inputs(&api, input_path, inputs);
  for (int32_t i = 0; i < n_out; i++)
    if (!(outputs[i] = alloc_tensor(api.output_bytes(i)))) die("out of memory");

  qc_context *ctx = api.context_create();
  if (!ctx) die("out of memory");
  if (api.context_set_num_threads(ctx, threads) != QC_OK) die("--threads: %s", api.last_error(ctx));
  run(&api, ctx, inputs, outputs, runs);
  print_outputs(&api, outputs);

  api.context_destroy(ctx);
  for (int32_t i = 0; i < n_in; i++) free(inputs[i]);
  for (int32_t i = 0; i < n_out; i++) free(outputs[i]);
  free(inputs);
  free(outputs);
  return 0;
}
