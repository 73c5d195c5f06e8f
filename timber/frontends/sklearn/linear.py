"""scikit-learn linear models: regressors, GLMs, linear classifiers and their probability outputs.

Every model here scores `X @ coef_.T + intercept_`.  scikit-learn computes the product with BLAS
(dgemv/dgemm), whose summation order depends on the BLAS build and the CPU, so Timber cannot
reproduce its bits: the product is a `linear.affine` (left-to-right sum in f64) and the
intercept is added after it, as scikit-learn adds it.  The two differ by rounding only: at most
about N·2⁻⁵³·Σ|x_j·w_j| for N features (measured in tests/frontends/sklearn/test_linear.py).

What follows the scores is exact: `expit` is scipy's `1 / (1 + exp(-x))` (`math.sigmoid`,
the C library's exp with math="libm", which is the exp numpy calls), `softmax` is
`sklearn.utils.extmath.softmax` (row max, exp, numpy's pairwise row sum, divide), and the
one-vs-rest normalisation and `modified_huber` clipping are written out step by step as
scikit-learn writes them.  The helpers at the top are shared with the other sklearn converters
(neural networks, naive Bayes, SVMs).
"""

from __future__ import annotations

import numpy as np

from ir.core import Value
from ir.dialects import arith, linear, math
from ir.types import TensorType, f64

from .registry import Emit, Obj, converts, numpy_sum

# ----- shared helpers (rank-1 f64 tensors) --------------------------------------------------------


def width(v: Value) -> int:
    return v.type.shape[0]


def binop(emit: Emit, cls, a: Value, b: Value, name: str | None = None) -> Value:
    """`a <op> b` elementwise; a one-element operand is broadcast to the other's width.  With
    float32 rows the result is rounded to float32 where numpy's promotion makes it float32."""
    if width(a) != width(b):
        if width(a) == 1:
            a = bcast(emit, a, width(b))
        elif width(b) == 1:
            b = bcast(emit, b, width(a))
    if (a in emit.f32 and b in emit.weak) or (b in emit.f32 and a in emit.weak):
        # NEP 50: a Python scalar beside a float32 array is cast to float32 before the operation
        a, b = (emit.round32(v) if v in emit.weak else v for v in (a, b))
    return emit.round_if32(emit.op(cls.build(a, b, name=name)), a, b)


def _keep32(emit: Emit, src: Value, out: Value) -> Value:
    """`out` (a copy or part of `src`'s values) is float32 where `src` is, weak where it is."""
    if src in emit.f32:
        emit.f32.add(out)
    elif src in emit.weak:
        emit.weak.add(out)
    return out


def bcast(emit: Emit, a: Value, n: int, name: str | None = None) -> Value:
    if width(a) == n:
        return a
    return _keep32(emit, a, emit.op(arith.BroadcastOp.build(a, TensorType((n,), a.type.element), name=name)))


def extract(emit: Emit, a: Value, k: int, name: str | None = None) -> Value:
    if width(a) == 1 and k == 0:
        return a
    return _keep32(emit, a, emit.op(arith.ExtractOp.build(a, k, name=name)))


def concat(emit: Emit, parts: list[Value], name: str | None = None) -> Value:
    """The rank-1 tensors of `parts` joined in order (`arith.concat`)."""
    if len(parts) == 1:
        return parts[0]
    rowwise = next((p for p in parts if not _is_constant(p)), None)
    if rowwise is not None and any(_is_constant(p) for p in parts):
        # the interpreter keeps a constant as one row and arith.concat does not broadcast it:
        # give constants the row count through a select whose two sides are the constant
        probe = extract(emit, rowwise, 0)
        rows = emit.op(arith.CmpFOp.build("uno", probe, probe))
        parts = [_keep32(emit, p, _per_row(emit, rows, p)) if _is_constant(p) else p for p in parts]
    out = emit.op(arith.ConcatOp.build(parts, name=name))
    if all(p in emit.f32 for p in parts):  # np.hstack: float32 when every part is
        emit.f32.add(out)
    return out


def _is_constant(v: Value) -> bool:
    return isinstance(getattr(v, "op", None), arith.ConstantOp)


def _per_row(emit: Emit, rows: Value, c: Value) -> Value:
    return emit.op(arith.SelectOp.build(bcast(emit, rows, width(c)), c, c))


def unary(emit: Emit, cls, a: Value, name: str | None = None) -> Value:
    """`cls(a)`; on float32 values numpy's float32 function, here the f64 one rounded to float32
    (exact for sqrt and negation; within an ulp of numpy's SIMD float32 exp/log/tanh)."""
    return emit.round_if32(emit.op(cls.build(a, name=name)), a)


def dot(emit: Emit, x: Value, weights: np.ndarray, name: str | None = None) -> Value:
    """`weights @ x` (weights K×N) summed left to right in f64 from 0.0: scikit-learn's BLAS
    product up to rounding (see the module docstring).  More than 100 weights (an MLP layer, a
    linear model on 50 features) become a `kernel.gram` with the linear kernel — the same sums, as
    a loop over the outputs, where a `linear.affine` keeps every output's accumulator live at once
    and unrolls up to 64 inputs (minutes of JIT compile for a 50x100 layer; LogisticRegression on
    50 features: 1.4x faster as a gram)."""
    w32 = np.asarray(weights).dtype == np.float32
    w = np.ascontiguousarray(np.asarray(weights, np.float64))
    if x.type.element == f64 and w.size > 100:
        from ir.dialects.kernel import GramOp

        d = emit.op(GramOp.build(x, w, "linear", 0.0, name=name))
    else:
        d = emit.op(linear.AffineOp.build(x, w, np.zeros(w.shape[0]), f64, missing="propagate", name=name))
    # float32 rows and float32 weights: scikit-learn's product is a float32 sgemm (its own order
    # and rounding); here the f64 sum rounded once to float32 (within sgemm's rounding of it)
    return emit.round32(d) if w32 and emit.is32(x) else d


def affine(emit: Emit, x: Value, weights: np.ndarray, bias, name: str | None = None) -> Value:
    """`weights @ x + bias`, the bias added after the product (as `X @ coef_.T + intercept_`);
    float32 weights and bias stay float32 (numpy's promotion with float32 rows)."""
    w = np.atleast_2d(np.asarray(weights))
    b = np.asarray(bias)
    b = np.broadcast_to(b.reshape(-1), (w.shape[0],)).astype(b.dtype if b.dtype == np.float32 else np.float64)
    d = dot(emit, x, w, name=name if not b.any() else "dot")
    if not b.any():
        return d  # scikit-learn adds a zero intercept too: x + 0.0 only turns -0.0 into +0.0
    return binop(emit, arith.AddFOp, d, emit.const(b, "intercept"), name=name)


def np_row_sum(emit: Emit, a: Value, name: str | None = None) -> Value:
    """`a.sum()` over a row as numpy sums it (`registry.numpy_sum`)."""
    s = numpy_sum(emit, [extract(emit, a, k) for k in range(width(a))])
    if name:
        s.name_hint = name
    return s


def select(emit: Emit, cond: Value, a: Value, b: Value, name: str | None = None) -> Value:
    """`where(cond, a, b)`; float32 when both sides are float32 (or one is weak)."""
    return emit.round_if32(emit.op(arith.SelectOp.build(cond, a, b, name=name)), a, b)


def row_max(emit: Emit, v: Value, name: str = "max") -> Value:
    """`v.max()` over a row (the first of equal maxima; NaN only where numpy's max would not be
    NaN: the selects skip it)."""
    xs = [extract(emit, v, k) for k in range(width(v))]
    m = xs[0]
    for e in xs[1:]:
        m = select(emit, emit.op(arith.CmpFOp.build("ogt", e, m)), e, m, name=name)
    return m


def softmax(emit: Emit, d: Value, name: str = "proba") -> Value:
    """`sklearn.utils.extmath.softmax` of one row: subtract the row max, exp, divide by the sum
    (each step in float32 on float32 scores)."""
    k = width(d)
    if k < 8 and not emit.is32(d):
        # math.softmax is this very computation when numpy's sum runs left to right (k < 8)
        return emit.op(math.SoftmaxOp.build(d, name=name))
    m = row_max(emit, d)
    e = unary(emit, math.ExpOp, binop(emit, arith.SubFOp, d, m, name="shifted"), name="exp")
    return binop(emit, arith.DivFOp, e, np_row_sum(emit, e, "sum"), name=name)


def normalize_rows(emit: Emit, p: Value, name: str = "proba") -> Value:
    """scikit-learn's one-vs-rest normalisation: `p / p.sum()`, a row summing to 0 becoming
    uniform (every entry 1, divided by the number of classes)."""
    k = width(p)
    s = np_row_sum(emit, p, "prob_sum")
    zero = emit.op(arith.CmpFOp.build("oeq", s, emit.const([0.0], "zero"), name="all_zero"))
    s = select(emit, zero, emit.const([float(k)], "n_classes"), s, name="prob_sum")
    ones = emit.const([1.0] * k, "ones")
    p = select(emit, bcast(emit, zero, k), ones, p, name="prob")
    return binop(emit, arith.DivFOp, p, s, name=name)


def binary_proba(emit: Emit, p: Value, name: str = "proba") -> Value:
    """`[1 - p, p]` from the positive class's probability."""
    q = binop(emit, arith.SubFOp, emit.const([1.0], "one"), p, name="neg_proba")
    return concat(emit, [q, p], name=name)


def expit(emit: Emit, d: Value, name: str = "expit") -> Value:
    """scipy's `expit`: `1 / (1 + exp(-x))` (`math.sigmoid`); on float32 values scipy's float
    loop, `1.0f / (1.0f + expf(-x))`, each step rounded to float32 (expf: exp rounded once)."""
    if not emit.is32(d):
        return unary(emit, math.SigmoidOp, d, name=name)
    e = unary(emit, math.ExpOp, unary(emit, arith.NegFOp, d))
    return binop(emit, arith.DivFOp, emit.const([1.0], "one"), binop(emit, arith.AddFOp, emit.const([1.0], "one"), e), name=name)


def sqrt(emit: Emit, v: Value, name: str | None = None) -> Value:
    """The IEEE square root (`np.sqrt`), `kernel.sqrt`."""
    from ir.dialects.kernel import SqrtOp

    return unary(emit, SqrtOp, v, name=name)


def log(emit: Emit, p: Value, name: str = "log_proba") -> Value:
    """`np.log` (the C library's log, bit for bit with numpy's)."""
    return unary(emit, math.LogOp, p, name=name)


def coef_intercept(emit: Emit, est: Obj) -> tuple[np.ndarray, np.ndarray]:
    """`coef_` as K×N and `intercept_` as K values (a scalar intercept is broadcast)."""
    coef = est.floats("coef_")  # float32 stays float32 (a model fitted on float32 data)
    if not np.all(np.isfinite(coef)):
        emit.fail(est, "coef_ holds NaN or infinite values")
    if coef.ndim not in (1, 2):
        emit.fail(est, f"coef_ has shape {coef.shape}; expected 1 or 2 dimensions")
    w = np.atleast_2d(coef)
    b = np.asarray(est.attr("intercept_", 0.0))
    b = b.astype(np.float32 if b.dtype == np.float32 else np.float64).reshape(-1)
    if b.size == 1:
        b = np.full(w.shape[0], b[0], b.dtype)
    if b.shape != (w.shape[0],) or not np.all(np.isfinite(b)):
        emit.fail(est, f"intercept_ has shape {b.shape} or non-finite values; expected {w.shape[0]} finite numbers")
    return w, b


def check_features(emit: Emit, est: Obj, x: Value, n: int, what: str = "coef_") -> None:
    if n != width(x):
        emit.fail(est, f"{what} expects {n} features but the input row has {width(x)}")


def scores(emit: Emit, est: Obj, x: Value, name: str = "decision") -> Value:
    """`decision_function`: `X @ coef_.T + intercept_`, one column for a binary classifier."""
    w, b = coef_intercept(emit, est)
    check_features(emit, est, x, w.shape[1])
    return affine(emit, x, w, b, name=name)


# ----- regressors ---------------------------------------------------------------------------------


@converts(
    "LinearRegression",
    "Ridge",
    "RidgeCV",
    "Lasso",
    "LassoCV",
    "ElasticNet",
    "ElasticNetCV",
    "LassoLars",
    "Lars",
    "OrthogonalMatchingPursuit",
    "HuberRegressor",
    "QuantileRegressor",
    "TheilSenRegressor",
    "SGDRegressor",
    "LinearSVR",
    "PassiveAggressiveRegressor",
    "BayesianRidge",
    "ARDRegression",
    kind="regressor",
    methods=("predict",),
)
def linear_regressor(emit: Emit, est: Obj, x: Value, method: str | None) -> Value:
    """`predict = X @ coef_.T + intercept_` (one column per target)."""
    return scores(emit, est, x, name="predict")


def _glm_log_link(emit: Emit, est: Obj) -> bool:
    if est.name in ("PoissonRegressor", "GammaRegressor"):
        return True
    link, power = est.param("link", "auto"), float(est.param("power", 0.0))
    if link not in ("auto", "log", "identity"):
        emit.fail(est, f"unknown link {link!r}; supported: auto, log, identity")
    return link == "log" or (link == "auto" and power > 0)


@converts("PoissonRegressor", "GammaRegressor", "TweedieRegressor", kind="regressor", methods=("predict",))
def glm_regressor(emit: Emit, est: Obj, x: Value, method: str | None) -> Value:
    """`predict = link⁻¹(X @ coef_ + intercept_)`: exp for the log link, identity otherwise."""
    raw = scores(emit, est, x, name="linear_predictor")
    return unary(emit, math.ExpOp, raw, name="predict") if _glm_log_link(emit, est) else raw


# ----- classifiers --------------------------------------------------------------------------------


def classes(est: Obj) -> np.ndarray:
    """`classes_`; RidgeClassifier(CV) pickles of older releases (1.1 to 1.5 at least) keep none:
    there `classes_` was a property returning `_label_binarizer.classes_`, read here instead."""
    lb = est.attr("_label_binarizer", None)
    if not est.has("classes_") and isinstance(lb, Obj) and lb.has("classes_"):
        return np.asarray(lb.attr("classes_"))
    return np.asarray(est.attr("classes_"))


def classifier_scores(emit: Emit, est: Obj, x: Value) -> Value:
    """The decision function, checked against `classes_` (one column for two classes)."""
    k = len(classes(est))
    d = scores(emit, est, x)
    expect = 1 if k == 2 else k
    if width(d) != expect:
        emit.fail(est, f"coef_ has {width(d)} rows for {k} classes (expected {expect})")
    return d


def _ovr_expit_proba(emit: Emit, d: Value) -> Value:
    """`LinearClassifierMixin._predict_proba_lr`: expit, then `[1-p, p]` or OvR-normalised."""
    p = expit(emit, d)
    return binary_proba(emit, p) if width(d) == 1 else normalize_rows(emit, p)


def _logistic_proba(emit: Emit, est: Obj, d: Value) -> Value:
    """LogisticRegression's predict_proba.  scikit-learn ≥ 1.8: expit for two classes, softmax
    beyond.  Pickles of earlier versions keep `multi_class`: one-vs-rest (expit, normalised) for
    'ovr', or for 'auto' with two classes or the liblinear solver; else softmax, of `[-d, d]` for
    two classes."""
    mc = est.param("multi_class", None)
    if mc is None:
        return _ovr_expit_proba(emit, d) if width(d) == 1 else softmax(emit, d)
    if mc not in ("ovr", "multinomial", "auto", "warn", "deprecated"):
        emit.fail(est, f"multi_class={mc!r} is not a value scikit-learn knows")
    n_classes = len(classes(est))
    if mc in ("ovr", "warn") or (mc in ("auto", "deprecated") and (n_classes <= 2 or est.param("solver", "lbfgs") == "liblinear")):
        return _ovr_expit_proba(emit, d)
    if width(d) == 1:
        d = concat(emit, [unary(emit, arith.NegFOp, d), d], name="decision_2d")
    return softmax(emit, d)


def _modified_huber_proba(emit: Emit, d: Value) -> Value:
    """SGD `modified_huber`: `(clip(d, -1, 1) + 1) / 2`, then `[1-p, p]` or normalised (two
    classes: into a float64 array, so in float64 even for float32 scores)."""
    c = binop(emit, arith.MaximumFOp, d, emit.const(np.array([-1.0]) if width(d) == 1 else [-1.0], "minus_one"))
    c = binop(emit, arith.MinimumFOp, c, emit.const([1.0], "one"), name="clipped")
    p = binop(emit, arith.DivFOp, binop(emit, arith.AddFOp, c, emit.const([1.0], "one")), emit.const([2.0], "two"), name="prob")
    return binary_proba(emit, p) if width(d) == 1 else normalize_rows(emit, p)


def _proba_kind(est: Obj) -> str | None:
    """How this classifier's predict_proba is computed, or None when it has none."""
    if est.name == "LogisticRegression" or est.name == "LogisticRegressionCV":
        return "logistic"
    if est.name == "SGDClassifier":
        loss = est.param("loss", "hinge")
        return {"log_loss": "ovr", "log": "ovr", "modified_huber": "modified_huber"}.get(loss)
    return None


def linear_classifier(emit: Emit, est: Obj, x: Value, method: str | None) -> Value:
    kind = _proba_kind(est)
    if method is None:
        method = "predict_proba" if kind else "decision_function"
    if est.name.startswith("RidgeClassifier"):
        lb = est.attr("_label_binarizer", None)
        y_type = lb.state.get("y_type_") if isinstance(lb, Obj) and isinstance(lb.state, dict) else None
        if isinstance(y_type, str) and y_type.startswith("multilabel"):
            emit.fail(est, "multilabel RidgeClassifier is not supported (its predict returns a label matrix)")
    d = classifier_scores(emit, est, x)
    if method == "decision_function":
        return d
    if method == "predict":
        return emit.labels(d, classes(est))
    if kind is None:
        emit.fail(est, f"{method} is not available for this {est.name} (loss {est.param('loss', '?')!r}); use decision_function")
    if kind == "logistic":
        p = _logistic_proba(emit, est, d)
    elif kind == "ovr":
        p = _ovr_expit_proba(emit, d)
    else:
        p = _modified_huber_proba(emit, d)
    if method == "predict_log_proba":
        return log(emit, p)
    return p


_PROBA = ("predict_proba", "predict", "decision_function", "predict_log_proba")
_DECISION = ("decision_function", "predict")
converts("LogisticRegression", "LogisticRegressionCV", "SGDClassifier", kind="classifier", methods=_PROBA)(linear_classifier)
converts(
    "LinearSVC", "RidgeClassifier", "RidgeClassifierCV", "Perceptron", "PassiveAggressiveClassifier", kind="classifier", methods=_DECISION
)(linear_classifier)
