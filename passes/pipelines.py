"""Default pipelines, one per target family, as data.

Each stage is an `--emit` / `--dump-ir` point; the order of stages is the
order of the tuple, and each constraint between them is noted.
"""

from .base import Pipeline, Stage
from .bufferize import Bufferize
from .linalg_cleanup import LinalgCleanup
from .lower_gemm import LowerGemm
from .lower_to_affine import LowerToAffine
from .lower_to_llvm import LowerToLLVM
from .lower_to_scf import LowerToScf


def default_pipeline(target=None) -> Pipeline:
    """The pipeline for a target: register tiles follow its vector width."""
    bits = target.vector_bits if target is not None else 256
    return Pipeline(
        "default",
        (
            Stage("linalg", (LinalgCleanup(),)),  # on tensors: fusion works on SSA values
            Stage("bufferized", (Bufferize(),)),  # fixes the ABI: outputs become out-params
            # After bufferization: the GEMM kernels address buffers, and packed
            # constant weights become new globals.
            Stage("gemm", (LowerGemm(nr=2 * bits // 32, vector_bits=bits),)),
            Stage("affine", (LowerToAffine(),)),  # the remaining linalg ops become loops
            Stage("scf", (LowerToScf(),)),  # deallocation after the last pass that adds allocs
            Stage("llvm-dialect", (LowerToLLVM(),)),
        ),
    )
