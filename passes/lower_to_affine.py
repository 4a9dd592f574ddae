from dataclasses import dataclass

from .base import Pass, run_upstream


@dataclass(frozen=True)
class LowerToAffine(Pass):
    """linalg on memrefs → affine loop nests.

    Needs bufferized linalg. Leaves affine.for/load/store, where loop fusion
    (and, later, memory planning) work on explicit loops and buffers.
    `fuse` runs affine-loop-fusion; scalar replacement then forwards stores
    to loads inside the fused nests.
    """

    name = "qc-lower-to-affine"
    fuse: bool = True

    def apply(self, module):
        fuse = "func.func(affine-loop-fusion),func.func(affine-scalrep)," if self.fuse else ""
        run_upstream(self.name, f"func.func(convert-linalg-to-affine-loops),{fuse}canonicalize,cse", module)
