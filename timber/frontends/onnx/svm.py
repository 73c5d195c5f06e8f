"""SVMClassifier and SVMRegressor (ai.onnx.ml opset 1) as ONNX Runtime computes them
(`svmclassifier.cc`, `svmregressor.cc`, `svmclassifier.h`), inputs cast to float32 first:

* Kernel values per support vector: RBF `exp(-gamma * Σ (x_j - sv_j)^2)`, the sum in float in
  feature order (`kernel.distances` then `math.exp`: bit-exact); LINEAR / POLY / SIGMOID
  through ONNX Runtime's SGEMM (`gamma * x·sv + coef0`, then `^degree` or MLAS's tanh), which
  Timber computes in feature order without FMA (`linear.affine`): a few ulp apart.
* Classifier decision values, one per class pair (i, j) in ONNX order: each `coef * kernel`
  product rounded to float, summed in double over class i's then class j's support vectors,
  plus rho, rounded to float (bit-exact given the kernel values).  Two classes: the scores are
  [-s, s] (post_transform NONE).  Regressor: `Σ coef * kernel + rho` (ONNX Runtime: SGEMM),
  one_class: `s > 0 ? 1 : -1`.
* Probabilities (`prob_a`/`prob_b`): per pair `1 - ComputeLogistic(s * A + B)` clipped to
  [1e-7, 1 - 1e-7], then ONNX Runtime's `multiclass_probability` (libsvm's pairwise coupling,
  float32, at most 100 iterations, stopping when the error drops below 0.005 / k): unrolled,
  each iteration's update kept only while the error is not yet below the bound.
"""

from __future__ import annotations

import numpy as np

from ir.dialects import kernel, math
from ir.dialects.linear import AffineOp
from ir.types import f32, f64

from .builder import Builder, Val


def _floats(b: Builder, a: dict, name: str, required=True) -> np.ndarray:
    v = a.get(name)
    if v is None:
        if required:
            b.fail(f"attribute '{name}' is missing")
        v = []
    return np.asarray(v, np.float32).reshape(-1)


def _kernels(b: Builder, xf, sv: np.ndarray, kernel_type: str, params: np.ndarray):
    """Kernel value of the row with each support vector (rows of `sv`), float32."""
    gamma, coef0, degree = (list(params) + [0.0, 0.0, 0.0])[:3]
    if kernel_type == "RBF":
        d = b.op(kernel.DistancesOp.build(xf, sv, "sqeuclidean", name="sqdist"))
        return b.exp(b.mul(b.splat(float(-np.float32(gamma)), d), d), name="kernel")
    dot = b.op(AffineOp.build(xf, sv, np.zeros(len(sv), np.float32), f32, missing="propagate", name="dot"))
    if kernel_type == "LINEAR":
        return dot
    k = b.add(b.mul(b.splat(float(gamma), dot), dot), b.splat(float(coef0), dot))
    if kernel_type == "POLY":
        if degree not in (1.0, 2.0, 3.0):
            b.fail(f"POLY kernel of degree {degree}: degrees 1, 2 and 3 are supported")
        out = k
        for _ in range(int(degree) - 1):
            out = b.mul(out, k)
        return out
    if kernel_type == "SIGMOID":
        return b.op(math.TanhOp.build(k))
    b.fail(f"kernel_type '{kernel_type}' is not one of LINEAR, POLY, RBF, SIGMOID")


def svm_classifier(b: Builder, x: Val, a: dict) -> Val:
    labels = a.get("classlabels_strings") or a.get("classlabels_ints") or []
    n_cls = len(labels)
    if n_cls < 2:
        b.fail("an SVMClassifier needs at least two class labels")
    prob_a, prob_b = _floats(b, a, "prob_a", required=False), _floats(b, a, "prob_b", required=False)
    if len(prob_a) != len(prob_b):
        b.fail(f"prob_a has {len(prob_a)} values and prob_b {len(prob_b)}")
    post = a.get("post_transform", "NONE")
    coef = _floats(b, a, "coefficients")
    rho = _floats(b, a, "rho")
    per_class = np.asarray(a.get("vectors_per_class", []), np.int64)
    sv = _floats(b, a, "support_vectors", required=False)
    xf = b.convert(x.row, f32)
    n = x.width
    n_vec = int(per_class.sum()) if len(per_class) else 0
    if n_vec == 0:
        b.fail("a liblinear-mode SVMClassifier (no support vectors) is not compiled yet")
    if len(per_class) != n_cls or sv.size != n_vec * n:
        b.fail(f"support_vectors has {sv.size} values; expected {n_vec} vectors of {n} features")
    if coef.size != (n_cls - 1) * n_vec:
        b.fail(f"coefficients has {coef.size} values; expected {(n_cls - 1)} x {n_vec}")
    n_pairs = n_cls * (n_cls - 1) // 2
    if len(rho) < n_pairs:
        b.fail(f"rho has {len(rho)} values; expected {n_pairs}")
    k = _kernels(b, xf, sv.reshape(n_vec, n), a.get("kernel_type", "LINEAR"), _floats(b, a, "kernel_params", required=False))
    coef = coef.reshape(n_cls - 1, n_vec)
    start = np.concatenate([[0], np.cumsum(per_class)[:-1]])
    scores, c = [], 0
    for i in range(n_cls - 1):
        for j in range(i + 1, n_cls):
            row = np.zeros(n_vec, np.float32)
            si, sj = slice(start[i], start[i] + per_class[i]), slice(start[j], start[j] + per_class[j])
            row[si] = coef[j - 1, si]
            row[sj] = coef[i, sj]
            prod = b.convert(b.mul(k, b.const(row, f32)), f64)  # each product rounded to float
            mask = np.zeros(n_vec)
            mask[si], mask[sj] = 1.0, 1.0
            s = b.op(AffineOp.build(prod, mask.reshape(1, -1), np.zeros(1), f64, missing="propagate", name="pairsum"))
            s = b.add(s, b.const([float(rho[c])], f64))
            scores.append(b.convert(s, f32))
            c += 1
    if len(prob_a):
        if len(prob_a) < n_pairs:
            b.fail(f"prob_a has {len(prob_a)} values; expected {n_pairs}")
        p = _coupled_probabilities(b, scores, prob_a, prob_b, n_cls)
        return Val(row=b.transform(post, p) if post != "NONE" else p)
    if n_cls == 2:
        s = scores[0]
        if post == "NONE":
            return Val(row=b.concat([b.neg(s), s], name="scores"))
        b.fail(f"post_transform {post} on a two-class SVMClassifier without probabilities is not compiled yet")
    out = b.concat(scores, name="scores")
    return Val(row=b.transform(post, out) if post != "NONE" else out)


def _coupled_probabilities(b: Builder, scores, prob_a, prob_b, k: int):
    """Platt probabilities of each pair, coupled into k class probabilities (float32)."""
    F = np.float32
    one = b.const([1.0], f32)

    def c(v):
        return b.const([F(v)], f32)

    r = [[None] * k for _ in range(k)]
    idx = 0
    for i in range(k - 1):
        for j in range(i + 1, k):
            val = b.add(b.mul(scores[idx], c(prob_a[idx])), c(prob_b[idx]))
            v1 = b.sub(one, b.logistic(val, name="platt"))
            lo, hi = c(1.0e-7), c(F(1) - F(1.0e-7))
            v2 = b.select(b.cmp("olt", v1, lo), lo, v1)  # std::max(v1, 1e-7f): NaN stays NaN
            v2 = b.select(b.cmp("olt", hi, v2), hi, v2)  # std::min(v2, 1 - 1e-7f)
            r[i][j], r[j][i] = v2, b.sub(one, v2)
            idx += 1
    zero = c(0.0)
    Q = [[zero] * k for _ in range(k)]
    for i in range(k):
        for j in range(i):
            Q[i][i] = b.add(Q[i][i], b.mul(r[j][i], r[j][i]))
            Q[i][j] = Q[j][i]
        for j in range(i + 1, k):
            Q[i][i] = b.add(Q[i][i], b.mul(r[j][i], r[j][i]))
            Q[i][j] = b.mul(b.neg(r[j][i]), r[i][j])
    p = [c(F(1) / F(k))] * k
    eps = c(F(0.005) / F(k))
    two = c(2.0)
    for _ in range(100):
        Qp = []
        pQp = zero
        for i in range(k):
            q = zero
            for j in range(k):
                q = b.add(q, b.mul(Q[i][j], p[j]))
            Qp.append(q)
            pQp = b.add(pQp, b.mul(p[i], q))
        max_error = zero
        for i in range(k):
            err = b.abs(b.sub(Qp[i], pQp))
            max_error = b.select(b.cmp("ogt", err, max_error), err, max_error)
        done = b.cmp("olt", max_error, eps)
        new_p, new_Qp = list(p), list(Qp)
        for i in range(k):
            diff = b.div(b.add(b.neg(new_Qp[i]), pQp), Q[i][i])
            new_p[i] = b.add(new_p[i], diff)
            d1 = b.add(one, diff)
            pQp = b.div(b.div(b.add(pQp, b.mul(diff, b.add(b.mul(diff, Q[i][i]), b.mul(two, new_Qp[i])))), d1), d1)
            for j in range(k):
                new_Qp[j] = b.div(b.add(new_Qp[j], b.mul(diff, Q[i][j])), d1)
                new_p[j] = b.div(new_p[j], d1)
        p = [b.select(done, old, new) for old, new in zip(p, new_p)]
    return b.concat(p, name="probabilities")


def svm_regressor(b: Builder, x: Val, a: dict) -> Val:
    coef = _floats(b, a, "coefficients")
    rho = _floats(b, a, "rho")
    n_vec = int(a.get("n_supports", 0))
    n = x.width
    xf = b.convert(x.row, f32)
    if n_vec > 0:
        sv = _floats(b, a, "support_vectors")
        if sv.size != n_vec * n or coef.size != n_vec:
            b.fail(f"support_vectors/coefficients sizes {sv.size}/{coef.size} do not match {n_vec} vectors of {n} features")
        k = _kernels(b, xf, sv.reshape(n_vec, n), a.get("kernel_type", "LINEAR"), _floats(b, a, "kernel_params", required=False))
        y = b.op(AffineOp.build(k, coef.reshape(1, -1), rho[:1], f32, missing="propagate", name="svr"))
    else:
        if coef.size != n:
            b.fail(f"coefficients has {coef.size} values; expected {n}")
        y = b.op(AffineOp.build(xf, coef.reshape(1, -1), rho[:1], f32, missing="propagate", name="svr"))
    if int(a.get("one_class", 0)):
        pos = b.cmp("ogt", y, b.splat(0.0, y))
        y = b.select(pos, b.splat(1.0, y), b.splat(-1.0, y), name="outlier")
    return Val(row=y)


__all__ = ["svm_classifier", "svm_regressor"]
