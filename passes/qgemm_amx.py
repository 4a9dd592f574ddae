"""The AMX form of qc-lower-qgemm's dot kernels (x86 AMX-INT8): a row tile's
sums computed by the tile unit, then requantized from L1 by the vector code
of the other kernels.

A tdpbsud / tdpbusd multiplies a 16 x 64-byte tile of A (16 rows, 16
k-quads each) by a tile of 16 k-quad rows x 16 columns of B and adds the
16 x 16 i32 products to a C tile: 16,384 byte products per instruction, as
many as 256 vpdpbusd on zmm. The signs are those of the vpdpbusd kernel
(`plan_dot`): the run-time operand's bytes xor'ed with 0x80 as it is
packed and the constant side carrying the exact correction, so AMX and
VNNI kernels share the packing of B and the start of the sums; only which
operand is unsigned decides between tdpbsud (B) and tdpbusd (A).

Layouts:
- B is the kernel's scratch panel S[KC][NR] of k-quads, as for vpdpbusd:
  rows of NR quads are exactly the tile unit's B layout (a k-quad row of
  16 columns per 64 bytes), so a B tile is 16 rows of S, NR * 4 bytes apart.
- A (constant, packed at compile time) is Ap[M/MR][KQ + 1][MR] as for the
  other kernels, but within a row block each 16-quad step kb holds MR/16
  tiles of 16 rows x 16 quads, one after the other (`pack_rows`): a tile
  row is one row of A, 64 contiguous bytes. The correction row stays last.
- C: the MR x NR tile (MR/16 x NR/16 tiles of 16 x 16) is stored to a stack
  buffer, whose rows the kernel loads as vectors and requantizes as the
  vpdpbusd kernel does. The sums start from each row's start (A's
  correction, the requantization's addition of a row input): a helper
  named with _st loads it as a tile, from a stack buffer of every row's
  start 16 times over that the kernel writes once per call, in place of
  tilezero; then the stored rows are the sums, and where a high word
  multiplies them the odd lanes are a load one element on (the stack
  tile's rows padded by 16). Per 16 outputs that is one vpaddd and one
  vpshufd fewer: the int8 MobileNet block 1.08x on a Xeon with AMX.

The helper (`helper_name`) does one row tile over all of K, unrolled (one
cache block: K is static and at most KC quads): per 16-quad step MR/16
A loads, NR/16 B loads and MR/16 * NR/16 tile products, the accumulators in
tile registers. With MR = NR = 32 that is 4 of the 8 tiles for C and 4 for
the operands. qc-lower-to-llvm defines it (`definition`) with LLVM's
`.internal` intrinsics, whose tile shapes are constants: LLVM writes the
tile configuration (ldtilecfg) in the function's prologue.

The OS must grant a process the tile state before it runs one tile
instruction (Linux: arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA)):
the runtime asks for it when a context is created for a model whose
description says it uses AMX (`qc_model_desc.uses_amx`).
"""

from __future__ import annotations

import numpy as np

from .qgemm_dot import groups, wrap32

TILE = 16  # rows of a tile; 64 bytes (16 k-quads or 16 i32) per row
# The deepest K in quads that one cache block takes: a B panel of 1152 x 32
# quads is 144 KiB of the L2 (K = 4608: ResNet-50's deepest 3x3 conv).
MAX_QUADS = 1152


def padded_quads(kg: int) -> int:
    """The k-quads of A's AMX layout: K's quads rounded up to whole tiles."""
    return -(-kg // TILE) * TILE


def row_tile(m: int) -> int | None:
    """MR for M rows (two A tiles where M allows, else one), or None where
    M is not a multiple of a tile."""
    return 32 if m % 32 == 0 else 16 if m % TILE == 0 else None


def takes(m: int, k: int) -> bool:
    """Whether qc-lower-qgemm gives a GEMM of M rows (a conv's output
    channels) and depth K with a constant A the tile kernel."""
    return row_tile(m) is not None and -(-k // 4) <= MAX_QUADS


def pack_rows(a: np.ndarray, m: int, k: int, mr: int, scale: int = 0) -> np.ndarray:
    """Ap[ib, kb * 16 + x, y] for the tile unit: viewed per (ib, kb) as MR/16
    tiles [16 rows][16 quads], tile a's row r is the quads kb*16 .. kb*16+15
    of A's row ib*MR + a*16 + r (zero past K); with a scale, a last row holds
    scale * sum_k A[row, k] per row, as in `_pack_rows`."""
    nblocks = m // mr
    quads = groups(a.astype(np.int64), 4)  # [M, KQ]
    kq = padded_quads(quads.shape[1])
    full = np.zeros((m, kq), np.int32)
    full[:, :quads.shape[1]] = quads
    # [ib, a, r, kb, q] -> [ib, kb, a, r, q]: per (ib, kb) the MR/16 tiles one after the other.
    tiles = full.reshape(nblocks, mr // TILE, TILE, kq // TILE, TILE).transpose(0, 3, 1, 2, 4)
    packed = tiles.reshape(nblocks, kq, mr)
    if scale:
        corr = wrap32(scale * a.astype(np.int64).sum(axis=1)).reshape(nblocks, 1, mr)
        packed = np.concatenate([packed, corr], axis=1)
    return np.ascontiguousarray(packed)


def helper_name(a_unsigned: bool, mr: int, nr: int, kg: int, b_stride: int, c_stride: int,
                start: bool = False) -> str:
    """qc_amx_<op>_<MR>x<NR>_k<quads>_b<B row bytes>_c<C row bytes>[_st]: C
    tile (at c, rows c_stride bytes apart) = Ap row block (at a) · S (at b),
    with _st plus the start tile (at a fourth pointer: MR rows of 16 i32,
    64 bytes apart, each row's value in every lane), else plus zeros."""
    op = "us" if a_unsigned else "su"
    return f"qc_amx_{op}_{mr}x{nr}_k{kg}_b{b_stride}_c{c_stride}" + ("_st" if start else "")


def declaration(name: str) -> str:
    pointers = 4 if name.endswith("_st") else 3
    return f"func.func private @{name}({', '.join(['index'] * pointers)})\n"


def definition(name: str) -> str | None:
    """The LLVM-dialect body of an AMX helper (always inlined), or None."""
    parts = name.split("_")
    start = parts[-1] == "st"
    if start:
        parts = parts[:-1]
    if len(parts) != 7 or parts[:2] != ["qc", "amx"] or parts[2] not in ("us", "su"):
        return None
    mr, nr = (int(x) for x in parts[3].split("x"))
    kg, b_stride, c_stride = int(parts[4][1:]), int(parts[5][1:]), int(parts[6][1:])
    tr, tc = mr // TILE, nr // TILE
    op = "llvm.x86.tdpbusd.internal" if parts[2] == "us" else "llvm.x86.tdpbsud.internal"
    amx = "!llvm.x86_amx"
    lines = [f"llvm.func internal @{name}(%a: i64, %b: i64, %c: i64{', %s: i64' if start else ''}) "
             'attributes {passthrough = ["alwaysinline"]} {',
             "  %pa = llvm.inttoptr %a : i64 to !llvm.ptr",
             "  %pb = llvm.inttoptr %b : i64 to !llvm.ptr",
             "  %pc = llvm.inttoptr %c : i64 to !llvm.ptr",
             "  %r16 = llvm.mlir.constant(16 : i16) : i16",
             "  %w64 = llvm.mlir.constant(64 : i16) : i16",
             "  %s64 = llvm.mlir.constant(64 : i64) : i64",
             f"  %sb = llvm.mlir.constant({b_stride} : i64) : i64",
             f"  %sc = llvm.mlir.constant({c_stride} : i64) : i64"]
    def gep(base: str, offset: int, out: str) -> str:
        lines.append(f"  {out} = llvm.getelementptr {base}[{offset}] : (!llvm.ptr) -> !llvm.ptr, i8")
        return out

    if start:
        lines.append("  %ps = llvm.inttoptr %s : i64 to !llvm.ptr")
    acc = {}
    for i in range(tr):
        for j in range(tc):
            acc[i, j] = f"%z{i}_{j}"
            if start:  # the rows' starts: the epilogue then adds nothing to the sums
                p = gep("%ps", i * TILE * 64, f"%ps{i}_{j}")
                lines.append(f'  {acc[i, j]} = llvm.call_intrinsic "llvm.x86.tileloadd64.internal"(%r16, %w64, {p}, '
                             f"%s64) : (i16, i16, !llvm.ptr, i64) -> {amx}")
            else:
                lines.append(f'  {acc[i, j]} = llvm.call_intrinsic "llvm.x86.tilezero.internal"(%r16, %w64) '
                             f": (i16, i16) -> {amx}")
    for kb in range(-(-kg // TILE)):
        # Every tile is 16 x 64 bytes, a K not a multiple of 64 included
        # (A's zeros past K times whatever S holds there): LLVM gives each
        # shape its own tile registers, and the eight of them are all taken.
        kbytes = "%w64"
        ta, tb = [], []
        for i in range(tr):
            p = gep("%pa", (kb * tr + i) * TILE * 64, f"%pa{kb}_{i}")
            v = f"%ta{kb}_{i}"
            lines.append(f'  {v} = llvm.call_intrinsic "llvm.x86.tileloadd64.internal"(%r16, {kbytes}, {p}, %s64) '
                         f": (i16, i16, !llvm.ptr, i64) -> {amx}")
            ta.append(v)
        for j in range(tc):
            p = gep("%pb", kb * TILE * b_stride + j * 64, f"%pb{kb}_{j}")
            v = f"%tb{kb}_{j}"
            lines.append(f'  {v} = llvm.call_intrinsic "llvm.x86.tileloadd64.internal"(%r16, %w64, {p}, %sb) '
                         f": (i16, i16, !llvm.ptr, i64) -> {amx}")
            tb.append(v)
        for i in range(tr):
            for j in range(tc):
                v = f"%d{kb}_{i}_{j}"
                lines.append(f'  {v} = llvm.call_intrinsic "{op}"(%r16, %w64, {kbytes}, {acc[i, j]}, {ta[i]}, '
                             f"{tb[j]}) : (i16, i16, i16, {amx}, {amx}, {amx}) -> {amx}")
                acc[i, j] = v
    for i in range(tr):
        for j in range(tc):
            p = gep("%pc", i * TILE * c_stride + j * 64, f"%pc{i}_{j}")
            lines.append(f'  llvm.call_intrinsic "llvm.x86.tilestored64.internal"(%r16, %w64, {p}, %sc, '
                         f"{acc[i, j]}) : (i16, i16, !llvm.ptr, i64, {amx}) -> ()")
    lines += ["  llvm.return", "}"]
    return "\n".join(lines) + "\n"
