"""qc-qdepthwise-conv: int8 linalg.depthwise_conv_2d_nchw_chw (i8 x i8 -> i32)
as an all-parallel generic over the output with the window unrolled
(passes/depthwise_window.py): the sum of a window stays in a register, the
output is written once, and a constant fill of the init folds into the sum.

The product of two int8 values lies in [-16,256, 16,384], so it is computed
exactly in i16 and sign-extended for the i32 sum.

A separate pass from qc-depthwise-conv (f32 only), as qc-qconv-to-gemm is
from qc-conv-to-gemm. Runs before qc-linalg-cleanup, whose fusion may then
merge the elementwise ops after it. Needs static tensors; leaves a
linalg.generic on tensors.
"""

from __future__ import annotations

from dataclasses import dataclass

from qc.mlir import arith, ir

from .base import Pass, collect_ops
from .depthwise_window import unroll


@dataclass(frozen=True)
class QDepthwiseConv(Pass):
    """Needs linalg.depthwise_conv_2d_nchw_chw on static i8 x i8 -> i32
    tensors. Leaves an all-parallel linalg.generic over (n, c, oh, ow) with
    one operand per tap and i16 products."""

    name = "qc-qdepthwise-conv"

    def apply(self, module: ir.Module) -> None:
        for op in collect_ops(module.operation, ("linalg.depthwise_conv_2d_nchw_chw",)):
            _rewrite(op)


def _widths(values) -> list[int] | None:
    out = []
    for v in values:
        ty = v.type
        if not isinstance(ty, ir.RankedTensorType) or not ir.RankedTensorType(ty).has_static_shape:
            return None
        elem = ir.RankedTensorType(ty).element_type
        if not isinstance(elem, ir.IntegerType):
            return None
        out.append(ir.IntegerType(elem).width)
    return out


def _rewrite(op) -> None:
    x, w = list(op.inputs)
    (init,) = list(op.outputs)
    if _widths((x, w, init)) != [8, 8, 32]:
        return
    i16, i32 = ir.IntegerType.get_signless(16), ir.IntegerType.get_signless(32)

    def mac(p, q, acc):
        # The named op sign-extends both operands (int8 x int8).
        prod = arith.MulIOp(arith.ExtSIOp(i16, p).result, arith.ExtSIOp(i16, q).result).result
        return arith.AddIOp(acc, arith.ExtSIOp(i32, prod).result).result

    unroll(op, mac)
