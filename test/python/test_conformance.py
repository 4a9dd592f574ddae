"""ONNX's node conformance suite through qc, and the pieces it is built from:
the ONNX backend (qc.onnx_backend), merging cases, binding parameter inputs,
comparing outputs, and the expected-failures bookkeeping."""

from __future__ import annotations

import re
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

import qc
import qc.onnx_backend as backend

CONFORMANCE = Path(__file__).resolve().parents[1] / "conformance"
sys.path.insert(0, str(CONFORMANCE))

import node_cases as nc  # noqa: E402
import run_node_tests as runner  # noqa: E402


def test_node_conformance_suite():
    """All ~1,900 node tests; fails on a test that is not an expected failure."""
    proc = subprocess.run([sys.executable, str(CONFORMANCE / "run_node_tests.py"), "--jobs", "2"],
                          capture_output=True, text=True, timeout=1200)
    print(proc.stdout, proc.stderr)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert re.search(r"node tests: \d+ passed, \d+ failed of \d+", proc.stdout), proc.stdout
    newly = re.search(r"^\d+ test\(s\) newly pass.*$", proc.stdout, re.M)
    if newly:  # not a failure, but the list must be updated: say so visibly
        warnings.warn(f"{newly.group(0)} (the runner prints them; or run it with --update)", stacklevel=1)


# ---------------------------------------------------------------- qc.onnx_backend


def _binary_model(op: str, shape=(2, 3), opset: int = 17) -> onnx.ModelProto:
    vi = lambda n: helper.make_tensor_value_info(n, TensorProto.FLOAT, shape)  # noqa: E731
    graph = helper.make_graph([helper.make_node(op, ["x", "y"], ["z"])], op, [vi("x"), vi("y")], [vi("z")])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def test_backend_prepare_runs_positional_and_named_inputs():
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((2, 3)).astype(np.float32), rng.standard_normal((2, 3)).astype(np.float32)
    rep = backend.prepare(_binary_model("Sub"))
    try:
        (z,) = rep.run([x, y])
        np.testing.assert_array_equal(z, x - y)
        np.testing.assert_array_equal(rep.run({"x": y, "y": x}).z, y - x)  # outputs by name too
        with pytest.raises(qc.runtime.InputError, match="takes 2 input"):
            rep.run([x])
    finally:
        rep.close()


def test_backend_run_model_and_run_node():
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    (z,) = backend.run_model(_binary_model("Mul"), [x, x])
    np.testing.assert_array_equal(z, x * x)
    (m,) = backend.run_node(helper.make_node("Max", ["a", "b"], ["c"]), [x, 3 - x])
    np.testing.assert_array_equal(m, np.maximum(x, 3 - x))
    (s,) = backend.run_node(helper.make_node("Sum", ["a", "b"], ["c"]), [x, x],
                            outputs_info=[(np.dtype(np.float32), (2, 3))])
    np.testing.assert_array_equal(s, 2 * x)


def test_backend_devices_and_errors():
    assert backend.supports_device("CPU")
    assert not backend.supports_device("CUDA")
    assert not backend.supports_device("TPU")
    with pytest.raises(qc.OptionError, match="CPU only"):
        backend.prepare(_binary_model("Add"), "CUDA")
    model = _binary_model("Add")
    model.graph.node[0].op_type = "NoSuchOp"
    model.graph.node[0].domain = "qc.test"
    model.opset_import.append(helper.make_opsetid("qc.test", 1))
    with pytest.raises(qc.UnsupportedOp, match="domain 'qc.test'"):
        backend.prepare(model)


# ---------------------------------------------------------------- cases


def _case(id_: int, name: str, model: onnx.ModelProto, inputs, outputs, rtol=1e-3, atol=1e-7) -> nc.Case:
    return nc.Case(id_, name, model.SerializeToString(), tuple(inputs), tuple(outputs), rtol, atol)


def test_merged_cases_keep_their_own_names_and_values():
    """Both cases name their values x, y, z: the merge prefixes them apart."""
    rng = np.random.default_rng(1)
    x, y = rng.standard_normal((2, 3)).astype(np.float32), rng.standard_normal((2, 3)).astype(np.float32)
    add = _case(7, "test_add", _binary_model("Add"), [x, y], [x + y])
    sub = _case(8, "test_sub", _binary_model("Sub"), [y, x], [y - x])
    assert nc.group_key(add) == nc.group_key(sub) and nc.mergeable(add)
    merged = nc.merge([add, sub])
    assert [i.name for i in merged.graph.input] == ["q7_x", "q7_y", "q8_x", "q8_y"]
    assert [n.name for n in merged.graph.node] == ["q7_Add", "q8_Sub"]
    outs = backend.run_model(merged, [x, y, y, x])
    assert nc.compare(add, [outs.q7_z], ["z"]) is None
    assert nc.compare(sub, [outs.q8_z], ["z"]) is None
    assert nc.case_of_message("node 'q8_Sub' (Sub): bad", [add, sub]) is sub
    assert nc.case_of_message("no prefix here", [add, sub]) is None


def test_bind_parameters_binds_only_the_failing_ops_parameter_inputs():
    """Reshape(data, shape): shape becomes an initializer, data stays an input."""
    graph = helper.make_graph(
        [helper.make_node("Reshape", ["data", "shape"], ["r"]), helper.make_node("Neg", ["r"], ["y"])], "g",
        [helper.make_tensor_value_info("data", TensorProto.FLOAT, [2, 3]),
         helper.make_tensor_value_info("shape", TensorProto.INT64, [2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [3, 2])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    data = np.arange(6, dtype=np.float32).reshape(2, 3)
    case = _case(0, "test_reshape", model, [data, np.array([3, 2], np.int64)], [-data.reshape(3, 2)])
    message = "node 'n' (Reshape): the shape input must be known at compile time (a constant, ...)"
    assert nc.parameter_op(message) == "Reshape"
    assert nc.parameter_op("node 'n' (Reshape): op type is not supported") is None
    assert nc.bind_parameters(case, "Neg") is None  # Neg has no parameter input from the graph
    bound = nc.bind_parameters(case, "Reshape")
    assert bound.bound == ("shape",) and len(bound.inputs) == 1
    assert [i.name for i in bound.proto().graph.input] == ["data"]
    (y,) = backend.run_model(bound.proto(), list(bound.inputs))
    assert nc.compare(bound, [y], ["y"]) is None


def test_compare_reports_dtype_shape_and_values():
    want = np.array([1.0, 2.0, 3.0], np.float32)
    case = _case(0, "t", _binary_model("Add"), [], [want])
    assert nc.compare(case, [want + 1e-4], ["z"]) is None  # within rtol 1e-3
    assert "is float64, expected float32" in nc.compare(case, [want.astype(np.float64)], ["z"])
    assert "shape [1, 3], expected [3]" in nc.compare(case, [want[None]], ["z"])
    assert "1 of 3 elements differ" in nc.compare(case, [np.array([1, 2, 4], np.float32)], ["z"])
    nan = np.array([np.nan], np.float32)
    assert nc.compare(_case(0, "t", _binary_model("Add"), [], [nan]), [nan], ["z"]) is None


def test_expected_failures_file_round_trip_and_diff(tmp_path):
    path = tmp_path / "expected.txt"
    runner.write_expected({"test_b": "no B", "test_a": "no A"}, 5, "1.0", path)
    text = path.read_text()
    assert text.index("test_a  # no A") < text.index("test_b  # no B")
    expected = runner.read_expected(path)
    assert expected == {"test_a": "no A", "test_b": "no B"}
    verdicts = {"test_a": {"pass": True, "reason": ""}, "test_b": {"pass": False, "reason": "no B"},
                "test_c": {"pass": False, "reason": "new"}, "test_d": {"pass": True, "reason": ""}}
    new_fail, new_pass = runner.diff_expected(verdicts, expected)
    assert new_fail == {"test_c": "new"} and new_pass == ["test_a"]


def test_the_expected_failures_list_names_real_tests_with_reasons():
    expected = runner.read_expected()
    assert expected, "test/conformance/expected_failures.txt is empty"
    assert all(name.startswith("test_") and reason for name, reason in expected.items())


# ---------------------------------------------------------------- the runner's machinery


class _Abort:
    """Unpickled by the worker, it aborts the worker (as an MLIR assertion would)."""

    def __reduce__(self):
        import os

        return (os.abort, ())


class _Sleep:
    def __reduce__(self):
        import time

        return (time.sleep, (60,))


def test_worker_crash_and_hang_are_reported_and_the_worker_restarts():
    w = runner.Worker()
    try:
        msgs, crash = w.call(_Abort(), timeout=120)
        assert msgs == [] and crash.startswith("crashed (SIGABRT)")
        msgs, crash = w.call(_Sleep(), timeout=2)
        assert msgs == [] and crash == "timed out after 2 s"
        x = np.ones((2, 3), np.float32)
        case = _case(3, "test_add", _binary_model("Add"), [x, x], [2 * x])
        msgs, crash = w.call(("import", [case]), timeout=120)  # a fresh worker
        assert crash is None and msgs == [("case", "test_add", runner.verdict(True, "import"))]
    finally:
        w.close()


def test_a_failing_batch_is_split_at_the_case_its_diagnostic_names_else_in_halves():
    x = np.ones((2, 3), np.float32)
    cases = [_case(i, f"test_{i}", _binary_model("Add"), [x, x], [2 * x]) for i in range(5)]
    run = runner.Run([], batch=40, verbose=False)
    follow = run._handle_batch(("batch", cases), [("batch-error", "compile", "node 'q3_Add' (Add): bad")], None)
    assert [[c.id for c in job[1]] for job in follow] == [[3], [0, 1, 2, 4]]
    follow = run._handle_batch(("batch", cases), [], "crashed (SIGSEGV): no message")
    assert [[c.id for c in job[1]] for job in follow] == [[0, 1], [2, 3, 4]]
    assert run._handle_batch(("batch", cases[:1]), [("batch-error", "compile", "pass failed")], None) == []
    assert run.verdicts["test_0"] == runner.verdict(False, "compile", "pass failed")
    assert run.compiles == 3
