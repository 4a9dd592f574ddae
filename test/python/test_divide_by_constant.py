"""qc-divide-by-constant: x / c for a constant c, compiled as a multiply and
Markstein's correction, must be the correctly rounded quotient, bit for bit:
numpy's float32 division (IEEE) is the reference, on values spread over
the whole normal range, ties of QuantizeLinear's rounding, and inf / NaN.
The IR check makes a test fail if the divide stays (then the bits would
match trivially)."""

from __future__ import annotations

import numpy as np
import onnx.reference
import pytest
from helpers import compile_and_run, make_model
from onnx import helper

import qc

F32 = np.float32
N = 1 << 16


def _values(rng, c) -> np.ndarray:
    """Mantissas at random over exponents where x and x / c are at least
    2^-100 (the pass's exact range) and x / c finite, some exact multiples
    of c and of c/2 (ties after rounding), and the special values."""
    lo = max(-100.0, -100.0 + np.log2(abs(c)))
    hi = np.log2(np.finfo(F32).max * min(1.0, abs(c))) - 1
    spread = (rng.uniform(1, 2, N) * np.exp2(rng.uniform(lo, hi, N))).astype(F32)
    spread *= rng.choice([-1, 1], N).astype(F32)
    near = (rng.integers(-300, 300, 4096) * F32(c) / 2).astype(F32)  # x / c near k / 2
    near_next = np.nextafter(near, np.inf).astype(F32)
    specials = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 1.0, -1.0, c], F32)
    return np.concatenate([spread, near, near_next, specials])


@pytest.mark.parametrize("c", [0.0171723, 3.0, -7.1, 1 / 9, 0.1, 255.0, 6.02e-5, 0.25, 1e30])
def test_div_is_correctly_rounded(c, tmp_path):
    rng = np.random.default_rng(7)
    x = _values(rng, c)
    model = make_model([helper.make_node("Div", ["x", "c"], ["y"])], {"x": (F32, [x.size])},
                       {"y": (F32, [x.size])}, {"c": np.array(c, F32)})
    ir_text = qc.compile(model, emit="linalg")
    assert "arith.divf" not in ir_text
    assert ("math.fma" in ir_text) == (np.frexp(F32(1) / F32(c))[0] != 0.5)  # 2^k: the multiply alone
    got = compile_and_run(model, {"x": x}, tmp_path)["y"]
    with np.errstate(all="ignore"):
        want = x / F32(c)
    np.testing.assert_array_equal(got.view(np.uint32)[~np.isnan(want)], want.view(np.uint32)[~np.isnan(want)])
    assert np.isnan(got[np.isnan(want)]).all()


@pytest.mark.parametrize("dtype", [np.int8, np.uint8])
def test_quantize_linear_matches_the_reference(dtype, tmp_path):
    """QuantizeLinear's x / scale, clamped and rounded to an integer, is
    rewritten by default, busy as its body is, with q0 clamped to the
    bounds widened by one (not to the finite range) and no copysign: every
    element equal to numpy's correctly rounded quotient, rounded half to
    even and saturated, on inputs at the rounding ties (k + 1/2 steps) and
    one ulp either side, far outside the range and where x * (1/scale)
    overflows, and +-inf; and to onnx.reference's on the finite ones below
    the overflow (the reference casts inf to int32 before it saturates)."""
    rng = np.random.default_rng(3)
    scale, zp = F32(0.0123), np.array(3 if dtype == np.int8 else 128, dtype)
    ties = ((rng.integers(-200, 200, 8192) + 0.5) * scale).astype(F32)
    x = np.concatenate([ties, np.nextafter(ties, np.inf), np.nextafter(ties, -np.inf),
                        rng.normal(0, 2, 8192).astype(F32), np.array([1e6, -1e6, 0.0, -0.0], F32)])
    far = np.array([3e38, -3e38, np.finfo(F32).max, -np.finfo(F32).max, np.inf, -np.inf], F32)
    model = make_model([helper.make_node("QuantizeLinear", ["x", "s", "z"], ["y"])], {"x": (F32, [x.size + far.size])},
                       {"y": (dtype, [x.size + far.size])}, {"s": np.array(scale), "z": zp})
    text = qc.compile(model, emit="linalg")
    assert "arith.divf" not in text and "math.copysign" not in text
    got = compile_and_run(model, {"x": np.concatenate([x, far])}, tmp_path)["y"]
    info = np.iinfo(dtype)
    with np.errstate(all="ignore"):
        want = np.clip(np.rint(np.concatenate([x, far]) / scale).astype(np.float64) + int(zp), info.min, info.max)
    np.testing.assert_array_equal(got, want.astype(dtype))
    (ref,) = onnx.reference.ReferenceEvaluator(model).run(None, {"x": np.concatenate([x, np.zeros_like(far)])})
    np.testing.assert_array_equal(got[:x.size], ref[:x.size])


def test_quantize_linear_per_channel_keeps_the_divide(tmp_path):
    """Per-channel scales: the divisor is no one constant, so the divide
    stays; the reordered body (clamp, round, then the zero point added as
    an integer) still gives the reference's values."""
    rng = np.random.default_rng(4)
    x = rng.normal(0, 2, (3, 64)).astype(F32)
    model = make_model([helper.make_node("QuantizeLinear", ["x", "s", "z"], ["y"], axis=0)], {"x": (F32, [3, 64])},
                       {"y": (np.int8, [3, 64])},
                       {"s": np.array([0.01, 0.02, 0.03], F32), "z": np.array([1, -2, 3], np.int8)})
    assert "arith.divf" in qc.compile(model, emit="linalg")
    got = compile_and_run(model, {"x": x}, tmp_path)["y"]
    (want,) = onnx.reference.ReferenceEvaluator(model).run(None, {"x": x})
    np.testing.assert_array_equal(got, want)


def test_divide_by_a_runtime_value_stays(tmp_path):
    model = make_model([helper.make_node("Div", ["x", "c"], ["y"])], {"x": (F32, [4]), "c": (F32, [4])},
                       {"y": (F32, [4])})
    assert "arith.divf" in qc.compile(model, emit="linalg")


def test_without_fma_the_divide_stays():
    """x86-64 without FMA (the baseline triple): math.fma would be a libm call per element."""
    model = make_model([helper.make_node("Div", ["x", "c"], ["y"])], {"x": (F32, [4])}, {"y": (F32, [4])},
                       {"c": np.array(3.0, F32)})
    text = qc.compile(model, emit="linalg", target="x86_64-unknown-linux-gnu")
    assert "arith.divf" in text and "math.fma" not in text
    text = qc.compile(make_model([helper.make_node("Div", ["x", "c"], ["y"])], {"x": (F32, [4])},
                                 {"y": (F32, [4])}, {"c": np.array(4.0, F32)}),
                      emit="linalg", target="x86_64-unknown-linux-gnu")
    assert "arith.divf" not in text and "arith.mulf" in text  # 1/4 is exact: no correction needed


@pytest.mark.parametrize("target", ["aarch64", "riscv64-rvv128"])
def test_div_is_correctly_rounded_on_other_targets(target, tmp_path):
    """fmadd / vfmacc under qemu-user (installed by `make test`; qc.load fails loudly without it)."""
    rng = np.random.default_rng(11)
    x = _values(rng, 0.1)
    model = make_model([helper.make_node("Div", ["x", "c"], ["y"])], {"x": (F32, [x.size])},
                       {"y": (F32, [x.size])}, {"c": np.array(0.1, F32)})
    assert "math.fma" in qc.compile(model, emit="linalg", target=target)
    got = compile_and_run(model, {"x": x}, tmp_path, target=target)["y"]
    want = x / F32(0.1)
    ok = ~np.isnan(want)
    np.testing.assert_array_equal(got.view(np.uint32)[ok], want.view(np.uint32)[ok])
