"""LinearAttention (opset 27): attention through a recurrent state.

Per kv head the state S is a [dk, dv] matrix (past_state, or zeros). At
each step t, with q, k, v the step's head vectors:
    gated:  S = S * exp(decay_t)                 (per key dim, or per head)
    delta:  v = beta_t * (v - S^T k)             (what S already recalls of k)
    write:  S = S + k v^T
    read:   out_t = scale * q^T S                (query head h reads kv head h // group)
update_rule linear has neither; gated, delta and gated_delta (the default)
add theirs. scale defaults to 1/sqrt(dk). The outputs are out, laid out
[B, T, Hq*dv] as the inputs are, and the final state.

Each step is a few generics on rank-reducing slices of the inputs (views,
no copies); the recurrence is unrolled, so sequences are limited to
MAX_STEPS (a decode step is T = 1). Everything is computed in float32: a
float16 model's inputs are widened first and its outputs rounded at the end.
"""

from __future__ import annotations

import numpy as np

from qc.errors import UnsupportedOp
from qc.mlir import arith, math, tensor

from . import builder as b
from .attrs import attrs
from .cast import cast
from .data_ops import insert_slice
from .registry import importer

MAX_STEPS = 256
RULES = ("linear", "gated", "delta", "gated_delta")
F32 = np.dtype(np.float32)


def _optional(ctx, node, i: int) -> b.T | None:
    return ctx.get(node.input[i]) if len(node.input) > i and node.input[i] else None


def _step(x: b.T, t: int) -> b.T:
    """x[:, t] of a [B, T, ...] tensor, as a rank-reducing slice (a view)."""
    if x.shape[1] == 1:  # the whole tensor: a plain reshape
        return b.reshape(x, (x.shape[0], *x.shape[2:]))
    sizes = [x.shape[0], 1, *x.shape[2:]]
    shape = [x.shape[0], *x.shape[2:]]
    op = tensor.ExtractSliceOp(b.tensor_type(shape, x.dtype), x.value, [], [], [],
                               [0, t] + [0] * (x.rank - 2), sizes, [1] * x.rank)
    return b.T(op.result, x.dtype)


def _mul(p, q):
    return arith.MulFOp(p, q).result


def _add(p, q):
    return arith.AddFOp(p, q).result


@importer("LinearAttention")
def import_linear_attention(ctx, node):
    a = attrs(node)
    q, k, v = (ctx.get(n) for n in node.input[:3])
    past, decay, beta = (_optional(ctx, node, i) for i in (3, 4, 5))
    rule = a.get("update_rule", "gated_delta")
    if rule not in RULES:
        raise UnsupportedOp(node, f"update_rule '{rule}'", ", ".join(RULES))
    gating, delta = rule in ("gated", "gated_delta"), rule in ("delta", "gated_delta")
    if gating != (decay is not None) or delta != (beta is not None):
        raise UnsupportedOp(node, f"update_rule '{rule}' with{'' if decay else 'out'} decay and "
                                  f"with{'' if beta else 'out'} beta", "decay exactly for gated rules, "
                            "beta exactly for delta rules")
    dt = q.dtype
    if dt not in (np.float16, np.float32) or any(t is not None and t.dtype != dt for t in (k, v, past, decay, beta)):
        raise UnsupportedOp(node, "mixed or unsupported element types", "all float16 or all float32")
    hq, hkv = int(a.get("q_num_heads", 0)), int(a.get("kv_num_heads", 0))
    if q.rank != 3 or k.rank != 3 or v.rank != 3:
        raise UnsupportedOp(node, "query, key, value not all 3-D", "[B, T, heads * head size]")
    bsz, steps = q.shape[:2]
    if hq <= 0 or hkv <= 0 or hq % hkv or q.shape[2] % hq or k.shape[2] % hkv or v.shape[2] % hkv:
        raise UnsupportedOp(node, f"q_num_heads {hq}, kv_num_heads {hkv} for {list(q.shape)}, {list(k.shape)}, "
                                  f"{list(v.shape)}", "kv heads dividing the query heads and each hidden size")
    dk, dv, group = q.shape[2] // hq, v.shape[2] // hkv, hq // hkv
    if k.shape != (bsz, steps, hkv * dk) or v.shape[:2] != (bsz, steps):
        raise UnsupportedOp(node, f"key {list(k.shape)} / value {list(v.shape)} do not match query {list(q.shape)}")
    if steps > MAX_STEPS:
        raise UnsupportedOp(node, f"a sequence of {steps} steps", f"at most {MAX_STEPS} (the recurrence is unrolled)")
    if past is not None and past.shape != (bsz, hkv, dk, dv):
        raise UnsupportedOp(node, f"past_state {list(past.shape)}", f"{[bsz, hkv, dk, dv]}")
    if decay is not None and decay.shape not in ((bsz, steps, hkv * dk), (bsz, steps, hkv)):
        raise UnsupportedOp(node, f"decay {list(decay.shape)}", f"{[bsz, steps, hkv * dk]} or {[bsz, steps, hkv]}")
    if beta is not None and beta.shape not in ((bsz, steps, hkv), (bsz, steps, 1)):
        raise UnsupportedOp(node, f"beta {list(beta.shape)}", f"{[bsz, steps, hkv]} or {[bsz, steps, 1]}")
    scale = float(a.get("scale", 0.0)) or 1.0 / np.sqrt(dk)

    wide = [None if t is None else cast(t, F32) for t in (q, k, v, past, decay, beta)]
    q4 = b.reshape(wide[0], (bsz, steps, hkv, group, dk))
    k4 = b.reshape(wide[1], (bsz, steps, hkv, dk))
    v4 = b.reshape(wide[2], (bsz, steps, hkv, dv))
    g4 = None if decay is None else b.reshape(wide[4], (bsz, steps, hkv, dk) if decay.shape[2] != hkv
                                                 else (bsz, steps, hkv))
    beta4 = wide[5]
    state = wide[3] if past is not None else b.T(b.filled((bsz, hkv, dk, dv), F32, 0.0), F32)
    out = b.filled((bsz, steps, hkv, group, dv), F32, 0.0)
    for t in range(steps):
        state, y = _recur(state, _step(q4, t), _step(k4, t), _step(v4, t),
                          None if g4 is None else _step(g4, t), None if beta4 is None else _step(beta4, t), scale)
        out = insert_slice(b.reshape(y, (bsz, 1, hkv, group, dv)), out, [0, t, 0, 0, 0])
    y = b.reshape(b.T(out, F32), (bsz, steps, hq * dv))
    return [cast(y, dt), cast(state, dt)][: len(node.output)]


def _recur(s: b.T, q: b.T, k: b.T, v: b.T, g: b.T | None, beta: b.T | None, scale: float):
    """One step: (new state [B, H, dk, dv], output [B, H, group, dv])."""
    bsz, hkv, dk, dv = s.shape
    group = q.shape[2]
    state_map = b.identity_map(4)  # (b, h, d, m)
    if g is not None:
        g_map = b.dims_map(4, [0, 1, 2] if g.rank == 3 else [0, 1])
        (s_val,) = b.generic([s.value, g.value], [b.empty(s.shape, F32)], [state_map, g_map, state_map],
                             [b.PARALLEL] * 4, lambda sv, gv, _o: _mul(sv, math.ExpOp(gv).result))
        s = b.T(s_val, F32)
    if beta is not None:
        # recalled[b, h, m] = sum_d S[b, h, d, m] k[b, h, d]; v = beta (v - recalled)
        (recalled,) = b.generic([s.value, k.value], [b.filled((bsz, hkv, dv), F32, 0.0)],
                                [b.dims_map(4, [0, 1, 3, 2]), b.dims_map(4, [0, 1, 3]), b.dims_map(4, [0, 1, 2])],
                                [b.PARALLEL] * 3 + [b.REDUCTION],
                                lambda sv, kv, acc: _add(acc, _mul(sv, kv)))
        beta_map = b.dims_map(3, [0, 1] if beta.shape[1] == hkv else [0])
        if beta.shape[1] != hkv:
            beta = b.reshape(beta, (bsz,))
        ident = b.identity_map(3)
        (v_val,) = b.generic([v.value, recalled, beta.value], [b.empty(v.shape, F32)],
                             [ident, ident, beta_map, ident], [b.PARALLEL] * 3,
                             lambda vv, rv, bv, _o: _mul(bv, arith.SubFOp(vv, rv).result))
        v = b.T(v_val, F32)
    # S += k v^T
    (s_val,) = b.generic([s.value, k.value, v.value], [b.empty(s.shape, F32)],
                         [state_map, b.dims_map(4, [0, 1, 2]), b.dims_map(4, [0, 1, 3]), state_map],
                         [b.PARALLEL] * 4, lambda sv, kv, vv, _o: _add(sv, _mul(kv, vv)))
    s = b.T(s_val, F32)
    # out[b, h, r, m] = scale * sum_d q[b, h, r, d] S[b, h, d, m]; loops (b, h, r, m, d)
    (acc,) = b.generic([q.value, s.value], [b.filled((bsz, hkv, group, dv), F32, 0.0)],
                       [b.dims_map(5, [0, 1, 2, 4]), b.dims_map(5, [0, 1, 4, 3]), b.dims_map(5, [0, 1, 2, 3])],
                       [b.PARALLEL] * 4 + [b.REDUCTION], lambda qv, sv, a: _add(a, _mul(qv, sv)))
    factor = b.scalar(scale, F32)
    return s, b.elementwise([b.T(acc, F32)], F32, lambda x: _mul(x, factor))
