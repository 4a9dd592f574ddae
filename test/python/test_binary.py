"""Binary and 2-bit layers (frontends/onnx/binary_detect.py, binary.py):
qc's bit-packed xor/popcount layers against onnxruntime running the same
float graph. Outputs of binary layers are integers in float, so they must
match exactly; after float glue (scale, BatchNorm) within 1e-4 relative.
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from helpers import check_against_ort, make_model
from onnx import helper

import qc
from qc.frontends.onnx import binary_detect

F32 = np.float32
EXACT = dict(rtol=0, atol=0)
GLUE = dict(rtol=1e-4, atol=1e-4)


def pm1(rng, shape):
    return np.where(rng.random(shape) < 0.5, -1.0, 1.0).astype(F32)


class Net:
    """A graph under construction: nodes, constants, fresh names."""

    def __init__(self, seed=0):
        self.rng = np.random.default_rng(seed)
        self.nodes, self.inits, self.n = [], {}, 0

    def name(self, stem):
        self.n += 1
        return f"{stem}{self.n}"

    def const(self, value, stem="c"):
        n = self.name(stem)
        self.inits[n] = np.asarray(value)
        return n

    def op(self, op_type, inputs, **attrs):
        out = self.name(op_type.lower())
        self.nodes.append(helper.make_node(op_type, inputs, [out], name=out, **attrs))
        return out

    def quant(self, x, kind):
        """The activation quantizer of a binary layer, as exported graphs write it."""
        if kind == "sign":
            return self.op("Sign", [x])
        if kind == "2bit":
            c = self.op("Clip", [x, self.const(F32(0)), self.const(F32(1))])
            r = self.op("Round", [self.op("Mul", [c, self.const(F32(3))])])
            return self.op("Div", [r, self.const(F32(3))])
        cond = {"ge0": "GreaterOrEqual", "gt0": "Greater"}[kind]
        c = self.op(cond, [x, self.const(F32(0))])
        return self.op("Where", [c, self.const(F32(1)), self.const(F32(-1))])

    def bn(self, x, ch):
        r = self.rng
        params = [r.uniform(0.5, 2, ch) * r.choice([-1, 1], ch), r.normal(0, 1, ch), r.normal(0, 2, ch),
                  r.uniform(0.5, 2, ch)]
        return self.op("BatchNormalization", [x, *[self.const(p.astype(F32)) for p in params]])

    def bconv(self, x, cin, cout, kind, k=3, stride=1, pad=1):
        q = self.quant(x, kind)
        w = self.const(pm1(self.rng, (cout, cin, k, k)), "w")
        return self.op("Conv", [q, w], pads=[pad] * 4, strides=[stride] * 2)

    def model(self, x_shape, out, out_shape):
        return make_model(self.nodes, {"x": (F32, x_shape)}, {out: (F32, out_shape)}, self.inits)


def compile_input(model) -> str:
    return qc.compile(model, emit="input")


def feeds(shape, seed=1, zeros=0):
    x = np.random.default_rng(seed).standard_normal(shape).astype(F32)
    if zeros:  # exact zeros: Sign(0) = 0 must be reproduced
        x.reshape(-1)[::zeros] = 0.0
    return {"x": x}


# ---------------------------------------------------------------- single layers


CONV_CASES = [
    # (C, F, H, stride, pad): why
    (3, 5, 6, 1, 1),     # one partial word of 3 channels, padding 1
    (33, 7, 5, 2, 1),    # 33 channels: a word with 31 padding bits; stride 2, odd size
    (65, 9, 6, 1, 1),    # 65 channels: one full word and one with 1 bit
    (64, 64, 4, 2, 0),   # exactly one word each way, no padding, stride 2
    (128, 70, 5, 1, 1),  # two full words; 70 filters: two output words
]


@pytest.mark.parametrize("kind", ["ge0", "gt0", "sign"])
@pytest.mark.parametrize("c,f,h,stride,pad", CONV_CASES)
def test_binary_conv(tmp_path, kind, c, f, h, stride, pad):
    net = Net(c * 100 + f)
    y = net.bconv("x", c, f, kind, stride=stride, pad=pad)
    oh = (h + 2 * pad - 3) // stride + 1
    model = net.model([2, c, h, h], y, [2, f, oh, oh])
    check_against_ort(model, feeds([2, c, h, h], zeros=7 if kind == "sign" else 0), tmp_path, **EXACT)


def test_sign_zero_is_zero(tmp_path):
    """Sign(0) = 0 in ONNX: an all-zero input row contributes nothing, not ±1."""
    net = Net(5)
    y = net.bconv("x", 4, 3, "sign")
    model = net.model([1, 4, 5, 5], y, [1, 3, 5, 5])
    x = np.zeros((1, 4, 5, 5), F32)
    x[0, :, 2, 2] = [1, -2, 0, 3]
    got = check_against_ort(model, {"x": x}, tmp_path, **EXACT)
    # Only the centre pixel is nonzero: with a wrong Sign(0) every output would be odd-sized sums of ±1.
    assert np.count_nonzero(got[y][0, :, 0, 0]) == 0


def test_ge0_zero_is_plus_one(tmp_path):
    """Where(x >= 0, 1, -1) maps 0 to +1, Where(x > 0, 1, -1) to -1: both exact."""
    for kind in ("ge0", "gt0"):
        net = Net(6)
        y = net.bconv("x", 3, 2, kind, pad=0)
        model = net.model([1, 3, 3, 3], y, [1, 2, 1, 1])
        check_against_ort(model, {"x": np.zeros((1, 3, 3, 3), F32)}, tmp_path, **EXACT)


@pytest.mark.parametrize("kind", ["ge0", "sign"])
@pytest.mark.parametrize("m,k,n", [(4, 3, 5), (3, 65, 33), (5, 128, 64),  # tails of a word each way
                                   (9, 2100, 70)])  # 33 words: the kernel's byte counters widen after 31
def test_binary_matmul(tmp_path, kind, m, k, n):
    net = Net(k)
    q = net.quant("x", kind)
    y = net.op("MatMul", [q, net.const(pm1(net.rng, (k, n)), "w")])
    model = net.model([m, k], y, [m, n])
    check_against_ort(model, feeds([m, k], zeros=5 if kind == "sign" else 0), tmp_path, **EXACT)


def test_binary_gemm_trans_b_bias(tmp_path):
    net = Net(11)
    q = net.quant("x", "ge0")
    y = net.op("Gemm", [q, net.const(pm1(net.rng, (10, 70)), "w"), net.const(net.rng.normal(size=10).astype(F32))],
               transB=1, alpha=0.5, beta=2.0)
    model = net.model([3, 70], y, [3, 10])
    check_against_ort(model, feeds([3, 70]), tmp_path, **GLUE)


# ---------------------------------------------------------------- fused glue


@pytest.mark.parametrize("kind", ["ge0", "sign"])
def test_scale_and_batchnorm_fused_float(tmp_path, kind):
    """scale * conv + BN, then a float consumer: one multiply-add per channel."""
    net = Net(21)
    y = net.bconv("x", 20, 12, kind)
    y = net.op("Mul", [y, net.const(net.rng.uniform(0.1, 1, (12, 1, 1)).astype(F32))])
    y = net.bn(y, 12)
    y = net.op("Relu", [y])
    model = net.model([1, 20, 7, 7], y, [1, 12, 7, 7])
    check_against_ort(model, feeds([1, 20, 7, 7], zeros=9 if kind == "sign" else 0), tmp_path, **GLUE)


@pytest.mark.parametrize("kind", ["ge0", "gt0", "sign"])
def test_two_layers_bits_between(tmp_path, kind):
    """Conv -> BN -> PReLU -> quantizer -> Conv: the first layer writes bits
    through one threshold per channel; the second reads them packed."""
    net = Net(31)
    h1 = net.bconv("x", 19, 70, kind, stride=2)
    h1 = net.bn(h1, 70)
    h1 = net.op("PRelu", [h1, net.const(np.full((70, 1, 1), 0.25, F32))])
    y = net.bconv(h1, 70, 6, kind)
    model = net.model([1, 19, 9, 9], y, [1, 6, 5, 5])
    text = compile_input(model)
    assert text.count('qc.op = "threshold"') == 1
    check_against_ort(model, feeds([1, 19, 9, 9], zeros=11 if kind == "sign" else 0), tmp_path, **EXACT)


def _kernels(model) -> list[str]:
    """The binary GEMM kernels of the model's AVX2 assembly."""
    asm = qc.compile(model, emit="asm", target="x86-64-v3")
    return [line[:-1] for line in asm.splitlines() if line.startswith("qc_bgemm_") and line.endswith(":")]


@pytest.mark.parametrize("c,f,h,stride", [
    (65, 100, 7, 1),  # 2 words x 9 taps = 18 words of k: byte counters widened after 7 and 14; 100 of 128 channels
    (130, 64, 9, 2),  # 3 words, stride 2: 25 output positions, an odd row left for the 1-row tile
    (3, 70, 5, 1),    # one partial word: k is 9 words, 70 channels in two tiles
])
def test_bits_out_folded_into_lookup_kernel(tmp_path, c, f, h, stride):
    """A binary layer writing bits: on AVX2 the threshold runs in the lookup
    kernel's epilogue (per-channel thresholds, with the padding correction of
    border positions as classes of rows), and the counts are never stored.
    BN shifts far out of range make channels that are always or never set
    (clamped thresholds); negative BN scales flip channels."""
    net = Net(c * 10 + f)
    h1 = net.bconv("x", c, f, "ge0", stride=stride)
    shift = net.rng.normal(0, 3, f)
    shift[:4] = [1e4, -1e4, 3e3, -3e3]
    h1 = net.op("Add", [h1, net.const(shift.reshape(1, f, 1, 1).astype(F32))])
    h1 = net.bn(h1, f)
    y = net.bconv(h1, f, 5, "ge0")
    oh = (h + 2 - 3) // stride + 1
    model = net.model([1, c, h, h], y, [1, 5, oh, oh])
    first, second = _kernels(model)
    assert first.endswith("_lut2x64_bits9"), first  # 9 classes: the interior and 8 kinds of border
    assert "_lut2x64_float" in second, second  # float out: the multiply-add in the kernel's epilogue
    check_against_ort(model, feeds([1, c, h, h]), tmp_path, **EXACT)


FLOAT_OUT_CASES = [
    # (C, F, (H, W), stride, N, residual): why
    (64, 64, (8, 8), 1, 2, "x+h"),     # 64 positions: blocks of 16 rows, 2 images
    (70, 70, (6, 6), 1, 1, "h+x"),     # 36 positions: blocks of 4; channels 70.. of the second tile not stored
    (33, 33, (7, 7), 1, 2, "x+h"),     # 49 positions (odd): stored row by row, no block; an odd row count
    (20, 20, (3, 6), 1, 1, "h+x"),     # 18 positions: two rows per store, no block
    (33, 65, (9, 9), 2, 1, None),      # stride 2: 25 positions, no residual
    (64, 128, (16, 16), 2, 1, None),   # stride 2: 64 positions, 128 channels in two tiles
]


@pytest.mark.parametrize("bn", [False, True])
@pytest.mark.parametrize("c,f,hw,stride,n,residual", FLOAT_OUT_CASES)
def test_float_out_folded_into_lookup_kernel(tmp_path, c, f, hw, stride, n, residual, bn):
    """A binary layer with float output, optionally after BN and with a
    residual Add (either operand order), computed in the lookup kernel's
    epilogue: the counts are never stored. Without BN the result is the
    integer dot (+ x, one rounding) as in onnxruntime: exact."""
    net = Net(c * 7 + f + stride)
    y = net.bconv("x", c, f, "ge0", stride=stride)
    if bn:
        y = net.bn(y, f)
    if residual:
        y = net.op("Add", ["x", y] if residual == "x+h" else [y, "x"])
    oh, ow = [(d + 2 - 3) // stride + 1 for d in hw]
    model = net.model([n, c, *hw], y, [n, f, oh, ow])
    (kernel,) = _kernels(model)
    assert "_lut2x64_float" in kernel and kernel.endswith(f"_c{f}p{oh * ow}" + ("r" if residual else "")), kernel
    check_against_ort(model, feeds([n, c, *hw]), tmp_path, **(GLUE if bn else EXACT))


def test_lookup_kernel_depth_limit(tmp_path):
    """Past 511 words of k the 16-bit counts of the lookup kernel could
    overflow: such a layer keeps the popcount kernel, exactly."""
    k = 64 * 512 + 3
    net = Net(81)
    q = net.quant("x", "ge0")
    y = net.op("MatMul", [q, net.const(pm1(net.rng, (k, 3)), "w")])
    model = net.model([2, k], y, [2, 3])
    assert _kernels(model) == ["qc_bgemm_2x64x513_xor_4x8"]
    check_against_ort(model, feeds([2, k]), tmp_path, **EXACT)


def test_sign_reaching_zero_stays_float(tmp_path):
    """BN whose output is exactly 0 at a reachable dot product: Sign gives 0
    there, which one bit cannot hold, so the layer writes float and the next
    one packs a nonzero mask."""
    net = Net(41)
    h1 = net.bconv("x", 4, 8, "sign", pad=0)
    # y = dot - 2: zero at dot = 2 (K = 36 taps, even dots are reachable).
    h1 = net.op("Add", [h1, net.const(np.full((1, 8, 1, 1), -2.0, F32))])
    y = net.bconv(h1, 8, 3, "sign", pad=0)
    model = net.model([1, 4, 7, 7], y, [1, 3, 3, 3])
    text = compile_input(model)
    assert 'qc.op = "threshold"' not in text
    check_against_ort(model, feeds([1, 4, 7, 7]), tmp_path, **EXACT)


# ---------------------------------------------------------------- 2-bit


@pytest.mark.parametrize("c,f,h,stride", [(3, 5, 6, 1), (33, 65, 5, 2), (64, 8, 4, 1)])
def test_two_bit_conv(tmp_path, c, f, h, stride):
    """Four levels {0, 1/3, 2/3, 1} times ±1 weights: two popcount GEMMs.
    onnxruntime sums thirds in float: not bit-exact, 1e-4 relative."""
    net = Net(c + f)
    y = net.bconv("x", c, f, "2bit", stride=stride)
    oh = (h + 2 - 3) // stride + 1
    model = net.model([1, c, h, h], y, [1, f, oh, oh])
    text = compile_input(model)
    assert text.count('qc.op = "bgemm"') == 2
    x = np.random.default_rng(3).uniform(-0.2, 1.2, (1, c, h, h)).astype(F32)
    check_against_ort(model, {"x": x}, tmp_path, **GLUE)


def test_two_bit_matmul(tmp_path):
    net = Net(51)
    q = net.quant("x", "2bit")
    y = net.op("MatMul", [q, net.const(pm1(net.rng, (70, 9)), "w")])
    model = net.model([4, 70], y, [4, 9])
    x = np.random.default_rng(4).uniform(-0.2, 1.2, (4, 70)).astype(F32)
    check_against_ort(model, {"x": x}, tmp_path, **GLUE)


# ---------------------------------------------------------------- not binary


def test_non_pm1_weights_stay_float():
    net = Net(61)
    q = net.quant("x", "ge0")
    w = pm1(net.rng, (4, 3, 3, 3))
    w[0, 0, 0, 0] = 0.5
    y = net.op("Conv", [q, net.const(w, "w")])
    model = net.model([1, 3, 5, 5], y, [1, 4, 3, 3])
    text = compile_input(model)
    assert "qc.op" not in text and "linalg.conv_2d_nchw_fchw" in text


def test_packed_input_checked():
    """A hand-written qc.binary node with a wrong packed width is one clear error."""
    w = pm1(np.random.default_rng(0), (4, 65, 1, 1))
    node = helper.make_node("BinaryConv", ["x", "w", "t", "f"], ["y"], name="b", domain=binary_detect.DOMAIN,
                            input="packed", output="bits")
    g = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", onnx.TensorProto.INT64, [1, 2, 2, 1])],
                          [helper.make_tensor_value_info("y", onnx.TensorProto.INT64, [1, 2, 2, 1])],
                          [onnx.numpy_helper.from_array(v, n) for n, v in
                           {"w": w, "t": np.zeros(64, np.int32), "f": np.zeros(64, np.int32)}.items()])
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17),
                                                helper.make_opsetid(binary_detect.DOMAIN, 1)], ir_version=8)
    with pytest.raises(qc.UnsupportedOp, match="packed input has 1 words per pixel, the weights need 2"):
        qc.compile(model, emit="input")


# ---------------------------------------------------------------- other ISAs (qemu)


def _cross_model(kind):
    """Two binary layers with bits between (ge0, gt0), or a Sign / 2-bit layer
    with float output: the kernel's three modes (xor, xor_and, and)."""
    net = Net(71)
    if kind == "2bit":
        y = net.bconv("x", 33, 10, kind, stride=2)
        return net.model([1, 33, 7, 7], y, [1, 10, 4, 4]), np.random.default_rng(8).uniform(
            -0.2, 1.2, (1, 33, 7, 7)).astype(F32), GLUE
    h = net.bconv("x", 33, 70, kind, stride=2)
    h = net.bn(h, 70)
    y = net.bconv(h, 70, 10, kind)
    return net.model([1, 33, 7, 7], y, [1, 10, 4, 4]), feeds([1, 33, 7, 7], zeros=5)["x"], EXACT


@pytest.mark.parametrize("target", ["aarch64", "riscv64-rvv128", "riscv64-rvv256"])
@pytest.mark.parametrize("kind", ["ge0", "sign", "2bit"])
def test_binary_cross(tmp_path, target, kind):
    from test_cross import check_cross

    model, x, tol = _cross_model(kind)
    check_cross(model, {"x": x}, tmp_path, target, **tol)


# ---------------------------------------------------------------- the example networks


@pytest.mark.parametrize("variant", ["binary", "2bit"])
def test_example_network(tmp_path, variant):
    """examples/binary_cnn.py at 16x16: float stem and head, binary blocks on
    a float residual stream; every binary conv is recognized."""
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location("binary_cnn", Path(__file__).parents[2] / "examples" / "binary_cnn.py")
    cnn = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(cnn)
    model = cnn.build(variant, size=16)
    text = compile_input(model)
    assert "linalg.conv_2d_nchw_fchw" in text  # the float stem
    assert text.count('qc.op = "bgemm"') == (9 if variant == "binary" else 18)  # 9 binary convs, 2 planes for 2-bit
    assert text.count('qc.op = "threshold"') == (4 if variant == "binary" else 0)
    x = np.random.default_rng(2).standard_normal((1, 3, 16, 16)).astype(F32)
    check_against_ort(model, {"x": x}, tmp_path, **GLUE)
