"""The partial last row tile of a GEMM with B packed at compile time runs on
each panel right after the full row tiles (passes/lower_gemm.py,
`fused_tail`), and a run-time B larger than L2, packed panel by panel, is
prefetched a panel ahead (`stream_prefetch`). Both change only the order of
the loops and what the caches hold: results must match numpy (float64) to
1e-4 and be the same bits on 1 and 2 threads.

The shapes leave a partial row tile on both AVX2 (MR 6) and AVX-512 (MR 10),
several cache blocks of K (the tail row tile loads and stores C in each) and a
partial last panel; 257 rows are several cache blocks of rows, where only the
last one runs the tail. The lit test test/passes/lower_gemm.mlir shows where
the tail and the prefetches go.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
from helpers import make_model
from onnx import helper

import qc

F32 = np.float32

CONSTANT_B = {
    # name: (M, K, N)
    "resnet_7x7": (49, 600, 300),  # ResNet-50's last stage computed transposed: 49 pixels as rows
    "row_blocks": (257, 600, 300),  # three blocks of rows; the tail in the last
    "few_rows": (13, 300, 100),
}


def _check(model, feeds, ref, tmp_path):
    lib = str(tmp_path / "m.so")
    qc.compile(model, lib)
    one = qc.load(lib).run(feeds)["y"]
    np.testing.assert_array_equal(qc.load(lib, threads=2).run(feeds)["y"], one, err_msg="2 threads")
    np.testing.assert_allclose(one, ref, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("name", sorted(CONSTANT_B))
def test_row_tail_with_constant_b(name, tmp_path):
    m, k, n = CONSTANT_B[name]
    rng = np.random.default_rng(sorted(CONSTANT_B).index(name))
    w = (rng.standard_normal((k, n)) / np.sqrt(k)).astype(F32)
    bias = rng.standard_normal(n).astype(F32)
    nodes = [helper.make_node("MatMul", ["x", "w"], ["h"]), helper.make_node("Add", ["h", "b"], ["hb"]),
             helper.make_node("Relu", ["hb"], ["y"])]
    model = make_model(nodes, {"x": (F32, [m, k])}, {"y": (F32, [m, n])}, {"w": w, "b": bias})
    ir = qc.compile(model, emit="gemm")
    assert re.search(rf"call @qc_sgemm_{m}x{n}x{k}_p\d+x\d+_(?!rows)", ir), "not a panel-split kernel with B packed"
    x = rng.standard_normal((m, k)).astype(F32)
    ref = np.maximum(x.astype(np.float64) @ w + bias, 0)
    _check(model, {"x": x}, ref, tmp_path)


def test_large_runtime_b_packed_per_panel(tmp_path):
    """A 1x1 convolution's shape, 256 -> 64 channels on 3100 pixels: B (3.2 MB)
    is an input, packed panel by panel (mode s), the last panel partial; the
    prefetches of the panel after the last one fall past B's rows and must
    change nothing."""
    m, k, n = 64, 256, 3100
    rng = np.random.default_rng(11)
    model = make_model([helper.make_node("MatMul", ["a", "x"], ["y"])], {"a": (F32, [m, k]), "x": (F32, [k, n])},
                       {"y": (F32, [m, n])})
    ir = qc.compile(model, emit="gemm")
    kernel = re.search(rf"func.func @(qc_sgemm_{m}x{n}x{k}_s\w+)_range\(", ir)
    assert kernel, "not lowered to a kernel packing B per panel"
    body = ir[kernel.end():ir.index("return", kernel.end())]
    assert "memref.prefetch %arg1" in body, "B is not prefetched"
    a = rng.standard_normal((m, k)).astype(F32)
    x = rng.standard_normal((k, n)).astype(F32)
    _check(model, {"a": a, "x": x}, a.astype(np.float64) @ x, tmp_path)
