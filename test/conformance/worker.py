"""One conformance worker process: reads jobs, imports or compiles and runs
node test cases, writes one result message per case.

It runs in its own process so that an abort inside MLIR or LLVM (the
bindings are an assertions build) or a crash in generated code ends the
worker, not the runner; the runner reads which case was in flight and starts
a new worker. Protocol: pickled objects, jobs on stdin, messages on the
original stdout (fd 1 is redirected to stderr, so stray prints from native
code cannot corrupt the stream).

Jobs:
    ("import", [Case, ...])  ->  ("case", name, Verdict) per case, then ("done",)
    ("batch", [Case, ...])   ->  ("case", name, Verdict) per case, then ("done",),
                                 or ("batch-error", reason) if the merged model
                                 does not compile or run
"""

from __future__ import annotations

import os
import pickle
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import node_cases as nc  # noqa: E402


def one_line(message: str, limit: int = 200) -> str:
    """A reason for the expected-failures file: one line, without the list of
    every supported op that "op type is not supported" carries."""
    s = " ".join(str(message).split())
    s = re.sub(r"; supported: .{60,}$", "", s)
    return s if len(s) <= limit else s[: limit - 3] + "..."


def verdict(passed: bool, stage: str, reason: str = "", bound=()) -> dict:
    """stage: where the case stopped (import, compile, run, compare) or "pass"."""
    return {"pass": passed, "stage": stage, "reason": one_line(reason) if reason else "", "bound": list(bound)}


def _import(case: nc.Case) -> None:
    """Raises qc.QcError if qc cannot import the case. A case whose run-time
    inputs were bound must still leave code to run: if every node folds,
    onnx.reference computed the answer, not qc."""
    import qc
    from qc.frontends.onnx import import_model
    from qc.mlir import ir, new_context

    with new_context() as ctx, ir.Location.unknown(ctx):
        imported = import_model(case.proto())
    if case.bound and not imported.op_counts:
        raise qc.ModelError("every node folds at compile time (onnx.reference computes it): "
                            "nothing runs in compiled code")


def import_case(case: nc.Case) -> dict:
    """Imports one case; on a parameter that must be constant, retries it
    with that op's parameter inputs bound."""
    try:
        return _import_or_bind(case)
    except Exception as e:  # a bug in qc (an assert): the case fails, the worker goes on
        return verdict(False, "import", f"internal error: {type(e).__name__}: {e}")


def _import_or_bind(case: nc.Case) -> dict:
    import qc

    try:
        _import(case)
        return verdict(True, "import")
    except qc.QcError as e:
        op = nc.parameter_op(str(e))
        bound = nc.bind_parameters(case, op) if op else None
        if bound is None:
            return verdict(False, "import", str(e))
        try:
            _import(bound)
            return verdict(True, "import", bound=bound.bound)
        except qc.QcError as e2:
            return verdict(False, "import", f"{e2} (with {', '.join(bound.bound)} bound as constants)")


def run_batch(cases: list[nc.Case], send) -> None:
    """Compiles the cases as one model (a lone case as itself), runs it once
    and sends each case's verdict."""
    import qc
    import qc.onnx_backend as backend

    alone = len(cases) == 1
    model = cases[0].proto() if alone else nc.merge(cases)
    try:
        rep = backend.prepare(model)
    except qc.QcError as e:
        send(("batch-error", "compile", str(e)))
        return
    except Exception as e:  # a bug in qc (an assert)
        send(("batch-error", "compile", f"internal error: {type(e).__name__}: {e}"))
        return
    names = [vi.name for vi in nc.runtime_inputs(model.graph)]
    feeds = dict(zip(names, [v for c in cases for v in c.inputs]))
    try:
        outs = rep.model.run(feeds)
    except Exception as e:  # the runtime's InputError/RunError: a problem of the whole model
        send(("batch-error", "run", f"{type(e).__name__}: {e}"))
        return
    finally:
        rep.close()
    for case in cases:
        g = case.proto().graph
        p = "" if alone else nc.prefix(case)
        got = [outs[p + o.name] for o in g.output]
        diff = nc.compare(case, got, [o.name for o in g.output])
        send(("case", case.name, verdict(diff is None, "compare" if diff else "pass", diff or "", case.bound)))


def main() -> None:
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)

    def send(msg) -> None:
        pickle.dump(msg, out)
        out.flush()

    jobs = sys.stdin.buffer
    while True:
        try:
            kind, cases = pickle.load(jobs)
        except EOFError:
            return
        if kind == "import":
            for case in cases:
                send(("case", case.name, import_case(case)))
        else:
            run_batch(cases, send)
        send(("done",))


if __name__ == "__main__":
    main()
