"""The benchmark scripts' command lines: models.py takes example names and
says in one line which model is missing (it used to end in a traceback);
overhead.py prints a row per engine."""

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


def test_overhead_prints_each_engine():
    """benchmarks/overhead.py checks each engine's result, then prints one
    row per engine: microseconds per call and the speed against onnxruntime's."""
    res = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "overhead.py"), "--runs", "1", "--calls", "20"],
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    rows = {line[:14].strip(): line[14:].split() for line in res.stdout.splitlines()[1:]}
    assert list(rows) == ["qc run()", "qc call", "qc_run alone", "onnxruntime"]
    for us, ratio, *_ in rows.values():
        assert float(us) > 0 and ratio.endswith("x")
    assert rows["onnxruntime"][1] == "1.00x"


def test_inverted_residual_forms_match_onnxruntime(tmp_path):
    """benchmarks/conv_forms.py's MobileNet v2 blocks compute what
    onnxruntime does (the form benchmark times, it does not check)."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import conv_forms
    finally:
        sys.path.pop(0)
    from helpers import check_against_ort

    forms = {k: v for k, v in conv_forms.forms().items() if k.startswith("invres_")}
    assert len(forms) == 4
    for name, (model, feeds) in forms.items():
        (tmp_path / name).mkdir()
        check_against_ort(model, feeds, tmp_path / name, rtol=1e-4, atol=1e-4)
