"""Streaming GEMM kernels whose A does not fit in L2 run their cache blocks
outside their panels (passes/lower_gemm.py, `blocks_outside`), against
onnxruntime.

Each shape has more than 512 KiB of weights and K over several cache
blocks, and picks a path through the reordered loops: the image gathered or
read in place (mode i), B copied per panel (mode s, a 1x1 convolution), the
bias in the first block and the chain (Relu, a residual) in the peeled last
one, a partial last panel and row tile, C stored into the padded input of
the next convolution, two threads splitting the panels.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
from helpers import check_against_ort, direct_convs, host_tile, make_model
from onnx import helper

import qc

F32 = np.float32


def conv(c, f, hw, k, residual, rng, then_3x3=False):
    """Conv(+bias) -> [Add x, or a second input z where C != F] -> Relu [-> a
    3x3 Conv that pads its input]."""
    inits = {"w": (rng.standard_normal((f, c, k, k)) * 0.05).astype(F32), "b": rng.standard_normal(f).astype(F32)}
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[k // 2] * 4)]
    inputs = {"x": (F32, [1, c, hw, hw])}
    last = "c"
    if residual:
        res = "x" if c == f else "z"
        inputs[res] = (F32, [1, f, hw, hw])
        nodes.append(helper.make_node("Add", ["c", res], ["s"]))
        last = "s"
    nodes.append(helper.make_node("Relu", [last], ["r" if then_3x3 else "y"]))
    out = f
    if then_3x3:
        out = 8
        inits["w2"] = (rng.standard_normal((out, f, 3, 3)) * 0.05).astype(F32)
        nodes.append(helper.make_node("Conv", ["r", "w2"], ["y"], pads=[1, 1, 1, 1]))
    return make_model(nodes, inputs, {"y": (F32, [1, out, hw, hw])}, inits)


CASES = {
    # name: (C, F, HxW, kernel, residual, then a 3x3 conv, kernel mode): why
    "3x3_gathered": (160, 96, 14, 3, False, False, "i"),  # K 1440; rows of 14: every panel gathered
    "3x3_in_place_residual": (128, 128, 20, 3, True, False, "i"),  # K 1152; panels inside a row read in place
    "1x1_residual": (1100, 500, 14, 1, True, False, "s"),  # K 1100: three blocks (two on AVX-512)
    "1x1_into_padded": (600, 256, 8, 1, False, True, "s"),  # stored into the next conv's padded image
}


def _panel_loops(ir: str, kernel: str) -> int:
    """How many loops over the range's panels (from %lo * NR to %hi * NR,
    step NR) a kernel's range function has: one with the panels outside,
    one per block it peels or loops over with the blocks outside."""
    body = ir[ir.index(f"func.func @{kernel}_range("):]
    body = body[:body.index("\n  }\n")]
    return len(re.findall(rf"scf\.for %\w+ = %\d+ to %\d+ step %c{host_tile().nr} ", body))


@pytest.mark.parametrize("name", sorted(CASES))
def test_blocks_outside_panels(name, tmp_path):
    c, f, hw, k, residual, then_3x3, mode = CASES[name]
    rng = np.random.default_rng(sorted(CASES).index(name))
    model = conv(c, f, hw, k, residual, rng, then_3x3)
    ir = qc.compile(model, emit="gemm", pipeline=direct_convs())
    m = re.search(rf"call @(qc_sgemm_{f}x{hw * hw}x{c * k * k}_{mode}\w+?)\(", ir)
    assert m, f"not lowered to a mode-{mode} kernel"
    # The first block (the bias), the blocks between and the last (the chain)
    # each walk the panels; with the panels outside, one loop walks them
    # (AVX-512's blocks are 1024 deep: there the 1x1 of depth 600 is one).
    blocks = -(-c * k * k // host_tile().kc)
    assert _panel_loops(ir, m.group(1)) == min(3, blocks)
    feeds = {"x": rng.standard_normal((1, c, hw, hw)).astype(F32)}
    if residual and c != f:
        feeds["z"] = rng.standard_normal((1, f, hw, hw)).astype(F32)
    check_against_ort(model, feeds, tmp_path, rtol=1e-4, atol=1e-4, pipeline=direct_convs())


def test_blocks_outside_same_bits_on_two_threads(tmp_path):
    """Threads split the panels inside each block: each thread's part of C
    sums the same blocks in the same order as one thread does."""
    rng = np.random.default_rng(9)
    model = conv(128, 128, 20, 3, True, rng)
    lib = str(tmp_path / "m.so")
    qc.compile(model, lib, pipeline=direct_convs())
    x = rng.standard_normal((1, 128, 20, 20)).astype(F32)
    with qc.load(lib) as one, qc.load(lib, threads=2) as two:
        np.testing.assert_array_equal(one(x=x)["y"], two(x=x)["y"])
