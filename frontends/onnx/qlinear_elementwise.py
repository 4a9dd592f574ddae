"""Quantized elementwise ops and pooling on integers: com.microsoft's
QLinearAdd, QLinearMul, QLinearGlobalAveragePool, QLinearSigmoid,
QLinearLeakyRelu, QLinearConcat, and qc's own qc::Lookup and qc::MaxPool
(made by qdq_fuse.py).

Binary ops requantize in fixed point (qmath.py), with one shared shift:

    QLinearAdd  y = round((a - za) * sa/sy + (b - zb) * sb/sy) + zy
              = ((a - za) * ma + (b - zb) * mb) >>round r, + zy
    QLinearMul  y = round((a - za)(b - zb) * sa sb / sy) + zy

|(a - za)| <= 255 and |m| < 2^31 keep both products and their sum far below
2^63. QLinearGlobalAveragePool sums in int32 (N * 255 < 2^31 for up to 8.4M
elements per channel) and requantizes sum - N*zx by sx / (N sy).

Unary ops on 8-bit inputs are a lookup table of the 256 possible inputs,
computed at compile time with the float formula (dequantize, the function in
float32, quantize): exact by construction, one load per element.
"""

from __future__ import annotations

import numpy as np

from qc.errors import UnsupportedOp
from qc.mlir import arith, ir

from . import builder as b
from .attrs import attrs
from .conv import window
from .data_ops import insert_slice
from .qmath import (
    I32,
    I64,
    QC_DOMAIN,
    QUANT_TYPES,
    Requant,
    dequantize_values,
    ext,
    int_sum,
    lookup,
    pad_spatial_value,
    qrange,
    quantize_table,
    requant_params,
    requant_sum_high_word,
    requant_tail,
    requantize,
)
from .registry import importer

MS = "com.microsoft"
F32 = np.dtype(np.float32)


def _names(types) -> str:
    return ", ".join(str(t) for t in types)


def _qinput(ctx, node, i: int, what: str) -> b.T:
    x = ctx.get(node.input[i])
    if x.dtype not in QUANT_TYPES:
        raise UnsupportedOp(node, f"{what} has element type {x.dtype}", _names(QUANT_TYPES))
    return x


def _scalar_const(ctx, node, i: int, what: str, dtype=None, default=None):
    """A per-tensor constant input (scale or zero point); `default` when absent."""
    if i >= len(node.input) or not node.input[i]:
        if default is None:
            raise UnsupportedOp(node, f"{what} is missing")
        return default
    v = ctx.const(node.input[i])
    if v is None:
        raise UnsupportedOp(node, f"{what} is computed at run time", f"{what} as a constant (an initializer)")
    if v.size != 1:
        raise UnsupportedOp(node, f"{what} has shape {list(v.shape)}", "a scalar (per tensor)")
    if dtype is not None and v.dtype != dtype:
        raise UnsupportedOp(node, f"{what} has element type {v.dtype}", str(np.dtype(dtype)))
    return v.reshape(())


def _scale(ctx, node, i: int, what: str) -> float:
    s = _scalar_const(ctx, node, i, what, F32)
    if not np.isfinite(s) or s <= 0:
        raise UnsupportedOp(node, f"{what} = {float(s)} is not finite and positive")
    return float(s)


def _zp(ctx, node, i: int, what: str, dtype) -> int:
    return int(_scalar_const(ctx, node, i, what, dtype, default=np.zeros((), dtype)))


def _centered32(v: ir.Value, dtype, zp: int) -> ir.Value:
    """(v - zp) as i32."""
    x = ext(v, dtype, 32)
    return arith.SubIOp(x, b.scalar(zp, I32)).result if zp else x


def _centered_values(dtype, zp: int) -> np.ndarray:
    """Every value (v - zp) of an 8-bit v."""
    lo, hi = qrange(dtype)
    return np.arange(lo, hi + 1, dtype=np.int64) - zp


def _centered(v: ir.Value, dtype, zp: int) -> ir.Value:
    """(v - zp) as i64."""
    x = ext(v, dtype, 64)
    return arith.SubIOp(x, b.scalar(zp, I64)).result if zp else x


# ---------------------------------------------------------------- binary


def _binary_operands(ctx, node):
    a = _qinput(ctx, node, 0, "A")
    c = _qinput(ctx, node, 3, "B")
    if a.dtype != c.dtype:
        raise UnsupportedOp(node, f"A is {a.dtype}, B is {c.dtype}", "operands of one type")
    try:
        np.broadcast_shapes(a.shape, c.shape)
    except ValueError:
        raise UnsupportedOp(node, f"shapes {list(a.shape)} and {list(c.shape)} do not broadcast") from None
    sa, sb, sy = _scale(ctx, node, 1, "A_scale"), _scale(ctx, node, 4, "B_scale"), _scale(ctx, node, 6, "C_scale")
    za, zb = _zp(ctx, node, 2, "A_zero_point", a.dtype), _zp(ctx, node, 5, "B_zero_point", a.dtype)
    zy = _zp(ctx, node, 7, "C_zero_point", a.dtype)
    return a, c, sa, sb, sy, za, zb, zy


@importer("QLinearAdd", domain=MS)
def import_qlinear_add(ctx, node):
    a, c, sa, sb, sy, za, zb, zy = _binary_operands(ctx, node)
    rq = Requant.plain(np.float64(sa) / sy, zy, a.dtype)
    fast = requant_sum_high_word(node, rq, [np.float64(sa) / sy, np.float64(sb) / sy],
                                 [_centered_values(a.dtype, za), _centered_values(c.dtype, zb)])
    if fast is not None:
        fparams, fbody = fast

        def body_i32(x, y, *args):
            return fbody([_centered32(x, a.dtype, za), _centered32(y, c.dtype, zb)], fparams.values(args))

        return [b.elementwise([a, c, *fparams.operands], a.dtype, body_i32)]
    params, _ = requant_params(node, rq, extra_mults=[np.float64(sb) / sy])

    def body(x, y, *args):
        v = params.values(args)
        p = arith.AddIOp(arith.MulIOp(_centered(x, a.dtype, za), v["m"]).result,
                         arith.MulIOp(_centered(y, c.dtype, zb), v["m1"]).result).result
        return requant_tail(v, p, a.dtype)

    return [b.elementwise([a, c, *params.operands], a.dtype, body)]


@importer("QLinearMul", domain=MS)
def import_qlinear_mul(ctx, node):
    a, c, sa, sb, sy, za, zb, zy = _binary_operands(ctx, node)
    rq = Requant.plain(np.float64(sa) * sb / sy, zy, a.dtype)
    params, _ = requant_params(node, rq)

    def body(x, y, *args):
        v = params.values(args)
        prod = arith.MulIOp(_centered(x, a.dtype, za), _centered(y, c.dtype, zb)).result
        return requant_tail(v, arith.MulIOp(prod, v["m"]).result, a.dtype)

    return [b.elementwise([a, c, *params.operands], a.dtype, body)]


# ---------------------------------------------------------------- pooling


@importer("QLinearGlobalAveragePool", domain=MS)
def import_qlinear_global_avgpool(ctx, node):
    """y = round((sum x - n zx) * sx / (n sy)) + zy over the spatial dims (kept as 1s)."""
    x = _qinput(ctx, node, 0, "X")
    if x.rank < 3:
        raise UnsupportedOp(node, f"input of rank {x.rank}", "rank >= 3")
    channels_last = int(attrs(node).get("channels_last", 0))
    if channels_last not in (0, 1):
        raise UnsupportedOp(node, f"channels_last {channels_last}", "0 or 1")
    sx, sy = _scale(ctx, node, 1, "x_scale"), _scale(ctx, node, 3, "y_scale")
    zx, zy = _zp(ctx, node, 2, "x_zero_point", x.dtype), _zp(ctx, node, 4, "y_zero_point", x.dtype)
    spatial = list(range(1, x.rank - 1)) if channels_last else list(range(2, x.rank))
    count = int(np.prod([x.shape[d] for d in spatial]))
    if count * 255 >= 2**31:
        raise UnsupportedOp(node, f"{count} elements per channel could overflow the int32 sum",
                            "fewer than 8,421,504")
    s = int_sum(x, spatial)
    if zx:
        s = b.elementwise([s], I32, lambda v: arith.SubIOp(v, b.scalar(count * zx, I32)).result)
    return [requantize(node, s, Requant.plain(np.float64(sx) / (count * np.float64(sy)), zy, x.dtype))]


@importer("MaxPool", domain=QC_DOMAIN)
def import_int_maxpool(ctx, node):
    """MaxPool of a quantized tensor: max commutes with the order-preserving
    dequantization, so it runs on the integers (padding is the type's minimum)."""
    x = _qinput(ctx, node, 0, "X")
    a = attrs(node)
    if x.rank not in (3, 4, 5):
        raise UnsupportedOp(node, f"input of rank {x.rank}", "rank 3, 4 or 5")
    if "kernel_shape" not in a:
        raise UnsupportedOp(node, "kernel_shape is missing")
    kernel = [int(k) for k in a["kernel_shape"]]
    if len(kernel) != x.rank - 2 or any(k < 1 for k in kernel):
        raise UnsupportedOp(node, f"kernel_shape {kernel} does not fit a rank-{x.rank} input")
    if int(a.get("storage_order", 0)) != 0:
        raise UnsupportedOp(node, "storage_order 1", "0 (no Indices output)")
    ceil_mode = int(a.get("ceil_mode", 0))
    win = window(node, a, x.shape[2:], kernel, ceil_mode=bool(ceil_mode))
    qmin, _ = qrange(x.dtype)
    xp = pad_spatial_value(x, win.low, win.high_fill, b.scalar(qmin, x.dtype))
    nsp = len(kernel)
    rank = 2 + 2 * nsp  # loops: n, c, o..., k...
    d = ir.AffineDimExpr.get
    x_map = ir.AffineMap.get(rank, 0, [d(0), d(1), *[d(2 + i) * win.strides[i] + d(2 + nsp + i) * win.dilations[i]
                                                     for i in range(nsp)]])
    k_map = b.dims_map(rank, list(range(2 + nsp, rank)))
    out_map = b.dims_map(rank, list(range(2 + nsp)))
    init = b.filled([*x.shape[:2], *win.out], x.dtype, qmin)
    maxi = arith.MaxUIOp if b.is_unsigned(x.dtype) else arith.MaxSIOp
    (res,) = b.generic([xp.value, b.empty(kernel, x.dtype)], [init], [x_map, k_map, out_map],
                       [b.PARALLEL] * (2 + nsp) + [b.REDUCTION] * nsp, lambda v, _k, acc: maxi(v, acc).result)
    return [b.T(res, x.dtype)]


# ---------------------------------------------------------------- lookup tables


def _unary_table(ctx, node, fn) -> tuple[b.T, np.ndarray]:
    """X and the table y[q] = quantize(fn(dequantize(q))) over X's 256 values."""
    x = _qinput(ctx, node, 0, "X")
    sx, sy = _scale(ctx, node, 1, "X_scale"), _scale(ctx, node, 3, "Y_scale")
    zx, zy = _zp(ctx, node, 2, "X_zero_point", x.dtype), _zp(ctx, node, 4, "Y_zero_point", x.dtype)
    real = dequantize_values(x.dtype, sx, zx)
    with np.errstate(over="ignore"):
        return x, quantize_table(fn(real), sy, zy, x.dtype)


@importer("QLinearSigmoid", domain=MS)
def import_qlinear_sigmoid(ctx, node):
    x, table = _unary_table(ctx, node, lambda v: (np.float32(1) / (np.float32(1) + np.exp(-v))).astype(np.float32))
    return [lookup(x, table)]


@importer("QLinearLeakyRelu", domain=MS)
def import_qlinear_leaky_relu(ctx, node):
    alpha = np.float32(attrs(node).get("alpha", 0.01))
    x, table = _unary_table(ctx, node, lambda v: np.where(v >= 0, v, v * alpha).astype(np.float32))
    return [lookup(x, table)]


@importer("Lookup", domain=QC_DOMAIN)
def import_lookup(ctx, node):
    """y = table[x] (table [256]) or table[c, x] (table [C, 256], c the index
    along `axis`): a fused DequantizeLinear -> elementwise ops -> QuantizeLinear."""
    x = _qinput(ctx, node, 0, "X")
    table = ctx.const(node.input[1])
    if table is None or table.dtype not in QUANT_TYPES or table.shape[-1:] != (256,) or table.ndim > 2:
        raise UnsupportedOp(node, "the table must be a constant int8/uint8 [256] or [C, 256]")
    axis = None
    if table.ndim == 2:
        axis = int(attrs(node).get("axis", 1)) % x.rank
        if x.shape[axis] != table.shape[0]:
            raise UnsupportedOp(node, f"table has {table.shape[0]} rows, X has {x.shape[axis]} along axis {axis}")
    return [lookup(x, table, axis)]


# ---------------------------------------------------------------- concat


def requantize_to(x: b.T, sx: float, zx: int, sy: float, zy: int, out_dtype) -> b.T:
    """x (scale sx, zero point zx) in another quantization: a 256-entry table."""
    if (sx, zx) == (sy, zy) and x.dtype == np.dtype(out_dtype):
        return x
    return lookup(x, quantize_table(dequantize_values(x.dtype, sx, zx), sy, zy, out_dtype))


@importer("QLinearConcat", domain=MS)
def import_qlinear_concat(ctx, node):
    """Each input requantized to Y's scale and zero point (a no-op where they
    are equal), then concatenated."""
    a = attrs(node)
    if len(node.input) < 5 or (len(node.input) - 2) % 3:
        raise UnsupportedOp(node, f"{len(node.input)} inputs", "Y_scale, Y_zero_point, then (X, scale, zero point) triples")
    sy = _scale(ctx, node, 0, "Y_scale")
    zy_arr = _scalar_const(ctx, node, 1, "Y_zero_point")
    if zy_arr.dtype not in QUANT_TYPES:
        raise UnsupportedOp(node, f"Y_zero_point has element type {zy_arr.dtype}", _names(QUANT_TYPES))
    out_dtype, zy = zy_arr.dtype, int(zy_arr)
    parts = []
    for i in range(2, len(node.input), 3):
        x = _qinput(ctx, node, i, f"input {i}")
        sx, zx = _scale(ctx, node, i + 1, f"input {i + 1}"), _zp(ctx, node, i + 2, f"input {i + 2}", x.dtype)
        parts.append(requantize_to(x, sx, zx, sy, zy, out_dtype))
    rank = parts[0].rank
    axis = int(a.get("axis", 0))
    if not -rank <= axis < rank:
        raise UnsupportedOp(node, f"axis {axis} is out of range for rank {rank}")
    axis %= rank
    for p in parts:
        if p.rank != rank or any(p.shape[d] != parts[0].shape[d] for d in range(rank) if d != axis):
            raise UnsupportedOp(node, "input shapes differ outside the concat axis")
    shape = list(parts[0].shape)
    shape[axis] = sum(p.shape[axis] for p in parts)
    out = b.empty(shape, out_dtype)
    offset = 0
    for p in parts:
        out = insert_slice(p, out, [offset if d == axis else 0 for d in range(rank)])
        offset += p.shape[axis]
    return [b.T(out, np.dtype(out_dtype))]
