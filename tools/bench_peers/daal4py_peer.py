"""Peer helper: daal4py (oneDAL's gradient-boosting model builders), run in its own virtual environment.

`daal4py.mb.convert_model(booster)` turns an XGBoost, LightGBM or CatBoost booster into a oneDAL
GBT model.  The bench compares what the framework's own predict returns: probabilities for
classifiers (`predict_proba`, the positive class only for binary models, as XGBoost and LightGBM
return it) and values for regressors (`predict`).  oneDAL computes in the input's precision: the
bench's rows are float32.  Threads are oneDAL's global setting, `daal4py.daalinit(n)`, changed only
when the thread count changes.  daal4py now ships inside the scikit-learn-intelex package (the
standalone `daal4py` package stopped at 2024.7).

Usage: <venv>/bin/python daal4py_peer.py JOB.json   (see _common.py for the job format)
"""

import importlib.metadata
import sys
import time

from _common import run_helper


def load_booster(job: dict):
    """The framework's own booster object, which is what convert_model takes."""
    framework = job["framework"]
    if framework == "xgboost":
        import xgboost as xgb

        return xgb.Booster(model_file=job["model"])
    if framework == "lightgbm":
        import lightgbm as lgb

        if job.get("categorical"):
            raise ValueError("daal4py's LightGBM converter reads no categorical splits (their thresholds are category lists)")
        return lgb.Booster(model_file=job["model"])
    if framework == "catboost":
        import catboost

        if job.get("categorical"):
            raise ValueError("daal4py's CatBoost converter takes no categorical features")
        model = catboost.CatBoost()
        model.load_model(job["native_model"])
        return model
    raise ValueError(f"daal4py converts XGBoost, LightGBM and CatBoost boosters, not {framework}")


def body(job: dict, result) -> object:
    """Convert the booster with daal4py and return predict(X, threads)."""
    import daal4py

    booster = load_booster(job)
    t0 = time.perf_counter()
    model = daal4py.mb.convert_model(booster)
    result.compile_s = time.perf_counter() - t0
    result.compile_label = "convert"
    version = importlib.metadata.version("scikit-learn-intelex")
    result.note = f"daal4py (scikit-learn-intelex {version}) convert_model, float32 rows"
    classifier = model.is_classifier_
    state = {"threads": None}

    def predict(X, threads):
        if state["threads"] != threads:
            daal4py.daalinit(threads)
            state["threads"] = threads
        if not classifier:
            return model.predict(X)
        proba = model.predict_proba(X)
        return proba[:, 1] if proba.shape[1] == 2 else proba

    return predict


if __name__ == "__main__":
    run_helper(body, sys.argv[1])
