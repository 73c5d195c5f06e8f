"""`tree-fuse-scaler`: fold an elementwise scaler feeding a tree ensemble into its thresholds.

    %c = arith.constant dense<[...]> : tensor<4xf32>          // e.g. a StandardScaler:
    %s = arith.subf %x, %mean : tensor<4xf32>                   //   (x - mean) / scale
    %z = arith.divf %s, %scale : tensor<4xf32>
    %m = tree.ensemble %z {...}        →        %m = tree.ensemble %x {...}   (thresholds moved)

Each step (`addf`/`subf`/`mulf`/`divf` by a finite constant — nonzero for mul/div —, `negf`,
`extf`, `truncf`) is monotone per feature in floating point too (IEEE rounding is monotone), and
maps NaN, and only NaN, to NaN.  So for every split `h(x) P t` the rows that take the yes side
form a half-line of x, found exactly by bisection over the ordered float values of x (each
probe evaluates the scaler in its own precision, as the interpreter does).  The split becomes
`x lt b` / `x ge b` (or `le +inf` / `lt -inf` / `ge -inf` when the half-line is everything or
nothing), NaN routed explicitly where the new predicate alone would send it elsewhere.  If any
split cannot be moved exactly (`missing(zero)` bands, categorical sets on the scaled value,
`eq` that holds on several inputs, linear leaves that read the scaled row, an input type wider
than the compare type), nothing is fused.  Exact.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np

from ir.core import Operation
from ir.dialects import arith
from ir.dialects.tree import EnsembleOp, Missing, NodeTable, ObliviousOp, Pred

from .base import Pass, PassContext
from .registry import register_pass
from .rewrite import OpPattern, Rewriter, apply_patterns
from .tree_analysis import SHAPE_GROUP, SHAPE_GROUPS, STRUCTURE_ATTRS


def _const(v):
    op = v.owner
    return op.value.reshape(-1) if isinstance(op, arith.ConstantOp) else None


def _step(op):
    """(kind, constant, operand continuing the chain) for a fusable op, else None."""
    if isinstance(op, arith.NegFOp):
        return ("neg", None, op.operands[0])
    if isinstance(op, (arith.ExtFOp, arith.TruncFOp)):
        return ("cast", op.results[0].type.element.numpy, op.operands[0])
    if not isinstance(op, (arith.AddFOp, arith.SubFOp, arith.MulFOp, arith.DivFOp)):
        return None
    a, b = op.operands
    ca, cb = _const(a), _const(b)
    if cb is not None:
        c, x, swapped = cb, a, False
    elif ca is not None and not isinstance(op, arith.DivFOp):
        c, x, swapped = ca, b, True
    else:
        return None
    if not np.all(np.isfinite(c)):
        return None
    if isinstance(op, (arith.MulFOp, arith.DivFOp)) and np.any(c == 0):
        return None
    kind = {arith.AddFOp: "add", arith.SubFOp: "rsub" if swapped else "sub", arith.MulFOp: "mul", arith.DivFOp: "div"}[type(op)]
    return (kind, c, x)


def erase_if_dead(op, rewriter: Rewriter) -> None:
    """Erase a scaler step nothing uses any more, and its constants if they became unused."""
    if op.parent is None or any(r.uses for r in op.results):
        return
    consts = [v.owner for v in op.operands if isinstance(v.owner, arith.ConstantOp)]
    rewriter.erase_op(op, "scaler fused away")
    for c in consts:
        if c.parent is not None and not any(r.uses for r in c.results):
            rewriter.erase_op(c, "scaler constant fused away")


def scaler_chain(v) -> list[tuple]:
    """Fusable steps from the ensemble's operand down: [(kind, constant, input value, op), ...]."""
    chain = []
    while isinstance(v.owner, Operation):
        s = _step(v.owner)
        if s is None:
            break
        chain.append((s[0], s[1], s[2], v.owner))
        v = s[2]
    return chain


def _evaluate(chain, x: np.ndarray, k: np.ndarray, ct) -> np.ndarray:
    """h(x): the chain applied bottom-up to values x of features k, then converted to ct."""
    v = x
    with np.errstate(all="ignore"):
        for kind, c, _, op in reversed(chain):
            dt = op.results[0].type.element.numpy
            if kind == "cast":
                v = v.astype(c)
                continue
            cc = None if c is None else c[k].astype(dt)
            if kind == "neg":
                v = -v
            elif kind == "add":
                v = v + cc
            elif kind == "sub":
                v = v - cc
            elif kind == "rsub":
                v = cc - v
            elif kind == "mul":
                v = v * cc
            else:
                v = v / cc
    return v.astype(ct)


def _direction(chain, k: np.ndarray) -> np.ndarray:
    sign = np.ones(len(k), np.int64)
    for kind, c, _, _ in chain:
        if kind in ("neg", "rsub"):
            sign = -sign
        elif kind in ("mul", "div"):
            sign = np.where(c[k] < 0, -sign, sign)
    return sign


class _Keys:
    """Order-preserving integer keys of non-NaN floats of one dtype (−0.0 and 0.0 share key 0)."""

    def __init__(self, dt):
        self.dt = np.dtype(dt)
        self.it = np.dtype(np.int32 if self.dt.itemsize == 4 else np.int64)
        self.sign = 1 << (self.dt.itemsize * 8 - 1)
        self.top = int(np.array(np.inf, self.dt).view(self.it))  # key of +inf

    def value(self, key: np.ndarray) -> np.ndarray:
        key = key.astype(np.int64)
        mag = np.abs(key).astype(self.it)
        bits = np.where(key >= 0, mag, mag | np.array(-self.sign, np.int64).astype(self.it))
        return bits.astype(self.it).view(self.dt)

    def first_true(self, test, m: int) -> np.ndarray:
        """Per split, the least key whose `test(values)` is True (monotone False→True); top+1 if none."""
        lo = np.full(m, -self.top, np.int64)
        hi = np.full(m, self.top + 1, np.int64)
        while np.any(active := lo < hi):
            mid = lo // 2 + hi // 2 + ((lo & 1) + (hi & 1)) // 2  # floor((lo + hi) / 2) without int64 overflow
            t = test(self.value(np.minimum(mid, self.top)))
            hi = np.where(active & t, mid, hi)
            lo = np.where(active & ~t, mid + 1, lo)
        return lo


def _cmp(p: int | np.ndarray, v, t):
    with np.errstate(invalid="ignore"):
        return np.select(
            [p == Pred.LT, p == Pred.LE, p == Pred.GT, p == Pred.GE, p == Pred.EQ, p == Pred.NE],
            [v < t, v <= t, v > t, v >= t, v == t, v != t],
        )


def move_splits(chain, x0_dtype, ct, feature, pred, thr, missing, nan_yes):
    """New (pred, threshold, missing, nan_yes) deciding on x0 exactly as before on h(x0); None if impossible.

    `nan_yes`: per split, whether a missing value goes to the yes side (for nan/zero kinds)."""
    m = len(pred)
    if np.any((pred == Pred.IN) | (missing == Missing.ZERO)):
        return None
    keys = _Keys(x0_dtype)
    k = feature.astype(np.int64)
    up = _direction(chain, k) > 0
    inf = ct.type(np.inf)

    def h(x):
        return _evaluate(chain, x.astype(x0_dtype), k, ct)

    lower = (pred == Pred.LT) | (pred == Pred.LE)  # yes-set of h is a down-set of h values
    down = np.where(up, lower, ~lower)  # yes-set is a down-set of x
    is_order = (pred != Pred.EQ) & (pred != Pred.NE)
    # Order predicates: first x where the yes-side test is False (down-sets) / True (up-sets).
    first = keys.first_true(lambda x: _cmp(pred, h(x), thr) != down, m)
    new_pred = np.where(down, Pred.LT, Pred.GE).astype(np.uint8)
    new_thr = keys.value(np.minimum(first, keys.top)).astype(ct)
    none_left = first > keys.top  # the test never flips
    at_start = first == -keys.top
    # down-set: everything (le +inf) / nothing (lt -inf); up-set: nothing (lt -inf) / everything (ge -inf).
    new_pred = np.where(down & none_left, Pred.LE, new_pred)
    new_thr = np.where(down & none_left, inf, new_thr)
    new_thr = np.where(down & at_start, -inf, new_thr)
    new_pred = np.where(~down & none_left, Pred.LT, new_pred)
    new_thr = np.where(~down & none_left, -inf, new_thr)
    new_thr = np.where(~down & at_start, -inf, new_thr)
    # eq/ne: the x with h(x) == t form an interval [a, b) of keys; it must hold at most one key.
    eqne = ~is_order
    if eqne.any():
        a = keys.first_true(lambda x: np.where(up, h(x) >= thr, h(x) <= thr), m)
        b = keys.first_true(lambda x: np.where(up, h(x) > thr, h(x) < thr), m)
        if np.any(eqne & (b - a > 1)):
            return None
        single = eqne & (b - a == 1)
        empty = eqne & (b <= a)
        new_pred = np.where(single, pred, new_pred)
        new_thr = np.where(single, keys.value(np.minimum(a, keys.top)).astype(ct), new_thr)
        # Never equal: eq → lt -inf (never); ne → le +inf (always, NaN routed below).
        new_pred = np.where(empty & (pred == Pred.EQ), Pred.LT, np.where(empty & (pred == Pred.NE), Pred.LE, new_pred))
        new_thr = np.where(empty & (pred == Pred.EQ), -inf, np.where(empty & (pred == Pred.NE), inf, new_thr))
    # Where NaN went before, and where the new split sends it.
    zero = np.zeros(m, ct)
    old_nan_yes = np.select([missing == Missing.NAN, missing == Missing.NAN_AS_ZERO], [nan_yes, _cmp(pred, zero, thr)], pred == Pred.NE)
    new_missing = missing.copy()
    new_nan_yes = nan_yes.copy()
    natural = np.select(
        [missing == Missing.NAN, missing == Missing.NAN_AS_ZERO], [nan_yes, _cmp(new_pred, zero, new_thr)], new_pred == Pred.NE
    )
    fix = natural != old_nan_yes
    new_missing = np.where(fix, Missing.NAN, new_missing).astype(np.uint8)
    new_nan_yes = np.where(fix, old_nan_yes, new_nan_yes)
    # Self-check on probe values around each new threshold.
    for probe in (new_thr, np.nextafter(new_thr, inf), np.nextafter(new_thr, -inf), zero, np.full(m, inf), np.full(m, -inf)):
        x = probe.astype(x0_dtype)
        if not np.array_equal(_cmp(pred, h(x), thr), _cmp(new_pred, x.astype(ct), new_thr)):
            return None
    return new_pred, new_thr, new_missing, new_nan_yes


class FuseScalerIntoEnsemble(OpPattern):
    """tree.ensemble(scaler(x)) → tree.ensemble(x) with moved thresholds, when exact."""

    root = "tree.ensemble"

    def match_and_rewrite(self, ens: EnsembleOp, rewriter: Rewriter) -> bool:
        chain = scaler_chain(ens.operands[0])
        if not chain:
            return False
        if any(isinstance(t, NodeTable) and t.is_linear for t in (op.table for op in ens.trees)):
            return False
        ct = np.dtype(ens.compare_type.numpy)
        # Try the whole chain, then shorter ones (the ops nearest the ensemble).
        for length in range(len(chain), 0, -1):
            sub = chain[:length]
            x0 = sub[-1][2]
            x0_dtype = np.dtype(x0.type.element.numpy)
            if x0_dtype.itemsize > ct.itemsize:
                continue
            plan = self._plan(ens, sub, x0_dtype, ct)
            if plan is None:
                continue
            for op, table in plan:
                keep = STRUCTURE_ATTRS + (SHAPE_GROUP, SHAPE_GROUPS)  # same trees, moved thresholds
                rewriter.set_table(op, table, f"thresholds moved through {length} scaler ops", preserves=keep)
            rewriter.set_operand(ens, 0, x0, f"fused {length} elementwise ops into thresholds")
            for _, _, _, op in sub:
                erase_if_dead(op, rewriter)
            return True
        return False

    @staticmethod
    def _plan(ens, chain, x0_dtype, ct):
        trees = list(ens.trees)
        feats, preds, thrs, miss, nyes, spans = [], [], [], [], [], []
        for op in trees:
            t = op.table
            if isinstance(op, ObliviousOp):
                sel = np.arange(t.depth)
                ny = t.default_true.copy()
            else:
                sel = np.flatnonzero(t.pred != Pred.LEAF)
                ny = t.default[sel] == t.yes[sel]
            feats.append(t.feature[sel])
            preds.append(t.pred[sel])
            thrs.append(t.threshold[sel])
            miss.append(t.missing[sel])
            nyes.append(ny)
            spans.append(sel)
        if sum(len(s) for s in spans) == 0:
            return []  # no split reads the scaled row
        moved = move_splits(chain, x0_dtype, ct, *(np.concatenate(a) for a in (feats, preds, thrs, miss, nyes)))
        if moved is None:
            return None
        new_pred, new_thr, new_miss, new_nyes = moved
        out, at = [], 0
        for op, sel in zip(trees, spans):
            t = copy.copy(op.table)
            s = slice(at, at + len(sel))
            at += len(sel)
            t.pred, t.threshold, t.missing = t.pred.copy(), t.threshold.copy(), t.missing.copy()
            t.pred[sel], t.threshold[sel], t.missing[sel] = new_pred[s], new_thr[s], new_miss[s]
            if isinstance(op, ObliviousOp):
                t.default_true = new_nyes[s].astype(bool)
            else:
                t.default = t.default.copy()
                needs = (t.missing[sel] == Missing.NAN) | (t.missing[sel] == Missing.ZERO)
                t.default[sel] = np.where(needs, np.where(new_nyes[s], t.yes[sel], t.no[sel]), -1)
            out.append((op, t))
        return out


@register_pass
@dataclass
class FuseScaler(Pass):
    """Move elementwise affine steps feeding an ensemble into its thresholds, when exact."""

    name = "tree-fuse-scaler"
    summary = "fold addf/subf/mulf/divf-by-constant, negf, extf, truncf feeding a tree.ensemble into its thresholds (exact)"

    def apply(self, module, ctx: PassContext) -> None:
        ens_ops = [op for op in module.walk() if isinstance(op, EnsembleOp)]
        n = apply_patterns(ens_ops, [FuseScalerIntoEnsemble()], ctx.rewriter, what=self.name)
        ctx.stat("ensembles-fused", n)
