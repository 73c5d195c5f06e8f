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
* Probabilities (`prob_a`/`prob_b`, Platt scaling and pairwise coupling) are not compiled:
  refused with an error naming the node.
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
    if a.get("prob_a"):
        b.fail("SVMClassifier probabilities (prob_a/prob_b: Platt scaling and pairwise coupling) are not compiled yet")
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
    if n_cls == 2:
        s = scores[0]
        if post == "NONE":
            return Val(row=b.concat([b.neg(s), s], name="scores"))
        b.fail(f"post_transform {post} on a two-class SVMClassifier without probabilities is not compiled yet")
    out = b.concat(scores, name="scores")
    return Val(row=b.transform(post, out) if post != "NONE" else out)


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
