"""CumSum and CumProd along one axis (a compile-time constant).

    y[..., i, ...] = op over j of x[..., j, ...], j in
        [0, i]      forward          [0, i)      forward, exclusive
        [i, n)      reverse          (i, n)      reverse, exclusive

as one linalg.generic with an extra reduction loop over j: the payload
combines x[j] into the accumulator only where j is in range. That is
n^2 / 2 useful steps per line instead of n, simple and parallel over i;
forward sums add in the same order as a sequential scan (bit-identical).
"""

from __future__ import annotations

import numpy as np

from qc.errors import UnsupportedOp
from qc.mlir import arith, linalg

from . import builder as b
from .attrs import attrs
from .registry import importer
from .shape_fns import const_ints, normalize_axis

TYPES = "float32, float64, (u)int32, (u)int64"


@importer("CumSum", "CumProd")
def import_cumulative(ctx, node):
    x = ctx.get(node.input[0])
    if x.dtype not in (np.float32, np.float64, np.int32, np.int64, np.uint32, np.uint64):
        raise UnsupportedOp(node, f"element type {x.dtype} is not supported", TYPES)
    if x.rank == 0:
        raise UnsupportedOp(node, "a scalar input", "rank >= 1")
    axes = const_ints(ctx, node, 1, "axis")
    if axes is None or len(axes) != 1:
        raise UnsupportedOp(node, "the axis input must hold one value")
    axis = normalize_axis(node, axes[0], x.rank)
    a = attrs(node)
    exclusive, reverse = bool(int(a.get("exclusive", 0))), bool(int(a.get("reverse", 0)))
    product = node.op_type == "CumProd"
    return [_scan(x, axis, exclusive, reverse, product)]


def _scan(x: b.T, axis: int, exclusive: bool, reverse: bool, product: bool) -> b.T:
    rank = x.rank
    j = rank  # the extra loop: the position read along `axis`
    in_dims = [j if d == axis else d for d in range(rank)]
    floats = b.is_float(x.dtype)
    if product:
        combine = arith.MulFOp if floats else arith.MulIOp
        identity = 1
    else:
        combine = arith.AddFOp if floats else arith.AddIOp
        identity = 0
    # i (output position) against j (input position): which j are combined.
    pred = {(False, False): arith.CmpIPredicate.ule, (False, True): arith.CmpIPredicate.ult,
            (True, False): arith.CmpIPredicate.uge, (True, True): arith.CmpIPredicate.ugt}[(reverse, exclusive)]

    def body(v, acc):
        take = arith.CmpIOp(pred, linalg.IndexOp(j).result, linalg.IndexOp(axis).result).result
        return arith.SelectOp(take, combine(acc, v).result, acc).result

    init = b.filled(x.shape, x.dtype, identity)
    iters = [b.PARALLEL] * rank + [b.REDUCTION]
    (res,) = b.generic([x.value], [init], [b.dims_map(rank + 1, in_dims), b.dims_map(rank + 1, list(range(rank)))],
                       iters, body)
    return b.T(res, x.dtype)
