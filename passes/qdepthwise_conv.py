"""qc-qdepthwise-conv: int8 linalg.depthwise_conv_2d_nchw_chw (i8 x i8 -> i32)
as an all-parallel generic over the output with the window unrolled.

    out[n, c, oh, ow] = init + sum_{i,j} x[n, c, oh*sh + i*dh, ow*sw + j*dw] * w[c, i, j]

Each of the kh * kw taps is an operand of its own: a view of x starting at
(i*dh, j*dw), and w with the constant map (c, i, j). The loop over ow is then
innermost and reads kh * kw contiguous rows (stride 1), the window's sum
stays in a register, and the output is written once: no read-modify-write
of an i32 accumulator per tap, and no zero fill first (a constant fill of
the init is folded into the sum). The product of two int8 values lies in
[-16,256, 16,384], so it is computed exactly in i16 and sign-extended for
the i32 sum.

A separate pass from qc-depthwise-conv (f32 only), as qc-qconv-to-gemm is
from qc-conv-to-gemm. Runs before qc-linalg-cleanup, whose fusion may then
merge the elementwise ops after it. Needs static tensors; leaves a
linalg.generic on tensors.
"""

from __future__ import annotations

from dataclasses import dataclass

from qc.mlir import arith, ir, tensor

from .base import Pass, collect_ops
from .conv_to_gemm import _ints


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


def _fill_value(init: ir.Value):
    """The constant a linalg.fill writes into `init`, or None."""
    fill = getattr(init.owner, "operation", None)
    if fill is None or fill.name != "linalg.fill":
        return None
    value = fill.operands[0]
    const = getattr(value.owner, "operation", None)
    return value if const is not None and const.name == "arith.constant" else None


def _rewrite(op) -> None:
    from qc.frontends.onnx import builder as b

    x, w = list(op.inputs)
    (init,) = list(op.outputs)
    if _widths((x, w, init)) != [8, 8, 32]:
        return
    attrs = op.operation.attributes
    sh, sw = _ints(attrs["strides"] if "strides" in attrs else None, (1, 1))
    dh, dw = _ints(attrs["dilations"] if "dilations" in attrs else None, (1, 1))
    kh, kw = ir.RankedTensorType(w.type).shape[1:]
    n, c, oh, ow = ir.RankedTensorType(init.type).shape
    d = [ir.AffineDimExpr.get(i) for i in range(4)]  # n, c, oh, ow
    taps = [(i, j) for i in range(kh) for j in range(kw)]
    # Tap (i, j) reads the window of x that starts at (i*dh, j*dw), cut to
    # just the rows and columns it needs (a view): linalg infers the loop
    # ranges from the first operand, which must then not be larger than the
    # output. The weights of the tap are w[c, i, j].
    x_map = ir.AffineMap.get(4, 0, [d[0], d[1], d[2] * sh, d[3] * sw])
    w_maps = [ir.AffineMap.get(4, 0, [d[1], ir.AffineConstantExpr.get(i), ir.AffineConstantExpr.get(j)])
              for i, j in taps]
    i16, i32 = ir.IntegerType.get_signless(16), ir.IntegerType.get_signless(32)
    start_value = _fill_value(init)

    def window(*args):
        xs, ws, out = args[:len(taps)], args[len(taps):2 * len(taps)], args[-1]
        acc = start_value if start_value is not None else out
        for p, q in zip(xs, ws):
            # The named op sign-extends both operands (int8 x int8).
            prod = arith.MulIOp(arith.ExtSIOp(i16, p).result, arith.ExtSIOp(i16, q).result).result
            acc = arith.AddIOp(acc, arith.ExtSIOp(i32, prod).result).result
        return acc

    with ir.InsertionPoint(op.operation), op.location:
        # From a fill: the fill's own destination, which the sum never reads.
        out_init = init if start_value is None else init.owner.operation.operands[1]
        rows, cols = (oh - 1) * sh + 1, (ow - 1) * sw + 1
        x_ty = ir.RankedTensorType.get([n, c, rows, cols], ir.RankedTensorType(x.type).element_type)
        windows = [tensor.ExtractSliceOp(x_ty, x, [], [], [], [0, 0, i * dh, j * dw], [n, c, rows, cols],
                                         [1, 1, 1, 1]).result for i, j in taps]
        (res,) = b.generic(windows + [w] * len(taps), [out_init], [x_map] * len(taps) + w_maps + [b.identity_map(4)],
                           [b.PARALLEL] * 4, window)
    op.operation.results[0].replace_all_uses_with(res)
    op.operation.erase()
    fill = init.owner.operation if start_value is not None else None
    if fill is not None and not list(fill.results[0].uses):
        fill.erase()  # its value went into the sum
