"""GEMMs with a compile-time B that L2 holds split their row tiles over the
threads (passes/lower_gemm.py, `row_split`), and the small elementwise ops
after them split the same rows (passes/parallel_loops.py, `local`).

Each case is a MatMul by a weight with a bias and an activation after it, as
in a transformer's feed-forward layer; the rows leave a partial last row
tile on both AVX2 (MR 6) and AVX-512 (MR 10), and N a partial last panel.
Results must match onnxruntime, and be the same bits on 1, 2 and 3 threads:
each row tile is computed exactly as on one thread.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
from helpers import host_tile, make_model, ort_run
from onnx import helper

import qc

F32 = np.float32

CASES = {
    # name: (M, K, N, row split): why
    "tokens": (64, 128, 512, True),  # a transformer encoder's 64 tokens, 128 -> 512
    "tails": (73, 100, 200, True),  # a partial row tile and panel
    "big_b": (73, 512, 512, False),  # 1 MiB of B: each thread would read all of it, so the panels split
    "few_rows": (7, 128, 512, False),  # one row tile: nothing to split by rows
}


def ffn(m: int, k: int, n: int, rng) -> "onnx.ModelProto":  # noqa: F821
    w = (rng.standard_normal((k, n)) / np.sqrt(k)).astype(F32)
    bias = rng.standard_normal(n).astype(F32)
    nodes = [helper.make_node("MatMul", ["x", "w"], ["h"]), helper.make_node("Add", ["h", "b"], ["hb"]),
             helper.make_node("Relu", ["hb"], ["r"]), helper.make_node("Mul", ["r", "r"], ["y"])]
    return make_model(nodes, {"x": (F32, [m, k])}, {"y": (F32, [m, n])}, {"w": w, "b": bias})


@pytest.mark.parametrize("name", sorted(CASES))
def test_row_split(name, tmp_path):
    m, k, n, split = CASES[name]
    rng = np.random.default_rng(sorted(CASES).index(name))
    model = ffn(m, k, n, rng)
    ir = qc.compile(model, emit="gemm")
    call = re.search(rf"call @(qc_sgemm_{m}x{n}x{k}_p\w+?)\(", ir)
    assert call, "not lowered to a kernel with B packed at compile time"
    assert ("_rows" in call.group(1)) == split, call.group(1)
    units = -(-m // host_tile().mr) if split else -(-n // host_tile().nr)
    listed = re.search(rf'name = "{call.group(1)}", operands = \d+ : i64, panels = (\d+) : i64(, rows)?', ir)
    assert listed and int(listed.group(1)) == units and bool(listed.group(2)) == split
    lib = str(tmp_path / "m.so")
    qc.compile(model, lib)
    feeds = {"x": rng.standard_normal((m, k)).astype(F32)}
    one = qc.load(lib).run(feeds)["y"]
    for threads in (2, 3):
        np.testing.assert_array_equal(qc.load(lib, threads=threads).run(feeds)["y"], one, err_msg=f"{threads} threads")
    np.testing.assert_allclose(one, ort_run(model, feeds)["y"], rtol=1e-4, atol=1e-4)


def test_small_op_after_a_row_split_is_split_too():
    """The Mul after the GEMM (its bias and Relu fold into the kernel) is
    40 x 64 floats: work below the serial threshold. It reads the rows each
    thread's row tiles wrote, so it splits the same rows; the same Mul on
    the model's input stays on one thread."""
    rng = np.random.default_rng(7)
    ir = qc.compile(ffn(40, 128, 64, rng), emit="gemm")
    assert re.search(r'name = "qc_sgemm_40x64x128_p\w*_rows\w*", operands = \d+ : i64, panels = \d+ : i64, rows', ir)
    parts = re.findall(r'name = "(qc_model_part\d+)", operands = \d+ : i64, panels = (\d+) : i64', ir)
    assert ("40",) == tuple(p for _, p in parts), parts
    alone = make_model([helper.make_node("Mul", ["x", "x"], ["y"])], {"x": (F32, [40, 64])}, {"y": (F32, [40, 64])})
    assert "qc_model_part" in qc.compile(alone, emit="gemm")
    assert "qc.parallel_kernels" not in qc.compile(alone, emit="gemm")
