"""The LLVM back-end against the IR interpreter, bit for bit.

Hand-built modules cover every op and every split semantic; each is compiled for the host and
for restricted targets (AVX2 permutes, gathers only, scalar code) so that every kernel variant
runs on this machine.  Rows come from `tests/rows.py` (thresholds and their neighbours, NaN,
±inf, ±0, ±1e-35, category edge cases) plus values chosen per test.
"""

from __future__ import annotations

import dataclasses
import re

import numpy as np
import pytest

from backends.llvm import plan
from backends.llvm.jit import compile_lowered
from backends.llvm.lower import lower_module
from backends.llvm.target import TargetInfo, host_target
from ir.dialects import builtin, func, tree
from ir.dialects.tree import Missing, NodeTable, ObliviousTable, Pred, bitset_from_members
from ir.interpreter import run as interpret
from ir.types import f32, f64, tensor
from ir.verifier import verify
from tests import rows as adv
from tests.irgen import random_table

HOST = host_target()


def _targets() -> dict[str, TargetInfo]:
    """The host plus restricted variants of it, so every kernel flavour runs here."""
    t = {"host": HOST, "gather": dataclasses.replace(HOST, permute=None), "scalar": dataclasses.replace(HOST, lanes=1, permute=None)}
    if HOST.permute == "avx512":
        t["avx2"] = dataclasses.replace(HOST, lanes=8, permute="avx2")
    # the other gather strategy (`TargetInfo.split_gathers`: interleaved scalar walks, loads
    # for 64-bit gathers and transposes, or SIMD walks and hardware gathers throughout)
    t["split" if not HOST.split_gathers else "unsplit"] = dataclasses.replace(HOST, split_gathers=not HOST.split_gathers)
    # walked trees of up to 64 leaves: bitvector segments on hosts that take them, walk kernels otherwise
    t["walk" if HOST.bitvectors else "bitvectors"] = dataclasses.replace(HOST, bitvectors=not HOST.bitvectors)
    return t


TARGETS = _targets()


# ----- helpers ----------------------------------------------------------------------------------


def jit(module, target: TargetInfo = HOST, prefix: str = "timber_"):
    verify(module)
    return compile_lowered(lower_module(module, target, prefix), target)


def call(j, X, symbol: str = "timber_infer") -> np.ndarray:
    """Run an exported batch function on rows X (converted to its input type)."""
    e = j.lowered.export(symbol)
    with np.errstate(over="ignore"):  # f64 rows with huge values, cast to f32 as the interpreter does
        Xc = np.ascontiguousarray(np.asarray(X).astype(e.in_dtype))
    out = np.full((len(Xc), e.n_outputs), -12345, e.out_dtype)
    assert j.function(symbol)(Xc.ctypes.data, len(Xc), out.ctypes.data, None) == 0
    return out


def call_single(j, X, symbol: str = "timber_infer_single") -> np.ndarray:
    e = j.lowered.export(symbol)
    with np.errstate(over="ignore"):
        Xc = np.ascontiguousarray(np.asarray(X).astype(e.in_dtype))
    out = np.full((len(Xc), e.n_outputs), -12345, e.out_dtype)
    for i in range(len(Xc)):
        assert j.function(symbol)(Xc[i].ctypes.data, out[i].ctypes.data, None) == 0
    return out


def assert_same_bits(got: np.ndarray, want: np.ndarray) -> None:
    """Equal bit patterns (so -0.0 differs from 0.0); any NaN matches any NaN."""
    assert got.shape == want.shape and got.dtype == want.dtype, (got.shape, got.dtype, want.shape, want.dtype)
    width = {4: np.uint32, 8: np.uint64, 1: np.uint8}[got.dtype.itemsize]
    same = got.view(width) == want.view(width)
    if got.dtype.kind == "f":
        same |= np.isnan(got) & np.isnan(want)
    bad = np.argwhere(~same)
    assert not len(bad), f"{len(bad)} values differ; first at {bad[0].tolist()}: got {got[tuple(bad[0])]!r}, want {want[tuple(bad[0])]!r}"


def check(module, X, target: TargetInfo = HOST, funcs=None) -> None:
    """Every public function of `module`, batched and (for @predict) one row at a time, equals the interpreter."""
    j = jit(module, target)
    funcs = funcs or [f.sym_name for f in module.body.ops if isinstance(f, func.FuncOp)]
    for name in funcs:
        symbol = "timber_infer" if name == "predict" else f"timber_infer_{name}"
        with np.errstate(over="ignore"):
            want = interpret(module, X, name)
        assert_same_bits(call(j, X, symbol), want)
        if name == "predict":
            assert_same_bits(call_single(j, X[:50]), want[:50])


def new_module() -> builtin.ModuleOp:
    return builtin.ModuleOp.build({"timber.format": "test"})


def add_func(m, name: str, n_in: int, in_el, out_t):
    f = func.FuncOp.build(name, [tensor(n_in, in_el)], [out_t], arg_names=["x"])
    m.body.add_op(f)
    return f


def ret(f, v) -> None:
    f.body.add_op(func.ReturnOp(operands=[v]))


def ensemble_func(m, name, n_in, n_out, tables, acc=f32, compare=f32, leaves=f32, in_el=None, init=None, cat_negative=None):
    """@name(x) = tree.ensemble over `tables` [(table, out)]."""
    f = add_func(m, name, n_in, in_el or compare, tensor(n_out, acc))
    e = tree.EnsembleOp.build(f.args[0], n_out, acc, compare, leaves, init=init, cat_negative=cat_negative, name=name)
    f.body.add_op(e)
    for t, out in tables:
        e.add_tree(t, out)
    ret(f, e.result)
    return f


def stump(feature, pred, thr, missing=Missing.NONE, default=None, tdt=np.float32, ldt=np.float32, cats=None) -> NodeTable:
    """x[feature] PRED thr ? leaf 1 : leaf 2 (default: "yes"/"no" for nan/zero kinds)."""
    words = bitset_from_members(cats) if cats is not None else np.zeros(0, np.uint32)
    d = {"yes": 1, "no": 2, None: -1}[default]
    return NodeTable(
        [feature, -1, -1],
        [pred, Pred.LEAF, Pred.LEAF],
        np.array([0.0 if cats is not None else thr, 0, 0], tdt),
        [1, -1, -1],
        [2, -1, -1],
        [missing, 0, 0],
        [d, -1, -1],
        np.array([[0.0], [1.0], [2.0]], ldt),
        cat_start=[0, 0, 0],
        cat_len=[len(words), 0, 0],
        cat_words=words,
    )


def same_value_rows(values, n_features, dtype=np.float64) -> np.ndarray:
    """One row per value, every feature holding it (each tree of a case ensemble sees it)."""
    return np.repeat(np.asarray(values, dtype)[:, None], n_features, axis=1)


def edge_values(thresholds, dt) -> list[float]:
    vals = list(adv.SPECIALS) + [0.5, 1.5, -1.5, 3.0]
    for t in thresholds:
        t = dt(t)
        vals += [float(t), float(np.nextafter(t, dt(np.inf))), float(np.nextafter(t, dt(-np.inf)))]
        vals += [float(np.nextafter(float(t), np.inf)), float(np.nextafter(float(t), -np.inf))]
    return vals


# ----- splits -----------------------------------------------------------------------------------

THRESHOLDS = [1.5, 0.0, -0.0, 1e-35, -2.5, float(np.float32(1e30)), np.inf, -np.inf]
MISSING_CASES = [
    (Missing.NONE, None),
    (Missing.NAN, "yes"),
    (Missing.NAN, "no"),
    (Missing.ZERO, "yes"),
    (Missing.ZERO, "no"),
    (Missing.NAN_AS_ZERO, None),
]


def split_zoo(compare, preds) -> builtin.ModuleOp:
    """One output per (predicate, missing kind, default, threshold): a stump on its own feature."""
    dt = compare.numpy.type
    tables = []
    for p in preds:
        for miss, dflt in MISSING_CASES:
            for thr in THRESHOLDS:
                tables.append(stump(len(tables), p, thr, miss, dflt, tdt=dt, ldt=dt))
    tables = [(t, i) for i, t in enumerate(tables)]
    m = new_module()
    ensemble_func(m, "predict", len(tables), len(tables), tables, compare=compare, leaves=compare, acc=compare)
    return m


@pytest.mark.parametrize("target", list(TARGETS))
@pytest.mark.parametrize("compare", [f32, f64], ids=["f32", "f64"])
def test_numeric_splits_every_predicate_and_missing_kind(target, compare):
    m = split_zoo(compare, [Pred.LT, Pred.LE, Pred.GT, Pred.GE])
    n = len(m.lookup("predict").body.ops[0].trees)
    X = same_value_rows(edge_values(THRESHOLDS, compare.numpy.type), n)
    check(m, X, TARGETS[target])


@pytest.mark.parametrize("compare", [f32, f64], ids=["f32", "f64"])
def test_eq_ne_splits(compare):
    m = split_zoo(compare, [Pred.EQ, Pred.NE])
    n = len(m.lookup("predict").body.ops[0].trees)
    check(m, same_value_rows(edge_values(THRESHOLDS, compare.numpy.type), n))


def test_heap_canonical_form_examples():
    """Spot checks of the canonical 'right iff v >= t'' rewrite, independent of the interpreter."""
    m = new_module()
    tabs = [
        (stump(0, Pred.LE, 1.0), 0),  # le 1: v = 1 goes yes
        (stump(0, Pred.GT, np.inf), 1),  # gt inf: nothing is above +inf
        (stump(0, Pred.LT, 1.0, Missing.NAN, "no"), 2),  # NaN -> no
        (stump(0, Pred.GE, 1.0, Missing.NAN_AS_ZERO), 3),  # NaN acts as 0 -> no
    ]
    ensemble_func(m, "predict", 1, 4, tabs)
    got = call(jit(m), np.array([[1.0], [np.inf], [np.nan]]))
    np.testing.assert_array_equal(got, [[1, 2, 2, 1], [2, 2, 2, 1], [2, 2, 2, 2]])


CAT_MEMBERS = [0, 1, 5, 31, 32, 63, 100]
CAT_VALUES = [-1.0, -0.5, -0.0, 0.0, 0.5, 0.99, 1.0, 1.5, 4.0, 5.0, 31.0, 32.0, 33.0, 63.0, 64.0, 99.5, 100.0, 101.0, 1e9]
CAT_VALUES += [2.0**24 + 1, 2.0**31 - 1, 2.0**31, 2.0**32, np.inf, -np.inf, np.nan, -1e-45, 1e-45]


@pytest.mark.parametrize("target", ["host", "scalar"])
@pytest.mark.parametrize("compare", [f32, f64], ids=["f32", "f64"])
@pytest.mark.parametrize("cat_negative", ["value", "code"])
def test_categorical_sets(target, compare, cat_negative):
    dt = compare.numpy.type
    tables = []
    for members in (CAT_MEMBERS, [], [3], list(range(40, 200, 7))):
        for miss, dflt in MISSING_CASES:
            tables.append((stump(len(tables), Pred.IN, 0.0, miss, dflt, tdt=dt, cats=members), len(tables)))
    m = new_module()
    ensemble_func(m, "predict", len(tables), len(tables), tables, compare=compare, leaves=f32, acc=f32, cat_negative=cat_negative)
    check(m, same_value_rows(CAT_VALUES, len(tables)), TARGETS[target])


# ----- trees, accumulation, leaves --------------------------------------------------------------


def forest(
    rng,
    n_trees,
    n_features,
    depths,
    compare=f32,
    leaves=f32,
    acc=f32,
    in_el=None,
    n_out=1,
    dim=1,
    preds=None,
    missing=None,
    name="predict",
    m=None,
):
    preds = preds or (Pred.LT, Pred.LE, Pred.GT, Pred.GE)
    missing = missing or (Missing.NONE, Missing.NAN, Missing.ZERO, Missing.NAN_AS_ZERO)
    tables = []
    for i in range(n_trees):
        d = depths[i % len(depths)]
        t = random_table(rng, n_features, d, compare.numpy, leaves.numpy, dim, categorical=False, preds=preds, missing_kinds=missing)
        tables.append((t, 0 if dim > 1 else i % n_out))
    m = m or new_module()
    ensemble_func(m, name, n_features, n_out, tables, compare=compare, leaves=leaves, acc=acc, in_el=in_el, init=rng.normal(size=n_out))
    return m


@pytest.mark.parametrize("target", list(TARGETS))
def test_heap_depths_zero_to_deeper_than_the_heap(target):
    """Depths 0..12: heap kernels, and the walk kernel beyond; a deep tree between shallow ones
    keeps tree order across plan."""
    rng = np.random.default_rng(1)
    depths = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, plan.MAX_HEAP_DEPTH + 2, 1, 3]
    tables = []
    for i, d in enumerate(depths):
        t = random_table(rng, 12, d, np.float32, np.float32, categorical=False, preds=(Pred.LT, Pred.GE), missing_kinds=(Missing.NAN,))
        tables.append((t, i % 2))
    m = new_module()
    ensemble_func(m, "predict", 12, 2, tables, init=[0.25, -0.5])
    check(m, adv.adversarial_rows(m, n_mixed=300), TARGETS[target])


@pytest.mark.parametrize("target", list(TARGETS))
@pytest.mark.parametrize("compare", [f32, f64], ids=["f32", "f64"])
def test_walk_kernel_deep_and_sparse_trees(target, compare):
    """Trees too deep (or too sparse) to pad: the walk kernel, with every predicate (categorical
    sets included) and missing kind, scalar and vector leaves, several in a row and between
    heap trees."""
    rng = np.random.default_rng(20)
    tables = []
    for i in range(11):
        depth = [14, 3, 16, 9, 13, 12, 2, 12, 15, 11, 13][i]
        t = random_table(rng, 9, depth, compare.numpy, np.float64, 2 if i in (2, 3) else 1, categorical=i % 2 == 0)
        tables.append((t, 0 if t.leaf_dim == 2 else i % 3))
    m = new_module()
    ensemble_func(m, "predict", 9, 3, tables, compare=compare, leaves=f64, acc=f64)
    segments = plan.plan_ensemble(m.lookup("predict").body.ops[0]).segments
    assert {type(s).__name__ for s in segments} == {"HeapSegment", "WalkSegment"}
    assert max(len(s.trees) for s in segments if isinstance(s, plan.WalkSegment)) >= 3
    check(m, adv.adversarial_rows(m, n_mixed=300), TARGETS[target])


def test_walk_kernel_shape_follows_the_gather_strategy():
    """With `split_gathers` (AVX2 without AVX-512) deep trees are walked 8 rows at a time in
    scalar code (`walk_..._i8`), otherwise in SIMD lanes; both give the interpreter's bits."""
    rng = np.random.default_rng(22)
    t = random_table(rng, 6, plan.MAX_HEAP_DEPTH + 3, np.float32, np.float64, categorical=True)
    m = new_module()
    ensemble_func(m, "predict", 6, 1, [(t, 0)], leaves=f64, acc=f64)
    X = adv.adversarial_rows(m, n_mixed=200)
    for split in (True, False):
        target = dataclasses.replace(HOST, split_gathers=split)
        text = lower_module(m, target).text
        walks = set(re.findall(r"define [^@]*@(walk_\w+_b64_\w+)", text))  # (b1: the one-row entry's)
        assert walks and all(w.endswith("_i8") == split for w in walks), walks
        check(m, X, target)


@pytest.mark.parametrize("n_trees", [3, 8, 13])
def test_one_row_walks_several_trees_together(n_trees):
    """Single rows walk deep trees WALK_TREES at a time (`_walk_trees_kernel`), the last
    n % WALK_TREES one at a time, and add their leaves in tree order: the interpreter's bits."""
    from backends.llvm import kernels

    rng = np.random.default_rng(40 + n_trees)
    tables = [(random_table(rng, 6, plan.MAX_HEAP_DEPTH + 3, np.float32, np.float64, categorical=True), i % 2) for i in range(n_trees)]
    m = new_module()
    ensemble_func(m, "predict", 6, 2, tables, leaves=f64, acc=f64)
    target = dataclasses.replace(HOST, bitvectors=False)
    assert f"_b1_t{kernels.WALK_TREES}" in lower_module(m, target).text
    X = adv.adversarial_rows(m, n_mixed=100)
    j = jit(m, target)
    assert_same_bits(call_single(j, X), interpret(m, X, "predict"))


@pytest.mark.parametrize("rows", [2 * 2048, 2 * 2048 + 37, 2048 + 5, 300], ids=["full", "partial-tail", "single-tail", "short"])
def test_big_blocks_for_walked_forests_with_big_tables(monkeypatch, rows):
    """Walk-only forests whose tables pass BIG_TABLE_BYTES run 2048-row blocks (row-loop
    transposes, a partial tail block, single rows after it) with the interpreter's bits;
    one heap tree keeps 64-row blocks."""
    from backends.llvm import lower

    monkeypatch.setattr(lower, "BIG_TABLE_BYTES", 0)
    rng = np.random.default_rng(23)
    tables = [
        (random_table(rng, 7, plan.MAX_HEAP_DEPTH + 2 + i % 3, np.float32, np.float64, 2 if i == 1 else 1), 0 if i == 1 else i % 2)
        for i in range(4)
    ]
    m = new_module()
    ensemble_func(m, "predict", 7, 2, tables, leaves=f64, acc=f64, init=[0.5, -1.0])
    assert lower_module(m, HOST).block_rows == 2048
    X = adv.adversarial_rows(m, n_mixed=64)
    X = np.vstack([X, rng.normal(size=(rows, 7)) * 2])[-rows:]
    X[::97, 3] = np.nan
    check(m, X)
    heap = new_module()
    ensemble_func(heap, "predict", 7, 2, [*tables, (random_table(rng, 7, 3, np.float32, np.float64), 0)], leaves=f64, acc=f64)
    assert lower_module(heap, HOST).block_rows == 64


def test_kernel_choice():
    """Shallow trees are padded, deep or sparse ones walked; only linear leaves need the node-table kernel."""
    rng = np.random.default_rng(21)

    def kind(t, leaves=np.float32):
        m = new_module()
        ensemble_func(m, "predict", 4, 1, [(t, 0)], leaves=f32 if leaves == np.float32 else f64, compare=f32)
        return type(plan.plan_ensemble(m.lookup("predict").body.ops[0]).segments[0]).__name__

    assert kind(random_table(rng, 4, 3, np.float32, np.float32)) == "HeapSegment"
    assert kind(synthetic_full_tree(10)) == "HeapSegment"  # dense enough to pad
    assert kind(random_table(rng, 4, 14, np.float32, np.float32)) == "WalkSegment"
    assert kind(stump(0, Pred.EQ, 1.0)) == "HeapSegment"
    assert kind(stump(0, Pred.IN, 0.0, cats=[1, 2])) == "HeapSegment"
    assert kind(random_table(rng, 4, 3, np.float32, np.float64, linear=True), np.float64) == "GeneralSegment"


def synthetic_full_tree(depth: int) -> NodeTable:
    n_inner, n_leaves = 2**depth - 1, 2**depth
    h = np.arange(n_inner)
    return NodeTable(
        np.concatenate([h % 4, np.full(n_leaves, -1)]),
        np.concatenate([np.full(n_inner, Pred.LT), np.full(n_leaves, Pred.LEAF)]),
        np.concatenate([np.linspace(-1, 1, n_inner), np.zeros(n_leaves)]).astype(np.float32),
        np.concatenate([2 * h + 1, np.full(n_leaves, -1)]),
        np.concatenate([2 * h + 2, np.full(n_leaves, -1)]),
        np.zeros(n_inner + n_leaves),
        np.full(n_inner + n_leaves, -1),
        np.arange(n_inner + n_leaves, dtype=np.float32)[:, None],
    )


PRECISIONS = [
    (f32, f32, f32, f32),
    (f64, f64, f64, f64),
    (f32, f64, f64, f64),
    (f64, f32, f32, f64),
    (f32, f32, f64, f32),
    (f64, f32, f32, f32),
]


@pytest.mark.parametrize(
    "target, types",
    [("host", t) for t in PRECISIONS] + [(name, t) for name in TARGETS if name != "host" for t in PRECISIONS[:2]],
    ids=lambda v: v if isinstance(v, str) else "in{}-cmp{}-leaf{}-acc{}".format(*(x.width for x in v)),
)
def test_precisions(target, types):
    """Every (input, compare, leaf, accumulation) type mix on the host; two of them on every target."""
    in_el, compare, leaves, acc = types
    m = forest(np.random.default_rng(2), 40, 7, [3, 5, 6, 2], compare, leaves, acc, in_el, n_out=2)
    check(m, adv.adversarial_rows(m, n_mixed=200), TARGETS[target])


def test_accumulation_is_in_tree_order():
    """Sums that depend on the order: in float32, 1e8 + 1 is 1e8, so these leaves add up to 0
    in tree order (any order that pairs +1e8 with -1e8 first would give 3)."""
    big, one = np.float32(1e8), np.float32(1.0)
    leaves = [big, one, -big, one, one, big, -big]
    tables = [(NodeTable.single_leaf([v]), 0) for v in leaves]
    for acc in (f32, f64):
        m = new_module()
        ensemble_func(m, "predict", 1, 1, tables, acc=acc)
        got = call(jit(m), np.zeros((3, 1)))
        want = interpret(m, np.zeros((3, 1)))
        assert_same_bits(got, want)
        assert got[0, 0] == (0.0 if acc == f32 else 3.0)


@pytest.mark.parametrize("target", ["host", "scalar", "gather"])
def test_vector_leaves_and_outputs_offsets(target):
    rng = np.random.default_rng(3)
    tables = []
    for i in range(12):
        dim = 3 if i % 3 else 1
        t = random_table(rng, 6, 1 + i % 5, np.float32, np.float64, dim, categorical=i % 4 == 0, preds=(Pred.LT, Pred.GT))
        tables.append((t, 0 if dim == 3 else i % 4))
    m = new_module()
    ensemble_func(m, "predict", 6, 4, tables, compare=f32, leaves=f64, acc=f64)
    check(m, adv.adversarial_rows(m, n_mixed=200), TARGETS[target])


def test_oblivious_trees():
    """Depths 0..11 run by the oblivious kernel (every predicate, categorical levels, every
    missing kind, vector leaves); depth 17 is past MAX_OBLIVIOUS_DEPTH and is expanded."""
    rng = np.random.default_rng(4)
    tables = []
    for d in (0, 1, 3, 6, 11, plan.MAX_OBLIVIOUS_DEPTH + 1):
        preds = [[Pred.GT, Pred.LE, Pred.GE, Pred.LT, Pred.EQ, Pred.NE, Pred.IN][i % 7] for i in range(d)]
        words = [bitset_from_members([0, 2, 3, 35]) if p == Pred.IN else np.zeros(0, np.uint32) for p in preds]
        t = ObliviousTable(
            feature=rng.integers(5, size=d),
            pred=preds,
            threshold=rng.normal(size=d).round(2).astype(np.float32),
            missing=[[Missing.NONE, Missing.NAN, Missing.ZERO, Missing.NAN_AS_ZERO][i % 4] for i in range(d)],
            default_true=rng.random(d) < 0.5,
            leaf=rng.normal(size=(2**d, 2)).astype(np.float32),
            cat_start=np.cumsum([0] + [len(w) for w in words])[:-1] if d else None,
            cat_len=[len(w) for w in words] if d else None,
            cat_words=np.concatenate(words) if d else None,
        )
        tables.append((t, 0))
    m = new_module()
    ensemble_func(m, "predict", 5, 2, tables)
    kinds = [type(s).__name__ for s in plan.plan_ensemble(m.lookup("predict").body.ops[0]).segments]
    assert set(kinds[:-1]) == {"ObliviousSegment"} and kinds[-1] == "WalkSegment"
    X = adv.adversarial_rows(m, n_mixed=300)
    X[::3, 2] = np.round(X[::3, 2])  # category codes on the `in` levels' feature too
    for target in ("host", "scalar"):
        check(m, X, TARGETS[target])


def test_oblivious_as_nodes_matches_the_leaf_index_rule():
    t = ObliviousTable(
        feature=[0, 1],
        pred=[Pred.GT, Pred.GT],
        threshold=np.zeros(2, np.float32),
        missing=[0, 0],
        default_true=[False, False],
        leaf=np.array([10.0, 11.0, 12.0, 13.0], np.float32),
    )
    nodes = plan.oblivious_as_nodes(t)
    m = new_module()
    ensemble_func(m, "predict", 2, 1, [(nodes, 0)])
    got = call(jit(m), np.array([[-1, -1], [1, -1], [-1, 1], [1, 1]]))
    np.testing.assert_array_equal(got[:, 0], [10, 11, 12, 13])  # bit d = level d's split


@pytest.mark.parametrize("in_el", [f32, f64], ids=["in-f32", "in-f64"])
def test_linear_leaves(in_el):
    rng = np.random.default_rng(5)
    tables = [(random_table(rng, 6, 3, np.float64, np.float64, linear=True, categorical=True), 0) for _ in range(6)]
    tables.insert(2, (random_table(rng, 6, 2, np.float64, np.float64, categorical=False), 0))  # a plain tree among them
    m = new_module()
    ensemble_func(m, "predict", 6, 1, tables, compare=f64, leaves=f64, acc=f64, in_el=in_el)
    for target in ("host", "scalar"):
        check(m, adv.adversarial_rows(m, n_mixed=300), TARGETS[target])


def test_zero_as_missing_heap_kernels_switch_per_block():
    """A block without NaN or near-zero values runs the plain kernel, one with them the aware one."""
    rng = np.random.default_rng(6)
    m = forest(rng, 30, 8, [4, 6], compare=f64, leaves=f64, acc=f64, missing=(Missing.ZERO, Missing.NAN, Missing.NAN_AS_ZERO))
    X = rng.normal(size=(640, 8))
    X[300:310, 3] = 0.0  # only some blocks hold zeros
    X[500, 5] = np.nan
    X[600, 1] = -1e-36
    check(m, X)
