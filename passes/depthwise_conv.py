"""qc-depthwise-conv: linalg.depthwise_conv_2d_nchw_chw as a generic whose
innermost loop runs along the output row.

    out[n, c, oh, ow] += in[n, c, oh*sh + kh*dh, ow*sw + kw*dw] * w[c, kh, kw]

The named op's loop order (n, oh, ow, c, kh, kw) ends in the 3-wide window,
which nothing vectorizes. Ordered (n, c, kh, kw, oh, ow) instead, the inner
loop reads a row of the input (contiguous for stride 1) and updates a row of
the output with one broadcast weight: a vector FMA per 8 outputs on AVX2.
Needs static f32 tensors; leaves a linalg.generic on tensors.
"""

from __future__ import annotations

from dataclasses import dataclass

from qc.mlir import arith, ir

from .base import Pass, collect_ops


@dataclass(frozen=True)
class DepthwiseConv(Pass):
    """Needs linalg.depthwise_conv_2d_nchw_chw on static f32 tensors. Leaves
    a linalg.generic with loops (n, c, kh, kw, oh, ow)."""

    name = "qc-depthwise-conv"

    def apply(self, module: ir.Module) -> None:
        for op in collect_ops(module.operation, ("linalg.depthwise_conv_2d_nchw_chw",)):
            _rewrite(op)


def _rewrite(op) -> None:
    from qc.frontends.onnx import builder as b

    from .conv_to_gemm import _ints

    x, w = list(op.inputs)
    (init,) = list(op.outputs)
    tys = [ir.RankedTensorType(v.type) for v in (x, w, init)]
    if not all(t.has_static_shape and isinstance(t.element_type, ir.F32Type) for t in tys):
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
    contract = ir.Attribute.parse("#arith.fastmath<contract>")  # one FMA per step where there is one
    with ir.InsertionPoint(op.operation), op.location:
        (res,) = b.generic([x, w], [init], maps, iters,
                           lambda p, q, s: arith.AddFOp(s, arith.MulFOp(p, q, fastmath=contract).result,
                                                        fastmath=contract).result)
    op.operation.results[0].replace_all_uses_with(res)
    op.operation.erase()
