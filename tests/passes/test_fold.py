"""tree-fold-redundant-splits: what it folds, what it must not, and its candidate hashing."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ir.dialects.tree import NodeTable, ObliviousOp, ObliviousTable, Pred, TreeOp
from ir.parser import parse_module
from passes import run_pipeline
from passes.forest import Forest, ensembles
from passes.tree_fold import fold_oblivious_levels, identical_subtrees, subtree_hashes
from passes.tree_rewrite import TreeGraph
from tests import irgen
from tests.passes.models import check_exact

pytestmark = pytest.mark.filterwarnings("ignore:overflow encountered in cast:RuntimeWarning")


def _module(tree_lines: list[str], leaves="f32", dim=1):
    trees = "\n".join("      tree.tree out 0 {\n" + t + "\n      }" for t in tree_lines)
    out = f"tensor<{dim}x{leaves}>"
    return parse_module(
        f"""module {{
  func.func @margin(%x: tensor<3xf32>) -> {out} {{
    %m = tree.ensemble %x {{compare = f32, init = dense<{[0.0] * dim}> : {out}, leaves = {leaves}}} : tensor<3xf32> -> {out} {{
{trees}
    }}
    func.return %m : {out}
  }}
}}""",
        "fold.tir",
    )


def _nodes(m) -> list[int]:
    return [op.table.n_nodes for op in m.walk() if isinstance(op, TreeOp)]


@pytest.mark.parametrize(
    "tree, nodes_after",
    [
        ("0: x[0] lt 1.0 ? 1 : 2\n1: leaf 2.0\n2: leaf 2.0", 1),
        ("0: x[0] lt 1.0 ? 1 : 2\n1: leaf 0.0\n2: leaf -0.0", 3),
        ("0: x[0] lt 1.0 ? 1 : 2\n1: leaf 0x7FC00000\n2: leaf 0x7FC00000", 1),  # same NaN bits
        ("0: x[0] lt 1.0 ? 1 : 2\n1: leaf 0x7FC00000\n2: leaf 0x7FC00001", 3),  # different payloads
        # identical subtrees, with missing routed to the same side
        (
            "0: x[0] lt 1.0 ? 1 : 4\n1: x[1] le 2.0 ? 2 : 3 missing(nan) -> 3\n2: leaf 1.0\n3: leaf 2.0\n"
            "4: x[1] le 2.0 ? 5 : 6 missing(nan) -> 6\n5: leaf 1.0\n6: leaf 2.0",
            3,
        ),
        # missing routed to opposite sides: different functions
        (
            "0: x[0] lt 1.0 ? 1 : 4\n1: x[1] le 2.0 ? 2 : 3 missing(nan) -> 3\n2: leaf 1.0\n3: leaf 2.0\n"
            "4: x[1] le 2.0 ? 5 : 6 missing(nan) -> 5\n5: leaf 1.0\n6: leaf 2.0",
            7,
        ),
        # mirrored subtrees (yes/no swapped) are not identical
        ("0: x[0] lt 1.0 ? 1 : 4\n1: x[1] le 2.0 ? 2 : 3\n2: leaf 1.0\n3: leaf 2.0\n4: x[1] le 2.0 ? 5 : 6\n5: leaf 2.0\n6: leaf 1.0", 7),
        # categorical sets must match
        (
            "0: x[0] lt 1.0 ? 1 : 4\n1: x[2] in {1, 3} ? 2 : 3\n2: leaf 1.0\n3: leaf 2.0\n"
            "4: x[2] in {1, 4} ? 5 : 6\n5: leaf 1.0\n6: leaf 2.0",
            7,
        ),
        # a chain that folds only once its children have: one sweep
        ("0: x[0] lt 1.0 ? 1 : 4\n1: x[1] lt 1.0 ? 2 : 3\n2: leaf 5.0\n3: leaf 5.0\n4: x[2] lt 1.0 ? 5 : 6\n5: leaf 5.0\n6: leaf 5.0", 1),
    ],
)
def test_cases(tree, nodes_after):
    m = _module([tree])
    X = np.array([[a, b, c] for a in (0.0, 1.0, 2.0, np.nan) for b in (1.0, 2.0, 3.0, np.nan) for c in (1.0, 3.0, 4.0, np.nan)])
    check_exact(m, "tree-fold-redundant-splits", X)
    assert _nodes(m) == [nodes_after]


def test_vector_leaves_compare_every_component():
    m = _module(["0: x[0] lt 1.0 ? 1 : 2\n1: leaf [1.0, 2.0]\n2: leaf [1.0, 3.0]"], dim=2)
    run_pipeline(m, "tree-fold-redundant-splits")
    assert _nodes(m) == [3]


def _canon(t: NodeTable, n: int):
    """Reference for the hash: a nested tuple of every field, a split with equal children
    standing for its child (as after folding)."""
    if t.pred[n] == Pred.LEAF:
        return ("leaf", t.leaf[n].tobytes())
    y, no = _canon(t, int(t.yes[n])), _canon(t, int(t.no[n]))
    if y == no:
        return y
    side = None if t.default[n] < 0 else t.default[n] == t.yes[n]
    return (int(t.feature[n]), int(t.pred[n]), t.threshold[n].tobytes(), int(t.missing[n]), side, y, no)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 100_000))
def test_hash_candidates_match_a_structural_reference(seed):
    """Bottom-up hashes flag a split iff its children are equal after folding (on trees whose
    fields take few values, so that equal subtrees are common)."""
    rng = np.random.default_rng(seed)
    t = irgen.random_table(rng, 2, 4, np.float32, np.float32, categorical=False)
    split = t.pred != Pred.LEAF
    t.leaf[:] = rng.integers(0, 2, size=t.leaf.shape)
    t.threshold[split] = rng.integers(0, 2, size=int(split.sum()))
    t.feature[split] = rng.integers(0, 2, size=int(split.sum()))
    m = irgen.random_module(0, n_features=2, n_trees=1, categorical=False, transform="none")
    (op,) = next(ensembles(m)).trees
    op.table = t
    h = subtree_hashes(Forest(next(ensembles(m))))
    for i in np.flatnonzero(split).tolist():
        assert (h[t.yes[i]] == h[t.no[i]]) == (_canon(t, int(t.yes[i])) == _canon(t, int(t.no[i])))
    check_exact(m, "tree-fold-redundant-splits", np.array([[a, b] for a in (0.0, 1.0, np.nan) for b in (0.0, 1.0, np.nan)]))


def test_identical_subtrees_gives_the_node_mapping():
    t = _module(
        ["0: x[0] lt 1.0 ? 1 : 4\n1: x[1] le 2.0 ? 2 : 3\n2: leaf 1.0\n3: leaf 2.0\n4: x[1] le 2.0 ? 5 : 6\n5: leaf 1.0\n6: leaf 2.0"]
    )
    (op,) = [o for o in t.walk() if isinstance(o, TreeOp)]
    assert identical_subtrees(TreeGraph(op.table), 1, 4) == {4: 1, 5: 2, 6: 3}


def test_oblivious_levels():
    leaf = np.array([1.0, 2.0, 1.0, 2.0, 5.0, 6.0, 5.0, 6.0], np.float32)  # bit 1 never matters
    t = ObliviousTable([0, 1, 2], [Pred.GT] * 3, np.array([0.5, 1.5, 2.5], np.float32), [0, 0, 0], [False] * 3, leaf)
    folded, dropped = fold_oblivious_levels(t)
    assert dropped == 1 and list(folded.feature) == [0, 2]
    np.testing.assert_array_equal(folded.leaf.reshape(-1), [1.0, 2.0, 5.0, 6.0])
    constant = ObliviousTable([0], [Pred.GT], np.array([0.5], np.float32), [0], [False], np.array([3.0, 3.0], np.float32))
    folded, dropped = fold_oblivious_levels(constant)
    assert dropped == 1 and folded.depth == 0


def test_oblivious_in_module_exact():
    m = irgen.random_module(4, oblivious=True, transform="none", n_trees=6, depth=3)
    for op in m.walk():
        if isinstance(op, ObliviousOp) and op.table.depth >= 1:
            op.table.leaf[1::2] = op.table.leaf[0::2]  # level 0 stops mattering
    entries = check_exact(m, "tree-fold-redundant-splits")
    assert entries[0].stats.get("oblivious-levels-dropped", 0) >= 1
