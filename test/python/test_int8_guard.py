"""The int8 speed guard of `qc compile --report` (compiler/int8_guard.py):
the layers it finds in a quantized model, their multiply-add and output
counts against numpy's arithmetic on the shapes, the estimate's direction
for the layers it must flag (a 1x1 conv with 4 input channels: the
requantization costs more than the products save) and must not (a 3x3 conv
with 64), and what the command line prints.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
from helpers import cpu_flags, make_model
from onnx import helper

from qc import int8_guard
from qc.targets import resolve
from qc.frontends.onnx.importer import import_model
from qc.mlir import ir, new_context

F32, U8, I8 = np.float32, np.uint8, np.int8
QC = str(Path(sys.executable).parent / "qc")


def qlinear_conv(c: int, m: int, k: int, hw: int, group: int = 1, stride: int = 1) -> onnx.ModelProto:
    rng = np.random.default_rng(c * 100 + k)
    inits = {"xs": np.array(0.05, F32), "xz": np.array(128, U8), "w": rng.integers(-128, 128, (m, c // group, k, k),
             dtype=I8), "ws": np.array(0.01, F32), "wz": np.array(0, I8), "ys": np.array(0.5, F32),
             "yz": np.array(128, U8)}
    node = helper.make_node("QLinearConv", ["x", "xs", "xz", "w", "ws", "wz", "ys", "yz"], ["y"], name="thin",
                            pads=[k // 2] * 4, group=group, strides=[stride] * 2)
    oh = (hw - 1) // stride + 1
    return make_model([node], {"x": (U8, [1, c, hw, hw])}, {"y": (U8, [1, m, oh, oh])}, inits, opset=13)


def guard_layers(model):
    with new_context(), ir.Location.unknown():
        return int8_guard.layers(import_model(model).model)


def test_layers_counts():
    (conv,) = guard_layers(qlinear_conv(64, 64, 3, 14))
    assert (conv.kind, conv.macs, conv.outputs, conv.depthwise) == ("conv 3x3", 64 * 14 * 14 * 64 * 9, 64 * 196, False)
    (dw,) = guard_layers(qlinear_conv(8, 8, 3, 10, group=8))
    assert (dw.kind, dw.macs, dw.outputs, dw.depthwise) == ("depthwise 3x3", 8 * 100 * 9, 800, True)


def test_estimate_direction():
    avx2 = int8_guard.RATES["avx2"]
    (thin,) = guard_layers(qlinear_conv(4, 64, 1, 14))  # 4 multiply-adds per output
    (wide,) = guard_layers(qlinear_conv(64, 64, 3, 7))  # 576 per output; 16 tiles: fp32 stays direct
    int8, fp32 = thin.cycles(avx2)
    assert int8 > fp32  # the requantization dominates
    int8, fp32 = wide.cycles(avx2)
    assert not wide.winograd
    assert fp32 / int8 > 1.5  # the products dominate: int8's kernel does ~1.8x the multiply-adds per cycle
    # 14x14 (16 tiles of 4x4): fp32 runs it as Winograd F(4x4, 3x3), 12x12
    # (9 of 4x4, 36 of 2x2) as F(2x2, 3x3), WINOGRAD_SPEEDUP[tile] times fewer cycles.
    for hw, tile in ((14, 4), (12, 2)):
        (wino,) = guard_layers(qlinear_conv(64, 64, 3, hw))
        assert wino.winograd == tile
        assert wino.cycles(avx2)[1] * int8_guard.WINOGRAD_SPEEDUP[tile] == wino.macs / avx2.fp32_gemm
    (strided,) = guard_layers(qlinear_conv(64, 64, 3, 14, stride=2))
    assert not strided.winograd
    assert int8_guard.rates_for(resolve("x86-64-v3")) is avx2
    assert int8_guard.rates_for(resolve("x86-64-v4-vnni")) is int8_guard.RATES["avx512-vnni"]
    vbmi = resolve("x86_64-unknown-linux-gnu:x86-64-v4:+avx512vnni,+avx512vbmi")
    assert int8_guard.rates_for(vbmi) is int8_guard.RATES["avx512-vnni-vbmi"]
    assert int8_guard.rates_for(resolve("x86-64-v3-vnni")) is int8_guard.RATES["avx-vnni"]
    # With AMX-INT8, a conv of whole 16-channel tiles runs at the tile kernel's rate; 24 channels do not.
    amx = int8_guard.rates_for(resolve("x86-64-v4-amx"))
    assert amx is int8_guard.RATES["avx512-vnni-amx"] and amx.int8_tiles > amx.int8_gemm
    (odd,) = guard_layers(qlinear_conv(64, 24, 3, 7))
    assert wide.tiles and not odd.tiles
    assert wide.cycles(amx)[0] == wide.macs / amx.int8_tiles + wide.outputs * amx.requant
    assert odd.cycles(amx)[0] == odd.macs / amx.int8_gemm + odd.outputs * amx.requant
    assert int8_guard.rates_for(resolve("aarch64-dotprod")) is int8_guard.RATES["neon-dotprod"]
    assert int8_guard.rates_for(resolve("aarch64")) is int8_guard.RATES["neon"]
    assert int8_guard.rates_for(resolve("riscv64-rvv256")).int8_gemm == 2 * int8_guard.RATES["rvv"].int8_gemm


def test_report_prints_table_and_warning(tmp_path):
    thin = tmp_path / "thin.onnx"
    onnx.save(qlinear_conv(4, 64, 1, 14), thin)
    res = subprocess.run([QC, "compile", str(thin), "-o", str(tmp_path / "thin.so"), "--report", "-q"],
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert "int8 layers: estimated cycles as int8 and as fp32" in res.stdout
    row = next(line for line in res.stdout.splitlines() if line.startswith("thin "))
    assert "conv 1x1" in row and "<- int8 slower" in row
    assert "qc: warning: int8 is estimated slower than fp32 for 1 layer(s): thin (conv 1x1" in res.stderr


def test_report_without_int8_layers(tmp_path):
    node = helper.make_node("Relu", ["x"], ["y"])
    path = tmp_path / "float.onnx"
    onnx.save(make_model([node], {"x": (F32, [2, 3])}, {"y": (F32, [2, 3])}), path)
    res = subprocess.run([QC, "compile", str(path), "-o", str(tmp_path / "f.so"), "--report", "-q"],
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert "int8 layers" not in res.stdout and "warning" not in res.stderr


def test_int8_benchmark_holds_this_cpu_to_its_target():
    # benchmarks/int8.py's target follows the CPU's 8-bit dot products, here
    # read from the kernel's flags rather than from LLVM's host features.
    import importlib.util

    spec = importlib.util.spec_from_file_location("bench_int8", Path(__file__).parents[2] / "benchmarks" / "int8.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    dot = cpu_flags() & {"avx512_vnni", "avx_vnni", "asimddp"}
    goal, why = bench.int8_target()
    assert goal == (2.5 if dot else 1.25), (dot, why)
