"""Passes, stages and pipelines as plain Python data.

A `Pass` is a frozen dataclass: `name` is its CLI name, its fields are its
options, `apply(module)` runs it. `Upstream` wraps an MLIR pass-pipeline
string. A `Stage` is a named run of passes whose output a user can stop at
(`--emit NAME`) or dump (`--dump-ir`); a `Pipeline` is a tuple of stages.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Callable, ClassVar

from qc.errors import PassFailed
from qc.mlir import MLIRError, ir, passmanager


class Pass:
    name: ClassVar[str] = "?"

    def apply(self, module: ir.Module) -> None:
        raise AssertionError(f"{type(self).__name__} must define apply()")

    def __str__(self) -> str:
        opts = []
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            v = getattr(self, f.name)
            if v != f.default:
                v = str(v).lower() if isinstance(v, bool) else v
                opts.append(f"{f.name.replace('_', '-')}={v}")
        return self.name + ("{" + " ".join(opts) + "}" if opts else "")


def run_upstream(pass_name: str, pipeline: str, module: ir.Module) -> None:
    """Runs an upstream pipeline string; MLIR diagnostics become one PassFailed line."""
    try:
        pm = passmanager.PassManager.parse(f"builtin.module({pipeline})")
    except (MLIRError, ValueError) as e:
        raise PassFailed(pass_name, f"invalid pass pipeline '{pipeline}': {_diag(e)}") from e
    try:
        pm.run(module.operation)
    except MLIRError as e:
        raise PassFailed(pass_name, _diag(e)) from e


def _diag(e: Exception) -> str:
    diags = getattr(e, "error_diagnostics", None)
    if diags:
        d = diags[0]
        notes = "; ".join(str(n.message) for n in getattr(d, "notes", [])[:1])
        return f"{d.location}: {d.message}" + (f" ({notes})" if notes else "")
    return str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__


@dataclass(frozen=True)
class Upstream(Pass):
    """Upstream MLIR passes, as a pass-pipeline string ('canonicalize,cse')."""

    name = "upstream"
    pipeline: str = ""

    def apply(self, module: ir.Module) -> None:
        run_upstream(self.pipeline.split("{")[0].split(",")[0], self.pipeline, module)

    def __str__(self) -> str:
        return self.pipeline


@dataclass(frozen=True)
class Stage:
    """A named step of a pipeline; its output is one `--emit` / `--dump-ir` point."""

    name: str
    passes: tuple[Pass, ...]

    def apply(self, module: ir.Module) -> None:
        for p in self.passes:
            p.apply(module)


@dataclass(frozen=True)
class Pipeline:
    name: str
    stages: tuple[Stage, ...]

    @property
    def stage_names(self) -> list[str]:
        return [s.name for s in self.stages]

    def run(self, module: ir.Module, until: str | None = None,
            after_stage: Callable[[Stage, ir.Module], None] | None = None) -> None:
        for stage in self.stages:
            stage.apply(module)
            if after_stage:
                after_stage(stage, module)
            if stage.name == until:
                return

    def describe(self) -> str:
        lines = [f"pipeline {self.name}:"]
        for s in self.stages:
            lines.append(f"  {s.name}:")
            lines.extend(f"    {p}" for p in s.passes)
        return "\n".join(lines)



def collect_ops(root: ir.Operation, names: tuple[str, ...]) -> list:
    """The ops under `root` with one of `names`, in pre-order, as OpViews."""
    found = []

    def visit(op):
        if op.name in names:
            found.append(op.opview)
        return ir.WalkResult.ADVANCE

    root.walk(visit, ir.WalkOrder.PRE_ORDER)
    return found


def append_functions(module: ir.Module, symbols: ir.SymbolTable, text: str) -> None:
    """Parses `text` and moves its functions into `module`, but for those
    whose symbol it has already (shared declarations)."""
    parsed = ir.Module.parse(text)  # alive until its functions are moved
    for f in list(parsed.body.operations):
        if ir.StringAttr(f.attributes["sym_name"]).value not in symbols:
            module.body.append(f)
            symbols.insert(f)


def constant_array(module: ir.Module, symbols: ir.SymbolTable, name: str, data, element_type: ir.Type,
                   before: ir.Operation) -> ir.Value:
    """A get_global (before `before`) of the private constant global `name`
    holding `data` (a numpy array of element_type's width), made first
    unless the module has it (64-byte aligned, for vector loads)."""
    import numpy as np

    ty = ir.MemRefType.get(list(data.shape), element_type)
    if name not in symbols:
        with ir.InsertionPoint(module.body), ir.Location.unknown():
            g = ir.Operation.create("memref.global", attributes={
                "sym_name": ir.StringAttr.get(name),
                "sym_visibility": ir.StringAttr.get("private"),
                "type": ir.TypeAttr.get(ty),
                "initial_value": ir.DenseElementsAttr.get(np.ascontiguousarray(data), type=element_type),
                "constant": ir.UnitAttr.get(),
                "alignment": ir.IntegerAttr.get(ir.IntegerType.get_signless(64), 64),
            })
        g.move_before(module.body.operations[0])
        symbols.insert(g)
    with ir.InsertionPoint(before), ir.Location.unknown():
        return ir.Operation.create("memref.get_global", results=[ty],
                                   attributes={"name": ir.FlatSymbolRefAttr.get(name)}).result
