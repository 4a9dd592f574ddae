"""The `qc` command line, run as a user runs it: a subprocess of the installed
script. Every command and option, and every error path: one line on stderr
starting with "qc: error:", exit code 1, and no traceback (unless --debug).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from helpers import make_model, ort_run
from onnx import helper

# The qc script installed beside the interpreter that runs the tests (.venv/bin/qc).
QC = str(Path(sys.executable).parent / "qc")
F32 = np.float32


def qc(*args, cwd=None, env=None, stdin=None) -> subprocess.CompletedProcess:
    full_env = {k: v for k, v in os.environ.items() if k != "QC_DEBUG"}  # errors as users see them
    full_env.update(env or {})
    return subprocess.run([QC, *map(str, args)], capture_output=True, text=True, cwd=cwd, env=full_env,
                          input=stdin, timeout=300)


def ok(res: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert res.returncode == 0, res.stderr
    assert "Traceback" not in res.stderr
    return res


def error_line(res: subprocess.CompletedProcess, pattern: str) -> str:
    """Checks a user error: exit 1, no traceback, one 'qc: error:' line last
    (progress lines before it are 'qc: ...' too), matching `pattern`."""
    assert res.returncode == 1, (res.returncode, res.stderr)
    assert "Traceback" not in res.stderr and "Traceback" not in res.stdout
    lines = res.stderr.strip().splitlines()
    assert lines, "no message"
    assert all(line.startswith("qc: ") for line in lines), res.stderr
    errors = [line for line in lines if line.startswith("qc: error:")]
    assert errors == [lines[-1]], res.stderr
    assert re.search(pattern, errors[0]), errors[0]
    return errors[0]


# --- models -------------------------------------------------------------------

def mlp_model() -> onnx.ModelProto:
    """y = relu(x @ w + b), z = sigmoid(y): two outputs, one input."""
    rng = np.random.default_rng(0)
    nodes = [
        helper.make_node("MatMul", ["x", "w"], ["h"], name="mm"),
        helper.make_node("Add", ["h", "b"], ["hb"], name="bias"),
        helper.make_node("Relu", ["hb"], ["y"], name="relu"),
        helper.make_node("Sigmoid", ["y"], ["z"], name="sig"),
    ]
    inits = {"w": rng.standard_normal((3, 4)).astype(F32), "b": rng.standard_normal(4).astype(F32)}
    return make_model(nodes, {"x": (F32, (2, 3))}, {"y": (F32, (2, 4)), "z": (F32, (2, 4))}, inits)


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    """A directory with the model as .onnx and .onnxtxt, compiled once to m.so."""
    d = tmp_path_factory.mktemp("cli")
    model = mlp_model()
    onnx.save(model, d / "m.onnx")
    (d / "m.onnxtxt").write_text(onnx.printer.to_text(model))
    ok(qc("compile", d / "m.onnx", "-o", d / "m.so", "-q"))
    return d


def write_text_model(path: Path, graph: str, opset: int = 17) -> Path:
    path.write_text(f'<ir_version: 8, opset_import: ["" : {opset}]>\n{graph}\n')
    return path


# --- help and version ----------------------------------------------------------

@pytest.mark.parametrize("command", ["", "compile", "run", "bench", "opt", "targets"])
def test_help(command):
    res = ok(qc(*command.split(), "--help"))
    assert res.stdout.startswith(f"Usage: qc {command}".rstrip())
    if command == "":
        for sub in ("compile", "run", "bench", "opt", "targets"):
            assert re.search(rf"^\s+{sub}\s", res.stdout, re.M), sub
    if command == "compile":
        for opt in ("--emit", "--target", "--input-shape", "--dump-ir", "--print-pipeline", "--debug"):
            assert opt in res.stdout


def test_short_help_and_version():
    assert ok(qc("-h")).stdout.startswith("Usage: qc")
    assert re.fullmatch(r"qc, version \d+\.\d+\.\d+\s*", ok(qc("--version")).stdout)


# --- compile --------------------------------------------------------------------

def test_compile_default_output_name(work, tmp_path):
    # No -o: MODEL's stem with .so, in the current directory; progress on stderr.
    res = ok(qc("compile", work / "m.onnx", cwd=tmp_path))
    assert (tmp_path / "m.so").is_file()
    assert res.stdout == ""
    assert re.search(r"^qc: wrote .*m\.so in [\d.]+ s$", res.stderr, re.M)
    assert "qc: importing ONNX" in res.stderr


def test_compile_quiet(work, tmp_path):
    res = ok(qc("compile", work / "m.onnx", "-o", tmp_path / "q.so", "-q"))
    assert res.stderr == "" and res.stdout == ""


def test_compile_progress_reader_gone(work, tmp_path):
    """`qc compile ... 2>&1 | head -1`: the reader of the progress lines
    closes the pipe after the first; the compile still finishes."""
    read, write = os.pipe()
    proc = subprocess.Popen([QC, "compile", work / "m.onnx", "-o", tmp_path / "p.so"], stderr=write,
                            stdout=subprocess.DEVNULL)
    os.close(write)
    with os.fdopen(read, "rb") as f:
        assert f.readline().startswith(b"qc: ")
    assert proc.wait(timeout=300) == 0
    assert (tmp_path / "p.so").is_file()


def test_compile_onnxtxt(work, tmp_path):
    ok(qc("compile", work / "m.onnxtxt", "-o", tmp_path / "t.so", "-q"))
    assert (tmp_path / "t.so").stat().st_size > 0


TEXT_MARKERS = {  # a textual stage → what its output must contain (and must not)
    "input": (r"func\.func @qc_model\(%arg0: tensor<2x3xf32>\) -> \(tensor<2x4xf32>, tensor<2x4xf32>\)", "memref<"),
    "linalg": (r"linalg\.matmul", "memref<"),
    "bufferized": (r"func\.func @qc_model\(%arg0: memref<2x3xf32>, %arg1: memref<2x4xf32>, %arg2: memref<2x4xf32>\)",
                   "tensor<2x3xf32>"),
    "affine": (r"affine\.for", "linalg.generic"),
    "scf": (r"scf\.for", "affine.for"),
    # The runtime calls the C wrapper with one memref descriptor pointer per input, then per output
    # (then the arena's, where the model has intermediates: here the GEMM's, before the bias and Relu).
    "llvm-dialect": (r"llvm\.func @_mlir_ciface_qc_model\(%arg0: !llvm\.ptr, %arg1: !llvm\.ptr, %arg2: !llvm\.ptr"
                     r"(, %arg3: !llvm\.ptr)?\)", "scf.for"),
    "llvm-ir": (r"define void @_mlir_ciface_qc_model\(ptr [^,]*, ptr [^,]*, ptr [^,)]*(, ptr [^,)]*)?\)", "llvm.func"),
    "asm": (r"(?m)^_mlir_ciface_qc_model:", "define void"),
}


@pytest.mark.parametrize("stage", list(TEXT_MARKERS))
def test_compile_emit_text_stage(work, stage):
    res = ok(qc("compile", work / "m.onnx", "--emit", stage))
    must, must_not = TEXT_MARKERS[stage]
    assert re.search(must, res.stdout), res.stdout[:2000]
    assert must_not not in res.stdout
    assert res.stderr == ""  # textual emits print no progress


def test_compile_emit_every_pipeline_stage(work):
    # Stages come from the pipeline; each one is an --emit point.
    from qc.session import emit_choices

    stages = emit_choices()
    assert stages[0] == "input" and stages[-4:] == ["llvm-ir", "asm", "obj", "so"]
    for stage in [s for s in stages[1:-4] if s not in TEXT_MARKERS]:  # the others are tested above
        res = ok(qc("compile", work / "m.onnx", "--emit", stage))
        assert "@qc_model" in res.stdout, stage


def test_compile_emit_text_to_file(work, tmp_path):
    out = tmp_path / "m.ll"
    res = ok(qc("compile", work / "m.onnx", "--emit", "llvm-ir", "-o", out))
    assert res.stdout == ""
    assert "define void @qc_model" in out.read_text()


def test_compile_emit_obj_writes_header(work, tmp_path):
    out = tmp_path / "model.o"
    ok(qc("compile", work / "m.onnx", "--emit", "obj", "-o", out, "-q"))
    data = out.read_bytes()
    assert data[:4] == b"\x7fELF" and int.from_bytes(data[16:18], "little") == 1  # ET_REL: an object file
    header = (tmp_path / "model.h").read_text()
    for decl in ("qc_run(", "qc_context_create(", "qc_input_name(", "QC_ABI_VERSION"):
        assert decl in header


def test_compile_emit_obj_default_name(work, tmp_path):
    ok(qc("compile", work / "m.onnx", "--emit", "obj", "-q", cwd=tmp_path))
    assert (tmp_path / "m.o").is_file() and (tmp_path / "m.h").is_file()


def test_dump_ir(work, tmp_path):
    dump = tmp_path / "dump"
    ok(qc("compile", work / "m.onnx", "-o", tmp_path / "d.so", "--dump-ir", dump, "-q"))
    numbered = sorted(p.name for p in dump.iterdir() if re.match(r"\d\d-", p.name))
    assert numbered[0] == "00-input.mlir"
    # Numbered in order without gaps; one file per stage, then LLVM IR and assembly.
    assert [int(n[:2]) for n in numbered] == list(range(len(numbered)))
    from qc.session import emit_choices

    for i, stage in enumerate(emit_choices()[1:-4], start=1):
        assert numbered[i] == f"{i:02d}-{stage}.mlir"
    assert any(n.endswith("-model.ll") for n in numbered)
    assert numbered[-1].endswith("-model.s")
    assert "qc_model:" in (dump / numbered[-1]).read_text()
    assert "func.func @qc_model" in (dump / "00-input.mlir").read_text()
    assert (tmp_path / "d.so").is_file()


def test_print_pipeline(work):
    res = ok(qc("compile", work / "m.onnx", "--print-pipeline"))
    assert res.stdout.startswith("pipeline ")
    from qc.session import emit_choices

    for stage in emit_choices()[1:-4]:
        assert re.search(rf"^  {re.escape(stage)}:$", res.stdout, re.M), stage
    for name in ("qc-linalg-cleanup", "qc-bufferize", "qc-lower-to-llvm"):
        assert re.search(rf"^    {name}", res.stdout, re.M), name


def test_print_pipeline_needs_no_model():
    # --print-pipeline only describes the target's pipeline.
    assert ok(qc("compile", "unused.onnx", "--print-pipeline")).stdout.startswith("pipeline ")


def test_input_shape_binds_dynamic_dim(tmp_path):
    model = write_text_model(tmp_path / "dyn.onnxtxt",
                             "agraph (float[N,3] x) => (float[N,3] y) {\n  y = Tanh(x)\n}")
    lib = tmp_path / "dyn.so"
    ok(qc("compile", model, "--input-shape", "x=5,3", "-o", lib, "-q"))
    x = np.random.default_rng(1).standard_normal((5, 3)).astype(F32)
    np.savez(tmp_path / "in.npz", x=x)
    ok(qc("run", lib, "--inputs", tmp_path / "in.npz", "-o", tmp_path / "out.npz"))
    np.testing.assert_allclose(np.load(tmp_path / "out.npz")["y"], np.tanh(x), rtol=1e-5, atol=1e-6)


def test_input_shape_in_ir(tmp_path):
    model = write_text_model(tmp_path / "dyn.onnxtxt",
                             "agraph (float[N,C] x) => (float[N,C] y) {\n  y = Relu(x)\n}")
    res = ok(qc("compile", model, "--input-shape", "x=7,2", "--emit", "input"))
    assert "func.func @qc_model(%arg0: tensor<7x2xf32>) -> tensor<7x2xf32>" in res.stdout


# --- run and bench --------------------------------------------------------------

def test_run_prints_summaries(work):
    res = ok(qc("run", work / "m.so"))
    lines = res.stdout.strip().splitlines()
    assert len(lines) == 2
    num = r"-?[\d.e+-]+|inf|nan"
    for line, name in zip(lines, ("y", "z")):
        assert re.fullmatch(rf"{name}: float32\[2, 4\]  min=({num}) max=({num}) mean=({num})  first=\[.*\]", line), line
    assert float(re.search(r"min=(\S+)", lines[0]).group(1)) >= 0  # relu output


def test_run_random_inputs_are_reproducible(work):
    assert ok(qc("run", work / "m.so")).stdout == ok(qc("run", work / "m.so")).stdout


def test_run_saves_outputs_matching_onnxruntime(work, tmp_path):
    x = np.random.default_rng(2).standard_normal((2, 3)).astype(F32)
    np.savez(tmp_path / "in.npz", x=x)
    res = ok(qc("run", work / "m.so", "--inputs", tmp_path / "in.npz", "-o", tmp_path / "out.npz"))
    assert "qc: saved 2 output(s)" in res.stderr
    got = np.load(tmp_path / "out.npz")
    assert sorted(got.files) == ["y", "z"]  # by ONNX output name
    want = ort_run(onnx.load(work / "m.onnx"), {"x": x})
    for name in ("y", "z"):
        assert got[name].dtype == want[name].dtype and got[name].shape == want[name].shape
        np.testing.assert_allclose(got[name], want[name], rtol=1e-5, atol=1e-6)


def test_run_single_npy_feeds_single_input(work, tmp_path):
    x = np.full((2, 3), 0.5, F32)
    np.save(tmp_path / "x.npy", x)
    ok(qc("run", work / "m.so", "--inputs", tmp_path / "x.npy", "-o", tmp_path / "out.npz"))
    want = ort_run(onnx.load(work / "m.onnx"), {"x": x})
    np.testing.assert_allclose(np.load(tmp_path / "out.npz")["y"], want["y"], rtol=1e-5, atol=1e-6)


def test_bench(work, tmp_path):
    np.savez(tmp_path / "in.npz", x=np.ones((2, 3), F32))
    res = ok(qc("bench", work / "m.so", "--runs", 3, "--warmup", 2, "--inputs", tmp_path / "in.npz"))
    assert re.fullmatch(r".*m\.so: median [\d.]+ ms  min [\d.]+ ms  \(3 runs, 2 warm-up, 1 thread\)\s*", res.stdout)


def test_bench_defaults(work):
    assert "(50 runs, 5 warm-up" in ok(qc("bench", work / "m.so")).stdout


# --- opt and targets -------------------------------------------------------------

MLIR = """func.func @f(%a: f32) -> (f32, f32) {
  %x = arith.addf %a, %a : f32
  %y = arith.addf %a, %a : f32
  return %x, %y : f32, f32
}
"""


def test_opt_file_to_file(tmp_path):
    (tmp_path / "in.mlir").write_text(MLIR)
    ok(qc("opt", tmp_path / "in.mlir", "-p", "cse", "-o", tmp_path / "out.mlir"))
    assert (tmp_path / "out.mlir").read_text().count("arith.addf") == 1


def test_opt_stdin():
    res = ok(qc("opt", "-p", "qc-linalg-cleanup", stdin=MLIR))
    assert res.stdout.count("arith.addf") == 1  # the cleanup runs cse


def test_opt_list_passes():
    res = ok(qc("opt", "--list-passes"))
    names = [line.split()[0] for line in res.stdout.strip().splitlines()]
    assert names == sorted(names)
    assert {"qc-bufferize", "qc-linalg-cleanup", "qc-lower-to-affine", "qc-lower-to-scf",
            "qc-lower-to-llvm"} <= set(names)


def test_targets():
    res = ok(qc("targets"))
    host = next(line.split() for line in res.stdout.splitlines() if line.startswith("host "))
    assert host[1].startswith("x86_64-")


def test_target_cpu_name_implies_its_features():
    """TRIPLE:CPU takes the features qc's passes read from the CPU name: its
    vector width and its 8-bit dot products (else SSE tiles, no vpdpbusd)."""
    from qc.targets import resolve

    spr = resolve("x86_64-unknown-linux-gnu:sapphirerapids")
    assert spr.vector_bits == 512 and spr.vector_registers == 32
    assert {"+avx512bw", "+avx512vnni", "+avx512vbmi", "+avxvnni"} <= spr.feature_set
    cascade = resolve("x86_64-unknown-linux-gnu:cascadelake")
    assert "+avx512vnni" in cascade.feature_set and "+avx512vbmi" not in cascade.feature_set
    assert resolve("x86_64-unknown-linux-gnu:znver3").vector_bits == 256
    assert resolve("x86_64-unknown-linux-gnu:alderlake").feature_set == {"+avx", "+avx2", "+fma", "+avxvnni"}
    assert "+dotprod" in resolve("aarch64-unknown-linux-gnu:neoverse-n1").feature_set
    # a CPU qc has no entry for keeps only what the target string says
    assert resolve("x86_64-unknown-linux-gnu:k8").vector_bits == 128
    # features the name implies and the string repeats appear once
    assert resolve("aarch64-dotprod").features == "+neon,+dotprod"
    assert resolve("x86_64-unknown-linux-gnu:skylake-avx512:+avx512vnni").features.count("+avx512vnni") == 1


# --- compile errors ----------------------------------------------------------------

def test_error_missing_file(tmp_path):
    error_line(qc("compile", tmp_path / "nope.onnx", "-q"), r"nope\.onnx: no such file$")


def test_error_directory(tmp_path):
    error_line(qc("compile", tmp_path, "-q", cwd=tmp_path), r"is a directory, expected an \.onnx file")


def test_error_empty_file(tmp_path):
    (tmp_path / "e.onnx").write_bytes(b"")
    error_line(qc("compile", tmp_path / "e.onnx", "-q"), r"e\.onnx: file is empty")


def test_error_truncated_onnx(work, tmp_path):
    data = (work / "m.onnx").read_bytes()
    (tmp_path / "half.onnx").write_bytes(data[: len(data) // 2])
    error_line(qc("compile", tmp_path / "half.onnx", "-q"), r"half\.onnx: not a valid ONNX file \(truncated")


def test_error_garbage_bytes(tmp_path):
    (tmp_path / "g.onnx").write_bytes(bytes(range(256)) * 8)
    error_line(qc("compile", tmp_path / "g.onnx", "-q"), r"g\.onnx: not a valid ONNX file")


def test_error_malformed_onnxtxt(tmp_path):
    model = write_text_model(tmp_path / "bad.onnxtxt", "agraph (float[2] x) => (float[2] y) {\n  y = Relu(x\n}")
    error_line(qc("compile", model, "-q"), r"bad\.onnxtxt: not a valid ONNX text model: .*ParseError")


def test_error_checker(tmp_path):
    model = write_text_model(tmp_path / "c.onnxtxt", "agraph (float[2] x) => (float[2] y) {\n  y = Relu(x, x)\n}")
    error_line(qc("compile", model, "-q"), r"model is not valid ONNX: .*Relu.*input size 2")


def test_error_unsupported_op(tmp_path):
    # Unique: an op qc does not import (its output shape depends on the data).
    model = write_text_model(tmp_path / "u.onnxtxt",
                             "agraph (float[6] x) => (float[6] y) {\n"
                             "  y = Unique <sorted = 0> (x)\n}")
    # The text format cannot name nodes: give the node a name in the proto.
    proto = onnx.parser.parse_model((tmp_path / "u.onnxtxt").read_text())
    proto.graph.node[0].name = "head/unique"
    onnx.save(proto, tmp_path / "u.onnx")
    line = error_line(qc("compile", tmp_path / "u.onnx", "-q"),
                      r"node 'head/unique' \(Unique\): op type is not supported; supported: ")
    supported = line.split("supported: ", 1)[1].split(", ")
    assert {"Add", "Gemm", "MatMul", "Relu", "Softmax", "Transpose"} <= set(supported)
    assert supported == sorted(supported)


def test_error_unsupported_dtype(tmp_path):
    model = write_text_model(tmp_path / "bf.onnxtxt",
                             "agraph (bfloat16[2] x) => (bfloat16[2] y) {\n  y = Relu(x)\n}")
    error_line(qc("compile", model, "-q"), r"input 'x' has element type BFLOAT16, which qc does not support")


def test_error_unsupported_dtype_in_op(tmp_path):
    model = write_text_model(tmp_path / "f16.onnxtxt",
                             "agraph (float16[2] x, float16[2] z) => (float16[2] y) {\n  y = Add(x, z)\n}")
    error_line(qc("compile", model, "-q"), r"\(Add\): element type float16 is not supported; supported: ")


@pytest.fixture
def dyn_model(tmp_path) -> Path:
    return write_text_model(tmp_path / "dyn.onnxtxt", "agraph (float[N,3] x) => (float[N,3] y) {\n  y = Relu(x)\n}")


def test_error_dynamic_dim(dyn_model):
    error_line(qc("compile", dyn_model, "-q"),
               r"input 'x' has a dynamic dim 0 \('N'\); bind it with --input-shape x=D0,D1,\.\.\.")


@pytest.mark.parametrize("value,pattern", [
    ("z=2,3", r"--input-shape: model has no input 'z'; inputs: x$"),
    ("x=2", r"--input-shape x: model input has rank 2, got 1 dims"),
    ("x=2,3,4", r"--input-shape x: model input has rank 2, got 3 dims"),
    ("x=a,3", r"--input-shape 'x=a,3': dims must be integers"),
    ("x=2.5,3", r"--input-shape 'x=2\.5,3': dims must be integers"),
    ("x=0,3", r"--input-shape 'x=0,3': dims must be positive"),
    ("2,3", r"--input-shape '2,3': expected NAME=D0,D1,\.\.\."),
], ids=["unknown-name", "rank-low", "rank-high", "non-integer", "float", "zero", "no-name"])
def test_error_input_shape(dyn_model, value, pattern):
    error_line(qc("compile", dyn_model, "--input-shape", value, "-q"), pattern)


def test_error_bad_emit(work):
    line = error_line(qc("compile", work / "m.onnx", "--emit", "nope"), r"unknown --emit stage 'nope'; stages: ")
    assert "input, " in line and line.endswith("asm, obj, so")


@pytest.mark.parametrize("emit", ["so", "obj", "llvm-ir"])
def test_error_output_dir_missing(work, tmp_path, emit):
    out = tmp_path / "no" / "such" / "m.out"
    error_line(qc("compile", work / "m.onnx", "--emit", emit, "-o", out), rf"-o {re.escape(str(out))}: directory .* does not exist")


def test_error_output_is_directory(work, tmp_path):
    error_line(qc("compile", work / "m.onnx", "-o", tmp_path), r"is a directory; give a file name")


def test_error_output_on_readonly_filesystem(work):
    # /proc refuses new files even for root.
    error_line(qc("compile", work / "m.onnx", "-o", "/proc/qc-test.so"), r"-o /proc/qc-test\.so: cannot write to /proc")


def test_error_dump_ir_is_file(work, tmp_path):
    error_line(qc("compile", work / "m.onnx", "-o", tmp_path / "x.so", "--dump-ir", work / "m.onnx"),
               r"--dump-ir .*m\.onnx: exists and is not a directory")


def test_error_unknown_target(work):
    error_line(qc("compile", work / "m.onnx", "--target", "z80"), r"unknown target 'z80'; targets: host")


def test_debug_shows_traceback(tmp_path):
    for res in (qc("compile", tmp_path / "nope.onnx", "--debug"),
                qc("compile", tmp_path / "nope.onnx", env={"QC_DEBUG": "1"})):
        assert res.returncode != 0
        assert "Traceback (most recent call last)" in res.stderr
        assert "ModelError: " in res.stderr and "no such file" in res.stderr


def test_debug_on_run(tmp_path):
    res = qc("run", tmp_path / "nope.so", "--debug")
    assert res.returncode != 0 and "Traceback" in res.stderr and "LoadError" in res.stderr


# --- run errors --------------------------------------------------------------------

def test_run_error_missing_library(tmp_path):
    error_line(qc("run", tmp_path / "nope.so"), r"nope\.so: no such file$")


def test_run_error_directory(tmp_path):
    error_line(qc("run", tmp_path), r"is a directory, expected a model library")


def test_run_error_not_elf(work):
    error_line(qc("run", work / "m.onnx"), r"m\.onnx: not a shared library \(no ELF header\)")


def test_run_error_truncated_library(work, tmp_path):
    data = (work / "m.so").read_bytes()
    (tmp_path / "half.so").write_bytes(data[: len(data) // 2])
    error_line(qc("run", tmp_path / "half.so"), r"half\.so: truncated shared library")


def test_run_error_not_a_qc_library():
    import ctypes.util

    libm = next(p for p in ("/lib/x86_64-linux-gnu/libm.so.6", "/usr/lib/x86_64-linux-gnu/libm.so.6",
                            ctypes.util.find_library("m") or "") if os.path.isfile(p))
    error_line(qc("run", libm), r"not a qc model library \(no qc_abi_version\)")


def test_run_error_object_file(work, tmp_path):
    ok(qc("compile", work / "m.onnx", "--emit", "obj", "-o", tmp_path / "m.o", "-q"))
    error_line(qc("run", tmp_path / "m.o"), r"m\.o: not a shared library \(ELF type 1\)")


@pytest.fixture(scope="module")
def two_input_lib(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("two")
    model = make_model([helper.make_node("Sub", ["a", "b"], ["y"])],
                       {"a": (F32, (2, 3)), "b": (F32, (2, 3))}, {"y": (F32, (2, 3))})
    ok(qc("compile", _save(model, d / "sub.onnx"), "-o", d / "sub.so", "-q"))
    return d / "sub.so"


def _save(model, path: Path) -> Path:
    onnx.save(model, path)
    return path


def _npz(path: Path, **arrays) -> Path:
    np.savez(path, **arrays)
    return path


def test_run_two_inputs(two_input_lib, tmp_path):
    a, b = np.arange(6, dtype=F32).reshape(2, 3), np.ones((2, 3), F32)
    ok(qc("run", two_input_lib, "--inputs", _npz(tmp_path / "in.npz", a=a, b=b), "-o", tmp_path / "o.npz"))
    np.testing.assert_array_equal(np.load(tmp_path / "o.npz")["y"], a - b)


def test_run_error_npz_missing_input(two_input_lib, tmp_path):
    feeds = _npz(tmp_path / "in.npz", a=np.ones((2, 3), F32))
    error_line(qc("run", two_input_lib, "--inputs", feeds),
               r"missing input\(s\) 'b'; model inputs: a float32\[2, 3\], b float32\[2, 3\]")


def test_run_error_npz_wrong_dtype(two_input_lib, tmp_path):
    feeds = _npz(tmp_path / "in.npz", a=np.ones((2, 3), F32), b=np.ones((2, 3), np.float64))
    error_line(qc("run", two_input_lib, "--inputs", feeds),
               r"input 'b': expected dtype float32, got float64 \(convert with \.astype\(np\.float32\)\)")


def test_run_error_npz_wrong_shape(two_input_lib, tmp_path):
    feeds = _npz(tmp_path / "in.npz", a=np.ones((3, 2), F32), b=np.ones((2, 3), F32))
    error_line(qc("run", two_input_lib, "--inputs", feeds), r"input 'a': expected shape \[2, 3\], got \[3, 2\]")


def test_run_error_npz_extra_name(two_input_lib, tmp_path):
    feeds = _npz(tmp_path / "in.npz", a=np.ones((2, 3), F32), b=np.ones((2, 3), F32), c=np.ones(1))
    error_line(qc("run", two_input_lib, "--inputs", feeds), r"unknown input\(s\) 'c'; model inputs: a ")


def test_run_error_npz_misnamed(two_input_lib, tmp_path):
    feeds = _npz(tmp_path / "in.npz", a=np.ones((2, 3), F32), B=np.ones((2, 3), F32))
    error_line(qc("run", two_input_lib, "--inputs", feeds), r"unknown input\(s\) 'B' and missing input\(s\) 'b'")


def test_run_error_inputs_not_npz(work, tmp_path):
    (tmp_path / "in.npz").write_text("x = 1, 2, 3\n")
    error_line(qc("run", work / "m.so", "--inputs", tmp_path / "in.npz"), r"in\.npz: not an \.npz or \.npy file")


def test_run_error_inputs_missing_file(work, tmp_path):
    error_line(qc("run", work / "m.so", "--inputs", tmp_path / "nope.npz"), r"--inputs .*nope\.npz: no such file")


def test_run_error_inputs_object_array(work, tmp_path):
    np.savez(tmp_path / "obj.npz", x=np.array([{"a": 1}, None], dtype=object))
    error_line(qc("run", work / "m.so", "--inputs", tmp_path / "obj.npz"), r"--inputs .*obj\.npz: cannot read: .*pickle")


def test_run_error_output_not_writable(work, tmp_path):
    out = tmp_path / "no" / "out.npz"
    res = qc("run", work / "m.so", "-o", out)
    error_line(res, r"directory .* does not exist")
    assert res.stdout == ""  # checked before the model runs


def test_bench_error_missing_library(tmp_path):
    error_line(qc("bench", tmp_path / "nope.so"), r"nope\.so: no such file$")


# --- opt errors ----------------------------------------------------------------------

def test_opt_error_missing_file(tmp_path):
    error_line(qc("opt", tmp_path / "nope.mlir"), r"nope\.mlir: no such file$")


def test_opt_error_unknown_pass(tmp_path):
    error_line(qc("opt", "-p", "qc-nope", stdin=MLIR), r"unknown qc pass 'qc-nope'; qc passes: .*qc-bufferize")


def test_opt_error_unparsable(tmp_path):
    error_line(qc("opt", stdin="func.func @f( {\n"), r"cannot parse MLIR")


def test_opt_error_bad_upstream_pass():
    error_line(qc("opt", "-p", "no-such-upstream-pass", stdin=MLIR), r"invalid pass pipeline")


def test_closed_stdout_is_not_an_error(work):
    # `qc compile --emit asm | head -1`: the reader leaves early; qc says nothing.
    proc = subprocess.Popen([QC, "compile", str(work / "m.onnx"), "--emit", "asm", "--print-constants"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    proc.stdout.close()
    _, err = proc.communicate(timeout=300)
    assert "Traceback" not in err and "error" not in err, err


def test_run_saves_awkward_output_names(tmp_path):
    # Output names that are np.savez's own parameter names, and a file name without .npz.
    nodes = [helper.make_node("Relu", ["x"], ["file"]), helper.make_node("Neg", ["x"], ["allow_pickle"])]
    model = make_model(nodes, {"x": (F32, (3,))}, {"file": (F32, (3,)), "allow_pickle": (F32, (3,))})
    ok(qc("compile", _save(model, tmp_path / "odd.onnx"), "-o", tmp_path / "odd.so", "-q"))
    x = np.array([-1.0, 0.5, 2.0], F32)
    ok(qc("run", tmp_path / "odd.so", "--inputs", _npz(tmp_path / "in.npz", x=x), "-o", tmp_path / "outputs"))
    got = np.load(tmp_path / "outputs")
    np.testing.assert_array_equal(got["file"], np.maximum(x, 0))
    np.testing.assert_array_equal(got["allow_pickle"], -x)


@pytest.mark.parametrize("args,pattern", [
    (["compile"], r"Missing argument 'MODEL'\. \(see 'qc compile --help'\)$"),
    (["frob"], r"No such command 'frob'\. \(see 'qc --help'\)$"),
    (["run", "m.so", "--fast"], r"No such option:? '?--fast'?"),
    (["bench", "m.so", "--runs", "0"], r"Invalid value for '--runs': 0 is not in the range x>=1"),
    (["bench", "m.so", "--warmup", "many"], r"Invalid value for '--warmup': 'many' is not a valid integer"),
], ids=["missing-argument", "unknown-command", "unknown-option", "runs-zero", "warmup-not-int"])
def test_usage_errors_are_one_line(args, pattern):
    error_line(qc(*args), pattern)


def test_no_command_prints_help():
    res = ok(qc())
    assert res.stdout.startswith("Usage: qc [OPTIONS] COMMAND")
