"""LRN numerics against onnxruntime, and its error paths.

The input is a graph input (a run-time value), so the op goes through its
importer. Several LRNs share one model (one compile), each its own output.
onnxruntime's LRN takes only odd sizes and 4-D inputs; even sizes and other
ranks are checked against ONNX's formula in numpy (`ref_lrn`), rtol 1e-5.
"""

from __future__ import annotations

import numpy as np
import pytest
from helpers import check_against_ort, compile_and_run, make_model, ort_run
from onnx import helper

import qc

F32 = np.float32


def lrn(x: str, y: str, **attrs):
    return helper.make_node("LRN", [x], [y], **attrs)


def ref_lrn(x: np.ndarray, size: int, alpha=1e-4, beta=0.75, bias=1.0) -> np.ndarray:
    """ONNX's definition: the sum of squares over channels
    [c - floor((size-1)/2), c + ceil((size-1)/2)], clipped to [0, C)."""
    x64 = x.astype(np.float64)
    lo, hi = (size - 1) // 2, size - 1 - (size - 1) // 2
    s = np.zeros_like(x64)
    for c in range(x.shape[1]):
        s[:, c] = (x64[:, max(0, c - lo):c + hi + 1] ** 2).sum(axis=1)
    return (x64 / (bias + alpha / size * s) ** beta).astype(x.dtype)


@pytest.mark.parametrize("opset", [1, 13])  # LRN-1 and LRN-13 differ only in types (bfloat16)
def test_lrn_odd_sizes_against_ort(tmp_path, opset):
    # 7 channels: windows of 1, 3 and 5 fit inside; 9 is wider than the
    # channels, so every window is clipped. 5x3 spatial: odd and non-square.
    rng = np.random.default_rng(7)
    x = (rng.standard_normal((2, 7, 5, 3)) * 3).astype(F32)  # squares well above bias: beta matters
    nodes = [
        lrn("x", "size1", size=1),
        lrn("x", "alexnet", size=5, alpha=1e-4, beta=0.75, bias=1.0),  # AlexNet's, the defaults
        lrn("x", "wide", size=9, alpha=0.1, beta=1.3, bias=0.5),
        lrn("x", "size3", size=3, alpha=0.3, beta=0.75, bias=2.0),
    ]
    outs = {n.output[0]: (F32, x.shape) for n in nodes}
    model = make_model(nodes, {"x": (F32, x.shape)}, outs, opset=opset)
    check_against_ort(model, {"x": x}, tmp_path)


def test_lrn_even_sizes_and_other_ranks(tmp_path):
    # Even windows pad unevenly (size 4: 1 channel below, 2 above; size 2:
    # 0 below, 1 above). N x C has no spatial dims, N x C x D one, N x C x
    # D1 x D2 x D3 three: the window runs over dim 1 whatever follows it.
    rng = np.random.default_rng(8)
    feeds = {"x4": (rng.standard_normal((2, 7, 5, 3)) * 3).astype(F32),
             "x2": rng.standard_normal((3, 6)).astype(F32),
             "x3": rng.standard_normal((1, 5, 11)).astype(F32),
             "x5": rng.standard_normal((1, 4, 3, 2, 5)).astype(F32)}
    cases = {"even4": ("x4", dict(size=4, alpha=0.02, beta=0.5, bias=2.0)),
             "even2": ("x4", dict(size=2, alpha=0.3, beta=0.75, bias=1.0)),
             "rank2": ("x2", dict(size=3, alpha=0.5)),
             "rank3": ("x3", dict(size=5, alpha=0.5, beta=1.0, bias=1.5)),
             "rank5": ("x5", dict(size=3, alpha=0.5, beta=0.75))}
    nodes = [lrn(x, y, **a) for y, (x, a) in cases.items()]
    model = make_model(nodes, {n: (F32, v.shape) for n, v in feeds.items()},
                       {y: (F32, feeds[x].shape) for y, (x, _) in cases.items()}, opset=13)
    got = compile_and_run(model, feeds, tmp_path)
    for y, (x, a) in cases.items():
        np.testing.assert_allclose(got[y], ref_lrn(feeds[x], **a), rtol=1e-5, atol=1e-6, err_msg=y)


def test_lrn_rejects_float64(tmp_path):
    model = make_model([lrn("x", "y", size=3)], {"x": (np.float64, (1, 3, 2, 2))},
                       {"y": (np.float64, (1, 3, 2, 2))}, opset=13)
    with pytest.raises(qc.UnsupportedOp, match=r"\(LRN\): X has element type float64; supported: float32"):
        qc.compile(model, str(tmp_path / "m.so"))


def test_lrn_rejects_size_zero(tmp_path):
    model = make_model([lrn("x", "y", size=0)], {"x": (F32, (1, 3, 2, 2))}, {"y": (F32, (1, 3, 2, 2))}, opset=13)
    with pytest.raises(qc.UnsupportedOp, match=r"\(LRN\): size 0; supported: size >= 1"):
        qc.compile(model, str(tmp_path / "m.so"))


def test_ref_lrn_is_onnxruntimes_lrn_where_both_apply():
    """The numpy reference above agrees with onnxruntime on odd sizes, 4-D."""
    rng = np.random.default_rng(9)
    x = (rng.standard_normal((2, 7, 5, 3)) * 3).astype(F32)
    for size, a in ((5, {}), (3, dict(alpha=0.3, beta=1.3, bias=2.0))):
        model = make_model([lrn("x", "y", size=size, **a)], {"x": (F32, x.shape)}, {"y": (F32, x.shape)}, opset=13)
        np.testing.assert_allclose(ref_lrn(x, size, **a), ort_run(model, {"x": x})["y"], rtol=1e-5, atol=1e-6)
