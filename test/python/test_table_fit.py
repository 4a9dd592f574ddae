"""Arithmetic in place of lookup tables (frontends/onnx/table_fit.py) and the
i32 form of the requantization (qmath._requant_high_word): both must give
the same integers as before, bit for bit.

- `fit` on tables of per-channel affine chains with clamps (what a
  DequantizeLinear -> BatchNormalization -> Clip -> QuantizeLinear group
  makes) must reproduce every entry with clamp((A*q + B) >> S, lo, hi), and
  must refuse tables that are no such function (sigmoid, two slopes).
- Whole QDQ groups of that kind run against onnxruntime (optimizations
  off: each op as ONNX defines it) over all 256 inputs per channel,
  exactly, with no table in the IR.
- Requantization with multipliers exact in binary hits rounding ties on
  many accumulators: the result must round half to even as numpy's
  rint does, in the i32 form (multiplier < 1/2) and the i64 one (>= 1/2).
  Where no reachable accumulator is a tie (`tie_free`, checked against
  brute force), the cheaper half-up rounding must give the same results.
"""

from __future__ import annotations

import numpy as np
import pytest
from helpers import compile_and_run, make_model
from onnx import helper
from test_quant import ort_ref

import qc
from qc.frontends.onnx.qmath import dequantize_values, quantize_table
from qc.frontends.onnx.table_fit import fit

F32 = np.float32
U8, I8 = np.uint8, np.int8


def affine_table(rng, dtype, channels: int, out_dtype, gamma_scale: float) -> np.ndarray:
    """[C, 256]: Q(clip(gamma * DQ(q) + beta, 0, 6)) per channel, as qdq_fuse builds it."""
    x = dequantize_values(dtype, 0.05, 3)
    gamma = rng.normal(0, gamma_scale, (channels, 1)).astype(F32)
    beta = rng.normal(0, 1, (channels, 1)).astype(F32)
    y = np.clip(gamma * x[None, :] + beta, 0, 6).astype(F32)
    return quantize_table(y, 0.03, 0 if out_dtype == U8 else -128, out_dtype)


def apply(form, qmin: int) -> np.ndarray:
    q = np.arange(qmin, qmin + 256, dtype=np.int64)
    t = (form.a[:, None].astype(np.int64) * q + form.b[:, None]) >> form.shift
    return np.clip(t, form.lo[:, None], form.hi[:, None])


@pytest.mark.parametrize("dtype,out_dtype", [(U8, U8), (I8, I8), (U8, I8)])
@pytest.mark.parametrize("gamma_scale", [0.05, 1.0, 20.0])  # wide ramps, ~1:1 slopes, near-steps
def test_fit_reproduces_affine_tables(dtype, out_dtype, gamma_scale):
    rng = np.random.default_rng(int(gamma_scale * 100) + (dtype == I8))
    table = affine_table(rng, dtype, 16, out_dtype, gamma_scale)  # negative gammas too: falling rows
    form = fit(table, np.iinfo(dtype).min)
    assert form is not None
    np.testing.assert_array_equal(apply(form, np.iinfo(dtype).min), table)


def test_fit_constant_and_identity_rows():
    q = np.arange(-128, 128)
    table = np.stack([np.full(256, 7), q, np.clip(q, -5, 5)]).astype(I8)
    form = fit(table, -128)
    np.testing.assert_array_equal(apply(form, -128), table)


@pytest.mark.parametrize("name", ["sigmoid", "leaky_relu", "shuffled"])
def test_fit_refuses_other_tables(name):
    x = dequantize_values(U8, 0.05, 128)
    rng = np.random.default_rng(3)
    values = {"sigmoid": 1 / (1 + np.exp(-x)), "leaky_relu": np.where(x > 0, x, 0.1 * x),
              "shuffled": rng.permutation(x)}[name]
    table = quantize_table(values.astype(F32), 0.02, 128, U8)
    assert fit(table, 0) is None


def bn_chain_model(dtype, channels: int, rng):
    """DQ -> BatchNormalization -> Clip -> Q: one Lookup per channel."""
    inits = {"xs": np.array(0.04, F32), "xz": np.array(7, dtype), "ys": np.array(0.025, F32),
             "yz": np.array(3, dtype), "lo": np.array(0.0, F32), "hi": np.array(6.0, F32),
             "g": rng.normal(0, 2, channels).astype(F32), "bt": rng.normal(0, 1, channels).astype(F32),
             "mu": rng.normal(0, 0.5, channels).astype(F32), "var": rng.uniform(0.5, 2, channels).astype(F32)}
    nodes = [helper.make_node("DequantizeLinear", ["x", "xs", "xz"], ["d"]),
             helper.make_node("BatchNormalization", ["d", "g", "bt", "mu", "var"], ["n"]),
             helper.make_node("Clip", ["n", "lo", "hi"], ["c"]),
             helper.make_node("QuantizeLinear", ["c", "ys", "yz"], ["y"])]
    shape = [1, channels, 16, 16]
    return make_model(nodes, {"x": (dtype, shape)}, {"y": (dtype, shape)}, inits), shape


@pytest.mark.parametrize("dtype", [U8, I8])
def test_bn_chain_runs_as_arithmetic(dtype, tmp_path):
    rng = np.random.default_rng(11)
    model, shape = bn_chain_model(dtype, 5, rng)  # 5 channels: not a vector width
    text = qc.compile(model, emit="input")
    assert "tensor.extract" not in text and "x256x" not in text, "a table is left in the IR"
    # Every 8-bit value in every channel: 16 x 16 = 256 positions.
    x = np.broadcast_to((np.arange(256) + np.iinfo(dtype).min).astype(dtype).reshape(16, 16), shape).copy()
    got = compile_and_run(model, {"x": x}, tmp_path)["y"]
    want = ort_ref(model, {"x": x})["y"]
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("mult,form", [(0.25, "i32"), (0.125, "i32"), (0.75, "i64")])  # shifts 32, 33; 31
def test_requant_rounds_ties_to_even(mult, form, tmp_path):
    # acc * mult is exact in binary: ties (x.5) occur for an eighth to a quarter of the accumulators.
    rng = np.random.default_rng(21)
    a = rng.integers(-128, 128, (7, 33), dtype=I8)  # odd sizes: vector tails
    w = rng.integers(-128, 128, (33, 21), dtype=I8)
    sa, sw = 0.5, 0.25
    inits = {"as": np.array(sa, F32), "az": np.array(0, I8), "w": w, "ws": np.array(sw, F32),
             "wz": np.array(0, I8), "ys": np.array(sa * sw / mult, F32), "yz": np.array(1, I8)}
    node = helper.make_node("QLinearMatMul", ["a", "as", "az", "w", "ws", "wz", "ys", "yz"], ["y"])
    model = make_model([node], {"a": (I8, a.shape)}, {"y": (I8, (7, 21))}, inits)
    text = qc.compile(model, emit="input")
    # The i32 form narrows the product's high word to i32 before shifting; the i64 form never does.
    assert ("arith.trunci %" in text and ": i64 to i32" in text) == (form == "i32")
    got = compile_and_run(model, {"a": a}, tmp_path)["y"]
    acc = a.astype(np.int64) @ w.astype(np.int64)
    want = np.clip(np.rint(acc * mult) + 1, -128, 127).astype(I8)
    assert np.sum(np.abs(acc * mult % 1) == 0.5) >= 5  # the ties are there
    assert "arith.andi" in text  # the parity bit of round half to even
    np.testing.assert_array_equal(got, want)


def test_requant_without_reachable_ties_rounds_half_up(tmp_path):
    # 0.0123 in fixed point: no |acc| <= the weights' bound lands on a tie (tie_free), so the
    # requantization drops the parity bit and adds one constant; the result is unchanged.
    rng = np.random.default_rng(22)
    a = rng.integers(-128, 128, (7, 33), dtype=I8)
    w = rng.integers(-128, 128, (33, 21), dtype=I8)
    inits = {"as": np.array(0.5, F32), "az": np.array(0, I8), "w": w, "ws": np.array(0.25, F32),
             "wz": np.array(0, I8), "ys": np.array(0.125 / 0.0123, F32), "yz": np.array(1, I8)}
    node = helper.make_node("QLinearMatMul", ["a", "as", "az", "w", "ws", "wz", "ys", "yz"], ["y"])
    model = make_model([node], {"a": (I8, a.shape)}, {"y": (I8, (7, 21))}, inits)
    text = qc.compile(model, emit="input", exact_requant=True)  # the 64-bit form (the default is 32-bit here)
    assert "arith.andi" not in text and ": i64 to i32" in text
    got = compile_and_run(model, {"a": a}, tmp_path, exact_requant=True)["y"]
    mult = np.float64(np.float32(0.5) * np.float32(0.25)) / np.float64(np.float32(0.125 / 0.0123))
    want = np.clip(np.rint((a.astype(np.int64) @ w.astype(np.int64)) * mult) + 1, -128, 127)
    np.testing.assert_array_equal(got, want.astype(I8))


def test_tie_free_matches_brute_force():
    from qc.frontends.onnx.qmath import FixedPoint, tie_free

    rng = np.random.default_rng(5)
    bound = 3000
    acc = np.arange(-bound, bound + 1, dtype=object)  # Python ints: no overflow at any shift
    seen = set()
    for _ in range(400):
        r = int(rng.integers(4, 41))
        # Mantissas with many trailing zeros too (exact multipliers tie often), offsets near ties.
        m = int(rng.integers(-2**30, 2**30)) >> int(rng.integers(0, 31)) << int(rng.integers(0, 20))
        o = int(rng.choice([0, 1 << (r - 1), int(rng.integers(-2**40, 2**40))]))
        ties = any(((a * m + o) % (1 << r)) == (1 << (r - 1)) for a in acc)
        fp = FixedPoint(np.array(m, dtype=object), np.array(r))
        assert tie_free(fp, np.array(o, dtype=object), bound) == (not ties), (m, r, o)
        seen.add(ties)
    assert seen == {True, False}


@pytest.mark.parametrize("scales,ys,form", [((0.5, 0.25), 1.0, "half-even"), ((0.37, 0.81), 0.3, "half-up"),
                                            ((0.02, 0.03), 0.05, "i32")])
def test_qlinear_add_i32_form(scales, ys, form, tmp_path):
    # QLinearAdd's two products; all 65536 input pairs are checked at compile time. With
    # multipliers exact in binary many sums are ties: the 64-bit products stay (pre-shifted so
    # the shift reaches 32) with the parity bit. With full-width ones no pair is a tie: half up.
    # Where even a short i32 mantissa (one i32 multiply per operand) gives every pair its exact
    # result (0.4 and 0.6 here, but not 1.23 and 2.7: near-ties), no i64 is left at all.
    rng = np.random.default_rng(23)
    ma, mb = scales
    inits = {"as": np.array(ma, F32), "az": np.array(3, I8), "bs": np.array(mb, F32), "bz": np.array(-7, I8),
             "ys": np.array(ys, F32), "yz": np.array(2, I8)}
    node = helper.make_node("QLinearAdd", ["a", "as", "az", "b", "bs", "bz", "ys", "yz"], ["y"], domain="com.microsoft")
    model = make_model([node], {"a": (I8, (3, 37)), "b": (I8, (3, 37))}, {"y": (I8, (3, 37))}, inits)
    model.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    text = qc.compile(model, emit="input")
    if form == "i32":
        assert "i64" not in text
    else:
        assert ": i64 to i32" in text and ("arith.andi" in text) == (form == "half-even")
    a, bb = (rng.integers(-128, 128, (3, 37), dtype=I8) for _ in range(2))
    got = compile_and_run(model, {"a": a, "b": bb}, tmp_path)["y"]
    m32 = lambda x: np.float64(np.float32(x)) / np.float64(np.float32(ys))  # noqa: E731
    real = (a.astype(np.float64) - 3) * m32(ma) + (bb.astype(np.float64) + 7) * m32(mb)
    np.testing.assert_array_equal(got, np.clip(np.rint(real) + 2, -128, 127).astype(I8))


def conv_then_chain_model(after: str, rng, fmt: str = "qdq"):
    """DQ -> Conv -> Q -> DQ -> <after> -> Q: a conv quantized before its
    BatchNormalization was folded (what quantize_static makes of Conv -> BN).
    The second group is a qc::Lookup that merges into the first. fmt
    "qlinear": the conv is a QLinearConv (a QOperator model), its weights
    7-bit so that onnxruntime's u8 x s8 kernel, the reference, does not
    saturate."""
    from test_quant import _dq, _q

    lo = -64 if fmt == "qlinear" else -128
    inits = {"w_q": rng.integers(lo, -lo, (6, 4, 3, 3), dtype=I8)}
    ws = rng.uniform(0.003, 0.01, 6)
    if fmt == "qlinear":
        inits.update(x_s=np.array(0.02, F32), x_z=np.array(120, U8), w_s=ws.astype(F32), w_z=np.zeros(6, I8),
                     c_q_s=np.array(0.05, F32), c_q_z=np.array(131, U8))  # onnxruntime: y typed as x
        nodes = [helper.make_node("QLinearConv", ["x_q", "x_s", "x_z", "w_q", "w_s", "w_z", "c_q_s", "c_q_z"],
                                  ["c_q"], pads=[1, 1, 1, 1])]
    else:
        nodes = [_dq("x", U8, 0.02, 120, inits), _dq("w", I8, ws, np.zeros(6), inits, axis=0),
                 helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]), _q("c_q", "c", I8, 0.05, 3, inits)]
    nodes.append(helper.make_node("DequantizeLinear", ["c_q", "c_q_s", "c_q_z"], ["cd"]))
    if after == "batchnorm_clip":  # affine per channel, negative gammas included: one loop
        inits.update(g=np.array([1.5, -0.7, 0.3, 2.5, -2.0, 0.9], F32), bt=rng.normal(0, 0.3, 6).astype(F32),
                     mu=rng.normal(0, 0.3, 6).astype(F32), var=rng.uniform(0.5, 2, 6).astype(F32),
                     lo=np.array(0.0, F32), hi=np.array(6.0, F32))
        nodes += [helper.make_node("BatchNormalization", ["cd", "g", "bt", "mu", "var"], ["n"]),
                  helper.make_node("Clip", ["n", "lo", "hi"], ["r"])]
    else:  # "sigmoid": no affine form, the conv then its table
        nodes.append(helper.make_node("Sigmoid", ["cd"], ["r"]))
    nodes.append(_q("y", "r", U8, 0.025, 2, inits))
    x = rng.integers(0, 256, (1, 4, 9, 8), dtype=U8)
    model = make_model(nodes, {"x_q": (U8, x.shape)}, {"y": (U8, (1, 6, 9, 8))}, inits, opset=13)
    return model, {"x_q": x}


@pytest.mark.parametrize("fmt", ["qdq", "qlinear"])
@pytest.mark.parametrize("after", ["batchnorm_clip", "sigmoid"])
def test_table_merged_into_conv(after, fmt, tmp_path):
    from test_quant import assert_close_steps

    model, feeds = conv_then_chain_model(after, np.random.default_rng(31), fmt)
    text = qc.compile(model, emit="input", dump_ir=str(tmp_path / "ir"))
    assert "merged 1 table(s) into the requantization before them" in (tmp_path / "ir" / "onnx-graph.txt").read_text()
    # One narrowing to 8 bits in both: the affine table continues the conv's requantization in
    # i32; the sigmoid's table is read with the requantized value (one more widening: its index).
    assert text.count("to i8") == 1
    assert text.count("tensor.extract ") == (after == "sigmoid")
    got = compile_and_run(model, feeds, tmp_path)["y"]
    assert_close_steps(got, ort_ref(model, feeds)["y"], name=after)
