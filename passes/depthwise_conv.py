"""qc-depthwise-conv: f32 linalg.depthwise_conv_2d_nchw_chw as an
all-parallel generic over the output with the window unrolled
(passes/depthwise_window.py).

    out[n, c, oh, ow] = init + sum_{i,j} x[n, c, oh*sh + i*dh, ow*sw + j*dw] * w[c, i, j]

The named op's loop order (n, oh, ow, c, kh, kw) ends in the 3-wide window,
which nothing vectorizes. Unrolled, the loop along the output row is
innermost: per tap one vector FMA with a broadcast weight per 8 outputs on
AVX2, the sum in a register across the taps, one store per output; the
bias broadcast the frontend makes the init becomes the start of the sum
(no fill loop), and the Relu/Clip after it can fuse into the same loop.
The taps are summed in the named op's (kh, kw) order, as before.
Needs static f32 tensors; leaves a linalg.generic on tensors.
"""

from __future__ import annotations

from dataclasses import dataclass

from qc.mlir import arith, ir

from .base import Pass, collect_ops
from .conv_to_gemm import static_f32_operands
from .depthwise_window import unroll


@dataclass(frozen=True)
class DepthwiseConv(Pass):
    """Needs linalg.depthwise_conv_2d_nchw_chw on static f32 tensors. Leaves
    an all-parallel linalg.generic over (n, c, oh, ow) with one operand per
    tap."""

    name = "qc-depthwise-conv"

    def apply(self, module: ir.Module) -> None:
        for op in collect_ops(module.operation, ("linalg.depthwise_conv_2d_nchw_chw",)):
            _rewrite(op)


def _rewrite(op) -> None:
    if static_f32_operands(op) is None:
        return
    contract = ir.Attribute.parse("#arith.fastmath<contract>")  # one FMA per tap where there is one
    unroll(op, lambda p, q, s: arith.AddFOp(s, arith.MulFOp(p, q, fastmath=contract).result,
                                              fastmath=contract).result)
