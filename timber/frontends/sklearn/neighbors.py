"""scikit-learn nearest neighbours: KNeighborsClassifier and KNeighborsRegressor (uniform and
distance weights; euclidean, manhattan, and minkowski with p = 1 or 2, which scikit-learn turns
into those two).

The training set becomes a table in the compiled code (`kernel.distances`): for each training
row, `Σ_j (x_j - t_j)²` (euclidean; the "reduced" distance every scikit-learn algorithm ranks by)
or `Σ_j |x_j - t_j|` (manhattan), left to right; `kernel.topk` picks the k smallest with a stable
order, so among equal distances the lower training index wins, as scikit-learn's neighbour heap
(which only replaces its largest on a strictly smaller value) keeps it; the chosen neighbours'
euclidean distances are then square-rooted (`kernel.take`, `kernel.sqrt`), as scikit-learn does
last.  These are the bits of the KD-tree and ball-tree queries (scikit-learn's 'auto' for up to
15 features) and of the brute-force manhattan path.  scikit-learn's brute-force *euclidean* path
(algorithm='brute', or 'auto' above 15 features) ranks by `‖x‖² - 2·x·t + ‖t‖²` computed with
BLAS (dgemm, ddot: blocked, fused multiply-adds, CPU-specific): there the distances differ by
rounding (about 1e-15 relative to ‖x‖² + ‖t‖²) and a neighbour can swap with another whose
distance is within that rounding of it.

Then, as `predict_proba` / `predict` compute it: weights 1 (uniform) or `1 / d` (distance; a row
with a zero distance weighs its zero-distance neighbours 1 and the others 0); class sums
accumulated over the neighbours in order (`proba[c] += w_i`), divided by numpy's row sum of them;
`predict` is the first class with the largest sum (scipy's mode / sklearn's weighted_mode).  The
regressor is `mean(y[neigh])` (numpy's pairwise sum over k, divided by k) or
`sum(y·w) / sum(w)`.

Minkowski with another p is refused: scikit-learn ranks by `Σ_j pow(|x_j - t_j|, p)` (the C
library's pow, in its Cython) and the trees return `rdist ** (1/p)` through numpy's power ufunc
(SVML's pow on AVX-512 hosts, not the C library's); Timber's IR has no pow that is either on
every back-end, so neither the ranking nor the distance weights could be promised bit for bit.
A weighted minkowski (`w`) or any other metric parameter is refused too, never ignored.
"""

from __future__ import annotations

import numpy as np

from ir.attributes import DenseElementsAttr
from ir.core import Value
from ir.dialects import arith
from ir.types import TensorType, f64

from .linear import bcast, binop, check_features, concat, extract, np_row_sum, width
from .registry import Emit, Obj, converts

METRICS = {"euclidean": "sqeuclidean", "l2": "sqeuclidean", "manhattan": "manhattan", "l1": "manhattan", "cityblock": "manhattan"}


def _metric(emit: Emit, est: Obj) -> str:
    metric = est.attr("effective_metric_", est.param("metric", "minkowski"))
    params = est.attr("effective_metric_params_", None) or {}
    if not isinstance(params, dict):
        emit.fail(est, f"effective_metric_params_ is a {type(params).__name__}, expected a dict")
    other = sorted(str(k) for k, v in params.items() if k != "p" and v is not None)
    if other:  # a weighted minkowski ('w' not None) or any other parameter changes the distance: never ignored
        emit.fail(est, f"metric parameter {other[0]!r} (effective_metric_params_) is not supported; only 'p' is")
    if metric == "minkowski":
        p = params.get("p", est.param("p", 2))
        metric = {1: "manhattan", 2: "euclidean"}.get(p, None)  # 1.0 == 1 and 2.0 == 2 as keys
        if metric is None:
            emit.fail(est, f"minkowski with p={p} is not supported (p=1 and p=2 are: manhattan and euclidean)")
    if not isinstance(metric, str) or metric not in METRICS:
        emit.fail(est, f"metric {metric!r} is not supported; supported: euclidean, manhattan, minkowski with p=1 or 2")
    return metric


def _table(values: np.ndarray) -> DenseElementsAttr:
    """An `arith.lookup` table: `values` padded to a power of two."""
    size = 1 << max(0, (len(values) - 1).bit_length())
    t = np.zeros(size)
    t[: len(values)] = values
    return DenseElementsAttr(t, TensorType((size,), f64))


def neighbours(emit: Emit, est: Obj, x: Value) -> tuple[Value, Value]:
    """(indices tensor<kxi64>, distances tensor<kxf64>) of the k nearest training rows."""
    from ir.dialects.kernel import DistancesOp, SqrtOp, TakeOp, TopKOp

    fit_x = est.array("_fit_X", ndim=2, finite=True)
    check_features(emit, est, x, fit_x.shape[1], "_fit_X")
    k = est.param("n_neighbors", 5)
    if not isinstance(k, (int, np.integer)) or not 1 <= int(k) <= fit_x.shape[0]:
        emit.fail(est, f"n_neighbors={k!r} must be between 1 and the {fit_x.shape[0]} training rows")
    metric = _metric(emit, est)
    rd = emit.op(DistancesOp.build(x, np.ascontiguousarray(fit_x), METRICS[metric], name="reduced_distances"))
    idx = emit.op(TopKOp.build(rd, int(k), name="neighbours"))
    d = emit.op(TakeOp.build(rd, idx, name="neighbour_rdist"))
    if METRICS[metric] == "sqeuclidean":
        d = emit.op(SqrtOp.build(d, name="neighbour_dist"))
    return idx, d


def weights(emit: Emit, est: Obj, d: Value) -> Value | None:
    """None for uniform weights, else `_get_weights(dist, 'distance')`."""
    w = est.param("weights", "uniform")
    if w == "uniform" or w is None:
        return None
    if w != "distance":
        emit.fail(est, f"weights={w!r} is not supported (a callable cannot be compiled); supported: 'uniform', 'distance'")
    k = width(d)
    inv = binop(emit, arith.DivFOp, emit.const(np.ones(k), "one"), d, name="inv_dist")
    is_inf = emit.op(arith.CmpFOp.build("oeq", inv, emit.const(np.full(k, np.inf), "inf"), name="zero_dist"))
    ones, zeros = emit.const(np.ones(k), "one"), emit.const(np.zeros(k), "zero")
    flags = emit.op(arith.SelectOp.build(is_inf, ones, zeros))
    n_inf = np_row_sum(emit, flags)
    any_inf = emit.op(arith.CmpFOp.build("ogt", n_inf, emit.const([0.0], "zero"), name="inf_row"))
    return emit.op(arith.SelectOp.build(bcast(emit, any_inf, k), flags, inv, name="weights"))


@converts("KNeighborsClassifier", kind="classifier", methods=("predict_proba", "predict"))
def kneighbors_classifier(emit: Emit, est: Obj, x: Value, method: str | None) -> Value:
    classes = np.asarray(est.attr("classes_"))
    if est.attr("outputs_2d_", False):
        emit.fail(est, "multi-output KNeighborsClassifier is not supported")
    y = est.array("_y", dtype=np.float64).reshape(-1)
    n_classes = len(classes)
    if y.size != est.array("_fit_X", ndim=2).shape[0] or (y.size and (y.min() < 0 or y.max() >= n_classes)):
        emit.fail(est, f"_y has {y.size} labels for {n_classes} classes that do not match the training rows")
    idx, d = neighbours(emit, est, x)
    k = width(idx)
    w = weights(emit, est, d)
    cls = emit.op(arith.LookupOp.build(idx, _table(y), name="neighbour_class"))
    zero = emit.const([0.0], "zero")
    sums = []
    for c in range(n_classes):
        match = emit.op(arith.CmpFOp.build("oeq", cls, emit.const(np.full(k, float(c)), f"class{c}")))
        wc = emit.op(arith.SelectOp.build(match, emit.const(np.ones(k), "one") if w is None else w, emit.const(np.zeros(k), "zero")))
        s = zero
        for i in range(k):  # proba_k[:, c] += weights[:, i], neighbour by neighbour
            s = binop(emit, arith.AddFOp, s, extract(emit, wc, i))
        sums.append(s)
    total = concat(emit, sums, name="class_weights")
    if (method or "predict_proba") == "predict":
        return emit.labels(total, classes)
    norm = np_row_sum(emit, total, "normalizer")
    return binop(emit, arith.DivFOp, total, bcast(emit, norm, n_classes), name="proba")


@converts("KNeighborsRegressor", kind="regressor", methods=("predict",))
def kneighbors_regressor(emit: Emit, est: Obj, x: Value, method: str | None) -> Value:
    y = est.array("_y", dtype=np.float64)
    if y.ndim == 2 and y.shape[1] == 1 and not est.attr("_y_2d", False):
        y = y.reshape(-1)
    if y.ndim != 1:
        emit.fail(est, f"multi-output KNeighborsRegressor (_y of shape {y.shape}) is not supported")
    if not np.all(np.isfinite(y)):
        emit.fail(est, "_y holds NaN or infinite targets")
    idx, d = neighbours(emit, est, x)
    k = width(idx)
    yv = emit.op(arith.LookupOp.build(idx, _table(y), name="neighbour_y"))
    w = weights(emit, est, d)
    if w is None:  # np.mean(_y[neigh_ind], axis=1)
        return binop(emit, arith.DivFOp, np_row_sum(emit, yv), emit.const([float(k)], "k"), name="prediction")
    num = np_row_sum(emit, binop(emit, arith.MulFOp, yv, w), "weighted_sum")
    return binop(emit, arith.DivFOp, num, np_row_sum(emit, w, "weight_sum"), name="prediction")
