"""qc-approximate-math: f32 exp / erf / tanh as arithmetic that vectorizes.

math.exp and math.erf otherwise become calls to libm's expf / erff, one
element at a time: LLVM cannot vectorize a loop around a call. Written with
arith ops only, the loops around them vectorize like any other.

exp(x): x = n*ln2 + r with n = round(x / ln2), |r| <= ln2/2;
        exp(r) by its degree-6 Taylor polynomial (relative error < 2e-7 on
        that interval), times 2^n as 2^(n//2) * 2^(n - n//2), each built in
        the exponent bits (so n = 128 still works). x is clamped to
        [-87.3, 88.73]; below, the result is flushed to 0 (expf would give
        denormals under 1.2e-38), above, it is inf.
erf(x): |x| >= 0.5: Abramowitz & Stegun 7.1.26, |error| < 1.5e-7 (in exact
        arithmetic): erf(|x|) = 1 - t*(a1 + t*(a2 + ... + t*a5)) * exp(-x^2),
        t = 1/(1 + p|x|); |x| < 0.5: the Maclaurin series to x^11, where the
        formula above would cancel (relative error < 3e-8). Odd symmetry.
tanh(x): |x| >= 0.3: 1 - 2 / (exp(2|x|) + 1); |x| < 0.3: the Maclaurin
        series to x^11 (relative error < 1e-9). Odd symmetry.
"""

from __future__ import annotations

import math as pymath
from dataclasses import dataclass

from qc.mlir import arith, ir
from qc.mlir import math as mmath

from .base import Pass, collect_ops

LN2 = pymath.log(2.0)
_EXP_TAYLOR = [1.0 / pymath.factorial(i) for i in range(7)]  # 1, 1, 1/2, ..., 1/720
_ERF_SERIES = [2 / pymath.sqrt(pymath.pi) * c for c in (1, -1 / 3, 1 / 10, -1 / 42, 1 / 216, -1 / 1320)]
_TANH_SERIES = [1, -1 / 3, 2 / 15, -17 / 315, 62 / 2835, -1382 / 155925]
_AS_P = 0.3275911
_AS_A = [0.254829592, -0.284496736, 1.421413741, -1.453152027, 1.061405429]


@dataclass(frozen=True)
class ApproximateMath(Pass):
    """Needs f32 math.exp / math.erf / math.tanh anywhere (scalars, e.g. in
    linalg.generic bodies). Leaves arith ops (and math.roundeven) instead."""

    name = "qc-approximate-math"

    def apply(self, module: ir.Module) -> None:
        for op in collect_ops(module.operation, ("math.exp", "math.erf", "math.tanh")):
            x = op.operands[0]
            if not isinstance(x.type, ir.F32Type):
                continue  # f64 keeps libm's accuracy
            with ir.InsertionPoint(op.operation), op.location:
                build = {"math.exp": _exp, "math.erf": _erf, "math.tanh": _tanh}[op.operation.name]
                y = build(x)
            op.operation.results[0].replace_all_uses_with(y)
            op.operation.erase()


def _c(v: float) -> ir.Value:
    return arith.ConstantOp(ir.F32Type.get(), float(v)).result


def _fma(a, b, c):
    """a*b + c, contractible into one FMA instruction where the target has one."""
    contract = ir.Attribute.parse("#arith.fastmath<contract>")
    return arith.AddFOp(arith.MulFOp(a, b, fastmath=contract).result, c, fastmath=contract).result


def _exp(x: ir.Value) -> ir.Value:
    i32 = ir.IntegerType.get_signless(32)
    lo = arith.ConstantOp(ir.F32Type.get(), -87.3).result
    hi = arith.ConstantOp(ir.F32Type.get(), 88.73).result
    xc = arith.MinimumFOp(arith.MaximumFOp(x, lo).result, hi).result
    n = mmath.RoundEvenOp(arith.MulFOp(xc, _c(1.0 / LN2)).result).result
    # r = x - n*ln2 in two steps (Cody-Waite): ln2's high part times n is exact.
    ln2_hi = 0.693145751953125
    ln2_lo = LN2 - ln2_hi
    r = arith.SubFOp(xc, arith.MulFOp(n, _c(ln2_hi)).result).result
    r = arith.SubFOp(r, arith.MulFOp(n, _c(ln2_lo)).result).result
    p = _c(_EXP_TAYLOR[-1])
    for coef in reversed(_EXP_TAYLOR[:-1]):
        p = _fma(p, r, _c(coef))
    # 2^n = 2^n1 * 2^n2, each as (k + 127) << 23 in the bits of a float.
    ni = arith.FPToSIOp(i32, n).result
    n1 = arith.ShRSIOp(ni, arith.ConstantOp(i32, 1).result).result
    n2 = arith.SubIOp(ni, n1).result
    y = p
    for k in (n1, n2):
        bits = arith.ShLIOp(arith.AddIOp(k, arith.ConstantOp(i32, 127).result).result,
                            arith.ConstantOp(i32, 23).result).result
        y = arith.MulFOp(y, arith.BitcastOp(ir.F32Type.get(), bits).result).result
    # Outside the clamp: 0 below, the input's own overflow to inf above.
    under = arith.CmpFOp(arith.CmpFPredicate.OLT, x, lo).result
    over = arith.CmpFOp(arith.CmpFPredicate.OGT, x, hi).result
    y = arith.SelectOp(under, _c(0.0), y).result
    return arith.SelectOp(over, _c(float("inf")), y).result


def _erf(x: ir.Value) -> ir.Value:
    ax = mmath.AbsFOp(x).result
    t = arith.DivFOp(_c(1.0), _fma(ax, _c(_AS_P), _c(1.0))).result
    poly = _c(_AS_A[-1])
    for coef in reversed(_AS_A[:-1]):
        poly = _fma(poly, t, _c(coef))
    poly = arith.MulFOp(poly, t).result
    e = _exp(arith.NegFOp(arith.MulFOp(ax, ax).result).result)
    y = arith.SubFOp(_c(1.0), arith.MulFOp(poly, e).result).result
    small = arith.CmpFOp(arith.CmpFPredicate.OLT, ax, _c(0.5)).result
    y = arith.SelectOp(small, _odd_series(ax, _ERF_SERIES), y).result
    return mmath.CopySignOp(y, x).result


def _odd_series(ax: ir.Value, coefs: list[float]) -> ir.Value:
    """ax * (c0 + c1 ax^2 + c2 ax^4 + ...), Horner in ax^2."""
    x2 = arith.MulFOp(ax, ax).result
    p = _c(coefs[-1])
    for coef in reversed(coefs[:-1]):
        p = _fma(p, x2, _c(coef))
    return arith.MulFOp(ax, p).result


def _tanh(x: ir.Value) -> ir.Value:
    ax = mmath.AbsFOp(x).result
    e = _exp(arith.MulFOp(ax, _c(2.0)).result)
    y = arith.SubFOp(_c(1.0), arith.DivFOp(_c(2.0), arith.AddFOp(e, _c(1.0)).result).result).result
    small = arith.CmpFOp(arith.CmpFPredicate.OLT, ax, _c(0.3)).result
    y = arith.SelectOp(small, _odd_series(ax, _TANH_SERIES), y).result
    return mmath.CopySignOp(y, x).result
