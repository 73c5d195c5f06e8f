"""Small models for the store, server and distributed tests (trained here in well under a
second), and the helpers those tests share."""

from __future__ import annotations

import importlib
import os
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "timber" / "examples" / "breast_cancer_xgb.json"
DEMO_ROWS = REPO / "timber" / "examples" / "breast_cancer_rows.csv"


def require(module: str, why: str = ""):
    """Import a package the test needs, or skip (fail under TIMBER_REQUIRE_TEST_TOOLS=1, as CI
    runs, where the test extra installs it)."""
    try:
        return importlib.import_module(module)
    except ImportError:
        message = f"{module} is not installed{': ' + why if why else ''}"
        if os.environ.get("TIMBER_REQUIRE_TEST_TOOLS") == "1":
            pytest.fail(f"TIMBER_REQUIRE_TEST_TOOLS=1 but {message}")
        pytest.skip(message)


def lightgbm_binary(path: Path) -> Path:
    """A LightGBM binary model (float64 in and out) trained with NaN in its rows."""
    import lightgbm as lgb

    rng = np.random.default_rng(1)
    X = rng.normal(size=(300, 6))
    X[rng.random(X.shape) < 0.05] = np.nan
    y = (np.nan_to_num(X[:, 0]) + np.nan_to_num(X[:, 1]) > 0).astype(int)
    params = {"objective": "binary", "num_leaves": 7, "verbose": -1, "min_data_in_leaf": 5}
    booster = lgb.train(params, lgb.Dataset(X, y), num_boost_round=4)
    booster.save_model(str(path))
    return path


def xgboost_multiclass(path: Path) -> Path:
    """A 3-class XGBoost model (softmax probabilities: (n, 3) outputs)."""
    import xgboost as xgb

    rng = np.random.default_rng(3)
    X = rng.normal(size=(200, 30)).astype(np.float32)
    y = (X[:, 0] > 0).astype(int) + (X[:, 1] > 0.5).astype(int)
    params = {"objective": "multi:softprob", "num_class": 3, "max_depth": 2, "seed": 0}
    xgb.train(params, xgb.DMatrix(X, y), num_boost_round=3).save_model(str(path))
    return path


def bits(a: np.ndarray) -> np.ndarray:
    """The array's bit patterns (so -0.0 != 0.0 and NaN payloads count)."""
    a = np.ascontiguousarray(a)
    return a.view({4: np.uint32, 8: np.uint64}[a.dtype.itemsize])
