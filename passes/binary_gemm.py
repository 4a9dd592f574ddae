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
written; a zero fill of C before the GEMM folds into a plain store.

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
from .gemm_epilogue import _root, _uses_of_buffer

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
        with ir.InsertionPoint(module.body), ir.Location.unknown():
            g = ir.Operation.create("memref.global", attributes={
                "sym_name": ir.StringAttr.get(name),
                "sym_visibility": ir.StringAttr.get("private"),
                "type": ir.TypeAttr.get(ty),
                "initial_value": ir.DenseElementsAttr.get(panels, type=ir.IntegerType.get_signless(64)),
                "constant": ir.UnitAttr.get(),
                "alignment": ir.IntegerAttr.get(ir.IntegerType.get_signless(64), 64),
            })
        g.move_before(module.body.operations[0])
        packed[sym] = name
    with ir.InsertionPoint(owner), ir.Location.unknown():
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


def lut_kernel_text(name: str, m: int, n: int, k: int, out: str, classes: int = 1) -> str:
    """The MLIR text of one lookup kernel. out: "store" (C = P), "add"
    (C += P), or "bits": the threshold epilogue, O[m, t] = the 64 bits
    (P[m, 64t + b] > H[cls[m], 64t + b]) xor F[t], so P is never stored."""
    a_ty = f"memref<{m}x{k}xi64, strided<[{k}, 1], offset: ?>>"
    w_ty = f"memref<{n // LUT_NC}x{k}x8x128xi8>"
    t_ty = "memref<256x32xi8>"
    c_ty = f"memref<{m}x{n}xi32, strided<[{n}, 1], offset: ?>>"
    h_ty, cl_ty, f_ty = f"memref<{classes}x{n}xi16>", f"memref<{m}xi32>", f"memref<{n // LUT_NC}xi64>"
    o_ty = f"memref<{m}x{n // LUT_NC}xi64, strided<[{n // LUT_NC}, 1], offset: ?>>"
    b8, b16, h16 = "vector<32xi8>", "vector<16xi8>", "vector<16xi16>"
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
            cls = e.idx(0)
            if classes > 1:
                c32 = e.val("cl", f"memref.load %CL[{ri[r]}] : {cl_ty}", depth)
                cls = e.val("cl", f"arith.index_cast {c32} : i32 to index", depth)
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

    m_main, m_tail = m - m % LUT_MR, m % LUT_MR
    e.emit(f"scf.for %t = {e.idx(0)} to {e.idx(n // LUT_NC)} step {e.idx(1)} {{", 2)
    e.emit(f"%j0 = arith.muli %t, {e.idx(LUT_NC)} : index", 3)
    if m_main:
        e.emit(f"scf.for %i0 = {e.idx(0)} to {e.idx(m_main)} step {e.idx(LUT_MR)} {{", 3)
        tile(LUT_MR, "%i0", 4)
        e.emit("}", 3)
    if m_tail:
        tile(m_tail, e.idx(m_main), 3)
    e.emit("}", 2)
    if out == "bits":
        outs = f"%H: {h_ty}, " + (f"%CL: {cl_ty}, " if classes > 1 else "") + f"%F: {f_ty}, %O: {o_ty}"
    else:
        outs = f"%C: {c_ty}"
    head = [f"func.func private @{name}(%A: {a_ty}, %W: {w_ty}, %T: {t_ty}, {outs}) {{",
            *e.constants(), f"    %zero = arith.constant dense<0> : {b8}"]
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
    i64 = ir.IntegerType.get_signless(64)
    at = thr.operation if thr is not None else op.operation
    with ir.InsertionPoint(at), op.location:
        wl = _const_global(module, packed, f"{_global_name(w)}_lut", lut_weights(words.reshape(k, n)), at)
        tab = _const_global(module, packed, f"qc_bgemm_lut_{mode}", lut_tables(mode), at)
        args = [memref.cast(_strided(m, k, i64), a), wl, tab]
        if thr is not None:
            h, cls, flips = threshold_tables(thr, k, m, n)
            args.append(_const_global(module, packed, "qc_bthr_h", h, at))
            if len(h) > 1:
                args.append(_const_global(module, packed, "qc_bthr_cls", cls, at))
            args.append(_const_global(module, packed, "qc_bthr_notflip", flips, at))
            args.append(memref.cast(_strided(m, n // LUT_NC, i64), _as_rows(thr.outputs[0], m)))
            out, classes = "bits", len(h)
        else:
            args.append(memref.cast(_strided(m, n, ir.IntegerType.get_signless(32)), c))
            out, classes = ("store" if fill is not None else "add"), 1
        fname = f"qc_bgemm_{m}x{n}x{k}_{mode}_lut{LUT_MR}x{LUT_NC}_{out}" + (f"{classes}" if out == "bits" else "")
        if fname not in made:
            parsed = ir.Module.parse(PSHUFB_TEXT + lut_kernel_text(fname, m, n, k, out, classes))
            decl, *fns = list(parsed.body.operations)  # (parsed stays alive while its ops move)
            if PSHUFB not in made:
                module.body.append(decl)
                made.add(PSHUFB)
            for fn in fns:
                module.body.append(fn)
            made.add(fname)
        func.CallOp([], ir.FlatSymbolRefAttr.get(fname), args)
    if thr is not None:
        _erase_threshold(op, c, thr, out_fill)
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
    elem = ir.IntegerType.get_signless(data.dtype.itemsize * 8)
    ty = ir.MemRefType.get(list(data.shape), elem)
    name = f"{stem}_{hashlib.sha1(repr(data.shape).encode() + data.tobytes()).hexdigest()[:8]}"
    if name not in made:
        with ir.InsertionPoint(module.body), ir.Location.unknown():
            g = ir.Operation.create("memref.global", attributes={
                "sym_name": ir.StringAttr.get(name),
                "sym_visibility": ir.StringAttr.get("private"),
                "type": ir.TypeAttr.get(ty),
                "initial_value": ir.DenseElementsAttr.get(np.ascontiguousarray(data), type=elem),
                "constant": ir.UnitAttr.get(),
                "alignment": ir.IntegerAttr.get(ir.IntegerType.get_signless(64), 64),
            })
        g.move_before(module.body.operations[0])
        made[name] = name
    with ir.InsertionPoint(at), ir.Location.unknown():
        return ir.Operation.create("memref.get_global", results=[ty],
                                   attributes={"name": ir.FlatSymbolRefAttr.get(name)}).result


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


def _threshold_reader(op, c: ir.Value):
    """The frontend's threshold op (qc.op = "threshold", qc.k = K) reading C,
    if C is a buffer of its own that nothing else reads and the threshold's
    other operands are constants: [P, (corr), 2 t + flip] -> bits."""
    if getattr(getattr(c.owner, "operation", None), "name", None) != "memref.alloc":
        return None
    users = _uses_of_buffer(c)
    thr = [u for u in users if u.name == "linalg.generic" and "qc.k" in u.attributes
           and ir.StringAttr(u.attributes["qc.op"]).value == "threshold"]
    writes = [u for u in users if u.name in ("linalg.fill", "linalg.copy") and _root(u.operands[-1]) == c
              and all(_root(v) != c for v in u.operands[:-1])]  # C's init: dead once C goes
    if len(thr) != 1 or any(u.name != "linalg.generic" and u not in writes for u in users):
        return None
    thr = thr[0].opview
    if {u for u in users if u.name == "linalg.generic"} != {op.operation, thr.operation}:
        return None
    ins = list(thr.inputs)
    if _root(ins[0]) != c or len(ins) not in (2, 3) or any(_root(v) == c for v in ins[1:]):
        return None
    if any(getattr(getattr(v.owner, "operation", None), "name", None) != "memref.get_global" for v in ins[1:]):
        return None
    o = _memref(thr.outputs[0])
    if o is None or not o.has_static_shape or not _row_major(_as_2d(o)):
        return None
    ops = _block_ops(op)
    if ops.index(thr.operation) < ops.index(op.operation):
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


def _erase_threshold(op, c: ir.Value, thr, out_fill) -> None:
    """Erases the bgemm, the threshold op, C (its inits and views) and the
    zero fill of the threshold's output: the kernel writes every word."""
    thr.operation.erase()
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
