"""scikit-learn's libsvm models compiled by Timber are libsvm's arithmetic: decision functions
(ovo and ovr), libsvm's vote, SVR/NuSVR/OneClassSVM values are bit-exact for the linear, poly,
rbf and sigmoid kernels (the interpreter with the C library's exp/tanh, as the JIT calls them)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

pytest.importorskip("sklearn")
from sklearn import svm  # noqa: E402
from sklearn.datasets import make_classification  # noqa: E402

from ir.diagnostics import TimberError  # noqa: E402

from ._partb import compile_est, finite_rows, interp, module_of  # noqa: E402

X, y = make_classification(160, 5, n_informative=4, n_redundant=0, n_classes=3, random_state=0)
XB, YB = make_classification(160, 5, random_state=0)
ROWS = finite_rows(5, n=120)

CASES = [
    ("SVC-rbf-ovr", lambda: svm.SVC(), X, y + 2),
    ("SVC-poly-ovo", lambda: svm.SVC(kernel="poly", degree=3, decision_function_shape="ovo"), X, y),
    ("SVC-sigmoid-binary", lambda: svm.SVC(kernel="sigmoid", gamma=0.05), XB, YB),
    ("SVC-rbf-breakties", lambda: svm.SVC(break_ties=True), X, y),
    ("NuSVC-linear", lambda: svm.NuSVC(kernel="linear"), X, y),
    ("SVR-rbf", lambda: svm.SVR(gamma=0.3), X, y * 1.5),
    ("NuSVR-poly", lambda: svm.NuSVR(kernel="poly", degree=2), X, y * 1.0),
    ("OneClassSVM", lambda: svm.OneClassSVM(gamma=0.1), X, None),
]


@pytest.mark.parametrize("name,make,X_,y_", CASES, ids=[c[0] for c in CASES])
def test_bit_exact(name, make, X_, y_):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est = make().fit(X_, y_)
    for method in ("decision_function", "predict", "score_samples"):
        if not hasattr(est, method):
            continue
        np.testing.assert_array_equal(interp(est, method, ROWS), getattr(est, method)(ROWS), err_msg=method)


@pytest.fixture(scope="module")
def compiled_rbf():
    est = svm.SVC(gamma=0.2).fit(X[:40], y[:40])  # few support vectors: the JIT's compile time grows with them
    return est, compile_est(est)


def test_compiled_rbf_svc_is_libsvm_bit_for_bit(compiled_rbf):
    est, model = compiled_rbf
    np.testing.assert_array_equal(model.predict(ROWS), est.decision_function(ROWS))
    np.testing.assert_array_equal(model.predict(ROWS[3]).reshape(-1), est.decision_function(ROWS[3:4]).reshape(-1))


def test_probability_outputs_are_refused_with_a_reason():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est = svm.SVC(probability=True, random_state=0).fit(XB, YB)
    with pytest.raises(TimberError, match="pairwise coupling"):
        module_of(est)
    np.testing.assert_array_equal(interp(est, "decision_function", ROWS), est.decision_function(ROWS))
    with pytest.raises(TimberError, match="kernel 'precomputed' is not supported"):
        module_of(svm.SVC(kernel="precomputed").fit(XB @ XB.T, YB))
