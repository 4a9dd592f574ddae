"""Cast and CastLike between float16/32/64, (u)int8/16/32/64 and bool.

One linalg.generic with one arith conversion per element:
  float → float   extf / truncf (round to nearest even)
  float → int     fptosi / fptoui: truncation toward zero, as ONNX says;
                  out-of-range values are undefined in ONNX and here
  int   → float   sitofp / uitofp, by the source's signedness
  int   → int     extsi / extui (by the source's signedness) or trunci;
                  same width (int32 ↔ uint32) reinterprets the bits, no op
  x     → bool    x != 0 (NaN is true, as numpy's astype(bool))
  bool  → x       0 or 1 (extui / uitofp of the i1)
"""

from __future__ import annotations

import numpy as np
import onnx

from qc.errors import UnsupportedOp
from qc.mlir import arith, ir

from . import builder as b
from .attrs import attrs
from .registry import importer

BOOL = np.dtype(np.bool_)
CAST_TYPES = {
    onnx.TensorProto.FLOAT: np.dtype(np.float32),
    onnx.TensorProto.DOUBLE: np.dtype(np.float64),
    onnx.TensorProto.FLOAT16: np.dtype(np.float16),
    onnx.TensorProto.INT8: np.dtype(np.int8),
    onnx.TensorProto.UINT8: np.dtype(np.uint8),
    onnx.TensorProto.INT16: np.dtype(np.int16),
    onnx.TensorProto.UINT16: np.dtype(np.uint16),
    onnx.TensorProto.INT32: np.dtype(np.int32),
    onnx.TensorProto.UINT32: np.dtype(np.uint32),
    onnx.TensorProto.INT64: np.dtype(np.int64),
    onnx.TensorProto.UINT64: np.dtype(np.uint64),
    onnx.TensorProto.BOOL: BOOL,
}
CAST_TYPE_NAMES = "float16, float32, float64, (u)int8/16/32/64, bool"


def _bits(dt) -> int:
    return 1 if dt == BOOL else np.dtype(dt).itemsize * 8


def convert_scalar(v: ir.Value, src: np.dtype, dst: np.dtype) -> ir.Value:
    """One element of numpy type `src` converted to `dst` (both CAST_TYPES)."""
    if src == dst:
        return v
    ty = b.mlir_type(dst)
    if dst == BOOL:
        if b.is_float(src):
            return arith.CmpFOp(arith.CmpFPredicate.UNE, v, b.scalar(0.0, src)).result
        return arith.CmpIOp(arith.CmpIPredicate.ne, v, b.scalar(0, src)).result
    # bool is an unsigned 0/1 from here on
    src_unsigned = b.is_unsigned(src) or src == BOOL
    if b.is_float(src) and b.is_float(dst):
        if _bits(src) < _bits(dst):
            return arith.ExtFOp(ty, v).result
        return arith.TruncFOp(ty, v).result
    if b.is_float(src):
        return (arith.FPToUIOp if b.is_unsigned(dst) else arith.FPToSIOp)(ty, v).result
    if b.is_float(dst):
        return (arith.UIToFPOp if src_unsigned else arith.SIToFPOp)(ty, v).result
    if _bits(src) < _bits(dst):
        return (arith.ExtUIOp if src_unsigned else arith.ExtSIOp)(ty, v).result
    if _bits(src) > _bits(dst):
        return arith.TruncIOp(ty, v).result
    return v  # same width, other signedness: the same bits


def cast(x: b.T, dst: np.dtype) -> b.T:
    dst = np.dtype(dst)
    if x.dtype == dst:
        return x
    if _bits(x.dtype) == _bits(dst) and not b.is_float(x.dtype) and not b.is_float(dst):
        return b.T(x.value, dst)  # signless in MLIR: only the numpy type changes
    return b.elementwise([x], dst, lambda a: convert_scalar(a, x.dtype, dst))


def _check_source(node, x: b.T) -> None:
    if x.dtype not in CAST_TYPES.values():
        raise UnsupportedOp(node, f"input element type {x.dtype} is not supported", CAST_TYPE_NAMES)


@importer("Cast")
def import_cast(ctx, node):
    x = ctx.get(node.input[0])
    _check_source(node, x)
    to = attrs(node).get("to")
    if to not in CAST_TYPES:
        name = onnx.TensorProto.DataType.Name(to) if to is not None else "missing"
        raise UnsupportedOp(node, f"target type {name} is not supported", CAST_TYPE_NAMES)
    return [cast(x, CAST_TYPES[to])]


@importer("CastLike")
def import_cast_like(ctx, node):
    x = ctx.get(node.input[0])
    _check_source(node, x)
    # Only the type of `target_type` matters: a constant is not materialized.
    like = ctx.const(node.input[1])
    dst = like.dtype if like is not None else ctx.get(node.input[1]).dtype
    if dst not in CAST_TYPES.values():
        raise UnsupportedOp(node, f"target type {dst} is not supported", CAST_TYPE_NAMES)
    return [cast(x, dst)]
