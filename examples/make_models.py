"""Writes the example models and their inputs (fixed seeds, no downloads).

    python examples/make_models.py [OUT_DIR]     (default: examples/)

mlp.onnx        4x256 → 512 (ReLU) → 10 (softmax): MatMul, Add, Relu, Gemm, Softmax
attention.onnx  single-head-group self-attention over 16 tokens of width 64,
                4 heads: MatMul, Reshape, Transpose, Div, Softmax
mobilenet_block.onnx  an inverted residual block (MobileNetV2): 1x1 expand,
                3x3 depthwise, 1x1 project, BatchNorm, ReLU6 (Clip), residual Add
resnet_block.onnx     a ResNet basic block: two 3x3 convolutions with
                BatchNorm and ReLU, residual Add
transformer_encoder.onnx  a pre-norm transformer encoder layer: LayerNorm,
                4-head self-attention, GELU (Erf) feed-forward, residual Adds
Each model X gets X.inputs.npz with one array per input name.
"""

from __future__ import annotations

import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17
IR_VERSION = 8  # readable by the onnxruntime used as the reference


def _model(name, nodes, inputs, outputs, weights, opset=OPSET):
    graph = helper.make_graph(
        nodes, name,
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in inputs],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in outputs],
        [numpy_helper.from_array(v, k) for k, v in weights.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], ir_version=IR_VERSION)
    onnx.checker.check_model(model, full_check=True)
    return model


def mlp(rng):
    w = lambda *s: (rng.standard_normal(s) / np.sqrt(s[0])).astype(np.float32)  # noqa: E731
    weights = {"w1": w(256, 512), "b1": (0.1 * rng.standard_normal(512)).astype(np.float32),
               "w2t": w(10, 512), "b2": (0.1 * rng.standard_normal(10)).astype(np.float32)}
    nodes = [
        helper.make_node("MatMul", ["x", "w1"], ["h"], name="fc1"),
        helper.make_node("Add", ["h", "b1"], ["hb"], name="fc1_bias"),
        helper.make_node("Relu", ["hb"], ["a"], name="relu"),
        helper.make_node("Gemm", ["a", "w2t", "b2"], ["logits"], name="fc2", transB=1),
        helper.make_node("Softmax", ["logits"], ["probs"], name="softmax", axis=-1),
    ]
    model = _model("mlp", nodes, [("x", [4, 256])], [("probs", [4, 10])], weights)
    return model, {"x": rng.standard_normal((4, 256)).astype(np.float32)}


def attention(rng):
    s, d, h = 16, 64, 4
    hd = d // h
    w = lambda: (rng.standard_normal((d, d)) / np.sqrt(d)).astype(np.float32)  # noqa: E731
    weights = {"wq": w(), "wk": w(), "wv": w(), "wo": w(),
               "heads": np.array([s, h, hd], np.int64), "merged": np.array([s, d], np.int64),
               "scale": np.array(np.sqrt(hd), np.float32)}
    nodes = []
    for n in "qkv":
        nodes += [
            helper.make_node("MatMul", ["x", f"w{n}"], [f"{n}0"], name=f"proj_{n}"),
            helper.make_node("Reshape", [f"{n}0", "heads"], [f"{n}1"], name=f"split_heads_{n}"),
            helper.make_node("Transpose", [f"{n}1"], [f"{n}2"], name=f"heads_first_{n}",
                             perm=[1, 2, 0] if n == "k" else [1, 0, 2]),
        ]
    nodes += [
        helper.make_node("MatMul", ["q2", "k2"], ["scores0"], name="scores"),  # [h, s, hd] x [h, hd, s]
        helper.make_node("Div", ["scores0", "scale"], ["scores1"], name="scale"),
        helper.make_node("Softmax", ["scores1"], ["p"], name="softmax", axis=-1),
        helper.make_node("MatMul", ["p", "v2"], ["ctx0"], name="context"),
        helper.make_node("Transpose", ["ctx0"], ["ctx1"], name="tokens_first", perm=[1, 0, 2]),
        helper.make_node("Reshape", ["ctx1", "merged"], ["ctx2"], name="merge_heads"),
        helper.make_node("MatMul", ["ctx2", "wo"], ["y"], name="proj_out"),
    ]
    model = _model("attention", nodes, [("x", [s, d])], [("y", [s, d])], weights)
    return model, {"x": rng.standard_normal((s, d)).astype(np.float32)}


def _bn(rng, prefix, c, weights):
    """BatchNormalization parameters (inference statistics) for c channels."""
    weights[f"{prefix}_s"] = (1 + 0.1 * rng.standard_normal(c)).astype(np.float32)
    weights[f"{prefix}_b"] = (0.1 * rng.standard_normal(c)).astype(np.float32)
    weights[f"{prefix}_m"] = (0.1 * rng.standard_normal(c)).astype(np.float32)
    weights[f"{prefix}_v"] = (1 + 0.1 * rng.random(c)).astype(np.float32)
    return [f"{prefix}_s", f"{prefix}_b", f"{prefix}_m", f"{prefix}_v"]


def _conv_w(rng, f, c, k):
    return (rng.standard_normal((f, c, k, k)) * np.sqrt(2.0 / (c * k * k))).astype(np.float32)


def mobilenet_block(rng, c=32, e=96, hw=56):
    w = {"w_exp": _conv_w(rng, e, c, 1), "w_dw": _conv_w(rng, e, 1, 3), "w_proj": _conv_w(rng, c, e, 1),
         "six": np.array(6.0, np.float32), "zero": np.array(0.0, np.float32)}
    nodes = [
        helper.make_node("Conv", ["x", "w_exp"], ["e0"], name="expand"),
        helper.make_node("BatchNormalization", ["e0", *_bn(rng, "bn1", e, w)], ["e1"], name="expand_bn"),
        helper.make_node("Clip", ["e1", "zero", "six"], ["e2"], name="expand_relu6"),
        helper.make_node("Conv", ["e2", "w_dw"], ["d0"], name="depthwise", group=e, pads=[1, 1, 1, 1]),
        helper.make_node("BatchNormalization", ["d0", *_bn(rng, "bn2", e, w)], ["d1"], name="depthwise_bn"),
        helper.make_node("Clip", ["d1", "zero", "six"], ["d2"], name="depthwise_relu6"),
        helper.make_node("Conv", ["d2", "w_proj"], ["p0"], name="project"),
        helper.make_node("BatchNormalization", ["p0", *_bn(rng, "bn3", c, w)], ["p1"], name="project_bn"),
        helper.make_node("Add", ["x", "p1"], ["y"], name="residual"),
    ]
    model = _model("mobilenet_block", nodes, [("x", [1, c, hw, hw])], [("y", [1, c, hw, hw])], w)
    return model, {"x": rng.standard_normal((1, c, hw, hw)).astype(np.float32)}


def resnet_block(rng, c=64, hw=56):
    w = {"w1": _conv_w(rng, c, c, 3), "w2": _conv_w(rng, c, c, 3)}
    nodes = [
        helper.make_node("Conv", ["x", "w1"], ["a0"], name="conv1", pads=[1, 1, 1, 1]),
        helper.make_node("BatchNormalization", ["a0", *_bn(rng, "bn1", c, w)], ["a1"], name="bn1"),
        helper.make_node("Relu", ["a1"], ["a2"], name="relu1"),
        helper.make_node("Conv", ["a2", "w2"], ["b0"], name="conv2", pads=[1, 1, 1, 1]),
        helper.make_node("BatchNormalization", ["b0", *_bn(rng, "bn2", c, w)], ["b1"], name="bn2"),
        helper.make_node("Add", ["b1", "x"], ["s"], name="residual"),
        helper.make_node("Relu", ["s"], ["y"], name="relu2"),
    ]
    model = _model("resnet_block", nodes, [("x", [1, c, hw, hw])], [("y", [1, c, hw, hw])], w)
    return model, {"x": rng.standard_normal((1, c, hw, hw)).astype(np.float32)}


def transformer_encoder(rng):
    s, d, h, ff = 64, 128, 4, 512
    hd = d // h
    mat = lambda a, b: (rng.standard_normal((a, b)) / np.sqrt(a)).astype(np.float32)  # noqa: E731
    w = {"wq": mat(d, d), "wk": mat(d, d), "wv": mat(d, d), "wo": mat(d, d), "w1": mat(d, ff), "w2": mat(ff, d),
         "b1": (0.1 * rng.standard_normal(ff)).astype(np.float32), "b2": (0.1 * rng.standard_normal(d)).astype(np.float32),
         "gamma1": np.ones(d, np.float32), "be1": np.zeros(d, np.float32),
         "gamma2": np.ones(d, np.float32), "be2": np.zeros(d, np.float32),
         "heads": np.array([s, h, hd], np.int64), "merged": np.array([s, d], np.int64),
         "scale": np.array(np.sqrt(hd), np.float32), "sqrt2": np.array(np.sqrt(2.0), np.float32),
         "one": np.array(1.0, np.float32), "half": np.array(0.5, np.float32)}
    nodes = [helper.make_node("LayerNormalization", ["x", "gamma1", "be1"], ["n1"], name="ln1", axis=-1, epsilon=1e-5)]
    for n in "qkv":
        nodes += [
            helper.make_node("MatMul", ["n1", f"w{n}"], [f"{n}0"], name=f"proj_{n}"),
            helper.make_node("Reshape", [f"{n}0", "heads"], [f"{n}1"], name=f"split_heads_{n}"),
            helper.make_node("Transpose", [f"{n}1"], [f"{n}2"], name=f"heads_first_{n}",
                             perm=[1, 2, 0] if n == "k" else [1, 0, 2]),
        ]
    nodes += [
        helper.make_node("MatMul", ["q2", "k2"], ["sc0"], name="scores"),
        helper.make_node("Div", ["sc0", "scale"], ["sc1"], name="scale_scores"),
        helper.make_node("Softmax", ["sc1"], ["p"], name="softmax", axis=-1),
        helper.make_node("MatMul", ["p", "v2"], ["c0"], name="context"),
        helper.make_node("Transpose", ["c0"], ["c1"], name="tokens_first", perm=[1, 0, 2]),
        helper.make_node("Reshape", ["c1", "merged"], ["c2"], name="merge_heads"),
        helper.make_node("MatMul", ["c2", "wo"], ["att"], name="proj_out"),
        helper.make_node("Add", ["x", "att"], ["r1"], name="residual1"),
        helper.make_node("LayerNormalization", ["r1", "gamma2", "be2"], ["n2"], name="ln2", axis=-1, epsilon=1e-5),
        helper.make_node("MatMul", ["n2", "w1"], ["f0"], name="ff1"),
        helper.make_node("Add", ["f0", "b1"], ["f1"], name="ff1_bias"),
        # GELU as exported by PyTorch: 0.5 * x * (1 + erf(x / sqrt(2)))
        helper.make_node("Div", ["f1", "sqrt2"], ["g0"], name="gelu_scale"),
        helper.make_node("Erf", ["g0"], ["g1"], name="gelu_erf"),
        helper.make_node("Add", ["g1", "one"], ["g2"], name="gelu_add"),
        helper.make_node("Mul", ["f1", "g2"], ["g3"], name="gelu_mul"),
        helper.make_node("Mul", ["g3", "half"], ["g4"], name="gelu_half"),
        helper.make_node("MatMul", ["g4", "w2"], ["f2"], name="ff2"),
        helper.make_node("Add", ["f2", "b2"], ["f3"], name="ff2_bias"),
        helper.make_node("Add", ["r1", "f3"], ["y"], name="residual2"),
    ]
    model = _model("transformer_encoder", nodes, [("x", [s, d])], [("y", [s, d])], w)
    return model, {"x": rng.standard_normal((s, d)).astype(np.float32)}


EXAMPLES = {"mlp": mlp, "attention": attention, "mobilenet_block": mobilenet_block,
            "resnet_block": resnet_block, "transformer_encoder": transformer_encoder}


def main(out_dir: str) -> None:
    os.makedirs(out_dir, exist_ok=True)
    for i, (name, make) in enumerate(EXAMPLES.items()):
        model, inputs = make(np.random.default_rng(i))
        onnx.save(model, os.path.join(out_dir, f"{name}.onnx"))
        np.savez(os.path.join(out_dir, f"{name}.inputs.npz"), **inputs)
    print(f"wrote {', '.join(f'{n}.onnx' for n in EXAMPLES)} to {out_dir}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__)))
