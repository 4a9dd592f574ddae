"""The one module that imports the MLIR Python bindings.

Everything else in qc imports MLIR names from here, so moving to another
build of the bindings (same API under another top-level package) is a change
to this file alone.
"""

from mlir import ir, passmanager  # noqa: F401
from mlir.dialects import (  # noqa: F401
    arith,
    bufferization,
    func,
    linalg,
    math,
    memref,
    tensor,
)
from mlir.dialects import llvm as llvm_dialect  # noqa: F401

MLIRError = ir.MLIRError


def new_context() -> ir.Context:
    """A context with every upstream dialect available (parsing IR from files
    may name any of them)."""
    ctx = ir.Context()
    ctx.allow_unregistered_dialects = False
    return ctx


def translate_to_llvm_ir(module: ir.Module) -> str:
    return llvm_dialect.translate_module_to_llvmir(module.operation)


def print_module(module: ir.Module, *, elide_large: bool = False) -> str:
    """Module text; large constants are elided for human-facing dumps."""
    if elide_large:
        return module.operation.get_asm(large_elements_limit=16)
    return str(module)
