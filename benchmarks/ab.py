"""Two or more builds of one model, and onnxruntime, timed side by side.

    python benchmarks/ab.py MODEL.onnx OLD.so NEW.so [...] [--turns 30] [--cold | --threads N]

On a shared machine a library's time moves by tens of percent from minute to
minute; only builds timed in the same turns can be compared. Each turn runs
every engine for about 20 ms of calls, in an order drawn afresh each turn
(seeded): an engine that always ran right after onnxruntime was measured
1-2% slower than a byte-identical copy of itself that ran after another
build (ResNet-50, SqueezeNet), so a fixed order favours some builds. The
figure for a build is the median over turns of onnxruntime's time in that
turn over the build's (> 1: the build is faster than onnxruntime), and its
speed-up over the first build, the same way.

--cold writes 64 MiB before each single call that is timed, as happens to a
layer inside a large model: what it reads and writes is no longer in the
caches. One thread unless --threads N: then both engines run on N threads
and each engine's turn starts with 60 ms of untimed calls, so the workers
of the engine before it (both engines' workers spin after a run) are quiet.
"""

from __future__ import annotations

import os

# numpy's OpenBLAS threads would spin beside the engines being timed.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402


def main() -> None:
    import onnxruntime as ort

    import qc

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", help="the ONNX model the libraries were compiled from")
    ap.add_argument("libs", nargs="+", help="compiled libraries (qc compile MODEL -o LIB.so)")
    ap.add_argument("--turns", type=int, default=30)
    ap.add_argument("--cold", action="store_true", help="flush the caches before each timed call")
    ap.add_argument("--threads", type=int, default=1, help="threads per engine (default 1)")
    args = ap.parse_args()
    if args.threads < 1:
        ap.error("--threads must be at least 1")
    if args.cold and args.threads > 1:
        ap.error("--cold times single calls on one thread")

    models = [qc.load(lib, threads=args.threads) for lib in args.libs]
    rng = np.random.default_rng(0)
    feeds = {i.name: rng.standard_normal(i.shape).astype(np.float32) for i in models[0].inputs}
    so = ort.SessionOptions()
    so.intra_op_num_threads = args.threads
    so.inter_op_num_threads = 1
    sess = ort.InferenceSession(args.model, so, providers=["CPUExecutionProvider"])
    engines = [("onnxruntime", lambda: sess.run(None, feeds))]
    engines += [(lib, (lambda m: lambda: m.run(feeds))(m)) for lib, m in zip(args.libs, models)]
    for _, fn in engines:
        fn()
    t0 = time.perf_counter()
    engines[0][1]()
    calls = 1 if args.cold else max(1, int(0.02 / max(time.perf_counter() - t0, 1e-6)))
    flush = np.zeros((64 << 20) // 4, np.float32) if args.cold else None

    times: dict[str, list[float]] = {name: [] for name, _ in engines}
    order = np.random.default_rng(1)
    for _ in range(args.turns):
        for e in order.permutation(len(engines)):
            name, fn = engines[e]
            if flush is not None:
                flush += 1.0
            end = time.perf_counter() + (0.06 if args.threads > 1 else 0.0)
            while time.perf_counter() < end:
                fn()
            t0 = time.perf_counter()
            for _ in range(calls):
                fn()
            times[name].append((time.perf_counter() - t0) / calls)

    ref, first = times["onnxruntime"], times[args.libs[0]]
    print(f"{'engine':32s} {'median ms':>10s} {'ort/this':>9s} {'first/this':>10s}")
    for name, t in times.items():
        vs_ort = statistics.median(a / b for a, b in zip(ref, t))
        vs_first = statistics.median(a / b for a, b in zip(first, t))
        print(f"{os.path.basename(name):32s} {statistics.median(t) * 1e3:10.4f} {vs_ort:8.3f}x {vs_first:9.3f}x")


if __name__ == "__main__":
    main()
