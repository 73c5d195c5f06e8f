"""Planning `tree.ensemble` for the LLVM kernels: which kernel runs each tree, how trees group
into segments, and the constant tables the kernels read.

Every split becomes one canonical form: a left child A, a right child B, and a rule for
`right` chosen by the node's kind: `v >= t'` (`lt/le/gt/ge`; `le t` is `ge nextup(t)`),
`v == t'` (`eq/ne`) or "category in the set" (`in`), with `yes` and `no` swapped as needed.
Where a missing value goes is one bit per node (`nr`), plus `zk` for LightGBM's
zero-as-missing.  All of it packs into a node word: feature << 4 | kind << 2 | zk << 1 | nr.

Kinds of tree, and the tables each gets:

* **heap**: depth <= HEAP_DEPTH, or <= MAX_HEAP_DEPTH if not too sparse: padded to a
  complete tree in heap order (node h has children 2h+1, 2h+2), leaves re-indexed to match.
* **walk**: deeper or sparse trees, unpadded: nodes renumbered breadth first so that a
  split's children are adjacent (`slot = left + right`).
* **oblivious**: CatBoost-style trees (depth <= MAX_OBLIVIOUS_DEPTH): one word per level,
  leaves re-indexed so that bit d of the index is level d's `right`.
* **bitvector**: (hosts with `TargetInfo.bitvectors`) walked trees of up to 64 leaves and
  numeric splits, as QuickScorer evaluates them: per feature, the splits sorted by threshold;
  per row and tree, a 64-bit vector of the leaves still reachable (`BitvectorSegment`).
* **nodes**: trees with linear leaves: the node tables as they are.
* **branch**: trees that carry calibration hit counts (`tree.hits`, from `tree-sort-branches`)
  become code instead of tables for single rows: a basic block per node, each split a
  conditional branch to its hot child with LLVM branch weights from the counts, where the
  counts say it pays off (`_branch_segments`: the rule and its measurements).

Trees keep model order; consecutive trees of one kind and leaf width form a segment (heap and
oblivious runs are split further by a small dynamic program over the padded depth).  The
plan does not depend on the block size; `small` (microcontrollers, where flash is what counts)
chooses heap or walk per tree by table bytes instead of speed, pads heap runs by bytes, and
stores node words and child slots as i16 when they fit.  Branch code has its own segment list
(`EnsemblePlan.row_segments`), used at the block sizes in `BRANCH_ROWS`.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np

from ir.diagnostics import TimberError
from ir.dialects import tree
from ir.dialects.tree import HITS, Missing, NodeTable, ObliviousTable, Pred

from .emit import numpy_scalar_type

HEAP_DEPTH = 8  # trees up to this depth are always padded (measured: faster than walking them)
MAX_HEAP_DEPTH = 10  # deeper trees, or sparse ones (< 1/8 of the padded leaves used), are walked
MAX_OBLIVIOUS_DEPTH = 16  # oblivious trees up to this depth keep their own kernel (2**depth leaves)
SEGMENT_COST = 2  # a new segment costs about as much as this many tree levels
# small code: a new segment costs flash for its call, and usually a kernel of its own depth
SEGMENT_BYTES = 400
KERNEL_BYTES = 800  # small code: a second tree kernel (heap and walk) costs about this much flash
# A node word: feature << 4 | kind << 2 | zk << 1 | nr.  kind says how "right" is decided:
KIND_GE, KIND_EQ, KIND_IN = 0, 1, 2  # v >= t'; v == t'; v's category is in the node's set
NR_BIT, ZK_BIT, KIND_SHIFT, FEATURE_SHIFT = 1, 2, 2, 4
# Branch code for calibrated trees (see `_branch_segments` for the measurements behind these).
BRANCH_ROWS = (1,)  # block sizes that run it: single rows (B = 64 batches keep the SIMD table kernels)
BRANCH_MAX_MISS = 0.24  # at most this fraction of the calibration rows' decisions went to a cold child...
BRANCH_WALK_SPREAD = 1.7  # ...or (walk trees) path lengths spread at least this much (std of leaf depth, in levels)
BRANCH_MAX_NODES = 65536  # and at most this many nodes of branch code per ensemble (LLVM takes 0.2-1 ms per node)
BRANCH_CHUNK_NODES = 4096  # nodes per LLVM function of branch code (see `BranchSegment.chunks`)
# Bitvector (QuickScorer) segments for walked trees of at most this many leaves (one i64 per
# tree and row), at most BITVECTOR_TREES trees each (see `_bitvector_segments`).
BITVECTOR_LEAVES = 64
BITVECTOR_TREES = 128


def oblivious_as_nodes(t: ObliviousTable) -> NodeTable:
    """The complete tree an oblivious table stands for.  Nodes are numbered in heap order;
    the `yes` child sets the level's bit, so heap leaf p (path bits MSB first) holds the
    oblivious leaf whose index is p with its bits reversed."""
    d = t.depth
    n_inner, n_leaves = 2**d - 1, 2**d
    lvl = np.repeat(np.arange(d), 2 ** np.arange(d)) if d else np.zeros(0, np.int64)
    h = np.arange(n_inner)
    n = n_inner + n_leaves
    feature = np.full(n, -1, np.int32)
    pred = np.zeros(n, np.uint8)
    thr = np.zeros(n, t.threshold.dtype)
    yes, no, default = (np.full(n, -1, np.int32) for _ in range(3))
    missing = np.zeros(n, np.uint8)
    cat_start, cat_len = np.zeros(n, np.int32), np.zeros(n, np.int32)
    feature[:n_inner], pred[:n_inner], thr[:n_inner] = t.feature[lvl], t.pred[lvl], t.threshold[lvl]
    missing[:n_inner], cat_start[:n_inner], cat_len[:n_inner] = t.missing[lvl], t.cat_start[lvl], t.cat_len[lvl]
    no[:n_inner], yes[:n_inner] = 2 * h + 1, 2 * h + 2
    has_default = (t.missing[lvl] == Missing.NAN) | (t.missing[lvl] == Missing.ZERO)
    default[:n_inner] = np.where(has_default, np.where(t.default_true[lvl], yes[:n_inner], no[:n_inner]), -1)
    p = np.arange(n_leaves)
    rev = np.zeros(n_leaves, np.int64)
    for b in range(d):
        rev |= ((p >> (d - 1 - b)) & 1) << b
    leaf = np.zeros((n, t.leaf_dim), t.leaf.dtype)
    leaf[n_inner:] = t.leaf[rev]
    return NodeTable(feature, pred, thr, yes, no, missing, default, leaf, cat_start, cat_len, t.cat_words)


@dataclass
class TreeInfo:
    """One tree of the ensemble, as the planner sees it."""

    table: NodeTable
    out: int
    dim: int
    depth: int
    kind: str  # "heap", "walk", "oblivious" or "nodes": the kernel that runs it
    hits: np.ndarray | None = None  # calibration hit count per node (`tree.hits`), when recorded


@dataclass
class HeapSegment:
    """Consecutive trees run by one heap kernel, all padded to `depth`."""

    depth: int
    dim: int
    trees: list[TreeInfo]
    words: np.ndarray = None  # (n, 2**depth) int32
    thresholds: np.ndarray = None  # (n, 2**depth) compare type
    leaves: np.ndarray = None  # (n, dim, 2**depth) accumulation type
    outs: np.ndarray = None
    cats: dict | None = None  # cat_start/cat_len per slot and the words, when there are `in` splits
    needs_nr: bool = False
    needs_zero: bool = False
    has_eq: bool = False


@dataclass
class ObliviousSegment:
    """Consecutive oblivious trees, all padded to `depth` levels (a padding level never sets its bit)."""

    depth: int
    dim: int
    trees: list[TreeInfo]
    words: np.ndarray = None  # (n, depth): the level's node word
    thresholds: np.ndarray = None  # (n, depth)
    leaves: np.ndarray = None  # (n, dim, 2**depth), indexed by the levels' `right` bits
    outs: np.ndarray = None
    cats: dict | None = None
    needs_nr: bool = False
    needs_zero: bool = False
    has_eq: bool = False


@dataclass
class WalkSegment:
    """Consecutive deep (or sparse) trees run by the walk kernel (no padding)."""

    dim: int
    trees: list[TreeInfo]
    words: np.ndarray = None  # per slot, as in the heap tables
    thresholds: np.ndarray = None
    left: np.ndarray = None  # slot of the left child (the right one follows it), or -1 - leaf index
    leaves: np.ndarray = None  # (leaves, dim) accumulation type
    roots: np.ndarray = None
    outs: np.ndarray = None
    cats: dict | None = None
    needs_nr: bool = False
    needs_zero: bool = False
    has_eq: bool = False

    @property
    def depth(self) -> int:
        return max(t.depth for t in self.trees)


@dataclass
class BitvectorSegment:
    """Consecutive walked trees of at most BITVECTOR_LEAVES leaves and numeric splits, run by
    the bitvector kernel (QuickScorer: Lucchese et al., SIGIR 2015).  A tree's leaves are
    numbered left to right (A subtree before B); a row's bitvector for the tree starts with
    every bit set, and each split whose `right` holds for the row clears the bits of its A
    subtree's leaves: the row's leaf is then the lowest set bit.  The splits are listed per
    feature in ascending order of t', so the splits a value sends right are a prefix of its
    feature's list; each list ends with a NaN sentinel, which stops every scan.  Missing
    values go right at the splits of the per-feature NaN lists (those with `nr`)."""

    dim: int
    trees: list[TreeInfo]
    fstart: np.ndarray = None  # (features,) int32: where feature f's list starts
    thresholds: np.ndarray = None  # t' per listed split (compare type), NaN for the sentinels
    masks: np.ndarray = None  # int64: the bits a split keeps (all but its A subtree's leaves)
    tree_of: np.ndarray = None  # int32: the split's tree (index in the segment; the lowering scales it)
    nstart: np.ndarray = None  # (features + 1,) int32: feature f's splits sending NaN right
    nmasks: np.ndarray = None
    ntree_of: np.ndarray = None
    leaves: np.ndarray = None  # (n, BITVECTOR_LEAVES) accumulation type, by leaf number
    outs: np.ndarray = None
    cats: None = None  # no `in` splits
    needs_nr: bool = False
    needs_zero: bool = False  # never: trees with zero-as-missing splits are walked
    has_eq: bool = False

    @property
    def depth(self) -> int:
        return max(t.depth for t in self.trees)


@dataclass
class BranchSegment:
    """Consecutive calibrated trees compiled as code (single rows): per node of the concatenated
    tables its canonical form (see `_canonical`), the hot child, and the hit counts."""

    dim: int
    trees: list[TreeInfo]
    roots: np.ndarray = None  # first node of each tree (its root)
    feature: np.ndarray = None
    split: np.ndarray = None  # bool: a split (else a leaf)
    b: np.ndarray = None  # the right child (the other one is taken when `right` is false)
    thresholds: np.ndarray = None  # t' in the compare type
    nr: np.ndarray = None
    zk: np.ndarray = None
    kind: np.ndarray = None
    hot: np.ndarray = None  # the child more rows took (the yes child on a tie): the fall-through
    cold: np.ndarray = None
    hits: np.ndarray = None
    leaves: np.ndarray = None  # (nodes, dim) accumulation type
    outs: np.ndarray = None
    chunks: list = None  # [(first tree, end)]: the trees of each LLVM function, about BRANCH_CHUNK_NODES nodes
    cats: dict | None = None  # per-node cat_start/cat_len and the words, when there are `in` splits
    needs_nr: bool = False
    needs_zero: bool = False
    has_eq: bool = False

    @property
    def n_nodes(self) -> int:
        return len(self.split)


@dataclass
class GeneralSegment:
    """Consecutive trees run by the node-table kernel (trees with linear leaves)."""

    dim: int
    trees: list[TreeInfo]
    linear: bool = False
    arrays: dict = field(default_factory=dict)


@dataclass
class EnsemblePlan:
    """How one `tree.ensemble` runs: its LLVM types, outputs, and tree segments in model order."""

    compare: str
    acc: str
    leaf: str
    n_features: int
    n_outputs: int
    init: np.ndarray
    cat_negative: str
    segments: list
    word: str = "i32"  # LLVM type of the node-word tables (i16 in small code when every word fits)
    left: str = "i32"  # LLVM type of the walk kernel's child-slot table (likewise)
    row_segments: list | None = None  # segments at the block sizes of BRANCH_ROWS, when some are branch code

    def segments_for(self, rows: int) -> list:
        """The segments a block of `rows` rows runs."""
        return self.row_segments if self.row_segments is not None and rows in BRANCH_ROWS else self.segments

    def describe(self) -> str:
        """Which kernels run the trees: per kind, trees and segments, for batches and (when they
        differ) single rows.  E.g. "batches: 485 trees bitvector (4 segments), 15 trees heap (8 segments)"."""
        names = {
            HeapSegment: "heap",
            WalkSegment: "walk",
            ObliviousSegment: "oblivious",
            BitvectorSegment: "bitvector",
            BranchSegment: "branch code",
            GeneralSegment: "node table",
        }
        parts = []
        for label, segs in (("batches", self.segments), ("one row", self.row_segments)):
            if segs is None:
                continue
            kinds: dict[str, list[int]] = {}
            for s in segs:
                k = kinds.setdefault(names[type(s)], [0, 0])
                k[0] += len(s.trees)
                k[1] += 1
            runs = ", ".join(f"{n} trees {name} ({g} segment{'' if g == 1 else 's'})" for name, (n, g) in kinds.items())
            parts.append(f"{label}: {runs}")
        return "; ".join(parts)

    @property
    def aware(self) -> bool:
        """Whether blocks holding NaN (or near-zero values) need the missing-aware heap kernels."""
        return self.aware_for(self.segments)

    @staticmethod
    def aware_for(segments: list) -> bool:
        """Whether `segments` have table kernels with a missing-aware variant (branch code routes
        missing values at every node itself)."""
        return any(isinstance(s, _TABLED) and (s.needs_nr or s.needs_zero) for s in segments)

    @property
    def zero(self) -> bool:
        return any(isinstance(s, _TABLED) and s.needs_zero for s in self.segments)

    @property
    def cost_per_row(self) -> int:
        """Tree levels visited per row, weighted by kernel speed (a rough work estimate for threading)."""
        cost = 0
        for s in self.segments:
            if isinstance(s, (HeapSegment, ObliviousSegment)):
                cost += len(s.trees) * (s.depth + 1)
            else:
                cost += sum(t.depth + 1 for t in s.trees) * (2 if isinstance(s, (WalkSegment, BitvectorSegment)) else 4)
        return cost


_TABLED = (HeapSegment, ObliviousSegment, WalkSegment, BitvectorSegment)


def plan_ensemble(op: tree.EnsembleOp, small: bool = False, bitvectors: bool = False) -> EnsemblePlan:
    """Tables and segments for one ensemble op (independent of the block size).  `small`: the
    smallest tables rather than the fastest kernels (see the module docstring); `bitvectors`:
    walked trees that qualify run as bitvector segments (`_bitvector_segments`)."""
    cdt, adt = op.compare_type.numpy, op.results[0].type.element.numpy
    slot_bytes = 2 + np.dtype(cdt).itemsize  # a node word (i16 in small code) and a threshold
    infos, sizes = [], []
    for t_op in op.trees:
        table = t_op.table
        if isinstance(table, ObliviousTable):
            if table.depth <= MAX_OBLIVIOUS_DEPTH:
                infos.append(TreeInfo(table, t_op.out, table.leaf_dim, table.depth, "oblivious"))
                sizes.append((None, 0))  # keeps its own kernel
                continue
            table = oblivious_as_nodes(table)
        split = table.pred != Pred.LEAF
        depth = table.depth()
        dense = depth <= HEAP_DEPTH or (depth <= MAX_HEAP_DEPTH and 8 * int(np.count_nonzero(~split)) >= 2**depth)
        kind = "nodes" if table.is_linear else "heap" if dense else "walk"
        infos.append(TreeInfo(table, t_op.out, table.leaf_dim, depth, kind, _hits(t_op, table)))
        # table bytes as a padded heap tree and as walk slots (word, threshold, i16 child) + leaves
        leaf_bytes = table.leaf_dim * np.dtype(adt).itemsize
        heap = 2**depth * (slot_bytes + leaf_bytes) if depth <= MAX_HEAP_DEPTH else None
        sizes.append((heap, (1 + 2 * int(split.sum())) * (slot_bytes + 2) + int((~split).sum()) * leaf_bytes))
    if small:
        _kinds_for_size(infos, sizes)
    neg = op.attributes.get("cat_negative")
    p = EnsemblePlan(
        compare=numpy_scalar_type(op.compare_type.numpy),
        acc=numpy_scalar_type(op.results[0].type.element.numpy),
        leaf=numpy_scalar_type(op.leaf_type.numpy),
        n_features=op.n_features,
        n_outputs=op.n_outputs,
        init=np.asarray(op.attributes["init"].values),
        cat_negative=neg.value if neg is not None else "value",
        segments=_segment(infos, _byte_costs(cdt, adt) if small else None),
    )
    if bitvectors and not small:
        p.segments = _bitvector_segments(p.segments)
    for s in p.segments:
        if isinstance(s, BitvectorSegment):
            _bitvector_tables(s, cdt, adt, op.n_features)
        elif isinstance(s, HeapSegment):
            _heap_tables(s, cdt, adt)
        elif isinstance(s, WalkSegment):
            _walk_tables(s, cdt, adt)
        elif isinstance(s, ObliviousSegment):
            _oblivious_tables(s, cdt, adt)
        else:
            _general_tables(s, cdt)
    if small:
        _narrow_columns(p)
    else:
        p.row_segments = _branch_segments(p.segments, cdt, adt)
    return p


def _hits(t_op, table: NodeTable) -> np.ndarray | None:
    """The tree's calibration hit counts, checked against its table."""
    attr = t_op.attributes.get(HITS)
    if attr is None:
        return None
    hits = np.asarray(attr.values, np.int64)
    if hits.shape != (table.n_nodes,) or np.any(hits < 0):
        raise TimberError(f"'{HITS}' must hold one non-negative count per node ({table.n_nodes}), found {len(hits)} values", t_op.location)
    return hits


def _branch_segments(segments: list, cdt, adt) -> list | None:
    """The segment list for single rows when some calibrated heap or walk segments are better
    run as branch code (consecutive ones of a leaf width merge; the others are kept, tables
    and all), or None.

    Branch code is fast when its branches are predictable; the table kernels are fast when
    they are branch-free (heap) or their loop exit is predictable (walk trees whose paths have
    about the same length).  The hit counts tell both, so a segment becomes branch code when at
    most BRANCH_MAX_MISS of its calibration decisions went to the colder child, or when it is a
    walk segment whose path lengths spread at least BRANCH_WALK_SPREAD levels.

    Measured on the 2-core Rocket Lake host, one thread: per-row µs of the single-row path
    (B = 1) with table kernels vs branch code for every calibrated segment, on 20000 fresh rows
    drawn like the 2000 calibration rows (tools/bench.py's generators; the synthetic models are
    trained on xgb1000's data); `miss` and `spread` are `_predictability` over all the trees.

        model                                   nodes (kind)    miss spread  tables  branch
        demo (XGBoost 50 x depth 4, real data)  870 heap        0.22  0.6     0.25    0.18
        XGBoost 100 x depth 6, breast cancer    1.6k heap       0.22  0.8     0.57    0.45
        XGBoost 200 x depth 4, breast cancer    2.4k heap       0.27  0.7     0.63    1.02
        XGBoost 100 x depth 3, synthetic        1.5k heap       0.32  0.0     0.34    1.10
        XGBoost 50 x depth 6, synthetic         6.2k heap       0.31  0.0     0.45    1.15
        XGBoost 20 x depth 8, synthetic         8.8k heap       0.30  0.1     0.34    0.69
        xgb1000, first 2 / 20 trees             0.9k / 8.5k heap 0.30 0.2     0.16 / 0.38  0.14 / 0.71
        xgb10class, first 10 trees              1.2k heap       0.26  0.1     0.31    0.39
        LightGBM 100 x 15 leaves, synthetic     2.8k heap       0.30  1.3     1.04    1.53
        XGBoost 50 x depth 12, synthetic        80k walk        0.27  1.3     2.20    3.39
        LightGBM 100 x 63 leaves, synthetic     12k walk        0.28  2.0     4.29    3.01
        LightGBM 30 x 255 leaves, synthetic     15k walk        0.29  2.3     1.67    1.27
        lgb500 (500 x 63 leaves)                62k walk        0.18  3.3     37.2    23.7
        lgbcat (1000 x 31 leaves, categorical)  61k walk        0.13  3.6     289     95

    The thresholds sit between the wins and the losses (0.22 | 0.26; 1.3 | 2.0), but for tiny
    ensembles whose code fits the caches (xgb1000's first 2 trees gain a little at 0.30).
    Batches stay on the SIMD table kernels (branch code row by row in a B = 64 block ran the
    demo at 11.6 M rows/s against 26 M).  BRANCH_MAX_NODES bounds the compile time, which branch code raises
    by 0.2-1 ms per node (lgb500: 0.5 -> 12-20 s, lgbcat: 1.2 -> 45-70 s; xgb1000's 223k
    nodes took 50-90 s and ran 3x slower than its tables)."""
    out: list = []
    chosen = 0
    for s in segments:
        if not isinstance(s, (HeapSegment, WalkSegment)) or any(t.hits is None for t in s.trees):
            out.append(s)
            continue
        miss, spread = _predictability(s.trees)
        if miss > BRANCH_MAX_MISS and not (isinstance(s, WalkSegment) and spread >= BRANCH_WALK_SPREAD):
            out.append(s)
            continue
        chosen += sum(t.table.n_nodes for t in s.trees)
        if out and isinstance(out[-1], BranchSegment) and out[-1].dim == s.dim:
            out[-1].trees.extend(s.trees)
        else:
            out.append(BranchSegment(s.dim, list(s.trees)))
    if not chosen or chosen > BRANCH_MAX_NODES:
        return None
    for s in out:
        if isinstance(s, BranchSegment):
            _branch_tables(s, cdt, adt)
    return out


def _predictability(trees: list[TreeInfo]) -> tuple[float, float]:
    """From the trees' hit counts: the fraction of split decisions that went to the colder
    child (the branches a static guess gets wrong), and the spread of path lengths (the
    hit-weighted standard deviation of leaf depth, averaged over the trees rows reached)."""
    c, roots = _concat([t.table for t in trees])
    hits = np.concatenate([t.hits for t in trees]).astype(np.float64)
    split = c["pred"] != Pred.LEAF
    yes, no = c["yes"], c["no"]
    at = np.flatnonzero(split)
    decisions = hits[at].sum()
    miss = float(np.minimum(hits[yes[at]], hits[no[at]]).sum() / decisions) if decisions else 1.0
    depth, node = np.zeros(len(split)), roots
    while len(node):
        node = node[split[node]]
        depth[yes[node]] = depth[no[node]] = depth[node] + 1
        node = np.concatenate([yes[node], no[node]])
    leaf = np.flatnonzero(~split)
    tree_of = np.repeat(np.arange(len(trees)), [t.table.n_nodes for t in trees])[leaf]
    w, d, n = hits[leaf], depth[leaf], len(trees)
    total = np.bincount(tree_of, w, n)
    seen = total > 0
    if not seen.any():
        return miss, 0.0
    mean = np.bincount(tree_of, w * d, n) / np.where(seen, total, 1)
    var = np.bincount(tree_of, w * (d - mean[tree_of]) ** 2, n)[seen] / total[seen]
    return miss, float(np.sqrt(var).mean())


def _kinds_for_size(infos: list[TreeInfo], sizes: list[tuple[int | None, int]]) -> None:
    """Small code: heap or walk for the numeric trees, whichever needs the least flash in all.
    Each kernel in use costs code too, so a mix must save more than one kernel's worth."""
    idx = [i for i, t in enumerate(infos) if t.kind in ("heap", "walk")]
    if not idx:
        return
    options = {"walk": sum(sizes[i][1] for i in idx)}
    if all(sizes[i][0] is not None for i in idx):
        options["heap"] = sum(sizes[i][0] for i in idx)
    mixed = [("heap" if sizes[i][0] is not None and sizes[i][0] <= sizes[i][1] else "walk") for i in idx]
    if len(set(mixed)) > 1:
        options["mixed"] = sum(sizes[i][0] if k == "heap" else sizes[i][1] for i, k in zip(idx, mixed)) + KERNEL_BYTES
    best = min(options, key=lambda k: (options[k], k))
    for i, k in zip(idx, mixed):
        infos[i].kind = k if best == "mixed" else best


def _byte_costs(cdt, adt):
    """Flash bytes of one tree padded to depth d in a segment of leaf width dim, per kind."""
    c, a = np.dtype(cdt).itemsize, np.dtype(adt).itemsize
    return {
        "heap": lambda d, dim: 2**d * (4 + c + dim * a),  # a word, a threshold and the leaves per slot
        "oblivious": lambda d, dim: d * (4 + c) + 2**d * dim * a,  # a word and a threshold per level
    }


def _narrow_columns(p: EnsemblePlan) -> None:
    """Store node words and walk child slots as i16 when every segment's values fit (small
    code reads them with scalar loads, which widen them again)."""
    tabled = [s for s in p.segments if not isinstance(s, GeneralSegment)]
    if not tabled:
        return
    if all(int(s.words.max(initial=0)) < 2**16 and int(s.words.min(initial=0)) >= 0 for s in tabled):
        p.word = "i16"
        for s in tabled:
            s.words = s.words.astype(np.uint16)
    walks = [s for s in tabled if isinstance(s, WalkSegment)]
    if walks and all(-(2**15) <= int(s.left.min()) and int(s.left.max()) < 2**15 for s in walks):
        p.left = "i16"
        for s in walks:
            s.left = s.left.astype(np.int16)


def _segment(infos: list[TreeInfo], costs=None) -> list:
    """Split the tree sequence into segments: maximal runs of one kernel kind and leaf width;
    a run of heap trees is further split by a small dynamic program over the segment depth
    (cost: padded levels per tree plus SEGMENT_COST per segment; or, given `costs`, bytes)."""
    segments: list = []
    i = 0
    while i < len(infos):
        j = i
        kind, dim = infos[i].kind, infos[i].dim
        while j < len(infos) and infos[j].kind == kind and infos[j].dim == dim:
            j += 1
        run = infos[i:j]
        if kind in ("heap", "oblivious"):
            cls = HeapSegment if kind == "heap" else ObliviousSegment
            tree_cost = None if costs is None else (lambda d, f=costs[kind], k=dim: f(d, k))
            for lo, hi, depth in _split_heap_run([t.depth for t in run], tree_cost, None if costs is None else SEGMENT_BYTES):
                segments.append(cls(depth, dim, run[lo:hi]))
        elif kind == "walk":
            segments.append(WalkSegment(dim, run))
        else:
            segments.append(GeneralSegment(dim, run, linear=any(t.table.is_linear for t in run)))
        i = j
    return segments


def _split_heap_run(depths: list[int], tree_cost=None, segment_cost=None) -> list[tuple[int, int, int]]:
    """[(start, end, depth)] minimising sum(tree_cost(depth)) + segment_cost * segments; by
    default a tree costs its padded levels (depth + 1) and a segment SEGMENT_COST.

    Dynamic program over trees with state "depth of the open segment" (one of the distinct
    tree depths): a tree either joins the open segment (if not deeper than it) or opens one."""
    tree_cost = tree_cost or (lambda d: d + 1)
    segment_cost = SEGMENT_COST if segment_cost is None else segment_cost
    levels = sorted(set(depths))
    inf = float("inf")
    cost = {d: inf for d in levels}
    started: list[dict[int, bool]] = []
    prev_best: list[int | None] = []
    for i, di in enumerate(depths):
        best_d = min(cost, key=lambda k: (cost[k], k)) if i else None
        best = cost[best_d] if i else 0.0
        new, st = {}, {}
        for d in levels:
            if d < di:
                new[d], st[d] = inf, False
                continue
            cont, start = cost[d] + tree_cost(d), best + segment_cost + tree_cost(d)
            new[d], st[d] = (cont, False) if cont <= start else (start, True)
        cost = new
        started.append(st)
        prev_best.append(best_d)
    d = min(cost, key=lambda k: (cost[k], k))
    out, end = [], len(depths)
    for i in range(len(depths) - 1, -1, -1):
        if started[i][d]:
            out.append((i, end, d))
            end, d = i, prev_best[i]
    return out[::-1]


def _concat(tables: list[NodeTable]):
    """The columns of several node tables end to end, child indices and category-set offsets
    made global."""
    sizes = np.array([t.n_nodes for t in tables])
    offs = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
    rep = np.repeat(offs, sizes)
    woffs = np.concatenate([[0], np.cumsum([len(t.cat_words) for t in tables])[:-1]]).astype(np.int64)

    def col(name):
        return np.concatenate([getattr(t, name) for t in tables])

    def child(name):
        c = col(name).astype(np.int64)
        return np.where(c >= 0, c + rep, -1)

    cols = dict(feature=col("feature"), pred=col("pred"), threshold=col("threshold"), missing=col("missing"), cat_len=col("cat_len"))
    cols.update(yes=child("yes"), no=child("no"), default=child("default"))
    cols["cat_start"] = col("cat_start").astype(np.int64) + np.repeat(woffs, sizes)
    cols["words"] = np.concatenate([t.cat_words for t in tables] + [np.zeros(1, np.uint32)])  # word 0 always exists
    cols["leaf"] = np.concatenate([t.leaf for t in tables])
    return cols, offs


def _canonical(c: dict, cdt):
    """Every split in one form: left child A, right child B, and `right` decided by the
    node's kind: v >= t' (lt/le/gt/ge; `le t` is `ge nextup(t)`), v == t' (eq/ne) or
    "category in the set" (in).  Also the nr (missing goes right) and zk (zero counts as
    missing) bits, and the node word."""
    cdt = np.dtype(cdt).type
    p, thr = c["pred"], c["threshold"].astype(cdt)
    yes, no = c["yes"], c["no"]
    inf, zero = cdt(np.inf), cdt(0)
    with np.errstate(invalid="ignore"):
        strict = (p == Pred.LE) | (p == Pred.GT)
        # v > t  <=>  v >= nextup(t) for every non-NaN v; nothing is above +inf (t' = NaN: never).
        tp = np.where(strict, np.where(thr < inf, np.nextafter(thr, inf), cdt(np.nan)), thr).astype(cdt)
        tp = np.where(p == Pred.IN, zero, tp).astype(cdt)
        flip = (p == Pred.GE) | (p == Pred.GT) | (p == Pred.EQ) | (p == Pred.IN)  # right child is `yes`
        zero_in = (c["cat_len"] > 0) & ((c["words"][np.minimum(c["cat_start"], len(c["words"]) - 1)] & 1) == 1)
        zero_yes = np.select(
            [p == Pred.LT, p == Pred.LE, p == Pred.GT, p == Pred.GE, p == Pred.EQ, p == Pred.NE, p == Pred.IN],
            [zero < thr, zero <= thr, zero > thr, zero >= thr, zero == thr, zero != thr, zero_in],
            False,
        )
    a_child, b_child = np.where(flip, no, yes), np.where(flip, yes, no)
    m = c["missing"]
    # without a missing kind, NaN fails every compare except ne (C's `!=`, true on NaN)
    plain_nan = np.where(p == Pred.NE, yes, no)
    nan_child = np.where(
        (m == Missing.NAN) | (m == Missing.ZERO), c["default"], np.where(m == Missing.NAN_AS_ZERO, np.where(zero_yes, yes, no), plain_nan)
    )
    nr = nan_child == b_child
    zk = m == Missing.ZERO
    kind = np.select([(p == Pred.EQ) | (p == Pred.NE), p == Pred.IN], [KIND_EQ, KIND_IN], KIND_GE)
    word = (
        (np.maximum(c["feature"], 0).astype(np.int64) << FEATURE_SHIFT)
        | (kind.astype(np.int64) << KIND_SHIFT)
        | (zk.astype(np.int64) * ZK_BIT)
        | nr.astype(np.int64)
    )
    return a_child, b_child, tp, nr, zk, kind, word


def _split_flags(s, c: dict, split: np.ndarray, nr, zk, kind, slots_of_node: np.ndarray, n_slots: int) -> None:
    """Segment flags, and the per-slot category tables when the segment has `in` splits."""
    s.needs_nr = bool(np.any(nr & split))
    s.needs_zero = bool(np.any(zk & split))
    s.has_eq = bool(np.any((kind == KIND_EQ) & split))
    is_in = (kind == KIND_IN) & split
    if not is_in.any():
        return
    start, length = np.zeros(n_slots, np.int32), np.zeros(n_slots, np.int32)
    nodes = np.flatnonzero(is_in)
    start[slots_of_node[nodes]] = c["cat_start"][nodes]
    length[slots_of_node[nodes]] = c["cat_len"][nodes]
    s.cats = {"start": start, "len": length, "words": c["words"].astype(np.uint32)}


def _heap_tables(s: HeapSegment, cdt, adt) -> None:
    """Pad every tree of the segment to depth `s.depth` in heap order, all trees at once:
    one pass per level over the frontier of (tree, node, heap position)."""
    size, n, dim = 2**s.depth, len(s.trees), s.dim
    c, roots = _concat([t.table for t in s.trees])
    a_child, b_child, tp, nr, zk, kind, word = _canonical(c, cdt)
    split = c["pred"] != Pred.LEAF
    words = np.zeros(n * size, np.int32)
    thresholds = np.full(n * size, np.nan, cdt)  # padding nodes: never right
    leaves = np.zeros((n, dim, size), adt)
    leaf_vals = c["leaf"].astype(adt)
    slot_of = np.full(len(split), -1, np.int64)
    node, tree_of, pos = roots, np.arange(n), np.zeros(n, np.int64)
    for level in range(s.depth + 1):
        is_split = split[node]
        ln, lt, lp = node[~is_split], tree_of[~is_split], pos[~is_split]
        if len(ln):
            # a leaf on this level covers the 2**k heap leaves below it
            k = 2 ** (s.depth - level)
            first = (lp + 1) * k - size
            span = (first[:, None] + np.arange(k)[None, :]).reshape(-1)
            trees = np.repeat(lt, k)
            leaves[trees, :, span] = np.repeat(leaf_vals[ln], k, axis=0)
        sn, st, sp = node[is_split], tree_of[is_split], pos[is_split]
        if not len(sn):
            break
        slot_of[sn] = st * size + sp
        words[st * size + sp] = word[sn]
        thresholds[st * size + sp] = tp[sn]
        node = np.concatenate([a_child[sn], b_child[sn]])
        tree_of = np.concatenate([st, st])
        pos = np.concatenate([2 * sp + 1, 2 * sp + 2])
    _split_flags(s, c, split, nr, zk, kind, slot_of, n * size)
    s.words, s.thresholds, s.leaves = words.reshape(n, size), thresholds.reshape(n, size), leaves
    s.outs = np.array([t.out for t in s.trees], np.int32)


def _oblivious_tables(s: ObliviousSegment, cdt, adt) -> None:
    """Per tree and level the canonical node word and threshold; the leaves re-indexed so that
    bit d of the index is level d's `right` (levels whose right child is `no` flip their bit)."""
    n, D, dim = len(s.trees), s.depth, s.dim
    size = 2**D
    tabs = [t.table for t in s.trees]
    depths = np.array([t.depth for t in tabs])
    woffs = np.concatenate([[0], np.cumsum([len(t.cat_words) for t in tabs])[:-1]]).astype(np.int64)
    # the levels as a flat list of nodes with pretend children 1 = yes and 2 = no
    cat = lambda name: np.concatenate([getattr(t, name) for t in tabs]) if n else np.zeros(0)  # noqa: E731
    m = cat("missing")
    default = np.where(cat("default_true"), 1, 2)
    c = dict(
        feature=cat("feature"),
        pred=cat("pred"),
        threshold=cat("threshold"),
        missing=m,
        cat_len=cat("cat_len"),
        cat_start=cat("cat_start").astype(np.int64) + np.repeat(woffs, depths),
        words=np.concatenate([t.cat_words for t in tabs] + [np.zeros(1, np.uint32)]),
        yes=np.ones(len(m), np.int64),
        no=np.full(len(m), 2, np.int64),
        default=np.where((m == Missing.NAN) | (m == Missing.ZERO), default, -1),
    )
    _, b_child, tp, nr, zk, kind, word = _canonical(c, cdt)
    flip = b_child == 2  # right means "predicate false": the level's bit is !right
    tree_of = np.repeat(np.arange(n), depths)
    level = np.concatenate([np.arange(d) for d in depths]) if n else np.zeros(0, np.int64)
    slot = tree_of * D + level
    words = np.zeros(n * D, np.int32)
    thresholds = np.full(n * D, np.nan, cdt)  # padding levels: never right
    words[slot], thresholds[slot] = word, tp
    _split_flags(s, c, np.ones(len(m), bool), nr, zk, kind, slot, n * D)
    leaves = np.zeros((n, dim, size), adt)
    idx = np.arange(size)
    for i, t in enumerate(tabs):
        d = t.depth
        mask = int(sum(1 << k for k in range(d) if flip[slot == i * D + k].any()))
        r = idx[: 2**d]
        leaves[i, :, : 2**d] = t.leaf[r ^ mask].astype(adt).T
    s.words, s.thresholds, s.leaves = words.reshape(n, D), thresholds.reshape(n, D), leaves
    s.outs = np.array([t.out for t in s.trees], np.int32)


def _walk_tables(s: WalkSegment, cdt, adt) -> None:
    """Renumber the segment's nodes into slots, breadth first, with the two children of a
    split in adjacent slots (left = A, right = A + 1), so that a step is `slot = left + right`.
    Tree t's root is slot t; a leaf's slot holds `left = -1 - (its row in the leaf table)`."""
    n = len(s.trees)
    c, roots = _concat([t.table for t in s.trees])
    a_child, b_child, tp, nr, zk, kind, word = _canonical(c, cdt)
    split = c["pred"] != Pred.LEAF
    n_slots = n + 2 * int(split.sum())
    words, left = np.zeros(n_slots, np.int32), np.zeros(n_slots, np.int64)
    thresholds = np.zeros(n_slots, cdt)
    leaf_vals = c["leaf"].astype(adt)
    leaves = np.zeros((int((~split).sum()), s.dim), adt)
    slot_of = np.full(len(split), -1, np.int64)
    node, slot = roots, np.arange(n)
    next_slot, next_leaf = n, 0
    while len(node):
        inner = split[node]
        ln, ls = node[~inner], slot[~inner]
        ids = next_leaf + np.arange(len(ln))
        left[ls] = -1 - ids
        leaves[ids] = leaf_vals[ln]
        next_leaf += len(ln)
        sn, ss = node[inner], slot[inner]
        first = next_slot + 2 * np.arange(len(sn))
        left[ss], words[ss], thresholds[ss] = first, word[sn], tp[sn]
        slot_of[sn] = ss
        next_slot += 2 * len(sn)
        node = np.stack([a_child[sn], b_child[sn]], axis=1).reshape(-1)
        slot = np.stack([first, first + 1], axis=1).reshape(-1)
    _split_flags(s, c, split, nr, zk, kind, slot_of, n_slots)
    s.words, s.thresholds, s.left, s.leaves = words, thresholds, left.astype(np.int32), leaves
    s.roots = np.arange(n, dtype=np.int32)
    s.outs = np.array([t.out for t in s.trees], np.int32)


def _bitvector_ok(t: TreeInfo) -> bool:
    """Whether a tree can run in a bitvector segment: walked, one leaf value, at most
    BITVECTOR_LEAVES leaves, only ordered compares, no zero-as-missing splits."""
    tab = t.table
    if t.kind != "walk" or t.dim != 1:
        return False
    split = tab.pred != Pred.LEAF
    if int(np.count_nonzero(~split)) > BITVECTOR_LEAVES:
        return False
    p = tab.pred[split]
    return bool(np.all((p >= Pred.LT) & (p <= Pred.GE)) and not np.any(tab.missing[split] == Missing.ZERO))


def _bitvector_segments(segments: list) -> list:
    """Walk segments' qualifying trees (`_bitvector_ok`) as bitvector segments of at most
    BITVECTOR_TREES trees (a row's bitvectors, BITVECTOR_TREES x 8 bytes per lane, stay in L1);
    the others stay walk segments, in model order.

    Measured on AMD EPYC (Zen 3, AVX2, no AVX-512), one process, interleaved, best of 9-15,
    20k rows: LightGBM 500 trees x 63 leaves (485 trees qualify) 104k rows/s walked (8 rows
    interleaved) -> 223k; groups of 4 doubles 145k, 8 doubles 181-194k, 16 doubles 207-230k
    (BITVECTOR_VECTORS); 64, 128, 256 or 512 trees per segment within the noise at 16 rows
    (128: 16 KB of bitvectors, half of L1).  A split as one i32 word (tree offset | leaf span,
    the mask built in the kernel: 12 bytes per split with its threshold instead of 20) ran
    slower, 177-190k against 209-230k rows/s: the scans are not bound by their bytes.  Heap
    trees stay heap: XGBoost 500 trees of depth 6 (complete trees) run 618k rows/s on the heap
    kernel and 202k as bitvectors; LightGBM 300 trees x 31 leaves (half heap, half walked) 302k
    as they are, 319k all as bitvectors, within the noise."""
    out: list = []
    for s in segments:
        if not isinstance(s, WalkSegment):
            out.append(s)
            continue
        for ok, run in itertools.groupby(s.trees, _bitvector_ok):
            run = list(run)
            if ok:
                out.extend(BitvectorSegment(s.dim, run[k : k + BITVECTOR_TREES]) for k in range(0, len(run), BITVECTOR_TREES))
            else:
                out.append(WalkSegment(s.dim, run))
    return out


def _bitvector_tables(s: BitvectorSegment, cdt, adt, n_features: int) -> None:
    """Leaf numbers (left to right), the masks of the splits, and the per-feature lists."""
    n, L = len(s.trees), BITVECTOR_LEAVES
    c, roots = _concat([t.table for t in s.trees])
    a_child, b_child, tp, nr, _, _, _ = _canonical(c, cdt)
    split = c["pred"] != Pred.LEAF
    tree_of = np.repeat(np.arange(n), [t.table.n_nodes for t in s.trees])
    # breadth-first levels of the reachable nodes; leaf counts bottom-up, first leaf numbers top-down
    levels, node = [], roots
    while len(node):
        levels.append(node)
        sn = node[split[node]]
        node = np.concatenate([a_child[sn], b_child[sn]])
    count = np.ones(len(split), np.int64)
    for lv in reversed(levels):
        sn = lv[split[lv]]
        count[sn] = count[a_child[sn]] + count[b_child[sn]]
    first = np.zeros(len(split), np.int64)
    for lv in levels:
        sn = lv[split[lv]]
        first[a_child[sn]] = first[sn]
        first[b_child[sn]] = first[sn] + count[a_child[sn]]
    reached = np.concatenate(levels)
    inner = reached[split[reached]]
    leaf = reached[~split[reached]]
    leaves = np.zeros((n, L), adt)
    leaves[tree_of[leaf], first[leaf]] = c["leaf"][leaf, 0].astype(adt)
    # the bits a split keeps: all but first[n] .. first[n] + count[A] - 1, its A subtree's leaves
    na = count[a_child[inner]].astype(np.uint64)
    mask = (~((np.left_shift(np.uint64(1), na) - np.uint64(1)) << first[inner].astype(np.uint64))).view(np.int64)
    feature = np.maximum(c["feature"][inner], 0).astype(np.int64)
    t = tp[inner]
    # the ordered lists: splits whose t' is NaN never send a value right (only NaN, by `nr`)
    live = ~np.isnan(t)
    order = np.lexsort((t[live], feature[live]))
    f_l, t_l, m_l, tr_l = feature[live][order], t[live][order], mask[live][order], tree_of[inner][live][order]
    # one NaN sentinel after each feature's list
    starts = np.searchsorted(f_l, np.arange(n_features)) + np.arange(n_features)
    size = len(f_l) + n_features
    thresholds = np.full(size, np.nan, cdt)
    masks = np.full(size, -1, np.int64)  # a sentinel keeps every bit
    trees = np.zeros(size, np.int32)
    pos = np.arange(len(f_l)) + f_l  # each earlier feature adds its sentinel
    thresholds[pos], masks[pos], trees[pos] = t_l, m_l, tr_l
    # the NaN lists
    nan_right = nr[inner]
    norder = np.argsort(feature[nan_right], kind="stable")
    nf = feature[nan_right][norder]
    s.fstart, s.thresholds, s.masks, s.tree_of = starts.astype(np.int32), thresholds, masks, trees
    s.nstart = np.searchsorted(nf, np.arange(n_features + 1)).astype(np.int32)
    s.nmasks = mask[nan_right][norder]
    s.ntree_of = tree_of[inner][nan_right][norder].astype(np.int32)
    s.needs_nr = bool(nan_right.any())
    s.leaves = leaves
    s.outs = np.array([t.out for t in s.trees], np.int32)


def _branch_tables(s: BranchSegment, cdt, adt) -> None:
    """The canonical form of every node of the segment's trees, and which child is hot."""
    c, roots = _concat([t.table for t in s.trees])
    _, b_child, tp, nr, zk, kind, _ = _canonical(c, cdt)
    split = c["pred"] != Pred.LEAF
    hits = np.concatenate([t.hits for t in s.trees])
    yes, no = c["yes"], c["no"]
    # tree-sort-branches made the hotter child the yes child; a tie keeps it there
    hot_no = split & (hits[np.maximum(no, 0)] > hits[np.maximum(yes, 0)])
    s.hot, s.cold = np.where(hot_no, no, yes), np.where(hot_no, yes, no)
    s.roots, s.feature, s.split, s.b, s.thresholds = roots, np.maximum(c["feature"], 0), split, b_child, tp
    s.nr, s.zk, s.kind, s.hits = nr & split, zk & split, kind, hits
    s.leaves = c["leaf"].astype(adt)
    s.outs = np.array([t.out for t in s.trees], np.int32)
    _split_flags(s, c, split, nr, zk, kind, np.arange(len(split)), len(split))
    # whole trees per function, up to BRANCH_CHUNK_NODES nodes (a bigger tree has one to itself)
    ends = np.append(roots, len(split))
    s.chunks, lo = [], 0
    while lo < len(s.trees):
        hi = lo + 1
        while hi < len(s.trees) and ends[hi + 1] - ends[lo] <= BRANCH_CHUNK_NODES:
            hi += 1
        s.chunks.append((lo, hi))
        lo = hi


def _general_tables(s: GeneralSegment, cdt) -> None:
    """Concatenate node tables; child indices and bitset offsets become segment-global."""
    tables = [t.table for t in s.trees]
    sizes = np.array([t.n_nodes for t in tables])
    offs = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int32)
    woffs = np.concatenate([[0], np.cumsum([len(t.cat_words) for t in tables])[:-1]]).astype(np.int32)

    a = s.arrays
    a["feature"] = np.concatenate([np.maximum(t.feature, 0) for t in tables]).astype(np.int32)
    a["pred"] = np.concatenate([t.pred for t in tables]).astype(np.int8)
    a["missing"] = np.concatenate([t.missing for t in tables]).astype(np.int8)
    a["threshold"] = np.concatenate([t.threshold for t in tables]).astype(cdt)
    for col in ("yes", "no", "default"):
        a[col] = np.concatenate([np.where(getattr(t, col) >= 0, getattr(t, col) + o, 0) for t, o in zip(tables, offs)]).astype(np.int32)
    a["cat_start"] = np.concatenate([t.cat_start + o for t, o in zip(tables, woffs)]).astype(np.int32)
    a["cat_len"] = np.concatenate([t.cat_len for t in tables]).astype(np.int32)
    words = [t.cat_words for t in tables] + [np.zeros(1, np.uint32)]  # index 0 must exist
    a["words"] = np.concatenate(words).astype(np.uint32)
    ldt = tables[0].leaf.dtype
    a["leaf"] = np.concatenate([t.leaf for t in tables]).astype(ldt).reshape(-1)
    a["root"] = offs
    a["out"] = np.array([t.out for t in s.trees], np.int32)
    if s.linear:
        # a plain tree in a linear segment: every leaf is "const = leaf value, no terms"
        consts, starts, lens, feats, coeffs = [], [], [], [], []
        nterms = 0
        for t in tables:
            if t.is_linear:
                consts.append(t.lin_const)
                starts.append(t.lin_start + nterms)
                lens.append(t.lin_len)
                feats.append(t.lin_feature)
                coeffs.append(t.lin_coeff)
                nterms += len(t.lin_feature)
            else:
                consts.append(t.leaf[:, 0])
                starts.append(np.zeros(t.n_nodes, np.int32))
                lens.append(np.zeros(t.n_nodes, np.int32))
        a["lin_const"] = np.concatenate(consts).astype(ldt)
        a["lin_start"] = np.concatenate(starts).astype(np.int32)
        a["lin_len"] = np.concatenate(lens).astype(np.int32)
        a["lin_feature"] = np.concatenate(feats + [np.zeros(1, np.int32)]).astype(np.int32)
        a["lin_coeff"] = np.concatenate(coeffs + [np.zeros(1, ldt)]).astype(ldt)
