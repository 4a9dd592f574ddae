"""benchmarks/target_machine.py: libraries built here for other x86 CPUs are
checked and timed where they run; those the CPU cannot run are skipped by
name, and a wrong library fails the run."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
from helpers import cpu_flags
from onnx import numpy_helper

import qc

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "target_machine.py"


def _run(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *map(str, args)], capture_output=True, text=True,
                          timeout=600)


def test_build_check_and_time(tmp_path):
    d = tmp_path / "libs"
    res = _run("build", d, "--targets", "x86-64-v3,x86-64-v4-vnni", "--models", "mlp,mobilenet_block")
    assert res.returncode == 0, res.stderr
    entries = json.loads((d / "manifest.json").read_text())
    # fp32 models for the target without VNNI, int8 forms for both
    assert {(e["model"], e["target"]) for e in entries} == {
        ("mlp", "x86-64-v3"), ("mobilenet_block", "x86-64-v3"),
        *((f"mobilenet_block.{f}", t) for f in ("qdq", "qdq-u8", "qop-u8", "qdq-pre")
          for t in ("x86-64-v3", "x86-64-v4-vnni"))}
    needs = {e["target"]: e["needs"] for e in entries}
    assert needs == {"x86-64-v3": ["avx2", "fma"],
                     "x86-64-v4-vnni": ["avx2", "avx512_vnni", "avx512bw", "avx512dq", "avx512f", "avx512vl", "fma"]}

    res = _run("run", d, "--runs", "1")
    assert res.returncode == 0, res.stdout + res.stderr
    out = res.stdout
    if "avx512_vnni" not in cpu_flags():
        assert "skipped x86-64-v4-vnni: this CPU lacks" in out
    for model in ("mlp", "mobilenet_block", "mobilenet_block.qdq", "mobilenet_block.qop-u8"):
        block = out.split(f"\n{model}:\n")[1]
        assert block.lstrip().startswith("x86-64-v3       ok:"), block[:200]
    assert "x qc fp32 (x86-64-v3)" in out and "x onnxruntime" in out
    assert out.rstrip().endswith("all results match the reference")

    # A library whose weights are 1% off is reported, and fails the run.
    m = onnx.load(d / "mlp.onnx")
    init = m.graph.initializer[0]
    init.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(init) * np.float32(1.01), init.name))
    qc.compile(m, str(d / "mlp.x86-64-v3.so"))
    res = _run("run", d, "--runs", "1")
    assert res.returncode == 1
    assert "\nmlp:\n  x86-64-v3       WRONG: max error" in res.stdout
    assert res.stdout.rstrip().endswith("1 wrong result(s)")


def test_cpu_name_targets_need_their_flags():
    """A TRIPLE:CPU target runs where /proc/cpuinfo has what the name implies."""
    spec = importlib.util.spec_from_file_location("target_machine", SCRIPT)
    tm = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tm)
    from qc.targets import resolve

    assert tm.needs(resolve("x86_64-unknown-linux-gnu:icelake-server")) == [
        "avx2", "avx512_vnni", "avx512bw", "avx512dq", "avx512f", "avx512vbmi", "avx512vl", "fma"]
    assert tm.needs(resolve("x86_64-unknown-linux-gnu:alderlake")) == ["avx2", "avx_vnni", "fma"]
    assert tm._file_name("x86_64-unknown-linux-gnu:sapphirerapids") == "sapphirerapids"


def test_unknown_target_and_missing_manifest(tmp_path):
    res = _run("build", tmp_path, "--targets", "x86-64-v5")
    assert res.returncode != 0 and "unknown target 'x86-64-v5'" in res.stderr
    res = _run("build", tmp_path, "--targets", "aarch64")
    assert res.returncode != 0 and "target aarch64: not x86-64" in res.stderr
    res = _run("run", tmp_path)
    assert res.returncode != 0 and "no manifest.json; make it with `build` first" in res.stderr
