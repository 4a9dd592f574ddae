"""qc's passes, one per file, and the pipelines that assemble them.

`PASSES` maps each CLI name to its class, imported lazily so that `import
qc.passes` costs nothing until a pass is used.
"""

from __future__ import annotations

import importlib
import re

from qc.errors import OptionError

# CLI name -> "module:Class", sorted by name.
_REGISTRY = {
    "qc-approximate-math": "approximate_math:ApproximateMath",
    "qc-bool-memory": "bool_memory:BoolMemory",
    "qc-border-columns": "border_columns:BorderColumns",
    "qc-bufferize": "bufferize:Bufferize",
    "qc-channels-last-depthwise": "channels_last_depthwise:ChannelsLastDepthwise",
    "qc-collapse-dims": "collapse_dims:CollapseDims",
    "qc-conv-to-gemm": "conv_to_gemm:ConvToGemm",
    "qc-depthwise-conv": "depthwise_conv:DepthwiseConv",
    "qc-divide-by-constant": "divide_by_constant:DivideByConstant",
    "qc-linalg-cleanup": "linalg_cleanup:LinalgCleanup",
    "qc-lower-binary-gemm": "binary_gemm:LowerBinaryGemm",
    "qc-lower-gemm": "lower_gemm:LowerGemm",
    "qc-lower-qgemm": "lower_qgemm:LowerQGemm",
    "qc-lower-to-affine": "lower_to_affine:LowerToAffine",
    "qc-lower-to-llvm": "lower_to_llvm:LowerToLLVM",
    "qc-lower-to-scf": "lower_to_scf:LowerToScf",
    "qc-narrow-gemm": "narrow_gemm:NarrowGemm",
    "qc-outline-ops": "outline_ops:OutlineOps",
    "qc-pad-border": "pad_border:PadBorder",
    "qc-parallel-loops": "parallel_loops:ParallelLoops",
    "qc-plan-memory": "plan_memory:PlanMemory",
    "qc-pool-window": "pool_window:PoolWindow",
    "qc-qconv-to-gemm": "qconv_to_gemm:QConvToGemm",
    "qc-qdepthwise-conv": "qdepthwise_conv:QDepthwiseConv",
    "qc-round-to-integer": "round_to_integer:RoundToInteger",
    "qc-slices-in-place": "slices_in_place:SlicesInPlace",
    "qc-unshare-inits": "unshare_inits:UnshareInits",
    "qc-pad-into-producer": "pad_into_producer:PadIntoProducer",
    "qc-vector-qdepthwise": "vector_qdepthwise:VectorQDepthwise",
    "qc-vector-reductions": "vector_reductions:VectorReductions",
    "qc-vector-requant": "vector_requant:VectorRequant",
    "qc-winograd-conv": "winograd_conv:WinogradConv",
    "qc-winograd-loops": "winograd_loops:WinogradLoops",
}


def names() -> list[str]:
    return sorted(_REGISTRY)


def get(name: str):
    """The pass class registered under `name`."""
    if name not in _REGISTRY:
        raise OptionError(f"unknown qc pass '{name}'; qc passes: {', '.join(names())}")
    mod, cls = _REGISTRY[name].split(":")
    return getattr(importlib.import_module(f"{__name__}.{mod}"), cls)


def _split_top_level(text: str) -> list[str]:
    items, depth, cur = [], 0, ""
    for ch in text:
        if ch in "({":
            depth += 1
        elif ch in ")}":
            depth -= 1
        if ch == "," and depth == 0:
            items.append(cur.strip())
            cur = ""
        else:
            cur += ch
    if cur.strip():
        items.append(cur.strip())
    return items


def _make(item: str):
    import dataclasses

    m = re.fullmatch(r"([\w.-]+)(?:\{(.*)\})?", item, re.S)
    if not m:
        raise OptionError(f"cannot parse pass '{item}'")
    cls = get(m.group(1))
    fields = {f.name: f for f in dataclasses.fields(cls)}
    kwargs = {}
    for opt in (m.group(2) or "").split():
        key, _, val = opt.partition("=")
        field = key.replace("-", "_")
        if field not in fields:
            valid = ", ".join(f.replace("_", "-") for f in fields) or "none"
            raise OptionError(f"{cls.name}: unknown option '{key}'; options: {valid}")
        ty = type(fields[field].default)
        if ty is bool:
            if val not in ("", "true", "false", "1", "0"):
                raise OptionError(f"{cls.name}: option '{key}' takes true or false, got '{val}'")
            kwargs[field] = val in ("", "true", "1")
        else:
            try:
                kwargs[field] = ty(val)
            except ValueError:
                raise OptionError(f"{cls.name}: option '{key}' takes a {ty.__name__}, got '{val}'") from None
    return cls(**kwargs)


def parse_pipeline(text: str):
    """A pass list from text: qc passes by name, anything else upstream.

    'qc-bufferize,canonicalize' runs qc's Bufferize, then upstream
    canonicalize. A 'builtin.module(...)' wrapper is optional. Consecutive
    upstream items are run by one MLIR PassManager.
    """
    from .base import Upstream

    text = text.strip()
    m = re.fullmatch(r"builtin\.module\((.*)\)", text, re.S)
    if m:
        text = m.group(1)
    passes, upstream = [], []
    for item in _split_top_level(text):
        if item.startswith("qc-"):
            if upstream:
                passes.append(Upstream(",".join(upstream)))
                upstream = []
            passes.append(_make(item))
        else:
            upstream.append(item)
    if upstream:
        passes.append(Upstream(",".join(upstream)))
    return passes
