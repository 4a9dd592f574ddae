"""Convolutions: Conv and ConvTranspose (float32; 1-D, 2-D and 3-D).

Conv pads its input with tensor.pad (only where a pad is nonzero), then uses
the linalg named op of its form, so the GEMM/conv passes see named ops:

  group 1               conv_2d_nchw_fchw / conv_3d_ncdhw_fcdhw
  group == C == M       depthwise_conv_2d_nchw_chw / _3d_ncdhw_cdhw
  other groups          conv_2d_ngchw_gfchw
(1-D convs run as 2-D ones with a unit height)

The bias, broadcast to the output shape, is the op's initial accumulator.

ConvTranspose is rewritten as a stride-1 convolution: the input is spread
out with s-1 zeros between elements (one strided tensor.insert_slice into a
zero tensor, which also does the padding) and convolved with the flipped
kernel, in and out channels swapped. A direct linalg.generic would need
non-affine index conditions (i = (o + pad - k*d) / s only where divisible),
which no later pass vectorizes; the zero-insertion form feeds the same named
conv ops as Conv, at the price of (s^d - 1)/s^d multiplications by zero.

The window arithmetic (auto_pad, pads, strides, dilations, ceil_mode) is
shared with pooling (pool.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from qc.errors import UnsupportedOp
from qc.mlir import ir, linalg, tensor

from . import builder as b
from .attrs import attrs
from .registry import importer

AUTO_PADS = ("NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID")


# ---------------------------------------------------------------- windows


@dataclass(frozen=True)
class Window:
    """A sliding window over the spatial dims of an N x C x spatial input.

    `low`/`high` are the ONNX pads; `high_fill` is what the padded tensor
    needs after each dim for the last window: less than `high` where the
    last window stops short of the end, more with ceil_mode, whose last
    window can run past the ONNX padding.
    """

    kernel: tuple[int, ...]
    strides: tuple[int, ...]
    dilations: tuple[int, ...]
    low: tuple[int, ...]
    high: tuple[int, ...]
    high_fill: tuple[int, ...]
    out: tuple[int, ...]


def int_list(node, a: dict, name: str, n: int, default: int) -> tuple[int, ...]:
    """An n-element ints attribute (one per spatial dim), each >= 1."""
    vals = tuple(int(v) for v in a.get(name, [default] * n))
    if len(vals) != n:
        raise UnsupportedOp(node, f"{name} has {len(vals)} values, the input has {n} spatial dims")
    if any(v < 1 for v in vals):
        raise UnsupportedOp(node, f"{name} {list(vals)} must be >= 1")
    return vals


def explicit_pads(node, a: dict, n: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    pads = tuple(int(p) for p in a.get("pads", [0] * (2 * n)))
    if len(pads) != 2 * n:
        raise UnsupportedOp(node, f"pads has {len(pads)} values, expected {2 * n} (begin and end per spatial dim)")
    if any(p < 0 for p in pads):
        raise UnsupportedOp(node, f"negative pads {list(pads)}", "pads >= 0")
    return pads[:n], pads[n:]


def auto_pad_mode(node, a: dict) -> str:
    mode = a.get("auto_pad", "NOTSET")
    if mode not in AUTO_PADS:
        raise UnsupportedOp(node, f"auto_pad '{mode}' is not valid", ", ".join(AUTO_PADS))
    return mode


def window(node, a: dict, spatial_in: Sequence[int], kernel: Sequence[int], ceil_mode: bool = False) -> Window:
    """Pads and output sizes of Conv / MaxPool / AveragePool.

    out = floor((in + low + high - extent) / s) + 1 with extent = (k-1)*d + 1
    (ceil instead of floor with ceil_mode, dropping a last window that would
    start in the end padding). SAME_*: out = ceil(in / s), and the padding
    total = (out-1)*s + extent - in goes half to each side, the odd one to
    the end (UPPER) or the beginning (LOWER).
    """
    n = len(spatial_in)
    kernel = tuple(int(k) for k in kernel)
    strides = int_list(node, a, "strides", n, 1)
    dilations = int_list(node, a, "dilations", n, 1)
    mode = auto_pad_mode(node, a)
    extents = [(k - 1) * d + 1 for k, d in zip(kernel, dilations)]
    if mode == "NOTSET":
        low, high = explicit_pads(node, a, n)
    elif mode == "VALID":
        low, high = (0,) * n, (0,) * n
    else:
        totals = [max(0, (-(-i // s) - 1) * s + e - i) for i, s, e in zip(spatial_in, strides, extents)]
        small = [t // 2 for t in totals]
        big = [t - t // 2 for t in totals]
        low, high = (tuple(small), tuple(big)) if mode == "SAME_UPPER" else (tuple(big), tuple(small))
    out, fill = [], []
    for i, lo, hi, s, e in zip(spatial_in, low, high, strides, extents):
        span = i + lo + hi - e
        if span < 0:
            raise UnsupportedOp(node, f"the window (extent {e}) is larger than the padded input ({i + lo + hi})")
        o = span // s + 1
        if ceil_mode:
            o = -(-span // s) + 1
            if (o - 1) * s >= i + lo:  # the last window would start in the end padding
                o -= 1
        out.append(o)
        fill.append(max(0, (o - 1) * s + e - i - lo))  # only what the last window reads
    return Window(kernel, strides, dilations, tuple(low), tuple(high), tuple(fill), tuple(out))


def pad_spatial(x: b.T, low: Sequence[int], high: Sequence[int], value: float) -> b.T:
    """tensor.pad of the trailing len(low) dims with a constant; x itself when all pads are 0."""
    if not any(low) and not any(high):
        return x
    lead = x.rank - len(low)
    lo = [0] * lead + list(low)
    hi = [0] * lead + list(high)
    shape = [d + p + q for d, p, q in zip(x.shape, lo, hi)]
    fill = b.scalar(value, x.dtype)
    op = tensor.PadOp(b.tensor_type(shape, x.dtype), x.value, [], [], lo, hi)
    block = op.regions[0].blocks.append(*([ir.IndexType.get()] * x.rank))
    with ir.InsertionPoint(block):
        tensor.YieldOp(fill)
    return b.T(op.result, x.dtype)


def check_f32(node, what: str, t) -> None:
    dt = t.dtype
    if dt != np.float32:
        raise UnsupportedOp(node, f"{what} has element type {dt}", "float32")


# ---------------------------------------------------------------- the conv core

_CONV = {2: linalg.conv_2d_nchw_fchw, 3: linalg.conv_3d_ncdhw_fcdhw}
_DEPTHWISE = {2: linalg.depthwise_conv_2d_nchw_chw, 3: linalg.depthwise_conv_3d_ncdhw_cdhw}


class Weight:
    """A filter known at compile time (numpy) or at run time (a tensor);
    reshapes are numpy reshapes or views."""

    def __init__(self, const: np.ndarray | None, value: b.T | None):
        self.const, self.value = const, value

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.const.shape) if self.const is not None else self.value.shape

    def reshape(self, shape: Sequence[int]) -> "Weight":
        if self.const is not None:
            return Weight(self.const.reshape(shape), None)
        return Weight(None, b.reshape(self.value, shape))

    def reshaped(self, shape: Sequence[int]) -> b.T:
        """The filter as a tensor of `shape` (a constant, or a view)."""
        w = self.reshape(shape)
        return b.constant(np.ascontiguousarray(w.const)) if w.const is not None else w.value


def bias_init(bias: b.T | None, out_shape: Sequence[int], channel_shape: Sequence[int]) -> b.T:
    """The accumulator's initial value: the bias per output channel (dims
    1..len(channel_shape) of the output), or zeros."""
    if bias is None:
        return b.T(b.filled(out_shape, np.float32, 0.0), np.dtype(np.float32))
    rank = len(out_shape)
    src = b.reshape(bias, channel_shape)
    in_map = b.dims_map(rank, list(range(1, 1 + len(channel_shape))))
    (res,) = b.generic([src.value], [b.empty(out_shape, np.float32)], [in_map, b.identity_map(rank)],
                       [b.PARALLEL] * rank, lambda v, _o: v)
    return b.T(res, np.dtype(np.float32))


def conv_core(node, xp: b.T, w: Weight, groups: int, bias: b.T | None,
              strides: Sequence[int], dilations: Sequence[int], out: Sequence[int]) -> b.T:
    """Convolution of an already padded input.

    xp: [N, C, spatial...]; w: [M, C/groups, kernel...] (the Conv layout);
    out: the output spatial sizes (the named ops read it off the init).
    """
    n, c = xp.shape[:2]
    m, cg = w.shape[:2]
    kernel = w.shape[2:]
    nsp = len(kernel)
    out_shape = (n, m, *out)
    if nsp == 1:
        # A 1-D conv is a 2-D one over a unit height: the 2-D ops are the ones
        # that become GEMMs (qc-conv-to-gemm) or vector loops (qc-depthwise-conv).
        x2 = b.expand(xp, [[0], [1], [2, 3]], (n, c, 1, xp.shape[2]))
        w2 = w.reshape((m, cg, 1, kernel[0]))
        y = conv_core(node, x2, w2, groups, bias, (1, *strides), (1, *dilations), (1, *out))
        return b.collapse(y, [[0], [1], [2, 3]], out_shape)
    kw = dict(strides=list(strides), dilations=list(dilations))
    if groups == 1:
        init = bias_init(bias, out_shape, (m,))
        wt = w.reshaped(w.shape)
        return b.T(_CONV[nsp](xp.value, wt.value, outs=[init.value], **kw), xp.dtype)
    if groups == c == m:
        init = bias_init(bias, out_shape, (m,))
        wt = w.reshaped((c, *kernel))
        return b.T(_DEPTHWISE[nsp](xp.value, wt.value, outs=[init.value], **kw), xp.dtype)
    if nsp == 3:
        raise UnsupportedOp(node, f"grouped 3-D convolution (group {groups}, {c} channels)",
                            "3-D with group 1 or group == input channels == output channels")
    g, f = groups, m // groups
    xg = b.expand(xp, [[0], [1, 2], [3], [4]], (n, g, cg, *xp.shape[2:]))
    wg = w.reshaped((g, f, cg, *kernel))
    init = bias_init(bias, (n, g, f, *out), (g, f))
    y = linalg.conv_2d_ngchw_gfchw(xg.value, wg.value, outs=[init.value], **kw)
    return b.collapse(b.T(y, xp.dtype), [[0], [1, 2], [3], [4]], out_shape)


# ---------------------------------------------------------------- Conv


def _operands(ctx, node):
    """x, the filter, the bias (or None), with their checks."""
    x = ctx.get(node.input[0])
    check_f32(node, "X", x)
    wc = ctx.const(node.input[1])
    w = Weight(wc, None if wc is not None else ctx.get(node.input[1]))
    check_f32(node, "W", wc if wc is not None else w.value)
    if x.rank not in (3, 4, 5):
        raise UnsupportedOp(node, f"input of rank {x.rank}", "rank 3, 4 or 5 (1-D, 2-D or 3-D convolution)")
    if len(w.shape) != x.rank:
        raise UnsupportedOp(node, f"W has rank {len(w.shape)}, X has rank {x.rank}")
    bias = None
    if len(node.input) > 2 and node.input[2]:
        bias = ctx.get(node.input[2])
        check_f32(node, "B", bias)
    return x, w, bias


def _kernel_shape(node, a: dict, kernel: Sequence[int]) -> None:
    if "kernel_shape" in a and [int(k) for k in a["kernel_shape"]] != list(kernel):
        raise UnsupportedOp(node, f"kernel_shape {list(a['kernel_shape'])} differs from "
                                  f"W's spatial dims {list(kernel)}")


def _groups(node, a: dict, c: int, m: int) -> int:
    g = int(a.get("group", 1))
    if g < 1 or c % g or m % g:
        raise UnsupportedOp(node, f"group {g} does not divide {c} input and {m} output channels")
    return g


def _check_bias(node, bias: b.T | None, m: int) -> None:
    if bias is not None and bias.shape != (m,):
        raise UnsupportedOp(node, f"B has shape {list(bias.shape)}, expected [{m}]")


@importer("Conv")
def import_conv(ctx, node):
    a = attrs(node)
    x, w, bias = _operands(ctx, node)
    n, c = x.shape[:2]
    m, cg = w.shape[:2]
    kernel = w.shape[2:]
    groups = _groups(node, a, c, m)
    if cg * groups != c:
        raise UnsupportedOp(node, f"W has {cg} input channels per group; X has {c} channels in {groups} groups")
    _kernel_shape(node, a, kernel)
    _check_bias(node, bias, m)
    win = window(node, a, x.shape[2:], kernel)
    xp = pad_spatial(x, win.low, win.high_fill, 0.0)
    return [conv_core(node, xp, w, groups, bias, win.strides, win.dilations, win.out)]


# ---------------------------------------------------------------- ConvTranspose


def _transpose_pads(node, a: dict, spatial_in, kernel, strides, dilations, out_pad):
    """(pads begin, pads end, output sizes) of ConvTranspose.

    full = s*(in-1) + output_padding + (k-1)*d + 1 is the output without
    pads; out = full - begin - end. With output_shape (or SAME_*, where
    out = in*s) the pads are derived: total = full - out, split in half
    with the odd one at the end for SAME_UPPER and at the beginning
    otherwise (the ONNX spec, which onnxruntime follows).
    """
    n = len(spatial_in)
    full = [s * (i - 1) + p + (k - 1) * d + 1
            for i, s, p, k, d in zip(spatial_in, strides, out_pad, kernel, dilations)]
    mode = auto_pad_mode(node, a)
    target = None
    if "output_shape" in a:
        target = [int(v) for v in a["output_shape"]]
        if len(target) != n:
            raise UnsupportedOp(node, f"output_shape {target} must list the {n} spatial sizes")
    elif mode in ("SAME_UPPER", "SAME_LOWER"):
        target = [i * s for i, s in zip(spatial_in, strides)]
    if target is None:
        low, high = explicit_pads(node, a, n) if mode == "NOTSET" else ((0,) * n, (0,) * n)
    else:
        # A target past the full output extends it with zeros (bias) at the end.
        totals = [max(f - t, 0) for f, t in zip(full, target)]
        small = tuple(t // 2 for t in totals)
        big = tuple(t - t // 2 for t in totals)
        low, high = (small, big) if mode == "SAME_UPPER" else (big, small)
        high = tuple(h + min(f - t, 0) for h, f, t in zip(high, full, target))
    out = tuple(f - lo - hi for f, lo, hi in zip(full, low, high))
    if any(o < 1 for o in out):
        raise UnsupportedOp(node, f"pads {list(low) + list(high)} leave an empty output ({list(out)})")
    return low, high, out


def _flipped_filter(w: Weight, groups: int) -> Weight:
    """[C, M/g, k...] (ConvTranspose) -> [M, C/g, k...] (Conv), kernel flipped:
    wc[g*F + f, c, k] = w[g*Cg + c, f, K-1-k]."""
    c, f = w.shape[:2]
    kernel = w.shape[2:]
    cg = c // groups
    nsp = len(kernel)
    flip_axes = tuple(range(3, 3 + nsp))
    if w.const is not None:
        grouped = w.const.reshape(groups, cg, f, *kernel).transpose(0, 2, 1, *flip_axes)
        return Weight(np.flip(grouped, flip_axes).reshape(groups * f, cg, *kernel), None)
    src = b.reshape(w.value, (groups, cg, f, *kernel))
    rank = 3 + nsp
    # out (g, f, c, k...) reads src (g, c, f, K-1-k...)
    exprs = [ir.AffineDimExpr.get(0), ir.AffineDimExpr.get(2), ir.AffineDimExpr.get(1)]
    exprs += [ir.AffineConstantExpr.get(k - 1) - ir.AffineDimExpr.get(3 + i) for i, k in enumerate(kernel)]
    src_map = ir.AffineMap.get(rank, 0, exprs)
    init = b.empty((groups, f, cg, *kernel), np.float32)
    (res,) = b.generic([src.value], [init], [src_map, b.identity_map(rank)], [b.PARALLEL] * rank,
                       lambda v, _o: v)
    return Weight(None, b.reshape(b.T(res, np.dtype(np.float32)), (groups * f, cg, *kernel)))


def _spread(x: b.T, strides, low, high) -> b.T:
    """x with s-1 zeros between elements along each spatial dim, padded by low/high zeros."""
    if all(s == 1 for s in strides):
        return pad_spatial(x, low, high, 0.0)
    n, c = x.shape[:2]
    spatial = x.shape[2:]
    shape = (n, c, *[lo + (i - 1) * s + 1 + hi for i, s, lo, hi in zip(spatial, strides, low, high)])
    zeros = b.filled(shape, x.dtype, 0.0)
    op = tensor.InsertSliceOp(x.value, zeros, [], [], [], [0, 0, *low], list(x.shape), [1, 1, *strides])
    return b.T(op.result, x.dtype)


@importer("ConvTranspose")
def import_conv_transpose(ctx, node):
    a = attrs(node)
    x, w, bias = _operands(ctx, node)
    n, c = x.shape[:2]
    wc, f = w.shape[:2]
    kernel = w.shape[2:]
    nsp = len(kernel)
    groups = int(a.get("group", 1))
    if groups < 1 or c % groups or wc != c:
        raise UnsupportedOp(node, f"W has {wc} input channels and group {groups}; X has {c} channels")
    m = f * groups
    _kernel_shape(node, a, kernel)
    _check_bias(node, bias, m)
    strides = int_list(node, a, "strides", nsp, 1)
    dilations = int_list(node, a, "dilations", nsp, 1)
    out_pad = tuple(int(p) for p in a.get("output_padding", [0] * nsp))
    if len(out_pad) != nsp or any(p < 0 for p in out_pad):
        raise UnsupportedOp(node, f"output_padding {list(out_pad)} must have {nsp} values >= 0")
    pb, pe, out = _transpose_pads(node, a, x.shape[2:], kernel, strides, dilations, out_pad)

    # Output o reads the spread input at o + pb - (extent-1) + k*d for the flipped
    # kernel: pad the spread input by extent-1-pb before and extent-1-pe+output_padding
    # after. A negative amount (pads larger than the kernel) becomes a crop of the result.
    extents = [(k - 1) * d + 1 for k, d in zip(kernel, dilations)]
    low = [e - 1 - p for e, p in zip(extents, pb)]
    high = [e - 1 - p + o for e, p, o in zip(extents, pe, out_pad)]
    xs = _spread(x, strides, [max(v, 0) for v in low], [max(v, 0) for v in high])
    conv_out = [d - e + 1 for d, e in zip(xs.shape[2:], extents)]
    y = conv_core(node, xs, _flipped_filter(w, groups), groups, bias, (1,) * nsp, dilations, conv_out)
    crop = [max(0, -v) for v in low]
    if tuple(conv_out) == out:
        return [y]
    ty = b.tensor_type((n, m, *out), np.float32)
    sl = tensor.ExtractSliceOp(ty, y.value, [], [], [], [0, 0, *crop], [n, m, *out], [1] * (2 + nsp))
    return [b.T(sl.result, y.dtype)]
