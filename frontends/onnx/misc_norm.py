"""LpNormalization and GroupNormalization.

LpNormalization divides by the p-norm along one axis (p = 1 or 2):
y = x / (sum |x|^p)^(1/p), and 0 where the norm is 0 (as ONNX's reference).

GroupNormalization splits the channels of [N, C, ...] into G groups and
normalizes each (n, group) over its C/G channels and the spatial dims (the
two-pass statistics of norm.normalize), then applies scale and bias per
channel (opset 21; the per-group form of opset 18 is deprecated, and the
checker rejects it).
"""

from __future__ import annotations

import numpy as np

from qc.errors import UnsupportedOp
from qc.mlir import arith, math

from . import builder as b
from .attrs import attrs
from .conv import check_f32
from .norm import channel_mul_add, normalize
from .registry import importer
from .shape_fns import normalize_axis


@importer("LpNormalization")
def import_lp_normalization(ctx, node):
    x = ctx.get(node.input[0])
    if x.dtype not in (np.float32, np.float64):
        raise UnsupportedOp(node, f"element type {x.dtype} is not supported", "float32, float64")
    a = attrs(node)
    p = int(a.get("p", 2))
    if p not in (1, 2):
        raise UnsupportedOp(node, f"p={p}", "1, 2")
    axis = normalize_axis(node, a.get("axis", -1), x.rank)
    dt = x.dtype
    zero = b.scalar(0.0, dt)

    def power(v):
        return math.AbsFOp(v).result if p == 1 else arith.MulFOp(v, v).result

    total = b.reduce(b.elementwise([x], dt, power), [axis], 0.0, lambda e, acc: arith.AddFOp(e, acc).result)
    norm = total if p == 1 else b.elementwise([total], dt, lambda v: math.SqrtOp(v).result)

    def divide(v, n):
        is_zero = arith.CmpFOp(arith.CmpFPredicate.OEQ, n, zero).result
        return arith.SelectOp(is_zero, zero, arith.DivFOp(v, n).result).result

    return [b.elementwise([x, norm], dt, divide)]


@importer("GroupNormalization")
def import_group_normalization(ctx, node):
    a = attrs(node)
    x, scale, bias = (ctx.get(n) for n in node.input[:3])
    for what, t in (("X", x), ("scale", scale), ("bias", bias)):
        check_f32(node, what, t)
    if x.rank < 3:
        raise UnsupportedOp(node, f"input of rank {x.rank}", "rank >= 3 (N x C x spatial)")
    if int(a.get("stash_type", 1)) != 1:
        raise UnsupportedOp(node, f"stash_type {a['stash_type']}", "1 (float32 statistics)")
    groups = int(a["num_groups"])
    n, c = x.shape[:2]
    if groups <= 0 or c % groups:
        raise UnsupportedOp(node, f"{c} channels do not split into {groups} groups")
    for what, t in (("scale", scale), ("bias", bias)):
        if t.shape != (c,):
            raise UnsupportedOp(node, f"{what} has shape {list(t.shape)}, expected [{c}]")
    grouped = b.reshape(x, (n, groups, c // groups, *x.shape[2:]))
    y = normalize(grouped, list(range(2, grouped.rank)), float(a.get("epsilon", 1e-5)))
    return [channel_mul_add(b.reshape(y, x.shape), scale, bias)]
