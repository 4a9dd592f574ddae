"""The quantized test models of test_quant on AArch64 (NEON; dot product) and
RISC-V (RVV), run under qemu: each within one quantization step of the same
references as on this CPU (onnx.reference or onnxruntime with graph
optimizations off).

The integer kernels differ per ISA (smlal pairs, sdot quads with the
flipped operand, vwmacc planar pairs; the x86 vector passes do not run), and
so do the float edges (QuantizeLinear of the input, DequantizeLinear of the
output): every layer kind of test_quant runs once per target.
"""

from __future__ import annotations

import numpy as np
import pytest
from test_quant import (
    CONV_CASES,
    I8,
    MATMUL_CASES,
    PRODUCT_CASES,
    U8,
    _conv_model,
    _float_cnn,
    _product_model,
    add_mul_model,
    check,
    check_steps,
    matmul_model,
    onnx_ref,
    quantize_mixed_ops,
    quantize_qdq,
)

TARGETS = ["aarch64", "aarch64-dotprod", "riscv64-rvv128"]


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("case", CONV_CASES)
def test_qlinear_conv(case, target, tmp_path):
    model, x = _conv_model(**CONV_CASES[case])
    check(model, {"x": x}, tmp_path, ref=onnx_ref, target=target)


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("case", MATMUL_CASES)
def test_qlinear_matmul(case, target, tmp_path):
    model, feeds = matmul_model(case)
    check(model, feeds, tmp_path, ref=onnx_ref, target=target)


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("case", PRODUCT_CASES)
def test_qdq_product_fused(case, target, tmp_path):
    model, feeds = _product_model(case, np.random.default_rng(61))
    check(model, feeds, tmp_path, min_exact=0.97, target=target)


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("dtype", [U8, I8])
def test_qlinear_add_mul(dtype, target, tmp_path):
    check(*add_mul_model(dtype), tmp_path, target=target)


@pytest.mark.parametrize("target", TARGETS)
def test_quantize_static_cnn(target, tmp_path):
    check_steps(quantize_qdq(_float_cnn(np.random.default_rng(70)), tmp_path, True), tmp_path, target=target)


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("fmt", ["QDQ", "QOperator"])
def test_quantize_static_mixed_ops(fmt, target, tmp_path):
    check_steps(quantize_mixed_ops(fmt, tmp_path), tmp_path, min_close=0.95, target=target)
