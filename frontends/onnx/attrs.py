"""Reading node attributes with their ONNX defaults."""

from __future__ import annotations

import onnx
from onnx import helper


def attrs(node: onnx.NodeProto) -> dict:
    out = {}
    for a in node.attribute:
        v = helper.get_attribute_value(a)
        out[a.name] = v.decode() if isinstance(v, bytes) else v
    return out
