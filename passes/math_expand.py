"""`math-expand`: replace math ops by their algorithms, written as `arith` IR.

Like MLIR's `math-polynomial-approximation`: each `math.exp`, `math.log1p`, `math.log`,
`math.sin`, `math.cos`, `math.tanh`, `math.erfinv` (and CatBoost's `math.exp {impl = "fmath"}`)
becomes the integer and float operations of its one algorithm (`ir/dialects/mathimpl/`), and
`math.sigmoid` / `math.softmax` become their formulas.  The result computes the same bits as the
interpreter's `math="timber"` mode and every back-end, which lower math ops through the same
expansions; the pass lets a user see (and rewrite) them.  `keep=exp,log1p` leaves those
functions as ops (a target that calls the C library for them, like the host JIT's `math="libm"`).
"""

from __future__ import annotations

from dataclasses import dataclass

from ir.dialects import mathimpl
from ir.dialects.math import LIBM, libm_function

from .base import Pass, PassContext, option
from .dce import function_ops
from .registry import register_pass


@register_pass
@dataclass
class MathExpand(Pass):
    """Expand math ops into arith."""

    name = "math-expand"
    summary = "replace math ops by their arith algorithms (sigmoid/softmax by their formulas)"
    keep: str = option("comma-separated functions to leave as ops (of: " + ", ".join(sorted(LIBM.values())) + ")", "")

    def check_options(self):
        unknown = [k for k in self._kept() if k not in LIBM.values()]
        if unknown:
            return ("keep", f"unknown function '{unknown[0]}'; known: {', '.join(sorted(LIBM.values()))}")
        return None

    def _kept(self) -> list[str]:
        return [k.strip() for k in self.keep.split(",") if k.strip()]

    def apply(self, module, ctx: PassContext) -> None:
        kept = set(self._kept())
        work = [op for op in function_ops(module) if _math(op)]
        while work:
            op = work.pop(0)
            if libm_function(op) in kept:
                continue
            ops, out = mathimpl.expand(op, *op.operands)
            for new in ops:
                ctx.rewriter.insert_before(op, new)
            ctx.rewriter.replace_op(op, [out], f"expanded into {len(ops)} ops")
            ctx.stat(f"{op.name}-expanded")
            work = [o for o in ops if _math(o)] + work


def _math(op) -> bool:
    """A `math` op with an expansion (other dialects' expansions have passes of their own)."""
    return op.name.startswith("math.") and mathimpl.expandable(op)
