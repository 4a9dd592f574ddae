#!/usr/bin/env python3
"""ONNX's node conformance tests, compiled and run by qc.

    test/conformance/run_node_tests.py              run all, compare with the expected failures
    test/conformance/run_node_tests.py -k resize    only the tests whose name contains "resize"
    test/conformance/run_node_tests.py --update     rewrite expected_failures.txt from this run

The cases are the ones the installed onnx wheel generates
(`onnx.backend.test.case.node.collect_testcases`; the wheel has no node data
directory). Each case is checked as ONNX's backend runner checks it: same
dtype and shape, and assert_allclose with the case's rtol/atol.

To stay fast it works in phases, in worker processes (an abort inside MLIR
ends a worker, not the run):
1. classify without importing (sequence/optional/map values, other domains);
2. import each case alone with the frontend only (cheap) and record why the
   ones that fail do; a case whose shape-like parameter input (Reshape's
   shape, Pad's pads...) must be known at compile time is retried with those
   inputs bound to the test's values (node_cases.bind_parameters);
3. merge the rest, up to --batch cases of the same opset per model, compile
   each merged model once, run it once and compare each case's outputs; a
   merged model that fails to compile is split (at the case its diagnostic
   names, else in halves) until the failing case stands alone.
Verdicts are cached under build/conformance-cache, keyed by each case's hash
and a hash of qc's sources, so a re-run without changes is quick.

Exit status 1 if a test that is not in expected_failures.txt fails. A test in
the list that passes is reported with the line to delete.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import pickle
import queue
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))

import node_cases as nc  # noqa: E402
from worker import verdict  # noqa: E402

EXPECTED = HERE / "expected_failures.txt"
CACHE = ROOT / "build" / "conformance-cache"
SOURCES = ("compiler", "frontends", "passes", "runtime", "dialects")
IMPORT_CHUNK = 25  # cases per import job: small enough to balance two workers
IMPORT_TIMEOUT_S = 300


def batch_timeout_s(n_cases: int) -> float:
    """A merged model of 40 small cases compiles in about 10 s: this is far
    beyond that, yet a hang, split down to its case, stays affordable."""
    return 60 + 6 * n_cases


# ---------------------------------------------------------------- expected failures


def read_expected(path: Path = EXPECTED) -> dict[str, str]:
    """test name -> reason, from lines `test_name  # reason`."""
    out = {}
    if not path.exists():
        return out
    for line in path.read_text().splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        name, _, reason = line.partition("#")
        out[name.strip()] = reason.strip()
    return out


def expected_line(name: str, reason: str) -> str:
    return f"{name}  # {reason}"


def write_expected(failures: dict[str, str], total: int, onnx_version: str, path: Path = EXPECTED) -> None:
    head = [
        f"# ONNX {onnx_version} node tests that qc does not pass ({len(failures)} of {total}),",
        "# one per line: test_name  # why. Regenerate: test/conformance/run_node_tests.py --update",
    ]
    path.write_text("\n".join([*head, *(expected_line(n, failures[n]) for n in sorted(failures))]) + "\n")


def diff_expected(verdicts: dict[str, dict], expected: dict[str, str]):
    """(newly failing: name -> reason, newly passing: names) for the tests run."""
    new_fail = {n: v["reason"] for n, v in verdicts.items() if not v["pass"] and n not in expected}
    new_pass = sorted(n for n, v in verdicts.items() if v["pass"] and n in expected)
    return new_fail, new_pass


# ---------------------------------------------------------------- cache


def fingerprint() -> str:
    """A hash of qc's sources, this runner and the onnx version."""
    import onnx

    h = hashlib.sha256(onnx.__version__.encode())
    files = [p for d in SOURCES for p in sorted((ROOT / d).rglob("*")) if p.suffix in (".py", ".c", ".h")]
    files += [HERE / "node_cases.py", HERE / "worker.py"]
    for p in files:
        h.update(str(p.relative_to(ROOT)).encode())
        h.update(p.read_bytes())
    return h.hexdigest()[:16]


class Cache:
    def __init__(self, directory: Path | None, fp: str):
        self.path = directory / f"{fp}.json" if directory else None
        self.entries = {}
        if self.path and self.path.exists():
            self.entries = json.loads(self.path.read_text())

    def get(self, case: nc.Case) -> dict | None:
        e = self.entries.get(case.name)
        return e["verdict"] if e and e["key"] == case.key() else None

    def save(self, cases: list[nc.Case], verdicts: dict[str, dict]) -> None:
        if not self.path:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        for old in self.path.parent.glob("*.json"):  # verdicts of other sources are stale
            if old != self.path:
                old.unlink()
        for c in cases:
            if c.name in verdicts:
                self.entries[c.name] = {"key": c.key(), "verdict": verdicts[c.name]}
        self.path.write_text(json.dumps(self.entries))


# ---------------------------------------------------------------- workers


class Worker:
    """A worker process (worker.py), restarted after it dies."""

    def __init__(self):
        self.proc = None
        self.stderr = tempfile.TemporaryFile()

    def call(self, job, timeout: float):
        """Runs one job: (messages, None), or (messages so far, why it died)."""
        if self.proc is None or self.proc.poll() is not None:
            self.proc = subprocess.Popen([sys.executable, str(HERE / "worker.py")], stdin=subprocess.PIPE,
                                         stdout=subprocess.PIPE, stderr=self.stderr)
        start = os.fstat(self.stderr.fileno()).st_size
        timed_out = threading.Event()

        def kill():
            timed_out.set()
            self.proc.kill()

        timer = threading.Timer(timeout, kill)
        timer.start()
        msgs = []
        try:
            pickle.dump(job, self.proc.stdin)
            self.proc.stdin.flush()
            while True:
                msg = pickle.load(self.proc.stdout)
                if msg[0] == "done":
                    return msgs, None
                msgs.append(msg)
        except (EOFError, OSError, pickle.UnpicklingError):
            status = self.proc.wait()
            self.proc = None
            if timed_out.is_set():
                return msgs, f"timed out after {timeout:.0f} s"
            return msgs, f"crashed ({_signal_name(status)}): {self._last_error(start)}"
        finally:
            timer.cancel()

    def _last_error(self, start: int) -> str:
        self.stderr.seek(start)
        lines = [l.strip() for l in self.stderr.read().decode(errors="replace").splitlines() if l.strip()]
        self.stderr.seek(0, os.SEEK_END)
        useful = [l for l in lines if re.search(r"Assertion|error|Error|fault|abort", l)]
        return (useful or lines or ["no message"])[-1][:200]

    def close(self) -> None:
        if self.proc is not None:
            self.proc.stdin.close()
            self.proc.wait()


def _signal_name(status: int) -> str:
    if status < 0:
        try:
            return signal.Signals(-status).name
        except ValueError:
            pass
    return f"exit {status}"


def run_jobs(jobs: list, workers: list[Worker], handle, log=None) -> None:
    """Runs jobs on the workers; `handle(job, msgs, crash)` returns follow-up
    jobs; `log(job, seconds)` hears how long each took."""
    q: queue.Queue = queue.Queue()
    for j in jobs:
        q.put(j)
    errors = []

    def loop(w: Worker) -> None:
        while True:
            job = q.get()
            try:
                if job is None:
                    return
                timeout = IMPORT_TIMEOUT_S if job[0] == "import" else batch_timeout_s(len(job[1]))
                start = time.perf_counter()
                msgs, crash = w.call(job, timeout)
                if log:
                    log(job, time.perf_counter() - start)
                for follow in handle(job, msgs, crash):
                    q.put(follow)
            except BaseException as e:  # a bug in this runner: report it after the join
                errors.append(e)
            finally:
                q.task_done()

    threads = [threading.Thread(target=loop, args=(w,), daemon=True) for w in workers]
    for t in threads:
        t.start()
    q.join()
    for _ in threads:
        q.put(None)
    for t in threads:
        t.join()
    if errors:
        raise errors[0]


# ---------------------------------------------------------------- phases

NODE_BUDGET = 400


def _nodes(cases: list[nc.Case]) -> int:
    return sum(len(c.proto().graph.node) for c in cases)


class Run:
    def __init__(self, workers: list[Worker], batch: int, verbose: bool):
        self.workers = workers
        self.batch = batch
        self.verbose = verbose
        self.verdicts: dict[str, dict] = {}
        self.compiles = 0
        self.lock = threading.Lock()

    def record(self, name: str, v: dict) -> None:
        with self.lock:
            self.verdicts[name] = v

    def import_all(self, cases: list[nc.Case]) -> list[nc.Case]:
        """Phase 2; returns the cases to compile (bound where binding helped)."""
        ok: list[nc.Case] = []
        by_name = {c.name: c for c in cases}

        def handle(job, msgs, crash):
            done = set()
            for _, name, v in msgs:
                done.add(name)
                if v["pass"]:
                    case = by_name[name]
                    with self.lock:
                        ok.append(nc.bind_inputs(case, v["bound"]) if v["bound"] else case)
                else:
                    self.record(name, v)
            rest = [c for c in job[1] if c.name not in done]
            if crash and rest:
                self.record(rest[0].name, verdict(False, "import", f"importer {crash}"))
                return [("import", rest[1:])] if rest[1:] else []
            return []

        chunks = [cases[i:i + IMPORT_CHUNK] for i in range(0, len(cases), IMPORT_CHUNK)]
        run_jobs([("import", c) for c in chunks], self.workers, handle)
        return sorted(ok, key=lambda c: c.id)

    def compile_all(self, cases: list[nc.Case]) -> None:
        """Phase 3: merged compiles, split on failure."""
        groups: dict[tuple, list[nc.Case]] = {}
        jobs = []
        for c in cases:
            if nc.mergeable(c):
                groups.setdefault(nc.group_key(c), []).append(c)
            else:
                jobs.append(("batch", [c]))
        for group in groups.values():
            jobs += [("batch", chunk) for chunk in self._chunks(group)]
        jobs.sort(key=lambda j: -_nodes(j[1]))  # big ones first: the two workers finish together
        run_jobs(jobs, self.workers, self._handle_batch, self._log if self.verbose else None)

    def _chunks(self, group: list[nc.Case]):
        """Up to --batch cases and about NODE_BUDGET nodes per merged model:
        compile time follows the node count (an expanded Attention case has
        80 nodes, most cases one), and small jobs keep both workers busy."""
        chunk: list[nc.Case] = []
        for c in group:
            if chunk and (len(chunk) == self.batch or _nodes(chunk) + _nodes([c]) > NODE_BUDGET):
                yield chunk
                chunk = []
            chunk.append(c)
        if chunk:
            yield chunk

    @staticmethod
    def _log(job, seconds: float) -> None:
        cases = job[1]
        print(f"  {seconds:6.1f} s  {len(cases):3d} cases from {cases[0].name}", flush=True)

    def _handle_batch(self, job, msgs, crash):
        cases = job[1]
        with self.lock:
            self.compiles += 1
        failure = crash and ("compile", f"compiler or generated code {crash}")
        for msg in msgs:
            if msg[0] == "case":
                self.record(msg[1], msg[2])
            else:
                failure = (msg[1], msg[2])
        if not failure:
            return []
        rest = [c for c in cases if c.name not in self.verdicts]
        if self.verbose:
            print(f"  batch of {len(cases)} failed ({failure[1][:100]}); splitting", flush=True)
        if not rest:
            return []
        if len(rest) == 1:
            if len(cases) > 1:
                return [("batch", rest)]  # its own compile gives its own message
            self.record(rest[0].name, verdict(False, *failure, bound=rest[0].bound))
            return []
        culprit = nc.case_of_message(failure[1], rest)
        if culprit is not None:
            others = [c for c in rest if c is not culprit]
            return [("batch", [culprit])] + ([("batch", others)] if others else [])
        half = len(rest) // 2
        return [("batch", rest[:half]), ("batch", rest[half:])]


# ---------------------------------------------------------------- report


def cause(v: dict) -> str:
    """A failure's reason without the names and numbers of one case, to group by."""
    r = re.sub(r"^node '.*?' ", "", v["reason"])
    r = re.sub(r"(?<!domain )'[^']*'", "'…'", r)
    r = re.sub(r"\[[^\]]*\]", "[…]", r)
    r = re.sub(r"(?<![\w.])\d+(\.\d+)?(e[-+]?\d+)?(?![\w.])", "N", r)  # numbers, not float16 or INT4
    r = re.sub(r" \(with .* bound as constants\)", "", r)
    return f"{v['stage']}: {r[:110]}"


def report(verdicts, cases, expected, elapsed, run, top: int, onnx_version: str) -> int:
    names = {c.name for c in cases}
    selected = {n: v for n, v in verdicts.items() if n in names}
    passed = [n for n, v in selected.items() if v["pass"]]
    bound = [n for n in passed if selected[n]["bound"]]
    failed = {n: v for n, v in selected.items() if not v["pass"]}
    print(f"qc conformance, ONNX {onnx_version} node tests: {len(passed)} passed, {len(failed)} failed "
          f"of {len(selected)} ({len(bound)} of the passes with shape-like parameter inputs bound as constants)")
    print(f"{elapsed:.0f} s, {len(run.workers)} workers, {run.compiles} compiles")
    groups = Counter(cause(v) for v in failed.values())
    if top and groups:
        print(f"largest groups of failures (of {len(groups)}):")
        for reason, n in groups.most_common(top):
            print(f"  {n:4d}  {reason}")
    new_fail, new_pass = diff_expected(selected, expected)
    if new_pass:
        print(f"{len(new_pass)} test(s) newly pass; delete these lines from {EXPECTED.relative_to(ROOT)}:")
        for n in new_pass:
            print(f"  {expected_line(n, expected[n])}")
    if new_fail:
        print(f"{len(new_fail)} test(s) newly FAIL (not in {EXPECTED.relative_to(ROOT)}):")
        for n in sorted(new_fail):
            print(f"  {expected_line(n, new_fail[n])}")
    return 1 if new_fail else 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-j", "--jobs", type=int, default=2, help="worker processes (default 2)")
    ap.add_argument("--batch", type=int, default=40, help="cases per merged model (default 40)")
    ap.add_argument("-k", dest="pattern", default="", help="only tests whose name contains this")
    ap.add_argument("--cache", type=Path, default=CACHE, help=f"verdict cache (default {CACHE})")
    ap.add_argument("--no-cache", action="store_true", help="ignore and do not write the cache")
    ap.add_argument("--update", action="store_true", help="rewrite expected_failures.txt from this run")
    ap.add_argument("--top", type=int, default=15, help="failure groups to list (default 15)")
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args(argv)
    if args.update and args.pattern:
        ap.error("--update needs the whole suite (no -k)")

    import onnx

    t0 = time.perf_counter()
    cases = [c for c in nc.load_cases() if args.pattern in c.name]
    cache = Cache(None if args.no_cache else args.cache, fingerprint())
    verdicts = {c.name: v for c in cases if (v := cache.get(c)) is not None}
    todo = [c for c in cases if c.name not in verdicts]
    workers = [Worker() for _ in range(max(1, args.jobs))]
    run = Run(workers, args.batch, args.verbose)
    run.verdicts = verdicts
    try:
        to_import = []
        for c in todo:
            reason = nc.quick_reason(c)
            if reason:
                run.record(c.name, verdict(False, "import", reason))
            else:
                to_import.append(c)
        t1 = time.perf_counter()
        to_compile = run.import_all(to_import)
        t2 = time.perf_counter()
        run.compile_all(to_compile)
        t3 = time.perf_counter()
    finally:
        for w in workers:
            w.close()
    if args.verbose or todo:
        print(f"collected {len(cases)} cases ({len(cases) - len(todo)} cached) in {t1 - t0:.0f} s; "
              f"imported {len(to_import)} in {t2 - t1:.0f} s; compiled and ran {len(to_compile)} "
              f"in {t3 - t2:.0f} s")
    cache.save(cases, run.verdicts)
    if args.update:
        failures = {n: v["reason"] for n, v in run.verdicts.items() if not v["pass"]}
        write_expected(failures, len(cases), onnx.__version__)
        print(f"wrote {EXPECTED.relative_to(ROOT)}: {len(failures)} expected failures")
    expected = read_expected()
    return report(run.verdicts, cases, expected, time.perf_counter() - t0, run, args.top, onnx.__version__)


if __name__ == "__main__":
    sys.exit(main())
