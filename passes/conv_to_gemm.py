"""qc-conv-to-gemm: f32 linalg.conv_2d_nchw_fchw → (im2col +) a GEMM-shaped generic;
grouped convolutions of one image (conv_2d_ngchw_gfchw) → (the groups'
im2col +) a batch of GEMMs over the groups.

Per image, an NCHW convolution is a matrix product
    Y[f, (oh, ow)] += W[f, (c, kh, kw)] · X'[(c, kh, kw), (oh, ow)]
with X'[(c, kh, kw), (oh, ow)] = X[c, oh*sh + kh*dh, ow*sw + kw*dw].

- 1x1, stride 1: X' is X itself viewed as [C, H*W] — no copy at all.
- otherwise X' is materialized once (im2col, C*KH*KW x OH*OW per image), which
  is cheap next to the product it feeds (KH*KW times fewer bytes than flops),
  and lets every convolution use the register-blocked GEMM kernel.

The product is a linalg.generic with maps A(f, k), B(n, k, p), C(n, f, p):
qc-lower-gemm takes it after bufferization, with the weights shared across the
batch. Needs static shapes on tensors (run before bufferization); padding has
already been made explicit by the frontend (tensor.pad).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from qc.mlir import arith, ir

from .base import Pass, collect_ops
from .lower_gemm import IM2COL_ATTR


@dataclass(frozen=True)
class ConvToGemm(Pass):
    """Needs linalg.conv_2d_nchw_fchw on static f32 tensors. Leaves an im2col
    generic (unless 1x1 stride 1) and a contraction generic, reshaped back."""

    name = "qc-conv-to-gemm"

    def apply(self, module: ir.Module) -> None:
        for op in collect_ops(module.operation, ("linalg.conv_2d_nchw_fchw",)):
            _rewrite(op)
        for op in collect_ops(module.operation, ("linalg.conv_2d_ngchw_gfchw",)):
            _rewrite_grouped(op)


def static_f32_operands(op):
    """((input, weights, init), their tensor types) of a convolution on static
    f32 tensors, else None."""
    x, w = list(op.inputs)
    (init,) = list(op.outputs)
    tys = [ir.RankedTensorType(v.type) for v in (x, w, init)]
    if not all(t.has_static_shape and isinstance(t.element_type, ir.F32Type) for t in tys):
        return None
    return (x, w, init), tys


def _ints(attr, default) -> list[int]:
    if attr is None:
        return list(default)
    return [int(v) for v in ir.DenseIntElementsAttr(attr)]


def _rewrite(op) -> None:
    from qc.frontends.onnx import builder as b

    operands = static_f32_operands(op)
    if operands is None:
        return
    (x, w, init), tys = operands
    attrs = op.operation.attributes
    sh, sw = _ints(attrs["strides"] if "strides" in attrs else None, (1, 1))
    dh, dw = _ints(attrs["dilations"] if "dilations" in attrs else None, (1, 1))
    n, c, _, _ = tys[0].shape
    f, _, kh, kw = tys[1].shape
    _, _, oh, ow = tys[2].shape
    f32 = np.dtype(np.float32)
    with ir.InsertionPoint(op.operation), op.location:
        xt, wt, it = b.T(x, f32), b.T(w, f32), b.T(init, f32)
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
        (res,) = b.generic([wm.value, col.value], [acc.value], maps, iters,
                           lambda p, q, s: arith.AddFOp(s, arith.MulFOp(p, q).result).result)
        out = b.expand(b.T(res, f32), [[0], [1], [2, 3]], [n, f, oh, ow])
    op.operation.results[0].replace_all_uses_with(out.value)
    op.operation.erase()


def _rewrite_grouped(op) -> None:
    """A grouped convolution (ShuffleNet's, ResNeXt's) on one image: per
    group g, Y[g, f, p] += W[g, f, k] · X'[g, k, p], a batch of GEMMs over
    the groups. For 1x1 stride 1, X' is a view of X (no copy); otherwise the
    groups' im2col matrices, materialized once."""
    from qc.frontends.onnx import builder as b

    operands = static_f32_operands(op)
    if operands is None:
        return
    (x, w, init), tys = operands
    attrs = op.operation.attributes
    sh, sw = _ints(attrs["strides"] if "strides" in attrs else None, (1, 1))
    dh, dw = _ints(attrs["dilations"] if "dilations" in attrs else None, (1, 1))
    n, g, c, h, wd = tys[0].shape
    _, f, _, kh, kw = tys[1].shape
    _, _, _, oh, ow = tys[2].shape
    if n != 1:
        return  # a batch of images: the weights would be shared by some batch dims only; stays loops
    f32 = np.dtype(np.float32)
    k = c * kh * kw
    with ir.InsertionPoint(op.operation), op.location:
        xt, wt, it = b.T(x, f32), b.T(w, f32), b.T(init, f32)
        if kh == kw == 1 and sh == sw == 1:
            xm = b.collapse(xt, [[0, 1], [2], [3, 4]], [g, c, h * wd])
        else:  # one image: its groups are the im2col's batch
            xg = b.collapse(xt, [[0, 1], [2], [3], [4]], [g, c, h, wd])
            xm = _im2col(b, xg, kh, kw, oh, ow, sh, sw, dh, dw)
        wm = b.collapse(wt, [[0], [1], [2, 3, 4]], [g, f, k])
        acc = b.collapse(it, [[0, 1], [2], [3, 4]], [g, f, oh * ow])
        # loops (g, f, p, k): A(g, f, k), B(g, k, p), C(g, f, p)
        maps = [b.dims_map(4, [0, 1, 3]), b.dims_map(4, [0, 3, 2]), b.dims_map(4, [0, 1, 2])]
        iters = [b.PARALLEL, b.PARALLEL, b.PARALLEL, b.REDUCTION]
        (res,) = b.generic([wm.value, xm.value], [acc.value], maps, iters,
                           lambda p, q, s: arith.AddFOp(s, arith.MulFOp(p, q).result).result)
        out = b.expand(b.T(res, f32), [[0, 1], [2], [3, 4]], [1, g, f, oh, ow])
    op.operation.results[0].replace_all_uses_with(out.value)
    op.operation.erase()


def _im2col(b, x, kh, kw, oh, ow, sh, sw, dh, dw):
    """X'[n, c, kh, kw, oh, ow] = X[n, c, oh*sh + kh*dh, ow*sw + kw*dw], viewed as
    [N, C*KH*KW, OH*OW]."""
    n, c, _, _ = x.shape
    d = [ir.AffineDimExpr.get(i) for i in range(6)]  # n, c, kh, kw, oh, ow
    in_map = ir.AffineMap.get(6, 0, [d[0], d[1], d[4] * sh + d[2] * dh, d[5] * sw + d[3] * dw])
    shape6 = [n, c, kh, kw, oh, ow]
    (col6,) = b.generic([x.value], [b.empty(shape6, x.dtype)], [in_map, b.identity_map(6)],
                        [b.PARALLEL] * 6, lambda v, _out: v)
    # qc-lower-gemm gathers B's panels straight from x when it sees this.
    col6.owner.attributes[IM2COL_ATTR] = ir.DenseI64ArrayAttr.get([kh, kw, sh, sw, dh, dw])
    return b.collapse(b.T(col6, x.dtype), [[0], [1, 2, 3], [4, 5]], [n, c * kh * kw, oh * ow])
