"""Data-movement and constant ops: Identity, Constant, Reshape, Flatten, Transpose.

Reshape and Flatten are views (tensor.collapse_shape / expand_shape); only
Transpose moves data.
"""

from __future__ import annotations

import numpy as np
from onnx import numpy_helper

from qc.errors import UnsupportedOp
from qc.mlir import linalg

from . import builder as b
from .attrs import attrs
from .registry import importer


@importer("Identity")
def import_identity(ctx, node):
    return [ctx.get(node.input[0])]


@importer("Constant")
def import_constant(ctx, node):
    a = attrs(node)
    if "value" in a:
        arr = numpy_helper.to_array(a["value"])
    elif "value_float" in a:
        arr = np.array(a["value_float"], np.float32)
    elif "value_floats" in a:
        arr = np.array(a["value_floats"], np.float32)
    elif "value_int" in a:
        arr = np.array(a["value_int"], np.int64)
    elif "value_ints" in a:
        arr = np.array(a["value_ints"], np.int64)
    else:
        raise UnsupportedOp(node, f"attribute {next(iter(a), 'none')} is not supported",
                            "value, value_float(s), value_int(s)")
    # Known at compile time: folded into consumers, materialized only if used.
    ctx.set_const(node.output[0], arr)
    return []


def _static_shape(ctx, node, idx: int) -> np.ndarray:
    shape = ctx.const(node.input[idx])
    if shape is None:
        raise UnsupportedOp(node, "the shape input must be known at compile time "
                                  "(a constant, or computed from static shapes)")
    return np.asarray(shape, np.int64).ravel()


@importer("Reshape")
def import_reshape(ctx, node):
    x = ctx.get(node.input[0])
    spec = _static_shape(ctx, node, 1)
    allowzero = int(attrs(node).get("allowzero", 0))
    dims = []
    for i, d in enumerate(spec):
        if d == 0 and not allowzero:
            if i >= x.rank:
                raise UnsupportedOp(node, f"shape {spec.tolist()} copies dim {i}, but the input has rank {x.rank}")
            dims.append(x.shape[i])
        else:
            dims.append(int(d))
    total = int(np.prod(x.shape))
    if dims.count(-1) > 1 or any(d < -1 for d in dims):
        raise UnsupportedOp(node, f"invalid shape {spec.tolist()}")
    if -1 in dims:
        known = int(np.prod([d for d in dims if d != -1]))
        if known == 0 or total % known:
            raise UnsupportedOp(node, f"cannot reshape {list(x.shape)} to {spec.tolist()}")
        dims[dims.index(-1)] = total // known
    if int(np.prod(dims)) != total:
        raise UnsupportedOp(node, f"cannot reshape {list(x.shape)} ({total} elements) to {dims}")
    return [view(x, dims)]


def view(x: b.T, shape) -> b.T:
    """x reshaped to `shape` as one tensor.collapse_shape or expand_shape where
    the reshape only merges or only splits adjacent dims, else as a
    collapse-then-expand pair (b.reshape). Either way a view, never a copy."""
    shape = tuple(int(d) for d in shape)
    if shape == x.shape:
        return x
    if len(shape) < x.rank:
        groups = _adjacent_groups(x.shape, shape)
        if groups:
            return b.collapse(x, groups, shape)
    elif len(shape) > x.rank:
        groups = _adjacent_groups(shape, x.shape)
        if groups:
            return b.expand(x, groups, shape)
    return b.reshape(x, shape)


def _adjacent_groups(fine, coarse) -> list[list[int]] | None:
    """Runs of consecutive dims of `fine` whose products are the dims of
    `coarse` (trailing 1s join the last run), or None if there are none."""
    groups, i = [], 0
    for d in coarse:
        group, size = [], 1
        while i < len(fine) and (not group or size < d):
            size *= fine[i]
            group.append(i)
            i += 1
        if size != d or not group:
            return None
        groups.append(group)
    rest = list(range(i, len(fine)))
    if not groups or any(fine[j] != 1 for j in rest):
        return None
    groups[-1].extend(rest)
    return groups


@importer("Flatten")
def import_flatten(ctx, node):
    x = ctx.get(node.input[0])
    axis = int(attrs(node).get("axis", 1))
    if not -x.rank <= axis <= x.rank:
        raise UnsupportedOp(node, f"axis {axis} is out of range for a rank-{x.rank} input")
    if axis < 0:
        axis += x.rank
    outer = int(np.prod(x.shape[:axis]))
    return [view(x, (outer, int(np.prod(x.shape)) // outer))]


@importer("Transpose")
def import_transpose(ctx, node):
    x = ctx.get(node.input[0])
    perm = attrs(node).get("perm", list(reversed(range(x.rank))))
    perm = [int(p) for p in perm]
    if sorted(perm) != list(range(x.rank)):
        raise UnsupportedOp(node, f"perm {perm} is not a permutation of 0..{x.rank - 1}")
    if perm == list(range(x.rank)):
        return [x]
    out_shape = [x.shape[p] for p in perm]
    init = b.empty(out_shape, x.dtype)
    return [b.T(linalg.transpose(x.value, outs=[init], permutation=perm).results[0], x.dtype)]
