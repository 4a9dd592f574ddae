"""qc-channels-last-depthwise: a depthwise convolution between transposed
GEMMs (qc-narrow-gemm) runs channels-last, on their pixel-major layout.

On a 7 x 7 map a MobileNet v2 block is 1x1 expand, 3x3 depthwise, 1x1
project; qc-narrow-gemm computes both 1x1 convolutions as pixel-major
GEMMs, Y^T[(h, w), c]. In NCHW the depthwise between them costs two
transposes (the expand's result back to C x H x W, into the padded input;
the depthwise's result gathered again into pixel-major rows for the
project) and runs along rows of 7 pixels: one 8-lane vector, a lane of it
wasted, per row and tap. Channels-last, over (oh, ow, c) with c innermost,

    out[oh, ow, c] = start[c] + sum_{i,j} s[oh*sh + i*dh - ph, ow*sw + j*dw - pw, c] * w'[i, j, c]

every tap is one full vector FMA along the channels (960 of them: 120
vectors), it reads the expand's result s = Y^T where it lies, and its own
result is the project's pixel-major operand as it stands: both transposes
go (on the 7 x 7 MobileNet v2 block, 2 of its 5 loops).

The padding is not materialized: a tap outside the map reads the pad
value. Its condition depends on (oh, ow) only, invariant along the channel
loop, and a clamped index keeps the load in bounds. The weights w[c, i, j]
are transposed to w'[i, j, c] at compile time, so that each tap's weights
are one contiguous vector too.

Taken: the f32 depthwise generic of qc-depthwise-conv (after fusion: all
parallel over (n, c, oh, ow) of one image, taps read with tensor.extract at
(0, c, h, w)) whose input is a constant-padded tensor, its interior the
transpose of a pixel-major [H, W, C] tensor (qc-narrow-gemm's transpose
back). Users of its result that are 1x1 pixel-major gathers
(qc-narrow-gemm's im2col) read the channels-last result directly; any other
user gets one transpose back. Runs after qc-narrow-gemm, on tensors.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from qc.mlir import arith, ir, linalg, tensor

from .base import Pass, collect_ops

_GATHER_1X1 = "(d0, d1, d2, d3, d4) -> (0, d2, d0 + d3, d1 + d4)"


@dataclass(frozen=True)
class ChannelsLastDepthwise(Pass):
    """Needs tensors, after qc-depthwise-conv and qc-narrow-gemm. Leaves an
    all-parallel generic over (oh, ow, c) writing [OH, OW, C]."""

    name = "qc-channels-last-depthwise"

    def apply(self, module: ir.Module) -> None:
        # Matched first: a rewrite erases the gathers it replaces, which are
        # generics too.
        found = [(op.operation, m) for op in collect_ops(module.operation, ("linalg.generic",))
                 if (m := _match(op.operation)) is not None]
        for op, m in found:
            _rewrite(op, *m)


def _owner(v: ir.Value):
    return getattr(v.owner, "operation", None)


def _maps(op: ir.Operation) -> list[ir.AffineMap]:
    return [ir.AffineMapAttr(a).value for a in op.attributes["indexing_maps"]]


def _copy_body(op: ir.Operation) -> bool:
    """Whether op's body only yields its first block argument."""
    block = op.regions[0].blocks[0]
    body = list(block.operations)
    return len(body) == 1 and body[0].operands[0] == block.arguments[0]


def _static(op: ir.Operation, name: str) -> list[int]:
    return list(ir.DenseI64ArrayAttr(op.attributes[name]))


def _padded_source(p: ir.Value):
    """(s [H, W, C], pad value (an attribute), (ph, pw)) where p [1, C, Hp, Wp] is a constant
    fill with the transpose of s inserted at (0, 0, ph, pw), else None."""
    pad = _owner(p)
    if pad is not None and pad.name == "tensor.pad" and len(pad.operands) == 1:
        src, offsets = pad.operands[0], _static(pad, "static_low")
        body = list(pad.regions[0].blocks[0].operations)
        value = body[-1].operands[0]
        if _owner(value) is None or _owner(value).name != "arith.constant":
            return None  # a pad value computed per element
    elif pad is not None and pad.name == "tensor.insert_slice" and len(pad.operands) == 2:
        src, dest = pad.operands
        offsets, sizes = _static(pad, "static_offsets"), _static(pad, "static_sizes")
        if _static(pad, "static_strides") != [1] * 4 or sizes != list(ir.RankedTensorType(src.type).shape):
            return None
        fill = _owner(dest)
        if fill is None or fill.name != "linalg.fill":
            return None
        value = fill.operands[0]
        if _owner(value) is None or _owner(value).name != "arith.constant":
            return None
    else:
        return None  # dynamic offsets or sizes, or not a padded tensor
    if offsets[:2] != [0, 0]:
        return None
    expand = _owner(src)
    if expand is None or expand.name != "tensor.expand_shape":
        return None
    back = _owner(expand.operands[0])
    if back is None or back.name != "linalg.generic" or len(back.operands) != 2 or not _copy_body(back):
        return None
    if [str(m) for m in _maps(back)] != ["(d0, d1, d2) -> (d0, d1, d2)", "(d0, d1, d2) -> (d2, d0, d1)"]:
        return None
    return back.operands[0], _owner(value).attributes["value"], (offsets[2], offsets[3])


def _taps_source(op: ir.Operation):
    """The one tensor the body's tensor.extract ops read at (0, c, h, w) with
    c = linalg.index 1, else None."""
    block = op.regions[0].blocks[0]
    sources = set()
    for o in block.operations:
        if o.name == "tensor.extract":
            src, *idx = o.operands
            if len(idx) != 4:
                return None
            first, chan = _owner(idx[0]), _owner(idx[1])
            if chan is None or chan.name != "linalg.index" \
                    or ir.IntegerAttr(chan.attributes["dim"]).value != 1:
                return None
            if first is None or first.name != "arith.constant" or ir.IntegerAttr(first.attributes["value"]).value:
                return None
            sources.add(src)
        elif len(o.regions):
            return None  # nothing to clone it by
    return sources.pop() if len(sources) == 1 else None


def depthwise_input(op: ir.Operation) -> ir.Value | None:
    """The tensor a depthwise generic of qc-depthwise-conv reads its taps
    from (an f32 all-parallel generic over (0, c, oh, ow), taps read at
    (0, c, h, w)), else None."""
    if op.name != "linalg.generic" or len(op.results) != 1 \
            or any("parallel" not in str(it) for it in op.attributes["iterator_types"]):
        return None
    out_ty = ir.RankedTensorType(op.results[0].type)
    if len(out_ty.shape) != 4 or out_ty.shape[0] != 1 or not isinstance(out_ty.element_type, ir.F32Type):
        return None
    block = op.regions[0].blocks[0]
    if str(_maps(op)[-1]) != "(d0, d1, d2, d3) -> (d0, d1, d2, d3)" or list(block.arguments[-1].uses):
        return None
    return _taps_source(op)


def _match(op: ir.Operation):
    """(padded tensor the taps read, (its source, pad value, pad offsets))
    for a depthwise generic this pass takes, else None."""
    p = depthwise_input(op)
    found = _padded_source(p) if p is not None else None
    return None if found is None else (p, found)


def _rewrite(op: ir.Operation, p: ir.Value, found) -> None:
    from qc.frontends.onnx import builder as b

    s, pad, (ph, pw) = found
    out_ty = ir.RankedTensorType(op.results[0].type)
    maps = _maps(op)
    block = op.regions[0].blocks[0]
    h, w, c = ir.RankedTensorType(s.type).shape
    _, _, oh, ow = out_ty.shape
    f32 = np.dtype(np.float32)
    n_in = len(op.operands) - 1
    with ir.InsertionPoint(op), op.location:
        pad = arith.ConstantOp(ir.F32Type.get(), pad).result  # the pad's may be defined in its body
        inputs, in_maps = _channels_last_inputs(op.operands[:n_in], maps[:n_in])
        index = ir.IndexType.get()

        def body(*args):
            new_index = {0: lambda: arith.ConstantOp(index, 0).result, 1: lambda: linalg.IndexOp(2).result,
                         2: lambda: linalg.IndexOp(0).result, 3: lambda: linalg.IndexOp(1).result}
            mapping = dict(zip(block.arguments, args))
            for o in block.operations:
                if o.name == "linalg.yield":
                    return mapping.get(o.operands[0], o.operands[0])
                if o.name == "linalg.index":
                    mapping[o.results[0]] = new_index[ir.IntegerAttr(o.attributes["dim"]).value]()
                elif o.name == "tensor.extract" and o.operands[0] == p:
                    _, _, ch, row, col = (mapping.get(v, v) for v in o.operands)
                    mapping[o.results[0]] = _tap(s, pad, ch, row, col, ph, pw, h, w)
                else:
                    new = o.clone()
                    for i, v in enumerate(o.operands):
                        if v in mapping:
                            new.operands[i] = mapping[v]
                    for old, res in zip(o.results, new.results):
                        mapping[old] = res
            raise AssertionError("a generic body ends in linalg.yield")

        (res,) = b.generic(inputs, [b.empty([oh, ow, c], f32)], in_maps + [b.identity_map(3)], [b.PARALLEL] * 3,
                           body)
        for use in list(op.results[0].uses):
            user = use.owner
            if _is_gather_1x1(user, op.results[0]):
                user.results[0].replace_all_uses_with(b.expand(b.T(res, f32), [[0], [1], [2, 3, 4]],
                                                               [oh, ow, c, 1, 1]).value)
                user.erase()
        if list(op.results[0].uses):
            # Other users read NCHW: one transpose back for all of them.
            to_chw = ir.AffineMap.get(3, 0, [ir.AffineDimExpr.get(2), ir.AffineDimExpr.get(0),
                                             ir.AffineDimExpr.get(1)])
            (chw,) = b.generic([res], [b.empty([c, oh, ow], f32)], [b.identity_map(3), to_chw], [b.PARALLEL] * 3,
                                lambda v, _out: v)
            op.results[0].replace_all_uses_with(b.expand(b.T(chw, f32), [[0, 1], [2], [3]], [1, c, oh, ow]).value)
    op.erase()


def _is_gather_1x1(user: ir.Operation, value: ir.Value) -> bool:
    """Whether `user` is qc-narrow-gemm's pixel-major gather of `value` for a
    1x1 stride-1 convolution: out[oh, ow, c, 0, 0] = value[0, c, oh, ow]."""
    if user.name != "linalg.generic" or len(user.operands) != 2 or user.operands[0] != value:
        return False
    shape = list(ir.RankedTensorType(user.results[0].type).shape)
    _, c, oh, ow = ir.RankedTensorType(value.type).shape
    return shape == [oh, ow, c, 1, 1] and str(_maps(user)[0]) == _GATHER_1X1 and _copy_body(user)


def _tap(s, pad, ch, row, col, ph: int, pw: int, h: int, w: int) -> ir.Value:
    """s[row - ph, col - pw, ch], or the pad value outside s: the index is
    clamped to 0 there so that the load stays in bounds."""
    index = ir.IndexType.get()
    const = lambda v: arith.ConstantOp(index, v).result  # noqa: E731
    inside = None
    at = []
    for i, lo, size in ((row, ph, h), (col, pw, w)):
        i = arith.SubIOp(i, const(lo)).result if lo else i
        ok = arith.CmpIOp(arith.CmpIPredicate.ult, i, const(size)).result  # i < 0 wraps: also false
        at.append(arith.SelectOp(ok, i, const(0)).result)
        inside = ok if inside is None else arith.AndIOp(inside, ok).result
    v = tensor.ExtractOp(s, [at[0], at[1], ch]).result
    return arith.SelectOp(inside, v, pad).result


def _channels_last_inputs(values, maps):
    """The inputs in the (oh, ow, c) iteration: each map composed with
    (n, c, oh, ow) = (0, c, oh, ow); a constant read as [c, consts...] is
    transposed at compile time so that c is its last dimension."""
    d = [ir.AffineDimExpr.get(i) for i in range(3)]
    to_old = ir.AffineMap.get(3, 0, [ir.AffineConstantExpr.get(0), d[2], d[0], d[1]])
    moved: dict = {}
    inputs, new_maps = [], []
    for v, m in zip(values, maps):
        results = [str(r) for r in m.results]
        const = _owner(v)
        if const is not None and const.name == "arith.constant" and results.count("d1") == 1 \
                and all(r == "d1" or r.lstrip("-").isdigit() for r in results) \
                and isinstance(const.attributes["value"], ir.DenseElementsAttr):
            axis = results.index("d1")
            if v not in moved:
                arr = np.array(ir.DenseElementsAttr(const.attributes["value"]))
                t = np.ascontiguousarray(np.moveaxis(arr, axis, -1))
                ty = ir.RankedTensorType.get(list(t.shape), ir.RankedTensorType(v.type).element_type)
                moved[v] = arith.ConstantOp(ty, ir.DenseElementsAttr.get(t, type=ty)).result
            exprs = [r for i, r in enumerate(m.results) if i != axis] + [d[2]]
            inputs.append(moved[v])
            new_maps.append(ir.AffineMap.get(3, 0, exprs))
        else:
            inputs.append(v)
            new_maps.append(ir.AffineMap.get(3, 0, [r.compose(to_old) for r in m.results]))
    return inputs, new_maps
