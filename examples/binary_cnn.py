"""A small binary CNN and its 2-bit variant, built with onnx.helper, compiled
with qc, checked against onnxruntime and timed against it.

    python examples/binary_cnn.py [--variant binary|2bit|both] [--runs N] [--size S]

The network (Bi-Real / QuickNet style): a float stem (3x3 conv, stride 2,
BatchNorm, ReLU), binary blocks on a float residual stream, a float head
(global average pool, Gemm). A block is
    y = x + BN2(bconv2(q(BN1(bconv1(q(x))))))
where q is the activation quantizer of the variant: Larq's ste_sign exported
as Where(x >= 0, 1, -1) (binary), or four levels Round(Clip(x, 0, 1) * 3) / 3
(2bit, Riptide-style), and the bconvs have ±1 weights. qc turns every bconv
into a bit-packed xor/popcount layer; in the binary variant BN1 and the
second quantizer collapse into one threshold per channel, so bconv1 writes
bits that bconv2 reads directly; BN2 becomes one multiply-add per channel,
which on AVX2 the GEMM kernel of bconv2 applies to its counts in registers,
with the residual Add, writing the float stream directly.
Stage 2 starts with a stride-2 binary conv that doubles the channels.

Both variants use fixed seeds. Outputs: the binary layers are exact (integers
in float); the float stem, head and the BatchNorm glue differ from
onnxruntime by rounding only (checked at 1e-4 relative).
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
import onnx  # noqa: E402
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

F32 = np.float32


class _Graph:
    def __init__(self, seed: int):
        self.rng = np.random.default_rng(seed)
        self.nodes, self.inits, self.n = [], {}, 0

    def const(self, value) -> str:
        self.n += 1
        name = f"c{self.n}"
        self.inits[name] = np.asarray(value)
        return name

    def op(self, op_type: str, inputs, **attrs) -> str:
        self.n += 1
        out = f"{op_type.lower()}{self.n}"
        self.nodes.append(helper.make_node(op_type, inputs, [out], name=out, **attrs))
        return out

    def bn(self, x: str, ch: int) -> str:
        r = self.rng
        params = [r.uniform(0.5, 1.5, ch), r.normal(0, 0.3, ch), r.normal(0, 1, ch), r.uniform(0.5, 2, ch)]
        return self.op("BatchNormalization", [x, *[self.const(p.astype(F32)) for p in params]])

    def quant(self, x: str, variant: str) -> str:
        if variant == "2bit":
            c = self.op("Clip", [x, self.const(F32(0)), self.const(F32(1))])
            r = self.op("Round", [self.op("Mul", [c, self.const(F32(3))])])
            return self.op("Div", [r, self.const(F32(3))])
        ge = self.op("GreaterOrEqual", [x, self.const(F32(0))])
        return self.op("Where", [ge, self.const(F32(1)), self.const(F32(-1))])

    def bconv(self, x: str, cin: int, cout: int, variant: str, stride: int = 1) -> str:
        w = np.where(self.rng.random((cout, cin, 3, 3)) < 0.5, -1.0, 1.0).astype(F32)
        return self.op("Conv", [self.quant(x, variant), self.const(w)], pads=[1, 1, 1, 1], strides=[stride] * 2)

    def conv(self, x: str, cin: int, cout: int, stride: int) -> str:
        w = (self.rng.standard_normal((cout, cin, 3, 3)) / np.sqrt(cin * 9)).astype(F32)
        return self.op("Conv", [x, self.const(w)], pads=[1, 1, 1, 1], strides=[stride] * 2)


def build(variant: str = "binary", size: int = 64, width: int = 64, classes: int = 10, seed: int = 0):
    """The network for `variant` ("binary" or "2bit") on a 3 x size x size image."""
    g = _Graph(seed)
    x = g.op("Relu", [g.bn(g.conv("x", 3, width, 2), width)])  # float stem
    ch = width
    for stage in range(2):
        if stage:  # a binary downsampling conv doubles the channels
            x = g.bn(g.bconv(x, ch, 2 * ch, variant, stride=2), 2 * ch)
            ch *= 2
        for _ in range(2):
            h = g.bn(g.bconv(x, ch, ch, variant), ch)
            h = g.bn(g.bconv(h, ch, ch, variant), ch)
            x = g.op("Add", [x, h])  # the float residual stream
    pooled = g.op("Flatten", [g.op("GlobalAveragePool", [x])])
    w = (g.rng.standard_normal((classes, ch)) / np.sqrt(ch)).astype(F32)
    y = g.op("Gemm", [pooled, g.const(w), g.const(np.zeros(classes, F32))], transB=1)
    graph = helper.make_graph(
        g.nodes, f"{variant}_cnn", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, size, size])],
        [helper.make_tensor_value_info(y, TensorProto.FLOAT, [1, classes])],
        [numpy_helper.from_array(v, k) for k, v in g.inits.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    onnx.checker.check_model(model, full_check=True)
    return model


def median_s(fn, runs: int) -> float:
    fn()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def run(variant: str, runs: int, size: int) -> dict:
    """Compiles one variant, checks it against onnxruntime, times both (one thread)."""
    import onnxruntime as ort

    import qc

    model = build(variant, size)
    x = np.random.default_rng(1).standard_normal((1, 3, size, size)).astype(F32)
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    sess = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    want = sess.run(None, {"x": x})[0]
    lib = os.path.join(tempfile.mkdtemp(prefix="qc-binary-"), f"{variant}.so")
    qc.compile(model, lib)
    with qc.load(lib, threads=1) as m:
        got = next(iter(m.run({"x": x}).values()))
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * float(np.abs(want).max()))
        t_qc = median_s(lambda: m.run({"x": x}), runs)
    t_ort = median_s(lambda: sess.run(None, {"x": x}), runs)
    return {"variant": variant, "qc_ms": t_qc * 1e3, "ort_ms": t_ort * 1e3, "ratio": t_ort / t_qc,
            "max_abs_diff": float(np.abs(got - want).max())}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--variant", choices=["binary", "2bit", "both"], default="both")
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--size", type=int, default=64, help="input height and width")
    args = ap.parse_args(argv)
    variants = ["binary", "2bit"] if args.variant == "both" else [args.variant]
    print(f"{'variant':8} {'qc ms':>8} {'ort ms':>8} {'ort/qc':>7} {'max |diff|':>11}   (1 thread, median of {args.runs})")
    for v in variants:
        r = run(v, args.runs, args.size)
        print(f"{v:8} {r['qc_ms']:8.3f} {r['ort_ms']:8.3f} {r['ratio']:6.1f}x {r['max_abs_diff']:11.2e}")


if __name__ == "__main__":
    main()
