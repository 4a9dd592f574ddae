"""qc-divide-by-constant: x / c for a constant c as a multiply by 1/c and
one correction step, the same correctly rounded quotient without a divide.

A divide's throughput is a tenth of a multiply's (vdivps ymm: one per 5
cycles on Sapphire Rapids, two multiplies or FMAs per cycle), and a loop
that divides each element by the same constant, QuantizeLinear's x / scale
or an average's sum / count, is bound by it. With r = RN(1/c),

    q0 = RN(x * r)              within one ulp of x / c
    e  = RN(x - q0 * c)         one FMA: exact
    q  = RN(q0 + e * r)         one FMA: RN(x / c)

is Markstein's correction: with r within half an ulp of 1/c and q0 within
one ulp of x / c, q is x / c correctly rounded where nothing underflows:
for every x with |x| and |x / c| at least 2^-100 (the residual e, about
2^-24 |x|, stays a normal number) and x / c finite. Below that, q may be
one ulp off (the tests compare bits down to 2^-100). At the ends the pass keeps
the divide's result: q0 is clamped to the finite range before the
correction, so that an overflow still gives +-inf (not NaN), and q takes
q0's sign, so that -0 stays -0. A power of two c is
exact as the multiply alone.

The correction costs five vector ops where the divide cost one: it pays
where the divide is most of its loop, not where the divider runs beside
other work (`busy`). A quotient clamped to integer bounds [lo, hi] and
rounded to an integer (QuantizeLinear's body) needs three (a multiply and
two FMAs) plus q0's clamp to [lo - 1, hi + 1]: inside it the correction
is exact, beyond it the result still lands past the bound it is clamped
to (an overflowed x * r too), and a zero's sign is lost in the
conversion. That form is taken however busy the loop: on Sapphire
Rapids, after qc-round-to-integer, a QuantizeLinear of 100352 floats ran
1.5x faster with it as one loop (zmm), 1.08x as rows of 56 (ymm).

Needs f32 arith.divf by a scalar arith.constant, anywhere (generic bodies,
loops), and a target with fused multiply-add (`fma`; otherwise math.fma is a
library call per element and only the exact multiplies are taken). Leaves
arith.mulf, math.fma and math.copysign.
"""

from __future__ import annotations

import math as pymath
from dataclasses import dataclass

import numpy as np

from qc.mlir import arith, ir
from qc.mlir import math as mmath

from .base import Pass, collect_ops


@dataclass(frozen=True)
class DivideByConstant(Pass):
    """fma: whether the target fuses a multiply and an add in one rounding
    (the correction needs it; without it the pass leaves every divide but
    those by a power of two). busy: a divide whose block has more than this
    many other arith / math ops is left (-1: none is): there the divider
    runs beside the other ops and the rewrite's five vector ops cost more
    than it saves. On Sapphire Rapids, with ymm loops, a lone Div by a
    constant ran 1.44x faster rewritten, QuantizeLinear's x / s followed
    by round, add, clamp and convert 0.89x."""

    name = "qc-divide-by-constant"
    fma: bool = True
    busy: int = 2

    def apply(self, module: ir.Module) -> None:
        for op in collect_ops(module.operation, ("arith.divf",)):
            r = _reciprocal(op.operands[1])
            if r is None:
                continue
            exact = pymath.frexp(float(r))[0] == 0.5  # c = 2^k: 1/c exact, x * r exact
            bounds = _rounded_clamp(op)
            if not exact and (not self.fma or (bounds is None and 0 <= self.busy < _other_ops(op))):
                continue
            f32 = ir.F32Type.get()
            x, c = op.operands
            with ir.InsertionPoint(op.operation), op.location:
                rc = arith.ConstantOp(f32, float(r)).result
                q0 = arith.MulFOp(x, rc).result
                if exact:
                    q = q0
                elif bounds is not None:
                    # The quotient is clamped to [lo, hi] and rounded to an
                    # integer: q0 clamped to [lo - 1, hi + 1] keeps the
                    # correction finite (an overflowed x * r gives a bound,
                    # not NaN) and exact inside, and the sign of a zero is
                    # lost in the conversion anyway.
                    lo, hi = (arith.ConstantOp(f32, v).result for v in (bounds[0] - 1, bounds[1] + 1))
                    qc = arith.MinNumFOp(arith.MaxNumFOp(q0, lo).result, hi).result
                    e = mmath.FmaOp(arith.NegFOp(qc).result, c, x).result
                    q = mmath.FmaOp(e, rc, qc).result
                else:
                    # q0 clamped to the finite range: an overflowed x * r
                    # then corrects to +-inf (and inf stays inf) rather than NaN.
                    big = arith.ConstantOp(f32, float(np.finfo(np.float32).max)).result
                    neg_big = arith.ConstantOp(f32, -float(np.finfo(np.float32).max)).result
                    qc = arith.MinimumFOp(arith.MaximumFOp(q0, neg_big).result, big).result
                    e = mmath.FmaOp(arith.NegFOp(qc).result, c, x).result
                    # The quotient's sign is q0's; the correction's sum
                    # would turn -0 into +0.
                    q = mmath.CopySignOp(mmath.FmaOp(e, rc, qc).result, q0).result
            op.result.replace_all_uses_with(q)
            op.operation.erase()


def _only_use(v: ir.Value, names: tuple[str, ...]):
    """The op using v, if it is its only use and one of `names`."""
    uses = list(v.uses)
    if len(uses) != 1 or uses[0].owner.name not in names:
        return None
    return uses[0].owner


def _constant_f32(v: ir.Value) -> float | None:
    owner = getattr(v.owner, "operation", None)
    if owner is None or owner.name != "arith.constant" or not isinstance(v.type, ir.F32Type):
        return None
    return float(ir.FloatAttr(owner.attributes["value"]).value)


def _rounded_clamp(op) -> tuple[float, float] | None:
    """(lo, hi) where the quotient's only use is a clamp to integer constant
    bounds (maxnumf and minnumf, in either order) that is rounded half to
    even and converted to an integer (QuantizeLinear's body), else None."""
    v, found = op.result, {}
    for _ in range(2):
        clamp = _only_use(v, ("arith.maxnumf", "arith.minnumf"))
        if clamp is None or clamp.name in found:
            return None
        a, b = clamp.operands
        bound = _constant_f32(b if a == v else a)
        if bound is None or not float(bound).is_integer() or abs(bound) >= 2**24:
            return None
        found[clamp.name] = bound
        v = clamp.results[0]
    rnd = _only_use(v, ("math.roundeven",))
    if rnd is None or _only_use(rnd.results[0], ("arith.fptosi", "arith.fptoui")) is None:
        return None
    lo, hi = found["arith.maxnumf"], found["arith.minnumf"]
    return (lo, hi) if lo <= hi else None


def _other_ops(op) -> int:
    """The arith / math ops other than constants in op's block, op excluded."""
    return sum(1 for o in op.operation.block.operations
               if o.name.split(".")[0] in ("arith", "math") and o.name != "arith.constant") - 1


def _reciprocal(c: ir.Value) -> np.float32 | None:
    """RN(1/c) in f32 for a scalar f32 constant c whose reciprocal is a
    normal number (so that the correction's products stay in range), else None."""
    owner = getattr(c.owner, "operation", None)
    if owner is None or owner.name != "arith.constant" or not isinstance(c.type, ir.F32Type):
        return None
    v = np.float32(ir.FloatAttr(owner.attributes["value"]).value)
    if not np.isfinite(v) or v == 0:
        return None
    with np.errstate(all="ignore"):
        r = np.float32(1) / v  # IEEE division: correctly rounded
    tiny = np.finfo(np.float32).tiny
    if not np.isfinite(r) or abs(r) < tiny or abs(v) < tiny:
        return None
    return r
