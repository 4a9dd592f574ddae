from dataclasses import dataclass

from .base import Pass, run_upstream


@dataclass(frozen=True)
class LowerToLLVM(Pass):
    """scf/memref/arith/math/vector → the LLVM dialect.

    Needs a function without memref results. With the bare-pointer calling
    convention a static memref argument becomes one `ptr`, so the entry is
    `void qc_model(ptr in0, ..., ptr out0, ...)`: the runtime passes plain
    buffers, no memref descriptors.
    """

    name = "qc-lower-to-llvm"

    def apply(self, module):
        run_upstream(
            self.name,
            "convert-vector-to-scf,convert-scf-to-cf,expand-strided-metadata,lower-affine,"
            "convert-vector-to-llvm,convert-math-to-llvm,convert-math-to-libm,finalize-memref-to-llvm,"
            "convert-arith-to-llvm,convert-ub-to-llvm,convert-cf-to-llvm,"
            "convert-func-to-llvm{use-bare-ptr-memref-call-conv},"
            "reconcile-unrealized-casts,canonicalize",
            module,
        )
