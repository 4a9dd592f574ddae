"""A requantization loop whose second stage is looked up in a table per row
(passes/requant_table.py, qc-vector-requant{table=true}: AVX-512 VBMI)
computes what the loop without tables computes, bit for bit.

The model is the example MobileNet block, small, quantized by onnxruntime's
quantize_static with int8 and with uint8 activations (BatchNormalization not
folded), compiled with the reference form (--exact-requant; by default the
shifted-origin line feeds the second stage, with no clamp to build a table
from): the depthwise conv's requantization is a loop whose value after the
first clamp goes through the BatchNormalization's multiply, offset, shift and
Clip's clamp, which the table replaces. Rows of 19 x 19 = 361 outputs are five
steps of 64 and one more ending at the row's end; the input's range is wide
enough that both clamps saturate somewhere.
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from helpers import cpu_flags, with_pass_options
from helpers import example_module as _example

import qc
from qc.passes.pipelines import default_pipeline
from qc.passes.vector_requant import VectorRequant
from qc.targets import resolve

VBMI = "x86_64-unknown-linux-gnu:x86-64-v4:+avx512vbmi"


def without_tables(target: str):
    return with_pass_options(default_pipeline(resolve(target)), VectorRequant, table=False)


@pytest.fixture(scope="module", params=["int8", "uint8"])
def quantized(request, tmp_path_factory):
    make, quant = _example("make_models"), _example("quantize_cnn")
    work = tmp_path_factory.mktemp("qdq")
    model, feeds = make.mobilenet_block(np.random.default_rng(5), c=8, e=24, hw=19)
    onnx.save(model, work / "m.onnx")
    q = quant.quantize(str(work / "m.onnx"), str(work / "m.q.onnx"), activations=request.param)
    return q, feeds["x"]


def test_table_in_ir(quantized):
    """One 256-byte table per channel, looked up by two vpermi2b per 64
    outputs (in the loop's step and the last one of each row); the pipeline
    for a target without VBMI has none."""
    model, _ = quantized
    ir = qc.compile(model, emit="gemm", target=VBMI, exact_requant=True)
    assert "memref.global \"private\" constant @__requant_table_0 : memref<24x1x256xi8>" in ir
    assert ir.count("func.call @qc_x86_vpermi2b_512(") == 4
    assert "vector.store" in ir and "vector<64xi8>" in ir
    assert "__requant_table" not in qc.compile(model, emit="gemm", target="x86-64-v4", exact_requant=True)


@pytest.mark.parametrize("target", ["host"] if "avx512vbmi" in cpu_flags() else [])
def test_table_same_bits(target, quantized, tmp_path):
    model, x = quantized
    runs = {}
    for tag, pipeline in (("table", None), ("loop", without_tables(target))):
        lib = str(tmp_path / f"{tag}.so")
        qc.compile(model, lib, target=target, exact_requant=True, **({"pipeline": pipeline} if pipeline else {}))
        with qc.load(lib) as m:
            runs[tag] = [m.run({"x": (s * x).astype(np.float32)})["y"] for s in (1.0, 4.0, 40.0, -40.0)]
    for a, b in zip(runs["table"], runs["loop"]):
        np.testing.assert_array_equal(a, b)


# A second stage clamp(d * m + b, -128, 127) after a first clamp of x to
# [LO, HI], with m and b per row: row 0 maps [LO, HI] one to one (any
# entry off by one fails), row 1 saturates at the low end.
_GENERIC = """
#v = affine_map<(d0, d1) -> (d0, d1)>
#r = affine_map<(d0, d1) -> (d0)>
func.func @f(%x: memref<2x64xi32>, %m: memref<2xi32>, %b: memref<2xi32>, %o: memref<2x64xi8>) {{
  %lo = arith.constant {lo} : i32
  %hi = arith.constant {hi} : i32
  %qlo = arith.constant -128 : i32
  %qhi = arith.constant 127 : i32
  linalg.generic {{indexing_maps = [#v, #r, #r, #v], iterator_types = ["parallel", "parallel"]}}
      ins(%x, %m, %b : memref<2x64xi32>, memref<2xi32>, memref<2xi32>) outs(%o : memref<2x64xi8>) {{
  ^bb0(%a: i32, %mm: i32, %bb: i32, %out: i8):
    %c = arith.maxsi %a, %lo : i32
    %d = arith.minsi %c, %hi : i32
    %e = arith.muli %d, {tail} : i32
    %f = arith.addi %e, %bb : i32
    %g = arith.maxsi %f, %qlo : i32
    %h = arith.minsi %g, %qhi : i32
    %t = arith.trunci %h : i32 to i8
    linalg.yield %t : i8
  }}
  return
}}
"""


def _plan(lo: int, hi: int, tail: str = "%mm"):
    from qc.mlir import ir, new_context
    from qc.passes import requant_table
    from qc.passes.vector_body import program_of

    with new_context(), ir.Location.unknown():
        module = ir.Module.parse(_GENERIC.format(lo=lo, hi=hi, tail=tail))
        generic = next(op for op in module.body.operations[0].regions[0].blocks[0].operations
                       if op.operation.name == "linalg.generic")
        program = program_of(generic.operation)
        m, b = np.array([1, -1]), np.array([-128 - lo, 5])
        return requant_table.plan(program, ["v", "s", "s"], {1: m, 2: b}), m, b


@pytest.mark.parametrize("lo, hi", [(-118, 137), (-200, 50), (0, 255), (-128, 127), (3, 40)])
def test_table_entries(lo, hi):
    """Every i32 the loop can see (the value before the first clamp) gives,
    through one bound, the offset, the saturating packs and the table, the
    generic's result."""
    table, m, b = _plan(lo, hi)
    assert table is not None and (table.lo, table.hi) == (lo, hi) and table.data.shape == (2, 256)
    x = np.concatenate([np.arange(-1000, 1001), [-2**31, 2**31 - 1]]).astype(np.int64)
    op, bound = table.guard
    guarded = np.maximum(x, bound) if op == "arith.maxsi" else np.minimum(x, bound)
    summed = (guarded + table.offset).astype(np.int32)  # the loop's i32 addition (wraps if unguarded)
    index = np.clip(summed, -128, 127).astype(np.int64) & 0xFF
    for row in range(2):
        want = np.clip(np.clip(x, lo, hi) * m[row] + b[row], -128, 127)
        np.testing.assert_array_equal(table.data[row][index].view(np.int8), want)


def test_no_table_for_wide_clamps_or_vector_tails():
    assert _plan(-200, 56)[0] is None  # 257 values: more than a byte
    assert _plan(-118, 137, tail="%a")[0] is None  # the stage reads the accumulator again
