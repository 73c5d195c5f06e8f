"""`tree-prune-leaves{tolerance=T}`: lossy leaf pruning, only when asked for.

The original Timber's "dead leaf elimination" replaced small leaves by their siblings with no
bound on the damage.  Here a subtree collapses into one leaf holding the midpoint of its leaf
values when that moves no row's tree output by more than T: every maximal such subtree of every
tree is collapsed.  The error already spent is recorded on the tree (`tree.prune_error`), and
later runs only spend what is left, so running the pass again changes nothing and the per-tree
error never exceeds T.  The audit log reports the resulting bound on every ensemble output
(Σ of the per-tree errors, before accumulation rounding).  Linear-leaf trees are left alone.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from ir.attributes import FloatAttr
from ir.dialects.tree import Pred
from ir.types import f64

from .base import Pass, PassContext, option
from .forest import Forest, ensembles, forest_of
from .registry import register_pass
from .tree_rewrite import TreeGraph, TreePattern, TreeRewriter, apply_tree_patterns, commit_tree_graph, tree_graph_of

PRUNE_ERROR = "tree.prune_error"


def _exact_total(mid: float, lo: float, hi: float, used: float) -> Fraction:
    m = Fraction(mid)
    return max(m - Fraction(lo), Fraction(hi) - m) + Fraction(used)


def _round_up(x: Fraction) -> float:
    v = float(x)
    return v if Fraction(v) >= x else math.nextafter(v, math.inf)


class CollapseSubtree(TreePattern):
    """A subtree marked by the analysis → one leaf with its midpoint value."""

    def match_and_rewrite(self, tg: TreeGraph, n: int, rewriter: TreeRewriter) -> bool:
        value = tg.g.nodes[n].get("collapse_to")
        if value is None or tg.kids(n) is None:
            return False
        rewriter.make_leaf(n, value)
        del tg.g.nodes[n]["collapse_to"]
        return True


@register_pass
@dataclass
class PruneLeaves(Pass):
    """Collapse subtrees whose leaves all lie within a tolerance of their midpoint."""

    name = "tree-prune-leaves"
    summary = "lossy: collapse subtrees whose leaves differ by little into one leaf; each tree's output moves by at most `tolerance`"
    exact = False
    tolerance: float = option("largest change of one tree's output allowed for any row")

    def check_options(self):
        if not (self.tolerance >= 0 and math.isfinite(self.tolerance)):
            return "tolerance", f"must be a finite number >= 0, found {self.tolerance!r}"
        return None

    def apply(self, module, ctx: PassContext) -> None:
        tol = float(self.tolerance)
        for ens in ensembles(module):
            f = forest_of(ens, ctx)
            if f.n == 0:
                continue
            per_tree_error = self._prune(f, tol, ctx)
            # Bound on each output: the sum of the errors of the trees that write it.
            bound = np.zeros(ens.n_outputs)
            for op in ens.trees:
                a = op.attributes.get(PRUNE_ERROR)
                if a is not None:
                    bound[op.out : op.out + op.table.leaf_dim] += a.value
            worst = float(bound.max()) if len(bound) else 0.0
            ctx.stat("max-output-error", worst)
            if per_tree_error:
                ctx.note(
                    f"tolerance {tol:g} per tree; every output of this ensemble moves by at most {worst:.6g} "
                    f"(sum of per-tree errors, before accumulation rounding); largest tree error {max(per_tree_error):.6g}"
                )

    def _prune(self, f: Forest, tol: float, ctx: PassContext) -> list[float]:
        # Trees of one ensemble may have different leaf widths: pad with zeros (which cost nothing).
        dim = max(op.table.leaf_dim for op in f.ops)
        lo = np.zeros((f.n, dim))
        used = np.zeros(len(f.ops))
        linear = np.zeros(f.n, bool)
        for t, op in enumerate(f.ops):
            s = slice(int(f.offsets[t]), int(f.offsets[t + 1]))
            lo[s, : op.table.leaf_dim] = op.table.leaf.astype(np.float64)
            a = op.attributes.get(PRUNE_ERROR)
            used[t] = a.value if a is not None else 0.0
            linear[s] = op.table.is_linear
        hi = lo.copy()
        for level in f.levels_bottom_up():
            lo[level] = np.minimum(lo[f.yes[level]], lo[f.no[level]])  # NaN propagates: never collapsible
            hi[level] = np.maximum(hi[f.yes[level]], hi[f.no[level]])
            linear[level] = linear[f.yes[level]] | linear[f.no[level]]
        ldt = f.ops[0].table.leaf.dtype
        with np.errstate(invalid="ignore", over="ignore"):
            mid = (lo / 2 + hi / 2).astype(ldt).astype(np.float64)
            err = np.maximum(mid - lo, hi - mid).max(axis=1) + used[f.tree]
        ok = np.isfinite(err) & ~linear & (f.pred != Pred.LEAF)
        # Float arithmetic decides clear cases; exact rationals decide the close ones.
        close = ok & (np.abs(err - tol) <= 1e-9 * max(tol, 1e-300))
        ok &= (err <= tol) | close
        for g in np.flatnonzero(close).tolist():
            t = int(f.tree[g])
            ok[g] = all(_exact_total(mid[g, d], lo[g, d], hi[g, d], used[t]) <= Fraction(tol) for d in range(dim))
        parent_ok = np.where(f.parent >= 0, ok[np.maximum(f.parent, 0)], False)
        top = np.flatnonzero(ok & ~parent_ok)
        errors = []
        for t in np.unique(f.tree[top]).tolist():
            op = f.ops[t]
            nodes = (top[f.tree[top] == t] - f.offsets[t]).tolist()
            tg = tree_graph_of(op)
            new_used = Fraction(used[t])
            for g, i in zip(top[f.tree[top] == t].tolist(), nodes):
                tg.g.nodes[i]["collapse_to"] = mid[g, : op.table.leaf_dim].astype(ldt)
                for d in range(dim):
                    new_used = max(new_used, _exact_total(mid[g, d], lo[g, d], hi[g, d], used[t]))
            rw = TreeRewriter(tg)
            n = apply_tree_patterns(tg, [CollapseSubtree()], rw, nodes=nodes)
            commit_tree_graph(ctx.rewriter, op, tg, f"collapsed {n} subtrees", rw.nodes_removed)
            ctx.rewriter.set_attr(op, PRUNE_ERROR, FloatAttr(_round_up(new_used), f64))
            errors.append(_round_up(new_used))
            ctx.stat("subtrees-collapsed", n)
            ctx.stat("nodes-removed", rw.nodes_removed)
        return errors
