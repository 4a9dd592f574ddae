"""qc-collapse-dims: adjacent parallel loops of an elementwise op over
contiguous memory as one loop.

LLVM vectorizes the innermost loop of a nest, with a vector body of VF x
its interleave count (64 floats on AVX-512) and a scalar or narrower
remainder. A 56 x 56 plane's rows are 56 long: less than one vector body,
so each row ran in the remainder. Every operand of an elementwise op that
walks both loops over one dense block of memory can walk it as one loop of
3136 instead: then all but the last few elements take the vector body. A
MobileNet block's int8 QuantizeLinear (1 x 32 x 56 x 56 floats to bytes)
took 0.0195 ms with 56-long rows and 0.0151 ms as one loop of 100352.

Loops d and d + 1 merge where both are parallel, no `linalg.index` reads
a loop index, and every operand's indexing map either uses neither or
has d and d + 1 as adjacent results, in that order, over memref dims the
layout makes contiguous (the outer stride is the inner one times the
inner size). A padded buffer's interior (row pitch 58 for rows of 56)
is not: its loops stay as they are. Runs after bufferization, where the
layouts are known, and before qc-outline-ops.
"""

from __future__ import annotations

from dataclasses import dataclass

from qc.mlir import ir

from .base import Pass, collect_ops
from .lower_gemm import _collapse


@dataclass(frozen=True)
class CollapseDims(Pass):
    """Needs bufferized IR (linalg.generic on memrefs). Leaves each
    generic whose adjacent loops merge (see the module doc) on
    memref.collapse_shape views of its operands, with one loop per group
    of merged loops."""

    name = "qc-collapse-dims"

    def apply(self, module: ir.Module) -> None:
        for op in collect_ops(module.operation, ("linalg.generic",)):
            op = op.operation
            groups = _loop_groups(op)
            if groups is not None and len(groups) < _loop_count(op):
                _rewrite(op, groups)


def _loop_count(op: ir.Operation) -> int:
    return len(op.attributes["iterator_types"])


def _positions(m: ir.AffineMap) -> dict[int, int] | None:
    """loop dim -> the map's result position, or None where a result is
    neither a loop dim nor a constant, or names a dim twice."""
    out: dict[int, int] = {}
    for i, e in enumerate(m.results):
        if isinstance(e, ir.AffineDimExpr):
            d = e.position
            if d in out:
                return None
            out[d] = i
        elif not isinstance(e, ir.AffineConstantExpr):
            return None
    return out


def _contiguous(ty: ir.MemRefType, i: int) -> bool:
    """Whether memref dims i and i + 1 of ty are one dense run."""
    strides, _ = ty.get_strides_and_offset()
    dynamic = ir.ShapedType.get_dynamic_stride_or_offset()
    return strides[i] != dynamic and strides[i + 1] != dynamic and strides[i] == strides[i + 1] * ty.shape[i + 1]


def _loop_groups(op: ir.Operation) -> list[list[int]] | None:
    """The op's loops as runs of adjacent loops that merge, or None where
    the op is not one this pass handles."""
    shaped = [v.type for v in op.operands if isinstance(v.type, ir.ShapedType)]
    if len(op.results) or any(not isinstance(t, ir.MemRefType) or not t.has_static_shape for t in shaped):
        return None  # tensors (not bufferized) or dynamic shapes
    for inner in op.regions[0].blocks[0].operations:
        if inner.operation.name == "linalg.index" or len(inner.operation.regions):
            return None
    maps = [ir.AffineMapAttr(a).value for a in op.attributes["indexing_maps"]]
    places = [_positions(m) for m in maps]
    if any(p is None for p in places):
        return None
    iterators = [str(a) for a in op.attributes["iterator_types"]]
    groups = [[0]] if iterators else []
    for d in range(1, len(iterators)):
        if _merges(d - 1, iterators, places, op.operands):
            groups[-1].append(d)
        else:
            groups.append([d])
    return groups


def _merges(d: int, iterators: list[str], places: list[dict], operands) -> bool:
    if "parallel" not in iterators[d] or "parallel" not in iterators[d + 1]:
        return False
    for place, v in zip(places, operands):
        if d not in place and d + 1 not in place:
            continue
        if d not in place or d + 1 not in place or place[d + 1] != place[d] + 1:
            return False
        if not isinstance(v.type, ir.MemRefType) or not _contiguous(ir.MemRefType(v.type), place[d]):
            return False
    return True


def _rewrite(op: ir.Operation, groups: list[list[int]]) -> None:
    """Views each operand with its dims of one group as one dim and
    renumbers the maps' loops: group g becomes loop g."""
    new_loop = {d: g for g, group in enumerate(groups) for d in group}
    maps = [ir.AffineMapAttr(a).value for a in op.attributes["indexing_maps"]]
    new_maps, views = [], {}
    with ir.InsertionPoint(op), op.location:
        for i, (m, v) in enumerate(zip(maps, list(op.operands))):
            results, dims = [], []  # the new map's results, and per result the memref dims it spans
            for k, e in enumerate(m.results):
                if isinstance(e, ir.AffineDimExpr):
                    d = e.position
                    g = new_loop[d]
                    if d != groups[g][0]:
                        dims[-1].append(k)  # a later loop of the group: the previous result's dim
                        continue
                    results.append(ir.AffineDimExpr.get(g))
                else:
                    results.append(e)
                dims.append([k])
            new_maps.append(ir.AffineMap.get(len(groups), 0, results))
            if isinstance(v.type, ir.MemRefType) and any(len(g) > 1 for g in dims):
                key = (v, repr(dims))  # one view per buffer and grouping: an operand read twice stays one value
                if key not in views:
                    views[key] = _collapse(v, dims)
                op.operands[i] = views[key]
    op.attributes["indexing_maps"] = ir.ArrayAttr.get([ir.AffineMapAttr.get(m) for m in new_maps])
    iterators = list(op.attributes["iterator_types"])
    op.attributes["iterator_types"] = ir.ArrayAttr.get([iterators[g[0]] for g in groups])
