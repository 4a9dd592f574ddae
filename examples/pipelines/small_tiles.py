"""A user pipeline: qc's default pipeline with a smaller GEMM register tile.

    qc compile model.onnx -o model.so --pipeline examples/pipelines/small_tiles.py
    qc compile model.onnx --pipeline examples/pipelines/small_tiles.py --print-pipeline
    qc compile model.onnx --pipeline examples/pipelines/small_tiles.py --emit gemm

What it changes: qc-lower-gemm's register tile, from the ISA's default
(passes/pipelines.py; AVX2: 6 rows x 16 columns, 12 ymm accumulators) to
4 rows x one vector (AVX2: 4 x 8, 4 accumulators; AVX-512: 4 x 16; NEON and
SSE: 4 x 4). The GEMM kernels are named after their tile, so the new ones
read `qc_sgemm_MxNxK_p4x8` in `--emit gemm` and in `--report`.

Why someone would: a model whose GEMMs are small or thin (a classifier head
with N <= 8 outputs, a batch of 1 to 4 rows) spends much of a 6 x 16 tile on
padding and tail kernels; and a tile that leaves most registers free is the
baseline for studying register pressure and spills in `--emit asm`. The
cost: fewer FMAs per load of A and B, so large GEMMs run slower than with
the default (benchmarks/gemm.py measures both).
"""

import dataclasses

from qc.passes.base import Pipeline, Stage
from qc.passes.lower_gemm import LowerGemm
from qc.passes.pipelines import default_pipeline

MR = 4  # rows of C per register tile


def small_tile(gemm: LowerGemm) -> LowerGemm:
    nr = gemm.vector_bits // 32  # one vector of float32 lanes wide
    # The B panel, KC x NR floats: 16 KiB, half of a 32 KiB L1D.
    return dataclasses.replace(gemm, mr=MR, nr=nr, kc=4096 // nr)


def pipeline(target) -> Pipeline:
    """The default pipeline for `target` with every qc-lower-gemm retiled;
    every other pass and every stage name stays (so --emit gemm still works)."""
    stages = tuple(
        Stage(s.name, tuple(small_tile(p) if isinstance(p, LowerGemm) else p for p in s.passes))
        for s in default_pipeline(target).stages
    )
    return Pipeline("small-tiles", stages)
