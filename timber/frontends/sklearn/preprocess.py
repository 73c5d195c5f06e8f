"""scikit-learn transformers: scalers, Normalizer, PCA, TruncatedSVD, SimpleImputer, PolynomialFeatures.

Each `transform` is written as the same float operations scikit-learn applies, in its order, so
scalers, imputers and polynomial features are bit-exact (NaN passes through the scalers as in
scikit-learn, which accepts it there).  Scalers emit `arith.subf`/`arith.mulf`/`arith.addf`/
`arith.divf` by constant vectors, the chain `linear-fuse-scaler` and `tree-fuse-scaler` fold into
a following linear model or tree ensemble.  PCA and TruncatedSVD project with BLAS in
scikit-learn (`X @ components_.T`), here a `linear.affine`: equal up to the rounding of a dot
product (see `linear.py`); their other steps (the projected mean, whitening scales) are computed
at compile time with the very numpy expressions scikit-learn evaluates, so they are its bits.
"""

from __future__ import annotations

import numpy as np

from ir.core import Value
from ir.dialects import arith
from ir.types import TensorType, f64, i64

from .linear import bcast, binop, check_features, concat, dot, extract, np_row_sum, row_max, select, sqrt, width
from .registry import Emit, Obj, converts

EPS = float(np.finfo(np.float64).eps)


def _vec(est: Obj, key: str, n: int, emit: Emit) -> np.ndarray:
    raw = np.asarray(est.attr(key))
    if raw.dtype == object:  # SimpleImputer(strategy="constant") keeps its fill values as objects
        try:
            raw = raw.astype(np.float64)
        except (TypeError, ValueError):
            emit.fail(est, f"{key} holds values that are not numbers")
        a = raw.reshape(-1)
    else:
        a = est.array(key).reshape(-1)
    if a.shape != (n,):
        emit.fail(est, f"{key} has {a.size} values for {n} features")
    return a


def inplace(emit: Emit, cls, x: Value, c: np.ndarray, name: str, cast: bool = False) -> Value:
    """`X <op>= c` on scikit-learn's copy of the rows: computed in the promoted type, stored in
    the rows' dtype (float32 rows: rounded to float32 whatever `c`'s dtype); `cast`: `c` is first
    cast to the rows' dtype (`X -= xp.astype(mean_, X.dtype)`)."""
    if cast and emit.is32(x):
        c = np.asarray(c, np.float64).astype(np.float32)
    r = binop(emit, cls, x, emit.const(c, name.split("_")[0]), name=name)
    return emit.round32(r) if emit.is32(x) else r


def _clip(emit: Emit, v: Value, lo: float, hi: float) -> Value:
    """`np.clip(v, lo, hi)`: NaN stays NaN."""
    v = binop(emit, arith.MaximumFOp, v, emit.const([lo], "lo"))
    return binop(emit, arith.MinimumFOp, v, emit.const([hi], "hi"), name="clipped")


@converts("StandardScaler", kind="transformer", methods=("transform",))
def standard_scaler(emit: Emit, est: Obj, x: Value, method: str | None) -> Value:
    """`X -= mean_` (with_mean), then `X /= scale_` (with_std)."""
    n = width(x)
    if est.param("with_mean", True) and est.attr("mean_", None) is not None:
        x = inplace(emit, arith.SubFOp, x, _vec(est, "mean_", n, emit), "mean_centered", cast=True)
    if est.param("with_std", True) and est.attr("scale_", None) is not None:
        x = inplace(emit, arith.DivFOp, x, _vec(est, "scale_", n, emit), "scale_scaled", cast=True)
    return x


@converts("RobustScaler", kind="transformer", methods=("transform",))
def robust_scaler(emit: Emit, est: Obj, x: Value, method: str | None) -> Value:
    """`X -= center_` (with_centering), then `X /= scale_` (with_scaling)."""
    n = width(x)
    if est.param("with_centering", True):
        x = inplace(emit, arith.SubFOp, x, _vec(est, "center_", n, emit), "center_centered")
    if est.param("with_scaling", True):
        x = inplace(emit, arith.DivFOp, x, _vec(est, "scale_", n, emit), "scale_scaled")
    return x


@converts("MinMaxScaler", kind="transformer", methods=("transform",))
def min_max_scaler(emit: Emit, est: Obj, x: Value, method: str | None) -> Value:
    """`X *= scale_; X += min_`, then clipped to `feature_range` when `clip`."""
    n = width(x)
    x = inplace(emit, arith.MulFOp, x, _vec(est, "scale_", n, emit), "scale_scaled")
    x = inplace(emit, arith.AddFOp, x, _vec(est, "min_", n, emit), "min_shifted")
    if est.param("clip", False):
        lo, hi = (float(v) for v in est.param("feature_range", (0, 1)))
        x = _clip(emit, x, lo, hi)
    return x


@converts("MaxAbsScaler", kind="transformer", methods=("transform",))
def max_abs_scaler(emit: Emit, est: Obj, x: Value, method: str | None) -> Value:
    """`X /= scale_`, then clipped to [-1, 1] when `clip` (scikit-learn ≥ 1.8)."""
    x = inplace(emit, arith.DivFOp, x, _vec(est, "scale_", width(x), emit), "scale_scaled")
    if est.param("clip", False):
        x = _clip(emit, x, -1.0, 1.0)
    return x


def fabs(emit: Emit, v: Value) -> Value:
    """|v| by clearing the sign bit (`np.abs`: -0.0 becomes 0.0, NaN stays NaN)."""
    n = width(v)
    bits = emit.op(arith.BitcastOp.build(v, TensorType((n,), i64)))
    mask = emit.const(np.full(n, 0x7FFF_FFFF_FFFF_FFFF, np.int64), "abs_mask", dtype=np.int64)
    cleared = emit.op(arith.AndIOp.build(bits, mask))
    out = emit.op(arith.BitcastOp.build(cleared, TensorType((n,), f64), name="abs"))
    if emit.is32(v):
        emit.f32.add(out)
    return out


@converts("Normalizer", kind="transformer", methods=("transform",))
def normalizer(emit: Emit, est: Obj, x: Value, method: str | None) -> Value:
    """`X / norms[:, None]`, norms: l1 `np.abs(X).sum(1)`, max `np.abs(X).max(1)`, l2
    `sqrt(einsum('ij,ij->i', X, X))`; a norm below 10·eps (of the rows' dtype) divides by 1
    (`_handle_zeros_in_scale`).  Float32 rows: every step in float32 (l1 and max exactly; l2's
    einsum accumulates in its own SIMD order, here numpy's pairwise order)."""
    norm = est.param("norm", "l2")
    if norm == "l1":
        s = np_row_sum(emit, fabs(emit, x), "norm")
    elif norm == "max":
        s = row_max(emit, fabs(emit, x), "norm")
    elif norm == "l2":
        # einsum's summation order is numpy's SIMD loop's: a left-to-right sum is within rounding of it
        sq = binop(emit, arith.MulFOp, x, x, name="squares")
        s = sqrt(emit, np_row_sum(emit, sq, "sq_norm"), name="norm")
    else:
        emit.fail(est, f"unknown norm {norm!r}; supported: l1, l2, max")
    eps = float(np.finfo(np.float32).eps) if emit.is32(x) else EPS
    small = emit.op(arith.CmpFOp.build("olt", s, emit.const([10 * eps], "ten_eps"), name="constant"))
    s = select(emit, small, emit.const([1.0], "one"), s, name="norm")
    return binop(emit, arith.DivFOp, x, bcast(emit, s, width(x)), name="normalized")


def _projection(emit: Emit, est: Obj, x: Value) -> tuple[Value, np.ndarray]:
    comp = est.floats("components_", ndim=2)
    if not np.all(np.isfinite(comp)):
        emit.fail(est, "components_ holds NaN or infinite values")
    check_features(emit, est, x, comp.shape[1], "components_")
    return dot(emit, x, comp, name="projected"), comp


@converts("PCA", "IncrementalPCA", kind="transformer", methods=("transform",))
def pca(emit: Emit, est: Obj, x: Value, method: str | None) -> Value:
    """`X @ components_.T - mean_ @ components_.T`, divided by `sqrt(explained_variance_)`
    (clipped below at the eps of its dtype) when `whiten`.  The constants are computed in the
    attributes' own precision (float32 for a PCA fitted on float32 data), as scikit-learn does."""
    y, comp = _projection(emit, est, x)
    mean = est.attr("mean_", None)
    if mean is not None:
        mean = est.floats("mean_").reshape(-1)
        if mean.shape != (comp.shape[1],):
            emit.fail(est, f"mean_ has {mean.size} values for {comp.shape[1]} features")
        offset = (np.reshape(mean, (1, -1)) @ comp.T).reshape(-1)  # scikit-learn's own product, same shapes and dtypes
        y = binop(emit, arith.SubFOp, y, emit.const(offset, "mean_projected"), name="centered")
    if est.param("whiten", False):
        scale = np.sqrt(est.floats("explained_variance_").reshape(-1))
        if scale.shape != (comp.shape[0],):
            emit.fail(est, f"explained_variance_ has {scale.size} values for {comp.shape[0]} components")
        eps = np.finfo(scale.dtype).eps
        scale[scale < eps] = eps
        y = binop(emit, arith.DivFOp, y, emit.const(scale, "whiten_scale"), name="whitened")
    return y


@converts("TruncatedSVD", kind="transformer", methods=("transform",))
def truncated_svd(emit: Emit, est: Obj, x: Value, method: str | None) -> Value:
    """`X @ components_.T`."""
    return _projection(emit, est, x)[0]


def missing_mask(emit: Emit, est: Obj, x: Value, missing) -> Value:
    """`_get_mask(X, missing_values)`: NaN for a NaN marker, else `X == missing_values`."""
    if missing is None or (isinstance(missing, float) and np.isnan(missing)):
        return emit.op(arith.CmpFOp.build("uno", x, x, name="missing"))
    try:
        m = float(missing)
    except (TypeError, ValueError):
        emit.fail(est, f"missing_values={missing!r} is not a number")
    return emit.op(arith.CmpFOp.build("oeq", x, emit.const(np.full(width(x), m), "marker"), name="missing"))


def select_columns(emit: Emit, v: Value, columns, name: str) -> Value:
    cols = [int(c) for c in columns]
    if cols == list(range(width(v))):
        return v
    return concat(emit, [extract(emit, v, c) for c in cols], name=name)


@converts("SimpleImputer", kind="transformer", methods=("transform",))
def simple_imputer(emit: Emit, est: Obj, x: Value, method: str | None) -> Value:
    """Missing entries (`missing_values`) replaced by `statistics_`; features whose statistic is
    NaN dropped (unless `keep_empty_features`); `add_indicator` appends the missing mask (1.0/0.0)
    of the indicator's `features_`."""
    n = width(x)
    stats = _vec(est, "statistics_", n, emit)
    if est.param("strategy", "mean") not in ("mean", "median", "most_frequent", "constant"):
        emit.fail(est, f"strategy {est.param('strategy')!r} is not supported; supported: mean, median, most_frequent, constant")
    mask = missing_mask(emit, est, x, est.param("missing_values", np.nan))
    keep = np.arange(n) if est.param("keep_empty_features", False) else np.flatnonzero(~np.isnan(stats))
    fill = np.nan_to_num(stats, nan=0.0)
    fill_dtype = est.attr("_fill_dtype", None)  # statistics_.astype(_fill_dtype): the fitted data's dtype
    if isinstance(fill_dtype, np.dtype) and fill_dtype.kind == "f":
        fill = fill.astype(fill_dtype)
    filled = emit.op(
        arith.SelectOp.build(mask, emit.const(fill.astype(np.float32) if emit.is32(x) else fill, "statistics"), x, name="imputed")
    )
    if emit.is32(x):  # X[mask] = statistics_ stores into the float32 rows
        emit.f32.add(filled)
    out = select_columns(emit, filled, keep, "imputed")
    if est.param("add_indicator", False):
        ind = est.attr("indicator_")
        feats = ind.array("features_", dtype=np.int64, ndim=1) if isinstance(ind, Obj) else None
        if feats is None or np.any((feats < 0) | (feats >= n)):
            emit.fail(est, "indicator_.features_ is missing or out of range")
        flags = emit.op(arith.SelectOp.build(mask, emit.const(np.ones(n), "one"), emit.const(np.zeros(n), "zero"), name="indicator"))
        if emit.is32(x):  # the boolean indicator stacked beside float32 columns becomes float32
            emit.f32.add(flags)
        out = concat(emit, [out, select_columns(emit, flags, feats, "indicator")], name="imputed")
    return out


@converts("PolynomialFeatures", kind="transformer", methods=("transform",))
def polynomial_features(emit: Emit, est: Obj, x: Value, method: str | None) -> Value:
    """scikit-learn's dense loop: the degree-d columns are the degree-(d-1) columns times one
    feature (`XP[:, start:end] * X[:, f]`), in its column order; then the degree range is cut."""
    n = width(x)
    max_deg = int(est.attr("_max_degree", est.param("degree", 2) if isinstance(est.param("degree", 2), int) else -1))
    min_deg = int(est.attr("_min_degree", 0))
    if max_deg < 0:
        emit.fail(est, "_max_degree is missing (is the estimator fitted?)")
    bias, inter = bool(est.param("include_bias", True)), bool(est.param("interaction_only", False))
    feats = [extract(emit, x, f) for f in range(n)]
    one = emit.const([1.0], "one")
    cols: list[Value] = [one] if bias else []
    if max_deg > 0:
        current = len(cols)
        cols += feats
        index = list(range(current, current + n)) + [current + n]
        current += n
        for _ in range(2, max_deg + 1):
            new_index = []
            end = index[-1]
            for f in range(n):
                start = index[f]
                new_index.append(current)
                if inter:
                    start += index[f + 1] - index[f]
                nxt = current + end - start
                if nxt <= current:
                    break
                cols += [binop(emit, arith.MulFOp, cols[c], feats[f]) for c in range(start, end)]
                current = nxt
            new_index.append(current)
            index = new_index
    if min_deg > 1:
        n_out = int(est.attr("n_output_features_"))
        cols = ([one] if bias else []) + cols[len(cols) - n_out + bias :]
    expect = est.attr("n_output_features_", None)
    if expect is not None and int(expect) != len(cols):
        emit.fail(est, f"computes {len(cols)} output features but n_output_features_ is {int(expect)}")
    if not cols:
        emit.fail(est, "produces no output features")
    out = concat(emit, cols, name="poly")
    return emit.round32(out) if emit.is32(x) else out  # XP has X's dtype (the values are float32 already)
