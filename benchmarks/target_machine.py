"""Benchmarks for another x86-64 machine: compile here, check and time there.

    python benchmarks/target_machine.py build DIR [--targets x86-64-v4,x86-64-v4-vnni] [--light] [--models mlp,...]
        (a target: a preset, or TRIPLE:CPU such as x86_64-unknown-linux-gnu:sapphirerapids)
    python benchmarks/target_machine.py run DIR [--runs N] [--threads 1,2,4]

`build` (needs qc's compiler) writes into DIR the example models (fp32,
plus int8 forms of the CNN blocks quantized by examples/quantize_cnn.py),
a 1024^3 MatMul, and with --light ResNet-50, SqueezeNet and ShuffleNet from
the onnx wheel, each compiled for every target asked for (int8 models for
every target, fp32 ones for those without a VNNI suffix: VNNI changes only
the int8 code), and a manifest with the /proc/cpuinfo flags each library
needs. `run` needs only numpy, onnx, onnxruntime
and the qc runtime (`import qc` loads no compiler), so DIR can be copied to
a machine with the CPU the targets are for (AVX-512, VNNI) and run there,
where it:

- skips the libraries whose target needs a feature /proc/cpuinfo lacks;
- checks each library's outputs against the ONNX-semantics reference
  (onnxruntime with graph optimizations off; onnx.reference for QOperator
  models): fp32 to 1e-4 of the output's range, int8 in quantization steps
  of the output's DequantizeLinear;
- times each library against onnxruntime (default optimizations) on the
  same inputs, interleaved run by run, median of N runs of 10 calls, for each
  thread count; the MatMul also against numpy (OpenBLAS, one thread).
Printed per model: milliseconds, speed against onnxruntime (> 1: qc faster)
and, for int8, against qc fp32 built for the same vector width.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import importlib.util  # noqa: E402
import json  # noqa: E402
import shutil  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ("mlp", "attention", "mobilenet_block", "resnet_block", "transformer_encoder")
INT8_BLOCKS = ("mobilenet_block", "resnet_block")
# form -> quantize_static's format, activation type, and whether onnxruntime's
# quant_pre_process (which folds each BatchNormalization into its Conv) runs first
FORMS = {"qdq": ("QDQ", "int8", False), "qdq-u8": ("QDQ", "uint8", False), "qop-u8": ("QOperator", "uint8", False),
         "qdq-pre": ("QDQ", "int8", True)}
PRESETS = ("x86-64-v3", "x86-64-v4", "x86-64-v3-vnni", "x86-64-v4-vnni")
# LLVM's name of an x86 feature qc's code may use -> the /proc/cpuinfo flag
CPU_FLAGS = {"+avx2": "avx2", "+fma": "fma", "+avx512f": "avx512f", "+avx512bw": "avx512bw", "+avx512vl": "avx512vl",
             "+avx512dq": "avx512dq", "+avx512vnni": "avx512_vnni", "+avxvnni": "avx_vnni",
             "+avx512vbmi": "avx512vbmi"}


def needs(target) -> list[str]:
    """The /proc/cpuinfo flags a library built for `target` (a qc Target) needs."""
    return sorted({CPU_FLAGS[f] for f in target.feature_set if f in CPU_FLAGS})


def _file_name(target: str) -> str:
    """A target as part of a file name: x86_64-unknown-linux-gnu:sapphirerapids -> sapphirerapids."""
    return target.rsplit(":", 1)[-1] if ":" in target else target


def _module(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def build(out: Path, targets: list[str], light: bool, only: list[str] | None = None) -> None:
    import onnx

    import qc
    import qc.targets
    from qc.errors import OptionError

    resolved = {}
    for t in targets:
        try:
            resolved[t] = qc.targets.resolve(t)
        except OptionError as e:
            raise SystemExit(str(e)) from None
        if resolved[t].arch != "x86_64":
            raise SystemExit(f"target {t}: not x86-64; these libraries are timed on another x86-64 machine")
    examples = [n for n in EXAMPLES if not only or n in only]
    unknown = [n for n in only or [] if n not in EXAMPLES]
    if unknown:
        raise SystemExit(f"unknown model(s) {', '.join(unknown)}; models: {', '.join(EXAMPLES)}")
    missing = [n for n in examples if not (ROOT / "examples" / f"{n}.onnx").exists()]
    if missing:
        raise SystemExit(f"missing examples {', '.join(missing)}: run python examples/make_models.py first")
    out.mkdir(parents=True, exist_ok=True)
    qcnn = _module(ROOT / "examples" / "quantize_cnn.py", "quantize_cnn")
    models = []  # (name, onnx file in out, int8 output step or None)
    for n in examples:
        shutil.copy(ROOT / "examples" / f"{n}.onnx", out / f"{n}.onnx")
        models.append((n, f"{n}.onnx", False))
    if not only:
        gemm = _module(ROOT / "benchmarks" / "gemm.py", "gemm_bench")
        onnx.save(gemm.matmul_model(1024, True, np.random.default_rng(0))[0], out / "gemm1024.onnx")
        models.append(("gemm1024", "gemm1024.onnx", False))
    if light:
        lightdir = Path(onnx.__file__).parent / "backend" / "test" / "data" / "light"
        for n in ("resnet50", "squeezenet", "shufflenet"):
            shutil.copy(lightdir / f"light_{n}.onnx", out / f"{n}.onnx")
            models.append((n, f"{n}.onnx", False))
    for n in [b for b in INT8_BLOCKS if b in examples]:
        for form, (fmt, act, pre) in FORMS.items():
            name = f"{n}.{form}"
            qcnn.quantize(str(ROOT / "examples" / f"{n}.onnx"), str(out / f"{name}.onnx"), fmt, act, pre)
            models.append((name, f"{name}.onnx", True))
    entries = []
    for name, path, int8 in models:
        for t in targets:
            if t.endswith("-vnni") and not int8:
                continue
            lib = f"{name}.{_file_name(t)}.so"
            t0 = time.perf_counter()
            qc.compile(str(out / path), str(out / lib), target=t)
            print(f"built {lib} ({time.perf_counter() - t0:.1f} s)", flush=True)
            entries.append({"model": name, "onnx": path, "int8": int8, "target": t, "lib": lib,
                            "needs": needs(resolved[t])})
    (out / "manifest.json").write_text(json.dumps(entries, indent=1))


def cpu_flags() -> tuple[str, set[str]]:
    name, flags = "unknown CPU", set()
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        key, _, val = line.partition(":")
        if key.strip() == "model name" and name == "unknown CPU":
            name = val.strip()
        if key.strip() == "flags" and not flags:
            flags = set(val.split())
    return name, flags


def median_s(fns: dict, runs: int, warm_s: float = 0.0) -> dict[str, float]:
    """benchmarks/int8.py's: interleaved runs of 10 calls, medians."""
    return _module(ROOT / "benchmarks" / "int8.py", "int8_bench").median_s(fns, runs, warm_s)


def ort_session(path: str, threads: int, optimize: bool = True):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    if not optimize:
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    return ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])


def output_steps(model) -> dict[str, float]:
    """Each graph output's quantization step: the scale of the
    DequantizeLinear that makes it (QDQ models; a QOperator model ends
    with one too, after its last QLinear op)."""
    from onnx import numpy_helper

    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    steps = {}
    for node in model.graph.node:
        if node.op_type == "DequantizeLinear" and node.output[0] in {o.name for o in model.graph.output}:
            steps[node.output[0]] = float(inits[node.input[1]])
    return steps


def check(entry: dict, path: str, lib_model, feeds: dict) -> str:
    """'ok ...' or 'WRONG ...': the library's outputs against onnxruntime
    with graph optimizations off, or for QOperator models onnx.reference
    (onnxruntime's QLinearConv is its own u8 x s8 kernel, which saturates
    products in 16 bits on AVX2: up to a dozen steps off these blocks)."""
    import onnx

    model = onnx.load(path)
    if any(n.op_type.startswith("QLinear") for n in model.graph.node):
        from onnx.reference import ReferenceEvaluator

        ref = onnx.ModelProto()
        ref.CopyFrom(model)
        for o in ref.opset_import:  # quantize_static keeps opset 17, whose DequantizeLinear it lacks: same op
            if o.domain in ("", "ai.onnx"):
                o.version = max(o.version, 21)
        want = dict(zip([o.name for o in model.graph.output],
                        ReferenceEvaluator(ref, new_ops=[_qlinear_add()]).run(None, feeds)))
    else:
        ref = ort_session(path, 1, optimize=False)
        want = dict(zip([o.name for o in ref.get_outputs()], ref.run(None, feeds)))
    got = lib_model.run(feeds)
    if entry["int8"]:
        steps = output_steps(model)
        worst, share = 0, 1.0
        for k, w in want.items():  # an integer output is counted in its own steps
            step = 1.0 if np.issubdtype(w.dtype, np.integer) else steps[k]
            off = np.rint(np.abs(got[k].astype(np.float64) - w) / step).astype(np.int64)
            worst = max(worst, int(off.max()))
            share = min(share, float(np.mean(off <= 1)))
        ok = share >= 0.999
        return f"{'ok' if ok else 'WRONG'}: {100 * share:.2f}% within 1 step, worst {worst} steps"
    rel = max(float(np.max(np.abs(got[k] - w)) / max(float(np.max(np.abs(w))), 1e-30)) for k, w in want.items())
    return f"{'ok' if rel <= 1e-4 else 'WRONG'}: max error {rel:.1e} of the output's range"


def _random(rng, t) -> np.ndarray:
    """Normal floats, or integers over the whole range of an integer input."""
    if np.issubdtype(t.dtype, np.integer):
        info = np.iinfo(t.dtype)
        return rng.integers(info.min, info.max, t.shape, endpoint=True).astype(t.dtype)
    return rng.standard_normal(t.shape).astype(t.dtype)


def _qlinear_add():
    """com.microsoft QLinearAdd for onnx.reference: dequantize both, add,
    quantize (round half to even, saturate)."""
    from onnx.reference.op_run import OpRun

    class QLinearAdd(OpRun):
        op_domain = "com.microsoft"

        def _run(self, a, a_s, a_z, b, b_s, b_z, c_s, c_z):
            f = lambda v, s, z: s * (v.astype(np.float32) - np.float32(z))  # noqa: E731
            q = np.rint((f(a, a_s, a_z) + f(b, b_s, b_z)) / c_s) + np.float32(c_z)
            info = np.iinfo(c_z.dtype)
            return (np.clip(q, info.min, info.max).astype(c_z.dtype),)

    return QLinearAdd


def _isa(target: str) -> str:
    """A manifest target without its label: `x86-64-v4-vnni@before` is an
    x86-64-v4-vnni library timed beside the unlabelled one (an A/B pair)."""
    return target.split("@")[0]


def run(d: Path, runs: int, threads: list[int]) -> int:
    import onnxruntime as ort

    import qc

    entries = json.loads((d / "manifest.json").read_text())
    cpu, flags = cpu_flags()
    print(f"CPU: {cpu}, {os.cpu_count()} logical CPUs; onnxruntime {ort.__version__}, numpy {np.__version__}")
    print("vector features: " + " ".join(sorted(f for f in flags if f.startswith(("avx", "fma", "amx")))))
    usable = [e for e in entries if set(e["needs"]) <= flags]
    for t in sorted({_isa(e["target"]) for e in entries} - {_isa(e["target"]) for e in usable}):
        lacks = set(next(e["needs"] for e in entries if _isa(e["target"]) == t)) - flags
        print(f"skipped {t}: this CPU lacks {' '.join(sorted(lacks))}")
    wrong = 0
    by_model: dict[str, list[dict]] = {}
    for e in usable:
        by_model.setdefault(e["model"], []).append(e)
    rng = np.random.default_rng(0)
    w = max([15, *(len(e["target"]) for e in usable)])
    for name, es in by_model.items():
        path = str(d / es[0]["onnx"])
        libs = {e["target"]: qc.load(d / e["lib"]) for e in es}
        feeds = {t.name: _random(rng, t) for t in next(iter(libs.values())).inputs}
        print(f"{name}:", flush=True)
        for e in es:
            verdict = check(e, path, libs[e["target"]], feeds)
            wrong += verdict.startswith("WRONG")
            print(f"  {e['target']:{w}s} {verdict}", flush=True)
        # An int8 model's float original, timed in the same loop on the same
        # input, for the int8 / fp32 ratio of each vector width.
        twins = {}
        for tgt in libs:
            twin = fp32_twin(name, tgt, by_model)
            if twin and twin["target"] not in twins:
                twins[twin["target"]] = qc.load(d / twin["lib"])
        for n in threads:
            for m in [*libs.values(), *twins.values()]:
                m.threads = n
            sess = ort_session(path, n)
            fns = {t: (lambda m=m: m.run(feeds)) for t, m in libs.items()}
            fns.update({f"fp32 {t}": (lambda m=m: m.run(feeds)) for t, m in twins.items()})
            fns["onnxruntime"] = lambda: sess.run(None, feeds)
            if name == "gemm1024" and n == 1:
                a, b = feeds["a"], np.random.default_rng(0).standard_normal((1024, 1024)).astype(np.float32)
                fns["numpy"] = lambda: a @ b
            # onnxruntime's workers spin for tens of milliseconds after a run.
            t = median_s(fns, runs, warm_s=0.06 if n > 1 else 0.0)
            row = f"  {n:2d} thread{'s' if n > 1 else ' '}  onnxruntime {t['onnxruntime'] * 1e3:8.3f} ms"
            if "numpy" in t:
                row += f"  numpy {t['numpy'] * 1e3:8.3f} ms"
            row += "".join(f"  qc fp32 {k[5:]} {v * 1e3:8.3f} ms" for k, v in t.items() if k.startswith("fp32 "))
            print(row)
            for tgt in libs:
                line = f"    qc {tgt:{w}s} {t[tgt] * 1e3:8.3f} ms  {t['onnxruntime'] / t[tgt]:5.2f}x onnxruntime"
                if "numpy" in t:
                    line += f"  {t['numpy'] / t[tgt]:5.2f}x numpy"
                twin = fp32_twin(name, tgt, by_model)
                if twin:
                    line += f"  {t['fp32 ' + twin['target']] / t[tgt]:5.2f}x qc fp32 ({twin['target']})"
                print(line, flush=True)
        for m in [*libs.values(), *twins.values()]:
            m.close()
    print(f"{wrong} wrong result(s)" if wrong else "all results match the reference")
    return 1 if wrong else 0


def fp32_twin(name: str, target: str, by_model: dict) -> dict | None:
    """The fp32 build of an int8 model's float original for the same CPU, or
    for the same vector width (x86-64-v4-vnni -> x86-64-v4)."""
    if "." not in name:
        return None
    floats = by_model.get(name.split(".")[0], [])
    for base in (_isa(target), _isa(target).removesuffix("-vnni")):
        twin = next((e for e in floats if e["target"] == base), None)
        if twin:
            return twin
    return None


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build", help="compile the models for the targets into DIR (needs qc's compiler)")
    b.add_argument("dir", type=Path)
    b.add_argument("--targets", default="x86-64-v3,x86-64-v4,x86-64-v3-vnni,x86-64-v4-vnni",
                   help=f"comma-separated presets ({', '.join(PRESETS)}) or TRIPLE:CPU")
    b.add_argument("--light", action="store_true", help="add ResNet-50, SqueezeNet, ShuffleNet (onnx wheel)")
    b.add_argument("--models", default="", help=f"comma-separated examples only (no MatMul), of: {', '.join(EXAMPLES)}")
    r = sub.add_parser("run", help="check and time DIR's libraries on this machine (needs the qc runtime only)")
    r.add_argument("dir", type=Path)
    r.add_argument("--runs", type=int, default=20, help="interleaved runs of 10 calls each")
    r.add_argument("--threads", default="1", help="comma-separated thread counts, e.g. 1,2,4")
    args = ap.parse_args(argv)
    if args.cmd == "build":
        build(args.dir, [t for t in args.targets.split(",") if t], args.light, [m for m in args.models.split(",") if m])
        return 0
    if not (args.dir / "manifest.json").exists():
        raise SystemExit(f"{args.dir}: no manifest.json; make it with `build` first")
    return run(args.dir, args.runs, [int(t) for t in args.threads.split(",")])


if __name__ == "__main__":
    sys.exit(main())
