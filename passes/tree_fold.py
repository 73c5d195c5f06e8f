"""`tree-fold-redundant-splits`: a split whose two children are equal leaves or identical
subtrees is replaced by one of them (every row gets the same value either way).  Exact.

Candidates come from bottom-up subtree hashing over the whole ensemble (a split whose children
hash alike hashes as its child, so chains that fold only after their children have folded are
found in the same sweep); each candidate is then proved by networkx isomorphism of the two
subtrees, matching every node field bit for bit and the yes/no labels of edges, before it is
rewritten.  For oblivious trees, a level whose leaves do not depend on its bit is dropped.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ir.dialects.tree import ObliviousOp, ObliviousTable, Pred

from .base import Pass, PassContext
from .forest import Forest, default_is_yes, ensembles, forest_of, needs_default
from .registry import register_pass
from .tree_rewrite import TreeGraph, TreePattern, TreeRewriter, apply_tree_patterns, commit_tree_graph, tree_graph_of

_M1, _M2 = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser (wrapping uint64 arithmetic)."""
    x = x ^ (x >> np.uint64(30))
    x = x * _M1
    x = x ^ (x >> np.uint64(27))
    x = x * _M2
    return x ^ (x >> np.uint64(31))


def _combine(h: np.ndarray, v: np.ndarray) -> np.ndarray:
    return _mix(h * np.uint64(0x100000001B3) + v.astype(np.uint64))


def _bits(a: np.ndarray) -> np.ndarray:
    a = np.ascontiguousarray(a)
    return a.view(np.uint32 if a.dtype.itemsize == 4 else np.uint64).astype(np.uint64)


def _category_hashes(f: Forest, tables) -> np.ndarray:
    """Per node, a hash of the category set of an `in` split (0 elsewhere): the wrapping sum over
    its bitset's nonzero words of a mix of (word position, word), so equal sets hash equal
    however many trailing zero words their bitsets carry."""
    out = np.zeros(f.n, np.uint64)
    cat = np.flatnonzero(f.pred == Pred.IN)
    if not len(cat):
        return out
    # Global word ids: each table's bitset pool placed after the previous tables' pools.
    pools = [t.cat_words for t in tables]
    base = np.concatenate([[0], np.cumsum([len(p) for p in pools])]).astype(np.int64)
    words = np.concatenate(pools).astype(np.uint64)
    starts = np.concatenate([t.cat_start for t in tables]).astype(np.int64)[cat] + base[f.tree[cat]]
    lens = np.concatenate([t.cat_len for t in tables]).astype(np.int64)[cat]
    owner = np.repeat(np.arange(len(cat)), lens)
    pos = np.arange(int(lens.sum())) - np.repeat(np.cumsum(lens) - lens, lens)
    w = words[np.repeat(starts, lens) + pos] if len(owner) else np.zeros(0, np.uint64)
    with np.errstate(over="ignore"):
        term = np.where(w != 0, _combine(_mix(pos.astype(np.uint64) + np.uint64(1)), w), np.uint64(0))
        sums = np.zeros(len(cat), np.uint64)
        np.add.at(sums, owner, term)
    out[cat] = _mix(sums)
    return out


def subtree_hashes(f: Forest) -> np.ndarray:
    """Per node, a hash of the function its subtree computes *after* folding: equal subtrees
    (bit for bit) hash equal, and a split with equal-hashing children hashes as its child."""
    h = np.zeros(f.n, np.uint64)
    if f.n == 0:
        return h
    with np.errstate(over="ignore"):
        tables = [op.table for op in f.ops]
        leaf = f.pred == Pred.LEAF
        # Leaf values, vectorised over the trees of each leaf width (tree-major, as node ids are).
        for d in sorted({t.leaf_dim for t in tables if not t.is_linear}):
            member = [t.leaf_dim == d and not t.is_linear for t in tables]
            plain = [t for t, m in zip(tables, member) if m]
            rows = np.ones(f.n, bool) if len(plain) == len(tables) else np.repeat(member, np.diff(f.offsets))
            values = np.concatenate([t.leaf for t in plain])[leaf[rows]]
            hv = np.full(len(values), np.uint64(0x9E3779B97F4A7C15))
            for j in range(d):
                hv = _combine(hv, _bits(values[:, j]))
            h[rows & leaf] = hv
        for t, table in enumerate(tables):
            if not table.is_linear:
                continue
            idx = np.flatnonzero(table.pred == Pred.LEAF)
            hv = np.full(len(idx), np.uint64(0x9E3779B97F4A7C15))
            for d in range(table.leaf_dim):
                hv = _combine(hv, _bits(table.leaf[idx, d]))
            extra = [hash((int(_bits(table.lin_const[i : i + 1])[0]), tuple(table.linear_terms(i)))) & 0xFFFFFFFFFFFF for i in idx.tolist()]
            h[f.offsets[t] + idx] = _combine(hv, np.array(extra, np.uint64))
        cat = _category_hashes(f, tables)
        side = np.where(needs_default(f.missing), np.where(default_is_yes(f), 1, 2), 0)
        thr = _bits(f.threshold)
        # A split's own fields, hashed once for all splits; each level then mixes in its children.
        split = f.pred != Pred.LEAF
        own = np.full(int(np.count_nonzero(split)), np.uint64(0xC2B2AE3D27D4EB4F))
        for col in (f.feature, f.pred, thr, f.missing, side, cat):
            own = _combine(own, col[split])
        fields = np.zeros(f.n, np.uint64)
        fields[split] = own
        for level in f.levels_bottom_up():
            y, n = h[f.yes[level]], h[f.no[level]]
            h[level] = np.where(y == n, y, _combine(_combine(fields[level], y), n))
    return h


def _bitwise(a, b) -> bool:
    return np.asarray(a).tobytes() == np.asarray(b).tobytes()


def _same_node(a: dict, b: dict) -> bool:
    if a["pred"] != b["pred"]:
        return False
    if a["pred"] == Pred.LEAF:
        la, lb = a.get("linear"), b.get("linear")
        if (la is None) != (lb is None):
            return False
        if la is not None and (not _bitwise(la[0], lb[0]) or la[1] != lb[1] or any(not _bitwise(x[1], y[1]) for x, y in zip(la[1], lb[1]))):
            return False
        return _bitwise(a["leaf"], b["leaf"])
    return (
        a["feature"] == b["feature"]
        and _bitwise(a["threshold"], b["threshold"])
        and a["missing"] == b["missing"]
        and a["default_branch"] == b["default_branch"]
        and a["categories"] == b["categories"]
    )


def identical_subtrees(tg: TreeGraph, a: int, b: int) -> dict[int, int] | None:
    """If the subtrees at a and b compute the same thing node for node, the map b-node → a-node."""
    from networkx.algorithms.isomorphism import DiGraphMatcher  # imported when a candidate is proved

    sa, sb = tg.g.subgraph(tg.subtree(a)), tg.g.subgraph(tg.subtree(b))
    if sa.number_of_nodes() != sb.number_of_nodes():
        return None
    m = DiGraphMatcher(sb, sa, node_match=_same_node, edge_match=lambda x, y: x["branch"] == y["branch"])
    return dict(m.mapping) if m.is_isomorphic() else None


class FoldIdenticalChildren(TreePattern):
    """x[f] ... ? A : A  →  A."""

    def match_and_rewrite(self, tg: TreeGraph, n: int, rewriter: TreeRewriter) -> bool:
        kids = tg.kids(n)
        if kids is None:
            return False
        mapping = identical_subtrees(tg, kids[0], kids[1])
        if mapping is None:
            return False
        rewriter.replace_node(n, kids[0], merge=mapping)
        return True


def fold_oblivious_levels(t: ObliviousTable) -> tuple[ObliviousTable, int]:
    """Drop every level whose bit does not change the leaf; returns the table and levels dropped."""
    dropped = 0
    d = t.depth - 1
    while d >= 0:
        idx = np.arange(2**t.depth)
        lo = idx[(idx >> d) & 1 == 0]
        if t.leaf[lo].tobytes() == t.leaf[lo | (1 << d)].tobytes():
            keep = [k for k in range(t.depth) if k != d]
            cs, cl = t.cat_start[keep], t.cat_len[keep]
            t = ObliviousTable(
                t.feature[keep], t.pred[keep], t.threshold[keep], t.missing[keep], t.default_true[keep], t.leaf[lo], cs, cl, t.cat_words
            )
            dropped += 1
        d -= 1
    return t, dropped


@register_pass
@dataclass
class FoldRedundantSplits(Pass):
    """Replace splits whose children are identical by that child."""

    name = "tree-fold-redundant-splits"
    summary = "replace a split whose two children are equal leaves or identical subtrees by that child (exact)"

    def apply(self, module, ctx: PassContext) -> None:
        for ens in ensembles(module):
            f = forest_of(ens, ctx)
            h = subtree_hashes(f)
            split = np.flatnonzero(f.pred != Pred.LEAF)
            cand = split[h[f.yes[split]] == h[f.no[split]]]
            for t in np.unique(f.tree[cand]).tolist():
                op = f.ops[t]
                local = set((cand[f.tree[cand] == t] - f.offsets[t]).tolist())
                tg = tree_graph_of(op)
                rw = TreeRewriter(tg)
                order = [i for i in tg.postorder() if i in local]
                n = apply_tree_patterns(tg, [FoldIdenticalChildren()], rw, nodes=order)
                if n:
                    commit_tree_graph(ctx.rewriter, op, tg, f"folded {n} splits", rw.nodes_removed)
                    ctx.stat("splits-folded", n)
                    ctx.stat("nodes-removed", rw.nodes_removed)
                else:
                    ctx.stat("hash-collisions")
            for op in [o for o in ens.trees if isinstance(o, ObliviousOp)]:
                table, dropped = fold_oblivious_levels(op.table)
                if dropped:
                    before = op.table.depth + op.table.leaf.shape[0]
                    ctx.rewriter.set_table(op, table, f"dropped {dropped} levels", before - table.depth - table.leaf.shape[0])
                    ctx.stat("oblivious-levels-dropped", dropped)
