"""qc-qconv-to-gemm: 8-bit integer 2-D convolutions → (im2col +) a GEMM-shaped
integer contraction, the int8 twin of qc-conv-to-gemm.

Per image, an NCHW convolution is a matrix product
    Y[f, (oh, ow)] += W[f, (c, kh, kw)] · X'[(c, kh, kw), (oh, ow)]
with X'[(c, kh, kw), (oh, ow)] = X[c, oh*sh + kh*dh, ow*sw + kw*dw], exactly as
for floats; here X and W are i8/u8 and Y accumulates in i32:
    Y += ext(W) * ext(X')      (extsi for int8, extui for uint8 operands)

Two forms of a quantized convolution arrive from the frontend
(frontends/onnx/qlinear.py):
- linalg.conv_2d_nchw_fchw with i8 operands and an i32 output (int8 x int8:
  the named op sign-extends both);
- a linalg.generic over (n, f, oh, ow, c, kh, kw) whose payload is
  acc + ext(x) * ext(w) (mixed signs, e.g. uint8 activations x int8 weights).

Both become the im2col copy on the 8-bit input (1x1 stride 1: a view of X, no
copy) and a linalg.generic with maps A(f, k), B(n, k, p), C(n, f, p) and the
same extensions, which qc-lower-qgemm turns into the packed integer kernel
(gathering B's panels straight from the image when it sees the im2col tag).

A separate pass from qc-conv-to-gemm: the f32 pass only takes f32 operands and
mul/add payloads, and the integer matching (two payload forms, the signedness
of each operand) would double its size. The im2col copy is the f32 pass's own
(`_im2col`), so both kernels see the same tag. Needs static shapes on
tensors, padding already explicit (tensor.pad); run after elementwise fusion
(which would fold the im2col copy back into a convolution-shaped generic).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from qc.mlir import arith, ir

from .base import Pass, collect_ops
from .conv_to_gemm import _im2col, _ints
from .lower_qgemm import payload_signs

I32 = np.dtype(np.int32)


@dataclass(frozen=True)
class Conv:
    """A 2-D convolution with 8-bit operands: its values, geometry and the
    signedness of the input and the weights (True: extui)."""

    x: ir.Value
    w: ir.Value
    init: ir.Value
    strides: tuple[int, int]
    dilations: tuple[int, int]
    x_unsigned: bool
    w_unsigned: bool


@dataclass(frozen=True)
class QConvToGemm(Pass):
    """Needs static i8/u8 -> i32 linalg.conv_2d_nchw_fchw (or its generic
    form with extsi/extui payloads) on tensors. Leaves an im2col generic
    (unless 1x1 stride 1) and an integer contraction generic, reshaped back."""

    name = "qc-qconv-to-gemm"

    def apply(self, module: ir.Module) -> None:
        for op in collect_ops(module.operation, ("linalg.conv_2d_nchw_fchw", "linalg.generic")):
            conv = match_named(op) if op.operation.name == "linalg.conv_2d_nchw_fchw" else match_generic(op)
            if conv is not None:
                _rewrite(op, conv)


def _tensor(v: ir.Value) -> ir.RankedTensorType | None:
    if not isinstance(v.type, ir.RankedTensorType):
        return None
    ty = ir.RankedTensorType(v.type)
    return ty if ty.has_static_shape else None


def _int_width(ty) -> int:
    return ir.IntegerType(ty.element_type).width if isinstance(ty.element_type, ir.IntegerType) else 0


def _types_fit(x, w, init) -> bool:
    """8-bit input and weights, a 32-bit accumulator, static NCHW / FCHW shapes."""
    tys = [_tensor(v) for v in (x, w, init)]
    if any(t is None or t.rank != 4 for t in tys):
        return False
    return [_int_width(t) for t in tys] == [8, 8, 32]


def match_named(op) -> Conv | None:
    """linalg.conv_2d_nchw_fchw on i8 x i8 -> i32: both operands sign-extended."""
    x, w = list(op.inputs)
    (init,) = list(op.outputs)
    if not _types_fit(x, w, init):
        return None
    attrs = op.operation.attributes
    strides = _ints(attrs["strides"] if "strides" in attrs else None, (1, 1))
    dilations = _ints(attrs["dilations"] if "dilations" in attrs else None, (1, 1))
    return Conv(x, w, init, tuple(strides), tuple(dilations), False, False)


def _linear(expr) -> dict[int, int] | None:
    """An affine expression as {dim: coefficient} (the constant term under
    -1), None if it is not linear in the dims."""
    if isinstance(expr, ir.AffineDimExpr):
        return {expr.position: 1}
    if isinstance(expr, ir.AffineConstantExpr):
        return {-1: expr.value}
    if not isinstance(expr, (ir.AffineAddExpr, ir.AffineMulExpr)):
        return None
    lhs, rhs = _linear(expr.lhs), _linear(expr.rhs)
    if lhs is None or rhs is None:
        return None
    if isinstance(expr, ir.AffineAddExpr):
        return {d: lhs.get(d, 0) + rhs.get(d, 0) for d in {*lhs, *rhs}}
    if set(rhs) == {-1}:
        return {d: c * rhs[-1] for d, c in lhs.items()}
    if set(lhs) == {-1}:
        return {d: c * lhs[-1] for d, c in rhs.items()}
    return None


def match_generic(op) -> Conv | None:
    """The frontend's generic convolution of one group over loops
    (n, f, oh, ow, c, kh, kw): x(n, c, oh*sh + kh*dh, ow*sw + kw*dw),
    w(f, c, kh, kw), y(n, f, oh, ow), payload acc + ext(x) * ext(w)."""
    ins, outs = list(op.inputs), list(op.outputs)
    if len(ins) != 2 or len(outs) != 1 or not _types_fit(ins[0], ins[1], outs[0]):
        return None
    iters = [str(a) for a in op.iterator_types]
    if len(iters) != 7 or ["reduction" in it for it in iters] != [False] * 4 + [True] * 3:
        return None
    maps = [ir.AffineMapAttr(a).value for a in op.indexing_maps]
    exprs = [[_linear(e) for e in m.results] for m in maps]
    if any(e is None for m in exprs for e in m):
        return None
    dim = lambda d: {d: 1}  # noqa: E731
    xm, wm, ym = exprs
    if wm != [dim(1), dim(4), dim(5), dim(6)] or ym != [dim(0), dim(1), dim(2), dim(3)]:
        return None
    if xm[0] != dim(0) or xm[1] != dim(4):
        return None
    geometry = []
    for e, (o, k) in zip(xm[2:], ((2, 5), (3, 6))):
        if set(e) != {o, k} or e[o] < 1 or e[k] < 1:
            return None
        geometry.append((e[o], e[k]))
    signs = payload_signs(op)
    if signs is None:
        return None
    (sh, dh), (sw, dw) = geometry
    return Conv(ins[0], ins[1], outs[0], (sh, sw), (dh, dw), *signs)


def _ext(v: ir.Value, unsigned: bool) -> ir.Value:
    i32 = ir.IntegerType.get_signless(32)
    return (arith.ExtUIOp if unsigned else arith.ExtSIOp)(i32, v).result


def _rewrite(op, conv: Conv) -> None:
    from qc.frontends.onnx import builder as b

    x_ty, w_ty, y_ty = (ir.RankedTensorType(v.type) for v in (conv.x, conv.w, conv.init))
    n, c, _, _ = x_ty.shape
    f, _, kh, kw = w_ty.shape
    _, _, oh, ow = y_ty.shape
    (sh, sw), (dh, dw) = conv.strides, conv.dilations
    x_dt = np.dtype(np.uint8 if conv.x_unsigned else np.int8)
    w_dt = np.dtype(np.uint8 if conv.w_unsigned else np.int8)
    with ir.InsertionPoint(op.operation), op.location:
        xt, wt, it = b.T(conv.x, x_dt), b.T(conv.w, w_dt), b.T(conv.init, I32)
        if kh == kw == 1 and sh == sw == 1:
            col = b.collapse(xt, [[0], [1], [2, 3]], [n, c, oh * ow])
        else:
            col = _im2col(b, xt, kh, kw, oh, ow, sh, sw, dh, dw)
        k = c * kh * kw
        wm = b.collapse(wt, [[0], [1, 2, 3]], [f, k])
        acc = b.collapse(it, [[0], [1], [2, 3]], [n, f, oh * ow])
        # loops (n, f, p, k): A(f, k), B(n, k, p), C(n, f, p)
        maps = [b.dims_map(4, [1, 3]), b.dims_map(4, [0, 3, 2]), b.dims_map(4, [0, 1, 2])]
        iters = [b.PARALLEL, b.PARALLEL, b.PARALLEL, b.REDUCTION]

        def mac(wv, xv, s):
            return arith.AddIOp(s, arith.MulIOp(_ext(wv, conv.w_unsigned), _ext(xv, conv.x_unsigned)).result).result

        (res,) = b.generic([wm.value, col.value], [acc.value], maps, iters, mac)
        out = b.expand(b.T(res, I32), [[0], [1], [2, 3]], [n, f, oh, ow])
    op.operation.results[0].replace_all_uses_with(out.value)
    op.operation.erase()
