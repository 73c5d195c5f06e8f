"""tree-vectorize-analysis: its attributes agree with direct counts, and its two grouping
methods (pre-order signature, Weisfeiler-Lehman + isomorphism) give the same groups — the
isomorphism classes of the trees as rooted graphs with yes/no edges."""

import networkx as nx
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from ir.dialects.tree import EnsembleOp, ObliviousOp, Pred, TreeOp
from passes import run_pipeline
from passes.tree_analysis import _shape_graph, shape_groups
from tests import irgen
from tests.passes.models import VARIANTS, random_module


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 100_000), depth=st.integers(0, 3))
def test_methods_agree_with_brute_force_isomorphism(seed, depth):
    m = irgen.random_module(seed, n_trees=14, depth=depth, oblivious=seed % 2 == 0, transform="none")
    trees = list(next(op for op in m.walk() if isinstance(op, EnsembleOp)).trees)
    a, b = shape_groups(trees, "signature"), shape_groups(trees, "wl")
    assert a == b
    nm = nx.algorithms.isomorphism.categorical_node_match("kind", None)
    em = nx.algorithms.isomorphism.categorical_edge_match("branch", None)
    graphs = [_shape_graph(t) for t in trees]
    for i in range(len(trees)):
        for j in range(i):
            assert (a[i] == a[j]) == nx.is_isomorphic(graphs[i], graphs[j], node_match=nm, edge_match=em)


@settings(max_examples=15, deadline=None)
@given(variant=st.sampled_from(sorted(VARIANTS)), seed=st.integers(0, 100_000))
def test_attributes_match_direct_counts(variant, seed):
    m = random_module(variant, seed)
    run_pipeline(m, "tree-vectorize-analysis")
    for ens in (op for op in m.walk() if isinstance(op, EnsembleOp)):
        trees = list(ens.trees)
        depths = [t.table.depth if isinstance(t, ObliviousOp) else t.table.depth() for t in trees]
        profile = ens.attributes["tree.depth_profile"].values
        np.testing.assert_array_equal(profile, np.bincount(depths, minlength=1))
        splits = np.zeros(ens.n_features, np.int64)
        for t in trees:
            sel = t.table.pred != Pred.LEAF
            np.add.at(splits, t.table.feature[sel], 1)
        np.testing.assert_array_equal(ens.attributes["tree.feature_splits"].values, splits)
        sizes = ens.attributes["tree.shape_groups"].values
        assert sizes.sum() == len(trees)
        groups = [t.attributes["tree.shape_group"].value for t in trees]
        np.testing.assert_array_equal(np.bincount(groups), sizes)
        perfect = sum(1 for t in trees if isinstance(t, ObliviousOp) or _leaf_depths(t.table) == {t.table.depth()})
        assert ens.attributes["tree.perfect_trees"].value == perfect


def _leaf_depths(t) -> set[int]:
    depth = {0: 0}
    for i in t.preorder():
        if t.pred[i] != Pred.LEAF:
            depth[int(t.yes[i])] = depth[int(t.no[i])] = depth[i] + 1
    return {depth[i] for i in range(t.n_nodes) if t.pred[i] == Pred.LEAF}


def test_tree_ops_only_get_their_group():
    m = random_module("f32", 1)
    run_pipeline(m, "tree-vectorize-analysis")
    for t in m.walk():
        if isinstance(t, TreeOp):
            assert [k for k in t.attributes if k.startswith("tree.")] == ["tree.shape_group"]
