"""GridSample and AffineGrid (float32, any number of spatial dims).

GridSample reads X [N, C, D1..Dk] at the points of Grid [N, O1..Om, k], one
generic over Y [N, C, O1..Om]. Grid's last dim lists the coordinates
innermost-first (x, then y, ...). Each normalized coordinate g in [-1, 1]
maps to a position along its dim of size S:
    align_corners=1: p = (g + 1) / 2 * (S - 1)        (the end pixels' centers)
    align_corners=0: p = ((g + 1) * S - 1) / 2        (the end pixels' edges)
A position outside [lo, hi] ([0, S-1], or [-0.5, S-0.5] without
align_corners) is clamped to [0, S-1] (padding_mode border) or reflected at
lo/hi until inside (reflection). Cubic with border leaves the position
alone and clamps each tap instead, as PyTorch and onnxruntime do (ONNX's
reference clamps the position first; its tests have no such case). Then
    nearest: X at round-half-even(p)
    linear:  sum over the 2^k corners of floor(p) + {0, 1} of
             prod (1 - |p - corner|) * X[corner]
    cubic:   the same over the 4^k points floor(p) - 1 .. floor(p) + 2 with
             Keys' cubic weights (a = -0.75)
A tap outside the input reads 0 (zeros), the nearest edge (border), or its
reflection (reflection), exactly as ONNX's reference does. Taps are read
with tensor.extract at indices clamped into range.

AffineGrid builds the grid itself: grid[n, .., :] = theta[n] @ (x, y, .., 1),
with the output's normalized pixel coordinates (x innermost).
"""

from __future__ import annotations

import itertools

import numpy as np

from qc.errors import UnsupportedOp
from qc.mlir import arith, ir, linalg, math, tensor

from . import builder as b
from .attrs import attrs
from .conv import check_f32
from .registry import importer
from .shape_fns import const_ints

CUBIC_A = -0.75


class _Scalars:
    """Float and integer helpers for one payload (element type f32, indices i64)."""

    def __init__(self, dt):
        self.dt = dt
        self.i64 = ir.IntegerType.get_signless(64)

    def f(self, v) -> ir.Value:
        return b.scalar(float(v), self.dt)

    def i(self, v) -> ir.Value:
        return b.scalar(int(v), np.int64)

    def add(self, p, q):
        return arith.AddFOp(p, q).result

    def sub(self, p, q):
        return arith.SubFOp(p, q).result

    def mul(self, p, q):
        return arith.MulFOp(p, q).result

    def lt(self, p, q):
        return arith.CmpFOp(arith.CmpFPredicate.OLT, p, q).result

    def gt(self, p, q):
        return arith.CmpFOp(arith.CmpFPredicate.OGT, p, q).result

    def sel(self, c, p, q):
        return arith.SelectOp(c, p, q).result

    def clampf(self, v, lo, hi):
        return arith.MinimumFOp(arith.MaximumFOp(v, self.f(lo)).result, self.f(hi)).result

    def to_int(self, v):  # truncates toward zero, as C's and Python's int() do
        return arith.FPToSIOp(self.i64, v).result

    def to_float(self, v):
        return arith.SIToFPOp(b.mlir_type(self.dt), v).result


def _reflect(s: _Scalars, x, lo: float, hi: float):
    """x reflected at lo and hi until it lies in [lo, hi] (ONNX's _gs_reflect)."""
    span = hi - lo
    if span <= 0:
        return s.f(lo)  # one position: every reflection lands on it
    below, above = s.lt(x, s.f(lo)), s.gt(x, s.f(hi))
    dist = s.sel(below, s.sub(s.f(lo), x), s.sub(x, s.f(hi)))
    turns = s.to_int(arith.DivFOp(dist, s.f(span)).result)
    rest = s.sub(dist, s.mul(s.to_float(turns), s.f(span)))
    even = arith.CmpIOp(arith.CmpIPredicate.eq, arith.AndIOp(turns, s.i(1)).result, s.i(0)).result
    from_lo, from_hi = s.add(s.f(lo), rest), s.sub(s.f(hi), rest)
    low_side = s.sel(even, from_lo, from_hi)
    high_side = s.sel(even, from_hi, from_lo)
    return s.sel(below, low_side, s.sel(above, high_side, x))


def _bounds(size: int, align: bool) -> tuple[float, float]:
    return (0.0, size - 1.0) if align else (-0.5, size - 0.5)


def _tap(s: _Scalars, idx, size: int, align: bool, padding: str):
    """(in-range index as `index`, valid flag or None) for an integer tap position."""
    if padding == "reflection":
        lo, hi = _bounds(size, align)
        idx = s.to_int(_reflect(s, s.to_float(idx), lo, hi))
    valid = None
    if padding == "zeros":
        valid = arith.AndIOp(arith.CmpIOp(arith.CmpIPredicate.sge, idx, s.i(0)).result,
                             arith.CmpIOp(arith.CmpIPredicate.slt, idx, s.i(size)).result).result
    clamped = arith.MinSIOp(arith.MaxSIOp(idx, s.i(0)).result, s.i(size - 1)).result
    return arith.IndexCastOp(ir.IndexType.get(), clamped).result, valid


def _cubic_weights(s: _Scalars, t):
    """Keys' weights of the taps at -1, 0, 1, 2 for a fraction t in [0, 1)."""
    a = CUBIC_A

    def far(x):  # 1 < |x| < 2
        return s.add(s.mul(s.add(s.mul(s.sub(s.mul(s.f(a), x), s.f(5 * a)), x), s.f(8 * a)), x), s.f(-4 * a))

    def near(x):  # |x| <= 1
        return s.add(s.mul(s.mul(s.sub(s.mul(s.f(a + 2), x), s.f(a + 3)), x), x), s.f(1.0))

    one_minus = s.sub(s.f(1.0), t)
    return [far(s.add(t, s.f(1.0))), near(t), near(one_minus), far(s.add(one_minus, s.f(1.0)))]


@importer("GridSample")
def import_grid_sample(ctx, node):
    a = attrs(node)
    x, grid = ctx.get(node.input[0]), ctx.get(node.input[1])
    check_f32(node, "X", x)
    check_f32(node, "Grid", grid)
    k = x.rank - 2
    if k < 1 or grid.rank != k + 2 or grid.shape[0] != x.shape[0] or grid.shape[-1] != k:
        raise UnsupportedOp(node, f"X {list(x.shape)} and Grid {list(grid.shape)}",
                            "X [N, C, D1..Dk] with Grid [N, O1..Ok, k]")
    mode = {"bilinear": "linear", "bicubic": "cubic"}.get(a.get("mode", "linear"), a.get("mode", "linear"))
    if mode not in ("nearest", "linear", "cubic"):
        raise UnsupportedOp(node, f"mode '{mode}'", "nearest, linear, cubic")
    padding = a.get("padding_mode", "zeros")
    if padding not in ("zeros", "border", "reflection"):
        raise UnsupportedOp(node, f"padding_mode '{padding}'", "zeros, border, reflection")
    align = bool(int(a.get("align_corners", 0)))
    out_shape = (*x.shape[:2], *grid.shape[1:-1])
    sizes = x.shape[2:]
    rank = len(out_shape)
    s = _Scalars(x.dtype)
    idx_ty = ir.IndexType.get()

    def position(dim: int, at):
        """The (clamped or reflected) position along spatial dim `dim`."""
        g = tensor.ExtractOp(grid.value, [at[0], *at[2:], arith.ConstantOp(idx_ty, k - 1 - dim).result]).result
        size = sizes[dim]
        one = s.f(1.0)
        if align:
            p = s.mul(s.mul(s.add(g, one), s.f(0.5)), s.f(size - 1))
        else:
            p = s.mul(s.sub(s.mul(s.add(g, one), s.f(size)), one), s.f(0.5))
        if mode == "nearest":
            p = math.RoundEvenOp(p).result
        lo, hi = _bounds(size, align)
        if padding == "border" and mode != "cubic":
            outside = arith.OrIOp(s.lt(p, s.f(lo)), s.gt(p, s.f(hi))).result
            p = s.sel(outside, s.clampf(p, 0.0, size - 1.0), p)
        elif padding == "reflection":
            p = _reflect(s, p, lo, hi)
        return p

    def body(_out):
        at = [linalg.IndexOp(d).result for d in range(rank)]
        pos = [position(d, at) for d in range(k)]
        if mode == "nearest":
            taps = [[(s.to_int(p), None)] for p in pos]
        else:
            taps = []
            for p in pos:
                base = math.FloorOp(p).result
                t = s.sub(p, base)
                i0 = s.to_int(base)
                if mode == "linear":
                    taps.append([(i0, s.sub(s.f(1.0), t)), (arith.AddIOp(i0, s.i(1)).result, t)])
                else:
                    weights = _cubic_weights(s, t)
                    taps.append([(arith.AddIOp(i0, s.i(o)).result, w) for o, w in zip((-1, 0, 1, 2), weights)])
        total = None
        for corner in itertools.product(*taps):
            coords, weight, valid = [at[0], at[1]], None, None
            for dim, (idx, w) in enumerate(corner):
                c, ok = _tap(s, idx, sizes[dim], align, padding)
                coords.append(c)
                weight = w if weight is None else (s.mul(weight, w) if w is not None else weight)
                valid = ok if valid is None else (arith.AndIOp(valid, ok).result if ok is not None else valid)
            v = tensor.ExtractOp(x.value, coords).result
            if valid is not None:
                v = s.sel(valid, v, s.f(0.0))
            term = v if weight is None else s.mul(weight, v)
            total = term if total is None else s.add(total, term)
        return total

    (res,) = b.generic([], [b.empty(out_shape, x.dtype)], [b.identity_map(rank)], [b.PARALLEL] * rank, body)
    return [b.T(res, x.dtype)]


@importer("AffineGrid")
def import_affine_grid(ctx, node):
    theta = ctx.get(node.input[0])
    check_f32(node, "theta", theta)
    size = const_ints(ctx, node, 1, "size")
    k = len(size) - 2
    if k not in (2, 3) or theta.shape != (size[0], k, k + 1) or any(v < 1 for v in size):
        raise UnsupportedOp(node, f"theta {list(theta.shape)} with size {size}",
                            "size [N, C, H, W] with theta [N, 2, 3], or [N, C, D, H, W] with [N, 3, 4]")
    align = bool(int(attrs(node).get("align_corners", 0)))
    spatial = size[2:]
    out_shape = (size[0], *spatial, k)
    rank = len(out_shape)
    s = _Scalars(theta.dtype)
    idx_ty = ir.IndexType.get()

    def coord(i, n: int):
        """The normalized coordinate of pixel i of n."""
        if align:
            if n == 1:
                return s.f(-1.0)
            return s.add(s.f(-1.0), s.mul(s.to_float(i), s.f(2.0 / (n - 1))))
        step = 2.0 / n
        return s.add(s.f(-1.0 + step / 2), s.mul(s.to_float(i), s.f(step)))

    def body(_out):
        at = [linalg.IndexOp(d).result for d in range(rank)]
        pos = [arith.IndexCastOp(s.i64, at[1 + d]).result for d in range(k)]
        # (x, y, (z), 1): the innermost spatial dim first.
        base = [coord(pos[d], spatial[d]) for d in reversed(range(k))] + [s.f(1.0)]
        total = None
        for j, v in enumerate(base):
            t = tensor.ExtractOp(theta.value, [at[0], at[-1], arith.ConstantOp(idx_ty, j).result]).result
            term = s.mul(t, v)
            total = term if total is None else s.add(total, term)
        return total

    (res,) = b.generic([], [b.empty(out_shape, theta.dtype)], [b.identity_map(rank)], [b.PARALLEL] * rank, body)
    return [b.T(res, theta.dtype)]
