"""ONNX model → MLIR `func.func @qc_model` on tensors.

load → onnx.checker → bind user shapes → shape inference → one importer call
per node. Nodes whose inputs are all compile-time constants (shape
subgraphs, weight transposes) are evaluated with onnx.reference instead of
being imported, so their results become constants.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np
import onnx
from onnx import numpy_helper

from qc.errors import ModelError, UnsupportedOp
from qc.mlir import func, ir

from . import builder as b
from . import graph_opt, qmath
from .registry import DEFAULT_DOMAINS, load_all, op_key

ENTRY = "qc_model"

ONNX_DTYPES: dict[int, np.dtype] = {
    onnx.TensorProto.FLOAT: np.dtype(np.float32),
    onnx.TensorProto.DOUBLE: np.dtype(np.float64),
    onnx.TensorProto.FLOAT16: np.dtype(np.float16),
    onnx.TensorProto.INT8: np.dtype(np.int8),
    onnx.TensorProto.UINT8: np.dtype(np.uint8),
    onnx.TensorProto.INT16: np.dtype(np.int16),
    onnx.TensorProto.UINT16: np.dtype(np.uint16),
    onnx.TensorProto.INT32: np.dtype(np.int32),
    onnx.TensorProto.UINT32: np.dtype(np.uint32),
    onnx.TensorProto.INT64: np.dtype(np.int64),
    onnx.TensorProto.UINT64: np.dtype(np.uint64),
    onnx.TensorProto.BOOL: np.dtype(np.bool_),
}



@dataclass(frozen=True)
class TensorSpec:
    """One model input or output, as the ABI describes it."""

    name: str
    dtype: np.dtype
    shape: tuple[int, ...]


@dataclass
class ImportedModel:
    module: ir.Module
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    op_counts: dict[str, int] = field(default_factory=dict)  # op type → nodes imported
    folded: int = 0  # nodes evaluated at compile time
    graph_report: graph_opt.GraphReport | None = None  # the graph-level clean-up
    model: onnx.ModelProto | None = None  # the graph as imported: cleaned up, QDQ groups fused


class ImportContext:
    """What an importer sees: values by ONNX name, known constants, the opset."""

    def __init__(self, opset: int):
        self.opset = opset
        self._values: dict[str, b.T] = {}
        self._consts: dict[str, np.ndarray] = {}

    def has(self, name: str) -> bool:
        return name in self._values or name in self._consts

    def get(self, name: str) -> b.T:
        """The tensor named `name`; a known constant is materialized on first use."""
        if name not in self._values:
            assert name in self._consts, f"no value named {name!r}"
            self._values[name] = b.constant(self._consts[name])
        return self._values[name]

    def const(self, name: str) -> np.ndarray | None:
        """The compile-time value of `name`, or None if it is computed at run time."""
        return self._consts.get(name)

    def set(self, name: str, value: b.T) -> None:
        self._values[name] = value

    def set_const(self, name: str, array: np.ndarray) -> None:
        self._consts[name] = array


def load_model(path_or_model) -> onnx.ModelProto:
    """Loads a .onnx (binary) or .onnxtxt (ONNX text format) file, with errors
    that say what is wrong with the file."""
    if isinstance(path_or_model, onnx.ModelProto):
        return path_or_model
    path = os.fspath(path_or_model)
    if not os.path.exists(path):
        raise ModelError(f"{path}: no such file")
    if os.path.isdir(path):
        raise ModelError(f"{path}: is a directory, expected an .onnx file")
    if path.endswith((".onnxtxt", ".txt")):
        from onnx import parser

        try:
            with open(path, encoding="utf-8") as f:
                return parser.parse_model(f.read())
        except Exception as e:  # the parser raises a bare ParseError type
            raise ModelError(f"{path}: not a valid ONNX text model: {_first_line(e)}") from e
    with open(path, "rb") as f:
        data = f.read()
    if not data:
        raise ModelError(f"{path}: file is empty")
    try:
        model = onnx.load_model_from_string(data)
    except Exception as e:  # protobuf's DecodeError and friends
        raise ModelError(f"{path}: not a valid ONNX file (truncated or not protobuf): {_first_line(e)}") from e
    if not model.graph.node and not model.graph.output:
        raise ModelError(f"{path}: not a valid ONNX file (no graph found)")
    return model


def _first_line(e: Exception) -> str:
    arg = e.args[0] if len(e.args) == 1 else None
    # onnx's parser raises with the message as bytes
    s = (arg.decode("utf-8", "replace") if isinstance(arg, bytes) else str(e)).strip()
    return s.splitlines()[0] if s else type(e).__name__


def _default_opset(model: onnx.ModelProto) -> int:
    for imp in model.opset_import:
        if imp.domain in ("", "ai.onnx"):
            return imp.version
    raise ModelError("model imports no version of the default ONNX opset")


def bind_input_shapes(model: onnx.ModelProto, shapes: Mapping[str, Sequence[int]]) -> onnx.ModelProto:
    """Sets the dims of graph inputs from `--input-shape NAME=D0,D1,...`."""
    model = onnx.ModelProto.FromString(model.SerializeToString()) if shapes else model
    inits = {i.name for i in model.graph.initializer}
    inputs = {i.name: i for i in model.graph.input if i.name not in inits}
    for name, dims in shapes.items():
        if name not in inputs:
            raise ModelError(f"--input-shape: model has no input '{name}'; inputs: {', '.join(inputs) or 'none'}")
        tt = inputs[name].type.tensor_type
        if tt.HasField("shape") and len(tt.shape.dim) != len(dims):
            raise ModelError(
                f"--input-shape {name}: model input has rank {len(tt.shape.dim)}, got {len(dims)} dims"
            )
        tt.shape.Clear()
        for d in dims:
            tt.shape.dim.add().dim_value = int(d)
    return model


def _spec_of(vi: onnx.ValueInfoProto, what: str) -> TensorSpec:
    tt = vi.type.tensor_type
    if not vi.type.HasField("tensor_type"):
        raise ModelError(f"{what} '{vi.name}' is not a tensor; only tensor inputs and outputs are supported")
    if tt.elem_type not in ONNX_DTYPES:
        name = onnx.TensorProto.DataType.Name(tt.elem_type)
        raise ModelError(f"{what} '{vi.name}' has element type {name}, which qc does not support")
    if not tt.HasField("shape"):
        raise ModelError(f"{what} '{vi.name}' has no shape; bind it with --input-shape {vi.name}=D0,D1,...")
    dims = []
    for i, d in enumerate(tt.shape.dim):
        if not d.HasField("dim_value") or d.dim_value < 0:
            sym = f" ('{d.dim_param}')" if d.dim_param else ""
            raise ModelError(
                f"{what} '{vi.name}' has a dynamic dim {i}{sym}; "
                f"bind it with --input-shape {vi.name}=D0,D1,..."
            )
        dims.append(int(d.dim_value))
    return TensorSpec(vi.name, ONNX_DTYPES[tt.elem_type], tuple(dims))


def import_model(path_or_model, input_shapes: Mapping[str, Sequence[int]] | None = None,
                 exact_requant: bool = False) -> ImportedModel:
    """The whole frontend. Must be called inside an active ir.Context.
    `exact_requant`: requantize int8 results with the 64-bit product
    everywhere (qmath.exact_requant), not one 32-bit multiply where that
    form's error stays below qmath.WORD_ERROR steps."""
    model = load_model(path_or_model)
    model = bind_input_shapes(model, input_shapes or {})
    try:
        onnx.checker.check_model(model)
    except onnx.checker.ValidationError as e:
        raise ModelError(f"model is not valid ONNX: {_first_line(e)}") from e
    for node in model.graph.node:
        _check_domain(node, load_all())
    try:
        model = onnx.shape_inference.infer_shapes(model, strict_mode=True, data_prop=True)
    except Exception as e:
        raise ModelError(f"shape inference failed: {_first_line(e)}") from e
    inferred = model
    model, report = graph_opt.optimize(model, _default_opset(model))
    with qmath.exact_requant() if exact_requant else contextlib.nullcontext():
        result = _import_graph(model)
    result.graph_report = report
    result.model = _with_shapes_of(model, inferred)
    result.folded += report.folded
    return result


def _with_shapes_of(model: onnx.ModelProto, inferred: onnx.ModelProto) -> onnx.ModelProto:
    """`model` with the value shapes `inferred` knew and it lost: shape
    inference cannot see through qc's own ops (fused QDQ groups), whose
    outputs keep the names of the tensors they replace."""
    known = {vi.name for vi in [*model.graph.value_info, *model.graph.input, *model.graph.output]}
    missing = [vi for vi in inferred.graph.value_info if vi.name not in known]
    if not missing:
        return model
    out = onnx.ModelProto()
    out.CopyFrom(model)
    out.graph.value_info.extend(missing)
    return out


def _import_graph(model: onnx.ModelProto) -> ImportedModel:
    graph = model.graph
    ctx = ImportContext(_default_opset(model))
    importers = load_all()

    # IR-version-3 files list initializers among the inputs: they are constants.
    initializers = {init.name: init for init in graph.initializer}
    inputs = [_spec_of(vi, "input") for vi in graph.input if vi.name not in initializers]
    outputs = [_spec_of(vi, "output") for vi in graph.output]
    for spec in [*inputs, *outputs]:
        if 0 in spec.shape:
            raise ModelError(f"'{spec.name}' has a zero-sized dim {list(spec.shape)}; qc needs non-empty tensors")

    module = ir.Module.create()
    result = ImportedModel(module, inputs, outputs)
    with ir.InsertionPoint(module.body), ir.Location.unknown():
        fn_type = ir.FunctionType.get(
            [b.tensor_type(s.shape, s.dtype) for s in inputs],
            [b.tensor_type(s.shape, s.dtype) for s in outputs],
        )
        fn = func.FuncOp(ENTRY, fn_type)
        entry = fn.add_entry_block()
        with ir.InsertionPoint(entry):
            for spec, arg in zip(inputs, entry.arguments):
                ctx.set(spec.name, b.T(arg, spec.dtype))
            consts = {}
            for init in graph.initializer:
                arr = consts[init.name] = numpy_helper.to_array(init)
                if init.data_type not in ONNX_DTYPES:
                    raise ModelError(f"initializer '{init.name}' has an unsupported element type")
                ctx.set_const(init.name, arr)
            with qmath.exact_outputs(qmath.amplifying_reads(graph, consts)):
                for node in graph.node:
                    _import_node(ctx, node, importers, result)
            rets = []
            for spec in outputs:
                if not ctx.has(spec.name):
                    raise ModelError(f"output '{spec.name}' is not produced by any node")
                v = ctx.get(spec.name)
                if v.shape != spec.shape or v.dtype != spec.dtype:
                    raise ModelError(
                        f"output '{spec.name}': the graph declares {spec.dtype}{list(spec.shape)}, "
                        f"but it computes {v.dtype}{list(v.shape)}"
                    )
                rets.append(v.value)
            func.ReturnOp(rets)
    # A frontend bug must not reach the passes as invalid IR (or abort there).
    try:
        ok = module.operation.verify()
    except ir.MLIRError as e:
        raise AssertionError(f"the ONNX importer built invalid IR: {e}") from e
    assert ok, "the ONNX importer built invalid IR"
    return result


def _check_domain(node: onnx.NodeProto, importers) -> None:
    """Ops of other domains are supported one by one (registered as "domain::OpType")."""
    if node.domain in DEFAULT_DOMAINS or op_key(node.domain, node.op_type) in importers:
        return
    known = sorted(k for k in importers if k.startswith(f"{node.domain}::"))
    raise UnsupportedOp(node, f"op type is not supported in domain '{node.domain}'",
                        ", ".join(known) if known else "the default ONNX domain")


def _import_node(ctx: ImportContext, node: onnx.NodeProto, importers, result: ImportedModel) -> None:
    _check_domain(node, importers)
    fn = importers.get(op_key(node.domain, node.op_type))
    if fn is None:
        raise UnsupportedOp(node, "op type is not supported", ", ".join(sorted(importers)))
    for name in node.input:
        if name and not ctx.has(name):
            raise ModelError(f"node '{node.name}' ({node.op_type}): input '{name}' is not defined")
    if _try_fold(ctx, node):
        result.folded += 1
        return
    loc = ir.Location.name(node.name or node.op_type)
    with loc:
        outs = fn(ctx, node)
    assert len(outs) <= len(node.output), node.op_type
    for name, val in zip(node.output, outs):
        if name:
            ctx.set(name, val)
    result.op_counts[node.op_type] = result.op_counts.get(node.op_type, 0) + 1


def _try_fold(ctx: ImportContext, node: onnx.NodeProto) -> bool:
    """Evaluates a node whose inputs are all constants (left after the graph
    clean-up, e.g. fed by a Constant the importer itself produced)."""
    if node.op_type == "Constant":
        return False  # its own importer reads the attribute directly
    inputs = [n for n in node.input if n]
    if not inputs or not all(ctx.const(n) is not None for n in inputs):
        return False
    values = graph_opt.evaluate_node(node, {n: ctx.const(n) for n in inputs}, ctx.opset)
    if values is None or any(v.dtype not in ONNX_DTYPES.values() for v in values):
        return False
    for name, v in zip([n for n in node.output if n], values):
        ctx.set_const(name, v)
    return True
