"""User pipelines (`qc compile --pipeline my.py`, `qc.compile(..., pipeline=)`):
the example examples/pipelines/small_tiles.py compiles correct code with its
own GEMM kernels, --emit and --print-pipeline follow the file, and every
mistake in a pipeline file is one line naming the file."""

from __future__ import annotations

import os
import re
import runpy
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from helpers import check_against_ort, make_model, ort_run
from onnx import helper

import qc
from qc.errors import QcError
from qc.passes.lower_gemm import LowerGemm

ROOT = Path(__file__).resolve().parents[2]
SMALL = ROOT / "examples" / "pipelines" / "small_tiles.py"
QC = str(Path(sys.executable).parent / "qc")
F32 = np.float32
W = ((np.arange(37 * 21) % 11 - 5) / 7).astype(F32).reshape(37, 21)


def matmul_model():
    """c = a @ W: W is a constant, packed at compile time ('p' kernel);
    13 x 21 is 3 row tiles of 4 plus 1 and 2 column tiles of 8 plus 5, so the
    4x8 tile's tail kernels run in both dims. e = x @ y: both at run time,
    130 rows (>= 128) so B is packed at run time ('q' kernel); N = 9 is one
    tile plus one column."""
    nodes = [helper.make_node("MatMul", ["a", "w"], ["c"]), helper.make_node("MatMul", ["x", "y"], ["e"])]
    return make_model(nodes, {"a": (F32, (13, 37)), "x": (F32, (130, 20)), "y": (F32, (20, 9))},
                      {"c": (F32, (13, 21)), "e": (F32, (130, 9))}, {"w": W})


def feeds():
    rng = np.random.default_rng(3)
    return {"a": rng.standard_normal((13, 37)).astype(F32), "x": rng.standard_normal((130, 20)).astype(F32),
            "y": rng.standard_normal((20, 9)).astype(F32)}


@pytest.fixture(scope="module")
def model_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("up") / "mm.onnx"
    onnx.save(matmul_model(), path)
    return path


def run_qc(*args) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "QC_DEBUG"}
    return subprocess.run([QC, *map(str, args)], capture_output=True, text=True, env=env, timeout=300)


def error_line(res: subprocess.CompletedProcess) -> str:
    """The one 'qc: error:' line of a failed command (exit 1, no traceback)."""
    assert res.returncode == 1, (res.returncode, res.stderr)
    assert "Traceback" not in res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("qc: error: "), res.stderr
    return lines[0]


# --- the example pipeline -------------------------------------------------------------

def test_small_tiles_matches_onnxruntime(tmp_path):
    check_against_ort(matmul_model(), feeds(), tmp_path, rtol=1e-5, atol=1e-5, pipeline=str(SMALL))


@pytest.mark.parametrize("target,tile", [("x86-64-v3", "4x8"),  # AVX2: one ymm of 8 floats
                                         ("x86-64-v4", "4x16"),  # AVX-512: one zmm of 16
                                         ("aarch64", "4x4")])  # NEON: one q register of 4
def test_small_tiles_names_its_kernels(target, tile):
    ir = qc.compile(matmul_model(), emit="gemm", target=target, pipeline=SMALL)
    # (_rows: the threads split its row tiles; _e...: what the kernel folded
    # from the ops around it, here the zero fill)
    assert re.search(rf"func.func private @qc_sgemm_13x21x37_p{tile}(_rows)?(_e\w+)?\(", ir)
    assert re.search(rf"func.func private @qc_sgemm_130x9x20_[qs]{tile}(_rows)?(_e\w+)?\(", ir)
    default = qc.compile(matmul_model(), emit="gemm", target=target)
    assert not re.search(rf"_p{tile}(_rows)?(_e\w+)?\(", default)  # the default tile differs: the file changed something


def test_cli_compile_and_emit_with_pipeline(model_file, tmp_path):
    lib = tmp_path / "mm.so"
    res = run_qc("compile", model_file, "-o", lib, "--pipeline", SMALL, "-q")
    assert res.returncode == 0, res.stderr
    with qc.load(lib) as m:
        got = m.run(feeds())
    for name, want in ort_run(matmul_model(), feeds()).items():
        np.testing.assert_allclose(got[name], want, rtol=1e-5, atol=1e-5)
    res = run_qc("compile", model_file, "--pipeline", SMALL, "--emit", "gemm", "--target", "x86-64-v3")
    assert res.returncode == 0, res.stderr
    assert re.search(r"@qc_sgemm_13x21x37_p4x8(_rows)?(_e\w+)?\(", res.stdout) and "6x16" not in res.stdout


def test_cli_print_pipeline_shows_the_new_tile(model_file):
    res = run_qc("compile", model_file, "--pipeline", SMALL, "--print-pipeline", "--target", "x86-64-v3")
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert lines[0] == f"pipeline small-tiles (from {SMALL}):"
    assert "    qc-lower-gemm{mr=4 nr=8 kc=512}" in lines
    # Every other stage and pass of the default is still there, in order.
    default = run_qc("compile", model_file, "--print-pipeline", "--target", "x86-64-v3").stdout.splitlines()
    assert "    qc-lower-gemm{kc=512}" in default  # AVX2's deeper cache blocks (passes/pipelines.py)
    assert [line for line in lines[1:] if "lower-gemm" not in line] == \
           [line for line in default[1:] if "lower-gemm" not in line]


def test_pipeline_object(tmp_path):
    from qc.targets import resolve

    pipe = runpy.run_path(str(SMALL))["pipeline"](resolve("host"))
    check_against_ort(matmul_model(), feeds(), tmp_path, rtol=1e-5, atol=1e-5, pipeline=pipe)
    ir = qc.compile(matmul_model(), emit="gemm", pipeline=pipe)
    nr = next(p.nr for p in pipe.stages[2].passes if isinstance(p, LowerGemm))
    assert re.search(rf"_p4x{nr}(_rows)?(_e\w+)?\(", ir)


# --- a pipeline file's own stages ----------------------------------------------------------

TWO_STAGES = """
from qc.passes.base import Pipeline, Stage
from qc.passes.pipelines import default_pipeline

def pipeline(target):
    d = {s.name: s for s in default_pipeline(target).stages}
    # Everything up to the GEMM kernels as one stage, then the rest as another.
    first = Stage("kernels", d["linalg"].passes + d["bufferized"].passes + d["gemm"].passes)
    rest = Stage("lowered", d["affine"].passes + d["scf"].passes + d["llvm-dialect"].passes)
    return Pipeline("two-stages", (first, rest))
"""


def test_emit_follows_the_files_stage_names(tmp_path):
    path = tmp_path / "two.py"
    path.write_text(TWO_STAGES)
    assert "@qc_sgemm_13x21x37_p" in qc.compile(matmul_model(), emit="kernels", pipeline=path)
    assert "llvm.func @qc_model" in qc.compile(matmul_model(), emit="lowered", pipeline=path)
    with pytest.raises(qc.OptionError, match=r"unknown --emit stage 'gemm'; stages: input, kernels, lowered, "
                                             r"llvm-ir, asm, obj, so"):
        qc.compile(matmul_model(), emit="gemm", pipeline=path)
    check_against_ort(matmul_model(), feeds(), tmp_path, rtol=1e-5, atol=1e-5, pipeline=path)


# --- every mistake: one line naming the file ------------------------------------------------

HEAD = """from dataclasses import dataclass, replace
from qc.passes.base import Pass, Pipeline, Stage, Upstream
from qc.passes.lower_gemm import LowerGemm
from qc.passes.pipelines import default_pipeline
"""

# (file text, or None for no file; the message after "--pipeline PATH")
BAD_FILES = {
    "syntax": ("def pipeline(target):\n    return (\n", r":2: syntax error: '\(' was never closed$"),
    "import": ("import no_such_module_qc\n",
               r":1: ModuleNotFoundError: No module named 'no_such_module_qc' \(while importing it\)$"),
    "no-function": ("X = 1\n", r": defines neither a function pipeline\(target\) nor PIPELINE"),
    "not-callable": ("pipeline = 3\n", r": 'pipeline' is a int, expected a function pipeline\(target\)$"),
    "returns-list": ("def pipeline(target):\n    return ['linalg']\n",
                     r": pipeline\(target\) returned a list, expected a qc.passes.base.Pipeline"),
    "constant-str": ("PIPELINE = 'default'\n", r": PIPELINE is a str, expected a qc.passes.base.Pipeline"),
    "raises": ("def pipeline(target):\n    return 1 / 0\n",
               r":2: pipeline\(target\) raised ZeroDivisionError: division by zero$"),
    "no-target-arg": ("def pipeline():\n    return None\n",
                      r":1: pipeline\(target\) raised TypeError: pipeline\(\) takes 0 positional arguments"),
    "stage-not-stage": (HEAD + "PIPELINE = Pipeline('p', ('linalg',))\n",
                        r": stage 0 is a str, expected Stage\(name, passes\)$"),
    "no-stages": (HEAD + "PIPELINE = Pipeline('p', ())\n", r": the pipeline's stages must be a non-empty tuple"),
    "duplicate": (HEAD + "PIPELINE = Pipeline('p', (Stage('a', ()), Stage('a', ())))\n",
                  r": two stages are named 'a'; --emit needs each name once$"),
    "reserved": (HEAD + "PIPELINE = Pipeline('p', (Stage('so', ()),))\n",
                 r": stage name 'so' is taken by a step outside the pipeline"),
    "pass-class": (HEAD + "PIPELINE = Pipeline('p', (Stage('a', (LowerGemm,)),))\n",
                   r": stage 'a', pass 0 is the class LowerGemm \(not an instance\)"),
    "missing": (None, r": no such file$"),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_bad_pipeline_file(case, tmp_path):
    text, message = BAD_FILES[case]
    path = tmp_path / f"{case}.py"
    if text is not None:
        path.write_text(text)
    with pytest.raises(QcError) as e:
        qc.compile(matmul_model(), tmp_path / "m.so", pipeline=path)
    assert "\n" not in str(e.value)
    assert str(e.value).startswith(f"--pipeline {path}")
    assert e.match(message)


def test_directory_is_not_a_pipeline(tmp_path):
    with pytest.raises(qc.OptionError, match=r"--pipeline .*: is a directory, expected a Python file"):
        qc.compile(matmul_model(), tmp_path / "m.so", pipeline=tmp_path)


def test_pipeline_argument_of_another_type():
    with pytest.raises(qc.OptionError, match=r"pipeline: expected a qc Pipeline or the path of a Python file, "
                                             r"got int"):
        qc.compile(matmul_model(), emit="input", pipeline=42)


# Pipelines that load but fail while compiling: the stage, the pass, the file.
FAILING = {
    "own-pass": (HEAD + """
@dataclass(frozen=True)
class Boom(Pass):
    name = "my-boom"

    def apply(self, module):
        raise RuntimeError("no good")

def pipeline(target):
    return Pipeline("boom", (Stage("mine", (Boom(),)),) + default_pipeline(target).stages)
""", r":11: stage 'mine': pass 'my-boom' failed: RuntimeError: no good$"),
    "bad-tile": (HEAD + """
def pipeline(target):
    return Pipeline("bad", tuple(Stage(s.name, tuple(replace(p, mr=4, nr=12) if isinstance(p, LowerGemm) else p
                                                      for p in s.passes)) for s in default_pipeline(target).stages))
""", r": stage 'gemm': qc-lower-gemm: bad tile sizes mr=4 nr=12"),
    "upstream-typo": (HEAD + """
def pipeline(target):
    return Pipeline("typo", default_pipeline(target).stages[:1] + (Stage("x", (Upstream("no-such-pass"),)),))
""", r": stage 'x': no-such-pass: invalid pass pipeline 'no-such-pass'"),
    "no-llvm": (HEAD + """
def pipeline(target):
    return Pipeline("short", default_pipeline(target).stages[:-1])
""", r": after the last stage \('scf'\) the module still has memref\.\w+ ops; the backend needs the LLVM dialect"),
}


@pytest.mark.parametrize("case", sorted(FAILING))
def test_failing_pipeline(case, tmp_path):
    text, message = FAILING[case]
    path = tmp_path / f"{case}.py"
    path.write_text(text)
    with pytest.raises(QcError) as e:
        qc.compile(matmul_model(), tmp_path / "m.so", pipeline=path)
    assert "\n" not in str(e.value)
    assert str(e.value).startswith(f"--pipeline {path}")
    assert e.match(message)
    assert not (tmp_path / "m.so").exists()


def test_a_short_pipeline_still_emits_its_stages(tmp_path):
    # Ending before the LLVM dialect is fine when the compile stops there too.
    path = tmp_path / "short.py"
    path.write_text(FAILING["no-llvm"][0])
    assert "scf.for" in qc.compile(matmul_model(), emit="scf", pipeline=path)


@pytest.mark.parametrize("case,text,message", [
    ("missing", None, r"no such file$"),
    ("syntax", BAD_FILES["syntax"][0], r":2: syntax error: '\(' was never closed$"),
    ("returns-list", BAD_FILES["returns-list"][0], r"pipeline\(target\) returned a list"),
    ("own-pass", FAILING["own-pass"][0], r":11: stage 'mine': pass 'my-boom' failed: RuntimeError: no good$"),
])
def test_cli_errors_are_one_line(case, text, message, model_file, tmp_path):
    path = tmp_path / f"{case}.py"
    if text is not None:
        path.write_text(text)
    for extra in (["-o", tmp_path / "m.so", "-q"], ["--print-pipeline"]):
        if case == "own-pass" and extra == ["--print-pipeline"]:
            continue  # it loads fine: printing it runs no pass
        line = error_line(run_qc("compile", model_file, "--pipeline", path, *extra))
        assert line.startswith(f"qc: error: --pipeline {path}")
        assert re.search(message, line), line
