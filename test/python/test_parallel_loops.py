"""qc-parallel-loops: the loop nests that are not GEMMs (depthwise
convolution, pooling, elementwise ops, transposes, row reductions) split
over the context's threads. Each chunk computes its slice exactly as one
thread would, so every thread count gives the same bits, and those bits
match onnxruntime."""

import re
from pathlib import Path

import numpy as np
import pytest
from helpers import make_model, ort_run
from onnx import helper

import qc
from qc.passes.parallel_loops import SERIAL_WORK

ROOT = Path(__file__).resolve().parents[2]


def _block():
    """A ShuffleNet-like block: every op but the 1x1 conv is a loop nest."""
    rng = np.random.default_rng(11)
    c, h = 48, 56
    inits = {
        "w1": (rng.standard_normal((c, c, 1, 1)) * 0.2).astype(np.float32),
        "wd": (rng.standard_normal((c, 1, 3, 3)) * 0.3).astype(np.float32),
        "shape5": np.array([1, 4, c // 4, h, h], np.int64),
        "shape4": np.array([1, c, h, h], np.int64),
    }
    nodes = [
        helper.make_node("Conv", ["x", "w1"], ["a"]),
        helper.make_node("Relu", ["a"], ["r"]),
        helper.make_node("Reshape", ["r", "shape5"], ["g"]),  # channel shuffle: a transpose
        helper.make_node("Transpose", ["g"], ["t"], perm=[0, 2, 1, 3, 4]),
        helper.make_node("Reshape", ["t", "shape4"], ["s"]),
        helper.make_node("Conv", ["s", "wd"], ["d"], group=c, pads=[1, 1, 1, 1]),  # depthwise
        helper.make_node("Add", ["d", "x"], ["e"]),
        helper.make_node("MaxPool", ["e"], ["p"], kernel_shape=[3, 3], strides=[2, 2]),
        helper.make_node("Softmax", ["p"], ["y"], axis=-1),  # a reduction along each row
    ]
    return make_model(nodes, {"x": (np.float32, [1, c, h, h])}, {"y": (np.float32, [1, c, 27, 27])}, inits)


@pytest.fixture(scope="module")
def block_lib(tmp_path_factory):
    lib = str(tmp_path_factory.mktemp("par") / "block.so")
    qc.compile(_block(), lib)
    return lib


def test_loops_are_split_and_listed_for_the_runtime(tmp_path):
    ir_text = qc.compile(_block(), emit="gemm")
    ranged = set(re.findall(r"func\.func @(qc_model_part\d+)_range\(", ir_text))
    # the transpose, the depthwise conv, the add, the pool and the softmax
    # (the Relu is in the GEMM's epilogue; the pad's fill and copy count too).
    assert len(ranged) >= 5, ranged
    for name in ranged:
        assert f"call @qc_par_{name[len('qc_'):]}(" in ir_text
        assert f'name = "{name}"' in ir_text


@pytest.mark.parametrize("threads", [2, 3, 5])
def test_same_bits_on_any_thread_count(block_lib, threads):
    x = np.random.default_rng(3).standard_normal((1, 48, 56, 56)).astype(np.float32)
    one = qc.load(block_lib).run({"x": x})["y"]
    many = qc.load(block_lib, threads=threads).run({"x": x})["y"]
    np.testing.assert_array_equal(many, one)
    ref = ort_run(_block(), {"x": x})["y"]
    np.testing.assert_allclose(one, ref, rtol=1e-4, atol=1e-6)


def test_shuffle_writes_the_padded_input():
    """The channel shuffle (a transpose) writes the interior of the depthwise
    convolution's padded input (qc-pad-into-producer): no copy loop."""
    text = qc.compile(_block(), emit="gemm")
    assert text.count("linalg.transpose") == 1 and "linalg.copy" not in text


def test_small_loops_stay_serial():
    model = make_model([helper.make_node("Relu", ["x"], ["y"])], {"x": (np.float32, [8, 100])},
                       {"y": (np.float32, [8, 100])})
    ir_text = qc.compile(model, emit="gemm")
    assert "_range(" not in ir_text and "qc.parallel_kernels" not in ir_text


def test_threshold_is_the_runtime_s():
    header = (ROOT / "runtime" / "qc_threads.h").read_text()
    (shift,) = re.findall(r"#define QC_SERIAL_WORK \(1 << (\d+)\)", header)
    assert SERIAL_WORK == 1 << int(shift)
