"""The 32-bit requantization (qmath.word_form) against the exact 64-bit
fixed-point formula, for every accumulator that matters, and the choice of
form in whole models."""

import re

import numpy as np
import pytest

from helpers import example_module as _example
from qc.frontends.onnx import qmath


def exact(acc: np.ndarray, m: int, r: int, o: int, lo: int, hi: int) -> np.ndarray:
    """clamp(round_half_even((acc * m + o) / 2^r), lo, hi), in Python ints."""
    out = []
    for a in acc.tolist():
        p = a * m + o
        q = (p + (1 << (r - 1)) - 1 + ((p >> r) & 1)) >> r
        out.append(min(max(q, lo), hi))
    return np.array(out, np.int64)


def word(acc: np.ndarray, form: qmath.WordForm, i: int, lo: int) -> np.ndarray:
    """The form as the generated code computes it: i32 clamp, wrapping i32
    multiply and add, logical shift."""
    a = np.clip(acc, form.alo.flat[i], form.ahi.flat[i]).astype(np.uint64)
    t = (a * np.uint64(form.m.flat[i] % 2**32) + np.uint64(form.c.flat[i])) % np.uint64(2**32)
    return (t >> np.uint64(form.shift)).astype(np.int64) + lo


def distance_to_tie(acc: np.ndarray, m: int, r: int, o: int) -> np.ndarray:
    """How far (a + k) * M + offset, in output steps, lies from the nearest half."""
    frac = np.array([(((a * m + o) % (1 << r)) / 2.0 ** r) for a in acc.tolist()])
    return np.abs(frac - 0.5)


CASES = [  # (M, offset in steps, lo, hi, k, bound)
    (0.005, 0.0, -138, 117, -17180, 17580),
    (0.0011, 3.7, -128, 127, 0, None),
    (0.0123, -40.2, 0, 255, 993, 258310),
    (0.37, 0.0, -5, 60, -300, None),  # a clamp narrower than 256 (Relu6-like)
    (0.004, 12.3, -128, 127, 4000, 2_000_000),
    (2.0**-9, 0.3, -100, 155, 0, None),  # a dyadic M, but the offset keeps every value off a half
]


@pytest.mark.parametrize("case", CASES, ids=[f"M{c[0]:g}" for c in CASES])
def test_word_form_matches_exact(case):
    mult, offset, lo, hi, k, bound = case
    (fp,) = qmath.fixed_point(None, [np.array([mult])], offset=np.array([offset]))
    o = qmath.offset_fixed(np.array([offset]), fp.r)
    form = qmath.word_form(fp, o, np.array([lo]), np.array([hi]), np.array([k]), bound)
    assert form is not None
    assert form.error <= qmath.WORD_ERROR
    m, r, o = int(fp.m[0]), int(fp.r[0]), int(o[0])
    # Every raw accumulator from well below the low end to well above the high end.
    span = int(np.ceil((hi - lo + 4) / mult))
    centre = int(round(-offset / mult)) - k
    acc = np.arange(centre - span, centre + span + 1, dtype=np.int64)
    if bound is not None:
        acc = acc[np.abs(acc + k) <= bound]
    acc = np.concatenate([acc, np.array([-2**31 - min(k, 0), 2**31 - 1 - max(k, 0)])])
    if bound is not None:
        acc = acc[np.abs(acc + k) <= bound]
    want = exact(acc + k, m, r, o, lo, hi)
    got = word(acc, form, 0, lo)
    diff = got - want
    assert np.all(np.abs(diff) <= 1)
    # A result may move only where the exact value lies within the form's error of a half.
    near = distance_to_tie(acc + k, m, r, o) <= form.error
    assert np.all(diff[~near] == 0), acc[(diff != 0) & ~near][:10]
    # The clamped ends are exact: every saturated result stays saturated.
    assert np.all(got[want == lo] == lo) and np.all(got[want == hi] == hi)
    assert got.min() >= lo and got.max() <= hi


def test_word_form_per_channel_shares_one_shift():
    """Channels of different multipliers get one shift, the largest that
    keeps every channel's products below 2^32; each channel still matches."""
    mults = np.array([0.005, 0.008, 0.03, 0.004])
    offsets = np.array([1.3, -2.0, 0.27, 0.0])
    fp = qmath.fixed_point(None, [mults], offset=offsets)[0]
    o = qmath.offset_fixed(offsets, fp.r)
    lo, hi = np.full(4, -128), np.full(4, 127)
    k = np.array([10, -20, 30, 0])
    form = qmath.word_form(fp, o, lo, hi, k, None)
    assert form is not None and form.shift >= 20
    for i in range(4):
        m, r, oi = int(fp.m[i]), int(fp.r[i]), int(o[i])
        acc = np.arange(int(-140 / mults[i]), int(140 / mults[i]), dtype=np.int64) - k[i]
        diff = word(acc, form, i, -128) - exact(acc + k[i], m, r, oi, -128, 127)
        assert np.all(np.abs(diff) <= 1)
        near = distance_to_tie(acc + k[i], m, r, oi) <= form.error
        assert np.all(diff[~near] == 0)


@pytest.mark.parametrize("mult,offset", [(1e-6, 0.0), (8e-4, 0.0), (0.75, 0.0), (0.25, 0.0), (2.0**-9, 0.0),
                                         (0.0123, 1.5)])
def test_word_form_declines(mult, offset):
    """No form (the exact one is used) where the multiplier is so small that
    32 bits cannot hold the range at 1/256 of a step (8e-4: 1/233), where M >= 1/2, or where
    an accumulator in the range lands exactly on a half (0.25: acc = 2;
    2^-9: acc = 256; offset 1.5: acc = 0): a tie must round to even, which
    the form's floor does not."""
    (fp,) = qmath.fixed_point(None, [np.array([mult])], offset=np.array([offset]))
    o = qmath.offset_fixed(np.array([offset]), fp.r)
    assert qmath.word_form(fp, o, np.array([-128]), np.array([127]), np.zeros(1, np.int64), None) is None


def test_models_choose_the_form(tmp_path):
    """The MobileNet block quantized after onnxruntime's pre-processing (one
    requantization per layer) takes the 32-bit form in its expand and
    depthwise convs (the project conv's multiplier is too small for 1/256 of
    a step: the exact product, two sign extensions); the
    one quantized with its BatchNormalizations (a second stage that scales
    the first's steps by more than one) keeps an exact 64-bit product (the
    shifted-origin form, test_requant_origin); so does exact_requant=True
    (--exact-requant) everywhere."""
    import onnx

    from qc.session import compile_model

    make, quant = _example("make_models"), _example("quantize_cnn")
    model, _ = make.mobilenet_block(np.random.default_rng(0), c=8, e=24, hw=19)
    path = tmp_path / "mb.onnx"
    onnx.save(model, path)
    pre = quant.quantize(str(path), str(tmp_path / "pre.onnx"), preprocess=True)
    qdq = quant.quantize(str(path), str(tmp_path / "qdq.onnx"))

    word = re.compile(r"arith\.minsi %\S+, %\S+ : i32\n\s+%\S+ = arith\.muli %\S+, %\S+ : i32\n"
                      r"\s+%\S+ = arith\.addi %\S+, %\S+ : i32\n\s+%\S+ = arith\.shr[su]i %\S+, %c\d+_i32\w* : i32")

    def count(p, **kw):
        """(sign extensions of an i32 to i64, 32-bit forms: clamp, multiply, add and shift in i32)."""
        text = compile_model(p, emit="input", **kw).text
        return text.count(": i32 to i64"), len(word.findall(text))

    assert count(pre) == (2, 2)
    wide, narrow = count(qdq)
    assert narrow == 0 and wide >= 6  # two per exact product
    wide, narrow = count(pre, exact_requant=True)
    assert narrow == 0 and wide >= 6


def test_resnet_block_after_pre_processing_within_one_step(tmp_path):
    """The ResNet basic block quantized after quant_pre_process: its second
    conv's output (scale 0.060) is read by the residual Add at 1.8 output
    steps (0.034) per step, so that requantization keeps the exact product
    (qmath.amplifying_reads), and the first conv's 32-bit form would have
    to stay within 1/256 of a step. With 1/64 and no such rule, 0.13% of
    the outputs were 2 steps from the ONNX-semantics reference."""
    import onnx

    import qc

    make, quant = _example("make_models"), _example("quantize_cnn")
    model, _ = make.resnet_block(np.random.default_rng(0))
    path = tmp_path / "rb.onnx"
    onnx.save(model, path)
    pre = quant.quantize(str(path), str(tmp_path / "pre.onnx"), preprocess=True)
    (add,) = [n for n in pre.graph.node if n.op_type == "Add"]
    x = np.random.default_rng(1).standard_normal((1, 64, 56, 56)).astype(np.float32)
    lib = str(tmp_path / "rb.so")
    qc.compile(pre, lib)
    with qc.load(lib) as m:
        got = m.run({"x": x})["y"]
    want = quant.reference(pre, {"x": x})["y"]
    steps = np.rint(np.abs(got - want) / quant.output_step(pre, "y")).astype(np.int64)
    assert add.input[0].startswith("b1") and np.mean(steps <= 1) >= 0.9999, np.bincount(steps.ravel())
