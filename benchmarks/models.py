"""Whole-model latency: qc vs onnxruntime, same process, same inputs.

    python benchmarks/models.py [--runs N] [--threads 1,2] [--light] [MODEL.onnx | NAME ...]
        (a NAME is an example's, e.g. resnet_block)

Default models: the examples (run examples/make_models.py first), plus a
compile-time probe: an MLP with 32 MB of weights, to show that compile time
does not grow with the size of the weights. --light adds ResNet-50,
SqueezeNet and ShuffleNet from the onnx wheel (their weights are constant
fills: the same work for both engines). Prints the median of N runs for each
engine, measured alternately run by run, and qc's speed as a ratio (> 1: qc
is faster), for each thread count (both engines get the same count).
"""

from __future__ import annotations

import os

# numpy's OpenBLAS threads would spin beside the engines being timed (they
# took 15% of a ShuffleNet profile): one thread, before numpy loads it.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def big_mlp(path: str) -> None:
    """1 x 2048 → 2048 → 2048 (ReLU): 2 x 16 MiB of float32 weights."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(7)
    ws = {f"w{i}": (rng.standard_normal((2048, 2048)) * 0.02).astype(np.float32) for i in range(2)}
    nodes = [helper.make_node("MatMul", ["x", "w0"], ["h"]), helper.make_node("Relu", ["h"], ["a"]),
             helper.make_node("MatMul", ["a", "w1"], ["y"])]
    g = helper.make_graph(nodes, "big_mlp", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2048])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2048])],
                          [numpy_helper.from_array(v, k) for k, v in ws.items()])
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), path)


def bench_pair(fns: dict, runs: int, warm_s: float = 0.0, calls: int = 3) -> dict:
    """Median seconds per call; the engines take turns so that machine noise
    hits both alike. With several threads both keep their workers spinning
    after a run (qc for a fraction of a millisecond, onnxruntime, by default,
    for tens of milliseconds), which must not land on the other's turn: each
    turn then first runs its engine, untimed, for `warm_s` seconds, while the
    other's workers go quiet (a pause instead would let the cores idle, and
    waking them again is slow and erratic on a VM)."""
    for fn in fns.values():
        for _ in range(3):
            fn()
    times = {k: [] for k in fns}
    for _ in range(runs):
        for k, fn in fns.items():
            end = time.perf_counter() + warm_s
            while time.perf_counter() < end:
                fn()
            t0 = time.perf_counter()
            for _ in range(calls):
                fn()
            times[k].append((time.perf_counter() - t0) / calls)
    return {k: statistics.median(v) for k, v in times.items()}


def main() -> None:
    import onnxruntime as ort

    import qc
    from qc.cli import random_inputs
    from qc.session import compile_model

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("models", nargs="*", help="ONNX files or example names (default: the examples)")
    ap.add_argument("--runs", type=int, default=50)
    ap.add_argument("--threads", default="1", help="comma-separated thread counts, e.g. 1,2")
    ap.add_argument("--light", action="store_true", help="add ResNet-50, SqueezeNet, ShuffleNet")
    args = ap.parse_args()
    threads = [int(t) for t in args.threads.split(",")]
    work = tempfile.mkdtemp(prefix="qc-bench-")
    models = [m if m.endswith(".onnx") else os.path.join(ROOT, "examples", f"{m}.onnx") for m in args.models]
    missing = [m for m in models if not os.path.isfile(m)]
    if missing:
        hint = "" if all(m.endswith(".onnx") for m in args.models) else " (run python examples/make_models.py first?)"
        raise SystemExit(f"no such model: {', '.join(missing)}{hint}")
    if not models:
        models = [os.path.join(ROOT, "examples", f"{n}.onnx")
                  for n in ("mlp", "attention", "mobilenet_block", "resnet_block", "transformer_encoder")]
        big = os.path.join(work, "big_mlp.onnx")
        big_mlp(big)
        models.append(big)
    if args.light:
        light = os.path.join(os.path.dirname(__import__("onnx").__file__), "backend", "test", "data", "light")
        models += [os.path.join(light, f"light_{n}.onnx") for n in ("resnet50", "squeezenet", "shufflenet")]

    print(f"{'model':20s} {'weights':>9s} {'compile':>8s} {'threads':>7s} {'qc ms':>10s} {'ort ms':>10s} "
          f"{'qc/ort speed':>12s}")
    for path in models:
        name = os.path.splitext(os.path.basename(path))[0]
        lib = os.path.join(work, name + ".so")
        t0 = time.perf_counter()
        res = compile_model(path, lib)
        compile_s = time.perf_counter() - t0
        for n in threads:
            model = qc.load(lib, threads=n)
            feeds = random_inputs(model)
            so = ort.SessionOptions()
            so.intra_op_num_threads = n
            so.inter_op_num_threads = 1  # its default settings otherwise (its workers spin, as qc's do)
            sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
            t = bench_pair({"qc": lambda: model.run(feeds), "ort": lambda: sess.run(None, feeds)}, args.runs,
                           warm_s=0.06 if n > 1 else 0.0)
            print(f"{name:20s} {res.weights_bytes / 2**20:7.1f}MB {compile_s:7.2f}s {n:7d} {t['qc'] * 1e3:10.4f} "
                  f"{t['ort'] * 1e3:10.4f} {t['ort'] / t['qc']:11.2f}x")
            sys.stdout.flush()


if __name__ == "__main__":
    main()
