"""The model ABI from C, without Python: examples/c_app (qc_app) built with
the system C compiler and run here, and built with aarch64-linux-gnu-gcc and
run under qemu-aarch64, each both ways (dlopen() of a .so, and -DQC_STATIC
linked with `qc compile --emit obj`'s object), against onnxruntime; its error
paths; and two C harnesses: test/c/alloc_count.c (no allocator call while a
model runs) and test/c/concurrent.c (contexts running at once on several
threads give the single-threaded results, bit for bit).

The AArch64 cases need Debian `qemu-user` and `gcc-aarch64-linux-gnu`
(`make test` installs them); without them they fail, never skip.
"""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from helpers import make_model, ort_run
from onnx import helper

import qc

REPO = Path(__file__).resolve().parents[2]
APP_DIR = REPO / "examples" / "c_app"
RUNTIME = REPO / "runtime"
HARNESS = REPO / "test" / "c"
F32 = np.float32
CFLAGS = ["-O2", "-std=c11", "-Wall", "-Wextra", "-Werror", f"-I{RUNTIME}"]


@dataclass(frozen=True)
class Toolchain:
    """Where qc_app is built and run: the C compiler, qc's --target, and the
    emulator command that runs its programs (empty on this machine)."""

    name: str
    cc: str
    target: str
    emulator: tuple[str, ...]
    install: str  # how to get what is missing

    def require(self) -> None:
        missing = [t for t in (self.cc, *self.emulator[:1]) if shutil.which(t) is None]
        if missing:
            pytest.fail(f"the {self.name} C app tests need {', '.join(missing)}: {self.install}", pytrace=False)


HOST = Toolchain("host", "cc", "host", (), "install a C compiler")
AARCH64 = Toolchain("aarch64", "aarch64-linux-gnu-gcc", "aarch64", ("qemu-aarch64", "-L", "/usr/aarch64-linux-gnu"),
                    "run `make test` (it installs them) or apt-get install qemu-user gcc-aarch64-linux-gnu")


def build(tc: Toolchain, out: Path, sources: list, flags=(), libs=()) -> Path:
    tc.require()
    cmd = [tc.cc, *CFLAGS, *flags, "-o", str(out), *map(str, sources), *libs]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    assert proc.returncode == 0, f"{' '.join(cmd)}\n{proc.stderr}"
    return out


def run(tc: Toolchain, *args) -> subprocess.CompletedProcess:
    return subprocess.run([*tc.emulator, *map(str, args)], capture_output=True, text=True, timeout=300)


# --- models -----------------------------------------------------------------------------

def matmul_add_relu(rng):
    # Two run-time inputs: x [3, 7] (3 rows: a row tail for every register tile), y [7, 5]
    # (5 columns: a column tail); the bias is a weight.
    bias = rng.standard_normal(5).astype(F32)
    nodes = [helper.make_node("MatMul", ["x", "y"], ["p"]), helper.make_node("Add", ["p", "bias"], ["s"]),
             helper.make_node("Relu", ["s"], ["out"])]
    model = make_model(nodes, {"x": (F32, [3, 7]), "y": (F32, [7, 5])}, {"out": (F32, [3, 5])}, {"bias": bias})
    return model, {"x": rng.standard_normal((3, 7)).astype(F32), "y": rng.standard_normal((7, 5)).astype(F32)}


def argmax_and_mask(rng):
    # Integer and boolean outputs next to a float one: ArgMax (int64), x > 0 (bool), x * 2.
    nodes = [helper.make_node("ArgMax", ["x"], ["idx"], axis=1, keepdims=0),
             helper.make_node("Greater", ["x", "zero"], ["pos"]),
             helper.make_node("Add", ["x", "x"], ["twice"])]
    model = make_model(nodes, {"x": (F32, [4, 6])},
                       {"idx": (np.int64, [4]), "pos": (np.bool_, [4, 6]), "twice": (F32, [4, 6])},
                       {"zero": np.zeros((), F32)})
    return model, {"x": rng.standard_normal((4, 6)).astype(F32)}


def conv_chain(rng):
    # Intermediates between every node: Conv (im2col + GEMM) -> Relu -> Reshape -> MatMul -> Relu
    # -> MatMul. Odd sizes everywhere (3 channels in, a 9x11 image, 7 and 5 columns out).
    w = {"w": (0.3 * rng.standard_normal((8, 3, 3, 3))).astype(F32), "shape": np.array([8, 99], np.int64),
         "m1": (0.1 * rng.standard_normal((99, 7))).astype(F32), "m2": rng.standard_normal((7, 5)).astype(F32)}
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]), helper.make_node("Relu", ["c"], ["r"]),
             helper.make_node("Reshape", ["r", "shape"], ["flat"]), helper.make_node("MatMul", ["flat", "m1"], ["h"]),
             helper.make_node("Relu", ["h"], ["hr"]), helper.make_node("MatMul", ["hr", "m2"], ["out"])]
    model = make_model(nodes, {"x": (F32, [1, 3, 9, 11])}, {"out": (F32, [8, 5])}, w)
    return model, {"x": rng.standard_normal((1, 3, 9, 11)).astype(F32)}


def resnet_block(rng):
    # examples/make_models.py's ResNet basic block: two 3x3 convolutions, 64 channels, 56x56.
    spec = importlib.util.spec_from_file_location("make_models", REPO / "examples" / "make_models.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.resnet_block(rng)


MODELS = {f.__name__: f for f in (matmul_add_relu, argmax_and_mask, conv_chain, resnet_block)}


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """Builds on demand and keeps for the module: built(kind, name, toolchain) -> path.
    "so"/"obj": model `name` compiled; "app": qc_app (dlopen); "static": qc_app
    with model `name` linked in; "harness": test/c/`name`.c."""
    root = tmp_path_factory.mktemp("c_app")
    cache: dict[tuple, Path] = {}

    def get(kind: str, name: str = "", tc: Toolchain = HOST) -> Path:
        key = (kind, name, tc.name)
        if key in cache:
            return cache[key]
        out = root / f"{kind}-{name or 'app'}-{tc.name}"
        if kind in ("so", "obj"):
            model, _ = MODELS[name](np.random.default_rng(0))
            out = out.with_suffix("." + ("o" if kind == "obj" else "so"))
            qc.compile(model, str(out), emit=kind, target=tc.target)
        elif kind == "app":
            build(tc, out, [APP_DIR / "main.c"], libs=["-ldl"])
        elif kind == "static":
            build(tc, out, [APP_DIR / "main.c", get("obj", name, tc)], ["-DQC_STATIC"], ["-lm", "-pthread"])
        else:
            build(tc, out, [HARNESS / f"{name}.c"], libs=["-ldl", "-pthread"])
        cache[key] = out
        return out

    return get


def input_file(path: Path, model, feeds) -> Path:
    """INPUT.bin: every input's bytes, in the model's input order."""
    path.write_bytes(b"".join(np.ascontiguousarray(feeds[i.name]).tobytes() for i in model.graph.input))
    return path


HEADER = re.compile(r"^(.+): (\w+) \[([\d, ]*)\]$")


def parse_outputs(stdout: str) -> dict[str, np.ndarray]:
    """qc_app's printed outputs: after the "ran" line, per output a header
    "NAME: DTYPE [D0, D1]" and then one value per line."""
    lines = stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("ran ")) + 1
    outputs, i = {}, start
    while i < len(lines):
        name, dtype, dims = HEADER.match(lines[i]).groups()
        shape = tuple(int(d) for d in dims.split(",")) if dims else ()
        count = int(np.prod(shape, dtype=np.int64))
        values = lines[i + 1:i + 1 + count]
        outputs[name] = np.array([float(v) if dtype.startswith("float") else int(v) for v in values],
                                 dtype=np.dtype(dtype)).reshape(shape)
        i += 1 + count
    return outputs


def assert_matches(got: dict, want: dict, label: str) -> None:
    assert list(got) == list(want), label
    for name, w in want.items():
        assert got[name].dtype == w.dtype and got[name].shape == w.shape, f"{label}: {name}"
        if np.issubdtype(w.dtype, np.floating):
            np.testing.assert_allclose(got[name], w, rtol=1e-5, atol=1e-6, err_msg=f"{label}: {name}")
        else:
            np.testing.assert_array_equal(got[name], w, err_msg=f"{label}: {name}")


# --- qc_app against onnxruntime -------------------------------------------------------

@pytest.mark.parametrize("tc", [HOST, AARCH64], ids=lambda t: t.name)
@pytest.mark.parametrize("variant", ["app", "static"])
@pytest.mark.parametrize("name", ["matmul_add_relu", "argmax_and_mask"])
def test_app_matches_onnxruntime(name, variant, tc, built, tmp_path):
    tc.require()
    model, feeds = MODELS[name](np.random.default_rng(0))
    inputs = input_file(tmp_path / "in.bin", model, feeds)
    model_args = [built("so", name, tc)] if variant == "app" else []
    # Two threads and three runs: the flags reach the runtime, and a repeated run gives the same outputs.
    app = built("app", tc=tc) if variant == "app" else built("static", name, tc)
    proc = run(tc, app, *model_args, inputs, "--threads", "2", "--runs", "3")
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    triple = "aarch64-unknown-linux-gnu" if tc is AARCH64 else "x86_64-unknown-linux-gnu"
    assert f"target  {triple}\n" in proc.stdout and "ran     3 time(s) on 2 thread(s)" in proc.stdout
    # The metadata: one line per tensor, with dtype, shape and size.
    assert "input 0 x: float32 [" in proc.stdout
    assert_matches(parse_outputs(proc.stdout), ort_run(model, feeds), f"{tc.name} {variant}")


def test_app_prints_exactly_what_the_runtime_computed(built, tmp_path):
    # %.9g reads back as the same float32: the printed values are the run's, bit for bit.
    model, feeds = argmax_and_mask(np.random.default_rng(0))
    lib = built("so", "argmax_and_mask")
    proc = run(HOST, built("app"), lib, input_file(tmp_path / "in.bin", model, feeds))
    with qc.load(lib) as m:
        want = m.run(feeds)
    got = parse_outputs(proc.stdout)
    for name in want:
        np.testing.assert_array_equal(got[name], want[name], err_msg=name)


def test_app_metadata_lines(built, tmp_path):
    model, feeds = matmul_add_relu(np.random.default_rng(0))
    lib = built("so", "matmul_add_relu")
    out = run(HOST, built("app"), lib, input_file(tmp_path / "in.bin", model, feeds)).stdout
    with qc.load(lib) as m:
        arena = m.arena_bytes
    assert out.splitlines()[:7] == [
        f"model   {lib}", "abi     1", "target  x86_64-unknown-linux-gnu", f"arena   {arena} bytes per context",
        "input 0 x: float32 [3, 7] (84 bytes)", "input 1 y: float32 [7, 5] (140 bytes)",
        "output 0 out: float32 [3, 5] (60 bytes)"]


def test_makefile_builds_and_runs_both_ways(tmp_path):
    """examples/c_app/Makefile, as a user runs it: both programs on one model and its .npz."""
    model, feeds = matmul_add_relu(np.random.default_rng(0))
    (tmp_path / "m.onnx").write_bytes(model.SerializeToString())
    np.savez(tmp_path / "m.npz", **feeds)
    if shutil.which("make") is None:
        pytest.fail("this test runs examples/c_app/Makefile and needs `make`", pytrace=False)
    bindir = Path(sys.executable).parent
    proc = subprocess.run(["make", "-s", "-C", str(APP_DIR), "run", f"BUILD={tmp_path / 'build'}",
                           f"MODEL={tmp_path / 'm.onnx'}", f"INPUTS={tmp_path / 'm.npz'}", f"QC={bindir / 'qc'}",
                           f"PYTHON={sys.executable}"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # Two runs printed one after the other: split at each "model" line.
    runs = re.split(r"^(?=model   )", proc.stdout, flags=re.M)[1:]
    assert [r.splitlines()[0] for r in runs] == [f"model   {tmp_path / 'build' / 'model.so'}", "model   (linked in)"]
    for r in runs:
        assert_matches(parse_outputs(r), ort_run(model, feeds), "make run")


# --- qc_app's errors: one line on stderr, a non-zero exit ------------------------------------

FAKE_MODEL = r"""
/* Not a compiled model: the ABI's functions by hand, for qc_app's error paths
 * (-DABI=N reports version N, -DNO_RUN leaves qc_run out, -DRUN_MALLOCS makes
 * qc_run call malloc and free, -DRUN_FAILS makes it fail). */
#include <stdlib.h>
#include "qc_runtime.h"
#ifndef ABI
#define ABI QC_ABI_VERSION
#endif
static const int64_t shape[1] = {2};
static int the_context;
int32_t qc_abi_version(void) { return ABI; }
const char *qc_target_triple(void) { return "fake"; }
int64_t qc_arena_bytes(void) { return 0; }
int32_t qc_num_inputs(void) { return 1; }
int32_t qc_num_outputs(void) { return 1; }
const char *qc_input_name(int32_t i) { return i ? 0 : "x"; }
int32_t qc_input_dtype(int32_t i) { return i ? 0 : QC_FLOAT32; }
int32_t qc_input_rank(int32_t i) { return i ? -1 : 1; }
const int64_t *qc_input_shape(int32_t i) { return i ? 0 : shape; }
int64_t qc_input_bytes(int32_t i) { return i ? -1 : 8; }
const char *qc_output_name(int32_t i) { return i ? 0 : "y"; }
int32_t qc_output_dtype(int32_t i) { return i ? 0 : QC_FLOAT32; }
int32_t qc_output_rank(int32_t i) { return i ? -1 : 1; }
const int64_t *qc_output_shape(int32_t i) { return i ? 0 : shape; }
int64_t qc_output_bytes(int32_t i) { return i ? -1 : 8; }
qc_context *qc_context_create(void) { return (qc_context *)&the_context; }
qc_status qc_context_set_num_threads(qc_context *c, int32_t n) { (void)c; (void)n; return QC_OK; }
int32_t qc_context_num_threads(const qc_context *c) { (void)c; return 1; }
void qc_context_destroy(qc_context *c) { (void)c; }
#ifndef NO_RUN
qc_status qc_run(qc_context *c, const void *const *in, const int64_t *ib, void *const *out, const int64_t *ob) {
  (void)c; (void)in; (void)ib; (void)ob;
#ifdef RUN_MALLOCS
  void *volatile p = malloc(16); /* volatile: the compiler may drop a malloc/free pair */
  free(p);
#endif
#ifdef RUN_FAILS
  return QC_ERROR_SIZE;
#endif
  ((float *)out[0])[0] = ((float *)out[0])[1] = 1.5f;
  return QC_OK;
}
#endif
const char *qc_last_error(const qc_context *c) { (void)c; return "input 0 ('x') has 7 bytes, expected 8"; }
const char *qc_status_string(qc_status s) { return s == QC_ERROR_SIZE ? "wrong buffer size" : "ok"; }
"""


@pytest.fixture
def fake_model(tmp_path):
    """fake_model(*defines) -> a .so that exports the ABI by hand (FAKE_MODEL)."""
    src = tmp_path / "fake.c"
    src.write_text(FAKE_MODEL)

    def make(*defines: str) -> Path:
        out = tmp_path / f"fake{''.join(d.replace('=', '') for d in defines)}.so"
        return build(HOST, out, [src], ["-shared", "-fPIC", *(f"-D{d}" for d in defines)])

    return make


def fails_with(proc: subprocess.CompletedProcess, pattern: str, status: int = 1) -> None:
    assert proc.returncode == status, (proc.returncode, proc.stdout, proc.stderr)
    assert len(proc.stderr.splitlines()) == 1 and re.search(pattern, proc.stderr), proc.stderr


def test_input_file_of_the_wrong_size(built, tmp_path):
    model, feeds = matmul_add_relu(np.random.default_rng(0))
    short = tmp_path / "short.bin"
    short.write_bytes(input_file(tmp_path / "in.bin", model, feeds).read_bytes()[:-4])
    # 84 + 140 = 224 bytes: the message names each input's share.
    expected = (r"^qc_app: .*short.bin has 220 bytes, but the model's 2 input\(s\) take 224: 'x' 84 \+ 'y' 140 "
                r"\(the raw bytes of each input, C order, in input order\)$")
    fails_with(run(HOST, built("app"), built("so", "matmul_add_relu"), short), expected)
    fails_with(run(HOST, built("static", "matmul_add_relu"), short), expected)


def test_missing_input_file(built, tmp_path):
    fails_with(run(HOST, built("app"), built("so", "matmul_add_relu"), tmp_path / "none.bin"),
               r"^qc_app: cannot open .*none.bin: No such file or directory$")


def test_not_a_shared_library(built, tmp_path):
    (tmp_path / "model.so").write_text("not ELF")
    fails_with(run(HOST, built("app"), tmp_path / "model.so", tmp_path / "in.bin"),
               r"^qc_app: cannot load .*model.so: .*(invalid ELF header|file too short)")


def test_shared_library_that_is_not_a_model(built, tmp_path):
    src = tmp_path / "other.c"
    src.write_text("int something_else(void) { return 0; }\n")
    lib = build(HOST, tmp_path / "other.so", [src], ["-shared", "-fPIC"])
    fails_with(run(HOST, built("app"), lib, tmp_path / "in.bin"),
               r"^qc_app: .*other.so is not a qc model: it has no qc_abi_version$")


def test_model_missing_a_function(built, fake_model, tmp_path):
    fails_with(run(HOST, built("app"), fake_model("NO_RUN"), tmp_path / "in.bin"),
               r"^qc_app: .*is not a qc model: it has no qc_run$")


def test_abi_version_mismatch(built, fake_model, tmp_path):
    # Checked before any other symbol: a library of another version may lack some (no qc_run here).
    fails_with(run(HOST, built("app"), fake_model("ABI=2", "NO_RUN"), tmp_path / "in.bin"),
               r"^qc_app: .*has model ABI version 2, this program reads version 1$")


def test_failed_run_reports_status_and_message(built, fake_model, tmp_path):
    (tmp_path / "in.bin").write_bytes(bytes(8))
    fails_with(run(HOST, built("app"), fake_model("RUN_FAILS"), tmp_path / "in.bin"),
               r"^qc_app: run failed: wrong buffer size: input 0 \('x'\) has 7 bytes, expected 8$")


@pytest.mark.parametrize("args, pattern, status", [
    ([], r"^usage: qc_app MODEL.so INPUT.bin \[--threads N\] \[--runs N\]$", 2),
    (["m.so"], r"^usage: qc_app MODEL.so INPUT.bin", 2),
    (["m.so", "in.bin", "extra"], r"^usage: qc_app MODEL.so INPUT.bin", 2),
    (["m.so", "in.bin", "--fast"], r"^usage: qc_app MODEL.so INPUT.bin", 2),
    (["m.so", "in.bin", "--threads"], r"^qc_app: --threads needs a positive integer after it$", 1),
    (["m.so", "in.bin", "--runs", "0"], r"^qc_app: --runs needs a positive integer, got '0'$", 1),
    (["m.so", "in.bin", "--threads", "2x"], r"^qc_app: --threads needs a positive integer, got '2x'$", 1),
])
def test_bad_command_line(args, pattern, status, built):
    fails_with(run(HOST, built("app"), *args), pattern, status)


def test_thread_count_the_runtime_refuses(built, tmp_path):
    model, feeds = matmul_add_relu(np.random.default_rng(0))
    fails_with(run(HOST, built("app"), built("so", "matmul_add_relu"),
                   input_file(tmp_path / "in.bin", model, feeds), "--threads", "5000"),
               r"^qc_app: --threads: thread count 5000 is not in 1..1024$")


# --- no allocation while running (test/c/alloc_count.c) ----------------------------------

def alloc_counts(built, lib: Path, threads: int) -> dict[str, int]:
    proc = run(HOST, built("harness", "alloc_count"), lib, threads, 5)
    assert proc.returncode == 0, proc.stderr
    return {k: int(v) for k, v in (line.split() for line in proc.stdout.splitlines())}


def test_alloc_count_sees_the_library_allocate(built, fake_model):
    # The harness's own check: a qc_run that calls malloc and free is counted, 2 calls x 5 runs.
    counts = alloc_counts(built, fake_model("RUN_MALLOCS"), 1)
    assert counts["running"] == 10, counts


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("name", ["conv_chain", "resnet_block"])
def test_no_allocation_while_running(name, threads, built):
    counts = alloc_counts(built, built("so", name), threads)
    assert counts["create"] > 0, counts  # the counter sees the library's calls (the context's calloc)
    assert counts["running"] == 0, counts


# --- contexts on several threads at once (test/c/concurrent.c) -------------------------------

@pytest.mark.parametrize("context_threads", [1, 2])
@pytest.mark.parametrize("name, runs", [("conv_chain", 200), ("resnet_block", 10)])
def test_concurrent_contexts_are_bit_identical(name, runs, context_threads, built):
    proc = run(HOST, built("harness", "concurrent"), built("so", name), 4, runs, context_threads)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == f"ok 4 x {runs} runs\n"
