"""qc-narrow-gemm: a convolution with few output pixels and many channels is
computed transposed, pixels as the GEMM's rows and channels as its columns.

The GEMM of an NCHW convolution, Y[f, p] = W[f, k] · X'[k, p], puts the
output pixels p along the micro-kernel's vectors (NR columns per panel). A
7 x 7 map has 49 of them: three full panels of 16 and one of a single
column, computed in an 8-lane vector, so 7 of 56 lanes are wasted (ResNet-
50's last stage, a fifth of its time, ran 20% slower than onnxruntime's
NCHWc convolutions); with several threads the 4 panels also split 2 + 2,
one of them nearly empty. Transposed,

    Y^T[p, f] = X'^T[p, k] · W^T[k, f]

the channels (a multiple of 16) fill every vector and panel, the weights
W^T are packed at compile time as before, the 49 pixels are 8 row tiles of
6 and one of 1 (a row tail costs what its rows do), and the panels split
evenly over threads. X'^T (im2col, pixel-major) is written by one gather
loop, Y^T is transposed back by another; both are small next to the
product. The bias or splat the accumulators start from becomes a per-column
start of Y^T, and a unary elementwise op right after the convolution (its
Relu) moves ahead of the transpose, where qc-lower-gemm folds it into the
kernel; the transpose then writes that op's destination (the next
convolution's padded input, where qc-pad-into-producer made it one).

Taken: f32 linalg.conv_2d_nchw_fchw of one image with constant weights,
F >= 64 channels out, a multiple of 16, and OH * OW pixels whose 8-lane
vectors waste more than 1 in 20 lanes (7 x 7: 49 of 56; 14 x 14 is 196 of
200: not taken). Runs before qc-conv-to-gemm.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from qc.mlir import arith, ir, linalg

from .base import Pass, collect_ops
from .channels_last_depthwise import depthwise_input
from .conv_to_gemm import _ints, static_f32_operands

LANES = 8  # the narrowest vector a panel of pixels is padded to (AVX2, NEON x2)
MIN_CHANNELS = 64
MAX_WASTE = 0.05
MAX_REGION_PIXELS = 14 * 14  # beside a depthwise convolution (see _beside_depthwise)


@dataclass(frozen=True)
class NarrowGemm(Pass):
    """Needs linalg.conv_2d_nchw_fchw on static f32 tensors (before
    qc-conv-to-gemm). Leaves a pixel-major im2col generic, linalg.matmul with
    the transposed weights, and a transposing generic."""

    name = "qc-narrow-gemm"

    def apply(self, module: ir.Module) -> None:
        for op in collect_ops(module.operation, ("linalg.conv_2d_nchw_fchw",)):
            _rewrite(op)


def wasteful(pixels: int, channels: int) -> bool:
    """Whether the pixels' vectors waste lanes enough to transpose."""
    padded = -(-pixels // LANES) * LANES
    return channels >= MIN_CHANNELS and channels % 16 == 0 and (padded - pixels) / padded > MAX_WASTE


def _constant(v: ir.Value):
    owner = getattr(v.owner, "operation", None)
    if owner is None or owner.name != "arith.constant":
        return None
    attr = owner.attributes["value"]
    return attr if isinstance(attr, ir.DenseElementsAttr) else None


def _rewrite(op) -> None:
    from qc.frontends.onnx import builder as b

    operands = static_f32_operands(op)
    if operands is None:
        return
    (x, w, init), tys = operands
    n, c, _, _ = tys[0].shape
    f, _, kh, kw = tys[1].shape
    _, _, oh, ow = tys[2].shape
    weights = _constant(w)
    if n != 1 or weights is None or not (wasteful(oh * ow, f) or _beside_depthwise(op, oh * ow, f)):
        return
    attrs = op.operation.attributes
    sh, sw = _ints(attrs["strides"] if "strides" in attrs else None, (1, 1))
    dh, dw = _ints(attrs["dilations"] if "dilations" in attrs else None, (1, 1))
    f32 = np.dtype(np.float32)
    p, k = oh * ow, c * kh * kw
    wt = np.ascontiguousarray(np.array(weights, dtype=np.float32).reshape(f, k).T)
    with ir.InsertionPoint(op.operation), op.location:
        # X'^T[(oh, ow), (c, kh, kw)] = X[0, c, oh*sh + kh*dh, ow*sw + kw*dw]
        d = [ir.AffineDimExpr.get(i) for i in range(5)]  # oh, ow, c, kh, kw
        zero = ir.AffineConstantExpr.get(0)
        in_map = ir.AffineMap.get(5, 0, [zero, d[2], d[0] * sh + d[3] * dh, d[1] * sw + d[4] * dw])
        (col5,) = b.generic([x], [b.empty([oh, ow, c, kh, kw], f32)], [in_map, b.identity_map(5)],
                            [b.PARALLEL] * 5, lambda v, _out: v)
        col = b.collapse(b.T(col5, f32), [[0, 1], [2, 3, 4]], [p, k])
        wt_value = arith.ConstantOp(ir.RankedTensorType.get([k, f], ir.F32Type.get()),
                                    ir.DenseElementsAttr.get(wt)).result
        start = _transposed_start(b, init, oh, ow, f)
        yt = linalg.matmul(col.value, wt_value, outs=[start])
        yt, consumer = _sink_unary(b, op.operation.results[0], yt)
        # Y[0, f, oh, ow] = Y^T[(oh, ow), f], in Y^T's order: the loop reads
        # rows of channels and writes each channel's pixels, in L2 (read in
        # Y's order, every load was a row of Y^T apart: 8 KiB for 2048).
        yt3 = b.expand(b.T(yt, f32), [[0, 1], [2]], [oh, ow, f])
        to_y = ir.AffineMap.get(3, 0, [ir.AffineDimExpr.get(2), ir.AffineDimExpr.get(0), ir.AffineDimExpr.get(1)])
        # Into the sunk op's own destination, which ignores its old values:
        # where that is the interior of the next convolution's padded input
        # (qc-pad-into-producer), the transpose writes it in place of a copy.
        dest = b.empty([f, oh, ow], f32) if consumer is None else \
            b.collapse(b.T(consumer.operands[len(consumer.operands) - 1], f32), [[0, 1], [2], [3]], [f, oh, ow]).value
        (y3,) = b.generic([yt3.value], [dest], [b.identity_map(3), to_y], [b.PARALLEL] * 3, lambda v, _out: v)
        y = b.expand(b.T(y3, f32), [[0, 1], [2], [3]], [1, f, oh, ow]).value
    if consumer is not None:
        consumer.results[0].replace_all_uses_with(y)
        consumer.erase()
    else:
        op.operation.results[0].replace_all_uses_with(y)
    op.operation.erase()


def _beside_depthwise(op, pixels: int, channels: int) -> bool:
    """Whether a convolution on a small map reads or feeds a depthwise
    convolution (qc-depthwise-conv's generic), which then runs channels-last
    on the pixel-major rows (qc-channels-last-depthwise): for the 1x1
    convolutions around a MobileNet v2 depthwise on 14 x 14, whose rows of
    14 pixels are a vector and a 6-lane tail per tap in NCHW."""
    if pixels > MAX_REGION_PIXELS or channels < MIN_CHANNELS or channels % 16:
        return False
    x = op.operation.operands[0]
    if getattr(x.owner, "operation", None) is not None and depthwise_input(x.owner.operation) is not None:
        return True
    y = op.operation.results[0]
    uses = list(y.uses)
    if len(uses) == 1 and uses[0].owner.name == "linalg.generic" and len(uses[0].owner.results) == 1:
        y = uses[0].owner.results[0]  # through its Relu or Clip
    for use in y.uses:
        pad = use.owner
        if pad.name in ("tensor.pad", "tensor.insert_slice") and pad.operands[0] == y:
            for u in pad.results[0].uses:  # the taps, in the depthwise generic's body
                taps = depthwise_input(u.owner.parent) if u.owner.name == "tensor.extract" else None
                if taps is not None and taps == pad.results[0]:
                    return True
    return False


def _transposed_start(b, init: ir.Value, oh: int, ow: int, f: int) -> ir.Value:
    """The accumulators' start as [pixels, channels]: a splat or a bias per
    channel rebuilt in that shape (qc-lower-gemm folds either), else init
    transposed."""
    f32 = np.dtype(np.float32)
    owner = getattr(init.owner, "operation", None)
    p = oh * ow
    if owner is not None and owner.name == "linalg.fill":
        return _fill(owner.operands[0], [p, f])
    if owner is not None and owner.name == "linalg.generic" and _all_parallel(owner):
        block = owner.regions[0].blocks[0]
        body = [o.operation for o in block.operations]
        n_in = len(block.arguments) - 1
        yielded = body[-1].operands[0] if len(body) == 1 and body[0].name == "linalg.yield" else None
        maps = [str(ir.AffineMapAttr(a).value) for a in owner.attributes["indexing_maps"]]
        if yielded is not None and n_in == 0 and getattr(yielded.owner, "operation", None) is not None \
                and yielded.owner.operation.name == "arith.constant":
            return _fill(yielded, [p, f])
        if yielded is not None and n_in == 1 and yielded == block.arguments[0] \
                and maps[0] == "(d0, d1, d2, d3) -> (d1)":
            (start,) = b.generic([owner.operands[0]], [b.empty([p, f], f32)],
                                 [b.dims_map(2, [1]), b.identity_map(2)], [b.PARALLEL] * 2, lambda v, _out: v)
            return start
    # Anything else: init itself, transposed.
    to = ir.AffineMap.get(3, 0, [ir.AffineConstantExpr.get(0), ir.AffineDimExpr.get(2), ir.AffineDimExpr.get(0),
                                 ir.AffineDimExpr.get(1)])
    (t3,) = b.generic([init], [b.empty([oh, ow, f], f32)], [to, b.identity_map(3)], [b.PARALLEL] * 3,
                      lambda v, _out: v)
    return b.collapse(b.T(t3, f32), [[0, 1], [2]], [p, f]).value


def _fill(value: ir.Value, shape: list[int]) -> ir.Value:
    from qc.frontends.onnx import builder as b

    return linalg.fill(value, outs=[b.empty(shape, np.dtype(np.float32))])


def _scalar_constant(v: ir.Value):
    owner = getattr(v.owner, "operation", None)
    if owner is None or owner.name != "arith.constant" or not isinstance(v.type, ir.F32Type):
        return None
    return owner.attributes["value"]


def _all_parallel(op: ir.Operation) -> bool:
    return all("parallel" in str(a) for a in op.attributes["iterator_types"])


def _sink_unary(b, y: ir.Value, yt: ir.Value):
    """(Y^T through the unary elementwise op that is Y's only use, that op)
    when there is one (a Relu, a Clip: it commutes with the transpose), else
    (Y^T, None)."""
    uses = list(y.uses)
    if len(uses) != 1:
        return yt, None
    user = uses[0].owner
    if user.name != "linalg.generic" or not _all_parallel(user) or len(user.results) != 1:
        return yt, None
    block = user.regions[0].blocks[0]
    if len(block.arguments) != 2 or user.operands[0] != y:
        return yt, None
    maps = [str(ir.AffineMapAttr(a).value) for a in user.attributes["indexing_maps"]]
    if maps != ["(d0, d1, d2, d3) -> (d0, d1, d2, d3)"] * 2:
        return yt, None
    body = [o.operation for o in block.operations]
    if any(o.name not in ("arith.maximumf", "arith.minimumf", "linalg.yield") for o in body):
        return yt, None
    inner = {o.results[0] for o in body[:-1]}
    for o in body:
        for v in o.operands:
            if v != block.arguments[0] and v not in inner and _scalar_constant(v) is None:
                return yt, None  # its output, or a value from elsewhere
    f32 = np.dtype(np.float32)
    shape = ir.RankedTensorType(yt.type).shape

    def clone_body(v, _out):
        mapping = {block.arguments[0]: v}

        def get(x):
            if x in mapping:
                return mapping[x]
            return arith.ConstantOp(x.type, _scalar_constant(x)).result  # defined here: it may come later

        for o in body[:-1]:
            cls = arith.MaximumFOp if o.name == "arith.maximumf" else arith.MinimumFOp
            attrs = {"fastmath": o.attributes["fastmath"]} if "fastmath" in o.attributes else {}
            mapping[o.results[0]] = cls(get(o.operands[0]), get(o.operands[1]), **attrs).result
        return get(body[-1].operands[0])

    (out,) = b.generic([yt], [b.empty(shape, f32)], [b.identity_map(2)] * 2, [b.PARALLEL] * 2, clone_body)
    return out, user
