"""The two-stage requantization through a shifted origin (requant_origin)
against the exact 64-bit fixed-point formula and its table, for every
accumulator the weights can reach, and the form models get."""

import itertools
import re

import numpy as np
import pytest

from helpers import example_module as _example
from qc.frontends.onnx import qmath, requant_origin, table_fit


def exact(a: np.ndarray, m: int, r: int, o: int, lo: int, hi: int) -> np.ndarray:
    """clamp(round_half_even((a * m + o) / 2^r), lo, hi) (int64: |a| < 2^31,
    m < 2^31, |o| and 2^(r-1) <= 2^61 keep every sum below 2^63)."""
    p = a * np.int64(m) + np.int64(o)
    q = (p + np.int64((1 << (r - 1)) - 1) + ((p >> np.int64(r)) & 1)) >> np.int64(r)
    return np.clip(q, lo, hi)


def table(q: np.ndarray, fit: table_fit.TableFit, c: int) -> np.ndarray:
    return np.clip((int(fit.a[c]) * q + int(fit.b[c])) >> fit.shift, int(fit.lo[c]), int(fit.hi[c]))


def emulate(a: np.ndarray, form: requant_origin.OriginForm, c: int, lo: int, hi: int, fit, zy: int) -> np.ndarray:
    """What the generated code computes: the i32 sum a + d (a already holds
    k here), the high word of the product shifted by s, q's clamp (if kept),
    then the table's i32 multiply-add with e * A taken out of B, wrapping."""
    d, m, s, e = (int(v.flat[c]) for v in (form.d, form.m, form.s, form.e))
    x = a + d
    assert x.min() >= -2**31 and x.max() < 2**31  # the i32 addition never wraps
    q = (x * m) >> (32 + s)
    if form.clamp:
        q = np.clip(q, lo + e, hi + e)
    ta = int(fit.a[c])
    tb = ((int(fit.b[c]) + ta * zy - e * ta + 2**31) % 2**32) - 2**31
    t = (q * ta + tb + 2**31) % 2**32 - 2**31
    return np.clip(t >> fit.shift, int(fit.lo[c]), int(fit.hi[c]))


def bn_case(rng, channels: int, slope: tuple, mult: tuple, bound: int, zy: int = -128):
    """A conv's requantization and a BatchNormalization table after it, per channel."""
    mults = rng.uniform(*mult, channels)
    offsets = rng.uniform(-40, 40, channels)
    qmin = -128
    qs = np.arange(qmin, qmin + 256)
    rows = []
    while len(rows) < channels:
        g = rng.uniform(*slope) * rng.choice([1, -1])
        row = np.clip(np.rint(g * (qs - rng.uniform(-40, 40)) + rng.uniform(-20, 20)), -128, 127).astype(np.int64)
        if table_fit.fit(row, qmin) is not None:  # an affine table, as a BatchNormalization's is
            rows.append(row)
    fit = table_fit.fit(np.array(rows, np.int64), qmin)
    assert fit is not None
    return mults, offsets, fit, bound


CASES = {
    # slopes like a MobileNet block's BatchNormalizations: every step of q moves the output by 2-5
    "expand": dict(channels=12, slope=(2.0, 3.5), mult=(0.0016, 0.0042), bound=258310),
    "depthwise": dict(channels=12, slope=(2.8, 4.8), mult=(0.0008, 0.003), bound=193545),
    # slope near one: ~250 steps in the window, the line needs a shift (R > 32)
    "project": dict(channels=8, slope=(0.8, 1.22), mult=(0.0009, 0.0017), bound=1111545),
    "flat": dict(channels=6, slope=(0.0, 0.02), mult=(0.001, 0.01), bound=100000),  # T constant or one step
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_origin_form_is_exact_on_every_accumulator(name):
    rng = np.random.default_rng(sorted(CASES).index(name))
    mults, offsets, fit, bound = bn_case(rng, **CASES[name])
    zy, lo, hi = -128, -128 + 128, 127 + 128  # q without its zero point
    (fp,) = qmath.fixed_point(None, [mults], offset=offsets)
    o = qmath.offset_fixed(offsets, fp.r)
    k = rng.integers(-60000, 60000, mults.size)
    tb = fit.b.astype(np.int64) + fit.a.astype(np.int64) * zy
    form = requant_origin.origin_form(fp.m, fp.r, o, lo, hi, fit.a, tb, fit.shift, fit.lo, fit.hi, k, bound)
    assert form is not None
    a = np.arange(-bound, bound + 1, dtype=np.int64)
    for c in range(mults.size):
        want = table(exact(a, int(fp.m[c]), int(fp.r[c]), int(o[c]), lo, hi) + zy, fit, c)
        got = emulate(a, form, c, lo, hi, fit, zy)
        bad = np.nonzero(got != want)[0]
        assert bad.size == 0, (c, a[bad[:5]], got[bad[:5]], want[bad[:5]])
    if name in ("expand", "depthwise"):
        assert not np.any(form.s)  # the high word is q + e: no shift at all


def test_origin_form_needs_a_bound():
    """Nothing bounds the accumulator (a run-time bias): a + d could wrap, no form."""
    rng = np.random.default_rng(0)
    mults, offsets, fit, _ = bn_case(rng, **CASES["expand"])
    (fp,) = qmath.fixed_point(None, [mults], offset=offsets)
    o = qmath.offset_fixed(offsets, fp.r)
    tb = fit.b.astype(np.int64) - fit.a.astype(np.int64) * 128
    assert requant_origin.origin_form(fp.m, fp.r, o, 0, 255, fit.a, tb, fit.shift, fit.lo, fit.hi, 0, None) is None


def test_first_multiple_against_brute_force():
    rng = np.random.default_rng(3)
    for _ in range(300):
        mod = int(rng.integers(2, 400))
        a, lo = int(rng.integers(0, 3 * mod)), int(rng.integers(0, mod))
        hi = int(rng.integers(lo, mod))
        want = next((x for x in range(2 * mod) if lo <= (a * x) % mod <= hi), None)
        assert requant_origin._first_multiple(a, mod, lo, hi) == want, (a, mod, lo, hi)


def _quantized_block(tmp_path, hw: int, c: int = 8, e: int = 24) -> str:
    """The example MobileNet block (c channels, expanded to e, hw x hw)
    quantized by onnxruntime's quantize_static with its BatchNormalizations:
    the path of the QDQ model."""
    import onnx

    make, quant = _example("make_models"), _example("quantize_cnn")
    model, _ = make.mobilenet_block(np.random.default_rng(0), c=c, e=e, hw=hw)
    path = tmp_path / "mb.onnx"
    onnx.save(model, path)
    return quant.quantize(str(path), str(tmp_path / "qdq.onnx"))


@pytest.mark.parametrize("hw", [19, 7])
def test_models_take_the_origin_form(tmp_path, monkeypatch, hw):
    """The MobileNet block quantized with its BatchNormalizations: all three
    layers requantize without an i64 addition (no rounding constant), and the
    compiled block gives the same bits as with the exact 64-bit form (rows of
    19 and of 7 outputs: the depthwise requantization's steps of 16 and of 4,
    the last overlapping the one before)."""
    import qc
    from qc.session import compile_model

    qdq = _quantized_block(tmp_path, hw)
    text = compile_model(qdq, emit="input", target="x86-64-v3").text
    assert len(re.findall(r"arith\.muli %\S+, %\S+ : i64", text)) == 3
    assert not re.findall(r"arith\.addi %\S+, %\S+ : i64", text)
    out = {}
    for name in ("origin", "exact"):
        if name == "exact":  # the 64-bit form with its rounding constant
            monkeypatch.setattr(qmath, "_requant_origin", lambda *args, **kw: None)
        qc.compile(qdq, str(tmp_path / f"{name}.so"), target="x86-64-v3")
        out[name] = qc.load(str(tmp_path / f"{name}.so"))
    rng = np.random.default_rng(1)
    for scale in (1.0, 4.0):
        x = (rng.standard_normal((1, 8, hw, hw)) * scale).astype(np.float32)
        a, b = (list(m.run({"x": x}).values())[0] for m in out.values())
        assert np.array_equal(a, b)


def test_vbmi_kernels_fold_the_origin_form(tmp_path, monkeypatch):
    """With AVX-512 VNNI and VBMI (no AMX: fold_wide off) the origin form is
    taken too, and the depthwise byte-quad kernel runs it on each step's sums
    and writes int8: no requantization loop is left in the block. Each
    channel's sums start from the origin's addition, so a step adds one
    constant (the second stage's), not two. The host build gives the same
    bits as with the exact 64-bit form."""
    import qc
    from qc.session import compile_model

    vnni_vbmi = "x86_64-unknown-linux-gnu:x86-64-v4:+avx512vnni,+avx512vbmi"
    qdq = _quantized_block(tmp_path, 19)
    text = compile_model(qdq, emit="input", target=vnni_vbmi).text
    assert len(re.findall(r"arith\.muli %\S+, %\S+ : i64", text)) == 3
    assert not re.findall(r"arith\.addi %\S+, %\S+ : i64", text)
    gemm = compile_model(qdq, emit="gemm", target=vnni_vbmi).text
    assert re.search(r"call @qc_qdepthwise_\d+\(.*xi8>\) -> \(\)", gemm)
    assert "call @qc_dot4_us_" in gemm and "call @qc_requant_" not in gemm
    asm = compile_model(qdq, emit="asm", target=vnni_vbmi).text
    dw = asm[asm.index("qc_qdepthwise_0:"):]
    dw = dw[:dw.index(".Lfunc_end")]
    stores = len(re.findall(r"vpmovs?db\s", dw))  # narrowed with saturation or after a clamp
    assert stores >= 8 and len(re.findall(r"vpmuldq\s", dw)) == 2 * stores
    assert len(re.findall(r"vpaddd\s", dw)) == stores, dw
    out = {}
    for name in ("origin", "exact"):
        if name == "exact":
            monkeypatch.setattr(qmath, "_requant_origin", lambda *args, **kw: None)
        qc.compile(qdq, str(tmp_path / f"{name}.so"))
        out[name] = qc.load(str(tmp_path / f"{name}.so"))
    x = np.random.default_rng(2).standard_normal((1, 8, 19, 19)).astype(np.float32)
    a, b = (list(m.run({"x": x}).values())[0] for m in out.values())
    assert np.array_equal(a, b)


def test_kernels_start_sums_at_the_origin(tmp_path):
    """The origin's addition runs once per row, not per vector of sums: the
    int8 GEMM kernels of the BatchNormalization-form MobileNet block start
    their accumulators from the row's broadcast constant (not zeros), and
    the depthwise kernel starts each channel's sums from it, so its
    requantization loop multiplies the sums as they lie in the buffer, even
    lanes and (a load one element on) odd lanes: every vpmuldq there reads
    memory, and the loop adds no constant to a sum before multiplying. The
    high words are merged by vshufps, not a vpshufd and a vpblendd: their
    order is undone by the byte shuffle that interleaves the parities."""
    from qc.session import compile_model

    qdq = _quantized_block(tmp_path, 19)
    gemm = compile_model(qdq, emit="gemm", target="x86-64-v3").text
    kernels = re.findall(r"func\.func @qc_par_qgemm_\w+_rq\w+_range\(.*?\n  }", gemm, re.S)
    assert len(kernels) == 2  # expand and project
    for body in kernels:
        inits = re.findall(r"iter_args\((.*?)\)", body)
        assert inits
        for init in inits:
            for v in set(re.findall(r"= (%\w+)", init)):
                assert re.search(rf"{v} = vector\.broadcast %\w+ : i32 to vector<8xi32>", body), (v, init)
    asm = compile_model(qdq, emit="asm", target="x86-64-v3").text
    dw = asm[asm.index("qc_qdepthwise_0:"):]
    dw = dw[:dw.index(".Lfunc_end")]
    muls = re.findall(r"vpmuldq\s+(\S+),", dw)
    assert len(muls) >= 4 and all("(" in m for m in muls), muls
    assert len(re.findall(r"vshufps\s", dw)) == len(muls) // 2
    assert not re.findall(r"vpblendd|vpshufd", dw)


def test_tile_unit_starts_from_the_origin(tmp_path):
    """With AMX-INT8, the tile unit's sums start from each row's start (the
    origin's addition plus A's correction), loaded as a tile in place of
    zeros; the sums it stores are then what the high word multiplies, so
    its odd lanes are a load one element on: the requantization adds no
    constant before the multiply and moves no lanes (no vpshufd). A block
    of 32 channels expanded to 64 (whole 32-row tiles)."""
    from qc.session import compile_model

    qdq = _quantized_block(tmp_path, 19, c=32, e=64)
    asm = compile_model(qdq, emit="asm", target="x86-64-v4-amx").text
    kernels = re.findall(r"^(qc_par_qgemm_\w+_amx_\w+_rq\w+_range):\n(.*?)^\.Lfunc_end", asm, re.S | re.M)
    assert len(kernels) == 2, [k for k, _ in kernels]  # expand and project
    for name, body in kernels:
        assert "tilezero" not in body and "tdpbsud" in body, name
        assert "vpshufd" not in body, name
        muls = re.findall(r"vpmuldq\s+(\S+),", body)  # the odd lanes at least read memory
        assert muls and sum("(" in m for m in muls) >= len(muls) // 2, (name, muls)


def test_every_channel_sign_and_zero_point():
    """Negative BatchNormalization scales (the table falls with q) and
    uint8 outputs (zero point 0, q in [0, 255])."""
    rng = np.random.default_rng(7)
    for zy, sign in itertools.product((0, -128), (1, -1)):
        mults = rng.uniform(0.001, 0.004, 4)
        offsets = rng.uniform(-20, 20, 4)
        qs = np.arange(-128, 128) if zy == -128 else np.arange(0, 256)
        lo_out = -128 if zy == -128 else 0
        mid = int(qs[128]) + 10  # the table's middle, where it crosses the output's
        rows = np.array([np.clip(np.rint(sign * g * (qs - mid) + lo_out + 128.3), lo_out, lo_out + 255)
                         for g in (2.71828, 3.14159, 1.41421, 4.47214)], np.int64)
        fit = table_fit.fit(rows, int(qs[0]))
        assert fit is not None
        (fp,) = qmath.fixed_point(None, [mults], offset=offsets)
        o = qmath.offset_fixed(offsets, fp.r)
        lo, hi = int(qs[0]) - zy, int(qs[-1]) - zy
        tb = fit.b.astype(np.int64) + fit.a.astype(np.int64) * zy
        bound = 150000
        form = requant_origin.origin_form(fp.m, fp.r, o, lo, hi, fit.a, tb, fit.shift, fit.lo, fit.hi, 0, bound)
        assert form is not None
        a = np.arange(-bound, bound + 1, dtype=np.int64)
        for c in range(4):
            want = table(exact(a, int(fp.m[c]), int(fp.r[c]), int(o[c]), lo, hi) + zy, fit, c)
            assert np.array_equal(emulate(a, form, c, lo, hi, fit, zy), want)
