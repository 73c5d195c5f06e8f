"""Branch code for calibrated trees (`tree.hits` from `tree-sort-branches`): the LLVM text
carries the hit counts as `!prof` branch weights, hot child first, and predictions stay bit
for bit those of the table kernels and of the IR interpreter, single rows and batches.

Most tests lower with `plan.BRANCH_MAX_MISS = 1.0` so that every calibrated heap and walk
segment becomes branch code whatever its measured predictability; `test_the_rule_*` check the
rule itself (plan.py explains it and the measurements behind it)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from backends.llvm import kernels, plan
from backends.llvm.emit import Module
from backends.llvm.jit import compile_lowered
from backends.llvm.lower import lower_module
from backends.llvm.target import host_target
from ir.attributes import DenseArrayAttr
from ir.diagnostics import TimberError
from ir.dialects.tree import EnsembleOp, Missing, NodeTable, Pred, TreeOp
from ir.interpreter import run as interpret
from ir.types import i64
from passes import run_pipeline
from tests import irgen
from tests import rows as adv
from tests.backends.test_llvm import assert_same_bits, call, call_single

pytestmark = pytest.mark.filterwarnings("ignore:overflow encountered in cast:RuntimeWarning")

HOST = host_target()
DEMO = Path(__file__).resolve().parents[2] / "timber" / "examples"


@pytest.fixture
def always_branch(monkeypatch):
    """Every calibrated heap or walk segment becomes branch code (whatever its statistics)."""
    monkeypatch.setattr(plan, "BRANCH_MAX_MISS", 1.0)


def calibrate(module, X: np.ndarray, tmp_path: Path) -> None:
    np.save(tmp_path / "calibration.npy", X)
    run_pipeline(module, f"tree-sort-branches{{calibration={tmp_path / 'calibration.npy'}}}")


def rows_of(module, seed: int = 0) -> np.ndarray:
    """Adversarial rows of both generators (thresholds, neighbours, NaN, ±inf, ±0, categories)
    plus random ones."""
    rng = np.random.default_rng(seed)
    X = np.vstack([adv.adversarial_rows(module, n_mixed=64, seed=seed), irgen.adversarial_rows(module, rng, n_random=16)])
    return np.vstack([X, rng.normal(size=(32, X.shape[1])) * 3])


def compiled(module):
    return compile_lowered(lower_module(module, HOST), HOST)


def functions(module) -> list[str]:
    return [op.sym_name for op in module.body.ops if op.name == "func.func"]


def check_exact(plain, calibrated, X: np.ndarray) -> None:
    """Both modules compiled: every exported function, batch and single-row, bit-identical
    between them and to the interpreter of the calibrated module."""
    jp, jc = compiled(plain), compiled(calibrated)
    assert "!prof" in jc.lowered.text and "!prof" not in jp.lowered.text
    for name in functions(calibrated):
        symbol = "timber_infer" if name == "predict" else f"timber_infer_{name}"
        want = interpret(calibrated, X, name)
        got = call(jc, X, symbol)
        assert_same_bits(got, want)
        assert_same_bits(call(jp, X, symbol), want)
        if name == "predict":
            assert_same_bits(call_single(jc, X), want)
            assert_same_bits(call_single(jp, X), want)


# ----- the metadata ------------------------------------------------------------------------------


def _blocks(text: str) -> dict[str, list[str]]:
    """The lines of every block of the module's branch functions, by label."""
    out, label, body = {}, None, False
    for line in text.splitlines():
        if line.startswith("define internal void @branch"):
            body = True
        elif line == "}":
            body = False
        elif body and re.fullmatch(r"[\w.]+:", line):
            label = line[:-1]
            out[label] = []
        elif body and label is not None:
            out[label].append(line.strip())
    return out


def test_weights_are_the_hit_counts_hot_child_first(tmp_path, always_branch):
    """Every split of every tree: `br i1 %c, label %hot, label %cold, !prof !N` with
    !N = !{!"branch_weights", i32 hits[hot], i32 hits[cold]}, the hot child's block next."""
    m = irgen.random_module(3, n_trees=6, depth=5, oblivious=False)
    calibrate(m, rows_of(m, 3), tmp_path)
    text = lower_module(m, HOST).text
    meta = dict(re.findall(r'^(![0-9]+) = !\{!"branch_weights", (i32 \d+, i32 \d+)\}$', text, re.M))
    blocks, order = _blocks(text), [ln[:-1] for ln in text.splitlines() if re.fullmatch(r"t\d+\.n\d+:", ln)]
    trees = [op for op in m.walk() if isinstance(op, TreeOp)]
    checked = 0
    for t, op in enumerate(trees):
        table, hits = op.table, op.attributes["tree.hits"].values
        for u in np.flatnonzero(table.pred != Pred.LEAF).tolist():
            yes, no = int(table.yes[u]), int(table.no[u])
            hot, cold = (no, yes) if hits[no] > hits[yes] else (yes, no)
            if table.pred[u] != Pred.IN:
                assert hot == yes  # tree-sort-branches made the hotter child the yes child
            br = blocks[f"t{t}.n{u}"][-1]
            target = re.fullmatch(r"br i1 %[\w.]+, label %([\w.]+), label %([\w.]+)(?:, !prof (![0-9]+))?", br)
            assert target, br
            if hits[u] == 0:
                assert target[3] is None  # no row got here: no weights
                continue
            assert meta[target[3]] == f"i32 {hits[hot]}, i32 {hits[cold]}"
            if table.pred[hot] != Pred.LEAF:
                assert target[1] == f"t{t}.n{hot}"
                assert order[order.index(f"t{t}.n{u}") + 1] == target[1]  # laid out as the fall-through
            checked += 1
    assert checked > 20


def test_weights_scale_into_i32():
    mod = Module("m", "t_")
    assert kernels.branch_weights(mod, 0, 0) == ""
    small = kernels.branch_weights(mod, 5, 2)
    big = kernels.branch_weights(mod, 3 * 2**32, 2**32)
    assert kernels.branch_weights(mod, 5, 2) == small  # one metadata node per distinct pair
    node = {g.split(" = ")[0]: g for g in mod.globals}[big.split()[-1]]
    hot, cold = map(int, re.findall(r"i32 (\d+)", node))
    assert hot == 2**31 - 1 and cold == (2**31 - 1) // 3
    one = kernels.branch_weights(mod, 2**40, 1)
    assert re.findall(r"i32 (\d+)", {g.split(" = ")[0]: g for g in mod.globals}[one.split()[-1]]) == [str(2**31 - 1), "1"]


def test_batches_keep_the_table_kernels(tmp_path, always_branch):
    m = irgen.random_module(4, n_trees=5)
    calibrate(m, rows_of(m), tmp_path)
    text = lower_module(m, HOST).text
    callers = {f for f, body in re.findall(r"define [^@]*@(\w+)\((.*?)\n}", text, re.S) if "call void @branch" in body}
    assert callers and all(c.endswith("_b1") for c in callers)


def test_uncalibrated_models_have_no_branch_code():
    m = irgen.random_module(5)
    text = lower_module(m, HOST).text
    assert "@branch" not in text and "branch_weights" not in text


# ----- exactness ------------------------------------------------------------------------------


# Each variant compiles a random module twice; the default run keeps the categorical, f64 and
# softmax ones, the rest run with -m slow.
_QUICK_VARIANTS = ("cat-code", "f64", "softmax")


@pytest.mark.parametrize("variant", [v if v in _QUICK_VARIANTS else pytest.param(v, marks=pytest.mark.slow) for v in sorted(irgen.VARIANTS)])
def test_random_modules_every_split_kind(variant, tmp_path, always_branch):
    """Every predicate, missing kind (nan, zero, nan-as-zero, none), categorical sets, vector
    leaves, f32/f64 compares and accumulators, oblivious and linear trees beside branch code."""
    m = irgen.random_module(11, depth=5, n_trees=8, **irgen.VARIANTS[variant])
    X = rows_of(m, 11)
    plain = irgen.random_module(11, depth=5, n_trees=8, **irgen.VARIANTS[variant])
    calibrate(m, X, tmp_path)
    if variant == "linear-exp":  # linear trees stay on the node-table kernel: nothing to branch
        assert plan.plan_ensemble(next(o for o in m.walk() if isinstance(o, EnsembleOp))).row_segments is None
        return
    check_exact(plain, m, X)


def test_several_functions_per_segment(tmp_path, always_branch, monkeypatch):
    monkeypatch.setattr(plan, "BRANCH_CHUNK_NODES", 40)
    m = irgen.random_module(12, depth=5, n_trees=10, n_outputs=3, transform="softmax")
    plain = irgen.random_module(12, depth=5, n_trees=10, n_outputs=3, transform="softmax")
    X = rows_of(m, 12)
    calibrate(m, X, tmp_path)
    assert len(set(re.findall(r"define internal void @(branch0_c\d+)_\w+_b1", lower_module(m, HOST).text))) > 2
    check_exact(plain, m, X)


def test_branch_code_in_batches_when_asked(tmp_path, always_branch, monkeypatch):
    """B = 64 blocks run branch code row by row when BRANCH_ROWS says so (measured slower, so
    not by default): the row loop accumulates each row's sums like B = 1."""
    monkeypatch.setattr(plan, "BRANCH_ROWS", (1, 64))
    m = irgen.random_module(13, depth=5, n_trees=6, n_outputs=3, vector_leaves=True, transform="argmax")
    plain = irgen.random_module(13, depth=5, n_trees=6, n_outputs=3, vector_leaves=True, transform="argmax")
    X = rows_of(m, 13)
    calibrate(m, X, tmp_path)
    assert re.search(r"define internal void @branch\d+_c0_\w+_b64", lower_module(m, HOST).text)
    check_exact(plain, m, X)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Small models of each framework: {name: (path, training rows)}."""
    d = tmp_path_factory.mktemp("branch-models")
    rng = np.random.default_rng(7)
    X = rng.normal(size=(500, 6))
    X[rng.random(X.shape) < 0.1] = np.nan
    X[:, 5] = np.where(rng.random(500) < 0.05, np.nan, rng.integers(0, 40, 500))
    y = np.nan_to_num(X[:, 0]) + np.nan_to_num(X[:, 1]) * np.nan_to_num(X[:, 2]) + (np.nan_to_num(X[:, 5]) % 3)
    out = {}
    xgb = pytest.importorskip("xgboost")
    b = xgb.train({"objective": "binary:logistic", "max_depth": 5, "nthread": 1, "seed": 0}, xgb.DMatrix(X, y > 1), 12)
    b.save_model(d / "xgb.json")
    out["xgboost"] = d / "xgb.json"
    ft = ["q"] * 5 + ["c"]
    dm = xgb.DMatrix(X, y, feature_types=ft, enable_categorical=True)
    b = xgb.train({"max_depth": 4, "max_cat_to_onehot": 1, "nthread": 1, "tree_method": "hist"}, dm, 10)
    b.save_model(d / "xgbcat.json")
    out["xgboost-categorical"] = d / "xgbcat.json"
    lgb = pytest.importorskip("lightgbm")
    params = {"objective": "regression", "num_leaves": 24, "verbose": -1, "num_threads": 1, "min_data_in_leaf": 5}
    lgb.train(params, lgb.Dataset(X, y, categorical_feature=[5]), 10).save_model(d / "lgb.txt")  # missing nan, categorical
    out["lightgbm-categorical-nan"] = d / "lgb.txt"
    X0 = np.where(rng.random(X.shape) < 0.2, 0.0, np.nan_to_num(X))
    lgb.train({**params, "zero_as_missing": True}, lgb.Dataset(X0, y), 8).save_model(d / "lgb0.txt")
    out["lightgbm-zero-missing"] = d / "lgb0.txt"
    cb = pytest.importorskip("catboost")
    m = cb.CatBoostRegressor(iterations=10, depth=4, verbose=False, thread_count=1, random_seed=0, allow_writing_files=False)
    m.fit(np.nan_to_num(X), y)
    m.save_model(str(d / "cb.json"), format="json")
    out["catboost"] = d / "cb.json"
    return {k: (v, X) for k, v in out.items()}


# lightgbm-categorical-nan takes a minute of LLVM codegen (categorical heap kernels): -m slow;
# categorical branch code stays covered by xgboost-categorical.
@pytest.mark.parametrize(
    "name",
    ["xgboost", "xgboost-categorical", pytest.param("lightgbm-categorical-nan", marks=pytest.mark.slow), "lightgbm-zero-missing", "catboost"],
)
def test_framework_models(name, trained, tmp_path, always_branch):
    from timber.detect import load_model

    path, Xtrain = trained[name]
    plain, m = load_model(str(path)), load_model(str(path))
    calibrate(m, Xtrain[:200], tmp_path)
    X = np.vstack([rows_of(m), Xtrain[200:]])
    if name == "catboost":  # oblivious trees carry no hit counts: nothing changes
        jp, jc = compiled(plain), compiled(m)
        assert "!prof" not in jc.lowered.text
        assert_same_bits(call(jc, X), call(jp, X))
        assert_same_bits(call_single(jc, X), call(jp, X))
        return
    check_exact(plain, m, X)


# ----- the rule --------------------------------------------------------------------------------


def test_the_rule_picks_the_demo_model(tmp_path):
    """The default rule (no override): the demo model calibrated on its own rows gets branch
    code for single rows (its decisions are predictable enough, see plan.py), exactly."""
    from timber.detect import load_model

    demo = DEMO / "breast_cancer_xgb.json"
    if not demo.exists():
        pytest.skip("demo model not shipped")
    X = np.loadtxt(DEMO / "breast_cancer_rows.csv", delimiter=",", skiprows=1)
    plain, m = load_model(str(demo)), load_model(str(demo))
    calibrate(m, X, tmp_path)
    p = plan.plan_ensemble(next(o for o in m.walk() if isinstance(o, EnsembleOp)))
    assert p.row_segments is not None and all(isinstance(s, plan.BranchSegment) for s in p.row_segments)
    check_exact(plain, m, np.vstack([X, rows_of(m)]))


def _tree(depth: int, hot: float, chain: bool) -> tuple[NodeTable, np.ndarray]:
    """A tree of `depth` splits on feature 0 and its hit counts, the hot child getting `hot` of
    its parent's 10000 rows: complete (heap), or a chain whose paths end at every depth (walk,
    path lengths spread out)."""
    rows: list[tuple[bool, int, int]] = []
    hits: list[int] = []

    def node(leaf: bool, n: int) -> int:
        rows.append((leaf, -1, -1))
        hits.append(n)
        return len(rows) - 1

    def grow(d: int, n: int) -> int:
        if d == depth:
            return node(True, n)
        i = node(False, n)
        yes = grow(d + 1, int(n * hot))
        no = node(True, n - int(n * hot)) if chain else grow(d + 1, n - int(n * hot))
        rows[i] = (False, yes, no)
        return i

    grow(0, 10_000)
    n = len(rows)
    leaf = np.array([r[0] for r in rows])
    table = NodeTable(
        np.where(leaf, -1, 0).astype(np.int32),
        np.where(leaf, Pred.LEAF, Pred.LT).astype(np.uint8),
        np.linspace(-1, 1, n).astype(np.float32),
        np.array([r[1] for r in rows], np.int32),
        np.array([r[2] for r in rows], np.int32),
        np.full(n, Missing.NONE, np.uint8),
        np.full(n, -1, np.int32),
        np.ones((n, 1), np.float32),
        np.zeros(n, np.int32),
        np.zeros(n, np.int32),
        np.zeros(0, np.uint32),
    )
    return table, np.array(hits, np.int64)


def _ensemble(n_trees: int, depth: int, hot: float, chain: bool = False) -> EnsembleOp:
    """An ensemble of `_tree`s carrying their hit counts."""
    m = irgen.random_module(0, n_trees=1, depth=1, categorical=False)
    ens = next(o for o in m.walk() if isinstance(o, EnsembleOp))
    block = ens.regions[0].blocks[0]
    for op in list(block.ops):
        block.remove_op(op)
    for _ in range(n_trees):
        table, hits = _tree(depth, hot, chain)
        ens.add_tree(table).attributes["tree.hits"] = DenseArrayAttr(hits, i64)
    return ens


def test_the_rule_follows_the_hit_statistics(monkeypatch):
    """Heap trees: branch code only when few decisions go the cold way; walk trees also when
    their path lengths spread (the walk kernel's loop exit mispredicts); never past the size cap."""
    predictable, balanced = _ensemble(4, 4, 0.9), _ensemble(4, 4, 0.5)
    assert plan.plan_ensemble(predictable).row_segments is not None
    assert plan.plan_ensemble(balanced).row_segments is None
    miss, spread = plan._predictability(plan.plan_ensemble(balanced).segments[0].trees)
    assert miss == pytest.approx(0.5) and spread == 0.0
    chain = _ensemble(3, 14, 0.7, chain=True)  # depth 14: the walk kernel; paths of 1..14 splits
    p = plan.plan_ensemble(chain)
    assert isinstance(p.segments[0], plan.WalkSegment)
    miss, spread = plan._predictability(p.segments[0].trees)
    assert miss == pytest.approx(0.3, abs=0.01) and miss > plan.BRANCH_MAX_MISS and spread > plan.BRANCH_WALK_SPREAD
    assert p.row_segments is not None
    monkeypatch.setattr(plan, "BRANCH_MAX_NODES", 3 * 31 - 1)  # compile time: a cap on the nodes
    assert plan.plan_ensemble(predictable).row_segments is None


def test_hits_that_do_not_fit_the_table_are_an_error(tmp_path):
    m = irgen.random_module(6, n_trees=2, oblivious=False)
    calibrate(m, rows_of(m), tmp_path)
    op = next(o for o in m.walk() if isinstance(o, TreeOp))
    op.attributes["tree.hits"] = DenseArrayAttr(np.array([1, 2], np.int64), i64)
    with pytest.raises(TimberError, match="'tree.hits' must hold one non-negative count per node"):
        lower_module(m, HOST)
