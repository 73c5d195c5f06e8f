"""Peer helper: treelite + tl2cgen (model -> C -> gcc shared library), run in its own virtual environment.

treelite reads the XGBoost JSON / LightGBM text file, tl2cgen emits C and builds it with gcc into a
shared library (`export_lib`, `parallel_comp` translation units).  A `tl2cgen.Predictor` has a fixed
thread count, so one predictor is opened per thread setting; the timed call includes wrapping the
numpy array in a `tl2cgen.DMatrix`, which every caller has to do.  CatBoost is not a treelite format.

Usage: <venv>/bin/python tl2cgen_peer.py JOB.json   (see _common.py for the job format)
"""

import sys
import time
from pathlib import Path

from _common import cached_compile_time, record_compile_time, run_helper


def body(job: dict, result) -> object:
    """Build (or reload) the shared library and return predict(X, threads)."""
    import tl2cgen
    import treelite

    loaders = {"xgboost": treelite.frontend.load_xgboost_model, "lightgbm": treelite.frontend.load_lightgbm_model}
    if job["framework"] not in loaders:
        raise ValueError(f"treelite has no {job['framework']} front-end")
    art = Path(job["artifact_dir"])
    art.mkdir(parents=True, exist_ok=True)
    lib, stamp = art / "model.so", art / "compile_time.json"
    cached = cached_compile_time(stamp)
    if cached is not None and lib.exists():
        result.compile_s = cached
        result.compile_label = "compile (1st build, cached)"
    else:
        t0 = time.perf_counter()
        model = loaders[job["framework"]](job["model"])
        # Several translation units keep gcc's time and memory per unit bounded on big forests.
        tl2cgen.export_lib(model, toolchain="gcc", libpath=str(lib), params={"parallel_comp": 8})
        result.compile_s = time.perf_counter() - t0
        record_compile_time(stamp, result.compile_s)
    predictors = {}

    def predict(X, threads):
        if threads not in predictors:
            predictors[threads] = tl2cgen.Predictor(str(lib), nthread=threads)
        out = predictors[threads].predict(tl2cgen.DMatrix(X))
        # tl2cgen returns (rows, targets, classes); the frameworks return (rows,) or (rows, classes).
        out = out.reshape(X.shape[0], -1)
        return out[:, 0] if out.shape[1] == 1 else out

    return predict


if __name__ == "__main__":
    run_helper(body, sys.argv[1])
