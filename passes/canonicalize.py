"""`canonicalize`: constant folding and identity elimination, for arith ops and tree ensembles.

Every fold computes with the same numpy operation, in the same precision, as the interpreter
(`ir/interpreter.py`), so a folded constant has the bits the unfolded op would have produced.
Identities are the IEEE-exact ones only: `x + -0.0`, `x - 0.0`, `x * 1.0`, `x / 1.0`,
`-(-x)`, `truncf(extf(x))`, `select(c, a, a)`.  (`x + 0.0` is not one: it turns -0.0 into 0.0.)

Ops left unused are erased (as `dce` does).  Trees: a single-leaf tree adds a constant, so the first tree writing some outputs folds into
`init` (`init + leaf`, rounded as the ensemble rounds every addition), a single-leaf tree of
-0.0 anywhere is dropped (adding -0.0 changes nothing), and an ensemble left with no trees
becomes an `arith.constant` of its `init`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ir.attributes import DenseElementsAttr
from ir.dialects import arith
from ir.dialects.tree import EnsembleOp, NodeTable, ObliviousOp, Pred

from .base import Pass, PassContext
from .dce import EraseDeadOp, function_ops
from .registry import register_pass
from .rewrite import OpPattern, Rewriter, apply_patterns


def constant_value(v) -> np.ndarray | None:
    """The values of `v` if an `arith.constant` defines it."""
    op = v.owner
    return op.value if isinstance(op, arith.ConstantOp) else None


def _uniform(values: np.ndarray | None, bits_of: float) -> bool:
    """Every element has exactly the bits of `bits_of` (so -0.0 and 0.0 differ)."""
    if values is None or values.size == 0:
        return False
    target = np.array(bits_of, values.dtype)
    return values.tobytes() == np.broadcast_to(target, values.shape).tobytes()


def _cmpf(pred: str, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        unordered = np.isnan(a) | np.isnan(b)
        rel = pred[1:]
        if rel == "rd":
            return ~unordered
        if rel == "no":
            return unordered
        r = {"eq": a == b, "gt": a > b, "ge": a >= b, "lt": a < b, "le": a <= b, "ne": a != b}[rel]
        return (r & ~unordered) if pred[0] == "o" else (r | unordered)


_FOLDERS = {
    arith.AddFOp: lambda op, a, b: a + b,
    arith.SubFOp: lambda op, a, b: a - b,
    arith.MulFOp: lambda op, a, b: a * b,
    arith.DivFOp: lambda op, a, b: a / b,
    # As the op docstrings define them: NaN operands win (a first), ties (±0 too) give b.
    arith.MaximumFOp: lambda op, a, b: np.where(np.isnan(a), a, np.where(np.isnan(b), b, np.where(a > b, a, b))),
    arith.MinimumFOp: lambda op, a, b: np.where(np.isnan(a), a, np.where(np.isnan(b), b, np.where(a < b, a, b))),
    arith.NegFOp: lambda op, a: -a,
    arith.CmpFOp: lambda op, a, b: _cmpf(op.attributes["predicate"].value, a, b),
    arith.SelectOp: lambda op, c, a, b: np.where(c, a, b),
    arith.ExtFOp: lambda op, a: a.astype(op.results[0].type.element.numpy),
    arith.TruncFOp: lambda op, a: a.astype(op.results[0].type.element.numpy),
    arith.SIToFPOp: lambda op, a: a.astype(op.results[0].type.element.numpy),
}


class FoldConstantOp(OpPattern):
    """An arith op whose operands are all constants → a constant."""

    def match_and_rewrite(self, op, rewriter: Rewriter) -> bool:
        folder = _FOLDERS.get(type(op))
        if folder is None:
            return False
        vals = [constant_value(v) for v in op.operands]
        if any(v is None for v in vals):
            return False
        with np.errstate(all="ignore"):
            out = folder(op, *vals)
        t = op.results[0].type
        c = arith.ConstantOp(result_types=[t], attributes={"value": DenseElementsAttr(out, t)}, result_names=[op.results[0].name_hint])
        rewriter.insert_before(op, c)
        rewriter.replace_op(op, [c.results[0]], "constant folded")
        return True


class RemoveIdentity(OpPattern):
    """Ops that return one of their operands unchanged, bit for bit, for every input."""

    def match_and_rewrite(self, op, rewriter: Rewriter) -> bool:
        keep = self._kept(op)
        if keep is None or keep.type != op.results[0].type:
            return False
        rewriter.replace_op(op, [keep], "identity")
        return True

    @staticmethod
    def _kept(op):
        ops = op.operands
        if isinstance(op, arith.AddFOp):
            if _uniform(constant_value(ops[1]), -0.0):
                return ops[0]
            if _uniform(constant_value(ops[0]), -0.0):
                return ops[1]
        elif isinstance(op, arith.SubFOp):
            if _uniform(constant_value(ops[1]), 0.0):
                return ops[0]
        elif isinstance(op, arith.MulFOp):
            if _uniform(constant_value(ops[1]), 1.0):
                return ops[0]
            if _uniform(constant_value(ops[0]), 1.0):
                return ops[1]
        elif isinstance(op, arith.DivFOp):
            if _uniform(constant_value(ops[1]), 1.0):
                return ops[0]
        elif isinstance(op, arith.NegFOp):
            inner = ops[0].owner
            if isinstance(inner, arith.NegFOp):
                return inner.operands[0]
        elif isinstance(op, arith.TruncFOp):
            inner = ops[0].owner
            if isinstance(inner, arith.ExtFOp):
                return inner.operands[0]
        elif isinstance(op, arith.SelectOp):
            c = constant_value(ops[0])
            if ops[1] is ops[2]:
                return ops[1]
            if c is not None and c.all():
                return ops[1]
            if c is not None and not c.any():
                return ops[2]
        return None


def _constant_tree(op) -> np.ndarray | None:
    """The leaf vector of a tree that is a single plain leaf, else None."""
    t = op.table
    if isinstance(op, ObliviousOp):
        return t.leaf[0] if t.depth == 0 else None
    if isinstance(t, NodeTable) and t.n_nodes == 1 and t.pred[0] == Pred.LEAF and not t.is_linear:
        return t.leaf[0]
    return None


class FoldConstantTrees(OpPattern):
    """Single-leaf trees: into `init` when first on their outputs, dropped when they add -0.0."""

    root = "tree.ensemble"

    def match_and_rewrite(self, ens: EnsembleOp, rewriter: Rewriter) -> bool:
        acc = ens.results[0].type.element.numpy
        written = np.zeros(ens.n_outputs, bool)
        for op in list(ens.trees):
            leaf = _constant_tree(op)
            span = slice(op.out, op.out + op.table.leaf_dim)
            if leaf is not None:
                if _uniform(leaf.astype(acc), -0.0):
                    rewriter.erase_op(op, "tree adds -0.0")
                    return True
                if not written[span].any():
                    init = ens.attributes["init"].values.copy()
                    with np.errstate(all="ignore"):
                        init[span] = init[span] + leaf.astype(acc)
                    rewriter.set_attr(ens, "init", DenseElementsAttr(init, ens.results[0].type), "constant tree folded into init")
                    rewriter.erase_op(op, "constant tree folded into init")
                    return True
            written[span] = True
        return False


class EmptyEnsemble(OpPattern):
    """An ensemble with no trees is its `init`."""

    root = "tree.ensemble"

    def match_and_rewrite(self, ens: EnsembleOp, rewriter: Rewriter) -> bool:
        if ens.trees:
            return False
        t = ens.results[0].type
        c = arith.ConstantOp(
            result_types=[t],
            attributes={"value": DenseElementsAttr(ens.attributes["init"].values, t)},
            result_names=[ens.results[0].name_hint],
        )
        rewriter.insert_before(ens, c)
        rewriter.replace_op(ens, [c.results[0]], "ensemble without trees")
        return True


# Dead ops go too, as in MLIR's canonicalizer: a fold often leaves its inputs unused.
PATTERNS = (EraseDeadOp(), FoldConstantOp(), RemoveIdentity(), FoldConstantTrees(), EmptyEnsemble())


@register_pass
@dataclass
class Canonicalize(Pass):
    """Fold constants and remove identities."""

    name = "canonicalize"
    summary = "constant folding and exact identity elimination (arith ops, constant trees, empty ensembles)"

    def apply(self, module, ctx: PassContext) -> None:
        n = apply_patterns(function_ops(module), PATTERNS, ctx.rewriter, what=self.name)
        ctx.stat("rewrites", n)
