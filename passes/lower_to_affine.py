from dataclasses import dataclass

from .base import Pass, run_upstream


@dataclass(frozen=True)
class LowerToAffine(Pass):
    """linalg on memrefs → affine loop nests.

    Needs bufferized linalg. Leaves affine.for/load/store, where loop
    transformations (and, later, memory planning) work on explicit loops and
    buffers. Elementwise chains are already fused on tensors
    (qc-linalg-cleanup), so `fuse` (upstream affine-loop-fusion plus scalar
    replacement) is off by default: it tracks dependences by memref SSA value
    and misses those through views (memref.expand_shape / collapse_shape from
    a Reshape), which fused a producer after its consumer in the attention
    example and gave wrong results.
    """

    name = "qc-lower-to-affine"
    fuse: bool = False

    def apply(self, module):
        fuse = "func.func(affine-loop-fusion),func.func(affine-scalrep)," if self.fuse else ""
        run_upstream(self.name, f"func.func(convert-linalg-to-affine-loops),{fuse}canonicalize,cse", module)
