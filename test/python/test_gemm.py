"""Numerics of the vectorized GEMM (qc-lower-gemm) against onnxruntime.

The register tile is 6 x 16 on AVX2 hosts (10 x 32 with AVX-512; a compile-time
B by at most 2 (3) rows: 32 (64) columns) and the cache block is 256 deep, so the
shapes below hit every tail: rows past the last full tile, columns past the
last full panel, k past the last full block.
"""

import numpy as np
import pytest
from helpers import check_against_ort, make_model
from onnx import helper

SHAPES = [
    (1, 1, 1),  # degenerate: everything is a tail
    (7, 7, 7),  # one row and a 7-of-16 column tail
    (33, 33, 33),  # 5 full row tiles + 3 rows; 2 full panels + 1 column
    (6, 16, 16),  # exactly one register tile, no tails
    (13, 300, 17),  # k crosses the 256-deep cache block
    (1000, 33, 7),  # tall: many row tiles, only a column tail
    (7, 1000, 33),  # deep k: 4 cache blocks
    (33, 7, 1000),  # wide: 62 full panels + 8 columns
    # A few rows by a compile-time B (a matrix-vector product): panels twice as wide.
    (1, 1000, 33),  # one 32-column panel + 1 column, k past three cache blocks
    (2, 17, 100),  # two rows: 3 full panels + 4 columns
]


def _tol(k):
    # Summation order differs from onnxruntime's; the error grows like sqrt(k).
    return dict(rtol=1e-4, atol=1e-5 * np.sqrt(k))


@pytest.mark.parametrize("m,k,n", SHAPES)
@pytest.mark.parametrize("constant_b", [True, False], ids=["packed-weight", "runtime-b"])
def test_matmul(m, k, n, constant_b, tmp_path):
    rng = np.random.default_rng(m * 7 + k * 3 + n)
    a = rng.standard_normal((m, k)).astype(np.float32)
    b = rng.standard_normal((k, n)).astype(np.float32)
    inputs = {"a": (np.float32, [m, k])}
    if not constant_b:
        inputs["b"] = (np.float32, [k, n])
    model = make_model([helper.make_node("MatMul", ["a", "b"], ["c"])], inputs,
                       {"c": (np.float32, [m, n])}, {"b": b} if constant_b else None)
    feeds = {"a": a} if constant_b else {"a": a, "b": b}
    check_against_ort(model, feeds, tmp_path, **_tol(k))


def test_batch_matmul(tmp_path):
    """Batched products call the kernel on subviews, one batch at a time."""
    rng = np.random.default_rng(3)
    a = rng.standard_normal((3, 7, 33)).astype(np.float32)
    b = rng.standard_normal((3, 33, 9)).astype(np.float32)
    model = make_model([helper.make_node("MatMul", ["a", "b"], ["c"])],
                       {"a": (np.float32, [3, 7, 33]), "b": (np.float32, [3, 33, 9])},
                       {"c": (np.float32, [3, 7, 9])})
    check_against_ort(model, {"a": a, "b": b}, tmp_path, **_tol(33))


def test_gemm_bias_accumulates(tmp_path):
    """Gemm's bias is the accumulator's initial value: the kernel must add to C, not overwrite it."""
    rng = np.random.default_rng(4)
    w = rng.standard_normal((17, 70)).astype(np.float32)
    bias = rng.standard_normal(17).astype(np.float32)
    model = make_model([helper.make_node("Gemm", ["x", "w", "bias"], ["y"], transB=1, alpha=0.5)],
                       {"x": (np.float32, [33, 70])}, {"y": (np.float32, [33, 17])}, {"w": w, "bias": bias})
    x = rng.standard_normal((33, 70)).astype(np.float32)
    check_against_ort(model, {"x": x}, tmp_path, **_tol(70))


def test_conv_of_a_channel_split(tmp_path):
    """Split along the channels, a 1x1 conv on each part, Concat: each conv
    reads a slice of the input whose unit batch dim keeps the whole input's
    stride. It is still a row-major matrix and runs on the GEMM kernel (the
    loops it fell back to were 20x slower)."""
    import qc

    rng = np.random.default_rng(5)
    g, c, hw = 4, 24, 7
    x = rng.standard_normal((1, c, hw, hw)).astype(np.float32)
    inits = {"sp": np.array([c // g] * g, np.int64)}
    nodes = [helper.make_node("Split", ["x", "sp"], [f"x{i}" for i in range(g)], axis=1)]
    for i in range(g):
        inits[f"w{i}"] = rng.standard_normal((c // g + i, c // g, 1, 1)).astype(np.float32)
        nodes.append(helper.make_node("Conv", [f"x{i}", f"w{i}"], [f"y{i}"]))
    nodes.append(helper.make_node("Concat", [f"y{i}" for i in range(g)], ["y"], axis=1))
    out = sum(c // g + i for i in range(g))
    model = make_model(nodes, {"x": (np.float32, x.shape)}, {"y": (np.float32, [1, out, hw, hw])}, inits, opset=13)
    assert qc.compile(model, emit="gemm").count("call @qc_sgemm_") == g
    check_against_ort(model, {"x": x}, tmp_path, **_tol(c // g))


@pytest.mark.parametrize("name,x_shape,w_shape,attrs", [
    ("grouped_3x3", (1, 16, 9, 11), (12, 4, 3, 3), dict(group=4, pads=[1, 1, 1, 1])),
    ("grouped_3x3_stride2_dilated", (1, 12, 13, 10), (6, 6, 3, 3), dict(group=2, strides=[2, 1], dilations=[1, 2])),
    ("conv_1d", (2, 8, 50), (5, 8, 3), dict(pads=[1, 1], strides=[2])),
    ("depthwise_1d", (1, 6, 40), (6, 1, 5), dict(group=6, pads=[2, 2])),
])
def test_conv_forms_on_the_kernels(name, x_shape, w_shape, attrs, tmp_path):
    """Grouped k x k convs (one image: the groups' im2col and a batch of
    GEMMs) and 1-D convs (2-D over a unit height) run on the GEMM kernel or,
    depthwise, the depthwise loops; they were left as loop nests 15-36x
    slower than onnxruntime."""
    import qc

    rng = np.random.default_rng(6)
    x = rng.standard_normal(x_shape).astype(np.float32)
    w = rng.standard_normal(w_shape).astype(np.float32)
    import onnx

    model = onnx.shape_inference.infer_shapes(make_model(
        [helper.make_node("Conv", ["x", "w"], ["y"], **attrs)], {"x": (np.float32, x_shape)},
        {"y": (np.float32, None)}, {"w": w}, opset=13))
    gemm_ir = qc.compile(model, emit="gemm")
    if name.startswith("depthwise"):
        assert "conv_1d" not in qc.compile(model, emit="input") and "qc.depthwise_window" in qc.compile(model,
                                                                                                       emit="linalg")
    else:
        assert "call @qc_sgemm_" in gemm_ir
    k = int(np.prod(w_shape[1:]))
    check_against_ort(model, {"x": x}, tmp_path, **_tol(k))
