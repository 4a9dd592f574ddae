"""More elementwise float ops: the trigonometric and hyperbolic functions,
IsInf / IsNaN, and the activations Swish, SwiGLU, ThresholdedRelu, Shrink, Celu.

Each is one linalg.generic. The functions are the math dialect's (libm calls
after lowering). float16 inputs are computed in float32 and rounded once,
as numpy (the ONNX reference) does for half values.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from qc.errors import UnsupportedOp
from qc.mlir import arith, ir, math

from . import builder as b
from .attrs import attrs
from .registry import importer

FLOATS = (np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.float64))
FLOAT_TYPES = "float16, float32, float64"


def _float_input(ctx, node) -> b.T:
    x = ctx.get(node.input[0])
    if x.dtype not in FLOATS:
        raise UnsupportedOp(node, f"element type {x.dtype} is not supported", FLOAT_TYPES)
    return x


def map_float(x: b.T, fn: Callable[[ir.Value, np.dtype], ir.Value]) -> b.T:
    """fn(element, compute type) over x; float16 computed in float32."""
    ct = np.dtype(np.float32) if x.dtype == np.float16 else x.dtype
    if ct == x.dtype:
        return b.elementwise([x], x.dtype, lambda v: fn(v, ct))
    wide, narrow = b.mlir_type(ct), b.mlir_type(x.dtype)
    return b.elementwise([x], x.dtype, lambda v: arith.TruncFOp(narrow, fn(arith.ExtFOp(wide, v).result, ct)).result)


_FUNCTIONS = {
    "Sin": math.SinOp, "Cos": math.CosOp, "Tan": math.TanOp,
    "Asin": math.AsinOp, "Acos": math.AcosOp, "Atan": math.AtanOp,
    "Sinh": math.SinhOp, "Cosh": math.CoshOp,
    "Asinh": math.AsinhOp, "Acosh": math.AcoshOp, "Atanh": math.AtanhOp,
}


@importer(*_FUNCTIONS)
def import_function(ctx, node):
    op = _FUNCTIONS[node.op_type]
    return [map_float(_float_input(ctx, node), lambda v, ct: op(v).result)]


@importer("IsNaN")
def import_isnan(ctx, node):
    x = _float_input(ctx, node)
    # NaN is the one value unordered with itself.
    return [b.elementwise([x], np.bool_, lambda v: arith.CmpFOp(arith.CmpFPredicate.UNO, v, v).result)]


@importer("IsInf")
def import_isinf(ctx, node):
    x = _float_input(ctx, node)
    a = attrs(node)
    signs = [s for s, on in ((1, a.get("detect_positive", 1)), (-1, a.get("detect_negative", 1))) if int(on)]

    def body(v):
        hits = [arith.CmpFOp(arith.CmpFPredicate.OEQ, v, b.scalar(s * np.inf, x.dtype)).result for s in signs]
        if not hits:
            return b.scalar(False, np.bool_)
        return hits[0] if len(hits) == 1 else arith.OrIOp(*hits).result

    return [b.elementwise([x], np.bool_, body)]


def _c(value, ct) -> ir.Value:
    return b.scalar(value, ct)


@importer("Swish")
def import_swish(ctx, node):
    """y = x * sigmoid(alpha * x) = x / (1 + exp(-alpha * x))"""
    x = _float_input(ctx, node)
    alpha = float(attrs(node).get("alpha", 1.0))

    def body(v, ct):
        e = math.ExpOp(arith.MulFOp(v, _c(-alpha, ct)).result).result
        return arith.DivFOp(v, arith.AddFOp(_c(1.0, ct), e).result).result

    return [map_float(x, body)]


@importer("ThresholdedRelu")
def import_thresholded_relu(ctx, node):
    """y = x > alpha ? x : 0"""
    x = _float_input(ctx, node)
    alpha = float(attrs(node).get("alpha", 1.0))

    def body(v, ct):
        above = arith.CmpFOp(arith.CmpFPredicate.OGT, v, _c(alpha, ct)).result
        return arith.SelectOp(above, v, _c(0.0, ct)).result

    return [map_float(x, body)]


@importer("Shrink")
def import_shrink(ctx, node):
    """y = x < -lambd ? x + bias : (x > lambd ? x - bias : 0)"""
    x = _float_input(ctx, node)
    a = attrs(node)
    lambd, bias = float(a.get("lambd", 0.5)), float(a.get("bias", 0.0))

    def body(v, ct):
        below = arith.CmpFOp(arith.CmpFPredicate.OLT, v, _c(-lambd, ct)).result
        above = arith.CmpFOp(arith.CmpFPredicate.OGT, v, _c(lambd, ct)).result
        hi = arith.SelectOp(above, arith.SubFOp(v, _c(bias, ct)).result, _c(0.0, ct)).result
        return arith.SelectOp(below, arith.AddFOp(v, _c(bias, ct)).result, hi).result

    return [map_float(x, body)]


@importer("Celu")
def import_celu(ctx, node):
    """y = max(0, x) + min(0, alpha * (exp(x / alpha) - 1))"""
    x = _float_input(ctx, node)
    alpha = float(attrs(node).get("alpha", 1.0))
    if alpha == 0.0:
        raise UnsupportedOp(node, "alpha=0 (divides by zero)", "alpha != 0")

    def body(v, ct):
        zero = _c(0.0, ct)
        em1 = math.ExpM1Op(arith.DivFOp(v, _c(alpha, ct)).result).result
        neg = arith.MinimumFOp(zero, arith.MulFOp(em1, _c(alpha, ct)).result).result
        return arith.AddFOp(arith.MaximumFOp(zero, v).result, neg).result

    return [map_float(x, body)]


@importer("SwiGLU")
def import_swiglu(ctx, node):
    """y = swish(a) * b = a * sigmoid(alpha * a) * b, on equal shapes."""
    x, gate = _float_input(ctx, node), ctx.get(node.input[1])
    if gate.dtype != x.dtype or gate.shape != x.shape:
        raise UnsupportedOp(node, f"B is {gate.dtype}{list(gate.shape)}, A is {x.dtype}{list(x.shape)}",
                            "equal types and shapes")
    alpha = float(attrs(node).get("alpha", 1.0))
    ct = np.dtype(np.float32) if x.dtype == np.float16 else x.dtype

    def body(v, g):
        if ct != x.dtype:
            v, g = arith.ExtFOp(b.mlir_type(ct), v).result, arith.ExtFOp(b.mlir_type(ct), g).result
        e = math.ExpOp(arith.MulFOp(v, _c(-alpha, ct)).result).result
        swish = arith.DivFOp(v, arith.AddFOp(_c(1.0, ct), e).result).result
        y = arith.MulFOp(swish, g).result
        return y if ct == x.dtype else arith.TruncFOp(b.mlir_type(x.dtype), y).result

    return [b.elementwise([x, gate], x.dtype, body)]
