"""`tree-accumulate-f32` (passes/tree_accumulate_f32.py): the lossy option for cores without a
double-precision FPU.  Before/after IR, idempotence, exactness where the model already sums in
f32, the stated bound holding on adversarial and random rows, and the error against the
frameworks themselves, measured:

* LightGBM regression, 200 trees of 31 leaves: max |Δ| 5.9e-6 on outputs of magnitude ~5
  (stated bound 1.3e-4);
* LightGBM binary, 100 trees: margin max |Δ| 5.6e-6, probability max |Δ| 1.2e-7;
* CatBoost regression, 200 oblivious trees of depth 6: max |Δ| 8.0e-6 (stated bound 1.8e-4).

The same module then compiles for Cortex-M3 with float sums and leaf tables half the size
(executed under emulation when unicorn and zig are installed).
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from backends.llvm.objfile import emit_object
from ir.dialects import tree
from ir.interpreter import run
from ir.parser import parse_module
from ir.printer import print_op
from ir.types import f32, f64
from ir.verifier import verify
from passes.manager import run_pipeline
from passes.registry import lookup_pass
from passes.tree_accumulate_f32 import error_bound
from tests import rows as adv
from tests.backends import test_c99_wat_models as hand
from tests.backends.test_llvm import assert_same_bits

PASS = "tree-accumulate-f32"


def _ensembles(m):
    return [op for op in m.walk() if isinstance(op, tree.EnsembleOp)]


def _rewritten(m):
    m2 = parse_module(print_op(m), "<copy>")
    audit = run_pipeline(m2, PASS)
    verify(m2)
    return m2, audit[-1]


def test_registered_as_a_lossy_pass():
    cls = lookup_pass(PASS)
    assert cls is not None and cls.exact is False
    assert PASS not in __import__("passes.registry", fromlist=["PIPELINES"]).PIPELINES["default"]


def _f64_forest():
    """LightGBM-like: f64 thresholds, leaves and sums, every missing kind, categorical splits, 3 outputs."""
    return hand.MODELS["forest_mixed"]()


def test_before_and_after():
    m = _f64_forest()
    before = print_op(m)
    m2, entry = _rewritten(m)
    after = print_op(m2)
    assert "leaves = f64" in before and "leaves = f32" in after
    assert "-> tensor<3xf64> {" in before and "-> tensor<3xf32> {" in after
    assert "arith.extf %margin : tensor<3xf32> to tensor<3xf64>" in after
    assert re.search(r"init = dense<\[[^]]*\]> : tensor<3xf32>", after)
    assert after.count("compare = f64") == before.count("compare = f64")  # splits keep their precision
    for f in ("margin", "predict"):  # the ABI does not change
        assert m2.lookup(f).function_type == m.lookup(f).function_type
    assert entry.stats["ensembles-rewritten"] == 1 and entry.stats["max-output-error-bound"] > 0
    assert any("at most" in n for n in entry.notes)
    (e1,), (e2,) = _ensembles(m), _ensembles(m2)
    for a, b in zip(e1.trees, e2.trees):
        np.testing.assert_array_equal(b.table.leaf, a.table.leaf.astype(np.float32))
        np.testing.assert_array_equal(b.table.threshold, a.table.threshold)


def test_idempotent_and_exact_where_already_f32():
    m2, _ = _rewritten(_f64_forest())
    text = print_op(m2)
    m3, entry = _rewritten(m2)
    assert print_op(m3) == text and not entry.changes
    xgb_like = hand.xgb_binary()  # f32 leaves and sums already
    m4, entry = _rewritten(xgb_like)
    assert print_op(m4) == print_op(xgb_like) and not entry.changes


def test_f64_leaves_summed_in_f32_are_narrowed_exactly():
    """Leaves stored in f64 but summed in f32 were rounded to f32 before each addition anyway."""
    m = hand.random_forest(20, 5, 2, 4, seed=3, compare=f64, leaves=f64, acc=f32, missings=("nan", None))
    m2, entry = _rewritten(m)
    assert "leaves = f32" in print_op(m2) and "arith.extf" not in print_op(m2) and entry.changes
    X = hand.adversarial_rows(m, max_rows=800)
    assert_same_bits(run(m2, X), run(m, X))


BUILDS = {
    "catboost_like": hand.MODELS["catboost_like"],  # f32 splits, f64 leaves and sums, vector leaves
    "forest_mixed": _f64_forest,
    "deep_f64": lambda: hand.random_forest(25, 5, 1, 6, seed=7, compare=f64, leaves=f64, acc=f64, missings=("nan", "zero", None)),
}


@pytest.mark.parametrize("build", BUILDS)
def test_outputs_move_less_than_the_stated_bound(build):
    m = BUILDS[build]()
    bounds = [error_bound(e) for e in _ensembles(m)]
    m2, _ = _rewritten(m)
    X = hand.adversarial_rows(m, max_rows=1500)
    with np.errstate(over="ignore"):
        X = np.concatenate([X, adv.adversarial_rows(m, n_mixed=200).astype(X.dtype)])
    with np.errstate(all="ignore"):
        a, b = run(m, X, "margin"), run(m2, X, "margin")
    assert np.array_equal(np.isnan(a), np.isnan(b))
    finite = np.isfinite(a)
    assert np.array_equal(a[~finite], b[~finite])
    assert np.abs(a[finite] - b[finite]).max(initial=0) <= max(bounds)


_PAIR = {}


def _pair():
    if not _PAIR:
        m = _f64_forest()
        _PAIR["m"], (_PAIR["m2"], _) = m, _rewritten(m)
    return _PAIR["m"], _PAIR["m2"]


@settings(max_examples=30, deadline=None)
@given(st.data())
def test_bound_holds_on_arbitrary_rows(data):
    m, m2 = _pair()
    (ens,) = _ensembles(m)
    X = data.draw(adv.rows_strategy(m))
    with np.errstate(all="ignore"):
        a, b = run(m, X, "margin"), run(m2, X, "margin")
    ok = np.isnan(a) & np.isnan(b) | (np.abs(a - b) <= error_bound(ens))
    assert ok.all()


def test_linear_leaves_keep_their_precision():
    lgb = pytest.importorskip("lightgbm")
    from timber.frontends import lightgbm as fe

    rng = np.random.default_rng(5)
    X = rng.normal(size=(400, 3))
    y = 3 * X[:, 0] + rng.normal(size=400) * 0.1
    b = lgb.train(
        {"objective": "regression", "linear_tree": True, "num_leaves": 4, "verbose": -1, "seed": 0, "num_threads": 1}, lgb.Dataset(X, y), 5
    )
    m = fe.load(b)
    m2, entry = _rewritten(m)
    (ens,) = _ensembles(m2)
    assert ens.leaf_type.width == 64 and ens.results[0].type.element.width == 32
    assert any("no static bound" in n for n in entry.notes)
    Xt = rng.normal(size=(300, 3)) * 1e3  # far outside the training range: f64 leaves do not overflow
    want = b.predict(Xt)
    got = run(m2, Xt).reshape(-1)
    np.testing.assert_allclose(got, want, rtol=2e-6 * 5)  # each of 5 additions rounds once in f32


# ----- against the frameworks -------------------------------------------------------------------


def _data(n=2000, f=8, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, f))
    y = X[:, 0] * 3 + np.sin(X[:, 1]) + rng.normal(size=n) * 0.1
    return X, y, rng


def test_error_against_lightgbm():
    lgb = pytest.importorskip("lightgbm")
    from timber.frontends import lightgbm as fe

    X, y, rng = _data()
    Xt = rng.normal(size=(5000, 8))
    reg = lgb.train({"objective": "regression", "num_leaves": 31, "verbose": -1, "seed": 0, "num_threads": 1}, lgb.Dataset(X, y), 200)
    m = fe.load(reg)
    bound = error_bound(_ensembles(m)[0])
    run_pipeline(m, f"default,{PASS}")
    err = np.abs(run(m, Xt).reshape(-1) - reg.predict(Xt)).max()
    assert err <= bound and err < 2e-5, err  # measured 5.9e-6, bound 1.3e-4
    binary = lgb.train({"objective": "binary", "num_leaves": 15, "verbose": -1, "seed": 0, "num_threads": 1}, lgb.Dataset(X, y > 0), 100)
    m = fe.load(binary)
    run_pipeline(m, f"default,{PASS}")
    assert np.abs(run(m, Xt, "margin").reshape(-1) - binary.predict(Xt, raw_score=True)).max() < 2e-5  # measured 5.6e-6
    assert np.abs(run(m, Xt).reshape(-1) - binary.predict(Xt)).max() < 1e-6  # measured 1.2e-7


def test_error_against_catboost():
    catboost = pytest.importorskip("catboost")
    from timber.frontends import catboost as fe

    X, y, rng = _data()
    X = X.astype(np.float32)
    Xt = rng.normal(size=(5000, 8)).astype(np.float32)
    cb = catboost.CatBoostRegressor(iterations=200, depth=6, verbose=False, random_seed=0, thread_count=1)
    cb.fit(X, y)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "m.cbm"
        cb.save_model(str(path))
        m = fe.load(str(path))
    bound = error_bound(_ensembles(m)[0])
    run_pipeline(m, f"default,{PASS}")
    err = np.abs(run(m, Xt).reshape(-1) - cb.predict(Xt, prediction_type="RawFormulaVal")).max()
    assert err <= bound and err < 3e-5, err  # measured 8.0e-6, bound 1.8e-4


# ----- what it buys on a Cortex-M3 ---------------------------------------------------------------


def test_cortex_m3_object_sums_in_float():
    m = hand.lgb_binary()
    run_pipeline(m, "default")
    before = emit_object(m, "thumbv7m-none-eabi")
    run_pipeline(m, PASS)
    after = emit_object(m, "thumbv7m-none-eabi")
    assert "__aeabi_fadd" in after.undefined_symbols and "__aeabi_fadd" not in before.undefined_symbols
    assert after.sizes().rodata < before.sizes().rodata  # leaf tables of f32


def test_cortex_m3_object_runs_the_rewritten_module():
    """Under emulation, the M3 object of the rewritten module equals the host JIT of it bit for bit."""
    from tests.backends.xtarget.emulator import Emulator
    from tests.backends.xtarget.toolchain import link_image, require

    require("unicorn")
    require("ziglang")
    from backends.llvm.jit import compile_lowered
    from backends.llvm.lower import lower_module
    from backends.llvm.target import host_target

    m = hand.lgb_binary()
    run_pipeline(m, f"default,{PASS}")
    r = emit_object(m, "thumbv7m-none-eabi")
    emu = Emulator(link_image([r.object], r.target, r.exports, Path(tempfile.mkdtemp(prefix="timber-f32-"))), r.target)
    j = compile_lowered(lower_module(m, host_target()))
    X = hand.adversarial_rows(m, max_rows=1500)
    for e in j.lowered.exports:
        if e.single:
            continue
        want = np.zeros((len(X), e.n_outputs), e.out_dtype)
        assert j.function(e.symbol)(X.ctypes.data, len(X), want.ctypes.data, None) == 0
        rc, got = emu.infer(e.symbol, X, e.n_outputs, e.out_dtype)
        assert rc == 0
        assert_same_bits(got, want)
