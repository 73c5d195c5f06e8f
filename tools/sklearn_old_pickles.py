"""Write small models pickled by an older scikit-learn, with that version's own outputs, for
`tests/frontends/sklearn/test_versions.py` (older pickles have other state layouts: no
`missing_go_to_left`, class counts instead of fractions in tree values, IsolationForest path
lengths computed at predict time, HistGradientBoosting categories without a preprocessor,
LogisticRegression's `multi_class`, SGD's `loss_function_`, KD-trees with the metric classes of
that release, ...).

Run it with the Python of a virtualenv holding the old version, e.g.

    python -m venv /tmp/v && /tmp/v/bin/pip install scikit-learn==1.2.2 numpy==1.26.4 'scipy<1.14' joblib 'pandas<2.3'
    /tmp/v/bin/python tools/sklearn_old_pickles.py tests/frontends/sklearn/data

The data holds 1.1.3 (with numpy==1.23.5 scipy==1.9.3), 1.2.2, 1.3.2 and 1.5.2 (with
numpy==1.26.4 'scipy<1.14'), all on Python 3.11; rerunning a release rewrites its files
byte for byte.

It writes `<version>_<name>.pkl` and `<version>_<name>.npz` (the rows `X`, and per method the
old version's output) for each model, and one zlib-compressed joblib file
(`<version>_<name>.joblib`, outputs in `<version>_<name>.npz` likewise).  Deterministic: fixed
seeds (the tree models draw from one generator, the other families from a second, so adding a
family leaves the existing files as they were).
"""

from __future__ import annotations

import os
import pickle
import sys
import warnings

import numpy as np
import sklearn
from sklearn import ensemble, tree

VERSION = tuple(int(p) for p in sklearn.__version__.split(".")[:2])


def models(X, Xnan, y3, yr, xcat):
    nan_ok = VERSION >= (1, 3)  # trees take NaN from 1.3 on
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


CLF = ["predict_proba", "predict_log_proba", "predict", "decision_function"]


def other_models():
    """The other families the front-end compiles: (name, estimator, X, y, methods, rows kind).

    Rows kinds: "dense" (normal rows and rows with one nonzero feature, where every dot product
    is one exact term), "counts" (the same, non-negative: MultinomialNB/ComplementNB), "nan"
    (with NaN entries: SimpleImputer; "nan23": in the last two columns only), "train" (dense plus training rows: zero k-NN distances)."""
    from sklearn import compose, decomposition, impute, neighbors, pipeline, svm
    from sklearn import linear_model as lm
    from sklearn import naive_bayes as nb
    from sklearn import neural_network as nn
    from sklearn import preprocessing as pp

    rng = np.random.default_rng(1)
    X = rng.standard_normal((90, 4))
    y2 = (X[:, 0] + 0.5 * X[:, 2] > 0).astype(int) + 3  # labels that are not column indices
    y3 = (X[:, 0] > 0).astype(int) + (X[:, 1] > 0.3)
    yr = 2 * X[:, 0] - X[:, 1] + np.sin(X[:, 2]) + 0.1 * rng.standard_normal(len(X))
    ypos = np.exp(yr / 4)
    counts = rng.integers(0, 5, X.shape).astype(float)
    Xnan = X.copy()
    Xnan[rng.random(X.shape) < 0.15] = np.nan
    Xnan23 = X.copy()  # NaN only where the ColumnTransformer imputes
    Xnan23[:, 2:] = Xnan[:, 2:]
    old_log = "log" if VERSION < (1, 1) else "log_loss"
    reg, dec, knn = ["predict"], ["decision_function", "predict"], ["predict_proba", "predict"]
    proba = ["predict_proba", "predict_log_proba", "predict"]
    out = [
        # linear regressors and GLMs
        ("linreg", lm.LinearRegression(), X, yr, reg, "dense"),
        ("ridge", lm.Ridge(alpha=0.5), X, yr, reg, "dense"),
        ("lasso", lm.Lasso(alpha=0.05), X, yr, reg, "dense"),
        ("enet", lm.ElasticNet(alpha=0.05), X, yr, reg, "dense"),
        ("sgd_reg", lm.SGDRegressor(random_state=0), X, yr, reg, "dense"),
        ("linsvr", svm.LinearSVR(random_state=0, max_iter=5000), X, yr, reg, "dense"),
        ("bayes_ridge", lm.BayesianRidge(), X, yr, reg, "dense"),
        ("ard", lm.ARDRegression(), X, yr, reg, "dense"),
        ("huber", lm.HuberRegressor(), X, yr, reg, "dense"),
        ("poisson", lm.PoissonRegressor(alpha=0.01), X, ypos, reg, "dense"),
        ("gamma", lm.GammaRegressor(alpha=0.01), X, ypos, reg, "dense"),
        ("tweedie", lm.TweedieRegressor(power=1.5, alpha=0.01), X, ypos, reg, "dense"),
        ("tweedie_id", lm.TweedieRegressor(power=0.0, alpha=0.01), X, yr, reg, "dense"),
        # linear classifiers: LogisticRegression's multi_class of every kind
        ("logreg_bin", lm.LogisticRegression(), X, y2, CLF, "dense"),
        ("logreg_multi", lm.LogisticRegression(), X, y3, CLF, "dense"),  # multi_class='auto', lbfgs: softmax
        ("logreg_ovr", lm.LogisticRegression(multi_class="ovr"), X, y3, CLF, "dense"),
        ("logreg_liblinear", lm.LogisticRegression(solver="liblinear"), X, y3, CLF, "dense"),  # 'auto': ovr
        ("logreg_multi_bin", lm.LogisticRegression(multi_class="multinomial"), X, y2, CLF, "dense"),
        ("sgd_log", lm.SGDClassifier(loss=old_log, random_state=0), X, y3, CLF, "dense"),
        ("sgd_huber", lm.SGDClassifier(loss="modified_huber", random_state=0), X, y2, CLF, "dense"),
        ("sgd_hinge", lm.SGDClassifier(random_state=0), X, y3, dec, "dense"),
        ("linsvc", svm.LinearSVC(random_state=0, max_iter=5000), X, y3, dec, "dense"),
        ("ridge_clf", lm.RidgeClassifier(), X, y3, dec, "dense"),
        ("perceptron", lm.Perceptron(random_state=0), X, y2, dec, "dense"),
        # libsvm
        ("svc_rbf", svm.SVC(probability=True, random_state=0), X, y3, CLF, "dense"),
        ("svc_bin", svm.SVC(kernel="poly", degree=2, probability=True, random_state=0), X, y2, CLF, "dense"),
        ("svc_ovo", svm.SVC(kernel="linear", decision_function_shape="ovo", break_ties=False), X, y3, dec, "dense"),
        ("nusvc", svm.NuSVC(nu=0.1, kernel="sigmoid", gamma=0.1, probability=True, random_state=0), X, y3, CLF, "dense"),
        ("svr", svm.SVR(C=3.0), X, yr, reg, "dense"),
        ("nusvr", svm.NuSVR(kernel="poly", degree=3), X, yr, reg, "dense"),
        ("ocsvm", svm.OneClassSVM(nu=0.2), X, None, ["decision_function", "score_samples", "predict"], "dense"),
        # nearest neighbours: KD-tree, ball tree, brute force
        ("knn_kd", neighbors.KNeighborsClassifier(5), X, y3, knn, "train"),
        ("knn_ball_dist", neighbors.KNeighborsClassifier(4, weights="distance", algorithm="ball_tree"), X, y3, knn, "train"),
        ("knn_brute_l1", neighbors.KNeighborsRegressor(3, weights="distance", algorithm="brute", metric="manhattan"), X, yr, reg, "train"),
        ("knn_reg_p1", neighbors.KNeighborsRegressor(6, p=1), X, yr, reg, "train"),
        # neural networks
        ("mlp_clf", nn.MLPClassifier((7,), random_state=0, max_iter=300), X, y3, proba, "dense"),
        ("mlp_bin", nn.MLPClassifier((5, 3), activation="tanh", random_state=0, max_iter=300), X, y2, proba, "dense"),
        ("mlp_reg", nn.MLPRegressor((6,), activation="logistic", random_state=0, max_iter=300), X, yr, reg, "dense"),
        # naive Bayes
        ("gnb", nb.GaussianNB(), X, y3, proba, "dense"),
        ("mnb", nb.MultinomialNB(), counts, y3, proba, "counts"),
        ("cnb", nb.ComplementNB(), counts, y3, proba, "counts"),
        ("bnb", nb.BernoulliNB(binarize=0.2), X, y3, proba, "dense"),
        # transformers and composition
        ("std_scaler", pp.StandardScaler(), X, None, ["transform"], "dense"),
        ("minmax", pp.MinMaxScaler(clip=True), X, None, ["transform"], "dense"),
        ("robust", pp.RobustScaler(), X, None, ["transform"], "dense"),
        ("maxabs", pp.MaxAbsScaler(), X, None, ["transform"], "dense"),
        ("normalizer", pp.Normalizer(norm="l1"), X, None, ["transform"], "dense"),
        ("poly", pp.PolynomialFeatures(degree=(2, 3), interaction_only=False), X, None, ["transform"], "dense"),
        ("pca", decomposition.PCA(3, whiten=True), X, None, ["transform"], "dense"),
        ("tsvd", decomposition.TruncatedSVD(2, random_state=0), X, None, ["transform"], "dense"),
        ("imputer", impute.SimpleImputer(strategy="median", add_indicator=True), Xnan, None, ["transform"], "nan"),
        ("pipe_logreg", pipeline.make_pipeline(pp.StandardScaler(), lm.LogisticRegression()), X, y3, CLF, "dense"),
        (
            "coltrans_pipe",
            pipeline.make_pipeline(
                compose.ColumnTransformer(
                    [("scale", pp.StandardScaler(), [0]), ("impute", impute.SimpleImputer(), [2, 3])], remainder="passthrough"
                ),
                ensemble.RandomForestRegressor(4, max_depth=3, random_state=0),
            ),
            Xnan23,
            yr,
            reg,
            "nan23",
        ),
        ("union", pipeline.make_union(pp.MinMaxScaler(), pp.FunctionTransformer(np.log1p)), counts, None, ["transform"], "counts"),
    ]
    return out


def rows_of(kind: str, Xtrain: np.ndarray, rng) -> np.ndarray:
    """Rows to evaluate: normal rows, then rows with one nonzero feature (one exact term in every
    dot product: BLAS's order cannot change those), then per kind NaN or training rows."""
    n = Xtrain.shape[1]
    dense = rng.standard_normal((100, n)) * 1.5
    one = np.zeros((4 * n, n))
    for j in range(n):
        one[4 * j : 4 * j + 4, j] = [1.5, -3.25, 0.0625, 40.0]
    if kind == "counts":
        return np.vstack([np.abs(np.round(dense * 2)), np.abs(one)])
    rows = np.vstack([dense, one])
    if kind in ("nan", "nan23"):
        mask = rng.random(rows.shape) < 0.15
        if kind == "nan23":
            mask[:, :2] = False
        rows[mask] = np.nan
    if kind == "train":
        rows = np.vstack([rows, Xtrain[:6]])
    return rows


def write(outdir: str, name: str, est, rows: np.ndarray, methods: list[str], joblib_file: bool = False) -> None:
    base = os.path.join(outdir, f"{sklearn.__version__}_{name}")
    if joblib_file:
        import joblib

        joblib.dump(est, base + ".joblib", compress=("zlib", 3))
    else:
        with open(base + ".pkl", "wb") as fh:
            pickle.dump(est, fh, protocol=4)
    names = getattr(est, "feature_names_in_", None)
    inputs = rows
    if names is not None:  # fitted on a DataFrame: called on one too (the .npz keeps the plain rows)
        import pandas as pd

        inputs = pd.DataFrame(rows, columns=list(names))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        np.savez_compressed(base + ".npz", X=rows, **{m: getattr(est, m)(inputs) for m in methods})
    print(base)


def frame_models():
    """Models fitted on a pandas DataFrame: `feature_names_in_`, columns selected by name (in
    another order than the frame's)."""
    import pandas as pd
    from sklearn import compose, impute, pipeline, svm
    from sklearn import preprocessing as pp

    rng = np.random.default_rng(3)
    X = rng.standard_normal((90, 4))
    X[rng.random(X.shape) < 0.1] = np.nan
    X[:, :2] = np.nan_to_num(X[:, :2])  # NaN only in the imputed column
    y3 = (np.nan_to_num(X[:, 1]) > 0).astype(int) + (X[:, 0] > 0.4)
    frame = pd.DataFrame(X, columns=["age", "income", "score", "rate"])
    ct = compose.ColumnTransformer(
        [("num", pp.StandardScaler(), ["income", "age"]), ("imp", impute.SimpleImputer(strategy="median"), ["rate"])],
        remainder="drop",
    )
    est = pipeline.make_pipeline(ct, svm.SVC(probability=True, random_state=0)).fit(frame, y3)
    rows = rng.standard_normal((60, 4))
    rows[rng.random(rows.shape) < 0.15] = np.nan
    rows[:, :2] = np.nan_to_num(rows[:, :2])
    return [("frame_coltrans_svc", est, rows, CLF)]


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

    rng = np.random.default_rng(2)
    for name, est, Xtrain, y, methods, kind in other_models():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # convergence and deprecation warnings of small fits
            est.fit(Xtrain, y) if y is not None else est.fit(Xtrain)
        write(outdir, name, est, rows_of(kind, Xtrain, rng), methods)
    # one joblib file (zlib-compressed: joblib's own array layout inside) per release
    est = [e for n, e, *_ in other_models() if n == "svc_rbf"][0]
    X1 = [x for n, _, x, *_ in other_models() if n == "svc_rbf"][0]
    y1 = [y for n, _, _, y, *_ in other_models() if n == "svc_rbf"][0]
    write(outdir, "svc_rbf_zlib", est.fit(X1, y1), rows_of("dense", X1, rng), ["predict_proba", "predict"], joblib_file=True)
    for name, est, rows, methods in frame_models():
        write(outdir, name, est, rows, methods)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "tests/frontends/sklearn/data")
