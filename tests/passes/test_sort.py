"""tree-sort-branches: hit counts are right, the hot child becomes the yes child, predictions
stay bit-identical (also test_exact.py), and later tree rewrites keep the counts consistent."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ir.diagnostics import TimberError
from ir.dialects.tree import HITS, EnsembleOp, Pred, TreeOp
from ir.dialects.tree_eval import tree_leaves as _tree_leaves
from passes import run_pipeline
from passes.tree_sort import load_rows, node_hits
from tests.passes.models import VARIANTS, random_module, rows_for

pytestmark = pytest.mark.filterwarnings("ignore:overflow encountered in cast:RuntimeWarning")


def _consistent(op: TreeOp, n_rows: int) -> None:
    """Counts flow: the root sees every row, each split passes its rows to its children."""
    t, hits = op.table, op.attributes[HITS].values
    assert len(hits) == t.n_nodes and hits[0] == n_rows
    split = np.flatnonzero(t.pred != Pred.LEAF)
    np.testing.assert_array_equal(hits[t.yes[split]] + hits[t.no[split]], hits[split])


@settings(max_examples=25, deadline=None)
@given(variant=st.sampled_from(sorted(VARIANTS)), seed=st.integers(0, 100_000))
def test_hits_match_the_interpreter_paths(tmp_path_factory, variant, seed):
    m = random_module(variant, seed)
    X = rows_for(m, seed)
    ens = next(op for op in m.walk() if isinstance(op, EnsembleOp))
    xs = X.astype(ens.operands[0].type.element.numpy).astype(ens.compare_type.numpy)
    neg = ens.attributes.get("cat_negative")
    for op in ens.trees:
        if isinstance(op, TreeOp):
            hits = node_hits(op.table, xs, neg.value if neg else "value")
            leaves = _tree_leaves(op.table, xs, neg.value if neg else "value")
            at_leaves = np.bincount(leaves, minlength=op.table.n_nodes)
            np.testing.assert_array_equal(hits[op.table.pred == Pred.LEAF], at_leaves[op.table.pred == Pred.LEAF])


@settings(max_examples=25, deadline=None)
@given(variant=st.sampled_from(sorted(VARIANTS)), seed=st.integers(0, 100_000))
def test_hot_child_first_and_counts_survive_later_rewrites(variant, seed):
    m = random_module(variant, seed)
    X = rows_for(m, seed)
    run_pipeline(m, "tree-sort-branches{calibration=X}".replace("X", "%s") % _save(X, seed))
    trees = [op for op in m.walk() if isinstance(op, TreeOp)]
    for op in trees:
        _consistent(op, len(X))
        t, hits = op.table, op.attributes[HITS].values
        swappable = (t.pred != Pred.LEAF) & (t.pred != Pred.IN)
        idx = np.flatnonzero(swappable)
        assert np.all(hits[t.yes[idx]] >= hits[t.no[idx]])
    # Unreachable-branch removal and folding renumber nodes: the counts follow them.
    run_pipeline(m, "tree-remove-unreachable,tree-fold-redundant-splits,tree-prune-leaves{tolerance=0.5}")
    for op in (o for o in m.walk() if isinstance(o, TreeOp)):
        _consistent(op, len(X))


def _save(X, seed):
    import tempfile

    path = f"{tempfile.mkdtemp()}/rows{seed}.npy"
    np.save(path, X)
    return path


def test_calibration_errors(tmp_path):
    m = random_module("f32", 1)
    with pytest.raises(TimberError, match="does not exist"):
        run_pipeline(m, f"tree-sort-branches{{calibration={tmp_path}/nope.npy}}")
    np.save(tmp_path / "wide.npy", np.zeros((3, 9)))
    with pytest.raises(TimberError, match="calibration rows have 9 columns, but the model has 5 features"):
        run_pipeline(m, f"tree-sort-branches{{calibration={tmp_path}/wide.npy}}")
    (tmp_path / "bad.csv").write_text("a,b\n1,2\n1,zz\n")
    with pytest.raises(TimberError, match="cannot read calibration rows"):
        load_rows(tmp_path / "bad.csv")
    (tmp_path / "ok.csv").write_text("a,b,c\n1,2,3\n4,,6\n")
    np.testing.assert_array_equal(load_rows(str(tmp_path / "ok.csv")), [[1, 2, 3], [4, np.nan, 6]])


def test_rows_from_python_arrays():
    """The pass also takes rows directly (as `timber.compile(..., calibration=X)` would)."""
    from passes.manager import PassManager
    from passes.tree_sort import SortBranches

    m = random_module("f64", 2)
    X = rows_for(m, 2)
    PassManager([SortBranches(calibration=X)]).run(m)
    for op in (o for o in m.walk() if isinstance(o, TreeOp)):
        _consistent(op, len(X))
    assert 'calibration="<array' in SortBranches(calibration=X).pipeline_text()
