"""scikit-learn naive Bayes compiled by Timber: GaussianNB and BernoulliNB (0/1 features after
binarize) are bit-exact in every method (the same operations in scikit-learn's order, numpy's
pairwise sums, the C library's exp/log/log1p); MultinomialNB and ComplementNB score with BLAS
in scikit-learn, so their joint log-likelihood agrees within a dot product's rounding."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("sklearn")
from sklearn import naive_bayes as nb  # noqa: E402
from sklearn.datasets import make_classification  # noqa: E402

from ir.interpreter import run  # noqa: E402

from ._partb import compile_est, finite_rows, interp, module_of  # noqa: E402

U = 2.0**-53
X, y = make_classification(300, 6, n_informative=4, n_classes=3, random_state=0)
y = y * 2 + 1  # labels that are not indices
ROWS = finite_rows(6)
XC = np.abs(np.round(X * 3))
ROWS_C = np.abs(np.round(ROWS[np.abs(ROWS).max(axis=1) < 1e6] * 3))
METHODS = ["predict_proba", "predict_log_proba", "predict"]


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize(
    "make", [lambda: nb.GaussianNB().fit(X, y), lambda: nb.BernoulliNB(binarize=0.25).fit(X, y)], ids=["gaussian", "bernoulli"]
)
def test_bit_exact(make, method):
    est = make()
    np.testing.assert_array_equal(interp(est, method, ROWS), getattr(est, method)(ROWS))


@pytest.mark.parametrize("cls", [nb.MultinomialNB, nb.ComplementNB])
def test_discrete_within_dot_product_rounding(cls):
    est = cls().fit(XC, y)
    flp = est.feature_log_prob_
    # |Δjll| ≤ 2·N·u·Σ|x·flp| (+ the prior); log-probabilities move by at most 2·max|Δjll|
    bound = 2 * flp.shape[1] * U * (ROWS_C @ np.abs(flp).T + np.abs(est.class_log_prior_)).max(axis=1, keepdims=True)
    lp = run(module_of(est, "predict_log_proba"), ROWS_C, math="libm")
    want = est.predict_log_proba(ROWS_C)
    assert np.all(np.abs(lp - want) <= 2 * bound + 4 * U * np.abs(want))
    p = run(module_of(est, "predict_proba"), ROWS_C, math="libm")
    assert np.all(np.abs(p - est.predict_proba(ROWS_C)) <= 2 * bound + 4 * U)
    np.testing.assert_array_equal(interp(est, "predict", ROWS_C), est.predict(ROWS_C))


def test_compiled_gaussian_nb_is_sklearn_bit_for_bit():
    est = nb.GaussianNB().fit(X, y)
    model = compile_est(est)
    np.testing.assert_array_equal(model.predict(ROWS), est.predict_proba(ROWS))
    np.testing.assert_array_equal(model.predict(ROWS[7]).reshape(-1), est.predict_proba(ROWS[7:8]).reshape(-1))
