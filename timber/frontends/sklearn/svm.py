"""scikit-learn's libsvm models: SVC, NuSVC, SVR, NuSVR, OneClassSVM (dense, fitted with a
built-in kernel).

libsvm's dense prediction, step by step: the kernel of the row with every support vector, one
`kernel.gram` loop (`rbf`: `exp(-gamma·Σ_j (x_j - sv_j)²)`, the sum left to right; `linear`:
`Σ x_j·sv_j` from 0.0; `poly`: libsvm's `powi` (square and multiply) of `gamma·dot + coef0`;
`sigmoid`: `tanh(gamma·dot + coef0)`; exp/tanh inside the loop, so compile time does not grow
with the support vectors), then per class pair `Σ coef·k` over the first class's support vectors
then the second's, minus rho — one affine whose weights are zero outside the pair's two blocks
(adding +0.0 leaves a sum unchanged).  With the C library's exp/tanh (math="libm", the JIT's
default) this is libsvm's arithmetic up to 15 features; from 16 on scikit-learn's libsvm takes the
dot products (and the RBF's squared differences) with BLAS ddot, whose blocked, CPU-specific order
Timber does not reproduce (measured: ~1e-14 on decision values with 50 features).
`decision_function` then follows scikit-learn (sign flip for two classes, `_ovr_decision_function`
for decision_function_shape='ovr'); `predict` is libsvm's vote (first class with most votes).
`predict_proba` is libsvm's `svm_predict_probability`: Platt's `sigmoid_predict` per pair, clamped
with libsvm's own min/max to [1e-7, 1 - 1e-7], then `multiclass_probability` (`kernel.couple`,
the pairwise-coupling iteration, which scikit-learn's libsvm runs for two classes too);
`predict_log_proba` is its log.
"""

from __future__ import annotations

import numpy as np

from ir.core import Value
from ir.dialects import arith, math

from .linear import binop, concat, dot, extract, unary, width
from .registry import Emit, Obj, converts

KERNELS = ("linear", "poly", "rbf", "sigmoid")


def kernel_values(emit: Emit, est: Obj, x: Value) -> Value:
    """k(x, sv_i) for every support vector i, as libsvm computes it."""
    from ir.dialects.kernel import GramOp

    kind = est.param("kernel", "rbf")
    if kind not in KERNELS:
        emit.fail(
            est,
            f"kernel {kind!r} is not supported (a callable or precomputed kernel needs the training data); supported: {', '.join(KERNELS)}",
        )
    sv = est.array("support_vectors_", ndim=2, finite=True)
    if sv.shape[1] != width(x):
        emit.fail(est, f"support_vectors_ have {sv.shape[1]} features but the input row has {width(x)}")
    if sv.shape[0] == 0:
        emit.fail(est, "has no support vectors")
    gamma = float(est.attr("_gamma", est.param("gamma", 0.0) if not isinstance(est.param("gamma", 0.0), str) else 0.0))
    degree = int(est.param("degree", 3))
    if kind == "poly" and not 0 <= degree <= 64:
        emit.fail(est, f"degree {degree} is not supported (0..64)")
    # one loop over the support vectors with the kernel's formula inside (`kernel.gram`): compile
    # time no longer grows with an unrolled exp/tanh per support vector
    return emit.op(
        GramOp.build(x, np.ascontiguousarray(sv, np.float64), kind, gamma, float(est.param("coef0", 0.0)), degree, name="kernel")
    )


def pair_decisions(emit: Emit, est: Obj, x: Value) -> tuple[Value, int]:
    """libsvm's decision values (one per class pair i < j, in libsvm's order), and the class count."""
    coef = est.array("_dual_coef_", ndim=2, finite=True)
    rho_neg = est.array("_intercept_").reshape(-1)  # scikit-learn keeps -rho
    nsv = est.array("_n_support", dtype=np.int64).reshape(-1) if est.has("_n_support") else est.array("n_support_", dtype=np.int64)
    kv = kernel_values(emit, est, x)
    n = width(kv)
    if coef.shape[1] != n:
        emit.fail(est, f"_dual_coef_ has {coef.shape[1]} columns for {n} support vectors")
    if est.name in ("SVR", "NuSVR", "OneClassSVM"):
        s = dot(emit, kv, coef[:1], name="sum")
        return binop(emit, arith.SubFOp, s, emit.const(-rho_neg[:1], "rho"), name="decision"), 1
    k = len(nsv)
    if nsv.sum() != n or coef.shape[0] != k - 1 or len(rho_neg) != k * (k - 1) // 2:
        emit.fail(est, f"n_support_ {list(nsv)}, _dual_coef_ {coef.shape} and _intercept_ {rho_neg.shape} do not agree")
    start = np.concatenate([[0], np.cumsum(nsv)[:-1]])
    rows = []
    for i in range(k):
        for j in range(i + 1, k):
            w = np.zeros(n)
            w[start[i] : start[i] + nsv[i]] = coef[j - 1, start[i] : start[i] + nsv[i]]
            w[start[j] : start[j] + nsv[j]] = coef[i, start[j] : start[j] + nsv[j]]
            rows.append(w)
    s = dot(emit, kv, np.array(rows), name="sum")
    return binop(emit, arith.SubFOp, s, emit.const(-rho_neg, "rho"), name="dec_values"), k


def ovr_decision(emit: Emit, dec: Value, k: int) -> Value:
    """`_ovr_decision_function(dec < 0, -dec, k)`: votes plus confidences squashed to (-1/3, 1/3)."""
    zero, one = emit.const([0.0], "zero"), emit.const([1.0], "one")
    votes = [emit.const([0.0], "zero") for _ in range(k)]
    conf = [emit.const([0.0], "zero") for _ in range(k)]
    p = 0
    for i in range(k):
        for j in range(i + 1, k):
            d = extract(emit, dec, p)
            c = unary(emit, arith.NegFOp, d)
            conf[i] = binop(emit, arith.SubFOp, conf[i], c)
            conf[j] = binop(emit, arith.AddFOp, conf[j], c)
            neg = emit.op(arith.CmpFOp.build("olt", d, zero))
            votes[i] = binop(emit, arith.AddFOp, votes[i], emit.op(arith.SelectOp.build(neg, zero, one)))
            votes[j] = binop(emit, arith.AddFOp, votes[j], emit.op(arith.SelectOp.build(neg, one, zero)))
            p += 1
    from .preprocess import fabs

    s = concat(emit, conf, name="sum_of_confidences")
    three = emit.const(np.full(k, 3.0), "three")
    squashed = binop(
        emit, arith.DivFOp, s, binop(emit, arith.MulFOp, three, binop(emit, arith.AddFOp, fabs(emit, s), emit.const(np.ones(k), "one")))
    )
    return binop(emit, arith.AddFOp, concat(emit, votes, name="votes"), squashed, name="decision")


def vote_labels(emit: Emit, dec: Value, k: int, classes) -> Value:
    """libsvm's predict: a vote per pair (`dec > 0` for the first class), the first class with the most votes."""
    zero, one = emit.const([0.0], "zero"), emit.const([1.0], "one")
    votes = [emit.const([0.0], "zero") for _ in range(k)]
    p = 0
    for i in range(k):
        for j in range(i + 1, k):
            pos = emit.op(arith.CmpFOp.build("ogt", extract(emit, dec, p), zero))
            votes[i] = binop(emit, arith.AddFOp, votes[i], emit.op(arith.SelectOp.build(pos, one, zero)))
            votes[j] = binop(emit, arith.AddFOp, votes[j], emit.op(arith.SelectOp.build(pos, zero, one)))
            p += 1
    return emit.labels(concat(emit, votes, name="votes"), classes)


def _platt(emit: Emit, dec: Value, a: np.ndarray, b: np.ndarray) -> Value:
    """libsvm's sigmoid_predict(dec, A, B) per class pair, clipped by libsvm's own templates
    `min(max(p, 1e-7), 1 - 1e-7)` with `max(x, y) = x > y ? x : y` (a NaN becomes 1e-7)."""
    n = len(a)
    f = binop(emit, arith.AddFOp, binop(emit, arith.MulFOp, dec, emit.const(a, "probA")), emit.const(b, "probB"), name="fApB")
    one = emit.const(np.ones(n), "one")
    e_neg = unary(emit, math.ExpOp, unary(emit, arith.NegFOp, f))
    pos_branch = binop(emit, arith.DivFOp, e_neg, binop(emit, arith.AddFOp, one, e_neg))
    neg_branch = binop(emit, arith.DivFOp, one, binop(emit, arith.AddFOp, one, unary(emit, math.ExpOp, f)))
    ge = emit.op(arith.CmpFOp.build("oge", f, emit.const(np.zeros(n), "zero")))
    p = emit.op(arith.SelectOp.build(ge, pos_branch, neg_branch, name="platt"))
    lo, hi = emit.const(np.full(n, 1e-7), "min_prob"), emit.const(np.full(n, 1 - 1e-7), "max_prob")
    p = emit.op(arith.SelectOp.build(emit.op(arith.CmpFOp.build("ogt", p, lo)), p, lo))
    return emit.op(arith.SelectOp.build(emit.op(arith.CmpFOp.build("olt", p, hi)), p, hi, name="pairwise_prob"))


def svc(emit: Emit, est: Obj, x: Value, method: str | None) -> Value:
    classes = np.asarray(est.attr("classes_"))
    # Platt's parameters: `_probA`/`_probB` (scikit-learn >= 0.23), `probA_`/`probB_` before; a
    # probability=True model holding neither is a layout this front-end does not know, never a
    # model silently without predict_proba.  The default probability="deprecated" of newer releases
    # (1.9) means none, as False does.
    probability = est.param("probability", False)
    wants_proba = not isinstance(probability, str) and bool(probability)
    prob_key = "_probA" if est.has("_probA") else "probA_"
    prob_a = est.attr(prob_key, None)
    if wants_proba and prob_a is None:
        emit.fail(est, "_probA (or probA_) is missing but probability=True; this layout cannot be compiled")
    has_proba = wants_proba and np.asarray(prob_a).size > 0
    method = method or ("predict_proba" if has_proba else "decision_function")
    dec, k = pair_decisions(emit, est, x)
    if k != len(classes):
        emit.fail(est, f"n_support_ has {k} classes, classes_ {len(classes)}")
    if method == "decision_function":
        if k == 2:
            return unary(emit, arith.NegFOp, dec, name="decision")
        return ovr_decision(emit, dec, k) if est.param("decision_function_shape", "ovr") == "ovr" else dec
    if method == "predict":
        if est.param("break_ties", False) and est.param("decision_function_shape", "ovr") == "ovr" and k > 2:
            return emit.labels(ovr_decision(emit, dec, k), classes)
        return vote_labels(emit, dec, k, classes)
    if not has_proba:
        emit.fail(est, f"{method} needs probability=True at fit time; use decision_function")
    prob_b = np.asarray(est.attr("_probB" if prob_key == "_probA" else "probB_"), np.float64).reshape(-1)
    prob_a = np.asarray(prob_a, np.float64).reshape(-1)
    n_pairs = k * (k - 1) // 2
    if prob_a.shape != (n_pairs,) or prob_b.shape != (n_pairs,):
        emit.fail(est, f"probA_/probB_ have {prob_a.size}/{prob_b.size} values for {n_pairs} class pairs")
    # libsvm's svm_predict_probability: Platt's sigmoid per pair, clamped to [1e-7, 1 - 1e-7], then
    # multiclass_probability (scikit-learn's libsvm runs it for two classes too)
    r = _platt(emit, dec, prob_a, prob_b)
    from ir.dialects.kernel import CoupleOp

    p = emit.op(CoupleOp.build(r, k, name="proba"))
    if method == "predict_log_proba":
        return unary(emit, math.LogOp, p, name="log_proba")
    return p


converts("SVC", "NuSVC", kind="classifier", methods=("predict_proba", "predict", "decision_function", "predict_log_proba"))(svc)


@converts("SVR", "NuSVR", kind="regressor", methods=("predict",))
def svr(emit: Emit, est: Obj, x: Value, method: str | None) -> Value:
    return pair_decisions(emit, est, x)[0]


@converts("OneClassSVM", kind="outlier", methods=("decision_function", "predict", "score_samples"))
def one_class_svm(emit: Emit, est: Obj, x: Value, method: str | None) -> Value:
    """decision_function = libsvm's value; score_samples = it + offset_ (offset_ = -intercept_);
    predict = +1 where decision_function > 0, else -1 (libsvm's sign)."""
    dec = pair_decisions(emit, est, x)[0]
    if method == "score_samples":
        return binop(
            emit, arith.AddFOp, dec, emit.const(np.asarray(est.attr("offset_"), np.float64).reshape(-1)[:1], "offset"), name="score"
        )
    if method == "predict":
        pos = emit.op(arith.CmpFOp.build("ogt", dec, emit.const([0.0], "zero")))
        return emit.op(arith.SelectOp.build(pos, emit.const([1.0], "inlier"), emit.const([-1.0], "outlier"), name="label"))
    return dec
