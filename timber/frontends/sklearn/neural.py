"""scikit-learn multi-layer perceptrons: MLPClassifier and MLPRegressor.

`_forward_pass_fast`: per layer `activation @ coefs_[i] + intercepts_[i]` (BLAS in scikit-learn,
a `linear.affine` plus the intercept here: equal within a dot product's rounding per layer), then
the hidden activation — relu `np.maximum(X, 0)` (an `olt` select, which keeps -0.0 and NaN as
numpy does), tanh (the C library's; numpy's own SIMD tanh differs from it by an ulp on some
inputs), logistic (scipy's expit), identity — and the output activation: identity, logistic, or
sklearn's softmax (`neural_network._base.softmax`, the same steps as `extmath.softmax`).
"""

from __future__ import annotations

import numpy as np

from ir.core import Value
from ir.dialects import arith, math

from .linear import affine, binary_proba, expit, log, select, softmax, unary, width
from .registry import Emit, Obj, converts

HIDDEN = ("identity", "logistic", "tanh", "relu")


def _activate(emit: Emit, est: Obj, v: Value, kind: str, name: str) -> Value:
    if kind == "identity":
        return v
    if kind == "logistic":
        return expit(emit, v, name=name)
    if kind == "tanh":
        return unary(emit, math.TanhOp, v, name=name)
    if kind == "relu":
        neg = emit.op(arith.CmpFOp.build("olt", v, emit.const(np.zeros(width(v)), "zero")))
        return select(emit, neg, emit.const([0.0] * width(v), "zero"), v, name=name)
    if kind == "softmax":
        return softmax(emit, v, name=name)
    emit.fail(est, f"activation {kind!r} is not supported; supported: {', '.join(HIDDEN)} (hidden), softmax (output)")


def forward(emit: Emit, est: Obj, x: Value) -> Value:
    coefs, intercepts = est.attr("coefs_"), est.attr("intercepts_")
    if not isinstance(coefs, (list, tuple)) or not isinstance(intercepts, (list, tuple)) or len(coefs) != len(intercepts) or not coefs:
        emit.fail(est, "coefs_ and intercepts_ must be lists of one array per layer")
    hidden, out_kind = est.param("activation", "relu"), est.attr("out_activation_")
    if hidden not in HIDDEN:
        emit.fail(est, f"activation {hidden!r} is not supported; supported: {', '.join(HIDDEN)}")
    a = x
    for i, (w, b) in enumerate(zip(coefs, intercepts)):
        # float32 weights (fitted on float32 data) stay float32: with float32 rows each layer is then
        # a float32 product, a float32 intercept add and a float32 activation, as in scikit-learn
        w, b = (np.asarray(v, np.float32 if np.asarray(v).dtype == np.float32 else np.float64) for v in (w, b))
        b = b.reshape(-1)
        if w.ndim != 2 or w.shape[0] != width(a) or b.shape != (w.shape[1],) or not (np.isfinite(w).all() and np.isfinite(b).all()):
            emit.fail(est, f"layer {i}: coefs_ {w.shape} and intercepts_ {b.shape} do not fit an input of {width(a)}")
        last = i == len(coefs) - 1
        if w.shape[1] > 8 and w.size > 256 and not emit.is32(a):
            # a wide layer: one kernel.gram looping over its units (dot from 0.0, + intercept, the
            # activation inside the loop); linear.affine would keep every unit's sum live at once
            from ir.dialects.kernel import GramOp

            act = None if last else hidden
            a = emit.op(
                GramOp.build(
                    a, np.ascontiguousarray(w.T, np.float64), "linear", 0.0, bias=b.astype(np.float64), activation=act, name=f"layer{i}"
                )
            )
            continue
        a = affine(emit, a, w.T, b, name=f"layer{i}")
        if not last:
            a = _activate(emit, est, a, hidden, f"hidden{i}")
    return _activate(emit, est, a, out_kind, "out")


@converts("MLPRegressor", kind="regressor", methods=("predict",))
def mlp_regressor(emit: Emit, est: Obj, x: Value, method: str | None) -> Value:
    return forward(emit, est, x)


@converts("MLPClassifier", kind="classifier", methods=("predict_proba", "predict", "predict_log_proba"))
def mlp_classifier(emit: Emit, est: Obj, x: Value, method: str | None) -> Value:
    lb = est.attr("_label_binarizer", None)
    y_type = lb.state.get("y_type_") if isinstance(lb, Obj) and isinstance(lb.state, dict) else None
    if y_type not in (None, "binary", "multiclass"):
        emit.fail(est, f"a {y_type} MLPClassifier is not supported (binary and multiclass are)")
    classes = np.asarray(est.attr("classes_"))
    y = forward(emit, est, x)
    method = method or "predict_proba"
    if method == "predict":
        if width(y) == 1:  # LabelBinarizer.inverse_transform: classes_[1] where y > 0.5
            pos = emit.op(arith.CmpFOp.build("ogt", y, emit.const([0.5], "threshold")))
            c = classes.astype(np.float64)
            return emit.op(arith.SelectOp.build(pos, emit.const(c[1:2], "class1"), emit.const(c[:1], "class0"), name="label"))
        return emit.labels(y, classes)
    p = binary_proba(emit, y) if width(y) == 1 else y
    return log(emit, p) if method == "predict_log_proba" else p
