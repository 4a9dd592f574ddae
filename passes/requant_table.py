"""A requantization's second stage as a 256-byte table per row.

A QDQ model quantizes a convolution's output, dequantizes it into
BatchNormalization and Clip and quantizes again: the requantization computes
the first 8-bit value (clamped to 256 values), then maps it through a
per-channel multiply, offset, shift and clamp to the output byte. That map
from 256 inputs depends on nothing but the row's constants, so here it is
evaluated at compile time (`Program` steps replayed in numpy) into one
table per row, and the loop looks each 64 bytes up in it (two vpermi2b and a
blend, `byte_pack.emit_table_lookup`) instead of running five i32 ops per
16 lanes. The bits are the same: every value the stage can see is in the
table.

`plan` finds the split: a clamp of an i32 value by two constants at most
256 apart (maxsi then minsi, or minsi then maxsi) such that the rest of the
program reads only the clamped value, constants, and per-row scalar inputs
that are constant globals with one shape and indexing. The loop then
computes the value before the clamp, applies one bound (the lower where the
offset below is not positive, else the upper: the addition cannot wrap),
adds `offset` so the clamped range starts at -128, and narrows with signed
saturation (the other bound); entry i of a row's table is the rest of the
program at clamp(i - offset, lo, hi).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from qc.mlir import ir

from .base import constant_array
from .vector_body import Program

_PREDICATES = {0: "eq", 1: "ne", 2: "slt", 3: "sle", 4: "sgt", 5: "sge", 6: "ult", 7: "ule", 8: "ugt", 9: "uge"}


@dataclass
class Table:
    value: tuple  # Program operand: the i32 value before the clamp
    lo: int
    hi: int
    offset: int  # the clamped value plus offset lies in [-128, 127]
    inputs: list[int]  # the per-row scalar inputs the table replaces (of one shape and indexing)
    data: np.ndarray  # uint8 [*scalar shape, 256]: entry u is the result for the byte u (read as i8)

    @property
    def guard(self) -> tuple[str, int]:
        """The bound applied before the offset: the addition cannot wrap."""
        return ("arith.maxsi", self.lo) if self.offset <= 0 else ("arith.minsi", self.hi)


def plan(program: Program, kinds: list[str], values: dict[int, np.ndarray]) -> Table | None:
    """The table split of a requantization Program (`kinds`: "v" vector or
    "s" scalar per input; `values`: the data of the constant scalar inputs,
    as arrays of their memref shapes), or None."""
    if program.out_type != "i8" or program.result[0] != "step":
        return None
    uses: dict[int, int] = {}
    for s in program.steps:
        for kind, x in s.operands:
            if kind == "step":
                uses[x] = uses.get(x, 0) + 1
    for t in range(len(program.steps)):
        pair = _clamp(program, t, uses)
        if pair is None:
            continue
        value, lo, hi = pair
        if hi - lo > 255 or lo > hi:
            continue
        offset = -128 - lo
        q = np.arange(256, dtype=np.int64)
        q = np.where(q > 127, q - 256, q)  # entry u holds byte u read as i8
        clamped = np.clip(q - offset, lo, hi)
        read: list[int] = []
        out = _evaluate(program, {t: clamped}, kinds, values, read)
        if out is None or not read:
            continue
        shapes = {values[i].shape for i in read}
        if len(shapes) != 1:
            continue
        (shape,) = shapes
        data = (np.broadcast_to(out, (*shape, 256)).astype(np.int64) & 0xFF).astype(np.uint8)
        return Table(value, lo, hi, offset, sorted(read), np.ascontiguousarray(data))
    return None


def _clamp(program: Program, t: int, uses: dict[int, int]):
    """(the value clamped, lo, hi) if step t is the second op of an i32
    clamp by constants whose first op has no other use."""
    s = program.steps[t]
    if s.name not in ("arith.maxsi", "arith.minsi") or s.type != "i32":
        return None
    inner, c2 = _const_operand(s)
    if inner is None or inner[0] != "step" or uses.get(inner[1]) != 1:
        return None
    first = program.steps[inner[1]]
    if first.name not in ("arith.maxsi", "arith.minsi") or first.name == s.name:
        return None
    value, c1 = _const_operand(first)
    if value is None:
        return None
    lo, hi = (c1, c2) if first.name == "arith.maxsi" else (c2, c1)
    return value, lo, hi


def _const_operand(s) -> tuple:
    """(the other operand, the constant) of a binary step with one integer constant."""
    a, b = s.operands
    if b[0] == "const" and isinstance(b[1], ir.IntegerAttr):
        return a, ir.IntegerAttr(b[1]).value
    if a[0] == "const" and isinstance(a[1], ir.IntegerAttr):
        return b, ir.IntegerAttr(a[1]).value
    return None, None


def _wrap(v: np.ndarray, ty: str) -> np.ndarray:
    bits = int(ty[1:])
    if bits == 1:
        return v & 1
    half = 1 << (bits - 1)
    return ((v + half) % (1 << bits)) - half


def _unsigned(v: np.ndarray, ty: str) -> np.ndarray:
    return v % (1 << int(ty[1:]))


def _evaluate(program: Program, given: dict[int, np.ndarray], kinds, values, read: list[int]):
    """The program's result (signed, as Python ints in an object array) with
    the steps in `given` replaced by those values (broadcast against the
    scalar inputs, which gain a trailing axis), or None if it reads a vector
    input, a non-constant one, or has a step this cannot replay."""
    memo: dict[int, np.ndarray] = {}

    def ref(o):
        kind, x = o
        if kind == "const":
            if not isinstance(x, ir.IntegerAttr):
                return None
            return np.array(ir.IntegerAttr(x).value, dtype=object)
        if kind == "arg":
            if kinds[x] != "s" or x not in values or not program.args[x].startswith("i"):
                return None
            if x not in read:
                read.append(x)
            return values[x].astype(object)[..., None]
        if x in given:
            return np.asarray(given[x], dtype=object)
        if x not in memo:
            memo[x] = step(program.steps[x])
        return memo[x]

    def step(s):
        if not s.type.startswith("i"):
            return None
        ops = [ref(o) for o in s.operands]
        if any(v is None for v in ops):
            return None
        tys = [program._type_of(o) for o in s.operands]
        name = s.name.removeprefix("arith.")
        if name in ("addi", "subi", "muli"):
            a, b = ops
            r = a + b if name == "addi" else a - b if name == "subi" else a * b
        elif name in ("shli", "shrsi", "shrui"):
            a, b = ops
            bits = int(s.type[1:])
            if np.any((b < 0) | (b >= bits)):
                return None  # poison in the IR: not replayed
            r = a * (1 << b) if name == "shli" else (a >> b if name == "shrsi" else _unsigned(a, s.type) >> b)
        elif name in ("maxsi", "minsi"):
            r = np.maximum(*ops) if name == "maxsi" else np.minimum(*ops)
        elif name in ("maxui", "minui"):
            a, b = (_unsigned(v, s.type) for v in ops)
            r = np.maximum(a, b) if name == "maxui" else np.minimum(a, b)
        elif name in ("andi", "ori", "xori"):
            a, b = (_unsigned(v, s.type) for v in ops)
            r = a & b if name == "andi" else a | b if name == "ori" else a ^ b
        elif name == "extsi" or name == "trunci":
            r = ops[0]
        elif name == "extui":
            r = _unsigned(ops[0], tys[0])
        elif name == "select":
            r = np.where(ops[0].astype(bool), ops[1], ops[2])
        elif name == "cmpi":
            m = re.search(r"predicate = (\d+)", s.props)
            pred = _PREDICATES.get(int(m.group(1))) if m else None
            if pred is None:
                return None
            a, b = ops if pred[0] in "ens" else (_unsigned(v, tys[0]) for v in ops)
            r = {"eq": a == b, "ne": a != b, "lt": a < b, "le": a <= b, "gt": a > b, "ge": a >= b}[pred.lstrip("su")]
            r = np.asarray(r, dtype=object) * 1
        else:
            return None
        return _wrap(np.asarray(r, dtype=object), s.type)

    return ref(program.result)


def table_global(module: ir.Module, symbols: ir.SymbolTable, name: str, data: np.ndarray,
                 before: ir.Operation) -> ir.Value:
    """A get_global (before `before`) of a new constant i8 global holding `data`."""
    return constant_array(module, symbols, name, data.view(np.int8), ir.IntegerType.get_signless(8), before)
