"""Write small models pickled by an older scikit-learn, with that version's own predictions, for
`tests/frontends/sklearn/test_versions.py` (older pickles have other state layouts: no
`missing_go_to_left`, class counts instead of fractions in tree values, IsolationForest path
lengths computed at predict time, HistGradientBoosting categories without a preprocessor).

Run it with the Python of a virtualenv holding the old version, e.g.

    python -m venv /tmp/v && /tmp/v/bin/pip install scikit-learn==1.2.2 numpy==1.26.4 'scipy<1.14'
    /tmp/v/bin/python tools/sklearn_old_pickles.py tests/frontends/sklearn/data

It writes `<version>_<name>.pkl` and `<version>_<name>.npz` (the rows `X`, and per method the
old version's output) for each model.  Deterministic: fixed seeds.
"""

from __future__ import annotations

import os
import pickle
import sys

import numpy as np
import sklearn
from sklearn import ensemble, tree


def models(X, Xnan, y3, yr, xcat):
    v = tuple(int(p) for p in sklearn.__version__.split(".")[:2])
    nan_ok = v >= (1, 3)  # trees take NaN from 1.3 on
    Xt = Xnan if nan_ok else X
    out = {
        "dt_clf": (tree.DecisionTreeClassifier(max_depth=4, random_state=0).fit(Xt, y3), Xt, ["predict_proba", "predict"]),
        "rf_clf": (ensemble.RandomForestClassifier(6, max_depth=4, random_state=0).fit(X, y3), X, ["predict_proba"]),
        "et_reg": (ensemble.ExtraTreesRegressor(6, max_depth=4, random_state=0).fit(X, yr), X, ["predict"]),
        "gb_clf": (ensemble.GradientBoostingClassifier(n_estimators=6, max_depth=3, random_state=0).fit(X, y3), X, ["predict_proba"]),
        "gb_reg": (ensemble.GradientBoostingRegressor(n_estimators=6, max_depth=3, random_state=0).fit(X, yr), X, ["predict"]),
        "iforest": (ensemble.IsolationForest(n_estimators=6, max_features=3, random_state=0).fit(X), X, ["score_samples"]),
        "hgb_reg": (ensemble.HistGradientBoostingRegressor(max_iter=5, random_state=0).fit(Xnan, yr), Xnan, ["predict"]),
        "hgb_cat": (
            ensemble.HistGradientBoostingClassifier(max_iter=5, categorical_features=[0], random_state=0).fit(xcat, y3),
            xcat,
            ["predict_proba"],
        ),
    }
    return out


def main(outdir: str) -> None:
    rng = np.random.default_rng(0)
    X = rng.standard_normal((80, 4))
    Xnan = X.copy()
    Xnan[rng.random(X.shape) < 0.1] = np.nan
    y3 = (X[:, 0] > 0).astype(int) + (X[:, 1] > 0.5)
    yr = 2 * X[:, 0] + np.sin(X[:, 1])
    xcat = X.copy()
    xcat[:, 0] = rng.integers(0, 6, len(X))
    os.makedirs(outdir, exist_ok=True)
    version = sklearn.__version__
    for name, (est, Xtrain, methods) in models(X, Xnan, y3, yr, xcat).items():
        rows = rng.standard_normal((150, 4))
        if np.isnan(Xtrain).any():
            rows[rng.random(rows.shape) < 0.1] = np.nan
        if name == "hgb_cat":
            rows[:, 0] = rng.choice([-1.0, 0.0, 1.0, 2.5, 3.0, 5.0, 6.0, 7.0, 300.0, np.nan], len(rows))
        # thresholds and their neighbours make the rows that catch precision errors
        base = os.path.join(outdir, f"{version}_{name}")
        with open(base + ".pkl", "wb") as fh:
            pickle.dump(est, fh, protocol=4)
        np.savez(base + ".npz", X=rows, **{m: getattr(est, m)(rows) for m in methods})
        print(base)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "tests/frontends/sklearn/data")
