"""OneHot: a new axis of size depth (a compile-time constant) that holds
on_value where its position equals the index, off_value elsewhere.

    y[.., j, ..] = on if j == (i < 0 ? i + depth : i) else off

with i = indices[..] read along the other dims. An index outside
[-depth, depth) matches no j: all off. Float indices compare exactly (1.5
matches nothing), as ONNX's reference does. values = [off, on] may be a
run-time input: both are read once, outside the loops.
"""

from __future__ import annotations

import numpy as np

from qc.errors import UnsupportedOp
from qc.mlir import arith, ir, linalg, tensor

from . import builder as b
from .attrs import attrs
from .registry import importer
from .shape_fns import const_input


@importer("OneHot")
def import_one_hot(ctx, node):
    indices, values = ctx.get(node.input[0]), ctx.get(node.input[2])
    if indices.dtype == np.bool_ or indices.dtype == np.float16:
        raise UnsupportedOp(node, f"indices of element type {indices.dtype}",
                            "float32, float64, (u)int8/16/32/64")
    depth_value = const_input(ctx, node, 1, "depth")
    if depth_value.size != 1:
        raise UnsupportedOp(node, f"depth has {depth_value.size} elements", "one")
    depth = int(depth_value.ravel()[0])
    if depth <= 0:
        raise UnsupportedOp(node, f"depth {depth}", "depth >= 1")
    if values.shape != (2,):
        raise UnsupportedOp(node, f"values of shape {list(values.shape)}", "[off_value, on_value]")
    rank = indices.rank + 1
    axis = int(attrs(node).get("axis", -1))
    if not -rank <= axis < rank:
        raise UnsupportedOp(node, f"axis {axis} is out of range for a rank-{rank} output")
    axis %= rank
    off, on = (_element(values, i) for i in (0, 1))
    out_shape = [*indices.shape[:axis], depth, *indices.shape[axis:]]
    idx_map = b.dims_map(rank, [d for d in range(rank) if d != axis])
    match = _matcher(indices.dtype, depth, axis)

    (res,) = b.generic([indices.value], [b.empty(out_shape, values.dtype)], [idx_map, b.identity_map(rank)],
                       [b.PARALLEL] * rank, lambda i, _out: arith.SelectOp(match(i), on, off).result)
    return [b.T(res, values.dtype)]


def _element(t: b.T, i: int) -> ir.Value:
    return tensor.ExtractOp(t.value, [arith.ConstantOp(ir.IndexType.get(), i).result]).result


def _matcher(dt, depth: int, axis: int):
    """i -> (j == i wrapped), j the position along the new axis."""
    i64 = ir.IntegerType.get_signless(64)
    if b.is_float(dt):
        zero, d = b.scalar(0.0, dt), b.scalar(float(depth), dt)

        def match(i):
            j = arith.SIToFPOp(b.mlir_type(dt), arith.IndexCastOp(i64, linalg.IndexOp(axis).result).result).result
            neg = arith.CmpFOp(arith.CmpFPredicate.OLT, i, zero).result
            wrapped = arith.SelectOp(neg, arith.AddFOp(i, d).result, i).result
            return arith.CmpFOp(arith.CmpFPredicate.OEQ, wrapped, j).result

        return match
    unsigned = b.is_unsigned(dt)

    def match(i):
        if np.dtype(dt).itemsize < 8:
            i = (arith.ExtUIOp if unsigned else arith.ExtSIOp)(i64, i).result
        j = arith.IndexCastOp(i64, linalg.IndexOp(axis).result).result
        if unsigned:  # never negative; a value >= 2^63 read as i64 matches no j below
            return arith.CmpIOp(arith.CmpIPredicate.eq, i, j).result
        neg = arith.CmpIOp(arith.CmpIPredicate.slt, i, b.scalar(0, np.int64)).result
        wrapped = arith.SelectOp(neg, arith.AddIOp(i, b.scalar(depth, np.int64)).result, i).result
        return arith.CmpIOp(arith.CmpIPredicate.eq, wrapped, j).result

    return match
