"""TreeEnsembleRegressor / TreeEnsembleClassifier / TreeEnsemble (v5) equal ONNX Runtime (one
thread) bit for bit, on adversarial rows (thresholds and their float32/float64 neighbours, NaN,
±inf, ±0) of hand-built models covering every node mode, NaN tracking, post transform,
aggregate function, base-value layout, the binary single-class rules, float and double inputs.

The variant matrix runs the verified IR in the interpreter with the C library's exp/log (what
`timber.compile` calls with math="libm"); a few models are also compiled with the JIT."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import timber
from ir.interpreter import run
from tests.rows import adversarial_rows
from timber.frontends.onnx import load

from .onnxgen import ort_run, tree_model, tree_v5_model

POSTS = ["NONE", "LOGISTIC", "SOFTMAX", "SOFTMAX_ZERO", "PROBIT"]


def _rows(module, dtype) -> np.ndarray:
    X = adversarial_rows(module, n_mixed=48)
    rng = np.random.default_rng(1)
    with np.errstate(over="ignore"):
        return np.concatenate([X, rng.normal(size=(32, X.shape[1])) * 2]).astype(dtype)


def _sample(cases, every: int):
    """Every `every`-th case runs by default, the rest under -m slow (the whole matrix)."""
    return [c if i % every == 0 else pytest.param(*c, marks=pytest.mark.slow) for i, c in enumerate(cases)]


def _check(model, output, compiled=False):
    module = load(model)
    dtype = np.float64 if module.lookup("predict").function_type.inputs[0].element.width == 64 else np.float32
    X = _rows(module, dtype)
    want = ort_run(model, X, output)
    got = timber.compile(module).predict(X) if compiled else run(module, X, math="libm")
    if not compiled and got.shape[0] == 1:  # an output made of constants: the interpreter gives one row
        got = np.broadcast_to(got, (len(X),) + got.shape[1:])
    np.testing.assert_array_equal(got.reshape(want.shape), want)
    return module


REGRESSORS = [
    (nt, agg, post, base, multi, dbl)
    for nt, agg, post, base, multi, dbl in itertools.product(
        [1, 3], ["SUM", "AVERAGE", "MIN", "MAX"], POSTS, [None, "one", "full"], [False, True], [False, True]
    )
    if (post in ("NONE", "PROBIT") or nt == 3) and not (nt == 3 and base == "one") and (dbl or agg in ("SUM", "MAX"))
]


@pytest.mark.parametrize("nt,agg,post,base,multi,dbl", _sample(REGRESSORS, 6))
def test_regressor_matches_onnxruntime(nt, agg, post, base, multi, dbl):
    b = None if base is None else ([0.3] if base == "one" else list(np.linspace(-0.5, 0.5, nt)))
    m = tree_model(
        "regressor", seed=nt + len(agg), n_targets=nt, agg=agg, post=post, base=b, multi=multi, double_input=dbl, as_tensor=dbl and multi
    )
    _check(m, "variable")


CLASSIFIERS = [
    (nc, ids, post, base, pos)
    for nc, ids, post, base, pos in itertools.product([2, 3], ["all", "0", "1"], POSTS, [None, "one", "two", "full"], [False, True])
    if not (nc == 3 and ids != "all") and (pos or post in ("LOGISTIC", "NONE")) and not (nc == 3 and base in ("one", "two"))
]


@pytest.mark.parametrize("nc,ids,post,base,pos", _sample(CLASSIFIERS, 5))
def test_classifier_matches_onnxruntime(nc, ids, post, base, pos):
    b = {None: None, "one": [0.3], "two": [0.2, -0.4], "full": list(np.linspace(-0.5, 0.5, nc))}[base]
    class_ids = None if ids == "all" else [int(ids)]
    multi = ids == "all"  # every class named at every leaf, as converters write them
    m = tree_model("classifier", seed=nc, n_targets=nc, post=post, base=b, multi=multi, class_ids=class_ids, positive=pos)
    try:
        _check(m, "probabilities")
    except timber.TimberError as e:
        # refused with a clear error: per-row class coverage of a binary classifier, and PROBIT
        # on one binary score (ONNX Runtime leaves the second column uninitialised)
        assert "per-row class coverage" in str(e) or "PROBIT on a binary classifier" in str(e), str(e)


def test_three_classes_with_per_row_coverage_match_onnxruntime():
    m = tree_model("classifier", seed=5, n_targets=3, post="SOFTMAX", base=[0.1, -0.2, 0.3])  # one random class per leaf
    _check(m, "probabilities")


V5 = [(a, p, d, m) for a in range(4) for p in range(5) for d in (False, True) for m in (True, False) if p in (0, 4) or a == 1]


@pytest.mark.parametrize("agg,post,double,member", _sample(V5, 4))
def test_tree_ensemble_v5_matches_onnxruntime(agg, post, double, member):
    _check(tree_v5_model(seed=agg + 4 * post, n_targets=2, agg=agg, post=post, double=double, member=member), "Y")


@pytest.mark.parametrize(
    "model,output",
    [
        pytest.param(
            tree_model("regressor", seed=3, n_targets=3, agg="MAX", post="SOFTMAX", base=[0.1, 0.2, 0.3], multi=True, double_input=True),
            "variable",
            marks=pytest.mark.slow,  # one ensemble per tree: 5 s to compile
        ),
        (tree_model("classifier", seed=4, n_targets=2, post="LOGISTIC", base=[0.5], class_ids=[0]), "probabilities"),
        (tree_model("classifier", seed=6, n_targets=4, post="PROBIT", multi=True, positive=True), "probabilities"),
        pytest.param(tree_v5_model(seed=7, n_targets=3, agg=1, post=3, member=True), "Y", marks=pytest.mark.slow),
    ],
    ids=["reg-max-softmax-f64", "binary-logistic", "4class-probit", "v5-member-softmax0"],
)
def test_compiled_matches_onnxruntime(model, output):
    _check(model, output, compiled=True)


def test_ir_names_the_onnx_node():
    module = load(tree_model("regressor", seed=1), source_name="m.onnx")
    ens = next(op for op in module.walk() if op.name == "tree.ensemble")
    assert str(ens.location) == "m.onnx: node 0 'TreeEnsembleRegressor' (ai.onnx.ml.TreeEnsembleRegressor)"


def test_float_input_with_double_thresholds_is_refused_like_onnxruntime():
    m = tree_model("regressor", seed=2, as_tensor=True)
    with pytest.raises(timber.TimberError, match=r"node 0 .*'\*_as_tensor' attributes on a float input"):
        load(m)


@pytest.mark.parametrize(
    "nc,ids,post,base,pos",
    [
        (2, "0", "LOGISTIC", "one", False),
        (2, "1", "NONE", "two", True),
        (2, "0", "SOFTMAX", None, True),
        (1, "all", "NONE", "one", False),
    ],
)
def test_label_output_on_request_matches_onnxruntime(nc, ids, post, base, pos):
    """The label output (int64 in ONNX Runtime) as f64 numbers: ONNX Runtime's binary rules
    (`pos > 0.5` for one class id with positive weights, `> 0` otherwise)."""
    b = {None: None, "one": [0.3], "two": [0.2, -0.4]}[base]
    m = tree_model(
        "classifier",
        seed=1,
        n_targets=nc,
        post=post,
        base=b,
        multi=ids == "all",
        class_ids=None if ids == "all" else [int(ids)],
        positive=pos,
    )
    for a in m.graph.node[0].attribute:
        if a.name == "classlabels_int64s":
            a.ints[:] = [10 * (i + 1) for i in range(nc)]
    module = load(m, output="label")
    X = _rows(module, np.float32)
    want = ort_run(m, X, "label").astype(np.float64)
    got = run(module, X, math="libm")
    np.testing.assert_array_equal(np.broadcast_to(got, (len(X),) + got.shape[1:]).reshape(want.shape), want)
