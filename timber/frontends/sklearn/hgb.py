"""HistGradientBoostingClassifier / HistGradientBoostingRegressor.

What scikit-learn computes (`sklearn/ensemble/_hist_gradient_boosting/gradient_boosting.py`,
`_predictor.pyx`, `predictor.py`), and its IR:

* Input float64.  Numerical split: `x <= num_threshold` in float64 goes left; NaN takes the
  node's `missing_go_to_left` way.
* Categorical features, scikit-learn >= 1.4 (a fitted `_preprocessor`): an OrdinalEncoder maps
  each categorical column to the index of its value in `categories_` (equality, so 2.5 or an
  unseen value is unknown), unknown values and NaN to NaN; the encoded columns come first, the
  numerical ones after, and the trees index that reordered row.  In the IR: per categorical
  column a chain of `cmpf oeq` / `select` makes the code (NaN when unknown), then `arith.concat`
  rebuilds the reordered row.  Before 1.4 the trees read the raw column: negative values are
  missing, `(uint8)x` is the category (Timber treats values >= 256, which scikit-learn casts
  with undefined behaviour, as unknown).
* A categorical node: NaN, negative and unknown categories go the missing way; a category in
  the node's left set goes left; any other known category right.  As a `tree.tree` split:
  `x in {left set} missing(nan) -> missing child` on the code.
* Sum: `0.0 + _baseline_prediction`, then each iteration's trees added in order in float64
  (leaf values already hold the learning rate).  Outputs: regressors the loss's inverse link
  (`exp` for poisson and gamma, identity otherwise); classifiers `predict_proba` = expit
  (binary, `[1 - p, p]`) or softmax, `decision_function` the raw score, `predict` `raw > 0` /
  argmax.
"""

from __future__ import annotations

import numpy as np

from ir.dialects import arith, math
from ir.dialects.tree import CategorySets, EnsembleOp, Missing, NodeTable, Pred
from ir.types import f64

from .registry import Emit, Obj, converts
from .trees import _gb_proba

_REG_LOSSES = {"squared_error": "identity", "absolute_error": "identity", "quantile": "identity", "poisson": "log", "gamma": "log",
               "least_squares": "identity", "least_absolute_deviation": "identity"}  # fmt: skip
_CLF_LOSSES = ("log_loss", "binary_crossentropy", "categorical_crossentropy", "auto")


def _predictor_table(emit: Emit, est: Obj, pred: Obj, n_in: int, where: str) -> NodeTable:
    """A NodeTable (f64 compare and leaves) for one TreePredictor record."""
    if not isinstance(pred, Obj) or pred.name != "TreePredictor":
        emit.fail(est, f"{where} is not a TreePredictor")
    nodes = pred.attr("nodes")
    if not isinstance(nodes, np.ndarray) or nodes.dtype.names is None:
        emit.fail(est, f"{where}.nodes is not a structured node array")
    need = ("value", "feature_idx", "num_threshold", "missing_go_to_left", "left", "right", "is_leaf")
    absent = [f for f in need if f not in nodes.dtype.names]
    if absent:
        emit.fail(est, f"{where}.nodes has no field '{absent[0]}': a predictor layout this front-end does not know")
    n = len(nodes)
    if n == 0:
        emit.fail(est, f"{where} has no nodes")
    leaf = nodes["is_leaf"].astype(bool)
    split = ~leaf
    left = nodes["left"].astype(np.int64)
    right = nodes["right"].astype(np.int64)
    feat = nodes["feature_idx"].astype(np.int64)
    if np.any(split & ((left <= 0) | (left >= n) | (right <= 0) | (right >= n))):
        emit.fail(est, f"{where} has a node whose children lie outside the tree")
    if np.any(split & ((feat < 0) | (feat >= n_in))):
        emit.fail(est, f"{where} splits on a feature outside the {n_in} inputs")
    is_cat = nodes["is_categorical"].astype(bool) if "is_categorical" in nodes.dtype.names else np.zeros(n, bool)
    is_cat &= split
    miss_left = nodes["missing_go_to_left"].astype(bool)
    pred_col = np.where(split, np.where(is_cat, Pred.IN, Pred.LE), Pred.LEAF).astype(np.uint8)
    thr = np.where(split & ~is_cat, nodes["num_threshold"].astype(np.float64), 0.0)
    cats = CategorySets(n)
    if is_cat.any():
        bitsets = pred.attr("raw_left_cat_bitsets")
        bitsets = np.asarray(bitsets, np.uint32)
        if bitsets.ndim != 2 or bitsets.shape[1] != 8:
            emit.fail(est, f"{where}.raw_left_cat_bitsets has shape {bitsets.shape}, expected (n, 8)")
        idx = nodes["bitset_idx"].astype(np.int64)
        for i in np.flatnonzero(is_cat).tolist():
            if not 0 <= idx[i] < len(bitsets):
                emit.fail(est, f"{where} node {i} names bitset {idx[i]} of {len(bitsets)}")
            bits = np.unpackbits(bitsets[idx[i]].view(np.uint8), bitorder="little")
            cats.add(i, np.flatnonzero(bits).tolist())
    cat_start, cat_len, cat_words = cats.columns()
    values = np.where(leaf, nodes["value"].astype(np.float64), 0.0)
    return NodeTable(
        np.where(split, feat, -1),
        pred_col,
        thr,
        np.where(split, left, -1),
        np.where(split, right, -1),
        np.where(split, Missing.NAN, Missing.NONE).astype(np.uint8),
        np.where(split, np.where(miss_left, left, right), -1),
        values,
        cat_start,
        cat_len,
        cat_words,
    )


def _code(emit: Emit, xj, pairs):
    """f64 code of one categorical value: `code` where `match(x)`, NaN when nothing matches."""
    out = emit.const([np.nan], "unknown")
    for code, cond in pairs:
        out = emit.op(arith.SelectOp.build(cond(xj), emit.const([float(code)]), out, name="code"))
    return out


def _encoded_row(emit: Emit, est: Obj, x, n: int):
    """The row the trees read: x itself, or the categorical columns encoded and moved first."""
    pre = est.attr("_preprocessor", None)
    is_cat = est.attr("is_categorical_", None)
    if isinstance(pre, Obj):  # >= 1.4: ColumnTransformer(encoder=OrdinalEncoder on categorical, numerical rest)
        mask = np.asarray(is_cat, bool).reshape(-1)
        if mask.shape != (n,):
            emit.fail(est, f"is_categorical_ has shape {mask.shape}, expected ({n},)")
        enc = None
        for t in pre.attr("transformers_"):
            if isinstance(t, tuple) and t[0] == "encoder":
                enc = t[1]
        if not isinstance(enc, Obj) or enc.name != "OrdinalEncoder":
            emit.fail(est, "_preprocessor has no fitted OrdinalEncoder named 'encoder' (an unknown layout)")
        categories = enc.attr("categories_")
        cat_idx = np.flatnonzero(mask).tolist()
        if len(categories) != len(cat_idx):
            emit.fail(est, f"the encoder has {len(categories)} category lists for {len(cat_idx)} categorical features")
        cols = []
        for j, cats in zip(cat_idx, categories):
            cats = np.asarray(cats)
            if cats.dtype.kind not in "iufb":
                emit.fail(
                    est, f"feature {j} has categories {list(cats[:3])!r}...: Timber's rows are numbers, so only numeric categories compile"
                )
            cats = cats.astype(np.float64)
            cats = cats[~np.isnan(cats)]
            xj = emit.op(arith.ExtractOp.build(x, j, name=f"x{j}"))

            def eq(c):
                return lambda v: emit.op(arith.CmpFOp.build("oeq", v, emit.const([c])))

            cols.append(_code(emit, xj, [(i, eq(float(c))) for i, c in enumerate(cats.tolist())]))
        cols += [emit.op(arith.ExtractOp.build(x, j, name=f"x{j}")) for j in np.flatnonzero(~mask).tolist()]
        return emit.op(arith.ConcatOp.build(cols, name="encoded")) if len(cols) > 1 else cols[0]
    if is_cat is None or not np.any(np.asarray(is_cat, bool)):
        return x
    # < 1.4: raw integer categories; known ones from the bin mapper
    mapper = est.attr("_bin_mapper")
    known = mapper.attr("bin_thresholds_")
    mask = np.asarray(is_cat, bool).reshape(-1)
    cols = []
    for j in range(n):
        xj = emit.op(arith.ExtractOp.build(x, j, name=f"x{j}"))
        if not mask[j]:
            cols.append(xj)
            continue
        ks = np.asarray(known[j], np.float64)
        ks = ks[(ks >= 0) & (ks < 256)]

        def in_cat(k):
            def f(v):
                ge = emit.op(arith.CmpFOp.build("oge", v, emit.const([k])))
                lt = emit.op(arith.CmpFOp.build("olt", v, emit.const([k + 1.0])))
                return emit.op(arith.AndIOp.build(ge, lt))

            return f

        cols.append(_code(emit, xj, [(int(k), in_cat(float(k))) for k in ks.tolist()]))
    return emit.op(arith.ConcatOp.build(cols, name="encoded")) if len(cols) > 1 else cols[0]


def _raw(emit: Emit, est: Obj, x):
    n = int(est.attr("n_features_in_"))
    preds = est.attr("_predictors")
    if not isinstance(preds, list) or not preds:
        emit.fail(est, "_predictors is empty (is the estimator fitted?)")
    k = int(est.attr("n_trees_per_iteration_", len(preds[0])))
    row = _encoded_row(emit, est, x, n)
    base = np.asarray(est.attr("_baseline_prediction"), np.float64).reshape(-1)
    if base.shape != (k,):
        emit.fail(est, f"_baseline_prediction has {base.size} values for {k} trees per iteration")
    ens = EnsembleOp.build(row, k, f64, f64, f64, init=np.float64(0.0) + base, cat_negative="value", name="raw")
    for i, it in enumerate(preds):
        if not isinstance(it, list) or len(it) != k:
            emit.fail(est, f"_predictors[{i}] does not hold {k} predictors")
        for j, p in enumerate(it):
            ens.add_tree(_predictor_table(emit, est, p, n, f"_predictors[{i}][{j}]"), out=j)
    return emit.op(ens)


@converts("HistGradientBoostingRegressor", kind="regressor", methods=("predict",))
def hgb_regressor(emit: Emit, est: Obj, x, method):
    loss = est.param("loss")
    if loss not in _REG_LOSSES:
        emit.fail(
            est, f"loss '{loss}' is not supported; supported: {', '.join(k for k in _REG_LOSSES if '_' not in k or k.endswith('error'))}"
        )
    raw = _raw(emit, est, x)
    if _REG_LOSSES[loss] == "log":
        return emit.op(math.ExpOp.build(raw, name="prediction"))
    return raw


@converts("HistGradientBoostingClassifier", kind="classifier", methods=("predict_proba", "predict", "decision_function"))
def hgb_classifier(emit: Emit, est: Obj, x, method):
    loss = est.param("loss")
    if loss not in _CLF_LOSSES:
        emit.fail(est, f"loss '{loss}' is not supported; supported: log_loss")
    raw = _raw(emit, est, x)
    if method == "decision_function":
        return raw
    if method == "predict":
        return emit.labels(raw, est.attr("classes_"))
    return _gb_proba(emit, raw, "log_loss")
