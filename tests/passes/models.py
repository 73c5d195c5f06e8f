"""Modules the pass tests run on: random IR covering every tree-dialect feature (tests/irgen.py),
small models trained with each framework and read by its front-end, and a few corpus files.

`check_exact(module, pipeline)` is the property every exact pass must have: predictions of
every function bit-identical (interpreter before vs after) on adversarial and random rows, the
result verified and printing/parsing back identically, and a second run changing nothing."""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pytest

from ir.interpreter import run
from ir.parser import parse_module
from ir.printer import print_op
from ir.verifier import verify
from passes import run_pipeline
from tests import irgen, rows

CORPUS = Path(__file__).resolve().parents[3] / "shared" / "corpus"

VARIANTS = irgen.VARIANTS  # every dialect feature in some variant


def random_module(variant: str, seed: int):
    return irgen.random_module(seed, depth=5, n_trees=8, **VARIANTS[variant])


def function_names(module) -> list[str]:
    return [op.sym_name for op in module.body.ops if op.name == "func.func"]


def rows_for(module, seed: int = 0) -> np.ndarray:
    """Adversarial rows of the module's own thresholds plus random rows."""
    X = rows.adversarial_rows(module, n_mixed=96, seed=seed)
    rng = np.random.default_rng(seed)
    return np.vstack([X, rng.normal(size=(32, X.shape[1])) * 4])


def outputs(module, X) -> dict[str, np.ndarray]:
    return {name: run(module, X, name) for name in function_names(module)}


def assert_same(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> None:
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=f"@{k} changed")
        assert a[k].dtype == b[k].dtype


def check_exact(module, pipeline: str, X: np.ndarray | None = None):
    """Run `pipeline` on `module` in place and check the exactness properties; returns the audit."""
    X = rows_for(module) if X is None else X
    before = outputs(module, X)
    entries = run_pipeline(module, pipeline)
    verify(module)
    assert_same(before, outputs(module, X))
    text = print_op(module)
    assert print_op(parse_module(text, "after.tir")) == text
    again = run_pipeline(module, pipeline)
    assert not [e.pass_text for e in again if e.changed], "not idempotent"
    assert print_op(module) == text
    return entries


# ----- framework models --------------------------------------------------------------------


@functools.cache
def _trained(tmpdir: str) -> dict[str, str]:
    """Small models of each framework, saved under tmpdir; {name: path}."""
    out = {}
    rng = np.random.default_rng(7)
    X = rng.normal(size=(400, 6))
    X[rng.random(X.shape) < 0.1] = np.nan
    X[:, 5] = rng.integers(0, 8, size=400)
    y = (np.nan_to_num(X[:, 0]) + np.nan_to_num(X[:, 1]) * np.nan_to_num(X[:, 2]) + (X[:, 5] % 3) > 0.3).astype(float)
    d = Path(tmpdir)
    d.mkdir(parents=True, exist_ok=True)
    try:
        import xgboost as xgb

        b = xgb.train({"objective": "binary:logistic", "max_depth": 4, "nthread": 1, "seed": 0}, xgb.DMatrix(X, y), 12)
        out["xgboost-binary"] = str(d / "xgb.json")
        b.save_model(out["xgboost-binary"])
        yr = np.nan_to_num(X[:, 0]) * 3 + X[:, 5]
        b = xgb.train(
            {"objective": "multi:softprob", "num_class": 3, "max_depth": 3, "nthread": 1},
            xgb.DMatrix(X, (yr > 0).astype(int) + (yr > 4)),
            5,
        )
        out["xgboost-softprob"] = str(d / "xgb3.json")
        b.save_model(out["xgboost-softprob"])
    except ImportError:
        pass
    try:
        import lightgbm as lgb

        params = {"objective": "regression", "num_leaves": 12, "verbose": -1, "num_threads": 1, "min_data_in_leaf": 5}
        b = lgb.train(params, lgb.Dataset(X, np.nan_to_num(X[:, 0]) * 2 + X[:, 5], categorical_feature=[5]), 10)
        out["lightgbm-categorical"] = str(d / "lgb.txt")
        b.save_model(out["lightgbm-categorical"])
        b = lgb.train({**params, "zero_as_missing": True}, lgb.Dataset(X, y), 8)
        out["lightgbm-zero-missing"] = str(d / "lgb0.txt")
        b.save_model(out["lightgbm-zero-missing"])
    except ImportError:
        pass
    try:
        import catboost

        m = catboost.CatBoostRegressor(iterations=10, depth=3, verbose=False, thread_count=1, random_seed=0, allow_writing_files=False)
        m.fit(np.nan_to_num(X), np.nan_to_num(X[:, 0]) + X[:, 5])
        out["catboost"] = str(d / "cb.json")
        m.save_model(out["catboost"], format="json")
    except ImportError:
        pass
    return out


FRAMEWORK_MODELS = ("xgboost-binary", "xgboost-softprob", "lightgbm-categorical", "lightgbm-zero-missing", "catboost")


def framework_module(name: str, tmp_path_factory):
    """A fresh module for one trained model (skips when its framework is not installed)."""
    from timber.detect import load_model

    paths = _trained(str(tmp_path_factory.getbasetemp() / "pass-models"))
    if name not in paths:
        pytest.skip(f"{name.split('-')[0]} is not installed")
    return load_model(paths[name])


# Small corpus files, one per format (the tests skip cleanly without ../shared/corpus).
CORPUS_MODELS = (
    "timber/breast_cancer_model.json",
    "tl2cgen/xgb_toy_categorical/xgb_toy_categorical_model.json",
    "lleaves/NYC_taxi/model.txt",  # 522 of 6100 nodes fold
    "catboost-cxx/xor-model.json",  # oblivious levels that never matter
    "tl2cgen/lightgbm_constant_tree/model_with_constant_tree.txt",
)


def corpus_module(rel: str):
    from timber.detect import load_model

    path = CORPUS / rel
    if not path.exists():
        pytest.skip(f"corpus file {rel} not present")
    return load_model(str(path))
