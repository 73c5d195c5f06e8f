"""`tree-remove-unreachable`: a split whose outcome its ancestors' splits on the same feature
have already decided goes away (replaced by the child every reaching row takes).  Exact.

The analysis tracks, for the feature a node tests, the set of values `v` (the row's feature in
the compare type) that can reach the node: an interval of compare-type floats plus "NaN
possible".  Each split's yes and no sets are over-approximated by such a set (exact for
`lt le gt ge` with any missing kind; `eq`/`ne` and the zero band of `missing(zero)` widen to
their hull; `in` splits constrain nothing and are never removed), so "the reaching set misses
one side" is a proof that no row takes that side.  Removing a decided split leaves every other
node's reaching set unchanged, so one analysis of the original tree finds the whole fixpoint.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ir.dialects.tree import ZERO_THRESHOLD, Missing, Pred

from .base import Pass, PassContext
from .forest import Forest, default_is_yes, ensembles, forest_of
from .registry import register_pass
from .tree_rewrite import TreeGraph, TreePattern, TreeRewriter, apply_tree_patterns, commit_tree_graph, tree_graph_of

NUMERIC = (Pred.LT, Pred.LE, Pred.GT, Pred.GE, Pred.EQ, Pred.NE)


def branch_sets(f: Forest, nodes: np.ndarray | None = None):
    """Over-approximate value sets (lo, hi, nan) of the yes and no side of every node (of
    `nodes`, in that order, when given).

    Leaves and `in` splits get the full set on both sides (they constrain nothing)."""
    dt = f.threshold.dtype.type
    inf = dt(np.inf)
    at = slice(None) if nodes is None else nodes
    t = f.threshold[at]
    t = np.where(t == 0, dt(0), t)  # -0.0 and 0.0 compare alike
    with np.errstate(invalid="ignore"):
        prev = np.nextafter(t, -inf)
        nxt = np.nextafter(t, inf)
    n = len(t)
    full_lo, full_hi = np.full(n, -inf), np.full(n, inf)
    # below(t) = values < t, above(t) = values > t; empty when t is -inf / +inf.
    below_lo = np.where(t > -inf, -inf, inf)
    below_hi = np.where(t > -inf, prev, -inf)
    above_lo = np.where(t < inf, nxt, inf)
    above_hi = np.where(t < inf, inf, -inf)
    p = f.pred[at]
    sel = [p == Pred.LT, p == Pred.LE, p == Pred.GT, p == Pred.GE, p == Pred.EQ, p == Pred.NE]
    y_lo = np.select(sel, [below_lo, full_lo, above_lo, t, t, full_lo], full_lo)
    y_hi = np.select(sel, [below_hi, t, above_hi, full_hi, t, full_hi], full_hi)
    n_lo = np.select(sel, [t, above_lo, full_lo, below_lo, full_lo, t], full_lo)
    n_hi = np.select(sel, [full_hi, above_hi, t, below_hi, full_hi, t], full_hi)
    # Where NaN goes.
    numeric = np.isin(p, NUMERIC)
    miss = f.missing[at]
    dyes = default_is_yes(f)[at]
    zero = dt(0)
    with np.errstate(invalid="ignore"):
        cmp0 = np.select(sel, [zero < t, zero <= t, zero > t, zero >= t, zero == t, zero != t], False)
    nan_yes = np.select([miss == Missing.NAN, miss == Missing.ZERO, miss == Missing.NAN_AS_ZERO], [dyes, dyes, cmp0], p == Pred.NE)
    y_nan = np.where(numeric, nan_yes, True)
    n_nan = np.where(numeric, ~nan_yes, True)
    # missing(zero): the band |v| <= 1e-35 joins the default side (hull), leaves the other as is.
    z = dt(ZERO_THRESHOLD)
    zy = numeric & (miss == Missing.ZERO) & dyes
    zn = numeric & (miss == Missing.ZERO) & ~dyes
    y_lo = np.where(zy, np.minimum(y_lo, -z), y_lo)
    y_hi = np.where(zy, np.maximum(y_hi, z), y_hi)
    n_lo = np.where(zn, np.minimum(n_lo, -z), n_lo)
    n_hi = np.where(zn, np.maximum(n_hi, z), n_hi)
    return (y_lo, y_hi, y_nan), (n_lo, n_hi, n_nan)


def decided_splits(f: Forest) -> np.ndarray:
    """Per node: 0 = not decided, 1 = every reaching row goes yes, 2 = every reaching row goes no."""
    n = f.n
    if n == 0:
        return np.zeros(0, np.int8)
    numeric = np.isin(f.pred, NUMERIC)
    # Per numeric split k, the values of x[feature[k]] that can reach k: intersect the side sets
    # of its ancestors a that test the same feature, walking up one level per step (c is the
    # child of a on the path).  Splits are sorted deepest first, so those still below a root
    # after s steps (depth > s) are a prefix: the work is the sum of the splits' depths.  Every
    # per-split array below is in that order (rank[g]: the position of split g).
    k = np.flatnonzero(numeric)
    k = k[np.argsort(-f.depth[k], kind="stable")]
    (y_lo, y_hi, y_nan), (n_lo, n_hi, n_nan) = branch_sets(f, k)
    rank = np.full(n, -1, np.int64)
    rank[k] = np.arange(len(k))
    dt = f.threshold.dtype.type
    depth = f.depth[k]
    # live[s]: how many splits lie deeper than s levels (they still have an ancestor at step s).
    live = len(k) - np.cumsum(np.bincount(depth, minlength=int(depth[0]) + 1)) if len(k) else np.zeros(0, np.int64)
    tested = np.where(numeric, f.feature, -1)  # the feature a numeric split tests, -1 elsewhere
    fk, c, a = f.feature[k], k.copy(), f.parent[k]
    lo, hi, nan = np.full(len(k), dt(-np.inf)), np.full(len(k), dt(np.inf)), np.ones(len(k), bool)
    for step in range(int(depth[0]) if len(k) else 0):
        m = int(live[step])
        am = a[:m]
        sel = np.flatnonzero(tested[am] == fk[:m])
        if len(sel):
            aa = am[sel]
            r = rank[aa]
            on_yes = f.yes[aa] == c[sel]
            lo[sel] = np.maximum(lo[sel], np.where(on_yes, y_lo[r], n_lo[r]))
            hi[sel] = np.minimum(hi[sel], np.where(on_yes, y_hi[r], n_hi[r]))
            nan[sel] &= np.where(on_yes, y_nan[r], n_nan[r])
        c[:m] = am
        a[:m] = f.parent[am]
    yes_live = (np.maximum(lo, y_lo) <= np.minimum(hi, y_hi)) | (nan & y_nan)
    no_live = (np.maximum(lo, n_lo) <= np.minimum(hi, n_hi)) | (nan & n_nan)
    # The side of `eq t` / `ne t` that is "everything but t" (its set above is the full hull):
    # dead when only t itself reaches the node.  Not with missing(zero), whose band widens it.
    pred = f.pred[k]
    only_t = (lo == hi) & (lo == f.threshold[k]) & (f.missing[k] != Missing.ZERO)
    no_live &= ~(only_t & (pred == Pred.EQ) & ~(nan & n_nan))
    yes_live &= ~(only_t & (pred == Pred.NE) & ~(nan & y_nan))
    out = np.zeros(n, np.int8)
    out[k[yes_live & ~no_live]] = 1
    out[k[no_live & ~yes_live]] = 2
    return out


class DecidedSplit(TreePattern):
    """A split the analysis proved decided → the child every reaching row takes."""

    def match_and_rewrite(self, tg: TreeGraph, n: int, rewriter: TreeRewriter) -> bool:
        side = tg.g.nodes[n].get("decided", 0)
        kids = tg.kids(n)
        if not side or kids is None:
            return False
        rewriter.replace_node(n, kids[0] if side == 1 else kids[1])
        return True


@register_pass
@dataclass
class RemoveUnreachable(Pass):
    """Remove splits whose outcome is decided by ancestor splits on the same feature."""

    name = "tree-remove-unreachable"
    summary = "remove splits already decided by their ancestors' splits on the same feature (exact)"

    def apply(self, module, ctx: PassContext) -> None:
        for ens in ensembles(module):
            f = forest_of(ens, ctx)
            decided = decided_splits(f)
            for t in np.unique(f.tree[decided > 0]).tolist():
                op = f.ops[t]
                lo = int(f.offsets[t])
                local = decided[lo : int(f.offsets[t + 1])]
                tg = tree_graph_of(op)
                for i in np.flatnonzero(local).tolist():
                    tg.g.nodes[i]["decided"] = int(local[i])
                rw = TreeRewriter(tg)
                # Decided splits top-down; the driver revisits whatever replaces them.
                n = apply_tree_patterns(tg, [DecidedSplit()], rw, nodes=[i for i in op.table.preorder() if local[i]])
                commit_tree_graph(ctx.rewriter, op, tg, f"removed {n} decided splits", rw.nodes_removed)
                ctx.stat("splits-removed", n)
                ctx.stat("nodes-removed", rw.nodes_removed)
                ctx.stat("trees-changed")
