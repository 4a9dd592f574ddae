"""Comparisons, boolean logic and selection: Equal, Less, LessOrEqual,
Greater, GreaterOrEqual, Not, And, Or, Xor, Where.

Booleans are i1 in MLIR and numpy bool (one byte) at the ABI. Each op is one
linalg.generic with numpy broadcasting; comparisons pick the signed or
unsigned integer predicate from the operands' numpy type, and ordered float
predicates (a comparison with NaN is false, as in numpy) except for
inequality, which has no ONNX op of its own.
"""

from __future__ import annotations

import numpy as np

from qc.errors import UnsupportedOp
from qc.mlir import arith

from . import builder as b
from .registry import importer

BOOL = np.dtype(np.bool_)
COMPARE_TYPES = "float32, float64, and (u)int8/16/32/64"

# op -> (float predicate, signed predicate, unsigned predicate)
_PREDICATES = {
    "Equal": ("OEQ", "eq", "eq"),
    "Less": ("OLT", "slt", "ult"),
    "LessOrEqual": ("OLE", "sle", "ule"),
    "Greater": ("OGT", "sgt", "ugt"),
    "GreaterOrEqual": ("OGE", "sge", "uge"),
}


def _check_broadcast(node, *values: b.T) -> None:
    shapes = [v.shape for v in values]
    try:
        np.broadcast_shapes(*shapes)
    except ValueError:
        listed = ", ".join(str(list(s)) for s in shapes)
        raise UnsupportedOp(node, f"input shapes {listed} do not broadcast") from None


def _same_type(node, x: b.T, y: b.T) -> None:
    if x.dtype != y.dtype:
        raise UnsupportedOp(node, f"operands have different element types ({x.dtype}, {y.dtype})")


@importer(*_PREDICATES)
def import_compare(ctx, node):
    x, y = ctx.get(node.input[0]), ctx.get(node.input[1])
    _same_type(node, x, y)
    _check_broadcast(node, x, y)
    dt = x.dtype
    fpred, spred, upred = _PREDICATES[node.op_type]
    if dt in (np.float32, np.float64):
        pred = getattr(arith.CmpFPredicate, fpred)
        body = lambda a, c: arith.CmpFOp(pred, a, c).result  # noqa: E731
    elif np.issubdtype(dt, np.integer) or (dt == BOOL and node.op_type == "Equal"):
        # bool (i1) only for Equal, as ONNX allows; i1 "eq" needs no signedness.
        pred = getattr(arith.CmpIPredicate, upred if b.is_unsigned(dt) else spred)
        body = lambda a, c: arith.CmpIOp(pred, a, c).result  # noqa: E731
    else:
        extra = ", bool" if node.op_type == "Equal" else ""
        raise UnsupportedOp(node, f"element type {dt} is not supported", COMPARE_TYPES + extra)
    return [b.elementwise([x, y], BOOL, body)]


def _bool_input(ctx, node, idx: int) -> b.T:
    x = ctx.get(node.input[idx])
    if x.dtype != BOOL:
        raise UnsupportedOp(node, f"input {idx} has element type {x.dtype}", "bool")
    return x


@importer("Not")
def import_not(ctx, node):
    x = _bool_input(ctx, node, 0)
    # not a = a xor 1 on i1
    return [b.elementwise([x], BOOL, lambda a: arith.XOrIOp(a, b.scalar(True, BOOL)).result)]


_LOGIC = {"And": arith.AndIOp, "Or": arith.OrIOp, "Xor": arith.XOrIOp}


@importer(*_LOGIC)
def import_logic(ctx, node):
    x, y = _bool_input(ctx, node, 0), _bool_input(ctx, node, 1)
    _check_broadcast(node, x, y)
    ctor = _LOGIC[node.op_type]
    return [b.elementwise([x, y], BOOL, lambda a, c: ctor(a, c).result)]


@importer("Where")
def import_where(ctx, node):
    """y = cond ? x : other, all three broadcast together (numpy rules)."""
    cond = _bool_input(ctx, node, 0)
    x, other = ctx.get(node.input[1]), ctx.get(node.input[2])
    _same_type(node, x, other)
    _check_broadcast(node, cond, x, other)
    return [b.elementwise([cond, x, other], x.dtype, lambda c, p, q: arith.SelectOp(c, p, q).result)]
