"""scikit-learn naive Bayes: GaussianNB, MultinomialNB, ComplementNB, BernoulliNB.

The joint log-likelihood is computed as scikit-learn computes it: GaussianNB's per-class
`log(prior) + (-0.5·Σ log(2π·var) - 0.5·Σ (x-θ)²/var)` with numpy's pairwise row sum (so it is
bit-exact), the discrete models' `X @ feature_log_prob_.T + prior` with a `linear.affine` (BLAS in
scikit-learn: equal within a dot product's rounding).  Constants scikit-learn derives from the
fitted arrays at every call (GaussianNB's log-variance sums, BernoulliNB's `log(1 - exp(flp))`)
are computed here once with the same numpy expressions, so they are its bits.
`predict_log_proba = jll - logsumexp(jll)` follows `sklearn.utils._array_api._logsumexp` step by
step (max, count of maxima, exp of the rest, log1p of their sum); `predict_proba` is its exp.
"""

from __future__ import annotations

import numpy as np

from ir.core import Value
from ir.dialects import arith, math

from .linear import affine, bcast, binop, check_features, concat, np_row_sum, row_max, select, unary, width
from .registry import Emit, Obj, converts

METHODS = ("predict_proba", "predict", "predict_log_proba")


def logsumexp(emit: Emit, jll: Value) -> Value:
    """`_logsumexp(jll, axis=1)` of one row (tensor<1xf64>); every step in float32 for a float32
    jll (float32 rows and a GaussianNB fitted on float32 data)."""
    k = width(jll)
    mx = row_max(emit, jll)
    mxk = bcast(emit, mx, k)
    is_max = emit.op(arith.CmpFOp.build("oeq", jll, mxk, name="is_max"))
    rest = select(emit, is_max, emit.const([-np.inf] * k, "minus_inf"), jll, name="others")
    m = np_row_sum(emit, emit.op(arith.SelectOp.build(is_max, emit.const(np.ones(k), "one"), emit.const(np.zeros(k), "zero"))), "n_max")
    if emit.is32(jll):  # the count of maxima is summed in jll's dtype (small integers: exact)
        m = emit.round32(m)
    # shift = max where finite, else 0: |max| < inf  <=>  max - max == 0
    finite = emit.op(arith.CmpFOp.build("oeq", binop(emit, arith.SubFOp, mx, mx), emit.const([0.0], "zero"), name="finite"))
    shift = select(emit, finite, mx, emit.const([0.0], "zero"), name="shift")
    e = unary(emit, math.ExpOp, binop(emit, arith.SubFOp, rest, bcast(emit, shift, k)), name="exp")
    s = np_row_sum(emit, e, "s")
    zero = emit.op(arith.CmpFOp.build("oeq", s, emit.const([0.0], "zero")))
    s = select(emit, zero, s, binop(emit, arith.DivFOp, s, m), name="s")
    out = binop(emit, arith.AddFOp, unary(emit, math.Log1pOp, s), unary(emit, math.LogOp, m))
    return binop(emit, arith.AddFOp, out, mx, name="log_prob_x")


def nb_output(emit: Emit, est: Obj, jll: Value, method: str | None) -> Value:
    classes = np.asarray(est.attr("classes_"))
    if width(jll) != len(classes):
        emit.fail(est, f"{width(jll)} joint log-likelihood columns for {len(classes)} classes")
    method = method or "predict_proba"
    if method == "predict":
        return emit.labels(jll, classes) if width(jll) > 1 else emit.const(classes[:1].astype(np.float64), "label")
    lp = binop(emit, arith.SubFOp, jll, bcast(emit, logsumexp(emit, jll), width(jll)), name="log_proba")
    if method == "predict_log_proba":
        return lp
    return unary(emit, math.ExpOp, lp, name="proba")


@converts("GaussianNB", kind="classifier", methods=METHODS)
def gaussian_nb(emit: Emit, est: Obj, x: Value, method: str | None) -> Value:
    # in the stored precision: scikit-learn takes log(prior) and the log-variance sums in float32
    # for a model fitted on float32 data (and the row terms in the input's precision)
    # scikit-learn < 1.0 named the variances `sigma_` (1.0 and 1.1 kept it as a deprecated alias)
    var_key = "var_" if est.has("var_") or not est.has("sigma_") else "sigma_"
    theta, var = est.floats("theta_", ndim=2), est.floats(var_key, ndim=2)
    prior = est.floats("class_prior_", ndim=1)
    check_features(emit, est, x, theta.shape[1], "theta_")
    if var.shape != theta.shape or prior.shape != (theta.shape[0],):
        emit.fail(est, f"theta_ {theta.shape}, {var_key} {var.shape} and class_prior_ {prior.shape} do not agree")
    cols = []
    for i in range(theta.shape[0]):
        jointi = np.log(prior[i : i + 1])  # arrays: a float32 constant stays float32 (numpy's promotion)
        n_ij = np.asarray([-0.5 * np.sum(np.log(2.0 * np.pi * var[i, :]))])
        d = binop(emit, arith.SubFOp, x, emit.const(theta[i], f"theta{i}"))
        q = binop(emit, arith.DivFOp, binop(emit, arith.MulFOp, d, d), emit.const(var[i], f"var{i}"))
        s = binop(emit, arith.MulFOp, emit.const([0.5], "half"), np_row_sum(emit, q))
        n = binop(emit, arith.SubFOp, emit.const(n_ij, f"log_norm{i}"), s)
        cols.append(binop(emit, arith.AddFOp, emit.const(jointi, f"log_prior{i}"), n, name=f"jll{i}"))
    return nb_output(emit, est, concat(emit, cols, name="jll"), method)


@converts("MultinomialNB", "ComplementNB", "BernoulliNB", kind="classifier", methods=METHODS)
def discrete_nb(emit: Emit, est: Obj, x: Value, method: str | None) -> Value:
    flp = est.array("feature_log_prob_", ndim=2)
    prior = est.array("class_log_prior_", ndim=1)
    check_features(emit, est, x, flp.shape[1], "feature_log_prob_")
    if est.name == "BernoulliNB":
        thr = est.param("binarize", 0.0)
        if thr is not None:
            above = emit.op(arith.CmpFOp.build("ogt", x, emit.const(np.full(width(x), float(thr)), "threshold")))
            x = emit.op(
                arith.SelectOp.build(above, emit.const(np.ones(width(x)), "one"), emit.const(np.zeros(width(x)), "zero"), name="binary")
            )
        neg = np.log(1 - np.exp(flp))
        return nb_output(emit, est, affine(emit, x, flp - neg, prior + neg.sum(axis=1), name="jll"), method)
    if est.name == "ComplementNB" and len(np.asarray(est.attr("classes_"))) != 1:
        return nb_output(emit, est, affine(emit, x, flp, 0.0, name="jll"), method)
    return nb_output(emit, est, affine(emit, x, flp, prior, name="jll"), method)
