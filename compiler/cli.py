"""The `qc` command line.

    qc compile model.onnx -o model.so        ONNX → native shared library
    qc run model.so --inputs in.npz          run it, print or save the outputs
    qc bench model.so                        latency over repeated runs
    qc opt file.mlir -p 'qc-bufferize'       run passes on MLIR (for lit tests)

Every user error is one line on stderr and exit code 1; `--debug` shows the
traceback instead.
"""

from __future__ import annotations

import functools
import os
import sys
import time

import click

from .errors import OptionError, QcError

# The stages between input and llvm-ir are the pipeline's, so --emit is checked
# by compile_model against the pipeline (importing it here would load MLIR for
# every command); a bad value is then one line and exit code 1.
EMIT_HELP = ("Stop after this stage and write its output: input, a pipeline stage "
             "(see --print-pipeline), llvm-ir, asm, obj (also writes a .h) or so.")


def _fail(msg: str) -> None:
    one_line = " ".join(msg.split())  # a message from a library may span lines
    click.echo(f"qc: error: {one_line}", err=True)
    sys.exit(1)


def _note(msg: str) -> None:
    """A progress line on stderr. A reader that went away (`2>&1 | head`)
    does not stop the compile: later lines go nowhere."""
    try:
        click.echo(f"qc: {msg}", err=True)
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stderr.fileno())  # and Python's flush at exit stays quiet
        os.close(devnull)


def check_writable(path: str, what: str = "-o") -> None:
    """Fails before any work is done if `path` cannot be written."""
    parent = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise OptionError(f"{what} {path}: is a directory; give a file name")
    if not os.path.isdir(parent):
        raise OptionError(f"{what} {path}: directory {parent} does not exist")
    import tempfile

    try:  # os.access says yes to root even on read-only file systems
        with tempfile.TemporaryFile(dir=parent):
            pass
    except OSError as e:
        raise OptionError(f"{what} {path}: cannot write to {parent}: {e.strerror}") from None


def handle_errors(fn):
    """Turns every user-facing failure into one line and exit code 1."""

    @click.option("--debug", is_flag=True, help="Show Python tracebacks on errors.")
    @functools.wraps(fn)
    def wrapper(*args, debug=False, **kwargs):
        debug = debug or bool(os.environ.get("QC_DEBUG"))
        try:
            return fn(*args, **kwargs)
        except BrokenPipeError:
            # The reader of stdout went away (`qc targets | head`): nothing to
            # report. stdout is pointed at /dev/null so the exit flush is quiet.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            sys.exit(1)
        except QcError as e:
            if debug:
                raise
            _fail(str(e))
        except Exception as e:  # errors from the runtime, numpy and file I/O
            from qc.runtime import InputError, LoadError, RunError

            if debug:
                raise
            if isinstance(e, (InputError, LoadError, RunError, OSError)):
                _fail(str(e))
            _fail(f"internal error: {type(e).__name__}: {e} (rerun with --debug for the traceback)")

    return wrapper


def parse_input_shapes(values) -> dict[str, list[int]]:
    shapes = {}
    for v in values:
        name, sep, dims = v.rpartition("=")
        if not sep or not name:
            raise OptionError(f"--input-shape '{v}': expected NAME=D0,D1,... (e.g. x=1,3,224,224)")
        try:
            ds = [int(d) for d in dims.split(",")] if dims.strip() else []
        except ValueError:
            raise OptionError(f"--input-shape '{v}': dims must be integers, e.g. {name}=1,3,224,224") from None
        if any(d <= 0 for d in ds):
            raise OptionError(f"--input-shape '{v}': dims must be positive")
        shapes[name] = ds
    return shapes


class QcGroup(click.Group):
    """Click's usage errors (a missing argument, an unknown option, a value out
    of range) as one line and exit code 1, like every other user error;
    click's own form is three lines and exit code 2."""

    def main(self, *args, **kwargs):
        kwargs["standalone_mode"] = False
        try:
            return super().main(*args, **kwargs)
        except click.exceptions.NoArgsIsHelpError as e:  # plain `qc`: the help is the answer
            click.echo(e.ctx.get_help())
            return 0
        except click.UsageError as e:
            cmd = e.ctx.command_path if e.ctx else "qc"
            _fail(f"{e.format_message()} (see '{cmd} --help')")
        except click.ClickException as e:
            _fail(e.format_message())
        except click.Abort:
            _fail("aborted")


@click.group(cls=QcGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="qc", prog_name="qc")
def main():
    """qc: compile ONNX models to native code for CPUs, and run them."""


@main.command("compile")
@click.argument("model")
@click.option("-o", "--output", metavar="FILE",
              help="Output file. Default: MODEL with .so for --emit so, stdout for textual stages.")
@click.option("--emit", default="so", show_default=True, metavar="STAGE", help=EMIT_HELP)
@click.option("--target", default="host", show_default=True, help="Target to generate code for.")
@click.option("--input-shape", "input_shapes", multiple=True, metavar="NAME=D0,D1,...",
              help="Bind the dims of an input (repeatable).")
@click.option("--dump-ir", metavar="DIR",
              help="Write every stage's output to DIR, numbered in order.")
@click.option("--print-constants", is_flag=True,
              help="Print large constants of MLIR stages in full (default: elided, not re-parseable).")
@click.option("--pipeline", "pipeline_file", metavar="FILE.py",
              help="Compile with the pipeline FILE.py builds: a function pipeline(target) returning a "
                   "qc Pipeline, or PIPELINE (see examples/pipelines/).")
@click.option("--print-pipeline", is_flag=True, help="Print the pass pipeline for the target and exit.")
@click.option("-q", "--quiet", is_flag=True, help="No progress messages.")
@click.option("--report", is_flag=True,
              help="Print per ONNX op type: nodes, how many were folded, what the rest were imported and compiled "
                   "as; then the memory plan: arena, all intermediates, lower bound.")
@click.option("--exact-requant", is_flag=True,
              help="Requantize int8 results with the exact 64-bit fixed-point product and its rounding constant "
                   "everywhere (the reference form). By default one "
                   "32-bit multiply does it where that is within 1/256 of an output step of the exact result "
                   "(a result next to a rounding threshold can then move by one step).")
@handle_errors
def compile_cmd(model, output, emit, target, input_shapes, dump_ir, print_constants, pipeline_file, print_pipeline,
                quiet, report, exact_requant):
    """Compile an ONNX model (.onnx, or .onnxtxt in ONNX's text format)."""
    from .session import compile_model
    from .targets import resolve

    if print_pipeline:
        from .user_pipeline import resolve_pipeline

        click.echo(resolve_pipeline(pipeline_file, resolve(target)).describe())
        return
    textual = emit not in ("obj", "so")
    if output is None and not textual:
        stem = os.path.splitext(os.path.basename(model))[0]
        output = stem + (".so" if emit == "so" else ".o")
    if output is not None:
        check_writable(output)
    if dump_ir and os.path.exists(dump_ir) and not os.path.isdir(dump_ir):
        raise OptionError(f"--dump-ir {dump_ir}: exists and is not a directory")
    progress = None
    if not quiet and not textual:
        progress = _note
    start = time.perf_counter()
    res = compile_model(model, output, emit=emit, target=target,
                        input_shapes=parse_input_shapes(input_shapes), dump_ir=dump_ir, pipeline=pipeline_file,
                        progress=progress, elide_constants=not print_constants, report=report,
                        exact_requant=exact_requant)
    if res.text is not None:
        click.echo(res.text, nl=not res.text.endswith("\n"))
    elif not quiet:
        _note(f"wrote {res.output} in {time.perf_counter() - start:.2f} s")
    if res.op_report is not None:  # on stderr when the IR itself goes to stdout
        from .report import arena_lines

        click.echo(res.op_report.table(), err=res.text is not None)
        if res.arena or not textual:
            click.echo(arena_lines(res.arena, res.weights_bytes), err=res.text is not None)
        guard, slower = res.int8_guard
        if guard:
            click.echo(guard, err=res.text is not None)
        if slower:
            click.echo(f"qc: warning: int8 is estimated slower than fp32 for {len(slower)} layer(s): "
                       f"{', '.join(slower)}", err=True)


def _load_inputs(model, path):
    import numpy as np

    from qc.runtime import InputError

    if path is None:
        return random_inputs(model)
    if not os.path.isfile(path):
        what = "is a directory" if os.path.isdir(path) else "no such file"
        raise InputError(f"--inputs {path}: {what}")
    with open(path, "rb") as f:
        magic = f.read(6)
    if not (magic.startswith(b"PK") or magic == b"\x93NUMPY"):
        raise InputError(f"--inputs {path}: not an .npz or .npy file (write one with numpy.savez)")
    try:
        data = np.load(path, allow_pickle=False)
        if isinstance(data, np.ndarray):
            data = {"arr_0": data}
        feeds = {k: data[k] for k in data.keys()}
    except (OSError, ValueError, EOFError) as e:  # a damaged archive, object arrays
        raise InputError(f"--inputs {path}: cannot read: {e}") from None
    names = [t.name for t in model.inputs]
    if list(feeds) == ["arr_0"] and len(names) == 1 and names[0] != "arr_0":
        feeds = {names[0]: feeds["arr_0"]}  # an unnamed array feeds a single-input model
    return feeds


def random_inputs(model, seed: int = 0):
    import numpy as np

    rng = np.random.default_rng(seed)
    feeds = {}
    for t in model.inputs:
        if np.issubdtype(t.dtype, np.floating):
            feeds[t.name] = rng.standard_normal(t.shape).astype(t.dtype)
        elif t.dtype == np.bool_:
            feeds[t.name] = rng.integers(0, 2, t.shape).astype(bool)
        else:
            info = np.iinfo(t.dtype)
            feeds[t.name] = rng.integers(max(info.min, -100), min(info.max, 100), t.shape).astype(t.dtype)
    return feeds


def _summary(arr) -> str:
    import numpy as np

    head = np.array2string(arr.ravel()[:6], precision=5, separator=", ")
    if arr.size == 0:
        return "empty"
    if arr.dtype == np.bool_:
        return f"true={int(arr.sum())} of {arr.size}  first={head}"
    a = arr.astype(np.float64)
    return f"min={a.min():.6g} max={a.max():.6g} mean={a.mean():.6g}  first={head}"


def _say_emulated(model) -> None:
    """A library for another ISA runs under qemu-user: say so, with the command."""
    emulator = getattr(model, "emulator", None)
    if emulator is not None:
        click.echo(f"qc: running under {emulator.describe()} ({model.target_triple} code on this machine)", err=True)


def save_npz(path: str, arrays) -> None:
    """What np.savez writes, to exactly `path`. np.savez itself takes the
    arrays as keyword arguments, so outputs named 'file' or 'allow_pickle'
    would clash with its parameters, and it appends .npz to other names."""
    import zipfile

    import numpy as np

    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED, allowZip64=True) as zf:
        for name, arr in arrays.items():
            with zf.open(f"{name}.npy", "w", force_zip64=True) as f:
                np.lib.format.write_array(f, np.asanyarray(arr), allow_pickle=False)


@main.command("run")
@click.argument("library")
@click.option("--inputs", "inputs_path", metavar="FILE",
              help=".npz with one array per input name (default: random inputs, seed 0).")
@click.option("-o", "--output", metavar="FILE", help="Save outputs to this .npz, by output name.")
@click.option("--threads", default=1, show_default=True, type=click.IntRange(1, 1024),
              help="Threads the run may use.")
@click.option("--check-finite", is_flag=True,
              help="Fail if a floating-point input holds NaN or Inf (default: they pass through, as in onnxruntime).")
@handle_errors
def run_cmd(library, inputs_path, output, threads, check_finite):
    """Run a compiled model and print each output."""
    import numpy as np

    from qc.runtime import load

    if output:
        check_writable(output)
    model = load(library, threads, check_finite)
    _say_emulated(model)
    feeds = _load_inputs(model, inputs_path)
    outs = model.run(feeds)
    for name, arr in outs.items():
        click.echo(f"{name}: {arr.dtype}{list(arr.shape)}  {_summary(arr)}")
    if output:
        save_npz(output, outs)
        click.echo(f"qc: saved {len(outs)} output(s) to {output}", err=True)


@main.command("bench")
@click.argument("library")
@click.option("--inputs", "inputs_path", metavar="FILE",
              help=".npz with one array per input (default: random inputs, seed 0).")
@click.option("--runs", default=50, show_default=True, type=click.IntRange(min=1), help="Timed runs.")
@click.option("--warmup", default=5, show_default=True, type=click.IntRange(min=0), help="Untimed runs first.")
@click.option("--threads", default=1, show_default=True, type=click.IntRange(1, 1024),
              help="Threads each run may use (1 by default: reproducible timing).")
@handle_errors
def bench_cmd(library, inputs_path, runs, warmup, threads):
    """Measure a compiled model's latency (median and min over --runs)."""
    import statistics

    from qc.runtime import load

    model = load(library, threads)
    _say_emulated(model)
    feeds = _load_inputs(model, inputs_path)
    for _ in range(warmup):
        model.run(feeds)
    emulated = hasattr(model, "time_runs")
    if emulated:  # timed inside the emulated process: the pipe to it is not the model's time
        times = [t * 1e3 for t in model.time_runs(feeds, runs)]
    else:
        times = []
        for _ in range(runs):
            t0 = time.perf_counter()
            model.run(feeds)
            times.append((time.perf_counter() - t0) * 1e3)
    click.echo(f"{library}: median {statistics.median(times):.4f} ms  min {min(times):.4f} ms  "
               f"({runs} runs, {warmup} warm-up, {threads} thread{'s' if threads > 1 else ''}"
               f"{', emulated time under qemu' if emulated else ''})")


@main.command("opt")
@click.argument("file", default="-")
@click.option("-p", "--pass-pipeline", "pipeline", default="", help="Passes: qc-* by name, others upstream.")
@click.option("--split-input-file", "-split-input-file", is_flag=True, help="Run each '// -----' chunk separately.")
@click.option("-o", "--output", metavar="FILE", help="Output file (default stdout).")
@click.option("--list-passes", is_flag=True, help="List qc's passes and exit.")
@handle_errors
def opt_cmd(file, pipeline, split_input_file, output, list_passes):
    """Run passes on an MLIR file (qc's passes and upstream ones)."""
    from qc import passes

    if list_passes:
        for name in passes.names():
            doc = (passes.get(name).__doc__ or "").strip().splitlines()[0]
            click.echo(f"{name:24s} {doc}")
        return
    from qc.mlir import MLIRError, ir, new_context

    if output:
        check_writable(output)
    text = sys.stdin.read() if file == "-" else _read_text(file)
    chunks = text.split("// -----") if split_input_file else [text]
    plist = passes.parse_pipeline(pipeline) if pipeline else []
    outs = []
    for chunk in chunks:
        with new_context(), ir.Location.unknown():
            try:
                module = ir.Module.parse(chunk)
            except MLIRError as e:
                from qc.passes.base import _diag

                raise QcError(f"{file}: cannot parse MLIR: {_diag(e)}") from None
            for p in plist:
                p.apply(module)
            outs.append(str(module))
    result = "\n// -----\n".join(outs)
    if output:
        with open(output, "w") as f:
            f.write(result)
    else:
        click.echo(result)


def _read_text(path: str) -> str:
    if os.path.isdir(path):
        raise OptionError(f"{path}: is a directory, expected an MLIR file")
    if not os.path.exists(path):
        raise OptionError(f"{path}: no such file")
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except UnicodeDecodeError:
        raise OptionError(f"{path}: not a text file (MLIR is UTF-8 text)") from None


@main.command("targets")
@handle_errors
def targets_cmd():
    """List the targets qc can generate code for."""
    from .targets import PRESETS, resolve

    row = "{:16s} {:27s} {:14s} {:14s} {}"
    click.echo(row.format("target", "triple", "cpu", "vector regs", "features"))
    for name in PRESETS:
        t = resolve(name)
        feats = t.features
        if name == "host":  # LLVM's detected list is long: the enabled ones, abridged
            feats = ",".join(f for f in feats.split(",") if f.startswith("+"))
            feats = feats if len(feats) <= 60 else feats[:57] + "..."
        click.echo(row.format(t.name, t.triple, t.cpu, t.vectors, f"{t.description}: {feats}"))
    click.echo("or TRIPLE[:CPU[:FEATURES]], e.g. riscv64-unknown-linux-gnu:generic-rv64:+v,+zvl512b")


# The function is named compile_cmd to avoid shadowing the builtin.
compile_cmd.name = "compile"
