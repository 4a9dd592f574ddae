"""qc-qdepthwise-conv: int8 linalg.depthwise_conv_2d_nchw_chw (i8 x i8 -> i32)
as a generic whose innermost loop runs along the output row, with 16-bit
products.

    out[n, c, oh, ow] += in[n, c, oh*sh + kh*dh, ow*sw + kw*dw] * w[c, kh, kw]

As qc-depthwise-conv does for floats, the loops are ordered (n, c, kh, kw,
oh, ow): the inner loop reads a row of the input (contiguous for stride 1)
and updates a row of the output with one broadcast weight, which LLVM
vectorizes. The product of two int8 values lies in [-16,256, 16,384], so it
is computed exactly in i16 and sign-extended for the i32 sum: on AVX2 one
vpmullw per 16 outputs instead of two vpmulld per 8.

A separate pass from qc-depthwise-conv (f32 only), as qc-qconv-to-gemm is
from qc-conv-to-gemm. Needs static tensors; leaves a linalg.generic on
tensors.
"""

from __future__ import annotations

from dataclasses import dataclass

from qc.mlir import arith, ir

from .base import Pass, collect_ops
from .conv_to_gemm import _ints


@dataclass(frozen=True)
class QDepthwiseConv(Pass):
    """Needs linalg.depthwise_conv_2d_nchw_chw on static i8 x i8 -> i32
    tensors. Leaves a linalg.generic with loops (n, c, kh, kw, oh, ow) and
    i16 products."""

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
    from qc.frontends.onnx import builder as b

    x, w = list(op.inputs)
    (init,) = list(op.outputs)
    if _widths((x, w, init)) != [8, 8, 32]:
        return
    attrs = op.operation.attributes
    sh, sw = _ints(attrs["strides"] if "strides" in attrs else None, (1, 1))
    dh, dw = _ints(attrs["dilations"] if "dilations" in attrs else None, (1, 1))
    d = [ir.AffineDimExpr.get(i) for i in range(6)]  # n, c, kh, kw, oh, ow
    maps = [
        ir.AffineMap.get(6, 0, [d[0], d[1], d[4] * sh + d[2] * dh, d[5] * sw + d[3] * dw]),
        ir.AffineMap.get(6, 0, [d[1], d[2], d[3]]),
        ir.AffineMap.get(6, 0, [d[0], d[1], d[4], d[5]]),
    ]
    iters = [b.PARALLEL, b.PARALLEL, b.REDUCTION, b.REDUCTION, b.PARALLEL, b.PARALLEL]
    i16, i32 = ir.IntegerType.get_signless(16), ir.IntegerType.get_signless(32)

    def mac(p, q, acc):
        # The named op sign-extends both operands (int8 x int8).
        prod = arith.MulIOp(arith.ExtSIOp(i16, p).result, arith.ExtSIOp(i16, q).result).result
        return arith.AddIOp(acc, arith.ExtSIOp(i32, prod).result).result

    with ir.InsertionPoint(op.operation), op.location:
        (res,) = b.generic([x, w], [init], maps, iters, mac)
    op.operation.results[0].replace_all_uses_with(res)
    op.operation.erase()
