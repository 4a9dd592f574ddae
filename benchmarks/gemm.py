"""SGEMM speed: qc vs numpy (OpenBLAS), single-threaded, same process.

    python benchmarks/gemm.py [--sizes 256,512,1024,2048] [--runs N] [--threads 2]

For each square size, two qc models: B a constant weight (packed at compile
time, the case in a compiled model) and B a run-time input (read in place).
Prints GFLOP/s and the fraction of this core's fp32 peak, derived from the
clock in /proc/cpuinfo x FMA units x vector lanes x 2 flops. With
--threads T, the constant-B model also runs on T threads in the same loop
and the speed-up over one thread is printed (numpy stays on one thread).
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # before numpy loads OpenBLAS
os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402


def peak_gflops(vector_bits: int) -> tuple[float, str]:
    """This core's fp32 peak, measured: a loop of independent vector FMAs
    (benchmarks/fma_peak.c) runs at the FMA pipes' throughput, at whatever
    clock the core actually runs."""
    import subprocess

    exe = os.path.join(tempfile.mkdtemp(prefix="qc-peak-"), "fma_peak")
    src = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fma_peak.c")
    flags = ["-mavx512f", "-DWIDE"] if vector_bits >= 512 else ["-mavx2", "-mfma"]
    subprocess.run(["cc", "-O2", *flags, "-o", exe, src], check=True)
    peak = float(subprocess.run([exe], capture_output=True, text=True, check=True).stdout.split()[0])
    return peak, (f"{peak:.1f} GFLOP/s measured by 12 independent {vector_bits}-bit FMA chains "
                  f"(= clock x FMA pipes x {vector_bits // 32} lanes x 2 flops)")


def matmul_model(n: int, constant_b: bool, rng):
    from onnx import TensorProto, helper, numpy_helper

    b = rng.standard_normal((n, n)).astype(np.float32)
    ins = [helper.make_tensor_value_info("a", TensorProto.FLOAT, [n, n])]
    inits = []
    if constant_b:
        inits.append(numpy_helper.from_array(b, "b"))
    else:
        ins.append(helper.make_tensor_value_info("b", TensorProto.FLOAT, [n, n]))
    g = helper.make_graph([helper.make_node("MatMul", ["a", "b"], ["c"])], "gemm", ins,
                          [helper.make_tensor_value_info("c", TensorProto.FLOAT, [n, n])], inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), b


def median_s(fn, runs: int) -> float:
    fn()
    ts = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts)


def main() -> None:
    import qc
    from qc.targets import host

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="256,512,1024,2048")
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--threads", type=int, default=1, help="also time the constant-B model on this many threads")
    args = ap.parse_args()
    tgt = host()
    peak, how = peak_gflops(tgt.vector_bits)
    print(f"peak fp32, one core: {how}")
    wide = args.threads > 1
    head = f"{'n':>5s} {'numpy':>14s} {'qc (B const)':>20s} {'qc (B input)':>20s} {'const/numpy':>11s}"
    print(head + (f" {f'{args.threads} threads':>12s} {'speed-up':>8s}" if wide else ""))
    work = tempfile.mkdtemp(prefix="qc-gemm-")
    rng = np.random.default_rng(0)
    for n in [int(s) for s in args.sizes.split(",")]:
        a = rng.standard_normal((n, n)).astype(np.float32)
        flops = 2.0 * n**3
        runs = max(3, args.runs if n <= 1024 else args.runs // 3)
        res = {}
        for const in (True, False):
            model, b = matmul_model(n, const, rng)
            lib = os.path.join(work, f"g{n}{'c' if const else 'r'}.so")
            qc.compile(model, lib)
            m = qc.load(lib)
            feeds = {"a": a} if const else {"a": a, "b": b}
            got = m.run(feeds)["c"]
            ref = a @ b
            assert np.allclose(got, ref, rtol=1e-3, atol=1e-2 * np.sqrt(n)), f"wrong result at n={n}"
            res[const] = (m, feeds, b)
        if wide:
            res["mt"] = (qc.load(os.path.join(work, f"g{n}c.so"), threads=args.threads), res[True][1], res[True][2])
        # Interleave the engines so machine noise hits all alike.
        t = {"np": [], True: [], False: [], **({"mt": []} if wide else {})}
        for _ in range(3):
            t["np"].append(median_s(lambda: a @ res[True][2], runs))
            for key in [k for k in t if k != "np"]:
                m, feeds, _ = res[key]
                t[key].append(median_s(lambda: m.run(feeds), runs))
        g = {k: flops / min(v) / 1e9 for k, v in t.items()}
        fmt = lambda x: f"{x:6.1f} GF ({100 * x / peak:3.0f}%)"  # noqa: E731
        line = f"{n:5d} {g['np']:8.1f} GF/s  {fmt(g[True]):>20s} {fmt(g[False]):>20s} {g[True] / g['np']:10.2f}x"
        if wide:
            line += f" {g['mt']:7.1f} GF/s {g['mt'] / g[True]:7.2f}x"
        print(line)


if __name__ == "__main__":
    main()
