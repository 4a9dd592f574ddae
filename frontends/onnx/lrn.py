"""LRN (local response normalization across channels, opsets 1 and 13), float32.

    y[n, c, ...] = x[n, c, ...] / (bias + alpha / size * s[n, c, ...]) ** beta
    s[n, c, ...] = sum of x[n, c', ...]^2 for c' in [c - lo, c + hi] ∩ [0, C)

with lo = floor((size - 1) / 2) and hi = ceil((size - 1) / 2), as ONNX
defines it. The window slides along the channels, so the squares are viewed as
N x 1 x C x S (S = the product of the spatial dims), zero-padded by lo and hi
channels, and summed with linalg.pooling_nchw_sum over a size x 1 window: a
named op, read once per output. The division is a multiply by
(bias + alpha/size * s) ** -beta in one elementwise generic.
"""

from __future__ import annotations

import numpy as np

from qc.errors import UnsupportedOp
from qc.mlir import arith, linalg, math

from . import builder as b
from .attrs import attrs
from .conv import check_f32, pad_spatial
from .registry import importer


def _params(node) -> tuple[int, float, float, float]:
    a = attrs(node)
    if "size" not in a:
        raise UnsupportedOp(node, "the size attribute is missing (it is required)")
    size = int(a["size"])
    if size < 1:
        raise UnsupportedOp(node, f"size {size}", "size >= 1")
    return size, float(a.get("alpha", 1e-4)), float(a.get("beta", 0.75)), float(a.get("bias", 1.0))


def window_sum_of_squares(x: b.T, size: int) -> b.T:
    """s[n, c, ...] = sum over the channel window of x^2, shaped like x."""
    n, c = x.shape[:2]
    spatial = int(np.prod(x.shape[2:], dtype=np.int64))
    sq = b.elementwise([x], x.dtype, lambda v: arith.MulFOp(v, v).result)
    lo = (size - 1) // 2
    hi = size - 1 - lo
    padded = pad_spatial(b.reshape(sq, (n, 1, c, spatial)), [lo, 0], [hi, 0], 0.0)
    init = b.filled((n, 1, c, spatial), x.dtype, 0.0)
    window = b.empty((size, 1), x.dtype)  # the op reads only its shape
    s = linalg.pooling_nchw_sum(padded.value, window, outs=[init], strides=[1, 1], dilations=[1, 1])
    return b.reshape(b.T(s, x.dtype), x.shape)


@importer("LRN")
def import_lrn(ctx, node):
    x = ctx.get(node.input[0])
    check_f32(node, "X", x)
    if x.rank < 2:
        raise UnsupportedOp(node, f"input of rank {x.rank}", "rank >= 2 (N x C x ...)")
    size, alpha, beta, bias = _params(node)
    s = window_sum_of_squares(x, size)
    k, scale, neg_beta = (b.scalar(v, x.dtype) for v in (bias, alpha / size, -beta))

    def body(v, w):
        base = arith.AddFOp(k, arith.MulFOp(scale, w).result).result
        return arith.MulFOp(v, math.PowFOp(base, neg_beta).result).result

    return [b.elementwise([x, s], x.dtype, body)]
