"""benchmarks/models.py's command line: example names, and a one-line error
for a model that is not there (it used to end in a traceback)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _models(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "benchmarks" / "models.py"), *args], capture_output=True,
                          text=True, timeout=300)


def test_missing_model_is_one_line(tmp_path):
    res = _models("no_such_example")
    assert res.returncode != 0 and "Traceback" not in res.stderr
    assert res.stderr.strip() == (f"no such model: {ROOT / 'examples' / 'no_such_example.onnx'} "
                                  "(run python examples/make_models.py first?)")
    res = _models(str(tmp_path / "x.onnx"))
    assert res.returncode != 0 and res.stderr.strip() == f"no such model: {tmp_path / 'x.onnx'}"


def test_example_name_runs():
    res = _models("--runs", "1", "mlp")
    assert res.returncode == 0, res.stderr
    (row,) = [line for line in res.stdout.splitlines() if line.startswith("mlp ")]
    assert row.split()[-1].endswith("x")
