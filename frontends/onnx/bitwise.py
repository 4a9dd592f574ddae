"""Bit operations on integers: BitShift, BitwiseAnd/Or/Xor/Not.

BitShift follows ONNX's reference (numpy) rather than C or the hardware,
which mask the shift count: a count outside [0, width) shifts every bit out,
giving 0, or -1 for a right shift of a negative signed value (the sign bit
fills the result). A left shift wraps within the width. Signed right shifts
are arithmetic. MLIR's shifts are poison for counts >= width, so such lanes
shift by a count in range and a select picks the saturated value.
"""

from __future__ import annotations

import numpy as np

from qc.errors import UnsupportedOp
from qc.mlir import arith

from . import builder as b
from .attrs import attrs
from .registry import importer

INT_TYPES = "(u)int8/16/32/64"


def _int_operands(ctx, node) -> list[b.T]:
    xs = [ctx.get(n) for n in node.input]
    dt = xs[0].dtype
    if not np.issubdtype(dt, np.integer):
        raise UnsupportedOp(node, f"element type {dt} is not supported", INT_TYPES)
    if any(x.dtype != dt for x in xs):
        raise UnsupportedOp(node, f"operands have different element types ({', '.join(str(x.dtype) for x in xs)})")
    return xs


@importer("BitShift")
def import_bitshift(ctx, node):
    x, y = _int_operands(ctx, node)
    direction = attrs(node).get("direction")
    if direction not in ("LEFT", "RIGHT"):
        raise UnsupportedOp(node, f"direction {direction!r}", "LEFT, RIGHT")
    dt = x.dtype
    return [b.elementwise([x, y], dt, _shift(dt, direction == "LEFT"))]


def _shift(dt, left: bool):
    width = np.dtype(dt).itemsize * 8
    signed_right = not left and not b.is_unsigned(dt)

    def body(v, n):
        # Read unsigned, a negative count is >= width: one compare finds both.
        out_of_range = arith.CmpIOp(arith.CmpIPredicate.uge, n, b.scalar(width, dt)).result
        if signed_right:
            # v >> (width - 1) is the saturated value: 0, or -1 for v < 0.
            count = arith.SelectOp(out_of_range, b.scalar(width - 1, dt), n).result
            return arith.ShRSIOp(v, count).result
        count = arith.SelectOp(out_of_range, b.scalar(0, dt), n).result
        shifted = (arith.ShLIOp if left else arith.ShRUIOp)(v, count).result
        return arith.SelectOp(out_of_range, b.scalar(0, dt), shifted).result

    return body


_BINARY = {"BitwiseAnd": arith.AndIOp, "BitwiseOr": arith.OrIOp, "BitwiseXor": arith.XOrIOp}


@importer(*_BINARY)
def import_bitwise_binary(ctx, node):
    x, y = _int_operands(ctx, node)
    op = _BINARY[node.op_type]
    return [b.elementwise([x, y], x.dtype, lambda p, q: op(p, q).result)]


@importer("BitwiseNot")
def import_bitwise_not(ctx, node):
    """~x = x ^ all-ones."""
    (x,) = _int_operands(ctx, node)
    ones = b.scalar(-1, x.dtype) if not b.is_unsigned(x.dtype) else b.scalar(np.iinfo(x.dtype).max, x.dtype)
    return [b.elementwise([x], x.dtype, lambda v: arith.XOrIOp(v, ones).result)]
