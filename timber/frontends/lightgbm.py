"""LightGBM front-end: the text model format (v2, v3, v4) read directly, to a Timber module.

    module = load("model.txt")                 # a path, or the model text itself
    module = load(booster)                     # a lightgbm.Booster (or a fitted LGBMModel)
    module = load("model.txt", num_iteration=50)

The module follows `ir/CONVENTIONS.md`: `@margin` is `Booster.predict(X, raw_score=True)`,
`@predict` is `Booster.predict(X)`, both on one float64 row.  What LightGBM 4.7 computes, and
how each piece is spelled in the IR (read from `include/LightGBM/tree.h`, `src/c_api.cpp`,
`src/boosting/gbdt_prediction.cpp` and `src/objective/*.hpp`):

* Input: a float64 row.  Before any tree sees it, the dense predict path drops every value with
  `|x| <= kZeroThreshold` (1e-35f) from the row, so those values — and -0.0 — reach the trees
  as +0.0.  Split thresholds are rewritten so that plain comparisons on the raw value decide
  the same way (a threshold t in [-1e-35f, 0) becomes `x < -1e-35f`, one in [0, 1e-35f)
  becomes `x <= 1e-35f`); linear leaves, which multiply the value itself, get the zeroing
  spelled out as `arith` ops in front of the ensemble.
* Numerical split: `x <= threshold` in double goes left.  Missing type None: NaN becomes 0.0
  (`missing(nan-as-zero)`); Zero: NaN and |x| <= 1e-35f take the default child
  (`missing(zero)`); NaN: NaN takes the default child (`missing(nan)`).
* Categorical split: NaN goes right; `(int)x` (truncation) below 0 goes right (so -0.5 is
  category 0: `cat_negative = "code"`); a category in the bitset goes left; past the bitset,
  ±inf and values not below 2^31 go right.  The node's missing type is ignored, as LightGBM does.
  A tree with `num_cat=0` decides every node numerically, whatever its decision_type says.
* Linear leaves: `leaf_const + Σ coeff·x` over the leaf's features, in order; the plain leaf
  value if any of those x is NaN.
* Sum: every output starts at 0.0 and adds its trees in file order (trees of class k are
  interleaved: tree i belongs to output i mod num_tree_per_iteration).  `average_output`
  (boosting=rf) divides the sum by the number of iterations used before the transform; the
  raw score stays the plain sum.
* Objectives (`@predict`): binary `1/(1+exp(-α·s))`; multiclass softmax; multiclassova a
  sigmoid per class; cross_entropy sigmoid; poisson/gamma/tweedie `exp`; regression,
  regression_l1, fair, quantile, mape `sign(s)·s·s` when trained with `reg_sqrt` (objective
  `... sqrt`), else the raw score; huber, lambdarank, rank_xendcg and custom objectives
  (no `objective=` line) the raw score.  `exp` is Timber's own (`ir/dialects/mathimpl/exp.py`), which can
  differ from the C library's in the last bit; cross_entropy_lambda `log1p(exp(s))` with
  Timber's `exp` and `log1p` (the latter fdlibm's algorithm, as glibc computes it without FMA).
* `sigmoid:α` comes from the model text, which LightGBM prints with 6 significant digits.  A
  Booster still holding its training state (`keep_training_booster=True`) with an α that needs
  more (e.g. 1/3) predicts with the full value; every Booster read from text — which is what
  `lgb.train` returns by default — and Timber use the printed one.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field

import numpy as np

import ir.dialects  # noqa: F401  (registers every op)
from ir.diagnostics import Location, TimberError
from ir.dialects import arith, func, math
from ir.dialects.builtin import ModuleOp
from ir.dialects.tree import ZERO_THRESHOLD, EnsembleOp, Missing, NodeTable, Pred
from ir.types import TensorType, f64
from ir.verifier import verify

SUPPORTED_VERSIONS = ("v2", "v3", "v4")
# Objectives by the output transform `@predict` applies (names as LightGBM writes them).
SIGMOID_OBJECTIVES = ("binary", "multiclassova")
EXP_OBJECTIVES = ("poisson", "gamma", "tweedie")
SQRT_OBJECTIVES = ("regression", "regression_l1", "fair", "quantile", "mape")
RAW_OBJECTIVES = ("huber", "lambdarank", "rank_xendcg", "custom", "none")
SUPPORTED_OBJECTIVES = (
    SIGMOID_OBJECTIVES + ("multiclass", "cross_entropy", "cross_entropy_lambda") + EXP_OBJECTIVES + SQRT_OBJECTIVES + RAW_OBJECTIVES
)

_CATEGORICAL_MASK = 1
_DEFAULT_LEFT_MASK = 2
_MISSING_NONE, _MISSING_ZERO, _MISSING_NAN = 0, 1, 2


# ----- reading the text format -------------------------------------------------------------


@dataclass
class _Block:
    """`key=value` lines of the header or of one tree, with the line each came from."""

    line: int  # first line of the block (1-based)
    fields: dict[str, tuple[int, str]] = field(default_factory=dict)
    flags: set[str] = field(default_factory=set)  # bare words such as `average_output`


class _Source:
    """The model text split into lines, for parsing and for located diagnostics."""

    def __init__(self, text: str, name: str):
        self.text = text
        self.name = name
        self.lines = text.splitlines()

    def error(self, message: str, line: int, col: int = 1, notes=()):
        src = self.lines[line - 1] if 0 < line <= len(self.lines) else None
        raise TimberError(message, Location(self.name, line, col), src, notes)

    def field_error(self, block: _Block, key: str, message: str, token: int | None = None):
        """Raise at `key=` in `block` (at its `token`-th value when given)."""
        line, value = block.fields[key]
        text = self.lines[line - 1]
        col = text.find("=") + 2
        if token is not None:
            col = _token_col(text, col - 1, token)
        self.error(message, line, col)


def _token_col(text: str, start: int, token: int) -> int:
    """1-based column of the `token`-th whitespace-separated word of `text[start:]`."""
    pos, seen = start, -1
    while pos < len(text):
        while pos < len(text) and text[pos].isspace():
            pos += 1
        if pos >= len(text):
            break
        seen += 1
        if seen == token:
            return pos + 1
        while pos < len(text) and not text[pos].isspace():
            pos += 1
    return start + 1


def _split_blocks(src: _Source) -> tuple[_Block, list[tuple[int, _Block]], str | None]:
    """The header block, the `Tree=N` blocks (with N) and the pandas_categorical JSON text."""
    lines = src.lines
    first = next((i for i, s in enumerate(lines) if s.strip()), None)
    if first is None:
        raise TimberError("empty LightGBM model: the file has no text", Location(src.name, 1, 1))
    if lines[first].strip() != "tree":
        hint = (
            " (a JSON dump from dump_model() is not a model file; save with save_model())" if lines[first].lstrip().startswith("{") else ""
        )
        src.error(f"not a LightGBM text model: expected the first line to be 'tree'{hint}", first + 1)
    header = _Block(first + 1)
    trees: list[tuple[int, _Block]] = []
    current = header
    pandas = None
    ended = False
    for i in range(first + 1, len(lines)):
        s = lines[i].strip()
        no = i + 1
        if not s:
            continue
        if s.startswith("pandas_categorical:"):
            pandas = s[len("pandas_categorical:") :]
            continue
        if ended:
            continue  # feature importances and the parameters section: not needed to predict
        if s in ("end of trees", "feature importances:", "feature_importances:", "parameters:"):
            ended = True  # v2 files may go straight from the last tree to the feature importances
            continue
        if s.startswith("Tree="):
            try:
                n = int(s[5:])
            except ValueError:
                src.error(f"bad tree header '{s}': expected 'Tree=N'", no)
            current = _Block(no)
            trees.append((n, current))
            continue
        key, eq, value = s.partition("=")
        if not eq:
            current.flags.add(s)
            continue
        if key in current.fields:
            src.error(f"'{key}' appears twice in the same block (first at line {current.fields[key][0]})", no)
        current.fields[key] = (no, value)
    return header, trees, pandas


def _get(src: _Source, block: _Block, key: str, what: str) -> str:
    if key not in block.fields:
        src.error(f"{what} has no '{key}=' line", block.line)
    return block.fields[key][1]


def _int(src: _Source, block: _Block, key: str, what: str) -> int:
    text = _get(src, block, key, what)
    try:
        return int(text)
    except ValueError:
        src.field_error(block, key, f"{what}: '{key}' must be an integer, found '{text}'")


def _array(src: _Source, block: _Block, key: str, n: int, dtype, what: str) -> np.ndarray:
    """The `n` numbers of `key=` (dtype int64 or float64), with a located error when malformed."""
    text = _get(src, block, key, what) if n else block.fields.get(key, (0, ""))[1]
    words = text.split()
    if len(words) != n:
        src.field_error(block, key, f"{what}: '{key}' has {len(words)} values, expected {n}")
    try:
        return np.array([int(w) for w in words] if dtype is np.int64 else [float(w) for w in words], dtype=dtype)
    except ValueError:
        conv = int if dtype is np.int64 else float
        for j, w in enumerate(words):
            try:
                conv(w)
            except ValueError:
                kind = "an integer" if dtype is np.int64 else "a number"
                src.field_error(block, key, f"{what}: {key}[{j}] must be {kind}, found '{w}'", token=j)
        raise


# ----- one tree --------------------------------------------------------------------------


def _tree_table(src: _Source, block: _Block, t: int, n_features: int) -> NodeTable:
    """The IR node table of `Tree=t`: internal node i is row i, leaf j is row (num_leaves-1)+j."""
    what = f"Tree={t}"
    n_leaves = _int(src, block, "num_leaves", what)
    if n_leaves < 1:
        src.field_error(block, "num_leaves", f"{what}: num_leaves must be at least 1, found {n_leaves}")
    leaf_value = _array(src, block, "leaf_value", n_leaves, np.float64, what)
    linear = _linear_leaves(src, block, what, n_leaves, n_features)
    if n_leaves == 1:
        table = NodeTable.single_leaf(leaf_value, threshold_dtype=np.float64, leaf_dtype=np.float64)
        if linear is None:
            return table
        return NodeTable(
            table.feature, table.pred, table.threshold, table.yes, table.no, table.missing, table.default, table.leaf, **linear(0, 1)
        )

    n_int = n_leaves - 1
    feature = _array(src, block, "split_feature", n_int, np.int64, what)
    threshold = _array(src, block, "threshold", n_int, np.float64, what)
    decision = _array(src, block, "decision_type", n_int, np.int64, what)
    left = _array(src, block, "left_child", n_int, np.int64, what)
    right = _array(src, block, "right_child", n_int, np.int64, what)
    bad = np.flatnonzero((feature < 0) | (feature >= n_features))
    if len(bad):
        j = int(bad[0])
        src.field_error(block, "split_feature", f"{what}: split_feature[{j}] = {feature[j]} is out of range for {n_features} features", j)
    for key, kids in (("left_child", left), ("right_child", right)):
        bad = np.flatnonzero((kids >= n_int) | (kids < -n_leaves))
        if len(bad):
            j = int(bad[0])
            msg = f"{what}: {key}[{j}] = {kids[j]} names no node (internal nodes 0..{n_int - 1}, leaves -1..{-n_leaves})"
            src.field_error(block, key, msg, j)

    n = n_int + n_leaves
    rows = lambda kids: np.where(kids >= 0, kids, n_int + ~kids)  # noqa: E731  (leaf ~j is row n_int + j)
    yes = np.full(n, -1, np.int32)
    no = np.full(n, -1, np.int32)
    yes[:n_int], no[:n_int] = rows(left), rows(right)
    num_cat = _int(src, block, "num_cat", what) if "num_cat" in block.fields else 0
    categorical = ((decision & _CATEGORICAL_MASK) != 0) & (num_cat > 0)
    default_left = (decision & _DEFAULT_LEFT_MASK) != 0
    missing_type = (decision >> 2) & 3

    pred = np.full(n, Pred.LEAF, np.uint8)
    pred[:n_int] = np.where(categorical, Pred.IN, Pred.LE)
    thr = np.zeros(n, np.float64)
    thr[:n_int] = np.where(categorical, 0.0, threshold)
    _zero_threshold_rewrite(pred[:n_int], thr[:n_int], ~categorical)

    missing = np.zeros(n, np.uint8)
    default = np.full(n, -1, np.int32)
    kind = np.where(missing_type == _MISSING_ZERO, Missing.ZERO, np.where(missing_type == _MISSING_NAN, Missing.NAN, Missing.NAN_AS_ZERO))
    missing[:n_int] = np.where(categorical, Missing.NAN, kind)
    takes_default = categorical | (missing_type == _MISSING_ZERO) | (missing_type == _MISSING_NAN)
    # A categorical NaN goes right; a numerical missing value goes where default_left says.
    dflt = np.where(categorical | ~default_left, no[:n_int], yes[:n_int])
    default[:n_int] = np.where(takes_default, dflt, -1)

    cat = {}
    if categorical.any():
        cat = _category_sets(src, block, what, num_cat, threshold, categorical, n)
    leaf = np.zeros((n, 1), np.float64)
    leaf[n_int:, 0] = leaf_value
    feat = np.full(n, -1, np.int32)
    feat[:n_int] = feature
    lin = linear(n_int, n) if linear is not None else {}
    table = NodeTable(feat, pred, thr, yes, no, missing, default, leaf, **cat, **lin)
    problem = table.check(n_features)
    if problem:
        src.error(f"{what} is not a tree: {problem} (rows 0..{n_int - 1} are split nodes, then leaves)", block.line)
    return table


def _zero_threshold_rewrite(pred: np.ndarray, thr: np.ndarray, numerical: np.ndarray) -> None:
    """Make `x <= t` on the raw value decide as LightGBM does after zeroing |x| <= 1e-35f.

    Only thresholds within [-1e-35f, 1e-35f) can separate such an x from 0.0; for those, every
    x in [-1e-35f, 1e-35f] must go the way 0.0 goes."""
    low = numerical & (thr >= -ZERO_THRESHOLD) & (thr < 0.0)  # 0.0 goes right: left iff x < -1e-35f
    high = numerical & (thr >= 0.0) & (thr < ZERO_THRESHOLD)  # 0.0 goes left: left iff x <= 1e-35f
    pred[low] = Pred.LT
    thr[low] = -ZERO_THRESHOLD
    thr[high] = ZERO_THRESHOLD


def _category_sets(src, block, what, num_cat, threshold, categorical, n) -> dict:
    """cat_start/cat_len/cat_words columns: node i's set is the `int(threshold[i])`-th bitset."""
    bounds = _array(src, block, "cat_boundaries", num_cat + 1, np.int64, what)
    if bounds[0] != 0 or np.any(np.diff(bounds) < 0):
        src.field_error(block, "cat_boundaries", f"{what}: cat_boundaries must start at 0 and never decrease")
    words = _array(src, block, "cat_threshold", int(bounds[-1]), np.int64, what)
    bad = np.flatnonzero((words < 0) | (words >= 2**32))
    if len(bad):
        src.field_error(block, "cat_threshold", f"{what}: cat_threshold[{int(bad[0])}] is not a 32-bit word", int(bad[0]))
    start = np.zeros(n, np.int32)
    length = np.zeros(n, np.int32)
    for i in np.flatnonzero(categorical).tolist():
        k = int(threshold[i])
        if threshold[i] != k or not 0 <= k < num_cat:
            src.field_error(block, "threshold", f"{what}: categorical node {i} names bitset {threshold[i]!r}; the tree has {num_cat}", i)
        start[i], length[i] = bounds[k], bounds[k + 1] - bounds[k]
    return dict(cat_start=start, cat_len=length, cat_words=words.astype(np.uint32))


def _linear_leaves(src, block, what, n_leaves, n_features):
    """For an `is_linear=1` tree: a function (first leaf row, rows) -> the NodeTable lin_* columns."""
    if "is_linear" not in block.fields or _int(src, block, "is_linear", what) == 0:
        return None
    const = _array(src, block, "leaf_const", n_leaves, np.float64, what)
    counts = _array(src, block, "num_features", n_leaves, np.int64, what)
    if np.any(counts < 0):
        src.field_error(block, "num_features", f"{what}: num_features must not be negative")
    total = int(counts.sum())
    feats = _array(src, block, "leaf_features", total, np.int64, what)
    coeffs = _array(src, block, "leaf_coeff", total, np.float64, what)
    bad = np.flatnonzero((feats < 0) | (feats >= n_features))
    if len(bad):
        j = int(bad[0])
        src.field_error(block, "leaf_features", f"{what}: leaf_features[{j}] = {feats[j]} is out of range for {n_features} features", j)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])

    def columns(first_leaf_row: int, n_rows: int) -> dict:
        lin_const = np.zeros(n_rows, np.float64)
        lin_start = np.zeros(n_rows, np.int32)
        lin_len = np.zeros(n_rows, np.int32)
        lin_const[first_leaf_row:] = const
        lin_start[first_leaf_row:] = starts
        lin_len[first_leaf_row:] = counts
        return dict(lin_const=lin_const, lin_start=lin_start, lin_len=lin_len, lin_feature=feats.astype(np.int32), lin_coeff=coeffs)

    return columns


# ----- objective -----------------------------------------------------------------------


@dataclass
class _Objective:
    name: str
    params: dict[str, str]
    flags: set[str]


def _objective(src: _Source, header: _Block) -> _Objective:
    if "objective" not in header.fields:
        return _Objective("custom", {}, set())  # a custom objective leaves no line: raw scores
    words = header.fields["objective"][1].split()
    if not words:
        src.field_error(header, "objective", "empty objective")
    params = {}
    flags = set()
    for w in words[1:]:
        k, sep, v = w.partition(":")
        if sep:
            params[k] = v
        else:
            flags.add(w)
    obj = _Objective(words[0], params, flags)
    if obj.name not in SUPPORTED_OBJECTIVES:
        msg = f"unsupported LightGBM objective '{obj.name}'"
        src.field_error(header, "objective", msg + f"; supported: {', '.join(SUPPORTED_OBJECTIVES)}")
    return obj


def _sigmoid_alpha(src: _Source, header: _Block, obj: _Objective) -> float:
    text = obj.params.get("sigmoid")
    try:
        alpha = float(text) if text is not None else float("nan")
    except ValueError:
        alpha = float("nan")
    if not alpha > 0.0 or not np.isfinite(alpha):
        src.field_error(header, "objective", f"objective '{obj.name}' needs 'sigmoid:α' with α > 0, found {text!r}")
    return alpha


# ----- building the module ---------------------------------------------------------------


def _const(block, values, type_: TensorType, name: str):
    return block.add_op(arith.ConstantOp.build(np.asarray(values, np.float64).reshape(type_.shape), type_, name=name)).result


def _zero_tiny(block, x, n_features: int):
    """x with every |x_j| <= 1e-35f (and -0.0) replaced by +0.0, NaN kept: LightGBM's dense predict."""
    t = TensorType((n_features,), f64)
    hi = _const(block, np.full(n_features, ZERO_THRESHOLD), t, "zero_hi")
    lo = _const(block, np.full(n_features, -ZERO_THRESHOLD), t, "zero_lo")
    zero = _const(block, np.zeros(n_features), t, "zero")
    not_above = block.add_op(arith.CmpFOp.build("ole", x, hi, name="not_above")).result
    not_below = block.add_op(arith.CmpFOp.build("oge", x, lo, name="not_below")).result
    inner = block.add_op(arith.SelectOp.build(not_below, zero, x, name="x_lo")).result
    return block.add_op(arith.SelectOp.build(not_above, inner, x, name="x_zeroed")).result


def _transform(block, obj: _Objective, margin, k: int, alpha: float):
    """The objective's ConvertOutput on the margin, as IR ops; returns the result value."""
    t = TensorType((k,), f64)
    name = obj.name
    if name in SIGMOID_OBJECTIVES or name == "cross_entropy":
        s = margin
        if alpha != 1.0:  # -α·s rounds like -(α·s); α = 1 would be an exact no-op
            s = block.add_op(arith.MulFOp.build(margin, _const(block, np.full(k, alpha), t, "alpha"), name="scaled")).result
        return block.add_op(math.SigmoidOp.build(s, name="proba")).result
    if name == "multiclass":
        return block.add_op(math.SoftmaxOp.build(margin, name="proba", acc=f64)).result
    if name in EXP_OBJECTIVES:
        return block.add_op(math.ExpOp.build(margin, name="pred")).result
    if name == "cross_entropy_lambda":
        # CrossEntropyLambda::ConvertOutput: log1p(exp(s)), the "lambda" of p = 1 - exp(-lambda·w)
        e = block.add_op(math.ExpOp.build(margin, name="exp")).result
        return block.add_op(math.Log1pOp.build(e, name="lambda")).result
    if name in SQRT_OBJECTIVES and "sqrt" in obj.flags:
        # Common::Sign(s) * s * s: +s·s for s >= 0 (and ±0), -(s·s) for s < 0, exactly.
        sq = block.add_op(arith.MulFOp.build(margin, margin, name="sq")).result
        neg = block.add_op(arith.NegFOp.build(sq, name="neg_sq")).result
        below = block.add_op(arith.CmpFOp.build("olt", margin, _const(block, np.zeros(k), t, "zero"), name="negative")).result
        return block.add_op(arith.SelectOp.build(below, neg, sq, name="pred")).result
    return margin


def _build_module(src, header, tables, n_features, k, n_iter, obj, alpha, average, linear, pandas) -> ModuleOp:
    x_t = TensorType((n_features,), f64)
    out_t = TensorType((k,), f64)
    feature_names = _get(src, header, "feature_names", "the header").split() if "feature_names" in header.fields else []
    infos = header.fields.get("feature_infos", (0, ""))[1].split()
    types = ["c" if (s != "none" and not s.startswith("[")) else "q" for s in infos]
    attrs = {
        "timber.format": "lightgbm",
        "timber.source": src.name,
        "timber.lightgbm_version": header.fields["version"][1],
        "timber.objective": header.fields["objective"][1] if "objective" in header.fields else "custom",
        "timber.num_iteration": n_iter,
    }
    if len(feature_names) == n_features:
        attrs["timber.feature_names"] = feature_names
    if len(types) == n_features:
        attrs["timber.feature_types"] = types
    if pandas is not None and pandas.strip() not in ("", "null"):
        attrs["timber.pandas_categorical"] = pandas.strip()
    module = ModuleOp.build(attrs)

    margin_fn = func.FuncOp.build("margin", [x_t], [out_t], arg_names=["x"])
    body = margin_fn.body
    x = margin_fn.args[0]
    xin = _zero_tiny(body, x, n_features) if linear else x
    ens = EnsembleOp.build(xin, k, f64, f64, f64, init=np.zeros(k), cat_negative="code", name="margin")
    for i, table in enumerate(tables):
        ens.add_tree(table, out=i % k)
    body.add_op(func.ReturnOp(operands=[body.add_op(ens).result]))
    module.body.add_op(margin_fn)

    pred_fn = func.FuncOp.build("predict", [x_t], [out_t], arg_names=["x"])
    pb = pred_fn.body
    m = pb.add_op(func.CallOp.build(margin_fn, [pred_fn.args[0]], name="margin")).result
    if average:
        # boosting=rf: GBDT::Predict divides the raw sum by num_iteration_for_pred_ before the
        # objective's transform; the raw score (PredictRaw) stays the plain sum.
        n_t = _const(pb, np.full(k, float(n_iter)), out_t, "n_iter")
        m = pb.add_op(arith.DivFOp.build(m, n_t, name="average")).result
    out = _transform(pb, obj, m, k, alpha)
    pb.add_op(func.ReturnOp(operands=[out]))
    module.body.add_op(pred_fn)
    return module


# ----- entry point -----------------------------------------------------------------------


def _read(model, source_name: str | None, num_iteration: int | None) -> tuple[str, str]:
    """(model text, source name) from a path, the text itself, bytes, or a Booster."""
    if isinstance(model, (bytes, bytearray)):
        return bytes(model).decode("utf-8", errors="replace"), source_name or "<bytes>"
    if isinstance(model, os.PathLike) or (isinstance(model, str) and "\n" not in model):
        path = os.fspath(model)
        try:
            with open(path, encoding="utf-8", errors="replace") as f:
                return f.read(), source_name or path
        except OSError as e:
            raise TimberError(f"cannot read LightGBM model '{path}': {e.strerror or e}") from None
    if isinstance(model, str):
        return model, source_name or "<string>"
    booster = getattr(model, "booster_", model)  # a fitted sklearn-API LGBMModel holds its Booster
    try:
        import lightgbm
    except ImportError:
        lightgbm = None
    if lightgbm is None or not isinstance(booster, lightgbm.Booster):
        raise TimberError(f"cannot load a {type(model).__name__} as a LightGBM model: pass a path, the model text or a lightgbm.Booster")
    # Booster.predict() uses the best iteration when there is one; so does model_to_string().
    text = booster.model_to_string(num_iteration=-1 if num_iteration is not None else None)
    return text, source_name or "<lightgbm.Booster>"


def load(model, *, source_name: str | None = None, num_iteration: int | None = None) -> ModuleOp:
    """Compile a LightGBM model to a verified Timber module (`@margin`, `@predict`).

    `model`: a path, the model text, or a `lightgbm.Booster` / fitted `LGBMModel`.
    `num_iteration`: use only the first iterations, like `Booster.predict(num_iteration=...)`
    (None or <= 0: all of them; for a Booster, None means its best iteration as in `predict`).
    Raises `TimberError` naming the file, line and construct for anything malformed or unsupported.
    """
    text, name = _read(model, source_name, num_iteration)
    src = _Source(text, name)
    header, trees, pandas = _split_blocks(src)
    version = _get(src, header, "version", "the header")
    if version not in SUPPORTED_VERSIONS:
        src.field_error(header, "version", f"unsupported LightGBM model version '{version}'; supported: {', '.join(SUPPORTED_VERSIONS)}")
    n_features = _int(src, header, "max_feature_idx", "the header") + 1
    if n_features < 1:
        src.field_error(header, "max_feature_idx", f"max_feature_idx must be at least 0, found {n_features - 1}")
    k = _int(src, header, "num_tree_per_iteration", "the header") if "num_tree_per_iteration" in header.fields else 1
    num_class = _int(src, header, "num_class", "the header") if "num_class" in header.fields else 1
    if k < 1:
        src.field_error(header, "num_tree_per_iteration", f"num_tree_per_iteration must be at least 1, found {k}")
    obj = _objective(src, header)
    if obj.name in ("multiclass", "multiclassova") and not (num_class == k == _param_int(obj, "num_class")):
        src.field_error(
            header, "objective", f"objective '{obj.name}' with num_class {num_class} and {k} trees per iteration: they must agree"
        )
    if obj.name not in ("multiclass", "multiclassova") and k != 1:
        src.field_error(
            header,
            "num_tree_per_iteration",
            f"objective '{obj.name}' with {k} trees per iteration; only multiclass models have more than 1",
        )
    alpha = _sigmoid_alpha(src, header, obj) if obj.name in SIGMOID_OBJECTIVES else 1.0

    if not trees:
        src.error("the model has no trees", header.line)
    for pos, (n, block) in enumerate(trees):
        if n != pos:
            src.error(f"trees are out of order: found Tree={n} where Tree={pos} was expected", block.line)
    if len(trees) % k:
        src.error(f"{len(trees)} trees is not a whole number of iterations of {k} trees", trees[-1][1].line)
    total_iter = len(trees) // k
    n_iter = total_iter if num_iteration is None or num_iteration <= 0 else min(int(num_iteration), total_iter)
    used = trees[: n_iter * k]
    tables = [_tree_table(src, block, n, n_features) for n, block in used]
    # Checked after the trees, so that a file cut short reports the tree it was cut in.
    sizes = header.fields.get("tree_sizes", (0, None))[1]
    if sizes is not None and len(sizes.split()) != len(trees):
        msg = f"tree_sizes lists {len(sizes.split())} trees but the file holds {len(trees)} (LightGBM refuses such a file)"
        src.field_error(header, "tree_sizes", msg)
    linear = any(t.is_linear for t in tables)
    module = _build_module(src, header, tables, n_features, k, n_iter, obj, alpha, "average_output" in header.flags, linear, pandas)
    verify(module)
    return module


def _param_int(obj: _Objective, key: str) -> int | None:
    try:
        return int(obj.params[key])
    except (KeyError, ValueError):
        return None


def pandas_categories(module: ModuleOp) -> list | None:
    """The `pandas_categorical` levels a LightGBM module was trained with (None if none).

    `Booster.predict` on a numpy array takes the integer codes of these levels, as does Timber."""
    a = module.attributes.get("timber.pandas_categorical")
    return json.loads(a.value) if a is not None else None
