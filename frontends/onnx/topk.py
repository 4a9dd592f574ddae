"""TopK with a compile-time k: the k largest (or smallest) elements along an
axis, sorted, and their indices.

Element i of a line goes to output slot r = rank(i), the number of elements
that come before it: j comes before i when x[j] is better (greater, or less
with largest=0) or equal with j < i, so ties keep the lower index first, as
ONNX specifies. Two generics, each with a reduction loop over the line:
  rank[.., i, ..]   = sum over j of before(j, i)
  out[.., r, ..]    = the x[.., i, ..] (and i) with rank[.., i, ..] == r, r < k
That is n^2 + k n compares per line: meant for the short lines (class
scores, beams) TopK is used on, without a sort.
"""

from __future__ import annotations

import numpy as np

from qc.errors import UnsupportedOp
from qc.mlir import arith, ir, linalg

from . import builder as b
from .attrs import attrs
from .registry import importer
from .shape_fns import const_ints, normalize_axis


@importer("TopK")
def import_topk(ctx, node):
    x = ctx.get(node.input[0])
    if x.dtype == np.bool_ or x.dtype == np.float16:
        raise UnsupportedOp(node, f"element type {x.dtype} is not supported",
                            "float32, float64, (u)int8/16/32/64")
    if x.rank == 0:
        raise UnsupportedOp(node, "a scalar input", "rank >= 1")
    a = attrs(node)
    if ctx.opset < 10:
        k = int(a["k"])
    else:
        ks = const_ints(ctx, node, 1, "k")
        if ks is None or len(ks) != 1:
            raise UnsupportedOp(node, "the k input must hold one value")
        k = ks[0]
    axis = normalize_axis(node, a.get("axis", -1), x.rank)
    n = x.shape[axis]
    if not 1 <= k <= n:
        raise UnsupportedOp(node, f"k={k} for an axis of size {n}", f"1 <= k <= {n}")
    largest = bool(int(a.get("largest", 1)))
    rank = _ranks(x, axis, largest)
    return list(_select(x, rank, axis, k))


def _better(dt, largest: bool):
    if b.is_float(dt):
        pred = arith.CmpFPredicate.OGT if largest else arith.CmpFPredicate.OLT
        return (lambda p, q: arith.CmpFOp(pred, p, q).result,
                lambda p, q: arith.CmpFOp(arith.CmpFPredicate.OEQ, p, q).result)
    unsigned = b.is_unsigned(dt)
    pred = {(True, False): arith.CmpIPredicate.sgt, (True, True): arith.CmpIPredicate.ugt,
            (False, False): arith.CmpIPredicate.slt, (False, True): arith.CmpIPredicate.ult}[(largest, unsigned)]
    return (lambda p, q: arith.CmpIOp(pred, p, q).result,
            lambda p, q: arith.CmpIOp(arith.CmpIPredicate.eq, p, q).result)


def _ranks(x: b.T, axis: int, largest: bool) -> b.T:
    """rank[.., i, ..]: how many j of the line come before i (i64)."""
    r = x.rank
    j = r  # the extra loop over the line
    better, equal = _better(x.dtype, largest)
    one, zero = b.scalar(1, np.int64), b.scalar(0, np.int64)

    def body(xi, xj, acc):
        lower = arith.CmpIOp(arith.CmpIPredicate.ult, linalg.IndexOp(j).result, linalg.IndexOp(axis).result).result
        tie_before = arith.AndIOp(equal(xj, xi), lower).result
        before = arith.OrIOp(better(xj, xi), tie_before).result
        return arith.AddIOp(acc, arith.SelectOp(before, one, zero).result).result

    at_i = b.dims_map(r + 1, list(range(r)))
    maps = [at_i, b.dims_map(r + 1, [j if d == axis else d for d in range(r)]), at_i]
    (res,) = b.generic([x.value, x.value], [b.filled(x.shape, np.int64, 0)], maps,
                       [b.PARALLEL] * r + [b.REDUCTION], body)
    return b.T(res, np.dtype(np.int64))


def _select(x: b.T, rank: b.T, axis: int, k: int) -> tuple[b.T, b.T]:
    """values and indices: for each slot r < k, the element whose rank is r."""
    r = x.rank
    i = r  # the extra loop over the line
    out_shape = [k if d == axis else x.shape[d] for d in range(r)]
    in_map = b.dims_map(r + 1, [i if d == axis else d for d in range(r)])
    out_map = b.dims_map(r + 1, list(range(r)))
    i64 = ir.IntegerType.get_signless(64)

    def body(v, rk, val, idx):
        slot = arith.IndexCastOp(i64, linalg.IndexOp(axis).result).result
        hit = arith.CmpIOp(arith.CmpIPredicate.eq, rk, slot).result
        pos = arith.IndexCastOp(i64, linalg.IndexOp(i).result).result
        return [arith.SelectOp(hit, v, val).result, arith.SelectOp(hit, pos, idx).result]

    inits = [b.filled(out_shape, x.dtype, 0), b.filled(out_shape, np.int64, 0)]
    values, indices = b.generic([x.value, rank.value], inits, [in_map, in_map, out_map, out_map],
                                [b.PARALLEL] * r + [b.REDUCTION], body)
    return b.T(values, x.dtype), b.T(indices, np.dtype(np.int64))
