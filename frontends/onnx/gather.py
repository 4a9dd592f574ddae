"""Gather and GatherElements.

Gather(x, idx, axis): out[a.., i.., b..] = x[a.., idx[i..], b..]
GatherElements(x, idx, axis): out[p] = x[p with p[axis] replaced by idx[p]]

Constant indices that step evenly (a scalar, a range, a strided range, in
any shape) are a tensor.extract_slice plus a reshape (see data_ops.slice_of
for when the slice is copied); decreasing ones are reversed afterwards. Any
other indices drive one linalg.generic that reads x with tensor.extract.

Negative indices count from the end, as ONNX says. At run time an index
outside [-d, d) is clamped into range, so a bad index never reads outside
the tensor (onnxruntime reports an error instead); constant indices are
checked at compile time.
"""

from __future__ import annotations

import numpy as np

from qc.errors import UnsupportedOp
from qc.mlir import arith, ir, linalg, tensor

from . import builder as b
from .attrs import attrs
from .data_ops import extract_slice, reverse, slice_of
from .registry import importer
from .shape_fns import check_data_type, normalize_axis

INDEX_TYPES = (np.dtype(np.int32), np.dtype(np.int64))


def _indices(ctx, node, dim: int) -> tuple[b.T | None, np.ndarray | None]:
    """(runtime indices, None) or (None, constant indices made non-negative)."""
    known = ctx.const(node.input[1])
    if known is None:
        idx = ctx.get(node.input[1])
        if idx.dtype not in INDEX_TYPES:
            raise UnsupportedOp(node, f"indices of type {idx.dtype}", "int32, int64")
        return idx, None
    known = np.asarray(known)
    if known.dtype not in INDEX_TYPES:
        raise UnsupportedOp(node, f"indices of type {known.dtype}", "int32, int64")
    if known.size and (known.min() < -dim or known.max() >= dim):
        raise UnsupportedOp(node, f"indices in [{known.min()}, {known.max()}] are out of range "
                                  f"for a dim of {dim}")
    return None, np.where(known < 0, known + dim, known).astype(np.int64)


def _evenly_stepped(flat: np.ndarray) -> int | None:
    """The step of an arithmetic sequence with a nonzero step, or None."""
    if flat.size == 1:
        return 1
    steps = np.diff(flat)
    return int(steps[0]) if steps[0] != 0 and np.all(steps == steps[0]) else None


def _source_index(i: ir.Value, dim: int, in_range: bool) -> ir.Value:
    """An index element → an `index` in [0, dim): i + dim if i < 0, then
    clamped. Constant indices were made non-negative and checked already."""
    idx = ir.IndexType.get()
    v = arith.IndexCastOp(idx, i).result
    if in_range:
        return v
    zero = arith.ConstantOp(idx, 0).result
    wrapped = arith.AddIOp(v, arith.ConstantOp(idx, dim).result).result
    neg = arith.CmpIOp(arith.CmpIPredicate.slt, v, zero).result
    v = arith.SelectOp(neg, wrapped, v).result
    v = arith.MaxSIOp(v, zero).result
    return arith.MinSIOp(v, arith.ConstantOp(idx, dim - 1).result).result


@importer("Gather")
def import_gather(ctx, node):
    x = ctx.get(node.input[0])
    check_data_type(node, x)
    if x.rank == 0:
        raise UnsupportedOp(node, "cannot gather from a scalar")
    axis = normalize_axis(node, attrs(node).get("axis", 0), x.rank)
    runtime, known = _indices(ctx, node, x.shape[axis])
    if known is not None:
        if known.size == 0:
            raise UnsupportedOp(node, "indices are empty", "non-empty tensors")
        step = _evenly_stepped(known.ravel())
        if step is not None:
            return [_gather_slice(x, axis, known, step)]
        return [_gather_generic(x, axis, b.constant(known), in_range=True)]
    return [_gather_generic(x, axis, runtime, in_range=False)]


def _gather_slice(x: b.T, axis: int, idx: np.ndarray, step: int) -> b.T:
    """Evenly stepped indices: x sliced along axis (reversed for a negative
    step), that dim then reshaped to idx.shape."""
    flat = idx.ravel()
    offsets, sizes, strides = [0] * x.rank, list(x.shape), [1] * x.rank
    offsets[axis], sizes[axis], strides[axis] = int(flat.min()), flat.size, abs(step)
    if step < 0:
        y = reverse(extract_slice(x, offsets, sizes, strides), [axis])
    else:
        y = slice_of(x, offsets, sizes, strides)
    out_shape = [*x.shape[:axis], *idx.shape, *x.shape[axis + 1:]]
    if idx.ndim == 0:
        return b.drop_unit_dims(y, [d == axis for d in range(x.rank)])
    if idx.ndim == 1:
        return y
    # The one gathered dim splits into idx.shape: groups are singletons but one.
    groups = [[d] for d in range(axis)] + [list(range(axis, axis + idx.ndim))]
    groups += [[d + idx.ndim - 1] for d in range(axis + 1, x.rank)]
    return b.expand(y, groups, out_shape)


def _gather_generic(x: b.T, axis: int, idx: b.T, in_range: bool) -> b.T:
    """Loops over the output; x is read at (outer dims, idx[index dims], inner dims)."""
    q = idx.rank
    out_shape = [*x.shape[:axis], *idx.shape, *x.shape[axis + 1:]]
    rank = len(out_shape)
    idx_map = b.dims_map(rank, list(range(axis, axis + q)))

    def body(i, _out):
        coords = [linalg.IndexOp(d).result for d in range(axis)]
        coords.append(_source_index(i, x.shape[axis], in_range))
        coords += [linalg.IndexOp(d).result for d in range(axis + q, rank)]
        return tensor.ExtractOp(x.value, coords).result

    (res,) = b.generic([idx.value], [b.empty(out_shape, x.dtype)], [idx_map, b.identity_map(rank)],
                       [b.PARALLEL] * rank, body)
    return b.T(res, x.dtype)


@importer("GatherElements")
def import_gather_elements(ctx, node):
    x = ctx.get(node.input[0])
    check_data_type(node, x)
    if x.rank == 0:
        raise UnsupportedOp(node, "cannot gather from a scalar")
    axis = normalize_axis(node, attrs(node).get("axis", 0), x.rank)
    runtime, known = _indices(ctx, node, x.shape[axis])
    ishape = runtime.shape if known is None else known.shape
    if len(ishape) != x.rank:
        raise UnsupportedOp(node, f"indices have rank {len(ishape)}, data rank {x.rank}", "equal ranks")
    too_big = [d for d in range(x.rank) if d != axis and ishape[d] > x.shape[d]]
    if too_big:
        raise UnsupportedOp(node, f"indices {list(ishape)} are larger than data {list(x.shape)} "
                                  f"on dims {too_big}")
    if 0 in ishape:
        raise UnsupportedOp(node, "indices are empty", "non-empty tensors")
    idx = runtime if known is None else b.constant(known)
    in_range = known is not None
    rank = x.rank

    def body(i, _out):
        coords = [_source_index(i, x.shape[axis], in_range) if d == axis else linalg.IndexOp(d).result
                  for d in range(rank)]
        return tensor.ExtractOp(x.value, coords).result

    (res,) = b.generic([idx.value], [b.empty(idx.shape, x.dtype)], [b.identity_map(rank)] * 2,
                       [b.PARALLEL] * rank, body)
    return [b.T(res, x.dtype)]

