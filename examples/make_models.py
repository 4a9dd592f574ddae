"""Writes the example models and their inputs (fixed seeds, no downloads).

    python examples/make_models.py [OUT_DIR]     (default: examples/)

mlp.onnx        4x256 → 512 (ReLU) → 10 (softmax): MatMul, Add, Relu, Gemm, Softmax
attention.onnx  single-head-group self-attention over 16 tokens of width 64,
                4 heads: MatMul, Reshape, Transpose, Div, Softmax
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


def _model(name, nodes, inputs, outputs, weights):
    graph = helper.make_graph(
        nodes, name,
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in inputs],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in outputs],
        [numpy_helper.from_array(v, k) for k, v in weights.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], ir_version=IR_VERSION)
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


EXAMPLES = {"mlp": mlp, "attention": attention}


def main(out_dir: str) -> None:
    os.makedirs(out_dir, exist_ok=True)
    for i, (name, make) in enumerate(EXAMPLES.items()):
        model, inputs = make(np.random.default_rng(i))
        onnx.save(model, os.path.join(out_dir, f"{name}.onnx"))
        np.savez(os.path.join(out_dir, f"{name}.inputs.npz"), **inputs)
    print(f"wrote {', '.join(f'{n}.onnx' for n in EXAMPLES)} to {out_dir}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__)))
