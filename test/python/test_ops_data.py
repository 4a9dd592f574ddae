"""Numerics of the data-movement and shape ops against onnxruntime: Concat,
Split, Slice, Gather, GatherElements, Squeeze, Unsqueeze, Expand, Tile, Pad,
Shape, Size, ConstantOfShape, Range and Einsum, in each opset form.

Data inputs are graph inputs (runtime values) so that each op goes through
its importer rather than being constant-folded; shape-like inputs (axes,
starts, pads, repeats, constant indices) are initializers. Output shapes come
from a first onnxruntime run of the same graph, so no test restates them.
Floats are compared with rtol 1e-5, integers and moved data exactly.
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from helpers import ONNX_TYPE, check_against_ort, compile_and_run, make_model, ort_run
from onnx import helper

import qc

F32, I64 = np.float32, np.int64
INT64_MAX = np.iinfo(np.int64).max
INT64_MIN = np.iinfo(np.int64).min


def rand(rng, shape, dtype=F32):
    dtype = np.dtype(dtype)
    if dtype == np.bool_:
        return rng.integers(0, 2, shape).astype(bool)
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        return rng.integers(max(info.min, -100), min(info.max, 100), shape, endpoint=True).astype(dtype)
    return rng.standard_normal(shape).astype(dtype)


def build(nodes, feeds: dict, outputs, inits=None, opset=17):
    """The model with its output shapes and types taken from onnxruntime."""
    ins = {n: (v.dtype, v.shape) for n, v in feeds.items()}
    g = helper.make_graph(
        nodes, "probe",
        [helper.make_tensor_value_info(n, ONNX_TYPE[np.dtype(d)], s) for n, (d, s) in ins.items()],
        [helper.make_empty_tensor_value_info(n) for n in outputs],
        [helper.make_tensor(n, ONNX_TYPE[np.asarray(v).dtype], np.asarray(v).shape, np.asarray(v).ravel())
         for n, v in (inits or {}).items()],
    )
    probe = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)], ir_version=8)
    want = ort_run(probe, feeds)
    outs = {n: (want[n].dtype, want[n].shape) for n in outputs}
    return make_model(nodes, ins, outs, inits, opset=opset)


def check(tmp_path, op, feeds: dict, inits=None, opset=17, n_out=1, **attrs):
    """One `op` node on `feeds` (runtime) then `inits` (constants); '' skips an input."""
    inits = inits or {}
    names = [*feeds, *[n for n in inits]]
    outs = ["y"] if n_out == 1 else [f"y{i}" for i in range(n_out)]
    node = helper.make_node(op, [n if not n.startswith("_") else "" for n in names], outs,
                            name=f"{op.lower()}0", **attrs)
    real_inits = {n: v for n, v in inits.items() if not n.startswith("_")}
    return check_against_ort(build([node], feeds, outs, real_inits, opset), feeds, tmp_path)


def expect_unsupported(op, feeds: dict, inits=None, opset=17, match="", n_out=1, out_shape=None, **attrs):
    """qc rejects the node with UnsupportedOp (in the importer, not earlier)."""
    inits = inits or {}
    outs = ["y"] if n_out == 1 else [f"y{i}" for i in range(n_out)]
    node = helper.make_node(op, [*feeds, *inits], outs, name=f"{op.lower()}0", **attrs)
    ins = {n: (v.dtype, v.shape) for n, v in feeds.items()}
    dtype = next(iter(feeds.values())).dtype
    if out_shape is None:  # what ONNX shape inference says
        probe = make_model([node], ins, {}, inits, opset=opset)
        probe.graph.output.extend([helper.make_empty_tensor_value_info(o) for o in outs])
        inferred = onnx.shape_inference.infer_shapes(probe).graph.output
        out_shapes = [[d.dim_value for d in o.type.tensor_type.shape.dim] for o in inferred]
    else:
        out_shapes = [out_shape] * n_out
    model = make_model([node], ins, {o: (dtype, s) for o, s in zip(outs, out_shapes)}, inits, opset=opset)
    with pytest.raises(qc.UnsupportedOp, match=match):
        qc.compile(model, emit="input")


# --- Concat ----------------------------------------------------------------------

CONCAT_CASES = [
    ([(2, 3), (2, 5)], -1),  # negative axis, odd widths
    ([(1, 4, 3), (2, 4, 3), (3, 4, 3)], 0),  # three inputs on the outer axis (contiguous)
    ([(2, 3, 1), (2, 3, 2)], 2),  # innermost axis, a size-1 part
    ([(3, 2, 2), (3, 1, 2)], -2),  # middle axis
]


@pytest.mark.parametrize("shapes,axis", CONCAT_CASES, ids=str)
def test_concat(shapes, axis, tmp_path):
    rng = np.random.default_rng(1)
    feeds = {f"x{i}": rand(rng, s) for i, s in enumerate(shapes)}
    check(tmp_path, "Concat", feeds, axis=axis)


def test_concat_with_constant_and_empty_part(tmp_path):
    # A constant part is materialized; an empty constant part adds nothing.
    rng = np.random.default_rng(2)
    feeds = {"x": rand(rng, (3, 2))}
    inits = {"c": rand(rng, (3, 4)), "e": np.zeros((3, 0), F32)}
    check(tmp_path, "Concat", feeds, inits, axis=1)


def test_concat_opset1_default_axis(tmp_path):
    # Opset 1 had a default axis of 1. onnxruntime has no Concat-1 kernel: numpy is the reference.
    rng = np.random.default_rng(3)
    feeds = {"a": rand(rng, (2, 3)), "b": rand(rng, (2, 2))}
    node = helper.make_node("Concat", ["a", "b"], ["y"], name="concat0")
    model = make_model([node], {n: (F32, v.shape) for n, v in feeds.items()}, {"y": (F32, (2, 5))}, opset=1)
    got = compile_and_run(model, feeds, tmp_path)
    np.testing.assert_array_equal(got["y"], np.concatenate([feeds["a"], feeds["b"]], axis=1))


# --- Split -----------------------------------------------------------------------

def test_split_opset2_attribute_default_axis(tmp_path):
    rng = np.random.default_rng(4)
    check(tmp_path, "Split", {"x": rand(rng, (5, 3))}, opset=2, n_out=2, split=[2, 3])


def test_split_opset11_attribute_inner_axis(tmp_path):
    # Inner-axis chunks are not contiguous: each is copied.
    rng = np.random.default_rng(5)
    check(tmp_path, "Split", {"x": rand(rng, (2, 7, 3))}, opset=11, n_out=3, axis=-2, split=[1, 4, 2])


def test_split_opset13_input(tmp_path):
    rng = np.random.default_rng(6)
    check(tmp_path, "Split", {"x": rand(rng, (3, 5))}, {"s": np.array([3, 2], I64)}, opset=13, n_out=2, axis=1)


@pytest.mark.parametrize("opset", [11, 13])
def test_split_equal(opset, tmp_path):
    # No split sizes: equal parts, one per output.
    rng = np.random.default_rng(7)
    check(tmp_path, "Split", {"x": rand(rng, (6, 2))}, opset=opset, n_out=3)


def test_split_opset18_num_outputs_uneven(tmp_path):
    # 7 into 3: chunks of ceil(7/3) = 3, the last one takes the rest (1).
    rng = np.random.default_rng(8)
    check(tmp_path, "Split", {"x": rand(rng, (2, 7))}, opset=18, n_out=3, axis=1, num_outputs=3)


# --- Slice -----------------------------------------------------------------------

def test_slice_opset1_attributes(tmp_path):
    # Negative start, end past the end, axes omitted (all leading dims).
    rng = np.random.default_rng(9)
    check(tmp_path, "Slice", {"x": rand(rng, (5, 7))}, opset=1, starts=[-4, 1], ends=[INT64_MAX, 6])


def test_slice_opset1_axes(tmp_path):
    rng = np.random.default_rng(10)
    check(tmp_path, "Slice", {"x": rand(rng, (4, 5, 6))}, opset=1, starts=[2], ends=[-1], axes=[-1])


SLICE_CASES = [
    # (shape, starts, ends, axes or None, steps or None)
    ((5, 7), [1], [4], None, None),  # axes and steps omitted
    ((5, 7), [-100, 2], [100, INT64_MAX], [0, 1], None),  # clamped starts and ends
    ((9, 4), [1], [9], [0], [3]),  # strided on the outer axis
    ((3, 11), [0], [INT64_MAX], [-1], [2]),  # strided on the inner axis, negative axis
    ((6,), [-1], [INT64_MIN], [0], [-1]),  # full reversal
    ((4, 9), [7, 3], [0, -5], [1, 0], [-3, -1]),  # negative steps on both axes, axes out of order
    ((2, 3, 8), [1, 6], [3, 0], [1, 2], [1, -2]),  # positive and negative step together
]


@pytest.mark.parametrize("shape,starts,ends,axes,steps", SLICE_CASES, ids=str)
@pytest.mark.parametrize("opset", [10, 13])
def test_slice_inputs(shape, starts, ends, axes, steps, opset, tmp_path):
    rng = np.random.default_rng(11)
    inits = {"starts": np.array(starts, I64), "ends": np.array(ends, I64)}
    if axes is not None or steps is not None:
        inits["axes" if axes is not None else "_axes"] = np.array(axes if axes is not None else [], I64)
    if steps is not None:
        inits["steps"] = np.array(steps, I64)
    check(tmp_path, "Slice", {"x": rand(rng, shape)}, inits, opset=opset)


def test_slice_int32_inputs(tmp_path):
    rng = np.random.default_rng(12)
    inits = {"s": np.array([1], np.int32), "e": np.array([-1], np.int32), "a": np.array([0], np.int32)}
    check(tmp_path, "Slice", {"x": rand(rng, (5, 3))}, inits, opset=13)


# --- Gather / GatherElements -------------------------------------------------------

GATHER_RUNTIME = [
    ((5, 3), (4,), 0, np.int64),  # rows, a repeated index
    ((3, 6, 2), (2, 3), 1, np.int64),  # rank-2 indices in the middle
    ((4, 7), (), -1, np.int64),  # scalar index, negative axis: drops the dim
    ((7,), (3,), 0, np.int32),  # int32 indices, 1-D data
]


@pytest.mark.parametrize("shape,ishape,axis,itype", GATHER_RUNTIME, ids=str)
def test_gather_runtime_indices(shape, ishape, axis, itype, tmp_path):
    rng = np.random.default_rng(13)
    dim = shape[axis]
    # Negative indices count from the end.
    idx = rng.integers(-dim, dim, ishape).astype(itype)
    check(tmp_path, "Gather", {"x": rand(rng, shape), "i": idx}, axis=axis)


GATHER_CONST = [
    (np.array(-2), 1),  # scalar: a slice, dim dropped
    (np.array([1, 2, 3]), 1),  # a range: a slice
    (np.array([0, 2, 4]), -2),  # a strided range
    (np.array([4, 3, 2, 1]), 1),  # a decreasing range: slice + reversal
    (np.array([[0, 1], [2, 3]]), 1),  # a range of rank 2: slice + expand
    (np.array([[3, -1], [0, 0]]), 1),  # irregular: a generic over the constant indices
    (np.array([2]), 0),  # one index on the outer axis
]


@pytest.mark.parametrize("idx,axis", GATHER_CONST, ids=lambda v: str(np.asarray(v).tolist()))
def test_gather_constant_indices(idx, axis, tmp_path):
    rng = np.random.default_rng(14)
    check(tmp_path, "Gather", {"x": rand(rng, (3, 5, 2))}, {"i": idx.astype(I64)}, axis=axis)


def test_gather_elements_runtime(tmp_path):
    rng = np.random.default_rng(15)
    x = rand(rng, (3, 4))
    idx = rng.integers(-4, 4, (3, 2)).astype(I64)  # smaller than the data off the axis
    check(tmp_path, "GatherElements", {"x": x, "i": idx}, axis=-1)


def test_gather_elements_constant(tmp_path):
    rng = np.random.default_rng(16)
    idx = rng.integers(0, 3, (2, 2, 5)).astype(np.int32)
    check(tmp_path, "GatherElements", {"x": rand(rng, (3, 2, 5))}, {"i": idx}, axis=0)


# --- Squeeze / Unsqueeze -------------------------------------------------------------

def test_squeeze_opset11_attribute(tmp_path):
    rng = np.random.default_rng(17)
    check(tmp_path, "Squeeze", {"x": rand(rng, (1, 3, 1, 2))}, opset=11, axes=[0, -2])


def test_squeeze_opset13_input(tmp_path):
    rng = np.random.default_rng(18)
    check(tmp_path, "Squeeze", {"x": rand(rng, (3, 1, 2, 1))}, {"a": np.array([-1], I64)}, opset=13)


@pytest.mark.parametrize("opset", [11, 13])
def test_squeeze_all_unit_dims(opset, tmp_path):
    # No axes: every size-1 dim goes, down to a scalar here.
    rng = np.random.default_rng(19)
    check(tmp_path, "Squeeze", {"x": rand(rng, (1, 1, 1))}, opset=opset)


def test_unsqueeze_opset11_attribute(tmp_path):
    rng = np.random.default_rng(20)
    check(tmp_path, "Unsqueeze", {"x": rand(rng, (3, 2))}, opset=11, axes=[0, 3])


def test_unsqueeze_opset13_input_negative(tmp_path):
    # Negative axes count in the output rank (5): -1 is the new last dim.
    rng = np.random.default_rng(21)
    check(tmp_path, "Unsqueeze", {"x": rand(rng, (3, 2))}, {"a": np.array([-1, 1, 0], I64)}, opset=13)


def test_unsqueeze_scalar(tmp_path):
    rng = np.random.default_rng(22)
    check(tmp_path, "Unsqueeze", {"x": rand(rng, ())}, {"a": np.array([0, 1], I64)}, opset=13)


# --- Expand / Tile -----------------------------------------------------------------

EXPAND_CASES = [
    ((3, 1), (2, 1, 4)),  # bidirectional: the shape's 1 keeps the input's 3
    ((2, 3, 1), (4,)),  # shape of lower rank
    ((1,), (5, 3)),  # a single element everywhere
    ((2, 3), (2, 3)),  # no-op
]


@pytest.mark.parametrize("shape,target", EXPAND_CASES, ids=str)
def test_expand(shape, target, tmp_path):
    rng = np.random.default_rng(23)
    check(tmp_path, "Expand", {"x": rand(rng, shape)}, {"s": np.array(target, I64)})


TILE_CASES = [
    ((2, 3), (2, 3)),  # both dims
    ((3, 1, 2), (1, 4, 1)),  # one dim, a size-1 one
    ((5,), (1,)),  # no-op
]


@pytest.mark.parametrize("shape,repeats", TILE_CASES, ids=str)
def test_tile(shape, repeats, tmp_path):
    rng = np.random.default_rng(24)
    check(tmp_path, "Tile", {"x": rand(rng, shape)}, {"r": np.array(repeats, I64)})


# --- Pad -------------------------------------------------------------------------

def test_pad_opset2_attributes(tmp_path):
    rng = np.random.default_rng(25)
    check(tmp_path, "Pad", {"x": rand(rng, (2, 3))}, opset=2, pads=[1, 0, 2, 3], value=1.5)


@pytest.mark.parametrize("mode", ["constant", "reflect", "edge"])
def test_pad_opset2_modes(mode, tmp_path):
    rng = np.random.default_rng(26)
    check(tmp_path, "Pad", {"x": rand(rng, (3, 4))}, opset=2, pads=[1, 2, 2, 1], mode=mode)


PAD_CASES = [
    # (shape, pads, mode)
    ((3, 4), [1, 2, 2, 1], "constant"),
    ((3, 4), [2, 0, 1, 3], "reflect"),  # pads up to dim - 1
    ((2, 3, 5), [0, 1, 4, 1, 0, 2], "edge"),  # pads larger than a dim
    ((4, 5), [-1, 2, 1, -2], "constant"),  # negative pads crop
    ((4, 5), [0, -1, 0, -2], "edge"),  # crop only
]


@pytest.mark.parametrize("shape,pads,mode", PAD_CASES, ids=str)
def test_pad_opset13_inputs(shape, pads, mode, tmp_path):
    rng = np.random.default_rng(27)
    check(tmp_path, "Pad", {"x": rand(rng, shape)}, {"p": np.array(pads, I64)}, opset=13, mode=mode)


def test_pad_constant_value_input(tmp_path):
    rng = np.random.default_rng(28)
    inits = {"p": np.array([1, 1, 0, 2], I64), "v": np.array(-3.25, F32)}
    check(tmp_path, "Pad", {"x": rand(rng, (2, 3))}, inits, opset=11)


def test_pad_runtime_constant_value(tmp_path):
    rng = np.random.default_rng(29)
    feeds = {"x": rand(rng, (2, 3)), "v": np.array(7.5, F32)}
    # The node's inputs are (x, pads, constant_value): build it by hand.
    node = helper.make_node("Pad", ["x", "p", "v"], ["y"], name="pad0")
    check_against_ort(build([node], feeds, ["y"], {"p": np.array([0, 2, 1, 0], I64)}, 13), feeds, tmp_path)


def test_pad_opset18_axes(tmp_path):
    rng = np.random.default_rng(30)
    # Pads for (axis -1, axis 0): begins 2, 1; ends 0, 2 (reflect allows up to dim - 1).
    inits = {"p": np.array([2, 1, 0, 2], I64), "_v": None, "a": np.array([-1, 0], I64)}
    check(tmp_path, "Pad", {"x": rand(rng, (3, 2, 4))}, inits, opset=18, mode="reflect")


def test_pad_opset19_wrap(tmp_path):
    # Pads longer than the dim wrap around more than once.
    rng = np.random.default_rng(31)
    check(tmp_path, "Pad", {"x": rand(rng, (3, 2))}, {"p": np.array([4, 1, 2, 3], I64)}, opset=19, mode="wrap")


def test_pad_int_constant(tmp_path):
    rng = np.random.default_rng(32)
    inits = {"p": np.array([1, 0, 0, 1], I64), "v": np.array(9, np.int32)}
    check(tmp_path, "Pad", {"x": rand(rng, (2, 3), np.int32)}, inits, opset=13)


# --- Shape / Size / ConstantOfShape / Range: compile-time values --------------------

def test_shape_start_end_and_size(tmp_path):
    rng = np.random.default_rng(33)
    feeds = {"x": rand(rng, (2, 3, 4, 5))}
    nodes = [
        helper.make_node("Shape", ["x"], ["s"]),
        helper.make_node("Shape", ["x"], ["s2"], start=1, end=-1),
        helper.make_node("Shape", ["x"], ["s3"], start=-2),
        helper.make_node("Size", ["x"], ["n"]),
    ]
    outs = ["s", "s2", "s3", "n"]
    check_against_ort(build(nodes, feeds, outs, opset=15), feeds, tmp_path)


def test_dynamic_reshape_subgraph(tmp_path):
    # PyTorch's x.view(x.size(0), -1): folds to one static reshape.
    rng = np.random.default_rng(34)
    feeds = {"x": rand(rng, (2, 3, 4))}
    nodes = [
        helper.make_node("Shape", ["x"], ["s"]),
        helper.make_node("Gather", ["s", "zero"], ["n"], axis=0),
        helper.make_node("Unsqueeze", ["n", "ax"], ["n1"]),
        helper.make_node("Concat", ["n1", "minus1"], ["shape"], axis=0),
        helper.make_node("Reshape", ["x", "shape"], ["y"]),
    ]
    inits = {"zero": np.array(0, I64), "ax": np.array([0], I64), "minus1": np.array([-1], I64)}
    check_against_ort(build(nodes, feeds, ["y"], inits, opset=13), feeds, tmp_path)


@pytest.mark.parametrize("value", [None, np.array([2.5], F32), np.array([-4], np.int32)], ids=str)
def test_constant_of_shape_from_shape(value, tmp_path):
    # ConstantOfShape(Shape(x)) folds; adding x keeps the result a runtime value.
    rng = np.random.default_rng(35)
    dtype = F32 if value is None else value.dtype
    feeds = {"x": rand(rng, (3, 2), dtype)}
    attrs = {} if value is None else {"value": helper.make_tensor("v", ONNX_TYPE[value.dtype], [1], value)}
    nodes = [
        helper.make_node("Shape", ["x"], ["s"]),
        helper.make_node("ConstantOfShape", ["s"], ["c"], **attrs),
        helper.make_node("Add", ["x", "c"], ["y"]),
    ]
    check_against_ort(build(nodes, feeds, ["y"]), feeds, tmp_path)


def test_range_folded(tmp_path):
    rng = np.random.default_rng(36)
    feeds = {"x": rand(rng, (4,), np.int64)}
    nodes = [helper.make_node("Range", ["a", "b", "d"], ["r"]), helper.make_node("Add", ["x", "r"], ["y"])]
    inits = {"a": np.array(10, I64), "b": np.array(-2, I64), "d": np.array(-3, I64)}
    check_against_ort(build(nodes, feeds, ["y"], inits), feeds, tmp_path)


def test_range_too_large_to_fold(tmp_path):
    # Past the fold limit (2^24 elements) the importer builds it: one generic.
    n = (1 << 24) + 3
    inits = {"a": np.array(-5, np.int32), "b": np.array(-5 + 2 * n, np.int32), "d": np.array(2, np.int32)}
    nodes = [helper.make_node("Range", ["a", "b", "d"], ["y"])]
    model = make_model(nodes, {}, {"y": (np.int32, [n])}, inits)
    check_against_ort(model, {}, tmp_path)


# --- Einsum ----------------------------------------------------------------------

EINSUM_CASES = [
    ("ij,jk->ik", [(3, 5), (5, 4)]),  # linalg.matmul
    ("bij,bjk->bik", [(2, 3, 5), (2, 5, 4)]),  # linalg.batch_matmul
    ("bhqd,bhkd->bhqk", [(2, 3, 4, 5), (2, 3, 6, 5)]),  # attention scores
    ("i,i->", [(7,), (7,)]),  # dot product, rank-0 result
    ("ij->ji", [(3, 5)]),  # linalg.transpose
    ("bij->bji", [(2, 3, 4)]),
    ("ij,j->i", [(4, 6), (6,)]),  # matrix-vector
    ("ij,jk", [(3, 2), (2, 4)]),  # implicit output: "ik"
    ("...ij,...jk->...ik", [(2, 3, 4), (2, 4, 5)]),  # ellipsis
    ("ij->i", [(3, 5)]),  # a plain reduction
]


@pytest.mark.parametrize("eq,shapes", EINSUM_CASES, ids=lambda v: str(v))
def test_einsum(eq, shapes, tmp_path):
    rng = np.random.default_rng(37)
    feeds = {f"x{i}": rand(rng, s) for i, s in enumerate(shapes)}
    check(tmp_path, "Einsum", feeds, opset=12, equation=eq)


def test_einsum_ellipsis_broadcast(tmp_path):
    # A size-1 dim under "..." broadcasts: onnxruntime rejects this form,
    # so numpy is the reference.
    rng = np.random.default_rng(40)
    feeds = {"a": rand(rng, (2, 1, 3, 4)), "b": rand(rng, (1, 5, 4, 2))}
    node = helper.make_node("Einsum", ["a", "b"], ["y"], name="einsum0", equation="...ij,...jk->...ik")
    want = np.einsum("...ij,...jk->...ik", feeds["a"], feeds["b"])
    model = make_model([node], {n: (F32, v.shape) for n, v in feeds.items()}, {"y": (F32, want.shape)}, opset=12)
    got = compile_and_run(model, feeds, tmp_path)
    np.testing.assert_allclose(got["y"], want, rtol=1e-5, atol=1e-6)


def test_einsum_int32(tmp_path):
    rng = np.random.default_rng(38)
    feeds = {"a": rand(rng, (3, 4), np.int32), "b": rand(rng, (2, 4), np.int32)}
    check(tmp_path, "Einsum", feeds, opset=12, equation="ik,jk->ij")


# --- Every element type through the data-movement ops -----------------------------

# bool is imported the same way, but lowering i1 memref loads and stores to
# LLVM currently aborts in MemRefToLLVM (for every op, not just these).
DTYPES = [np.float32, np.float64, np.int8, np.uint8, np.int32, np.int64]


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_element_types(dtype, tmp_path):
    # One graph per type: Concat, strided Slice, runtime Gather, Pad, Tile,
    # Unsqueeze, Expand, Split, Squeeze all move elements of that type.
    rng = np.random.default_rng(39)
    feeds = {"x": rand(rng, (3, 4), dtype), "z": rand(rng, (3, 2), dtype), "i": np.array([2, -1, 0], I64)}
    nodes = [
        helper.make_node("Concat", ["x", "z"], ["c"], axis=1),
        helper.make_node("Slice", ["c", "st", "en", "ax", "sp"], ["s"]),
        helper.make_node("Gather", ["c", "i"], ["g"], axis=1),
        helper.make_node("Pad", ["x", "pads"], ["p"], mode="edge"),
        helper.make_node("Tile", ["z", "rep"], ["t"]),
        helper.make_node("Unsqueeze", ["z", "ax"], ["u"]),
        helper.make_node("Expand", ["u", "shape"], ["e"]),
        helper.make_node("Split", ["x"], ["h0", "h1"], axis=1),
        helper.make_node("Squeeze", ["u", "ax"], ["q"]),
    ]
    inits = {"st": np.array([5], I64), "en": np.array([0], I64), "ax": np.array([1], I64),
             "sp": np.array([-2], I64), "pads": np.array([1, 0, 0, 2], I64), "rep": np.array([1, 2], I64),
             "shape": np.array([3, 3, 2], I64)}
    outs = ["c", "s", "g", "p", "t", "e", "h0", "q"]
    check_against_ort(build(nodes, feeds, outs, inits, opset=13), feeds, tmp_path)


def test_chained_views(tmp_path):
    # Views and copies meeting: strided Split chunks feed a generic (Relu)
    # and a Concat with a constant part (a class token), whose result is
    # reversed by a negative-step Slice and gathered along its last axis.
    rng = np.random.default_rng(41)
    feeds = {"x": rand(rng, (2, 6, 4)), "i": np.array([1, 0, 1], I64)}
    nodes = [
        helper.make_node("Split", ["x"], ["a", "b"], axis=2, num_outputs=2),
        helper.make_node("Relu", ["a"], ["r"]),
        helper.make_node("Concat", ["cls", "r"], ["c"], axis=1),
        helper.make_node("Slice", ["c", "st", "en", "ax", "sp"], ["s"]),
        helper.make_node("Gather", ["s", "i"], ["g"], axis=-1),
    ]
    inits = {"cls": rand(rng, (2, 1, 2)), "st": np.array([-1], I64), "en": np.array([INT64_MIN], I64),
             "ax": np.array([1], I64), "sp": np.array([-2], I64)}
    check_against_ort(build(nodes, feeds, ["b", "c", "g"], inits, opset=18), feeds, tmp_path)


# --- Unsupported forms -----------------------------------------------------------

X = np.zeros((2, 3), F32)


def test_runtime_shape_input_is_unsupported():
    expect_unsupported("Expand", {"x": X, "s": np.array([2, 3], I64)}, out_shape=[2, 3],
                       match="must be known at compile time")


def test_slice_empty_result(tmp_path):
    # An empty slice concatenated to a non-empty tensor: only the Slice fails.
    nodes = [helper.make_node("Slice", ["x", "s", "e", "a", "p"], ["t"], name="slice0"),
             helper.make_node("Concat", ["t", "x"], ["y"], axis=1)]
    inits = {"s": np.array([2], I64), "e": np.array([3], I64), "a": np.array([1], I64), "p": np.array([-1], I64)}
    model = make_model(nodes, {"x": (F32, X.shape)}, {"y": (F32, X.shape)}, inits)
    with pytest.raises(qc.UnsupportedOp, match=r"node 'slice0' \(Slice\): axis 1: \[2:3:-1\] selects nothing"):
        qc.compile(model, emit="input")


def test_pad_crop_past_the_data():
    # Cropping both rows leaves nothing, though the end pad makes the output non-empty again.
    expect_unsupported("Pad", {"x": X}, {"p": np.array([-2, 0, 3, 0], I64)}, match="empty or negative dim")


def test_pad_wrap_before_opset19():
    expect_unsupported("Pad", {"x": X}, {"p": np.array([0, 1, 0, 0], I64)}, opset=18, mode="wrap",
                       match="mode 'wrap' is not supported")


def test_gather_constant_index_out_of_range():
    expect_unsupported("Gather", {"x": X}, {"i": np.array([3], I64)}, axis=1, match="out of range")


def test_tile_runtime_repeats():
    expect_unsupported("Tile", {"x": X, "r": np.array([1, 2], I64)}, out_shape=[2, 6],
                       match="repeats input must be known")


def test_pad_reflect_too_wide():
    expect_unsupported("Pad", {"x": X}, {"p": np.array([0, 3, 0, 0], I64)}, mode="reflect",
                       match="reflect pads")


def test_range_runtime_inputs():
    feeds = {"a": np.array(0, I64)}
    expect_unsupported("Range", feeds, {"b": np.array(5, I64), "d": np.array(1, I64)}, out_shape=[5],
                       match="start input must be known")


def test_einsum_diagonal():
    expect_unsupported("Einsum", {"x": np.zeros((3, 3), F32)}, opset=12, equation="ii->i",
                       match="repeats a letter")


def test_data_type_float16():
    expect_unsupported("Concat", {"a": np.zeros((2,), np.float16), "b": np.zeros((2,), np.float16)},
                       axis=0, match="element type float16")
