"""The benchmark models of `tools/bench.py`: trained once with fixed seeds and cached.

    python tools/bench_models.py [--cache DIR] [--models demo,xgb1000,...]   # train whatever is missing

Every model is trained on synthetic data (or sklearn's breast_cancer for the demo) with 2 threads and
sub-sampled data so that training all of them takes a few minutes on a 2-core machine.  Benchmark rows
come from the same generator with another seed, so trees see the value ranges they were trained on.

| name       | framework | model                                                                           |
|------------|-----------|---------------------------------------------------------------------------------|
| demo       | XGBoost   | timber/examples/breast_cancer_xgb.json: 50 trees, depth 4, binary:logistic, 30 features |
| xgb1000    | XGBoost   | 1000 trees, depth 8, binary:logistic, 100 features                              |
| xgb10class | XGBoost   | 2000 trees (200 rounds x 10 classes), depth 6, multi:softprob, 50 features      |
| lgb500     | LightGBM  | 500 trees, 63 leaves, regression on 100k x 50                                    |
| lgbcat     | LightGBM  | 1000 trees, 31 leaves, binary, 20 numerical + 5 categorical features            |
| cb500      | CatBoost  | 500 oblivious trees, depth 6, RMSE regression, 50 features                      |
| cbctr      | CatBoost  | 300 oblivious trees, depth 6, Logloss, 20 numerical + 4 categorical features (CTRs)  |
| rf100      | sklearn   | RandomForestClassifier 100 trees, max_depth 20, binary, 20 features             |
| logreg     | sklearn   | LogisticRegression, 5 classes (multinomial), 50 features                        |
| mlp        | sklearn   | MLPClassifier (100, 50) relu, 5 classes, 50 features                            |
| svc        | sklearn   | SVC rbf, probability=True, 3 classes, 50 features, ~1500 support vectors        |
| knn        | sklearn   | KNeighborsClassifier k=5, 3 classes, 50 features, 5000 training rows            |

scikit-learn models are pickled (`.pkl`); the bench compiles the file and times the estimator's own
`predict_proba` with `n_jobs` set to the thread count where the estimator has it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
DEFAULT_CACHE = Path(os.environ.get("TIMBER_BENCH_CACHE", Path.home() / ".cache" / "timber-bench"))
TRAIN_THREADS = 2


@dataclass
class BenchModel:
    """One benchmark model: where its files are and how to make rows for it."""

    name: str
    framework: str  # "xgboost" | "lightgbm" | "catboost" | "sklearn"
    description: str
    n_features: int
    rows: Callable[[int, int], np.ndarray]  # (n, seed) -> float32 (n, n_features), C order
    train: Callable[[Path], None]  # writes `path` (and `native_path`)
    filename: str
    native_filename: str | None = None  # CatBoost's own .cbm beside the JSON export
    categorical: list[int] = field(default_factory=list)
    fixed_path: Path | None = None  # a shipped model file used instead of training

    def path(self, cache: Path) -> Path:
        """The model file Timber and the peers compile."""
        if self.fixed_path is not None and self.fixed_path.exists():
            return self.fixed_path
        return cache / "models" / self.filename

    def native_path(self, cache: Path) -> Path:
        """The file the framework itself loads (the same file except for CatBoost)."""
        if self.native_filename is None:
            return self.path(cache)
        return cache / "models" / self.native_filename


# ---------------------------------------------------------------- data generators


def _normal_rows(n_features: int) -> Callable[[int, int], np.ndarray]:
    def rows(n: int, seed: int) -> np.ndarray:
        rng = np.random.default_rng(seed)
        return rng.standard_normal((n, n_features), dtype=np.float32)

    return rows


def _binary_target(X: np.ndarray, seed: int) -> np.ndarray:
    """A nonlinear target that needs deep trees: a few interactions, a sine and noise."""
    rng = np.random.default_rng(seed)
    w = rng.standard_normal(X.shape[1])
    score = X @ w * 0.3 + np.sin(2 * X[:, 0]) * X[:, 1] + X[:, 2] * X[:, 3] - np.abs(X[:, 4])
    return (score + rng.standard_normal(len(X)) > 0).astype(np.float32)


def _breast_cancer_data() -> tuple[np.ndarray, np.ndarray]:
    """sklearn's breast_cancer table, read from the CSV sklearn ships (importing sklearn takes seconds)."""
    import importlib.util

    spec = importlib.util.find_spec("sklearn")
    if spec is None or spec.origin is None:
        raise RuntimeError("the demo model's rows come from scikit-learn's breast_cancer data: pip install scikit-learn")
    table = np.loadtxt(Path(spec.origin).parent / "datasets" / "data" / "breast_cancer.csv", delimiter=",", skiprows=1)
    return table[:, :-1], table[:, -1]


def _breast_cancer_rows(n: int, seed: int) -> np.ndarray:
    """Rows of breast_cancer drawn with replacement: the values the demo model was trained on."""
    data = _breast_cancer_data()[0].astype(np.float32)
    rng = np.random.default_rng(seed)
    return np.ascontiguousarray(data[rng.integers(0, len(data), n)])


CAT_CARDINALITIES = (4, 20, 100, 300, 1000)
LGBCAT_NUMERIC = 20


def _lgbcat_rows(n: int, seed: int) -> np.ndarray:
    """20 normal columns followed by 5 integer category codes (stored as floats, as LightGBM takes them)."""
    rng = np.random.default_rng(seed)
    cats = [rng.integers(0, c, n).astype(np.float32) for c in CAT_CARDINALITIES]
    return np.ascontiguousarray(np.column_stack([rng.standard_normal((n, LGBCAT_NUMERIC), dtype=np.float32), *cats]))


# ---------------------------------------------------------------- trainers


def _train_demo(out: Path) -> None:
    import xgboost as xgb

    X, y = _breast_cancer_data()
    params = {"objective": "binary:logistic", "max_depth": 4, "eta": 0.3, "nthread": TRAIN_THREADS, "seed": 0}
    booster = xgb.train(params, xgb.DMatrix(X, label=y), num_boost_round=50)
    booster.save_model(str(out))


def _train_xgb1000(out: Path) -> None:
    import xgboost as xgb

    X = _normal_rows(100)(20000, 1)
    params = {
        "objective": "binary:logistic", "max_depth": 8, "eta": 0.05, "tree_method": "hist",
        "subsample": 0.8, "nthread": TRAIN_THREADS, "seed": 0,
    }
    booster = xgb.train(params, xgb.DMatrix(X, label=_binary_target(X, 2)), num_boost_round=1000)
    booster.save_model(str(out))


def _train_xgb10class(out: Path) -> None:
    import xgboost as xgb

    X = _normal_rows(50)(10000, 3)
    rng = np.random.default_rng(4)
    centers = rng.standard_normal((10, 50))
    y = np.argmax(X @ centers.T + 0.5 * rng.standard_normal((len(X), 10)) + np.sin(X[:, :10]), axis=1)
    params = {
        "objective": "multi:softprob", "num_class": 10, "max_depth": 6, "eta": 0.1, "tree_method": "hist",
        "subsample": 0.8, "nthread": TRAIN_THREADS, "seed": 0,
    }
    booster = xgb.train(params, xgb.DMatrix(X, label=y), num_boost_round=200)
    booster.save_model(str(out))


def _train_lgb500(out: Path) -> None:
    import lightgbm as lgb

    X = _normal_rows(50)(100_000, 5)
    rng = np.random.default_rng(6)
    y = X @ rng.standard_normal(50) + np.sin(3 * X[:, 0]) * X[:, 1] + X[:, 2] ** 2 + 0.1 * rng.standard_normal(len(X))
    params = {
        "objective": "regression", "num_leaves": 63, "learning_rate": 0.05, "num_threads": TRAIN_THREADS,
        "bagging_fraction": 0.5, "bagging_freq": 1, "seed": 0, "verbose": -1,
    }
    booster = lgb.train(params, lgb.Dataset(X, label=y), num_boost_round=500)
    booster.save_model(str(out))


def _train_lgbcat(out: Path) -> None:
    import lightgbm as lgb

    X = _lgbcat_rows(30000, 7)
    rng = np.random.default_rng(8)
    effects = [rng.standard_normal(c) for c in CAT_CARDINALITIES]
    cat_score = sum(e[X[:, LGBCAT_NUMERIC + i].astype(int)] for i, e in enumerate(effects))
    y = (cat_score + X[:, 0] * X[:, 1] + 0.5 * X[:, 2] + rng.standard_normal(len(X)) > 0).astype(np.float32)
    cats = list(range(LGBCAT_NUMERIC, LGBCAT_NUMERIC + len(CAT_CARDINALITIES)))
    params = {
        "objective": "binary", "num_leaves": 31, "learning_rate": 0.05, "num_threads": TRAIN_THREADS,
        "bagging_fraction": 0.5, "bagging_freq": 1, "seed": 0, "verbose": -1, "min_data_per_group": 20,
    }
    booster = lgb.train(params, lgb.Dataset(X, label=y, categorical_feature=cats), num_boost_round=1000)
    booster.save_model(str(out))


def _train_cb500(out: Path) -> None:
    import catboost

    X = _normal_rows(50)(20000, 9)
    rng = np.random.default_rng(10)
    y = X @ rng.standard_normal(50) + np.sin(3 * X[:, 0]) * X[:, 1] + 0.1 * rng.standard_normal(len(X))
    model = catboost.CatBoostRegressor(
        iterations=500, depth=6, learning_rate=0.1, thread_count=TRAIN_THREADS, random_seed=0, verbose=0, allow_writing_files=False
    )
    model.fit(X, y)
    model.save_model(str(out), format="json")
    model.save_model(str(out.with_suffix(".cbm")), format="cbm")


def _classes(X: np.ndarray, k: int, seed: int) -> np.ndarray:
    """k classes from a noisy nonlinear score: the argmax of random projections plus a sine."""
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((k, X.shape[1]))
    return np.argmax(X @ centers.T + 0.8 * rng.standard_normal((len(X), k)) + np.sin(X[:, :k]), axis=1)


CBCTR_CARDINALITIES = (10, 50, 200, 1000)
CBCTR_NUMERIC = 20


def _cbctr_rows(n: int, seed: int) -> np.ndarray:
    """20 normal columns, then 4 integer category codes (as floats: Timber's code c is CatBoost's "c")."""
    rng = np.random.default_rng(seed)
    cats = [rng.integers(0, c, n).astype(np.float32) for c in CBCTR_CARDINALITIES]
    return np.ascontiguousarray(np.column_stack([rng.standard_normal((n, CBCTR_NUMERIC), dtype=np.float32), *cats]))


def catboost_pool(X: np.ndarray, categorical: list[int], label=None):
    """CatBoost takes categorical values as integers or strings, not floats: a Pool of X with its
    category columns as ints."""
    import catboost
    import pandas as pd

    df = pd.DataFrame(X)
    for c in categorical:
        df[c] = X[:, c].astype(np.int64)
    return catboost.Pool(df, label=label, cat_features=categorical)


def _train_cbctr(out: Path) -> None:
    import catboost

    X = _cbctr_rows(20000, 31)
    rng = np.random.default_rng(32)
    effects = [rng.standard_normal(c) for c in CBCTR_CARDINALITIES]
    score = sum(e[X[:, CBCTR_NUMERIC + i].astype(int)] for i, e in enumerate(effects)) + X[:, 0] * X[:, 1] + 0.5 * X[:, 2]
    y = (score + rng.standard_normal(len(X)) > 0).astype(int)
    cats = list(range(CBCTR_NUMERIC, CBCTR_NUMERIC + len(CBCTR_CARDINALITIES)))
    model = catboost.CatBoostClassifier(
        iterations=300, depth=6, learning_rate=0.1, thread_count=TRAIN_THREADS, random_seed=0, verbose=0, allow_writing_files=False
    )
    model.fit(catboost_pool(X, cats, y))
    model.save_model(str(out), format="json")
    model.save_model(str(out.with_suffix(".cbm")), format="cbm")


def _rows64(n_features: int) -> Callable[[int, int], np.ndarray]:
    """float64 rows: scikit-learn users train and predict in float64 (a model fitted on float32
    data computes in float32, and so would not be the usual case)."""
    rows32 = _normal_rows(n_features)

    def rows(n: int, seed: int) -> np.ndarray:
        return rows32(n, seed).astype(np.float64)

    return rows


def _pickle(est, out: Path) -> None:
    import pickle

    with open(out, "wb") as fh:
        pickle.dump(est, fh, protocol=pickle.HIGHEST_PROTOCOL)


def _train_rf100(out: Path) -> None:
    from sklearn.ensemble import RandomForestClassifier

    X = _rows64(20)(30000, 11)
    est = RandomForestClassifier(n_estimators=100, max_depth=20, n_jobs=TRAIN_THREADS, random_state=0)
    _pickle(est.fit(X, _binary_target(X, 12)), out)


def _sklearn_trainer(make, n_rows: int, n_features: int, k: int, seed: int):
    def train(out: Path) -> None:
        X = _rows64(n_features)(n_rows, seed)
        _pickle(make().fit(X, _classes(X, k, seed + 1)), out)

    return train


def _logreg():
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(max_iter=500)


def _mlp():
    from sklearn.neural_network import MLPClassifier

    return MLPClassifier(hidden_layer_sizes=(100, 50), max_iter=60, random_state=0)


def _svc():
    from sklearn.svm import SVC

    return SVC(kernel="rbf", probability=True, random_state=0)


def _knn():
    from sklearn.neighbors import KNeighborsClassifier

    return KNeighborsClassifier(n_neighbors=5)


MODELS: dict[str, BenchModel] = {
    m.name: m
    for m in [
        BenchModel("demo", "xgboost", "XGBoost 50 trees depth 4 binary:logistic (breast_cancer demo)", 30,
                   _breast_cancer_rows, _train_demo, "demo_breast_cancer_xgb.json",
                   fixed_path=REPO / "timber" / "examples" / "breast_cancer_xgb.json"),
        BenchModel("xgb1000", "xgboost", "XGBoost 1000 trees depth 8 binary:logistic, 100 features", 100,
                   _normal_rows(100), _train_xgb1000, "xgb1000.json"),
        BenchModel("xgb10class", "xgboost", "XGBoost 2000 trees depth 6 multi:softprob 10 classes, 50 features", 50,
                   _normal_rows(50), _train_xgb10class, "xgb10class.json"),
        BenchModel("lgb500", "lightgbm", "LightGBM 500 trees 63 leaves regression, 100k x 50 training rows", 50,
                   _normal_rows(50), _train_lgb500, "lgb500.txt"),
        BenchModel("lgbcat", "lightgbm", "LightGBM 1000 trees 31 leaves binary, 20 numerical + 5 categorical features",
                   LGBCAT_NUMERIC + len(CAT_CARDINALITIES), _lgbcat_rows, _train_lgbcat, "lgbcat.txt",
                   categorical=list(range(LGBCAT_NUMERIC, LGBCAT_NUMERIC + len(CAT_CARDINALITIES)))),
        BenchModel("cb500", "catboost", "CatBoost 500 oblivious trees depth 6 RMSE, 50 features", 50,
                   _normal_rows(50), _train_cb500, "cb500.json", native_filename="cb500.cbm"),
        BenchModel("cbctr", "catboost", "CatBoost 300 oblivious trees depth 6 Logloss, 20 numerical + 4 categorical features (CTRs)",
                   CBCTR_NUMERIC + len(CBCTR_CARDINALITIES), _cbctr_rows, _train_cbctr, "cbctr.json", native_filename="cbctr.cbm",
                   categorical=list(range(CBCTR_NUMERIC, CBCTR_NUMERIC + len(CBCTR_CARDINALITIES)))),
        BenchModel("rf100", "sklearn", "scikit-learn RandomForestClassifier 100 trees max_depth 20, binary, 20 features", 20,
                   _rows64(20), _train_rf100, "rf100.pkl"),
        BenchModel("logreg", "sklearn", "scikit-learn LogisticRegression, 5 classes, 50 features", 50,
                   _rows64(50), _sklearn_trainer(_logreg, 20000, 50, 5, 21), "logreg.pkl"),
        BenchModel("mlp", "sklearn", "scikit-learn MLPClassifier (100, 50) relu, 5 classes, 50 features", 50,
                   _rows64(50), _sklearn_trainer(_mlp, 20000, 50, 5, 23), "mlp.pkl"),
        BenchModel("svc", "sklearn", "scikit-learn SVC rbf probability=True, 3 classes, 50 features", 50,
                   _rows64(50), _sklearn_trainer(_svc, 3000, 50, 3, 25), "svc.pkl"),
        BenchModel("knn", "sklearn", "scikit-learn KNeighborsClassifier k=5, 3 classes, 50 features, 5000 training rows", 50,
                   _rows64(50), _sklearn_trainer(_knn, 5000, 50, 3, 27), "knn.pkl"),
    ]
}


def ensure_model(model: BenchModel, cache: Path = DEFAULT_CACHE, log=print) -> Path:
    """Train the model into the cache unless its file is already there; return the file to compile."""
    path = model.path(cache)
    if path.exists() and model.native_path(cache).exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    log(f"training {model.name}: {model.description} (once, cached in {path.parent}) ...")
    t0 = time.perf_counter()
    tmp = path.with_name(path.stem + ".partial" + path.suffix)
    model.train(tmp)
    # Rename only complete files so an interrupted run never leaves a half-written model in the cache.
    if model.native_filename is not None:
        tmp.with_suffix(".cbm").replace(model.native_path(cache))
    tmp.replace(path)
    (path.parent / f"{model.name}.train.json").write_text(json.dumps({"train_s": time.perf_counter() - t0}))
    log(f"  trained {model.name} in {time.perf_counter() - t0:.1f} s")
    return path


def main(argv: list[str] | None = None) -> int:
    """Train every requested model that is not cached yet."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help="cache directory (default %(default)s)")
    ap.add_argument("--models", default=",".join(MODELS), help="comma-separated subset of: " + ", ".join(MODELS))
    args = ap.parse_args(argv)
    for name in args.models.split(","):
        if name not in MODELS:
            print(f"bench_models: unknown model {name!r}; known: {', '.join(MODELS)}", file=sys.stderr)
            return 1
        print(ensure_model(MODELS[name], args.cache))
    return 0


if __name__ == "__main__":
    sys.exit(main())
