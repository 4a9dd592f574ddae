"""Det (float32/float64): the determinant of each trailing [n, n] matrix.

One generic over the batch dims; its payload reads the n^2 elements and runs
Gaussian elimination with partial pivoting, unrolled (n is static):
det = (-1)^swaps * prod of the pivots. The pivot search and row swaps are
selects, so the code is branch-free; a zero pivot column gives 0. The
payload grows as n^3, so n is limited to MAX_N.
"""

from __future__ import annotations

import numpy as np

from qc.errors import UnsupportedOp
from qc.mlir import arith, ir, linalg, math, tensor

from . import builder as b
from .registry import importer

MAX_N = 8


@importer("Det")
def import_det(ctx, node):
    x = ctx.get(node.input[0])
    if x.dtype not in (np.float32, np.float64):
        raise UnsupportedOp(node, f"element type {x.dtype} is not supported", "float32, float64")
    if x.rank < 2 or x.shape[-1] != x.shape[-2]:
        raise UnsupportedOp(node, f"input of shape {list(x.shape)}", "[..., n, n]")
    n = x.shape[-1]
    if n > MAX_N:
        raise UnsupportedOp(node, f"{n} x {n} matrices", f"n <= {MAX_N} (the elimination is unrolled)")
    batch = x.shape[:-2]
    rank = len(batch)
    dt = x.dtype
    idx_ty = ir.IndexType.get()

    def body(_out):
        at = [linalg.IndexOp(d).result for d in range(rank)]
        rows = [[tensor.ExtractOp(x.value, [*at, arith.ConstantOp(idx_ty, i).result,
                                             arith.ConstantOp(idx_ty, j).result]).result for j in range(n)]
                for i in range(n)]
        return _eliminate(rows, dt)

    out_shape = batch if batch else ()
    (res,) = b.generic([], [b.empty(out_shape, dt)], [b.identity_map(rank)], [b.PARALLEL] * rank, body)
    return [b.T(res, dt)]


def _eliminate(rows: list[list[ir.Value]], dt) -> ir.Value:
    n = len(rows)
    zero, one = b.scalar(0.0, dt), b.scalar(1.0, dt)
    det = one
    for col in range(n):
        # Partial pivoting: bring the row with the largest |a[r, col]| (r >= col) to `col`.
        for r in range(col + 1, n):
            bigger = arith.CmpFOp(arith.CmpFPredicate.OGT, _abs(rows[r][col]), _abs(rows[col][col])).result
            new_col = [arith.SelectOp(bigger, rows[r][j], rows[col][j]).result for j in range(n)]
            new_r = [arith.SelectOp(bigger, rows[col][j], rows[r][j]).result for j in range(n)]
            rows[col], rows[r] = new_col, new_r
            det = arith.SelectOp(bigger, arith.NegFOp(det).result, det).result
        pivot = rows[col][col]
        det = arith.MulFOp(det, pivot).result
        if col == n - 1:
            break
        singular = arith.CmpFOp(arith.CmpFPredicate.OEQ, pivot, zero).result
        safe = arith.SelectOp(singular, one, pivot).result  # det is already 0 there
        for r in range(col + 1, n):
            f = arith.DivFOp(rows[r][col], safe).result
            rows[r] = [rows[r][j] if j <= col
                       else arith.SubFOp(rows[r][j], arith.MulFOp(f, rows[col][j]).result).result for j in range(n)]
    return det


def _abs(v: ir.Value) -> ir.Value:
    return math.AbsFOp(v).result
