"""qc-lower-qgemm: 8-bit integer contractions on memrefs (i8/u8 x i8/u8 -> i32
linalg.matmul / batch_matmul, and GEMM-shaped linalg.generic such as
qc-qconv-to-gemm's) → a packed, register-blocked integer GEMM.

C[M, N] += A[M, K] · B[K, N] with 8-bit A and B and an i32 C is computed
exactly: both operands are widened to i16 and multiplied in pairs of k,

    C[i, j] += A[i, 2p] * B[2p, j] + A[i, 2p+1] * B[2p+1, j]

which is x86's vpmaddwd (i16 pairs -> one i32 sum per lane). Widened 8-bit
values lie in [-128, 255], so a pair sum |a*b + c*d| <= 2 * 255 * 255 =
130,050 is exact in i32 (vpmaddwd only wraps for two -32768 * -32768
products), and the i32 accumulation wraps exactly as the frontend's int32
arithmetic does. (vpmaddubsw would do twice the work per instruction but
saturates u8 x s8 pair sums at 16 bits: 2 * 255 * 127 = 64,770 > 32,767, a
wrong answer on real models.)

Layouts (an i32 lane holds one k pair, the even k in its low half):
- A is packed into row panels Ap[M/MR][K/2][MR] of i16 pairs: at compile time
  when it is a constant (a convolution's weights), else by a wrapper that
  packs it at run time before the threads start (a MatMul's activations).
- B is packed into column panels [K/2][NR] of i16 pairs: at compile time when
  it is a constant (a MatMul's weights, kernel mode p), else per KC block into
  the calling thread's scratch buffer right before every row tile uses it
  (mode s: from a matrix, e.g. a 1x1 convolution's input; mode i: gathered
  straight from the padded image of qc-qconv-to-gemm's im2col, which is never
  written).

The micro-kernel keeps an MR x NR tile of C in MR * NR/VL vectors of i32
across the k loop; per k pair it loads NR/VL pair vectors of B, broadcasts
MR pairs of A, and accumulates sext(a) * sext(b) summed over even and odd
i16 lanes. That is portable vector IR; LLVM matches it to vpmaddwd + vpaddd
on x86 (test/codegen/qgemm_x86_64_v3.onnxtxt) and fuses the pair into
vpdpwssd with AVX-512 VNNI (qgemm_x86_64_vnni.onnxtxt; no saturation
either). ISAs without a pair multiply-add get the split form (`split`):
each B vector is cut once per k pair into its even and odd halves, each A
pair into two scalars, and every accumulator takes two multiply-adds by a
broadcast scalar: smlal + mla on NEON (qgemm_aarch64.onnxtxt), where the
widening form needed smull + uzp1/uzp2 + two adds per accumulator. On RVV
(`planar`) a packed B row of pairs holds instead the NR i16 values of the
even k, then those of the odd k, and A's pair is read as two i16 scalars,
so both multiply-adds are the widening vwmacc.vx straight from an i16
load, with no shifts (qgemm_riscv64_rvv128.onnxtxt).

Dot-product ISAs (`dot`) take four k at once: a lane of A and of B holds
k-quads of bytes, Ap[M/MR][K/4][MR] and [K/4][NR], and the micro-kernel
adds the four byte products per i32 lane with one instruction, which
neither saturates nor wraps before the i32 sum (|4 * 255 * 128| < 2^31):
AVX-512 VNNI / AVX-VNNI's vpdpbusd (u8 x s8; qgemm_x86_64_v3_vnni.onnxtxt,
qgemm_x86_64_v4_vnni_dot.onnxtxt) and
AArch64's sdot / udot (s8 x s8, u8 x u8, by vector element;
qgemm_aarch64_dotprod.onnxtxt). Where the signs do not fit the instruction,
the bytes of the run-time operand x (the one not packed at compile time)
are xor'ed with 0x80 while they are packed, which reads s8 x as the u8
x + 128 and u8 x as the s8 x - 128, and the constant side w carries the
exact correction -128 * sum_k w (or +128 * sum_k w) as one more k-quad row
of its packed array, which the kernel adds when it starts the first cache
block. Both operands run-time (or both constant) keep the pairs. The
instruction is a helper function the kernel calls (passes/qgemm_dot.py),
defined by qc-lower-to-llvm as the target's intrinsic, or (`emulate_dot`)
as portable vector code, so the same kernels can be checked on any CPU.
With AMX-INT8 (`amx`), a GEMM whose constant A has whole 16-row tiles and
one cache block multiplies each row tile on the tile unit instead, from the
same packed B and with the same correction and requantization
(passes/qgemm_amx.py).

As in qc-lower-gemm, the runtime's threads split the column panels of each
kernel (`qc.parallel_kernels`); the scratch is sized in 4-byte units, which
an i32 panel uses as they are. Tails: M % MR rows get a smaller tile; the
last partial panel of columns loads and stores C with masks (packed B is
zero-padded; gathered B lanes past N are never stored). An odd K pairs the
last k with zero.

The requantization after a GEMM (the generic that reads C and writes the
layer's 8-bit output) runs in the kernel on each register tile once its k
loop is done, and C is never stored (passes/qgemm_epilogue.py says which
are taken): C starts from zeros, one cache block holds all of K, A is
constant. Where the requantization first adds a per-row constant to the
sums (Requant.start_addition), the accumulators start from it instead of
zeros: one vpaddd fewer per vector of sums. That k loop is kept a loop (an
LLVM loop annotation): unrolled, LLVM's scheduler interleaved the dot
products with the requantization and spilled the B vectors (the int8
MobileNet block ran 7% slower than with kernel and requantization loop
apart; with the loop kept, 5% faster). On AVX2 (`packs`), where B is packed
per panel (mode s) and the requantization ends by clamping to bytes, each
tile row of four vectors is narrowed at once by two vpackssdw and a
vpacksswb (`byte_pack.emit_packs`), which work within 128-bit lanes: the
panel's columns are packed in the order that leaves the bytes in order,
and no cross-lane shuffle is needed (per 32 outputs, 4 shuffles and 4
stores instead of 12 and 4). Where the sums feed only the high word of the
requantization's product, its even and odd products are merged by one
vshufps per vector, which leaves lanes 1 and 2 of each four swapped
(`vector_body.quad_order`): the packing's order undoes that too, and a
vpshufd and a vpblendd per vector are saved. Together the int8 MobileNet
block ran 1-2% faster. (The same quad order alone, for the f32 output of
its project conv, cost a vpshufd per packed vector and ran 1% slower.)
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from qc.errors import PassFailed
from qc.mlir import ir

from . import byte_pack, qgemm_amx, qgemm_epilogue
from .base import Pass, collect_ops, run_upstream
from .qgemm_dot import Dot, dot_declaration, groups, pairs, plan_dot, wrap32
from .vector_body import quad_order, splat
from .lower_gemm import (
    Im2col,
    _all_operands,
    _batch_slice,
    _collapse,
    _Emitter,
    _implicit_im2col,
    _pitched_view,
    _record_parallel_kernel,
    _root,
    _row_major,
    _row_slice,
    balanced_kc,
    constant_global,
    contraction_dims,
    pitched_columns,
    pitched_index_of,
    split_masks_of,
)

# The most bytes of row starts (16 i32 per row of A) a tile-unit kernel keeps
# on its stack, made once per call: up to 512 rows. More rows add their
# starts to the sums row by row, as the vector kernels do.
START_TILE_BYTES = 32 << 10

# How B reaches the micro-kernel (the kernel name's letter).
B_MODES = {
    "p": "B packed at compile time",
    "s": "B packed per panel at run time",
    "i": "B gathered per panel from the image (implicit im2col)",
}


@dataclass(frozen=True)
class QTiles:
    mr: int  # rows of the register tile
    nr: int  # columns of the register tile (a multiple of vl)
    vl: int  # i32 lanes per vector
    kc: int  # k pairs per cache block (a B panel KC x NR of i32 pairs stays in L1)
    split: bool = False  # multiply-add the even and odd halves of each pair separately (see `qgemm_function`)
    dot: str = ""  # k-quads by a dot-product instruction: "vnni" (vpdpbusd, u8 x s8), "sdot" (sdot/udot)
    emulate_dot: bool = False  # the dot helpers as portable vector code (for CPUs without the instruction)
    planar: bool = False  # split: B's even and odd k rows as separate i16 runs (RVV's widening vwmacc)
    packs: bool = False  # x86 AVX2: a requantized row of four 8-bit vectors is narrowed by packs (`_byte_tail`)
    # vnni: a row tile's sums by the AMX tile unit where the GEMM allows (qgemm_amx);
    # with emulate_dot, the same tile product from the same layouts as vector code.
    amx: bool = False


@dataclass(frozen=True)
class Operand:
    """One side of the product: its memref and whether it is zero-extended."""

    value: ir.Value
    unsigned: bool


@dataclass(frozen=True)
class LowerQGemm(Pass):
    """Needs bufferized IR with static 8-bit x 8-bit -> i32 contractions:
    linalg.matmul / batch_matmul (signed, or both unsigned with
    cast_unsigned) or a linalg.generic of acc + ext(a) * ext(b) with
    extsi/extui from i8 and GEMM-shaped maps. Leaves func.call to private
    kernel functions (scf.for, vector loads/stores, arith.extsi, muli, addi,
    vector.shuffle); other contractions are left to the loop lowering."""

    name = "qc-lower-qgemm"
    mr: int = 6
    nr: int = 16
    vector_bits: int = 256
    kc: int = 384  # k pairs per cache block: a 384 x 16 panel of i32 pairs is 24 KiB of a 32 KiB L1D
    split: bool = False  # ISAs without a pair multiply-add (vpmaddwd): NEON, RVV
    dot: str = ""  # "vnni" or "sdot": k-quads by a dot-product instruction (see the module doc)
    emulate_dot: bool = False  # define the dot helpers as portable vector code (runs on any CPU)
    planar: bool = False  # with split: B's even and odd k rows stored apart as i16 (RVV vwmacc.vx)
    # x86 AVX2: the 8-bit requantization of a tile row of four vectors is
    # narrowed by two vpackssdw and a vpacksswb, its B columns packed in
    # their order (mode s; `_byte_tail`).
    packs: bool = False
    fold_requant: bool = True  # the requantization after a GEMM runs on its register tiles (qgemm_epilogue)
    # The tile of GEMMs whose B is packed at run time, a panel at a time (mode s:
    # a 1x1 conv's image); 0: mr x nr. Every row tile of a panel reads the panel's
    # packed pairs, so fewer rows cost no extra packing, only more panel reads.
    mr_s: int = 0
    nr_s: int = 0
    # With dot "vnni" on a CPU with AMX-INT8: GEMMs with a constant A of whole
    # 16-row tiles and one cache block get the tile unit's kernel (qgemm_amx).
    amx: bool = False

    def tiles(self) -> QTiles:
        vl = self.vector_bits // 32
        if vl < 1 or self.nr % vl or self.mr < 1 or self.nr < vl or self.kc < 1:
            raise PassFailed(self.name, f"bad tile sizes mr={self.mr} nr={self.nr} kc={self.kc} for {vl} "
                                        "i32 lanes (nr a multiple of the lanes)")
        if self.dot not in ("", "vnni", "sdot"):
            raise PassFailed(self.name, f"unknown dot-product kind '{self.dot}' (vnni, sdot)")
        if self.dot == "sdot" and vl != 4:
            raise PassFailed(self.name, f"sdot/udot work on 128-bit vectors, not {self.vector_bits}-bit ones")
        if self.dot == "vnni" and vl not in (4, 8, 16):
            raise PassFailed(self.name, f"vpdpbusd works on 128, 256 or 512-bit vectors, not {self.vector_bits}-bit")
        split = self.split and not self.dot
        return QTiles(self.mr, self.nr, vl, self.kc, split, self.dot, self.emulate_dot, self.planar and split,
                      self.packs and vl == 8 and not split and not self.dot,
                      self.amx and self.dot == "vnni" and vl == 16)

    def streamed_tiles(self) -> QTiles:
        """The tiles of mode s (`mr_s`, `nr_s`)."""
        t = replace(self, mr=self.mr_s or self.mr, nr=self.nr_s or self.nr, mr_s=0, nr_s=0)
        return t.tiles()

    def apply(self, module: ir.Module) -> None:
        lowering = _QGemmLowering(module, self.tiles(), self.fold_requant, self.streamed_tiles())
        for fn in list(module.body.operations):
            if fn.operation.name != "func.func":
                continue
            for op in collect_ops(fn.operation, ("linalg.matmul", "linalg.batch_matmul", "linalg.generic")):
                if not any(op.operation == done for done in lowering.folded):
                    lowering.lower(op)
        for op in lowering.folded:  # the requantizations the kernels now do
            op.erase()
        if lowering.made:
            drop_dead_im2col(module)
            run_upstream(self.name, "canonicalize,cse,symbol-dce", module)


def for_target(target=None) -> LowerQGemm:
    """The integer GEMM tile for a target's vector registers (AVX2 without one).

    Per k pair the tile needs MR * NR/VL accumulators, NR/VL vectors of B,
    one broadcast pair of A and one product temporary (checked in
    test/codegen/qgemm_*: no stack access in the k loop)."""
    feats = target.feature_set if target is not None else set()
    if target is not None and target.arch == "x86_64" and (
            "+avx512vnni" in feats and target.vector_bits == 512):
        # 32 zmm: 16 acc + 2 B + the broadcast A.
        return LowerQGemm(mr=8, nr=32, vector_bits=512, kc=192, dot="vnni",
                          amx={"+amx-int8", "+amx-tile"} <= feats)
    if target is not None and target.arch == "x86_64" and target.vector_bits == 256 and (
            "+avxvnni" in feats or {"+avx512vnni", "+avx512vl"} <= feats):
        return LowerQGemm(mr=6, nr=16, vector_bits=256, kc=384, dot="vnni")  # AVX-VNNI: the AVX2 tile
    if target is not None and target.arch == "aarch64" and "+dotprod" in feats:
        # 32 q: 8 x 12 = 24 acc + 3 B + 2 A (four rows' quads per q; sdot by element).
        return LowerQGemm(mr=8, nr=12, vector_bits=128, kc=256, dot="sdot")
    if target is None or (target.arch == "x86_64" and target.vector_bits == 256):
        # 16 ymm: 12 acc + 2 B + A + product; 4 x 24 and 3 x 32 (3 and 4 B
        # vectors) ran 30% slower on the example ResNet block. KC 384 pairs: its
        # 3x3 conv of 64 channels (288 pairs) in one block ran 3% faster than
        # in two of 144. A B packed at run time (mode s) takes 2 x 32: 8 acc +
        # 4 B + A + product, one broadcast of A per 4 vpmaddwd instead of per 2
        # (on Zen 3 the broadcasts share the four vector pipes with the
        # multiply-adds); the int8 MobileNet block ran 3% faster (its ResNet
        # block's implicit im2col, which widens B at each use, 7% slower).
        return LowerQGemm(mr=6, nr=16, vector_bits=256, kc=384, mr_s=2, nr_s=32, packs="+avx2" in feats)
    if target.arch == "x86_64" and target.vector_bits == 512:
        # 32 zmm: 16 acc + 2 B + A + product.
        return LowerQGemm(mr=8, nr=32, vector_bits=512, kc=192)
    if target.arch == "riscv64" and target.rvv_vlen:
        bits = 2 * target.rvv_vlen  # LMUL 2, as the fp32 GEMM
        return LowerQGemm(mr=4, nr=2 * bits // 32, vector_bits=bits, kc=128, split=True, planar=True)
    if target.arch == "aarch64":
        # 32 q: 16 acc + 2 B as even and odd halves (4) + A halves; mla by element.
        return LowerQGemm(mr=4, nr=16, vector_bits=128, kc=256, split=True)
    # Other 128-bit ISAs: the widening multiplies need two temporaries per product.
    return LowerQGemm(mr=4, nr=8, vector_bits=128, kc=256)


# -- matching -----------------------------------------------------------------


def _memref(v: ir.Value) -> ir.MemRefType | None:
    return ir.MemRefType(v.type) if isinstance(v.type, ir.MemRefType) else None


def _width(ty: ir.MemRefType) -> int:
    return ir.IntegerType(ty.element_type).width if isinstance(ty.element_type, ir.IntegerType) else 0


_NAMED_MAPS = {
    "linalg.matmul": "[affine_map<(d0, d1, d2) -> (d0, d2)>, affine_map<(d0, d1, d2) -> (d2, d1)>, "
                     "affine_map<(d0, d1, d2) -> (d0, d1)>]",
    "linalg.batch_matmul": "[affine_map<(d0, d1, d2, d3) -> (d0, d1, d3)>, "
                           "affine_map<(d0, d1, d2, d3) -> (d0, d3, d2)>, "
                           "affine_map<(d0, d1, d2, d3) -> (d0, d1, d2)>]",
}


def _named_unsigned(op) -> bool | None:
    """The named matmul's extension: False for cast_signed (the default),
    True for cast_unsigned; None for other (transposed or broadcast) maps."""
    attrs = op.operation.attributes
    if "indexing_maps" in attrs and str(attrs["indexing_maps"]) != _NAMED_MAPS[op.operation.name]:
        return None
    if "cast" not in attrs:
        return False
    return "cast_unsigned" in str(attrs["cast"])


def payload_signs(op) -> tuple[bool, bool] | None:
    """If a generic's payload is acc + ext(a) * ext(b) (ext: extsi or extui
    from 8 bits, in any order): whether a and b are zero-extended."""
    block = op.regions[0].blocks[0]
    if len(block.arguments) != 3:
        return None
    a, b, acc = block.arguments
    ops = list(block.operations)
    if len(ops) != 5 or ops[-1].operation.name != "linalg.yield":
        return None
    exts = {}
    for o in ops[:2]:
        name = o.operation.name
        if name not in ("arith.extsi", "arith.extui") or o.operands[0] not in (a, b):
            return None
        exts[o.operands[0]] = (o.result, name == "arith.extui")
    mul, add, yld = ops[2:]
    if len(exts) != 2 or mul.operation.name != "arith.muli" or add.operation.name != "arith.addi":
        return None
    if {mul.operands[0], mul.operands[1]} != {exts[a][0], exts[b][0]}:
        return None
    if {add.operands[0], add.operands[1]} != {mul.result, acc} or yld.operands[0] != add.result:
        return None
    return exts[a][1], exts[b][1]


class _QGemmLowering:
    def __init__(self, module: ir.Module, tiles: QTiles, fold_requant: bool = True, streamed: QTiles | None = None):
        self.module = module
        self.tiles = tiles
        self.streamed = streamed or tiles  # mode s
        self.fold_requant = fold_requant
        self.symbols = ir.SymbolTable(module.operation)
        self.made: set[str] = set()
        self.packed: dict[str, ir.MemRefType] = {}
        self.folded: list[ir.Operation] = []  # requantizations folded into kernels

    def _match(self, op):
        """(A, B, C operands, groups to collapse or None, A batched) of a
        lowerable contraction, else None."""
        ins, outs = list(op.inputs), list(op.outputs)
        if len(ins) != 2 or len(outs) != 1:
            return None
        tys = [_memref(v) for v in (*ins, *outs)]
        if any(t is None or not t.has_static_shape for t in tys):
            return None  # still on tensors, or dynamic
        if [_width(t) for t in tys] != [8, 8, 32]:
            return None
        name = op.operation.name
        if name == "linalg.generic":
            signs = payload_signs(op)
            dims = contraction_dims(op) if signs is not None else None
            if dims is None or not all(_row_major(t) for t in tys):
                return None
            groups, a_batched = dims
            return Operand(ins[0], signs[0]), Operand(ins[1], signs[1]), outs[0], groups, a_batched
        unsigned = _named_unsigned(op)
        if unsigned is None or not all(t.get_strides_and_offset()[0][-1] == 1 for t in tys):
            return None
        return Operand(ins[0], unsigned), Operand(ins[1], unsigned), outs[0], None, name == "linalg.batch_matmul"

    def lower(self, op) -> None:
        match = self._match(op)
        if match is None:
            return
        a_op, b_op, c, groups, a_batched = match
        a, b = a_op.value, b_op.value
        zeroed = _zeroing_write(op.operation, c)
        implicit = None
        if groups is not None:
            if not a_batched and len(groups[1]) == 3:
                implicit = _implicit_im2col(op, b)
            with ir.InsertionPoint(op.operation), op.location:
                a, b, c = (_collapse(v, g) for v, g in zip((a, b, c), groups))
        shape_c = list(ir.MemRefType(c.type).shape)
        bsz = shape_c[0] if len(shape_c) == 3 else 0
        m, n = shape_c[-2:]
        k = ir.MemRefType(b.type).shape[-2]
        a_const = not a_batched and constant_global(self.symbols, a) is not None
        b_const = not bsz and constant_global(self.symbols, b) is not None
        t = self.streamed if not b_const and implicit is None else self.tiles
        # A dot kernel needs one run-time operand to flip and one constant to
        # carry the correction; otherwise the pairs.
        dot = plan_dot(t, a_op.unsigned, b_op.unsigned, a_const) if t.dot and a_const != b_const else None
        g = 4 if dot else 2
        if t.amx:  # the tile unit's kernel, where A is constant and the rows are whole tiles
            if dot is not None and a_const and zeroed is not None and qgemm_amx.takes(m, k) \
                    and t.nr % qgemm_amx.TILE == 0:
                t = replace(t, mr=qgemm_amx.row_tile(m), kc=max(t.kc, -(-k // 4)))
            else:
                t = replace(t, amx=False)
        a_scale = dot.scale if dot and dot.corr == "a" else 0
        b_scale = dot.scale if dot and dot.corr == "b" else 0
        scale = a_scale or b_scale  # in the packed name: the correction's sign (symbols take no '+')
        tag = (f"_q{g}" + ("" if not scale else "cp" if scale > 0 else "cn")) if dot else "_q"
        pack_a = (lambda v: qgemm_amx.pack_rows(v, m, k, t.mr, a_scale)) if t.amx else \
            (lambda v: _pack_rows(v, m, k, t.mr, g, a_scale))
        a_packed = None if a_batched else self._packed(a, f"{tag}rows{t.mr}{'amx' if t.amx else ''}", pack_a,
                                                       a_op.unsigned, m, k)
        if t.planar:
            tag += "p"
        b_packed = None if bsz else self._packed(b, f"{tag}cols{t.nr}",
                                                 lambda v: _pack_cols(v, k, n, t.nr, g, b_scale, t.planar),
                                                 b_op.unsigned, k, n)
        mode = "p" if b_packed is not None else ("i" if implicit is not None else "s")
        geometry = implicit[0] if mode == "i" else None
        # The requantization after the GEMM runs on each register tile: C
        # starts from zeros, one cache block sums it (so each tile's sums are
        # final at once), and A is packed (no run-time packing entry).
        rq = None
        if self.fold_requant and zeroed is not None and a_packed is not None and -(-k // g) <= t.kc:
            rq = qgemm_epilogue.find(op.operation, c, shape_c, [a_op.value, b_op.value], t.vl, self.symbols)
        extras = []
        if rq is not None:
            with ir.InsertionPoint(op.operation), op.location:
                c, extras = _requant_operands(rq, len(shape_c))
        rows = tuple(ir.MemRefType(v.type).get_strides_and_offset()[0][-2] for v in (a, b, c))
        signs = ("u" if a_op.unsigned else "s") + ("u" if b_op.unsigned else "s")
        kernel = self._kernel(t, m, n, k, mode, rows, geometry, signs, b_op.unsigned, zeroed is not None, dot, rq)
        entry = kernel if a_packed is not None else self._packing_entry(t, kernel, m, n, k, mode, rows,
                                                                        geometry, a_op.unsigned, dot)
        b_arg = b_packed if mode == "p" else (implicit[1] if mode == "i" else b)
        with ir.InsertionPoint(op.operation), op.location:
            self._emit_call(t, entry, a_packed if a_packed is not None else a, b_arg, c, bsz, m, n, k, mode, rows,
                            geometry, a_packed is not None, a_batched, dot, rq, extras)
        op.operation.erase()
        if zeroed is not None:
            zeroed.erase()  # C is overwritten whole, and nothing reads it in between
        if rq is not None:
            self.folded.append(rq.op)  # erased after the walk, which listed it

    # -- constants ----------------------------------------------------------------
    def _packed(self, v: ir.Value, suffix: str, pack, unsigned: bool, rows: int, cols: int):
        """A get_global (before v's definition) of pack(values) if v is a
        constant global [rows, cols], else None."""
        found = constant_global(self.symbols, v)
        if found is None:
            return None
        sym, attr = found
        name = sym + suffix + ("u" if unsigned else "s")
        ty = self.packed.get(name)
        if ty is None:
            if attr.is_splat:
                values = np.full((rows, cols), ir.IntegerAttr(attr.get_splat_value()).value, np.int64)
            else:
                values = np.array(attr).reshape(rows, cols)
            values = (values.astype(np.int8).view(np.uint8) if unsigned else values.astype(np.int8)).astype(np.int64)
            data = np.ascontiguousarray(pack(values))
            i32 = ir.IntegerType.get_signless(32)
            ty = ir.MemRefType.get(list(data.shape), i32)
            with ir.InsertionPoint(self.module.body), ir.Location.unknown():
                g = ir.Operation.create("memref.global", attributes={
                    "sym_name": ir.StringAttr.get(name),
                    "sym_visibility": ir.StringAttr.get("private"),
                    "type": ir.TypeAttr.get(ty),
                    "initial_value": ir.DenseElementsAttr.get(data, type=i32),
                    "constant": ir.UnitAttr.get(),
                    "alignment": ir.IntegerAttr.get(ir.IntegerType.get_signless(64), 64),
                })
            g.move_before(self.module.body.operations[0])
            self.packed[name] = ty
        owner = getattr(v.owner, "operation", v.owner)
        with ir.InsertionPoint(owner), ir.Location.unknown():
            return ir.Operation.create("memref.get_global", results=[ty],
                                       attributes={"name": ir.FlatSymbolRefAttr.get(name)}).result

    # -- the call site ------------------------------------------------------------
    def _emit_call(self, t: QTiles, fname, a, b, c, bsz, m, n, k, mode, rows, geometry, a_packed, a_batched, dot,
                   rq=None, extras=()) -> None:
        """The call of the kernel; with a requantization, c is D's view and
        `extras` the generic's other inputs (`_requant_operands`)."""
        from mlir.dialects import scf

        from qc.mlir import arith, func, memref

        a_ty, b_ty, c_ty = (ir.MemRefType.parse(s) for s in
                            _type_text(m, n, k, t, mode, rows, geometry, a_packed, dot, rq))
        e_tys = [ir.MemRefType.parse(s) for s in _extra_types(m, n, rq)] if rq is not None else []

        def args(a_v, b_v, c_v, batch=None):
            more = [memref.cast(ty, v if batch is None or ir.MemRefType(v.type).rank == 1 else _batch_slice(v, batch))
                    for ty, v in zip(e_tys, extras)]
            return [a_v if a_packed else memref.cast(a_ty, a_v),
                    b_v if mode == "p" else memref.cast(b_ty, b_v), memref.cast(c_ty, c_v), *more]

        if not bsz:
            func.CallOp([], ir.FlatSymbolRefAttr.get(fname), args(a, b, c))
            return
        idx = ir.IndexType.get()
        lo, hi, one = (arith.ConstantOp(idx, v).result for v in (0, bsz, 1))
        flat = _collapse(b, [[0], [1, 2, 3]]) if mode == "i" else None
        loop = scf.ForOp(lo, hi, one)
        with ir.InsertionPoint(loop.body):
            i = loop.induction_variable
            a_i = _batch_slice(a, i) if a_batched else a
            b_i = b if mode == "p" else (_row_slice(flat, i) if mode == "i" else _batch_slice(b, i))
            func.CallOp([], ir.FlatSymbolRefAttr.get(fname), args(a_i, b_i, _batch_slice(c, i), i))
            scf.YieldOp([])

    # -- the kernel functions -----------------------------------------------------
    def _kernel(self, t: QTiles, m, n, k, mode, rows, geometry, signs, b_unsigned, zero_c, dot, rq=None) -> str:
        """The kernel's function for a packed A, made the first time: it calls
        the runtime's parallel entry (`parallel_name`)."""
        name = f"qc_qgemm_{m}x{n}x{k}_{mode}{t.mr}x{t.nr}_{signs}"
        if dot is not None:  # the signs and mode fix the rest of the plan
            name += ("_amx" if t.amx else "_dot") + ("_flip" if dot.flip else "")
        if rows[1:] != (n, n):
            name += "_s" + "_".join(map(str, rows[1:]))
        if geometry is not None:
            name += geometry.suffix()
        if zero_c:
            name += "_z"
        if rq is not None:
            name += f"_rq{rows[2]}_{rq.digest()}"
        if name in self.made:
            return name
        self._append(qgemm_function(name, m, n, k, t, mode, rows, geometry, b_unsigned, zero_c, dot, rq))
        self.made.add(name)
        kc = balanced_kc(t.kc, -(-k // (4 if dot else 2)))
        scratch = [qgemm_amx.padded_quads(kc) if t.amx else kc, t.nr] if mode in "si" else []
        _record_parallel_kernel(self.module, parallel_name(name), -(-n // t.nr),
                                3 + (len(rq.extras) if rq is not None else 0), scratch)
        return name

    def _packing_entry(self, t: QTiles, kernel, m, n, k, mode, rows, geometry, a_unsigned, dot) -> str:
        name = f"{kernel}_a{rows[0]}{'u' if a_unsigned else 's'}"
        if name not in self.made:
            self._append(packing_function(name, kernel, m, n, k, t, mode, rows, geometry, a_unsigned, dot))
            self.made.add(name)
        return name

    def _append(self, text: str) -> None:
        """Moves the functions of `text` into the module, but for the
        declarations of ones it has already."""
        parsed = ir.Module.parse(text)
        for op in list(parsed.body.operations):
            if ir.StringAttr(op.attributes["sym_name"]).value not in self.symbols:
                self.module.body.append(op)
                self.symbols.insert(op)


_VIEWS = ("memref.collapse_shape", "memref.expand_shape", "memref.cast")


def _whole(v: ir.Value) -> ir.Value | None:
    """The buffer v views in whole (through reshapes and casts), else None."""
    while True:
        owner = getattr(v.owner, "operation", None)
        if owner is None or owner.name not in _VIEWS:
            return v
        v = owner.operands[0]


def _touches(op: ir.Operation, root: ir.Value) -> bool:
    return any(_root(v) == root for v in _all_operands(op))


def _zero_constant(v: ir.Value) -> bool:
    owner = getattr(v.owner, "operation", None)
    if owner is None or owner.name != "arith.constant":
        return False
    value = owner.attributes["value"]
    return isinstance(value, ir.IntegerAttr) and value.value == 0


def _zeroing_write(op: ir.Operation, c: ir.Value, depth: int = 2) -> ir.Operation | None:
    """The op that last wrote all of C's buffer before `op`, if it wrote
    zeros and nothing touched the buffer since: a linalg.fill of 0, or a
    linalg.copy of a buffer so filled (bufferization copies a zero init that
    two convolutions share). The kernel then writes C instead of adding to
    it, and that op is dead."""
    root = _whole(c)
    if root is None or _root(c) != root:
        return None
    block = op.block
    ops = [o.operation for o in block.operations]
    for prev in reversed(ops[:ops.index(op)]):
        if not _touches(prev, root):
            continue
        if prev.name not in ("linalg.fill", "linalg.copy") or _whole(prev.operands[-1]) != root:
            return None
        if prev.name == "linalg.fill":
            return prev if _zero_constant(prev.operands[0]) else None
        src = _whole(prev.operands[0])
        if depth and src is not None and _root(prev.operands[0]) == src and _zeroing_write(prev, src, depth - 1):
            return prev
        return None
    return None


def drop_dead_im2col(module: ir.Module) -> None:
    """Erases the im2col copies nothing reads any more (the kernels gather
    from the image instead): a local buffer whose only uses are im2col writes
    and views without users. Bufferization may give several convolutions one
    im2col buffer, so this is decided once all of them are lowered."""
    from .lower_gemm import IM2COL_ATTR

    buffers = {}
    for op in collect_ops(module.operation, ("linalg.generic",)):
        op = op.operation
        if IM2COL_ATTR in op.attributes and len(op.operands) == 2 and isinstance(op.operands[1].type, ir.MemRefType):
            owner = getattr(op.operands[1].owner, "operation", None)
            if owner is not None and owner.name == "memref.alloc":
                buffers[owner] = op.operands[1]
    for col in buffers.values():
        users = [u.owner.operation for u in col.uses]
        writers = [u for u in users if u.name == "linalg.generic" and IM2COL_ATTR in u.attributes]
        views = [u for u in users if u.name == "memref.collapse_shape" and not list(u.results[0].uses)]
        if len(writers) + len(views) == len(users):
            for u in views + writers:
                u.erase()


def _pack_rows(a: np.ndarray, m: int, k: int, mr: int, group: int = 2, scale: int = 0) -> np.ndarray:
    """Ap[ib, p, r] = group p of row ib*MR + r (pair(A[., 2p], A[., 2p+1]) or
    the quad 4p .. 4p+3), zero rows past M; with a scale, one more p holds
    scale * sum_k A[row, k] (a dot kernel's correction)."""
    nblocks = -(-m // mr)
    padded = np.zeros((nblocks * mr, k), np.int64)
    padded[:m] = a
    packed = groups(padded, group)
    if scale:
        packed = np.concatenate([packed, wrap32(scale * padded.sum(axis=1))[:, None]], axis=1)
    return packed.reshape(nblocks, mr, -1).transpose(0, 2, 1)


def _pack_cols(b: np.ndarray, k: int, n: int, nr: int, group: int = 2, scale: int = 0,
               planar: bool = False) -> np.ndarray:
    """Bp[jp, p, j] = group p of column jp*NR + j (pair(B[2p, .], B[2p+1, .]) or
    the quad 4p .. 4p+3), zero columns past N; with a scale, one more p
    holds scale * sum_k B[k, column]. planar: Bp[jp, p] is instead the NR
    i16 values of row 2p, then the NR of row 2p + 1."""
    npanels = -(-n // nr)
    padded = np.zeros((k, npanels * nr), np.int64)
    padded[:, :n] = b
    if planar:
        rows = np.zeros((-(-k // 2) * 2, npanels * nr), np.int64)
        rows[:k] = padded
        runs = rows.reshape(-1, 2, npanels, nr).transpose(2, 0, 1, 3).reshape(npanels, -1, 2 * nr)
        return pairs(runs)  # consecutive i16 values in one i32: [npanels, K/2, NR]
    packed = groups(padded.T, group)  # [N', K/group]
    if scale:
        packed = np.concatenate([packed, wrap32(scale * padded.sum(axis=0))[:, None]], axis=1)
    return packed.reshape(npanels, nr, -1).transpose(0, 2, 1)


def _requant_operands(rq: qgemm_epilogue.Requant, rank: int) -> tuple[ir.Value, list[ir.Value]]:
    """D as the kernel stores it ([B,] M, N like C, or the pitched rows of
    an image in a padded one) and the generic's other inputs as it reads
    them: tile inputs shaped like C, row inputs as [M]."""
    d = _pitched_view(rq.dest, rq.groups, rank) if rq.pitch else _collapse(rq.dest, rq.groups)
    extras = []
    for i in rq.extras:
        v = rq.inputs[i]
        r = ir.MemRefType(v.type).rank
        extras.append(_collapse(v, rq.groups) if rq.kinds[i] == "tile" else _collapse(v, [list(range(r))]))
    return d, extras


def _extra_types(m: int, n: int, rq: qgemm_epilogue.Requant) -> list[str]:
    """The kernel's types of the requantization's inputs (`_requant_operands`)."""
    out = []
    for i in rq.extras:
        ty = rq.program.args[i]
        out.append(f"memref<{m}x{n}x{ty}, strided<[{n}, 1], offset: ?>>" if rq.kinds[i] == "tile"
                   else f"memref<{m}x{ty}, strided<[1], offset: ?>>")
    return out


def _type_text(m, n, k, t: QTiles, mode, rows, geometry: Im2col | None, a_packed=True, dot: Dot | None = None,
               rq: qgemm_epilogue.Requant | None = None):
    """The kernel's argument types (or, a_packed False, the packing entry's
    A); with a requantization, D's in C's place."""
    kg = -(-k // (4 if dot else 2))
    corr = dot.corr if dot else ""
    if a_packed:
        kq = qgemm_amx.padded_quads(kg) if t.amx else kg
        a = f"memref<{-(-m // t.mr)}x{kq + (corr == 'a')}x{t.mr}xi32>"
    else:
        a = f"memref<{m}x{k}xi8, strided<[{rows[0]}, 1], offset: ?>>"
    if mode == "p":
        b = f"memref<{-(-n // t.nr)}x{kg + (corr == 'b')}x{t.nr}xi32>"
    elif mode == "i":
        b = f"memref<{geometry.c * geometry.h * geometry.w}xi8, strided<[1], offset: ?>>"
    else:
        b = f"memref<{k}x{n}xi8, strided<[{rows[1]}, 1], offset: ?>>"
    if rq is not None:
        cols = pitched_columns(rq.pitch) if rq.pitch else n
        return a, b, f"memref<{m}x{cols}x{rq.program.out_type}, strided<[{rows[2]}, 1], offset: ?>>"
    return a, b, f"memref<{m}x{n}xi32, strided<[{rows[2]}, 1], offset: ?>>"


def packing_function(name, kernel, m, n, k, t: QTiles, mode, rows, geometry, a_unsigned, dot=None) -> str:
    """A wrapper for a run-time A: packs it into row panels of i16 pairs, or
    of byte quads for a dot kernel (one pass over A, before the threads
    start), then runs the kernel."""
    a_raw, b_ty, c_ty = _type_text(m, n, k, t, mode, rows, geometry, a_packed=False, dot=dot)
    ap_ty = _type_text(m, n, k, t, mode, rows, geometry, dot=dot)[0]
    ext = "arith.extui" if a_unsigned else "arith.extsi"
    g = 4 if dot else 2
    full = k // g

    def pair(lo_k: str, hi_k: str | None) -> list[str]:
        out = [f"%a0 = memref.load %A[%i, {lo_k}] : {a_raw}",
               f"%e0 = {ext} %a0 : i8 to i32",
               "%l0 = arith.andi %e0, %mask : i32"]
        if hi_k is None:
            return out + ["%v = arith.addi %l0, %zero32 : i32"]
        return out + [f"%a1 = memref.load %A[%i, {hi_k}] : {a_raw}",
                      f"%e1 = {ext} %a1 : i8 to i32",
                      "%h1 = arith.shli %e1, %sixteen : i32",
                      "%v = arith.ori %l0, %h1 : i32"]

    def quad(ks: list[str]) -> list[str]:
        """Bytes k_j (those that exist) in byte j; xor 0x80 on all four when
        the kernel flips A (B is zero past K, so the padding does not count)."""
        out, acc = [], "%zero32"
        for j, kj in enumerate(ks):
            out += [f"%a{j} = memref.load %A[%i, {kj}] : {a_raw}",
                    f"%e{j} = arith.extui %a{j} : i8 to i32",
                    f"%s{j} = arith.shli %e{j}, %sh{j} : i32",
                    f"%o{j} = arith.ori {acc}, %s{j} : i32"]
            acc = f"%o{j}"
        if dot.flip:
            out.append(f"%f = arith.xori {acc}, %flip : i32")
            acc = "%f"
        return out + [f"%v = arith.addi {acc}, %zero32 : i32"]

    par = parallel_name(kernel)
    body = [
        f"func.func private @{par}({ap_ty}, {b_ty}, {c_ty}) attributes {{llvm.emit_c_interface}}",
        f"func.func private @{name}(%A: {a_raw}, %B: {b_ty}, %C: {c_ty}) {{",
        "  %c0 = arith.constant 0 : index", "  %c1 = arith.constant 1 : index",
        f"  %cm = arith.constant {m} : index", f"  %cmr = arith.constant {t.mr} : index",
        f"  %cfull = arith.constant {full} : index",
        "  %mask = arith.constant 65535 : i32", "  %sixteen = arith.constant 16 : i32",
        "  %zero32 = arith.constant 0 : i32", "  %flip = arith.constant -2139062144 : i32",  # 0x80808080
        *[f"  %sh{j} = arith.constant {8 * j} : i32" for j in range(4)],
        # No dealloc: qc-lower-to-scf's deallocation pass frees %Ap after its last use.
        f"  %Ap = memref.alloc() {{alignment = 64 : i64}} : {ap_ty}",
        "  scf.for %i = %c0 to %cm step %c1 {",
        "    %ib = arith.divui %i, %cmr : index",
        "    %ir = arith.remui %i, %cmr : index",
        "    scf.for %p = %c0 to %cfull step %c1 {",
    ]
    if dot:
        body += ["      %c4 = arith.constant 4 : index", "      %k0 = arith.muli %p, %c4 : index",
                 *[f"      %kk{j} = arith.constant {j} : index" for j in (1, 2, 3)],
                 *[f"      %k{j} = arith.addi %k0, %kk{j} : index" for j in (1, 2, 3)],
                 *[f"      {line}" for line in quad(["%k0", "%k1", "%k2", "%k3"])]]
    else:
        body += ["      %kl = arith.addi %p, %p : index",
                 "      %kh = arith.addi %kl, %c1 : index",
                 *[f"      {line}" for line in pair("%kl", "%kh")]]
    body += [f"      memref.store %v, %Ap[%ib, %p, %ir] : {ap_ty}", "    }"]
    if k % g:
        tail = [f"%kt{j}" for j in range(k % g)]
        body += [f"    %kt{j} = arith.constant {full * g + j} : index" for j in range(k % g)]
        body += [f"    {line}" for line in (quad(tail) if dot else pair(tail[0], None))]
        body += [f"    memref.store %v, %Ap[%ib, %cfull, %ir] : {ap_ty}"]
    body += [
        "  }",
        f"  func.call @{par}(%Ap, %B, %C) : ({ap_ty}, {b_ty}, {c_ty}) -> ()",
        "  return", "}",
    ]
    return "\n".join(body) + "\n"


def qgemm_function(name: str, m: int, n: int, k: int, t: QTiles, mode: str, rows: tuple[int, int, int],
                   geometry: Im2col | None, b_unsigned: bool, zero_c: bool = False, dot: Dot | None = None,
                   rq: qgemm_epilogue.Requant | None = None) -> str:
    """The MLIR text of one integer GEMM kernel for static sizes: the range
    function the runtime's threads call on their column panels, and the
    declaration of the entry the runtime glue defines (B_MODES for `mode`).
    zero_c: C holds zeros on entry, so the first cache block starts its
    accumulators at zero instead of loading C (C = A · B). dot: k-quads by
    a dot helper (`plan_dot`), else i16 pairs. rq: the requantization each
    tile's sums go through (one cache block, zero_c), storing D in C's
    place (`qgemm_epilogue`)."""
    e = _Emitter()
    group = 4 if dot else 2
    kg = -(-k // group)  # k groups (pairs or quads)
    kc = balanced_kc(t.kc, kg)
    a_ty, b_ty, c_ty = _type_text(m, n, k, t, mode, rows, geometry, dot=dot, rq=rq)
    e_tys = _extra_types(m, n, rq) if rq is not None else []
    # The tile unit reads whole 16-row tiles of S: its rows past K (times A's zeros) pad it.
    s_ty = f"memref<{qgemm_amx.padded_quads(kc) if t.amx else kc}x{t.nr}xi32>"
    # The tile unit's kernel (t.amx): A's quads padded to whole tiles, the C tile on the stack.
    kga = qgemm_amx.padded_quads(kg) if t.amx else kg
    # The tile unit's sums start from each row's start (A's correction row, the requantization's
    # row addition) as a tile of MR rows (`start_rows`), kept on the stack for all rows.
    # One cache block with a requantization that first adds a row input: the sums start from it.
    fold = rq.start_addition() if rq is not None and zero_c and kg <= kc else None
    m_rows = -(-m // t.mr) * t.mr
    start_tile = t.amx and (fold is not None or dot.corr == "a") and m_rows * 64 <= START_TILE_BYTES
    st_ty = f"memref<{m_rows}x16xi32>"
    # With the start tile the sums in %AT are what a requantization's high word
    # multiplies: its odd lanes are a load one element on (`odd_views`), 16 more per row.
    at_cols = t.nr + 16 if start_tile and rq is not None else t.nr
    at_ty = f"memref<{t.mr}x{at_cols}xi32>"
    amx_helper = qgemm_amx.helper_name(not dot.b_first, t.mr, t.nr, kg, 4 * t.nr, 4 * at_cols, start_tile) \
        if t.amx else ""
    vec, mask_ty = f"vector<{t.vl}xi32>", f"vector<{t.vl}xi1>"
    bytes_ty = f"vector<{4 * t.vl}xi8>"
    half, wide = f"vector<{2 * t.vl}xi16>", f"vector<{2 * t.vl}xi32>"
    row8, row16, rmask = f"vector<{t.nr}xi8>", f"vector<{t.nr}xi16>", f"vector<{t.nr}xi1>"
    pair8 = f"vector<{2 * t.nr}xi8>"
    pair_ty, prow = f"vector<{2 * t.nr}xi16>", f"vector<{t.nr}xi32>"
    ext_b = "arith.extui" if b_unsigned else "arith.extsi"
    m_main, n_main = m - m % t.mr, n - n % t.nr
    m_tail, n_tail = m % t.mr, n % t.nr
    full = n_main // t.nr
    evens = ", ".join(str(2 * i) for i in range(t.vl))
    odds = ", ".join(str(2 * i + 1) for i in range(t.vl))
    extra_consts: list[str] = []
    # A row of four 8-bit vectors narrowed together by x86 packs (`_byte_tail`): (x, lo, hi).
    joint = _byte_tail(rq.program) if (
        t.packs and mode == "s" and rq is not None and zero_c and kg <= kc and t.nr == 4 * t.vl
        and "tile" not in rq.kinds) else None
    # With them, the high word's lanes may come out per 128 bits in quad_order
    # (one vshufps, not a vpshufd and a vpblendd): B's packing undoes that too.
    quads = bool(joint) and fold is not None and rq.program.only_in_high_word(fold[0], rq.kinds.index("acc"))

    for_loop = e.for_loop

    def widen(v: str, ty: str) -> str:
        """An i32 vector of i16 pairs as its i16 lanes, sign-extended to i32."""
        h, w = e.fresh("h"), e.fresh("w")
        e.emit(f"{h} = vector.bitcast {v} : {ty} to {half}")
        e.emit(f"{w} = arith.extsi {h} : {half} to {wide}")
        return w

    def halves(v: str, ty: str) -> tuple[str, str]:
        """The even (low) and odd (high) i16 halves of an i32 pair (scalar or
        vector), sign-extended in place: (v << 16) >> 16 and v >> 16."""
        lo, ev, od = e.fresh("lo"), e.fresh("ev"), e.fresh("od")
        sixteen = e.fresh("c16")
        e.emit(f"{sixteen} = arith.constant {'16' if ty == 'i32' else 'dense<16>'} : {ty}")
        e.emit(f"{lo} = arith.shli {v}, {sixteen} : {ty}")
        e.emit(f"{ev} = arith.shrsi {lo}, {sixteen} : {ty}")
        e.emit(f"{od} = arith.shrsi {v}, {sixteen} : {ty}")
        return ev, od

    def a_halves16(ib: str, kv: str, r: int) -> tuple[str, str]:
        """A's pair of row r as two sign-extended i16 scalars (two halfword
        loads): the multiply-adds by them are widening (vwmacc.vx)."""
        pv, p16 = e.fresh("ap"), e.fresh("ap16")
        e.emit(f"{pv} = vector.load %A[{ib}, {kv}, {e.idx(r)}] : {a_ty}, vector<1xi32>")
        e.emit(f"{p16} = vector.bitcast {pv} : vector<1xi32> to vector<2xi16>")
        out = []
        for h in range(2):
            x16, x = e.fresh("ax"), e.fresh("ax")
            e.emit(f"{x16} = vector.extract {p16}[{h}] : i16 from vector<2xi16>")
            e.emit(f"{x} = arith.extsi {x16} : i16 to i32")
            out.append(x)
        return out[0], out[1]

    def planar_halves(c: int, mode: str, pidx: str, kv: str, kr: str | None) -> tuple[str, str]:
        """Column vector c's even and odd k values of a planar B row: i16
        vectors loaded as they are and sign-extended, so that each
        multiply-add by a broadcast i16 scalar is one widening vwmacc.vx."""
        words, half = f"vector<{t.vl // 2}xi32>", f"vector<{t.vl}xi16>"
        out = []
        for h in range(2):
            raw, v16, w = e.fresh("bp"), e.fresh("bh"), e.fresh("bw")
            col = e.idx((h * t.nr + c * t.vl) // 2)
            if mode == "p":
                e.emit(f"{raw} = vector.load %B[{pidx}, {kv}, {col}] : {b_ty}, {words}")
            else:
                e.emit(f"{raw} = vector.load %S[{kr}, {col}] : {s_ty}, {words}")
            e.emit(f"{v16} = vector.bitcast {raw} : {words} to {half}")
            e.emit(f"{w} = arith.extsi {v16} : {half} to {vec}")
            out.append(w)
        return out[0], out[1]

    def dot_rows(nrows: int, nvec: int, ib: str, kv: str, bw: list[str], cur: dict) -> None:
        """acc[r, c] = dot(B quads, A quad of row r broadcast) for one k-quad.
        With 4-lane vectors (NEON) four rows' quads are one load, and the
        broadcast a lane shuffle that sdot takes by element."""
        for r in range(nrows):
            ab, abb = e.fresh("ab"), e.fresh("abb")
            if t.vl == 4 and r % 4 == 0 and r + 4 <= t.mr:
                quad_rows = e.fresh("aq")
                e.emit(f"{quad_rows} = vector.load %A[{ib}, {kv}, {e.idx(r)}] : {a_ty}, {vec}")
            if t.vl == 4 and r - r % 4 + 4 <= t.mr:
                e.emit(f"{ab} = vector.shuffle {quad_rows}, {quad_rows} [{', '.join([str(r % 4)] * 4)}] "
                       f": {vec}, {vec}")
            else:
                av = e.fresh("a")
                e.emit(f"{av} = memref.load %A[{ib}, {kv}, {e.idx(r)}] : {a_ty}")
                e.emit(f"{ab} = vector.broadcast {av} : i32 to {vec}")
            e.emit(f"{abb} = vector.bitcast {ab} : {vec} to {bytes_ty}")
            for c in range(nvec):
                x, y = (bw[c], abb) if dot.b_first else (abb, bw[c])
                nv = e.fresh("x")
                e.emit(f"{nv} = func.call @{dot.helper}({cur[r, c]}, {x}, {y}) : ({vec}, {bytes_ty}, {bytes_ty}) "
                       f"-> {vec}")
                cur[r, c] = nv

    def pair_rows(nrows: int, nvec: int, ib: str, kv: str, bw: list, cur: dict) -> None:
        """acc[r, c] += A pair of row r (broadcast) x B pairs, for one k pair."""
        for r in range(nrows):
            av, ab = e.fresh("a"), e.fresh("ab")
            e.emit(f"{av} = memref.load %A[{ib}, {kv}, {e.idx(r)}] : {a_ty}")
            if t.split:
                # acc += b_even * a_even + b_odd * a_odd as two i32 multiply-adds by a
                # broadcast scalar: mla by element on NEON, vwmacc.vx on RVV (planar).
                a_halves = [e.fresh("ah") for _ in range(2)]
                for h, x in zip(halves(av, "i32") if not t.planar else a_halves16(ib, kv, r), a_halves):
                    e.emit(f"{x} = vector.broadcast {h} : i32 to {vec}")
                for c in range(nvec):
                    for h in range(2):
                        p, nv = e.fresh("p"), e.fresh("x")
                        e.emit(f"{p} = arith.muli {bw[c][h]}, {a_halves[h]} : {vec}")
                        e.emit(f"{nv} = arith.addi {cur[r, c]}, {p} : {vec}")
                        cur[r, c] = nv
                continue
            e.emit(f"{ab} = vector.broadcast {av} : i32 to {vec}")
            aw = widen(ab, vec)
            for c in range(nvec):
                # acc += (a_even * b_even) + (a_odd * b_odd) per i32 lane: vpmaddwd + vpaddd.
                p, ev, od, s, nv = (e.fresh(x) for x in ("p", "ev", "od", "s", "x"))
                e.emit(f"{p} = arith.muli {aw}, {bw[c]} : {wide}")
                e.emit(f"{ev} = vector.shuffle {p}, {p} [{evens}] : {wide}, {wide}")
                e.emit(f"{od} = vector.shuffle {p}, {p} [{odds}] : {wide}, {wide}")
                e.emit(f"{s} = arith.addi {ev}, {od} : {vec}")
                e.emit(f"{nv} = arith.addi {cur[r, c]}, {s} : {vec}")
                cur[r, c] = nv

    def kernel(nrows: int, cols: int, i0: str, j0: str, pidx: str, k0: str, k1: str) -> None:
        """C[i0:i0+nrows, j0:j0+cols] += A · B over the k pairs k0 .. k1: one register tile."""
        groups = -(-cols // t.vl)  # the vectors of C's columns (with `joint`, of D's bytes)
        nvec = t.nr // t.vl if joint else groups  # with `joint`, a partial panel's columns are in every vector
        masks = {}
        for c in range(groups):
            lanes = min(t.vl, cols - c * t.vl)
            if lanes < t.vl:
                mk = e.fresh("mask")
                e.emit(f"{mk} = vector.constant_mask [{lanes}] : {mask_ty}")
                masks[c] = mk
        rows_i = [e.add(i0, r) for r in range(nrows)]
        cols_j = [e.add(j0, c * t.vl) for c in range(nvec)]
        keys = [(r, c) for r in range(nrows) for c in range(nvec)]

        def load_c() -> list[str]:
            out = []
            for r, c in keys:
                v = e.fresh("acc")
                if c in masks:
                    e.emit(f"{v} = vector.maskedload %C[{rows_i[r]}, {cols_j[c]}], {masks[c]}, %zero "
                           f": {c_ty}, {mask_ty}, {vec} into {vec}")
                else:
                    e.emit(f"{v} = vector.load %C[{rows_i[r]}, {cols_j[c]}] : {c_ty}, {vec}")
                out.append(v)
            return out

        ib = e.fresh("ib")
        e.emit(f"{ib} = arith.divui {i0}, {e.idx(t.mr)} : index")
        corr = dot.corr if dot else ""

        def start() -> list[str]:
            """The first cache block's accumulators: C (or zeros), plus a dot
            kernel's correction (per row from A's last quad row, per column
            from B's)."""
            base = ["%zero"] * len(keys) if zero_c else load_c()
            if zero_c and fold:  # the requantization's addition of a row input, as the sums' start
                arg, ety = f"%E{rq.extras.index(fold[1])}", e_tys[rq.extras.index(fold[1])]
                for r in range(nrows):
                    x, v = e.fresh("rs"), e.fresh("rb")
                    e.emit(f"{x} = memref.load {arg}[{rows_i[r]}] : {ety}")
                    e.emit(f"{v} = vector.broadcast {x} : i32 to {vec}")
                    base = [v if key[0] == r else b for key, b in zip(keys, base)]
            if not corr:
                return base
            fix = {}
            if corr == "a":
                for r in range(nrows):
                    sc, v = e.fresh("cs"), e.fresh("cv")
                    e.emit(f"{sc} = memref.load %A[{ib}, {e.idx(kga)}, {e.idx(r)}] : {a_ty}")
                    e.emit(f"{v} = vector.broadcast {sc} : i32 to {vec}")
                    fix.update({(r, c): v for c in range(nvec)})
            else:
                for c in range(nvec):
                    v = e.fresh("cv")
                    e.emit(f"{v} = vector.load %B[{pidx}, {e.idx(kg)}, {e.idx(c * t.vl)}] : {b_ty}, {vec}")
                    fix.update({(r, c): v for r in range(nrows)})
            if zero_c and not fold:
                return [fix[key] for key in keys]
            out = []
            for key, v in zip(keys, base):
                x = e.fresh("acc")
                e.emit(f"{x} = arith.addi {v}, {fix[key]} : {vec}")
                out.append(x)
            return out

        if t.amx:
            amx_tile(ib, i0, nrows, nvec, cols_j, masks)
            return
        if not zero_c and not corr:  # every block adds to C
            init = dict(zip(keys, load_c()))
        elif kg <= kc:  # one cache block
            init = dict(zip(keys, start()))
        else:  # the first block starts from zero (or the correction), the others from C
            first, acc0 = e.fresh("first"), e.fresh("acc0")
            tys = ", ".join([vec] * len(keys))
            e.emit(f"{first} = arith.cmpi eq, {k0}, {e.idx(0)} : index")
            e.emit(f"{acc0}:{len(keys)} = scf.if {first} -> ({tys}) {{")
            e.indent += 1
            e.emit(f"scf.yield {', '.join(start())} : {tys}")
            e.indent -= 1
            e.emit("} else {")
            e.indent += 1
            e.emit(f"scf.yield {', '.join(load_c())} : {tys}")
            e.indent -= 1
            e.emit("}")
            init = {key: f"{acc0}#{i}" for i, key in enumerate(keys)}
        res, kv = e.fresh("res"), e.fresh("k")
        iter_args = ", ".join(f"%x{r}_{c} = {init[r, c]}" for r, c in keys)
        e.emit(f"{res}:{len(keys)} = scf.for {kv} = {k0} to {k1} step {e.idx(1)} iter_args({iter_args}) "
               f"-> ({', '.join([vec] * len(keys))}) {{")
        e.indent += 1
        if mode != "p":
            kr = e.fresh("kr")
            e.emit(f"{kr} = arith.subi {kv}, {k0} : index")
        bw = []
        for c in range(nvec):
            if t.planar:
                bw.append(planar_halves(c, mode, pidx, kv, kr if mode != "p" else None))
                continue
            bv = e.fresh("b")
            if mode == "p":
                e.emit(f"{bv} = vector.load %B[{pidx}, {kv}, {e.idx(c * t.vl)}] : {b_ty}, {vec}")
            else:
                e.emit(f"{bv} = vector.load %S[{kr}, {e.idx(c * t.vl)}] : {s_ty}, {vec}")
            if dot:
                bb = e.fresh("bb")
                e.emit(f"{bb} = vector.bitcast {bv} : {vec} to {bytes_ty}")
                bw.append(bb)
            else:
                bw.append(halves(bv, vec) if t.split else widen(bv, vec))
        cur = {key: f"%x{key[0]}_{key[1]}" for key in keys}
        (dot_rows if dot else pair_rows)(nrows, nvec, ib, kv, bw, cur)
        e.emit(f"scf.yield {', '.join(cur[key] for key in keys)} : {', '.join([vec] * len(keys))}")
        e.indent -= 1
        if rq is not None:
            # The k loop stays a loop: fully unrolled (K = 32 is 8 quads),
            # LLVM's scheduler sank each accumulator's chain of dot products
            # into its requantization and spilled the B vectors they share.
            e.emit("} {loop_annotation = #llvm.loop_annotation<unroll = #llvm.loop_unroll<disable = true>>}")
            accs = [f"{res}#{i}" for i in range(len(keys))]
            if joint:
                joint_store(accs, keys, rows_i, cols_j[:groups], masks)
            else:
                requant_store(accs, keys, rows_i, cols_j, masks)
            return
        e.emit("}")
        store_c([f"{res}#{i}" for i in range(len(keys))], keys, rows_i, cols_j, masks)

    def store_c(accs: list, keys: list, rows_i: list, cols_j: list, masks: dict) -> None:
        for v, (r, c) in zip(accs, keys):
            if c in masks:
                e.emit(f"vector.maskedstore %C[{rows_i[r]}, {cols_j[c]}], {masks[c]}, {v} "
                       f": {c_ty}, {mask_ty}, {vec}")
            else:
                e.emit(f"vector.store {v}, %C[{rows_i[r]}, {cols_j[c]}] : {c_ty}, {vec}")

    def amx_tile(ib: str, i0: str, nrows: int, nvec: int, cols_j: list, masks: dict) -> None:
        """The row tile's sums by the tile unit (`qgemm_amx`): the helper
        multiplies A's row block by the panel in S into the stack tile %AT,
        then a loop over its rows loads each, adds the sums' start (the
        correction, the requantization's row addition) and requantizes or
        stores it. A loop, not unrolled: unrolled, LLVM hoisted all 64
        loads of a 32 x 32 tile above the requantization and spilled them."""
        if t.emulate_dot:
            amx_emulated(ib, i0)
        else:
            amx_call(ib, i0)
        r, row = e.fresh("ar"), e.fresh("arow")
        e.emit(f"scf.for {r} = {e.idx(0)} to {e.idx(nrows)} step {e.idx(1)} {{")
        e.indent += 1
        e.emit(f"{row} = arith.addi {i0}, {r} : index")
        adds = []
        if start_tile:
            pass  # the sums started from the start tile
        elif fold:  # the requantization's addition of a row input, as the sums' start
            arg, ety = f"%E{rq.extras.index(fold[1])}", e_tys[rq.extras.index(fold[1])]
            x, v = e.fresh("rs"), e.fresh("rb")
            e.emit(f"{x} = memref.load {arg}[{row}] : {ety}")
            e.emit(f"{v} = vector.broadcast {x} : i32 to {vec}")
            adds.append(v)
        if dot.corr == "a" and not start_tile:  # A's correction row, per row
            x, v = e.fresh("cs"), e.fresh("cv")
            e.emit(f"{x} = memref.load %A[{ib}, {e.idx(kga)}, {r}] : {a_ty}")
            e.emit(f"{v} = vector.broadcast {x} : i32 to {vec}")
            adds.append(v)
        accs, odds = [], []
        for c in range(nvec):
            v = e.fresh("acc")
            e.emit(f"{v} = vector.load %AT[{r}, {e.idx(c * t.vl)}] : {at_ty}, {vec}")
            for a in adds:
                x = e.fresh("acc")
                e.emit(f"{x} = arith.addi {v}, {a} : {vec}")
                v = x
            accs.append(v)
            if start_tile and rq is not None:  # unused (and dropped) where no high word reads the sums
                o = e.fresh("odd")
                e.emit(f"{o} = vector.load %AT[{r}, {e.idx(c * t.vl + 1)}] : {at_ty}, {vec}")
                odds.append(o)
        keys = [(0, c) for c in range(nvec)]
        if rq is None:
            store_c(accs, keys, [row], cols_j, masks)
        elif joint:
            joint_store(accs, keys, [row], cols_j[:nvec], masks, odds)
        else:
            requant_store(accs, keys, [row], cols_j, masks, odds)
        e.indent -= 1
        e.emit("}")

    def start_rows() -> None:
        """%ST[row, :] = the row's start (the requantization's row addition
        plus A's correction), made once per call for every row: the tile
        unit loads a row block's tile of it in place of zeros, and the 16
        lanes of a row hold the same value."""
        sr, ib, r, s = e.fresh("sr"), e.fresh("sib"), e.fresh("sri"), e.fresh("ss")
        e.emit(f"scf.for {sr} = {e.idx(0)} to {e.idx(m)} step {e.idx(1)} {{")
        e.indent += 1
        terms = []
        if fold is not None:
            j = rq.extras.index(fold[1])
            x = e.fresh("rs")
            e.emit(f"{x} = memref.load %E{j}[{sr}] : {e_tys[j]}")
            terms.append(x)
        if dot.corr == "a":
            x = e.fresh("cs")
            e.emit(f"{ib} = arith.divui {sr}, {e.idx(t.mr)} : index")
            e.emit(f"{r} = arith.remui {sr}, {e.idx(t.mr)} : index")
            e.emit(f"{x} = memref.load %A[{ib}, {e.idx(kga)}, {r}] : {a_ty}")
            terms.append(x)
        s = terms[0]
        for x in terms[1:]:
            y = e.fresh("ss")
            e.emit(f"{y} = arith.addi {s}, {x} : i32")
            s = y
        v = e.fresh("sv")
        e.emit(f"{v} = vector.broadcast {s} : i32 to vector<16xi32>")
        e.emit(f"vector.store {v}, %ST[{sr}, {e.idx(0)}] : {st_ty}, vector<16xi32>")
        e.indent -= 1
        e.emit("}")

    def amx_call(ib: str, i0: str) -> None:
        ab, off, pa = e.fresh("ab"), e.fresh("aoff"), e.fresh("pa")
        e.emit(f"{ab} = memref.extract_aligned_pointer_as_index %A : {a_ty} -> index")
        e.emit(f"{off} = arith.muli {ib}, {e.idx((kga + (dot.corr == 'a')) * t.mr * 4)} : index")
        e.emit(f"{pa} = arith.addi {ab}, {off} : index")
        pb, pc = e.fresh("pb"), e.fresh("pc")
        e.emit(f"{pb} = memref.extract_aligned_pointer_as_index %S : {s_ty} -> index")
        e.emit(f"{pc} = memref.extract_aligned_pointer_as_index %AT : {at_ty} -> index")
        if start_tile:
            sb, soff, ps = e.fresh("sb"), e.fresh("soff"), e.fresh("ps")
            e.emit(f"{sb} = memref.extract_aligned_pointer_as_index %ST : {st_ty} -> index")
            e.emit(f"{soff} = arith.muli {i0}, {e.idx(64)} : index")
            e.emit(f"{ps} = arith.addi {sb}, {soff} : index")
            e.emit(f"func.call @{amx_helper}({pa}, {pb}, {pc}, {ps}) : (index, index, index, index) -> ()")
        else:
            e.emit(f"func.call @{amx_helper}({pa}, {pb}, {pc}) : (index, index, index) -> ()")

    def amx_emulated(ib: str, i0: str) -> None:
        """%AT as the helper computes it, on any CPU: per row and 16 columns
        the dot helper over every k-quad of the padded tiles, reading A's
        quad of (row, quad) where the tile layout put it (`qgemm_amx`)."""
        tr = e.fresh("er")
        e.emit(f"scf.for {tr} = {e.idx(0)} to {e.idx(t.mr)} step {e.idx(1)} {{")
        e.indent += 1
        # Row r's quad q lies at r // 16 * 256 + r % 16 * 16 + q // 16 * 16 * MR + q % 16 of the block.
        rt, rr, rbase = e.fresh("ea"), e.fresh("er"), e.fresh("eb")
        e.emit(f"{rt} = arith.divui {tr}, {e.idx(16)} : index")
        e.emit(f"{rr} = arith.remui {tr}, {e.idx(16)} : index")
        e.emit(f"{rbase} = affine.apply affine_map<(a, r) -> (a * 256 + r * 16)>({rt}, {rr})")
        tc = e.fresh("ec")
        e.emit(f"scf.for {tc} = {e.idx(0)} to {e.idx(t.nr)} step {e.idx(t.vl)} {{")
        e.indent += 1
        tq, tx, res = e.fresh("eq"), e.fresh("ex"), e.fresh("es")
        init = "%zero"
        if start_tile:  # the row's start, as the tile unit loads it
            srow, init = e.fresh("esr"), e.fresh("est")
            e.emit(f"{srow} = arith.addi {i0}, {tr} : index")
            e.emit(f"{init} = vector.load %ST[{srow}, {e.idx(0)}] : {st_ty}, vector<16xi32>")
            if t.vl != 16:
                x = e.fresh("est")
                e.emit(f"{x} = vector.extract_strided_slice {init} {{offsets = [0], sizes = [{t.vl}], "
                       f"strides = [1]}} : vector<16xi32> to {vec}")
                init = x
        e.emit(f"{res} = scf.for {tq} = {e.idx(0)} to {e.idx(kga)} step {e.idx(1)} iter_args({tx} = {init}) "
               f"-> ({vec}) {{")
        e.indent += 1
        flat, row, col = e.fresh("ef"), e.fresh("ek"), e.fresh("el")
        e.emit(f"{flat} = affine.apply affine_map<(b, q) -> (b + q floordiv 16 * {16 * t.mr} + q mod 16)>"
               f"({rbase}, {tq})")
        e.emit(f"{row} = arith.divui {flat}, {e.idx(t.mr)} : index")
        e.emit(f"{col} = arith.remui {flat}, {e.idx(t.mr)} : index")
        av, ab, abb, bv, bb, nv = (e.fresh(x) for x in ("a", "ab", "abb", "b", "bb", "x"))
        e.emit(f"{av} = memref.load %A[{ib}, {row}, {col}] : {a_ty}")
        e.emit(f"{ab} = vector.broadcast {av} : i32 to {vec}")
        e.emit(f"{abb} = vector.bitcast {ab} : {vec} to {bytes_ty}")
        e.emit(f"{bv} = vector.load %S[{tq}, {tc}] : {s_ty}, {vec}")
        e.emit(f"{bb} = vector.bitcast {bv} : {vec} to {bytes_ty}")
        x, y = (bb, abb) if dot.b_first else (abb, bb)
        e.emit(f"{nv} = func.call @{dot.helper}({tx}, {x}, {y}) : ({vec}, {bytes_ty}, {bytes_ty}) -> {vec}")
        e.emit(f"scf.yield {nv} : {vec}")
        e.indent -= 1
        e.emit("}")
        e.emit(f"vector.store {res}, %AT[{tr}, {tc}] : {at_ty}, {vec}")
        e.indent -= 1
        e.emit("}")
        e.indent -= 1
        e.emit("}")

    def odd_views(odds: list | None, n_key: int) -> dict | None:
        """The odd-lane view of accumulator n_key's sums for the program's
        high word of them (the fold step's value, or the sums themselves)."""
        if not odds:
            return None
        return {("step", fold[0]) if fold else ("arg", rq.kinds.index("acc")): odds[n_key]}

    def requant_store(accs: list, keys: list, rows_i: list, cols_j: list, masks: dict, odds=None) -> None:
        """D[row, col] = the requantization of each accumulator (rq's
        Program): row inputs loaded once per row and broadcast, tile inputs
        loaded where the accumulator's lanes are, masked in a last partial
        panel, stored as D's type (where D is pitched, at each column's
        place in its image row, `pitched_columns`)."""
        consts: dict = {}
        acc = rq.kinds.index("acc")
        out_vec = f"vector<{t.vl}x{rq.program.out_type}>"
        arg = {i: f"%E{j}" for j, i in enumerate(rq.extras)}
        ety = dict(zip(rq.extras, e_tys))
        places = {c: pitched_place(cols_j[c], masks.get(c)) for c in sorted({c for _, c in keys})} \
            if rq.pitch is not None else {}
        for r in sorted({r for r, _ in keys}):
            scalars = row_scalars(rows_i[r])
            for n_key, (r2, c) in enumerate(keys):
                if r2 != r:
                    continue
                vals = dict(scalars)
                vals[acc] = accs[n_key]
                for i in rq.extras:
                    if rq.kinds[i] != "tile":
                        continue
                    el, x = rq.program.args[i], e.fresh("rt")
                    vty = f"vector<{t.vl}x{el}>"
                    if c in masks:
                        z = e.fresh("rz")
                        e.emit(f"{z} = arith.constant dense<{'0.0' if el.startswith(('f', 'bf')) else '0'}> : {vty}")
                        e.emit(f"{x} = vector.maskedload {arg[i]}[{rows_i[r]}, {cols_j[c]}], {masks[c]}, {z} "
                               f": {ety[i]}, {mask_ty}, {vty} into {vty}")
                    else:
                        e.emit(f"{x} = vector.load {arg[i]}[{rows_i[r]}, {cols_j[c]}] : {ety[i]}, {vty}")
                    vals[i] = x
                out = rq.program.emit(e, t.vl, vals, consts, rq.ranges,
                                      given={fold[0]: vals[acc]} if fold else None,
                                      odd_views=odd_views(odds, n_key))
                store_d(rows_i[r], cols_j[c], places.get(c), masks.get(c), out, out_vec)

    def row_scalars(row: str) -> dict:
        """The requantization's row inputs at `row`, broadcast."""
        scalars = {}
        for j, i in enumerate(rq.extras):
            if rq.kinds[i] != "row":
                continue
            el, x, b = rq.program.args[i], e.fresh("rs"), e.fresh("rb")
            e.emit(f"{x} = memref.load %E{j}[{row}] : {e_tys[j]}")
            e.emit(f"{b} = vector.broadcast {x} : {el} to vector<{t.vl}x{el}>")
            scalars[i] = b
        return scalars

    def store_d(row: str, col: str, place: tuple | None, mask: str | None, v: str, vty: str) -> None:
        """D[row, col:] = v: at its `pitched_place`, masked in a last partial panel."""
        if place is not None:
            pitched_store(row, place, mask, v, vty)
        elif mask is not None:
            e.emit(f"vector.maskedstore %C[{row}, {col}], {mask}, {v} : {c_ty}, {mask_ty}, {vty}")
        else:
            e.emit(f"vector.store {v}, %C[{row}, {col}] : {c_ty}, {vty}")

    def joint_store(accs: list, keys: list, rows_i: list, cols_j: list, masks: dict, odds=None) -> None:
        """D's rows of the tile as bytes (`joint`): per row, the four
        vectors requantized up to the clamp before the narrowing, clamped
        where the bounds are tighter than a byte's, narrowed by the packs
        (`byte_pack.emit_packs`), whose order B's packing undid: byte group
        c is then the columns of vector c, stored as `requant_store` stores
        that vector."""
        consts: dict = {}
        acc = rq.kinds.index("acc")
        until, lo, hi = joint
        vty, out_vec = vec, f"vector<{t.vl}xi8>"
        places = {c: pitched_place(cols_j[c], masks.get(c)) for c in range(len(cols_j))} \
            if rq.pitch is not None else {}
        for r in sorted({r for r, _ in keys}):
            scalars = row_scalars(rows_i[r])
            xs = []
            for n_key, (r2, c) in enumerate(keys):
                if r2 != r:
                    continue
                vals = dict(scalars)
                vals[acc] = accs[n_key]
                x = rq.program.emit(e, t.vl, vals, consts, rq.ranges, until=until,
                                    given={fold[0]: vals[acc]} if fold else None, quads=quads,
                                    odd_views=odd_views(odds, n_key))
                for op, bound, limit in (("arith.maxsi", lo, -128), ("arith.minsi", hi, 127)):
                    if bound != limit:  # the packs saturate at a byte's bounds
                        y = e.fresh("cl")
                        e.emit(f"{y} = {op} {x}, {splat(e, consts, bound, vty)} : {vty}")
                        x = y
                xs.append(x)
            b = byte_pack.emit_packs(e, xs, t.vl)
            for c in range(len(cols_j)):
                g = e.fresh("g")
                e.emit(f"{g} = vector.extract_strided_slice {b} {{offsets = [{c * t.vl}], sizes = [{t.vl}], "
                       f"strides = [1]}} : vector<{4 * t.vl}xi8> to {out_vec}")
                store_d(rows_i[r], cols_j[c], places.get(c), masks.get(c), g, out_vec)

    def pitched_place(col: str, tail: str | None) -> tuple:
        """Where C's column `col` of the image lies in D's pitched row
        (`pitched_index_of`), whether a vector from there crosses the image
        row's end, and its lanes before it (stored there) and after it
        (stored W - OW further on)."""
        ow, w, _ = rq.pitch
        p, left, cross = pitched_index_of(e, col, ow, w, t.vl)
        first, rest = split_masks_of(e, left, tail, t.vl)
        return p, e.add(p, w - ow), cross, first, rest

    def pitched_store(row: str, place: tuple, tail: str | None, v: str, vty: str) -> None:
        """Stores a vector at its `pitched_place` in D's row `row`: across
        the image row's end as two masked stores."""
        p, p2, cross, first, rest = place
        e.emit(f"scf.if {cross} {{")
        e.indent += 1
        e.emit(f"vector.maskedstore %C[{row}, {p}], {first}, {v} : {c_ty}, {mask_ty}, {vty}")
        e.emit(f"vector.maskedstore %C[{row}, {p2}], {rest}, {v} : {c_ty}, {mask_ty}, {vty}")
        e.indent -= 1
        e.emit("} else {")
        e.indent += 1
        if tail is not None:
            e.emit(f"vector.maskedstore %C[{row}, {p}], {tail}, {v} : {c_ty}, {mask_ty}, {vty}")
        else:
            e.emit(f"vector.store {v}, %C[{row}, {p}] : {c_ty}, {vty}")
        e.indent -= 1
        e.emit("}")

    def store_pair(v0: str, v1: str, kr: str) -> None:
        """Scratch row kr = the two B rows as i16 pairs: widen, interleave
        (planar: one run after the other), store; with `joint`, the pairs in
        the packs' order (`byte_pack.packs_order`): vector c's lane l holds
        the pair of the column the packs put at byte c * VL + l."""
        w0, w1, z, zi = e.fresh("w"), e.fresh("w"), e.fresh("z"), e.fresh("zi")
        e.emit(f"{w0} = {ext_b} {v0} : {row8} to {row16}")
        e.emit(f"{w1} = {ext_b} {v1} : {row8} to {row16}")
        if t.planar:
            e.emit(f"{z} = vector.shuffle {w0}, {w1} [{', '.join(map(str, range(2 * t.nr)))}] : {row16}, {row16}")
        else:
            e.emit(f"{z} = vector.interleave {w0}, {w1} : {row16} -> {pair_ty}")
        e.emit(f"{zi} = vector.bitcast {z} : {pair_ty} to {prow}")
        if joint:
            zp, order = e.fresh("zp"), byte_pack.packs_order(t.vl)
            if quads:
                order = [order[c + q] for c in range(0, t.nr, t.vl) for q in quad_order(t.vl)]
            order = ", ".join(map(str, order))
            e.emit(f"{zp} = vector.shuffle {zi}, {zi} [{order}] : {prow}, {prow}")
            zi = zp
        e.emit(f"vector.store {zi}, %S[{kr}, {e.idx(0)}] : {s_ty}, {prow}")

    def store_quad(v: list[str], kr: str) -> None:
        """Scratch row kr = the four B rows as byte quads (xor 0x80 when the
        kernel flips B): two byte interleaves, then one of the i16 pairs."""
        i01, i23, w01, w23, q, qi = (e.fresh(x) for x in ("i", "i", "w", "w", "q", "qi"))
        e.emit(f"{i01} = vector.interleave {v[0]}, {v[1]} : {row8} -> {pair8}")
        e.emit(f"{i23} = vector.interleave {v[2]}, {v[3]} : {row8} -> {pair8}")
        e.emit(f"{w01} = vector.bitcast {i01} : {pair8} to {row16}")
        e.emit(f"{w23} = vector.bitcast {i23} : {pair8} to {row16}")
        e.emit(f"{q} = vector.interleave {w01}, {w23} : {row16} -> {pair_ty}")
        e.emit(f"{qi} = vector.bitcast {q} : {pair_ty} to {prow}")
        if dot.flip:
            f = e.fresh("fl")
            e.emit(f"{f} = arith.xori {qi}, %flip32 : {prow}")
            qi = f
        e.emit(f"vector.store {qi}, %S[{kr}, {e.idx(0)}] : {s_ty}, {prow}")

    def quad_rows(pk: str) -> list[str]:
        """The B rows 4pk + j of a k-quad, past K clamped to K - 1 (A is zero
        there: any value in bounds does)."""
        r0 = e.fresh("r")
        e.emit(f"{r0} = arith.muli {pk}, {e.idx(4)} : index")
        out = [r0]
        for j in (1, 2, 3):
            rj = e.fresh("r")
            e.emit(f"{rj} = arith.addi {r0}, {e.idx(j)} : index")
            if k % 4:
                rc = e.fresh("r")
                e.emit(f"{rc} = arith.minui {rj}, {e.idx(k - 1)} : index")
                rj = rc
            out.append(rj)
        return out

    def second_row(r1: str, load) -> str:
        """B row r1 = 2p + 1, or zeros past an odd K."""
        if k % 2 == 0:
            return load(r1)
        last = e.fresh("r1c")
        e.emit(f"{last} = arith.minui {r1}, {e.idx(k - 1)} : index")
        v = load(last)
        ok, sel = e.fresh("in"), e.fresh("v")
        e.emit(f"{ok} = arith.cmpi ult, {r1}, {e.idx(k)} : index")
        e.emit(f"{sel} = arith.select {ok}, {v}, %zero8 : {row8}")
        return sel

    def fill_matrix(j0: str, cols: int) -> None:
        """Scratch rows 0 .. k1-kc0 = pairs of B rows 2kc0 .. 2k1, columns j0 .. j0+cols."""
        rm = None
        if cols < t.nr:
            rm = e.fresh("rm")
            e.emit(f"{rm} = vector.constant_mask [{cols}] : {rmask}")

        def load(r: str) -> str:
            v = e.fresh("bv")
            if rm is None:
                e.emit(f"{v} = vector.load %B[{r}, {j0}] : {b_ty}, {row8}")
            else:
                e.emit(f"{v} = vector.maskedload %B[{r}, {j0}], {rm}, %zero8 : {b_ty}, {rmask}, {row8} into {row8}")
            return v

        def row():
            e.emit("%kr = arith.subi %pk, %kc0 : index")
            if dot:
                store_quad([load(r) for r in quad_rows("%pk")], "%kr")
                return
            e.emit("%r0 = arith.addi %pk, %pk : index")
            e.emit(f"%r1 = arith.addi %r0, {e.idx(1)} : index")
            store_pair(load("%r0"), second_row("%r1", load), "%kr")

        for_loop("%pk", "%kc0", "%k1", 1, row)

    def two_runs() -> bool:
        """Stride 1 and output rows at least a panel wide: a panel's columns are
        at most two runs of consecutive image values, the end of one output
        row and the start of the next."""
        return geometry.sw == 1 and geometry.ow >= t.nr

    def image_columns(j0: str) -> None:
        """Per panel: each column's image offset (oh*sh)*W + ow*sw and whether
        it exists (< N), for the gather; with two runs, where each run starts,
        which lanes the first covers, and the last row offset whose plain
        loads stay inside the image."""
        g = geometry
        e.emit(f"%j0i = arith.index_cast {j0} : index to i32")
        e.emit(f"%colb = vector.broadcast %j0i : i32 to {prow}")
        e.emit(f"%colv = arith.addi %colb, %iota : {prow}")
        e.emit(f"%ohv = arith.divui %colv, %vow : {prow}")
        e.emit(f"%oww = arith.muli %ohv, %vow : {prow}")
        e.emit(f"%owv = arith.subi %colv, %oww : {prow}")
        e.emit(f"%rowo = arith.muli %ohv, %vrow : {prow}")
        e.emit(f"%colo = arith.muli %owv, %vsw : {prow}")
        e.emit(f"%co = arith.addi %rowo, %colo : {prow}")
        e.emit(f"%cm = arith.cmpi ult, %colv, %vn : {prow}")
        if two_runs():
            e.emit(f"%rq = arith.divui {j0}, {e.idx(g.ow)} : index")
            e.emit(f"%rr = arith.remui {j0}, {e.idx(g.ow)} : index")
            e.emit(f"%ra = arith.muli %rq, {e.idx(g.sh * g.w)} : index")
            e.emit("%offa = arith.addi %ra, %rr : index")
            e.emit(f"%offb = arith.addi %offa, {e.idx(g.sh * g.w - g.ow)} : index")
            e.emit(f"%split = arith.subi {e.idx(g.ow)}, %rr : index")
            e.emit(f"%one_run = arith.cmpi uge, %split, {e.idx(t.nr)} : index")
            e.emit(f"%ma = vector.create_mask %split : {rmask}")
            e.emit(f"%ma8 = arith.extsi %ma : {rmask} to {row8}")
            e.emit(f"%mb8 = arith.xori %ma8, %ones8 : {row8}")
            # Plain loads of row base b read up to b + offb + NR - 1 < C*H*W.
            e.emit(f"%rend = arith.addi %offb, {e.idx(t.nr)} : index")
            e.emit(f"%lim = arith.subi {e.idx(g.c * g.h * g.w)}, %rend : index")

    def fill_image() -> None:
        """Scratch rows 0 .. k1-kc0 = pairs of im2col rows gathered from the image."""
        def gather(base: str) -> str:
            v = e.fresh("gv")
            e.emit(f"{v} = vector.gather %B[{base}][%co], %cm, %zero8 : {b_ty}, {prow}, {rmask}, {row8} into {row8}")
            return v

        def load(rowk: str, one_run: bool) -> str:
            """Im2col row rowk of the panel: one plain load if the panel is one
            run of the image, two merged by the lane mask if it is two."""
            base = e.fresh("base")
            t32 = e.fresh("t")
            e.emit(f"{t32} = memref.load %T[{rowk}] : memref<{group * kg}xi32>")
            e.emit(f"{base} = arith.index_cast {t32} : i32 to index")
            if not two_runs():
                return gather(base)
            fits = e.fresh("fits")
            e.emit(f"{fits} = arith.cmpi sle, {base}, %lim : index")
            out = e.fresh("rv")
            e.emit(f"{out} = scf.if {fits} -> ({row8}) {{")
            e.indent += 1
            pa, va = e.fresh("pa"), e.fresh("va")
            e.emit(f"{pa} = arith.addi {base}, %offa : index")
            e.emit(f"{va} = vector.load %B[{pa}] : {b_ty}, {row8}")
            if one_run:
                e.emit(f"scf.yield {va} : {row8}")
            else:
                # (va & m) | (vb & ~m) with a byte mask made once per panel:
                # an i1 vector mask would be rebuilt at every use.
                pb, vb, x, y, v = (e.fresh(n) for n in ("pb", "vb", "x", "y", "v"))
                e.emit(f"{pb} = arith.addi {base}, %offb : index")
                e.emit(f"{vb} = vector.load %B[{pb}] : {b_ty}, {row8}")
                e.emit(f"{x} = arith.andi {va}, %ma8 : {row8}")
                e.emit(f"{y} = arith.andi {vb}, %mb8 : {row8}")
                e.emit(f"{v} = arith.ori {x}, {y} : {row8}")
                e.emit(f"scf.yield {v} : {row8}")
            e.indent -= 1
            e.emit("} else {")
            e.indent += 1
            e.emit(f"scf.yield {gather(base)} : {row8}")
            e.indent -= 1
            e.emit("}")
            return out

        def rows(one_run: bool):
            def row():
                e.emit("%kr = arith.subi %pk, %kc0 : index")
                if dot:  # the row table repeats its last offset past K
                    r0 = e.fresh("r")
                    e.emit(f"{r0} = arith.muli %pk, {e.idx(4)} : index")
                    quad = [load(r0, one_run)]
                    for j in (1, 2, 3):
                        rj = e.fresh("r")
                        e.emit(f"{rj} = arith.addi {r0}, {e.idx(j)} : index")
                        quad.append(load(rj, one_run))
                    store_quad(quad, "%kr")
                    return
                e.emit("%r0 = arith.addi %pk, %pk : index")
                e.emit(f"%r1 = arith.addi %r0, {e.idx(1)} : index")
                v0 = load("%r0", one_run)
                v1 = load("%r1", one_run)
                if k % 2:
                    ok, sel = e.fresh("in"), e.fresh("v")
                    e.emit(f"{ok} = arith.cmpi ult, %r1, {e.idx(k)} : index")
                    e.emit(f"{sel} = arith.select {ok}, {v1}, %zero8 : {row8}")
                    v1 = sel
                store_pair(v0, v1, "%kr")
            for_loop("%pk", "%kc0", "%k1", 1, row)

        if not two_runs():
            rows(False)
            return
        # Most panels lie inside one output row (the first run covers them).
        e.emit("scf.if %one_run {")
        e.indent += 1
        rows(True)
        e.indent -= 1
        e.emit("} else {")
        e.indent += 1
        rows(False)
        e.indent -= 1
        e.emit("}")

    def panel(j0: str, cols: int, pidx: str) -> None:
        """Columns j0 .. j0+cols of C, every row, one KC block of k pairs at a time."""
        if mode == "i":
            image_columns(j0)

        def block():
            # k1 = min(kc0 + KC, K2), written as min(kc0, K2 - KC) + KC when K2 >= KC.
            e.emit(f"%kend = arith.minui %kc0, {e.idx(max(kg - kc, 0))} : index")
            e.emit(f"%k1 = arith.addi %kend, {e.idx(kc)} : index")
            if mode == "s":
                fill_matrix(j0, cols)
            elif mode == "i":
                fill_image()
            if m_main:
                for_loop("%i0", e.idx(0), e.idx(m_main), t.mr,
                         lambda: kernel(t.mr, cols, "%i0", j0, pidx, "%kc0", "%k1"))
            if m_tail:
                kernel(m_tail, cols, e.idx(m_main), j0, pidx, "%kc0", "%k1")

        for_loop("%kc0", e.idx(0), e.idx(kg), kc, block)

    e.indent = 2
    body_start = len(e.lines)
    if start_tile:
        start_rows()
    # This call computes the column panels [lo, hi): the full ones, and the
    # partial last one if hi reaches it.
    e.emit(f"%hi_full = arith.minui %hi, {e.idx(full)} : index")
    e.emit(f"%has_tail = arith.cmpi ugt, %hi, {e.idx(full)} : index")
    if full:
        def full_panel():
            e.emit(f"%j0 = arith.muli %pp, {e.idx(t.nr)} : index")
            panel("%j0", t.nr, "%pp")
        for_loop("%pp", "%lo", "%hi_full", 1, full_panel)
    if n_tail:
        e.emit("scf.if %has_tail {")
        e.indent += 1
        panel(e.idx(n_main), n_tail, e.idx(full))
        e.indent -= 1
        e.emit("}")
    body = e.lines[body_start:]
    consts = [f"    {cname} = arith.constant {v} : index" for v, cname in sorted(e.consts.items())]
    consts += [f"    %zero = arith.constant dense<0> : {vec}", f"    %zero8 = arith.constant dense<0> : {row8}",
               f"    %ones8 = arith.constant dense<-1> : {row8}"]
    if dot is not None and dot.flip and mode != "p":
        consts.append(f"    %flip32 = arith.constant dense<-2139062144> : {prow}")  # 0x80808080
    globals_ = []
    if mode == "i":
        geo = geometry
        consts += [
            f"    %iota = arith.constant dense<[{', '.join(map(str, range(t.nr)))}]> : {prow}",
            f"    %vow = arith.constant dense<{geo.ow}> : {prow}",
            f"    %vrow = arith.constant dense<{geo.sh * geo.w}> : {prow}",
            f"    %vsw = arith.constant dense<{geo.sw}> : {prow}",
            f"    %vn = arith.constant dense<{n}> : {prow}",
            f"    %T = memref.get_global @{name}_rows : memref<{group * kg}xi32>",
        ]
        globals_.append(f'memref.global "private" constant @{name}_rows : memref<{group * kg}xi32> = '
                        f"dense<[{', '.join(map(str, _row_offsets(geo, k, group * kg)))}]>")
    if t.amx:
        consts.append(f"    %AT = memref.alloca() {{alignment = 64 : i64}} : {at_ty}")
    if start_tile:
        consts.append(f"    %ST = memref.alloca() {{alignment = 64 : i64}} : {st_ty}")
    scratch_arg = f"%S: {s_ty}, " if mode in "si" else ""
    extra_args = "".join(f"%E{j}: {ty}, " for j, ty in enumerate(e_tys))
    par = parallel_name(name)
    range_fn = [
        # Public: only the runtime glue calls it (qc-lower-to-llvm hides it again).
        f"func.func @{par}_range(%A: {a_ty}, %B: {b_ty}, {scratch_arg}%C: {c_ty}, {extra_args}%lo: index, "
        "%hi: index) attributes {llvm.emit_c_interface} {",
        *consts, *body, "    return", "}",
    ]
    # The entry @{par} is defined by the runtime glue, which splits the panels
    # over the threads and calls @{par}_range on each part (with the thread's
    # scratch for modes s and i).
    tys = ", ".join([a_ty, b_ty, c_ty, *e_tys])
    names = ", ".join(["%A", "%B", "%C", *(f"%E{j}" for j in range(len(e_tys)))])
    entry = [
        f"func.func private @{par}({tys}) attributes {{llvm.emit_c_interface}}",
        f"func.func private @{name}(%A: {a_ty}, %B: {b_ty}, %C: {c_ty}{''.join(f', %E{j}: {ty}' for j, ty in enumerate(e_tys))}) {{",
        f"    func.call @{par}({names}) : ({tys}) -> ()",
        "    return", "}",
    ]
    helpers = [dot_declaration(dot.helper).rstrip()] if dot is not None else []
    if t.amx and not t.emulate_dot:
        helpers.append(qgemm_amx.declaration(amx_helper).rstrip())
    if joint:
        helpers += byte_pack.packs_declarations(t.vl)
    return "\n".join([*globals_, *helpers, *range_fn, *entry]) + "\n"


def _byte_tail(program) -> tuple | None:
    """(x, lo, hi) where the requantization ends as trunci(clamp(x, lo,
    hi)) from i32 to i8 with -128 <= lo <= hi <= 127: its bytes are then
    x clamped to [lo, hi] and narrowed with signed saturation (the packs),
    which bounds nothing more."""
    kind, t = program.result
    if kind != "step":
        return None
    s = program.steps[t]
    if s.name != "arith.trunci" or s.type != "i8" or program._type_of(s.operands[0]) != "i32":
        return None
    o, bounds = s.operands[0], {}
    for _ in range(2):
        if o[0] != "step":
            return None
        st = program.steps[o[1]]
        consts = [x for x in st.operands if x[0] == "const"]
        if st.name not in ("arith.maxsi", "arith.minsi") or st.name in bounds or len(consts) != 1 \
                or len(st.operands) != 2:
            return None
        bounds[st.name] = ir.IntegerAttr(consts[0][1]).value
        o = next(x for x in st.operands if x[0] != "const")
    lo, hi = bounds["arith.maxsi"], bounds["arith.minsi"]
    return (o, lo, hi) if -128 <= lo <= hi <= 127 else None


def parallel_name(kernel: str) -> str:
    """The runtime-side entry of a kernel (its `qc.parallel_kernels` name)."""
    return kernel.replace("qc_qgemm_", "qc_par_qgemm_", 1)


def _row_offsets(g: Im2col, k: int, count: int) -> list[int]:
    """The image offset of each im2col row r = (c, kh, kw): c*H*W + kh*dh*W +
    kw*dw; rows past K repeat the last (the kernel zeroes their values)."""
    r = np.minimum(np.arange(count), k - 1)
    c, rest = np.divmod(r, g.kh * g.kw)
    kh, kw = np.divmod(rest, g.kw)
    return (c * g.h * g.w + kh * g.dh * g.w + kw * g.dw).tolist()
