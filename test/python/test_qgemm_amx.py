"""Numerics of the AMX form of the integer GEMM (qc-lower-qgemm with `amx`,
passes/qgemm_amx.py): a row tile of whole 16-row tiles multiplied by the
tile unit into a stack tile, then corrected and requantized as the
vpdpbusd kernel does.

qemu does not implement AMX, and not every CPU that runs this suite has it,
so every case runs with the tile product written as vector code over the
same layouts (`emulate_dot`: the packed A tiles, the padded scratch panel,
the stack tile); test/codegen/qgemm_x86_64_v4_amx.onnxtxt shows the tile
instructions. Where this CPU has AMX-INT8, the host's own kernels are
checked too (`test_host`); where it has not, that the host does not pick
them. The reference is numpy in int64, or onnx.reference for QLinearConv,
and the vpdpbusd kernel's bits.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from helpers import compile_qgemm
from test_qgemm import I8, U8, random_conv
from test_quant import _conv_model, assert_close_steps, onnx_ref

import qc
from qc.passes.lower_qgemm import LowerQGemm, for_target
from qc.passes.pipelines import default_pipeline
from qc.targets import resolve


def pipeline(target: str, emulate: bool = True, **changes):
    """The host pipeline with `target`'s integer kernels, the dot and tile
    products as vector code (emulate)."""
    lower = dataclasses.replace(for_target(resolve(target)), emulate_dot=emulate, **changes)
    p = default_pipeline()
    stages = tuple(dataclasses.replace(s, passes=tuple(lower if isinstance(x, LowerQGemm) else x for x in s.passes))
                   for s in p.stages)
    return dataclasses.replace(p, stages=stages)


def run(lib, feeds, name="y", threads=1):
    with qc.load(lib, threads=threads) as m:
        return m.run(feeds)[name]


CONVS = {  # x shape, filters, kernel, pads, strides, MR of the AMX kernel
    "3x3_one_tile": ((1, 6, 17, 19), 16, (3, 3), (1, 1, 1, 1), (1, 1), 16),  # K = 54: quads padded to 16
    "1x1_three_tiles": ((1, 33, 7, 9), 48, (1, 1), (0, 0, 0, 0), (1, 1), 16),  # B packed per panel; N = 63
    "3x3_s2_two_tiles": ((1, 5, 15, 15), 32, (3, 3), (1, 1, 1, 1), (2, 2), 32),  # gathered columns
    "deep": ((1, 200, 6, 20), 64, (3, 3), (1, 1, 1, 1), (1, 1), 32),  # K = 1800: 450 quads, one block
}


@pytest.mark.parametrize("case", CONVS)
@pytest.mark.parametrize("x_type", [U8, I8])
def test_conv(case, x_type, tmp_path):
    """ConvInteger (i32 out) with constant int8 weights: the tile kernel for
    whole tiles of output channels, exact against numpy; uint8 with a zero
    point (the image is then not flipped: tdpbusd's other sign order)."""
    *shape, mr = CONVS[case]
    model, x, want = random_conv(31, *shape, x_type)
    lib, kernels = compile_qgemm(model, tmp_path, pipeline=pipeline("x86-64-v4-amx"))
    assert kernels and all(f"{mr}x32_" in k and "_amx" in k for k in kernels), kernels
    np.testing.assert_array_equal(run(lib, {"x": x}), want)
    np.testing.assert_array_equal(run(lib, {"x": x}, threads=2), want)


@pytest.mark.parametrize("f,channels,why", [(13, 6, "rows"), (16, 520, "depth")])
def test_conv_falls_back_to_vpdpbusd(f, channels, why, tmp_path):
    """13 output channels are no whole tile, and K = 4680 (1170 quads) is
    deeper than one cache block of the tile kernel: both stay vpdpbusd
    kernels (several cache blocks for the deep one), still exact."""
    model, x, want = random_conv(32, (1, channels, 5, 7), f, (3, 3), (1, 1, 1, 1), (1, 1), I8)
    lib, kernels = compile_qgemm(model, tmp_path, pipeline=pipeline("x86-64-v4-amx"))
    assert kernels and all("_dot" in k and "_amx" not in k for k in kernels), (why, kernels)
    np.testing.assert_array_equal(run(lib, {"x": x}), want)


@pytest.mark.parametrize("xt,yt", [(U8, U8), (I8, I8)], ids=["u8", "s8"])
def test_qlinear_conv_requantized_in_the_kernel(xt, yt, tmp_path):
    """QLinearConv of 32 channels: the requantization (per-channel
    multiplier, bias, zero points, saturation) runs on the stack tile's
    rows; within a step of onnx.reference and the same bits as the
    vpdpbusd kernel."""
    model, x = _conv_model(xt, I8, yt, c=12, m=32, hw=(13, 11), pads=[1, 1, 1, 1], seed=3)
    feeds = {"x": x}
    lib, kernels = compile_qgemm(model, tmp_path, "amx", pipeline=pipeline("x86-64-v4-amx"))
    assert kernels and all("_amx" in k and "_rq" in k for k in kernels), kernels
    got = run(lib, feeds)
    assert_close_steps(got, onnx_ref(model, feeds)["y"], name="y")
    lib_dot, kernels_dot = compile_qgemm(model, tmp_path, "dot", pipeline=pipeline("x86-64-v4-amx", amx=False))
    assert kernels_dot and all("_dot" in k for k in kernels_dot), kernels_dot
    np.testing.assert_array_equal(got, run(lib_dot, feeds))


def test_host(tmp_path):
    """This CPU's own kernels: with AMX-INT8 the tile instructions (real
    tdpbsud, the runtime asking Linux for the tile state), exact; without
    it, the host pipeline does not pick them."""
    host = resolve("host")
    model, x, want = random_conv(33, *CONVS["3x3_s2_two_tiles"][:-1], I8)
    lib, kernels = compile_qgemm(model, tmp_path)
    has_amx = {"+amx-int8", "+amx-tile"} <= host.feature_set and host.arch == "x86_64"
    assert for_target(host).amx == (has_amx and "+avx512vnni" in host.feature_set and host.vector_bits == 512)
    if not for_target(host).amx:
        assert all("_amx" not in k for k in kernels), kernels
        return
    assert all("_amx" in k for k in kernels), kernels
    asm = qc.compile(model, emit="asm")
    assert "tdpbsud" in asm and "ldtilecfg" in asm
    np.testing.assert_array_equal(run(lib, {"x": x}, threads=2), want)
