"""Per-call cost of the Python wrapper, qc vs onnxruntime.

    python benchmarks/overhead.py [--runs N] [--calls C]

The model is one Relu on 4 floats: a call's time is the wrapper's own (the
input checks, the output arrays, the ctypes call, the runtime's entry), not
the model's. Prints the median microseconds per call over N rounds of C
calls, the engines taking turns round by round:

- qc run(): qc.Model.run({"x": x}), inputs by name;
- qc call: model(x), positional;
- qc_run alone: the bare ctypes call with the buffers already bound, the
  floor under both (what is left is the model's few instructions and the
  runtime's entry);
- onnxruntime: InferenceSession.run(None, {"x": x}).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np


def tiny_model():
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "tiny", [x], [y])
    # IR version 8: what the installed onnxruntime reads, whatever onnx writes by default.
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=15, help="rounds per engine (default 15)")
    ap.add_argument("--calls", type=int, default=2000, help="calls per round (default 2000)")
    args = ap.parse_args()

    import onnxruntime as ort

    import qc

    model = tiny_model()
    with tempfile.TemporaryDirectory() as tmp:
        lib_path = str(Path(tmp) / "tiny.so")
        qc.compile(model, lib_path)
        lib = qc.load(lib_path, threads=1)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        sess = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
        x = np.linspace(-1, 1, 4, dtype=np.float32).reshape(1, 4)
        feeds = {"x": x}
        want = np.maximum(x, 0)
        np.testing.assert_array_equal(lib.run(feeds)["y"], want)
        np.testing.assert_array_equal(sess.run(None, feeds)[0], want)
        lib(x)  # binds the buffers the bare call below reuses
        run, ctx, ins, outs = lib._qc_run, lib._ctx, lib._in_ptrs, lib._out_ptrs
        engines = {
            "qc run()": lambda: lib.run(feeds),
            "qc call": lambda: lib(x),
            "qc_run alone": lambda: run(ctx, ins, None, outs, None),
            "onnxruntime": lambda: sess.run(None, feeds),
        }
        times: dict[str, list[float]] = {k: [] for k in engines}
        for _ in range(args.runs):
            for name, fn in engines.items():
                t0 = time.perf_counter()
                for _ in range(args.calls):
                    fn()
                times[name].append((time.perf_counter() - t0) / args.calls * 1e6)
        lib.close()
    ort_us = statistics.median(times["onnxruntime"])
    print(f"{'engine':<14} {'us/call':>8}  (median of {args.runs} rounds of {args.calls} calls, one Relu on 4 floats)")
    for name in engines:
        us = statistics.median(times[name])
        print(f"{name:<14} {us:8.2f}  {ort_us / us:5.2f}x onnxruntime's speed")


if __name__ == "__main__":
    main()
