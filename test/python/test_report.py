"""`qc compile --report`: per ONNX op type, the nodes, how many were folded at
compile time, what the rest were imported as and compiled as (qc.report).

One small model covers the cases the report distinguishes: a Conv whose
BatchNormalization folds into it and which becomes im2col + a GEMM kernel,
an Identity the graph clean-up removes, an Add that elementwise fusion merges
into the Relu after it, a Reshape that is a view, a MatMul on a constant B
(a GEMM kernel with B packed at compile time), and an unnamed Neg (located by
its op type). The target is fixed (x86-64-v3: the AVX2 6x16 GEMM tile).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from helpers import make_model
from onnx import helper

from qc.session import compile_model

F32 = np.float32
QC = str(Path(sys.executable).parent / "qc")


def _model() -> onnx.ModelProto:
    rng = np.random.default_rng(3)
    c = 4  # channels after the conv
    inits = {
        "w": rng.standard_normal((c, 3, 3, 3)).astype(F32),
        "scale": rng.uniform(0.5, 1.5, c).astype(F32), "bias": rng.standard_normal(c).astype(F32),
        "mean": rng.standard_normal(c).astype(F32), "var": rng.uniform(0.5, 1.5, c).astype(F32),
        "shift": rng.standard_normal((1, c, 1, 1)).astype(F32),
        "shape": np.array([1, c * 5 * 5], np.int64),
        "fc": rng.standard_normal((c * 5 * 5, 7)).astype(F32),
    }
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["conv"], name="conv1", pads=[1, 1, 1, 1]),
        helper.make_node("BatchNormalization", ["conv", "scale", "bias", "mean", "var"], ["bn"], name="bn1"),
        helper.make_node("Identity", ["bn"], ["same"], name="id1"),
        helper.make_node("Add", ["same", "shift"], ["added"], name="add1"),
        helper.make_node("Relu", ["added"], ["act"], name="relu1"),
        helper.make_node("Reshape", ["act", "shape"], ["flat"], name="flatten1"),
        helper.make_node("MatMul", ["flat", "fc"], ["logits"], name="fc1"),
        helper.make_node("Neg", ["logits"], ["y"]),  # unnamed
    ]
    return make_model(nodes, {"x": (F32, (1, 3, 5, 5))}, {"y": (F32, (1, 7))}, inits)


def _rows(table: str) -> dict[str, str]:
    """op type -> its whole row, from the report table."""
    return {line.split()[0]: line for line in table.splitlines()[1:-1]}


@pytest.fixture(scope="module")
def report():
    res = compile_model(_model(), emit="gemm", target="x86-64-v3", report=True)
    return res.op_report


def test_report_counts_nodes_imported_and_folded(report):
    assert dict(report.nodes) == {"Conv": 1, "BatchNormalization": 1, "Identity": 1, "Add": 1, "Relu": 1,
                                  "Reshape": 1, "MatMul": 1, "Neg": 1}
    # BatchNormalization folds into the Conv and the Identity goes: both before import.
    assert report.imported == {"Conv": 1, "Add": 1, "Relu": 1, "Reshape": 1, "MatMul": 1, "Neg": 1}
    rows = _rows(report.table())
    assert rows["BatchNormalization"].split() == ["BatchNormalization", "1", "1"]
    assert rows["Identity"].split() == ["Identity", "1", "1"]
    assert report.table().splitlines()[-1] == (
        "8 nodes, 2 folded at compile time (0 constant-folded, 1 BatchNormalization folded into Conv, "
        "1 identity or dead nodes removed)")


def test_report_says_what_each_op_became(report):
    table = report.table()
    rows = _rows(table)
    assert "compiled as (after 'gemm')" in table.splitlines()[0]
    conv_imported, conv_compiled = _cells(rows["Conv"])
    assert "1 linalg.conv_2d_nchw_fchw" in conv_imported
    # The GEMM gathers its panels from the padded image and starts from the
    # bias: no im2col copy, no bias loop; the padding is still its own loops.
    assert "qc GEMM kernel 6x16 (B gathered per panel from the image (implicit im2col))" in conv_compiled
    assert "linalg.generic" not in conv_compiled and "loop nest: linalg.copy" in conv_compiled
    assert "qc GEMM kernel 6x16 (B packed at compile time)" in rows["MatMul"]
    assert "linalg.matmul" in _cells(rows["MatMul"])[0]
    # Fusion puts the Add into the Relu's generic, which keeps the Relu's location.
    assert rows["Add"].endswith("no code of its own (fused or folded)")
    assert "1 loop nest: linalg.generic (parallel)" in rows["Relu"]
    assert "views/constants only" in rows["Reshape"]
    assert _cells(rows["Neg"]) == ("1 linalg.generic (parallel)", "1 loop nest: linalg.generic (parallel)")


def _cells(row: str) -> tuple[str, str]:
    """The 'imported as' and 'compiled as' cells of a row (two spaces apart)."""
    cells = [c.strip() for c in row.split("  ") if c.strip()]
    return cells[3], cells[4]


def test_report_stops_where_the_compile_stops():
    res = compile_model(_model(), emit="input", target="x86-64-v3", report=True)
    table = res.op_report.table()
    assert "compiled as (after 'input')" in table.splitlines()[0]
    assert [s for s, _ in res.op_report.stages] == ["input"]
    assert compile_model(_model(), emit="input").op_report is None  # only on request


def test_cli_report(tmp_path):
    path = tmp_path / "m.onnx"
    onnx.save(_model(), path)
    lib = tmp_path / "m.so"
    res = subprocess.run([QC, "compile", str(path), "-o", str(lib), "--target", "x86-64-v3", "--report"],
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert lib.exists() and f"qc: wrote {lib}" in res.stderr  # progress on stderr, the table on stdout
    lines = res.stdout.splitlines()
    assert lines[0].split()[:5] == ["op", "type", "nodes", "folded", "imported"]
    assert any(line.startswith("MatMul") and "qc GEMM kernel 6x16" in line for line in lines)
    # A textual emit keeps stdout for the IR: the report goes to stderr.
    res = subprocess.run([QC, "compile", str(path), "--emit", "linalg", "--report"],
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert res.stdout.lstrip().startswith(("#map", "module"))
    assert "compiled as (after 'linalg')" in res.stderr


def test_report_sees_the_gemm_kernel_of_a_batch():
    """A batched MatMul is one GEMM kernel call over the panels of all its batches."""
    model = make_model([helper.make_node("MatMul", ["a", "b"], ["c"], name="bmm")],
                       {"a": (F32, (3, 4, 5)), "b": (F32, (3, 5, 6))}, {"c": (F32, (3, 4, 6))})
    table = compile_model(model, emit="gemm", target="x86-64-v3", report=True).op_report.table()
    assert "qc GEMM kernel 6x16 (B read in place, 3 batches in one parallel loop)" in _rows(table)["MatMul"], table
