"""qc-winograd-loops: qc-winograd-conv's transforms, on buffers, as loops
over the tiles.

On tensors the transforms are reductions against coefficient tensors (α^2
multiply-adds per value, most of them by 0, α = m + 2). Here they become
all-parallel linalg.generic ops with the products by B^T and A^T written
out. Each transform is separable (B^T d, then · B): a row of B^T is applied
as one signed sum per coefficient magnitude, joined by one multiply-add per
magnitude other than 1 (F(2, 3) has none, so only adds and subtracts).

F(2, 3) takes one loop per transform, over (channel, image, tile row, tile
column), whose body reads a tile's 16 values and writes its 16 (input) or
4 (output) results:

- input: 16 reads of X (the 4x4 window, X read at 16 constant offsets)
  and 16 writes, one per V[p] (V written at 16 constant p);
- output: 16 reads, one per M[p], and Y's 2x2 block updated in place.

F(4, 3)'s 36 values per tile do not fit in 16 vector registers (in one
loop LLVM spilled a third of them): it takes two loops per transform,
each with 6 values in and 6 or 4 out, through a scratch buffer:

- input: T[ξ, c, n, th, w] = B^T X[n, c, 4th : 4th + 6, w] along whole
  rows of X (unit stride), then V[6ξ + ν] from T[ξ, ..., 4tw : 4tw + 6];
- output: S[r, ν, f, tiles] = Σ_ξ A^T[r, ξ] M[6ξ + ν, f, tiles] over all
  of a plane's tiles at once, then Y's row 4th + r from S[r, 0..5].
  The ResNet block (56x56, 64 channels) ran 1.08x faster than in one loop.

The tile column is innermost and each operand advances along it by one
value (V, M) or m (X, Y), so LLVM vectorizes it with interleaved loads
and stores; qc-parallel-loops splits the channel dim over threads. Every
operand is a whole buffer indexed at constant offsets, not a view per
offset: one base pointer per buffer is what lets LLVM's dependence analysis
see that the writes of V are apart.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from qc.mlir import arith, ir, linalg, memref

from . import gemm_epilogue
from .approximate_math import fma
from .base import Pass, collect_ops
from .gemm_epilogue import _root, _uses_of_buffer
from .winograd_conv import BY_PLANES, WINOGRAD_ATTR

PLANE_ALIGN = 64  # bytes: each plane of V and M starts one cache line on from the one before (mod 4 KiB)
_RESHAPES = ("memref.collapse_shape", "memref.expand_shape")


@dataclass(frozen=True)
class WinogradLoops(Pass):
    """Needs bufferized IR with qc-winograd-conv's marked generics. Leaves
    all-parallel generics in their place."""

    name = "qc-winograd-loops"

    def apply(self, module: ir.Module) -> None:
        # The transforms first: an output transform erases the generics it
        # folds (the bias broadcast, the Relu), which must not be visited after.
        marked = [op for op in collect_ops(module.operation, ("linalg.generic",))
                  if WINOGRAD_ATTR in op.operation.attributes and isinstance(op.outputs[0].type, ir.MemRefType)]
        for op in marked:
            kind = ir.StringAttr(op.operation.attributes[WINOGRAD_ATTR]).value
            if kind == "input":
                _drop_zero_fill(op)
            planes = op.outputs[0] if kind == "input" else op.inputs[0]  # V, written by the input transform; M
            tiling = BY_PLANES[ir.ShapedType(planes.type).shape[0]]
            _pad_planes(planes)
            one = tiling.m == 2  # F(4, 3): two loops per transform
            if kind == "input":
                with ir.InsertionPoint(op.operation), op.location:
                    (_input_in_one if one else _input)(op, tiling)
            else:
                ep = _epilogue(op)
                with ir.InsertionPoint(op.operation), op.location:
                    (_output_in_one if one else _output)(op, tiling, ep)
                for folded in ep.erase:
                    folded.erase()
            op.operation.erase()


def _pad_planes(v: ir.Value) -> None:
    """Moves the planes of v's buffer (an allocation shaped [α^2, ...]) apart
    to PLANE_ALIGN (mod 4 KiB): a transform reads or writes all α^2 planes at
    once, and planes a multiple of 4 KiB apart (64 x 784 floats is 49 x 4 KiB)
    fall in one set of the L1 and L2 caches, 16 or 36 streams for 8 ways. The
    allocation becomes a flat one with a strided view of it, which its users
    (and the reshapes of it, rebuilt) read instead."""
    while (owner := getattr(v.owner, "operation", None)) is not None and owner.name in _RESHAPES:
        v = owner.operands[0]
    if owner is None or owner.name != "memref.alloc" or len(owner.operands):
        return
    ty = ir.MemRefType(v.type)
    if ty.get_strides_and_offset() != (strides_of(ty.shape), 0) or ty.shape[0] not in BY_PLANES:
        return
    size = int(np.prod(ty.shape[1:]))
    page = 4096 // 4
    stride = -(-(size - PLANE_ALIGN // 4) // page) * page + PLANE_ALIGN // 4
    strides = [stride] + strides_of(ty.shape)[1:]
    with ir.InsertionPoint(owner), owner.location:
        flat = _scratch([ty.shape[0] * stride], ty.element_type)
        view_ty = ir.MemRefType.get(ty.shape, ty.element_type, ir.StridedLayoutAttr.get(0, strides))
        view = memref.ReinterpretCastOp(view_ty, flat, [], [], [], [0], list(ty.shape), strides).result
    _retarget(v, view)
    owner.erase()


def strides_of(shape) -> list[int]:
    """Row-major strides of a dense buffer."""
    return [int(np.prod(shape[i + 1:])) for i in range(len(shape))]


def _retarget(old: ir.Value, new: ir.Value) -> None:
    """Replaces old by new (the same shape, another layout) in every use,
    rebuilding the reshapes of it, whose result types follow the layout."""
    for use in list(old.uses):
        user = use.owner
        if user.name not in _RESHAPES:
            user.operands[use.operand_number] = new
            continue
        groups = [[int(ir.IntegerAttr(i).value) for i in g] for g in ir.ArrayAttr(user.attributes["reassociation"])]
        src, res = ir.MemRefType(new.type), ir.MemRefType(user.results[0].type)
        strides, _ = src.get_strides_and_offset()
        if user.name == "memref.collapse_shape":  # a group is as strided as its innermost dim
            out = [strides[g[-1]] for g in groups]
        else:  # the dims a source dim splits into: its stride innermost, sizes outward
            out = [0] * res.rank
            for i, g in enumerate(groups):
                step = strides[i]
                for d in reversed(g):
                    out[d], step = step, step * res.shape[d]
        ty = ir.MemRefType.get(res.shape, res.element_type, ir.StridedLayoutAttr.get(0, out))
        with ir.InsertionPoint(user), user.location:
            if user.name == "memref.collapse_shape":
                rebuilt = memref.CollapseShapeOp(ty, new, user.attributes["reassociation"]).result
            else:
                rebuilt = memref.ExpandShapeOp(ty, new, user.attributes["reassociation"], [],
                                               list(res.shape)).result
        _retarget(user.results[0], rebuilt)
        user.erase()


def _drop_zero_fill(op) -> None:
    """Erases the zero fill of V ahead of the input transform: the reduction
    on tensors accumulated into zeros, the loops here write every value.
    The fill is the last op before the transform to touch V's buffer (a
    buffer two convolutions of one shape share has the first one's uses
    before it)."""
    ops = [o.operation for o in op.operation.block.operations]
    here = ops.index(op.operation)
    v = op.outputs[0]
    users = set(_uses_of_buffer(_root(v)))
    fill = next((o for o in reversed(ops[:here]) if o in users), None)
    if fill is not None and fill.name == "linalg.fill" and fill.operands[1] == v:
        fill.erase()


def _combine(coeffs: np.ndarray, values: list) -> ir.Value:
    """Σ coeffs[i] · values[i]: the values of one coefficient magnitude
    summed with adds and subtracts, then the sums joined, each magnitude
    other than 1 by one multiply-add (contractible to an FMA)."""
    groups: dict[float, tuple[list, list]] = {}
    for k, v in zip(coeffs, values):
        if k:
            groups.setdefault(abs(float(k)), ([], []))[int(k < 0)].append(v)
    terms = []  # (the sum's multiplier, the signed sum of one magnitude)
    for k, (plus, minus) in groups.items():
        if plus:  # Σ plus - Σ minus
            acc = _sum(plus)
            for v in minus:
                acc = arith.SubFOp(acc, v).result
            terms.append((k, acc))
        else:  # -(Σ minus)
            terms.append((-k, _sum(minus)))
    terms.sort(key=lambda t: (t[0] != 1, t[0] == -1))  # a +1 sum first, a -1 one last: no multiply or negation
    mult, acc = terms[0]
    if mult != 1:
        acc = arith.MulFOp(acc, _f32(mult)).result
    for mult, s in terms[1:]:
        if mult in (1, -1):
            acc = (arith.AddFOp if mult == 1 else arith.SubFOp)(acc, s).result
        else:
            acc = fma(s, _f32(mult), acc)
    return acc


def _sum(values: list) -> ir.Value:
    acc = values[0]
    for v in values[1:]:
        acc = arith.AddFOp(acc, v).result
    return acc


def _f32(v: float) -> ir.Value:
    return arith.ConstantOp(ir.F32Type.get(), v).result


def _generic(inputs: list, outputs: list, maps: list, body, rank: int = 4) -> None:
    f32 = ir.F32Type.get()
    op = linalg.GenericOp([], inputs, outputs, ir.ArrayAttr.get([ir.AffineMapAttr.get(m) for m in maps]),
                          ir.ArrayAttr.get([ir.Attribute.parse("#linalg.iterator_type<parallel>")] * rank))
    block = op.regions[0].blocks.append(*([f32] * (len(inputs) + len(outputs))))
    with ir.InsertionPoint(block):
        linalg.YieldOp(body(list(block.arguments)))


def _scratch(shape: list[int], element=None) -> ir.Value:
    """A new buffer, 64-byte aligned."""
    return memref.AllocOp(ir.MemRefType.get(shape, element or ir.F32Type.get()), [], [],
                          alignment=ir.IntegerAttr.get(ir.IntegerType.get_signless(64), 64)).result


def _maps(rank: int, rows: list[list]) -> list[ir.AffineMap]:
    return [ir.AffineMap.get(rank, 0, [ir.AffineConstantExpr.get(e) if isinstance(e, int) else e for e in row])
            for row in rows]


def _split_planes(v: ir.Value, a: int) -> ir.Value:
    """v[α^2, F, N, TH, TW] (the tiles of a plane contiguous) viewed as
    [α, α, F, N·TH·TW]: one loop over all of a plane's tiles, long enough
    to vectorize whole (a row of 14 tiles is not)."""
    ty = ir.MemRefType(v.type)
    strides, offset = ty.get_strides_and_offset()
    _, f, n, th, tw = ty.shape
    assert strides[2:] == [th * tw, tw, 1], ty
    shape, view_strides = [a, a, f, n * th * tw], [strides[0] * a, strides[0], strides[1], 1]
    view = ir.MemRefType.get(shape, ty.element_type, ir.StridedLayoutAttr.get(offset, view_strides))
    return memref.ReinterpretCastOp(view, v, [], [], [], [offset], shape, view_strides).result


def _flat_tiles(v: ir.Value) -> ir.Value:
    """A dense [m, α, F, N, TH, TW] buffer as [m, α, F, N·TH·TW]."""
    ty = ir.MemRefType(v.type)
    shape = [*ty.shape[:3], int(np.prod(ty.shape[3:]))]
    groups = ir.ArrayAttr.get([ir.ArrayAttr.get([ir.IntegerAttr.get(ir.IntegerType.get_signless(64), i)
                                                 for i in g]) for g in [[0], [1], [2], [3, 4, 5]]])
    return memref.CollapseShapeOp(ir.MemRefType.get(shape, ty.element_type), v, groups).result


def _input_in_one(op, tiling) -> None:
    """V[αξ + ν, c, n, th, tw] = (B^T d B)[ξ, ν], d = X[n, c, m·th : m·th + α, m·tw : m·tw + α],
    in one loop."""
    x, v = op.inputs[0], op.outputs[0]
    a, m, b_t = tiling.alpha, tiling.m, tiling.b_t
    d = [ir.AffineDimExpr.get(i) for i in range(4)]  # c, n, th, tw
    x_maps = _maps(4, [[d[1], d[0], d[2] * m + i, d[3] * m + j] for i in range(a) for j in range(a)])
    v_maps = _maps(4, [[p, d[0], d[1], d[2], d[3]] for p in range(a * a)])

    def body(args):
        win = [args[a * i:a * i + a] for i in range(a)]
        t = [[_combine(b_t[r], [win[i][j] for i in range(a)]) for j in range(a)] for r in range(a)]  # B^T d
        return [_combine(b_t[q], t[r]) for r in range(a) for q in range(a)]  # (B^T d) B

    _generic([x] * (a * a), [v] * (a * a), x_maps + v_maps, body)


def _output_in_one(op, tiling, ep: gemm_epilogue.Epilogue) -> None:
    """Y[n, f, m·th + r, m·tw + q] += (A^T M A)[r, q], M = M[:, f, n, th, tw] as α x α, in one loop
    (with ep: the bias, the chain, written to D)."""
    mm, y = op.inputs[0], op.outputs[0]
    a, m, a_t = tiling.alpha, tiling.m, tiling.a_t
    d = [ir.AffineDimExpr.get(i) for i in range(4)]  # n, f, th, tw
    m_maps = _maps(4, [[p, d[1], d[0], d[2], d[3]] for p in range(a * a)])
    y_maps = _maps(4, [[d[0], d[1], d[2] * m + r, d[3] * m + q] for r in range(m) for q in range(m)])
    extra, extra_maps, tail = _tail(ep, _maps(4, [[d[1]]])[0], y_maps)

    def body(args):
        tile = [args[a * i:a * i + a] for i in range(a)]
        s = [[_combine(a_t[r], [tile[i][j] for i in range(a)]) for j in range(a)] for r in range(m)]  # A^T M
        return tail([_combine(a_t[q], s[r]) for r in range(m) for q in range(m)], args[a * a:])

    _generic([mm] * (a * a) + extra, [_written(ep, y)] * (m * m), m_maps + extra_maps + y_maps, body)


def _input(op, tiling) -> None:
    """V[αξ + ν, c, n, th, tw] = (B^T d B)[ξ, ν], d = X[n, c, m·th : m·th + α, m·tw : m·tw + α],
    in two loops: T[ξ, c, n, th, w] = (B^T X[n, c, m·th : m·th + α, w])[ξ]
    along whole rows of X, then V from α values of T's rows each."""
    x, v = op.inputs[0], op.outputs[0]
    a, m, b_t = tiling.alpha, tiling.m, tiling.b_t
    _, c, n, th, _ = ir.ShapedType(v.type).shape
    width = ir.ShapedType(x.type).shape[3]
    t = _scratch([a, c, n, th, width])
    d = [ir.AffineDimExpr.get(i) for i in range(5)]
    # c, n, th, w: unit stride along w.
    _generic([x] * a, [t] * a, _maps(4, [[d[1], d[0], d[2] * m + i, d[3]] for i in range(a)])
             + _maps(4, [[r, d[0], d[1], d[2], d[3]] for r in range(a)]),
             lambda args: [_combine(b_t[r], args[:a]) for r in range(a)])
    # c, ξ, n, th, tw: T read at m·tw + j.
    _generic([t] * a, [v] * a, _maps(5, [[d[1], d[0], d[2], d[3], d[4] * m + j] for j in range(a)])
             + _maps(5, [[d[1] * a + q, d[0], d[2], d[3], d[4]] for q in range(a)]),
             lambda args: [_combine(b_t[q], args[:a]) for q in range(a)], rank=5)


def _output(op, tiling, ep: gemm_epilogue.Epilogue) -> None:
    """Y[n, f, m·th + r, m·tw + q] += (A^T M A)[r, q], M = M[:, f, n, th, tw] as α x α
    (with ep: the bias, the chain, written to D), in two loops:
    S[r, ν, f, n, th, tw] = Σ_ξ A^T[r, ξ] M[αξ + ν, f, n, th, tw], then Y's
    row m·th + r from α planes of S."""
    mm, y = op.inputs[0], op.outputs[0]
    a, m, a_t = tiling.alpha, tiling.m, tiling.a_t
    _, f, n, th, tw = ir.ShapedType(mm.type).shape
    s = _scratch([m, a, f, n, th, tw])
    d = [ir.AffineDimExpr.get(i) for i in range(5)]
    # f, ν, tile: M's planes as [α, α, F, tiles], S as [m, α, F, tiles].
    planes, flat = _split_planes(mm, a), _flat_tiles(s)
    _generic([planes] * a, [flat] * m, _maps(3, [[k, d[1], d[0], d[2]] for k in range(a)])
             + _maps(3, [[r, d[1], d[0], d[2]] for r in range(m)]),
             lambda args: [_combine(a_t[r], args[:a]) for r in range(m)], rank=3)
    # n, f, th, r, tw: Y's row written at m·tw + q.
    y_maps = _maps(5, [[d[0], d[1], d[2] * m + d[3], d[4] * m + q] for q in range(m)])
    extra, extra_maps, tail = _tail(ep, _maps(5, [[d[1]]])[0], y_maps)
    _generic([s] * a + extra, [_written(ep, y)] * m,
             _maps(5, [[d[3], j, d[1], d[0], d[2], d[4]] for j in range(a)]) + extra_maps + y_maps,
             lambda args: tail([_combine(a_t[q], args[:a]) for q in range(m)], args[a:]), rank=5)


def _epilogue(op) -> gemm_epilogue.Epilogue:
    """What the output transform's last loop does in place of the ops around
    it (as qc-lower-gemm's kernels do): Y's initial value (a bias per
    channel, or a constant) and the elementwise op after it (Relu, Clip, a
    residual Add), maybe writing another buffer D. Y is then written once,
    final, or not at all: the bias broadcast and the Relu were each a pass
    over Y in memory. (Y's rows are its channels, its columns the pixels.)"""
    return gemm_epilogue.find(op.operation, op.outputs[0], [1], [2, 3])


def _written(ep: gemm_epilogue.Epilogue, y: ir.Value) -> ir.Value:
    return y if ep.dest is None else ep.dest


def _tail(ep: gemm_epilogue.Epilogue, bias_map: ir.AffineMap, y_maps: list[ir.AffineMap]):
    """The epilogue's operands (the bias, R at each of Y's maps), their maps,
    and tail(values, args): each value (Y's at y_maps[i]) started from Y's
    initial value and put through the chain; args are the block's arguments
    from the first epilogue operand on."""
    extra, maps = ([ep.bias], [bias_map]) if ep.bias is not None else ([], [])
    if ep.residual is not None:
        extra, maps = extra + [ep.residual] * len(y_maps), maps + y_maps
    f32 = ir.F32Type.get()

    def tail(values: list, args: list) -> list:
        args = list(args)
        bias = args.pop(0) if ep.bias is not None else None
        res, old = (args[:len(values)], args[len(values):]) if ep.residual is not None else (None, args)
        out = []
        for i, v in enumerate(values):
            if ep.init == "load":
                v = arith.AddFOp(old[i], v).result
            elif ep.init == "rows":
                v = arith.AddFOp(bias, v).result
            elif ep.init == "splat":
                v = arith.AddFOp(_f32(ep.value), v).result
            for name, value in ep.chain:
                if value is None:
                    v = arith.AddFOp(v, res[i]).result
                else:
                    v = ir.Operation.create(name, results=[f32], operands=[v, _f32(value)]).result
            out.append(v)
        return out

    return extra, maps, tail
