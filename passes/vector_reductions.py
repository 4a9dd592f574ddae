"""qc-vector-reductions: f32 row sums, maxima and minima as vector code.

A linalg.generic that reduces its innermost loop (LayerNormalization's mean
and variance, Softmax's max and sum, ReduceSum / ReduceMean / ReduceMax over
the last axis) lowers to a scalar loop that adds into the output element one
value at a time: a chain of dependent adds (3-4 cycles each) with a store
per element, since the output buffer may alias the input. LLVM keeps that
order: reassociating a float sum changes its bits. Here each row is written
as vector code instead: `unroll` accumulators of `lanes` lanes over the row,
then the accumulators combined pairwise and the lanes folded in halves, the
row's tail (less than a vector) in halving steps, and last the output's
initial value:

    out[i] = init  (+)  fold(acc_0 (+) acc_1 (+) ...)  (+)  tail

A max or min gives the same bits in any order. A sum is reassociated: its
rounding differs from the sequential sum's by the usual few ulps of the
row's magnitude (it is then a pairwise sum of `lanes * unroll` partial sums,
no less accurate). The order is fixed at compile time: the same bits on
every run and thread count.

Taken: f32 generics on memrefs with one output, parallel loops then
reduction loops; the output indexed by the parallel loops in order; an input
read along the reductions as its last dims, one run of memory (merged into
one row: GlobalAveragePool's H x W), or not at all (one scalar per row,
broadcast); a body of elementwise arith ops ending in addf / maximumf /
minimumf of the output's block argument; the reduction's length static.
Outer dims may be dynamic (qc-parallel-loops' row ranges).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from qc.mlir import func, ir

from .base import Pass, append_functions, collect_ops
from .gemm_epilogue import _dense, _maps, _root
from .vector_body import Program, operand_indices, program_of

# The combiner, and the accumulators' start: a value it leaves unchanged.
COMBINERS = {"arith.addf": "-0.0", "arith.maximumf": "0xFF800000", "arith.minimumf": "0x7F800000"}


@dataclass(frozen=True)
class VectorReductions(Pass):
    """Needs bufferized linalg (after qc-parallel-loops, which splits the
    rows over threads). Leaves func.call to a private function per reduction
    (scf.for, vector loads, arith on vectors, a scalar store per row)."""

    name = "qc-vector-reductions"
    lanes: int = 8  # f32 lanes per vector register
    unroll: int = 4  # accumulators: enough independent adds to fill the FP pipes

    def apply(self, module: ir.Module) -> None:
        symbols = ir.SymbolTable(module.operation)
        count = 0
        for op in collect_ops(module.operation, ("linalg.generic",)):
            plan = _plan(op.operation)
            if plan is None:
                continue
            name = f"qc_reduce_{count}"
            while name in symbols:
                count += 1
                name = f"qc_reduce_{count}"
            count += 1
            *plan, merged = plan
            with ir.InsertionPoint(op.operation), op.operation.location:
                operands = [_merge_trailing(v, n) for v, n in zip(op.operation.operands, merged)]
                append_functions(module, symbols, _function(name, operands, *plan, self.lanes, self.unroll))
                func.CallOp([], ir.FlatSymbolRefAttr.get(name), operands)
            op.operation.erase()


def _merge_trailing(v: ir.Value, n: int) -> ir.Value:
    """v with its last n dims collapsed into one (n <= 1: v itself); they are
    one run of memory (`_plan` checked)."""
    if n <= 1:
        return v
    from qc.mlir import memref

    ty = ir.MemRefType(v.type)
    keep = ty.rank - n
    shape = ty.shape[:keep] + [int(np.prod(ty.shape[keep:]))]
    if _dense(ty):
        out_ty = ir.MemRefType.get(shape, ty.element_type)
    else:
        strides, offset = ty.get_strides_and_offset()
        out_ty = ir.MemRefType.get(shape, ty.element_type, ir.StridedLayoutAttr.get(offset, strides[:keep] + [1]))
    i64 = ir.IntegerType.get_signless(64)
    groups = [[i] for i in range(keep)] + [list(range(keep, ty.rank))]
    return memref.CollapseShapeOp(out_ty, v, ir.ArrayAttr.get(
        [ir.ArrayAttr.get([ir.IntegerAttr.get(i64, i) for i in g]) for g in groups])).result


def _plan(op: ir.Operation):
    """(program, combiner, per input "v" vector | "s" scalar, index lists
    (the reduction dims merged into one), the reduction's length, per operand
    how many trailing dims to merge) or None."""
    iterators = [str(a) for a in op.attributes["iterator_types"]]
    first = next((i for i, t in enumerate(iterators) if "reduction" in t), None)
    if len(op.results) or first is None or any("reduction" not in t for t in iterators[first:]):
        return None
    n_in = len(op.regions[0].blocks[0].arguments) - 1
    if len(op.operands) != n_in + 1 or n_in < 1:
        return None
    if not all(isinstance(v.type, ir.MemRefType) for v in op.operands):
        return None
    out = op.operands[-1]
    out_ty = ir.MemRefType(out.type)
    if not isinstance(out_ty.element_type, ir.F32Type):
        return None
    maps = _maps(op)
    red = list(range(first, len(iterators)))
    if [str(r) for r in maps[-1].results] != [f"d{i}" for i in range(first)] or maps[-1].n_symbols:
        return None
    if any(_root(v) == _root(out) for v in op.operands[:-1]):
        return None  # an input that is the output's buffer sees the partial sums
    found = _reduction_program(op)
    if found is None:
        return None
    program, combiner = found
    kinds, indices, merged, length = [], [], [], None
    for v, m in zip(op.operands[:-1], maps[:-1]):
        idx = operand_indices(m)
        if idx is None:
            return None
        ty = ir.MemRefType(v.type)
        if any(d in idx for d in red):
            # The reduction dims are the input's last ones, in order, one run of memory.
            if idx[-len(red):] != red or any(d in idx[:-len(red)] for d in red) or not _trailing_run(ty, len(red)):
                return None
            kinds.append("v")
            indices.append(idx[:-len(red)] + [first])
            merged.append(len(red))
            length = int(np.prod(ty.shape[-len(red):]))
        else:
            kinds.append("s")
            indices.append(idx)
            merged.append(0)
    if length is None:
        return None
    return program, combiner, kinds, indices, length, merged + [0]


def _trailing_run(ty: ir.MemRefType, n: int) -> bool:
    """Whether ty's last n dims are static and one run of memory (unit stride)."""
    dyn = ir.ShapedType.get_dynamic_size()
    if any(s == dyn for s in ty.shape[-n:]):
        return False
    strides, _ = ty.get_strides_and_offset()
    expect = 1
    for size, stride in zip(reversed(ty.shape[-n:]), reversed(strides[-n:])):
        if size != 1 and stride != expect:
            return False
        expect *= size
    return True


def _reduction_program(op: ir.Operation) -> tuple[Program, str] | None:
    """The body as a Program of the value combined into the output (the
    combiner dropped), and the combiner; None unless the body's last op
    combines the output's block argument with it, and nothing else reads the
    output."""
    block = op.regions[0].blocks[0]
    body = [o.operation for o in block.operations]
    acc = block.arguments[len(block.arguments) - 1]
    if len(body) < 2 or body[-1].name != "linalg.yield" or len(body[-1].operands) != 1:
        return None
    last = body[-2]
    if last.name not in COMBINERS or body[-1].operands[0] != last.results[0]:
        return None
    a, b = last.operands
    if (a == acc) == (b == acc):
        return None
    value = b if a == acc else a
    if any(o == acc for inner in body[:-2] for o in inner.operands):
        return None
    # The body without its combiner yields `value`: replay that.
    program = program_of(op, result=value, n_ops=len(body) - 2)
    if program is None or program.out_type != "f32":
        return None
    return program, last.name


def _function(name: str, operands, program: Program, combiner: str, kinds, indices, length: int,
              lanes: int, unroll: int) -> str:
    from .lower_gemm import _Emitter

    e = _Emitter()
    e.indent = 1
    out_ty = ir.MemRefType(operands[-1].type)
    rank = out_ty.rank  # the parallel loops
    args = [f"%a{i}" for i in range(len(operands) - 1)] + ["%out"]
    types = [str(v.type) for v in operands]
    ivs = [f"%i{d}" for d in range(rank)]
    vec = f"vector<{lanes}xf32>"
    op = combiner

    def index_list(idx, j: str) -> str:
        return ", ".join(e.idx(d[1]) if isinstance(d, tuple) else (j if d == rank else ivs[d]) for d in idx)

    def combine(x: str, y: str, ty: str) -> str:
        r = e.fresh("r")
        e.emit(f"{r} = {op} {x}, {y} : {ty}")
        return r

    def value(j: str, n: int, scalars: dict[int, str], consts: dict) -> str:
        """The body's value at elements [j, j + n) of the row, as vector<n x f32>."""
        vals = dict(scalars)
        for i, kind in enumerate(kinds):
            if kind == "v":
                v = e.fresh("v")
                e.emit(f"{v} = vector.load {args[i]}[{index_list(indices[i], j)}] : {types[i]}, "
                       f"vector<{n}x{program.args[i]}>")
                vals[i] = v
        return program.emit(e, n, vals, consts)

    def fold(v: str, n: int) -> str:
        """The n lanes of v combined in halves, as a scalar."""
        while n > 1:
            h = n // 2
            ty = f"vector<{n}xf32>"
            lo, hi = e.fresh("lo"), e.fresh("hi")
            e.emit(f"{lo} = vector.shuffle {v}, {v} [{', '.join(map(str, range(h)))}] : {ty}, {ty}")
            e.emit(f"{hi} = vector.shuffle {v}, {v} [{', '.join(map(str, range(h, n)))}] : {ty}, {ty}")
            v, n = combine(lo, hi, f"vector<{h}xf32>"), h
        s = e.fresh("s")
        e.emit(f"{s} = vector.extract {v}[0] : f32 from vector<1xf32>")
        return s

    def row() -> None:
        sc = {}
        for i, kind in enumerate(kinds):
            if kind == "s":
                s = e.fresh("s")
                e.emit(f"{s} = memref.load {args[i]}[{index_list(indices[i], '')}] : {types[i]}")
                sc[i] = s

        def bcast(n: int) -> dict[int, str]:
            b = {}
            for i, s in sc.items():
                b[i] = e.fresh("b")
                e.emit(f"{b[i]} = vector.broadcast {s} : {program.args[i]} to vector<{n}x{program.args[i]}>")
            return b

        whole = length // lanes  # full vectors in the row
        total = None
        if whole:
            b = bcast(lanes)
            consts: dict = {}
            zero = e.fresh("z")
            e.emit(f"{zero} = arith.constant dense<{COMBINERS[op]}> : {vec}")
            u = min(unroll, whole)
            accs = [zero] * u
            main = whole // u * u * lanes
            if main > u * lanes:
                inner = [e.fresh("acc") for _ in range(u)]
                res = e.fresh("red")
                e.emit(f"{res}:{u} = scf.for %j = {e.idx(0)} to {e.idx(main)} step {e.idx(u * lanes)} "
                       f"iter_args({', '.join(f'{a} = {zero}' for a in inner)}) -> ({', '.join([vec] * u)}) {{")
                e.indent += 1
                nxt = []
                for k in range(u):
                    nxt.append(combine(inner[k], value(e.add("%j", k * lanes), lanes, b, consts), vec))
                e.emit(f"scf.yield {', '.join(nxt)} : {', '.join([vec] * u)}")
                e.indent -= 1
                e.emit("}")
                accs = [f"{res}#{k}" for k in range(u)]
            else:  # one round: straight-line code
                accs = [value(e.idx(k * lanes), lanes, b, consts) for k in range(u)]
            for k in range(whole - main // lanes):  # full vectors after the unrolled loop
                pos = main + k * lanes
                accs[k] = combine(accs[k], value(e.idx(pos), lanes, b, consts), vec)
            while len(accs) > 1:  # pairwise: (a0 + a1) + (a2 + a3)
                accs = [combine(accs[k], accs[k + 1], vec) if k + 1 < len(accs) else accs[k]
                        for k in range(0, len(accs), 2)]
            total = fold(accs[0], lanes)
        pos, n = whole * lanes, lanes // 2
        while pos < length:  # the tail: halves, quarters, ... of a vector
            while n > length - pos:
                n //= 2
            part = fold(value(e.idx(pos), n, bcast(n), {}), n)
            total = part if total is None else combine(total, part, "f32")
            pos += n
        init = e.fresh("init")
        here = ", ".join(ivs)
        e.emit(f"{init} = memref.load %out[{here}] : {types[-1]}")
        e.emit(f"memref.store {combine(init, total, 'f32')}, %out[{here}] : {types[-1]}")

    def nest(d: int) -> None:
        if d == rank:
            row()
            return
        size = out_ty.shape[d]
        if size == ir.ShapedType.get_dynamic_size():
            bound = e.fresh("n")
            e.emit(f"{bound} = memref.dim %out, {e.idx(d)} : {types[-1]}")
        else:
            bound = e.idx(size)
        e.for_loop(ivs[d], e.idx(0), bound, 1, lambda: nest(d + 1))

    nest(0)
    consts = [f"  {c} = arith.constant {v} : index" for v, c in sorted(e.consts.items())]
    params = ", ".join(f"{a}: {t}" for a, t in zip(args, types))
    return "\n".join([f"func.func private @{name}({params}) {{", *consts, *e.lines, "  return", "}"]) + "\n"
