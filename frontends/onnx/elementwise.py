"""Elementwise ops: Add/Sub/Mul/Div with numpy broadcasting, Relu, Sigmoid, Tanh.

Each becomes one linalg.generic; chains of them are fused later by
linalg-fuse-elementwise-ops.
"""

from __future__ import annotations

import numpy as np

from qc.errors import UnsupportedOp
from qc.mlir import arith, math

from . import builder as b
from .registry import importer

FLOAT_TYPES = "float32, float64"
NUMERIC_TYPES = "float32, float64 and integer types"

_FLOAT_BINARY = {"Add": arith.AddFOp, "Sub": arith.SubFOp, "Mul": arith.MulFOp, "Div": arith.DivFOp}
_INT_BINARY = {"Add": arith.AddIOp, "Sub": arith.SubIOp, "Mul": arith.MulIOp}


def _check_float(node, x: b.T) -> None:
    if x.dtype not in (np.float32, np.float64):
        raise UnsupportedOp(node, f"element type {x.dtype} is not supported", FLOAT_TYPES)


@importer("Add", "Sub", "Mul", "Div")
def import_binary(ctx, node):
    x, y = ctx.get(node.input[0]), ctx.get(node.input[1])
    if x.dtype != y.dtype:
        raise UnsupportedOp(node, f"operands have different element types ({x.dtype}, {y.dtype})")
    dt = x.dtype
    op = node.op_type
    if b.is_float(dt) and dt != np.float16:
        ctor = _FLOAT_BINARY[op]
    elif np.issubdtype(dt, np.integer):
        if op == "Div":
            return [b.elementwise([x, y], dt, _int_div(dt, ctx.const(node.input[1])))]
        ctor = _INT_BINARY[op]
    else:
        raise UnsupportedOp(node, f"element type {dt} is not supported", NUMERIC_TYPES)
    return [b.elementwise([x, y], dt, lambda a, c: ctor(a, c).result)]


def _int_div(dt, divisor):
    """ONNX integer Div: the quotient truncated toward zero, as C's `/`.

    x86's idiv traps (SIGFPE, killing the process) on a zero divisor and on
    INT_MIN / -1. Unless a constant divisor rules them out, those lanes divide
    by 1 instead and take numpy's results: x / 0 = 0, x / -1 = -x (wrapping,
    so INT_MIN / -1 = INT_MIN).
    """
    signed = not b.is_unsigned(dt)
    div = arith.DivSIOp if signed else arith.DivUIOp
    if divisor is not None and np.all(divisor != 0) and not (signed and np.any(divisor == -1)):
        return lambda a, c: div(a, c).result

    def body(a, c):
        zero, one = b.scalar(0, dt), b.scalar(1, dt)
        minus_one = b.scalar(-1, dt) if signed else None
        by_zero = arith.CmpIOp(arith.CmpIPredicate.eq, c, zero).result
        unsafe = by_zero
        if signed:
            by_minus_one = arith.CmpIOp(arith.CmpIPredicate.eq, c, minus_one).result
            unsafe = arith.OrIOp(by_zero, by_minus_one).result
        q = div(a, arith.SelectOp(unsafe, one, c).result).result
        if signed:
            q = arith.SelectOp(by_minus_one, arith.SubIOp(zero, a).result, q).result
        return arith.SelectOp(by_zero, zero, q).result

    return body


@importer("Relu")
def import_relu(ctx, node):
    x = ctx.get(node.input[0])
    if b.is_float(x.dtype):
        _check_float(node, x)
        zero = b.scalar(0.0, x.dtype)
        # maximumf propagates NaN, as numpy's maximum (the ONNX reference) does;
        # nsz: the sign of a zero result is free (x86's one-instruction max
        # keeps a -0 input, as onnxruntime does, instead of a blend fixing it).
        return [b.elementwise([x], x.dtype, lambda a: arith.MaximumFOp(a, zero, fastmath=b.NSZ()).result)]
    if np.issubdtype(x.dtype, np.signedinteger):
        zero = b.scalar(0, x.dtype)
        return [b.elementwise([x], x.dtype, lambda a: arith.MaxSIOp(a, zero).result)]
    raise UnsupportedOp(node, f"element type {x.dtype} is not supported", "float and signed integer types")


@importer("Sigmoid")
def import_sigmoid(ctx, node):
    x = ctx.get(node.input[0])
    _check_float(node, x)
    one = b.scalar(1.0, x.dtype)

    # sigmoid(x) = 1 / (1 + exp(-x)); exp(-x) overflows to inf for x << 0,
    # which gives exactly 0, the right limit.
    def body(a):
        e = math.ExpOp(arith.NegFOp(a).result).result
        return arith.DivFOp(one, arith.AddFOp(one, e).result).result

    return [b.elementwise([x], x.dtype, body)]


@importer("Tanh")
def import_tanh(ctx, node):
    x = ctx.get(node.input[0])
    _check_float(node, x)
    return [b.elementwise([x], x.dtype, lambda a: math.TanhOp(a).result)]
