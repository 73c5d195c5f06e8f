"""`dce`: dead-code elimination — side-effect-free ops whose results nobody uses are erased
(and, through the worklist, whatever only they used)."""

from __future__ import annotations

from dataclasses import dataclass

from ir.dialects import func
from ir.opdef import OpDef, Pure, Terminator

from .base import Pass, PassContext
from .registry import register_pass
from .rewrite import OpPattern, Rewriter, apply_patterns


def function_ops(module) -> list:
    """Ops directly inside function bodies, in order."""
    return [op for f in module.walk() if isinstance(f, func.FuncOp) for op in f.body.ops]


class EraseDeadOp(OpPattern):
    """A pure op with no used result."""

    def match_and_rewrite(self, op, rewriter: Rewriter) -> bool:
        if not isinstance(op, OpDef) or not op.has_trait(Pure) or op.has_trait(Terminator) or op.parent is None:
            return False
        if any(r.uses for r in op.results):
            return False
        rewriter.erase_op(op, "unused")
        return True


@register_pass
@dataclass
class DeadCodeElimination(Pass):
    """Erase unused side-effect-free ops."""

    name = "dce"
    summary = "erase side-effect-free ops whose results are unused"

    def apply(self, module, ctx: PassContext) -> None:
        # Last ops first: erasing a user before visiting its producers needs one visit each.
        n = apply_patterns(reversed(function_ops(module)), [EraseDeadOp()], ctx.rewriter, what=self.name)
        ctx.stat("ops-erased", n)
