"""What qc-lower-gemm folds into a GEMM kernel from the ops around it.

Before bufferized GEMMs, the frontend leaves the output's initial value in a
separate op (a bias broadcast, or a zero fill), and after it an elementwise
op (Relu, Clip, a residual Add). Each is a full pass over C in memory. The
kernel can instead start its accumulators from the bias (or zero), and apply
the elementwise chain to each register tile before storing it, so C is
written once, final:

    init:  C = bias[row] | bias[col] | 0 | a constant   (an op writing C just before)
    chain: y = max(y, a) | min(y, b) | y + R[i, j]  (the elementwise op right after)

The elementwise op may write another buffer D: the kernel then writes D and
C is never materialized. Only ops whose every map is an identity (or, for the
bias, a single row or column dim) are taken, and only when nothing else
reads C.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from qc.mlir import ir

_VIEWS = ("memref.collapse_shape", "memref.expand_shape", "memref.cast")  # views of C, as C
_CLAMPS = {"arith.maximumf": "max", "arith.maxnumf": "max", "arith.minimumf": "min", "arith.minnumf": "min"}


@dataclass
class Epilogue:
    init: str = "load"  # load | zero | splat (every element `value`) | rows (bias per row) | cols (per column)
    value: float = 0.0  # the splat's
    bias: ir.Value | None = None  # memref<M> or memref<N>
    chain: list = field(default_factory=list)  # (arith op name, constant) or ("arith.addf", None): + R
    residual: ir.Value | None = None  # R, C's shape before collapsing
    dest: ir.Value | None = None  # D, if the chain writes another buffer
    erase: list = field(default_factory=list)  # ops the kernel now does
    chain_op: ir.Operation | None = None  # the elementwise op of the chain

    def drop_chain(self) -> None:
        """Keeps the init, leaves the chain to its own loop."""
        self.erase = [o for o in self.erase if self.chain_op is None or o != self.chain_op]
        self.chain, self.residual, self.dest, self.chain_op = [], None, None, None

    def suffix(self) -> str:
        """For the kernel's name: kernels differ by what they fold."""
        if self.init == "load" and not self.chain:
            return ""
        parts = {"load": "", "zero": "z", "rows": "br", "cols": "bc", "splat": f"s{_num(self.value)}"}[self.init]
        for name, value in self.chain:
            parts += "r" if value is None else f"{_CLAMPS[name]}{_num(value)}"
        return "_e" + parts

    def static(self) -> tuple:
        """What the kernel's code depends on (not which buffers)."""
        return self.init, tuple(self.chain), self.residual is not None, self.value


def _num(v: float) -> str:
    text = f"{v:g}".replace("-", "m").replace(".", "p").replace("+", "")
    return text


def through_views(v: ir.Value, views: tuple) -> ir.Value:
    """v with the view ops named in `views` in front of it stripped."""
    while True:
        owner = getattr(v.owner, "operation", None)
        if owner is None or owner.name not in views:
            return v
        v = owner.operands[0]


def _root(v: ir.Value) -> ir.Value:
    return through_views(v, _VIEWS + ("memref.subview",))


def _uses_of_buffer(root: ir.Value) -> list[ir.Operation]:
    """The ops that use root or a view of it (not the views themselves)."""
    out, work = [], [root]
    while work:
        v = work.pop()
        for use in v.uses:
            op = use.owner.operation
            if op.name in _VIEWS + ("memref.subview",):
                work.extend(op.results)
            else:
                out.append(op)
    return out


def _touches(ops: list[ir.Operation], values: list[ir.Value]) -> bool:
    """Whether any of ops (or an op nested in them) uses a buffer of values."""
    roots = {_root(v) for v in values if v is not None}
    found = False

    def visit(inner):
        nonlocal found
        if any(isinstance(v.type, ir.MemRefType) and _root(v) in roots for v in inner.operands):
            found = True
        return ir.WalkResult.ADVANCE

    for op in ops:
        op.walk(visit)
    return found


def _identity(m: ir.AffineMap) -> bool:
    return m.n_symbols == 0 and [str(r) for r in m.results] == [f"d{i}" for i in range(m.n_dims)]


def _maps(op: ir.Operation) -> list[ir.AffineMap]:
    return [ir.AffineMapAttr(a).value for a in op.attributes["indexing_maps"]]


def _all_parallel(op: ir.Operation) -> bool:
    return all("parallel" in str(a) for a in op.attributes["iterator_types"])


def _constant(v: ir.Value) -> float | None:
    owner = getattr(v.owner, "operation", None)
    if owner is None or owner.name != "arith.constant":
        return None
    attr = owner.attributes["value"]
    return float(ir.FloatAttr(attr).value) if isinstance(attr, ir.FloatAttr) else None


def find(op: ir.Operation, c_operand: ir.Value, row_dims: list[int], col_dims: list[int],
         batch_dims: list[int] = ()) -> Epilogue:
    """The init and chain around contraction `op`, whose output operand is
    `c_operand` (a view of the buffer C); row_dims / col_dims / batch_dims:
    the dims of C (the buffer) that make the GEMM's rows, columns and batch."""
    ep = Epilogue()
    c = _root(c_operand)
    if not isinstance(c.type, ir.MemRefType) or not ir.MemRefType(c.type).has_static_shape:
        return ep
    users = set(_uses_of_buffer(c))
    ops = [o.operation for o in op.block.operations]
    i = ops.index(op)
    # The ops of C just before and after the GEMM; what lies between does not
    # touch C, and must not touch the bias, D or R either, whose reads and
    # writes move to the GEMM.
    before = next((j for j in range(i - 1, -1, -1) if ops[j] in users), None)
    after = next((j for j in range(i + 1, len(ops)) if ops[j] in users), None)
    if before is not None:
        _take_init(ep, ops[before], c, row_dims, col_dims, list(batch_dims))
        if ep.bias is not None and _touches(ops[before + 1:i], [ep.bias]):
            ep = Epilogue()
    if after is not None:
        _take_chain(ep, ops[after], c)
        # With the chain writing D, C is never written: its initial value
        # must be the kernel's own (the kernel would load D instead).
        if ep.dest is not None and ep.init == "load":
            ep.drop_chain()
        # The kernel writes D and reads R where the GEMM is: they must exist
        # there (a static view of an earlier buffer, such as a Concat's slice
        # made after the GEMM, moves ahead of it).
        if ep.chain and ep.dest is not None and not _available(ep.dest, ops[:i]) \
                and _hoist_view(ep.dest, op, ops[:i]):
            ops = [o.operation for o in op.block.operations]
            i, after = ops.index(op), ops.index(ep.chain_op)
        if ep.chain and _touches(ops[i + 1:after], [ep.dest, ep.residual]):
            ep.drop_chain()
        if ep.chain and not all(_available(v, ops[:i]) for v in (ep.dest, ep.residual) if v is not None):
            ep.drop_chain()
    # With the chain writing D, C is never written: nothing else may read it
    # (the fill right before the GEMM folds in any case). Uses of the buffer
    # before the GEMM, or after an op that writes all of it anew, see other
    # values (bufferization reuses a dead buffer).
    if ep.dest is not None:
        later = [o for o in ops[ops.index(ep.chain_op) + 1:] if o in users]
        earlier = {o for o in ops[:i] if o in users}
        rewritten = bool(later) and _overwrites(later[0], c)
        if users - {op, *ep.erase} - earlier - (set(later) if rewritten else set()):
            ep.drop_chain()
        # C outliving the function (an output) must be written as it is,
        # unless an op after the chain writes it anew.
        elif getattr(getattr(c.owner, "operation", None), "name", None) != "memref.alloc" and not rewritten:
            ep.drop_chain()
    return ep


def _whole(v: ir.Value) -> bool:
    """Whether v views all of its buffer (reshapes and casts, no subview)."""
    while (owner := getattr(v.owner, "operation", None)) is not None and owner.name in _VIEWS:
        v = owner.operands[0]
    return owner is None or owner.name != "memref.subview"


def _available(v: ir.Value, before: list[ir.Operation]) -> bool:
    """Whether v is a block argument or made by one of `before` (the ops
    ahead of the GEMM in its block)."""
    owner = getattr(v.owner, "operation", None)
    return owner is None or owner in before


def _hoist_view(v: ir.Value, op: ir.Operation, before: list[ir.Operation]) -> bool:
    """Moves v's defining op ahead of op when it is a static allocation (the
    elementwise op's own buffer, allocated after the GEMM), or a
    memref.subview with static offsets, sizes and strides of a value that
    exists there or of a static allocation (moved too: the Concat's result,
    allocated after the GEMM that computes its first part)."""
    owner = getattr(v.owner, "operation", None)
    if owner is not None and owner.name == "memref.alloc" and not len(owner.operands):
        owner.move_before(op)
        return True
    if owner is None or owner.name != "memref.subview" or len(owner.operands) != 1:
        return False
    src = getattr(owner.operands[0].owner, "operation", None)
    if not _available(owner.operands[0], before):
        if src is None or src.name != "memref.alloc" or len(src.operands):
            return False
        src.move_before(op)
    owner.move_before(op)
    return True


def _overwrites(op: ir.Operation, c: ir.Value) -> bool:
    """Whether op writes every element of buffer c without reading it first:
    a fill of c, or an all-parallel generic whose output is c itself
    (identity map) and whose body ignores the output's old value."""
    if op.name == "linalg.fill":
        return _root(op.operands[-1]) == c and _whole(op.operands[-1])
    if op.name != "linalg.generic" or len(op.results) or not _all_parallel(op):
        return False
    n_in = len(op.regions[0].blocks[0].arguments) - 1
    out = op.operands[-1]
    if len(op.operands) != n_in + 1 or _root(out) != c or not _whole(out) or not _identity(_maps(op)[-1]):
        return False
    if any(_root(v) == c for v in op.operands[:-1]):
        return False
    body = [o.operation for o in op.regions[0].blocks[0].operations]
    return not list(op.regions[0].blocks[0].arguments[-1].uses) and not _touches(body, [c])


def _take_init(ep: Epilogue, fill: ir.Operation, c: ir.Value, row_dims, col_dims, batch_dims) -> None:
    if fill.name == "linalg.fill":
        # Of C or of a reshape of all of it (a fill has no dims to map).
        if _root(fill.operands[1]) == c and _whole(fill.operands[1]) and _constant(fill.operands[0]) is not None:
            _take_splat(ep, fill, _constant(fill.operands[0]))
        return
    if fill.name == "linalg.generic" and len(fill.operands) == 1 and fill.operands[0] == c:
        # A generic that writes one constant everywhere (a bias of equal values).
        body = [o.operation for o in fill.regions[0].blocks[0].operations]
        if len(body) == 1 and _all_parallel(fill) and _constant(body[0].operands[0]) is not None:
            _take_splat(ep, fill, _constant(body[0].operands[0]))
        return
    if fill.name != "linalg.generic" or len(fill.operands) != 2 or fill.operands[1] != c:
        return
    block = fill.regions[0].blocks[0]
    body = [o.operation for o in block.operations]
    if len(body) != 1 or body[0].operands[0] != block.arguments[0] or not _all_parallel(fill):
        return
    in_map, out_map = _maps(fill)
    if not _identity(out_map):
        return
    dims = [int(str(r)[1:]) if str(r).startswith("d") else -1 for r in in_map.results]
    bias_ty = ir.MemRefType(fill.operands[0].type)
    kind = "rows" if dims == row_dims else "cols" if dims == col_dims else None
    if kind is not None and bias_ty.rank == 1:
        ep.init, ep.bias, ep.erase = kind, fill.operands[0], ep.erase + [fill]
        return
    # A bias per batch and row (a grouped convolution's, [G, M]): the kernel
    # call of batch g takes row g.
    shape = ir.MemRefType(c.type).shape
    batched = [d for d in batch_dims if shape[d] != 1]
    if batched and dims == batched + row_dims and bias_ty.rank == len(dims) and _dense(bias_ty):
        ep.init, ep.bias, ep.erase = "rows", fill.operands[0], ep.erase + [fill]


def _take_splat(ep: Epilogue, fill: ir.Operation, value: float) -> None:
    ep.init, ep.value, ep.erase = ("zero" if value == 0.0 else "splat"), value, ep.erase + [fill]


def _take_chain(ep: Epilogue, ew: ir.Operation, c: ir.Value) -> None:
    if ew.name != "linalg.generic" or not _all_parallel(ew) or not all(_identity(m) for m in _maps(ew)):
        return
    n_out = 1
    ins, out = list(ew.operands[:-n_out]), ew.operands[-1]
    if len(ew.results) or c not in ins or ins.count(c) != 1 or len(ins) > 2:
        return
    out_ty, c_ty = ir.MemRefType(out.type), ir.MemRefType(c.type)
    if out_ty.shape != c_ty.shape or not (_dense(out_ty) or pitched(out_ty) or contiguous(out_ty)) \
            or not _dense(c_ty):
        return
    block = ew.regions[0].blocks[0]
    args = list(block.arguments)
    cur = args[ins.index(c)]
    residual = None
    chain = []
    for inner in [o.operation for o in block.operations]:
        if inner.name == "linalg.yield":
            if inner.operands[0] != cur:
                return
            break
        if len(inner.results) != 1 or cur not in list(inner.operands):
            return
        other = [v for v in inner.operands if v != cur]
        if inner.name in _CLAMPS and len(other) == 1 and _constant(other[0]) is not None:
            chain.append((inner.name, _constant(other[0])))
        elif inner.name == "arith.addf" and len(other) == 1 and len(ins) == 2 and residual is None \
                and other[0] == args[1 - ins.index(c)]:
            residual = ins[1 - ins.index(c)]
            chain.append(("arith.addf", None))
        else:
            return
        cur = inner.results[0]
    if not chain:
        return
    if residual is not None:
        r_ty = ir.MemRefType(residual.type)
        # R is read at the end, D written in every cache block: they must not share bytes.
        if r_ty.shape != c_ty.shape or not _dense(r_ty) or _root(residual) in (_root(out), c):
            return
    if residual is not None and not _dense(out_ty):
        return
    ep.chain, ep.residual, ep.erase, ep.chain_op = chain, residual, ep.erase + [ew], ew
    ep.dest = None if out == c else out


def pitched(t: ir.MemRefType) -> bool:
    """An image inside a padded one ([..., H, W] with rows W' > W apart, unit
    columns, static strides and offset): qc-pad-into-producer's interior view.
    qc-lower-gemm writes such a D row by row (`pitch`) where it can."""
    if t.rank < 2 or not t.has_static_shape or _dense(t):
        return False
    strides, offset = t.get_strides_and_offset()
    dyn = ir.ShapedType.get_dynamic_stride_or_offset()
    return strides[-1] == 1 and strides[-2] > t.shape[-1] and dyn not in strides and offset != dyn


def contiguous(t: ir.MemRefType) -> bool:
    """One run of memory in row-major order at a static offset, other than an
    identity layout (a slice of a Concat's result along its outer dim): the
    strides of dims of size 1 do not matter."""
    if _dense(t) or not t.has_static_shape:
        return False
    strides, offset = t.get_strides_and_offset()
    if offset == ir.ShapedType.get_dynamic_stride_or_offset():
        return False
    expect = 1
    for size, stride in reversed(list(zip(t.shape, strides))):
        if size != 1 and stride != expect:
            return False
        expect *= size
    return True


def _dense(t: ir.MemRefType) -> bool:
    """Identity layout: views of it collapse the same way C's do."""
    return isinstance(t.layout, ir.AffineMapAttr) and _identity(t.layout.value)
