"""qc-vector-reductions: f32 sums, maxima and minima along the last axis as
vector code. Max and min give exactly numpy's values (order does not change
them); sums are reassociated, so they are checked against float64 sums with
a bound of a few ulps of the row's magnitude, and against onnxruntime."""

import numpy as np
import pytest
from helpers import make_model, ort_run
from onnx import helper

import qc
from qc.session import compile_model

F32 = np.float32


def _reduce_model(op: str, rows: int, width: int, keepdims: int = 0):
    out = [rows, 1] if keepdims else [rows]
    node = helper.make_node(op, ["x", "axes"], ["y"], keepdims=keepdims)
    return make_model([node], {"x": (F32, [rows, width])}, {"y": (F32, out)},
                      {"axes": np.array([-1], np.int64)}, opset=18)


def _run(model, feeds, tmp_path, threads=1):
    lib = str(tmp_path / f"m{threads}.so")
    qc.compile(model, lib)
    return qc.load(lib, threads=threads).run(feeds)


@pytest.mark.parametrize("width", [1, 3, 7, 8, 33, 100, 1000])
@pytest.mark.parametrize("op", ["ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin"])
def test_row_reductions(op, width, tmp_path):
    x = np.random.default_rng(width).standard_normal((5, width)).astype(F32) * 10
    model = _reduce_model(op, 5, width)
    assert "qc_reduce_0" in qc.compile(model, emit="gemm")
    y = _run(model, {"x": x}, tmp_path)["y"]
    x64 = x.astype(np.float64)
    if op in ("ReduceMax", "ReduceMin"):
        np.testing.assert_array_equal(y, x.max(axis=1) if op == "ReduceMax" else x.min(axis=1))
    else:
        ref = x64.sum(axis=1) / (width if op == "ReduceMean" else 1)
        scale = np.abs(x64).sum(axis=1) / (width if op == "ReduceMean" else 1)
        # A pairwise sum of `width` terms: within a few ulps of the sum of magnitudes.
        assert np.all(np.abs(y - ref) <= 4 * np.finfo(F32).eps * scale + 1e-30), (y, ref)
    np.testing.assert_allclose(y, ort_run(model, {"x": x})["y"], rtol=1e-5, atol=1e-5)


def test_special_values(tmp_path):
    """NaN propagates through max and min; -inf is a max's start, not a value
    it can lose; inf - inf in a sum is NaN, as in the sequential sum."""
    x = np.zeros((4, 19), F32)
    x[0, 17] = np.nan
    x[1, :] = -np.inf
    x[2, 3], x[2, 12] = np.inf, -np.inf
    x[3, :] = -0.0
    for op, ref in (("ReduceMax", np.max), ("ReduceMin", np.min), ("ReduceSum", np.sum)):
        y = _run(_reduce_model(op, 4, 19), {"x": x}, tmp_path)["y"]
        with np.errstate(invalid="ignore"):
            np.testing.assert_array_equal(y, ref(x, axis=1), err_msg=op)


def test_layer_norm_and_softmax(tmp_path):
    rng = np.random.default_rng(5)
    w = 37
    inits = {"g": rng.standard_normal(w).astype(F32), "b": rng.standard_normal(w).astype(F32)}
    nodes = [helper.make_node("LayerNormalization", ["x", "g", "b"], ["n"], axis=-1, epsilon=1e-5),
             helper.make_node("Softmax", ["n"], ["y"], axis=-1)]
    model = make_model(nodes, {"x": (F32, [3, 16, w])}, {"y": (F32, [3, 16, w])}, inits)
    text = qc.compile(model, emit="gemm")
    assert text.count("func.func private @qc_reduce_") == 4  # mean, variance, max, sum
    x = (rng.standard_normal((3, 16, w)) * 4 + 2).astype(F32)
    np.testing.assert_allclose(_run(model, {"x": x}, tmp_path)["y"], ort_run(model, {"x": x})["y"],
                               rtol=1e-5, atol=1e-6)


def test_split_rows_same_bits_on_any_thread_count(tmp_path):
    """Enough rows to be split over threads (qc-parallel-loops): each range
    runs the same vector code on its rows, so the bits do not depend on the
    thread count."""
    model = _reduce_model("ReduceSum", 600, 1000, keepdims=1)
    table = compile_model(model, emit="gemm", report=True).op_report.table()
    assert "loop nest (on all threads): vector reduction" in table, table
    x = np.random.default_rng(1).standard_normal((600, 1000)).astype(F32)
    one = _run(model, {"x": x}, tmp_path)["y"]
    for threads in (2, 3):
        np.testing.assert_array_equal(_run(model, {"x": x}, tmp_path, threads)["y"], one)
    ref = x.astype(np.float64).sum(axis=1, keepdims=True)
    assert np.all(np.abs(one - ref) <= 4 * np.finfo(F32).eps * np.abs(x).sum(axis=1, keepdims=True))


@pytest.mark.parametrize("hw", [1, 3, 7, 13])
def test_global_average_pool(hw, tmp_path):
    """The sum over H x W is one run of memory per channel: the two dims are
    merged into one row (and split over threads by channel)."""
    x = np.random.default_rng(hw).standard_normal((2, 40, hw, hw)).astype(F32)
    model = make_model([helper.make_node("GlobalAveragePool", ["x"], ["y"])], {"x": (F32, [2, 40, hw, hw])},
                       {"y": (F32, [2, 40, 1, 1])})
    assert "qc_reduce_0" in qc.compile(model, emit="gemm")
    y = _run(model, {"x": x}, tmp_path)["y"]
    x64 = x.astype(np.float64)
    ref = x64.mean(axis=(2, 3), keepdims=True)
    assert np.all(np.abs(y - ref) <= 4 * np.finfo(F32).eps * np.abs(x64).mean(axis=(2, 3), keepdims=True))
    np.testing.assert_allclose(y, ort_run(model, {"x": x})["y"], rtol=1e-5, atol=1e-6)


def test_reduce_over_inner_axes(tmp_path):
    x = np.random.default_rng(4).standard_normal((3, 5, 7)).astype(F32)
    node = helper.make_node("ReduceMax", ["x", "axes"], ["y"], keepdims=0)
    model = make_model([node], {"x": (F32, [3, 5, 7])}, {"y": (F32, [3])}, {"axes": np.array([1, 2], np.int64)},
                       opset=18)
    assert "qc_reduce_0" in qc.compile(model, emit="gemm")
    np.testing.assert_array_equal(_run(model, {"x": x}, tmp_path)["y"], x.max(axis=(1, 2)))
