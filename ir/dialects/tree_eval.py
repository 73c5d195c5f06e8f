"""Semantics of the `tree` dialect for the interpreter: every split, missing rule and category
test exactly as the op docstrings in `tree.py` state them."""

from __future__ import annotations

import numpy as np

from ..interpreter import interprets
from . import tree
from .tree import CAT_LIMIT, ZERO_THRESHOLD, Missing, Pred


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


def tree_leaves(t, xs: np.ndarray, cat_negative: str) -> np.ndarray:
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
    leaf_idx = tree_leaves(t, xs, cat_negative)
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


def ensemble_output(op: tree.EnsembleOp, x: np.ndarray) -> np.ndarray:
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


@interprets(tree.EnsembleOp)
def _ensemble(op, args, it):
    return [ensemble_output(op, args[0])]
