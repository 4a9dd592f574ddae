"""Loading and running a compiled model from Python (ctypes; needs only numpy).

    model = qc.load("model.so")
    outputs = model(x=x)              # or model.run({"x": x})

Every input is checked against the model's metadata (name, dtype, shape)
before the native code sees it; a mismatch raises `InputError` naming the
input, what was expected and what was given. The conversions it makes:

- an ndarray must have the input's dtype and shape; one in the other byte
  order, strided (a slice, a transpose, a reversed view) or misaligned is
  copied to a dense, native-order, aligned array first; any other dtype is an
  error (no silent float64 -> float32);
- a Python scalar, a nested list or a numpy scalar is converted when no value
  changes kind or range: ints and bools for a float input, bools for an int
  input; not floats for an int input, not ints outside the input's range,
  not finite floats that would overflow to infinity in the input's dtype.

NaN and infinity are IEEE values, not errors: they pass through the model's
arithmetic as they do through onnxruntime's (qc compiles without fast-math
flags that assume finite values), so an output holds NaN or infinity where
onnxruntime's does: through arithmetic, GEMMs, the math functions, softmax,
sums and maxima (test/python/test_nonfinite.py). Known differences: where
ONNX leaves the result open, Sign(NaN), ArgMax/ArgMin and MaxPool over a
NaN (qc's max pooling passes a NaN over; onnxruntime's returns NaN only
where it is a window's last tap), and Clip without bounds on ±Inf
(onnxruntime clamps to the largest finite float); and ReduceLogSumExp over
+Inf, NaN here (the maximum is subtracted first) but +Inf in onnxruntime.

Where a non-finite input means a broken sensor or preprocessing step, load
with `check_finite=True` (`qc.load(path, check_finite=True)`, or set
`model.check_finite`): every floating-point input is then scanned before
the run (one pass over the data), and one with NaN or infinity raises
`InputError` naming the input and counting its non-finite values. It is a
property of the loaded model, not a `run()` argument, because `model(...)`
takes input names as keywords, and an input may be called `check_finite`.
"""

from __future__ import annotations

import ctypes
import os
import platform
import struct
import threading
from typing import Mapping, NamedTuple

import numpy as np

from .dtypes import DTYPES, numpy_dtype


class LoadError(Exception):
    """The file is not a loadable qc model library."""


class InputError(ValueError):
    """Inputs do not match the model's metadata."""


class RunError(RuntimeError):
    """The runtime rejected a call."""


class TensorInfo(NamedTuple):
    name: str
    dtype: np.dtype
    shape: tuple[int, ...]


_ELF_MACHINES = {62: "x86_64", 183: "aarch64", 243: "riscv64"}


def elf_arch(path: str) -> str:
    """The architecture of an ELF shared library, from its header."""
    with open(path, "rb") as f:
        head = f.read(64)
    if len(head) < 20 or head[:4] != b"\x7fELF":
        raise LoadError(f"{path}: not a shared library (no ELF header)")
    if head[4] != 2:
        raise LoadError(f"{path}: a 32-bit library; qc models are 64-bit")
    endian = "<" if head[5] == 1 else ">"
    (e_type, machine) = struct.unpack(endian + "HH", head[16:20])
    if e_type != 3:
        raise LoadError(f"{path}: not a shared library (ELF type {e_type})")
    _check_complete(path, endian)
    return _ELF_MACHINES.get(machine, f"machine {machine}")


_PT_LOAD = 1


def _check_complete(path: str, endian: str) -> None:
    """Fails if the file ends before the data its ELF headers describe.

    dlopen maps the loadable segments without checking the file's size, so
    touching a page past the end of a truncated library raises SIGBUS inside
    dlopen; this check turns that crash into an error.
    """
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        head = f.read(64)
        if len(head) < 64:
            raise LoadError(f"{path}: truncated shared library ({size} bytes, no complete ELF header)")
        e_phoff, e_shoff = struct.unpack(endian + "QQ", head[32:48])
        e_phentsize, e_phnum, e_shentsize, e_shnum = struct.unpack(endian + "HHHH", head[54:62])
        needed = max(e_phoff + e_phentsize * e_phnum, e_shoff + e_shentsize * e_shnum)
        if e_phentsize >= 56 and e_phoff + e_phentsize * e_phnum <= size:
            f.seek(e_phoff)
            table = f.read(e_phentsize * e_phnum)
            for i in range(e_phnum):
                ph = table[i * e_phentsize:(i + 1) * e_phentsize]
                p_type, _flags, p_offset = struct.unpack(endian + "IIQ", ph[:16])
                (p_filesz,) = struct.unpack(endian + "Q", ph[32:40])
                if p_type == _PT_LOAD:
                    needed = max(needed, p_offset + p_filesz)
    if needed > size:
        raise LoadError(f"{path}: truncated shared library ({size} bytes, its headers describe {needed})")


def host_arch() -> str:
    m = platform.machine().lower()
    return {"amd64": "x86_64", "arm64": "aarch64"}.get(m, m)


class Model:
    """A compiled model library, loaded into this process."""

    check_finite: bool = False  # reject NaN/Inf in floating-point inputs (see the module docstring)

    def __init__(self, path: str | os.PathLike, threads: int = 1, check_finite: bool = False):
        path = os.fspath(path)
        if os.path.isdir(path):
            raise LoadError(f"{path}: is a directory, expected a model library (.so)")
        if not os.path.isfile(path):
            raise LoadError(f"{path}: no such file")
        arch = elf_arch(path)
        if arch != host_arch():
            raise LoadError(f"{path}: built for {arch}, this machine is {host_arch()}")
        try:
            lib = _dlopen(path)
        except OSError as e:
            raise LoadError(f"{path}: cannot load: {e}") from None
        try:
            lib.qc_abi_version.restype = ctypes.c_int32
            version = lib.qc_abi_version()
        except AttributeError:
            raise LoadError(f"{path}: not a qc model library (no qc_abi_version)") from None
        if version != 1:
            raise LoadError(f"{path}: model ABI version {version}, this runtime reads version 1")
        self.path = path
        self._lib = lib
        self._declare(lib)
        self.inputs = self._tensors("input", lib.qc_num_inputs())
        self.outputs = self._tensors("output", lib.qc_num_outputs())
        self.target_triple = lib.qc_target_triple().decode()
        # Bytes this model's context holds for intermediates (the planned arena).
        self.arena_bytes = int(lib.qc_arena_bytes())
        self._ctx = lib.qc_context_create()
        if not self._ctx:
            raise MemoryError("qc_context_create failed")
        n_in, n_out = len(self.inputs), len(self.outputs)
        self._in_ptrs = (ctypes.c_void_p * max(n_in, 1))()
        self._out_ptrs = (ctypes.c_void_p * max(n_out, 1))()
        self._input_index = {t.name: i for i, t in enumerate(self.inputs)}
        self._qc_run = lib.qc_run  # CDLL attribute lookup is not free: once here
        self._threads = 1
        self.threads = threads
        self.check_finite = check_finite

    @property
    def threads(self) -> int:
        """Threads a run may use (1 by default, for reproducible timing)."""
        return self._threads

    @threads.setter
    def threads(self, n: int) -> None:
        if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= 1024:
            raise ValueError(f"threads must be an integer in 1..1024, got {n!r}")
        with self._run_lock():
            if self._ctx is None:
                raise RunError("model is closed")
            if self._lib.qc_context_set_num_threads(self._ctx, n) != 0:
                raise RunError(self._lib.qc_last_error(self._ctx).decode())
            self._threads = n

    @staticmethod
    def _declare(lib) -> None:
        i32, i64, cp, vp = ctypes.c_int32, ctypes.c_int64, ctypes.c_char_p, ctypes.c_void_p
        for kind in ("input", "output"):
            getattr(lib, f"qc_{kind}_name").restype = cp
            getattr(lib, f"qc_{kind}_dtype").restype = i32
            getattr(lib, f"qc_{kind}_rank").restype = i32
            getattr(lib, f"qc_{kind}_shape").restype = ctypes.POINTER(i64)
            for fn in ("name", "dtype", "rank", "shape"):
                getattr(lib, f"qc_{kind}_{fn}").argtypes = [i32]
        lib.qc_num_inputs.restype = i32
        lib.qc_num_outputs.restype = i32
        lib.qc_target_triple.restype = cp
        lib.qc_arena_bytes.restype = i64
        lib.qc_context_create.restype = vp
        lib.qc_context_destroy.argtypes = [vp]
        lib.qc_context_set_num_threads.restype = ctypes.c_int
        lib.qc_context_set_num_threads.argtypes = [vp, ctypes.c_int32]
        lib.qc_run.restype = ctypes.c_int
        lib.qc_run.argtypes = [vp, vp, vp, vp, vp]
        lib.qc_last_error.restype = cp
        lib.qc_last_error.argtypes = [vp]

    def _tensors(self, kind: str, n: int) -> list[TensorInfo]:
        out = []
        for i in range(n):
            name = getattr(self._lib, f"qc_{kind}_name")(i).decode()
            code = getattr(self._lib, f"qc_{kind}_dtype")(i)
            if code not in DTYPES:
                raise LoadError(f"{self.path}: {kind} '{name}' has unknown element type code {code}")
            rank = getattr(self._lib, f"qc_{kind}_rank")(i)
            shp = getattr(self._lib, f"qc_{kind}_shape")(i)
            out.append(TensorInfo(name, numpy_dtype(code), tuple(shp[j] for j in range(rank))))
        return out

    def __repr__(self) -> str:
        sig = lambda ts: ", ".join(f"{t.name}: {t.dtype}{list(t.shape)}" for t in ts)  # noqa: E731
        return f"<qc.Model {self.path} ({sig(self.inputs)}) -> ({sig(self.outputs)})>"

    def _check(self, info: TensorInfo, value) -> np.ndarray:
        if not isinstance(value, np.ndarray):
            value = _convert(info, value)
        swapped = value.dtype != info.dtype and value.dtype.newbyteorder("=") == info.dtype
        if value.dtype != info.dtype and not swapped:
            raise InputError(
                f"input '{info.name}': expected dtype {info.dtype}, got {value.dtype} "
                f"(convert with .astype(np.{info.dtype.name}))"
            )
        if value.shape != info.shape:
            raise InputError(f"input '{info.name}': expected shape {list(info.shape)}, got {list(value.shape)}")
        if swapped:  # the other byte order: the same values, copied in native order
            value = value.astype(info.dtype, order="C")
        elif not value.flags.c_contiguous or value.ctypes.data % max(info.dtype.itemsize, 1):
            value = np.ascontiguousarray(value).copy()  # the ABI takes dense, aligned C-order buffers
        return value

    def run(self, feeds: Mapping[str, object]) -> dict[str, np.ndarray]:
        """Runs the model on named inputs; returns outputs by name (new arrays)."""
        if self._ctx is None:
            raise RunError("model is closed")
        if not isinstance(feeds, Mapping):
            raise InputError("inputs must be a mapping of input name to array")
        ins = [feeds.get(t.name) for t in self.inputs] if len(feeds) == len(self.inputs) else None
        if ins is not None and self._as_is(ins):
            if self.check_finite:
                _check_finite(self.inputs, ins)
            return self._invoke(ins)
        missing = [t.name for t in self.inputs if t.name not in feeds]
        unknown = [k for k in feeds if k not in self._input_index]
        if unknown or missing:
            problems = []
            if unknown:
                problems.append(f"unknown input(s) {', '.join(map(repr, unknown))}")
            if missing:
                problems.append(f"missing input(s) {', '.join(map(repr, missing))}")
            raise InputError(f"{' and '.join(problems)}; model inputs: "
                             f"{', '.join(f'{t.name} {t.dtype}{list(t.shape)}' for t in self.inputs)}")
        ins = [self._check(info, feeds[info.name]) for info in self.inputs]
        if self.check_finite:
            _check_finite(self.inputs, ins)
        return self._invoke(ins)

    def _as_is(self, values) -> bool:
        """Whether `values` (in input order) are arrays the run takes as they
        are: the common case costs a few attribute reads; anything else goes
        through _check, which converts, copies or explains."""
        for info, v in zip(self.inputs, values):
            if not (type(v) is np.ndarray and v.dtype == info.dtype and v.shape == info.shape
                    and v.flags.c_contiguous and v.flags.aligned):
                return False
        return True

    def _invoke(self, ins: list[np.ndarray]) -> dict[str, np.ndarray]:
        """Runs on checked inputs: C-contiguous and aligned (the ABI needs both)."""
        outs = {info.name: np.empty(info.shape, info.dtype) for info in self.outputs}
        with self._run_lock():
            if self._ctx is None:
                raise RunError("model is closed")  # by another thread meanwhile
            for i, arr in enumerate(ins):
                self._in_ptrs[i] = _address(arr)
            for i, arr in enumerate(outs.values()):
                self._out_ptrs[i] = _address(arr)
            status = self._qc_run(self._ctx, self._in_ptrs, None, self._out_ptrs, None)
            if status != 0:
                raise RunError(self._lib.qc_last_error(self._ctx).decode())
        return outs

    def __call__(self, /, *args, **kwargs) -> dict[str, np.ndarray]:
        """model(x, y) positionally, or model(x=x, y=y) by input name (any
        name: `self` is positional-only, so an input may be called self)."""
        if not kwargs and len(args) == len(self.inputs) and self._as_is(args):
            # Straight to the run, without building the mapping that run() takes
            # (a third of the wrapper's time on a small model).
            if self._ctx is None:
                raise RunError("model is closed")
            if self.check_finite:
                _check_finite(self.inputs, args)
            return self._invoke(args)
        if args:
            if len(args) > len(self.inputs):
                raise InputError(f"model takes {len(self.inputs)} input(s), got {len(args)}")
            for info, a in zip(self.inputs, args):
                if info.name in kwargs:
                    raise InputError(f"input '{info.name}' given twice")
                kwargs[info.name] = a
        return self.run(kwargs)

    def _run_lock(self) -> threading.Lock:
        """A context serves one run at a time (qc_runtime.h), and ctypes lets
        other Python threads run during qc_run: one lock per model keeps
        concurrent calls from overwriting each other's buffer pointers, and
        close() from freeing a context in use. Made on first use, so that
        subclasses with their own __init__ (QemuModel) have it too."""
        lock = self.__dict__.get("_lock")
        if lock is None:
            lock = self.__dict__.setdefault("_lock", threading.Lock())
        return lock

    def close(self) -> None:
        if not getattr(self, "_ctx", None):  # closed, or __init__ failed first
            return
        with self._run_lock():
            if self._ctx:
                self._lib.qc_context_destroy(self._ctx)
                self._ctx = None

    def __del__(self):
        self.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


_LOADED: dict[str, tuple] = {}  # absolute path -> identity of the file loaded from it


def _dlopen(path: str) -> ctypes.CDLL:
    """dlopen that sees a rebuilt library: the dynamic loader hands back the
    library it already loaded from a path, so a file replaced since (a model
    compiled again to the same name) is loaded through a fresh hard link, or
    a copy, which is removed once mapped."""
    ap = os.path.abspath(path)
    st = os.stat(ap)
    ident = (st.st_dev, st.st_ino, st.st_mtime_ns, st.st_size)
    if _LOADED.setdefault(ap, ident) == ident:
        return ctypes.CDLL(ap, mode=os.RTLD_LOCAL)
    import shutil
    import tempfile

    tmp = tempfile.mkdtemp(prefix="qc-load-")
    alias = os.path.join(tmp, os.path.basename(ap))
    try:
        try:
            os.link(ap, alias)
        except OSError:
            shutil.copyfile(ap, alias)
        return ctypes.CDLL(alias, mode=os.RTLD_LOCAL)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _address(arr: np.ndarray) -> int:
    """The data address of an array: through a ctypes view of its buffer for
    writable arrays (3x cheaper than .ctypes.data), else .ctypes.data."""
    if arr.flags.writeable and arr.nbytes:
        return ctypes.addressof(ctypes.c_char.from_buffer(arr))
    return arr.ctypes.data


def _convert(info: TensorInfo, value) -> np.ndarray:
    """A list or scalar as an array of the input's dtype, if no value changes
    kind: [1.5] for an int32 input is an error, not a silent 1."""
    try:
        arr = np.asarray(value)
    except (TypeError, ValueError) as e:
        raise InputError(f"input '{info.name}': cannot convert to an array: {e}") from None
    if arr.dtype == object or not np.can_cast(arr.dtype, info.dtype, casting="same_kind"):
        raise InputError(f"input '{info.name}': expected {info.dtype} values, got {arr.dtype}")
    if np.issubdtype(info.dtype, np.integer) and arr.size:
        lim = np.iinfo(info.dtype)
        if arr.min() < lim.min or arr.max() > lim.max:
            raise InputError(f"input '{info.name}': values out of range for {info.dtype}")
    with np.errstate(over="ignore"):  # 1e300 as float32 is inf: found below, not warned about
        out = arr.astype(info.dtype)
    if np.issubdtype(info.dtype, np.floating) and arr.size and np.any(np.isinf(out) & np.isfinite(arr)):
        raise InputError(f"input '{info.name}': values out of range for {info.dtype} "
                         f"(finite values beyond ±{np.finfo(info.dtype).max:.4g})")
    return out


def _check_finite(infos: list[TensorInfo], arrays: list[np.ndarray]) -> None:
    """Raises InputError for the first floating-point input with NaN or ±Inf."""
    for info, arr in zip(infos, arrays):
        if np.issubdtype(info.dtype, np.floating):
            bad = arr.size - int(np.count_nonzero(np.isfinite(arr)))
            if bad:
                nan = int(np.count_nonzero(np.isnan(arr)))
                raise InputError(f"input '{info.name}': {bad} non-finite value(s) ({nan} NaN, {bad - nan} ±Inf) "
                                 f"of {arr.size}; check_finite is on")


def load(path: str | os.PathLike, threads: int = 1, check_finite: bool = False) -> Model:
    """A model library for this machine, loaded into this process; one for
    another ISA runs under qemu-user (qc.runtime.qemu) when qemu and the
    target's cross toolchain are installed, else a LoadError says what to install.
    check_finite: reject inputs holding NaN or ±Inf (InputError) instead of
    passing them through."""
    if os.path.isfile(path):
        arch = elf_arch(os.fspath(path))
        if arch != host_arch():
            from .qemu import load_foreign

            if threads != 1:
                raise LoadError(f"{path}: a {arch} library runs under qemu on one thread; threads={threads} "
                                "is for libraries of this machine")
            model = load_foreign(os.fspath(path), arch, host_arch())
            model.check_finite = check_finite
            return model
    return Model(path, threads, check_finite)
