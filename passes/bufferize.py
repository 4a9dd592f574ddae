from dataclasses import dataclass

from qc.mlir import ir, linalg, memref

from .base import Pass, collect_ops, run_upstream


@dataclass(frozen=True)
class Bufferize(Pass):
    """Tensors → memrefs, with results passed as out-parameters.

    Needs linalg on tensors. Leaves the entry function in destination-passing
    style, `(inputs..., outputs...) -> ()` on identity-layout memrefs, which
    is the model ABI: the caller owns every input and output buffer. Results
    are written straight into the out-parameters (hoist-static-allocs), so a
    model does not copy its outputs; intermediates stay memref.alloc.

    Copies that bufferization inserts (tensor.pad into a strided subview, an
    output that is an input) become linalg.copy, so they are lowered to loops
    that LLVM vectorizes instead of per-element calls to a runtime helper.
    """

    name = "qc-bufferize"

    def apply(self, module):
        # The caller owns the inputs: bufferization must not write into them
        # (an op whose output buffer folds to an argument would, by default).
        for fn in collect_ops(module.operation, ("func.func",)):
            if fn.is_external or fn.sym_visibility is not None:
                continue  # only public functions with bodies are called from outside
            n = len(fn.type.inputs)
            fn.arg_attrs = ir.ArrayAttr.get([
                ir.DictAttr.get({"bufferization.writable": ir.BoolAttr.get(False)}) for _ in range(n)
            ])
        run_upstream(
            self.name,
            "one-shot-bufferize{bufferize-function-boundaries "
            "function-boundary-type-conversion=identity-layout-map},canonicalize,cse",
            module,
        )
        _distinct_results(module)
        # modify-public-functions: the entry is public, it is the ABI.
        run_upstream(
            self.name,
            "buffer-results-to-out-params{modify-public-functions hoist-static-allocs},canonicalize",
            module,
        )
        for copy in collect_ops(module.operation, ("memref.copy",)):
            with ir.InsertionPoint(copy.operation), copy.location:
                linalg.copy(copy.operands[0], outs=[copy.operands[1]])
            copy.operation.erase()


def _distinct_results(module: ir.Module) -> None:
    """Gives every returned memref its own buffer.

    Two graph outputs can be the same value (two identical nodes merged by
    CSE); buffer-results-to-out-params crashes on a value returned twice, and
    each output needs its own out-parameter anyway. Later occurrences become
    copies; at the memref level CSE cannot merge them back.
    """
    for ret in collect_ops(module.operation, ("func.return",)):
        seen = set()
        for i, v in enumerate(list(ret.operands)):
            if not isinstance(v.type, ir.MemRefType):
                continue
            if v in seen:
                with ir.InsertionPoint(ret.operation), ret.location:
                    ty = ir.MemRefType.get(ir.MemRefType(v.type).shape, ir.MemRefType(v.type).element_type)
                    dup = memref.AllocOp(ty, [], []).result
                    memref.CopyOp(v, dup)
                ret.operation.operands[i] = dup
            seen.add(v)
