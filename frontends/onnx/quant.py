"""QuantizeLinear, DequantizeLinear (opsets 10 to 25) and DynamicQuantizeLinear.

    DequantizeLinear  y = (x - zero_point) * scale                  (float32 out)
    QuantizeLinear    y = saturate(round_half_even(x / scale) + zero_point)

The scale and zero point are per tensor (a scalar or one element), per axis
(1-D along `axis`, opset 13) or blocked (opset 21: the same rank as x, with
ceil(D / block_size) entries along `axis`, each covering block_size
consecutive elements). One linalg.generic reads them through its indexing
maps: () per tensor, (d_axis) per axis, (..., d_axis floordiv block, ...)
blocked, so they may be constants or run-time tensors alike.

These are the float boundaries of a quantized graph. Where DequantizeLinear
and QuantizeLinear surround an op qc knows (qdq_fuse.py), the graph-level
fusion has already replaced the group by an integer op; what reaches these
importers runs in float, exactly as the ONNX operators are defined.
int4/uint4 tensors exist only as constants: their DequantizeLinear folds at
compile time.

DynamicQuantizeLinear (uint8) computes its own scale and zero point from the
range of x (extended to contain 0):
    scale = (max - min) / 255   (1 when max == min, as onnxruntime; the onnx
                                 reference's 1/255 differs only in that output)
    zero_point = round_half_even(clamp(0 - min / scale, 0, 255))
    y = saturate(round_half_even(x / scale) + zero_point)
"""

from __future__ import annotations

import numpy as np
import onnx

from qc.errors import UnsupportedOp
from qc.mlir import arith, ir, math

from . import builder as b
from .attrs import attrs
from .qmath import ext, qrange, scalar_of
from .registry import importer

F32 = np.dtype(np.float32)
DQ_TYPES = tuple(np.dtype(t) for t in (np.int8, np.uint8, np.int16, np.uint16, np.int32))
Q_TYPES = tuple(np.dtype(t) for t in (np.int8, np.uint8, np.int16, np.uint16))
_ONNX_TO_NP = {onnx.TensorProto.INT8: np.int8, onnx.TensorProto.UINT8: np.uint8,
               onnx.TensorProto.INT16: np.int16, onnx.TensorProto.UINT16: np.uint16}


def _names(types) -> str:
    return ", ".join(str(t) for t in types)


def _param_map(node, x: b.T, p: b.T, what: str, axis: int, block: int) -> tuple[b.T, ir.AffineMap]:
    """The scale or zero point `p` as a generic operand over x's loops."""
    rank = x.rank
    if int(np.prod(p.shape)) == 1 and p.rank <= 1 and not block:
        return b.reshape(p, ()), ir.AffineMap.get(rank, 0, [])
    if not -rank <= axis < rank:
        raise UnsupportedOp(node, f"axis {axis} is out of range for a rank-{rank} input")
    axis %= rank
    d = x.shape[axis]
    if not block:
        if p.shape != (d,):
            raise UnsupportedOp(node, f"{what} has shape {list(p.shape)}; per-axis needs [{d}] (axis {axis})",
                                "a scalar, a 1-D tensor along axis, or blocked (opset 21)")
        return p, b.dims_map(rank, [axis])
    want = tuple(-(-d // block) if i == axis else s for i, s in enumerate(x.shape))
    if p.shape != want:
        raise UnsupportedOp(node, f"{what} has shape {list(p.shape)}; block_size {block} along axis {axis} "
                                  f"needs {list(want)}")
    exprs = [ir.AffineDimExpr.get(i) for i in range(rank)]
    exprs[axis] = ir.AffineFloorDivExpr.get(exprs[axis], ir.AffineConstantExpr.get(block))
    return p, ir.AffineMap.get(rank, 0, exprs)


def _layout(node, a: dict) -> tuple[int, int]:
    block = int(a.get("block_size", 0))
    if block < 0:
        raise UnsupportedOp(node, f"block_size {block} must be >= 0")
    return int(a.get("axis", 1)), block


def _scale(ctx, node) -> b.T:
    s = ctx.get(node.input[1])
    if s.dtype != F32:
        raise UnsupportedOp(node, f"scale has element type {s.dtype}", "float32")
    return s


def _zero_point(ctx, node, dtype) -> b.T | None:
    if len(node.input) < 3 or not node.input[2]:
        return None
    z = ctx.get(node.input[2])
    if dtype is not None and z.dtype != dtype:
        raise UnsupportedOp(node, f"zero point has element type {z.dtype}, x has {dtype}")
    return z


def _apply(node, x: b.T, params: list[b.T | None], out_dtype, axis: int, block: int, body) -> b.T:
    """One generic over x's shape; `body(x, scale, zero_point or None)`."""
    ins, maps = [x.value], [b.identity_map(x.rank)]
    present = []
    for what, p in zip(("scale", "zero point"), params):
        if p is None:
            continue
        v, m = _param_map(node, x, p, what, axis, block)
        ins.append(v.value)
        maps.append(m)
        present.append(what)
    maps.append(b.identity_map(x.rank))

    def inner(*args):
        vals = dict(zip(present, args[1:-1]))
        return body(args[0], vals.get("scale"), vals.get("zero point"))

    (res,) = b.generic(ins, [b.empty(x.shape, out_dtype)], maps, [b.PARALLEL] * x.rank, inner)
    return b.T(res, np.dtype(out_dtype))


def _to_f32(v: ir.Value, dtype) -> ir.Value:
    """An integer scalar as float32 (exact below 2^24; int32 rounds as the spec's cast does)."""
    return arith.SIToFPOp(ir.F32Type.get(), ext(v, dtype, 32)).result


@importer("DequantizeLinear")
def import_dequantize(ctx, node):
    a = attrs(node)
    x = ctx.get(node.input[0])
    if x.dtype not in DQ_TYPES:
        raise UnsupportedOp(node, f"x has element type {x.dtype}",
                            _names(DQ_TYPES) + " (int4/uint4 as constants, folded at compile time)")
    if int(a.get("output_dtype", 0)) not in (0, onnx.TensorProto.FLOAT):
        raise UnsupportedOp(node, f"output_dtype {a['output_dtype']}", "float32 (1)")
    axis, block = _layout(node, a)
    s = _scale(ctx, node)
    z = _zero_point(ctx, node, x.dtype)
    i32 = np.dtype(np.int32)

    def body(v, scale, zp):
        # (x - z) in int32 is exact for every 8- and 16-bit type.
        if zp is not None:
            v = arith.SubIOp(ext(v, x.dtype, 32), ext(zp, x.dtype, 32)).result
            return arith.MulFOp(_to_f32(v, i32), scale).result
        return arith.MulFOp(_to_f32(v, x.dtype), scale).result

    return [_apply(node, x, [s, z], F32, axis, block, body)]


def _quant_dtype(node, a: dict, z: b.T | None):
    want = int(a.get("output_dtype", 0))
    if want and want not in _ONNX_TO_NP:
        raise UnsupportedOp(node, f"output_dtype {onnx.TensorProto.DataType.Name(want)}",
                            "int8, uint8, int16, uint16")
    if z is not None:
        if want and np.dtype(_ONNX_TO_NP[want]) != z.dtype:
            raise UnsupportedOp(node, f"output_dtype {want} differs from the zero point's type {z.dtype}")
        return z.dtype
    return np.dtype(_ONNX_TO_NP[want]) if want else np.dtype(np.uint8)


def quantize_body(out_dtype):
    """The body of QuantizeLinear: saturate(round_half_even(x / s) + z).

    Written as round_half_even(clamp(x / s, qmin - z, qmax - z)) + z, the same
    values (rounding is monotone and keeps the integer bounds): the clamp
    comes first so that the conversion is exact, and the round and the
    conversion are then one instruction on x86 and RVV (qc-round-to-integer:
    vcvtps2dq, vfcvt.x.f.v), with the zero point added as an integer."""
    qmin, qmax = qrange(out_dtype)
    i32 = ir.IntegerType.get_signless(32)

    def body(v, scale, zp):
        q = arith.DivFOp(v, scale).result
        lo, hi = b.scalar(float(qmin), F32), b.scalar(float(qmax), F32)
        if zp is not None:
            zf = _to_f32(zp, out_dtype)
            lo, hi = arith.SubFOp(lo, zf).result, arith.SubFOp(hi, zf).result
        # maxnumf/minnumf: a NaN lands on the lower bound instead of being undefined.
        q = arith.MinNumFOp(arith.MaxNumFOp(q, lo).result, hi).result
        q = arith.FPToSIOp(i32, math.RoundEvenOp(q).result).result
        if zp is not None:
            q = arith.AddIOp(q, ext(zp, out_dtype, 32)).result
        return arith.TruncIOp(b.mlir_type(out_dtype), q).result

    return body


@importer("QuantizeLinear")
def import_quantize(ctx, node):
    a = attrs(node)
    x = ctx.get(node.input[0])
    if x.dtype != F32:
        raise UnsupportedOp(node, f"x has element type {x.dtype}", "float32")
    if int(a.get("precision", 0)) not in (0, onnx.TensorProto.FLOAT):
        raise UnsupportedOp(node, f"precision {a['precision']}", "0 (the input's) or float32 (1)")
    axis, block = _layout(node, a)
    s = _scale(ctx, node)
    z = _zero_point(ctx, node, None)
    out = _quant_dtype(node, a, z)
    if out not in Q_TYPES:
        raise UnsupportedOp(node, f"output type {out}", _names(Q_TYPES))
    return [_apply(node, x, [s, z], out, axis, block, quantize_body(out))]


@importer("DynamicQuantizeLinear")
def import_dynamic_quantize(ctx, node):
    x = ctx.get(node.input[0])
    if x.dtype != F32:
        raise UnsupportedOp(node, f"x has element type {x.dtype}", "float32")
    u8 = np.dtype(np.uint8)
    axes = list(range(x.rank))
    hi = b.reduce(x, axes, 0.0, lambda e, acc: arith.MaximumFOp(e, acc).result, keepdims=False)
    lo = b.reduce(x, axes, 0.0, lambda e, acc: arith.MinimumFOp(e, acc).result, keepdims=False)

    # The range starts at 0 (the reductions' initial value), so it always contains 0;
    # an empty range (x all zero) gets scale 1, as onnxruntime does.
    def scale_body(mx, mn):
        rng = arith.SubFOp(mx, mn).result
        same = arith.CmpFOp(arith.CmpFPredicate.OEQ, mx, mn).result
        scale = arith.DivFOp(rng, b.scalar(255.0, F32)).result
        return arith.SelectOp(same, b.scalar(1.0, F32), scale).result

    scale = b.elementwise([hi, lo], F32, scale_body)

    def zp_body(mn, s):
        z = arith.SubFOp(b.scalar(0.0, F32), arith.DivFOp(mn, s).result).result
        z = arith.MinNumFOp(arith.MaxNumFOp(z, b.scalar(0.0, F32)).result, b.scalar(255.0, F32)).result
        z = math.RoundEvenOp(z).result
        return arith.TruncIOp(b.mlir_type(u8), arith.FPToSIOp(ir.IntegerType.get_signless(32), z).result).result

    zp = b.elementwise([lo, scale], u8, zp_body)
    s_val, z_val = scalar_of(scale), scalar_of(zp)
    body = quantize_body(u8)
    y = b.elementwise([x], u8, lambda v: body(v, s_val, z_val))
    return [y, scale, zp]
