"""The vectorised analyses behind the tree passes give what the straightforward versions they
replaced give: the same decided splits, pre-orders, levels, shape groups, per-feature
precisions and fold candidates; `cse` skips only functions where nothing can merge; and a
default compile of a model with nothing to rewrite never imports networkx."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ir.dialects.tree import Missing, NodeTable, Pred, TreeOp, bitset_from_members
from ir.printer import print_op
from passes import cse as cse_module
from passes import run_pipeline
from passes.forest import Forest, ensembles
from passes.tree_analysis import _signature, shape_groups
from passes.tree_fold import identical_subtrees, subtree_hashes
from passes.tree_narrow import GRIDS, _splits, narrowest_per_feature, valid_grids
from passes.tree_rewrite import tree_graph_of
from passes.tree_unreachable import NUMERIC, branch_sets, decided_splits
from tests import irgen
from tests.passes.models import VARIANTS

pytestmark = pytest.mark.filterwarnings("ignore:overflow encountered in cast:RuntimeWarning")


def modules(seed: int):
    """Every variant, with few features and deep trees so that ancestors share features."""
    for kw in VARIANTS.values():
        yield irgen.random_module(seed, n_features=2, n_trees=6, depth=6, **kw)


def decided_reference(f: Forest) -> np.ndarray:
    """`decided_splits` as first written: every node walks all the way up, full-width arrays."""
    n = f.n
    if n == 0:
        return np.zeros(0, np.int8)
    (y_lo, y_hi, y_nan), (n_lo, n_hi, n_nan) = branch_sets(f)
    dt = f.threshold.dtype.type
    lo, hi, nan = np.full(n, dt(-np.inf)), np.full(n, dt(np.inf)), np.ones(n, bool)
    numeric = np.isin(f.pred, NUMERIC)
    c, a = np.arange(n), f.parent.copy()
    while (a >= 0).any():
        live = a >= 0
        idx = np.flatnonzero(live)
        aa, cc = a[idx], c[idx]
        same = (f.feature[aa] == f.feature[idx]) & numeric[aa]
        k, aa, cc = idx[same], aa[same], cc[same]
        on_yes = f.yes[aa] == cc
        lo[k] = np.maximum(lo[k], np.where(on_yes, y_lo[aa], n_lo[aa]))
        hi[k] = np.minimum(hi[k], np.where(on_yes, y_hi[aa], n_hi[aa]))
        nan[k] &= np.where(on_yes, y_nan[aa], n_nan[aa])
        c = np.where(live, a, c)
        a = np.where(live, f.parent[np.maximum(a, 0)], -1)
    yes_live = (np.maximum(lo, y_lo) <= np.minimum(hi, y_hi)) | (nan & y_nan)
    no_live = (np.maximum(lo, n_lo) <= np.minimum(hi, n_hi)) | (nan & n_nan)
    only_t = (lo == hi) & (lo == f.threshold) & (f.missing != Missing.ZERO)
    no_live &= ~(only_t & (f.pred == Pred.EQ) & ~(nan & n_nan))
    yes_live &= ~(only_t & (f.pred == Pred.NE) & ~(nan & y_nan))
    out = np.zeros(n, np.int8)
    out[numeric & yes_live & ~no_live] = 1
    out[numeric & no_live & ~yes_live] = 2
    return out


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 100_000))
def test_decided_splits_match_the_full_width_walk(seed):
    for m in modules(seed):
        for ens in ensembles(m):
            f = Forest(ens)
            got, want = decided_splits(f), decided_reference(f)
            np.testing.assert_array_equal(got, want)


def test_the_comparison_sees_decided_splits():
    """The random modules above do contain decided splits (so the comparison means something)."""
    total = sum(int(np.count_nonzero(decided_splits(Forest(ens)))) for m in modules(1) for ens in ensembles(m))
    assert total > 0


@settings(max_examples=8, deadline=None)
@given(seed=st.integers(0, 100_000))
def test_forest_preorder_and_levels_match_each_table(seed):
    for m in modules(seed):
        for ens in ensembles(m):
            f = Forest(ens)
            order = f.preorder()
            for t, op in enumerate(f.ops):
                lo, hi = int(f.offsets[t]), int(f.offsets[t + 1])
                assert (order[lo:hi] - lo).tolist() == op.table.preorder_walk()
            split = f.pred != Pred.LEAF
            want = [np.flatnonzero(split & (f.depth == d)) for d in range(int(f.depth[split].max()), -1, -1)] if split.any() else []
            got = f.levels_bottom_up()
            assert len(got) == len(want) and all(np.array_equal(a, b) for a, b in zip(got, want))


@settings(max_examples=5, deadline=None)
@given(seed=st.integers(0, 100_000))
def test_shape_groups_from_the_forest_are_the_per_tree_signatures(seed):
    rng = np.random.default_rng(seed)
    for m in modules(seed):
        for ens in ensembles(m):
            # Repeat tree shapes with other thresholds so that groups have several members.
            for op in [o for o in ens.trees if isinstance(o, TreeOp) and not o.table.is_linear][:2]:
                t = op.table
                copy = NodeTable(
                    t.feature,
                    t.pred,
                    t.threshold + rng.normal(),
                    t.yes,
                    t.no,
                    t.missing,
                    t.default,
                    t.leaf,
                    t.cat_start,
                    t.cat_len,
                    t.cat_words,
                )
                ens.body.add_op(TreeOp.build(copy, op.out))
            trees = list(ens.trees)
            f = Forest(ens)
            assert shape_groups(trees, "signature", f) == shape_groups(trees, "signature")
            index: dict = {}
            assert shape_groups(trees, "signature", f) == [index.setdefault(_signature(op), len(index)) for op in trees]


def narrowest_reference(ens, rdt):
    """`narrowest_per_feature` as first written: one mask per feature."""
    ct = ens.compare_type.numpy
    feature, pred, t = _splits(ens)
    grids = valid_grids(pred, t, rdt, ct)
    numeric = (pred != Pred.IN) & (pred != Pred.LEAF)
    allowed = [g for g in GRIDS if not (g == "f64" and np.dtype(ct).itemsize < 8)]
    wide = {"f32": 4, "f64": 8}
    result = []
    for j in range(ens.n_features):
        sel = numeric & (feature == j)
        if not sel.any():
            result.append(("none", "none"))
            continue
        for g in allowed:
            d = next((d for d in ("down", "up") if grids[(g, d)][sel].all()), None)
            if d is not None:
                result.append((g, "exact" if wide.get(g, 0) >= np.dtype(rdt).itemsize else d))
                break
        else:
            result.append((allowed[-1], "exact"))
    return result


@settings(max_examples=5, deadline=None)
@given(seed=st.integers(0, 100_000))
def test_narrowest_per_feature_matches_the_per_feature_masks(seed):
    for kw in VARIANTS.values():
        m = irgen.random_module(seed, n_features=6, **kw)
        for ens in ensembles(m):
            for rdt in (np.dtype(np.float32), np.dtype(np.float64)):
                assert narrowest_per_feature(ens, rdt) == narrowest_reference(ens, rdt)


@settings(max_examples=4, deadline=None)
@given(seed=st.integers(0, 100_000))
def test_identical_subtrees_hash_alike(seed):
    """Every split whose children the fold pass proves identical (networkx isomorphism, every
    field bit for bit) is a candidate: its children hash alike (leaf values, category sets
    and linear leaves included)."""
    for m in modules(seed):
        for ens in ensembles(m):
            f = Forest(ens)
            h = subtree_hashes(f)
            for t, op in enumerate(f.ops):
                tab, base = op.table, int(f.offsets[t])
                tg = tree_graph_of(op)
                for i in np.flatnonzero(tab.pred != Pred.LEAF).tolist():
                    if identical_subtrees(tg, int(tab.yes[i]), int(tab.no[i])) is not None:
                        assert h[base + tab.yes[i]] == h[base + tab.no[i]]


def test_category_sets_hash_alike_with_trailing_zero_words():
    """`in {1, 40}` written with two bitset words and with four (two zero words after) is the
    same split: a split choosing between the two folds."""
    words2 = bitset_from_members([1, 40])
    words4 = np.concatenate([words2, np.zeros(2, np.uint32)])
    # 0: x[0] lt 0 ? 1 : 4;  1: x[1] in {1,40} ? 2 : 3;  4: the same split with padded words.
    n = 7
    t = NodeTable(
        feature=[0, 1, -1, -1, 1, -1, -1], pred=[Pred.LT, Pred.IN, 0, 0, Pred.IN, 0, 0], threshold=np.zeros(n, np.float32),
        yes=[1, 2, -1, -1, 5, -1, -1], no=[4, 3, -1, -1, 6, -1, -1], missing=[0] * n, default=[-1] * n,
        leaf=np.array([0, 0, 1.5, -2, 0, 1.5, -2], np.float32), cat_start=[0, 0, 0, 0, 2, 0, 0], cat_len=[0, 2, 0, 0, 4, 0, 0],
        cat_words=np.concatenate([words2, words4]),
    )  # fmt: skip
    m = irgen.random_module(0, n_features=2, n_trees=1, depth=1, categorical=False)
    op = next(o for o in m.walk() if isinstance(o, TreeOp))
    op.table = t
    h = subtree_hashes(Forest(next(ensembles(m))))
    assert h[1] == h[4]
    run_pipeline(m, "tree-fold-redundant-splits")
    assert next(o for o in m.walk() if isinstance(o, TreeOp)).table.n_nodes == 3


@settings(max_examples=6, deadline=None)
@given(seed=st.integers(0, 100_000))
def test_cse_skips_only_functions_where_nothing_merges(seed):
    """Where `may_merge` says no, running the full op-graph sweep anyway changes nothing."""
    for m in modules(seed):
        for f in [o for o in m.walk() if o.name == "func.func"]:
            if cse_module.may_merge(f.body.ops):
                continue
            before = print_op(m)
            real, cse_module.may_merge = cse_module.may_merge, lambda ops: True
            try:
                audit = run_pipeline(m, "cse")
            finally:
                cse_module.may_merge = real
            assert not audit[0].changed and print_op(m) == before


def test_cse_still_merges_duplicates():
    """A second, identical ensemble (its result unused) is merged into the first."""
    from ir.parser import parse_module

    lines = print_op(irgen.random_module(5, n_features=3, n_trees=3, depth=3)).splitlines()
    start = next(i for i, line in enumerate(lines) if "tree.ensemble" in line)
    depth, end = 0, start
    for end in range(start, len(lines)):
        depth += lines[end].count("{") - lines[end].count("}")
        if depth == 0:
            break
    dup = [lines[start].replace("%margin =", "%margin2 =", 1)] + lines[start + 1 : end + 1]
    m2 = parse_module("\n".join(lines[: end + 1] + dup + lines[end + 1 :]), "dup.tir")
    assert cse_module.may_merge(next(o for o in m2.walk() if o.name == "func.func").body.ops)
    assert run_pipeline(m2, "cse")[0].changed


ROOT = Path(__file__).resolve().parents[2]


NOTHING_TO_REWRITE = """
module {
  func.func @margin(%x: tensor<2xf32>) -> tensor<1xf32> {
    %m = tree.ensemble %x {compare = f32, init = dense<[0.5]> : tensor<1xf32>, leaves = f32} : tensor<2xf32> -> tensor<1xf32> {
      tree.tree out 0 {
        0: x[0] lt 1.5 ? 1 : 2 missing(nan) -> 1
        1: x[1] le -2.0 ? 3 : 4
        2: leaf 0.25
        3: leaf -1.0
        4: leaf 2.0
      }
    }
    func.return %m : tensor<1xf32>
  }
}
"""


def test_default_pipeline_on_a_model_with_nothing_to_rewrite_imports_no_networkx():
    code = (
        "import sys\n"
        "from ir.parser import parse_module\n"
        "from passes import run_pipeline\n"
        f"audit = run_pipeline(parse_module({NOTHING_TO_REWRITE!r}, 'm.tir'), None)\n"
        "assert not any(e.changed for e in audit if e.name != 'tree-vectorize-analysis' and e.name != 'tree-narrow-thresholds')\n"
        "print('networkx' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_passes_share_a_forest_until_one_changes_the_ir(monkeypatch):
    """The pass manager hands the same `Forest` to later passes while none has changed the IR,
    and builds a new one after a pass that did (its arrays are read-only)."""
    from ir.parser import parse_module
    from passes import forest

    built = []

    class Counting(forest.Forest):
        def __init__(self, ens):
            built.append(ens)
            super().__init__(ens)

    monkeypatch.setattr(forest, "Forest", Counting)
    m = parse_module(NOTHING_TO_REWRITE, "m.tir")
    audit = run_pipeline(m, "tree-remove-unreachable,tree-fold-redundant-splits,tree-vectorize-analysis")
    assert [e.changed for e in audit] == [False, False, True] and len(built) == 1
    built.clear()
    m = parse_module(NOTHING_TO_REWRITE, "m.tir")
    audit = run_pipeline(m, "tree-remove-unreachable,tree-narrow-thresholds,tree-vectorize-analysis")
    assert [e.changed for e in audit] == [False, True, True] and len(built) == 2
    f = forest.forest_of(next(ensembles(m)))
    with pytest.raises(ValueError):
        f.yes[0] = 1
