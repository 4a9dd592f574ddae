"""Default pipelines, one per target family, as data.

Each stage is an `--emit` / `--dump-ir` point; the order of stages is the
order of the tuple, and each constraint between them is noted.
"""

from .base import Pipeline, Stage
from .bufferize import Bufferize
from .linalg_cleanup import LinalgCleanup
from .lower_to_affine import LowerToAffine
from .lower_to_llvm import LowerToLLVM
from .lower_to_scf import LowerToScf

DEFAULT = Pipeline(
    "default",
    (
        Stage("linalg", (LinalgCleanup(),)),  # on tensors: fusion works on SSA values
        Stage("bufferized", (Bufferize(),)),  # fixes the ABI: outputs become out-params
        Stage("affine", (LowerToAffine(),)),  # loop fusion needs explicit loops and buffers
        Stage("scf", (LowerToScf(),)),  # deallocation after the last pass that adds allocs
        Stage("llvm-dialect", (LowerToLLVM(),)),
    ),
)


def default_pipeline(target=None) -> Pipeline:
    """The pipeline for a target (one for every target until codegen differs)."""
    return DEFAULT
