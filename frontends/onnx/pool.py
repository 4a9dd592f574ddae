"""Pooling: MaxPool, AveragePool (1-D and 2-D), GlobalAveragePool, GlobalMaxPool (float32).

MaxPool and AveragePool pad the input with tensor.pad (the lowest float for
max, 0 for average) and use linalg.pooling_{ncw,nchw}_{max,sum}; the window
arithmetic (pads, auto_pad, strides, dilations, ceil_mode) is Conv's
(conv.window).

AveragePool divides each window sum by the number of elements it counts:
the whole window with count_include_pad=1, but never the part that ceil_mode
adds past the end padding; only the input elements with count_include_pad=0.
That count depends on the output position alone and is separable per
spatial dim, so it is computed at compile time: one constant divisor per
output position, exact at the borders.
"""

from __future__ import annotations

import numpy as np

from qc.errors import UnsupportedOp
from qc.mlir import arith, linalg

from . import builder as b
from .attrs import attrs
from .conv import Window, check_f32, pad_spatial, window
from .registry import importer

# A window that reads no input element gives the lowest float, as onnxruntime does.
LOWEST = float(np.finfo(np.float32).min)

_MAX = {1: linalg.pooling_ncw_max, 2: linalg.pooling_nchw_max}
_SUM = {1: linalg.pooling_ncw_sum, 2: linalg.pooling_nchw_sum}


def _input(ctx, node) -> b.T:
    x = ctx.get(node.input[0])
    check_f32(node, "X", x)
    if x.rank not in (3, 4):
        raise UnsupportedOp(node, f"input of rank {x.rank}", "rank 3 or 4 (1-D or 2-D pooling)")
    return x


def _window(node, x: b.T, a: dict) -> Window:
    if "kernel_shape" not in a:
        raise UnsupportedOp(node, "kernel_shape is missing")
    kernel = [int(k) for k in a["kernel_shape"]]
    if len(kernel) != x.rank - 2 or any(k < 1 for k in kernel):
        raise UnsupportedOp(node, f"kernel_shape {kernel} does not fit a rank-{x.rank} input")
    ceil_mode = int(a.get("ceil_mode", 0))
    if ceil_mode not in (0, 1):
        raise UnsupportedOp(node, f"ceil_mode {ceil_mode}", "0 or 1")
    if any(p >= k for p, k in zip(a.get("pads", []), kernel * 2)):
        raise UnsupportedOp(node, f"pads {list(a['pads'])} reach a kernel size {kernel}", "pads < kernel_shape")
    return window(node, a, x.shape[2:], kernel, ceil_mode=bool(ceil_mode))


def _pool(named, x: b.T, win: Window, pad_value: float, init_value: float) -> b.T:
    xp = pad_spatial(x, win.low, win.high_fill, pad_value)
    out_shape = (*x.shape[:2], *win.out)
    init = b.filled(out_shape, x.dtype, init_value)
    kernel = b.empty(win.kernel, x.dtype)  # the op reads only its shape
    y = named[x.rank - 2](xp.value, kernel, outs=[init], strides=list(win.strides),
                          dilations=list(win.dilations))
    return b.T(y, x.dtype)


@importer("MaxPool")
def import_maxpool(ctx, node):
    if len(node.output) > 1 and node.output[1]:
        raise UnsupportedOp(node, "the Indices output is not supported", "MaxPool with the Y output only")
    a = attrs(node)
    x = _input(ctx, node)
    win = _window(node, x, a)
    return [_pool(_MAX, x, win, LOWEST, LOWEST)]


def divisors(win: Window, spatial_in, count_include_pad: bool) -> np.ndarray:
    """How many elements each output position's window counts, [out...].

    Along one dim, output o reads positions p = o*s - low + j*d (j < k); it
    counts those in [-low, in + high) with count_include_pad, else those in
    [0, in). The count of a window is the product over dims.
    """
    total = np.ones((), np.int64)
    for i, k, s, d, lo, hi, o in zip(spatial_in, win.kernel, win.strides, win.dilations,
                                     win.low, win.high, win.out):
        p = (np.arange(o) * s - lo)[:, None] + np.arange(k)[None, :] * d
        first, end = (-lo, i + hi) if count_include_pad else (0, i)
        counts = ((p >= first) & (p < end)).sum(axis=1)
        total = np.multiply.outer(total, counts)
    return total


@importer("AveragePool")
def import_avgpool(ctx, node):
    a = attrs(node)
    x = _input(ctx, node)
    include_pad = int(a.get("count_include_pad", 0))
    if include_pad not in (0, 1):
        raise UnsupportedOp(node, f"count_include_pad {include_pad}", "0 or 1")
    win = _window(node, x, a)
    sums = _pool(_SUM, x, win, 0.0, 0.0)
    div = divisors(win, x.shape[2:], bool(include_pad)).astype(np.float32)
    if np.all(div == div.flat[0]):
        d = b.scalar(float(div.flat[0]), x.dtype)
        return [b.elementwise([sums], x.dtype, lambda v: arith.DivFOp(v, d).result)]
    return [b.elementwise([sums, b.constant(div)], x.dtype, lambda v, q: arith.DivFOp(v, q).result)]


def _global_input(ctx, node) -> b.T:
    x = ctx.get(node.input[0])
    check_f32(node, "X", x)
    if x.rank < 3:
        raise UnsupportedOp(node, f"input of rank {x.rank}", "rank >= 3 (N x C x spatial)")
    return x


@importer("GlobalAveragePool")
def import_global_avgpool(ctx, node):
    """mean over the spatial dims, kept as size-1 dims: sum / count."""
    x = _global_input(ctx, node)
    spatial = list(range(2, x.rank))
    s = b.reduce(x, spatial, 0.0, lambda e, acc: arith.AddFOp(e, acc).result)
    count = b.scalar(float(np.prod(x.shape[2:])), x.dtype)
    return [b.elementwise([s], x.dtype, lambda v: arith.DivFOp(v, count).result)]


@importer("GlobalMaxPool")
def import_global_maxpool(ctx, node):
    x = _global_input(ctx, node)
    spatial = list(range(2, x.rank))
    return [b.reduce(x, spatial, float("-inf"), lambda e, acc: arith.MaximumFOp(e, acc).result)]
