"""A numpy interpreter of the IR: the executable statement of every op's semantics.

Slow but exact (vectorised over rows; every arithmetic step in the op's own precision), it is
the reference that back-ends are tested against bit for bit, and what passes use to prove that
a rewrite changed no prediction.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from . import mathfn
from .core import Operation, Value
from .diagnostics import TimberError
from .dialects import arith, func, linear, math, tree
from .dialects.tree import CAT_LIMIT, ZERO_THRESHOLD, Missing, Pred
from .types import TensorType


@dataclass(frozen=True)
class MathFunctions:
    """Which `exp` and `log1p` the math ops use: Timber's own (`ir/mathfn.py`, the same bits in
    every back-end) or the C library's (what the host JIT calls by default)."""

    exp: Callable[[np.ndarray], np.ndarray]
    log1p: Callable[[np.ndarray], np.ndarray]


MATH = {"timber": MathFunctions(mathfn.exp, mathfn.log1p), "libm": MathFunctions(mathfn.libm_exp, mathfn.libm_log1p)}


def run(module: Operation, X, func_name: str = "predict", math: str = "timber") -> np.ndarray:
    """Evaluate function `@func_name` of `module` on rows X (n, n_features) → (n, K).

    X is converted to the function's input element type first (as the API does).  `math`:
    "timber" (Timber's own exp and log1p) or "libm" (the C library's, as the host JIT by default)."""
    if math not in MATH:
        raise TimberError(f"unknown math '{math}'; known: {', '.join(MATH)}")
    f = module.lookup(func_name) if hasattr(module, "lookup") else None
    if f is None:
        raise TimberError(f"module has no function @{func_name}")
    in_type = f.function_type.inputs[0]
    X = np.asarray(X)
    if X.ndim == 1:
        X = X.reshape(1, -1)
    if X.shape[1] != in_type.shape[0]:
        raise TimberError(f"expected {in_type.shape[0]} features, got {X.shape[1]}")
    X = X.astype(in_type.element.numpy)
    return _call(module, f, [X], MATH[math])[0]


def _call(module, f: func.FuncOp, args: list[np.ndarray], fns: MathFunctions) -> list[np.ndarray]:
    env: dict[int, np.ndarray] = {id(a): v for a, v in zip(f.body.args, args)}
    for op in f.body.ops:
        if isinstance(op, func.ReturnOp):
            return [env[id(v)] for v in op.operands]
        outs = _eval(module, op, [env[id(v)] for v in op.operands], fns)
        for r, v in zip(op.results, outs):
            env[id(r)] = v
    raise TimberError(f"@{f.sym_name} has no func.return")


def evaluate_op(op: Operation, args: list[np.ndarray], module: Operation | None = None) -> list[np.ndarray]:
    """Evaluate one op on per-row operand arrays (each (n, ...)); `module` is needed for calls.

    Passes use this to fold constants with exactly the reference semantics."""
    return _eval(module, op, list(args), MATH["timber"])


def _dtype(v: Value):
    t = v.type
    return (t.element if isinstance(t, TensorType) else t).numpy


def _eval(module, op: Operation, args: list[np.ndarray], fns: MathFunctions) -> list[np.ndarray]:
    n = args[0].shape[0] if args else 1
    if isinstance(op, arith.ConstantOp):
        return [np.broadcast_to(op.value.reshape(1, -1), (n, op.value.size)).copy()]
    if isinstance(op, func.CallOp):
        return _call(module, module.lookup(op.callee), args, fns)
    if isinstance(op, tree.EnsembleOp):
        return [_ensemble(op, args[0])]
    if isinstance(op, linear.AffineOp):
        return [_affine(op, args[0])]
    dt = _dtype(op.results[0])
    with np.errstate(all="ignore"):
        if isinstance(op, arith.AddFOp):
            return [args[0] + args[1]]
        if isinstance(op, arith.SubFOp):
            return [args[0] - args[1]]
        if isinstance(op, arith.MulFOp):
            return [args[0] * args[1]]
        if isinstance(op, arith.DivFOp):
            return [args[0] / args[1]]
        if isinstance(op, arith.MaximumFOp):
            a, b = args
            return [np.where(np.isnan(a), a, np.where(np.isnan(b), b, np.where(a > b, a, b)))]
        if isinstance(op, arith.MinimumFOp):
            a, b = args
            return [np.where(np.isnan(a), a, np.where(np.isnan(b), b, np.where(a < b, a, b)))]
        if isinstance(op, arith.NegFOp):
            return [-args[0]]
        if isinstance(op, arith.CmpFOp):
            return [_cmpf(op.attributes["predicate"].value, args[0], args[1])]
        if isinstance(op, arith.SelectOp):
            return [np.where(args[0], args[1], args[2])]
        if isinstance(op, (arith.ExtFOp, arith.TruncFOp, arith.SIToFPOp)):
            return [args[0].astype(dt)]
        if isinstance(op, math.ExpOp):
            return [_exp_of(op, fns)(args[0])]
        if isinstance(op, math.Log1pOp):
            return [fns.log1p(args[0])]
        if isinstance(op, math.SigmoidOp):
            one = dt.type(1)
            return [(one / (one + fns.exp(-args[0]))).astype(dt)]
        if isinstance(op, math.SoftmaxOp):
            acc = op.attributes.get("acc")
            return [_softmax(args[0], acc.type.numpy if acc is not None else dt, _exp_of(op, fns))]
        if isinstance(op, math.ArgmaxOp):
            return [_argmax(args[0])]
    raise TimberError(f"the interpreter does not know '{op.name}'")


def _cmpf(pred: str, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    unordered = np.isnan(a) | np.isnan(b)
    base = {
        "eq": a == b,
        "gt": a > b,
        "ge": a >= b,
        "lt": a < b,
        "le": a <= b,
        "ne": (a != b) & ~unordered,
        "rd": ~unordered,
        "no": unordered,
    }
    kind, rel = pred[0], pred[1:]
    if rel == "rd":
        return ~unordered
    if rel == "no":
        return unordered
    r = base[rel]
    return (r & ~unordered) if kind == "o" else (r | unordered)


def _exp_of(op: Operation, fns: MathFunctions):
    """The exp an op asks for: its `impl` (fmath: CatBoost's), else the mode's."""
    impl = op.attributes.get("impl")
    return mathfn.fmath_exp if impl is not None and impl.value == "fmath" else fns.exp


def _softmax(a: np.ndarray, acc, exp) -> np.ndarray:
    m = a[:, 0].copy()
    for i in range(1, a.shape[1]):
        m = np.where(a[:, i] > m, a[:, i], m)
    e = exp(a - m[:, None])
    s = np.zeros(a.shape[0], acc)
    for i in range(a.shape[1]):
        s = s + e[:, i].astype(acc)
    return e / s.astype(a.dtype)[:, None]


def _argmax(a: np.ndarray) -> np.ndarray:
    best = a[:, 0].copy()
    idx = np.zeros(a.shape[0], np.int64)
    for i in range(1, a.shape[1]):
        upd = a[:, i] > best
        best = np.where(upd, a[:, i], best)
        idx = np.where(upd, i, idx)
    return idx[:, None]


def _affine(op: linear.AffineOp, x: np.ndarray) -> np.ndarray:
    w = op.attributes["weights"].values
    b = op.attributes["bias"].values
    dt = w.dtype
    skip = op.attributes["missing"].value == "skip"
    xv = x.astype(dt)
    acc = np.broadcast_to(b, (x.shape[0], len(b))).copy()
    with np.errstate(all="ignore"):
        for j in range(w.shape[1]):
            term = xv[:, j : j + 1] * w[None, :, j]
            if skip:
                term = np.where(np.isnan(xv[:, j : j + 1]), dt.type(0), term)
                acc = np.where(np.isnan(xv[:, j : j + 1]), acc, acc + term)
            else:
                acc = acc + term
    return acc


# ----- trees ------------------------------------------------------------------------------


def _decide(v: np.ndarray, pred: int, thr, missing: int, cat_words: np.ndarray | None, cat_negative: str):
    """Per-row (predicate true?, is missing?) for one split, v already in the compare type."""
    if missing == Missing.NAN:
        miss = np.isnan(v)
    elif missing == Missing.ZERO:
        miss = np.isnan(v) | (np.abs(v.astype(np.float64)) <= ZERO_THRESHOLD)
    else:
        miss = np.zeros(v.shape, bool)
        if missing == Missing.NAN_AS_ZERO:
            v = np.where(np.isnan(v), v.dtype.type(0), v)
    with np.errstate(invalid="ignore"):
        if pred == Pred.LT:
            t = v < thr
        elif pred == Pred.LE:
            t = v <= thr
        elif pred == Pred.GT:
            t = v > thr
        elif pred == Pred.GE:
            t = v >= thr
        elif pred == Pred.EQ:
            t = v == thr
        elif pred == Pred.NE:
            t = v != thr
        else:
            t = _in_set(v, cat_words, cat_negative)
    return t, miss


def _in_set(v: np.ndarray, words: np.ndarray, cat_negative: str) -> np.ndarray:
    vd = v.astype(np.float64)
    with np.errstate(invalid="ignore"):
        neg = (vd < 0) if cat_negative == "value" else (np.trunc(vd) < 0)
        valid = np.isfinite(vd) & ~neg & (vd < CAT_LIMIT)
    code = np.where(valid, np.trunc(np.where(valid, vd, 0)), 0).astype(np.int64)
    inside = valid & (code < 32 * len(words))
    word = np.where(inside, words[np.minimum(code // 32, max(len(words) - 1, 0))] if len(words) else 0, 0).astype(np.int64)
    return inside & (((word >> (code % 32)) & 1) == 1)


def _tree_leaves(t, xs: np.ndarray, cat_negative: str) -> np.ndarray:
    """Leaf index reached by each row in a NodeTable."""
    n = xs.shape[0]
    node = np.zeros(n, np.int64)
    active = np.flatnonzero(t.pred[node] != Pred.LEAF)
    while len(active):
        nodes = node[active]
        for u in np.unique(nodes):
            rows = active[nodes == u]
            p = int(t.pred[u])
            words = t.cat_words[t.cat_start[u] : t.cat_start[u] + t.cat_len[u]] if p == Pred.IN else None
            v = xs[rows, t.feature[u]]
            yes, miss = _decide(v, p, t.threshold[u], int(t.missing[u]), words, cat_negative)
            nxt = np.where(yes, t.yes[u], t.no[u])
            node[rows] = np.where(miss, t.default[u], nxt)
        active = active[t.pred[node[active]] != Pred.LEAF]
    return node


def _tree_output(t, xs: np.ndarray, x_raw: np.ndarray, cat_negative: str, acc) -> np.ndarray:
    leaf_idx = _tree_leaves(t, xs, cat_negative)
    out = t.leaf[leaf_idx]
    if t.lin_const is None:
        return out
    ldt = t.leaf.dtype
    res = np.empty(len(leaf_idx), ldt)
    xl = x_raw.astype(ldt)
    with np.errstate(all="ignore"):
        for leaf in np.unique(leaf_idx):
            rows = np.flatnonzero(leaf_idx == leaf)
            v = np.full(len(rows), t.lin_const[leaf], ldt)
            nan = np.zeros(len(rows), bool)
            for f, c in t.linear_terms(int(leaf)):
                xv = xl[rows, f]
                nan |= np.isnan(xv)
                v = v + ldt.type(c) * xv
            res[rows] = np.where(nan, t.leaf[leaf, 0], v)
    return res[:, None]


def _oblivious_output(t, xs: np.ndarray, cat_negative: str) -> np.ndarray:
    idx = np.zeros(xs.shape[0], np.int64)
    for d in range(t.depth):
        p = int(t.pred[d])
        words = t.cat_words[t.cat_start[d] : t.cat_start[d] + t.cat_len[d]] if p == Pred.IN else None
        yes, miss = _decide(xs[:, t.feature[d]], p, t.threshold[d], int(t.missing[d]), words, cat_negative)
        bit = np.where(miss, bool(t.default_true[d]), yes)
        idx |= bit.astype(np.int64) << d
    return t.leaf[idx]


def _ensemble(op: tree.EnsembleOp, x: np.ndarray) -> np.ndarray:
    acc = op.results[0].type.element.numpy
    cmp = op.compare_type.numpy
    neg_attr = op.attributes.get("cat_negative")
    cat_negative = neg_attr.value if neg_attr is not None else "value"
    with np.errstate(over="ignore"):
        xs = x.astype(cmp)
    out = np.broadcast_to(op.attributes["init"].values, (x.shape[0], op.n_outputs)).astype(acc)
    for t_op in op.trees:
        t = t_op.table
        if isinstance(t_op, tree.TreeOp):
            vals = _tree_output(t, xs, x, cat_negative, acc)
        else:
            vals = _oblivious_output(t, xs, cat_negative)
        k = t_op.out
        with np.errstate(all="ignore"):
            out[:, k : k + vals.shape[1]] = out[:, k : k + vals.shape[1]] + vals.astype(acc)
    return out
