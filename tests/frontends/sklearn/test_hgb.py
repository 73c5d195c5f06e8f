"""HistGradientBoosting compiled by Timber returns scikit-learn's answers bit for bit: NaN
routing, every loss (poisson/gamma through exp), binary and multiclass, and native categorical
features with unknown, negative, fractional and huge category values."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("sklearn")
from sklearn.ensemble import HistGradientBoostingClassifier as HGBC  # noqa: E402
from sklearn.ensemble import HistGradientBoostingRegressor as HGBR  # noqa: E402

from .helpers import assert_parity, parity_rows  # noqa: E402

RNG = np.random.default_rng(1)
N = 300
X = RNG.standard_normal((N, 4))
X[RNG.random(X.shape) < 0.1] = np.nan
Z = np.nan_to_num(X)
YR = Z[:, 0] * 2 + np.cos(Z[:, 1])
Y3 = (Z[:, 0] > 0).astype(int) + (Z[:, 2] > 0.3)

# categorical columns 0 (integers -1..11 and NaN) and 3 (the values 0.5, 3, 7, 100)
XC = X.copy()
XC[:, 0] = RNG.integers(-1, 12, N)
XC[RNG.random(N) < 0.08, 0] = np.nan
XC[:, 3] = RNG.choice([0.5, 3.0, 7.0, 100.0], N)
YC = ((XC[:, 0] % 3 == 0) ^ (XC[:, 3] > 5) | (Z[:, 1] > 1)).astype(int)


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """HGB fits and predicts with OpenMP; on a loaded 2-core machine one thread is far faster."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        yield


CAT_VALUES = [-2, -1, -0.5, -0.0, 0, 0.25, 0.5, 1, 2, 2.5, 3, 7, 10.999, 11, 12, 100, 255, 256, 300, 1e9, np.nan, np.inf]


@pytest.mark.parametrize("loss", ["squared_error", "absolute_error", "poisson", "gamma", "quantile"])
def test_regressor_losses(loss):
    y = np.exp(YR / 3) if loss in ("poisson", "gamma") else YR
    est = HGBR(loss=loss, max_iter=15, random_state=0, **({"quantile": 0.3} if loss == "quantile" else {})).fit(X, y)
    assert_parity(est, "predict")


@pytest.mark.parametrize("method", ["predict_proba", "decision_function", "predict"])
@pytest.mark.parametrize("binary", [True, False], ids=["binary", "multiclass"])
def test_classifier(method, binary):
    est = HGBC(max_iter=15, random_state=0).fit(X, Y3 == 1 if binary else Y3)
    assert_parity(est, method)


def _category_grid(module) -> np.ndarray:
    """Adversarial rows plus every pair of interesting values in the two categorical columns."""
    base = parity_rows(module)
    grid = np.repeat(np.nan_to_num(XC[:1]), len(CAT_VALUES) ** 2, axis=0)
    grid[:, 0] = np.repeat(CAT_VALUES, len(CAT_VALUES))
    grid[:, 3] = np.tile(CAT_VALUES, len(CAT_VALUES))
    return np.vstack([base, grid])


@pytest.mark.parametrize("method", ["predict_proba", "predict"])
def test_native_categories(method):
    """Known categories in a node's set go left, other known ones right; unknown, negative,
    fractional and NaN values go the node's missing way (scikit-learn's OrdinalEncoder maps them
    to NaN)."""
    est = HGBC(max_iter=20, categorical_features=[0, 3], random_state=0).fit(XC, YC)
    from .helpers import module_of

    module = module_of(est, method)
    assert_parity(est, method, X=_category_grid(module), module=module)
