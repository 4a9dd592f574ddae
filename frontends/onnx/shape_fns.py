"""Shape and Size, plus the axis and constant-input helpers the data-movement
importers share.

Every shape in qc is static, so Shape and Size are compile-time constants:
their outputs are registered with `ctx.set_const` and no IR is built. A
Shape → Gather → Concat → Reshape subgraph (PyTorch's dynamic reshape) then
has only constant inputs at every step and is folded away by the importer.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from qc.errors import UnsupportedOp

from . import builder as b
from .attrs import attrs
from .registry import importer

# Element types the data-movement ops accept: they only move elements, but
# these are the ones the runtime and the tests cover.
DATA_TYPES = tuple(np.dtype(t) for t in (np.float32, np.float64, np.int8, np.uint8,
                                         np.int32, np.int64, np.bool_))
DATA_TYPE_NAMES = "float32, float64, int8, uint8, int32, int64, bool"


def check_data_type(node, x: b.T) -> None:
    if x.dtype not in DATA_TYPES:
        raise UnsupportedOp(node, f"element type {x.dtype} is not supported", DATA_TYPE_NAMES)


def has_input(node, idx: int) -> bool:
    """ONNX marks an omitted optional input with an empty name (or leaves it off)."""
    return len(node.input) > idx and bool(node.input[idx])


def normalize_axis(node, axis: int, rank: int, what: str = "axis") -> int:
    """`axis` in [-rank, rank) as a non-negative dim."""
    axis = int(axis)
    if not -rank <= axis < rank:
        raise UnsupportedOp(node, f"{what} {axis} is out of range for rank {rank}")
    return axis % rank


def normalize_axes(node, axes: Sequence[int], rank: int, what: str = "axes") -> list[int]:
    """Each axis made non-negative; repeats are an error, as ONNX says."""
    out = [normalize_axis(node, a, rank, what) for a in axes]
    if len(set(out)) != len(out):
        raise UnsupportedOp(node, f"{what} {list(axes)} repeat a dim")
    return out


def const_input(ctx, node, idx: int, what: str) -> np.ndarray | None:
    """The compile-time value of optional input `idx`; None if it is omitted.

    A computed (runtime) value is an error: it would make shapes dynamic.
    """
    if not has_input(node, idx):
        return None
    value = ctx.const(node.input[idx])
    if value is None:
        raise UnsupportedOp(node, f"the {what} input must be known at compile time "
                                  "(a constant, or computed from static shapes)")
    return np.asarray(value)


def const_ints(ctx, node, idx: int, what: str) -> list[int] | None:
    value = const_input(ctx, node, idx, what)
    if value is None:
        return None
    if not np.issubdtype(value.dtype, np.integer):
        raise UnsupportedOp(node, f"the {what} input has element type {value.dtype}", "int32, int64")
    return [int(v) for v in value.ravel()]


def static_shape(ctx, name: str) -> tuple[int, ...]:
    """The shape of `name` without materializing a constant."""
    known = ctx.const(name)
    return tuple(known.shape) if known is not None else ctx.get(name).shape


@importer("Shape")
def import_shape(ctx, node):
    """shape(x)[start:end]; start and end (opset 15) clamp like Python slices."""
    shape = static_shape(ctx, node.input[0])
    a = attrs(node)
    start, end = int(a.get("start", 0)), a.get("end")
    end = len(shape) if end is None else int(end)
    ctx.set_const(node.output[0], np.array(shape[start:end], np.int64))
    return []


@importer("Size")
def import_size(ctx, node):
    shape = static_shape(ctx, node.input[0])
    ctx.set_const(node.output[0], np.array(int(np.prod(shape)), np.int64))
    return []
