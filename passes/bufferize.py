from dataclasses import dataclass

from qc.mlir import ir, linalg

from .base import Pass, collect_ops, run_upstream


@dataclass(frozen=True)
class Bufferize(Pass):
    """Tensors → memrefs, with results passed as out-parameters.

    Needs linalg on tensors. Leaves the entry function in destination-passing
    style, `(inputs..., outputs...) -> ()` on identity-layout memrefs, which
    is the model ABI: the caller owns every input and output buffer. Results
    are written straight into the out-parameters (hoist-static-allocs), so a
    model does not copy its outputs; intermediates stay memref.alloc.

    Copies that bufferization inserts (tensor.pad into a strided subview, an
    output that is an input) become linalg.copy, so they are lowered to loops
    that LLVM vectorizes instead of per-element calls to a runtime helper.
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
        for copy in collect_ops(module.operation, ("memref.copy",)):
            with ir.InsertionPoint(copy.operation), copy.location:
                linalg.copy(copy.operands[0], outs=[copy.operands[1]])
            copy.operation.erase()
