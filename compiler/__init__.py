"""qc: an MLIR-based compiler from ONNX models to native CPU code.

    import qc
    qc.compile("model.onnx", "model.so")
    model = qc.load("model.so")
    outputs = model(x=x)

`import qc` is cheap: the MLIR bindings and llvmlite load only when compiling;
`qc.load` and running a model need numpy alone.
"""

from __future__ import annotations

__version__ = "0.1.0"

from .errors import ModelError, OptionError, QcError, UnsupportedOp  # noqa: F401,E402


def compile(model, output=None, **options):
    """Compiles an ONNX model (path or onnx.ModelProto) to `output`.

    Options as for `qc compile`: emit="so" (or input, linalg, bufferized,
    affine, scf, llvm-dialect, llvm-ir, asm, obj), target="host",
    input_shapes={"x": (1, 3, 224, 224)}, dump_ir="dir/", pipeline= a
    qc.passes.base.Pipeline or the path of a Python file defining
    pipeline(target) (examples/pipelines/). Returns the output path, or the
    IR text for a textual emit without an output file.
    """
    from .session import compile_model

    res = compile_model(model, output, **options)
    return res.output if res.output is not None else res.text


def load(path, threads: int = 1, check_finite: bool = False):
    """Loads a compiled model library; returns a callable `qc.runtime.Model`.
    `threads`: how many threads a run may use (settable later as model.threads).
    `check_finite`: reject inputs with NaN or ±Inf (InputError) instead of
    passing them through (settable later as model.check_finite)."""
    from qc.runtime import load as _load

    return _load(path, threads, check_finite)
