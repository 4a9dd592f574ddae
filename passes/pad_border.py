"""qc-pad-border: a padded tensor whose interior is written whole is filled
only at its border.

    %f = linalg.fill {qc.padded} ins(%v) outs(tensor.empty)  // qc-pad-into-producer
    %s = tensor.extract_slice %f[low..][sizes..][1..]
  =>
    %e = tensor.empty
    %b0 = tensor.insert_slice (linalg.fill ins(%v) outs(slice of %e: top)) into %e
    %b1 = ... bottom, then left, right of each padded dimension
    %s = tensor.extract_slice %b3[low..][sizes..][1..]

and a tensor.pad that is left (the padding of a model input, of a producer
that qc-pad-into-producer does not take) becomes the same border fills and
an insert_slice of its source into the interior.

Bufferized, the whole fill was a memset of the padded buffer right before
the producer or the copy wrote its interior again: for a 3x3 convolution
over 64 channels at 56x56, 861 KB stored twice per layer. The border is one
row above and below each channel and one value either side of each row.
Runs after the last CSE (which would merge equal border slices) and after
qc-slices-in-place, right before bufferization: the insert_slice of a pad's
source would let its eliminate-empty-tensors make the producer write the
padded buffer, and a producer that other ops read too (SqueezeNet's squeeze
Relu, read by the 1x1 expand as well) then loses its fold into the GEMM and
its readers copy it back out. Needs static shapes and a constant pad value.
"""

from __future__ import annotations

from dataclasses import dataclass

from qc.mlir import arith, ir, linalg, tensor

from .base import Pass, collect_ops


@dataclass(frozen=True)
class PadBorder(Pass):
    """Needs linalg on tensors. Leaves every qc.padded fill and every static
    tensor.pad with a constant value as fills of the border boxes of a
    tensor.empty (and, for a pad, an insert_slice of its source)."""

    name = "qc-pad-border"

    def apply(self, module: ir.Module) -> None:
        for fill in collect_ops(module.operation, ("linalg.fill",)):
            _border_only_fill(fill.operation)
        for pad in collect_ops(module.operation, ("tensor.pad",)):
            _pad_as_border(pad.operation)


def border_boxes(shape, low, sizes):
    """(offsets, sizes) of disjoint boxes that cover `shape` outside the box
    at `low` of `sizes`: for each dimension d, the slabs before and after
    the interior in d, over the interior of the dimensions before d and all
    of those after it."""
    boxes = []
    for d, (n, lo, size) in enumerate(zip(shape, low, sizes)):
        head_off, head_size = list(low[:d]), list(sizes[:d])
        tail_off, tail_size = [0] * (len(shape) - d - 1), list(shape[d + 1:])
        for start, extent in ((0, lo), (lo + size, n - lo - size)):
            if extent > 0:
                boxes.append((head_off + [start] + tail_off, head_size + [extent] + tail_size))
    return boxes


def _fill_border(value: ir.Value, ty: ir.RankedTensorType, low, sizes) -> ir.Value:
    """A tensor of type `ty` whose border around the box (low, sizes) holds
    `value`; its interior is undefined."""
    whole = tensor.EmptyOp(ty.shape, ty.element_type).result
    for offsets, extent in border_boxes(list(ty.shape), low, sizes):
        box_ty = ir.RankedTensorType.get(extent, ty.element_type)
        ones = [1] * len(extent)
        box = tensor.ExtractSliceOp(box_ty, whole, [], [], [], offsets, extent, ones).result
        filled = linalg.fill(value, outs=[box])
        whole = tensor.InsertSliceOp(filled, whole, [], [], [], offsets, extent, ones).result
    return whole


def static_slice(op):
    """(offsets, sizes) of a unit-stride extract/insert_slice or subview
    with static operands, or None."""
    if len(op.operands) != (2 if op.name == "tensor.insert_slice" else 1):
        return None
    offsets = list(ir.DenseI64ArrayAttr(op.attributes["static_offsets"]))
    sizes = list(ir.DenseI64ArrayAttr(op.attributes["static_sizes"]))
    strides = list(ir.DenseI64ArrayAttr(op.attributes["static_strides"]))
    if any(s != 1 for s in strides) or any(v < 0 for v in offsets + sizes):
        return None
    return offsets, sizes


def _writes_all_of(op, init: ir.Value) -> bool:
    """Whether `op` overwrites all of `init` (its one destination) without
    reading it: an all-parallel generic with an identity output map that
    ignores its init, a transpose or a copy."""
    if op.name in ("linalg.transpose", "linalg.copy"):
        return op.operands[len(op.operands) - 1] == init
    if op.name != "linalg.generic" or op.operands[len(op.operands) - 1] != init or len(op.results) != 1:
        return False
    if any(str(it) != "#linalg.iterator_type<parallel>" for it in op.attributes["iterator_types"]):
        return False
    out_map = ir.AffineMapAttr(list(op.attributes["indexing_maps"])[-1]).value
    rank = ir.RankedTensorType(init.type).rank
    if [str(r) for r in out_map.results] != [f"d{i}" for i in range(rank)]:
        return False
    return not list(op.regions[0].blocks[0].arguments[-1].uses)


def _border_only_fill(fill) -> None:
    """A qc.padded fill whose one interior slice is overwritten whole by the
    op that takes it as destination, and whose result is otherwise only the
    destination of that op's insert_slice back, fills only its border."""
    if "qc.padded" not in fill.attributes or len(fill.results) != 1:
        return
    result = fill.results[0]
    if getattr(fill.operands[1].owner, "name", None) != "tensor.empty":
        return  # a fill of a buffer (after bufferization) or of a computed tensor
    uses = [u.owner for u in result.uses]
    slices = [u for u in uses if u.name == "tensor.extract_slice"]
    inserts = [u for u in uses if u.name == "tensor.insert_slice" and u.operands[1] == result]
    if len(uses) != 2 or len(slices) != 1 or len(inserts) != 1:
        return
    interior, insert = slices[0], inserts[0]
    box = static_slice(interior)
    if box is None or box != static_slice(insert):
        return
    writers = [u.owner for u in interior.results[0].uses]
    producer = getattr(insert.operands[0].owner, "operation", None)
    if len(writers) != 1 or producer != writers[0] or not _writes_all_of(producer, interior.results[0]):
        return
    with ir.InsertionPoint(fill), fill.location:
        border = _fill_border(fill.operands[0], ir.RankedTensorType(result.type), *box)
    empty = fill.operands[1].owner
    result.replace_all_uses_with(border)
    fill.erase()
    if not list(empty.results[0].uses):
        empty.erase()


def _pad_as_border(pad) -> None:
    """A static tensor.pad with a constant value: border fills and an
    insert_slice of the source into the interior."""
    block = pad.regions[0].blocks[0]
    ops = list(block.operations)
    if len(pad.operands) != 1 or len(ops) != 1:
        return  # dynamic amounts are operands
    value = ops[0].operands[0]
    owner = getattr(value.owner, "operation", None)
    if owner is None or owner.name != "arith.constant":
        return
    src_ty = ir.RankedTensorType(pad.operands[0].type)
    pad_ty = ir.RankedTensorType(pad.results[0].type)
    low = list(ir.DenseI64ArrayAttr(pad.attributes["static_low"]))
    if not (src_ty.has_static_shape and pad_ty.has_static_shape) or any(v < 0 for v in low):
        return
    sizes = list(src_ty.shape)
    with ir.InsertionPoint(pad), pad.location:
        if owner.block == block:  # defined in the pad's region: not visible outside it
            value = arith.ConstantOp(src_ty.element_type, owner.attributes["value"]).result
        border = _fill_border(value, pad_ty, low, sizes)
        whole = tensor.InsertSliceOp(pad.operands[0], border, [], [], [], low, sizes, [1] * len(sizes)).result
    pad.results[0].replace_all_uses_with(whole)
    pad.erase()
