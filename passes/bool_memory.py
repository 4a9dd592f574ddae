"""qc-bool-memory: bool (i1) buffers hold one byte per element.

The model ABI stores a bool as one byte that is 0 or 1 (numpy's bool_, C's
_Bool), but MLIR's memref-to-LLVM lowering refuses memrefs of i1: it asserts
that a loaded or stored element is at least 8 bits wide. So every
memref<...xi1> becomes memref<...xi8>, and the conversion happens where a
value crosses memory, as C compilers do for _Bool:

    load:  b = trunci(byte)    (byte is 0 or 1, so its low bit is the bool)
    store: byte = extui(b)     (true is 1, false is 0)

Everything between memory and memory (comparisons, selects, logic) keeps
computing on i1.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from qc.errors import PassFailed
from qc.mlir import arith, ir

from .base import Pass

# Loads: result 0 is the element (or a vector of them) read from the memref.
_LOADS = {"affine.load", "memref.load", "affine.vector_load", "vector.load", "vector.transfer_read"}
# Stores: operand 0 is the element (or a vector of them) written to the memref.
_STORES = {"affine.store", "memref.store", "affine.vector_store", "vector.store", "vector.transfer_write"}
# Ops that pass memrefs along, or address them in elements, without reading
# an element's bits: retyping their i1 memref operands and results is enough.
_FORWARDING = {
    "memref.alloc", "memref.alloca", "memref.get_global", "memref.dealloc", "memref.copy",
    "memref.subview", "memref.collapse_shape", "memref.expand_shape", "memref.cast",
    "memref.reinterpret_cast", "memref.reshape", "memref.transpose", "memref.view",
    "memref.memory_space_cast", "memref.assume_alignment", "memref.extract_strided_metadata",
    "memref.extract_aligned_pointer_as_index", "memref.dim", "memref.rank",
    "func.call", "func.return", "scf.for", "scf.if", "scf.yield", "affine.for", "affine.if",
    "affine.yield", "arith.select", "bufferization.dealloc",
}


@dataclass(frozen=True)
class BoolMemory(Pass):
    """Bool memory as bytes: memref<...xi1> → memref<...xi8>.

    Needs bufferized IR without linalg ops (after qc-lower-to-affine), so
    that only loads, stores, views, allocations, globals and calls touch i1
    memory. Leaves no memref of i1: they are memrefs of i8, with trunci after
    each load and extui before each store. Other ops on i1 memory (linalg,
    masked or gathering vector ops, atomics) fail the pass, naming the op.
    """

    name = "qc-bool-memory"

    def apply(self, module: ir.Module) -> None:
        widen_bool_memory(module)


def is_i1(ty: ir.Type) -> bool:
    return isinstance(ty, ir.IntegerType) and ty.width == 1


def _i1_memref(ty: ir.Type) -> bool:
    return isinstance(ty, (ir.MemRefType, ir.UnrankedMemRefType)) and is_i1(ty.element_type)


def widen_memref(ty: ir.Type) -> ir.Type:
    """An i1 memref as the same memref (shape, layout, memory space) of i8;
    any other type unchanged."""
    i8 = ir.IntegerType.get_signless(8)
    if isinstance(ty, ir.MemRefType) and is_i1(ty.element_type):
        return ir.MemRefType.get(ty.shape, i8, ty.layout, ty.memory_space)
    if isinstance(ty, ir.UnrankedMemRefType) and is_i1(ty.element_type):
        return ir.UnrankedMemRefType.get(i8, ty.memory_space)
    return ty


def widen_element(ty: ir.Type) -> ir.Type:
    """What a load or store of i1 memory moves instead: i8 for i1, a vector
    of i8 for a vector of i1."""
    i8 = ir.IntegerType.get_signless(8)
    if isinstance(ty, ir.VectorType):
        return ir.VectorType.get(ty.shape, i8, scalable=ty.scalable_dims)
    return i8


def widen_bool_memory(module: ir.Module) -> None:
    """Retypes every i1 memref in `module` as i8 (see the module docstring).
    Checks every op first, so a PassFailed leaves the module unchanged."""
    ops = _ops_on_i1_memory(module.operation)
    globals_ = [op for op in ops if op.name == "memref.global"]
    initial = [_widened_initial_value(g) for g in globals_]
    values = [v for op in ops for v in _i1_memref_values(op)]
    loads = [op for op in ops if op.name in _LOADS]
    stores = [op for op in ops if op.name in _STORES]
    for op in ops:
        if op.name == "func.func":
            _widen_signature(op)
    for g, value in zip(globals_, initial):
        g.attributes["type"] = ir.TypeAttr.get(widen_memref(ir.TypeAttr(g.attributes["type"]).value))
        if value is not None:
            g.attributes["initial_value"] = value
    for v in values:
        v.set_type(widen_memref(v.type))
    byte_of = {}  # the i1 a load gives its users -> the byte it read
    for op in loads:
        byte, bit = _narrow_loaded(op)
        byte_of[bit] = byte
    for op in stores:
        _widen_stored(op, byte_of)
    for bit in byte_of:
        if not list(bit.uses):
            bit.owner.erase()


def _ops_on_i1_memory(root: ir.Operation) -> list[ir.Operation]:
    """Every op that defines, uses or declares an i1 memref, in pre-order;
    raises PassFailed on an op whose meaning depends on how an i1 is stored."""
    found = []

    def visit(op):
        if _touches_i1_memory(op):
            found.append(op)
        return ir.WalkResult.ADVANCE

    root.walk(visit, ir.WalkOrder.PRE_ORDER)
    for op in found:
        if op.name not in _LOADS | _STORES | _FORWARDING | {"func.func", "memref.global"}:
            raise PassFailed(BoolMemory.name, f"{op.name} on a memref of i1 is not supported "
                             "(supported: loads, stores, views, allocations, globals, calls; "
                             "run it after qc-lower-to-affine)")
    return found


def _touches_i1_memory(op: ir.Operation) -> bool:
    if op.name == "func.func":
        ft = ir.FunctionType(ir.TypeAttr(op.attributes["function_type"]).value)
        return any(_i1_memref(t) for t in [*ft.inputs, *ft.results])
    if op.name == "memref.global":
        return _i1_memref(ir.TypeAttr(op.attributes["type"]).value)
    return bool(_i1_memref_values(op)) or any(_i1_memref(v.type) for v in op.operands)


def _i1_memref_values(op: ir.Operation) -> list[ir.Value]:
    """The i1 memrefs `op` defines: its results and its regions' block arguments."""
    defined = list(op.results)
    for region in op.regions:
        for block in region.blocks:
            defined.extend(block.arguments)
    return [v for v in defined if _i1_memref(v.type)]


def _widen_signature(fn: ir.Operation) -> None:
    ft = ir.FunctionType(ir.TypeAttr(fn.attributes["function_type"]).value)
    new = ir.FunctionType.get([widen_memref(t) for t in ft.inputs], [widen_memref(t) for t in ft.results])
    fn.attributes["function_type"] = ir.TypeAttr.get(new)


def _widened_initial_value(g: ir.Operation) -> ir.Attribute | None:
    """The global's initial value as bytes 0/1; None if it has none (external,
    uninitialized). i1 elements are bit-packed in the attribute: numpy reads
    them back as bool, except a splat, which is one stored value."""
    if "initial_value" not in g.attributes or isinstance(g.attributes["initial_value"], ir.UnitAttr):
        return None
    attr = g.attributes["initial_value"]
    if not isinstance(attr, ir.DenseIntElementsAttr):
        raise PassFailed(BoolMemory.name, f"memref.global @{ir.StringAttr(g.attributes['sym_name']).value}: "
                         f"initial value {str(attr)[:60]} is not a dense array (supported: dense<...>)")
    dense = ir.DenseIntElementsAttr(attr)
    shaped = ir.ShapedType(dense.type)
    ty = ir.RankedTensorType.get(shaped.shape, ir.IntegerType.get_signless(8))
    if dense.is_splat:
        byte = ir.IntegerAttr.get(ty.element_type, int(ir.IntegerAttr(dense.get_splat_value()).value != 0))
        return ir.DenseElementsAttr.get_splat(ty, byte)
    data = np.ascontiguousarray(np.array(dense), dtype=np.bool_).view(np.int8)
    return ir.DenseElementsAttr.get(data, type=ty.element_type, shape=list(shaped.shape))


def _narrow_loaded(op: ir.Operation) -> tuple[ir.Value, ir.Value]:
    """The load reads bytes; trunci gives its users the i1 they expect.
    Returns (byte, i1)."""
    loaded = op.results[0]
    i1_type = loaded.type
    if op.name == "vector.transfer_read":
        _widen_operand(op, _padding_index(op))  # the padding is an element of the memref
    loaded.set_type(widen_element(i1_type))
    with ir.InsertionPoint.after(op), op.location:
        narrow = arith.trunci(i1_type, loaded)
    loaded.replace_all_uses_except(narrow, narrow.owner.operation)
    return loaded, narrow


def _widen_stored(op: ir.Operation, byte_of: dict) -> None:
    """The store writes bytes: extui makes true 1 and false 0. A bool that
    was just loaded is stored as the byte it was loaded as (a copy, such as
    Transpose or Reshape, moves bytes without converting them)."""
    v = op.operands[0]
    if v in byte_of:
        op.operands[0] = byte_of[v]
    else:
        _widen_operand(op, 0)


def _widen_operand(op: ir.Operation, index: int) -> None:
    v = op.operands[index]
    with ir.InsertionPoint(op), op.location:
        op.operands[index] = arith.extui(widen_element(v.type), v)


def _padding_index(op: ir.Operation) -> int:
    # transfer_read's operands: memref, indices (index), padding (an element),
    # optional mask (a vector): the one scalar i1 operand is the padding.
    return next(i for i, v in enumerate(op.operands) if is_i1(v.type))
