"""Op importers, keyed by ONNX op type.

An importer is `fn(ctx: ImportContext, node: onnx.NodeProto) -> list[T]`,
returning one value per node output. Each op family lives in its own module
and registers its ops with `@importer("OpType", ...)`.
"""

from __future__ import annotations

from typing import Callable

IMPORTERS: dict[str, Callable] = {}


def importer(*op_types: str):
    def register(fn):
        for op in op_types:
            assert op not in IMPORTERS, f"{op} registered twice"
            IMPORTERS[op] = fn
        return fn

    return register


def load_all() -> dict[str, Callable]:
    """Imports every op-family module (each registers itself) once."""
    from . import elementwise, math_ops, shape_ops, softmax  # noqa: F401

    return IMPORTERS


def supported_ops() -> list[str]:
    return sorted(load_all())
