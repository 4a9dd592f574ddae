"""Softmax, in both ONNX forms.

Opset < 13: the input is coerced to 2-D at `axis` (default 1) and softmax
runs over the flattened trailing block, i.e. over all dims >= axis.
Opset >= 13: softmax runs over the single dim `axis` (default -1).

Both are  y = exp(x - max) / sum(exp(x - max))  over the reduced dims; the
max keeps exp from overflowing.
"""

from __future__ import annotations

from qc.errors import UnsupportedOp
from qc.mlir import arith, math

from . import builder as b
from .attrs import attrs
from .elementwise import _check_float
from .registry import importer


@importer("Softmax")
def import_softmax(ctx, node):
    x = ctx.get(node.input[0])
    _check_float(node, x)
    a = attrs(node)
    rank = x.rank
    if ctx.opset >= 13:
        axis = a.get("axis", -1)
    else:
        axis = a.get("axis", 1)
    if rank == 0 or not -rank <= axis < rank:
        raise UnsupportedOp(node, f"axis {axis} is out of range for a rank-{rank} input")
    axis %= rank
    dims = [axis] if ctx.opset >= 13 else list(range(axis, rank))
    return [softmax(x, dims)]


def softmax(x: b.T, dims: list[int]) -> b.T:
    neg_inf = float("-inf")
    mx = b.reduce(x, dims, neg_inf, lambda e, acc: arith.MaximumFOp(e, acc).result, keepdims=False)
    ex = _with_reduced(x, mx, dims, lambda v, m: math.ExpOp(arith.SubFOp(v, m).result).result)
    sm = b.reduce(ex, dims, 0.0, lambda e, acc: arith.AddFOp(e, acc).result, keepdims=False)
    return _with_reduced(ex, sm, dims, lambda v, s: arith.DivFOp(v, s).result)


def _with_reduced(x: b.T, r: b.T, dims: list[int], fn) -> b.T:
    """fn(x, r) elementwise, with r (x reduced over `dims`) read along the kept dims."""
    kept = [d for d in range(x.rank) if d not in dims]
    ident = b.identity_map(x.rank)
    (res,) = b.generic([x.value, r.value], [b.empty(x.shape, x.dtype)], [ident, b.dims_map(x.rank, kept), ident],
                       [b.PARALLEL] * x.rank, lambda v, red, _out: fn(v, red))
    return b.T(res, x.dtype)
