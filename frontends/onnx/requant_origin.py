"""A two-stage requantization whose first stage needs no rounding constant.

A layer quantized with its BatchNormalization left unfolded requantizes
twice (qmath.requantize with `then`): the accumulator a (with its constant
terms) to q = clamp(round_half_even((a * m + o) / 2^r), lo, hi), the exact
fixed-point form, then q through the affine table
T(q) = clamp((A * q + B) >> S, tlo, thi) (table_fit). Where T's slope
exceeds one step per step, the 32-bit word form may not stand in for q: a
step it flips would move the output by several. So q keeps its 64-bit
product; on AVX2 that is two vpmuldq, the i64 rounding constant added to
each half (two vpaddq), the high words merged, then a shift.

The rounding constant can go. For integers D, m' < 2^31, R >= 32 and E,

    q(a) + E = floor((a + D) * m' / 2^R)

holds for every accumulator a that matters when the line (a + D) m' / 2^R
threads the staircase q: above each step's first accumulator, below the
accumulator before it. The offset o and the half are then carried by where
the origin D puts the line, not by an added constant; D, with the
accumulator's constant terms (zero-point sums, bias), is one i32 addition
in place of the two i64 ones, and E goes into T's B (T reads q + E and subtracts E * A, in wrapping i32 arithmetic whose
true value fits). R = 32 needs no shift at all: the high word is q + E.

Why a line exists: on a window of W accumulators the staircase allows
slopes within about 1/W^2 steps per accumulator of M = m 2^-r, which a
mantissa m' with 2^R >= W^2 can hit (R = 32 holds for the short windows of
a steep T). For such a slope the line threads the steps iff d m' falls in
one window of width about 2^R / W modulo 2^R (the wraps are e); d ranges
over nearly 2^32 values, so one exists, and Euclid's descent on m' and 2^R
finds the first (`_first_multiple`).

Only the accumulators where T is not yet saturated matter (and those the
weights can reach, |a| <= bound): outside that window q and q + E are both
monotone, so the line's values fall on T's saturated ends. Each candidate
is checked with Python integers at every step of the window: that check is
the proof that the first stage is exact there (a line above a step's first
accumulator and below the one before it is above and below all of them).

Where the line's values stay within i32 once T multiplies them and T's own
clamp already saturates them the way q's clamp would, q's clamp goes too
(`clamp` False).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

I32_MAX = 2**31 - 1


@dataclass(frozen=True)
class OriginForm:
    """q(a) + e == floor((a + d) * m / 2^(32 + s)) on every channel's window
    (arrays of the channels' shape, int64)."""

    d: np.ndarray
    m: np.ndarray
    s: np.ndarray
    e: np.ndarray
    clamp: bool  # False where q's clamp to [lo, hi] may be left out


def _q(a: int, m: int, r: int, o: int) -> int:
    """round_half_even((a * m + o) / 2^r), unclamped (qmath's exact form)."""
    p = a * m + o
    return (p + (1 << (r - 1)) - 1 + ((p >> r) & 1)) >> r


def _first(n: int, m: int, r: int, o: int) -> int:
    """The smallest a with q(a) >= n (m > 0: q is nondecreasing)."""
    num = ((2 * n - 1) << (r - 1)) - o
    a = -((-num) // m)  # where a * m + o first reaches n - 1/2: within one of the answer
    while _q(a - 1, m, r, o) >= n:
        a -= 1
    while _q(a, m, r, o) < n:
        a += 1
    return a


def table_values(q: np.ndarray, ta, tb, shift: int, tlo, thi) -> np.ndarray:
    """T(q) = clamp((A q + B) >> S, tlo, thi), broadcasting."""
    return np.clip((ta * q + tb) >> shift, tlo, thi)


@dataclass
class _Channel:
    m: int
    r: int
    o: int
    lower: list  # (a, level): the line at a must reach level
    upper: list  # (a, level): the line at a must stay below level
    d_lo: int  # a + d stays in i32 for |a| <= bound, and so does d + k
    d_hi: int


def _channel(m, r, o, lo, hi, ta, tb, shift, tlo, thi, k, bound) -> _Channel | int:
    """The steps the line must thread, or a q that stands for every
    reachable accumulator (T takes one value on all of them)."""
    qs = np.arange(lo, hi + 1, dtype=np.int64)
    t = table_values(qs, ta, tb, shift, tlo, thi)
    if t[0] == t[-1]:
        return lo
    qa = int(qs[np.nonzero(t == t[0])[0][-1]])  # the last q T maps to its low end
    qb = int(qs[np.nonzero(t == t[-1])[0][0]])  # the first q T maps to its high end
    first_above, first_top = _first(qa + 1, m, r, o), _first(qb, m, r, o)
    if first_above > bound:
        return qa  # no reachable a gets above the low end
    if first_top < -bound:
        return qb
    a_lo, a_hi = max(first_above - 1, -bound), min(first_top, bound)
    n_lo, n_hi = _q(a_lo, m, r, o), _q(a_hi, m, r, o)
    steps = [(_first(n, m, r, o), n) for n in range(n_lo + 1, n_hi + 1)]
    lower = [(a_lo, n_lo)] + steps
    upper = [(a - 1, n) for a, n in steps] + [(a_hi, n_hi + 1)]
    return _Channel(m, r, o, lower, upper, max(-I32_MAX - 1 + bound, -I32_MAX - 1 - k), min(I32_MAX - bound, I32_MAX - k))


def _fits(ch: _Channel, d: int, mm: int, rr: int, e: int) -> bool:
    """The proof, in Python integers: the line threads every step."""
    return all(((a + d) * mm) >> rr >= n + e for a, n in ch.lower) and \
        all(((a + d) * mm) >> rr < n + e for a, n in ch.upper)


def _first_multiple(a: int, mod: int, lo: int, hi: int) -> int | None:
    """The smallest x >= 0 with lo <= (a * x) mod `mod` <= hi (0 <= lo <= hi < mod), or None.
    Euclid's descent: where no multiple of a lies in [lo, hi] itself, x's
    partner y in a x - mod y must put mod y (mod a) in a smaller window."""
    a %= mod
    if lo == 0:
        return 0
    if a == 0:
        return None
    x = -(-lo // a)
    if a * x <= hi:
        return x
    y = _first_multiple(mod % a, a, (-hi) % a, (-lo) % a)
    return None if y is None else -(-(lo + mod * y) // a)


def _origin(t_lo: int, width: int, mm: int, rr: int, d_lo: int, d_hi: int) -> int | None:
    """The smallest d in [d_lo, d_hi] with d * mm in [t_lo, t_lo + width) modulo 2^rr."""
    mod = 1 << rr
    start = (t_lo - d_lo * mm) % mod  # x = d - d_lo must put x * mm in [start, start + width) mod 2^rr
    end = start + width - 1
    hits = [_first_multiple(mm, mod, start, min(end, mod - 1))]
    if end >= mod:
        hits.append(_first_multiple(mm, mod, 0, end - mod))
    hits = [x for x in hits if x is not None]
    if not hits or d_lo + min(hits) > d_hi:
        return None
    return d_lo + min(hits)


def _search(ch: _Channel, rr: int) -> tuple[int, int, int] | None:
    """(d, m', e) with 0 < m' < 2^31 for shift rr, or None. For a slope m'
    the line threads the steps iff d m' lies in [t_lo, t_hi] modulo 2^rr
    (e counts the wraps), so each slope the steps allow is tried, the
    nearest to M first, with the first origin that puts d m' there."""
    centre = (ch.m << rr) >> ch.r
    if centre >= 2**31 - 256:
        return None

    def window(mm: int) -> tuple[int, int]:
        t_lo = max((n << rr) - a * mm for a, n in ch.lower)
        t_hi = min((n << rr) - a * mm for a, n in ch.upper) - 1
        return t_lo, t_hi - t_lo + 1

    for sign in (1, -1):
        for step in range(0 if sign > 0 else 1, 2**31):
            mm = centre + sign * step
            t_lo, width = window(mm)
            if width <= 0 or mm <= 0 or mm >= 2**31:
                if step > 2:
                    break
                continue
            d = _origin(t_lo, width, mm, rr, ch.d_lo, ch.d_hi)
            if d is None:
                continue
            e = (d * mm - t_lo) >> rr
            if _fits(ch, d, mm, rr, e):
                return d, mm, e
    return None


def origin_form(m, r, o, lo, hi, ta, tb, shift: int, tlo, thi, k, bound: int | None) -> OriginForm | None:
    """The form for the stage-1 constants m, r, o, lo, hi (zero point
    removed), T's A, B (for q without the zero point), S, tlo, thi and the
    accumulator constant k, all broadcast to one shape; `bound`: max |a|.
    None where some channel has no line (or nothing bounds a)."""
    if bound is None or bound >= 2**30:
        return None
    arrays = np.broadcast_arrays(*(np.asarray(v, np.int64) for v in (m, r, o, lo, hi, ta, tb, tlo, thi, k)))
    shape = arrays[0].shape
    if np.any(arrays[0] <= 0) or np.any(arrays[1] < 32):
        return None
    rows = list(zip(*(x.ravel().tolist() for x in arrays)))
    chans = [_channel(mm, rr, oo, l, h, a, b, shift, tl, th, kk, bound) for mm, rr, oo, l, h, a, b, tl, th, kk in rows]
    found: list[tuple[int, int, int, int] | None] = [None] * len(rows)
    for rr in (32, None):  # no shift at all, else each channel's finest
        for i, ch in enumerate(chans):
            if found[i] is not None:
                continue
            if isinstance(ch, int):
                found[i] = (0, 0, -ch, 0)  # a flat line: q = 0 - e = ch
                continue
            r_i = rr if rr is not None else int(np.floor(np.log2(2.0**30 * 2.0**ch.r / ch.m)))
            got = _search(ch, r_i)
            if got is not None:
                found[i] = (*got, r_i - 32)
        if all(f is not None for f in found):
            break
        if rr == 32:
            found = [None] * len(rows)  # a shift for some: give every channel its finest
    if any(f is None for f in found):
        return None
    d, mm, e, s = (np.array(col, np.int64).reshape(shape) for col in zip(*found))
    clamp = not all(_unclamped_ok(row, f, shift, bound) for row, f in zip(rows, found))
    return OriginForm(d, mm, s, e, clamp)


def _unclamped_ok(row, found, shift: int, bound: int) -> bool:
    """Whether this channel may skip q's clamp: over every reachable a the
    line's q (its ends suffice: all is monotone) keeps A q + B in i32, and T
    of a q beyond [lo, hi] is T at that end, as it would be after the clamp."""
    _, _, _, lo, hi, ta, tb, tlo, thi, _ = row
    d, mm, e, s = found
    ends = [(((a + d) * mm) >> (32 + s)) - e for a in (-bound, bound)]
    for q in ends:
        if abs(ta * q + tb) >= 2**31:
            return False
    t = table_values(np.array(ends + [lo, hi], np.int64), ta, tb, shift, tlo, thi)
    return (ends[0] >= lo or t[0] == t[2]) and (ends[1] <= hi or t[1] == t[3])


def reach(form: OriginForm, bound: int) -> np.ndarray:
    """The q (line value less e) at a = -bound and a = bound, per channel: [2, ...]."""
    return np.stack([((a + form.d) * form.m >> (32 + form.s)) - form.e for a in (-bound, bound)])
