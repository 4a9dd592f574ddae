"""The memory plan's cost in time: each model compiled with and without
qc-plan-memory, run side by side in one process.

    python benchmarks/memory_plan.py [--runs N] [--light] [MODEL.onnx ...]

Without the plan, intermediates come from the runtime's per-context block
cache (no malloc after the first run either); with it, from fixed offsets in
one arena. Prints the arena against the sum of the intermediates and the
lower bound, and the latency ratio unplanned / planned (> 1: the plan is
faster), median of N interleaved runs, single-threaded.
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
EXAMPLES = ["mlp", "attention", "mobilenet_block", "resnet_block", "transformer_encoder"]


def without_plan(pipeline):
    from qc.passes.base import Pipeline, Stage
    from qc.passes.plan_memory import PlanMemory

    return Pipeline(pipeline.name + "-no-plan", tuple(
        Stage(s.name, tuple(p for p in s.passes if not isinstance(p, PlanMemory))) for s in pipeline.stages))


def inputs_for(model_path: str, lib) -> dict:
    npz = model_path[: -len(".onnx")] + ".inputs.npz"
    if os.path.exists(npz):
        return dict(np.load(npz))
    rng = np.random.default_rng(0)
    return {t.name: rng.standard_normal(t.shape).astype(t.dtype) for t in lib.inputs}


def median_times(fns: dict, runs: int) -> dict:
    for fn in fns.values():
        fn()
    times = {k: [] for k in fns}
    for _ in range(runs):
        for k, fn in fns.items():
            t = time.perf_counter()
            fn()
            times[k].append(time.perf_counter() - t)
    return {k: statistics.median(v) for k, v in times.items()}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("models", nargs="*", help="ONNX files (default: the examples)")
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--light", action="store_true", help="add ResNet-50, SqueezeNet, ShuffleNet (onnx wheel)")
    args = ap.parse_args()

    import qc
    from qc.passes.pipelines import default_pipeline
    from qc.report import _mib
    from qc.session import compile_model
    from qc.targets import resolve

    paths = args.models or [os.path.join(ROOT, "examples", f"{n}.onnx") for n in EXAMPLES]
    work = tempfile.mkdtemp(prefix="qc-memplan-")
    if args.light:
        sys.path.insert(0, os.path.join(ROOT, "test", "python"))
        import onnx
        from test_light_models import load_light

        for name in ("resnet50", "squeezenet", "shufflenet"):
            p = os.path.join(work, f"light_{name}.onnx")
            onnx.save(load_light(name)[0], p)
            paths.append(p)
    plain = without_plan(default_pipeline(resolve("host")))
    print(f"{'model':<22} {'arena':>10} {'all interm.':>12} {'lower bound':>12} {'arena/lb':>9} "
          f"{'planned ms':>11} {'unplanned ms':>13} {'ratio':>6}")
    for path in paths:
        name = os.path.basename(path)[: -len(".onnx")]
        planned, unplanned = os.path.join(work, f"{name}.so"), os.path.join(work, f"{name}-np.so")
        arena = compile_model(path, planned).arena
        compile_model(path, unplanned, pipeline=plain)
        with qc.load(planned) as a, qc.load(unplanned) as b:
            feeds = inputs_for(path, a)
            t = median_times({"planned": lambda: a.run(feeds), "unplanned": lambda: b.run(feeds)}, args.runs)
        print(f"{name:<22} {_mib(arena['bytes']):>10} {_mib(arena['intermediates']):>12} "
              f"{_mib(arena['lower_bound']):>12} {arena['bytes'] / max(arena['lower_bound'], 1):>9.3f} "
              f"{t['planned'] * 1e3:>11.3f} {t['unplanned'] * 1e3:>13.3f} {t['unplanned'] / t['planned']:>6.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
