"""`tree-narrow-thresholds`: threshold precision analysis, and f64 → f32 narrowing when exact.

For every input value the model can see (the input type: the ensemble operand's element type,
or `input=f32` for a LightGBM model that will only ever be fed float32), each numeric split
`v P t` is a half-line of those values, `v < s` or its complement, where `s` is the first input
value on the true/false boundary.  In a narrower type G, comparing `rd_G(v)` (v rounded toward
−∞ onto G; integers saturate) against `s` gives the same answer for every input exactly when
`s` is a value of G (ints: an integer in [min+1, max]).  `eq`/`ne` need G to hold every input
value and `t` to be one.  Recorded on the ensemble, for back-ends:

* `tree.narrow = ["i8", "f32", "none", ...]`: per feature, the narrowest of i8, i16, f16, f32,
  f64 valid for all of its numeric splits ("none": no numeric split tests it);
* `tree.narrow_input = f32|f64`: the input type this holds for.

And when the operand itself is f32 while splits compare in f64 (sklearn), every threshold is
rewritten to the f32 that decides identically (`lt`/`ge`: the least f32 ≥ t; `le`/`gt`: the
greatest f32 ≤ t; `eq`/`ne`: t itself, when it is an f32) and the ensemble compares in f32.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np

from ir.attributes import ArrayAttr, StringAttr, TypeAttr
from ir.dialects.tree import EnsembleOp, ObliviousOp, Pred, TreeOp
from ir.types import f32, f64

from .base import Pass, PassContext, option
from .forest import ensembles
from .registry import register_pass

GRIDS = ("i8", "i16", "f16", "f32", "f64")
_INT_RANGE = {"i8": (-128, 127), "i16": (-32768, 32767)}


def _splits(ens: EnsembleOp):
    """(feature, pred, threshold) of every split and oblivious level of an ensemble."""
    fs, ps, ts = [], [], []
    for op in ens.trees:
        t = op.table
        sel = t.pred != Pred.LEAF
        fs.append(t.feature[sel])
        ps.append(t.pred[sel])
        ts.append(t.threshold[sel])
    if not fs:
        return np.zeros(0, np.int32), np.zeros(0, np.uint8), np.zeros(0, ens.compare_type.numpy)
    return np.concatenate(fs), np.concatenate(ps), np.concatenate(ts)


def round_up(t: np.ndarray, rdt) -> np.ndarray:
    """The least value of dtype rdt that is >= t (t in a wider or equal float dtype)."""
    r = t.astype(rdt)
    with np.errstate(invalid="ignore"):
        return np.where(r.astype(t.dtype) < t, np.nextafter(r, rdt.type(np.inf)), r)


def round_down(t: np.ndarray, rdt) -> np.ndarray:
    """The greatest value of dtype rdt that is <= t."""
    r = t.astype(rdt)
    with np.errstate(invalid="ignore"):
        return np.where(r.astype(t.dtype) > t, np.nextafter(r, rdt.type(-np.inf)), r)


def valid_grids(pred: np.ndarray, t: np.ndarray, rdt, ct) -> dict[str, np.ndarray]:
    """Per grid type, per split: does comparing in that type decide exactly like the original?"""
    rdt, ct = np.dtype(rdt), np.dtype(ct)
    inf = np.inf
    lt_ge = (pred == Pred.LT) | (pred == Pred.GE)
    le_gt = (pred == Pred.LE) | (pred == Pred.GT)
    eq_ne = (pred == Pred.EQ) | (pred == Pred.NE)
    numeric = lt_ge | le_gt | eq_ne
    # s: the least input value on the other side of the boundary (as f64 for the tests below).
    s_ge = round_up(t, rdt).astype(np.float64)
    with np.errstate(invalid="ignore"):
        s_gt = np.nextafter(round_down(t, rdt), rdt.type(inf)).astype(np.float64)
    s = np.where(lt_ge, s_ge, s_gt)
    # "Never true"/"always true" half-lines (s = -inf, or le/gt at +inf) hold in every type.
    trivial = (s == -inf) | (le_gt & (t == inf))
    in_r = t.astype(rdt).astype(ct) == t
    out = {}
    for g in GRIDS:
        if g in _INT_RANGE:
            lo, hi = _INT_RANGE[g]
            ok = (lt_ge | le_gt) & ((np.floor(s) == s) & (s >= lo + 1) & (s <= hi) | trivial)
        else:
            gdt = np.dtype({"f16": np.float16, "f32": np.float32, "f64": np.float64}[g])
            with np.errstate(over="ignore", invalid="ignore"):
                exact_s = s.astype(gdt).astype(np.float64) == s
            covers_r = gdt.itemsize >= rdt.itemsize
            ok = (lt_ge | le_gt) & (covers_r | exact_s | trivial) | eq_ne & covers_r & in_r
        out[g] = ok | ~numeric
    return out


def narrowest_per_feature(ens: EnsembleOp, rdt) -> list[str]:
    """Per feature of the ensemble input, the narrowest type valid for all its numeric splits."""
    ct = ens.compare_type.numpy
    feature, pred, t = _splits(ens)
    grids = valid_grids(pred, t, rdt, ct)
    numeric = (pred != Pred.IN) & (pred != Pred.LEAF)
    allowed = [g for g in GRIDS if not (g == "f64" and np.dtype(ct).itemsize < 8)]
    result = []
    for j in range(ens.n_features):
        sel = numeric & (feature == j)
        if not sel.any():
            result.append("none")
            continue
        result.append(next((g for g in allowed if grids[g][sel].all()), allowed[-1]))
    return result


def narrowed_thresholds(table, rdt):
    """A copy of `table` with thresholds in dtype rdt deciding exactly as before (given inputs in rdt)."""
    t = table.threshold
    p = table.pred
    lt_ge = (p == Pred.LT) | (p == Pred.GE)
    le_gt = (p == Pred.LE) | (p == Pred.GT)
    new = np.where(lt_ge, round_up(t, rdt), np.where(le_gt, round_down(t, rdt), t.astype(rdt)))
    new = np.where((p == Pred.LEAF) | (p == Pred.IN), rdt.type(0), new).astype(rdt)
    out = copy.copy(table)
    out.threshold = np.ascontiguousarray(new)
    return out


@register_pass
@dataclass
class NarrowThresholds(Pass):
    """Record per-feature threshold precision; compare f64 splits in f32 when that is exact."""

    name = "tree-narrow-thresholds"
    summary = "per-feature narrowest exact compare type (recorded as tree.narrow); f64 thresholds to f32 when exact for the input type"
    input: str = option("input type to analyse for: auto = the ensemble's operand type", "auto", choices=("auto", "f32", "f64"))
    rewrite: bool = option("rewrite f64 thresholds to f32 when the operand is f32 and that is exact", True)

    def apply(self, module, ctx: PassContext) -> None:
        for ens in ensembles(module):
            ct = np.dtype(ens.compare_type.numpy)
            x = np.dtype(ens.operands[0].type.element.numpy)
            assumed = x if self.input == "auto" else np.dtype(np.float32 if self.input == "f32" else np.float64)
            rdt = min(assumed, ct, key=lambda d: d.itemsize)  # the values splits actually see
            if self.rewrite and ct == np.float64 and x == np.float32:
                feature, pred, t = _splits(ens)
                if valid_grids(pred, t, np.float32, ct)["f32"].all():
                    for op in ens.trees:
                        if isinstance(op, (TreeOp, ObliviousOp)):
                            ctx.rewriter.set_table(op, narrowed_thresholds(op.table, np.dtype(np.float32)), "thresholds f64 -> f32")
                    ctx.rewriter.set_attr(ens, "compare", TypeAttr(f32), "compare f64 -> f32")
                    ctx.stat("ensembles-narrowed-to-f32")
                    ct = np.dtype(np.float32)
            types = narrowest_per_feature(ens, rdt)
            ctx.rewriter.set_attr(ens, "tree.narrow", ArrayAttr([StringAttr(s) for s in types]))
            ctx.rewriter.set_attr(ens, "tree.narrow_input", TypeAttr(f32 if rdt == np.float32 else f64))
            for g in GRIDS + ("none",):
                n = types.count(g)
                if n:
                    ctx.stat(f"features-{g}", n)
