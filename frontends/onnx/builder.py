"""IR-building helpers shared by the op importers.

Importers work on `T`: an MLIR tensor value plus its numpy element type. The
numpy type carries what MLIR's signless integers do not (uint8 vs int8,
bool), so each importer can pick signed or unsigned arithmetic.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from qc.mlir import arith, ir, linalg, tensor


@dataclass(frozen=True)
class T:
    value: ir.Value
    dtype: np.dtype

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(ir.RankedTensorType(self.value.type).shape)

    @property
    def rank(self) -> int:
        return len(self.shape)


def NSZ() -> ir.Attribute:  # noqa: N802 (a constant attribute)
    """fastmath<nsz>: the sign of a zero result may be either."""
    return ir.Attribute.parse("#arith.fastmath<nsz>")


def is_float(dtype: np.dtype) -> bool:
    return np.issubdtype(dtype, np.floating)


def is_unsigned(dtype: np.dtype) -> bool:
    return np.issubdtype(dtype, np.unsignedinteger)


def mlir_type(dtype: np.dtype) -> ir.Type:
    """The MLIR element type for a numpy dtype (integers are signless)."""
    dt = np.dtype(dtype)
    if dt == np.float32:
        return ir.F32Type.get()
    if dt == np.float64:
        return ir.F64Type.get()
    if dt == np.float16:
        return ir.F16Type.get()
    if dt == np.bool_:
        return ir.IntegerType.get_signless(1)
    if np.issubdtype(dt, np.integer):
        return ir.IntegerType.get_signless(dt.itemsize * 8)
    raise AssertionError(f"no MLIR type for {dt}")  # callers check dtypes first


def tensor_type(shape: Sequence[int], dtype: np.dtype) -> ir.RankedTensorType:
    return ir.RankedTensorType.get(list(shape), mlir_type(dtype))


def constant(array: np.ndarray) -> T:
    """A tensor constant. Splats are stored as one element."""
    array = np.asarray(array)
    ty = tensor_type(array.shape, array.dtype)
    if array.dtype == np.bool_:
        attr = ir.DenseElementsAttr.get(np.packbits(array.ravel(), bitorder="little"),
                                        type=ty.element_type, shape=list(array.shape))
    elif array.size > 0 and np.all(array.ravel() == array.ravel()[0]) and array.size > 1:
        attr = ir.DenseElementsAttr.get_splat(ty, scalar_attr(array.ravel()[0], array.dtype))
    else:
        data = np.ascontiguousarray(array)
        if np.issubdtype(array.dtype, np.unsignedinteger):
            data = data.view(np.dtype(f"i{array.dtype.itemsize}"))
        attr = ir.DenseElementsAttr.get(data, type=ty.element_type, shape=list(array.shape))
    return T(arith.ConstantOp(ty, attr).result, array.dtype)


def scalar_attr(value, dtype: np.dtype) -> ir.Attribute:
    ty = mlir_type(dtype)
    if is_float(dtype):
        return ir.FloatAttr.get(ty, float(value))
    if np.dtype(dtype) == np.bool_:
        return ir.IntegerAttr.get(ty, int(bool(value)))
    v = int(value)
    bits = np.dtype(dtype).itemsize * 8
    if v >= 2 ** (bits - 1):  # unsigned values are stored two's-complement
        v -= 2**bits
    return ir.IntegerAttr.get(ty, v)


def scalar(value, dtype: np.dtype) -> ir.Value:
    return arith.ConstantOp(mlir_type(dtype), scalar_attr(value, dtype)).result


def empty(shape: Sequence[int], dtype: np.dtype) -> ir.Value:
    return tensor.EmptyOp(list(shape), mlir_type(dtype)).result


def filled(shape: Sequence[int], dtype: np.dtype, value) -> ir.Value:
    return linalg.fill(scalar(value, dtype), outs=[empty(shape, dtype)])


PARALLEL = "parallel"
REDUCTION = "reduction"


def generic(
    inputs: Sequence[ir.Value],
    inits: Sequence[ir.Value],
    maps: Sequence[ir.AffineMap],
    iterators: Sequence[str],
    body: Callable[..., ir.Value | Sequence[ir.Value]],
) -> list[ir.Value]:
    """A linalg.generic on tensors; `body(*scalars)` builds the payload."""
    result_types = [v.type for v in inits]
    op = linalg.GenericOp(
        result_types,
        list(inputs),
        list(inits),
        ir.ArrayAttr.get([ir.AffineMapAttr.get(m) for m in maps]),
        ir.ArrayAttr.get([ir.Attribute.parse(f"#linalg.iterator_type<{it}>") for it in iterators]),
    )
    elem_types = [ir.RankedTensorType(v.type).element_type for v in [*inputs, *inits]]
    block = op.regions[0].blocks.append(*elem_types)
    with ir.InsertionPoint(block):
        out = body(*block.arguments)
        linalg.YieldOp(list(out) if isinstance(out, (list, tuple)) else [out])
    return list(op.results)


def identity_map(rank: int) -> ir.AffineMap:
    return ir.AffineMap.get_identity(rank)


def dims_map(rank: int, dims: Sequence[int]) -> ir.AffineMap:
    """(d0..d{rank-1}) -> (d{dims[0]}, d{dims[1]}, ...)."""
    return ir.AffineMap.get(rank, 0, [ir.AffineDimExpr.get(d) for d in dims])


def collapse(x: T, groups: list[list[int]], shape: Sequence[int]) -> T:
    ty = tensor_type(shape, x.dtype)
    return T(tensor.CollapseShapeOp(ty, x.value, _reassoc(groups)).result, x.dtype)


def expand(x: T, groups: list[list[int]], shape: Sequence[int]) -> T:
    ty = tensor_type(shape, x.dtype)
    return T(tensor.ExpandShapeOp(ty, x.value, _reassoc(groups), [], list(shape)).result, x.dtype)


def _reassoc(groups: list[list[int]]) -> ir.ArrayAttr:
    return ir.ArrayAttr.get(
        [ir.ArrayAttr.get([ir.IntegerAttr.get(ir.IntegerType.get_signless(64), i) for i in g])
         for g in groups]
    )


def reshape(x: T, shape: Sequence[int]) -> T:
    """Any static reshape, as views: collapse to 1-D, then expand.

    Canonicalization folds the pair into a single collapse or expand where the
    reshape is one; bufferization makes both views, never copies.
    """
    shape = tuple(int(s) for s in shape)
    assert int(np.prod(shape)) == int(np.prod(x.shape)), (shape, x.shape)
    if shape == x.shape:
        return x
    n = int(np.prod(x.shape))
    if x.rank == 0:
        # A scalar has no dims to collapse: expand it straight to all-ones dims.
        return expand(x, [], shape)
    flat = x
    if x.rank != 1:
        flat = collapse(x, [list(range(x.rank))], [n])
    if len(shape) == 1:
        return flat
    if len(shape) == 0:
        return collapse(flat, [], [])
    return expand(flat, [list(range(len(shape)))], shape)


def drop_unit_dims(x: T, drop: Sequence[bool]) -> T:
    """Removes the size-1 dims marked in `drop` (a view, no copy)."""
    assert all(x.shape[i] == 1 for i, d in enumerate(drop) if d)
    kept = [i for i, d in enumerate(drop) if not d]
    if len(kept) == x.rank:
        return x
    if not kept:
        return collapse(x, [], [])
    # Each kept dim absorbs the dropped dims before it; trailing ones join the last.
    groups: list[list[int]] = []
    pending: list[int] = []
    for i in range(x.rank):
        pending.append(i)
        if not drop[i]:
            groups.append(pending)
            pending = []
    groups[-1].extend(pending)
    return collapse(x, groups, [x.shape[i] for i in kept])


def broadcast_operand(x: T, out_shape: Sequence[int]) -> tuple[T, ir.AffineMap]:
    """An operand of an elementwise op and its indexing map, numpy rules.

    Broadcast (size-1) dims are dropped from the operand rather than indexed
    with a constant 0, which keeps the maps projected permutations.
    """
    rank = len(out_shape)
    offset = rank - x.rank
    drop = [x.shape[i] == 1 and out_shape[offset + i] != 1 for i in range(x.rank)]
    y = drop_unit_dims(x, drop)
    dims = [offset + i for i in range(x.rank) if not drop[i]]
    return y, dims_map(rank, dims)


def elementwise(
    operands: Sequence[T],
    out_dtype: np.dtype,
    body: Callable[..., ir.Value],
) -> T:
    """One linalg.generic over the numpy-broadcast shape of the operands."""
    out_shape = tuple(np.broadcast_shapes(*[o.shape for o in operands]))
    rank = len(out_shape)
    ins, maps = [], []
    for o in operands:
        v, m = broadcast_operand(o, out_shape)
        ins.append(v.value)
        maps.append(m)
    init = empty(out_shape, out_dtype)
    (res,) = generic(ins, [init], [*maps, identity_map(rank)], [PARALLEL] * rank,
                     lambda *a: body(*a[: len(ins)]))
    return T(res, np.dtype(out_dtype))


def reduce(x: T, axes: Sequence[int], init_value, combine: Callable[[ir.Value, ir.Value], ir.Value],
           keepdims: bool = True) -> T:
    """Reduces `axes` of x with `combine(element, accumulator)`."""
    axes = sorted(set(a % x.rank for a in axes)) if x.rank else []
    kept = [d for d in range(x.rank) if d not in axes]
    red_shape = [x.shape[d] for d in kept]
    init = linalg.fill(scalar(init_value, x.dtype), outs=[empty(red_shape, x.dtype)])
    iters = [REDUCTION if d in axes else PARALLEL for d in range(x.rank)]
    (res,) = generic([x.value], [init], [identity_map(x.rank), dims_map(x.rank, kept)], iters,
                     lambda e, acc: combine(e, acc))
    out = T(res, x.dtype)
    if keepdims:
        out = reshape(out, [1 if d in axes else x.shape[d] for d in range(x.rank)])
    return out


def broadcast_to(x: T, shape: Sequence[int], fn: Callable[[ir.Value], ir.Value] | None = None) -> T:
    """fn(x) broadcast to `shape` (numpy rules) as one generic."""
    v, m = broadcast_operand(x, shape)
    rank = len(shape)
    (res,) = generic([v.value], [empty(shape, x.dtype)], [m, identity_map(rank)], [PARALLEL] * rank,
                     lambda a, _out: fn(a) if fn else a)
    return T(res, x.dtype)
