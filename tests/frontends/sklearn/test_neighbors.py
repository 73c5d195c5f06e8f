"""KNeighborsClassifier / KNeighborsRegressor compiled by Timber equal scikit-learn's own calls.

Bit-exact for the KD-tree and ball-tree algorithms (scikit-learn's 'auto' up to 15 features) and
brute-force manhattan, every weighting: the same reduced distances summed left to right, the same
square root, the lower training index first among equal distances, the same weight sums.  Rows
with entries near 1e150 are left out of the tree comparisons: their distances are all equal
after rounding and a tree visits tied training rows in its own order.  Brute-force euclidean
ranks by scikit-learn's BLAS form ‖x‖² - 2x·t + ‖t‖²: there the distances differ by rounding
(bounded below), so uniform-weight outputs are equal away from near-ties and distance weights
are within that bound.  Ties at the k-th distance keep the lower training index; scikit-learn's
choice among tied training rows depends on the algorithm (tree order; chunking and heap order in
brute force) and is not reproduced: a tie needs duplicated training points or rows such as
(1e150, ...) whose distances round to one value."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("sklearn")
from sklearn.datasets import make_classification  # noqa: E402
from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor  # noqa: E402

from ir.diagnostics import TimberError  # noqa: E402

from ._partb import compile_est, finite_rows, module_of  # noqa: E402

X, y = make_classification(240, 6, n_informative=4, n_redundant=0, n_classes=3, random_state=0)
YR = y * 1.5 + np.arange(len(y)) * 1e-3
EDGE = finite_rows(6, n=150)
ROWS = np.vstack([EDGE[np.abs(EDGE).max(axis=1) < 1e100], X[:15], X[15:20] + 1e-9])  # training rows: zero distances


def _interp(est, method, R):
    from ir.interpreter import run

    out = run(module_of(est, method), R)
    return out.reshape(-1) if out.shape[1] == 1 else out


CONFIGS = [
    (algo, w, metric)
    for algo in ("kd_tree", "ball_tree", "auto")
    for w in ("uniform", "distance")
    for metric in ("minkowski", "manhattan", "euclidean")
] + [("brute", w, "manhattan") for w in ("uniform", "distance")]


@pytest.mark.parametrize("algo,w,metric", CONFIGS)
def test_bit_exact(algo, w, metric):
    clf = KNeighborsClassifier(n_neighbors=6, weights=w, algorithm=algo, metric=metric).fit(X, y)
    reg = KNeighborsRegressor(n_neighbors=4, weights=w, algorithm=algo, metric=metric).fit(X, YR)
    np.testing.assert_array_equal(_interp(clf, "predict_proba", ROWS), clf.predict_proba(ROWS))
    np.testing.assert_array_equal(_interp(clf, "predict", ROWS), clf.predict(ROWS))
    np.testing.assert_array_equal(_interp(reg, "predict", ROWS), reg.predict(ROWS))


def test_brute_euclidean_is_within_the_gemm_rounding():
    """scikit-learn's brute force ranks by ‖x‖² - 2x·t + ‖t‖² (BLAS): its squared distances carry
    an absolute error of a few ulps of ‖x‖² + ‖t‖², so a weight 1/d is off by a relative
    (‖x‖² + ‖t‖²)·2⁻⁵²/d² at most (measured here: below the bound by more than 10×)."""
    R = np.random.default_rng(3).standard_normal((300, 6))  # no training rows: their GEMM-form distance is not 0
    clf = KNeighborsClassifier(n_neighbors=6, algorithm="brute").fit(X, y)
    np.testing.assert_array_equal(_interp(clf, "predict_proba", R), clf.predict_proba(R))
    reg = KNeighborsRegressor(n_neighbors=5, weights="distance", algorithm="brute").fit(X, YR)
    d, _ = reg.kneighbors(R)
    scale = (np.sum(R * R, axis=1) + np.sum(X * X, axis=1).max()) * 2.0**-52 / np.maximum(d.min(axis=1), 1e-300) ** 2
    ours, theirs = _interp(reg, "predict", R), reg.predict(R)
    rel = np.abs(ours - theirs) / np.abs(theirs).max()
    assert np.all(rel <= scale), (rel / scale).max()


@pytest.fixture(scope="module")
def compiled_knn():
    est = KNeighborsClassifier(n_neighbors=7, weights="distance").fit(X, y)
    return est, compile_est(est)


def test_compiled_knn_is_sklearn_bit_for_bit(compiled_knn):
    est, model = compiled_knn
    np.testing.assert_array_equal(model.predict(ROWS), est.predict_proba(ROWS))
    np.testing.assert_array_equal(model.predict(ROWS[5]).reshape(-1), est.predict_proba(ROWS[5:6])[0])


@pytest.mark.parametrize(
    "make,message",
    [
        (lambda: KNeighborsClassifier(p=3).fit(X, y), "minkowski with p=3 is not supported"),
        (lambda: KNeighborsRegressor(p=1.5, weights="distance").fit(X, YR), "minkowski with p=1.5 is not supported"),
        # a weighted minkowski (p=2 with w) is no euclidean distance: refused, never compiled without w
        (lambda: KNeighborsClassifier(metric_params={"w": np.full(6, 2.0)}).fit(X, y), "metric parameter 'w'"),
        (lambda: KNeighborsClassifier(metric="chebyshev").fit(X, y), "metric 'chebyshev' is not supported"),
        (lambda: KNeighborsRegressor().fit(X, np.c_[YR, YR]), "multi-output KNeighborsRegressor"),
        (lambda: KNeighborsClassifier().fit(X, np.c_[y, y]), "multi-output KNeighborsClassifier"),
    ],
)
def test_unsupported_is_refused_by_name(make, message):
    with pytest.raises(TimberError, match=message):
        module_of(make())
