from dataclasses import dataclass

from .base import Pass, run_upstream


@dataclass(frozen=True)
class LinalgCleanup(Pass):
    """Tensor-level clean-up of the imported graph.

    Needs linalg on tensors. Folds reshapes and constants, fuses chains of
    elementwise linalg.generic ops (producer into consumer) so each chain is
    one loop nest, and removes common subexpressions. Leaves linalg on tensors.
    """

    name = "qc-linalg-cleanup"
    fuse_elementwise: bool = True

    def apply(self, module):
        fuse = "linalg-fuse-elementwise-ops," if self.fuse_elementwise else ""
        run_upstream(self.name, f"canonicalize,{fuse}cse,canonicalize", module)
