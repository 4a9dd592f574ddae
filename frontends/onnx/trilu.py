"""Trilu: the upper or lower triangle of the last two dims, the rest zero.

With i, j the row and column: upper keeps x[..., i, j] where j - i >= k,
lower where j - i <= k (k defaults to 0). One generic reads the position
with linalg.index; any element type, the payload only selects. k may be a run-time scalar: it is read once, outside the
loops.
"""

from __future__ import annotations

import numpy as np

from qc.errors import UnsupportedOp
from qc.mlir import arith, ir, linalg, tensor

from . import builder as b
from .attrs import attrs
from .registry import importer


@importer("Trilu")
def import_trilu(ctx, node):
    x = ctx.get(node.input[0])
    upper = bool(int(attrs(node).get("upper", 1)))
    k = _diagonal(ctx, node)
    rank = x.rank
    zero = b.scalar(0, x.dtype)
    i64 = ir.IntegerType.get_signless(64)

    def body(v):
        i = arith.IndexCastOp(i64, linalg.IndexOp(rank - 2).result).result
        j = arith.IndexCastOp(i64, linalg.IndexOp(rank - 1).result).result
        diff = arith.SubIOp(j, i).result
        pred = arith.CmpIPredicate.sge if upper else arith.CmpIPredicate.sle
        keep = arith.CmpIOp(pred, diff, k).result
        return arith.SelectOp(keep, v, zero).result

    return [b.elementwise([x], x.dtype, body)]


def _diagonal(ctx, node) -> ir.Value:
    """k as an i64 value: a constant, or the run-time scalar read once."""
    if len(node.input) < 2 or not node.input[1]:
        return b.scalar(0, np.int64)
    c = ctx.const(node.input[1])
    if c is not None:
        return b.scalar(int(np.asarray(c).ravel()[0]), np.int64)
    t = ctx.get(node.input[1])
    if t.dtype != np.int64 or int(np.prod(t.shape)) != 1:
        raise UnsupportedOp(node, f"k is {t.dtype}{list(t.shape)}", "one int64")
    zeros = [arith.ConstantOp(ir.IndexType.get(), 0).result for _ in range(t.rank)]
    return tensor.ExtractOp(t.value, zeros).result
