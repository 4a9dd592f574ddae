"""qc-outline-ops: each loop nest of the entry function into its own function.

LLVM's loop passes (induction-variable simplification, unrolling, strength
reduction) cost more than linearly in the size of a function: ResNet-50 as
one function spent most of its compile time there. One private function per
top-level loop nest or kernel call keeps every function small; the entry
becomes a list of calls, and a function is shared by identical ops... only
when they are literally the same op (no deduplication is attempted).

Values the op uses from the entry become arguments, except constants, which
are cloned into the new function so that LLVM still sees them.
"""

from __future__ import annotations

from dataclasses import dataclass

from qc.mlir import func, ir

from .base import Pass

# Ops that stay in the entry: they define buffers and views, or are cheap.
_KEEP = {
    "arith.constant", "memref.alloc", "memref.dealloc", "memref.get_global", "memref.collapse_shape",
    "memref.expand_shape", "memref.subview", "memref.cast", "memref.reinterpret_cast",
    "memref.extract_strided_metadata", "func.return", "func.call",
}


@dataclass(frozen=True)
class OutlineOps(Pass):
    """Needs bufferized IR (memrefs). Leaves the entry as calls to private
    functions, one per linalg op or loop nest."""

    name = "qc-outline-ops"
    entry: str = "qc_model"

    def apply(self, module: ir.Module) -> None:
        symbols = ir.SymbolTable(module.operation)
        if self.entry not in symbols:
            return
        fn = symbols[self.entry]
        body = fn.regions[0].blocks[0]
        count = 0
        for op in list(body.operations):
            if op.operation.name in _KEEP or not _worth_outlining(op.operation):
                continue
            fill = op.operation.name == "linalg.fill"
            new = move_into_function(module, op.operation, f"{self.entry}_part{count}")
            if fill:
                # A fill gains nothing from unrolling: compiled for size, LLVM
                # makes its rows memset calls instead of unrolling a box of
                # a padded buffer's border (qc-pad-border) into 500 stores.
                new.attributes["passthrough"] = ir.ArrayAttr.get([ir.StringAttr.get("optsize")])
            count += 1


def _worth_outlining(op: ir.Operation) -> bool:
    return len(op.regions) > 0 and len(op.results) == 0


def _inside(op: ir.Operation, root: ir.Operation) -> bool:
    cur = op
    while cur is not None:
        if cur == root:
            return True
        cur = cur.parent
    return False


def _defining_op(v: ir.Value) -> ir.Operation:
    """The op that defines v, or for a block argument the op owning the block."""
    owner = v.owner
    if isinstance(owner, ir.Block):
        owner = owner.owner
    return getattr(owner, "operation", owner)


def _captured(op: ir.Operation) -> list[ir.Value]:
    """Values used inside `op` but defined outside it, in first-use order."""
    out: dict[ir.Value, None] = {}

    def visit(inner):
        for v in inner.operands:
            if not _inside(_defining_op(v), op):
                out.setdefault(v)
        return ir.WalkResult.ADVANCE

    op.walk(visit)
    return list(out)


def move_into_function(module: ir.Module, op: ir.Operation, name: str) -> func.FuncOp:
    """Moves `op` into a new private function `name`, calls it in its place
    and returns the function.

    Values the op uses from outside become arguments, except constants, which
    are cloned inside; the op's results (if any) become the function's."""
    captured = _captured(op)
    consts = [v for v in captured if _defining_op(v).name == "arith.constant"]
    args = [v for v in captured if v not in consts]
    result_types = [r.type for r in op.results]
    with ir.InsertionPoint(module.body), op.location:
        new = func.FuncOp(name, ir.FunctionType.get([v.type for v in args], result_types))
        new.sym_visibility = ir.StringAttr.get("private")
        block = new.add_entry_block()
    with ir.InsertionPoint(op), op.location:
        call = func.CallOp(result_types, ir.FlatSymbolRefAttr.get(name), args)
    for old, replaced in zip(op.results, call.results):
        old.replace_all_uses_with(replaced)
    with ir.InsertionPoint(block), op.location:
        ret = func.ReturnOp(list(op.results))
    op.move_before(ret.operation)
    replacement = dict(zip(args, block.arguments))
    with ir.InsertionPoint(op):
        for v in consts:
            replacement[v] = _defining_op(v).clone().results[0]

    def visit(inner):
        for i, v in enumerate(inner.operands):
            if v in replacement:
                inner.operands[i] = replacement[v]
        return ir.WalkResult.ADVANCE

    op.walk(visit)
    return new
