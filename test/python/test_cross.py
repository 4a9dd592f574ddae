"""Cross targets: libraries for AArch64 (NEON) and RISC-V (RVV 1.0 at VLEN 128
and 256), compiled here and run under qemu-user, against onnxruntime on this
machine.

Needs Debian `qemu-user`, `gcc-aarch64-linux-gnu` and `gcc-riscv64-linux-gnu`
(`make test` installs them). Without them these tests fail, never skip: a
cross target nobody runs is a cross target that does not work.

The register tiles are 6 x 16 on NEON and on RVV at VLEN 128 (LMUL 2), 6 x 32
on RVV at VLEN 256; the cache block is 256 deep for NR 16 and 128 for NR 32
(passes/pipelines.py). The GEMM shapes below leave row and column tails for
both, and cross the cache block.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from helpers import make_model, ort_run
from onnx import helper

import qc
from qc.runtime import LoadError, RunError, qemu

REPO = Path(__file__).resolve().parents[2]
TARGETS = ["aarch64", "riscv64-rvv128", "riscv64-rvv256"]
F32 = np.float32
TOOLS = ["qemu-aarch64", "qemu-riscv64", "aarch64-linux-gnu-gcc", "riscv64-linux-gnu-gcc"]


@pytest.fixture(autouse=True, scope="module")
def cross_tools():
    missing = [t for t in TOOLS if shutil.which(t) is None]
    if missing:
        pytest.fail(f"cross tests need {', '.join(missing)}: run `make test` (it installs them) or "
                    "apt-get install qemu-user gcc-aarch64-linux-gnu gcc-riscv64-linux-gnu", pytrace=False)


def compile_for(model, tmp_path, target: str) -> str:
    lib = str(tmp_path / f"model-{target}.so")
    qc.compile(model, lib, target=target)
    return lib


def check_cross(model, feeds, tmp_path, target, rtol=1e-5, atol=1e-6):
    """Compiles for `target`, runs under qemu, compares with onnxruntime here."""
    lib = compile_for(model, tmp_path, target)
    with qc.load(lib) as m:
        # The library really is foreign and runs under the emulator for its ISA.
        assert isinstance(m, qemu.QemuModel)
        assert m.emulator.arch == target.split("-")[0]
        if target.startswith("riscv64-rvv"):
            assert f"v=true,vext_spec=v1.0,vlen={target[-3:]}" in m.emulator.cpu
        got = m.run(feeds)
    want = ort_run(model, feeds)
    assert set(got) == set(want)
    for name in want:
        assert got[name].dtype == want[name].dtype and got[name].shape == want[name].shape, name
        np.testing.assert_allclose(got[name], want[name], rtol=rtol, atol=atol, err_msg=f"{target}: {name}")


def gemm_tol(k):
    # Summation order differs from onnxruntime's; the error grows like sqrt(k).
    return dict(rtol=1e-4, atol=1e-5 * np.sqrt(k))


# --- the example models -----------------------------------------------------------

def _examples():
    spec = importlib.util.spec_from_file_location("make_models", REPO / "examples" / "make_models.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.EXAMPLES


EXAMPLES = _examples()


@pytest.mark.parametrize("target", [*TARGETS, "aarch64-dotprod"])
@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_example_model(name, target, tmp_path):
    model, feeds = EXAMPLES[name](np.random.default_rng(list(EXAMPLES).index(name)))  # make_models.py's seeds
    check_cross(model, feeds, tmp_path, target, **gemm_tol(512))


# --- op numerics --------------------------------------------------------------------

def matmul_packed(rng):
    # M 13 = 2 x 6 + 1 rows, N 35 = 2 x 16 + 3 (NR 16) = 32 + 3 (NR 32): both tails; B is a weight, packed.
    a, b = rng.standard_normal((13, 37)).astype(F32), rng.standard_normal((37, 35)).astype(F32)
    model = make_model([helper.make_node("MatMul", ["a", "b"], ["c"])], {"a": (F32, [13, 37])},
                       {"c": (F32, [13, 35])}, {"b": b})
    return model, {"a": a}, gemm_tol(37)


def matmul_deep(rng):
    # K 300 crosses the 256- and 128-deep cache blocks; run-time B read in place with masked tails.
    a, b = rng.standard_normal((7, 300)).astype(F32), rng.standard_normal((300, 19)).astype(F32)
    model = make_model([helper.make_node("MatMul", ["a", "b"], ["c"])],
                       {"a": (F32, [7, 300]), "b": (F32, [300, 19])}, {"c": (F32, [7, 19])})
    return model, {"a": a, "b": b}, gemm_tol(300)


def matmul_runtime_packed(rng):
    # M 130 >= 128 rows: a run-time B is packed into panels first; N 33 leaves a partial panel.
    a, b = rng.standard_normal((130, 20)).astype(F32), rng.standard_normal((20, 33)).astype(F32)
    model = make_model([helper.make_node("MatMul", ["a", "b"], ["c"])],
                       {"a": (F32, [130, 20]), "b": (F32, [20, 33])}, {"c": (F32, [130, 33])})
    return model, {"a": a, "b": b}, gemm_tol(20)


def batch_matmul(rng):
    # Batched: the kernel runs on subviews, one batch at a time.
    a, b = rng.standard_normal((3, 7, 33)).astype(F32), rng.standard_normal((3, 33, 9)).astype(F32)
    model = make_model([helper.make_node("MatMul", ["a", "b"], ["c"])],
                       {"a": (F32, [3, 7, 33]), "b": (F32, [3, 33, 9])}, {"c": (F32, [3, 7, 9])})
    return model, {"a": a, "b": b}, gemm_tol(33)


def gemm_bias(rng):
    # Gemm with transB, alpha and a bias row: the bias is the accumulator's start.
    w, bias = rng.standard_normal((17, 70)).astype(F32), rng.standard_normal(17).astype(F32)
    model = make_model([helper.make_node("Gemm", ["x", "w", "bias"], ["y"], transB=1, alpha=0.5)],
                       {"x": (F32, [9, 70])}, {"y": (F32, [9, 17])}, {"w": w, "bias": bias})
    return model, {"x": rng.standard_normal((9, 70)).astype(F32)}, gemm_tol(70)


def conv(rng):
    # 3x3 conv, pads 1, stride 2 in H, with bias, on an odd 7x9 image: im2col + GEMM.
    w, bias = rng.standard_normal((5, 3, 3, 3)).astype(F32), rng.standard_normal(5).astype(F32)
    node = helper.make_node("Conv", ["x", "w", "bias"], ["y"], pads=[1, 1, 1, 1], strides=[2, 1])
    model = make_model([node], {"x": (F32, [2, 3, 7, 9])}, {"y": (F32, [2, 5, 4, 9])}, {"w": w, "bias": bias})
    return model, {"x": rng.standard_normal((2, 3, 7, 9)).astype(F32)}, gemm_tol(27)


def conv_rows(rng):
    # 3x3 conv, stride 1, output rows of 13: the panels' vectors span two
    # output rows (two masked loads per vector at every lane count).
    w = rng.standard_normal((6, 4, 3, 3)).astype(F32)
    node = helper.make_node("Conv", ["x", "w"], ["y"], pads=[1, 1, 1, 1])
    model = make_model([node], {"x": (F32, [1, 4, 11, 13])}, {"y": (F32, [1, 6, 11, 13])}, {"w": w})
    return model, {"x": rng.standard_normal((1, 4, 11, 13)).astype(F32)}, gemm_tol(36)


def elementwise(rng):
    # Broadcast [4,1,37] + [5,37], then Relu; 37 leaves a tail for every vector width.
    nodes = [helper.make_node("Add", ["a", "b"], ["s"]), helper.make_node("Relu", ["s"], ["y"])]
    model = make_model(nodes, {"a": (F32, [4, 1, 37]), "b": (F32, [5, 37])}, {"y": (F32, [4, 5, 37])})
    return model, {"a": rng.standard_normal((4, 1, 37)).astype(F32),
                   "b": rng.standard_normal((5, 37)).astype(F32)}, {}


def transcendental(rng):
    # Sigmoid, Tanh, Exp (the target's libm) and Div on 3 x 29 values.
    nodes = [helper.make_node("Sigmoid", ["x"], ["s"]), helper.make_node("Tanh", ["x"], ["t"]),
             helper.make_node("Exp", ["t"], ["e"]), helper.make_node("Div", ["s", "e"], ["y"])]
    model = make_model(nodes, {"x": (F32, [3, 29])}, {"y": (F32, [3, 29])})
    return model, {"x": rng.standard_normal((3, 29)).astype(F32)}, {}


def softmax(rng):
    # Softmax over the last axis of 37 (max, exp, sum, divide), 2 x 5 rows.
    model = make_model([helper.make_node("Softmax", ["x"], ["y"], axis=-1)],
                       {"x": (F32, [2, 5, 37])}, {"y": (F32, [2, 5, 37])})
    return model, {"x": (3 * rng.standard_normal((2, 5, 37))).astype(F32)}, {}


OPS = [matmul_packed, matmul_deep, matmul_runtime_packed, batch_matmul, gemm_bias, conv, conv_rows, elementwise,
       transcendental, softmax]


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("case", OPS, ids=lambda f: f.__name__)
def test_op(case, target, tmp_path):
    model, feeds, tol = case(np.random.default_rng(OPS.index(case)))
    check_cross(model, feeds, tmp_path, target, **tol)


# --- the vector unit, the recorded VLEN, the runner ----------------------------------

def _matmul_model():
    model, feeds, _ = matmul_packed(np.random.default_rng(0))
    return model, feeds


def test_rvv_library_needs_the_vector_unit(tmp_path):
    """Without `v=true` qemu has no vector unit: the first RVV instruction is
    SIGILL. Proof that the vector path is the one that runs."""
    model, feeds = _matmul_model()
    lib = compile_for(model, tmp_path, "riscv64-rvv128")
    emulator = qemu.emulator_for(lib, "riscv64", "x86_64")
    assert emulator.cpu == "rv64,v=true,vext_spec=v1.0,vlen=128"
    with qemu.QemuModel(lib, dataclasses.replace(emulator, cpu="rv64,v=false")) as m:
        with pytest.raises(RunError, match="Illegal instruction"):
            m.run(feeds)


@pytest.mark.parametrize("target,vlen", [("riscv64-rvv128", "128"), ("riscv64-rvv256", "256")])
def test_vlen_is_recorded_in_the_library(target, vlen, tmp_path):
    model, _ = _matmul_model()
    lib = compile_for(model, tmp_path, target)
    assert qemu.target_record(lib)["vlen"] == vlen
    # The runner prints the same record, read through qc_target_info() inside the library.
    emulator = qemu.emulator_for(lib, "riscv64", "x86_64")
    out = subprocess.run([*emulator.command(), qemu.runner("riscv64"), lib, "--info"],
                         capture_output=True, text=True, check=True).stdout
    assert "triple riscv64-unknown-linux-gnu\ntarget triple=riscv64-unknown-linux-gnu " in out
    assert f"+zvl{vlen}b vlen={vlen}\n" in out
    assert "input 1 2 13 37 a\noutput 1 2 13 35 c\nend\n" in out


def test_runner_file_mode(tmp_path):
    """qc_runner LIB --run IN... -- OUT...: raw files in and out, no Python inside."""
    model, feeds = _matmul_model()
    lib = compile_for(model, tmp_path, "aarch64")
    (tmp_path / "a.bin").write_bytes(feeds["a"].tobytes())
    emulator = qemu.emulator_for(lib, "aarch64", "x86_64")
    subprocess.run([*emulator.command(), qemu.runner("aarch64"), lib, "--run", str(tmp_path / "a.bin"), "--",
                    str(tmp_path / "c.bin")], check=True)
    got = np.fromfile(tmp_path / "c.bin", F32).reshape(13, 35)
    np.testing.assert_allclose(got, ort_run(model, feeds)["c"], **gemm_tol(37))


def test_run_errors_come_back(tmp_path):
    """Wrong inputs are refused before they reach the emulated process; the model keeps working."""
    model, feeds = _matmul_model()
    with qc.load(compile_for(model, tmp_path, "riscv64-rvv256")) as m:
        with pytest.raises(qc.runtime.InputError, match="expected shape"):
            m.run({"a": np.zeros((13, 36), F32)})
        assert m.run(feeds)["c"].shape == (13, 35)
        assert "under qemu-riscv64" in repr(m) and m.target_triple == "riscv64-unknown-linux-gnu"
    with pytest.raises(RunError, match="closed"):
        m.run(feeds)


def test_missing_qemu_is_a_clear_load_error(tmp_path, monkeypatch):
    model, _ = _matmul_model()
    lib = compile_for(model, tmp_path, "aarch64")
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(LoadError, match=r"built for aarch64, this machine is x86_64, and qemu-aarch64 is missing "
                                        r".*apt-get install qemu-user gcc-aarch64-linux-gnu"):
        qc.load(lib)


def test_object_links_into_a_c_application(tmp_path):
    """--emit obj + the header: one object that the target's own toolchain links into a C program."""
    model, feeds = _matmul_model()
    obj = tmp_path / "mm.o"
    qc.compile(model, str(obj), emit="obj", target="aarch64")
    app = tmp_path / "app.c"
    app.write_text(
        '#include <stdio.h>\n#include "mm.h"\n'
        "int main(int argc, char **argv) {\n"
        "  static float a[13 * 37], c[13 * 35];\n"
        '  FILE *f = fopen(argv[1], "rb"); if (fread(a, 4, 13 * 37, f) != 13 * 37) return 2; fclose(f);\n'
        "  qc_context *ctx = qc_context_create();\n"
        "  const void *in[] = {a}; void *out[] = {c};\n"
        "  if (qc_run(ctx, in, NULL, out, NULL) != QC_OK) return 1;\n"
        '  f = fopen(argv[2], "wb"); fwrite(c, 4, 13 * 35, f); fclose(f);\n'
        "  qc_context_destroy(ctx);\n  return 0;\n}\n")
    exe = tmp_path / "app"
    subprocess.run(["aarch64-linux-gnu-gcc", "-O2", "-o", str(exe), str(app), str(obj), "-lm"], check=True)
    (tmp_path / "a.bin").write_bytes(feeds["a"].tobytes())
    subprocess.run(["qemu-aarch64", "-L", "/usr/aarch64-linux-gnu", str(exe), str(tmp_path / "a.bin"),
                    str(tmp_path / "c.bin")], check=True)
    got = np.fromfile(tmp_path / "c.bin", F32).reshape(13, 35)
    np.testing.assert_allclose(got, ort_run(model, feeds)["c"], **gemm_tol(37))


# --- the command line -----------------------------------------------------------------

QC = str(Path(sys.executable).parent / "qc")


def test_cli_run_and_bench_say_they_emulate(tmp_path):
    model, feeds = _matmul_model()
    onnx.save(model, tmp_path / "mm.onnx")
    np.savez(tmp_path / "in.npz", **feeds)
    lib = str(tmp_path / "mm.so")
    subprocess.run([QC, "compile", "-q", str(tmp_path / "mm.onnx"), "-o", lib, "--target", "riscv64-rvv256"],
                   check=True)
    run = subprocess.run([QC, "run", lib, "--inputs", str(tmp_path / "in.npz"), "-o", str(tmp_path / "out.npz")],
                         capture_output=True, text=True, check=True)
    assert "qc: running under qemu-riscv64 -L /usr/riscv64-linux-gnu -cpu rv64,v=true,vext_spec=v1.0,vlen=256" \
        in run.stderr
    np.testing.assert_allclose(np.load(tmp_path / "out.npz")["c"], ort_run(model, feeds)["c"], **gemm_tol(37))
    bench = subprocess.run([QC, "bench", lib, "--runs", "3", "--warmup", "1"], capture_output=True, text=True,
                           check=True)
    assert "running under qemu-riscv64" in bench.stderr
    assert "(3 runs, 1 warm-up, 1 thread, emulated time under qemu)" in bench.stdout


def test_cli_targets_lists_the_presets():
    out = subprocess.run([QC, "targets"], capture_output=True, text=True, check=True).stdout
    rows = {line.split()[0]: line for line in out.splitlines()}
    for name, triple, vectors in [("x86-64-v3", "x86_64-unknown-linux-gnu", "16 x 256-bit"),
                                  ("x86-64-v4", "x86_64-unknown-linux-gnu", "32 x 512-bit"),
                                  ("x86-64-v3-vnni", "x86_64-unknown-linux-gnu", "16 x 256-bit"),
                                  ("x86-64-v4-vnni", "x86_64-unknown-linux-gnu", "32 x 512-bit"),
                                  ("x86-64-v4-amx", "x86_64-unknown-linux-gnu", "32 x 512-bit"),
                                  ("aarch64", "aarch64-unknown-linux-gnu", "32 x 128-bit"),
                                  ("aarch64-dotprod", "aarch64-unknown-linux-gnu", "32 x 128-bit"),
                                  ("riscv64-rvv128", "riscv64-unknown-linux-gnu", "32 x 128-bit"),
                                  ("riscv64-rvv256", "riscv64-unknown-linux-gnu", "32 x 256-bit")]:
        assert triple in rows[name] and vectors in rows[name], rows[name]
    assert "+avx512vnni" in rows["x86-64-v4-vnni"] and "+dotprod" in rows["aarch64-dotprod"]
    assert "+avxvnni" in rows["x86-64-v3-vnni"]
    assert "+amx-int8" in rows["x86-64-v4-amx"] and "+amx-tile" in rows["x86-64-v4-amx"]
    assert "+v,+zvl256b" in rows["riscv64-rvv256"]


def test_cli_unknown_target_lists_the_presets(tmp_path):
    model, _ = _matmul_model()
    onnx.save(model, tmp_path / "mm.onnx")
    res = subprocess.run([QC, "compile", str(tmp_path / "mm.onnx"), "--target", "riscv64-rvv512"],
                         capture_output=True, text=True)
    assert res.returncode == 1
    assert res.stderr == ("qc: error: unknown target 'riscv64-rvv512'; targets: host, x86-64-v3, x86-64-v4, "
                          "x86-64-v3-vnni, x86-64-v4-vnni, x86-64-v4-amx, aarch64, aarch64-dotprod, riscv64-rvv128, riscv64-rvv256, "
                          "or TRIPLE[:CPU[:FEATURES]]\n")


def test_raw_triple_with_vlen(tmp_path):
    """A raw TRIPLE:CPU:FEATURES target; its +zvl512b becomes the recorded VLEN and qemu's."""
    model, feeds = _matmul_model()
    lib = compile_for(model, tmp_path, "riscv64-unknown-linux-gnu:generic-rv64:+v,+zvl512b")
    with qc.load(lib) as m:
        assert m.emulator.cpu.endswith("vlen=512")
        np.testing.assert_allclose(m.run(feeds)["c"], ort_run(model, feeds)["c"], **gemm_tol(37))



def test_avx512_vnni_preset_generates_zmm_fmas():
    """AVX-512 cannot run here (qemu 7.2 does not emulate it): the preset is
    checked by its assembly, 10x2 zmm FMAs per k step of the GEMM loop
    (test/codegen/gemm_x86_64_v4.onnxtxt does the same for x86-64-v4)."""
    model, _ = _matmul_model()
    asm = qc.compile(model, emit="asm", target="x86-64-v4-vnni")
    loop = asm[:asm.index("jne")].rsplit(".LBB", 1)[1]  # the first loop: the GEMM's k loop
    assert loop.count("vfmadd231ps") == 20 and loop.count("%zmm") >= 60 and "%rsp" not in loop, loop
