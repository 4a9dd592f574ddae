"""A depthwise convolution as an all-parallel generic over its output with
the window unrolled: shared by qc-depthwise-conv (f32) and
qc-qdepthwise-conv (int8).

    out[n, c, oh, ow] = start + sum_{i,j} x[n, c, oh*sh + i*dh, ow*sw + j*dw] * w[c, i, j]

The body reads the kh * kw taps of x with tensor.extract at
(n, c, oh*sh + i*dh, ow*sw + j*dw) from the loop indices, and takes w[c, i, j]
as operands with constant maps. The loop along ow is innermost and reads
kh * kw rows (contiguous for stride 1), all from x's one base address: as
operands, nine views of x were nine pointers that LLVM reloaded from the
stack in the loop (3% of a MobileNet block). The window's sum stays in a
register and the output is written once, instead of read and written once
per tap. `start` is the init's value without reading it where
the init is a constant fill (no memset first) or a broadcast of a
per-channel vector (a bias: one more operand, no fill loop first); any
other init is read.
"""

from __future__ import annotations

from typing import Callable

from qc.mlir import arith, ir, linalg, tensor

from .conv_to_gemm import _ints

WINDOW_ATTR = "qc.depthwise_window"


def _owner(v: ir.Value):
    return getattr(v.owner, "operation", None)


def _fill_value(init: ir.Value) -> ir.Value | None:
    """The constant a linalg.fill writes into `init`, or None."""
    fill = _owner(init)
    if fill is None or fill.name != "linalg.fill":
        return None
    value = fill.operands[0]
    const = _owner(value)
    return value if const is not None and const.name == "arith.constant" else None


def _broadcast_source(init: ir.Value):
    """(tensor, its indexing map) if `init` is an all-parallel generic that
    only copies one input into its output (a bias broadcast), else None."""
    gen = _owner(init)
    if gen is None or gen.name != "linalg.generic" or len(gen.operands) != 2:
        return None
    if any("parallel" not in str(it) for it in gen.attributes["iterator_types"]):
        return None
    block = gen.regions[0].blocks[0]
    ops = list(block.operations)
    if len(ops) != 1 or ops[0].operands[0] != block.arguments[0]:
        return None
    in_map, out_map = (ir.AffineMapAttr(m).value for m in gen.attributes["indexing_maps"])
    if [str(r) for r in out_map.results] != [f"d{i}" for i in range(out_map.n_dims)]:
        return None
    return gen.operands[0], in_map


def unroll(op, mac: Callable[[ir.Value, ir.Value, ir.Value], ir.Value]) -> ir.Operation:
    """Replaces linalg.depthwise_conv_2d_nchw_chw `op` (static shapes) by the
    unrolled generic, which it returns; mac(x, w, acc) -> acc + x * w in the
    result type. The generic carries its window as the attribute `WINDOW_ATTR`
    (kh, kw, strides, dilations; the start: a constant, or "bias" for the
    extra operand) for passes that write its loop themselves."""
    from qc.frontends.onnx import builder as b

    x, w = list(op.inputs)
    (init,) = list(op.outputs)
    attrs = op.operation.attributes
    sh, sw = _ints(attrs["strides"] if "strides" in attrs else None, (1, 1))
    dh, dw = _ints(attrs["dilations"] if "dilations" in attrs else None, (1, 1))
    kh, kw = ir.RankedTensorType(w.type).shape[1:]
    n, c, oh, ow = ir.RankedTensorType(init.type).shape
    d = [ir.AffineDimExpr.get(i) for i in range(4)]  # n, c, oh, ow
    taps = [(i, j) for i in range(kh) for j in range(kw)]
    w_maps = [ir.AffineMap.get(4, 0, [d[1], ir.AffineConstantExpr.get(i), ir.AffineConstantExpr.get(j)])
              for i, j in taps]
    start_value = _fill_value(init)
    bias = _broadcast_source(init) if start_value is None else None
    extra, extra_maps = ([bias[0]], [bias[1]]) if bias else ([], [])

    def window(*args):
        ws = args[:len(taps)]
        acc = start_value if start_value is not None else (args[len(taps)] if bias else args[-1])
        index = ir.IndexType.get()
        const = lambda v: arith.ConstantOp(index, v).result  # noqa: E731
        nn, cc, hh, ww = (linalg.IndexOp(i).result for i in range(4))
        row0, col0 = arith.MulIOp(hh, const(sh)).result, arith.MulIOp(ww, const(sw)).result
        for (i, j), q in zip(taps, ws):
            row = arith.AddIOp(row0, const(i * dh)).result
            col = arith.AddIOp(col0, const(j * dw)).result
            acc = mac(tensor.ExtractOp(x, [nn, cc, row, col]).result, q, acc)
        return acc

    producer = _owner(init) if start_value is not None or bias else None
    with ir.InsertionPoint(op.operation), op.location:
        # A folded init: its producer's destination, which the sum never reads.
        out_init = producer.operands[-1] if producer is not None else init
        (res,) = b.generic([w] * len(taps) + extra, [out_init], w_maps + extra_maps + [b.identity_map(4)],
                           [b.PARALLEL] * 4, window)
    gen = res.owner.operation if hasattr(res.owner, "operation") else res.owner
    i64 = ir.IntegerType.get_signless(64)
    window_attr = {k: ir.IntegerAttr.get(i64, v) for k, v in
                   dict(kh=kh, kw=kw, sh=sh, sw=sw, dh=dh, dw=dw).items()}
    if bias:
        window_attr["start"] = ir.StringAttr.get("bias")
    elif start_value is not None:
        window_attr["start"] = _owner(start_value).attributes["value"]
    gen.attributes[WINDOW_ATTR] = ir.DictAttr.get(window_attr)
    op.operation.results[0].replace_all_uses_with(res)
    op.operation.erase()
    if producer is not None and not list(producer.results[0].uses):
        producer.erase()  # its value went into the sum
    return gen
