"""Binary layers: speed against qc's own fp32 convolution and against
onnxruntime in float, single-threaded, medians of several runs, same process.

    python benchmarks/binary.py [--runs N] [--size S] [--channels C]

1. One 3x3 convolution, C -> C channels, S x S, padding 1 (default 128, 56):
   - binary, bits in -> bits out: the layer as it runs inside a binary network
     (packed input, BatchNorm + next sign fused into the threshold);
   - binary, float in -> float out: with the bit-packing of a float input and
     the per-channel multiply-add (a layer after a float one);
   - qc's fp32 convolution of the same shape (im2col + the register-blocked
     fp32 GEMM), the reference of the ratio.
2. examples/binary_cnn.py's networks (binary and 2-bit) against onnxruntime
   running the same ONNX graph in float.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse  # noqa: E402
import importlib.util  # noqa: E402
import tempfile  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

F32 = np.float32
ROOT = Path(__file__).resolve().parents[1]


def _model(nodes, x, x_type, y, y_type, x_shape, y_shape, inits, domains=()):
    g = helper.make_graph(nodes, "layer", [helper.make_tensor_value_info(x, x_type, x_shape)],
                          [helper.make_tensor_value_info(y, y_type, y_shape)],
                          [numpy_helper.from_array(v, k) for k, v in inits.items()])
    ops = [helper.make_opsetid("", 17), *[helper.make_opsetid(d, 1) for d in domains]]
    return helper.make_model(g, opset_imports=ops, ir_version=8)


def _pm1(rng, shape):
    return np.where(rng.random(shape) < 0.5, -1.0, 1.0).astype(F32)


def packed_layer(c, s, rng):
    """A qc.binary BinaryConv with packed input and output (what binary_detect
    makes of a binary conv between two binary layers)."""
    from qc.frontends.onnx.binary_detect import DOMAIN

    words = -(-c // 64)
    node = helper.make_node("BinaryConv", ["x", "w", "t", "f"], ["y"], name="bconv", domain=DOMAIN,
                            input="packed", output="bits", pads=[1, 1, 1, 1])
    inits = {"w": _pm1(rng, (c, c, 3, 3)), "t": rng.integers(-20, 20, words * 64).astype(np.int32),
             "f": (rng.random(words * 64) < 0.5).astype(np.int32)}
    model = _model([node], "x", TensorProto.INT64, "y", TensorProto.INT64, [1, s, s, words], [1, s, s, words],
                   inits, (DOMAIN,))
    return model, rng.integers(-2**62, 2**62, (1, s, s, words))


def float_binary_layer(c, s, rng):
    """Where(x >= 0, 1, -1) -> Conv with ±1 weights -> BatchNormalization."""
    inits = {"zero": np.array(0, F32), "one": np.array(1, F32), "mone": np.array(-1, F32),
             "w": _pm1(rng, (c, c, 3, 3)), "sc": rng.uniform(0.5, 2, c).astype(F32),
             "bi": rng.normal(size=c).astype(F32), "mu": rng.normal(size=c).astype(F32),
             "va": rng.uniform(0.5, 2, c).astype(F32)}
    nodes = [helper.make_node("GreaterOrEqual", ["x", "zero"], ["g"]),
             helper.make_node("Where", ["g", "one", "mone"], ["q"]),
             helper.make_node("Conv", ["q", "w"], ["h"], pads=[1, 1, 1, 1]),
             helper.make_node("BatchNormalization", ["h", "sc", "bi", "mu", "va"], ["y"])]
    shape = [1, c, s, s]
    return (_model(nodes, "x", TensorProto.FLOAT, "y", TensorProto.FLOAT, shape, shape, inits),
            rng.standard_normal(shape).astype(F32))


def fp32_layer(c, s, rng):
    inits = {"w": (rng.standard_normal((c, c, 3, 3)) / np.sqrt(9 * c)).astype(F32)}
    nodes = [helper.make_node("Conv", ["x", "w"], ["y"], pads=[1, 1, 1, 1])]
    shape = [1, c, s, s]
    return (_model(nodes, "x", TensorProto.FLOAT, "y", TensorProto.FLOAT, shape, shape, inits),
            rng.standard_normal(shape).astype(F32))


def binary_cnn():
    """examples/binary_cnn.py as a module: its networks, and the timing both use."""
    spec = importlib.util.spec_from_file_location("binary_cnn", ROOT / "examples" / "binary_cnn.py")
    cnn = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(cnn)
    return cnn


def median_s(fn, runs: int) -> float:
    return binary_cnn().median_s(fn, runs)


def qc_time(model, x, runs: int) -> float:
    import qc

    lib = os.path.join(tempfile.mkdtemp(prefix="qc-bench-binary-"), "m.so")
    qc.compile(model, lib)
    with qc.load(lib, threads=1) as m:
        return median_s(lambda: m.run({"x": x}), runs)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--size", type=int, default=56)
    ap.add_argument("--channels", type=int, default=128)
    args = ap.parse_args(argv)
    c, s, rng = args.channels, args.size, np.random.default_rng(0)

    print(f"3x3 convolution {c} -> {c} channels, {s}x{s}, padding 1 (1 thread, median of {args.runs})")
    t_fp32 = qc_time(*fp32_layer(c, s, rng), args.runs)
    rows = [("qc fp32 conv", t_fp32),
            ("qc binary, bits in -> bits out", qc_time(*packed_layer(c, s, rng), args.runs)),
            ("qc binary, float in -> float out", qc_time(*float_binary_layer(c, s, rng), args.runs))]
    for name, t in rows:
        print(f"  {name:34} {t * 1e3:8.3f} ms   {t_fp32 / t:5.1f}x vs fp32")

    cnn = binary_cnn()
    print(f"examples/binary_cnn.py, 1x3x64x64 (1 thread, median of {args.runs}; outputs checked at 1e-4)")
    for variant in ("binary", "2bit"):
        r = cnn.run(variant, args.runs, 64)
        print(f"  {variant:8} qc {r['qc_ms']:7.3f} ms   onnxruntime float {r['ort_ms']:7.3f} ms   "
              f"{r['ratio']:5.1f}x")


if __name__ == "__main__":
    main()
