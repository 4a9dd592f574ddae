"""qc-winograd-loops: qc-winograd-conv's transforms, on buffers, as loops of
adds over the tiles.

On tensors the transforms are reductions against coefficient tensors (16
multiply-adds per value, most of them by 0). Here each becomes an all-
parallel linalg.generic over (channel, image, tile row, tile column) whose
body reads a tile's 16 values and writes its 16 (input) or 4 (output)
results with the adds and subtracts of B^T and A^T written out:

- input: 16 reads of X (the 4x4 window, X read 16 times at constant
  offsets) and 16 writes, one per V[p] (V written 16 times at constant p);
- output: 16 reads, one per M[p], and Y's 2x2 block updated in place.

The tile column is innermost and each operand advances along it by one
value (V, M) or two (X, Y), so LLVM vectorizes it with interleaved loads
and stores; qc-parallel-loops splits the channel dim over threads. Every
operand is a whole buffer indexed at constant offsets, not a view per
offset: one base pointer per buffer is what lets LLVM's dependence analysis
see that the 16 writes of V are apart.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from qc.mlir import arith, ir, linalg, memref

from .base import Pass, collect_ops
from .winograd_conv import A_T, B_T, WINOGRAD_ATTR

PLANE_ALIGN = 64  # bytes: each plane of V and M starts one cache line on from the one before (mod 4 KiB)
_RESHAPES = ("memref.collapse_shape", "memref.expand_shape")


@dataclass(frozen=True)
class WinogradLoops(Pass):
    """Needs bufferized IR with qc-winograd-conv's marked generics. Leaves
    all-parallel generics in their place."""

    name = "qc-winograd-loops"

    def apply(self, module: ir.Module) -> None:
        for op in collect_ops(module.operation, ("linalg.generic",)):
            attrs = op.operation.attributes
            if WINOGRAD_ATTR not in attrs or not isinstance(op.outputs[0].type, ir.MemRefType):
                continue
            kind = ir.StringAttr(attrs[WINOGRAD_ATTR]).value
            if kind == "input":
                _drop_zero_fill(op)
            # V (written by the input transform) and M (read by the output one).
            _pad_planes(op.outputs[0] if kind == "input" else op.inputs[0])
            with ir.InsertionPoint(op.operation), op.location:
                (_input if kind == "input" else _output)(op)
            op.operation.erase()


def _pad_planes(v: ir.Value) -> None:
    """Moves the planes of v's buffer (an allocation shaped [16, ...]) apart
    to PLANE_ALIGN (mod 4 KiB): a transform reads or writes all 16 planes at
    once, and planes a multiple of 4 KiB apart (64 x 784 floats is 49 x 4 KiB)
    fall in one set of the L1 and L2 caches, 16 streams for 8 ways. The
    allocation becomes a flat one with a strided view of it, which its users
    (and the reshapes of it, rebuilt) read instead."""
    while (owner := getattr(v.owner, "operation", None)) is not None and owner.name in _RESHAPES:
        v = owner.operands[0]
    if owner is None or owner.name != "memref.alloc" or len(owner.operands):
        return
    ty = ir.MemRefType(v.type)
    if ty.get_strides_and_offset() != (strides_of(ty.shape), 0) or ty.shape[0] != 16:
        return
    size = int(np.prod(ty.shape[1:]))
    page = 4096 // 4
    stride = -(-(size - PLANE_ALIGN // 4) // page) * page + PLANE_ALIGN // 4
    strides = [stride] + strides_of(ty.shape)[1:]
    with ir.InsertionPoint(owner), owner.location:
        flat = memref.AllocOp(ir.MemRefType.get([16 * stride], ty.element_type), [], [],
                              alignment=ir.IntegerAttr.get(ir.IntegerType.get_signless(64), 64)).result
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
    """Erases the zero fill of V ahead of the input transform, where it is
    the only earlier use of V: the reduction on tensors accumulated into
    zeros, the loops here write every value."""
    ops = [o.operation for o in op.operation.block.operations]
    here = ops.index(op.operation)
    v = op.outputs[0]
    earlier = [u.owner for u in v.uses if u.owner in ops[:here]]
    if len(earlier) == 1 and earlier[0].name == "linalg.fill":
        earlier[0].erase()


def _combine(coeffs: np.ndarray, values: list) -> ir.Value:
    """Σ coeffs[i] · values[i] for coefficients in {-1, 0, 1}, as adds and
    subtracts (a leading -1 term is subtracted from the first +1 term)."""
    plus = [v for k, v in zip(coeffs, values) if k == 1]
    minus = [v for k, v in zip(coeffs, values) if k == -1]
    assert plus and len(plus) + len(minus) == np.count_nonzero(coeffs), coeffs
    acc = plus[0]
    for v in plus[1:]:
        acc = arith.AddFOp(acc, v).result
    for v in minus:
        acc = arith.SubFOp(acc, v).result
    return acc


def _generic(inputs: list, outputs: list, maps: list, body) -> None:
    f32 = ir.F32Type.get()
    op = linalg.GenericOp([], inputs, outputs, ir.ArrayAttr.get([ir.AffineMapAttr.get(m) for m in maps]),
                          ir.ArrayAttr.get([ir.Attribute.parse("#linalg.iterator_type<parallel>")] * 4))
    block = op.regions[0].blocks.append(*([f32] * (len(inputs) + len(outputs))))
    with ir.InsertionPoint(block):
        linalg.YieldOp(body(list(block.arguments)))


def _input(op) -> None:
    """V[4ξ + ν, c, n, th, tw] = (B^T d B)[ξ, ν], d = X[n, c, 2th : 2th + 4, 2tw : 2tw + 4]."""
    x, v = op.inputs[0], op.outputs[0]
    d = [ir.AffineDimExpr.get(i) for i in range(4)]  # c, n, th, tw
    x_maps = [ir.AffineMap.get(4, 0, [d[1], d[0], d[2] * 2 + i, d[3] * 2 + j]) for i in range(4) for j in range(4)]
    v_maps = [ir.AffineMap.get(4, 0, [ir.AffineConstantExpr.get(p), d[0], d[1], d[2], d[3]]) for p in range(16)]

    def body(args):
        win = [args[4 * i:4 * i + 4] for i in range(4)]
        t = [[_combine(B_T[a], [win[i][j] for i in range(4)]) for j in range(4)] for a in range(4)]  # B^T d
        return [_combine(B_T[b], t[a]) for a in range(4) for b in range(4)]  # (B^T d) B

    _generic([x] * 16, [v] * 16, x_maps + v_maps, body)


def _output(op) -> None:
    """Y[n, f, 2th + a, 2tw + b] += (A^T m A)[a, b], m = M[:, f, n, th, tw] as 4x4."""
    m, y = op.inputs[0], op.outputs[0]
    d = [ir.AffineDimExpr.get(i) for i in range(4)]  # n, f, th, tw
    m_maps = [ir.AffineMap.get(4, 0, [ir.AffineConstantExpr.get(p), d[1], d[0], d[2], d[3]]) for p in range(16)]
    y_maps = [ir.AffineMap.get(4, 0, [d[0], d[1], d[2] * 2 + a, d[3] * 2 + b]) for a in range(2) for b in range(2)]

    def body(args):
        mm = [args[4 * i:4 * i + 4] for i in range(4)]
        s = [[_combine(A_T[a], [mm[i][j] for i in range(4)]) for j in range(4)] for a in range(2)]  # A^T m
        outs = args[16:]
        return [arith.AddFOp(outs[2 * a + b], _combine(A_T[b], s[a])).result for a in range(2) for b in range(2)]

    _generic([m] * 16, [y] * 4, m_maps + y_maps, body)
