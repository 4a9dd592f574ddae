"""A linalg.generic body replayed on vectors (`Program`), for passes that
write a loop's vector code themselves.

Each step is the body's own arith op applied lane by lane, so the vector code
computes the same bits as the scalar loop. One pattern is written in a form
LLVM does not find from the scalar one: the high word of a 32 x 32 -> 64-bit
product (`Program.high_words`), the core of every requantization (qmath).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from qc.mlir import ir

# The payload ops a vector replay keeps exact: elementwise arith, the same
# semantics lane by lane.
_ELEMENTWISE = {
    f"arith.{n}" for n in (
        "addi subi muli shli shrsi shrui andi ori xori maxsi minsi maxui minui extsi extui trunci "
        "select cmpi sitofp uitofp fptosi fptoui addf subf mulf divf negf maximumf minimumf maxnumf "
        "minnumf cmpf extf truncf").split()
}


@dataclass
class Step:
    name: str  # arith op
    props: str  # its properties, as the generic form prints them ("" if none)
    operands: list  # ("arg", i) block argument | ("step", j) an earlier result | ("const", attr)
    type: str  # the scalar result type


@dataclass
class Program:
    """A linalg.generic body, replayable on vectors of any width."""

    args: list[str]  # the scalar type of each input block argument
    steps: list[Step]
    result: tuple  # what the yield returns, as a Step operand

    def emit(self, e, lanes: int, args: dict[int, str], const_names: dict[str, str],
             arg_ranges: dict[int, tuple[int, int]] | None = None, until: tuple | None = None,
             given: dict[int, str] | None = None, odd_views: dict[tuple, str] | None = None,
             quads: bool = False) -> str:
        """Emits the steps on vector<lanes x T> values (args: block argument
        index -> vector name) with emitter e; returns the result's name.
        const_names caches the splat constants emitted so far; arg_ranges:
        the known bounds of integer arguments (constant per-row operands),
        which let a narrowing and widening back be dropped (`exact_round_trips`).
        until: return that operand instead of the result, emitting only the
        steps up to it. given: steps whose values the caller has (step ->
        vector name). odd_views: for an operand a high word multiplies, a
        vector whose even lanes are its odd lanes (a load one element
        further on), which spares the shuffle that moves them there.
        quads: high words come out in `quad_order` (for a caller whose
        other operands are the same in every lane, and which puts the
        result's lanes in order itself)."""
        vals: list[str] = []
        same = self.exact_round_trips(arg_ranges or {})
        last = len(self.steps) - 1 if until is None else (until[1] if until[0] == "step" else -1)

        def ref(o) -> str:
            kind, x = o
            if kind == "arg":
                return args[x]
            if kind == "step":
                return vals[x]
            vty = ir.VectorType.get([lanes], x.type)
            text = str(ir.DenseElementsAttr.get_splat(vty, x))
            if text not in const_names:
                c = e.fresh("k")
                e.emit(f"{c} = arith.constant {text}")
                const_names[text] = c
            return const_names[text]

        def vec(ty: str) -> str:
            return f"vector<{lanes}x{ty}>"

        fused = self.high_words() if lanes % 2 == 0 else {}
        skip = {j for chain in fused.values() for j in chain[1:]}
        for t, s in enumerate(self.steps):
            if t > last:
                break
            if t in skip:
                vals.append("")  # folded into the high-word form below
                continue
            if given and t in given:
                vals.append(given[t])
                continue
            if t in same:
                vals.append(ref(same[t]))
                continue
            if t in fused:
                a, m, c = fused[t][0]
                vals.append(_emit_high_word(e, lanes, ref(a), ref(m), None if c is None else ref(c),
                                            (odd_views or {}).get(a), quads))
                continue
            names, tys = [], []
            for o in s.operands:
                names.append(ref(o))
                tys.append(vec(self._type_of(o)))
            r = e.fresh("q")
            e.emit(f'{r} = "{s.name}"({", ".join(names)}){s.props} : ({", ".join(tys)}) -> {vec(s.type)}')
            vals.append(r)
        return ref(self.result if until is None else until)

    def exact_round_trips(self, arg_ranges: dict[int, tuple[int, int]]) -> dict[int, tuple]:
        """The steps extsi / extui(trunci(x)) back to x's type where x is
        clamped (maxsi / minsi by constants or by arguments of known range,
        then maybe offset by addi / subi) into the narrow type's signed /
        unsigned range, so the pair is x itself: step -> x. (A QLinearAdd
        after a requantization narrows its input and widens it again; so
        does a DequantizeLinear after it; uint8 ones widen by extui.)"""
        bounds: dict[tuple, tuple] = {}
        narrowed: dict[int, tuple] = {}  # trunci step -> the range of the value it narrows

        def bound(o) -> tuple:
            kind, x = o
            if kind == "const" and isinstance(x, ir.IntegerAttr):
                v = ir.IntegerAttr(x).value
                return v, v
            if kind == "arg":
                return arg_ranges.get(x, (None, None))
            return bounds.get(o, (None, None))

        out = {}
        for t, s in enumerate(self.steps):
            if s.name in ("arith.maxsi", "arith.minsi") and len(s.operands) == 2:
                (la, ha), (lb, hb) = (bound(o) for o in s.operands)
                if s.name == "arith.maxsi":
                    lo = max(v for v in (la, lb) if v is not None) if la is not None or lb is not None else None
                    hi = max(ha, hb) if ha is not None and hb is not None else None
                else:
                    hi = min(v for v in (ha, hb) if v is not None) if ha is not None or hb is not None else None
                    lo = min(la, lb) if la is not None and lb is not None else None
                bounds[("step", t)] = (lo, hi)
            elif s.name in ("arith.addi", "arith.subi") and len(s.operands) == 2:
                (la, ha), (lb, hb) = (bound(o) for o in s.operands)
                if None not in (la, ha, lb, hb):
                    bounds[("step", t)] = (la + lb, ha + hb) if s.name == "arith.addi" else (la - hb, ha - lb)
            elif s.name == "arith.trunci" and s.type.startswith("i"):
                lo, hi = bound(s.operands[0])
                if lo is not None and hi is not None:
                    narrowed[t] = (lo, hi)  # the wide value's range: the widening decides
                    bits = int(s.type[1:])
                    if -2 ** (bits - 1) <= lo and hi < 2 ** (bits - 1):  # also the (signed) narrow value's
                        bounds[("step", t)] = (lo, hi)
            elif s.name in ("arith.extsi", "arith.extui") and s.operands[0][0] == "step":
                src = self.steps[s.operands[0][1]]
                lo, hi = narrowed.get(s.operands[0][1], (None, None))
                if src.name != "arith.trunci" or lo is None or self._type_of(src.operands[0]) != s.type:
                    continue
                bits = int(src.type[1:])
                # extsi gives back values in the signed narrow range, extui in the unsigned one.
                lo_ok, hi_ok = (-2 ** (bits - 1), 2 ** (bits - 1)) if s.name == "arith.extsi" else (0, 2 ** bits)
                if lo_ok <= lo and hi < hi_ok:
                    out[t] = src.operands[0]
                    bounds[("step", t)] = (lo, hi)
        return out

    def use_count(self, operand: tuple) -> int:
        """How many step operands (and the result) are `operand`."""
        return sum(o == operand for s in self.steps for o in s.operands) + (self.result == operand)

    def only_in_high_word(self, t: int, acc: int) -> bool:
        """Whether step t is used once, by the program's only high word, and
        the argument acc (the sums) only by step t: with no tile input,
        every other value then is the same in all lanes of a row (or
        channel), and the high word's lanes may come out in any order
        (`emit`'s quads)."""
        return len(self.high_words()) == 1 and self.use_count(("step", t)) == 1 \
            and self.use_count(("arg", acc)) == 1 and ("arg", acc) in self.steps[t].operands

    def high_words(self) -> dict[int, tuple]:
        """The chains trunci(shr(sext(a) * sext(m) [+ c], 32)) to i32: the
        high word of a 32 x 32 -> 64-bit product (plus an i64 c), by the
        trunci's step: ((a, m, c), the chain's other steps). Each
        intermediate must have no other use."""
        uses: dict[int, int] = {}
        for s in self.steps:
            for kind, x in s.operands:
                if kind == "step":
                    uses[x] = uses.get(x, 0) + 1
        if self.result[0] == "step":
            uses[self.result[1]] = uses.get(self.result[1], 0) + 1

        def step(o, name):
            if o[0] != "step" or self.steps[o[1]].name != name or uses.get(o[1]) != 1:
                return None
            return self.steps[o[1]]

        def narrow(o):
            """o as an i32 operand: the source of a sext from i32, or an i64 constant that fits."""
            if o[0] == "const":
                v = ir.IntegerAttr(o[1]).value
                return ("const", ir.IntegerAttr.get(ir.IntegerType.get_signless(32), v)) \
                    if -2**31 <= v < 2**31 else None
            if o[0] != "step" or self.steps[o[1]].name != "arith.extsi":
                return None
            src = self.steps[o[1]].operands[0]
            return src if self._type_of(src) == "i32" else None

        out = {}
        for t, s in enumerate(self.steps):
            if s.name != "arith.trunci" or s.type != "i32":
                continue
            h = s.operands[0]
            shr = step(h, "arith.shrsi") or step(h, "arith.shrui")
            if shr is None or shr.operands[1][0] != "const" or ir.IntegerAttr(shr.operands[1][1]).value != 32:
                continue
            chain, c, p = [h[1]], None, shr.operands[0]
            add = step(p, "arith.addi")
            if add is not None:
                chain.append(p[1])
                prod = next((o for o in add.operands if step(o, "arith.muli") is not None), None)
                if prod is None:
                    continue
                c = add.operands[1] if add.operands[0] == prod else add.operands[0]
                p = prod
            mul = step(p, "arith.muli")
            if mul is None or mul.type != "i64":
                continue
            chain.append(p[1])
            a, m = (narrow(o) for o in mul.operands)
            if a is None or m is None:
                continue
            out[t] = ((a, m, c), *chain)
        return out

    def _type_of(self, o) -> str:
        kind, x = o
        if kind == "arg":
            return self.args[x]
        if kind == "step":
            return self.steps[x].type
        return str(x.type)

    @property
    def out_type(self) -> str:
        kind, x = self.result
        return self.args[x] if kind == "arg" else (self.steps[x].type if kind == "step" else str(x.type))


def splat(e, const_names: dict[str, str], value: int, vty: str) -> str:
    """A splat constant of `value` as vty, emitted once per const_names (the
    cache `Program.emit` keeps its constants in, keyed by their text)."""
    text = f"dense<{value}> : {vty}"
    if text not in const_names:
        c = e.fresh("k")
        e.emit(f"{c} = arith.constant {text}")
        const_names[text] = c
    return const_names[text]


def quad_order(lanes: int) -> list[int]:
    """The lanes of a high word emitted with `quads`: lane p holds the high
    word of a's lane quad_order[p] (lanes 1 and 2 of each four swapped)."""
    return [q + i for q in range(0, lanes, 4) for i in (0, 2, 1, 3)]


def _emit_high_word(e, lanes: int, a: str, m: str, c: str | None, a_odd: str | None = None,
                    quads: bool = False) -> str:
    """hi32(sext(a) * sext(m) + c) per lane of vector<lanes x i32> a and m
    (c: vector<lanes x i64> or None), as two 32 x 32 -> 64 multiplies of the
    even and of the odd lanes (x86 vpmuldq reads the low half of each i64
    lane: no widening shuffles), added to c's even and odd lanes, and the
    high halves merged back (a shift and a blend). a_odd: a vector whose
    even lanes are a's odd ones (else a shuffle moves them there). quads:
    merge the high words per 128 bits as one two-source shuffle (vshufps)
    instead of a shuffle and a blend, leaving them in `quad_order`."""
    half = lanes // 2
    v32, v64 = f"vector<{lanes}xi32>", f"vector<{half}xi64>"
    k32 = e.fresh("k32")
    e.emit(f"{k32} = arith.constant dense<32> : {v64}")

    def low_half(x: str) -> str:
        """The low i32 of each i64 lane, sign-extended: what vpmuldq reads."""
        w, lo, ext = (e.fresh(n) for n in ("w", "lo", "ext"))
        e.emit(f"{w} = vector.bitcast {x} : {v32} to {v64}")
        e.emit(f"{lo} = arith.shli {w}, {k32} : {v64}")
        e.emit(f"{ext} = arith.shrsi {lo}, {k32} : {v64}")
        return ext

    def sides(x: str) -> tuple[str, str]:
        # The odd lanes are moved down within each i64 lane (vpshufd), not
        # shifted as i64: AVX2 has no 64-bit arithmetic shift.
        odd = e.fresh("odd")
        e.emit(f"{odd} = vector.shuffle {x}, {x} [{', '.join(str(i | 1) for i in range(lanes))}] : {v32}, {v32}")
        return low_half(x), low_half(odd)

    (ae, ao), (me, mo) = (low_half(a), low_half(a_odd)) if a_odd else sides(a), sides(m)
    prods = []
    for x, y, idx in ((ae, me, range(0, lanes, 2)), (ao, mo, range(1, lanes, 2))):
        p = e.fresh("p")
        e.emit(f"{p} = arith.muli {x}, {y} : {v64}")
        if c is not None:
            cs, q = e.fresh("cs"), e.fresh("p")
            e.emit(f"{cs} = vector.shuffle {c}, {c} [{', '.join(map(str, idx))}] "
                   f": vector<{lanes}xi64>, vector<{lanes}xi64>")
            e.emit(f"{q} = arith.addi {p}, {cs} : {v64}")
            p = q
        w = e.fresh("pw")
        e.emit(f"{w} = vector.bitcast {p} : {v64} to {v32}")
        prods.append(w)
    r = e.fresh("hw")
    if quads:  # per 4 lanes the even products' high words, then the odd ones': one vshufps
        order = [i for q in range(0, lanes, 4) for i in (q + 1, q + 3, lanes + q + 1, lanes + q + 3)]
    else:
        order = [i for j in range(half) for i in (2 * j + 1, lanes + 2 * j + 1)]
    e.emit(f"{r} = vector.shuffle {prods[0]}, {prods[1]} [{', '.join(map(str, order))}] : {v32}, {v32}")
    return r


_PROPS = re.compile(r'^[^"]*"[\w.]+"\([^)]*\)\s*(<\{.*\}>)?\s*:')


def _props(op: ir.Operation) -> str | None:
    """The op's properties as its generic form prints them; None if it has
    discardable attributes too (not replayed)."""
    text = op.get_asm(print_generic_op_form=True)
    m = _PROPS.match(text)
    if m is None:
        return None
    return (" " + m.group(1)) if m.group(1) else ""


def program_of(generic: ir.Operation, result: ir.Value | None = None, n_ops: int | None = None) -> Program | None:
    """The generic's body as a Program over its input block arguments, or
    None if it is not a chain of elementwise arith ops (or reads its output).
    With `result`: the Program of that value from the body's first `n_ops`
    ops (a reduction's body without its combiner)."""
    block = generic.regions[0].blocks[0]
    args = list(block.arguments)
    n_in = len(args) - 1
    index = {args[i]: ("arg", i) for i in range(n_in)}
    steps: list[Step] = []
    ops = [o.operation for o in block.operations]
    if result is not None:
        ops = ops[:n_ops] + [None]
    for inner in ops:
        if inner is None or inner.name == "linalg.yield":
            value = result if inner is None else inner.operands[0]
            if inner is not None and len(inner.operands) != 1:
                return None
            if value not in index and _const(value) is None:
                return None
            res = index.get(value) or ("const", _const(value))
            return Program([str(a.type) for a in args[:n_in]], steps, res)
        if inner.name not in _ELEMENTWISE or len(inner.results) != 1 or inner.regions:
            return None
        props = _props(inner)
        if props is None:
            return None
        operands = []
        for v in inner.operands:
            if v in index:
                operands.append(index[v])
            elif _const(v) is not None:
                operands.append(("const", _const(v)))
            else:
                return None  # the output block argument, or a value from elsewhere
        steps.append(Step(inner.name, props, operands, str(inner.results[0].type)))
        index[inner.results[0]] = ("step", len(steps) - 1)
    return None


def operand_indices(m: ir.AffineMap) -> list | None:
    """How an operand's indexing map indexes it: per result a loop dim, or
    ("c", value) for a constant; None for anything else (a compound index)."""
    idx = []
    for r in m.results:
        if isinstance(r, ir.AffineDimExpr):
            idx.append(r.position)
        elif isinstance(r, ir.AffineConstantExpr):
            idx.append(("c", r.value))
        else:
            return None
    return idx


def _const(v: ir.Value):
    owner = getattr(v.owner, "operation", None)
    if owner is None or owner.name != "arith.constant":
        return None
    attr = owner.attributes["value"]
    return attr if isinstance(attr, (ir.IntegerAttr, ir.FloatAttr)) else None
