"""Bool tensors in memory, end to end, against onnxruntime.

A bool crosses memory as one byte per element, 0 or 1 (the ABI's bool, and
qc-bool-memory's lowering of memref<...xi1>): graph inputs and outputs,
constant initializers, and intermediate buffers between ops that are not
fused (Transpose, Reshape, Concat, Slice). Data inputs are graph inputs so
that each op goes through its importer rather than being constant-folded;
shapes, perms and slice bounds are initializers or attributes. Bools and the
float outputs they select are compared exactly.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
from helpers import check_against_ort, make_model
from onnx import helper

import qc
from qc.errors import PassFailed
from qc.mlir import ir, new_context
from qc.passes.bool_memory import BoolMemory

BOOL, F32, I64 = np.bool_, np.float32, np.int64


def bools(rng, shape):
    return rng.integers(0, 2, shape).astype(BOOL)


def node(op, inputs, outputs=("y",), **attrs):
    return helper.make_node(op, list(inputs), list(outputs), **attrs)


# --- graph inputs and outputs ----------------------------------------------------

NOT_SHAPES = [(),  # a 0-d buffer
              (7,),  # odd length: no vector-width multiple
              (3, 5, 2)]  # rank 3, each dim different


@pytest.mark.parametrize("shape", NOT_SHAPES, ids=str)
def test_not_io(shape, tmp_path):
    # bool input → Not → bool output: a byte in, a byte out.
    rng = np.random.default_rng(300)
    model = make_model([node("Not", ["p"])], {"p": (BOOL, shape)}, {"y": (BOOL, shape)})
    check_against_ort(model, {"p": bools(rng, shape)}, tmp_path)


@pytest.mark.parametrize("dtype", [F32, I64])
def test_greater_output(dtype, tmp_path):
    # A comparison's result is the graph output; b (3, 1) broadcasts against
    # a (2, 3, 5), and ties (a == b) must give false.
    rng = np.random.default_rng(301)
    a = rng.integers(-3, 4, (2, 3, 5)).astype(dtype)
    b = rng.integers(-3, 4, (3, 1)).astype(dtype)
    a[0, :, 0] = b[:, 0]
    model = make_model([node("Greater", ["a", "b"])], {"a": (dtype, a.shape), "b": (dtype, b.shape)},
                       {"y": (BOOL, (2, 3, 5))})
    check_against_ort(model, {"a": a, "b": b}, tmp_path)


def test_where_bool_input(tmp_path):
    # The condition is a graph input; cond (2, 1, 4), x (3, 4) and a scalar z
    # broadcast to (2, 3, 4).
    rng = np.random.default_rng(302)
    feeds = {"c": bools(rng, (2, 1, 4)), "x": rng.standard_normal((3, 4)).astype(F32),
             "z": np.array(-1.5, F32)}
    model = make_model([node("Where", ["c", "x", "z"])], {n: (v.dtype, v.shape) for n, v in feeds.items()},
                       {"y": (F32, (2, 3, 4))})
    check_against_ort(model, feeds, tmp_path)


CONSTANTS = {
    "mixed": np.array([[1, 0, 1, 1, 0], [0, 0, 1, 0, 1], [1, 1, 1, 0, 0]], BOOL),  # a non-splat global
    "all-true": np.ones((5,), BOOL),  # a splat, broadcast over the rows
}


@pytest.mark.parametrize("name", sorted(CONSTANTS))
def test_and_constant(name, tmp_path):
    # A bool initializer becomes a global of bytes; And reads it and p.
    rng = np.random.default_rng(303)
    p = bools(rng, (3, 5))
    model = make_model([node("And", ["p", "k"])], {"p": (BOOL, p.shape)}, {"y": (BOOL, p.shape)},
                       {"k": CONSTANTS[name]})
    check_against_ort(model, {"p": p}, tmp_path)


# --- data movement of bool tensors --------------------------------------------------

def test_transpose(tmp_path):
    # (2, 3, 5) with perm [2, 0, 1]: every stride changes.
    rng = np.random.default_rng(304)
    p = bools(rng, (2, 3, 5))
    model = make_model([node("Transpose", ["p"], perm=[2, 0, 1])], {"p": (BOOL, p.shape)},
                       {"y": (BOOL, (5, 2, 3))})
    check_against_ort(model, {"p": p}, tmp_path)


@pytest.mark.parametrize("src,dst", [((2, 6), (3, 4)),  # regroups dims: collapse then expand
                                     ((4, 3), (12,))],  # a pure collapse
                         ids=str)
def test_reshape(src, dst, tmp_path):
    rng = np.random.default_rng(305)
    p = bools(rng, src)
    model = make_model([node("Reshape", ["p", "s"])], {"p": (BOOL, src)}, {"y": (BOOL, dst)},
                       {"s": np.array(dst, I64)})
    check_against_ort(model, {"p": p}, tmp_path)


def test_concat(tmp_path):
    # Two bool inputs of different widths along axis 1, and a Greater result
    # (an intermediate bool buffer) along with them.
    rng = np.random.default_rng(306)
    feeds = {"p": bools(rng, (2, 3)), "q": bools(rng, (2, 4)),
             "a": rng.standard_normal((2, 1)).astype(F32), "b": rng.standard_normal((2, 1)).astype(F32)}
    nodes = [node("Greater", ["a", "b"], ["g"]), node("Concat", ["p", "g", "q"], axis=1)]
    model = make_model(nodes, {n: (v.dtype, v.shape) for n, v in feeds.items()}, {"y": (BOOL, (2, 8))})
    check_against_ort(model, feeds, tmp_path)


@pytest.mark.parametrize("starts,ends,steps,out", [
    ([1], [9], [3], (4, 3)),  # a strided subview: columns 1, 4, 7
    ([7], [0], [-2], (4, 4)),  # a negative step reverses: columns 7, 5, 3, 1
], ids=["step3", "step-2"])
def test_slice(starts, ends, steps, out, tmp_path):
    rng = np.random.default_rng(307)
    p = bools(rng, (4, 9))
    inits = {"st": np.array(starts, I64), "en": np.array(ends, I64), "ax": np.array([1], I64),
             "sp": np.array(steps, I64)}
    model = make_model([node("Slice", ["p", "st", "en", "ax", "sp"])], {"p": (BOOL, p.shape)},
                       {"y": (BOOL, out)}, inits)
    check_against_ort(model, {"p": p}, tmp_path)


def test_bool_buffer_between_ops(tmp_path):
    # Greater → Transpose → Reshape → Where: the mask is stored between the
    # ops as bytes (an allocated intermediate) and read back as a condition.
    rng = np.random.default_rng(308)
    feeds = {"a": rng.standard_normal((3, 4)).astype(F32), "b": rng.standard_normal((3, 4)).astype(F32),
             "x": rng.standard_normal((2, 6)).astype(F32)}
    nodes = [node("Greater", ["a", "b"], ["g"]), node("Transpose", ["g"], ["t"], perm=[1, 0]),
             node("Reshape", ["t", "s"], ["r"]), node("Where", ["r", "x", "zero"])]
    model = make_model(nodes, {n: (v.dtype, v.shape) for n, v in feeds.items()}, {"y": (F32, (2, 6))},
                       {"s": np.array([2, 6], I64), "zero": np.array(0.0, F32)})
    check_against_ort(model, feeds, tmp_path)


# --- the IR -------------------------------------------------------------------------

def test_llvm_ir_has_no_i1_memory():
    # Every memory access of a bool is a byte; comparisons and logic stay i1.
    nodes = [node("Not", ["p"], ["n"]), node("Transpose", ["p"], ["t"]), node("And", ["p", "k"], ["m"])]
    model = make_model(nodes, {"p": (BOOL, (2, 3))},
                       {"n": (BOOL, (2, 3)), "t": (BOOL, (3, 2)), "m": (BOOL, (2, 3))},
                       {"k": np.array([[1, 0, 1], [0, 1, 1]], BOOL)})
    llvm_ir = qc.compile(model, emit="llvm-ir")
    assert not re.search(r"\b(load|store) (<\d+ x )?i1\b", llvm_ir)
    assert "load i8" in llvm_ir and "store i8" in llvm_ir
    assert re.search(r"xor i1 %\d+, true", llvm_ir)


UNSUPPORTED = [
    ("linalg.fill", """
     func.func @f(%x: memref<4xi1>) {
       %true = arith.constant true
       linalg.fill ins(%true : i1) outs(%x : memref<4xi1>)
       return
     }"""),
    ("vector.maskedload", """
     func.func @f(%x: memref<16xi1>, %mask: vector<8xi1>, %pass: vector<8xi1>) -> vector<8xi1> {
       %c0 = arith.constant 0 : index
       %v = vector.maskedload %x[%c0], %mask, %pass : memref<16xi1>, vector<8xi1>, vector<8xi1> into vector<8xi1>
       return %v : vector<8xi1>
     }"""),
]


@pytest.mark.parametrize("op,text", UNSUPPORTED, ids=[u[0] for u in UNSUPPORTED])
def test_pass_rejects_other_ops_on_i1_memory(op, text):
    # The op is named, and the module is left as it was (checked before any change).
    with new_context(), ir.Location.unknown():
        module = ir.Module.parse(text)
        before = str(module)
        with pytest.raises(PassFailed, match=rf"qc-bool-memory: {op} on a memref of i1 is not supported"):
            BoolMemory().apply(module)
        assert str(module) == before
