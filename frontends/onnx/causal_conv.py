"""CausalConvWithState (opset 27): a depthwise causal 1-D convolution that
carries its left context between calls.

    padded[b, c, :]  = past_state[b, c, :] (zeros without one) ++ input[b, c, :]
    output[b, c, t]  = bias[c] + sum_j weight[c, 0, j] * padded[b, c, t + j]
    present_state    = the last k - 1 positions of padded

optionally followed by SiLU (x * sigmoid(x); "swish" is the same). The
convolution is one generic with a reduction loop over the k taps. float16
is computed in float32 and rounded once.
"""

from __future__ import annotations

import numpy as np

from qc.errors import UnsupportedOp
from qc.mlir import arith, ir, linalg, math

from . import builder as b
from .attrs import attrs
from .data_ops import insert_slice, slice_of
from .registry import importer

FLOATS = (np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.float64))


def _optional(ctx, node, i: int) -> b.T | None:
    return ctx.get(node.input[i]) if len(node.input) > i and node.input[i] else None


@importer("CausalConvWithState")
def import_causal_conv(ctx, node):
    x, w = ctx.get(node.input[0]), ctx.get(node.input[1])
    bias, past = _optional(ctx, node, 2), _optional(ctx, node, 3)
    activation = attrs(node).get("activation", "none")
    if activation not in ("none", "silu", "swish"):
        raise UnsupportedOp(node, f"activation '{activation}'", "none, silu, swish")
    if x.dtype not in FLOATS or w.dtype != x.dtype:
        raise UnsupportedOp(node, f"input {x.dtype} with weight {w.dtype}", "one of float16, float32, float64")
    if x.rank != 3 or w.rank != 3 or w.shape[:2] != (x.shape[1], 1):
        raise UnsupportedOp(node, f"input {list(x.shape)} with weight {list(w.shape)}",
                            "input [B, C, L] with a depthwise weight [C, 1, k]")
    bsz, chans, length = x.shape
    k = w.shape[2]
    if bias is not None and (bias.dtype != x.dtype or bias.shape != (chans,)):
        raise UnsupportedOp(node, f"bias is {bias.dtype}{list(bias.shape)}", f"{x.dtype}[{chans}]")
    if past is not None and (past.dtype != x.dtype or past.shape != (bsz, chans, k - 1)):
        raise UnsupportedOp(node, f"past_state is {past.dtype}{list(past.shape)}", f"{x.dtype}{[bsz, chans, k - 1]}")
    padded = _padded(x, past, k)
    y = _conv(padded, b.reshape(w, (chans, k)), bias, length, activation != "none")
    outs = [y]
    if len(node.output) > 1 and node.output[1]:
        if k == 1:
            raise UnsupportedOp(node, "present_state of kernel size 1 is empty", "kernel size >= 2")
        outs.append(slice_of(padded, [0, 0, length], [bsz, chans, k - 1]))
    return outs


def _padded(x: b.T, past: b.T | None, k: int) -> b.T:
    if k == 1:
        return x
    bsz, chans, length = x.shape
    out = b.filled((bsz, chans, length + k - 1), x.dtype, 0.0)
    if past is not None:
        out = insert_slice(past, out, [0, 0, 0])
    return b.T(insert_slice(x, out, [0, 0, k - 1]), x.dtype)


def _conv(padded: b.T, w: b.T, bias: b.T | None, length: int, silu: bool) -> b.T:
    bsz, chans = padded.shape[:2]
    k = w.shape[1]
    dt = padded.dtype
    ct = np.dtype(np.float32) if dt == np.float16 else dt
    wide = b.mlir_type(ct)

    def widen(v):
        return v if ct == dt else arith.ExtFOp(wide, v).result

    # loops (b, c, t, j): padded[b, c, t + j] * w[c, j]
    d = [ir.AffineDimExpr.get(i) for i in range(4)]
    in_map = ir.AffineMap.get(4, 0, [d[0], d[1], d[2] + d[3]])
    (acc,) = b.generic([padded.value, w.value], [b.filled((bsz, chans, length), ct, 0.0)],
                       [in_map, b.dims_map(4, [1, 3]), b.dims_map(4, [0, 1, 2])],
                       [b.PARALLEL] * 3 + [b.REDUCTION],
                       lambda v, wv, s: arith.AddFOp(s, arith.MulFOp(widen(v), widen(wv)).result).result)
    acc = b.T(acc, ct)
    if bias is None and not silu and ct == dt:
        return acc
    one = b.scalar(1.0, ct)

    def finish(s, *bv):
        if bv:
            s = arith.AddFOp(s, widen(bv[0])).result
        if silu:
            e = math.ExpOp(arith.NegFOp(s).result).result
            s = arith.DivFOp(s, arith.AddFOp(one, e).result).result
        return s if ct == dt else arith.TruncFOp(b.mlir_type(dt), s).result

    if bias is None:
        return b.elementwise([acc], dt, finish)
    (res,) = b.generic([acc.value, bias.value], [b.empty(acc.shape, dt)],
                       [b.identity_map(3), b.dims_map(3, [1]), b.identity_map(3)], [b.PARALLEL] * 3,
                       lambda s, bv, _o: finish(s, bv))
    return b.T(res, dt)
