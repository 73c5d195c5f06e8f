"""`convert-kin-to-arith`: every kin op becomes its `arith` expansion (`ir/dialects/kin.py`).

Each pose entry becomes a `tensor<1xT>` value, so the result is straight-line scalar code per
configuration: the row-batched LLVM back-end runs it with one SIMD lane per configuration, and
C99, WebAssembly and the object back-ends see only `arith` and `math` ops.  The expansion is
what the interpreter runs for kin ops, so the pass changes no bit.
"""

from __future__ import annotations

from dataclasses import dataclass

from ir.dialects import kin

from .base import Pass, PassContext
from .dce import function_ops
from .registry import register_pass


@register_pass
@dataclass
class ConvertKinToArith(Pass):
    """Lower kin ops to arith."""

    name = "convert-kin-to-arith"
    summary = "replace kin ops (joints, composition, Jacobian columns) by their arith/math expansion"

    def apply(self, module, ctx: PassContext) -> None:
        for op in function_ops(module):
            if not isinstance(op, kin.KIN_OPS):
                continue
            ops, out = kin.expand(op)
            for new in ops:
                ctx.rewriter.insert_before(op, new)
            ctx.rewriter.replace_op(op, [out], f"expanded into {len(ops)} ops")
            ctx.stat(f"{op.name}-expanded")
