"""Mod: the remainder of an elementwise division, numpy broadcasting.

fmod=1 is C's fmod: the remainder takes the sign of the dividend,
r = x - trunc(x / y) * y (arith.remf / arith.remsi / arith.remui).

fmod=0 is Python's and numpy's mod: the remainder takes the sign of the
divisor, r = x - floor(x / y) * y. From the truncated remainder t:
r = t + y when t != 0 and t, y have opposite signs, else t. Floats follow
numpy's npy_divmod to the last bit: a zero remainder is a zero with the
divisor's sign, x mod 0 and inf mod y are NaN, and -3 mod inf is inf.

Integer remainders trap on x86 (idiv raises SIGFPE, killing the process) for
a zero divisor and for INT_MIN % -1. Unless a constant divisor rules them
out, those lanes divide by 1 instead and then take numpy's result: 0 for
both (x % -1 is always 0).

float16 is computed in float32 and rounded back once; a remainder of half
values is exact in float32, as numpy's own half mod is.
"""

from __future__ import annotations

import numpy as np

from qc.errors import UnsupportedOp
from qc.mlir import arith, ir

from . import builder as b
from .attrs import attrs
from .registry import importer

FLOATS = (np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.float64))
SUPPORTED_TYPES = "float16, float32, float64, (u)int8/16/32/64"


@importer("Mod")
def import_mod(ctx, node):
    x, y = ctx.get(node.input[0]), ctx.get(node.input[1])
    if x.dtype != y.dtype:
        raise UnsupportedOp(node, f"operands have different element types ({x.dtype}, {y.dtype})")
    fmod = int(attrs(node).get("fmod", 0))
    if fmod not in (0, 1):
        raise UnsupportedOp(node, f"fmod={fmod}", "fmod=0 (sign of the divisor) or 1 (sign of the dividend)")
    dt = x.dtype
    if dt in FLOATS:
        return [b.elementwise([x, y], dt, _float_mod(dt, fmod == 0))]
    if np.issubdtype(dt, np.integer):
        return [b.elementwise([x, y], dt, _int_mod(dt, fmod == 0, ctx.const(node.input[1])))]
    raise UnsupportedOp(node, f"element type {dt} is not supported", SUPPORTED_TYPES)


def _float_mod(dt, floored: bool):
    wide = np.dtype(np.float32) if dt == np.float16 else dt
    wide_ty, ty = b.mlir_type(wide), b.mlir_type(dt)

    def body(p, q):
        if wide != dt:
            p, q = arith.ExtFOp(wide_ty, p).result, arith.ExtFOp(wide_ty, q).result
        r = arith.RemFOp(p, q).result
        if floored:
            r = _floor_fixup(r, q, wide)
        return arith.TruncFOp(ty, r).result if wide != dt else r

    return body


def _floor_fixup(t, q, dt):
    """numpy's mod from the truncated remainder t of p / q: t + q where t is
    nonzero (NaN counts as nonzero) with a sign unlike q's; copysign(0, q)
    where t is zero."""
    zero = b.scalar(0.0, dt)
    t_neg = arith.CmpFOp(arith.CmpFPredicate.OLT, t, zero).result
    q_neg = arith.CmpFOp(arith.CmpFPredicate.OLT, q, zero).result
    signs_differ = arith.XOrIOp(t_neg, q_neg).result
    t_nonzero = arith.CmpFOp(arith.CmpFPredicate.UNE, t, zero).result
    shift = arith.AndIOp(t_nonzero, signs_differ).result
    shifted = arith.SelectOp(shift, arith.AddFOp(t, q).result, t).result
    signed_zero = _copysign_zero(q, dt)
    return arith.SelectOp(t_nonzero, shifted, signed_zero).result


def _copysign_zero(q, dt):
    """+0.0 or -0.0 with q's sign bit: q's bits with all but the sign cleared."""
    bits = np.dtype(dt).itemsize * 8
    ity = ir.IntegerType.get_signless(bits)
    sign_mask = ir.IntegerAttr.get(ity, -(2 ** (bits - 1)))
    q_bits = arith.BitcastOp(ity, q).result
    sign = arith.AndIOp(q_bits, arith.ConstantOp(ity, sign_mask).result).result
    return arith.BitcastOp(b.mlir_type(dt), sign).result


def _int_mod(dt, floored: bool, divisor):
    signed = not b.is_unsigned(dt)
    rem = arith.RemSIOp if signed else arith.RemUIOp
    needs_guard = divisor is None or np.any(divisor == 0) or (signed and np.any(divisor == -1))

    def body(p, q):
        t = rem(p, _safe_divisor(q, dt) if needs_guard else q).result
        if not (floored and signed):
            return t  # unsigned remainders are never negative: both forms agree
        zero = b.scalar(0, dt)
        # t and q have opposite signs exactly when t ^ q is negative (t != 0).
        t_nonzero = arith.CmpIOp(arith.CmpIPredicate.ne, t, zero).result
        opposite = arith.CmpIOp(arith.CmpIPredicate.slt, arith.XOrIOp(t, q).result, zero).result
        shift = arith.AndIOp(t_nonzero, opposite).result
        return arith.SelectOp(shift, arith.AddIOp(t, q).result, t).result

    return body


def _safe_divisor(q, dt):
    """q, with 1 in the lanes that would trap: x % 0 and x % -1 are 0 in
    numpy, and so is x % 1."""
    unsafe = arith.CmpIOp(arith.CmpIPredicate.eq, q, b.scalar(0, dt)).result
    if not b.is_unsigned(dt):
        by_minus_one = arith.CmpIOp(arith.CmpIPredicate.eq, q, b.scalar(-1, dt)).result
        unsafe = arith.OrIOp(unsafe, by_minus_one).result
    return arith.SelectOp(unsafe, b.scalar(1, dt), q).result
