"""Reductions: ReduceSum/Mean/Max/Min/Prod/L1/L2/SumSquare/LogSumExp, ArgMax/ArgMin.

The axes come as an attribute before the opset that moved them to an input
(13 for ReduceSum, 18 for the others), as a compile-time input after. No
axes means every axis, unless noop_with_empty_axes=1: then it means none, and
the op is its elementwise part alone (ReduceSumSquare still squares,
ReduceL1 and ReduceL2 still take |x|), as onnxruntime and the ONNX reference
compute it.

Each reduction is one linalg.generic whose payload folds a mapped element
into the accumulator, e.g. ReduceSumSquare is acc + x*x; a final
elementwise step finishes Mean (/ count), L2 (sqrt) and LogSumExp.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from qc.errors import UnsupportedOp
from qc.mlir import arith, ir, linalg, math

from . import builder as b
from .attrs import attrs
from .registry import importer

FLOATS = (np.dtype(np.float32), np.dtype(np.float64))
INTS = tuple(np.dtype(t) for t in (np.int32, np.int64, np.uint32, np.uint64))
SMALL_INTS = tuple(np.dtype(t) for t in (np.int8, np.uint8))
REDUCE_TYPES = "float32, float64, int32, int64, uint32, uint64"
MINMAX_TYPES = "float32, float64, (u)int8, (u)int32, (u)int64"


# ---------------------------------------------------------------- axes

def _axes_input_opset(op_type: str) -> int:
    return 13 if op_type == "ReduceSum" else 18


def reduction_axes(ctx, node, rank: int) -> list[int]:
    """The normalized, sorted axes to reduce (empty: reduce none)."""
    a = attrs(node)
    if ctx.opset >= _axes_input_opset(node.op_type):
        axes = _axes_from_input(ctx, node)
        if not axes and int(a.get("noop_with_empty_axes", 0)):
            return []
    else:
        axes = [int(v) for v in a.get("axes", [])]
    if not axes:
        return list(range(rank))
    for ax in axes:
        if not -rank <= ax < rank:
            raise UnsupportedOp(node, f"axis {ax} is out of range for a rank-{rank} input")
    norm = [ax % rank for ax in axes]
    if len(set(norm)) != len(norm):
        raise UnsupportedOp(node, f"axes {axes} name a dimension twice")
    return sorted(norm)


def _axes_from_input(ctx, node) -> list[int]:
    if len(node.input) < 2 or not node.input[1]:
        return []
    axes = ctx.const(node.input[1])
    if axes is None:
        raise UnsupportedOp(node, "the axes input must be known at compile time "
                                  "(a constant, or computed from static shapes)")
    return [int(v) for v in np.asarray(axes).ravel()]


# ---------------------------------------------------------------- Reduce*

def _add(dt):
    return (lambda p, q: arith.AddFOp(p, q).result) if b.is_float(dt) else (lambda p, q: arith.AddIOp(p, q).result)


def _mul(dt):
    return (lambda p, q: arith.MulFOp(p, q).result) if b.is_float(dt) else (lambda p, q: arith.MulIOp(p, q).result)


def _abs(dt):
    if b.is_unsigned(dt):
        return lambda v: v
    return (lambda v: math.AbsFOp(v).result) if b.is_float(dt) else (lambda v: math.AbsIOp(v).result)


def _max(dt):
    if b.is_float(dt):
        return lambda p, q: arith.MaximumFOp(p, q).result  # propagates NaN
    return (lambda p, q: arith.MaxUIOp(p, q).result) if b.is_unsigned(dt) else (lambda p, q: arith.MaxSIOp(p, q).result)


def _min(dt):
    if b.is_float(dt):
        return lambda p, q: arith.MinimumFOp(p, q).result
    return (lambda p, q: arith.MinUIOp(p, q).result) if b.is_unsigned(dt) else (lambda p, q: arith.MinSIOp(p, q).result)


def _lowest(dt):
    return -np.inf if b.is_float(dt) else np.iinfo(dt).min


def _highest(dt):
    return np.inf if b.is_float(dt) else np.iinfo(dt).max


def _fold(x: b.T, axes, keepdims, init, combine: Callable, pre: Callable | None = None) -> b.T:
    """acc = combine(pre(e), acc) over `axes`, starting from `init`."""
    step = combine if pre is None else (lambda e, acc: combine(pre(e), acc))
    if not axes:
        # noop_with_empty_axes (or a rank-0 input): one step per element, no loop-carried value
        return b.elementwise([x], x.dtype, lambda e: step(e, b.scalar(init, x.dtype)))
    out = b.reduce(x, axes, init, step, keepdims=False)
    return _keep_dims(out, x.shape, axes) if keepdims else out


def _keep_dims(out: b.T, in_shape, axes) -> b.T:
    """The reduced dims put back as size 1. From rank 0 this is an
    expand_shape without reassociation groups (b.reshape would collapse)."""
    shape = [1 if d in axes else s for d, s in enumerate(in_shape)]
    if out.rank == 0 and shape:
        return b.expand(out, [], shape)
    return b.reshape(out, shape)


def _sum_of(x, axes, keepdims, pre=None):
    return _fold(x, axes, keepdims, 0, lambda e, acc: _add(x.dtype)(acc, e), pre)


def _reduce_sum(x, axes, keepdims):
    return _sum_of(x, axes, keepdims)


def _reduce_sum_square(x, axes, keepdims):
    return _sum_of(x, axes, keepdims, lambda e: _mul(x.dtype)(e, e))


def _reduce_l1(x, axes, keepdims):
    return _sum_of(x, axes, keepdims, _abs(x.dtype))


def _reduce_l2(x, axes, keepdims):
    """sqrt(sum(x^2)); integer inputs take the square root in f64 and truncate."""
    s = _reduce_sum_square(x, axes, keepdims)
    dt = x.dtype
    if b.is_float(dt):
        return b.elementwise([s], dt, lambda v: math.SqrtOp(v).result)
    f64 = b.mlir_type(np.float64)
    to_f = arith.UIToFPOp if b.is_unsigned(dt) else arith.SIToFPOp
    to_i = arith.FPToUIOp if b.is_unsigned(dt) else arith.FPToSIOp
    return b.elementwise([s], dt, lambda v: to_i(b.mlir_type(dt), math.SqrtOp(to_f(f64, v).result).result).result)


def _reduce_mean(x, axes, keepdims):
    """sum / count; integers divide truncating toward zero, as onnxruntime does."""
    s = _reduce_sum(x, axes, keepdims)
    count = int(np.prod([x.shape[a] for a in axes]))
    if count == 1:
        return s
    dt = x.dtype
    n = b.scalar(count, dt)
    div = arith.DivFOp if b.is_float(dt) else arith.DivUIOp if b.is_unsigned(dt) else arith.DivSIOp
    return b.elementwise([s], dt, lambda v: div(v, n).result)


def _reduce_prod(x, axes, keepdims):
    return _fold(x, axes, keepdims, 1, lambda e, acc: _mul(x.dtype)(acc, e))


def _reduce_max(x, axes, keepdims):
    return _fold(x, axes, keepdims, _lowest(x.dtype), lambda e, acc: _max(x.dtype)(acc, e))


def _reduce_min(x, axes, keepdims):
    return _fold(x, axes, keepdims, _highest(x.dtype), lambda e, acc: _min(x.dtype)(acc, e))


def _reduce_log_sum_exp(x, axes, keepdims):
    """log(sum(exp(x))) = m + log(sum(exp(x - m))) with m = max(x): exp never overflows."""
    dt = x.dtype
    m = _reduce_max(x, axes, True)
    shifted = b.elementwise([x, m], dt, lambda v, mv: math.ExpOp(arith.SubFOp(v, mv).result).result)
    s = _reduce_sum(shifted, axes, True)
    out = b.elementwise([s, m], dt, lambda sv, mv: arith.AddFOp(math.LogOp(sv).result, mv).result)
    if not keepdims:
        out = b.reshape(out, [d for i, d in enumerate(x.shape) if i not in axes])
    return out


# op -> (builder, element types, their description)
_REDUCTIONS = {
    "ReduceSum": (_reduce_sum, FLOATS + INTS, REDUCE_TYPES),
    "ReduceMean": (_reduce_mean, FLOATS + INTS, REDUCE_TYPES),
    "ReduceProd": (_reduce_prod, FLOATS + INTS, REDUCE_TYPES),
    "ReduceSumSquare": (_reduce_sum_square, FLOATS + INTS, REDUCE_TYPES),
    "ReduceL1": (_reduce_l1, FLOATS + INTS, REDUCE_TYPES),
    "ReduceL2": (_reduce_l2, FLOATS + INTS, REDUCE_TYPES),
    "ReduceMax": (_reduce_max, FLOATS + INTS + SMALL_INTS, MINMAX_TYPES),
    "ReduceMin": (_reduce_min, FLOATS + INTS + SMALL_INTS, MINMAX_TYPES),
    "ReduceLogSumExp": (_reduce_log_sum_exp, FLOATS, "float32, float64"),
}


@importer(*_REDUCTIONS)
def import_reduce(ctx, node):
    x = ctx.get(node.input[0])
    build, types, names = _REDUCTIONS[node.op_type]
    if x.dtype not in types:
        raise UnsupportedOp(node, f"element type {x.dtype} is not supported", names)
    axes = reduction_axes(ctx, node, x.rank)
    keepdims = bool(int(attrs(node).get("keepdims", 1)))
    return [build(x, axes, keepdims)]


# ---------------------------------------------------------------- ArgMax / ArgMin

ARG_TYPES = "float32, float64, (u)int8/16/32/64"


@importer("ArgMax", "ArgMin")
def import_arg_reduce(ctx, node):
    """The int64 index of the largest (smallest) element along `axis`.

    One generic carries (best value, best index): an element replaces the
    best if it is strictly better (first index on ties) or, with
    select_last_index=1, better or equal (last index on ties).
    """
    x = ctx.get(node.input[0])
    dt = x.dtype
    if not (dt in FLOATS or (np.issubdtype(dt, np.integer) and dt != np.bool_)):
        raise UnsupportedOp(node, f"element type {dt} is not supported", ARG_TYPES)
    a = attrs(node)
    axis, keepdims = int(a.get("axis", 0)), bool(int(a.get("keepdims", 1)))
    last = bool(int(a.get("select_last_index", 0)))
    if x.rank == 0 or not -x.rank <= axis < x.rank:
        raise UnsupportedOp(node, f"axis {axis} is out of range for a rank-{x.rank} input")
    axis %= x.rank
    is_max = node.op_type == "ArgMax"
    out = _arg_reduce(x, axis, _better(dt, is_max, last), _lowest(dt) if is_max else _highest(dt))
    return [_keep_dims(out, x.shape, [axis]) if keepdims else out]


def _better(dt, is_max: bool, or_equal: bool) -> Callable[[ir.Value, ir.Value], ir.Value]:
    """(element, best) -> i1: does the element replace the best so far?"""
    if b.is_float(dt):
        name = ("O" + ("G" if is_max else "L") + ("E" if or_equal else "T"))
        pred = getattr(arith.CmpFPredicate, name)
        return lambda e, best: arith.CmpFOp(pred, e, best).result
    sign = "u" if b.is_unsigned(dt) else "s"
    name = sign + ("g" if is_max else "l") + ("e" if or_equal else "t")
    pred = getattr(arith.CmpIPredicate, name)
    return lambda e, best: arith.CmpIOp(pred, e, best).result


def _arg_reduce(x: b.T, axis: int, better, init_value) -> b.T:
    kept = [d for d in range(x.rank) if d != axis]
    out_shape = [x.shape[d] for d in kept]
    i64 = np.dtype(np.int64)
    best_init = b.filled(out_shape, x.dtype, init_value)
    index_init = b.filled(out_shape, i64, 0)
    iters = [b.REDUCTION if d == axis else b.PARALLEL for d in range(x.rank)]
    out_map = b.dims_map(x.rank, kept)

    def body(e, best, best_index):
        index = arith.IndexCastOp(b.mlir_type(i64), linalg.IndexOp(axis).result).result
        replace = better(e, best)
        return (arith.SelectOp(replace, e, best).result,
                arith.SelectOp(replace, index, best_index).result)

    _, indices = b.generic([x.value], [best_init, index_init], [b.identity_map(x.rank), out_map, out_map],
                           iters, body)
    return b.T(indices, i64)
