from dataclasses import dataclass

from .base import Pass, run_upstream


@dataclass(frozen=True)
class Bufferize(Pass):
    """Tensors → memrefs, with results passed as out-parameters.

    Needs linalg on tensors. Leaves the entry function in destination-passing
    style, `(inputs..., outputs...) -> ()` on identity-layout memrefs, which
    is the model ABI: the caller owns every input and output buffer. Results
    are written straight into the out-parameters (hoist-static-allocs), so a
    model does not copy its outputs; intermediates stay memref.alloc.
    """

    name = "qc-bufferize"

    def apply(self, module):
        run_upstream(
            self.name,
            "one-shot-bufferize{bufferize-function-boundaries "
            "function-boundary-type-conversion=identity-layout-map},"
            "canonicalize,cse,"
            # modify-public-functions: the entry is public, it is the ABI.
            "buffer-results-to-out-params{modify-public-functions hoist-static-allocs},"
            "canonicalize",
            module,
        )
