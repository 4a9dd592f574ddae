"""The int8 speed guard of `qc compile --report`: per quantized layer, an
estimate of its time as qc compiles it in int8 and as qc would compile the
same layer in fp32, and a warning where int8 comes out slower.

int8 is not free speed. Its products are cheaper, but every int8 layer also
requantizes its output (a multiply-high, rounding shift and clamp per
element, and a second affine map where a BatchNormalization was quantized
on its own), while an fp32 layer's bias/BatchNorm/Relu ride along in the
GEMM's epilogue. A 1x1 convolution with few input channels does little
multiply-add work per output, so its requantization can cost more than the
products saved.

The estimate (cycles): multiply-adds / the kernel's rate + outputs * the
per-output glue. Rates per target family (`RATES`) come from the kernels'
instruction counts and, for AVX2, from runs of benchmarks/int8.py and
benchmarks/gemm.py on an AVX2 machine (Zen 3): fp32 GEMM ~80 GFLOP/s (12.5
multiply-adds per cycle at 3.2 GHz), the int8 pair kernel (vpmaddwd) ~71
G multiply-adds/s (22 per cycle), depthwise 5 (fp32) and 12 (int8,
qc-vector-qdepthwise's vpmaddwd pairs), and
~0.7 cycles per output for the int8 requantization with its affine tail
(qc-vector-requant's loop; ~1.2 as LLVM vectorizes the scalar loop).
The fp32 depthwise convolution pays ~1 cycle per output for its bias and
activation, which run as loops of their own. An fp32 3x3 stride-1
convolution that qc-winograd-conv takes does its multiply-adds
WINOGRAD_SPEEDUP[tile] times faster, transforms included.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx

from qc.passes import qgemm_amx, winograd_conv

QC_DOMAIN = "qc"
CONV_OPS = {("", "QLinearConv"), ("", "ConvInteger"), (QC_DOMAIN, "RequantConv")}
MATMUL_OPS = {("", "QLinearMatMul"), ("", "MatMulInteger"), (QC_DOMAIN, "RequantMatMul")}
REQUANTIZING = {"QLinearConv", "QLinearMatMul", "RequantConv", "RequantMatMul"}
WEIGHT_INPUT = {"QLinearConv": 3, "ConvInteger": 1, "RequantConv": 2}


# fp32 Winograd against the direct GEMM, transforms included, by the output
# tile: the ResNet block's two 64 -> 64 convolutions at 56x56 on Zen 3 took
# 2.38 ms each direct, 1.16 as F(2x2, 3x3) (perf, benchmarks/ab.py's model
# turns); the block as F(4x4, 3x3) ran 1.26x faster than as F(2x2, 3x3)
# (2.51 against 3.17 ms, side by side, of which 0.65 ms is not the
# convolutions): 1.35x per convolution.
WINOGRAD_SPEEDUP = {2: 2.0, 4: 2.7}


@dataclass(frozen=True)
class Rates:
    """Multiply-adds per cycle, and glue cycles per output element."""

    int8_gemm: float
    fp32_gemm: float
    int8_depthwise: float
    fp32_depthwise: float
    requant: float  # int8: requantization per output
    fp32_depthwise_glue: float  # fp32: the bias and activation loops after a depthwise conv
    basis: str
    int8_tiles: float = 0.0  # the AMX kernel's rate, for the convs it takes (`Layer.tiles`); 0: none


RATES = {
    "avx2": Rates(22, 12.5, 12, 5, 0.7, 1.0, "x86-64 AVX2, measured (benchmarks/int8.py, gemm.py on Zen 3)"),
    "avx512": Rates(44, 25, 12, 10, 0.35, 0.5, "x86-64 AVX-512: the AVX2 rates at twice the vector width "
                                               "(the int8 depthwise kernel stays AVX2)"),
    # The dot-product kernels (byte quads, four products per lane and
    # instruction) at the pair kernel's measured ~69% of issue peak; not
    # measured (no such CPU here).
    "avx-vnni": Rates(44, 12.5, 12, 5, 0.7, 1.0, "x86-64 AVX2 + AVX-VNNI: {vex} vpdpbusd, 32 multiply-adds per "
                                                "ymm instruction, 2 per cycle, from instruction counts "
                                                "(AVX2 rates otherwise)"),
    "avx512-vnni": Rates(88, 25, 12, 10, 0.35, 0.5, "x86-64 AVX-512 VNNI: vpdpbusd, 64 multiply-adds per zmm "
                                                   "instruction, from instruction counts (AVX-512 rates otherwise)"),
    # With VBMI the depthwise conv is byte quads too (vpdpbusd on vpermb
    # windows): measured 2x the pair kernel on the example MobileNet block (Zen 4).
    "avx512-vnni-vbmi": Rates(88, 25, 24, 10, 0.35, 0.5, "x86-64 AVX-512 VNNI + VBMI: vpdpbusd, also for the "
                                                        "depthwise conv (vpermb windows)"),
    # AMX-INT8 (a Xeon with VNNI and VBMI): convs of whole 16-channel tiles
    # run on the tile unit (qgemm_amx.py). Measured on the example ResNet
    # block's 3x3 convs (64 x 3136 x 576), packing of the image included:
    # 1.5x the vpdpbusd kernel's rate.
    "avx512-vnni-amx": Rates(88, 25, 24, 10, 0.35, 0.5, "x86-64 AVX-512 VNNI + VBMI + AMX-INT8: tdpbsud for convs "
                                                       "of whole 16-channel tiles, vpdpbusd otherwise", 130),
    "neon": Rates(6, 7, 4, 4, 2.0, 1.0, "AArch64 NEON: 2 multiply-adds per i16 pair (smlal + mla) "
                                         "against one fmla per k, from instruction counts"),
    "neon-dotprod": Rates(24, 7, 4, 4, 2.0, 1.0, "AArch64 dot product: sdot/udot by element, 16 multiply-adds "
                                                  "per instruction, 24 per 5 loads, from instruction counts "
                                                  "(NEON rates otherwise)"),
    "rvv": Rates(6, 7, 4, 4, 2.0, 1.0, "RISC-V RVV at VLEN 128, from instruction counts (scaled by VLEN)"),
    "scalar": Rates(2, 2, 1, 1, 4.0, 1.0, "no vector unit known: rough"),
}


def rates_for(target) -> Rates:
    feats = target.feature_set
    if target.arch == "x86_64":
        if "+avx512f" in feats:
            if "+avx512vnni" in feats:
                if {"+amx-int8", "+amx-tile"} <= feats and "+avx512vbmi" in feats:
                    return RATES["avx512-vnni-amx"]
                return RATES["avx512-vnni-vbmi" if "+avx512vbmi" in feats else "avx512-vnni"]
            return RATES["avx512"]
        if target.vector_bits >= 256:
            return RATES["avx-vnni" if "+avxvnni" in feats or "+avx512vnni" in feats else "avx2"]
        return RATES["scalar"]
    if target.arch == "aarch64":
        return RATES["neon-dotprod" if "+dotprod" in feats else "neon"]
    if target.arch == "riscv64" and target.rvv_vlen:
        r, s = RATES["rvv"], target.rvv_vlen / 128
        return Rates(r.int8_gemm * s, r.fp32_gemm * s, r.int8_depthwise * s, r.fp32_depthwise * s,
                     r.requant / s, r.fp32_depthwise_glue / s, f"{r.basis}: VLEN {target.rvv_vlen}")
    return RATES["scalar"]


@dataclass(frozen=True)
class Layer:
    name: str
    kind: str  # "conv 3x3", "depthwise 3x3", "matmul"
    macs: int
    outputs: int
    depthwise: bool
    requantizes: bool
    winograd: int = 0  # as fp32, a Winograd convolution (qc-winograd-conv) with tiles of this side; 0: direct
    tiles: bool = False  # int8, a conv the AMX kernel takes where the target has one (`qgemm_amx.takes`)

    def cycles(self, r: Rates) -> tuple[float, float]:
        """(int8, fp32) estimated cycles."""
        if self.depthwise:
            int8 = self.macs / r.int8_depthwise
            fp32 = self.macs / r.fp32_depthwise + self.outputs * r.fp32_depthwise_glue
        else:
            int8 = self.macs / (r.int8_tiles if self.tiles and r.int8_tiles else r.int8_gemm)
            fp32 = self.macs / r.fp32_gemm
            if self.winograd:
                fp32 /= WINOGRAD_SPEEDUP[self.winograd]
        if self.requantizes:
            int8 += self.outputs * r.requant
        return int8, fp32


def layers(model: onnx.ModelProto, winograd: winograd_conv.WinogradConv = winograd_conv.WinogradConv()) -> list[Layer]:
    """The integer conv / matmul layers of an (optimized, QDQ-fused) model
    whose shapes are known; `winograd`: the fp32 pipeline's choice of
    Winograd tiling, which the fp32 estimate follows."""
    g = model.graph
    shapes = {}
    for vi in [*g.input, *g.value_info, *g.output]:
        dims = vi.type.tensor_type.shape.dim
        if dims and all(d.HasField("dim_value") for d in dims):
            shapes[vi.name] = [d.dim_value for d in dims]
    for i in g.initializer:
        shapes.setdefault(i.name, list(i.dims))
    out = []
    for node in g.node:
        key = (node.domain if node.domain != "ai.onnx" else "", node.op_type)
        y = shapes.get(node.output[0])
        if y is None or key not in CONV_OPS | MATMUL_OPS:
            continue
        name = node.name or node.output[0]
        requant = node.op_type in REQUANTIZING
        outputs = int(np.prod(y))
        if key in CONV_OPS:
            w = shapes.get(node.input[WEIGHT_INPUT[node.op_type]])
            x = shapes.get(node.input[0])
            if w is None or x is None:
                continue
            group = next((a.i for a in node.attribute if a.name == "group"), 1)
            kernel = "x".join(str(k) for k in w[2:])
            dw = group > 1 and group == x[1] == w[0]
            kind = f"{'depthwise' if dw else 'conv'} {kernel}"
            attrs = {a.name: list(a.ints) for a in node.attribute}
            plain = group == 1 and all(set(attrs.get(a, [1])) == {1} for a in ("strides", "dilations"))
            tiling = winograd_conv.tiling_for(x[1], w[0], y[2], y[3], w[2:], winograd) if plain else None
            wino = tiling.m if tiling else 0
            tiles = group == 1 and qgemm_amx.takes(w[0], int(np.prod(w[1:])))
            out.append(Layer(name, kind, outputs * int(np.prod(w[1:])), outputs, dw, requant, wino, tiles))
        else:
            a = shapes.get(node.input[0])
            if a is None:
                continue
            out.append(Layer(name, "matmul", outputs * a[-1], outputs, False, requant))
    return out


def text(model: onnx.ModelProto, target) -> tuple[str, list[str]]:
    """The guard's table and its warnings ([] when int8 wins everywhere or
    the model has no integer layer: then the table is empty too)."""
    from qc.passes.pipelines import winograd_options

    found = layers(model, winograd_options(target))
    if not found:
        return "", []
    r = rates_for(target)
    rows = [f"int8 layers: estimated cycles as int8 and as fp32 ({r.basis})",
            f"{'layer':24} {'kind':16} {'MACs':>9} {'int8 kcyc':>10} {'fp32 kcyc':>10} {'int8 speed-up':>14}"]
    warnings = []
    for layer in found:
        int8, fp32 = layer.cycles(r)
        ratio = fp32 / int8 if int8 else float("inf")
        flag = "  <- int8 slower" if ratio < 1 else ""
        fp32_text = f"{fp32 / 1e3:9.1f}w" if layer.winograd else f"{fp32 / 1e3:10.1f}"
        rows.append(f"{layer.name[:24]:24} {layer.kind:16} {_count(layer.macs):>9} {int8 / 1e3:10.1f} "
                    f"{fp32_text} {ratio:13.2f}x{flag}")
        if ratio < 1:
            warnings.append(f"{layer.name} ({layer.kind}, {ratio:.2f}x)")
    if any(layer.winograd for layer in found):
        rows.append("w: as fp32, a Winograd F(4x4, 3x3) or F(2x2, 3x3) convolution (qc-winograd-conv)")
    return "\n".join(rows), warnings


def _count(n: int) -> str:
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= size:
            return f"{n / size:.1f}{unit}"
    return str(n)

