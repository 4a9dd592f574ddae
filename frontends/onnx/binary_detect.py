"""Binary and 2-bit layers, recognized in the ONNX graph before import.

A binary layer is a Conv / MatMul / Gemm whose weights are constants in
{-1, +1} (a constant `Sign(W)` is folded before this runs) and whose input is
quantized by one of

  ge0    Where(GreaterOrEqual(x, 0), 1, -1)   Larq's ste_sign: x >= 0 -> +1
  gt0    Where(Greater(x, 0), 1, -1)          x > 0 -> +1, else -1
  sign   Sign(x)                              ONNX: +1, -1, and 0 for x == 0
  2bit   Mul(Round(Mul(Clip(x, 0, hi), m)), step) with hi*m == 3
         (Riptide-style: four levels v*step, v in {0, 1, 2, 3}; a Div by 1/m
         or 1/step is accepted for either Mul)

Such a layer becomes one `qc.binary` node (BinaryConv / BinaryMatMul) that
frontends/onnx/binary.py imports as bit-packed xor/popcount ops.

Sign(0). ONNX's Sign gives 0 for 0, so a Sign-quantized input is ternary. qc
reproduces that exactly: a Sign layer packs a second bit plane, the nonzero
mask m, and computes the dot product over the nonzero taps only,
    dot = popcount(m) - 2 * popcount((a xor w) and m).
The Where forms are binary by construction (0 goes to +1 for ge0, to -1 for
gt0) and use the plain K - 2 * popcount(a xor w).

The glue after a layer (the conv bias, a per-channel Mul/Add/Sub/Div,
BatchNormalization, a monotone activation, and the next layer's quantizer) is
collapsed at compile time:
- next layer binary (every consumer of the quantizer is a binary layer): the
  whole chain is evaluated, in float32 with onnx.reference, on every dot
  product value the layer can produce; its result per channel is a step
  function of the dot product, y_bit = (dot >= t_c) xor flip_c, and the
  layer writes bit-packed output. A chain that is not a step function
  (non-monotone), or a Sign that can produce 0, is not fused this way.
- otherwise the affine prefix of the chain becomes y = dot * s_c + b_c (one
  multiply-add per channel, computed in float64 from the parameters), and
  the rest of the graph stays as it is.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import onnx
from onnx import helper

DOMAIN = "qc.binary"
WORD_BITS = 64  # activations and weights are packed into 64-bit words

# A threshold no dot product reaches: the bit is then constant.
NEVER = 1 << 30


@dataclass
class Quantizer:
    kind: str  # ge0 | gt0 | sign | 2bit
    x: str  # the float input it quantizes
    out: str  # its output
    nodes: list  # its nodes, in order
    step: float = 1.0  # 2bit: the value of one level
    hi: float = 0.0  # 2bit: the Clip bound
    mul: float = 0.0  # 2bit: the multiplier before Round


@dataclass
class Layer:
    node: onnx.NodeProto
    quant: Quantizer
    w: np.ndarray  # conv: [F, C, KH, KW]; matmul: [K, F]  (±1 float32)
    conv: bool
    base_scale: np.ndarray  # layer output = dot * base_scale + base_bias (per channel)
    base_bias: np.ndarray
    glue: list = field(default_factory=list)  # fused nodes after it


def _attr(node, name, default):
    for a in node.attribute:
        if a.name == name:
            v = helper.get_attribute_value(a)
            return v.decode() if isinstance(v, bytes) else v
    return default


def _scalar(consts, name):
    v = consts.get(name)
    if v is None or v.size == 0 or not np.all(v == v.ravel()[0]):
        return None
    return float(v.ravel()[0])


# ---------------------------------------------------------------- quantizers


def quantizer_at(name: str, producer, consts) -> Quantizer | None:
    """The quantizer whose output is `name`, or None."""
    node = producer.get(name)
    if node is None:
        return None
    if node.op_type == "Sign":
        return Quantizer("sign", node.input[0], name, [node])
    if node.op_type == "Where":
        return _where_quantizer(node, producer, consts)
    if node.op_type in ("Mul", "Div"):
        return _two_bit_quantizer(node, producer, consts)
    return None


def _where_quantizer(where, producer, consts) -> Quantizer | None:
    cond = producer.get(where.input[0])
    hi, lo = _scalar(consts, where.input[1]), _scalar(consts, where.input[2])
    if cond is None or len(cond.input) != 2 or _scalar(consts, cond.input[1]) != 0.0:
        return None
    if consts.get(where.input[1]) is None or consts[where.input[1]].dtype != np.float32:
        return None
    # x >= 0 ? 1 : -1 and x < 0 ? -1 : 1 are the same quantizer.
    forms = {("GreaterOrEqual", 1.0, -1.0): "ge0", ("Less", -1.0, 1.0): "ge0",
             ("Greater", 1.0, -1.0): "gt0", ("LessOrEqual", -1.0, 1.0): "gt0"}
    kind = forms.get((cond.op_type, hi, lo))
    if kind is None:
        return None
    return Quantizer(kind, cond.input[0], where.output[0], [cond, where])


def _factor(node, consts) -> float | None:
    """The constant factor of a Mul (c) or Div (1/c) by a scalar."""
    c = _scalar(consts, node.input[1])
    if c is None or c == 0.0:
        return None
    return c if node.op_type == "Mul" else 1.0 / c


def _two_bit_quantizer(scale, producer, consts) -> Quantizer | None:
    rnd = producer.get(scale.input[0])
    if rnd is None or rnd.op_type != "Round":
        return None
    pre = producer.get(rnd.input[0])
    if pre is None or pre.op_type not in ("Mul", "Div"):
        return None
    clip = producer.get(pre.input[0])
    if clip is None or clip.op_type != "Clip" or len(clip.input) < 3:
        return None
    lo, hi = _scalar(consts, clip.input[1]), _scalar(consts, clip.input[2])
    step, mul = _factor(scale, consts), _factor(pre, consts)
    if lo != 0.0 or hi is None or step is None or mul is None or pre.op_type != "Mul":
        return None  # Round(x / d) is not Round(x * (1/d)) bit for bit: only Mul before Round
    if abs(hi * mul - 3.0) > 1e-6:
        return None  # not four levels 0..3
    return Quantizer("2bit", clip.input[0], scale.output[0], [clip, pre, rnd, scale], step, hi, mul)


# ---------------------------------------------------------------- layers


def _pm1(w) -> bool:
    return w is not None and w.dtype == np.float32 and w.size > 0 and bool(np.all(np.abs(w) == 1.0))


def layer_at(node, producer, consts, shapes) -> Layer | None:
    """A binary layer, if `node` is one."""
    if node.op_type not in ("Conv", "MatMul", "Gemm") or not node.input or not node.input[0]:
        return None
    q = quantizer_at(node.input[0], producer, consts)
    w = consts.get(node.input[1]) if len(node.input) > 1 else None
    if q is None or not _pm1(w):
        return None
    if node.op_type == "Conv":
        return _conv_layer(node, q, w, consts, shapes)
    if node.op_type == "MatMul":
        xs = shapes.get(node.input[0])
        if w.ndim != 2 or xs is None or len(xs) != 2:
            return None
        f = w.shape[1]
        return Layer(node, q, w, False, np.ones(f), np.zeros(f))
    return _gemm_layer(node, q, w, consts, shapes)


def _conv_layer(node, q, w, consts, shapes) -> Layer | None:
    xs = shapes.get(node.input[0])
    if w.ndim != 4 or xs is None or len(xs) != 4 or int(_attr(node, "group", 1)) != 1:
        return None
    if _attr(node, "auto_pad", "NOTSET") not in ("NOTSET", "VALID"):
        return None
    f = w.shape[0]
    bias = np.zeros(f)
    if len(node.input) > 2 and node.input[2]:
        b = consts.get(node.input[2])
        if b is None or b.shape != (f,):
            return None
        bias = b.astype(np.float64)
    return Layer(node, q, w, True, np.ones(f), bias)


def _gemm_layer(node, q, w, consts, shapes) -> Layer | None:
    xs = shapes.get(node.input[0])
    if w.ndim != 2 or xs is None or len(xs) != 2 or _attr(node, "transA", 0):
        return None
    wk = w.T if _attr(node, "transB", 0) else w
    f = wk.shape[1]
    alpha, beta = float(_attr(node, "alpha", 1.0)), float(_attr(node, "beta", 1.0))
    bias = np.zeros(f)
    if len(node.input) > 2 and node.input[2]:
        c = consts.get(node.input[2])
        if c is None or c.size not in (1, f) or (c.ndim == 2 and c.shape[0] != 1):
            return None
        bias = beta * np.broadcast_to(c.astype(np.float64).ravel(), (f,))
    return Layer(node, q, np.ascontiguousarray(wk), False, np.full(f, alpha), bias)


# ---------------------------------------------------------------- glue


_AFFINE = ("Mul", "Add", "Sub", "Div", "BatchNormalization")
_MONOTONE = ("Relu", "LeakyRelu", "PRelu", "Clip", "Tanh", "Sigmoid", "HardSigmoid", "Softsign", "Identity")


def _channel_vector(c: np.ndarray, rank: int, f: int) -> np.ndarray | None:
    """A constant that broadcasts along the channel dim only (dim 1 of a conv
    output, the last dim of a matmul's), as a float64 vector of length f."""
    if c.ndim > rank or c.dtype != np.float32:
        return None
    shape = (1,) * (rank - c.ndim) + tuple(c.shape)
    axis = 1 if rank == 4 else rank - 1
    if any(d != 1 for i, d in enumerate(shape) if i != axis) or shape[axis] not in (1, f):
        return None
    return np.broadcast_to(c.astype(np.float64).ravel(), (f,)).copy()


def _affine_step(node, data: str, consts, rank: int, f: int):
    """(multiplier, addend) per channel of an affine glue node applied to
    `data`, or None. y = x * mult + add."""
    if node.op_type == "BatchNormalization":
        if node.input[0] != data or _attr(node, "training_mode", 0) or len([o for o in node.output if o]) != 1:
            return None
        ps = [consts.get(n) for n in node.input[1:5]]
        if any(p is None or p.shape != (f,) for p in ps):
            return None
        scale, bias, mean, var = (p.astype(np.float64) for p in ps)
        g = scale / np.sqrt(var + float(_attr(node, "epsilon", 1e-5)))
        return g, bias - mean * g
    if len(node.input) != 2:
        return None
    other = node.input[1] if node.input[0] == data else node.input[0]
    if other == data or consts.get(other) is None:
        return None
    c = _channel_vector(consts[other], rank, f)
    if c is None:
        return None
    first = node.input[0] == data
    if node.op_type == "Mul":
        return c, np.zeros(f)
    if node.op_type == "Add":
        return np.ones(f), c
    if node.op_type == "Sub":
        return (np.ones(f), -c) if first else (-np.ones(f), c)
    if node.op_type == "Div" and first and np.all(c != 0):
        return 1.0 / c, np.zeros(f)
    return None


def _glue_ok(node, data: str, consts, rank: int, f: int) -> bool:
    """An elementwise per-channel node on `data` with constant other inputs."""
    if node.op_type in _AFFINE:
        return _affine_step(node, data, consts, rank, f) is not None
    if node.op_type not in _MONOTONE or node.input[0] != data or len([o for o in node.output if o]) != 1:
        return False
    for extra in node.input[1:]:
        if extra and consts.get(extra) is None:
            return False
    if node.op_type == "PRelu":
        slope = consts.get(node.input[1])
        return slope is not None and _channel_vector(slope, rank, f) is not None
    return True


def glue_chain(layer_out: str, uses, graph_outputs, consts, rank: int, f: int) -> list:
    """The single-consumer chain of glue nodes after a layer."""
    chain, cur = [], layer_out
    while cur not in graph_outputs and len(uses.get(cur, [])) == 1:
        node = uses[cur][0]
        if not _glue_ok(node, cur, consts, rank, f):
            break
        chain.append(node)
        cur = node.output[0]
    return chain


# ---------------------------------------------------------------- the fused output


def dot_range(layer: Layer) -> int:
    """The largest |dot product| the layer can produce (in levels)."""
    k = layer.w[0].size if layer.conv else layer.w.shape[0]
    return 3 * k if layer.quant.kind == "2bit" else k


def _sweep_input(layer: Layer, dots: np.ndarray) -> np.ndarray:
    """The layer's output for every dot value, shaped to broadcast like its
    real output: [1, F, R, 1] for a conv, [R, F] for a matmul."""
    vals = (dots[None, :] * layer.quant.step * layer.base_scale[:, None] + layer.base_bias[:, None])
    vals = vals.astype(np.float32)
    return vals[None, :, :, None] if layer.conv else np.ascontiguousarray(vals.T)


def thresholds(layer: Layer, chain: list, quant: Quantizer, consts, opset: int):
    """(t, flip) per channel with bit = (dot >= t) xor flip, where bit 1 means
    the next quantizer gives -1; None if the chain is no step function of the
    dot product, or gives 0 (a Sign of an exact zero)."""
    from .graph_opt import evaluate_node

    r = dot_range(layer)
    dots = np.arange(-r, r + 1, dtype=np.float64)
    cur, name = _sweep_input(layer, dots), layer.node.output[0]
    for node in [*chain, *quant.nodes]:
        feeds = {n: consts[n] for n in node.input if n and n in consts}
        feeds[name] = cur
        outs = evaluate_node(node, feeds, opset)
        if outs is None:
            return None
        cur, name = outs[0], node.output[0]
    q = cur[0, :, :, 0] if layer.conv else cur.T  # [F, R]
    if np.any(q == 0) or not np.all(np.abs(q) == 1):
        return None
    bits = q < 0
    f = bits.shape[0]
    t, flip = np.empty(f, np.int32), np.empty(f, np.int32)
    for c in range(f):
        row = bits[c]
        up = np.all(row[1:] >= row[:-1])
        down = np.all(row[1:] <= row[:-1])
        if not (up or down):
            return None
        # up: bit = dot >= t (first dot with bit 1); down: bit = not (dot >= t) (first dot with bit 0).
        edge = np.flatnonzero(row if up else ~row)
        t[c] = int(dots[edge[0]]) if edge.size else NEVER
        flip[c] = 0 if up else 1
    return t, flip


def affine_of(layer: Layer, chain: list, consts, rank: int, f: int):
    """(the affine prefix of the chain, scale, bias): y = dot * scale + bias."""
    s = layer.base_scale * layer.quant.step
    b = layer.base_bias.copy()
    prefix, data = [], layer.node.output[0]
    for node in chain:
        step = _affine_step(node, data, consts, rank, f) if node.op_type in _AFFINE else None
        if step is None:
            break
        m, a = step
        s, b = s * m, b * m + a
        prefix.append(node)
        data = node.output[0]
    return prefix, s, b


# ---------------------------------------------------------------- the rewrite


def _consumers(nodes):
    uses: dict = {}
    for node in nodes:
        for n in node.input:
            if n:
                uses.setdefault(n, []).append(node)
    return uses


def rewrite(model: onnx.ModelProto, nodes: list, consts: dict, graph_outputs: set, report) -> list:
    """Replaces binary layers (and their fused glue) with qc.binary nodes."""
    producer = {o: n for n in nodes for o in n.output if o}
    shapes = _shapes(model)
    layers = {id(n): lay for n in nodes if (lay := layer_at(n, producer, consts, shapes)) is not None}
    if not layers:
        return nodes
    opset = next((i.version for i in model.opset_import if i.domain in ("", "ai.onnx")), 17)
    uses = _consumers(nodes)
    packed: dict[str, str] = {}  # quantizer output -> the bit-packed tensor that replaces it
    replace, drop = {}, set()
    for node in nodes:  # topological order: a producer is decided before its consumers
        layer = layers.get(id(node))
        if layer is None:
            continue
        new, dropped = _fuse(layer, layers, uses, graph_outputs, consts, opset, packed)
        replace[id(node)] = new
        drop.update(dropped)
        report.log.append(f"binary layer '{node.name or node.output[0]}' ({node.op_type}, input {layer.quant.kind}) "
                          f"-> {new.op_type}, output {_attr(new, 'output', '')}"
                          + (f", fused {', '.join(n.op_type for n in layer.glue)}" if layer.glue else ""))
    if not any(i.domain == DOMAIN for i in model.opset_import):
        model.opset_import.append(helper.make_opsetid(DOMAIN, 1))
    return [replace.get(id(n), n) for n in nodes if id(n) not in drop]


def _shapes(model) -> dict:
    out = {}
    for vi in [*model.graph.input, *model.graph.value_info, *model.graph.output]:
        tt = vi.type.tensor_type
        if tt.HasField("shape") and all(d.HasField("dim_value") for d in tt.shape.dim):
            out[vi.name] = tuple(d.dim_value for d in tt.shape.dim)
    return out


def _fuse(layer: Layer, layers, uses, graph_outputs, consts, opset, packed):
    node, f = layer.node, (layer.w.shape[0] if layer.conv else layer.w.shape[1])
    rank = 4 if layer.conv else 2
    chain = glue_chain(node.output[0], uses, graph_outputs, consts, rank, f)
    end = chain[-1].output[0] if chain else node.output[0]
    nxt = _next_quantizer(end, uses, graph_outputs, layers)
    tf = thresholds(layer, chain, nxt, consts, opset) if nxt is not None else None
    inputs = _layer_inputs(layer, packed)
    if tf is not None:
        t, flip = tf
        wpad = -(-f // WORD_BITS) * WORD_BITS
        t_name, flip_name = f"{node.output[0]}__bin_t", f"{node.output[0]}__bin_flip"
        consts[t_name] = np.pad(t, (0, wpad - f), constant_values=NEVER).astype(np.int32)
        consts[flip_name] = np.pad(flip, (0, wpad - f)).astype(np.int32)
        out = f"{nxt.out}__bits"
        packed[nxt.out] = out
        layer.glue = [*chain, *nxt.nodes]
        new = _make(layer, inputs, [t_name, flip_name], out, "bits", consts)
        return new, {id(n) for n in chain}
    prefix, s, b = affine_of(layer, chain, consts, rank, f)
    s_name, b_name = f"{node.output[0]}__bin_scale", f"{node.output[0]}__bin_bias"
    consts[s_name], consts[b_name] = s.astype(np.float32), b.astype(np.float32)
    layer.glue = prefix
    out = prefix[-1].output[0] if prefix else node.output[0]
    return _make(layer, inputs, [s_name, b_name], out, "float", consts), {id(n) for n in prefix}


def _next_quantizer(end: str, uses, graph_outputs, layers) -> Quantizer | None:
    """The 1-bit quantizer after the chain, if every one of its consumers is a
    binary layer that reads it."""
    if end in graph_outputs or len(uses.get(end, [])) != 1:
        return None
    consumers_of_q = None
    for lay in layers.values():
        if lay.quant.x == end and lay.quant.kind in ("ge0", "gt0", "sign"):
            q = lay.quant
            consumers_of_q = uses.get(q.out, [])
            if q.out in graph_outputs or not consumers_of_q:
                return None
            if not all(id(c) in layers and layers[id(c)].quant.out == q.out for c in consumers_of_q):
                return None
            if uses[end][0] is not q.nodes[0]:
                return None
            # The quantizer's inner nodes (the Where's condition) feed nothing else.
            if any(len(uses.get(n.output[0], [])) != 1 for n in q.nodes[:-1]):
                return None
            return q
    return None


def _layer_inputs(layer: Layer, packed) -> tuple[str, str]:
    q = layer.quant
    if q.out in packed:
        return packed[q.out], "packed"
    return q.x, q.kind


def _make(layer: Layer, inputs, out_params, out: str, output: str, consts) -> onnx.NodeProto:
    node = layer.node
    x, kind = inputs
    wname = f"{node.output[0]}__bin_w"
    consts[wname] = layer.w
    extra = {}
    if layer.conv:
        for a in ("strides", "pads", "dilations"):
            v = _attr(node, a, None)
            if v is not None:
                extra[a] = list(v)
    if kind == "2bit":
        extra.update(q_hi=layer.quant.hi, q_mul=layer.quant.mul)
    return helper.make_node("BinaryConv" if layer.conv else "BinaryMatMul", [x, wname, *out_params], [out],
                            name=node.name or node.output[0], domain=DOMAIN, input=kind, output=output,
                            **extra)

