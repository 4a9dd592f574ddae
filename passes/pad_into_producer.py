"""qc-pad-into-producer: an elementwise op (or a transpose: ShuffleNet's
channel shuffle before its depthwise convolution) whose only use is a
tensor.pad writes straight into the padded tensor's interior.

    %y = linalg.generic (all parallel) ins(...) outs(%init)
    %p = tensor.pad %y low[..] high[..] { yield %v }
  =>
    %f = linalg.fill ins(%v) outs(tensor.empty(padded shape))
    %s = tensor.extract_slice %f[low..][sizes of %y][1..]
    %y = linalg.generic ins(...) outs(%s)
    %p = tensor.insert_slice %y into %f[low..][sizes][1..]

Bufferized as it stands, a pad is a second buffer: fill it, then copy the
producer's whole output into its interior (for a 3x3 convolution after a
requantization, one extra pass over the activations). In destination style
the generic's output is a view of the padded buffer, so one-shot
bufferization writes it in place and the copy disappears.

A float producer is usually a GEMM's epilogue (bias, Relu, Clip): the
padded tensor is filled before the ops that make the producer's inputs, so
that qc-lower-gemm finds the GEMM, then the epilogue writing the interior,
and folds the epilogue into a kernel that stores into the interior itself
(a pitched C); where it cannot, the epilogue stays a loop that writes the
interior, in place of the copy. An integer producer (the requantization
of an int8 layer) is a loop of its own either way.
Needs tensors, static shapes, a pad value that is a constant.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from qc.mlir import arith, ir, linalg, tensor

from .base import Pass, collect_ops


_IDS = itertools.count()


@dataclass(frozen=True)
class PadIntoProducer(Pass):
    """Needs linalg on tensors. Rewrites tensor.pad of a single-use,
    all-parallel linalg.generic (or linalg.transpose) into fill +
    extract_slice + the op + insert_slice."""

    name = "qc-pad-into-producer"

    def apply(self, module: ir.Module) -> None:
        for pad in collect_ops(module.operation, ("tensor.pad",)):
            _rewrite(pad.operation)


def _producer(pad):
    """The generic that `pad` may absorb, or None."""
    src = pad.operands[0]
    gen = getattr(src.owner, "operation", None)
    if gen is None or gen.name not in ("linalg.generic", "linalg.transpose"):
        return None
    if len(gen.results) != 1 or len(list(src.uses)) != 1:
        return None
    if gen.name == "linalg.transpose":  # writes all of its init, reads none of it
        return gen if ir.RankedTensorType(src.type).has_static_shape else None
    if any(str(it) != "#linalg.iterator_type<parallel>" for it in gen.attributes["iterator_types"]):
        return None
    ty = ir.RankedTensorType(src.type)
    if not ty.has_static_shape:
        return None
    maps = list(gen.attributes["indexing_maps"])
    out_map = ir.AffineMapAttr(maps[-1]).value
    if [str(r) for r in out_map.results] != [f"d{i}" for i in range(ty.rank)]:
        return None  # a transposing output: its init is not the natural slice
    body = gen.regions[0].blocks[0]
    if len(list(body.arguments[-1].uses)):
        return None  # reads its init: the padded tensor's values would change that
    return gen


def _fill_point(gen):
    """Where the padded tensor is filled: before the ops that make the
    producer's inputs (in its block), so that a GEMM whose epilogue the
    producer is finds no write of the padded buffer between the two, and
    writes its interior itself (qc-lower-gemm's pitched C)."""
    ops = [o.operation for o in gen.block.operations]
    at = ops.index(gen)
    for v in gen.operands[:-1]:
        owner = getattr(v.owner, "operation", None)
        if owner is not None and owner.name != "arith.constant" and owner in ops:
            at = min(at, ops.index(owner))
    return ops[at]


def _pad_constant(pad):
    """The attribute of the constant `pad` yields, or None."""
    block = pad.regions[0].blocks[0]
    ops = list(block.operations)
    if len(ops) != 1:
        return None
    owner = getattr(ops[0].operands[0].owner, "operation", None)
    if owner is None or owner.name != "arith.constant":
        return None
    return owner.attributes["value"]


def _static(pad, name: str) -> list[int] | None:
    values = list(ir.DenseI64ArrayAttr(pad.attributes[name]))
    return None if any(v < 0 for v in values) else values


def _rewrite(pad) -> None:
    gen = _producer(pad)
    value = _pad_constant(pad)
    low = _static(pad, "static_low")
    if gen is None or value is None or low is None or len(pad.operands) != 1:
        return  # dynamic pads carry their amounts as operands
    src_ty = ir.RankedTensorType(gen.results[0].type)
    pad_ty = ir.RankedTensorType(pad.results[0].type)
    ones = [1] * src_ty.rank
    with ir.InsertionPoint(_fill_point(gen)), gen.location:
        fill_value = arith.ConstantOp(src_ty.element_type, value).result
        empty = tensor.EmptyOp(pad_ty.shape, pad_ty.element_type).result
        filled = linalg.fill(fill_value, outs=[empty])
        # Each padded tensor is a buffer of its own: CSE would merge equal
        # fills, and one-shot bufferization then copies the shared one for
        # every pad after the first (a pass over the whole padded tensor,
        # and the producer's slice written out of place and copied again).
        filled.owner.attributes["qc.padded"] = ir.IntegerAttr.get(ir.IntegerType.get_signless(64), next(_IDS))
        interior = tensor.ExtractSliceOp(src_ty, filled, [], [], [], low, src_ty.shape, ones).result
    gen.operands[len(gen.operands) - 1] = interior
    with ir.InsertionPoint(pad), pad.location:
        whole = tensor.InsertSliceOp(gen.results[0], filled, [], [], [], low, src_ty.shape, ones).result
    pad.results[0].replace_all_uses_with(whole)
    pad.erase()
