"""Resize (opsets 10-19) and Upsample (opsets 7 and 9): nearest and (multi)linear.

Each output coordinate x maps to an input coordinate
  half_pixel            (x + 0.5) / scale - 0.5
  half_pixel_symmetric  the same, shifted to keep the image centred when
                        out != in * scale
  pytorch_half_pixel    as half_pixel, but 0 when out == 1
  align_corners         x * (in - 1) / (out - 1)
  asymmetric            x / scale
  tf_half_pixel_for_nn  (x + 0.5) / scale
(opset 10 and Upsample: asymmetric), then to input indices: nearest rounds it
(nearest_mode; opset 10 and Upsample use onnxruntime's legacy rule: truncate,
or ceil when downscaling), linear takes the two neighbours lo = floor(c),
hi = lo + 1 (clamped) with weights hi - c and c - lo.

Shapes are static, so all of this is computed at compile time, in float32
step by step as onnxruntime does, into per-axis index and weight tables. The
IR is one linalg.generic over the output that reads the tables and gathers
from the input with tensor.extract; nearest with an integer upscale factor
(index = x floordiv k on every axis) needs no tables at all: the input's
indexing map does the gather, which vectorizes.
"""

from __future__ import annotations

from itertools import product

import numpy as np

from qc.errors import UnsupportedOp
from qc.mlir import arith, ir, linalg, tensor

from . import builder as b
from .attrs import attrs
from .registry import importer

COORD_MODES = ("half_pixel", "half_pixel_symmetric", "pytorch_half_pixel", "align_corners",
               "asymmetric", "tf_half_pixel_for_nn")
NEAREST_MODES = ("round_prefer_floor", "round_prefer_ceil", "floor", "ceil")
F32 = np.float32


# ---------------------------------------------------------------- coordinate tables


def coords(mode: str, out_len: int, in_len: int, scale: np.float32) -> np.ndarray:
    """The input coordinate of each output index along one axis, float32."""
    x = np.arange(out_len, dtype=F32)
    s, half = F32(scale), F32(0.5)
    if mode == "half_pixel":
        return (x + half) / s - half
    if mode == "half_pixel_symmetric":
        adjustment = F32(out_len) / (s * F32(in_len))
        offset = F32(in_len) / F32(2) * (F32(1) - adjustment)
        return offset + (x + half) / s - half
    if mode == "pytorch_half_pixel":
        return (x + half) / s - half if out_len > 1 else np.zeros(out_len, F32)
    if mode == "align_corners":
        if out_len == 1:
            return np.zeros(1, F32)
        return x * F32(in_len - 1) / F32(out_len - 1)
    if mode == "asymmetric":
        return x / s
    assert mode == "tf_half_pixel_for_nn", mode
    return (x + half) / s


def _round_half_away(c: np.ndarray) -> np.ndarray:
    """C's round(): halves away from zero (numpy's round goes to even)."""
    c = c.astype(np.float64)
    return np.sign(c) * np.floor(np.abs(c) + 0.5)


def nearest_indices(c: np.ndarray, nearest_mode: str, in_len: int, downscale: bool) -> np.ndarray:
    if nearest_mode == "round_prefer_floor":
        tie = c == np.trunc(c) + F32(0.5)
        idx = np.where(tie, np.floor(c), _round_half_away(c))
    elif nearest_mode == "round_prefer_ceil":
        idx = _round_half_away(c)
    elif nearest_mode == "floor":
        idx = np.floor(c)
    elif nearest_mode == "ceil":
        idx = np.ceil(c)
    else:  # "simple": onnxruntime's rule before nearest_mode existed
        assert nearest_mode == "simple", nearest_mode
        idx = np.ceil(c) if downscale else np.trunc(c)
    return np.clip(idx.astype(np.int64), 0, in_len - 1)


def linear_tables(c: np.ndarray, in_len: int):
    """lo, hi indices and their weights (hi - c, c - lo) along one axis."""
    c = np.clip(c, F32(0), F32(in_len - 1))
    lo = np.minimum(c.astype(np.int64), in_len - 1)
    hi = np.minimum(lo + 1, in_len - 1)
    w_lo = np.abs(c - hi.astype(F32)).astype(F32)
    w_hi = np.abs(c - lo.astype(F32)).astype(F32)
    same = lo == hi
    w_lo[same] = F32(0.5)
    w_hi[same] = F32(0.5)
    return lo, hi, w_lo, w_hi


# ---------------------------------------------------------------- IR


def _index_value(t: ir.Value) -> ir.Value:
    return arith.IndexCastOp(ir.IndexType.get(), t).result


def _tables_generic(x: b.T, out_shape, tables: dict[int, list[np.ndarray]], body) -> b.T:
    """A generic over the output; `tables[axis]` are 1-D constants read at
    the output index of `axis`; body(idx_of, table_scalars) builds the value,
    where idx_of(axis) is that axis' output index."""
    rank = len(out_shape)
    ins, maps, owners = [], [], []
    for axis, ts in tables.items():
        for t in ts:
            ins.append(b.constant(t).value)
            maps.append(b.dims_map(rank, [axis]))
            owners.append(axis)

    def payload(*args):
        scalars: dict[int, list[ir.Value]] = {}
        for axis, v in zip(owners, args[: len(ins)]):
            scalars.setdefault(axis, []).append(v)
        return body(lambda d: linalg.IndexOp(d).result, scalars)

    (res,) = b.generic(ins, [b.empty(out_shape, x.dtype)], [*maps, b.identity_map(rank)],
                       [b.PARALLEL] * rank, payload)
    return b.T(res, x.dtype)


def _upscale_factor(idx: np.ndarray) -> int | None:
    """k where idx == arange(len) // k (an integer nearest upscale), else None."""
    n = len(idx)
    k = int(np.count_nonzero(idx == 0))
    if k >= 1 and np.array_equal(idx, np.arange(n) // k):
        return k
    return None


def emit_nearest(x: b.T, out_shape, index_tables: list[np.ndarray]) -> b.T:
    rank = x.rank
    factors = [_upscale_factor(t) for t in index_tables]
    if all(f is not None for f in factors):
        # Every axis is idx = o floordiv k: a plain (non-gathering) generic.
        dims = [ir.AffineDimExpr.get(d) for d in range(rank)]
        exprs = [e if f == 1 else ir.AffineFloorDivExpr.get(e, ir.AffineConstantExpr.get(f))
                 for e, f in zip(dims, factors)]
        in_map = ir.AffineMap.get(rank, 0, exprs)
        (res,) = b.generic([x.value], [b.empty(out_shape, x.dtype)], [in_map, b.identity_map(rank)],
                           [b.PARALLEL] * rank, lambda v, _o: v)
        return b.T(res, x.dtype)
    gathered = {d: [t.astype(np.int32)] for d, t in enumerate(index_tables) if factors[d] != 1}

    def body(index_of, scalars):
        idx = [_index_value(scalars[d][0]) if d in scalars else index_of(d) for d in range(rank)]
        return tensor.ExtractOp(x.value, idx).result

    return _tables_generic(x, out_shape, gathered, body)


def emit_linear(x: b.T, out_shape, lin: dict[int, tuple]) -> b.T:
    """Multilinear interpolation over the axes in `lin` (axis -> lo, hi, w_lo, w_hi)."""
    rank = x.rank
    tables = {d: [lo.astype(np.int32), hi.astype(np.int32), wl, wh] for d, (lo, hi, wl, wh) in lin.items()}
    axes = sorted(lin)

    def body(index_of, scalars):
        base = {d: index_of(d) for d in range(rank) if d not in lin}
        ends = {d: (_index_value(scalars[d][0]), _index_value(scalars[d][1])) for d in axes}
        total = None
        for corner in product((0, 1), repeat=len(axes)):
            w = None
            idx = dict(base)
            for d, c in zip(axes, corner):
                idx[d] = ends[d][c]
                wd = scalars[d][2 + c]
                w = wd if w is None else arith.MulFOp(w, wd).result
            v = tensor.ExtractOp(x.value, [idx[d] for d in range(rank)]).result
            term = arith.MulFOp(w, v).result
            total = term if total is None else arith.AddFOp(total, term).result
        return total

    return _tables_generic(x, out_shape, tables, body)


# ---------------------------------------------------------------- the importers


def _const_floats(ctx, node, i: int, what: str) -> np.ndarray | None:
    if len(node.input) <= i or not node.input[i]:
        return None
    v = ctx.const(node.input[i])
    if v is None:
        raise UnsupportedOp(node, f"{what} is computed at run time",
                            f"constant {what} (the output shape must be static)")
    return np.asarray(v).ravel()


def resize(node, x: b.T, scales, sizes, mode: str, coord_mode: str, nearest_mode: str,
           antialias: bool = False) -> b.T:
    """Resize with per-axis float32 `scales` or integer `sizes`, or both
    (keep_aspect_ratio_policy: the sizes, and the one scale that made them).

    The output size is floor(in * scale); the scale of a `sizes` axis is
    out / in. An axis whose scale is exactly 1 is copied (onnxruntime skips
    its transform, which matters for tf_half_pixel_for_nn).
    """
    in_shape = x.shape
    given = sizes if sizes is not None else scales
    if len(given) != x.rank:
        raise UnsupportedOp(node, f"{len(given)} scales or sizes for a rank-{x.rank} input")
    if sizes is not None:
        out_shape = tuple(int(s) for s in sizes)
        if scales is None:
            scales = np.array([F32(o) / F32(i) for o, i in zip(out_shape, in_shape)], F32)
    else:
        scales = np.asarray(scales, F32)
        if not np.all(np.isfinite(scales) & (scales > 0)):
            raise UnsupportedOp(node, f"scales {scales.tolist()} must be finite and > 0")
        out_shape = tuple(int(F32(s) * F32(i)) for s, i in zip(scales, in_shape))
    if any(o < 1 for o in out_shape):
        raise UnsupportedOp(node, f"the output shape {list(out_shape)} is empty")
    copied = [s == F32(1) and o == i for s, o, i in zip(scales, out_shape, in_shape)]
    if mode == "nearest":
        tables = []
        for o, i, s, keep in zip(out_shape, in_shape, scales, copied):
            c = coords(coord_mode, o, i, s)
            tables.append(np.arange(o) if keep else nearest_indices(c, nearest_mode, i, downscale=bool(s < 1)))
        return emit_nearest(x, out_shape, tables)
    if not b.is_float(x.dtype):
        raise UnsupportedOp(node, f"linear mode on element type {x.dtype}", "float32")
    if antialias and any(o < i for o, i in zip(out_shape, in_shape)):
        raise UnsupportedOp(node, "antialias=1 when downscaling", "antialias=0, or upscaling")
    lin = {}
    for d, (o, i, s) in enumerate(zip(out_shape, in_shape, scales)):
        if not copied[d]:
            lin[d] = linear_tables(coords(coord_mode, o, i, s), i)
    if not lin:
        return x
    return emit_linear(x, out_shape, lin)


def _check_input(node, x: b.T) -> None:
    if x.dtype not in (np.float32, np.uint8, np.int8, np.int32, np.int64):
        raise UnsupportedOp(node, f"element type {x.dtype}", "float32 (any mode); int8, uint8, int32, int64 (nearest)")
    if x.rank == 0:
        raise UnsupportedOp(node, "a scalar input")


def _mode(node, a: dict) -> str:
    mode = a.get("mode", "nearest")
    if mode == "cubic":
        raise UnsupportedOp(node, "mode 'cubic'", "nearest, linear")
    if mode not in ("nearest", "linear"):
        raise UnsupportedOp(node, f"mode '{mode}'", "nearest, linear")
    return mode


def _per_axis(node, values: np.ndarray, axes, rank: int, fill, what: str) -> np.ndarray:
    """Spreads values given for `axes` (opset 18) over all dims, `fill` elsewhere."""
    if axes is None:
        if len(values) != rank:
            raise UnsupportedOp(node, f"{what} has {len(values)} values for a rank-{rank} input")
        return values
    if len(values) != len(axes):
        raise UnsupportedOp(node, f"{what} has {len(values)} values for axes {list(axes)}")
    out = np.array(fill, dtype=values.dtype)
    for a, v in zip(axes, values):
        out[a] = v
    return out


def _keep_aspect(sizes: np.ndarray, in_shape, axes, policy: str) -> tuple[np.ndarray, np.ndarray]:
    """not_larger / not_smaller: one scale for the listed axes, the min or max
    of size/in; each size becomes round(scale * in) (halves away from zero).
    Returns the sizes and the per-axis scales the coordinates use."""
    ratios = [F32(sizes[a]) / F32(in_shape[a]) for a in axes]
    scale = F32(min(ratios) if policy == "not_larger" else max(ratios))
    out = np.array(in_shape, np.int64)
    scales = np.ones(len(in_shape), F32)
    for a in axes:
        out[a] = int(_round_half_away(np.array([scale * F32(in_shape[a])]))[0])
        scales[a] = scale
    return out, scales


@importer("Resize")
def import_resize(ctx, node):
    a = attrs(node)
    x = ctx.get(node.input[0])
    _check_input(node, x)
    mode = _mode(node, a)
    if ctx.opset < 11:
        scales = _const_floats(ctx, node, 1, "scales")
        return [resize(node, x, scales, None, mode, "asymmetric", "simple")]
    coord_mode = a.get("coordinate_transformation_mode", "half_pixel")
    if coord_mode == "tf_crop_and_resize":
        raise UnsupportedOp(node, "coordinate_transformation_mode 'tf_crop_and_resize'", ", ".join(COORD_MODES))
    if coord_mode not in COORD_MODES:
        raise UnsupportedOp(node, f"coordinate_transformation_mode '{coord_mode}'", ", ".join(COORD_MODES))
    nearest_mode = a.get("nearest_mode", "round_prefer_floor")
    if nearest_mode not in NEAREST_MODES:
        raise UnsupportedOp(node, f"nearest_mode '{nearest_mode}'", ", ".join(NEAREST_MODES))
    axes = a.get("axes")
    if axes is not None:
        axes = [int(v) for v in axes]
        if any(not -x.rank <= v < x.rank for v in axes) or len(set(v % x.rank for v in axes)) != len(axes):
            raise UnsupportedOp(node, f"axes {axes} are not distinct dims of a rank-{x.rank} input")
        axes = [v % x.rank for v in axes]
    scales = _const_floats(ctx, node, 2, "scales")
    sizes = _const_floats(ctx, node, 3, "sizes")
    if scales is not None and scales.size == 0:
        scales = None
    if sizes is not None and sizes.size == 0:
        sizes = None
    if (scales is None) == (sizes is None):
        raise UnsupportedOp(node, "exactly one of scales and sizes must be given")
    if scales is not None:
        scales = _per_axis(node, scales.astype(F32), axes, x.rank, np.ones(x.rank, F32), "scales")
    else:
        sizes = _per_axis(node, sizes.astype(np.int64), axes, x.rank, np.array(x.shape, np.int64), "sizes")
        policy = a.get("keep_aspect_ratio_policy", "stretch")
        if policy not in ("stretch", "not_larger", "not_smaller"):
            raise UnsupportedOp(node, f"keep_aspect_ratio_policy '{policy}'", "stretch, not_larger, not_smaller")
        if policy != "stretch":
            sizes, scales = _keep_aspect(sizes, x.shape, axes if axes is not None else range(x.rank), policy)
    antialias = bool(int(a.get("antialias", 0)))
    return [resize(node, x, scales, sizes, mode, coord_mode, nearest_mode, antialias)]


@importer("Upsample")
def import_upsample(ctx, node):
    """Resize-10 with the scales as an attribute (opset 7) or an input (opset 9)."""
    a = attrs(node)
    x = ctx.get(node.input[0])
    _check_input(node, x)
    mode = _mode(node, a)
    if ctx.opset < 9:
        if "scales" not in a:
            raise UnsupportedOp(node, "the scales attribute is missing")
        scales = np.asarray(a["scales"], F32)
    else:
        scales = _const_floats(ctx, node, 1, "scales")
    if len(scales) != x.rank:
        raise UnsupportedOp(node, f"scales has {len(scales)} values for a rank-{x.rank} input")
    return [resize(node, x, scales, None, mode, "asymmetric", "simple")]
