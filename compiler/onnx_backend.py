"""qc as an ONNX backend (`onnx.backend.base.Backend`), for ONNX's test suites.

    import qc.onnx_backend as backend
    rep = backend.prepare(model)              # compiles to a temporary .so
    outputs = rep.run([x, y])                 # positional, in graph-input order
    outputs = backend.run_model(model, [x])   # both at once

`prepare` compiles with `qc.compile` (keyword options such as `target` or
`input_shapes` pass through) into a temporary directory and loads the library
with `qc.load`; the directory goes away with the rep. Only the CPU device
exists. Inputs are the graph inputs that are not initializers, as ONNX's
runner feeds them; outputs come back in graph-output order.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from typing import Any, Sequence

import numpy as np
import onnx
from onnx.backend.base import Backend, BackendRep, Device, DeviceType, namedtupledict

import qc
from qc.runtime import InputError


class QcRep(BackendRep):
    """A compiled model, loaded; `run` feeds it and returns the outputs."""

    def __init__(self, library: str, workdir: str, output_names: Sequence[str]):
        self._workdir = workdir
        self.model = qc.load(library)
        self.output_names = list(output_names)

    def run(self, inputs: Any, **kwargs: Any) -> tuple[np.ndarray, ...]:
        """inputs: a list (graph-input order), a dict by name, or one array."""
        del kwargs  # ONNX's runner passes none that matter to a CPU compiler
        names = [t.name for t in self.model.inputs]
        if isinstance(inputs, dict):
            feeds = dict(inputs)
        else:
            if isinstance(inputs, np.ndarray):
                inputs = [inputs]
            inputs = list(inputs)
            if len(inputs) != len(names):
                raise InputError(f"model takes {len(names)} input(s), got {len(inputs)}")
            feeds = dict(zip(names, inputs))
        outs = self.model.run(feeds)
        ordered = [outs[n] for n in self.output_names]
        return namedtupledict("Outputs", self.output_names)(*ordered)

    def close(self) -> None:
        self.model.close()
        shutil.rmtree(self._workdir, ignore_errors=True)

    def __del__(self):
        if getattr(self, "_workdir", None):
            self.close()


class QcBackend(Backend):
    @classmethod
    def is_compatible(cls, model: onnx.ModelProto, device: str = "CPU", **kwargs: Any) -> bool:
        return cls.supports_device(device)

    @classmethod
    def prepare(cls, model: onnx.ModelProto, device: str = "CPU", **kwargs: Any) -> QcRep:
        """Compiles `model` for this machine; raises qc.QcError if it cannot."""
        if not cls.supports_device(device):
            raise qc.OptionError(f"device '{device}': qc compiles for the CPU only")
        options = {k: kwargs[k] for k in ("target", "input_shapes", "pipeline") if k in kwargs}
        workdir = tempfile.mkdtemp(prefix="qc-backend-")
        try:
            library = os.path.join(workdir, "model.so")
            qc.compile(model, library, **options)
            return QcRep(library, workdir, [o.name for o in model.graph.output])
        except BaseException:
            shutil.rmtree(workdir, ignore_errors=True)
            raise

    @classmethod
    def run_model(cls, model: onnx.ModelProto, inputs: Any, device: str = "CPU", **kwargs: Any):
        rep = cls.prepare(model, device, **kwargs)
        try:
            return rep.run(inputs)
        finally:
            rep.close()

    @classmethod
    def run_node(cls, node: onnx.NodeProto, inputs: Any, device: str = "CPU",
                 outputs_info: Sequence[tuple[np.dtype, tuple[int, ...]]] | None = None, **kwargs: Any):
        """One node as a model: its inputs typed from the arrays given, its
        outputs from `outputs_info` (dtype, shape) when given, else inferred."""
        super().run_node(node, inputs, device=device, outputs_info=outputs_info, **kwargs)
        arrays = [np.asarray(a) for a in inputs]
        names = [n for n in node.input if n]
        if len(names) != len(arrays):
            raise InputError(f"node takes {len(names)} input(s), got {len(arrays)}")
        graph_inputs = [onnx.helper.make_tensor_value_info(n, _elem_type(a.dtype), a.shape)
                        for n, a in zip(names, arrays)]
        if outputs_info is not None:
            graph_outputs = [onnx.helper.make_tensor_value_info(n, _elem_type(np.dtype(dt)), shape)
                             for n, (dt, shape) in zip(node.output, outputs_info)]
        else:
            graph_outputs = [onnx.helper.make_empty_tensor_value_info(n) for n in node.output if n]
        graph = onnx.helper.make_graph([node], "node", graph_inputs, graph_outputs)
        opset = kwargs.get("opset_version", onnx.defs.onnx_opset_version())
        model = onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", opset)])
        if outputs_info is None:
            model = onnx.shape_inference.infer_shapes(model, strict_mode=True)
        return cls.run_model(model, arrays, device)

    @classmethod
    def supports_device(cls, device: str) -> bool:
        try:
            return Device(device).type == DeviceType.CPU
        except AttributeError:  # an unknown device name
            return False


def _elem_type(dtype: np.dtype) -> int:
    return onnx.helper.np_dtype_to_tensor_dtype(np.dtype(dtype))


is_compatible = QcBackend.is_compatible
prepare = QcBackend.prepare
run_model = QcBackend.run_model
run_node = QcBackend.run_node
supports_device = QcBackend.supports_device
