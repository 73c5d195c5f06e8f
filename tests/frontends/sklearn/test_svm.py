"""scikit-learn's libsvm models compiled by Timber are libsvm's arithmetic: decision functions
(ovo and ovr), libsvm's vote, predict_proba / predict_log_proba (Platt scaling per pair, libsvm's
clamp, the pairwise-coupling iteration), SVR/NuSVR/OneClassSVM values are bit-exact for the
linear, poly, rbf and sigmoid kernels (the interpreter with the C library's exp/tanh, as the JIT
calls them).  Bit-exact up to 15 features: from 16 on, scikit-learn's libsvm sums the kernel's dot
product with BLAS ddot, whose blocked order (CPU-specific) Timber does not reproduce."""

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
    ("SVC-rbf-proba", lambda: svm.SVC(probability=True, random_state=0), X, y),
    ("SVC-poly-proba-binary", lambda: svm.SVC(kernel="poly", probability=True, random_state=0), XB, YB),
    ("NuSVC-sigmoid-proba", lambda: svm.NuSVC(kernel="sigmoid", gamma=0.05, probability=True, random_state=0), X, y),
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
    for method in ("decision_function", "predict", "score_samples", "predict_proba", "predict_log_proba"):
        if not hasattr(est, method) or (method.startswith("predict_") and not est.probability):
            continue
        np.testing.assert_array_equal(interp(est, method, ROWS), getattr(est, method)(ROWS), err_msg=method)


@pytest.fixture(scope="module")
def compiled_rbf():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est = svm.SVC(gamma=0.2, probability=True, random_state=0).fit(X, y)
    return est, compile_est(est)


def test_compiled_rbf_svc_proba_is_libsvm_bit_for_bit(compiled_rbf):
    est, model = compiled_rbf
    assert est.support_vectors_.shape[0] > 100  # kernel.gram: one loop, not an unrolled exp per support vector
    np.testing.assert_array_equal(model.predict(ROWS), est.predict_proba(ROWS))
    np.testing.assert_array_equal(model.predict(ROWS[3]).reshape(-1), est.predict_proba(ROWS[3:4]).reshape(-1))


def test_probability_needs_probability_true_and_kernels_are_checked():
    est = svm.SVC().fit(XB, YB)
    with pytest.raises(TimberError, match="needs probability=True"):
        module_of(est, "predict_proba")
    np.testing.assert_array_equal(interp(est, None, ROWS), est.decision_function(ROWS))  # the default without probabilities
    with pytest.raises(TimberError, match="kernel 'precomputed' is not supported"):
        module_of(svm.SVC(kernel="precomputed").fit(XB @ XB.T, YB))
