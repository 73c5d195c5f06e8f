"""Whole-ensemble numpy views for tree passes.

Building a networkx graph costs ~30 µs per node, so a 1000-tree depth-8 forest (500k nodes)
cannot be turned into graphs just to find out that nothing changes.  Tree passes therefore
find candidates with vectorised analyses over `Forest` (every node table of an ensemble
concatenated, node ids global), and build `TreeGraph`s only for the trees they rewrite.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from ir.core import Operation
from ir.dialects.tree import EnsembleOp, Missing, NodeTable, Pred, TreeOp


def forest_of(ens: EnsembleOp, ctx=None) -> "Forest":
    """The `Forest` of `ens`; with a pass context, shared with the other passes of the pipeline
    while the IR stays unchanged (`PassContext.analysis`)."""
    if ctx is None:
        return Forest(ens)
    return ctx.analysis(("forest", ens), lambda: Forest(ens))


def ensembles(module: Operation) -> Iterator[EnsembleOp]:
    """Every `tree.ensemble` of a module, in pre-order (a snapshot: safe to rewrite while iterating)."""
    return iter([op for op in module.walk() if isinstance(op, EnsembleOp)])


class Forest:
    """The `tree.tree` tables of one ensemble as global numpy columns.

    Node `offsets[t] + i` is node i of `ops[t]`; `yes`/`no`/`default`/`parent` hold global ids
    (-1 for none); `depth` is the number of splits above a node."""

    def __init__(self, ens: EnsembleOp):
        self.ops: list[TreeOp] = [op for op in ens.trees if isinstance(op, TreeOp)]
        tables: list[NodeTable] = [op.table for op in self.ops]
        sizes = np.array([t.n_nodes for t in tables], np.int64)
        self.offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        n = int(self.offsets[-1])
        self.n = n
        tdt = ens.compare_type.numpy
        if not tables:
            empty_i, empty_u = np.zeros(0, np.int64), np.zeros(0, np.uint8)
            self.feature, self.pred, self.missing = empty_i, empty_u, empty_u
            self.threshold = np.zeros(0, tdt)
            self.yes = self.no = self.default = self.parent = self.depth = self.tree = empty_i
            self.roots = empty_i
            self._split_levels, self._preorder = [], empty_i
            return
        self.tree = np.repeat(np.arange(len(tables)), sizes)
        base = self.offsets[self.tree]
        self.feature = np.concatenate([t.feature for t in tables]).astype(np.int64)
        self.pred = np.concatenate([t.pred for t in tables])
        self.threshold = np.concatenate([t.threshold for t in tables])
        self.missing = np.concatenate([t.missing for t in tables])

        def glob(col):
            c = np.concatenate([getattr(t, col) for t in tables]).astype(np.int64)
            return np.where(c >= 0, c + base, -1)

        self.yes, self.no, self.default = glob("yes"), glob("no"), glob("default")
        split = np.flatnonzero(self.pred != Pred.LEAF)
        self.parent = np.full(n, -1, np.int64)
        self.parent[self.yes[split]] = split
        self.parent[self.no[split]] = split
        self.roots = self.offsets[:-1].copy()
        self.depth = np.zeros(n, np.int64)
        self._split_levels: list[np.ndarray] = []  # split nodes by depth, root level first
        frontier = self.roots
        d = 0
        while len(frontier):
            self.depth[frontier] = d
            s = frontier[self.pred[frontier] != Pred.LEAF]
            self._split_levels.append(s)
            frontier = np.concatenate([self.yes[s], self.no[s]])
            d += 1
        self._preorder: np.ndarray | None = None
        for a in (self.offsets, self.feature, self.pred, self.threshold, self.missing, self.yes, self.no, self.default):
            a.flags.writeable = False  # shared between passes (forest_of): read-only
        for a in (self.parent, self.roots, self.depth, self.tree, *self._split_levels):
            a.flags.writeable = False

    @property
    def is_split(self) -> np.ndarray:
        return self.pred != Pred.LEAF

    def preorder(self) -> np.ndarray:
        """Global node ids, tree after tree, each tree in pre-order (node, yes subtree, no
        subtree): `preorder()[offsets[t]:offsets[t + 1]]` is `ops[t].table.preorder()` shifted
        by `offsets[t]`.  Computed level by level over the whole forest: subtree sizes bottom-up,
        then positions top-down (a yes child right after its parent, a no child after the yes
        subtree)."""
        if self._preorder is None:
            size = np.ones(self.n, np.int64)
            for s in reversed(self._split_levels):
                size[s] += size[self.yes[s]] + size[self.no[s]]
            pos = np.zeros(self.n, np.int64)
            pos[self.roots] = self.roots
            for s in self._split_levels:
                pos[self.yes[s]] = pos[s] + 1
                pos[self.no[s]] = pos[s] + 1 + size[self.yes[s]]
            order = np.empty(self.n, np.int64)
            order[pos] = np.arange(self.n)
            order.flags.writeable = False
            self._preorder = order
        return self._preorder

    def levels_bottom_up(self) -> list[np.ndarray]:
        """Split nodes grouped by depth, deepest first (children are done before parents);
        each level in ascending node id."""
        return [np.sort(s) for s in reversed(self._split_levels) if len(s)]

    def local(self, g: int) -> tuple[int, int]:
        """(tree index, node index in its table) of global node g."""
        t = int(self.tree[g])
        return t, int(g - self.offsets[t])


def default_is_yes(f: Forest) -> np.ndarray:
    """Per node: missing values go to the yes child (only meaningful for nan/zero kinds)."""
    return (f.default >= 0) & (f.default == f.yes)


def needs_default(missing: np.ndarray) -> np.ndarray:
    return (missing == Missing.NAN) | (missing == Missing.ZERO)
