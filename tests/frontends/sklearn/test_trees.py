"""scikit-learn tree estimators compiled by Timber return scikit-learn's own answers bit for bit:
DecisionTree, RandomForest, ExtraTrees (classifiers, regressors, multi-output), GradientBoosting
(every loss, every kind of `init`, binary, multiclass with more than 8 classes), IsolationForest.

Rows: every split threshold with its float32 and float64 neighbours (sklearn compares
`(double)x_f32 <= threshold`), NaN (per-node `missing_go_to_left`), ±0.0, plus random rows.
Rows scikit-learn refuses (±inf, values beyond float32, NaN for estimators without missing-value
support) are left out of the comparison.  Most checks run the IR interpreter with the C
library's math; `test_jit_*` compile with the JIT.
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("sklearn")
from sklearn import ensemble, tree  # noqa: E402
from sklearn.dummy import DummyClassifier  # noqa: E402

from ir.diagnostics import TimberError  # noqa: E402

from .helpers import assert_parity, compiled, module_of, parity_rows, predict, reference  # noqa: E402

RNG = np.random.default_rng(0)
N = 240
X = RNG.standard_normal((N, 5))
X_NAN = X.copy()
X_NAN[RNG.random(X.shape) < 0.1] = np.nan
Y3 = (np.nan_to_num(X[:, 0]) > 0).astype(int) + (X[:, 1] > 0.5)  # 3 classes
YR = 2 * X[:, 0] + np.sin(3 * X[:, 1]) + 0.1 * RNG.standard_normal(N)
Y_MULTI = np.column_stack([Y3, (X[:, 2] > 0).astype(int) * 5])  # two outputs, classes {0,1,2} and {0,5}


@pytest.mark.parametrize(
    "make",
    [
        lambda: tree.DecisionTreeClassifier(max_depth=6, random_state=0).fit(X_NAN, Y3),
        lambda: tree.ExtraTreeClassifier(max_depth=6, random_state=0).fit(X, Y3),
        lambda: ensemble.RandomForestClassifier(12, max_depth=6, random_state=0).fit(X_NAN, Y3),
        lambda: ensemble.ExtraTreesClassifier(12, max_depth=6, random_state=0).fit(X, Y3 == 1),
    ],
    ids=["dt", "extra-tree", "rf-nan", "et-binary"],
)
@pytest.mark.parametrize("method", ["predict_proba", "predict", "predict_log_proba"])
def test_tree_classifiers(make, method):
    import warnings

    est = make()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # log(0) in sklearn's predict_log_proba
        assert_parity(est, method)


@pytest.mark.parametrize(
    "make",
    [
        lambda: tree.DecisionTreeRegressor(max_depth=7, random_state=0).fit(X_NAN, YR),
        lambda: ensemble.RandomForestRegressor(10, max_depth=6, random_state=0).fit(X_NAN, YR),
        lambda: ensemble.ExtraTreesRegressor(10, max_depth=6, random_state=0).fit(X, np.column_stack([YR, -YR])),
    ],
    ids=["dt", "rf-nan", "et-2-outputs"],
)
def test_tree_regressors(make):
    assert_parity(make(), "predict")


def test_multi_output_classifier():
    """predict_proba of a multi-output classifier is its list of per-output arrays side by side;
    predict gives one label column per output."""
    est = ensemble.RandomForestClassifier(8, max_depth=5, random_state=0).fit(X, Y_MULTI)
    assert_parity(est, "predict_proba")
    assert_parity(est, "predict")


def test_rf_averages_probabilities_in_float64_then_divides():
    """A forest's predict_proba is the f64 sum of its trees' leaf fractions divided by the tree
    count (sklearn's order), not a vote or a multiply by 1/n."""
    est = ensemble.RandomForestClassifier(7, max_depth=4, random_state=1).fit(X, Y3)
    module = module_of(est)
    text = str(module.body.ops[0].body.ops[-2])
    assert "arith.divf" in text
    assert_parity(est, module=module)


# ----- gradient boosting ---------------------------------------------------------------------

X_GB = X  # GradientBoosting refuses NaN at fit and predict time
Y10 = RNG.integers(0, 10, N)


@pytest.mark.parametrize(
    "kw,y",
    [
        ({}, Y3 == 1),
        ({"loss": "exponential"}, Y3 == 1),
        ({}, Y3),
        ({"init": "zero"}, Y3),
        ({"init": DummyClassifier(strategy="uniform")}, Y3 == 1),
        ({"init": DummyClassifier(strategy="most_frequent")}, Y3),
        ({"init": tree.DecisionTreeClassifier(max_depth=2)}, Y3 == 1),
        ({"n_estimators": 4}, Y10),
    ],
    ids=["binary", "exponential", "multiclass", "init-zero", "init-uniform", "init-most-frequent", "init-tree", "10-classes"],
)
@pytest.mark.parametrize("method", ["predict_proba", "decision_function", "predict"])
def test_gradient_boosting_classifier(kw, y, method):
    est = ensemble.GradientBoostingClassifier(n_estimators=kw.pop("n_estimators", 12), max_depth=3, learning_rate=0.3, random_state=0, **kw)
    est.fit(X_GB, y)
    assert_parity(est, method)


@pytest.mark.parametrize(
    "kw",
    [{"loss": "squared_error"}, {"loss": "absolute_error"}, {"loss": "huber", "alpha": 0.8}, {"loss": "quantile", "alpha": 0.2},
     {"init": "zero"}, {"init": tree.DecisionTreeRegressor(max_depth=2)}],
    ids=["squared", "absolute", "huber", "quantile", "init-zero", "init-tree"],
)  # fmt: skip
def test_gradient_boosting_regressor(kw):
    est = ensemble.GradientBoostingRegressor(n_estimators=12, max_depth=3, learning_rate=0.15, random_state=0, **kw).fit(X_GB, YR)
    assert_parity(est, "predict")


def test_gradient_boosting_learning_rate_is_applied_once_per_leaf():
    """raw = init + Σ lr·leaf with lr·leaf rounded once (sklearn's `scale * value`): an odd
    learning rate would show a different rounding."""
    est = ensemble.GradientBoostingRegressor(n_estimators=9, learning_rate=0.1 / 3, random_state=0).fit(X_GB, YR)
    assert_parity(est, "predict")


def test_gradient_boosting_multiclass_init_estimator_is_refused():
    est = ensemble.GradientBoostingClassifier(n_estimators=2, init=tree.DecisionTreeClassifier(max_depth=2), random_state=0).fit(X_GB, Y3)
    with pytest.raises(TimberError, match="multiclass GradientBoostingClassifier init_"):
        module_of(est)


# ----- isolation forest ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kw", [{}, {"max_features": 3}, {"max_samples": 50, "contamination": 0.1}], ids=["all", "max-features-3", "contamination"]
)
@pytest.mark.parametrize("method", ["decision_function", "score_samples"])
def test_isolation_forest(kw, method):
    est = ensemble.IsolationForest(n_estimators=15, random_state=0, **kw).fit(X_NAN)
    module = module_of(est, method)
    X, ref = reference(est, method, parity_rows(module))
    got = predict(module, X)  # math="libm": 2 ** (-d/c) is pow(2, .), as numpy computes it
    assert got.shape == ref.shape == (len(X),)
    np.testing.assert_array_equal(got, ref)


def test_isolation_forest_predict_labels():
    est = ensemble.IsolationForest(n_estimators=10, contamination=0.2, random_state=0).fit(X)
    X_, ref = reference(est, "predict", parity_rows(module_of(est, "predict")))
    got = predict(module_of(est, "predict"), X_)
    np.testing.assert_array_equal(got, ref)


# ----- the JIT ---------------------------------------------------------------------------------


def test_jit_matches_sklearn():
    """Compiled machine code (not just the interpreter) gives sklearn's bits, shape included: a
    multiclass GradientBoosting (f32 splits, softmax with the C library's exp) and a regressor's
    1-D output."""
    gb = ensemble.GradientBoostingClassifier(n_estimators=6, max_depth=3, random_state=0).fit(X_GB, Y3)
    m = compiled(gb)
    X_, ref = reference(gb, "predict_proba", parity_rows(m.module, seed=3))
    np.testing.assert_array_equal(m.predict(X_), ref)
    reg = tree.DecisionTreeRegressor(max_depth=4, random_state=0).fit(X_NAN, YR)
    m = compiled(reg)
    X_, ref = reference(reg, "predict", parity_rows(m.module))
    got = m.predict(X_)
    assert got.shape == ref.shape == (len(X_),)
    np.testing.assert_array_equal(got, ref)


def test_threshold_neighbours_in_float32():
    """A row exactly on a threshold's float32 image and one float32 ulp either side goes where
    sklearn sends it (the threshold is stored as the largest float32 not above it)."""
    est = tree.DecisionTreeRegressor(max_depth=8, random_state=0).fit(X, YR)
    thr = est.tree_.threshold[est.tree_.feature >= 0]
    feat = est.tree_.feature[est.tree_.feature >= 0]
    rows = []
    for f, t in zip(feat, thr):
        t32 = np.float32(t)
        for v in (t32, np.nextafter(t32, np.float32(1e9)), np.nextafter(t32, np.float32(-1e9)), t, np.nextafter(t, 9), np.nextafter(t, -9)):
            r = np.zeros(5)
            r[f] = v
            rows.append(r)
    assert_parity(est, "predict", X=np.array(rows))
