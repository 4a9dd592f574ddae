"""Normalization (inference): BatchNormalization, InstanceNormalization,
LayerNormalization, and Dropout, the other layer that only acts in training.

BatchNormalization is y = (x - mean) * scale / sqrt(var + eps) + B per
channel, rewritten as one multiply-add y = x * a + c with
a = scale / sqrt(var + eps) and c = B - mean * a. With constant parameters
(the usual case) a and c are computed at compile time, so the op is a single
elementwise generic that later passes can fold into the preceding conv.

Instance and layer normalization compute the statistics at run time, in two
passes for accuracy: mean = sum(x) / n, var = sum((x - mean)^2) / n, then
y = (x - mean) * (1 / sqrt(var + eps)) * scale + B.
"""

from __future__ import annotations

import numpy as np

from qc.errors import UnsupportedOp
from qc.mlir import arith, math

from . import builder as b
from .attrs import attrs
from .conv import check_f32
from .registry import importer


def _add(p, q):
    return arith.AddFOp(p, q).result


def _sub(p, q):
    return arith.SubFOp(p, q).result


def _mul(p, q):
    return arith.MulFOp(p, q).result


# ---------------------------------------------------------------- BatchNormalization


def _bn_params(ctx, node, x: b.T, spatial: bool):
    """scale, B, mean, var as numpy arrays when all are constants, else as tensors."""
    shape = (x.shape[1],) if spatial else x.shape[1:]
    consts = [ctx.const(n) for n in node.input[1:5]]
    for name, what, c in zip(node.input[1:5], ("scale", "B", "mean", "var"), consts):
        t = c if c is not None else ctx.get(name)
        check_f32(node, what, t)
        if tuple(t.shape) != shape:
            raise UnsupportedOp(node, f"{what} has shape {list(t.shape)}, expected {list(shape)}")
    if all(c is not None for c in consts):
        return consts, None
    return None, [ctx.get(n) for n in node.input[1:5]]


@importer("BatchNormalization")
def import_batchnorm(ctx, node):
    a = attrs(node)
    x = ctx.get(node.input[0])
    check_f32(node, "X", x)
    if ctx.opset < 7:
        raise UnsupportedOp(node, f"BatchNormalization-{ctx.opset} (is_test form)", "opset 7 and later")
    if int(a.get("training_mode", 0)) != 0:
        raise UnsupportedOp(node, "training_mode=1 (batch statistics)", "inference, training_mode=0")
    if any(node.output[1:]):
        raise UnsupportedOp(node, "the running/saved mean and variance outputs (training) are requested",
                            "the Y output only")
    if x.rank < 2:
        raise UnsupportedOp(node, f"input of rank {x.rank}", "rank >= 2 (N x C x ...)")
    # Opset 7-8 `spatial=0`: parameters per (C, D1, ..., Dn) element rather than per channel.
    spatial = bool(int(a.get("spatial", 1))) if ctx.opset < 9 else True
    eps = float(a.get("epsilon", 1e-5))
    consts, tensors = _bn_params(ctx, node, x, spatial)
    if consts is not None:
        scale, bias, mean, var = (np.asarray(c, np.float64) for c in consts)
        mul = scale / np.sqrt(var + np.float32(eps))
        add = bias - mean * mul
        mul_t, add_t = b.constant(mul.astype(np.float32)), b.constant(add.astype(np.float32))
    else:
        mul_t, add_t = _bn_factors(*tensors, eps)
    return [channel_mul_add(x, mul_t, add_t)]


def channel_mul_add(x: b.T, mul: b.T, add: b.T) -> b.T:
    """x * mul + add with the parameters indexing dims 1.. of x: (d1) per
    channel, (d1, ..., dn) for BatchNormalization-7 with spatial=0."""
    rank = x.rank
    pmap = b.dims_map(rank, list(range(1, 1 + mul.rank)))
    (y,) = b.generic([x.value, mul.value, add.value], [b.empty(x.shape, x.dtype)],
                     [b.identity_map(rank), pmap, pmap, b.identity_map(rank)], [b.PARALLEL] * rank,
                     lambda v, m, c, _o: _add(_mul(v, m), c))
    return b.T(y, x.dtype)


def _bn_factors(scale: b.T, bias: b.T, mean: b.T, var: b.T, eps: float):
    """a = scale / sqrt(var + eps), c = B - mean * a, on run-time parameters."""
    e = b.scalar(eps, np.float32)
    mul = b.elementwise([scale, var], np.float32,
                        lambda s, v: arith.DivFOp(s, math.SqrtOp(_add(v, e)).result).result)
    add = b.elementwise([bias, mean, mul], np.float32, lambda c, m, k: _sub(c, _mul(m, k)))
    return mul, add


# ---------------------------------------------------------------- statistics


def normalize(x: b.T, dims: list[int], eps: float) -> b.T:
    """(x - mean) / sqrt(var + eps) over `dims` (two-pass mean and variance)."""
    return normalize_with_stats(x, dims, eps)[0]


def normalize_with_stats(x: b.T, dims: list[int], eps: float) -> tuple[b.T, b.T, b.T]:
    """normalize(x, dims, eps), mean and 1 / sqrt(var + eps); the statistics
    keep the reduced dims as size 1."""
    n = b.scalar(float(np.prod([x.shape[d] for d in dims])), x.dtype)
    s = b.reduce(x, dims, 0.0, _add)
    mean = b.elementwise([s], x.dtype, lambda v: arith.DivFOp(v, n).result)
    centered = b.elementwise([x, mean], x.dtype, _sub)
    sq = b.reduce(b.elementwise([centered], x.dtype, lambda v: _mul(v, v)), dims, 0.0, _add)
    one, e = b.scalar(1.0, x.dtype), b.scalar(eps, x.dtype)
    inv_std = b.elementwise(
        [sq], x.dtype,
        lambda v: arith.DivFOp(one, math.SqrtOp(_add(arith.DivFOp(v, n).result, e)).result).result)
    return b.elementwise([centered, inv_std], x.dtype, _mul), mean, inv_std


def _affine(node, y: b.T, scale: b.T, bias: b.T | None, param_shape) -> b.T:
    """y * scale + B, scale and B broadcast to `param_shape` (the trailing dims they cover)."""
    for what, t in (("scale", scale), ("B", bias)):
        if t is None:
            continue
        check_f32(node, what, t)
        try:
            ok = np.broadcast_shapes(t.shape, param_shape) == tuple(param_shape)
        except ValueError:
            ok = False
        if not ok:
            raise UnsupportedOp(node, f"{what} of shape {list(t.shape)} does not broadcast to {list(param_shape)}")
    if bias is None:
        return b.elementwise([y, scale], y.dtype, _mul)
    return b.elementwise([y, scale, bias], y.dtype, lambda v, s, c: _add(_mul(v, s), c))


def _optional(ctx, node, i: int) -> b.T | None:
    return ctx.get(node.input[i]) if len(node.input) > i and node.input[i] else None


@importer("InstanceNormalization")
def import_instancenorm(ctx, node):
    """Per (n, c): normalize over the spatial dims, then scale[c] and B[c]."""
    x = ctx.get(node.input[0])
    check_f32(node, "X", x)
    if x.rank < 3:
        raise UnsupportedOp(node, f"input of rank {x.rank}", "rank >= 3 (N x C x spatial)")
    eps = float(attrs(node).get("epsilon", 1e-5))
    y = normalize(x, list(range(2, x.rank)), eps)
    c = x.shape[1]
    scale, bias = ctx.get(node.input[1]), ctx.get(node.input[2])
    for what, t in (("scale", scale), ("B", bias)):
        check_f32(node, what, t)
        if t.shape != (c,):
            raise UnsupportedOp(node, f"{what} has shape {list(t.shape)}, expected [{c}]")
    return [channel_mul_add(y, scale, bias)]


@importer("LayerNormalization")
def import_layernorm(ctx, node):
    """Normalize over dims axis..rank-1, then scale and B (broadcast over those
    dims); the optional outputs Mean and InvStdDev are the statistics."""
    a = attrs(node)
    x = ctx.get(node.input[0])
    check_f32(node, "X", x)
    stash = int(a.get("stash_type", 1))
    if stash != 1:
        raise UnsupportedOp(node, f"stash_type {stash}", "1 (float32 statistics)")
    axis = int(a.get("axis", -1))
    if not -x.rank <= axis < x.rank:
        raise UnsupportedOp(node, f"axis {axis} is out of range for a rank-{x.rank} input")
    axis %= x.rank
    y, mean, inv_std = normalize_with_stats(x, list(range(axis, x.rank)), float(a.get("epsilon", 1e-5)))
    # Mean and InvStdDev (optional outputs) have shape X.shape[:axis] + [1] * (rank - axis).
    outs = [_affine(node, y, ctx.get(node.input[1]), _optional(ctx, node, 2), x.shape[axis:]), mean, inv_std]
    return outs[: len(node.output)]


# ---------------------------------------------------------------- Dropout


@importer("Dropout")
def import_dropout(ctx, node):
    """Inference: y = x; the mask, if requested, is all true (nothing dropped).

    Opset 12 moved ratio and training_mode to inputs; a training_mode that
    is true (or unknown at compile time) would drop at random.
    """
    a = attrs(node)
    x = ctx.get(node.input[0])
    if ctx.opset < 7 and int(a.get("is_test", 0)) != 1:
        raise UnsupportedOp(node, "is_test=0 (training)", "is_test=1")
    if len(node.input) > 2 and node.input[2]:
        mode = ctx.const(node.input[2])
        if mode is None:
            raise UnsupportedOp(node, "training_mode is computed at run time", "a constant false training_mode")
        if bool(np.asarray(mode).ravel()[0]):
            raise UnsupportedOp(node, "training_mode is true (random dropout)", "training_mode false (inference)")
    outs = [x]
    if len(node.output) > 1 and node.output[1]:
        # Opset 10+: a bool mask; before, the mask has the input's type.
        mask_dtype = np.dtype(np.bool_) if ctx.opset >= 10 else x.dtype
        outs.append(b.T(b.filled(x.shape, mask_dtype, 1), mask_dtype))
    return outs
