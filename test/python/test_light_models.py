"""The real-architecture models that ship inside the onnx wheel
(onnx/backend/test/data/light/: opset 9, IR version 3), compiled by qc and
compared with onnxruntime.

Their weights are ConstantOfShape fills (every weight 0.02), so the outputs
stored beside them are a near-constant softmax that proves little. Each fill
is replaced by a fixed-seed random initializer of its shape, scaled by what
consumes it so that activations stay O(1) through the depth:
  conv and Gemm weights: He initialization, N(0, 2 / fan_in);
  BatchNormalization scale and variance, per-channel multipliers: U(0.5, 1.5);
  biases, BatchNormalization mean and shift, per-channel addends: U(-0.1, 0.1).
The logits (the input of the final Softmax) become a second output: with
random weights the softmax is often saturated, the logits never are
(DenseNet-121 has no Softmax: its output is the logits).

The nine compiles run two at a time in worker processes (each compile is
single-threaded; see LANES) while the main process runs onnxruntime. Each test prints
its model's compile time per stage; ResNet-50 must compile in under a minute.

Tolerances: the logits within rtol 1e-4 and atol 1e-4 * max |logit| (sums of
thousands of products in another order than onnxruntime's), the
probabilities within atol 1e-5.
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
import os
import tempfile

import numpy as np
import onnx
import pytest
from helpers import ort_run
from onnx import helper, numpy_helper

LIGHT_DIR = os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data", "light")
# Two workers, each compiling its lane in order. The models with the largest
# weights (VGG-19: 143 M parameters, a 6.4 GB compile; ZFNet-512, AlexNet)
# share a lane, so that no two of them are in memory at once; the lanes take
# about the same time.
LANES = (["vgg19", "zfnet512", "bvlc_alexnet", "shufflenet", "squeezenet"],
         ["densenet121", "inception_v2", "inception_v1", "resnet50"])
MODELS = [name for lane in zip(*LANES) for name in lane] + LANES[0][len(LANES[1]):]
RESNET50_BUDGET_S = 60.0


def _uses(graph: onnx.GraphProto) -> dict[str, list[tuple[onnx.NodeProto, int]]]:
    uses: dict[str, list] = {}
    for node in graph.node:
        for pos, name in enumerate(node.input):
            uses.setdefault(name, []).append((node, pos))
    return uses


def _computing_use(name: str, uses) -> tuple[onnx.NodeProto, int]:
    """The op that computes with `name`, past Unsqueeze / Reshape views of it."""
    while True:
        node, pos = uses[name][0]
        if node.op_type not in ("Unsqueeze", "Reshape") or pos != 0:
            return node, pos
        name = node.output[0]


def random_weight(shape: list[int], node: onnx.NodeProto, pos: int, rng) -> np.ndarray:
    """A weight for input `pos` of `node`, scaled for that use (module docstring)."""
    op = node.op_type
    if (op, pos) in (("Conv", 1), ("Gemm", 1)):
        trans_b = any(a.name == "transB" and a.i for a in node.attribute)
        # Conv's filter is M x C x kH x kW; Gemm's B is K x N, or N x K with transB.
        fan_in = shape[0] if op == "Gemm" and not trans_b else int(np.prod(shape)) // shape[0]
        return rng.standard_normal(shape, dtype=np.float32) * np.float32(np.sqrt(2.0 / fan_in))
    if (op == "BatchNormalization" and pos in (1, 4)) or op == "Mul":
        return rng.random(shape, dtype=np.float32) + np.float32(0.5)  # U(0.5, 1.5)
    return (rng.random(shape, dtype=np.float32) - np.float32(0.5)) * np.float32(0.2)  # U(-0.1, 0.1)


def with_random_weights(model: onnx.ModelProto, seed: int) -> onnx.ModelProto:
    """The model with every ConstantOfShape weight fill replaced by a random
    initializer (an IR-3 initializer is also a graph input), the fills' shape
    initializers dropped, and the logits added as an output."""
    rng = np.random.default_rng(seed)
    graph = model.graph
    consts = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    uses = _uses(graph)
    nodes = []
    for node in graph.node:
        if node.op_type != "ConstantOfShape" or node.input[0] not in consts:
            nodes.append(node)
            continue
        shape = [int(d) for d in consts[node.input[0]]]
        w = random_weight(shape, *_computing_use(node.output[0], uses), rng)
        graph.initializer.append(numpy_helper.from_array(w, node.output[0]))
        graph.input.append(helper.make_tensor_value_info(node.output[0], onnx.TensorProto.FLOAT, shape))
    del graph.node[:]
    graph.node.extend(nodes)
    used = {name for node in nodes for name in node.input}
    for field in (graph.initializer, graph.input):
        live = [v for v in field if v.name in used]
        del field[:]
        field.extend(live)
    softmax = [n for n in nodes if n.op_type == "Softmax" and n.output[0] in {o.name for o in graph.output}]
    if softmax:  # DenseNet-121 ends at its logits already
        inferred = onnx.shape_inference.infer_shapes(model)
        graph.output.extend(v for v in inferred.graph.value_info if v.name == softmax[0].input[0])
    return model


def load_light(name: str) -> tuple[onnx.ModelProto, str, np.ndarray]:
    """The model with random weights, its data input's name and a fixed-seed input."""
    model = with_random_weights(onnx.load(os.path.join(LIGHT_DIR, f"light_{name}.onnx")), seed=0)
    inits = {t.name for t in model.graph.initializer}
    (data,) = [vi for vi in model.graph.input if vi.name not in inits]
    shape = [d.dim_value for d in data.type.tensor_type.shape.dim]
    x = np.random.default_rng(1).uniform(0.0, 1.0, shape).astype(np.float32)  # an image in [0, 1)
    return model, data.name, x


def compile_light(name: str, directory: str) -> tuple[str, dict[str, float]]:
    """Runs in a worker: compiles the model; returns the library and the stage times."""
    from qc.session import compile_model

    model, _, _ = load_light(name)
    library = os.path.join(directory, f"{name}.so")
    result = compile_model(model, library)
    return library, result.timings


@pytest.fixture(scope="module")
def compiled():
    """name -> future of (library, timings); all nine are submitted at once."""
    spawn = multiprocessing.get_context("spawn")
    with tempfile.TemporaryDirectory(prefix="qc-light-") as directory, \
            cf.ProcessPoolExecutor(max_workers=1, mp_context=spawn) as lane0, \
            cf.ProcessPoolExecutor(max_workers=1, mp_context=spawn) as lane1:
        yield {name: pool.submit(compile_light, name, directory)
               for pool, lane in ((lane0, LANES[0]), (lane1, LANES[1])) for name in lane}


def _stages(timings: dict[str, float]) -> str:
    return ", ".join(f"{stage} {t:.1f}" for stage, t in timings.items())


@pytest.mark.parametrize("name", MODELS)
def test_light_model_matches_onnxruntime(name, compiled, capsys):
    import qc

    model, data_name, x = load_light(name)
    want = ort_run(model, {data_name: x})
    library, timings = compiled[name].result()
    total = sum(timings.values())
    with capsys.disabled():
        print(f"\n  light_{name}: compiled in {total:.1f} s ({_stages(timings)})", end="")
    with qc.load(library) as m:
        got = m.run({data_name: x})
    probabilities = {n.output[0] for n in model.graph.node if n.op_type == "Softmax"}
    assert len(got) == len(want) == 2 - (name == "densenet121")
    for out, w in want.items():
        if out in probabilities:
            np.testing.assert_allclose(got[out], w, rtol=1e-3, atol=1e-5, err_msg=out)
        else:
            scale = float(np.abs(w).max())
            np.testing.assert_allclose(got[out], w, rtol=1e-4, atol=1e-4 * scale, err_msg=out)
    if name == "resnet50":
        assert total < RESNET50_BUDGET_S, f"ResNet-50 compiled in {total:.0f} s: {_stages(timings)}"
