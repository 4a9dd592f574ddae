"""Data movement: CenterCropPad, GatherND, EyeLike, and ReverseSequence.

CenterCropPad crops or zero-pads each named axis to the target size around
its center: a dim larger than the target is sliced from (dim - size) // 2,
a smaller one is copied into zeros at (size - dim) // 2 (the target shape is
a compile-time constant).

GatherND reads data[b..., idx[b..., i..., :], ...]: one generic over the
output whose payload reads the index tuple and then the element with
tensor.extract. Negative indices wrap; indices are clamped into range so a
bad one never reads out of bounds.

EyeLike: ones on the k-th diagonal of a 2-D tensor shaped like the input (whose
values are never read), zeros elsewhere, from the positions alone.
"""

from __future__ import annotations

import numpy as np
import onnx

from qc.errors import UnsupportedOp
from qc.mlir import arith, ir, linalg, tensor

from . import builder as b
from .attrs import attrs
from .data_ops import insert_slice, slice_of
from .importer import ONNX_DTYPES
from .registry import importer
from .shape_fns import const_ints, normalize_axes, static_shape

# ---------------------------------------------------------------- CenterCropPad


@importer("CenterCropPad")
def import_center_crop_pad(ctx, node):
    x = ctx.get(node.input[0])
    sizes = const_ints(ctx, node, 1, "shape")
    axes = normalize_axes(node, attrs(node).get("axes", range(x.rank)), x.rank)
    if len(sizes) != len(axes):
        raise UnsupportedOp(node, f"shape has {len(sizes)} values for {len(axes)} axes")
    if any(s < 1 for s in sizes):
        raise UnsupportedOp(node, f"shape {sizes}", "sizes >= 1")
    target = dict(zip(axes, sizes))
    # Crop the dims that shrink, then pad the ones that grow.
    crop_off = [(d - target[a]) // 2 if target.get(a, d) < d else 0 for a, d in enumerate(x.shape)]
    crop_size = [min(target.get(a, d), d) for a, d in enumerate(x.shape)]
    y = slice_of(x, crop_off, crop_size)
    out_shape = [target.get(a, d) for a, d in enumerate(x.shape)]
    if list(out_shape) == list(y.shape):
        return [y]
    pad_off = [(o - c) // 2 for o, c in zip(out_shape, crop_size)]
    zeros = b.filled(out_shape, x.dtype, 0)
    return [b.T(insert_slice(y, zeros, pad_off), x.dtype)]


# ---------------------------------------------------------------- GatherND


@importer("GatherND")
def import_gather_nd(ctx, node):
    data, idx = ctx.get(node.input[0]), ctx.get(node.input[1])
    if idx.dtype != np.int64:
        raise UnsupportedOp(node, f"indices of element type {idx.dtype}", "int64")
    batch = int(attrs(node).get("batch_dims", 0))
    depth = idx.shape[-1] if idx.rank else 0
    if not (0 <= batch < min(data.rank, idx.rank) and 1 <= depth <= data.rank - batch
            and data.shape[:batch] == idx.shape[:batch]):
        raise UnsupportedOp(node, f"data {list(data.shape)}, indices {list(idx.shape)}, batch_dims {batch}",
                            "matching batch dims and index tuples no longer than the remaining data rank")
    mid = idx.shape[batch:-1]  # the index tuples' own dims
    tail = data.shape[batch + depth:]  # the data dims each tuple leaves whole
    out_shape = (*data.shape[:batch], *mid, *tail)
    rank = len(out_shape)
    idx_ty = ir.IndexType.get()

    def c(v):
        return arith.ConstantOp(idx_ty, v).result

    def body(_out):
        at = [linalg.IndexOp(d).result for d in range(rank)]
        lead = at[: batch + len(mid)]
        coords = list(at[:batch])
        for j in range(depth):
            v = tensor.ExtractOp(idx.value, [*lead, c(j)]).result
            n = data.shape[batch + j]
            neg = arith.CmpIOp(arith.CmpIPredicate.slt, v, b.scalar(0, np.int64)).result
            v = arith.SelectOp(neg, arith.AddIOp(v, b.scalar(n, np.int64)).result, v).result
            v = arith.MinSIOp(arith.MaxSIOp(v, b.scalar(0, np.int64)).result, b.scalar(n - 1, np.int64)).result
            coords.append(arith.IndexCastOp(idx_ty, v).result)
        coords += at[batch + len(mid):]
        return tensor.ExtractOp(data.value, coords).result

    (res,) = b.generic([], [b.empty(out_shape, data.dtype)], [b.identity_map(rank)], [b.PARALLEL] * rank, body)
    return [b.T(res, data.dtype)]


# ---------------------------------------------------------------- EyeLike


@importer("EyeLike")
def import_eye_like(ctx, node):
    a = attrs(node)
    shape = static_shape(ctx, node.input[0])
    if len(shape) != 2:
        raise UnsupportedOp(node, f"input of rank {len(shape)}", "rank 2")
    known = ctx.const(node.input[0])
    like = known.dtype if known is not None else ctx.get(node.input[0]).dtype
    dt = like if "dtype" not in a else ONNX_DTYPES.get(int(a["dtype"]))
    if dt is None:
        name = onnx.TensorProto.DataType.Name(int(a["dtype"]))
        raise UnsupportedOp(node, f"dtype {name}", "float16/32/64, (u)int8/16/32/64, bool")
    k = int(a.get("k", 0))
    i64 = ir.IntegerType.get_signless(64)
    one, zero = b.scalar(1, dt), b.scalar(0, dt)

    def body(_out):
        i = arith.IndexCastOp(i64, linalg.IndexOp(0).result).result
        j = arith.IndexCastOp(i64, linalg.IndexOp(1).result).result
        on = arith.CmpIOp(arith.CmpIPredicate.eq, arith.SubIOp(j, i).result, b.scalar(k, np.int64)).result
        return arith.SelectOp(on, one, zero).result

    (res,) = b.generic([], [b.empty(shape, dt)], [b.identity_map(2)], [b.PARALLEL] * 2, body)
    return [b.T(res, np.dtype(dt))]


# ---------------------------------------------------------------- ReverseSequence


@importer("ReverseSequence")
def import_reverse_sequence(ctx, node):
    """y[.., t, .., n, ..] = x[.., len[n] - 1 - t, .., n, ..] for t < len[n], else x itself
    (t along time_axis, n along batch_axis); lengths are clamped into [0, T]."""
    a = attrs(node)
    x, lens = ctx.get(node.input[0]), ctx.get(node.input[1])
    t_axis, n_axis = int(a.get("time_axis", 0)), int(a.get("batch_axis", 1))
    if x.rank < 2 or {t_axis, n_axis} != {0, 1}:
        raise UnsupportedOp(node, f"time_axis {t_axis}, batch_axis {n_axis} on rank {x.rank}",
                            "time and batch axes 0 and 1 of a tensor of rank >= 2")
    if lens.dtype != np.int64 or lens.shape != (x.shape[n_axis],):
        raise UnsupportedOp(node, f"sequence_lens is {lens.dtype}{list(lens.shape)}", f"int64[{x.shape[n_axis]}]")
    steps = x.shape[t_axis]
    idx_ty = ir.IndexType.get()

    def body(_out):
        at = [linalg.IndexOp(d).result for d in range(x.rank)]
        n = tensor.ExtractOp(lens.value, [at[n_axis]]).result
        n = arith.MinSIOp(arith.MaxSIOp(n, b.scalar(0, np.int64)).result, b.scalar(steps, np.int64)).result
        t = arith.IndexCastOp(ir.IntegerType.get_signless(64), at[t_axis]).result
        inside = arith.CmpIOp(arith.CmpIPredicate.slt, t, n).result
        mirrored = arith.SubIOp(arith.SubIOp(n, b.scalar(1, np.int64)).result, t).result
        src = arith.IndexCastOp(idx_ty, arith.SelectOp(inside, mirrored, t).result).result
        coords = list(at)
        coords[t_axis] = src
        return tensor.ExtractOp(x.value, coords).result

    (res,) = b.generic([], [b.empty(x.shape, x.dtype)], [b.identity_map(x.rank)], [b.PARALLEL] * x.rank, body)
    return [b.T(res, x.dtype)]
