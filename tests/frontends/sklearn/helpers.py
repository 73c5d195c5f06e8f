"""Shared helpers of the scikit-learn front-end tests: compile once, adversarial rows, and the
comparison with scikit-learn's own call (which refuses some rows: those are left out).

    module = module_of(est, "predict_proba")          # the verified Timber module
    X = parity_rows(module, seed=0)                   # adversarial rows (tests/rows.py) + random ones
    X, ref = reference(est, "predict_proba", X)       # sklearn's answer, on the rows it accepts
    np.testing.assert_array_equal(predict(module, X), ref)

`predict` runs the IR interpreter with the C library's math (what the JIT calls by default), so
most parity checks need no compile; `compiled(est)` compiles once for the JIT checks.
"""

from __future__ import annotations

import numpy as np

import timber
from ir.interpreter import run
from tests.rows import adversarial_rows


def module_of(est, method: str | None = None):
    """The verified module of a live estimator (through the front-end's one code path)."""
    from timber.frontends import sklearn as sk

    return sk.load(est, method=method)


def compiled(est, method: str | None = None, **kw):
    """A CompiledModel (the JIT) of a live estimator."""
    return timber.compile(est, **({"method": method} if method else {}), **kw)


def predict(module, X: np.ndarray) -> np.ndarray:
    """The interpreter's @predict on X, shaped as CompiledModel.predict shapes it."""
    out = run(module, np.asarray(X, np.float64), math="libm")
    return out.reshape(-1) if out.shape[1] == 1 else out


def parity_rows(module, seed: int = 0, n_random: int = 300, scale: float = 2.0) -> np.ndarray:
    """Adversarial rows of the module's trees (thresholds and their float32/float64 neighbours,
    NaN, ±0.0, ±inf, float32 extremes) followed by random normal rows."""
    rng = np.random.default_rng(seed)
    A = adversarial_rows(module, n_mixed=128, seed=seed)
    return np.vstack([A, rng.standard_normal((n_random, A.shape[1])) * scale])


def reference(est, method: str, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(rows, est.<method>(rows)): all of X when scikit-learn accepts it; else without the rows
    it refuses (NaN where the estimator does not take missing values, ±inf and values that
    overflow float32 for trees, which scikit-learn rejects with a ValueError)."""
    fn = getattr(est, method)
    try:
        return X, fn(X)
    except ValueError:
        pass
    with np.errstate(invalid="ignore"):
        ok = np.all(np.isnan(X) | (np.abs(X) <= np.finfo(np.float32).max), axis=1)
    try:
        return X[ok], fn(X[ok])
    except ValueError:
        ok &= ~np.isnan(X).any(axis=1)
        return X[ok], fn(X[ok])


def as_hstack(ref) -> np.ndarray:
    """A multi-output classifier's list of per-output probabilities, side by side."""
    return np.hstack(ref) if isinstance(ref, list) else ref


def assert_parity(est, method: str | None = None, *, X: np.ndarray | None = None, module=None, seed: int = 0) -> np.ndarray:
    """est.<method> == Timber's @predict bit for bit (same shape) on adversarial and random rows;
    returns the rows compared."""
    module = module if module is not None else module_of(est, method)
    name = method or default_method(est)
    X = parity_rows(module, seed=seed) if X is None else X
    X, ref = reference(est, name, X)
    ref = as_hstack(ref)
    got = predict(module, X)
    assert got.shape == np.shape(ref), (got.shape, np.shape(ref))
    np.testing.assert_array_equal(got, np.asarray(ref, np.float64))
    return X


def default_method(est) -> str:
    """The method Timber compiles when none is given."""
    if hasattr(est, "predict_proba"):
        try:
            est.predict_proba  # noqa: B018  (raises AttributeError when unavailable)
            return "predict_proba"
        except AttributeError:
            pass
    if hasattr(est, "decision_function"):
        return "decision_function"
    return "transform" if not hasattr(est, "predict") else "predict"


def ulp_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """|a - b| in units in the last place of b (0 where equal, NaN matched)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    same = (a == b) | (np.isnan(a) & np.isnan(b))
    with np.errstate(invalid="ignore"):
        d = np.abs(a - b) / np.spacing(np.abs(b))
    return np.where(same, 0.0, d)
