"""Accuracy of qc-approximate-math (f32 exp, erf, tanh as arithmetic) over
the whole range, against float64 references."""

from math import erf

import numpy as np
import pytest
from helpers import make_model
from onnx import helper

import qc

X = np.concatenate([
    np.linspace(-100, 100, 4001),  # exp's overflow and underflow edges
    np.linspace(-5, 5, 4001),  # where erf and tanh bend
    np.linspace(-0.6, 0.6, 2001),  # the series / formula switch points
    [0.0, -0.0, 1e-30, -1e-30, 1e-8, 88.7, -87.0, 89.0, -90.0],
]).astype(np.float32)

REFS = {
    "Exp": np.exp,
    "Erf": np.vectorize(erf),
    "Tanh": np.tanh,
    "Sigmoid": lambda x: 1 / (1 + np.exp(-x)),
}


@pytest.mark.parametrize("op", list(REFS))
def test_accuracy(op, tmp_path):
    model = make_model([helper.make_node(op, ["x"], ["y"])], {"x": (np.float32, [X.size])},
                       {"y": (np.float32, [X.size])})
    lib = str(tmp_path / "m.so")
    qc.compile(model, lib)
    got = qc.load(lib)(X)["y"].astype(np.float64)
    with np.errstate(over="ignore"):
        ref = REFS[op](X.astype(np.float64))
        ref32 = ref.astype(np.float32)
    inf = np.isinf(ref32)
    np.testing.assert_array_equal(np.isinf(got), inf)  # exp overflows where expf does
    ok = ~inf & (np.abs(ref) > 1.2e-38)  # below: flushed to zero, by design
    rel = np.abs(got[ok] - ref[ok]) / np.abs(ref[ok])
    assert rel.max() < 6e-7, f"{op}: max relative error {rel.max():.2e}"
    assert np.all(got[~ok & ~inf] < 1.2e-38)


@pytest.mark.parametrize("op, c, s", [("Div", np.sqrt(2), 1 / np.sqrt(2)), ("Mul", 0.7071068, 0.7071068),
                                      ("Div", 0.01, 100.0), ("Mul", -3.0, -3.0)])
def test_erf_of_scaled_input(op, c, s, tmp_path):
    """erf(x / c) and erf(x * c) with a constant c (GELU's erf(x / sqrt(2))):
    c folds into erf's coefficients; the result is as accurate as erf's."""
    c32 = np.float32(c)
    model = make_model([helper.make_node(op, ["x", "c"], ["u"]), helper.make_node("Erf", ["u"], ["y"])],
                       {"x": (np.float32, [X.size])}, {"y": (np.float32, [X.size])}, {"c": np.array(c32)})
    lib = str(tmp_path / "m.so")
    qc.compile(model, lib)
    got = qc.load(lib)(X)["y"].astype(np.float64)
    u = X.astype(np.float64) / np.float64(c32) if op == "Div" else X.astype(np.float64) * np.float64(c32)
    ref = np.vectorize(erf)(u)
    ok = ref != 0
    rel = np.abs(got[ok] - ref[ok]) / np.abs(ref[ok])
    assert rel.max() < 6e-7, f"max relative error {rel.max():.2e}"
    assert np.all(got[~ok] == 0)
