"""`convert-kin-to-arith`: every kin op becomes its `arith` expansion (`ir/dialects/kin.py`).

Each pose entry becomes a `tensor<1xT>` value, so the result is straight-line scalar code per
configuration: the row-batched LLVM back-end runs it with one SIMD lane per configuration, and
C99, WebAssembly and the object back-ends see only `arith` and `math` ops.

The pass follows each pose entry across ops: an entry known at compile time (a structural 0 or 1
of a joint, a constant origin) stays a constant, and products with a constant 0 are left out of
`kin.compose` as well (the op-by-op expansion the interpreter runs multiplies every entry of two
poses).  For finite inputs the results are the same bits up to the sign of an exact zero; a NaN
or infinite q reaches fewer entries (those a real product with it computes).
"""

from __future__ import annotations

from dataclasses import dataclass

from ir.dialects import kin
from ir.dialects.mathimpl.dsl import E, Emitter

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
        known: dict[int, list] = {}  # lowered value -> its entries (Values, or floats known now)
        for op in function_ops(module):
            if not isinstance(op, kin.KIN_OPS):
                continue
            em = Emitter((1,), op.location)
            xs = [known.get(id(v)) or em.wrap(v) for v in op.operands]
            entries = kin.expand_kin(op, *xs, em=em, entries=True, dense=False)
            S = kin._Scalars(em, op.results[0].type.element)
            out = S.join(entries).v
            if op.results[0].name_hint and out.name_hint is None:
                out.name_hint = op.results[0].name_hint
            for new in em.ops:
                ctx.rewriter.insert_before(op, new)
            ctx.rewriter.replace_op(op, [out], f"expanded into {len(em.ops)} ops")
            known[id(out)] = [e.v if isinstance(e, E) else e for e in entries]
            ctx.stat(f"{op.name}-expanded")
