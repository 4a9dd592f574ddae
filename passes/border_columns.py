"""qc-border-columns: the left and right border columns of a padded buffer
as one fill.

qc-pad-border fills a padded image's border as four boxes per plane: the
top and bottom rows, then the left and the right column. Each column is
one element per row, a row apart, so the two columns touch every cache
line of the buffer twice, one element at a time (a MobileNet block's
int8 58 x 58 x 96 buffer: 10752 byte stores, 2% of the block). But the
right border of row r and the left border of row r + 1 are adjacent in
memory. So after bufferization the two column fills become one fill of
a strided view whose rows are those pairs:

    view[..., k, j] = buffer[..., r0 - 1 + k, W - b + j]   (flat, row pitch W)
    k in [0, h], j in [0, a + b)

for left columns of width a and right ones of width b over rows r0 to
r0 + h - 1. Row k's pair is the right border of row r0 - 1 + k and the
left border of row r0 + k; the first and the last pair reach into the
top and bottom border rows, which hold the same value. Needs those rows
filled with it too (qc-pad-border's top and bottom boxes), so that
nothing outside the border is written.
"""

from __future__ import annotations

from dataclasses import dataclass

from qc.mlir import ir, linalg, memref

from .base import Pass, collect_ops
from .pad_border import static_slice
from .winograd_loops import strides_of


@dataclass(frozen=True)
class BorderColumns(Pass):
    """Needs bufferized IR. Leaves each pair of linalg.fill ops of the
    same value, in one block, on the left and the right column box of
    one identity-layout buffer, with fills of that value on the rows
    above and below them (qc-pad-border's boxes), as one fill of a
    memref.reinterpret_cast of that buffer."""

    name = "qc-border-columns"

    def apply(self, module: ir.Module) -> None:
        fills = [op.operation for op in collect_ops(module.operation, ("linalg.fill",))]
        boxes = {i: box for i, f in enumerate(fills) if (box := _column_box(f)) is not None}
        for i in list(boxes):
            if i not in boxes:
                continue  # merged already
            left = fills[i]
            for j in list(boxes):
                right = fills[j]
                # Cheapest test first: a ResNet holds hundreds of border boxes.
                if j != i and _pair(boxes[i], boxes[j]) and _apart(left, right) and _rows_around(
                        boxes[i], boxes[j], [boxes[k] for k in boxes if fills[k].block == left.block]):
                    _merge(left, right, boxes[i], boxes[j])
                    del boxes[i], boxes[j]
                    break


def _column_box(fill: ir.Operation):
    """(buffer, value, offsets, sizes) of a fill of a static unit-stride
    subview of an identity-layout buffer, or None."""
    out = fill.operands[1]
    sub = getattr(out.owner, "operation", None)
    if sub is None or sub.name != "memref.subview" or len(sub.operands) != 1:
        return None
    src = sub.operands[0]
    ty = ir.MemRefType(src.type)
    if not ty.has_static_shape or ty.rank < 2 or ty.get_strides_and_offset() != (strides_of(ty.shape), 0):
        return None
    box = static_slice(sub)
    return None if box is None else (src, fill.operands[0], *box)


def _apart(x: ir.Operation, y: ir.Operation) -> bool:
    """Whether x and y are in one block with nothing but fills, subviews
    and constants between them (nothing that could read the border)."""
    if x.block != y.block:
        return False
    ops = [o.operation for o in x.block.operations]
    i, j = sorted((ops.index(x), ops.index(y)))
    return all(o.name in ("linalg.fill", "memref.subview", "arith.constant") for o in ops[i + 1:j])


def _pair(left, right) -> bool:
    """Whether left and right are the left and right column boxes of one
    buffer's rows, with a border row above and below them."""
    src, value, lo, ls = left
    src2, value2, ro, rs = right
    if src != src2 or not _same_value(value, value2):
        return False
    shape = ir.MemRefType(src.type).shape
    h, w = shape[-2], shape[-1]
    a, b = ls[-1], rs[-1]
    return (lo[:-1] == ro[:-1] and ls[:-1] == rs[:-1] and lo[-1] == 0 and ro[-1] + b == w
            and a + b < w and lo[-2] >= 1 and lo[-2] + ls[-2] < h)


def _rows_around(left, right, others) -> bool:
    """Whether other fills of the value (qc-pad-border's top and bottom
    boxes) cover what the merged view writes outside the two columns: the
    right border of the row above them and the left border of the row
    below."""
    src, value, lo, ls = left
    a, b, w = ls[-1], right[3][-1], ir.MemRefType(src.type).shape[-1]
    above, below = lo[-2] - 1, lo[-2] + ls[-2]

    def covered(row: int, c0: int, c1: int) -> bool:
        return any(s == src and _same_value(v, value)
                   and all(o <= lo[d] and lo[d] + ls[d] <= o + n for d, (o, n) in enumerate(zip(off[:-2], size[:-2])))
                   and off[-2] <= row < off[-2] + size[-2] and off[-1] <= c0 and c1 <= off[-1] + size[-1]
                   for s, v, off, size in others)

    return covered(above, w - b, w) and covered(below, 0, a)


def _same_value(x: ir.Value, y: ir.Value) -> bool:
    if x == y:
        return True
    ox, oy = getattr(x.owner, "operation", None), getattr(y.owner, "operation", None)
    return (ox is not None and oy is not None and ox.name == oy.name == "arith.constant"
            and x.type == y.type and ox.attributes["value"] == oy.attributes["value"])


def _merge(left: ir.Operation, right: ir.Operation, lbox, rbox) -> None:
    src, value, lo, ls = lbox
    ty = ir.MemRefType(src.type)
    strides = strides_of(ty.shape)
    w, a, b = ty.shape[-1], ls[-1], rbox[3][-1]
    start = lo[:-2] + [lo[-2] - 1, w - b]  # the right border of the row above the first
    offset = sum(o * s for o, s in zip(start, strides))
    sizes = ls[:-2] + [ls[-2] + 1, a + b]
    view_ty = ir.MemRefType.get(sizes, ty.element_type, ir.StridedLayoutAttr.get(offset, strides[:-2] + [w, 1]))
    with ir.InsertionPoint(left), left.location:
        view = memref.ReinterpretCastOp(view_ty, src, [], [], [], [offset], sizes, strides[:-2] + [w, 1]).result
        linalg.fill(value, outs=[view])
    for fill in (left, right):
        sub = fill.operands[1].owner.operation
        fill.erase()
        if not list(sub.results[0].uses):
            sub.erase()
