"""Estimators fitted on float32 data: scikit-learn keeps float32 attributes (linear `coef_`,
MinMaxScaler, PCA, GaussianNB, MLP weights...) and computes in float32 where numpy's promotion
says so.  Rows given as float64 (the default `dtype`) and rows given as float32 (`dtype="float32"`:
the module takes float32 rows, computes each step in the dtype scikit-learn computes it in, and
returns float32 where scikit-learn does) are both checked against scikit-learn's own call.
numpy's float32 exp/log/tanh are its own SIMD functions, within 2-3 ulps of correctly rounded:
Timber rounds the float64 function once, so steps after them agree within a few float32 ulps.

Elementwise steps (scalers, imputer, polynomial features, the constants scikit-learn derives in
float32) are bit-exact; trees, HGB, SVMs, k-NN and Bernoulli NB compute in float64 (or compare in
float32) whatever the rows, so they are bit-exact too.  A float32 product `X @ coef_.T` is a
float32 sgemm in scikit-learn (its blocked order, its roundings): here the float64 sum rounded once
to float32, so those differ within the float32 rounding of a dot product (bound below)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

pytest.importorskip("sklearn")
from sklearn import decomposition, ensemble, impute, linear_model, naive_bayes, neighbors, neural_network, svm, tree  # noqa: E402
from sklearn import preprocessing as pp  # noqa: E402
from sklearn.compose import ColumnTransformer  # noqa: E402
from sklearn.datasets import make_classification  # noqa: E402
from sklearn.pipeline import FeatureUnion, make_pipeline  # noqa: E402

import timber  # noqa: E402
from ir.diagnostics import TimberError  # noqa: E402
from ir.interpreter import run  # noqa: E402
from timber.frontends import sklearn as sk  # noqa: E402

from .helpers import default_method, parity_rows, reference  # noqa: E402

U32 = 2.0**-24
_X, _Y = make_classification(300, 5, n_informative=4, n_redundant=0, n_classes=3, random_state=3)
X32 = _X.astype(np.float32)
Y3, Y2 = _Y, (_Y > 0).astype(int)
YR = (X32[:, 0] * 3 - X32[:, 1]).astype(np.float32)


def _fit(est, y=None, X=X32):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return est.fit(X, y) if y is not None else est.fit(X)


def _rows(module, seed=0) -> np.ndarray:
    """Adversarial rows (thresholds and their float32/float64 neighbours, NaN, ±inf, ±0.0) and
    random ones, plus values on float32 boundaries (the smallest subnormal, the largest float32)."""
    X = parity_rows(module, seed=seed, n_random=200)
    extra = np.array([[-0.0, 0.0, 1e-45, -3.4e38, 3.4e38], [1.0, -1.0, 0.5, -0.5, 2.0**-126]])
    return np.vstack([X, extra[:, : X.shape[1]]])


def _ours(module, X, dtype):
    out = run(module, X.astype(dtype), math="libm")
    return out.reshape(-1) if out.shape[1] == 1 else out


# ----- exact: bit for bit, dtype included ---------------------------------------------------------

EXACT = {
    "DecisionTree": lambda: _fit(tree.DecisionTreeClassifier(max_depth=6, random_state=0), Y3),
    "RandomForestRegressor": lambda: _fit(ensemble.RandomForestRegressor(4, max_depth=5, random_state=0), YR),
    "GradientBoosting": lambda: _fit(ensemble.GradientBoostingClassifier(n_estimators=4, max_depth=3), Y3),
    "HistGradientBoosting": lambda: _fit(ensemble.HistGradientBoostingRegressor(max_iter=4), YR),
    "IsolationForest": lambda: _fit(ensemble.IsolationForest(n_estimators=4, random_state=0)),
    "SVC": lambda: _fit(svm.SVC(probability=True, random_state=0), Y3),
    "KNeighbors": lambda: _fit(neighbors.KNeighborsRegressor(4, weights="distance"), YR),
    "BernoulliNB": lambda: _fit(naive_bayes.BernoulliNB(), Y3),
    "StandardScaler": lambda: _fit(pp.StandardScaler()),
    "MinMaxScaler-clip": lambda: _fit(pp.MinMaxScaler(clip=True)),
    "MaxAbsScaler": lambda: _fit(pp.MaxAbsScaler()),
    "RobustScaler": lambda: _fit(pp.RobustScaler()),
    "SimpleImputer": lambda: _fit(impute.SimpleImputer(add_indicator=True), X=np.where(X32 > 1, np.nan, X32)),
    "PolynomialFeatures": lambda: _fit(pp.PolynomialFeatures(3)),
    "Normalizer-l1": lambda: _fit(pp.Normalizer(norm="l1")),
    "Normalizer-max": lambda: _fit(pp.Normalizer(norm="max")),
    "ColumnTransformer-FeatureUnion": lambda: _fit(
        make_pipeline(
            ColumnTransformer([("s", pp.StandardScaler(), [0, 1]), ("p", "passthrough", [4, 2])]),
            FeatureUnion([("a", pp.MinMaxScaler()), ("b", pp.MaxAbsScaler())], transformer_weights={"a": 0.3}),
        )
    ),
    "Pipeline-scaler-tree": lambda: _fit(make_pipeline(pp.StandardScaler(), tree.DecisionTreeRegressor(max_depth=6)), YR),
}


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("name", list(EXACT))
def test_float32_fitted_exact_families(name, dtype):
    est = EXACT[name]()
    module = sk.load(est, dtype=dtype)
    X = _rows(module).astype(dtype)
    if name.startswith(("Pipeline", "ColumnTransformer")):  # scaled, the largest float32 overflows: the tree refuses the row
        X = X[np.all(np.isnan(X) | (np.abs(X) < 1e30), axis=1)]
    if name == "KNeighbors":
        # rows of ~1e30 make every squared distance the same number (the other features are
        # absorbed): scikit-learn's KD-tree then keeps the tied neighbours in its traversal order,
        # not by index (a known limit of the k-NN converter, float32 or not)
        X = X[np.all(np.isnan(X) | (np.abs(X) < 1e15), axis=1)]
    X, ref = reference(est, default_method(est), X)
    got = _ours(module, X, dtype)
    assert got.dtype == ref.dtype and got.shape == ref.shape, (got.dtype, ref.dtype, got.shape, ref.shape)
    np.testing.assert_array_equal(got, ref)


def test_gaussian_nb_and_pca_derive_their_constants_in_float32():
    """GaussianNB's log(prior) and log-variance sums, PCA's projected mean and whitening scale
    (with float32's eps) are float32 in scikit-learn for float32 attributes: float64 rows then
    match bit for bit (GaussianNB) or within a float64 dot product (PCA)."""
    nb = _fit(naive_bayes.GaussianNB(), Y3)
    module = sk.load(nb, method="predict_log_proba")
    X = _rows(module).astype(np.float64)
    X, ref = reference(nb, "predict_log_proba", X)
    np.testing.assert_array_equal(_ours(module, X, np.float64), ref)
    pca = _fit(decomposition.PCA(3, whiten=True))
    X = _rows(sk.load(pca))
    X = X[np.all(np.abs(X) < 1e30, axis=1)]
    got, ref = _ours(sk.load(pca), X, np.float64), pca.transform(X)
    scale = (np.abs(X) @ np.abs(pca.components_.T.astype(np.float64)) + 1) / np.sqrt(pca.explained_variance_.astype(np.float64))
    assert np.all(np.abs(got - ref) <= 4 * 5 * 2.0**-53 * scale)


# ----- float32 products: within the float32 rounding of a dot product -----------------------------

DOT = {
    "LinearRegression": lambda: _fit(linear_model.LinearRegression(), YR),
    "Ridge": lambda: _fit(linear_model.Ridge(), YR),
    "SGDRegressor": lambda: _fit(linear_model.SGDRegressor(random_state=0), YR),  # float32 coef_, float64 intercept_
    "PoissonRegressor": lambda: _fit(linear_model.PoissonRegressor(), np.abs(YR)),
    "LogisticRegression-binary": lambda: _fit(linear_model.LogisticRegression(), Y2),
    "LogisticRegression-multinomial": lambda: _fit(linear_model.LogisticRegression(), Y3),
    "SGDClassifier-modified_huber": lambda: _fit(linear_model.SGDClassifier(loss="modified_huber", random_state=0), Y3),
    "SGDClassifier-modified_huber-binary": lambda: _fit(linear_model.SGDClassifier(loss="modified_huber", random_state=0), Y2),
    "RidgeClassifier": lambda: _fit(linear_model.RidgeClassifier(), Y3),
    "MLPClassifier": lambda: _fit(neural_network.MLPClassifier((30,), max_iter=40, random_state=0), Y3),
    "MLPRegressor-tanh": lambda: _fit(
        neural_network.MLPRegressor(hidden_layer_sizes=(8,), activation="tanh", max_iter=40, random_state=0), YR
    ),
    "PCA-whiten": lambda: _fit(decomposition.PCA(3, whiten=True)),
    "Pipeline-scaler-logistic": lambda: _fit(make_pipeline(pp.StandardScaler(), linear_model.LogisticRegression()), Y3),
}


def _magnitude(est, X: np.ndarray) -> np.ndarray:
    """Σ_j |x_j·w_j| (+ |b|) of the first product, per row: what a dot product's rounding scales with."""
    last = est[-1] if hasattr(est, "steps") else est
    if hasattr(est, "steps"):
        X = est[:-1].transform(X)
    w = last.coefs_[0] if hasattr(last, "coefs_") else (last.components_.T if hasattr(last, "components_") else np.atleast_2d(last.coef_).T)
    return (np.abs(X.astype(np.float64)) @ np.abs(w.astype(np.float64))).max(axis=1) + 1.0


@pytest.mark.parametrize("name", list(DOT))
def test_float32_rows_float32_products(name):
    """dtype="float32": scikit-learn's result dtype and shape, values within 8·N·u32 of the row's
    product magnitude (sgemm against one rounding of the exact sum, both ways, plus the rounding
    of the steps after it); float64 rows stay within the float64 bound as before."""
    est = DOT[name]()
    method = default_method(est)
    rng = np.random.default_rng(1)
    X = np.vstack([rng.standard_normal((300, 5)) * 2, [[-0.0, 0.0, 1e-30, -1e-30, 0.0], [1.0, -1.0, 0.5, -0.5, 2.0]]])
    n = X.shape[1] + (getattr(est[-1] if hasattr(est, "steps") else est, "hidden_layer_sizes", (0,))[0] or 0)
    for dtype, u in (("float32", U32), ("float64", 2.0**-53)):
        Xd = X.astype(dtype)
        ref = getattr(est, method)(Xd)
        got = _ours(sk.load(est, dtype=dtype), Xd, dtype)
        assert got.dtype == ref.dtype and got.shape == ref.shape, (dtype, got.dtype, ref.dtype, got.shape, ref.shape)
        mag = _magnitude(est, Xd)
        mag = mag.reshape(-1, *([1] * (ref.ndim - 1)))
        if method == "predict" and isinstance(est, linear_model.PoissonRegressor):
            mag = mag * np.abs(ref.astype(np.float64))  # exp: relative
        err = np.abs(got.astype(np.float64) - ref.astype(np.float64))
        assert np.all(err <= 8 * n * u * mag + 4 * np.spacing(np.abs(ref))), (dtype, float((err / mag).max()))


def test_normalizer_l2_float32_rows_within_two_ulps():
    """l2 norms are `einsum('ij,ij->i', X, X)`, whose float32 accumulation order is numpy's SIMD
    loop's (here numpy's pairwise sum, each add rounded): the norm within an ulp, the quotient two."""
    est = _fit(pp.Normalizer())
    X = np.vstack([np.random.default_rng(4).standard_normal((500, 5)), np.zeros((1, 5)), np.full((1, 5), 1e-30)]).astype(np.float32)
    ref, got = est.transform(X), _ours(sk.load(est, dtype="float32"), X, np.float32)
    assert got.dtype == ref.dtype == np.float32
    assert np.all(np.abs(got - ref) <= 2 * np.spacing(np.abs(ref)))


def test_compiled_float32_model_takes_and_returns_float32(tmp_path):
    est = _fit(make_pipeline(pp.MinMaxScaler(), pp.PolynomialFeatures(2)))
    m = timber.compile(est, dtype="float32")
    out = m.predict(X32[:50])
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, est.transform(X32[:50]))
    # the JIT keeps every float32 rounding the interpreter has (no pass folds them away)
    est = DOT["Pipeline-scaler-logistic"]()
    out = timber.compile(est, dtype="float32").predict(X32)
    np.testing.assert_array_equal(out, _ours(sk.load(est, dtype="float32"), X32, np.float32))


def test_gaussian_nb_float32_rows():
    """The joint log-likelihood is elementwise float32 arithmetic and float32 pairwise sums (exact);
    logsumexp's exp/log1p/log are numpy's float32 SIMD functions (not correctly rounded: within 2-3
    ulps of the float64 function rounded once, which Timber computes), so the log-probabilities
    agree within a few float32 ulps of the joint log-likelihood's magnitude."""
    nb = _fit(naive_bayes.GaussianNB(), Y3)
    X = np.random.default_rng(2).standard_normal((300, 5)).astype(np.float32) * 2
    for method in ("predict_log_proba", "predict_proba", "predict"):
        ref = getattr(nb, method)(X)
        got = _ours(sk.load(nb, method=method, dtype="float32"), X, np.float32)
        # predict: the labels' values (Timber returns labels as float64; scikit-learn in classes_'s dtype)
        assert got.shape == ref.shape and (got.dtype == ref.dtype or method == "predict")
        mag = np.abs(nb._joint_log_likelihood(X)).max(axis=1, keepdims=True) if method != "predict" else 0
        assert np.all(np.abs(got.astype(np.float64) - ref) <= 8 * U32 * (mag + 1)), method


def test_unknown_dtype():
    with pytest.raises(TimberError, match="unknown dtype 'float16'; choose one of: float64, float32"):
        sk.load(_fit(tree.DecisionTreeClassifier(), Y3), dtype="float16")
    assert sk.load(_fit(tree.DecisionTreeClassifier(), Y3), dtype=np.float32).attributes["timber.dtype"].value == "float32"
