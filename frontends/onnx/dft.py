"""DFT (opsets 17 and 20) as a dense transform along one axis (float32).

The signal's last dim holds one (real) or two (real, imaginary) components.
With z = xr + i xi along the axis and L = dft_length (default: the axis
size, or 2 (n - 1) for an inverse one-sided input of n):
    forward   Y[k] = sum_n z[n] e^(-2 pi i k n / L)        k < L, or L/2 + 1 (onesided)
    inverse   y[n] = 1/L sum_k Z[k] e^(+2 pi i k n / L)    n < L
    inverse, onesided: the real signal whose one-sided spectrum is Z
                       (numpy's irfft: bins 0 < k < L/2 count twice)
A signal shorter than L is zero-padded, a longer one cut. All three are
    out_re = sum_n xr A[k, n] - xi B[k, n],  out_im = sum_n xi A[k, n] + xr B[k, n]
for constant matrices A, B computed at compile time in float64, so the op is
one contraction: O(L^2) per line rather than an FFT's O(L log L), meant for
the short transforms models carry. The axis and dft_length must be
compile-time constants.
"""

from __future__ import annotations

import numpy as np

from qc.errors import UnsupportedOp
from qc.mlir import arith, ir, linalg, tensor

from . import builder as b
from .attrs import attrs
from .conv import check_f32
from .registry import importer
from .shape_fns import const_ints

MAX_LENGTH = 4096


def _matrices(n_in: int, length: int, inverse: bool, onesided: bool) -> tuple[np.ndarray, np.ndarray, int]:
    """(A, B, output length) with A, B of shape [output length, inputs used]."""
    if not inverse:
        n_out = length // 2 + 1 if onesided else length
        used = min(n_in, length)
        theta = 2 * np.pi * np.outer(np.arange(n_out), np.arange(used)) / length
        return np.cos(theta), -np.sin(theta), n_out
    if not onesided:
        used = min(n_in, length)
        theta = 2 * np.pi * np.outer(np.arange(length), np.arange(used)) / length
        return np.cos(theta) / length, np.sin(theta) / length, length
    # irfft: bins 1 .. ceil(L/2) - 1 stand for themselves and their mirror images
    used = min(n_in, length // 2 + 1)
    k = np.arange(used)
    weight = np.where((k == 0) | (2 * k == length), 1.0, 2.0) / length
    theta = 2 * np.pi * np.outer(np.arange(length), k) / length
    return np.cos(theta) * weight, np.sin(theta) * weight, length


@importer("DFT")
def import_dft(ctx, node):
    a = attrs(node)
    x = ctx.get(node.input[0])
    check_f32(node, "input", x)
    if x.rank < 3 or x.shape[-1] not in (1, 2):
        raise UnsupportedOp(node, f"input of shape {list(x.shape)}", "[batch, ..., 1 or 2 components]")
    lengths = const_ints(ctx, node, 1, "dft_length") if len(node.input) > 1 and node.input[1] else None
    if ctx.opset >= 20:
        axes = const_ints(ctx, node, 2, "axis") if len(node.input) > 2 and node.input[2] else [-2]
    else:
        axes = [int(a.get("axis", 1))]
    axis = axes[0]
    if not -x.rank <= axis < x.rank or axis % x.rank in (0, x.rank - 1):
        raise UnsupportedOp(node, f"axis {axis} for an input of rank {x.rank}",
                            "a signal dim (not the batch or the components)")
    axis %= x.rank
    inverse, onesided = bool(int(a.get("inverse", 0))), bool(int(a.get("onesided", 0)))
    n_in = x.shape[axis]
    length = lengths[0] if lengths else (2 * (n_in - 1) if inverse and onesided else n_in)
    if not 1 <= length <= MAX_LENGTH:
        raise UnsupportedOp(node, f"a transform of length {length}", f"1 to {MAX_LENGTH}")
    ma, mb, n_out = _matrices(n_in, length, inverse, onesided)
    # cos and sin of multiples of pi/2 are exactly 0, not float64 noise.
    ma[np.abs(ma) < 1e-12], mb[np.abs(mb) < 1e-12] = 0.0, 0.0
    real_out = inverse and onesided
    return [_transform(x, axis, ma.astype(np.float32), mb.astype(np.float32), n_out, real_out)]


def _transform(x: b.T, axis: int, ma: np.ndarray, mb: np.ndarray, n_out: int, real_out: bool) -> b.T:
    r = x.rank
    used = ma.shape[1]
    comps = 1 if real_out else 2
    out_shape = [n_out if d == axis else s for d, s in enumerate(x.shape[:-1])] + [comps]
    # loops: the output dims (axis -> k, last -> component c), then n over the used inputs
    n = r
    in_dims = [n if d == axis else d for d in range(r - 1)]
    mat_map = b.dims_map(r + 1, [axis, n])
    xr = _component(x, 0, used, axis)
    xi = _component(x, 1, used, axis) if x.shape[-1] == 2 else None
    ins = [xr.value] + ([xi.value] if xi is not None else []) + [b.constant(ma).value, b.constant(mb).value]
    maps = [b.dims_map(r + 1, in_dims)] * (2 if xi is not None else 1) + [mat_map, mat_map]

    def body(*args):
        if xi is not None:
            vr, vi, av, bv, acc = args
        else:
            (vr, av, bv, acc), vi = args, None
        re = arith.MulFOp(vr, av).result
        im = arith.MulFOp(vr, bv).result
        if vi is not None:
            re = arith.SubFOp(re, arith.MulFOp(vi, bv).result).result
            im = arith.AddFOp(im, arith.MulFOp(vi, av).result).result
        if comps == 1:
            return arith.AddFOp(acc, re).result
        is_re = arith.CmpIOp(arith.CmpIPredicate.eq, linalg.IndexOp(r - 1).result,
                             arith.ConstantOp(ir.IndexType.get(), 0).result).result
        return arith.AddFOp(acc, arith.SelectOp(is_re, re, im).result).result

    out_map = b.dims_map(r + 1, list(range(r)))
    (res,) = b.generic(ins, [b.filled(out_shape, np.float32, 0.0)], [*maps, out_map],
                       [b.PARALLEL] * r + [b.REDUCTION], body)
    return b.T(res, np.dtype(np.float32))


def _component(x: b.T, c: int, used: int, axis: int) -> b.T:
    """x[..., :used (along axis), ..., c] without its last dim: a rank-reducing slice (a view)."""
    sizes = [used if d == axis else s for d, s in enumerate(x.shape[:-1])] + [1]
    shape = sizes[:-1]
    op = tensor.ExtractSliceOp(b.tensor_type(shape, x.dtype), x.value, [], [], [], [0] * (x.rank - 1) + [c],
                               sizes, [1] * x.rank)
    return b.T(op.result, x.dtype)
