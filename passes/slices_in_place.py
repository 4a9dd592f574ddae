"""qc-slices-in-place: the ops whose results a Concat (or a Pad, a Split's
inverse) copies into a slice of a bigger tensor write that slice instead.

The importer writes each part of a Concat as a linalg.copy into a slice of
the result, then tensor.insert_slice. Bufferized as is, every part is a
buffer of its own and a copy into the result: SqueezeNet copies both halves
of each of its eight Fire modules' outputs (4% of its run time). Here the
copy goes where its source is computed in this function and read only by
the copy: the insert_slice takes the source itself, and upstream
eliminate-empty-tensors then makes the producer's destination (a
tensor.empty, through the ops that write into it) that slice of the result,
so that one-shot bufferization writes the part in place. A part whose
producer cannot take the slice (a function argument, a constant, an op that
reads its destination elsewhere) is copied by bufferization as before.
"""

from __future__ import annotations

from dataclasses import dataclass

from qc.mlir import ir

from .base import Pass, collect_ops, run_upstream


@dataclass(frozen=True)
class SlicesInPlace(Pass):
    """Needs linalg on tensors, before one-shot bufferization. Leaves
    tensor.insert_slice of the producers' results into extract_slices of the
    destination (no linalg.copy)."""

    name = "qc-slices-in-place"

    def apply(self, module: ir.Module) -> None:
        for copy in collect_ops(module.operation, ("linalg.copy",)):
            op = copy.operation
            if len(op.results) != 1 or len(op.operands) != 2:
                continue
            src, window = op.operands
            uses = list(op.results[0].uses)
            if len(uses) != 1 or uses[0].owner.name != "tensor.insert_slice":
                continue
            insert = uses[0].owner
            slice_op = getattr(window.owner, "operation", None)
            if slice_op is None or slice_op.name != "tensor.extract_slice":
                continue
            if not _same_place(slice_op, insert) or slice_op.operands[0] != insert.operands[1]:
                continue
            producer = getattr(src.owner, "operation", None)
            if producer is None or producer.name == "arith.constant" or len(list(src.uses)) != 1:
                continue
            if src.type != op.results[0].type:
                continue  # a copy that converts
            insert.operands[0] = src
            op.erase()
            if not list(slice_op.results[0].uses):
                slice_op.erase()
        run_upstream(self.name, "eliminate-empty-tensors", module)


def _same_place(extract: ir.Operation, insert: ir.Operation) -> bool:
    """Whether the two slice ops name the same static offsets, sizes and strides."""
    keys = ("static_offsets", "static_sizes", "static_strides")
    if len(extract.operands) != 1 or len(insert.operands) != 2:
        return False  # dynamic offsets or sizes
    return all(str(extract.attributes[k]) == str(insert.attributes[k]) for k in keys)
