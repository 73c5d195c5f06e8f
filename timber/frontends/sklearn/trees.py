"""scikit-learn's tree estimators: DecisionTree, RandomForest, ExtraTrees (classifiers and
regressors, multi-output), GradientBoosting (every loss, any `init_`), IsolationForest.

What scikit-learn computes (read from `sklearn/tree/_classes.py`, `_tree.pyx`,
`sklearn/ensemble/_forest.py`, `_gb.py`, `_iforest.py`, `sklearn/_loss/`), and its IR:

* Input: X is cast to float32; a split sends a row left when `(double)x_f32 <= threshold`
  (threshold float64).  In the IR: `compare = f32` with the threshold replaced by the largest
  float32 not above it, which decides every float32 the same way.  NaN follows the node's
  `missing_go_to_left` (scikit-learn >= 1.3).  Pickles from older versions have no such field;
  those versions refused NaN input, and Timber sends NaN right (`x <= t` is false).  ±inf and
  values beyond float32's range make scikit-learn raise; Timber compares them as float32 ±inf.
* DecisionTree: `predict_proba` is the leaf's row of `tree_.value` (>= 1.4 stores class
  fractions; older versions stored weighted counts and divided by their sum, 0 -> 1, at
  predict time: done here at compile time with the same numpy division), multi-output
  classifiers give the outputs' columns side by side (`np.hstack(est.predict_proba(X))`);
  regressors the leaf value.
* RandomForest / ExtraTrees: the trees' `predict_proba` (or `predict`) summed in float64 in
  estimator order (what `n_jobs=1` does), then divided by the number of trees.
* GradientBoosting: `raw = init + Σ (learning_rate · leaf)` per stage and class in float64,
  `learning_rate · leaf` rounded once as in `predict_stages`; `init` is the `init_`
  estimator's `predict` (regressors) or clipped `predict_proba` through the loss's link
  (classifiers), a constant for the default `DummyRegressor` / `DummyClassifier` and `'zero'`,
  any compilable estimator otherwise.  `predict_proba`: expit (log_loss), expit(2·raw)
  (exponential), or softmax with numpy's pairwise sum for multiclass.
* IsolationForest: per tree `depth(leaf) + c(n_leaf) - 1` summed in order, then
  `score_samples = -2 ** (-depths / (n_trees · c(max_samples)))`, `decision_function =
  score_samples - offset_`; features subsets through `estimators_features_`.
"""

from __future__ import annotations

import numpy as np

from ir.dialects import arith, func, math  # noqa: F401
from ir.dialects.tree import EnsembleOp, Missing, NodeTable, Pred
from ir.types import f32, f64

from .registry import Emit, Obj, convert, converts, numpy_sum

_LEAF = -1  # sklearn's TREE_LEAF


def sklearn_version(est: Obj) -> tuple[int, int]:
    """(major, minor) of the scikit-learn that pickled `est` (unknown: the newest layout)."""
    v = est.attr("_sklearn_version", None)
    if not isinstance(v, str):
        return (99, 0)
    parts = []
    for p in v.split(".")[:2]:
        digits = "".join(c for c in p if c.isdigit()) or "0"
        parts.append(int(digits))
    return tuple(parts + [0] * (2 - len(parts)))  # type: ignore[return-value]


def f32_floor(t: np.ndarray) -> np.ndarray:
    """The largest float32 not above each float64 in `t` (so `x_f32 <= t'` iff `(double)x_f32 <= t`)."""
    t = np.asarray(t, np.float64)
    with np.errstate(over="ignore"):
        t32 = t.astype(np.float32)
    above = t32.astype(np.float64) > t
    t32[above] = np.nextafter(t32[above], np.float32(-np.inf))
    return t32


class TreeArrays:
    """The checked arrays of one `sklearn.tree._tree.Tree` record."""

    def __init__(self, emit: Emit, owner: Obj, tree: Obj, n_features: int):
        if not isinstance(tree, Obj) or tree.name != "Tree":
            emit.fail(owner, f"tree_ is {type(tree).__name__}, expected a sklearn.tree._tree.Tree")
        nodes = tree.attr("nodes")
        values = tree.attr("values")
        if not isinstance(nodes, np.ndarray) or nodes.dtype.names is None:
            emit.fail(owner, "tree_.nodes is not the structured node array of a scikit-learn tree")
        need = ("left_child", "right_child", "feature", "threshold", "n_node_samples")
        missing = [f for f in need if f not in nodes.dtype.names]
        if missing:
            emit.fail(owner, f"tree_.nodes has no field '{missing[0]}': a tree layout this front-end does not know")
        n = len(nodes)
        count = tree.attr("node_count", n)
        if n == 0 or count != n:
            emit.fail(owner, f"tree_ has node_count {count} but {n} nodes")
        if not isinstance(values, np.ndarray) or values.ndim != 3 or values.shape[0] != n or values.dtype.kind != "f":
            emit.fail(owner, f"tree_.values has shape {getattr(values, 'shape', None)}, expected ({n}, n_outputs, n_classes)")
        self.left = nodes["left_child"].astype(np.int64)
        self.right = nodes["right_child"].astype(np.int64)
        self.feature = nodes["feature"].astype(np.int64)
        self.threshold = nodes["threshold"].astype(np.float64)
        self.n_node_samples = nodes["n_node_samples"].astype(np.float64)
        self.missing_left = nodes["missing_go_to_left"].astype(bool) if "missing_go_to_left" in nodes.dtype.names else None
        self.values = values.astype(np.float64)
        self.leaf = self.left == _LEAF
        split = ~self.leaf
        bad = split & ((self.left <= 0) | (self.left >= n) | (self.right <= 0) | (self.right >= n))
        if bad.any():
            emit.fail(owner, f"tree_ node {int(np.argmax(bad))} has children outside the tree")
        bad = split & ((self.feature < 0) | (self.feature >= n_features))
        if bad.any():
            i = int(np.argmax(bad))
            emit.fail(owner, f"tree_ node {i} splits on feature {int(self.feature[i])} of {n_features}")
        if np.isnan(self.threshold[split]).any():
            emit.fail(owner, "tree_ has a NaN threshold")

    def depths(self) -> np.ndarray:
        """Depth of every node (root 0)."""
        d = np.zeros(len(self.left), np.int64)
        for i in range(len(self.left)):  # children come after their parent in sklearn's node order
            if not self.leaf[i]:
                d[self.left[i]] = d[self.right[i]] = d[i] + 1
        return d

    def table(self, leaf_values: np.ndarray, feature_map: np.ndarray | None = None) -> NodeTable:
        """A NodeTable (f32 compare, f64 leaves) with `leaf_values` (n_nodes, d) at the leaves."""
        n = len(self.left)
        split = ~self.leaf
        feature = np.where(split, self.feature, -1)
        if feature_map is not None:
            feature = np.where(split, feature_map[np.clip(self.feature, 0, None)], -1)
        thr = np.zeros(n, np.float32)
        thr[split] = f32_floor(self.threshold[split])
        pred = np.where(split, Pred.LE, Pred.LEAF).astype(np.uint8)
        yes = np.where(split, self.left, -1)
        no = np.where(split, self.right, -1)
        if self.missing_left is not None:
            missing = np.where(split, Missing.NAN, Missing.NONE).astype(np.uint8)
            default = np.where(split, np.where(self.missing_left, self.left, self.right), -1)
        else:
            missing = np.zeros(n, np.uint8)
            default = np.full(n, -1)
        leaf = np.where(self.leaf[:, None], leaf_values, 0.0).astype(np.float64)
        return NodeTable(feature, pred, thr, yes, no, missing, default, leaf)


def tree_of(emit: Emit, est: Obj, n_features: int) -> TreeArrays:
    return TreeArrays(emit, est, est.attr("tree_"), n_features)


def ensemble(emit: Emit, x, tables: list[tuple[NodeTable, int]], n_out: int, init=None, name: str = "sum"):
    """A tree.ensemble over row x (f32 compare, f64 leaves and sums)."""
    ens = EnsembleOp.build(x, n_out, f64, f32, f64, init=np.zeros(n_out) if init is None else init, name=name)
    for table, out in tables:
        ens.add_tree(table, out=out)
    return emit.op(ens)


def _n_features(emit: Emit, est: Obj) -> int:
    for key in ("n_features_in_", "n_features_"):
        v = est.attr(key, None)
        if v is not None:
            return int(v)
    emit.fail(est, "n_features_in_ is missing (is the estimator fitted?)")


def _classes_list(est: Obj) -> tuple[list[np.ndarray], bool]:
    """(classes per output, multi-output?) of a classifier."""
    classes = est.attr("classes_")
    n_outputs = int(est.attr("n_outputs_", 1))
    if n_outputs > 1:
        return [np.asarray(c) for c in classes], True
    return [np.asarray(classes)], False


def _old_counts(est: Obj) -> bool:
    """Trees of scikit-learn < 1.4 store weighted class counts, normalised at predict time."""
    return sklearn_version(est) < (1, 4)


def classifier_leaf_proba(emit: Emit, est: Obj, t: TreeArrays) -> np.ndarray:
    """(n_nodes, Σ n_classes) what DecisionTreeClassifier.predict_proba returns at each leaf."""
    n_classes = np.atleast_1d(np.asarray(est.attr("n_classes_"))).astype(np.int64)
    if t.values.shape[1] != len(n_classes) or t.values.shape[2] < n_classes.max():
        emit.fail(est, f"tree_.values has shape {t.values.shape} for {len(n_classes)} outputs of {n_classes.tolist()} classes")
    cols = []
    for k, nk in enumerate(n_classes.tolist()):
        p = t.values[:, k, :nk].copy()
        if _old_counts(est):
            norm = p.sum(axis=1)[:, None]
            norm[norm == 0.0] = 1.0
            p /= norm
        cols.append(p)
    return np.concatenate(cols, axis=1)


def _labels(emit: Emit, est: Obj, proba, classes: list[np.ndarray]):
    """predict() of a classifier from its concatenated per-output probabilities."""
    if len(classes) == 1:
        return emit.labels(proba, classes[0])
    outs, start = [], 0
    for c in classes:
        k = len(c)
        part = [emit.op(arith.ExtractOp.build(proba, start + j, name=f"p{start + j}")) for j in range(k)]
        sl = emit.op(arith.ConcatOp.build(part, name="proba_k")) if k > 1 else part[0]
        outs.append(emit.labels(sl, c))
        start += k
    return emit.op(arith.ConcatOp.build(outs, name="labels"))


def _log(emit: Emit, v):
    return emit.op(math.LogOp.build(v, name="log_proba"))


# ----- single trees and forests ----------------------------------------------------------------


@converts("DecisionTreeClassifier", "ExtraTreeClassifier", kind="classifier", methods=("predict_proba", "predict", "predict_log_proba"))
def decision_tree_classifier(emit: Emit, est: Obj, x, method):
    nf = _n_features(emit, est)
    t = tree_of(emit, est, nf)
    proba_leaf = classifier_leaf_proba(emit, est, t)
    proba = ensemble(emit, x, [(t.table(proba_leaf), 0)], proba_leaf.shape[1], name="proba")
    return _classifier_output(emit, est, proba, method)


def _classifier_output(emit: Emit, est: Obj, proba, method):
    classes, _ = _classes_list(est)
    if method == "predict":
        return _labels(emit, est, proba, classes)
    if method == "predict_log_proba":
        return _log(emit, proba)
    return proba


@converts("DecisionTreeRegressor", "ExtraTreeRegressor", kind="regressor", methods=("predict",))
def decision_tree_regressor(emit: Emit, est: Obj, x, method):
    nf = _n_features(emit, est)
    t = tree_of(emit, est, nf)
    return ensemble(emit, x, [(t.table(t.values[:, :, 0]), 0)], t.values.shape[1], name="value")


def _forest_trees(emit: Emit, est: Obj) -> list[Obj]:
    trees = est.attr("estimators_")
    if not isinstance(trees, list) or not trees or not all(isinstance(e, Obj) for e in trees):
        emit.fail(est, "estimators_ is not a non-empty list of fitted trees")
    return trees


@converts("RandomForestClassifier", "ExtraTreesClassifier", kind="classifier", methods=("predict_proba", "predict", "predict_log_proba"))
def forest_classifier(emit: Emit, est: Obj, x, method):
    nf = _n_features(emit, est)
    trees = _forest_trees(emit, est)
    tables = []
    width = None
    for i, e in enumerate(trees):
        with emit.at(f"estimators_[{i}]"):
            t = tree_of(emit, e, nf)
            p = classifier_leaf_proba(emit, e, t)
        if width is not None and p.shape[1] != width:
            emit.fail(est, f"estimators_[{i}] predicts {p.shape[1]} columns, the others {width}")
        width = p.shape[1]
        tables.append((t.table(p), 0))
    total = ensemble(emit, x, tables, width, name="proba_sum")
    proba = emit.op(arith.DivFOp.build(total, emit.const(np.full(width, float(len(trees))), "n_trees"), name="proba"))
    return _classifier_output(emit, est, proba, method)


@converts("RandomForestRegressor", "ExtraTreesRegressor", kind="regressor", methods=("predict",))
def forest_regressor(emit: Emit, est: Obj, x, method):
    nf = _n_features(emit, est)
    trees = _forest_trees(emit, est)
    tables, width = [], None
    for i, e in enumerate(trees):
        with emit.at(f"estimators_[{i}]"):
            t = tree_of(emit, e, nf)
        v = t.values[:, :, 0]
        if width is not None and v.shape[1] != width:
            emit.fail(est, f"estimators_[{i}] predicts {v.shape[1]} outputs, the others {width}")
        width = v.shape[1]
        tables.append((t.table(v), 0))
    total = ensemble(emit, x, tables, width, name="sum")
    return emit.op(arith.DivFOp.build(total, emit.const(np.full(width, float(len(trees))), "n_trees"), name="mean"))


# ----- gradient boosting ---------------------------------------------------------------------------

_EPS = np.finfo(np.float64).eps


def _logit(p: np.ndarray) -> np.ndarray:
    """scipy.special.logit, as sklearn's LogitLink.link calls it (scipy's own when installed)."""
    try:
        from scipy.special import logit

        return logit(p)
    except ImportError:  # the formula of scipy's xsf (log_exp.h)
        p = np.asarray(p, np.float64)
        s = 2 * (p - 0.5)
        return np.where((p < 0.3) | (p > 0.65), np.log(p / (1 - p)), np.log1p(s) - np.log1p(-s))


def _gmean(p: np.ndarray) -> np.ndarray:
    try:
        from scipy.stats import gmean

        return gmean(p, axis=1)
    except ImportError:
        return np.exp(np.mean(np.log(p), axis=1))


def _gb_loss(emit: Emit, est: Obj, classifier: bool) -> str:
    loss = est.param("loss")
    names = {"deviance": "log_loss", "ls": "squared_error", "lad": "absolute_error"}
    loss = names.get(loss, loss)
    ok = ("log_loss", "exponential") if classifier else ("squared_error", "absolute_error", "huber", "quantile")
    if loss not in ok:
        emit.fail(est, f"loss '{loss}' is not supported; supported: {', '.join(ok)}")
    return loss


def _constant_init(emit: Emit, est: Obj, init: Obj, classifier: bool, k: int, loss: str) -> np.ndarray | None:
    """The init raw prediction when it is a constant (DummyRegressor/DummyClassifier), else None."""
    if init.name == "DummyRegressor" and not classifier:
        c = init.array("constant_").reshape(-1)
        if len(c) != k:
            emit.fail(est, f"init_ predicts {len(c)} outputs, expected {k}")
        return c.astype(np.float64)
    if init.name == "DummyClassifier" and classifier:
        strategy = init.param("strategy", "prior")
        if strategy not in ("prior", "stratified", "uniform", "most_frequent", "constant"):
            emit.fail(init, f"strategy '{strategy}' is not supported")
        prior = init.array("class_prior_").reshape(-1)
        n = len(prior)
        if strategy == "prior":
            proba = prior
        elif strategy == "uniform":
            proba = np.full(n, 1.0 / n)
        elif strategy == "most_frequent":
            proba = np.zeros(n)
            proba[int(np.argmax(prior))] = 1.0
        else:
            return None  # stratified draws at random; constant needs its label lookup: unsupported below
        proba = proba.reshape(1, -1).astype(np.float64)
        if k == 1:
            proba = proba[:, 1]
        if _old_gb_losses(est):
            # sklearn < 1.3 (_gb_losses): clip at float32's eps, log-odds / log without scipy
            eps32 = np.finfo(np.float32).eps
            p = np.clip(proba, eps32, 1 - eps32)
            if k > 1:
                return np.log(p).astype(np.float64).reshape(-1)
            raw = np.log(p / (1 - p))
            return (0.5 * raw if loss == "exponential" else raw).reshape(-1)
        p = np.clip(proba, _EPS, 1 - _EPS, dtype=np.float64)
        if k == 1:
            raw = _logit(p)
            return (0.5 * raw if loss == "exponential" else raw).reshape(-1)
        return np.log(p / _gmean(p)[:, None]).reshape(-1)
    return None


def _old_gb_losses(est: Obj) -> bool:
    """GradientBoosting pickled by scikit-learn < 1.3, whose losses were `_gb_losses` objects
    (another init clipping, softmax through logsumexp, predict from the probabilities)."""
    return any(isinstance(v, Obj) and "._gb_losses." in v.cls for v in (est.attr("_loss", None), est.attr("loss_", None)))


def _gb_init(emit: Emit, est: Obj, x, classifier: bool, k: int, loss: str):
    """(constant init vector or None, per-row init Value or None)."""
    init = est.attr("init_")
    if isinstance(init, str):
        if init != "zero":
            emit.fail(est, f"init_ '{init}' is not supported")
        return np.zeros(k), None
    if not isinstance(init, Obj):
        emit.fail(est, f"init_ is a {type(init).__name__}, expected an estimator or 'zero'")
    c = _constant_init(emit, est, init, classifier, k, loss)
    if c is not None:
        return c, None
    with emit.at("init_"):
        if not classifier:
            return None, convert(emit, init, x, "predict")
        p = convert(emit, init, x, "predict_proba")
    if k == 1:
        p = emit.op(arith.ExtractOp.build(p, 1, name="p1"))
    lo = emit.const(np.full(p.type.shape[0], _EPS), "eps")
    hi = emit.const(np.full(p.type.shape[0], 1 - _EPS), "one_minus_eps")
    p = emit.op(arith.MinimumFOp.build(emit.op(arith.MaximumFOp.build(p, lo)), hi, name="clipped"))
    if k == 1:
        # scipy's logit: log(p/(1-p)) outside [0.3, 0.65], log1p(s) - log1p(-s) with s = 2(p - 0.5) inside
        one = emit.const([1.0])
        plain = emit.op(math.LogOp.build(emit.op(arith.DivFOp.build(p, emit.op(arith.SubFOp.build(one, p))))))
        s = emit.op(arith.MulFOp.build(emit.const([2.0]), emit.op(arith.SubFOp.build(p, emit.const([0.5])))))
        mid = emit.op(arith.SubFOp.build(emit.op(math.Log1pOp.build(s)), emit.op(math.Log1pOp.build(emit.op(arith.NegFOp.build(s))))))
        outside = emit.op(
            arith.OrIOp.build(
                emit.op(arith.CmpFOp.build("olt", p, emit.const([0.3]))), emit.op(arith.CmpFOp.build("ogt", p, emit.const([0.65])))
            )
        )
        raw = emit.op(arith.SelectOp.build(outside, plain, mid, name="init_raw"))
        if loss == "exponential":
            raw = emit.op(arith.MulFOp.build(emit.const([0.5]), raw, name="init_raw"))
        return None, raw
    emit.fail(init, "a multiclass GradientBoostingClassifier init_ other than DummyClassifier is not supported")


@converts("GradientBoostingClassifier", kind="classifier", methods=("predict_proba", "predict", "predict_log_proba", "decision_function"))
def gradient_boosting_classifier(emit: Emit, est: Obj, x, method):
    return _gradient_boosting(emit, est, x, method, classifier=True)


@converts("GradientBoostingRegressor", kind="regressor", methods=("predict",))
def gradient_boosting_regressor(emit: Emit, est: Obj, x, method):
    return _gradient_boosting(emit, est, x, method, classifier=False)


def _gradient_boosting(emit: Emit, est: Obj, x, method, classifier: bool):
    nf = _n_features(emit, est)
    loss = _gb_loss(emit, est, classifier)
    stages = est.attr("estimators_")
    if not isinstance(stages, np.ndarray) or stages.ndim != 2 or stages.shape[0] == 0:
        emit.fail(est, "estimators_ is not the (n_stages, K) array of fitted trees")
    n_est = int(est.attr("n_estimators_", stages.shape[0]))
    stages = stages[:n_est]
    k = stages.shape[1]
    lr = float(est.param("learning_rate"))
    tables = []
    for i in range(stages.shape[0]):
        for j in range(k):
            e = stages[i, j]
            if not isinstance(e, Obj):
                emit.fail(est, f"estimators_[{i}, {j}] is not a fitted tree")
            with emit.at(f"estimators_[{i}, {j}]"):
                t = tree_of(emit, e, nf)
            tables.append((t.table(lr * t.values[:, 0, :1]), j))
    const, row_init = _gb_init(emit, est, x, classifier, k, loss)
    if row_init is not None and _old_gb_losses(est):
        emit.fail(est, "an init_ estimator other than DummyClassifier/DummyRegressor in a pickle of scikit-learn < 1.3 is not supported")
    if row_init is None:
        raw = ensemble(emit, x, tables, k, init=const, name="raw")
    else:
        # sklearn adds each tree to the per-row init in turn: one ensemble per tree keeps that order
        raw = row_init
        for table, out in tables:
            leaf = ensemble(emit, x, [(table, out)], k, init=np.full(k, -0.0), name="tree")
            raw = emit.op(arith.AddFOp.build(raw, leaf, name="raw"))
    if not classifier:
        return raw
    classes = np.asarray(est.attr("classes_"))
    if method == "decision_function":
        return raw
    old = _old_gb_losses(est)
    if method == "predict" and not old:
        return emit.labels(raw, classes)
    proba = _old_gb_proba(emit, raw, loss) if old else _gb_proba(emit, raw, loss)
    if method == "predict":
        return emit.labels(proba, classes)  # < 1.3: argmax of the probabilities
    if method == "predict_log_proba":
        return _log(emit, proba)
    return proba


def _gb_proba(emit: Emit, raw, loss: str):
    """The loss's predict_proba: [1 - expit, expit] (binary), softmax (multiclass)."""
    if raw.type.shape[0] == 1:
        z = emit.op(arith.AddFOp.build(raw, raw, name="raw2")) if loss == "exponential" else raw
        p1 = emit.op(math.SigmoidOp.build(z, name="p1"))
        p0 = emit.op(arith.SubFOp.build(emit.const([1.0], "one"), p1, name="p0"))
        return emit.op(arith.ConcatOp.build([p0, p1], name="proba"))
    return numpy_softmax(emit, raw)


def _old_gb_proba(emit: Emit, raw, loss: str):
    """scikit-learn < 1.3: binary as now; multiclass `exp(raw - logsumexp(raw))` with scipy's
    logsumexp of that time (`log(Σ exp(a - max)) + max`, numpy's sum)."""
    k = raw.type.shape[0]
    if k == 1:
        return _gb_proba(emit, raw, loss)
    m = emit.op(arith.ExtractOp.build(raw, 0, name="max"))
    for i in range(1, k):
        m = emit.op(arith.MaximumFOp.build(m, emit.op(arith.ExtractOp.build(raw, i))))
    mb = emit.op(arith.BroadcastOp.build(m, raw.type))
    e = emit.op(math.ExpOp.build(emit.op(arith.SubFOp.build(raw, mb))))
    s = numpy_sum(emit, [emit.op(arith.ExtractOp.build(e, i)) for i in range(k)])
    lse = emit.op(arith.AddFOp.build(emit.op(math.LogOp.build(s)), m, name="logsumexp"))
    shifted = emit.op(arith.SubFOp.build(raw, emit.op(arith.BroadcastOp.build(lse, raw.type))))
    return emit.op(math.ExpOp.build(shifted, name="proba"))


def numpy_softmax(emit: Emit, v):
    """sklearn.utils.extmath.softmax on one row, bit for bit: subtract the max, exp, divide by
    the row sum as numpy's add.reduce computes it (left to right below 8 terms, else numpy's
    pairwise summation)."""
    k = v.type.shape[0]
    if k < 8:
        return emit.op(math.SoftmaxOp.build(v, name="proba"))  # sums left to right, as numpy does below 8 terms
    m = emit.op(arith.ExtractOp.build(v, 0, name="max"))
    for i in range(1, k):
        m = emit.op(arith.MaximumFOp.build(m, emit.op(arith.ExtractOp.build(v, i))))
    e = emit.op(math.ExpOp.build(emit.op(arith.SubFOp.build(v, emit.op(arith.BroadcastOp.build(m, v.type))))))
    s = numpy_sum(emit, [emit.op(arith.ExtractOp.build(e, i)) for i in range(k)])
    return emit.op(arith.DivFOp.build(e, emit.op(arith.BroadcastOp.build(s, v.type)), name="proba"))


# ----- isolation forest -----------------------------------------------------------------------------


def _average_path_length(n: np.ndarray) -> np.ndarray:
    """c(n), as sklearn.ensemble._iforest._average_path_length computes it."""
    n = np.asarray(n, np.float64)
    out = np.zeros(n.shape)
    m2 = n == 2
    rest = ~((n <= 1) | m2)
    out[m2] = 1.0
    out[rest] = 2.0 * (np.log(n[rest] - 1.0) + np.euler_gamma) - 2.0 * (n[rest] - 1.0) / n[rest]
    return out


@converts("IsolationForest", kind="outlier", methods=("decision_function", "score_samples", "predict"))
def isolation_forest(emit: Emit, est: Obj, x, method):
    nf = _n_features(emit, est)
    trees = _forest_trees(emit, est)
    feats = est.attr("estimators_features_")
    max_features = int(est.attr("_max_features", est.attr("max_features_", nf)))
    subsample = max_features != nf
    max_samples = est.attr("_max_samples", None)
    if max_samples is None:
        max_samples = est.attr("max_samples_")
    stored_apl = est.attr("_average_path_length_per_tree", None)
    stored_depth = est.attr("_decision_path_lengths", None)
    tables = []
    for i, e in enumerate(trees):
        fmap = None
        if subsample:
            fmap = np.asarray(feats[i], np.int64)
            if fmap.ndim != 1 or np.any((fmap < 0) | (fmap >= nf)):
                emit.fail(est, f"estimators_features_[{i}] is not a list of feature indices")
        with emit.at(f"estimators_[{i}]"):
            t = tree_of(emit, e, len(fmap) if fmap is not None else nf)
        if stored_apl is not None and stored_depth is not None:
            apl = np.asarray(stored_apl[i], np.float64)
            depth = np.asarray(stored_depth[i], np.float64)
            if apl.shape != (len(t.left),) or depth.shape != (len(t.left),):
                emit.fail(est, f"_decision_path_lengths[{i}] does not match the tree's {len(t.left)} nodes")
        else:  # older versions computed both at predict time: the path's node count, c(n_node_samples)
            apl = _average_path_length(t.n_node_samples)
            depth = (t.depths() + 1).astype(np.float64)
        leaf = (depth + apl - 1.0)[:, None]
        tables.append((t.table(leaf, fmap), 0))
    depths = ensemble(emit, x, tables, 1, name="depths")
    denominator = len(trees) * _average_path_length(np.array([float(max_samples)]))[0]
    if denominator != 0:
        ratio = emit.op(arith.DivFOp.build(depths, emit.const([denominator], "denominator"), name="ratio"))
    else:
        ratio = emit.const([1.0], "ratio")
    # numpy's 2 ** (-depths / c): pow(2, .) in the C library (math.exp2's libm mode); (-d)/c = -(d/c) exactly
    neg = emit.op(arith.NegFOp.build(ratio, name="exponent"))
    scores = emit.op(math.Exp2Op.build(neg, name="scores"))
    score_samples = emit.op(arith.NegFOp.build(scores, name="score_samples"))
    if method == "score_samples":
        return score_samples
    offset = float(est.attr("offset_"))
    decision = emit.op(arith.SubFOp.build(score_samples, emit.const([offset], "offset"), name="decision"))
    if method == "predict":
        # sklearn: 1 for inliers (decision >= 0), -1 for outliers
        ge = emit.op(arith.CmpFOp.build("oge", decision, emit.const([0.0])))
        return emit.op(arith.SelectOp.build(ge, emit.const([1.0], "inlier"), emit.const([-1.0], "outlier"), name="label"))
    return decision


__all__ = ["TreeArrays", "ensemble", "f32_floor", "numpy_softmax", "sklearn_version"]
