"""Scan, unrolled: the body graph is imported once per iteration.

Scan (opset 9+) threads N state values through its body while it walks M
scan inputs along their scan axes (default 0; scan_input_directions 1 walks
backwards). Iteration t binds the body's inputs to the current states and
to slice t of each scan input, imports the body's nodes (each with its op's
importer, so constant parts still fold), and takes the body's first N
outputs as the next states and the rest as slice t of the scan outputs,
which are stacked along scan_output_axes (backwards with direction 1).
Opset 8's form has a leading batch dim on every input and output and scans
axis 1: each batch entry is scanned on its own and the results restacked.

The body sees the enclosing graph's values by name. The trip count is the
static length of the scan axis, limited to MAX_STEPS since every iteration
is a copy of the body.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
from onnx import numpy_helper

from qc.errors import UnsupportedOp

from . import builder as b
from .attrs import attrs
from .data_ops import copy, extract_slice, insert_slice
from .importer import ImportContext, _import_node
from .registry import importer, load_all

MAX_STEPS = 256


class _Scope(ImportContext):
    """The body's names, over the enclosing graph's (which it may read)."""

    def __init__(self, parent: ImportContext):
        super().__init__(parent.opset)
        self.parent = parent

    def has(self, name: str) -> bool:
        return super().has(name) or self.parent.has(name)

    def get(self, name: str) -> b.T:
        return super().get(name) if super().has(name) else self.parent.get(name)

    def const(self, name: str):
        if super().has(name):
            return super().const(name)
        return self.parent.const(name)


def _take(x: b.T, axis: int, i: int) -> b.T:
    """x[..., i (along axis), ...] without that dim, as a fresh tensor."""
    sizes = [1 if d == axis else s for d, s in enumerate(x.shape)]
    part = copy(extract_slice(x, [i if d == axis else 0 for d in range(x.rank)], sizes))
    return b.reshape(part, [s for d, s in enumerate(x.shape) if d != axis])


def _stack(parts: list[b.T], axis: int) -> b.T:
    """The parts (of one shape) stacked along a new dim `axis`."""
    first = parts[0]
    shape = list(first.shape)
    shape.insert(axis, len(parts))
    out = b.filled(shape, first.dtype, 0)
    unit = list(first.shape)
    unit.insert(axis, 1)
    for i, p in enumerate(parts):
        out = insert_slice(b.reshape(p, unit), out, [i if d == axis else 0 for d in range(len(shape))])
    return b.T(out, first.dtype)


@importer("Scan")
def import_scan(ctx, node):
    a = attrs(node)
    body = a["body"]
    m = int(a["num_scan_inputs"])
    if ctx.opset < 9:
        return _scan_batched(ctx, node, body, m, a)
    inputs = [ctx.get(n) for n in node.input]
    n = len(inputs) - m
    in_axes = [int(v) for v in a.get("scan_input_axes", [0] * m)]
    in_dirs = [int(v) for v in a.get("scan_input_directions", [0] * m)]
    k = len(body.output) - n
    out_axes = [int(v) for v in a.get("scan_output_axes", [0] * k)]
    out_dirs = [int(v) for v in a.get("scan_output_directions", [0] * k)]
    scans = inputs[n:]
    axes = []
    for x, ax in zip(scans, in_axes):
        if not -x.rank <= ax < x.rank:
            raise UnsupportedOp(node, f"scan_input_axes {in_axes} for inputs of ranks {[s.rank for s in scans]}")
        axes.append(ax % x.rank)
    states, outs = _run(ctx, node, body, inputs[:n], scans, axes, in_dirs)
    stacked = []
    for j in range(k):
        parts = [step[j] for step in outs]
        if out_dirs[j]:
            parts.reverse()
        rank = parts[0].rank + 1
        if not -rank <= out_axes[j] < rank:
            raise UnsupportedOp(node, f"scan_output_axes {out_axes} for outputs of rank {rank}")
        stacked.append(_stack(parts, out_axes[j] % rank))
    return [*states, *stacked]


def _run(ctx, node, body, states: list[b.T], scans: list[b.T], axes: list[int], dirs: list[int]):
    """Unrolls the body: (final states, per-iteration scan outputs)."""
    lengths = {x.shape[ax] for x, ax in zip(scans, axes)}
    if len(lengths) != 1:
        raise UnsupportedOp(node, f"scan inputs of different lengths {sorted(lengths)}", "one length")
    steps = lengths.pop()
    if steps > MAX_STEPS:
        raise UnsupportedOp(node, f"{steps} iterations", f"at most {MAX_STEPS} (the body is unrolled)")
    importers = load_all()
    tally = SimpleNamespace(op_counts={}, folded=0)  # the body's nodes are not counted per op
    n = len(states)
    outs = []
    for t in range(steps):
        scope = _Scope(ctx)
        for init in body.initializer:
            scope.set_const(init.name, numpy_helper.to_array(init))
        values = [*states] + [_take(x, ax, steps - 1 - t if d else t) for x, ax, d in zip(scans, axes, dirs)]
        if len(values) != len(body.input):
            raise UnsupportedOp(node, f"the body takes {len(body.input)} inputs for {len(values)} values")
        for vi, v in zip(body.input, values):
            scope.set(vi.name, v)
        for body_node in body.node:
            _import_node(scope, body_node, importers, tally)
        results = [scope.get(o.name) for o in body.output]
        for old, new in zip(states, results[:n]):
            if new.shape != old.shape or new.dtype != old.dtype:
                raise UnsupportedOp(node, f"a state changes from {old.dtype}{list(old.shape)} to "
                                          f"{new.dtype}{list(new.shape)}", "states of a fixed type and shape")
        states = results[:n]
        outs.append(results[n:])
    return states, outs


def _scan_batched(ctx, node, body, m: int, a: dict):
    """Opset 8: [sequence_lens], states..., scans... all with a batch dim 0; the scan axis is 1."""
    if node.input[0] and ctx.const(node.input[0]) is None:
        raise UnsupportedOp(node, "the sequence_lens input must be known at compile time "
                                  "(a constant, or computed from static shapes)")
    values = [ctx.get(n) for n in node.input[1:]]
    n = len(values) - m
    dirs = [int(v) for v in a.get("directions", [0] * m)]
    batch = values[0].shape[0]
    seq = values[n].shape[1]
    if node.input[0] and np.any(np.asarray(ctx.const(node.input[0])) != seq):
        raise UnsupportedOp(node, "sequence_lens shorter than the scan inputs", f"every length {seq}")
    per_batch = []
    for i in range(batch):
        states = [_take(v, 0, i) for v in values[:n]]
        scans = [_take(v, 0, i) for v in values[n:]]
        final, outs = _run(ctx, node, body, states, scans, [0] * m, dirs)
        k = len(outs[0]) if outs else 0
        per_batch.append([*final, *[_stack([step[j] for step in outs], 0) for j in range(k)]])
    return [_stack([entry[j] for entry in per_batch], 0) for j in range(len(per_batch[0]))]

