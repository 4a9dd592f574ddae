"""DepthToSpace and SpaceToDepth: reshape (a view), one linalg.transpose, reshape.

With b the blocksize, x: [N, C, H, W] and y: [N, C/b², H*b, W*b]:
  DepthToSpace DCR  x as [N, b, b, C/b², H, W], perm (0, 3, 4, 1, 5, 2)
  DepthToSpace CRD  x as [N, C/b², b, b, H, W], perm (0, 1, 4, 2, 5, 3)
  SpaceToDepth      x as [N, C, H/b, b, W/b, b], perm (0, 3, 5, 1, 2, 4)
                    y: [N, C*b², H/b, W/b]
"""

from __future__ import annotations

from qc.errors import UnsupportedOp
from qc.mlir import linalg

from . import builder as b
from .attrs import attrs
from .registry import importer


def _rearrange(x: b.T, split: tuple[int, ...], perm: tuple[int, ...], out: tuple[int, ...]) -> b.T:
    v = b.reshape(x, split)
    shape = [split[p] for p in perm]
    t = b.T(linalg.transpose(v.value, outs=[b.empty(shape, x.dtype)], permutation=list(perm)).results[0], x.dtype)
    return b.reshape(t, out)


def _input(ctx, node) -> tuple[b.T, int]:
    x = ctx.get(node.input[0])
    if x.rank != 4:
        raise UnsupportedOp(node, f"input of rank {x.rank}", "rank 4 (N x C x H x W)")
    bs = int(attrs(node).get("blocksize", 0))
    if bs < 1:
        raise UnsupportedOp(node, f"blocksize {bs}", "blocksize >= 1")
    return x, bs


@importer("DepthToSpace")
def import_depth_to_space(ctx, node):
    x, bs = _input(ctx, node)
    mode = attrs(node).get("mode", "DCR")
    if mode not in ("DCR", "CRD"):
        raise UnsupportedOp(node, f"mode '{mode}'", "DCR, CRD")
    n, c, h, w = x.shape
    if c % (bs * bs):
        raise UnsupportedOp(node, f"{c} channels are not a multiple of blocksize² ({bs * bs})")
    cb = c // (bs * bs)
    out = (n, cb, h * bs, w * bs)
    if mode == "DCR":
        return [_rearrange(x, (n, bs, bs, cb, h, w), (0, 3, 4, 1, 5, 2), out)]
    return [_rearrange(x, (n, cb, bs, bs, h, w), (0, 1, 4, 2, 5, 3), out)]


@importer("SpaceToDepth")
def import_space_to_depth(ctx, node):
    x, bs = _input(ctx, node)
    n, c, h, w = x.shape
    if h % bs or w % bs:
        raise UnsupportedOp(node, f"spatial dims {h}x{w} are not multiples of blocksize {bs}")
    out = (n, c * bs * bs, h // bs, w // bs)
    return [_rearrange(x, (n, c, h // bs, bs, w // bs, bs), (0, 3, 5, 1, 2, 4), out)]
