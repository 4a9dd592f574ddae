"""GEMM kernels that start from the bias and end with the elementwise op after
them (passes/gemm_epilogue.py), against onnxruntime.

Each case names the kernel suffix it must produce (_e...: what was folded),
so a test fails if the fold silently stops happening, and compares the
numbers, so it fails if the fold is wrong. Shapes pick the two places the
chain runs: in the micro-kernel (K fits one cache block) or in a pass after
the last block (K > 256), for streamed, packed and in-place B.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
from helpers import check_against_ort, direct_convs, host_tile, make_model
from onnx import helper

import qc

F32 = np.float32


def conv_block(c, f, hw, k, act, residual, rng, groups=1):
    """Conv(+bias) -> [Add x] -> act, on a c x hw x hw image."""
    inits = {"w": (rng.standard_normal((f, c // groups, k, k)) * 0.2).astype(F32),
             "b": rng.standard_normal(f).astype(F32)}
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[k // 2] * 4, group=groups)]
    last = "c"
    if residual:
        nodes.append(helper.make_node("Add", ["c", "x"], ["s"]))
        last = "s"
    if act == "relu":
        nodes.append(helper.make_node("Relu", [last], ["y"]))
    else:
        inits.update(lo=np.array(0, F32), hi=np.array(6, F32))
        nodes.append(helper.make_node("Clip", [last, "lo", "hi"], ["y"]))
    return make_model(nodes, {"x": (F32, [1, c, hw, hw])}, {"y": (F32, [1, f, hw, hw])}, inits)


CONVS = {
    # name: (C, F, HxW, kernel, activation, residual, expected suffix): why
    "3x3_relu_one_block": (16, 13, 9, 3, "relu", False, "_ebrmax0"),  # K 144: chain in the micro-kernel
    "3x3_relu_deep": (40, 13, 9, 3, "relu", False, "_ebrmax0"),  # K 360: first block peeled, chain after
    "1x1_clip": (24, 30, 11, 1, "clip", False, "_ebrmax0min6"),  # MobileNet's expand: B read in place
    "3x3_residual_relu": (12, 12, 10, 3, "relu", True, "_ebrrmax0"),  # ResNet's block end
    "1x1_residual_deep": (300, 300, 5, 1, "relu", True, "_ebrrmax0"),  # K 300 > 256 with R: pass after
    # Grouped: a GEMM per group, each starting from its group's rows of the bias.
    "1x1_grouped_relu": (32, 24, 9, 1, "relu", False, "_ebrmax0", 4),  # ShuffleNet's group convs
    "1x1_grouped_residual": (24, 24, 7, 1, "relu", True, "_ebrrmax0", 3),
    "3x3_grouped_clip": (16, 8, 9, 3, "clip", False, "_ebrmax0min6", 2),  # the groups' im2col
}


@pytest.mark.parametrize("name", sorted(CONVS))
def test_conv_epilogue(name, tmp_path):
    c, f, hw, k, act, residual, suffix, *groups = CONVS[name]
    rng = np.random.default_rng(sorted(CONVS).index(name))
    model = conv_block(c, f, hw, k, act, residual, rng, *groups)
    ir = qc.compile(model, emit="gemm")
    assert re.search(rf"call @qc_sgemm_\w+{suffix}\(", ir), "bias and activation not folded into the GEMM"
    x = rng.standard_normal((1, c, hw, hw)).astype(F32)
    check_against_ort(model, {"x": x}, tmp_path, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("k", [70, 600])  # one cache block; several (the chain in a pass over the range)
def test_gemm_bias_row_relu(k, tmp_path):
    # Gemm's C row is a bias per column; odd M and N leave tails in both directions.
    rng = np.random.default_rng(k)
    inits = {"w": (rng.standard_normal((k, 37)) * 0.1).astype(F32), "b": rng.standard_normal(37).astype(F32)}
    nodes = [helper.make_node("Gemm", ["x", "w", "b"], ["g"]), helper.make_node("Relu", ["g"], ["y"])]
    model = make_model(nodes, {"x": (F32, [9, k])}, {"y": (F32, [9, 37])}, inits)
    ir = qc.compile(model, emit="gemm")
    assert re.search(r"call @qc_sgemm_9x37x\d+_p\w+_ebcmax0\(", ir), "bias and Relu not folded into the GEMM"
    check_against_ort(model, {"x": rng.standard_normal((9, k)).astype(F32)}, tmp_path, rtol=1e-4, atol=1e-4)


def test_intermediate_output_is_still_written(tmp_path):
    # The conv's output is a model output too: the Relu cannot take its place.
    rng = np.random.default_rng(5)
    inits = {"w": (rng.standard_normal((6, 4, 3, 3)) * 0.2).astype(F32), "b": rng.standard_normal(6).astype(F32)}
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1] * 4), helper.make_node("Relu", ["c"], ["y"])]
    model = make_model(nodes, {"x": (F32, [1, 4, 8, 8])}, {"c": (F32, [1, 6, 8, 8]), "y": (F32, [1, 6, 8, 8])},
                       inits)
    got = check_against_ort(model, {"x": rng.standard_normal((1, 4, 8, 8)).astype(F32)}, tmp_path,
                            rtol=1e-4, atol=1e-4)
    np.testing.assert_array_equal(got["y"], np.maximum(got["c"], 0))


def test_folded_epilogue_same_bits_on_two_threads(tmp_path):
    rng = np.random.default_rng(11)
    model = conv_block(40, 40, 16, 3, "relu", True, rng)  # deep: the chain runs after the last block
    lib = str(tmp_path / "m.so")
    qc.compile(model, lib)
    x = rng.standard_normal((1, 40, 16, 16)).astype(F32)
    with qc.load(lib) as one, qc.load(lib, threads=2) as two:
        np.testing.assert_array_equal(one(x=x)["y"], two(x=x)["y"])


def test_shared_and_uniform_bias(tmp_path):
    # Two convolutions of one bias (CSE makes their initial values one
    # tensor: qc-unshare-inits gives each its own again) and a bias of equal
    # values (a splat): each GEMM starts from its bias, the last one also
    # ends with its Relu.
    rng = np.random.default_rng(5)
    inits = {"w1": (rng.standard_normal((12, 8, 3, 3)) * 0.2).astype(F32),
             "w2": (rng.standard_normal((12, 8, 3, 3)) * 0.2).astype(F32),
             "w3": (rng.standard_normal((10, 12, 1, 1)) * 0.2).astype(F32),
             "b": rng.standard_normal(12).astype(F32), "u": np.full(10, 0.375, F32)}
    nodes = [helper.make_node("Conv", ["x", "w1", "b"], ["c1"], pads=[1] * 4),
             helper.make_node("Conv", ["x", "w2", "b"], ["c2"], pads=[1] * 4),
             helper.make_node("Relu", ["c1"], ["y1"]), helper.make_node("Relu", ["c2"], ["s"]),
             helper.make_node("Conv", ["s", "w3", "u"], ["c3"]), helper.make_node("Relu", ["c3"], ["y"])]
    model = make_model(nodes, {"x": (F32, [1, 8, 10, 10])},
                       {"y1": (F32, [1, 12, 10, 10]), "y": (F32, [1, 10, 10, 10])}, inits)
    ir = qc.compile(model, emit="gemm")
    assert len(re.findall(r"call @qc_sgemm_12x100x72_\w+_ebr\w*\(", ir)) == 2, "shared bias not folded twice"
    assert re.search(r"call @qc_sgemm_10x100x12_\w+_es0p375max0\(", ir), "uniform bias not folded"
    assert not re.search(r"linalg.copy[^\n]*ins\([^)]*memref<1x12x", ir), "a GEMM copies its initial value"
    check_against_ort(model, {"x": rng.standard_normal((1, 8, 10, 10)).astype(F32)}, tmp_path, rtol=1e-4, atol=1e-4)


def expand_then_pad(c, f, h, w, k, act, pads, rng, depthwise=True, stride=1):
    """MobileNet's pattern: a 1x1 conv (+bias) and its activation, then a
    k x k conv (depthwise, or dense) with `pads` reading it."""
    inits = {"w1": (rng.standard_normal((f, c, 1, 1)) * 0.3).astype(F32), "b1": rng.standard_normal(f).astype(F32),
             "w2": (rng.standard_normal((f, 1 if depthwise else f, k, k)) * 0.3).astype(F32)}
    nodes = [helper.make_node("Conv", ["x", "w1", "b1"], ["e"])]
    if act == "relu":
        nodes.append(helper.make_node("Relu", ["e"], ["a"]))
    else:
        inits.update(lo=np.array(0, F32), hi=np.array(6, F32))
        nodes.append(helper.make_node("Clip", ["e", "lo", "hi"], ["a"]))
    nodes.append(helper.make_node("Conv", ["a", "w2"], ["y"], pads=pads, group=f if depthwise else 1,
                                  strides=[stride, stride]))
    oh = (h + pads[0] + pads[2] - k) // stride + 1
    ow = (w + pads[1] + pads[3] - k) // stride + 1
    return make_model(nodes, {"x": (F32, [1, c, h, w])}, {"y": (F32, [1, f, oh, ow])}, inits)


PADDED = {
    # name: (C, F, H, W, k, act, pads, depthwise, stride, pitched): why
    "mobilenet": (32, 96, 12, 56, 3, "clip", [1, 1, 1, 1], True, 1, True),  # rows cross panels; MR tail
    "row_of_vector": (8, 13, 5, 8, 3, "relu", [1, 1, 1, 1], True, 1, True),  # OW = the vector width
    "odd_width_tail": (7, 10, 3, 17, 3, "relu", [1, 1, 1, 1], True, 1, True),  # N = 51: a last partial panel
    "asymmetric": (16, 24, 9, 11, 3, "clip", [0, 1, 2, 1], True, 2, True),  # TF-style pads, stride 2
    "dense_5x5": (6, 12, 10, 10, 5, "relu", [2, 2, 2, 2], False, 1, True),  # into a dense 5x5 conv
    "narrow": (16, 16, 7, 7, 3, "relu", [1, 1, 1, 1], True, 1, False),  # OW 7 < 8: the chain's own loop
    # K over several cache blocks: partial sums kept in the padded image, the chain in the last block
    "deep_k": (320, 24, 9, 11, 3, "relu", [1, 1, 1, 1], False, 1, True),
    "deeper_k_tail": (600, 16, 6, 17, 3, "clip", [1, 1, 1, 1], True, 1, True),  # 3 blocks, N = 102
}


@pytest.mark.parametrize("name", sorted(PADDED))
def test_epilogue_into_padded_image(name, tmp_path):
    """The 1x1 conv's kernel stores its activated output straight into the
    padded image the next conv reads (a pitched C, suffix _cp<OW>x<W>): no
    copy into the padded buffer. Where a row is narrower than a vector the
    activation writes the image in its own loop instead."""
    c, f, h, w, k, act, pads, depthwise, stride, pitched = PADDED[name]
    rng = np.random.default_rng(sorted(PADDED).index(name))
    model = expand_then_pad(c, f, h, w, k, act, pads, rng, depthwise, stride)
    ir = qc.compile(model, emit="gemm")
    cp = f"_cp{w}x{w + pads[1] + pads[3]}"
    if pitched and w >= host_tile().vector_bits // 32:  # a row holds a vector (AVX-512: 16 lanes)
        assert re.search(rf"call @qc_sgemm_{f}x{h * w}x{c}_\w+{cp}\(", ir), "not stored into the padded image"
    else:
        assert "_cp" not in ir
    x = rng.standard_normal((1, c, h, w)).astype(F32)
    check_against_ort(model, {"x": x}, tmp_path, rtol=1e-4, atol=1e-4)


def test_3x3_conv_into_padded_image_deep_k(tmp_path):
    """A ResNet block's first 3x3 conv (K = 40 * 9 = 360: two cache blocks,
    the image's panels read in place or gathered) with its Relu stores into
    the padded input of the second."""
    rng = np.random.default_rng(12)
    c = 40
    inits = {"w1": (rng.standard_normal((c, c, 3, 3)) * 0.1).astype(F32), "b1": rng.standard_normal(c).astype(F32),
             "w2": (rng.standard_normal((c, c, 3, 3)) * 0.1).astype(F32)}
    nodes = [helper.make_node("Conv", ["x", "w1", "b1"], ["a"], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["a"], ["r"]), helper.make_node("Conv", ["r", "w2"], ["y"], pads=[1, 1, 1, 1])]
    model = make_model(nodes, {"x": (F32, [1, c, 20, 20])}, {"y": (F32, [1, c, 20, 20])}, inits)
    ir = qc.compile(model, emit="gemm", pipeline=direct_convs())
    assert re.search(r"call @qc_sgemm_40x400x360_i\w+_ebrmax0_cp20x22\(", ir), "not stored into the padded image"
    check_against_ort(model, {"x": rng.standard_normal((1, c, 20, 20)).astype(F32)}, tmp_path, rtol=1e-4, atol=1e-4,
                      pipeline=direct_convs())


def test_padded_image_stores_same_bits_on_two_threads(tmp_path):
    """Threads split the pitched kernel's panels: the masked stores of a
    vector across a row end touch only its own columns."""
    c, f, h, w, k, act, pads, depthwise, stride, _ = PADDED["mobilenet"]
    rng = np.random.default_rng(5)
    model = expand_then_pad(c, f, h, w, k, act, pads, rng, depthwise, stride)
    lib = str(tmp_path / "m.so")
    qc.compile(model, lib)
    x = rng.standard_normal((1, c, h, w)).astype(F32)
    with qc.load(lib) as one, qc.load(lib, threads=2) as two:
        np.testing.assert_array_equal(one(x=x)["y"], two(x=x)["y"])


@pytest.mark.parametrize("hw", [13, 20])
def test_concat_parts_written_in_place(hw, tmp_path):
    """A SqueezeNet Fire module: Concat of a 1x1 and a 3x3 convolution, each
    with bias and Relu. Both GEMMs fold the Relu and write their slice of
    the Concat's result (qc-slices-in-place, and the kernel's D a contiguous
    slice): no loop copies a part or applies a Relu."""
    rng = np.random.default_rng(hw)
    c, f = 16, 24
    inits = {"w1": (rng.standard_normal((f, c, 1, 1)) * 0.2).astype(F32), "b1": rng.standard_normal(f).astype(F32),
             "w3": (rng.standard_normal((f, c, 3, 3)) * 0.1).astype(F32), "b3": rng.standard_normal(f).astype(F32)}
    nodes = [helper.make_node("Conv", ["x", "w1", "b1"], ["c1"]), helper.make_node("Relu", ["c1"], ["r1"]),
             helper.make_node("Conv", ["x", "w3", "b3"], ["c3"], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c3"], ["r3"]), helper.make_node("Concat", ["r1", "r3"], ["y"], axis=1)]
    model = make_model(nodes, {"x": (F32, [1, c, hw, hw])}, {"y": (F32, [1, 2 * f, hw, hw])}, inits)
    text = qc.compile(model, emit="gemm")
    kernels = re.findall(r"call @(qc_sgemm_\w+)\(", text)
    assert len(kernels) == 2 and all(k.endswith("_ebrmax0") for k in kernels), kernels
    loops = re.findall(r"func\.func private @(qc_model_part\d+)\(", text)
    # The 3x3 convolution's padded input: the zero rows above and below, the
    # zero columns left and right (qc-pad-border) as one fill
    # (qc-border-columns), and the copy of x.
    assert len(loops) == 4, loops
    x = rng.standard_normal((1, c, hw, hw)).astype(F32)
    # 144-term sums of O(1) products: the summation order (AVX2 or AVX-512 tiles) moves the last bits
    check_against_ort(model, {"x": x}, tmp_path, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("pads", [[1, 2, 2, 1], [2, 1, 1, 3]])
def test_uneven_border_columns_in_one_fill(pads, tmp_path):
    """Pads of different widths on each side: the padded input's left and
    right columns are one fill of a strided view whose rows run from the
    right border of one row to the left border of the next, into the top
    and bottom border rows (qc-border-columns). A view one value off would
    overwrite the interior. (The int8 tests cover a fill value that fresh
    memory does not hold: their borders are zero points.)"""
    rng = np.random.default_rng(sum(pads))
    c, f, h, w = 5, 8, 9, 11
    top, left, bottom, right = pads
    inits = {"w": (rng.standard_normal((f, c, 3, 3)) * 0.2).astype(F32), "b": rng.standard_normal(f).astype(F32)}
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["y"], pads=pads)]
    out_h, out_w = h + top + bottom - 2, w + left + right - 2
    model = make_model(nodes, {"x": (F32, [1, c, h, w])}, {"y": (F32, [1, f, out_h, out_w])}, inits)
    text = qc.compile(model, emit="gemm")
    pitch = w + left + right
    views = re.findall(r"memref\.reinterpret_cast %\w+ to offset: \[(\d+)\], sizes: \[1, 5, (\d+), (\d+)\]", text)
    # From the right border of the last top row to the left border of the first bottom row.
    assert views == [(str(top * pitch - right), str(h + 1), str(left + right))], views
    x = rng.standard_normal((1, c, h, w)).astype(F32)
    check_against_ort(model, {"x": x}, tmp_path, rtol=1e-5, atol=1e-5)



def test_squeezenet_folds_every_relu():
    """The onnx wheel's SqueezeNet (light model: every weight 0.02, so the
    Fire modules' biases are equal splats that CSE merges with their
    destinations): each of the 26 convolutions is followed by a Relu, and
    every GEMM folds it. One buffer had held the expands' outputs of Fire
    modules of one shape before their Relus, which ran as 12 loops of their
    own; each op now gets its own tensor.empty (qc-unshare-inits), and a
    Relu into a buffer allocated after its GEMM is written by the kernel.
    (Compiled with every convolution direct: the Winograd convolutions'
    Relus run as loops after their output transforms.)"""
    import os

    import onnx

    path = os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data", "light", "light_squeezenet.onnx")
    text = qc.compile(path, emit="gemm", pipeline=direct_convs())
    kernels = re.findall(r"call @(qc_sgemm_\w+)\(", text)
    assert len(kernels) == 26, kernels
    assert all(k.endswith("max0") for k in kernels), [k for k in kernels if not k.endswith("max0")]
    # A loop with a max and no multiply is a Relu (the Softmax's exponential
    # at the end, split over the threads, clamps with max before its polynomial).
    relus = [m for m in re.findall(r"(?s)func\.func @qc_model_part\d+_range.*?return", text)
             if "maximumf" in m and "arith.mulf" not in m]
    assert not relus, relus
