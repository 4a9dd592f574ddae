"""NaN and infinity in inputs (the policy in runtime/model.py's docstring).

By default they are IEEE values: they go through the model's arithmetic as
through onnxruntime's, so NaN and ±Inf land in the same output positions.
With check_finite (qc.load(..., check_finite=True), `qc run --check-finite`)
a floating-point input holding them is an InputError naming the input and
counting the values.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers import make_model, ort_run
from onnx import helper

import qc
from qc.runtime import InputError

F32 = np.float32
NAN, INF = np.nan, np.inf
QC = str(Path(sys.executable).parent / "qc")

# Ops whose NaN/Inf behaviour ONNX pins down (IEEE arithmetic and the math
# library's special values), so both engines must agree position by position.
UNARY = ["Exp", "Log", "Sqrt", "Tanh", "Sigmoid", "Relu", "Abs", "Neg", "Floor", "Reciprocal", "Erf"]
BINARY = ["Add", "Sub", "Mul", "Div", "Max", "Min"]
W = ((np.arange(32) - 15.5) / 8).astype(F32).reshape(8, 4)  # no zero: inf * w stays inf


def ieee_model():
    nodes = [helper.make_node(op, ["v"], [op.lower()]) for op in UNARY]
    nodes += [helper.make_node(op, ["v", "u"], [op.lower()]) for op in BINARY]
    nodes += [
        helper.make_node("MatMul", ["v", "w"], ["matmul"]),  # NaN/Inf through the packed GEMM
        helper.make_node("Softmax", ["v"], ["softmax"], axis=-1),  # -inf is an attention mask
        helper.make_node("ReduceMax", ["v"], ["reducemax"], axes=[1], keepdims=1),
        helper.make_node("ReduceSum", ["v", "axes"], ["reducesum"], keepdims=1),
        helper.make_node("Where", ["c", "v", "u"], ["where"]),
    ]
    outs = {op.lower(): (F32, (3, 8)) for op in UNARY + BINARY + ["Softmax", "Where"]}
    outs.update({"matmul": (F32, (3, 4)), "reducemax": (F32, (3, 1)), "reducesum": (F32, (3, 1))})
    return make_model(nodes, {"v": (F32, (3, 8)), "u": (F32, (3, 8)), "c": (np.bool_, (3, 8))}, outs,
                      {"w": W, "axes": np.array([1], np.int64)})


def feeds():
    """Rows: NaN and both infinities mixed with finite values; finite values
    and -inf only (a masked softmax row); both infinities and no NaN."""
    v = np.array([[NAN, INF, -INF, 0.0, -0.0, 1.0, -1.0, 0.5],
                  [100.0, -100.0, 1e30, -1e30, 3.0, 2.0, -INF, 1e-40],
                  [INF, -INF, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0]], F32)
    u = np.array([[1.0, NAN, INF, 0.0, INF, -INF, 2.0, 0.0],
                  [NAN, 0.0, -INF, 0.0, 1.0, INF, 1.0, 0.0],
                  [0.0, 1.0, NAN, 1.0, 2.0, 0.0, -1.0, INF]], F32)
    return {"v": v, "u": u, "c": np.arange(24).reshape(3, 8) % 3 == 0}


@pytest.fixture(scope="module")
def lib(tmp_path_factory) -> str:
    return qc.compile(ieee_model(), tmp_path_factory.mktemp("ieee") / "ieee.so")


def test_nan_and_inf_positions_match_onnxruntime(lib):
    f = feeds()
    with qc.load(lib) as m:
        got = m.run(f)
    want = ort_run(ieee_model(), f)
    assert set(got) == set(want)
    for name, ref in want.items():
        for where in (np.isnan, np.isposinf, np.isneginf):
            np.testing.assert_array_equal(where(got[name]), where(ref), err_msg=f"{name}: {where.__name__}")
        fin = np.isfinite(ref)
        np.testing.assert_allclose(got[name][fin], ref[fin], rtol=1e-5, atol=1e-6, err_msg=name)


def test_check_finite_passes_finite_inputs(lib):
    f = {k: np.nan_to_num(v, nan=0.0, posinf=7.0, neginf=-7.0) for k, v in feeds().items()}
    with qc.load(lib) as plain, qc.load(lib, check_finite=True) as checked:
        assert checked.check_finite and not plain.check_finite
        a, b = plain.run(f), checked.run(f)
    for name in a:
        np.testing.assert_array_equal(a[name], b[name])


@pytest.mark.parametrize("bad,message", [
    ("v", r"^input 'v': 6 non-finite value\(s\) \(1 NaN, 5 ±Inf\) of 24; check_finite is on$"),
    ("u", r"^input 'u': 9 non-finite value\(s\) \(3 NaN, 6 ±Inf\) of 24; check_finite is on$"),
])
def test_check_finite_names_the_input_and_counts(lib, bad, message):
    f = feeds()
    good = "u" if bad == "v" else "v"
    f[good] = np.nan_to_num(f[good], nan=0.0, posinf=1.0, neginf=-1.0)
    with qc.load(lib, check_finite=True) as m:
        with pytest.raises(InputError, match=message):
            m.run(f)


@pytest.mark.parametrize("form", ["list", "strided", "byteswapped"])
def test_check_finite_sees_converted_inputs(lib, form):
    # The scan runs on what the model would get: after lists are converted and
    # views copied, on every path into the run.
    f = feeds()
    v = f["v"]
    f["u"] = np.zeros((3, 8), F32)
    f["v"] = {"list": v.tolist(), "strided": np.repeat(v, 2, axis=1)[:, ::2],
              "byteswapped": v.astype(">f4")}[form]
    with qc.load(lib, check_finite=True) as m:
        with pytest.raises(InputError, match=r"^input 'v': 6 non-finite"):
            m(**f)


def test_check_finite_is_settable(lib):
    f = feeds()
    with qc.load(lib) as m:
        m.check_finite = True
        with pytest.raises(InputError, match=r"input 'v'"):
            m.run(f)
        m.check_finite = False
        assert np.isnan(m.run(f)["add"][0, 0])


def _qc(*args) -> subprocess.CompletedProcess:
    return subprocess.run([QC, *map(str, args)], capture_output=True, text=True, timeout=120)


def test_cli_check_finite(lib, tmp_path):
    inputs = tmp_path / "in.npz"
    np.savez(inputs, **feeds())
    res = _qc("run", lib, "--inputs", inputs)
    assert res.returncode == 0, res.stderr
    assert "add: float32[3, 8]  min=nan max=nan" in res.stdout  # NaN passes through by default
    res = _qc("run", lib, "--inputs", inputs, "--check-finite")
    assert res.returncode == 1 and "Traceback" not in res.stderr
    assert res.stderr.strip() == ("qc: error: input 'v': 6 non-finite value(s) (1 NaN, 5 ±Inf) of 24; "
                                  "check_finite is on")


def test_max_pool_passes_nan_over(tmp_path):
    """ONNX leaves MaxPool over a NaN open (onnxruntime returns NaN only where
    it is a window's last tap); qc's window (one vmaxps per tap,
    qc-pool-window) passes NaN over: each output is the max of its window's
    other values, infinities included (numpy's nanmax over the padded
    windows)."""
    model = make_model([helper.make_node("MaxPool", ["x"], ["y"], kernel_shape=[3, 3], strides=[2, 2],
                                         pads=[1, 1, 1, 1])],
                       {"x": (F32, [1, 2, 9, 20])}, {"y": (F32, [1, 2, 5, 10])})
    x = np.random.default_rng(4).standard_normal((1, 2, 9, 20)).astype(F32)
    x[0, 0, 3, 7] = NAN  # the last tap of output (1, 3)'s window, the first of (1, 4)'s
    x[0, 1, 0, 0] = INF
    x[0, 1, 5, 11] = -INF
    lib = str(tmp_path / "m.so")
    qc.compile(model, lib)
    got = qc.load(lib)(x=x)["y"]
    padded = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)), constant_values=-np.inf)
    want = np.array([[[[np.nanmax(padded[0, c, 2 * i:2 * i + 3, 2 * j:2 * j + 3]) for j in range(10)]
                       for i in range(5)] for c in range(2)]], F32)
    np.testing.assert_array_equal(got, want)
    assert not np.isnan(got).any() and got[0, 1, 0, 0] == INF
