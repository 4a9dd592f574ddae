"""Errors qc reports to its users.

Every user-facing failure is a QcError whose message is one line saying what is
wrong, where, and what to do. The CLI prints it and exits 1; `--debug` shows the
traceback. A bug in qc is an `assert`, not a QcError.
"""


class QcError(Exception):
    """A one-line, user-facing error."""


class ModelError(QcError):
    """The model file is missing, malformed or uses something qc cannot compile."""


class UnsupportedOp(ModelError):
    def __init__(self, node, what: str, supported: str = ""):
        name = node.name or "<unnamed>"
        msg = f"node '{name}' ({node.op_type}): {what}"
        if supported:
            msg += f"; supported: {supported}"
        super().__init__(msg)


class OptionError(QcError):
    """A bad option value (CLI flag or API argument)."""


class PassFailed(QcError):
    def __init__(self, pass_name: str, msg: str):
        super().__init__(f"{pass_name}: {msg}")


class ToolError(QcError):
    """An external tool (the C compiler, the linker) failed."""

    def __init__(self, cmd: list[str], stderr: str, hint: str = ""):
        self.cmd = cmd
        self.stderr = stderr
        first = next((l for l in stderr.splitlines() if "error" in l.lower()), "")
        if not first:
            first = stderr.strip().splitlines()[-1] if stderr.strip() else "no output"
        msg = f"'{cmd[0]}' failed: {first.strip()}  (command: {' '.join(cmd)})"
        if hint:
            msg += f"; {hint}"
        super().__init__(msg)
