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

W is a constant: it is packed at compile time into panels Wp[F/NR][K][NR],
so the kernel reads it contiguously. F is a multiple of 64 (the frontend
pads the output channels to whole words), so there is no column tail; the
row tail (M % MR) gets its own smaller tile.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from qc.mlir import func, ir, memref

from .base import Pass, collect_ops, run_upstream

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

    def apply(self, module: ir.Module) -> None:
        vl = self.vector_bits // 64
        if vl < 1 or self.nr % vl or 64 % self.nr or self.mr < 1:
            from qc.errors import PassFailed

            raise PassFailed(self.name, f"bad tile mr={self.mr} nr={self.nr} for {vl} 64-bit lanes "
                                        "(nr a multiple of the lanes and a divisor of 64)")
        made: set[str] = set()
        packed: dict[str, str] = {}
        for op in collect_ops(module.operation, ("linalg.generic",)):
            if "qc.op" in op.attributes and ir.StringAttr(op.attributes["qc.op"]).value == "bgemm":
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
        return LowerBinaryGemm(mr=4, nr=8, vector_bits=256)  # 16 ymm: 8 acc + 2 W + 1 A + 3 const + 2 temp
    if target.arch == "x86_64" and target.vector_bits == 512:
        return LowerBinaryGemm(mr=6, nr=16, vector_bits=512)  # 32 zmm: 12 acc + 2 W + 1 A (vpopcntq: no temps)
    if target.arch == "aarch64":
        return LowerBinaryGemm(mr=3, nr=8, vector_bits=128)  # 32 v: 12 acc + 4 W + 3 A + eor/cnt temps
    if target.arch == "riscv64" and target.rvv_vlen:
        bits = 2 * target.rvv_vlen  # LMUL 2, as the fp32 GEMM
        return LowerBinaryGemm(mr=4, nr=2 * bits // 64, vector_bits=bits)
    return LowerBinaryGemm(mr=4, nr=4, vector_bits=128)
