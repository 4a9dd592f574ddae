"""The Python API (qc.compile, qc.load, calling a model), the wrapper's input
checks, and the C ABI called directly through ctypes."""

from __future__ import annotations

import ctypes
import os
import subprocess
import sys

import numpy as np
import pytest
from helpers import make_model
from onnx import helper

import qc
from qc.runtime import InputError, LoadError, RunError

F32 = np.float32
QC_OK, QC_ERROR_NULL, QC_ERROR_SIZE, QC_ERROR_ALIGN = 0, 1, 2, 3


def affine_model():
    """y = x @ w + b (x: float32[2, 3]), and n = k * 2 (k: int32[4]): two inputs of different dtypes."""
    w = np.arange(12, dtype=F32).reshape(3, 4) / 10
    b = np.array([1.0, -1.0, 0.5, 0.0], F32)
    nodes = [helper.make_node("MatMul", ["x", "w"], ["xw"]), helper.make_node("Add", ["xw", "b"], ["y"]),
             helper.make_node("Mul", ["k", "two"], ["n"])]
    model = make_model(nodes, {"x": (F32, (2, 3)), "k": (np.int32, (4,))},
                       {"y": (F32, (2, 4)), "n": (np.int32, (4,))},
                       {"w": w, "b": b, "two": np.array(2, np.int32)})
    return model, w, b


def expected(x, k):
    _, w, b = affine_model()
    return {"y": x @ w + b, "n": k * 2}


@pytest.fixture(scope="module")
def lib(tmp_path_factory) -> str:
    path = str(tmp_path_factory.mktemp("rt") / "affine.so")
    assert qc.compile(affine_model()[0], path) == path
    return path


@pytest.fixture
def model(lib):
    with qc.load(lib) as m:
        yield m


def feeds(seed=0):
    rng = np.random.default_rng(seed)
    return {"x": rng.standard_normal((2, 3)).astype(F32), "k": rng.integers(-50, 50, 4).astype(np.int32)}


def check(outs, x, k):
    want = expected(x, k)
    assert sorted(outs) == ["n", "y"]
    np.testing.assert_allclose(outs["y"], want["y"], rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(outs["n"], want["n"])
    assert outs["y"].dtype == F32 and outs["n"].dtype == np.int32


# --- qc.compile ------------------------------------------------------------------

@pytest.mark.parametrize("emit,marker", [
    ("input", "func.func @qc_model"),
    ("bufferized", "memref<2x3xf32>"),
    ("llvm-dialect", "llvm.func @qc_model"),
    ("llvm-ir", "define void @qc_model"),
    ("asm", "qc_model:"),
])
def test_compile_returns_text_for_textual_emits(emit, marker):
    text = qc.compile(affine_model()[0], emit=emit)
    assert isinstance(text, str) and marker in text


def test_compile_textual_emit_to_file(tmp_path):
    out = tmp_path / "m.mlir"
    assert qc.compile(affine_model()[0], out, emit="input") == str(out)
    assert "func.func @qc_model" in out.read_text()


def test_compile_from_path(tmp_path):
    import onnx

    onnx.save(affine_model()[0], tmp_path / "m.onnx")
    assert qc.compile(tmp_path / "m.onnx", tmp_path / "m.so") == str(tmp_path / "m.so")
    with qc.load(tmp_path / "m.so") as m:
        f = feeds(1)
        check(m(**f), **f)


def test_compile_input_shapes(tmp_path):
    node = helper.make_node("Relu", ["x"], ["y"])
    model = make_model([node], {"x": (F32, ("N", 2))}, {"y": (F32, ("N", 2))})
    with pytest.raises(qc.ModelError, match=r"input 'x' has a dynamic dim 0 \('N'\); bind it with --input-shape"):
        qc.compile(model, emit="input")
    lib = qc.compile(model, tmp_path / "r.so", input_shapes={"x": (3, 2)})
    with qc.load(lib) as m:
        assert m.inputs[0].shape == (3, 2)


def test_compile_errors_are_qc_errors():
    with pytest.raises(qc.OptionError, match=r"unknown --emit stage 'nope'"):
        qc.compile(affine_model()[0], emit="nope")
    with pytest.raises(qc.OptionError, match=r"--emit so needs an output file"):
        qc.compile(affine_model()[0])


# --- qc.load and calling a model ------------------------------------------------------

def test_metadata(model, lib):
    assert [(t.name, t.dtype, t.shape) for t in model.inputs] == [("x", np.dtype(F32), (2, 3)),
                                                                ("k", np.dtype(np.int32), (4,))]
    assert [(t.name, t.dtype, t.shape) for t in model.outputs] == [("y", np.dtype(F32), (2, 4)),
                                                                 ("n", np.dtype(np.int32), (4,))]
    assert model.target_triple.startswith("x86_64-")
    assert repr(model) == f"<qc.Model {lib} (x: float32[2, 3], k: int32[4]) -> (y: float32[2, 4], n: int32[4])>"


def test_call_positional(model):
    f = feeds()
    check(model(f["x"], f["k"]), **f)


def test_call_keywords(model):
    f = feeds()
    check(model(k=f["k"], x=f["x"]), **f)


def test_call_mixed(model):
    f = feeds()
    check(model(f["x"], k=f["k"]), **f)


def test_run_dict(model):
    f = feeds()
    check(model.run(f), **f)


def test_outputs_are_new_arrays(model):
    f = feeds()
    first, second = model.run(f), model.run(f)
    assert first["y"] is not second["y"]
    first["y"][:] = 0  # the caller owns them
    check(second, **f)


def test_inputs_not_modified(model):
    f = feeds()
    before = {k: v.copy() for k, v in f.items()}
    model.run(f)
    for k in f:
        np.testing.assert_array_equal(f[k], before[k])


def test_repeated_runs_different_inputs(model):
    for seed in range(3):
        f = feeds(seed)
        check(model.run(f), **f)


def test_two_models_loaded_at_once(lib, tmp_path):
    # Each library is its own RTLD_LOCAL namespace: two models do not mix symbols.
    node = helper.make_node("Relu", ["x"], ["y"])
    other = qc.compile(make_model([node], {"x": (F32, (3,))}, {"y": (F32, (3,))}), tmp_path / "relu.so")
    with qc.load(lib) as a, qc.load(other) as b:
        f = feeds()
        check(a.run(f), **f)
        np.testing.assert_array_equal(b(np.array([-1, 0, 2], F32))["y"], [0, 0, 2])


# --- input checks --------------------------------------------------------------------

def test_wrong_dtype(model):
    f = feeds()
    with pytest.raises(InputError, match=r"input 'x': expected dtype float32, got float64 \(convert with \.astype\(np\.float32\)\)"):
        model(x=f["x"].astype(np.float64), k=f["k"])
    with pytest.raises(InputError, match=r"input 'k': expected dtype int32, got int64"):
        model(x=f["x"], k=f["k"].astype(np.int64))


def test_wrong_shape(model):
    f = feeds()
    with pytest.raises(InputError, match=r"input 'x': expected shape \[2, 3\], got \[3, 2\]"):
        model(x=f["x"].T.copy(), k=f["k"])


def test_wrong_rank(model):
    f = feeds()
    with pytest.raises(InputError, match=r"input 'x': expected shape \[2, 3\], got \[6\]"):
        model(x=f["x"].ravel(), k=f["k"])
    with pytest.raises(InputError, match=r"input 'k': expected shape \[4\], got \[1, 4\]"):
        model(x=f["x"], k=f["k"][None])


def test_wrong_name(model):
    f = feeds()
    with pytest.raises(InputError, match=r"unknown input\(s\) 'X' and missing input\(s\) 'x'; model inputs: x float32\[2, 3\], k int32\[4\]"):
        model(X=f["x"], k=f["k"])


def test_missing_input(model):
    with pytest.raises(InputError, match=r"missing input\(s\) 'k'"):
        model(feeds()["x"])


def test_extra_input(model):
    f = feeds()
    with pytest.raises(InputError, match=r"unknown input\(s\) 'extra'"):
        model.run({**f, "extra": np.zeros(1)})


def test_too_many_positional(model):
    f = feeds()
    with pytest.raises(InputError, match=r"model takes 2 input\(s\), got 3"):
        model(f["x"], f["k"], f["k"])


def test_input_given_twice(model):
    f = feeds()
    with pytest.raises(InputError, match=r"input 'x' given twice"):
        model(f["x"], x=f["x"], k=f["k"])


def test_run_needs_mapping(model):
    with pytest.raises(InputError, match=r"inputs must be a mapping"):
        model.run([feeds()["x"]])


def test_non_contiguous_input_is_copied(model):
    # Views with strides (a column slice, a transpose) are copied to dense C order first.
    f = feeds()
    wide = np.zeros((2, 6), F32)
    wide[:, ::2] = f["x"]
    x_view = wide[:, ::2]
    assert not x_view.flags.c_contiguous
    k_view = np.repeat(f["k"], 2)[::2]
    check(model(x_view, k_view), f["x"], f["k"])
    xt = np.asfortranarray(f["x"])
    check(model(xt, f["k"]), f["x"], f["k"])


def test_misaligned_input_is_copied(model):
    f = feeds()
    raw = np.zeros(f["x"].nbytes + 1, np.uint8)
    x_odd = raw[1:].view(F32).reshape(2, 3)  # one byte off a float boundary
    x_odd[:] = f["x"]
    assert x_odd.ctypes.data % 4
    check(model(x_odd, f["k"]), **f)


def test_list_input_converted(model):
    f = feeds()
    check(model(f["x"].tolist(), f["k"].tolist()), **f)


def test_scalar_lists_keep_kind(model):
    # Floats for an int32 input would be truncated silently: an error instead.
    f = feeds()
    with pytest.raises(InputError, match=r"input 'k': expected int32 values, got float64"):
        model(f["x"], [1.5, 2.0, 3.0, 4.0])
    with pytest.raises(InputError, match=r"input 'k': values out of range for int32"):
        model(f["x"], [2**40, 0, 0, 0])
    with pytest.raises(InputError, match=r"input 'x': expected float32 values, got"):
        model([["a", "b", "c"], ["d", "e", "f"]], f["k"])


def test_list_with_wrong_shape(model):
    with pytest.raises(InputError, match=r"input 'x': expected shape \[2, 3\], got \[3\]"):
        model([1.0, 2.0, 3.0], feeds()["k"])


def test_closed_model(lib):
    m = qc.load(lib)
    m.close()
    with pytest.raises(RunError, match=r"model is closed"):
        m(**feeds())
    m.close()  # closing twice is harmless


def test_context_manager_closes(lib):
    with qc.load(lib) as m:
        pass
    with pytest.raises(RunError, match=r"model is closed"):
        m.run(feeds())


# --- load errors -----------------------------------------------------------------------

def test_load_errors(tmp_path, lib):
    with pytest.raises(LoadError, match=r"no such file"):
        qc.load(tmp_path / "nope.so")
    with pytest.raises(LoadError, match=r"is a directory"):
        qc.load(tmp_path)
    (tmp_path / "text.so").write_text("not a library")
    with pytest.raises(LoadError, match=r"not a shared library \(no ELF header\)"):
        qc.load(tmp_path / "text.so")
    data = open(lib, "rb").read()
    (tmp_path / "cut.so").write_bytes(data[: len(data) // 2])
    with pytest.raises(LoadError, match=r"truncated shared library"):
        qc.load(tmp_path / "cut.so")
    (tmp_path / "head.so").write_bytes(data[:40])
    with pytest.raises(LoadError, match=r"truncated shared library"):
        qc.load(tmp_path / "head.so")


# --- what `import qc` and running a model load ------------------------------------------

def test_runtime_needs_no_compiler(lib):
    code = f"""
import sys
import numpy as np
import qc
after_import = sorted(m for m in sys.modules if m.split('.')[0] in ('mlir', 'llvmlite', 'onnx'))
with qc.load({lib!r}) as m:
    out = m(np.ones((2, 3), np.float32), np.arange(4, dtype=np.int32))
assert out['n'].tolist() == [0, 2, 4, 6], out
after_run = sorted(m for m in sys.modules if m.split('.')[0] in ('mlir', 'llvmlite', 'onnx'))
print(after_import, after_run)
"""
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "[] []"


# --- the C ABI, through ctypes -----------------------------------------------------------

@pytest.fixture
def abi(lib):
    """The library with the ABI's signatures, and one context."""
    so = ctypes.CDLL(os.path.abspath(lib), mode=os.RTLD_LOCAL)
    i32, i64, cp, vp = ctypes.c_int32, ctypes.c_int64, ctypes.c_char_p, ctypes.c_void_p
    for kind in ("input", "output"):
        for fn, rt in (("name", cp), ("dtype", i32), ("rank", i32), ("shape", ctypes.POINTER(i64)), ("bytes", i64)):
            f = getattr(so, f"qc_{kind}_{fn}")
            f.restype, f.argtypes = rt, [i32]
    so.qc_context_create.restype = vp
    so.qc_context_destroy.argtypes = [vp]
    so.qc_run.restype = ctypes.c_int
    so.qc_run.argtypes = [vp, vp, vp, vp, vp]
    so.qc_last_error.restype = cp
    so.qc_last_error.argtypes = [vp]
    so.qc_status_string.restype = cp
    so.qc_status_string.argtypes = [ctypes.c_int]
    ctx = so.qc_context_create()
    assert ctx
    yield so, ctx
    so.qc_context_destroy(ctx)


def _ptrs(*arrays):
    return (ctypes.c_void_p * len(arrays))(*[a.ctypes.data if a is not None else None for a in arrays])


def _sizes(*n):
    return (ctypes.c_int64 * len(n))(*n)


def _buffers(seed=0):
    f = feeds(seed)
    return f["x"], f["k"], np.empty((2, 4), F32), np.empty(4, np.int32)


def test_abi_run_ok(abi):
    so, ctx = abi
    x, k, y, n = _buffers()
    status = so.qc_run(ctx, _ptrs(x, k), _sizes(x.nbytes, k.nbytes), _ptrs(y, n), _sizes(y.nbytes, n.nbytes))
    assert status == QC_OK
    assert so.qc_last_error(ctx) == b""
    check({"y": y, "n": n}, x, k)
    # The byte-size arrays are optional.
    assert so.qc_run(ctx, _ptrs(x, k), None, _ptrs(y, n), None) == QC_OK


@pytest.mark.parametrize("case,message", [
    ("inputs", b"input array is NULL"),
    ("outputs", b"output array is NULL"),
    ("input1", b"input 1 ('k') is NULL"),
    ("output0", b"output 0 ('y') is NULL"),
])
def test_abi_null_pointers(abi, case, message):
    so, ctx = abi
    x, k, y, n = _buffers()
    ins = None if case == "inputs" else _ptrs(x, None if case == "input1" else k)
    outs = None if case == "outputs" else _ptrs(None if case == "output0" else y, n)
    y[:] = 7
    assert so.qc_run(ctx, ins, None, outs, None) == QC_ERROR_NULL
    assert so.qc_last_error(ctx) == message
    assert np.all(y == 7)  # nothing ran


def test_abi_null_context(abi):
    so, _ = abi
    x, k, y, n = _buffers()
    assert so.qc_run(None, _ptrs(x, k), None, _ptrs(y, n), None) == QC_ERROR_NULL
    assert so.qc_last_error(None) == b"context is NULL"


@pytest.mark.parametrize("which,message", [
    ("input", b"input 0 ('x') has 20 bytes, expected 24"),
    ("output", b"output 1 ('n') has 32 bytes, expected 16"),
])
def test_abi_wrong_byte_size(abi, which, message):
    so, ctx = abi
    x, k, y, n = _buffers()
    in_sizes = _sizes(20, k.nbytes) if which == "input" else _sizes(x.nbytes, k.nbytes)
    out_sizes = _sizes(y.nbytes, 32) if which == "output" else _sizes(y.nbytes, n.nbytes)
    assert so.qc_run(ctx, _ptrs(x, k), in_sizes, _ptrs(y, n), out_sizes) == QC_ERROR_SIZE
    assert so.qc_last_error(ctx) == message


def test_abi_misaligned(abi):
    so, ctx = abi
    x, k, y, n = _buffers()
    raw = np.zeros(x.nbytes + 1, np.uint8)
    odd = ctypes.c_void_p(raw.ctypes.data + 1)
    ins = (ctypes.c_void_p * 2)(odd.value, k.ctypes.data)
    assert so.qc_run(ctx, ins, None, _ptrs(y, n), None) == QC_ERROR_ALIGN
    assert so.qc_last_error(ctx) == b"input 0 ('x') is not aligned to 4 bytes"


def test_abi_error_cleared_by_next_run(abi):
    so, ctx = abi
    x, k, y, n = _buffers()
    assert so.qc_run(ctx, None, None, _ptrs(y, n), None) == QC_ERROR_NULL
    assert so.qc_run(ctx, _ptrs(x, k), None, _ptrs(y, n), None) == QC_OK
    assert so.qc_last_error(ctx) == b""


def test_abi_status_strings(abi):
    so, _ = abi
    assert [so.qc_status_string(s) for s in range(6)] == [
        b"ok", b"null pointer", b"wrong buffer size", b"misaligned buffer", b"out of memory", b"bad argument"]
    assert so.qc_status_string(99) == b"unknown status"


def test_abi_metadata_in_range(abi):
    so, _ = abi
    assert (so.qc_num_inputs(), so.qc_num_outputs()) == (2, 2)
    assert [so.qc_input_name(i) for i in range(2)] == [b"x", b"k"]
    assert [so.qc_input_dtype(i) for i in range(2)] == [1, 6]  # ONNX codes: FLOAT, INT32
    assert [so.qc_input_rank(i) for i in range(2)] == [2, 1]
    assert so.qc_input_shape(0)[:2] == [2, 3]
    assert [so.qc_input_bytes(i) for i in range(2)] == [24, 16]
    assert [so.qc_output_name(i) for i in range(2)] == [b"y", b"n"]
    assert [so.qc_output_bytes(i) for i in range(2)] == [32, 16]
    assert so.qc_output_shape(0)[:2] == [2, 4]


@pytest.mark.parametrize("kind", ["input", "output"])
@pytest.mark.parametrize("index", [-1, 2, 1 << 30])
def test_abi_metadata_out_of_range(abi, kind, index):
    so, _ = abi
    get = lambda fn: getattr(so, f"qc_{kind}_{fn}")(index)  # noqa: E731
    assert get("name") is None
    assert not get("shape")  # a NULL pointer
    assert get("rank") == -1
    assert get("bytes") == -1
    assert get("dtype") == 0


def test_threads_share_one_model(tmp_path):
    # ctypes releases the GIL during qc_run; calls from several threads must
    # not see each other's buffers (a 256 KiB tensor keeps each run long enough to overlap).
    import threading

    node = helper.make_node("Relu", ["x"], ["y"])
    lib = qc.compile(make_model([node], {"x": (F32, (64, 1024))}, {"y": (F32, (64, 1024))}), tmp_path / "r.so")
    wrong = []
    with qc.load(lib) as m:
        def worker(v):
            x = np.full((64, 1024), v, F32)
            for _ in range(100):
                if not np.all(m(x)["y"] == v):
                    wrong.append(v)
                    return

        threads = [threading.Thread(target=worker, args=(float(v),)) for v in range(1, 5)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert wrong == []


def test_reload_after_recompiling_to_the_same_path(tmp_path):
    """The dynamic loader caches libraries by path: a model compiled again to
    the same file must still load as the new model, not the old one."""
    lib = str(tmp_path / "same.so")
    models = [make_model([helper.make_node(op, ["x"], ["y"])], {"x": (np.float32, [3])}, {"y": (np.float32, [3])})
              for op in ("Neg", "Abs")]
    x = np.array([-1.0, 2.0, -3.0], np.float32)
    qc.compile(models[0], lib)
    first = qc.load(lib)
    qc.compile(models[1], lib)
    second = qc.load(lib)
    np.testing.assert_array_equal(first.run({"x": x})["y"], -x)
    np.testing.assert_array_equal(second.run({"x": x})["y"], np.abs(x))
