"""Bytes from i32 vectors, and byte table lookups, with x86 shuffles.

Four vectors of 16 clamped i32 become 64 bytes by two vpackssdw and a
vpacksswb (signed saturation) and, once the bytes are final, one vpermd
that puts them in order (the packs work within 128-bit lanes). With AVX2,
four vectors of 8 become 32 bytes the same way; qc-lower-qgemm orders its
columns so that the packs' order is theirs, and needs no vpermd. A byte
indexes a 256-byte table by two vpermi2b (each reads an index's low 7 bits
from a pair of 64-byte table registers) and a blend on the index's sign bit
(AVX-512 VBMI). Per 64 outputs: six shuffles and a blend.

The instructions are helpers (`declarations`) that qc-lower-to-llvm defines
as the intrinsics (`definition`), as qc-vector-qdepthwise does for vpmaddwd.
"""

from __future__ import annotations

V32, V16, V8 = "vector<16xi32>", "vector<32xi16>", "vector<64xi8>"
Y32, Y16, Y8 = "vector<8xi32>", "vector<16xi16>", "vector<32xi8>"

# name -> (intrinsic, operand types, result type)
_HELPERS = {
    "qc_x86_packssdw_512": ("llvm.x86.avx512.packssdw.512", (V32, V32), V16),
    "qc_x86_packsswb_512": ("llvm.x86.avx512.packsswb.512", (V16, V16), V8),
    "qc_x86_vpermi2b_512": ("llvm.x86.avx512.vpermi2var.qi.512", (V8, V8, V8), V8),
    "qc_x86_packssdw_256": ("llvm.x86.avx2.packssdw", (Y32, Y32), Y16),
    "qc_x86_packsswb_256": ("llvm.x86.avx2.packsswb", (Y16, Y16), Y8),
}
_PACKS = {16: ("qc_x86_packssdw_512", "qc_x86_packsswb_512"), 8: ("qc_x86_packssdw_256", "qc_x86_packsswb_256")}
TABLE_HELPERS = (*_PACKS[16], "qc_x86_vpermi2b_512")  # what the AVX-512 table lookups use


def declarations(names) -> list[str]:
    """The declarations of the helpers `names`."""
    return [f"func.func private @{name}({', '.join(a)}) -> {r}" for name, (_, a, r) in _HELPERS.items()
            if name in names]


def packs_declarations(lanes: int) -> list[str]:
    """The declarations `emit_packs` needs for vectors of `lanes` i32."""
    return declarations(_PACKS[lanes])


def definition(name: str) -> str | None:
    """The LLVM-dialect body of a helper (always inlined), or None."""
    if name not in _HELPERS:
        return None
    intrinsic, a, r = _HELPERS[name]
    params = ", ".join(f"%a{i}: {t}" for i, t in enumerate(a))
    args = ", ".join(f"%a{i}" for i in range(len(a)))
    return (f'llvm.func internal @{name}({params}) -> {r} attributes {{passthrough = ["alwaysinline"]}} {{\n'
            f'  %r = llvm.call_intrinsic "{intrinsic}"({args}) : ({", ".join(a)}) -> {r}\n'
            f"  llvm.return %r : {r}\n}}\n")


def emit_packs(e, vecs: list[str], lanes: int = 16) -> str:
    """vector<4 lanes x i8>: the four vector<lanes x i32> `vecs` narrowed
    with signed saturation, in the packs' order: 128-bit lane L holds 4
    bytes of each input in turn, input i's lanes 4L..4L+3 (`emit_in_order`
    puts 64 of them in order)."""
    assert len(vecs) == 4
    dw, wb = _PACKS[lanes]
    i32, i16, i8 = (f"vector<{lanes}xi32>", f"vector<{2 * lanes}xi16>", f"vector<{4 * lanes}xi8>")
    w0, w1, b = e.fresh("pw"), e.fresh("pw"), e.fresh("pb")
    e.emit(f"{w0} = func.call @{dw}({vecs[0]}, {vecs[1]}) : ({i32}, {i32}) -> {i16}")
    e.emit(f"{w1} = func.call @{dw}({vecs[2]}, {vecs[3]}) : ({i32}, {i32}) -> {i16}")
    e.emit(f"{b} = func.call @{wb}({w0}, {w1}) : ({i16}, {i16}) -> {i8}")
    return b


def packs_order(lanes: int) -> list[int]:
    """Where `emit_packs` puts each input lane: input i's lane l (at i *
    lanes + l) lands at byte 16 * (l // 4) + 4 * i + l % 4."""
    return [16 * (l // 4) + 4 * i + l % 4 for i in range(4) for l in range(lanes)]


def emit_in_order(e, b: str) -> str:
    """The bytes of `emit_packs` in the order of its inputs: 128-bit lane L
    holds 4 bytes of each input in turn (dword 4L + i: input i's bytes
    4L..4L+3)."""
    d, p, out = e.fresh("pd"), e.fresh("pp"), e.fresh("pk")
    order = [4 * lane + i for i in range(4) for lane in range(4)]
    e.emit(f"{d} = vector.bitcast {b} : {V8} to {V32}")
    e.emit(f"{p} = vector.shuffle {d}, {d} [{', '.join(map(str, order))}] : {V32}, {V32}")
    e.emit(f"{out} = vector.bitcast {p} : {V32} to {V8}")
    return out


def emit_table_lookup(e, b: str, tables: list[str]) -> str:
    """vector<64xi8>: per byte of `b`, entry (b as u8) of the 256-byte table
    held by the four vector<64xi8> `tables` (entries 0-63, 64-127, ...)."""
    lo, hi, z, neg, out = (e.fresh(n) for n in ("tl", "th", "tz", "tn", "tv"))
    e.emit(f"{lo} = func.call @qc_x86_vpermi2b_512({tables[0]}, {b}, {tables[1]}) : ({V8}, {V8}, {V8}) -> {V8}")
    e.emit(f"{hi} = func.call @qc_x86_vpermi2b_512({tables[2]}, {b}, {tables[3]}) : ({V8}, {V8}, {V8}) -> {V8}")
    e.emit(f"{z} = arith.constant dense<0> : {V8}")
    e.emit(f"{neg} = arith.cmpi slt, {b}, {z} : {V8}")
    e.emit(f"{out} = arith.select {neg}, {hi}, {lo} : vector<64xi1>, {V8}")
    return out
