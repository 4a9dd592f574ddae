"""Numerics of the core ops against onnxruntime: MatMul, Gemm, Add/Sub/Mul/Div,
Relu/Sigmoid/Tanh, Softmax (opset 11 and 13), Identity, Constant, Reshape,
Flatten, Transpose, and graphs that chain them or return several outputs.

Data inputs are graph inputs (runtime values) so that each op goes through its
importer rather than being constant-folded; shape-like inputs are
initializers. Floats are compared with rtol 1e-5, integers exactly.
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from helpers import check_against_ort, make_model
from onnx import helper

import qc

F32 = np.float32


def rand(rng, shape, dtype=F32):
    if np.issubdtype(dtype, np.integer):
        return rng.integers(-20, 21, shape).astype(dtype)
    return rng.standard_normal(shape).astype(dtype)


def single_node(op, inputs: dict, out_dtype, out_shape, opset=17, inits=None, **attrs):
    names = [*inputs, *(inits or {})]
    node = helper.make_node(op, names, ["y"], name=f"{op.lower()}0", **attrs)
    return make_model([node], inputs, {"y": (out_dtype, out_shape)}, inits, opset=opset)


# --- MatMul -----------------------------------------------------------------

MATMUL_SHAPES = [
    ((4, 8), (8, 3)),  # plain 2-D → linalg.matmul
    ((1, 1), (1, 1)),  # degenerate
    ((7, 33), (33, 1)),  # odd sizes, one output column
    ((5,), (5, 7)),  # 1-D left: a row vector, dim dropped from the result
    ((7, 5), (5,)),  # 1-D right: a column vector
    ((33,), (33,)),  # both 1-D: a dot product, rank-0 result
    ((2, 3, 4), (4, 5)),  # [B,S,K] x [K,N]: collapsed into one 2-D matmul
    ((2, 3, 4), (4,)),  # batched rows times a vector
    ((3, 2, 7), (3, 7, 5)),  # equal batch → linalg.batch_matmul
    ((2, 3, 4), (1, 4, 5)),  # size-1 batch on the right broadcasts
    ((3, 1, 2, 5), (4, 5, 3)),  # rank 4 x rank 3, both batch dims broadcast
    ((4,), (2, 4, 3)),  # 1-D left against a batch of matrices
    ((3, 4), (2, 4, 5)),  # 2-D left broadcast over the right's batch
    ((2, 1, 3, 4), (1, 5, 4, 2)),  # each side broadcasts a different batch dim
    ((2, 2, 3, 4), (2, 2, 4, 5)),  # rank-4 equal batch (a generic contraction)
]


@pytest.mark.parametrize("a_shape,b_shape", MATMUL_SHAPES, ids=str)
def test_matmul_shapes(a_shape, b_shape, tmp_path):
    rng = np.random.default_rng(10)
    feeds = {"a": rand(rng, a_shape), "b": rand(rng, b_shape)}
    y = np.matmul(feeds["a"], feeds["b"])
    model = single_node("MatMul", {"a": (F32, a_shape), "b": (F32, b_shape)}, F32, y.shape)
    check_against_ort(model, feeds, tmp_path)


@pytest.mark.parametrize("dtype", [np.int32, np.int64, np.float64])
@pytest.mark.parametrize("a_shape,b_shape", [((7, 5), (5, 3)),  # 2-D named op
                                             ((2, 3, 5), (2, 5, 4))])  # batch_matmul
def test_matmul_dtypes(dtype, a_shape, b_shape, tmp_path):
    rng = np.random.default_rng(11)
    feeds = {"a": rand(rng, a_shape, dtype), "b": rand(rng, b_shape, dtype)}
    y = np.matmul(feeds["a"], feeds["b"])
    model = single_node("MatMul", {"a": (dtype, a_shape), "b": (dtype, b_shape)}, dtype, y.shape)
    check_against_ort(model, feeds, tmp_path)


def test_matmul_constant_weight(tmp_path):
    # The usual layer: a runtime activation times an initializer.
    rng = np.random.default_rng(12)
    w = rand(rng, (9, 6))
    feeds = {"x": rand(rng, (3, 9))}
    model = single_node("MatMul", {"x": (F32, (3, 9))}, F32, (3, 6), inits={"w": w})
    check_against_ort(model, feeds, tmp_path)


def test_matmul_mixed_dtypes_rejected():
    model = single_node("MatMul", {"a": (F32, (2, 3)), "b": (np.float64, (3, 2))}, F32, (2, 2))
    with pytest.raises(qc.ModelError):
        qc.compile(model, emit="input")  # the checker or the importer rejects it


def test_matmul_unsupported_dtype():
    model = single_node("MatMul", {"a": (np.uint8, (2, 3)), "b": (np.uint8, (3, 2))}, np.uint8, (2, 2))
    with pytest.raises(qc.UnsupportedOp, match=r"node 'matmul0' \(MatMul\): element type uint8.*supported: float32"):
        qc.compile(model, emit="input")


# --- Gemm -------------------------------------------------------------------

GEMM_M, GEMM_K, GEMM_N = 5, 7, 3  # odd sizes, all different, so a wrong transpose cannot pass


def _gemm_case(trans_a, trans_b, alpha, beta, c_shape, b_const, c_const, rng):
    a_shape = (GEMM_K, GEMM_M) if trans_a else (GEMM_M, GEMM_K)
    b_shape = (GEMM_N, GEMM_K) if trans_b else (GEMM_K, GEMM_N)
    inputs, inits, feeds = {"a": (F32, a_shape)}, {}, {"a": rand(rng, a_shape)}
    names = ["a", "b"]
    bv = rand(rng, b_shape)
    if b_const:
        inits["b"] = bv
    else:
        inputs["b"] = (F32, b_shape)
        feeds["b"] = bv
    if c_shape is not None:
        cv = rand(rng, c_shape)
        names.append("c")
        if c_const:
            inits["c"] = cv
        else:
            inputs["c"] = (F32, c_shape)
            feeds["c"] = cv
    attrs = {"transA": trans_a, "transB": trans_b, "alpha": alpha, "beta": beta}
    node = helper.make_node("Gemm", names, ["y"], name="gemm0", **attrs)
    return make_model([node], inputs, {"y": (F32, (GEMM_M, GEMM_N))}, inits), feeds


@pytest.mark.parametrize("b_const", [False, True], ids=["B-runtime", "B-const"])
@pytest.mark.parametrize("trans_a,trans_b", [(0, 0), (1, 0), (0, 1), (1, 1)])
@pytest.mark.parametrize("alpha,beta", [(1.0, 1.0), (0.5, 1.0), (1.0, -2.0), (2.5, 0.25)])
def test_gemm_attributes(trans_a, trans_b, alpha, beta, b_const, tmp_path):
    rng = np.random.default_rng(20)
    model, feeds = _gemm_case(trans_a, trans_b, alpha, beta, (GEMM_N,), b_const, False, rng)
    check_against_ort(model, feeds, tmp_path)


C_SHAPES = [
    (),  # scalar bias
    (1,),  # one element broadcast everywhere
    (GEMM_N,),  # the usual bias row
    (1, GEMM_N),  # bias row, 2-D
    (GEMM_M, 1),  # a column, broadcast along N
    (GEMM_M, GEMM_N),  # full C
]
C_FORMS = [(None, False)] + [(s, const) for s in C_SHAPES for const in (False, True)]  # None: no C at all


@pytest.mark.parametrize("c_shape,c_const", C_FORMS, ids=lambda v: str(v))
@pytest.mark.parametrize("alpha,beta", [(1.0, 1.0), (1.5, 0.5)])
def test_gemm_bias_forms(c_shape, c_const, alpha, beta, tmp_path):
    rng = np.random.default_rng(21)
    model, feeds = _gemm_case(0, 1, alpha, beta, c_shape, True, c_const, rng)
    check_against_ort(model, feeds, tmp_path)


@pytest.mark.parametrize("b_const", [False, True], ids=["B-runtime", "B-const"])
def test_gemm_beta_zero_ignores_c(b_const, tmp_path):
    # beta = 0: C does not contribute even where it holds large values.
    rng = np.random.default_rng(22)
    model, feeds = _gemm_case(1, 0, 0.75, 0.0, (GEMM_M, GEMM_N), b_const, False, rng)
    feeds["c"] = feeds["c"] * 1e6
    check_against_ort(model, feeds, tmp_path)


def test_gemm_float64(tmp_path):
    rng = np.random.default_rng(23)
    node = helper.make_node("Gemm", ["a", "b", "c"], ["y"], transB=1, alpha=0.5, beta=2.0)
    model = make_model([node], {"a": (np.float64, (3, 4)), "b": (np.float64, (2, 4)), "c": (np.float64, (2,))},
                       {"y": (np.float64, (3, 2))})
    feeds = {"a": rand(rng, (3, 4), np.float64), "b": rand(rng, (2, 4), np.float64),
             "c": rand(rng, (2,), np.float64)}
    check_against_ort(model, feeds, tmp_path)


def test_gemm_leaves_inputs_unchanged(tmp_path):
    # A full-shape runtime C with beta = 1 must not become the accumulator in place.
    rng = np.random.default_rng(24)
    model, feeds = _gemm_case(0, 1, 1.0, 1.0, (GEMM_M, GEMM_N), True, False, rng)
    before = {k: v.copy() for k, v in feeds.items()}
    check_against_ort(model, feeds, tmp_path)
    for k in feeds:
        np.testing.assert_array_equal(feeds[k], before[k], err_msg=k)


@pytest.mark.parametrize("dtype", [np.int32, np.int64])
def test_gemm_integer(dtype, tmp_path):
    # Integral alpha and beta are exact on integers (onnxruntime has no integer Gemm).
    rng = np.random.default_rng(25)
    a, w, c = rand(rng, (4, 3), dtype), rand(rng, (5, 3), dtype), rand(rng, (5,), dtype)
    node = helper.make_node("Gemm", ["a", "w", "c"], ["y"], transB=1, alpha=3.0, beta=-2.0)
    model = make_model([node], {"a": (dtype, (4, 3)), "w": (dtype, (5, 3)), "c": (dtype, (5,))},
                       {"y": (dtype, (4, 5))})
    lib = tmp_path / "gemm.so"
    qc.compile(model, lib)
    with qc.load(lib) as m:
        np.testing.assert_array_equal(m(a, w, c)["y"], 3 * (a @ w.T) - 2 * c)


def test_gemm_integer_fractional_alpha_rejected():
    node = helper.make_node("Gemm", ["a", "w"], ["y"], name="g", alpha=0.5)
    model = make_model([node], {"a": (np.int32, (2, 3)), "w": (np.int32, (3, 2))}, {"y": (np.int32, (2, 2))})
    with pytest.raises(qc.UnsupportedOp, match=r"node 'g' \(Gemm\): alpha=0.5, beta=1 on int32.*integral alpha"):
        qc.compile(model, emit="input")


# --- Add / Sub / Mul / Div ----------------------------------------------------

BROADCASTS = [
    ((7,), (7,)),  # same shape, odd size
    ((1,), (1,)),  # one element
    ((3, 33), ()),  # scalar on the right
    ((), (3, 33)),  # scalar on the left
    ((4, 7), (7,)),  # a row vector, lower rank
    ((4, 7), (1, 7)),  # a row vector, same rank
    ((4, 7), (4, 1)),  # a column vector
    ((4, 1), (1, 7)),  # both sides broadcast
    ((2, 3, 4, 5), (5,)),  # rank 4 vs rank 1
    ((5,), (2, 3, 4, 5)),  # rank 1 vs rank 4, on the left
    ((2, 1, 4, 1), (3, 1, 6)),  # interleaved size-1 dims, different ranks
    ((1, 1), (1, 1, 1)),  # all dims 1: nothing dropped
]


def _binary_feeds(op, a_shape, b_shape, dtype, rng):
    a, b = rand(rng, a_shape, dtype), rand(rng, b_shape, dtype)
    if op == "Div":
        if np.issubdtype(dtype, np.integer):
            b = np.where(b == 0, 3, b).astype(dtype)  # no division by zero
        else:
            b = np.where(np.abs(b) < 0.1, 0.5, b).astype(dtype)  # keep the quotient well-conditioned
    return {"a": a, "b": b}


@pytest.mark.parametrize("op", ["Add", "Sub", "Mul", "Div"])
@pytest.mark.parametrize("a_shape,b_shape", BROADCASTS, ids=str)
def test_binary_broadcast(op, a_shape, b_shape, tmp_path):
    rng = np.random.default_rng(30)
    feeds = _binary_feeds(op, a_shape, b_shape, F32, rng)
    shape = np.broadcast_shapes(a_shape, b_shape)
    model = single_node(op, {"a": (F32, a_shape), "b": (F32, b_shape)}, F32, shape)
    check_against_ort(model, feeds, tmp_path)


@pytest.mark.parametrize("op", ["Add", "Sub", "Mul", "Div"])
@pytest.mark.parametrize("dtype", [np.int32, np.int64, np.float64])
def test_binary_dtypes(op, dtype, tmp_path):
    rng = np.random.default_rng(31)
    a_shape, b_shape = (3, 7), (7,)  # with a broadcast, so the int path maps operands too
    feeds = _binary_feeds(op, a_shape, b_shape, dtype, rng)
    model = single_node(op, {"a": (dtype, a_shape), "b": (dtype, b_shape)}, dtype, (3, 7))
    check_against_ort(model, feeds, tmp_path)


@pytest.mark.parametrize("dtype", [np.int32, np.int64])
def test_integer_div_truncates_toward_zero(dtype, tmp_path):
    # Every sign combination, exact and inexact: -7/2 = -3 (not floor's -4).
    a = np.array([7, -7, 7, -7, 6, -6, 1, -1, 0, 2**20 + 1], dtype)
    b = np.array([2, 2, -2, -2, 3, 3, -5, 5, -4, -3], dtype)
    model = single_node("Div", {"a": (dtype, a.shape), "b": (dtype, b.shape)}, dtype, a.shape)
    got = check_against_ort(model, {"a": a, "b": b}, tmp_path)
    np.testing.assert_array_equal(got["y"], (np.trunc(a / b)).astype(dtype))


@pytest.mark.parametrize("dtype", [np.int32, np.int64])
def test_integer_div_by_zero_and_minus_one(dtype, tmp_path):
    # x / 0 and INT_MIN / -1 trap on x86 (onnxruntime dies with SIGFPE):
    # qc gives numpy's values instead, 0 and the wrapped negation.
    lo = np.iinfo(dtype).min
    a = np.array([7, -7, 0, lo, lo, 5, lo + 1], dtype)
    b = np.array([0, 0, 0, -1, 1, -1, -1], dtype)
    model = single_node("Div", {"a": (dtype, a.shape), "b": (dtype, b.shape)}, dtype, a.shape)
    lib = tmp_path / "div.so"
    qc.compile(model, lib)
    with qc.load(lib) as m:
        np.testing.assert_array_equal(m(a, b)["y"], np.array([0, 0, 0, lo, lo, -5, -(lo + 1)], dtype))


def test_unsigned_div(tmp_path):
    # uint8 divides unsigned (200 / 3 = 66, not a negative int8 quotient); / 0 gives 0.
    a = np.array([200, 255, 7, 9], np.uint8)
    b = np.array([3, 255, 0, 2], np.uint8)
    model = single_node("Div", {"a": (np.uint8, (4,)), "b": (np.uint8, (4,))}, np.uint8, (4,))
    lib = tmp_path / "udiv.so"
    qc.compile(model, lib)
    with qc.load(lib) as m:
        np.testing.assert_array_equal(m(a, b)["y"], np.array([66, 1, 0, 4], np.uint8))


def test_integer_div_by_constant(tmp_path):
    # A constant divisor without 0 or -1 takes the unguarded path.
    a = np.array([7, -7, 100, -100, 1], np.int64)
    model = single_node("Div", {"a": (np.int64, (5,))}, np.int64, (5,), inits={"d": np.array([2, 2, -3, 7, 5], np.int64)})
    check_against_ort(model, {"a": a}, tmp_path)


def test_integer_wraparound(tmp_path):
    # int32 Mul/Add wrap modulo 2**32, as onnxruntime's do.
    a = np.array([2**30, -(2**31), 65536, 7], np.int32)
    b = np.array([4, -1, 65536, -3], np.int32)
    nodes = [helper.make_node("Mul", ["a", "b"], ["m"]), helper.make_node("Add", ["m", "a"], ["y"])]
    model = make_model(nodes, {"a": (np.int32, (4,)), "b": (np.int32, (4,))}, {"y": (np.int32, (4,))})
    check_against_ort(model, {"a": a, "b": b}, tmp_path)


def test_binary_constant_operand(tmp_path):
    # x * w + bias with initializers: constants take part in the broadcast.
    rng = np.random.default_rng(32)
    nodes = [helper.make_node("Mul", ["x", "w"], ["t"]), helper.make_node("Add", ["t", "bias"], ["y"])]
    model = make_model(nodes, {"x": (F32, (3, 5))}, {"y": (F32, (3, 5))},
                       {"w": rand(rng, (5,)), "bias": np.array(0.25, F32)})
    check_against_ort(model, {"x": rand(rng, (3, 5))}, tmp_path)


def test_binary_unsupported_dtype():
    model = single_node("Add", {"a": (np.bool_, (3,)), "b": (np.bool_, (3,))}, np.bool_, (3,))
    with pytest.raises(qc.ModelError):  # the checker (Add has no bool form) or the importer
        qc.compile(model, emit="input")


def test_binary_float16_rejected():
    model = single_node("Add", {"a": (np.float16, (3,)), "b": (np.float16, (3,))}, np.float16, (3,))
    with pytest.raises(qc.UnsupportedOp, match=r"node 'add0' \(Add\): element type float16 is not supported"):
        qc.compile(model, emit="input")


# --- Relu / Sigmoid / Tanh --------------------------------------------------

@pytest.mark.parametrize("op", ["Relu", "Sigmoid", "Tanh"])
@pytest.mark.parametrize("shape", [(1,),  # one element
                                   (33,),  # odd size
                                   (2, 3, 7)])  # rank 3
def test_activation(op, shape, tmp_path):
    rng = np.random.default_rng(40)
    x = rand(rng, shape) * 4  # past tanh/sigmoid's linear region
    model = single_node(op, {"x": (F32, shape)}, F32, shape)
    check_against_ort(model, {"x": x}, tmp_path)


@pytest.mark.parametrize("op", ["Relu", "Sigmoid", "Tanh"])
def test_activation_extremes(op, tmp_path):
    # Saturation: sigmoid(-100) underflows to 0, tanh(+-30) is +-1; zeros stay 0.
    x = np.array([-100.0, -30.0, -1e-8, 0.0, -0.0, 1e-8, 30.0, 100.0, 88.0, -88.0], F32)
    model = single_node(op, {"x": (F32, x.shape)}, F32, x.shape)
    check_against_ort(model, {"x": x}, tmp_path)


@pytest.mark.parametrize("op", ["Relu", "Sigmoid", "Tanh"])
def test_activation_float64(op, tmp_path):
    rng = np.random.default_rng(41)
    model = single_node(op, {"x": (np.float64, (4, 5))}, np.float64, (4, 5))
    check_against_ort(model, {"x": rand(rng, (4, 5), np.float64) * 3}, tmp_path)


@pytest.mark.parametrize("dtype", [np.int32, np.int64])
def test_relu_integer(dtype, tmp_path):
    x = np.array([-5, -1, 0, 1, 7, np.iinfo(dtype).min, np.iinfo(dtype).max], dtype)
    model = single_node("Relu", {"x": (dtype, x.shape)}, dtype, x.shape)
    # onnxruntime has no integer Relu kernel for every type: compare with numpy.
    lib = tmp_path / "relu.so"
    qc.compile(model, lib)
    with qc.load(lib) as m:
        np.testing.assert_array_equal(m(x)["y"], np.maximum(x, 0))


@pytest.mark.parametrize("op", ["Sigmoid", "Tanh"])
def test_activation_integer_rejected(op):
    model = single_node(op, {"x": (np.int32, (3,))}, np.int32, (3,))
    with pytest.raises(qc.ModelError):  # the checker (float-only ops) or the importer
        qc.compile(model, emit="input")


# --- Softmax ----------------------------------------------------------------

SOFTMAX_CASES = [
    # opset, shape, axis (None: the opset's default)
    (11, (3, 7), None),  # default axis 1 on 2-D: rows
    (11, (2, 3, 5), None),  # default axis 1: reduces dims 1 and 2 together
    (11, (2, 3, 5), 0),  # axis 0: the whole tensor
    (11, (2, 3, 5), 2),  # last dim only
    (11, (2, 3, 5), -2),  # negative axis: dims 1 and 2
    (13, (3, 7), None),  # default axis -1
    (13, (2, 3, 5), 1),  # a middle axis alone
    (13, (2, 3, 5), 0),  # the first axis alone
    (13, (2, 3, 5), -3),  # negative first axis
    (13, (1, 33), -1),  # odd row length
    (13, (4, 1), -1),  # a size-1 axis: all ones
]


@pytest.mark.parametrize("opset,shape,axis", SOFTMAX_CASES, ids=str)
def test_softmax(opset, shape, axis, tmp_path):
    rng = np.random.default_rng(50)
    attrs = {} if axis is None else {"axis": axis}
    model = single_node("Softmax", {"x": (F32, shape)}, F32, shape, opset=opset, **attrs)
    check_against_ort(model, {"x": rand(rng, shape) * 5}, tmp_path)


def test_softmax_large_values(tmp_path):
    # exp(1000) overflows unless the max is subtracted first.
    x = np.array([[1000.0, 999.0, 998.0], [-1000.0, -1001.0, -999.0]], F32)
    model = single_node("Softmax", {"x": (F32, x.shape)}, F32, x.shape, opset=13)
    got = check_against_ort(model, {"x": x}, tmp_path)
    assert np.all(np.isfinite(got["y"]))


def test_softmax_float64(tmp_path):
    rng = np.random.default_rng(51)
    model = single_node("Softmax", {"x": (np.float64, (3, 4))}, np.float64, (3, 4), opset=13, axis=0)
    check_against_ort(model, {"x": rand(rng, (3, 4), np.float64)}, tmp_path)


@pytest.mark.parametrize("opset", [11, 13])
def test_softmax_axis_out_of_range(opset):
    model = single_node("Softmax", {"x": (F32, (2, 3))}, F32, (2, 3), opset=opset, axis=2)
    with pytest.raises(qc.ModelError, match="axis"):
        qc.compile(model, emit="input")


# --- Identity, Constant, Reshape, Flatten, Transpose --------------------------

def test_identity_between_ops(tmp_path):
    rng = np.random.default_rng(60)
    nodes = [helper.make_node("Identity", ["x"], ["t"]), helper.make_node("Relu", ["t"], ["y"])]
    model = make_model(nodes, {"x": (F32, (3, 4))}, {"y": (F32, (3, 4))})
    check_against_ort(model, {"x": rand(rng, (3, 4))}, tmp_path)


@pytest.mark.parametrize("attr,value,dtype,shape", [
    ("value", onnx.numpy_helper.from_array(np.arange(6, dtype=F32).reshape(2, 3) - 2.5), F32, (2, 3)),
    ("value_float", 1.5, F32, ()),
    ("value_floats", [1.0, -2.0, 3.5], F32, (3,)),
    ("value_int", 7, np.int64, ()),
    ("value_ints", [3, -1, 4], np.int64, (3,)),
], ids=["value", "value_float", "value_floats", "value_int", "value_ints"])
def test_constant_forms(attr, value, dtype, shape, tmp_path):
    # The constant meets a runtime input, so it is materialized in the IR.
    rng = np.random.default_rng(61)
    nodes = [helper.make_node("Constant", [], ["c"], **{attr: value}),
             helper.make_node("Add", ["x", "c"], ["y"])]
    model = make_model(nodes, {"x": (dtype, shape)}, {"y": (dtype, shape)})
    check_against_ort(model, {"x": rand(rng, shape, dtype)}, tmp_path)


RESHAPES = [
    ((2, 3, 4), [6, 4]),  # merge leading dims
    ((2, 3, 4), [4, -1]),  # -1 inferred
    ((2, 3, 4), [0, -1]),  # 0 copies dim 0
    ((2, 3, 4), [0, 0, 2, 2]),  # 0 twice, then a split
    ((24,), [2, 3, -1]),  # rank 1 → 3
    ((1, 7), [7]),  # drop a unit dim
    ((7,), [1, 7, 1]),  # add unit dims
    ((1,), []),  # to rank 0
    ((2, 1, 3, 1), [2, 3]),  # a collapse that absorbs unit dims, one trailing
    ((2, 3), [1, 2, 1, 3]),  # an expand that adds unit dims between
    ((2, 6), [4, 3]),  # same rank, neither a collapse nor an expand
    ((2, 3, 4), [3, 8]),  # lower rank, but not a merge of adjacent dims
]


@pytest.mark.parametrize("in_shape,spec", RESHAPES, ids=str)
def test_reshape(in_shape, spec, tmp_path):
    rng = np.random.default_rng(62)
    x = rand(rng, in_shape)
    out = np.reshape(x, [in_shape[i] if d == 0 else d for i, d in enumerate(spec)])
    # Relu afterwards: the reshape feeds a real op, not just the return.
    nodes = [helper.make_node("Reshape", ["x", "s"], ["t"]), helper.make_node("Relu", ["t"], ["y"])]
    model = make_model(nodes, {"x": (F32, in_shape)}, {"y": (F32, out.shape)},
                       {"s": np.array(spec, np.int64)})
    check_against_ort(model, {"x": x}, tmp_path)


def test_reshape_shape_from_shape_op(tmp_path):
    # Reshape(x, Shape(w)): the shape subgraph folds to a constant at compile time.
    rng = np.random.default_rng(63)
    nodes = [helper.make_node("Shape", ["w"], ["s"]), helper.make_node("Reshape", ["x", "s"], ["y"])]
    model = make_model(nodes, {"x": (F32, (2, 6))}, {"y": (F32, (3, 4))}, {"w": np.zeros((3, 4), F32)})
    check_against_ort(model, {"x": rand(rng, (2, 6))}, tmp_path)


def test_reshape_runtime_shape_rejected():
    node = helper.make_node("Reshape", ["x", "s"], ["y"], name="r0")
    model = make_model([node], {"x": (F32, (2, 3)), "s": (np.int64, (2,))}, {"y": (F32, (3, 2))})
    with pytest.raises(qc.UnsupportedOp, match=r"node 'r0' \(Reshape\): the shape input must be known"):
        qc.compile(model, emit="input")


@pytest.mark.parametrize("shape,axis", [
    ((2, 3, 4), None),  # default axis 1
    ((2, 3, 4), 0),  # axis 0: one row
    ((2, 3, 4), 3),  # axis = rank: one column
    ((2, 3, 4), 2),
    ((2, 3, 4), -1),  # negative: counts from the end
    ((2, 3, 4, 5), -3),
    ((7,), 1),  # rank 1
])
def test_flatten(shape, axis, tmp_path):
    rng = np.random.default_rng(64)
    ax = 1 if axis is None else axis % (len(shape) + 1) if axis >= 0 else axis + len(shape)
    outer = int(np.prod(shape[:ax]))
    attrs = {} if axis is None else {"axis": axis}
    model = single_node("Flatten", {"x": (F32, shape)}, F32, (outer, int(np.prod(shape)) // outer), **attrs)
    check_against_ort(model, {"x": rand(rng, shape)}, tmp_path)


@pytest.mark.parametrize("shape,perm", [
    ((3, 5), None),  # default: reversed dims
    ((2, 3, 4), None),
    ((2, 3, 4), [0, 2, 1]),
    ((2, 3, 4, 5), [0, 3, 1, 2]),  # NHWC → NCHW-style
    ((2, 3, 4), [0, 1, 2]),  # identity permutation
    ((1, 7), [1, 0]),  # unit dim
])
def test_transpose(shape, perm, tmp_path):
    rng = np.random.default_rng(65)
    out = np.transpose(np.zeros(shape), perm).shape
    attrs = {} if perm is None else {"perm": perm}
    model = single_node("Transpose", {"x": (F32, shape)}, F32, out, **attrs)
    check_against_ort(model, {"x": rand(rng, shape)}, tmp_path)


@pytest.mark.parametrize("dtype", [np.int32, np.int64])
def test_data_movement_integer(dtype, tmp_path):
    # Transpose and Reshape move integers bit-exactly.
    rng = np.random.default_rng(66)
    nodes = [helper.make_node("Transpose", ["x"], ["t"], perm=[1, 0]),
             helper.make_node("Reshape", ["t", "s"], ["y"])]
    model = make_model(nodes, {"x": (dtype, (3, 4))}, {"y": (dtype, (2, 6))}, {"s": np.array([2, 6], np.int64)})
    check_against_ort(model, {"x": rand(rng, (3, 4), dtype)}, tmp_path)


def test_transpose_bad_perm():
    model = single_node("Transpose", {"x": (F32, (2, 3))}, F32, (3, 2), perm=[0, 0])
    with pytest.raises(qc.ModelError):
        qc.compile(model, emit="input")


# --- Graphs -----------------------------------------------------------------

def test_mlp(tmp_path):
    # Flatten → Gemm → Relu → MatMul + bias → Softmax: a small classifier.
    rng = np.random.default_rng(70)
    nodes = [
        helper.make_node("Flatten", ["x"], ["f"]),
        helper.make_node("Gemm", ["f", "w1", "b1"], ["h"], transB=1),
        helper.make_node("Relu", ["h"], ["r"]),
        helper.make_node("MatMul", ["r", "w2"], ["m"]),
        helper.make_node("Add", ["m", "b2"], ["logits"]),
        helper.make_node("Sigmoid", ["logits"], ["s"]),
        helper.make_node("Mul", ["logits", "s"], ["g"]),  # SiLU: a fusable chain
        helper.make_node("Softmax", ["g"], ["y"], axis=-1),
    ]
    inits = {"w1": rand(rng, (16, 12)) * 0.3, "b1": rand(rng, (16,)),
             "w2": rand(rng, (16, 10)) * 0.3, "b2": rand(rng, (10,))}
    model = make_model(nodes, {"x": (F32, (5, 3, 4))}, {"y": (F32, (5, 10))}, inits)
    check_against_ort(model, {"x": rand(rng, (5, 3, 4))}, tmp_path)


def test_residual_chain(tmp_path):
    # y = tanh(x @ w) + x, and the intermediate used twice.
    rng = np.random.default_rng(71)
    nodes = [
        helper.make_node("MatMul", ["x", "w"], ["m"]),
        helper.make_node("Tanh", ["m"], ["t"]),
        helper.make_node("Add", ["t", "x"], ["a"]),
        helper.make_node("Mul", ["a", "t"], ["y"]),
    ]
    model = make_model(nodes, {"x": (F32, (2, 3, 8))}, {"y": (F32, (2, 3, 8))}, {"w": rand(rng, (8, 8)) * 0.3})
    check_against_ort(model, {"x": rand(rng, (2, 3, 8))}, tmp_path)


def test_two_outputs(tmp_path):
    # An intermediate that is also an output, and a second output after it.
    rng = np.random.default_rng(72)
    nodes = [helper.make_node("MatMul", ["x", "w"], ["h"]), helper.make_node("Relu", ["h"], ["y"])]
    model = make_model(nodes, {"x": (F32, (3, 4))}, {"h": (F32, (3, 5)), "y": (F32, (3, 5))},
                       {"w": rand(rng, (4, 5))})
    got = check_against_ort(model, {"x": rand(rng, (3, 4))}, tmp_path)
    np.testing.assert_array_equal(got["y"], np.maximum(got["h"], 0))


def test_output_is_input(tmp_path):
    # An output that is a graph input (through Identity), beside a computed one.
    rng = np.random.default_rng(73)
    nodes = [helper.make_node("Identity", ["x"], ["same"]), helper.make_node("Sigmoid", ["x"], ["y"])]
    model = make_model(nodes, {"x": (F32, (2, 7))}, {"same": (F32, (2, 7)), "y": (F32, (2, 7))})
    x = rand(rng, (2, 7))
    got = check_against_ort(model, {"x": x}, tmp_path)
    np.testing.assert_array_equal(got["same"], x)


def test_only_output_is_input(tmp_path):
    # The whole model is Identity: the output buffer gets a copy of the input.
    rng = np.random.default_rng(74)
    model = make_model([helper.make_node("Identity", ["x"], ["y"])], {"x": (np.int64, (5,))},
                       {"y": (np.int64, (5,))})
    check_against_ort(model, {"x": rand(rng, (5,), np.int64)}, tmp_path)


def test_output_is_constant(tmp_path):
    # One output computed at run time, one a Constant, one an initializer through Identity.
    rng = np.random.default_rng(75)
    table = np.arange(12, dtype=F32).reshape(3, 4) / 7
    nodes = [
        helper.make_node("Relu", ["x"], ["y"]),
        helper.make_node("Constant", [], ["k"], value=onnx.numpy_helper.from_array(np.array([4, -2, 9], np.int64))),
        helper.make_node("Identity", ["w"], ["table"]),
    ]
    model = make_model(nodes, {"x": (F32, (2, 2))},
                       {"y": (F32, (2, 2)), "k": (np.int64, (3,)), "table": (F32, (3, 4))}, {"w": table})
    got = check_against_ort(model, {"x": rand(rng, (2, 2))}, tmp_path)
    np.testing.assert_array_equal(got["table"], table)


def test_same_value_two_outputs(tmp_path):
    # Two outputs naming one computed value (via Identity): the function returns it twice.
    rng = np.random.default_rng(76)
    nodes = [helper.make_node("Tanh", ["x"], ["y"]), helper.make_node("Identity", ["y"], ["z"])]
    model = make_model(nodes, {"x": (F32, (4,))}, {"y": (F32, (4,)), "z": (F32, (4,))})
    got = check_against_ort(model, {"x": rand(rng, (4,))}, tmp_path)
    np.testing.assert_array_equal(got["y"], got["z"])


def test_input_returned_twice(tmp_path):
    rng = np.random.default_rng(79)
    nodes = [helper.make_node("Identity", ["x"], ["a"]), helper.make_node("Identity", ["x"], ["b"])]
    model = make_model(nodes, {"x": (F32, (2, 3))}, {"a": (F32, (2, 3)), "b": (F32, (2, 3))})
    check_against_ort(model, {"x": rand(rng, (2, 3))}, tmp_path)


def test_two_inputs_out_of_order_outputs(tmp_path):
    # Outputs declared in a different order from the nodes producing them.
    rng = np.random.default_rng(77)
    nodes = [helper.make_node("Add", ["a", "b"], ["s"]), helper.make_node("Sub", ["a", "b"], ["d"])]
    model = make_model(nodes, {"a": (F32, (3,)), "b": (F32, (3,))}, {"d": (F32, (3,)), "s": (F32, (3,))})
    check_against_ort(model, {"a": rand(rng, (3,)), "b": rand(rng, (3,))}, tmp_path)


def test_constant_subgraph_is_folded(tmp_path):
    # Transpose of an initializer happens at compile time; the runtime input goes through MatMul.
    rng = np.random.default_rng(78)
    nodes = [helper.make_node("Transpose", ["w"], ["wt"]), helper.make_node("MatMul", ["x", "wt"], ["y"])]
    model = make_model(nodes, {"x": (F32, (2, 3))}, {"y": (F32, (2, 4))}, {"w": rand(rng, (4, 3))})
    check_against_ort(model, {"x": rand(rng, (2, 3))}, tmp_path)
