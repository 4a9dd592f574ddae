"""QDQ fusion: DequantizeLinear -> float op(s) -> QuantizeLinear groups become
integer ops, at the ONNX graph level, before constant folding.

A QDQ model (onnxruntime's quantize_static, QuantFormat.QDQ) computes each
layer in float between a DequantizeLinear of its quantized inputs and a
QuantizeLinear of its output. Each group below is replaced by one node that
computes the same quantized output from the quantized inputs in integers:

  DQ(x), DQ(w const) -> Conv | MatMul | Gemm (+ bias) -> [BatchNormalization |
      Mul/Add/Sub/Div by per-channel constants | Relu | Clip]* -> Q
        => qc::RequantConv / qc::RequantMatMul (qlinear.py): the chain is a
           per-channel affine map with clamp bounds, folded into the
           requantization (see `Affine`)
  DQ(a), DQ(b) -> Add | Mul -> Q           => com.microsoft QLinearAdd / QLinearMul
  DQ(x) -> GlobalAveragePool -> Q          => com.microsoft QLinearGlobalAveragePool
  DQ(x) -> elementwise ops on x and constants (per tensor or per channel) -> Q
        => qc::Lookup: a table of the 256 inputs (per channel: [C, 256]),
           the ops run on their dequantized values at compile time
           (onnx.reference), then quantized: exact
  DQ(x) -> MaxPool | Reshape | Flatten | Transpose | Squeeze | Unsqueeze -> Q
        => the op on the integers (max and moves commute with the increasing
           dequantization), then a table if the output's scale differs
  DQ(x_i) -> Concat -> Q                   => Concat of the integers, inputs with
           another scale or zero point requantized by a table first

plus MaxPool of an 8-bit tensor (QOperator models) => qc::MaxPool.

Groups need compile-time scales and zero points, per tensor for activations
(weights may be per channel), 8-bit types, and intermediate float tensors
used by the group alone. Anything else stays as float DQ/Q (correct, slower).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import onnx
from onnx import helper

from .qmath import QC_DOMAIN, dequantize_values, quantize_table

MS_DOMAIN = "com.microsoft"
Q8 = (np.dtype(np.int8), np.dtype(np.uint8))
_ONNX_Q = {onnx.TensorProto.INT8: np.int8, onnx.TensorProto.UINT8: np.uint8}

# Elementwise ops whose output element depends on the same input element and
# constants only: a chain of them between DQ and Q is a function of one 8-bit value.
UNARY_OPS = {"Relu", "LeakyRelu", "Sigmoid", "Tanh", "HardSigmoid", "HardSwish", "Clip", "Elu", "Selu",
             "Celu", "Softplus", "Softsign", "Gelu", "Neg", "Abs", "Exp", "Erf", "Mish", "ThresholdedRelu",
             "Identity", "Sqrt", "Reciprocal", "Floor", "Ceil", "Round", "Sign", "Sin", "Cos", "Log"}
BINARY_OPS = {"Add", "Sub", "Mul", "Div", "Pow", "Max", "Min", "PRelu"}
MOVES = {"Reshape", "Flatten", "Transpose", "Squeeze", "Unsqueeze"}


@dataclass
class QParams:
    """A per-tensor quantization: scale, zero point, 8-bit type."""

    scale: float
    zp: int
    dtype: np.dtype

    def same(self, other: "QParams") -> bool:
        return (np.float32(self.scale) == np.float32(other.scale) and self.zp == other.zp
                and self.dtype == other.dtype)


@dataclass
class DQ:
    node: onnx.NodeProto
    x: str  # the quantized tensor
    scale: np.ndarray
    zp: np.ndarray
    axis: int
    block: int

    @property
    def per_tensor(self) -> bool:
        return self.scale.size == 1 and self.zp.size == 1 and not self.block

    @property
    def params(self) -> QParams:
        return QParams(float(self.scale.reshape(())), int(self.zp.reshape(())), self.zp.dtype)


def _attr(node, name, default):
    for a in node.attribute:
        if a.name == name:
            return helper.get_attribute_value(a)
    return default


class Graph:
    """The node list with producers, consumers and compile-time values."""

    def __init__(self, nodes, consts: dict, graph_outputs: set, infos: dict, opset: int):
        self.nodes = nodes
        self.consts = consts
        self.outputs = graph_outputs
        self.infos = infos  # tensor name -> (numpy dtype or None, shape or None), from shape inference
        self.opset = opset
        self.producer = {o: n for n in nodes for o in n.output if o}
        self.uses: dict[str, list] = {}
        for n in nodes:
            for i in n.input:
                self.uses.setdefault(i, []).append(n)
        self._values: dict[str, np.ndarray | None] = {}
        self._fresh = 0
        # Tensors computed at run time: graph inputs and everything downstream of them
        # (one pass in the nodes' topological order), so `value` never walks up a
        # long run-time chain.
        self.runtime: set[str] = set()
        for n in nodes:
            if any(i and (i in self.runtime or (i not in consts and i not in self.producer)) for i in n.input):
                self.runtime.update(o for o in n.output if o)

    def value(self, name: str) -> np.ndarray | None:
        """The compile-time value of a tensor: an initializer, or a node of constants evaluated."""
        if not name:
            return None
        if name in self.consts:
            return self.consts[name]
        if name in self.runtime:
            return None
        if name in self._values:
            return self._values[name]
        self._values[name] = None  # no cycles
        node = self.producer.get(name)
        if node is not None and node.op_type == "DequantizeLinear":
            # onnx.reference implements it from opset 19 only: numpy here.
            feeds = [self.value(i) for i in node.input if i]
            if all(v is not None for v in feeds):
                self._values[name] = dequantize(*feeds[:3] if len(feeds) > 2 else [*feeds, None],
                                                int(_attr(node, "axis", 1)), int(_attr(node, "block_size", 0)))
        elif node is not None:
            from .graph_opt import evaluate_node

            ins = [i for i in node.input if i]
            feeds = {i: self.value(i) for i in ins}
            if (ins or node.op_type == "Constant") and all(v is not None for v in feeds.values()):
                outs = evaluate_node(node, feeds, self.opset)
                if outs is not None:
                    for o, v in zip([o for o in node.output if o], outs):
                        self._values[o] = v
        return self._values[name]

    def dtype(self, name: str) -> np.dtype | None:
        v = self.consts.get(name)
        return np.dtype(v.dtype) if v is not None else self.infos.get(name, (None, None))[0]

    def shape(self, name: str) -> tuple | None:
        """The inferred shape (a dim None where unknown), or None."""
        return self.infos.get(name, (None, None))[1]

    def single_use(self, name: str) -> bool:
        return len(self.uses.get(name, [])) == 1 and name not in self.outputs

    def new_const(self, stem: str, array: np.ndarray) -> str:
        self._fresh += 1
        name = f"{stem}__qdq{self._fresh}"
        self.consts[name] = np.asarray(array)
        return name

    def new_name(self, stem: str) -> str:
        self._fresh += 1
        return f"{stem}__qdq{self._fresh}"

    def dq(self, name: str) -> DQ | None:
        """The DequantizeLinear producing `name`, with constant scale and zero point."""
        node = self.producer.get(name)
        if node is None or node.op_type != "DequantizeLinear" or node.domain not in ("", "ai.onnx"):
            return None
        scale = self.value(node.input[1])
        if scale is None or scale.dtype != np.float32 or not np.all(scale > 0) or not np.all(np.isfinite(scale)):
            return None
        x = node.input[0]
        xdt = self.dtype(x)
        if len(node.input) > 2 and node.input[2]:
            zp = self.value(node.input[2])
            if zp is None:
                return None
        else:
            if xdt is None:
                return None
            zp = np.zeros(scale.shape, xdt)
        zp = _as_int8_family(zp)
        if zp is None or zp.dtype not in Q8 or (xdt is not None and _as_q8_dtype(xdt) != zp.dtype):
            return None
        return DQ(node, x, scale.astype(np.float32), zp, int(_attr(node, "axis", 1)),
                  int(_attr(node, "block_size", 0)))

    def q(self, node) -> QParams | None:
        """A per-tensor 8-bit QuantizeLinear's parameters."""
        if node.op_type != "QuantizeLinear" or node.domain not in ("", "ai.onnx"):
            return None
        scale = self.value(node.input[1])
        if scale is None or scale.size != 1 or scale.dtype != np.float32 or not scale.reshape(()) > 0:
            return None
        if len(node.input) > 2 and node.input[2]:
            zp = self.value(node.input[2])
            if zp is None or zp.size != 1:
                return None
            dtype = np.dtype(zp.dtype)
        else:
            dtype = np.dtype(_ONNX_Q.get(int(_attr(node, "output_dtype", onnx.TensorProto.UINT8)), np.float32))
            zp = np.zeros((), dtype)
        if dtype not in Q8:
            return None
        return QParams(float(scale.reshape(())), int(zp.reshape(())), dtype)


def dequantize(x: np.ndarray, scale: np.ndarray, zp: np.ndarray | None, axis: int, block: int) -> np.ndarray:
    """DequantizeLinear of constants: (x - zp) * scale, float32, per tensor,
    per axis or blocked (each scale covering `block` elements along axis)."""
    x = _as_int8_family(x).astype(np.int64) if x.dtype.name in ("int4", "uint4") else x.astype(np.int64)
    z = np.zeros((), np.int64) if zp is None else _as_int8_family(zp).astype(np.int64)
    s = scale.astype(np.float32)
    if s.size > 1 or (z.size > 1):
        axis %= x.ndim
        if block:
            s = np.repeat(s, block, axis=axis).take(range(x.shape[axis]), axis=axis)
            z = np.repeat(z, block, axis=axis).take(range(x.shape[axis]), axis=axis) if z.size > 1 else z
        else:
            shape = [1] * x.ndim
            shape[axis] = -1
            s = s.reshape(shape)
            z = z.reshape(shape) if z.size > 1 else z.reshape(())
    else:
        s, z = s.reshape(()), z.reshape(())
    return ((x - z).astype(np.float32) * s).astype(np.float32)


def _as_int8_family(a: np.ndarray) -> np.ndarray | None:
    """int4/uint4 constants (ml_dtypes) widened to int8/uint8; other arrays as they are."""
    name = np.dtype(a.dtype).name
    if name == "int4":
        return a.astype(np.int8)
    if name == "uint4":
        return a.astype(np.uint8)
    return a


def _as_q8_dtype(dt) -> np.dtype:
    return {"int4": np.dtype(np.int8), "uint4": np.dtype(np.uint8)}.get(np.dtype(dt).name, np.dtype(dt))


# ---------------------------------------------------------------- the affine chain


@dataclass
class Affine:
    """z = clamp(a * t + c, lo, hi) per channel (arrays over the channels).

    The ops after a product compose into this form: a constant Add shifts c
    and the bounds; a constant Mul scales a, c and the bounds (a negative
    factor swaps the bounds); Relu and Clip intersect the bounds:
    clamp(clamp(u, l1, h1), l2, h2) = clamp(u, clamp(l1, l2, h2), clamp(h1, l2, h2)).
    """

    a: np.ndarray
    c: np.ndarray
    lo: np.ndarray
    hi: np.ndarray

    @staticmethod
    def identity(n: int) -> "Affine":
        return Affine(np.ones(n), np.zeros(n), np.full(n, -np.inf), np.full(n, np.inf))

    def add(self, k: np.ndarray) -> "Affine":
        return Affine(self.a, self.c + k, self.lo + k, self.hi + k)

    def mul(self, k: np.ndarray) -> "Affine":
        with np.errstate(invalid="ignore"):
            lo, hi = self.lo * k, self.hi * k
        lo = np.where(k == 0, 0.0, lo)
        hi = np.where(k == 0, 0.0, hi)
        neg = k < 0
        return Affine(self.a * k, self.c * k, np.where(neg, hi, lo), np.where(neg, lo, hi))

    def clamp(self, l2: float, h2: float) -> "Affine":
        return Affine(self.a, self.c, np.clip(self.lo, l2, h2), np.clip(self.hi, l2, h2))


def _channel_vector(g: Graph, name: str, n: int, rank: int, axis: int) -> np.ndarray | None:
    """A constant operand of the chain as one value per channel ([n]), if it
    broadcasts over the output (rank `rank`) along the channel `axis` alone."""
    v = g.value(name)
    if v is None or not np.issubdtype(v.dtype, np.floating) or v.ndim > rank:
        return None
    full = (1,) * (rank - v.ndim) + v.shape
    if any(d != 1 and i != axis for i, d in enumerate(full)) or full[axis] not in (1, n):
        return None
    return np.broadcast_to(v.astype(np.float64).reshape(-1), (n,)).copy()


def _chain_step(g: Graph, node, prev: str, aff: Affine, n: int, rank: int, axis: int) -> Affine | None:
    """The affine map after one more op of the chain, or None if it does not fit."""
    op = node.op_type
    if node.domain not in ("", "ai.onnx") or len([o for o in node.output if o]) != 1:
        return None
    if op == "Relu":
        return aff.clamp(0.0, np.inf)
    if op == "Clip":
        lo, hi = -np.inf, np.inf
        if g.opset < 11:
            lo, hi = float(_attr(node, "min", -np.inf)), float(_attr(node, "max", np.inf))
        else:
            for i, which in ((1, "lo"), (2, "hi")):
                if len(node.input) > i and node.input[i]:
                    v = g.value(node.input[i])
                    if v is None or v.size != 1:
                        return None
                    if which == "lo":
                        lo = float(v)
                    else:
                        hi = float(v)
        return aff.clamp(lo, hi)
    if op == "BatchNormalization":
        if _attr(node, "training_mode", 0) or axis != 1 or node.input[0] != prev:
            return None
        params = [_channel_vector(g, name, n, 1, 0) for name in node.input[1:5]]
        if any(p is None for p in params):
            return None
        scale, bias, mean, var = params
        s = scale / np.sqrt(var + float(_attr(node, "epsilon", 1e-5)))
        return aff.mul(s).add(bias - mean * s)
    if op in ("Add", "Sub", "Mul", "Div"):
        other = node.input[1] if node.input[0] == prev else node.input[0]
        if other == prev:
            return None
        k = _channel_vector(g, other, n, rank, axis)
        if k is None:
            return None
        first = node.input[0] == prev
        if op == "Add":
            return aff.add(k)
        if op == "Mul":
            return aff.mul(k)
        if op == "Sub":
            return aff.add(-k) if first else aff.mul(-np.ones(n)).add(k)
        if first and np.all(k != 0):  # x / k; k / x is not affine
            return aff.mul(1.0 / k)
    return None


def _walk_chain(g: Graph, q_node, step: Callable) -> tuple[list, str] | None:
    """The ops before a QuantizeLinear for which `step(node)` holds, each
    consuming the previous one's output, which nothing else uses. Returns
    them in order and the tensor they start from (not checked for other uses)."""
    chain = []
    name = q_node.input[0]
    while True:
        node = g.producer.get(name)
        if node is None or not step(node):
            return list(reversed(chain)), name
        if not g.single_use(name):
            return None
        chain.append(node)
        name = node.input[0] if node.op_type not in BINARY_OPS else _chain_input(g, node)
        if name is None:
            return None


def _chain_input(g: Graph, node) -> str | None:
    """The non-constant input of a binary op of a chain."""
    runtime = [i for i in node.input if i and g.value(i) is None]
    return runtime[0] if len(runtime) == 1 else None


# ---------------------------------------------------------------- fusions


@dataclass
class Fused:
    nodes: list  # the replacement, in order
    removed: list  # nodes of the group (besides DequantizeLinear nodes)
    what: str


def _requant_inputs(g: Graph, stem: str, q: QParams, mult, offset, lo, hi) -> list[str]:
    """The requantization inputs 4..8 of qc::RequantConv / RequantMatMul."""
    return [g.new_const(f"{stem}_mult", mult), g.new_const(f"{stem}_offset", offset),
            g.new_const(f"{stem}_yz", np.array(q.zp, q.dtype)), g.new_const(f"{stem}_lo", lo),
            g.new_const(f"{stem}_hi", hi)]


def _requant_params(t_scale: np.ndarray, bias: np.ndarray, aff: Affine, q: QParams, n: int):
    """The product's real value is t = t_scale * acc + bias per channel; after
    the chain z = clamp(a t + c, L, H) and Q: y = clamp(round(acc * mult + offset)
    + zy, lo, hi) with mult = a t_scale / sy, offset = (a bias + c) / sy, and
    lo/hi = saturate(round(L / sy) + zy) (round is monotone, so the clamp moves
    through it)."""
    qmin, qmax = np.iinfo(q.dtype).min, np.iinfo(q.dtype).max
    sy = np.float64(q.scale)
    mult = np.broadcast_to(aff.a * t_scale / sy, (n,))
    offset = np.broadcast_to((aff.a * bias + aff.c) / sy, (n,))

    def bound(v, default):
        with np.errstate(invalid="ignore", over="ignore"):
            r = np.where(np.isfinite(v), np.rint(v / sy) + q.zp, default)
        return np.clip(r, qmin, qmax).astype(np.int32)

    return mult.astype(np.float64), offset.astype(np.float64), bound(aff.lo, qmin), bound(aff.hi, qmax)


def _weights(g: Graph, d: DQ | None, axis: int) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """A constant DQ'd weight: (int8/uint8 values, scale, zero point), the
    scale and zero point per tensor or along `axis` (normalized)."""
    if d is None or d.block:
        return None
    w = g.value(d.x)
    if w is None:
        return None
    w = _as_int8_family(w)
    if w.dtype not in Q8:
        return None
    if d.scale.size == 1:
        return w, d.scale.reshape(()).astype(np.float64), d.zp.reshape(())
    if d.scale.ndim != 1 or d.axis % w.ndim != axis % w.ndim or d.scale.shape[0] != w.shape[axis]:
        return None
    return w, d.scale.astype(np.float64), d.zp.reshape(-1)


def _activation(g: Graph, name: str) -> DQ | None:
    d = g.dq(name)
    if d is None or not d.per_tensor or g.value(d.x) is not None:
        return None
    return d


def _bias(g: Graph, name: str | None, n: int) -> np.ndarray | None:
    """A float bias per channel (from a constant, or a DQ of an int32 constant)."""
    if not name:
        return np.zeros(n)
    v = g.value(name)
    if v is None or not np.issubdtype(v.dtype, np.floating) or v.size not in (1, n):
        return None
    return np.broadcast_to(v.astype(np.float64).reshape(-1), (n,)).copy()


def _fuse_product(g: Graph, q_node, q: QParams) -> Fused | None:
    found = _walk_chain(g, q_node, lambda n: n.op_type in ("Relu", "Clip", "BatchNormalization", "Add", "Sub",
                                                              "Mul", "Div") and _is_affine_op(g, n))
    if found is None:
        return None
    chain, t = found
    prod = g.producer.get(t)
    if prod is None or prod.domain not in ("", "ai.onnx") or not g.single_use(t):
        return None
    if prod.op_type == "Conv":
        return _fuse_conv(g, q_node, q, chain, prod)
    if prod.op_type in ("MatMul", "Gemm"):
        return _fuse_matmul(g, q_node, q, chain, prod)
    return None


def _is_affine_op(g: Graph, node) -> bool:
    if node.op_type in ("Add", "Sub", "Mul", "Div"):
        return _chain_input(g, node) is not None
    return True


def _apply_chain(g: Graph, chain, start: str, n: int, rank: int, axis: int) -> Affine | None:
    aff, prev = Affine.identity(n), start
    for node in chain:
        aff = _chain_step(g, node, prev, aff, n, rank, axis)
        if aff is None:
            return None
        prev = node.output[0]
    return aff


def _rank(g: Graph, name: str, default: int) -> int:
    shape = g.shape(name)
    return len(shape) if shape is not None else default


def _fuse_conv(g: Graph, q_node, q: QParams, chain, conv) -> Fused | None:
    x = _activation(g, conv.input[0])
    wd = g.dq(conv.input[1])
    weights = _weights(g, wd, 0)
    if x is None or weights is None:
        return None
    w, sw, zw = weights
    m = w.shape[0]
    bias = _bias(g, conv.input[2] if len(conv.input) > 2 else None, m)
    aff = _apply_chain(g, chain, conv.output[0], m, w.ndim, 1)
    if bias is None or aff is None:
        return None
    xp = x.params
    mult, offset, lo, hi = _requant_params(np.float64(np.float32(xp.scale)) * sw, bias, aff, q, m)
    stem = conv.name or conv.output[0]
    inputs = [x.x, g.new_const(f"{stem}_xz", np.array(xp.zp, xp.dtype)), g.new_const(f"{stem}_w", w),
              g.new_const(f"{stem}_wz", zw), *_requant_inputs(g, stem, q, mult, offset, lo, hi)]
    node = helper.make_node("RequantConv", inputs, [q_node.output[0]], name=conv.name or q_node.name,
                            domain=QC_DOMAIN)
    node.attribute.extend(conv.attribute)
    return Fused([node], [conv, *chain, q_node], f"DequantizeLinear -> Conv{_chain_text(chain)} -> QuantizeLinear")


def _chain_text(chain) -> str:
    return "".join(f" -> {n.op_type}" for n in chain)


def _fuse_matmul(g: Graph, q_node, q: QParams, chain, prod) -> Fused | None:
    gemm = prod.op_type == "Gemm"
    if gemm and (_attr(prod, "transA", 0) or len(prod.input) < 2):
        return None
    a = _activation(g, prod.input[0])
    bd = g.dq(prod.input[1])
    if a is None or bd is None or bd.block:
        return None
    trans_b = gemm and _attr(prod, "transB", 0)
    b_const = g.value(bd.x)
    if b_const is not None:
        weights = _weights(g, bd, 0 if trans_b else -1)
        if weights is None or weights[0].ndim != 2:
            return None
        w, sw, zw = weights
        if trans_b:
            w = np.ascontiguousarray(w.T)
        b_name = None
    else:
        if gemm or not bd.per_tensor:
            return None
        w, sw, zw = None, np.float64(bd.scale.reshape(())), bd.zp.reshape(())
        b_name = bd.x
    out_shape = g.shape(prod.output[0])
    n = w.shape[-1] if w is not None else (out_shape[-1] if out_shape else None)
    if n is None:
        return None
    bias = np.zeros(n)
    if gemm:
        alpha, beta = float(_attr(prod, "alpha", 1.0)), float(_attr(prod, "beta", 1.0))
        sw = sw * alpha
        if len(prod.input) > 2 and prod.input[2]:
            c = _bias(g, prod.input[2], n)
            if c is None:
                return None
            bias = c * beta
    rank = _rank(g, prod.output[0], 2)
    aff = _apply_chain(g, chain, prod.output[0], n, rank, rank - 1)
    if aff is None:
        return None
    ap = a.params
    mult, offset, lo, hi = _requant_params(np.float64(np.float32(ap.scale)) * sw, bias, aff, q, n)
    stem = prod.name or prod.output[0]
    b_in = g.new_const(f"{stem}_w", w) if w is not None else b_name
    inputs = [a.x, g.new_const(f"{stem}_az", np.array(ap.zp, ap.dtype)), b_in,
              g.new_const(f"{stem}_bz", np.asarray(zw)), *_requant_inputs(g, stem, q, mult, offset, lo, hi)]
    node = helper.make_node("RequantMatMul", inputs, [q_node.output[0]], name=prod.name or q_node.name,
                            domain=QC_DOMAIN)
    return Fused([node], [prod, *chain, q_node],
                 f"DequantizeLinear -> {prod.op_type}{_chain_text(chain)} -> QuantizeLinear")


def _qparams_inputs(g: Graph, stem: str, p: QParams) -> list[str]:
    return [g.new_const(f"{stem}_s", np.array(p.scale, np.float32)), g.new_const(f"{stem}_z", np.array(p.zp, p.dtype))]


def _fuse_binary(g: Graph, q_node, q: QParams) -> Fused | None:
    t = q_node.input[0]
    op = g.producer.get(t)
    if op is None or op.op_type not in ("Add", "Mul") or op.domain not in ("", "ai.onnx") or not g.single_use(t):
        return None
    ds = [g.dq(i) for i in op.input]
    if any(d is None or not d.per_tensor for d in ds):
        return None
    pa, pb = ds[0].params, ds[1].params
    if pa.dtype != q.dtype or pb.dtype != q.dtype:
        return None
    stem = op.name or t
    inputs = [ds[0].x, *_qparams_inputs(g, f"{stem}_a", pa), ds[1].x, *_qparams_inputs(g, f"{stem}_b", pb),
              *_qparams_inputs(g, f"{stem}_y", q)]
    node = helper.make_node(f"QLinear{op.op_type}", inputs, [q_node.output[0]], name=op.name or q_node.name,
                            domain=MS_DOMAIN)
    return Fused([node], [op, q_node], f"DequantizeLinear -> {op.op_type} -> QuantizeLinear")


def _fuse_gap(g: Graph, q_node, q: QParams) -> Fused | None:
    t = q_node.input[0]
    op = g.producer.get(t)
    if op is None or op.op_type != "GlobalAveragePool" or not g.single_use(t):
        return None
    d = _activation(g, op.input[0])
    if d is None or d.params.dtype != q.dtype:
        return None
    stem = op.name or t
    inputs = [d.x, *_qparams_inputs(g, f"{stem}_x", d.params), *_qparams_inputs(g, f"{stem}_y", q)]
    node = helper.make_node("QLinearGlobalAveragePool", inputs, [q_node.output[0]], name=op.name or q_node.name,
                            domain=MS_DOMAIN)
    return Fused([node], [op, q_node], "DequantizeLinear -> GlobalAveragePool -> QuantizeLinear")


def _requant_table(src: QParams, dst: QParams) -> np.ndarray:
    return quantize_table(dequantize_values(src.dtype, src.scale, src.zp), dst.scale, dst.zp, dst.dtype)


def _retarget(g: Graph, x: str, src: QParams, dst: QParams, out: str, stem: str) -> list:
    """Nodes that give `out` = x requantized from src to dst (an alias when equal)."""
    if src.same(dst):
        return [helper.make_node("Identity", [x], [out], name=f"{stem}_same")]
    table = g.new_const(f"{stem}_table", _requant_table(src, dst))
    return [helper.make_node("Lookup", [x, table], [out], name=f"{stem}_requant", domain=QC_DOMAIN)]


def _fuse_move(g: Graph, q_node, q: QParams) -> Fused | None:
    t = q_node.input[0]
    op = g.producer.get(t)
    if (op is None or op.domain not in ("", "ai.onnx") or op.op_type not in MOVES | {"MaxPool"}
            or not g.single_use(t) or len([o for o in op.output if o]) != 1):
        return None
    d = _activation(g, op.input[0])
    if d is None:
        return None
    stem = op.name or t
    moved = g.new_name(t)
    new = helper.make_node(op.op_type, [d.x, *op.input[1:]], [moved], name=op.name,
                           domain=QC_DOMAIN if op.op_type == "MaxPool" else "")
    new.attribute.extend(op.attribute)
    return Fused([new, *_retarget(g, moved, d.params, q, q_node.output[0], stem)], [op, q_node],
                 f"DequantizeLinear -> {op.op_type} -> QuantizeLinear")


def _fuse_concat(g: Graph, q_node, q: QParams) -> Fused | None:
    t = q_node.input[0]
    op = g.producer.get(t)
    if op is None or op.op_type != "Concat" or not g.single_use(t):
        return None
    ds = [_activation(g, i) for i in op.input]
    if any(d is None or d.params.dtype != q.dtype for d in ds):
        return None
    stem = op.name or t
    nodes, ins = [], []
    for i, d in enumerate(ds):
        if d.params.same(q):
            ins.append(d.x)
            continue
        name = g.new_name(f"{t}_in{i}")
        nodes += _retarget(g, d.x, d.params, q, name, f"{stem}_{i}")
        ins.append(name)
    new = helper.make_node("Concat", ins, [q_node.output[0]], name=op.name)
    new.attribute.extend(op.attribute)
    return Fused([*nodes, new], [op, q_node], "DequantizeLinear -> Concat -> QuantizeLinear")


def _evaluate_step(g: Graph, node, prev: str, x: np.ndarray) -> np.ndarray | None:
    """One op of a table's chain on float32 values: onnx.reference, except for
    BatchNormalization, whose reference runs in training mode before opset 14
    (momentum has a default there): its inference formula in numpy."""
    from .graph_opt import evaluate_node

    if node.op_type == "BatchNormalization":
        scale, bias, mean, var = (g.value(i).astype(np.float32).reshape(-1, *[1] * (x.ndim - 2))
                                  for i in node.input[1:5])
        eps = np.float32(_attr(node, "epsilon", 1e-5))
        return (scale * (x - mean) / np.sqrt(var + eps) + bias).astype(np.float32)
    feeds = {i: (x if i == prev else g.value(i)) for i in node.input if i}
    if any(v is None for v in feeds.values()):
        return None
    outs = evaluate_node(node, feeds, g.opset)
    return None if outs is None else np.asarray(outs[0])


def _fuse_lookup(g: Graph, q_node, q: QParams) -> Fused | None:
    """DQ -> elementwise ops with constants -> Q: a table over the 256 inputs,
    one row per channel where a constant varies along axis 1."""
    found = _walk_chain(g, q_node, lambda n: _is_elementwise(g, n))
    if found is None:
        return None
    chain, src = found
    if g.producer.get(src) is None or g.producer[src].op_type != "DequantizeLinear":
        return None
    d = _activation(g, src)
    if d is None:
        return None
    if not chain:  # DQ -> Q: a requantization (the DQ output may have other uses)
        fused = _retarget(g, d.x, d.params, q, q_node.output[0], q_node.name or q_node.output[0])
        return Fused(fused, [q_node], "DequantizeLinear -> QuantizeLinear")
    rank = _rank(g, src, 0)
    if rank == 0:  # unknown: no layout for the table's inputs
        return None
    channels = _lookup_channels(g, chain, src, rank)
    if channels is None:
        return None
    table = _evaluate_table(g, d, chain, q_node, rank, channels)
    if table is None:
        return None
    stem = q_node.name or q_node.output[0]
    attrs = {"axis": 1} if channels > 1 else {}
    node = helper.make_node("Lookup", [d.x, g.new_const(f"{stem}_table", table)], [q_node.output[0]],
                            name=chain[0].name or stem, domain=QC_DOMAIN, **attrs)
    return Fused([node], [*chain, q_node], f"DequantizeLinear{_chain_text(chain)} -> QuantizeLinear (table)")


def _is_elementwise(g: Graph, node) -> bool:
    if node.domain not in ("", "ai.onnx") or len([o for o in node.output if o]) != 1:
        return False
    if node.op_type in UNARY_OPS:
        return all(g.value(i) is not None for i in node.input[1:] if i)
    if node.op_type in BINARY_OPS:
        return _chain_input(g, node) is not None
    if node.op_type == "BatchNormalization":
        return not _attr(node, "training_mode", 0) and all(g.value(i) is not None for i in node.input[1:5])
    return False


def _lookup_channels(g: Graph, chain, src: str, rank: int) -> int | None:
    """1 when every constant of the chain is uniform over the tensor, C when
    they vary along axis 1 only (BatchNormalization's parameters, per-channel
    constants), None when a constant varies along another axis."""
    channels = 1
    for node in chain:
        consts = [g.value(i) for i in node.input if i and g.value(i) is not None]
        for v in consts:
            if node.op_type == "BatchNormalization":
                full = (1, v.size)
            else:
                if v.ndim > rank:
                    return None
                full = (1,) * (rank - v.ndim) + tuple(v.shape)
            if node.op_type in ("Clip", "Pow") and v.size != 1:
                return None
            for axis, size in enumerate(full):
                if size == 1:
                    continue
                if axis != 1 or channels not in (1, size):
                    return None
                channels = size
    return channels


def _evaluate_table(g: Graph, d: DQ, chain, q_node, rank: int, channels: int) -> np.ndarray | None:
    """Runs the chain on the dequantized values of every 8-bit input (laid
    out along axis 0, the channels along axis 1), then QuantizeLinear (numpy,
    float32 as the spec): table [256] or [C, 256]."""
    p = d.params
    q = g.q(q_node)
    shape = [256, channels] + [1] * (rank - 2) if rank >= 2 else [256]
    real = dequantize_values(p.dtype, p.scale, p.zp)
    x = np.broadcast_to(real.reshape([256] + [1] * (len(shape) - 1)), shape).copy()
    y = x
    prev = d.node.output[0]
    for node in chain:
        y = _evaluate_step(g, node, prev, y)
        if y is None:
            return None
        prev = node.output[0]
    y = np.asarray(y)
    if y.shape != tuple(shape) or y.dtype != np.float32:
        return None
    table = quantize_table(y.reshape(256, channels).T, q.scale, q.zp, q.dtype)
    return np.ascontiguousarray(table[0] if channels == 1 else table)


# ---------------------------------------------------------------- driver

FUSIONS = (_fuse_product, _fuse_binary, _fuse_gap, _fuse_move, _fuse_concat, _fuse_lookup)


@dataclass
class FuseResult:
    nodes: list
    groups: int
    log: list


def value_infos(model: onnx.ModelProto) -> dict:
    """(dtype, shape) of each tensor shape inference typed; None where unknown."""
    from .importer import ONNX_DTYPES

    four_bit = {onnx.TensorProto.INT4: np.dtype(np.int8), onnx.TensorProto.UINT4: np.dtype(np.uint8)}
    out: dict = {}
    g = model.graph
    for vi in [*g.input, *g.value_info, *g.output]:
        tt = vi.type.tensor_type
        dtype = ONNX_DTYPES.get(tt.elem_type, four_bit.get(tt.elem_type))
        shape = None
        if tt.HasField("shape"):
            shape = tuple(int(d.dim_value) if d.HasField("dim_value") else None for d in tt.shape.dim)
        out[vi.name] = (dtype, shape)
    return out


def fuse(model: onnx.ModelProto, consts: dict, graph_outputs: set, opset: int) -> FuseResult:
    """The graph's nodes with QDQ groups replaced; new constants go into `consts`."""
    nodes = list(model.graph.node)
    g = Graph(nodes, consts, graph_outputs, value_infos(model), opset)
    if not any(n.op_type in ("QuantizeLinear", "MaxPool") for n in nodes):
        return FuseResult(nodes, 0, [])
    replaced: dict[int, list] = {}  # id(QuantizeLinear or MaxPool) -> its replacement
    gone: set[int] = set()
    log = []
    for node in nodes:
        if id(node) in gone:
            continue
        fused = _match(g, node)
        if fused is None or any(id(n) in gone for n in fused.removed):
            continue
        gone.update(id(n) for n in fused.removed)
        replaced[id(fused.removed[-1])] = fused.nodes
        log.append(f"fused {fused.what} into {', '.join(_describe(n) for n in fused.nodes if n.op_type != 'Identity')} "
                   f"'{fused.nodes[-1].name or fused.nodes[-1].output[0]}'")
    out = []
    for node in nodes:
        if id(node) in replaced:
            out.extend(replaced[id(node)])
        elif id(node) not in gone:
            out.append(node)
    groups = len(log)
    out = _merge_requant_tables(_drop_unused_dequantize(out, graph_outputs), graph_outputs, log)
    out = _fold_constant_dequantize(g, out, log)
    return FuseResult(out, groups, log)


def _match(g: Graph, node) -> Fused | None:
    if node.op_type == "MaxPool" and node.domain in ("", "ai.onnx"):
        return _int_maxpool(g, node)
    q = g.q(node)
    if q is None:
        return None
    for fusion in FUSIONS:
        fused = fusion(g, node, q)
        if fused is not None:
            return fused
    return None


def _int_maxpool(g: Graph, node) -> Fused | None:
    """MaxPool of an 8-bit tensor (a QOperator model) runs on qc::MaxPool."""
    if g.dtype(node.input[0]) not in Q8 or len([o for o in node.output if o]) != 1:
        return None
    new = helper.make_node("MaxPool", list(node.input), list(node.output), name=node.name, domain=QC_DOMAIN)
    new.attribute.extend(node.attribute)
    return Fused([new], [node], "MaxPool of 8-bit integers")


def _describe(node) -> str:
    return f"{node.domain}::{node.op_type}" if node.domain else node.op_type


def _merge_requant_tables(nodes, graph_outputs: set, log: list) -> list:
    """A qc::Lookup right after a qc::RequantConv (a conv quantized, then
    DQ -> BatchNormalization -> ... -> Q: a model quantized without folding
    BatchNorm first) becomes the conv's input 10, its axis the attribute
    `table_axis` (after a QOperator QLinearConv: input 9 of qc::QLinearConv):
    one integer op per layer, which the importer computes in one loop where
    the table is affine (table_fit) and as conv then table otherwise.
    Per-channel tables only along the conv's channels (axis 1)."""
    consumers: dict[str, int] = {}
    for n in nodes:
        for i in n.input:
            consumers[i] = consumers.get(i, 0) + 1
    producer = {o: n for n in nodes for o in n.output}
    merged: set[int] = set()
    for look in nodes:
        if look.op_type != "Lookup" or look.domain != QC_DOMAIN:
            continue
        conv = producer.get(look.input[0])
        axis = next((a.i for a in look.attribute if a.name == "axis"), None)
        if conv is None or consumers.get(look.input[0]) != 1 or look.input[0] in graph_outputs or axis not in (None, 1):
            continue
        if conv.op_type == "RequantConv" and conv.domain == QC_DOMAIN:
            table_input = 10  # after input 9, the bias, which may be absent
        elif conv.op_type == "QLinearConv" and conv.domain in ("", "ai.onnx"):
            # A QOperator model's conv: qc::QLinearConv is the same op with
            # the table as input 9 (after B).
            conv.domain = QC_DOMAIN
            table_input = 9
        else:
            continue
        conv.input.extend([""] * (table_input - len(conv.input)))
        conv.input.append(look.input[1])
        conv.attribute.append(helper.make_attribute("table_axis", 1 if axis is not None else -1))
        conv.output[0] = look.output[0]
        merged.add(id(look))
    if merged:
        log.append(f"merged {len(merged)} table(s) into the requantization before them")
    return [n for n in nodes if id(n) not in merged]


def _drop_unused_dequantize(nodes, graph_outputs: set) -> list:
    """DequantizeLinear nodes whose every consumer was fused away."""
    used = {i for n in nodes for i in n.input} | graph_outputs
    return [n for n in nodes if n.op_type != "DequantizeLinear" or any(o in used for o in n.output)]


def _fold_constant_dequantize(g: Graph, nodes, log: list) -> list:
    """The DequantizeLinear nodes of constants left over (weights of unfused
    layers) become float constants, in numpy: the constant folding that
    follows uses onnx.reference, which has no DequantizeLinear before opset 19."""
    out, folded = [], 0
    for node in nodes:
        if node.op_type == "DequantizeLinear" and node.domain in ("", "ai.onnx") and node.output[0] not in g.outputs:
            v = g.value(node.output[0])
            if v is not None:
                g.consts[node.output[0]] = v
                folded += 1
                continue
        out.append(node)
    if folded:
        log.append(f"folded {folded} DequantizeLinear of constants")
    return out


def declare_domains(model: onnx.ModelProto) -> None:
    """Adds the opset imports of the domains the fused nodes use."""
    have = {imp.domain for imp in model.opset_import}
    for domain in (QC_DOMAIN, MS_DOMAIN):
        if domain not in have and any(n.domain == domain for n in model.graph.node):
            model.opset_import.append(helper.make_opsetid(domain, 1))
