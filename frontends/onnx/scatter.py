"""ScatterElements (and its old name Scatter), ScatterND, TensorScatter.

linalg on tensors has no scatter, so each is written from the output's side:
an output element folds in every update that targets it. The update loop is
a reduction loop of one generic whose accumulator starts as a copy of data:

    ScatterElements  out[.., i, ..] = fold over j of updates[.., j, ..]
                                      where indices[.., j, ..] == i (i, j along axis)
    ScatterND        out[p, t]      = fold over tuples u of updates[u, t]
                                      where indices[u, :] == p

The fold is in update order: for reduction none the last update to a
position wins, as a sequential scatter's would; add, mul, max, min combine.
That costs |output| x (updates per output line) compares, fine for the
index-table sizes these ops see. Negative indices wrap; an index still out
of range matches nothing.

TensorScatter (a KV-cache write) is a gather instead: along the sequence
axis, output position p of batch b takes update[k] with k = p - w[b]
(mod the cache length when circular) when 0 <= k < the update length, else
the past cache.
"""

from __future__ import annotations

import numpy as np

from qc.errors import UnsupportedOp
from qc.mlir import arith, ir, linalg, tensor

from . import builder as b
from .attrs import attrs
from .data_ops import copy, insert_slice, slice_of
from .registry import importer
from .shape_fns import normalize_axis

REDUCTIONS = "none, add, mul, max, min"


def _combine(node, dt, reduction: str):
    """(accumulated, update) -> new value."""
    flt = b.is_float(dt)
    unsigned = b.is_unsigned(dt)
    max_op = arith.MaximumFOp if flt else arith.MaxUIOp if unsigned else arith.MaxSIOp
    min_op = arith.MinimumFOp if flt else arith.MinUIOp if unsigned else arith.MinSIOp
    ops = {
        "none": lambda acc, u: u,
        "add": lambda acc, u: (arith.AddFOp if flt else arith.AddIOp)(acc, u).result,
        "mul": lambda acc, u: (arith.MulFOp if flt else arith.MulIOp)(acc, u).result,
        "max": lambda acc, u: max_op(acc, u).result,
        "min": lambda acc, u: min_op(acc, u).result,
    }
    if reduction not in ops:
        raise UnsupportedOp(node, f"reduction '{reduction}'", REDUCTIONS)
    if reduction != "none" and dt == np.bool_:
        raise UnsupportedOp(node, f"reduction '{reduction}' on bool", "reduction none")
    return ops[reduction]


def _index64(v: ir.Value, dt) -> ir.Value:
    return v if dt == np.int64 else arith.ExtSIOp(ir.IntegerType.get_signless(64), v).result


def _wrapped(v: ir.Value, n: int) -> ir.Value:
    """An i64 index with negative values counted from the end (of a dim of size n)."""
    neg = arith.CmpIOp(arith.CmpIPredicate.slt, v, b.scalar(0, np.int64)).result
    return arith.SelectOp(neg, arith.AddIOp(v, b.scalar(n, np.int64)).result, v).result


def _position(dim: int) -> ir.Value:
    return arith.IndexCastOp(ir.IntegerType.get_signless(64), linalg.IndexOp(dim).result).result


# ---------------------------------------------------------------- ScatterElements


@importer("ScatterElements", "Scatter")
def import_scatter_elements(ctx, node):
    a = attrs(node)
    data, idx, upd = (ctx.get(n) for n in node.input[:3])
    if idx.dtype not in (np.int32, np.int64):
        raise UnsupportedOp(node, f"indices of element type {idx.dtype}", "int32, int64")
    if upd.dtype != data.dtype or idx.shape != upd.shape or upd.rank != data.rank:
        raise UnsupportedOp(node, f"data {data.dtype}{list(data.shape)}, indices {list(idx.shape)}, "
                                  f"updates {upd.dtype}{list(upd.shape)}",
                            "indices and updates of one shape and data's rank")
    axis = normalize_axis(node, a.get("axis", 0), data.rank)
    if any(u > d for u, d in zip(upd.shape, data.shape)):
        raise UnsupportedOp(node, f"updates {list(upd.shape)} are larger than data {list(data.shape)}")
    combine = _combine(node, data.dtype, a.get("reduction", "none"))
    # Output positions outside the updates' extent (off the axis) keep data:
    # scatter into that block only.
    block_shape = [d if i == axis else u for i, (u, d) in enumerate(zip(upd.shape, data.shape))]
    block = slice_of(data, [0] * data.rank, block_shape)
    out = _scatter_block(copy(block), idx, upd, axis, combine)
    if tuple(block_shape) == data.shape:
        return [out]
    return [b.T(insert_slice(out, copy(data).value, [0] * data.rank), data.dtype)]


def _scatter_block(init: b.T, idx: b.T, upd: b.T, axis: int, combine) -> b.T:
    r = init.rank
    j = r  # the update loop: the position along axis within updates
    upd_map = b.dims_map(r + 1, [j if d == axis else d for d in range(r)])
    n = init.shape[axis]

    def body(i, u, acc):
        hit = arith.CmpIOp(arith.CmpIPredicate.eq, _wrapped(_index64(i, idx.dtype), n), _position(axis)).result
        return arith.SelectOp(hit, combine(acc, u), acc).result

    (res,) = b.generic([idx.value, upd.value], [init.value], [upd_map, upd_map, b.dims_map(r + 1, list(range(r)))],
                       [b.PARALLEL] * r + [b.REDUCTION], body)
    return b.T(res, init.dtype)


# ---------------------------------------------------------------- ScatterND


@importer("ScatterND")
def import_scatter_nd(ctx, node):
    data, idx, upd = (ctx.get(n) for n in node.input[:3])
    if idx.dtype != np.int64:
        raise UnsupportedOp(node, f"indices of element type {idx.dtype}", "int64")
    q = idx.shape[-1] if idx.rank else 0
    lead = idx.shape[:-1]
    if not 1 <= q <= data.rank or upd.dtype != data.dtype or upd.shape != (*lead, *data.shape[q:]):
        raise UnsupportedOp(node, f"data {data.dtype}{list(data.shape)}, indices {list(idx.shape)}, "
                                  f"updates {upd.dtype}{list(upd.shape)}",
                            "updates of shape indices.shape[:-1] + data.shape[indices.shape[-1]:]")
    combine = _combine(node, data.dtype, attrs(node).get("reduction", "none"))
    r, nl = data.rank, len(lead)
    rank = r + nl  # output dims, then the index tuples' dims (reduced)
    upd_map = b.dims_map(rank, [*range(r, rank), *range(q, r)])
    idx_ty = ir.IndexType.get()

    def body(u, acc):
        at_tuple = [linalg.IndexOp(d).result for d in range(r, rank)]
        hit = None
        for k in range(q):
            comp = tensor.ExtractOp(idx.value, [*at_tuple, arith.ConstantOp(idx_ty, k).result]).result
            eq = arith.CmpIOp(arith.CmpIPredicate.eq, _wrapped(comp, data.shape[k]), _position(k)).result
            hit = eq if hit is None else arith.AndIOp(hit, eq).result
        return arith.SelectOp(hit, combine(acc, u), acc).result

    (res,) = b.generic([upd.value], [copy(data).value], [upd_map, b.dims_map(rank, list(range(r)))],
                       [b.PARALLEL] * r + [b.REDUCTION] * nl, body)
    return [b.T(res, data.dtype)]


# ---------------------------------------------------------------- TensorScatter


@importer("TensorScatter")
def import_tensor_scatter(ctx, node):
    a = attrs(node)
    past, upd = ctx.get(node.input[0]), ctx.get(node.input[1])
    writes = ctx.get(node.input[2]) if len(node.input) > 2 and node.input[2] else None
    axis = normalize_axis(node, a.get("axis", -2), past.rank)
    mode = a.get("mode", "linear")
    if mode not in ("linear", "circular"):
        raise UnsupportedOp(node, f"mode '{mode}'", "linear, circular")
    ok = upd.dtype == past.dtype and upd.rank == past.rank and axis >= 1 and all(
        (u <= p) if i == axis else (u == p) for i, (u, p) in enumerate(zip(upd.shape, past.shape)))
    if not ok:
        raise UnsupportedOp(node, f"past_cache {past.dtype}{list(past.shape)}, update {upd.dtype}{list(upd.shape)}, "
                                  f"axis {axis}", "an update that matches the cache off the axis (axis >= 1)")
    if writes is not None and (writes.dtype != np.int64 or writes.shape != (past.shape[0],)):
        raise UnsupportedOp(node, f"write_indices is {writes.dtype}{list(writes.shape)}", f"int64[{past.shape[0]}]")
    length, seq = past.shape[axis], upd.shape[axis]
    idx_ty = ir.IndexType.get()

    def body(p, _out):
        at = [linalg.IndexOp(d).result for d in range(past.rank)]
        k = _position(axis)
        if writes is not None:
            w = tensor.ExtractOp(writes.value, [at[0]]).result
            k = arith.SubIOp(k, w).result
        if mode == "circular":
            # (p - w) mod L, kept non-negative
            k = arith.RemSIOp(arith.AddIOp(arith.RemSIOp(k, b.scalar(length, np.int64)).result,
                                           b.scalar(length, np.int64)).result, b.scalar(length, np.int64)).result
        inside = arith.AndIOp(arith.CmpIOp(arith.CmpIPredicate.sge, k, b.scalar(0, np.int64)).result,
                              arith.CmpIOp(arith.CmpIPredicate.slt, k, b.scalar(seq, np.int64)).result).result
        safe = arith.MinSIOp(arith.MaxSIOp(k, b.scalar(0, np.int64)).result, b.scalar(seq - 1, np.int64)).result
        coords = list(at)
        coords[axis] = arith.IndexCastOp(idx_ty, safe).result
        u = tensor.ExtractOp(upd.value, coords).result
        return arith.SelectOp(inside, u, p).result

    ident = b.identity_map(past.rank)
    (res,) = b.generic([past.value], [b.empty(past.shape, past.dtype)], [ident, ident], [b.PARALLEL] * past.rank,
                       body)
    return [b.T(res, past.dtype)]
