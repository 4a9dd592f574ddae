"""Graph outputs that alias: the same value twice, an input, a constant."""

import numpy as np
from helpers import check_against_ort, make_model
from onnx import helper


def test_identical_nodes_as_two_outputs(tmp_path):
    """CSE merges the two Relu nodes; each output still gets its own buffer."""
    model = make_model(
        [helper.make_node("Relu", ["x"], ["a"]), helper.make_node("Relu", ["x"], ["b"]),
         helper.make_node("Identity", ["a"], ["c"])],
        {"x": (np.float32, [3, 5])},
        {"a": (np.float32, [3, 5]), "b": (np.float32, [3, 5]), "c": (np.float32, [3, 5])},
    )
    x = np.random.default_rng(0).standard_normal((3, 5)).astype(np.float32)
    got = check_against_ort(model, {"x": x}, tmp_path)
    assert not np.shares_memory(got["a"], got["b"])
