from dataclasses import dataclass

from .base import Pass, run_upstream


@dataclass(frozen=True)
class LowerToScf(Pass):
    """affine → scf loops, with deallocation of the intermediates.

    Needs bufferized IR whose functions return no memrefs (qc-bufferize).
    Inserts memref.dealloc for every memref.alloc after its last use
    (ownership-based deallocation), then lowers affine to scf and arith.
    """

    name = "qc-lower-to-scf"

    def apply(self, module):
        run_upstream(self.name, "buffer-deallocation-pipeline,lower-affine,canonicalize,cse", module)
