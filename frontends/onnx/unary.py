"""Unary math and activation ops, each one linalg.generic over its input.

Exp, Log, Sqrt, Erf, Reciprocal, Floor, Ceil, Round, Softsign, Softplus,
Mish, Neg, Abs, Sign; the parametrized activations LeakyRelu, PRelu,
HardSigmoid, HardSwish, Elu, Selu, Gelu; Clip in both forms and Pow.

The payloads use the math dialect where a scalar function is needed
(math.exp, math.erf, math.roundeven, ...); the LLVM lowering turns those into
intrinsics or libm calls. Chains of these generics are fused later.
"""

from __future__ import annotations

import math as pymath
from typing import Callable

import numpy as np

from qc.errors import UnsupportedOp
from qc.mlir import arith, ir, math

from . import builder as b
from .attrs import attrs
from .registry import importer

FLOATS = (np.dtype(np.float32), np.dtype(np.float64))
FLOAT_TYPES = "float32, float64"
SIGNED_TYPES = "float32, float64, int8, int16, int32, int64"


def _float_input(ctx, node, idx: int = 0) -> b.T:
    x = ctx.get(node.input[idx])
    if x.dtype not in FLOATS:
        raise UnsupportedOp(node, f"element type {x.dtype} is not supported", FLOAT_TYPES)
    return x


def _map(x: b.T, fn: Callable[[ir.Value], ir.Value]) -> b.T:
    return b.elementwise([x], x.dtype, fn)


# Scalar helpers for payloads: `dt` is the element's numpy type.
def _c(value, dt) -> ir.Value:
    return b.scalar(value, dt)


def _lt0(a: ir.Value, dt) -> ir.Value:
    if b.is_float(dt):
        return arith.CmpFOp(arith.CmpFPredicate.OLT, a, _c(0.0, dt)).result
    return arith.CmpIOp(arith.CmpIPredicate.slt, a, _c(0, dt)).result


def _mul(a, c):
    return arith.MulFOp(a, c).result


def _add(a, c):
    return arith.AddFOp(a, c).result


def _clamp01(a, dt):
    """min(max(a, 0), 1); NaN propagates, as in numpy's clip."""
    return arith.MinimumFOp(arith.MaximumFOp(a, _c(0.0, dt)).result, _c(1.0, dt)).result


def _softplus(a, dt):
    # softplus(x) = log(1 + exp(x)) = max(x, 0) + log1p(exp(-|x|)); the second
    # form never overflows exp and keeps precision for large |x|.
    pos = arith.MaximumFOp(a, _c(0.0, dt)).result
    e = math.ExpOp(arith.NegFOp(math.AbsFOp(a).result).result).result
    return _add(pos, math.Log1pOp(e).result)


# Float-only ops with no attributes: payload(a, dtype) -> value.
_FLOAT_UNARY: dict[str, Callable] = {
    "Exp": lambda a, dt: math.ExpOp(a).result,
    "Log": lambda a, dt: math.LogOp(a).result,
    "Sqrt": lambda a, dt: math.SqrtOp(a).result,
    "Erf": lambda a, dt: math.ErfOp(a).result,
    "Floor": lambda a, dt: math.FloorOp(a).result,
    "Ceil": lambda a, dt: math.CeilOp(a).result,
    # ONNX Round rounds halves to even, as numpy.round does.
    "Round": lambda a, dt: math.RoundEvenOp(a).result,
    "Reciprocal": lambda a, dt: arith.DivFOp(_c(1.0, dt), a).result,
    # softsign(x) = x / (1 + |x|)
    "Softsign": lambda a, dt: arith.DivFOp(a, _add(_c(1.0, dt), math.AbsFOp(a).result)).result,
    "Softplus": _softplus,
    # mish(x) = x * tanh(softplus(x))
    "Mish": lambda a, dt: _mul(a, math.TanhOp(_softplus(a, dt)).result),
}


@importer(*_FLOAT_UNARY)
def import_float_unary(ctx, node):
    x = _float_input(ctx, node)
    payload = _FLOAT_UNARY[node.op_type]
    return [_map(x, lambda a: payload(a, x.dtype))]


def _signed_input(ctx, node) -> b.T:
    x = ctx.get(node.input[0])
    if x.dtype not in FLOATS and not np.issubdtype(x.dtype, np.signedinteger):
        raise UnsupportedOp(node, f"element type {x.dtype} is not supported", SIGNED_TYPES)
    return x


@importer("Neg")
def import_neg(ctx, node):
    x = _signed_input(ctx, node)
    if b.is_float(x.dtype):
        return [_map(x, lambda a: arith.NegFOp(a).result)]
    return [_map(x, lambda a: arith.SubIOp(_c(0, x.dtype), a).result)]


@importer("Abs")
def import_abs(ctx, node):
    x = ctx.get(node.input[0])
    if b.is_unsigned(x.dtype):
        return [x]
    x = _signed_input(ctx, node)
    if b.is_float(x.dtype):
        return [_map(x, lambda a: math.AbsFOp(a).result)]
    return [_map(x, lambda a: math.AbsIOp(a).result)]


@importer("Sign")
def import_sign(ctx, node):
    """sign(x) = (x > 0) - (x < 0): -1, 0 or 1 in the input's type."""
    x = ctx.get(node.input[0])
    dt = x.dtype
    if b.is_unsigned(dt):
        # never negative: (x != 0)
        ne0 = lambda a: arith.CmpIOp(arith.CmpIPredicate.ne, a, _c(0, dt)).result  # noqa: E731
        return [_map(x, lambda a: arith.SelectOp(ne0(a), _c(1, dt), _c(0, dt)).result)]
    x = _signed_input(ctx, node)
    if b.is_float(dt):
        gt0 = lambda a: arith.CmpFOp(arith.CmpFPredicate.OGT, a, _c(0.0, dt)).result  # noqa: E731
    else:
        gt0 = lambda a: arith.CmpIOp(arith.CmpIPredicate.sgt, a, _c(0, dt)).result  # noqa: E731

    def body(a):
        pos = arith.SelectOp(gt0(a), _c(1, dt), _c(0, dt)).result
        return arith.SelectOp(_lt0(a, dt), _c(-1, dt), pos).result

    return [_map(x, body)]


@importer("LeakyRelu")
def import_leaky_relu(ctx, node):
    """y = x < 0 ? alpha * x : x"""
    x = _float_input(ctx, node)
    alpha = float(attrs(node).get("alpha", 0.01))
    dt = x.dtype
    return [_map(x, lambda a: arith.SelectOp(_lt0(a, dt), _mul(a, _c(alpha, dt)), a).result)]


@importer("PRelu")
def import_prelu(ctx, node):
    """y = x < 0 ? slope * x : x, with slope broadcast to x's shape (unidirectional)."""
    x = _signed_input(ctx, node)
    slope = ctx.get(node.input[1])
    if slope.dtype != x.dtype:
        raise UnsupportedOp(node, f"slope type {slope.dtype} differs from input type {x.dtype}")
    if not _broadcasts_to(slope.shape, x.shape):
        raise UnsupportedOp(node, f"slope of shape {list(slope.shape)} does not broadcast to "
                                  f"the input shape {list(x.shape)}")
    dt = x.dtype
    mul = arith.MulFOp if b.is_float(dt) else arith.MulIOp
    return [b.elementwise([x, slope], dt,
                          lambda a, s: arith.SelectOp(_lt0(a, dt), mul(a, s).result, a).result)]


def _broadcasts_to(shape, target) -> bool:
    try:
        return tuple(np.broadcast_shapes(shape, target)) == tuple(target)
    except ValueError:
        return False


@importer("HardSigmoid")
def import_hard_sigmoid(ctx, node):
    """y = max(0, min(1, alpha * x + beta))"""
    x = _float_input(ctx, node)
    a = attrs(node)
    alpha, beta = float(a.get("alpha", 0.2)), float(a.get("beta", 0.5))
    dt = x.dtype
    return [_map(x, lambda v: _clamp01(_add(_mul(v, _c(alpha, dt)), _c(beta, dt)), dt))]


@importer("HardSwish")
def import_hard_swish(ctx, node):
    """y = x * max(0, min(1, x / 6 + 1/2))"""
    x = _float_input(ctx, node)
    dt = x.dtype
    return [_map(x, lambda v: _mul(v, _clamp01(_add(_mul(v, _c(1.0 / 6.0, dt)), _c(0.5, dt)), dt)))]


@importer("Elu")
def import_elu(ctx, node):
    """y = x < 0 ? alpha * (exp(x) - 1) : x"""
    x = _float_input(ctx, node)
    alpha = float(attrs(node).get("alpha", 1.0))
    dt = x.dtype

    def body(v):
        em1 = arith.SubFOp(math.ExpOp(v).result, _c(1.0, dt)).result
        return arith.SelectOp(_lt0(v, dt), _mul(em1, _c(alpha, dt)), v).result

    return [_map(x, body)]


SELU_ALPHA = 1.67326319217681884765625
SELU_GAMMA = 1.05070102214813232421875


@importer("Selu")
def import_selu(ctx, node):
    """y = gamma * (x <= 0 ? alpha * exp(x) - alpha : x)"""
    x = _float_input(ctx, node)
    a = attrs(node)
    alpha, gamma = float(a.get("alpha", SELU_ALPHA)), float(a.get("gamma", SELU_GAMMA))
    dt = x.dtype

    def body(v):
        neg = arith.SubFOp(_mul(math.ExpOp(v).result, _c(alpha, dt)), _c(alpha, dt)).result
        le0 = arith.CmpFOp(arith.CmpFPredicate.OLE, v, _c(0.0, dt)).result
        return _mul(arith.SelectOp(le0, neg, v).result, _c(gamma, dt))

    return [_map(x, body)]


@importer("Gelu")
def import_gelu(ctx, node):
    """approximate="none": y = x/2 * (1 + erf(x / sqrt(2)))
    approximate="tanh": y = x/2 * (1 + tanh(sqrt(2/pi) * (x + 0.044715 x^3)))"""
    x = _float_input(ctx, node)
    approx = attrs(node).get("approximate", "none")
    if approx not in ("none", "tanh"):
        raise UnsupportedOp(node, f"approximate='{approx}' is not supported", "none, tanh")
    dt = x.dtype

    def body(v):
        if approx == "none":
            t = math.ErfOp(_mul(v, _c(1.0 / pymath.sqrt(2.0), dt))).result
        else:
            # inner = sqrt(2/pi) * x * (1 + 0.044715 x^2), one multiply fewer than the cube
            x2 = _mul(v, v)
            poly = _add(_mul(x2, _c(0.044715, dt)), _c(1.0, dt))
            t = math.TanhOp(_mul(_mul(v, poly), _c(pymath.sqrt(2.0 / pymath.pi), dt))).result
        return _mul(_mul(v, _c(0.5, dt)), _add(t, _c(1.0, dt)))

    return [_map(x, body)]


# ---------------------------------------------------------------- Clip

CLIP_TYPES = "float32, float64, int8, int16, int32, int64, uint8, uint16, uint32, uint64"


def _minmax_ops(dt):
    """(max, min) constructors for a dtype; the float ones propagate NaN."""
    if b.is_float(dt):
        return arith.MaximumFOp, arith.MinimumFOp
    if b.is_unsigned(dt):
        return arith.MaxUIOp, arith.MinUIOp
    return arith.MaxSIOp, arith.MinSIOp


@importer("Clip")
def import_clip(ctx, node):
    """y = min(max(x, lo), hi); with lo > hi every element becomes hi, as ONNX says.

    Opset < 11: lo and hi are the float attributes min and max. Opset >= 11:
    they are optional scalar inputs; a missing bound does not clamp. A
    constant bound is folded into the payload; a run-time one is a rank-0
    operand of the generic.
    """
    x = ctx.get(node.input[0])
    dt = x.dtype
    if dt == np.bool_ or not (dt in FLOATS or np.issubdtype(dt, np.integer)):
        raise UnsupportedOp(node, f"element type {dt} is not supported", CLIP_TYPES)
    if ctx.opset < 11:
        if dt not in FLOATS:
            raise UnsupportedOp(node, f"element type {dt} is not supported before opset 11", FLOAT_TYPES)
        a = attrs(node)
        bounds = [np.array(a[k], dt) if k in a else None for k in ("min", "max")]
    else:
        bounds = [_clip_bound(ctx, node, i, dt) for i in (1, 2)]
    operands = [x] + [v for v in bounds if isinstance(v, b.T)]
    vmax, vmin = _minmax_ops(dt)

    def body(a, *runtime):
        rt = iter(runtime)
        lo, hi = [None if v is None else next(rt) if isinstance(v, b.T) else b.scalar(v, dt)
                  for v in bounds]
        # Float: nsz, as Relu's (the sign of a zero result is free).
        kw = {"fastmath": b.NSZ()} if dt in FLOATS else {}
        if lo is not None:
            a = vmax(a, lo, **kw).result
        if hi is not None:
            a = vmin(a, hi, **kw).result
        return a

    return [b.elementwise(operands, dt, body)]


def _clip_bound(ctx, node, idx: int, dt):
    """Input `idx` as a numpy scalar (constant), a rank-0 T (run time), or None."""
    if len(node.input) <= idx or not node.input[idx]:
        return None
    const = ctx.const(node.input[idx])
    if const is not None:
        if const.size != 1:
            raise UnsupportedOp(node, f"bound '{node.input[idx]}' has {const.size} elements; it must be a scalar")
        return np.asarray(const).reshape(()).astype(dt)
    v = ctx.get(node.input[idx])
    if v.dtype != dt or int(np.prod(v.shape)) != 1:
        raise UnsupportedOp(node, f"bound '{node.input[idx]}' must be a scalar of type {dt}, "
                                  f"got {v.dtype}{list(v.shape)}")
    return b.reshape(v, ())


# ---------------------------------------------------------------- Pow

POW_BASE_TYPES = "float32, float64, int32, int64"
POW_EXP_TYPES = "float32, float64, int32, int64"


@importer("Pow")
def import_pow(ctx, node):
    """y = x ** e, numpy-broadcast.

    A constant scalar exponent stays out of the operands: 1, 2, 3 and 0.5
    become x, x*x, x*x*x and sqrt(x) (no libm call), any other value is a
    constant in the payload. Otherwise the exponent is converted to the
    base's float type and math.powf computes it. Integer bases go through
    f64, as onnxruntime's std::pow does, and the result is truncated back.
    """
    x = ctx.get(node.input[0])
    exp_const = ctx.const(node.input[1])
    e_dtype = exp_const.dtype if exp_const is not None else ctx.get(node.input[1]).dtype
    allowed = (*FLOATS, np.dtype(np.int32), np.dtype(np.int64))
    if x.dtype not in allowed:
        raise UnsupportedOp(node, f"base type {x.dtype} is not supported", POW_BASE_TYPES)
    if e_dtype not in allowed:
        raise UnsupportedOp(node, f"exponent type {e_dtype} is not supported", POW_EXP_TYPES)
    dt = x.dtype
    work = dt if dt in FLOATS else np.dtype(np.float64)

    def pow_payload(a, p, p_dtype):
        fa = a if dt == work else arith.SIToFPOp(b.mlir_type(work), a).result
        r = math.PowFOp(fa, _convert_float(p, p_dtype, work)).result
        return r if dt == work else arith.FPToSIOp(b.mlir_type(dt), r).result

    # A higher-rank exponent would change the output shape: keep it an operand.
    if exp_const is not None and exp_const.size == 1 and exp_const.ndim <= x.rank:
        p = np.asarray(exp_const).ravel()[0]
        special = _special_pow(x, float(p))
        if special is not None:
            return [special]
        return [_map(x, lambda a: pow_payload(a, b.scalar(p, e_dtype), e_dtype))]
    e = ctx.get(node.input[1])
    return [b.elementwise([x, e], dt, lambda a, q: pow_payload(a, q, e_dtype))]


def _convert_float(v: ir.Value, src, dst) -> ir.Value:
    """A scalar of numpy type `src` as float type `dst`."""
    if src == dst:
        return v
    ty = b.mlir_type(dst)
    if not b.is_float(src):
        return arith.SIToFPOp(ty, v).result
    if np.dtype(src).itemsize < np.dtype(dst).itemsize:
        return arith.ExtFOp(ty, v).result
    return arith.TruncFOp(ty, v).result


def _special_pow(x: b.T, p: float) -> b.T | None:
    """x ** p for the exponents that need no powf, else None."""
    dt = x.dtype
    mul = arith.MulFOp if b.is_float(dt) else arith.MulIOp
    if p == 1.0:
        return x
    if p == 2.0:
        return _map(x, lambda a: mul(a, a).result)
    if p == 3.0:
        return _map(x, lambda a: mul(mul(a, a).result, a).result)
    if p == 0.5 and dt in FLOATS:
        return _map(x, lambda a: math.SqrtOp(a).result)
    return None
