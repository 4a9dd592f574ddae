"""Binary and 2-bit layers (the qc.binary nodes of binary_detect.py) as
bit-packed xor/popcount ops.

Encoding: a ±1 value is one bit, 1 for -1 and 0 for +1, packed along the
reduction dim (input channels, or K) into 64-bit words; bit b of word j is
element 64*j + b. For a, w in {-1, +1}^K with bits A, W,
    sum_k a_k w_k = K - 2 * popcount(A xor W),
since a_k w_k = -1 exactly where the bits differ. Channels are padded to a
whole word with 0 bits in both A and W: their xor is 0, and the count uses
the true K.

Other inputs (binary_detect.py says which quantizer gives which):
- sign (ternary, Sign(0) = 0): a second plane, the nonzero mask M;
  dot = popcount(M) - 2 * popcount((A xor W) and M).
- 2bit (v in {0..3}, v = b0 + 2*b1): per plane b_p, sum_k b_k w_k =
  popcount(B) - 2 * popcount(B and W), so dot = dot_0 + 2 * dot_1: two
  popcount GEMMs, shifted and added.
Masked planes make spatial zero padding exact by themselves (the mask is 0
there). Plain ±1 inputs read the padded words as +1, so the padded taps
contribute sum w instead of 0: a correction per output position and channel,
corr[p, f] = -sum over the taps of p that fall in the padding of sum_c W[f, c, tap],
is computed at compile time from the weights and added to the dot product.

The IR: linalg.generic ops on i64 words with arith.xori/andi and math.ctpop,
each tagged with a discardable `qc.op` attribute naming the qc op it is
(qc has no dialect of its own): "bitpack", "bgemm" (with `qc.bgemm` = xor,
xor_and or and), "popcount_rows", and the output transform, "threshold"
(bits out: y_bit = (dot >= t_c) xor flip_c, packed along channels) or
"scale_bias" (float out: y = dot * s_c + b_c). qc-lower-binary-gemm turns
each bgemm into a register-blocked xor/popcount kernel.
"""

from __future__ import annotations

import numpy as np

from qc.errors import UnsupportedOp
from qc.mlir import arith, ir, math, tensor

from . import builder as b
from .attrs import attrs
from .binary_detect import DOMAIN, WORD_BITS
from .conv import window
from .registry import importer

I64 = np.dtype(np.int64)
I32 = np.dtype(np.int32)
F32 = np.dtype(np.float32)
KINDS = ("ge0", "gt0", "sign", "2bit", "packed")


# ---------------------------------------------------------------- helpers


def tag(value: ir.Value, name: str, **extra: str) -> None:
    op = value.owner
    op.attributes["qc.op"] = ir.StringAttr.get(name)
    for k, v in extra.items():
        op.attributes[f"qc.{k}"] = ir.StringAttr.get(v)


def _i64(v: ir.Value) -> ir.Value:
    return arith.extui(ir.IntegerType.get_signless(64), v)


def _bit_at(bit: ir.Value, pos: ir.Value, acc: ir.Value) -> ir.Value:
    """acc | (bit << pos) for an i1 bit and an i64 position."""
    return arith.ori(acc, arith.shli(_i64(bit), pos))


def _index_i64(dim: int) -> ir.Value:
    from mlir.dialects import linalg as ld

    return arith.index_cast(ir.IntegerType.get_signless(64), ld.IndexOp(dim).result)


def words(n: int) -> int:
    return -(-n // WORD_BITS)


# ---------------------------------------------------------------- bit-packing


def plane_bits(kind: str, x: ir.Value, hi: float, mul: float) -> list[ir.Value]:
    """The i1 bits of one float element, one per plane."""
    f32 = ir.F32Type.get()
    zero = arith.constant(f32, 0.0)
    if kind == "ge0":  # x >= 0 -> +1: bit = not (x >= 0), NaN -> -1 as in Where
        return [arith.cmpf(arith.CmpFPredicate.ULT, x, zero)]
    if kind == "gt0":
        return [arith.cmpf(arith.CmpFPredicate.ULE, x, zero)]
    if kind == "sign":
        return [arith.cmpf(arith.CmpFPredicate.OLT, x, zero), arith.cmpf(arith.CmpFPredicate.ONE, x, zero)]
    # 2bit: v = Round(Clip(x, 0, hi) * mul) in {0..3}, exactly as ONNX computes it.
    clipped = arith.minimumf(arith.maximumf(x, zero), arith.constant(f32, hi))
    v = arith.fptosi(ir.IntegerType.get_signless(32), math.roundeven(arith.mulf(clipped, arith.constant(f32, mul))))
    i32 = ir.IntegerType.get_signless(32)
    one = arith.constant(i32, 1)
    b0 = arith.trunci(ir.IntegerType.get_signless(1), arith.andi(v, one))
    b1 = arith.trunci(ir.IntegerType.get_signless(1), arith.andi(arith.shrui(v, one), one))
    return [b0, b1]


# Pad values that give 0 in every plane (and are 0 in the mask).
_PAD_VALUE = {"ge0": 0.0, "gt0": 1.0, "sign": 0.0, "2bit": 0.0}


def bitpack(x: b.T, axis: int, kind: str, hi: float = 0.0, mul: float = 0.0) -> list[b.T]:
    """Packs `axis` of a float tensor into 64-bit words, moved to the last dim:
    [N, C, H, W] along C -> [N, H, W, ceil(C/64)]; [M, K] along K -> [M, ceil(K/64)]."""
    c = x.shape[axis]
    cw = words(c)
    if cw * WORD_BITS != c:
        hi_pad = [0] * x.rank
        hi_pad[axis] = cw * WORD_BITS - c
        shape = list(x.shape)
        shape[axis] = cw * WORD_BITS
        op = tensor.PadOp(b.tensor_type(shape, F32), x.value, [], [], [0] * x.rank, hi_pad)
        blk = op.regions[0].blocks.append(*([ir.IndexType.get()] * x.rank))
        with ir.InsertionPoint(blk):
            tensor.YieldOp(b.scalar(_PAD_VALUE[kind], F32))
        x = b.T(op.result, F32)
    other = [d for d in range(x.rank) if d != axis]
    out_shape = [x.shape[d] for d in other] + [cw]
    # The packed dim split into (word, bit), so that every map is a permutation.
    split = [[i] for i in range(axis)] + [[axis, axis + 1]] + [[i + 1] for i in range(axis + 1, x.rank)]
    xs = b.expand(x, split, [*x.shape[:axis], cw, WORD_BITS, *x.shape[axis + 1:]])
    # Loops: the dims of the split tensor in its own order, the bit b a
    # reduction among them. A conv input [N, CW, 64, H, W] is then read
    # contiguously along W, the innermost loop (b innermost would stride
    # over channels, H*W floats apart).
    nl = x.rank + 1
    in_map = b.identity_map(nl)
    bit_dim = axis + 1
    out_dims = [d if d < axis else d + 1 for d in other] + [axis]
    out_map = b.dims_map(nl, out_dims)
    iters = [b.REDUCTION if d == bit_dim else b.PARALLEL for d in range(nl)]
    x = xs
    nplanes = 2 if kind in ("sign", "2bit") else 1
    inits = [b.filled(out_shape, I64, 0) for _ in range(nplanes)]

    def body(v, *accs):
        pos = _index_i64(bit_dim)
        return [_bit_at(bit, pos, acc) for bit, acc in zip(plane_bits(kind, v, hi, mul), accs)]

    res = b.generic([x.value], inits, [in_map, *[out_map] * nplanes], iters, body)
    tag(res[0], "bitpack", kind=kind)
    return [b.T(r, I64) for r in res]


def pack_bits_np(bits: np.ndarray) -> np.ndarray:
    """[..., 64*W] bools -> [..., W] int64 words (bit b of word j = element 64j + b)."""
    *lead, n = bits.shape
    w = bits.reshape(*lead, n // WORD_BITS, WORD_BITS).astype(np.uint64)
    return (w << np.arange(WORD_BITS, dtype=np.uint64)).sum(axis=-1, dtype=np.uint64).view(np.int64)


def conv_weight_words(w: np.ndarray, fpad: int) -> np.ndarray:
    """[F, C, KH, KW] ±1 -> [KH*KW*CW, Fpad] words, the B operand of the bgemm
    (k = (kh, kw, cw), the order of the im2col columns)."""
    f, c, kh, kw = w.shape
    cw = words(c)
    bits = np.zeros((kh, kw, fpad, cw * WORD_BITS), bool)
    bits[:, :, :f, :c] = (w < 0).transpose(2, 3, 0, 1)
    packed = pack_bits_np(bits)  # [KH, KW, Fpad, CW]
    return np.ascontiguousarray(packed.transpose(0, 1, 3, 2).reshape(kh * kw * cw, fpad))


def matmul_weight_words(w: np.ndarray, fpad: int) -> np.ndarray:
    """[K, F] ±1 -> [ceil(K/64), Fpad] words."""
    k, f = w.shape
    bits = np.zeros((fpad, words(k) * WORD_BITS), bool)
    bits[:f, :k] = (w < 0).T
    return np.ascontiguousarray(pack_bits_np(bits).T)


# ---------------------------------------------------------------- the GEMM


def bgemm(planes: list[b.T], w_words: np.ndarray, mode: str) -> b.T:
    """P[m, f] = sum_k popcount(op(A[m, k], W[k, f])) as i32, with op
    xor (A ^ W), xor_and ((A ^ W) & M, planes = [A, M]) or and (A & W)."""
    m = planes[0].shape[0]
    fpad = w_words.shape[1]
    wt = b.constant(w_words)
    maps_a = [b.dims_map(3, [0, 2])] * len(planes)
    maps = [*maps_a, b.dims_map(3, [2, 1]), b.dims_map(3, [0, 1])]
    i32 = ir.IntegerType.get_signless(32)

    def body(*args):
        acc = args[-1]
        wv = args[-2]
        if mode == "xor":
            word = arith.xori(args[0], wv)
        elif mode == "xor_and":
            word = arith.andi(arith.xori(args[0], wv), args[1])
        else:
            word = arith.andi(args[0], wv)
        return arith.addi(acc, arith.trunci(i32, math.ctpop(word)))

    (res,) = b.generic([p.value for p in planes] + [wt.value], [b.filled([m, fpad], I32, 0)], maps,
                       [b.PARALLEL, b.PARALLEL, b.REDUCTION], body)
    tag(res, "bgemm", bgemm=mode)
    return b.T(res, I32)


def popcount_rows(plane: b.T) -> b.T:
    """rc[m] = sum_k popcount(plane[m, k]) (the nonzero taps of a row)."""
    m = plane.shape[0]
    i32 = ir.IntegerType.get_signless(32)
    (res,) = b.generic([plane.value], [b.filled([m], I32, 0)], [b.identity_map(2), b.dims_map(2, [0])],
                       [b.PARALLEL, b.REDUCTION],
                       lambda v, acc: arith.addi(acc, arith.trunci(i32, math.ctpop(v))))
    tag(res, "popcount_rows")
    return b.T(res, I32)


# ---------------------------------------------------------------- the layer


class Dot:
    """How the dot product of a row and a column comes out of the popcounts:
    dot = sum_p 2^p * (rowk_p - 2 * P_p) + corr, with rowk_p the constant K
    (plain ±1) or the per-row popcount of plane p's mask (sign, 2bit)."""

    def __init__(self, ps: list[b.T], rowks: list, corr: np.ndarray | None):
        self.ps, self.rowks, self.corr = ps, rowks, corr

    def operands(self, row_rank: int) -> tuple[list[ir.Value], list[list[int]]]:
        """The tensors to read and, per tensor, which loop dims index it:
        rows are loops 0..row_rank-1, the channel is loop row_rank (rows of
        P are [*rows, Fpad] and the corr is [positions, Fpad])."""
        vals, dims = [], []
        rows = list(range(row_rank))
        for p in self.ps:
            vals.append(p.value)
            dims.append([*rows, row_rank])
        for rk in self.rowks:
            if isinstance(rk, b.T):
                vals.append(rk.value)
                dims.append(rows)
        if self.corr is not None:
            vals.append(b.constant(self.corr).value)
            dims.append([row_rank - 1, row_rank])
        return vals, dims

    def value(self, args: list[ir.Value]) -> ir.Value:
        """dot as i32, from the scalars `operands` listed."""
        i32 = ir.IntegerType.get_signless(32)
        it = iter(args)
        ps = [next(it) for _ in self.ps]
        rks = [next(it) if isinstance(rk, b.T) else arith.constant(i32, int(rk)) for rk in self.rowks]
        one = arith.constant(i32, 1)
        total = None
        for i, (p, rk) in enumerate(zip(ps, rks)):
            term = arith.subi(rk, arith.shli(p, one))
            if i:
                term = arith.shli(term, arith.constant(i32, i))
            total = term if total is None else arith.addi(total, term)
        if self.corr is not None:
            total = arith.addi(total, next(it))
        return total


def _regroup(p: b.T, rows: list[int]) -> b.T:
    """P [M, Fpad] viewed as [*rows, Fpad]."""
    if len(rows) == 1:
        return p
    return b.expand(p, [[0, 1], [2]], [*rows, p.shape[1]])


def float_out(dot: Dot, rows: list[int], f: int, scale: np.ndarray, bias: np.ndarray, conv: bool) -> b.T:
    """y = float(dot) * s_c + b_c; conv: [N, F, P] (channel-major), matmul: [M, F]."""
    nr = len(rows)
    nl = nr + 1
    vals, dims = dot.operands(nr)
    # Only the real channels: P and the correction have Fpad columns.
    vals = [_first_columns(v, f) if nr in ds else v for v, ds in zip(vals, dims)]
    s, bb = b.constant(scale.astype(np.float32)), b.constant(bias.astype(np.float32))
    # Loops (rows..., f): P is read along its rows, the channel-major output
    # written transposed. (Loops (n, f, p) read P 4*Fpad bytes apart: a
    # 128-channel 56x56 layer took 5.5 ms instead of 1.9.)
    maps = [b.dims_map(nl, d) for d in dims] + [b.dims_map(nl, [nr])] * 2
    out_shape = [rows[0], f, rows[1]] if conv else [rows[0], f]
    out_map = b.dims_map(nl, [0, nr, 1] if conv else [0, nr])
    f32 = ir.F32Type.get()

    def body(*args):
        d = dot.value(list(args[:len(vals)]))
        sv, bv = args[len(vals)], args[len(vals) + 1]
        return arith.addf(arith.mulf(arith.sitofp(f32, d), sv), bv)

    (res,) = b.generic([*vals, s.value, bb.value], [b.empty(out_shape, F32)], [*maps, out_map],
                       [b.PARALLEL] * nl, body)
    # On AVX2 qc-lower-binary-gemm computes this op (and a residual Add fused
    # with it) in the lookup kernel's epilogue; it knows the op by its body.
    tag(res, "scale_bias")
    return b.T(res, F32)


def _first_columns(v: ir.Value, f: int) -> ir.Value:
    ty = ir.RankedTensorType(v.type)
    shape = list(ty.shape)
    if shape[-1] == f:
        return v
    out = ir.RankedTensorType.get([*shape[:-1], f], ty.element_type)
    r = len(shape)
    return tensor.ExtractSliceOp(out, v, [], [], [], [0] * r, [*shape[:-1], f], [1] * r).result


def bits_out(dot: Dot, rows: list[int], fpad: int, t: np.ndarray, flip: np.ndarray) -> b.T:
    """out[rows, fw] = OR_b ((dot[rows, 64 fw + b] >= t) xor flip) << b: the
    next layer's input, packed along channels."""
    nr = len(rows)
    fw = fpad // WORD_BITS
    nl = nr + 2  # rows..., fw, b
    vals, dims = dot.operands(nr)
    maps = []
    for i, ds in enumerate(dims):
        if nr in ds:  # [.., Fpad] viewed as [.., FW, 64]: the channel is (fw, b)
            v = b.T(vals[i], I32)
            vals[i] = b.expand(v, [*[[j] for j in range(v.rank - 1)], [v.rank - 1, v.rank]],
                               [*v.shape[:-1], fw, WORD_BITS]).value
            ds = [*ds[:-1], nr, nr + 1]
        maps.append(b.dims_map(nl, ds))
    # t and flip in one constant, tf = 2 t + flip: canonicalization folds a
    # splat operand (flip is often the same for every channel) into the body
    # and drops the op's attributes with it; one operand is a splat far less often.
    tf = b.constant((2 * t.astype(np.int64) + flip.astype(np.int64)).reshape(fw, WORD_BITS))
    pmap = b.dims_map(nl, [nr, nr + 1])
    out_map = b.dims_map(nl, list(range(nr + 1)))
    i64 = ir.IntegerType.get_signless(64)

    def body(*args):
        dv = arith.extsi(i64, dot.value(list(args[:len(vals)])))
        tfv, acc = args[len(vals):]
        one = arith.constant(i64, 1)
        tv, fv = arith.shrsi(tfv, one), arith.andi(tfv, one)
        ge = arith.extui(i64, arith.cmpi(arith.CmpIPredicate.sge, dv, tv))
        bit = arith.trunci(ir.IntegerType.get_signless(1), arith.xori(ge, fv))
        return _bit_at(bit, _index_i64(nl - 1), acc)

    (res,) = b.generic([*vals, tf.value], [b.filled([*rows, fw], I64, 0)], [*maps, pmap, out_map],
                       [b.PARALLEL] * (nr + 1) + [b.REDUCTION], body)
    tag(res, "threshold")
    if len(dot.ps) == 1 and not isinstance(dot.rowks[0], b.T):
        # dot = K - 2 P (+ corr): qc-lower-binary-gemm may fold this op into the GEMM's kernel.
        res.owner.attributes["qc.k"] = ir.IntegerAttr.get(i64, int(dot.rowks[0]))
    return b.T(res, I64)


def _check(node, ctx, a):
    kind = a.get("input")
    if kind not in KINDS:
        raise UnsupportedOp(node, f"input kind '{kind}'", ", ".join(KINDS))
    if a.get("output") not in ("float", "bits"):
        raise UnsupportedOp(node, f"output '{a.get('output')}'", "float, bits")
    w = ctx.const(node.input[1])
    if w is None or not np.all(np.abs(w) == 1):
        raise UnsupportedOp(node, "weights must be constants in {-1, +1}")
    x = ctx.get(node.input[0])
    want = I64 if kind == "packed" else F32
    if x.dtype != want:
        raise UnsupportedOp(node, f"input has element type {x.dtype}", str(want))
    return kind, x, w


def _mode_and_rowks(kind: str, planes: list[b.T], k: int):
    """The bgemm mode per plane and each plane's row count (K or a popcount)."""
    if kind == "sign":
        return [("xor_and", planes)], [popcount_rows(planes[1])]
    if kind == "2bit":
        return [("and", [p]) for p in planes], [popcount_rows(p) for p in planes]
    return [("xor", planes)], [k]


def _finish(node, a, ctx, dot: Dot, rows, f, fpad, conv):
    p0, p1 = ctx.const(node.input[2]), ctx.const(node.input[3])
    if a["output"] == "bits":
        return bits_out(dot, rows, fpad, p0, p1)
    y = float_out(dot, rows, f, p0, p1, conv)
    return y


@importer("BinaryConv", domain=DOMAIN)
def import_binary_conv(ctx, node):
    a = attrs(node)
    kind, x, w = _check(node, ctx, a)
    f, c, kh, kw = w.shape
    cw = words(c)
    fpad = words(f) * WORD_BITS
    if kind == "packed":
        n, h, wd, xcw = x.shape
        if xcw != cw:
            raise UnsupportedOp(node, f"packed input has {xcw} words per pixel, the weights need {cw}")
        planes = [x]
    else:
        n, xc, h, wd = x.shape
        if xc != c:
            raise UnsupportedOp(node, f"input has {xc} channels, the weights {c}")
        planes = bitpack(x, 1, kind, a.get("q_hi", 0.0), a.get("q_mul", 0.0))
    win = window(node, a, (h, wd), (kh, kw))
    oh, ow = win.out
    planes = [_im2col(_pad_hw(p, win.low, win.high_fill), win, oh, ow) for p in planes]
    k = c * kh * kw
    groups, rowks = _mode_and_rowks(kind, planes, k)
    ww = conv_weight_words(w, fpad)
    ps = [bgemm(ps_, ww, mode) for mode, ps_ in groups]
    masked = kind in ("sign", "2bit")
    corr = None if masked else padding_correction(w, (h, wd), win, fpad)
    rows = [n, oh * ow]
    dot = Dot([_regroup(p, rows) for p in ps], [_regroup_rows(r, rows) for r in rowks], corr)
    y = _finish(node, a, ctx, dot, rows, f, fpad, True)
    if a["output"] == "bits":
        return [b.expand(y, [[0], [1, 2], [3]], [n, oh, ow, fpad // WORD_BITS])]
    return [b.expand(y, [[0], [1], [2, 3]], [n, f, oh, ow])]


def _regroup_rows(rk, rows):
    if not isinstance(rk, b.T) or len(rows) == 1:
        return rk
    return b.expand(rk, [[0, 1]], rows)


@importer("BinaryMatMul", domain=DOMAIN)
def import_binary_matmul(ctx, node):
    a = attrs(node)
    kind, x, w = _check(node, ctx, a)
    k, f = w.shape
    fpad = words(f) * WORD_BITS
    m = x.shape[0]
    if kind == "packed":
        if x.shape[1] != words(k):
            raise UnsupportedOp(node, f"packed input has {x.shape[1]} words per row, the weights need {words(k)}")
        planes = [x]
    else:
        if x.shape[1] != k:
            raise UnsupportedOp(node, f"input has {x.shape[1]} columns, the weights {k} rows")
        planes = bitpack(x, 1, kind, a.get("q_hi", 0.0), a.get("q_mul", 0.0))
    groups, rowks = _mode_and_rowks(kind, planes, k)
    ww = matmul_weight_words(w, fpad)
    ps = [bgemm(ps_, ww, mode) for mode, ps_ in groups]
    dot = Dot(ps, rowks, None)
    return [_finish(node, a, ctx, dot, [m], f, fpad, False)]


# ---------------------------------------------------------------- im2col on words


def _pad_hw(x: b.T, low, high) -> b.T:
    """Zero words around the spatial dims of [N, H, W, CW]."""
    if not any(low) and not any(high):
        return x
    lo, hi = [0, *low, 0], [0, *high, 0]
    shape = [d + p + q for d, p, q in zip(x.shape, lo, hi)]
    op = tensor.PadOp(b.tensor_type(shape, I64), x.value, [], [], lo, hi)
    blk = op.regions[0].blocks.append(*([ir.IndexType.get()] * 4))
    with ir.InsertionPoint(blk):
        tensor.YieldOp(b.scalar(0, I64))
    return b.T(op.result, I64)


def _im2col(x: b.T, win, oh: int, ow: int) -> b.T:
    """[N, Hp, Wp, CW] -> [N*OH*OW, KH*KW*CW]: row (n, oh, ow), column (kh, kw, cw)."""
    n, _, _, cw = x.shape
    kh, kw = win.kernel
    (sh, sw), (dh, dw) = win.strides, win.dilations
    if kh == kw == 1 and sh == sw == 1 and x.shape[1:3] == (oh, ow):
        return b.collapse(x, [[0, 1, 2], [3]], [n * oh * ow, cw])
    d = [ir.AffineDimExpr.get(i) for i in range(6)]  # n, oh, ow, kh, kw, cw
    in_map = ir.AffineMap.get(6, 0, [d[0], d[1] * sh + d[3] * dh, d[2] * sw + d[4] * dw, d[5]])
    (res,) = b.generic([x.value], [b.empty([n, oh, ow, kh, kw, cw], I64)], [in_map, b.identity_map(6)],
                       [b.PARALLEL] * 6, lambda v, _o: v)
    return b.collapse(b.T(res, I64), [[0, 1, 2], [3, 4, 5]], [n * oh * ow, kh * kw * cw])


def padding_correction(w: np.ndarray, hw, win, fpad: int) -> np.ndarray | None:
    """corr[p, f] = -sum over the taps of output position p that read the
    zero padding of sum_c W[f, c, tap]: those taps count as +1 in
    K - 2 popcount, and as 0 in the float convolution. None without padding."""
    if not any(win.low) and not any(win.high):
        return None
    f = w.shape[0]
    wsum = w.astype(np.int64).sum(axis=1)  # [F, KH, KW]
    valid = []
    for size, o, k, s, dl, lo in zip(hw, win.out, win.kernel, win.strides, win.dilations, win.low):
        pos = np.arange(o)[:, None] * s + np.arange(k)[None, :] * dl - lo
        valid.append((pos >= 0) & (pos < size))
    padded = 1 - np.einsum("ak,bl->abkl", valid[0].astype(np.int64), valid[1].astype(np.int64))
    corr = -np.einsum("abkl,fkl->abf", padded, wsum).reshape(-1, f)
    if not corr.any():
        return None
    out = np.zeros((corr.shape[0], fpad), np.int32)
    out[:, :f] = corr
    return out
