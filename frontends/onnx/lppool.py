"""LpPool (float32, 1-D to 3-D): y = (sum over the window of |x|^p)^(1/p).

Padding contributes zeros. The window arithmetic (pads, auto_pad, strides,
dilations, ceil_mode) is Conv's (conv.window). The sum is one generic over
(n, c, out..., kernel...), reading the padded input at o*s + k*d per spatial
dim, so every rank takes the same path; p = 1 and 2 avoid powf.
"""

from __future__ import annotations

from qc.errors import UnsupportedOp
from qc.mlir import arith, ir, math

from . import builder as b
from .attrs import attrs
from .conv import check_f32, pad_spatial, window
from .registry import importer


@importer("LpPool")
def import_lppool(ctx, node):
    a = attrs(node)
    x = ctx.get(node.input[0])
    check_f32(node, "X", x)
    if x.rank < 3:
        raise UnsupportedOp(node, f"input of rank {x.rank}", "rank >= 3 (N x C x spatial)")
    kernel = [int(k) for k in a.get("kernel_shape", [])]
    if len(kernel) != x.rank - 2 or any(k < 1 for k in kernel):
        raise UnsupportedOp(node, f"kernel_shape {kernel} does not fit a rank-{x.rank} input")
    p = int(a.get("p", 2))
    if p < 1:
        raise UnsupportedOp(node, f"p={p}", "p >= 1")
    ceil_mode = int(a.get("ceil_mode", 0))
    if ceil_mode not in (0, 1):
        raise UnsupportedOp(node, f"ceil_mode {ceil_mode}", "0 or 1")
    win = window(node, a, x.shape[2:], kernel, ceil_mode=bool(ceil_mode))
    xp = pad_spatial(x, win.low, win.high_fill, 0.0)
    sums = _window_sum(xp, win, p)
    if p == 1:
        return [sums]
    if p == 2:
        return [b.elementwise([sums], x.dtype, lambda v: math.SqrtOp(v).result)]
    inv = b.scalar(1.0 / p, x.dtype)
    return [b.elementwise([sums], x.dtype, lambda v: math.PowFOp(v, inv).result)]


def _window_sum(xp: b.T, win, p: int) -> b.T:
    """sum over each window of |x|^p."""
    n_sp = len(win.kernel)
    rank = 2 + 2 * n_sp  # n, c, out..., kernel...
    exprs = [ir.AffineDimExpr.get(0), ir.AffineDimExpr.get(1)]
    for i, (s, d) in enumerate(zip(win.strides, win.dilations)):
        exprs.append(ir.AffineDimExpr.get(2 + i) * s + ir.AffineDimExpr.get(2 + n_sp + i) * d)
    in_map = ir.AffineMap.get(rank, 0, exprs)
    out_map = b.dims_map(rank, list(range(2 + n_sp)))
    out_shape = (*xp.shape[:2], *win.out)
    power = b.scalar(float(p), xp.dtype) if p > 2 else None

    def body(v, acc):
        m = math.AbsFOp(v).result
        if p == 2:
            m = arith.MulFOp(m, m).result
        elif p > 2:
            m = math.PowFOp(m, power).result
        return arith.AddFOp(acc, m).result

    iters = [b.PARALLEL] * (2 + n_sp) + [b.REDUCTION] * n_sp
    # The kernel dims come only from the loop bounds: a shape-only operand gives them.
    kernel = b.empty((*win.kernel,), xp.dtype)
    kmap = b.dims_map(rank, list(range(2 + n_sp, rank)))
    (res,) = b.generic([xp.value, kernel], [b.filled(out_shape, xp.dtype, 0.0)], [in_map, kmap, out_map], iters,
                       lambda v, _k, acc: body(v, acc))
    return b.T(res, xp.dtype)
