"""Einsum: sums of products over named indices.

out[output letters] = sum over the other letters of  prod_k input_k[its letters]

One loop per letter (output letters first, then the summed ones), one
linalg.generic with a multiply-accumulate body. Forms with a named op are
imported as that op, so the GEMM passes see them: "ij,jk->ik" is
linalg.matmul, "bij,bjk->bik" linalg.batch_matmul, and a pure permutation
("ij->ji") linalg.transpose.

"..." stands for the same leading dims in every operand (right-aligned,
numpy broadcasting); size-1 dims broadcast against larger ones. A letter
repeated within one operand (a diagonal, "ii->i") is not supported.
"""

from __future__ import annotations

import string

import numpy as np

from qc.errors import UnsupportedOp
from qc.mlir import arith, linalg

from . import builder as b
from .attrs import attrs
from .registry import importer

EINSUM_TYPES = tuple(np.dtype(t) for t in (np.float32, np.float64, np.int32, np.int64))
EINSUM_TYPE_NAMES = "float32, float64, int32, int64"


def parse_equation(node, equation: str, ranks: list[int]) -> tuple[list[str], str]:
    """Each operand's letters and the output's, with "..." spelled out as
    fresh letters and an implicit output ("ij,jk") made explicit."""
    eq = equation.replace(" ", "")
    lhs, arrow, rhs = eq.partition("->")
    terms = lhs.split(",")
    if len(terms) != len(ranks):
        raise UnsupportedOp(node, f"equation '{equation}' has {len(terms)} operands, the node {len(ranks)}")
    fresh = [c for c in string.ascii_letters if c not in eq]
    n_ell = 0
    for t, r in zip(terms, ranks):
        if "..." in t:
            n_ell = max(n_ell, r - (len(t) - 3))
    ell = "".join(fresh[:n_ell])
    spelled = []
    for t, r in zip(terms, ranks):
        if "..." in t:
            k = r - (len(t) - 3)
            t = t.replace("...", ell[n_ell - k:] if k > 0 else "")
        if (t and not t.isalpha()) or len(t) != r:
            raise UnsupportedOp(node, f"equation term '{t}' does not name the {r} dims of its operand")
        if len(set(t)) != len(t):
            raise UnsupportedOp(node, f"term '{t}' repeats a letter (a diagonal)", "distinct letters per operand")
        spelled.append(t)
    if arrow:
        out = rhs.replace("...", ell)
    else:  # implicit: the broadcast dims, then the letters used once, sorted
        counts = {c: "".join(spelled).count(c) for c in "".join(spelled)}
        out = ell + "".join(sorted(c for c, n in counts.items() if n == 1 and c not in ell))
    used = set("".join(spelled))
    if not all(c in used for c in out) or len(set(out)) != len(out):
        raise UnsupportedOp(node, f"output '{out}' must name distinct letters of the operands")
    return spelled, out


@importer("Einsum")
def import_einsum(ctx, node):
    xs = [ctx.get(n) for n in node.input]
    if len({x.dtype for x in xs}) != 1:
        raise UnsupportedOp(node, f"operands have different element types {sorted({str(x.dtype) for x in xs})}")
    dtype = xs[0].dtype
    if dtype not in EINSUM_TYPES:
        raise UnsupportedOp(node, f"element type {dtype} is not supported", EINSUM_TYPE_NAMES)
    terms, out = parse_equation(node, attrs(node)["equation"], [x.rank for x in xs])
    extent: dict[str, int] = {}
    for x, t in zip(xs, terms):
        for c, d in zip(t, x.shape):
            if extent.get(c, 1) not in (1, d) and d != 1:
                raise UnsupportedOp(node, f"letter '{c}' has sizes {extent[c]} and {d}")
            extent[c] = max(extent.get(c, 1), d)
    named = _named_op(xs, terms, out, extent)
    if named is not None:
        return [named]
    return [_contraction(xs, terms, out, extent)]


def _named_op(xs: list[b.T], terms: list[str], out: str, extent: dict[str, int]) -> b.T | None:
    """matmul / batch_matmul / transpose when the equation is exactly that form."""
    exact = all(x.shape == tuple(extent[c] for c in t) for x, t in zip(xs, terms))
    if not exact:
        return None
    dtype = xs[0].dtype
    if len(xs) == 1 and sorted(terms[0]) == sorted(out):
        if terms[0] == out:
            return xs[0]
        perm = [terms[0].index(c) for c in out]
        init = b.empty([extent[c] for c in out], dtype)
        return b.T(linalg.transpose(xs[0].value, outs=[init], permutation=perm).results[0], dtype)
    if len(xs) != 2:
        return None
    (p, q), o = terms, out
    if (len(p), len(q), len(o)) == (2, 2, 2) and (p[1] + q[1], p[0] + q[1]) == (q, o) and len(set(p + q)) == 3:
        init = b.filled([extent[c] for c in o], dtype, 0)
        return b.T(linalg.matmul(xs[0].value, xs[1].value, outs=[init]), dtype)
    if ((len(p), len(q), len(o)) == (3, 3, 3) and (p[0] + p[2] + q[2], p[0] + p[1] + q[2]) == (q, o)
            and len(set(p + q)) == 4):
        init = b.filled([extent[c] for c in o], dtype, 0)
        return b.T(linalg.batch_matmul(xs[0].value, xs[1].value, outs=[init]), dtype)
    return None


def _contraction(xs: list[b.T], terms: list[str], out: str, extent: dict[str, int]) -> b.T:
    """One generic: loops = output letters, then summed letters; acc += prod."""
    summed = [c for c in dict.fromkeys("".join(terms)) if c not in out]
    loops = list(out) + summed
    n = len(loops)
    ins, maps = [], []
    for x, t in zip(xs, terms):
        # A size-1 dim against a larger extent broadcasts: drop it from the operand.
        drop = [x.shape[i] == 1 and extent[c] != 1 for i, c in enumerate(t)]
        ins.append(b.drop_unit_dims(x, drop).value)
        maps.append(b.dims_map(n, [loops.index(c) for i, c in enumerate(t) if not drop[i]]))
    dtype = xs[0].dtype
    init = b.filled([extent[c] for c in out], dtype, 0)
    iters = [b.PARALLEL] * len(out) + [b.REDUCTION] * len(summed)
    mul, add = (arith.MulFOp, arith.AddFOp) if b.is_float(dtype) else (arith.MulIOp, arith.AddIOp)

    def body(*args):
        *vals, acc = args
        prod = vals[0]
        for v in vals[1:]:
            prod = mul(prod, v).result
        return add(acc, prod).result

    (res,) = b.generic(ins, [init], [*maps, b.dims_map(n, [loops.index(c) for c in out])], iters, body)
    return b.T(res, dtype)
