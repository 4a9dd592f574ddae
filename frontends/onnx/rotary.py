"""RotaryEmbedding (opset 23): rotate pairs of each head's first R features
by the angle of the token's position.

For a pair (x1, x2) with cos c and sin s of the pair's frequency m at the
token's position:  (x1, x2) -> (c x1 - s x2, s x1 + c x2).
The pairs are (d, d + R/2) for d < R/2, or (2m, 2m + 1) with interleaved=1;
features d >= R pass through (R = rotary_embedding_dim, default the head
size). cos/sin are [max position, R/2] tables indexed by position_ids[b, s],
or [B, S, R/2] already per token.

One generic over the output, in the input's layout: 4-D [B, H, S, D], or 3-D
[B, S, H*D] viewed as [B, S, H, D]. Each element reads its partner and the
table entries with tensor.extract, at indices clamped into range (a position
id outside the table reads its nearest end rather than out of bounds).
float16 is computed in float32.
"""

from __future__ import annotations

import numpy as np

from qc.errors import UnsupportedOp
from qc.mlir import arith, ir, linalg, tensor

from . import builder as b
from .attrs import attrs
from .registry import importer

FLOATS = (np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.float64))


@importer("RotaryEmbedding")
def import_rotary_embedding(ctx, node):
    a = attrs(node)
    x, cos, sin = (ctx.get(n) for n in node.input[:3])
    pos = ctx.get(node.input[3]) if len(node.input) > 3 and node.input[3] else None
    if x.dtype not in FLOATS or cos.dtype != x.dtype or sin.dtype != x.dtype:
        raise UnsupportedOp(node, f"element types {x.dtype}, {cos.dtype}, {sin.dtype}",
                            "one of float16, float32, float64 for the input and both caches")
    view, dims = _heads_view(node, a, x)
    bsz, seq, head = x.shape[0], view.shape[dims["s"]], view.shape[3]
    rot = int(a.get("rotary_embedding_dim", 0)) or head
    if rot % 2 or rot > head:
        raise UnsupportedOp(node, f"rotary_embedding_dim {rot} with head size {head}", "an even size <= head size")
    for what, t in (("cos_cache", cos), ("sin_cache", sin)):
        if pos is None and t.shape != (bsz, seq, rot // 2):
            raise UnsupportedOp(node, f"{what} has shape {list(t.shape)}", f"{[bsz, seq, rot // 2]}")
        if pos is not None and (t.rank != 2 or t.shape[1] != rot // 2):
            raise UnsupportedOp(node, f"{what} has shape {list(t.shape)}", f"[max_position, {rot // 2}]")
    if pos is not None and (pos.dtype != np.int64 or pos.shape != (bsz, seq)):
        raise UnsupportedOp(node, f"position_ids is {pos.dtype}{list(pos.shape)}", f"int64[{bsz}, {seq}]")
    interleaved = bool(int(a.get("interleaved", 0)))
    y = _rotate(view, dims, cos, sin, pos, rot, interleaved)
    return [b.reshape(y, x.shape)]


def _heads_view(node, a, x: b.T) -> tuple[b.T, dict[str, int]]:
    """x as a 4-D tensor and the position of each named dim in it."""
    if x.rank == 4:
        return x, {"b": 0, "h": 1, "s": 2, "d": 3}
    if x.rank != 3:
        raise UnsupportedOp(node, f"input of rank {x.rank}", "rank 3 or 4")
    heads = int(a.get("num_heads", 0))
    if heads <= 0 or x.shape[2] % heads:
        raise UnsupportedOp(node, f"num_heads {heads} with hidden size {x.shape[2]}",
                            "num_heads > 0 dividing the hidden size")
    view = b.expand(x, [[0], [1], [2, 3]], (x.shape[0], x.shape[1], heads, x.shape[2] // heads))
    return view, {"b": 0, "s": 1, "h": 2, "d": 3}


def _rotate(x: b.T, dims, cos: b.T, sin: b.T, pos: b.T | None, rot: int, interleaved: bool) -> b.T:
    idx_ty = ir.IndexType.get()
    ct = np.dtype(np.float32) if x.dtype == np.float16 else x.dtype
    half = rot // 2
    head = x.shape[3]

    def c(v):
        return arith.ConstantOp(idx_ty, v).result

    def widen(v):
        return v if ct == x.dtype else arith.ExtFOp(b.mlir_type(ct), v).result

    def body(v, _out):
        at = {n: linalg.IndexOp(i).result for n, i in dims.items()}
        d = at["d"]
        if interleaved:
            first = arith.CmpIOp(arith.CmpIPredicate.eq, arith.RemUIOp(d, c(2)).result, c(0)).result
            m = arith.DivUIOp(d, c(2)).result
            partner = arith.SelectOp(first, arith.AddIOp(d, c(1)).result, arith.SubIOp(d, c(1)).result).result
        else:
            first = arith.CmpIOp(arith.CmpIPredicate.ult, d, c(half)).result
            m = arith.SelectOp(first, d, arith.SubIOp(d, c(half)).result).result
            partner = arith.SelectOp(first, arith.AddIOp(d, c(half)).result, arith.SubIOp(d, c(half)).result).result
        # Features d >= rot pass through; their m and partner only need to be in range.
        m = arith.MinUIOp(m, c(half - 1)).result
        partner = arith.MinUIOp(partner, c(head - 1)).result
        coords = [partner if n == "d" else at[n] for n in sorted(dims, key=dims.get)]
        p = widen(tensor.ExtractOp(x.value, coords).result)
        if pos is not None:
            row = tensor.ExtractOp(pos.value, [at["b"], at["s"]]).result
            row = arith.IndexCastOp(idx_ty, arith.MaxSIOp(row, b.scalar(0, np.int64)).result).result
            table = [arith.MinUIOp(row, c(cos.shape[0] - 1)).result, m]
        else:
            table = [at["b"], at["s"], m]
        cv = widen(tensor.ExtractOp(cos.value, table).result)
        sv = widen(tensor.ExtractOp(sin.value, table).result)
        xv = widen(v)
        # first of a pair: c x - s p; second: s p + c x
        cx = arith.MulFOp(cv, xv).result
        sp = arith.MulFOp(sv, p).result
        rotated = arith.SelectOp(first, arith.SubFOp(cx, sp).result, arith.AddFOp(sp, cx).result).result
        if rot < head:
            rotated = arith.SelectOp(arith.CmpIOp(arith.CmpIPredicate.ult, d, c(rot)).result, rotated, xv).result
        return rotated if ct == x.dtype else arith.TruncFOp(b.mlir_type(x.dtype), rotated).result

    (res,) = b.generic([x.value], [b.empty(x.shape, x.dtype)], [b.identity_map(4)] * 2, [b.PARALLEL] * 4, body)
    return b.T(res, x.dtype)
