"""The dot-product form of qc-lower-qgemm's integer kernels (module doc
there): byte-quad packing, the plan of which operand is flipped by xor 0x80
and which carries the exact correction, and the helper functions the
kernels call for the instruction (vpdpbusd, sdot / udot), which
qc-lower-to-llvm defines (`dot_definition`): as the target's intrinsic, or
as portable vector code (`_emu` helpers) that runs on any CPU.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from .lower_qgemm import QTiles


def pairs(values: np.ndarray) -> np.ndarray:
    """[..., K] integers -> [..., ceil(K/2)] int32 i16 pairs, the even k in
    the low half, an odd K's last pair completed with 0."""
    v = values.astype(np.int64)
    if v.shape[-1] % 2:
        v = np.concatenate([v, np.zeros((*v.shape[:-1], 1), np.int64)], axis=-1)
    lo, hi = v[..., 0::2] & 0xFFFF, (v[..., 1::2] & 0xFFFF) << 16
    return (lo | hi).astype(np.uint32).view(np.int32)


def _quads(values: np.ndarray) -> np.ndarray:
    """[..., K] 8-bit integers -> [..., ceil(K/4)] int32 byte quads, k = 4q + j
    in byte j (little-endian), the last quad completed with 0."""
    v = values.astype(np.int64) & 0xFF
    pad = -v.shape[-1] % 4
    if pad:
        v = np.concatenate([v, np.zeros((*v.shape[:-1], pad), np.int64)], axis=-1)
    quads = v[..., 0::4] | v[..., 1::4] << 8 | v[..., 2::4] << 16 | v[..., 3::4] << 24
    return quads.astype(np.uint32).view(np.int32)


def groups(values: np.ndarray, group: int) -> np.ndarray:
    """[..., K] -> i16 pairs (group 2) or byte quads (group 4) as int32."""
    return _quads(values) if group == 4 else pairs(values)


def wrap32(values: np.ndarray) -> np.ndarray:
    """int64 -> int32 modulo 2^32 (the kernel's i32 arithmetic)."""
    return (values.astype(np.int64) & 0xFFFFFFFF).astype(np.uint32).view(np.int32)


# -- dot-product helpers --------------------------------------------------------

# qc_dot4_<signs>_<lanes>(acc: vector<L x i32>, x: vector<4L x i8>, y: vector<4L x i8>):
# acc[l] + sum_j x[4l + j] * y[4l + j], x and y read with <signs> (u: unsigned).
# qc-lower-to-llvm defines them (`dot_definition`); "_emu" ones as plain vector code.
_DOT_INTRINSICS = {
    ("us", 4): "llvm.x86.avx512.vpdpbusd.128",  # also AVX-VNNI's {vex} forms
    ("us", 8): "llvm.x86.avx512.vpdpbusd.256",
    ("us", 16): "llvm.x86.avx512.vpdpbusd.512",
    ("ss", 4): "llvm.aarch64.neon.sdot.v4i32.v16i8",
    ("uu", 4): "llvm.aarch64.neon.udot.v4i32.v16i8",
}


def dot_helper(signs: str, lanes: int, emulate: bool) -> str:
    return f"qc_dot4_{signs}_{lanes}" + ("_emu" if emulate else "")


def dot_declaration(name: str) -> str:
    lanes = int(name.split("_")[3])
    acc, byt = f"vector<{lanes}xi32>", f"vector<{4 * lanes}xi8>"
    return f"func.func private @{name}({acc}, {byt}, {byt}) -> {acc}\n"


def dot_definition(name: str) -> str | None:
    """The LLVM-dialect body of a dot helper (always inlined), or None."""
    parts = name.split("_")
    if len(parts) < 4 or parts[:2] != ["qc", "dot4"] or parts[2] not in ("us", "ss", "uu"):
        return None
    signs, lanes, emulate = parts[2], int(parts[3]), parts[4:] == ["emu"]
    acc, byt, wide = f"vector<{lanes}xi32>", f"vector<{4 * lanes}xi8>", f"vector<{4 * lanes}xi32>"
    head = (f"llvm.func internal @{name}(%acc: {acc}, %x: {byt}, %y: {byt}) -> {acc} "
            'attributes {passthrough = ["alwaysinline"]} {\n')
    if not emulate:
        intrinsic = _DOT_INTRINSICS.get((signs, lanes))
        if intrinsic is None:
            return None
        return (head + f'  %r = llvm.call_intrinsic "{intrinsic}"(%acc, %x, %y) : ({acc}, {byt}, {byt}) -> {acc}\n'
                f"  llvm.return %r : {acc}\n}}\n")
    ext = {"u": "llvm.zext", "s": "llvm.sext"}
    lines = [f"  %xe = {ext[signs[0]]} %x : {byt} to {wide}", f"  %ye = {ext[signs[1]]} %y : {byt} to {wide}",
             f"  %p = llvm.mul %xe, %ye : {wide}"]
    total = "%acc"
    for j in range(4):
        lanes_j = ", ".join(str(4 * i + j) for i in range(lanes))
        lines += [f"  %s{j} = llvm.shufflevector %p, %p [{lanes_j}] : {wide}",
                  f"  %t{j} = llvm.add {total}, %s{j} : {acc}"]
        total = f"%t{j}"
    return head + "\n".join(lines) + f"\n  llvm.return {total} : {acc}\n}}\n"


@dataclass(frozen=True)
class Dot:
    """How a k-quad kernel multiplies (tiles.dot set, one operand constant)."""

    helper: str  # the dot helper it calls
    b_first: bool  # B's bytes are the helper's x operand (vpdpbusd's unsigned one)
    flip: bool  # the run-time operand's bytes are xor'ed with 0x80 when packed
    corr: str  # "a" / "b": that constant side's packed array ends with a correction row ("" without flip)
    scale: int  # the correction: scale * sum_k of the constant operand (-128, +128 or 0)


def plan_dot(t: QTiles, a_unsigned: bool, b_unsigned: bool, a_const: bool) -> Dot:
    """The dot kernel for A and B with these signs, A or else B constant."""
    dyn_u, const_u = (b_unsigned, a_unsigned) if a_const else (a_unsigned, b_unsigned)
    flip = (dyn_u == const_u) if t.dot == "vnni" else (dyn_u != const_u)
    a_u, b_u = (const_u, dyn_u != flip) if a_const else (dyn_u != flip, const_u)
    if t.dot == "vnni":
        signs, b_first = "us", b_u
    else:
        signs, b_first = ("uu" if a_u else "ss"), True
    scale = 0 if not flip else (128 if dyn_u else -128)  # u8 x read as x - 128; s8 x as x + 128
    return Dot(dot_helper(signs, t.vl, t.emulate_dot), b_first, flip, ("a" if a_const else "b") if flip else "",
               scale)
