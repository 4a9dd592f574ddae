"""The x86 vector code of the int8 loops (qc-vector-qdepthwise,
qc-vector-requant, and the requantization qc-lower-qgemm folds into its
kernels) computes the same bits as the loops LLVM vectorizes.

The depthwise kernel has two forms, both run where the CPU has them: i16
pairs (vpmaddwd, any x86) and, with AVX-512 VNNI and VBMI, byte quads
(vpdpbusd on vpermb windows, passes/qdepthwise_dot.py).

Each model is compiled twice, with the default pipeline and with those
passes taken out of it (the GEMM kernels then store C, and the
requantization is a loop), and the outputs must be identical; both must also
be within one step of onnx.reference (test_quant's `check`). The shapes
cover every path of the kernels: rows wider than a vector step with a last
step that overlaps the one before, rows narrower than it, a row of one
output, strides 1 and 2, even and odd kernel widths, and dilation (which
the depthwise kernel leaves to the loop).
"""

from __future__ import annotations

import dataclasses
import re

import numpy as np
import pytest
from helpers import compile_and_run, cpu_flags, with_pass_options
from test_quant import CONV_CASES, I8, U8, _conv_model, check, onnx_ref

import qc
from qc.passes.lower_qgemm import LowerQGemm
from qc.passes.pipelines import default_pipeline
from qc.targets import resolve
from qc.passes.vector_qdepthwise import VectorQDepthwise
from qc.passes.vector_requant import VectorRequant


def scalar_pipeline():
    """The default pipeline without the int8 vector passes, its GEMM
    kernels not folding the requantization."""
    p = default_pipeline()

    def keep(x):
        return dataclasses.replace(x, fold_requant=False) if isinstance(x, LowerQGemm) else x

    stages = tuple(dataclasses.replace(s, passes=tuple(keep(x) for x in s.passes
                                                       if not isinstance(x, (VectorQDepthwise, VectorRequant))))
                   for s in p.stages)
    assert stages != p.stages
    return dataclasses.replace(p, stages=stages)


def same_bits(model, x, tmp_path, **options):
    got = check(model, {"x": x}, tmp_path, ref=onnx_ref, **options)
    (tmp_path / "scalar").mkdir()
    want = compile_and_run(model, {"x": x}, tmp_path / "scalar", pipeline=scalar_pipeline(),
                           exact_requant=options.get("exact_requant", False))
    for name in want:
        np.testing.assert_array_equal(got[name], want[name], err_msg=name)


DEPTHWISE = {
    # (input hw, kernel, strides, pads, dilations): output widths 56, 17, 6, 3, 1
    "wide_overlap": ((5, 56), (3, 3), [1, 1], [1, 1, 1, 1], [1, 1]),
    "odd_width": ((4, 17), (3, 3), [1, 1], [1, 1, 1, 1], [1, 1]),
    "narrow": ((7, 6), (3, 3), [1, 1], [1, 1, 1, 1], [1, 1]),
    "width_3_kernel_2": ((3, 4), (2, 2), [1, 1], [0, 0, 0, 0], [1, 1]),
    "width_1": ((5, 3), (3, 3), [1, 1], [1, 0, 1, 0], [1, 1]),
    "stride_2": ((9, 40), (3, 3), [2, 2], [1, 1, 1, 1], [1, 1]),
    "stride_2_odd": ((9, 11), (3, 3), [2, 2], [1, 1, 1, 1], [1, 1]),
    "kernel_5": ((8, 23), (5, 5), [1, 1], [2, 2, 2, 2], [1, 1]),
    "kernel_1x4": ((4, 19), (1, 4), [1, 1], [0, 1, 0, 2], [1, 1]),
    "dilation": ((9, 20), (3, 3), [1, 1], [2, 2, 2, 2], [2, 2]),
    # output width 70: the quad kernel's steps 0, 16, 32, 48 (two loads), then 54 in a second strip
    "wide_strips": ((6, 70), (3, 3), [1, 1], [1, 1, 1, 1], [1, 1]),
    # output widths 62 and 63: the last step's window ends at byte 64 of one row load / needs a second
    # one (no left pad: byte 0 is not the pad value that byte 64 is)
    "one_load": ((5, 62), (3, 3), [1, 1], [1, 1, 1, 1], [1, 1]),
    "two_loads": ((5, 63), (3, 3), [1, 1], [1, 0, 1, 2], [1, 1]),
}

VNNI_VBMI = "x86_64-unknown-linux-gnu:x86-64-v4:+avx512vnni,+avx512vbmi"
# The forms of the depthwise kernel this CPU runs.
FORMS = ["pairs"] + (["quads"] if {"avx512_vnni", "avx512vbmi"} <= cpu_flags() else [])


def form_pipeline(form: str):
    return with_pass_options(default_pipeline(), VectorQDepthwise, dot=form == "quads")


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("case", DEPTHWISE)
def test_depthwise_kernel_same_bits(case, form, tmp_path):
    hw, kernel, strides, pads, dilations = DEPTHWISE[case]
    model, x = _conv_model(xt=I8, wt=I8, yt=I8, c=6, m=6, group=6, hw=hw, kernel=kernel, strides=strides,
                           pads=pads, dilations=dilations, bias=case != "narrow", seed=len(case))
    gemm_ir = qc.compile(model, emit="gemm", pipeline=form_pipeline(form))
    assert ("call @qc_qdepthwise_" in gemm_ir) == (case != "dilation")
    same_bits(model, x, tmp_path, pipeline=form_pipeline(form))


@pytest.mark.parametrize("case", ["wide_overlap", "odd_width", "width_3_kernel_2", "width_1", "stride_2_odd"])
def test_depthwise_channel_requantization_exact_form(case, tmp_path):
    """The pair kernel requantizes each channel's sums from its stack buffer
    (its last operand is the int8 output, no requantization loop is left),
    in the exact 64-bit form too (--exact-requant): the same bits as the
    loops LLVM vectorizes, for rows of 56, 17, 3 and 1 outputs and stride 2."""
    hw, kernel, strides, pads, dilations = DEPTHWISE[case]
    model, x = _conv_model(xt=I8, wt=I8, yt=I8, c=6, m=6, group=6, hw=hw, kernel=kernel, strides=strides,
                           pads=pads, dilations=dilations, seed=len(case) + 1)
    gemm_ir = qc.compile(model, emit="gemm", pipeline=form_pipeline("pairs"), exact_requant=True)
    assert re.search(r"call @qc_qdepthwise_\d+\(.*xi8>\) -> \(\)", gemm_ir)
    assert "call @qc_requant_" not in gemm_ir and "memref.alloca()" in gemm_ir
    func = gemm_ir[gemm_ir.index("func.func private @qc_qdepthwise_0"):]
    assert "xi64>" in func[:func.index("\n  }\n")]  # the 64-bit products (vpmuldq)
    same_bits(model, x, tmp_path, pipeline=form_pipeline("pairs"), exact_requant=True)


@pytest.mark.parametrize("case", ["wide_overlap", "odd_width", "stride_2", "kernel_5", "two_loads"])
def test_depthwise_quads_fold_exact_form(case, tmp_path):
    """With fold_wide (the AMX Xeon's pipeline) the byte-quad kernel runs the
    exact 64-bit requantization (--exact-requant) on each step's sums: no
    requantization loop is left and the kernel writes int8. Run where this
    CPU has VNNI and VBMI: the same bits as the scalar loops."""
    hw, kernel, strides, pads, dilations = DEPTHWISE[case]
    model, x = _conv_model(xt=I8, wt=I8, yt=I8, c=6, m=6, group=6, hw=hw, kernel=kernel, strides=strides,
                           pads=pads, dilations=dilations, seed=len(case) + 2)
    pipe = with_pass_options(default_pipeline(resolve(VNNI_VBMI)), VectorQDepthwise, dot=True, fold_wide=True)
    gemm_ir = qc.compile(model, emit="gemm", target=VNNI_VBMI, pipeline=pipe, exact_requant=True)
    assert re.search(r"call @qc_qdepthwise_\d+\(.*xi8>\) -> \(\)", gemm_ir)
    assert "call @qc_dot4_us_" in gemm_ir and "call @qc_requant_" not in gemm_ir
    func = gemm_ir[gemm_ir.index("func.func private @qc_qdepthwise_0"):]
    assert "xi64>" in func[:func.index("\n  }\n")]  # the 64-bit products
    unfolded = qc.compile(model, emit="gemm", target=VNNI_VBMI, exact_requant=True,
                          pipeline=with_pass_options(default_pipeline(resolve(VNNI_VBMI)), VectorQDepthwise, dot=True))
    assert "call @qc_requant_" in unfolded  # the default off AMX CPUs: the loop's table lookups
    if "quads" in FORMS:
        same_bits(model, x, tmp_path, pipeline=with_pass_options(default_pipeline(), VectorQDepthwise, dot=True,
                                                                 fold_wide=True), exact_requant=True)


@pytest.mark.parametrize("case", DEPTHWISE)
def test_depthwise_quads_where_rows_allow(case):
    """With VNNI and VBMI the kernel takes byte quads where a row has at
    least 4 outputs (else the pair kernel; dilation: the loop), and LLVM
    makes vpdpbusd of them on any host (wide_strips' masked load of a row's
    last 18 bytes once hung its instruction selection)."""
    hw, kernel, strides, pads, dilations = DEPTHWISE[case]
    model, _ = _conv_model(xt=I8, wt=I8, yt=I8, c=6, m=6, group=6, hw=hw, kernel=kernel, strides=strides,
                           pads=pads, dilations=dilations, seed=len(case))
    gemm_ir = qc.compile(model, emit="gemm", target=VNNI_VBMI)
    ow = (hw[1] + pads[1] + pads[3] - kernel[1]) // strides[1] + 1
    quads = case != "dilation" and ow >= 4
    assert ("call @qc_dot4_us_" in gemm_ir) == quads
    assert ("call @qc_qdepthwise_" in gemm_ir) == (case != "dilation")
    assert "call @qc_dot4_us_" not in qc.compile(model, emit="gemm", target="x86-64-v4-vnni")  # no VBMI
    assert ("vpdpbusd" in qc.compile(model, emit="asm", target=VNNI_VBMI)) == quads


@pytest.mark.parametrize("case", [c for c in CONV_CASES if "3d" not in c])
def test_requantization_same_bits(case, tmp_path):
    """The conv's requantization is vector code: folded into the GEMM
    kernel (its name ends in _rq and a digest of the body), into the
    depthwise byte-quad kernel (which then writes the bytes: its last
    operand is i8), or a loop of its own."""
    model, x = _conv_model(**CONV_CASES[case])
    gemm_ir = qc.compile(model, emit="gemm")
    assert ("call @qc_requant_" in gemm_ir or re.search(r"call @qc_qgemm_\w+_rq\d+_[0-9a-f]{8}\(", gemm_ir)
            or re.search(r"call @qc_qdepthwise_\d+\(.*xi8>\) -> \(\)", gemm_ir))
    same_bits(model, x, tmp_path)


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("case", ["wide_overlap", "stride_2_odd", "kernel_5"])
def test_uint8_depthwise_kernel_same_bits(case, form, tmp_path):
    """uint8 activations (int8 weights): the frontend reads x as int8 (x - 128,
    and x_zero_point - 128), so the depthwise conv reaches the vector kernel
    too; the input zero point 131 pads the window."""
    hw, kernel, strides, pads, dilations = DEPTHWISE[case]
    model, x = _conv_model(xt=U8, wt=I8, yt=U8, c=6, m=6, group=6, hw=hw, kernel=kernel, strides=strides,
                           pads=pads, dilations=dilations, seed=len(case))
    assert "call @qc_qdepthwise_" in qc.compile(model, emit="gemm", pipeline=form_pipeline(form))
    same_bits(model, x, tmp_path, pipeline=form_pipeline(form))


@pytest.mark.parametrize("fmt", ["QDQ", "QOperator"])
def test_uint8_model_same_bits(fmt, tmp_path):
    """A model quantize_static made with uint8 activations (its uint8 values
    widened back by extui after a requantization, which the vector code
    drops where the clamp keeps them in [0, 255]): the same bits as the
    loops LLVM vectorizes."""
    from test_quant import F32, quantize_mixed_ops

    model = quantize_mixed_ops(fmt, tmp_path)
    x = np.random.default_rng(71).normal(0, 1, (1, 3, 9, 11)).astype(F32)
    got = compile_and_run(model, {"x": x}, tmp_path)
    (tmp_path / "scalar").mkdir()
    want = compile_and_run(model, {"x": x}, tmp_path / "scalar", pipeline=scalar_pipeline())
    np.testing.assert_array_equal(got["y"], want["y"])
