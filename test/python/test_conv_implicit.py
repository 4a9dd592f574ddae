"""Convolutions whose GEMM gathers B's panels from the padded image (implicit
im2col, kernel mode i) against onnxruntime.

Each shape picks a path of the panel gather: stride 1 with output rows of at
least 8 columns (two masked loads per vector, or, inside a row, the image
read in place by the micro-kernel), narrower rows (a masked load per run of
consecutive image values, up to four, else a gather), strides (gathers), a
partial last panel, several KC blocks, a row tail of the register tile, a
batch, more threads. Grouped 1x1
convolutions become a batch of GEMMs, one per group.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
from helpers import check_against_ort, cpu_flags, host_tile, make_model
from onnx import helper

import qc

F32 = np.float32

CASES = {
    # name: (N, C, H, W, F, K, stride, dilation, pad): why
    "rows_cross": (1, 8, 12, 12, 16, 3, 1, 1, 1),  # OW 12: vectors span two output rows
    "wide_tail": (1, 4, 9, 23, 7, 3, 1, 1, 1),  # OW 23, N = 207: a partial last panel, 7 rows (tail of 6)
    "deep": (1, 40, 10, 10, 12, 3, 1, 1, 1),  # K = 360 > KC: two cache blocks
    "narrow": (1, 6, 5, 5, 9, 3, 1, 1, 1),  # OW 5 < 8 lanes: 3 runs per 8 lanes, 4 per 16
    "two_wide": (1, 3, 9, 2, 5, 3, 1, 1, 1),  # OW 2: 5 runs per 8 lanes, a gather
    "three_wide": (1, 4, 11, 3, 6, 3, 1, 1, 1),  # OW 3, N = 33: 4 runs per 8 lanes (gathered per 16)
    "rows_14": (1, 16, 14, 14, 24, 3, 1, 1, 1),  # ResNet's 14 x 14: 3 runs per 16 lanes, N = 196
    "rows_13_deep": (1, 40, 13, 13, 12, 3, 1, 1, 1),  # SqueezeNet's 13 x 13, K = 360: two blocks
    "stride2": (1, 8, 15, 15, 10, 3, 2, 1, 1),  # strided columns: gathers
    "dilated": (1, 5, 14, 14, 6, 3, 1, 2, 2),  # dilation 2
    "five": (1, 3, 16, 16, 8, 5, 1, 1, 2),  # 5x5 kernel
    "batch": (3, 4, 10, 10, 5, 3, 1, 1, 0),  # three images, no padding
    # Stride 1, rows of >= 16 columns: panels inside a row are read in place
    # by the micro-kernel, a channel per k step (the others are gathered).
    "direct_blocks": (1, 40, 12, 36, 14, 3, 1, 1, 1),  # K = 360: two blocks of 20 channels; 2 + 2 x 6 rows
    "direct_dilated": (1, 30, 20, 40, 7, 3, 1, 2, 2),  # taps at kh*2*W + kw*2
    "direct_7x7": (1, 6, 24, 24, 5, 7, 1, 1, 3),  # 49 taps per channel
    "direct_1x5": (1, 9, 10, 30, 8, (1, 5), 1, 1, (0, 2)),  # kh != kw
    "direct_5x1": (1, 9, 12, 20, 13, (5, 1), 1, 1, (2, 0)),
    # Stride 2 along rows of >= 8 columns: every other image value, two loads
    # and a shuffle per vector (a select between two rows where a vector
    # spans two); the partial last panel is gathered.
    "stride2_rows": (1, 12, 40, 45, 9, 3, 2, 1, 1),  # OW 23, N = 460: 28 panels and 12 columns
    "stride2_edge": (1, 3, 21, 41, 6, 3, 2, 1, 0),  # the last tap's last value ends the image
    "stride2_7x7": (1, 3, 38, 38, 8, 7, 2, 1, 3),  # a stem: OW 19
}


def conv_model(n, c, h, w, f, k, s, d, p, rng):
    kh, kw = (k, k) if isinstance(k, int) else k
    ph, pw = (p, p) if isinstance(p, int) else p
    oh = (h + 2 * ph - d * (kh - 1) - 1) // s + 1
    ow = (w + 2 * pw - d * (kw - 1) - 1) // s + 1
    inits = {"w": (rng.standard_normal((f, c, kh, kw)) * 0.2).astype(F32), "b": rng.standard_normal(f).astype(F32)}
    node = helper.make_node("Conv", ["x", "w", "b"], ["y"], strides=[s, s], dilations=[d, d], pads=[ph, pw, ph, pw])
    return make_model([node], {"x": (F32, [n, c, h, w])}, {"y": (F32, [n, f, oh, ow])}, inits)


@pytest.mark.parametrize("name", sorted(CASES))
def test_implicit_im2col_conv(name, tmp_path):
    rng = np.random.default_rng(sorted(CASES).index(name))
    n, c, h, w, *_ = CASES[name]
    model = conv_model(*CASES[name], rng)
    ir = qc.compile(model, emit="gemm")
    assert re.search(r"call @qc_sgemm_\d+x\d+x\d+_i\d+x\d+_i", ir), "not lowered to an implicit-im2col kernel"
    assert "qc.im2col" not in ir  # the im2col copy is gone
    x = rng.standard_normal((n, c, h, w)).astype(F32)
    check_against_ort(model, {"x": x}, tmp_path, rtol=1e-4, atol=1e-4)


def _vector_widths() -> list[str]:
    """The x86 targets this CPU runs: 8 lanes, and 16 where it has AVX-512."""
    avx512 = {"avx512f", "avx512bw", "avx512dq", "avx512vl"} <= cpu_flags()
    return ["x86-64-v3"] + (["x86-64-v4"] if avx512 else [])


@pytest.mark.parametrize("name", ["narrow", "three_wide", "rows_14", "rows_13_deep"])
@pytest.mark.parametrize("target", _vector_widths())
def test_narrow_rows_on_each_vector_width(name, target, tmp_path):
    # The runs per vector follow the lanes (8 or 16): each width this CPU has.
    rng = np.random.default_rng(sorted(CASES).index(name))
    n, c, h, w, *_ = CASES[name]
    model = conv_model(*CASES[name], rng)
    x = rng.standard_normal((n, c, h, w)).astype(F32)
    check_against_ort(model, {"x": x}, tmp_path, rtol=1e-4, atol=1e-4, target=target)


@pytest.mark.parametrize("ow", [2, 3, 5, 7, 14, 16])
def test_masked_loads_or_gather_by_row_width(ow):
    # A vector of VL lanes over rows of OW columns is at most 1 + ceil((VL - 1) / OW)
    # runs of consecutive image values: up to four are masked loads, more a gather.
    vl = host_tile().vector_bits // 32
    runs = 1 + -(-(vl - 1) // ow)
    model = conv_model(1, 4, 40, ow, 8, 3, 1, 1, 1, np.random.default_rng(ow))  # N = 40 OW: full panels
    ir = qc.compile(model, emit="gemm")
    kernel = re.search(r"func\.func (private )?@qc_sgemm_\w+_range\(.*?\n  }\n", ir, re.S).group(0)
    assert ("vector.gather" in kernel) == (runs > 4), (ow, vl)
    if runs <= 4:
        # the gathered panel's rows: one masked load per run (the tail panel's too)
        assert kernel.count("vector.maskedload %arg1") >= runs, kernel


def test_implicit_im2col_same_bits_on_two_threads(tmp_path):
    rng = np.random.default_rng(99)
    model = conv_model(1, 32, 24, 24, 48, 3, 1, 1, 1, rng)  # 8 M multiply-adds: big enough to split
    lib = str(tmp_path / "conv.so")
    qc.compile(model, lib)
    x = rng.standard_normal((1, 32, 24, 24)).astype(F32)
    with qc.load(lib) as one, qc.load(lib, threads=2) as two:
        np.testing.assert_array_equal(one(x=x)["y"], two(x=x)["y"])


@pytest.mark.parametrize("groups,c,f", [(3, 12, 9), (4, 136, 136)])  # small; ShuffleNet's stage-3 shape
def test_grouped_pointwise_conv_is_a_batch_of_gemms(groups, c, f, tmp_path):
    # A grouped 1x1 convolution becomes one GEMM per group on views of X and Y.
    rng = np.random.default_rng(groups)
    w = (rng.standard_normal((f, c // groups, 1, 1)) * 0.2).astype(F32)
    node = helper.make_node("Conv", ["x", "w"], ["y"], group=groups)
    model = make_model([node], {"x": (F32, [1, c, 7, 9])}, {"y": (F32, [1, f, 7, 9])}, {"w": w})
    ir = qc.compile(model, emit="gemm")
    assert "conv_2d_ngchw_gfchw" not in ir
    assert re.search(rf"call @qc_sgemm_{f // groups}x63x{c // groups}_", ir), ir[:2000]
    check_against_ort(model, {"x": rng.standard_normal((1, c, 7, 9)).astype(F32)}, tmp_path, rtol=1e-4, atol=1e-4)


def test_two_convolutions_of_one_input(tmp_path):
    # Both convolutions read one im2col op (CSE merged theirs): the first
    # gathers from the image, the second must still find the matrix written.
    rng = np.random.default_rng(21)
    inits = {f"w{i}": (rng.standard_normal((8, 4, 3, 3)) * 0.2).astype(F32) for i in (1, 2)}
    nodes = [helper.make_node("Conv", ["x", "w1"], ["a"], pads=[1] * 4),
             helper.make_node("Conv", ["x", "w2"], ["b"], pads=[1] * 4), helper.make_node("Add", ["a", "b"], ["y"])]
    model = make_model(nodes, {"x": (F32, [1, 4, 10, 10])}, {"y": (F32, [1, 8, 10, 10])}, inits)
    check_against_ort(model, {"x": rng.standard_normal((1, 4, 10, 10)).astype(F32)}, tmp_path, rtol=1e-4, atol=1e-4)
