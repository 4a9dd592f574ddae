"""The main job: compile the example models, run them, check them against
onnxruntime and compare their speed, single-threaded, in this process.

    python examples/demo.py            (after `make demo` has set things up)
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))


def median_ms(fn, runs: int = 30, warmup: int = 5) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3


def main() -> int:
    import onnxruntime as ort

    import qc

    subprocess.run([sys.executable, os.path.join(HERE, "make_models.py")], check=True)
    out_dir = tempfile.mkdtemp(prefix="qc-demo-")
    ok = True
    for name in ("mlp", "attention", "mobilenet_block", "resnet_block", "transformer_encoder"):
        onnx_path = os.path.join(HERE, f"{name}.onnx")
        lib = os.path.join(out_dir, f"{name}.so")
        t0 = time.perf_counter()
        qc.compile(onnx_path, lib)
        compile_s = time.perf_counter() - t0
        feeds = dict(np.load(os.path.join(HERE, f"{name}.inputs.npz")))

        model = qc.load(lib)
        got = model.run(feeds)
        so = ort.SessionOptions()
        so.intra_op_num_threads = 1
        so.inter_op_num_threads = 1
        sess = ort.InferenceSession(onnx_path, so, providers=["CPUExecutionProvider"])
        want = dict(zip([o.name for o in sess.get_outputs()], sess.run(None, feeds)))

        print(f"== {name}: compiled in {compile_s:.2f} s -> {lib}")
        for out, ref in want.items():
            # Relative to the output's scale: a sum of hundreds of products can
            # land near zero, where an element's own relative error means nothing.
            scale = float(np.max(np.abs(ref))) or 1.0
            err = float(np.max(np.abs(got[out].astype(np.float64) - ref))) / scale
            close = err <= 1e-5
            ok &= close
            print(f"   {out}: {got[out].dtype}{list(got[out].shape)}  max error vs onnxruntime "
                  f"{err:.1e} of the output's range  [{'OK' if close else 'MISMATCH'}]")
        t_qc = median_ms(lambda: model.run(feeds))
        t_ort = median_ms(lambda: sess.run(None, feeds))
        print(f"   latency (median, 1 thread): qc {t_qc:.4f} ms, onnxruntime {t_ort:.4f} ms "
              f"-> qc is {t_ort / t_qc:.2f}x the speed of onnxruntime")
    print("all outputs match onnxruntime" if ok else "SOME OUTPUTS DO NOT MATCH")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
