"""qc-vector-qdepthwise: the int8 depthwise convolution as vector code whose
taps are summed by pairs (x86).

qc-qdepthwise-conv leaves an all-parallel generic (its window in
`WINDOW_ATTR`) whose taps LLVM vectorizes as a sign extension to i32, a
vpmulld and a vpaddd per tap and 8 outputs. Here, for strides 1 and 2
without dilation, two horizontal taps (j, j+1) of a window row are one i16
pair multiply-add (vpmaddwd): the input bytes x[w + j] and x[w + j + 1] are
adjacent, so one load of 2m bytes sign-extended to i16 holds the pairs of m
outputs (stride 1: the even outputs from w + j, the odd ones from w + 1 + j;
stride 2: m consecutive outputs from 2w + j), against the weight pair
(w_j, w_j+1) broadcast as one i32 (packed at compile time). An odd kw takes
its last tap as the pair (kw-2, kw-1) with the first weight 0, which reads
no byte past the window. For stride 1 the even and odd sums are interleaved
for the store, or with the requantization in the kernel stored apart and
put in order as bytes after it. Products are exact in i16
(|x * w| <= 2^14) and pair sums in i32, as in the generic. A
requantization right after the conv runs in the kernel once per channel
(`channel_requant`): the channel's sums go to a stack
buffer of one image and are requantized from there while still in L1 or L2,
so the i32 sums of all channels (four times the int8 output) never reach
memory. Where the requantization first adds a per-channel constant (the
zero-point and bias terms, or the origin of requant_origin's line), the
channel's sums start from it instead; where a high word then multiplies
them, its odd lanes are a load of the buffer one element on, not a shuffle
(vpmuldq reads the low half of each i64 lane), and with split parities
its high words are merged by one vshufps per 8, out of order: the byte
shuffle that interleaves the parities puts them back. (Folding it per
vector of sums was slower: on AVX2 its per-channel vectors spill, and on
AVX-512, spill-free, that kernel of a MobileNet block still took 30%
longer than the kernel and the requantization loop apart.)
The byte-quad kernel (`dot`) does fold it per vector (`fold_requant`,
qdepthwise_dot.py).

The multiply-add is a call of a helper that qc-lower-to-llvm defines as the
intrinsic (`PMADDWD`): written as the sum of pair products, which LLVM does
turn into vpmaddwd, the loop-invariant weights are widened to i32 outside
the loop and narrowed back at every step.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from qc.mlir import ir

from . import qgemm_epilogue
from .base import Pass, append_functions, collect_ops, constant_array
from .depthwise_window import WINDOW_ATTR
from .gemm_epilogue import _dense, _maps
from .lower_gemm import _collapse, _Emitter, constant_global
from .qdepthwise_dot import channel_scalars, dot_function, dot_width, start_with_fold, weight_quads
from .vector_body import quad_order

# x86's i16 pair multiply-add (vpmaddwd) as functions qc-lower-to-llvm
# defines (`pmaddwd_definition`), by i16 lane count.
PMADDWD = {32: "qc_x86_pmaddwd_32", 16: "qc_x86_pmaddwd_16", 8: "qc_x86_pmaddwd_8"}
_INTRINSICS = {32: "llvm.x86.avx512.pmaddw.d.512", 16: "llvm.x86.avx2.pmadd.wd", 8: "llvm.x86.sse2.pmadd.wd"}


def pmaddwd_definition(name: str) -> str | None:
    """The LLVM-dialect body of a PMADDWD helper (always inlined), or None."""
    k = next((k for k, n in PMADDWD.items() if n == name), None)
    if k is None:
        return None
    a, r = f"vector<{k}xi16>", f"vector<{k // 2}xi32>"
    return (f'llvm.func internal @{name}(%a: {a}, %b: {a}) -> {r} attributes {{passthrough = ["alwaysinline"]}} {{\n'
            f'  %r = llvm.call_intrinsic "{_INTRINSICS[k]}"(%a, %b) : ({a}, {a}) -> {r}\n'
            f"  llvm.return %r : {r}\n}}\n")


@dataclass(frozen=True)
class VectorQDepthwise(Pass):
    """Needs bufferized IR with qc-qdepthwise-conv's generics (i8 x i8 ->
    i32, static, constant weights) and an x86 target with SSE2 (lanes 8),
    AVX2 (lanes 16) or AVX-512BW (lanes 32: twice the outputs per
    instruction; the 256-bit helper then serves rows of 17 to 31 outputs).
    Leaves a func.call per conv to a private function of
    scf.for loops and vector ops, which calls PMADDWD helpers, or with
    `dot` (AVX-512 VNNI and VBMI) the byte-quad dot products of
    qdepthwise_dot.py where a row has at least 4 outputs."""

    name = "qc-vector-qdepthwise"
    lanes: int = 16  # outputs per step at stride 1 (16: one ymm of i16 pairs per parity, 32: one zmm)
    dot: bool = False  # vpdpbusd on vpermb windows
    # With `dot`: a requantization in qmath's 32-bit form after the conv runs on each
    # block's sums (qgemm_epilogue's match, a channel as a GEMM row); the i32 sums are never stored.
    fold_requant: bool = True
    # With `dot` and fold_requant: the exact 64-bit form with its rounding constant
    # too, whose second stage then runs per 16 outputs instead of as the
    # requantization loop's 64-byte table lookups (measured 0.985x on Zen 4, 1.12x
    # on a Xeon with AMX). A high word without that constant always folds.
    fold_wide: bool = False
    # Without `dot`: a requantization after the conv (any form, the exact 64-bit one too) runs
    # in the kernel channel by channel, on sums kept in a stack buffer. Off where
    # qc-vector-requant looks a second stage up in a table (VBMI): its own loop does that.
    channel_requant: bool = True

    def apply(self, module: ir.Module) -> None:
        from qc.mlir import func

        symbols = ir.SymbolTable(module.operation)
        tagged = [op.operation for op in collect_ops(module.operation, ("linalg.generic",))
                  if WINDOW_ATTR in op.operation.attributes]
        for count, op in enumerate(tagged):
            conv = _conv(op)
            found = constant_global(symbols, conv.w) if conv is not None else None
            if found is None:
                continue  # run-time weights: left to LLVM's loop vectorizer
            name = f"qc_qdepthwise_{count}"
            rq = None
            if self.dot and dot_width(conv) is not None:
                quads, corr = weight_quads(module, symbols, *_weights(found, conv), op)
                rq = _requant(op, conv, symbols, wide=self.fold_wide) if self.fold_requant else None
                text, operands = dot_function(name, conv, quads, corr, rq)
            else:
                pairs = _weight_pairs(module, symbols, found, conv, op)
                rq = _requant(op, conv, symbols, wide=True) \
                    if self.channel_requant and _scratch_fits(conv, self.lanes) else None
                text, operands = _function(name, conv, pairs, self.lanes, rq)
            append_functions(module, symbols, text)
            with ir.InsertionPoint(op), op.location:
                func.CallOp([], ir.FlatSymbolRefAttr.get(name), operands)
            op.erase()
            if rq is not None:
                rq.op.erase()


def _requant(op: ir.Operation, conv: "_Conv", symbols, wide: bool = False) -> "qgemm_epilogue.Requant | None":
    """The requantization of the conv's sums to run in its kernel, or None:
    qgemm_epilogue's conditions with the channels as the GEMM's rows and
    each image as its columns; D stored where the sums would have been.
    wide: the exact 64-bit form too (the pmaddwd kernel runs it per channel
    on sums still in cache, not per vector of sums in registers)."""
    shape = ir.MemRefType(conv.out.type).shape
    n_, c_, oh_, ow_ = shape
    rq = qgemm_epilogue.find(op, conv.out, [n_, c_, oh_ * ow_], [conv.x, conv.w], 1, symbols)
    if rq is None:
        return None
    if not wide and any(c is not None for (_, _, c), *_ in rq.program.high_words().values()):
        # The exact 64-bit form with its rounding constant: its own loop looks a second stage
        # up in a table (AVX-512 VBMI), which the kernel's 16-lane steps cannot (`fold_wide`).
        # A high word without one (requant_origin's line) folds anyway: 1.21x on the int8
        # MobileNet block on a Xeon, the tile unit off.
        return None
    if not _shapeable(rq.dest, shape) or any(kind == "tile" and not _shapeable(v, shape)
                                             for kind, v in zip(rq.kinds, rq.inputs)):
        return None
    with ir.InsertionPoint(op), op.location:
        # Tile inputs indexed as the sums, row inputs by channel.
        rq.inputs = [_conv_shaped(v, shape) if kind == "tile" else _collapse(v, [list(range(ir.MemRefType(v.type).rank))])
                     if kind == "row" else v for kind, v in zip(rq.kinds, rq.inputs)]
        rq.dest = _conv_shaped(rq.dest, shape)
    return rq


# The largest image whose i32 sums the pmaddwd kernel keeps in a stack buffer
# to requantize them channel by channel: 128 x 128 outputs, within L2 (a
# 56 x 56 image's 12.5 KiB stays in L1). A larger one keeps the loop after it.
SCRATCH_BYTES = 1 << 16


def _scratch_fits(conv: "_Conv", lanes: int) -> bool:
    """The sums buffer, in its wider layout (split parities), is at most SCRATCH_BYTES."""
    oh_ = ir.MemRefType(conv.out.type).shape[2]
    return oh_ * _sums_width(conv, lanes, True) * 4 <= SCRATCH_BYTES


def _chunk(conv: "_Conv", lanes: int) -> int:
    """Outputs per step of a row's sums: `lanes` at stride 1 (half at
    stride 2: either way `lanes` i16 per load), or the widest power of two
    that fits a narrower row."""
    ow_ = ir.MemRefType(conv.out.type).shape[3]
    n = lanes if conv.sw == 1 else lanes // 2
    while n > 2 and n > ow_:
        n //= 2
    return n


def _split_parities(conv: "_Conv", lanes: int, rq) -> bool:
    """Whether the sums buffer holds each stride-1 step's even outputs, then
    its odd ones, as the pair kernel makes them: no interleave per step, the
    requantization's steps being the same (`_requant_lanes`) and its bytes
    interleaved once packed. Not with a tile input of the requantization
    (read in the outputs' order)."""
    ow_ = ir.MemRefType(conv.out.type).shape[3]
    return (rq is not None and conv.sw == 1 and ow_ >= 2 and _chunk(conv, lanes) == _requant_lanes(ow_)
            and "tile" not in rq.kinds)


def _odd_view(rq, fold: tuple[int, int] | None) -> bool:
    """Whether the sums, once `fold`'s addition is in them, are multiplied
    as a high word (`Program.high_words`): their odd lanes can then be a
    load one element on (`_function`)."""
    return fold is not None and ("step", fold[0]) in [ch[0][0] for ch in rq.program.high_words().values()]


def _sums_width(conv: "_Conv", lanes: int, split: bool) -> int:
    """A row of the sums buffer: the outputs, and with split parities a
    slot of its own for the last step where it overlaps the one before
    (its layout differs from that step's)."""
    ow_ = ir.MemRefType(conv.out.type).shape[3]
    n = _chunk(conv, lanes)
    return ow_ - ow_ % n + n if split and ow_ % n else ow_


def _requant_lanes(ow: int) -> int:
    """Outputs per step of the per-channel requantization: 16 (two AVX2
    registers of i32, one 16-byte store), fewer for a narrower row."""
    return min(16, 1 << (ow.bit_length() - 1))


def _shapeable(v: ir.Value, shape: list[int]) -> bool:
    """`_conv_shaped` can view v as the conv's output."""
    ty = ir.MemRefType(v.type)
    if list(ty.shape) == list(shape):
        return ty.get_strides_and_offset()[0][-1] == 1
    return _dense(ty)


def _conv_shaped(v: ir.Value, shape: list[int]) -> ir.Value:
    """v, an operand of the requantizing generic (C's elements in order),
    as a memref of the conv's output shape [N, C, OH, OW] with unit inner
    stride (`_shapeable`): itself, or a dense one collapsed and expanded."""
    from qc.mlir import memref

    ty = ir.MemRefType(v.type)
    if list(ty.shape) == list(shape):
        return v
    flat = _collapse(v, [list(range(ty.rank))])
    i64 = ir.IntegerType.get_signless(64)
    groups = ir.ArrayAttr.get([ir.ArrayAttr.get([ir.IntegerAttr.get(i64, i) for i in range(len(shape))])])
    return memref.ExpandShapeOp(ir.MemRefType.get(shape, ty.element_type), flat, groups, [], list(shape)).result


def _pairs_of(conv: "_Conv") -> list[tuple[int, bool]]:
    """The tap pairs of a window row: (first tap j, whether w_j counts), the
    pair being taps (j, j+1); an odd kw ends with (kw-2, False): the last tap
    with a zero weight before it, which reads no byte past the window."""
    pairs = [(j, True) for j in range(0, conv.kw - 1, 2)]
    if conv.kw % 2:
        pairs.append((conv.kw - 2, False))
    return pairs


def _weights(found, conv: "_Conv") -> tuple[str, np.ndarray]:
    """The constant weights' global name and values [C, kh, kw] (int64)."""
    sym, attr = found
    c = ir.MemRefType(conv.w.type).shape[0]
    if attr.is_splat:
        return sym, np.full((c, conv.kh, conv.kw), ir.IntegerAttr(attr.get_splat_value()).value, np.int64)
    return sym, np.array(attr).astype(np.int64).reshape(c, conv.kh, conv.kw)


def _weight_pairs(module, symbols, found, conv: "_Conv", op: ir.Operation) -> ir.Value:
    """A get_global (before op) of the weights as i16 pairs [C, kh, pairs]
    of i32 (the first tap in the low half), packed at compile time: one load
    and broadcast per pair in the kernel."""
    sym, w = _weights(found, conv)
    cols = []
    for j, first in _pairs_of(conv):
        lo = w[:, :, j] if first else np.zeros_like(w[:, :, j])
        cols.append((lo & 0xFFFF) | (w[:, :, j + 1] << 16))
    data = np.stack(cols, axis=-1).astype(np.uint32).view(np.int32)
    name = f"{sym}_pairs"
    return constant_array(module, symbols, name, data, ir.IntegerType.get_signless(32), op)


@dataclass
class _Conv:
    x: ir.Value  # the (padded) input, read in the body
    w: ir.Value  # weights [C, kh, kw]
    bias: ir.Value | None  # per-channel start, or None
    start: int  # constant start without a bias
    out: ir.Value  # i32 [N, C, OH, OW]
    kh: int
    kw: int
    sh: int
    sw: int


def _int(d: ir.DictAttr, key: str) -> int:
    return ir.IntegerAttr(d[key]).value


def _conv(op: ir.Operation) -> _Conv | None:
    window = ir.DictAttr(op.attributes[WINDOW_ATTR])
    kh, kw, sh, sw = (_int(window, k) for k in ("kh", "kw", "sh", "sw"))
    if _int(window, "dh") != 1 or _int(window, "dw") != 1 or sw not in (1, 2) or kw < 2:
        return None
    tys = [v.type for v in op.operands]
    if not all(isinstance(t, ir.MemRefType) and ir.MemRefType(t).has_static_shape for t in tys):
        return None
    out = op.operands[-1]
    out_ty = ir.MemRefType(out.type)
    if str(out_ty.element_type) != "i32" or out_ty.rank != 4 or not _dense(out_ty):
        return None
    # (Values only: handles of ops inside `op` would dangle once it is erased.)
    xs = {inner.operands[0] for inner in op.regions[0].blocks[0].operations if inner.name == "memref.load"}
    if len(xs) != 1:
        return None
    (x,) = xs
    x_ty = ir.MemRefType(x.type)
    if str(x_ty.element_type) != "i8" or x_ty.rank != 4 or x_ty.get_strides_and_offset()[0][-1] != 1:
        return None
    taps = kh * kw
    w = op.operands[0]
    if str(ir.MemRefType(w.type).element_type) != "i8" or any(v != w for v in op.operands[1:taps]):
        return None
    start = window["start"] if "start" in window else None
    bias = None
    if isinstance(start, ir.StringAttr):
        bias = op.operands[taps]
        if len(op.operands) != taps + 2 or [str(r) for r in _maps(op)[taps].results] != ["d1"] \
                or ir.MemRefType(bias.type).rank != 1 or str(ir.MemRefType(bias.type).element_type) != "i32":
            return None
        value = 0
    elif isinstance(start, ir.IntegerAttr):
        if len(op.operands) != taps + 1:
            return None
        value = ir.IntegerAttr(start).value
    else:
        return None  # the generic reads its init
    return _Conv(x, w, bias, value, out, kh, kw, sh, sw)


def _function(name: str, conv: _Conv, wpairs: ir.Value, lanes: int, rq=None) -> tuple[str, list]:
    """The kernel's MLIR text (with the declarations of the PMADDWD helpers
    it calls) and the values to call it with. rq: a qgemm_epilogue.Requant
    run on each channel's sums once they are complete: they go to a stack
    buffer of one image (`SCRATCH_BYTES`), still in L1 or L2 when the
    requantization reads them back and stores D, the kernel's output. (Not
    per vector of sums: folded so, the per-channel constants spill on AVX2.)
    At stride 1 the buffer keeps each step's even and odd sums apart
    (`_split_parities`): the requantization's byte shuffle puts them in
    order, in place of the interleave per step of sums (two unpacks and two
    lane permutes on AVX2)."""
    used: set[int] = set()
    e = _Emitter()
    e.indent = 1
    n_, c_, oh_, ow_ = ir.MemRefType(conv.out.type).shape
    operands = [conv.x, conv.w, wpairs] + ([conv.bias] if conv.bias is not None else [])
    names = ["%x", "%w", "%wp"] + (["%bias"] if conv.bias is not None else [])
    if rq is not None:
        operands += [rq.inputs[i] for i in rq.extras]
        names += [f"%E{j}" for j in range(len(rq.extras))]
    operands.append(rq.dest if rq is not None else conv.out)
    names.append("%out")
    ty = {a: str(v.type) for a, v in zip(names, operands)}
    extra = {i: f"%E{j}" for j, i in enumerate(rq.extras)} if rq is not None else {}
    # Where the sums go: the output, or with rq the buffer of one channel's image.
    sums_at = "%out[%n, %c, {}, {}]" if rq is None else "%sums[{}, {}]"
    split = _split_parities(conv, lanes, rq)
    fold = rq.start_addition() if rq is not None else None
    odd_view = _odd_view(rq, fold)
    # With odd_view, a row's last step reads one sum past it: a vector of room.
    pad = _requant_lanes(ow_) // 2 if odd_view else 0
    # With split parities the bytes are shuffled into order anyway: the high
    # words may come out in quad_order (one vshufps per 8 in place of a
    # vpshufd and a vpblendd), every other operand being a channel's constant.
    quads = odd_view and split and _requant_lanes(ow_) % 4 == 0 \
        and rq.program.only_in_high_word(fold[0], rq.kinds.index("acc"))
    sums_ty = ty["%out"] if rq is None else f"memref<{oh_}x{_sums_width(conv, lanes, split) + pad}xi32>"
    pairs = _pairs_of(conv)

    def start() -> str:
        if conv.bias is None:
            return "%start"
        s = e.fresh("start")
        e.emit(f"{s} = memref.load %bias[%c] : {ty['%bias']}")
        return s

    def sums(s0: str, col0: str, n: int) -> list[str]:
        """The window sums of outputs col0 .. col0+n-1 of this row: for
        stride 1, the even and the odd outputs as two vector<n/2 x i32>; for
        stride 2, all n as one vector<n x i32>."""
        parities = [0, 1] if conv.sw == 1 else [0]
        per = n // 2 if conv.sw == 1 else n
        v32, v16, v8 = f"vector<{per}xi32>", f"vector<{2 * per}xi16>", f"vector<{2 * per}xi8>"
        wide = f"vector<{2 * per}xi32>"
        out = []
        for par in parities:
            acc = e.fresh("acc")
            e.emit(f"{acc} = vector.broadcast {s0} : i32 to {v32}")
            for i in range(conv.kh):
                row = e.fresh("row")
                e.emit(f"{row} = arith.addi %ih, {e.idx(i)} : index")
                for p, (j, _) in enumerate(pairs):
                    col = e.fresh("col")
                    if conv.sw == 1:
                        e.emit(f"{col} = arith.addi {col0}, {e.idx(j + par)} : index")
                    else:
                        c2 = e.fresh("c2")
                        e.emit(f"{c2} = arith.addi {col0}, {col0} : index")
                        e.emit(f"{col} = arith.addi {c2}, {e.idx(j)} : index")
                    xv, x16, pair, wb, w16, s, a2 = (e.fresh(t) for t in ("xv", "x16", "pair", "wb", "w16", "s", "acc"))
                    e.emit(f"{xv} = vector.load %x[%n, %c, {row}, {col}] : {ty['%x']}, {v8}")
                    e.emit(f"{x16} = arith.extsi {xv} : {v8} to {v16}")
                    e.emit(f"{pair} = memref.load %wp[%c, {e.idx(i)}, {e.idx(p)}] : {ty['%wp']}")
                    e.emit(f"{wb} = vector.broadcast {pair} : i32 to {v32}")
                    e.emit(f"{w16} = vector.bitcast {wb} : {v32} to {v16}")
                    if 2 * per in PMADDWD:
                        # The instruction itself: written as the sum of pair
                        # products below, LLVM hoists the widened weights out of
                        # the loop and narrows them again at every step.
                        e.emit(f"{s} = func.call @{PMADDWD[2 * per]}({x16}, {w16}) : ({v16}, {v16}) -> {v32}")
                        used.add(2 * per)
                    else:  # sext(x) * sext(w) summed over lane pairs
                        x32, w32, prod, ev, od = (e.fresh(t) for t in ("x32", "w32", "p", "ev", "od"))
                        e.emit(f"{x32} = arith.extsi {x16} : {v16} to {wide}")
                        e.emit(f"{w32} = arith.extsi {w16} : {v16} to {wide}")
                        e.emit(f"{prod} = arith.muli {x32}, {w32} : {wide}")
                        evens = ", ".join(str(2 * k) for k in range(per))
                        odds = ", ".join(str(2 * k + 1) for k in range(per))
                        e.emit(f"{ev} = vector.shuffle {prod}, {prod} [{evens}] : {wide}, {wide}")
                        e.emit(f"{od} = vector.shuffle {prod}, {prod} [{odds}] : {wide}, {wide}")
                        e.emit(f"{s} = arith.addi {ev}, {od} : {v32}")
                    e.emit(f"{a2} = arith.addi {acc}, {s} : {v32}")
                    acc = a2
            out.append(acc)
        return out

    def store(values: list[str], col0: str, n: int, slot: str | int) -> None:
        """A step's sums into the buffer; with split parities at `slot`
        (a loop index or a constant), else interleaved at col0."""
        if split:  # the even outputs, then the odd ones
            half = f"vector<{n // 2}xi32>"
            at = [e.idx(slot), e.idx(slot + n // 2)] if isinstance(slot, int) else [slot, e.add(slot, n // 2)]
            for v, col in zip(values, at):
                e.emit(f"vector.store {v}, {sums_at.format('%oh', col)} : {sums_ty}, {half}")
            return
        r = values[0]
        if len(values) == 2:  # even and odd outputs
            r = e.fresh("y")
            e.emit(f"{r} = vector.interleave {values[0]}, {values[1]} : vector<{n // 2}xi32> -> vector<{n}xi32>")
        e.emit(f"vector.store {r}, {sums_at.format('%oh', col0)} : {sums_ty}, vector<{n}xi32>")

    def single(s0: str, col: int) -> None:
        """The one output of a row of width 1, tap by tap."""
        acc = e.fresh("acc")
        e.emit(f"{acc} = vector.broadcast {s0} : i32 to vector<1xi32>")
        for i in range(conv.kh):
            row = e.fresh("row")
            e.emit(f"{row} = arith.addi %ih, {e.idx(i)} : index")
            for j in range(conv.kw):
                xv, x32, wt, w32, wb, p, a2 = (e.fresh(t) for t in ("xv", "x32", "wt", "w32", "wb", "p", "acc"))
                e.emit(f"{xv} = vector.load %x[%n, %c, {row}, {e.idx(col * conv.sw + j)}] : {ty['%x']}, vector<1xi8>")
                e.emit(f"{x32} = arith.extsi {xv} : vector<1xi8> to vector<1xi32>")
                e.emit(f"{wt} = memref.load %w[%c, {e.idx(i)}, {e.idx(j)}] : {ty['%w']}")
                e.emit(f"{w32} = arith.extsi {wt} : i8 to i32")
                e.emit(f"{wb} = vector.broadcast {w32} : i32 to vector<1xi32>")
                e.emit(f"{p} = arith.muli {x32}, {wb} : vector<1xi32>")
                e.emit(f"{a2} = arith.addi {acc}, {p} : vector<1xi32>")
                acc = a2
        e.emit(f"vector.store {acc}, {sums_at.format('%oh', e.idx(col))} : {sums_ty}, vector<1xi32>")

    # Chunks of an output row: `n` wide (`lanes`, or the widest power of two
    # that fits a narrower row), the last one ending at the row's end and
    # overlapping the one before (those outputs are written twice, with the
    # same values), so no row needs narrower code; a row of one output is
    # summed tap by tap.
    n = _chunk(conv, lanes)
    main = ow_ - ow_ % n if ow_ >= 2 else 0

    def row_body(s0: str) -> None:
        e.emit(f"%ih = arith.muli %oh, {e.idx(conv.sh)} : index")
        if main:
            e.for_loop("%ow", e.idx(0), e.idx(main), n, lambda: store(sums(s0, "%ow", n), "%ow", n, "%ow"))
        if ow_ >= 2 and ow_ % n:
            store(sums(s0, e.idx(ow_ - n), n), e.idx(ow_ - n), n, main)
        if ow_ < 2:
            single(s0, 0)

    def requant_row(scalars: dict) -> None:
        """D's row %rh from the sums' row: `m` outputs a step, the last step
        ending at the row's end (the sums are not D: recomputing is safe)."""
        m = _requant_lanes(ow_)

        def step(col: str, slot: str, consts: dict) -> None:
            vals = dict(scalars)
            v = e.fresh("sum")
            e.emit(f"{v} = vector.load %sums[%rh, {slot}] : {sums_ty}, vector<{m}xi32>")
            vals[rq.kinds.index("acc")] = v
            given = {fold[0]: v} if fold else {}  # the sums already hold the addition
            odd = {}
            if odd_view:
                vo = e.fresh("sodd")
                e.emit(f"{vo} = vector.load %sums[%rh, {e.add(slot, 1)}] : {sums_ty}, vector<{m}xi32>")
                odd = {("step", fold[0]): vo}
            for i, arg in extra.items():
                if rq.kinds[i] == "tile":
                    el, x = rq.program.args[i], e.fresh("rt")
                    e.emit(f"{x} = vector.load {arg}[%n, %c, %rh, {col}] : {ty[arg]}, vector<{m}x{el}>")
                    vals[i] = x
            out = rq.program.emit(e, m, vals, consts, rq.ranges, given=given, odd_views=odd, quads=quads)
            out_ty = f"vector<{m}x{rq.program.out_type}>"
            if split:  # even and odd outputs back in order, as bytes
                lane = quad_order(m) if quads else list(range(m))  # where each sum's result is
                order = ", ".join(str(lane[k // 2 + (k % 2) * (m // 2)]) for k in range(m))
                y = e.fresh("y")
                e.emit(f"{y} = vector.shuffle {out}, {out} [{order}] : {out_ty}, {out_ty}")
                out = y
            e.emit(f"vector.store {out}, %out[%n, %c, %rh, {col}] : {ty['%out']}, {out_ty}")

        main = ow_ - ow_ % m
        e.for_loop("%rw", e.idx(0), e.idx(main), m, lambda: step("%rw", "%rw", {}))
        if main < ow_:
            step(e.idx(ow_ - m), e.idx(main if split else ow_ - m), {})

    def requant_channel() -> None:
        scalars = channel_scalars(e, rq, extra, ty, _requant_lanes(ow_))  # broadcast once per channel
        e.for_loop("%rh", e.idx(0), e.idx(oh_), 1, lambda: requant_row(scalars))

    def per_channel():
        s0 = start_with_fold(e, start(), fold, extra, ty)
        e.for_loop("%oh", e.idx(0), e.idx(oh_), 1, lambda: row_body(s0))
        if rq is not None:
            requant_channel()

    e.for_loop("%n", e.idx(0), e.idx(n_), 1, lambda: e.for_loop("%c", e.idx(0), e.idx(c_), 1, per_channel))
    consts = [f"  {c} = arith.constant {v} : index" for v, c in sorted(e.consts.items())]
    consts.append(f"  %start = arith.constant {conv.start} : i32")
    if rq is not None:
        consts.append(f"  %sums = memref.alloca() {{alignment = 64 : i64}} : {sums_ty}")
    params = ", ".join(f"{a}: {ty[a]}" for a in names)
    decls = [f"func.func private @{PMADDWD[k]}(vector<{k}xi16>, vector<{k}xi16>) -> vector<{k // 2}xi32>"
             for k in sorted(used)]
    text = "\n".join([*decls, f"func.func private @{name}({params}) {{", *consts, *e.lines, "  return", "}"]) + "\n"
    return text, operands
