"""Variadic elementwise ops: Min, Max, Sum, Mean over 1..N inputs.

All inputs broadcast together (numpy rules) into one linalg.generic whose
payload folds them left to right; one input is returned as it is. Mean is
the sum divided by N.
"""

from __future__ import annotations

from functools import reduce

import numpy as np

from qc.errors import UnsupportedOp
from qc.mlir import arith

from . import builder as b
from .registry import importer

FLOATS = (np.dtype(np.float32), np.dtype(np.float64))
FLOAT_TYPES = "float32, float64"
MINMAX_TYPES = "float32, float64, (u)int8/16/32/64"


def _inputs(ctx, node) -> list[b.T]:
    xs = [ctx.get(n) for n in node.input if n]
    if not xs:
        raise UnsupportedOp(node, "needs at least one input")
    if len({x.dtype for x in xs}) > 1:
        raise UnsupportedOp(node, f"inputs have different element types ({', '.join(str(x.dtype) for x in xs)})")
    try:
        np.broadcast_shapes(*[x.shape for x in xs])
    except ValueError:
        raise UnsupportedOp(node, f"input shapes {', '.join(str(list(x.shape)) for x in xs)} "
                                  "do not broadcast") from None
    return xs


def _fold(xs: list[b.T], combine, finish=None) -> b.T:
    """combine(...combine(x0, x1)..., xN), then finish(result), as one generic."""
    if len(xs) == 1 and finish is None:
        return xs[0]

    def body(*scalars):
        acc = reduce(combine, scalars)
        return finish(acc) if finish else acc

    return b.elementwise(xs, xs[0].dtype, body)


def _minmax_ctor(op: str, dt):
    if b.is_float(dt):
        # maximumf/minimumf propagate NaN, as onnxruntime's Max/Min do.
        return arith.MaximumFOp if op == "Max" else arith.MinimumFOp
    if b.is_unsigned(dt):
        return arith.MaxUIOp if op == "Max" else arith.MinUIOp
    return arith.MaxSIOp if op == "Max" else arith.MinSIOp


@importer("Min", "Max")
def import_min_max(ctx, node):
    xs = _inputs(ctx, node)
    dt = xs[0].dtype
    if not (dt in FLOATS or (np.issubdtype(dt, np.integer) and dt != np.bool_)):
        raise UnsupportedOp(node, f"element type {dt} is not supported", MINMAX_TYPES)
    ctor = _minmax_ctor(node.op_type, dt)
    return [_fold(xs, lambda p, q: ctor(p, q).result)]


@importer("Sum", "Mean")
def import_sum_mean(ctx, node):
    xs = _inputs(ctx, node)
    dt = xs[0].dtype
    if dt not in FLOATS:
        raise UnsupportedOp(node, f"element type {dt} is not supported", FLOAT_TYPES)
    add = lambda p, q: arith.AddFOp(p, q).result  # noqa: E731
    if node.op_type == "Sum":
        return [_fold(xs, add)]
    # Mean = (x0 + ... + x{N-1}) / N
    n = len(xs)
    return [_fold(xs, add, None if n == 1 else lambda s: arith.DivFOp(s, b.scalar(float(n), dt)).result)]
