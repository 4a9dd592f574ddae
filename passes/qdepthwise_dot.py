"""The dot-product form of qc-vector-qdepthwise's kernel (AVX-512 VNNI and
VBMI): a window row's taps as byte quads, one vpdpbusd per quad and L
outputs.

Output lane l of a step starting at column col0 needs the bytes
x[(col0 + l) * sw + j] of each window row. One load of 4L bytes holds them
for a whole row segment, and a byte shuffle (vpermb) per step and quad puts
lane l's taps 4g .. 4g + 3 in its four bytes (taps past kw read any loaded
byte: their weight is 0). vpdpbusd multiplies unsigned by signed bytes, so
the activations are read as x + 128 (xor 0x80 of the int8 value) and each
channel's start carries the exact correction -128 * sum(w) (i32 arithmetic,
as in the generic: the same bits).

A block of R output rows is computed at once: its (R - 1) * sh + kh input
rows are each loaded and shuffled once, and each window feeds every output
row of the block it belongs to (a 3x3 stride-1 conv: 6 row loads and 6
shuffles per step for 4 output rows, instead of 12 and 12). A row's steps
are L outputs wide, the last one ending at the row's end (overlapping the
one before, as in the pair kernel); up to four steps share the accumulators
of a block (16 registers), wider rows are done in strips of four steps.

With a requantization (`rq`, qc-vector-qdepthwise's fold_requant), each
step's sums go through its program (the requantizing generic's body,
replayed on the vector) and the step stores bytes; the i32 sums are never
written. With qmath's 32-bit form that is 6 instructions per 16 outputs, and
the kernel plus requantization ran 1.05-1.09x faster than kernel and
requantization loop apart on a MobileNet block (Zen 4); with the exact
64-bit form the fold was 0.985x there (it lost the loop's 64-byte table
lookup), and 1.12x on a Xeon with AMX, whose pipeline folds it too
(qc-vector-qdepthwise's fold_wide). A second stage fed by requant_origin's
line (a high word with no rounding constant) always folds: 1.21x over its
own loop on that Xeon's MobileNet block, the tile unit off. Where the
program first adds a per-channel constant to the sums (requant_origin's
origin), each channel's sums start from it, as in the pair kernel: one
vpaddd fewer per 16 outputs, 1.02x on that block.

Per 16 outputs of a 3x3 stride-1 conv on a 56-wide row: 3 vpdpbusd, 1.5
vpermb, 0.4 loads and xors, against 6 vpmaddwd / vpdpwssd, 4.5 widening
loads and an interleave for the i16 pair kernel.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from qc.mlir import ir

from .base import constant_array
from .lower_gemm import _Emitter
from .qgemm_dot import dot_declaration, dot_helper, groups

if TYPE_CHECKING:
    from .vector_qdepthwise import _Conv

ROWS = 4  # output rows per block
STEPS = 4  # steps (of L outputs) per strip of a row


def dot_width(conv: "_Conv") -> int | None:
    """Outputs per step (16, 8 or 4: a zmm, ymm or xmm of i32) for this
    conv, or None where the dot kernel does not apply (rows of fewer than 4
    outputs, or a step's window wider than one 4L-byte load)."""
    ow = ir.MemRefType(conv.out.type).shape[-1]
    lanes = next((n for n in (16, 8, 4) if ow >= n), None)
    if lanes is None or (lanes - 1) * conv.sw + conv.kw > 4 * lanes:
        return None
    return lanes


def weight_quads(module, symbols, sym: str, w: np.ndarray, op: ir.Operation) -> tuple[ir.Value, ir.Value]:
    """get_globals (before op) of the weights [C, kh, kw] as byte quads
    [C, kh, ceil(kw / 4)] of i32 (tap 4g + t in byte t, zero past kw), and
    of each channel's correction for the +128 activations, -128 * sum(w)."""
    i32 = ir.IntegerType.get_signless(32)
    quads = constant_array(module, symbols, f"{sym}_quads", groups(w, 4), i32, op)
    corr = (-128 * w.reshape(w.shape[0], -1).sum(axis=1)).astype(np.int32)
    return quads, constant_array(module, symbols, f"{sym}_u8corr", corr, i32, op)


def _loads(cols: list[int], conv: "_Conv", lanes: int) -> list[tuple[int, int, list[int]]]:
    """The steps starting at `cols` grouped by the load that holds their
    windows: (first byte, bytes used, steps' columns), greedily while a
    step's window ends within 4L bytes of the group's first byte."""
    out: list[tuple[int, int, list[int]]] = []
    for col in cols:
        start, end = col * conv.sw, col * conv.sw + (lanes - 1) * conv.sw + conv.kw
        if out and end - out[-1][0] <= 4 * lanes:
            out[-1] = (out[-1][0], end - out[-1][0], out[-1][2] + [col])
        else:
            out.append((start, end - start, [col]))
    return out


def start_with_fold(e: _Emitter, s0: str, fold: tuple[int, int] | None, extra: dict, ty: dict) -> str:
    """Channel %c's start s0 plus the requantization's per-channel addition
    (`Requant.start_addition`, made once here instead of per vector of
    sums), or s0 where there is none."""
    if not fold:
        return s0
    d, s1 = e.fresh("d"), e.fresh("start")
    arg = extra[fold[1]]
    e.emit(f"{d} = memref.load {arg}[%c] : {ty[arg]}")
    e.emit(f"{s1} = arith.addi {s0}, {d} : i32")
    return s1


def channel_scalars(e: _Emitter, rq, extra: dict, ty: dict, lanes: int) -> dict:
    """The requantization's per-channel (row) inputs of channel %c, loaded
    and broadcast to `lanes`: Program input index -> vector."""
    scalars = {}
    for i, arg in extra.items():
        if rq.kinds[i] == "row":
            el, x, b = rq.program.args[i], e.fresh("rs"), e.fresh("rb")
            e.emit(f"{x} = memref.load {arg}[%c] : {ty[arg]}")
            e.emit(f"{b} = vector.broadcast {x} : {el} to vector<{lanes}x{el}>")
            scalars[i] = b
    return scalars


def dot_function(name: str, conv: "_Conv", quads: ir.Value, corr: ir.Value, rq=None) -> tuple[str, list]:
    """The kernel's MLIR text (with the declaration of the dot helper) and
    the values to call it with. rq: a qgemm_epilogue.Requant whose program
    runs on each block's sums, storing its output D instead of the sums."""
    lanes = dot_width(conv)
    assert lanes is not None
    e = _Emitter()
    e.indent = 1
    n_, c_, oh_, ow_ = ir.MemRefType(conv.out.type).shape
    w_in = ir.MemRefType(conv.x.type).shape[-1]
    operands = [conv.x, conv.w, quads, corr] + ([conv.bias] if conv.bias is not None else [])
    names = ["%x", "%w", "%wq", "%corr"] + (["%bias"] if conv.bias is not None else [])
    if rq is not None:
        operands += [rq.inputs[i] for i in rq.extras]
        names += [f"%E{j}" for j in range(len(rq.extras))]
    operands.append(rq.dest if rq is not None else conv.out)
    names.append("%out")
    ty = {a: str(v.type) for a, v in zip(names, operands)}
    out_ty = rq.program.out_type if rq is not None else "i32"
    extra = {i: f"%E{j}" for j, i in enumerate(rq.extras)} if rq is not None else {}
    nq = -(-conv.kw // 4)
    fold = rq.start_addition() if rq is not None else None
    v32, v8 = f"vector<{lanes}xi32>", f"vector<{4 * lanes}xi8>"
    helper = dot_helper("us", lanes, False)

    cols = list(range(0, ow_ - ow_ % lanes, lanes)) + ([ow_ - lanes] if ow_ % lanes else [])
    strips = [cols[i:i + STEPS] for i in range(0, len(cols), STEPS)]

    def channel() -> None:
        if conv.bias is None:
            s = "%start"
        else:
            s = e.fresh("bias")
            e.emit(f"{s} = memref.load %bias[%c] : {ty['%bias']}")
        k, s0, sv = e.fresh("corr"), e.fresh("s"), e.fresh("sv")
        e.emit(f"{k} = memref.load %corr[%c] : {ty['%corr']}")
        e.emit(f"{s0} = arith.addi {s}, {k} : i32")
        s0 = start_with_fold(e, s0, fold, extra, ty)
        e.emit(f"{sv} = vector.broadcast {s0} : i32 to {v32}")
        wv = {}
        for i in range(conv.kh):
            for g in range(nq):
                q, qb, qv = e.fresh("q"), e.fresh("qb"), e.fresh("wq")
                e.emit(f"{q} = memref.load %wq[%c, {e.idx(i)}, {e.idx(g)}] : {ty['%wq']}")
                e.emit(f"{qb} = vector.broadcast {q} : i32 to {v32}")
                e.emit(f"{qv} = vector.bitcast {qb} : {v32} to {v8}")
                wv[i, g] = qv
        scalars = channel_scalars(e, rq, extra, ty, lanes) if rq is not None else {}
        rows = min(ROWS, oh_)
        for strip in strips:
            full = oh_ - oh_ % rows
            e.for_loop("%ob", e.idx(0), e.idx(full), rows, lambda: block(rows, "%ob", strip, sv, wv, scalars))
            if oh_ % rows:
                block(oh_ % rows, e.idx(full), strip, sv, wv, scalars)

    def block(rows: int, oh0: str, strip: list[int], sv: str, wv: dict, scalars: dict) -> None:
        ih0 = e.fresh("ih")
        e.emit(f"{ih0} = arith.muli {oh0}, {e.idx(conv.sh)} : index")
        acc = {(q, col): sv for q in range(rows) for col in strip}
        for r in range((rows - 1) * conv.sh + conv.kh):
            row = e.add(ih0, r)
            for base, used, group in _loads(strip, conv, lanes):
                src = e.fresh("src")
                # A load must not read past the row (the last row ends the
                # buffer): near its end, one that ends with the row; only a
                # row narrower than a vector is read masked. (LLVM 22's
                # instruction selection never finished on a v64i8 masked
                # load of 18 bytes feeding these shuffles.)
                start = min(base, w_in - 4 * lanes)
                if start >= 0:
                    e.emit(f"{src} = vector.load %x[%n, %c, {row}, {e.idx(start)}] : {ty['%x']}, {v8}")
                else:
                    start = base
                    m, z = e.fresh("m"), e.fresh("z")
                    e.emit(f"{m} = vector.constant_mask [{used}] : vector<{4 * lanes}xi1>")
                    e.emit(f"{z} = arith.constant dense<0> : {v8}")
                    e.emit(f"{src} = vector.maskedload %x[%n, %c, {row}, {e.idx(base)}], {m}, {z} "
                           f": {ty['%x']}, vector<{4 * lanes}xi1>, {v8} into {v8}")
                flip, u = e.fresh("f"), e.fresh("u")
                e.emit(f"{flip} = arith.constant dense<-128> : {v8}")
                e.emit(f"{u} = arith.xori {src}, {flip} : {v8}")
                for col in group:
                    off = col * conv.sw - start
                    for g in range(nq):
                        idx = [off + lane * conv.sw + (4 * g + t if 4 * g + t < conv.kw else 0)
                               for lane in range(lanes) for t in range(4)]
                        win = e.fresh("win")
                        e.emit(f"{win} = vector.shuffle {u}, {u} [{', '.join(map(str, idx))}] : {v8}, {v8}")
                        for q in range(rows):
                            i = r - q * conv.sh
                            if 0 <= i < conv.kh:
                                a = e.fresh("acc")
                                e.emit(f"{a} = func.call @{helper}({acc[q, col]}, {win}, {wv[i, g]}) "
                                       f": ({v32}, {v8}, {v8}) -> {v32}")
                                acc[q, col] = a
        consts: dict = {}
        for q in range(rows):
            oh = e.add(oh0, q)
            for col in strip:
                out = acc[q, col]
                if rq is not None:
                    vals = dict(scalars)
                    vals[rq.kinds.index("acc")] = out
                    for i, arg in extra.items():
                        if rq.kinds[i] == "tile":
                            el, x = rq.program.args[i], e.fresh("rt")
                            e.emit(f"{x} = vector.load {arg}[%n, %c, {oh}, {e.idx(col)}] : {ty[arg]}, "
                                   f"vector<{lanes}x{el}>")
                            vals[i] = x
                    given = {fold[0]: out} if fold else {}  # the sums already hold the addition
                    out = rq.program.emit(e, lanes, vals, consts, rq.ranges, given=given)
                e.emit(f"vector.store {out}, %out[%n, %c, {oh}, {e.idx(col)}] : {ty['%out']}, "
                       f"vector<{lanes}x{out_ty}>")

    e.for_loop("%n", e.idx(0), e.idx(n_), 1, lambda: e.for_loop("%c", e.idx(0), e.idx(c_), 1, channel))
    consts = [f"  {c} = arith.constant {v} : index" for v, c in sorted(e.consts.items())]
    consts.append(f"  %start = arith.constant {conv.start} : i32")
    params = ", ".join(f"{a}: {ty[a]}" for a in names)
    text = "\n".join([dot_declaration(helper).rstrip(), f"func.func private @{name}({params}) {{", *consts,
                      *e.lines, "  return", "}"]) + "\n"
    return text, operands
