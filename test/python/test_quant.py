"""Numerics of the quantized ops: QuantizeLinear, DequantizeLinear,
DynamicQuantizeLinear, QLinearConv, QLinearMatMul, ConvInteger,
MatMulInteger, and com.microsoft's QLinearAdd/Mul/GlobalAveragePool/
Sigmoid/LeakyRelu/Concat.

References: onnxruntime with graph optimizations disabled (ORT_DISABLE_ALL,
so each op runs as defined), or onnx.reference where onnxruntime's kernels
are not the ONNX semantics: its u8 x s8 QLinearConv saturates pairs of
products in 16 bits on AVX2 (vpmaddubsw) and drifts by tens of steps on
random data, and its MatMulInteger has no per-row zero points.

Integer outputs must be within one quantization step of the reference
(fixed-point requantization rounds a product that differs from the float
one by 2^-31 relative, and the references round float32 products), and
nearly all elements must be exact. Outputs that are int32 by definition
(ConvInteger, MatMulInteger) and all lookup-table ops are exact.

Data inputs are graph inputs, so each op reaches its importer; scales, zero
points and weights are initializers. Random quantized data covers the whole
type range, which also saturates some outputs.
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from helpers import compile_and_run, make_model
from onnx import helper

import qc

F32 = np.float32
U8, I8 = np.uint8, np.int8
MS = "com.microsoft"


def ort_ref(model, feeds) -> dict:
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    so.intra_op_num_threads = 1
    sess = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    return dict(zip([o.name for o in sess.get_outputs()], sess.run(None, feeds)))


def onnx_ref(model, feeds) -> dict:
    from onnx.reference import ReferenceEvaluator

    return dict(zip([o.name for o in model.graph.output], ReferenceEvaluator(model).run(None, feeds)))


def assert_close_steps(got: np.ndarray, want: np.ndarray, min_exact: float = 0.98, name: str = "") -> None:
    """Integers: within one step everywhere, exact on at least `min_exact` of the elements."""
    assert got.dtype == want.dtype and got.shape == want.shape, (name, got.dtype, want.dtype, got.shape)
    diff = np.abs(got.astype(np.int64) - want.astype(np.int64))
    assert diff.max() <= 1, f"{name}: {diff.max()} steps off at {np.argwhere(diff > 1)[:5].tolist()}"
    assert (diff == 0).mean() >= min_exact, f"{name}: only {(diff == 0).mean():.3f} exact"


def check(model, feeds, tmp_path, ref=ort_ref, min_exact: float = 0.98, exact: bool = False, **options) -> dict:
    """Compiles and runs model (options: qc.compile's, e.g. a target run under
    qemu), and compares with ref: floats to 1e-6, integers within a step."""
    got = compile_and_run(model, feeds, tmp_path, **options)
    want = ref(model, feeds)
    for name, w in want.items():
        if np.issubdtype(w.dtype, np.floating):
            np.testing.assert_allclose(got[name], w, rtol=1e-6, atol=1e-7, err_msg=name)
        elif exact:
            np.testing.assert_array_equal(got[name], w, err_msg=name)
        else:
            assert_close_steps(got[name], w, min_exact, name)
    return got


def qrand(rng, dtype, shape):
    """Quantized data over the whole range of the type."""
    info = np.iinfo(dtype)
    return rng.integers(info.min, info.max + 1, shape, dtype=dtype)


def ms_model(nodes, inputs, outputs, inits, opset=17):
    model = make_model(nodes, inputs, outputs, inits, opset=opset)
    model.opset_import.append(helper.make_opsetid(MS, 1))
    return model


def model_any_types(nodes, inputs, outputs, inits, opset):
    """make_model for element types helpers.py does not list (int16, uint16); IR 10 (opset 21)."""
    def vi(name, dtype, shape):
        return helper.make_tensor_value_info(name, helper.np_dtype_to_tensor_dtype(np.dtype(dtype)), shape)

    graph = helper.make_graph(nodes, "test", [vi(n, *v) for n, v in inputs.items()],
                              [vi(n, *v) for n, v in outputs.items()],
                              [onnx.numpy_helper.from_array(np.asarray(v), n) for n, v in inits.items()])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], ir_version=10)


# ---------------------------------------------------------------- QuantizeLinear / DequantizeLinear

X_SHAPE = (2, 3, 5)  # odd sizes: no dim divides a vector width


def _qdq_pair(tag, dtype, scale, zp, inits, **attrs):
    """x -> QuantizeLinear -> q_tag -> DequantizeLinear -> d_tag, with the given parameters."""
    inits[f"s_{tag}"] = np.asarray(scale, F32)
    ins = ["x", f"s_{tag}"]
    if zp is not None:
        inits[f"z_{tag}"] = np.asarray(zp, dtype)
        ins.append(f"z_{tag}")
    dq_attrs = {k: v for k, v in attrs.items() if k != "saturate"}  # QuantizeLinear's alone
    return [helper.make_node("QuantizeLinear", ins, [f"q_{tag}"], **attrs),
            helper.make_node("DequantizeLinear", [f"q_{tag}", *ins[1:]], [f"d_{tag}"], **dq_attrs)]


# (opset, [(tag, dtype, scale, zero point, attrs)]): each opset's forms in one model.
QDQ_FORMS = [
    (10, [("t8", I8, 0.03, -3, {}), ("tu", U8, 0.05, 128, {}), ("nozp", U8, 0.02, None, {})]),
    (13, [("axis1", U8, [0.03, 0.01, 0.05], [100, 128, 3], {"axis": 1}),
          ("axisneg", I8, [0.02, 0.04, 0.01, 0.03, 0.05], [0, -5, 7, 1, 0], {"axis": -1})]),
    (19, [("t19", I8, 0.01, 0, {"saturate": 1})]),
    (21, [("block", I8, np.full((2, 3, 3), 0.02) * [1, 2, 3], np.zeros((2, 3, 3)), {"axis": 2, "block_size": 2}),
          ("i16", np.int16, 0.0005, -300, {}), ("u16", np.uint16, 0.0007, 30000, {})]),
]


@pytest.mark.parametrize("opset,forms", QDQ_FORMS, ids=[f"opset{o}" for o, _ in QDQ_FORMS])
def test_quantize_dequantize(opset, forms, tmp_path):
    rng = np.random.default_rng(opset)
    x = (rng.standard_normal(X_SHAPE) * 3).astype(F32)  # ~10% beyond the int8 ranges: saturation
    inits, nodes, outs = {}, [], {}
    for tag, dtype, scale, zp, attrs in forms:
        nodes += _qdq_pair(tag, dtype, scale, zp, inits, **attrs)
        outs[f"q_{tag}"] = (dtype, X_SHAPE)
        outs[f"d_{tag}"] = (F32, X_SHAPE)
    if opset >= 21:  # int16/uint16 and block_size: IR 10
        model = model_any_types(nodes, {"x": (F32, X_SHAPE)}, outs, inits, opset)
    else:
        model = make_model(nodes, {"x": (F32, X_SHAPE)}, outs, inits, opset=opset)
    check(model, {"x": x}, tmp_path, exact=True)


def test_quantize_saturates_and_rounds_half_to_even(tmp_path):
    # x / 0.5 = k + 0.5 exactly: ties go to the even neighbour; +-1e4 saturate.
    x = np.array([0.25, 0.75, 1.25, -0.25, -0.75, 1e4, -1e4, 63.25, -64.25], F32)
    model = make_model(_qdq_pair("a", I8, 0.5, 0, inits := {}) + _qdq_pair("b", U8, 0.5, 200, inits),
                       {"x": (F32, x.shape)}, {n: (t, x.shape) for n, t in
                                               [("q_a", I8), ("q_b", U8), ("d_a", F32), ("d_b", F32)]},
                       inits, opset=13)
    got = check(model, {"x": x}, tmp_path, exact=True)
    np.testing.assert_array_equal(got["q_a"], [0, 2, 2, 0, -2, 127, -128, 126, -128])


def test_quantize_runtime_per_axis_scale(tmp_path):
    # Scales computed at run time (graph inputs), per axis 0: read through the generic's maps.
    rng = np.random.default_rng(5)
    nodes = [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["q"], axis=0),
             helper.make_node("DequantizeLinear", ["q", "s", "z"], ["d"], axis=0)]
    model = make_model(nodes, {"x": (F32, [3, 4]), "s": (F32, [3])}, {"q": (I8, [3, 4]), "d": (F32, [3, 4])},
                       {"z": np.array([1, -2, 3], I8)}, opset=13)
    feeds = {"x": rng.uniform(-900, 900, (3, 4)).astype(F32), "s": np.array([3.0, 7.0, 11.0], F32)}
    check(model, feeds, tmp_path, exact=True)


def test_dequantize_int32(tmp_path):
    # An int32 bias-like tensor (zero point 0), per axis: (x - 0) * s in float32.
    rng = np.random.default_rng(6)
    node = helper.make_node("DequantizeLinear", ["x", "s"], ["y"], axis=1)
    model = make_model([node], {"x": (np.int32, [2, 3])}, {"y": (F32, [2, 3])},
                       {"s": np.array([1e-4, 2e-3, 3e-5], F32)}, opset=13)
    check(model, {"x": rng.integers(-2**24, 2**24, (2, 3)).astype(np.int32)}, tmp_path)


@pytest.mark.parametrize("kind", ["mixed", "positive", "zeros"])
def test_dynamic_quantize_linear(kind, tmp_path):
    rng = np.random.default_rng(11)
    x = {"mixed": rng.standard_normal((3, 7)) * 4,  # zero point inside the range
         "positive": np.abs(rng.standard_normal((3, 7))) + 0.5,  # min clamps to 0: zero point 0
         "zeros": np.zeros((3, 7))}[kind].astype(F32)  # max == min: scale 1 (as onnxruntime)
    model = make_model([helper.make_node("DynamicQuantizeLinear", ["x"], ["y", "s", "z"])],
                       {"x": (F32, [3, 7])}, {"y": (U8, [3, 7]), "s": (F32, []), "z": (U8, [])}, opset=13)
    check(model, {"x": x}, tmp_path, exact=True)


# ---------------------------------------------------------------- fixed point


def test_fixed_point_mantissas():
    from qc.frontends.onnx.qmath import fixed_point

    rng = np.random.default_rng(7)
    mult = np.concatenate([10.0 ** rng.uniform(-12, 8, 500), [0.5, 1.0, 1e-30, 0.0], -(10.0 ** rng.uniform(-6, 2, 50))])
    (fp,) = fixed_point(None, [mult])
    assert np.all((np.abs(fp.m) < 2**31) & (fp.r >= 1) & (fp.r <= 62))
    full = (fp.r < 62) & (mult != 0)  # below 2^-31 the shift stops at 62 and the mantissa shrinks
    assert np.all(np.abs(fp.m[full]) >= 2**30)
    # |m 2^-r - M| <= 2^-(r+1): relative 2^-31 where the mantissa has its 31 bits
    err = np.abs(fp.m * np.ldexp(1.0, -fp.r) - mult)
    assert np.all(err <= np.ldexp(1.0, -fp.r - 1) * (1 + 1e-12))


def test_fixed_point_shift_capped_by_offset():
    # A tiny multiplier (gamma ~ 0) next to a large offset: fewer mantissa bits, no overflow.
    from qc.frontends.onnx.qmath import MAX_OFFSET, fixed_point, offset_fixed

    mult, offset = np.array([1e-15, 0.01]), np.array([1e6, 3.5])
    (fp,) = fixed_point(None, [mult], offset=offset)
    assert np.all(np.abs(offset_fixed(offset, fp.r)) < MAX_OFFSET)
    assert fp.r[1] == 37  # 0.01 keeps its full 31 bits
    assert abs(fp.m[0] * 2.0 ** -fp.r[0] - 1e-15) < 2.0 ** -fp.r[0]


def test_requantization_rounds_half_to_even(tmp_path):
    # M = 0.5 exactly: odd accumulators are exact ties, which go to the even neighbour.
    a = np.arange(-128, 128, dtype=np.int32).astype(I8).reshape(256, 1)
    node = helper.make_node("QLinearMatMul", ["a", "as", "az", "b", "bs", "bz", "ys", "yz"], ["y"])
    model = make_model([node], {"a": (I8, a.shape)}, {"y": (I8, [256, 1])},
                       {"as": np.array(1.0, F32), "az": np.array(0, I8), "b": np.ones((1, 1), I8),
                        "bs": np.array(1.0, F32), "bz": np.array(0, I8), "ys": np.array(2.0, F32),
                        "yz": np.array(0, I8)}, opset=13)
    got = compile_and_run(model, {"a": a}, tmp_path)["y"]
    np.testing.assert_array_equal(got, np.rint(a / 2).astype(I8))


@pytest.mark.parametrize("ys", [0.5, 4.0])  # multiplier 2 (the i64 form) and 0.25 (the high-word form)
def test_requantization_adds_the_constant_correction(ys, tmp_path):
    # x_zero_point 128 and a bias: acc = x - 128 + 57 over every u8 x, a
    # constant that the high-word form folds into its rounding constant and
    # the i64 form adds to the accumulator.
    x = np.arange(256, dtype=U8).reshape(1, 1, 16, 16)
    node = helper.make_node("QLinearConv", ["x", "xs", "xz", "w", "ws", "wz", "ys", "yz", "B"], ["y"])
    model = make_model([node], {"x": (U8, x.shape)}, {"y": (I8, [1, 1, 16, 16])},
                       {"xs": np.array(1.0, F32), "xz": np.array(128, U8), "w": np.ones((1, 1, 1, 1), I8),
                        "ws": np.array(1.0, F32), "wz": np.array(0, I8), "ys": np.array(ys, F32),
                        "yz": np.array(3, I8), "B": np.array([57], np.int32)}, opset=13)
    got = compile_and_run(model, {"x": x}, tmp_path)["y"]
    want = np.clip(np.rint((x.astype(np.int64) - 128 + 57) / ys) + 3, -128, 127).astype(I8)
    np.testing.assert_array_equal(got, want)


# ---------------------------------------------------------------- QLinearConv / ConvInteger


def _conv_model(xt, wt, yt, *, c=5, m=6, group=1, per_channel=True, zw=False, bias=True, hw=(7, 6),
                kernel=(3, 3), seed=0, **attrs):
    """QLinearConv with random parameters; returns the model and its input."""
    rng = np.random.default_rng(seed)
    x = qrand(rng, xt, (2, c, *hw))
    w = qrand(rng, wt, (m, c // group, *kernel))
    sw = rng.uniform(0.002, 0.01, m) if per_channel else np.array(0.005)
    zwv = np.zeros(m if per_channel else ())
    if zw:
        zwv = rng.integers(-6, 7, zwv.shape)
    if wt == U8:
        zwv = zwv + 128
    inits = {"xs": np.array(0.05, F32), "xz": np.array(7 if xt == I8 else 131, xt), "w": w,
             "ws": sw.astype(F32), "wz": zwv.astype(wt),
             "ys": np.array(0.9 if len(kernel) < 3 else 2.0, F32), "yz": np.array(-3 if yt == I8 else 120, yt)}
    names = ["x", "xs", "xz", "w", "ws", "wz", "ys", "yz"]
    if bias:
        inits["B"] = rng.integers(-3000, 3000, m).astype(np.int32)
        names.append("B")
    node = helper.make_node("QLinearConv", names, ["y"], group=group, **attrs)
    model = make_model([node], {"x": (xt, x.shape)}, {"y": (yt, None)}, inits, opset=13)
    return onnx.shape_inference.infer_shapes(model), x


CONV_CASES = {
    # u8 activations x s8 weights, the quantizer's default; 2-D generic contraction
    "u8s8_per_tensor": dict(xt=U8, wt=I8, yt=U8, per_channel=False, pads=[1, 1, 1, 1]),
    "u8s8_per_channel": dict(xt=U8, wt=I8, yt=U8, pads=[1, 1, 1, 1]),
    # s8 x s8: linalg.conv_2d_nchw_fchw; asymmetric padding, stride
    "s8s8_stride_pads": dict(xt=I8, wt=I8, yt=I8, pads=[0, 1, 2, 0], strides=[2, 1]),
    # groups (odd channels per group) and a depthwise conv (named op for s8)
    "s8s8_grouped": dict(xt=I8, wt=I8, yt=I8, c=6, m=9, group=3, pads=[1, 1, 1, 1]),
    "s8s8_depthwise": dict(xt=I8, wt=I8, yt=I8, c=5, m=5, group=5, pads=[1, 1, 1, 1]),
    "u8s8_depthwise_stride": dict(xt=U8, wt=I8, yt=U8, c=5, m=5, group=5, strides=[2, 2], pads=[1, 1, 1, 1]),
    # s8 depthwise, unrolled window: stride and dilation differ per axis, asymmetric pads, odd sizes
    "s8s8_depthwise_stride_dilation": dict(xt=I8, wt=I8, yt=I8, c=7, m=7, group=7, hw=(11, 9), strides=[2, 1],
                                           dilations=[1, 2], pads=[1, 2, 0, 1]),
    # nonzero weight zero points: the extra sum over each window; dilation, no bias
    "u8u8_weight_zero_point": dict(xt=U8, wt=U8, yt=U8, zw=True, per_channel=False, dilations=[2, 1],
                                   bias=False, pads=[2, 1, 2, 1]),
    "s8s8_per_channel_zero_points_grouped": dict(xt=I8, wt=I8, yt=U8, zw=True, c=4, m=6, group=2,
                                                 auto_pad="SAME_UPPER"),
    # 1-D and 3-D convolutions (generic contraction over any number of spatial dims); per
    # tensor, as onnx.reference lays per-channel scales out for 2-D only
    "u8s8_1d": dict(xt=U8, wt=I8, yt=U8, hw=(11,), kernel=(3,), pads=[1, 2], strides=[2], per_channel=False),
    "s8s8_3d": dict(xt=I8, wt=I8, yt=I8, hw=(4, 5, 3), kernel=(2, 3, 2), c=3, m=4, pads=[0, 1, 1, 1, 0, 0],
                    per_channel=False),
}


@pytest.mark.parametrize("case", CONV_CASES)
def test_qlinear_conv(case, tmp_path):
    model, x = _conv_model(**CONV_CASES[case])
    check(model, {"x": x}, tmp_path, ref=onnx_ref)


def test_qlinear_conv_saturates(tmp_path):
    # A small output scale pushes most outputs out of range: both bounds must hold.
    model, x = _conv_model(xt=U8, wt=I8, yt=I8, pads=[1, 1, 1, 1], seed=3)
    model.graph.initializer[[i.name for i in model.graph.initializer].index("ys")].CopyFrom(
        onnx.numpy_helper.from_array(np.array(0.05, F32), "ys"))
    got = check(model, {"x": x}, tmp_path, ref=onnx_ref)
    assert (got["y"] == -128).mean() > 0.2 and (got["y"] == 127).mean() > 0.2


@pytest.mark.parametrize("with_zero_points", [True, False])
def test_conv_integer(with_zero_points, tmp_path):
    rng = np.random.default_rng(21)
    x = qrand(rng, U8, (1, 6, 5, 5))
    inits = {"w": qrand(rng, U8, (9, 2, 3, 2))}
    names = ["x", "w"]
    if with_zero_points:
        inits.update(xz=np.array(100, U8), wz=np.array(17, U8))  # per-tensor u8: what onnxruntime runs
        names += ["xz", "wz"]
    node = helper.make_node("ConvInteger", names, ["y"], pads=[1, 0, 1, 2], group=3)
    model = make_model([node], {"x": (U8, x.shape)}, {"y": (np.int32, [1, 9, 5, 6])}, inits, opset=13)
    check(model, {"x": x}, tmp_path, exact=True)


def test_conv_integer_per_channel_weight_zero_points(tmp_path):
    # s8 input, per-output-channel w zero points (onnxruntime runs u8 x only, onnx.reference
    # mis-broadcasts them): the reference is a float64 Conv of the centered values, exact here.
    rng = np.random.default_rng(22)
    x = qrand(rng, I8, (2, 3, 9))
    w, xz, wz = qrand(rng, I8, (4, 3, 3)), np.array(-5, I8), np.array([1, -2, 0, 3], I8)
    attrs = dict(strides=[2], pads=[1, 1])
    node = helper.make_node("ConvInteger", ["x", "w", "xz", "wz"], ["y"], **attrs)
    model = make_model([node], {"x": (I8, x.shape)}, {"y": (np.int32, [2, 4, 5])},
                       {"w": w, "xz": xz, "wz": wz}, opset=13)
    got = compile_and_run(model, {"x": x}, tmp_path)["y"]
    xc = x.astype(np.float64) - xz
    wc = w.astype(np.float64) - wz[:, None, None]
    conv = make_model([helper.make_node("Conv", ["x", "w"], ["y"], **attrs)], {"x": (np.float64, x.shape)},
                      {"y": (np.float64, [2, 4, 5])}, {"w": wc}, opset=13)
    want = onnx_ref(conv, {"x": xc})["y"]
    # Padded positions hold zx, so they add nothing: the same as zero padding of x - zx.
    np.testing.assert_array_equal(got, want.astype(np.int32))


# ---------------------------------------------------------------- QLinearMatMul / MatMulInteger

MATMUL_CASES = {
    # (a type, b type, a shape, b shape, b per column, b constant)
    "u8s8_2d_per_column": (U8, I8, [5, 7], [7, 3], True, True),
    "s8s8_rows_per_tensor": (I8, I8, [2, 5, 7], [7, 3], False, True),  # rows of a stack: one 2-D product
    "u8u8_batched_runtime_b": (U8, U8, [2, 5, 7], [2, 7, 3], False, False),  # batch_matmul, cast unsigned
    "s8u8_broadcast_batch": (I8, U8, [3, 1, 5, 7], [2, 7, 3], False, False),  # generic, mixed signs
}


def matmul_model(case: str):
    """A QLinearMatMul of MATMUL_CASES and its inputs."""
    at, bt, sa, sb, per_column, const_b = MATMUL_CASES[case]
    rng = np.random.default_rng(31)
    n = sb[-1]
    inits = {"as": np.array(0.02, F32), "az": np.array(3, at),
             "bs": (rng.uniform(0.01, 0.02, n) if per_column else np.array(0.015)).astype(F32),
             "bz": np.array(5, bt), "ys": np.array(0.3, F32), "yz": np.array(10, U8)}
    inputs, feeds = {"a": (at, sa)}, {"a": qrand(rng, at, sa)}
    if const_b:
        inits["b"] = qrand(rng, bt, sb)
    else:
        inputs["b"] = (bt, sb)
        feeds["b"] = qrand(rng, bt, sb)
    out = [*np.broadcast_shapes(tuple(sa[:-2]), tuple(sb[:-2])), sa[-2], n]
    node = helper.make_node("QLinearMatMul", ["a", "as", "az", "b", "bs", "bz", "ys", "yz"], ["y"])
    return make_model([node], inputs, {"y": (U8, out)}, inits, opset=13), feeds


@pytest.mark.parametrize("case", MATMUL_CASES)
def test_qlinear_matmul(case, tmp_path):
    model, feeds = matmul_model(case)
    check(model, feeds, tmp_path, ref=onnx_ref)


def test_matmul_integer_per_row_and_column_zero_points(tmp_path):
    rng = np.random.default_rng(41)
    a, bm = qrand(rng, U8, (4, 6)), qrand(rng, I8, (6, 5))
    za, zb = np.array([1, 2, 3, 250], U8), np.array([0, 1, -2, 3, -128], I8)
    node = helper.make_node("MatMulInteger", ["a", "b", "az", "bz"], ["y"])
    model = make_model([node], {"a": (U8, a.shape), "b": (I8, bm.shape)}, {"y": (np.int32, [4, 5])},
                       {"az": za, "bz": zb}, opset=13)
    got = compile_and_run(model, {"a": a, "b": bm}, tmp_path)["y"]
    want = (a.astype(np.int32) - za[:, None]) @ (bm.astype(np.int32) - zb)  # the spec, in numpy
    np.testing.assert_array_equal(got, want)


def test_dynamic_quantization_chain(tmp_path):
    # What onnxruntime's quantize_dynamic emits: the activation's zero point is a run-time value.
    rng = np.random.default_rng(42)
    # |w| <= 63: onnxruntime's u8 x s8 kernel adds pairs of products in 16 bits with
    # saturation (255 * 127 * 2 > 2^15), which the reference must not hit.
    w = rng.integers(-63, 64, (16, 5)).astype(I8)
    nodes = [helper.make_node("DynamicQuantizeLinear", ["x"], ["xq", "xs", "xz"]),
             helper.make_node("MatMulInteger", ["xq", "w", "xz"], ["acc"]),
             helper.make_node("Cast", ["acc"], ["accf"], to=onnx.TensorProto.FLOAT),
             helper.make_node("Mul", ["xs", "ws"], ["s"]),
             helper.make_node("Mul", ["accf", "s"], ["y"])]
    x = rng.standard_normal((2, 3, 16)).astype(F32)
    model = make_model(nodes, {"x": (F32, x.shape)}, {"y": (F32, [2, 3, 5]), "acc": (np.int32, [2, 3, 5])},
                       {"w": w, "ws": np.array(0.01, F32)}, opset=13)
    check(model, {"x": x}, tmp_path, exact=True)


# ---------------------------------------------------------------- com.microsoft ops


def add_mul_model(dtype):
    """QLinearAdd and QLinearMul (com.microsoft) of one pair of inputs, and the inputs."""
    rng = np.random.default_rng(51)
    zb = -3 if dtype == I8 else 200
    inits = {"as": np.array(0.03, F32), "az": np.array(5, dtype), "bs": np.array(0.07, F32),
             "bz": np.array(zb, dtype), "adds": np.array(0.05, F32), "muls": np.array(0.5, F32),
             "cz": np.array(9, dtype)}
    nodes = [helper.make_node("QLinearAdd", ["a", "as", "az", "b", "bs", "bz", "adds", "cz"], ["add"], domain=MS),
             helper.make_node("QLinearMul", ["a", "as", "az", "b", "bs", "bz", "muls", "cz"], ["mul"], domain=MS)]
    # b broadcasts along the last dim; odd sizes
    model = ms_model(nodes, {"a": (dtype, [2, 3, 5]), "b": (dtype, [3, 1])},
                     {"add": (dtype, [2, 3, 5]), "mul": (dtype, [2, 3, 5])}, inits)
    return model, {"a": qrand(rng, dtype, (2, 3, 5)), "b": qrand(rng, dtype, (3, 1))}


@pytest.mark.parametrize("dtype", [U8, I8])
def test_qlinear_add_mul(dtype, tmp_path):
    check(*add_mul_model(dtype), tmp_path)


@pytest.mark.parametrize("dtype,channels_last", [(U8, 0), (I8, 1)])
def test_qlinear_global_average_pool(dtype, channels_last, tmp_path):
    rng = np.random.default_rng(52)
    shape, out = ((2, 5, 7, 3), (2, 1, 1, 3)) if channels_last else ((2, 3, 5, 7), (2, 3, 1, 1))
    inits = {"xs": np.array(0.03, F32), "xz": np.array(5, dtype), "ys": np.array(0.02, F32), "yz": np.array(3, dtype)}
    node = helper.make_node("QLinearGlobalAveragePool", ["x", "xs", "xz", "ys", "yz"], ["y"], domain=MS,
                            channels_last=channels_last)
    model = ms_model([node], {"x": (dtype, shape)}, {"y": (dtype, out)}, inits)
    check(model, {"x": qrand(rng, dtype, shape)}, tmp_path)


@pytest.mark.parametrize("dtype", [U8, I8])
def test_qlinear_lookup_ops(dtype, tmp_path):
    # Every one of the 256 inputs once: the tables are exact.
    x = (np.arange(256) + np.iinfo(dtype).min).astype(dtype).reshape(4, 64)
    lo = np.iinfo(dtype).min
    inits = {"xs": np.array(0.05, F32), "xz": np.array(5, dtype), "sig_s": np.array(1 / 256, F32),
             "sig_z": np.array(lo, dtype), "lr_s": np.array(0.04, F32), "lr_z": np.array(lo + 60, dtype)}
    nodes = [helper.make_node("QLinearSigmoid", ["x", "xs", "xz", "sig_s", "sig_z"], ["sig"], domain=MS),
             helper.make_node("QLinearLeakyRelu", ["x", "xs", "xz", "lr_s", "lr_z"], ["lrelu"], domain=MS,
                              alpha=0.1)]
    model = ms_model(nodes, {"x": (dtype, x.shape)}, {"sig": (dtype, x.shape), "lrelu": (dtype, x.shape)}, inits)
    check(model, {"x": x}, tmp_path, exact=True)


def test_qlinear_concat(tmp_path):
    # The first input shares the output's parameters (copied as is), the second is requantized.
    rng = np.random.default_rng(53)
    inits = {"ys": np.array(0.05, F32), "yz": np.array(7, U8), "s1": np.array(0.05, F32), "z1": np.array(7, U8),
             "s2": np.array(0.1, F32), "z2": np.array(100, U8)}
    node = helper.make_node("QLinearConcat", ["ys", "yz", "a", "s1", "z1", "b", "s2", "z2"], ["y"], domain=MS, axis=1)
    model = ms_model([node], {"a": (U8, [2, 3, 4]), "b": (U8, [2, 2, 4])}, {"y": (U8, [2, 5, 4])}, inits)
    check(model, {"a": qrand(rng, U8, (2, 3, 4)), "b": qrand(rng, U8, (2, 2, 4))}, tmp_path, exact=True)


# ---------------------------------------------------------------- errors


def _compile_error(model, match):
    with pytest.raises(qc.UnsupportedOp, match=match):
        qc.compile(model, emit="input")


def test_error_runtime_scale():
    node = helper.make_node("QLinearMatMul", ["a", "as", "az", "b", "bs", "bz", "ys", "yz"], ["y"])
    model = make_model([node], {"a": (U8, [2, 3]), "as": (F32, [])}, {"y": (U8, [2, 4])},
                       {"az": np.array(0, U8), "b": np.ones((3, 4), I8), "bs": np.array(0.1, F32),
                        "bz": np.array(0, I8), "ys": np.array(0.1, F32), "yz": np.array(0, U8)}, opset=13)
    _compile_error(model, r"a_scale \('as'\) is computed at run time; supported: a_scale as a constant")


def test_error_per_axis_scale_shape():
    # A run-time scale of the wrong length (shape inference does not check it).
    node = helper.make_node("DequantizeLinear", ["x", "s"], ["y"], axis=1)
    model = make_model([node], {"x": (I8, [2, 3]), "s": (F32, [2])}, {"y": (F32, [2, 3])}, opset=13)
    _compile_error(model, r"scale has shape \[2\]; per-axis needs \[3\] \(axis 1\)")


def test_error_float_input():
    node = helper.make_node("MatMulInteger", ["a", "b"], ["y"])
    model = make_model([node], {"a": (U8, [2, 3]), "b": (np.int8, [3, 4])}, {"y": (np.int32, [2, 4])}, opset=13)
    model.graph.input[0].type.tensor_type.elem_type = onnx.TensorProto.UINT16
    with pytest.raises(qc.ModelError):  # MatMulInteger has no uint16: the checker rejects it first
        qc.compile(model, emit="input")


def test_error_accumulator_could_overflow():
    # u8 x u8 with K = 40000 and all-255 weights: 255 * 255 * 40000 > 2^31.
    k = 40000
    node = helper.make_node("QLinearMatMul", ["a", "as", "az", "b", "bs", "bz", "ys", "yz"], ["y"])
    model = make_model([node], {"a": (U8, [1, k])}, {"y": (U8, [1, 1])},
                       {"as": np.array(0.1, F32), "az": np.array(0, U8), "b": np.full((k, 1), 255, U8),
                        "bs": np.array(0.1, F32), "bz": np.array(0, U8), "ys": np.array(0.1, F32),
                        "yz": np.array(0, U8)}, opset=13)
    _compile_error(model, "the int32 accumulator could overflow")


def test_error_unsupported_microsoft_op():
    node = helper.make_node("QLinearSoftmax", ["x", "s", "z", "s", "z"], ["y"], domain=MS)
    model = ms_model([node], {"x": (U8, [2, 3])}, {"y": (U8, [2, 3])},
                     {"s": np.array(0.1, F32), "z": np.array(0, U8)})
    _compile_error(model, r"op type is not supported in domain 'com.microsoft'; supported: .*QLinearAdd")


# ---------------------------------------------------------------- QDQ fusion


def fused_groups(model) -> int:
    """How many QDQ groups the graph clean-up turns into integer ops."""
    from qc.frontends.onnx import graph_opt

    inferred = onnx.shape_inference.infer_shapes(model, strict_mode=True, data_prop=True)
    opset = next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))
    return graph_opt.optimize(inferred, opset)[1].qdq_fused


def assert_no_float(model) -> None:
    text = qc.compile(model, emit="input")
    assert "f32" not in text and "f64" not in text, "float left between the quantized ops"


def _dq(name, q, scale, zp, inits, axis=None):
    inits[f"{name}_s"], inits[f"{name}_z"] = np.asarray(scale, F32), np.asarray(zp, q)
    attrs = {} if axis is None else {"axis": axis}
    return helper.make_node("DequantizeLinear", [f"{name}_q", f"{name}_s", f"{name}_z"], [name], **attrs)


def _q(name, src, q, scale, zp, inits):
    inits[f"{name}_s"], inits[f"{name}_z"] = np.asarray(scale, F32), np.asarray(zp, q)
    return helper.make_node("QuantizeLinear", [src, f"{name}_s", f"{name}_z"], [name])


def _product_model(case: str, rng):
    """A quantized layer as a QDQ group: int inputs -> DQ -> product -> chain -> Q."""
    inits: dict = {}
    if case == "conv_bn_relu_u8_per_channel":
        x = qrand(rng, U8, (2, 4, 7, 6))
        inits["w_q"] = qrand(rng, I8, (6, 4, 3, 3))
        nodes = [_dq("x", U8, 0.02, 120, inits), _dq("w", I8, rng.uniform(0.003, 0.01, 6), np.zeros(6), inits, axis=0),
                 helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1], strides=[2, 1]),
                 helper.make_node("BatchNormalization", ["c", "g", "beta", "mean", "var"], ["n"]),
                 helper.make_node("Relu", ["n"], ["r"])]
        inits.update(b=rng.normal(0, 0.2, 6).astype(F32), g=rng.uniform(-1.5, 1.5, 6).astype(F32),
                     beta=rng.normal(0, 0.2, 6).astype(F32), mean=rng.normal(0, 0.2, 6).astype(F32),
                     var=rng.uniform(0.5, 2, 6).astype(F32))
        nodes.append(_q("y", "r", U8, 0.03, 0, inits))
    elif case == "conv_grouped_mul_add_clip_s8_asymmetric_w":
        x = qrand(rng, I8, (1, 6, 5, 7))
        inits["w_q"] = qrand(rng, I8, (6, 3, 3, 3))
        inits.update(k=np.array([1.5, -0.5, 2.0, -1.0, 0.25, 1.0], F32).reshape(1, 6, 1, 1),
                     off=rng.normal(0, 0.3, (6, 1, 1)).astype(F32), lo=np.array(-1.0, F32), hi=np.array(2.0, F32))
        nodes = [_dq("x", I8, 0.03, -7, inits), _dq("w", I8, 0.006, 3, inits),
                 helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 0, 1, 2], group=2),
                 helper.make_node("Mul", ["c", "k"], ["m"]), helper.make_node("Add", ["off", "m"], ["a"]),
                 helper.make_node("Clip", ["a", "lo", "hi"], ["r"]), _q("y", "r", I8, 0.02, 5, inits)]
    elif case == "matmul_add_relu_per_column":
        x = qrand(rng, U8, (2, 5, 8))
        inits.update(w_q=qrand(rng, I8, (8, 6)), b=rng.normal(0, 0.3, 6).astype(F32))
        nodes = [_dq("x", U8, 0.02, 130, inits), _dq("w", I8, rng.uniform(0.005, 0.02, 6), np.zeros(6), inits, axis=1),
                 helper.make_node("MatMul", ["x", "w"], ["mm"]), helper.make_node("Add", ["mm", "b"], ["a"]),
                 helper.make_node("Relu", ["a"], ["r"]), _q("y", "r", U8, 0.02, 0, inits)]
    elif case == "gemm_transb_alpha_beta":
        x = qrand(rng, I8, (3, 8))
        inits.update(w_q=qrand(rng, I8, (6, 8)), c=rng.normal(0, 0.3, 6).astype(F32))
        nodes = [_dq("x", I8, 0.02, 0, inits), _dq("w", I8, rng.uniform(0.005, 0.02, 6), np.zeros(6), inits, axis=0),
                 helper.make_node("Gemm", ["x", "w", "c"], ["gm"], transB=1, alpha=0.5, beta=2.0),
                 _q("y", "gm", I8, 0.02, -3, inits)]
    else:  # "matmul_two_activations": both operands at run time (attention-like)
        x = qrand(rng, U8, (2, 4, 8))
        nodes = [_dq("x", U8, 0.02, 128, inits), _dq("w", U8, 0.03, 120, inits),
                 helper.make_node("MatMul", ["x", "w"], ["mm"]), _q("y", "mm", U8, 0.2, 128, inits)]
        model = make_model(nodes, {"x_q": (U8, x.shape), "w_q": (U8, (2, 8, 3))}, {"y": (U8, None)}, inits, opset=13)
        return onnx.shape_inference.infer_shapes(model), {"x_q": x, "w_q": qrand(rng, U8, (2, 8, 3))}
    ydt = U8 if inits["y_z"].dtype == U8 else I8
    model = make_model(nodes, {"x_q": (x.dtype, x.shape)}, {"y": (ydt, None)}, inits, opset=13)
    return onnx.shape_inference.infer_shapes(model), {"x_q": x}


PRODUCT_CASES = ["conv_bn_relu_u8_per_channel", "conv_grouped_mul_add_clip_s8_asymmetric_w",
                 "matmul_add_relu_per_column", "gemm_transb_alpha_beta", "matmul_two_activations"]


@pytest.mark.parametrize("case", PRODUCT_CASES)
def test_qdq_product_fused(case, tmp_path):
    model, feeds = _product_model(case, np.random.default_rng(61))
    assert fused_groups(model) == 1
    assert_no_float(model)
    check(model, feeds, tmp_path, min_exact=0.97)


def test_qdq_int4_weights(tmp_path):
    # Opset 21: int4 per-channel weights fuse (widened to int8); blocked int4 ones stay a
    # float constant (their scales vary along K), the layer then runs in float.
    rng = np.random.default_rng(62)
    w4 = rng.integers(-8, 8, (5, 3, 3, 3))
    wb = rng.integers(-8, 8, (8, 4))
    inits = {"w_q": onnx.helper.make_tensor("w_q", onnx.TensorProto.INT4, w4.shape, w4.ravel().tolist()),
             "wb_q": onnx.helper.make_tensor("wb_q", onnx.TensorProto.INT4, wb.shape, wb.ravel().tolist())}
    arrays = {}
    nodes = [_dq("x", U8, 0.02, 128, arrays),
             helper.make_node("DequantizeLinear", ["w_q", "w_s"], ["w"], axis=0),
             helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]), _q("y", "c", U8, 0.05, 128, arrays),
             helper.make_node("Flatten", ["x"], ["xf"], axis=3),
             helper.make_node("DequantizeLinear", ["wb_q", "wb_s"], ["wb"], axis=0, block_size=4),
             helper.make_node("MatMul", ["xf", "wb"], ["mm"]), _q("z", "mm", U8, 0.05, 128, arrays)]
    arrays.update(w_s=rng.uniform(0.02, 0.05, 5).astype(F32), wb_s=rng.uniform(0.02, 0.05, (2, 4)).astype(F32))
    graph = helper.make_graph(
        nodes, "int4", [helper.make_tensor_value_info("x_q", onnx.TensorProto.UINT8, [1, 3, 5, 8])],
        [helper.make_tensor_value_info("y", onnx.TensorProto.UINT8, [1, 5, 5, 8]),
         helper.make_tensor_value_info("z", onnx.TensorProto.UINT8, [15, 4])],
        [*inits.values(), *[onnx.numpy_helper.from_array(v, k) for k, v in arrays.items()]])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)], ir_version=10)
    assert fused_groups(model) == 1
    check(model, {"x_q": qrand(rng, U8, (1, 3, 5, 8))}, tmp_path, min_exact=0.97)


def _elementwise_model(q, rng):
    """One model with a QDQ group per output (`groups` of them fuse) and one
    that stays float (DQ -> Softmax -> Q)."""
    lo = np.iinfo(q).min
    inits = {"k": np.array(0.5, F32), "g": rng.uniform(-2, 2, 3).astype(F32), "beta": rng.normal(0, .5, 3).astype(F32),
             "mean": rng.normal(0, .5, 3).astype(F32), "var": rng.uniform(.5, 2, 3).astype(F32),
             "pc": np.array([1.0, -2.0, 0.5], F32).reshape(3, 1, 1), "tshape": np.array([1, 60], np.int64)}
    n = [_dq("a", q, 0.05, lo + 100, inits), _dq("b", q, 0.03, lo + 10, inits)]
    outs = {}

    def out(name, src, scale, zp):
        n.append(_q(name, src, q, scale, lo + zp, inits))
        outs[name] = (q, None)

    n += [helper.make_node("Sigmoid", ["a"], ["sig"]), helper.make_node("Mul", ["sig", "k"], ["sigk"])]
    out("lut", "sigk", 1 / 512, 0)  # per-tensor table
    n.append(helper.make_node("BatchNormalization", ["a", "g", "beta", "mean", "var"], ["bn"]))
    out("bn_lut", "bn", 0.04, 128)  # per-channel table
    n += [helper.make_node("Mul", ["a", "pc"], ["pcm"]), helper.make_node("Relu", ["pcm"], ["pcr"])]
    out("pc_lut", "pcr", 0.03, 0)
    n.append(helper.make_node("Add", ["a", "b"], ["add"]))
    out("qadd", "add", 0.06, 120)
    n.append(helper.make_node("Mul", ["a", "b"], ["mul"]))
    out("qmul", "mul", 0.1, 128)
    n.append(helper.make_node("GlobalAveragePool", ["b"], ["gap"]))
    out("qgap", "gap", 0.01, 5)
    n.append(helper.make_node("MaxPool", ["a"], ["mp"], kernel_shape=[2, 2], strides=[2, 1]))
    out("qmax_same", "mp", 0.05, 100)
    n.append(helper.make_node("MaxPool", ["b"], ["mp2"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]))
    out("qmax_requant", "mp2", 0.02, 50)
    n.append(helper.make_node("Transpose", ["a"], ["t"], perm=[0, 2, 3, 1]))
    out("qtranspose", "t", 0.05, 100)
    n.append(helper.make_node("Reshape", ["b", "tshape"], ["rs"]))
    out("qreshape", "rs", 0.03, 10)
    n.append(helper.make_node("Concat", ["a", "b"], ["cat"], axis=1))
    out("qconcat", "cat", 0.05, 100)
    out("qrequant", "a", 0.1, 60)  # DQ -> Q with other parameters
    n.append(helper.make_node("Softmax", ["a"], ["sm"], axis=1))
    out("float_softmax", "sm", 1 / 256, 0)
    groups = len(outs) - 1
    model = make_model(n, {"a_q": (q, (1, 3, 4, 5)), "b_q": (q, (1, 3, 4, 5))}, outs, inits, opset=13)
    return onnx.shape_inference.infer_shapes(model), groups


@pytest.mark.parametrize("dtype", [U8, I8])
def test_qdq_elementwise_fused(dtype, tmp_path):
    rng = np.random.default_rng(63)
    model, groups = _elementwise_model(dtype, rng)
    assert fused_groups(model) == groups
    feeds = {"a_q": qrand(rng, dtype, (1, 3, 4, 5)), "b_q": qrand(rng, dtype, (1, 3, 4, 5))}
    check(model, feeds, tmp_path, min_exact=0.97)


# ---------------------------------------------------------------- end to end: onnxruntime's quantizer


def _float_cnn(rng) -> onnx.ModelProto:
    """conv-bn-relu x 2, a residual add, global average pool, gemm (float32)."""
    def f32(a):
        return np.asarray(a, F32)

    inits = {}
    nodes = []
    src = "x"
    for i, (cin, cout) in enumerate([(3, 8), (8, 8)]):
        inits.update({f"w{i}": f32(rng.normal(0, 0.3, (cout, cin, 3, 3))), f"b{i}": f32(rng.normal(0, .1, cout)),
                      f"g{i}": f32(rng.uniform(.5, 1.5, cout)), f"be{i}": f32(rng.normal(0, .1, cout)),
                      f"m{i}": f32(rng.normal(0, .1, cout)), f"v{i}": f32(rng.uniform(.5, 1.5, cout))})
        nodes += [helper.make_node("Conv", [src, f"w{i}", f"b{i}"], [f"c{i}"], pads=[1, 1, 1, 1]),
                  helper.make_node("BatchNormalization", [f"c{i}", f"g{i}", f"be{i}", f"m{i}", f"v{i}"], [f"n{i}"]),
                  helper.make_node("Relu", [f"n{i}"], [f"r{i}"])]
        src = f"r{i}"
    inits.update(fw=f32(rng.normal(0, .3, (5, 8))), fb=f32(rng.normal(0, .1, 5)))
    nodes += [helper.make_node("Add", ["r0", "r1"], ["s"]), helper.make_node("GlobalAveragePool", ["s"], ["gap"]),
              helper.make_node("Flatten", ["gap"], ["flat"]),
              helper.make_node("Gemm", ["flat", "fw", "fb"], ["y"], transB=1)]
    return make_model(nodes, {"x": (F32, (1, 3, 9, 11))}, {"y": (F32, (1, 5))}, inits, opset=17)


class _Calibration:
    """onnxruntime's CalibrationDataReader protocol: fixed-seed inputs."""

    def __init__(self, n: int = 4):
        self.batches = iter([{"x": np.random.default_rng(100 + i).normal(0, 1, (1, 3, 9, 11)).astype(F32)}
                             for i in range(n)])

    def get_next(self):
        return next(self.batches, None)

    def rewind(self):  # some onnxruntime versions call it
        pass


def quantize_qdq(model: onnx.ModelProto, tmp_path, per_channel: bool) -> onnx.ModelProto:
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, quantize_static

    fp, qp = tmp_path / "float.onnx", tmp_path / "int8.onnx"
    onnx.save(model, fp)
    reader = type("Reader", (_Calibration, CalibrationDataReader), {})()
    quantize_static(str(fp), str(qp), reader, quant_format=QuantFormat.QDQ, per_channel=per_channel)
    return onnx.load(qp)


def integer_contractions(linalg_text: str) -> tuple[int, int]:
    """(contractions of i8/u8 operands into i32, contractions on float) in linalg IR."""
    import re

    ints = floats = 0
    for line in linalg_text.splitlines():
        if not re.search(r"linalg\.(generic .*reduction|conv_|matmul|batch_matmul|depthwise)", line):
            continue
        m = re.search(r"ins\(([^)]*)\) outs\(([^)]*)\)", line)
        if not m:
            continue
        ins, outs = m.groups()
        types = re.findall(r"x(i8|i32|f32)>", ins)
        if "f32" in ins or "f32" in outs:
            floats += 1
        elif types.count("i8") == 2 and "xi32>" in outs:
            ints += 1
    return ints, floats


def output_step(qmodel) -> float:
    """The scale of the DequantizeLinear that makes the float output y."""
    (y_dq,) = [n for n in qmodel.graph.node if n.op_type == "DequantizeLinear" and n.output[0] == "y"]
    return float(onnx.numpy_helper.to_array(next(i for i in qmodel.graph.initializer if i.name == y_dq.input[1])))


def check_steps(qmodel, tmp_path, min_close: float = 0.0, **options) -> None:
    """qc's float output y within one output step of onnxruntime's (graph
    optimizations off) on a fixed input; at least min_close of it within
    half a step."""
    x = np.random.default_rng(71).normal(0, 1, (1, 3, 9, 11)).astype(F32)
    got = compile_and_run(qmodel, {"x": x}, tmp_path, **options)["y"]
    want = ort_ref(qmodel, {"x": x})["y"]
    step = output_step(qmodel)
    assert np.abs(got - want).max() <= step * 1.0001, f"{np.abs(got - want).max() / step:.2f} steps off"
    assert (np.abs(got - want) < step / 2).mean() >= min_close


@pytest.mark.parametrize("per_channel", [False, True])
def test_quantize_static_cnn(per_channel, tmp_path):
    pytest.importorskip("onnxruntime.quantization")
    qmodel = quantize_qdq(_float_cnn(np.random.default_rng(70)), tmp_path, per_channel)
    check_steps(qmodel, tmp_path)
    # Every Conv and the Gemm are integer contractions; no float product is left.
    ints, floats = integer_contractions(qc.compile(qmodel, emit="linalg"))
    assert (ints, floats) == (3, 0)


def _float_mixed_ops(rng) -> onnx.ModelProto:
    """conv -> clip -> maxpool -> sigmoid gate -> concat -> reshape -> transpose -> matmul."""
    inits = {"w": rng.normal(0, .3, (4, 3, 3, 3)).astype(F32), "lo": np.array(0, F32), "hi": np.array(6, F32),
             "shape": np.array([1, 8, -1], np.int64), "mw": rng.normal(0, .3, (8, 6)).astype(F32)}
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("Clip", ["c", "lo", "hi"], ["r"]),
             helper.make_node("MaxPool", ["r"], ["p"], kernel_shape=[2, 2], strides=[2, 2]),
             helper.make_node("Sigmoid", ["p"], ["s"]), helper.make_node("Mul", ["p", "s"], ["ms"]),
             helper.make_node("Concat", ["ms", "p"], ["cc"], axis=1),
             helper.make_node("Reshape", ["cc", "shape"], ["rs"]),
             helper.make_node("Transpose", ["rs"], ["t"], perm=[0, 2, 1]),
             helper.make_node("MatMul", ["t", "mw"], ["y"])]
    return make_model(nodes, {"x": (F32, (1, 3, 9, 11))}, {"y": (F32, (1, 20, 6))}, inits, opset=17)


def quantize_mixed_ops(fmt: str, tmp_path) -> onnx.ModelProto:
    """_float_mixed_ops quantized by quantize_static in `fmt` (QDQ or
    QOperator: QLinearConv, MaxPool on uint8, QLinearSigmoid, QLinearMul,
    QLinearConcat, Reshape/Transpose on uint8, QLinearMatMul). reduce_range:
    7-bit weights keep onnxruntime's u8 x s8 kernels out of their 16-bit
    saturation (see the module doc), which would otherwise put the reference
    tens of steps off."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    fp, qp = tmp_path / "float.onnx", tmp_path / "int8.onnx"
    onnx.save(_float_mixed_ops(np.random.default_rng(80)), fp)
    reader = type("Reader", (_Calibration, CalibrationDataReader), {})()
    quantize_static(str(fp), str(qp), reader, quant_format=getattr(QuantFormat, fmt), per_channel=True,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, reduce_range=True)
    return onnx.load(qp)


@pytest.mark.parametrize("fmt", ["QDQ", "QOperator"])
def test_quantize_static_mixed_ops(fmt, tmp_path):
    qmodel = quantize_mixed_ops(fmt, tmp_path)
    check_steps(qmodel, tmp_path, min_close=0.95)
    # Only the input's QuantizeLinear and the output's DequantizeLinear stay in float.
    text = qc.compile(qmodel, emit="input")
    assert text.count("arith.divf") == 1 and text.count("arith.mulf") == 1
