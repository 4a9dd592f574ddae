"""Where each ONNX op went: `qc compile model.onnx --report`.

The importer gives every op it builds the location of its ONNX node (the
node's name, or its op type when it has none), and the passes carry
locations along. So after the frontend and after each stage, the ops of the
entry function are counted by the ONNX op type of the node(s) their location
names. The table shows, per op type:

    nodes        in the ONNX graph
    folded       evaluated or removed at compile time (constant folding,
                 BatchNormalization folded into Conv, identities): nodes - imported
    imported as  the ops the frontend built (views and constants left out)
    compiled as  the same at the last stage that still has linalg ops: calls
                 to a qc GEMM kernel (with its register tile) or to a loop nest
                 (with the linalg op it was outlined from)

An op type with imported nodes but nothing under "compiled as" has no code of
its own there: fusion moved its work into another op (which keeps that
op's location) or canonicalization folded it.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

from qc.mlir import ir

# Ops that compute nothing: buffers, views, constants, plumbing.
_PLUMBING = {
    "arith.constant", "func.return", "tensor.empty", "tensor.collapse_shape", "tensor.expand_shape",
    "tensor.cast", "memref.alloc", "memref.dealloc", "memref.cast", "memref.collapse_shape",
    "memref.expand_shape", "memref.subview", "memref.get_global", "memref.reinterpret_cast",
    "memref.extract_strided_metadata", "bufferization.to_tensor", "bufferization.to_buffer",
    "memref.view",  # an intermediate's place in the arena (qc-plan-memory)
}
_GEMM_KERNEL = re.compile(r"^qc_sgemm_\d+x\d+x\d+_([pqrsi])(\d+x\d+)(_\w+)?$")  # _range: a slice of columns
# The loops a pass wrote as vector code, each its own function.
_VECTOR_LOOPS = {"qc_reduce_": "vector reduction", "qc_requant_": "vector requantization",
                 "qc_qdepthwise_": "vector int8 depthwise"}


def location_names(loc: ir.Location) -> list[str]:
    """The node names a location carries (through fused and call-site locations)."""
    if loc.is_a_name():
        return [loc.name_str]
    if loc.is_a_fused():
        return [n for sub in loc.locations for n in location_names(sub)]
    if loc.is_a_callsite():
        return location_names(loc.callee) + location_names(loc.caller)
    return []


def describe_op(op: ir.Operation) -> str:
    """linalg.generic says whether it reduces; the rest by their name."""
    name = op.name
    if name == "linalg.generic":
        iterators = str(op.attributes["iterator_types"])
        return "linalg.generic (reduction)" if "reduction" in iterators else "linalg.generic (parallel)"
    return name


@dataclass
class OpReport:
    node_types: dict[str, str]  # ONNX node name (or op type) -> op type
    nodes: Counter = field(default_factory=Counter)  # op type -> nodes in the graph
    imported: dict[str, int] = field(default_factory=dict)
    stages: list[tuple[str, dict[str, Counter]]] = field(default_factory=list)
    summary: str = ""

    @classmethod
    def for_model(cls, model) -> "OpReport":
        types = {n.op_type: n.op_type for n in model.graph.node}
        types.update({n.name: n.op_type for n in model.graph.node if n.name})
        return cls(types, Counter(n.op_type for n in model.graph.node))

    def observe(self, stage: str, module: ir.Module, entry: str = "qc_model") -> None:
        """Counts the entry's ops by ONNX op type after `stage`."""
        symbols = ir.SymbolTable(module.operation)
        if entry not in symbols:
            return
        counts: dict[str, Counter] = {}
        for op in symbols[entry].regions[0].blocks[0].operations:
            op = op.operation
            if op.name in _PLUMBING:
                continue
            what = self._callee(symbols, op) if op.name == "func.call" else describe_op(op)
            if what is None:
                continue
            types = sorted({self.node_types.get(n, n) for n in location_names(op.location)}) or ["(unattributed)"]
            for t in types:
                counts.setdefault(t, Counter())[what] += 1
        self.stages.append((stage, counts))

    @staticmethod
    def _callee(symbols: ir.SymbolTable, call: ir.Operation) -> str | None:
        name = ir.FlatSymbolRefAttr(call.attributes["callee"]).value
        kernel = _gemm_kernel(name)
        if kernel:
            return kernel
        if name not in symbols or not len(symbols[name].regions[0].blocks):
            return f"call {name}"  # not in the module, or a declaration: its code is elsewhere
        body = [o.operation for o in symbols[name].regions[0].blocks[0].operations
                if o.operation.name not in _PLUMBING]
        threads = ""
        if len(body) == 1 and body[0].name == "func.call":
            # qc-parallel-loops: the op moved to <name>_range, which the runtime's threads run.
            ranged = f"{name}_range"
            if ranged in symbols:
                threads = " (on all threads)"
                body = [o.operation for o in symbols[ranged].regions[0].blocks[0].operations
                        if o.operation.name not in _PLUMBING and o.operation.name != "arith.subi"]
        inner = [_describe_nest(o) for o in body]
        return f"loop nest{threads}: {', '.join(inner)}" if inner else None

    def structured(self) -> tuple[str, dict[str, Counter]] | None:
        """The last stage that still has linalg ops or GEMM kernels (itself or in its callees)."""
        for stage, counts in reversed(self.stages):
            if any("linalg." in what or "qc GEMM kernel" in what for c in counts.values() for what in c):
                return stage, counts
        return None

    def table(self) -> str:
        first = self.stages[0][1] if self.stages else {}
        last = self.structured()
        last_counts = last[1] if last else {}
        rows = [("op type", "nodes", "folded", "imported as", f"compiled as (after '{last[0]}')" if last else "")]
        for t in sorted(self.nodes, key=lambda t: (-self.nodes[t], t)):
            imported = self.imported.get(t, 0)
            folded = self.nodes[t] - imported
            rows.append((t, str(self.nodes[t]), str(folded), _cell(first.get(t), imported, "views/constants only"),
                         _cell(last_counts.get(t), imported, "no code of its own (fused or folded)")))
        widths = [max(len(r[i]) for r in rows) for i in range(4)]
        lines = [f"{r[0]:<{widths[0]}}  {r[1]:>{widths[1]}}  {r[2]:>{widths[2]}}  {r[3]:<{widths[3]}}  {r[4]}".rstrip()
                 for r in rows]
        total = sum(self.nodes.values())
        lines.append(f"{total} nodes, {total - sum(self.imported.values())} folded at compile time"
                     + (f" ({self.summary})" if self.summary else ""))
        return "\n".join(lines)


def _gemm_kernel(callee: str) -> str | None:
    m = _GEMM_KERNEL.match(callee)
    from qc.passes.lower_gemm import B_MODES

    if not m:
        return None
    batches = re.search(r"_x(\d+)_[0-9a-f]{6}$", callee)  # qc-lower-gemm's batched kernel: <kernel>_x<B>_<hash>
    each = f", {batches.group(1)} batches in one parallel loop" if batches else ""
    return f"qc GEMM kernel {m.group(2)} ({B_MODES[m.group(1)]}{each})"


def _describe_nest(op: ir.Operation) -> str:
    """An op of an outlined function; a loop says which GEMM kernel it calls
    (a batched matmul is a loop over the batch around a kernel call)."""
    if op.name == "func.call":
        callee = ir.FlatSymbolRefAttr(op.attributes["callee"]).value
        return next((what for stem, what in _VECTOR_LOOPS.items() if callee.startswith(stem)), "func.call")
    if op.name != "scf.for":
        return describe_op(op)
    kernels = sorted({k for call in _calls(op) if (k := _gemm_kernel(call))})
    return f"scf.for over {', '.join(kernels)}" if kernels else "scf.for"


def _calls(op: ir.Operation):
    for region in op.regions:
        for block in region.blocks:
            for inner in block.operations:
                inner = inner.operation
                if inner.name == "func.call":
                    yield ir.FlatSymbolRefAttr(inner.attributes["callee"]).value
                yield from _calls(inner)


def _cell(counts: Counter | None, imported: int, empty: str) -> str:
    if not imported:
        return ""
    if not counts:
        return empty
    return ", ".join(f"{n} {what}" for what, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def _mib(n: int) -> str:
    if n < 2**20:
        return f"{n / 2**10:.1f} KiB"
    return f"{n / 2**20:.2f} MiB"


def arena_lines(arena: dict[str, int], weights_bytes: int = 0) -> str:
    """The memory plan (qc-plan-memory) in words: the arena against the sum of
    the intermediates and the lower bound (most bytes live at one op)."""
    if not arena:
        return "memory: no plan (the pipeline has no qc-plan-memory)"
    size, total, bound, n = arena["bytes"], arena["intermediates"], arena["lower_bound"], arena["buffers"]
    lines = [f"memory: arena {_mib(size)} for {n} intermediate buffers (all of them: {_mib(total)}; "
             f"lower bound, the most live at one op: {_mib(bound)})"]
    if bound:
        lines.append(f"memory: arena / lower bound = {size / bound:.3f}, arena / all intermediates = "
                     f"{size / total:.3f}")
    if weights_bytes:
        lines.append(f"memory: weights {_mib(weights_bytes)}, read-only data of the library, shared by every context")
    return "\n".join(lines)
