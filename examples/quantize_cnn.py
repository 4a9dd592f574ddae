"""Quantize the example CNN blocks to int8 with onnxruntime's quantizer, compile
them with qc, and compare with onnxruntime in quantization steps.

    python examples/quantize_cnn.py [MODEL.onnx ...]
        (default: examples/mobilenet_block.onnx and examples/resnet_block.onnx;
         run examples/make_models.py first if they are missing)

Each float model is quantized by onnxruntime.quantization.quantize_static in
the QDQ format, per channel, with fixed-seed calibration data (normal inputs
of the model's shape). qc fuses each DequantizeLinear -> op -> QuantizeLinear
group into an integer op (the report line shows how many); the quantized
model then runs on integers from its first QuantizeLinear to its last
DequantizeLinear. The reference is onnxruntime with graph optimizations off
(ORT_DISABLE_ALL), which runs the QDQ graph as written: float ops between
exact quantize/dequantize steps, the ONNX semantics.

Each quantized layer is within one step of the reference given the same
inputs: qc's integer sums are exact where the reference rounds float32 sums,
so a value within a float rounding error of a rounding tie can land one step
apart. A later layer sees such a rare difference scaled by its input step
over its output step (a residual Add whose output step is half its input's
turns it into two), so a handful of the final outputs may be more than one
step apart; the script prints how many.
"""

from __future__ import annotations

import os
import sys
import tempfile

import numpy as np
import onnx

HERE = os.path.dirname(os.path.abspath(__file__))
CALIBRATION_BATCHES = 8


def input_spec(model: onnx.ModelProto) -> tuple[str, tuple[int, ...]]:
    inits = {i.name for i in model.graph.initializer}
    (x,) = [i for i in model.graph.input if i.name not in inits]
    return x.name, tuple(d.dim_value for d in x.type.tensor_type.shape.dim)


def quantize(float_path: str, out_path: str, fmt: str = "QDQ", activations: str = "int8",
             preprocess: bool = False) -> onnx.ModelProto:
    """quantize_static, per channel, calibrated on fixed-seed normal inputs:
    fmt QDQ or QOperator (QLinearConv, ...), int8 or uint8 activations
    (int8 weights). preprocess: first run onnxruntime's quant_pre_process,
    the step its documentation recommends, whose graph optimizations fold
    each BatchNormalization into its Conv (one requantization per layer
    instead of two); without it, the BatchNormalizations stay and are
    quantized on their own."""
    import logging

    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    logging.getLogger().setLevel(logging.ERROR)  # its advice to pre-process: asked for by `preprocess`
    if preprocess:
        from onnxruntime.quantization.shape_inference import quant_pre_process

        pre = os.path.splitext(out_path)[0] + ".pre.onnx"
        # Symbolic shape inference needs sympy; these blocks have static shapes.
        quant_pre_process(float_path, pre, skip_symbolic_shape=True)
        float_path = pre

    name, shape = input_spec(onnx.load(float_path))

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.batches = iter([{name: np.random.default_rng(seed).standard_normal(shape).astype(np.float32)}
                                 for seed in range(CALIBRATION_BATCHES)])

        def get_next(self):
            return next(self.batches, None)

    act = {"int8": QuantType.QInt8, "uint8": QuantType.QUInt8}[activations]
    quantize_static(float_path, out_path, Reader(), quant_format=getattr(QuantFormat, fmt), per_channel=True,
                    activation_type=act, weight_type=QuantType.QInt8)
    return onnx.load(out_path)


def reference(model: onnx.ModelProto, feeds: dict) -> dict:
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    so.intra_op_num_threads = 1
    sess = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    return dict(zip([o.name for o in sess.get_outputs()], sess.run(None, feeds)))


def output_step(model: onnx.ModelProto, output: str) -> float:
    """The scale of the DequantizeLinear that produces `output`: one quantization step."""
    inits = {i.name: i for i in model.graph.initializer}
    (dq,) = [n for n in model.graph.node if n.op_type == "DequantizeLinear" and n.output[0] == output]
    return float(onnx.numpy_helper.to_array(inits[dq.input[1]]))


def run(float_path: str, work: str) -> bool:
    import qc
    from qc.session import compile_model

    stem = os.path.splitext(os.path.basename(float_path))[0]
    qmodel = quantize(float_path, os.path.join(work, f"{stem}.int8.onnx"))
    lib = os.path.join(work, f"{stem}.int8.so")
    res = compile_model(qmodel, lib, report=True)
    fused = res.op_report.table().splitlines()[-1]
    name, shape = input_spec(qmodel)
    x = np.random.default_rng(1234).standard_normal(shape).astype(np.float32)
    with qc.load(lib) as m:
        got = m.run({name: x})
    want = reference(qmodel, {name: x})
    print(f"{stem}: {fused}")
    ok = True
    for out, w in want.items():
        step = output_step(qmodel, out)
        steps = np.rint(np.abs(got[out] - w) / step).astype(np.int64)
        counts = np.bincount(steps.ravel())
        spread = "".join(f"; {k} step{'s' if k != 1 else ''} off: {n}" for k, n in enumerate(counts) if k and n)
        print(f"  {out} {list(w.shape)} (step {step:.4g}): equal to onnxruntime: {counts[0]} of {steps.size}{spread}")
        ok &= bool(np.mean(steps <= 1) >= 0.999)  # a real error would be off nearly everywhere
    return ok


def main(argv: list[str]) -> int:
    paths = argv or [os.path.join(HERE, f"{m}.onnx") for m in ("mobilenet_block", "resnet_block")]
    missing = [p for p in paths if not os.path.exists(p)]
    if missing:
        print(f"missing {', '.join(missing)}: run python examples/make_models.py first", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory(prefix="qc-int8-") as work:
        ok = all([run(p, work) for p in paths])
    print("ok" if ok else "MORE THAN 0.1% OF THE OUTPUTS ARE MORE THAN ONE STEP OFF")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
