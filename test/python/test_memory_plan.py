"""The memory plan (qc-plan-memory): one arena per context, near the lower bound.

The figures come from the compiled module; the library's qc_arena_bytes must
agree with them, and the models must still compute what onnxruntime does
with their intermediates packed into shared bytes.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

import numpy as np
import onnx
import pytest
from helpers import example_module, make_model, ort_run, with_pass_options

import qc
from qc.session import compile_model

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")
EXAMPLES = ["mlp", "attention", "mobilenet_block", "resnet_block", "transformer_encoder"]


def _example(name: str) -> tuple[str, dict]:
    path = os.path.join(ROOT, "examples", f"{name}.onnx")
    if not os.path.exists(path):  # `make test` writes them first; a lone pytest run too
        subprocess.run([sys.executable, os.path.join(ROOT, "examples", "make_models.py")], check=True)
    return path, dict(np.load(os.path.join(ROOT, "examples", f"{name}.inputs.npz")))


@pytest.mark.parametrize("name", EXAMPLES)
def test_example_arena_is_near_the_lower_bound(name, tmp_path):
    path, feeds = _example(name)
    lib = str(tmp_path / f"{name}.so")
    res = compile_model(path, lib)
    arena = res.arena
    # The target: within 10% of the most bytes live at one op.
    assert arena["lower_bound"] <= arena["bytes"] <= 1.1 * arena["lower_bound"], arena
    assert arena["bytes"] <= arena["intermediates"] + 64 * arena["buffers"], arena
    with qc.load(lib) as m:
        assert m.arena_bytes == arena["bytes"]
        got = m.run(feeds)
    want = ort_run(onnx.load(path), feeds)
    for k, ref in want.items():
        scale = float(np.abs(ref).max()) or 1.0
        assert float(np.abs(got[k] - ref).max()) <= 1e-5 * scale, k


def test_buffers_share_bytes_in_a_chain(tmp_path):
    # Six same-shaped convolutions in a row, each with a Relu that keeps
    # the Conv output alive on its own: at most two activations are live at
    # once, so the arena holds far less than all of them. The weights differ
    # per layer so that nothing is merged.
    rng = np.random.default_rng(7)
    nodes, inits, prev = [], {}, "x"
    for i in range(6):
        inits[f"w{i}"] = (rng.standard_normal((8, 8, 3, 3)) * 0.2).astype(np.float32)
        nodes.append(onnx.helper.make_node("Conv", [prev, f"w{i}"], [f"c{i}"], pads=[1, 1, 1, 1]))
        nodes.append(onnx.helper.make_node("Relu", [f"c{i}"], [f"r{i}"]))
        prev = f"r{i}"
    nodes.append(onnx.helper.make_node("Identity", [prev], ["y"]))
    model = make_model(nodes, {"x": (np.float32, [1, 8, 12, 12])}, {"y": (np.float32, [1, 8, 12, 12])}, inits)
    lib = str(tmp_path / "chain.so")
    arena = compile_model(model, lib).arena
    # Five buffers: each Relu writes the next convolution's padded input in
    # place (qc-pad-into-producer), each padded input a buffer of its own.
    assert arena["buffers"] >= 5
    assert arena["bytes"] == arena["lower_bound"], arena  # as small as the most bytes live at one op
    assert arena["bytes"] <= 0.6 * arena["intermediates"], arena
    x = rng.standard_normal((1, 8, 12, 12)).astype(np.float32)
    with qc.load(lib) as m:
        got = m(x=x)["y"]
        again = m(x=x)["y"]  # the arena is reused: a second run sees the first's leftovers
    np.testing.assert_allclose(got, ort_run(model, {"x": x})["y"], rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(got, again)


def test_model_without_intermediates_has_no_arena(tmp_path):
    model = make_model([onnx.helper.make_node("Relu", ["x"], ["y"])], {"x": (np.float32, [4])},
                       {"y": (np.float32, [4])})
    lib = str(tmp_path / "relu.so")
    assert compile_model(model, lib).arena["bytes"] == 0
    with qc.load(lib) as m:
        assert m.arena_bytes == 0
        np.testing.assert_array_equal(m(x=np.array([-1, 2, -3, 4], np.float32))["y"], [0, 2, 0, 4])


def test_report_prints_the_plan(tmp_path):
    path, _ = _example("resnet_block")
    out = subprocess.run([sys.executable, "-m", "qc", "compile", path, "-q", "-o", str(tmp_path / "r.so"),
                          "--report"], capture_output=True, text=True, check=True).stdout
    lines = [ln for ln in out.splitlines() if ln.startswith("memory:")]
    assert "intermediate buffers" in lines[0] and "lower bound" in lines[0], out
    assert "arena / lower bound = 1.0" in lines[1], out
    assert "weights" in lines[2], out


def test_folded_depthwise_leaves_no_i32_buffer(tmp_path):
    # With AVX-512 VNNI + VBMI, qc-vector-qdepthwise requantizes inside the
    # depthwise kernel, so the int8 block's 24 x 19 x 19 i32 map is never
    # written: the plan holds only the three u8 activations (the quantized
    # input, the padded expand output, the depthwise output), all live at once.
    make, quant = example_module("make_models"), example_module("quantize_cnn")
    model, _ = make.mobilenet_block(np.random.default_rng(0), c=8, e=24, hw=19)
    onnx.save(model, tmp_path / "mb.onnx")
    pre = quant.quantize(str(tmp_path / "mb.onnx"), str(tmp_path / "pre.onnx"), preprocess=True)
    arena = compile_model(pre, str(tmp_path / "mb.so"),
                          target="x86_64-unknown-linux-gnu:x86-64-v4:+avx512vnni,+avx512vbmi").arena
    u8 = 8 * 19 * 19 + 24 * 21 * 21 + 24 * 19 * 19
    assert arena["buffers"] == 3 and arena["intermediates"] == u8, arena
    # Rounded up to 64-byte offsets; before, the unwritten map alone took 34,656 bytes.
    assert arena["lower_bound"] == u8 and u8 <= arena["bytes"] <= u8 + 3 * 64, arena


def test_loop_in_place_runs_as_vector_code(tmp_path):
    # scores = Q @ K / sqrt(d), then Softmax: the division's output takes
    # its input's bytes. Given two pointers to the same bytes, LLVM's
    # run-time overlap check would send every call to the scalar copy of the
    # loop (vdivss); the plan makes the loop read its output buffer instead,
    # so the function that divides has no scalar copy at all.
    model = make_model(
        [onnx.helper.make_node("MatMul", ["q", "k"], ["s"]),
         onnx.helper.make_node("Div", ["s", "c"], ["d"]),
         onnx.helper.make_node("Softmax", ["d"], ["y"], axis=-1)],
        {"q": (np.float32, [4, 64, 32]), "k": (np.float32, [4, 32, 64])}, {"y": (np.float32, [4, 64, 64])},
        {"c": np.float32(32 ** 0.5)})
    lib, dump = str(tmp_path / "sdpa.so"), tmp_path / "ir"
    # The divide kept (qc-divide-by-constant off), on one thread (a range
    # function's dynamic bounds would add a scalar remainder loop): a single
    # generic the plan can pair.
    from qc.passes.divide_by_constant import DivideByConstant
    from qc.passes.parallel_loops import SERIAL_WORK, ParallelLoops
    from qc.passes.pipelines import default_pipeline
    from qc.targets import resolve
    pipeline = with_pass_options(default_pipeline(resolve("x86-64-v3")), DivideByConstant, fma=False)
    pipeline = with_pass_options(pipeline, ParallelLoops, min_work=SERIAL_WORK, local_work=SERIAL_WORK)
    qc.compile(model, lib, target="x86-64-v3", dump_ir=str(dump), pipeline=pipeline)
    # The function that divides by the constant (Softmax divides by its sums).
    ir_funcs = re.split(r"^  func\.func ", (dump / "03-gemm.mlir").read_text(), flags=re.M)
    (name,) = [f.split("(")[0].split("@")[1] for f in ir_funcs if "arith.divf" in f and "5.65685" in f]
    asm = re.split(r"^(?=[A-Za-z_]\w*:$)", (dump / "09-model.s").read_text(), flags=re.M)
    (body,) = [b for b in asm if b.startswith(name + ":")]
    assert "vdivps" in body and "vdivss" not in body, name
    rng = np.random.default_rng(11)
    feeds = {"q": rng.standard_normal((4, 64, 32)).astype(np.float32),
             "k": rng.standard_normal((4, 32, 64)).astype(np.float32)}
    with qc.load(lib) as m:
        got = m.run(feeds)["y"]
    np.testing.assert_allclose(got, ort_run(model, feeds)["y"], rtol=1e-5, atol=1e-6)


def _overlaps(buffers) -> list:
    """Pairs of buffers live at one op whose bytes overlap, other than an
    in-place pair at the same offset."""
    from qc.passes.plan_memory import _meets

    bad = []
    for i, a in enumerate(buffers):
        for j, b in enumerate(buffers[:i]):
            if not _meets(a, b) or a.offset + a.size <= b.offset or b.offset + b.size <= a.offset:
                continue
            if not (j in a.partners and a.offset == b.offset):
                bad.append((j, i))
    return bad


def test_in_place_chains_never_overlap_a_buffer_partly():
    # Random straight-line programs of elementwise ops where outputs may
    # take their dying input's bytes, and a buffer can be both the output
    # of one such op and the input of the next: every placement order must
    # keep each pair live at one op apart, or exactly coinciding as an
    # in-place pair. (A buffer that could not take its partner's offset
    # once went into a gap chosen as if the partner were not there: part
    # over it, which broke an attention model's scores.)
    from qc.passes.plan_memory import _assign_offsets, _Buffer

    rng = np.random.default_rng(3)
    for trial in range(2000):
        buffers, n_ops = [], int(rng.integers(3, 12))
        for _ in range(int(rng.integers(3, 14))):
            start = int(rng.integers(0, n_ops))
            end = min(n_ops - 1, start + int(rng.integers(0, 4)))
            size = 64 * int(rng.integers(1, 7))
            buffers.append(_Buffer(None, size, size, start, end))
        for i, a in enumerate(buffers):  # in-place pairs: a dies where b is born, same size
            for j, b in enumerate(buffers):
                if i != j and a.end == b.start and a.size == b.size and rng.random() < 0.7:
                    a.partners.add(j)
                    b.partners.add(i)
        _assign_offsets(buffers, 64)
        assert not _overlaps(buffers), (trial, [(b.start, b.end, b.size, b.offset, b.partners) for b in buffers])
