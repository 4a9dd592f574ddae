from dataclasses import dataclass

from qc.mlir import func, ir

from .base import Pass, collect_ops, run_upstream
from .outline_ops import _captured, _defining_op


@dataclass(frozen=True)
class LinalgCleanup(Pass):
    """Tensor-level clean-up of the imported graph.

    Needs linalg on tensors. Folds reshapes and constants, fuses chains of
    elementwise linalg.generic ops (producer into consumer) so each chain is
    one loop nest, and removes common subexpressions. Leaves linalg on tensors.

    Ops with a reduction (matmuls, convolutions, reductions) are kept out of
    the fusion: upstream fusion would fold an elementwise producer into them
    and recompute it for every reduction step (a LayerNorm fused into the
    matmul after it made a transformer layer 150x slower), and its reshape
    propagation turns named matmuls into generics. They are moved into
    private functions while fusion runs, then inlined back.
    """

    name = "qc-linalg-cleanup"
    fuse_elementwise: bool = True

    def apply(self, module):
        fuse = "linalg-fuse-elementwise-ops," if self.fuse_elementwise else ""
        hidden = _hide_reductions(module) if self.fuse_elementwise else 0
        run_upstream(self.name, f"canonicalize,{fuse}cse,canonicalize", module)
        if hidden:
            run_upstream(self.name, "inline,symbol-dce,canonicalize,cse", module)


# Named linalg ops that reduce (their iterator types are not attributes).
_REDUCING_NAMED = ("matmul", "matvec", "vecmat", "dot", "conv", "pooling", "mmt4d", "contract", "reduce")


def _has_reduction(op: ir.Operation) -> bool:
    if "iterator_types" in op.attributes:  # linalg.generic
        return any("reduction" in str(it) for it in op.attributes["iterator_types"])
    short = op.name.split(".", 1)[1]
    return any(word in short for word in _REDUCING_NAMED)


def _hide_reductions(module: ir.Module) -> int:
    """Moves each linalg op with a reduction into its own private function."""
    count = 0
    for op in collect_ops(module.operation, ("func.func",)):
        if op.is_external:
            continue
        for inner in list(op.regions[0].blocks[0].operations):
            o = inner.operation
            if not o.name.startswith("linalg.") or not o.results or not _has_reduction(o):
                continue
            _hide(module, o, f"qc_hidden_reduction_{count}")
            count += 1
    return count


def _hide(module: ir.Module, op: ir.Operation, name: str) -> None:
    captured = [v for v in _captured(op) if _defining_op(v).name != "arith.constant"]
    consts = [v for v in _captured(op) if v not in captured]
    result_types = [r.type for r in op.results]
    with ir.InsertionPoint(module.body), op.location:
        fn = func.FuncOp(name, ir.FunctionType.get([v.type for v in captured], result_types))
        fn.sym_visibility = ir.StringAttr.get("private")
        block = fn.add_entry_block()
    with ir.InsertionPoint(op), op.location:
        call = func.CallOp(result_types, ir.FlatSymbolRefAttr.get(name), captured)
    for old, new in zip(op.results, call.results):
        old.replace_all_uses_with(new)
    with ir.InsertionPoint(block), op.location:
        ret = func.ReturnOp(list(op.results))
    op.move_before(ret.operation)
    replacement = dict(zip(captured, block.arguments))
    with ir.InsertionPoint(op):
        for v in consts:
            replacement[v] = _defining_op(v).clone().results[0]

    def visit(inner):
        for i, v in enumerate(inner.operands):
            if v in replacement:
                inner.operands[i] = replacement[v]
        return ir.WalkResult.ADVANCE

    op.walk(visit)
