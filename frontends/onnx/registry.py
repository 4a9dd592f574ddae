"""Op importers, keyed by ONNX op type.

An importer is `fn(ctx: ImportContext, node: onnx.NodeProto) -> list[T]`,
returning one value per node output. Each op family lives in its own module
and registers its ops with `@importer("OpType", ...)`; ops of another domain
with `@importer("OpType", domain="com.microsoft")`, keyed "domain::OpType".
"""

from __future__ import annotations

from typing import Callable

IMPORTERS: dict[str, Callable] = {}

DEFAULT_DOMAINS = ("", "ai.onnx")


def op_key(domain: str, op_type: str) -> str:
    """The registry key of an op: its type in the default domain, "domain::OpType" elsewhere."""
    return op_type if domain in DEFAULT_DOMAINS else f"{domain}::{op_type}"


def importer(*op_types: str, domain: str = ""):
    def register(fn):
        for op in op_types:
            key = op_key(domain, op)
            assert key not in IMPORTERS, f"{key} registered twice"
            IMPORTERS[key] = fn
        return fn

    return register


# Modules of this package that are not op families.
_NOT_OP_FAMILIES = {"attrs", "builder", "graph_opt", "importer", "registry"}
_loaded = False


def load_all() -> dict[str, Callable]:
    """Imports every op-family module of this package (each registers itself) once."""
    global _loaded
    if not _loaded:
        import importlib
        import pkgutil

        for info in pkgutil.iter_modules(_package_path()):
            if info.name not in _NOT_OP_FAMILIES and not info.name.startswith("_"):
                importlib.import_module(f"{__package__}.{info.name}")
        _loaded = True
    return IMPORTERS


def _package_path() -> list[str]:
    import os

    return [os.path.dirname(__file__)]


def supported_ops() -> list[str]:
    return sorted(load_all())
