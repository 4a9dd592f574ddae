"""Running a model library built for another ISA, under qemu-user.

    model = qc.load("model-aarch64.so")      # on x86-64: a QemuModel
    model.emulator.describe()                # 'qemu-aarch64 -L /usr/aarch64-linux-gnu'

A foreign library cannot be loaded into this process. Instead a small C
program, `qc_runner.c`, is cross-compiled once per ISA (cached under
~/.cache/qc/runner/) and started under qemu-user with the target's sysroot;
it dlopens the library, prints its metadata, then runs it on inputs sent
through a pipe. The model keeps the interface of `Model` (`inputs`,
`outputs`, `run`, `__call__`, `close`, `target_triple`).

A RISC-V library records the vector length its code assumes (`vlen=N` in
its `.qc_target` section); qemu then emulates `-cpu rv64,v=true,vlen=N`.

Needs: Debian `qemu-user` and the cross compiler with its sysroot
(`gcc-aarch64-linux-gnu`, `gcc-riscv64-linux-gnu`). Like the rest of
qc.runtime, this module needs numpy only.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import resource
import shutil
import signal
import struct
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .dtypes import DTYPES, numpy_dtype
from .model import LoadError, Model, RunError, TensorInfo

RUNTIME_DIR = Path(__file__).resolve().parent

# arch -> (qemu-user binary, sysroot for -L, cross C compiler, Debian packages)
FOREIGN = {
    "aarch64": ("qemu-aarch64", "/usr/aarch64-linux-gnu", "aarch64-linux-gnu-gcc", "gcc-aarch64-linux-gnu"),
    "riscv64": ("qemu-riscv64", "/usr/riscv64-linux-gnu", "riscv64-linux-gnu-gcc", "gcc-riscv64-linux-gnu"),
    "x86_64": ("qemu-x86_64", "/usr/x86_64-linux-gnu", "x86_64-linux-gnu-gcc", "gcc-x86-64-linux-gnu"),
}


@dataclass(frozen=True)
class Emulator:
    """How to start a program of one foreign ISA under qemu-user."""

    arch: str
    qemu: str  # path of the qemu-user binary
    sysroot: str  # its -L: the target's dynamic loader and libc
    cpu: str = ""  # its -cpu, "" for qemu's default

    def command(self) -> list[str]:
        cpu = ["-cpu", self.cpu] if self.cpu else []
        return [self.qemu, "-L", self.sysroot, *cpu]

    def describe(self) -> str:
        return " ".join([os.path.basename(self.qemu), *self.command()[1:]])


def section(path: str, name: str) -> bytes | None:
    """The contents of one section of a 64-bit little-endian ELF file (None
    if it has no such section), read without loading the whole file."""
    with open(path, "rb") as f:
        head = f.read(64)
        if len(head) < 64 or head[:6] != b"\x7fELF\x02\x01":
            return None
        shoff, = struct.unpack_from("<Q", head, 0x28)
        shentsize, shnum, shstrndx = struct.unpack_from("<HHH", head, 0x3A)
        f.seek(shoff)
        table = f.read(shentsize * shnum)
        if shentsize < 40 or len(table) < shentsize * shnum or shstrndx >= shnum:
            return None
        # Elf64_Shdr: name, type (u32), flags, addr, offset, size (u64), ...
        headers = [struct.unpack_from("<IIQQQQ", table, i * shentsize) for i in range(shnum)]
        f.seek(headers[shstrndx][4])
        names = f.read(headers[shstrndx][5])
        for sh_name, _type, _flags, _addr, offset, size in headers:
            if names[sh_name:names.find(b"\0", sh_name)] == name.encode():
                f.seek(offset)
                return f.read(size)
    return None


def target_record(path: str) -> dict[str, str]:
    """The `key=value` words qc recorded in the library (empty if none)."""
    raw = section(path, ".qc_target")
    if not raw:
        return {}
    text = raw.split(b"\0", 1)[0].decode(errors="replace")
    return dict(w.split("=", 1) for w in text.split() if "=" in w)


def qemu_cpu(arch: str, record: dict[str, str]) -> str:
    """The -cpu for a library: RVV code needs the vector unit at the VLEN it
    was generated for (without `v=true` its first vector instruction is
    SIGILL)."""
    vlen = record.get("vlen", "")
    if arch == "riscv64" and vlen.isdigit():
        return f"rv64,v=true,vext_spec=v1.0,vlen={vlen}"
    return ""


def emulator_for(path: str, arch: str, host: str) -> Emulator:
    """The emulator that runs `path`, or a LoadError saying what to install."""
    if arch not in FOREIGN:
        raise LoadError(f"{path}: built for {arch}, this machine is {host}; qc cannot run {arch} code here")
    qemu, sysroot, _cc, pkg = FOREIGN[arch]
    install = f"apt-get install qemu-user {pkg}"
    found = shutil.which(qemu)
    if not found:
        raise LoadError(f"{path}: built for {arch}, this machine is {host}, and {qemu} is missing "
                        f"to run it under emulation ({install})")
    if not os.path.isdir(sysroot):
        raise LoadError(f"{path}: built for {arch}; its sysroot {sysroot} for {qemu} -L is missing ({install})")
    return Emulator(arch, found, sysroot, qemu_cpu(arch, target_record(path)))


def _cache_dir() -> Path:
    """~/.cache/qc/runner, or a directory in /tmp where the home is read-only."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    for d in (Path(base) / "qc" / "runner", Path(tempfile.gettempdir()) / f"qc-runner-{os.getuid()}"):
        try:
            d.mkdir(parents=True, exist_ok=True)
        except OSError:
            continue
        if os.access(d, os.W_OK) and d.stat().st_uid == os.getuid():  # not another user's /tmp directory
            return d
    raise LoadError(f"cannot build qc_runner: neither {base}/qc/runner nor {tempfile.gettempdir()} is writable")


def runner(arch: str) -> str:
    """qc_runner for `arch`: built with the cross compiler on first use, then
    cached by a hash of its sources (so an edited runner is rebuilt)."""
    _qemu, _sysroot, cc, pkg = FOREIGN[arch]
    sources = [RUNTIME_DIR / "qc_runner.c", RUNTIME_DIR / "qc_runtime.h"]
    digest = hashlib.sha256(b"".join(p.read_bytes() for p in sources) + cc.encode()).hexdigest()[:16]
    exe = _cache_dir() / f"qc_runner-{arch}-{digest}"
    if exe.is_file():
        return str(exe)
    # Concurrent first uses (parallel tests) each build a copy, then rename it in place.
    fd, tmp = tempfile.mkstemp(prefix=exe.name + ".", dir=exe.parent)
    os.close(fd)
    cmd = [cc, "-O2", "-std=c11", "-Wall", f"-I{RUNTIME_DIR}", "-o", tmp, str(sources[0]), "-ldl"]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True)
    except FileNotFoundError:
        os.unlink(tmp)
        raise LoadError(f"cannot build qc_runner for {arch}: {cc} is missing (apt-get install {pkg})") from None
    if proc.returncode != 0:
        os.unlink(tmp)
        raise LoadError(f"cannot build qc_runner for {arch}: {' '.join(cmd)}: {proc.stderr.strip()}")
    os.replace(tmp, exe)
    return str(exe)


class _Runner:
    """qc_runner under qemu, in the role of the ctypes library: `Model.run`
    calls `qc_run` with buffer pointers as it would in-process; the buffers
    travel through the runner's stdin and stdout instead."""

    def __init__(self, path: str, emulator: Emulator):
        self.path = path
        self.emulator = emulator
        self._stderr = tempfile.TemporaryFile()
        cmd = [*emulator.command(), runner(emulator.arch), os.path.abspath(path), "--serve"]
        self._proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr,
                                      preexec_fn=_no_core_files)
        self._error = b""
        self.meta = self._read_metadata()
        self._in_bytes = [_nbytes(t) for t in self.meta["input"]]
        self._out_bytes = [_nbytes(t) for t in self.meta["output"]]

    def _read_metadata(self) -> dict:
        meta: dict = {"input": [], "output": [], "triple": "", "target": ""}
        while True:
            line = self._proc.stdout.readline().decode(errors="replace").rstrip("\n")
            if not line:
                raise LoadError(self._died("the runner stopped while reading the metadata"))
            if line == "end":
                return meta
            key, _, rest = line.partition(" ")
            if key in ("input", "output"):
                parts = rest.split(" ")
                code, rank = int(parts[0]), int(parts[1])
                name = " ".join(parts[2 + rank:])
                if code not in DTYPES:
                    raise LoadError(f"{self.path}: {key} '{name}' has unknown element type code {code}")
                meta[key].append(TensorInfo(name, numpy_dtype(code), tuple(int(d) for d in parts[2:2 + rank])))
            else:
                meta[key] = rest

    def _died(self, what: str) -> str:
        """What the runner said before it stopped (qemu's signal report, a load error)."""
        proc, self._proc = self._proc, None
        _stop(proc)
        self._stderr.seek(0)
        said = " ".join(self._stderr.read().decode(errors="replace").split())
        code = proc.returncode
        how = f"killed by {signal.Signals(-code).name}: {signal.strsignal(-code)}" if code < 0 else f"exit status {code}"
        return f"{self.path}: {what} under {self.emulator.describe()} ({how}){': ' + said if said else ''}"

    def exchange(self, request: bytes, reply_bytes: int) -> bytes | None:
        """Sends a request; the reply, or None with the runner's error message kept."""
        if self._proc is None:
            raise RunError(f"{self.path}: the model's process has stopped")
        try:
            self._proc.stdin.write(request)
            self._proc.stdin.flush()
        except BrokenPipeError:
            raise RunError(self._died("the model stopped")) from None
        status = self._proc.stdout.read(1)
        if status == b"E":
            n, = struct.unpack("<I", self._proc.stdout.read(4))
            self._error = self._proc.stdout.read(n)
            return None
        reply = self._proc.stdout.read(reply_bytes) if status == b"K" else b""
        if status != b"K" or len(reply) != reply_bytes:
            raise RunError(self._died("the model stopped"))
        return reply

    # -- the part of the C ABI that Model uses ------------------------------------
    def qc_run(self, _ctx, in_ptrs, _in_bytes, out_ptrs, _out_bytes) -> int:
        request = b"R" + b"".join(ctypes.string_at(in_ptrs[i], n) for i, n in enumerate(self._in_bytes))
        reply = self.exchange(request, sum(self._out_bytes))
        if reply is None:
            return 5  # QC_ERROR_ARGUMENT: the runtime's message is in qc_last_error
        offset = 0
        for i, n in enumerate(self._out_bytes):
            ctypes.memmove(out_ptrs[i], reply[offset:offset + n], n)
            offset += n
        return 0

    def qc_last_error(self, _ctx) -> bytes:
        return self._error

    def qc_context_destroy(self, _ctx) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            try:
                proc.stdin.write(b"Q")
            except (BrokenPipeError, ValueError):
                pass
            _stop(proc)
        self._stderr.close()


def _no_core_files() -> None:
    # qemu-user dies of the guest's fatal signal (SIGILL without the vector
    # unit); where the core limit allows, that leaves a core file of qemu in
    # the working directory.
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def _nbytes(t: TensorInfo) -> int:
    return int(np.prod(t.shape, dtype=np.int64)) * t.dtype.itemsize


def _stop(proc: subprocess.Popen) -> None:
    for pipe in (proc.stdin, proc.stdout):
        try:
            pipe.close()
        except BrokenPipeError:
            pass
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


class QemuModel(Model):
    """A model library for another ISA, run by qc_runner under qemu-user.
    Inputs are checked by `Model.run` exactly as for a native library."""

    def __init__(self, path: str | os.PathLike, emulator: Emulator):
        path = os.fspath(path)
        self.path = path
        self.emulator = emulator
        self._lib = _Runner(path, emulator)
        meta = self._lib.meta
        self.inputs, self.outputs = meta["input"], meta["output"]
        self.target_triple = meta["triple"]
        self.target = meta["target"]  # the record: triple, cpu, features (and vlen)
        self._ctx = 1  # the runner process holds the one context
        self._in_ptrs = (ctypes.c_void_p * max(len(self.inputs), 1))()
        self._out_ptrs = (ctypes.c_void_p * max(len(self.outputs), 1))()
        self._input_index = {t.name: i for i, t in enumerate(self.inputs)}
        self._qc_run = self._lib.qc_run

    def __repr__(self) -> str:
        return super().__repr__()[:-1] + f" under {self.emulator.describe()}>"

    def time_runs(self, feeds, runs: int) -> list[float]:
        """Seconds per run measured inside the emulated process, without the
        pipe traffic: `runs` runs on `feeds`. Emulated time, not the target's."""
        self.run(feeds)  # checks and sends the inputs
        reply = self._lib.exchange(b"T" + struct.pack("<I", runs), 8 * runs)
        return [t / 1e9 for t in struct.unpack(f"<{runs}q", reply)]


def load_foreign(path: str, arch: str, host: str) -> QemuModel:
    """A model library for ISA `arch` on a `host` machine, run under qemu."""
    return QemuModel(path, emulator_for(path, arch, host))
