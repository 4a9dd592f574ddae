"""ONNX's node test cases as qc sees them.

The installed onnx wheel generates the cases itself
(`onnx.backend.test.case.node.collect_testcases`): each is one model, its
inputs and the expected outputs. This module turns them into work for qc:

- `quick_reason`: cases qc cannot compile for a reason visible without
  importing them (sequence, optional or map values; ops of other domains).
- `bind_parameters`: ONNX feeds every operand as a graph input, even the
  shape-like ones (Reshape's shape, Pad's pads, a reduction's axes). qc
  compiles static shapes, so a case whose import fails because such a
  parameter must be known at compile time is retried with the parameter
  inputs of the failing op bound to the test's values as initializers; the
  data inputs stay run-time inputs.
- `merge`: many cases as one model, each case's names prefixed with `q{id}_`
  so that one compile serves them all and a diagnostic names its case.
- `compare`: ONNX's own check (same dtype and shape, assert_allclose with the
  case's rtol/atol).
"""

from __future__ import annotations

import hashlib
import pickle
import re
import warnings
from dataclasses import dataclass, field, replace

import numpy as np
import onnx
from onnx import numpy_helper


@dataclass(frozen=True)
class Case:
    id: int  # position in the collected list: the merge prefix q{id}_
    name: str
    model: bytes  # a serialized ModelProto
    inputs: tuple  # one value per run-time graph input, in graph order
    outputs: tuple  # the expected values, one per graph output
    rtol: float
    atol: float
    bound: tuple[str, ...] = field(default=())  # parameter inputs bound as initializers

    def proto(self) -> onnx.ModelProto:
        return onnx.ModelProto.FromString(self.model)

    def key(self) -> str:
        """A hash of everything the case's verdict depends on, qc aside."""
        h = hashlib.sha256(self.model)
        h.update(pickle.dumps((self.inputs, self.outputs, self.rtol, self.atol, self.bound)))
        return h.hexdigest()


def load_cases() -> list[Case]:
    """The node test cases of the installed onnx, in its order."""
    from onnx.backend.test.case.node import collect_testcases

    with warnings.catch_warnings():  # the generators overflow casts on purpose
        warnings.simplefilter("ignore")
        collected = collect_testcases(None)
    cases = []
    for i, tc in enumerate(collected):
        (inputs, outputs), *more = tc.data_sets
        assert not more, f"{tc.name}: several data sets"  # none in onnx 1.23; the runner checks one
        cases.append(Case(i, tc.name, tc.model.SerializeToString(), tuple(map(_value, inputs)),
                          tuple(map(_value, outputs)), float(tc.rtol), float(tc.atol)))
    return cases


def _value(v):
    return numpy_helper.to_array(v) if isinstance(v, onnx.TensorProto) else v


# ---------------------------------------------------------------- classification

TENSOR_ONLY = "sequence, optional or map values (qc compiles tensors only)"


def quick_reason(case: Case) -> str | None:
    """Why qc cannot compile `case`, if that is visible without importing it."""
    model = case.proto()
    values = [*case.inputs, *case.outputs]
    typed = [*model.graph.input, *model.graph.output]
    if any(not isinstance(v, np.ndarray) for v in values) or any(
            not vi.type.HasField("tensor_type") for vi in typed):
        return TENSOR_ONLY
    for node in model.graph.node:
        if node.domain not in ("", "ai.onnx"):
            return f"{node.op_type}: ops of domain '{node.domain}' (qc imports the default ONNX domain)"
    return None


def runtime_inputs(graph: onnx.GraphProto) -> list[onnx.ValueInfoProto]:
    inits = {t.name for t in graph.initializer}
    return [vi for vi in graph.input if vi.name not in inits]


# ---------------------------------------------------------------- binding parameters

# The importer's wording when an input must be a compile-time constant.
_NEEDS_CONSTANT = re.compile(r"must be known at compile time|is computed at run time")
_NODE_OP = re.compile(r"^node '.*?' \((\w+)\): ")


def parameter_op(message: str) -> str | None:
    """The op type whose parameter input must be a constant, from qc's
    UnsupportedOp message ("node 'n' (Reshape): the shape input must be ...")."""
    m = _NODE_OP.match(message)
    return m.group(1) if m and _NEEDS_CONSTANT.search(message) else None


def bind_parameters(case: Case, op_type: str) -> Case | None:
    """`case` with the graph inputs that only feed parameter positions (>= 1)
    of `op_type` nodes turned into initializers holding the test's values."""
    model = case.proto()
    graph = model.graph
    uses: dict[str, list[tuple[str, int]]] = {}
    for node in graph.node:
        for pos, name in enumerate(node.input):
            uses.setdefault(name, []).append((node.op_type, pos))
    outputs = {o.name for o in graph.output}
    rt = runtime_inputs(graph)
    bind = [i for i, vi in enumerate(rt)
            if vi.name not in outputs and uses.get(vi.name)
            and all(op == op_type and pos >= 1 for op, pos in uses[vi.name])]
    return bind_inputs(case, [rt[i].name for i in bind]) if bind else None


def bind_inputs(case: Case, names) -> Case:
    """`case` with the run-time inputs `names` as initializers of the test's values."""
    model = case.proto()
    graph = model.graph
    rt = [vi.name for vi in runtime_inputs(graph)]
    values = dict(zip(rt, case.inputs))
    graph.initializer.extend(numpy_helper.from_array(values[n], n) for n in names)
    kept = [vi for vi in graph.input if vi.name not in names]
    del graph.input[:]
    graph.input.extend(kept)
    inputs = tuple(v for n, v in zip(rt, case.inputs) if n not in names)
    return replace(case, model=model.SerializeToString(), inputs=inputs, bound=tuple(names))


# ---------------------------------------------------------------- merging


def group_key(case: Case) -> tuple:
    """Cases merge only with cases of the same opsets and IR version."""
    m = case.proto()
    return (tuple(sorted((o.domain, o.version) for o in m.opset_import)), m.ir_version)


def mergeable(case: Case) -> bool:
    """Subgraphs capture outer names, local functions and sparse initializers
    would need renaming too: such cases compile alone."""
    m = case.proto()
    nested = any(a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS)
                 for n in m.graph.node for a in n.attribute)
    return not (nested or m.functions or m.graph.sparse_initializer)


def prefix(case: Case) -> str:
    return f"q{case.id}_"


def merge(cases: list[Case]) -> onnx.ModelProto:
    """One model computing every case: graphs side by side, names prefixed."""
    first = cases[0].proto()
    graph = onnx.GraphProto(name="merged")
    for case in cases:
        g = case.proto().graph
        p = prefix(case)
        for vi in [*g.input, *g.output, *g.value_info]:
            vi.name = p + vi.name
        for t in g.initializer:
            t.name = p + t.name
        for node in g.node:
            node.name = p + (node.name or node.op_type)
            node.input[:] = [p + n if n else n for n in node.input]
            node.output[:] = [p + n if n else n for n in node.output]
        graph.input.extend(g.input)
        graph.output.extend(g.output)
        graph.value_info.extend(g.value_info)
        graph.initializer.extend(g.initializer)
        graph.node.extend(g.node)
    merged = onnx.ModelProto(ir_version=first.ir_version, graph=graph)
    merged.opset_import.extend(first.opset_import)
    return merged


def case_of_message(message: str, cases: list[Case]) -> Case | None:
    """The case a diagnostic of a merged model names (through a q{id}_ prefix)."""
    by_id = {c.id: c for c in cases}
    for m in re.finditer(r"\bq(\d+)_", message):
        if int(m.group(1)) in by_id:
            return by_id[int(m.group(1))]
    return None


# ---------------------------------------------------------------- comparison


def compare(case: Case, got: list[np.ndarray], names: list[str]) -> str | None:
    """None if `got` matches the expected outputs as ONNX's runner checks
    them; otherwise one line saying what differs."""
    for name, want, have in zip(names, case.outputs, got):
        if have.dtype != want.dtype:
            return f"output '{name}' is {have.dtype}, expected {want.dtype}"
        if have.shape != want.shape:
            return f"output '{name}' has shape {list(have.shape)}, expected {list(want.shape)}"
        try:
            np.testing.assert_allclose(have, want, rtol=case.rtol, atol=case.atol)
        except AssertionError:
            return f"output '{name}': {_mismatch(have, want, case.rtol, case.atol)}"
    return None


def _mismatch(have: np.ndarray, want: np.ndarray, rtol: float, atol: float) -> str:
    h, w = have.astype(np.float64), want.astype(np.float64)
    with np.errstate(invalid="ignore"):
        bad = ~(np.isclose(h, w, rtol=rtol, atol=atol, equal_nan=True))
        err = np.abs(h - w)[bad]
    i = int(np.flatnonzero(bad)[0])
    worst = f", max abs diff {np.nanmax(err):.3g}" if np.isfinite(err).any() else ""
    return (f"{int(bad.sum())} of {bad.size} elements differ{worst} "
            f"(first at flat index {i}: got {h.ravel()[i]:.6g}, expected {w.ravel()[i]:.6g})")
