"""RNN, GRU and LSTM (float32), forward, reverse or bidirectional.

With X_t the input at step t and H the previous hidden state (C the cell):
    RNN   H = f(X_t W^T + H R^T + Wb + Rb)
    GRU   z = f(X_t Wz^T + H Rz^T + b_z),  r = f(.. r ..)
          h = g(X_t Wh^T + (r * H) Rh^T + Rbh + Wbh)          linear_before_reset=0
          h = g(X_t Wh^T + r * (H Rh^T + Rbh) + Wbh)          linear_before_reset=1
          H = (1 - z) * h + z * H
    LSTM  i = f(X_t Wi^T + H Ri^T + Pi * C + b_i),  f_ = f(.. f .. + Pf * C)
          c = g(X_t Wc^T + H Rc^T + b_c),  C = f_ * C + i * c
          o = f(X_t Wo^T + H Ro^T + Po * C + b_o),  H = o * h(C)
(gate order in W, R, B: RNN one; GRU z, r, h; LSTM i, o, f, c; P is i, o, f).
f, g, h default to Sigmoid, Tanh, Tanh (RNN: Tanh) and may be any of the
activations below; clip bounds each gate's pre-activation.

The input projection of every step is one contraction up front, laid out
[gate, step, batch, hidden] so each step's gate block is a contiguous slice.
The recurrence is unrolled: each step is one contraction per gate with R
(accumulating onto that slice) and one elementwise generic. That keeps to
linalg on tensors without loops, at one block of IR per step: sequences are
limited to MAX_STEPS. sequence_lens must be a constant equal to the
sequence length for every batch entry.
"""

from __future__ import annotations

import numpy as np

from qc.errors import UnsupportedOp
from qc.mlir import arith, math

from . import builder as b
from .attrs import attrs
from .conv import check_f32
from .data_ops import extract_slice, insert_slice, slice_of
from .registry import importer

MAX_STEPS = 256
GATES = {"RNN": 1, "GRU": 3, "LSTM": 4}
DEFAULT_ACTS = {"RNN": ["Tanh"], "GRU": ["Sigmoid", "Tanh"], "LSTM": ["Sigmoid", "Tanh", "Tanh"]}
# Activations with their (alpha, beta) defaults (onnxruntime's); None: no parameter.
ACTIVATIONS = {
    "Tanh": (None, None), "Sigmoid": (None, None), "Relu": (None, None), "Softsign": (None, None),
    "Softplus": (None, None), "LeakyRelu": (0.01, None), "ThresholdedRelu": (1.0, None), "Elu": (1.0, None),
    "HardSigmoid": (0.2, 0.5), "Affine": (1.0, 0.0), "ScaledTanh": (1.0, 1.0),
}


def _optional(ctx, node, i: int) -> b.T | None:
    return ctx.get(node.input[i]) if len(node.input) > i and node.input[i] else None


# ---------------------------------------------------------------- activations


def _activation(name: str, alpha, beta):
    """v -> name(v) on f32 scalars."""
    c = lambda v: b.scalar(float(v), np.float32)  # noqa: E731
    one = lambda: c(1.0)  # noqa: E731

    def sigmoid(v):
        return arith.DivFOp(one(), arith.AddFOp(one(), math.ExpOp(arith.NegFOp(v).result).result).result).result

    table = {
        "Tanh": lambda v: math.TanhOp(v).result,
        "Sigmoid": sigmoid,
        "Relu": lambda v: arith.MaximumFOp(v, c(0.0)).result,
        "Softsign": lambda v: arith.DivFOp(v, arith.AddFOp(one(), math.AbsFOp(v).result).result).result,
        "Softplus": lambda v: math.Log1pOp(math.ExpOp(v).result).result,
        "LeakyRelu": lambda v: arith.SelectOp(arith.CmpFOp(arith.CmpFPredicate.OLT, v, c(0.0)).result,
                                              arith.MulFOp(v, c(alpha)).result, v).result,
        "ThresholdedRelu": lambda v: arith.SelectOp(arith.CmpFOp(arith.CmpFPredicate.OGT, v, c(alpha)).result,
                                                    v, c(0.0)).result,
        "Elu": lambda v: arith.SelectOp(arith.CmpFOp(arith.CmpFPredicate.OLT, v, c(0.0)).result,
                                        arith.MulFOp(c(alpha), math.ExpM1Op(v).result).result, v).result,
        "HardSigmoid": lambda v: arith.MinimumFOp(arith.MaximumFOp(
            arith.AddFOp(arith.MulFOp(v, c(alpha)).result, c(beta)).result, c(0.0)).result, one()).result,
        "Affine": lambda v: arith.AddFOp(arith.MulFOp(v, c(alpha)).result, c(beta)).result,
        "ScaledTanh": lambda v: arith.MulFOp(c(alpha), math.TanhOp(arith.MulFOp(v, c(beta)).result).result).result,
    }
    return table[name]


def _activations(node, a: dict, op: str, directions: int) -> list[list]:
    """Per direction, the op's activation functions (f, g, h as it uses them)."""
    per_dir = len(DEFAULT_ACTS[op])
    names = [n.decode() if isinstance(n, bytes) else n for n in a.get("activations", [])] or \
        DEFAULT_ACTS[op] * directions
    if len(names) != per_dir * directions:
        raise UnsupportedOp(node, f"{len(names)} activations", f"{per_dir * directions} ({per_dir} per direction)")
    alphas, betas = list(a.get("activation_alpha", [])), list(a.get("activation_beta", []))
    fns = []
    for name in names:
        if name not in ACTIVATIONS:
            raise UnsupportedOp(node, f"activation '{name}'", ", ".join(ACTIVATIONS))
        alpha, beta = ACTIVATIONS[name]
        # The parameter lists are consumed in order by the activations that take one.
        if alpha is not None and alphas:
            alpha = alphas.pop(0)
        if beta is not None and betas:
            beta = betas.pop(0)
        fns.append(_activation(name, alpha, beta))
    return [fns[d * per_dir:(d + 1) * per_dir] for d in range(directions)]


# ---------------------------------------------------------------- the importer


@importer("RNN", "GRU", "LSTM")
def import_rnn(ctx, node):
    op = node.op_type
    a = attrs(node)
    x, w, r = (ctx.get(n) for n in node.input[:3])
    bias, seq_lens, h0 = (_optional(ctx, node, i) for i in (3, 4, 5))
    c0 = _optional(ctx, node, 6) if op == "LSTM" else None
    peep = _optional(ctx, node, 7) if op == "LSTM" else None
    for what, t in (("X", x), ("W", w), ("R", r), ("B", bias), ("initial_h", h0), ("initial_c", c0), ("P", peep)):
        if t is not None:
            check_f32(node, what, t)
    gates, hidden = GATES[op], int(a.get("hidden_size", 0))
    direction = a.get("direction", "forward")
    if direction not in ("forward", "reverse", "bidirectional"):
        raise UnsupportedOp(node, f"direction '{direction}'", "forward, reverse, bidirectional")
    dirs = 2 if direction == "bidirectional" else 1
    layout = int(a.get("layout", 0))
    if layout not in (0, 1) or x.rank != 3:
        raise UnsupportedOp(node, f"layout {layout} with X of rank {x.rank}", "layout 0 or 1, 3-D X")
    seq, batch = (x.shape[0], x.shape[1]) if layout == 0 else (x.shape[1], x.shape[0])
    size = x.shape[2]
    expected = {"W": (dirs, gates * hidden, size), "R": (dirs, gates * hidden, hidden), "B": (dirs, 2 * gates * hidden),
                "initial_h": (dirs, batch, hidden) if layout == 0 else (batch, dirs, hidden), "P": (dirs, 3 * hidden)}
    expected["initial_c"] = expected["initial_h"]
    for what, t in (("W", w), ("R", r), ("B", bias), ("initial_h", h0), ("initial_c", c0), ("P", peep)):
        if t is not None and t.shape != expected[what]:
            raise UnsupportedOp(node, f"{what} has shape {list(t.shape)}", f"{list(expected[what])}")
    if hidden <= 0:
        raise UnsupportedOp(node, f"hidden_size {hidden}", "hidden_size >= 1")
    if seq > MAX_STEPS:
        raise UnsupportedOp(node, f"a sequence of {seq} steps", f"at most {MAX_STEPS} (the recurrence is unrolled)")
    if int(a.get("input_forget", 0)):
        raise UnsupportedOp(node, "input_forget=1", "input_forget=0")
    _check_seq_lens(ctx, node, seq_lens, seq)
    acts = _activations(node, a, op, dirs)
    clip = float(a["clip"]) if "clip" in a else None
    lbr = bool(int(a.get("linear_before_reset", 0)))

    want_y = len(node.output) > 0 and bool(node.output[0])
    y = b.filled((seq, dirs, batch, hidden) if layout == 0 else (batch, seq, dirs, hidden), np.float32, 0.0) \
        if want_y else None
    finals_h, finals_c = [], []
    for d in range(dirs):
        cell = _Cell(op, d, x, w, r, bias, layout, hidden, acts[d], clip, lbr, peep)
        h = _initial(h0, d, layout, batch, hidden)
        c = _initial(c0, d, layout, batch, hidden) if op == "LSTM" else None
        steps = range(seq) if (direction == "forward" or (direction == "bidirectional" and d == 0)) \
            else range(seq - 1, -1, -1)
        for t in steps:
            h, c = cell.step(t, h, c)
            if y is not None:
                at = [t, d, 0, 0] if layout == 0 else [0, t, d, 0]
                shape = (1, 1, batch, hidden) if layout == 0 else (batch, 1, 1, hidden)
                y = insert_slice(b.reshape(h, shape), y, at)
        finals_h.append(h)
        finals_c.append(c)
    outs = [b.T(y, np.dtype(np.float32)) if y is not None else None, _stack(finals_h, layout)]
    if op == "LSTM":
        outs.append(_stack(finals_c, layout))
    return outs[: len(node.output)]


def _check_seq_lens(ctx, node, seq_lens: b.T | None, seq: int) -> None:
    if seq_lens is None:
        return
    value = ctx.const(node.input[4])
    if value is None:
        raise UnsupportedOp(node, "the sequence_lens input must be known at compile time "
                                  "(a constant, or computed from static shapes)")
    if np.any(np.asarray(value) != seq):
        raise UnsupportedOp(node, f"sequence_lens {np.asarray(value).tolist()}", f"every length {seq}")


def _initial(t: b.T | None, d: int, layout: int, batch: int, hidden: int) -> b.T:
    if t is None:
        return b.T(b.filled((batch, hidden), np.float32, 0.0), np.dtype(np.float32))
    if layout == 0:
        return b.reshape(extract_slice(t, [d, 0, 0], [1, batch, hidden]), (batch, hidden))
    return b.reshape(slice_of(t, [0, d, 0], [batch, 1, hidden]), (batch, hidden))


def _stack(states: list[b.T], layout: int) -> b.T:
    """Per-direction [batch, hidden] states as [dirs, batch, hidden] (layout 1: [batch, dirs, hidden])."""
    batch, hidden = states[0].shape
    dirs = len(states)
    if dirs == 1:
        return b.reshape(states[0], (1, batch, hidden) if layout == 0 else (batch, 1, hidden))
    out = b.filled((dirs, batch, hidden) if layout == 0 else (batch, dirs, hidden), np.float32, 0.0)
    for d, s in enumerate(states):
        at, shape = ([d, 0, 0], (1, batch, hidden)) if layout == 0 else ([0, d, 0], (batch, 1, hidden))
        out = insert_slice(b.reshape(s, shape), out, at)
    return b.T(out, np.dtype(np.float32))


class _Cell:
    """One direction's weights and its step function."""

    def __init__(self, op, d, x, w, r, bias, layout, hidden, acts, clip, lbr, peep):
        self.op, self.hidden, self.acts, self.clip, self.lbr = op, hidden, acts, clip, lbr
        gates = GATES[op]
        self.gates = gates
        size = x.shape[2]
        w_d = b.reshape(extract_slice(w, [d, 0, 0], [1, gates * hidden, size]), (gates, hidden, size))
        r_d = b.reshape(extract_slice(r, [d, 0, 0], [1, gates * hidden, hidden]), (gates, hidden, hidden))
        self.r = [b.reshape(extract_slice(r_d, [g, 0, 0], [1, hidden, hidden]), (hidden, hidden)) for g in range(gates)]
        self.bias_t = None
        if bias is not None:  # [Wb; Rb] of this direction as [2, gates, hidden]
            self.bias_t = b.reshape(extract_slice(bias, [d, 0], [1, 2 * gates * hidden]), (2, gates, hidden))
        self.rb_h = None  # GRU's Rbh when it stays inside r * (...): set by _input_projection
        self.xw = self._input_projection(x, w_d, layout)
        self.peep = None
        if peep is not None:
            self.peep = [b.reshape(extract_slice(peep, [d, k * hidden], [1, hidden]), (hidden,)) for k in range(3)]

    def _input_projection(self, x, w_d, layout) -> b.T:
        """xw[g, t, n, k] = sum_i X[t, n, i] W[g, k, i] + Wb[g, k] + Rb[g, k]."""
        gates, hidden = self.gates, self.hidden
        seq, batch = (x.shape[0], x.shape[1]) if layout == 0 else (x.shape[1], x.shape[0])
        # loops (g, t, n, k, i)
        x_map = b.dims_map(5, [1, 2, 4] if layout == 0 else [2, 1, 4])
        init = b.filled((gates, seq, batch, hidden), np.float32, 0.0)
        (xw,) = b.generic([x.value, w_d.value], [init], [x_map, b.dims_map(5, [0, 3, 4]), b.dims_map(5, [0, 1, 2, 3])],
                          [b.PARALLEL] * 4 + [b.REDUCTION],
                          lambda xv, wv, acc: arith.AddFOp(acc, arith.MulFOp(xv, wv).result).result)
        xw = b.T(xw, np.dtype(np.float32))
        if self.bias_t is None:
            return xw
        # + Wb + Rb (per gate and hidden unit), leaving GRU's Rbh out with linear_before_reset.
        wb = b.reshape(extract_slice(self.bias_t, [0, 0, 0], [1, gates, hidden]), (gates, hidden))
        rb = b.reshape(extract_slice(self.bias_t, [1, 0, 0], [1, gates, hidden]), (gates, hidden))
        if self.op == "GRU" and self.lbr:
            self.rb_h = b.reshape(extract_slice(rb, [2, 0], [1, hidden]), (hidden,))
            keep = b.constant(np.array([[1.0], [1.0], [0.0]], np.float32) * np.ones((1, hidden), np.float32))
            rb = b.elementwise([rb, keep], np.float32, lambda p, q: arith.MulFOp(p, q).result)
        total = b.elementwise([wb, rb], np.float32, lambda p, q: arith.AddFOp(p, q).result)
        (res,) = b.generic([xw.value, total.value], [b.empty(xw.shape, np.float32)],
                           [b.identity_map(4), b.dims_map(4, [0, 3]), b.identity_map(4)], [b.PARALLEL] * 4,
                           lambda v, c, _o: arith.AddFOp(v, c).result)
        return b.T(res, np.dtype(np.float32))

    def _pre(self, g: int, t: int, h: b.T) -> b.T:
        """Gate g's pre-activation at step t: xw[g, t] + h R_g^T."""
        batch = h.shape[0]
        init = b.reshape(extract_slice(self.xw, [g, t, 0, 0], [1, 1, batch, self.hidden]), (batch, self.hidden))
        return self._recur(h, g, init)

    def _recur(self, h: b.T, g: int, init: b.T) -> b.T:
        """init[n, k] + sum_j h[n, j] R[g, k, j]."""
        # loops (n, k, j)
        (res,) = b.generic([h.value, self.r[g].value], [init.value],
                           [b.dims_map(3, [0, 2]), b.dims_map(3, [1, 2]), b.dims_map(3, [0, 1])],
                           [b.PARALLEL, b.PARALLEL, b.REDUCTION],
                           lambda hv, rv, acc: arith.AddFOp(acc, arith.MulFOp(hv, rv).result).result)
        return b.T(res, np.dtype(np.float32))

    def _clip(self, v):
        if self.clip is None:
            return v
        lo, hi = b.scalar(-self.clip, np.float32), b.scalar(self.clip, np.float32)
        return arith.MinimumFOp(arith.MaximumFOp(v, lo).result, hi).result

    def step(self, t: int, h: b.T, c: b.T | None) -> tuple[b.T, b.T | None]:
        return getattr(self, f"_{self.op.lower()}")(t, h, c)

    def _rnn(self, t, h, c):
        f = self.acts[0]
        return b.elementwise([self._pre(0, t, h)], np.float32, lambda v: f(self._clip(v))), None

    def _gru(self, t, h, c):
        f, g = self.acts
        one = b.scalar(1.0, np.float32)
        z = b.elementwise([self._pre(0, t, h)], np.float32, lambda v: f(self._clip(v)))
        r = b.elementwise([self._pre(1, t, h)], np.float32, lambda v: f(self._clip(v)))
        xh = b.reshape(extract_slice(self.xw, [2, t, 0, 0], [1, 1, h.shape[0], self.hidden]), h.shape)
        mul = lambda p, q: arith.MulFOp(p, q).result  # noqa: E731
        add = lambda p, q: arith.AddFOp(p, q).result  # noqa: E731
        if self.lbr:
            # h~ = g(xw_h + r * (H Rh^T + Rbh))
            zero = b.T(b.filled(h.shape, np.float32, 0.0), np.dtype(np.float32))
            hr = self._recur(h, 2, zero)
            if self.rb_h is not None:
                hr = b.elementwise([hr, self.rb_h], np.float32, add)
            cand = b.elementwise([xh, r, hr], np.float32, lambda xv, rv, hv: g(self._clip(add(xv, mul(rv, hv)))))
        else:
            rh = b.elementwise([r, h], np.float32, mul)
            cand = b.elementwise([self._recur(rh, 2, xh)], np.float32, lambda v: g(self._clip(v)))
        # H = (1 - z) * h~ + z * H
        new_h = b.elementwise([z, cand, h], np.float32,
                              lambda zv, cv, hv: add(mul(arith.SubFOp(one, zv).result, cv), mul(zv, hv)))
        return new_h, None

    def _lstm(self, t, h, c):
        f, g, hh = self.acts
        mul = lambda p, q: arith.MulFOp(p, q).result  # noqa: E731
        add = lambda p, q: arith.AddFOp(p, q).result  # noqa: E731
        pre = [self._pre(k, t, h) for k in range(4)]  # i, o, f, c
        ins = [*pre, c] + (self.peep if self.peep is not None else [])

        def cell(iv, ov, fv, cv, c_prev, *p):
            if p:
                iv, fv = add(iv, mul(p[0], c_prev)), add(fv, mul(p[2], c_prev))
            i_gate, f_gate = f(self._clip(iv)), f(self._clip(fv))
            return add(mul(f_gate, c_prev), mul(i_gate, g(self._clip(cv))))

        new_c = b.elementwise(ins, np.float32, cell)

        def out(ov, c_new, *p):
            if p:
                ov = add(ov, mul(p[0], c_new))
            return mul(f(self._clip(ov)), hh(c_new))

        o_ins = [pre[1], new_c] + ([self.peep[1]] if self.peep is not None else [])
        return b.elementwise(o_ins, np.float32, out), new_c
