"""qc-round-to-integer: a float rounded half to even and then converted to
an integer is one rounding conversion.

    llvm.fptosi(llvm.intr.roundeven(x))  ->  llvm.intr.lrint(x)

x86 has no instruction for the pair: LLVM emits a round (vrndscaleps, two
uops for a zmm) and a truncating conversion (vcvttps2dq). lrint converts in
the current rounding mode, which is round half to even: vcvtps2dq alone
(RVV vfcvt.x.f.v; AArch64 keeps frintx and fcvtzs), for scalars and vectors
alike. The values agree wherever the pair's is defined: fptosi of a value
outside the integer type is poison, and lrint's is unspecified. LLVM
already assumes the default floating-point environment for every float op
it folds; qc's runtime never changes the rounding mode.

QuantizeLinear (clamp, then round and convert: frontends/onnx/quant.py) and
the exponent of qc-approximate-math's exp are the pairs this finds.

Needs the LLVM dialect (after qc-lower-to-llvm). The roundeven must have no
other use; otherwise both stay.
"""

from __future__ import annotations

from dataclasses import dataclass

from qc.mlir import ir

from .base import Pass, collect_ops


@dataclass(frozen=True)
class RoundToInteger(Pass):
    name = "qc-round-to-integer"

    def apply(self, module: ir.Module) -> None:
        for conv in collect_ops(module.operation, ("llvm.fptosi",)):
            src = conv.operation.operands[0]
            owner = src.owner
            if not isinstance(owner, ir.OpView) or owner.operation.name != "llvm.intr.roundeven":
                continue
            if len(list(src.uses)) != 1:
                continue
            with ir.InsertionPoint(conv), conv.location:
                lrint = ir.Operation.create("llvm.intr.lrint", results=[conv.result.type],
                                            operands=[owner.operation.operands[0]])
            conv.result.replace_all_uses_with(lrint.result)
            conv.operation.erase()
            owner.operation.erase()
