"""Small models of every kind the front-ends produce, trained here with fixed seeds (a second
or less each), for the cross-target tests: XGBoost binary, multiclass and categorical, LightGBM
categorical and linear trees, CatBoost oblivious trees (numeric, one-hot categorical,
multiclass).  Each builder returns a verified module after the default (exact) pipeline, which
is what `timber compile` hands the back-ends.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pytest

from passes.manager import run_pipeline

ROOT = Path(__file__).resolve().parents[3]
DEMO = ROOT / "timber" / "examples" / "breast_cancer_xgb.json"


def _default(module):
    run_pipeline(module, "default", verify_each=False)
    return module


def demo():
    """The demo model: XGBoost binary:logistic, 50 trees of depth 4 on 30 features."""
    from timber.detect import load_model

    return _default(load_model(str(DEMO)))


def _data(n=500, f=6, seed=0, cat_cols=(), n_cats=7):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, f))
    for c in cat_cols:
        X[:, c] = rng.integers(0, n_cats, n)
    X[rng.random(X.shape) < 0.08] = np.nan
    return X, rng


def xgb_multiclass_categorical():
    """XGBoost multi:softprob, 3 classes, one categorical feature (bitset splits), NaN defaults."""
    xgb = pytest.importorskip("xgboost")
    from timber.frontends import xgboost as fe

    X, rng = _data(seed=1, cat_cols=(2,))
    y = (np.nan_to_num(X[:, 0]) > 0).astype(int) + (np.nan_to_num(X[:, 2]) % 3 == 1)
    d = xgb.DMatrix(X.astype(np.float32), y, feature_types=["q", "q", "c", "q", "q", "q"], enable_categorical=True)
    params = {"objective": "multi:softprob", "num_class": 3, "max_depth": 4, "seed": 0, "nthread": 1, "max_cat_to_onehot": 1}
    booster = xgb.train(params, d, 6)
    return _default(fe.load(bytes(booster.save_raw("json")), source_name="xgb_multiclass_categorical.json"))


def lgb_categorical():
    """LightGBM binary with a categorical feature and NaN/zero missing types."""
    lgb = pytest.importorskip("lightgbm")
    from timber.frontends import lightgbm as fe

    X, rng = _data(seed=2, cat_cols=(1,))
    X[rng.random(len(X)) < 0.1, 3] = 0.0
    y = ((np.nan_to_num(X[:, 0]) + (np.nan_to_num(X[:, 1]) % 2)) > 0.5).astype(int)
    params = {
        "objective": "binary",
        "num_leaves": 9,
        "verbose": -1,
        "seed": 0,
        "num_threads": 1,
        "min_data_per_group": 5,
        "cat_smooth": 1,
        "zero_as_missing": True,
    }
    booster = lgb.train(params, lgb.Dataset(X, y, categorical_feature=[1]), 8)
    return _default(fe.load(booster, source_name="lgb_categorical.txt"))


def lgb_linear():
    """LightGBM regression with linear trees (linear leaves, NaN falls back to the leaf value)."""
    lgb = pytest.importorskip("lightgbm")
    from timber.frontends import lightgbm as fe

    X, rng = _data(seed=3, f=4)
    y = 2 * np.nan_to_num(X[:, 0]) - np.nan_to_num(X[:, 1]) + rng.normal(size=len(X)) * 0.1
    params = {"objective": "regression", "num_leaves": 5, "linear_tree": True, "verbose": -1, "seed": 0, "num_threads": 1}
    booster = lgb.train(params, lgb.Dataset(X, y), 5)
    return _default(fe.load(booster, source_name="lgb_linear.txt"))


def catboost_models():
    """CatBoost oblivious trees: a binary classifier with a one-hot categorical feature, and a
    3-class MultiClass model (vector leaves)."""
    catboost = pytest.importorskip("catboost")
    from timber.frontends import catboost as fe

    X, rng = _data(seed=4, f=4, cat_cols=(3,), n_cats=4)
    X = np.nan_to_num(X[:, :4], nan=0.0)
    y = (X[:, 0] + (X[:, 3] == 2) > 0.3).astype(int)
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        Xc = [[*row[:3], str(int(row[3]))] for row in X.tolist()]
        clf = catboost.CatBoostClassifier(
            iterations=12, depth=4, verbose=False, random_seed=0, thread_count=1, one_hot_max_size=8, cat_features=[3]
        )
        clf.fit(Xc, y)
        path = Path(tmp) / "binary.cbm"
        clf.save_model(str(path))
        out["catboost_onehot"] = _default(fe.load(str(path)))
        y3 = np.digitize(X[:, 0] + X[:, 1], [-0.5, 0.5])
        mc = catboost.CatBoostClassifier(iterations=8, depth=3, loss_function="MultiClass", verbose=False, random_seed=0, thread_count=1)
        mc.fit(X[:, :3], y3)
        path = Path(tmp) / "multiclass.cbm"
        mc.save_model(str(path))
        out["catboost_multiclass"] = _default(fe.load(str(path)))
    return out


def ir_models():
    """Hand-built modules covering every op and split semantic (shared with the C99/WAT tests)."""
    from tests.backends import test_c99_wat_models as hand

    return {name: _default(build()) for name, build in hand.MODELS.items()}
