"""Matrix products: MatMul (numpy semantics, batched and broadcasting) and Gemm.

Plain 2-D products become linalg.matmul, equal-batch rank-3 products
linalg.batch_matmul, so later GEMM passes see named ops. A stack of rows times
one matrix ([B, S, K] x [K, N], the common transformer case) is collapsed into
one 2-D matmul over B*S rows. Other batch broadcasts become a
linalg.generic contraction.
"""

from __future__ import annotations

import numpy as np

from qc.errors import UnsupportedOp
from qc.mlir import arith, linalg

from . import builder as b
from .attrs import attrs
from .registry import importer

MATMUL_TYPES = "float32, float64, int32, int64"


def _check_types(node, x: b.T, y: b.T) -> None:
    if x.dtype != y.dtype:
        raise UnsupportedOp(node, f"operands have different element types ({x.dtype}, {y.dtype})")
    if x.dtype not in (np.float32, np.float64, np.int32, np.int64):
        raise UnsupportedOp(node, f"element type {x.dtype} is not supported", MATMUL_TYPES)


def _mul_add(dtype):
    if b.is_float(dtype):
        return lambda x, y, acc: arith.AddFOp(acc, arith.MulFOp(x, y).result).result
    return lambda x, y, acc: arith.AddIOp(acc, arith.MulIOp(x, y).result).result


def matmul_2d(x: b.T, y: b.T, init: b.T | None = None) -> b.T:
    """[M, K] x [K, N] (+ init) with linalg.matmul."""
    (m, k), (k2, n) = x.shape, y.shape
    assert k == k2
    if init is None:
        init = b.T(b.filled([m, n], x.dtype, 0), x.dtype)
    return b.T(linalg.matmul(x.value, y.value, outs=[init.value]), x.dtype)


@importer("MatMul")
def import_matmul(ctx, node):
    x, y = ctx.get(node.input[0]), ctx.get(node.input[1])
    _check_types(node, x, y)
    if x.rank == 0 or y.rank == 0:
        raise UnsupportedOp(node, "MatMul needs inputs of rank >= 1")
    # numpy: a 1-D left operand is a row, a 1-D right operand a column; the
    # added dim is removed from the result.
    xs = (1, *x.shape) if x.rank == 1 else x.shape
    ys = (*y.shape, 1) if y.rank == 1 else y.shape
    if xs[-1] != ys[-2]:
        raise UnsupportedOp(node, f"inner dims differ: {list(x.shape)} x {list(y.shape)}")
    x2, y2 = b.reshape(x, xs), b.reshape(y, ys)
    batch = tuple(np.broadcast_shapes(xs[:-2], ys[:-2]))
    m, k, n = xs[-2], xs[-1], ys[-1]
    final = batch + ((m,) if x.rank > 1 else ()) + ((n,) if y.rank > 1 else ())

    if len(ys) == 2:
        # [..., M, K] x [K, N]: every leading dim of x is more rows of one 2-D product.
        lead = [list(range(len(xs) - 1)), [len(xs) - 1]]
        rows = int(np.prod(xs[:-1]))
        x_rows = b.collapse(x2, lead, (rows, k)) if len(xs) > 2 else x2
        out = matmul_2d(x_rows, y2)
        if len(xs) > 2:
            out = b.expand(out, lead, (*xs[:-1], n))
        return [b.reshape(out, final)]
    if len(xs) == 3 and xs[:-2] == ys[:-2]:
        init = b.filled((*batch, m, n), x.dtype, 0)
        out = b.T(linalg.batch_matmul(x2.value, y2.value, outs=[init]), x.dtype)
        return [b.reshape(out, final)]
    return [b.reshape(_batched_contraction(x2, y2, batch, m, k, n), final)]


def _batched_contraction(x: b.T, y: b.T, batch, m, k, n) -> b.T:
    """out[batch, m, n] += x[batch', m, k] * y[batch'', k, n], numpy broadcasting."""
    nb = len(batch)
    rank = nb + 3  # loops: batch..., m, n, k
    dm, dn, dk = nb, nb + 1, nb + 2
    ins, maps = [], []
    for t, inner in ((x, [dm, dk]), (y, [dk, dn])):
        off = nb - (t.rank - 2)
        drop = [t.shape[i] == 1 and batch[off + i] != 1 for i in range(t.rank - 2)] + [False, False]
        v = b.drop_unit_dims(t, drop)
        dims = [off + i for i in range(t.rank - 2) if not drop[i]] + inner
        ins.append(v.value)
        maps.append(b.dims_map(rank, dims))
    init = b.filled((*batch, m, n), x.dtype, 0)
    iters = [b.PARALLEL] * (nb + 2) + [b.REDUCTION]
    out_map = b.dims_map(rank, [*range(nb), dm, dn])
    (res,) = b.generic(ins, [init], [*maps, out_map], iters, _mul_add(x.dtype))
    return b.T(res, x.dtype)


def _transpose(x: b.T) -> b.T:
    m, n = x.shape
    init = b.empty([n, m], x.dtype)
    return b.T(linalg.transpose(x.value, outs=[init], permutation=[1, 0]).results[0], x.dtype)


@importer("Gemm")
def import_gemm(ctx, node):
    """Y = alpha * A' B' + beta * C, A' = A or A^T, B' = B or B^T.

    With a constant B (the usual weight), the transpose and alpha are folded
    into B at compile time; beta * C becomes the matmul's initial accumulator.
    """
    a = attrs(node)
    alpha, beta = float(a.get("alpha", 1.0)), float(a.get("beta", 1.0))
    trans_a, trans_b = int(a.get("transA", 0)), int(a.get("transB", 0))
    x = ctx.get(node.input[0])
    wb = ctx.const(node.input[1])
    y = ctx.get(node.input[1]) if wb is None else None
    ty = x.dtype
    if y is not None:
        _check_types(node, x, y)
    elif ty not in (np.float32, np.float64, np.int32, np.int64) or wb.dtype != ty:
        raise UnsupportedOp(node, f"element types {ty}, {wb.dtype} are not supported", MATMUL_TYPES)
    if x.rank != 2 or (y.rank if y is not None else wb.ndim) != 2:
        raise UnsupportedOp(node, "Gemm needs 2-D A and B")
    if not b.is_float(ty) and not (alpha.is_integer() and beta.is_integer()):
        # A fractional scale of an integer product would round; ONNX leaves how unspecified.
        raise UnsupportedOp(node, f"alpha={alpha:g}, beta={beta:g} on {ty} inputs",
                            "integral alpha and beta for integer Gemm")

    if trans_a:
        x = _transpose(x)
    if wb is not None:
        w = wb.T if trans_b else wb
        if alpha != 1.0:
            w = (w * alpha).astype(ty)
        y = b.constant(np.ascontiguousarray(w))
    elif trans_b:
        y = _transpose(y)
    m, k = x.shape
    k2, n = y.shape
    if k != k2:
        raise UnsupportedOp(node, f"inner dims differ: A' is {[m, k]}, B' is {[k2, n]}")
    scale_after = alpha != 1.0 and wb is None

    c = _scaled_c(ctx, node, beta, ty, (m, n))
    # The product accumulates into its init. A runtime C of the output's shape
    # would be that init itself once the identity broadcast folds away, and
    # bufferization would then accumulate into the caller's input buffer; such
    # a C (and any C when alpha scales the product afterwards) is added last.
    c_is_caller_buffer = (c is not None and beta == 1.0 and ctx.const(node.input[2]) is None
                          and c.shape == (m, n))
    add_c_after = c is not None and (scale_after or c_is_caller_buffer)
    init = _broadcast_to(c, (m, n)) if c is not None and not add_c_after else None
    out = matmul_2d(x, y, init)
    if scale_after:
        out = _scale(out, alpha)
    if add_c_after:
        out = b.elementwise([out, c], ty, _add(ty))
    return [out]


def _scaled_c(ctx, node, beta: float, ty, out_shape) -> b.T | None:
    """beta * C, or None without C (or with beta = 0); a constant C is scaled at compile time."""
    if len(node.input) < 3 or not node.input[2] or beta == 0.0:
        return None
    cc = ctx.const(node.input[2])
    if cc is not None:
        if cc.dtype != ty:
            raise UnsupportedOp(node, f"C has element type {cc.dtype}, A has {ty}")
        c = b.constant((cc * beta).astype(ty) if beta != 1.0 else cc)
    else:
        c = ctx.get(node.input[2])
        if c.dtype != ty:
            raise UnsupportedOp(node, f"C has element type {c.dtype}, A has {ty}")
        if beta != 1.0:
            c = _scale(c, beta)
    if c.rank > 2 or not _broadcasts_to(c.shape, out_shape):
        raise UnsupportedOp(node, f"C of shape {list(c.shape)} does not broadcast to {list(out_shape)}")
    return c


def _broadcasts_to(shape, target) -> bool:
    try:
        return tuple(np.broadcast_shapes(shape, target)) == tuple(target)
    except ValueError:
        return False


def _add(dtype):
    return (lambda p, q: arith.AddFOp(p, q).result) if b.is_float(dtype) else (lambda p, q: arith.AddIOp(p, q).result)


def _mul(dtype):
    return (lambda p, q: arith.MulFOp(p, q).result) if b.is_float(dtype) else (lambda p, q: arith.MulIOp(p, q).result)


def _scale(x: b.T, factor: float) -> b.T:
    s = b.scalar(factor, x.dtype)
    return b.elementwise([x], x.dtype, lambda v: _mul(x.dtype)(v, s))


def _broadcast_to(c: b.T, shape) -> b.T:
    """c broadcast to `shape`: the matmul's initial accumulator."""
    return b.broadcast_to(c, shape)
