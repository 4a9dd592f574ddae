"""Numerics of the ONNX reductions against onnxruntime.

ReduceSum/Mean/Max/Min/Prod/L1/L2/SumSquare/LogSumExp in both forms: axes
as an attribute (ReduceSum before opset 13, the others before 18) and as an
input (after); keepdims 0/1, negative axes, no axes (reduce all),
noop_with_empty_axes. ArgMax/ArgMin with axis, keepdims and
select_last_index, on data with ties.

The data is a graph input; axes are initializers. Floats are compared with
rtol 1e-5 (atol 1e-5 for sums of many terms near zero), integers exactly.
"""

from __future__ import annotations

import numpy as np
import pytest
from helpers import check_against_ort, make_model
from onnx import helper

import qc

F32, F64, I32, I64, U8, I8 = np.float32, np.float64, np.int32, np.int64, np.uint8, np.int8

REDUCE_OPS = ["ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd",
              "ReduceL1", "ReduceL2", "ReduceSumSquare", "ReduceLogSumExp"]


def axes_input_opset(op):
    return 13 if op == "ReduceSum" else 18


def out_shape(shape, axes, keepdims):
    axes = [a % len(shape) for a in axes] if axes else list(range(len(shape)))
    if keepdims:
        return tuple(1 if i in axes else s for i, s in enumerate(shape))
    return tuple(s for i, s in enumerate(shape) if i not in axes)


def data(rng, op, shape, dtype):
    if np.issubdtype(dtype, np.integer):
        # small magnitudes keep ReduceProd and ReduceSumSquare exact in int32
        return rng.integers(-4, 5, shape).astype(dtype)
    if op == "ReduceProd":
        return rng.uniform(0.6, 1.5, shape).astype(dtype)  # no underflow over many terms
    return rng.standard_normal(shape).astype(dtype)


def reduce_model(op, shape, dtype, axes, keepdims, opset, noop=None):
    """`axes` None: leave them out. The form (attribute or input) follows the opset."""
    inputs, attrs, inits = ["x"], {"keepdims": keepdims}, {}
    if axes is not None:
        if opset >= axes_input_opset(op):
            inits["axes"] = np.array(axes, np.int64)
            inputs.append("axes")
        else:
            attrs["axes"] = axes
    if noop is not None:
        attrs["noop_with_empty_axes"] = noop
    node = helper.make_node(op, inputs, ["y"], name="r0", **attrs)
    out = shape if noop and not axes else out_shape(shape, axes, keepdims)
    return make_model([node], {"x": (dtype, shape)}, {"y": (dtype, out)}, inits, opset=opset)


# (shape, axes, keepdims): why each one
INPUT_FORM_CASES = [
    ((3, 5, 4), [1], 1),  # a middle axis, kept as size 1
    ((3, 5, 4), [-1, 0], 0),  # negative axis, two axes, dropped
    ((2, 7, 3), None, 1),  # no axes: everything, kept as [1, 1, 1]
    ((33,), [0], 0),  # a long odd row to a rank-0 result
]
ATTRIBUTE_FORM_CASES = [
    ((3, 5, 4), [-1, 0], 1),  # negative axis, two axes, kept
    ((2, 7, 3), None, 0),  # no axes: everything, to a rank-0 result
    ((33,), [0], 1),  # to [1]: an expand_shape from rank 0
]


@pytest.mark.parametrize("op", REDUCE_OPS)
@pytest.mark.parametrize("shape,axes,keepdims", INPUT_FORM_CASES, ids=str)
def test_reduce_axes_input(op, shape, axes, keepdims, tmp_path):
    rng = np.random.default_rng(200)
    x = data(rng, op, shape, F32)
    model = reduce_model(op, shape, F32, axes, keepdims, axes_input_opset(op))
    check_against_ort(model, {"x": x}, tmp_path, atol=1e-5)


@pytest.mark.parametrize("op", REDUCE_OPS)
@pytest.mark.parametrize("shape,axes,keepdims", ATTRIBUTE_FORM_CASES, ids=str)
def test_reduce_axes_attribute(op, shape, axes, keepdims, tmp_path):
    rng = np.random.default_rng(199)
    x = data(rng, op, shape, F32)
    model = reduce_model(op, shape, F32, axes, keepdims, axes_input_opset(op) - 1)
    check_against_ort(model, {"x": x}, tmp_path, atol=1e-5)


INT_OPS = ["ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd",
           "ReduceL1", "ReduceL2", "ReduceSumSquare"]


@pytest.mark.parametrize("op", INT_OPS)
@pytest.mark.parametrize("dtype", [I32, I64])
def test_reduce_int(op, dtype, tmp_path):
    # ReduceMean truncates toward zero, ReduceL2 truncates its square root.
    rng = np.random.default_rng(201)
    x = data(rng, op, (4, 3, 5), dtype)
    model = reduce_model(op, x.shape, dtype, [0, 2], 0, axes_input_opset(op))
    check_against_ort(model, {"x": x}, tmp_path)


@pytest.mark.parametrize("op", ["ReduceMax", "ReduceMin"])
@pytest.mark.parametrize("dtype", [U8, I8])
def test_reduce_minmax_8bit(op, dtype, tmp_path):
    # uint8 values >= 128 are large, not negative; the init is the type's extreme.
    rng = np.random.default_rng(202)
    lo, hi = (0, 256) if dtype == U8 else (-128, 128)
    x = rng.integers(lo, hi, (3, 6)).astype(dtype)
    check_against_ort(reduce_model(op, x.shape, dtype, [1], 1, 18), {"x": x}, tmp_path)


@pytest.mark.parametrize("op", ["ReduceSum", "ReduceMean", "ReduceLogSumExp"])
def test_reduce_float64(op, tmp_path):
    rng = np.random.default_rng(203)
    x = data(rng, op, (5, 6), F64)
    check_against_ort(reduce_model(op, x.shape, F64, [1], 0, 18), {"x": x}, tmp_path)


@pytest.mark.parametrize("op", REDUCE_OPS)
def test_noop_with_empty_axes(op, tmp_path):
    # No axes with noop_with_empty_axes=1: no reduction, but the elementwise
    # part still applies (SumSquare squares, L1/L2 take |x|).
    rng = np.random.default_rng(204)
    x = data(rng, op, (3, 4), F32)
    model = reduce_model(op, x.shape, F32, [], 1, axes_input_opset(op), noop=1)
    check_against_ort(model, {"x": x}, tmp_path)


def test_empty_axes_input_reduces_all(tmp_path):
    # An empty axes tensor with noop_with_empty_axes=0 means every axis.
    rng = np.random.default_rng(205)
    x = data(rng, "ReduceSum", (3, 4), F32)
    model = reduce_model("ReduceSum", x.shape, F32, [], 0, 13, noop=0)
    check_against_ort(model, {"x": x}, tmp_path)


def test_log_sum_exp_large_values(tmp_path):
    # exp(100) overflows float32; subtracting the max keeps the result finite.
    x = np.array([[100.0, 99.0, 98.5], [-100.0, -101.0, -99.5]], F32)
    got = check_against_ort(reduce_model("ReduceLogSumExp", x.shape, F32, [1], 0, 18), {"x": x}, tmp_path)
    assert np.all(np.isfinite(got["y"]))


def test_reduce_chain(tmp_path):
    # A normalization-like chain: mean over the last axis, subtract, square, mean.
    rng = np.random.default_rng(206)
    x = rng.standard_normal((2, 3, 17)).astype(F32)
    nodes = [helper.make_node("ReduceMean", ["x", "ax"], ["m"]), helper.make_node("Sub", ["x", "m"], ["d"]),
             helper.make_node("ReduceSumSquare", ["d", "ax"], ["y"], keepdims=0)]
    model = make_model(nodes, {"x": (F32, x.shape)}, {"y": (F32, (2, 3))}, {"ax": np.array([-1], np.int64)}, opset=18)
    check_against_ort(model, {"x": x}, tmp_path)


# --- ArgMax / ArgMin ------------------------------------------------------------

ARG_CASES = [
    ((4, 6), 1, 1),  # the usual classifier output: along the classes, kept
    ((4, 6), 0, 0),  # along the rows, dropped
    ((2, 3, 5), -2, 1),  # negative axis in the middle
    ((9,), 0, 0),  # rank 1 to a rank-0 result
    ((9,), 0, 1),  # rank 1 to [1] (an expand_shape from rank 0)
]


@pytest.mark.parametrize("op", ["ArgMax", "ArgMin"])
@pytest.mark.parametrize("last", [0, 1])
@pytest.mark.parametrize("shape,axis,keepdims", ARG_CASES, ids=str)
def test_arg_reduce(op, last, shape, axis, keepdims, tmp_path):
    # Few distinct values: many ties, so first vs last index matters.
    rng = np.random.default_rng(210)
    x = rng.integers(-2, 3, shape).astype(F32)
    out = list(shape)
    if keepdims:
        out[axis] = 1
    else:
        out.pop(axis)
    node = helper.make_node(op, ["x"], ["y"], axis=axis, keepdims=keepdims, select_last_index=last)
    model = make_model([node], {"x": (F32, shape)}, {"y": (I64, tuple(out))}, opset=13)
    check_against_ort(model, {"x": x}, tmp_path)


@pytest.mark.parametrize("op", ["ArgMax", "ArgMin"])
@pytest.mark.parametrize("dtype", [I32, I64, U8, F64])
def test_arg_reduce_dtypes(op, dtype, tmp_path):
    rng = np.random.default_rng(211)
    x = rng.integers(0, 256, (5, 7)).astype(dtype) if dtype == U8 else rng.integers(-9, 10, (5, 7)).astype(dtype)
    node = helper.make_node(op, ["x"], ["y"], axis=1, keepdims=0)
    model = make_model([node], {"x": (dtype, x.shape)}, {"y": (I64, (5,))}, opset=13)
    check_against_ort(model, {"x": x}, tmp_path)


def test_arg_max_default_attributes(tmp_path):
    # axis 0, keepdims 1, first index; opset 11 has no select_last_index.
    rng = np.random.default_rng(212)
    x = rng.standard_normal((3, 4)).astype(F32)
    model = make_model([helper.make_node("ArgMax", ["x"], ["y"])], {"x": (F32, x.shape)}, {"y": (I64, (1, 4))},
                       opset=11)
    check_against_ort(model, {"x": x}, tmp_path)


# --- unsupported cases ----------------------------------------------------------

def test_runtime_axes_are_unsupported():
    node = helper.make_node("ReduceSum", ["x", "axes"], ["y"], name="sum0", keepdims=1)
    model = make_model([node], {"x": (F32, (3, 4)), "axes": (I64, (1,))}, {"y": (F32, (3, 1))}, opset=13)
    with pytest.raises(qc.UnsupportedOp, match=r"'sum0' \(ReduceSum\): the axes input must be known"):
        qc.compile(model, emit="input")


def test_repeated_axis_is_unsupported():
    model = reduce_model("ReduceMax", (3, 4), F32, [1, -1], 1, 18)
    with pytest.raises(qc.UnsupportedOp, match=r"axes \[1, -1\] name a dimension twice"):
        qc.compile(model, emit="input")


@pytest.mark.parametrize("op,dtype", [("ReduceLogSumExp", I32), ("ReduceSum", np.float16), ("ArgMax", np.float16)])
def test_unsupported_types(op, dtype):
    if op == "ArgMax":
        node = helper.make_node(op, ["x"], ["y"], name="r0", axis=0)
        model = make_model([node], {"x": (dtype, (3, 4))}, {"y": (I64, (1, 4))}, opset=13)
    else:
        model = reduce_model(op, (3, 4), dtype, [0], 1, 18)
    with pytest.raises(qc.UnsupportedOp, match=f"element type {np.dtype(dtype)} is not supported"):
        qc.compile(model, emit="input")
