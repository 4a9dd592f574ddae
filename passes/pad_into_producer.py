"""qc-pad-into-producer: an elementwise op whose only use is a tensor.pad
writes straight into the padded tensor's interior.

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

Only producers with integer results are rewritten: a float producer is
usually a GEMM's epilogue (bias, Relu, Clip) that qc-lower-gemm folds into
its kernel, whose output must stay a contiguous matrix; integer ones (the
requantization of an int8 layer) run as their own loop anyway.
Needs tensors, static shapes, a pad value that is a constant.
"""

from __future__ import annotations

from dataclasses import dataclass

from qc.mlir import arith, ir, linalg, tensor

from .base import Pass, collect_ops


@dataclass(frozen=True)
class PadIntoProducer(Pass):
    """Needs linalg on tensors. Rewrites tensor.pad of a single-use,
    all-parallel linalg.generic with an integer result into fill +
    extract_slice + generic + insert_slice."""

    name = "qc-pad-into-producer"

    def apply(self, module: ir.Module) -> None:
        for pad in collect_ops(module.operation, ("tensor.pad",)):
            _rewrite(pad.operation)


def _producer(pad):
    """The generic that `pad` may absorb, or None."""
    src = pad.operands[0]
    gen = getattr(src.owner, "operation", None)
    if gen is None or gen.name != "linalg.generic":
        return None
    if len(gen.results) != 1 or len(list(src.uses)) != 1:
        return None
    if any(str(it) != "#linalg.iterator_type<parallel>" for it in gen.attributes["iterator_types"]):
        return None
    ty = ir.RankedTensorType(src.type)
    if not ty.has_static_shape or not isinstance(ty.element_type, ir.IntegerType):
        return None
    maps = list(gen.attributes["indexing_maps"])
    out_map = ir.AffineMapAttr(maps[-1]).value
    if [str(r) for r in out_map.results] != [f"d{i}" for i in range(ty.rank)]:
        return None  # a transposing output: its init is not the natural slice
    body = gen.regions[0].blocks[0]
    if len(list(body.arguments[-1].uses)):
        return None  # reads its init: the padded tensor's values would change that
    return gen


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
    with ir.InsertionPoint(gen), gen.location:
        fill_value = arith.ConstantOp(src_ty.element_type, value).result
        empty = tensor.EmptyOp(pad_ty.shape, pad_ty.element_type).result
        filled = linalg.fill(fill_value, outs=[empty])
        interior = tensor.ExtractSliceOp(src_ty, filled, [], [], [], low, src_ty.shape, ones).result
    gen.operands[len(gen.operands) - 1] = interior
    with ir.InsertionPoint(pad), pad.location:
        whole = tensor.InsertSliceOp(gen.results[0], filled, [], [], [], low, src_ty.shape, ones).result
    pad.results[0].replace_all_uses_with(whole)
    pad.erase()
