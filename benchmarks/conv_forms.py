"""Single-op latency of convolution and matmul forms: qc vs onnxruntime.

    python benchmarks/conv_forms.py [--runs N] [--only NAME,...]

One model per form (strides, dilation, groups, depthwise, 1-D, a 7x7 stem,
a channel Split feeding 1x1 convs, max and average pooling, MobileNet v2
inverted residual blocks, transposed Gemm operands, batched MatMuls),
built with onnx.helper from fixed seeds. Both engines run one thread,
alternately run by run (a run: 10 calls); printed are the medians
and qc's speed as onnxruntime time / qc time (> 1: qc is faster). A form far
below 1 is one that misses the GEMM and depthwise kernels.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

F32 = np.float32


def _model(nodes, inputs: dict, inits: dict):
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    ins = [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in inputs.items()]
    outs = [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)]
    graph = helper.make_graph(nodes, "form", ins, outs, [numpy_helper.from_array(v, n) for n, v in inits.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8)
    return onnx.shape_inference.infer_shapes(model)


def forms() -> dict:
    """name -> (model, feeds)."""
    from onnx import helper

    rng = np.random.default_rng(0)
    out = {}

    def conv(name, x_shape, w_shape, **attrs):
        w = rng.normal(0, 0.1, w_shape).astype(F32)
        out[name] = (_model([helper.make_node("Conv", ["x", "w"], ["y"], **attrs)], {"x": x_shape}, {"w": w}),
                     {"x": rng.normal(0, 1, x_shape).astype(F32)})

    def matmul(name, a_shape, b_shape, const_b=True, op="MatMul", **attrs):
        b = rng.normal(0, 0.1, b_shape).astype(F32)
        inputs, feeds = {"a": a_shape}, {"a": rng.normal(0, 1, a_shape).astype(F32)}
        if not const_b:
            inputs["b"], feeds["b"] = b_shape, b
        node = helper.make_node(op, ["a", "b"], ["y"], **attrs)
        out[name] = (_model([node], inputs, {"b": b} if const_b else {}), feeds)

    conv("conv1x1_stride2", (1, 64, 56, 56), (128, 64, 1, 1), strides=[2, 2])
    conv("conv3x3_stride2", (1, 64, 56, 56), (128, 64, 3, 3), strides=[2, 2], pads=[1, 1, 1, 1])
    conv("conv3x3_dilation2", (1, 64, 28, 28), (64, 64, 3, 3), dilations=[2, 2], pads=[2, 2, 2, 2])
    conv("conv3x3_groups4", (1, 64, 28, 28), (64, 16, 3, 3), group=4, pads=[1, 1, 1, 1])
    conv("depthwise3x3_stride2", (1, 96, 56, 56), (96, 1, 3, 3), group=96, strides=[2, 2], pads=[1, 1, 1, 1])
    conv("conv5x5", (1, 32, 28, 28), (32, 32, 5, 5), pads=[2, 2, 2, 2])
    conv("conv7x7_stride2_stem", (1, 3, 224, 224), (64, 3, 7, 7), strides=[2, 2], pads=[3, 3, 3, 3])
    conv("conv1d_k3", (1, 64, 1000), (64, 64, 3), pads=[1, 1])
    # A channel split feeding four 1x1 convs (ShuffleNet v2, Inception branches).
    g, c, hw = 4, 272, 14
    inits = {"sp": np.array([c // g] * g, np.int64)}
    nodes = [helper.make_node("Split", ["x", "sp"], [f"x{i}" for i in range(g)], axis=1)]
    for i in range(g):
        inits[f"w{i}"] = rng.normal(0, 0.1, (c // g, c // g, 1, 1)).astype(F32)
        nodes.append(helper.make_node("Conv", [f"x{i}", f"w{i}"], [f"y{i}"]))
    nodes.append(helper.make_node("Concat", [f"y{i}" for i in range(g)], ["y"], axis=1))
    out["split_conv1x1_concat"] = (_model(nodes, {"x": (1, c, hw, hw)}, inits),
                                   {"x": rng.normal(0, 1, (1, c, hw, hw)).astype(F32)})
    # Pooling (qc-pool-window): SqueezeNet's 3x3 stride-2 max pool, and a
    # 3x3 average pool with padding (its pad is a copy of the input here).
    for name, op, shape, attrs in (("maxpool3x3_stride2", "MaxPool", (1, 64, 111, 111), dict(strides=[2, 2])),
                                   ("avgpool3x3_pad1", "AveragePool", (1, 64, 56, 56), dict(pads=[1, 1, 1, 1]))):
        out[name] = (_model([helper.make_node(op, ["x"], ["y"], kernel_shape=[3, 3], **attrs)], {"x": shape}, {}),
                     {"x": rng.normal(0, 1, shape).astype(F32)})
    # MobileNet v2 inverted residual blocks (1x1 expand, Clip, 3x3 depthwise,
    # Clip, 1x1 project, + x where shapes allow), at the later stages' small
    # maps: on 7 x 7 and 14 x 14 the 1x1 convs run transposed
    # (qc-narrow-gemm), the depthwise between them channels-last on their
    # pixel-major rows (qc-channels-last-depthwise); on 56 x 56 all in NCHW.
    for name, (cin, hw, e, cout, s) in {"invres_24x56_e144_s2": (24, 56, 144, 32, 2),
                                        "invres_64x14_e384": (64, 14, 384, 64, 1),
                                        "invres_96x14_e576_s2": (96, 14, 576, 160, 2),
                                        "invres_160x7_e960": (160, 7, 960, 160, 1)}.items():
        inits = {"w1": rng.normal(0, 0.1, (e, cin, 1, 1)), "b1": rng.normal(0, 0.1, e),
                 "wd": rng.normal(0, 0.1, (e, 1, 3, 3)), "bd": rng.normal(0, 0.1, e),
                 "w2": rng.normal(0, 0.1, (cout, e, 1, 1)), "b2": rng.normal(0, 0.1, cout),
                 "lo": np.array(0.0), "hi": np.array(6.0)}
        nodes = [helper.make_node("Conv", ["x", "w1", "b1"], ["a"]),
                 helper.make_node("Clip", ["a", "lo", "hi"], ["a6"]),
                 helper.make_node("Conv", ["a6", "wd", "bd"], ["d"], group=e, pads=[1, 1, 1, 1], strides=[s, s]),
                 helper.make_node("Clip", ["d", "lo", "hi"], ["d6"]),
                 helper.make_node("Conv", ["d6", "w2", "b2"], ["p" if s == 1 and cin == cout else "y"])]
        if s == 1 and cin == cout:
            nodes.append(helper.make_node("Add", ["p", "x"], ["y"]))
        out[name] = (_model(nodes, {"x": (1, cin, hw, hw)}, {k: v.astype(F32) for k, v in inits.items()}),
                     {"x": rng.normal(0, 1, (1, cin, hw, hw)).astype(F32)})
    matmul("gemm_transB", (64, 256), (512, 256), op="Gemm", transB=1)
    matmul("gemm_transA", (256, 64), (256, 512), op="Gemm", transA=1)
    matmul("matmul_broadcast_b", (8, 64, 128), (128, 256))
    matmul("matmul_batched_runtime", (8, 64, 128), (8, 128, 64), const_b=False)
    return out


def main(argv=None) -> None:
    import onnxruntime as ort

    import qc

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=15, help="alternating runs of 10 calls each")
    ap.add_argument("--only", default="", help="comma-separated form names (default: all)")
    args = ap.parse_args(argv)
    table = forms()
    names = [n for n in args.only.split(",") if n] or list(table)
    unknown = [n for n in names if n not in table]
    if unknown:
        ap.error(f"unknown form(s) {', '.join(unknown)}; forms: {', '.join(table)}")
    so = ort.SessionOptions()
    so.intra_op_num_threads = so.inter_op_num_threads = 1
    print(f"1 thread, median of {args.runs} alternating runs of 10 calls; qc speed = onnxruntime time / qc time")
    with tempfile.TemporaryDirectory(prefix="qc-bench-forms-") as work:
        for name in names:
            model, feeds = table[name]
            lib = os.path.join(work, f"{name}.so")
            qc.compile(model, lib)
            with qc.load(lib) as m:
                sess = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
                engines = {"qc": lambda: m.run(feeds), "ort": lambda: sess.run(None, feeds)}
                times = {k: [] for k in engines}
                for fn in engines.values():
                    fn()
                for _ in range(args.runs):
                    for k, fn in engines.items():
                        t0 = time.perf_counter()
                        for _ in range(10):
                            fn()
                        times[k].append((time.perf_counter() - t0) / 10)
                med = {k: statistics.median(v) for k, v in times.items()}
            print(f"  {name:26} qc {med['qc'] * 1e3:8.3f} ms   onnxruntime {med['ort'] * 1e3:8.3f} ms   "
                  f"qc speed {med['ort'] / med['qc']:5.2f}")


if __name__ == "__main__":
    main()
