"""LogSoftmax and Hardmax, with Softmax's two ONNX forms of `axis`.

Opset < 13: the input is coerced to 2-D at `axis` (default 1) and the op runs
over the flattened trailing block, all dims >= axis. Opset >= 13: over the
single dim `axis` (default -1).

    logsoftmax(x) = (x - max) - log(sum(exp(x - max)))
    hardmax(x)    = 1 at the first maximum (in row-major order over the
                    reduced dims), 0 elsewhere

The max keeps exp from overflowing; the first maximum is the smallest
linear index among the elements equal to the max.
"""

from __future__ import annotations

import numpy as np

from qc.errors import UnsupportedOp
from qc.mlir import arith, ir, linalg, math

from . import builder as b
from .attrs import attrs
from .registry import importer

FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


def _reduced_dims(ctx, node, x: b.T) -> list[int]:
    if x.dtype not in FLOATS:
        raise UnsupportedOp(node, f"element type {x.dtype} is not supported", "float32, float64")
    axis = int(attrs(node).get("axis", -1 if ctx.opset >= 13 else 1))
    if x.rank == 0 or not -x.rank <= axis < x.rank:
        raise UnsupportedOp(node, f"axis {axis} is out of range for a rank-{x.rank} input")
    axis %= x.rank
    return [axis] if ctx.opset >= 13 else list(range(axis, x.rank))


def _with_reduced(x: b.T, r: b.T, dims: list[int], out_dtype, fn) -> b.T:
    """fn(x, r) elementwise, r (x reduced over `dims`, keepdims=False) read along the kept dims."""
    kept = [d for d in range(x.rank) if d not in dims]
    ident = b.identity_map(x.rank)
    (res,) = b.generic([x.value, r.value], [b.empty(x.shape, out_dtype)], [ident, b.dims_map(x.rank, kept), ident],
                       [b.PARALLEL] * x.rank, lambda v, red, _out: fn(v, red))
    return b.T(res, np.dtype(out_dtype))


def _max(x: b.T, dims: list[int]) -> b.T:
    return b.reduce(x, dims, float("-inf"), lambda e, acc: arith.MaximumFOp(e, acc).result, keepdims=False)


@importer("LogSoftmax")
def import_log_softmax(ctx, node):
    x = ctx.get(node.input[0])
    return [log_softmax(x, _reduced_dims(ctx, node, x))]


def log_softmax(x: b.T, dims: list[int]) -> b.T:
    """(x - max) - log(sum(exp(x - max))) over `dims`."""
    mx = _max(x, dims)
    shifted = _with_reduced(x, mx, dims, x.dtype, lambda v, m: arith.SubFOp(v, m).result)
    exps = b.elementwise([shifted], x.dtype, lambda v: math.ExpOp(v).result)
    total = b.reduce(exps, dims, 0.0, lambda e, acc: arith.AddFOp(e, acc).result, keepdims=False)
    return _with_reduced(shifted, total, dims, x.dtype, lambda v, s: arith.SubFOp(v, math.LogOp(s).result).result)


@importer("Hardmax")
def import_hardmax(ctx, node):
    x = ctx.get(node.input[0])
    dims = _reduced_dims(ctx, node, x)
    mx = _max(x, dims)
    first = _first_index_of(x, mx, dims)
    one, zero = b.scalar(1.0, x.dtype), b.scalar(0.0, x.dtype)

    def body(_v, f):
        at_first = arith.CmpIOp(arith.CmpIPredicate.eq, _linear_index(x, dims), f).result
        return arith.SelectOp(at_first, one, zero).result

    return [_with_reduced(x, first, dims, x.dtype, body)]


def _linear_index(x: b.T, dims: list[int]) -> ir.Value:
    """The row-major position among the reduced dims, as i64, inside a generic over x."""
    i64 = ir.IntegerType.get_signless(64)
    pos = None
    for d in dims:
        idx = arith.IndexCastOp(i64, linalg.IndexOp(d).result).result
        pos = idx if pos is None else arith.AddIOp(arith.MulIOp(pos, b.scalar(x.shape[d], np.int64)).result, idx).result
    return pos


def _first_index_of(x: b.T, mx: b.T, dims: list[int]) -> b.T:
    """min over the reduced dims of the linear index where x == max."""
    kept = [d for d in range(x.rank) if d not in dims]
    none = int(np.prod([x.shape[d] for d in dims]))  # past every index
    init = b.filled([x.shape[d] for d in kept], np.int64, none)
    iters = [b.REDUCTION if d in dims else b.PARALLEL for d in range(x.rank)]
    kept_map = b.dims_map(x.rank, kept)

    def body(v, m, acc):
        hit = arith.CmpFOp(arith.CmpFPredicate.OEQ, v, m).result
        cand = arith.SelectOp(hit, _linear_index(x, dims), b.scalar(none, np.int64)).result
        return arith.MinSIOp(cand, acc).result

    (res,) = b.generic([x.value, mx.value], [init], [b.identity_map(x.rank), kept_map, kept_map], iters, body)
    return b.T(res, np.dtype(np.int64))
