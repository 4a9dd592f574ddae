"""Quantized products on integers: QLinearConv, QLinearMatMul, ConvInteger,
MatMulInteger, and the fused QDQ groups qc::RequantConv / qc::RequantMatMul
(made by qdq_fuse.py).

Each is one linalg contraction of the raw 8-bit operands into an int32
accumulator (a named op where its implicit casts fit: conv_2d_nchw_fchw and
depthwise_conv_2d_nchw_chw for int8 x int8, matmul / batch_matmul with `cast`
for equal signedness; otherwise a linalg.generic doing extsi/extui, muli,
addi), followed by per-output-element glue (qmath.py for the requantization).

Zero points are folded out of the contraction:

    sum_k (x - zx)(w - zw) = sum_k x w - zx sum_k w - zw sum_k x + K zx zw

sum_k w is a constant per output channel (weights are constants);
sum_k x is one extra reduction over the same window, built only when
zw != 0 (weights are normally symmetric). The input is padded with zx, so
padded positions contribute (zx - zx) = 0 and the identity holds at the
borders. The glue adds these terms (and an int32 bias) in wrapping int32:
modular arithmetic, so the sum is exact whenever the final value fits.

Overflow bound: the final value is at most max|x - zx| * sum_k |w - zw| + |bias|
in magnitude. For u8 x s8 with symmetric weights that is 255 * 128 * K, which
stays below 2^31 for K <= 65,793 (K = 65,536 gives 2,139,095,040). The
requantizing ops check the bound from the actual weights at compile time;
ConvInteger and MatMulInteger output int32 by definition and wrap as the
spec's int32 arithmetic does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from qc.errors import UnsupportedOp
from qc.mlir import arith, ir, linalg

from . import builder as b
from . import table_fit
from .attrs import attrs
from .conv import window
from .qmath import (
    I32,
    QC_DOMAIN,
    QUANT_TYPES,
    Requant,
    ext,
    int_sum,
    lookup,
    pad_spatial_value,
    qrange,
    requantize,
    scalar_of,
)
from .registry import importer

F32 = np.dtype(np.float32)
I32_MAX = 2**31 - 1


# ---------------------------------------------------------------- operands


@dataclass(frozen=True)
class Zp:
    """A zero point: compile-time (`const`) or run-time (`value`)."""

    const: np.ndarray | None
    value: b.T | None = None

    @property
    def is_zero(self) -> bool:
        return self.const is not None and not np.any(self.const)

    def factor(self, shape: Sequence[int] | None = None):
        """The zero point as a factor of a glue term, reshaped to `shape`."""
        if self.const is not None:
            c = self.const.astype(np.int64)
            return c.reshape(shape) if shape is not None else c
        return b.reshape(self.value, shape) if shape is not None else self.value


def _names(types) -> str:
    return ", ".join(str(t) for t in types)


def _quant_input(ctx, node, i: int, what: str) -> b.T:
    x = ctx.get(node.input[i])
    if x.dtype not in QUANT_TYPES:
        raise UnsupportedOp(node, f"{what} has element type {x.dtype}", _names(QUANT_TYPES))
    return x


def _const(ctx, node, i: int, what: str) -> np.ndarray:
    """An input that must be known at compile time (a scale, the filter)."""
    v = ctx.const(node.input[i]) if i < len(node.input) and node.input[i] else None
    if v is None:
        raise UnsupportedOp(node, f"{what} ('{node.input[i] if i < len(node.input) else ''}') is computed at "
                                  "run time", f"{what} as a constant (an initializer)")
    return v


def _zero_point(ctx, node, i: int, dtype, what: str) -> Zp:
    if i >= len(node.input) or not node.input[i]:
        return Zp(np.zeros((), np.int64))
    c = ctx.const(node.input[i])
    t = c.dtype if c is not None else ctx.get(node.input[i]).dtype
    if t != dtype:
        raise UnsupportedOp(node, f"{what} has element type {t}, its tensor has {dtype}")
    return Zp(c) if c is not None else Zp(None, ctx.get(node.input[i]))


def _scale(ctx, node, i: int, what: str) -> np.ndarray:
    s = _const(ctx, node, i, what)
    if s.dtype != F32:
        raise UnsupportedOp(node, f"{what} has element type {s.dtype}", "float32")
    if not np.all(np.isfinite(s)) or np.any(s <= 0):
        raise UnsupportedOp(node, f"{what} has a value that is not finite and positive")
    return s.astype(np.float64)


def _per_tensor(node, arr: np.ndarray, what: str) -> np.ndarray:
    if arr.size != 1:
        raise UnsupportedOp(node, f"{what} has shape {list(arr.shape)}", "a scalar (per tensor)")
    return arr.reshape(())


def _per_channel(node, arr: np.ndarray, n: int, what: str) -> np.ndarray:
    """A scalar, or one value per output channel ([n])."""
    if arr.size == 1:
        return arr.reshape(())
    if arr.shape != (n,):
        raise UnsupportedOp(node, f"{what} has shape {list(arr.shape)}", f"a scalar or [{n}] (per channel)")
    return arr


def _max_abs_centered(dtype, zp: Zp) -> int:
    """max |x - zx| over the type's range."""
    qmin, qmax = qrange(dtype)
    if zp.const is None:
        return qmax - qmin
    z = np.asarray(zp.const, np.int64)
    return int(max(np.max(qmax - z), np.max(z - qmin)))


def _acc_bound(bound: int, bias) -> int | None:
    """max |acc| including a constant bias; None where the bias is a run-time value."""
    if bias is None:
        return bound
    if isinstance(bias, np.ndarray):
        return bound + (int(np.max(np.abs(bias.astype(np.int64)))) if bias.size else 0)
    return None


def _check_bound(node, bound: int) -> None:
    if bound > I32_MAX:
        raise UnsupportedOp(node, f"the int32 accumulator could overflow (|sum| up to {bound})",
                            "products whose max|x - zx| * sum_k |w - zw| + |bias| stays below 2^31")


# ---------------------------------------------------------------- glue in int32


def add_terms(acc: b.T, terms: Sequence[Sequence[np.ndarray | b.T]]) -> b.T:
    """acc + sum over terms of the product of its factors, in wrapping int32.

    Compile-time factors multiply out in numpy; all-constant terms are summed
    into one constant. Every factor broadcasts to acc (numpy rules).
    """
    const_sum = np.zeros((), np.int64)
    runtime: list[tuple[np.ndarray, list[b.T]]] = []
    for factors in terms:
        c = np.ones((), np.int64)
        ts = []
        for f in factors:
            if isinstance(f, b.T):
                ts.append(f)
            else:
                c = c * np.asarray(f, np.int64)
        if not np.any(c):
            continue
        if ts:
            runtime.append((c, ts))
        else:
            const_sum = const_sum + c
    operands: list[b.T] = []
    plan: list[tuple[int, list[int]]] = []  # (constant operand, runtime operands) per term
    if np.any(const_sum):
        operands.append(b.constant(_wrap32(const_sum)))
        plan.append((len(operands) - 1, []))
    for c, ts in runtime:
        ci = -1
        if not np.all(c == 1):
            operands.append(b.constant(_wrap32(c)))
            ci = len(operands) - 1
        first = len(operands)
        operands.extend(ts)
        plan.append((ci, list(range(first, len(operands)))))
    if not plan:
        return acc
    dtypes = [o.dtype for o in operands]

    def body(a, *args):
        s = a
        for ci, ri in plan:
            p = args[ci] if ci >= 0 else None
            for i in ri:
                v = ext(args[i], dtypes[i], 32)
                p = v if p is None else arith.MulIOp(p, v).result
            s = arith.AddIOp(s, p).result
        return s

    return b.elementwise([acc, *operands], I32, body)


def _constant_terms(terms) -> np.ndarray | None:
    """The sum of `add_terms` terms as int64 if all are compile-time
    constants, else None."""
    total = np.zeros((), np.int64)
    for factors in terms:
        if any(isinstance(f, b.T) for f in factors):
            return None
        c = np.ones((), np.int64)
        for f in factors:
            c = c * np.asarray(f, np.int64)
        total = total + c
    return total


def _max_abs(dtype) -> int:
    """max |x| over an integer type."""
    info = np.iinfo(dtype)
    return max(abs(int(info.min)), int(info.max))


def _wrap32(a: np.ndarray) -> np.ndarray:
    """int64 values as int32, modulo 2^32 (the glue's ring)."""
    return (np.asarray(a, np.int64) & 0xFFFFFFFF).astype(np.uint32).view(np.int32)


# ---------------------------------------------------------------- matrix products


def _mac(ta, tb):
    """acc + ext(x) * ext(y): the body of an integer contraction."""
    def body(x, y, acc):
        return arith.AddIOp(acc, arith.MulIOp(ext(x, ta, 32), ext(y, tb, 32)).result).result
    return body


def _same_sign(x: b.T, y: b.T) -> bool:
    return b.is_unsigned(x.dtype) == b.is_unsigned(y.dtype)


def _named_cast(x: b.T) -> dict:
    return {"cast": linalg.TypeFn.cast_unsigned} if b.is_unsigned(x.dtype) else {}


def matmul_2d(x: b.T, w: b.T) -> b.T:
    """[M, K] x [K, N] -> int32 [M, N]."""
    (m, k), (_, n) = x.shape, w.shape
    init = b.filled([m, n], I32, 0)
    if _same_sign(x, w):
        return b.T(linalg.matmul(x.value, w.value, outs=[init], **_named_cast(x)), I32)
    maps = [b.dims_map(3, [0, 2]), b.dims_map(3, [2, 1]), b.dims_map(3, [0, 1])]
    (res,) = b.generic([x.value, w.value], [init], maps, [b.PARALLEL, b.PARALLEL, b.REDUCTION],
                       _mac(x.dtype, w.dtype))
    return b.T(res, I32)


def batched_matmul(x: b.T, w: b.T, batch: Sequence[int]) -> b.T:
    """[..., M, K] x [..., K, N] -> int32 [batch..., M, N], numpy batch broadcasting."""
    m, k, n = x.shape[-2], x.shape[-1], w.shape[-1]
    if x.rank == 3 and w.rank == 3 and x.shape[0] == w.shape[0] and _same_sign(x, w):
        init = b.filled([x.shape[0], m, n], I32, 0)
        return b.T(linalg.batch_matmul(x.value, w.value, outs=[init], **_named_cast(x)), I32)
    nb = len(batch)
    rank = nb + 3  # loops: batch..., m, n, k
    dm, dn, dk = nb, nb + 1, nb + 2
    ins, maps = [], []
    for t, inner in ((x, [dm, dk]), (w, [dk, dn])):
        off = nb - (t.rank - 2)
        drop = [t.shape[i] == 1 and batch[off + i] != 1 for i in range(t.rank - 2)] + [False, False]
        v = b.drop_unit_dims(t, drop)
        ins.append(v.value)
        maps.append(b.dims_map(rank, [off + i for i in range(t.rank - 2) if not drop[i]] + inner))
    init = b.filled([*batch, m, n], I32, 0)
    iters = [b.PARALLEL] * (nb + 2) + [b.REDUCTION]
    (res,) = b.generic(ins, [init], [*maps, b.dims_map(rank, [*range(nb), dm, dn])], iters,
                       _mac(x.dtype, w.dtype))
    return b.T(res, I32)


@dataclass
class MatMulOperands:
    x: b.T
    zx: Zp
    w: b.T
    w_const: np.ndarray | None
    zw: Zp


def _mm_shapes(node, xs, ws):
    if len(xs) == 0 or len(ws) == 0:
        raise UnsupportedOp(node, "inputs of rank 0", "rank >= 1")
    xs2 = (1, *xs) if len(xs) == 1 else tuple(xs)
    ws2 = (*ws, 1) if len(ws) == 1 else tuple(ws)
    if xs2[-1] != ws2[-2]:
        raise UnsupportedOp(node, f"inner dims differ: {list(xs)} x {list(ws)}")
    try:
        batch = tuple(np.broadcast_shapes(xs2[:-2], ws2[:-2]))
    except ValueError:
        raise UnsupportedOp(node, f"batch dims do not broadcast: {list(xs)} x {list(ws)}") from None
    final = batch + ((xs2[-2],) if len(xs) > 1 else ()) + ((ws2[-1],) if len(ws) > 1 else ())
    return xs2, ws2, batch, final


def _zp_row(node, zp: Zp, xs2, orig_rank: int, what: str):
    """A's zero point as a factor over [..., M, 1]: scalar, [M] (2-D A) or [..., M, 1]."""
    shape = zp.const.shape if zp.const is not None else zp.value.shape
    if int(np.prod(shape)) == 1:
        return zp.factor(())
    if len(shape) == 1 and orig_rank == 2 and shape[0] == xs2[-2]:
        return zp.factor((xs2[-2], 1))
    if len(shape) == len(xs2) and shape[-1] == 1 and shape[-2] == xs2[-2]:
        return zp.factor(shape)
    raise UnsupportedOp(node, f"{what} has shape {list(shape)}", "a scalar or one per row of A")


def _zp_col(node, zp: Zp, ws2, what: str):
    """B's zero point as a factor over [..., 1, N]: scalar, [N] or [..., 1, N]."""
    shape = zp.const.shape if zp.const is not None else zp.value.shape
    if int(np.prod(shape)) == 1:
        return zp.factor(())
    if len(shape) == 1 and shape[0] == ws2[-1]:
        return zp.factor(shape)
    if len(shape) == len(ws2) and shape[-2] == 1 and shape[-1] == ws2[-1]:
        return zp.factor(shape)
    raise UnsupportedOp(node, f"{what} has shape {list(shape)}", "a scalar or one per column of B")


def qmatmul(node, ops: MatMulOperands, bias=None) -> tuple[b.T, tuple[int, ...], int]:
    """sum_k (x - zx)(w - zw) (+ bias, an int32 factor over the columns) in
    int32, shaped [batch..., M, N]; also the final shape (numpy's 1-D rules)
    and the bound of |result| (for the overflow check)."""
    x, w = ops.x, ops.w
    xs2, ws2, batch, final = _mm_shapes(node, x.shape, w.shape)
    x2, w2 = b.reshape(x, xs2), b.reshape(w, ws2)
    k = xs2[-1]
    if len(ws2) == 2:
        # [..., M, K] x [K, N]: the leading dims of x are more rows of one 2-D product.
        rows = int(np.prod(xs2[:-1]))
        acc = b.reshape(matmul_2d(b.reshape(x2, (rows, k)), w2), (*xs2[:-1], ws2[-1]))
    else:
        acc = batched_matmul(x2, w2, batch)
        acc = b.reshape(acc, (*batch, xs2[-2], ws2[-1]))
    zx = _zp_row(node, ops.zx, xs2, x.rank, "A's zero point")
    zw = _zp_col(node, ops.zw, ws2, "B's zero point")
    terms: list[list] = []
    if not ops.zx.is_zero:
        colsum = (ops.w_const.reshape(ws2).astype(np.int64).sum(axis=-2, keepdims=True)
                  if ops.w_const is not None else int_sum(w2, [-2]))
        terms.append([-1, zx, colsum])
    if not ops.zw.is_zero:
        terms.append([-1, zw, int_sum(x2, [-1])])
        if not ops.zx.is_zero:
            terms.append([k, zx, zw])
    if bias is not None:
        terms.append([bias])
    out = add_terms(acc, terms)
    bound = _max_abs_centered(x.dtype, ops.zx) * _col_abs_sum(ops, ws2, k)
    return out, final, bound


def _col_abs_sum(ops: MatMulOperands, ws2, k: int) -> int:
    """max over columns of sum_k |w - zw| (from the weights when they are constants)."""
    if ops.w_const is None or ops.zw.const is None:
        return k * _max_abs_centered(ops.w.dtype, ops.zw)
    w = ops.w_const.reshape(ws2).astype(np.int64)
    z = np.asarray(ops.zw.const, np.int64)  # scalar, [N] or [..., 1, N]: broadcasts over [..., K, N]
    return int(np.abs(w - z).sum(axis=-2).max())


@importer("MatMulInteger")
def import_matmul_integer(ctx, node):
    """int32 (A - a_zero_point) x (B - b_zero_point), numpy matmul rules."""
    x = _quant_input(ctx, node, 0, "A")
    w = _quant_input(ctx, node, 1, "B")
    ops = MatMulOperands(x, _zero_point(ctx, node, 2, x.dtype, "a_zero_point"), w, ctx.const(node.input[1]),
                         _zero_point(ctx, node, 3, w.dtype, "b_zero_point"))
    out, final, _ = qmatmul(node, ops)
    return [b.reshape(out, final)]


def requant_matmul(node, ops: MatMulOperands, rq: Requant, bias=None) -> b.T:
    out, final, bound = qmatmul(node, ops, bias)
    acc_bound = _acc_bound(bound, bias)
    _check_bound(node, bound if acc_bound is None else acc_bound)
    return b.reshape(requantize(node, out, rq, acc_bound), final)


@importer("QLinearMatMul")
def import_qlinear_matmul(ctx, node):
    """y = saturate(round((a - za)(b - zb) * sa * sb / sy) + zy); sb per tensor
    or per column of b."""
    x = _quant_input(ctx, node, 0, "a")
    w = _quant_input(ctx, node, 3, "b")
    ops = MatMulOperands(x, _zero_point(ctx, node, 2, x.dtype, "a_zero_point"), w, ctx.const(node.input[3]),
                         _zero_point(ctx, node, 5, w.dtype, "b_zero_point"))
    n = w.shape[-1] if w.rank > 1 else 1
    sx = _per_tensor(node, _scale(ctx, node, 1, "a_scale"), "a_scale")
    sw = _per_channel(node, _scale(ctx, node, 4, "b_scale"), n, "b_scale")
    sy = _per_tensor(node, _scale(ctx, node, 6, "y_scale"), "y_scale")
    zy = _per_tensor(node, _const(ctx, node, 7, "y_zero_point"), "y_zero_point")
    if zy.dtype not in QUANT_TYPES:
        raise UnsupportedOp(node, f"y_zero_point has element type {zy.dtype}", _names(QUANT_TYPES))
    rq = Requant.plain(sx * sw / sy, int(zy), zy.dtype)
    return [requant_matmul(node, ops, rq)]


# ---------------------------------------------------------------- convolutions


@dataclass(frozen=True)
class ConvShape:
    groups: int
    kernel: tuple[int, ...]
    strides: tuple[int, ...]
    dilations: tuple[int, ...]
    low: tuple[int, ...]
    high: tuple[int, ...]  # what the padded input needs after each dim
    out: tuple[int, ...]


def _conv_shape(node, a: dict, x: b.T, w_shape: Sequence[int]) -> ConvShape:
    if x.rank not in (3, 4, 5):
        raise UnsupportedOp(node, f"input of rank {x.rank}", "rank 3, 4 or 5 (1-D, 2-D or 3-D convolution)")
    if len(w_shape) != x.rank:
        raise UnsupportedOp(node, f"W has rank {len(w_shape)}, X has rank {x.rank}")
    c, m, cg = x.shape[1], w_shape[0], w_shape[1]
    g = int(a.get("group", 1))
    if g < 1 or c % g or m % g or cg * g != c:
        raise UnsupportedOp(node, f"group {g} does not fit {c} input channels, W of shape {list(w_shape)}")
    kernel = tuple(int(k) for k in w_shape[2:])
    if "kernel_shape" in a and [int(k) for k in a["kernel_shape"]] != list(kernel):
        raise UnsupportedOp(node, f"kernel_shape {list(a['kernel_shape'])} differs from W's {list(kernel)}")
    win = window(node, a, x.shape[2:], kernel)
    return ConvShape(g, kernel, win.strides, win.dilations, win.low, win.high_fill, win.out)


def _window_exprs(nsp: int, out0: int, k0: int, cs: ConvShape):
    """x's spatial index o*s + k*d for loop dims out0.. and k0.."""
    return [ir.AffineDimExpr.get(out0 + i) * cs.strides[i] + ir.AffineDimExpr.get(k0 + i) * cs.dilations[i]
            for i in range(nsp)]


def _channels(cs: ConvShape, m: int) -> tuple[int, ...]:
    """The output channel dims of the glue: [M] for one group, [G, F] for several
    (sum_k x is per group, so the glue sees the groups)."""
    return (m,) if cs.groups == 1 else (cs.groups, m // cs.groups)


def _grouped_view(xp: b.T, cs: ConvShape) -> b.T:
    """x [N, C, sp...] as [N, G, C/G, sp...] (x itself for one group)."""
    if cs.groups == 1:
        return xp
    n, c = xp.shape[:2]
    nsp = len(cs.kernel)
    return b.expand(xp, [[0], [1, 2], *[[3 + i] for i in range(nsp)]], [n, cs.groups, c // cs.groups, *xp.shape[2:]])


def _conv_generic(xv: b.T, wv: b.T, cs: ConvShape, n: int) -> b.T:
    """out[n, (g,) f, o...] = sum_{c, k...} x[n, (g,) c, o*s + k*d] * w[(g,) f, c, k...],
    int32; the g dims only with several groups (x, w then grouped views)."""
    nsp = len(cs.kernel)
    lead = 1 if cs.groups == 1 else 2  # the channel dims of the output: f, or g and f
    # loops: n, (g,) f, o..., c, k...
    rank = 2 + lead + 2 * nsp
    d = ir.AffineDimExpr.get
    o0 = 1 + lead
    c_dim, k0 = o0 + nsp, o0 + nsp + 1
    groups = [d(1)] if lead == 2 else []
    x_map = ir.AffineMap.get(rank, 0, [d(0), *groups, d(c_dim), *_window_exprs(nsp, o0, k0, cs)])
    w_map = ir.AffineMap.get(rank, 0, [*groups, d(lead), d(c_dim), *[d(k0 + i) for i in range(nsp)]])
    out_map = b.dims_map(rank, [*range(o0), *range(o0, o0 + nsp)])
    init = b.filled([n, *wv.shape[:lead], *cs.out], I32, 0)
    iters = [b.PARALLEL] * (o0 + nsp) + [b.REDUCTION] * (1 + nsp)
    (res,) = b.generic([xv.value, wv.value], [init], [x_map, w_map, out_map], iters, _mac(xv.dtype, wv.dtype))
    return b.T(res, I32)


def _window_sum(xv: b.T, cs: ConvShape, n: int) -> b.T:
    """sum_{c, k...} x[n, (g,) c, o*s + k*d] per group and output position,
    shaped [N, 1, o...] (one group) or [N, G, 1, o...]."""
    nsp = len(cs.kernel)
    lead = 0 if cs.groups == 1 else 1
    cg = xv.shape[1 + lead]
    rank = 2 + lead + 2 * nsp  # loops: n, (g,) o..., c, k...
    d = ir.AffineDimExpr.get
    o0 = 1 + lead
    c_dim, k0 = o0 + nsp, o0 + nsp + 1
    groups = [d(1)] if lead else []
    x_map = ir.AffineMap.get(rank, 0, [d(0), *groups, d(c_dim), *_window_exprs(nsp, o0, k0, cs)])
    # The kernel extents come from a dummy operand: loop sizes must be derivable from operands.
    kern = b.empty([cg, *cs.kernel], xv.dtype)
    k_map = b.dims_map(rank, [c_dim, *range(k0, k0 + nsp)])
    out_map = b.dims_map(rank, [*range(o0), *range(o0, o0 + nsp)])
    init = b.filled([n, *([cs.groups] if lead else []), *cs.out], I32, 0)
    iters = [b.PARALLEL] * (o0 + nsp) + [b.REDUCTION] * (1 + nsp)
    (res,) = b.generic([xv.value, kern], [init], [x_map, k_map, out_map], iters,
                       lambda v, _k, acc: arith.AddIOp(acc, ext(v, xv.dtype, 32)).result)
    return b.reshape(b.T(res, I32), [n, *([cs.groups] if lead else []), 1, *cs.out])


def conv_contraction(xp: b.T, w: np.ndarray, cs: ConvShape) -> b.T:
    """sum x * w of the padded input, int32, laid out [N, channels..., o...] (`_channels`)."""
    n, c = xp.shape[:2]
    m = w.shape[0]
    g = cs.groups
    nsp = len(cs.kernel)
    chans = _channels(cs, m)
    signed = not b.is_unsigned(xp.dtype) and not b.is_unsigned(w.dtype)
    kw = dict(strides=list(cs.strides), dilations=list(cs.dilations))
    if signed and nsp == 2 and g == 1:
        init = b.filled([n, m, *cs.out], I32, 0)
        y = linalg.conv_2d_nchw_fchw(xp.value, b.constant(w).value, outs=[init], **kw)
        return b.T(y, I32)
    if signed and nsp == 2 and g == c == m:
        init = b.filled([n, m, *cs.out], I32, 0)
        y = linalg.depthwise_conv_2d_nchw_chw(xp.value, b.constant(w.reshape(c, *cs.kernel)).value,
                                              outs=[init], **kw)
        # One expand_shape (the unit F dim), which fusion propagates into the
        # depthwise loop: a collapse-to-1-D pair would stop it there.
        return b.expand(b.T(y, I32), [[0], [1, 2], [3], [4]], [n, *chans, *cs.out])
    wv = b.constant(np.ascontiguousarray(w.reshape(*chans, c // g, *cs.kernel)))
    return _conv_generic(_grouped_view(xp, cs), wv, cs, n)


def _grouped(arr, chans: Sequence[int], nsp: int) -> np.ndarray:
    """A per-output-channel array ([M] or scalar) over the glue's layout [channels..., 1...]."""
    arr = np.asarray(arr)
    if arr.ndim == 0:
        return arr
    return arr.reshape(*chans, *[1] * nsp)


@dataclass
class ConvOperands:
    x: b.T
    zx: Zp  # a scalar
    w: np.ndarray  # [M, C/group, k...]
    zw: Zp  # a scalar or [M]


def _signed_depthwise(ops: ConvOperands, cs: ConvShape) -> ConvOperands:
    """A uint8 input of a 2-D depthwise conv with int8 weights, read as int8:
    x - 128 (xor 0x80) and x_zero_point - 128 leave every x - zx as it
    was, and make the conv the named int8 x int8 op, whose vector kernel
    the u8 x s8 generic does not get. The xor fuses into the op that wrote
    x (a requantization then stores int8 directly)."""
    x, w, zx = ops.x, ops.w, ops.zx
    c = x.shape[1]
    if (len(cs.kernel) != 2 or not cs.groups == c == w.shape[0] or not b.is_unsigned(x.dtype)
            or b.is_unsigned(w.dtype) or zx.const is None):
        return ops
    i8 = np.dtype(np.int8)
    flip = b.scalar(-128, i8)
    xs = b.elementwise([x], i8, lambda v: arith.XOrIOp(v, flip).result)
    return ConvOperands(xs, Zp(np.asarray(int(zx.const) - 128, np.int8)), w, ops.zw)


def qconv(node, a: dict, ops: ConvOperands, bias=None, split_constant: bool = False):
    """sum (x - zx)(w - zw) (+ bias [M]) as int32 in the grouped layout
    [N, G, F, o...], the conv's shape, and the bound of |result|.

    split_constant: where every correction term is a compile-time constant
    (w_zero_point 0, x_zero_point and bias constants) and the bare
    sum x * w cannot leave int32, returns the bare sum and, fourth, that
    constant per channel (int64, unwrapped) for the requantization to fold;
    the fourth is None otherwise (and the result as without the flag)."""
    cs = _conv_shape(node, a, ops.x, ops.w.shape)
    ops = _signed_depthwise(ops, cs)
    x, w = ops.x, ops.w
    n, c = x.shape[:2]
    m = w.shape[0]
    g, nsp = cs.groups, len(cs.kernel)
    pad_value = b.scalar(int(ops.zx.const), x.dtype) if ops.zx.const is not None else scalar_of(ops.zx.value)
    xp = pad_spatial_value(x, cs.low, cs.high, pad_value)
    acc = conv_contraction(xp, w, cs)
    chans = _channels(cs, m)
    k = int(np.prod(w.shape[1:]))
    zw = ops.zw.const
    terms: list[list] = []
    if not ops.zx.is_zero:
        wsum = _grouped(w.reshape(m, -1).astype(np.int64).sum(axis=1), chans, nsp)
        terms.append([-1, ops.zx.factor(), wsum])
        if not ops.zw.is_zero:
            terms.append([k, ops.zx.factor(), _grouped(zw, chans, nsp)])
    if not ops.zw.is_zero:
        terms.append([-1, _grouped(zw, chans, nsp), _window_sum(_grouped_view(xp, cs), cs, n)])
    if bias is not None:
        terms.append([_grouped(bias, chans, nsp) if isinstance(bias, np.ndarray)
                      else b.reshape(bias, (*chans, *[1] * nsp))])
    wc = w.reshape(m, -1).astype(np.int64) - np.asarray(zw, np.int64).reshape(-1, 1)
    bound = _max_abs_centered(x.dtype, ops.zx) * int(np.abs(wc).sum(axis=1).max())
    if not split_constant:
        return add_terms(acc, terms), cs, bound
    bare = _max_abs(x.dtype) * int(np.abs(w.reshape(m, -1).astype(np.int64)).sum(axis=1).max())
    const = _constant_terms(terms)
    if const is None or bare > I32_MAX:
        return add_terms(acc, terms), cs, bound, None
    return acc, cs, bound, const


def _ungroup(y: b.T, cs: ConvShape) -> b.T:
    """[N, G, F, o...] back to [N, M, o...] (a view)."""
    if cs.groups == 1:
        return y
    n, g, f = y.shape[:3]
    return b.collapse(y, [[0], [1, 2], *[[3 + i] for i in range(len(cs.out))]], [n, g * f, *cs.out])


def _conv_operands(ctx, node, xi: int, zxi: int, wi: int, zwi: int) -> ConvOperands:
    x = _quant_input(ctx, node, xi, "x")
    w = _const(ctx, node, wi, "w")
    if w.dtype not in QUANT_TYPES:
        raise UnsupportedOp(node, f"w has element type {w.dtype}", _names(QUANT_TYPES))
    zx = _zero_point(ctx, node, zxi, x.dtype, "x_zero_point")
    shape = zx.const.shape if zx.const is not None else zx.value.shape
    if int(np.prod(shape)) != 1:
        raise UnsupportedOp(node, f"x_zero_point has shape {list(shape)}", "a scalar (per tensor)")
    if zx.const is not None:
        zx = Zp(zx.const.reshape(()))
    zw = _zero_point(ctx, node, zwi, w.dtype, "w_zero_point")
    if zw.const is None:
        raise UnsupportedOp(node, "w_zero_point is computed at run time", "a constant")
    zw = Zp(_per_channel(node, zw.const, w.shape[0], "w_zero_point"))
    return ConvOperands(x, zx, w, zw)


@importer("ConvInteger")
def import_conv_integer(ctx, node):
    """int32 conv(x - x_zero_point, w - w_zero_point) (wrapping int32)."""
    ops = _conv_operands(ctx, node, 0, 2, 1, 3)
    out, cs, _ = qconv(node, attrs(node), ops)
    return [_ungroup(out, cs)]


def requant_conv(node, a: dict, ops: ConvOperands, rq: Requant, bias=None, table=None) -> b.T:
    """A convolution requantized per output channel: the params of `rq` are
    scalars or [M], laid out here over [G, F, 1...]; then `table` ([256] or
    [M, 256], a merged qc::Lookup) if given."""
    out, cs, bound, const = qconv(node, a, ops, bias, split_constant=True)
    acc_bound = _acc_bound(bound, bias)
    _check_bound(node, bound if acc_bound is None else acc_bound)
    chans, nsp = _channels(cs, ops.w.shape[0]), len(cs.kernel)
    grq = Requant(_grouped(rq.mult, chans, nsp), _grouped(rq.offset, chans, nsp), rq.zy,
                  _grouped(rq.lo, chans, nsp), _grouped(rq.hi, chans, nsp), rq.out_dtype)
    then = None
    if table is not None:
        form = table_fit.fit(table, qrange(rq.out_dtype)[0])
        if form is not None:
            per = (lambda v: _grouped(v, chans, nsp)) if table.ndim == 2 else (lambda v: np.asarray(v)[0])
            then = table_fit.TableFit(per(form.a), per(form.b), form.shift, per(form.lo), per(form.hi), form.out_dtype)
    y = _ungroup(requantize(node, out, grq, acc_bound, then, acc_offset=const), cs)
    if table is not None and then is None:  # not affine, or no i32 form of the requantization
        y = lookup(y, table, 1 if table.ndim == 2 else None)
    return y


def _bias(ctx, node, i: int, m: int):
    """An int32 bias [M]: a constant (numpy) or a run-time tensor."""
    if i >= len(node.input) or not node.input[i]:
        return None
    c = ctx.const(node.input[i])
    t = ctx.get(node.input[i]) if c is None else None
    dtype, shape = (c.dtype, c.shape) if c is not None else (t.dtype, t.shape)
    if dtype != I32 or tuple(shape) != (m,):
        raise UnsupportedOp(node, f"B is {dtype}{list(shape)}", f"int32[{m}]")
    return c.astype(np.int64) if c is not None else t


@importer("QLinearConv")
def import_qlinear_conv(ctx, node):
    """y = saturate(round((conv(x - zx, w - zw) + B) * sx * sw / sy) + zy);
    sw (and zw) per tensor or per output channel."""
    return [_qlinear_conv(ctx, node, attrs(node), None)]


@importer("QLinearConv", domain=QC_DOMAIN)
def import_qlinear_conv_table(ctx, node):
    """QLinearConv then a qc::Lookup table (input 9, [256] or [M, 256];
    attribute table_axis), as qdq_fuse merges them: one integer op."""
    a = dict(attrs(node))
    a.pop("table_axis", None)
    return [_qlinear_conv(ctx, node, a, _merged_table(ctx, node, 9, _const(ctx, node, 3, "w").shape[0]))]


def _merged_table(ctx, node, i: int, m: int) -> np.ndarray:
    """A qc::Lookup table qdq_fuse merged into a conv as input i: [256] or [M, 256]."""
    table = _const(ctx, node, i, "table")
    if table.dtype not in QUANT_TYPES or table.shape not in ((256,), (m, 256)):
        raise UnsupportedOp(node, f"table is {table.dtype}{list(table.shape)}", f"int8/uint8 [256] or [{m}, 256]")
    return table


def _qlinear_conv(ctx, node, a: dict, table):
    ops = _conv_operands(ctx, node, 0, 2, 3, 5)
    m = ops.w.shape[0]
    sx = _per_tensor(node, _scale(ctx, node, 1, "x_scale"), "x_scale")
    sw = _per_channel(node, _scale(ctx, node, 4, "w_scale"), m, "w_scale")
    sy = _per_tensor(node, _scale(ctx, node, 6, "y_scale"), "y_scale")
    zy = _per_tensor(node, _const(ctx, node, 7, "y_zero_point"), "y_zero_point")
    if zy.dtype not in QUANT_TYPES:
        raise UnsupportedOp(node, f"y_zero_point has element type {zy.dtype}", _names(QUANT_TYPES))
    bias = _bias(ctx, node, 8, m)
    rq = Requant.plain(sx * sw / sy, int(zy), zy.dtype)
    return requant_conv(node, a, ops, rq, bias, table)


# ---------------------------------------------------------------- fused QDQ groups


def _fused_requant(ctx, node, n: int) -> Requant:
    """Inputs 4..8 of qc::RequantConv / RequantMatMul: mult and offset (float64,
    scalar or [n]), y_zero_point, lo and hi (int32, scalar or [n])."""
    mult = _per_channel(node, _const(ctx, node, 4, "mult").astype(np.float64), n, "mult")
    offset = _per_channel(node, _const(ctx, node, 5, "offset").astype(np.float64), n, "offset")
    zy = _per_tensor(node, _const(ctx, node, 6, "y_zero_point"), "y_zero_point")
    lo = _per_channel(node, _const(ctx, node, 7, "lo").astype(np.int64), n, "lo")
    hi = _per_channel(node, _const(ctx, node, 8, "hi").astype(np.int64), n, "hi")
    return Requant(mult, offset, int(zy), lo, hi, zy.dtype)


@importer("RequantConv", domain=QC_DOMAIN)
def import_requant_conv(ctx, node):
    """A QDQ Conv group (qdq_fuse.py): y = clamp(round(conv(x - zx, w - zw) * mult
    + offset) + zy, lo, hi), per output channel; Conv's attributes."""
    ops = _conv_operands(ctx, node, 0, 1, 2, 3)
    m = ops.w.shape[0]
    rq = _fused_requant(ctx, node, m)
    a = dict(attrs(node))
    axis = a.pop("table_axis", None)
    table = _merged_table(ctx, node, 10, m) if axis is not None else None
    return [requant_conv(node, a, ops, rq, _bias(ctx, node, 9, m), table)]


@importer("RequantMatMul", domain=QC_DOMAIN)
def import_requant_matmul(ctx, node):
    """A QDQ MatMul/Gemm group: y = clamp(round((a - za)(b - zb) * mult + offset)
    + zy, lo, hi), per column of b."""
    x = _quant_input(ctx, node, 0, "a")
    w = _quant_input(ctx, node, 2, "b")
    ops = MatMulOperands(x, _zero_point(ctx, node, 1, x.dtype, "a_zero_point"), w, ctx.const(node.input[2]),
                         _zero_point(ctx, node, 3, w.dtype, "b_zero_point"))
    n = w.shape[-1] if w.rank > 1 else 1
    return [requant_matmul(node, ops, _fused_requant(ctx, node, n), _bias(ctx, node, 9, n))]
