"""`tree` dialect: decision-tree ensembles with every split semantic spelled out.

    %m = tree.ensemble %x {compare = f32, init = dense<[0.5]> : tensor<1xf32>, leaves = f32} : tensor<4xf32> -> tensor<1xf32> {
      tree.tree out 0 {
        0: x[2] lt 2.45 ? 1 : 2 missing(nan) -> 1
        1: leaf 0.43
        2: x[3] in {1, 4} ? 3 : 4 missing(nan) -> 4
        3: leaf -0.2
        4: leaf 0.1
      }
      tree.oblivious out 0 {
        level 0: x[0] gt 0.5 missing(nan) -> false
        level 1: x[3] gt -1.25
        leaves [0.1, 0.2, 0.3, 0.4]
      }
    }

Semantics (one row `x`):

* `tree.ensemble` starts each output `k` at `init[k]` and adds the tree outputs in the order the
  trees appear, each addition rounded to the result element type (the accumulation type).
  A tree with `out k` and leaf width `d` adds its leaf vector to outputs `k .. k+d-1`.
* A split compares `v` (x[f] converted exactly or by rounding to the `compare` type) with its
  threshold, held in the `compare` type: `lt le gt ge eq` are C's `< <= > >= ==` (false when
  v is NaN), `ne` is C's `!=` (true when v is NaN); `in` is categorical set membership (below).  Predicate true → the `?` child ("yes"),
  false → the `:` child ("no").
* Missing values, per split (`missing(...)`):
    - absent (kind `none`): nothing special; NaN flows into the comparison (false, but true for `ne`);
    - `nan -> c`: NaN goes to child `c`;
    - `zero -> c`: NaN, and any `|v| <= 1e-35` (the f32 constant 1e-35 widened), go to child `c`
      (LightGBM's MissingType::Zero);
    - `nan-as-zero`: NaN is replaced by 0.0, then compared (LightGBM's MissingType::None).
* `in {c0, c1, ...}`: after missing handling, the row's category is `trunc(v)`; it is invalid,
  and takes the "no" child, if `v` is ±inf, if it is negative (the ensemble's `cat_negative`
  says whether that means `v < 0` — "value", the default — or `trunc(v) < 0` — "code"), or if
  it is not below 2^31.  A valid category in the set takes "yes", any other "no".
* `tree.oblivious`: level `d` computes bit_d = predicate true (missing handled as above, with
  `-> true/false` naming the bit); the leaf index is `sum(bit_d << d)`.

A tree's nodes live in numpy columns (`NodeTable`), not one Python object per node, so that a
1000-tree depth-8 forest prints, parses and verifies in seconds; `as_graph()` gives passes a
networkx view of one tree.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import IntEnum

import numpy as np

from ..attributes import Attribute, DenseElementsAttr, IntegerAttr, StringAttr, TypeAttr, register_attr
from ..core import Block, Region
from ..floats import format_float, format_floats, parse_float, parse_floats
from ..opdef import AttrDef, HasParent, NoTerminator, OpDef, OperandDef, Pure, Rank1FloatTensor, RegionDef, ResultDef, register
from ..types import FloatType, TensorType, f32, f64


class Pred(IntEnum):
    """Split predicates.  LEAF marks a leaf row in a node table."""

    LEAF = 0
    LT = 1
    LE = 2
    GT = 3
    GE = 4
    EQ = 5
    NE = 6
    IN = 7


class Missing(IntEnum):
    """What counts as missing at a split, and what happens to it."""

    NONE = 0
    NAN = 1
    ZERO = 2
    NAN_AS_ZERO = 3


PRED_NAMES = {Pred.LT: "lt", Pred.LE: "le", Pred.GT: "gt", Pred.GE: "ge", Pred.EQ: "eq", Pred.NE: "ne", Pred.IN: "in"}
PRED_BY_NAME = {v: k for k, v in PRED_NAMES.items()}
MISSING_NAMES = {Missing.NAN: "nan", Missing.ZERO: "zero", Missing.NAN_AS_ZERO: "nan-as-zero"}
MISSING_BY_NAME = {v: k for k, v in MISSING_NAMES.items()}
ZERO_THRESHOLD = float(np.float32(1e-35))  # LightGBM's kZeroThreshold (a float literal, used as double)
# Per-node calibration hit counts on a `tree.tree` (array<i64>, table order): set by the
# tree-sort-branches pass, read by the LLVM back-end for branch weights.
HITS = "tree.hits"
CAT_LIMIT = 2**31  # categories at or past this are invalid


def bitset_from_members(members) -> np.ndarray:
    """uint32 words with bit c set for each member c (bit c%32 of word c//32)."""
    members = np.asarray(sorted(set(int(m) for m in members)), dtype=np.int64)
    if len(members) == 0:
        return np.zeros(0, np.uint32)
    words = np.zeros(int(members[-1]) // 32 + 1, np.uint32)
    np.bitwise_or.at(words, members // 32, (np.uint32(1) << (members % 32).astype(np.uint32)))
    return words


class CategorySets:
    """Builds a NodeTable's `cat_start`/`cat_len`/`cat_words` columns node by node."""

    def __init__(self, n: int):
        self.start, self.len = np.zeros(n, np.int32), np.zeros(n, np.int32)
        self.words: list[np.ndarray] = []
        self.n_words = 0

    def add(self, row: int, members) -> None:
        """Node `row` tests membership in `members` (category codes)."""
        w = bitset_from_members(members)
        self.start[row], self.len[row] = self.n_words, len(w)
        self.words.append(w)
        self.n_words += len(w)

    def columns(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(cat_start, cat_len, cat_words)."""
        return self.start, self.len, np.concatenate(self.words) if self.words else np.zeros(0, np.uint32)


class LinearLeaves:
    """Builds a NodeTable's linear-leaf columns (`lin_*`) leaf by leaf, in the leaf type."""

    def __init__(self, n: int, dtype):
        self.dtype = dtype
        self.const = np.zeros(n, dtype)
        self.start, self.len = np.zeros(n, np.int32), np.zeros(n, np.int32)
        self.features: list[int] = []
        self.coeffs: list[float] = []

    def add(self, row: int, const, terms) -> None:
        """Leaf `row` outputs `const + Σ coeff·x[feature]` over `terms` = [(feature, coeff), ...]."""
        self.const[row], self.start[row], self.len[row] = const, len(self.features), len(terms)
        self.features.extend(f for f, _ in terms)
        self.coeffs.extend(c for _, c in terms)

    def columns(self) -> dict[str, np.ndarray]:
        """The `lin_*` keyword arguments of NodeTable."""
        return dict(
            lin_const=self.const,
            lin_start=self.start,
            lin_len=self.len,
            lin_feature=np.array(self.features, np.int32),
            lin_coeff=np.array(self.coeffs, self.dtype),
        )


def members_from_bitset(words: np.ndarray) -> list[int]:
    bits = np.unpackbits(np.asarray(words, np.uint32).view(np.uint8), bitorder="little")
    return np.flatnonzero(bits).tolist()


class NodeTable:
    """The nodes of one tree as numpy columns (row i = node i; node 0 is the root).

    Columns: `feature` int32 (-1 at leaves), `pred` uint8 (`Pred`), `threshold` (f32 or f64,
    0 at leaves and `in` splits), `yes`/`no` int32 children (-1 at leaves), `missing` uint8
    (`Missing`), `default` int32 (child missing values go to, -1 when none), `cat_start`/`cat_len`
    int32 (slice of `cat_words`, the uint32 bitset of an `in` split), `cat_words` uint32, `leaf`
    (n, leaf_dim) in the leaf type (0 at split nodes).

    Optional linear leaves (LightGBM `linear_tree`), all in the leaf type: `lin_const` (n,),
    `lin_start`/`lin_len` (n,) slicing `lin_feature`/`lin_coeff`.  A linear tree's leaf i
    outputs `acc = lin_const[i]`, then `acc = acc + coeff_j * x[feature_j]` for its terms in order
    (x converted to the leaf type) — unless one of those x is NaN, in which case it outputs the
    plain `leaf[i]`.  Leaf width must be 1.
    """

    COLUMNS = ("feature", "pred", "threshold", "yes", "no", "missing", "default", "cat_start", "cat_len", "leaf")

    def __init__(
        self,
        feature,
        pred,
        threshold,
        yes,
        no,
        missing,
        default,
        leaf,
        cat_start=None,
        cat_len=None,
        cat_words=None,
        lin_const=None,
        lin_start=None,
        lin_len=None,
        lin_feature=None,
        lin_coeff=None,
    ):
        n = len(feature)
        self.feature = np.ascontiguousarray(feature, np.int32)
        self.pred = np.ascontiguousarray(pred, np.uint8)
        self.threshold = np.ascontiguousarray(threshold)
        if self.threshold.dtype not in (np.float32, np.float64):
            raise TypeError(f"thresholds must be float32 or float64, found {self.threshold.dtype}")
        self.yes = np.ascontiguousarray(yes, np.int32)
        self.no = np.ascontiguousarray(no, np.int32)
        self.missing = np.ascontiguousarray(missing, np.uint8)
        self.default = np.ascontiguousarray(default, np.int32)
        leaf = np.asarray(leaf)
        self.leaf = np.ascontiguousarray(leaf.reshape(n, -1) if leaf.ndim == 1 else leaf)
        if self.leaf.dtype not in (np.float32, np.float64):
            raise TypeError(f"leaf values must be float32 or float64, found {self.leaf.dtype}")
        self.cat_start = np.zeros(n, np.int32) if cat_start is None else np.ascontiguousarray(cat_start, np.int32)
        self.cat_len = np.zeros(n, np.int32) if cat_len is None else np.ascontiguousarray(cat_len, np.int32)
        self.cat_words = np.zeros(0, np.uint32) if cat_words is None else np.ascontiguousarray(cat_words, np.uint32)
        # Linear leaves (LightGBM linear_tree): present iff lin_const is not None.
        self.lin_const = None if lin_const is None else np.ascontiguousarray(lin_const, self.leaf.dtype)
        if self.lin_const is not None:
            self.lin_start = np.zeros(n, np.int32) if lin_start is None else np.ascontiguousarray(lin_start, np.int32)
            self.lin_len = np.zeros(n, np.int32) if lin_len is None else np.ascontiguousarray(lin_len, np.int32)
            self.lin_feature = np.zeros(0, np.int32) if lin_feature is None else np.ascontiguousarray(lin_feature, np.int32)
            self.lin_coeff = np.zeros(0, self.leaf.dtype) if lin_coeff is None else np.ascontiguousarray(lin_coeff, self.leaf.dtype)
        else:
            self.lin_start = self.lin_len = self.lin_feature = self.lin_coeff = None

    @property
    def is_linear(self) -> bool:
        """True when leaves are linear models (see `linear_terms`)."""
        return self.lin_const is not None

    def linear_terms(self, i: int) -> list[tuple[int, float]]:
        """(feature, coefficient) pairs of leaf i's linear model, in evaluation order."""
        s, n = int(self.lin_start[i]), int(self.lin_len[i])
        return list(zip(self.lin_feature[s : s + n].tolist(), self.lin_coeff[s : s + n].tolist()))

    # ----- construction helpers ---------------------------------------------------------
    @classmethod
    def single_leaf(cls, value, threshold_dtype=np.float32, leaf_dtype=np.float32) -> "NodeTable":
        v = np.asarray(value, leaf_dtype).reshape(1, -1)
        return cls([-1], [Pred.LEAF], np.zeros(1, threshold_dtype), [-1], [-1], [0], [-1], v)

    @property
    def n_nodes(self) -> int:
        return len(self.feature)

    @property
    def leaf_dim(self) -> int:
        return self.leaf.shape[1]

    @property
    def is_leaf(self) -> np.ndarray:
        return self.pred == Pred.LEAF

    def category_set(self, i: int) -> list[int]:
        s, n = int(self.cat_start[i]), int(self.cat_len[i])
        return members_from_bitset(self.cat_words[s : s + n])

    def depth(self) -> int:
        """Length of the longest root-to-leaf path, in splits (vectorised: level by level)."""
        split = self.pred != Pred.LEAF
        level, d = np.array([0]), 0
        while True:
            level = level[split[level]]
            if not len(level):
                return d
            level = np.concatenate([self.yes[level], self.no[level]])
            d += 1

    def preorder(self) -> list[int]:
        """Node ids in pre-order (node, its yes subtree, its no subtree), from the root.

        Vectorised over the levels of the tree: subtree sizes bottom-up, then each node's
        pre-order position top-down (a yes child right after its parent, the no child after the
        yes subtree).  A table whose children do not form one tree under node 0 (a node reached
        twice, or unreachable nodes) takes the node-by-node walk, `preorder_walk`."""
        n = self.n_nodes
        if n == 0:
            return self.preorder_walk()
        split = self.pred != Pred.LEAF
        yes, no = self.yes.astype(np.int64), self.no.astype(np.int64)
        levels, level, seen = [], np.zeros(1, np.int64), 0
        visited = np.zeros(n, bool)
        while len(level):
            seen += len(level)
            if seen > n:
                return self.preorder_walk()  # some node reached twice: not a tree
            visited[level] = True
            s = level[split[level]]
            if len(s) and (np.any((yes[s] < 0) | (yes[s] >= n) | (no[s] < 0) | (no[s] >= n))):
                return self.preorder_walk()  # children out of range: the walk does what it always did
            levels.append(s)
            level = np.concatenate([yes[s], no[s]])
        if seen != n or not visited.all():
            return self.preorder_walk()  # unreachable nodes, or one reached twice: not one tree
        size = np.ones(n, np.int64)
        for s in reversed(levels):
            size[s] += size[yes[s]] + size[no[s]]
        pos = np.zeros(n, np.int64)
        for s in levels:
            pos[yes[s]] = pos[s] + 1
            pos[no[s]] = pos[s] + 1 + size[yes[s]]
        order = np.empty(n, np.int64)
        order[pos] = np.arange(n)
        return order.tolist()

    def preorder_walk(self) -> list[int]:
        """`preorder` node by node (the reference the vectorised version is tested against)."""
        out, stack = [], [0]
        yes, no, pred = self.yes.tolist(), self.no.tolist(), self.pred.tolist()
        while stack:
            i = stack.pop()
            out.append(i)
            if pred[i] != Pred.LEAF:
                stack.append(no[i])
                stack.append(yes[i])
        return out

    def equals(self, other: "NodeTable") -> bool:
        return (
            all(
                getattr(self, c).dtype == getattr(other, c).dtype
                and np.array_equal(getattr(self, c), getattr(other, c), equal_nan=False)
                or getattr(self, c).tobytes() == getattr(other, c).tobytes()
                for c in self.COLUMNS + ("cat_words",)
            )
            and self._linear_key() == other._linear_key()
        )

    def _linear_key(self):
        if self.lin_const is None:
            return None
        return tuple(a.tobytes() for a in (self.lin_const, self.lin_start, self.lin_len, self.lin_feature, self.lin_coeff))

    # ----- networkx view ---------------------------------------------------------------
    def as_graph(self):
        """A networkx DiGraph: node i with the row's fields as attributes, edges labelled yes/no."""
        import networkx as nx

        g = nx.DiGraph()
        for i in range(self.n_nodes):
            attrs = {c: getattr(self, c)[i] for c in ("feature", "pred", "threshold", "missing", "default")}
            attrs["leaf"] = self.leaf[i].copy()
            attrs["categories"] = self.category_set(i) if self.pred[i] == Pred.IN else None
            if self.lin_const is not None and self.pred[i] == Pred.LEAF:
                attrs["linear"] = (self.lin_const[i], self.linear_terms(i))
            g.add_node(i, **attrs)
        for i in np.flatnonzero(self.pred != Pred.LEAF).tolist():
            g.add_edge(i, int(self.yes[i]), branch="yes")
            g.add_edge(i, int(self.no[i]), branch="no")
        return g

    @classmethod
    def from_graph(cls, g, root=0, threshold_dtype=None, leaf_dtype=None) -> "NodeTable":
        """Rebuild a table from a graph made by `as_graph` (and rewritten), renumbering in pre-order."""
        order, stack = [], [root]
        while stack:
            i = stack.pop()
            order.append(i)
            if g.nodes[i]["pred"] != Pred.LEAF:
                kids = {d["branch"]: j for _, j, d in g.out_edges(i, data=True)}
                stack.append(kids["no"])
                stack.append(kids["yes"])
        index = {old: new for new, old in enumerate(order)}
        n = len(order)
        first = g.nodes[root]
        tdt = threshold_dtype or np.asarray(first["threshold"]).dtype
        ldt = leaf_dtype or np.asarray(first["leaf"]).dtype
        dim = len(np.asarray(first["leaf"]).reshape(-1))
        cols = {c: np.zeros(n, np.int32) for c in ("feature", "yes", "no", "default")}
        pred, missing = np.zeros(n, np.uint8), np.zeros(n, np.uint8)
        thr, leaf = np.zeros(n, tdt), np.zeros((n, dim), ldt)
        cats = CategorySets(n)
        linear = any(g.nodes[i].get("linear") is not None for i in order)
        lin = LinearLeaves(n, ldt)
        for new, old in enumerate(order):
            d = g.nodes[old]
            pred[new], missing[new], thr[new] = d["pred"], d["missing"], d["threshold"]
            cols["feature"][new] = d["feature"]
            leaf[new] = d["leaf"]
            if d["pred"] == Pred.LEAF:
                cols["yes"][new] = cols["no"][new] = cols["default"][new] = -1
                if linear:
                    lin.add(new, *d["linear"])
                continue
            kids = {e["branch"]: j for _, j, e in g.out_edges(old, data=True)}
            cols["yes"][new], cols["no"][new] = index[kids["yes"]], index[kids["no"]]
            cols["default"][new] = index[d["default"]] if d["default"] >= 0 else -1
            if d["pred"] == Pred.IN:
                cats.add(new, d["categories"])
        cat_start, cat_len, cat_words = cats.columns()
        return cls(
            cols["feature"],
            pred,
            thr,
            cols["yes"],
            cols["no"],
            missing,
            cols["default"],
            leaf,
            cat_start,
            cat_len,
            cat_words,
            **(lin.columns() if linear else {}),
        )

    # ----- checks ------------------------------------------------------------------------
    def check(self, n_features: int) -> str | None:
        """The first broken invariant, as a diagnostic message, or None."""
        n = self.n_nodes
        if n == 0:
            return "tree has no nodes"
        for c in self.COLUMNS:
            if len(getattr(self, c)) != n:
                return f"column '{c}' has {len(getattr(self, c))} rows, expected {n}"
        split = self.pred != Pred.LEAF
        if np.any(self.pred > Pred.IN):
            return f"node {int(np.argmax(self.pred > Pred.IN))}: unknown predicate {int(self.pred.max())}"
        bad = split & ((self.feature < 0) | (self.feature >= n_features))
        if bad.any():
            i = int(np.argmax(bad))
            return f"node {i}: feature index {int(self.feature[i])} out of range for input with {n_features} features"
        kids = np.concatenate([self.yes[split], self.no[split]])
        if np.any((kids <= 0) | (kids >= n)):
            i = int(np.flatnonzero(split & ((self.yes <= 0) | (self.yes >= n) | (self.no <= 0) | (self.no >= n)))[0])
            return f"node {i}: child index out of range (yes {int(self.yes[i])}, no {int(self.no[i])}, {n} nodes)"
        counts = np.bincount(kids, minlength=n)
        if np.any(counts[1:] != 1):
            i = int(np.flatnonzero(counts[1:] != 1)[0]) + 1
            what = "is unreachable" if counts[i] == 0 else f"has {int(counts[i])} parents"
            return f"node {i} {what}: nodes must form one tree rooted at node 0"
        # One parent each still allows a detached cycle: walk down from the root, level by level.
        seen = np.zeros(n, bool)
        level = np.array([0])
        while len(level):
            seen[level] = True
            level = level[split[level]]
            level = np.concatenate([self.yes[level], self.no[level]])
            if seen[level].any():
                break
        if not seen.all():
            return f"node {int(np.argmin(seen))} is unreachable: nodes must form one tree rooted at node 0"
        if np.any(self.missing > Missing.NAN_AS_ZERO):
            return f"node {int(np.argmax(self.missing > Missing.NAN_AS_ZERO))}: unknown missing kind"
        needs_default = split & ((self.missing == Missing.NAN) | (self.missing == Missing.ZERO))
        bad = needs_default & (self.default != self.yes) & (self.default != self.no)
        if bad.any():
            i = int(np.argmax(bad))
            return f"node {i}: missing values go to node {int(self.default[i])}, which is not a child of it"
        bad = split & ~needs_default & (self.default != -1)
        if bad.any():
            return f"node {int(np.argmax(bad))}: a default child is set but missing kind has none"
        problem = _check_splits(self, split, "node")
        if problem:
            return problem
        if self.lin_const is not None:
            if self.leaf_dim != 1:
                return f"linear leaves need leaf width 1, found {self.leaf_dim}"
            for c in ("lin_const", "lin_start", "lin_len"):
                if len(getattr(self, c)) != n:
                    return f"column '{c}' has {len(getattr(self, c))} rows, expected {n}"
            if len(self.lin_feature) != len(self.lin_coeff):
                return "lin_feature and lin_coeff differ in length"
            if np.any((self.lin_start < 0) | (self.lin_len < 0) | (self.lin_start + self.lin_len > len(self.lin_feature))):
                return "a linear leaf's terms lie outside the term arrays"
            bad = (self.lin_feature < 0) | (self.lin_feature >= n_features)
            if bad.any():
                return (
                    f"linear leaf feature index {int(self.lin_feature[np.argmax(bad)])} out of range for input with {n_features} features"
                )
        return None


def node_tables_valid(tables: list[NodeTable], n_features: int) -> bool:
    """True when `t.check(n_features)` is None for every table, decided in one vectorised sweep
    over all of them (a 1000-tree ensemble verifies in milliseconds instead of a second).

    Each invariant of `NodeTable.check` is tested for all tables at once, node ids made global by
    offsetting each table after the previous ones; it holds for all tables exactly when it holds
    for each.  Linear-leaf tables are checked one by one.  When this returns False, checking
    the tables one by one finds the first problem and its message."""
    if not tables:
        return True
    for t in tables:
        n = t.n_nodes
        if n == 0 or any(len(getattr(t, c)) != n for c in NodeTable.COLUMNS):
            return False
        if t.lin_const is not None and t.check(n_features) is not None:
            return False
    sizes = np.array([t.n_nodes for t in tables], np.int64)
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    total = int(offsets[-1])
    roots = offsets[:-1]

    def col(name):
        return np.concatenate([getattr(t, name) for t in tables])

    pred, feature = col("pred"), col("feature")
    if np.any(pred > Pred.IN):
        return False
    split = pred != Pred.LEAF
    if np.any(split & ((feature < 0) | (feature >= n_features))):
        return False
    yes, no = col("yes").astype(np.int64), col("no").astype(np.int64)
    n_local = np.repeat(sizes, sizes)[split]
    ys, ns = yes[split], no[split]
    if np.any((ys <= 0) | (ys >= n_local) | (ns <= 0) | (ns >= n_local)):
        return False
    base = np.repeat(roots, sizes)
    gyes, gno = np.where(split, yes + base, -1), np.where(split, no + base, -1)
    expected = np.ones(total, np.int64)
    expected[roots] = 0  # a child index is never 0, so no root has a parent
    if np.any(np.bincount(np.concatenate([gyes[split], gno[split]]), minlength=total) != expected):
        return False
    # One parent per non-root node still allows a detached cycle.  None when every child's id
    # exceeds its parent's (as front-ends number nodes): following parents from any node then
    # strictly decreases ids, so it ends at the root.  Otherwise walk down from the roots.
    local = np.arange(total, dtype=np.int64)[split] - base[split]
    if not (np.all(ys > local) and np.all(ns > local)):
        seen = np.zeros(total, bool)
        level = roots
        while len(level):
            if seen[level].any():
                return False  # a cycle
            seen[level] = True
            level = level[split[level]]
            level = np.concatenate([gyes[level], gno[level]])
        if not seen.all():
            return False
    missing, default = col("missing"), col("default")
    if np.any(missing > Missing.NAN_AS_ZERO):
        return False
    needs_default = split & ((missing == Missing.NAN) | (missing == Missing.ZERO))
    if np.any(needs_default & (default != yes) & (default != no)):
        return False
    if np.any(split & ~needs_default & (default != -1)):
        return False
    cat = split & (pred == Pred.IN)
    cat_start, cat_len = col("cat_start").astype(np.int64), col("cat_len").astype(np.int64)
    pool = np.repeat(np.array([len(t.cat_words) for t in tables], np.int64), sizes)
    if np.any(cat & ((cat_start < 0) | (cat_len < 0) | (cat_start + cat_len > pool))):
        return False
    return not np.any(split & ~cat & np.isnan(col("threshold")))


@dataclass
class ObliviousTable:
    """An oblivious (symmetric) tree: one split per level, 2**depth leaves.

    Per level d: `feature`, `pred`, `threshold`, `missing`, `default_true` (the bit a missing
    value sets, for nan/zero kinds), `cat_start`/`cat_len` into `cat_words`.  `leaf` has shape
    (2**depth, leaf_dim); the leaf index is sum(bit_d << d)."""

    feature: np.ndarray
    pred: np.ndarray
    threshold: np.ndarray
    missing: np.ndarray
    default_true: np.ndarray
    leaf: np.ndarray
    cat_start: np.ndarray | None = None
    cat_len: np.ndarray | None = None
    cat_words: np.ndarray | None = None

    def __post_init__(self):
        d = len(self.feature)
        self.feature = np.ascontiguousarray(self.feature, np.int32)
        self.pred = np.ascontiguousarray(self.pred, np.uint8)
        self.threshold = np.ascontiguousarray(self.threshold)
        self.missing = np.ascontiguousarray(self.missing, np.uint8)
        self.default_true = np.ascontiguousarray(self.default_true, np.bool_)
        leaf = np.asarray(self.leaf)
        self.leaf = np.ascontiguousarray(leaf.reshape(2**d, -1) if leaf.ndim == 1 else leaf)
        self.cat_start = np.zeros(d, np.int32) if self.cat_start is None else np.ascontiguousarray(self.cat_start, np.int32)
        self.cat_len = np.zeros(d, np.int32) if self.cat_len is None else np.ascontiguousarray(self.cat_len, np.int32)
        self.cat_words = np.zeros(0, np.uint32) if self.cat_words is None else np.ascontiguousarray(self.cat_words, np.uint32)

    @property
    def depth(self) -> int:
        return len(self.feature)

    @property
    def leaf_dim(self) -> int:
        return self.leaf.shape[1]

    def category_set(self, d: int) -> list[int]:
        s, n = int(self.cat_start[d]), int(self.cat_len[d])
        return members_from_bitset(self.cat_words[s : s + n])

    def check(self, n_features: int) -> str | None:
        d = self.depth
        if self.leaf.shape[0] != 2**d:
            return f"{self.leaf.shape[0]} leaves, expected 2**{d} = {2**d}"
        for c in ("pred", "threshold", "missing", "default_true", "cat_start", "cat_len"):
            if len(getattr(self, c)) != d:
                return f"column '{c}' has {len(getattr(self, c))} rows, expected {d}"
        if np.any((self.pred == Pred.LEAF) | (self.pred > Pred.IN)):
            return f"level {int(np.argmax((self.pred == Pred.LEAF) | (self.pred > Pred.IN)))}: invalid predicate"
        bad = (self.feature < 0) | (self.feature >= n_features)
        if bad.any():
            i = int(np.argmax(bad))
            return f"level {i}: feature index {int(self.feature[i])} out of range for input with {n_features} features"
        if np.any(self.missing > Missing.NAN_AS_ZERO):
            return f"level {int(np.argmax(self.missing > Missing.NAN_AS_ZERO))}: unknown missing kind"
        return _check_splits(self, np.ones(d, bool), "level")


def _check_splits(t, split: np.ndarray, what: str) -> str | None:
    """What node and oblivious tables share: category sets inside the bitset pool (the code that
    reads them has no bounds check), no NaN thresholds.  Names the first bad node or level."""
    cat = split & (t.pred == Pred.IN)
    bad = cat & ((t.cat_start < 0) | (t.cat_len < 0) | (t.cat_start + t.cat_len > len(t.cat_words)))
    if bad.any():
        i = int(np.argmax(bad))
        return f"{what} {i}: category set [{int(t.cat_start[i])}, +{int(t.cat_len[i])}) outside the bitset pool of {len(t.cat_words)} words"
    bad = split & ~cat & np.isnan(t.threshold)
    if bad.any():
        return f"{what} {int(np.argmax(bad))}: threshold is NaN"
    return None


# ----- text form of node tables -----------------------------------------------------------

_NUM = r"[-+0-9.eEx]+[0-9A-Fa-f]*|[-+]?inf|nan"
_SPLIT_RE = re.compile(
    r"\s*(\d+): x\[(\d+)\] (lt|le|gt|ge|eq|ne) (\S+?) \? (\d+) : (\d+)(?: missing\((nan|zero|nan-as-zero)\)(?: -> (\d+))?)?\s*$"
)
_CAT_RE = re.compile(r"\s*(\d+): x\[(\d+)\] in \{([0-9, ]*)\} \? (\d+) : (\d+)(?: missing\((nan|zero|nan-as-zero)\)(?: -> (\d+))?)?\s*$")
_LEAF_RE = re.compile(r"\s*(\d+): leaf (\[[^\]]*\]|\S+)(?: linear\((.*)\))?\s*$")
_TERM_RE = re.compile(r"\s*(\S+) \* x\[(\d+)\]\s*$")
_LEVEL_RE = re.compile(
    r"\s*level (\d+): x\[(\d+)\] (?:(lt|le|gt|ge|eq|ne) (\S+?)|in \{([0-9, ]*)\})(?: missing\((nan|zero|nan-as-zero)\)(?: -> (true|false))?)?\s*$"
)
_LEAVES_RE = re.compile(r"\s*leaves \[(.*)\]\s*$")


def _fmt_leaf(row: np.ndarray, width: int) -> str:
    if len(row) == 1:
        return format_float(row[0], width)
    return "[" + ", ".join(format_float(v, width) for v in row) + "]"


def _missing_text(kind: int, target: str | None) -> str:
    if kind == Missing.NONE:
        return ""
    if kind == Missing.NAN_AS_ZERO:
        return " missing(nan-as-zero)"
    return f" missing({MISSING_NAMES[Missing(kind)]}) -> {target}"


def format_node_table(t: NodeTable, indent: str) -> list[str]:
    lw = t.leaf.dtype.itemsize * 8
    lines = []
    feature, pred, yes, no = t.feature.tolist(), t.pred.tolist(), t.yes.tolist(), t.no.tolist()
    missing, default = t.missing.tolist(), t.default.tolist()
    split = (t.pred != Pred.LEAF) & (t.pred != Pred.IN)
    thr_text = dict(zip(np.flatnonzero(split).tolist(), format_floats(t.threshold[split])))
    leaf_rows = np.flatnonzero(t.pred == Pred.LEAF)
    flat = format_floats(t.leaf[leaf_rows].reshape(-1))
    d = t.leaf_dim
    leaf_text = {r: (flat[k] if d == 1 else "[" + ", ".join(flat[k * d : (k + 1) * d]) + "]") for k, r in enumerate(leaf_rows.tolist())}
    names = {int(k): v for k, v in PRED_NAMES.items()}
    leaf_pred, in_pred = int(Pred.LEAF), int(Pred.IN)
    # `_missing_text` per kind, without an enum lookup per node: the text before the child id.
    with_child = {int(k): f" missing({MISSING_NAMES[k]}) -> " for k in (Missing.NAN, Missing.ZERO)}
    nan_as_zero = int(Missing.NAN_AS_ZERO)
    for i in range(t.n_nodes):
        p = pred[i]
        if p == leaf_pred:
            lin = ""
            if t.lin_const is not None:
                terms = [format_float(t.lin_const[i], lw)] + [f"{format_float(c, lw)} * x[{f}]" for f, c in t.linear_terms(i)]
                lin = " linear(" + ", ".join(terms) + ")"
            lines.append(f"{indent}{i}: leaf {leaf_text[i]}{lin}")
            continue
        if p == in_pred:
            test = "in {" + ", ".join(str(c) for c in t.category_set(i)) + "}"
        else:
            test = f"{names[p]} {thr_text[i]}"
        m = missing[i]
        if m == 0:
            miss = ""
        elif m in with_child:
            miss = with_child[m] + str(default[i])
        else:
            miss = " missing(nan-as-zero)" if m == nan_as_zero else _missing_text(m, str(default[i]))
        lines.append(f"{indent}{i}: x[{feature[i]}] {test} ? {yes[i]} : {no[i]}{miss}")
    return lines


def format_oblivious_table(t: ObliviousTable, indent: str) -> list[str]:
    tw, lw = t.threshold.dtype.itemsize * 8, t.leaf.dtype.itemsize * 8
    lines = []
    for d in range(t.depth):
        p = int(t.pred[d])
        test = (
            "in {" + ", ".join(map(str, t.category_set(d))) + "}"
            if p == Pred.IN
            else f"{PRED_NAMES[Pred(p)]} {format_float(t.threshold[d], tw)}"
        )
        miss = _missing_text(int(t.missing[d]), "true" if t.default_true[d] else "false")
        lines.append(f"{indent}level {d}: x[{int(t.feature[d])}] {test}{miss}")
    lines.append(f"{indent}leaves [" + ", ".join(_fmt_leaf(row, lw) for row in t.leaf) + "]")
    return lines


def _parse_leaf_values(text: str, width: int) -> list[float]:
    text = text.strip()
    if text.startswith("["):
        return [parse_float(s.strip(), width) for s in text[1:-1].split(",")]
    return [parse_float(text, width)]


def _parse_set(text: str) -> list[int]:
    return [int(s) for s in text.split(",") if s.strip()]


def parse_node_table(lines: list[tuple[int, str]], tdt, ldt, err) -> NodeTable:
    """Parse node lines (line number, text).  `err(line_no, col, message)` raises.

    Built for speed (a 1000-tree depth-8 forest is half a million lines): one regex per
    line, columns collected as lists, numbers converted in bulk."""
    n = len(lines)
    feature, pred, thr_text = [-1] * n, [0] * n, ["0"] * n
    yes, no, default, missing = [-1] * n, [-1] * n, [-1] * n, [0] * n
    cats = CategorySets(n)
    leaf_rows: list[int] = []
    leaf_text: list[str] = []
    tw, lw = np.dtype(tdt).itemsize * 8, np.dtype(ldt).itemsize * 8
    dim = None
    linear: dict[int, tuple[float, list[tuple[int, float]]]] = {}
    pred_by_name = {k: int(v) for k, v in PRED_BY_NAME.items()}
    missing_by_name = {k: int(v) for k, v in MISSING_BY_NAME.items()}
    nan_as_zero, p_in = int(Missing.NAN_AS_ZERO), int(Pred.IN)
    split_match, cat_match, leaf_match = _SPLIT_RE.match, _CAT_RE.match, _LEAF_RE.match
    for row, (line_no, text) in enumerate(lines):
        is_leaf = ": leaf " in text
        m = leaf_match(text) if is_leaf else (split_match(text) or cat_match(text))
        if m is None:
            err(line_no, len(text) - len(text.lstrip()) + 1, "expected a node: 'N: leaf V' or 'N: x[F] PRED T ? YES : NO [missing(...)]'")
        if int(m.group(1)) != row:
            err(line_no, text.index(m.group(1)) + 1, f"node {m.group(1)} out of order; expected node {row}")
        if is_leaf:
            vtext = m.group(2)
            if vtext.startswith("["):
                vals = [v.strip() for v in vtext[1:-1].split(",")]
            else:
                vals = [vtext]
            if dim is None:
                dim = len(vals)
            elif len(vals) != dim:
                err(line_no, text.index("leaf") + 6, f"leaf has {len(vals)} values, expected {dim}")
            leaf_rows.append(row)
            leaf_text.extend(vals)
            if m.group(3) is not None:
                parts = m.group(3).split(",")
                terms = []
                for q in parts[1:]:
                    tm = _TERM_RE.match(q)
                    if tm is None:
                        err(line_no, text.index("linear") + 1, f"bad linear term '{q.strip()}'; expected 'COEFF * x[F]'")
                    terms.append((int(tm.group(2)), parse_float(tm.group(1), lw)))
                linear[row] = (parse_float(parts[0].strip(), lw), terms)
            continue
        feature[row] = int(m.group(2))
        if m.re is _CAT_RE:
            pred[row] = p_in
            cats.add(row, _parse_set(m.group(3)))
            y, nn, mk, dflt = m.group(4), m.group(5), m.group(6), m.group(7)
        else:
            pred[row] = pred_by_name[m.group(3)]
            thr_text[row] = m.group(4)
            y, nn, mk, dflt = m.group(5), m.group(6), m.group(7), m.group(8)
        yes[row], no[row] = int(y), int(nn)
        if mk is not None:
            kind = missing_by_name[mk]
            missing[row] = kind
            if (dflt is None) != (kind == nan_as_zero):
                err(line_no, text.index("missing") + 1, f"missing({mk}) " + ("takes no '-> child'" if dflt else "needs '-> child'"))
            if dflt is not None:
                default[row] = int(dflt)
    try:
        thr = parse_floats(thr_text, tw)
    except ValueError as e:
        bad = next(i for i, t in enumerate(thr_text) if not _is_float(t))
        err(lines[bad][0], lines[bad][1].index(thr_text[bad]) + 1, f"bad threshold '{thr_text[bad]}': {e}")
    try:
        leaf_vals = parse_floats(leaf_text, lw)
    except ValueError:
        bad = next(i for i, t in enumerate(leaf_text) if not _is_float(t))
        row = leaf_rows[bad // (dim or 1)]
        err(lines[row][0], lines[row][1].index("leaf") + 6, f"bad leaf value '{leaf_text[bad]}'")
    dim = dim or 1
    leaf = np.zeros((n, dim), ldt)
    if leaf_rows:
        leaf[np.array(leaf_rows)] = leaf_vals.reshape(-1, dim)
    cat_start, cat_len, cat_words = cats.columns()
    lin = {}
    if linear:
        if len(linear) != len(leaf_rows):
            err(lines[0][0], 1, "either every leaf of a tree is linear or none is")
        leaves = LinearLeaves(n, ldt)
        for row in sorted(linear):
            leaves.add(row, *linear[row])
        lin = leaves.columns()
    return NodeTable(
        np.array(feature, np.int32),
        np.array(pred, np.uint8),
        thr.astype(tdt),
        np.array(yes, np.int32),
        np.array(no, np.int32),
        np.array(missing, np.uint8),
        np.array(default, np.int32),
        leaf,
        np.array(cat_start, np.int32),
        np.array(cat_len, np.int32),
        cat_words,
        **lin,
    )


def _is_float(t: str) -> bool:
    try:
        parse_float(t, 64)
        return True
    except ValueError:
        return False


def parse_oblivious_table(lines: list[tuple[int, str]], tdt, ldt, err) -> ObliviousTable:
    tw, lw = np.dtype(tdt).itemsize * 8, np.dtype(ldt).itemsize * 8
    feats, preds, thrs, miss, dflt, cs, cl, words = [], [], [], [], [], [], [], []
    nwords = 0
    leaf = None
    for line_no, text in lines:
        m = _LEVEL_RE.match(text)
        if m is not None:
            if int(m.group(1)) != len(feats):
                err(line_no, text.index("level") + 7, f"level {m.group(1)} out of order; expected level {len(feats)}")
            feats.append(int(m.group(2)))
            if m.group(5) is not None:
                preds.append(Pred.IN)
                thrs.append(0.0)
                w = bitset_from_members(_parse_set(m.group(5)))
                cs.append(nwords)
                cl.append(len(w))
                words.append(w)
                nwords += len(w)
            else:
                preds.append(PRED_BY_NAME[m.group(3)])
                thrs.append(parse_float(m.group(4), tw))
                cs.append(0)
                cl.append(0)
            kind = MISSING_BY_NAME[m.group(6)] if m.group(6) else Missing.NONE
            miss.append(kind)
            dflt.append(m.group(7) == "true")
            continue
        m = _LEAVES_RE.match(text)
        if m is None:
            err(line_no, len(text) - len(text.lstrip()) + 1, "expected 'level D: x[F] PRED T [missing(...)]' or 'leaves [...]'")
        body = m.group(1)
        rows = ["[" + r + "]" for r in re.findall(r"\[([^\]]*)\]", body)] if "[" in body else [s for s in body.split(",") if s.strip()]
        leaf = [_parse_leaf_values(r, lw) for r in rows]
    if leaf is None:
        err(lines[-1][0] if lines else 0, 1, "oblivious tree without 'leaves [...]'")
    cat_words = np.concatenate(words) if words else np.zeros(0, np.uint32)
    return ObliviousTable(
        np.array(feats, np.int32),
        np.array(preds, np.uint8),
        np.array(thrs, tdt),
        np.array(miss, np.uint8),
        np.array(dflt, np.bool_),
        np.array(leaf, ldt),
        np.array(cs, np.int32),
        np.array(cl, np.int32),
        cat_words,
    )


class TableAttr(Attribute):
    """Holds a `NodeTable` or `ObliviousTable` (compared by content)."""

    def __init__(self, table):
        self.table = table

    def _key(self):
        t = self.table
        cols = [(c, getattr(t, c)) for c in sorted(vars(t)) if isinstance(getattr(t, c), np.ndarray)]
        return tuple((name, c.dtype.str, c.shape, c.tobytes()) for name, c in cols)

    def __str__(self) -> str:
        kind = "nodes" if isinstance(self.table, NodeTable) else "levels"
        return f"#tree.{kind}<{len(self.table.feature)}>"

    def print(self, p) -> None:
        """The full table (generic form), one node or level per line under `p`'s indentation:

        table = #tree.nodes<f32, f64> {
          0: x[2] lt 2.45 ? 1 : 2
          ...
        }"""
        t = self.table
        kind, fmt = ("nodes", format_node_table) if isinstance(t, NodeTable) else ("levels", format_oblivious_table)
        tw, lw = t.threshold.dtype.itemsize * 8, t.leaf.dtype.itemsize * 8
        body = "\n".join(fmt(t, p.indent_text + "  "))
        p.write(f"#tree.{kind}<f{tw}, f{lw}> {{\n{body}\n{p.indent_text}}}")


def _table_attr_parser(parse_table):
    """`#tree.nodes<fT, fL> {` lines `}` (and `#tree.levels`): the parse hook of the registry."""

    def parse(p, start: int) -> TableAttr:
        p.expect("<")
        tw = p.parse_type()
        p.expect(",")
        lw = p.parse_type()
        p.expect(">")
        if tw not in (f32, f64) or lw not in (f32, f64):
            p.error("node tables hold f32 or f64 thresholds and leaves", start)
        lines = p.take_raw_block()
        return TableAttr(parse_table(lines, tw.numpy, lw.numpy, p.error_at_line))

    return parse


register_attr("tree.nodes", TableAttr, _table_attr_parser(parse_node_table))
register_attr("tree.levels", TableAttr, _table_attr_parser(parse_oblivious_table))


# ----- ops --------------------------------------------------------------------------------


def _dtype_of(t: FloatType):
    return np.float32 if t == f32 else np.float64


@register
class EnsembleOp(OpDef):
    """A sum of trees over one input row (see the module docstring for the exact semantics).

    Attributes: `compare` (f32/f64: the precision of every split), `leaves` (f32/f64: the type
    leaf values are stored in), `init` (the starting value of each output, in the result element
    type), `cat_negative` ("value"/"code", optional: how a negative category is recognised)."""

    name = "tree.ensemble"
    operand_defs = (OperandDef("input", Rank1FloatTensor),)
    result_defs = (ResultDef("out", Rank1FloatTensor),)
    attr_defs = (
        AttrDef("compare", TypeAttr),
        AttrDef("leaves", TypeAttr),
        AttrDef("init", DenseElementsAttr),
        AttrDef("cat_negative", StringAttr, optional=True),
    )
    region_defs = (RegionDef("tree_region"),)
    traits = (Pure, NoTerminator)
    custom_print = True

    @classmethod
    def build(cls, x, n_outputs: int, acc: FloatType, compare: FloatType, leaves: FloatType, init=None, cat_negative=None, name=None):
        out = TensorType((n_outputs,), acc)
        init = np.zeros(n_outputs) if init is None else np.asarray(init)
        attrs = {"compare": TypeAttr(compare), "leaves": TypeAttr(leaves), "init": DenseElementsAttr(init, out)}
        if cat_negative is not None:
            attrs["cat_negative"] = StringAttr(cat_negative)
        return cls(operands=[x], result_types=[out], attributes=attrs, regions=[Region([Block()])], result_names=[name])

    @property
    def compare_type(self) -> FloatType:
        return self.attributes["compare"].type

    @property
    def leaf_type(self) -> FloatType:
        return self.attributes["leaves"].type

    @property
    def n_outputs(self) -> int:
        return self.results[0].type.shape[0]

    @property
    def n_features(self) -> int:
        return self.operands[0].type.shape[0]

    @property
    def trees(self) -> list:
        return self.regions[0].blocks[0].ops

    def add_tree(self, table, out: int = 0):
        cls = TreeOp if isinstance(table, NodeTable) else ObliviousOp
        return self.body.add_op(cls.build(table, out))

    def verify_(self) -> None:
        for key in ("compare", "leaves"):
            t = self.attributes[key].type
            if t not in (f32, f64):
                self.error(f"{key} must be f32 or f64, found {t}")
        init = self.attributes["init"]
        if init.type != self.results[0].type:
            self.error(f"init has type {init.type}, expected the result type {self.results[0].type}")
        neg = self.attributes.get("cat_negative")
        if neg is not None and neg.value not in ("value", "code"):
            self.error(f'cat_negative must be "value" or "code", found "{neg.value}"')
        if len(self.regions[0].blocks) != 1:
            self.error("expects one block of trees")
        tdt, ldt = np.dtype(_dtype_of(self.compare_type)), np.dtype(_dtype_of(self.leaf_type))
        # Node tables are checked all at once; only when that finds a problem (or for other
        # tables) does each table check itself, for the first problem's message.
        nodes = [t.table for t in self.trees if isinstance(t, TreeOp) and isinstance(t.table, NodeTable)]
        nodes_valid = node_tables_valid(nodes, self.n_features)
        for i, t in enumerate(self.trees):
            if not isinstance(t, (TreeOp, ObliviousOp)):
                self.error(f"tree {i} is a '{t.name}' op; only 'tree.tree' and 'tree.oblivious' may appear")
            table = t.table
            if table.threshold.dtype != tdt or table.leaf.dtype != ldt:
                self.error(
                    f"tree {i} stores thresholds as {table.threshold.dtype} and leaves as {table.leaf.dtype}; "
                    f"the ensemble says compare = {self.compare_type}, leaves = {self.leaf_type}"
                )
            msg = None if nodes_valid and isinstance(t, TreeOp) and isinstance(table, NodeTable) else table.check(self.n_features)
            if msg:
                t.error(f"tree {i}: {msg}")
            out = t.out
            if out < 0 or out + table.leaf_dim > self.n_outputs:
                t.error(f"tree {i} writes outputs {out}..{out + table.leaf_dim - 1}, but the ensemble has {self.n_outputs}")

    def print_custom(self, p) -> None:
        x = self.operands[0]
        p.write(f"tree.ensemble {p.name_of(x)} ")
        p.print_attr_dict(self.attributes)
        p.write(f" : {x.type} -> {self.results[0].type} ")
        p.print_region(self.regions[0], print_block_args=False)

    @classmethod
    def parse_custom(cls, p, result_names, loc):
        x = p.parse_value_use_name()
        attrs = p.parse_attr_dict()
        p.expect(":")
        t = p.parse_type()
        p.expect("->")
        rt = p.parse_type()
        compare, leaves = attrs.get("compare"), attrs.get("leaves")
        ctx = {
            "compare": _dtype_of(compare.type) if isinstance(compare, TypeAttr) and compare.type in (f32, f64) else np.float64,
            "leaves": _dtype_of(leaves.type) if isinstance(leaves, TypeAttr) and leaves.type in (f32, f64) else np.float64,
        }
        with p.context(tree_types=ctx):
            region = p.parse_region(arg_types_known=())
        if not region.blocks:
            region.add_block(Block())
        return cls(
            operands=[p.resolve(x, t)], result_types=[rt], attributes=attrs, regions=[region], result_names=result_names, location=loc
        )


class _TableOp(OpDef):
    """Shared printing and parsing of `tree.tree` and `tree.oblivious`."""

    attr_defs = (AttrDef("out", IntegerAttr), AttrDef("table", TableAttr))
    traits = (HasParent("tree.ensemble"),)
    custom_print = True
    table_kind: type = NodeTable

    @classmethod
    def build(cls, table, out: int = 0):
        return cls(attributes={"out": IntegerAttr(out), "table": TableAttr(table)})

    @property
    def table(self):
        return self.attributes["table"].table

    @table.setter
    def table(self, t) -> None:
        self.attributes["table"] = TableAttr(t)

    @property
    def out(self) -> int:
        return self.attributes["out"].value

    def verify_(self) -> None:
        if not isinstance(self.table, self.table_kind):
            self.error(f"holds a {type(self.table).__name__}, expected a {self.table_kind.__name__}")

    def print_custom(self, p) -> None:
        p.write(f"{self.name} out {self.out}")
        rest = {k: v for k, v in self.attributes.items() if k not in ("out", "table")}
        if rest:
            p.write(" attributes ")
            p.print_attr_dict(rest)
        p.write(" {")
        indent = p.indent_text + "  "
        fmt = format_node_table if self.table_kind is NodeTable else format_oblivious_table
        p.write_lines(fmt(self.table, indent))
        p.newline()
        p.write("}")

    @classmethod
    def parse_custom(cls, p, result_names, loc):
        p.expect_keyword("out")
        out = p.parse_integer()
        attrs = p.parse_attr_dict() if p.accept_keyword("attributes") else {}
        ctx = p.context_value("tree_types")
        if ctx is None:
            p.error(f"'{cls.name}' must appear inside a 'tree.ensemble'")
        lines = p.take_raw_block()
        parse = parse_node_table if cls.table_kind is NodeTable else parse_oblivious_table
        table = parse(lines, ctx["compare"], ctx["leaves"], p.error_at_line)
        attrs["out"] = IntegerAttr(out)
        attrs["table"] = TableAttr(table)
        return cls(attributes=attrs, location=loc)


@register
class TreeOp(_TableOp):
    """`tree.tree out K { N: ... }`: a binary decision tree held as a `NodeTable`."""

    name = "tree.tree"
    table_kind = NodeTable

    def size_for_statistics(self) -> int:
        """Its node-table rows (the pass manager's "tree nodes")."""
        return self.table.n_nodes


@register
class ObliviousOp(_TableOp):
    """`tree.oblivious out K { level D: ...; leaves [...] }`: one split per level, leaf index from bits."""

    name = "tree.oblivious"
    table_kind = ObliviousTable

    def size_for_statistics(self) -> int:
        """Its levels plus its leaves (the pass manager's "tree nodes")."""
        return self.table.depth + self.table.leaf.shape[0]
