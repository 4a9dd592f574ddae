"""Col2Im (float32): sum sliding blocks back into an image, im2col's adjoint.

Input [N, C * prod(block), prod(blocks)]; each element (n, c, kernel offset
k, block position l) lands on image position y = l * stride - pad_begin +
k * dilation per spatial dim, and overlapping blocks add up. Written from
the image's side, one generic over (n, c, y..., k...) with k reduced:
    l = (y + pad_begin - k * dilation) / stride
counts when the division is exact and 0 <= l < blocks. image_shape and
block_shape must be compile-time constants.
"""

from __future__ import annotations

import numpy as np

from qc.errors import UnsupportedOp
from qc.mlir import arith, ir, linalg, tensor

from . import builder as b
from .attrs import attrs
from .conv import check_f32
from .registry import importer
from .shape_fns import const_ints


@importer("Col2Im")
def import_col2im(ctx, node):
    a = attrs(node)
    x = ctx.get(node.input[0])
    check_f32(node, "input", x)
    image = const_ints(ctx, node, 1, "image_shape")
    block = const_ints(ctx, node, 2, "block_shape")
    m = len(image)
    strides = [int(v) for v in a.get("strides", [1] * m)]
    dilations = [int(v) for v in a.get("dilations", [1] * m)]
    pads = [int(v) for v in a.get("pads", [0] * 2 * m)]
    if len(block) != m or len(strides) != m or len(dilations) != m or len(pads) != 2 * m or x.rank != 3:
        raise UnsupportedOp(node, f"input {list(x.shape)}, image_shape {image}, block_shape {block}",
                            "3-D input and one block size, stride, dilation and pad pair per image dim")
    if min(image + block + strides + dilations) < 1 or min(pads) < 0:
        raise UnsupportedOp(node, "sizes, strides and dilations must be >= 1, pads >= 0")
    kernel = int(np.prod(block))
    blocks = [(i + pads[d] + pads[d + m] - dilations[d] * (block[d] - 1) - 1) // strides[d] + 1
              for d, i in enumerate(image)]
    if x.shape[1] % kernel or x.shape[2] != int(np.prod(blocks)) or min(blocks) < 1:
        raise UnsupportedOp(node, f"input {list(x.shape)} for {blocks} blocks of {block}",
                            f"[N, C * {kernel}, {int(np.prod(blocks))}]")
    chans = x.shape[1] // kernel
    out_shape = (x.shape[0], chans, *image)
    rank = 2 + 2 * m  # n, c, y..., k...
    idx_ty = ir.IndexType.get()

    def c(v):
        return arith.ConstantOp(idx_ty, v).result

    def body(_k, acc):
        at = [linalg.IndexOp(d).result for d in range(rank)]
        ys, ks = at[2:2 + m], at[2 + m:]
        valid, l_flat, k_flat = None, c(0), c(0)
        for d in range(m):
            t = arith.SubIOp(arith.AddIOp(ys[d], c(pads[d])).result,
                             arith.MulIOp(ks[d], c(dilations[d])).result).result
            l = arith.DivSIOp(t, c(strides[d])).result
            ok = arith.AndIOp(arith.CmpIOp(arith.CmpIPredicate.eq, arith.RemSIOp(t, c(strides[d])).result,
                                           c(0)).result,
                              arith.AndIOp(arith.CmpIOp(arith.CmpIPredicate.sge, t, c(0)).result,
                                           arith.CmpIOp(arith.CmpIPredicate.slt, l, c(blocks[d])).result).result).result
            valid = ok if valid is None else arith.AndIOp(valid, ok).result
            l = arith.MinSIOp(arith.MaxSIOp(l, c(0)).result, c(blocks[d] - 1)).result
            l_flat = arith.AddIOp(arith.MulIOp(l_flat, c(blocks[d])).result, l).result
            k_flat = arith.AddIOp(arith.MulIOp(k_flat, c(block[d])).result, ks[d]).result
        channel = arith.AddIOp(arith.MulIOp(at[1], c(kernel)).result, k_flat).result
        v = tensor.ExtractOp(x.value, [at[0], channel, l_flat]).result
        return arith.SelectOp(valid, arith.AddFOp(acc, v).result, acc).result

    # The kernel loops' bounds come from a shape-only operand.
    kshape = b.empty(block, np.float32)
    (res,) = b.generic([kshape], [b.filled(out_shape, np.float32, 0.0)],
                       [b.dims_map(rank, list(range(2 + m, rank))), b.dims_map(rank, list(range(2 + m)))],
                       [b.PARALLEL] * (2 + m) + [b.REDUCTION] * m, body)
    return [b.T(res, np.dtype(np.float32))]
