from dataclasses import dataclass

from qc.mlir import ir

from .base import Pass, run_upstream


@dataclass(frozen=True)
class LowerToLLVM(Pass):
    """scf/memref/arith/math/vector → the LLVM dialect.

    Needs functions without memref results. Memref arguments use the standard
    descriptor convention; the entry (`entry`) also gets a C wrapper,
    `_mlir_ciface_<entry>(descriptor *...)`, which the runtime calls with one
    descriptor per input, then per output. Every other function is internal
    and noinline: they are the loop nests qc-outline-ops split off, and inlining
    them back would rebuild the one huge function that LLVM's loop passes
    handle slowly. Allocations call the runtime's
    `_mlir_memref_to_llvm_alloc/free`, which reuse buffers across runs.
    """

    name = "qc-lower-to-llvm"
    entry: str = "qc_model"

    def apply(self, module):
        symbols = ir.SymbolTable(module.operation)
        if self.entry in symbols:
            symbols[self.entry].attributes["llvm.emit_c_interface"] = ir.UnitAttr.get()
        run_upstream(
            self.name,
            "convert-vector-to-scf,convert-scf-to-cf,expand-strided-metadata,lower-affine,"
            "convert-vector-to-llvm,convert-math-to-llvm,convert-math-to-libm,"
            "finalize-memref-to-llvm{use-generic-functions},"
            "convert-arith-to-llvm,convert-ub-to-llvm,convert-cf-to-llvm,convert-func-to-llvm,"
            "reconcile-unrealized-casts,canonicalize",
            module,
        )
        noinline = ir.ArrayAttr.get([ir.StringAttr.get("noinline")])
        internal = ir.Attribute.parse("#llvm.linkage<internal>")
        hidden = ir.IntegerAttr.get(ir.IntegerType.get_signless(64), 1)  # llvm::GlobalValue::HiddenVisibility
        for op in module.body.operations:
            if op.operation.name != "llvm.func" or not op.regions[0].blocks:
                continue  # declarations (libm, malloc) have no body
            name = ir.StringAttr(op.attributes["sym_name"]).value
            if name in (self.entry, f"_mlir_ciface_{self.entry}"):
                continue
            op.attributes["passthrough"] = noinline
            if name.startswith("_mlir_ciface_"):
                # Called by the runtime's C glue (a GEMM's threads): linked, not exported.
                op.attributes["visibility_"] = hidden
            else:
                op.attributes["linkage"] = internal  # not part of the library's API
