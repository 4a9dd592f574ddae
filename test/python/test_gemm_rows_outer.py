"""Shallow GEMMs with a large C run each row tile across all their panels
(passes/lower_gemm.py, `rows_outer`), against onnxruntime.

Each 1x1 convolution has K <= 64 (<= 128 with a residual) and a C of 512
KiB or more, so its kernel loops over row tiles outside the panels. Up to
K = 64 (`IN_PLACE_MAX_DEPTH`) it reads B in place and prefetches the next
panel's rows (mode r); deeper, it packs B whole (mode q, even below 128
rows). The shapes leave a partial last row tile and panel, and fold a bias,
a residual and a Relu into the kernel.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
from helpers import check_against_ort, host_tile
from test_gemm_blocks_outside import conv

import qc

F32 = np.float32

CASES = {
    # name: (C, F, HxW, residual, kernel mode): why
    "residual": (64, 256, 56, True, "r"),  # ResNet-50's 64 -> 256 expansion with its residual
    "tails": (72, 133, 37, True, "q"),  # K 72, rows outside for its residual; a partial row tile and panel
    "tails_in_place": (40, 133, 37, True, "r"),  # the same tails with B read in place
    "deep_residual": (128, 512, 28, True, "q"),  # ResNet-50's 128 -> 512 expansion: B packed whole
    "few_rows": (16, 64, 55, False, "r"),  # SqueezeNet's expand, 64 rows
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_rows_outside_panels(name, tmp_path):
    c, f, hw, residual, mode = CASES[name]
    rng = np.random.default_rng(sorted(CASES).index(name))
    model = conv(c, f, hw, 1, residual, rng)
    ir = qc.compile(model, emit="gemm")
    m = re.search(rf"call @(qc_sgemm_{f}x{hw * hw}x{c}_{mode}\w+?)\(", ir)
    assert m, f"not lowered to a mode-{mode} kernel"
    body = ir[ir.index(f"func.func @{m.group(1)}_range("):]
    body = body[:body.index("\n  }\n")]
    # The row-tile loop steps by MR from 0 over the full tiles, and holds the panel loop.
    mr = host_tile().mr
    rows = re.search(rf"scf\.for %(\w+) = %c0 to %c{f - f % mr} step %c{mr} ", body)
    assert rows, "no loop over the row tiles outside"
    assert body.index(rows.group(0)) < body.index(f"step %c{host_tile().nr} ")
    feeds = {"x": rng.standard_normal((1, c, hw, hw)).astype(F32)}
    if residual:
        feeds["z"] = rng.standard_normal((1, f, hw, hw)).astype(F32)
    check_against_ort(model, feeds, tmp_path, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("channels", [72, 40])
def test_rows_outside_same_bits_on_two_threads(channels, tmp_path):
    """The threads split the panels; each runs the row tiles over its own
    (B packed whole at 72 channels, read in place at 40)."""
    rng = np.random.default_rng(5)
    model = conv(channels, 133, 37, 1, True, rng)
    lib = str(tmp_path / "m.so")
    qc.compile(model, lib)
    x = rng.standard_normal((1, channels, 37, 37)).astype(F32)
    z = rng.standard_normal((1, 133, 37, 37)).astype(F32)
    with qc.load(lib) as one, qc.load(lib, threads=2) as two:
        np.testing.assert_array_equal(one(x=x, z=z)["y"], two(x=x, z=z)["y"])
