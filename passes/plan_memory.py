"""qc-plan-memory: the entry's intermediate buffers as offsets into one arena.

Needs bufferized IR whose entry is a straight list of ops (qc-outline-ops
leaves it so). Every static `memref.alloc` at the entry's top level, and
those at the top level of the private functions the entry calls (the GEMM
packing buffers), becomes a `memref.view` into one i8 buffer, the arena,
which the entry takes as its last argument; the runtime allocates it once
per context, so a run allocates nothing. An alloc that only views use any
more (a kernel folded away its last reader and writer) is erased first.

Lifetimes are intervals of top-level op positions, from a buffer's first to
its last use through any of its views. Two buffers may share bytes when
their intervals do not meet, and also when one is the input and the other
the output of an elementwise op (every map an identity, every loop
parallel) that is the input's last use and the output's first: each element
is read before it is written, so the output overwrites its input in place.
Where the two do get the same bytes, the op then reads that element through
its output: LLVM vectorizes a loop over two pointers behind a run-time check
that they do not overlap, which exactly coinciding buffers fail, so every
call took the scalar copy of the loop (an attention block's scaling of its
scores: 4.7% of the transformer encoder layer).

Offsets come from the greedy heuristics of mobile inference engines: the
buffers are placed one at a time (largest first, or by lifetime), each into
a gap left by the placed buffers it meets in time (its in-place partner's
offset first); the smallest of a few such orders wins. The module records the
arena size, the sum of all buffers and the lower bound (the largest total
live at one op) for `qc compile --report`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from qc.mlir import arith, func, ir, memref

from .base import Pass, collect_ops

ARENA_ATTRS = ("qc.arena_bytes", "qc.arena_intermediates", "qc.arena_lower_bound", "qc.arena_buffers")

# Ops whose memref results alias their memref operand.
_VIEWS = {"memref.subview", "memref.collapse_shape", "memref.expand_shape", "memref.cast",
          "memref.reinterpret_cast", "memref.view", "memref.transpose"}


@dataclass
class _Buffer:
    alloc: ir.Operation
    size: int  # bytes, rounded up to the alignment
    raw: int  # bytes
    start: int = 0  # first top-level op that uses it
    end: int = 0  # last one
    partners: set = field(default_factory=set)  # buffer indices it may share bytes with in place
    offset: int | None = None


@dataclass(frozen=True)
class PlanMemory(Pass):
    name = "qc-plan-memory"
    entry: str = "qc_model"
    alignment: int = 64
    in_place: bool = True  # elementwise outputs may overwrite their dying inputs

    def apply(self, module: ir.Module) -> None:
        symbols = ir.SymbolTable(module.operation)
        if self.entry not in symbols:
            return
        fn = symbols[self.entry].opview
        body = fn.regions[0].blocks[0]
        _hoist_callee_allocs(module, body)
        _erase_unread(body)
        ops = list(body.operations)
        position = {op.operation: i for i, op in enumerate(ops)}
        buffers = [_Buffer(op.operation, _round(n, self.alignment), n)
                   for op in ops if (n := _plannable_bytes(op.operation)) is not None]
        for b in buffers:
            b.start, b.end = _live_range(b.alloc, position, body.owner)
        candidates = _pair_in_place(buffers, ops, symbols) if self.in_place else []
        size = _assign_offsets(buffers, self.alignment)
        for i, j, read in candidates:
            if buffers[i].offset == buffers[j].offset:
                read()
        attrs = module.operation.attributes
        i64 = ir.IntegerType.get_signless(64)
        figures = (size, sum(b.raw for b in buffers), _lower_bound(buffers), len(buffers))
        for name, value in zip(ARENA_ATTRS, figures):
            attrs[name] = ir.IntegerAttr.get(i64, value)
        if buffers:
            _rewrite(fn, body, buffers, size)


def _round(n: int, align: int) -> int:
    return (n + align - 1) // align * align


def _plannable_bytes(op: ir.Operation) -> int | None:
    """The byte size of a static, identity-layout alloc of ints or floats; None otherwise."""
    if op.name != "memref.alloc" or op.operands:
        return None
    ty = ir.MemRefType(op.results[0].type)
    et = ty.element_type
    if not _identity_layout(ty) or ty.memory_space is not None:
        return None
    if isinstance(et, ir.IntegerType):
        bits = et.width
    elif isinstance(et, (ir.F16Type, ir.BF16Type, ir.F32Type, ir.F64Type)):
        bits = et.width
    else:
        return None
    if bits % 8:  # i1: bool buffers become bytes later (qc-bool-memory)
        return None
    n = bits // 8
    for d in ty.shape:
        n *= d
    return n


def _aliases(value: ir.Value) -> list[ir.Value]:
    """value and every memref derived from it through view ops."""
    out, work = [], [value]
    while work:
        v = work.pop()
        out.append(v)
        for use in v.uses:
            owner = use.owner.operation
            if owner.name in _VIEWS:
                work.extend(r for r in owner.results if isinstance(r.type, ir.MemRefType))
    return out


def _base(value: ir.Value) -> ir.Value:
    """The memref that value views, through any chain of view ops."""
    while isinstance(value, ir.OpResult):
        owner = value.owner.operation
        if owner.name not in _VIEWS or not len(owner.operands):
            break
        value = owner.operands[0]
    return value


def _erase_unread(body: ir.Block) -> None:
    """Erases the allocs that nothing reads or writes any more, with their views
    (a kernel that folded its consumer, as qc-vector-qdepthwise folds the
    requantization, leaves its i32 buffer so): they would hold arena bytes."""
    dead = []  # per unread alloc: its views, users before the views they use, then the alloc
    for op in body.operations:
        op = op.operation
        if op.name != "memref.alloc":
            continue
        views = []
        for v in _aliases(op.results[0]):
            owners = [use.owner.operation for use in v.uses]
            if any(o.name not in _VIEWS and o.name != "memref.dealloc" for o in owners):
                break
            views += [o for o in owners if o.name == "memref.dealloc"]
            if v != op.results[0]:
                views.append(v.owner)
        else:
            dead.append([*reversed(views), op])
    for ops in dead:  # collected first: the views may be later ops of this block
        for op in ops:
            op.erase()


def _top_level(op: ir.Operation, fn_op: ir.Operation) -> ir.Operation:
    while op.parent is not None and op.parent != fn_op:
        op = op.parent
    return op


def _live_range(alloc: ir.Operation, position: dict, fn_op) -> tuple[int, int]:
    uses = []
    for v in _aliases(alloc.results[0]):
        for use in v.uses:
            owner = use.owner.operation
            if owner.name not in _VIEWS:
                uses.append(position[_top_level(owner, fn_op.operation)])
    if not uses:
        return position[alloc], position[alloc]
    return min(uses), max(uses)


def _hoist_callee_allocs(module: ir.Module, body: ir.Block) -> None:
    """Static allocs at the top of a private function called only from the
    entry's top level become arguments, allocated at each call site instead,
    so that they too get arena offsets (one per call: the calls' lifetimes
    differ)."""
    symbols = ir.SymbolTable(module.operation)
    calls: dict[str, list] = {}
    for op in collect_ops(module.operation, ("func.call",)):
        calls.setdefault(ir.FlatSymbolRefAttr(op.attributes["callee"]).value, []).append(op)
    for name, sites in calls.items():
        if name not in symbols or any(s.operation.block != body for s in sites):
            continue
        callee = symbols[name].opview
        if callee.is_external or callee.sym_visibility is None:
            continue
        block = callee.regions[0].blocks[0]
        allocs = [op.operation for op in block.operations if _plannable_bytes(op.operation) is not None]
        if not allocs:
            continue
        for alloc in allocs:
            arg = block.add_argument(alloc.results[0].type, alloc.location)
            alloc.results[0].replace_all_uses_with(arg)
            alloc.erase()
        types = [a.type for a in block.arguments]
        callee.attributes["function_type"] = ir.TypeAttr.get(
            ir.FunctionType.get(types, list(callee.type.results)))
        for site in sites:
            _add_call_buffers(site, [ir.MemRefType(t) for t in types[len(site.operands):]])


def _add_call_buffers(site, types: list) -> None:
    """Recreates the call `site` with a new alloc of each type appended to its operands."""
    with ir.InsertionPoint(site.operation), site.location:
        extra = [memref.AllocOp(t, [], [], alignment=ir.IntegerAttr.get(ir.IntegerType.get_signless(64), 64)).result
                 for t in types]
        new = func.CallOp([r.type for r in site.results], ir.FlatSymbolRefAttr.get(
            ir.FlatSymbolRefAttr(site.attributes["callee"]).value), list(site.operands) + extra)
    for old, rep in zip(site.results, new.results):
        old.replace_all_uses_with(rep)
    site.operation.erase()


def _pair_in_place(buffers: list[_Buffer], ops: list, symbols: ir.SymbolTable) -> list:
    """Marks (input, output) pairs of elementwise ops where the output may
    take the input's bytes; returns (input buffer, output buffer, a function
    that makes the op read the output in place of the input) per pair."""
    by_value = {}
    for i, b in enumerate(buffers):
        for v in _aliases(b.alloc.results[0]):
            by_value[v] = i
    candidates = []
    for pos, op in enumerate(ops):
        for src, dst, read in _elementwise_pairs(op.operation, symbols):
            i, j = by_value.get(src), by_value.get(dst)
            if i is None or j is None or i == j:
                continue
            a, b = buffers[i], buffers[j]
            if a.end == pos and b.start == pos and a.size == b.size:
                a.partners.add(j)
                b.partners.add(i)
                candidates.append((i, j, read))
    return candidates


def _elementwise_pairs(op: ir.Operation, symbols: ir.SymbolTable) -> list:
    """(input, output, read) for operands of `op` that an elementwise
    linalg.generic reads and writes at the same element of the same-shaped
    contiguous buffer; `op` is the generic itself or a call of a function
    that is only that generic. read() makes the generic read that element
    from the output instead, for when both get the same bytes: then LLVM
    sees one pointer read and written at the same index and vectorizes the
    loop as it is, where two would fail its run-time overlap check (they do
    overlap, exactly) and take the scalar loop."""
    generic, operands, own = op, list(op.operands), True
    if op.name == "func.call":
        callee_ref = op.attributes["callee"]
        name = ir.FlatSymbolRefAttr(callee_ref).value
        if name not in symbols:
            return []
        callee = symbols[name].opview
        if callee.is_external:
            return []
        inner = [o.operation for o in callee.regions[0].blocks[0].operations
                 if o.operation.name not in ("arith.constant", "func.return")]
        if len(inner) != 1 or inner[0].name != "linalg.generic":
            return []
        generic = inner[0]
        args = list(callee.regions[0].blocks[0].arguments)
        outer = dict(zip(args, op.operands))
        if any(v not in outer for v in generic.operands):
            return []
        operands = [outer[v] for v in generic.operands]
        # Another call of the function may pass buffers that do not coincide.
        own = sum(1 for o in op.block.operations
                  if o.operation.name == "func.call" and o.operation.attributes["callee"] == callee_ref) == 1
    if generic.name != "linalg.generic":
        return []
    iters = [str(a) for a in generic.attributes["iterator_types"]]
    if any("parallel" not in t for t in iters):
        return []
    maps = [ir.AffineMapAttr(m).value for m in generic.attributes["indexing_maps"]]
    n_in = len(generic.operands) - len(generic.results) - _num_inits(generic)
    if n_in < 0:
        return []
    ins, outs = operands[:n_in], operands[n_in:]
    pairs = []
    for k, out in enumerate(outs):
        if not _is_identity(maps[n_in + k]):
            continue
        for m, src in enumerate(ins):
            # Two views of one buffer are one buffer.
            same_buffer_elsewhere = [x for x in range(n_in) if x != m and _base(ins[x]) == _base(src)]
            if _is_identity(maps[m]) and not same_buffer_elsewhere and _same_contiguous(src, out):
                read = _reader(generic, m, n_in + k) if own and src.type == out.type else _no_op
                pairs.append((src, out, read))
    return pairs


def _no_op() -> None:
    pass


def _reader(generic: ir.Operation, src: int, dst: int):
    """A function that makes the generic's body use its operand dst's
    element where it used operand src's (the same bytes)."""
    def read() -> None:
        block = generic.regions[0].blocks[0]
        block.arguments[src].replace_all_uses_with(block.arguments[dst])
    return read


def _num_inits(generic: ir.Operation) -> int:
    sizes = generic.attributes["operandSegmentSizes"]
    return list(ir.DenseI32ArrayAttr(sizes))[1]


def _is_identity(m: ir.AffineMap) -> bool:
    return m.n_dims == len(m.results) and m.n_symbols == 0 and all(
        str(r) == f"d{i}" for i, r in enumerate(m.results))


def _same_contiguous(a: ir.Value, b: ir.Value) -> bool:
    if not (isinstance(a.type, ir.MemRefType) and isinstance(b.type, ir.MemRefType)):
        return False
    ta, tb = ir.MemRefType(a.type), ir.MemRefType(b.type)
    return (ta.shape == tb.shape and _identity_layout(ta) and _identity_layout(tb)
            and _bits(ta.element_type) == _bits(tb.element_type))


def _bits(t: ir.Type) -> int:
    return t.width if hasattr(t, "width") else -1


def _meets(a: _Buffer, b: _Buffer) -> bool:
    return a.start <= b.end and b.start <= a.end


# Orders to place buffers in: the plan keeps the smallest arena of these.
# Largest first is the usual winner; by first use or by lifetime wins when
# many equal-sized buffers have staggered lifetimes (a transformer layer).
_ORDERS = (
    lambda b: (-b.size, b.start),
    lambda b: (-b.size * (b.end - b.start + 1), b.start),
    lambda b: (-(b.end - b.start), -b.size),
    lambda b: (b.start, -b.size),
)


def _assign_offsets(buffers: list[_Buffer], align: int) -> int:
    """Places the buffers in each order of _ORDERS, both into the smallest
    gap that fits and into the lowest one, and keeps the smallest arena.
    Returns the arena size."""
    best = None
    for order in _ORDERS:
        for smallest_gap in (True, False):
            offsets = _place(buffers, sorted(range(len(buffers)), key=lambda i: order(buffers[i])),
                             align, smallest_gap)
            size = max((o + b.size for o, b in zip(offsets, buffers)), default=0)
            if best is None or size < best[0]:
                best = (size, offsets)
    for b, o in zip(buffers, best[1]):
        b.offset = o
    return best[0]


def _place(buffers: list[_Buffer], order: list[int], align: int, smallest_gap: bool) -> list[int]:
    """Offsets for the buffers placed one by one in `order`, each in a gap
    left by the placed buffers it meets in time (its in-place partner's
    offset first, when free)."""
    offsets: list[int | None] = [None] * len(buffers)
    placed: list[int] = []
    for i in order:
        b = buffers[i]
        meets = [j for j in placed if _meets(b, buffers[j])]
        busy = sorted((offsets[j], offsets[j] + buffers[j].size) for j in meets)

        def shares(lo: int) -> bool:
            """Whether b may start at lo: each placed buffer it meets in
            time lies apart from it or is a partner starting at lo too. A
            partner is busy like any other buffer wherever b does not
            coincide with it (b placed at another partner's offset, or in a
            gap): part over it, an op would read elements already written."""
            return all((j in b.partners and offsets[j] == lo)
                       or _fits(lo, b.size, [(offsets[j], offsets[j] + buffers[j].size)]) for j in meets)

        off = next((offsets[j] for j in sorted(b.partners) if offsets[j] is not None and shares(offsets[j])), None)
        offsets[i] = off if off is not None else _gap(busy, b.size, align, smallest_gap)
        placed.append(i)
    return offsets


def _fits(lo: int, size: int, busy: list[tuple[int, int]]) -> bool:
    return all(hi <= lo or lo + size <= start for start, hi in busy)


def _gap(busy: list[tuple[int, int]], size: int, align: int, smallest: bool) -> int:
    """The offset of the smallest (or the lowest) gap between the busy ranges
    that holds `size` bytes; above them all if none does."""
    best, best_waste, cursor = None, None, 0
    for start, hi in busy:
        if start - cursor >= size and (best_waste is None or start - cursor - size < best_waste):
            best, best_waste = cursor, start - cursor - size
            if not smallest:
                break
        cursor = max(cursor, _round(hi, align))
    return best if best is not None else cursor


def _lower_bound(buffers: list[_Buffer]) -> int:
    """The largest total size live at one op; at an in-place op an input that
    dies there and its output count once."""
    bound = 0
    for pos in {b.start for b in buffers}:
        live = [i for i, b in enumerate(buffers) if b.start <= pos <= b.end]
        live_set = set(live)
        total = 0
        for i in live:
            b = buffers[i]
            handed_over = b.end == pos and any(
                j in live_set and buffers[j].start == pos for j in b.partners)
            if not handed_over:
                total += b.raw
        bound = max(bound, total)
    return bound


def _rewrite(fn, body: ir.Block, buffers: list[_Buffer], size: int) -> None:
    """Appends the arena argument to the entry and turns each alloc into a view of it."""
    with fn.location:
        arena_type = ir.MemRefType.get([size], ir.IntegerType.get_signless(8))
    arena = body.add_argument(arena_type, fn.location)
    fn.attributes["function_type"] = ir.TypeAttr.get(
        ir.FunctionType.get([a.type for a in body.arguments], list(fn.type.results)))
    if "arg_attrs" in fn.attributes:
        attrs = list(fn.attributes["arg_attrs"])
        fn.attributes["arg_attrs"] = ir.ArrayAttr.get(attrs + [ir.DictAttr.get({})])
    offsets = {}
    with ir.InsertionPoint.at_block_begin(body), fn.location:  # one constant per offset
        for off in sorted({b.offset for b in buffers}):
            offsets[off] = arith.ConstantOp(ir.IndexType.get(), off).result
    for b in buffers:
        with ir.InsertionPoint(b.alloc), b.alloc.location:
            view = memref.ViewOp(b.alloc.results[0].type, arena, offsets[b.offset], []).result
        b.alloc.results[0].replace_all_uses_with(view)
        b.alloc.erase()


def _identity_layout(t: ir.MemRefType) -> bool:
    return isinstance(t.layout, ir.AffineMapAttr) and _is_identity(t.layout.value)
