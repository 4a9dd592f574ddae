"""qc-lower-gemm: f32 linalg.matmul / batch_matmul on memrefs → a register-
blocked, cache-blocked, vectorized GEMM.

C[M, N] += A[M, K] · B[K, N] is computed in MR x NR register tiles: the tile
of C lives in MR * NR/VL vector registers across the whole k loop, and each k
step broadcasts MR scalars of A and loads NR/VL vectors of B, then does
MR * NR/VL fused multiply-adds (the BLIS micro-kernel). Around it, the loop
order kc → ic → j → i keeps a KC x NR panel of B in L1 while MC rows of A
(MC x KC) stay in L2.

A constant B (a weight) is packed at compile time into panels
Bp[N/NR][K][NR], zero-padded to a multiple of NR, so the micro-kernel reads B
contiguously and needs no masks. A B computed at run time is read in place
(row stride N), with masked loads on the last partial panel. Shapes are
static, so the tails (M % MR rows, N % NR columns) get their own smaller
micro-kernels instead of run-time checks. A last column alone past whole
vectors runs across the rows instead (`LONE_COLUMNS`), where A is packed.

A run-time B with a block of A that fits in L2 (M x KC, up to STREAM_MAX_ROWS
rows) is streamed instead: each KC x NR panel of B is packed into a per-
thread scratch buffer (KC x NR floats, from the runtime) right before the
micro-kernels of every row of A use it, so packed panels never leave L1; where
all of A does not fit in L2, the cache blocks of K go outside the panels
(`blocks_outside`), so that A is not read from L3 once per panel. When B is
the im2col matrix of a convolution (qc-conv-to-gemm marks it), the panel is
gathered straight from the padded image and the im2col matrix is never
written: a 3x3 convolution reads its input, not a copy 9 times its size.
With stride 1 along the rows, a panel that lies inside one output row needs
no copy at all: row (c, kh, kw) of it is NR consecutive image values, so the
micro-kernel loads them in place, one channel per k-loop iteration with the
kh x kw taps unrolled at constant offsets (cache blocks then hold whole
channels); only the panels across output rows are gathered, a masked load
per run of consecutive image values (a vector of 16 lanes over rows of 14
is up to three runs). With stride 2, a panel's row is every other image
value: two vector loads and their even lanes (and a select where a vector
spans two output rows).

Each GEMM shape becomes one private function; the matmul is replaced by a call
to it (through memref.cast to a dynamic-offset strided layout, which also lets
batch_matmul call it on subviews). The runtime's threads split a kernel's
column panels; a batch of B and C (no bias or residual) runs as one parallel
loop over the panels of all its batches (`_emit_batched_call`).
"""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass

import numpy as np

from qc.errors import PassFailed
from qc.mlir import ir

from . import gemm_epilogue
from .base import Pass, collect_ops, run_upstream


PACK_RUNTIME_MIN_ROWS = 128
# row_split: at least this many row tiles, and a compile-time B of at most
# this many bytes (all of it in each thread's L2; 512 KiB: Zen 3's L2).
ROW_SPLIT_MIN_TILES = 4
ROW_SPLIT_MAX_B = 512 * 1024
PACK_RUNTIME_MIN_DEPTH = 128
# Streaming re-reads all of A (M x KC) for every panel of B: keep it to
# blocks of A that L2 holds (512 x 256 floats = 512 KiB).
STREAM_MAX_ROWS = 512
# A kernel whose row tiles each run across all the panels (`rows_outer`)
# reads a run-time B in place, not packed whole, up to this depth K: the
# pack (one pass over B, written once more) costs more than the panels'
# scattered rows. A panel row in place is its own pair of lines, rows N
# floats apart; deeper panels lost, likely because a panel's lines then
# crowd L1's sets (at K = 128 and N = 3136, rows 196 lines apart, 256 lines
# fall in 32 of 64 sets; this machine has no counters to confirm). Measured on
# 1x1 convolutions with a residual (Sapphire Rapids, both kernels timed
# side by side): 64 -> 256 channels at 56 x 56 0.778 -> 0.761 ms, at 28 x 28
# 0.188 -> 0.169 ms; 128 -> 512 at 28 x 28 0.70 -> 0.77 and at 56 x 56
# 3.24 -> 4.58, so those stay packed.
IN_PLACE_MAX_DEPTH = 64
# Up to this many last columns past whole vectors (49 = 3 x 16 + 1: the
# Winograd GEMMs of 7 x 7 tiles) are computed across the rows of a packed A,
# one vector of its MR values per k step times each column's B value,
# instead of in one vector per row with few lanes in use: fewer multiply-
# adds where the columns are fewer than the tile's rows. One column:
# ResNet-50's 256-channel 3x3 convolution at 14 x 14 1.11x faster, 128 at
# 28 x 28 1.08x, the model 1.012x (Sapphire Rapids). Four (196 = 12 x 16 +
# 4, ResNet-50's 1x1 convolutions at 14 x 14) measured no faster.
LONE_COLUMNS = 1
# k steps per iteration of the micro-kernel's loop. Two measured 1-2% faster
# on a 3x3 convolution (znver3), within noise; one keeps the loop the plain
# load / broadcast / FMA sequence the assembly tests check.
K_UNROLL = 1
# A micro-kernel reading the image in place unrolls its k loop over the
# filter's taps (3x3: 9 k steps per iteration); larger filters are gathered.
MAX_DIRECT_TAPS = 49
# How many panels ahead the kernels prefetch the lines the hardware
# prefetchers miss:
# - a panel gathered from inside one output row, the image lines of the panel
#   to its right: the first convolution reads the model's input, which the
#   rest of the model has pushed out of the caches, and its gather waited on
#   memory (SqueezeNet's 3x3 stride-2 stem took 1.4x as long in the model as
#   on its own; 1.47 -> 1.05 ms in the model);
# - an epilogue that adds a residual, the residual's rows: a residual is an
#   output of layers long before, and each row tile reads one line of each of
#   its rows, rows thousands of floats apart (ResNet-50's 256x3136x64 with a
#   residual: 5.9 -> 4.6 ms in the model);
# - a short k loop (STORE_PREFETCH_MAX_K), one of several row tiles of a C
#   of at least STORE_PREFETCH_MIN_BYTES, for writing, the lines of C it will
#   store. Such a C does not stay in an L2 (512 KiB on Zen 3) between uses,
#   and the stores, every K steps to lines of rows far apart, stalled the
#   micro-kernel. With caches flushed before each call (znver3): a 3x3
#   stride-2 stem (K = 27) 1.67 -> 1.14 ms in SqueezeNet; 1x1 convolutions
#   with a residual, 64 -> 256 channels at 56x56 and 128 -> 512 at 28x28,
#   1.10x each; ResNet-50's 7x7 stem (K = 147) 1.05x; K = 256 1.01x. A C
#   that stays in cache pays for them (64 -> 64 channels at 28x28: 0.97x);
#   one row tile writes the same few rows, which the hardware follows;
# - K over several cache blocks, a C of at least STORE_PREFETCH_MIN_BYTES,
#   for reading, in each block that loads C's tiles (all but the first), the
#   lines of C it will load two panels on: each block loads C again, from L3
#   when C does not fit in L2 (znver3, side by side: 1024^3 with a constant
#   B 0.99-1.04x, 2048^3 1.04x, 2048^3 with a run-time B 1.11-1.18x, the
#   ResNet block, whose 3x3 convolutions have K = 576 and 800 KB of C,
#   1.02-1.03x; ResNet-50 1.00x).
PREFETCH_PANELS = 2
LINE_FLOATS = 16  # f32s per 64-byte cache line: one prefetch each
STORE_PREFETCH_MAX_K = 160
STORE_PREFETCH_MIN_BYTES = 512 * 1024
STREAM_PREFETCH_MIN_BYTES = 2 * 1024 * 1024  # Sapphire Rapids' L2
# Names of the runs of image values one vector of an image panel can be
# (a, b: the end of one output row, the start of the next; c, d: more rows
# for maps narrower than a vector).
RUN_NAMES = "abcd"
IM2COL_ATTR = "qc.im2col"  # on qc-conv-to-gemm's im2col generic: [kh, kw, sh, sw, dh, dw]

# The kernel letter: how B reaches the micro-kernel.
B_MODES = {
    "p": "B packed at compile time",
    "q": "B packed at run time",
    "r": "B read in place",
    "s": "B packed per panel at run time",
    "i": "B gathered per panel from the image (implicit im2col)",
}


@dataclass(frozen=True)
class Im2col:
    """B[(c, kh, kw), (oh, ow)] = X[c, oh*sh + kh*dh, ow*sw + kw*dw] of one
    padded image X[C, H, W] (dense)."""

    c: int
    h: int
    w: int
    kh: int
    kw: int
    sh: int
    sw: int
    dh: int
    dw: int
    oh: int
    ow: int

    def suffix(self) -> str:
        return (f"_i{self.c}x{self.h}x{self.w}_k{self.kh}x{self.kw}_s{self.sh}x{self.sw}"
                f"_d{self.dh}x{self.dw}")


@dataclass(frozen=True)
class GemmTiles:
    mr: int  # rows of the register tile
    nr: int  # columns of the register tile (a multiple of vl)
    vl: int  # f32 lanes per vector register
    kc: int  # depth of a cache block (B panel KC x NR stays in L1)
    mc: int  # rows of a cache block (A block MC x KC stays in L2)
    max_a: int  # bytes of A a streaming kernel reads per panel (`blocks_outside`)


@dataclass(frozen=True)
class LowerGemm(Pass):
    """Needs bufferized IR with static-shape f32 linalg.matmul / batch_matmul.
    Leaves func.call to private GEMM functions built from scf.for, vector.fma
    and vector loads/stores; matmuls it cannot handle (other types, dynamic
    shapes, non-unit inner strides) are left for the generic loop lowering."""

    name = "qc-lower-gemm"
    mr: int = 6
    nr: int = 16
    vector_bits: int = 256
    kc: int = 256
    mc: int = 72
    pack_constants: bool = True
    pack_runtime: bool = True  # pack a run-time B into panels when rows reuse it
    stream: bool = True  # pack those panels one at a time into L1 (and gather im2col panels from the image)
    epilogue: bool = True  # fold the bias before and the elementwise op after into the kernel (gemm_epilogue)
    # A streaming kernel with more of A than this (bytes) runs its cache
    # blocks outside its panels (`blocks_outside`): L2 is 512 KiB on Zen 3.
    stream_max_a: int = 512 * 1024
    # The deepest K whose kernels with a large C run each row tile across all
    # their panels (`rows_outer`), twice that with a residual; 0: never.
    rows_outer_depth: int = 64
    # The largest compile-time B (bytes) whose kernels split their row tiles
    # over the threads (`row_split`); 0: always the column panels.
    row_split_max_b: int = ROW_SPLIT_MAX_B
    # The deepest K whose kernels with row tiles outside their panels read
    # a run-time B in place rather than packed whole (`IN_PLACE_MAX_DEPTH`).
    in_place_depth: int = IN_PLACE_MAX_DEPTH

    def tiles(self) -> GemmTiles:
        vl = self.vector_bits // 32
        if self.nr % vl or self.mr < 1 or self.nr < vl or self.kc < 1 or self.mc < self.mr:
            raise PassFailed(self.name, f"bad tile sizes mr={self.mr} nr={self.nr} for {vl} lanes "
                                        "(nr must be a multiple of the lanes, mc >= mr)")
        return GemmTiles(self.mr, self.nr, vl, self.kc, self.mc - self.mc % self.mr, self.stream_max_a)

    def apply(self, module: ir.Module) -> None:
        tiles = self.tiles()
        lowering = _GemmLowering(module, tiles, self.pack_constants, self.pack_runtime, self.stream, self.epilogue,
                                 self.rows_outer_depth, self.row_split_max_b, self.in_place_depth)
        for fn in list(module.body.operations):
            if fn.operation.name != "func.func":
                continue
            for op in collect_ops(fn.operation, ("linalg.matmul", "linalg.batch_matmul", "linalg.generic")):
                lowering.lower(op)
        # Ops the kernels now do go last: erasing them mid-walk would leave
        # the walk's handles to them dangling.
        for folded in lowering.folded:
            folded.erase()
        if lowering.made:
            run_upstream(self.name, "canonicalize,cse,symbol-dce", module)  # dce after the dead get_globals go


def constant_global(symbols: ir.SymbolTable, v: ir.Value):
    """(symbol, data attr) if v is (a reshape of) a constant global."""
    owner = getattr(v.owner, "operation", v.owner)  # an OpView, or a Block for arguments
    # Reshapes of a row-major constant keep its data order: look through them.
    while isinstance(owner, ir.Operation) and owner.name in ("memref.collapse_shape", "memref.expand_shape"):
        owner = getattr(owner.operands[0].owner, "operation", owner.operands[0].owner)
    if not isinstance(owner, ir.Operation) or owner.name != "memref.get_global":
        return None
    sym = ir.FlatSymbolRefAttr(owner.attributes["name"]).value
    glob = symbols[sym]
    if "constant" not in glob.attributes or "initial_value" not in glob.attributes:
        return None
    attr = glob.attributes["initial_value"]
    return (sym, attr) if isinstance(attr, ir.DenseElementsAttr) else None


def _unit_inner_stride(ty: ir.MemRefType) -> bool:
    strides, _ = ty.get_strides_and_offset()
    return strides[-1] == 1


class _GemmLowering:
    def __init__(self, module: ir.Module, tiles: GemmTiles, pack_constants: bool, pack_runtime: bool,
                 stream: bool, epilogue: bool, rows_outer_depth: int, row_split_max_b: int = ROW_SPLIT_MAX_B,
                 in_place_depth: int = IN_PLACE_MAX_DEPTH):
        self.module = module
        self.in_place_depth = in_place_depth
        self.row_split_max_b = row_split_max_b
        self.rows_outer_depth = rows_outer_depth
        self.pack_runtime = pack_runtime
        self.stream = stream
        self.epilogue = epilogue
        self.t = tiles
        self.pack_constants = pack_constants
        self.symbols = ir.SymbolTable(module.operation)
        self.made: set[str] = set()
        self.folded: list[ir.Operation] = []  # ops a kernel now does: erased after the walk
        self.packed_globals: dict[str, str] = {}

    # -- matching ---------------------------------------------------------------
    def lower(self, op) -> None:
        ins = list(op.inputs)
        outs = list(op.outputs)
        if len(ins) != 2 or len(outs) != 1:
            return
        tys = [v.type for v in (*ins, *outs)]
        if not all(isinstance(t, ir.MemRefType) for t in tys):
            return  # still on tensors: nothing to do before bufferization
        if not all(t.has_static_shape and isinstance(t.element_type, ir.F32Type) for t in tys):
            return
        a_batched = op.operation.name == "linalg.batch_matmul"
        implicit = None
        if op.operation.name == "linalg.generic":
            match = _contraction_groups(op)
            if match is None or not all(_row_major(t) for t in tys):
                return
            groups, a_batched = match
            if self.stream and not a_batched and len(groups[1]) == 3:
                implicit = _implicit_im2col(op, ins[1])
            with ir.InsertionPoint(op.operation), op.location:
                a, b, c = (_collapse(v, g) for v, g in zip((*ins, *outs), groups))
            c_groups = groups[2]
        else:
            if not all(_unit_inner_stride(t) for t in tys):
                return
            a, b, c = ins[0], ins[1], outs[0]
            c_groups = [[i] for i in range(len(ir.MemRefType(c.type).shape))]
        ep = gemm_epilogue.Epilogue()
        if self.epilogue:
            buf = _buffer_groups(outs[0], c_groups)
            ep = gemm_epilogue.find(op.operation, outs[0], buf[-2], buf[-1], buf[0] if len(buf) == 3 else [])
            inputs = {_root(v) for v in ins}
            if ep.dest is not None and _root(ep.dest) in inputs or ep.residual is not None and _root(ep.residual) in \
                    {_root(ep.dest if ep.dest is not None else outs[0])}:
                ep = gemm_epilogue.Epilogue()
        pitch = None
        if ep.dest is not None and gemm_epilogue.pitched(ir.MemRefType(ep.dest.type)):
            groups_d = _buffer_groups(outs[0], c_groups)  # C's row, column (and batch) dims in D
            pitch = self._pitch(ep, groups_d, ir.MemRefType(b.type).shape[-2])
            if pitch is None:
                ep.drop_chain()  # the chain writes the padded image in its own loop
        with ir.InsertionPoint(op.operation), op.location:
            like_c = lambda v: _collapse(_view_like(outs[0], v), c_groups)  # noqa: E731
            if pitch is not None:
                c = _pitched_view(ep.dest, groups_d, ir.MemRefType(c.type).rank)
            elif ep.dest is not None:
                c = like_c(ep.dest)
            bias = ep.bias
            if bias is not None and ir.MemRefType(bias.type).rank > 2:  # [G1, G2, M]: one row per batch
                rank = ir.MemRefType(bias.type).rank
                bias = _collapse(bias, [list(range(rank - 1)), [rank - 1]])
            extras = ([bias] if bias is not None else []) + \
                ([like_c(ep.residual)] if ep.residual is not None else [])
        shape_c, shape_b = list(ir.MemRefType(c.type).shape), list(ir.MemRefType(b.type).shape)
        bsz = shape_c[0] if len(shape_c) == 3 else 0
        m, n = shape_c[-2:]
        if pitch is not None:  # C's columns are D's image, not its pitched rows
            n = pitch[2]
        k = shape_b[-2]
        tiles = self.t
        try:
            self.t = self._row_tiles(m, n, b, bsz)
            self._lower_call(op, ins, a, b, c, bsz, m, n, k, a_batched, implicit, ep, pitch, extras)
        finally:
            self.t = tiles

    def _row_tiles(self, m: int, n: int, b: ir.Value, bsz: int) -> GemmTiles:
        """The tiles for one GEMM. A few rows by a compile-time B (a
        matrix-vector product: a batch-1 MatMul or Gemm) read B once, from
        memory: twice NR columns keep twice the accumulators, whose
        independent FMA chains let the core keep more of B's loads in
        flight (1 x 2048 x 2048 on Zen 3: 1.1x faster on 1 and 2 threads).
        Up to MR/3 rows, so that their accumulators and twice the B
        vectors fit the registers of the full tile (AVX2's 6 x 16: 2 x 4
        accumulators + 4 B + 1 broadcast = 13 of 16 ymm)."""
        t = self.t
        if m <= t.mr // 3 and n >= 2 * t.nr and not bsz and self.pack_constants \
                and constant_global(self.symbols, b) is not None:
            return dataclasses.replace(t, nr=2 * t.nr)
        return t

    def _lower_call(self, op, ins, a, b, c, bsz, m, n, k, a_batched, implicit, ep, pitch, extras) -> None:
        """Packs what is constant, builds the kernel (self.t's tiles) and calls it in op's place."""
        packed = None
        if self.pack_constants and not bsz:
            packed = self._packed_constant(b, k, n)
        # Static row strides let LLVM fold the row addressing of A and C into
        # constant offsets (a dynamic stride costs address arithmetic per row).
        rows = tuple(ir.MemRefType(v.type).get_strides_and_offset()[0][-2] for v in (a, b, c))
        residual = ep is not None and ep.residual is not None
        mode = self._mode(m, n, k, packed is not None, implicit is not None, residual)
        geometry = implicit[0] if mode == "i" else None
        a_packed = None
        if self.pack_constants and mode != "p":
            a_packed = self._packed_constant_a(a, m, k, bsz if a_batched else 0)
        if a_packed is not None:
            a = a_packed
        fname = self._kernel(m, n, k, mode, rows, geometry, a_packed is not None, ep, pitch)
        with ir.InsertionPoint(op.operation), op.location:
            if mode == "i":
                self._emit_image_call(fname, a, implicit[1], c, bsz, m, n, k, geometry, rows, a_packed is not None,
                                      extras, pitch)
            else:
                if bsz > 1 and mode in ("r", "s") and not extras and pitch is None:
                    self._emit_batched_call(fname, mode, a, b, c, bsz, m, n, k, a_batched, rows, a_packed is not None)
                else:
                    self._emit_call(fname, a, packed if packed is not None else b, c, bsz, m, n, k, mode == "p",
                                    a_batched, rows, a_packed is not None, extras, pitch)
        op.operation.erase()
        self.folded += ep.erase  # the kernel starts from the bias and ends with the elementwise chain
        if mode == "i":  # this GEMM no longer reads the im2col matrix
            view = ins[1].owner.operation
            col = view.operands[0]
            if not list(view.results[0].uses):
                view.erase()
            # Another contraction may still read what this im2col op wrote (two
            # convolutions of one input share it): it stays until none does.
            if not _reads_before_next_write(implicit[2], col):
                self.folded.append(implicit[2])

    def _pitch(self, ep: gemm_epilogue.Epilogue, c_groups: list[list[int]], k: int):
        """(OW, W, N) where the chain's destination D, a pitched image (rows W
        apart) shaped like C, can take the kernel's stores row by row: C's
        columns are D's last two dims (N = OH * OW), its rows one dim and any
        other dim unit; each vector crosses at most one row end (OW >= the
        vector width); the accumulators start
        from a bias or constant (C itself is read only for the partial
        sums of earlier cache blocks, which the kernel stores there). Else
        None."""
        d_ty = ir.MemRefType(ep.dest.type)
        r = d_ty.rank
        shape = d_ty.shape
        if c_groups[-1] != [r - 2, r - 1] or len(c_groups) < 2 or len(c_groups[-2]) != 1 \
                or any(shape[d] != 1 for g in c_groups[:-2] for d in g):
            return None
        if shape[-1] < self.t.vl or ep.init == "load" or ep.residual is not None:
            return None
        return shape[-1], d_ty.get_strides_and_offset()[0][-2], shape[-2] * shape[-1]

    def _mode(self, m: int, n: int, k: int, packed: bool, implicit: bool, residual: bool) -> str:
        """The kernel's B mode (B_MODES). Packing costs one pass over B;
        measured here, it pays once B is reused by many row tiles (512^3: 2.4x
        faster) or when the panel is deep, so that reading it in place walks
        many pages (64x3136x576, a 3x3 conv: 35 -> 60 GFLOP/s), but not for a
        shallow B with few rows (64x3136x64: 72 -> 67) unless C is large,
        when the row tiles go outside the panels (`rows_outer`)."""
        if packed:
            return "p"
        if implicit and m <= STREAM_MAX_ROWS:
            return "i"
        if self.pack_runtime and self._rows_outer(m, n, k, residual):
            # Each row tile reads all of B: in place where its panels are
            # shallow (`IN_PLACE_MAX_DEPTH`), else packed whole, even for few rows.
            return "r" if k <= self.in_place_depth else "q"
        if not self.pack_runtime or (m < PACK_RUNTIME_MIN_ROWS and k < PACK_RUNTIME_MIN_DEPTH):
            return "r"
        return "s" if self.stream and m <= STREAM_MAX_ROWS else "q"

    def _rows_outer(self, m: int, n: int, k: int, residual: bool) -> bool:
        return rows_outer(m, n, k, self.rows_outer_depth, residual)

    def _packed_global(self, v: ir.Value, name: str, make) -> ir.Value:
        """A get_global (before v's definition) of the constant `name`, created
        from make() -> numpy array the first time."""
        packed = self.packed_globals.get(name)
        if packed is None:
            data = make()
            ty = ir.MemRefType.get(list(data.shape), ir.F32Type.get())
            dense = ir.DenseElementsAttr.get(data, type=ir.F32Type.get())
            with ir.InsertionPoint(self.module.body), ir.Location.unknown():
                g = ir.Operation.create(
                    "memref.global",
                    attributes={
                        "sym_name": ir.StringAttr.get(name),
                        "sym_visibility": ir.StringAttr.get("private"),
                        "type": ir.TypeAttr.get(ty),
                        "initial_value": dense,
                        "constant": ir.UnitAttr.get(),
                        "alignment": ir.IntegerAttr.get(ir.IntegerType.get_signless(64), 64),
                    },
                )
            g.move_before(self.module.body.operations[0])
            self.packed_globals[name] = packed = ty
        with ir.InsertionPoint(v.owner.operation if hasattr(v.owner, "operation") else v.owner), \
                ir.Location.unknown():
            return ir.Operation.create("memref.get_global", results=[packed],
                                       attributes={"name": ir.FlatSymbolRefAttr.get(name)}).result

    @staticmethod
    def _values(attr, rows: int, cols: int) -> np.ndarray:
        if attr.is_splat:
            return np.full((rows, cols), float(attr.get_splat_value().value), np.float32)
        return np.array(attr).reshape(rows, cols)

    def _packed_constant(self, b: ir.Value, k: int, n: int):
        """If B is a constant global, a get_global of its packed copy:
        Bp[p, kk, j] = B[kk, p * NR + j], zero-padded to whole panels."""
        found = constant_global(self.symbols, b)
        if found is None:
            return None
        sym, attr = found
        nr = self.t.nr

        def make():
            npanels = -(-n // nr)
            padded = np.zeros((k, npanels * nr), np.float32)
            padded[:, :n] = self._values(attr, k, n)
            return np.ascontiguousarray(padded.reshape(k, npanels, nr).transpose(1, 0, 2))

        return self._packed_global(b, f"{sym}_packed{nr}", make)

    def _packed_constant_a(self, a: ir.Value, m: int, k: int, bsz: int = 0):
        """If A is a constant global (a convolution's weights), a get_global of
        its copy in row panels Ap[ib, kk, r] = A[ib * MR + r, kk] (zero rows
        past M): the micro-kernel's MR broadcasts per k step then read one
        contiguous stream instead of MR rows far apart. A batched A (bsz > 0:
        Winograd's transformed weights) is packed batch by batch,
        Ap[b, ib, kk, r]: read in place, its MR rows were MR streams of K
        floats each, too short for the hardware prefetchers to follow, and
        the weights come from L3 in a model (a 256-channel 3x3 convolution
        at 14 x 14, caches flushed before each call, 1.15x faster; ResNet-50
        1.025x, Sapphire Rapids)."""
        found = constant_global(self.symbols, a)
        if found is None:
            return None
        sym, attr = found
        mr = self.t.mr

        def make():
            nblocks = -(-m // mr)
            batches = max(bsz, 1)
            padded = np.zeros((batches, nblocks * mr, k), np.float32)
            padded[:, :m] = self._values(attr, batches * m, k).reshape(batches, m, k)
            packed = np.ascontiguousarray(padded.reshape(batches, nblocks, mr, k).transpose(0, 1, 3, 2))
            return packed if bsz else packed[0]

        return self._packed_global(a, f"{sym}_rows{mr}", make)

    # -- the call site ----------------------------------------------------------
    def _emit_call(self, fname, a, b, c, bsz, m, n, k, packed, a_batched, rows, a_packed=False,
                   extras=(), pitch=None) -> None:
        """The call of the kernel; `extras`: the epilogue's bias (shared) and
        residual (shaped like C) after C."""
        from qc.mlir import func, memref

        a_ty, b_ty, c_ty = _arg_types(m, n, k, self.t, "p" if packed else "r", rows, a_packed=a_packed, pitch=pitch)
        if not bsz:
            args = [memref.cast(a_ty, a), b if packed else memref.cast(b_ty, b), memref.cast(c_ty, c)]
            args += [_bias_arg(v) if ir.MemRefType(v.type).rank == 1 else memref.cast(c_ty, v) for v in extras]
            func.CallOp([], ir.FlatSymbolRefAttr.get(fname), args)
            return
        from qc.mlir import arith
        from mlir.dialects import scf

        idx = ir.IndexType.get()
        lo = arith.ConstantOp(idx, 0).result
        hi = arith.ConstantOp(idx, bsz).result
        one = arith.ConstantOp(idx, 1).result
        loop = scf.ForOp(lo, hi, one)
        with ir.InsertionPoint(loop.body):
            i = loop.induction_variable
            # A is shared by every batch when it has no batch dim (a convolution's weights).
            views = [_batch_slice(a, i) if a_batched else a, _batch_slice(b, i), _batch_slice(c, i)]
            more = [_extra_of_batch(v, i, c_ty) for v in extras]
            func.CallOp([], ir.FlatSymbolRefAttr.get(fname),
                        [memref.cast(t, v) for t, v in zip((a_ty, b_ty, c_ty), views)] + more)
            scf.YieldOp([])

    def _emit_batched_call(self, fname, mode, a, b, c, bsz, m, n, k, a_batched, rows, a_packed) -> None:
        """The call of the kernel on every batch of C[bsz, M, N] (Winograd's
        16 transformed products, a batched MatMul) as one parallel loop over
        the batches' column panels together, rather than a loop of parallel
        calls, one per batch: a batch of a few panels (49 columns are 4
        panels of 16, 3 and a bit on a 13 x 13 map) splits unevenly over the
        threads, and every batch waited for its slowest thread. Unit u of
        [0, bsz * panels) is panel u % panels of batch u // panels; the
        threads' ranges cut across batches, and each batch's part runs the
        kernel's range function on its view."""
        from qc.mlir import func

        t = self.t
        panels = -(-n // t.nr)
        full = [str(v.type) for v in (a, b, c)]
        digest = hashlib.sha1(repr((fname, bsz, a_batched, full)).encode()).hexdigest()[:6]
        name = f"{fname}_x{bsz}_{digest}"
        if name not in self.made:
            self.made.add(name)
            scratch = [block_depth(t, k, mode, None, m), t.nr] if mode == "s" else []
            text = _batched_function(name, fname, full, _type_text(m, n, k, t, "r", rows, a_packed=a_packed),
                                     a_batched, panels, scratch)
            parsed = ir.Module.parse(text)
            for fn in list(parsed.body.operations)[1:]:  # not the kernel's declaration
                self.module.body.append(fn)
            # Thread t's units are a run of whole batches where the split
            # falls between batches: C's leading dim, as a row split's.
            _record_parallel_kernel(self.module, name, bsz * panels, 3, scratch, bsz * m * n * k, rows=True)
        func.CallOp([], ir.FlatSymbolRefAttr.get(name), [a, b, c])

    # -- the kernel function ----------------------------------------------------
    def _emit_image_call(self, fname, a, x, c, bsz, m, n, k, g: "Im2col", rows, a_packed, extras=(),
                         pitch=None) -> None:
        """Calls an implicit-im2col kernel on each image: A, the image X[i]
        flattened to one dim, and C[i]."""
        from mlir.dialects import scf

        from qc.mlir import arith, func, memref

        a_ty, x_ty, c_ty = _arg_types(m, n, k, self.t, "i", rows, g, a_packed, pitch=pitch)
        flat = _collapse(x, [[0], [1, 2, 3]])
        idx = ir.IndexType.get()
        lo, hi, one = (arith.ConstantOp(idx, v).result for v in (0, bsz, 1))
        loop = scf.ForOp(lo, hi, one)
        with ir.InsertionPoint(loop.body):
            i = loop.induction_variable
            more = [_extra_of_batch(v, i, c_ty) for v in extras]
            func.CallOp([], ir.FlatSymbolRefAttr.get(fname),
                        [memref.cast(a_ty, a), _row_slice(flat, i),
                         memref.cast(c_ty, _batch_slice(c, i))] + more)
            scf.YieldOp([])

    # -- the kernel function ----------------------------------------------------
    def _kernel(self, m, n, k, mode, rows, geometry=None, a_packed=False, ep=None, pitch=None) -> str:
        t = self.t
        ep = ep or gemm_epilogue.Epilogue()
        if mode in ("q", "r") and self.pack_runtime and self._rows_outer(m, n, k, ep.residual is not None):
            t = dataclasses.replace(t, mc=t.mr)
        name = f"qc_sgemm_{m}x{n}x{k}_{mode}{t.mr}x{t.nr}"
        if rows != (k, n, n):
            name += "_s" + "_".join(map(str, rows))
        if geometry is not None:
            name += geometry.suffix()
        if a_packed:
            name += "_pa"
        split = mode == "p" and geometry is None and pitch is None and not a_packed \
            and row_split(m, n, k, t, self.row_split_max_b)
        if split:
            name += "_rows"
        name += ep.suffix()
        if pitch is not None:
            name += f"_cp{pitch[0]}x{pitch[1]}"
        if name in self.made:
            return name
        text = gemm_function(name, m, n, k, t, mode, rows, geometry, a_packed, ep.static(), pitch, split)
        parsed = ir.Module.parse(text)
        for fn in list(parsed.body.operations):
            self.module.body.append(fn)
        self.made.add(name)
        scratch = [block_depth(t, k, mode, geometry, m), t.nr] if mode in "si" else []
        extra = (ep.bias is not None) + (ep.residual is not None)
        units = -(-m // t.mr) if split else -(-n // t.nr)
        _record_parallel_kernel(self.module, name, units, (4 if mode == "q" else 3) + extra, scratch, m * n * k,
                                rows=split)
        return name


PARALLEL_ATTR = "qc.parallel_kernels"


def _f32_literal(value: float) -> str:
    """An f32 as MLIR reads it: infinities and NaN by their bits."""
    import struct

    if np.isfinite(value):
        return repr(float(np.float32(value)))
    return "0x%08X" % struct.unpack("<I", struct.pack("<f", value))[0]


def balanced_kc(kc: int, k: int) -> int:
    """The cache block depth for K: at most kc, as equal as the blocks can be
    (576 = 3 x 192 rather than 256 + 256 + 64: a short last block pays the C
    tile's loads and stores for little work), and even when K is (an even
    depth allows K_UNROLL = 2)."""
    blocks = -(-k // kc)
    depth = -(-k // blocks)
    if k % 2 == 0 and depth % 2:
        depth += 1
    return min(depth, k)


def _direct_reads(t: GemmTiles, mode: str, geometry: Im2col | None) -> bool:
    """Whether the micro-kernel reads the image panels that lie inside one
    output row in place (stride 1 along rows), a channel per iteration of
    its k loop with the filter's taps unrolled."""
    return mode == "i" and geometry.sw == 1 and geometry.kh * geometry.kw <= min(t.kc, MAX_DIRECT_TAPS)


def block_depth(t: GemmTiles, k: int, mode: str, geometry: Im2col | None, m: int) -> int:
    """The kernel's cache block depth: balanced_kc, in whole channels where
    the micro-kernel reads the image in place. A compile-time B read by one
    row tile (M <= MR) has no reuse to keep in L1: one block, so that each
    panel is one run of memory and C is written once (two 1 x 2048 x 2048
    MatMuls, 32 MB of weights: 1.08x faster than in blocks of 256, copies of
    both libraries timed side by side; where a weight's pages land moves one
    library by up to 20%)."""
    if mode == "p" and m <= t.mr:
        return k
    if not _direct_reads(t, mode, geometry):
        return balanced_kc(t.kc, k)
    taps = geometry.kh * geometry.kw
    chans = k // taps
    blocks = -(-chans // (t.kc // taps))
    return -(-chans // blocks) * taps


def rows_outer(m: int, n: int, k: int, depth: int, residual: bool) -> bool:
    """Whether a run-time B is packed whole and each row tile of C runs
    across all the kernel's panels before the next (MC = MR), rather than
    each panel through every row tile. C is row-major, so a panel's row
    tiles write (and, with a residual, read) NR columns from each of M rows
    a page or more apart, which the hardware prefetchers do not follow;
    across the panels, each of a tile's MR rows is one sequential run. The
    whole packed B (K x N) is then read again per row tile, from L2.
    That pays where C's traffic is large against the arithmetic: a C that
    L2 does not keep, and K up to `depth` (LowerGemm.rows_outer_depth),
    twice that with a residual to read. Measured on 1x1 convolutions at
    56 x 56 (Sapphire Rapids): 32 -> 96 channels 0.143 -> 0.129 ms, 64 ->
    256 0.60 -> 0.55, and with a residual 0.85 -> 0.63; but 128 -> 128
    without one 0.66 -> 0.76."""
    return k <= depth * (2 if residual else 1) and 4 * m * n >= STORE_PREFETCH_MIN_BYTES


def row_split(m: int, n: int, k: int, t: GemmTiles, max_b: int = ROW_SPLIT_MAX_B) -> bool:
    """Whether the threads split a kernel with a compile-time B by its row
    tiles rather than its column panels. Each thread then reads all of B
    and only its own rows of A and C, where a split of the panels has each
    read all of A and write a band of columns of every row. The elementwise
    ops around the GEMM split their rows (qc-parallel-loops takes the first
    dim), so with the rows split a layer's activations stay in the cache of
    the core that made them: in the transformer encoder (64 tokens, 128 x
    512 weights) the panel split's GEMMs, each reading half of A from the
    other core, ran 1.2-1.5x as long on two threads as on one per half
    (Sapphire Rapids). Taken for a B that each core's L2 holds
    (`max_b`, LowerGemm.row_split_max_b) and rows for two tiles per thread on two threads
    (ROW_SPLIT_MIN_TILES); a larger B would be streamed once per thread."""
    return -(-m // t.mr) >= ROW_SPLIT_MIN_TILES and 4 * k * n <= max_b


def blocks_outside(t: GemmTiles, m: int, k: int, mode: str) -> bool:
    """Whether a streaming kernel (s, i) runs its cache blocks outside its
    panels, for t.kc its block depth. Panels outside read all of A for every
    panel: an A that L2 does not hold comes from L3 that many times (a 3x3
    convolution over 256 channels at 14x14: 2.36 MB of A, 13 times per
    call). Blocks outside read each block of A from L2 for all the panels,
    and load and store C's tiles once per block instead; the last block then
    runs the epilogue's chain in the micro-kernel. Measured on znver3 in
    ResNet-50: its 3x3 kernels at 14x14 and 28x28 6-8% faster."""
    return mode in ("s", "i") and k > t.kc and 4 * m * k > t.max_a


def parallel_entry(kernel: str) -> str:
    """The runtime-side entry that runs `kernel` on the context's threads
    (qc_sgemm_X: qc_par_sgemm_X; qc_model_part3: qc_par_model_part3; a name
    that is one already, as qc-lower-qgemm lists its kernels, stays)."""
    assert kernel.startswith("qc_"), kernel
    return kernel if kernel.startswith("qc_par_") else "qc_par_" + kernel[len("qc_"):]


def _record_parallel_kernel(module: ir.Module, name: str, panels: int, operands: int,
                            scratch: list[int], work: int = 0, rows: bool = False) -> None:
    """Lists the kernel on the module for the runtime glue the session
    generates: `parallel_entry(name)` splits `panels` over the threads and calls
    `<name>_range` with its `operands` memrefs, plus, if `scratch` gives a
    shape, the calling thread's scratch buffer as an f32 memref of that shape
    (after the second operand). `work`: its multiply-adds, if known; the
    runtime keeps small kernels on one thread (waking others costs more).
    rows: the units split C (its third operand) along its leading dim (row
    tiles, or batches), not into column panels."""
    attrs = module.operation.attributes
    entries = list(attrs[PARALLEL_ATTR]) if PARALLEL_ATTR in attrs else []
    i64 = ir.IntegerType.get_signless(64)
    entry = {
        "name": ir.StringAttr.get(name),
        "panels": ir.IntegerAttr.get(i64, panels),
        "operands": ir.IntegerAttr.get(i64, operands),
    }
    if scratch:
        entry["scratch"] = ir.DenseI64ArrayAttr.get(scratch)
    if work:
        entry["work"] = ir.IntegerAttr.get(i64, work)
    if rows:
        entry["rows"] = ir.UnitAttr.get()
    entries.append(ir.DictAttr.get(entry))
    attrs[PARALLEL_ATTR] = ir.ArrayAttr.get(entries)


def _row_major(ty: ir.MemRefType) -> bool:
    """Dense row-major (identity or equivalent strided layout, at any
    offset): any dims collapse. A dim of size 1 may have any stride (a slice
    of one batch or channel block of a larger buffer, e.g. one output of a
    Split along the channels)."""
    strides, _ = ty.get_strides_and_offset()
    acc = 1
    for d, s in zip(reversed(ty.shape), reversed(strides)):
        if d != 1 and s != acc:
            return False
        acc *= d
    return True


def _contraction_groups(op):
    """contraction_dims of an f32 multiply-add generic; None for another payload."""
    return contraction_dims(op) if _is_mul_add(op) else None


def contraction_dims(op):
    """Matches a linalg.generic shaped as
        C[batch.., M.., N..] += A[(batch..,) M.., K..] * B[batch.., K.., N..]
    (any payload) and returns the operand dims to collapse into (batch, m, k),
    (batch, k, n), (batch, m, n) (no batch group when there is none), and
    whether A has the batch dims (if not, A is shared by every batch: a
    convolution's weights). None if the op is not shaped so.

    Reshapes folded into a matmul by elementwise fusion (a MatMul followed by a
    Reshape that splits heads) and im2col convolutions produce such generics.
    """
    iters = [str(a) for a in op.iterator_types]
    ks = [i for i, it in enumerate(iters) if "reduction" in it]
    if not ks:
        return None
    dims = []
    for m in (ir.AffineMapAttr(a).value for a in op.indexing_maps):
        if not all(isinstance(e, ir.AffineDimExpr) for e in m.results):
            return None
        dims.append([e.position for e in m.results])
    da, db, dc = dims
    if sorted(dc) != [i for i in range(len(iters)) if i not in ks]:
        return None
    a_batched = bool(dc) and dc[0] in da and dc[0] in db
    batch = []
    for d in dc:
        if d in db and (d in da) == a_batched:
            batch.append(d)
        else:
            break
    rest = dc[len(batch):]
    ms = [d for d in rest if d in da and d not in db]
    ns = [d for d in rest if d in db and d not in da]
    k_order = [d for d in da if d in ks]  # reduction dims, in A's order (B must agree)
    if not ms or not ns or rest != ms + ns or sorted(k_order) != ks:
        return None
    a_batch = batch if a_batched else []
    if da != a_batch + ms + k_order or db != batch + k_order + ns:
        return None  # transposed operands: left to the loop lowering
    nk = len(ks)
    return (_regroup(len(a_batch), len(ms), nk), _regroup(len(batch), nk, len(ns)),
            _regroup(len(batch), len(ms), len(ns))), a_batched


def _regroup(nb: int, n1: int, n2: int) -> list[list[int]]:
    out = [list(range(nb))] if nb else []
    out.append(list(range(nb, nb + n1)))
    out.append(list(range(nb + n1, nb + n1 + n2)))
    return out


def _is_mul_add(op) -> bool:
    """The payload is acc + a * b (in either operand order)."""
    block = op.regions[0].blocks[0]
    body = [o for o in block.operations]
    if len(body) != 3 or [o.operation.name for o in body] != ["arith.mulf", "arith.addf", "linalg.yield"]:
        return False
    a, b, acc = block.arguments
    mul, add, yld = body

    def same_pair(x, y, p, q):
        return (x == p and y == q) or (x == q and y == p)

    return (same_pair(mul.operands[0], mul.operands[1], a, b)
            and same_pair(add.operands[0], add.operands[1], mul.result, acc)
            and yld.operands[0] == add.result)


def _collapse(v: ir.Value, groups: list[list[int]]) -> ir.Value:
    from qc.mlir import memref

    ty = ir.MemRefType(v.type)
    if all(len(g) == 1 for g in groups):
        return v
    return memref.CollapseShapeOp(_collapsed_type(ty, groups), v, ir.ArrayAttr.get(
        [ir.ArrayAttr.get([ir.IntegerAttr.get(ir.IntegerType.get_signless(64), i) for i in g]) for g in groups]
    )).result


def _collapsed_type(ty: ir.MemRefType, groups: list[list[int]]) -> ir.MemRefType:
    """ty with each group of dims as one: identity layout for an identity
    layout; else (a contiguous view with an offset, the slice of a Concat's
    result an epilogue writes) each group's stride is its innermost dim's."""
    shape = [int(np.prod([ty.shape[i] for i in g])) for g in groups]
    if gemm_epilogue._dense(ty):
        return ir.MemRefType.get(shape, ty.element_type)
    strides, offset = ty.get_strides_and_offset()
    layout = ir.StridedLayoutAttr.get(offset, [strides[g[-1]] for g in groups])
    return ir.MemRefType.get(shape, ty.element_type, layout)


def _batch_slice(v: ir.Value, i: ir.Value) -> ir.Value:
    """v[i] of a memref (rank 3, or 4: a packed A), as a strided view of one rank less."""
    from qc.mlir import memref

    ty = ir.MemRefType(v.type)
    rest = list(ty.shape[1:])
    dyn = ir.ShapedType.get_dynamic_stride_or_offset()
    return memref.SubViewOp(_slice_type(ty), v, [i], [], [],
                            static_offsets=[dyn] + [0] * len(rest), static_sizes=[1] + rest,
                            static_strides=[1] * (len(rest) + 1)).result


def _slice_type(ty: ir.MemRefType) -> ir.MemRefType:
    """The type of one batch of a memref: one rank less, its strides, any offset."""
    strides, _ = ty.get_strides_and_offset()
    layout = ir.StridedLayoutAttr.get(ir.ShapedType.get_dynamic_stride_or_offset(), strides[1:])
    return ir.MemRefType.get(ty.shape[1:], ty.element_type, layout)


def _batched_function(name: str, kernel: str, full: list[str], kernel_tys: tuple, a_batched: bool,
                      panels: int, scratch: list[int]) -> str:
    """`_emit_batched_call`'s functions: @{name}_range(A, B, [S,] C, lo, hi)
    runs units [lo, hi) of the batches' panels through @{kernel}_range, and
    @{name} calls the runtime's parallel entry for it."""
    a_full, b_full, c_full = full
    s_ty = f"memref<{scratch[0]}x{scratch[1]}xf32>" if scratch else None
    views = []
    for v, ty, kty, batched in (("A", a_full, kernel_tys[0], a_batched), ("B", b_full, kernel_tys[1], True),
                                ("C", c_full, kernel_tys[2], True)):
        src = f"%{v}"
        if batched:
            shape, one = ir.MemRefType.parse(ty).shape, str(_slice_type(ir.MemRefType.parse(ty)))
            rest = len(shape) - 1
            views.append(f"      %{v}s = memref.subview %{v}[%i{', 0' * rest}] [1, {', '.join(map(str, shape[1:]))}] "
                         f"[{', '.join(['1'] * len(shape))}] : {ty} to {one}")
            src, ty = f"%{v}s", one
        views.append(f"      %{v}k = memref.cast {src} : {ty} to {kty}")
    s_param = f"%S: {s_ty}, " if s_ty else ""
    call_args = ["%Ak", "%Bk", *(["%S"] if s_ty else []), "%Ck", "%plo", "%phi"]
    call_tys = [kernel_tys[0], kernel_tys[1], *([s_ty] if s_ty else []), kernel_tys[2], "index", "index"]
    par = parallel_entry(name)
    return "\n".join([
        f"func.func private @{kernel}_range({', '.join(call_tys)})",
        # Public: only the runtime glue calls it (as a kernel's range function).
        f"func.func @{name}_range(%A: {a_full}, %B: {b_full}, {s_param}%C: {c_full}, %lo: index, %hi: index) "
        "attributes {llvm.emit_c_interface} {",
        "  %c0 = arith.constant 0 : index",
        "  %c1 = arith.constant 1 : index",
        f"  %np = arith.constant {panels} : index",
        f"  %last = arith.constant {panels - 1} : index",
        "  %b0 = arith.divui %lo, %np : index",
        "  %hl = arith.addi %hi, %last : index",
        "  %b1 = arith.divui %hl, %np : index",
        "  scf.for %i = %b0 to %b1 step %c1 {",
        "      %base = arith.muli %i, %np : index",
        "      %l = arith.subi %lo, %base : index",
        "      %plo = arith.maxsi %l, %c0 : index",
        "      %h = arith.subi %hi, %base : index",
        "      %phi = arith.minsi %h, %np : index",
        *views,
        f"      func.call @{kernel}_range({', '.join(call_args)}) : ({', '.join(call_tys)}) -> ()",
        "  }",
        "  return",
        "}",
        f"func.func private @{par}({a_full}, {b_full}, {c_full}) attributes {{llvm.emit_c_interface}}",
        f"func.func private @{name}(%A: {a_full}, %B: {b_full}, %C: {c_full}) {{",
        f"  func.call @{par}(%A, %B, %C) : ({a_full}, {b_full}, {c_full}) -> ()",
        "  return",
        "}",
    ]) + "\n"


def _b_shape(m, n, k, nr, mode, rows, geometry):
    """B's argument: packed panels, a strided matrix, or a flat image."""
    if mode == "p":
        return "packed", [-(-n // nr), k, nr]
    if mode == "i":
        return "image", [geometry.c * geometry.h * geometry.w]
    return "matrix", [k, n, rows[1]]


def pitched_index_of(e, col: str, ow: int, w: int, vl: int) -> tuple[str, str, str]:
    """Where column `col` of an image of rows OW wide lies in its pitched
    rows (W apart): p = (col // OW) * W + col % OW; the lanes left before the
    image row's end, OW - col % OW; whether a vector of vl lanes from there
    crosses it."""
    y, x, yw, p, left, cross = (e.fresh(s) for s in ("y", "x", "yw", "p", "left", "cross"))
    e.emit(f"{y} = arith.divui {col}, {e.idx(ow)} : index")
    e.emit(f"{x} = arith.remui {col}, {e.idx(ow)} : index")
    e.emit(f"{yw} = arith.muli {y}, {e.idx(w)} : index")
    e.emit(f"{p} = arith.addi {yw}, {x} : index")
    e.emit(f"{left} = arith.subi {e.idx(ow)}, {x} : index")
    e.emit(f"{cross} = arith.cmpi ult, {left}, {e.idx(vl)} : index")
    return p, left, cross


def split_masks_of(e, left: str, tail: str | None, vl: int) -> tuple[str, str]:
    """The lanes of a vector before an image row's end (`left` of them) and
    after it, under the tail mask."""
    mask_ty = f"vector<{vl}xi1>"
    first, rest, every = e.fresh("m"), e.fresh("m"), e.fresh("all")
    e.emit(f"{first} = vector.create_mask {left} : {mask_ty}")
    e.emit(f"{every} = vector.constant_mask [{vl}] : {mask_ty}")
    e.emit(f"{rest} = arith.xori {first}, {every} : {mask_ty}")
    if tail is not None:
        m1, m2 = e.fresh("m"), e.fresh("m")
        e.emit(f"{m1} = arith.andi {first}, {tail} : {mask_ty}")
        e.emit(f"{m2} = arith.andi {rest}, {tail} : {mask_ty}")
        first, rest = m1, m2
    return first, rest


def _arg_types(m, n, k, t, mode, rows, geometry=None, a_packed=False, pitch=None):
    """The kernel's argument types: row strides static, offsets dynamic (batch slices)."""
    return tuple(ir.MemRefType.parse(text) for text in _type_text(m, n, k, t, mode, rows, geometry, a_packed, pitch))


def pitched_columns(pitch) -> int:
    """The length of a pitched C row (OW, W, N): from the image's first
    value to its last, the pad columns between its rows included."""
    ow, w, n = pitch
    return (n // ow - 1) * w + ow


def _pitched_view(d: ir.Value, c_groups: list[list[int]], rank: int) -> ir.Value:
    """D, an image inside a padded one, as the pitched C the kernel writes:
    [M, L] (or [1, M, L] for a batch of one), row i at D's row stride, L
    from the image's first value to its last (`pitched_columns`)."""
    from qc.mlir import memref

    ty = ir.MemRefType(d.type)
    strides, offset = ty.get_strides_and_offset()
    (row,) = c_groups[-2]
    cols = pitched_columns((ty.shape[-1], strides[-2], ty.shape[-2] * ty.shape[-1]))
    shape, st = [ty.shape[row], cols], [strides[row], 1]
    if rank == 3:
        shape, st = [1] + shape, [shape[0] * strides[row]] + st
    out_ty = ir.MemRefType.get(shape, ty.element_type, ir.StridedLayoutAttr.get(offset, st))
    return memref.ReinterpretCastOp(out_ty, d, [], [], [], static_offsets=[offset], static_sizes=shape,
                                    static_strides=st).result


def _type_text(m, n, k, t, mode, rows, geometry=None, a_packed=False, pitch=None):
    s = lambda r, c, st: f"memref<{r}x{c}xf32, strided<[{st}, 1], offset: ?>>"  # noqa: E731
    kind, dims = _b_shape(m, n, k, t.nr, mode, rows, geometry)
    if kind == "packed":
        b = f"memref<{'x'.join(map(str, dims))}xf32>"
    elif kind == "image":
        b = f"memref<{dims[0]}xf32, strided<[1], offset: ?>>"
    else:
        b = s(*dims)
    # A packed: any offset, as one batch of a batched constant is.
    a = f"memref<{-(-m // t.mr)}x{k}x{t.mr}xf32, strided<[{k * t.mr}, {t.mr}, 1], offset: ?>>" if a_packed \
        else s(m, k, rows[0])
    return a, b, s(m, n if pitch is None else pitched_columns(pitch), rows[2])


def _implicit_im2col(op, b: ir.Value):
    """If the contraction's B is a view of qc-conv-to-gemm's im2col matrix:
    (the im2col geometry, the padded image X[N, C, H, W], the im2col op that
    last wrote B before `op`). Bufferization may reuse one im2col buffer for
    several convolutions: each reads what the im2col op before it wrote. The
    matrix may only be written by such ops and read by such contractions, and
    nothing between the im2col op and `op` may touch the image."""
    view = getattr(b.owner, "operation", None)
    if view is None or view.name != "memref.collapse_shape":
        return None
    col = view.operands[0]
    block = op.operation.block
    writers = []
    for use in col.uses:
        user = use.owner.operation
        if user.name == "memref.collapse_shape":
            if not all(u.owner.operation.name == "linalg.generic" for u in user.results[0].uses):
                return None
        elif user.name == "linalg.generic" and IM2COL_ATTR in user.attributes and user.operands[1] == col \
                and len(user.operands) == 2 and user.block == block:
            writers.append(user)
        else:
            return None
    ops = [o.operation for o in block.operations]
    pos = ops.index(op.operation)
    before = [(ops.index(w), w) for w in writers if ops.index(w) < pos]
    if not before:
        return None
    at, im2col = max(before, key=lambda p: p[0])
    x = im2col.operands[0]
    x_ty, col_ty = ir.MemRefType(x.type), ir.MemRefType(col.type)
    if x_ty.rank != 4 or col_ty.rank != 6 or not _row_major(x_ty) or not _row_major(col_ty):
        return None
    image = _root(x)
    if any(_root(v) == image for between in ops[at + 1:pos] for v in _all_operands(between)):
        return None  # the image changes (or is read through another view) in between: keep the copy
    kh, kw, sh, sw, dh, dw = list(ir.DenseI64ArrayAttr(im2col.attributes[IM2COL_ATTR]))
    _, c, h, w = x_ty.shape
    _, _, _, _, oh, ow = col_ty.shape
    return Im2col(c, h, w, kh, kw, sh, sw, dh, dw, oh, ow), x, im2col


def _reads_before_next_write(writer: ir.Operation, col: ir.Value) -> bool:
    """Whether an op reads col (through views) after `writer` and before the
    next im2col op that writes it."""
    ops = [o.operation for o in writer.block.operations]
    start = ops.index(writer)
    readers, writers = set(), set()
    work = [col]
    while work:
        v = work.pop()
        for use in v.uses:
            op = use.owner.operation
            if op.name in _VIEW_OPS:
                work.extend(op.results)
            elif op.name == "linalg.generic" and IM2COL_ATTR in op.attributes:
                writers.add(op)
            else:
                readers.add(op)
    for op in ops[start + 1:]:
        if op in writers:
            return False
        if op in readers:
            return True
    return False


_VIEW_OPS = ("memref.collapse_shape", "memref.expand_shape", "memref.subview", "memref.cast",
             "memref.reinterpret_cast", "memref.view")


def _root(v: ir.Value) -> ir.Value:
    """The buffer a memref view is a view of."""
    return gemm_epilogue.through_views(v, _VIEW_OPS)


def _all_operands(op: ir.Operation):
    """The memref operands of op and of the ops nested in it."""
    out = []

    def visit(inner):
        out.extend(v for v in inner.operands if isinstance(v.type, ir.MemRefType))
        return ir.WalkResult.ADVANCE

    op.walk(visit)
    return out


def _buffer_groups(operand: ir.Value, groups: list[list[int]]) -> list[list[int]]:
    """groups of operand's dims as dims of the buffer it views (through a collapse_shape)."""
    owner = getattr(operand.owner, "operation", None)
    if owner is None or owner.name != "memref.collapse_shape":
        return groups
    reassoc = [[ir.IntegerAttr(i).value for i in ir.ArrayAttr(g)] for g in owner.attributes["reassociation"]]
    return [[d for i in g for d in reassoc[i]] for g in groups]


def _view_like(operand: ir.Value, v: ir.Value) -> ir.Value:
    """v (shaped like the buffer operand views) viewed as operand is (the same collapse_shape)."""
    from qc.mlir import memref

    owner = getattr(operand.owner, "operation", None)
    if owner is None or owner.name != "memref.collapse_shape":
        return v
    groups = [[ir.IntegerAttr(i).value for i in ir.ArrayAttr(g)] for g in owner.attributes["reassociation"]]
    return memref.CollapseShapeOp(_collapsed_type(ir.MemRefType(v.type), groups), v,
                                  owner.attributes["reassociation"]).result


def _bias_arg(bias: ir.Value) -> ir.Value:
    """A bias vector as the kernels take it: memref<M, strided<[1], offset: ?>>."""
    from qc.mlir import memref

    ty = ir.MemRefType(bias.type)
    dyn = ir.ShapedType.get_dynamic_stride_or_offset()
    return memref.cast(ir.MemRefType.get(ty.shape, ty.element_type, ir.StridedLayoutAttr.get(dyn, [1])), bias)


def _extra_of_batch(v: ir.Value, i: ir.Value, c_ty) -> ir.Value:
    """Batch i's epilogue operand: a bias shared by every batch (rank 1) or
    its row of a per-batch bias (rank 2), a residual's slice (rank 3)."""
    from qc.mlir import memref

    rank = ir.MemRefType(v.type).rank
    if rank == 1:
        return _bias_arg(v)
    if rank == 2:
        return _row_slice(v, i)
    return memref.cast(c_ty, _batch_slice(v, i))


def _row_slice(v: ir.Value, i: ir.Value) -> ir.Value:
    """v[i] of a dense rank-2 memref, as a rank-1 view with a dynamic offset."""
    from qc.mlir import memref

    ty = ir.MemRefType(v.type)
    _, cols = ty.shape
    dyn = ir.ShapedType.get_dynamic_stride_or_offset()
    out_ty = ir.MemRefType.get([cols], ty.element_type, ir.StridedLayoutAttr.get(dyn, [1]))
    return memref.SubViewOp(out_ty, v, [i], [], [], static_offsets=[dyn, 0], static_sizes=[1, cols],
                            static_strides=[1, 1]).result


class _Emitter:
    """Builds MLIR text with fresh SSA names."""

    def __init__(self):
        self.lines: list[str] = []
        self.n = 0
        self.consts: dict[int, str] = {}
        self.indent = 2

    def fresh(self, stem="v") -> str:
        self.n += 1
        return f"%{stem}{self.n}"

    def emit(self, line: str) -> None:
        self.lines.append("  " * self.indent + line)

    def idx(self, value: int) -> str:
        if value not in self.consts:
            name = f"%c{value}"
            self.consts[value] = name
        return self.consts[value]

    def add(self, a: str, offset: int) -> str:
        if offset == 0:
            return a
        r = self.fresh("i")
        self.emit(f"{r} = arith.addi {a}, {self.idx(offset)} : index")
        return r

    def for_loop(self, var: str, lo: str, hi: str, step: int, body) -> None:
        """scf.for var = lo to hi step `step`, its body emitted by body()."""
        self.emit(f"scf.for {var} = {lo} to {hi} step {self.idx(step)} {{")
        self.indent += 1
        body()
        self.indent -= 1
        self.emit("}")


def gemm_function(name: str, m: int, n: int, k: int, t: GemmTiles, mode: str, rows: tuple[int, int, int],
                  geometry: Im2col | None = None, a_packed: bool = False,
                  epilogue: tuple = ("load", (), False, 0.0), pitch: tuple | None = None,
                  split_rows: bool = False) -> str:
    """The MLIR text of one GEMM function for static sizes; `mode` says how B
    reaches the micro-kernel (B_MODES):

    p: B arrives packed (a constant packed at compile time).
    q: B is packed at run time into a scratch buffer first: one pass over B
       buys contiguous, TLB-friendly panel reads in every micro-kernel call
       (im2col matrices and attention products have rows thousands of floats
       apart).
    r: B is read in place.
    s: as q, but one KC x NR panel at a time into the calling thread's
       scratch buffer, used at once by every row tile (it stays in L1).
    i: as s, with the panel gathered from a padded image (`geometry`).
    a_packed: A arrives in row panels Ap[M/MR][K][MR] (a constant).
    epilogue: (init, chain, residual, value) from gemm_epilogue.Epilogue.static():
    the accumulators start from C, zero, a constant or a bias (%bias, per row or column),
    and the chain (clamps, + %R) applies before the final store: in the
    micro-kernel when K fits one cache block, else in a pass over the
    panel (or range) right after its last block.
    pitch: (OW, W, N) when C is an OW-wide image inside a padded one, its
    rows W apart (qc-lower-gemm's `_pitch`): C's column j is stored at
    (j // OW) * W + j % OW, a vector across a row end as two masked stores.
    split_rows: the range [lo, hi) counts row tiles of MR rows (the last one
    partial), not column panels (`row_split`; mode p only).
    """
    e = _Emitter()
    taps = geometry.kh * geometry.kw if geometry is not None else 1
    direct_reads = _direct_reads(t, mode, geometry)
    t = dataclasses.replace(t, kc=block_depth(t, k, mode, geometry, m))
    a_ty, b_ty, c_ty = _type_text(m, n, k, t, mode, rows, geometry, a_packed, pitch)
    npanels = -(-n // t.nr)
    stream = mode in ("s", "i")
    kc = min(t.kc, k)
    # K_UNROLL k steps per iteration when every cache block's depth allows it.
    unroll = K_UNROLL if k % K_UNROLL == 0 and kc % K_UNROLL == 0 else 1
    if stream:
        bp_name, bp_ty = "%S", f"memref<{kc}x{t.nr}xf32>"
    else:
        bp_name, bp_ty = ("%B", b_ty) if mode == "p" else ("%Bp", f"memref<{npanels}x{k}x{t.nr}xf32>")
    panels = mode in ("p", "q")
    # A compile-time B is read panel by panel within a cache block, panels K x NR
    # floats apart: each KC x NR chunk is a jump the hardware prefetchers do not
    # follow, so the first row tile to read it waits on L3 or memory. With more
    # than one row tile per chunk, the micro-kernel prefetches the same row of
    # the next panel as it reads one (49x512x4608, ResNet-50's 7x7 stage,
    # 66 -> 76 GFLOP/s on znver3); a single row tile streams B once and
    # reads whole panels instead (`block_depth`). Into L2, not L1: the chunk
    # the row tiles share and the next one are two L1s' worth at AVX-512's
    # 32 KiB chunks (ResNet-50 1.034x, Sapphire Rapids). Every 64-byte line
    # of the row: with only the first of an AVX-512 panel's two, the kernel
    # waited on the second (ResNet-50 1.04x, its 7x7 stage 1.3x).
    prefetch = mode == "p" and m > t.mr and npanels > 1
    # A run-time B packed panel by panel reads each panel's KC rows, rows N
    # floats apart: too many streams for the hardware prefetchers, so each
    # pack waited on L3 where B outgrows L2. The micro-kernel prefetches the
    # next panel's row as it reads one (256 -> 64 channels, 1x1, at 56 x 56,
    # B 3.2 MB: 1.05x on Sapphire Rapids; 1.6 MB at 28 x 28: 0.99x).
    stream_prefetch = mode == "s" and geometry is None and npanels > 1 and 4 * k * n > STREAM_PREFETCH_MIN_BYTES
    # A row tile that runs across all the panels and reads B in place
    # (`IN_PLACE_MAX_DEPTH`) walks K rows at once, too many streams for the
    # hardware prefetchers: it prefetches the next panel's row as it reads
    # one (ResNet-50 over the packed B: 1.011x without, 1.018x with).
    row_prefetch = mode == "r" and t.mc == t.mr and npanels > 1
    store_prefetch = k <= STORE_PREFETCH_MAX_K and m > t.mr and 4 * m * n >= STORE_PREFETCH_MIN_BYTES
    # (Where the prefetch for writing is on, it brings in the same lines.)
    load_prefetch = k > t.kc and 4 * m * n >= STORE_PREFETCH_MIN_BYTES and not store_prefetch
    vec = f"vector<{t.vl}xf32>"
    mask_ty = f"vector<{t.vl}xi1>"
    ivec = f"vector<{t.vl}xi32>"
    m_main, n_main = m - m % t.mr, n - n % t.nr
    m_tail, n_tail = m % t.mr, n % t.nr
    zero_vec = "%zero"
    init, chain, has_residual, splat = epilogue
    bias_ty = f"memref<{m if init == 'rows' else n}xf32, strided<[1], offset: ?>>"
    one_block = k <= t.kc
    outside = blocks_outside(t, m, k, mode)
    # Which cache block the code being emitted is for: the first starts the
    # accumulators (init), the last ends them (chain, when one block holds K).
    phase = {"first": True, "last": one_block}

    def apply_chain(v: str, row: str, col: str, mask: str | None) -> str:
        """The elementwise chain on vector v of C[row, col:]."""
        for i, (op_name, value) in enumerate(chain):
            out = e.fresh("ep")
            if value is None:
                r = e.fresh("res")
                if mask:
                    e.emit(f"{r} = vector.maskedload %R[{row}, {col}], {mask}, {zero_vec} "
                           f": {c_ty}, {mask_ty}, {vec} into {vec}")
                else:
                    e.emit(f"{r} = vector.load %R[{row}, {col}] : {c_ty}, {vec}")
                e.emit(f"{out} = arith.addf {v}, {r} : {vec}")
            else:
                e.emit(f"{out} = {op_name} {v}, %epc{i} fastmath<nsz> : {vec}")
            v = out
        return v

    def kernel(rows: int, cols: int, i0: str, j0: str, k0: str, k1: str, direct: bool = False) -> None:
        """C[i0:i0+rows, j0:j0+cols] += A[i0:, k0:k1] · B[k0:k1, j0:]: one register tile.
        direct: B's vectors are loaded from the image in place, at %off0 (a
        panel inside one output row) plus the tap's offset."""
        # The last columns past whole vectors, if few (LONE_COLUMNS), run
        # across the rows: a masked load of A's MR values per k step times
        # each column's B value, not a vector of B per row with few lanes in use.
        nlone = cols % t.vl
        if not (nlone <= min(LONE_COLUMNS, rows - 1) and a_packed and not direct and pitch is None
                and t.mr <= t.vl):
            nlone = 0
        nvec = cols // t.vl if nlone else -(-cols // t.vl)
        lanes = [min(t.vl, cols - c * t.vl) for c in range(nvec)]
        masks = {}
        for c, ln in enumerate(lanes):
            if ln < t.vl:
                mk = e.fresh("mask")
                e.emit(f"{mk} = vector.constant_mask [{ln}] : {mask_ty}")
                masks[c] = mk
        rows_i = [e.add(i0, r) for r in range(rows)]
        cols_j = [e.add(j0, c * t.vl) for c in range(nvec)]
        acc = {}
        start = init if phase["first"] else "load"
        for r in range(rows):
            if start == "rows":
                bias_r = e.fresh("bias")
                e.emit(f"{bias_r} = memref.load %bias[{rows_i[r]}] : {bias_ty}")
            for c in range(nvec):
                v = e.fresh("acc")
                if start == "zero":
                    v = zero_vec
                elif start == "splat":
                    v = "%splat"
                elif start == "rows":
                    e.emit(f"{v} = vector.broadcast {bias_r} : f32 to {vec}")
                elif start == "cols" and c in masks:
                    e.emit(f"{v} = vector.maskedload %bias[{cols_j[c]}], {masks[c]}, {zero_vec} "
                           f": {bias_ty}, {mask_ty}, {vec} into {vec}")
                elif start == "cols":
                    e.emit(f"{v} = vector.load %bias[{cols_j[c]}] : {bias_ty}, {vec}")
                elif pitch is not None:
                    continue  # below: the partial sums of the blocks before, stored at C's pitch
                elif c in masks:
                    e.emit(f"{v} = vector.maskedload %C[{rows_i[r]}, {cols_j[c]}], {masks[c]}, {zero_vec} "
                           f": {c_ty}, {mask_ty}, {vec} into {vec}")
                else:
                    e.emit(f"{v} = vector.load %C[{rows_i[r]}, {cols_j[c]}] : {c_ty}, {vec}")
                acc[r, c] = v
        if start == "load" and pitch is not None:
            for c in range(nvec):
                for r, v in enumerate(pitched_load(cols_j[c], masks.get(c), rows_i)):
                    acc[r, c] = v
        keys = [(r, c) for r in range(rows) for c in range(nvec)]
        lone_cols = [e.add(j0, nvec * t.vl + j) for j in range(nlone)]
        for j, col in enumerate(lone_cols):
            acc["lone", j] = lone_start(start, rows, rows_i, i0, col)
            keys.append(("lone", j))
        res = e.fresh("res")
        kv = e.fresh("k")
        name_of = lambda key: f"%x{key[0]}_{key[1]}"  # noqa: E731
        iter_args = ", ".join(f"{name_of(key)} = {acc[key]}" for key in keys)
        if direct:  # one iteration per channel, its kh x kw taps unrolled
            lo, hi = e.fresh("ch"), e.fresh("ch")
            e.emit(f"{lo} = arith.divui {k0}, {e.idx(taps)} : index")
            e.emit(f"{hi} = arith.divui {k1}, {e.idx(taps)} : index")
            e.emit(f"{res}:{len(keys)} = scf.for {kv} = {lo} to {hi} step {e.idx(1)} iter_args({iter_args}) "
                   f"-> ({', '.join([vec] * len(keys))}) {{")
        else:
            e.emit(f"{res}:{len(keys)} = scf.for {kv} = {k0} to {k1} step {e.idx(unroll)} iter_args({iter_args}) "
                   f"-> ({', '.join([vec] * len(keys))}) {{")
        e.indent += 1
        if a_packed:
            ib = e.fresh("ib")
            e.emit(f"{ib} = arith.divui {i0}, {e.idx(t.mr)} : index")
        cur = {key: name_of(key) for key in keys}
        if direct:
            chan, kbase = e.fresh("chan"), e.fresh("kb")
            e.emit(f"{chan} = arith.muli {kv}, {e.idx(geometry.h * geometry.w)} : index")
            e.emit(f"{kbase} = arith.muli {kv}, {e.idx(taps)} : index")
        for step in range(taps if direct else unroll):
            kk = e.add(kbase if direct else kv, step)
            if stream and not direct:  # the scratch panel holds rows k0 .. k1 of B
                kr = e.fresh("kr")
                e.emit(f"{kr} = arith.subi {kk}, {k0} : index")
            if direct:  # the tap's image offset: kh * dh * W + kw * dw
                tap = e.add(chan, (step // geometry.kw) * geometry.dh * geometry.w + (step % geometry.kw) * geometry.dw)
            bvals = []
            for c in range(nvec):
                bv = e.fresh("b")
                if direct:
                    at = e.fresh("at")
                    e.emit(f"{at} = arith.addi {tap}, %off0 : index")
                    e.emit(f"{bv} = vector.load %B[{e.add(at, c * t.vl)}] : {b_ty}, {vec}")
                elif stream:
                    e.emit(f"{bv} = vector.load %S[{kr}, {e.idx(c * t.vl)}] : {bp_ty}, {vec}")
                elif panels:
                    e.emit(f"{bv} = vector.load {bp_name}[%jp, {kk}, {e.idx(c * t.vl)}] : {bp_ty}, {vec}")
                    if prefetch and (c * t.vl) % LINE_FLOATS == 0:  # one per line of the row
                        e.emit(f"memref.prefetch {bp_name}[%jnext, {kk}, {e.idx(c * t.vl)}], read, locality<2>, "
                               f"data : {bp_ty}")
                elif c in masks:
                    e.emit(f"{bv} = vector.maskedload %B[{kk}, {cols_j[c]}], {masks[c]}, {zero_vec} "
                           f": {b_ty}, {mask_ty}, {vec} into {vec}")
                else:
                    e.emit(f"{bv} = vector.load %B[{kk}, {cols_j[c]}] : {b_ty}, {vec}")
                bvals.append(bv)
            if (stream_prefetch or row_prefetch) and cols == t.nr:
                # The next panel's row kk, one prefetch per line: into L2 for
                # the next pack; into L1 for a B read in place, which is in L2
                # already and read again by the next row tile.
                where = 3 if row_prefetch else 2
                for line in range(0, t.nr, LINE_FLOATS):
                    e.emit(f"memref.prefetch %B[{kk}, {e.add(j0, t.nr + line)}], read, locality<{where}>, data "
                           f": {b_ty}")
            for r in range(rows):
                av = e.fresh("a")
                if a_packed:
                    e.emit(f"{av} = memref.load %A[{ib}, {kk}, {e.idx(r)}] : {a_ty}")
                else:
                    e.emit(f"{av} = memref.load %A[{rows_i[r]}, {kk}] : {a_ty}")
                ab = e.fresh("ab")
                e.emit(f"{ab} = vector.broadcast {av} : f32 to {vec}")
                for c in range(nvec):
                    nv = e.fresh("f")
                    e.emit(f"{nv} = vector.fma {ab}, {bvals[c]}, {cur[r, c]} : {vec}")
                    cur[r, c] = nv
            if nlone:
                av = e.fresh("al")
                e.emit(f"{av} = vector.maskedload %A[{ib}, {kk}, {e.idx(0)}], {lone_mask(t.mr)}, {zero_vec} "
                       f": {a_ty}, {mask_ty}, {vec} into {vec}")
            for j, col in enumerate(lone_cols):
                at = nvec * t.vl + j  # within the panel
                if stream:
                    bl = f"%S[{kr}, {e.idx(at)}] : {bp_ty}"
                elif panels:
                    bl = f"{bp_name}[%jp, {kk}, {e.idx(at)}] : {bp_ty}"
                else:
                    bl = f"%B[{kk}, {col}] : {b_ty}"
                bs, bb, nv = e.fresh("bl"), e.fresh("bb"), e.fresh("fl")
                e.emit(f"{bs} = memref.load {bl}")
                e.emit(f"{bb} = vector.broadcast {bs} : f32 to {vec}")
                e.emit(f"{nv} = vector.fma {av}, {bb}, {cur['lone', j]} : {vec}")
                cur["lone", j] = nv
        new = cur
        e.emit(f"scf.yield {', '.join(new[key] for key in keys)} : {', '.join([vec] * len(keys))}")
        e.indent -= 1
        e.emit("}")
        if phase["last"] and has_residual and cols == t.nr:
            prefetch_rows("%R", rows_i, j0)
        if store_prefetch and cols == t.nr:
            prefetch_rows("%C", rows_i, j0, "write")
        if start == "load" and load_prefetch and cols == t.nr:
            prefetch_rows("%C", rows_i, j0)
        finals = {}
        for j, col in enumerate(lone_cols):
            lone_end(f"{res}#{len(keys) - nlone + j}", rows_i, col)
        keys = keys[:len(keys) - nlone]
        for i, (r, c) in enumerate(keys):
            out = f"{res}#{i}"
            if phase["last"] and chain:
                out = apply_chain(out, rows_i[r], cols_j[c], masks.get(c))
            if pitch is not None:
                finals[r, c] = out
            elif c in masks:
                e.emit(f"vector.maskedstore %C[{rows_i[r]}, {cols_j[c]}], {masks[c]}, {out} "
                       f": {c_ty}, {mask_ty}, {vec}")
            else:
                e.emit(f"vector.store {out}, %C[{rows_i[r]}, {cols_j[c]}] : {c_ty}, {vec}")
        for c in range(nvec if pitch is not None else 0):
            pitched_store(cols_j[c], masks.get(c), [(rows_i[r], finals[r, c]) for r in range(rows)])

    def lone_mask(lanes: int) -> str:
        mk = e.fresh("lmask")
        e.emit(f"{mk} = vector.constant_mask [{lanes}] : {mask_ty}")
        return mk

    def lone_gather(buf: str, ty: str, rows_i: list[str], col: str) -> str:
        """A vector of buf[row, col] over the tile's rows (lanes past them 0)."""
        v = zero_vec
        for r, row in enumerate(rows_i):
            x, nv = e.fresh("g"), e.fresh("gv")
            e.emit(f"{x} = memref.load {buf}[{row}, {col}] : {ty}")
            e.emit(f"{nv} = vector.insert {x}, {v} [{r}] : f32 into {vec}")
            v = nv
        return v

    def lone_start(start: str, rows: int, rows_i: list[str], i0: str, col: str) -> str:
        """A lone column's accumulator, lane r for row i0 + r."""
        if start == "zero":
            return zero_vec
        if start == "splat":
            return "%splat"
        v = e.fresh("acc")
        if start == "rows":
            e.emit(f"{v} = vector.maskedload %bias[{i0}], {lone_mask(rows)}, {zero_vec} "
                   f": {bias_ty}, {mask_ty}, {vec} into {vec}")
        elif start == "cols":
            x = e.fresh("bias")
            e.emit(f"{x} = memref.load %bias[{col}] : {bias_ty}")
            e.emit(f"{v} = vector.broadcast {x} : f32 to {vec}")
        else:
            return lone_gather("%C", c_ty, rows_i, col)
        return v

    def lone_end(v: str, rows_i: list[str], col: str) -> None:
        """The chain on a lone column (in the last block), then a store per row."""
        if phase["last"]:
            for i, (op_name, value) in enumerate(chain):
                out = e.fresh("ep")
                if value is None:
                    e.emit(f"{out} = arith.addf {v}, {lone_gather('%R', c_ty, rows_i, col)} : {vec}")
                else:
                    e.emit(f"{out} = {op_name} {v}, %epc{i} fastmath<nsz> : {vec}")
                v = out
        for r, row in enumerate(rows_i):
            x = e.fresh("x")
            e.emit(f"{x} = vector.extract {v}[{r}] : f32 from {vec}")
            e.emit(f"memref.store {x}, %C[{row}, {col}] : {c_ty}")

    def prefetch_rows(buf: str, rows: list[str], j0: str, hint: str = "read") -> None:
        """Prefetches buf's (C's or the residual's) values PREFETCH_PANELS
        panels to the right of column j0 in each of `rows`: every 64-byte
        line of the panel's row (AVX-512: two). With the first alone, the
        second waited where rows are not 128-byte aligned: SqueezeNet's
        stem (64 rows of 12321 floats) and the model 1.02-1.05x faster with
        both. A pitched C's column is a padded image's: its first line."""
        ahead = e.add(j0, PREFETCH_PANELS * t.nr)
        if buf == "%C" and pitch is not None:
            ahead = pitched_index(ahead)[0]
        lines = [ahead] if buf == "%C" and pitch is not None else \
            [e.add(ahead, line) if line else ahead for line in range(0, t.nr, LINE_FLOATS)]
        for row in rows:
            for at in lines:
                e.emit(f"memref.prefetch {buf}[{row}, {at}], {hint}, locality<3>, data : {c_ty}")

    def pitched_index(col: str) -> tuple[str, str, str]:
        return pitched_index_of(e, col, pitch[0], pitch[1], t.vl)

    def split_masks(left: str, tail: str | None) -> tuple[str, str]:
        return split_masks_of(e, left, tail, t.vl)

    def pitched_load(col: str, tail: str | None, rows: list[str]) -> list[str]:
        """The vectors at C's column `col` of the image in each of `rows`
        (pitched_store's layout): across a row end, two masked loads."""
        ow, w, _ = pitch
        p, left, cross = pitched_index(col)
        out = e.fresh("pl")
        tys = ", ".join([vec] * len(rows))
        e.emit(f"{out}:{len(rows)} = scf.if {cross} -> ({tys}) {{")
        e.indent += 1
        first, rest = split_masks(left, tail)
        p2 = e.add(p, w - ow)
        vals = []
        for row in rows:
            a, b2 = e.fresh("pa"), e.fresh("pb")
            e.emit(f"{a} = vector.maskedload %C[{row}, {p}], {first}, {zero_vec} : {c_ty}, {mask_ty}, {vec} into {vec}")
            e.emit(f"{b2} = vector.maskedload %C[{row}, {p2}], {rest}, {a} : {c_ty}, {mask_ty}, {vec} into {vec}")
            vals.append(b2)
        e.emit(f"scf.yield {', '.join(vals)} : {tys}")
        e.indent -= 1
        e.emit("} else {")
        e.indent += 1
        vals = []
        for row in rows:
            v = e.fresh("pv")
            if tail is not None:
                e.emit(f"{v} = vector.maskedload %C[{row}, {p}], {tail}, {zero_vec} : {c_ty}, {mask_ty}, {vec} "
                       f"into {vec}")
            else:
                e.emit(f"{v} = vector.load %C[{row}, {p}] : {c_ty}, {vec}")
            vals.append(v)
        e.emit(f"scf.yield {', '.join(vals)} : {tys}")
        e.indent -= 1
        e.emit("}")
        return [f"{out}#{i}" for i in range(len(rows))]

    def pitched_store(col: str, tail: str | None, values: list) -> None:
        """Stores a column of vectors at C's column `col` of the image: at
        (col // OW) * W + col % OW; a vector across the row end as its
        lanes before it there and the rest W - OW further on (two masked
        stores), under the tail mask of a last partial panel."""
        ow, w, _ = pitch
        p, left, cross = pitched_index(col)
        e.emit(f"scf.if {cross} {{")
        e.indent += 1
        first, rest = split_masks(left, tail)
        p2 = e.add(p, w - ow)
        for row, v in values:
            e.emit(f"vector.maskedstore %C[{row}, {p}], {first}, {v} : {c_ty}, {mask_ty}, {vec}")
            e.emit(f"vector.maskedstore %C[{row}, {p2}], {rest}, {v} : {c_ty}, {mask_ty}, {vec}")
        e.indent -= 1
        e.emit("} else {")
        e.indent += 1
        for row, v in values:
            if tail is not None:
                e.emit(f"vector.maskedstore %C[{row}, {p}], {tail}, {v} : {c_ty}, {mask_ty}, {vec}")
            else:
                e.emit(f"vector.store {v}, %C[{row}, {p}] : {c_ty}, {vec}")
        e.indent -= 1
        e.emit("}")

    for_loop = e.for_loop

    def panel_base(j0: str) -> None:
        # %jp: which packed panel of B holds columns j0 .. j0+NR-1.
        if panels:
            e.emit(f"%jp = arith.divui {j0}, {e.idx(t.nr)} : index")
        if prefetch:  # the next panel (the last one's own): see `prefetch`
            e.emit(f"%jnext = affine.min affine_map<(d0) -> (d0 + 1, {npanels - 1})>(%jp)")

    def k_block_end() -> None:
        # k1 = min(kc0 + KC, K) written as min(kc0, K - KC) + KC when K >= KC.
        e.emit(f"%kend = arith.minui %kc0, {e.idx(max(k - t.kc, 0))} : index")
        e.emit(f"%k1 = arith.addi %kend, {e.idx(kc)} : index")

    # The partial row tile runs on each panel right after the full ones of
    # the last cache block of rows, while the panel's chunk is in L1: run
    # after all of them, it read every chunk of B once more, from L3 or
    # memory where the KC x N chunks of B outgrow L2 (ResNet-50's
    # 49x2048x1024, 4 full row tiles and one of 9 rows: 2.11 -> 1.74 ms in
    # the model, Sapphire Rapids).
    fused_tail = bool(m_main and m_tail and not split_rows)
    last_rows = -(-m_main // t.mc) == 1  # one cache block of rows: it is the last

    def tail_after(cols: int, j0: str) -> None:
        if not fused_tail:
            return
        if last_rows:
            kernel(m_tail, cols, e.idx(m_main), j0, "%kc0", "%k1")
            return
        e.emit(f"%last_rows = arith.cmpi eq, %iend, {e.idx(m_main)} : index")
        if_then("%last_rows", lambda: kernel(m_tail, cols, e.idx(m_main), j0, "%kc0", "%k1"))

    def kc_body() -> None:
        k_block_end()
        if m_main:
            def ic_body():
                if split_rows:
                    e.emit(f"%iend = affine.min affine_map<(d0)[s0] -> (d0 + {t.mc}, s0)>(%ic)[%ihi]")
                else:
                    e.emit(f"%iend = affine.min affine_map<(d0) -> (d0 + {t.mc}, {m_main})>(%ic)")

                def j_body():
                    panel_base("%j0")
                    for_loop("%i0", "%ic", "%iend", t.mr, lambda: kernel(t.mr, t.nr, "%i0", "%j0", "%kc0", "%k1"))
                    tail_after(t.nr, "%j0")

                if n_main:
                    for_loop("%j0", "%jlo", "%jhi", t.nr, j_body)
                if n_tail:
                    def tail():
                        panel_base(e.idx(n_main))
                        for_loop("%i0", "%ic", "%iend", t.mr,
                                 lambda: kernel(t.mr, n_tail, "%i0", e.idx(n_main), "%kc0", "%k1"))
                        tail_after(n_tail, e.idx(n_main))
                    if_tail(tail)

            if split_rows:
                for_loop("%ic", "%ilo", "%ihi", t.mc, ic_body)
            else:
                for_loop("%ic", e.idx(0), e.idx(m_main), t.mc, ic_body)
        if m_tail and not fused_tail:
            def mt_body():
                panel_base("%j0")
                kernel(m_tail, t.nr, e.idx(m_main), "%j0", "%kc0", "%k1")

            def row_tail():
                if n_main:
                    for_loop("%j0", "%jlo", "%jhi", t.nr, mt_body)
                if n_tail:
                    def mn_tail():
                        panel_base(e.idx(n_main))
                        kernel(m_tail, n_tail, e.idx(m_main), e.idx(n_main), "%kc0", "%k1")
                    if_tail(mn_tail)

            if split_rows:
                if_then("%has_rtail", row_tail)  # only in the range that owns the last, partial row tile
            else:
                row_tail()

    def stream_block(j0: str, cols: int) -> None:
        """Columns j0 .. j0+cols of C over one KC block: pack the panel of B
        into the scratch buffer, then run every row tile over it."""
        def row_tiles(direct=False):
            if m_main:
                for_loop("%i0", e.idx(0), e.idx(m_main), t.mr,
                         lambda: kernel(t.mr, cols, "%i0", j0, "%kc0", "%k1", direct))
            if m_tail:
                kernel(m_tail, cols, e.idx(m_main), j0, "%kc0", "%k1", direct)

        k_block_end()
        if direct_reads and cols == t.nr:
            # A panel inside one output row is read where it is. Across
            # two rows, two masked loads per vector in the micro-kernel
            # need four mask registers and spill accumulators: gathered.
            e.emit("scf.if %contig {")
            e.indent += 1
            row_tiles(direct=True)
            e.indent -= 1
            e.emit("} else {")
            e.indent += 1
            gather_rows(cols, copy=False)
            row_tiles()
            e.indent -= 1
            e.emit("}")
            return
        if geometry is not None:
            gather_rows(cols)
        else:
            for_loop("%pk", "%kc0", "%k1", 1, lambda: copy_row(j0, cols))
        row_tiles()

    def stream_panel(j0: str, cols: int) -> None:
        """Columns j0 .. j0+cols of C: all the KC blocks of one panel."""
        if geometry is not None:
            image_columns(j0, cols)
        k_blocks(lambda: stream_block(j0, cols))
        if not one_block and chain and pitch is None:
            chain_pass(j0, cols)

    def stream_blocks() -> None:
        """Every panel within each KC block (`blocks_outside`)."""
        def panel(j0: str, cols: int) -> None:
            if geometry is not None:
                image_columns(j0, cols)
            stream_block(j0, cols)

        k_blocks(lambda: each_panel(panel))

    def each_panel(body) -> None:
        """body(j0, cols) for each panel of this call's range: its full
        panels, then the partial last one where the range owns it."""
        if n_main:
            for_loop("%j0", "%jlo", "%jhi", t.nr, lambda: body("%j0", t.nr))
        if n_tail:
            if_tail(lambda: body(e.idx(n_main), n_tail))

    def k_blocks(body) -> None:
        """body() for each cache block of K; the first one peeled off when
        K takes several and it starts the accumulators from other than C,
        and the last one when the chain runs in the micro-kernel there (a
        pitched C, which the chain pass after the blocks cannot address, or
        blocks outside the panels, whose C tiles have left L1 by then)."""
        peel_last = pitch is not None or outside
        if one_block or init == "load" and not peel_last:
            for_loop("%kc0", e.idx(0), e.idx(k), t.kc, body)
            return
        last0 = (-(-k // t.kc) - 1) * t.kc  # where the last block starts
        start = 0
        if init != "load":
            for_loop("%kc0", e.idx(0), e.idx(t.kc), t.kc, body)  # one trip: the first block
            start = t.kc
        phase["first"] = False
        end = last0 if peel_last else k
        if end > start:
            for_loop("%kc0", e.idx(start), e.idx(end), t.kc, body)
        if peel_last:
            phase["last"] = True
            for_loop("%kc0", e.idx(last0), e.idx(k), t.kc, body)  # one trip: the last block
            phase["last"] = False
        phase["first"] = True

    def chain_pass(j0: str, cols: int) -> None:
        """The chain over C[:, j0 : j0 + cols] after its last block."""
        def row():
            if has_residual and cols == t.nr:
                prefetch_rows("%R", ["%ci"], j0)
            for c in range(-(-cols // t.vl)):
                lanes = min(t.vl, cols - c * t.vl)
                col = e.add(j0, c * t.vl)
                v = e.fresh("cv")
                mask = None
                if lanes < t.vl:
                    mask = e.fresh("cmask")
                    e.emit(f"{mask} = vector.constant_mask [{lanes}] : {mask_ty}")
                    e.emit(f"{v} = vector.maskedload %C[%ci, {col}], {mask}, {zero_vec} "
                           f": {c_ty}, {mask_ty}, {vec} into {vec}")
                else:
                    e.emit(f"{v} = vector.load %C[%ci, {col}] : {c_ty}, {vec}")
                out = apply_chain(v, "%ci", col, mask)
                if mask:
                    e.emit(f"vector.maskedstore %C[%ci, {col}], {mask}, {out} : {c_ty}, {mask_ty}, {vec}")
                else:
                    e.emit(f"vector.store {out}, %C[%ci, {col}] : {c_ty}, {vec}")
        if split_rows:
            for_loop("%ci", "%ilo", "%rhi", 1, row)
        else:
            for_loop("%ci", e.idx(0), e.idx(m), 1, row)

    def load_row(pk: str, col0: str, cols: int, store) -> None:
        """B[pk, col0 : col0 + NR] as NR/VL vectors, zero beyond `cols`;
        store(vector, lane offset) puts each one in place."""
        for c in range(t.nr // t.vl):
            lanes = max(0, min(t.vl, cols - c * t.vl))
            col = e.add(col0, c * t.vl)
            v = e.fresh("pv")
            if lanes == t.vl:
                e.emit(f"{v} = vector.load %B[{pk}, {col}] : {b_ty}, {vec}")
            elif lanes == 0:
                v = zero_vec
            else:
                mk = e.fresh("pmask")
                e.emit(f"{mk} = vector.constant_mask [{lanes}] : {mask_ty}")
                e.emit(f"{v} = vector.maskedload %B[{pk}, {col}], {mk}, {zero_vec} "
                       f": {b_ty}, {mask_ty}, {vec} into {vec}")
            store(v, e.idx(c * t.vl))

    def copy_row(j0: str, cols: int) -> None:
        """Scratch row pk - kc0 = B[pk, j0 : j0 + cols]."""
        e.emit("%kr = arith.subi %pk, %kc0 : index")
        load_row("%pk", j0, cols, lambda v, off: e.emit(f"vector.store {v}, %S[%kr, {off}] : {bp_ty}, {vec}"))

    def image_columns(j0: str, cols: int) -> None:
        """Per vector of the panel's columns (oh, ow): their offsets in the image,
        (oh*sh)*W + ow*sw as i32 lanes, and which of them exist (< N); and
        whether the whole panel is one contiguous run of an image row."""
        g = geometry
        e.emit(f"%j0i = arith.index_cast {j0} : index to i32")
        for c in range(t.nr // t.vl):
            col = e.fresh("col")
            base = e.fresh("cb")
            e.emit(f"{base} = arith.addi %j0i, %ci{c * t.vl} : i32")
            e.emit(f"{col} = vector.broadcast {base} : i32 to {ivec}")
            e.emit(f"%colv{c} = arith.addi {col}, %iota : {ivec}")
            e.emit(f"%ohv{c} = arith.divui %colv{c}, %vow : {ivec}")
            e.emit(f"%oww{c} = arith.muli %ohv{c}, %vow : {ivec}")
            e.emit(f"%owv{c} = arith.subi %colv{c}, %oww{c} : {ivec}")
            e.emit(f"%rowo{c} = arith.muli %ohv{c}, %vrow : {ivec}")
            e.emit(f"%colo{c} = arith.muli %owv{c}, %vsw : {ivec}")
            e.emit(f"%co{c} = arith.addi %rowo{c}, %colo{c} : {ivec}")
            e.emit(f"%cm{c} = arith.cmpi ult, %colv{c}, %vn : {ivec}")
        if runs() or strided_runs(cols):
            # Stride 1: a vector's lanes are a few runs of consecutive image
            # values, the end of one output row, whole rows, the start of the
            # next; a masked load per run fetches them (no gather: on AVX-512
            # vgatherdps took 9% of a 14 x 14 3x3 convolution, its 16 lanes
            # being 3 runs). Stride 2: two runs of every other value.
            for c in range(t.nr // t.vl):
                col0 = e.add(j0, c * t.vl)
                e.emit(f"%rq{c} = arith.divui {col0}, {e.idx(g.ow)} : index")
                e.emit(f"%rr{c} = arith.remui {col0}, {e.idx(g.ow)} : index")
                e.emit(f"%ra{c} = arith.muli %rq{c}, {e.idx(g.sh * g.w)} : index")
                e.emit(f"%rrs{c} = arith.muli %rr{c}, {e.idx(g.sw)} : index")
                e.emit(f"%offa{c} = arith.addi %ra{c}, %rrs{c} : index")
                e.emit(f"%offb{c} = arith.addi %offa{c}, {e.idx(g.sh * g.w - g.ow * g.sw)} : index")
                e.emit(f"%split{c} = arith.subi {e.idx(g.ow)}, %rr{c} : index")
                e.emit(f"%nvalid{c} = arith.subi {e.idx(n)}, {col0} : index")
                e.emit(f"%na{c} = arith.minsi %split{c}, %nvalid{c} : index")
                e.emit(f"%ma{c} = vector.create_mask %na{c} : {mask_ty}")
                e.emit(f"%mv{c} = vector.create_mask %nvalid{c} : {mask_ty}")
                # Runs 1 .. R-2 are whole output rows: run r starts (r - 1) * OW
                # lanes after the first run's end, r * (sh * W - OW) further
                # on in the image; the last run takes every lane left.
                count = max(runs(), 2)
                before = f"%ma{c}"
                for r in range(1, count):
                    name = RUN_NAMES[r]
                    if r > 1:  # %offb is the stride-2 form's too, above
                        e.emit(f"%off{name}{c} = arith.addi %offa{c}, {e.idx(r * (g.sh * g.w - g.ow))} : index")
                    if r == count - 1:
                        e.emit(f"%m{name}{c} = arith.xori %mv{c}, {before} : {mask_ty}")
                        break
                    e.emit(f"%run_end_{name}{c} = arith.addi %split{c}, {e.idx(r * g.ow)} : index")
                    e.emit(f"%run_n_{name}{c} = arith.minsi %run_end_{name}{c}, %nvalid{c} : index")
                    e.emit(f"%run_upto_{name}{c} = vector.create_mask %run_n_{name}{c} : {mask_ty}")
                    e.emit(f"%m{name}{c} = arith.xori %run_upto_{name}{c}, {before} : {mask_ty}")
                    before = f"%run_upto_{name}{c}"
        if row_panels(cols):
            # The panel inside one image row: vector loads (stride 2: of
            # twice the width, then the even lanes).
            e.emit(f"%ow0 = arith.remui {j0}, {e.idx(g.ow)} : index")
            e.emit(f"%ow_end = arith.addi %ow0, {e.idx(t.nr)} : index")
            e.emit(f"%contig = arith.cmpi ule, %ow_end, {e.idx(g.ow)} : index")
            e.emit(f"%oh0 = arith.divui {j0}, {e.idx(g.ow)} : index")
            e.emit(f"%oh0r = arith.muli %oh0, {e.idx(g.sh * g.w)} : index")
            e.emit(f"%ow0s = arith.muli %ow0, {e.idx(g.sw)} : index")
            e.emit("%off0 = arith.addi %oh0r, %ow0s : index")

    def row_offset(pk: str) -> str:
        """The image offset of B's row pk = (c, kh, kw): c*H*W + kh*dh*W + kw*dw."""
        g = geometry
        e.emit(f"%pc = arith.divui {pk}, {e.idx(g.kh * g.kw)} : index")
        e.emit(f"%pr = arith.remui {pk}, {e.idx(g.kh * g.kw)} : index")
        e.emit(f"%pkh = arith.divui %pr, {e.idx(g.kw)} : index")
        e.emit(f"%pkw = arith.remui %pr, {e.idx(g.kw)} : index")
        e.emit(f"%pcoff = arith.muli %pc, {e.idx(g.h * g.w)} : index")
        e.emit(f"%pkhoff = arith.muli %pkh, {e.idx(g.dh * g.w)} : index")
        e.emit(f"%pkwoff = arith.muli %pkw, {e.idx(g.dw)} : index")
        e.emit("%prow0 = arith.addi %pcoff, %pkhoff : index")
        e.emit("%prow = arith.addi %prow0, %pkwoff : index")
        return "%prow"

    def even_lanes(at: str, masked: bool = True) -> str:
        """B[at], B[at + 2], ... as one vector: two loads, the even lanes.
        The second load's last lane lies past the vector's last value, and
        may lie past the image: masked off unless a later value follows."""
        lo, hi, v = e.fresh("lo"), e.fresh("hi"), e.fresh("ev")
        e.emit(f"{lo} = vector.load %B[{at}] : {b_ty}, {vec}")
        second = e.add(at, t.vl)
        if masked:
            e.emit(f"{hi} = vector.maskedload %B[{second}], %odd_end, {zero_vec} "
                   f": {b_ty}, {mask_ty}, {vec} into {vec}")
        else:
            e.emit(f"{hi} = vector.load %B[{second}] : {b_ty}, {vec}")
        even = ", ".join(str(2 * i) for i in range(t.vl))
        e.emit(f"{v} = vector.shuffle {lo}, {hi} [{even}] : {vec}, {vec}")
        return v

    def strided_runs(cols: int) -> bool:
        """Stride 2, rows of at least a vector: each vector of a full panel
        is two runs of every other value (two deinterleaved loads, a select)."""
        return geometry.sw == 2 and geometry.ow >= t.vl and cols == t.nr

    def row_panels(cols: int) -> bool:
        """Whether full panels inside one output row are loaded as such."""
        return geometry.sw in (1, 2) and cols == t.nr

    def runs() -> int:
        """Stride 1: how many runs of consecutive image values a vector's
        lanes can be at most (a masked load each), 0 for too many (a gather).
        vl lanes cross at most ceil((vl - 1) / OW) output row ends."""
        if geometry.sw != 1:
            return 0
        count = 1 + -(-(t.vl - 1) // geometry.ow)
        return count if count <= len(RUN_NAMES) else 0

    def gather_rows(cols: int, copy: bool = True) -> None:
        """Scratch rows 0 .. k1-kc0 = image values of B's rows kc0 .. k1."""
        nruns = runs()

        def gathered():
            def row():
                base = row_offset("%pk")
                e.emit("%kr = arith.subi %pk, %kc0 : index")
                for c in range(t.nr // t.vl):
                    v = e.fresh("gv")
                    if strided_runs(cols):
                        first, second = e.fresh("pa"), e.fresh("pb")
                        e.emit(f"{first} = arith.addi {base}, %offa{c} : index")
                        e.emit(f"{second} = arith.addi {base}, %offb{c} : index")
                        va, vb = even_lanes(first), even_lanes(second)
                        e.emit(f"{v} = arith.select %ma{c}, {va}, {vb} : {mask_ty}, {vec}")
                    elif nruns:
                        acc = zero_vec
                        for r in range(nruns):
                            name = RUN_NAMES[r]
                            at, va = e.fresh(f"p{name}"), e.fresh("va") if r < nruns - 1 else v
                            e.emit(f"{at} = arith.addi {base}, %off{name}{c} : index")
                            e.emit(f"{va} = vector.maskedload %B[{at}], %m{name}{c}, {acc} "
                                   f": {b_ty}, {mask_ty}, {vec} into {vec}")
                            acc = va
                    else:  # strided columns: a gather (LLVM scalarizes it where gathers are slow)
                        e.emit(f"{v} = vector.gather %B[{base}][%co{c}], %cm{c}, {zero_vec} "
                               f": {b_ty}, {ivec}, {mask_ty}, {vec} into {vec}")
                    e.emit(f"vector.store {v}, %S[%kr, {e.idx(c * t.vl)}] : {bp_ty}, {vec}")
            for_loop("%pk", "%kc0", "%k1", 1, row)

        def contiguous():
            def row():
                base = row_offset("%pk")
                e.emit("%kr = arith.subi %pk, %kc0 : index")
                e.emit(f"%pos = arith.addi {base}, %off0 : index")
                nvec = t.nr // t.vl
                span = t.nr * geometry.sw  # image values a panel row covers
                for line in range(0, span, LINE_FLOATS):  # one prefetch per line
                    ahead = e.add("%pos", PREFETCH_PANELS * span + line)
                    e.emit(f"memref.prefetch %B[{ahead}], read, locality<3>, data : {b_ty}")
                for c in range(nvec):
                    if geometry.sw == 1:
                        v = e.fresh("lv")
                        e.emit(f"{v} = vector.load %B[{e.add('%pos', c * t.vl)}] : {b_ty}, {vec}")
                    else:
                        v = even_lanes(e.add("%pos", 2 * c * t.vl), masked=c == nvec - 1)
                    e.emit(f"vector.store {v}, %S[%kr, {e.idx(c * t.vl)}] : {bp_ty}, {vec}")
            for_loop("%pk", "%kc0", "%k1", 1, row)

        if copy and row_panels(cols):
            e.emit("scf.if %contig {")
            e.indent += 1
            contiguous()
            e.indent -= 1
            e.emit("} else {")
            e.indent += 1
            gathered()
            e.indent -= 1
            e.emit("}")
        else:
            gathered()

    def if_then(cond: str, body) -> None:
        e.emit(f"scf.if {cond} {{")
        e.indent += 1
        body()
        e.indent -= 1
        e.emit("}")

    def if_tail(body) -> None:
        """body() only in the range that owns the last, partial panel."""
        if_then("%has_tail", body)

    def pack_panel(pp: str, cols: int) -> None:
        """Bp[pp, :, :] = B[:, pp*NR : pp*NR + cols], zero beyond `cols`."""
        e.emit(f"%pj = arith.muli {pp}, {e.idx(t.nr)} : index")
        for_loop("%pk", e.idx(0), e.idx(k), 1, lambda: load_row(
            "%pk", "%pj", cols, lambda v, off: e.emit(f"vector.store {v}, %Bp[{pp}, %pk, {off}] : {bp_ty}, {vec}")))

    e.indent = 2
    body_start = len(e.lines)
    if split_rows:
        # This call computes the rows of row tiles [lo, hi): the rows [ilo,
        # ihi) of full tiles, and the partial last tile if hi reaches it
        # (%rhi: the end of the range's rows), across every panel.
        full = m_main // t.mr
        e.emit(f"%hi_full = arith.minui %hi, {e.idx(full)} : index")
        e.emit(f"%ilo = arith.muli %lo, {e.idx(t.mr)} : index")
        e.emit(f"%ihi = arith.muli %hi_full, {e.idx(t.mr)} : index")
        e.emit(f"%has_rtail = arith.cmpi ugt, %hi, {e.idx(full)} : index")
        e.emit(f"%rhi = arith.select %has_rtail, {e.idx(m)}, %ihi : index")
        e.emit("%jlo = arith.constant 0 : index")
        e.emit(f"%jhi = arith.constant {n_main} : index")
        e.emit("%has_tail = arith.constant true")
    else:
        # This call computes the output columns of panels [lo, hi): the columns
        # [jlo, jhi) of full panels, and the partial last panel if hi reaches it.
        full = n_main // t.nr
        e.emit(f"%hi_full = arith.minui %hi, {e.idx(full)} : index")
        e.emit(f"%jlo = arith.muli %lo, {e.idx(t.nr)} : index")
        e.emit(f"%jhi = arith.muli %hi_full, {e.idx(t.nr)} : index")
        e.emit(f"%has_tail = arith.cmpi ugt, %hi, {e.idx(full)} : index")
    assert not split_rows or (mode == "p" and geometry is None and pitch is None and not a_packed), \
        "row ranges are for kernels with B packed at compile time"
    if outside:
        stream_blocks()
    elif stream:
        each_panel(stream_panel)
    else:
        if mode == "q":
            if n_main:
                for_loop("%pp", "%lo", "%hi_full", 1, lambda: pack_panel("%pp", t.nr))
            if n_tail:
                if_tail(lambda: pack_panel(e.idx(full), n_tail))
        k_blocks(kc_body)
        if not one_block and chain and pitch is None:
            each_panel(chain_pass)
    body = e.lines[body_start:]
    consts = [f"    {cname} = arith.constant {v} : index" for v, cname in sorted(e.consts.items())]
    if geometry is not None:
        g = geometry
        consts += [
            f"    %iota = arith.constant dense<[{', '.join(map(str, range(t.vl)))}]> : {ivec}",
            f"    %vow = arith.constant dense<{g.ow}> : {ivec}",
            f"    %vrow = arith.constant dense<{g.sh * g.w}> : {ivec}",
            f"    %vsw = arith.constant dense<{g.sw}> : {ivec}",
            f"    %vn = arith.constant dense<{n}> : {ivec}",
            *[f"    %ci{c * t.vl} = arith.constant {c * t.vl} : i32" for c in range(t.nr // t.vl)],
        ]
        if g.sw == 2:
            consts.append(f"    %odd_end = vector.constant_mask [{t.vl - 1}] : {mask_ty}")
    consts += [f"    %epc{i} = arith.constant dense<{_f32_literal(value)}> : {vec}"
               for i, (_, value) in enumerate(chain) if value is not None]
    if init == "splat":
        consts.append(f"    %splat = arith.constant dense<{_f32_literal(splat)}> : {vec}")
    scratch_arg = {"q": f"%Bp: {bp_ty}, ", "s": f"%S: {bp_ty}, ", "i": f"%S: {bp_ty}, "}.get(mode, "")
    extra_names = (["%bias"] if init in ("rows", "cols") else []) + (["%R"] if has_residual else [])
    extra_tys = ([bias_ty] if init in ("rows", "cols") else []) + ([c_ty] if has_residual else [])
    extra_args = "".join(f"{nm}: {ty}, " for nm, ty in zip(extra_names, extra_tys))
    range_fn = [
        # Public: only the runtime glue calls it (qc-lower-to-llvm hides it again).
        f"func.func @{name}_range(%A: {a_ty}, %B: {b_ty}, {scratch_arg}%C: {c_ty}, {extra_args}%lo: index, "
        "%hi: index) attributes {llvm.emit_c_interface} {",
        *consts,
        f"    {zero_vec} = arith.constant dense<0.0> : {vec}",
        *body, "    return", "}",
    ]
    # The entry of the kernel: the runtime splits the panels over its threads
    # and calls @{name}_range on each part (the C side of @{par} is generated
    # with the model's description; for s and i it adds the thread's scratch).
    par = parallel_entry(name)
    wrapper_params = ", ".join(f"{nm}: {ty}" for nm, ty in zip(["%A", "%B", "%C", *extra_names],
                                                                [a_ty, b_ty, c_ty, *extra_tys]))
    arg_tys = [a_ty, b_ty, *([bp_ty] if mode == "q" else []), c_ty, *extra_tys]
    args = ["%A", "%B", *(["%Bp"] if mode == "q" else []), "%C", *extra_names]
    entry = [
        f"func.func private @{par}({', '.join(arg_tys)}) attributes {{llvm.emit_c_interface}}",
        f"func.func private @{name}({wrapper_params}) {{",
        # No dealloc: qc-lower-to-scf's deallocation pass frees %Bp after its last use.
        *([f"    %Bp = memref.alloc() {{alignment = 64 : i64}} : {bp_ty}"] if mode == "q" else []),
        f"    func.call @{par}({', '.join(args)}) : ({', '.join(arg_tys)}) -> ()",
        "    return", "}",
    ]
    return "\n".join([*range_fn, *entry]) + "\n"
