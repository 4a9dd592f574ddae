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
        _define_helpers(module)
        for op in module.body.operations:
            if op.operation.name != "llvm.func" or not op.regions[0].blocks:
                continue  # declarations (libm, malloc) have no body
            passthrough = list(ir.ArrayAttr(op.attributes["passthrough"])) if "passthrough" in op.attributes else []
            if any(str(a) == '"alwaysinline"' for a in passthrough):
                continue  # an always-inlined helper
            name = ir.StringAttr(op.attributes["sym_name"]).value
            if name in (self.entry, f"_mlir_ciface_{self.entry}"):
                continue
            # Kept with the attributes a pass gave it (optsize: qc-outline-ops' fills).
            op.attributes["passthrough"] = ir.ArrayAttr.get(passthrough + list(noinline))
            if name.startswith("_mlir_ciface_"):
                # Called by the runtime's C glue (a GEMM's threads): linked, not exported.
                op.attributes["visibility_"] = hidden
            else:
                op.attributes["linkage"] = internal  # not part of the library's API


def _define_helpers(module) -> None:
    """Defines the declared helpers whose body is one LLVM intrinsic
    (qc-vector-qdepthwise's vpmaddwd, qc-lower-qgemm's dot products, byte_pack's packs): MLIR
    has no op for them, and an intrinsic call has no declared memory
    effects, which buffer deallocation rejects, so they stay declarations
    until here."""
    from . import byte_pack, qgemm_amx
    from .qgemm_dot import dot_definition
    from .vector_qdepthwise import pmaddwd_definition

    for op in list(module.body.operations):
        if op.operation.name != "llvm.func" or op.regions[0].blocks:
            continue
        name = ir.StringAttr(op.attributes["sym_name"]).value
        text = (pmaddwd_definition(name) or dot_definition(name) or byte_pack.definition(name)
                or qgemm_amx.definition(name))
        if text is None:
            continue
        parsed = ir.Module.parse(text)
        (fn,) = list(parsed.body.operations)
        fn.move_before(op)
        op.operation.erase()
