"""scikit-learn MLPs compiled by Timber equal scikit-learn's calls within rounding.

Each layer's product is BLAS in scikit-learn (order unknown), and numpy's tanh is its own SIMD
routine (up to an ulp from the C library's, which Timber calls); the activations and outputs are
otherwise scikit-learn's operations.  The bound asserted is 1e-13 relative to the magnitudes
involved (measured: below 1e-15 on these models)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

pytest.importorskip("sklearn")
from sklearn import neural_network as nn  # noqa: E402
from sklearn.datasets import make_classification  # noqa: E402

from ir.interpreter import run  # noqa: E402

from ._partb import compile_est, finite_rows, interp, module_of  # noqa: E402

X, y = make_classification(300, 6, n_informative=4, n_classes=3, random_state=0)
XB, YB = make_classification(300, 6, random_state=1)
ROWS = finite_rows(6, n=200)
ROWS = ROWS[np.abs(ROWS).max(axis=1) < 1e6]  # saturated activations hide nothing; keep rows where outputs move


def fitted(est, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return est.fit(X, y)


CLASSIFIERS = [
    ("relu-3class-wide", lambda: fitted(nn.MLPClassifier((50,), random_state=0, max_iter=60), X, y + 5)),  # kernel.gram layer
    ("tanh-binary", lambda: fitted(nn.MLPClassifier((8, 5), activation="tanh", random_state=0, max_iter=60), XB, YB)),
    ("logistic-3class-wide", lambda: fitted(nn.MLPClassifier((60,), activation="logistic", random_state=0, max_iter=60), X, y)),
    ("tanh-wide-2-layers", lambda: fitted(nn.MLPClassifier((50, 20), activation="tanh", random_state=0, max_iter=60), X, y)),
    ("identity-binary", lambda: fitted(nn.MLPClassifier((4,), activation="identity", random_state=0, max_iter=60), XB, YB)),
]


@pytest.mark.parametrize("name,make", CLASSIFIERS, ids=[c[0] for c in CLASSIFIERS])
def test_classifier(name, make):
    est = make()
    p = run(module_of(est), ROWS, math="libm")
    want = est.predict_proba(ROWS)
    assert p.shape == want.shape
    assert np.max(np.abs(p - want)) <= 1e-13
    lp = run(module_of(est, "predict_log_proba"), ROWS, math="libm")
    want_lp = est.predict_log_proba(ROWS)
    assert np.all(np.abs(lp - want_lp) <= 1e-13 * np.maximum(1, np.abs(want_lp)))
    np.testing.assert_array_equal(interp(est, "predict", ROWS), est.predict(ROWS))


@pytest.fixture(scope="module")
def regressor():
    # 6x48: a kernel.gram layer (bias and relu inside its loop); 48x6: a linear.affine
    est = fitted(nn.MLPRegressor(hidden_layer_sizes=(48, 6), activation="relu", random_state=0, max_iter=60), X, np.c_[y, -y])
    return est, compile_est(est)


def test_regressor_compiled_equals_interpreter_and_sklearn(regressor):
    est, model = regressor
    want = run(module_of(est), ROWS, math="libm")
    np.testing.assert_array_equal(model.predict(ROWS), want)
    assert np.max(np.abs(want - est.predict(ROWS)) / np.maximum(1, np.abs(est.predict(ROWS)))) <= 1e-13


def test_relu_keeps_negative_zero_and_nan_like_numpy():
    """np.maximum(x, 0) keeps -0.0 (x >= 0 holds) and NaN; an `arith.maximumf` would give +0.0."""
    est = fitted(nn.MLPRegressor(hidden_layer_sizes=(3,), random_state=0, max_iter=5), X[:, :1], y * 1.0)
    est.coefs_[0][:] = 1.0
    est.intercepts_[0][:] = 0.0
    est.coefs_[1][:] = -1.0
    est.intercepts_[1][:] = 0.0
    rows = np.array([[-0.0], [0.0], [-2.0], [3.0]])
    np.testing.assert_array_equal(np.signbit(interp(est, None, rows)), np.signbit(est.predict(rows)))
