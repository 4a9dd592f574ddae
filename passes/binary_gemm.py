"""qc-lower-binary-gemm: the binary GEMM (a linalg.generic tagged
`qc.op = "bgemm"`, frontends/onnx/binary.py) on memrefs -> a register-blocked
xor/popcount kernel.

    P[m, f] += sum_k popcount(op(A[m, k], W[k, f]))     (64-bit words)

with op = A ^ W (xor), (A ^ W) & M (xor_and: M is the nonzero mask of a
Sign input) or A & W (and: one bit plane of a 2-bit input).

The kernel is the fp32 GEMM's (qc-lower-gemm) with words for floats: an
MR x NR tile of P stays in MR * NR/VL vector registers of VL 64-bit lanes
for the whole k loop; each k step loads NR/VL vectors of W (NR output
channels of word k), broadcasts MR words of A, and does MR * NR/VL
xor + popcount + add. LLVM lowers the vector popcount per ISA: AVX2 a
nibble lookup (vpshufb) summed by vpsadbw, AVX-512 VPOPCNTDQ `vpopcntq`,
AArch64 `cnt` + pairwise widening adds (uaddlp), RVV `vcpop.v` with Zvbb
and a bit-twiddling expansion without it. The counts accumulate in 64-bit
lanes and are narrowed once, after the k loop.

On AVX2 (no vector popcount) xor and and take another kernel, which looks
the counts up with vpshufb in per-activation-byte tables against weight
nibbles packed at compile time (lut_kernel_text): about half the vector ops
of the nibble-lookup popcount. When a threshold op (bits out) is C's only
reader, it folds into that kernel's epilogue: the counts are compared with
per-channel thresholds in registers and the bits stored, so C is never
written; a zero fill of C before the GEMM folds into a plain store. So does
the float output (scale_bias, and a residual Add fused with it): the kernel
writes y = float(K + corr - 2P) * s + b (+ R) in NCHW, through a
channel-major scratch block (see "the float epilogue" below).

W is a constant: it is packed at compile time into panels Wp[F/NR][K][NR],
so the kernel reads it contiguously. F is a multiple of 64 (the frontend
pads the output channels to whole words), so there is no column tail; the
row tail (M % MR) gets its own smaller tile.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from qc.mlir import func, ir, memref

from .base import Pass, collect_ops, run_upstream
from .gemm_epilogue import _root, _touches, _uses_of_buffer

MODES = ("xor", "xor_and", "and")

# Words of k counted in byte lanes before they are widened: a byte holds at
# most 8 per word, and 31 * 8 = 248 < 256.
CHUNK = 31


@dataclass(frozen=True)
class LowerBinaryGemm(Pass):
    """Needs bufferized IR. Replaces each static `qc.op = "bgemm"`
    linalg.generic whose W is a constant global by a call to a private kernel
    function (scf.for, vector loads, arith.xori/andi, math.ctpop on
    vector<VLxi64>); others are left to the loop lowering."""

    name = "qc-lower-binary-gemm"
    mr: int = 4
    nr: int = 8
    vector_bits: int = 256
    lut: bool = False  # AVX2: the lookup kernel for xor and and (see lut_kernel_text)

    def apply(self, module: ir.Module) -> None:
        vl = self.vector_bits // 64
        if vl < 1 or self.nr % vl or 64 % self.nr or self.mr < 1:
            from qc.errors import PassFailed

            raise PassFailed(self.name, f"bad tile mr={self.mr} nr={self.nr} for {vl} 64-bit lanes "
                                        "(nr a multiple of the lanes and a divisor of 64)")
        made: set[str] = set()
        packed: dict[str, str] = {}
        ops = [op for op in collect_ops(module.operation, ("linalg.generic",))
               if "qc.op" in op.attributes and ir.StringAttr(op.attributes["qc.op"]).value == "bgemm"]
        for op in ops:  # (the lookup kernel erases the threshold ops it folds in: not among these)
            if not (self.lut and _lower_lut(module, op, made, packed)):
                _lower(module, op, self.mr, self.nr, vl, made, packed)
        if made:
            run_upstream(self.name, "canonicalize,cse,symbol-dce", module)


def _memref(v: ir.Value) -> ir.MemRefType | None:
    return ir.MemRefType(v.type) if isinstance(v.type, ir.MemRefType) else None


def _row_major(ty: ir.MemRefType) -> bool:
    strides, _ = ty.get_strides_and_offset()
    return ty.has_static_shape and strides == [ty.shape[1], 1]


def _lower(module, op, mr, nr, vl, made, packed) -> None:
    mode = ir.StringAttr(op.attributes["qc.bgemm"]).value
    ins, (c,) = list(op.inputs), list(op.outputs)
    *a_ops, w = ins
    tys = [_memref(v) for v in ins + [c]]
    if mode not in MODES or any(t is None or t.rank != 2 or not _row_major(t) for t in tys):
        return  # still on tensors, or a layout the kernel does not take
    m, k = tys[0].shape
    n = tys[-1].shape[1]
    if n % nr:
        return
    wp = _packed_weights(module, w, nr, packed)
    if wp is None:
        return
    fname = f"qc_bgemm_{m}x{n}x{k}_{mode}_{mr}x{nr}"
    if fname not in made:
        parsed = ir.Module.parse(kernel_text(fname, m, n, k, mode, mr, nr, vl))
        for fn in list(parsed.body.operations):
            module.body.append(fn)
        made.add(fname)
    with ir.InsertionPoint(op.operation), op.location:
        args = [memref.cast(_strided(m, k, ir.IntegerType.get_signless(64)), a) for a in a_ops]
        args += [wp, memref.cast(_strided(m, n, ir.IntegerType.get_signless(32)), c)]
        func.CallOp([], ir.FlatSymbolRefAttr.get(fname), args)
    op.operation.erase()


def _strided(rows: int, cols: int, elem) -> ir.MemRefType:
    dyn = ir.ShapedType.get_dynamic_stride_or_offset()
    return ir.MemRefType.get([rows, cols], elem, ir.StridedLayoutAttr.get(dyn, [cols, 1]))


def _packed_weights(module, w: ir.Value, nr: int, packed: dict):
    """A get_global of W packed into panels [N/NR][K][NR], if W is a constant global."""
    owner = getattr(w.owner, "operation", w.owner)
    if not isinstance(owner, ir.Operation) or owner.name != "memref.get_global":
        return None
    sym = ir.FlatSymbolRefAttr(owner.attributes["name"]).value
    glob = ir.SymbolTable(module.operation)[sym]
    attr = glob.attributes["initial_value"] if "initial_value" in glob.attributes else None
    if "constant" not in glob.attributes or not isinstance(attr, ir.DenseElementsAttr):
        return None
    k, n = ir.MemRefType(w.type).shape
    ty = ir.MemRefType.get([n // nr, k, nr], ir.IntegerType.get_signless(64))
    name = packed.get(sym)
    if name is None:
        if attr.is_splat:
            data = np.full((k, n), ir.IntegerAttr(attr.get_splat_value()).value, np.int64)
        else:
            data = np.array(attr).reshape(k, n)
        panels = np.ascontiguousarray(data.reshape(k, n // nr, nr).transpose(1, 0, 2))
        name = f"{sym}_bpacked{nr}"
        _define_global(module, name, ty, panels)
        packed[sym] = name
    return _get_global(owner, name, ty)


def _define_global(module, name: str, ty: ir.MemRefType, data: np.ndarray) -> None:
    """A private constant global `name` of type ty holding data, first in the module."""
    with ir.InsertionPoint(module.body), ir.Location.unknown():
        g = ir.Operation.create("memref.global", attributes={
            "sym_name": ir.StringAttr.get(name),
            "sym_visibility": ir.StringAttr.get("private"),
            "type": ir.TypeAttr.get(ty),
            "initial_value": ir.DenseElementsAttr.get(np.ascontiguousarray(data), type=ty.element_type),
            "constant": ir.UnitAttr.get(),
            "alignment": ir.IntegerAttr.get(ir.IntegerType.get_signless(64), 64),
        })
    g.move_before(module.body.operations[0])


def _get_global(at: ir.Operation, name: str, ty: ir.MemRefType) -> ir.Value:
    """memref.get_global @name, before `at`."""
    with ir.InsertionPoint(at), ir.Location.unknown():
        return ir.Operation.create("memref.get_global", results=[ty],
                                   attributes={"name": ir.FlatSymbolRefAttr.get(name)}).result


def kernel_text(name: str, m: int, n: int, k: int, mode: str, mr: int, nr: int, vl: int) -> str:
    """The MLIR text of one binary GEMM kernel for static sizes."""
    a_ty = f"memref<{m}x{k}xi64, strided<[{k}, 1], offset: ?>>"
    w_ty = f"memref<{n // nr}x{k}x{nr}xi64>"
    c_ty = f"memref<{m}x{n}xi32, strided<[{n}, 1], offset: ?>>"
    vec, vec32 = f"vector<{vl}xi64>", f"vector<{vl}xi32>"
    bvec = f"vector<{vl * 8}xi8>"  # the same bits as bytes: counted and accumulated per byte
    nvec = nr // vl
    lines: list[str] = []
    counter = [0]

    def fresh(stem: str) -> str:
        counter[0] += 1
        return f"%{stem}{counter[0]}"

    def emit(s: str, depth: int) -> None:
        lines.append("  " * depth + s)

    consts = {}

    def idx(v: int) -> str:
        consts[v] = f"%c{v}"
        return consts[v]

    def tile(rows: int, i0: str, depth: int) -> None:
        """P[i0:i0+rows, j0:j0+NR] += the popcounts over all of k: one register tile."""
        ri = []
        for r in range(rows):
            if r == 0:
                ri.append(i0)
            else:
                v = fresh("i")
                emit(f"{v} = arith.addi {i0}, {idx(r)} : index", depth)
                ri.append(v)
        keys = [(r, cc) for r in range(rows) for cc in range(nvec)]
        for k0 in range(0, k, CHUNK):
            chunk(rows, ri, keys, k0, min(k, k0 + CHUNK), depth)

    def chunk(rows, ri, keys, k0, k1, depth) -> None:
        """Up to CHUNK words of k with byte counters, then widened into P."""
        res, kv = fresh("res"), fresh("k")
        init = ", ".join(f"%x{r}_{cc} = %zero" for r, cc in keys)
        emit(f"{res}:{len(keys)} = scf.for {kv} = {idx(k0)} to {idx(k1)} step {idx(1)} iter_args({init}) "
             f"-> ({', '.join([bvec] * len(keys))}) {{", depth)
        d = depth + 1
        bv = []
        for cc in range(nvec):
            v = fresh("w")
            emit(f"{v} = vector.load %W[%jp, {kv}, {idx(cc * vl)}] : {w_ty}, {vec}", d)
            bv.append(v)
        new = {}
        for r in range(rows):
            a, ab = fresh("a"), fresh("ab")
            emit(f"{a} = memref.load %A[{ri[r]}, {kv}] : {a_ty}", d)
            emit(f"{ab} = vector.broadcast {a} : i64 to {vec}", d)
            mb = None
            if mode == "xor_and":
                mw, mb = fresh("mw"), fresh("mb")
                emit(f"{mw} = memref.load %M[{ri[r]}, {kv}] : {a_ty}", d)
                emit(f"{mb} = vector.broadcast {mw} : i64 to {vec}", d)
            for cc in range(nvec):
                x = fresh("x")
                emit(f"{x} = arith.{'andi' if mode == 'and' else 'xori'} {ab}, {bv[cc]} : {vec}", d)
                if mb is not None:
                    y = fresh("y")
                    emit(f"{y} = arith.andi {x}, {mb} : {vec}", d)
                    x = y
                xb, p, s = fresh("xb"), fresh("p"), fresh("s")
                emit(f"{xb} = vector.bitcast {x} : {vec} to {bvec}", d)
                emit(f"{p} = math.ctpop {xb} : {bvec}", d)
                emit(f"{s} = arith.addi %x{r}_{cc}, {p} : {bvec}", d)
                new[r, cc] = s
        emit(f"scf.yield {', '.join(new[key] for key in keys)} : {', '.join([bvec] * len(keys))}", d)
        emit("}", depth)
        for i, (r, cc) in enumerate(keys):
            col = fresh("j")
            emit(f"{col} = arith.addi %j0, {idx(cc * vl)} : index", depth)
            lw, ev, od, hi, pairs, prod, top, t, old, s = (
                fresh(x) for x in ("lw", "ev", "od", "hi", "pa", "pr", "tp", "t", "o", "n"))
            # The 8 byte counts (each <= 248) of a 64-bit lane, summed: first
            # adjacent bytes into 16-bit fields (<= 496), then the 4 fields by
            # the top 16 bits of fields * 0x0001000100010001 (partial sums
            # <= 1984: no carry between fields).
            emit(f"{lw} = vector.bitcast {res}#{i} : {bvec} to {vec}", depth)
            emit(f"{ev} = arith.andi {lw}, %m8 : {vec}", depth)
            emit(f"{hi} = arith.shrui {lw}, %c8v : {vec}", depth)
            emit(f"{od} = arith.andi {hi}, %m8 : {vec}", depth)
            emit(f"{pairs} = arith.addi {ev}, {od} : {vec}", depth)
            emit(f"{prod} = arith.muli {pairs}, %fieldsum : {vec}", depth)
            emit(f"{top} = arith.shrui {prod}, %c48v : {vec}", depth)
            emit(f"{t} = arith.trunci {top} : {vec} to {vec32}", depth)
            emit(f"{old} = vector.load %C[{ri[r]}, {col}] : {c_ty}, {vec32}", depth)
            emit(f"{s} = arith.addi {old}, {t} : {vec32}", depth)
            emit(f"vector.store {s}, %C[{ri[r]}, {col}] : {c_ty}, {vec32}", depth)

    m_main, m_tail = m - m % mr, m % mr
    body_start = len(lines)
    emit(f"scf.for %jp = {idx(0)} to {idx(n // nr)} step {idx(1)} {{", 2)
    emit(f"%j0 = arith.muli %jp, {idx(nr)} : index", 3)
    if m_main:
        emit(f"scf.for %i0 = {idx(0)} to {idx(m_main)} step {idx(mr)} {{", 3)
        tile(mr, "%i0", 4)
        emit("}", 3)
    if m_tail:
        tile(m_tail, idx(m_main), 3)
    emit("}", 2)
    body = lines[body_start:]
    mask_arg = f"%M: {a_ty}, " if mode == "xor_and" else ""
    head = [f"func.func private @{name}(%A: {a_ty}, {mask_arg}%W: {w_ty}, %C: {c_ty}) {{"]
    head += [f"    {cname} = arith.constant {v} : index" for v, cname in sorted(consts.items())]
    head.append(f"    %zero = arith.constant dense<0> : {bvec}")
    for cname, value in (("m8", 0x00FF00FF00FF00FF), ("fieldsum", 0x0001000100010001), ("c8v", 8), ("c48v", 48)):
        head.append(f"    %{cname} = arith.constant dense<{value}> : {vec}")
    return "\n".join([*head, *body, "    return", "}"]) + "\n"


def for_target(target=None) -> LowerBinaryGemm:
    """The binary GEMM tile for a target's vector registers (AVX2 without one).

    Besides the MR * NR/VL accumulators and NR/VL W vectors, the popcount
    needs registers of its own: on AVX2 the nibble table, the 0x0f mask and
    a zero for vpsadbw, plus two temporaries."""
    if target is None or (target.arch == "x86_64" and target.vector_bits == 256):
        # 16 ymm: 8 acc + 2 W + 1 A + 3 const + 2 temp; xor and and take the lookup kernel
        return LowerBinaryGemm(mr=4, nr=8, vector_bits=256, lut=True)
    if target.arch == "x86_64" and target.vector_bits == 512:
        return LowerBinaryGemm(mr=6, nr=16, vector_bits=512)  # 32 zmm: 12 acc + 2 W + 1 A (vpopcntq: no temps)
    if target.arch == "aarch64":
        return LowerBinaryGemm(mr=3, nr=8, vector_bits=128)  # 32 v: 12 acc + 4 W + 3 A + eor/cnt temps
    if target.arch == "riscv64" and target.rvv_vlen:
        bits = 2 * target.rvv_vlen  # LMUL 2, as the fp32 GEMM
        return LowerBinaryGemm(mr=4, nr=2 * bits // 64, vector_bits=bits)
    return LowerBinaryGemm(mr=4, nr=4, vector_bits=128)


# ---------------------------------------------------------------- the AVX2 lookup kernel
#
# AVX2 has no vector popcount: the word kernel above counts bytes by a
# nibble lookup, 8 vector ops per 4 words (xor, the two nibbles split by
# vpand/vpsrlw/vpand, two vpshufb, two vpaddb). With W a constant the xor and
# the split can move out of the loop. For an activation byte u and a weight
# byte w = (w_hi, w_lo),
#     popcount(u ^ w) = T_lo(u)[w_lo] + T_hi(u)[w_hi],   T_lo(u)[j] = popcount((u & 15) ^ j),
# so one vpshufb whose table is T(u) = [T_lo(u) | T_hi(u)] (one 128-bit lane
# each, 256 tables of 32 bytes, a compile-time constant) and whose indices
# are the nibbles of 16 output channels' byte w (lane 0 the low, lane 1 the
# high nibbles, packed at compile time) counts byte u against 16 channels:
# one vpshufb and one vpaddb per 16 channel-bytes, where the word kernel
# spends 16 ops on the same 128 bit pairs. (A & W, the 2-bit planes: the same
# with popcount((u & 15) & j).) The table address comes from the byte of A
# by scalar shift/mask, on the integer pipes, off the vector ones.
#
# The byte counters take 8 lookups of at most 4 per word of k; every LUT_CHUNK
# words they are widened into 16-bit counts per channel (low + high lane).

LUT_MR = 2  # rows per tile: 2 rows x 4 vectors of 16 channels = 8 byte counters, 4 W vectors, a table
LUT_NC = 64  # channels per tile: one output word of bits
LUT_CHUNK = 7  # 7 words x 8 bytes x 4 < 256
LUT_MAX_K = 511  # counts up to 64 * 511 < 2^15: the 16-bit counters and thresholds


def lut_tables(mode: str) -> np.ndarray:
    """T[u] for every byte u: [256, 32] uint8, lanes T_lo(u), T_hi(u)."""
    u = np.arange(256)[:, None, None]
    nib = np.stack([u & 15, u >> 4], axis=1)  # [256, 2, 1]
    j = np.arange(16)[None, None, :]
    v = nib ^ j if mode == "xor" else nib & j
    pop = sum((v >> s) & 1 for s in range(4))
    return pop.reshape(256, 32).astype(np.uint8)


def lut_weights(w: np.ndarray) -> np.ndarray:
    """W [K, N] words -> the lookup indices [N/64, K, 8, 128] uint8: for tile
    t, word k and byte b, 4 vectors of 16 channels (64t + 16v + i), each the
    low nibbles of byte b (lane 0) then the high nibbles (lane 1)."""
    k, n = w.shape
    wb = np.ascontiguousarray(w).astype("<i8").view(np.uint8).reshape(k, n, 8)  # byte b = bits 8b..8b+7
    nib = np.stack([wb & 15, wb >> 4], axis=-1)  # [K, N, 8, 2]
    nib = nib.reshape(k, n // LUT_NC, 4, 16, 8, 2)  # [K, T, v, i, b, lane]
    return np.ascontiguousarray(nib.transpose(1, 0, 4, 2, 5, 3).reshape(n // LUT_NC, k, 8, 128))


@dataclass(frozen=True)
class FloatLayout:
    """Where the float epilogue writes: row m = (image, position) and
    channel f < F go to O[(m // pos) F pos + f pos + m % pos] (NCHW with
    pos = H W; a matmul's [M, F] is pos = 1 ... M); residual: O = R + y
    with R laid out as O."""
    f: int
    pos: int
    residual: bool

    @property
    def block(self) -> int:
        """Rows per block stored at once (0: none): a block's rows are
        positions of one image, so a channel's floats of a block are
        contiguous in O, up to a cache line. Storing them one tile (2 rows)
        at a time writes 64 channels pos floats apart, for a power of two
        pos all in one L1 set."""
        return next((b for b in (16, 8, 4) if self.pos % b == 0), 0)

    def suffix(self) -> str:
        return f"_c{self.f}p{self.pos}" + ("r" if self.residual else "")


def lut_kernel_text(name: str, m: int, n: int, k: int, out: str, classes: int = 1,
                    flt: FloatLayout | None = None) -> str:
    """The MLIR text of one lookup kernel. out: "store" (C = P), "add"
    (C += P), "bits": the threshold epilogue, O[m, t] = the 64 bits
    (P[m, 64t + b] > H[cls[m], 64t + b]) xor F[t], or "float": the
    scale-bias epilogue, y = float(B[cls[m], f] - 2 P[m, f]) * S[f] + Bi[f]
    (+ R) stored at flt's place of (m, f) in O. P is stored only by the first two."""
    a_ty = f"memref<{m}x{k}xi64, strided<[{k}, 1], offset: ?>>"
    w_ty = f"memref<{n // LUT_NC}x{k}x8x128xi8>"
    t_ty = "memref<256x32xi8>"
    c_ty = f"memref<{m}x{n}xi32, strided<[{n}, 1], offset: ?>>"
    h_ty, cl_ty, f_ty = f"memref<{classes}x{n}xi16>", f"memref<{m}xi32>", f"memref<{n // LUT_NC}xi64>"
    o_ty = f"memref<{m}x{n // LUT_NC}xi64, strided<[{n // LUT_NC}, 1], offset: ?>>"
    b8, b16, h16 = "vector<32xi8>", "vector<16xi8>", "vector<16xi16>"
    v32, f32v = "vector<16xi32>", "vector<16xf32>"
    b_ty, s_ty = f"memref<{classes}x{n}xi32>", f"memref<{n}xf32>"
    fo_ty = f"memref<{m * flt.f if flt else 0}xf32, strided<[1], offset: ?>>"
    rb = flt.block if flt else 0
    sb_ty = f"memref<{LUT_NC}x{rb}xf32>"
    e = _Emitter()

    def tile(rows: int, i0: str, depth: int) -> None:
        ri = [i0] + [e.val("i", f"arith.addi {i0}, {e.idx(r)} : index", depth) for r in range(1, rows)]
        keys = [(r, v) for r in range(rows) for v in range(4)]
        counts: dict = {}
        bounds = list(range(0, k, LUT_CHUNK)) + [k]
        for k0, k1 in zip(bounds, bounds[1:]):
            res = chunk(rows, ri, keys, k0, k1, depth)
            for i, key in enumerate(keys):
                widen(key, f"{res}#{i}", counts, depth)
        epilogue(rows, ri, counts, depth)

    def chunk(rows, ri, keys, k0, k1, depth) -> str:
        """Words k0..k1 of k counted in byte counters (low and high nibble lanes apart)."""
        res, kv = e.fresh("res"), e.fresh("k")
        init = ", ".join(f"%x{r}_{v} = %zero" for r, v in keys)
        e.emit(f"{res}:{len(keys)} = scf.for {kv} = {e.idx(k0)} to {e.idx(k1)} step {e.idx(1)} "
               f"iter_args({init}) -> ({', '.join([b8] * len(keys))}) {{", depth)
        d = depth + 1
        words = [e.val("a", f"memref.load %A[{ri[r]}, {kv}] : {a_ty}", d) for r in range(rows)]
        acc = {key: f"%x{key[0]}_{key[1]}" for key in keys}
        for byte in range(8):
            wv = [e.val("w", f"vector.load %W[%t, {kv}, {e.idx(byte)}, {e.idx(32 * v)}] : {w_ty}, {b8}", d)
                  for v in range(4)]
            for r in range(rows):
                tab = e.val("tab", f"vector.load %T[{table_row(words[r], byte, d)}, {e.idx(0)}] : {t_ty}, {b8}", d)
                for v in range(4):
                    hit = e.val("l", f'llvm.call @"{PSHUFB}"({tab}, {wv[v]}) : ({b8}, {b8}) -> {b8}', d)
                    acc[r, v] = e.val("s", f"arith.addi {acc[r, v]}, {hit} : {b8}", d)
        e.emit(f"scf.yield {', '.join(acc[key] for key in keys)} : {', '.join([b8] * len(keys))}", d)
        e.emit("}", depth)
        return res

    def table_row(word: str, byte: int, d: int) -> str:
        """The index of T for byte `byte` of an A word: (word >> 8 byte) & 255."""
        shifted = word
        if byte:
            shifted = e.val("sh", f"arith.shrui {word}, {e.const(8 * byte, 'i64')} : i64", d)
        u = e.val("u", f"arith.andi {shifted}, {e.const(255, 'i64')} : i64", d)
        return e.val("ui", f"arith.index_cast {u} : i64 to index", d)

    def widen(key, bytes_: str, counts: dict, depth: int) -> None:
        """counts[key] += the 16 channels' low-lane + high-lane byte counts, as i16."""
        halves = []
        for lane in range(2):
            half = e.val("hb", f"vector.extract_strided_slice {bytes_} {{offsets = [{16 * lane}], sizes = [16], "
                               f"strides = [1]}} : {b8} to {b16}", depth)
            halves.append(e.val("hw", f"arith.extui {half} : {b16} to {h16}", depth))
        s = e.val("c", f"arith.addi {halves[0]}, {halves[1]} : {h16}", depth)
        counts[key] = s if key not in counts else e.val("c", f"arith.addi {counts[key]}, {s} : {h16}", depth)

    def epilogue(rows, ri, counts, depth) -> None:
        if out == "float":
            float_epilogue(rows, ri, counts, depth)
            return
        for r in range(rows):
            cols = [e.val("j", f"arith.addi %j0, {e.idx(16 * v)} : index", depth) for v in range(4)]
            if out != "bits":
                for v in range(4):
                    p = e.val("p", f"arith.extui {counts[r, v]} : {h16} to vector<16xi32>", depth)
                    if out == "add":
                        old = e.val("o", f"vector.load %C[{ri[r]}, {cols[v]}] : {c_ty}, vector<16xi32>", depth)
                        p = e.val("p", f"arith.addi {old}, {p} : vector<16xi32>", depth)
                    e.emit(f"vector.store {p}, %C[{ri[r]}, {cols[v]}] : {c_ty}, vector<16xi32>", depth)
                continue
            cls = row_class(ri[r], depth)
            gt = []
            for v in range(4):
                h = e.val("h", f"vector.load %H[{cls}, {cols[v]}] : {h_ty}, {h16}", depth)
                gt.append(e.val("g", f"arith.cmpi sgt, {counts[r, v]}, {h} : {h16}", depth))
            lo = e.val("g", f"vector.shuffle {gt[0]}, {gt[1]} {list(range(32))} : vector<16xi1>, vector<16xi1>", depth)
            hi = e.val("g", f"vector.shuffle {gt[2]}, {gt[3]} {list(range(32))} : vector<16xi1>, vector<16xi1>", depth)
            all_ = e.val("g", f"vector.shuffle {lo}, {hi} {list(range(64))} : vector<32xi1>, vector<32xi1>", depth)
            vw = e.val("bw", f"vector.bitcast {all_} : vector<64xi1> to vector<1xi64>", depth)
            word = e.val("bw", f"vector.extract {vw}[0] : i64 from vector<1xi64>", depth)
            flip = e.val("f", f"memref.load %F[%t] : {f_ty}", depth)
            bits = e.val("bw", f"arith.xori {word}, {flip} : i64", depth)
            e.emit(f"memref.store {bits}, %O[{ri[r]}, %t] : {o_ty}", depth)

    def row_class(row: str, depth: int) -> str:
        if classes == 1:
            return e.idx(0)
        c32 = e.val("cl", f"memref.load %CL[{row}] : {cl_ty}", depth)
        return e.val("cl", f"arith.index_cast {c32} : i32 to index", depth)

    def float_values(rows, ri, counts, depth) -> dict:
        """y = float(B[cls, f] - 2 P) * S[f] + Bi[f] for 16 channels per vector,
        in i32 (B = K + corr may pass 2^15): {(row, vector): vector<16xf32>}."""
        ys = {}
        for r in range(rows):
            cls = row_class(ri[r], depth)
            for v in range(4):
                col = e.val("j", f"arith.addi %j0, {e.idx(16 * v)} : index", depth)
                p = e.val("p", f"arith.extui {counts[r, v]} : {h16} to {v32}", depth)
                twice = e.val("p", f"arith.addi {p}, {p} : {v32}", depth)
                base = e.val("b", f"vector.load %B[{cls}, {col}] : {b_ty}, {v32}", depth)
                dot = e.val("d", f"arith.subi {base}, {twice} : {v32}", depth)
                fl = e.val("y", f"arith.sitofp {dot} : {v32} to {f32v}", depth)
                sc = e.val("s", f"vector.load %S[{col}] : {s_ty}, {f32v}", depth)
                bi = e.val("s", f"vector.load %BI[{col}] : {s_ty}, {f32v}", depth)
                prod = e.val("y", f"arith.mulf {fl}, {sc} : {f32v}", depth)
                ys[r, v] = e.val("y", f"arith.addf {prod}, {bi} : {f32v}", depth)
        return ys

    def pair(ys, v, c, depth) -> str:
        """Channel 16 v + c of rows 0 and 1, as vector<2xf32>."""
        mixed = e.val("z", f"vector.shuffle {ys[0, v]}, {ys[1, v]} "
                           f"{[x for i in range(16) for x in (i, 16 + i)]} : {f32v}, {f32v}", depth)
        return e.val("z", f"vector.extract_strided_slice {mixed} {{offsets = [{2 * c}], sizes = [2], "
                          f"strides = [1]}} : vector<32xf32> to vector<2xf32>", depth)

    def float_epilogue(rows, ri, counts, depth) -> None:
        """With a row block: the tile's 2 rows into columns ii, ii + 1 of the
        block's scratch (channel-major); the block is stored after its last tile.
        Without: each channel's floats stored in place, pos floats apart
        (two rows of one image are adjacent positions: one pair per channel)."""
        ys = float_values(rows, ri, counts, depth)
        if rb:
            for v in range(4):
                for c in range(16):
                    e.emit(f"vector.store {pair(ys, v, c, depth)}, %SB[{e.idx(16 * v + c)}, %ii] : "
                           f"{sb_ty}, vector<2xf32>", depth)
            return
        bases = [out_start(ri[r], depth) for r in range(rows)]
        if flt.pos == 1 and flt.f % 16 == 0:  # [M, F]: a row's channels are contiguous
            for r in range(rows):
                for v in range(4):
                    store_channel(bases[r], v, 0, f32v, depth, lambda d, r=r, v=v: ys[r, v])
            return
        for v in range(4):
            for c in range(16):
                if rows == 2 and flt.pos % 2 == 0:  # rows i0 (even) and i0 + 1 of one image
                    store_channel(bases[0], v, c, "vector<2xf32>", depth, lambda d, v=v, c=c: pair(ys, v, c, d))
                    continue
                for r in range(rows):
                    store_channel(bases[r], v, c, "f32", depth, lambda d, r=r, v=v, c=c: e.val(
                        "z", f"vector.extract {ys[r, v]}[{c}] : f32 from {f32v}", d))

    def flush(depth) -> None:
        """The block's scratch to O: channel f's rb floats (rows ib.. of one image) at once."""
        base = out_start("%ib", depth)
        for ch in range(LUT_NC):
            store_channel(base, ch // 16, ch % 16, f"vector<{rb}xf32>", depth, lambda d, ch=ch: e.val(
                "z", f"vector.load %SB[{e.idx(ch)}, {e.idx(0)}] : {sb_ty}, vector<{rb}xf32>", d))

    def out_start(row: str, depth: int) -> str:
        """The index in O of (row, channel 0): (row // pos) F pos + row % pos."""
        img = e.val("n", f"arith.divui {row}, {e.idx(flt.pos)} : index", depth)
        q = e.val("q", f"arith.remui {row}, {e.idx(flt.pos)} : index", depth)
        start = e.val("ob", f"arith.muli {img}, {e.idx(flt.f * flt.pos)} : index", depth)
        return e.val("ob", f"arith.addi {start}, {q} : index", depth)

    def store_channel(base, v, c, ty, depth, value) -> None:
        """O[base + f pos] = value (+ R there) for channel f = j0 + 16 v + c:
        a float, or a vector (the next rows of one image, or the next
        channels where pos = 1); guarded where the last tile has channels past F."""
        ch = e.val("ch", f"arith.addi %j0, {e.idx(16 * v + c)} : index", depth)
        d = depth
        if flt.f % LUT_NC:
            ok = e.val("ok", f"arith.cmpi ult, {ch}, {e.idx(flt.f)} : index", depth)
            e.emit(f"scf.if {ok} {{", depth)
            d = depth + 1
        off = e.val("a", f"arith.muli {ch}, {e.idx(flt.pos)} : index", d)
        at = e.val("a", f"arith.addi {base}, {off} : index", d)
        y = value(d)
        load, store = ("vector.load", "vector.store") if ty != "f32" else ("memref.load", "memref.store")
        suffix = f", {ty}" if ty != "f32" else ""
        if flt.residual:
            old = e.val("r", f"{load} %R[{at}] : {fo_ty}{suffix}", d)
            y = e.val("z", f"arith.addf {old}, {y} : {ty}", d)
        e.emit(f"{store} {y}, %O[{at}] : {fo_ty}{suffix}", d)
        if flt.f % LUT_NC:
            e.emit("}", depth)

    m_main, m_tail = m - m % LUT_MR, m % LUT_MR
    e.emit(f"scf.for %t = {e.idx(0)} to {e.idx(n // LUT_NC)} step {e.idx(1)} {{", 2)
    e.emit(f"%j0 = arith.muli %t, {e.idx(LUT_NC)} : index", 3)
    if rb:  # blocks of rb rows, rb | pos: LUT_MR-row tiles, then the block's store
        e.emit(f"scf.for %ib = {e.idx(0)} to {e.idx(m)} step {e.idx(rb)} {{", 3)
        e.emit(f"scf.for %ii = {e.idx(0)} to {e.idx(rb)} step {e.idx(LUT_MR)} {{", 4)
        e.emit("%i0 = arith.addi %ib, %ii : index", 5)
        tile(LUT_MR, "%i0", 5)
        e.emit("}", 4)
        flush(4)
        e.emit("}", 3)
        m_main = m_tail = 0
    if m_main:
        e.emit(f"scf.for %i0 = {e.idx(0)} to {e.idx(m_main)} step {e.idx(LUT_MR)} {{", 3)
        tile(LUT_MR, "%i0", 4)
        e.emit("}", 3)
    if m_tail:
        tile(m_tail, e.idx(m_main), 3)
    e.emit("}", 2)
    cl_arg = f"%CL: {cl_ty}, " if classes > 1 else ""
    if out == "bits":
        outs = f"%H: {h_ty}, {cl_arg}%F: {f_ty}, %O: {o_ty}"
    elif out == "float":
        outs = f"%B: {b_ty}, {cl_arg}%S: {s_ty}, %BI: {s_ty}, " + (f"%R: {fo_ty}, " if flt.residual else "") + \
            f"%O: {fo_ty}"
    else:
        outs = f"%C: {c_ty}"
    head = [f"func.func private @{name}(%A: {a_ty}, %W: {w_ty}, %T: {t_ty}, {outs}) {{",
            *e.constants(), f"    %zero = arith.constant dense<0> : {b8}"]
    if rb:
        head.append(f"    %SB = memref.alloca() {{alignment = 64 : i64}} : {sb_ty}")
    return "\n".join([*head, *e.lines, "    return", "}"]) + "\n"


# vpshufb as a call of the intrinsic declared as an LLVM function (LLVM takes
# a function named llvm.* for the intrinsic): llvm.call_intrinsic has no
# declared memory effects, which buffer deallocation refuses; a call is fine.
PSHUFB = "llvm.x86.avx2.pshuf.b"
PSHUFB_TEXT = f'llvm.func @"{PSHUFB}"(vector<32xi8>, vector<32xi8>) -> vector<32xi8>\n'


class _Emitter:
    """MLIR text lines with fresh SSA names and hoisted constants."""

    def __init__(self):
        self.lines: list[str] = []
        self.n = 0
        self.consts: dict[tuple, str] = {}

    def fresh(self, stem: str) -> str:
        self.n += 1
        return f"%{stem}{self.n}"

    def emit(self, s: str, depth: int) -> None:
        self.lines.append("  " * depth + s)

    def val(self, stem: str, rhs: str, depth: int) -> str:
        v = self.fresh(stem)
        self.emit(f"{v} = {rhs}", depth)
        return v

    def const(self, value: int, ty: str) -> str:
        return self.consts.setdefault((value, ty), f"%c{value}_{ty}")

    def idx(self, value: int) -> str:
        return self.consts.setdefault((value, "index"), f"%c{value}")

    def constants(self) -> list[str]:
        return [f"    {name} = arith.constant {v} : {ty}" for (v, ty), name in sorted(self.consts.items())]


# ---------------------------------------------------------------- lowering to the lookup kernel


def _lower_lut(module, op, made, packed) -> bool:
    """op -> a call to the lookup kernel; with its threshold folded in when
    the threshold op is C's only reader. False if op does not fit it."""
    mode = ir.StringAttr(op.attributes["qc.bgemm"]).value
    if mode not in ("xor", "and"):
        return False
    (a, w), (c,) = list(op.inputs), list(op.outputs)
    tys = [_memref(v) for v in (a, w, c)]
    if any(t is None or t.rank != 2 or not _row_major(t) for t in tys):
        return False
    (m, k), n = tys[0].shape, tys[2].shape[1]
    if n % LUT_NC or k > LUT_MAX_K:
        return False
    words = _global_value(module, w)
    if words is None:
        return False
    thr = _threshold_reader(op, c) if mode == "xor" else None
    fill = _zero_fill_before(op, c)
    out_fill = _zero_fill_before(thr, thr.outputs[0]) if thr is not None else None
    flo = _float_reader(module, op, a, c) if mode == "xor" and thr is None and fill is not None else None
    reader = thr if thr is not None else (flo.op if flo is not None else None)
    i64 = ir.IntegerType.get_signless(64)
    at = reader.operation if reader is not None else op.operation
    with ir.InsertionPoint(at), op.location:
        wl = _const_global(module, packed, f"{_global_name(w)}_lut", lut_weights(words.reshape(k, n)), at)
        tab = _const_global(module, packed, f"qc_bgemm_lut_{mode}", lut_tables(mode), at)
        args = [memref.cast(_strided(m, k, i64), a), wl, tab]
        suffix = ""
        if thr is not None:
            h, cls, flips = threshold_tables(thr, k, m, n)
            args.append(_const_global(module, packed, "qc_bthr_h", h, at))
            if len(h) > 1:
                args.append(_const_global(module, packed, "qc_bthr_cls", cls, at))
            args.append(_const_global(module, packed, "qc_bthr_notflip", flips, at))
            args.append(memref.cast(_strided(m, n // LUT_NC, i64), _as_rows(thr.outputs[0], m)))
            out, classes = "bits", len(h)
            suffix = f"{classes}"
        elif flo is not None:
            args += _float_args(module, packed, flo, at)
            out, classes = "float", len(flo.base)
            suffix = f"{classes}{flo.layout.suffix()}"
        else:
            args.append(memref.cast(_strided(m, n, ir.IntegerType.get_signless(32)), c))
            out, classes = ("store" if fill is not None else "add"), 1
        fname = f"qc_bgemm_{m}x{n}x{k}_{mode}_lut{LUT_MR}x{LUT_NC}_{out}{suffix}"
        if fname not in made:
            text = lut_kernel_text(fname, m, n, k, out, classes, flo.layout if flo is not None else None)
            parsed = ir.Module.parse(PSHUFB_TEXT + text)
            decl, *fns = list(parsed.body.operations)  # (parsed stays alive while its ops move)
            if PSHUFB not in made:
                module.body.append(decl)
                made.add(PSHUFB)
            for fn in fns:
                module.body.append(fn)
            made.add(fname)
        func.CallOp([], ir.FlatSymbolRefAttr.get(fname), args)
    if reader is not None:
        _erase_with_reader(op, c, reader, out_fill)
    else:
        if fill is not None:
            fill.erase()
        op.operation.erase()
    return True


def _global_name(v: ir.Value) -> str:
    return ir.FlatSymbolRefAttr(v.owner.attributes["name"]).value


def _global_value(module, v: ir.Value) -> np.ndarray | None:
    """The initial value of a constant global that v is a get_global of."""
    owner = getattr(v.owner, "operation", v.owner)
    if not isinstance(owner, ir.Operation) or owner.name != "memref.get_global":
        return None
    glob = ir.SymbolTable(module.operation)[_global_name(v)]
    attr = glob.attributes["initial_value"] if "initial_value" in glob.attributes else None
    if "constant" not in glob.attributes or not isinstance(attr, ir.DenseElementsAttr):
        return None
    shape = ir.MemRefType(v.type).shape
    if attr.is_splat:
        return np.full(shape, ir.IntegerAttr(attr.get_splat_value()).value, np.int64)
    return np.array(attr).reshape(shape)


def _const_global(module, made: dict, stem: str, data: np.ndarray, at: ir.Operation) -> ir.Value:
    """A get_global (before `at`) of a private constant global holding data,
    one per content (the name ends in a hash of it)."""
    elem = ir.F32Type.get() if data.dtype == np.float32 else ir.IntegerType.get_signless(data.dtype.itemsize * 8)
    ty = ir.MemRefType.get(list(data.shape), elem)
    name = f"{stem}_{hashlib.sha1(repr(data.shape).encode() + data.tobytes()).hexdigest()[:8]}"
    if name not in made:
        _define_global(module, name, ty, data)
        made[name] = name
    return _get_global(at, name, ty)


def _block_ops(op) -> list[ir.Operation]:
    return [o.operation for o in op.operation.block.operations]


def _zero_fill_before(op, c: ir.Value):
    """The op that zeroes C as the last use of C's buffer before op, if any:
    a linalg.fill of 0, or a linalg.copy from a buffer that holds nothing
    but zeros (the frontend's zero tensors are shared, and bufferization
    copies the shared one into each GEMM's output)."""
    ops = _block_ops(op)
    users = set(_uses_of_buffer(_root(c)))
    before = [o for o in ops[:ops.index(op.operation)] if o in users]
    if not before or before[-1].operands[-1] != c:
        return None
    last = before[-1]
    if last.name == "linalg.fill" and _is_zero(last.operands[0]):
        return last
    if last.name == "linalg.copy" and _only_zeros(last):
        return last
    return None


def _is_zero(v: ir.Value) -> bool:
    owner = getattr(v.owner, "operation", None)
    return owner is not None and owner.name == "arith.constant" and \
        isinstance(owner.attributes["value"], ir.IntegerAttr) and ir.IntegerAttr(owner.attributes["value"]).value == 0


def _only_zeros(copy: ir.Operation) -> bool:
    """Whether the source of `copy` is an alloc that only zero fills have
    written before it (others only read it there: copies)."""
    src = copy.operands[0]
    if getattr(getattr(src.owner, "operation", None), "name", None) != "memref.alloc":
        return False
    ops = [o.operation for o in copy.block.operations]
    for u in _uses_of_buffer(src):
        if u not in ops:
            return False
        if ops.index(u) >= ops.index(copy):
            continue
        if u.name == "linalg.fill" and _is_zero(u.operands[0]) and u.operands[1] == src:
            continue
        if u.name == "linalg.copy" and u.operands[0] == src and u.operands[1] != src:
            continue
        return False
    return True


def _sole_reader(op, c: ir.Value):
    """The one linalg.generic other than op that uses C, if C is a buffer of
    its own that only op, that op and C's inits (fills or copies into C,
    dead once C goes) use."""
    if getattr(getattr(c.owner, "operation", None), "name", None) != "memref.alloc":
        return None
    users = _uses_of_buffer(c)
    writes = [u for u in users if u.name in ("linalg.fill", "linalg.copy") and _root(u.operands[-1]) == c
              and all(_root(v) != c for v in u.operands[:-1])]
    if any(u.name != "linalg.generic" and u not in writes for u in users):
        return None
    others = {u for u in users if u.name == "linalg.generic"} - {op.operation}
    if len(others) != 1 or op.operation not in users:
        return None
    reader = others.pop()
    ops = _block_ops(op)
    if reader not in ops or ops.index(reader) < ops.index(op.operation):
        return None
    return reader.opview


def _threshold_reader(op, c: ir.Value):
    """The frontend's threshold op (qc.op = "threshold", qc.k = K) reading C,
    if C is a buffer of its own that nothing else reads and the threshold's
    other operands are constants: [P, (corr), 2 t + flip] -> bits."""
    thr = _sole_reader(op, c)
    if thr is None or "qc.k" not in thr.attributes or "qc.op" not in thr.attributes \
            or ir.StringAttr(thr.attributes["qc.op"]).value != "threshold":
        return None
    ins = list(thr.inputs)
    if _root(ins[0]) != c or len(ins) not in (2, 3) or any(_root(v) == c for v in ins[1:]):
        return None
    if any(getattr(getattr(v.owner, "operation", None), "name", None) != "memref.get_global" for v in ins[1:]):
        return None
    o = _memref(thr.outputs[0])
    if o is None or not o.has_static_shape or not _row_major(_as_2d(o)):
        return None
    return thr


def _as_2d(t: ir.MemRefType) -> ir.MemRefType:
    rows = int(np.prod(t.shape[:-1]))
    return ir.MemRefType.get([rows, t.shape[-1]], t.element_type) if t.rank != 2 else t


def _as_rows(v: ir.Value, m: int) -> ir.Value:
    """[*rows, FW] (contiguous) collapsed to [M, FW]."""
    t = ir.MemRefType(v.type)
    if t.rank == 2:
        return v
    return memref.collapse_shape(_as_2d(t), v, [list(range(t.rank - 1)), [t.rank - 1]])


def threshold_tables(thr, k_words: int, m: int, n: int):
    """The threshold op's constants, for comparing the popcounts P directly.
    bit = (dot >= t) xor flip with dot = K - 2P + corr[p], and for integers
        K - 2P + corr >= t  <=>  P <= h = floor((K + corr - t) / 2),
    so bit = (P > h) xor (not flip). h is clamped to [-1, 64 * words]
    (the range of P, and of i16). Positions with equal rows of h share one
    class: H [classes, N] i16, cls [M] i32 (the class of row m, whose
    position is m mod the corr's positions), F [N/64] i64 the not-flip bits."""
    module = thr.operation.parent
    while module.name != "builtin.module":
        module = module.parent
    module = module.opview
    ins = list(thr.inputs)
    rowk = ir.IntegerAttr(thr.attributes["qc.k"]).value
    tf = _global_value(module, ins[-1]).reshape(-1).astype(np.int64)
    t, flip = tf >> 1, tf & 1
    thr_ = (rowk - t)[None, :]
    if len(ins) == 3:
        corr = _global_value(module, ins[1]).astype(np.int64)
        thr_ = thr_ + corr.reshape(-1, n)
    h = np.clip(np.floor_divide(thr_, 2), -1, 64 * k_words).astype(np.int16)
    uniq, inv = np.unique(h, axis=0, return_inverse=True)
    cls = np.tile(inv.reshape(-1), m // len(inv)).astype(np.int32)
    notflip = (1 - flip).reshape(n // LUT_NC, LUT_NC).astype(np.uint64)
    flips = (notflip << np.arange(LUT_NC, dtype=np.uint64)).sum(axis=1, dtype=np.uint64).view(np.int64)
    return uniq, cls, flips


def _erase_with_reader(op, c: ir.Value, reader, out_fill) -> None:
    """Erases the bgemm, C's reader (threshold or float output), C (its
    inits and views) and the zero fill of the reader's output, if any: the
    kernel writes every element."""
    reader.operation.erase()
    op.operation.erase()
    if out_fill is not None:
        out_fill.erase()
    for u in _uses_of_buffer(c):
        u.erase()
    _erase_views(c)
    c.owner.erase()


def _erase_views(v: ir.Value) -> None:
    for use in list(v.uses):
        view = use.owner.operation
        for r in view.results:
            _erase_views(r)
        view.erase()


# ---------------------------------------------------------------- the float epilogue
#
# A binary layer with float output ends in the frontend's scale_bias op,
#     y[n, f, p] = float(K - 2 P[m, f] + corr[p, f]) * s[f] + b[f],   m = n * pos + p,
# which linalg fusion may merge with a residual Add (y + R) and strip of its
# tag. Its loops read P across channels, 4 * N bytes apart, for a write
# order along positions: a pass over C costing a third of the GEMM. The
# lookup kernel computes the same y from its registers instead. The op is
# recognized by its body, and its indexing maps are checked by evaluating
# them on every point of its iteration space: they must read P[m, f] and
# write O at the NCHW place of (m, f), so any fused loop order is accepted
# and anything else left alone.

MAX_POINTS = 1 << 23  # iteration spaces enumerated to check a float reader's maps


@dataclass
class FloatReader:
    op: object  # the linalg.generic
    base: np.ndarray  # [classes, N] int32: K + corr[p, f] per class of rows
    cls: np.ndarray  # [M] int32: each row's class
    scale: np.ndarray  # [N] float32 (0 past F)
    bias: np.ndarray  # [N] float32
    layout: FloatLayout
    out: ir.Value
    residual: ir.Value | None


def _float_reader(module, op, a: ir.Value, c: ir.Value) -> FloatReader | None:
    """C's only reader, if it computes the scale_bias (+ R) above from
    constants, writes every element of a contiguous f32 output, and nothing
    between the GEMM and it touches A (the kernel runs in its place)."""
    g = _sole_reader(op, c)
    if g is None or not all("parallel" in str(t) for t in g.attributes["iterator_types"]):
        return None
    ins, outs = list(g.inputs), list(g.outputs)
    if len(outs) != 1 or not _contiguous_f32(outs[0]):
        return None
    body = _float_body(g)
    if body is None:
        return None
    for v, role in zip(ins, body.roles):
        if (role == "p") != (_root(v) == c) or (role == "res" and not _contiguous_f32(v)):
            return None
    ops = _block_ops(op)
    if _touches(ops[ops.index(op.operation) + 1:ops.index(g.operation)], [a]):
        return None
    return _float_values(module, g, body, ir.MemRefType(c.type).shape)


def _contiguous_f32(v: ir.Value) -> bool:
    t = _memref(v)
    if t is None or not t.has_static_shape or not isinstance(t.element_type, ir.F32Type):
        return False
    strides, _ = t.get_strides_and_offset()
    return strides == [int(np.prod(t.shape[i + 1:])) for i in range(t.rank)]


# ---- the body: y = float((K - (P << 1)) + corr) * s + b, then + R. Commutative
# operands in either order; s and b per channel (inputs from constant globals)
# or scalar constants (splats folded into the body), a multiplication by 1
# folded away (s = 1), an add of -0.0 (b = -0.0: exact, y + -0.0 = y).


@dataclass
class FloatBody:
    k: int  # K
    roles: list[str]  # per input: p, corr, s, b or res
    consts: dict  # s and b when they are scalar constants


def _float_body(g) -> FloatBody | None:
    """g's body as the scale_bias above, with or without the residual add:
    every input used once; per-channel operands are the inputs from globals."""
    block = g.regions[0].blocks[0]
    ins = list(g.inputs)
    glob = {i for i, v in enumerate(ins)
            if getattr(getattr(_root(v).owner, "operation", None), "name", None) == "memref.get_global"}
    y = list(block.operations)[-1].operands[0]
    found = _scale_bias(y, block, glob)
    for n, other in _arg_and_other(_defined_by(y, "arith.addf"), block):
        if found is None and n not in glob:
            found = _scale_bias(other, block, glob)
            if found is not None:
                found.roles[n] = "res"
    if found is None or sorted(found.roles) != list(range(len(ins))):
        return None
    roles = [found.roles[i] for i in range(len(ins))]
    if roles.count("p") != 1 or any(r in ("corr", "s", "b") and i not in glob for i, r in enumerate(roles)):
        return None
    return FloatBody(found.k, roles, found.consts)


def _scale_bias(v: ir.Value, block, glob) -> FloatBody | None:
    """float(dot) * s + b; roles as a dict of input numbers."""
    for b, rest in _term(v, "arith.addf", block, glob, -0.0):
        for s, fl in _term(rest, "arith.mulf", block, glob, 1.0):
            conv = _defined_by(fl, "arith.sitofp")
            dot = _dot(conv.operands[0], block) if conv is not None else None
            if dot is None:
                continue
            roles, consts = dict(dot[1]), {}
            for name, (kind, x) in (("s", s), ("b", b)):
                if kind == "const":
                    consts[name] = x
                elif x in roles:
                    break
                else:
                    roles[x] = name
            else:
                return FloatBody(dot[0], roles, consts)
    return None


def _term(v: ir.Value, name: str, block, glob, neutral: float):
    """(operand, rest) for v = rest <name> operand, either order, the operand
    ("arg", input number) of a global input or ("const", value); then v
    itself as rest with the neutral operand."""
    op = _defined_by(v, name)
    if op is not None:
        x, y = op.operands
        for operand, rest in ((x, y), (y, x)):
            n = _block_arg(operand, block)
            if n is not None and n in glob:
                yield ("arg", n), rest
            c = _float_constant(operand)
            if c is not None:
                yield ("const", c), rest
    yield ("const", neutral), v


def _float_constant(v: ir.Value) -> float | None:
    owner = _defined_by(v, "arith.constant")
    if owner is None or not isinstance(owner.attributes["value"], ir.FloatAttr) \
            or not isinstance(owner.attributes["value"].type, ir.F32Type):
        return None
    return ir.FloatAttr(owner.attributes["value"]).value


def _dot(v: ir.Value, block) -> tuple[int, dict] | None:
    """K - (P << 1), plus corr if added: (K, roles)."""
    add = _defined_by(v, "arith.addi")
    for nc, rest in _arg_and_other(add, block):
        kp = _k_minus_2p(rest, block)
        if kp is not None and kp[1] != nc:
            return kp[0], {kp[1]: "p", nc: "corr"}
    kp = _k_minus_2p(v, block)
    return (kp[0], {kp[1]: "p"}) if kp is not None else None


def _k_minus_2p(v: ir.Value, block) -> tuple[int, int] | None:
    sub = _defined_by(v, "arith.subi")
    if sub is None:
        return None
    k_dot, shl = _int_constant(sub.operands[0]), _defined_by(sub.operands[1], "arith.shli")
    if k_dot is None or shl is None or _int_constant(shl.operands[1]) != 1:
        return None
    n = _block_arg(shl.operands[0], block)
    return (k_dot, n) if n is not None else None


def _defined_by(v: ir.Value, name: str):
    if not isinstance(v, ir.OpResult):
        return None
    owner = getattr(v.owner, "operation", v.owner)
    return owner if owner.name == name else None


def _block_arg(v: ir.Value, block) -> int | None:
    if not isinstance(v, ir.BlockArgument):
        return None
    return v.arg_number if v.owner == block else None


def _arg_and_other(op, block):
    """(block-argument number, the other operand) of a commutative op, each way round."""
    if op is None:
        return
    x, y = op.operands
    for arg, other in ((x, y), (y, x)):
        n = _block_arg(arg, block)
        if n is not None:
            yield n, other


def _int_constant(v: ir.Value) -> int | None:
    owner = _defined_by(v, "arith.constant")
    if owner is None or not isinstance(owner.attributes["value"], ir.IntegerAttr):
        return None
    return ir.IntegerAttr(owner.attributes["value"]).value


# ---- the maps, checked point by point


def _float_values(module, g, body: FloatBody, c_shape) -> FloatReader | None:
    """Reads the constants at the (m, f) each point of g's iteration space
    maps them to, and checks that O (and R) are written (read) at the NCHW
    place of (m, f), every element once."""
    grid = _iteration_grid(g)
    if grid is None:
        return None
    m, n = c_shape
    roles = body.roles
    ins, out = list(g.inputs), g.outputs[0]
    maps = [ir.AffineMapAttr(x).value for x in g.attributes["indexing_maps"]]
    at = [_addresses(v, mp, grid) for v, mp in zip([*ins, out], maps)]
    if any(x is None for x in at):
        return None
    rows, chans = np.divmod(at[roles.index("p")], n)
    f = int(chans.max()) + 1
    points = rows.size
    if points != m * f or np.unique(rows * n + chans).size != points:
        return None
    pos = _positions(rows, chans, at[-1], m, f)
    if pos is None or np.prod(ir.MemRefType(out.type).shape) != points:
        return None
    res = [at[i] for i, r in enumerate(roles) if r == "res"]
    if res and not np.array_equal(res[0], at[-1]):
        return None
    per = {name: np.full(points, x, np.float32) for name, x in body.consts.items()}
    for i, role in enumerate(roles):
        if role in ("corr", "s", "b"):
            per[role] = _global_value(module, _root(ins[i])).reshape(-1)[at[i]]
    scale, bias = _per_channel(per["s"], chans, n), _per_channel(per["b"], chans, n)
    if scale is None or bias is None:
        return None
    base = np.full((m, n), body.k, np.int64)
    if "corr" in per:
        base[rows, chans] += per["corr"].astype(np.int64)
    if np.abs(base).max() >= 2**31 - 2 * 64 * 512:
        return None
    uniq, inv = np.unique(base, axis=0, return_inverse=True)
    return FloatReader(g, uniq.astype(np.int32), inv.reshape(-1).astype(np.int32), scale, bias,
                       FloatLayout(f, pos, bool(res)), out, ins[roles.index("res")] if res else None)


def _iteration_grid(g) -> np.ndarray | None:
    """[loops, points]: every point of g's loops, bounds from the operand dims
    that a loop indexes directly."""
    maps = [ir.AffineMapAttr(x).value for x in g.attributes["indexing_maps"]]
    bounds: dict[int, int] = {}
    for v, mp in zip(g.operands, maps):
        for e, size in zip(mp.results, ir.MemRefType(v.type).shape):
            if isinstance(e, ir.AffineDimExpr):
                bounds[e.position] = size
    nd = maps[0].n_dims
    if sorted(bounds) != list(range(nd)) or np.prod([bounds[d] for d in range(nd)]) > MAX_POINTS:
        return None
    return np.indices([bounds[d] for d in range(nd)]).reshape(nd, -1)


def _addresses(v: ir.Value, mp: ir.AffineMap, grid: np.ndarray) -> np.ndarray | None:
    """The element offset (from the buffer's start; from the view's own start
    if its offset is dynamic) that each point reads or writes."""
    t = ir.MemRefType(v.type)
    strides, offset = t.get_strides_and_offset()
    dyn = ir.ShapedType.get_dynamic_stride_or_offset()
    if dyn in strides or mp.n_symbols:
        return None
    total = np.zeros(grid.shape[1], np.int64) + (0 if offset == dyn else offset)
    for e, stride in zip(mp.results, strides):
        idx = _evaluate(e, grid)
        if idx is None:
            return None
        total = total + idx * stride
    return total


_AFFINE_OPS = ((ir.AffineAddExpr, np.add), (ir.AffineMulExpr, np.multiply),
               (ir.AffineFloorDivExpr, np.floor_divide), (ir.AffineModExpr, np.mod))


def _evaluate(e, grid: np.ndarray):
    if isinstance(e, ir.AffineDimExpr):
        return grid[e.position].astype(np.int64)
    if isinstance(e, ir.AffineConstantExpr):
        return np.int64(e.value)
    for cls, fn in _AFFINE_OPS:
        if isinstance(e, cls):
            lhs, rhs = _evaluate(e.lhs, grid), _evaluate(e.rhs, grid)
            return None if lhs is None or rhs is None else fn(lhs, rhs)
    return None


def _positions(rows, chans, out_at, m: int, f: int) -> int | None:
    """pos, if out_at = (m // pos) f pos + f pos + m % pos relative to the
    output's first element (N C H W with pos = H W)."""
    out_rel = out_at - out_at.min()
    if f > 1:
        first = np.flatnonzero((rows == 0) & (chans == 0))[0]
        second = np.flatnonzero((rows == 0) & (chans == 1))[0]
        pos = int(out_rel[second] - out_rel[first])
    else:
        pos = m
    if pos < 1 or m % pos:
        return None
    want = (rows // pos) * (f * pos) + chans * pos + rows % pos
    return pos if np.array_equal(out_rel, want) else None


def _per_channel(values: np.ndarray, chans: np.ndarray, n: int) -> np.ndarray | None:
    """[N] float32 from the value read at each point, if it depends on the channel only."""
    out = np.zeros(n, np.float32)
    out[chans] = values
    same = out[chans].view(np.int32) == values.astype(np.float32).view(np.int32)
    return out if same.all() else None


def _float_args(module, made: dict, fr: FloatReader, at) -> list[ir.Value]:
    """The float epilogue's operands: B, (cls), S, Bi, (R), O."""
    args = [_const_global(module, made, "qc_bflt_base", fr.base, at)]
    if len(fr.base) > 1:
        args.append(_const_global(module, made, "qc_bflt_cls", fr.cls, at))
    args.append(_const_global(module, made, "qc_bflt_scale", fr.scale, at))
    args.append(_const_global(module, made, "qc_bflt_bias", fr.bias, at))
    if fr.residual is not None:
        args.append(_flat(fr.residual))
    args.append(_flat(fr.out))
    return args


def _flat(v: ir.Value) -> ir.Value:
    """A contiguous f32 memref as memref<total x f32, strided<[1], offset: ?>>."""
    t = ir.MemRefType(v.type)
    total = int(np.prod(t.shape))
    _, offset = t.get_strides_and_offset()
    dyn = ir.ShapedType.get_dynamic_stride_or_offset()
    if t.rank != 1:
        identity = isinstance(t.layout, ir.AffineMapAttr) and t.layout.value == ir.AffineMap.get_identity(t.rank)
        layout = None if identity else ir.StridedLayoutAttr.get(offset, [1])
        v = memref.collapse_shape(ir.MemRefType.get([total], t.element_type, layout), v, [list(range(t.rank))])
    return memref.cast(ir.MemRefType.get([total], t.element_type, ir.StridedLayoutAttr.get(dyn, [1])), v)
