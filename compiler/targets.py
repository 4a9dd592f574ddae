"""Targets: the triple, CPU and features code is generated for, and the C
toolchain that builds the runtime and links the library for it."""

from __future__ import annotations

import platform
import shutil
from dataclasses import dataclass

from qc.errors import OptionError


@dataclass(frozen=True)
class Target:
    name: str
    triple: str
    cpu: str
    features: str
    cc: str  # C compiler driver that compiles the runtime and links for this target

    @property
    def vector_bits(self) -> int:
        """Width of the widest f32 vector registers the features allow."""
        feats = set(self.features.split(","))
        if self.arch == "x86_64":
            if "+avx512f" in feats:
                return 512
            if "+avx2" in feats or "+avx" in feats:
                return 256
        return 128

    @property
    def arch(self) -> str:
        return self.triple.split("-")[0]

    @property
    def is_native(self) -> bool:
        return self.arch == normalize_arch(platform.machine())


def normalize_arch(machine: str) -> str:
    return {"amd64": "x86_64", "arm64": "aarch64"}.get(machine.lower(), machine.lower())


def host() -> Target:
    """This machine: the CPU and features LLVM detects."""
    import llvmlite.binding as llvm

    _init_llvm()
    cc = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang") or "cc"
    return Target(
        name="host",
        triple=llvm.get_process_triple(),
        cpu=llvm.get_host_cpu_name(),
        features=llvm.get_host_cpu_features().flatten(),
        cc=cc,
    )


PRESETS = ("host",)


def resolve(name: str = "host") -> Target:
    if isinstance(name, Target):
        return name
    if name == "host":
        return host()
    raise OptionError(f"unknown target '{name}'; targets: {', '.join(PRESETS)}")


_llvm_ready = False


def _init_llvm() -> None:
    # llvmlite 0.50: llvm.initialize() raises; only targets and asm printers are needed.
    global _llvm_ready
    if not _llvm_ready:
        import llvmlite.binding as llvm

        llvm.initialize_all_targets()
        llvm.initialize_all_asmprinters()
        _llvm_ready = True
