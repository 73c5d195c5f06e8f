"""`kin-share-sincos`: a mimic joint that turns with its source (multiplier ±1, offset 0) reuses
the source's sin/cos (or position) instead of computing its own.

    kin.revolute(kin.sincos(kin.mimic(q){m = ±1, offset = 0})){axis u}  -> kin.revolute(kin.sincos(q)){axis ±u}
    kin.prismatic(kin.mimic(q){m = ±1, offset = 0}){axis u}             -> kin.prismatic(q){axis ±u}

Rot(u, −θ) = Rot(−u, θ) and (−q)·u = q·(−u) hold bit for bit (sin is odd, cos even, in every
math implementation Timber uses), so the pass is exact; `cse` then merges the duplicate sincos.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ir.attributes import DenseElementsAttr, StringAttr
from ir.dialects import kin

from .base import Pass, PassContext
from .dce import EraseDeadOp, function_ops
from .registry import register_pass
from .rewrite import OpPattern, Rewriter, apply_patterns


def _follower(v):
    """(source value, sign) when v = kin.mimic(source) with multiplier ±1 and offset 0."""
    op = v.owner
    if not isinstance(op, kin.MimicOp) or op.attributes["offset"].value != 0.0:
        return None
    m = op.attributes["multiplier"].value
    return (op.operands[0], m) if m in (1.0, -1.0) else None


def _flipped(axis):
    if isinstance(axis, StringAttr):
        return StringAttr(axis.value[1:] if axis.value.startswith("-") else "-" + axis.value)
    return DenseElementsAttr(-np.asarray(axis.values), axis.type)


class ShareJoint(OpPattern):
    def match_and_rewrite(self, op, rewriter: Rewriter) -> bool:
        if isinstance(op, kin.RevoluteOp):
            sc = op.operands[0].owner
            if not isinstance(sc, kin.SinCosOp):
                return False
            hit = _follower(sc.operands[0])
            if hit is None:
                return False
            src, m = hit
            new_sc = kin.SinCosOp.make([src], sc.results[0].type, name=src.name_hint and "sc_" + src.name_hint.removeprefix("q_"))
            rewriter.insert_before(op, new_sc)
            operand = new_sc.results[0]
        elif isinstance(op, kin.PrismaticOp):
            hit = _follower(op.operands[0])
            if hit is None:
                return False
            src, m = hit
            operand = src
        else:
            return False
        attrs = dict(op.attributes)
        if m < 0:
            attrs["axis"] = _flipped(attrs["axis"])
        new = type(op)(
            operands=[operand],
            result_types=[op.results[0].type],
            attributes=attrs,
            result_names=[op.results[0].name_hint],
            location=op.location,
        )
        rewriter.insert_before(op, new)
        rewriter.replace_op(op, new.results, "turns with its source joint: shares its sin/cos")
        return True


@register_pass
@dataclass
class KinShareSinCos(Pass):
    """Share sin/cos between a joint and its mimics."""

    name = "kin-share-sincos"
    summary = "a mimic joint with multiplier ±1 and no offset reuses its source's sin/cos (exact)"

    def apply(self, module, ctx: PassContext) -> None:
        ops = [op for op in function_ops(module) if isinstance(op, (kin.RevoluteOp, kin.PrismaticOp))]
        n = apply_patterns(ops, [ShareJoint()], ctx.rewriter, what=self.name)
        ctx.stat("joints-shared", n)
        apply_patterns(reversed(function_ops(module)), [EraseDeadOp()], ctx.rewriter, what=self.name)
