"""What skl2onnx and onnxmltools write: scikit-learn estimators and pipelines, XGBoost and
LightGBM models converted to ONNX, compiled and compared with ONNX Runtime (one thread).

Tree ensembles are bit-exact; linear steps within the rounding bound of ONNX Runtime's
SGEMM/MLAS (see test_corpus.py)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import timber
from ir.interpreter import run
from timber.frontends.onnx import load

from .onnxgen import ort_run

skl2onnx = pytest.importorskip("skl2onnx")
from sklearn.datasets import make_classification, make_regression  # noqa: E402
from sklearn.ensemble import (  # noqa: E402
    ExtraTreesClassifier,
    GradientBoostingClassifier,
    GradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.impute import SimpleImputer  # noqa: E402
from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge, SGDClassifier  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import MaxAbsScaler, MinMaxScaler, Normalizer, RobustScaler, StandardScaler  # noqa: E402

XC, YC = make_classification(160, 5, n_informative=3, n_classes=3, random_state=0)
XB, YB = make_classification(160, 5, random_state=1)
XR, YR = make_regression(160, 5, random_state=2)
XC[::7, 2] = np.nan  # missing values reach the trees / imputer

TREES = {
    "rf3": (lambda: RandomForestClassifier(6, max_depth=4, random_state=0), XC, YC),
    "rf2": (lambda: RandomForestClassifier(6, max_depth=4, random_state=0), XB, YB),
    "gbc2": (lambda: GradientBoostingClassifier(n_estimators=6, random_state=0), XB, YB),
    "gbc3": (lambda: GradientBoostingClassifier(n_estimators=4, random_state=0), np.nan_to_num(XC), YC),
    "gbr": (lambda: GradientBoostingRegressor(n_estimators=6, random_state=0), XR, YR),
    "rfr": (lambda: RandomForestRegressor(6, max_depth=4, random_state=0), XR, YR),
    "et3": (lambda: ExtraTreesClassifier(6, max_depth=3, random_state=0), np.nan_to_num(XC), YC),
}
LINEAR = {
    "scaler+logreg3": (lambda: make_pipeline(StandardScaler(), LogisticRegression()), np.nan_to_num(XC), YC),
    "logreg2": (lambda: LogisticRegression(), XB, YB),
    "minmax+linreg": (lambda: make_pipeline(MinMaxScaler(), LinearRegression()), XR, YR),
    "robust+ridge": (lambda: make_pipeline(RobustScaler(), Ridge()), XR, YR),
    "imputer+maxabs+logreg": (lambda: make_pipeline(SimpleImputer(), MaxAbsScaler(), LogisticRegression()), XC, YC),
    "normalizer+logreg": (lambda: make_pipeline(Normalizer(), LogisticRegression()), np.nan_to_num(XC), YC),
    "sgd": (lambda: SGDClassifier(random_state=0), np.nan_to_num(XC), YC),
}


def _convert(est, X):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return skl2onnx.to_onnx(est, X[:1].astype(np.float32), target_opset={"": 17, "ai.onnx.ml": 3})


def _compare(model, X, exact):
    module = load(model)
    out = module.attributes["timber.output"].value
    want = ort_run(model, X, out)
    got = run(module, X, math="libm").reshape(want.shape)
    if exact:
        np.testing.assert_array_equal(got, want)
    else:
        # relative to the model's output scale: a regression's sum may cancel to a small value
        assert np.max(np.abs(got - want)) / max(np.max(np.abs(want)), 1.0) < 4e-6
    return module


@pytest.mark.parametrize("name", sorted(TREES))
def test_skl2onnx_trees_exact(name):
    make, X, y = TREES[name]
    est = make().fit(X, y)
    Xt = X.astype(np.float32)
    _compare(_convert(est, Xt), np.concatenate([Xt, Xt + np.float32(1e-3)]), exact=True)


@pytest.mark.parametrize("name", ["rf3", "gbc2"])
def test_skl2onnx_label_output_on_request(name):
    make, X, y = TREES[name]
    model = _convert(make().fit(X, y), X)
    Xt = X.astype(np.float32)
    want = ort_run(model, Xt, "output_label").astype(np.float64)
    np.testing.assert_array_equal(run(load(model, output="output_label"), Xt, math="libm").reshape(want.shape), want)


@pytest.mark.parametrize("name", sorted(LINEAR))
def test_skl2onnx_linear_pipelines(name):
    make, X, y = LINEAR[name]
    est = make().fit(X, y)
    _compare(_convert(est, X), X.astype(np.float32), exact=False)


@pytest.mark.slow  # 3.5 s: an LLVM compile (test_trees.py compiles in the default run)
def test_skl2onnx_classifier_compiled_returns_probabilities():
    est = RandomForestClassifier(5, max_depth=3, random_state=0).fit(np.nan_to_num(XC), YC)
    model = _convert(est, XC)
    compiled = timber.compile(load(model))
    X = XC.astype(np.float32)
    np.testing.assert_array_equal(compiled.predict(X), ort_run(model, X, "output_probability"))


@pytest.mark.slow  # 6 s of training and conversion; the corpus holds onnxmltools XGBoost files
def test_onnxmltools_xgboost_and_lightgbm_exact():
    onnxmltools = pytest.importorskip("onnxmltools")
    xgb = pytest.importorskip("xgboost")
    lgb = pytest.importorskip("lightgbm")
    from onnxmltools.convert.common.data_types import FloatTensorType

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        models = [
            onnxmltools.convert_xgboost(
                xgb.XGBClassifier(n_estimators=8, max_depth=3).fit(XC, YC),
                initial_types=[("X", FloatTensorType([None, 5]))],
                target_opset=15,
            ),
            onnxmltools.convert_lightgbm(
                lgb.LGBMRegressor(n_estimators=8, num_leaves=7, verbose=-1).fit(XR, YR),
                initial_types=[("X", FloatTensorType([None, 5]))],
                target_opset=15,
            ),
        ]
    for model, X in zip(models, (XC, XR)):
        _compare(model, X.astype(np.float32), exact=True)


SVMS = {
    # RBF kernels are exact: the squared distances and products follow ONNX Runtime's order
    "svc3-rbf": (lambda: __import__("sklearn.svm", fromlist=["SVC"]).SVC(), np.nan_to_num(XC), YC, True),
    "svc2-rbf": (lambda: __import__("sklearn.svm", fromlist=["SVC"]).SVC(), XB, YB, True),
    "nusvc3-rbf": (lambda: __import__("sklearn.svm", fromlist=["NuSVC"]).NuSVC(), np.nan_to_num(XC), YC, True),
    # LINEAR/POLY/SIGMOID kernels go through ONNX Runtime's SGEMM (and MLAS's tanh)
    "svc3-poly": (lambda: __import__("sklearn.svm", fromlist=["SVC"]).SVC(kernel="poly"), np.nan_to_num(XC), YC, False),
    "svc3-sigmoid": (lambda: __import__("sklearn.svm", fromlist=["SVC"]).SVC(kernel="sigmoid"), np.nan_to_num(XC), YC, False),
    "svr-rbf": (lambda: __import__("sklearn.svm", fromlist=["SVR"]).SVR(), XR, YR, False),
    "oneclass": (lambda: __import__("sklearn.svm", fromlist=["OneClassSVM"]).OneClassSVM(), XR, None, False),
}


@pytest.mark.parametrize("name", sorted(SVMS))
def test_skl2onnx_svms(name):
    make, X, y, exact = SVMS[name]
    est = make().fit(X, y)
    _compare(_convert(est, X), X.astype(np.float32), exact=exact)


@pytest.mark.parametrize("n_classes", [2, 3])
def test_svm_probabilities_exact(n_classes):
    """Platt scaling and ONNX Runtime's pairwise coupling (100 unrolled float32 iterations)."""
    from sklearn.svm import SVC

    X, y = (XB, YB) if n_classes == 2 else (np.nan_to_num(XC), YC)
    model = _convert(SVC(probability=True, random_state=0).fit(X, y), X)
    _compare(model, X.astype(np.float32), exact=True)
