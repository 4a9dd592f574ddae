from dataclasses import dataclass

from qc.mlir import ir

from .base import Pass, collect_ops, run_upstream
from .outline_ops import move_into_function


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
            move_into_function(module, o, f"qc_hidden_reduction_{count}")
            count += 1
    return count
