"""Peak resident memory of deployment: a process that loads a model and runs
it once, with qc vs with onnxruntime.

    python benchmarks/memory.py [--procs N] [MODEL.onnx ...]

Default models: the examples (examples/*.onnx with their .inputs.npz; made
by examples/make_models.py when missing). Each model is compiled here first;
then fresh child processes each do one thing and print their peak resident
set (VmHWM from /proc/self/status) before exiting:

  numpy  imports numpy only: the floor every Python deployment pays
  qc     import qc; qc.load(model.so); one run on the example's inputs
  ort    import onnxruntime; one single-threaded session; one run on the same inputs

A child's peak covers the interpreter, the libraries it maps and touches,
the model's weights and every buffer the run allocates. Printed: the median
over N processes of each kind in MiB, qc/ort of the whole process, and
qc/ort of what each adds above the numpy-only process (< 1: qc needs less).
A failing model or child is reported in its row; the script always exits 0.
"""

from __future__ import annotations

import argparse
import glob
import os
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

PEAK = """
def peak_kib():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
"""

CHILD = {
    "numpy": PEAK + """
import numpy
print("peak", peak_kib())
""",
    "qc": PEAK + """
import sys
import numpy as np
import qc
feeds = dict(np.load(sys.argv[3]))
model = qc.load(sys.argv[1])
model.run(feeds)
print("peak", peak_kib())
print("arena", getattr(model, "arena_bytes", None))
""",
    "ort": PEAK + """
import sys
import numpy as np
import onnxruntime as ort
feeds = dict(np.load(sys.argv[3]))
so = ort.SessionOptions()
so.intra_op_num_threads = 1
so.inter_op_num_threads = 1
sess = ort.InferenceSession(sys.argv[2], so, providers=["CPUExecutionProvider"])
sess.run(None, feeds)
print("peak", peak_kib())
""",
}


class ChildFailed(Exception):
    pass


def child(kind: str, lib: str, onnx_path: str, inputs: str, workdir: str) -> dict[str, str]:
    """Runs one fresh child process of `kind`; returns what it printed, by key."""
    res = subprocess.run([sys.executable, "-c", CHILD[kind], lib, onnx_path, inputs], capture_output=True,
                         text=True, cwd=workdir, timeout=600)
    if res.returncode != 0:
        last = (res.stderr.strip().splitlines() or [f"exit code {res.returncode}"])[-1]
        raise ChildFailed(f"{kind} child failed: {last}")
    return dict(line.split(" ", 1) for line in res.stdout.splitlines() if " " in line)


def median_peak_mib(kind: str, procs: int, *args) -> tuple[float, dict[str, str]]:
    """The median peak (MiB) over `procs` fresh processes, and the last one's output."""
    peaks, out = [], {}
    for _ in range(procs):
        out = child(kind, *args)
        peaks.append(int(out["peak"]) / 1024)
    return statistics.median(peaks), out


def example_models() -> list[str]:
    models = sorted(glob.glob(os.path.join(ROOT, "examples", "*.onnx")))
    if not models:
        subprocess.run([sys.executable, os.path.join(ROOT, "examples", "make_models.py")], check=False)
        models = sorted(glob.glob(os.path.join(ROOT, "examples", "*.onnx")))
    return models


def main() -> None:
    from qc.session import compile_model

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("models", nargs="*", help="ONNX models, each with MODEL.inputs.npz beside it")
    ap.add_argument("--procs", type=int, default=5, help="fresh processes per kind and model (median)")
    args = ap.parse_args()
    procs = max(args.procs, 1)
    work = tempfile.mkdtemp(prefix="qc-mem-")
    models = args.models or example_models()

    try:
        floor, _ = median_peak_mib("numpy", procs, "", "", "", work)
    except ChildFailed as e:
        print(f"numpy-only process: {e}")
        return
    print(f"peak resident memory, median of {procs} fresh processes each; numpy-only process: {floor:.1f} MiB")
    print(f"{'model':20s} {'.so MiB':>8s} {'arena KiB':>9s} {'qc MiB':>8s} {'ort MiB':>8s} {'qc/ort':>7s} "
          f"{'qc+ MiB':>8s} {'ort+ MiB':>8s} {'qc+/ort+':>8s}")
    for path in models:
        name = os.path.splitext(os.path.basename(path))[0]
        inputs = os.path.splitext(path)[0] + ".inputs.npz"
        lib = os.path.join(work, name + ".so")
        try:
            if not os.path.isfile(inputs):
                raise ChildFailed(f"no {os.path.basename(inputs)} beside the model")
            compile_model(path, lib)
            qc_mib, out = median_peak_mib("qc", procs, lib, path, inputs, work)
            ort_mib, _ = median_peak_mib("ort", procs, lib, path, inputs, work)
        except Exception as e:  # noqa: BLE001  a benchmark reports a failure and goes on
            print(f"{name:20s} failed: {' '.join(str(e).split())}")
            continue
        arena = out.get("arena", "None")
        arena_kib = f"{int(arena) / 1024:9.1f}" if arena not in ("None", "") else f"{'-':>9s}"
        qc_up, ort_up = qc_mib - floor, ort_mib - floor
        up_ratio = f"{qc_up / ort_up:8.2f}" if ort_up > 0 else f"{'-':>8s}"
        print(f"{name:20s} {os.path.getsize(lib) / 2**20:8.2f} {arena_kib} {qc_mib:8.1f} {ort_mib:8.1f} "
              f"{qc_mib / ort_mib:7.2f} {qc_up:8.1f} {ort_up:8.1f} {up_ratio}")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
