"""Shared helpers of the part-B sklearn tests (linear, SVM, KNN, naive Bayes, MLP, transformers):
compile a live estimator once per method and compare with scikit-learn's own call."""

from __future__ import annotations

import numpy as np

import timber
from ir.dialects.builtin import ModuleOp


def _reduce(v):
    """A live object as the front-end's inert records (used until `unpickle.from_estimator` exists)."""
    from timber.frontends.sklearn.registry import Obj

    if hasattr(v, "get_params") and hasattr(v, "__dict__"):
        t = type(v)
        return Obj(f"{t.__module__}.{t.__qualname__}", {k: _reduce(x) for k, x in vars(v).items()})
    if isinstance(v, list):
        return [_reduce(x) for x in v]
    if isinstance(v, tuple):
        return tuple(_reduce(x) for x in v)
    if isinstance(v, dict):
        return {k: _reduce(x) for k, x in v.items()}
    return v


def module_of(est, method: str | None = None) -> ModuleOp:
    from timber.frontends import sklearn as sk

    try:
        from timber.frontends.sklearn import unpickle  # noqa: F401
    except ImportError:
        return sk.build_module(_reduce(est), "<estimator>", method)
    return sk.load(est, method=method)


def compile_est(est, method: str | None = None, **kw):
    return timber.compile(module_of(est, method), **kw)


def finite_rows(n_features: int, n: int = 300, seed: int = 0, scale: float = 1.0) -> np.ndarray:
    """Random rows plus the finite edge cases scikit-learn accepts: ±0.0, huge and tiny values,
    a row of zeros and one of -0.0 (scikit-learn refuses NaN and ±inf for these estimators)."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, n_features)) * scale
    edge = [0.0, -0.0, 1e-300, -1e-300, 5e-324, 1e10, -1e10, 1e150, -1e150]
    rows = []
    for j in range(n_features):
        for v in edge:
            r = X[len(rows) % n].copy()
            r[j] = v
            rows.append(r)
    rows += [np.zeros(n_features), np.full(n_features, -0.0)]
    return np.vstack([X, np.array(rows)])


def max_rel_error(ours: np.ndarray, theirs: np.ndarray, scale: np.ndarray) -> float:
    """max |ours - theirs| / scale over finite entries (ours must be NaN/inf exactly where theirs is)."""
    ours, theirs = np.asarray(ours, np.float64), np.asarray(theirs, np.float64)
    assert ours.shape == theirs.shape, (ours.shape, theirs.shape)
    fin = np.isfinite(theirs)
    np.testing.assert_array_equal(ours[~fin], theirs[~fin])
    scale = np.broadcast_to(scale, theirs.shape)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.abs(ours[fin] - theirs[fin]) / np.maximum(scale[fin], np.finfo(float).tiny)
    return float(r.max()) if r.size else 0.0


def dot_scale(X: np.ndarray, W: np.ndarray, b) -> np.ndarray:
    """Σ_j |x_j w_kj| + |b_k| per row and output: what the rounding error of a dot product
    (any summation order) is proportional to."""
    W = np.atleast_2d(W)
    s = np.abs(X) @ np.abs(W).T + np.abs(np.asarray(b, np.float64).reshape(-1))
    return s[:, 0] if s.shape[1] == 1 else s


def interp(est, method: str | None, X: np.ndarray) -> np.ndarray:
    """The interpreter's output with the C library's math (what the JIT calls by default), shaped
    as `CompiledModel.predict` shapes it (one column -> (n,))."""
    from ir.interpreter import run

    out = run(module_of(est, method), X, math="libm")
    return out.reshape(-1) if out.shape[1] == 1 else out
