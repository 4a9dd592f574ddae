"""qc-narrow-gemm: convolutions with few output pixels (7 x 7) and many
channels run as the transposed GEMM, pixels as rows and channels as
columns, against onnxruntime. Each case names the kernel it must produce
(qc_sgemm_49x<channels>x<depth>: 49 rows), so a test fails if the rewrite
stops happening, and compares the numbers, so it fails if it is wrong."""

from __future__ import annotations

import re

import numpy as np
import pytest
from helpers import check_against_ort, host_tile, make_model
from onnx import helper

import qc
from qc.passes.lower_gemm import row_split
from qc.passes.narrow_gemm import wasteful

F32 = np.float32


def _conv(c, f, hw, k, stride=1, pad=0, act=None, residual=False, bias=True, seed=0):
    rng = np.random.default_rng(seed)
    inits = {"w": (rng.standard_normal((f, c, k, k)) * (1.0 / np.sqrt(c * k * k))).astype(F32)}
    ins = ["x", "w"]
    if bias:
        inits["b"] = rng.standard_normal(f).astype(F32)
        ins.append("b")
    nodes = [helper.make_node("Conv", ins, ["c"], kernel_shape=[k, k], strides=[stride] * 2, pads=[pad] * 4)]
    last = "c"
    oh = (hw + 2 * pad - k) // stride + 1
    if residual:
        inits["r"] = rng.standard_normal((1, f, oh, oh)).astype(F32)
        nodes.append(helper.make_node("Add", [last, "r"], ["s"]))
        last = "s"
    if act == "relu":
        nodes.append(helper.make_node("Relu", [last], ["y"]))
    elif act == "clip":
        inits.update(lo=np.array(0, F32), hi=np.array(6, F32))
        nodes.append(helper.make_node("Clip", [last, "lo", "hi"], ["y"]))
    else:
        nodes.append(helper.make_node("Identity", [last], ["y"]))
    model = make_model(nodes, {"x": (F32, [1, c, hw, hw])}, {"y": (F32, [1, f, oh, oh])}, inits)
    return model, rng.standard_normal((1, c, hw, hw)).astype(F32)


CASES = {
    # name: (c, f, hw, k, stride, pad, act, residual, bias, kernel suffix)
    "1x1_bias_relu": (64, 128, 7, 1, 1, 0, "relu", False, True, "_ebcmax0"),
    "1x1_no_bias": (32, 64, 7, 1, 1, 0, None, False, False, "_ez"),
    "1x1_residual_relu": (64, 64, 7, 1, 1, 0, "relu", True, True, "_ebc"),
    "1x1_stride2": (48, 80, 13, 1, 2, 0, "clip", False, True, "_ebcmax0min6"),
    "3x3_pad1_relu": (24, 64, 7, 3, 1, 1, "relu", False, True, "_ebcmax0"),
    "3x3_stride2": (16, 96, 13, 3, 2, 1, "relu", False, True, "_ebcmax0"),
    "5x5_5x5_output": (8, 64, 9, 5, 1, 0, None, False, True, "_ebc"),
}


@pytest.mark.parametrize("name", list(CASES))
def test_transposed_conv(name, tmp_path):
    c, f, hw, k, stride, pad, act, residual, bias, suffix = CASES[name]
    model, x = _conv(c, f, hw, k, stride, pad, act, residual, bias)
    oh = (hw + 2 * pad - k) // stride + 1
    text = qc.compile(model, emit="gemm")
    kernels = re.findall(r"call @(qc_sgemm_\w+)\(", text)
    tile = host_tile()
    # (_rows: B small enough that the threads split the rows, `row_split`)
    split = "_rows" if row_split(oh * oh, f, c * k * k, tile) else ""
    assert kernels == [f"qc_sgemm_{oh * oh}x{f}x{c * k * k}_p{tile.mr}x{tile.nr}{split}{suffix}"], kernels
    check_against_ort(model, {"x": x}, tmp_path, rtol=1e-4, atol=1e-5)


def test_same_bits_on_two_threads(tmp_path):
    model, x = _conv(256, 512, 7, 3, 1, 1, "relu", False, True, seed=3)
    lib = str(tmp_path / "m.so")
    qc.compile(model, lib)
    one = qc.load(lib).run({"x": x})["y"]
    two = qc.load(lib, threads=2).run({"x": x})["y"]
    np.testing.assert_array_equal(one, two)


@pytest.mark.parametrize("hw, f", [(14, 64), (7, 40), (7, 48)])
def test_not_taken(hw, f):
    """14 x 14 pixels waste 4 of 200 lanes; 40 channels are not a multiple
    of 16; 48 are fewer than 64: the usual GEMM, pixels as columns."""
    model, _ = _conv(32, f, hw, 1)
    kernels = re.findall(r"call @(qc_sgemm_\w+)\(", qc.compile(model, emit="gemm"))
    assert kernels and kernels[0].startswith(f"qc_sgemm_{f}x{hw * hw}x32_"), kernels
    assert not wasteful(hw * hw, f)
