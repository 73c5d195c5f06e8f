"""Bitvector (QuickScorer) segments: walked trees of up to 64 leaves give the interpreter's bits.

`plan._bitvector_segments` moves qualifying walked trees into bitvector segments on targets with
`TargetInfo.bitvectors`; each is run here against the IR interpreter on adversarial rows
(thresholds and their neighbours, NaN, ±inf, ±0), batched, in partial blocks and one row at a
time, with vector groups and in scalar code.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from backends.llvm import plan
from backends.llvm.lower import lower_module
from backends.llvm.target import host_target
from ir.dialects.tree import Missing, NodeTable, Pred
from ir.types import f32, f64
from tests import rows as adv
from tests.irgen import random_leafwise_table, random_table

from .test_llvm import check, ensemble_func, new_module

HOST = dataclasses.replace(host_target(), bitvectors=True)
TARGETS = {"vectors": HOST, "scalar": dataclasses.replace(HOST, lanes=1, permute=None)}


def _walked_trees(rng, n: int, n_features: int, tdt) -> list[NodeTable]:
    """n random numeric trees grown leaf-wise (up to 64 leaves), deeper than the heap kernels take."""
    out = []
    while len(out) < n:
        t = random_leafwise_table(rng, n_features, int(rng.integers(12, plan.BITVECTOR_LEAVES + 1)), tdt, np.float64)
        if t.depth() > plan.MAX_HEAP_DEPTH:
            out.append(t)
    return out


def _kinds(m) -> list[str]:
    p = plan.plan_ensemble(m.lookup("predict").body.ops[0], bitvectors=True)
    return [type(s).__name__ for s in p.segments]


@pytest.mark.parametrize("target", sorted(TARGETS))
@pytest.mark.parametrize("compare", ["f32", "f64"])
def test_bitvector_segments_equal_the_interpreter(target, compare):
    """Several segments (more trees than BITVECTOR_TREES), three outputs, NaN sent either way."""
    rng = np.random.default_rng(5)
    tdt, ct = (np.float32, f32) if compare == "f32" else (np.float64, f64)
    trees = _walked_trees(rng, plan.BITVECTOR_TREES + 40, 7, tdt)
    m = new_module()
    ensemble_func(m, "predict", 7, 3, [(t, i % 3) for i, t in enumerate(trees)], compare=ct, leaves=f64, acc=f64)
    assert _kinds(m) == ["BitvectorSegment", "BitvectorSegment"]
    X = adv.adversarial_rows(m, n_mixed=300)
    check(m, X, TARGETS[target])
    check(m, X[:37], TARGETS[target])  # one partial block


def test_trees_that_do_not_qualify_stay_walked_in_model_order():
    """Categorical, equality and zero-as-missing splits, or more than 64 leaves, keep the walk
    kernel; the segments around them keep the model's tree order (hence its sums)."""
    rng = np.random.default_rng(8)
    tdt = np.float32
    trees = _walked_trees(rng, 30, 6, tdt)
    odd = []
    while len(odd) < 3:
        t = random_table(rng, 6, plan.MAX_HEAP_DEPTH + 3, tdt, np.float64)  # every kind of split
        if t.depth() > plan.MAX_HEAP_DEPTH and not plan._bitvector_ok(plan.TreeInfo(t, 0, 1, t.depth(), "walk")):
            odd.append(t)
    big = random_leafwise_table(rng, 6, plan.BITVECTOR_LEAVES + 1, tdt, np.float64)
    order = trees[:10] + odd[:2] + trees[10:20] + [big] + trees[20:] + odd[2:]
    m = new_module()
    ensemble_func(m, "predict", 6, 1, [(t, 0) for t in order], compare=f32, leaves=f64, acc=f64)
    assert _kinds(m) == ["BitvectorSegment", "WalkSegment", "BitvectorSegment", "WalkSegment", "BitvectorSegment", "WalkSegment"]
    check(m, adv.adversarial_rows(m, n_mixed=300), HOST)


def test_leaf_numbers_and_masks_find_the_exit_leaf():
    """The tables themselves: applying the masks of the splits a row sends right leaves the
    reached leaf as the lowest set bit (a numpy model of the kernel, on random rows)."""
    rng = np.random.default_rng(3)
    trees = _walked_trees(rng, 20, 5, np.float64)
    m = new_module()
    ensemble_func(m, "predict", 5, 1, [(t, 0) for t in trees], compare=f64, leaves=f64, acc=f64)
    p = plan.plan_ensemble(m.lookup("predict").body.ops[0], bitvectors=True)
    (s,) = p.segments
    X = rng.normal(size=(200, 5))
    X[rng.random(X.shape) < 0.1] = np.nan
    for x in X:
        bits = np.full(len(trees), -1, np.int64)
        for f in range(5):
            k = s.fstart[f]
            while x[f] >= s.thresholds[k]:  # NaN sentinel (and NaN x) stop the scan
                bits[s.tree_of[k]] &= s.masks[k]
                k += 1
            if np.isnan(x[f]):
                for j in range(s.nstart[f], s.nstart[f + 1]):
                    bits[s.ntree_of[j]] &= s.nmasks[j]
        lowest = [(int(b) & -int(b)).bit_length() - 1 for b in bits.view(np.uint64)]
        got = sum(s.leaves[t, i] for t, i in enumerate(lowest))
        want = sum(_walk(t, x) for t in trees)
        assert np.isclose(got, want, rtol=0, atol=1e-9)


def _walk(t: NodeTable, x) -> float:
    """The leaf value a row reaches (numeric splits; NaN follows `default`, or zero's way)."""
    n = 0
    while t.pred[n] != Pred.LEAF:
        v = x[t.feature[n]]
        if np.isnan(v) and t.missing[n] == Missing.NAN:
            n = t.default[n]
            continue
        if np.isnan(v) and t.missing[n] == Missing.NAN_AS_ZERO:
            v = 0.0
        thr = t.threshold[n]
        ok = {Pred.LT: v < thr, Pred.LE: v <= thr, Pred.GT: v > thr, Pred.GE: v >= thr}[Pred(t.pred[n])]
        n = t.yes[n] if ok else t.no[n]
    return float(t.leaf[n, 0])


def test_only_targets_that_ask_for_bitvectors_get_them():
    """Cross targets (objects) and hosts without the flag keep walk kernels."""
    rng = np.random.default_rng(1)
    m = new_module()
    ensemble_func(m, "predict", 4, 1, [(t, 0) for t in _walked_trees(rng, 3, 4, np.float32)], compare=f32, leaves=f64, acc=f64)
    assert "bitvector_" in lower_module(m, HOST).text
    assert "bitvector_" not in lower_module(m, dataclasses.replace(HOST, bitvectors=False)).text
