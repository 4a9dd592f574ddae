"""Attention (opsets 23-25): scaled dot-product attention in one node.

    scores = (Q K^T) * scale                       scale defaults to 1/sqrt(head size)
    logits = softcap * tanh(scores / softcap)      only when softcap > 0
    x      = logits + bias                         bias: attn_mask and the structural masks
    P      = softmax(x) over the keys, 0 on rows whose bias is all -inf
    Y      = P V

Q is [B, Hq, Sq, D] or, 3-D, [B, Sq, Hq*D] (q_num_heads gives Hq); K and V
likewise with Hkv heads. Grouped-query attention (Hq = reps * Hkv) reads kv
head h // reps for query head h: the query head dim is split into
(Hkv, reps), so every indexing map stays a projected permutation and K/V are
never repeated. The 3-D layouts are read in place through the maps of the
two contractions, without transposes.

The bias is built once, in the shape it varies over ([B or 1, Hq or 1, Sq,
Skv]): the mask (a bool mask is 0 where true, -inf where false; a mask
shorter than the keys is padded with -inf), plus -inf where a structural
constraint fails. With a query's position p = i + offset, key j is allowed
when j <= p (is_causal), p - left <= j <= p + right (the opset-25 sliding
window, each side only when >= 0) and j < nonpad_kv_seqlen[b]. offset is the
past length with a KV cache, nonpad_kv_seqlen[b] - Sq with a static cache,
else 0.

past_key / past_value ([B, Hkv, P, D]) are concatenated in front of K / V;
the results are present_key / present_value. qk_matmul_output is, by
qk_matmul_output_mode, the (softcapped) scores (0, 1), x (2) or P (3).

float16 is computed in float32 (softmax_precision may only ask for as much
or less), and rounded once at the end.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx

from qc.errors import UnsupportedOp
from qc.mlir import arith, ir, linalg, math

from . import builder as b
from .attrs import attrs
from .data_ops import insert_slice
from .registry import importer

FLOATS = (np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.float64))
FLOAT_TYPES = "float16, float32, float64"
NEG_INF = float("-inf")

# Loop dims of the Q K^T contraction: batch, kv head, repeat, query, key, depth.
QB, QG, QR, QI, QJ, QD = range(6)
# Loop dims of the P V contraction: batch, kv head, repeat, query, value column, key.
VB, VG, VR, VI, VE, VJ = range(6)


@dataclass
class Layout:
    """One of Q, K, V as a tensor whose dims are named: `dims` maps each name
    (b, g, r, s, d) to its position. 4-D tensors are (b, h, s, d); 3-D ones,
    with the hidden dim split into heads, (b, s, h, d)."""

    t: b.T
    dims: dict[str, int]

    def map(self, rank: int, loop: dict[str, int]) -> ir.AffineMap:
        order = sorted(self.dims, key=self.dims.get)
        return b.dims_map(rank, [loop[n] for n in order])


@dataclass
class Options:
    scale: float
    softcap: float
    causal: bool
    left: int
    right: int
    mode: int


def _input(ctx, node, i: int) -> b.T | None:
    return ctx.get(node.input[i]) if len(node.input) > i and node.input[i] else None


@importer("Attention")
def import_attention(ctx, node):
    a = attrs(node)
    q, k, v = (ctx.get(n) for n in node.input[:3])
    mask, past_k, past_v, nonpad = (_input(ctx, node, i) for i in range(3, 7))
    _check_types(node, q, k, v, mask, past_k, past_v, nonpad)
    hq, hkv = _heads(node, a, q, k, v)
    head = q.shape[-1] if q.rank == 4 else q.shape[2] // hq
    opts = _options(node, a, head)
    ct = np.dtype(np.float32) if q.dtype == np.float16 else q.dtype  # compute type

    ql = _q_layout(q, hq, hkv)
    kl, vl = _kv_layout(k, hkv), _kv_layout(v, hkv)
    if past_k is not None or past_v is not None or any(node.output[1:3]):
        kl, vl = _with_past(node, kl, past_k), _with_past(node, vl, past_v)
    batch, sq, skv = q.shape[0], _size(ql, "s"), _size(kl, "s")
    reps = hq // hkv
    past = past_k.shape[2] if past_k is not None else 0

    scores = _qk(ql, kl, ct, (batch, hkv, reps, sq, skv))
    logits = _scale_softcap(scores, opts)
    bias = _bias(node, mask, nonpad, opts, batch, hq, sq, skv, past, ct)
    x = logits
    if bias is not None:
        x = b.elementwise([logits, _bias_5d(bias, hkv, reps)], ct, lambda s, c: arith.AddFOp(s, c).result)
    probs = _softmax(x, _masked_rows(bias, hkv, reps) if bias is not None else None)
    y = _pv(probs, vl, ct, q.rank == 3)

    outs = [_cast(y, q.dtype)]
    if len(node.output) > 1:
        outs += [kl.t, vl.t]
    if len(node.output) > 3 and node.output[3]:
        qk = {0: logits, 1: logits, 2: x, 3: probs}[opts.mode]
        outs.append(_cast(b.collapse(qk, [[0], [1, 2], [3], [4]], (batch, hq, sq, skv)), q.dtype))
    return outs[: len(node.output)]


# ---------------------------------------------------------------- validation


def _check_types(node, q, k, v, mask, past_k, past_v, nonpad) -> None:
    if q.dtype not in FLOATS:
        raise UnsupportedOp(node, f"element type {q.dtype} is not supported", FLOAT_TYPES)
    for what, t in (("K", k), ("V", v), ("past_key", past_k), ("past_value", past_v)):
        if t is not None and t.dtype != q.dtype:
            raise UnsupportedOp(node, f"{what} has element type {t.dtype}, Q has {q.dtype}")
    if q.rank not in (3, 4) or k.rank != q.rank or v.rank != q.rank:
        raise UnsupportedOp(node, f"Q, K, V of ranks {q.rank}, {k.rank}, {v.rank}", "all 3-D or all 4-D")
    if mask is not None and mask.dtype not in (np.dtype(np.bool_), q.dtype):
        raise UnsupportedOp(node, f"attn_mask has element type {mask.dtype}", f"bool or {q.dtype}")
    if mask is not None and not 1 <= mask.rank <= 4:
        raise UnsupportedOp(node, f"attn_mask of rank {mask.rank}", "rank 1 to 4")
    if (past_k is None) != (past_v is None):
        raise UnsupportedOp(node, "only one of past_key and past_value is given", "both or neither")
    if nonpad is not None:
        if past_k is not None:
            raise UnsupportedOp(node, "nonpad_kv_seqlen together with a past KV cache",
                                "nonpad_kv_seqlen or past_key/past_value")
        if nonpad.dtype != np.int64 or nonpad.shape != (q.shape[0],):
            raise UnsupportedOp(node, f"nonpad_kv_seqlen is {nonpad.dtype}{list(nonpad.shape)}",
                                f"int64[{q.shape[0]}]")


def _heads(node, a, q, k, v) -> tuple[int, int]:
    """(Hq, Hkv), checked against the shapes."""
    if q.rank == 4:
        hq, hkv = q.shape[1], k.shape[1]
        if v.shape[1] != hkv:
            raise UnsupportedOp(node, f"K has {hkv} heads, V has {v.shape[1]}")
        depth_ok = q.shape[3] == k.shape[3]
    else:
        if "q_num_heads" not in a or "kv_num_heads" not in a:
            raise UnsupportedOp(node, "3-D inputs without q_num_heads and kv_num_heads")
        hq, hkv = int(a["q_num_heads"]), int(a["kv_num_heads"])
        if hq <= 0 or hkv <= 0 or q.shape[2] % hq or k.shape[2] % hkv or v.shape[2] % hkv:
            raise UnsupportedOp(node, f"hidden sizes {q.shape[2]}, {k.shape[2]}, {v.shape[2]} do not split "
                                      f"into {hq} query and {hkv} kv heads")
        depth_ok = q.shape[2] // hq == k.shape[2] // hkv
    if not depth_ok:
        raise UnsupportedOp(node, "Q and K have different head sizes")
    if hq % hkv:
        raise UnsupportedOp(node, f"{hq} query heads are not a multiple of {hkv} kv heads")
    if q.shape[0] != k.shape[0] or k.shape[0] != v.shape[0] or _seq(k) != _seq(v):
        raise UnsupportedOp(node, f"K {list(k.shape)} and V {list(v.shape)} do not match Q {list(q.shape)}")
    return hq, hkv


def _seq(t: b.T) -> int:
    return t.shape[2] if t.rank == 4 else t.shape[1]


def _options(node, a, head: int) -> Options:
    mode = int(a.get("qk_matmul_output_mode", 0))
    if mode not in (0, 1, 2, 3):
        raise UnsupportedOp(node, f"qk_matmul_output_mode {mode}", "0, 1, 2, 3")
    precision = a.get("softmax_precision")
    allowed = (onnx.TensorProto.FLOAT16, onnx.TensorProto.FLOAT, onnx.TensorProto.DOUBLE,
               onnx.TensorProto.BFLOAT16)
    if precision is not None and int(precision) not in allowed:
        raise UnsupportedOp(node, f"softmax_precision {precision}", "a float type")
    left, right = int(a.get("left_window_size", -1)), int(a.get("right_window_size", -1))
    if left < -1 or right < -1:
        raise UnsupportedOp(node, f"window sizes {left}, {right}", "-1 (unbounded) or >= 0")
    scale = float(a["scale"]) if "scale" in a else 1.0 / np.sqrt(head)
    return Options(scale, float(a.get("softcap", 0.0)), bool(int(a.get("is_causal", 0))), left, right, mode)


# ---------------------------------------------------------------- layouts


def _q_layout(q: b.T, hq: int, hkv: int) -> Layout:
    """Q with its head dim split into (kv head g, repeat r)."""
    reps = hq // hkv
    if q.rank == 4:
        bsz, _, s, d = q.shape
        t = b.expand(q, [[0], [1, 2], [3], [4]], (bsz, hkv, reps, s, d))
        return Layout(t, {"b": 0, "g": 1, "r": 2, "s": 3, "d": 4})
    bsz, s, hidden = q.shape
    t = b.expand(q, [[0], [1], [2, 3, 4]], (bsz, s, hkv, reps, hidden // hq))
    return Layout(t, {"b": 0, "s": 1, "g": 2, "r": 3, "d": 4})


def _kv_layout(t: b.T, hkv: int) -> Layout:
    if t.rank == 4:
        return Layout(t, {"b": 0, "g": 1, "s": 2, "d": 3})
    bsz, s, hidden = t.shape
    return Layout(b.expand(t, [[0], [1], [2, 3]], (bsz, s, hkv, hidden // hkv)), {"b": 0, "s": 1, "g": 2, "d": 3})


def _size(layout: Layout, name: str) -> int:
    return layout.t.shape[layout.dims[name]]


def _with_past(node, layout: Layout, past: b.T | None) -> Layout:
    """The (b, h, s, d) tensor of past ++ K along s: present_key (or _value)."""
    t = layout.t
    if layout.dims["s"] == 1:  # (b, s, h, d) from a 3-D input
        shape = [t.shape[i] for i in (0, 2, 1, 3)]
        t = b.T(linalg.transpose(t.value, outs=[b.empty(shape, t.dtype)], permutation=[0, 2, 1, 3]).results[0],
                t.dtype)
    if past is not None:
        if past.rank != 4 or past.shape[:2] != t.shape[:2] or past.shape[3] != t.shape[3]:
            raise UnsupportedOp(node, f"past cache {list(past.shape)} does not match {list(t.shape)}",
                                "[batch, kv heads, past length, head size]")
        shape = [t.shape[0], t.shape[1], past.shape[2] + t.shape[2], t.shape[3]]
        out = insert_slice(past, b.empty(shape, t.dtype), [0, 0, 0, 0])
        t = b.T(insert_slice(t, out, [0, 0, past.shape[2], 0]), t.dtype)
    return Layout(t, {"b": 0, "g": 1, "s": 2, "d": 3})


# ---------------------------------------------------------------- the two contractions


def _widen(v: ir.Value, src: np.dtype, ct: np.dtype) -> ir.Value:
    return v if src == ct else arith.ExtFOp(b.mlir_type(ct), v).result


def _qk(ql: Layout, kl: Layout, ct, shape) -> b.T:
    """scores[b, g, r, i, j] = sum_d Q[b, g, r, i, d] * K[b, g, j, d]."""
    qmap = ql.map(6, {"b": QB, "g": QG, "r": QR, "s": QI, "d": QD})
    kmap = kl.map(6, {"b": QB, "g": QG, "s": QJ, "d": QD})
    out_map = b.dims_map(6, [QB, QG, QR, QI, QJ])
    dt = ql.t.dtype

    def body(qv, kv, acc):
        p = arith.MulFOp(_widen(qv, dt, ct), _widen(kv, dt, ct)).result
        return arith.AddFOp(acc, p).result

    (res,) = b.generic([ql.t.value, kl.t.value], [b.filled(shape, ct, 0.0)], [qmap, kmap, out_map],
                       [b.PARALLEL] * 5 + [b.REDUCTION], body)
    return b.T(res, ct)


def _pv(p: b.T, vl: Layout, ct, three_d: bool) -> b.T:
    """Y[b, g, r, i, e] = sum_j P[b, g, r, i, j] * V[b, g, j, e], laid out as Q is."""
    bsz, hkv, reps, sq, _ = p.shape
    dv = _size(vl, "d")
    pmap = b.dims_map(6, [VB, VG, VR, VI, VJ])
    vmap = vl.map(6, {"b": VB, "g": VG, "s": VJ, "d": VE})
    if three_d:
        shape, out_dims, groups, final = ((bsz, sq, hkv, reps, dv), [VB, VI, VG, VR, VE], [[0], [1], [2, 3, 4]],
                                          (bsz, sq, hkv * reps * dv))
    else:
        shape, out_dims, groups, final = ((bsz, hkv, reps, sq, dv), [VB, VG, VR, VI, VE], [[0], [1, 2], [3], [4]],
                                          (bsz, hkv * reps, sq, dv))
    dt = vl.t.dtype

    def body(pv, vv, acc):
        return arith.AddFOp(acc, arith.MulFOp(pv, _widen(vv, dt, ct)).result).result

    (res,) = b.generic([p.value, vl.t.value], [b.filled(shape, ct, 0.0)], [pmap, vmap, b.dims_map(6, out_dims)],
                       [b.PARALLEL] * 5 + [b.REDUCTION], body)
    return b.collapse(b.T(res, ct), groups, final)


def _scale_softcap(scores: b.T, opts: Options) -> b.T:
    ct = scores.dtype
    scale = b.scalar(opts.scale, ct)

    def body(s):
        s = arith.MulFOp(s, scale).result
        if opts.softcap > 0:
            cap = b.scalar(opts.softcap, ct)
            s = arith.MulFOp(math.TanhOp(arith.DivFOp(s, cap).result).result, cap).result
        return s

    return b.elementwise([scores], ct, body)


def _cast(x: b.T, dt: np.dtype) -> b.T:
    if x.dtype == dt:
        return x
    ty = b.mlir_type(dt)
    return b.elementwise([x], dt, lambda v: arith.TruncFOp(ty, v).result)


# ---------------------------------------------------------------- the bias


def _bias(node, mask, nonpad, opts: Options, batch, hq, sq, skv, past, ct) -> b.T | None:
    """The additive bias [B or 1, Hq or 1, Sq, Skv], or None when there is none."""
    window = opts.left >= 0 or opts.right >= 0
    if mask is None and nonpad is None and not opts.causal and not window:
        return None
    if mask is not None:
        mask = _padded_mask(node, mask, batch, hq, sq, skv)
    full = (1,) * (4 - mask.rank) + mask.shape if mask is not None else (1, 1, 1, 1)
    shape = (batch if nonpad is not None or full[0] != 1 else 1, full[1], sq, skv)
    ins, maps = [], []
    if mask is not None:
        m, mp = b.broadcast_operand(b.reshape(mask, full), shape)
        ins.append(m.value)
        maps.append(mp)
    if nonpad is not None:
        ins.append(nonpad.value)
        maps.append(b.dims_map(4, [0]))

    def body(*args):
        vals = list(args[: len(ins)])
        m = vals.pop(0) if mask is not None else None
        n = vals.pop(0) if nonpad is not None else None
        return _bias_value(m, mask.dtype if mask is not None else None, n, opts, sq, past, ct)

    (res,) = b.generic(ins, [b.empty(shape, ct)], [*maps, b.identity_map(4)], [b.PARALLEL] * 4,
                       lambda *a: body(*a[: len(ins)]))
    return b.T(res, ct)


def _padded_mask(node, mask: b.T, batch, hq, sq, skv) -> b.T:
    """attn_mask checked against [B, Hq, Sq, Skv] (right-aligned), its key
    dim padded to Skv: with -inf, or false for a bool mask."""
    target = (batch, hq, sq, skv)[4 - mask.rank:]
    ok = mask.shape[-1] <= skv and all(m in (1, t) for m, t in zip(mask.shape[:-1], target[:-1]))
    if not ok:
        raise UnsupportedOp(node, f"attn_mask of shape {list(mask.shape)} does not broadcast to "
                                  f"{[batch, hq, sq, skv]}")
    pad = skv - mask.shape[-1]
    if pad == 0:
        return mask
    fill = False if mask.dtype == np.bool_ else NEG_INF
    shape = (*mask.shape[:-1], skv)
    filled = linalg.fill(b.scalar(fill, mask.dtype), outs=[b.empty(shape, mask.dtype)])
    return b.T(insert_slice(mask, filled, [0] * mask.rank), mask.dtype)


def _bias_value(m, mask_dtype, n, opts: Options, sq, past, ct):
    """One bias element at (b, h, i, j): the mask's value, plus -inf where a
    structural constraint disallows key j for query i."""
    zero, neg_inf = b.scalar(0.0, ct), b.scalar(NEG_INF, ct)
    if m is None:
        val = zero
    elif mask_dtype == np.bool_:
        val = arith.SelectOp(m, zero, neg_inf).result
    else:
        val = _widen(m, mask_dtype, ct)
    i64 = ir.IntegerType.get_signless(64)
    i = arith.IndexCastOp(i64, linalg.IndexOp(2).result).result
    j = arith.IndexCastOp(i64, linalg.IndexOp(3).result).result
    c = lambda v: b.scalar(v, np.int64)  # noqa: E731
    if n is not None:
        offset = arith.SubIOp(n, c(sq)).result
    else:
        offset = c(past)
    pos = arith.AddIOp(i, offset).result  # the query's position among the keys
    conds = []
    if opts.causal:
        conds.append(arith.CmpIOp(arith.CmpIPredicate.sle, j, pos).result)
    if opts.left >= 0:
        conds.append(arith.CmpIOp(arith.CmpIPredicate.sle, arith.SubIOp(pos, j).result, c(opts.left)).result)
    if opts.right >= 0:
        conds.append(arith.CmpIOp(arith.CmpIPredicate.sle, arith.SubIOp(j, pos).result, c(opts.right)).result)
    if n is not None:
        conds.append(arith.CmpIOp(arith.CmpIPredicate.slt, j, n).result)
    if not conds:
        return val
    allowed = conds[0]
    for cond in conds[1:]:
        allowed = arith.AndIOp(allowed, cond).result
    return arith.AddFOp(val, arith.SelectOp(allowed, zero, neg_inf).result).result


def _bias_5d(bias: b.T, hkv: int, reps: int) -> b.T:
    """[B', H', Sq, Skv] as [B', Hkv, reps, Sq, Skv] (or [B', 1, 1, ...])."""
    bb, hh, sq, skv = bias.shape
    if hh == 1:
        return b.reshape(bias, (bb, 1, 1, sq, skv))
    return b.expand(bias, [[0], [1, 2], [3], [4]], (bb, hkv, reps, sq, skv))


def _masked_rows(bias: b.T, hkv: int, reps: int) -> b.T:
    """Rows of the bias that allow no key: max_j bias == -inf, as i1 [B', H', Sq, 1] in 5-D."""
    ct = bias.dtype
    rowmax = b.reduce(bias, [3], NEG_INF, lambda e, acc: arith.MaximumFOp(e, acc).result)
    neg_inf = b.scalar(NEG_INF, ct)
    none = b.elementwise([rowmax], np.bool_, lambda v: arith.CmpFOp(arith.CmpFPredicate.OEQ, v, neg_inf).result)
    return _bias_5d(none, hkv, reps)


# ---------------------------------------------------------------- softmax


def _softmax(x: b.T, masked: b.T | None) -> b.T:
    """softmax over the last dim, as ONNX's reference computes it: a row whose
    max is -inf uses 0 as its max (exp gives 0s, not NaNs), a zero sum
    divides by 1, and rows in `masked` are 0."""
    ct = x.dtype
    zero, one, neg_inf = b.scalar(0.0, ct), b.scalar(1.0, ct), b.scalar(NEG_INF, ct)
    last = x.rank - 1
    mx = b.reduce(x, [last], NEG_INF, lambda e, acc: arith.MaximumFOp(e, acc).result)

    def shifted_exp(v, m):
        is_inf = arith.CmpFOp(arith.CmpFPredicate.OEQ, m, neg_inf).result
        safe = arith.SelectOp(is_inf, zero, m).result
        return math.ExpOp(arith.SubFOp(v, safe).result).result

    e = b.elementwise([x, mx], ct, shifted_exp)
    s = b.reduce(e, [last], 0.0, lambda v, acc: arith.AddFOp(v, acc).result)

    def divide(v, total, *row_masked):
        is_zero = arith.CmpFOp(arith.CmpFPredicate.OEQ, total, zero).result
        p = arith.DivFOp(v, arith.SelectOp(is_zero, one, total).result).result
        return arith.SelectOp(row_masked[0], zero, p).result if row_masked else p

    operands = [e, s] + ([masked] if masked is not None else [])
    return b.elementwise(operands, ct, divide)
