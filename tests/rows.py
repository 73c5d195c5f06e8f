"""Adversarial input rows for a Timber module: the values where a compiler that compares in the
wrong precision, mishandles missing values or mis-decodes categories sends a row the wrong way.

Read from the module's own trees (every `tree.tree` / `tree.oblivious` split of every
`tree.ensemble`), so any front-end's tests can use them:

* every threshold, its neighbours one ulp away in float32 **and** in float64 (both ways);
* NaN, ±inf, ±0.0, values around ±1e-35 (LightGBM's zero threshold), the float32 extremes;
* for categorical (`in`) splits: the members, fractional codes, unseen, negative, huge
  (≥ 2^24, ≥ 2^31) codes and NaN;
* all-NaN, all-zero and all -0.0 rows.

`adversarial_rows(module)` returns a deterministic float64 (or float32) matrix;
`rows_strategy(module)` is a hypothesis strategy drawing rows from the same values mixed with
arbitrary floats.  Both work whatever the ensemble's compare type (f32 or f64).
"""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from ir.dialects import tree
from ir.dialects.tree import Pred

F32 = np.float32
# Values every feature gets: missing/zero/sign/overflow edge cases in both precisions.
SPECIALS = [
    np.nan,
    np.inf,
    -np.inf,
    0.0,
    -0.0,
    1.0,
    -1.0,
    1e-35,
    -1e-35,
    float(F32(1e-35)),
    -float(F32(1e-35)),
    float(np.nextafter(F32(1e-35), F32(1))),
    float(np.nextafter(F32(1e-35), F32(0))),
    float(np.nextafter(float(F32(1e-35)), 1.0)),
    float(np.nextafter(float(F32(1e-35)), 0.0)),
    1e-36,
    -1e-36,
    1e-34,
    float(np.finfo(F32).tiny),
    float(np.finfo(F32).smallest_subnormal),
    -float(np.finfo(F32).smallest_subnormal),
    float(np.finfo(F32).max),
    -float(np.finfo(F32).max),
    1e30,
    -1e30,
    1e300,  # finite in float64, +inf once cast to float32
]
# Extra values for a feature used by categorical splits.
CATEGORY_EDGES = [-1.0, -0.5, -0.0, 0.0, 0.5, 0.999, 2.0**24 - 1, 2.0**24, 2.0**24 + 2, 2.0**31 - 128, 2.0**31, 2.0**31 + 1, 1e10, np.nan]


def n_features(module) -> int:
    """Width of the module's input row (from @margin, else @predict)."""
    f = module.lookup("margin") or module.lookup("predict")
    if f is None:
        raise ValueError("module has neither @margin nor @predict")
    return f.function_type.inputs[0].shape[0]


def _neighbours(t) -> list[float]:
    """t, and one ulp either side of it in float32 and in float64."""
    out = [float(t)]
    t64 = np.float64(t)
    out += [float(np.nextafter(t64, np.inf)), float(np.nextafter(t64, -np.inf))]
    if np.isfinite(t64) and abs(t64) <= np.finfo(F32).max:
        t32 = F32(t64)  # a float64 threshold's nearest float32 and that float's neighbours
        out += [float(t32), float(np.nextafter(t32, F32(np.inf))), float(np.nextafter(t32, F32(-np.inf)))]
    return out


def _category_values(members: list[int]) -> list[float]:
    vals = [float(c) for c in members]
    for c in members[:16]:
        vals += [c + 0.5, c + 0.999, c - 0.25]
    top = max(members) if members else 0
    vals += [float(top + 1), float(top + 33), float(top + 1000)]  # unseen, past the bitset
    return vals + CATEGORY_EDGES


def _splits(module):
    """(feature, predicate, threshold or None, category members or None) of every split."""
    for op in module.walk():
        if not isinstance(op, tree.EnsembleOp):
            continue
        for t_op in op.trees:
            t = t_op.table
            if isinstance(t, tree.NodeTable):
                idx = np.flatnonzero(t.pred != Pred.LEAF)
            else:
                idx = np.arange(t.depth)
            for i in idx.tolist():
                f, p = int(t.feature[i]), int(t.pred[i])
                if p == Pred.IN:
                    yield f, p, None, t.category_set(i)
                else:
                    yield f, p, t.threshold[i], None
            lin = getattr(t, "lin_feature", None)
            if lin is not None:
                for f in np.unique(lin).tolist():
                    yield int(f), None, None, None


def feature_values(module, max_per_feature: int = 400, seed: int = 0) -> list[np.ndarray]:
    """Per input feature, the float64 values worth testing (specials, thresholds ± ulps,
    category edges), deduplicated bit-exactly, at most `max_per_feature` of them."""
    n = n_features(module)
    pools: list[list[float]] = [list(SPECIALS) for _ in range(n)]
    for f, _p, thr, members in _splits(module):
        if not 0 <= f < n:
            continue
        if members is not None:
            pools[f] += _category_values(members)
        elif thr is not None:
            pools[f] += _neighbours(thr)
    rng = np.random.default_rng(seed)
    out = []
    for vals in pools:
        arr = np.array(vals, np.float64)
        _, first = np.unique(arr.view(np.uint64), return_index=True)  # keeps -0.0 apart from 0.0, one NaN
        arr = arr[np.sort(first)]
        if len(arr) > max_per_feature:
            keep = np.concatenate(
                [np.arange(len(SPECIALS)), rng.choice(np.arange(len(SPECIALS), len(arr)), max_per_feature - len(SPECIALS), replace=False)]
            )
            arr = arr[np.sort(keep)]
        out.append(arr)
    return out


def adversarial_rows(module, *, n_mixed: int = 256, seed: int = 0, dtype=np.float64) -> np.ndarray:
    """A deterministic (n, n_features) matrix covering every value of `feature_values`.

    Each value appears in a row of its own (other features at a typical value), then
    `n_mixed` rows mix values of all features (80%) with standard normals (20%), then an
    all-NaN, an all-0.0 and an all -0.0 row.  float32 `dtype` casts at the end (so a float64
    neighbour of a float32 threshold becomes the threshold itself, as in a float32 pipeline)."""
    rng = np.random.default_rng(seed)
    pools = feature_values(module, seed=seed)
    n = len(pools)
    base = np.zeros(n)
    for f, vals in enumerate(pools):
        finite = vals[np.isfinite(vals) & (np.abs(vals) < 1e6)]
        base[f] = np.median(finite) if len(finite) else 0.0
    rows = []
    for f, vals in enumerate(pools):
        for v in vals:
            r = base.copy()
            r[f] = v
            rows.append(r)
    for _ in range(n_mixed):
        r = np.array([rng.choice(p) if rng.random() < 0.8 else rng.normal() for p in pools])
        rows.append(r)
    rows += [np.full(n, np.nan), np.zeros(n), np.full(n, -0.0)]
    with np.errstate(over="ignore"):
        return np.array(rows, np.float64).astype(dtype)


def rows_strategy(module, *, dtype=np.float64, min_rows: int = 1, max_rows: int = 32):
    """Hypothesis strategy for (n, n_features) matrices: each cell is an adversarial value of
    its feature (3 in 4 draws) or any float of `dtype`'s width, NaN and ±inf included."""
    pools = feature_values(module)
    width = 32 if np.dtype(dtype) == np.float32 else 64
    cells = [
        st.one_of(st.sampled_from(p.tolist()), st.sampled_from(p.tolist()), st.sampled_from(p.tolist()), st.floats(width=width))
        for p in pools
    ]
    row = st.tuples(*cells)
    return st.lists(row, min_size=min_rows, max_size=max_rows).map(lambda rs: _as_matrix(rs, len(pools), dtype))


def _as_matrix(rows, n: int, dtype) -> np.ndarray:
    with np.errstate(over="ignore"):
        return np.array(rows, np.float64).reshape(len(rows), n).astype(dtype)


__all__ = ["CATEGORY_EDGES", "SPECIALS", "adversarial_rows", "feature_values", "n_features", "rows_strategy"]


def log1p_inputs(dt=np.float64) -> np.ndarray:
    """Values across log1p's whole domain (1-D): every branch edge of the algorithm (`ir/dialects/mathimpl/log.py`)
    with its neighbours, exp(s) for the scores LightGBM's `cross_entropy_lambda` feeds it, values
    near -1, tiny and huge arguments, the specials, and random bit patterns."""
    rng = np.random.default_rng(11)
    edges = [0.41421356, -0.29289321, -1.0, 2.0**-29, -(2.0**-29), 2.0**-54, 2.0**-20, -(2.0**-20), 2.0**53, 1.0, 0.0, -0.0, 1e-300]
    edges += [float(np.finfo(dt).max), float(np.finfo(dt).tiny), 5e-324 if dt == np.float64 else 1e-45]
    edges = np.array(edges, dt)
    with np.errstate(over="ignore"):
        near = np.concatenate([np.nextafter(edges, np.array(s, dt)) for s in (-np.inf, np.inf)])
        vals = [
            edges,
            near,
            np.exp(rng.uniform(-40, 40, 20000)).astype(dt),
            np.exp(rng.uniform(-740, 709, 5000)).astype(dt),
            rng.uniform(-1, 1, 10000).astype(dt),
            (-1 + np.exp(rng.uniform(-36, -1, 2000))).astype(dt),
            np.array([np.nan, np.inf, -np.inf, -1.5, -2.0], dt),
        ]
    bits = rng.integers(0, 2**63, 5000, dtype=np.int64) * rng.choice([1, -1], 5000)
    vals.append(bits.view(np.float64).astype(dt) if dt == np.float64 else bits.astype(np.int32).view(np.float32))
    return np.concatenate(vals)
