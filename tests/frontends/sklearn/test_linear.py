"""scikit-learn linear models compiled by Timber equal scikit-learn's own calls.

scikit-learn's `X @ coef_.T` is BLAS (its summation order is the BLAS build's and the CPU's), so
scores are compared within the rounding bound of a dot product in any order: |Δ| ≤ 2·N·u·S with
S = Σ|x_j·w_j| + |b| and u = 2⁻⁵³ (Higham's γ_N for each side).  Probabilities inherit that
(sigmoid and softmax are 1-Lipschitz) plus a few ulps; everything after the scores is computed
as scikit-learn computes it.  Parity runs in the interpreter with the C library's math (what the
JIT calls by default); one compiled model per output family checks the JIT against it bit for bit.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

sklearn = pytest.importorskip("sklearn")
from sklearn import linear_model as lm  # noqa: E402
from sklearn import svm  # noqa: E402
from sklearn.datasets import make_classification, make_regression  # noqa: E402

from ir.diagnostics import TimberError  # noqa: E402
from ir.interpreter import run  # noqa: E402

from ._partb import compile_est, dot_scale, finite_rows, max_rel_error, module_of  # noqa: E402

U = 2.0**-53
N_FEATURES = 6

Xr, yr = make_regression(120, N_FEATURES, noise=1.0, random_state=0)
Xb, yb = make_classification(200, N_FEATURES, n_informative=4, random_state=0)
Xm, ym = make_classification(300, N_FEATURES, n_informative=5, n_redundant=0, n_classes=3, random_state=1)
X9, y9 = make_classification(600, N_FEATURES, n_informative=6, n_redundant=0, n_classes=9, n_clusters_per_class=1, random_state=2)
ROWS = finite_rows(N_FEATURES, n=200)


def fitted(est, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return est.fit(X, y)


def ours(est, method=None, X=ROWS):
    return run(module_of(est, method), X, math="libm")


def score_bound(est, X=ROWS):
    """2·N·u·(Σ|x w| + |b|) per row and output: two summation orders of one dot product."""
    w = np.atleast_2d(est.coef_)
    return 2 * w.shape[1] * U * dot_scale(X, w, np.broadcast_to(np.asarray(est.intercept_, float).reshape(-1), (w.shape[0],)))


REGRESSORS = [
    ("LinearRegression", lambda: lm.LinearRegression(), yr),
    ("LinearRegression-2targets", lambda: lm.LinearRegression(), np.c_[yr, -2 * yr + 1]),
    ("LinearRegression-nointercept", lambda: lm.LinearRegression(fit_intercept=False), yr),
    ("Ridge", lambda: lm.Ridge(alpha=0.5), yr),
    ("Lasso", lambda: lm.Lasso(alpha=0.1), yr),
    ("ElasticNet", lambda: lm.ElasticNet(alpha=0.1), yr),
    ("SGDRegressor", lambda: lm.SGDRegressor(random_state=0), yr / 100),
    ("LinearSVR", lambda: svm.LinearSVR(random_state=0), yr),
    ("PassiveAggressiveRegressor", lambda: lm.PassiveAggressiveRegressor(random_state=0), yr),
    ("BayesianRidge", lambda: lm.BayesianRidge(), yr),
    ("ARDRegression", lambda: lm.ARDRegression(), yr),
    ("HuberRegressor", lambda: lm.HuberRegressor(), yr),
    ("TweedieRegressor-identity", lambda: lm.TweedieRegressor(power=0.0), yr),
]
GLM_LOG = [
    ("PoissonRegressor", lambda: lm.PoissonRegressor(alpha=0.01)),
    ("GammaRegressor", lambda: lm.GammaRegressor(alpha=0.01)),
    ("TweedieRegressor-1.5", lambda: lm.TweedieRegressor(power=1.5, alpha=0.01)),
    ("TweedieRegressor-loglink", lambda: lm.TweedieRegressor(power=0.0, link="log", alpha=0.01)),
]


@pytest.mark.parametrize("name,make,y", REGRESSORS, ids=[r[0] for r in REGRESSORS])
def test_regressor_predict_within_dot_product_rounding(name, make, y):
    est = fitted(make(), Xr, y)
    got, want = ours(est), est.predict(ROWS)
    assert got.shape == want.shape or got.reshape(want.shape).shape == want.shape
    got = got.reshape(want.shape)
    err = max_rel_error(got, want, score_bound(est))
    assert err <= 1.0, f"{name}: error {err} of the BLAS-order bound"


@pytest.mark.parametrize("name,make", GLM_LOG, ids=[g[0] for g in GLM_LOG])
def test_glm_log_link_is_exp_of_the_linear_predictor(name, make):
    y = np.exp(yr / np.abs(yr).max())  # positive targets
    est = fitted(make(), Xr, y)
    rows = ROWS[np.abs(ROWS).max(axis=1) < 1e5]  # exp(±huge) is inf/0 in both: keep rows where it is not
    got, want = ours(est, X=rows).reshape(-1), est.predict(rows)
    # exp turns an absolute error Δ of the linear predictor into a relative error Δ (+1 ulp of exp)
    bound = score_bound(est, rows) + 2 * U
    rel = np.abs(got - want) / want
    assert np.all(rel <= bound), float((rel / bound).max())


CLASSIFIERS = [
    ("LogisticRegression-binary", lambda: lm.LogisticRegression(), Xb, yb),
    ("LogisticRegression-3", lambda: lm.LogisticRegression(), Xm, ym),
    ("LogisticRegression-9", lambda: lm.LogisticRegression(max_iter=300), X9, y9),
    ("SGD-log-binary", lambda: lm.SGDClassifier(loss="log_loss", random_state=0), Xb, yb),
    ("SGD-log-9", lambda: lm.SGDClassifier(loss="log_loss", random_state=0), X9, y9),
    ("SGD-huber-binary", lambda: lm.SGDClassifier(loss="modified_huber", random_state=0), Xb, yb),
    ("SGD-huber-3", lambda: lm.SGDClassifier(loss="modified_huber", random_state=0), Xm, ym),
    ("SGD-hinge", lambda: lm.SGDClassifier(random_state=0), Xm, ym),
    ("LinearSVC-binary", lambda: svm.LinearSVC(random_state=0), Xb, yb),
    ("LinearSVC-3", lambda: svm.LinearSVC(random_state=0), Xm, ym),
    ("RidgeClassifier-3", lambda: lm.RidgeClassifier(), Xm, ym),
    ("Perceptron", lambda: lm.Perceptron(random_state=0), Xm, ym),
    ("PassiveAggressiveClassifier", lambda: lm.PassiveAggressiveClassifier(random_state=0), Xb, yb),
]


@pytest.mark.parametrize("name,make,X,y", CLASSIFIERS, ids=[c[0] for c in CLASSIFIERS])
def test_classifier_every_method(name, make, X, y):
    est = fitted(make(), X, y + 3)  # labels that are not column indices
    bound = score_bound(est)
    d_got, d_want = ours(est, "decision_function"), est.decision_function(ROWS)
    d_got = d_got.reshape(d_want.shape)
    assert max_rel_error(d_got, d_want, bound) <= 1.0
    bound_row = bound if bound.ndim == 1 else bound.max(axis=1)
    # labels: equal wherever the top two scores are further apart than the rounding bound
    labels = ours(est, "predict").reshape(-1)
    want = est.predict(ROWS)
    if d_want.ndim == 1:
        clear = np.abs(d_want) > bound_row
    else:
        top2 = np.sort(d_want, axis=1)[:, -2:]
        clear = top2[:, 1] - top2[:, 0] > 2 * bound_row
    np.testing.assert_array_equal(labels[clear], want[clear])
    assert clear.mean() > 0.9
    has_proba = hasattr(est, "predict_proba")
    default = ours(est)
    if not has_proba:
        np.testing.assert_array_equal(default.reshape(d_got.shape), d_got)
        with pytest.raises(TimberError, match="predict_proba"):
            module_of(est, "predict_proba")
        return
    p_got, p_want = ours(est, "predict_proba"), est.predict_proba(ROWS)
    np.testing.assert_array_equal(default, p_got)
    assert p_got.shape == p_want.shape
    # probabilities: the score error carried through a 1-Lipschitz map (×2 for a normalisation), plus ulps
    tol = 2 * bound_row[:, None] + 8 * U
    assert np.all(np.abs(p_got - p_want) <= tol), float(np.max(np.abs(p_got - p_want) / tol))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        lp_want = est.predict_log_proba(ROWS)
    lp_got = ours(est, "predict_log_proba")
    ok = np.isfinite(lp_want) & (p_want > 1e-300)
    np.testing.assert_array_equal(np.isneginf(lp_got), np.isneginf(lp_want))
    # log(p) moves by Δp/p
    with np.errstate(divide="ignore"):
        rel = tol / p_want
    assert np.all(np.abs(lp_got - lp_want)[ok] <= rel[ok] + 8 * U * np.abs(lp_want[ok]))


def test_scores_are_exact_where_the_product_has_one_term():
    """One nonzero feature per row: x·w is one rounding in any order, so scores are bit-exact."""
    est = fitted(lm.LogisticRegression(), Xm, ym)
    rows = np.zeros((N_FEATURES * 4, N_FEATURES))
    for j in range(N_FEATURES):
        rows[4 * j : 4 * j + 4, j] = [1.5, -3.25, 1e-300, 7e12]
    np.testing.assert_array_equal(ours(est, "decision_function", rows), est.decision_function(rows))
    np.testing.assert_array_equal(ours(est, "predict_proba", rows), est.predict_proba(rows))


@pytest.fixture(scope="module")
def jit_models():
    multi = fitted(lm.LogisticRegression(max_iter=300), X9, y9)  # affine, intercept, 9-class softmax
    return [(multi, "predict_proba", compile_est(multi, "predict_proba"))]


def test_compiled_code_equals_the_interpreter_bit_for_bit(jit_models):
    for est, method, model in jit_models:
        rows = np.vstack([ROWS, ROWS[:3] * np.array([np.nan, np.inf, -np.inf])[:, None]])
        want = run(module_of(est, method), rows, math="libm")
        got = model.predict(rows)
        np.testing.assert_array_equal(got.reshape(want.shape), want)
        np.testing.assert_array_equal(model.predict(rows[5]).reshape(-1), want[5].reshape(-1))


def test_corrupt_coefficients_are_a_named_error():
    from timber.frontends.sklearn import build_module

    from ._partb import _reduce

    est = fitted(lm.LogisticRegression(), Xm, ym)
    rec = _reduce(est)
    rec.state["coef_"] = np.ones((3, N_FEATURES + 1))
    with pytest.raises(TimberError, match=r"coef_ expects 7 features but the input row has 6"):
        build_module(rec, "m.pkl", None)
    rec.state["coef_"], rec.state["intercept_"] = np.ones((2, N_FEATURES)), np.zeros(2)
    with pytest.raises(TimberError, match=r"coef_ has 2 rows for 3 classes"):
        build_module(rec, "m.pkl", None)
    del rec.state["coef_"]
    with pytest.raises(TimberError, match=r"LogisticRegression.coef_ is missing \(is the estimator fitted\?\)"):
        build_module(rec, "m.pkl", None)


@pytest.mark.parametrize(
    "multi_class,X,y",
    [("ovr", Xm, ym), ("multinomial", Xb, yb), ("multinomial", Xm, ym), ("auto", Xb, yb), ("auto-liblinear", Xm, ym)],
    ids=["ovr-3", "multinomial-binary", "multinomial-3", "auto-binary", "auto-liblinear-3"],
)
def test_logistic_regression_pickled_by_earlier_versions_keeps_its_multi_class(multi_class, X, y):
    """scikit-learn < 1.8 pickles keep `multi_class`, and its predict_proba followed it: one-vs-rest
    (`_predict_proba_lr`) for 'ovr' and for 'auto' with two classes or liblinear, else softmax
    (of `[-d, d]` for two classes).  The attribute is set on a fitted model; the reference is
    scikit-learn's own code for each case."""
    from sklearn.utils.extmath import softmax

    est = fitted(lm.LogisticRegression(), X, y)
    est.multi_class = multi_class.split("-")[0]
    if multi_class.endswith("liblinear"):
        est.solver = "liblinear"
    d = est.decision_function(ROWS)
    if multi_class in ("ovr", "auto", "auto-liblinear"):
        want = super(lm.LogisticRegression, est)._predict_proba_lr(ROWS)
    else:
        want = softmax(np.c_[-d, d] if d.ndim == 1 else d.copy())
    got = ours(est, "predict_proba")
    bound = score_bound(est).reshape(len(ROWS), -1).max(axis=1, keepdims=True)  # the scores' rounding; softmax/expit: 2-Lipschitz at most
    assert got.shape == want.shape
    assert np.all(np.abs(got - want) <= 2 * bound + 4 * np.spacing(want))
