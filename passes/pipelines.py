"""Default pipelines, one per target family, as data.

Each stage is an `--emit` / `--dump-ir` point; the order of stages is the
order of the tuple, and each constraint between them is noted.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from .approximate_math import ApproximateMath
from .base import Pipeline, Stage, Upstream
from .binary_gemm import for_target as binary_gemm_for
from .bool_memory import BoolMemory
from .border_columns import BorderColumns
from .bufferize import Bufferize
from .channels_last_depthwise import ChannelsLastDepthwise
from .collapse_dims import CollapseDims
from .conv_to_gemm import ConvToGemm
from .depthwise_conv import DepthwiseConv
from .divide_by_constant import DivideByConstant
from .linalg_cleanup import LinalgCleanup
from .lower_gemm import LowerGemm
from .lower_qgemm import for_target as qgemm_for
from .lower_to_affine import LowerToAffine
from .lower_to_llvm import LowerToLLVM
from .lower_to_scf import LowerToScf
from .narrow_gemm import NarrowGemm
from .outline_ops import OutlineOps
from .parallel_loops import ParallelLoops
from .pad_border import PadBorder
from .pad_into_producer import PadIntoProducer
from .plan_memory import PlanMemory
from .pool_window import PoolWindow
from .qconv_to_gemm import QConvToGemm
from .qdepthwise_conv import QDepthwiseConv
from .round_to_integer import RoundToInteger
from .slices_in_place import SlicesInPlace
from .unshare_inits import UnshareInits
from .vector_qdepthwise import VectorQDepthwise
from .vector_reductions import VectorReductions
from .winograd_conv import WinogradConv
from .winograd_loops import WinogradLoops
from .vector_requant import VectorRequant


@dataclass(frozen=True)
class GemmTile:
    """The GEMM register tile for one ISA: MR rows x NR columns of C stay in
    registers for the whole k loop, as MR * NR/VL vectors of `vector_bits`."""

    mr: int
    nr: int
    vector_bits: int  # the kernel's vector: one register, or an RVV register group
    kc: int  # depth of a cache block (see _tile)
    budget: str  # why this tile: the register count it needs, of the registers there are
    mc: int = 72  # rows of A per cache block (MC x KC in L2)

    def pass_(self) -> LowerGemm:
        return LowerGemm(mr=self.mr, nr=self.nr, vector_bits=self.vector_bits, kc=self.kc, mc=self.mc)


def _tile(mr: int, nr: int, vector_bits: int, budget: str, kc: int = 0, mc: int = 72) -> GemmTile:
    """kc defaults to a B panel KC x NR of 4096 floats: 16 KiB, half of a
    32 KiB L1D."""
    return GemmTile(mr, nr, vector_bits, kc or 4096 // nr, budget, mc)


# Per k step the micro-kernel loads NR/VL vectors of B, takes MR scalars of A
# and does MR * NR/VL FMAs into the accumulators; the table fits accumulators,
# B vectors and A into each ISA's register file without spills (checked in
# test/codegen/gemm_*: no stack access between the FMAs and the loop branch).

# AVX2's cache blocks are 512 deep: the B panel (32 KiB) fills L1 and a
# block of A (72 x 512 floats, 144 KiB) stays in L2. Each block loads and
# stores every tile of C, from L3 where C does not fit in L2: half as many
# blocks, half that traffic and the waits for it. Measured on Zen 3
# against the 16 KiB panel (K = 256), side by side: 1024^3 0.84-0.92x ->
# 0.94-0.97x numpy (benchmarks/gemm.py), SqueezeNet 1.04x faster (its
# 1000 x 169 x 512 classifier conv alone 1.06x), the ResNet block 1.00-1.02x;
# one block of 768 or 1024 made the ResNet block's 3x3 convolutions (K = 576)
# 3% slower.
AVX2 = _tile(6, 16, 256, "16 ymm: 6x2 accumulators + 2 B + 1 broadcast A = 15 (8x16 spills: 16+2+1 > 16)", kc=512)
# AVX-512's cache blocks are deep: K up to 1024 per block, the B panel
# (128 KiB) and a block of A (100 x 1024 floats, 400 KiB) in a 1 MiB L2. The
# L1-sized panel (K = 128) stored and reloaded C 8 times over a 1024-deep
# GEMM. Measured on Zen 4: 1024^3 0.91x -> 1.10x numpy (benchmarks/gemm.py),
# ResNet-50 0.84x -> 0.91x onnxruntime (benchmarks/models.py --light).
AVX512 = _tile(10, 32, 512, "32 zmm: 10x2 accumulators + 2 B + 1 broadcast A = 23; MR is bounded by the 16 "
                            "general registers, one per row address of A: at 10 the k loop is only loads and FMAs, "
                            "at 12 it recomputes addresses (14 more instructions per k step)", kc=1024, mc=100)
# With a 48 KiB L1D (Ice Lake and later Intel cores, Zen 5), a 256-deep
# block's B panel (32 KiB) stays in L1 while the micro-kernels run over it,
# and that pays more than the fewer loads and stores of C that deeper blocks
# buy. Measured on Sapphire Rapids, side by side (benchmarks/ab.py):
# ResNet-50 1.02-1.05x faster in four runs than with 1024 (512: 1.00x);
# SqueezeNet, the transformer encoder, the MLP and 512-2048 square GEMMs
# (benchmarks/gemm.py) within 1% of it.
AVX512_L1_48K = dataclasses.replace(AVX512, kc=256, budget=AVX512.budget + "; 256-deep blocks: a 48 KiB L1D "
                                    "holds the 32 KiB B panel")
SSE = _tile(6, 8, 128, "16 xmm: 6x2 accumulators + 2 B + 1 broadcast A = 15")
NEON = _tile(6, 16, 128, "32 q: 6x4 accumulators + 4 B + A scalars in the rest (fmla by element "
                         "multiplies by an s register lane: no broadcast)")


def rvv_tile(vlen: int) -> GemmTile:
    """RVV at LMUL 2: a vector is a group of 2 registers, VL = 2*VLEN/32
    lanes, so one vfmacc does twice the work of LMUL 1 for the same issue."""
    bits = 2 * vlen
    return _tile(6, 2 * bits // 32, bits,
                 f"32 v (VLEN {vlen}) as 16 groups at LMUL 2: 6x2 accumulator groups + 2 B groups = 14; "
                 "v0-v1 stay free for tail masks; A is a scalar f register (vfmacc.vf)")


def gemm_tile(target=None) -> GemmTile:
    """The register tile for a target (AVX2 when no target is given)."""
    if target is None:
        return AVX2
    if target.arch == "riscv64":
        return rvv_tile(target.rvv_vlen) if target.rvv_vlen else SSE
    if target.arch == "aarch64":
        return NEON
    if target.arch == "x86_64":
        if target.vector_bits == 512 and (target.l1d_kib or 0) >= 48:
            return AVX512_L1_48K
        return {512: AVX512, 256: AVX2}.get(target.vector_bits, SSE)
    return SSE  # another ISA: assume 16 registers of 128 bits


def _x86_int8(target) -> tuple:
    """The int8 loops written as x86 vector code: qc-vector-qdepthwise
    (vpmaddwd: AVX-512BW, AVX2 at half the lanes, else SSE2 at a quarter;
    vpdpbusd with AVX-512 VNNI and VBMI) and qc-vector-requant
    (vpmuldq). AArch64 and RVV have widening multiplies (smull, vwmul) that
    LLVM already finds from the scalar loops."""
    if target is not None and target.arch != "x86_64":
        return ()
    bits = gemm_tile(target).vector_bits
    lanes = 32 if bits >= 512 and "+avx512bw" in target.feature_set else 16 if bits >= 256 else 8
    table = lanes == 32 and "+avx512vbmi" in target.feature_set  # vpermi2b
    dot = table and "+avx512vnni" in target.feature_set  # vpdpbusd on vpermb windows
    # The exact 64-bit requantization folded into the byte-quad kernel: 1.12x
    # on the int8 MobileNet block on a Xeon with AMX, 0.985x on Zen 4.
    wide = dot and "+amx-int8" in target.feature_set
    return (VectorQDepthwise(lanes=lanes, dot=dot, channel_requant=not table, fold_wide=wide),
            VectorRequant(table=table))


def winograd_options(target=None) -> WinogradConv:
    """qc-winograd-conv for a target: F(4, 3) where the map has at least one
    GEMM panel of 4x4 tiles (16 columns, AVX-512's 32)."""
    return WinogradConv(min_tiles_f4=max(16, gemm_tile(target).nr))


def has_fma(target=None) -> bool:
    """Whether the target fuses a multiply and an add (AVX2 when no target is given)."""
    if target is None or target.arch == "aarch64":
        return True
    if target.arch == "x86_64":
        return bool({"+fma", "+avx512f"} & target.feature_set)
    if target.arch == "riscv64":
        return bool({"+f", "+d"} & target.feature_set)
    return False


def default_pipeline(target=None) -> Pipeline:
    """The pipeline for a target: the GEMM register tile follows its vector
    registers (`gemm_tile`)."""
    return Pipeline(
        "default",
        (
            # On tensors: fusion works on SSA values. Convolutions become GEMMs
            # after it: elementwise fusion would fold the im2col copy back into
            # a convolution-shaped generic. Those with few output pixels and
            # many channels (7 x 7 maps) become transposed GEMMs first, and so
            # do the 1x1s around a depthwise on a small map, which then runs
            # channels-last between them (no transposes); 3x3
            # stride-1 ones with enough tiles and channels become Winograd
            # F(2x2, 3x3) transforms around 16 GEMMs (2.25x fewer multiplies).
            # Math functions become arithmetic so that their loops vectorize,
            # and a divide by a constant a multiply and a correction (exact).
            # Depthwise convolutions and f32 pooling become all-parallel loops
            # first (the window unrolled, the output row innermost), so that
            # fusion sees them and LLVM vectorizes along the row. A pad of an
            # integer elementwise result is written in place (before the conv
            # passes read the padded tensor).
            Stage("linalg", (DepthwiseConv(), PoolWindow(), QDepthwiseConv(), LinalgCleanup(), PadIntoProducer(),
                             NarrowGemm(), ChannelsLastDepthwise(),
                             winograd_options(target), ConvToGemm(), QConvToGemm(),
                             ApproximateMath(), DivideByConstant(fma=has_fma(target)), Upstream("canonicalize,cse"))),
            # Each op writing into an initial value gets its own (after the
            # last CSE, which merges equal ones); the parts of a Concat are
            # computed in their slices of its result; a padded tensor is filled
            # only at its border; then bufferization fixes the ABI: outputs
            # become out-params.
            Stage("bufferized", (UnshareInits(), SlicesInPlace(), PadBorder(), Bufferize())),
            # After bufferization: the Winograd transforms become loops of adds,
            # the GEMM kernels address buffers, and packed
            # constant weights become new globals; on x86 the int8 depthwise
            # and requantization loops are written as vector code; a padded
            # buffer's left and right border columns become one fill. Then every
            # remaining loop nest gets its own function: LLVM's loop passes are slow on one
            # huge function; those with enough work run on all threads, and
            # f32 row reductions become vector code. Last, the intermediates
            # get their arena offsets: the entry is then a straight list of calls.
            Stage("gemm", (WinogradLoops(), gemm_tile(target).pass_(), qgemm_for(target), binary_gemm_for(target), *_x86_int8(target),
                           BorderColumns(), CollapseDims(), OutlineOps(), ParallelLoops(), VectorReductions(lanes=gemm_tile(target).vector_bits // 32),
                           PlanMemory())),
            # The remaining linalg ops become loops; then bool buffers become
            # bytes (the ABI's bool, and LLVM lowering rejects memrefs of i1),
            # once only loads and stores touch them.
            Stage("affine", (LowerToAffine(), BoolMemory())),
            Stage("scf", (LowerToScf(),)),  # deallocation after the last pass that adds allocs
            # In the LLVM dialect, a round half to even that feeds a conversion to
            # an integer becomes one rounding conversion (vcvtps2dq).
            Stage("llvm-dialect", (LowerToLLVM(), RoundToInteger())),
        ),
    )
