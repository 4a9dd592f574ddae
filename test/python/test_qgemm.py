"""Numerics of the integer GEMM kernel (qc-lower-qgemm, with qc-qconv-to-gemm
for convolutions): MatMulInteger and ConvInteger, int32 outputs, exact.

The reference is numpy in int64 (the ONNX definition: products of the raw
values summed in int32; no sum here leaves int32). onnxruntime is not one:
its u8 x s8 kernels on AVX2 saturate pairs of products in 16 bits.

Each model is compiled once; the stage dump shows which kernel mode
(B packed at compile time, B panels packed at run time, or gathered from the
image) ran, so a test fails if the kernel is bypassed. Sizes straddle the
6 x 16 register tile and the 384-pair cache block on AVX2.
"""

from __future__ import annotations

import glob
import os
import platform
import re

import numpy as np
import pytest
from helpers import make_model
from onnx import helper

import qc

U8, I8, I32 = np.uint8, np.int8, np.int32


def qrand(rng, dtype, shape):
    info = np.iinfo(dtype)
    return rng.integers(info.min, info.max + 1, shape, dtype=dtype)


def compile_kernels(model, tmp_path) -> tuple[str, str]:
    """Compiles model; (library path, the IR after the gemm stage)."""
    lib = os.path.join(tmp_path, "model.so")
    dump = os.path.join(tmp_path, "ir")
    qc.compile(model, lib, dump_ir=dump)
    (gemm,) = glob.glob(os.path.join(dump, "*-gemm.mlir"))
    with open(gemm) as f:
        return lib, f.read()


def run(lib, feeds, threads=1) -> np.ndarray:
    with qc.load(lib, threads=threads) as m:
        return m.run(feeds)["y"]


def kernel_modes(ir: str) -> set[str]:
    """The B modes of the integer kernels the model calls (p, s or i)."""
    return set(re.findall(r"call @qc_qgemm_\d+x\d+x\d+_([psi])\d+x\d+_", ir))


# ---------------------------------------------------------------- MatMulInteger


def matmul_model(m, n, k, a_type, b_type, b_const, b_values=None):
    inputs = {"a": (a_type, [m, k])}
    inits = {}
    if b_const:
        inits["b"] = b_values
    else:
        inputs["b"] = (b_type, [k, n])
    node = helper.make_node("MatMulInteger", ["a", "b"], ["y"])
    return make_model([node], inputs, {"y": (I32, [m, n])}, inits, opset=10)


SIZES = [  # (M, N, K); a constant B of one element would be folded into the payload (no GEMM)
    (1, 2, 1),  # degenerate: one k, paired with a zero; one row
    (7, 33, 1000),  # one full 6-row tile + 1 row; two panels + a 1-column tail; 2 cache blocks of pairs
    (33, 7, 33),  # a single partial panel (masked C); odd K
    (1000, 7, 7),  # 166 row tiles + 4 tail rows
    (1, 1000, 33),  # one row (a fully connected layer): 62 full panels + a tail of 8
]
SIGNS = [(U8, I8), (I8, I8), (U8, U8), (I8, U8)]  # (A, B): mixed generic, signed and unsigned named matmuls


@pytest.mark.parametrize("m,n,k", SIZES)
@pytest.mark.parametrize("a_type,b_type", SIGNS, ids=["u8s8", "s8s8", "u8u8", "s8u8"])
def test_matmul_integer_constant_b(m, n, k, a_type, b_type, tmp_path):
    rng = np.random.default_rng(11)
    a, b = qrand(rng, a_type, (m, k)), qrand(rng, b_type, (k, n))
    lib, ir = compile_kernels(matmul_model(m, n, k, a_type, b_type, True, b), tmp_path)
    assert kernel_modes(ir) == {"p"}
    want = a.astype(np.int64) @ b.astype(np.int64)
    np.testing.assert_array_equal(run(lib, {"a": a}), want.astype(I32))


@pytest.mark.parametrize("m,n,k", [(7, 33, 1000), (33, 7, 33), (1, 1, 1)])
@pytest.mark.parametrize("a_type,b_type", [(U8, I8), (I8, I8)], ids=["u8s8", "s8s8"])
def test_matmul_integer_runtime_b(m, n, k, a_type, b_type, tmp_path):
    """Both operands at run time: B's panels are packed per cache block into
    the thread's scratch buffer (mode s)."""
    rng = np.random.default_rng(12)
    a, b = qrand(rng, a_type, (m, k)), qrand(rng, b_type, (k, n))
    lib, ir = compile_kernels(matmul_model(m, n, k, a_type, b_type, False), tmp_path)
    assert kernel_modes(ir) == {"s"}
    want = a.astype(np.int64) @ b.astype(np.int64)
    np.testing.assert_array_equal(run(lib, {"a": a, "b": b}), want.astype(I32))



@pytest.mark.parametrize("m,n,k", [(5, 70, 45), (2, 32, 2), (1, 31, 800)])
def test_matmul_integer_runtime_b_avx2_tiles(m, n, k, tmp_path):
    """AVX2 (x86-64-v3, on any host with it): a run-time B takes the 2 x 32
    tile, a constant B the 6 x 16 one. Sizes straddle the 2 x 32 tile (a
    tail row, a 6-column tail panel, one exact tile, a 31-column partial
    panel) and the cache block of pairs; extremes of int8 in both."""
    rng = np.random.default_rng(13)
    a, b = qrand(rng, I8, (m, k)), qrand(rng, I8, (k, n))
    a[0, :] = -128
    b[:, 0] = -128
    want = (a.astype(np.int64) @ b.astype(np.int64)).astype(I32)
    for b_const, tile in ((False, "s2x32"), (True, "p6x16")):
        lib = os.path.join(tmp_path, f"{tile}.so")
        dump = os.path.join(tmp_path, f"ir-{tile}")
        qc.compile(matmul_model(m, n, k, I8, I8, b_const, b), lib, target="x86-64-v3", dump_ir=dump)
        (gemm,) = glob.glob(os.path.join(dump, "*-gemm.mlir"))
        with open(gemm) as f:
            assert re.search(rf"call @qc_qgemm_{m}x{n}x{k}_{tile}_", f.read()), tile
        feeds = {"a": a} if b_const else {"a": a, "b": b}
        np.testing.assert_array_equal(run(lib, feeds), want, err_msg=tile)


@pytest.mark.parametrize("a_type,b_type", [(I8, I8), (U8, I8)], ids=["s8s8", "u8s8"])
def test_matmul_integer_batched(a_type, b_type, tmp_path):
    """[3, 5, 37] x [3, 37, 19]: a loop over the batch calls the kernel on
    slices of A, B and C (A packed per slice); two threads give the same bits."""
    rng = np.random.default_rng(17)
    a, b = qrand(rng, a_type, (3, 5, 37)), qrand(rng, b_type, (3, 37, 19))
    node = helper.make_node("MatMulInteger", ["a", "b"], ["y"])
    model = make_model([node], {"a": (a_type, [3, 5, 37]), "b": (b_type, [3, 37, 19])},
                       {"y": (I32, [3, 5, 19])}, opset=10)
    lib, ir = compile_kernels(model, tmp_path)
    assert kernel_modes(ir) == {"s"}
    want = np.einsum("bmk,bkn->bmn", a.astype(np.int64), b.astype(np.int64)).astype(I32)
    np.testing.assert_array_equal(run(lib, {"a": a, "b": b}), want)
    np.testing.assert_array_equal(run(lib, {"a": a, "b": b}, threads=2), want)

EXTREMES = [  # (A value, B value, types): every pair sum leaves int16, no total leaves int32
    (255, -128, U8, I8),  # 2 * 255 * -128 = -65,280: vpmaddubsw would saturate at -32,768
    (255, 127, U8, I8),  # 64,770
    (-128, -128, I8, I8),  # 32,768: one past int16 even for int8 x int8
    (255, 255, U8, U8),  # 130,050
    (0, -128, U8, I8),  # zeros
]


@pytest.mark.parametrize("av,bv,a_type,b_type", EXTREMES)
def test_matmul_integer_extremes(av, bv, a_type, b_type, tmp_path):
    """Both operands at run time (a constant splat would be folded away)."""
    m, n, k = 7, 19, 1001  # odd K: the last pair is completed with 0
    a = np.full((m, k), av, a_type)
    b = np.full((k, n), bv, b_type)
    lib, ir = compile_kernels(matmul_model(m, n, k, a_type, b_type, False), tmp_path)
    assert kernel_modes(ir) == {"s"}
    np.testing.assert_array_equal(run(lib, {"a": a, "b": b}), np.full((m, n), av * bv * k, I32))


def test_matmul_integer_mixed_extremes_two_threads(tmp_path):
    """-128, 127, 0 and 255 side by side, in the pairs too; two threads
    split the panels and give the same bits."""
    rng = np.random.default_rng(13)
    m, n, k = 33, 1000, 1000
    a = rng.choice(np.array([0, 255], U8), (m, k))
    b = rng.choice(np.array([-128, 127, 0], I8), (k, n))
    lib, ir = compile_kernels(matmul_model(m, n, k, U8, I8, True, b), tmp_path)
    assert kernel_modes(ir) == {"p"}
    want = (a.astype(np.int64) @ b.astype(np.int64)).astype(I32)
    one = run(lib, {"a": a}, threads=1)
    np.testing.assert_array_equal(one, want)
    np.testing.assert_array_equal(run(lib, {"a": a}, threads=2), one)


# ---------------------------------------------------------------- ConvInteger


def conv_ref(x, w, pads, strides, zx=0):
    """sum (x - zx) * w over each window of the input padded with zx, int64."""
    n, c, h, wd = x.shape
    f, _, kh, kw = w.shape
    xp = np.pad(x.astype(np.int64) - zx, [(0, 0), (0, 0), (pads[0], pads[2]), (pads[1], pads[3])])
    oh = (xp.shape[2] - kh) // strides[0] + 1
    ow = (xp.shape[3] - kw) // strides[1] + 1
    out = np.zeros((n, f, oh, ow), np.int64)
    for i in range(kh):
        for j in range(kw):
            patch = xp[:, :, i:i + strides[0] * oh:strides[0], j:j + strides[1] * ow:strides[1]]
            out += np.einsum("nchw,fc->nfhw", patch, w[:, :, i, j].astype(np.int64))
    return out


def conv_model(x_shape, w, pads, strides, x_type, zx=None):
    f = w.shape[0]
    n, _, h, wd = x_shape
    oh = (h + pads[0] + pads[2] - w.shape[2]) // strides[0] + 1
    ow = (wd + pads[1] + pads[3] - w.shape[3]) // strides[1] + 1
    inits = {"w": w}
    ins = ["x", "w"]
    if zx is not None:
        inits["zx"] = np.array(zx, x_type)
        ins.append("zx")
    node = helper.make_node("ConvInteger", ins, ["y"], pads=list(pads), strides=list(strides))
    return make_model([node], {"x": (x_type, list(x_shape))}, {"y": (I32, [n, f, oh, ow])}, inits, opset=10), \
        (n, f, oh, ow)


def random_conv(seed, x_shape, f, kernel, pads, strides, x_type):
    """A ConvInteger of random int8 weights and a random input (uint8 with
    zero point 3); (model, input, the exact i32 result)."""
    rng = np.random.default_rng(seed)
    w = qrand(rng, I8, (f, x_shape[1], *kernel))
    x = qrand(rng, x_type, x_shape)
    zx = 3 if x_type == U8 else None
    model, _ = conv_model(x_shape, w, pads, strides, x_type, zx)
    return model, x, conv_ref(x, w, pads, strides, zx or 0).astype(I32)


CONVS = [  # (x shape, F, kernel, pads, strides, mode)
    # 3x3 "same": output rows of 19 >= 16 columns, so a panel is two runs of
    # the image (plain loads); K = 5*9 = 45 is odd; 7 filters: a 1-row tail.
    ((1, 5, 19, 19), 7, (3, 3), (1, 1, 1, 1), (1, 1), "i"),
    # stride 2: columns are gathered one by one.
    ((1, 6, 17, 17), 13, (3, 3), (1, 1, 1, 1), (2, 2), "i"),
    # rows of 7 < 16: gathered; two images share the weights.
    ((2, 3, 7, 7), 8, (3, 3), (1, 1, 1, 1), (1, 1), "i"),
    # 1x1: the input itself is B (panels packed per block at run time).
    ((1, 33, 9, 9), 13, (1, 1), (0, 0, 0, 0), (1, 1), "s"),
    # deep 3x3 (K = 96*9 = 864: 2 cache blocks of pairs), 56-wide rows as in the example blocks.
    ((1, 96, 12, 56), 16, (3, 3), (1, 1, 1, 1), (1, 1), "i"),
]


@pytest.mark.parametrize("x_shape,f,kernel,pads,strides,mode", CONVS,
                         ids=["3x3", "3x3s2", "narrow_batch2", "1x1", "deep"])
@pytest.mark.parametrize("x_type", [U8, I8])
def test_conv_integer(x_shape, f, kernel, pads, strides, mode, x_type, tmp_path):
    rng = np.random.default_rng(14)
    w = qrand(rng, I8, (f, x_shape[1], *kernel))
    x = qrand(rng, x_type, x_shape)
    zx = 3 if x_type == U8 else None  # pads with 3 and subtracts 3 * sum(w) outside the kernel
    model, _ = conv_model(x_shape, w, pads, strides, x_type, zx)
    lib, ir = compile_kernels(model, tmp_path)
    assert kernel_modes(ir) == {mode}
    want = conv_ref(x, w, pads, strides, zx or 0).astype(I32)
    np.testing.assert_array_equal(run(lib, {"x": x}), want)


def test_conv_integer_extremes_two_threads(tmp_path):
    """255 x -128 and 255 x 127 in every pair of a deep window (K = 32*9,
    up to 73,440 * 144 pairs); two threads give the same bits."""
    rng = np.random.default_rng(15)
    x = rng.choice(np.array([0, 255], U8), (1, 32, 18, 18))
    w = rng.choice(np.array([-128, 127], I8), (24, 32, 3, 3))
    model, _ = conv_model(x.shape, w, (1, 1, 1, 1), (1, 1), U8)
    lib, ir = compile_kernels(model, tmp_path)
    assert kernel_modes(ir) == {"i"}
    want = conv_ref(x, w, (1, 1, 1, 1), (1, 1)).astype(I32)
    one = run(lib, {"x": x}, threads=1)
    np.testing.assert_array_equal(one, want)
    np.testing.assert_array_equal(run(lib, {"x": x}, threads=2), one)


# ---------------------------------------------------------------- other ISAs


@pytest.mark.parametrize("target", ["aarch64", "riscv64-rvv128", "riscv64-rvv256"])
def test_cross_targets(target, tmp_path):
    """The split form of the kernel (even and odd halves of each pair
    multiply-added by broadcast scalars) on NEON (4 x 16 tile) and RVV
    (4 x 16, 4 x 32; B's even and odd rows stored apart for vwmacc), run
    under qemu: a 3x3 uint8 convolution with output rows spanning two
    panels, and MatMuls with row and column tails and a constant or a
    run-time B."""
    rng = np.random.default_rng(16)
    w = qrand(rng, I8, (13, 6, 3, 3))
    x = qrand(rng, U8, (1, 6, 17, 19))
    conv, _ = conv_model(x.shape, w, (1, 1, 1, 1), (1, 1), U8, 3)
    a, b = qrand(rng, U8, (13, 37)), qrand(rng, I8, (37, 35))
    matmul = matmul_model(13, 35, 37, U8, I8, True, b)
    both = matmul_model(13, 35, 37, U8, I8, False)
    for model, feeds, want, mode in ((conv, {"x": x}, conv_ref(x, w, (1, 1, 1, 1), (1, 1), 3), "i"),
                                     (matmul, {"a": a}, a.astype(np.int64) @ b, "p"),
                                     (both, {"a": a, "b": b}, a.astype(np.int64) @ b, "s")):
        lib = os.path.join(tmp_path, f"{mode}.so")
        dump = os.path.join(tmp_path, f"ir-{mode}")
        qc.compile(model, lib, target=target, dump_ir=dump)
        (gemm,) = glob.glob(os.path.join(dump, "*-gemm.mlir"))
        with open(gemm) as f:
            assert kernel_modes(f.read()) == {mode}
        with qc.load(lib) as m:
            np.testing.assert_array_equal(m.run(feeds)["y"], want.astype(I32), err_msg=f"{target} {mode}")


# ---------------------------------------------------------------- depthwise (qc-qdepthwise-conv)


def depthwise_ref(x, w, pads, strides):
    """out[n, c] = sum_{kh, kw} x[n, c, window] * w[c, 0, kh, kw], int64."""
    c = x.shape[1]
    return np.concatenate([conv_ref(x[:, i:i + 1], w[i:i + 1], pads, strides) for i in range(c)], axis=1)


@pytest.mark.parametrize("strides", [(1, 1), (2, 2)])
def test_depthwise_conv_integer(strides, tmp_path):
    """int8 x int8 depthwise (group = channels), extremes included: products
    of -128 * -128 = 16,384 stay exact in i16 (the x86 kernel's vpmaddwd pairs,
    elsewhere the loop's i16 multiply) and in the x86 byte-quad kernel
    (AVX-512 VNNI and VBMI: x read as x + 128, then 0); 37-wide rows leave a
    vector tail."""
    rng = np.random.default_rng(18)
    c = 5
    x = qrand(rng, I8, (1, c, 11, 37))
    x[0, 0] = -128
    w = qrand(rng, I8, (c, 1, 3, 3))
    w[0] = -128
    pads = (1, 1, 1, 1)
    oh, ow = (11 + 2 - 3) // strides[0] + 1, (37 + 2 - 3) // strides[1] + 1
    node = helper.make_node("ConvInteger", ["x", "w"], ["y"], pads=list(pads), strides=list(strides), group=c)
    model = make_model([node], {"x": (I8, [1, c, 11, 37])}, {"y": (I32, [1, c, oh, ow])}, {"w": w}, opset=10)
    lib, ir = compile_kernels(model, tmp_path)
    assert "linalg.depthwise_conv_2d_nchw_chw" not in ir
    if platform.machine() in ("x86_64", "AMD64"):
        assert re.search(r"func\.call @(qc_x86_pmaddwd_(16|32)|qc_dot4_us_16)\(", ir), "no x86 depthwise kernel"
    else:
        assert re.search(r"arith\.muli %\S+, %\S+ : i16", ir), "the depthwise products are not 16-bit"
    np.testing.assert_array_equal(run(lib, {"x": x}), depthwise_ref(x, w, pads, strides).astype(I32))
