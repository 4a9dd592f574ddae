"""Default pipelines, one per target family, as data.

Each stage is an `--emit` / `--dump-ir` point; the order of stages is the
order of the tuple, and each constraint between them is noted.
"""

from .base import Pipeline, Stage, Upstream
from .bufferize import Bufferize
from .conv_to_gemm import ConvToGemm
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
            # On tensors: fusion works on SSA values. Convolutions become GEMMs
            # after it: elementwise fusion would fold the im2col copy back into
            # a convolution-shaped generic.
            Stage("linalg", (LinalgCleanup(), ConvToGemm(), Upstream("canonicalize,cse"))),
            Stage("bufferized", (Bufferize(),)),  # fixes the ABI: outputs become out-params
            # After bufferization: the GEMM kernels address buffers, and packed
            # constant weights become new globals.
            Stage("gemm", (LowerGemm(nr=2 * bits // 32, vector_bits=bits),)),
            Stage("affine", (LowerToAffine(),)),  # the remaining linalg ops become loops
            Stage("scf", (LowerToScf(),)),  # deallocation after the last pass that adds allocs
            Stage("llvm-dialect", (LowerToLLVM(),)),
        ),
    )
