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


# name -> (triple, cpu, features, C compiler)
_PRESETS = {
    "x86-64-v3": ("x86_64-unknown-linux-gnu", "x86-64-v3", "", "cc"),  # AVX2 + FMA
    "x86-64-v4": ("x86_64-unknown-linux-gnu", "x86-64-v4", "", "cc"),  # AVX-512
    "aarch64": ("aarch64-unknown-linux-gnu", "generic", "+neon", "aarch64-linux-gnu-gcc"),
    "aarch64-dotprod": ("aarch64-unknown-linux-gnu", "cortex-a76", "+neon,+dotprod", "aarch64-linux-gnu-gcc"),
}
PRESETS = ("host", *_PRESETS)


def resolve(name: str = "host") -> Target:
    """A preset name, or a raw `triple[:cpu[:features]]`."""
    if isinstance(name, Target):
        return name
    if name == "host":
        return host()
    if name in _PRESETS:
        triple, cpu, features, cc = _PRESETS[name]
        return Target(name, triple, cpu, _features(triple, cpu, features), cc)
    if name.count("-") >= 2 and ":" in name or name.count("-") >= 2:
        triple, _, rest = name.partition(":")
        cpu, _, features = rest.partition(":")
        _check_triple(name, triple)
        return Target(name, triple, cpu or "generic", _features(triple, cpu or "generic", features), "cc")
    raise OptionError(f"unknown target '{name}'; targets: {', '.join(PRESETS)}, or TRIPLE[:CPU[:FEATURES]]")


def _check_triple(name: str, triple: str) -> None:
    import llvmlite.binding as llvm

    _init_llvm()
    try:
        llvm.Target.from_triple(triple)
    except RuntimeError:
        raise OptionError(f"unknown target '{name}': LLVM has no target for triple '{triple}'") from None


def _features(triple: str, cpu: str, extra: str) -> str:
    """The CPU's own features (as LLVM knows them) plus `extra`, so that
    `vector_bits` can read them."""
    feats = _CPU_FEATURES.get(cpu, "")
    return ",".join(f for f in (feats, extra) if f)


# Features implied by the x86 micro-architecture levels (for vector_bits; LLVM
# derives the full set from the CPU name itself).
_CPU_FEATURES = {
    "x86-64-v3": "+avx,+avx2,+fma",
    "x86-64-v4": "+avx,+avx2,+fma,+avx512f,+avx512bw,+avx512dq,+avx512vl",
}


_llvm_ready = False


def _init_llvm() -> None:
    # llvmlite 0.50: llvm.initialize() raises; only targets and asm printers are needed.
    global _llvm_ready
    if not _llvm_ready:
        import llvmlite.binding as llvm

        llvm.initialize_all_targets()
        llvm.initialize_all_asmprinters()
        _llvm_ready = True
