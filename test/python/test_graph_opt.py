"""The graph-level clean-up before import (frontends/onnx/graph_opt.py)."""

import numpy as np
import pytest
from helpers import check_against_ort, make_model
from onnx import helper

import qc
from qc.frontends.onnx.graph_opt import optimize


def _conv_bn(conv_bias: bool, extra_use: bool = False):
    rng = np.random.default_rng(11)
    inits = {"w": rng.standard_normal((6, 3, 3, 3)).astype(np.float32),
             "s": rng.standard_normal(6).astype(np.float32), "bb": rng.standard_normal(6).astype(np.float32),
             "m": rng.standard_normal(6).astype(np.float32), "v": (rng.random(6) + 0.5).astype(np.float32)}
    conv_in = ["x", "w"]
    if conv_bias:
        inits["b"] = rng.standard_normal(6).astype(np.float32)
        conv_in.append("b")
    nodes = [helper.make_node("Conv", conv_in, ["c"], pads=[1, 1, 1, 1], name="conv"),
             helper.make_node("BatchNormalization", ["c", "s", "bb", "m", "v"], ["n"], epsilon=1e-3, name="bn"),
             helper.make_node("Relu", ["n"], ["y"])]
    outputs = {"y": (np.float32, [2, 6, 7, 7])}
    if extra_use:
        nodes.append(helper.make_node("Neg", ["c"], ["z"]))
        outputs["z"] = (np.float32, [2, 6, 7, 7])
    return make_model(nodes, {"x": (np.float32, [2, 3, 7, 7])}, outputs, inits)


@pytest.mark.parametrize("conv_bias", [True, False], ids=["with-bias", "no-bias"])
def test_batchnorm_folds_into_conv(conv_bias, tmp_path):
    model = _conv_bn(conv_bias)
    opt, report = optimize(model, 17)
    assert report.bn_folded == 1
    assert [n.op_type for n in opt.graph.node] == ["Conv", "Relu"]
    x = np.random.default_rng(1).standard_normal((2, 3, 7, 7)).astype(np.float32)
    check_against_ort(model, {"x": x}, tmp_path, rtol=1e-4, atol=1e-5)


def test_batchnorm_kept_when_conv_output_is_used_elsewhere(tmp_path):
    model = _conv_bn(True, extra_use=True)
    opt, report = optimize(model, 17)
    assert report.bn_folded == 0
    assert "BatchNormalization" in [n.op_type for n in opt.graph.node]
    x = np.random.default_rng(2).standard_normal((2, 3, 7, 7)).astype(np.float32)
    check_against_ort(model, {"x": x}, tmp_path, rtol=1e-4, atol=1e-5)


def test_identity_dropout_and_dead_nodes_removed(tmp_path):
    nodes = [helper.make_node("Identity", ["x"], ["a"]), helper.make_node("Dropout", ["a"], ["b"]),
             helper.make_node("Relu", ["b"], ["y"]), helper.make_node("Exp", ["x"], ["unused"])]
    model = make_model(nodes, {"x": (np.float32, [4, 5])}, {"y": (np.float32, [4, 5])})
    opt, report = optimize(model, 17)
    assert [n.op_type for n in opt.graph.node] == ["Relu"]
    assert opt.graph.node[0].input[0] == "x"
    assert report.removed == 3
    x = np.random.default_rng(3).standard_normal((4, 5)).astype(np.float32)
    check_against_ort(model, {"x": x}, tmp_path)


def test_constant_subgraph_folded():
    """ConstantOfShape weights (as in the onnx wheel's models) become initializers."""
    shape = np.array([5, 3], np.int64)
    nodes = [helper.make_node("ConstantOfShape", ["shape"], ["w"], value=helper.make_tensor("v", 1, [1], [0.5])),
             helper.make_node("MatMul", ["x", "w"], ["y"])]
    model = make_model(nodes, {"x": (np.float32, [2, 5])}, {"y": (np.float32, [2, 3])}, {"shape": shape})
    opt, report = optimize(model, 17)
    assert report.folded == 1
    assert [n.op_type for n in opt.graph.node] == ["MatMul"]
    (w,) = [i for i in opt.graph.initializer if i.name == "w"]
    assert list(w.dims) == [5, 3]


def test_dump_ir_shows_the_clean_up(tmp_path):
    qc.compile(_conv_bn(True), str(tmp_path / "m.so"), dump_ir=str(tmp_path / "dump"))
    text = (tmp_path / "dump" / "onnx-graph.txt").read_text()
    assert "BatchNormalization folded into Conv: 1" in text
    assert "folded BatchNormalization 'bn' into Conv 'conv'" in text
