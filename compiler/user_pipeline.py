"""User pipelines: `qc compile model.onnx --pipeline my.py`.

my.py is plain Python that builds a `qc.passes.base.Pipeline`, usually by
editing `default_pipeline(target)` (examples/pipelines/small_tiles.py):

    def pipeline(target) -> Pipeline:     # called with the resolved qc.targets.Target
        ...
    PIPELINE = Pipeline(...)              # or a fixed one, whatever the target

qc imports the file by path, calls `pipeline(target)` (or takes `PIPELINE`),
checks the result's shape, and uses it for the compile, for `--emit` (its
stage names) and for `--print-pipeline`. Every mistake is one line naming
the file, and the line where Python can tell: the file missing, a syntax
error, an exception while importing it or in pipeline(target), no
pipeline/PIPELINE, a result that is not a Pipeline of Stages of Passes, and
a pass of it that fails while compiling.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import os
import re
import sys
import traceback
from dataclasses import dataclass
from types import ModuleType
from typing import Callable

from qc.errors import OptionError, PassFailed, QcError
from qc.passes.base import Pipeline, Stage

# Names of compile steps outside the pipeline: a stage may not take them.
RESERVED_STAGES = ("input", "llvm-ir", "asm", "obj", "so")


def resolve_pipeline(pipeline, target):
    """The pipeline a compile uses: the target's default for None, a
    `Pipeline` as given (checked), or the one a Python file builds."""
    from qc.passes.pipelines import default_pipeline

    if pipeline is None:
        return default_pipeline(target)
    if isinstance(pipeline, Pipeline):
        check_pipeline(pipeline, f"pipeline '{pipeline.name}'")
        if type(pipeline) is not Pipeline:
            return pipeline  # a subclass with a run() of its own
        return UserPipeline(pipeline.name, tuple(pipeline.stages))
    if isinstance(pipeline, (str, os.PathLike)):
        return load_pipeline(os.fspath(pipeline), target)
    raise OptionError(f"pipeline: expected a qc Pipeline or the path of a Python file, got {type(pipeline).__name__}")


def load_pipeline(path: str, target):
    """The pipeline the file at `path` defines for `target`, checked; its
    passes' failures name the file (`UserPipeline`)."""
    where = f"--pipeline {path}"
    if os.path.isdir(path):
        raise OptionError(f"{where}: is a directory, expected a Python file")
    if not os.path.isfile(path):
        raise OptionError(f"{where}: no such file")
    module = _import(path)
    fn, fixed = getattr(module, "pipeline", None), getattr(module, "PIPELINE", None)
    if fn is None and fixed is None:
        raise OptionError(f"{where}: defines neither a function pipeline(target) nor PIPELINE; "
                          "e.g. def pipeline(target): return default_pipeline(target)")
    if fn is not None:
        if not callable(fn):
            raise OptionError(f"{where}: 'pipeline' is a {type(fn).__name__}, expected a function pipeline(target)")
        try:
            result = fn(target)
        except QcError:
            raise  # already one line (an OptionError of a pass's options)
        except Exception as e:  # noqa: BLE001  the user's code: any exception is theirs to see
            raise OptionError(f"--pipeline {_line_of(path, e, fn)}: pipeline(target) raised {_exc(e)}") from e
        what = "pipeline(target) returned"
    else:
        result, what = fixed, "PIPELINE is"
    if not isinstance(result, Pipeline):
        raise OptionError(f"{where}: {what} a {type(result).__name__}, expected a qc.passes.base.Pipeline "
                          "(e.g. default_pipeline(target) or Pipeline(name, stages))")
    check_pipeline(result, where)
    if type(result) is not Pipeline:
        return result  # a subclass with a run() of its own
    return UserPipeline(result.name, tuple(result.stages), source=path)


def check_pipeline(pipe, where: str) -> None:
    """A Pipeline's shape: named stages, each a tuple of passes with apply()."""
    stages = pipe.stages
    if not isinstance(stages, (tuple, list)) or not stages:
        raise OptionError(f"{where}: the pipeline's stages must be a non-empty tuple of Stage, "
                          f"got {stages!r:.60}")
    seen = set()
    for i, stage in enumerate(stages):
        if not isinstance(stage, Stage):
            raise OptionError(f"{where}: stage {i} is a {type(stage).__name__}, expected Stage(name, passes)")
        name = stage.name
        if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9][\w.-]*", name):
            raise OptionError(f"{where}: stage {i} has the name {name!r}; a stage name is a word like 'gemm' "
                              "(it is an --emit value)")
        if name in RESERVED_STAGES:
            raise OptionError(f"{where}: stage name '{name}' is taken by a step outside the pipeline "
                              f"({', '.join(RESERVED_STAGES)})")
        if name in seen:
            raise OptionError(f"{where}: two stages are named '{name}'; --emit needs each name once")
        seen.add(name)
        passes = stage.passes
        if not isinstance(passes, (tuple, list)):
            raise OptionError(f"{where}: stage '{name}' has passes {passes!r:.60}, expected a tuple of passes")
        for j, p in enumerate(passes):
            if isinstance(p, type) or not callable(getattr(p, "apply", None)):
                raise OptionError(f"{where}: stage '{name}', pass {j} is {_describe(p)}, expected a pass instance "
                                  "(e.g. LowerGemm(mr=4) or Upstream('canonicalize,cse'))")


def _describe(p) -> str:
    if isinstance(p, type):
        return f"the class {p.__name__} (not an instance)"
    return f"a {type(p).__name__}"


@dataclass(frozen=True)
class UserPipeline(Pipeline):
    """A user's Pipeline (from a file, or given to qc.compile): the same
    stages, run pass by pass so that an exception from a pass (their own, or
    one misconfigured) becomes one line naming the stage, the pass and the
    file; and checked to end in the LLVM dialect before the backend."""

    source: str = ""  # the file it came from, if any

    @property
    def where(self) -> str:
        return f"--pipeline {self.source}" if self.source else f"pipeline '{self.name}'"

    def run(self, module, until: str | None = None, after_stage: Callable | None = None) -> None:
        for stage in self.stages:
            if type(stage).apply is Stage.apply:
                for p in stage.passes:
                    self._apply(stage, p, module, p)
            else:  # a Stage subclass with its own apply
                self._apply(stage, stage, module, f"stage {type(stage).__name__}")
            if after_stage:
                after_stage(stage, module)
            if stage.name == until:
                return
        # Run to the end, the module goes to LLVM IR translation next, which
        # crashes (not fails) on an op outside the LLVM dialect.
        self._check_lowered(module)

    def _check_lowered(self, module) -> None:
        from qc.mlir import ir

        left = []

        def visit(op):
            if not op.name.startswith("llvm.") and op.name != "builtin.module":
                left.append(op.name)
                return ir.WalkResult.INTERRUPT
            return ir.WalkResult.ADVANCE

        module.operation.walk(visit, ir.WalkOrder.PRE_ORDER)
        if left:
            raise PassFailed(self.where,
                             f"after the last stage ('{self.stages[-1].name}') the module still has {left[0]} "
                             "ops; the backend needs the LLVM dialect only (end with default_pipeline's "
                             "'llvm-dialect' stage, or stop earlier with --emit)")

    def _apply(self, stage, p, module, what) -> None:
        try:
            p.apply(module)
        except PassFailed as e:
            raise PassFailed(f"{self.where}: stage '{stage.name}'", str(e)) from e
        except QcError:
            raise
        except Exception as e:  # noqa: BLE001  a user's pass: any exception is theirs to see
            where = f"--pipeline {_line_of(self.source, e, None)}" if self.source else self.where
            raise PassFailed(f"{where}: stage '{stage.name}'",
                             f"pass {_pass_name(what)} failed: {_exc(e)}") from e

    def describe(self) -> str:
        text = super().describe()
        if not self.source:
            return text
        first, *rest = text.splitlines()
        return "\n".join([f"{first[:-1]} (from {self.source}):", *rest])


def _pass_name(p) -> str:
    try:
        return f"'{p}'"
    except Exception:  # noqa: BLE001  a user's __str__ may fail too
        return type(p).__name__


def _exc(e: BaseException) -> str:
    msg = " ".join(str(e).split())
    return f"{type(e).__name__}: {msg}" if msg else type(e).__name__


def _module_name(path: str) -> str:
    stem = re.sub(r"\W", "_", os.path.splitext(os.path.basename(path))[0])
    return f"qc_user_pipeline_{stem}"


def _import(path: str) -> ModuleType:
    """Executes the file as a fresh module (every call: an edited file is
    read again; no bytecode is cached beside it). The module goes into
    sys.modules before it runs, as for any import: dataclasses defined in it
    look their module up there."""
    name = _module_name(path)
    loader = importlib.machinery.SourceFileLoader(name, path)
    spec = importlib.util.spec_from_file_location(name, path, loader=loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    try:
        code = loader.source_to_code(loader.get_data(path), path)
    except SyntaxError as e:
        raise OptionError(f"--pipeline {path}:{e.lineno}: syntax error: {e.msg}") from None
    except (UnicodeDecodeError, ValueError) as e:  # not text, or a NUL byte in it
        raise OptionError(f"--pipeline {path}: not a Python source file: {_exc(e)}") from None
    sys.modules[name] = module
    try:
        exec(code, module.__dict__)
    except (Exception, SystemExit) as e:  # noqa: BLE001  the user's code: any exception is theirs to see
        sys.modules.pop(name, None)
        raise OptionError(f"--pipeline {_line_of(path, e, None)}: {_exc(e)} (while importing it)") from e
    return module


def _line_of(path: str, e: BaseException, fn) -> str:
    """path:LINE of the innermost frame of `e` in the user's file; else the
    line `fn` is defined on; else the path alone."""
    target = os.path.abspath(path)
    line = None
    for frame in traceback.extract_tb(e.__traceback__):
        if os.path.abspath(frame.filename) == target:
            line = frame.lineno
    if line is None and fn is not None and hasattr(fn, "__code__"):
        line = fn.__code__.co_firstlineno
    return f"{path}:{line}" if line is not None else path
