"""3x3 stride-1 convolutions as Winograd F(4x4, 3x3) and F(2x2, 3x3)
(qc-winograd-conv, qc-winograd-loops) against onnxruntime.

Each case is checked to take the Winograd path with the tiling it should
(the input transform's coefficient tensor in the linalg stage: 36x6x6 for
F(4x4, 3x3), 16x4x4 for F(2x2, 3x3)), then run: maps of every size modulo
the tile (up to 3 more padded rows or columns, sliced off), a batch, bias,
a ResNet basic block (BatchNorm folded, Relu and the residual Add after),
the bias and the Relu/Clip/residual Add done by the output transform's
last loop, several threads, inputs of large magnitude. The error is a few float32
roundings of the transformed sums, held to 1e-4 of the output's scale.
"""

from __future__ import annotations

import numpy as np
import pytest
from helpers import check_against_ort, direct_convs, example_module, host_tile, make_model
from onnx import helper

import qc

F32 = np.float32

# F(4x4) takes a map of at least one GEMM panel of 4x4 tiles: 16 on AVX2,
# 32 on AVX-512 (`winograd_options`); below, F(2x2). The cases of 16 and 18
# tiles take F(4x4) or F(2x2) by this machine's panel.
F4_16 = 4 if host_tile().nr <= 16 else 2

CASES = {
    # name: (N, C, H, W, F, bias, tile): why
    "even": (1, 32, 16, 16, 32, True, F4_16),  # 4x4 tiles of 4x4, the fewest F(4x4) takes on AVX2; the fewest channels
    "odd": (1, 40, 15, 13, 48, True, F4_16),  # a padded row and 3 padded columns, sliced off
    "batch": (2, 32, 12, 22, 36, False, F4_16),  # two images: tiles of both in one GEMM; no bias; 2 padded columns
    "map_14": (1, 64, 14, 14, 64, True, F4_16),  # ResNet-50's 14x14: 16 tiles, 2 padded rows and columns
    "map_24": (1, 32, 24, 24, 32, True, 4),  # 36 tiles: F(4x4) on every x86 target
    "map_56": (1, 64, 56, 56, 64, True, 4),  # ResNet-50's 56x56: 196 tiles, rows of 14
    "wide": (1, 32, 20, 40, 40, True, 4),  # 50 tiles, a row of 10 tiles
    "f2_even": (1, 32, 12, 12, 32, True, 2),  # 9 tiles of 4x4 are too few: 36 of 2x2
    "f2_odd": (1, 40, 11, 13, 48, True, 2),  # F(2x2): a padded row and column
    "f2_batch": (2, 32, 12, 14, 36, False, 2),  # F(2x2) on two images
    # The GEMMs' packed weights (a row tail on every target) with B packed per
    # panel (M <= 512), and packed whole (M > 512, one call per batch).
    "f2_packed_panels": (1, 128, 12, 12, 148, True, 2),
    "f2_packed_whole": (1, 32, 12, 12, 532, False, 2),
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
    return len(_tiles(model, **options))


def _tiles(model, **options) -> list[int]:
    """The output tile side (4 or 2) of each Winograd convolution."""
    text = qc.compile(model, emit="linalg", **options)
    lines = [line for line in text.splitlines() if 'qc.winograd = "input"' in line]
    assert all(("tensor<36x6x6xf32>" in line) != ("tensor<16x4x4xf32>" in line) for line in lines), lines
    return [4 if "tensor<36x6x6xf32>" in line else 2 for line in lines]


@pytest.mark.parametrize("name", sorted(CASES))
def test_winograd_conv_matches_onnxruntime(name, tmp_path):
    rng = np.random.default_rng(sorted(CASES).index(name))
    n, c, h, w, f, bias, tile = CASES[name]
    model = conv_model(n, c, h, w, f, bias, rng)
    assert _tiles(model) == [tile]
    x = rng.standard_normal((n, c, h, w)).astype(F32)
    check_against_ort(model, {"x": x}, tmp_path, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("hw,tile", [(24, 4), (12, 2)])
def test_large_inputs_keep_relative_accuracy(hw, tile, tmp_path):
    """Values of 1e3 and weights of one sign: the transforms' sums and
    differences lose no more than float32 rounding of the output's scale."""
    rng = np.random.default_rng(7)
    model = conv_model(1, 32, hw, hw, 32, True, rng)
    w = next(i for i in model.graph.initializer if i.name == "w")
    w.CopyFrom(helper.make_tensor("w", 1, [32, 32, 3, 3], np.abs(rng.standard_normal(32 * 32 * 9)).astype(F32)))
    assert _tiles(model) == [tile]
    x = (1e3 * rng.standard_normal((1, 32, hw, hw))).astype(F32)
    got = check_against_ort(model, {"x": x}, tmp_path, rtol=1e-3, atol=1e-1)["y"]
    want = qc.load(_direct_lib(model, tmp_path)).run({"x": x})["y"]
    scale = float(np.abs(want).max())
    assert np.abs(got - want).max() < 1e-5 * scale


def _direct_lib(model, tmp_path) -> str:
    """The model compiled without Winograd: the direct convolution."""
    lib = str(tmp_path / "direct.so")
    qc.compile(model, lib, pipeline=direct_convs())
    return lib


@pytest.mark.parametrize("hw,tile", [(24, 4), (12, 2)])
def test_resnet_basic_block(hw, tile, tmp_path):
    """Both convolutions of a ResNet basic block (32 channels), with their
    folded BatchNorm, the Relu, the residual Add, on 1 and 2 threads (the
    transforms split their channels over threads: the same bits)."""
    rng = np.random.default_rng(11)
    model, feeds = example_module("make_models").resnet_block(rng, c=32, hw=hw)
    assert _tiles(model) == [tile, tile]
    check_against_ort(model, feeds, tmp_path, rtol=1e-4, atol=1e-4)
    lib = str(tmp_path / "model.so")
    one = qc.load(lib, threads=1).run(feeds)["y"]
    two = qc.load(lib, threads=2).run(feeds)["y"]
    np.testing.assert_array_equal(one, two)


def test_f4_takes_a_panel_of_tiles_per_target():
    """ResNet-50's 14x14 map (16 tiles of 4x4): F(4x4) with AVX2's 16-column
    panels, F(2x2) with AVX-512's 32 (49 tiles of 2x2); 28x28 (49 of 4x4)
    is F(4x4) on both."""
    rng = np.random.default_rng(5)
    m14, m28 = conv_model(1, 64, 14, 14, 64, True, rng), conv_model(1, 64, 28, 28, 64, True, rng)
    assert _tiles(m14, target="x86-64-v3") == [4] and _tiles(m14, target="x86-64-v4") == [2]
    assert _tiles(m28, target="x86-64-v3") == [4] and _tiles(m28, target="x86-64-v4") == [4]


def test_small_or_thin_convolutions_stay_direct():
    """Too few tiles (8x8 outputs: 4 of 4x4, 16 of 2x2) or channels (16
    in): the direct convolution (an implicit-im2col GEMM)."""
    rng = np.random.default_rng(3)
    assert _winograd_convs(conv_model(1, 32, 8, 8, 32, True, rng)) == 0
    assert _winograd_convs(conv_model(1, 16, 16, 16, 64, True, rng)) == 0


EPILOGUES = {
    # name: the nodes after the convolution "c" (bias "b" in it), the outputs
    "relu": ([("Relu", ["c"], ["y"], {})], ["y"]),
    "clip": ([("Clip", ["c", "lo", "hi"], ["y"], {})], ["y"]),  # min and max
    "add_relu": ([("Add", ["c", "x"], ["s"], {}), ("Relu", ["s"], ["y"], {})], ["y"]),  # a residual: x itself
    "also_read": ([("Relu", ["c"], ["y"], {})], ["y", "c"]),  # c is an output too: stays written
}


@pytest.mark.parametrize("hw,tile", [(24, 4), (12, 2)])
@pytest.mark.parametrize("name", sorted(EPILOGUES))
def test_ops_around_the_output_transform(name, hw, tile, tmp_path):
    """The bias broadcast before the convolution and the elementwise op
    after it (Relu, Clip, a residual Add), which the output transform's
    last loop does in their place; and a result read elsewhere too."""
    rng = np.random.default_rng(sorted(EPILOGUES).index(name) + hw)
    nodes, outs = EPILOGUES[name]
    inits = {"w": (rng.standard_normal((32, 32, 3, 3)) / np.sqrt(9 * 32)).astype(F32),
             "b": rng.standard_normal(32).astype(F32), "lo": np.array(-0.5, F32), "hi": np.array(0.75, F32)}
    graph = [helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1])]
    graph += [helper.make_node(op, ins, out, **attrs) for op, ins, out, attrs in nodes]
    shape = [1, 32, hw, hw]
    model = make_model(graph, {"x": (F32, shape)}, {o: (F32, shape) for o in outs}, inits)
    assert _tiles(model) == [tile]
    check_against_ort(model, {"x": rng.standard_normal(shape).astype(F32)}, tmp_path, rtol=1e-4, atol=1e-4)
