"""tree-prune-leaves: lossy, so tested for its bound instead of exactness.

Per tree, no row's output moves by more than the tolerance (the error is recorded on the tree
and re-runs spend only what is left); each ensemble output moves by at most the sum the audit
log reports, plus the rounding of the accumulation (each of the n additions rounds once)."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ir.dialects.tree import EnsembleOp, TreeOp
from ir.interpreter import run
from ir.parser import parse_module
from passes import run_pipeline
from passes.tree_prune import PRUNE_ERROR
from tests.passes.models import FRAMEWORK_MODELS, VARIANTS, framework_module, random_module, rows_for

pytestmark = pytest.mark.filterwarnings("ignore:overflow encountered in cast:RuntimeWarning")


def _rounding_slack(module) -> float:
    """Accumulation rounding: each addition of each ensemble rounds once, by at most half an
    ulp of a partial sum; bound every partial sum by |init| + sum of the largest |leaf|."""
    slack = 0.0
    for ens in (op for op in module.walk() if isinstance(op, EnsembleOp)):
        eps = float(np.finfo(ens.results[0].type.element.numpy).eps)
        big = float(np.abs(ens.attributes["init"].values).max()) + sum(float(np.abs(t.table.leaf).max()) for t in ens.trees)
        slack += 2 * len(ens.trees) * eps * big
    return slack


def _check_bound(module, tol: float):
    X = rows_for(module)
    before = run(module, X, "margin")
    entries = run_pipeline(module, f"tree-prune-leaves{{tolerance={tol!r}}}")
    (e,) = entries
    after = run(module, X, "margin")
    assert not e.exact
    bound = e.stats.get("max-output-error", 0.0)
    for op in module.walk():
        if isinstance(op, (TreeOp,)) and PRUNE_ERROR in op.attributes:
            assert 0 <= op.attributes[PRUNE_ERROR].value <= tol
    np.testing.assert_array_equal(np.isnan(after), np.isnan(before))
    finite = np.isfinite(before)
    np.testing.assert_array_equal(after[~finite], before[~finite])
    diff = np.abs(after[finite].astype(np.float64) - before[finite].astype(np.float64))
    assert diff.max(initial=0.0) <= bound + _rounding_slack(module), (diff.max(), bound)
    if e.changed:
        assert any("moves by at most" in n for n in e.notes)
    # Idempotent: the recorded error leaves no budget for a second collapse.
    again = run_pipeline(module, f"tree-prune-leaves{{tolerance={tol!r}}}")
    assert not again[0].changed
    return e


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(variant=st.sampled_from(sorted(VARIANTS)), seed=st.integers(0, 100_000), tol=st.sampled_from([0.0, 0.01, 0.2, 1.0, 5.0]))
def test_error_within_reported_bound_on_random_ir(variant, seed, tol):
    _check_bound(random_module(variant, seed), tol)


@pytest.mark.parametrize("model", FRAMEWORK_MODELS)
def test_error_within_reported_bound_on_framework_models(model, tmp_path_factory):
    m = framework_module(model, tmp_path_factory)
    e = _check_bound(m, 0.05)
    assert e.stats.get("max-output-error", 0.0) <= 0.05 * len(next(op for op in m.walk() if isinstance(op, EnsembleOp)).trees)


def test_budget_carries_over_between_runs():
    m = random_module("f32", 11)
    run_pipeline(m, "tree-prune-leaves{tolerance=0.3}")
    recorded = [op.attributes[PRUNE_ERROR].value for op in m.walk() if isinstance(op, TreeOp) and PRUNE_ERROR in op.attributes]
    assert recorded and max(recorded) <= 0.3
    # A larger tolerance may collapse more, and the recorded error grows but stays within it.
    run_pipeline(m, "tree-prune-leaves{tolerance=2.0}")
    recorded2 = [op.attributes[PRUNE_ERROR].value for op in m.walk() if isinstance(op, TreeOp) and PRUNE_ERROR in op.attributes]
    assert max(recorded2) <= 2.0 and max(recorded2) >= max(recorded)


TWO_LEAVES = """
module {
  func.func @margin(%x: tensor<1xf64>) -> tensor<1xf64> {
    %m = tree.ensemble %x {compare = f64, init = dense<[0.0]> : tensor<1xf64>, leaves = f64} : tensor<1xf64> -> tensor<1xf64> {
      tree.tree out 0 {
        0: x[0] lt 0.5 ? 1 : 2
        1: leaf LEFT
        2: leaf RIGHT
      }
    }
    func.return %m : tensor<1xf64>
  }
}
"""


@pytest.mark.parametrize(
    "left, right, tol, collapses",
    [
        ("1.0", "1.0", 0.0, True),  # equal leaves: no error at all
        ("1.0", "1.5", 0.25, True),  # midpoint 1.25 is exactly 0.25 from each
        ("1.0", "1.5000000000000002", 0.25, False),  # a hair wider: exact arithmetic says no
        ("0.1", "0.30000000000000004", 0.1, False),  # float rounding must not let this through
        ("-0.0", "0.0", 0.0, True),
        ("0x7FF8000000000000", "1.0", 100.0, False),  # NaN leaves are never merged
        ("0x7FF0000000000000", "0x7FF0000000000000", 1.0, False),  # inf - inf is no distance
    ],
)
def test_decision_is_exact_at_the_tolerance(left, right, tol, collapses):
    m = parse_module(TWO_LEAVES.replace("LEFT", left).replace("RIGHT", right))
    (e,) = run_pipeline(m, f"tree-prune-leaves{{tolerance={tol!r}}}")
    assert e.changed == collapses
    if collapses:
        t = next(op for op in m.walk() if isinstance(op, TreeOp))
        assert t.table.n_nodes == 1
        lo, hi = float(left), float(right)
        mid = float(t.table.leaf[0, 0])
        assert max(abs(mid - lo), abs(hi - mid)) <= tol


def test_linear_leaves_are_left_alone():
    m = random_module("linear-exp", 5)
    before = [op.table.n_nodes for op in m.walk() if isinstance(op, TreeOp) and op.table.is_linear]
    run_pipeline(m, "tree-prune-leaves{tolerance=100.0}")
    after = [op.table.n_nodes for op in m.walk() if isinstance(op, TreeOp) and op.table.is_linear]
    assert before and before == after
