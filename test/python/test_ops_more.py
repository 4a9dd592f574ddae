"""Numerics of the less common ONNX ops against onnxruntime (numpy or
onnx.reference where onnxruntime has no kernel for a form).

Data inputs are graph inputs (run-time values) so each op goes through its
importer rather than being constant-folded. Floats are compared with rtol
1e-5, integers exactly.
"""

from __future__ import annotations

import numpy as np
import pytest
from helpers import check_against_ort, compile_and_run
from onnx import helper

import qc

F16, F32, F64 = np.float16, np.float32, np.float64
I8, I16, I32, I64 = np.int8, np.int16, np.int32, np.int64
U8, U16, U32, U64 = np.uint8, np.uint16, np.uint32, np.uint64


def _info(name, dtype, shape):
    return helper.make_tensor_value_info(name, helper.np_dtype_to_tensor_dtype(np.dtype(dtype)), shape)


def model(nodes, inputs: dict, outputs: dict, opset: int = 18, inits: dict | None = None):
    """Like helpers.make_model, for every integer width: name -> (dtype, shape)."""
    from onnx import numpy_helper

    graph = helper.make_graph(
        nodes, "test", [_info(n, *v) for n, v in inputs.items()], [_info(n, *v) for n, v in outputs.items()],
        [numpy_helper.from_array(np.asarray(v), n) for n, v in (inits or {}).items()])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], ir_version=8)


def binary(op, x, y, out_dtype=None, opset=18, **attrs):
    out_shape = np.broadcast_shapes(x.shape, y.shape)
    node = helper.make_node(op, ["x", "y"], ["z"], name=f"{op.lower()}0", **attrs)
    return model([node], {"x": (x.dtype, x.shape), "y": (y.dtype, y.shape)},
                 {"z": (out_dtype or x.dtype, out_shape)}, opset)


def side_by_side(nodes: list, feeds: dict, outputs: dict, opset: int = 18, inits: dict | None = None):
    """One model of several nodes on shared inputs: each compile (~0.5 s)
    covers several forms. `outputs` maps name -> (dtype, shape)."""
    return model(nodes, {n: (v.dtype, v.shape) for n, v in feeds.items()}, outputs, opset, inits)


def check_against(expected: dict, m, feeds, tmp_path, rtol=1e-5, atol=1e-6):
    """Compiles and runs `m`, compares with `expected` (name -> array)."""
    got = compile_and_run(m, feeds, tmp_path)
    for name, want in expected.items():
        assert got[name].dtype == want.dtype and got[name].shape == want.shape, name
        if np.issubdtype(want.dtype, np.floating):
            np.testing.assert_allclose(got[name], want, rtol=rtol, atol=atol, err_msg=name)
        else:
            np.testing.assert_array_equal(got[name], want, err_msg=name)
    return got


def nonzero_ints(rng, shape, dtype, lo, hi):
    v = rng.integers(lo, hi + 1, shape).astype(dtype)
    v[v == 0] = 1
    return v


# --- Mod ------------------------------------------------------------------------

INT_TYPES = [I8, I16, I32, I64, U8, U16, U32, U64]


@pytest.mark.parametrize("dtype", INT_TYPES, ids=lambda d: np.dtype(d).name)
def test_mod_int(dtype, tmp_path):
    # Mixed signs exercise both remainder conventions (fmod 0 and 1, side by
    # side); (3, 5) against (5,) broadcasts the divisor along rows.
    rng = np.random.default_rng(200)
    signed = np.issubdtype(dtype, np.signedinteger)
    lo = -100 if signed else 0
    feeds = {"x": rng.integers(lo, 101, (3, 5)).astype(dtype),
             "y": nonzero_ints(rng, (5,), dtype, -9 if signed else 1, 9)}
    nodes = [helper.make_node("Mod", ["x", "y"], [f"z{f}"], fmod=f) for f in (0, 1)]
    check_against_ort(side_by_side(nodes, feeds, {f"z{f}": (dtype, (3, 5)) for f in (0, 1)}), feeds, tmp_path)


@pytest.mark.parametrize("dtype", [F32, F64])
def test_mod_float_fmod(dtype, tmp_path):
    # fmod=1: the C remainder, the sign of the dividend; odd size 7.
    rng = np.random.default_rng(201)
    x = rng.uniform(-10, 10, (4, 7)).astype(dtype)
    y = rng.uniform(0.5, 3, (4, 7)).astype(dtype) * rng.choice([-1, 1], (4, 7)).astype(dtype)
    check_against_ort(binary("Mod", x, y, fmod=1), {"x": x, "y": y}, tmp_path)


@pytest.mark.parametrize("dtype", [F16, F32, F64])
def test_mod_float_floored(dtype, tmp_path):
    # fmod=0 on floats (numpy's mod; onnxruntime rejects it): signed zeros,
    # infinite divisors, NaN from inf dividends and zero divisors.
    x = np.array([0.0, -0.0, 0.0, -0.0, -3.0, 3.0, -1.0, 1.0, np.inf, 1.0, np.nan, -4.3, 7.2, 5.0], dtype)
    y = np.array([-2.0, 2.0, 2.0, -2.0, np.inf, np.inf, -np.inf, -np.inf, 2.0, 0.0, 2.0, 2.1, -3.4, 8.0], dtype)
    with np.errstate(divide="ignore", invalid="ignore"):
        want = np.mod(x, y)
    got = check_against({"z": want}, binary("Mod", x, y, fmod=0), {"x": x, "y": y}, tmp_path)
    np.testing.assert_array_equal(np.signbit(got["z"][:4]), [True, False, False, True])


def test_mod_float16_fmod(tmp_path):
    x = np.array([-4.3, 7.2, 5.0, 4.3, -7.2, 8.0], F16)
    y = np.array([2.1, -3.4, 8.0, -2.1, 3.4, 5.0], F16)
    check_against({"z": np.fmod(x, y)}, binary("Mod", x, y, fmod=1), {"x": x, "y": y}, tmp_path)


@pytest.mark.parametrize("dtype", [I8, I64, U32])
def test_mod_int_trapping_divisors(dtype, tmp_path):
    # x % 0 and INT_MIN % -1 trap in idiv; numpy gives 0 for both.
    info = np.iinfo(dtype)
    feeds = {"x": np.array([7, -7 if info.min < 0 else 9, info.min, info.max, 5, 0], dtype),
             "y": np.array([0, 0, -1 if info.min < 0 else 3, 4, 0, 3], dtype)}
    nodes = [helper.make_node("Mod", ["x", "y"], [f"z{f}"], fmod=f) for f in (0, 1)]
    with np.errstate(divide="ignore"):
        want = {"z0": np.mod(feeds["x"], feeds["y"]), "z1": np.fmod(feeds["x"], feeds["y"])}
    check_against(want, side_by_side(nodes, feeds, {n: (dtype, (6,)) for n in want}), feeds, tmp_path)


def test_mod_rejects(tmp_path):
    x = np.ones(3, F32)
    with pytest.raises(qc.UnsupportedOp, match=r"\(Mod\): fmod=2"):
        qc.compile(binary("Mod", x, x, fmod=2), str(tmp_path / "m.so"))
    b = np.ones(3, np.bool_)
    with pytest.raises(qc.UnsupportedOp, match=r"\(Mod\): element type bool"):
        qc.compile(binary("Mod", b, b), str(tmp_path / "m.so"))


def reference_run(m, feeds) -> dict:
    """onnx.reference's outputs, for forms onnxruntime has no kernel for."""
    from onnx.reference import ReferenceEvaluator

    names = [o.name for o in m.graph.output]
    return dict(zip(names, ReferenceEvaluator(m).run(None, feeds)))


def check_against_reference(m, feeds, tmp_path, rtol=1e-5, atol=1e-6):
    return check_against(reference_run(m, feeds), m, feeds, tmp_path, rtol, atol)


# --- BitShift and bitwise ops ---------------------------------------------------


def shifts(feeds, shape):
    """Both directions side by side."""
    nodes = [helper.make_node("BitShift", ["x", "y"], [d], direction=d) for d in ("LEFT", "RIGHT")]
    return side_by_side(nodes, feeds, {d: (feeds["x"].dtype, shape) for d in ("LEFT", "RIGHT")})


@pytest.mark.parametrize("dtype", [U8, U32, U64], ids=lambda d: np.dtype(d).name)
def test_bitshift_unsigned(dtype, tmp_path):
    # Counts 0 .. width-1 (in range); (4, 5) against (5,) broadcasts the counts.
    # onnxruntime has no uint16 kernel: test_bitshift_out_of_range covers it.
    rng = np.random.default_rng(210)
    width = np.dtype(dtype).itemsize * 8
    feeds = {"x": rng.integers(0, np.iinfo(dtype).max, (4, 5), dtype=dtype, endpoint=True),
             "y": rng.integers(0, width, (5,)).astype(dtype)}
    check_against_ort(shifts(feeds, (4, 5)), feeds, tmp_path)


@pytest.mark.parametrize("dtype", [I8, I32, I64, U16])
def test_bitshift_out_of_range(dtype, tmp_path):
    # Signed values (onnxruntime has unsigned kernels only): arithmetic right
    # shifts of negatives, left shifts that wrap, and counts that are
    # negative or >= the width, which numpy (the reference) saturates.
    info = np.iinfo(dtype)
    width = info.bits
    x = np.array([-8 if info.min else 8, 4, info.min, info.max, 1, 100, 64, 3], dtype)
    y = np.array([1, 1, 1, width - 1, width, width + 1, 2 * width + 3, 0], dtype)
    if info.min:
        y[6] = -1
    check_against_reference(shifts({"x": x, "y": y}, (8,)), {"x": x, "y": y}, tmp_path)


@pytest.mark.parametrize("dtype", [I16, U8, I64])
def test_bitwise_binary(dtype, tmp_path):
    # Full-range values set the sign bits; (2, 3, 5) against (3, 1) broadcasts both ways.
    rng = np.random.default_rng(211)
    info = np.iinfo(dtype)
    feeds = {"x": rng.integers(info.min, info.max, (2, 3, 5), dtype=dtype, endpoint=True),
             "y": rng.integers(info.min, info.max, (3, 1), dtype=dtype, endpoint=True)}
    ops = ["BitwiseAnd", "BitwiseOr", "BitwiseXor"]
    nodes = [helper.make_node(op, ["x", "y"], [op]) for op in ops]
    check_against_ort(side_by_side(nodes, feeds, {op: (dtype, (2, 3, 5)) for op in ops}), feeds, tmp_path)


@pytest.mark.parametrize("dtype", [I32, U8, U64])
def test_bitwise_not(dtype, tmp_path):
    rng = np.random.default_rng(212)
    info = np.iinfo(dtype)
    x = rng.integers(info.min, info.max, (3, 7), dtype=dtype, endpoint=True)
    node = helper.make_node("BitwiseNot", ["x"], ["z"])
    m = model([node], {"x": (dtype, x.shape)}, {"z": (dtype, x.shape)})
    check_against_ort(m, {"x": x}, tmp_path)


def test_bitwise_rejects(tmp_path):
    x = np.ones(3, U8)
    with pytest.raises(qc.UnsupportedOp, match=r"\(BitShift\): direction 'UP'"):
        qc.compile(binary("BitShift", x, x, direction="UP"), str(tmp_path / "m.so"))
    f = np.ones(3, F32)
    with pytest.raises(qc.UnsupportedOp, match=r"\(BitwiseAnd\): element type float32"):
        qc.compile(binary("BitwiseAnd", f, f), str(tmp_path / "m.so"))


# --- LayerNormalization statistics, RMSNormalization ----------------------------


def norm_model(op, x_shape, param_shape, outputs, opset, with_bias=False, **attrs):
    ins = ["x", "s"] + (["bias"] if with_bias else [])
    node = helper.make_node(op, ins, list(outputs), **attrs)
    inputs = {"x": (F32, x_shape), "s": (F32, param_shape)}
    if with_bias:
        inputs["bias"] = (F32, param_shape)
    return model([node], inputs, {n: (F32, s) for n, s in outputs.items()}, opset)


@pytest.mark.parametrize("axis", [0, 1, -1])  # all dims, all but the batch, the last
def test_layernorm_mean_inv_std(axis, tmp_path):
    # The optional outputs: shape X.shape[:axis] + [1] * (rank - axis).
    rng = np.random.default_rng(220)
    x_shape = (2, 3, 5)
    a = axis % 3
    stat_shape = x_shape[:a] + (1,) * (3 - a)
    feeds = {"x": rng.uniform(-2, 3, x_shape).astype(F32), "s": rng.uniform(-1, 1, x_shape[a:]).astype(F32),
             "bias": rng.uniform(-1, 1, x_shape[a:]).astype(F32)}
    m = norm_model("LayerNormalization", x_shape, x_shape[a:],
                   {"y": x_shape, "mean": stat_shape, "inv_std": stat_shape}, 17, with_bias=True, axis=axis)
    check_against_ort(m, feeds, tmp_path, atol=1e-5)


def test_layernorm_inv_std_only(tmp_path):
    # Mean skipped (empty name), InvStdDev requested; epsilon not the default.
    rng = np.random.default_rng(221)
    x = rng.uniform(-2, 2, (4, 7)).astype(F32)
    s = rng.uniform(-1, 1, (7,)).astype(F32)
    node = helper.make_node("LayerNormalization", ["x", "s"], ["y", "", "inv_std"], epsilon=0.1)
    m = model([node], {"x": (F32, x.shape), "s": (F32, s.shape)}, {"y": (F32, x.shape), "inv_std": (F32, (4, 1))}, 17)
    check_against_ort(m, {"x": x, "s": s}, tmp_path, atol=1e-5)


RMS_CASES = [
    (-1, (5,)),  # the usual: last axis
    (1, (3, 5)),  # two axes
    (0, (2, 3, 5)),  # everything
    (1, (1, 5)),  # scale broadcast along one of the normalized axes
]


@pytest.mark.parametrize("axis,param_shape", RMS_CASES, ids=str)
def test_rmsnorm(axis, param_shape, tmp_path):
    rng = np.random.default_rng(222)
    x_shape = (2, 3, 5)
    feeds = {"x": rng.uniform(-2, 3, x_shape).astype(F32), "s": rng.uniform(-1, 1, param_shape).astype(F32)}
    m = norm_model("RMSNormalization", x_shape, param_shape, {"y": x_shape}, 23, axis=axis, epsilon=1e-3)
    check_against_ort(m, feeds, tmp_path, atol=1e-5)


def test_rmsnorm_rejects(tmp_path):
    m = norm_model("RMSNormalization", (2, 3), (4,), {"y": (2, 3)}, 23)
    with pytest.raises(qc.UnsupportedOp, match=r"scale of shape \[4\] does not broadcast to \[3\]"):
        qc.compile(m, str(tmp_path / "m.so"))
    m = norm_model("RMSNormalization", (2, 3), (3,), {"y": (2, 3)}, 23, stash_type=0)
    with pytest.raises(qc.UnsupportedOp, match=r"stash_type 0"):
        qc.compile(m, str(tmp_path / "m.so"))


# --- Attention ------------------------------------------------------------------


def attention_model(shapes: dict, outputs: dict, opset=23, dtype=F32, **attrs):
    """One Attention node; `shapes` names its inputs in order ('' skips one)."""
    order = ["Q", "K", "V", "attn_mask", "past_key", "past_value", "nonpad_kv_seqlen"]
    last = max(order.index(n) for n in shapes)
    names = [n if n in shapes else "" for n in order[: last + 1]]
    node = helper.make_node("Attention", names, list(outputs), **attrs)
    inputs = {n: (shapes[n][1], shapes[n][0]) if isinstance(shapes[n][0], tuple) else (dtype, shapes[n])
              for n in shapes}
    return model([node], inputs, {n: (dtype, s) for n, s in outputs.items()}, opset)


def attention_feeds(rng, shapes: dict, dtype=F32):
    feeds = {}
    for n, s in shapes.items():
        if isinstance(s[0], tuple):  # (shape, dtype): a mask or the lengths
            shape, dt = s
            feeds[n] = rng.random(shape) < 0.7 if dt == np.bool_ else rng.uniform(-1, 1, shape).astype(dt)
        else:
            feeds[n] = rng.uniform(-1, 1, s).astype(dtype)
    return feeds


ATTENTION_CASES = [
    # (name, inputs, outputs, attributes)
    ("4d", {"Q": (2, 3, 4, 8), "K": (2, 3, 6, 8), "V": (2, 3, 6, 5)}, {"Y": (2, 3, 4, 5)}, {}),
    ("4d_gqa_causal_scaled",  # 6 query heads on 2 kv heads; Sq < Skv
     {"Q": (1, 6, 3, 4), "K": (1, 2, 5, 4), "V": (1, 2, 5, 4)}, {"Y": (1, 6, 3, 4)}, dict(is_causal=1, scale=0.3)),
    ("3d_gqa",  # hidden dims split into heads, read in place
     {"Q": (2, 3, 18), "K": (2, 5, 6), "V": (2, 5, 10)}, {"Y": (2, 3, 30)}, dict(q_num_heads=6, kv_num_heads=2)),
    ("float_mask_broadcast",  # [Sq, Skv] mask over every batch and head
     {"Q": (2, 3, 4, 8), "K": (2, 3, 6, 8), "V": (2, 3, 6, 8), "attn_mask": ((4, 6), F32)}, {"Y": (2, 3, 4, 8)}, {}),
    ("bool_mask_4d_softcap",
     {"Q": (2, 2, 4, 8), "K": (2, 2, 6, 8), "V": (2, 2, 6, 8), "attn_mask": ((2, 2, 4, 6), np.bool_)},
     {"Y": (2, 2, 4, 8)}, dict(softcap=2.0)),
    ("past_present_causal_mask",  # mask of [B, 1, Sq, P + Skv]; causal offset by the past length
     {"Q": (2, 3, 4, 8), "K": (2, 3, 4, 8), "V": (2, 3, 4, 8), "attn_mask": ((2, 1, 4, 7), F32),
      "past_key": (2, 3, 3, 8), "past_value": (2, 3, 3, 8)},
     {"Y": (2, 3, 4, 8), "present_key": (2, 3, 7, 8), "present_value": (2, 3, 7, 8)}, dict(is_causal=1)),
    ("3d_past_present",  # 3-D K/V go into a 4-D cache
     {"Q": (1, 2, 8), "K": (1, 2, 8), "V": (1, 2, 8), "past_key": (1, 2, 3, 4), "past_value": (1, 2, 3, 4)},
     {"Y": (1, 2, 8), "present_key": (1, 2, 5, 4), "present_value": (1, 2, 5, 4)}, dict(q_num_heads=2, kv_num_heads=2)),
]


@pytest.mark.parametrize("name,shapes,outputs,attrs", ATTENTION_CASES, ids=[c[0] for c in ATTENTION_CASES])
def test_attention(name, shapes, outputs, attrs, tmp_path):
    rng = np.random.default_rng(230)
    feeds = attention_feeds(rng, shapes)
    check_against_ort(attention_model(shapes, outputs, **attrs), feeds, tmp_path, atol=1e-5)


def test_attention_qk_matmul_output(tmp_path):
    # Every qk_matmul_output_mode side by side: the scores (softcapped for 0
    # and 1), scores plus bias (2) or probabilities (3); the mask is shorter
    # than the keys (padded with -inf).
    rng = np.random.default_rng(231)
    shapes = {"Q": (1, 2, 3, 4), "K": (1, 2, 5, 4), "V": (1, 2, 5, 4), "attn_mask": ((3, 4), F32)}
    feeds = attention_feeds(rng, shapes)
    nodes = [helper.make_node("Attention", list(shapes), [f"Y{mode}", "", "", f"qk{mode}"],
                              qk_matmul_output_mode=mode, softcap=1.5) for mode in range(4)]
    outputs = {}
    for mode in range(4):
        outputs |= {f"Y{mode}": (F32, (1, 2, 3, 4)), f"qk{mode}": (F32, (1, 2, 3, 5))}
    check_against_reference(side_by_side(nodes, feeds, outputs, 23), feeds, tmp_path, atol=1e-5)


def test_attention_fully_masked_rows(tmp_path):
    # A bool mask row that is all false: Y and the probabilities are 0 there, not NaN.
    shapes = {"Q": (1, 1, 3, 4), "K": (1, 1, 3, 4), "V": (1, 1, 3, 4), "attn_mask": ((3, 3), np.bool_)}
    feeds = attention_feeds(np.random.default_rng(232), shapes)
    feeds["attn_mask"] = np.array([[True, False, True], [False, False, False], [True, True, True]])
    m = attention_model(shapes, {"Y": (1, 1, 3, 4)})
    got = check_against_reference(m, feeds, tmp_path, atol=1e-5)
    np.testing.assert_array_equal(got["Y"][0, 0, 1], 0)


def test_attention_nonpad_kv_seqlen(tmp_path):
    # Opset 24's static cache: per-batch valid key counts, causal from the bottom right.
    rng = np.random.default_rng(233)
    shapes = {"Q": (2, 4, 2, 8), "K": (2, 2, 6, 8), "V": (2, 2, 6, 8), "nonpad_kv_seqlen": ((2,), I64)}
    feeds = attention_feeds(rng, shapes)
    feeds["nonpad_kv_seqlen"] = np.array([6, 3], I64)
    m = attention_model(shapes, {"Y": (2, 4, 2, 8)}, opset=24, is_causal=1)
    check_against_reference(m, feeds, tmp_path, atol=1e-5)


@pytest.mark.parametrize("left,right,causal", [(2, -1, 1), (1, 2, 0)])
def test_attention_sliding_window(left, right, causal, tmp_path):
    # Opset 25: keys within [p - left, p + right] of the query's position p.
    rng = np.random.default_rng(234)
    shapes = {"Q": (1, 2, 5, 4), "K": (1, 2, 5, 4), "V": (1, 2, 5, 4)}
    m = attention_model(shapes, {"Y": (1, 2, 5, 4)}, opset=25, is_causal=causal,
                        left_window_size=left, right_window_size=right)
    check_against_reference(m, attention_feeds(rng, shapes), tmp_path, atol=1e-5)


def test_attention_float16(tmp_path):
    # Computed in float32, rounded once.
    rng = np.random.default_rng(235)
    shapes = {"Q": (1, 2, 3, 8), "K": (1, 2, 4, 8), "V": (1, 2, 4, 8)}
    feeds = attention_feeds(rng, shapes, F16)
    m = attention_model(shapes, {"Y": (1, 2, 3, 8)}, dtype=F16, is_causal=1)
    check_against_ort(m, feeds, tmp_path, rtol=2e-3, atol=1e-3)


ATTENTION_ERRORS = [
    ({"Q": (1, 6, 3, 4), "K": (1, 4, 5, 4), "V": (1, 4, 5, 4)}, {}, "6 query heads are not a multiple of 4"),
    ({"Q": (1, 2, 3, 4), "K": (1, 2, 5, 4), "V": (1, 2, 5, 4), "past_key": (1, 2, 2, 4)}, {},
     "only one of past_key and past_value"),
    ({"Q": (1, 2, 3, 4), "K": (1, 2, 5, 4), "V": (1, 2, 5, 4), "attn_mask": ((3, 6), F32)}, {},
     r"attn_mask of shape \[3, 6\] does not broadcast"),
    ({"Q": (1, 2, 3, 4), "K": (1, 2, 5, 4), "V": (1, 2, 5, 4)}, dict(qk_matmul_output_mode=4),
     "qk_matmul_output_mode 4"),
]


@pytest.mark.parametrize("shapes,attrs,message", ATTENTION_ERRORS, ids=lambda v: str(v)[:20])
def test_attention_rejects(shapes, attrs, message, tmp_path):
    q = shapes["Q"]
    m = attention_model(shapes, {"Y": q}, **attrs)
    with pytest.raises(qc.UnsupportedOp, match=message):
        qc.compile(m, str(tmp_path / "m.so"))


# --- trigonometric functions, IsInf / IsNaN, more activations --------------------


def unary_model(op, x, out_dtype=None, opset=18, **attrs):
    node = helper.make_node(op, ["x"], ["y"], **attrs)
    return model([node], {"x": (x.dtype, x.shape)}, {"y": (out_dtype or x.dtype, x.shape)}, opset)


# (op, input range): each function inside its domain.
FUNCTIONS = [("Sin", (-7, 7)), ("Cos", (-7, 7)), ("Tan", (-1.5, 1.5)), ("Asin", (-1, 1)), ("Acos", (-1, 1)),
             ("Atan", (-10, 10)), ("Sinh", (-5, 5)), ("Cosh", (-5, 5)), ("Asinh", (-10, 10)),
             ("Acosh", (1, 10)), ("Atanh", (-0.99, 0.99))]


def test_functions(tmp_path):
    # All eleven side by side, each on its own input; odd size: no dim fills a vector.
    rng = np.random.default_rng(240)
    feeds = {f"x_{op}": rng.uniform(*domain, (3, 7)).astype(F32) for op, domain in FUNCTIONS}
    nodes = [helper.make_node(op, [f"x_{op}"], [op]) for op, _ in FUNCTIONS]
    check_against_ort(side_by_side(nodes, feeds, {op: (F32, (3, 7)) for op, _ in FUNCTIONS}), feeds, tmp_path)


@pytest.mark.parametrize("dtype", [F16, F64])
def test_functions_other_floats(dtype, tmp_path):
    # float64 through libm's double functions; float16 computed in float32.
    x = np.linspace(-0.9, 0.9, 11).astype(dtype)
    check_against_reference(unary_model("Asin", x), {"x": x}, tmp_path, rtol=1e-3 if dtype == F16 else 1e-7)


SPECIALS = np.array([0.0, -0.0, 1.5, -2.0, np.inf, -np.inf, np.nan, 6.0e4], F32)  # 6e4: large, finite in float16


def test_isinf(tmp_path):
    # Both signs, one, or none detected, side by side.
    forms = [{}, {"detect_negative": 0}, {"detect_positive": 0}, {"detect_positive": 0, "detect_negative": 0}]
    nodes = [helper.make_node("IsInf", ["x"], [f"y{i}"], **a) for i, a in enumerate(forms)]
    m = side_by_side(nodes, {"x": SPECIALS}, {f"y{i}": (np.bool_, SPECIALS.shape) for i in range(len(forms))})
    check_against_ort(m, {"x": SPECIALS}, tmp_path)


@pytest.mark.parametrize("dtype", [F16, F32, F64])
def test_isnan(dtype, tmp_path):
    x = SPECIALS.astype(dtype)
    check_against_reference(unary_model("IsNaN", x, np.bool_), {"x": x}, tmp_path)


ACTIVATIONS = [
    ("ThresholdedRelu", {}),  # default alpha 1
    ("ThresholdedRelu", {"alpha": -0.5}),
    ("Shrink", {}),  # default lambd 0.5, bias 0
    ("Shrink", {"lambd": 1.5, "bias": 0.25}),
    ("Celu", {}),
    ("Celu", {"alpha": 2.5}),
]


def test_activations(tmp_path):
    rng = np.random.default_rng(241)
    x = rng.uniform(-4, 4, (5, 9)).astype(F32)
    nodes = [helper.make_node(op, ["x"], [f"y{i}"], **a) for i, (op, a) in enumerate(ACTIVATIONS)]
    m = side_by_side(nodes, {"x": x}, {f"y{i}": (F32, x.shape) for i in range(len(ACTIVATIONS))})
    check_against_ort(m, {"x": x}, tmp_path)


def test_swish(tmp_path):
    # Swish is opset 24: onnx.reference is the reference. Default alpha and 0.7.
    rng = np.random.default_rng(242)
    x = rng.uniform(-10, 10, (4, 9)).astype(F32)
    nodes = [helper.make_node("Swish", ["x"], ["y0"]), helper.make_node("Swish", ["x"], ["y1"], alpha=0.7)]
    m = side_by_side(nodes, {"x": x}, {"y0": (F32, x.shape), "y1": (F32, x.shape)}, 24)
    check_against_reference(m, {"x": x}, tmp_path)


def test_celu_float16(tmp_path):
    x = np.linspace(-3, 3, 13).astype(F16)
    check_against_reference(unary_model("Celu", x, alpha=2.0), {"x": x}, tmp_path, rtol=1e-3, atol=1e-3)


def test_misc_math_rejects(tmp_path):
    x = np.ones(3, I32)
    with pytest.raises(qc.UnsupportedOp, match=r"\(Sin\): element type int32"):
        qc.compile(unary_model("Sin", x), str(tmp_path / "m.so"))
    with pytest.raises(qc.UnsupportedOp, match=r"\(Celu\): alpha=0"):
        qc.compile(unary_model("Celu", np.ones(3, F32), alpha=0.0), str(tmp_path / "m.so"))


# --- Trilu, LogSoftmax, Hardmax -------------------------------------------------


@pytest.mark.parametrize("upper", [1, 0])
def test_trilu_constant_k(upper, tmp_path):
    # (2, 4, 6): batched, wider than tall. k omitted, 0, -2, 3, and 9 (past
    # every column: all zero or all kept), side by side.
    rng = np.random.default_rng(250)
    x = rng.integers(-9, 10, (2, 4, 6)).astype(I32)
    ks = {"k0": 0, "k1": -2, "k2": 3, "k3": 9}
    nodes = [helper.make_node("Trilu", ["x"], ["y"], upper=upper)]
    nodes += [helper.make_node("Trilu", ["x", k], [f"y_{k}"], upper=upper) for k in ks]
    outputs = {"y": (I32, x.shape)} | {f"y_{k}": (I32, x.shape) for k in ks}
    m = side_by_side(nodes, {"x": x}, outputs, 14, {k: np.array(v, I64) for k, v in ks.items()})
    check_against_ort(m, {"x": x}, tmp_path)


@pytest.mark.parametrize("dtype", [F32, np.bool_])
def test_trilu_runtime_k(dtype, tmp_path):
    # k read at run time; (5, 3): taller than wide.
    rng = np.random.default_rng(251)
    x = (rng.uniform(-1, 1, (5, 3)) > 0) if dtype == np.bool_ else rng.uniform(-1, 1, (5, 3)).astype(dtype)
    node = helper.make_node("Trilu", ["x", "k"], ["y"], upper=0)
    m = model([node], {"x": (dtype, x.shape), "k": (I64, ())}, {"y": (dtype, x.shape)}, 14)
    check_against_ort(m, {"x": x, "k": np.array(-1, I64)}, tmp_path)


SOFTMAX_AXES = [(13, None), (13, 0), (13, -2), (11, None), (11, 0), (11, 2)]


@pytest.mark.parametrize("opset,axis", SOFTMAX_AXES, ids=str)
def test_softmax_family(opset, axis, tmp_path):
    # Opset 11 reduces over all dims >= axis, opset 13 over axis alone; both ops side by side.
    rng = np.random.default_rng(252)
    x = rng.uniform(-30, 30, (3, 4, 5)).astype(F32)
    x[1, 2] = x[1, 2].max()  # ties: Hardmax marks the first maximum only
    attrs = {} if axis is None else {"axis": axis}
    ops = ["LogSoftmax", "Hardmax"]
    nodes = [helper.make_node(op, ["x"], [op], **attrs) for op in ops]
    m = side_by_side(nodes, {"x": x}, {op: (F32, x.shape) for op in ops}, opset)
    check_against_ort(m, {"x": x}, tmp_path, atol=1e-5)


def test_logsoftmax_float64(tmp_path):
    x = np.array([[1000.0, 0.0, -1000.0], [1.0, 2.0, 3.0]], F64)  # no overflow for large inputs
    check_against_ort(unary_model("LogSoftmax", x, opset=13), {"x": x}, tmp_path)


def test_softmax_family_rejects(tmp_path):
    with pytest.raises(qc.UnsupportedOp, match=r"\(Hardmax\): element type float16"):
        qc.compile(unary_model("Hardmax", np.ones((2, 3), F16), opset=13), str(tmp_path / "m.so"))


# --- CumSum, CumProd ------------------------------------------------------------


def cumulative_model(op, x, axis, opset, **attrs):
    node = helper.make_node(op, ["x", "axis"], ["y"], **attrs)
    return model([node], {"x": (x.dtype, x.shape)}, {"y": (x.dtype, x.shape)}, opset, {"axis": np.array(axis, I64)})


CUMULATIVE_FORMS = [{}, {"exclusive": 1}, {"reverse": 1}, {"exclusive": 1, "reverse": 1}]


def every_form(op, x, axis, opset):
    """The four exclusive/reverse forms side by side."""
    nodes = [helper.make_node(op, ["x", "axis"], [f"y{i}"], **a) for i, a in enumerate(CUMULATIVE_FORMS)]
    outputs = {f"y{i}": (x.dtype, x.shape) for i in range(len(CUMULATIVE_FORMS))}
    return side_by_side(nodes, {"x": x}, outputs, opset, {"axis": np.array(axis, I64)})


@pytest.mark.parametrize("axis", [0, -1])
def test_cumsum(axis, tmp_path):
    # (4, 7): both axes, an odd length.
    rng = np.random.default_rng(260)
    x = rng.uniform(-5, 5, (4, 7)).astype(F32)
    check_against_ort(every_form("CumSum", x, axis, 14), {"x": x}, tmp_path, atol=1e-5)


@pytest.mark.parametrize("dtype", [I32, I64, F64])
def test_cumsum_types(dtype, tmp_path):
    x = np.arange(1, 25).reshape(2, 3, 4).astype(dtype)
    check_against_ort(cumulative_model("CumSum", x, 1, 14, reverse=1), {"x": x}, tmp_path)


@pytest.mark.parametrize("dtype", [F32, I64])
def test_cumprod(dtype, tmp_path):
    # CumProd is opset 26: onnx.reference is the reference.
    rng = np.random.default_rng(261)
    x = rng.uniform(-2, 2, (3, 5)).astype(dtype) if dtype == F32 else rng.integers(-3, 4, (3, 5)).astype(dtype)
    check_against_reference(every_form("CumProd", x, 1, 26), {"x": x}, tmp_path)


def test_cumulative_rejects(tmp_path):
    x = np.ones((2, 3), F32)
    node = helper.make_node("CumSum", ["x", "axis"], ["y"])
    m = model([node], {"x": (F32, x.shape), "axis": (I64, ())}, {"y": (F32, x.shape)}, 14)
    with pytest.raises(qc.UnsupportedOp, match=r"\(CumSum\): the axis input must be known at compile time"):
        qc.compile(m, str(tmp_path / "m.so"))
    with pytest.raises(qc.UnsupportedOp, match=r"\(CumSum\): element type int8"):
        qc.compile(cumulative_model("CumSum", np.ones(3, I8), 0, 14), str(tmp_path / "m.so"))


# --- LpNormalization, GroupNormalization ----------------------------------------


def test_lp_normalization(tmp_path):
    # p 1 and 2 along either axis, side by side.
    rng = np.random.default_rng(270)
    x = rng.uniform(-3, 3, (3, 7)).astype(F32)
    forms = [(p, axis) for p in (1, 2) for axis in (0, -1)]
    nodes = [helper.make_node("LpNormalization", ["x"], [f"y{p}{axis}"], p=p, axis=axis) for p, axis in forms]
    m = side_by_side(nodes, {"x": x}, {f"y{p}{axis}": (F32, x.shape) for p, axis in forms})
    check_against_ort(m, {"x": x}, tmp_path)


def test_lp_normalization_zero_norm(tmp_path):
    # A zero row gives 0, not NaN (ONNX's reference).
    x = np.array([[0.0, 0.0, 0.0], [3.0, -4.0, 0.0]], F32)
    with np.errstate(invalid="ignore"):  # the reference divides 0 by 0 before it selects
        got = check_against_reference(unary_model("LpNormalization", x, opset=18), {"x": x}, tmp_path)
    np.testing.assert_array_equal(got["y"][0], 0)


@pytest.mark.parametrize("groups", [1, 2, 6])
def test_group_normalization(groups, tmp_path):
    # (2, 6, 3, 5): 6 channels in one group, 2 groups, or one per channel.
    rng = np.random.default_rng(271)
    x = rng.uniform(-2, 3, (2, 6, 3, 5)).astype(F32)
    feeds = {"x": x, "s": rng.uniform(-1, 1, (6,)).astype(F32), "bias": rng.uniform(-1, 1, (6,)).astype(F32)}
    node = helper.make_node("GroupNormalization", ["x", "s", "bias"], ["y"], num_groups=groups, epsilon=1e-3)
    m = model([node], {n: (F32, v.shape) for n, v in feeds.items()}, {"y": (F32, x.shape)}, 21)
    check_against_reference(m, feeds, tmp_path, atol=1e-5)


def test_misc_norm_rejects(tmp_path):
    with pytest.raises(qc.UnsupportedOp, match=r"\(LpNormalization\): p=3"):
        qc.compile(unary_model("LpNormalization", np.ones((2, 3), F32), p=3), str(tmp_path / "m.so"))
    node = helper.make_node("GroupNormalization", ["x", "s", "bias"], ["y"], num_groups=4)
    m = model([node], {"x": (F32, (1, 6, 3)), "s": (F32, (6,)), "bias": (F32, (6,))}, {"y": (F32, (1, 6, 3))}, 21)
    with pytest.raises(qc.UnsupportedOp, match=r"6 channels do not split into 4 groups"):
        qc.compile(m, str(tmp_path / "m.so"))


# --- RotaryEmbedding ------------------------------------------------------------

ROTARY_CASES = [
    # (input shape, rotary_embedding_dim, interleaved, position_ids, attributes)
    ((2, 3, 5, 8), 0, 0, True, {}),  # [B, H, S, D], the whole head rotated
    ((2, 3, 5, 8), 0, 1, True, {}),  # pairs (2m, 2m + 1)
    ((2, 3, 5, 8), 4, 0, True, {}),  # the first 4 features rotated, 4 passed through
    ((2, 3, 5, 10), 6, 1, True, {}),  # interleaved and partial, odd pass-through count
    ((2, 5, 24), 0, 0, True, {"num_heads": 3}),  # [B, S, H*D]
    ((2, 3, 5, 8), 0, 0, False, {}),  # per-token tables, no position ids
]


@pytest.mark.parametrize("shape,rot,interleaved,with_pos,attrs", ROTARY_CASES, ids=str)
def test_rotary_embedding(shape, rot, interleaved, with_pos, attrs, tmp_path):
    rng = np.random.default_rng(280)
    head = shape[3] if len(shape) == 4 else shape[2] // attrs["num_heads"]
    half = (rot or head) // 2
    bsz, seq = shape[0], shape[2] if len(shape) == 4 else shape[1]
    table = (11, half) if with_pos else (bsz, seq, half)
    angles = rng.uniform(0, 6.3, table)
    feeds = {"x": rng.uniform(-1, 1, shape).astype(F32), "cos": np.cos(angles).astype(F32),
             "sin": np.sin(angles).astype(F32)}
    if with_pos:
        feeds["pos"] = rng.integers(0, 11, (bsz, seq)).astype(I64)
    if rot:
        attrs = {**attrs, "rotary_embedding_dim": rot}
    node = helper.make_node("RotaryEmbedding", list(feeds), ["y"], interleaved=interleaved, **attrs)
    m = model([node], {n: (v.dtype, v.shape) for n, v in feeds.items()}, {"y": (F32, shape)}, 23)
    check_against_ort(m, feeds, tmp_path)


def test_rotary_embedding_float16(tmp_path):
    rng = np.random.default_rng(281)
    angles = rng.uniform(0, 6.3, (7, 4))
    feeds = {"x": rng.uniform(-1, 1, (1, 2, 3, 8)).astype(F16), "cos": np.cos(angles).astype(F16),
             "sin": np.sin(angles).astype(F16), "pos": np.array([[0, 6, 3]], I64)}
    node = helper.make_node("RotaryEmbedding", list(feeds), ["y"])
    m = model([node], {n: (v.dtype, v.shape) for n, v in feeds.items()}, {"y": (F16, (1, 2, 3, 8))}, 23)
    check_against_reference(m, feeds, tmp_path, rtol=2e-3, atol=2e-3)


def test_rotary_embedding_rejects(tmp_path):
    feeds = {"x": (F32, (1, 2, 3, 8)), "cos": (F32, (5, 3)), "sin": (F32, (5, 3)), "pos": (I64, (1, 3))}
    node = helper.make_node("RotaryEmbedding", list(feeds), ["y"])
    m = model([node], feeds, {"y": (F32, (1, 2, 3, 8))}, 23)
    with pytest.raises(qc.UnsupportedOp, match=r"cos_cache has shape \[5, 3\]; supported: \[max_position, 4\]"):
        qc.compile(m, str(tmp_path / "m.so"))


# --- TopK -----------------------------------------------------------------------


def topk_model(x, k, opset=11, **attrs):
    axis = attrs.get("axis", -1) % x.ndim
    out_shape = tuple(k if d == axis else s for d, s in enumerate(x.shape))
    outputs = {"values": (x.dtype, out_shape), "indices": (I64, out_shape)}
    if opset < 10:
        node = helper.make_node("TopK", ["x"], list(outputs), k=k, **attrs)
        return model([node], {"x": (x.dtype, x.shape)}, outputs, opset)
    node = helper.make_node("TopK", ["x", "k"], list(outputs), **attrs)
    return model([node], {"x": (x.dtype, x.shape)}, outputs, opset, {"k": np.array([k], I64)})


@pytest.mark.parametrize("axis,k", [(-1, 3), (0, 1), (1, 7)])  # k = 7: the whole line, sorted
def test_topk(axis, k, tmp_path):
    # Largest and smallest side by side.
    rng = np.random.default_rng(290)
    x = rng.permutation(4 * 7 * 5).reshape(4, 7, 5).astype(F32)  # distinct values
    out_shape = tuple(k if d == axis % 3 else n for d, n in enumerate(x.shape))
    nodes = [helper.make_node("TopK", ["x", "k"], [f"v{lg}", f"i{lg}"], axis=axis, largest=lg) for lg in (0, 1)]
    outputs = {}
    for lg in (0, 1):
        outputs |= {f"v{lg}": (F32, out_shape), f"i{lg}": (I64, out_shape)}
    m = side_by_side(nodes, {"x": x}, outputs, 11, {"k": np.array([k], I64)})
    check_against_ort(m, {"x": x}, tmp_path)


@pytest.mark.parametrize("largest", [1, 0])
def test_topk_ties(largest, tmp_path):
    # Equal values keep the lower index first, for both directions.
    x = np.array([[3, 1, 3, 2, 1, 3], [0, 0, 0, 0, 0, 0]], I64)
    check_against_ort(topk_model(x, 4, largest=largest), {"x": x}, tmp_path)


def test_topk_opset1_attribute(tmp_path):
    x = np.array([[0.5, -1.0, 2.0, 7.0, 0.25]], F64)
    check_against_ort(topk_model(x, 2, opset=9), {"x": x}, tmp_path)


def test_topk_unsigned(tmp_path):
    # Values above 2^63 are largest read unsigned.
    x = np.array([[1, 2**63 + 5, 7, 2**64 - 1]], U64)
    check_against_reference(topk_model(x, 2), {"x": x}, tmp_path)


def test_topk_rejects(tmp_path):
    x = np.ones((2, 3), F32)
    node = helper.make_node("TopK", ["x", "k"], ["v", "i"])
    m = model([node], {"x": (F32, x.shape), "k": (I64, (1,))}, {"v": (F32, (2, 1)), "i": (I64, (2, 1))}, 11)
    with pytest.raises(qc.UnsupportedOp, match=r"\(TopK\): the k input must be known at compile time"):
        qc.compile(m, str(tmp_path / "m.so"))


# --- NegativeLogLikelihoodLoss, SoftmaxCrossEntropyLoss --------------------------

LOSS_CASES = [
    # (input shape, reduction, weight, ignore_index)
    ((4, 5), "none", False, None),
    ((4, 5), "mean", False, None),
    ((4, 5, 3), "sum", True, None),  # [N, C, d1]
    ((2, 5, 3, 2), "mean", True, 1),  # ignored targets drop out of the mean's denominator
    ((4, 5, 3), "mean", False, 2),
    ((4, 5), "none", True, -1),  # a negative ignore_index (ignored targets read no weight)
]


@pytest.mark.parametrize("shape,reduction,weighted,ignore", LOSS_CASES, ids=str)
def test_loss(shape, reduction, weighted, ignore, tmp_path):
    rng = np.random.default_rng(300)
    n, c = shape[:2]
    tshape = (n, *shape[2:])
    feeds = {"x": rng.uniform(-3, 0.5, shape).astype(F32), "t": rng.integers(0, c, tshape).astype(I64)}
    if ignore is not None:
        feeds["t"].flat[::3] = ignore
    if weighted:
        feeds["w"] = rng.uniform(0.2, 2, (c,)).astype(F32)
    attrs = {"reduction": reduction} | ({} if ignore is None else {"ignore_index": ignore})
    out_shape = tshape if reduction == "none" else ()
    # Both losses side by side; SoftmaxCrossEntropyLoss also returns log_prob.
    nodes = [helper.make_node("NegativeLogLikelihoodLoss", list(feeds), ["nll"], **attrs),
             helper.make_node("SoftmaxCrossEntropyLoss", list(feeds), ["sce", "log_prob"], **attrs)]
    outputs = {"nll": (F32, out_shape), "sce": (F32, out_shape), "log_prob": (F32, shape)}
    check_against_ort(side_by_side(nodes, feeds, outputs, 13), feeds, tmp_path, atol=1e-5)


def test_loss_int32_target_float64(tmp_path):
    rng = np.random.default_rng(301)
    feeds = {"x": rng.uniform(-3, 0, (3, 4)).astype(F64), "t": np.array([0, 3, 1], I32)}
    node = helper.make_node("NegativeLogLikelihoodLoss", ["x", "t"], ["loss"], reduction="sum")
    m = model([node], {k: (v.dtype, v.shape) for k, v in feeds.items()}, {"loss": (F64, ())}, 13)
    check_against_reference(m, feeds, tmp_path)


def test_loss_rejects(tmp_path):
    node = helper.make_node("NegativeLogLikelihoodLoss", ["x", "t", "w"], ["loss"])
    m = model([node], {"x": (F32, (3, 4)), "t": (I64, (3,)), "w": (F32, (3,))}, {"loss": (F32, ())}, 13)
    with pytest.raises(qc.UnsupportedOp, match=r"weight is float32\[3\]; supported: float32\[4\]"):
        qc.compile(m, str(tmp_path / "m.so"))


# --- OneHot ---------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [I64, I32, F32])
def test_one_hot(dtype, tmp_path):
    # Negative indices wrap; 9 and -9 are out of range for depth 5 (all off).
    # The new axis last, first and in the middle, side by side.
    feeds = {"i": np.array([[0, 4, -1], [-5, 9, -9]], dtype), "values": np.array([-0.5, 2.0], F32)}
    depth = 5
    nodes, outputs = [], {}
    for axis in (-1, 0, 1):
        out_shape = [2, 3]
        out_shape.insert(axis % 3, depth)
        nodes.append(helper.make_node("OneHot", ["i", "depth", "values"], [f"y{axis}"], axis=axis))
        outputs[f"y{axis}"] = (F32, out_shape)
    m = side_by_side(nodes, feeds, outputs, 11, {"depth": np.array(depth, I64)})
    if dtype == I64:
        check_against_ort(m, feeds, tmp_path)
    else:  # onnxruntime has no kernel for these index types
        check_against_reference(m, feeds, tmp_path)


def test_one_hot_rejects(tmp_path):
    node = helper.make_node("OneHot", ["i", "depth", "values"], ["y"])
    m = model([node], {"i": (I64, (3,)), "depth": (I64, ()), "values": (F32, (2,))}, {"y": (F32, (3, 4))}, 11)
    with pytest.raises(qc.UnsupportedOp, match=r"\(OneHot\): the depth input must be known at compile time"):
        qc.compile(m, str(tmp_path / "m.so"))


# --- LpPool ---------------------------------------------------------------------

LPPOOL_CASES = [
    # (input shape, attributes, output shape)
    ((1, 2, 9), dict(kernel_shape=[3], p=3), (1, 2, 7)),  # 1-D, a general p (powf)
    ((2, 3, 7, 6), dict(kernel_shape=[3, 2], p=2, pads=[1, 0, 2, 1], strides=[2, 2]), (2, 3, 4, 3)),
    ((1, 2, 5, 5), dict(kernel_shape=[2, 2], p=1, auto_pad="SAME_UPPER"), (1, 2, 5, 5)),
    ((1, 1, 6, 6), dict(kernel_shape=[2, 2], p=2, dilations=[2, 2]), (1, 1, 4, 4)),
    ((1, 2, 4, 5, 3), dict(kernel_shape=[2, 2, 2], p=2), (1, 2, 3, 4, 2)),  # 3-D
]


def test_lppool(tmp_path):
    # Every case side by side, each on its own input.
    rng = np.random.default_rng(310)
    feeds = {f"x{i}": rng.uniform(-2, 2, shape).astype(F32) for i, (shape, _, _) in enumerate(LPPOOL_CASES)}
    nodes = [helper.make_node("LpPool", [f"x{i}"], [f"y{i}"], **a) for i, (_, a, _) in enumerate(LPPOOL_CASES)]
    outputs = {f"y{i}": (F32, out) for i, (_, _, out) in enumerate(LPPOOL_CASES)}
    check_against_ort(side_by_side(nodes, feeds, outputs, 18), feeds, tmp_path, atol=1e-5)


def test_lppool_rejects(tmp_path):
    node = helper.make_node("LpPool", ["x"], ["y"], kernel_shape=[2, 2], p=0)
    m = model([node], {"x": (F32, (1, 1, 4, 4))}, {"y": (F32, (1, 1, 3, 3))}, 18)
    with pytest.raises(qc.UnsupportedOp, match=r"\(LpPool\): p=0"):
        qc.compile(m, str(tmp_path / "m.so"))


# --- CenterCropPad, GatherND, EyeLike, SwiGLU, ReduceLogSum ----------------------


def test_center_crop_pad(tmp_path):
    # Crop (odd and even excess), pad (odd and even), and both at once, side by side.
    rng = np.random.default_rng(320)
    x = rng.uniform(-1, 1, (7, 6, 3)).astype(F32)
    forms = [([4, 3, 3], {}), ([10, 9, 3], {}), ([5, 8], {"axes": [0, 1]}), ([2, 5], {"axes": [-1, -3]})]
    nodes, outputs, inits = [], {}, {}
    for i, (shape, attrs) in enumerate(forms):
        inits[f"s{i}"] = np.array(shape, I64)
        nodes.append(helper.make_node("CenterCropPad", ["x", f"s{i}"], [f"y{i}"], **attrs))
        out = list(x.shape)
        for a, s in zip(attrs.get("axes", range(3)), shape):
            out[a] = s
        outputs[f"y{i}"] = (F32, out)
    check_against_ort(side_by_side(nodes, {"x": x}, outputs, 18, inits), {"x": x}, tmp_path)


def test_gather_nd(tmp_path):
    # Whole-element tuples, partial tuples (rows), negative indices, batch_dims=1.
    rng = np.random.default_rng(321)
    feeds = {"data": rng.uniform(-1, 1, (3, 4, 5)).astype(F32),
             "full": np.array([[0, 1, 2], [2, -1, -5], [1, 3, 4]], I64),  # -> [3]
             "rows": np.array([[[0, 1]], [[-1, 2]]], I64),  # -> [2, 1, 5]
             "batched": np.array([[1, 4], [3, 0], [0, 2]], I64)}  # batch_dims 1: -> [3]
    nodes = [helper.make_node("GatherND", ["data", "full"], ["y0"]),
             helper.make_node("GatherND", ["data", "rows"], ["y1"]),
             helper.make_node("GatherND", ["data", "batched"], ["y2"], batch_dims=1)]
    outputs = {"y0": (F32, (3,)), "y1": (F32, (2, 1, 5)), "y2": (F32, (3,))}
    check_against_ort(side_by_side(nodes, feeds, outputs, 13), feeds, tmp_path)


def test_eye_like(tmp_path):
    x = np.zeros((4, 6), I32)
    nodes = [helper.make_node("EyeLike", ["x"], ["y0"]),
             helper.make_node("EyeLike", ["x"], ["y1"], k=2, dtype=1),
             helper.make_node("EyeLike", ["x"], ["y2"], k=-3, dtype=7)]
    outputs = {"y0": (I32, x.shape), "y1": (F32, x.shape), "y2": (I64, x.shape)}
    check_against_ort(side_by_side(nodes, {"x": x}, outputs, 13), {"x": x}, tmp_path)


def test_swiglu(tmp_path):
    # SwiGLU is opset 28: onnx.reference is the reference. Default alpha and 0.5.
    rng = np.random.default_rng(322)
    feeds = {"a": rng.uniform(-6, 6, (3, 8)).astype(F32), "g": rng.uniform(-2, 2, (3, 8)).astype(F32)}
    nodes = [helper.make_node("SwiGLU", ["a", "g"], ["y0"]), helper.make_node("SwiGLU", ["a", "g"], ["y1"], alpha=0.5)]
    m = side_by_side(nodes, feeds, {"y0": (F32, (3, 8)), "y1": (F32, (3, 8))}, 28)
    check_against_reference(m, feeds, tmp_path)


def test_reduce_log_sum(tmp_path):
    # Axes as an input (opset 18): two axes kept, one dropped, none (all), and noop.
    rng = np.random.default_rng(323)
    x = rng.uniform(0.1, 2, (3, 4, 5)).astype(F32)
    inits = {"a02": np.array([0, 2], I64), "a1": np.array([-2], I64), "none": np.array([], I64)}
    nodes = [helper.make_node("ReduceLogSum", ["x", "a02"], ["y0"]),
             helper.make_node("ReduceLogSum", ["x", "a1"], ["y1"], keepdims=0),
             helper.make_node("ReduceLogSum", ["x"], ["y2"]),
             helper.make_node("ReduceLogSum", ["x", "none"], ["y3"], noop_with_empty_axes=1)]
    outputs = {"y0": (F32, (1, 4, 1)), "y1": (F32, (3, 5)), "y2": (F32, (1, 1, 1)), "y3": (F32, x.shape)}
    check_against_ort(side_by_side(nodes, {"x": x}, outputs, 18, inits), {"x": x}, tmp_path)


# --- ScatterElements, ScatterND, TensorScatter ----------------------------------


def test_scatter_elements(tmp_path):
    # Along axis 0 and 1 (negative indices), updates narrower than data off
    # the axis, and each reduction with duplicate indices, side by side.
    rng = np.random.default_rng(330)
    feeds = {"data": rng.uniform(-1, 1, (4, 5)).astype(F32),
             "i0": np.array([[3, 0, 1, 2, 3], [1, 2, 0, 0, 1]], I64), "u0": rng.uniform(-1, 1, (2, 5)).astype(F32),
             "i1": np.array([[4, -1, 0], [2, 1, -5]], I64), "u1": rng.uniform(-1, 1, (2, 3)).astype(F32),
             "dup": np.array([[1, 1, 3], [0, 0, 0], [2, 4, 2], [3, 3, 3]], I64),
             "u2": rng.uniform(0.5, 2, (4, 3)).astype(F32)}
    nodes = [helper.make_node("ScatterElements", ["data", "i0", "u0"], ["y0"]),
             helper.make_node("ScatterElements", ["data", "i1", "u1"], ["y1"], axis=1)]
    nodes += [helper.make_node("ScatterElements", ["data", "dup", "u2"], [f"y_{r}"], axis=1, reduction=r)
              for r in ("add", "mul", "max", "min")]
    outputs = {n.output[0]: (F32, (4, 5)) for n in nodes}
    check_against_ort(side_by_side(nodes, feeds, outputs, 18), feeds, tmp_path)


def test_scatter_elements_int_opset10(tmp_path):
    # The deprecated Scatter (opset 10) with int64 data and int32 indices.
    feeds = {"data": np.arange(12, dtype=I64).reshape(3, 4), "i": np.array([[2, 0, 1, 2]], I32),
             "u": np.array([[-1, -2, -3, -4]], I64)}
    node = helper.make_node("Scatter", ["data", "i", "u"], ["y"])
    check_against_ort(side_by_side([node], feeds, {"y": (I64, (3, 4))}, 10), feeds, tmp_path)


def test_scatter_nd(tmp_path):
    # Whole slices (q = 1), single elements (q = 2, one negative), and
    # reductions with a repeated tuple, side by side.
    rng = np.random.default_rng(331)
    feeds = {"data": rng.uniform(-1, 1, (4, 3, 2)).astype(F32),
             "slices": np.array([[2], [0]], I64), "us": rng.uniform(-1, 1, (2, 3, 2)).astype(F32),
             "elems": np.array([[[0, 1], [3, -1]]], I64), "ue": rng.uniform(-1, 1, (1, 2, 2)).astype(F32),
             "rep": np.array([[1, 1], [1, 1], [2, 0]], I64), "ur": rng.uniform(0.5, 2, (3, 2)).astype(F32)}
    nodes = [helper.make_node("ScatterND", ["data", "slices", "us"], ["y0"]),
             helper.make_node("ScatterND", ["data", "elems", "ue"], ["y1"])]
    nodes += [helper.make_node("ScatterND", ["data", "rep", "ur"], [f"y_{r}"], reduction=r)
              for r in ("add", "mul", "max", "min")]
    outputs = {n.output[0]: (F32, (4, 3, 2)) for n in nodes}
    check_against_ort(side_by_side(nodes, feeds, outputs, 18), feeds, tmp_path)


def test_tensor_scatter(tmp_path):
    # Opset 24 (onnx.reference): linear writes at per-batch offsets, circular
    # writes that wrap past the end, and the default axis -2 of a 3-D cache.
    rng = np.random.default_rng(332)
    feeds = {"past": rng.uniform(-1, 1, (2, 1, 5, 3)).astype(F32), "upd": rng.uniform(-1, 1, (2, 1, 2, 3)).astype(F32),
             "w": np.array([1, 3], I64), "wc": np.array([4, 0], I64)}
    nodes = [helper.make_node("TensorScatter", ["past", "upd", "w"], ["y0"]),
             helper.make_node("TensorScatter", ["past", "upd", "wc"], ["y1"], mode="circular"),
             helper.make_node("TensorScatter", ["past", "upd"], ["y2"], axis=2)]
    outputs = {n.output[0]: (F32, (2, 1, 5, 3)) for n in nodes}
    check_against_reference(side_by_side(nodes, feeds, outputs, 24), feeds, tmp_path)


def test_scatter_rejects(tmp_path):
    feeds = {"data": np.zeros((2, 2), np.bool_), "i": np.zeros((1, 2), I64), "u": np.zeros((1, 2), np.bool_)}
    node = helper.make_node("ScatterElements", ["data", "i", "u"], ["y"], reduction="add")
    with pytest.raises(qc.UnsupportedOp, match=r"reduction 'add' on bool"):
        qc.compile(side_by_side([node], feeds, {"y": (np.bool_, (2, 2))}, 18), str(tmp_path / "m.so"))


# --- GridSample, AffineGrid -----------------------------------------------------


@pytest.mark.parametrize("align", [0, 1])
def test_grid_sample_2d(align, tmp_path):
    # Every mode with every padding mode, side by side; the grid reaches past
    # [-1, 1] so padding matters. X [2, 3, 4, 5], grid [2, 3, 7, 2].
    rng = np.random.default_rng(340)
    feeds = {"x": rng.uniform(-1, 1, (2, 3, 4, 5)).astype(F32), "g": rng.uniform(-1.7, 1.7, (2, 3, 7, 2)).astype(F32)}
    forms = [(m, p) for m in ("nearest", "linear", "cubic") for p in ("zeros", "border", "reflection")]
    nodes = [helper.make_node("GridSample", ["x", "g"], [f"{m}_{p}"], mode=m, padding_mode=p, align_corners=align)
             for m, p in forms]
    outputs = {f"{m}_{p}": (F32, (2, 3, 3, 7)) for m, p in forms}
    check_against_ort(side_by_side(nodes, feeds, outputs, 20), feeds, tmp_path, atol=1e-5)


def test_grid_sample_3d(tmp_path):
    rng = np.random.default_rng(341)
    feeds = {"x": rng.uniform(-1, 1, (1, 2, 3, 4, 5)).astype(F32),
             "g": rng.uniform(-1.3, 1.3, (1, 2, 3, 4, 3)).astype(F32)}
    forms = [("nearest", "zeros", 0), ("linear", "border", 1), ("linear", "reflection", 0)]
    nodes = [helper.make_node("GridSample", ["x", "g"], [f"y{i}"], mode=m, padding_mode=p, align_corners=al)
             for i, (m, p, al) in enumerate(forms)]
    outputs = {f"y{i}": (F32, (1, 2, 2, 3, 4)) for i in range(len(forms))}
    check_against_ort(side_by_side(nodes, feeds, outputs, 20), feeds, tmp_path, atol=1e-5)


def test_affine_grid(tmp_path):
    # 2-D and 3-D, with and without align_corners. (A size-1 dim with
    # align_corners divides by zero: onnxruntime and ONNX's reference disagree.)
    rng = np.random.default_rng(342)
    feeds = {"t2": rng.uniform(-1, 1, (2, 2, 3)).astype(F32), "t3": rng.uniform(-1, 1, (1, 3, 4)).astype(F32)}
    inits = {"s2": np.array([2, 3, 4, 5], I64), "s3": np.array([1, 1, 2, 2, 3], I64)}
    nodes = [helper.make_node("AffineGrid", ["t2", "s2"], [f"g2_{al}"], align_corners=al) for al in (0, 1)]
    nodes += [helper.make_node("AffineGrid", ["t3", "s3"], [f"g3_{al}"], align_corners=al) for al in (0, 1)]
    outputs = {f"g2_{al}": (F32, (2, 4, 5, 2)) for al in (0, 1)} | {f"g3_{al}": (F32, (1, 2, 2, 3, 3)) for al in (0, 1)}
    check_against_ort(side_by_side(nodes, feeds, outputs, 20, inits), feeds, tmp_path, atol=1e-6)


# --- CausalConvWithState --------------------------------------------------------


def test_causal_conv_with_state(tmp_path):
    # Opset 27 (onnx.reference): zero and carried left context, bias, SiLU;
    # kernel 4 on length 6, and kernel 5 longer than a length-2 input.
    rng = np.random.default_rng(350)
    feeds = {"x": rng.uniform(-1, 1, (2, 3, 6)).astype(F32), "w": rng.uniform(-1, 1, (3, 1, 4)).astype(F32),
             "bias": rng.uniform(-1, 1, (3,)).astype(F32), "past": rng.uniform(-1, 1, (2, 3, 3)).astype(F32),
             "short": rng.uniform(-1, 1, (2, 3, 2)).astype(F32), "w5": rng.uniform(-1, 1, (3, 1, 5)).astype(F32)}
    forms = [(["x", "w"], {}), (["x", "w", "bias"], {"activation": "silu"}), (["x", "w", "", "past"], {}),
             (["x", "w", "bias", "past"], {"activation": "swish"}), (["short", "w5"], {})]
    nodes, outputs = [], {}
    for i, (ins, a) in enumerate(forms):
        nodes.append(helper.make_node("CausalConvWithState", ins, [f"y{i}", f"s{i}"], **a))
        k = 5 if "w5" in ins else 4
        outputs |= {f"y{i}": (F32, feeds[ins[0]].shape), f"s{i}": (F32, (2, 3, k - 1))}
    check_against_reference(side_by_side(nodes, feeds, outputs, 27), feeds, tmp_path, atol=1e-5)


def test_causal_conv_with_state_float16(tmp_path):
    rng = np.random.default_rng(351)
    feeds = {"x": rng.uniform(-1, 1, (1, 2, 5)).astype(F16), "w": rng.uniform(-1, 1, (2, 1, 3)).astype(F16)}
    node = helper.make_node("CausalConvWithState", ["x", "w"], ["y", "s"], activation="silu")
    m = side_by_side([node], feeds, {"y": (F16, (1, 2, 5)), "s": (F16, (1, 2, 2))}, 27)
    check_against_reference(m, feeds, tmp_path, rtol=2e-3, atol=2e-3)


# --- RNN, GRU, LSTM -------------------------------------------------------------

RNN_GATES = {"RNN": 1, "GRU": 3, "LSTM": 4}


def rnn_case(rng, op, seq, batch, size, hidden, dirs, layout, bias=True, init=True, peep=False):
    """Feeds and shapes for one recurrent node (all operands as run-time inputs)."""
    g = RNN_GATES[op]
    feeds = {"x": rng.uniform(-1, 1, (seq, batch, size) if layout == 0 else (batch, seq, size)).astype(F32),
             "w": rng.uniform(-0.6, 0.6, (dirs, g * hidden, size)).astype(F32),
             "r": rng.uniform(-0.6, 0.6, (dirs, g * hidden, hidden)).astype(F32)}
    names = ["x", "w", "r"]
    state = (dirs, batch, hidden) if layout == 0 else (batch, dirs, hidden)
    if bias:
        feeds["b"] = rng.uniform(-0.5, 0.5, (dirs, 2 * g * hidden)).astype(F32)
    names.append("b" if bias else "")
    names.append("")  # sequence_lens
    if init:
        feeds["h0"] = rng.uniform(-1, 1, state).astype(F32)
        names.append("h0")
        if op == "LSTM":
            feeds["c0"] = rng.uniform(-1, 1, state).astype(F32)
            names.append("c0")
    if peep:
        feeds["p"] = rng.uniform(-0.5, 0.5, (dirs, 3 * hidden)).astype(F32)
        names += [""] * (7 - len(names)) + ["p"]
    y = (seq, dirs, batch, hidden) if layout == 0 else (batch, seq, dirs, hidden)
    outputs = {"y": (F32, y), "y_h": (F32, state)}
    if op == "LSTM":
        outputs["y_c"] = (F32, state)
    return feeds, names, outputs


RNN_CASES = [
    # (op, seq, batch, input size, hidden, direction, layout, attributes, options)
    ("RNN", 4, 3, 5, 6, "forward", 0, {}, {}),
    ("RNN", 3, 2, 3, 4, "bidirectional", 0, {"activations": ["LeakyRelu", "HardSigmoid"],
                                             "activation_alpha": [0.2, 0.3], "activation_beta": [0.4]}, {}),
    ("RNN", 3, 2, 3, 4, "bidirectional", 1, {}, {}),
    ("GRU", 4, 2, 3, 5, "forward", 0, {"clip": 0.5}, {}),
    ("GRU", 3, 2, 3, 4, "reverse", 0, {"linear_before_reset": 1}, {}),
    ("GRU", 2, 3, 4, 3, "bidirectional", 1, {}, {"init": False}),
    ("LSTM", 4, 2, 3, 5, "forward", 0, {}, {}),
    ("LSTM", 3, 2, 4, 3, "bidirectional", 0, {"clip": 1.2}, {"peep": True}),
    ("LSTM", 2, 3, 2, 4, "reverse", 1, {}, {"bias": False}),
]


@pytest.mark.parametrize("op,seq,batch,size,hidden,direction,layout,attrs,opts", RNN_CASES,
                         ids=[f"{c[0]}-{c[5]}-layout{c[6]}-{i}" for i, c in enumerate(RNN_CASES)])
def test_rnn(op, seq, batch, size, hidden, direction, layout, attrs, opts, tmp_path):
    rng = np.random.default_rng(360)
    dirs = 2 if direction == "bidirectional" else 1
    feeds, names, outputs = rnn_case(rng, op, seq, batch, size, hidden, dirs, layout, **opts)
    node = helper.make_node(op, names, list(outputs), hidden_size=hidden, direction=direction, layout=layout, **attrs)
    m = side_by_side([node], feeds, outputs, 14)
    if layout == 0:
        check_against_ort(m, feeds, tmp_path, atol=1e-5)
    else:  # onnxruntime has no batch-major (layout 1) kernels
        check_against_reference(m, feeds, tmp_path, atol=1e-5)


def test_rnn_rejects(tmp_path):
    rng = np.random.default_rng(361)
    feeds, names, outputs = rnn_case(rng, "RNN", 2, 1, 2, 3, 1, 0, bias=False, init=False)
    node = helper.make_node("RNN", names, list(outputs), hidden_size=3, activations=["Gelu"])
    with pytest.raises(qc.UnsupportedOp, match=r"\(RNN\): activation 'Gelu'"):
        qc.compile(side_by_side([node], feeds, outputs, 14), str(tmp_path / "m.so"))


# --- LinearAttention ------------------------------------------------------------


def test_linear_attention(tmp_path):
    # Opset 27 (onnx.reference). Every update rule side by side on shared
    # inputs: B 2, T 3, 4 query heads on 2 kv heads of dk 3, dv 2; per-key
    # and per-head decay, per-head and shared beta, a past state, a scale.
    rng = np.random.default_rng(370)
    feeds = {"q": rng.uniform(-1, 1, (2, 3, 12)).astype(F32), "k": rng.uniform(-1, 1, (2, 3, 6)).astype(F32),
             "v": rng.uniform(-1, 1, (2, 3, 4)).astype(F32), "past": rng.uniform(-1, 1, (2, 2, 3, 2)).astype(F32),
             "g": rng.uniform(-1, 0, (2, 3, 6)).astype(F32), "gh": rng.uniform(-1, 0, (2, 3, 2)).astype(F32),
             "beta": rng.uniform(0, 1, (2, 3, 2)).astype(F32), "beta1": rng.uniform(0, 1, (2, 3, 1)).astype(F32)}
    forms = [(["q", "k", "v"], {"update_rule": "linear"}),
             (["q", "k", "v", "past", "gh"], {"update_rule": "gated"}),
             (["q", "k", "v", "", "", "beta1"], {"update_rule": "delta", "scale": 0.5}),
             (["q", "k", "v", "past", "g", "beta"], {})]  # gated_delta, the default
    nodes, outputs = [], {}
    for i, (ins, a) in enumerate(forms):
        nodes.append(helper.make_node("LinearAttention", ins, [f"y{i}", f"s{i}"], q_num_heads=4, kv_num_heads=2, **a))
        outputs |= {f"y{i}": (F32, (2, 3, 8)), f"s{i}": (F32, (2, 2, 3, 2))}
    check_against_reference(side_by_side(nodes, feeds, outputs, 27), feeds, tmp_path, atol=1e-5)


def test_linear_attention_decode_float16(tmp_path):
    # One step (T = 1) from a past state, float16 computed in float32.
    rng = np.random.default_rng(371)
    feeds = {"q": rng.uniform(-1, 1, (1, 1, 8)).astype(F16), "k": rng.uniform(-1, 1, (1, 1, 8)).astype(F16),
             "v": rng.uniform(-1, 1, (1, 1, 8)).astype(F16), "past": rng.uniform(-1, 1, (1, 2, 4, 4)).astype(F16),
             "g": rng.uniform(-1, 0, (1, 1, 8)).astype(F16), "beta": rng.uniform(0, 1, (1, 1, 2)).astype(F16)}
    node = helper.make_node("LinearAttention", list(feeds), ["y", "s"], q_num_heads=2, kv_num_heads=2)
    m = side_by_side([node], feeds, {"y": (F16, (1, 1, 8)), "s": (F16, (1, 2, 4, 4))}, 27)
    check_against_reference(m, feeds, tmp_path, rtol=3e-3, atol=3e-3)


def test_linear_attention_rejects(tmp_path):
    # The unrolled recurrence has a length limit.
    feeds = {n: np.ones((1, 257, 4), F32) for n in ("q", "k", "v")}
    node = helper.make_node("LinearAttention", list(feeds), ["y", "s"], q_num_heads=1, kv_num_heads=1,
                            update_rule="linear")
    m = side_by_side([node], feeds, {"y": (F32, (1, 257, 4)), "s": (F32, (1, 1, 4, 4))}, 27)
    with pytest.raises(qc.UnsupportedOp, match=r"a sequence of 257 steps; supported: at most 256"):
        qc.compile(m, str(tmp_path / "m.so"))


# --- BitCast --------------------------------------------------------------------


def test_bitcast(tmp_path):
    # Opset 26 (onnx.reference): float <-> int both ways, signedness, bool <-> byte, half.
    f = np.array([1.0, -0.0, np.inf, 3.5e-39, -2.5], F32)  # a denormal and -0.0 keep their bits
    feeds = {"f": f, "i": f.view(I32), "u": np.array([0, 1, 2**31, 2**32 - 1, 7], U32),
             "d": np.array([1.0, -np.pi], F64), "bo": np.array([True, False, True]),
             "h": np.array([1.0, -2.0, 65504.0], F16), "by": np.array([0, 1, 1], U8)}
    casts = [("f", 6, I32), ("i", 1, F32), ("u", 6, I32), ("d", 7, I64), ("bo", 2, U8), ("h", 5, I16),
             ("by", 9, np.bool_)]
    nodes = [helper.make_node("BitCast", [src], [f"y_{src}"], to=to) for src, to, _ in casts]
    outputs = {f"y_{src}": (dt, feeds[src].shape) for src, _, dt in casts}
    check_against_reference(side_by_side(nodes, feeds, outputs, 26), feeds, tmp_path)


def test_bitcast_rejects(tmp_path):
    # bfloat16 in the middle of the graph: qc has no such type.
    nodes = [helper.make_node("BitCast", ["x"], ["b"], to=16), helper.make_node("BitCast", ["b"], ["y"], to=10)]
    m = side_by_side(nodes, {"x": np.ones(2, F16)}, {"y": (F16, (2,))}, 26)
    with pytest.raises(qc.UnsupportedOp, match=r"\(BitCast\): target type BFLOAT16"):
        qc.compile(m, str(tmp_path / "m.so"))


# --- DFT ------------------------------------------------------------------------


def test_dft_opset17(tmp_path):
    # Forward of a real and a complex signal, one-sided, a zero-padded and a
    # cut length (dft_length), inverse; along axis 1 and 2 of [2, 6, 5, c].
    rng = np.random.default_rng(380)
    feeds = {"r": rng.uniform(-1, 1, (2, 6, 5, 1)).astype(F32), "z": rng.uniform(-1, 1, (2, 6, 5, 2)).astype(F32)}
    inits = {"n8": np.array(8, I64), "n4": np.array(4, I64)}
    forms = [("r", [], {}, (2, 6, 5, 2)), ("z", [], {"axis": 2}, (2, 6, 5, 2)),
             ("r", [], {"onesided": 1}, (2, 4, 5, 2)), ("z", ["n8"], {}, (2, 8, 5, 2)),
             ("z", ["n4"], {"axis": 2}, (2, 6, 4, 2)), ("z", [], {"inverse": 1}, (2, 6, 5, 2))]
    nodes, outputs = [], {}
    for i, (src, extra, a, shape) in enumerate(forms):
        nodes.append(helper.make_node("DFT", [src, *extra], [f"y{i}"], **a))
        outputs[f"y{i}"] = (F32, shape)
    check_against_ort(side_by_side(nodes, feeds, outputs, 17, inits), feeds, tmp_path, atol=1e-5)


def test_dft_opset20_irfft(tmp_path):
    # Opset 20: the axis as an input; an inverse one-sided transform gives a
    # real signal of 2 (n - 1) samples, or dft_length (odd here).
    rng = np.random.default_rng(381)
    spectrum = np.fft.rfft(rng.uniform(-1, 1, (3, 8)), axis=1)  # a Hermitian half spectrum, [3, 5]
    feeds = {"z": np.stack([spectrum.real, spectrum.imag], -1)[..., None, :].astype(F32).reshape(3, 5, 1, 2)}
    inits = {"axis": np.array(1, I64), "n7": np.array(7, I64)}
    nodes = [helper.make_node("DFT", ["z", "", "axis"], ["y0"], inverse=1, onesided=1),
             helper.make_node("DFT", ["z", "n7", "axis"], ["y1"], inverse=1, onesided=1),
             helper.make_node("DFT", ["z", "", "axis"], ["y2"])]
    outputs = {"y0": (F32, (3, 8, 1, 1)), "y1": (F32, (3, 7, 1, 1)), "y2": (F32, (3, 5, 1, 2))}
    check_against_reference(side_by_side(nodes, feeds, outputs, 20, inits), feeds, tmp_path, atol=1e-5)


# --- Col2Im ---------------------------------------------------------------------


def test_col2im(tmp_path):
    # 2-D with overlapping blocks, with strides + pads + dilations, and 3-D.
    rng = np.random.default_rng(390)
    feeds = {"a": rng.uniform(-1, 1, (2, 2 * 6, 9)).astype(F32),  # C 2, block 2x3 on a 4x5 image: 3x3 blocks
             "b": rng.uniform(-1, 1, (1, 3 * 4, 9)).astype(F32),  # C 3, block 2x2, stride 2, pads 1, dilation (1, 2)
             "c": rng.uniform(-1, 1, (1, 8, 12)).astype(F32)}  # C 1, block 2x2x2 on a 3x3x4 image
    inits = {"img_a": np.array([4, 5], I64), "blk_a": np.array([2, 3], I64),
             "img_b": np.array([5, 6], I64), "blk_b": np.array([2, 2], I64),
             "img_c": np.array([3, 3, 4], I64), "blk_c": np.array([2, 2, 2], I64)}
    nodes = [helper.make_node("Col2Im", ["a", "img_a", "blk_a"], ["ya"]),
             helper.make_node("Col2Im", ["b", "img_b", "blk_b"], ["yb"], strides=[2, 2], pads=[1, 1, 1, 1],
                              dilations=[1, 2]),
             helper.make_node("Col2Im", ["c", "img_c", "blk_c"], ["yc"])]
    outputs = {"ya": (F32, (2, 2, 4, 5)), "yb": (F32, (1, 3, 5, 6)), "yc": (F32, (1, 1, 3, 3, 4))}
    check_against_ort(side_by_side(nodes, feeds, outputs, 18, inits), feeds, tmp_path, atol=1e-5)


# --- ReverseSequence, Det -------------------------------------------------------


def test_reverse_sequence(tmp_path):
    # Time-major and batch-major, with lengths 0 (untouched) up to the full length.
    rng = np.random.default_rng(400)
    feeds = {"x": rng.uniform(-1, 1, (5, 4, 3)).astype(F32), "xb": rng.integers(-9, 9, (4, 5)).astype(I64),
             "lens": np.array([5, 0, 3, 1], I64)}
    nodes = [helper.make_node("ReverseSequence", ["x", "lens"], ["y0"], time_axis=0, batch_axis=1),
             helper.make_node("ReverseSequence", ["xb", "lens"], ["y1"], time_axis=1, batch_axis=0)]
    outputs = {"y0": (F32, (5, 4, 3)), "y1": (I64, (4, 5))}
    check_against_ort(side_by_side(nodes, feeds, outputs, 10), feeds, tmp_path)


def test_det(tmp_path):
    # 1x1 to 5x5, batched, one singular matrix, one needing row swaps (a zero first pivot).
    rng = np.random.default_rng(401)
    feeds = {f"m{n}": rng.uniform(-2, 2, (3, n, n)).astype(F32) for n in (1, 2, 3, 5)}
    feeds["m3"][1] = [[1, 2, 3], [2, 4, 6], [0, 1, 1]]  # rank 2
    feeds["m3"][2] = [[0, 1, 2], [3, 0, 1], [1, 1, 0]]
    feeds["d"] = rng.uniform(-2, 2, (4, 4)).astype(F64)
    nodes = [helper.make_node("Det", [n], [f"det_{n}"]) for n in feeds]
    outputs = {f"det_{n}": (v.dtype, v.shape[:-2]) for n, v in feeds.items()}
    # numpy's LU determinant (onnxruntime has no float64 Det kernel)
    want = {f"det_{n}": np.asarray(np.linalg.det(v.astype(F64)), v.dtype) for n, v in feeds.items()}
    check_against(want, side_by_side(nodes, feeds, outputs, 11), feeds, tmp_path, atol=1e-5)


# --- Scan -----------------------------------------------------------------------


def scan_body():
    """state s [2]; scan inputs a [2], c [2]: s' = s + a * w (w from the outer
    graph), outputs s' and s' - c."""
    vi = lambda n: helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(np.dtype(F32)), [2])  # noqa: E731
    nodes = [helper.make_node("Mul", ["a", "w"], ["aw"]), helper.make_node("Add", ["s", "aw"], ["s_out"]),
             helper.make_node("Sub", ["s_out", "c"], ["d"])]
    return helper.make_graph(nodes, "body", [vi("s"), vi("a"), vi("c")], [vi("s_out"), vi("d")])


def test_scan(tmp_path):
    # Opset 11: a walks axis 0 forwards, c axis 1 backwards; the second
    # output is stacked along axis 1, in reverse; w comes from outside the body.
    rng = np.random.default_rng(410)
    feeds = {"s0": rng.uniform(-1, 1, (2,)).astype(F32), "a": rng.uniform(-1, 1, (4, 2)).astype(F32),
             "c": rng.uniform(-1, 1, (2, 4)).astype(F32), "w": rng.uniform(-1, 1, (2,)).astype(F32)}
    node = helper.make_node("Scan", ["s0", "a", "c"], ["s", "d"], body=scan_body(), num_scan_inputs=2,
                            scan_input_axes=[0, 1], scan_input_directions=[0, 1], scan_output_axes=[1],
                            scan_output_directions=[1])
    m = side_by_side([node], feeds, {"s": (F32, (2,)), "d": (F32, (2, 4))}, 11)
    check_against_ort(m, feeds, tmp_path)


def test_scan_opset8_batched(tmp_path):
    # Opset 8: a leading batch dim everywhere, the scan along axis 1.
    rng = np.random.default_rng(411)
    feeds = {"s0": rng.uniform(-1, 1, (3, 2)).astype(F32), "a": rng.uniform(-1, 1, (3, 5, 2)).astype(F32),
             "c": rng.uniform(-1, 1, (3, 5, 2)).astype(F32), "w": rng.uniform(-1, 1, (2,)).astype(F32)}
    node = helper.make_node("Scan", ["", "s0", "a", "c"], ["s", "d"], body=scan_body(), num_scan_inputs=2,
                            directions=[0, 1])
    m = side_by_side([node], feeds, {"s": (F32, (3, 2)), "d": (F32, (3, 5, 2))}, 8)
    check_against_ort(m, feeds, tmp_path)
