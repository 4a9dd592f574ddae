"""3x3 stride-1 convolutions as Winograd F(2x2, 3x3) (qc-winograd-conv,
qc-winograd-loops) against onnxruntime.

Each case is checked to take the Winograd path (the transforms' marks in
the linalg stage), then run: even and odd maps (one more padded row or
column, sliced off), a batch, bias, a ResNet basic block (BatchNorm folded,
Relu and the residual Add after), several threads, inputs of large
magnitude. The error of F(2x2, 3x3) is a few float32 roundings of the
transformed sums, held to 1e-4 of the output's scale.
"""

from __future__ import annotations

import numpy as np
import pytest
from helpers import check_against_ort, direct_convs, example_module, make_model
from onnx import helper

import qc

F32 = np.float32

CASES = {
    # name: (N, C, H, W, F, bias): why
    "even": (1, 32, 16, 16, 32, True),  # 8x8 tiles, the smallest channel counts taken
    "odd": (1, 40, 15, 13, 48, True),  # 8x7 tiles: a padded row and column, sliced off
    "batch": (2, 32, 12, 22, 36, False),  # two images: tiles of both in one GEMM; no bias
    "map_14": (1, 64, 14, 14, 64, True),  # ResNet-50's 14x14: 49 tiles
    "wide": (1, 32, 20, 40, 40, True),  # 200 tiles, a row of 20 tiles
}


def conv_model(n, c, h, w, f, bias, rng):
    inits = {"w": (rng.standard_normal((f, c, 3, 3)) / np.sqrt(9 * c)).astype(F32)}
    ins = ["x", "w"]
    if bias:
        inits["b"] = rng.standard_normal(f).astype(F32)
        ins.append("b")
    node = helper.make_node("Conv", ins, ["y"], pads=[1, 1, 1, 1])
    return make_model([node], {"x": (F32, [n, c, h, w])}, {"y": (F32, [n, f, h, w])}, inits)


def _winograd_convs(model, **options) -> int:
    return qc.compile(model, emit="linalg", **options).count('qc.winograd = "input"')


@pytest.mark.parametrize("name", sorted(CASES))
def test_winograd_conv_matches_onnxruntime(name, tmp_path):
    rng = np.random.default_rng(sorted(CASES).index(name))
    n, c, h, w, f, bias = CASES[name]
    model = conv_model(n, c, h, w, f, bias, rng)
    assert _winograd_convs(model) == 1
    x = rng.standard_normal((n, c, h, w)).astype(F32)
    check_against_ort(model, {"x": x}, tmp_path, rtol=1e-4, atol=1e-4)


def test_large_inputs_keep_relative_accuracy(tmp_path):
    """Values of 1e3 and weights of one sign: the transforms' sums and
    differences lose no more than float32 rounding of the output's scale."""
    rng = np.random.default_rng(7)
    model = conv_model(1, 32, 16, 16, 32, True, rng)
    w = next(i for i in model.graph.initializer if i.name == "w")
    w.CopyFrom(helper.make_tensor("w", 1, [32, 32, 3, 3], np.abs(rng.standard_normal(32 * 32 * 9)).astype(F32)))
    x = (1e3 * rng.standard_normal((1, 32, 16, 16))).astype(F32)
    got = check_against_ort(model, {"x": x}, tmp_path, rtol=1e-3, atol=1e-1)["y"]
    want = qc.load(_direct_lib(model, tmp_path)).run({"x": x})["y"]
    scale = float(np.abs(want).max())
    assert np.abs(got - want).max() < 1e-5 * scale


def _direct_lib(model, tmp_path) -> str:
    """The model compiled without Winograd: the direct convolution."""
    lib = str(tmp_path / "direct.so")
    qc.compile(model, lib, pipeline=direct_convs())
    return lib


def test_resnet_basic_block(tmp_path):
    """Both convolutions of a ResNet basic block (32 channels, 16x16), with
    their folded BatchNorm, the Relu, the residual Add, on 1 and 2 threads
    (the transforms split their channels over threads: the same bits)."""
    rng = np.random.default_rng(11)
    model, feeds = example_module("make_models").resnet_block(rng, c=32, hw=16)
    assert _winograd_convs(model) == 2
    check_against_ort(model, feeds, tmp_path, rtol=1e-4, atol=1e-4)
    lib = str(tmp_path / "model.so")
    one = qc.load(lib, threads=1).run(feeds)["y"]
    two = qc.load(lib, threads=2).run(feeds)["y"]
    np.testing.assert_array_equal(one, two)


def test_small_or_thin_convolutions_stay_direct():
    """Too few tiles (8x8 outputs: 16) or channels (16 in): the direct
    convolution (an implicit-im2col GEMM)."""
    rng = np.random.default_rng(3)
    assert _winograd_convs(conv_model(1, 32, 8, 8, 32, True, rng)) == 0
    assert _winograd_convs(conv_model(1, 16, 16, 16, 64, True, rng)) == 0
