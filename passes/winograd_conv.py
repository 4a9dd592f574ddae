"""qc-winograd-conv: f32 3x3 stride-1 convolutions → Winograd F(2x2, 3x3):
an input transform, 16 GEMMs over the channels, an output transform.

Each 2x2 block of outputs (a tile) reads a 4x4 block of input d. With
B^T, G, A^T the F(2, 3) matrices (Lavin and Gray, 2016),

    U[p, f, c]  = (G g[f, c] G^T)[ξ, ν]              weights, at compile time
    V[p, c, t]  = (B^T d[c, t] B)[ξ, ν]               input transform
    M[p, f, t]  = Σ_c U[p, f, c] · V[p, c, t]         16 GEMMs (p = 4ξ + ν)
    Y[f, t]    += A^T M[:, f, t] A                    output transform, 2x2

The GEMMs do 16 multiply-adds per tile where the direct convolution does
36: 2.25x fewer. A 3x3 convolution is already a GEMM at the FMA pipes'
peak, so fewer multiplies is what is left to gain; the transforms are adds
(B^T and A^T hold only 0 and ±1) over C and F values per tile, against C * F
multiply-adds in the GEMMs, which is why the pass wants C and F not small.
The transformed weights take 16/9 of the memory of the weights; U is read
once per call while the tiles are few (a 7x7 map has 16), so small maps
keep the direct convolution.

Both transforms are linalg.generic ops on tensors with their plain
semantics (reductions against constant coefficient tensors), marked with
WINOGRAD_ATTR; after bufferization qc-winograd-loops writes them as loops
of adds over the tiles. The GEMMs are a linalg.batch_matmul, which
qc-lower-gemm takes like any other. A map of odd size gets one more row or
column of zero padding and of output, sliced off after the transform.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from qc.mlir import arith, ir, linalg, tensor

from .base import Pass, collect_ops
from .conv_to_gemm import _ints, static_f32_operands
from .narrow_gemm import _constant

WINOGRAD_ATTR = "qc.winograd"  # "input" or "output" on the transforms' generics

# F(2, 3): Y = A^T [(G g G^T) ⊙ (B^T d B)] A (cross-correlation, as ONNX Conv).
B_T = np.array([[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]], np.float64)
G = np.array([[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]], np.float64)
A_T = np.array([[1, 1, 1, 0], [0, 1, -1, -1]], np.float64)


def transformed_weights(w: np.ndarray) -> np.ndarray:
    """U[4ξ + ν, f, c] = (G w[f, c] G^T)[ξ, ν], in float64 then rounded once."""
    f, c = w.shape[:2]
    u = np.einsum("ak,fckl,bl->abfc", G, w.astype(np.float64), G)
    return u.reshape(16, f, c).astype(np.float32)


@dataclass(frozen=True)
class WinogradConv(Pass):
    """Needs linalg.conv_2d_nchw_fchw on static f32 tensors with constant
    weights (before qc-conv-to-gemm). Leaves, for each 3x3 stride-1
    undilated one with enough tiles and channels, the two marked transforms
    around a linalg.batch_matmul."""

    name = "qc-winograd-conv"
    # Fewest tiles (2x2 outputs) per image: ResNet-50 on Zen 3, side by side
    # (benchmarks/ab.py), 1.11x faster with its 14x14 maps (49 tiles) as
    # Winograd than with none, and no faster with its 7x7 ones as well (16
    # tiles, whose 16 weight matrices of 512 x 512 are read for 16 columns).
    min_tiles: int = 32
    # Fewest input and output channels: the transforms cost C + F adds per
    # tile position against C * F multiply-adds saved. SqueezeNet on Zen 3:
    # 1.07x faster at 32 (its 16 -> 64 convolutions stay direct), 1.06x
    # at 8, 1.04x at 64.
    min_channels: int = 32

    def apply(self, module: ir.Module) -> None:
        for op in collect_ops(module.operation, ("linalg.conv_2d_nchw_fchw",)):
            _rewrite(op, self.min_tiles, self.min_channels)


def takes(c: int, f: int, oh: int, ow: int, kernel, min_tiles: int = WinogradConv.min_tiles,
          min_channels: int = WinogradConv.min_channels) -> bool:
    """Whether a stride-1, undilated, ungrouped convolution of C -> F channels
    with this kernel and OH x OW outputs per image becomes Winograd."""
    tiles = -(-oh // 2) * -(-ow // 2)
    return tuple(kernel) == (3, 3) and tiles >= min_tiles and min(c, f) >= min_channels


def _values(attr, shape) -> np.ndarray:
    if attr.is_splat:
        return np.full(shape, float(attr.get_splat_value().value), np.float32)
    return np.array(attr).reshape(shape)


def _rewrite(op, min_tiles: int, min_channels: int) -> None:
    from qc.frontends.onnx import builder as b

    operands = static_f32_operands(op)
    attrs = op.operation.attributes
    if operands is None or any(_ints(attrs[a] if a in attrs else None, (1, 1)) != [1, 1]
                               for a in ("strides", "dilations")):
        return
    (x, w, init), tys = operands
    n, c, _, _ = tys[0].shape
    f, _, kh, kw = tys[1].shape
    _, _, oh, ow = tys[2].shape
    attr = _constant(w)
    if attr is None or not takes(c, f, oh, ow, (kh, kw), min_tiles, min_channels):
        return
    weights = _values(attr, tys[1].shape)
    th, tw = -(-oh // 2), -(-ow // 2)
    f32 = np.dtype(np.float32)
    eh, ew = 2 * th - oh, 2 * tw - ow  # one more output row/column where the map is odd
    with ir.InsertionPoint(op.operation), op.location:
        xt, it = b.T(x, f32), b.T(init, f32)
        if eh or ew:
            xt = _pad(b, xt, [0, 0, eh, ew])
            it = _pad(b, it, [0, 0, eh, ew])
        t = n * th * tw
        v = _input_transform(b, xt, b.filled([16, c, n, th, tw], f32, 0.0))
        u = b.constant(transformed_weights(weights))
        vm = b.collapse(v, [[0], [1], [2, 3, 4]], [16, c, t])
        m = b.T(linalg.batch_matmul(u.value, vm.value, outs=[b.filled([16, f, t], f32, 0.0)]), f32)
        m5 = b.expand(m, [[0], [1], [2, 3, 4]], [16, f, n, th, tw])
        y = _output_transform(b, m5, it)
        if eh or ew:
            y = b.T(tensor.extract_slice(b.tensor_type([n, f, oh, ow], f32), y.value, [], [], [], [0, 0, 0, 0],
                                         [n, f, oh, ow], [1, 1, 1, 1]), f32)
    op.operation.results[0].replace_all_uses_with(y.value)
    op.operation.erase()


def _pad(b, x, high: list[int]):
    shape = [d + e for d, e in zip(x.shape, high)]
    pad = tensor.PadOp(b.tensor_type(shape, x.dtype), x.value, [], [], [0] * len(high), high)
    block = pad.regions[0].blocks.append(*([ir.IndexType.get()] * len(high)))
    with ir.InsertionPoint(block):
        tensor.YieldOp(b.scalar(0.0, x.dtype))
    return b.T(pad.result, x.dtype)


def _mul_add(p, q, acc):
    return arith.AddFOp(acc, arith.MulFOp(p, q).result).result


def _input_transform(b, x, zeros):
    """V[p, c, n, th, tw] = Σ_ij BB[p, i, j] · X[n, c, 2th + i, 2tw + j] with
    BB[4ξ + ν, i, j] = B^T[ξ, i] B^T[ν, j]."""
    f32 = np.dtype(np.float32)
    bb = np.einsum("ai,bj->abij", B_T, B_T).reshape(16, 4, 4).astype(np.float32)
    d = [ir.AffineDimExpr.get(i) for i in range(7)]  # p, c, n, th, tw, i, j
    x_map = ir.AffineMap.get(7, 0, [d[2], d[1], d[3] * 2 + d[5], d[4] * 2 + d[6]])
    maps = [x_map, b.dims_map(7, [0, 5, 6]), b.dims_map(7, [0, 1, 2, 3, 4])]
    iters = [b.PARALLEL] * 5 + [b.REDUCTION] * 2
    (v,) = b.generic([x.value, b.constant(bb).value], [zeros], maps, iters, _mul_add)
    v.owner.attributes[WINOGRAD_ATTR] = ir.StringAttr.get("input")
    return b.T(v, f32)


def _output_transform(b, m, init):
    """Y[n, f, oh, ow] += Σ_p AA[oh mod 2, ow mod 2, p] · M[p, f, n, oh/2, ow/2]
    with AA[a, b, 4ξ + ν] = A^T[a, ξ] A^T[b, ν]."""
    f32 = np.dtype(np.float32)
    aa = np.einsum("ai,bj->abij", A_T, A_T).reshape(2, 2, 16).astype(np.float32)
    d = [ir.AffineDimExpr.get(i) for i in range(5)]  # n, f, oh, ow, p
    two = ir.AffineConstantExpr.get(2)
    half = [ir.AffineFloorDivExpr.get(e, two) for e in (d[2], d[3])]
    parity = [ir.AffineModExpr.get(e, two) for e in (d[2], d[3])]
    m_map = ir.AffineMap.get(5, 0, [d[4], d[1], d[0], *half])
    a_map = ir.AffineMap.get(5, 0, [*parity, d[4]])
    maps = [m_map, a_map, b.dims_map(5, [0, 1, 2, 3])]
    iters = [b.PARALLEL] * 4 + [b.REDUCTION]
    (y,) = b.generic([m.value, b.constant(aa).value], [init.value], maps, iters, _mul_add)
    y.owner.attributes[WINOGRAD_ATTR] = ir.StringAttr.get("output")
    return b.T(y, f32)
