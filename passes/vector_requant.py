"""qc-vector-requant: requantization loops as explicit vector code.

A requantization multiplies each i32 accumulator by a 32-bit mantissa and
keeps the high word of the 64-bit product (qmath). Vectorized by LLVM from
the scalar loop, that product widens every lane to i64 first (vextracti128,
two vpmovzxdq, and a vshufps + vpermpd to gather the high words back): five
shuffles per 8 lanes on the two shuffle ports, which bound the loop. Here the
loop is written on vectors, and the product as two 32 x 32 -> 64 multiplies of
the even and odd lanes in place (vpmuldq reads the low half of each 64-bit
lane) merged by a shift and a blend (vector_body.Program). Each step of the
body is the loop's own op on vectors, so the results are the same bits.

Taken: all-parallel linalg.generic ops on static memrefs whose body has such a
product (or is qmath's 32-bit form: an i32 multiply and shift, to bytes),
with one output through an identity map, unit inner strides, and inputs
read either along the innermost dim with unit stride (loaded as vectors) or
not at all along it (one scalar per vector, broadcast). Where the
last two dims are one run of memory everywhere they are one loop
(`_mergeable`), and a row that is not a multiple of the step ends with one
more step (half a step where the rest fits in one) ending at the row's end,
overlapping the one before.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from qc.mlir import ir

from .base import Pass, append_functions, collect_ops
from .gemm_epilogue import _all_parallel, _dense, _identity, _maps, _root
from .lower_gemm import constant_global
from .vector_body import operand_indices, program_of, splat


@dataclass(frozen=True)
class VectorRequant(Pass):
    """Needs bufferized IR. Leaves func.call to a private function per
    requantization loop (scf.for, vector loads and stores, arith on vectors)."""

    name = "qc-vector-requant"
    lanes: int = 16  # i32 lanes per step: two AVX2 registers, so the i8 results pack into one store
    # AVX-512 VBMI (vpermi2b): a second stage that depends only on a clamped 8-bit value and
    # per-row constants is looked up in a table per row (requant_table), 64 outputs a step.
    table: bool = False

    def apply(self, module: ir.Module) -> None:
        from qc.mlir import func

        symbols = ir.SymbolTable(module.operation)
        count = 0
        for op in collect_ops(module.operation, ("linalg.generic",)):
            plan = _plan(op.operation, symbols) if len(op.outputs) == 1 else None
            if plan is None:
                continue
            name = f"qc_requant_{count}"
            count += 1
            program, kinds, indices, ranges = plan
            operands = list(op.operation.operands)
            shape = list(ir.MemRefType(operands[-1].type).shape)
            with ir.InsertionPoint(op.operation), op.operation.location:
                if _mergeable(operands, kinds, indices, len(shape)):
                    operands, indices, shape = _merge_rows(operands, kinds, indices, shape)
                overlap = all(_root(v) != _root(operands[-1]) for v in operands[:-1])
                table = self._table(module, symbols, op.operation, program, operands, kinds, indices) \
                    if self.table else None
                if table is not None:
                    table, data = table
                    # The table is one more input (kind "t"), indexed as the scalars it replaces.
                    operands, kinds, indices = (operands[:-1] + [data] + operands[-1:], kinds + ["t"],
                                                indices + [indices[table.inputs[0]]])
                append_functions(module, symbols, _function(name, operands, program, kinds, indices, ranges,
                                                            shape, self.lanes, overlap, table))
                func.CallOp([], ir.FlatSymbolRefAttr.get(name), operands)
            op.operation.erase()

    @staticmethod
    def _table(module, symbols, op, program, operands, kinds, indices):
        """(the requant_table.Table, a get_global of its data) or None."""
        from . import requant_table

        values = {}
        for i, kind in enumerate(kinds):
            found = constant_global(symbols, operands[i]) if kind == "s" else None
            if found is not None:
                attr, ty = found[1], ir.MemRefType(operands[i].type)
                data = np.full(ty.shape, ir.IntegerAttr(attr.get_splat_value()).value, np.int64) if attr.is_splat \
                    else np.array(attr).astype(np.int64).reshape(ty.shape)
                values[i] = data
        t = requant_table.plan(program, kinds, values)
        if t is None or any(indices[i] != indices[t.inputs[0]] for i in t.inputs):
            return None
        n = 0
        while f"__requant_table_{n}" in symbols:
            n += 1
        return t, requant_table.table_global(module, symbols, f"__requant_table_{n}", t.data, op)


def _plan(op: ir.Operation, symbols: ir.SymbolTable):
    """(program, per input: "v" vector | "s" scalar, index lists, the value
    ranges of constant integer scalar inputs) or None, for a generic with one
    output."""
    if not _all_parallel(op) or len(op.results) or len(op.regions[0].blocks[0].arguments) != len(op.operands):
        return None
    tys = [v.type for v in op.operands]
    if not all(isinstance(t, ir.MemRefType) and ir.MemRefType(t).has_static_shape for t in tys):
        return None
    maps = _maps(op)
    out_ty = ir.MemRefType(tys[-1])
    if not _identity(maps[-1]) or out_ty.rank < 1 or out_ty.get_strides_and_offset()[0][-1] != 1:
        return None
    program = program_of(op)
    if program is None or not (program.high_words() or _word_form(program)):
        return None
    last = out_ty.rank - 1
    kinds, indices = [], []
    for v, m in zip(op.operands[:-1], maps[:-1]):
        idx = operand_indices(m)
        if idx is None:
            return None
        ty = ir.MemRefType(v.type)
        if last in idx:
            if idx[-1] != last or idx.count(last) != 1 or ty.get_strides_and_offset()[0][-1] != 1:
                return None
            kinds.append("v")
        else:
            kinds.append("s")
        indices.append(idx)
    ranges = constant_ranges(symbols, {i: v for i, (v, kind) in enumerate(zip(op.operands[:-1], kinds))
                                       if kind == "s"})
    return program, kinds, indices, ranges


def _word_form(program) -> bool:
    """qmath's 32-bit requantization: an i32 multiply and shift, nothing
    wider, bytes out. LLVM's loop vectorizer would widen it to 8 lanes with
    a narrowing per vector; here it gets the 16-lane loop and, with `table`,
    the table of its second stage."""
    names = {(s.name, s.type) for s in program.steps}
    shifts = {("arith.shrui", "i32"), ("arith.shrsi", "i32")}
    return (program.out_type == "i8" and ("arith.muli", "i32") in names and bool(names & shifts)
            and not any(t == "i64" for _, t in names))


def constant_ranges(symbols: ir.SymbolTable, values: dict) -> dict[int, tuple[int, int]]:
    """The (min, max) of each of `values` (input index -> memref) that is
    an integer constant global: the bounds Program.emit takes."""
    ranges = {}
    for i, v in values.items():
        found = constant_global(symbols, v)
        if found is not None and isinstance(ir.MemRefType(v.type).element_type, ir.IntegerType):
            attr = found[1]
            data = [ir.IntegerAttr(attr.get_splat_value()).value] if attr.is_splat else np.array(attr).ravel()
            ranges[i] = (int(np.min(data)), int(np.max(data)))
    return ranges


def _rows_contiguous(ty: ir.MemRefType) -> bool:
    """Whether the last two dims of ty are one run of memory."""
    strides, _ = ty.get_strides_and_offset()
    return ty.rank >= 2 and strides[-1] == 1 and strides[-2] == ty.shape[-1]


def _mergeable(operands, kinds, indices, rank: int) -> bool:
    """Whether the loop's last two dims can be one: every vector operand and
    the output hold them as their own last two dims, in one run of memory, and
    no scalar operand depends on the second to last. (Rows of 56 are then a
    run of 56 * H, with no short step at the end of each.)"""
    if rank < 2:
        return False
    for v, kind, idx in zip(operands[:-1], kinds, indices):
        ty = ir.MemRefType(v.type)
        if kind == "v" and (idx[-2:] != [rank - 2, rank - 1] or not _rows_contiguous(ty)):
            return False
        if kind == "s" and rank - 2 in idx:
            return False
    return _rows_contiguous(ir.MemRefType(operands[-1].type))


def _merge_rows(operands, kinds, indices, shape):
    """The operands with their last two dims collapsed (vector ones and the
    output), and the loop's indices and shape to match."""
    from qc.mlir import memref

    def collapse(v):
        ty = ir.MemRefType(v.type)
        strides, offset = ty.get_strides_and_offset()
        new_shape = ty.shape[:-2] + [ty.shape[-2] * ty.shape[-1]]
        layout = None if _dense(ty) else ir.StridedLayoutAttr.get(offset, strides[:-2] + [1])
        out_ty = ir.MemRefType.get(new_shape, ty.element_type, layout)
        i64 = ir.IntegerType.get_signless(64)
        groups = [[i] for i in range(ty.rank - 2)] + [[ty.rank - 2, ty.rank - 1]]
        return memref.CollapseShapeOp(out_ty, v, ir.ArrayAttr.get(
            [ir.ArrayAttr.get([ir.IntegerAttr.get(i64, i) for i in g]) for g in groups])).result

    rank = len(shape)
    new_ops, new_idx = [], []
    for v, kind, idx in zip(operands[:-1], kinds, indices):
        if kind == "v":
            new_ops.append(collapse(v))
            new_idx.append(idx[:-2] + [rank - 2])
        else:
            new_ops.append(v)
            new_idx.append(idx)
    return new_ops + [collapse(operands[-1])], new_idx, shape[:-2] + [shape[-2] * shape[-1]]


def _function(name: str, operands, program, kinds, indices, ranges, shape, lanes: int, overlap: bool,
              table=None) -> str:
    """The loop nest: the outer dims one by one, the innermost in steps of
    `lanes`; the rest of a row as one more step (or half step) ending at the
    row's end, overlapping the one before (`overlap`: no input shares the
    output's buffer, so those outputs are computed again from the same
    inputs), else in steps of halves down to single lanes. With
    `table` (a requant_table.Table, its data the operand of kind "t"), rows
    first go in steps of 64 outputs that compute the value before the table's
    clamp for four vectors of 16 lanes, narrow them to bytes and look the
    bytes up (byte_pack)."""
    from . import byte_pack
    from .lower_gemm import _Emitter

    e = _Emitter()
    e.indent = 1
    rank = len(shape)
    width = shape[-1]
    args = [f"%a{i}" for i in range(len(operands) - 1)] + ["%out"]
    types = [str(v.type) for v in operands]
    ivs = [f"%i{d}" for d in range(rank)]

    def index_list(idx, j: str) -> str:
        parts = []
        for d in idx:
            if isinstance(d, tuple):
                parts.append(e.idx(d[1]))
            else:
                parts.append(j if d == rank - 1 else ivs[d])
        return ", ".join(parts)

    def body(j: str, n: int, scalars: dict[int, str], consts: dict, until=None) -> str:
        vals = dict(scalars)
        for i, kind in enumerate(kinds):
            if kind == "v":
                v = e.fresh("v")
                ety = program.args[i]
                e.emit(f"{v} = vector.load {args[i]}[{index_list(indices[i], j)}] : {types[i]}, vector<{n}x{ety}>")
                vals[i] = v
        return program.emit(e, n, vals, consts, ranges, until=until)

    def step(j: str, n: int, scalars: dict[int, str], consts: dict) -> None:
        out = body(j, n, scalars, consts)
        e.emit(f"vector.store {out}, %out[{', '.join(ivs[:-1] + [j])}] : {types[-1]}, "
               f"vector<{n}x{program.out_type}>")

    tables: list[str] = []  # the current row's table, as four vector<64xi8>

    def table_step(j: str, scalars: dict[int, str], consts: dict) -> None:
        quarters = []
        for q in range(4):
            jq = j if q == 0 else e.fresh("j")
            if q:
                e.emit(f"{jq} = arith.addi {j}, {e.idx(16 * q)} : index")
            # The value before the clamp, one bound, the offset: the packs' saturation is the other bound.
            x = body(jq, 16, scalars, consts, until=table.value)
            op, bound = table.guard
            g, a = e.fresh("g"), e.fresh("g")
            e.emit(f"{g} = {op} {x}, {splat(e, consts, bound, 'vector<16xi32>')} : vector<16xi32>")
            e.emit(f"{a} = arith.addi {g}, {splat(e, consts, table.offset, 'vector<16xi32>')} : vector<16xi32>")
            quarters.append(a)
        out = byte_pack.emit_in_order(e, byte_pack.emit_table_lookup(e, byte_pack.emit_packs(e, quarters), tables))
        e.emit(f"vector.store {out}, %out[{', '.join(ivs[:-1] + [j])}] : {types[-1]}, vector<64xi8>")

    def inner() -> None:
        # Scalars read once per row of the innermost dim, broadcast per width.
        sc = {}
        for i, kind in enumerate(kinds):
            if kind == "s":
                s = e.fresh("s")
                e.emit(f"{s} = memref.load {args[i]}[{index_list(indices[i], '')}] : {types[i]}")
                sc[i] = s
        if table is not None:
            t = kinds.index("t")
            tables[:] = [e.fresh("tab") for _ in range(4)]
            for k, tab in enumerate(tables):
                where = ", ".join(filter(None, (index_list(indices[t], ""), e.idx(64 * k))))
                e.emit(f"{tab} = vector.load {args[t]}[{where}] : {types[t]}, vector<64xi8>")

        def bcast(n):
            out = {}
            for i, s in sc.items():
                b = e.fresh("b")
                e.emit(f"{b} = vector.broadcast {s} : {program.args[i]} to vector<{n}x{program.args[i]}>")
                out[i] = b
            return out

        pos = 0
        if table is not None and width >= 64:
            b = bcast(16)
            consts: dict = {}
            pos = width - width % 64
            e.for_loop(ivs[-1], e.idx(0), e.idx(pos), 64, lambda: table_step(ivs[-1], b, consts))
            if overlap and pos < width:
                table_step(e.idx(width - 64), b, {})  # ending at the row's end, as below
                return
        main = width - width % lanes if not pos else 0
        if main:
            b = bcast(lanes)
            consts: dict = {}
            e.for_loop(ivs[-1], e.idx(0), e.idx(main), lanes, lambda: step(ivs[-1], lanes, b, consts))
            pos = main
            if overlap and pos < width:
                # One more step ending at the row's end: half a step where the
                # rest fits in one (a row of 56: 3 x 16 + 8, not 3 x 16 + 16
                # of which 8 again).
                n = lanes // 2 if width - pos <= lanes // 2 else lanes
                step(e.idx(width - n), n, bcast(n) if n != lanes else b, {})
                return
        # The rest in halves, quarters, ... then single lanes.
        n = lanes
        while pos < width:
            while n > 1 and width - pos < n:
                n //= 2
            count = (width - pos) // n
            b = bcast(n)
            consts = {}
            for _ in range(count):
                step(e.idx(pos), n, b, consts)
                pos += n

    def nest(d: int) -> None:
        if d == rank - 1:
            inner()
            return
        e.for_loop(ivs[d], e.idx(0), e.idx(shape[d]), 1, lambda: nest(d + 1))

    nest(0)
    consts = [f"  {c} = arith.constant {v} : index" for v, c in sorted(e.consts.items())]
    params = ", ".join(f"{a}: {t}" for a, t in zip(args, types))
    decls = byte_pack.declarations(byte_pack.TABLE_HELPERS) if table is not None else []
    return "\n".join([*decls, f"func.func private @{name}({params}) {{", *consts, *e.lines, "  return", "}"]) + "\n"
