"""Targets: the triple, CPU and features code is generated for, and the C
toolchain that builds the runtime and links the library for it.

A target is a preset name (`qc targets` lists them) or a raw
`TRIPLE[:CPU[:FEATURES]]`. Three ISAs are first-class: x86-64 (AVX2,
AVX-512), AArch64 (NEON) and RISC-V 64 (RVV 1.0). For a foreign ISA the
runtime is cross-compiled and the library linked with the Debian cross
toolchain (`gcc-aarch64-linux-gnu`, `gcc-riscv64-linux-gnu`).
"""

from __future__ import annotations

import platform
import re
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
    abi: str = ""  # LLVM target ABI name; "" = LLVM's default for the triple
    description: str = ""

    @property
    def arch(self) -> str:
        return self.triple.split("-")[0]

    @property
    def is_native(self) -> bool:
        return self.arch == normalize_arch(platform.machine())

    @property
    def feature_set(self) -> set[str]:
        return {f for f in self.features.split(",") if f}

    @property
    def vector_bits(self) -> int:
        """Width of one f32 vector register the features guarantee (RISC-V:
        the minimum VLEN, from +zvlNb or implied by +v)."""
        feats = self.feature_set
        if self.arch == "x86_64":
            if "+avx512f" in feats:
                return 512
            if "+avx2" in feats or "+avx" in feats:
                return 256
        if self.arch == "riscv64":
            return self.rvv_vlen or 128  # without RVV, LLVM splits 128-bit vectors into scalars
        return 128

    @property
    def vector_registers(self) -> int:
        """How many of those vector registers the ISA has."""
        if self.arch == "x86_64":
            return 32 if "+avx512f" in self.feature_set else 16
        return 32  # AArch64 v0-v31, RVV v0-v31 (v0 doubles as the mask register)

    @property
    def rvv_vlen(self) -> int:
        """The RISC-V vector length (bits) the code assumes as a minimum; 0
        without the V extension. A library built for VLEN N runs on any
        VLEN >= N; under qemu it needs `-cpu rv64,v=true,vlen=N`."""
        if self.arch != "riscv64":
            return 0
        feats = self.feature_set
        zvl = [int(m.group(1)) for f in feats if (m := re.fullmatch(r"\+zvl(\d+)b", f))]
        if zvl:
            return max(zvl)
        return 128 if "+v" in feats else 0  # V implies Zvl128b

    @property
    def l1d_kib(self) -> int | None:
        """The L1 data cache per core, in KiB: this machine's as Linux
        reports it for `host`, else from the CPU name (None where unknown,
        as for the generic x86-64-vN levels)."""
        if self.name == "host":
            size = _host_l1d_kib()
            if size:
                return size
        return L1D_KIB.get(self.cpu)

    @property
    def vectors(self) -> str:
        """The vector register file, for `qc targets`: '32 x 128-bit'."""
        return f"{self.vector_registers} x {self.vector_bits}-bit"


# L1 data caches of the CPUs with AVX-512 that qc tunes for (per core).
L1D_KIB = {
    **dict.fromkeys(("skylake-avx512", "cascadelake", "cooperlake", "cannonlake", "knl", "knm", "znver4"), 32),
    **dict.fromkeys(("icelake-client", "icelake-server", "tigerlake", "rocketlake", "sapphirerapids",
                     "emeraldrapids", "graniterapids", "graniterapids-d", "diamondrapids", "znver5"), 48),
}


def _host_l1d_kib() -> int | None:
    import glob

    for d in sorted(glob.glob("/sys/devices/system/cpu/cpu0/cache/index*")):
        try:
            with open(f"{d}/level") as lv, open(f"{d}/type") as ty, open(f"{d}/size") as sz:
                if lv.read().strip() == "1" and ty.read().strip() == "Data":
                    size = sz.read().strip()
                    return int(size[:-1]) if size.endswith("K") else int(size) // 1024
        except (OSError, ValueError):
            continue
    return None


def normalize_arch(machine: str) -> str:
    return {"amd64": "x86_64", "arm64": "aarch64"}.get(machine.lower(), machine.lower())


# The C compiler that builds and links for an ISA that is not this machine's.
CROSS_CC = {
    "x86_64": "x86_64-linux-gnu-gcc",
    "aarch64": "aarch64-linux-gnu-gcc",
    "riscv64": "riscv64-linux-gnu-gcc",
}

# The Debian package that brings each cross compiler (and its sysroot).
CROSS_PACKAGE = {
    "x86_64": "gcc-x86-64-linux-gnu",
    "aarch64": "gcc-aarch64-linux-gnu",
    "riscv64": "gcc-riscv64-linux-gnu",
}


def c_compiler(arch: str) -> str:
    if arch == normalize_arch(platform.machine()):
        return shutil.which("cc") or shutil.which("gcc") or shutil.which("clang") or "cc"
    return CROSS_CC.get(arch, f"{arch}-linux-gnu-gcc")


def host() -> Target:
    """This machine: the CPU and features LLVM detects."""
    import llvmlite.binding as llvm

    _init_llvm()
    triple = llvm.get_process_triple()
    arch = triple.split("-")[0]
    return Target(
        name="host",
        triple=triple,
        cpu=llvm.get_host_cpu_name(),
        features=llvm.get_host_cpu_features().flatten(),
        cc=c_compiler(arch),
        abi=_default_abi(arch),
        description="this machine",
    )


# The Linux RISC-V ABI profile: Debian's riscv64 port (and its cross
# toolchain) is rv64gc with the lp64d calling convention.
_RV64GC = "+m,+a,+f,+d,+c"

# name -> (triple, cpu, features, what it is)
_PRESETS = {
    "x86-64-v3": ("x86_64-unknown-linux-gnu", "x86-64-v3", "", "AVX2 + FMA"),
    "x86-64-v4": ("x86_64-unknown-linux-gnu", "x86-64-v4", "", "AVX-512"),
    "x86-64-v3-vnni": ("x86_64-unknown-linux-gnu", "x86-64-v3", "+avxvnni", "AVX2 + AVX-VNNI"),
    "x86-64-v4-vnni": ("x86_64-unknown-linux-gnu", "x86-64-v4", "+avx512vnni", "AVX-512 + VNNI"),
    "x86-64-v4-amx": ("x86_64-unknown-linux-gnu", "x86-64-v4", "+avx512vnni,+avx512vbmi,+amx-tile,+amx-int8",
                      "AVX-512 + VNNI + VBMI + AMX-INT8 tiles"),
    "aarch64": ("aarch64-unknown-linux-gnu", "generic", "+neon", "NEON"),
    "aarch64-dotprod": ("aarch64-unknown-linux-gnu", "cortex-a76", "+neon,+dotprod", "NEON + dot product"),
    "riscv64-rvv128": ("riscv64-unknown-linux-gnu", "generic-rv64", f"{_RV64GC},+v,+zvl128b", "RVV 1.0, VLEN 128"),
    "riscv64-rvv256": ("riscv64-unknown-linux-gnu", "generic-rv64", f"{_RV64GC},+v,+zvl256b", "RVV 1.0, VLEN 256"),
}
PRESETS = ("host", *_PRESETS)


def _unknown(name: str, why: str = "") -> OptionError:
    return OptionError(f"unknown target '{name}'{why}; targets: {', '.join(PRESETS)}, or TRIPLE[:CPU[:FEATURES]]")


def resolve(name: str = "host") -> Target:
    """A preset name, or a raw `triple[:cpu[:features]]`."""
    if isinstance(name, Target):
        return name
    if name == "host":
        return host()
    if name in _PRESETS:
        triple, cpu, features, what = _PRESETS[name]
        return _make(name, triple, cpu, features, what)
    triple, _, rest = name.partition(":")
    if triple.count("-") < 2:  # a triple has at least arch-vendor-os
        raise _unknown(name)
    cpu, _, features = rest.partition(":")
    _check_triple(name, triple)
    arch = triple.split("-")[0]
    if arch == "riscv64":
        features = ",".join(f for f in (_RV64GC, features) if f)
    return _make(name, triple, cpu or ("generic-rv64" if arch == "riscv64" else "generic"), features, "")


def _make(name: str, triple: str, cpu: str, features: str, what: str) -> Target:
    arch = triple.split("-")[0]
    return Target(name, triple, cpu, _features(cpu, features), c_compiler(arch), _default_abi(arch), what)


def _default_abi(arch: str) -> str:
    # LLVM would pick soft-float lp64 for a bare riscv64 triple; the Linux
    # toolchain's objects are lp64d, and GNU ld refuses to mix the two.
    return "lp64d" if arch == "riscv64" else ""


def _check_triple(name: str, triple: str) -> None:
    import llvmlite.binding as llvm

    _init_llvm()
    try:
        llvm.Target.from_triple(triple)
    except RuntimeError:
        raise _unknown(name, f" (LLVM has no target for triple '{triple}')") from None


def _features(cpu: str, extra: str) -> str:
    """The CPU's own features (as qc knows them) plus `extra`, each once, so
    that `vector_bits` and the passes can read them."""
    feats = [f for part in (_CPU_FEATURES.get(cpu, ""), extra) for f in part.split(",") if f]
    return ",".join(dict.fromkeys(feats))


# The features a CPU name implies that qc's passes read (vector width, 8-bit
# dot products, byte permutes); LLVM derives the full set from the name
# itself. Without an entry, `x86_64-unknown-linux-gnu:sapphirerapids` would
# get 128-bit SSE tiles and no vpdpbusd.
_V3 = "+avx,+avx2,+fma"
_V4 = f"{_V3},+avx512f,+avx512bw,+avx512dq,+avx512vl"
_ICL = f"{_V4},+avx512vnni,+avx512vbmi"  # Ice Lake and later: VNNI and vpermb
_DOT = "+neon,+dotprod"
_CPU_FEATURES = {
    "x86-64-v3": _V3,
    "x86-64-v4": _V4,
    **dict.fromkeys(("haswell", "broadwell", "skylake", "znver1", "znver2", "znver3"), _V3),
    **dict.fromkeys(("alderlake", "raptorlake", "meteorlake", "arrowlake"), f"{_V3},+avxvnni"),
    "skylake-avx512": _V4,
    **dict.fromkeys(("cascadelake", "cooperlake"), f"{_V4},+avx512vnni"),
    **dict.fromkeys(("icelake-client", "icelake-server", "tigerlake", "rocketlake", "znver4"), _ICL),
    **dict.fromkeys(("sapphirerapids", "emeraldrapids", "graniterapids", "znver5"), f"{_ICL},+avxvnni"),
    **dict.fromkeys(("cortex-a53", "cortex-a72", "cortex-a73"), "+neon"),
    **dict.fromkeys(("cortex-a55", "cortex-a76", "cortex-a78", "cortex-x1", "neoverse-n1", "neoverse-v1",
                     "neoverse-n2", "apple-m1"), _DOT),
}


_llvm_ready = False


def _init_llvm() -> None:
    # llvmlite 0.50: llvm.initialize() raises; only targets and asm printers are needed.
    global _llvm_ready
    if not _llvm_ready:
        import llvmlite.binding as llvm

        llvm.initialize_all_targets()
        llvm.initialize_all_asmprinters()
        # LLVM does not vectorize loops of fewer than 16 iterations by default:
        # the rows of 14 and 7 pixels of a depthwise convolution or pooling on
        # a small map stayed scalar (ShuffleNet's: twice onnxruntime's time).
        llvm.set_option("qc", "-vectorizer-min-trip-count=4")
        _llvm_ready = True
