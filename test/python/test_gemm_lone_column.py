"""A last column alone past whole vectors (passes/lower_gemm.py,
`LONE_COLUMNS`), computed across the rows of the packed weights, against
onnxruntime.

Each convolution's output has N = H * W pixels with N % VL == 1 (7 x 7 is
3 x 16 + 1 on AVX-512, 6 x 8 + 1 on AVX2), so the last panel's last column
is one lane past its vectors: its kernel keeps it in a vector over the
tile's rows (a masked load of A's MR values per k step), stored one row at
a time. The cases cover each way B reaches the kernel (in place, packed per
panel, packed whole, gathered from the image), a bias, a Relu, a residual,
a partial row tile, and K over several cache blocks (the column's partial
sums stored and loaded back between them), on AVX-512 and AVX2.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
from helpers import check_against_ort, cpu_flags
from test_gemm_blocks_outside import conv

import qc

F32 = np.float32

CASES = {
    # name: (C, F, HxW, kernel, residual, kernel mode): why
    "in_place": (40, 23, 7, 1, True, "r"),  # few rows and K: B read in place; 23 = 2 x 10 + 3 rows
    "per_panel": (200, 130, 9, 1, False, "s"),  # 81 pixels; B packed panel by panel
    "blocks": (1100, 24, 9, 1, True, "s"),  # K 1100: several cache blocks
    "packed_whole": (200, 600, 7, 1, True, "q"),  # over 512 rows: B packed whole
    "gathered": (48, 36, 9, 3, False, "i"),  # 3x3 on rows of 9: panels gathered from the image
}
TARGETS = {"avx512": ("x86-64-v4", 16), "avx2": ("x86-64-v3", 8)}


@pytest.mark.parametrize("target", sorted(TARGETS))
@pytest.mark.parametrize("name", sorted(CASES))
def test_lone_last_column(name, target, tmp_path):
    c, f, hw, k, residual, mode = CASES[name]
    arch, vl = TARGETS[target]
    if target == "avx512":
        assert {"avx512f"} <= cpu_flags(), "this test runs AVX-512 code: the machine must have it"
    assert hw * hw % vl == 1
    rng = np.random.default_rng(sorted(CASES).index(name))
    model = conv(c, f, hw, k, residual, rng)
    ir = qc.compile(model, emit="gemm", target=arch)
    m = re.search(rf"call @(qc_sgemm_{f}x{hw * hw}x{c * k * k}_{mode}\w+?)\(", ir)
    assert m, f"not lowered to a mode-{mode} kernel"
    body = ir[ir.index(f"func.func @{m.group(1)}_range("):]
    body = body[:body.index("\n  }\n")]
    # The column's accumulator: A's values of a row tile, times a broadcast B value ...
    assert re.search(rf"vector\.maskedload %arg0\[%\w+, %\w+, %c0\], %\w+, %\w+ : memref<\d+x{c * k * k}x\d+xf32",
                     body), "no vector of the packed A's rows"
    # ... stored row by row into the last column.
    last = hw * hw - 1
    stored = rf"vector\.extract %\S+\[0\] : f32 from vector<{vl}xf32>\n\s+memref\.store %\S+, %\w+\[%\w+, %c{last}\]"
    assert re.search(stored, body), "the last column is not stored row by row"
    feeds = {"x": rng.standard_normal((1, c, hw, hw)).astype(F32)}
    if residual:
        feeds["z"] = rng.standard_normal((1, f, hw, hw)).astype(F32)
    check_against_ort(model, feeds, tmp_path, rtol=1e-4, atol=1e-4, target=arch)
