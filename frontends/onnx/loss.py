"""NegativeLogLikelihoodLoss and SoftmaxCrossEntropyLoss.

Input [N, C, d1, ...] (log-probabilities, or for SoftmaxCrossEntropyLoss
scores that first go through log_softmax over C), target [N, d1, ...] of
class indices, optional weight [C]. Per target element:
    w    = 0 if target == ignore_index else weight[target] (1 without weight)
    loss = 0 if target == ignore_index else -input[n, target, d...] * w
reduction none gives loss; sum gives its sum; mean gives sum(loss) / sum(w)
(with neither weight nor ignore_index every w is 1: the plain mean).

One generic over the target reads input[n, target, d...] and weight[target]
with tensor.extract, at the target clamped into [0, C) so that an ignored
(or out-of-range) target never reads out of bounds; ONNX's reference clips
the weight lookup the same way.
"""

from __future__ import annotations

import numpy as np

from qc.errors import UnsupportedOp
from qc.mlir import arith, ir, linalg, tensor

from . import builder as b
from .attrs import attrs
from .registry import importer
from .softmax_family import log_softmax

FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


@importer("NegativeLogLikelihoodLoss", "SoftmaxCrossEntropyLoss")
def import_loss(ctx, node):
    a = attrs(node)
    x, target = ctx.get(node.input[0]), ctx.get(node.input[1])
    weight = ctx.get(node.input[2]) if len(node.input) > 2 and node.input[2] else None
    _check(node, x, target, weight)
    reduction = a.get("reduction", "mean")
    if reduction not in ("none", "sum", "mean"):
        raise UnsupportedOp(node, f"reduction '{reduction}'", "none, sum, mean")
    ignore = int(a["ignore_index"]) if "ignore_index" in a else None
    logp = log_softmax(x, [1]) if node.op_type == "SoftmaxCrossEntropyLoss" else x
    loss, w = _gathered(logp, target, weight, ignore)
    outs = [_reduce(loss, w, reduction)]
    if node.op_type == "SoftmaxCrossEntropyLoss" and len(node.output) > 1:
        outs.append(logp)
    return outs


def _check(node, x: b.T, target: b.T, weight: b.T | None) -> None:
    if x.dtype not in FLOATS:
        raise UnsupportedOp(node, f"element type {x.dtype} is not supported", "float32, float64")
    if target.dtype not in (np.int32, np.int64):
        raise UnsupportedOp(node, f"target has element type {target.dtype}", "int32, int64")
    if x.rank < 2 or target.shape != (x.shape[0], *x.shape[2:]):
        raise UnsupportedOp(node, f"input {list(x.shape)} and target {list(target.shape)}",
                            "input [N, C, d...] with target [N, d...]")
    if weight is not None and (weight.dtype != x.dtype or weight.shape != (x.shape[1],)):
        raise UnsupportedOp(node, f"weight is {weight.dtype}{list(weight.shape)}", f"{x.dtype}[{x.shape[1]}]")


def _gathered(x: b.T, target: b.T, weight: b.T | None, ignore: int | None) -> tuple[b.T, b.T]:
    """(loss, w) per target element."""
    dt, rank = x.dtype, target.rank
    idx_ty = ir.IndexType.get()
    classes = x.shape[1]
    zero, one = b.scalar(0.0, dt), b.scalar(1.0, dt)

    def body(t, _loss, _w):
        t64 = t if target.dtype == np.int64 else arith.ExtSIOp(ir.IntegerType.get_signless(64), t).result
        clamped = arith.MinSIOp(arith.MaxSIOp(t64, b.scalar(0, np.int64)).result,
                                b.scalar(classes - 1, np.int64)).result
        c = arith.IndexCastOp(idx_ty, clamped).result
        at = [linalg.IndexOp(d).result for d in range(rank)]
        xv = tensor.ExtractOp(x.value, [at[0], c, *at[1:]]).result
        wv = tensor.ExtractOp(weight.value, [c]).result if weight is not None else one
        loss = arith.NegFOp(arith.MulFOp(xv, wv).result).result
        if ignore is None:
            return [loss, wv]
        ignored = arith.CmpIOp(arith.CmpIPredicate.eq, t64, b.scalar(ignore, np.int64)).result
        return [arith.SelectOp(ignored, zero, loss).result, arith.SelectOp(ignored, zero, wv).result]

    ident = b.identity_map(rank)
    loss, w = b.generic([target.value], [b.empty(target.shape, dt), b.empty(target.shape, dt)], [ident] * 3,
                        [b.PARALLEL] * rank, body)
    return b.T(loss, dt), b.T(w, dt)


def _reduce(loss: b.T, w: b.T, reduction: str) -> b.T:
    if reduction == "none":
        return loss
    dims = list(range(loss.rank))
    add = lambda e, acc: arith.AddFOp(e, acc).result  # noqa: E731
    total = b.reduce(loss, dims, 0.0, add, keepdims=False)
    if reduction == "sum":
        return total
    count = b.reduce(w, dims, 0.0, add, keepdims=False)
    return b.elementwise([total, count], loss.dtype, lambda s, n: arith.DivFOp(s, n).result)
