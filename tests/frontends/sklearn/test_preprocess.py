"""scikit-learn transformers compiled by Timber equal `transform`: bit for bit for the scalers,
SimpleImputer, PolynomialFeatures and the l1/max Normalizer (the same float operations in the same
order; NaN passes through the scalers and is what the imputer fills); within a dot product's
rounding for PCA/TruncatedSVD (BLAS) and the l2 Normalizer (numpy's einsum order)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

pytest.importorskip("sklearn")
from sklearn import decomposition as dc  # noqa: E402
from sklearn import impute  # noqa: E402
from sklearn import preprocessing as pp  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402

from ir.interpreter import run  # noqa: E402

from ._partb import compile_est, dot_scale, finite_rows, max_rel_error, module_of  # noqa: E402

U = 2.0**-53
rng = np.random.default_rng(0)
X = rng.standard_normal((100, 5)) * [1, 10, 0.1, 100, 1] + [0, 5, -3, 0, 1]
XN = X.copy()
XN[rng.random(X.shape) < 0.1] = np.nan
XN[:, 4] = np.nan  # a column never observed: the imputer drops it
ROWS = finite_rows(5)
ROWS_NAN = ROWS.copy()
ROWS_NAN[rng.random(ROWS.shape) < 0.1] = np.nan

EXACT = [
    ("StandardScaler", lambda: pp.StandardScaler().fit(XN), ROWS_NAN),
    ("StandardScaler-nomean", lambda: pp.StandardScaler(with_mean=False).fit(X), ROWS),
    ("MinMaxScaler-clip", lambda: pp.MinMaxScaler(feature_range=(-2, 3), clip=True).fit(XN), ROWS_NAN),
    ("MaxAbsScaler", lambda: pp.MaxAbsScaler().fit(XN), ROWS_NAN),
    ("RobustScaler", lambda: pp.RobustScaler().fit(XN), ROWS_NAN),
    ("Normalizer-l1", lambda: pp.Normalizer("l1").fit(X), ROWS),
    ("Normalizer-max", lambda: pp.Normalizer("max").fit(X), ROWS),
    ("SimpleImputer-mean-indicator", lambda: impute.SimpleImputer(add_indicator=True).fit(XN), ROWS_NAN),
    ("SimpleImputer-median", lambda: impute.SimpleImputer(strategy="median").fit(XN), ROWS_NAN),
    (
        "SimpleImputer-most_frequent-keep",
        lambda: impute.SimpleImputer(strategy="most_frequent", keep_empty_features=True).fit(XN),
        ROWS_NAN,
    ),
    (
        "SimpleImputer-constant-zero-marker",
        lambda: impute.SimpleImputer(missing_values=0.0, strategy="constant", fill_value=7.0).fit(X),
        ROWS,
    ),
    ("PolynomialFeatures-3", lambda: pp.PolynomialFeatures(3).fit(X), ROWS),
    ("PolynomialFeatures-interaction-2..3", lambda: pp.PolynomialFeatures((2, 3), interaction_only=True, include_bias=False).fit(X), ROWS),
]


@pytest.mark.parametrize("name,make,rows", EXACT, ids=[e[0] for e in EXACT])
def test_transform_is_bit_exact(name, make, rows):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est = make()
        want = est.transform(rows)
    got = run(module_of(est), rows, math="libm")
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("whiten", [False, True])
def test_pca_within_projection_rounding(whiten):
    est = dc.PCA(3, whiten=whiten).fit(X)
    got, want = run(module_of(est), ROWS, math="libm"), est.transform(ROWS)
    comp = est.components_
    # X @ C.T and the centring each within 2·N·u of the magnitudes, scaled by the whitening divisor
    scale = dot_scale(ROWS, comp, 0) + np.abs(est.mean_) @ np.abs(comp.T)
    if whiten:
        scale = scale / np.sqrt(est.explained_variance_)
    assert max_rel_error(got, want, 2 * comp.shape[1] * U * scale + 4 * U * np.abs(want)) <= 1.0


def test_truncated_svd_within_projection_rounding():
    est = dc.TruncatedSVD(3, random_state=0).fit(X)
    got, want = run(module_of(est), ROWS, math="libm"), est.transform(ROWS)
    assert max_rel_error(got, want, 2 * 5 * U * dot_scale(ROWS, est.components_, 0)) <= 1.0


def test_l2_normalizer_within_rounding():
    est = pp.Normalizer().fit(X)
    rows = ROWS[np.abs(ROWS).max(axis=1) < 1e150]  # x² overflows past 1e154 in both
    got, want = run(module_of(est), rows, math="libm"), est.transform(rows)
    # the squared norm's sum order differs (≤ 2·N·u relative), sqrt halves it, the division adds 1 ulp
    assert np.all(np.abs(got - want) <= (5 * U + 2 * U) * np.abs(want) + 1e-300)


def test_scaler_before_logistic_regression_fuses_and_compiles():
    """The scaler's subf/divf chain feeds the affine as the fusion passes expect; the compiled
    pipeline equals the interpreter bit for bit, and scikit-learn within the dot-product bound."""
    from timber.frontends.sklearn import CONVERTERS

    if "Pipeline" not in CONVERTERS:
        pytest.skip("Pipeline converter (part A) not landed yet")
    pipe = make_pipeline(pp.StandardScaler(), pp.Normalizer(), LogisticRegression()).fit(X, (X[:, 0] > 0).astype(int))
    model = compile_est(pipe)
    want = run(module_of(pipe), ROWS, math="libm")
    np.testing.assert_array_equal(model.predict(ROWS), want)
    assert np.max(np.abs(want - pipe.predict_proba(ROWS))) < 1e-13
