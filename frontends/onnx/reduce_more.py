"""ReduceLogSum: log(sum(x)) over the axes, with reduce.py's axes rules
(attribute or compile-time input by opset, noop_with_empty_axes, keepdims).
"""

from __future__ import annotations

import numpy as np

from qc.errors import UnsupportedOp
from qc.mlir import arith, math

from . import builder as b
from .attrs import attrs
from .reduce import reduction_axes
from .registry import importer


@importer("ReduceLogSum")
def import_reduce_log_sum(ctx, node):
    x = ctx.get(node.input[0])
    if x.dtype not in (np.float32, np.float64):
        raise UnsupportedOp(node, f"element type {x.dtype} is not supported", "float32, float64")
    axes = reduction_axes(ctx, node, x.rank)
    keepdims = bool(int(attrs(node).get("keepdims", 1)))
    log = lambda v: math.LogOp(v).result  # noqa: E731
    if not axes:  # noop_with_empty_axes: log of each element
        return [b.elementwise([x], x.dtype, log)]
    total = b.reduce(x, axes, 0.0, lambda e, acc: arith.AddFOp(e, acc).result, keepdims=keepdims)
    return [b.elementwise([total], x.dtype, log)]
