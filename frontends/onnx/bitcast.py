"""BitCast (opset 26): the same bits read as another type of the same width.

Integers of one width share MLIR's signless type, so between them only the
numpy type changes; float <-> integer is arith.bitcast per element; bool
(one byte in memory, i1 in MLIR) reads as the byte 0 or 1 (and a byte as
bool is its lowest bit: only 0 and 1 are valid bool bytes).
"""

from __future__ import annotations

import numpy as np
import onnx

from qc.errors import UnsupportedOp
from qc.mlir import arith

from . import builder as b
from .attrs import attrs
from .importer import ONNX_DTYPES
from .registry import importer


def _bytes(dt) -> int:
    return np.dtype(dt).itemsize


@importer("BitCast")
def import_bitcast(ctx, node):
    x = ctx.get(node.input[0])
    to = int(attrs(node).get("to", 0))
    dst = ONNX_DTYPES.get(to)
    if dst is None:
        name = onnx.TensorProto.DataType.Name(to) if to in onnx.TensorProto.DataType.values() else str(to)
        raise UnsupportedOp(node, f"target type {name}", "float16/32/64, (u)int8/16/32/64, bool")
    if _bytes(dst) != _bytes(x.dtype):
        raise UnsupportedOp(node, f"{x.dtype} and {dst} differ in width", "types of the same width")
    src = x.dtype
    if src == dst:
        return [x]
    ty = b.mlir_type(dst)
    if src == np.bool_:
        return [b.elementwise([x], dst, lambda v: arith.ExtUIOp(ty, v).result)]
    if dst == np.bool_:
        return [b.elementwise([x], dst, lambda v: arith.TruncIOp(ty, v).result)]
    if b.is_float(src) or b.is_float(dst):
        return [b.elementwise([x], dst, lambda v: arith.BitcastOp(ty, v).result)]
    return [b.T(x.value, np.dtype(dst))]  # signless integers: the same value
