"""The vectorised node-table helpers agree with the node-by-node definitions they replace:
`NodeTable.preorder` with `preorder_walk`, and `node_tables_valid` (the verifier's one-sweep
check of all an ensemble's tables) with `NodeTable.check` on each table."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ir.dialects.tree import Missing, NodeTable, Pred, node_tables_valid
from tests import irgen


def renumbered(t: NodeTable, rng) -> NodeTable:
    """The same tree with its non-root nodes numbered in a random order (irgen numbers in
    pre-order, which would make any pre-order trivially the identity)."""
    n = t.n_nodes
    perm = np.concatenate([[0], 1 + rng.permutation(n - 1)])  # perm[old] = new
    inv = np.argsort(perm)  # inv[new] = old

    def ids(col):
        return np.where(col >= 0, perm[np.maximum(col, 0)], -1)[inv]

    lin = {}
    if t.is_linear:
        lin = dict(
            lin_const=t.lin_const[inv], lin_start=t.lin_start[inv], lin_len=t.lin_len[inv], lin_feature=t.lin_feature, lin_coeff=t.lin_coeff
        )
    return NodeTable(
        t.feature[inv], t.pred[inv], t.threshold[inv], ids(t.yes), ids(t.no), t.missing[inv], ids(t.default), t.leaf[inv],
        t.cat_start[inv], t.cat_len[inv], t.cat_words, **lin,
    )  # fmt: skip


def random_tables(seed: int, count: int = 6, n_features: int = 5) -> list[NodeTable]:
    rng = np.random.default_rng(seed)
    out = []
    for k in range(count):
        tdt, ldt = (np.float32, np.float32) if k % 2 else (np.float64, np.float64)
        t = irgen.random_table(rng, n_features, int(rng.integers(0, 7)), tdt, ldt, leaf_dim=int(rng.integers(1, 3)))
        out.append(renumbered(t, rng) if t.n_nodes > 1 else t)
    return out


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 100_000))
def test_preorder_matches_the_node_by_node_walk(seed):
    for t in random_tables(seed):
        assert t.preorder() == t.preorder_walk()


def test_preorder_of_a_table_that_is_not_one_tree_is_the_walks():
    """Node 3 unreachable; then node 2 reached twice: the walk's answer either way."""
    leaf = np.zeros((4, 1), np.float32)
    cols = dict(feature=[0, -1, -1, -1], pred=[Pred.LT, 0, 0, 0], threshold=np.zeros(4, np.float32), missing=[0] * 4, default=[-1] * 4)
    unreachable = NodeTable(yes=[1, -1, -1, -1], no=[2, -1, -1, -1], leaf=leaf, **cols)
    assert unreachable.preorder() == unreachable.preorder_walk() == [0, 1, 2]
    twice = NodeTable(yes=[2, -1, -1, -1], no=[2, -1, -1, -1], leaf=leaf, **cols)
    assert twice.preorder() == twice.preorder_walk() == [0, 2, 2]


CORRUPTIONS = {
    "unknown predicate": lambda t, r: setattr(t, "pred", _put(t.pred, r % t.n_nodes, 9)),
    "feature out of range": lambda t, r: setattr(t, "feature", _put(t.feature, _split(t, r), 99)),
    "child out of range": lambda t, r: setattr(t, "yes", _put(t.yes, _split(t, r), t.n_nodes)),
    "child is the root": lambda t, r: setattr(t, "no", _put(t.no, _split(t, r), 0)),
    "two parents": lambda t, r: setattr(t, "no", _put(t.no, _split(t, r), int(t.yes[_split(t, r)]))),
    "unknown missing kind": lambda t, r: setattr(t, "missing", _put(t.missing, r % t.n_nodes, 7)),
    "default not a child": lambda t, r: (
        setattr(t, "missing", _put(t.missing, _split(t, r), Missing.NAN)),
        setattr(t, "default", _put(t.default, _split(t, r), 0)),
    ),
    "default without missing kind": lambda t, r: (
        setattr(t, "missing", _put(t.missing, _split(t, r), Missing.NONE)),
        setattr(t, "default", _put(t.default, _split(t, r), int(t.yes[_split(t, r)]))),
    ),
    "NaN threshold": lambda t, r: (
        setattr(t, "pred", _put(t.pred, _split(t, r), Pred.LT)),
        setattr(t, "threshold", _put(t.threshold, _split(t, r), np.nan)),
    ),
    "category set outside the pool": lambda t, r: (
        setattr(t, "pred", _put(t.pred, _split(t, r), Pred.IN)),
        setattr(t, "cat_len", _put(t.cat_len, _split(t, r), len(t.cat_words) + 1)),
    ),
    "short column": lambda t, r: setattr(t, "missing", t.missing[:-1]),
    "cycle": lambda t, r: _cycle(t),
}


def _put(col, i, v):
    col = col.copy()
    col[i] = v
    return col


def _split(t, r) -> int:
    splits = np.flatnonzero(t.pred != Pred.LEAF)
    return int(splits[r % len(splits)]) if len(splits) else 0


def _cycle(t):
    """A root leaf with a detached two-node cycle: every node but the root has one parent."""
    n = t.n_nodes
    if n < 3:
        return
    t.pred = np.zeros(n, np.uint8)
    t.pred[1:3] = Pred.LT
    t.feature = np.where(t.pred != Pred.LEAF, 0, -1).astype(np.int32)
    t.yes, t.no = np.full(n, -1, np.int32), np.full(n, -1, np.int32)
    t.yes[1], t.no[1], t.yes[2], t.no[2] = 2, 1, 1, 2  # nodes 1 and 2 parent each other (and themselves)
    t.missing, t.default = np.zeros(n, np.uint8), np.full(n, -1, np.int32)


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 100_000), corruption=st.sampled_from([None, *sorted(CORRUPTIONS)]), which=st.integers(0, 5), r=st.integers(0, 50)
)
def test_one_sweep_check_agrees_with_each_tables_check(seed, corruption, which, r):
    tables = random_tables(seed)
    if corruption is not None:
        CORRUPTIONS[corruption](tables[which], r)
    expected = all(t.check(5) is None for t in tables)
    assert node_tables_valid(tables, 5) == expected


@pytest.mark.parametrize("variant", sorted(irgen.VARIANTS))
def test_verifier_names_the_first_bad_tree_as_before(variant):
    """With a bad table among good ones the verifier still reports that tree's own message."""
    from ir.diagnostics import VerifyError
    from ir.dialects.tree import TreeOp
    from ir.verifier import verify

    m = irgen.random_module(3, **irgen.VARIANTS[variant])
    trees = [op for op in m.walk() if isinstance(op, TreeOp)]
    if not trees:
        pytest.skip("oblivious trees only")
    op = trees[len(trees) // 2]
    t = op.table
    bad = renumbered(t, np.random.default_rng(0)) if t.n_nodes > 1 else t
    bad.feature = _put(bad.feature, _split(bad, 0), 99)
    op.table = bad
    index = next(i for i, o in enumerate(op.parent.ops) if o is op)
    with pytest.raises(VerifyError, match=rf"tree {index}: " + "node \\d+: feature index 99 out of range"):
        verify(m)
