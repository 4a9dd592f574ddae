"""Integer requantization shared by the quantized importers (no importers here).

A quantized tensor q stands for the real numbers (q - z) * s. An integer op
computes an int32 accumulator `acc` whose real value is acc * s_acc (for a
quantized product s_acc = s_x * s_w); its quantized output is

    y = saturate(round_half_even(acc * M + offset) + z_y),   M = s_acc / s_y,

with `offset` a real shift in output steps (a folded BatchNormalization
bias, say; 0 for QLinearConv). M is known at compile time, so it becomes a
fixed-point number M ~ m * 2^-r with an int32 mantissa 2^30 <= |m| < 2^31:

    y = saturate(((acc * m + o) >>round r) + z_y),   o = round(offset * 2^r),

one i64 product per element, a rounding right shift and a clamp; no float.
The mantissa is exact to 2^-31 relative (|m 2^-r - M| <= 2^-(r+1) <= |M| 2^-31),
so the result is the float formula's except where acc * M lies within
|acc * M| * 2^-31 of a rounding tie: within one step, nearly always equal.

Bounds (checked at compile time): |acc| < 2^31 and |m| < 2^31 give
|acc * m| < 2^62; |o| < 2^61 and the rounding constant 2^(r-1) <= 2^61
(r <= 62) keep every i64 sum below 2^63.

Where the clamp bounds the result to at most 256 values, one 32-bit
multiply does instead of the 64-bit product (`_requant_word`, the default;
`exact_requant()` turns it off): the accumulator is clamped first to the
range that maps inside the bounds, and the rest is
y = lo + (((acc - a_lo) * m' + c') >> s) in unsigned i32 (int8 results:
with lo * 2^s in c' and an arithmetic shift), whose error
(at most (W + 1) * 2^-(s+1) output steps over W accumulator values)
is checked at compile time against WORD_ERROR.

A second stage (a folded BatchNormalization's table, `then`) that the word
form may not feed keeps the exact product, but without its rounding
constant where a line through a shifted origin threads the first stage's
steps (requant_origin: proven at compile time, the same bits).

Rounding half to even without a branch: with q = p >> r (floor) and
bit = q & 1, round_half_even(p / 2^r) = (p + 2^(r-1) - 1 + bit) >> r: the
remainder p mod 2^r below one half never carries, above one half always
carries, and exactly one half carries when q is odd.
"""

from __future__ import annotations

import contextlib
import contextvars
from dataclasses import dataclass
from typing import Iterator, Sequence

import numpy as np

from qc.errors import UnsupportedOp
from qc.mlir import arith, ir, linalg, tensor

from . import builder as b
from . import requant_origin, table_fit

QC_DOMAIN = "qc"  # qc's own ops of fused QDQ groups (qdq_fuse.py)
I32 = np.dtype(np.int32)
I64 = np.dtype(np.int64)
QUANT_TYPES = (np.dtype(np.int8), np.dtype(np.uint8))
MANTISSA_BITS = 31  # |m| < 2^31: an int32 multiplier
MAX_SHIFT = 62  # the rounding constant 2^(r-1) <= 2^61
MAX_OFFSET = 2**61
# The largest error, in output steps, that the 32-bit form may add. A value
# within it of a rounding tie comes out one step off, and the next layers
# carry that on: at 1/64, the ResNet block quantized after quant_pre_process
# had 0.13% of its outputs 2 steps from the ONNX-semantics reference (its
# first conv's form flipped steps that the second conv and the residual Add
# amplified); at 1/256, none.
WORD_ERROR = 1 / 256

_EXACT = contextvars.ContextVar("qc_exact_requant", default=False)
_EXACT_OUTPUTS = contextvars.ContextVar("qc_exact_outputs", default=frozenset())


@contextlib.contextmanager
def exact_outputs(names) -> Iterator[None]:
    """Within it, the requantizations that produce the tensors `names` keep
    the exact product: a consumer amplifies their steps (`amplifying_reads`),
    so the word form's rare flipped step would become several."""
    token = _EXACT_OUTPUTS.set(frozenset(names))
    try:
        yield
    finally:
        _EXACT_OUTPUTS.reset(token)


def amplifying_reads(graph, consts: dict) -> set[str]:
    """The 8-bit tensors a QLinearAdd or QLinearMul reads with a slope above
    one output step per input step: a residual Add whose input scale exceeds
    its output scale (ResNet's after quant_pre_process: 0.060 / 0.034)."""
    out = set()
    for node in graph.node:
        if node.op_type not in ("QLinearAdd", "QLinearMul") or len(node.input) < 7:
            continue
        try:
            sa, sb, sc = (float(np.max(np.abs(consts[node.input[i]]))) for i in (1, 4, 6))
        except KeyError:  # scales computed at run time: no such requantization to choose
            continue
        if node.op_type == "QLinearAdd":
            slopes = (sa / sc, sb / sc)
        else:  # d(a * b) = b da: up to 255 steps of b
            slopes = (sa * sb * 255 / sc,) * 2
        out.update(node.input[i] for i, slope in zip((0, 3), slopes) if slope > 1)
    return out


@contextlib.contextmanager
def exact_requant(on: bool = True) -> Iterator[None]:
    """Within it, requantizations keep the exact 64-bit product with its
    rounding constant: no `_requant_word`, and no `_requant_origin` either
    (whose line gives the same bits): the reference form, to compare with."""
    token = _EXACT.set(on)
    try:
        yield
    finally:
        _EXACT.reset(token)


def qrange(dtype) -> tuple[int, int]:
    info = np.iinfo(np.dtype(dtype))
    return int(info.min), int(info.max)


# ---------------------------------------------------------------- compile time


@dataclass(frozen=True)
class FixedPoint:
    """M ~ m * 2^-r per element of a broadcastable array (int64 arrays)."""

    m: np.ndarray
    r: np.ndarray


def fixed_point(node, multipliers: Sequence[np.ndarray], offset=None) -> list[FixedPoint]:
    """Mantissas with one shift per element shared by all `multipliers`
    (QLinearAdd adds two products before the one rounding shift): the shift
    is set by the largest |M|, so it gets the full 31 bits.

    With an `offset` (output steps), the shift is also capped so that
    |offset| * 2^r < 2^61: a channel whose multiplier is tiny next to a large
    offset (BatchNormalization with gamma ~ 0) gets fewer mantissa bits, an
    absolute error of |acc| * 2^-(r+1) output steps, still far below one.
    """
    ms = [np.asarray(mul, np.float64) for mul in multipliers]
    shape = np.broadcast_shapes(*[mul.shape for mul in ms], *([] if offset is None else [np.shape(offset)]))
    ms = [np.broadcast_to(mul, shape) for mul in ms]
    big = np.max(np.abs(np.stack(ms)), axis=0)
    if not np.all(np.isfinite(big)):
        raise UnsupportedOp(node, "a requantization multiplier is not finite (a scale of 0 or inf?)",
                            "finite, positive scales")
    if np.any(big >= 2.0 ** (MANTISSA_BITS - 2)):
        raise UnsupportedOp(node, f"requantization multiplier {float(big.max()):g} is too large",
                            f"multipliers below 2^{MANTISSA_BITS - 2}")
    # |M| = f * 2^e with f in [0.5, 1): m = f * 2^31, r = 31 - e; zeros get any shift.
    _, e = np.frexp(np.where(big > 0, big, 1.0))
    r = np.minimum(MANTISSA_BITS - e.astype(np.int64), MAX_SHIFT)
    if offset is not None:
        # |offset| = g * 2^k with g in [0.5, 1): |offset| * 2^r < 2^61 for r <= 61 - k - 1.
        _, k = np.frexp(np.broadcast_to(np.abs(np.asarray(offset, np.float64)), shape))
        r = np.minimum(r, 60 - k.astype(np.int64))
        if np.any(r < 1):
            raise UnsupportedOp(node, "a requantization offset is too large for 64-bit fixed point",
                                "offsets below 2^59 output steps")
    scale = np.ldexp(1.0, r)
    mants = [np.rint(mul * scale).astype(np.int64) for mul in ms]
    # rint can round f * 2^31 up to 2^31 itself: one bit less then.
    over = np.max(np.abs(np.stack(mants)), axis=0) >= 2**MANTISSA_BITS
    if np.any(over):
        r = np.where(over, r - 1, r)
        scale = np.ldexp(1.0, r)
        mants = [np.rint(mul * scale).astype(np.int64) for mul in ms]
    return [FixedPoint(mant, r) for mant in mants]


def offset_fixed(offset: np.ndarray, r: np.ndarray) -> np.ndarray:
    """round(offset * 2^r) as int64 (`fixed_point` chose r so that it stays below 2^61)."""
    o = np.rint(np.asarray(offset, np.float64) * np.ldexp(1.0, r))
    assert np.all(np.abs(o) < MAX_OFFSET)
    return o.astype(np.int64)


@dataclass(frozen=True)
class Requant:
    """y = clamp(round_half_even(acc * mult + offset) + zy, lo, hi) per element.

    mult/offset/lo/hi broadcast to the accumulator (per output channel or
    per tensor); lo/hi already lie within the output type's range.
    """

    mult: np.ndarray
    offset: np.ndarray
    zy: int
    lo: np.ndarray
    hi: np.ndarray
    out_dtype: np.dtype

    @staticmethod
    def plain(mult, zy: int, out_dtype) -> "Requant":
        """QLinear* ops: saturation to the output type is the only clamp."""
        qmin, qmax = qrange(out_dtype)
        return Requant(np.asarray(mult, np.float64), np.zeros(()), int(zy), np.array(qmin), np.array(qmax),
                       np.dtype(out_dtype))


# ---------------------------------------------------------------- IR, scalars in a body


def ext(v: ir.Value, dtype: np.dtype, bits: int) -> ir.Value:
    """An integer scalar of numpy type `dtype` widened to `bits` (zero- or sign-extended)."""
    if np.dtype(dtype).itemsize * 8 == bits:
        return v
    ty = ir.IntegerType.get_signless(bits)
    return (arith.ExtUIOp if b.is_unsigned(dtype) else arith.ExtSIOp)(ty, v).result


def round_shift(p: ir.Value, r: ir.Value, half_minus_one: ir.Value) -> ir.Value:
    """round_half_even(p / 2^r) for i64 p, 1 <= r <= 62 (see the module doc)."""
    one = b.scalar(1, I64)
    bit = arith.AndIOp(arith.ShRSIOp(p, r).result, one).result
    biased = arith.AddIOp(arith.AddIOp(p, half_minus_one).result, bit).result
    return arith.ShRSIOp(biased, r).result


def saturate(q: ir.Value, lo: ir.Value, hi: ir.Value, out_dtype) -> ir.Value:
    """clamp(q, lo, hi) of an i64, narrowed to the output type."""
    c = arith.MinSIOp(arith.MaxSIOp(q, lo).result, hi).result
    return arith.TruncIOp(b.mlir_type(out_dtype), c).result


# ---------------------------------------------------------------- IR, per-channel constants


class Params:
    """Constants of an elementwise body: one that is the same everywhere is
    an arith.constant, a varying one (per channel) a tensor operand that
    broadcasts to the output."""

    def __init__(self):
        self.operands: list[b.T] = []
        self._slots: dict[str, tuple[str, object]] = {}

    def add(self, name: str, arr, dtype) -> None:
        arr = np.asarray(arr)
        if arr.size and np.all(arr == arr.flat[0]):
            self._slots[name] = ("scalar", b.scalar(arr.flat[0].item(), dtype))
        else:
            self._slots[name] = ("operand", len(self.operands))
            self.operands.append(b.constant(arr.astype(dtype)))

    def values(self, args: Sequence[ir.Value]) -> dict[str, ir.Value]:
        """The constants as body values; `args` are the block arguments of `operands`."""
        return {k: (v if kind == "scalar" else args[v]) for k, (kind, v) in self._slots.items()}


def requant_params(node, rq: Requant, extra_mults: Sequence[np.ndarray] = ()) -> tuple[Params, list[np.ndarray]]:
    """The fixed-point constants of `rq`: m (and one mantissa per extra
    multiplier, same shift), r, 2^(r-1) - 1, o, zy, lo, hi."""
    fps = fixed_point(node, [rq.mult, *extra_mults], offset=rq.offset)
    r = fps[0].r
    p = Params()
    p.add("m", fps[0].m, I64)
    for i, fp in enumerate(fps[1:]):
        p.add(f"m{i + 1}", fp.m, I64)
    p.add("r", r, I64)
    p.add("h", np.left_shift(np.int64(1), r - 1) - 1, I64)
    offset = offset_fixed(np.broadcast_to(rq.offset, r.shape), r)
    if np.any(offset != 0):
        p.add("o", offset, I64)
    p.add("lo", np.asarray(rq.lo) - rq.zy, I64)  # clamp before adding zy: the same bounds, shifted
    p.add("hi", np.asarray(rq.hi) - rq.zy, I64)
    p.add("zy", np.asarray(rq.zy), I64)
    return p, [fp.m for fp in fps]


def requant_tail(v: dict[str, ir.Value], p: ir.Value, out_dtype) -> ir.Value:
    """From the i64 product p = acc * m: add o, round-shift by r, clamp, add zy, narrow."""
    if "o" in v:
        p = arith.AddIOp(p, v["o"]).result
    q = round_shift(p, v["r"], v["h"])
    q = arith.MinSIOp(arith.MaxSIOp(q, v["lo"]).result, v["hi"]).result
    q = arith.AddIOp(q, v["zy"]).result
    return arith.TruncIOp(b.mlir_type(out_dtype), q).result


def requantize(node, acc: b.T, rq: Requant, acc_bound: int | None = None,
               then: table_fit.TableFit | None = None, acc_offset: np.ndarray | None = None) -> b.T:
    """The requantization of an int32 accumulator, one elementwise generic;
    `acc_bound` (|acc| <= it, from the weights) lets it skip the rounding
    tie's correction where no reachable accumulator is a tie. `then`: an
    affine table applied to the result (a merged qc::Lookup; its arrays
    broadcast against acc), in the same loop where the i32 form applies.
    `acc_offset`: a constant (int64, broadcasting against acc) that the
    accumulator still lacks (zero-point sums, bias), acc + acc_offset being
    an int32 and acc alone too: the high-word form folds it into its 64-bit
    rounding constant (one addition less per element), the others add it."""
    assert acc.dtype == I32, acc.dtype
    exact = _EXACT.get() or bool(set(getattr(node, "output", ())) & _EXACT_OUTPUTS.get())
    word = None if exact else _requant_word(node, rq, acc_bound, then, acc_offset)
    if word is not None:
        return word(acc)
    origin = None if then is None or exact else _requant_origin(rq, acc_bound, then, acc_offset)
    if origin is not None:
        return origin(acc)
    fast = _requant_high_word(node, rq, acc_bound, then, acc_offset)
    if fast is not None:
        return fast(acc)
    if acc_offset is not None and np.any(acc_offset):
        off = b.constant(np.asarray(acc_offset, np.int64).astype(np.int32))
        acc = b.elementwise([acc, off], I32, lambda a, o, *_: arith.AddIOp(a, o).result)
    params, _ = requant_params(node, rq)

    def body(a, *args):
        v = params.values(args)
        prod = arith.MulIOp(ext(a, I32, 64), v["m"]).result
        return requant_tail(v, prod, rq.out_dtype)

    y = b.elementwise([acc, *params.operands], rq.out_dtype, body)
    return y if then is None else apply_table_fit(y, then)


def _requant_high_word(node, rq: Requant, acc_bound: int | None, then: table_fit.TableFit | None = None,
                       acc_offset: np.ndarray | None = None):
    """`requantize` for shifts r >= 32 (every |M| < 1/2), written so that it
    vectorizes: the same bits, with i32 operands and constant i64 shifts.

    With r = 32 + s, floor(p / 2^r) = floor(floor(p / 2^32) / 2^s): the
    high word of the i64 p, shifted as an i32 (|p| < 2^63 keeps it in i32
    range after the first shift). So p = sext(acc) * sext(m) is a 32x32->64
    multiply (vpmuldq), the shifts are a word move and an i32 shift, and the
    clamp is i32; only the two roundings' additions stay 64-bit. Returns
    None where some r < 32 (|M| >= 1/2): those keep the i64 form.

    Where `tie_free` proves that no |acc| <= acc_bound lands exactly on a
    half, half-to-even and half-up agree, and the rounding is one addition
    of a constant before the shift (no parity bit: half the work).

    With `then` (A, B, S, lo2, hi2), the clamped q goes on to
    clamp((A * (q + zy) + B) >> S, lo2, hi2) without being narrowed: zy
    folds into B (B + A*zy), and |A*q + B| < 2^30 holds for every 8-bit q."""
    fps = fixed_point(node, [rq.mult], offset=rq.offset)
    (fp,) = fps
    if np.any(fp.r < 32):
        return None
    p = Params()
    p.add("m", fp.m, I32)
    p.add("s", fp.r - 32, I32)
    offset = offset_fixed(np.broadcast_to(rq.offset, fp.r.shape), fp.r)
    half_up = acc_bound is not None and tie_free(fp, offset, acc_bound)
    if acc_offset is not None:
        # (acc + k) * m + o = acc * m + (o + k * m), exactly in int64: |k|, |m| < 2^31
        # and |o| < 2^61. (The tie check above is about acc + k, the same values.)
        offset = offset + np.asarray(acc_offset, np.int64) * fp.m
    if half_up:
        p.add("c", offset + np.left_shift(np.int64(1), fp.r - 1), I64)
    else:
        p.add("h", np.left_shift(np.int64(1), fp.r - 1) - 1, I64)
        if np.any(offset != 0):
            p.add("o", offset, I64)
    p.add("lo", np.asarray(rq.lo) - rq.zy, I32)
    p.add("hi", np.asarray(rq.hi) - rq.zy, I32)
    if then is None:
        p.add("zy", np.asarray(rq.zy), I32)
    else:
        p.add("ta", then.a, I32)
        p.add("tb", np.asarray(then.b, np.int64) + np.asarray(then.a, np.int64) * rq.zy, I32)
        p.add("tlo", then.lo, I32)
        p.add("thi", then.hi, I32)
    i64 = b.mlir_type(I64)

    def body(a, *args):
        v = p.values(args)
        prod = arith.MulIOp(arith.ExtSIOp(i64, a).result, arith.ExtSIOp(i64, v["m"]).result).result
        q = _round_high_word(prod, v, v["s"])
        q = arith.MinSIOp(arith.MaxSIOp(q, v["lo"]).result, v["hi"]).result
        if then is None:
            q = arith.AddIOp(q, v["zy"]).result
        else:
            t = arith.AddIOp(arith.MulIOp(q, v["ta"]).result, v["tb"]).result
            t = arith.ShRSIOp(t, b.scalar(then.shift, I32)).result
            q = arith.MinSIOp(arith.MaxSIOp(t, v["tlo"]).result, v["thi"]).result
            return arith.TruncIOp(b.mlir_type(then.out_dtype), q).result
        return arith.TruncIOp(b.mlir_type(rq.out_dtype), q).result

    out_dtype = rq.out_dtype if then is None else then.out_dtype
    return lambda acc: b.elementwise([acc, *p.operands], out_dtype, body)


@dataclass(frozen=True)
class WordForm:
    """y = lo + (((clamp(acc, alo, ahi) * m + c) mod 2^32) >> shift), unsigned,
    per element of the params' shape (acc without its offset k: alo, ahi
    and c include it). `error`: the largest distance, in output steps, from
    the exact value before rounding."""

    alo: np.ndarray
    ahi: np.ndarray
    m: np.ndarray
    c: np.ndarray  # as uint32 values in int64
    shift: int
    error: float


def word_form(fp: FixedPoint, offset: np.ndarray, lo: np.ndarray, hi: np.ndarray, k: np.ndarray,
              acc_bound: int | None) -> WordForm | None:
    """The 32-bit form of clamp(round((a * m + o) / 2^r), lo, hi) for a = acc + k
    (all broadcast to one shape; lo, hi without the zero point), or None.

    With M = m 2^-r < 1/2, q(a) is nondecreasing and steps by at most one:
    a_lo = the largest a with q(a) <= lo and a_hi = the smallest with
    q(a) >= hi bound the W = a_hi - a_lo accumulators that matter, and
    q(a) - lo = floor((a - a_lo) * M + t0) with t0 = (a_lo m + o) 2^-r - lo + 1/2
    in [0, 1), where no a in between is a rounding tie (`tie_free`; else
    None: the floor would round a tie up, not to even). An accumulator
    bound (from the weights) narrows [a_lo, a_hi] further. One shift s for
    all channels, the largest that keeps W m' + c' below 2^32 in every one
    (m' = M 2^s, c' = t0 2^s, rounded): the error is then at most
    (W + 1) 2^-(s+1). The results at a_lo and a_hi are checked to be the
    exact ones, so the form never leaves [lo, hi] and saturates exactly."""
    shape = fp.r.shape
    if np.any(fp.m <= 0) or np.any(fp.r < 32):
        return None
    rows = []
    for m, r, o, l, h, kk in zip(*(np.broadcast_to(v, shape).ravel().tolist() for v in (fp.m, fp.r, offset, lo, hi, k))):
        def q(a, m=m, r=r, o=o):
            p = a * m + o
            return (p + (1 << (r - 1)) - 1 + ((p >> r) & 1)) >> r

        a_lo = ((((2 * l + 1) << (r - 1)) - o) // m)
        while q(a_lo + 1) <= l:
            a_lo += 1
        while q(a_lo) > l:
            a_lo -= 1
        a_hi = -((o - ((2 * h - 1) << (r - 1))) // m)
        while q(a_hi - 1) >= h:
            a_hi -= 1
        while q(a_hi) < h:
            a_hi += 1
        if acc_bound is not None and max(a_lo, -acc_bound) < min(a_hi, acc_bound):
            a_lo, a_hi = max(a_lo, -acc_bound), min(a_hi, acc_bound)  # no accumulator lies beyond
        if not tie_free(FixedPoint(np.array([m]), np.array([r])), np.array([o]), max(-a_lo, a_hi)):
            return None  # an exact half (a multiplier like 0.25) must round to even, as ONNX does
        rows.append((m, r, o, l, h, kk, a_lo, a_hi, min(max(q(a_lo), l), h) - l, min(max(q(a_hi), l), h) - l))

    def fit(row, s):
        """(m', c', error) at shift s, with both ends exact, or None."""
        m, r, o, l, h, kk, a_lo, a_hi, e_lo, e_hi = row
        m2 = ((m << s) + (1 << (r - 1))) >> r
        t0 = ((a_lo * m + o) << s) + (((1 - 2 * l) << (r + s)) >> 1)  # t(a_lo) * 2^(r+s)
        # t(a_lo) = e_lo + 1 only at a tie rounded down to even
        c2 = min((t0 + (1 << (r - 1))) >> r, ((e_lo + 1) << s) - 1)
        for _ in range(4):  # a top end within the error of its threshold: a steeper m' reaches it
            top = (a_hi - a_lo) * m2 + c2
            if top >= 1 << 32 or top >> s >= e_hi:
                break
            m2 += 1
        if top >= 1 << 32 or c2 >> s != e_lo or top >> s != e_hi:
            return None
        # |w(a) - t(a)| <= W |m' - M 2^s| 2^-s + |c' - t(a_lo) 2^s| 2^-s
        num = (a_hi - a_lo) * abs((m2 << r) - (m << s)) + abs((c2 << r) - t0)
        return m2, c2, num / 2.0 ** (r + s)

    # t < 2^32 at a_hi, where t >> s is e_hi: no shift above 32 - bits(e_hi) fits.
    first = min(31, min(32 - row[-1].bit_length() for row in rows))
    for shift in range(first, 8, -1):
        fits = [fit(row, shift) for row in rows]
        if all(f is not None for f in fits):
            break
    else:
        return None
    error = max(f[2] for f in fits)
    if error > WORD_ERROR:
        return None
    out = []
    for (m, r, o, l, h, kk, a_lo, a_hi, *_), (m2, c2, _) in zip(rows, fits):
        # clamp(acc + k) = clamp(acc, a_lo - k, a_hi - k) + k; the constant absorbs -a_lo and k.
        out.append((a_lo - kk, a_hi - kk, m2, (c2 + (kk - a_lo) * m2) % (1 << 32)))
    alo, ahi, m2, c = (np.array(col, dtype=np.int64).reshape(shape) for col in zip(*out))
    i32 = np.iinfo(np.int32)  # a raw accumulator is an i32: a bound beyond that range clamps nothing
    return WordForm(np.clip(alo, i32.min, i32.max), np.clip(ahi, i32.min, i32.max), m2, c, shift, error)


def _as_i32(v: np.ndarray) -> np.ndarray:
    """uint32 values (in int64) as the int32 with the same bits."""
    v = np.asarray(v, np.int64)
    return np.where(v >= 2**31, v - 2**32, v)


def _requant_word(node, rq: Requant, acc_bound: int | None, then: table_fit.TableFit | None = None,
                  acc_offset: np.ndarray | None = None):
    """`requantize` with one i32 multiply per element (`word_form`), where
    its error stays below WORD_ERROR steps and the constants are per
    channel; else None. With `then`, the second stage of `_requant_high_word`
    follows, after a clamp that is a no-op but shows requant_table the
    256 values the first stage can take; only where that stage's slope is
    at most 1, so that the result stays within one step of the exact one."""
    if then is not None and np.any(np.abs(np.asarray(then.a, np.float64)) > 2.0 ** then.shift):
        return None  # a second stage that amplifies (slope > 1) would turn a flipped step into several
    (fp,) = fixed_point(node, [rq.mult], offset=rq.offset)
    shape = fp.r.shape
    k = np.zeros((), np.int64) if acc_offset is None else np.asarray(acc_offset, np.int64)
    if np.broadcast_shapes(k.shape, shape) != shape:
        return None  # an offset per element: the clamp bounds would be too
    offset = offset_fixed(np.broadcast_to(rq.offset, shape), fp.r)
    lo, hi = np.asarray(rq.lo) - rq.zy, np.asarray(rq.hi) - rq.zy
    form = word_form(fp, offset, np.broadcast_to(lo, shape), np.broadcast_to(hi, shape), k, acc_bound)
    if form is None:
        return None
    # The result is base + (t >> s) with t in [0, 2^32) and base = lo (+ zy without a second stage).
    # Where base * 2^s and (hi - lo + 1 + base) * 2^s stay in i32 (int8 results: s <= 24), base * 2^s
    # goes into the constant and the shift is arithmetic: one addition less per element.
    base = np.broadcast_to(lo + (rq.zy if then is None else 0), form.c.shape).astype(np.int64)
    top = base + np.broadcast_to(hi - lo, base.shape) + 1
    folded = bool(np.all(base << form.shift >= -(2**31)) and np.all(top << form.shift <= 2**31))
    p = Params()
    p.add("alo", form.alo, I32)
    p.add("ahi", form.ahi, I32)
    p.add("m", _as_i32(form.m), I32)
    p.add("c", _as_i32((form.c + (base << form.shift)) % 2**32 if folded else form.c), I32)
    if not folded:
        p.add("base", base, I32)
    if then is not None:
        p.add("lo", lo, I32)
        p.add("hi", hi, I32)
        p.add("ta", then.a, I32)
        p.add("tb", np.asarray(then.b, np.int64) + np.asarray(then.a, np.int64) * rq.zy, I32)
        p.add("tlo", then.lo, I32)
        p.add("thi", then.hi, I32)
    shift = b.scalar(form.shift, I32)

    def body(a, *args):
        v = p.values(args)
        a = arith.MinSIOp(arith.MaxSIOp(a, v["alo"]).result, v["ahi"]).result
        t = arith.AddIOp(arith.MulIOp(a, v["m"]).result, v["c"]).result
        if folded:
            q = arith.ShRSIOp(t, shift).result
        else:
            q = arith.AddIOp(arith.ShRUIOp(t, shift).result, v["base"]).result
        if then is None:
            return arith.TruncIOp(b.mlir_type(rq.out_dtype), q).result
        q = arith.MinSIOp(arith.MaxSIOp(q, v["lo"]).result, v["hi"]).result
        t = arith.AddIOp(arith.MulIOp(q, v["ta"]).result, v["tb"]).result
        t = arith.ShRSIOp(t, b.scalar(then.shift, I32)).result
        q = arith.MinSIOp(arith.MaxSIOp(t, v["tlo"]).result, v["thi"]).result
        return arith.TruncIOp(b.mlir_type(then.out_dtype), q).result

    out_dtype = rq.out_dtype if then is None else then.out_dtype
    return lambda acc: b.elementwise([acc, *p.operands], out_dtype, body)


def _wrap32(v: np.ndarray) -> np.ndarray:
    """int64 values reduced to the int32 with the same low 32 bits."""
    return (np.asarray(v, np.int64) + 2**31) % 2**32 - 2**31


def _requant_origin(rq: Requant, acc_bound: int | None, then: table_fit.TableFit,
                    acc_offset: np.ndarray | None = None):
    """`requantize` then `then` where the first stage's line through a
    shifted origin exists (requant_origin): the high word of
    (acc + k + d) * m', shifted by s (none where R = 32 everywhere), is
    q + e; the table reads it with e * A taken out of its B, in wrapping
    i32 arithmetic (the true sum fits). Exact, like the 64-bit form it
    replaces, with no rounding constant. None where there is no such line."""
    (fp,) = fixed_point(None, [rq.mult], offset=rq.offset)
    shape = fp.r.shape
    k = np.zeros((), np.int64) if acc_offset is None else np.asarray(acc_offset, np.int64)
    if np.broadcast_shapes(k.shape, shape) != shape:
        return None
    offset = offset_fixed(np.broadcast_to(rq.offset, shape), fp.r)
    lo, hi = np.asarray(rq.lo) - rq.zy, np.asarray(rq.hi) - rq.zy

    def origin(t: table_fit.TableFit):
        """The form for table t, and t's B for q without the zero point."""
        tb = np.asarray(t.b, np.int64) + np.asarray(t.a, np.int64) * rq.zy
        return requant_origin.origin_form(fp.m, fp.r, offset, lo, hi, t.a, tb, t.shift, t.lo, t.hi, k,
                                          acc_bound), tb

    form, tb = origin(then)
    if form is None:
        return None
    if form.clamp:
        # q's clamp may go where the table, fitted again with fewer fraction
        # bits, takes every q the line reaches without overflowing.
        reach = int(np.max(np.abs(requant_origin.reach(form, acc_bound)))) + abs(rq.zy) + 1
        qmin = qrange(rq.out_dtype)[0]
        cols = [np.broadcast_to(np.asarray(v, np.int64), shape).reshape(-1, 1) for v in (then.a, then.b, then.lo, then.hi)]
        rows = requant_origin.table_values(np.arange(qmin, qmin + 256, dtype=np.int64), cols[0], cols[1], then.shift,
                                           cols[2], cols[3])
        wide = table_fit.fit(rows, qmin, reach)
        if wide is not None:
            lay = lambda v: np.asarray(v).reshape(shape)  # noqa: E731
            then2 = table_fit.TableFit(lay(wide.a), lay(wide.b), wide.shift, lay(wide.lo), lay(wide.hi), then.out_dtype)
            form2, tb2 = origin(then2)
            if form2 is not None and not form2.clamp:
                form, then, tb = form2, then2, tb2
    ta = np.broadcast_to(np.asarray(then.a, np.int64), shape)
    p = Params()
    p.add("d", form.d + np.broadcast_to(k, shape), I32)
    p.add("m", form.m, I32)
    shifted = bool(np.any(form.s))
    if shifted:
        p.add("s", form.s, I32)
    if form.clamp:
        p.add("lo", lo + form.e, I32)
        p.add("hi", hi + form.e, I32)
    p.add("ta", ta, I32)
    p.add("tb", _wrap32(tb - form.e * ta), I32)
    p.add("tlo", then.lo, I32)
    p.add("thi", then.hi, I32)
    i32, i64 = b.mlir_type(I32), b.mlir_type(I64)

    def body(a, *args):
        v = p.values(args)
        a = arith.AddIOp(a, v["d"]).result
        prod = arith.MulIOp(arith.ExtSIOp(i64, a).result, arith.ExtSIOp(i64, v["m"]).result).result
        q = arith.TruncIOp(i32, arith.ShRSIOp(prod, b.scalar(32, I64)).result).result
        if shifted:
            q = arith.ShRSIOp(q, v["s"]).result
        if form.clamp:
            q = arith.MinSIOp(arith.MaxSIOp(q, v["lo"]).result, v["hi"]).result
        t = arith.AddIOp(arith.MulIOp(q, v["ta"]).result, v["tb"]).result
        t = arith.ShRSIOp(t, b.scalar(then.shift, I32)).result
        q = arith.MinSIOp(arith.MaxSIOp(t, v["tlo"]).result, v["thi"]).result
        return arith.TruncIOp(b.mlir_type(then.out_dtype), q).result

    return lambda acc: b.elementwise([acc, *p.operands], then.out_dtype, body)


def requant_sum_high_word(node, rq: Requant, mults: Sequence[float], domains: Sequence[np.ndarray]):
    """The requantization of p = sum_i c_i * M_i (QLinearAdd: two centered
    8-bit inputs and their multipliers `mults`; rq gives the offset, clamp
    and zero point) in the i32 form of `_requant_high_word`, for per-tensor
    multipliers.

    The shared shift r may be below 32 here (multipliers up to 1): each c_i
    is pre-shifted left by k = 32 - r in i32, which |c_i| <= 255 allows, so
    p * 2^k takes the high-word path with s = r + k - 32. The c_i come from
    small `domains` (their possible values), so every p is enumerated at
    compile time and half-up rounding is used when none is a tie.
    Returns (params, body(cs, values) -> narrowed result) or None."""
    fps = fixed_point(node, list(mults), offset=rq.offset)
    r = np.unique(fps[0].r)
    if r.size != 1 or any(np.size(fp.m) != 1 for fp in fps) or np.size(rq.offset) != 1:
        return None
    r = int(r[0])
    k = max(0, 32 - r)
    if max(int(np.abs(d).max()) for d in domains) << k >= 2**31:
        return None
    ms = [int(np.ravel(fp.m)[0]) for fp in fps]
    o = int(np.ravel(offset_fixed(np.asarray(rq.offset), np.array(r)))[0])
    if abs(o) << k >= 1 << 61:  # the pre-shifted offset and rounding constant must stay far from 2^63
        return None
    p_all = _all_sums([np.asarray(d, np.int64) * m for d, m in zip(domains, ms)]) + o
    exact = (p_all + (1 << (r - 1)) - 1 + ((p_all >> r) & 1)) >> r  # round half to even, every input
    narrow = _narrow_sum(rq, ms, o, r, domains, exact)
    if narrow is not None:
        return narrow
    half_up = not np.any(np.mod(p_all, 1 << r) == 1 << (r - 1))
    params = Params()
    for i, m in enumerate(ms):
        params.add(f"m{i}", np.asarray(m), I32)
    shift = r + k - 32
    if half_up:
        params.add("c", np.asarray((o << k) + (1 << (r + k - 1))), I64)
    else:
        params.add("o", np.asarray(o << k), I64)
        params.add("h", np.asarray((1 << (r + k - 1)) - 1), I64)
    params.add("lo", np.asarray(rq.lo) - rq.zy, I32)
    params.add("hi", np.asarray(rq.hi) - rq.zy, I32)
    params.add("zy", np.asarray(rq.zy), I32)
    i64 = b.mlir_type(I64)

    def body(cs: Sequence[ir.Value], v: dict) -> ir.Value:
        """cs: the centered operands as i32."""
        p = None
        for i, c in enumerate(cs):
            if k:
                c = arith.ShLIOp(c, b.scalar(k, I32)).result
            t = arith.MulIOp(arith.ExtSIOp(i64, c).result, arith.ExtSIOp(i64, v[f"m{i}"]).result).result
            p = t if p is None else arith.AddIOp(p, t).result
        q = _round_high_word(p, v, b.scalar(shift, I32))
        q = arith.MinSIOp(arith.MaxSIOp(q, v["lo"]).result, v["hi"]).result
        q = arith.AddIOp(q, v["zy"]).result
        return arith.TruncIOp(b.mlir_type(rq.out_dtype), q).result

    return params, body


def _round_high_word(p: ir.Value, v: dict, s: ir.Value) -> ir.Value:
    """round(p / 2^(32 + s)) of an i64 p as an i32, from the high word: half
    up with v["c"] (the offset plus 2^(r-1)), else half to even with v["h"]
    (2^(r-1) - 1), the parity bit and an optional offset v["o"]."""
    i32, i64 = b.mlir_type(I32), b.mlir_type(I64)
    c32 = b.scalar(32, I64)

    def high_word(x: ir.Value) -> ir.Value:
        """floor(x / 2^(32 + s)), as an i32."""
        return arith.ShRSIOp(arith.TruncIOp(i32, arith.ShRSIOp(x, c32).result).result, s).result

    if "c" in v:
        return high_word(arith.AddIOp(p, v["c"]).result)
    if "o" in v:
        p = arith.AddIOp(p, v["o"]).result
    bit = arith.ExtUIOp(i64, arith.AndIOp(high_word(p), b.scalar(1, I32)).result).result
    return high_word(arith.AddIOp(arith.AddIOp(p, v["h"]).result, bit).result)


def _narrow_sum(rq: Requant, ms: Sequence[int], o: int, r: int, domains, exact: np.ndarray):
    """`requant_sum_high_word` in i32 alone: y = (sum_i c_i * A_i + C) >> S
    with A_i = m_i * 2^(S-r) and C = o * 2^(S-r) + 2^(S-1) rounded, for the
    most fraction bits S that keep every sum in i32, where that gives every
    input the exact result (all of them are enumerated; a short mantissa
    only errs within ~|sum c_i| * 2^-S of a rounding tie). One i32 multiply
    per operand instead of a 64-bit product. None where no S does."""
    lo, hi = np.asarray(rq.lo) - rq.zy, np.asarray(rq.hi) - rq.zy
    want = np.clip(exact, lo, hi)
    span = sum(int(np.abs(d).max()) for d in domains)
    for shift in range(30, 11, -1):
        a = [int(round(m * 2.0 ** (shift - r))) for m in ms]
        c = int(round(o * 2.0 ** (shift - r))) + (1 << (shift - 1))
        if span * max(abs(x) for x in a) + abs(c) >= 2**31:
            continue
        got = (_all_sums([np.asarray(d, np.int64) * x for d, x in zip(domains, a)]) + c) >> shift
        if np.array_equal(np.clip(got, lo, hi), want):
            break
    else:
        return None
    params = Params()
    for i, x in enumerate(a):
        params.add(f"a{i}", np.asarray(x), I32)
    params.add("c", np.asarray(c), I32)
    params.add("lo", lo, I32)
    params.add("hi", hi, I32)
    params.add("zy", np.asarray(rq.zy), I32)
    sh = b.scalar(shift, I32)

    def body(cs: Sequence[ir.Value], v: dict) -> ir.Value:
        p = v["c"]
        for i, x in enumerate(cs):
            p = arith.AddIOp(p, arith.MulIOp(x, v[f"a{i}"]).result).result
        q = arith.ShRSIOp(p, sh).result
        q = arith.MinSIOp(arith.MaxSIOp(q, v["lo"]).result, v["hi"]).result
        return arith.TruncIOp(b.mlir_type(rq.out_dtype), arith.AddIOp(q, v["zy"]).result).result

    return params, body


def _all_sums(terms: Sequence[np.ndarray]) -> np.ndarray:
    """Every sum of one element of each term (an outer sum, flattened)."""
    total = np.zeros(1, np.int64)
    for t in terms:
        total = np.add.outer(total, np.ravel(t)).ravel()
    return total


def tie_free(fp: FixedPoint, offset: np.ndarray, acc_bound: int) -> bool:
    """True if acc * m + o is never exactly 2^(r-1) mod 2^r (a rounding tie)
    for any |acc| <= acc_bound, in every channel.

    With m = u * 2^t (u odd), a tie needs 2^t to divide d = 2^(r-1) - o
    (mod 2^r), and then acc = (d / 2^t) * u^-1 modulo 2^(r-t): one residue
    class, whose members nearest zero are checked against the bound. With
    r >= 32 the class has one member in the whole i32 range, so a tie is
    reachable only by chance (about bound / 2^31)."""
    ms, rs, os_ = np.broadcast_arrays(fp.m, fp.r, offset)
    for m, r, o in zip(ms.ravel().tolist(), rs.ravel().tolist(), os_.ravel().tolist()):
        d = ((1 << (r - 1)) - o) % (1 << r)
        t = (abs(m) & -abs(m)).bit_length() - 1 if m else r
        if t >= r:  # acc * m = 0 mod 2^r: a tie for every acc or none
            if d == 0:
                return False
            continue
        if d % (1 << t):
            continue
        mod = 1 << (r - t)
        a0 = (d >> t) * pow((m >> t) % mod, -1, mod) % mod  # in [0, mod)
        if a0 <= acc_bound or mod - a0 <= acc_bound:
            return False
    return True


# ---------------------------------------------------------------- IR, tensors


def widen(x: b.T, dtype) -> b.T:
    """x converted elementwise to a wider integer type (exact)."""
    dtype = np.dtype(dtype)
    if x.dtype == dtype:
        return x
    bits = dtype.itemsize * 8
    return b.elementwise([x], dtype, lambda v: ext(v, x.dtype, bits))


def int_sum(x: b.T, axes: Sequence[int], dtype=I32) -> b.T:
    """Sum over `axes` (kept as size-1 dims), accumulated in `dtype`."""
    axes = sorted(a % x.rank for a in axes)
    kept = [d for d in range(x.rank) if d not in axes]
    init = b.filled([x.shape[d] for d in kept], dtype, 0)
    iters = [b.REDUCTION if d in axes else b.PARALLEL for d in range(x.rank)]
    bits = np.dtype(dtype).itemsize * 8
    (res,) = b.generic([x.value], [init], [b.identity_map(x.rank), b.dims_map(x.rank, kept)], iters,
                       lambda e, acc: arith.AddIOp(acc, ext(e, x.dtype, bits)).result)
    return b.reshape(b.T(res, np.dtype(dtype)), [1 if d in axes else x.shape[d] for d in range(x.rank)])


def pad_spatial_value(x: b.T, low: Sequence[int], high: Sequence[int], value: ir.Value) -> b.T:
    """x [N, C, spatial...] padded along the spatial dims with a scalar value
    (a zero point, or the type's minimum for max pooling); x when no pad."""
    if not any(low) and not any(high):
        return x
    lo = [0, 0, *low]
    hi = [0, 0, *high]
    shape = [d + p + q for d, p, q in zip(x.shape, lo, hi)]
    op = tensor.PadOp(b.tensor_type(shape, x.dtype), x.value, [], [], lo, hi)
    block = op.regions[0].blocks.append(*([ir.IndexType.get()] * x.rank))
    with ir.InsertionPoint(block):
        tensor.YieldOp(value)
    return b.T(op.result, x.dtype)


def scalar_of(x: b.T) -> ir.Value:
    """The single element of a one-element tensor (a runtime zero point)."""
    assert int(np.prod(x.shape)) == 1
    zero = arith.ConstantOp(ir.IndexType.get(), 0).result
    return tensor.ExtractOp(x.value, [zero] * x.rank).result


def lookup(x: b.T, table: np.ndarray, channel_axis: int | None = None) -> b.T:
    """out = table[x] (table: [256]) or table[c, x] (table: [C, 256], c the
    index along `channel_axis`), for 8-bit x; the table is a constant, so any
    function of one 8-bit value is exact and costs one load."""
    qmin, _ = qrange(x.dtype)
    out_dtype = table.dtype
    form = table_fit.fit(table, qmin)
    if form is not None:
        return _affine_table(x, form, channel_axis)
    tab = b.constant(np.ascontiguousarray(table))
    index = ir.IndexType.get()

    def body(v, _out):
        i = arith.IndexCastOp(index, ext(v, x.dtype, 32)).result
        if qmin:  # int8: rows start at -128
            i = arith.AddIOp(i, arith.ConstantOp(index, -qmin).result).result
        idx = [i] if channel_axis is None else [linalg.IndexOp(channel_axis).result, i]
        return tensor.ExtractOp(tab.value, idx).result

    rank = x.rank
    (res,) = b.generic([x.value], [b.empty(x.shape, out_dtype)], [b.identity_map(rank)] * 2,
                       [b.PARALLEL] * rank, body)
    return b.T(res, np.dtype(out_dtype))


def _affine_table(x: b.T, form: table_fit.TableFit, channel_axis: int | None) -> b.T:
    """The table as clamp((A * q + B) >> S, lo, hi): exact (table_fit.fit
    checked every entry) and vectorizable, unlike a gather."""
    # Per-channel values broadcast along the channel axis: [C, 1, ..., 1].
    shape = (-1,) + (1,) * (x.rank - 1 - channel_axis) if channel_axis is not None else None
    lay = (lambda v: np.asarray(v).reshape(shape)) if shape else (lambda v: np.asarray(v)[0])  # noqa: E731
    return apply_table_fit(x, table_fit.TableFit(lay(form.a), lay(form.b), form.shift, lay(form.lo), lay(form.hi),
                                                 form.out_dtype))


def apply_table_fit(x: b.T, form: table_fit.TableFit) -> b.T:
    """clamp((A * x + B) >> S, lo, hi) elementwise, A, B, lo, hi laid out to broadcast against x."""
    out_dtype = form.out_dtype
    p = Params()
    for name in ("a", "b", "lo", "hi"):
        p.add(name, getattr(form, name), I32)
    shift = b.scalar(form.shift, I32)

    def body(q, *args):
        v = p.values(args)
        t = arith.AddIOp(arith.MulIOp(ext(q, x.dtype, 32), v["a"]).result, v["b"]).result
        t = arith.ShRSIOp(t, shift).result
        t = arith.MinSIOp(arith.MaxSIOp(t, v["lo"]).result, v["hi"]).result
        return arith.TruncIOp(b.mlir_type(out_dtype), t).result

    return b.elementwise([x, *p.operands], out_dtype, body)


def quantize_table(values: np.ndarray, scale: float, zero_point: int, dtype) -> np.ndarray:
    """QuantizeLinear of float32 values: saturate(round_half_even(v / s) + z)."""
    qmin, qmax = qrange(dtype)
    q = np.rint(np.asarray(values, np.float32) / np.float32(scale)).astype(np.float64) + zero_point
    return np.clip(np.nan_to_num(q, nan=0.0), qmin, qmax).astype(dtype)


def dequantize_values(dtype, scale: float, zero_point: int) -> np.ndarray:
    """The 256 real values of an 8-bit type, in float32 as DequantizeLinear computes them."""
    qmin, qmax = qrange(dtype)
    q = np.arange(qmin, qmax + 1, dtype=np.int32)
    return ((q - np.int32(zero_point)).astype(np.float32) * np.float32(scale)).astype(np.float32)

