"""Numerics of the neural-network ops against onnxruntime: Conv, ConvTranspose,
MaxPool, AveragePool, GlobalAveragePool, GlobalMaxPool, BatchNormalization,
InstanceNormalization, LayerNormalization, Dropout, Resize, Upsample,
DepthToSpace and SpaceToDepth.

Data inputs are graph inputs (runtime values), so each op goes through its
importer instead of being constant-folded; weights are initializers (the
usual case) unless a test says otherwise. Spatial sizes are odd and
non-square (7x9), channel counts are not multiples of 8, most cases have a
batch of 2. Several variants of one op share a model where they can (one
compile), each variant its own named output.

Tolerances: rtol 1e-5; atol 1e-5 where a sum of many products (conv,
interpolation) is added in another order than onnxruntime's, 1e-6 otherwise.
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from helpers import check_against_ort, compile_and_run, make_model, ort_run
from onnx import helper

import qc

F32 = np.float32


def rand(rng, shape):
    return rng.standard_normal(shape).astype(F32)


def build(nodes, feeds: dict, inits=None, opset=17, outputs=("y",), out_dtypes=None):
    """A model whose output shapes come from ONNX shape inference."""
    outs = {o: ((out_dtypes or {}).get(o, F32), None) for o in outputs}
    model = make_model(nodes, {n: (v.dtype, v.shape) for n, v in feeds.items()}, outs, inits, opset=opset)
    return onnx.shape_inference.infer_shapes(model)


def check_outputs(model, feeds, tmp_path, atol=1e-6):
    """check_against_ort on a model with several outputs, each once.

    Variants whose results coincide (e.g. nearest floor and round_prefer_floor
    where no coordinate has a fraction) compile to the same SSA value, and a
    function returning one value twice crashes bufferization
    (buffer-results-to-out-params): such repeats are dropped from the outputs.
    """
    want = ort_run(model, feeds)
    seen: list[np.ndarray] = []
    for out in list(model.graph.output):
        w = want[out.name]
        if any(v.shape == w.shape and v.dtype == w.dtype and np.array_equal(v, w) for v in seen):
            model.graph.output.remove(out)
        else:
            seen.append(w)
    return check_against_ort(model, feeds, tmp_path, atol=atol)


def check_node(tmp_path, op, names, feeds, inits=None, opset=17, atol=1e-6, **attrs):
    node = helper.make_node(op, names, ["y"], name=f"{op.lower()}0", **attrs)
    return check_against_ort(build([node], feeds, inits, opset), feeds, tmp_path, atol=atol)


def check_variants(tmp_path, op, variants: dict, feeds, inputs=("x",), inits=None, opset=17, atol=1e-6):
    """One model, one `op` node per variant (output name -> attributes)."""
    nodes = [helper.make_node(op, list(inputs), [name], name=name, **a) for name, a in variants.items()]
    return check_outputs(build(nodes, feeds, inits, opset, outputs=tuple(variants)), feeds, tmp_path, atol=atol)


# --- Conv -------------------------------------------------------------------

CONV_CASES = [
    # x, w, attributes, bias
    ((2, 3, 7, 9), (5, 3, 3, 3), dict(pads=[1, 0, 2, 1], strides=[2, 1]), True),  # asymmetric pads, stride 2 in H
    ((1, 3, 7, 9), (5, 3, 3, 3), dict(auto_pad="SAME_UPPER", strides=[2, 2]), True),  # even pad total
    ((1, 3, 7, 9), (5, 3, 4, 4), dict(auto_pad="SAME_LOWER", strides=[2, 2]), False),  # odd total: extra pad first
    ((1, 3, 7, 9), (5, 3, 4, 2), dict(auto_pad="SAME_UPPER"), True),  # odd total: extra pad last
    ((1, 3, 7, 9), (5, 3, 3, 3), dict(auto_pad="VALID", strides=[2, 2]), True),  # no pads; last row unused
    ((2, 3, 7, 9), (5, 3, 3, 2), dict(auto_pad="NOTSET"), False),  # NOTSET without pads
    ((1, 3, 9, 9), (4, 3, 3, 3), dict(dilations=[2, 3], pads=[2, 3, 2, 3]), True),  # dilations
    ((1, 3, 7, 9), (2, 3, 1, 1), dict(strides=[2, 3]), True),  # 1x1 kernel, strides
    ((2, 6, 7, 9), (6, 1, 3, 3), dict(group=6, pads=[1, 1, 1, 1], strides=[2, 2]), True),  # depthwise
    ((1, 6, 7, 9), (12, 1, 3, 3), dict(group=6), True),  # depth multiplier 2: the grouped op
    ((2, 6, 7, 9), (10, 3, 3, 3), dict(group=2, pads=[1, 2, 0, 1]), True),  # 2 groups
    ((2, 3, 11), (4, 3, 3), dict(pads=[1, 2], strides=[2]), True),  # 1-D
    ((2, 6, 11), (9, 2, 3), dict(group=3, auto_pad="SAME_UPPER", strides=[2]), True),  # 1-D grouped
    ((2, 5, 11), (5, 1, 3), dict(group=5, dilations=[2]), False),  # 1-D depthwise
    ((1, 2, 5, 6, 7), (3, 2, 3, 3, 3), dict(pads=[1, 0, 1, 1, 0, 1], strides=[1, 2, 1]), True),  # 3-D
    ((1, 4, 5, 6, 7), (4, 1, 3, 2, 3), dict(group=4), True),  # 3-D depthwise
]


@pytest.mark.parametrize("x_shape,w_shape,attrs,bias", CONV_CASES, ids=lambda v: str(v).replace(" ", ""))
def test_conv(x_shape, w_shape, attrs, bias, tmp_path):
    rng = np.random.default_rng(100)
    feeds = {"x": rand(rng, x_shape)}
    inits = {"w": rand(rng, w_shape)}
    names = ["x", "w"]
    if bias:
        inits["b"] = rand(rng, (w_shape[0],))
        names.append("b")
    check_node(tmp_path, "Conv", names, feeds, inits, atol=1e-5, **attrs)


@pytest.mark.parametrize("group", [1, 3])
def test_conv_runtime_weights(group, tmp_path):
    # Filter and bias as graph inputs: views instead of compile-time reshapes.
    rng = np.random.default_rng(101)
    feeds = {"x": rand(rng, (2, 6, 7, 9)), "w": rand(rng, (9, 6 // group, 3, 3)), "b": rand(rng, (9,))}
    check_node(tmp_path, "Conv", ["x", "w", "b"], feeds, atol=1e-5, group=group, pads=[1, 1, 0, 0])


@pytest.mark.parametrize("opset", [1, 11])
def test_conv_opsets(opset, tmp_path):
    rng = np.random.default_rng(102)
    feeds = {"x": rand(rng, (1, 3, 7, 9))}
    inits = {"w": rand(rng, (4, 3, 3, 3)), "b": rand(rng, (4,))}
    check_node(tmp_path, "Conv", ["x", "w", "b"], feeds, inits, opset=opset, atol=1e-5,
               kernel_shape=[3, 3], pads=[0, 1, 1, 0])


def test_conv_same_with_dilation(tmp_path):
    # onnxruntime rejects SAME_* with dilations; the ONNX reference evaluator
    # (dilated extent in the padding, as shape inference) is the reference.
    from onnx.reference import ReferenceEvaluator

    rng = np.random.default_rng(103)
    feeds = {"x": rand(rng, (1, 2, 7, 9))}
    inits = {"w": rand(rng, (3, 2, 3, 4))}  # W: extent 4, an odd padding total of 3
    nodes = [helper.make_node("Conv", ["x", "w"], [f"y_{m.lower()}"], auto_pad=m, strides=[2, 1], dilations=[2, 1])
             for m in ("SAME_UPPER", "SAME_LOWER")]
    model = build(nodes, feeds, inits, outputs=("y_same_upper", "y_same_lower"))  # distinct: odd total in W
    got = compile_and_run(model, feeds, tmp_path)
    want = ReferenceEvaluator(model).run(None, feeds)
    for name, w in zip(("y_same_upper", "y_same_lower"), want):
        np.testing.assert_allclose(got[name], w, rtol=1e-5, atol=1e-5, err_msg=name)


# --- ConvTranspose ----------------------------------------------------------

CONV_TRANSPOSE_CASES = [
    ((2, 3, 5, 7), (3, 5, 3, 3), dict(strides=[2, 2]), True),  # stride 2, batch 2
    ((1, 3, 5, 7), (3, 5, 3, 3), dict(strides=[2, 3], pads=[1, 0, 2, 1], output_padding=[1, 1]), True),
    ((1, 3, 5, 7), (3, 5, 3, 3), dict(strides=[2, 3], pads=[3, 0, 2, 4], dilations=[1, 2]), False),  # pads > k-1: crop
    ((1, 4, 5, 7), (4, 2, 3, 3), dict(strides=[2, 2], group=2), True),  # grouped
    ((1, 4, 5, 7), (4, 1, 3, 3), dict(strides=[2, 2], group=4), True),  # depthwise
    ((1, 6, 5, 7), (6, 1, 3, 3), dict(strides=[1, 2], pads=[0, 1, 1, 0], group=3), False),  # 3 groups, M/g = 1
    ((1, 3, 5, 7), (3, 2, 3, 3), dict(strides=[2, 2], output_shape=[10, 14]), True),  # odd total: extra pad first
    ((1, 3, 5, 7), (3, 2, 3, 3), dict(strides=[2, 2], output_shape=[12, 16]), True),  # past the full output: zeros
    ((1, 3, 5, 7), (3, 2, 3, 3), dict(strides=[2, 2], output_shape=[8, 13]), True),  # pads 2, 1 / 1, 1
    ((1, 3, 5, 7), (3, 2, 3, 3), dict(strides=[2, 2], auto_pad="SAME_UPPER"), True),  # out = in * stride
    ((1, 3, 5, 7), (3, 2, 3, 3), dict(strides=[2, 2], auto_pad="SAME_LOWER"), True),
    ((1, 3, 5, 7), (3, 2, 3, 3), dict(strides=[2, 2], auto_pad="VALID"), False),
    ((2, 3, 9), (3, 2, 4), dict(strides=[3]), True),  # 1-D
    ((1, 4, 9), (4, 3, 3), dict(strides=[2], group=2, pads=[1, 0]), True),  # 1-D grouped
    ((1, 2, 3, 4, 5), (2, 3, 2, 2, 2), dict(strides=[2, 1, 2]), True),  # 3-D
]


@pytest.mark.parametrize("x_shape,w_shape,attrs,bias", CONV_TRANSPOSE_CASES,
                         ids=lambda v: str(v).replace(" ", ""))
def test_conv_transpose(x_shape, w_shape, attrs, bias, tmp_path):
    rng = np.random.default_rng(110)
    feeds = {"x": rand(rng, x_shape)}
    inits = {"w": rand(rng, w_shape)}
    names = ["x", "w"]
    if bias:
        inits["b"] = rand(rng, (w_shape[1] * attrs.get("group", 1),))
        names.append("b")
    check_node(tmp_path, "ConvTranspose", names, feeds, inits, atol=1e-5, **attrs)


def test_conv_transpose_runtime_weights(tmp_path):
    # A run-time filter is flipped and transposed by a generic, not numpy.
    rng = np.random.default_rng(111)
    feeds = {"x": rand(rng, (1, 4, 5, 7)), "w": rand(rng, (4, 3, 3, 2)), "b": rand(rng, (6,))}
    check_node(tmp_path, "ConvTranspose", ["x", "w", "b"], feeds, atol=1e-5, group=2, strides=[2, 3], pads=[1, 0, 0, 1])


# --- Pooling ----------------------------------------------------------------

MAXPOOL_2D = {
    "y_plain": dict(kernel_shape=[3, 3]),
    "y_pads_stride": dict(kernel_shape=[3, 2], strides=[2, 2], pads=[1, 0, 2, 1]),
    "y_ceil": dict(kernel_shape=[3, 3], strides=[2, 2], pads=[2, 1, 0, 1], ceil_mode=1),
    "y_ceil_overhang": dict(kernel_shape=[2, 2], strides=[2, 2], ceil_mode=1),  # last window past the input
    "y_same_upper": dict(kernel_shape=[3, 3], strides=[2, 2], auto_pad="SAME_UPPER"),
    "y_same_lower": dict(kernel_shape=[2, 3], strides=[2, 1], auto_pad="SAME_LOWER"),
    "y_valid": dict(kernel_shape=[3, 3], strides=[2, 2], auto_pad="VALID"),
    "y_dilated": dict(kernel_shape=[3, 3], dilations=[2, 2], pads=[1, 1, 1, 1]),
    "y_dilated_ceil": dict(kernel_shape=[3, 3], dilations=[2, 1], strides=[2, 2], pads=[2, 1, 1, 1], ceil_mode=1),
}


def test_maxpool_2d(tmp_path):
    feeds = {"x": rand(np.random.default_rng(120), (2, 3, 7, 9))}
    check_variants(tmp_path, "MaxPool", MAXPOOL_2D, feeds, opset=12)


AVGPOOL_2D = {
    "y_plain": dict(kernel_shape=[3, 3]),
    "y_same_upper": dict(kernel_shape=[3, 3], strides=[2, 2], auto_pad="SAME_UPPER"),
    "y_same_lower": dict(kernel_shape=[2, 3], strides=[2, 1], auto_pad="SAME_LOWER"),
    "y_valid": dict(kernel_shape=[3, 3], strides=[2, 2], auto_pad="VALID"),
}
for _cip in (0, 1):
    AVGPOOL_2D.update({
        # the divisor differs at every border of these
        f"y_pads_{_cip}": dict(kernel_shape=[3, 3], strides=[2, 2], pads=[2, 1, 1, 2], count_include_pad=_cip),
        f"y_ceil_{_cip}": dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 2, 1, 1], ceil_mode=1,
                               count_include_pad=_cip),
        # the last windows run one past the end pads
        f"y_ceil_overhang_{_cip}": dict(kernel_shape=[3, 2], strides=[2, 2], pads=[0, 0, 1, 0], ceil_mode=1,
                                        count_include_pad=_cip),
        f"y_same_pad_{_cip}": dict(kernel_shape=[4, 4], strides=[2, 3], auto_pad="SAME_UPPER",
                                   count_include_pad=_cip),
        f"y_dilated_{_cip}": dict(kernel_shape=[3, 3], strides=[2, 2], dilations=[2, 2], pads=[1, 1, 1, 1],
                                  ceil_mode=1, count_include_pad=_cip),
    })


def test_avgpool_2d(tmp_path):
    feeds = {"x": rand(np.random.default_rng(121), (2, 3, 7, 9))}
    check_variants(tmp_path, "AveragePool", AVGPOOL_2D, feeds, opset=19)


def test_pool_1d(tmp_path):
    feeds = {"x": rand(np.random.default_rng(122), (2, 5, 11))}
    nodes = [
        helper.make_node("MaxPool", ["x"], ["max_pads"], kernel_shape=[3], strides=[2], pads=[1, 2]),
        helper.make_node("MaxPool", ["x"], ["max_ceil"], kernel_shape=[3], strides=[2], pads=[1, 1], ceil_mode=1),
        helper.make_node("AveragePool", ["x"], ["avg_ceil_0"], kernel_shape=[4], strides=[3], pads=[2, 1],
                         ceil_mode=1),
        helper.make_node("AveragePool", ["x"], ["avg_ceil_1"], kernel_shape=[4], strides=[3], pads=[2, 1],
                         ceil_mode=1, count_include_pad=1),
    ]
    model = build(nodes, feeds, opset=19, outputs=("max_pads", "max_ceil", "avg_ceil_0", "avg_ceil_1"))
    check_outputs(model, feeds, tmp_path)


@pytest.mark.parametrize("op,opset,attrs", [
    ("MaxPool", 1, {}),  # no dilations, no ceil_mode
    ("MaxPool", 8, dict(storage_order=1)),  # storage_order only affects Indices
    ("MaxPool", 10, dict(ceil_mode=1)),
    ("AveragePool", 7, dict(count_include_pad=1)),
    ("AveragePool", 10, dict(ceil_mode=1)),
    ("AveragePool", 11, dict(ceil_mode=1, count_include_pad=1)),
])
def test_pool_opsets(op, opset, attrs, tmp_path):
    feeds = {"x": rand(np.random.default_rng(123), (2, 3, 7, 9))}
    check_node(tmp_path, op, ["x"], feeds, opset=opset, kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1],
               **attrs)


@pytest.mark.parametrize("shape", [(2, 3, 7, 9),  # 2-D
                                   (2, 5, 11),  # 1-D
                                   (1, 3, 2, 3, 5)])  # 3-D
def test_global_pools(shape, tmp_path):
    feeds = {"x": rand(np.random.default_rng(124), shape)}
    nodes = [helper.make_node("GlobalAveragePool", ["x"], ["avg"]), helper.make_node("GlobalMaxPool", ["x"], ["max"])]
    check_outputs(build(nodes, feeds, outputs=("avg", "max")), feeds, tmp_path)


# --- Normalization ----------------------------------------------------------


def bn_params(rng, shape):
    return {"s": rand(rng, shape), "bias": rand(rng, shape), "mean": rand(rng, shape),
            "var": (np.abs(rand(rng, shape)) + 0.1).astype(F32)}


@pytest.mark.parametrize("opset", [7, 9, 14, 15])
def test_batchnorm_opsets(opset, tmp_path):
    rng = np.random.default_rng(130)
    feeds = {"x": rand(rng, (2, 5, 7, 9))}
    check_node(tmp_path, "BatchNormalization", ["x", "s", "bias", "mean", "var"], feeds, bn_params(rng, (5,)),
               opset=opset, epsilon=1e-3)


@pytest.mark.parametrize("x_shape", [(2, 5),  # [N, C]: no spatial dims
                                     (2, 5, 11)])  # 1-D
def test_batchnorm_ranks(x_shape, tmp_path):
    rng = np.random.default_rng(131)
    feeds = {"x": rand(rng, x_shape)}
    check_node(tmp_path, "BatchNormalization", ["x", "s", "bias", "mean", "var"], feeds, bn_params(rng, (5,)),
               opset=15)


def test_batchnorm_runtime_params(tmp_path):
    rng = np.random.default_rng(132)
    feeds = {"x": rand(rng, (2, 5, 7, 9)), **bn_params(rng, (5,))}
    check_node(tmp_path, "BatchNormalization", ["x", "s", "bias", "mean", "var"], feeds, opset=15)


def test_batchnorm_spatial_0(tmp_path):
    # Opset 7 spatial=0: one set of parameters per (C, H, W) element.
    rng = np.random.default_rng(133)
    feeds = {"x": rand(rng, (2, 5, 7, 9))}
    check_node(tmp_path, "BatchNormalization", ["x", "s", "bias", "mean", "var"], feeds, bn_params(rng, (5, 7, 9)),
               opset=7, spatial=0)


@pytest.mark.parametrize("opset", [6, 17])
@pytest.mark.parametrize("x_shape", [(2, 5, 7, 9),  # 2-D
                                     (2, 5, 11)])  # 1-D
def test_instancenorm(opset, x_shape, tmp_path):
    rng = np.random.default_rng(140)
    feeds = {"x": rand(rng, x_shape)}
    check_node(tmp_path, "InstanceNormalization", ["x", "s", "bias"], feeds,
               {"s": rand(rng, (5,)), "bias": rand(rng, (5,))}, opset=opset, epsilon=1e-3)


LAYERNORM_CASES = [
    (-1, (9,)),  # the usual: last axis
    (2, (7, 9)),  # two axes
    (1, (5, 7, 9)),  # all but the batch
    (-1, (1,)),  # scale broadcast along the axis
    (2, (1, 9)),  # scale broadcast along one of two axes
]


@pytest.mark.parametrize("axis,param_shape", LAYERNORM_CASES, ids=str)
def test_layernorm(axis, param_shape, tmp_path):
    rng = np.random.default_rng(150)
    feeds = {"x": rand(rng, (2, 5, 7, 9))}
    check_node(tmp_path, "LayerNormalization", ["x", "s", "bias"], feeds,
               {"s": rand(rng, param_shape), "bias": rand(rng, param_shape)}, atol=1e-5, axis=axis)


def test_layernorm_no_bias_runtime_scale(tmp_path):
    rng = np.random.default_rng(151)
    feeds = {"x": rand(rng, (3, 33)), "s": rand(rng, (33,))}
    check_node(tmp_path, "LayerNormalization", ["x", "s"], feeds, atol=1e-5, epsilon=1e-3)


# --- Dropout ----------------------------------------------------------------


@pytest.mark.parametrize("opset,attrs", [(7, dict(ratio=0.3)), (10, dict(ratio=0.3)), (12, {}), (13, {})])
def test_dropout_identity(opset, attrs, tmp_path):
    feeds = {"x": rand(np.random.default_rng(160), (2, 5, 7))}
    check_node(tmp_path, "Dropout", ["x"], feeds, opset=opset, **attrs)


def test_dropout_inputs_and_mask(tmp_path):
    # Opset 13: ratio and a false training_mode as inputs; the bool mask is all
    # true (compared as float: a bool graph output is a separate matter).
    feeds = {"x": rand(np.random.default_rng(161), (2, 5, 7))}
    nodes = [helper.make_node("Dropout", ["x", "ratio", "train"], ["y", "mask"]),
             helper.make_node("Cast", ["mask"], ["mask_f"], to=onnx.TensorProto.FLOAT)]
    inits = {"ratio": np.array(0.5, F32), "train": np.array(False)}
    got = check_against_ort(build(nodes, feeds, inits, opset=13, outputs=("y", "mask_f")), feeds, tmp_path)
    assert np.all(got["mask_f"] == 1)


def test_dropout_opset7_mask(tmp_path):
    # Before opset 10 the mask has the input's type. onnxruntime's old kernel
    # fills it with zeros; qc follows the spec's meaning (1 = kept) instead.
    feeds = {"x": rand(np.random.default_rng(162), (2, 3))}
    node = helper.make_node("Dropout", ["x"], ["y", "mask"])
    model = make_model([node], {"x": (F32, (2, 3))}, {"y": (F32, (2, 3)), "mask": (F32, (2, 3))}, opset=7)
    got = compile_and_run(model, feeds, tmp_path)
    np.testing.assert_array_equal(got["y"], feeds["x"])
    np.testing.assert_array_equal(got["mask"], np.ones((2, 3), F32))


# --- Resize and Upsample ----------------------------------------------------

COORD_MODES = ["half_pixel", "asymmetric", "align_corners", "pytorch_half_pixel", "half_pixel_symmetric",
               "tf_half_pixel_for_nn"]
NEAREST_MODES = ["round_prefer_floor", "round_prefer_ceil", "floor", "ceil"]


def resize_node(name, scales=None, sizes=None, **attrs):
    return helper.make_node("Resize", ["x", "", scales or "", sizes or ""], [name], name=name, **attrs)


# Scales 2 (H) and 0.5 (W) put many coordinates exactly on .5 (ties); sizes
# [10, 4] from [7, 9] give non-integer ratios.
RESIZE_INITS = {"up_down": np.array([1, 1, 2, 0.5], F32), "sizes": np.array([2, 3, 10, 4], np.int64)}


@pytest.mark.parametrize("coord", COORD_MODES)
def test_resize_nearest(coord, tmp_path):
    feeds = {"x": rand(np.random.default_rng(170), (2, 3, 7, 9))}
    nodes, outs = [], []
    for nm in NEAREST_MODES:
        for kind, arg in (("scales", dict(scales="up_down")), ("sizes", dict(sizes="sizes"))):
            outs.append(f"{nm}_{kind}")
            nodes.append(resize_node(outs[-1], mode="nearest", coordinate_transformation_mode=coord,
                                     nearest_mode=nm, **arg))
    check_outputs(build(nodes, feeds, RESIZE_INITS, opset=19, outputs=tuple(outs)), feeds, tmp_path)


@pytest.mark.parametrize("coord", COORD_MODES[:5])
def test_resize_linear(coord, tmp_path):
    feeds = {"x": rand(np.random.default_rng(171), (2, 3, 7, 9))}
    inits = {**RESIZE_INITS, "odd": np.array([1, 1, 1.7, 2.3], F32), "row": np.array([2, 3, 1, 13], np.int64)}
    nodes = [resize_node("y_up_down", scales="up_down", mode="linear", coordinate_transformation_mode=coord),
             resize_node("y_sizes", sizes="sizes", mode="linear", coordinate_transformation_mode=coord),
             resize_node("y_odd", scales="odd", mode="linear", coordinate_transformation_mode=coord),
             resize_node("y_row", sizes="row", mode="linear", coordinate_transformation_mode=coord)]  # out H = 1
    model = build(nodes, feeds, inits, opset=19, outputs=("y_up_down", "y_sizes", "y_odd", "y_row"))
    check_outputs(model, feeds, tmp_path, atol=1e-5)


@pytest.mark.parametrize("opset", [10, 11, 13, 18])
def test_resize_opsets(opset, tmp_path):
    # Opset 10: (x, scales), asymmetric, onnxruntime's legacy nearest rounding.
    # Opset 11: roi and scales must be present (empty scales when sizes are given).
    feeds = {"x": rand(np.random.default_rng(172), (2, 3, 5, 6))}
    inits = {"roi": np.zeros(0, F32), "empty": np.zeros(0, F32), "up": np.array([1, 1, 2.5, 1.5], F32),
             "down": np.array([1, 1, 0.5, 1.5], F32), "sizes": np.array([2, 3, 3, 11], np.int64)}
    if opset == 10:
        nodes = [helper.make_node("Resize", ["x", "up"], ["lin"], mode="linear"),
                 helper.make_node("Resize", ["x", "down"], ["near"], mode="nearest")]
    else:
        roi = "roi" if opset == 11 else ""
        nodes = [helper.make_node("Resize", ["x", roi, "up"], ["lin"], mode="linear"),
                 helper.make_node("Resize", ["x", roi, "empty" if opset == 11 else "", "sizes"], ["near"])]
    check_outputs(build(nodes, feeds, inits, opset=opset, outputs=("lin", "near")), feeds, tmp_path, atol=1e-5)


def test_resize_opset18_axes_and_aspect(tmp_path):
    feeds = {"x": rand(np.random.default_rng(173), (2, 3, 5, 6))}
    inits = {"scales": np.array([2.5, 1.5], F32), "sizes": np.array([8, 8], np.int64),
             "sizes_wh": np.array([4, 8], np.int64)}
    nodes = [
        helper.make_node("Resize", ["x", "", "scales"], ["axes"], axes=[2, 3], mode="linear"),
        helper.make_node("Resize", ["x", "", "", "sizes_wh"], ["axes_reversed"], axes=[3, 2], mode="linear"),
        # one scale for both axes: min(8/5, 8/6), sizes round(scale * in) = 7, 8
        helper.make_node("Resize", ["x", "", "", "sizes"], ["not_larger"], axes=[2, 3],
                         keep_aspect_ratio_policy="not_larger"),
        helper.make_node("Resize", ["x", "", "", "sizes"], ["not_smaller"], axes=[2, 3],
                         keep_aspect_ratio_policy="not_smaller", mode="linear"),
    ]
    outs = ("axes", "axes_reversed", "not_larger", "not_smaller")
    check_outputs(build(nodes, feeds, inits, opset=18, outputs=outs), feeds, tmp_path, atol=1e-5)


def test_resize_other_ranks_and_dtypes(tmp_path):
    rng = np.random.default_rng(174)
    feeds = {"x2": rand(rng, (3, 7)), "x3": rand(rng, (2, 3, 7)),
             "q": rng.integers(0, 256, (2, 3, 5, 6)).astype(np.uint8)}
    inits = {"s2": np.array([2.5, 1.5], F32), "s3": np.array([1, 1, 1.5], F32), "s3c": np.array([1, 2, 1.5], F32),
             "sq": np.array([1, 1, 0.6, 1.7], F32)}
    nodes = [
        helper.make_node("Resize", ["x2", "", "s2"], ["bilinear_2d"], mode="linear"),  # a plain 2-D input
        helper.make_node("Resize", ["x3", "", "s3"], ["linear_1d"], mode="linear"),
        helper.make_node("Resize", ["x3", "", "s3c"], ["nearest_channels"]),  # the channel dim resized too
        helper.make_node("Resize", ["q", "", "sq"], ["nearest_u8"]),
    ]
    outs = ("bilinear_2d", "linear_1d", "nearest_channels", "nearest_u8")
    model = build(nodes, feeds, inits, opset=19, outputs=outs, out_dtypes={"nearest_u8": np.uint8})
    check_outputs(model, feeds, tmp_path, atol=1e-5)


@pytest.mark.parametrize("opset", [7, 9])
def test_upsample(opset, tmp_path):
    feeds = {"x": rand(np.random.default_rng(175), (2, 3, 5, 6))}
    nearest, linear = [1.0, 1.0, 2.0, 3.0], [1.0, 1.0, 2.5, 1.5]
    if opset == 7:
        nodes = [helper.make_node("Upsample", ["x"], ["near"], scales=nearest),
                 helper.make_node("Upsample", ["x"], ["lin"], scales=linear, mode="linear")]
        inits = None
    else:
        nodes = [helper.make_node("Upsample", ["x", "sn"], ["near"]),
                 helper.make_node("Upsample", ["x", "sl"], ["lin"], mode="linear")]
        inits = {"sn": np.array(nearest, F32), "sl": np.array(linear, F32)}
    # Upsample-7 has no shape inference: the output shapes are given.
    model = make_model(nodes, {"x": (F32, (2, 3, 5, 6))}, {"near": (F32, (2, 3, 10, 18)), "lin": (F32, (2, 3, 12, 9))},
                       inits, opset=opset)
    check_against_ort(model, feeds, tmp_path, atol=1e-5)


# --- DepthToSpace and SpaceToDepth ------------------------------------------


@pytest.mark.parametrize("opset", [1, 11, 13])
def test_depth_to_space(opset, tmp_path):
    feeds = {"x": rand(np.random.default_rng(180), (2, 18, 3, 5))}
    variants = {"dcr": dict(blocksize=3)}
    if opset >= 11:
        variants["crd"] = dict(blocksize=3, mode="CRD")
    check_variants(tmp_path, "DepthToSpace", variants, feeds, opset=opset)


@pytest.mark.parametrize("opset", [1, 13])
def test_space_to_depth(opset, tmp_path):
    feeds = {"x": rand(np.random.default_rng(181), (2, 3, 6, 10))}
    check_node(tmp_path, "SpaceToDepth", ["x"], feeds, opset=opset, blocksize=2)


# --- What is not supported --------------------------------------------------


def _compile(model, tmp_path):
    qc.compile(model, str(tmp_path / "m.so"))


UNSUPPORTED = [
    # op, input shapes (graph inputs, F32), initializers, attributes, opset, outputs, message
    ("Conv", {"x": (1, 4, 5, 5)}, {"w": (3, 2, 3, 3)}, dict(group=2), 17, ["y"], "group 2 does not divide"),
    ("Conv", {"x": (1, 4, 5, 6, 7)}, {"w": (4, 2, 3, 3, 3)}, dict(group=2), 17, ["y"], "grouped 3-D"),
    ("Conv", {"x": (1, 2, 5, 5)}, {"w": (3, 2, 3, 3)}, dict(kernel_shape=[2, 2]), 17, ["y"], "kernel_shape"),
    ("MaxPool", {"x": (1, 2, 5, 5)}, {}, dict(kernel_shape=[2, 2]), 12, ["y", "indices"], "Indices"),
    ("MaxPool", {"x": (1, 2, 3, 5, 5)}, {}, dict(kernel_shape=[2, 2, 2]), 12, ["y"], "1-D or 2-D pooling"),
    ("AveragePool", {"x": (1, 2, 5, 5)}, {}, dict(kernel_shape=[2, 2], pads=[2, 0, 0, 0]), 19, ["y"],
     "pads < kernel_shape"),
    ("BatchNormalization", {"x": (2, 3, 4)}, {n: (3,) for n in ("s", "b", "m", "v")}, dict(training_mode=1), 15,
     ["y", "rm", "rv"], "training_mode=1"),
    ("Resize", {"x": (1, 1, 4, 4)}, {"": None, "sc": (4,)}, dict(mode="cubic"), 19, ["y"], "cubic"),
    ("Resize", {"x": (1, 1, 4, 4)}, {"roi": (8,), "sc": (4,)},
     dict(coordinate_transformation_mode="tf_crop_and_resize"), 19, ["y"], "tf_crop_and_resize"),
    ("Resize", {"x": (1, 1, 4, 4)}, {"": None, "down": (4,)}, dict(mode="linear", antialias=1), 19, ["y"],
     "antialias"),
    ("Dropout", {"x": (2, 3), "ratio": (), "train": None}, {}, {}, 13, ["y"], "training_mode is computed at run time"),
]


@pytest.mark.parametrize("op,inputs,inits,attrs,opset,outputs,message", UNSUPPORTED, ids=lambda v: str(v)[:30])
def test_unsupported(op, inputs, inits, attrs, opset, outputs, message, tmp_path):
    rng = np.random.default_rng(190)
    names = list(inputs) + list(inits)
    graph_inputs = {n: (np.bool_ if s is None else F32, () if s is None else s) for n, s in inputs.items()}
    values = {"sc": np.array([1, 1, 2, 2], F32), "down": np.array([1, 1, 0.5, 0.5], F32),
              "roi": np.array([0, 0, 0, 0, 1, 1, 1, 1], F32)}
    init_values = {n: values.get(n, rand(rng, s)) for n, s in inits.items() if n}
    if op == "BatchNormalization":
        init_values["v"] = np.abs(init_values["v"]) + 1
    node = helper.make_node(op, names, outputs, name="bad", **attrs)
    out_types = {o: (np.int64 if o == "indices" else F32, None) for o in outputs}
    model = onnx.shape_inference.infer_shapes(make_model([node], graph_inputs, out_types, init_values, opset=opset))
    with pytest.raises(qc.UnsupportedOp, match=message):
        _compile(model, tmp_path)


@pytest.mark.parametrize("op,names,attrs", [
    ("Conv", ["x", "w"], {}),
    ("MaxPool", ["x"], dict(kernel_shape=[2, 2])),
    ("GlobalAveragePool", ["x"], {}),
    ("InstanceNormalization", ["x", "w", "w"], {}),  # w stands in for scale and B ([2])
])
def test_unsupported_dtype(op, names, attrs, tmp_path):
    f64 = np.float64
    inits = {"w": np.ones((2, 2, 3, 3) if op == "Conv" else (2,), f64)}
    node = helper.make_node(op, names, ["y"], name="bad", **attrs)
    model = onnx.shape_inference.infer_shapes(
        make_model([node], {"x": (f64, (1, 2, 5, 5))}, {"y": (f64, None)}, inits, opset=17))
    with pytest.raises(qc.UnsupportedOp, match="float64; supported: float32"):
        _compile(model, tmp_path)


def test_small_cnn(tmp_path):
    # The ops compose: conv + folded batchnorm + relu, pooling, a depthwise
    # conv, nearest upsampling and a global pool, with fusion between them.
    rng = np.random.default_rng(200)
    feeds = {"x": rand(rng, (2, 3, 15, 13))}
    inits = {"w1": rand(rng, (6, 3, 3, 3)), "b1": rand(rng, (6,)), **bn_params(rng, (6,)),
             "w2": rand(rng, (6, 1, 3, 3)), "up": np.array([1, 1, 2, 2], F32)}
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1], strides=[2, 2]),
        helper.make_node("BatchNormalization", ["c1", "s", "bias", "mean", "var"], ["n1"]),
        helper.make_node("Relu", ["n1"], ["r1"]),
        helper.make_node("MaxPool", ["r1"], ["p1"], kernel_shape=[2, 2], strides=[2, 2], ceil_mode=1),
        helper.make_node("Conv", ["p1", "w2"], ["c2"], group=6, auto_pad="SAME_UPPER"),
        helper.make_node("Resize", ["c2", "", "up"], ["u"], mode="nearest"),
        helper.make_node("AveragePool", ["u"], ["a"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        helper.make_node("GlobalAveragePool", ["a"], ["y"]),
    ]
    check_against_ort(build(nodes, feeds, inits), feeds, tmp_path, atol=1e-5)
