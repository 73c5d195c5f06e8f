"""`tree-vectorize-analysis`: shape facts back-ends may use to vectorise, as attributes.

On each `tree.ensemble`:

* `tree.depth_profile = array<i64: ...>` — how many trees have depth 0, 1, 2, ...;
* `tree.perfect_trees` — trees whose leaves all sit at their full depth (branch-free
  traversal needs no padding for them);
* `tree.feature_splits = array<i64: ...>` — per input feature, how many splits test it
  (`tree.features_used` of them are tested at all);
* `tree.shape_groups = array<i64: ...>` — sizes of the groups of structurally identical trees
  (same shape, leaf width and yes/no order; features, thresholds and values may differ), and on
  each tree `tree.shape_group = k`, its group in order of first appearance.

Groups are the isomorphism classes of the trees as rooted graphs with yes/no-labelled edges.
With `method=signature` (default) a tree's class is its pre-order leaf/split sequence, a
canonical form for ordered binary trees (linear time); `method=wl` buckets trees by networkx's
Weisfeiler-Lehman hash and splits buckets by exact isomorphism.  Both give the same groups.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ir.attributes import DenseArrayAttr, IntegerAttr
from ir.dialects.tree import ObliviousOp, Pred, TreeOp
from ir.types import i64

from .base import Pass, PassContext, option
from .forest import Forest, ensembles, forest_of
from .registry import register_pass

if TYPE_CHECKING:
    import networkx as nx

# What this analysis derives.  Facts about which nodes split on which features at which depths: a
# rewrite that keeps every node and its feature (moved thresholds, swapped children) keeps them.
STRUCTURE_ATTRS = ("tree.depth_profile", "tree.perfect_trees", "tree.feature_splits", "tree.features_used")
# Groups of structurally identical trees: on the ensemble the group sizes, on each tree its group.
SHAPE_GROUPS = "tree.shape_groups"
SHAPE_GROUP = "tree.shape_group"


def _signature(op) -> tuple:
    t = op.table
    if isinstance(op, ObliviousOp):
        return ("oblivious", t.depth, t.leaf_dim)
    return ("tree", t.leaf_dim, (t.pred[t.preorder()] != Pred.LEAF).tobytes())


def _shape_graph(op) -> nx.DiGraph:
    import networkx as nx

    g = op.table.as_graph() if isinstance(op, TreeOp) else nx.DiGraph([(0, 1)])
    h = nx.DiGraph()
    for n, d in g.nodes(data=True):
        kind = "split" if d.get("pred", 1) != Pred.LEAF else "leaf"
        h.add_node(n, kind=f"{kind}/{type(op).__name__}/{op.table.leaf_dim}/{op.table.depth if isinstance(op, ObliviousOp) else ''}")
    for a, b, d in g.edges(data=True):
        h.add_edge(a, b, branch=d.get("branch", "-"))
    return h


def _forest_signatures(f: Forest) -> dict[int, tuple]:
    """`_signature` of every `tree.tree` of a forest, by op id, from the forest's pre-order
    (one vectorised sweep instead of one walk per tree)."""
    bits = f.pred[f.preorder()] != Pred.LEAF
    cuts = f.offsets.tolist()
    return {id(op): ("tree", op.table.leaf_dim, bits[cuts[t] : cuts[t + 1]].tobytes()) for t, op in enumerate(f.ops)}


def shape_groups(trees: list, method: str = "signature", forest: Forest | None = None) -> list[int]:
    """Group index per tree (groups numbered by first appearance).  `forest`: the `Forest` of
    the trees' ensemble, to take node-table signatures from (the same groups, faster)."""
    ids: list[int] = []
    if method == "signature":
        index: dict = {}
        known = _forest_signatures(forest) if forest is not None else {}
        for op in trees:
            sig = known.get(id(op))
            ids.append(index.setdefault(_signature(op) if sig is None else sig, len(index)))
        return ids
    import networkx as nx  # only method=wl needs it

    reps: list[tuple[str, nx.DiGraph]] = []  # (hash, representative graph) per group
    nm = nx.algorithms.isomorphism.categorical_node_match("kind", None)
    em = nx.algorithms.isomorphism.categorical_edge_match("branch", None)
    for op in trees:
        g = _shape_graph(op)
        with warnings.catch_warnings():
            # networkx 3.5 warns that directed-graph hashes changed; they are compared within one run only.
            warnings.simplefilter("ignore", UserWarning)
            h = nx.weisfeiler_lehman_graph_hash(g, node_attr="kind", edge_attr="branch")
        for k, (rh, rg) in enumerate(reps):
            if rh == h and nx.is_isomorphic(g, rg, node_match=nm, edge_match=em):
                ids.append(k)
                break
        else:
            reps.append((h, g))
            ids.append(len(reps) - 1)
    return ids


@register_pass
@dataclass
class VectorizeAnalysis(Pass):
    """Record depth profiles, feature access and structurally identical tree groups."""

    name = "tree-vectorize-analysis"
    summary = "record depth profile, per-feature split counts and groups of structurally identical trees as tree.* attributes"
    derives = {"tree.ensemble": STRUCTURE_ATTRS + (SHAPE_GROUPS,), "tree.tree": (SHAPE_GROUP,), "tree.oblivious": (SHAPE_GROUP,)}
    method: str = option(
        "how to group trees: signature (linear) or wl (Weisfeiler-Lehman hash + isomorphism)", "signature", choices=("signature", "wl")
    )

    def apply(self, module, ctx: PassContext) -> None:
        for ens in ensembles(module):
            trees = list(ens.trees)
            f = forest_of(ens, ctx)
            # Oblivious trees are perfect by construction; node-table depths come from the forest.
            depths = [op.table.depth for op in trees if isinstance(op, ObliviousOp)]
            perfect = len(depths)
            tree_ops = f.ops
            if tree_ops:
                leaf = f.pred == Pred.LEAF
                max_d = np.zeros(len(tree_ops), np.int64)
                min_leaf = np.full(len(tree_ops), np.iinfo(np.int64).max)
                np.maximum.at(max_d, f.tree[leaf], f.depth[leaf])
                np.minimum.at(min_leaf, f.tree[leaf], f.depth[leaf])
                depths.extend(max_d.tolist())
                perfect += int(np.sum(max_d == min_leaf))
            profile = np.bincount(np.array(depths, np.int64), minlength=1) if depths else np.zeros(1, np.int64)
            splits = np.zeros(ens.n_features, np.int64)
            feat = f.feature[f.pred != Pred.LEAF]
            np.add.at(splits, feat, 1)
            for op in trees:
                if isinstance(op, ObliviousOp):
                    np.add.at(splits, op.table.feature, 1)
            groups = shape_groups(trees, self.method, f)
            sizes = np.bincount(np.array(groups, np.int64), minlength=0) if groups else np.zeros(0, np.int64)
            r = ctx.rewriter
            depth_profile, perfect_trees, feature_splits, features_used = STRUCTURE_ATTRS
            r.set_attr(ens, depth_profile, DenseArrayAttr(profile, i64))
            r.set_attr(ens, perfect_trees, IntegerAttr(perfect))
            r.set_attr(ens, feature_splits, DenseArrayAttr(splits, i64))
            r.set_attr(ens, features_used, IntegerAttr(int(np.count_nonzero(splits))))
            r.set_attr(ens, SHAPE_GROUPS, DenseArrayAttr(sizes, i64))
            for op, g in zip(trees, groups):
                r.set_attr(op, SHAPE_GROUP, IntegerAttr(g))
            ctx.stat("trees", len(trees))
            ctx.stat("shape-groups", len(sizes))
            ctx.stat("max-depth", int(max(depths, default=0)))
