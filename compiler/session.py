"""One compilation: ONNX → MLIR stages → LLVM IR → asm/object → shared library.

Every stage can be the last (`emit`) and every stage's output can be written
to a dump directory (`dump_ir`), numbered in order:
00-input.mlir, 01-linalg.mlir, ..., NN-model.ll, NN-model.s, model.o.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Mapping, Sequence

from qc.errors import OptionError

from . import backend
from .targets import Target, resolve

if TYPE_CHECKING:
    from .report import OpReport

MLIR_STAGES_BEFORE = ("input",)
BACKEND_STAGES = ("llvm-ir", "asm", "obj", "so")


def emit_choices(pipeline=None) -> list[str]:
    from qc.passes.pipelines import default_pipeline

    p = pipeline or default_pipeline()
    return [*MLIR_STAGES_BEFORE, *p.stage_names, *BACKEND_STAGES]


@dataclass
class CompileResult:
    emit: str
    output: str | None = None  # the file written, if any
    text: str | None = None  # the IR / assembly, for textual emits without an output file
    timings: dict[str, float] = field(default_factory=dict)
    op_counts: dict[str, int] = field(default_factory=dict)
    weights_bytes: int = 0
    op_report: OpReport | None = None  # with report=True: where each ONNX op type went
    arena: dict[str, int] = field(default_factory=dict)  # the memory plan's figures (arena_figures)
    int8_guard: tuple[str, list[str]] = ("", [])  # with report=True: int8_guard.text, per quantized layer


class _Dumper:
    def __init__(self, directory: str | None):
        self.dir = directory
        self.n = 0
        if directory:
            os.makedirs(directory, exist_ok=True)

    def write(self, stem: str, ext: str, content: str | bytes) -> None:
        if not self.dir:
            return
        path = os.path.join(self.dir, f"{self.n:02d}-{stem}.{ext}")
        self.n += 1
        mode = "wb" if isinstance(content, bytes) else "w"
        with open(path, mode) as f:
            f.write(content)


def compile_model(
    model,
    output: str | os.PathLike | None = None,
    *,
    emit: str = "so",
    target: str | Target = "host",
    input_shapes: Mapping[str, Sequence[int]] | None = None,
    dump_ir: str | os.PathLike | None = None,
    pipeline=None,
    progress: Callable[[str], None] | None = None,
    elide_constants: bool = True,
    report: bool = False,
    exact_requant: bool = False,
) -> CompileResult:
    """Compiles an ONNX model (path, or onnx.ModelProto).

    emit: the stage to stop at (see `emit_choices()`); "so" by default.
    output: the file to write; textual emits without one return `.text`.
    elide_constants: print large constants of textual MLIR emits as
    `dense_resource<__elided__>` (readable, but not parseable again).
    report: fill `.op_report` (qc.report): per ONNX op type, the nodes
    imported and folded and the ops they became.
    pipeline: None for the target's default, a `Pipeline`, or the path of a
    Python file defining `pipeline(target)` or `PIPELINE` (qc.user_pipeline).
    exact_requant: requantize int8 results with the exact 64-bit product (and its rounding constant)
    everywhere; by default one 32-bit multiply is used where its error
    stays below 1/256 of an output step (frontends/onnx/qmath.py).
    """
    from qc.frontends.onnx import ENTRY, import_model
    from qc.mlir import new_context, print_module, translate_to_llvm_ir

    from .user_pipeline import resolve_pipeline

    tgt = resolve(target)
    pipe = resolve_pipeline(pipeline, tgt)
    choices = emit_choices(pipe)
    if emit not in choices:
        raise OptionError(f"unknown --emit stage '{emit}'; stages: {', '.join(choices)}")
    if emit in ("obj", "so") and output is None:
        raise OptionError(f"--emit {emit} needs an output file (-o)")
    say = progress or (lambda _msg: None)
    dump = _Dumper(os.fspath(dump_ir) if dump_ir else None)
    result = CompileResult(emit)
    clock = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        result.timings[name] = now - clock
        clock = now

    def finish_text(text: str) -> CompileResult:
        if output is not None:
            Path(output).write_text(text)
            result.output = os.fspath(output)
        else:
            result.text = text
        return result

    with new_context() as ctx:
        from qc.mlir import ir

        with ir.Location.unknown(ctx):
            say("importing ONNX")
            imported = import_model(model, input_shapes, exact_requant=exact_requant)
            module = imported.module
            result.op_counts = dict(imported.op_counts)
            lap("import")
            if report:
                from . import int8_guard

                result.op_report = _start_report(model, imported, module)
                if imported.model is not None:
                    result.int8_guard = int8_guard.text(imported.model, tgt)
            if dump.dir and imported.graph_report is not None:
                # The ONNX-level clean-up comes before the first MLIR stage: unnumbered.
                Path(dump.dir, "onnx-graph.txt").write_text(imported.graph_report.text())
            dump.write("input", "mlir", print_module(module, elide_large=True))
            if emit == "input":
                return finish_text(print_module(module, elide_large=elide_constants))

            def after(stage, mod):
                lap(stage.name)
                if result.op_report is not None:
                    result.op_report.observe(stage.name, mod)
                dump.write(stage.name, "mlir", print_module(mod, elide_large=True))
                say(f"stage {stage.name} done")

            pipe.run(module, until=emit if emit in pipe.stage_names else None, after_stage=after)
            result.arena = arena_figures(module)
            if emit in pipe.stage_names:
                return finish_text(print_module(module, elide_large=elide_constants))

            blob, blobs = backend.outline_weights(module)
            result.weights_bytes = len(blob)
            dump.write("weights", "txt", "".join(f"{b.symbol} offset={b.offset} bytes={b.size}\n" for b in blobs))
            kernels = _parallel_kernels(module)
            llvm_ir = translate_to_llvm_ir(module)
            lap("translate")
    dump.write("model", "ll", llvm_ir)
    if emit == "llvm-ir":
        return finish_text(llvm_ir)

    say(f"generating code for {tgt.triple} ({tgt.cpu})")
    if emit == "asm" or dump.dir:
        asm = backend.emit_asm(llvm_ir, tgt)
        dump.write("model", "s", asm)
        if emit == "asm":
            lap("codegen")
            return finish_text(asm)
    obj = backend.emit_object(llvm_ir, tgt)
    lap("codegen")
    work = dump.dir or tempfile.mkdtemp(prefix="qc-")
    try:
        obj_path = os.path.join(work, "model.o")
        Path(obj_path).write_bytes(obj)
        blob_path = os.path.join(work, "weights.bin")
        Path(blob_path).write_bytes(blob)
        asm_path = os.path.join(work, "weights.s")
        Path(asm_path).write_text(backend.weights_asm(os.path.abspath(blob_path), blobs))
        desc_path = os.path.join(work, "qc_model_desc.c")
        Path(desc_path).write_text(model_desc_c(imported.inputs, imported.outputs, tgt.triple, ENTRY,
                                                  result.arena.get("bytes", 0), scratch_bytes(kernels),
                                                  uses_amx="@llvm.x86.tileloadd64.internal" in llvm_ir)
                                   + parallel_glue_c(kernels))
        say("linking")
        out = os.path.abspath(os.fspath(output))
        tmp_out = out + ".tmp"
        # obj: one relocatable object with the weights and the runtime, for an
        # application's own link; so: the shared library.
        link = backend.link_object if emit == "obj" else backend.link_shared
        link(tgt, tmp_out, [obj_path, asm_path], [desc_path, *backend.runtime_sources()], work)
        os.replace(tmp_out, out)  # never leave a half-written library behind
        if emit == "obj":
            _write_header(Path(out).with_suffix(".h"))
        lap("link")
        result.output = out
    finally:
        if not dump.dir:
            shutil.rmtree(work, ignore_errors=True)
    return result


def _start_report(model, imported, module):
    """The op report, seeded with the ONNX graph and the frontend's output."""
    from qc.frontends.onnx.importer import load_model

    from .report import OpReport

    rep = OpReport.for_model(load_model(model))
    rep.imported = dict(imported.op_counts)
    g = imported.graph_report
    if g is not None:
        rep.summary = (f"{g.folded} constant-folded, {g.bn_folded} BatchNormalization folded into Conv, "
                       f"{g.removed} identity or dead nodes removed")
        if g.qdq_fused:
            rep.summary += f", {g.qdq_fused} QDQ groups fused into integer ops"
    rep.observe("input", module)
    return rep


def _write_header(path: Path) -> None:
    shutil.copyfile(backend.RUNTIME_DIR / "qc_runtime.h", path)


def _c_string(s: str) -> str:
    out = []
    for byte in s.encode("utf-8"):
        ch = chr(byte)
        if ch in '"\\' or not 32 <= byte < 127:
            out.append(f"\\{byte:03o}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def _parallel_kernels(module) -> list[tuple[str, int, int, list[int], int]]:
    """(name, panels, memref operands, scratch shape or [], multiply-adds or 0)
    of each GEMM kernel (qc-lower-gemm)."""
    from qc.passes.lower_gemm import PARALLEL_ATTR

    attrs = module.operation.attributes
    if PARALLEL_ATTR not in attrs:
        return []
    return [(e["name"].value, e["panels"].value, e["operands"].value,
             list(ir_i64_array(e["scratch"])) if "scratch" in e else [], e["work"].value if "work" in e else 0)
            for e in attrs[PARALLEL_ATTR]]


def ir_i64_array(attr) -> list[int]:
    from qc.mlir import ir

    return list(ir.DenseI64ArrayAttr(attr))


def scratch_bytes(kernels) -> int:
    """The per-thread scratch the kernels need: the largest f32 panel."""
    return max((4 * shape[0] * shape[1] for *_, shape, _work in kernels if shape), default=0)


def parallel_glue_c(kernels: list[tuple[str, int, int, list[int], int]]) -> str:
    """For each GEMM kernel, the C entry its code calls: it splits the
    kernel's column panels over the context's threads (qc_parallel_for) and
    runs the kernel's range function on each part, with the running thread's
    scratch buffer as the kernel's panel memref when it takes one."""
    from qc.passes.lower_gemm import parallel_entry

    if not kernels:
        return ""
    lines = ["", '#include "qc_threads.h"']
    for name, panels, operands, scratch, work in kernels:
        ptrs = ", ".join(["void *"] * (operands + (1 if scratch else 0)))
        args = [f"a[{i}]" for i in range(operands)]
        params = ", ".join(f"void *a{i}" for i in range(operands))
        part = [f"static void {name}_part(void *p, int64_t lo, int64_t hi, void *scratch) {{",
                "  void **a = (void **)p;"]
        if scratch:
            rows, cols = scratch
            part.append("  struct { void *allocated, *aligned; int64_t offset, sizes[2], strides[2]; } s = "
                        f"{{scratch, scratch, 0, {{{rows}, {cols}}}, {{{cols}, 1}}}};")
            args.insert(2, "&s")
        else:
            part.append("  (void)scratch;")
        lines += [
            f"extern void _mlir_ciface_{name}_range({ptrs}, int64_t, int64_t);",
            *part,
            f"  _mlir_ciface_{name}_range({', '.join(args)}, lo, hi);",
            "}",
            f"void _mlir_ciface_{parallel_entry(name)}({params}) {{",
            f"  void *a[] = {{{', '.join(f'a{i}' for i in range(operands))}}};",
            f"  qc_parallel_for({panels}, {name}_part, a, {work});",
            "}",
        ]
    return "\n".join(lines) + "\n"


def arena_figures(module) -> dict[str, int]:
    """The memory plan's figures (qc-plan-memory), by short name; {} without a plan."""
    from qc.passes.plan_memory import ARENA_ATTRS

    attrs = module.operation.attributes
    return {name.removeprefix("qc.arena_"): attrs[name].value for name in ARENA_ATTRS if name in attrs}


def model_desc_c(inputs, outputs, triple: str, entry: str, arena_bytes: int = 0, scratch: int = 0,
                 uses_amx: bool = False) -> str:
    """The generated C description of one model: metadata and the entry trampoline.

    With an arena (arena_bytes > 0) the entry takes it as its last argument,
    a 1-D i8 memref the runtime allocates once per context."""
    from qc.runtime.dtypes import code_of

    lines = ['#include "qc_model_desc.h"', ""]
    n_args = len(inputs) + len(outputs) + (1 if arena_bytes else 0)
    # The entry's C wrapper takes one memref descriptor per argument:
    # {allocated, aligned, offset, sizes[rank], strides[rank]}.
    lines.append(f"extern void _mlir_ciface_{entry}({', '.join(['void *'] * n_args) or 'void'});")
    tables = []
    for kind, specs in (("in", inputs), ("out", outputs)):
        entries = []
        for i, s in enumerate(specs):
            shape_name = "0"
            if s.shape:
                shape_name = f"{kind}{i}_shape"
                lines.append(f"static const int64_t {shape_name}[] = {{{', '.join(str(d) for d in s.shape)}}};")
            nbytes = s.dtype.itemsize
            for d in s.shape:
                nbytes *= d
            entries.append(
                f"  {{{_c_string(s.name)}, {code_of(s.dtype)}, {len(s.shape)}, {shape_name}, {nbytes}, {s.dtype.itemsize}}},"
            )
        if specs:
            tables.append(f"static const qc_tensor_desc {kind}puts[] = {{\n" + "\n".join(entries) + "\n};")
    lines += ["", *tables, ""]
    lines.append("static void invoke(void *const *in, void *const *out, void *arena) {")
    lines.append("  (void)in; (void)out; (void)arena;")
    args = []
    for kind, specs in (("in", inputs), ("out", outputs)):
        for i, spec in enumerate(specs):
            ptr, rank = f"{kind}[{i}]", len(spec.shape)
            strides, acc = [], 1
            for d in reversed(spec.shape):
                strides.insert(0, acc)
                acc *= d
            fields = "void *allocated, *aligned; int64_t offset;"
            init = f"{ptr}, {ptr}, 0"
            if rank:
                fields += f" int64_t sizes[{rank}], strides[{rank}];"
                init += f", {{{', '.join(map(str, spec.shape))}}}, {{{', '.join(map(str, strides))}}}"
            lines.append(f"  struct {{ {fields} }} {kind}{i} = {{{init}}};")
            args.append(f"&{kind}{i}")
    if arena_bytes:
        lines.append(f"  struct {{ void *allocated, *aligned; int64_t offset, sizes[1], strides[1]; }} "
                     f"ar = {{arena, arena, 0, {{{arena_bytes}}}, {{1}}}};")
        args.append("&ar")
    lines.append(f"  _mlir_ciface_{entry}({', '.join(args)});")
    lines.append("}")
    lines.append("")
    lines.append("const qc_model_desc qc_model_description = {")
    lines.append(f"  {len(inputs)}, {len(outputs)}, {'inputs' if inputs else '0'}, {'outputs' if outputs else '0'},")
    lines.append(f"  {_c_string(triple)}, {arena_bytes}, {scratch}, invoke, {int(uses_amx)},")
    lines.append("};")
    return "\n".join(lines) + "\n"

