"""Pickles written by older scikit-learn releases (other state layouts) compile and return what
that release's own call returned.  The files and the old release's outputs are made by
`tools/sklearn_old_pickles.py` in a virtualenv of that release, for every estimator family the
front-end compiles: trees and forests, HistGradientBoosting, IsolationForest, linear models and
GLMs, LogisticRegression of every `multi_class`, SGD, libsvm models with probabilities, k-NN,
MLPs, naive Bayes, transformers, Pipeline / ColumnTransformer / FeatureUnion, and one
zlib-compressed joblib file per release.  A layout this front-end does not know is an error
naming the attribute.

How outputs compare (scikit-learn is not needed: the old release's outputs are in the .npz):

* bit for bit, for every model whose computation Timber reproduces exactly (trees, libsvm with
  under 16 features, k-NN trees and brute-force manhattan, scalers, imputers, polynomial
  features, Normalizer) and for every `predict` label;
* `score_samples` of IsolationForest within 1 ulp (2 ** x is pow in numpy, exp(x·ln2) here);
* models whose old release computes with BLAS (linear models, MLPs, discrete naive Bayes,
  PCA/TruncatedSVD) or with another algorithm than today's (naive Bayes' `logsumexp` was
  scipy's, which itself depends on the scipy release; PCA centred the rows before projecting):
  within `TOL·max(1, |y|)`, TOL = 1e-13 (measured: at most 4.1e-14, SGD modified_huber);
  and bit for bit on the rows with one nonzero feature for the pure linear models, where every
  dot product is one exact term and what follows is scikit-learn's arithmetic of that release.
"""

from __future__ import annotations

import glob
import os

import numpy as np
import pytest

from ir.diagnostics import TimberError
from timber.frontends import sklearn as sk
from timber.frontends.sklearn.registry import Obj
from timber.frontends.sklearn.unpickle import read_file

from .helpers import predict, ulp_distance

DATA = os.path.join(os.path.dirname(__file__), "data")
FILES = sorted(glob.glob(os.path.join(DATA, "*.pkl")) + glob.glob(os.path.join(DATA, "*.joblib")))
TOL = 1e-13

# computed with BLAS (summation order unknown) or with another algorithm in the old release
ROUNDED = {
    "LinearRegression", "Ridge", "Lasso", "ElasticNet", "SGDRegressor", "LinearSVR", "BayesianRidge", "ARDRegression",
    "HuberRegressor", "PoissonRegressor", "GammaRegressor", "TweedieRegressor", "LogisticRegression", "SGDClassifier",
    "LinearSVC", "RidgeClassifier", "Perceptron", "MLPClassifier", "MLPRegressor", "GaussianNB", "MultinomialNB",
    "ComplementNB", "BernoulliNB", "PCA", "TruncatedSVD",
}  # fmt: skip
# ... of which these are one exact product per output on a row with one nonzero feature
ONE_TERM_EXACT = ROUNDED - {"MLPClassifier", "MLPRegressor", "GaussianNB", "MultinomialNB", "ComplementNB", "BernoulliNB", "PCA"}


def _classes(v, out: set) -> set:
    """The short class names of every estimator record in `v` (pipeline steps, transformers)."""
    if isinstance(v, Obj):
        out.add(v.name)
        for key in ("steps", "transformers_", "transformer_list"):
            for entry in v.state.get(key, None) or []:
                if isinstance(entry, tuple):
                    for part in entry:
                        _classes(part, out)
    return out


def _labels(est) -> bool:
    """Whether `predict` of this record returns labels (a classifier or outlier detector last)."""
    while isinstance(est, Obj) and est.name == "Pipeline":
        est = est.attr("steps")[-1][1]
    conv = sk.CONVERTERS.get(est.name) if isinstance(est, Obj) else None
    return conv is not None and conv.kind in ("classifier", "outlier")


def _id(path: str) -> str:
    return os.path.basename(path).replace(".pkl", "")


@pytest.mark.parametrize("path", FILES, ids=[_id(p) for p in FILES])
def test_old_release_pickles(path):
    """No scikit-learn needed: the old release's outputs are stored beside its pickle."""
    ref = np.load(path.rsplit(".", 1)[0] + ".npz")
    methods = [k for k in ref.files if k != "X"]
    assert methods
    X = ref["X"]
    est = read_file(path)[0]
    names = _classes(est, set())
    rounded = bool(names & ROUNDED)
    one_term = (X != 0).sum(axis=1) <= 1 if names <= ONE_TERM_EXACT else np.zeros(len(X), bool)
    for method in methods:
        got = predict(sk.load(path, method=method), X)
        want = ref[method]
        assert got.shape == want.shape, method
        if method == "score_samples" and "IsolationForest" in names:
            assert ulp_distance(got, want).max() <= 1
        elif rounded and not (method == "predict" and _labels(est)):
            np.testing.assert_array_equal(np.isfinite(got), np.isfinite(want))
            fin = np.isfinite(want)
            err = np.abs(got[fin] - want[fin]) / np.maximum(1.0, np.abs(want[fin]))
            assert err.max(initial=0.0) <= TOL, (method, err.max())
            if one_term.any():
                np.testing.assert_array_equal(got[one_term], want[one_term], err_msg=f"{method}, rows with one term")
        else:
            np.testing.assert_array_equal(got, want, err_msg=method)


def test_every_family_and_release_is_covered():
    """The data holds each compiled family for every release written, and a joblib file of each."""
    releases = sorted({os.path.basename(p).split("_", 1)[0] for p in FILES})
    assert len(releases) >= 2
    covered = {r: set() for r in releases}
    for p in FILES:
        covered[os.path.basename(p).split("_", 1)[0]] |= _classes(read_file(p)[0], set())
    families = {
        "LogisticRegression", "SGDClassifier", "LinearSVC", "Ridge", "Lasso", "ElasticNet", "PoissonRegressor",
        "GammaRegressor", "TweedieRegressor", "BayesianRidge", "ARDRegression", "SVC", "NuSVC", "SVR", "NuSVR", "OneClassSVM",
        "KNeighborsClassifier", "KNeighborsRegressor", "MLPClassifier", "MLPRegressor", "GaussianNB", "MultinomialNB",
        "ComplementNB", "BernoulliNB", "StandardScaler", "SimpleImputer", "PCA", "PolynomialFeatures", "Pipeline",
        "ColumnTransformer", "FeatureUnion", "DecisionTreeClassifier", "HistGradientBoostingClassifier", "IsolationForest",
    }  # fmt: skip
    for r in releases:
        assert families <= covered[r], (r, sorted(families - covered[r]))
        assert glob.glob(os.path.join(DATA, f"{r}_*.joblib")), r


def _record(name: str, release: str = "1.2.2"):
    return read_file(os.path.join(DATA, f"{release}_{name}.pkl"))[0]


def test_old_layouts_are_the_ones_read():
    """The files do hold the old layouts the front-end reads (so the parity above covers them)."""
    lr = _record("logreg_multi")
    assert lr.attr("multi_class") == "auto" and lr.attr("solver") == "lbfgs"  # softmax, not one-vs-rest
    assert _record("logreg_liblinear").attr("multi_class") == "auto"  # liblinear: one-vs-rest
    assert _record("logreg_ovr").attr("multi_class") == "ovr"
    assert not _record("ridge_clf").has("classes_")  # a property of _label_binarizer then
    assert _record("sgd_log").has("loss_function_") and _record("sgd_log").attr("loss") == "log_loss"
    assert _record("svc_rbf").has("_probA") and _record("svc_rbf").has("_n_support")
    assert not _record("union").has("n_features_in_")  # a property then
    fn = _record("union").attr("transformer_list")[1][1].attr("func")
    assert isinstance(fn, Obj) and fn.cls == "numpy.log1p"  # numpy 1.x: numpy.core._multiarray_umath.log1p
    knn = _record("knn_kd")
    assert knn.attr("_fit_method") == "kd_tree" and knn.attr("effective_metric_") == "euclidean"
    # 1.5: multi_class='deprecated' (softmax here, as 'auto'); Cython losses pickled as `_loss.*`
    assert _record("logreg_multi", "1.5.2").attr("multi_class") == "deprecated"
    closs = _record("gamma", "1.5.2").attr("_base_loss").attr("closs")
    assert closs.cls == "sklearn._loss._loss.__pyx_unpickle_CyHalfGammaLoss", closs.cls
    # 1.1: the SGD loss as an object of `_sgd_fast`
    assert _record("sgd_log", "1.1.3").attr("loss_function_").cls == "sklearn.linear_model._sgd_fast.Log"


def test_bare_loss_module_names_only_the_cython_losses():
    """The `_loss.` alias of 1.5's pickles covers its Cython loss classes and their unpickle
    helpers, nothing else under a module named `_loss`."""
    from timber.frontends.sklearn.unpickle import known_global, sklearn_alias

    assert sklearn_alias("_loss.CyHalfPoissonLoss") == "sklearn._loss._loss.CyHalfPoissonLoss"
    assert known_global("_loss.__pyx_unpickle_CyHalfGammaLoss") == "internal"
    assert known_global("_loss.system") is None and sklearn_alias("_loss.system") == "_loss.system"
    with pytest.raises(TimberError, match="refused to load global '_loss.system'"):
        read_file(b"\x80\x04\x8c\x05_loss\x8c\x06system\x93.", "evil.pkl")


@pytest.mark.parametrize("release", sorted({os.path.basename(p).split("_", 1)[0] for p in FILES}))
def test_dataframe_fitted_pipeline_selects_columns_by_name(release):
    """A Pipeline fitted on a DataFrame: its ColumnTransformer picks columns by name, in another
    order than the frame's.  The module names the input columns (the first step's
    `feature_names_in_`), and the names alone (without `_transformer_to_input_indices`) select
    the same columns."""
    path = os.path.join(DATA, f"{release}_frame_coltrans_svc.pkl")
    ref = np.load(path[:-4] + ".npz")
    est = read_file(path)[0]
    module = sk.build_module(est, path, "predict_proba")
    assert [a.value for a in module.attributes["timber.feature_names"]] == ["age", "income", "score", "rate"]
    ct = est.attr("steps")[0][1]
    assert ct.attr("transformers_")[0][2] == ["income", "age"]
    del ct.state["_transformer_to_input_indices"]
    np.testing.assert_array_equal(predict(sk.build_module(est, path, "predict_proba"), ref["X"]), ref["predict_proba"])


def test_old_gaussian_nb_variances_named_sigma():
    """scikit-learn < 1.0 kept GaussianNB's variances as `sigma_` (no `var_`): read as the same."""
    est = _record("gnb")
    X = np.load(os.path.join(DATA, "1.2.2_gnb.npz"))["X"]
    want = predict(sk.build_module(est, "old.pkl", "predict_log_proba"), X)
    est.state["sigma_"] = est.state.pop("var_")
    np.testing.assert_array_equal(predict(sk.build_module(est, "old.pkl", "predict_log_proba"), X), want)
    del est.state["sigma_"]
    with pytest.raises(TimberError, match=r"GaussianNB\.var_ is missing"):
        sk.build_module(est, "old.pkl", None)


@pytest.mark.parametrize(
    "name,edit,message",
    [
        pytest.param("svc_rbf", lambda s: s.pop("_probA"), r"_probA \(or probA_\) is missing but probability=True", id="svc-probA"),
        pytest.param("svc_rbf", lambda s: s.pop("_dual_coef_"), r"SVC\._dual_coef_ is missing", id="svc-dual_coef"),
        pytest.param(
            "logreg_multi",
            lambda s: s.update(multi_class="softmax"),
            r"multi_class='softmax' is not a value scikit-learn knows",
            id="logreg-multi_class",
        ),
        pytest.param(
            "knn_kd", lambda s: s.update(effective_metric_params_={"p": 2, "w": np.ones(4)}), r"metric parameter 'w'", id="knn-weighted"
        ),
        pytest.param("knn_kd", lambda s: s.pop("_fit_X"), r"KNeighborsClassifier\._fit_X is missing", id="knn-fit_X"),
        pytest.param("mlp_clf", lambda s: s.pop("out_activation_"), r"MLPClassifier\.out_activation_ is missing", id="mlp-out_activation"),
        pytest.param("ridge_clf", lambda s: s.pop("_label_binarizer"), r"RidgeClassifier\.classes_ is missing", id="ridge-classes"),
        pytest.param("mnb", lambda s: s.pop("feature_log_prob_"), r"MultinomialNB\.feature_log_prob_ is missing", id="mnb-flp"),
        pytest.param("pca", lambda s: s.pop("components_"), r"PCA\.components_ is missing", id="pca-components"),
    ],
)
def test_unknown_layout_names_the_attribute(name, edit, message):
    """An old (or damaged) record missing what the converter reads, or holding a value it does
    not know, is refused with the attribute named: never compiled to another model."""
    est = _record(name)
    edit(est.state)
    with pytest.raises(TimberError, match=message):
        sk.build_module(est, "old.pkl", None)


def _tree_record():
    est, _ = read_file(next(p for p in FILES if p.endswith("dt_clf.pkl")))
    return est


def test_unknown_tree_layout_names_the_field():
    est = _tree_record()
    nodes = est.state["tree_"].state["nodes"]
    names = list(nodes.dtype.names)
    names[names.index("threshold")] = "split_value"
    renamed = nodes.copy()
    renamed.dtype.names = names
    est.state["tree_"].state["nodes"] = renamed
    with pytest.raises(TimberError, match="tree_.nodes has no field 'threshold'"):
        sk.build_module(est, "old.pkl", None)


def test_missing_attribute_is_named():
    est = _tree_record()
    del est.state["n_classes_"]
    with pytest.raises(TimberError, match=r"DecisionTreeClassifier\.n_classes_ is missing"):
        sk.build_module(est, "old.pkl", None)
