"""The requantization qc-lower-qgemm folds into its integer GEMM kernels
(passes/qgemm_epilogue.py) computes what the requantization loop after an
unfolded kernel computes, bit for bit, and stays within one step of the
ONNX-semantics reference.

The models are the example CNN blocks, smaller, quantized by onnxruntime's
quantize_static (QDQ, per channel, BatchNormalization not folded: each conv's
requantization carries the BatchNormalization's multiply and shift too; once
also after onnxruntime's quant_pre_process, which folds it into the convs). In
the MobileNet block the expand conv's requantization writes the padded input
of the depthwise conv (D pitched: stored per image row, two masked stores
where a vector crosses a row end), the project conv's takes the residual
input as a tile operand and writes f32; the ResNet block's 3x3 convs are
implicit-im2col kernels. Rows of 19 outputs end each panel of 361 columns
with a masked tail; rows of 7 are narrower than a vector, so the expand
conv's requantization stays a loop there. (The depthwise conv's runs in its
own kernel, channel by channel: test_vector_int8.py.)
"""

from __future__ import annotations

import re

import numpy as np
import onnx
import pytest
from helpers import cpu_flags, with_pass_options
from helpers import example_module as _example

import qc
from qc.targets import resolve
from qc.passes.lower_qgemm import LowerQGemm
from qc.passes.pipelines import default_pipeline


# name -> (example block, its sizes, GEMM kernels with a folded requantization, requantization loops left,
# quantized after onnxruntime's quant_pre_process: BatchNormalization folded into the convs first)
CASES = {
    "mobilenet_19": ("mobilenet_block", dict(c=8, e=24, hw=19), 2, 0, False),
    "mobilenet_7": ("mobilenet_block", dict(c=8, e=24, hw=7), 1, 1, False),
    "resnet_19": ("resnet_block", dict(c=16, hw=19), 2, 0, False),
    "mobilenet_19_pre": ("mobilenet_block", dict(c=8, e=24, hw=19), 2, 0, True),
}


def _widths() -> list[str]:
    """The x86 targets this CPU runs: 8 lanes, and 16 where it has AVX-512."""
    avx512 = {"avx512f", "avx512bw", "avx512dq", "avx512vl"} <= cpu_flags()
    return ["x86-64-v3"] + (["x86-64-v4"] if avx512 else [])


def unfolded(target: str):
    """The target's default pipeline, its GEMM kernels storing C."""
    return with_pass_options(default_pipeline(resolve(target)), LowerQGemm, fold_requant=False)


@pytest.fixture(scope="module")
def quantized(tmp_path_factory):
    """name -> (QDQ model, input)."""
    make, quant = _example("make_models"), _example("quantize_cnn")
    work = tmp_path_factory.mktemp("qdq")
    out = {}
    for name, (block, sizes, _, _, pre) in CASES.items():
        model, feeds = getattr(make, block)(np.random.default_rng(len(name)), **sizes)
        path = work / f"{name}.onnx"
        onnx.save(model, path)
        out[name] = (quant.quantize(str(path), str(work / f"{name}.int8.onnx"), preprocess=pre), feeds["x"])
    return out


@pytest.mark.parametrize("target", _widths())
@pytest.mark.parametrize("name", CASES)
def test_folded_requantization_same_bits(name, target, quantized, tmp_path):
    model, x = quantized[name]
    _, _, folded, loops, pre = CASES[name]
    # Pre-processed, no BatchNormalization is left to quantize on its own.
    assert any(n.op_type == "BatchNormalization" for n in model.graph.node) != pre
    ir = qc.compile(model, emit="gemm", target=target)
    assert len(re.findall(r"call @qc_qgemm_\w+_rq\d+_[0-9a-f]{8}\(", ir)) == folded
    assert ir.count("call @qc_requant_") == loops
    runs = {}
    for tag, pipeline in (("folded", None), ("unfolded", unfolded(target))):
        lib = str(tmp_path / f"{tag}.so")
        qc.compile(model, lib, target=target, **({"pipeline": pipeline} if pipeline else {}))
        with qc.load(lib) as m:
            runs[tag] = m.run({"x": x})["y"]
    np.testing.assert_array_equal(runs["folded"], runs["unfolded"])
    # And the ONNX semantics: the same float values but for a few values one step off.
    quant = _example("quantize_cnn")
    want = quant.reference(model, {"x": x})["y"]
    steps = np.rint(np.abs(runs["folded"] - want) / quant.output_step(model, "y"))
    assert steps.max() <= 2 and np.mean(steps == 0) > 0.99, np.bincount(steps.astype(np.int64).ravel())


def test_folded_requantization_on_two_threads(quantized, tmp_path):
    """The threads split the column panels; each tile's requantization and
    its pitched stores stay within its own columns."""
    model, x = quantized["mobilenet_19"]
    lib = str(tmp_path / "m.so")
    qc.compile(model, lib)
    with qc.load(lib, threads=1) as one, qc.load(lib, threads=2) as two:
        np.testing.assert_array_equal(one.run({"x": x})["y"], two.run({"x": x})["y"])


def _conv1x1_clip(rng):
    """x (s8) -> DQ -> 1x1 Conv (per-channel weights) -> Q -> DQ ->
    BatchNormalization -> Clip -> Q (s8, zero point 5), as a model quantized
    without folding BatchNormalization: a two-stage requantization whose
    clamp [-45, 105] is tighter than a byte's. Five rows (two tiles of two
    and a tail row) by 63 columns (a full panel of 32 and a partial one of
    31)."""
    from onnx import TensorProto, helper, numpy_helper

    f32 = np.float32
    inits = {"w_q": rng.integers(-128, 128, (5, 12, 1, 1)).astype(np.int8),
             "w_s": rng.uniform(0.002, 0.01, 5).astype(f32), "w_z": np.zeros(5, np.int8),
             "x_s": np.array(0.03, f32), "x_z": np.array(-7, np.int8),
             "c_s": np.array(0.05, f32), "c_z": np.array(3, np.int8),
             "g": rng.uniform(-1.5, 1.5, 5).astype(f32), "beta": rng.normal(0, 0.2, 5).astype(f32),
             "mean": rng.normal(0, 0.2, 5).astype(f32), "var": rng.uniform(0.5, 2, 5).astype(f32),
             "lo": np.array(-0.5, f32), "hi": np.array(1.0, f32),
             "y_s": np.array(0.01, f32), "y_z": np.array(5, np.int8)}
    nodes = [helper.make_node("DequantizeLinear", ["x_q", "x_s", "x_z"], ["x"]),
             helper.make_node("DequantizeLinear", ["w_q", "w_s", "w_z"], ["w"], axis=0),
             helper.make_node("Conv", ["x", "w"], ["c"]),
             helper.make_node("QuantizeLinear", ["c", "c_s", "c_z"], ["c_q"]),
             helper.make_node("DequantizeLinear", ["c_q", "c_s", "c_z"], ["c_d"]),
             helper.make_node("BatchNormalization", ["c_d", "g", "beta", "mean", "var"], ["n"]),
             helper.make_node("Clip", ["n", "lo", "hi"], ["r"]),
             helper.make_node("QuantizeLinear", ["r", "y_s", "y_z"], ["y"])]
    graph = helper.make_graph(nodes, "conv1x1", [helper.make_tensor_value_info("x_q", TensorProto.INT8, [1, 12, 7, 9])],
                              [helper.make_tensor_value_info("y", TensorProto.INT8, [1, 5, 7, 9])],
                              [numpy_helper.from_array(v, k) for k, v in inits.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 19)])
    return model, rng.integers(-128, 128, (1, 12, 7, 9)).astype(np.int8)


def _kernels_asm(model, target: str) -> dict[str, str]:
    """name -> the assembly of each folded int8 GEMM kernel's range function."""
    asm = qc.compile(model, emit="asm", target=target)
    out = {}
    for m in re.finditer(r"^(qc_par_qgemm_\w+_rq\d+_[0-9a-f]{8}_range):\n(.*?)\.cfi_endproc", asm, re.S | re.M):
        out[m.group(1)] = m.group(2)
    return out


@pytest.mark.parametrize("case", ["conv1x1_clip", "mobilenet_19"])
def test_byte_rows_narrowed_by_packs(case, quantized, tmp_path):
    """On AVX2 a tile row of four requantized 8-bit vectors is narrowed by
    two vpackssdw and a vpacksswb on whole registers, and each vector's high
    words are merged by one vshufps (B's columns were packed in the order
    both leave): the same bits as the unfolded requantization, in a partial
    panel, a tail row, a clamp tighter than a byte and (the MobileNet
    block's expand conv, rows of 19) stores across image rows."""
    if case == "conv1x1_clip":
        model, x = _conv1x1_clip(np.random.default_rng(5))
        feeds, out = {"x_q": x}, "y"
    else:
        model, x = quantized[case]
        feeds, out = {"x": x}, "y"
    target = "x86-64-v3"
    kernels = _kernels_asm(model, target)
    byte_kernels = [k for k, text in kernels.items() if "vpacksswb\t%ymm" in text]
    assert byte_kernels, list(kernels)
    for k in byte_kernels:
        text = kernels[k]
        assert "vpermq" not in text and "vpermd" not in text, k  # no lanes put back in order
        assert text.count("vpackssdw\t%ymm") == 2 * text.count("vpacksswb\t%ymm"), k
        # The high words merged by one vshufps per vector, their order undone by B's packing too.
        assert text.count("vshufps\t$221") >= 4 * text.count("vpacksswb\t%ymm") and "vpblendd" not in text, k
    runs = {}
    for tag, pipeline in (("folded", None), ("unfolded", unfolded(target))):
        lib = str(tmp_path / f"{tag}.so")
        qc.compile(model, lib, target=target, **({"pipeline": pipeline} if pipeline else {}))
        with qc.load(lib) as m:
            runs[tag] = m.run(feeds)[out]
    np.testing.assert_array_equal(runs["folded"], runs["unfolded"])
    if case == "conv1x1_clip":
        from onnx.reference import ReferenceEvaluator

        want = ReferenceEvaluator(model).run(None, feeds)[0]
        steps = np.abs(runs["folded"].astype(np.int64) - want)
        assert steps.max() <= 1 and np.mean(steps == 0) > 0.97, np.bincount(steps.ravel())
        assert runs["folded"].min() == -45 and runs["folded"].max() == 105  # both bounds reached
