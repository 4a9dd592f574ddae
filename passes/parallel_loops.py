"""qc-parallel-loops: the loop nests qc-outline-ops split off, on all threads.

A GEMM kernel splits its column panels over the runtime's threads
(qc_parallel_for); the other loop nests (depthwise convolutions, pooling,
elementwise ops, copies and transposes) ran on the calling thread, which
left a second thread idle for a third of ShuffleNet. Here a function
qc-outline-ops made for one linalg op becomes a call to the runtime's
parallel loop over one of the op's parallel dims, d:

    func.func private @qc_model_part7(%a, %b) {
      func.call @qc_par_model_part7(%a, %b)        // C glue: qc_parallel_for
    }
    func.func @qc_model_part7_range(%a, %b, %lo: index, %hi: index) {
      linalg.op on subviews of %a, %b: [lo, hi) along d, the rest whole
    }

d is the op's first parallel dim of static size >= 2 that every operand
indexes by d alone (a view along it is then the same op on a slice;
`linalg.index d` in the body becomes lo + index). The chunks write disjoint
slices of the outputs, and an op reads no buffer it writes (other than the
same element of an in-place operand), so the results do not depend on the
thread count. An op whose work (iterations times its body's ops and
operands) is below PART_WORK stays as it was, unless it is `local`: work of
at least LOCAL_WORK, split along its output's leading dim (each thread then
writes one contiguous part of the buffer), and either reading a buffer the
op before it split the same way (a parallel part, or a GEMM kernel that
splits its row tiles or batches) or reading no buffer at all (a fill, whose
parts the next op splitting that buffer reads). Each thread then reads what
it wrote itself, from its own cache, where on one thread the op would read
half of its input from the other core's. Measured on two threads (Sapphire
Rapids), against the runtime's serial threshold (1 << 16) for every op:
the MobileNet block 1.14x faster, the transformer encoder 1.17x (on top of
its GEMMs' row split); a threshold of LOCAL_WORK for every op instead made
an MLP and an attention layer, whose small ops follow GEMMs split by
column panels, 14% and 22% slower, and PART_WORK 6% slower (attention). On one thread the range runs whole, the same loops as before behind
one more call.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from qc.mlir import arith, func, ir, linalg, memref

from .base import Pass
from .gemm_epilogue import _VIEWS, _root, through_views
from .lower_gemm import PARALLEL_ATTR, _all_operands, _record_parallel_kernel, parallel_entry

SERIAL_WORK = 1 << 16  # runtime/qc_threads.h QC_SERIAL_WORK: less work stays on one thread
LOCAL_WORK = 1 << 12  # less stays on one thread even where it reads a half each thread wrote (`local`)
PART_WORK = 1 << 14  # less stays on one thread, unless `local`
_OPS = ("linalg.generic", "linalg.copy", "linalg.map", "linalg.transpose", "linalg.fill")
_WRITES = ("memref.store", "affine.store", "vector.store", "vector.transfer_write", "memref.copy", "func.call",
           "linalg.generic", "linalg.copy", "linalg.fill")


@dataclass(frozen=True)
class ParallelLoops(Pass):
    """Needs qc-outline-ops' functions (bufferized linalg, before qc-plan-memory
    replaces allocations by arena views). Leaves `<part>_range` functions and
    lists them for the runtime glue, as qc-lower-gemm does its kernels."""

    name = "qc-parallel-loops"
    entry: str = "qc_model"
    min_work: int = PART_WORK
    local_work: int = LOCAL_WORK

    def apply(self, module: ir.Module) -> None:
        symbols = ir.SymbolTable(module.operation)
        if self.entry not in symbols:
            return
        calls = {}
        ops = [op.operation for op in symbols[self.entry].regions[0].blocks[0].operations]
        for op in ops:
            if op.name == "func.call":
                calls.setdefault(ir.FlatSymbolRefAttr(op.attributes["callee"]).value, []).append(op)
        attrs = module.operation.attributes
        row_kernels = {ir.StringAttr(e["name"]).value for e in map(ir.DictAttr, attrs[PARALLEL_ATTR])
                       if "rows" in e} if PARALLEL_ATTR in attrs else set()
        # In program order: the buffers whose last writer split them along
        # their leading dim, root -> the written view (reshapes stripped).
        halves: dict = {}
        for op in ops:
            name = ir.FlatSymbolRefAttr(op.attributes["callee"]).value if op.name == "func.call" else None
            plan = None
            if name in calls and len(calls[name]) == 1 and name.startswith(f"{self.entry}_part") and name in symbols:
                plan = _plan(symbols[name], op)
            if plan is not None and (plan.work >= self.min_work
                                     or plan.work >= self.local_work and plan.local(halves)):
                _parallelize(module, symbols[name], name, plan.op, plan.d, plan.size, plan.maps,
                             plan.work if plan.work >= SERIAL_WORK else 0)
                for v in plan.outputs:
                    halves.pop(_root(v), None)
                    if plan.leading:
                        halves[_root(v)] = _reshaped(v)
                continue
            for v in _all_operands(op):  # any of them may be written: no longer known halves
                halves.pop(_root(v), None)
            if name in row_kernels:
                c = op.operands[2]  # (A, B, C, ...): C's row tiles split over the threads
                halves[_root(c)] = _reshaped(c)


def _the_op(fn) -> ir.Operation | None:
    """The one linalg op of an outlined function (its other ops constants)."""
    ops = [o.operation for o in fn.regions[0].blocks[0].operations]
    main = [o for o in ops if o.name not in ("arith.constant", "func.return")]
    if len(main) != 1 or main[0].name not in _OPS:
        return None
    return main[0]


def _maps(op: ir.Operation) -> list[list[tuple[int | None, frozenset]]]:
    """Per operand, per dim: (the loop dim indexing it alone or None, the
    loop dims its index expression involves)."""
    operands = list(op.operands)
    if op.name == "linalg.generic":
        out = []
        for m in ir.ArrayAttr(op.attributes["indexing_maps"]):
            out.append([(e.position if isinstance(e, ir.AffineDimExpr) else None, _dims_in(e))
                        for e in ir.AffineMapAttr(m).value.results])
        return out
    rank = ir.MemRefType(operands[-1].type).rank
    ident = [(i, frozenset([i])) for i in range(rank)]
    if op.name == "linalg.transpose":
        perm = list(ir.DenseI64ArrayAttr(op.attributes["permutation"]))
        # output dim i is input dim perm[i]: input dim j is indexed by loop dim perm^-1(j)
        inv = [0] * rank
        for i, p in enumerate(perm):
            inv[p] = i
        return [[(i, frozenset([i])) for i in inv], ident]
    if op.name == "linalg.fill":
        return [[], ident]
    return [ident for _ in operands]  # copy, map: identity everywhere


def _dims_in(e) -> frozenset:
    if isinstance(e, ir.AffineDimExpr):
        return frozenset([e.position])
    if isinstance(e, ir.AffineBinaryExpr):
        return _dims_in(e.lhs) | _dims_in(e.rhs)
    return frozenset()


@dataclass
class _Plan:
    op: ir.Operation
    d: int  # the split loop dim
    size: int
    maps: list
    work: int
    leading: bool  # d indexes each output's first dim of size > 1: contiguous parts
    outputs: list  # the call's operands the op writes
    reads: list  # the call's operands it reads split along their leading dim, as it writes
    fill: bool  # it reads no buffer (its halves are written where the next op that splits them reads them)

    def local(self, halves: dict) -> bool:
        return self.leading and (self.fill or any(_root(v) in halves and halves[_root(v)] == _reshaped(v)
                                                  for v in self.reads))


def _reshaped(v: ir.Value) -> ir.Value:
    """v without the casts and reshapes in front of it: the same memory in the same order."""
    return through_views(v, _VIEWS)


def _plan(fn, call: ir.Operation) -> _Plan | None:
    op = _the_op(fn)
    if op is None or op.results:
        return None
    args = list(fn.regions[0].blocks[0].arguments)
    operands = list(op.operands)
    n_in = len(operands) - _num_outputs(op)
    if not all(isinstance(a.type, ir.MemRefType) for a in args) or not all(v in args for v in operands[n_in:]):
        return None
    out_ty = ir.MemRefType(operands[-1].type)
    if not out_ty.has_static_shape or any(str(ir.MemRefType(a.type).element_type) == "i1" for a in args):
        return None  # qc-bool-memory rewrites i1 buffers, not across this call
    maps = _maps(op)
    if maps is None or len(maps) != len(operands):
        return None
    # The loop space: a generic's static loop ranges, else the output's shape.
    if op.name == "linalg.generic":
        iters = [str(ir.Attribute(t)) for t in ir.ArrayAttr(op.attributes["iterator_types"])]
        sizes = _loop_sizes(op, maps)
        if sizes is None:
            return None
    else:
        sizes = list(out_ty.shape)
        iters = ["#linalg.iterator_type<parallel>"] * len(sizes)
    # No writes in the body, and no operand read where another is written.
    body = _nested(op)
    if any(inner.name in _WRITES for inner in body):
        return None
    entry_args = list(call.operands)
    outs = {_root(entry_args[args.index(v)]) for v in operands[n_in:]}
    if len(outs) != len(set(operands[n_in:])):  # a buffer written through one view (at any indexings)
        return None
    out_values = {entry_args[args.index(v)] for v in operands[n_in:]}
    for i, a in enumerate(args):
        if _root(entry_args[i]) in outs:
            # Only an output, or an input read at the very element it writes
            # (the same view, the same indexing).
            users = [j for j, v in enumerate(operands) if v == a]
            if (not users or any(x == a for inner in body for x in inner.operands)
                    or any(j < n_in and (maps[j] != maps[-1] or entry_args[i] not in out_values) for j in users)):
                return None
    out_shapes = [ir.MemRefType(v.type).shape for v in operands[n_in:]]
    d = _split_dim(iters, sizes, maps, list(zip(out_shapes, maps[n_in:])))
    if d is None:
        return None
    # Per iteration: its arithmetic and its loads and stores (a copy is all memory).
    work = int(np.prod(sizes, dtype=np.int64)) * (_count_ops(op) + len(operands))
    outputs = [entry_args[args.index(v)] for v in operands[n_in:]]
    leading = all(_leading(ir.MemRefType(v.type).shape, m, d) for v, m in zip(operands[n_in:], maps[n_in:]))
    reads = [entry_args[args.index(v)] for v, m in zip(operands[:n_in], maps)
             if isinstance(v.type, ir.MemRefType) and _leading(ir.MemRefType(v.type).shape, m, d)]
    fill = not any(isinstance(v.type, ir.MemRefType) for v in operands[:n_in])
    return _Plan(op, d, sizes[d], maps, work, leading, outputs, reads, fill)


def _leading(shape: list[int], dims, d: int) -> bool:
    """Whether loop dim d indexes the first dim of size > 1 of an operand (its parts are then contiguous)."""
    for size, (pure, _) in zip(shape, dims):
        if pure == d:
            return True
        if size != 1:
            return False
    return False


def _num_outputs(op: ir.Operation) -> int:
    if op.name == "linalg.generic":
        return ir.DenseI32ArrayAttr(op.attributes["operandSegmentSizes"])[1]
    return 1  # copy, map, transpose, fill: the last operand


def _loop_sizes(op: ir.Operation, maps) -> list[int] | None:
    """A generic's loop ranges, from the operand dims indexed by one loop dim each."""
    n = ir.AffineMapAttr(ir.ArrayAttr(op.attributes["indexing_maps"])[0]).value.n_dims
    sizes: list[int | None] = [None] * n
    for v, dims in zip(op.operands, maps):
        shape = ir.MemRefType(v.type).shape if isinstance(v.type, ir.MemRefType) else []
        for size, (dim, _) in zip(shape, dims):
            if dim is not None:
                sizes[dim] = size
    return None if any(s is None or s < 0 for s in sizes) else sizes


def _split_dim(iters: list[str], sizes: list[int], maps, outs) -> int | None:
    """A parallel dim of size >= 2 that indexes each operand alone, at one
    of its dims, or not at all: the first that indexes every output's
    leading dim, else the first. Each thread then writes one run of memory
    (NCHW: a block of channels; splitting the rows instead, as a GEMM splits
    its pixels, measured 5% slower on ShuffleNet). A transpose split along
    its loops' first dim would have both threads write into every cache
    line of its output: ResNet-50's 49 x 2048 -> 2048 x 49 took 4x the CPU
    time on two threads as on one."""
    ok = [d for d, (it, size) in enumerate(zip(iters, sizes))
          if "parallel" in it and size >= 2 and all(
              sum(d in dims for _, dims in m) <= 1 and all(pure == d for pure, dims in m if d in dims)
              for m in maps)]
    leading = [d for d in ok if all(_leading(shape, m, d) for shape, m in outs)]
    return (leading or ok or [None])[0]


def _nested(op: ir.Operation) -> list[ir.Operation]:
    """Every op in op's regions, at any depth."""
    out = []

    def visit(inner):
        out.append(inner)
        return ir.WalkResult.ADVANCE

    for r in op.regions:
        for b in r.blocks:
            for inner in b.operations:
                inner.operation.walk(visit)
    return out


def _count_ops(op: ir.Operation) -> int:
    n = 0
    for r in op.regions:
        for b in r.blocks:
            for inner in b.operations:
                if inner.operation.name != "linalg.yield":
                    n += 1
    return n


def _parallelize(module: ir.Module, fn, name: str, op: ir.Operation, d: int, panels: int, maps, work: int) -> None:
    """Moves op (and its constants) into `<name>_range`, sliced along d, and
    makes `name` call the runtime's parallel entry instead."""
    block = fn.regions[0].blocks[0]
    args = list(block.arguments)
    index = ir.IndexType.get()
    with ir.InsertionPoint(module.body), fn.location:
        rng = func.FuncOp(f"{name}_range", ir.FunctionType.get([a.type for a in args] + [index, index], []))
        # Public: only the runtime glue calls it (qc-lower-to-llvm hides it again).
        rng.attributes["llvm.emit_c_interface"] = ir.UnitAttr.get()
        rblock = rng.add_entry_block()
    rargs = list(rblock.arguments)
    lo, hi = rargs[-2], rargs[-1]
    with ir.InsertionPoint(rblock), fn.location:
        ret = func.ReturnOp([])
    old_return = None
    for o in list(block.operations):
        if o.operation.name == "func.return":
            old_return = o.operation
        else:
            o.operation.move_before(ret.operation)
    for a, r in zip(args, rargs):
        a.replace_all_uses_with(r)
    with ir.InsertionPoint(op), op.location:
        count = arith.SubIOp(hi, lo).result
        for i, (v, dims) in enumerate(zip(list(op.operands), maps)):
            at = [k for k, (pure, _) in enumerate(dims) if pure == d]
            if at:
                op.operands[i] = _slice(v, at[0], lo, count)
    # The body counts d from the slice's start.
    indices = [inner for inner in _nested(op)
               if inner.name == "linalg.index" and ir.IntegerAttr(inner.attributes["dim"]).value == d]
    for inner in indices:
        with ir.InsertionPoint(inner), inner.location:
            local = linalg.IndexOp(d).result
            shifted = arith.AddIOp(local, lo).result
        inner.results[0].replace_all_uses_with(shifted)
        inner.erase()
    # The outlined function now hands the op's operands to the runtime.
    par = parallel_entry(name)
    with ir.InsertionPoint(module.body), fn.location:
        decl = func.FuncOp(par, ir.FunctionType.get([a.type for a in args], []))
        decl.sym_visibility = ir.StringAttr.get("private")
        decl.attributes["llvm.emit_c_interface"] = ir.UnitAttr.get()
    with ir.InsertionPoint(old_return), fn.location:
        func.CallOp([], ir.FlatSymbolRefAttr.get(par), args)
    _record_parallel_kernel(module, name, panels, len(args), [], work)


def _slice(v: ir.Value, dim: int, lo: ir.Value, count: ir.Value) -> ir.Value:
    """v[..., lo : lo + count, ...] along dim, the rest whole."""
    ty = ir.MemRefType(v.type)
    offsets = [0] * ty.rank
    sizes: list = list(ty.shape)
    offsets[dim], sizes[dim] = lo, count
    strides, _ = ty.get_strides_and_offset()
    shape = list(ty.shape)
    shape[dim] = ir.ShapedType.get_dynamic_size()
    layout = ir.StridedLayoutAttr.get(ir.ShapedType.get_dynamic_stride_or_offset(), strides)
    result = ir.MemRefType.get(shape, ty.element_type, layout, ty.memory_space)
    return memref.subview(v, offsets, sizes, [1] * ty.rank, result_type=result)
