"""The tree kernels: LLVM functions that run one segment of an ensemble (see `plan.py`) over
a block of rows.

Code size does not grow with the model: trees live in constant tables and a handful of kernel
functions loop over them, so a 3000-tree forest compiles as fast as a 3-tree one.

Rows are processed in blocks of B (64) held feature-major (`xt[f*B + row]`, in the compare
type).  Trees are visited in model order and each tree is applied to the whole block before
the next one (tree-major), so every row still accumulates its trees in model order, as
`tree.ensemble` requires, while the tree's tables stay in L1.  With SIMD, a vector holds one
row per lane; without it (`lanes` 0) the kernels loop over rows with scalar code.

* **heap**: the block's vectors walk a padded tree level by level, branch-free:
  `idx = 2*idx + 1 + right`.  Each level's node words and thresholds are permuted out of
  vector registers loaded once per tree (heap levels are contiguous); row values are gathered.
* **walk**: every lane steps `slot = left[slot] + right` until it reaches a leaf; lanes that
  are done are masked off until the whole block is.
* **oblivious**: a level tests one feature for all rows: one contiguous load per level, one
  index bit per level.
* **nodes**: scalar node-table walk per row, the op semantics written out literally (linear
  leaves).
* **bitvector**: QuickScorer (`bitvector_kernel`): per feature, a scan of its splits in
  threshold order clears the leaves each split rules out; a tree's leaf is the lowest bit left.
* **branch**: calibrated trees as code, one row at a time: a basic block per node whose
  conditional branch goes to the hot child with `!prof` branch weights from the hit counts,
  the sums kept in registers (see `branch_kernels`; plan.py says where it runs).

`right` at a node follows the node's kind; missing values follow its nr/zk bits only in the
"aware" variants, which run on blocks holding a NaN (or a near-zero value, when zero counts as
missing somewhere); the "plain" variants skip that work.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ir.dialects.tree import CAT_LIMIT, ZERO_THRESHOLD, Missing, Pred

from .emit import Function, Module, const, gather, iota, splat, vec, vector_const
from .plan import BITVECTOR_LEAVES, BITVECTOR_TREES, FEATURE_SHIFT, KIND_EQ, KIND_GE, KIND_IN, KIND_SHIFT, BranchSegment, EnsemblePlan
from .target import TargetInfo


@dataclass
class KernelContext:
    """What a kernel is generated for: the module, the block size, and the target."""

    mod: Module
    rows: int  # B: rows per block
    target: TargetInfo

    @property
    def lanes(self) -> int:
        """SIMD lanes of the heap kernel (0: scalar code with a loop over rows)."""
        w = self.target.lanes
        return w if w > 1 and self.rows % w == 0 else 0


def declare_unary(mod: Module, name: str, t: str, lanes: int) -> str:
    """Declare the intrinsic `llvm.<name>` for scalar or vector `t` and return its full name."""
    suffix = {"float": "f32", "double": "f64"}[t]
    full = f"llvm.{name}.{suffix}" if lanes == 0 else f"llvm.{name}.v{lanes}{suffix}"
    vt = vec(lanes, t)
    mod.declare(full, f"declare {vt} {{name}}({vt})")
    return full


def _word(fn: Function, p: EnsemblePlan, ptr: str, idx: str, ity: str = "i32", hint: str = "wd") -> str:
    """A node word (scalar), widened to i32 when the plan stores words as i16 (small code)."""
    w = gather(fn, None, p.word, ptr, idx, 0, ity, hint=hint)
    return w if p.word == "i32" else fn.op(hint, f"zext {p.word} {w} to i32")


def _left(fn: Function, p: EnsemblePlan, slot: str, ity: str = "i32") -> str:
    """The walk kernel's child slot (or -1 - leaf) at `slot` (an `ity`), widened to i32 (scalar)."""
    v = gather(fn, None, p.left, "%Lf", slot, 0, ity, hint="left")
    return v if p.left == "i32" else fn.op("left", f"sext {p.left} {v} to i32")


def _narrow_suffix(p: EnsemblePlan) -> str:
    return "" if p.word == p.left == "i32" else f"_{p.word}{p.left}"


def _broadcast(fn: Function, t: str, lanes: int, scalar: str, hint: str) -> str:
    vt = vec(lanes, t)
    ins = fn.op(hint + "i", f"insertelement {vt} poison, {t} {scalar}, i64 0")
    return fn.op(hint + "v", f"shufflevector {vt} {ins}, {vt} poison, {vec(lanes, 'i32')} zeroinitializer")


def _register_capacity(kc: KernelContext, t: str) -> tuple[int, int]:
    """(entries per vector register, registers a window may use) for in-register lookups of
    `t`, or (0, 0) when the target has no suitable permute."""
    if kc.target.permute == "avx512" and kc.lanes == 16:
        return (16, 8) if t in ("float", "i32") else (8, 4)
    if kc.target.permute == "avx2" and kc.lanes == 8 and t in ("float", "i32"):
        return 8, 4
    return 0, 0


class _Window:
    """Entries [offset, offset + count) of a per-tree table, read at per-lane (global) indices.

    When they fit, the entries are loaded into vector registers once per tree and read with
    permutes (a two-register permute covers 32 entries; more registers add a select per
    doubling), which spares the load ports; otherwise every read is a gather."""

    def __init__(self, fn: Function, kc: KernelContext, t: str, base: str, offset: int, count: int, hint: str):
        self.fn, self.kc, self.t, self.base, self.offset, self.hint = fn, kc, t, base, offset, hint
        per, most = _register_capacity(kc, t)
        nregs = 1
        while per and nregs * per < count:
            nregs *= 2
        self.per = per
        self.regs: list[str] = []
        if per and nregs <= most:
            for r in range(nregs):
                p = fn.op(hint + "p", f"getelementptr {t}, ptr {base}, i64 {offset + r * per}")
                self.regs.append(fn.op(hint + "r", f"load {vec(per, t)}, ptr {p}, align 4"))

    def __call__(self, idx: str) -> str:
        if not self.regs:
            return gather(self.fn, self.kc.mod, self.t, self.base, idx, self.kc.lanes, hint=self.hint)
        w = self.kc.lanes
        li = idx if not self.offset else self.fn.op("li", f"sub {vec(w, 'i32')} {idx}, {splat(self.offset, 'i32', w)}")
        if self.t == "double":
            return self._double_halves(li)
        return self._select_tree(self._permute_pairs(li, vec(w, "i32")), li, "i32", w)

    def _permute_pairs(self, li: str, vi: str) -> list[str]:
        """Partial lookups: one per register (AVX2, or a single AVX-512 register), else one per pair."""
        fn, mod, t, regs = self.fn, self.kc.mod, self.t, self.regs
        if self.kc.target.permute == "avx2":
            name = "llvm.x86.avx2.permps" if t == "float" else "llvm.x86.avx2.permd"
            vt = vec(8, t)
            mod.declare(name, f"declare {vt} {{name}}({vt}, <8 x i32>)")
            return [fn.op(self.hint, f"call {vt} @{name}({vt} {r}, <8 x i32> {li})") for r in regs]
        vt = vec(16, t)
        if len(regs) == 1:
            name = f"llvm.x86.avx512.permvar.{'sf' if t == 'float' else 'si'}.512"
            mod.declare(name, f"declare {vt} {{name}}({vt}, <16 x i32>)")
            return [fn.op(self.hint, f"call {vt} @{name}({vt} {regs[0]}, <16 x i32> {li})")]
        name = f"llvm.x86.avx512.vpermi2var.{'ps' if t == 'float' else 'd'}.512"
        mod.declare(name, f"declare {vt} {{name}}({vt}, <16 x i32>, {vt})")
        return [fn.op(self.hint, f"call {vt} @{name}({vt} {regs[i]}, <16 x i32> {li}, {vt} {regs[i + 1]})") for i in range(0, len(regs), 2)]

    def _select_tree(self, parts: list[str], li: str, it: str, lanes: int) -> str:
        """Combine partial lookups, each covering `span` entries, by the index bits above them."""
        span = self.per * len(self.regs) // len(parts)
        vi, vt, vb = vec(lanes, it), vec(lanes, self.t), vec(lanes, "i1")
        while len(parts) > 1:
            bit = self.fn.op("hib", f"and {vi} {li}, {splat(span, it, lanes)}")
            hi = self.fn.op("hi", f"icmp ne {vi} {bit}, zeroinitializer")
            parts = [self.fn.op(self.hint, f"select {vb} {hi}, {vt} {parts[i + 1]}, {vt} {parts[i]}") for i in range(0, len(parts), 2)]
            span *= 2
        return parts[0]

    def _double_halves(self, li: str) -> str:
        """16 lanes of doubles: look up each half of 8 lanes with 64-bit indices, then join."""
        fn, mod, regs = self.fn, self.kc.mod, self.regs
        halves = []
        for h in range(2):
            sel = vector_const(range(8 * h, 8 * h + 8), "i32")
            ih = fn.op("ih", f"shufflevector <16 x i32> {li}, <16 x i32> poison, <8 x i32> {sel}")
            iq = fn.op("iq", f"zext <8 x i32> {ih} to <8 x i64>")
            if len(regs) == 1:
                name = "llvm.x86.avx512.permvar.df.512"
                mod.declare(name, "declare <8 x double> {name}(<8 x double>, <8 x i64>)")
                parts = [fn.op(self.hint, f"call <8 x double> @{name}(<8 x double> {regs[0]}, <8 x i64> {iq})")]
            else:
                name = "llvm.x86.avx512.vpermi2var.pd.512"
                mod.declare(name, "declare <8 x double> {name}(<8 x double>, <8 x i64>, <8 x double>)")
                parts = [
                    fn.op(self.hint, f"call <8 x double> @{name}(<8 x double> {regs[i]}, <8 x i64> {iq}, <8 x double> {regs[i + 1]})")
                    for i in range(0, len(regs), 2)
                ]
            halves.append(self._select_tree(parts, iq, "i64", 8))
        return fn.op(self.hint, f"shufflevector <8 x double> {halves[0]}, <8 x double> {halves[1]}, <16 x i32> {iota(16)}")


def _aware_right(fn: Function, mod: Module, C: str, lanes: int, x: str, word: str, right: str, zero: bool) -> str:
    """The aware variant's decision: a missing value (NaN; or |v| <= 1e-35 at zk nodes) goes
    right iff the node's nr bit is set; anything else follows the compare."""
    vc, vb, vi = vec(lanes, C), vec(lanes, "i1"), vec(lanes, "i32")
    miss = fn.op("miss", f"fcmp uno {vc} {x}, {x}")
    if zero:
        fabs = declare_unary(mod, "fabs", C, lanes)
        ax = fn.op("ax", f"call {vc} @{fabs}({vc} {x})")
        small = fn.op("small", f"fcmp ole {vc} {ax}, {splat(ZERO_THRESHOLD, C, lanes)}")
        zb = fn.op("zb", f"lshr {vi} {word}, {splat(1, 'i32', lanes)}")
        zk = fn.op("zk", f"trunc {vi} {zb} to {vb}")
        zs = fn.op("zs", f"and {vb} {small}, {zk}")
        miss = fn.op("miss", f"or {vb} {miss}, {zs}")
    nr = fn.op("nr", f"trunc {vi} {word} to {vb}")
    return fn.op("right", f"select {vb} {miss}, {vb} {nr}, {vb} {right}")


@dataclass
class Cats:
    """Where a kernel finds category sets: per-slot start/len tables (bases) and the words."""

    start: str
    length: str
    words: str = "%WD"


def _decide(
    fn: Function,
    kc: KernelContext,
    p: EnsemblePlan,
    lanes: int,
    x: str,
    th: str,
    word: str,
    flags,
    cats,
    idx: str,
    mask: str | None,
    aware: bool,
) -> str:
    """`right` for each lane at its node: by the node kind (v >= t', v == t' or category in
    set; the kinds a kernel can meet are in `flags`), then missing values by nr/zk (aware)."""
    C = p.compare
    vc, vb, vi = vec(lanes, C), vec(lanes, "i1"), vec(lanes, "i32")
    right = fn.op("right", f"fcmp oge {vc} {x}, {th}")
    eq, cat = flags
    if eq or cat:
        kind = fn.op("kind", f"lshr {vi} {word}, {splat(KIND_SHIFT, 'i32', lanes)}")
        kind = fn.op("kind", f"and {vi} {kind}, {splat(3, 'i32', lanes)}")
    if eq:
        is_eq = fn.op("is.eq", f"icmp eq {vi} {kind}, {splat(KIND_EQ, 'i32', lanes)}")
        req = fn.op("req", f"fcmp oeq {vc} {x}, {th}")
        right = fn.op("right", f"select {vb} {is_eq}, {vb} {req}, {vb} {right}")
    if cat:
        is_in = fn.op("is.in", f"icmp eq {vi} {kind}, {splat(KIND_IN, 'i32', lanes)}")
        use = is_in if mask is None else fn.op("use", f"and {vb} {is_in}, {mask}")
        rin = _in_set(fn, kc, p, lanes, x, cats, idx, use)
        right = fn.op("right", f"select {vb} {is_in}, {vb} {rin}, {vb} {right}")
    if aware:
        right = _aware_right(fn, kc.mod, C, lanes, x, word, right, p.zero)
    return right


def _in_set(fn: Function, kc: KernelContext, p: EnsemblePlan, lanes: int, x: str, cats: Cats, idx: str, use: str, span=None) -> str:
    """Per lane: x's category is in its node's set (the tree dialect's rule, in double: ±inf,
    negative and >= 2^31 are invalid and in no set).  Only lanes in `use` read the tables.
    `span`: the node's (first word, word count) when known here (branch code), instead of
    reading them from the `cats` start/length tables at `idx`."""
    mod = kc.mod
    vd, vb, vi = vec(lanes, "double"), vec(lanes, "i1"), vec(lanes, "i32")
    xd = x if p.compare == "double" else fn.op("xd", f"fpext {vec(lanes, 'float')} {x} to {vd}")
    zero = splat(0.0, "double", lanes)
    if p.cat_negative == "value":
        neg = fn.op("neg", f"fcmp olt {vd} {xd}, {zero}")
    else:
        # trunc(v) < 0 exactly when v <= -1: no llvm.trunc, which is a libm call on cores
        # without a rounding instruction (soft float, x86-64 before SSE4.1)
        neg = fn.op("neg", f"fcmp ole {vd} {xd}, {splat(-1.0, 'double', lanes)}")
    fabs = declare_unary(mod, "fabs", "double", lanes)
    finite = fn.op("finite", f"fcmp one {vd} {fn.op('ad', f'call {vd} @{fabs}({vd} {xd})')}, {splat(float('inf'), 'double', lanes)}")
    below = fn.op("below", f"fcmp olt {vd} {xd}, {splat(float(CAT_LIMIT), 'double', lanes)}")
    valid = fn.op("valid", f"and {vb} {finite}, {below}")
    nonneg = fn.op("nonneg", f"xor {vb} {neg}, {splat(1, 'i1', lanes)}")
    valid = fn.op("valid", f"and {vb} {valid}, {nonneg}")
    safe = fn.op("safe", f"select {vb} {valid}, {vd} {xd}, {vd} {zero}")
    code = fn.op("code", f"fptosi {vd} {safe} to {vi}")
    if span is not None:
        start, length = (str(int(v)) for v in span)
    else:
        start = gather(fn, mod, "i32", cats.start, idx, lanes, mask=use if lanes else None, hint="cs")
        length = gather(fn, mod, "i32", cats.length, idx, lanes, mask=use if lanes else None, hint="cl")
    cap = fn.op("cap", f"shl {vi} {length}, {splat(5, 'i32', lanes)}")
    inside = fn.op("inside", f"and {vb} {valid}, {fn.op('within', f'icmp ult {vi} {code}, {cap}')}")
    inside = fn.op("inside", f"and {vb} {inside}, {use}")
    wq = fn.op("wq", f"lshr {vi} {code}, {splat(5, 'i32', lanes)}")
    wi = fn.op("wi", f"add {vi} {start}, {wq}")
    if not lanes:
        wi = fn.op("wi", f"select i1 {inside}, i32 {wi}, i32 0")  # word 0 always exists
    wd = gather(fn, mod, "i32", cats.words, wi, lanes, mask=inside if lanes else None, hint="cw")
    sh = fn.op("sh", f"and {vi} {code}, {splat(31, 'i32', lanes)}")
    bit = fn.op("bit", f"trunc {vi} {fn.op('bits', f'lshr {vi} {wd}, {sh}')} to {vb}")
    return fn.op("in", f"and {vb} {inside}, {bit}")


def _flag_name(aware: bool, flags) -> str:
    return ("aware" if aware else "plain") + ("_eq" if flags[0] else "") + ("_in" if flags[1] else "")


# The table kernels' parameters after (xt, acc) and before ntrees, as `lower.py` passes them.
TABLE_COLUMNS = ("W", "T", "LV", "O", "CS", "CL", "WD")  # heap and oblivious: words, thresholds, leaves, outs, category sets
# Rows a walk kernel steps through a tree together in scalar code on AVX2 hosts without AVX-512
# (`TargetInfo.split_gathers`), instead of SIMD lanes with gathers.  Measured on AMD EPYC (Zen 3),
# one process, best of 11-21 runs: LightGBM 500 trees x 63 leaves 52k -> 96k rows/s, sklearn
# RandomForest 100 deep trees 97k -> 120k; 4 rows: 63k, 10 or 12 rows spill registers (50k, 25k).
WALK_INTERLEAVE = 8
WALK_COLUMNS = ("W", "T", "Lf", "LV", "R", "O", "CS", "CL", "WD")  # walk: also child slots and roots


@dataclass
class _TreeLoop:
    """A table kernel's loop over the trees of its segment: tree index `t` (i64) and the blocks
    in `labels`: "tree" (the loop header, which the per-tree prologue fills), "tree_end",
    "exit" and the kernel's own."""

    fn: Function
    t: str
    t_next: str
    labels: dict[str, str]


def _tree_loop(kc: KernelContext, name: str, columns, labels: tuple[str, ...] = (), blocks: tuple[str, ...] = ("xt", "acc")) -> _TreeLoop:
    """Start kernel `name(<blocks>..., <columns>..., ntrees)` (the row and accumulator blocks,
    then the tables) and open its loop over the trees: the code that follows goes into the
    "tree" block; `_end_tree_loop` closes it."""
    params = [("ptr noalias", f"%{b}") for b in blocks] + [("ptr", f"%{c}") for c in columns] + [("i64", "%ntrees")]
    fn = kc.mod.add(Function(name, "void", params))
    L = {k: fn.label(k) for k in ("tree", *labels, "tree_end", "exit")}
    t, t_next = fn.tmp("t"), fn.tmp("t.next")
    fn.emit(f"br label %{L['tree']}")
    fn.block(L["tree"])
    fn.emit(f"{t} = phi i64 [0, %entry], [{t_next}, %{L['tree_end']}]")
    return _TreeLoop(fn, t, t_next, L)


def _end_tree_loop(loop: _TreeLoop) -> None:
    """The "tree_end" block: on to the next tree, or return after the last."""
    fn, L = loop.fn, loop.labels
    fn.block(L["tree_end"])
    fn.emit(f"{loop.t_next} = add i64 {loop.t}, 1")
    more = fn.op("more", f"icmp ult i64 {loop.t_next}, %ntrees")
    fn.emit(f"br i1 {more}, label %{L['tree']}, label %{L['exit']}")
    fn.block(L["exit"])
    fn.emit("ret void")


def _out_block(fn: Function, kc: KernelContext, p: EnsemblePlan, t: str) -> str:
    """&acc[outs[t] * B]: the accumulators of tree t's first output."""
    o = fn.op("o", f"load i32, ptr {fn.op('op', f'getelementptr i32, ptr %O, i64 {t}')}, align 4")
    ob = fn.op("ob", f"mul i64 {fn.op('o64', f'sext i32 {o} to i64')}, {kc.rows}")
    return fn.op("accb", f"getelementptr {p.acc}, ptr %acc, i64 {ob}")


def _tree_cats(fn: Function, flags, nb: str) -> Cats | None:
    """Tree t's category tables (its slots start at `nb`), when the segment has `in` splits."""
    if not flags[1]:
        return None
    return Cats(fn.op("csp", f"getelementptr i32, ptr %CS, i64 {nb}"), fn.op("clp", f"getelementptr i32, ptr %CL, i64 {nb}"))


def heap_kernel(kc: KernelContext, p: EnsemblePlan, depth: int, dim: int, aware: bool, flags=(False, False)) -> str:
    """Define (once) the heap kernel for (depth, leaf width, variant, split kinds) and return its name.

    Signature: (xt, acc, words, thresholds, leaves, outs, cat_start, cat_len, cat_words, ntrees);
    `acc` is the [K][B] block of accumulators, `xt` the [N][B] block of row values in the
    compare type.  `flags` = (has eq/ne splits, has `in` splits)."""
    name = f"heap_d{depth}_k{dim}_{_flag_name(aware, flags)}_{p.compare}_{p.acc}_{p.cat_negative}_b{kc.rows}_w{kc.lanes}{_narrow_suffix(p)}"
    if kc.mod.has(name):
        return name
    B, w, C = kc.rows, kc.lanes, p.compare
    size = 2**depth
    loop = _tree_loop(kc, name, TABLE_COLUMNS)
    fn, t, L = loop.fn, loop.t, loop.labels
    nb = fn.op("nb", f"mul i64 {t}, {size}")
    fp = fn.op("fp", f"getelementptr {p.word}, ptr %W, i64 {nb}")
    tp = fn.op("tp", f"getelementptr {C}, ptr %T, i64 {nb}")
    lb = fn.op("lb", f"mul i64 {t}, {size * dim}")
    lp = fn.op("lp", f"getelementptr {p.acc}, ptr %LV, i64 {lb}")
    accb = _out_block(fn, kc, p, t)
    cats = _tree_cats(fn, flags, nb)
    root = None
    if depth:
        # level 0 is the same node for every row: its word and threshold are scalars
        w0 = _word(fn, p, fp, "0", hint="w0")
        t0 = fn.op("t0", f"load {C}, ptr {tp}, align 4")
        f0 = fn.op("f0", f"lshr i32 {w0}, {FEATURE_SHIFT}")
        f0 = fn.op("f0", f"zext i32 {f0} to i64")
        root = (w0, t0, fn.op("x0off", f"mul i64 {f0}, {B}"))
    if w:
        _walk_block(fn, kc, p, depth, dim, aware, flags, cats, fp, tp, lp, root, accb)
        fn.emit(f"br label %{L['tree_end']}")
    else:
        _walk_rows(fn, kc, p, depth, dim, aware, flags, cats, fp, tp, lp, root, accb, L["tree"], L["tree_end"])
    _end_tree_loop(loop)
    return name


SHARED_LEVELS = 5  # levels 0..4 (31 nodes) read one window at the start of the table
# On AVX2 hosts without AVX-512 (`TargetInfo.split_gathers`) the heap kernel's levels 1..3 do not
# gather row values: the level's 2-8 nodes' feature vectors are loaded whole and picked per lane
# by the node index's bits.  AMD EPYC (Zen 3), one process, 100k rows: the XGBoost demo (depth 4)
# 7.1M rows/s (gathers) -> 8.8M (level 1 picked) -> 10.1M (1-2) -> 12.7M (1-3); XGBoost 1000
# trees depth 8: 115k -> 139k (1-3), 135k (1-4), 116k (1-5).
X_SELECT_LEVELS = 3


def _walk_block(fn, kc: KernelContext, p: EnsemblePlan, depth, dim, aware, flags, cats, fp, tp, lp, root, accb) -> None:
    """All vectors of the block walk the tree level by level (independent gathers in flight,
    each level's table registers live only for that level), then add their leaves."""
    mod, B, w = kc.mod, kc.rows, kc.lanes
    C, A = p.compare, p.acc
    vc, vi, vb, va = vec(w, C), vec(w, "i32"), vec(w, "i1"), vec(w, A)
    V = B // w
    lane_off = [iota(w, 1, v * w) for v in range(V)]
    idx: list[str | None] = [None] * V
    if depth:
        w0, t0, x0off = root
        tv = _broadcast(fn, C, w, t0, "t0")
        wv = _broadcast(fn, "i32", w, w0, "w0")
        for v in range(V):
            # every lane is at the root: the row values are one contiguous load
            xp = fn.op("x0p", f"getelementptr {C}, ptr %xt, i64 {x0off}")
            xp = fn.op("x0p", f"getelementptr {C}, ptr {xp}, i64 {v * w}")
            x = fn.op("x0", f"load {vc}, ptr {xp}, align 4")
            right = _decide(fn, kc, p, w, x, tv, wv, flags, cats, "zeroinitializer", None, aware)
            rz = fn.op("rz", f"zext {vb} {right} to {vi}")
            idx[v] = fn.op("idx", f"add {vi} {rz}, {splat(1, 'i32', w)}")
    shared = None
    for level in range(1, depth):
        if level < SHARED_LEVELS:
            shared = shared or (
                _Window(fn, kc, "i32", fp, 0, min(2**depth, 2**SHARED_LEVELS) - 1, "wd"),
                _Window(fn, kc, C, tp, 0, min(2**depth, 2**SHARED_LEVELS) - 1, "th"),
            )
            words, thrs = shared
        else:
            first = 2**level - 1
            words, thrs = _Window(fn, kc, "i32", fp, first, 2**level, "wd"), _Window(fn, kc, C, tp, first, 2**level, "th")
        select_x = kc.target.split_gathers and level <= X_SELECT_LEVELS
        if select_x:
            # the level's 2**level nodes: their features' row vectors, loaded whole, picked per lane
            first = 2**level - 1
            offs = []
            for k in range(2**level):
                fk = fn.op("fk", f"lshr i32 {_word(fn, p, fp, str(first + k), hint='wk')}, {FEATURE_SHIFT}")
                offs.append(fn.op("xko", f"mul i64 {fn.op('fk', f'zext i32 {fk} to i64')}, {B}"))
        for v in range(V):
            wd, th = words(idx[v]), thrs(idx[v])
            if select_x:
                vc = vec(w, C)
                cands = []
                for o in offs:
                    xkp = fn.op("xkp", f"getelementptr {C}, ptr %xt, i64 {fn.op('xkv', f'add i64 {o}, {v * w}')}")
                    cands.append(fn.op("xk", f"load {vc}, ptr {xkp}, align 4"))
                rel = fn.op("rel", f"sub {vi} {idx[v]}, {splat(first, 'i32', w)}")
                span = 1
                while len(cands) > 1:
                    bit = fn.op("xb", f"and {vi} {rel}, {splat(span, 'i32', w)}")
                    hi = fn.op("xh", f"icmp ne {vi} {bit}, zeroinitializer")
                    cands = [fn.op("x", f"select {vb} {hi}, {vc} {cands[i + 1]}, {vc} {cands[i]}") for i in range(0, len(cands), 2)]
                    span *= 2
                x = cands[0]
            else:
                fi = fn.op("fi", f"lshr {vi} {wd}, {splat(FEATURE_SHIFT, 'i32', w)}")
                fo = fn.op("fo", f"mul {vi} {fi}, {splat(B, 'i32', w)}")
                xo = fn.op("xo", f"add {vi} {fo}, {lane_off[v]}")
                x = gather(fn, mod, C, "%xt", xo, w, hint="x")
            right = _decide(fn, kc, p, w, x, th, wd, flags, cats, idx[v], None, aware)
            rz = fn.op("rz", f"zext {vb} {right} to {vi}")
            i2 = fn.op("i2", f"shl {vi} {idx[v]}, {splat(1, 'i32', w)}")
            i2 = fn.op("i2", f"or {vi} {i2}, {splat(1, 'i32', w)}")
            idx[v] = fn.op("idx", f"add {vi} {i2}, {rz}")
    size = 2**depth
    for j in range(dim):
        base = fn.op("lj", f"getelementptr {A}, ptr {lp}, i64 {j * size}")
        table = _Window(fn, kc, A, base, 0, size, "lf") if depth else None
        for v in range(V):
            if depth:
                li = fn.op("li", f"sub {vi} {idx[v]}, {splat(size - 1, 'i32', w)}")
                val = table(li)
            else:
                val = _broadcast(fn, A, w, fn.op("lv", f"load {A}, ptr {base}, align 4"), "lv")
            ap = fn.op("ap", f"getelementptr {A}, ptr {accb}, i64 {j * B + v * w}")
            old = fn.op("acc", f"load {va}, ptr {ap}, align 4")
            new = fn.op("acc", f"fadd {va} {old}, {val}")
            fn.emit(f"store {va} {new}, ptr {ap}, align 4")


def _walk_rows(fn, kc: KernelContext, p: EnsemblePlan, depth, dim, aware, flags, cats, fp, tp, lp, root, accb, entry_l, exit_l) -> None:
    """Scalar heap kernel body: a loop over the block's rows, each walking the tree with loads."""
    mod, B = kc.mod, kc.rows
    C, A = p.compare, p.acc
    size = 2**depth
    row_l = fn.label("row")
    r, r_next = fn.tmp("r"), fn.tmp("r.next")
    fn.emit(f"br label %{row_l}")
    fn.block(row_l)
    fn.emit(f"{r} = phi i64 [0, %{entry_l}], [{r_next}, %{row_l}]")
    idx = "0"
    if depth:
        w0, t0, x0off = root
        xo = fn.op("xo", f"add i64 {x0off}, {r}")
        x = gather(fn, mod, C, "%xt", xo, 0, "i64", hint="x")
        right = _decide(fn, kc, p, 0, x, t0, w0, flags, cats, "0", None, aware)
        rz = fn.op("rz", f"zext i1 {right} to i32")
        idx = fn.op("idx", f"add i32 {rz}, 1")
    for _level in range(1, depth):
        wd = _word(fn, p, fp, idx)
        th = gather(fn, mod, C, tp, idx, 0, hint="th")
        fi = fn.op("fi", f"lshr i32 {wd}, {FEATURE_SHIFT}")
        fi = fn.op("fi", f"zext i32 {fi} to i64")
        fo = fn.op("fo", f"mul i64 {fi}, {B}")
        xo = fn.op("xo", f"add i64 {fo}, {r}")
        x = gather(fn, mod, C, "%xt", xo, 0, "i64", hint="x")
        right = _decide(fn, kc, p, 0, x, th, wd, flags, cats, idx, None, aware)
        rz = fn.op("rz", f"zext i1 {right} to i32")
        i2 = fn.op("i2", f"shl i32 {idx}, 1")
        i2 = fn.op("i2", f"or i32 {i2}, 1")
        idx = fn.op("idx", f"add i32 {i2}, {rz}")
    li = fn.op("li", f"sub i32 {idx}, {size - 1}")
    for j in range(dim):
        lj = fn.op("lj", f"add i32 {li}, {j * size}")
        val = gather(fn, mod, A, lp, lj, 0, hint="leaf")
        ao = fn.op("ao", f"add i64 {r}, {j * B}")
        ap = fn.op("ap", f"getelementptr {A}, ptr {accb}, i64 {ao}")
        old = fn.op("acc", f"load {A}, ptr {ap}")
        new = fn.op("acc", f"fadd {A} {old}, {val}")
        fn.emit(f"store {A} {new}, ptr {ap}")
    fn.emit(f"{r_next} = add i64 {r}, 1")
    more = fn.op("more", f"icmp ult i64 {r_next}, {B}")
    fn.emit(f"br i1 {more}, label %{row_l}, label %{exit_l}")


def oblivious_kernel(kc: KernelContext, p: EnsemblePlan, depth: int, dim: int, aware: bool, flags=(False, False)) -> str:
    """Define (once) the oblivious-tree kernel and return its name.

    Signature: (xt, acc, words, thresholds, leaves, outs, cat_start, cat_len, cat_words, ntrees).
    A level tests one feature for every row, so its row values are a contiguous load from the
    feature-major block; the leaf index collects one `right` bit per level."""
    name = f"obl_d{depth}_k{dim}_{_flag_name(aware, flags)}_{p.compare}_{p.acc}_{p.cat_negative}_b{kc.rows}_w{kc.lanes}{_narrow_suffix(p)}"
    if kc.mod.has(name):
        return name
    B, w, C = kc.rows, kc.lanes, p.compare
    size = 2**depth
    loop = _tree_loop(kc, name, TABLE_COLUMNS, ("row",))
    fn, t, L = loop.fn, loop.t, loop.labels
    nb = fn.op("nb", f"mul i64 {t}, {depth}")
    wp = fn.op("wp", f"getelementptr {p.word}, ptr %W, i64 {nb}")
    tp = fn.op("tp", f"getelementptr {C}, ptr %T, i64 {nb}")
    lp = fn.op("lp", f"getelementptr {p.acc}, ptr %LV, i64 {fn.op('lb', f'mul i64 {t}, {size * dim}')}")
    accb = _out_block(fn, kc, p, t)
    cats = _tree_cats(fn, flags, nb)
    levels = []
    for d in range(depth):
        wd = _word(fn, p, wp, str(d), "i64", hint="w")
        th = fn.op("th", f"load {C}, ptr {fn.op('thp', f'getelementptr {C}, ptr {tp}, i64 {d}')}, align 4")
        f = fn.op("f", f"zext i32 {fn.op('f', f'lshr i32 {wd}, {FEATURE_SHIFT}')} to i64")
        levels.append((wd, th, fn.op("xoff", f"mul i64 {f}, {B}")))
    if w:
        _oblivious_vectors(fn, kc, p, depth, dim, aware, flags, cats, levels, lp, accb)
        fn.emit(f"br label %{L['tree_end']}")
    else:
        _oblivious_rows(fn, kc, p, depth, dim, aware, flags, cats, levels, lp, accb, L)
    _end_tree_loop(loop)
    return name


def _oblivious_vectors(fn, kc: KernelContext, p: EnsemblePlan, depth, dim, aware, flags, cats, levels, lp, accb) -> None:
    B, w, C, A = kc.rows, kc.lanes, p.compare, p.acc
    vc, vi, vb, va = vec(w, C), vec(w, "i32"), vec(w, "i1"), vec(w, A)
    V = B // w
    idx = ["zeroinitializer"] * V
    for d, (wd, th, xoff) in enumerate(levels):
        wv, tv = _broadcast(fn, "i32", w, wd, "wv"), _broadcast(fn, C, w, th, "tv")
        for v in range(V):
            xp = fn.op("xp", f"getelementptr {C}, ptr %xt, i64 {xoff}")
            x = fn.op("x", f"load {vc}, ptr {fn.op('xp', f'getelementptr {C}, ptr {xp}, i64 {v * w}')}, align 4")
            right = _decide(fn, kc, p, w, x, tv, wv, flags, cats, splat(d, "i32", w), None, aware)
            bit = fn.op("bit", f"shl {vi} {fn.op('rz', f'zext {vb} {right} to {vi}')}, {splat(d, 'i32', w)}")
            idx[v] = fn.op("idx", f"or {vi} {idx[v]}, {bit}")
    size = 2**depth
    for j in range(dim):
        base = fn.op("lj", f"getelementptr {A}, ptr {lp}, i64 {j * size}")
        table = _Window(fn, kc, A, base, 0, size, "lf")
        for v in range(V):
            val = table(idx[v])
            ap = fn.op("ap", f"getelementptr {A}, ptr {accb}, i64 {j * B + v * w}")
            new = fn.op("acc", f"fadd {va} {fn.op('acc', f'load {va}, ptr {ap}, align 4')}, {val}")
            fn.emit(f"store {va} {new}, ptr {ap}, align 4")


def _oblivious_rows(fn, kc: KernelContext, p: EnsemblePlan, depth, dim, aware, flags, cats, levels, lp, accb, L) -> None:
    mod, B, C, A = kc.mod, kc.rows, p.compare, p.acc
    r, r_next = fn.tmp("r"), fn.tmp("r.next")
    fn.emit(f"br label %{L['row']}")
    fn.block(L["row"])
    fn.emit(f"{r} = phi i64 [0, %{L['tree']}], [{r_next}, %{L['row']}]")
    idx = "0"
    for d, (wd, th, xoff) in enumerate(levels):
        x = gather(fn, mod, C, "%xt", fn.op("xo", f"add i64 {xoff}, {r}"), 0, "i64", hint="x")
        right = _decide(fn, kc, p, 0, x, th, wd, flags, cats, str(d), None, aware)
        bit = fn.op("bit", f"shl i32 {fn.op('rz', f'zext i1 {right} to i32')}, {d}")
        idx = fn.op("idx", f"or i32 {idx}, {bit}")
    for j in range(dim):
        val = gather(fn, mod, A, lp, fn.op("lj", f"add i32 {idx}, {j * 2**depth}"), 0, hint="leaf")
        ap = fn.op("ap", f"getelementptr {A}, ptr {accb}, i64 {fn.op('ao', f'add i64 {r}, {j * B}')}")
        old = fn.op("acc", f"load {A}, ptr {ap}")
        fn.emit(f"store {A} {fn.op('acc', f'fadd {A} {old}, {val}')}, ptr {ap}")
    fn.emit(f"{r_next} = add i64 {r}, 1")
    more = fn.op("r.more", f"icmp ult i64 {r_next}, {B}")
    fn.emit(f"br i1 {more}, label %{L['row']}, label %{L['tree_end']}")


def walk_kernel(kc: KernelContext, p: EnsemblePlan, dim: int, aware: bool, flags=(False, False)) -> str:
    """Define (once) the walk kernel for deep numeric trees and return its name.

    Signature: (xt, acc, words, thresholds, left, leaves, roots, outs, cat_start, cat_len,
    cat_words, ntrees).  Every row steps `slot = left[slot] + right` until it reaches a leaf
    (`left < 0`); with SIMD, the block's vectors step together, lanes already at a leaf masked
    off, until all are done; on AVX2 hosts without AVX-512, `WALK_INTERLEAVE` rows at a time
    in scalar code."""
    if kc.rows == 1 and not kc.target.small:
        return _walk_trees_kernel(kc, p, dim, aware, flags)
    interleave = kc.lanes and kc.target.split_gathers and kc.rows % WALK_INTERLEAVE == 0
    shape = f"i{WALK_INTERLEAVE}" if interleave else f"w{kc.lanes}"
    name = f"walk_k{dim}_{_flag_name(aware, flags)}_{p.compare}_{p.acc}_{p.cat_negative}_b{kc.rows}_{shape}{_narrow_suffix(p)}"
    if kc.mod.has(name):
        return name
    loop = _tree_loop(kc, name, WALK_COLUMNS, ("row", "step", "body", "leaves"))
    fn, t, L = loop.fn, loop.t, loop.labels
    root = fn.op("root", f"load i32, ptr {fn.op('rootp', f'getelementptr i32, ptr %R, i64 {t}')}, align 4")
    accb = _out_block(fn, kc, p, t)
    cats = Cats("%CS", "%CL") if flags[1] else None  # the walk's slots index the whole segment's tables
    if interleave:
        _walk_interleaved(fn, kc, p, dim, aware, flags, cats, root, accb, L, WALK_INTERLEAVE)
    elif kc.lanes:
        _walk_vectors(fn, kc, p, dim, aware, flags, cats, root, accb, L)
    else:
        _walk_scalar(fn, kc, p, dim, aware, flags, cats, root, accb, L)
    _end_tree_loop(loop)
    return name


# Trees a one-row walk kernel steps through together (`_walk_trees_kernel`).  Measured on AMD EPYC
# (Zen 3), one process, one row from C, best of 7, microseconds for 1 / 8 / 16 trees at a time:
# lgbcat (1000 trees x 31 leaves, categorical) 213 / 135 / 128; rf100 (scikit-learn, 100 trees of
# depth 20) 63 / 27 / 26; lgb500 walked 69 / 32 / 30 (its bitvector scan in scalar code: 31).
WALK_TREES = 8


def _walk_trees_kernel(kc: KernelContext, p: EnsemblePlan, dim: int, aware: bool, flags) -> str:
    """The walk kernel for one row (B = 1): WALK_TREES trees walked in lockstep, so that their
    chains of dependent loads overlap (one tree at a time, each step waits for the last), their
    leaves then added in tree order (the sums of the one-tree-at-a-time walk, bit for bit); the
    last ntrees % WALK_TREES trees one at a time.  Same signature as `walk_kernel`."""
    K = WALK_TREES
    name = f"walk_k{dim}_{_flag_name(aware, flags)}_{p.compare}_{p.acc}_{p.cat_negative}_b1_t{K}{_narrow_suffix(p)}"
    if kc.mod.has(name):
        return name
    params = [("ptr noalias", "%xt"), ("ptr noalias", "%acc")] + [("ptr", f"%{c}") for c in WALK_COLUMNS] + [("i64", "%ntrees")]
    fn = kc.mod.add(Function(name, "void", params))
    cats = Cats("%CS", "%CL") if flags[1] else None
    nfull = fn.op("nfull", f"and i64 %ntrees, {-K}")
    pre = "entry"
    for group in (K, 1) if K > 1 else (1,):
        L = {k: fn.label(f"g{group}_{k}") for k in ("head", "trees", "step", "body", "leaves", "done")}
        head, body, leaves, done = L["head"], L["trees"], L["leaves"], L["done"]
        t, tn = fn.tmp("t"), fn.tmp("t.next")
        start, end = ("0" if pre == "entry" else nfull), (nfull if group > 1 else "%ntrees")
        fn.emit(f"br label %{head}")
        fn.block(head)
        fn.emit(f"{t} = phi i64 [{start}, %{pre}], [{tn}, %{leaves}]")
        fn.emit(f"br i1 {fn.op('more', f'icmp ult i64 {t}, {end}')}, label %{body}, label %{done}")
        fn.block(body)
        trees = [fn.op("tk", f"add i64 {t}, {k}") if k else t for k in range(group)]
        roots = [fn.op("root", f"sext i32 {gather(fn, None, 'i32', '%R', tk, 0, 'i64', hint='root')} to i64") for tk in trees]
        lefts = _lockstep(fn, kc, p, roots, ["0"] * group, body, L, aware, flags, cats)
        for k in range(group):  # in tree order
            _add_leaf(fn, kc, p, lefts[k], "0", _out_block(fn, kc, p, trees[k]), dim, "i64")
        fn.emit(f"{tn} = add i64 {t}, {group}")
        fn.emit(f"br label %{head}")
        fn.block(done)
        pre = done
    fn.emit("ret void")
    return name


def _walk_vectors(
    fn: Function, kc: KernelContext, p: EnsemblePlan, dim: int, aware: bool, flags, cats, root: str, accb: str, L: dict
) -> None:
    mod, B, w = kc.mod, kc.rows, kc.lanes
    C, A = p.compare, p.acc
    vi, vb, va = vec(w, "i32"), vec(w, "i1"), vec(w, A)
    V = B // w
    rootv = _broadcast(fn, "i32", w, root, "root")
    fn.emit(f"br label %{L['step']}")
    fn.block(L["step"])
    slots = [fn.tmp("slot") for _ in range(V)]
    nexts = [fn.tmp("slot.next") for _ in range(V)]
    for sl, nx in zip(slots, nexts):
        fn.emit(f"{sl} = phi {vi} [{rootv}, %{L['tree']}], [{nx}, %{L['body']}]")
    lefts = [gather(fn, mod, "i32", "%Lf", sl, w, hint="left") for sl in slots]
    acts = [fn.op("act", f"icmp sge {vi} {lf}, zeroinitializer") for lf in lefts]
    anyv = acts[0]
    for a in acts[1:]:
        anyv = fn.op("act.any", f"or {vb} {anyv}, {a}")
    red = f"llvm.vector.reduce.or.v{w}i1"
    mod.declare(red, f"declare i1 {{name}}({vb})")
    going = fn.op("going", f"call i1 @{red}({vb} {anyv})")
    fn.emit(f"br i1 {going}, label %{L['body']}, label %{L['leaves']}")
    fn.block(L["body"])
    for v in range(V):
        wd = gather(fn, mod, "i32", "%W", slots[v], w, mask=acts[v], hint="wd")
        th = gather(fn, mod, C, "%T", slots[v], w, mask=acts[v], hint="th")
        fi = fn.op("fi", f"lshr {vi} {wd}, {splat(FEATURE_SHIFT, 'i32', w)}")
        fo = fn.op("fo", f"mul {vi} {fi}, {splat(B, 'i32', w)}")
        xo = fn.op("xo", f"add {vi} {fo}, {iota(w, 1, v * w)}")
        x = gather(fn, mod, C, "%xt", xo, w, mask=acts[v], hint="x")
        right = _decide(fn, kc, p, w, x, th, wd, flags, cats, slots[v], acts[v], aware)
        ns = fn.op("ns", f"add {vi} {lefts[v]}, {fn.op('rz', f'zext {vb} {right} to {vi}')}")
        fn.emit(f"{nexts[v]} = select {vb} {acts[v]}, {vi} {ns}, {vi} {slots[v]}")
    fn.emit(f"br label %{L['step']}")
    fn.block(L["leaves"])
    for v in range(V):
        li = fn.op("li", f"xor {vi} {lefts[v]}, {splat(-1, 'i32', w)}")
        li = fn.op("li", f"mul {vi} {li}, {splat(dim, 'i32', w)}")
        for j in range(dim):
            lj = li if j == 0 else fn.op("lj", f"add {vi} {li}, {splat(j, 'i32', w)}")
            val = gather(fn, mod, A, "%LV", lj, w, hint="leaf")
            ap = fn.op("ap", f"getelementptr {A}, ptr {accb}, i64 {j * B + v * w}")
            new = fn.op("acc", f"fadd {va} {fn.op('acc', f'load {va}, ptr {ap}, align 4')}, {val}")
            fn.emit(f"store {va} {new}, ptr {ap}, align 4")
    fn.emit(f"br label %{L['tree_end']}")


def _walk_interleaved(
    fn: Function, kc: KernelContext, p: EnsemblePlan, dim: int, aware: bool, flags, cats, root: str, accb: str, L: dict, K: int
) -> None:
    """Scalar code walking K rows of the block through the tree in lockstep: K independent
    chains of loads keep the load ports busy, a row at its leaf keeps its slot (its words
    are valid table entries), and the step loop ends when all K rows are at leaves."""
    B = kc.rows
    g, g_next = fn.tmp("g"), fn.tmp("g.next")
    root64 = fn.op("root64", f"sext i32 {root} to i64")
    fn.emit(f"br label %{L['row']}")
    fn.block(L["row"])
    fn.emit(f"{g} = phi i64 [0, %{L['tree']}], [{g_next}, %{L['leaves']}]")
    rows = [fn.op("r", f"add i64 {g}, {k}") for k in range(K)]
    lefts = _lockstep(fn, kc, p, [root64] * K, rows, L["row"], L, aware, flags, cats)
    for k in range(K):
        _add_leaf(fn, kc, p, lefts[k], fn.op("r", f"add i64 {g}, {k}"), accb, dim, "i64")
    fn.emit(f"{g_next} = add i64 {g}, {K}")
    more = fn.op("g.more", f"icmp ult i64 {g_next}, {B}")
    fn.emit(f"br i1 {more}, label %{L['row']}, label %{L['tree_end']}")


def _lockstep(
    fn: Function, kc: KernelContext, p: EnsemblePlan, starts: list[str], rows: list[str], pre: str, L: dict, aware, flags, cats
) -> list[str]:
    """Walks in lockstep, in scalar code: walk k starts at slot starts[k] (an i64) with block row
    rows[k], coming from block `pre`; it opens L["step"] and L["body"] and ends by branching to
    L["leaves"] once every walk is at a leaf.  A walk at its leaf keeps its slot (its words are
    valid table entries).  Returns each walk's final `left` (-1 - its leaf), an i64."""
    fn.emit(f"br label %{L['step']}")
    fn.block(L["step"])
    slots = [fn.tmp("slot") for _ in starts]
    nexts = [fn.tmp("slot.next") for _ in starts]
    for sl, nx, st in zip(slots, nexts, starts):
        fn.emit(f"{sl} = phi i64 [{st}, %{pre}], [{nx}, %{L['body']}]")
    lefts = [fn.op("left", f"sext i32 {_left(fn, p, sl, 'i64')} to i64") for sl in slots]
    acts = [fn.op("act", f"icmp sge i64 {lf}, 0") for lf in lefts]
    anyv = acts[0]
    for a in acts[1:]:
        anyv = fn.op("act.any", f"or i1 {anyv}, {a}")
    fn.emit(f"br i1 {anyv}, label %{L['body']}, label %{L['leaves']}")
    fn.block(L["body"])
    for sl, nx, lf, act, r in zip(slots, nexts, lefts, acts, rows):
        ns = _walk_step(fn, kc, p, sl, lf, r, aware, flags, cats, "i64")
        fn.emit(f"{nx} = select i1 {act}, i64 {ns}, i64 {sl}")
    fn.emit(f"br label %{L['step']}")
    fn.block(L["leaves"])
    return lefts


def _walk_step(fn: Function, kc: KernelContext, p: EnsemblePlan, slot: str, left: str, r: str, aware: bool, flags, cats, ity: str) -> str:
    """One scalar step of a walk for block row `r` at `slot` (an `ity`): `left + right`."""
    B, C = kc.rows, p.compare
    wd = _word(fn, p, "%W", slot, ity)
    th = gather(fn, kc.mod, C, "%T", slot, 0, ity, hint="th")
    fi = fn.op("fi", f"zext i32 {fn.op('fi', f'lshr i32 {wd}, {FEATURE_SHIFT}')} to i64")
    xo = fn.op("xo", f"add i64 {fn.op('fo', f'mul i64 {fi}, {B}')}, {r}")
    x = gather(fn, kc.mod, C, "%xt", xo, 0, "i64", hint="x")
    s32 = fn.op("slot32", f"trunc i64 {slot} to i32") if cats and ity == "i64" else slot
    right = _decide(fn, kc, p, 0, x, th, wd, flags, cats, s32, None, aware)
    return fn.op("ns", f"add {ity} {left}, {fn.op('rz', f'zext i1 {right} to {ity}')}")


def _add_leaf(fn: Function, kc: KernelContext, p: EnsemblePlan, left: str, r: str, accb: str, dim: int, ity: str) -> None:
    """acc[j][r] += leaves[-1 - left][j]: the leaf a scalar walk of block row `r` reached."""
    A = p.acc
    li = fn.op("li", f"xor {ity} {left}, -1")
    li = fn.op("li", f"trunc i64 {li} to i32") if ity == "i64" else li
    li = fn.op("li", f"mul i32 {li}, {dim}")
    for j in range(dim):
        val = gather(fn, kc.mod, A, "%LV", fn.op("lj", f"add i32 {li}, {j}"), 0, hint="leaf")
        ap = fn.op("ap", f"getelementptr {A}, ptr {accb}, i64 {fn.op('ao', f'add i64 {r}, {j * kc.rows}')}")
        old = fn.op("acc", f"load {A}, ptr {ap}")
        fn.emit(f"store {A} {fn.op('acc', f'fadd {A} {old}, {val}')}, ptr {ap}")


def _walk_scalar(
    fn: Function, kc: KernelContext, p: EnsemblePlan, dim: int, aware: bool, flags, cats, root: str, accb: str, L: dict
) -> None:
    B = kc.rows
    r, r_next, slot, nxt = fn.tmp("r"), fn.tmp("r.next"), fn.tmp("slot"), fn.tmp("next")
    fn.emit(f"br label %{L['row']}")
    fn.block(L["row"])
    fn.emit(f"{r} = phi i64 [0, %{L['tree']}], [{r_next}, %{L['leaves']}]")
    fn.emit(f"br label %{L['step']}")
    fn.block(L["step"])
    fn.emit(f"{slot} = phi i32 [{root}, %{L['row']}], [{nxt}, %{L['body']}]")
    left = _left(fn, p, slot)
    act = fn.op("act", f"icmp sge i32 {left}, 0")
    fn.emit(f"br i1 {act}, label %{L['body']}, label %{L['leaves']}")
    fn.block(L["body"])
    fn.emit(f"{nxt} = add i32 {_walk_step(fn, kc, p, slot, left, r, aware, flags, cats, 'i32')}, 0")
    fn.emit(f"br label %{L['step']}")
    fn.block(L["leaves"])
    _add_leaf(fn, kc, p, left, r, accb, dim, "i32")
    fn.emit(f"{r_next} = add i64 {r}, 1")
    more = fn.op("r.more", f"icmp ult i64 {r_next}, {B}")
    fn.emit(f"br i1 {more}, label %{L['row']}, label %{L['tree_end']}")


BITVECTOR_COLUMNS = ("FS", "T", "M", "TI", "NS", "NM", "NTI", "LV", "O")  # see `bitvector_kernel`
# Vectors of rows the bitvector kernel runs together (see `bitvector_kernel`)
BITVECTOR_VECTORS = 4


def bitvector_stride(target: TargetInfo, compare: str) -> int:
    """Rows of a bitvector group in batches: BITVECTOR_VECTORS vectors of the compare type
    (8 doubles or 16 floats on AVX2), or 1 on scalar targets.  The tree offsets in the tables
    (`tree_of`) are multiples of it, for every block size's kernel."""
    if target.lanes <= 1:
        return 1
    return BITVECTOR_VECTORS * max(target.lanes * 4 // (8 if compare == "double" else 4), 1)


def bitvector_kernel(kc: KernelContext, p: EnsemblePlan, aware: bool) -> str:
    """Define (once) the bitvector (QuickScorer) kernel and return its name (see
    `plan.BitvectorSegment` for the tables).

    Signature: (xt, acc, fstart, thresholds, masks, tree_of, nstart, nmasks, ntree_of, leaves,
    outs, ntrees).  The rows of a group (`bitvector_stride` rows, or one at a time when the
    block is not a multiple of it) start with every tree's bitvector all ones; for each
    feature, the splits of its list are scanned while some row's value is >= t', each
    clearing the bits of its A subtree's leaves (`masks`: the bits it keeps) in the rows it sends right; in
    the aware variant a feature holding a NaN also applies its NaN list to those rows.  Then
    each tree's leaf is the lowest set bit, added to its output in tree order (as every kernel
    adds them), and the bitvector is reset for the next group.  A split costs a broadcast
    compare, one predictable branch and a read-modify-write of an L1 line, with no dependent
    loads; the row groups amortise the table reads over 16 doubles (BITVECTOR_VECTORS).
    Measurements: `plan._bitvector_segments`."""
    B, C, A = kc.rows, p.compare, p.acc
    S = bitvector_stride(kc.target, C)
    G = S if B % S == 0 else 1
    w = G // BITVECTOR_VECTORS if G > 1 else 0  # lanes of a vector (0: scalar code)
    V = BITVECTOR_VECTORS if G > 1 else 1
    F = p.n_features
    name = f"bitvector_{'aware' if aware else 'plain'}_{C}_{A}_f{F}_b{B}_g{G}_s{S}"
    if kc.mod.has(name):
        return name
    mod = kc.mod
    params = [("ptr noalias", "%xt"), ("ptr noalias", "%acc")] + [("ptr", f"%{c}") for c in BITVECTOR_COLUMNS] + [("i64", "%ntrees")]
    fn = mod.add(Function(name, "void", params))
    vc, vb, vi = vec(w, C), vec(w, "i1"), vec(w, "i64")
    ones = splat(-1, "i64", w)
    bits = fn.alloca("bits", "i64", BITVECTOR_TREES * S)
    L = {k: fn.label(k) for k in ("init", "group", "feat", "scan", "feat_end", "leaf", "group_end", "exit")}
    if aware:
        L.update({k: fn.label(k) for k in ("nan", "nan_scan")})

    def masks_of(cs: list[str]) -> tuple[list[str], str]:
        """The rows' decisions as all-ones / zero i64 lanes, and whether any is set.  (The i64
        form crosses into the next block: an i1 vector there is packed and unpacked again.)"""
        ms = [fn.op("cm", f"sext {vb} {c} to {vi}") for c in cs]
        u = ms[0]
        for o in ms[1:]:
            u = fn.op("any", f"or {vi} {u}, {o}")
        if w:
            red = f"llvm.vector.reduce.or.v{w}i64"
            mod.declare(red, f"declare i64 {{name}}({vi})")
            u = fn.op("any", f"call i64 @{red}({vi} {u})")
        return ms, fn.op("any", f"icmp ne i64 {u}, 0")

    def bits_ptr(off: str, lane: int) -> str:
        """&bits[off + lane] (an i64 offset and a constant lane)."""
        return fn.op("bp", f"getelementptr i64, ptr {bits}, i64 {fn.op('bo', f'add i64 {off}, {lane}') if lane else off}")

    def clear(ms: list[str], mptr: str, tptr: str, k: str) -> None:
        """bits[tree_of[k]] &= masks[k] (the bits it keeps) in the rows set in `ms`."""
        m = gather(fn, None, "i64", mptr, k, 0, "i64", hint="m")
        mv = _broadcast(fn, "i64", w, m, "mv") if w else m
        off = fn.op("tr", f"sext i32 {gather(fn, None, 'i32', tptr, k, 0, 'i64', hint='tr')} to i64")
        for v, cm in enumerate(ms):
            keep = fn.op("keep", f"or {vi} {fn.op('pass', f'xor {vi} {cm}, {ones}')}, {mv}")
            bp = bits_ptr(off, v * w)
            old = fn.op("old", f"load {vi}, ptr {bp}, align 8")
            fn.emit(f"store {vi} {fn.op('new', f'and {vi} {old}, {keep}')}, ptr {bp}, align 8")

    # every tree's bitvector: all ones
    t0, t0n = fn.tmp("it"), fn.tmp("it.next")
    fn.emit(f"br label %{L['init']}")
    fn.block(L["init"])
    fn.emit(f"{t0} = phi i64 [0, %entry], [{t0n}, %{L['init']}]")
    for v in range(V):
        fn.emit(f"store {vi} {ones}, ptr {bits_ptr(fn.op('to', f'mul i64 {t0}, {S}'), v * w)}, align 8")
    fn.emit(f"{t0n} = add i64 {t0}, 1")
    fn.emit(f"br i1 {fn.op('more', f'icmp ult i64 {t0n}, %ntrees')}, label %{L['init']}, label %{L['group']}")
    # the rows g .. g + G - 1
    g, gn = fn.tmp("g"), fn.tmp("g.next")
    fn.block(L["group"])
    fn.emit(f"{g} = phi i64 [0, %{L['init']}], [{gn}, %{L['group_end']}]")
    fn.emit(f"br label %{L['feat']}")
    f, fnext = fn.tmp("f"), fn.tmp("f.next")
    fn.block(L["feat"])
    fn.emit(f"{f} = phi i64 [0, %{L['group']}], [{fnext}, %{L['feat_end']}]")
    xo = fn.op("xo", f"add i64 {fn.op('fo', f'mul i64 {f}, {B}')}, {g}")
    xp = fn.op("xp", f"getelementptr {C}, ptr %xt, i64 {xo}")
    xs = [fn.op("x", f"load {vc}, ptr {fn.op('xp', f'getelementptr {C}, ptr {xp}, i64 {v * w}') if v else xp}, align 4") for v in range(V)]
    k0 = fn.op("k0", f"sext i32 {gather(fn, None, 'i32', '%FS', f, 0, 'i64', hint='fs')} to i64")
    fn.emit(f"br label %{L['scan']}")
    # the scan: splits in ascending t' while some row's value is >= t' (the sentinel stops it).
    # Each step clears first and tests after: the split that ends the scan sends no row right
    # (its clear changes nothing), and the decisions never cross a block (an i1 vector that
    # does is packed and unpacked again on x86).
    k, kn = fn.tmp("k"), fn.tmp("k.next")
    fn.block(L["scan"])
    fn.emit(f"{k} = phi i64 [{k0}, %{L['feat']}], [{kn}, %{L['scan']}]")
    th = gather(fn, None, C, "%T", k, 0, "i64", hint="th")
    thv = _broadcast(fn, C, w, th, "thv") if w else th
    ms, hit = masks_of([fn.op("right", f"fcmp oge {vc} {x}, {thv}") for x in xs])
    clear(ms, "%M", "%TI", k)
    fn.emit(f"{kn} = add i64 {k}, 1")
    fn.emit(f"br i1 {hit}, label %{L['scan']}, label %{L['nan'] if aware else L['feat_end']}")
    if aware:
        # rows whose value is NaN go right at the splits of the feature's NaN list
        fn.block(L["nan"])
        miss, anymiss = masks_of([fn.op("miss", f"fcmp uno {vc} {x}, {x}") for x in xs])
        n0 = fn.op("n0", f"sext i32 {gather(fn, None, 'i32', '%NS', f, 0, 'i64', hint='ns')} to i64")
        n1 = fn.op("n1", f"sext i32 {gather(fn, None, 'i32', '%NS', fn.op('f1', f'add i64 {f}, 1'), 0, 'i64', hint='ns')} to i64")
        has = fn.op("has", f"and i1 {anymiss}, {fn.op('nonempty', f'icmp ult i64 {n0}, {n1}')}")
        fn.emit(f"br i1 {has}, label %{L['nan_scan']}, label %{L['feat_end']}")
        j, jn = fn.tmp("j"), fn.tmp("j.next")
        fn.block(L["nan_scan"])
        fn.emit(f"{j} = phi i64 [{n0}, %{L['nan']}], [{jn}, %{L['nan_scan']}]")
        clear(miss, "%NM", "%NTI", j)
        fn.emit(f"{jn} = add i64 {j}, 1")
        fn.emit(f"br i1 {fn.op('more', f'icmp ult i64 {jn}, {n1}')}, label %{L['nan_scan']}, label %{L['feat_end']}")
    fn.block(L["feat_end"])
    fn.emit(f"{fnext} = add i64 {f}, 1")
    fn.emit(f"br i1 {fn.op('more', f'icmp ult i64 {fnext}, {F}')}, label %{L['feat']}, label %{L['leaf']}")
    # each tree's leaf: the lowest set bit; added in tree order, then the bitvector reset
    t, tn = fn.tmp("t"), fn.tmp("t.next")
    fn.block(L["leaf"])
    fn.emit(f"{t} = phi i64 [0, %{L['feat_end']}], [{tn}, %{L['leaf']}]")
    base = fn.op("lbase", f"mul i64 {t}, {BITVECTOR_LEAVES}")
    o = fn.op("o", f"sext i32 {gather(fn, None, 'i32', '%O', t, 0, 'i64', hint='out')} to i64")
    ao = fn.op("ao", f"add i64 {fn.op('ob', f'mul i64 {o}, {B}')}, {g}")
    cttz = "llvm.cttz.i64"
    mod.declare(cttz, "declare i64 {name}(i64, i1)")
    va = vec(w, A)
    toff = fn.op("to", f"mul i64 {t}, {S}")
    for v in range(V):
        # per row: its bits, their lowest set bit, that leaf (scalar loads: bit scans are scalar)
        val = "poison" if w else None
        for lane in range(max(w, 1)):
            bp = bits_ptr(toff, v * w + lane)
            idx = fn.op("lidx", f"call i64 @{cttz}(i64 {fn.op('bv', f'load i64, ptr {bp}, align 8')}, i1 true)")
            leaf = gather(fn, None, A, "%LV", fn.op("li", f"add i64 {idx}, {base}"), 0, "i64", hint="leaf")
            val = fn.op("leafv", f"insertelement {va} {val}, {A} {leaf}, i64 {lane}") if w else leaf
        ap = fn.op("ap", f"getelementptr {A}, ptr %acc, i64 {fn.op('av', f'add i64 {ao}, {v * w}') if v else ao}")
        old = fn.op("acc", f"load {va}, ptr {ap}, align 4")
        fn.emit(f"store {va} {fn.op('acc', f'fadd {va} {old}, {val}')}, ptr {ap}, align 4")
        fn.emit(f"store {vi} {ones}, ptr {bits_ptr(toff, v * w)}, align 8")
    fn.emit(f"{tn} = add i64 {t}, 1")
    fn.emit(f"br i1 {fn.op('more', f'icmp ult i64 {tn}, %ntrees')}, label %{L['leaf']}, label %{L['group_end']}")
    fn.block(L["group_end"])
    fn.emit(f"{gn} = add i64 {g}, {G}")
    fn.emit(f"br i1 {fn.op('more', f'icmp ult i64 {gn}, {B}')}, label %{L['group']}, label %{L['exit']}")
    fn.block(L["exit"])
    fn.emit("ret void")
    return name


def general_kernel(kc: KernelContext, p: EnsemblePlan, dim: int, linear: bool, in_type: str) -> str:
    """Define (once) the node-table kernel and return its name.

    Scalar, one row at a time, the op semantics written out literally: missing handling per
    kind, the six ordered compares, categorical membership in double, linear leaves.
    Signature: (xt, xr, acc, <columns of `node_columns(linear)`>, ntrees); `xr` is the block of
    raw input values (linear leaves read those, converted to the leaf type)."""
    name = f"nodes_k{dim}_{'lin' if linear else 'const'}_{p.compare}_{p.leaf}_{p.acc}_{in_type}_{p.cat_negative}_b{kc.rows}"
    if kc.mod.has(name):
        return name
    mod, B = kc.mod, kc.rows
    C, A, Lt = p.compare, p.acc, p.leaf
    loop = _tree_loop(kc, name, node_columns(linear), ("row", "node", "split", "cat", "step", "leaf", "leaf_done"), ("xt", "xr", "acc"))
    fn, t, L = loop.fn, loop.t, loop.labels
    r, r_next = fn.tmp("r"), fn.tmp("r.next")
    n, nxt, c_all, c_cat, missing = fn.tmp("n"), fn.tmp("next"), fn.tmp("c"), fn.tmp("c.cat"), fn.tmp("missing")

    def load(ty: str, col: str, i: str, hint: str, ity: str = "i32") -> str:
        ptr = fn.op(hint + "p", f"getelementptr {ty}, ptr %{col}, {ity} {i}")
        return fn.op(hint, f"load {ty}, ptr {ptr}")

    root = load("i32", "root", t, "root", "i64")
    o = load("i32", "out", t, "o", "i64")
    o64 = fn.op("o64", f"sext i32 {o} to i64")
    fn.emit(f"br label %{L['row']}")
    fn.block(L["row"])
    fn.emit(f"{r} = phi i64 [0, %{L['tree']}], [{r_next}, %{L['leaf_done']}]")
    fn.emit(f"br label %{L['node']}")
    fn.block(L["node"])
    fn.emit(f"{n} = phi i32 [{root}, %{L['row']}], [{nxt}, %{L['step']}]")
    pr = load("i8", "pred", n, "pred")
    is_leaf = fn.op("is.leaf", f"icmp eq i8 {pr}, {int(Pred.LEAF)}")
    fn.emit(f"br i1 {is_leaf}, label %{L['leaf']}, label %{L['split']}")

    fn.block(L["split"])
    f = load("i32", "feature", n, "f")
    f64 = fn.op("f64", f"zext i32 {f} to i64")
    fo = fn.op("fo", f"mul i64 {f64}, {B}")
    xo = fn.op("xo", f"add i64 {fo}, {r}")
    v = load(C, "xt", xo, "v", "i64")
    m = load("i8", "missing", n, "m")
    th = load(C, "threshold", n, "th")
    isnan = fn.op("isnan", f"fcmp uno {C} {v}, {v}")
    # nan-as-zero: NaN becomes 0.0 before the compare
    as_zero = fn.op("as.zero", f"icmp eq i8 {m}, {int(Missing.NAN_AS_ZERO)}")
    z = fn.op("z", f"and i1 {isnan}, {as_zero}")
    v2 = fn.op("v2", f"select i1 {z}, {C} {const(0.0, C)}, {C} {v}")
    # nan / zero: the value is missing and takes the default child
    fabs = declare_unary(mod, "fabs", C, 0)
    av = fn.op("av", f"call {C} @{fabs}({C} {v})")
    small = fn.op("small", f"fcmp ole {C} {av}, {const(ZERO_THRESHOLD, C)}")
    nan_or_small = fn.op("nan.or.small", f"or i1 {isnan}, {small}")
    k_nan = fn.op("k.nan", f"icmp eq i8 {m}, {int(Missing.NAN)}")
    k_zero = fn.op("k.zero", f"icmp eq i8 {m}, {int(Missing.ZERO)}")
    m_nan = fn.op("m.nan", f"and i1 {k_nan}, {isnan}")
    m_zero = fn.op("m.zero", f"and i1 {k_zero}, {nan_or_small}")
    fn.emit(f"{missing} = or i1 {m_nan}, {m_zero}")
    c = "false"
    # ne is C's `!=` (true when v is NaN), as the interpreter defines it; the others are ordered
    for pk, pred in ((Pred.LT, "olt"), (Pred.LE, "ole"), (Pred.GT, "ogt"), (Pred.GE, "oge"), (Pred.EQ, "oeq"), (Pred.NE, "une")):
        cv = fn.op(pred, f"fcmp {pred} {C} {v2}, {th}")
        is_p = fn.op("is", f"icmp eq i8 {pr}, {int(pk)}")
        c = fn.op("sel", f"select i1 {is_p}, i1 {cv}, i1 {c}")
    is_cat = fn.op("is.cat", f"icmp eq i8 {pr}, {int(Pred.IN)}")
    fn.emit(f"br i1 {is_cat}, label %{L['cat']}, label %{L['step']}")

    fn.block(L["cat"])
    _category_test(fn, mod, p, C, v2, n, load, c_cat)
    fn.emit(f"br label %{L['step']}")

    fn.block(L["step"])
    fn.emit(f"{c_all} = phi i1 [{c}, %{L['split']}], [{c_cat}, %{L['cat']}]")
    y, no_, d = load("i32", "yes", n, "y"), load("i32", "no", n, "no"), load("i32", "default", n, "d")
    yn = fn.op("yn", f"select i1 {c_all}, i32 {y}, i32 {no_}")
    fn.emit(f"{nxt} = select i1 {missing}, i32 {d}, i32 {yn}")
    fn.emit(f"br label %{L['node']}")

    fn.block(L["leaf"])
    if linear:
        vals = [_linear_leaf(fn, p, in_type, B, n, r, load, L["leaf"])]
    else:
        base = fn.op("lbase", f"mul i32 {n}, {dim}")
        vals = [load(Lt, "leaf", fn.op("lj", f"add i32 {base}, {j}"), "lv") for j in range(dim)]
    for j, val in enumerate(vals):
        if Lt != A:
            val = fn.op("lc", f"{'fpext' if A == 'double' else 'fptrunc'} {Lt} {val} to {A}")
        k = fn.op("k", f"add i64 {o64}, {j}")
        kb = fn.op("kb", f"mul i64 {k}, {B}")
        ai = fn.op("ai", f"add i64 {kb}, {r}")
        ap = fn.op("ap", f"getelementptr {A}, ptr %acc, i64 {ai}")
        old = fn.op("acc", f"load {A}, ptr {ap}")
        new = fn.op("acc", f"fadd {A} {old}, {val}")
        fn.emit(f"store {A} {new}, ptr {ap}")
    fn.emit(f"br label %{L['leaf_done']}")
    fn.block(L["leaf_done"])
    fn.emit(f"{r_next} = add i64 {r}, 1")
    rm = fn.op("r.more", f"icmp ult i64 {r_next}, {B}")
    fn.emit(f"br i1 {rm}, label %{L['row']}, label %{L['tree_end']}")
    _end_tree_loop(loop)
    return name


def node_columns(linear: bool) -> list[str]:
    """The table columns the node-table kernel takes, in parameter order."""
    cols = ["feature", "pred", "missing", "threshold", "yes", "no", "default", "cat_start", "cat_len", "words", "leaf", "root", "out"]
    return cols + (["lin_const", "lin_start", "lin_len", "lin_feature", "lin_coeff"] if linear else [])


def _category_test(fn: Function, mod: Module, p: EnsemblePlan, C: str, v: str, n: str, load, result: str) -> None:
    """`result` = v's category is in node n's set (see the tree dialect: computed in double;
    ±inf, negative and >= 2^31 are invalid and never in the set)."""
    vd = v if C == "double" else fn.op("vd", f"fpext float {v} to double")
    if p.cat_negative == "value":
        neg = fn.op("neg", f"fcmp olt double {vd}, {const(0.0, 'double')}")
    else:
        neg = fn.op("neg", f"fcmp ole double {vd}, {const(-1.0, 'double')}")  # trunc(v) < 0, without libm's trunc
    fabs = declare_unary(mod, "fabs", "double", 0)
    ad = fn.op("ad", f"call double @{fabs}(double {vd})")
    finite = fn.op("finite", f"fcmp one double {ad}, {const(float('inf'), 'double')}")
    below = fn.op("below", f"fcmp olt double {vd}, {const(float(CAT_LIMIT), 'double')}")
    nonneg = fn.op("nonneg", f"xor i1 {neg}, true")
    valid = fn.op("valid", f"and i1 {finite}, {nonneg}")
    valid = fn.op("valid", f"and i1 {valid}, {below}")
    safe = fn.op("safe", f"select i1 {valid}, double {vd}, double {const(0.0, 'double')}")
    code = fn.op("code", f"fptosi double {safe} to i64")
    clen = fn.op("clen", f"zext i32 {load('i32', 'cat_len', n, 'cl')} to i64")
    cap = fn.op("cap", f"shl i64 {clen}, 5")
    within = fn.op("within", f"icmp slt i64 {code}, {cap}")
    inside = fn.op("inside", f"and i1 {valid}, {within}")
    cs = fn.op("cs", f"zext i32 {load('i32', 'cat_start', n, 'cst')} to i64")
    wq = fn.op("wq", f"lshr i64 {code}, 5")
    wi = fn.op("wi", f"add i64 {cs}, {wq}")
    wi = fn.op("wi", f"select i1 {inside}, i64 {wi}, i64 0")  # word 0 always exists
    word = load("i32", "words", wi, "word", "i64")
    sh = fn.op("sh", f"and i64 {code}, 31")
    sh = fn.op("sh", f"trunc i64 {sh} to i32")
    bits = fn.op("bits", f"lshr i32 {word}, {sh}")
    bit = fn.op("bit", f"trunc i32 {bits} to i1")
    fn.emit(f"{result} = and i1 {inside}, {bit}")


def _linear_leaf(fn: Function, p: EnsemblePlan, in_type: str, B: int, n: str, r: str, load, leaf_l: str) -> str:
    """Leaf n's linear model on row r (in the leaf type), or its plain value if a term's x is NaN."""
    Lt = p.leaf
    head, body, done = fn.label("lin_head"), fn.label("lin_body"), fn.label("lin_done")
    lc = load(Lt, "lin_const", n, "lc")
    ls = load("i32", "lin_start", n, "ls")
    ll = load("i32", "lin_len", n, "ll")
    lend = fn.op("lend", f"add i32 {ls}, {ll}")
    i, i_next, a, a_next, nan, nan_next = (fn.tmp(h) for h in ("li", "li.next", "la", "la.next", "lnan", "lnan.next"))
    fn.emit(f"br label %{head}")
    fn.block(head)
    fn.emit(f"{i} = phi i32 [{ls}, %{leaf_l}], [{i_next}, %{body}]")
    fn.emit(f"{a} = phi {Lt} [{lc}, %{leaf_l}], [{a_next}, %{body}]")
    fn.emit(f"{nan} = phi i1 [false, %{leaf_l}], [{nan_next}, %{body}]")
    more = fn.op("lmore", f"icmp slt i32 {i}, {lend}")
    fn.emit(f"br i1 {more}, label %{body}, label %{done}")
    fn.block(body)
    f = fn.op("lf64", f"zext i32 {load('i32', 'lin_feature', i, 'lf')} to i64")
    fo = fn.op("lfo", f"mul i64 {f}, {B}")
    xo = fn.op("lxo", f"add i64 {fo}, {r}")
    xv = load(in_type, "xr", xo, "lx", "i64")
    if in_type != Lt:
        xv = fn.op("lxc", f"{'fpext' if Lt == 'double' else 'fptrunc'} {in_type} {xv} to {Lt}")
    isn = fn.op("lisn", f"fcmp uno {Lt} {xv}, {xv}")
    fn.emit(f"{nan_next} = or i1 {nan}, {isn}")
    cf = load(Lt, "lin_coeff", i, "lcf")
    term = fn.op("lterm", f"fmul {Lt} {cf}, {xv}")
    fn.emit(f"{a_next} = fadd {Lt} {a}, {term}")
    fn.emit(f"{i_next} = add i32 {i}, 1")
    fn.emit(f"br label %{head}")
    fn.block(done)
    plain = load(Lt, "leaf", n, "lplain")
    return fn.op("lval", f"select i1 {nan}, {Lt} {plain}, {Lt} {a}")


# ----- branch code ---------------------------------------------------------------------------

WEIGHT_MAX = 2**31 - 1  # branch weights are written as i32


def branch_weights(mod: Module, hot: int, cold: int) -> str:
    """The `, !prof !N` suffix of a branch whose true edge `hot` rows took and false edge `cold`
    rows (scaled into i32 range keeping the ratio), or "" when no row got there; `!N` is
    `!{!"branch_weights", i32 hot, i32 cold}`."""
    if hot + cold == 0:
        return ""
    top = max(hot, cold)
    if top > WEIGHT_MAX:
        hot, cold = (0 if v == 0 else max(1, v * WEIGHT_MAX // top) for v in (hot, cold))
    return ", !prof " + mod.metadata(f'!{{!"branch_weights", i32 {hot}, i32 {cold}}}')


def branch_kernels(kc: KernelContext, p: EnsemblePlan, s: BranchSegment, tag: str) -> list[str]:
    """Define the branch code of one segment and return its functions, to be called in order.

    Each function runs the whole trees of one of the segment's chunks (lleaves met minutes of
    optimisation on one huge function; here 512 to 16384 nodes per function compiled lgb500
    equally fast) on each row of the block in turn: per row the sums it touches are loaded
    once, each tree adds its leaf value in tree order (the same additions as the table
    kernels, so the same bits), and they are stored back.

    Signature: (xt, acc, thresholds, leaves, words): the segment's t' per node, its leaf values
    per node (`dim` each) and the words of its category sets (NULL without `in` splits).
    Thresholds and leaves are read from those tables rather than written as constants: the
    JIT's large code model loads every constant through a 10-byte `movabs` of its address,
    which doubles the code of a node.  (A set's first word and length are constants.)"""
    names = []
    for lo, hi in s.chunks:
        name = f"{tag}_c{len(names)}_{p.compare}_{p.acc}_b{kc.rows}"
        names.append(name)
        if not kc.mod.has(name):
            _branch_function(kc, p, s, name, range(lo, hi))
    return names


def _branch_function(kc: KernelContext, p: EnsemblePlan, s: BranchSegment, name: str, trees: range) -> None:
    mod, B, A = kc.mod, kc.rows, p.acc
    params = [("ptr noalias", "%xt"), ("ptr noalias", "%acc"), ("ptr", "%T"), ("ptr", "%LV"), ("ptr", "%WD")]
    # out of line, so that the tables stay arguments (see `Module.keep_opaque`)
    fn = mod.add(Function(name, "void", params, attrs="nounwind noinline"))
    mod.keep_opaque(name)  # interprocedural constant propagation would turn the table loads back into constants
    tables = ("%T", "%LV")
    cats = Cats("", "", "%WD")  # start and length: constants (see `_in_set`'s span)
    outs = sorted({int(s.outs[t]) + j for t in trees for j in range(s.dim)})
    r, xrow = "0", "%xt"
    if B > 1:
        row_l, r_next = fn.label("row"), fn.tmp("r.next")
        r = fn.tmp("r")
        fn.emit(f"br label %{row_l}")
        fn.block(row_l)
        row_phi = len(fn.lines)
        fn.emit("")  # the back edge comes from the last tree's block: filled in below
        xrow = fn.op("xrow", f"getelementptr {p.compare}, ptr %xt, i64 {r}")
    acc_ptr, acc = {}, {}
    for k in outs:
        off = str(k) if B == 1 else fn.op("ai", f"add i64 {r}, {k * B}")
        acc_ptr[k] = fn.op("ap", f"getelementptr {A}, ptr %acc, i64 {off}")
        acc[k] = fn.op("acc", f"load {A}, ptr {acc_ptr[k]}")
    for t in trees:
        _branch_tree(fn, kc, p, s, t, xrow, tables, acc, cats)
    for k in outs:
        fn.emit(f"store {A} {acc[k]}, ptr {acc_ptr[k]}")
    if B > 1:
        fn.lines[row_phi] = f"  {r} = phi i64 [0, %entry], [{r_next}, %{fn.current_block()}]"
        fn.emit(f"{r_next} = add i64 {r}, 1")
        more = fn.op("r.more", f"icmp ult i64 {r_next}, {B}")
        exit_l = fn.label("exit")
        fn.emit(f"br i1 {more}, label %{row_l}, label %{exit_l}")
        fn.block(exit_l)
    fn.emit("ret void")


def _branch_tree(fn: Function, kc: KernelContext, p: EnsemblePlan, s: BranchSegment, t: int, xrow: str, tables, acc: dict, cats) -> None:
    """Tree t of the segment as blocks, hot child first (the fall-through), then its leaf's
    values added to the sums.  A phi picks the leaf: a leaf child is an edge straight to the
    tree's end block, except the cold one of two leaf children, which needs a block of its own
    (a phi takes one value per predecessor)."""
    C, A, B = p.compare, p.acc, kc.rows
    thr, lv = tables
    root, o = int(s.roots[t]), int(s.outs[t])
    leaf = str(root * s.dim)
    if s.split[root]:
        last = int(s.roots[t + 1]) if t + 1 < len(s.roots) else s.n_nodes
        label = {u: fn.label(f"t{t}.n{u - root}") for u in range(root, last) if s.split[u]}
        end = fn.label(f"t{t}.end")
        fn.emit(f"br label %{label[root]}")
        # the row values already loaded on the path to a node (they dominate it): each feature
        # is loaded once per path, which spares GVN a search through every block above
        leaves, stack = [], [(root, {})]
        while stack:
            u, loaded = stack.pop()
            fn.block(label[u])
            f = int(s.feature[u])
            x = loaded.get(f)
            if x is None:
                x = fn.op("x", f"load {C}, ptr {fn.op('xp', f'getelementptr {C}, ptr {xrow}, i64 {f * B}')}")
                loaded = {**loaded, f: x}
            hot, cold = int(s.hot[u]), int(s.cold[u])
            cond = _branch_cond(fn, kc, p, s, u, x, thr, cats, hot == s.b[u])
            targets = []
            for child in (hot, cold):
                if s.split[child]:
                    targets.append(label[child])
                elif child == cold and not s.split[hot]:
                    targets.append(fn.label(f"t{t}.n{child - root}"))
                else:
                    targets.append(end)
                    leaves.append(f"[{child * s.dim}, %{label[u]}]")
            prof = branch_weights(kc.mod, int(s.hits[hot]), int(s.hits[cold]))
            fn.emit(f"br i1 {cond}, label %{targets[0]}, label %{targets[1]}{prof}")
            if not s.split[cold] and not s.split[hot]:
                fn.block(targets[1])
                leaves.append(f"[{cold * s.dim}, %{targets[1]}]")
                fn.emit(f"br label %{end}")
            stack += [(c, loaded) for c in (cold, hot) if s.split[c]]
        fn.block(end)
        leaf = fn.op("leaf", f"phi i64 {', '.join(leaves)}")
    for j in range(s.dim):
        lj = leaf if j == 0 else fn.op("lj", f"add i64 {leaf}, {j}")
        v = fn.op("lv", f"load {A}, ptr {fn.op('lvp', f'getelementptr {A}, ptr {lv}, i64 {lj}')}")
        acc[o + j] = fn.op("acc", f"fadd {A} {acc[o + j]}, {v}")


_NOT = {"oge": "ult", "uge": "olt", "oeq": "une", "ueq": "one"}  # !(a P b) for each compare the nodes use


def _branch_cond(
    fn: Function, kc: KernelContext, p: EnsemblePlan, s: BranchSegment, u: int, x: str, thr: str, cats, want_right: bool
) -> str:
    """`right` at node u (its negation unless `want_right`), u's canonical fields known here:
    the rule of `_decide` and `_aware_right` with the node word folded in.  A missing value goes
    right iff nr: an unordered compare is true on NaN, an ordered one false; `in` is false on NaN."""
    C = p.compare
    nr, zk, kind, tp = bool(s.nr[u]), bool(s.zk[u]), int(s.kind[u]), s.thresholds[u]
    negated = False
    if kind == KIND_IN:
        cond = _in_set(fn, kc, p, 0, x, cats, str(u), "true", span=(s.cats["start"][u], s.cats["len"][u]))
        if nr:
            cond = fn.op("right", f"or i1 {fn.op('miss', f'fcmp uno {C} {x}, {x}')}, {cond}")
    elif np.isnan(tp):  # t' = NaN: no value is right of it (`le +inf`); only a missing one may go right
        cond = fn.op("miss", f"fcmp uno {C} {x}, {x}") if nr else "false"
    else:
        pred = ("u" if nr else "o") + ("ge" if kind == KIND_GE else "eq")
        if not (want_right or zk):
            pred, negated = _NOT[pred], True  # the negation as one compare
        th = fn.op("th", f"load {C}, ptr {fn.op('thp', f'getelementptr {C}, ptr {thr}, i64 {u}')}")
        cond = fn.op("left" if negated else "right", f"fcmp {pred} {C} {x}, {th}")
    if zk:
        # |v| <= 1e-35 counts as missing here, like NaN
        fabs = declare_unary(kc.mod, "fabs", C, 0)
        small = fn.op("small", f"fcmp ole {C} {fn.op('ax', f'call {C} @{fabs}({C} {x})')}, {const(ZERO_THRESHOLD, C)}")
        cond = fn.op("right", f"select i1 {small}, i1 {const(nr, 'i1')}, i1 {cond}")
    return cond if want_right or negated else fn.op("left", f"xor i1 {cond}, true")
