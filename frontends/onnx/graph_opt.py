"""Graph-level clean-up before import: constant folding, BatchNormalization
folded into the preceding convolution, identity and dead-node removal.

BatchNormalization after a Conv with constant weights is
    y = (conv(x, W) + b - mean) * s + B,   s = scale / sqrt(var + eps)
      = conv(x, W * s[f]) + ((b - mean) * s + B)
so the Conv takes scaled weights and a new bias, and the BatchNormalization
node disappears: one pass fewer over the activations, and the bias
becomes the GEMM's initial accumulator.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import onnx
from onnx import helper, numpy_helper

from . import qdq_fuse

from . import binary_detect

# Past this size a constant-foldable node is left to the importer (which
# computes it at run time): folding would bloat the library.
FOLD_LIMIT_ELEMENTS = 1 << 24

_NOT_FOLDABLE = {"RandomNormal", "RandomUniform", "RandomNormalLike", "RandomUniformLike", "Multinomial",
                 "Bernoulli"}


@dataclass
class GraphReport:
    folded: int = 0  # nodes evaluated at compile time
    bn_folded: int = 0  # BatchNormalization nodes folded into a Conv
    qdq_fused: int = 0  # DequantizeLinear -> ... -> QuantizeLinear groups made integer ops (qdq_fuse.py)
    removed: int = 0  # Identity / inference Dropout nodes and dead nodes removed
    log: list[str] = field(default_factory=list)

    def text(self) -> str:
        head = (f"constant-folded nodes: {self.folded}\nBatchNormalization folded into Conv: {self.bn_folded}\n"
                f"identity/dead nodes removed: {self.removed}\nQDQ groups fused into integer ops: {self.qdq_fused}\n")
        return head + "".join(f"{line}\n" for line in self.log)


def evaluate_node(node: onnx.NodeProto, feeds: dict[str, np.ndarray], opset: int) -> list[np.ndarray] | None:
    """The outputs of one node on constant inputs (onnx.reference), or None."""
    from onnx.reference import ReferenceEvaluator

    if node.op_type in _NOT_FOLDABLE or node.domain not in ("", "ai.onnx"):
        return None
    vis = [helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(a.dtype), a.shape)
           for n, a in feeds.items()]
    outs = [helper.make_empty_tensor_value_info(n) for n in node.output if n]
    g = helper.make_graph([node], "fold", vis, outs)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    try:
        values = [np.asarray(v) for v in ReferenceEvaluator(m).run(None, feeds)]
    except Exception:  # the reference evaluator raises anything; the importer decides then
        return None
    if any(v.size > FOLD_LIMIT_ELEMENTS or v.dtype == object for v in values):
        return None
    return values


def optimize(model: onnx.ModelProto, opset: int) -> tuple[onnx.ModelProto, GraphReport]:
    """A cleaned-up copy of a shape-inferred model."""
    report = GraphReport()
    g = model.graph
    consts = {i.name: numpy_helper.to_array(i) for i in g.initializer}
    graph_outputs = {o.name for o in g.output}

    # Before folding: folding would turn the weights' DequantizeLinear into float constants.
    fused = qdq_fuse.fuse(model, consts, graph_outputs, opset)
    report.qdq_fused, report.log = fused.groups, fused.log

    nodes = []
    for node in fused.nodes:
        inputs = [n for n in node.input if n]
        if all(n in consts for n in inputs) and (inputs or node.op_type == "Constant"):
            values = evaluate_node(node, {n: consts[n] for n in inputs}, opset)
            if values is not None:
                for name, v in zip([n for n in node.output if n], values):
                    consts[name] = v
                report.folded += 1
                continue
        nodes.append(node)

    nodes = binary_detect.rewrite(model, nodes, consts, graph_outputs, report)  # before BN folds into ±1 weights
    nodes = _fold_batchnorm(nodes, consts, graph_outputs, report)
    nodes = _remove_identities(nodes, graph_outputs, report)
    nodes = _remove_dead(nodes, graph_outputs, report)

    used = {n for node in nodes for n in node.input} | graph_outputs
    new_graph = helper.make_graph(
        nodes, g.name, [i for i in g.input if i.name not in consts], list(g.output),
        [numpy_helper.from_array(np.asarray(v), k) for k, v in consts.items() if k in used],
    )
    out = onnx.ModelProto()
    out.CopyFrom(model)
    out.graph.CopyFrom(new_graph)
    qdq_fuse.declare_domains(out)
    try:
        return onnx.shape_inference.infer_shapes(out, strict_mode=True), report
    except Exception as e:  # a clean-up that upsets shape inference is not worth a failure
        report.log.append(f"clean-up skipped: shape inference rejected the result ({e})")
        return model, GraphReport(log=report.log)


def _consumers(nodes) -> dict[str, list[onnx.NodeProto]]:
    uses: dict[str, list] = {}
    for node in nodes:
        for n in node.input:
            uses.setdefault(n, []).append(node)
    return uses


def _attr(node, name, default):
    for a in node.attribute:
        if a.name == name:
            return helper.get_attribute_value(a)
    return default


def _fold_batchnorm(nodes, consts, graph_outputs, report: GraphReport):
    producer = {o: node for node in nodes for o in node.output}
    uses = _consumers(nodes)
    drop, replace = set(), {}
    for bn in nodes:
        if bn.op_type != "BatchNormalization" or len([o for o in bn.output if o]) != 1:
            continue
        if _attr(bn, "training_mode", 0):
            continue
        conv = producer.get(bn.input[0])
        if conv is None or conv.op_type != "Conv" or id(conv) in drop:
            continue
        if len(uses.get(conv.output[0], [])) != 1 or conv.output[0] in graph_outputs:
            continue  # the un-normalized output is needed elsewhere
        params = [consts.get(n) for n in bn.input[1:5]]
        w = consts.get(conv.input[1])
        b = consts.get(conv.input[2]) if len(conv.input) > 2 and conv.input[2] else None
        if any(p is None for p in params) or w is None or (len(conv.input) > 2 and conv.input[2] and b is None):
            continue
        scale, bias, mean, var = (p.astype(np.float64) for p in params)
        if w.dtype != np.float32 or scale.ndim != 1 or scale.shape[0] != w.shape[0]:
            continue
        eps = float(_attr(bn, "epsilon", 1e-5))
        s = scale / np.sqrt(var + eps)
        w2 = (w.astype(np.float64) * s.reshape(-1, *([1] * (w.ndim - 1)))).astype(np.float32)
        b0 = b.astype(np.float64) if b is not None else np.zeros(w.shape[0])
        b2 = ((b0 - mean) * s + bias).astype(np.float32)
        wname, bname = f"{conv.output[0]}__w_bn", f"{conv.output[0]}__b_bn"
        consts[wname], consts[bname] = w2, b2
        folded = helper.make_node("Conv", [conv.input[0], wname, bname], [bn.output[0]],
                                  name=conv.name or bn.name)
        folded.attribute.extend(conv.attribute)
        replace[id(conv)] = folded
        drop.add(id(bn))
        report.bn_folded += 1
        report.log.append(f"folded BatchNormalization '{bn.name or bn.output[0]}' "
                          f"into Conv '{conv.name or conv.output[0]}'")
    return [replace.get(id(n), n) for n in nodes if id(n) not in drop]


def _is_passthrough(node) -> bool:
    if node.op_type == "Identity":
        return True
    # Dropout at inference is the identity; only when its mask is unused.
    return node.op_type == "Dropout" and len([o for o in node.output if o]) == 1 and (
        len(node.input) < 3 or not node.input[2])


def _remove_identities(nodes, graph_outputs, report: GraphReport):
    rename: dict[str, str] = {}
    kept = []
    for node in nodes:
        if _is_passthrough(node) and node.output[0] not in graph_outputs:
            src = node.input[0]
            rename[node.output[0]] = rename.get(src, src)
            report.removed += 1
            continue
        kept.append(node)
    if not rename:
        return nodes
    out = []
    for node in kept:
        if any(n in rename for n in node.input):
            new = onnx.NodeProto()
            new.CopyFrom(node)
            del new.input[:]
            new.input.extend(rename.get(n, n) for n in node.input)
            node = new
        out.append(node)
    return out


def _remove_dead(nodes, graph_outputs, report: GraphReport):
    live = set(graph_outputs)
    kept = []
    for node in reversed(nodes):
        if any(o in live for o in node.output if o):
            live.update(n for n in node.input if n)
            kept.append(node)
        else:
            report.removed += 1
    return list(reversed(kept))
