"""qc-unshare-inits: each linalg op that writes into an initial value gets
its own copy of the op that computes it.

    %b = linalg.generic ins(%bias) outs(tensor.empty)   // bias broadcast
    %y1 = linalg.matmul ins(..) outs(%b)
    %y2 = linalg.matmul ins(..) outs(%b)
  =>
    %b1 = linalg.generic ins(%bias) outs(tensor.empty)
    %y1 = linalg.matmul ins(..) outs(%b1)
    %b2 = linalg.generic ins(%bias) outs(tensor.empty)
    %y2 = linalg.matmul ins(..) outs(%b2)

CSE merges equal initial values (two convolutions with the same bias, every
zero fill of one shape). Bufferized as it stands, each op that writes into
the shared value first copies it into a buffer of its own, and
qc-lower-gemm cannot fold a copy into its kernel (it folds a fill or a bias
broadcast right before it, and then the elementwise op after): the GEMM
pays a copy of C and an extra pass for its epilogue. With its own producer,
each such op starts from a fill or a broadcast again. Runs after the last
CSE, right before bufferization.

Only f32 fills and all-parallel generics that read nothing but their
inputs (broadcasts, splats) are cloned: recomputing them costs what the
copy did. A static f32 tensor.empty shared by several ops' outs is cloned
too (it costs nothing): bufferized shared, one buffer held the outputs of
SqueezeNet's equal-shaped Fire modules' expands in turn, each op writing it
in place, and a GEMM cannot write its Relu's result into the buffer it
reads; with one each, qc-plan-memory overlaps the buffers that do not live
at once.
"""

from __future__ import annotations

from dataclasses import dataclass

from qc.mlir import ir

from .base import Pass, collect_ops


@dataclass(frozen=True)
class UnshareInits(Pass):
    """Needs linalg on tensors. Leaves every fill, broadcast or f32
    tensor.empty that feeds the outs of several linalg ops duplicated, one
    per such use (the first keeps the original)."""

    name = "qc-unshare-inits"

    def apply(self, module: ir.Module) -> None:
        for op in collect_ops(module.operation, ("tensor.empty", "linalg.fill", "linalg.generic") + _RESHAPES):
            op = op.operation
            chain = _chain(op)
            if chain is None:
                continue
            result = op.results[0]
            # (Use lists run newest first: reversed, the first user in the
            # block usually keeps the original.)
            uses = [(use.owner.operation, use.operand_number) for use in result.uses][::-1]
            inits = [(user, i) for user, i in uses if _is_init(user, i)]
            # A reshape of a value that something else also reads (a pad,
            # another reshape) is shared too, though its own uses are all inits.
            alone = len(inits) == len(uses) and all(len(list(link.results[0].uses)) == 1 for link in chain[:-1])
            for user, i in inits[1:] if alone else inits:
                value = None
                for link in chain:  # producer first, then its reshapes
                    clone = link.clone(ir.InsertionPoint(user))
                    if value is not None:
                        clone.operands[0] = value
                    value = clone.results[0]
                user.operands[i] = value


_RESHAPES = ("tensor.collapse_shape", "tensor.expand_shape")


def _chain(op: ir.Operation) -> list[ir.Operation] | None:
    """[producer, reshapes...] computing op's result, if the producer is
    clonable and what lies between only reshapes it."""
    links = []
    while op.name in _RESHAPES:
        if len(op.operands) != 1:  # a dynamic expand_shape's sizes
            return None
        links.append(op)
        op = getattr(op.operands[0].owner, "operation", None)
        if op is None:
            return None
    if not recomputable(op):
        return None
    return [op, *reversed(links)]


def recomputable(op: ir.Operation) -> bool:
    """Whether op is an f32 fill, static tensor.empty or all-parallel generic
    that reads nothing but its inputs (a broadcast, a splat): computing it
    again costs what a copy of its result would."""
    if op.name not in ("tensor.empty", "linalg.fill", "linalg.generic"):
        return False
    if len(op.results) != 1 or not isinstance(op.results[0].type, ir.RankedTensorType):
        return False
    if not isinstance(ir.RankedTensorType(op.results[0].type).element_type, ir.F32Type):
        return False  # the float GEMM kernels fold inits; the integer and binary ones match their own
    if op.name == "tensor.empty":
        return not list(op.operands)  # static: a clone is free, and bufferizes to a buffer of its own
    if op.name == "linalg.fill":
        return True
    if any("parallel" not in str(it) for it in op.attributes["iterator_types"]):
        return False
    block = op.regions[0].blocks[0]
    body = [o.operation for o in block.operations]
    # The body yields an input (or a constant) and never reads the init.
    return (len(body) == 1 and not list(block.arguments[-1].uses)
            and all(v != block.arguments[-1] for v in body[0].operands))


def _is_init(user: ir.Operation, operand: int) -> bool:
    """Whether operand `operand` of `user` is one of a linalg op's outs."""
    if not user.name.startswith("linalg.") or "operandSegmentSizes" not in user.attributes:
        return False
    n_in, n_out = list(ir.DenseI32ArrayAttr(user.attributes["operandSegmentSizes"]))[:2]
    return n_in <= operand < n_in + n_out
