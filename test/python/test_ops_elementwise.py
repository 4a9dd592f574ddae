"""Numerics of the elementwise ONNX ops against onnxruntime.

Unary math and activations (Exp ... Mish, LeakyRelu ... Gelu), Clip in both
opset forms, Pow, PRelu; the variadic Min/Max/Sum/Mean; comparisons, logic
and Where; Cast and CastLike.

Data inputs are graph inputs (runtime values) so each op goes through its
importer rather than being constant-folded. Data is NaN-free and kept inside
each op's domain (positive for Log/Sqrt, in range for casts). Floats are
compared with rtol 1e-5, integers and booleans exactly.

Bool tensors between ops stay in registers: the lowering fuses a comparison
into the op that consumes it. Bool tensors in memory (graph inputs and
outputs) are one byte per element (qc-bool-memory); test_bool_io checks them.
"""

from __future__ import annotations

import numpy as np
import pytest
from helpers import ONNX_TYPE, check_against_ort, make_model
from onnx import TensorProto, helper

import qc

F32, F64 = np.float32, np.float64
I8, U8, I32, I64 = np.int8, np.uint8, np.int32, np.int64
BOOL = np.bool_


def rand(rng, shape, dtype=F32, lo=-3.0, hi=3.0):
    if np.issubdtype(dtype, np.integer):
        return rng.integers(int(lo), int(hi) + 1, shape).astype(dtype)
    return rng.uniform(lo, hi, shape).astype(dtype)


def single_node(op, inputs: dict, out_dtype, out_shape, opset=18, inits=None, input_names=None, **attrs):
    names = input_names or [*inputs, *(inits or {})]
    node = helper.make_node(op, names, ["y"], name=f"{op.lower()}0", **attrs)
    return make_model([node], inputs, {"y": (out_dtype, out_shape)}, inits, opset=opset)


def unary(op, x, opset=18, **attrs):
    return single_node(op, {"x": (x.dtype, x.shape)}, x.dtype, x.shape, opset=opset, **attrs)


# --- float unary ops and activations -----------------------------------------

# (op, attributes, opset, input range): the range keeps each op in its domain.
FLOAT_UNARY = [
    ("Exp", {}, 18, (-5, 5)),
    ("Log", {}, 18, (0.01, 10)),
    ("Sqrt", {}, 18, (0, 10)),
    ("Erf", {}, 18, (-3, 3)),
    ("Floor", {}, 18, (-5, 5)),
    ("Ceil", {}, 18, (-5, 5)),
    ("Reciprocal", {}, 18, (0.5, 4)),
    ("Neg", {}, 18, (-5, 5)),
    ("Abs", {}, 18, (-5, 5)),
    ("Sign", {}, 18, (-2, 2)),
    ("Softsign", {}, 18, (-5, 5)),
    ("Softplus", {}, 18, (-20, 20)),  # both tails of the stable form
    ("Mish", {}, 18, (-6, 6)),
    ("LeakyRelu", {}, 18, (-3, 3)),  # default alpha 0.01
    ("LeakyRelu", {"alpha": 0.3}, 18, (-3, 3)),
    ("HardSigmoid", {}, 18, (-6, 6)),  # defaults 0.2, 0.5; both clamps hit
    ("HardSigmoid", {"alpha": 0.5, "beta": 0.25}, 18, (-3, 3)),
    ("HardSwish", {}, 18, (-5, 5)),
    ("Elu", {}, 18, (-3, 3)),
    ("Elu", {"alpha": 0.5}, 18, (-3, 3)),
    ("Selu", {}, 18, (-3, 3)),
    ("Selu", {"alpha": 1.5, "gamma": 2.0}, 18, (-3, 3)),
    ("Gelu", {}, 20, (-4, 4)),
    ("Gelu", {"approximate": "tanh"}, 20, (-4, 4)),
]


@pytest.mark.parametrize("op,attrs,opset,domain", FLOAT_UNARY,
                         ids=[f"{o}-{'-'.join(map(str, a.values())) or 'default'}" for o, a, *_ in FLOAT_UNARY])
def test_float_unary(op, attrs, opset, domain, tmp_path):
    rng = np.random.default_rng(100)
    x = rand(rng, (3, 7, 5), F32, *domain)  # odd sizes: no dim divides a vector width
    check_against_ort(unary(op, x, opset, **attrs), {"x": x}, tmp_path)


@pytest.mark.parametrize("op", ["Exp", "Log", "Sqrt", "Neg", "Abs", "Floor", "Round", "LeakyRelu", "Elu"])
def test_float64_unary(op, tmp_path):
    # The f64 payloads (math ops and libm calls on double); onnxruntime has
    # double kernels for these ops.
    rng = np.random.default_rng(101)
    x = rand(rng, (4, 9), F64, 0.1, 5) if op in ("Log", "Sqrt") else rand(rng, (4, 9), F64, -5, 5)
    check_against_ort(unary(op, x), {"x": x}, tmp_path)


def test_round_half_to_even(tmp_path):
    # ONNX Round rounds halves to the even neighbour (numpy.round), not away from 0.
    x = np.array([-2.5, -1.5, -0.5, 0.5, 1.5, 2.5, 3.5, 0.49999997, -0.50000006, 7.25, -7.75], F32)
    got = check_against_ort(unary("Round", x), {"x": x}, tmp_path)
    np.testing.assert_array_equal(got["y"], np.round(x))


def test_sign_of_zero(tmp_path):
    x = np.array([0.0, -0.0, 1e-30, -1e-30, 3.0, -7.0], F32)
    got = check_against_ort(unary("Sign", x), {"x": x}, tmp_path)
    np.testing.assert_array_equal(got["y"], [0, 0, 1, -1, 1, -1])


@pytest.mark.parametrize("op", ["Neg", "Abs", "Sign"])
@pytest.mark.parametrize("dtype", [I8, I32, I64])
def test_signed_int_unary(op, dtype, tmp_path):
    rng = np.random.default_rng(102)
    x = rand(rng, (5, 3), dtype, -100, 100)
    x[0, 0] = 0
    check_against_ort(unary(op, x), {"x": x}, tmp_path)


@pytest.mark.parametrize("op", ["Abs", "Sign"])
def test_unsigned_unary(op, tmp_path):
    # Values >= 128 would be negative if read as signed i8.
    x = np.arange(0, 250, 17).astype(U8)
    check_against_ort(unary(op, x), {"x": x}, tmp_path)


def test_unary_chain_fuses(tmp_path):
    # Exp → Log → Sqrt → Softplus fuse into one loop nest with several libm calls.
    rng = np.random.default_rng(103)
    x = rand(rng, (6, 11), F32, 0.5, 3)
    nodes = [helper.make_node("Exp", ["x"], ["a"]), helper.make_node("Log", ["a"], ["b"]),
             helper.make_node("Sqrt", ["b"], ["c"]), helper.make_node("Softplus", ["c"], ["y"])]
    model = make_model(nodes, {"x": (F32, x.shape)}, {"y": (F32, x.shape)})
    check_against_ort(model, {"x": x}, tmp_path)


# --- PRelu --------------------------------------------------------------------

PRELU_SLOPES = [
    ((2, 3, 4, 5), (3, 1, 1)),  # per-channel slope of an NCHW tensor
    ((2, 3, 4, 5), (5,)),  # trailing-dim slope
    ((2, 3, 4, 5), (1,)),  # one shared slope
    ((7, 3), (7, 3)),  # elementwise slope
]


@pytest.mark.parametrize("x_shape,s_shape", PRELU_SLOPES, ids=str)
def test_prelu(x_shape, s_shape, tmp_path):
    rng = np.random.default_rng(110)
    feeds = {"x": rand(rng, x_shape), "s": rand(rng, s_shape, F32, 0, 1)}
    model = single_node("PRelu", {"x": (F32, x_shape), "s": (F32, s_shape)}, F32, x_shape)
    check_against_ort(model, feeds, tmp_path)


@pytest.mark.parametrize("dtype", [I32, I64])
def test_prelu_int(dtype, tmp_path):
    rng = np.random.default_rng(111)
    feeds = {"x": rand(rng, (4, 3), dtype, -9, 9), "s": rand(rng, (3,), dtype, -3, 3)}
    model = single_node("PRelu", {"x": (dtype, (4, 3)), "s": (dtype, (3,))}, dtype, (4, 3))
    check_against_ort(model, feeds, tmp_path)


def test_prelu_constant_slope(tmp_path):
    # The usual layer: the slope is a weight.
    rng = np.random.default_rng(112)
    x = rand(rng, (1, 4, 3, 3))
    model = single_node("PRelu", {"x": (F32, x.shape)}, F32, x.shape,
                        inits={"s": rand(rng, (4, 1, 1), F32, 0, 0.5)})
    check_against_ort(model, {"x": x}, tmp_path)


# --- Clip ---------------------------------------------------------------------

@pytest.mark.parametrize("bounds", [{"min": -0.5, "max": 0.75}, {"max": 0.2}, {"min": 0.0}, {}], ids=str)
def test_clip_opset10_attributes(bounds, tmp_path):
    # Before opset 11 the bounds are attributes; a missing one does not clamp.
    rng = np.random.default_rng(120)
    x = rand(rng, (3, 9))
    check_against_ort(unary("Clip", x, opset=10, **bounds), {"x": x}, tmp_path)


CLIP_INPUTS = [
    ("runtime", "runtime"),  # both bounds are graph inputs (rank-0 operands)
    ("const", "const"),  # folded into the payload
    ("absent", "const"),  # min left out with an empty name
    ("const", "absent"),  # max left out (trailing input omitted)
    ("absent", "absent"),  # no clamping at all
    ("runtime", "const"),
]


@pytest.mark.parametrize("lo,hi", CLIP_INPUTS, ids=str)
def test_clip_opset13_inputs(lo, hi, tmp_path):
    rng = np.random.default_rng(121)
    x = rand(rng, (5, 7))
    inputs, inits, feeds, names = {"x": (F32, x.shape)}, {}, {"x": x}, ["x"]
    for name, kind, value in (("lo", lo, -0.6), ("hi", hi, 0.9)):
        if kind == "runtime":
            inputs[name] = (F32, ())
            feeds[name] = np.array(value, F32)
        elif kind == "const":
            inits[name] = np.array(value, F32)
        names.append(name if kind != "absent" else "")
    while names[-1] == "":
        names.pop()
    model = single_node("Clip", inputs, F32, x.shape, opset=13, inits=inits, input_names=names)
    check_against_ort(model, feeds, tmp_path)


def test_clip_min_above_max(tmp_path):
    # ONNX: with min > max every element becomes max.
    x = np.linspace(-2, 2, 9).astype(F32)
    model = single_node("Clip", {"x": (F32, x.shape)}, F32, x.shape, opset=13,
                        inits={"lo": np.array(1.0, F32), "hi": np.array(-1.0, F32)})
    got = check_against_ort(model, {"x": x}, tmp_path)
    np.testing.assert_array_equal(got["y"], np.full(9, -1.0, F32))


@pytest.mark.parametrize("dtype", [I8, U8, I32, I64])
def test_clip_int(dtype, tmp_path):
    rng = np.random.default_rng(122)
    lo_bound = 3 if dtype == U8 else -7
    x = rand(rng, (4, 5), dtype, 0 if dtype == U8 else -20, 20)
    model = single_node("Clip", {"x": (dtype, x.shape), "hi": (dtype, ())}, dtype, x.shape, opset=13,
                        inits={"lo": np.array(lo_bound, dtype)}, input_names=["x", "lo", "hi"])
    check_against_ort(model, {"x": x, "hi": np.array(9, dtype)}, tmp_path)


# --- Pow ----------------------------------------------------------------------

def test_pow_float_broadcast(tmp_path):
    rng = np.random.default_rng(130)
    feeds = {"x": rand(rng, (3, 1, 5), F32, 0.1, 3), "e": rand(rng, (4, 1), F32, -2, 2)}
    model = single_node("Pow", {"x": (F32, (3, 1, 5)), "e": (F32, (4, 1))}, F32, (3, 4, 5))
    check_against_ort(model, feeds, tmp_path)


@pytest.mark.parametrize("edtype", [I32, I64])
def test_pow_int_exponent(edtype, tmp_path):
    # Integer exponents make negative bases valid (a float exponent would give NaN).
    rng = np.random.default_rng(131)
    feeds = {"x": rand(rng, (4, 6), F32, -2, 2), "e": np.array([0, 1, 2, 3, -1, 5], edtype)}
    model = single_node("Pow", {"x": (F32, (4, 6)), "e": (edtype, (6,))}, F32, (4, 6))
    check_against_ort(model, feeds, tmp_path)


@pytest.mark.parametrize("dtype", [I32, I64])
def test_pow_int_base(dtype, tmp_path):
    rng = np.random.default_rng(132)
    feeds = {"x": rand(rng, (3, 5), dtype, -6, 6), "e": np.array([0, 1, 2, 3, 7], dtype)}
    model = single_node("Pow", {"x": (dtype, (3, 5)), "e": (dtype, (5,))}, dtype, (3, 5))
    check_against_ort(model, feeds, tmp_path)


def test_pow_float64(tmp_path):
    rng = np.random.default_rng(133)
    feeds = {"x": rand(rng, (7,), F64, 0.1, 4), "e": rand(rng, (7,), F64, -3, 3)}
    model = single_node("Pow", {"x": (F64, (7,)), "e": (F64, (7,))}, F64, (7,))
    check_against_ort(model, feeds, tmp_path)


@pytest.mark.parametrize("p,dtype", [(2.0, F32), (0.5, F32), (3.0, F32), (1.0, F32), (1.5, F32), (2, I32)])
def test_pow_constant_exponent(p, dtype, tmp_path):
    # 1, 2, 3 and 0.5 are specialized (x, x*x, x*x*x, sqrt); 1.5 goes to powf.
    rng = np.random.default_rng(134)
    x = rand(rng, (3, 7), dtype, 0 if dtype == F32 else -9, 4 if dtype == F32 else 9)
    model = single_node("Pow", {"x": (dtype, x.shape)}, dtype, x.shape, inits={"e": np.array(p, dtype)})
    check_against_ort(model, {"x": x}, tmp_path)


def test_pow_square_ir():
    model = single_node("Pow", {"x": (F32, (4,))}, F32, (4,), inits={"e": np.array(2.0, F32)})
    ir = qc.compile(model, emit="input")
    assert "arith.mulf" in ir and "math.powf" not in ir


# --- variadic -----------------------------------------------------------------

VARIADIC_SHAPES = [
    [(3, 5)],  # one input: returned as it is
    [(3, 5), (3, 5)],  # same shapes
    [(2, 1, 5), (3, 1), (5,)],  # three inputs broadcast to (2, 3, 5)
    [(1,), (4, 1, 3), (2, 3), ()],  # four, with a scalar
]


@pytest.mark.parametrize("op", ["Min", "Max", "Sum", "Mean"])
@pytest.mark.parametrize("shapes", VARIADIC_SHAPES, ids=lambda s: f"{len(s)}in")
def test_variadic(op, shapes, tmp_path):
    rng = np.random.default_rng(140)
    feeds = {f"x{i}": rand(rng, s) for i, s in enumerate(shapes)}
    out = np.broadcast_shapes(*shapes)
    model = single_node(op, {n: (F32, v.shape) for n, v in feeds.items()}, F32, out)
    check_against_ort(model, feeds, tmp_path)


@pytest.mark.parametrize("op", ["Min", "Max"])
@pytest.mark.parametrize("dtype", [U8, I32, I64])
def test_min_max_int(op, dtype, tmp_path):
    # uint8 checks the unsigned comparisons (200 > 100 as unsigned, not as i8).
    rng = np.random.default_rng(141)
    lo, hi = (0, 255) if dtype == U8 else (-50, 50)
    feeds = {"a": rand(rng, (4, 3), dtype, lo, hi), "b": rand(rng, (3,), dtype, lo, hi)}
    model = single_node(op, {"a": (dtype, (4, 3)), "b": (dtype, (3,))}, dtype, (4, 3))
    check_against_ort(model, feeds, tmp_path)


def test_sum_float64(tmp_path):
    rng = np.random.default_rng(142)
    feeds = {"a": rand(rng, (2, 3), F64), "b": rand(rng, (2, 3), F64), "c": rand(rng, (3,), F64)}
    model = single_node("Sum", {n: (F64, v.shape) for n, v in feeds.items()}, F64, (2, 3))
    check_against_ort(model, feeds, tmp_path)


# --- comparisons, logic, Where --------------------------------------------------
# Each boolean result is consumed inside the graph (Cast, Where) and fused
# with its producer, so the graph's inputs and outputs are not bool.

def cast_node(src, dst, to):
    return helper.make_node("Cast", [src], [dst], to=ONNX_TYPE[np.dtype(to)])


@pytest.mark.parametrize("op", ["Equal", "Less", "LessOrEqual", "Greater", "GreaterOrEqual"])
@pytest.mark.parametrize("dtype", [F32, I32, I64, U8])
def test_compare(op, dtype, tmp_path):
    rng = np.random.default_rng(150)
    lo, hi = (0, 255) if dtype == U8 else (-3, 3)
    a, b = rand(rng, (2, 3, 5), dtype, lo, hi), rand(rng, (3, 1), dtype, lo, hi)
    if dtype == F32:
        a[0, :, 0] = b[:, 0]  # exact ties for the equality cases
    nodes = [helper.make_node(op, ["a", "b"], ["m"]), cast_node("m", "y", I32)]
    model = make_model(nodes, {"a": (dtype, a.shape), "b": (dtype, b.shape)}, {"y": (I32, (2, 3, 5))})
    check_against_ort(model, {"a": a, "b": b}, tmp_path)


def test_equal_bool(tmp_path):
    # Equal on i1 operands (made by Cast from 0/1 floats).
    rng = np.random.default_rng(151)
    p, q = rand(rng, (4, 5), F32, 0, 1).round(), rand(rng, (5,), F32, 0, 1).round()
    nodes = [cast_node("p", "pb", BOOL), cast_node("q", "qb", BOOL),
             helper.make_node("Equal", ["pb", "qb"], ["m"]), cast_node("m", "y", F32)]
    model = make_model(nodes, {"p": (F32, p.shape), "q": (F32, q.shape)}, {"y": (F32, (4, 5))})
    check_against_ort(model, {"p": p, "q": q}, tmp_path)


@pytest.mark.parametrize("op", ["And", "Or", "Xor", "Not"])
def test_logic(op, tmp_path):
    rng = np.random.default_rng(152)
    p, q = rand(rng, (3, 1, 6), F32, 0, 1).round(), rand(rng, (4, 6), F32, 0, 1).round()
    out = (3, 1, 6) if op == "Not" else (3, 4, 6)
    args = ["pb"] if op == "Not" else ["pb", "qb"]
    nodes = [cast_node("p", "pb", BOOL), cast_node("q", "qb", BOOL),
             helper.make_node(op, args, ["m"]), cast_node("m", "y", I64)]
    model = make_model(nodes, {"p": (F32, p.shape), "q": (F32, q.shape)}, {"y": (I64, out)})
    # Not leaves q unused; onnxruntime still wants a feed for every input.
    check_against_ort(model, {"p": p, "q": q}, tmp_path)


WHERE_SHAPES = [
    ((3, 4), (3, 4), (3, 4)),  # no broadcasting
    ((4,), (3, 1), (2, 1, 1)),  # all three broadcast to (2, 3, 4)
    ((2, 1, 5), (5,), ()),  # a scalar "else" branch
]


@pytest.mark.parametrize("shapes", WHERE_SHAPES, ids=str)
@pytest.mark.parametrize("dtype", [F32, I64])
def test_where(shapes, dtype, tmp_path):
    # cond = a < 0 with a of the condition's shape, then Where(cond, x, y).
    rng = np.random.default_rng(153)
    c_shape, x_shape, y_shape = shapes
    feeds = {"a": rand(rng, c_shape), "x": rand(rng, x_shape, dtype, -9, 9), "z": rand(rng, y_shape, dtype, -9, 9)}
    nodes = [helper.make_node("Less", ["a", "zero"], ["c"]), helper.make_node("Where", ["c", "x", "z"], ["y"])]
    model = make_model(nodes, {"a": (F32, c_shape), "x": (dtype, x_shape), "z": (dtype, y_shape)},
                       {"y": (dtype, np.broadcast_shapes(*shapes))}, {"zero": np.array(0.0, F32)})
    check_against_ort(model, feeds, tmp_path)


# --- Cast ---------------------------------------------------------------------

CASTS = [
    (F32, F64), (F64, F32), (F32, np.float16), (np.float16, F32), (F64, np.float16), (np.float16, F64),
    (F32, I8), (F32, U8), (F32, I32), (F32, I64), (F64, I32), (np.float16, I32),  # truncation toward 0
    (I8, F32), (U8, F32), (I32, F32), (I64, F64), (U8, np.float16),  # signed vs unsigned
    (I8, I64), (U8, I32), (I32, I64), (I64, I32), (I32, I8), (I64, U8), (U8, I8), (I8, U8),
]


def cast_data(rng, src, dst, shape):
    """Values every type involved represents (out-of-range casts are undefined)."""
    lo, hi = -100.0, 100.0
    if np.dtype(src) == U8 or np.dtype(dst) == U8:
        lo, hi = 0.0, 127.0
    if np.dtype(src) == I8 or np.dtype(dst) == I8:
        hi = 127.0
    if np.issubdtype(src, np.floating):
        return rng.uniform(lo, hi, shape).astype(src)  # fractions check the rounding mode
    return rng.integers(int(lo), int(hi) + 1, shape).astype(src)


@pytest.mark.parametrize("src,dst", CASTS, ids=lambda t: np.dtype(t).name)
def test_cast(src, dst, tmp_path):
    rng = np.random.default_rng(160)
    x = cast_data(rng, src, dst, (3, 11))
    model = single_node("Cast", {"x": (src, x.shape)}, dst, x.shape, to=ONNX_TYPE[np.dtype(dst)])
    check_against_ort(model, {"x": x}, tmp_path)


def test_cast_truncates_toward_zero(tmp_path):
    x = np.array([2.9, -2.9, 0.5, -0.5, 100.99, -100.99, 7.0], F32)
    model = single_node("Cast", {"x": (F32, x.shape)}, I32, x.shape, to=TensorProto.INT32)
    got = check_against_ort(model, {"x": x}, tmp_path)
    np.testing.assert_array_equal(got["y"], [2, -2, 0, 0, 100, -100, 7])


@pytest.mark.parametrize("src,dst", [(F32, F32), (I32, I64), (I64, F64), (U8, F32)], ids=str)
def test_cast_through_bool(src, dst, tmp_path):
    # x → bool (x != 0) → dst (0 or 1); zeros are planted so both values occur.
    rng = np.random.default_rng(161)
    x = cast_data(rng, src, dst, (4, 7))
    x[:, ::3] = 0
    if np.issubdtype(src, np.floating):
        x[0, 1] = np.asarray(0.25, src)  # a fraction is true, not truncated to 0
    nodes = [cast_node("x", "b", BOOL), cast_node("b", "y", dst)]
    model = make_model(nodes, {"x": (src, x.shape)}, {"y": (dst, x.shape)})
    check_against_ort(model, {"x": x}, tmp_path)


def test_cast_same_type_is_identity():
    model = single_node("Cast", {"x": (F32, (3,))}, F32, (3,), to=TensorProto.FLOAT)
    assert "linalg.generic" not in qc.compile(model, emit="input")


@pytest.mark.parametrize("const_target", [True, False], ids=["const-target", "runtime-target"])
def test_cast_like(const_target, tmp_path):
    rng = np.random.default_rng(162)
    x = rand(rng, (2, 5), F32, -50, 50)
    inputs, inits, feeds = {"x": (F32, x.shape)}, {}, {"x": x}
    if const_target:
        inits["t"] = np.zeros((1,), I64)
    else:
        inputs["t"] = (I64, (3,))
        feeds["t"] = np.zeros(3, I64)
    model = single_node("CastLike", inputs, I64, x.shape, inits=inits, input_names=["x", "t"])
    check_against_ort(model, feeds, tmp_path)


# --- unsupported cases ----------------------------------------------------------

UNSUPPORTED = [
    ("Exp", {}, 18, np.float16, "element type float16 is not supported"),
    ("Min", {}, 18, np.float16, "element type float16 is not supported"),
    ("Clip", {"min": 0.0}, 10, np.float16, "element type float16 is not supported"),
    ("Gelu", {"approximate": "fast"}, 20, F32, "approximate='fast' is not supported"),
]


@pytest.mark.parametrize("op,attrs,opset,dtype,message", UNSUPPORTED, ids=[u[0] for u in UNSUPPORTED])
def test_unsupported(op, attrs, opset, dtype, message):
    model = single_node(op, {"x": (dtype, (3,))}, dtype, (3,), opset=opset, **attrs)
    with pytest.raises(qc.UnsupportedOp, match=message):
        qc.compile(model, emit="input")


def test_cast_to_bfloat16_is_unsupported():
    nodes = [helper.make_node("Cast", ["x"], ["h"], name="to_bf16", to=TensorProto.BFLOAT16),
             cast_node("h", "y", F32)]
    model = make_model(nodes, {"x": (F32, (3,))}, {"y": (F32, (3,))})
    with pytest.raises(qc.UnsupportedOp, match=r"'to_bf16' \(Cast\): target type BFLOAT16 is not supported"):
        qc.compile(model, emit="input")


def test_prelu_slope_must_broadcast_to_input():
    # Unidirectional: the slope may not enlarge the input's shape.
    model = single_node("PRelu", {"x": (F32, (3, 1)), "s": (F32, (3, 4))}, F32, (3, 1))
    with pytest.raises(qc.UnsupportedOp, match=r"slope of shape \[3, 4\] does not broadcast"):
        qc.compile(model, emit="input")


def test_clip_bound_must_be_scalar():
    model = single_node("Clip", {"x": (F32, (2, 3)), "lo": (F32, (3,))}, F32, (2, 3), opset=13)
    with pytest.raises(qc.UnsupportedOp, match="must be a scalar"):
        qc.compile(model, emit="input")


# --- bool tensors in memory -------------------------------------------------------

BOOL_IO_CASES = {
    # bool graph output
    "less-out": ("Less", {"a": (F32, (5,)), "b": (F32, (5,))}, (BOOL, (5,))),
    # bool graph input and output
    "not-io": ("Not", {"p": (BOOL, (5,))}, (BOOL, (5,))),
    # bool graph input consumed by a float op
    "where-in": ("Where", {"p": (BOOL, (5,)), "x": (F32, (5,)), "z": (F32, (5,))}, (F32, (5,))),
}


@pytest.mark.parametrize("case", sorted(BOOL_IO_CASES))
def test_bool_io(case, tmp_path):
    """Bool graph inputs/outputs end to end: one byte per element at the ABI."""
    op, inputs, (odt, oshape) = BOOL_IO_CASES[case]
    rng = np.random.default_rng(170)
    feeds = {n: (rng.integers(0, 2, s).astype(d) if d == BOOL else rng.uniform(-1, 1, s).astype(d))
             for n, (d, s) in inputs.items()}
    node = helper.make_node(op, list(inputs), ["y"])
    model = make_model([node], inputs, {"y": (odt, oshape)})
    check_against_ort(model, feeds, tmp_path)
