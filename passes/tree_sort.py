"""`tree-sort-branches{calibration=rows.npy}`: profile-guided branch layout.  Exact.

Calibration rows (`.npy`, or `.csv` with an optional header) are run through every `tree.tree`
of every ensemble whose input is a function argument; each node's hit count is recorded as
`tree.hits = array<i64: ...>` (one per node, in table order) and the ensemble gets
`tree.calibration_rows`.  Wherever the no child is hit more often than the yes child, the test
is inverted and the children swapped, so the hot child is the `?` child: the fall-through of
`if (test) {hot} else {cold}` code and node i+1 of the rebuilt table.  Inverting keeps every
row's path: `lt`↔`ge`, `le`↔`gt`, `eq`↔`ne` are exact complements except on NaN, so NaN is routed
explicitly (`missing(nan)` to the child it went to before) where the predicate alone would not.
`in` splits have no complement predicate and keep their order.  Back-ends turn `tree.hits` into
branch weights.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from ir.attributes import DenseArrayAttr, IntegerAttr
from ir.core import BlockArgument
from ir.diagnostics import TimberError
from ir.dialects.tree import CAT_LIMIT, HITS, ZERO_THRESHOLD, Missing, NodeTable, Pred, TreeOp
from ir.types import i64

from .base import Pass, PassContext, option
from .forest import ensembles
from .registry import register_pass
from .tree_analysis import STRUCTURE_ATTRS
from .tree_narrow import NARROW_ATTRS
from .tree_rewrite import TreeGraph, TreePattern, TreeRewriter, apply_tree_patterns, commit_tree_graph, tree_graph_of

INVERSE = {Pred.LT: Pred.GE, Pred.GE: Pred.LT, Pred.LE: Pred.GT, Pred.GT: Pred.LE, Pred.EQ: Pred.NE, Pred.NE: Pred.EQ}


def load_rows(source: Any) -> np.ndarray:
    """Calibration rows from an array, a `.npy` file or a `.csv` file (a non-numeric first line
    is a header; empty fields are missing)."""
    if not isinstance(source, (str, os.PathLike)):
        rows = np.asarray(source, np.float64)
    else:
        path = os.fspath(source)
        if not os.path.exists(path):
            raise TimberError(f"calibration file '{path}' does not exist")
        if path.endswith(".npy"):
            try:
                rows = np.load(path, allow_pickle=False)
            except (ValueError, OSError) as e:
                raise TimberError(f"cannot read calibration rows from '{path}': {e}; expected a 2-D .npy array") from None
        else:
            rows = _read_csv(path)
    rows = np.asarray(rows)
    if rows.ndim == 1:
        rows = rows.reshape(1, -1)
    if rows.ndim != 2 or not np.issubdtype(rows.dtype, np.number):
        raise TimberError(f"calibration rows must be a 2-D numeric array, found shape {rows.shape} of {rows.dtype}")
    return rows


def _read_csv(path: str) -> np.ndarray:
    out = []
    with open(path, encoding="utf-8") as fh:
        for line_no, line in enumerate(fh, 1):
            if not line.strip():
                continue
            fields = [f.strip() for f in line.split(",")]
            try:
                out.append([float(f) if f else np.nan for f in fields])
            except ValueError:
                if line_no == 1:
                    continue  # a header
                bad = next(f for f in fields if f and not _is_number(f))
                raise TimberError(f"cannot read calibration rows from '{path}': line {line_no}: not a number: '{bad}'") from None
    if not out or len({len(r) for r in out}) != 1:
        raise TimberError(f"cannot read calibration rows from '{path}': expected rows of equal length")
    return np.array(out, np.float64)


def _is_number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


def _decide(v: np.ndarray, table: NodeTable, u: int, cat_negative: str) -> np.ndarray:
    """For rows with value v (compare type) at split u: the child each row goes to."""
    p, miss = int(table.pred[u]), int(table.missing[u])
    thr = table.threshold[u]
    missing = np.zeros(len(v), bool)
    if miss == Missing.NAN:
        missing = np.isnan(v)
    elif miss == Missing.ZERO:
        missing = np.isnan(v) | (np.abs(v.astype(np.float64)) <= ZERO_THRESHOLD)
    elif miss == Missing.NAN_AS_ZERO:
        v = np.where(np.isnan(v), v.dtype.type(0), v)
    with np.errstate(invalid="ignore"):
        if p == Pred.IN:
            vd = v.astype(np.float64)
            neg = vd < 0 if cat_negative == "value" else np.trunc(vd) < 0
            valid = np.isfinite(vd) & ~neg & (vd < CAT_LIMIT)
            code = np.where(valid, np.trunc(np.where(valid, vd, 0)), 0).astype(np.int64)
            members = np.zeros(max(int(code.max(initial=0)) + 1, 1), bool)
            cats = [c for c in table.category_set(u) if c < len(members)]
            members[cats] = True
            test = valid & members[np.minimum(code, len(members) - 1)]
        else:
            test = {Pred.LT: v < thr, Pred.LE: v <= thr, Pred.GT: v > thr, Pred.GE: v >= thr, Pred.EQ: v == thr, Pred.NE: v != thr}[Pred(p)]
    return np.where(missing, table.default[u], np.where(test, table.yes[u], table.no[u]))


def node_hits(table: NodeTable, xs: np.ndarray, cat_negative: str) -> np.ndarray:
    """How many rows of xs (already in the compare type) pass through each node."""
    hits = np.zeros(table.n_nodes, np.int64)
    node = np.zeros(len(xs), np.int64)
    active = np.arange(len(xs))
    while len(active):
        np.add.at(hits, node[active], 1)
        at = node[active]
        split = table.pred[at] != Pred.LEAF
        active, at = active[split], at[split]
        for u in np.unique(at).tolist():
            rows = active[at == u]
            node[rows] = _decide(xs[rows, table.feature[u]], table, u, cat_negative)
    return hits


class HotChildFirst(TreePattern):
    """no child hotter than yes child → invert the test and swap, keeping every row's path."""

    def match_and_rewrite(self, tg: TreeGraph, n: int, rewriter: TreeRewriter) -> bool:
        kids = tg.kids(n)
        d = tg.g.nodes[n]
        if kids is None or d["pred"] == Pred.IN:
            return False
        if tg.g.nodes[kids[1]]["hits"] <= tg.g.nodes[kids[0]]["hits"]:
            return False
        pred, miss, branch = int(d["pred"]), int(d["missing"]), d["default_branch"]
        flip = {"yes": "no", "no": "yes", None: None}
        if miss == Missing.NONE and pred not in (Pred.EQ, Pred.NE):
            # NaN took the no child (an ordered compare is false); after the swap that child is yes.
            miss, branch = Missing.NAN, "yes"
        else:
            # nan/zero route by child, which we keep; nan-as-zero compares 0.0, which is not NaN.
            # eq/ne with no missing kind: NaN fails eq and passes ne, matching the swapped children.
            branch = flip[branch]
        rewriter.set_split(n, pred=INVERSE[Pred(pred)], threshold=d["threshold"], missing=miss, default_branch=branch, swap=True)
        return True


@register_pass
@dataclass
class SortBranches(Pass):
    """Record node hit counts from calibration rows and make the hot child the fall-through."""

    name = "tree-sort-branches"
    summary = "count node hits on calibration rows (tree.hits) and make each split's hotter child its yes/fall-through child (exact)"
    calibration: Any = option("calibration rows: a .npy or .csv file (or an array from Python)")

    def apply(self, module, ctx: PassContext) -> None:
        rows = load_rows(self.calibration)
        for ens in ensembles(module):
            x = ens.operands[0]
            if not isinstance(x, BlockArgument):
                ctx.stat("ensembles-skipped-input-not-an-argument")
                continue
            if rows.shape[1] != ens.n_features:
                raise TimberError(f"calibration rows have {rows.shape[1]} columns, but the model has {ens.n_features} features")
            xs = rows.astype(x.type.element.numpy).astype(ens.compare_type.numpy)
            neg = ens.attributes.get("cat_negative")
            cat_negative = neg.value if neg is not None else "value"
            ctx.rewriter.set_attr(ens, "tree.calibration_rows", IntegerAttr(len(rows)))
            for op in ens.trees:
                if not isinstance(op, TreeOp):
                    continue
                hits = node_hits(op.table, xs, cat_negative)
                ctx.rewriter.set_attr(op, HITS, DenseArrayAttr(hits, i64))
                t = op.table
                split = np.flatnonzero((t.pred != Pred.LEAF) & (t.pred != Pred.IN))
                if not np.any(hits[t.no[split]] > hits[t.yes[split]]):
                    continue
                tg: TreeGraph = tree_graph_of(op)
                rw = TreeRewriter(tg)
                n = apply_tree_patterns(tg, [HotChildFirst()], rw, nodes=t.preorder())
                # Depths, feature use and threshold precision are unchanged; shapes are mirrored.
                keep = STRUCTURE_ATTRS + NARROW_ATTRS
                commit_tree_graph(ctx.rewriter, op, tg, f"swapped {n} splits", 0, keep)
                ctx.stat("splits-swapped", n)
            ctx.stat("trees-profiled", sum(isinstance(o, TreeOp) for o in ens.trees))
