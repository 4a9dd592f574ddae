"""int8 against fp32: qc and onnxruntime on the example CNN blocks,
single-threaded, medians of several runs, all in one process.

    python benchmarks/int8.py [--runs N] [--forms qdq,qdq-u8,qop-u8,qdq-pre] [MODEL.onnx | NAME ...]
        (default: examples/resnet_block.onnx and examples/mobilenet_block.onnx,
         the qdq form; a NAME is an example's, e.g. mobilenet_block; run
         examples/make_models.py first if they are missing)

Each float block is quantized by examples/quantize_cnn.py (onnxruntime's
quantize_static, per channel, fixed-seed calibration) in each form asked
for (`FORMS`: QDQ with int8 activations, the default; QDQ with uint8
activations; QOperator with uint8 activations, QLinearConv and friends;
QDQ with int8 activations after onnxruntime's quant_pre_process, which folds
each BatchNormalization into its Conv first, as its documentation advises).
The engines run the same input per block, interleaved run by run (a run:
10 calls):
  - qc fp32: the float model (im2col + the register-blocked fp32 GEMM);
  - qc int8: the quantized model, fused into integer ops (tdpbsud on the
    AMX tile unit for convs of whole 16-channel tiles where the CPU has
    AMX-INT8, vpdpbusd with AVX-512 VNNI, the i16-pair vpmaddwd GEMM on
    AVX2; products exact, the
    requantization qc's default, 32-bit where it can be);
  - onnxruntime fp32 and int8 (its default graph optimizations fuse the QDQ
    groups into its own int8 kernels), one intra-op thread.
Printed: milliseconds and the ratios; the issue's targets are qc int8 >= 1.25x
faster than qc fp32 on a CPU without 8-bit dot-product instructions (AVX2),
>= 2.5x on one with them (AVX-512 VNNI, AVX-VNNI, AArch64 dotprod), and faster
than onnxruntime int8. The line says which of the two this CPU is held to.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse  # noqa: E402
import importlib.util  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import onnx  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def _quantize_cnn():
    spec = importlib.util.spec_from_file_location("quantize_cnn", ROOT / "examples" / "quantize_cnn.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def median_s(fns: dict, runs: int, warm_s: float = 0.0) -> dict[str, float]:
    """Median seconds per call of each engine, interleaved run by run (each
    run is a batch of calls, so the clock's resolution does not matter) so
    that the shared machine's noise hits them alike. warm_s: with several
    threads, each turn first runs its engine untimed that long, so that it
    does not share the cores with the other's still-spinning workers."""
    for fn in fns.values():
        fn()  # warm-up: first-touch of buffers, lazy binding
    batch = 10
    times = {k: [] for k in fns}
    for _ in range(runs):
        for k, fn in fns.items():
            end = time.perf_counter() + warm_s
            while time.perf_counter() < end:
                fn()
            t0 = time.perf_counter()
            for _ in range(batch):
                fn()
            times[k].append((time.perf_counter() - t0) / batch)
    return {k: statistics.median(v) for k, v in times.items()}


def qc_runner(path: str, work: str, tag: str):
    import qc

    lib = os.path.join(work, f"{tag}.so")
    qc.compile(path, lib)
    return qc.load(lib, threads=1)


def ort_runner(path: str):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    return ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])


# form -> (quantize_static's format, activation type, quant_pre_process first), all with int8 weights
FORMS = {"qdq": ("QDQ", "int8", False), "qdq-u8": ("QDQ", "uint8", False), "qop-u8": ("QOperator", "uint8", False),
         "qdq-pre": ("QDQ", "int8", True)}


def bench_block(float_path: str, work: str, runs: int, forms=("qdq",)) -> dict[str, float]:
    qcnn = _quantize_cnn()
    stem = Path(float_path).stem
    name, shape = qcnn.input_spec(onnx.load(float_path))
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    feeds = {name: x}
    fns, models = {}, []
    paths = [("fp32", float_path)]
    for form in forms:
        paths.append((_int8_tag(form), os.path.join(work, f"{stem}.{form}.onnx")))
        qcnn.quantize(float_path, paths[-1][1], *FORMS[form])
    for tag, path in paths:
        m = qc_runner(path, work, f"{stem}.{tag}")
        models.append(m)
        fns[f"qc {tag}"] = lambda m=m: m.run(feeds)
        sess = ort_runner(path)
        fns[f"onnxruntime {tag}"] = lambda sess=sess: sess.run(None, feeds)
    try:
        return median_s(fns, runs)
    finally:
        for m in models:
            m.close()


def _int8_tag(form: str) -> str:
    return "int8" if form == "qdq" else f"int8 {form}"


DOT_FEATURES = ("+avx512vnni", "+avxvnni", "+dotprod")


def int8_target() -> tuple[float, str]:
    """The int8-over-fp32 speed-up this CPU is held to, and why."""
    import qc.targets

    dot = sorted(f[1:] for f in qc.targets.host().feature_set if f in DOT_FEATURES)
    if dot:
        return 2.5, f"this CPU has {', '.join(dot)}"
    return 1.25, "this CPU has no 8-bit dot-product instructions"


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=30, help="interleaved runs of 10 calls each")
    ap.add_argument("--forms", default="qdq", help=f"comma-separated quantized forms: {', '.join(FORMS)}")
    ap.add_argument("models", nargs="*", help="float32 .onnx files or example names "
                                              "(default: resnet_block mobilenet_block)")
    args = ap.parse_args(argv)
    forms = [f for f in args.forms.split(",") if f]
    unknown = [f for f in forms if f not in FORMS]
    if unknown or not forms:
        ap.error(f"unknown form(s) {', '.join(unknown) or '(none)'}; forms: {', '.join(FORMS)}")
    names = args.models or ["resnet_block", "mobilenet_block"]
    paths = [m if m.endswith(".onnx") else str(ROOT / "examples" / f"{m}.onnx") for m in names]
    missing = [p for p in paths if not os.path.exists(p)]
    if missing:
        hint = "" if all(m.endswith(".onnx") for m in names) else ": run python examples/make_models.py first"
        raise SystemExit(f"missing {', '.join(missing)}{hint}")
    print(f"1 thread, median of {args.runs} interleaved runs of 10 calls; ratios > 1: the first is faster")
    goal, why = int8_target()
    print(f"int8 vs fp32 target here: >= {goal}x ({why})")
    with tempfile.TemporaryDirectory(prefix="qc-bench-int8-") as work:
        for path in paths:
            t = bench_block(path, work, args.runs, forms)
            print(f"{Path(path).stem}:")
            for k in ("qc fp32", "onnxruntime fp32"):
                print(f"  {k:24} {t[k] * 1e3:8.3f} ms")
            for form in forms:
                q = _int8_tag(form)
                print(f"  {'qc ' + q:24} {t['qc ' + q] * 1e3:8.3f} ms")
                print(f"  {'onnxruntime ' + q:24} {t['onnxruntime ' + q] * 1e3:8.3f} ms")
                for label, ratio, target in (
                        (f"qc {q} vs qc fp32", t["qc fp32"] / t["qc " + q], f"  (target >= {goal}x)"),
                        (f"qc {q} vs onnxruntime {q}", t["onnxruntime " + q] / t["qc " + q], "  (target > 1x)"),
                        (f"onnxruntime {q} vs fp32", t["onnxruntime fp32"] / t["onnxruntime " + q], "")):
                    print(f"  {label + ':':44} {ratio:5.2f}x{target}")


if __name__ == "__main__":
    main()
