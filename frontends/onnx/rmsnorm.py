"""RMSNormalization (opset 23): layer normalization without the mean.

Over the dims axis..rank-1: rms = sqrt(sum(x^2) / n + eps),
y = x * (1 / rms) * scale, with scale broadcast over those dims. One
reduction, then one elementwise generic.
"""

from __future__ import annotations

import numpy as np

from qc.errors import UnsupportedOp
from qc.mlir import arith, math

from . import builder as b
from .attrs import attrs
from .conv import check_f32
from .registry import importer


@importer("RMSNormalization")
def import_rmsnorm(ctx, node):
    a = attrs(node)
    x, scale = ctx.get(node.input[0]), ctx.get(node.input[1])
    check_f32(node, "X", x)
    check_f32(node, "scale", scale)
    stash = int(a.get("stash_type", 1))
    if stash != 1:
        raise UnsupportedOp(node, f"stash_type {stash}", "1 (float32 statistics)")
    axis = int(a.get("axis", -1))
    if not -x.rank <= axis < x.rank:
        raise UnsupportedOp(node, f"axis {axis} is out of range for a rank-{x.rank} input")
    axis %= x.rank
    param_shape = x.shape[axis:]
    if not _broadcasts_to(scale.shape, param_shape):
        raise UnsupportedOp(node, f"scale of shape {list(scale.shape)} does not broadcast to {list(param_shape)}")
    dims = list(range(axis, x.rank))
    inv_rms = _inv_rms(x, dims, float(a.get("epsilon", 1e-5)))
    return [b.elementwise([x, inv_rms, scale], x.dtype,
                          lambda v, r, s: arith.MulFOp(arith.MulFOp(v, r).result, s).result)]


def _inv_rms(x: b.T, dims: list[int], eps: float) -> b.T:
    """1 / sqrt(sum(x^2) / n + eps) over `dims`, which stay as size-1 dims."""
    sq = b.elementwise([x], x.dtype, lambda v: arith.MulFOp(v, v).result)
    ssq = b.reduce(sq, dims, 0.0, lambda e, acc: arith.AddFOp(e, acc).result)
    n = b.scalar(float(np.prod([x.shape[d] for d in dims])), x.dtype)
    one, e = b.scalar(1.0, x.dtype), b.scalar(eps, x.dtype)

    def body(v):
        ms = arith.AddFOp(arith.DivFOp(v, n).result, e).result
        return arith.DivFOp(one, math.SqrtOp(ms).result).result

    return b.elementwise([ssq], x.dtype, body)


def _broadcasts_to(shape, target) -> bool:
    try:
        return tuple(np.broadcast_shapes(shape, target)) == tuple(target)
    except ValueError:
        return False
