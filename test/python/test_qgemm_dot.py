"""Numerics of the dot-product form of the integer GEMM (qc-lower-qgemm with
`dot`): byte quads, four products per i32 lane and instruction, the
run-time operand xor'ed with 0x80 where its sign does not fit the
instruction and the exact correction carried by the constant operand.

AArch64 (sdot / udot by element, 8 x 12 tile) runs under qemu. No CPU here
has AVX-512 VNNI or AVX-VNNI and qemu does not implement vpdpbusd, so the
x86 kernels (6 x 16 and 8 x 32 tiles) run on this CPU with the dot helper
defined as portable vector code (`emulate_dot`): that checks everything
but the one instruction, which test/codegen/qgemm_x86_64_*vnni_dot.onnxtxt
show in the assembly. The reference is numpy in int64.

Every sign pair is covered (u8 x s8 and s8 x s8 flip on one ISA and not on
the other); sizes straddle the tiles, K % 4 != 0 leaves a partial quad, and
K = 1601 spans several cache blocks (the correction starts the first).
"""

from __future__ import annotations

import dataclasses
import os
import re

import numpy as np
import pytest
from helpers import compile_qgemm
from test_qgemm import I8, I32, U8, matmul_model, qrand, random_conv

import qc
from qc.passes.lower_qgemm import LowerQGemm, for_target
from qc.passes.pipelines import default_pipeline
from qc.targets import resolve


def emulated(target: str):
    """The host pipeline with `target`'s dot kernel, its helper as vector code."""
    dot = dataclasses.replace(for_target(resolve(target)), emulate_dot=True)
    assert dot.dot, target
    p = default_pipeline()
    stages = tuple(dataclasses.replace(s, passes=tuple(dot if isinstance(x, LowerQGemm) else x for x in s.passes))
                   for s in p.stages)
    assert stages != p.stages
    return dataclasses.replace(p, stages=stages)


# name -> compile options: where the kernels run
ISAS = {
    "aarch64_dotprod": {"target": "aarch64-dotprod"},
    "avx_vnni_emulated": {"pipeline": lambda: emulated("x86-64-v3-vnni")},
    "avx512_vnni_emulated": {"pipeline": lambda: emulated("x86-64-v4-vnni")},
}


def build(isa, model, tmp_path, name="model"):
    """Compiles model for the ISA; (library, the integer kernels it calls)."""
    opts = dict(ISAS[isa])
    if "pipeline" in opts:
        opts["pipeline"] = opts["pipeline"]()
    return compile_qgemm(model, tmp_path, name, **opts)


def run(lib, feeds, threads=1):
    with qc.load(lib, threads=threads) as m:
        return m.run(feeds)["y"]


SIGNS = [(U8, I8), (I8, I8), (U8, U8), (I8, U8)]
SIGN_IDS = ["u8s8", "s8s8", "u8u8", "s8u8"]


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("a_type,b_type", SIGNS, ids=SIGN_IDS)
def test_matmul_constant_b(isa, a_type, b_type, tmp_path):
    """A at run time (packed in quads by the kernel's wrapper, flipped there),
    B constant (its correction row per column): row and column tails, a
    partial last quad (K = 37), then several cache blocks (K = 1601)."""
    rng = np.random.default_rng(21)
    for m, n, k in ((13, 35, 37), (9, 40, 1601)):
        a, b = qrand(rng, a_type, (m, k)), qrand(rng, b_type, (k, n))
        lib, kernels = build(isa, matmul_model(m, n, k, a_type, b_type, True, b), tmp_path, f"mm{k}")
        assert len(kernels) == 1 and "_dot" in kernels.pop()
        want = (a.astype(np.int64) @ b.astype(np.int64)).astype(I32)
        np.testing.assert_array_equal(run(lib, {"a": a}), want, err_msg=f"{m}x{n}x{k}")


CONVS = {  # x shape, filters, kernel, pads, strides, B mode
    "3x3": ((1, 6, 17, 19), 13, (3, 3), (1, 1, 1, 1), (1, 1), "i"),  # K = 54: a partial quad
    "3x3_s2": ((1, 5, 15, 15), 9, (3, 3), (1, 1, 1, 1), (2, 2), "i"),  # gathered columns
    "1x1": ((1, 33, 7, 9), 17, (1, 1), (0, 0, 0, 0), (1, 1), "s"),  # B packed from the input per block
    "deep": ((1, 200, 6, 20), 10, (3, 3), (1, 1, 1, 1), (1, 1), "i"),  # K = 1800: several blocks
}


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("case", CONVS)
@pytest.mark.parametrize("x_type", [U8, I8])
def test_conv(isa, case, x_type, tmp_path):
    """Constant int8 weights (A, with the correction per row), the image at
    run time (quads packed per panel, flipped there); uint8 with a zero point."""
    *shape, mode = CONVS[case]
    model, x, want = random_conv(22, *shape, x_type)
    lib, kernels = build(isa, model, tmp_path)
    assert {re.search(r"_([psi])\d+x\d+_", k).group(1) for k in kernels} == {mode}
    assert all("_dot" in k for k in kernels), kernels
    np.testing.assert_array_equal(run(lib, {"x": x}), want)


@pytest.mark.parametrize("isa", ["aarch64_dotprod", "avx_vnni_emulated"])
def test_extremes(isa, tmp_path):
    """255, 0, -128 and 127 in every quad (4 * 255 * -128 per instruction,
    a correction of 128 * K * 127); on this CPU also the panels split over
    two threads (a foreign library runs under qemu on one)."""
    rng = np.random.default_rng(23)
    m, n, k = 20, 300, 999
    a = rng.choice(np.array([0, 255], U8), (m, k))
    b = rng.choice(np.array([-128, 127, 0], I8), (k, n))
    lib, kernels = build(isa, matmul_model(m, n, k, U8, I8, True, b), tmp_path)
    assert all("_dot" in name for name in kernels)
    want = (a.astype(np.int64) @ b.astype(np.int64)).astype(I32)
    one = run(lib, {"a": a})
    np.testing.assert_array_equal(one, want)
    if isa != "aarch64_dotprod":
        np.testing.assert_array_equal(run(lib, {"a": a}, threads=2), one)


@pytest.mark.parametrize("isa", ["aarch64_dotprod", "avx_vnni_emulated"])
def test_both_operands_at_run_time_keep_pairs(isa, tmp_path):
    """With no constant side to carry a correction, the kernel stays on i16
    pairs (and is still exact)."""
    rng = np.random.default_rng(24)
    a, b = qrand(rng, U8, (11, 29)), qrand(rng, I8, (29, 21))
    lib, kernels = build(isa, matmul_model(11, 21, 29, U8, I8, False), tmp_path)
    assert kernels and not any("_dot" in name for name in kernels)
    want = (a.astype(np.int64) @ b.astype(np.int64)).astype(I32)
    np.testing.assert_array_equal(run(lib, {"a": a, "b": b}), want)


@pytest.mark.parametrize("isa", ISAS)
def test_quantized_cnn_same_bits(isa, tmp_path):
    """A CNN quantized by onnxruntime (QDQ, uint8 activations, per-channel
    int8 weights, a Gemm at the end): every output identical to the
    pair kernels' on this CPU, which test_quant checks against the
    reference."""
    from test_quant import F32, _float_cnn, quantize_qdq

    qmodel = quantize_qdq(_float_cnn(np.random.default_rng(70)), tmp_path, per_channel=True)
    x = np.random.default_rng(71).normal(0, 1, (1, 3, 9, 11)).astype(F32)
    lib, kernels = build(isa, qmodel, tmp_path, "dot")
    assert kernels and all("_dot" in name for name in kernels), kernels
    with qc.load(lib) as m:
        got = m.run({"x": x})["y"]
    pairs = os.path.join(tmp_path, "pairs.so")
    qc.compile(qmodel, pairs)
    with qc.load(pairs) as m:
        np.testing.assert_array_equal(got, m.run({"x": x})["y"])
