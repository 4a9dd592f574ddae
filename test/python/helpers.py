"""Shared by the numerics tests: build, compile and run models; reference runs."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper

import qc

ONNX_TYPE = {np.dtype(k): v for k, v in {
    np.float32: TensorProto.FLOAT, np.float64: TensorProto.DOUBLE, np.int8: TensorProto.INT8,
    np.uint8: TensorProto.UINT8, np.int32: TensorProto.INT32, np.int64: TensorProto.INT64,
    np.bool_: TensorProto.BOOL, np.float16: TensorProto.FLOAT16,
}.items()}


def host_tile():
    """The f32 GEMM register tile qc picks for this machine (AVX2: 6x16 of
    8 lanes, AVX-512: 10x32 of 16): kernel names and where a row holds a
    vector follow it."""
    from qc.passes.pipelines import gemm_tile
    from qc.targets import host

    return gemm_tile(host())


def cpu_flags() -> set[str]:
    """The CPU's feature flags as the kernel reports them (/proc/cpuinfo:
    x86 "flags", AArch64 "Features"), independent of LLVM's host detection."""
    from pathlib import Path

    flags = set()
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.split(":")[0].strip() in ("flags", "Features"):
            flags |= set(line.split(":", 1)[1].split())
    return flags


def make_model(nodes, inputs: dict, outputs: dict, initializers: dict | None = None, opset: int = 17):
    """A model from nodes; inputs/outputs map name -> (dtype, shape)."""
    ins = [helper.make_tensor_value_info(n, ONNX_TYPE[np.dtype(d)], s) for n, (d, s) in inputs.items()]
    outs = [helper.make_tensor_value_info(n, ONNX_TYPE[np.dtype(d)], s) for n, (d, s) in outputs.items()]
    inits = [onnx.numpy_helper.from_array(np.asarray(v), n) for n, v in (initializers or {}).items()]
    graph = helper.make_graph(nodes, "test", ins, outs, inits)
    # IR version 8 keeps the model loadable by the onnxruntime used as the reference.
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], ir_version=8)


def compile_and_run(model: onnx.ModelProto, feeds: dict, tmp_path, **options) -> dict:
    lib = os.path.join(tmp_path, "model.so")
    qc.compile(model, lib, **options)
    with qc.load(lib) as m:
        return m.run(feeds)


def compile_qgemm(model: onnx.ModelProto, tmp_path, name: str = "model", **options) -> tuple[str, set[str]]:
    """Compiles model (qc.compile's options); (the library, the integer
    GEMM kernels its gemm stage calls)."""
    import glob
    import re

    lib = os.path.join(tmp_path, f"{name}.so")
    dump = os.path.join(tmp_path, f"ir-{name}")
    qc.compile(model, lib, dump_ir=dump, **options)
    (gemm,) = glob.glob(os.path.join(dump, "*-gemm.mlir"))
    with open(gemm) as f:
        return lib, set(re.findall(r"call @(qc_qgemm_\w+)", f.read()))


def ort_run(model: onnx.ModelProto, feeds: dict) -> dict:
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    sess = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    return dict(zip(names, sess.run(None, feeds)))


def check_against_ort(model, feeds, tmp_path, rtol=1e-5, atol=1e-6, **options) -> dict:
    before = {k: np.array(v, copy=True) for k, v in feeds.items()}
    got = compile_and_run(model, feeds, tmp_path, **options)
    for k, v in before.items():  # the model must not write into its inputs
        np.testing.assert_array_equal(np.asarray(feeds[k]), v, err_msg=f"input {k} was modified")
    want = ort_run(model, feeds)
    assert set(got) == set(want)
    for name in want:
        assert got[name].dtype == want[name].dtype, name
        assert got[name].shape == want[name].shape, name
        if np.issubdtype(want[name].dtype, np.floating):
            np.testing.assert_allclose(got[name], want[name], rtol=rtol, atol=atol, err_msg=name)
        else:
            np.testing.assert_array_equal(got[name], want[name], err_msg=name)
    return got


def with_pass_options(pipeline, cls, **changes):
    """The pipeline with each pass of type cls given these options
    (dataclasses.replace): e.g. a reference form a fast path is compared to."""
    import dataclasses

    def change(p):
        return dataclasses.replace(p, **changes) if isinstance(p, cls) else p

    return dataclasses.replace(pipeline, stages=tuple(
        dataclasses.replace(s, passes=tuple(change(p) for p in s.passes)) for s in pipeline.stages))


def direct_convs(target: str = "host"):
    """The target's default pipeline with every convolution left direct (no
    Winograd, qc-winograd-conv): for the tests of the GEMM path's own
    features on 3x3 convolutions that would otherwise become Winograd."""
    from qc.passes.pipelines import default_pipeline
    from qc.passes.winograd_conv import WinogradConv
    from qc.targets import resolve

    return with_pass_options(default_pipeline(resolve(target)), WinogradConv, min_tiles=1 << 30,
                             min_tiles_f4=1 << 30)


def example_module(name: str):
    """examples/NAME.py as a module (make_models, quantize_cnn, ...)."""
    path = Path(__file__).resolve().parents[2] / "examples" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod
