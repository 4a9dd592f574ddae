"""Exact arithmetic in place of a 256-entry lookup table, where one exists.

A fused DequantizeLinear -> elementwise chain -> QuantizeLinear group
(qdq_fuse.py) becomes a table of its 256 outputs, exact by construction.
Indexing it costs a gather per element, which no CPU vectorizes well (AVX2
gathers 32-bit lanes only; the table is bytes). But the common chains
(BatchNormalization, Mul/Add by constants, Relu, Clip: a per-channel affine
map with clamps) give tables that are a rounded affine function of the
input, clamped:

    t[q] = clamp(floor((A * q + B) / 2^S), lo, hi)     for every 8-bit q,

with integers A, B and a shift S: one i32 multiply-add, a shift and two
clamps, all of which vectorize. `fit` searches for such A, B (per row of a
[C, 256] table, one S for all rows) and checks the formula against every
entry, so the arithmetic is the table, bit for bit; a table it cannot match
(a sigmoid, a flat run between two slopes) stays a table.

The search: with lo, hi the row's extremes, entry q constrains A*q + B to

    >= t[q] * 2^S              unless t[q] == lo (the clamp can lower it)
    <= (t[q] + 1) * 2^S - 1    unless t[q] == hi (the clamp can raise it)

For a slope A those are an interval of B (max of lower bounds minus A*q,
min of upper bounds minus A*q), which is not empty iff every lower bound
lies under every upper bound: a pair (i, j) bounds A by
(upper_j - lower_i) / (q_j - q_i), from above or below by the sign of
q_j - q_i. The middle of the slopes all pairs allow, then the middle of its
B interval, keep the farthest from every edge; the least-squares slope of
the unclamped entries sets the shift (and the slope of a one-sided step).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MAX_SHIFT = 20
MIN_SHIFT = 8  # fewer fraction bits than that leave no room for the rounding of a rounded affine map
HEADROOM = 2.0**30  # |A*q + B| stays below 2^30: an i32 with room to spare
NONE_BELOW, NONE_ABOVE = -(2**62), 2**62  # an entry at the row's clamp bounds one side only


@dataclass(frozen=True)
class TableFit:
    """t[c, q - qmin] == clamp((A[c] * q + B[c]) >> S, lo[c], hi[c])."""

    a: np.ndarray  # int32 [C]
    b: np.ndarray  # int32 [C]
    shift: int
    lo: np.ndarray  # int32 [C]
    hi: np.ndarray  # int32 [C]
    out_dtype: np.dtype  # the table's entries


def fit(table: np.ndarray, qmin: int, reach: int = 0) -> TableFit | None:
    """The arithmetic form of `table` ([256] or [C, 256], entries for inputs
    qmin..qmin+255), or None where there is none with an i32 product.
    `reach`: inputs up to |q| <= reach, beyond the table, must keep A*q + B
    in range too (an input left unclamped: fewer fraction bits)."""
    rows = np.atleast_2d(np.asarray(table).astype(np.int64))
    q = np.arange(qmin, qmin + rows.shape[1], dtype=np.int64)
    slopes = [_slope(row, q) for row in rows]
    shift = _shift(rows, max(int(np.abs(q).max()), reach), slopes)
    if shift is None:
        return None
    found = [_fit_row(row, q, slope, shift, reach) for row, slope in zip(rows, slopes)]
    if any(f is None for f in found):
        return None
    a, b = (np.array(x, np.int32) for x in zip(*found))
    return TableFit(a, b, shift, rows.min(axis=1).astype(np.int32), rows.max(axis=1).astype(np.int32),
                    np.asarray(table).dtype)


def _slope(row: np.ndarray, q: np.ndarray) -> float:
    """Least-squares slope of the entries strictly between the row's extremes
    (the clamped ones say nothing about it); 0 for a constant row."""
    inner = (row > row.min()) & (row < row.max())
    if inner.sum() >= 2:
        return float(np.polyfit(q[inner], row[inner], 1)[0])
    if row.max() == row.min():
        return 0.0
    # A step: from its last low entry to its first high one.
    return 1.0 / max(1, int(np.argmax(row == row.max()) - np.argmax(row == row.min())))


def _shift(rows: np.ndarray, q_abs: int, slopes: list[float]) -> int | None:
    """The most fraction bits that keep |A*q + B| under HEADROOM in every
    row, for |q| <= q_abs."""
    span = max(q_abs * (abs(s) * 1.01 + 2.0**-MIN_SHIFT) + np.abs(r).max() + 2
               for r, s in zip(rows, slopes))
    shift = min(MAX_SHIFT, int(np.floor(np.log2(HEADROOM / span))))
    return shift if shift >= MIN_SHIFT else None


def _fit_row(row: np.ndarray, q: np.ndarray, slope: float, shift: int, reach: int = 0) -> tuple[int, int] | None:
    one = 1 << shift
    lo, hi = row.min(), row.max()
    if lo == hi:
        return 0, int(lo) * one
    lower = np.where(row > lo, row * one, NONE_BELOW)  # A*q + B >= lower
    upper = np.where(row < hi, (row + 1) * one - 1, NONE_ABOVE)  # A*q + B <= upper
    # A slope works iff every lower bound lies under every upper bound:
    # lower[i] - A*q[i] <= upper[j] - A*q[j], i.e. A * (q[j] - q[i]) <= upper[j] - lower[i].
    i, j = np.nonzero((lower[:, None] > NONE_BELOW) & (upper[None, :] < NONE_ABOVE))
    gap, dq = upper[j] - lower[i], q[j] - q[i]
    if np.any((dq == 0) & (gap < 0)):
        return None
    up, down = dq > 0, dq < 0
    a_max = int(np.min(np.floor_divide(gap[up], dq[up]))) if up.any() else None
    a_min = int(np.max(-np.floor_divide(gap[down], -dq[down]))) if down.any() else None
    if a_min is not None and a_max is not None:
        if a_min > a_max:
            return None
        a = (a_min + a_max) // 2
    else:  # bounded on one side only (a step): the estimate, moved inside
        low = a_min if a_min is not None else -HEADROOM
        high = a_max if a_max is not None else HEADROOM
        a = int(np.clip(round(slope * one), low, high))
    b_min, b_max = int(np.max(lower - a * q)), int(np.min(upper - a * q))
    if b_min > b_max:
        return None
    b = (b_min + b_max) // 2  # the middle: the furthest from either edge
    got = np.clip((a * q + b) >> shift, lo, hi)
    if not np.array_equal(got, row) or max(int(np.abs(a * q + b).max()), abs(a) * reach + abs(b)) >= HEADROOM:
        return None
    return a, b
