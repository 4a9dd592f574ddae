"""The requantization qc-lower-qgemm folds into an integer GEMM kernel.

A quantized layer is an i32 GEMM (qc-qconv-to-gemm's, or a MatMulInteger)
and, right after it, one all-parallel generic that requantizes its sums: the
fixed-point multiply and shift, the clamp, the folded BatchNormalization and
Relu, maybe a residual QLinearAdd or a DequantizeLinear to f32. As a loop of
its own it reads C back from memory, 4 bytes per 8-bit output, and the GEMM
wrote them first. The kernel can instead replay the generic's body
(vector_body.Program) on each register tile once its sums are complete and
store D, the generic's output: C is never written.

Taken (`find`): the generic is the next op to use C's buffer after the GEMM,
reads C whole through an identity map, and each of its other inputs either
at the same element (a "tile" input: loaded as vectors where C's are, e.g.
the residual) or per GEMM row only (a "row" input: a per-channel multiplier,
shift or bound, one scalar per row broadcast); D is C's shape, dense, or an
image inside a padded one (`gemm_epilogue.pitched`, the next convolution's
input: stored row by row). Nothing may read C afterwards (bufferization
reuses dead buffers: an op that rewrites all of it may follow), and nothing
between the two ops may touch D or the inputs. The caller checks the rest:
C starts from zeros, the sums take one cache block (the epilogue then runs
once per tile), and A is packed at compile time.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np

from qc.mlir import ir

from . import gemm_epilogue as ge
from .vector_body import Program, operand_indices, program_of
from .vector_requant import constant_ranges


@dataclass
class Requant:
    op: ir.Operation  # the requantizing generic
    program: Program
    kinds: list[str]  # per generic input: "acc" (C), "row" or "tile"
    inputs: list  # per generic input but C: the value (row: any dense shape of M elements)
    dest: ir.Value  # D
    groups: list[list[int]]  # D's dims as the kernel's C dims ([B,] M, N)
    pitch: tuple | None = None  # (OW, W, N) where D is a pitched image
    ranges: dict = field(default_factory=dict)  # bounds of constant integer row inputs

    def digest(self) -> str:
        """What the kernel's code depends on, for its name."""
        text = repr((self.kinds, self.pitch, self.program.args, self.program.result, sorted(self.ranges.items()),
                     [(s.name, s.props, [(k, str(x)) for k, x in s.operands], s.type) for s in self.program.steps]))
        return hashlib.sha1(text.encode()).hexdigest()[:8]

    def start_addition(self) -> tuple[int, int] | None:
        """(step, input) where the sums' only use is the addition of a
        per-row input (i32): a kernel may start the row's sums from that
        input instead of zero (i32 sums wrap the same either way) and take
        the step's value to be the sums."""
        acc = self.kinds.index("acc")
        if self.program.use_count(("arg", acc)) != 1:
            return None
        for t, s in enumerate(self.program.steps):
            if s.name == "arith.addi" and s.type == "i32" and ("arg", acc) in s.operands:
                other = s.operands[1] if s.operands[0] == ("arg", acc) else s.operands[0]
                return (t, other[1]) if other[0] == "arg" and self.kinds[other[1]] == "row" else None
        return None

    @property
    def extras(self) -> list[int]:
        """The generic's inputs the kernel takes, by index (all but C)."""
        return [i for i, k in enumerate(self.kinds) if k != "acc"]


def _groups(shape: list[int], target: list[int]) -> list[list[int]] | None:
    """Consecutive dims of `shape` whose products are `target`'s sizes (unit
    dims join the group before them), or None."""
    out, d = [], 0
    for size in target:
        g, prod = [], 1
        while d < len(shape) and (prod < size or not g):
            g.append(d)
            prod *= shape[d]
            d += 1
        if prod != size:
            return None
        out.append(g)
    while d < len(shape) and shape[d] == 1:
        out[-1].append(d)
        d += 1
    return out if d == len(shape) else None


def find(gemm: ir.Operation, c: ir.Value, c_shape: list[int], others: list[ir.Value], lanes: int,
         symbols: ir.SymbolTable) -> Requant | None:
    """The requantization to fold into the kernel of `gemm`, whose output
    operand c is viewed by the kernel as c_shape ([B,] M, N); `others`: the
    GEMM's operands D must not share a buffer with. Moves D's allocation
    ahead of the GEMM if it comes after. None if there is none to fold."""
    root = ge._root(c)
    owner = getattr(root.owner, "operation", None)
    if owner is None or owner.name != "memref.alloc" or not ge._dense(ir.MemRefType(root.type)):
        return None
    users = set(ge._uses_of_buffer(root))
    ops = [o.operation for o in gemm.block.operations]
    i = ops.index(gemm)
    after = next((j for j in range(i + 1, len(ops)) if ops[j] in users), None)
    if after is None:
        return None
    rq = ops[after]
    if rq.name != "linalg.generic" or len(rq.results) or not ge._all_parallel(rq):
        return None
    n_in = len(rq.regions[0].blocks[0].arguments) - 1
    if len(rq.operands) != n_in + 1:
        return None
    program = program_of(rq)
    if program is None:
        return None
    maps = ge._maps(rq)
    # C whole, through reshapes: the loop's shape, C's elements in order.
    accs = [v for v in rq.operands[:n_in] if ge._root(v) == root]
    if len(accs) != 1 or not ge._whole(accs[0]):
        return None
    shape = list(ir.MemRefType(accs[0].type).shape)
    dest = rq.operands[-1]
    d_ty = ir.MemRefType(dest.type)
    if not ge._identity(maps[-1]) or list(d_ty.shape) != shape or ge._root(dest) in {root, *map(ge._root, others)}:
        return None
    groups = _groups(shape, c_shape)
    if groups is None:
        return None
    row_dims = [d for d in groups[-2] if shape[d] != 1]
    kinds, inputs = [], []
    for v, m in zip(rq.operands[:n_in], maps[:n_in]):
        ty = ir.MemRefType(v.type)
        if not ty.has_static_shape or not ge._dense(ty):
            return None
        idx = operand_indices(m)
        if ge._root(v) == root:
            if not ge._identity(m):
                return None
            kinds.append("acc")
            inputs.append(None)
            continue
        if ge._root(v) == ge._root(dest):
            return None
        if ge._identity(m) and list(ty.shape) == shape:
            kinds.append("tile")
        elif idx is not None and all(isinstance(x, int) or x == ("c", 0) for x in idx) \
                and [x for x in idx if isinstance(x, int) and shape[x] != 1] == row_dims \
                and int(np.prod(ty.shape)) == c_shape[-2]:
            kinds.append("row")
        else:
            return None
        inputs.append(v)
    pitch = None
    if not ge._dense(d_ty):
        # An image in a padded one: C's columns its rows, each vector across
        # at most one row end.
        r = len(shape)
        rows = [d for d in groups[-2] if shape[d] != 1] or groups[-2][-1:]
        if not ge.pitched(d_ty) or groups[-1] != [r - 2, r - 1] or len(rows) != 1 \
                or any(shape[d] != 1 for g in groups[:-2] for d in g) or shape[-1] < lanes:
            return None
        groups = groups[:-2] + [rows, groups[-1]]  # the row dim alone: the view takes its stride
        pitch = (shape[-1], d_ty.get_strides_and_offset()[0][-2], shape[-2] * shape[-1])
    between = [o for o in ops[i + 1:after] if o.name not in ge._VIEWS + ("memref.subview",)]
    if ge._touches(between, [dest, *[v for v in inputs if v is not None]]):
        return None
    # C's values die with the generic: no later reader, unless an op first
    # writes all of C anew.
    later = [o for o in ops[after + 1:] if o in users]
    earlier = {o for o in ops[:i] if o in users}
    rewritten = bool(later) and ge._overwrites(later[0], root)
    if users - {gemm, rq} - earlier - (set(later) if rewritten else set()):
        return None
    if not all(ge._available(v, ops[:i]) for v in inputs if v is not None):
        return None
    if not ge._available(dest, ops[:i]) and not ge._hoist_view(dest, gemm, ops[:i]):
        return None
    ranges = constant_ranges(symbols, {j: v for j, (kind, v) in enumerate(zip(kinds, inputs)) if kind == "row"})
    return Requant(rq, program, kinds, inputs, dest, groups, pitch, ranges)
