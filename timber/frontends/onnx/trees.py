"""ONNX-ML tree ensembles: TreeEnsembleRegressor / TreeEnsembleClassifier (ai.onnx.ml opsets 1
and 3, with the double `*_as_tensor` attributes) and TreeEnsemble (opset 5), as ONNX Runtime
computes them (`onnxruntime/core/providers/cpu/ml/tree_ensemble_common.h`,
`tree_ensemble_aggregator.h`, `ml_common.h`), one thread:

* Trees are the runs of equal `nodes_treeids` in node order; a tree's root is its first listed
  node.  A split sends the row to the true child when `x CMP threshold` (LEQ/LT/GTE/GT/EQ/NEQ),
  or when x is NaN and `nodes_missing_value_tracks_true` is 1.  The comparison is C++'s
  between the input type and the threshold type (float/float: f32; anything double: f64).
* Scores are accumulated in the threshold type (float, or double for double inputs and
  `*_as_tensor` models), tree after tree, each leaf's weights in (tree, node, attribute order),
  starting at 0; base values are added after the sum (AVERAGE: `sum / n_trees + base`).
  One target: every leaf's first weight counts.  Several targets: a target that no reached
  leaf names keeps "no score" and is written as 0, base value or not.
* MIN / MAX (regressors): the per-target min/max of the reached leaves' weights, then + base.
* Classifiers always sum, then ONNX Runtime's rules for base values and two classes
  (`TreeAggregatorClassifier::FinalizeScores`) decide the probability columns, before the
  post transform in float32.  The label output is computed from the same scores.

In IR: a `tree.ensemble` with compare = the comparison type, leaves = accumulation = the
threshold type, init 0; MIN/MAX use one ensemble per tree and `arith` selects (cost: one
ensemble call per tree).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ir.attributes import DenseElementsAttr
from ir.core import Value
from ir.dialects import arith, math
from ir.dialects.tree import EnsembleOp, Missing, NodeTable, Pred
from ir.types import TensorType, f32, f64

from .builder import Builder

MODES = {
    "BRANCH_LEQ": Pred.LE,
    "BRANCH_LT": Pred.LT,
    "BRANCH_GTE": Pred.GE,
    "BRANCH_GT": Pred.GT,
    "BRANCH_EQ": Pred.EQ,
    "BRANCH_NEQ": Pred.NE,
}
V5_MODES = {0: Pred.LE, 1: Pred.LT, 2: Pred.GE, 3: Pred.GT, 4: Pred.EQ, 5: Pred.NE, 6: "MEMBER"}
POST = ("NONE", "LOGISTIC", "SOFTMAX", "SOFTMAX_ZERO", "PROBIT")
AGG = ("AVERAGE", "SUM", "MIN", "MAX")
MAX_NODES = 50_000_000


@dataclass
class Tree:
    """One tree in pre-order (node 0 the root): split columns and, per leaf, its weights
    [(target, weight), ...] in ONNX Runtime's order."""

    feature: list = field(default_factory=list)
    pred: list = field(default_factory=list)
    threshold: list = field(default_factory=list)
    yes: list = field(default_factory=list)
    no: list = field(default_factory=list)
    nan_true: list = field(default_factory=list)
    weights: list = field(default_factory=list)  # None at splits

    def add(self) -> int:
        for c in (self.feature, self.pred, self.threshold, self.yes, self.no, self.nan_true, self.weights):
            c.append(None)
        return len(self.feature) - 1

    def leaves(self):
        return [w for w in self.weights if w is not None]


def _attr_floats(b: Builder, a: dict, name: str, n: int | None = None):
    """`name` (float list) or `name_as_tensor` (double tensor): (array, is_double)."""
    t = a.get(name + "_as_tensor")
    if t is not None and a.get(name) is not None and len(a[name]):
        b.fail(f"both '{name}' and '{name}_as_tensor' are set")
    if t is not None:
        arr = np.asarray(t).reshape(-1)
        if arr.dtype.kind != "f":
            b.fail(f"'{name}_as_tensor' holds {arr.dtype} values, expected float or double")
        return arr.astype(np.float64) if arr.dtype == np.float64 else arr.astype(np.float32), arr.dtype == np.float64
    v = a.get(name)
    arr = np.asarray(v if v is not None else [], np.float32)
    if n is not None and len(arr) != n:
        b.fail(f"'{name}' has {len(arr)} values, expected {n}")
    return arr, False


def _ints(b: Builder, a: dict, name: str, n: int | None = None, required=True) -> np.ndarray:
    v = a.get(name)
    if v is None:
        if required:
            b.fail(f"attribute '{name}' is missing")
        v = []
    arr = np.asarray(v).reshape(-1)
    if arr.dtype.kind not in "iub" and len(arr):
        b.fail(f"'{name}' must hold integers")
    arr = arr.astype(np.int64)
    if n is not None and len(arr) != n:
        b.fail(f"'{name}' has {len(arr)} values, expected {n} (one per node)")
    return arr


def trees_v1(b: Builder, a: dict, kind: str, n_features: int):
    """The trees of a TreeEnsembleRegressor/Classifier node, their threshold type and the
    per-leaf weights. kind: "target" (regressor) or "class" (classifier)."""
    tree_ids = _ints(b, a, "nodes_treeids")
    n = len(tree_ids)
    if n == 0:
        b.fail("the ensemble has no nodes")
    if n > MAX_NODES:
        b.fail(f"{n} nodes: more than the {MAX_NODES} this front-end accepts")
    node_ids = _ints(b, a, "nodes_nodeids", n)
    feats = _ints(b, a, "nodes_featureids", n)
    tids = _ints(b, a, "nodes_truenodeids", n)
    fids = _ints(b, a, "nodes_falsenodeids", n)
    modes = a.get("nodes_modes")
    if modes is None or len(modes) != n:
        b.fail(f"'nodes_modes' has {0 if modes is None else len(modes)} values, expected {n}")
    modes = [m.decode() if isinstance(m, bytes) else str(m) for m in modes]
    miss = _ints(b, a, "nodes_missing_value_tracks_true", required=False)
    thr, thr_double = _attr_floats(b, a, "nodes_values")
    if len(thr) != n:
        b.fail(f"'nodes_values' has {len(thr)} values, expected {n} (one per node)")
    w_tree = _ints(b, a, f"{kind}_treeids")
    m = len(w_tree)
    w_node = _ints(b, a, f"{kind}_nodeids", m)
    w_id = _ints(b, a, f"{kind}_ids", m)
    w_val, w_double = _attr_floats(b, a, f"{kind}_weights")
    if len(w_val) != m:
        b.fail(f"'{kind}_weights' has {len(w_val)} values, expected {m}")
    bad = [md for md in modes if md not in MODES and md != "LEAF"]
    if bad:
        b.fail(f"node mode '{bad[0]}' is not one of LEAF, {', '.join(MODES)}")

    index = {}
    for i in range(n):
        key = (int(tree_ids[i]), int(node_ids[i]))
        if key in index:
            b.fail(f"node {key[1]} of tree {key[0]} is listed twice")
        index[key] = i
    # leaf weights in ONNX Runtime's order: sorted by (tree, node), then attribute order
    order = sorted(range(m), key=lambda j: (int(w_tree[j]), int(w_node[j]), j))
    leaf_w: dict[int, list] = {}
    for j in order:
        i = index.get((int(w_tree[j]), int(w_node[j])))
        if i is None:
            b.fail(f"a weight names node {int(w_node[j])} of tree {int(w_tree[j])}, which does not exist")
        if modes[i] != "LEAF":
            continue  # ONNX Runtime ignores weights on split nodes (old onnxmltools wrote some)
        leaf_w.setdefault(i, []).append((int(w_id[j]), w_val[j]))
    # trees: runs of equal tree ids, rooted at their first node
    roots, seen = [], set()
    for i in range(n):
        t = int(tree_ids[i])
        if i == 0 or t != int(tree_ids[i - 1]):
            if t in seen:
                b.fail(f"the nodes of tree {t} are not listed together")
            seen.add(t)
            roots.append(i)
    ttype = np.float64 if (thr_double or w_double) else np.float32

    def split(i):
        f = int(feats[i])
        if not 0 <= f < n_features:
            b.fail(f"node {int(node_ids[i])} of tree {int(tree_ids[i])} reads feature {f}; the input has {n_features}")
        nan_true = i < len(miss) and miss[i] == 1
        kids = []
        for ids in (tids, fids):
            c = index.get((int(tree_ids[i]), int(ids[i])))
            if c is None:
                b.fail(f"node {int(node_ids[i])} of tree {int(tree_ids[i])} has child {int(ids[i])}, which does not exist")
            kids.append(c)
        return f, MODES[modes[i]], thr[i], kids[0], kids[1], nan_true

    def leaf(i):
        w = leaf_w.get(i)
        if not w:
            b.fail(f"leaf {int(node_ids[i])} of tree {int(tree_ids[i])} has no weight")
        return w

    trees = [_walk(b, r, lambda i: modes[i] == "LEAF", split, leaf, n) for r in roots]
    return trees, ttype, (thr_double or w_double)


def trees_v5(b: Builder, a: dict, n_features: int):
    """The trees of a TreeEnsemble (ai.onnx.ml opset 5) node, their threshold type and whether
    MEMBER splits occur (they need f64 comparisons, see `_member_split`)."""
    splits = np.asarray(a.get("nodes_splits", []))
    if splits.dtype.kind != "f":
        b.fail("'nodes_splits' must be a float or double tensor")
    n = len(splits)
    feats = _ints(b, a, "nodes_featureids", n)
    modes = np.asarray(a.get("nodes_modes", []))
    if len(modes) != n:
        b.fail(f"'nodes_modes' has {len(modes)} values, expected {n}")
    modes = modes.astype(np.int64)
    tids = _ints(b, a, "nodes_truenodeids", n)
    fids = _ints(b, a, "nodes_falsenodeids", n)
    tleaf = _ints(b, a, "nodes_trueleafs", n)
    fleaf = _ints(b, a, "nodes_falseleafs", n)
    miss = _ints(b, a, "nodes_missing_value_tracks_true", required=False)
    roots = _ints(b, a, "tree_roots")
    targets = _ints(b, a, "leaf_targetids")
    lw = np.asarray(a.get("leaf_weights", []))
    if len(lw) != len(targets):
        b.fail(f"'leaf_weights' has {len(lw)} values, 'leaf_targetids' {len(targets)}")
    members = np.asarray(a.get("membership_values", []), np.float64).reshape(-1)
    sets, cur = [], []
    for v in members:
        if np.isnan(v):
            sets.append(cur)
            cur = []
        else:
            cur.append(v)
    sets.append(cur)
    bad = [int(m) for m in modes if int(m) not in V5_MODES]
    if bad:
        b.fail(f"node mode {bad[0]} is not one of 0..6 (LEQ, LT, GTE, GT, EQ, NEQ, MEMBER)")
    member_of, k = {}, 0
    for i in range(n):
        if modes[i] == 6:
            if k >= len(sets):
                b.fail("more MEMBER nodes than sets in 'membership_values'")
            if not sets[k]:
                b.fail(f"MEMBER node {i} has an empty set")
            member_of[i] = sets[k]
            k += 1
    ttype = splits.dtype.type if splits.dtype in (np.float32, np.float64) else np.float32
    nl = len(targets)
    trees = []
    for r in roots.tolist():
        if not 0 <= r < n:
            b.fail(f"tree root {r} is not a node (there are {n})")
        trees.append(_walk_v5(b, r, n, feats, modes, splits, tids, fids, tleaf, fleaf, miss, member_of, targets, lw, nl, n_features))
    return trees, ttype, bool(member_of)


def _walk(b, root, is_leaf, split, leaf, n_nodes) -> Tree:
    """Pre-order copy of the tree under `root` (refusing cycles and shared nodes)."""
    t = Tree()
    seen = set()
    stack = [(root, None, None)]
    while stack:
        i, parent, side = stack.pop()
        if i in seen:
            b.fail("a tree's nodes form a cycle or share a child")
        seen.add(i)
        k = t.add()
        if parent is not None:
            (t.yes if side == "yes" else t.no)[parent] = k
        if is_leaf(i):
            t.weights[k] = leaf(i)
            continue
        f, p, thr, yes, no, nan_true = split(i)
        t.feature[k], t.pred[k], t.threshold[k], t.nan_true[k] = f, p, thr, nan_true
        stack.append((no, k, "no"))
        stack.append((yes, k, "yes"))
    return t


def _walk_v5(b, root, n, feats, modes, splits, tids, fids, tleaf, fleaf, miss, member_of, targets, lw, nl, n_features) -> Tree:
    t = Tree()
    budget = [10 * (n + nl) + 1000]

    def leaf(j, parent, side):
        if not 0 <= j < nl:
            b.fail(f"leaf index {j} out of range ({nl} leaves)")
        k = t.add()
        (t.yes if side == "yes" else t.no)[parent] = k
        t.weights[k] = [(int(targets[j]), lw[j])]

    stack = [("node", root, None, None, 0)]
    while stack:
        kind, i, parent, side, depth = stack.pop()
        budget[0] -= 1
        if budget[0] < 0 or depth > 10_000:
            b.fail("a tree's nodes form a cycle (or MEMBER sets make it too large to unroll)")
        if kind == "leaf":
            leaf(i, parent, side)
            continue
        if not 0 <= i < n:
            b.fail(f"node index {i} out of range ({n} nodes)")
        f = int(feats[i])
        if not 0 <= f < n_features:
            b.fail(f"node {i} reads feature {f}; the input has {n_features}")
        nan_true = i < len(miss) and miss[i] == 1
        true_child = ("leaf" if tleaf[i] else "node", int(tids[i]))
        false_child = ("leaf" if fleaf[i] else "node", int(fids[i]))
        mode = V5_MODES[int(modes[i])]
        if mode == "MEMBER":
            _member_split(t, stack, f, member_of[i], nan_true, parent, side, true_child, false_child, depth)
            continue
        splits_i = splits[i]
        k = t.add()
        if parent is not None:
            (t.yes if side == "yes" else t.no)[parent] = k
        t.feature[k], t.pred[k], t.threshold[k], t.nan_true[k] = f, mode, splits_i, nan_true
        stack.append((false_child[0], false_child[1], k, "no", depth + 1))
        stack.append((true_child[0], true_child[1], k, "yes", depth + 1))
    return _renumber(t)


def _member_split(t: Tree, stack, f, members, nan_true, parent, side, true_child, false_child, depth) -> None:
    """A MEMBER split: true when x equals one of the members, or when x is NaN and missing
    values track true.  This is what ONNX Runtime 1.32 computes for non-negative members
    (measured: 1.5 is not in {0, 1, 3}; NaN and ±inf are in no set).  With a negative member
    it treats fractional inputs erratically (0.5 is in {0, -1} but not in {0, 1}); integral
    inputs agree with equality.  Emitted as `x le +inf` (false only for NaN) over a binary
    search of the members; each region gets its own copy of the true or false subtree."""
    vals = sorted({float(m) for m in members})
    tests = []  # (c, strict): `x < c` (strict) or `x <= c`; region {m} lies between (m, lt) and (m, le)
    for m in vals:
        tests += [(m, True), (m, False)]

    def add_node(pred, thr, par, sd):
        k = t.add()
        if par is not None:
            (t.yes if sd == "yes" else t.no)[par] = k
        t.feature[k], t.pred[k], t.threshold[k], t.nan_true[k] = f, pred, thr, False
        return k

    root = add_node(Pred.LE, np.inf, parent, side)  # NaN: the "no" child
    nan_goes = true_child if nan_true else false_child
    stack.append((nan_goes[0], nan_goes[1], root, "no", depth + 1))

    def build(lo: int, hi: int, par, sd):
        """Regions lo..hi under (par, sd); region j lies between tests j-1 and j (odd j: a member)."""
        if lo == hi:
            child = true_child if lo % 2 == 1 else false_child
            stack.append((child[0], child[1], par, sd, depth + 1))
            return
        mid = (lo + hi) // 2
        c, strict = tests[mid]
        k = add_node(Pred.LT if strict else Pred.LE, c, par, sd)
        build(mid + 1, hi, k, "no")
        build(lo, mid, k, "yes")

    build(0, len(tests), root, "yes")


def _renumber(t: Tree) -> Tree:
    """Pre-order renumbering (the v5 walk appends MEMBER chains out of pre-order)."""
    order, stack = [], [0]
    while stack:
        i = stack.pop()
        order.append(i)
        if t.weights[i] is None:
            stack.append(t.no[i])
            stack.append(t.yes[i])
    new = {old: k for k, old in enumerate(order)}
    out = Tree()
    for old in order:
        k = out.add()
        out.weights[k] = t.weights[old]
        if t.weights[old] is None:
            out.feature[k], out.pred[k], out.threshold[k], out.nan_true[k] = t.feature[old], t.pred[old], t.threshold[old], t.nan_true[old]
            out.yes[k], out.no[k] = new[t.yes[old]], new[t.no[old]]
    return out


# ----- IR ----------------------------------------------------------------------------------------


def _table(t: Tree, leaf_rows, tdt, ldt) -> NodeTable:
    n = len(t.feature)
    split = np.array([w is None for w in t.weights])
    feature = np.array([f if s else -1 for f, s in zip(t.feature, split)], np.int32)
    pred = np.array([int(p) if s else int(Pred.LEAF) for p, s in zip(t.pred, split)], np.uint8)
    thr = np.array([th if s else 0.0 for th, s in zip(t.threshold, split)], np.float64).astype(tdt)
    yes = np.array([y if s else -1 for y, s in zip(t.yes, split)], np.int32)
    no = np.array([x if s else -1 for x, s in zip(t.no, split)], np.int32)
    # NaN to the true branch: for ne it goes there anyway
    track = np.array([bool(m) and s and p != Pred.NE for m, s, p in zip(t.nan_true, split, t.pred)])
    missing = np.where(track, int(Missing.NAN), int(Missing.NONE)).astype(np.uint8)
    default = np.where(track, yes, -1).astype(np.int32)
    leaf = np.zeros((n, len(next(iter(leaf_rows.values()))) if leaf_rows else 1), ldt)
    for i, row in leaf_rows.items():
        leaf[i] = row
    return NodeTable(feature, pred, thr, yes, no, missing, default, leaf)


class Ensemble:
    """Emits what ONNX Runtime computes for a list of trees before its FinalizeScores step."""

    def __init__(self, b: Builder, x: Value, trees: list[Tree], n_targets: int, compare, acc):
        self.b, self.x, self.trees, self.k = b, x, trees, n_targets
        self.compare, self.acc = compare, acc
        self.tdt = np.float64 if compare == f64 else np.float32
        self.ldt = np.float64 if acc == f64 else np.float32
        for t in trees:
            for w in t.leaves():
                for target, value in w:
                    if not 0 <= target < n_targets:
                        b.fail(f"a leaf weight names target/class {target}; the node has {n_targets}")
                    if np.isnan(value):
                        b.fail("a leaf weight is NaN")

    def _ensemble(self, trees_rows, width, name):
        """One tree.ensemble over `trees_rows` = [(tree, {node: leaf row})]."""
        ens = EnsembleOp.build(self.x, width, self.acc, self.compare, self.acc, init=np.zeros(width), name=name)
        for t, rows in trees_rows:
            ens.add_tree(_table(t, rows, self.tdt, self.ldt), 0)
        return self.b.op(ens)

    def coverage(self) -> list[str]:
        """Per target: "always" (some tree names it at every leaf), "never", or "sometimes"."""
        out = []
        for k in range(self.k):
            named = [[any(tg == k for tg, _ in w) for w in t.leaves()] for t in self.trees]
            if any(all(c) for c in named):
                out.append("always")
            elif not any(any(c) for c in named):
                out.append("never")
            else:
                out.append("sometimes")
        return out

    def sum_single(self) -> Value:
        """One target: Σ of every reached leaf's first weight, tree after tree."""
        rows = [(t, {i: [w[0][1]] for i, w in enumerate(t.weights) if w is not None}) for t in self.trees]
        return self._ensemble(rows, 1, "sum")

    def sum_multi(self) -> tuple[Value, Value | None]:
        """Several targets: the per-target sums (each weight added on its own, in order) and,
        when some target is named only by some leaves, the per-target counts of weights."""
        rows = []
        for t in self.trees:
            depth = max(max(sum(1 for tg, _ in w if tg == k) for k in range(self.k)) for w in t.leaves())
            for copy in range(max(depth, 1)):  # a leaf naming a target twice adds twice, in order
                r = {}
                for i, w in enumerate(t.weights):
                    if w is None:
                        continue
                    v = np.zeros(self.k)
                    for k in range(self.k):
                        ws = [val for tg, val in w if tg == k]
                        if copy < len(ws):
                            v[k] = ws[copy]
                    r[i] = v
                rows.append((t, r))
        s = self._ensemble(rows, self.k, "sum")
        if all(c != "sometimes" for c in self.coverage()):
            return s, None
        crow = [
            (t, {i: [sum(1 for tg, _ in w if tg == k) for k in range(self.k)] for i, w in enumerate(t.weights) if w is not None})
            for t in self.trees
        ]
        return s, self._ensemble(crow, self.k, "count")

    def extremum(self, kind: str) -> tuple[Value, Value | None]:
        """MIN/MAX: per target, the min/max of the reached leaves' weights (first one wins ties),
        and (several targets) a 0/1 flag per target for "some reached leaf names it"."""
        b, k = self.b, self.k
        better = "olt" if kind == "MIN" else "ogt"
        acc = has = None
        for ti, t in enumerate(self.trees):
            if k == 1:
                rows = {i: [w[0][1]] for i, w in enumerate(t.weights) if w is not None}
                v = self._ensemble([(t, rows)], 1, f"tree{ti}")
                acc = v if acc is None else b.select(b.cmp(better, v, acc), v, acc)
                continue
            rows = {}
            for i, w in enumerate(t.weights):
                if w is None:
                    continue
                vals, flags = np.zeros(k), np.zeros(k)
                for tg, val in w:
                    if not flags[tg] or (val < vals[tg] if kind == "MIN" else val > vals[tg]):
                        vals[tg] = val
                    flags[tg] = 1.0
                rows[i] = np.concatenate([vals, flags])
            both = self._ensemble([(t, rows)], 2 * k, f"tree{ti}")
            v = b.concat([b.extract(both, j) for j in range(k)])
            f = b.concat([b.extract(both, j) for j in range(k, 2 * k)])
            fset = b.cmp("one", f, b.splat(0.0, f))
            if acc is None:
                acc, has = v, f
                continue
            hset = b.cmp("one", has, b.splat(0.0, has))
            take = b.op(
                arith.AndIOp.build(
                    fset,
                    b.op(
                        arith.OrIOp.build(b.op(arith.XOrIOp.build(hset, b.op(arith.CmpFOp.build("oeq", has, has)))), b.cmp(better, v, acc))
                    ),
                )
            )
            acc = b.select(take, v, acc)
            has = b.select(fset, f, has)
        return acc, has


def regressor(b: Builder, x: Value, trees, n_targets: int, agg: str, post: str, base: np.ndarray, compare, acc, out=f32) -> Value:
    """TreeEnsembleRegressor / TreeEnsemble: the scores of `Y`, of element type `out` (float;
    TreeEnsemble: the input type)."""
    if agg not in AGG:
        b.fail(f"aggregate_function '{agg}' is not one of {', '.join(AGG)}")
    if post not in POST:
        b.fail(f"post_transform '{post}' is not one of {', '.join(POST)}")
    if not trees:
        b.fail("the ensemble has no trees")
    e = Ensemble(b, x, trees, n_targets, compare, acc)
    base = np.asarray(base, e.ldt)
    if len(base) not in (0, n_targets):
        b.fail(f"{len(base)} base values for {n_targets} targets: ONNX Runtime takes 0 or {n_targets}")
    if n_targets == 1:
        if agg in ("SUM", "AVERAGE"):
            s = e.sum_single()
            if agg == "AVERAGE":
                s = b.div(s, b.const([len(trees)], acc))
        else:
            s, _ = e.extremum(agg)
        origin = base[0] if len(base) == 1 else 0.0
        s = b.add(s, b.const([origin], acc), name="score")
        if post == "PROBIT":
            return b.convert(b.probit(b.convert(s, f32)), out)
        return b.convert(s, out)  # one target: ONNX Runtime applies no other transform
    use_base = len(base) == n_targets
    if agg in ("SUM", "AVERAGE"):
        s, count = e.sum_multi()
        has = None if count is None else b.cmp("ogt", count, b.splat(0.0, count))
        if agg == "AVERAGE":
            s = b.div(s, b.splat(float(len(trees)), s))
        if use_base:
            s = b.add(s, b.const(base, acc), name="score")
    else:
        s, flags = e.extremum(agg)
        if use_base:
            s = b.add(b.const(base, acc), s, name="score")
        has = b.cmp("one", flags, b.splat(0.0, flags))
    cov = e.coverage()
    if any(c != "always" for c in cov):  # targets no reached leaf names are written as 0
        if has is None:
            has = b.const([c == "always" for c in cov], f32)
            has = b.cmp("one", has, b.splat(0.0, has))
        s = b.select(has, s, b.splat(0.0, s), name="score")
    if post == "NONE":
        return b.convert(s, out)
    if post == "SOFTMAX_ZERO" and out == f64:
        return b.softmax_zero(s)  # measured: ONNX Runtime keeps these scores double
    return b.convert(b.transform(post, b.convert(s, f32)), out)


def _lookup(b: Builder, idx: Value, values) -> Value:
    """values[idx] as f64 (idx: tensor<1xi64>)."""
    size = 1 << max(0, (len(values) - 1).bit_length())
    table = np.zeros(size)
    table[: len(values)] = values
    return b.op(arith.LookupOp.build(idx, DenseElementsAttr(table, TensorType((size,), f64)), name="label"))


def _binary_label(b: Builder, pos: Value, case, labels, acc) -> Value | None:
    """_set_score_binary: one class id and all weights >= 0: `pos > 0.5`; one class id and
    mixed signs: `pos > 0` (labels[1] / labels[0]); otherwise `pos > 0` gives 1 / 0."""
    if labels is None:
        return None
    if case is None:
        l0, l1 = 0.0, 1.0
    else:
        if len(labels) != 2:
            return None
        l0, l1 = labels
    thr = 0.5 if case == "positive" else 0.0
    gt = b.cmp("ogt", pos, b.const([thr], acc))
    return b.select(gt, b.const([l1], f64), b.const([l0], f64), name="label")


def classifier(
    b: Builder, x: Value, trees, n_classes: int, post: str, base: np.ndarray, compare, acc, labels=None
) -> tuple[Value, Value | None]:
    """TreeEnsembleClassifier: (probabilities [float32, n_classes wide], the label as f64 or
    None when it cannot be computed: string labels, per-row class coverage).

    Only class coverages known at compile time are supported (every converter writes them):
    each class is named by some tree at every leaf, or never."""
    if post not in POST:
        b.fail(f"post_transform '{post}' is not one of {', '.join(POST)}")
    if not trees:
        b.fail("the ensemble has no trees")
    e = Ensemble(b, x, trees, max(n_classes, 1), compare, acc)
    base = np.asarray(base, e.ldt)
    ids = {tg for t in trees for w in t.leaves() for tg, _ in w}
    if n_classes == 1:
        if len(base) == 2:
            b.fail("a one-class classifier with two base values: ONNX Runtime writes past its output")
        s = e.sum_single()
        if len(base) == 1:
            s = b.add(s, b.const(base[:1], acc))
        label = _binary_label(b, s, None, labels, acc)
        s = b.convert(s, f32)
        return (b.probit(s) if post == "PROBIT" else s), label
    cov = e.coverage()
    s, count = e.sum_multi()
    cols = [b.extract(s, k) for k in range(n_classes)]
    zero = b.const([0.0], acc)
    if len(base) not in (0, n_classes) and not (n_classes == 2 and len(base) == 1):
        b.fail(f"{len(base)} base values for {n_classes} classes: ONNX Runtime takes 0 or {n_classes}")
    if n_classes > 2:
        # a class no reached leaf names: its base value if it has one, else 0
        out = []
        for k in range(n_classes):
            bk = b.const(base[k : k + 1], acc) if k < len(base) else zero
            with_score = b.add(cols[k], bk) if k < len(base) else cols[k]
            if cov[k] == "always":
                out.append(with_score)
            elif cov[k] == "never":
                out.append(bk)
            else:
                flag = b.cmp("ogt", b.extract(count, k), zero)
                out.append(b.select(flag, with_score, bk))
        label = None
        scored = [k for k in range(n_classes) if cov[k] == "always" or k < len(base)]
        if labels is not None and "sometimes" not in cov and scored:
            # get_max_weight: the first scored class with the largest score
            idx = b.op(math.ArgmaxOp.build(b.concat([out[k] for k in scored])))
            label = _lookup(b, idx, [labels[k] for k in scored])
        return b.transform(post, b.convert(b.concat(out, name="score"), f32)), label
    if "sometimes" in cov:
        b.fail("a class is named by some leaves of every tree but not all: per-row class coverage of a binary classifier is not supported")
    has = [c == "always" for c in cov]
    # two classes (TreeAggregatorClassifier::FinalizeScores, binary branch)
    binary_case = len(ids) == 1
    positive = all(val >= 0 for t in trees for w in t.leaves() for _, val in w)
    add = -1
    if len(base) == 2:
        if has[1]:
            p1 = b.add(b.const(base[1:2], acc), cols[0] if has[0] else zero)
            cols = [b.neg(p1), p1]
            has = [has[0], True]
        else:
            cols = [b.add(cols[0], b.const(base[0:1], acc)) if has[0] else b.add(zero, b.const(base[0:1], acc)), cols[1]]
        scores = [c if h else zero for c, h in zip(cols, has)]
    else:
        if len(base) == 1:
            cols[0] = b.add(cols[0], b.const(base[0:1], acc))
        elif len(base) == 0:
            add = 3
        else:
            b.fail(f"{len(base)} base values for 2 classes: ONNX Runtime takes 0, 1 or 2")
        # a class without a score is written as 0 (the base value added to it is lost)
        scores = [cols[0] if has[0] else zero] + ([cols[1]] if has[1] else [])
    pos = scores[1] if len(scores) == 2 and has[1] else scores[0]
    if binary_case:
        add = "positive" if positive else "mixed"
    pos = _binary_label(b, pos, add if binary_case else None, labels, acc)
    if len(scores) == 2:
        return b.transform(post, b.convert(b.concat(scores, name="score"), f32)), pos
    s = scores[0]  # one score, in the accumulation type; write_scores adds the second column
    if post == "PROBIT":
        b.fail("PROBIT on a binary classifier with one score: ONNX Runtime writes one column of two")
    if post == "LOGISTIC" and add in ("positive", "mixed", 3):
        # ONNX Runtime 1.32 (measured): [logistic(-s), logistic(s)] whatever the weights' signs
        s32 = b.convert(s, f32)
        return b.concat([b.logistic(b.neg(s32)), b.logistic(s32)], name="proba"), pos
    if add == "positive":
        return b.convert(b.concat([b.sub(b.const([1.0], acc), s), s]), f32, name="proba"), pos
    if add in ("mixed", 3):
        if post == "LOGISTIC":
            s32 = b.convert(s, f32)
            return b.concat([b.logistic(b.neg(s32)), b.logistic(s32)], name="proba"), pos
        return b.convert(b.concat([b.neg(s), s]), f32, name="proba"), pos
    b.fail("a binary classifier whose second column ONNX Runtime leaves unwritten")
