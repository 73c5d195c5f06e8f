"""Every ONNX file of the shared corpus (`../shared/corpus/`): the ones whose ops Timber compiles
equal ONNX Runtime (one thread) on adversarial and random rows; the others fail with an error
naming the node, its op and domain.

Tree ensembles are bit-exact.  Linear models are not: ONNX Runtime computes `X · Wᵀ + b` with
MLAS's blocked SGEMM (fused multiply-adds on AVX2/AVX-512) and its LOGISTIC with MLAS's
polynomial logistic, while Timber adds the products in feature order without FMA and uses
`ComputeLogistic` (exp from the C library); the difference is rounding, bounded below."""

from __future__ import annotations

import glob
import os

import numpy as np
import onnx
import pytest

import timber
from ir.interpreter import run
from tests.rows import adversarial_rows
from timber.frontends.onnx import load

from .onnxgen import ort_run

CORPUS = os.path.join(os.path.dirname(__file__), "..", "..", "..", "..", "shared", "corpus")
FILES = sorted(glob.glob(os.path.join(CORPUS, "**", "*.onnx"), recursive=True))
UNSUPPORTED: dict[str, str] = {}  # file name -> the error it must raise
OPTIONS = {"treecl.onnx": {"n_features": 20}, "treecl2.onnx": {"n_features": 20}, "treecl3.onnx": {"n_features": 10}}

pytestmark = pytest.mark.skipif(not FILES, reason="shared corpus not present")


def _ops(model) -> set[str]:
    return {n.op_type for n in model.graph.node}


def _rbf_svm(model) -> bool:
    """An RBF SVMClassifier: exact (distances and pair sums follow ONNX Runtime; SVMRegressor ends in SGEMM)."""
    for n in model.graph.node:
        for a in n.attribute:
            if n.op_type == "SVMClassifier" and a.name == "kernel_type" and a.s == b"RBF":
                return True
    return False


def _ref(model, X, output):
    """ONNX Runtime's output; models whose batch dimension is fixed run row by row."""
    dims = model.graph.input[0].type.tensor_type.shape.dim
    fixed = dims[0].dim_value if dims and dims[0].HasField("dim_value") else 0
    if fixed:
        return np.concatenate([ort_run(model, np.repeat(X[k : k + 1], fixed, 0), output)[:1] for k in range(len(X))])
    return ort_run(model, X, output)


# 82 linear-kernel terms of magnitude up to 4e3 cancel to outputs near 1: float32 rounding of the
# terms (in SGEMM's order vs in feature order) shows at 1e-4 of the output
LOOSE = {"SklearnRegSVRLinear-Dec3.model.onnx": 2e-4}
BIG = ("bosch_xgb_model_save.onnx", "abalone_onnx_model_save.onnx")  # 968 features / 1000 trees: 6-7 s each


@pytest.mark.parametrize(
    "path",
    [pytest.param(p, marks=pytest.mark.slow) if os.path.basename(p) in BIG else p for p in FILES],
    ids=[os.path.relpath(p, CORPUS) for p in FILES],
)
def test_corpus_file(path):
    model = onnx.load(path)
    opts = OPTIONS.get(os.path.basename(path), {})
    refused = UNSUPPORTED.get(os.path.basename(path))
    if refused:
        with pytest.raises(timber.TimberError, match=refused):
            load(path, **opts)
        return
    module = load(path, **opts)
    output = module.attributes["timber.output"].value
    dtype = np.float64 if module.lookup("predict").function_type.inputs[0].element.width == 64 else np.float32
    X = adversarial_rows(module, n_mixed=32)
    rng = np.random.default_rng(0)
    with np.errstate(over="ignore"):
        X = np.concatenate([X, rng.normal(size=(64, X.shape[1])) * 3]).astype(dtype)
    if len(X) > 160:  # the interpreter walks every tree in numpy: keep big forests affordable
        X = X[np.sort(rng.choice(len(X), 160, replace=False))]
    want = _ref(model, X, output)
    got = run(module, X, math="libm")
    got = got.reshape(want.shape)
    if _ops(model) & {"TreeEnsembleRegressor", "TreeEnsembleClassifier", "TreeEnsemble"} or _rbf_svm(model):
        np.testing.assert_array_equal(got, want)
        return
    finite = np.isfinite(X).all(axis=1) & (np.abs(X) < 100).all(axis=1)  # magnitudes of real data
    np.testing.assert_array_equal(np.isnan(got[~finite]), np.isnan(want[~finite]))
    # rounding of float32 dot products (SGEMM with FMA vs in order without) and of MLAS's
    # logistic/tanh: a few ulp of the output scale (sums may cancel to small values)
    scale = max(float(np.max(np.abs(want[finite]))), 1.0)
    assert np.max(np.abs(got[finite] - want[finite])) / scale < LOOSE.get(os.path.basename(path), 4e-6)


@pytest.mark.parametrize(
    "name", ["sklearn-onnx/datasets/treecl.onnx", pytest.param("treebeard/onnx_models/higgs_xgb_model_save.onnx", marks=pytest.mark.slow)]
)
def test_compiled_corpus_model_matches_onnxruntime(name):
    path = os.path.join(CORPUS, name)
    module = load(path, **OPTIONS.get(os.path.basename(path), {}))
    model = onnx.load(path)
    with np.errstate(over="ignore"):
        X = adversarial_rows(module, n_mixed=64).astype(np.float32)[:2000]
    want = ort_run(model, X, module.attributes["timber.output"].value)
    np.testing.assert_array_equal(timber.compile(module).predict(X).reshape(want.shape), want)


def test_backend_test_case_expected_outputs():
    """The ONNX backend test cases carry their own inputs and expected outputs."""
    from onnx import numpy_helper

    for case in ("test_ai_onnx_ml_tree_ensemble_set_membership", "test_ai_onnx_ml_tree_ensemble_single_tree"):
        d = os.path.join(CORPUS, "onnx", case)
        x = numpy_helper.to_array(onnx.load_tensor(os.path.join(d, "test_data_set_0", "input_0.pb")))
        y = numpy_helper.to_array(onnx.load_tensor(os.path.join(d, "test_data_set_0", "output_0.pb")))
        got = run(load(os.path.join(d, "model.onnx")), x, math="libm")
        np.testing.assert_array_equal(got.reshape(y.shape), y)
