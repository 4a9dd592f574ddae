"""Data-movement ops: Concat, Split, Slice, Squeeze, Unsqueeze, Expand, Tile,
Pad, ConstantOfShape, Range.

Slices are tensor.extract_slice: contiguous ones stay views after
bufferization, strided ones are copied once by linalg.copy (see `slice_of`).
Concat copies each input into its slice of one tensor; unit-dim changes are
collapse/expand_shape views. Expand, Tile, Pad and reversed slices are one
linalg.generic each (Pad's constant mode a fill plus a copy).

Every shape-like input (axes, starts, pads, repeats, shape) must be a
compile-time constant, because qc's shapes are static.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from onnx import numpy_helper

from qc.errors import UnsupportedOp
from qc.mlir import arith, bufferization, ir, linalg, tensor

from . import builder as b
from .attrs import attrs
from .registry import importer
from .shape_fns import (
    DATA_TYPE_NAMES,
    DATA_TYPES,
    check_data_type,
    const_input,
    const_ints,
    has_input,
    normalize_axes,
    normalize_axis,
    static_shape,
)

# --- slicing helpers (gather.py uses them too) ---------------------------------


def extract_slice(x: b.T, offsets: Sequence[int], sizes: Sequence[int],
                  strides: Sequence[int] | None = None) -> b.T:
    """x[offsets : offsets + sizes*strides : strides] per dim; positive strides."""
    strides = list(strides) if strides is not None else [1] * x.rank
    if list(offsets) == [0] * x.rank and tuple(sizes) == x.shape and strides == [1] * x.rank:
        return x
    ty = b.tensor_type(sizes, x.dtype)
    op = tensor.ExtractSliceOp(ty, x.value, [], [], [], list(offsets), list(sizes), strides)
    return b.T(op.result, x.dtype)


def copy(x: b.T, into: ir.Value | None = None) -> b.T:
    """x copied by linalg.copy (into a fresh tensor unless `into` is given)."""
    init = b.empty(x.shape, x.dtype) if into is None else into
    res = linalg.copy(x.value, outs=[init])
    return b.T(res if isinstance(res, ir.Value) else res.results[0], x.dtype)


def is_contiguous(shape: Sequence[int], sizes: Sequence[int], strides: Sequence[int]) -> bool:
    """Whether a slice is one row-major run: past its first dim longer than 1,
    every dim is whole."""
    long_dims = [d for d, s in enumerate(sizes) if s != 1]
    if not long_dims:
        return True
    first = long_dims[0]
    return strides[first] == 1 and all(sizes[d] == shape[d] for d in range(first + 1, len(shape)))


def slice_of(x: b.T, offsets: Sequence[int], sizes: Sequence[int],
             strides: Sequence[int] | None = None) -> b.T:
    """A slice that is safe to use anywhere: a view when it is contiguous,
    otherwise a view copied to a fresh tensor.

    A non-contiguous view that reaches a function result (or a reshape that
    cannot stay a view) is copied by bufferization with memref.copy, which
    lowers to a call into MLIR's C runner library that a qc model does not
    link; an explicit linalg.copy becomes loops instead.
    """
    strides = list(strides) if strides is not None else [1] * x.rank
    y = extract_slice(x, offsets, sizes, strides)
    if y is x or is_contiguous(x.shape, sizes, strides):
        return y
    return copy(y)


def insert_slice(src: b.T, dest: ir.Value, offsets: Sequence[int]) -> ir.Value:
    """dest with src written at `offsets`: a linalg.copy into that slice of
    dest, then tensor.insert_slice, which bufferization makes in place (a
    bare insert_slice of a function argument would need memref.copy, see
    `slice_of`)."""
    window = extract_slice(b.T(dest, src.dtype), offsets, src.shape)
    written = copy(src, into=window.value)
    op = tensor.InsertSliceOp(written.value, dest, [], [], [], list(offsets), list(src.shape), [1] * src.rank)
    return op.result


def reverse(x: b.T, dims: Sequence[int]) -> b.T:
    """x with `dims` reversed: out[.., i, ..] = x[.., n-1-i, ..], one generic."""
    exprs = []
    for d in range(x.rank):
        e = ir.AffineDimExpr.get(d)
        exprs.append(e * -1 + (x.shape[d] - 1) if d in dims else e)
    in_map = ir.AffineMap.get(x.rank, 0, exprs)
    (res,) = b.generic([x.value], [b.empty(x.shape, x.dtype)], [in_map, b.identity_map(x.rank)],
                       [b.PARALLEL] * x.rank, lambda v, _out: v)
    return b.T(res, x.dtype)


def insert_unit_dims(x: b.T, out_shape: Sequence[int], new_dims: Sequence[int]) -> b.T:
    """x reshaped to `out_shape`, which is x.shape with 1s at `new_dims` (a view)."""
    out_shape = list(out_shape)
    if len(out_shape) == x.rank:
        return x
    kept = [d for d in range(len(out_shape)) if d not in new_dims]
    if not kept:  # a scalar becomes [1, 1, ...]: expand_shape with no groups
        return b.expand(x, [], out_shape)
    # Each source dim takes the new unit dims after it; leading ones join the first.
    groups = [[d] for d in kept]
    for d in sorted(new_dims):
        owner = max((g for g in groups if g[0] < d), key=lambda g: g[0], default=groups[0])
        owner.append(d)
    return b.expand(x, [sorted(g) for g in groups], out_shape)


def _check_nonempty(node, shape: Sequence[int], what: str) -> None:
    if any(d <= 0 for d in shape):
        raise UnsupportedOp(node, f"the {what} would have an empty or negative dim {list(shape)}",
                            "non-empty tensors")


# --- Concat / Split --------------------------------------------------------------


@importer("Concat")
def import_concat(ctx, node):
    """Each input is copied at its running offset along `axis` into one tensor."""
    a = attrs(node)
    if "axis" not in a and ctx.opset >= 4:
        raise UnsupportedOp(node, "the axis attribute is missing")
    shapes = [static_shape(ctx, n) for n in node.input]
    rank = len(shapes[0])
    if rank == 0 or any(len(s) != rank for s in shapes):
        raise UnsupportedOp(node, f"inputs have ranks {[len(s) for s in shapes]}", "equal ranks >= 1")
    axis = normalize_axis(node, a.get("axis", 1), rank)
    for s in shapes:
        if s[:axis] + s[axis + 1:] != shapes[0][:axis] + shapes[0][axis + 1:]:
            raise UnsupportedOp(node, f"input shapes {[list(s) for s in shapes]} differ "
                                      f"outside axis {axis}")
    # Inputs of size 0 along the axis (empty shape vectors, say) add nothing.
    names = [n for n, s in zip(node.input, shapes) if s[axis] > 0]
    parts = [ctx.get(n) for n in names]
    if not parts:
        raise UnsupportedOp(node, "every input is empty", "non-empty tensors")
    if len({p.dtype for p in parts}) != 1:
        raise UnsupportedOp(node, f"inputs have different element types {sorted({str(p.dtype) for p in parts})}")
    check_data_type(node, parts[0])
    if len(parts) == 1:
        return parts
    out_shape = list(parts[0].shape)
    out_shape[axis] = sum(p.shape[axis] for p in parts)
    out = b.empty(out_shape, parts[0].dtype)
    offset = 0
    for name, p in zip(names, parts):
        offsets = [0] * rank
        offsets[axis] = offset
        out = insert_slice(_unfoldable(p) if ctx.const(name) is not None else p, out, offsets)
        offset += p.shape[axis]
    return [b.T(out, parts[0].dtype)]


def _unfoldable(constant: b.T) -> b.T:
    """A constant copied to a new tensor in a way no folder undoes.

    linalg-fuse-elementwise-ops folds a linalg.copy of a constant into the
    constant itself, leaving a bare insert_slice of it, which needs
    memref.copy (see `slice_of`). bufferization.alloc_tensor copy(...) stays:
    it bufferizes to an identity-layout copy of the global.
    """
    op = bufferization.AllocTensorOp(constant.value.type, [], copy=constant.value)
    return b.T(op.result, constant.dtype)


def _split_sizes(ctx, node, dim: int) -> list[int]:
    """The chunk sizes of Split, from whichever form the opset uses."""
    a = attrs(node)
    n_out = len(node.output)
    if ctx.opset >= 13:
        split = const_ints(ctx, node, 1, "split")
    else:
        # Opset 1 also took `split` as an optional second input.
        split = a.get("split")
        if split is None and has_input(node, 1):
            split = const_ints(ctx, node, 1, "split")
    if split is not None:
        split = [int(s) for s in split]
        if len(split) != n_out or sum(split) != dim or min(split) < 0:
            raise UnsupportedOp(node, f"split {split} does not cut a dim of {dim} into {n_out} outputs")
        return split
    if ctx.opset >= 18 and "num_outputs" in a:
        n = int(a["num_outputs"])
        if n != n_out:
            raise UnsupportedOp(node, f"num_outputs is {n}, but the node has {n_out} outputs")
        # Chunks of ceil(dim / n); the last one takes what is left.
        chunk = -(-dim // n)
        return [chunk] * (n - 1) + [dim - chunk * (n - 1)]
    if dim % n_out:
        raise UnsupportedOp(node, f"a dim of {dim} does not split into {n_out} equal parts")
    return [dim // n_out] * n_out


@importer("Split")
def import_split(ctx, node):
    x = ctx.get(node.input[0])
    check_data_type(node, x)
    if x.rank == 0:
        raise UnsupportedOp(node, "cannot split a scalar")
    axis = normalize_axis(node, attrs(node).get("axis", 0), x.rank)
    sizes = _split_sizes(ctx, node, x.shape[axis])
    outs, offset = [], 0
    for s in sizes:
        shape = list(x.shape)
        shape[axis] = s
        _check_nonempty(node, shape, "output")
        offsets = [0] * x.rank
        offsets[axis] = offset
        outs.append(slice_of(x, offsets, shape))
        offset += s
    return outs


# --- Slice ---------------------------------------------------------------------------


@importer("Slice")
def import_slice(ctx, node):
    """x[start:end:step] on the given axes, with numpy's clamping rules.

    A positive step is a strided extract_slice. A negative step takes the same
    elements in increasing order (from the last one reached, stride -step),
    then reverses that dim.
    """
    x = ctx.get(node.input[0])
    check_data_type(node, x)
    if ctx.opset < 10:
        a = attrs(node)
        starts, ends, axes, steps = a.get("starts"), a.get("ends"), a.get("axes"), None
        if starts is None or ends is None:
            raise UnsupportedOp(node, "the starts and ends attributes are required")
    else:
        starts = const_ints(ctx, node, 1, "starts")
        ends = const_ints(ctx, node, 2, "ends")
        axes = const_ints(ctx, node, 3, "axes")
        steps = const_ints(ctx, node, 4, "steps")
    starts, ends = list(starts), list(ends)
    axes = list(range(len(starts))) if axes is None else list(axes)
    steps = [1] * len(starts) if steps is None else list(steps)
    if not len(starts) == len(ends) == len(axes) == len(steps):
        raise UnsupportedOp(node, f"starts, ends, axes, steps have lengths "
                                  f"{len(starts)}, {len(ends)}, {len(axes)}, {len(steps)}")
    axes = normalize_axes(node, axes, x.rank)
    offsets, sizes, strides = [0] * x.rank, list(x.shape), [1] * x.rank
    reversed_dims = []
    for ax, start, end, step in zip(axes, starts, ends, steps):
        if step == 0:
            raise UnsupportedOp(node, "a step of 0 is invalid")
        # Python's slice.indices clamps exactly as ONNX specifies (INT64_MAX included).
        first, stop, step = slice(start, end, step).indices(x.shape[ax])
        n = len(range(first, stop, step))
        if n == 0:
            raise UnsupportedOp(node, f"axis {ax}: [{start}:{end}:{step}] selects nothing",
                                "non-empty results")
        sizes[ax], strides[ax] = n, abs(step)
        offsets[ax] = first if step > 0 else first + (n - 1) * step
        if step < 0 and n > 1:
            reversed_dims.append(ax)
    if reversed_dims:  # the reversal copies, so the view needs no copy of its own
        return [reverse(extract_slice(x, offsets, sizes, strides), reversed_dims)]
    return [slice_of(x, offsets, sizes, strides)]


# --- Squeeze / Unsqueeze ------------------------------------------------------------------


def _axes(ctx, node) -> list[int] | None:
    """`axes`: an attribute before opset 13, an input from 13 on."""
    if ctx.opset >= 13:
        return const_ints(ctx, node, 1, "axes")
    axes = attrs(node).get("axes")
    return None if axes is None else [int(v) for v in axes]


@importer("Squeeze")
def import_squeeze(ctx, node):
    x = ctx.get(node.input[0])
    check_data_type(node, x)
    axes = _axes(ctx, node)
    if axes is None:  # every size-1 dim
        drop = [s == 1 for s in x.shape]
    else:
        dims = normalize_axes(node, axes, x.rank)
        for d in dims:
            if x.shape[d] != 1:
                raise UnsupportedOp(node, f"axis {d} has size {x.shape[d]}, only size-1 dims can be squeezed")
        drop = [d in dims for d in range(x.rank)]
    return [b.drop_unit_dims(x, drop)]


@importer("Unsqueeze")
def import_unsqueeze(ctx, node):
    x = ctx.get(node.input[0])
    check_data_type(node, x)
    axes = _axes(ctx, node)
    if axes is None:
        raise UnsupportedOp(node, "the axes are missing")
    out_rank = x.rank + len(axes)
    dims = normalize_axes(node, axes, out_rank)
    src = iter(x.shape)
    out_shape = [1 if d in dims else next(src) for d in range(out_rank)]
    return [insert_unit_dims(x, out_shape, dims)]


# --- Expand / Tile ------------------------------------------------------------------------------


@importer("Expand")
def import_expand(ctx, node):
    """Broadcast of x and `shape` under numpy rules (either side may be 1)."""
    x = ctx.get(node.input[0])
    check_data_type(node, x)
    shape = const_ints(ctx, node, 1, "shape")
    try:
        out_shape = tuple(int(d) for d in np.broadcast_shapes(x.shape, tuple(shape)))
    except ValueError:
        raise UnsupportedOp(node, f"shape {shape} does not broadcast with the input {list(x.shape)}") from None
    _check_nonempty(node, out_shape, "output")
    if out_shape == x.shape:
        return [x]
    return [b.broadcast_to(x, out_shape)]


@importer("Tile")
def import_tile(ctx, node):
    """out[i] = x[i mod d] per dim.

    Each repeated dim d (r times) becomes a pair of loops (r, d) reading x at
    the inner one: a pure broadcast generic, whose result collapses to r*d.
    """
    if ctx.opset < 6:
        raise UnsupportedOp(node, "the opset-1 form (tiles, axis inputs) is not supported", "opset >= 6")
    x = ctx.get(node.input[0])
    check_data_type(node, x)
    repeats = const_ints(ctx, node, 1, "repeats")
    if len(repeats) != x.rank or min(repeats, default=1) < 1:
        raise UnsupportedOp(node, f"repeats {repeats} for a rank-{x.rank} input", "one repeat >= 1 per dim")
    if all(r == 1 for r in repeats):
        return [x]
    loop_shape, src_dims, groups = [], [], []
    for d, r in zip(x.shape, repeats):
        group = []
        if r > 1:
            group.append(len(loop_shape))
            loop_shape.append(r)
        group.append(len(loop_shape))
        src_dims.append(len(loop_shape))
        loop_shape.append(d)
        groups.append(group)
    n = len(loop_shape)
    (res,) = b.generic([x.value], [b.empty(loop_shape, x.dtype)], [b.dims_map(n, src_dims), b.identity_map(n)],
                       [b.PARALLEL] * n, lambda v, _out: v)
    out_shape = [d * r for d, r in zip(x.shape, repeats)]
    return [b.collapse(b.T(res, x.dtype), groups, out_shape)]


# --- Pad ------------------------------------------------------------------------------------------

PAD_MODES = ("constant", "reflect", "edge", "wrap")


def _pad_spec(ctx, node, rank: int) -> tuple[str, list[int], list[int], object]:
    """(mode, pads before, pads after, constant value or None) for every dim."""
    a = attrs(node)
    mode = a.get("mode", "constant")
    if mode not in PAD_MODES or (mode == "wrap" and ctx.opset < 19):
        raise UnsupportedOp(node, f"mode '{mode}' is not supported",
                            "constant, reflect, edge, and wrap from opset 19")
    if ctx.opset < 11:
        pads = a.get("pads", a.get("paddings"))
        if pads is None:
            raise UnsupportedOp(node, "the pads attribute is missing")
        pads = [int(p) for p in pads]
        value, axes = float(a.get("value", 0.0)), None
    else:
        pads = const_ints(ctx, node, 1, "pads")
        value = None  # read by the caller: it may be a runtime scalar
        axes = const_ints(ctx, node, 3, "axes") if ctx.opset >= 18 else None
    dims = list(range(rank)) if axes is None else normalize_axes(node, axes, rank)
    if len(pads) != 2 * len(dims):
        raise UnsupportedOp(node, f"{len(pads)} pads for {len(dims)} axes", "two pads (begin, end) per axis")
    before, after = [0] * rank, [0] * rank
    for i, d in enumerate(dims):
        before[d], after[d] = pads[i], pads[i + len(dims)]
    return mode, before, after, value


@importer("Pad")
def import_pad(ctx, node):
    """Negative pads crop (an extract_slice); the positive ones then pad."""
    x = ctx.get(node.input[0])
    check_data_type(node, x)
    mode, before, after, value = _pad_spec(ctx, node, x.rank)
    crop_lo = [max(-p, 0) for p in before]
    crop_hi = [max(-p, 0) for p in after]
    kept = [d - lo - hi for d, lo, hi in zip(x.shape, crop_lo, crop_hi)]
    _check_nonempty(node, kept, "cropped input")
    lo, hi = [max(p, 0) for p in before], [max(p, 0) for p in after]
    if not any(lo) and not any(hi):
        return [slice_of(x, crop_lo, kept)]
    x = extract_slice(x, crop_lo, kept)  # padding copies it anyway
    if mode == "constant":
        return [_pad_constant(x, lo, hi, _pad_value(ctx, node, x, value))]
    for d in range(x.rank):
        if mode == "reflect" and max(lo[d], hi[d]) >= x.shape[d]:
            raise UnsupportedOp(node, f"reflect pads {lo[d]}, {hi[d]} on a dim of {x.shape[d]}",
                                "pads smaller than the dim")
    return [_pad_indexed(x, lo, hi, mode)]


def _pad_value(ctx, node, x: b.T, attr_value) -> ir.Value:
    """The constant pad value as a scalar of x's type (0 when omitted)."""
    if ctx.opset < 11:
        return b.scalar(np.array(attr_value).astype(x.dtype), x.dtype)
    if not has_input(node, 2):
        return b.scalar(0, x.dtype)
    known = ctx.const(node.input[2])
    if known is not None:
        if known.size != 1:
            raise UnsupportedOp(node, f"constant_value has {known.size} elements, expected one")
        return b.scalar(known.ravel()[0], x.dtype)
    v = ctx.get(node.input[2])
    if v.dtype != x.dtype or int(np.prod(v.shape)) != 1:
        raise UnsupportedOp(node, f"constant_value is {v.dtype}{list(v.shape)}", f"one {x.dtype} element")
    zeros = [arith.ConstantOp(ir.IndexType.get(), 0).result for _ in range(v.rank)]
    return tensor.ExtractOp(v.value, zeros).result


def _pad_constant(x: b.T, lo: list[int], hi: list[int], value: ir.Value) -> b.T:
    """A filled tensor with x copied in at offset `lo`. (tensor.pad would
    bufferize to a strided memref.copy, see `slice_of`.)"""
    out_shape = [d + p + q for d, p, q in zip(x.shape, lo, hi)]
    filled = linalg.fill(value, outs=[b.empty(out_shape, x.dtype)])
    return b.T(insert_slice(x, filled, lo), x.dtype)


def _pad_indexed(x: b.T, lo: list[int], hi: list[int], mode: str) -> b.T:
    """out[i] = x[src(i)] per dim of size d, with j = i - lo:
    edge src = clamp(j, 0, d-1); reflect src = min(|j|, 2(d-1) - |j|);
    wrap src = j mod d. Read with tensor.extract inside one generic; a bound
    is only applied on a side that is padded."""
    out_shape = [d + p + q for d, p, q in zip(x.shape, lo, hi)]
    rank = x.rank
    idx = ir.IndexType.get()

    def c(v):
        return arith.ConstantOp(idx, v).result

    def source(dim: int) -> ir.Value:
        j = linalg.IndexOp(dim).result
        d, p, q = x.shape[dim], lo[dim], hi[dim]
        if p == 0 and q == 0:
            return j
        if mode == "wrap":
            # Shift by a multiple of d first so the remainder's operand is >= 0.
            shift = d * -(-p // d) - p
            return arith.RemUIOp(arith.AddIOp(j, c(shift)).result, c(d)).result
        if p:
            j = arith.SubIOp(j, c(p)).result
            if mode == "edge":
                j = arith.MaxSIOp(j, c(0)).result
            else:
                j = arith.MaxSIOp(j, arith.SubIOp(c(0), j).result).result  # |j|
        if q:
            if mode == "edge":
                j = arith.MinSIOp(j, c(d - 1)).result
            else:
                j = arith.MinSIOp(j, arith.SubIOp(c(2 * (d - 1)), j).result).result
        return j

    def body(_out):
        coords = [source(dim) for dim in range(rank)]
        return tensor.ExtractOp(x.value, coords).result

    (res,) = b.generic([], [b.empty(out_shape, x.dtype)], [b.identity_map(rank)], [b.PARALLEL] * rank, body)
    return b.T(res, x.dtype)


# --- ConstantOfShape / Range -------------------------------------------------------------------------


@importer("ConstantOfShape")
def import_constant_of_shape(ctx, node):
    """Reached only when the output is too large to fold: a linalg.fill."""
    shape = const_ints(ctx, node, 0, "shape")
    value = attrs(node).get("value")
    fill = np.zeros(1, np.float32) if value is None else numpy_helper.to_array(value)
    if fill.size != 1:
        raise UnsupportedOp(node, f"value has {fill.size} elements, expected one")
    if fill.dtype not in DATA_TYPES:
        raise UnsupportedOp(node, f"value type {fill.dtype} is not supported", DATA_TYPE_NAMES)
    _check_nonempty(node, shape, "output")
    return [b.T(b.filled(shape, fill.dtype, fill.ravel()[0]), fill.dtype)]


RANGE_TYPES = tuple(np.dtype(t) for t in (np.float32, np.float64, np.int32, np.int64))


@importer("Range")
def import_range(ctx, node):
    """out[i] = start + i * delta for i < max(ceil((limit - start) / delta), 0).

    Constant inputs fold at compile time unless the result is too large to
    store; then it is one generic over linalg.index. Runtime inputs would
    make the output size dynamic.
    """
    start, limit, delta = (const_input(ctx, node, i, what) for i, what in
                           enumerate(("start", "limit", "delta")))
    dtype = start.dtype
    if dtype not in RANGE_TYPES:
        raise UnsupportedOp(node, f"element type {dtype} is not supported", "float32, float64, int32, int64")
    if limit.dtype != dtype or delta.dtype != dtype:
        raise UnsupportedOp(node, f"inputs have different element types ({dtype}, {limit.dtype}, {delta.dtype})")
    s, lim, dl = (v.ravel()[0] for v in (start, limit, delta))
    if dl == 0:
        raise UnsupportedOp(node, "delta is 0")
    # The count in the inputs' own type, as onnxruntime and shape inference compute it.
    n = max(int(np.ceil((lim - s) / dl)), 0)
    _check_nonempty(node, [n], "output")

    def body(_out):
        i = linalg.IndexOp(0).result
        if b.is_float(dtype):
            fi = arith.SIToFPOp(b.mlir_type(dtype), arith.IndexCastOp(ir.IntegerType.get_signless(64), i).result)
            return arith.AddFOp(b.scalar(s, dtype), arith.MulFOp(fi.result, b.scalar(dl, dtype)).result).result
        i = arith.IndexCastOp(b.mlir_type(dtype), i).result
        return arith.AddIOp(b.scalar(s, dtype), arith.MulIOp(i, b.scalar(dl, dtype)).result).result

    (res,) = b.generic([], [b.empty([n], dtype)], [b.identity_map(1)], [b.PARALLEL], body)
    return [b.T(res, dtype)]
