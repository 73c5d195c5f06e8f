"""`tree-narrow-thresholds`: threshold precision analysis, and f64 → f32 narrowing when exact.

For every input value the model can see (the input type: the ensemble operand's element type,
or `input=f32` for a LightGBM model that will only ever be fed float32), a numeric split
`v P t` is a half-line of those values: `v < s` or its complement, with s the least input value
past the boundary — equivalently `v <= u`, u the greatest input value before it.  In a
narrower type G, rounding v toward −∞ onto G (integers saturate) keeps `v < s` exact for every
input exactly when s is a value of G; rounding toward +∞ keeps `v <= u` exact exactly when u is.
`eq`/`ne` need G to hold every input value and t to be one of them.  Recorded on the ensemble,
for back-ends:

* `tree.narrow = ["i8", "f32", "none", ...]`: per feature, the narrowest of i8, i16, f16, f32,
  f64 in which all its numeric splits decide exactly ("none": no numeric split tests it);
* `tree.narrow_round = ["down", "exact", "none", ...]`: how to use that type.  "down": round v
  toward −∞ onto it and test `rd(v) < s` (s: the least input value for which `v lt/le t` is
  false; `gt`/`ge` are the negation); "up": round toward +∞ and test `ru(v) <= u` (u: the
  greatest input value for which `v lt/le t` is true).  `le +inf`, `lt -inf` and their
  negations hold for every input or for none.  "exact": the type holds every input value;
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
from .tree_analysis import SHAPE_GROUP, SHAPE_GROUPS, STRUCTURE_ATTRS

# What this analysis derives (on each ensemble): per feature type and rounding, and the input type.
NARROW_ATTRS = ("tree.narrow", "tree.narrow_round", "tree.narrow_input")

GRIDS = ("i8", "i16", "f16", "f32", "f64")
_INT_RANGE = {"i8": (-128, 127), "i16": (-32768, 32767)}
_FLOAT = {"f16": np.float16, "f32": np.float32, "f64": np.float64}


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
    with np.errstate(invalid="ignore", over="ignore"):
        r = t.astype(rdt)
        return np.where(r.astype(t.dtype) < t, np.nextafter(r, rdt.type(np.inf)), r)


def round_down(t: np.ndarray, rdt) -> np.ndarray:
    """The greatest value of dtype rdt that is <= t."""
    with np.errstate(invalid="ignore", over="ignore"):
        r = t.astype(rdt)
        return np.where(r.astype(t.dtype) > t, np.nextafter(r, rdt.type(-np.inf)), r)


def _in_grid(x: np.ndarray, g: str) -> np.ndarray:
    """x (float64, not NaN) is a value of grid type g (ints: within range, ±inf excluded)."""
    if g in _INT_RANGE:
        lo, hi = _INT_RANGE[g]
        return (np.floor(x) == x) & (x >= lo) & (x <= hi)
    gdt = np.dtype(_FLOAT[g])
    with np.errstate(over="ignore", invalid="ignore"):
        return x.astype(gdt).astype(np.float64) == x


def valid_grids(pred: np.ndarray, t: np.ndarray, rdt, ct) -> dict[tuple[str, str], np.ndarray]:
    """Per (grid type, rounding direction), per split: does comparing in that type decide exactly
    like the original for every input value?  Directions: "down" (v rounded toward -inf onto
    the grid, ints saturating) and "up" (toward +inf).  Non-numeric splits are always True."""
    rdt, ct = np.dtype(rdt), np.dtype(ct)
    inf = np.inf
    lt_ge = (pred == Pred.LT) | (pred == Pred.GE)
    le_gt = (pred == Pred.LE) | (pred == Pred.GT)
    eq_ne = (pred == Pred.EQ) | (pred == Pred.NE)
    numeric = lt_ge | le_gt | eq_ne
    with np.errstate(invalid="ignore", over="ignore"):
        up_t = round_up(t, rdt)
        down_t = round_down(t, rdt)
        # Rounding down: the split is `v < s` (or its complement), s the least input value past it.
        s = np.where(lt_ge, up_t, np.nextafter(down_t, rdt.type(inf))).astype(np.float64)
        # Rounding up: the split is `v <= u`, u the greatest input value before it.
        u = np.where(le_gt, down_t, np.nextafter(up_t, rdt.type(-inf))).astype(np.float64)
    in_r = t.astype(rdt).astype(ct) == t
    out = {}
    for g in GRIDS:
        covers_r = g in _FLOAT and np.dtype(_FLOAT[g]).itemsize >= rdt.itemsize
        ordered = lt_ge | le_gt
        # A half-line that holds for no input or for every input is expressible in any grid.
        down_ok = (s == -inf) | (le_gt & (t == inf)) | _in_grid(s, g) & ((s > _INT_RANGE[g][0]) if g in _INT_RANGE else True)
        up_ok = (u == inf) | (lt_ge & (t == -inf)) | _in_grid(u, g) & ((u < _INT_RANGE[g][1]) if g in _INT_RANGE else True)
        for direction, ok in (("down", down_ok), ("up", up_ok)):
            exact = ordered & (covers_r | ok) | eq_ne & covers_r & in_r
            out[(g, direction)] = exact | ~numeric
    return out


def narrowest_per_feature(ens: EnsembleOp, rdt) -> list[tuple[str, str]]:
    """Per input feature: (narrowest valid type, rounding direction) — direction "exact" when the
    type holds every input value, ("none", "none") when no numeric split tests the feature."""
    ct = ens.compare_type.numpy
    feature, pred, t = _splits(ens)
    grids = valid_grids(pred, t, rdt, ct)
    numeric = (pred != Pred.IN) & (pred != Pred.LEAF)
    allowed = [g for g in GRIDS if not (g == "f64" and np.dtype(ct).itemsize < 8)]
    wide = {"f32": 4, "f64": 8}
    nf = ens.n_features
    fnum = feature[numeric].astype(np.int64)
    tested = np.bincount(fnum, minlength=nf) > 0
    # Per (grid, direction), per feature: every numeric split on it decides exactly there
    # (no split of that feature is invalid in the grid).
    valid = {key: np.bincount(fnum[~grids[key][numeric]], minlength=nf) == 0 for key in grids}
    result = []
    for j in range(nf):
        if not tested[j]:
            result.append(("none", "none"))
            continue
        for g in allowed:
            d = next((d for d in ("down", "up") if valid[(g, d)][j]), None)
            if d is not None:
                # A type holding every input value converts exactly: no rounding direction.
                result.append((g, "exact" if wide.get(g, 0) >= np.dtype(rdt).itemsize else d))
                break
        else:  # pragma: no cover - the compare type itself is always valid
            result.append((allowed[-1], "exact"))
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
    derives = {"tree.ensemble": NARROW_ATTRS}
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
                if valid_grids(pred, t, np.float32, ct)[("f32", "down")].all():
                    for op in ens.trees:
                        if isinstance(op, (TreeOp, ObliviousOp)):
                            table = narrowed_thresholds(op.table, np.dtype(np.float32))
                            # Same nodes and features, thresholds moved: structure and shapes still hold.
                            keep = STRUCTURE_ATTRS + (SHAPE_GROUP, SHAPE_GROUPS)
                            ctx.rewriter.set_table(op, table, "thresholds f64 -> f32", preserves=keep)
                    ctx.rewriter.set_attr(ens, "compare", TypeAttr(f32), "compare f64 -> f32")
                    ctx.stat("ensembles-narrowed-to-f32")
                    ct = np.dtype(np.float32)
            result = narrowest_per_feature(ens, rdt)
            narrow, narrow_round, narrow_input = NARROW_ATTRS
            ctx.rewriter.set_attr(ens, narrow, ArrayAttr([StringAttr(g) for g, _ in result]))
            ctx.rewriter.set_attr(ens, narrow_round, ArrayAttr([StringAttr(d) for _, d in result]))
            ctx.rewriter.set_attr(ens, narrow_input, TypeAttr(f32 if rdt == np.float32 else f64))
            types = [g for g, _ in result]
            for g in GRIDS + ("none",):
                n = types.count(g)
                if n:
                    ctx.stat(f"features-{g}", n)
