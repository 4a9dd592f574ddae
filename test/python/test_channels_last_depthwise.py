"""qc-channels-last-depthwise with qc-narrow-gemm: MobileNet v2 style blocks
(1x1 expand, depthwise, 1x1 project) on small maps run channels-last
between the transposed GEMMs, against onnxruntime. Each case also checks
the IR: the depthwise writes [OH, OW, C] and reads no padded NCHW tensor, so
a test fails if the rewrite stops happening, and the numbers, so it fails if
it is wrong."""

from __future__ import annotations

import re

import numpy as np
import pytest
from helpers import check_against_ort, make_model
from onnx import helper

import qc

F32 = np.float32


def _block(cin, hw, e, cout, stride=1, act="clip", dilation=1, pads=None, residual=False, seed=0):
    rng = np.random.default_rng(seed)
    pads = pads or [dilation] * 4
    inits = {"w1": (rng.standard_normal((e, cin, 1, 1)) / np.sqrt(cin)).astype(F32),
             "b1": rng.standard_normal(e).astype(F32),
             "wd": (rng.standard_normal((e, 1, 3, 3)) / 3).astype(F32),
             "bd": rng.standard_normal(e).astype(F32),
             "w2": (rng.standard_normal((cout, e, 1, 1)) / np.sqrt(e)).astype(F32),
             "b2": rng.standard_normal(cout).astype(F32),
             "lo": np.array(0, F32), "hi": np.array(6, F32)}

    def activation(src, dst):
        if act == "clip":
            return [helper.make_node("Clip", [src, "lo", "hi"], [dst])]
        if act == "relu":
            return [helper.make_node("Relu", [src], [dst])]
        return [helper.make_node("Identity", [src], [dst])]

    nodes = [helper.make_node("Conv", ["x", "w1", "b1"], ["a"]), *activation("a", "a2"),
             helper.make_node("Conv", ["a2", "wd", "bd"], ["d"], group=e, strides=[stride] * 2, pads=pads,
                              dilations=[dilation] * 2),
             *activation("d", "d2"),
             helper.make_node("Conv", ["d2", "w2", "b2"], ["p"])]
    oh = (hw + pads[0] + pads[2] - 2 * dilation - 1) // stride + 1
    if residual:
        nodes.append(helper.make_node("Add", ["p", "x"], ["y"]))
    else:
        nodes.append(helper.make_node("Identity", ["p"], ["y"]))
    model = make_model(nodes, {"x": (F32, [1, cin, hw, hw])}, {"y": (F32, [1, cout, oh, oh])}, inits)
    return model, rng.standard_normal((1, cin, hw, hw)).astype(F32), oh


CASES = {
    # name: block arguments
    "7x7_clip_residual": dict(cin=64, hw=7, e=192, cout=64, residual=True),
    "14x14_relu": dict(cin=32, hw=14, e=128, cout=64, act="relu"),
    "14_to_7_stride2": dict(cin=32, hw=14, e=96, cout=64, stride=2),
    "14_to_7_stride2_pads_0011": dict(cin=32, hw=14, e=96, cout=64, stride=2, pads=[0, 0, 1, 1]),
    "7x7_no_activation": dict(cin=16, hw=7, e=96, cout=64, act=None),
    "7x7_dilation2": dict(cin=16, hw=7, e=96, cout=64, dilation=2),
    # 48 channels out: the project is the usual GEMM, which reads the
    # depthwise result through one transpose back to NCHW.
    "7x7_nchw_project": dict(cin=16, hw=7, e=64, cout=48),
}


@pytest.mark.parametrize("name", list(CASES))
def test_block(name, tmp_path):
    args = CASES[name]
    model, x, oh = _block(**args)
    e, hw = args["e"], args["hw"]
    text = qc.compile(model, emit="linalg")
    assert re.search(rf"outs\(%\w+ : tensor<{oh}x{oh}x{e}xf32>\)", text), "no channels-last depthwise"
    if args["cout"] >= 64:  # else the transpose back for the project's GEMM
        assert not re.search(rf"tensor<1x{e}x\d+x\d+xf32>", text), "an NCHW tensor of the expanded channels remains"
    check_against_ort(model, {"x": x}, tmp_path, rtol=1e-4, atol=1e-4)


def test_same_bits_on_two_threads(tmp_path):
    model, x, _ = _block(cin=64, hw=14, e=192, cout=64, residual=True, seed=3)
    lib = str(tmp_path / "m.so")
    qc.compile(model, lib)
    one = qc.load(lib).run({"x": x})["y"]
    two = qc.load(lib, threads=2).run({"x": x})["y"]
    np.testing.assert_array_equal(one, two)


def test_not_taken_on_large_maps():
    """28 x 28 maps (784 pixels) keep NCHW: rows of 28 fill their vectors."""
    model, _, _ = _block(cin=32, hw=28, e=96, cout=32)
    text = qc.compile(model, emit="linalg")
    assert re.search(r"tensor<1x96x30x30xf32>", text), "the padded NCHW input of the depthwise is gone"
    assert not re.search(r"tensor<28x28x96xf32>", text)
