"""Several Python threads, each with its own Model of the same library.

ctypes releases the GIL during qc_run, so four models (four contexts, four
arenas, one shared library) really run at once. Every result must be
bit-identical to a serial run of the same inputs: no context may see another
one's buffers or scratch memory.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest
from helpers import make_model
from onnx import helper

import qc

F32 = np.float32
THREADS = 4
RUNS = 100  # per thread; each run is a few hundred microseconds, so runs overlap many times
INPUT_SETS = 3  # per thread, used in turn: consecutive runs of one context differ too


def mlp_model():
    """softmax(relu(x @ w1 + b1) @ w2): two packed GEMMs (64x256x128: several
    column panels and k blocks) with intermediates in the scratch arena."""
    rng = np.random.default_rng(11)
    w1 = (rng.standard_normal((256, 128)) / 16).astype(F32)
    b1 = rng.standard_normal(128).astype(F32)
    w2 = (rng.standard_normal((128, 40)) / 11).astype(F32)
    nodes = [helper.make_node("MatMul", ["x", "w1"], ["h"]), helper.make_node("Add", ["h", "b1"], ["hb"]),
             helper.make_node("Relu", ["hb"], ["a"]), helper.make_node("MatMul", ["a", "w2"], ["z"]),
             helper.make_node("Softmax", ["z"], ["y"], axis=-1)]
    return make_model(nodes, {"x": (F32, (64, 256))}, {"y": (F32, (64, 40)), "h": (F32, (64, 128))},
                      {"w1": w1, "b1": b1, "w2": w2})


@pytest.fixture(scope="module")
def lib(tmp_path_factory) -> str:
    return qc.compile(mlp_model(), tmp_path_factory.mktemp("conc") / "mlp.so")


def inputs(thread: int) -> list[dict]:
    rng = np.random.default_rng(100 + thread)
    return [{"x": rng.standard_normal((64, 256)).astype(F32)} for _ in range(INPUT_SETS)]


@pytest.mark.parametrize("model_threads", [1, 2])  # 2: each context also runs its own thread pool
def test_four_threads_four_models_same_bits_as_serial(lib, model_threads):
    with qc.load(lib) as serial:
        want = [[serial.run(f) for f in inputs(t)] for t in range(THREADS)]
    start = threading.Barrier(THREADS)
    wrong: list[str] = []
    errors: list[BaseException] = []

    def worker(t: int) -> None:
        try:
            feeds = inputs(t)
            start.wait()  # load and run at the same moment
            with qc.load(lib, threads=model_threads) as m:
                for i in range(RUNS):
                    got = m.run(feeds[i % INPUT_SETS])
                    ref = want[t][i % INPUT_SETS]
                    for name in ref:
                        if not np.array_equal(got[name], ref[name]):
                            wrong.append(f"thread {t} run {i} output {name}")
        except BaseException as e:  # noqa: BLE001  re-raised in the main thread below
            errors.append(e)

    workers = [threading.Thread(target=worker, args=(t,)) for t in range(THREADS)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    if errors:
        raise errors[0]
    assert wrong == []
    # The inputs differ between threads, and so do the results: a context that
    # read another's input would be caught.
    assert not np.array_equal(want[0][0]["y"], want[1][0]["y"])
