"""Multithreaded runs: a GEMM's column panels split over the context's
threads. Each panel is computed exactly as on one thread, so the results
must be bit-identical for every thread count."""

import subprocess
import sys

import numpy as np
import pytest
from helpers import make_model
from onnx import helper

import qc

SHAPES = [
    (64, 1100, 100),  # 7 panels: uneven split, the last one partial (7 M multiply-adds: worth threads)
    (7, 16, 7),  # one panel: nothing to split
    (200, 300, 270),  # run-time packed B, two k blocks
]


@pytest.mark.parametrize("m,k,n", SHAPES)
@pytest.mark.parametrize("threads", [2, 3])
def test_matmul_same_bits_on_more_threads(m, k, n, threads, tmp_path):
    rng = np.random.default_rng(m + n)
    model = make_model([helper.make_node("MatMul", ["a", "b"], ["c"])],
                       {"a": (np.float32, [m, k]), "b": (np.float32, [k, n])}, {"c": (np.float32, [m, n])})
    lib = str(tmp_path / "mm.so")
    qc.compile(model, lib)
    feeds = {"a": rng.standard_normal((m, k)).astype(np.float32),
             "b": rng.standard_normal((k, n)).astype(np.float32)}
    one = qc.load(lib).run(feeds)["c"]
    many = qc.load(lib, threads=threads).run(feeds)["c"]
    np.testing.assert_array_equal(many, one)
    np.testing.assert_allclose(one, feeds["a"] @ feeds["b"], rtol=1e-4, atol=1e-4)


def test_conv_same_bits_on_two_threads(tmp_path):
    rng = np.random.default_rng(5)
    # 48 x 289 x 288 multiply-adds per image: enough for the runtime to split.
    w = rng.standard_normal((48, 32, 3, 3)).astype(np.float32)
    model = make_model([helper.make_node("Conv", ["x", "w"], ["y"], pads=[1, 1, 1, 1])],
                       {"x": (np.float32, [2, 32, 17, 17])}, {"y": (np.float32, [2, 48, 17, 17])}, {"w": w})
    lib = str(tmp_path / "conv.so")
    qc.compile(model, lib)
    x = rng.standard_normal((2, 32, 17, 17)).astype(np.float32)
    m = qc.load(lib)
    one = m(x)["y"]
    m.threads = 2
    assert m.threads == 2
    np.testing.assert_array_equal(m(x)["y"], one)


@pytest.mark.parametrize("threads", [2, 3])
def test_batched_gemms_same_bits_on_more_threads(threads, tmp_path):
    """A batched GEMM splits the column panels of all its batches at once:
    the threads' ranges cut across batches (one panel of 16 tile columns in
    each of the 36 batches of a Winograd F(4x4, 3x3) convolution on a 13x13
    map; the MatMul's 5 batches of 49 columns, the last panel partial), and
    the results stay bit-identical."""
    rng = np.random.default_rng(9)
    # Weights scaled to outputs of about unit size, as the Winograd tests' are:
    # F(4x4, 3x3)'s error is about 1e-5 of the output's scale.
    w = (rng.standard_normal((64, 48, 3, 3)) / np.sqrt(9 * 48)).astype(np.float32)
    model = make_model([helper.make_node("Conv", ["x", "w"], ["y"], pads=[1, 1, 1, 1]),
                        helper.make_node("MatMul", ["a", "b"], ["c"])],
                       {"x": (np.float32, [1, 48, 13, 13]), "a": (np.float32, [5, 40, 30]),
                        "b": (np.float32, [5, 30, 49])},
                       {"y": (np.float32, [1, 64, 13, 13]), "c": (np.float32, [5, 40, 49])}, {"w": w})
    lib = str(tmp_path / "batched.so")
    qc.compile(model, lib)
    feeds = {"x": rng.standard_normal((1, 48, 13, 13)).astype(np.float32),
             "a": rng.standard_normal((5, 40, 30)).astype(np.float32),
             "b": rng.standard_normal((5, 30, 49)).astype(np.float32)}
    one = qc.load(lib).run(feeds)
    many = qc.load(lib, threads=threads).run(feeds)
    for name in ("y", "c"):
        np.testing.assert_array_equal(many[name], one[name])
    np.testing.assert_allclose(one["c"], feeds["a"] @ feeds["b"], rtol=1e-4, atol=1e-4)
    import onnxruntime as ort
    want = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(["y"], feeds)[0]
    np.testing.assert_allclose(one["y"], want, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("bad", [0, -1, 1025, 1.5, True])
def test_bad_thread_counts_are_rejected(bad, tmp_path):
    model = make_model([helper.make_node("Relu", ["x"], ["y"])], {"x": (np.float32, [4])}, {"y": (np.float32, [4])})
    lib = str(tmp_path / "r.so")
    qc.compile(model, lib)
    with pytest.raises(ValueError, match="threads must be an integer in 1..1024"):
        qc.load(lib, threads=bad)


def test_cli_threads(tmp_path):
    model = make_model([helper.make_node("MatMul", ["a", "b"], ["c"])],
                       {"a": (np.float32, [40, 50]), "b": (np.float32, [50, 60])}, {"c": (np.float32, [40, 60])})
    lib = str(tmp_path / "mm.so")
    qc.compile(model, lib)
    qc_cmd = [sys.executable, "-m", "qc"]
    out = subprocess.run([*qc_cmd, "bench", lib, "--runs", "3", "--threads", "2"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "2 threads" in out.stdout
    bad = subprocess.run([*qc_cmd, "run", lib, "--threads", "0"], capture_output=True, text=True)
    assert bad.returncode == 1 and "threads" in bad.stderr


def test_idle_workers_sleep(tmp_path):
    """Workers spin for a fraction of a millisecond after a parallel loop,
    then sleep: an idle model must not keep a core busy."""
    import time

    model = make_model([helper.make_node("MatMul", ["a", "b"], ["c"])],
                       {"a": (np.float32, [64, 512]), "b": (np.float32, [512, 256])}, {"c": (np.float32, [64, 256])})
    lib = str(tmp_path / "mm.so")
    qc.compile(model, lib)
    feeds = {"a": np.ones((64, 512), np.float32), "b": np.ones((512, 256), np.float32)}
    with qc.load(lib, threads=2) as m:
        for _ in range(20):
            m.run(feeds)  # 8M multiply-adds: split over both threads
        time.sleep(0.05)  # the spin lasts well under a millisecond
        cpu0, wall0 = time.process_time(), time.perf_counter()
        time.sleep(0.3)
        busy = time.process_time() - cpu0
        idle = time.perf_counter() - wall0
    assert busy < 0.1 * idle, f"{busy * 1e3:.1f} ms of CPU in {idle * 1e3:.0f} ms idle"
