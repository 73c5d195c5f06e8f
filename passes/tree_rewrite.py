"""Rewriting trees: a networkx view of one `tree.tree` (`TreeGraph`), a rewriter for its nodes
(`TreeRewriter`), and node patterns applied to a fixpoint (`TreePattern`, `apply_tree_patterns`).
Op-level rewriting (`Rewriter`, `OpPattern`) is in `passes/rewrite.py`, which knows no dialect."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Sequence

import numpy as np

from ir.core import Operation
from ir.diagnostics import TimberError
from ir.dialects.tree import HITS, CategorySets, LinearLeaves, Missing, NodeTable, Pred

from .rewrite import Rewriter

# ----- trees --------------------------------------------------------------------------------


_LEAF = int(Pred.LEAF)  # enum attribute lookups are slow in per-node loops
_IN = int(Pred.IN)


class TreeGraph:
    """A networkx DiGraph view of one `tree.tree` table, with its root, the branch missing values
    take (`default_branch`: "yes"/"no"/None) and, when the op carries `tree.hits`, each node's
    calibration hit count.  Node attributes are those of `NodeTable.as_graph()` (so
    `NodeTable.from_graph` reads it too), built from whole columns at once: this view is made for
    every tree a pass rewrites, and per-node numpy access would dominate the pass.  `to_table()`
    rebuilds a table in pre-order (yes before no)."""

    def __init__(self, table: NodeTable, hits: np.ndarray | None = None):
        import networkx as nx

        t = table
        n = t.n_nodes
        self.root = 0
        self.threshold_dtype = t.threshold.dtype
        self.leaf_dtype = t.leaf.dtype
        self.has_hits = hits is not None
        feature, pred, missing, default = t.feature.tolist(), t.pred.tolist(), t.missing.tolist(), t.default.tolist()
        yes, no = t.yes.tolist(), t.no.tolist()
        threshold, leaf = list(t.threshold), list(t.leaf)
        hit = hits.tolist() if hits is not None else None
        nodes, edges = [], []
        for i in range(n):
            p = pred[i]
            d = {"feature": feature[i], "pred": p, "threshold": threshold[i], "missing": missing[i], "default": default[i], "leaf": leaf[i]}
            d["categories"] = t.category_set(i) if p == _IN else None
            d["default_branch"] = None
            if p == _LEAF:
                if t.is_linear:
                    d["linear"] = (t.lin_const[i], t.linear_terms(i))
            else:
                edges.append((i, yes[i], {"branch": "yes"}))
                edges.append((i, no[i], {"branch": "no"}))
                if missing[i] in (Missing.NAN, Missing.ZERO):
                    d["default_branch"] = "yes" if default[i] == yes[i] else "no"
            if hit is not None:
                d["hits"] = hit[i]
            nodes.append((i, d))
        self.g = nx.DiGraph()
        self.g.add_nodes_from(nodes)
        self.g.add_edges_from(edges)

    def kids(self, n: int) -> tuple[int, int] | None:
        """(yes, no) children of a split, None for a leaf."""
        if self.g.nodes[n]["pred"] == _LEAF:
            return None
        (a, da), (b, _) = self.g.succ[n].items()
        return (a, b) if da["branch"] == "yes" else (b, a)

    def parent(self, n: int) -> tuple[int, str] | None:
        """(parent, branch label) or None for the root."""
        for p, d in self.g.pred[n].items():
            return p, d["branch"]
        return None

    def subtree(self, n: int) -> list[int]:
        """Nodes of the subtree rooted at n, in pre-order (yes before no)."""
        out, stack = [], [n]
        while stack:
            i = stack.pop()
            out.append(i)
            k = self.kids(i)
            if k is not None:
                stack.append(k[1])
                stack.append(k[0])
        return out

    def postorder(self) -> list[int]:
        # Pre-order with the no child first, reversed, is a post-order with yes before no.
        out, stack = [], [self.root]
        while stack:
            i = stack.pop()
            out.append(i)
            k = self.kids(i)
            if k is not None:
                stack.append(k[0])
                stack.append(k[1])
        return out[::-1]

    def to_table(self) -> tuple[NodeTable, np.ndarray | None]:
        """The rebuilt table (nodes renumbered in pre-order) and, if tracked, its hit counts."""
        order = self.subtree(self.root)
        index = {old: new for new, old in enumerate(order)}
        n = len(order)
        nodes = self.g.nodes
        first = nodes[order[0]]
        dim = len(np.asarray(first["leaf"]).reshape(-1))
        feature, pred, missing = np.full(n, -1, np.int32), np.zeros(n, np.uint8), np.zeros(n, np.uint8)
        yes, no, default = np.full(n, -1, np.int32), np.full(n, -1, np.int32), np.full(n, -1, np.int32)
        cats = CategorySets(n)
        threshold = np.zeros(n, self.threshold_dtype)
        leaf = np.zeros((n, dim), self.leaf_dtype)
        linear = "linear" in first or any("linear" in nodes[i] for i in order)
        lin = LinearLeaves(n, self.leaf_dtype)
        for new, old in enumerate(order):
            d = nodes[old]
            p = d["pred"]
            pred[new] = p
            if p == _LEAF:
                leaf[new] = d["leaf"]
                if linear:
                    lin.add(new, *d["linear"])
                continue
            y, nn = self.kids(old)
            feature[new], missing[new], threshold[new] = d["feature"], d["missing"], d["threshold"]
            yes[new], no[new] = index[y], index[nn]
            if d["default_branch"] is not None:
                default[new] = yes[new] if d["default_branch"] == "yes" else no[new]
            if p == _IN:
                cats.add(new, d["categories"])
        table = NodeTable(feature, pred, threshold, yes, no, missing, default, leaf, *cats.columns(), **(lin.columns() if linear else {}))
        hits = np.array([nodes[i]["hits"] for i in order], np.int64) if self.has_hits else None
        return table, hits


def tree_graph_of(op: Operation) -> TreeGraph:
    """The `TreeGraph` of a `tree.tree` op, carrying its `tree.hits` if it has them."""
    hits = op.attributes.get(HITS)
    return TreeGraph(op.table, None if hits is None else hits.values)


def commit_tree_graph(
    rewriter: Rewriter, op: Operation, tg: TreeGraph, detail: str, nodes_removed: int, preserves: tuple[str, ...] = ()
) -> None:
    """Write a rewritten `TreeGraph` back into its op (table, and hit counts renumbered alike)."""
    from ir.attributes import DenseArrayAttr
    from ir.types import i64

    table, hits = tg.to_table()
    rewriter.set_table(op, table, detail, nodes_removed, preserves)
    if hits is not None:
        rewriter.set_attr(op, HITS, DenseArrayAttr(hits, i64))


class TreeRewriter:
    """Mutates a `TreeGraph`, counting removed nodes and notifying the tree worklist."""

    def __init__(self, tg: TreeGraph):
        self.tg = tg
        self.nodes_removed = 0
        self.rewrites = 0
        self.on_change: Callable[[int], None] | None = None

    def _notify(self, n: int) -> None:
        self.rewrites += 1
        if self.on_change is not None:
            self.on_change(n)

    def replace_node(self, n: int, m: int, merge: dict[int, int] | None = None) -> None:
        """Put the subtree rooted at m (a descendant of n) where the subtree rooted at n was.

        `merge` maps nodes of a discarded subtree onto nodes of m's subtree, whose hit counts
        they are added to (when both subtrees were identical, rows of either now reach m's)."""
        g = self.tg.g
        keep = set(self.tg.subtree(m))
        gone = [i for i in self.tg.subtree(n) if i not in keep]
        if self.tg.has_hits and merge:
            for src, dst in merge.items():
                g.nodes[dst]["hits"] += g.nodes[src]["hits"]
        up = self.tg.parent(n)
        if self.tg.has_hits:
            g.nodes[m]["hits"] = g.nodes[n]["hits"]
        g.remove_nodes_from(gone)
        if up is None:
            self.tg.root = m
        else:
            g.add_edge(up[0], m, branch=up[1])
        self.nodes_removed += len(gone)
        self._notify(m)

    def make_leaf(self, n: int, value: np.ndarray) -> None:
        """Turn the subtree rooted at n into a single leaf with `value` (a row of the leaf type)."""
        g = self.tg.g
        gone = self.tg.subtree(n)[1:]
        g.remove_nodes_from(gone)
        d = g.nodes[n]
        d.update(feature=-1, pred=_LEAF, threshold=self.tg.threshold_dtype.type(0), missing=0)
        d.update(default=-1, default_branch=None, categories=None, leaf=np.asarray(value, self.tg.leaf_dtype).reshape(-1))
        self.nodes_removed += len(gone)
        self._notify(n)

    def set_split(self, n: int, *, pred: int, threshold, missing: int, default_branch: str | None, swap: bool) -> None:
        """Rewrite a split's test; with `swap` its yes and no subtrees trade places."""
        g = self.tg.g
        d = g.nodes[n]
        d.update(pred=int(pred), threshold=self.tg.threshold_dtype.type(threshold), missing=int(missing))
        d["default_branch"] = default_branch
        if swap:
            y, no = self.tg.kids(n)
            g[n][y]["branch"], g[n][no]["branch"] = "no", "yes"
        self._notify(n)


class TreePattern:
    """A guard-first rewrite at one node of a `TreeGraph`."""

    def match_and_rewrite(self, tg: TreeGraph, n: int, rewriter: TreeRewriter) -> bool:  # pragma: no cover - abstract
        raise NotImplementedError

    @property
    def label(self) -> str:
        return type(self).__name__


def apply_tree_patterns(
    tg: TreeGraph,
    patterns: Sequence[TreePattern],
    rewriter: TreeRewriter,
    *,
    nodes: Iterable[int] | None = None,
    max_rewrites: int | None = None,
) -> int:
    """Apply tree patterns to a fixpoint.  The worklist starts with `nodes` (default: every node,
    children before parents); after a rewrite at n the node now in n's place and its parent are
    revisited.  The bound (default: one rewrite per node + 10) turns a loop into a diagnostic."""
    start = list(tg.postorder() if nodes is None else nodes)
    bound = max_rewrites if max_rewrites is not None else tg.g.number_of_nodes() + 10
    queue, members = deque(), set()

    def push(n: int) -> None:
        if n not in members:
            members.add(n)
            queue.append(n)

    for n in start:
        push(n)

    def touched(n: int) -> None:
        push(n)
        up = tg.parent(n)
        if up is not None:
            push(up[0])

    rewriter.on_change = touched
    count = 0
    try:
        while queue:
            n = queue.popleft()
            members.discard(n)
            if n not in tg.g:
                continue
            for p in patterns:
                if p.match_and_rewrite(tg, n, rewriter):
                    count += 1
                    if count > bound:
                        raise TimberError(f"tree patterns did not converge after {bound} rewrites (last: {p.label} at node {n})")
                    break
    finally:
        rewriter.on_change = None
    return count
