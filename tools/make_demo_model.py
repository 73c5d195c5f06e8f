"""Regenerate the demo model shipped in the package: `timber/examples/breast_cancer_xgb.json`,
and the rows `timber demo` predicts: `timber/examples/breast_cancer_rows.csv` (every 6th row of
scikit-learn's copy of the Wisconsin Diagnostic Breast Cancer data, UCI, CC BY 4.0).

XGBoost binary:logistic, 50 trees of depth 4, trained on scikit-learn's breast-cancer data
with a fixed seed and one thread (so the file is the same on every run of the same XGBoost).
The script checks that Timber's front-end reads it back to the same predictions as XGBoost.

    python tools/make_demo_model.py [--output PATH]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

OUT = Path(__file__).resolve().parent.parent / "timber" / "examples" / "breast_cancer_xgb.json"
ROWS = OUT.with_name("breast_cancer_rows.csv")
PARAMS = {
    "objective": "binary:logistic",
    "max_depth": 4,
    "eta": 0.1,
    "tree_method": "hist",
    "seed": 0,
    "nthread": 1,
}
N_TREES = 50


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--output", default=str(OUT), help=f"where to write the model (default: {OUT})")
    args = ap.parse_args(argv)

    import xgboost as xgb
    from sklearn.datasets import load_breast_cancer

    from ir.interpreter import run
    from timber.frontends.xgboost import load

    X, y = load_breast_cancer(return_X_y=True)
    X = X.astype(np.float32)
    booster = xgb.train(PARAMS, xgb.DMatrix(X, label=y), num_boost_round=N_TREES)
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    booster.save_model(str(out))  # XGBoost writes compact JSON

    module = load(out)
    want = booster.predict(xgb.DMatrix(X))
    got = run(module, X, "predict").reshape(want.shape)
    margin_want = booster.predict(xgb.DMatrix(X), output_margin=True)
    margin_got = run(module, X, "margin").reshape(margin_want.shape)
    if not np.array_equal(margin_got, margin_want):
        raise SystemExit("Timber's margins differ from XGBoost's on the training rows")
    names = load_breast_cancer().feature_names
    np.savetxt(ROWS, X[::6], fmt="%.9g", delimiter=",", header=",".join(n.replace(" ", "_") for n in names), comments="")
    depth = max(t.table.depth() for t in module.lookup("margin").body.ops[0].trees)
    print(
        f"wrote {out} ({out.stat().st_size} bytes): xgboost {xgb.__version__}, {N_TREES} trees, depth {depth}, "
        f"{X.shape[1]} features; max |p - p_xgb| = {float(np.abs(got - want).max()):.3g}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
