"""qc-pool-window: f32 2-D max and sum pooling (linalg.pooling_nchw_max,
linalg.pooling_nchw_sum) as an all-parallel generic over the output with
the window unrolled, as qc-depthwise-conv does for the depthwise
convolution (passes/depthwise_window.py):

    out[n, c, oh, ow] = start (+|max) x[n, c, oh*sh + i*dh, ow*sw + j*dw] over (i, j)

The named ops' loops end in the window's kw taps, which LLVM does not
vectorize (a 3x3 stride-2 max pool ran at 0.3-0.45x onnxruntime's speed).
Unrolled, the loop along the output row is innermost: LLVM vectorizes it,
the running max or sum stays in a register across the taps, and the output
is written once. Sums add the taps in the named op's (kh, kw) order, the
same bits. A max keeps the running value unless a tap is greater (one
vmaxps per tap; the named op's arith.maximumf cost a compare and blends
more): a NaN tap is passed over, where maximumf would return NaN, and of
-0 and +0 the first is kept, where maximumf keeps +0. ONNX leaves both
open (onnxruntime returns NaN only where it is a window's last tap). The start
is the init's constant fill where it is one (no fill loop first), else the
init is read. Needs static f32 tensors; leaves a linalg.generic
on tensors.
"""

from __future__ import annotations

from dataclasses import dataclass

from qc.mlir import arith, ir, linalg, tensor

from .base import Pass, collect_ops
from .conv_to_gemm import _ints
from .depthwise_window import _fill_value, _owner

def _max(acc: ir.Value, x: ir.Value) -> ir.Value:
    """x > acc ? x : acc: one vmaxps on x86 (arith.maximumf, which orders
    -0 < +0 and propagates NaN, costs a compare and blends per tap)."""
    gt = arith.CmpFOp(arith.CmpFPredicate.OGT, x, acc).result
    return arith.SelectOp(gt, x, acc).result


def _add(acc: ir.Value, x: ir.Value) -> ir.Value:
    return arith.AddFOp(acc, x).result


_COMBINE = {"linalg.pooling_nchw_max": _max, "linalg.pooling_nchw_sum": _add}


@dataclass(frozen=True)
class PoolWindow(Pass):
    """Needs linalg.pooling_nchw_max / _sum on static f32 tensors. Leaves an
    all-parallel linalg.generic over (n, c, oh, ow) with no input operand:
    the body reads the window with tensor.extract."""

    name = "qc-pool-window"

    def apply(self, module: ir.Module) -> None:
        for op in collect_ops(module.operation, tuple(_COMBINE)):
            _rewrite(op)


def _rewrite(op) -> None:
    from qc.frontends.onnx import builder as b

    x, window = list(op.inputs)
    (init,) = list(op.outputs)
    tys = [ir.RankedTensorType(v.type) for v in (x, window, init)]
    if not all(t.has_static_shape for t in tys) or not all(isinstance(t.element_type, ir.F32Type)
                                                           for t in (tys[0], tys[2])):
        return
    combine = _COMBINE[op.operation.name]
    attrs = op.operation.attributes
    sh, sw = _ints(attrs["strides"] if "strides" in attrs else None, (1, 1))
    dh, dw = _ints(attrs["dilations"] if "dilations" in attrs else None, (1, 1))
    kh, kw = tys[1].shape
    start = _fill_value(init)

    def body(*args):
        acc = start if start is not None else args[-1]
        index = ir.IndexType.get()
        const = lambda v: arith.ConstantOp(index, v).result  # noqa: E731
        nn, cc, hh, ww = (linalg.IndexOp(i).result for i in range(4))
        row0, col0 = arith.MulIOp(hh, const(sh)).result, arith.MulIOp(ww, const(sw)).result
        for i in range(kh):
            row = arith.AddIOp(row0, const(i * dh)).result
            for j in range(kw):
                col = arith.AddIOp(col0, const(j * dw)).result
                acc = combine(acc, tensor.ExtractOp(x, [nn, cc, row, col]).result)
        return acc

    fill = _owner(init) if start is not None else None
    with ir.InsertionPoint(op.operation), op.location:
        # A constant init: the fill's destination, which the window never reads.
        out_init = fill.operands[-1] if fill is not None else init
        (res,) = b.generic([], [out_init], [b.identity_map(4)], [b.PARALLEL] * 4, body)
    op.operation.results[0].replace_all_uses_with(res)
    op.operation.erase()
    if fill is not None and not list(fill.results[0].uses):
        fill.erase()
