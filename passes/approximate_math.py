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
erf(x): x * P(x^2) / Q(x^2), P and Q of degree 5, x clamped to [-4, 4]
        (erf(4) is 1 in f32). The coefficients were fitted to erf(x)/x
        on (0, 4] for the least maximum relative error: 2.5e-8 in exact
        arithmetic, 3.3e-7 absolute after f32 rounding (the A&S formula
        with exp and a series near zero that this replaced: 3.2e-7, with
        twice the operations and a second division). All coefficients are
        positive, so neither polynomial cancels; the result is clamped to
        [-1, 1] (rounding can reach 1 + 2^-23).
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
_TANH_SERIES = [1, -1 / 3, 2 / 15, -17 / 315, 62 / 2835, -1382 / 155925]
# erf(x) ~ x * P(x^2) / Q(x^2) on [-4, 4]: see the module docstring.
_ERF_P = [1.1283791394376068, 0.19354451505711176, 0.05310160998370265, 0.0038833040513414963,
          0.0002845620744040024, 1.9867472013934684e-06]
_ERF_Q = [1.0, 0.5048569170959826, 0.11534971581442212, 0.015207172617153259, 0.0011855560708002519,
          3.741961316214987e-05]
_ERF_CLAMP = 4.0


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
            scaled = _constant_scale(x) if op.operation.name == "math.erf" else None
            with ir.InsertionPoint(op.operation), op.location:
                if scaled is not None:
                    y = _erf(scaled[0], scaled[1])
                else:
                    build = {"math.exp": _exp, "math.erf": _erf, "math.tanh": _tanh}[op.operation.name]
                    y = build(x)
            op.operation.results[0].replace_all_uses_with(y)
            op.operation.erase()
            if scaled is not None:
                x.owner.erase()


def _constant_scale(x: ir.Value) -> tuple[ir.Value, float] | None:
    """(v, s) when x = v / c or v * c (s = 1/c or c) for an f32 constant c
    and x has no other use: erf(v * s) then folds s into its coefficients
    (GELU's erf(x / sqrt(2)) loses a division and a rounding)."""
    owner = x.owner
    if not isinstance(owner, ir.OpView) or owner.name not in ("arith.divf", "arith.mulf"):
        return None
    if len(list(x.uses)) != 1:
        return None
    v, c = owner.operands[0], owner.operands[1]
    if owner.name == "arith.mulf" and _f32_constant(v) is not None:
        v, c = c, v
    value = _f32_constant(c)
    if value is None or value == 0 or not pymath.isfinite(value):
        return None
    s = 1.0 / value if owner.name == "arith.divf" else value
    coefs = _erf_coefficients(s)
    if not all(1e-37 < abs(k) < 1e37 for k in coefs[0] + coefs[1]):
        return None  # a scale so far from 1 that a coefficient leaves f32's normal range
    return v, s


def _f32_constant(v: ir.Value) -> float | None:
    owner = v.owner
    if isinstance(owner, ir.OpView) and owner.name == "arith.constant" and isinstance(v.type, ir.F32Type):
        return ir.FloatAttr(owner.attributes["value"]).value
    return None


def _c(v: float) -> ir.Value:
    return arith.ConstantOp(ir.F32Type.get(), float(v)).result


def fma(a, b, c):
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
        p = fma(p, r, _c(coef))
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


def _erf_coefficients(s: float) -> tuple[list[float], list[float]]:
    """P and Q of erf(s * x) = x * P(x^2) / Q(x^2): P_k s^(2k+1), Q_k s^(2k)."""
    return ([c * s ** (2 * k + 1) for k, c in enumerate(_ERF_P)], [c * s ** (2 * k) for k, c in enumerate(_ERF_Q)])


def _erf(x: ir.Value, s: float = 1.0) -> ir.Value:
    """erf(s * x)."""
    cp, cq = _erf_coefficients(s)
    bound = _ERF_CLAMP / abs(s)
    xc = arith.MinimumFOp(arith.MaximumFOp(x, _c(-bound)).result, _c(bound)).result
    t = arith.MulFOp(xc, xc).result
    p, q = _c(cp[-1]), _c(cq[-1])
    for kp, kq in zip(reversed(cp[:-1]), reversed(cq[:-1])):
        p, q = fma(p, t, _c(kp)), fma(q, t, _c(kq))
    y = arith.DivFOp(arith.MulFOp(xc, p).result, q).result
    return arith.MinimumFOp(arith.MaximumFOp(y, _c(-1.0)).result, _c(1.0)).result


def _odd_series(ax: ir.Value, coefs: list[float]) -> ir.Value:
    """ax * (c0 + c1 ax^2 + c2 ax^4 + ...), Horner in ax^2."""
    x2 = arith.MulFOp(ax, ax).result
    p = _c(coefs[-1])
    for coef in reversed(coefs[:-1]):
        p = fma(p, x2, _c(coef))
    return arith.MulFOp(ax, p).result


def _tanh(x: ir.Value) -> ir.Value:
    ax = mmath.AbsFOp(x).result
    e = _exp(arith.MulFOp(ax, _c(2.0)).result)
    y = arith.SubFOp(_c(1.0), arith.DivFOp(_c(2.0), arith.AddFOp(e, _c(1.0)).result).result).result
    small = arith.CmpFOp(arith.CmpFPredicate.OLT, ax, _c(0.3)).result
    y = arith.SelectOp(small, _odd_series(ax, _TANH_SERIES), y).result
    return mmath.CopySignOp(y, x).result
