"""qc-winograd-conv: f32 3x3 stride-1 convolutions → Winograd F(m x m, 3x3),
m = 4 or 2: an input transform, (m + 2)^2 GEMMs over the channels, an
output transform.

Each m x m block of outputs (a tile) reads an α x α block of input d,
α = m + 2. With B^T, G, A^T the F(m, 3) matrices (Lavin and Gray, 2016),

    U[p, f, c]  = (G g[f, c] G^T)[ξ, ν]              weights, at compile time
    V[p, c, t]  = (B^T d[c, t] B)[ξ, ν]               input transform
    M[p, f, t]  = Σ_c U[p, f, c] · V[p, c, t]         α^2 GEMMs (p = αξ + ν)
    Y[f, t]    += A^T M[:, f, t] A                    output transform, m x m

Per output, the GEMMs do α^2 / m^2 multiply-adds where the direct
convolution does 9: F(2, 3) 4 (2.25x fewer), F(4, 3) 2.25 (4x fewer). A
3x3 convolution is already a GEMM at the FMA pipes' peak, so fewer
multiplies is what is left to gain; the transforms are a few adds (and for
F(4, 3) multiply-adds by 2, 4, 5 and 8) over C and F values per tile,
against C * F multiply-adds in the GEMMs, which is why the pass wants C and
F not small. The transformed weights take α^2 / 9 of the memory of the
weights; U is read once per call while the tiles are few, so small maps
keep the direct convolution, maps with 32 tiles of 2x2 but fewer than 16
of 4x4 (11x11 and 12x12 squares) take F(2, 3), and larger ones (ResNet-50's
14x14 up) F(4, 3). F(4, 3)'s transforms carry larger coefficients, so its
results are a few float32 roundings further from the exact ones: about
1e-5 of the output's scale at most in the tests, against F(2, 3)'s 1e-6.

Both transforms are linalg.generic ops on tensors with their plain
semantics (reductions against constant coefficient tensors), marked with
WINOGRAD_ATTR; after bufferization qc-winograd-loops writes them as loops
over the tiles. The GEMMs are a linalg.batch_matmul, which qc-lower-gemm
takes like any other. A map whose size is not a multiple of m gets up to
m - 1 more rows or columns of zero padding and of output, sliced off after
the transform. Its init, where that is a fill or a bias broadcast, is
computed again at the padded size rather than padded: qc-winograd-loops
then folds it into the output transform (SqueezeNet's 13x13 and 27x27
maps: a copy into a zeroed buffer, and for a bias that CSE had shared,
another copy, per convolution; the model 1.03-1.06x faster on AVX-512).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from qc.mlir import arith, ir, linalg, tensor

from .base import Pass, collect_ops
from .conv_to_gemm import _ints, static_f32_operands
from .narrow_gemm import _constant

WINOGRAD_ATTR = "qc.winograd"  # "input" or "output" on the transforms' generics


@dataclass(frozen=True, eq=False)
class Tiling:
    """F(m x m, 3 x 3): Y = A^T [(G g G^T) ⊙ (B^T d B)] A (cross-correlation, as ONNX Conv)."""

    m: int  # outputs per tile side
    b_t: np.ndarray  # α x α
    g: np.ndarray  # α x 3
    a_t: np.ndarray  # m x α

    @property
    def alpha(self) -> int:
        return self.m + 2

    @property
    def planes(self) -> int:
        return self.alpha ** 2


F2 = Tiling(2, np.array([[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]], np.float64),
            np.array([[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]], np.float64),
            np.array([[1, 1, 1, 0], [0, 1, -1, -1]], np.float64))
# Interpolation points 0, ±1, ±2 and ∞: the coefficients 2, 4, 5, 8 are exact
# in float32, G's sixths and twenty-fourths are applied to the weights in
# float64 at compile time.
F4 = Tiling(4, np.array([[4, 0, -5, 0, 1, 0], [0, -4, -4, 1, 1, 0], [0, 4, -4, -1, 1, 0],
                         [0, -2, -1, 2, 1, 0], [0, 2, -1, -2, 1, 0], [0, 4, 0, -5, 0, 1]], np.float64),
            np.array([[1 / 4, 0, 0], [-1 / 6, -1 / 6, -1 / 6], [-1 / 6, 1 / 6, -1 / 6],
                      [1 / 24, 1 / 12, 1 / 6], [1 / 24, -1 / 12, 1 / 6], [0, 0, 1]], np.float64),
            np.array([[1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -2, 0], [0, 1, 1, 4, 4, 0], [0, 1, -1, 8, -8, 1]], np.float64))
BY_PLANES = {t.planes: t for t in (F2, F4)}  # how qc-winograd-loops tells them apart: V's and M's first dim


def transformed_weights(w: np.ndarray, tiling: Tiling = F2) -> np.ndarray:
    """U[αξ + ν, f, c] = (G w[f, c] G^T)[ξ, ν], in float64 then rounded once."""
    f, c = w.shape[:2]
    u = np.einsum("ak,fckl,bl->abfc", tiling.g, w.astype(np.float64), tiling.g)
    return u.reshape(tiling.planes, f, c).astype(np.float32)


@dataclass(frozen=True)
class WinogradConv(Pass):
    """Needs linalg.conv_2d_nchw_fchw on static f32 tensors with constant
    weights (before qc-conv-to-gemm). Leaves, for each 3x3 stride-1
    undilated one with enough tiles and channels, the two marked transforms
    around a linalg.batch_matmul."""

    name = "qc-winograd-conv"
    # Fewest 2x2 tiles per image: ResNet-50 on Zen 3, side by side
    # (benchmarks/ab.py), 1.11x faster with its 14x14 maps (49 tiles) as
    # Winograd than with none, and no faster with its 7x7 ones as well (16
    # tiles, whose 16 weight matrices of 512 x 512 are read for 16 columns).
    min_tiles: int = 32
    # Fewest input and output channels: the transforms cost C + F adds per
    # tile position against C * F multiply-adds saved. SqueezeNet on Zen 3:
    # 1.07x faster at 32 (its 16 -> 64 convolutions stay direct), 1.06x
    # at 8, 1.04x at 64.
    min_channels: int = 32
    # Fewest 4x4 tiles per image for F(4, 3); a map with fewer takes F(2, 3).
    # ResNet-50 on Zen 3, side by side: 1.019x faster with its 56x56 and
    # 28x28 maps as F(4, 3) than all as F(2, 3), 1.037x with its 14x14 ones
    # too (16 tiles: 36 weight matrices of 256 x 256 read for 16 columns,
    # no wasted lanes, where F(2, 3)'s 49 columns fill 4 panels of 16).
    # The pipeline raises it to the GEMM's panel width: with AVX-512's 32
    # columns, 16 tiles fill half a panel, and ResNet-50's 14x14 maps ran
    # 1.15x faster as F(2, 3) (a 256-channel 3x3 conv alone; the whole
    # model 1.026x, Sapphire Rapids).
    min_tiles_f4: int = 16
    # The largest tile: 2 keeps every convolution at F(2, 3).
    largest: int = 4

    def apply(self, module: ir.Module) -> None:
        for op in collect_ops(module.operation, ("linalg.conv_2d_nchw_fchw",)):
            _rewrite(op, self)


def tiling_for(c: int, f: int, oh: int, ow: int, kernel, options: WinogradConv = WinogradConv()) -> Tiling | None:
    """The Winograd tiling that a stride-1, undilated, ungrouped convolution
    of C -> F channels with this kernel and OH x OW outputs per image takes,
    or None where it stays direct."""
    if tuple(kernel) != (3, 3) or min(c, f) < options.min_channels:
        return None
    tiles = lambda m: -(-oh // m) * -(-ow // m)  # noqa: E731
    if options.largest >= 4 and tiles(4) >= options.min_tiles_f4:
        return F4
    return F2 if tiles(2) >= options.min_tiles else None


def _values(attr, shape) -> np.ndarray:
    if attr.is_splat:
        return np.full(shape, float(attr.get_splat_value().value), np.float32)
    return np.array(attr).reshape(shape)


def _rewrite(op, options: WinogradConv) -> None:
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
    tiling = None if attr is None else tiling_for(c, f, oh, ow, (kh, kw), options)
    if tiling is None:
        return
    weights = _values(attr, tys[1].shape)
    m, planes = tiling.m, tiling.planes
    th, tw = -(-oh // m), -(-ow // m)
    f32 = np.dtype(np.float32)
    eh, ew = m * th - oh, m * tw - ow  # up to m - 1 more output rows/columns
    with ir.InsertionPoint(op.operation), op.location:
        xt, it = b.T(x, f32), b.T(init, f32)
        if eh or ew:
            xt = _pad(b, xt, [0, 0, eh, ew])
            it = _regrown(b, init, [n, f, oh + eh, ow + ew]) or _pad(b, it, [0, 0, eh, ew])
        t = n * th * tw
        v = _input_transform(b, tiling, xt, b.filled([planes, c, n, th, tw], f32, 0.0))
        u = b.constant(transformed_weights(weights, tiling))
        vm = b.collapse(v, [[0], [1], [2, 3, 4]], [planes, c, t])
        mm = linalg.batch_matmul(u.value, vm.value, outs=[b.filled([planes, f, t], f32, 0.0)])
        m5 = b.expand(b.T(mm, f32), [[0], [1], [2, 3, 4]], [planes, f, n, th, tw])
        y = _output_transform(b, tiling, m5, it)
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


def _regrown(b, init: ir.Value, shape: list[int]):
    """The init computed again at the padded shape, where it is a fill or a
    broadcast over the channels (a bias): padded, it would be a copy into a
    zeroed buffer, which qc-winograd-loops cannot fold into the output
    transform as it folds the fill or the broadcast itself. None otherwise."""
    from .unshare_inits import recomputable

    f32 = np.dtype(np.float32)
    op = getattr(init.owner, "operation", None)
    if op is None or op.name == "tensor.empty" or not recomputable(op):
        return None
    if op.name == "linalg.fill":
        return b.T(linalg.fill(op.operands[0], outs=[b.empty(shape, f32)]), f32)
    maps = [ir.AffineMapAttr(m).value for m in op.attributes["indexing_maps"]]
    if maps[-1] != ir.AffineMap.get_identity(4):
        return None
    for m in maps[:-1]:  # the inputs read no pixel dim: the padded pixels read what the others do
        for e in m.results:
            if not (isinstance(e, ir.AffineConstantExpr)
                    or (isinstance(e, ir.AffineDimExpr) and e.position < 2)):
                return None
    block = op.regions[0].blocks[0]
    (y,) = list(list(block.operations)[0].operands)  # the yield: an input or a constant
    args = list(block.arguments)
    inputs = list(op.operands)[:len(args) - 1]
    pick = (lambda *a: a[args.index(y)]) if y in args else (lambda *a: y)
    (r,) = b.generic(inputs, [b.empty(shape, f32)], maps, [b.PARALLEL] * 4, pick)
    return b.T(r, f32)


def _mul_add(p, q, acc):
    return arith.AddFOp(acc, arith.MulFOp(p, q).result).result


def _input_transform(b, tiling: Tiling, x, zeros):
    """V[p, c, n, th, tw] = Σ_ij BB[p, i, j] · X[n, c, m·th + i, m·tw + j] with
    BB[αξ + ν, i, j] = B^T[ξ, i] B^T[ν, j]."""
    f32 = np.dtype(np.float32)
    a = tiling.alpha
    bb = np.einsum("ai,bj->abij", tiling.b_t, tiling.b_t).reshape(a * a, a, a).astype(np.float32)
    d = [ir.AffineDimExpr.get(i) for i in range(7)]  # p, c, n, th, tw, i, j
    x_map = ir.AffineMap.get(7, 0, [d[2], d[1], d[3] * tiling.m + d[5], d[4] * tiling.m + d[6]])
    maps = [x_map, b.dims_map(7, [0, 5, 6]), b.dims_map(7, [0, 1, 2, 3, 4])]
    iters = [b.PARALLEL] * 5 + [b.REDUCTION] * 2
    (v,) = b.generic([x.value, b.constant(bb).value], [zeros], maps, iters, _mul_add)
    v.owner.attributes[WINOGRAD_ATTR] = ir.StringAttr.get("input")
    return b.T(v, f32)


def _output_transform(b, tiling: Tiling, m, init):
    """Y[n, f, oh, ow] += Σ_p AA[oh mod m, ow mod m, p] · M[p, f, n, oh/m, ow/m]
    with AA[a, b, αξ + ν] = A^T[a, ξ] A^T[b, ν]."""
    f32 = np.dtype(np.float32)
    k = tiling.m
    aa = np.einsum("ai,bj->abij", tiling.a_t, tiling.a_t).reshape(k, k, tiling.planes).astype(np.float32)
    d = [ir.AffineDimExpr.get(i) for i in range(5)]  # n, f, oh, ow, p
    size = ir.AffineConstantExpr.get(k)
    tile = [ir.AffineFloorDivExpr.get(e, size) for e in (d[2], d[3])]
    within = [ir.AffineModExpr.get(e, size) for e in (d[2], d[3])]
    m_map = ir.AffineMap.get(5, 0, [d[4], d[1], d[0], *tile])
    a_map = ir.AffineMap.get(5, 0, [*within, d[4]])
    maps = [m_map, a_map, b.dims_map(5, [0, 1, 2, 3])]
    iters = [b.PARALLEL] * 4 + [b.REDUCTION]
    (y,) = b.generic([m.value, b.constant(aa).value], [init.value], maps, iters, _mul_add)
    y.owner.attributes[WINOGRAD_ATTR] = ir.StringAttr.get("output")
    return b.T(y, f32)
