"""Property-based tests of the runtime wrapper's input handling (hypothesis).

One compiled model (float32 matrix and scalar inputs, an int64 vector input)
gets random calls: shapes of rank 0-5 with zero-sized and huge dims, every
numpy dtype kind, strided / reversed / misaligned / byte-swapped / read-only /
broadcast views, Python and numpy scalars, nested lists (ragged ones too),
missing and extra names, by mapping, keywords or position. Each call must
either return what onnxruntime returns for the same feeds after the
conversions documented in runtime/model.py, or raise InputError naming the
input; never another exception or a warning, never a crash. The oracle below
restates those conversions independently of the wrapper's code.
"""

from __future__ import annotations

import warnings

import hypothesis.extra.numpy as hnp
import numpy as np
import pytest
from helpers import make_model
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from onnx import helper

import qc
from qc.runtime import InputError, TensorInfo

F32, I64 = np.float32, np.int64
# No zero in W: an infinite x times W stays infinite (inf * 0 would be NaN in
# both engines anyway, but this keeps infinities in the outputs to compare).
W = ((np.arange(12) - 5.5) / 4).astype(F32).reshape(3, 4)
B = np.array([0.5, -1.0, 0.0, 2.0], F32)
INPUTS = [TensorInfo("x", np.dtype(F32), (2, 3)),  # a GEMM operand
          TensorInfo("s", np.dtype(F32), ()),  # rank 0: a Python float is a valid value
          TensorInfo("n", np.dtype(I64), (4,))]  # integers: range checks, no floats
NAMES = [t.name for t in INPUTS]

# Every kind numpy has: bool, signed, unsigned, float, complex, object,
# unicode, bytes, datetime, timedelta, void (raw and structured).
ALL_DTYPES = [np.dtype(d) for d in (
    "?", "i1", "u1", "i2", "u2", "i4", "u4", "i8", "u8", "f2", "f4", "f8", "c8", "c16", "O", "U3", "S3",
    "M8[s]", "m8[s]", "V4")] + [np.dtype([("a", "<f4")]), np.dtype(">f4"), np.dtype(">i8"), np.dtype(">f8")]


def property_model():
    """y = (x @ W) * s + B and m = n * 3 - 7."""
    nodes = [helper.make_node("MatMul", ["x", "w"], ["xw"]), helper.make_node("Mul", ["xw", "s"], ["xws"]),
             helper.make_node("Add", ["xws", "b"], ["y"]),
             helper.make_node("Mul", ["n", "three"], ["n3"]), helper.make_node("Sub", ["n3", "seven"], ["m"])]
    return make_model(nodes, {t.name: (t.dtype, t.shape) for t in INPUTS},
                      {"y": (F32, (2, 4)), "m": (I64, (4,))},
                      {"w": W, "b": B, "three": np.array(3, I64), "seven": np.array(7, I64)})


@pytest.fixture(scope="module")
def engines(tmp_path_factory):
    """The model compiled once for the module, loaded, and onnxruntime's session for it."""
    import onnxruntime as ort

    model = property_model()
    lib = qc.compile(model, tmp_path_factory.mktemp("prop") / "prop.so")
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    sess = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    with qc.load(lib) as m:
        assert m.inputs == INPUTS
        yield m, sess


# --- the oracle: the documented conversions --------------------------------------

def expected_feed(info: TensorInfo, value) -> np.ndarray | None:
    """The array the model must see for `value`, or None if it must be rejected.

    An ndarray: the input's dtype in either byte order and its exact shape,
    any strides. Anything else (scalars, lists): as numpy reads it, if its
    kind fits (bool/int/float for a float input, bool/int for an int input),
    integers in range, and no finite value overflowing to infinity."""
    if isinstance(value, np.ndarray):
        if value.dtype.newbyteorder("=") != info.dtype or value.shape != info.shape:
            return None
        return np.ascontiguousarray(value, dtype=info.dtype)
    try:
        arr = np.asarray(value)
    except ValueError:  # ragged lists
        return None
    kinds = "biuf" if info.dtype.kind == "f" else "biu"
    if arr.dtype.kind not in kinds or arr.shape != info.shape:
        return None
    if info.dtype.kind == "i" and arr.size and (int(arr.min()) < np.iinfo(info.dtype).min
                                                or int(arr.max()) > np.iinfo(info.dtype).max):
        return None
    with np.errstate(over="ignore"):
        out = arr.astype(info.dtype)
    if info.dtype.kind == "f" and np.any(np.isinf(out) & np.isfinite(arr)):
        return None
    return out


def expected_outcome(feeds: dict):
    """("ok", feeds for onnxruntime), ("names", names the message must quote),
    or ("value", the input the message must name first)."""
    missing = [n for n in NAMES if n not in feeds]
    unknown = [k for k in feeds if k not in NAMES]
    if missing or unknown:
        return "names", missing + unknown
    converted = {}
    for info in INPUTS:
        arr = expected_feed(info, feeds[info.name])
        if arr is None:
            return "value", info.name
        converted[info.name] = arr
    return "ok", converted


# --- strategies --------------------------------------------------------------------

# Finite values are bounded (2**100) so that x @ W cannot overflow: where it overflows
# depends on the order of the sum, which differs between the two engines.
FLOATS = st.one_of(st.floats(-2.0**100, 2.0**100, width=32), st.sampled_from([np.nan, np.inf, -np.inf, -0.0]))
INTS = st.integers(-2**63, 2**63 - 1)


def good_array(info: TensorInfo):
    return hnp.arrays(info.dtype, info.shape, elements=FLOATS if info.dtype.kind == "f" else INTS)


def _misaligned(a: np.ndarray) -> np.ndarray:
    raw = np.zeros(a.nbytes + 1, np.uint8)
    v = raw[1:].view(a.dtype).reshape(a.shape)  # one byte off the element boundary
    v[...] = a
    return v


def _readonly(a: np.ndarray) -> np.ndarray:
    a = a.copy()
    a.flags.writeable = False
    return a


VIEWS = {
    "plain": lambda a: a,
    "swapped": lambda a: a.astype(a.dtype.newbyteorder()),  # same values, other byte order
    "fortran": np.asfortranarray,
    "strided": lambda a: np.repeat(a, 2, axis=-1)[..., ::2] if a.ndim else a,
    "reversed": lambda a: a[::-1].copy()[::-1] if a.ndim else a,  # negative strides
    "swapped-reversed": lambda a: a.astype(a.dtype.newbyteorder())[::-1].copy()[::-1] if a.ndim else a,
    "transposed": lambda a: a.T.copy().T,
    "misaligned": _misaligned,
    "readonly": _readonly,
    "broadcast": lambda a: np.broadcast_to(a.reshape(-1)[:1].reshape((1,) * a.ndim), a.shape),  # zero strides
}


@st.composite
def array_views(draw, info: TensorInfo):
    """A valid value: the right dtype and shape, in some memory layout."""
    return VIEWS[draw(st.sampled_from(sorted(VIEWS)))](draw(good_array(info)))


SHAPES = hnp.array_shapes(min_dims=0, max_dims=5, min_side=0, max_side=4)


@st.composite
def wrong_arrays(draw, info: TensorInfo):
    """Another dtype (any kind), another shape (zero-sized dims too), or a huge
    shape (a zero-stride view: no memory behind it)."""
    case = draw(st.sampled_from(["dtype", "shape", "huge"]))
    dtype = info.dtype
    if case == "dtype" or draw(st.booleans()):
        dtype = draw(st.sampled_from(ALL_DTYPES))
    if case == "huge":
        dims = list(draw(hnp.array_shapes(min_dims=1, max_dims=5, min_side=0, max_side=3)))
        dims[draw(st.integers(0, len(dims) - 1))] = draw(st.sampled_from([2**31 + 1, 2**40, 2**62 // 81]))
        return np.broadcast_to(np.zeros((), dtype), tuple(dims))
    shape = info.shape if case == "dtype" else draw(SHAPES)
    return np.zeros(shape, dtype)


SCALARS = st.one_of(
    st.floats(), st.integers(-2**70, 2**70), st.booleans(), st.complex_numbers(max_magnitude=10),
    st.text(max_size=2), st.binary(max_size=2), st.none(),
    st.builds(lambda d, v: np.dtype(d).type(v), st.sampled_from(["?", "i1", "u2", "i8", "u8", "f2", "f4", "f8"]),
              st.integers(0, 100)),  # numpy scalars
)


@st.composite
def nested_lists(draw, info: TensorInfo, valid: bool = False):
    """A valid array as nested Python lists; unless `valid`, sometimes one
    leaf replaced by another scalar (a float among ints, a string, None, a
    huge int), or made ragged."""
    value = draw(good_array(info)).tolist()
    how = "as is" if valid else draw(st.sampled_from(["as is", "leaf", "ragged"]))
    if not isinstance(value, list) or how == "as is":
        return value
    inner = value
    while isinstance(inner[0], list):
        inner = inner[0]
    if how == "leaf":
        inner[draw(st.integers(0, len(inner) - 1))] = draw(SCALARS)
    elif len(value) > 1 and isinstance(value[0], list):
        value[0] = value[0][:-1]  # one row shorter than the others
    else:
        value.append(draw(st.lists(FLOATS, max_size=2)))  # a list among numbers
    return value


def valid_values(info: TensorInfo):
    return st.one_of(array_views(info), nested_lists(info, valid=True))


def any_values(info: TensorInfo):
    return st.one_of(array_views(info), nested_lists(info), SCALARS, wrong_arrays(info))


EXTRA_NAMES = st.one_of(st.sampled_from(["self", "X", "x ", "", "feeds", "args"]), st.text(max_size=4))


@st.composite
def calls(draw):
    """(how the model is called, feeds by name). Half the calls are valid,
    the rest have one input drawn from anything, all of them, or names
    missing or extra."""
    plan = draw(st.sampled_from(["valid", "valid", "one", "all", "names"]))
    odd = draw(st.sampled_from(NAMES))
    feeds = {info.name: draw(any_values(info) if plan == "all" or (plan == "one" and info.name == odd)
                             else valid_values(info)) for info in INPUTS}
    if plan == "names":
        if draw(st.booleans()):
            del feeds[odd]
        if draw(st.booleans()) or len(feeds) == len(NAMES):
            feeds[draw(EXTRA_NAMES)] = np.zeros(1, F32)
    mode = draw(st.sampled_from(["run", "keywords", "positional"]))
    if mode == "positional" and list(feeds) != NAMES:
        mode = "keywords"
    return mode, feeds


# --- the property ------------------------------------------------------------------

def call(model, mode: str, feeds: dict) -> dict:
    if mode == "run":
        return model.run(feeds)
    if mode == "keywords":
        return model(**feeds)
    return model(*feeds.values())


def assert_same_outputs(got: dict, want: dict, feeds: dict) -> None:
    assert set(got) == {"y", "m"}
    np.testing.assert_array_equal(got["m"], want["m"])
    assert got["y"].dtype == F32 and got["y"].shape == (2, 4)
    y, ref = got["y"], want["y"]
    # NaN and infinities at the same places, with the same signs.
    for where in (np.isnan, np.isposinf, np.isneginf):
        np.testing.assert_array_equal(where(y), where(ref))
    # Finite values: the GEMM rounding bound, |x| @ |W| * |s| + |B| times a few ulps.
    x, s = (np.nan_to_num(feeds[k].astype(np.float64), posinf=0, neginf=0) for k in ("x", "s"))
    bound = 1e-5 * (np.abs(x) @ np.abs(W.astype(np.float64)) * abs(s) + np.abs(B)) + 1e-37
    fin = np.isfinite(ref)
    assert np.all(np.abs(y[fin].astype(np.float64) - ref[fin]) <= bound[fin]), (y, ref)


SETTINGS = settings(max_examples=400, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@SETTINGS
@given(calls())
def test_any_call_returns_ort_outputs_or_names_the_input(engines, case):
    model, sess = engines
    mode, feeds = case
    outcome, detail = expected_outcome(feeds)
    event(f"{outcome}, by {mode}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # a warning from the wrapper is a failure too
            got = call(model, mode, feeds)
    except InputError as e:
        msg = str(e)
        assert outcome != "ok", f"valid feeds rejected: {msg}"
        if outcome == "names":
            assert all(repr(n) in msg for n in detail), msg
        else:
            assert msg.startswith(f"input '{detail}': "), msg
        return
    assert outcome == "ok", f"accepted, but input {detail!r} should be rejected"
    want = dict(zip([o.name for o in sess.get_outputs()], sess.run(None, detail)))
    assert_same_outputs(got, want, detail)


# --- a few fixed cases the strategies above reach only by chance -------------------------

@pytest.mark.parametrize("value,ok", [
    (3.0, True), (True, True), (np.float16(2), True), (2**24 + 1, True),  # ints round to float32: same kind
    (1e300, False), (-1e39, False), (1j, False), ("3", False), (None, False), ([3.0], False),
    (float("nan"), True), (float("-inf"), True),
])
def test_scalar_input(engines, value, ok):
    model, sess = engines
    feeds = {"x": np.ones((2, 3), F32), "s": value, "n": np.arange(4)}
    if ok:
        want = dict(zip(["y", "m"], sess.run(None, {**feeds, "s": np.asarray(value, F32)})))
        assert_same_outputs(model(**feeds), want, {**feeds, "s": np.asarray(value, F32)})
    else:
        with pytest.raises(InputError, match=r"^input 's': "):
            model(**feeds)


def test_an_input_named_self_by_keyword(engines):
    # Model.__call__ takes its own `self` positionally only: a keyword `self`
    # is an (unknown) input name, not a clash with the method's parameter.
    model, _ = engines
    with pytest.raises(InputError, match=r"unknown input\(s\) 'self'"):
        model(x=np.ones((2, 3), F32), s=1.0, n=np.arange(4), self=np.ones(1))


def test_huge_swapped_array_is_rejected_before_any_copy(engines):
    # The byte order is fixed by a copy, but only once the shape is right: a
    # 2**40-element view in the other byte order fails on its shape, with no
    # attempt to allocate 8 TiB.
    model, _ = engines
    huge = np.broadcast_to(np.zeros((), ">i8"), (2**40,))
    with pytest.raises(InputError, match=r"input 'n': expected shape \[4\], got \[1099511627776\]"):
        model(x=np.ones((2, 3), F32), s=1.0, n=huge)
