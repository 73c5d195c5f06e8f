"""`kin-fold-fixed`: fixed joints become constant transforms folded into their neighbours.

A fixed joint's transform is a constant, so the chain `T · C1 · (C2 · M(q))` (a fixed joint, then
a movable joint with origin C2) is computed as `T · ((C1·C2) · M(q))`: the constant product is
made once at compile time, which is how Pinocchio merges fixed joints into the next joint's
placement.  Patterns:

    kin.fixed(arith.constant C0){C1}             -> arith.constant C0·C1
    kin.fixed(kin.fixed(T){C1}){C2}              -> kin.fixed(T){C1·C2}
    kin.compose(kin.fixed(T){C1}, J{origin C2})  -> kin.compose(T, J{origin C1·C2})   (J revolute or prismatic)
    kin.compose(arith.constant C1, J{origin C2}) -> J{origin C1·C2}

Products are `kin.compose`'s arithmetic in the element type.  Re-associating changes results
by rounding only (the audit log says so; ≤ 1e-15 on the URDF corpus), hence not `exact`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ir.dialects import arith, kin

from .base import Pass, PassContext
from .dce import function_ops
from .registry import register_pass
from .rewrite import OpPattern, Rewriter, apply_patterns


def _const_pose(v):
    """The 12 values of a constant pose operand, or None."""
    op = v.owner
    if isinstance(op, arith.ConstantOp) and op.results[0].type.shape == (kin.POSE,):
        return [float(x) for x in np.asarray(op.value).reshape(-1)]
    return None


def _product(el, A: list, B: list) -> np.ndarray:
    """A·B of two constant poses, with kin.compose's operations in the element type."""
    S = kin._Scalars(None, el)
    return np.asarray(kin.compose_pose(S, A, B, dense=True), el.numpy)


def _origin(op) -> list:
    return [float(x) for x in np.asarray(op.attributes["origin"].values).reshape(-1)]


def _with_origin(op, values, el):
    attrs = dict(op.attributes)
    attrs["origin"] = kin.dense_pose(values, el)
    return type(op)(
        operands=list(op.operands),
        result_types=[op.results[0].type],
        attributes=attrs,
        result_names=[op.results[0].name_hint],
        location=op.location,
    )


class FixedOfConstant(OpPattern):
    root = "kin.fixed"

    def match_and_rewrite(self, op, rewriter: Rewriter) -> bool:
        C0 = _const_pose(op.operands[0])
        if C0 is None:
            return False
        el = op.results[0].type.element
        new = arith.ConstantOp.build(_product(el, C0, _origin(op)), op.results[0].type, name=op.results[0].name_hint)
        rewriter.insert_before(op, new)
        rewriter.replace_op(op, new.results, "a fixed joint after a constant pose: one constant")
        return True


class FixedOfFixed(OpPattern):
    root = "kin.fixed"

    def match_and_rewrite(self, op, rewriter: Rewriter) -> bool:
        inner = op.operands[0].owner
        if not isinstance(inner, kin.FixedOp):
            return False
        el = op.results[0].type.element
        new = _with_origin(op, _product(el, _origin(inner), _origin(op)), el)
        rewriter.insert_before(op, new)
        rewriter.set_operand(new, 0, inner.operands[0], "")
        rewriter.replace_op(op, new.results, "two fixed joints: one constant transform")
        return True


class ComposeOfFixed(OpPattern):
    root = "kin.compose"

    def match_and_rewrite(self, op, rewriter: Rewriter) -> bool:
        left, joint = op.operands[0].owner, op.operands[1].owner
        if not isinstance(joint, (kin.RevoluteOp, kin.PrismaticOp)):
            return False
        el = op.results[0].type.element
        if isinstance(left, kin.FixedOp):
            C1, base = _origin(left), left.operands[0]
        else:
            C1, base = _const_pose(op.operands[0]), None
            if C1 is None:
                return False
        moved = _with_origin(joint, _product(el, C1, _origin(joint)), el)
        rewriter.insert_before(op, moved)
        if base is None:
            rewriter.replace_op(op, moved.results, "a constant pose folded into the joint's origin")
            return True
        new = kin.ComposeOp.make([base, moved.results[0]], op.results[0].type, name=op.results[0].name_hint)
        rewriter.insert_before(op, new)
        rewriter.replace_op(op, new.results, "a fixed joint folded into the next joint's origin")
        return True


@register_pass
@dataclass
class KinFoldFixed(Pass):
    """Fold fixed joints into constant transforms."""

    name = "kin-fold-fixed"
    summary = "fold fixed joints into constant transforms (into the next joint's origin); re-associates, so rounding may change"
    exact = False

    def apply(self, module, ctx: PassContext) -> None:
        ops = [op for op in function_ops(module) if op.name in ("kin.fixed", "kin.compose")]
        n = apply_patterns(ops, [FixedOfConstant(), FixedOfFixed(), ComposeOfFixed()], ctx.rewriter, what=self.name)
        ctx.stat("transforms-folded", n)
        if n:
            ctx.note("products of constant transforms are made at compile time: results change by rounding only")
        # the ops left without users (the folded fixed joints, the old joints) go
        from .dce import EraseDeadOp

        apply_patterns(reversed(function_ops(module)), [EraseDeadOp()], ctx.rewriter, what=self.name)
