"""`timber.compile` / `CompiledModel`: inputs the way users pass them, outputs the way the
framework returns them, threads, metadata, and the errors a user can cause."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import timber
from ir.diagnostics import TimberError
from ir.dialects import builtin, func, tree
from ir.interpreter import run as interpret
from ir.types import f32, f64, tensor
from tests.irgen import random_module
from timber.api import CompiledModel

DEMO = Path(timber.__file__).parent / "examples" / "breast_cancer_xgb.json"
try:  # the tests that compare with XGBoost skip without it; the others run
    import xgboost as xgb
except ImportError:
    xgb = None
needs_xgboost = pytest.mark.skipif(xgb is None, reason="xgboost is not installed")


@pytest.fixture(scope="module")
def demo() -> CompiledModel:
    return timber.compile(DEMO)


@pytest.fixture(scope="module")
def booster():
    return xgb.Booster(model_file=str(DEMO))


@pytest.fixture(scope="module")
def rows() -> np.ndarray:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(700, 30)) * rng.uniform(0.1, 500, size=30)
    X[rng.random(X.shape) < 0.05] = np.nan
    return X


@needs_xgboost
def test_predict_equals_booster_predict(demo, booster, rows):
    want = booster.predict(xgb.DMatrix(rows))
    got = demo.predict(rows)
    assert got.dtype == np.float32 and got.shape == (len(rows),)
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(demo.predict(rows, output_margin=True), booster.predict(xgb.DMatrix(rows), output_margin=True))


def test_input_layouts_and_types(demo, rows):
    """float32/float64, C/Fortran order, non-contiguous views, ints, lists: same answers."""
    want = demo.predict(rows.astype(np.float32))
    np.testing.assert_array_equal(demo.predict(rows), want)  # float64 is cast to float32 as XGBoost does
    np.testing.assert_array_equal(demo.predict(np.asfortranarray(rows)), want)
    wide = np.concatenate([rows, rows], axis=1)
    np.testing.assert_array_equal(demo.predict(wide[:, :30]), want)  # rows 60 apart: a strided view
    np.testing.assert_array_equal(demo.predict(rows[::2]), want[::2])
    ints = np.nan_to_num(rows).astype(np.int64)
    np.testing.assert_array_equal(demo.predict(ints), demo.predict(ints.astype(np.float32)))
    np.testing.assert_array_equal(demo.predict(rows[:3].tolist()), want[:3])
    ro = rows.astype(np.float32)
    ro.flags.writeable = False
    np.testing.assert_array_equal(demo.predict(ro), want)


def test_single_row_and_empty_batches(demo, rows):
    want = demo.predict(rows[:5])
    one = demo.predict(rows[0])
    assert one.shape == (1,) and one[0] == want[0]
    np.testing.assert_array_equal(demo.predict(rows[:1]), want[:1])
    empty = demo.predict(np.zeros((0, 30)))
    assert empty.shape == (0,) and empty.dtype == np.float32


def test_one_row_path_takes_every_layout_and_returns_fresh_arrays(demo, rows):
    """The lean one-row path (`_one_row_path`): (n,) and (1, n) rows of any number type and
    order give the batch's bits; each call returns a new array; anything else is left to the
    batch path's checks (its errors name the expected shape)."""
    want = demo.predict(rows[:2].astype(np.float32))
    r = rows[0]
    for x in (r, r[None, :], r.astype(np.float32), np.asfortranarray(r[None, :]), np.stack([r, r], 1)[:, 0]):
        got = demo.predict(x)
        assert got.shape == (1,) and got.dtype == np.float32 and got.view(np.uint32)[0] == want[:1].view(np.uint32)[0]
    ints = np.nan_to_num(r).astype(np.int32)
    assert demo.predict(ints)[0] == demo.predict(ints[None, :].astype(np.float32))[0]
    assert demo.predict(ints > 0)[0] == demo.predict((ints > 0).astype(np.float32)[None, :])[0]
    a, b = demo.predict(r), demo.predict(r)
    a[0] = -1.0
    assert b[0] == want[0]
    with pytest.raises(TimberError, match="expected 30 features, got 29"):
        demo.predict(r[:29])
    with pytest.raises(TimberError, match="expected numbers"):
        demo.predict(np.array(["1.0"] * 30))
    with pytest.raises(TimberError, match="expected numbers"):
        demo.predict(r.astype(np.complex128))


@needs_xgboost
def test_dataframe_and_sparse_inputs(demo, rows):
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame(rows, columns=[f"f{i}" for i in range(30)])
    np.testing.assert_array_equal(demo.predict(df), demo.predict(rows))
    sp = pytest.importorskip("scipy.sparse")
    dense = np.where(np.isnan(rows), 0.0, rows)
    dense[:, 3] = 0.0
    csr = sp.csr_matrix(dense)
    # an absent entry is missing (NaN), as in xgboost.DMatrix(csr), not 0.0
    as_missing = np.where(dense == 0.0, np.nan, dense)
    np.testing.assert_array_equal(demo.predict(csr), demo.predict(as_missing))
    np.testing.assert_array_equal(demo.predict(csr), xgb.Booster(model_file=str(DEMO)).predict(xgb.DMatrix(csr)))


def test_float_dataframes_convert_at_once_to_the_per_column_values(demo, rows):
    """A frame of float32 and float64 columns (NaN, ±inf, beyond float32) is converted in one go
    (`_from_dataframe`'s fast path) to exactly the values column-by-column casts give."""
    pd = pytest.importorskip("pandas")
    from timber.api import _from_dataframe

    X = rows.copy()
    X[0, :5] = [np.inf, -np.inf, 1e300, -1e-320, -0.0]
    df = pd.DataFrame({f"f{i}": X[:, i].astype(np.float32 if i % 2 else np.float64) for i in range(30)})
    for dtype in (np.float32, np.float64):
        with np.errstate(over="ignore"):
            want = np.column_stack([df[c].to_numpy().astype(dtype) for c in df.columns])
            got = _from_dataframe(df, dtype)
        assert got.dtype == dtype and got.flags.c_contiguous
        assert np.array_equal(got.view(np.uint8), want.view(np.uint8))
    with np.errstate(over="ignore"):
        np.testing.assert_array_equal(demo.predict(df), demo.predict(want.astype(np.float32)))


def test_dataframe_categorical_columns_are_codes():
    pd = pytest.importorskip("pandas")
    m = timber.compile(random_module(3, n_features=3, transform="none", input_type=f32))
    df = pd.DataFrame({"a": [0.5, 1.0, np.nan], "b": pd.Categorical(["x", "z", None], categories=["x", "y", "z"]), "c": [1, 2, 3]})
    want = m.predict(np.array([[0.5, 0, 1], [1.0, 2, 2], [np.nan, np.nan, 3]], np.float32))
    np.testing.assert_array_equal(m.predict(df), want)


def test_threads_give_the_same_bits(demo, rows):
    big = np.tile(rows, (60, 1))  # 42k rows: enough work to split
    one = demo.predict(big, n_jobs=1)
    np.testing.assert_array_equal(demo.predict(big, n_jobs=2), one)
    np.testing.assert_array_equal(demo.predict(big, n_jobs=7), one)
    np.testing.assert_array_equal(timber.compile(DEMO, n_jobs=2).predict(big), one)


def test_metadata(demo):
    assert demo.n_features == 30 and demo.n_outputs == 1
    assert demo.ir.startswith("module") and "tree.ensemble" in demo.ir
    assert "define i32 @timber_infer(ptr noalias %X, i32 %n, ptr noalias %out, ptr %ctx)" in demo.llvm_ir
    assert "30 features -> 1 outputs" in repr(demo)
    assert demo.timings["total"] > 0


def test_compile_module_prefix_and_multi_output():
    m = random_module(4, n_outputs=3, transform="softmax", acc=f32)
    cm = timber.compile(m, prefix="mine_")
    assert "@mine_infer_single(" in cm.llvm_ir
    X = np.random.default_rng(1).normal(size=(40, 5))
    got = cm.predict(X)
    assert got.shape == (40, 3)
    np.testing.assert_array_equal(got, interpret(m, X, math="libm"))
    np.testing.assert_array_equal(cm.predict(X, output_margin=True), interpret(m, X, "margin"))


FRAMEWORK_CASES = [
    ("xgboost", "binary:logistic", {}),
    ("xgboost", "multi:softprob", {"num_class": 4}),
    ("xgboost", "count:poisson", {}),
    ("lightgbm", "binary", {"sigmoid": 0.7}),
    ("lightgbm", "multiclass", {"num_class": 4}),
    # a LightGBM compile costs seconds of codegen here: these three in the slow run
    pytest.param("lightgbm", "multiclassova", {"num_class": 4}, marks=pytest.mark.slow),
    pytest.param("lightgbm", "gamma", {}, marks=pytest.mark.slow),
    pytest.param("lightgbm", "cross_entropy_lambda", {}, marks=pytest.mark.slow),
]


@pytest.mark.parametrize(
    "framework,objective,extra",
    FRAMEWORK_CASES,
    ids=[f"{c[0]}-{c[1]}" if isinstance(c, tuple) else f"{c.values[0]}-{c.values[1]}" for c in FRAMEWORK_CASES],
)
def test_predict_is_the_frameworks_bits_after_exp(framework, objective, extra, tmp_path):
    """With the C library's exp/log1p (the default) probabilities and exp links are the
    framework's exact bits on every row — here 20k rows, with NaN, where Timber's own exp would
    differ on a few."""
    rng = np.random.default_rng(8)
    X = rng.normal(size=(20000, 8))
    X[rng.random(X.shape) < 0.05] = np.nan
    s = np.nan_to_num(X[:, 0]) + np.nan_to_num(X[:, 1]) * np.nan_to_num(X[:, 2])
    if "num_class" in extra:
        y = np.digitize(s, [-1, 0, 1])
    elif objective in ("count:poisson", "gamma"):
        y = np.exp(s / 3) + 0.1
    else:
        y = (s > 0).astype(float)
    if framework == "xgboost":
        if xgb is None:
            pytest.skip("xgboost is not installed")
        b = xgb.train({"objective": objective, "max_depth": 5, "nthread": 1, **extra}, xgb.DMatrix(X[:5000], y[:5000]), 30)
        b.save_model(tmp_path / "m.json")
        want, path = b.predict(xgb.DMatrix(X)), tmp_path / "m.json"
    else:
        lgb = pytest.importorskip("lightgbm")
        b = lgb.train({"objective": objective, "verbose": -1, "num_threads": 1, **extra}, lgb.Dataset(X[:5000], y[:5000]), 30)
        b.save_model(tmp_path / "m.txt")
        want, path = b.predict(X), tmp_path / "m.txt"
    cm = timber.compile(path)
    np.testing.assert_array_equal(cm.predict(X), want)
    assert np.any(timber.compile(path, math="timber").predict(X) != want)  # the rows reach where the exps differ


@pytest.mark.parametrize("transform", ["softmax", "sigmoid", "log1p-exp"])
def test_math_libm_and_timber(transform):
    """`math="libm"` (the default) calls the C library's exp/expf/log1p, lane by lane: the
    interpreter's libm mode bit for bit; `math="timber"` is Timber's own functions: the
    interpreter's default mode bit for bit.  The rows put the margins where the two differ."""
    # linear leaves: every row its own margin, so some land where the two exps differ
    kw = dict(compare=f64, leaves=f64, acc=f64, linear=True) if transform == "log1p-exp" else dict(acc=f32, linear=True)
    m = random_module(9, n_outputs=3 if transform == "softmax" else 1, transform=transform, **kw)
    X = np.random.default_rng(3).normal(size=(3000, 5)) * 4
    libm, own = timber.compile(m), timber.compile(m, math="timber")
    got = libm.predict(X)
    np.testing.assert_array_equal(got, interpret(m, X, math="libm").reshape(got.shape))
    np.testing.assert_array_equal(own.predict(X), interpret(m, X).reshape(got.shape))
    np.testing.assert_array_equal(np.concatenate([libm.predict(X[i : i + 1]) for i in range(0, 3000, 50)]), got[::50])
    assert np.any(got != own.predict(X))  # the rows do tell the two apart
    assert "@exp" in libm.llvm_ir or "@llvm.exp" in libm.llvm_ir
    assert "@x_exp_" in own.llvm_ir and "@llvm.exp" not in own.llvm_ir  # the expansion of math.exp, as a helper
    with pytest.raises(TimberError, match="unknown math 'fast'; choose one of: libm, timber"):
        timber.compile(m, math="fast")


@needs_xgboost
def test_compile_framework_objects():
    booster = xgb.Booster(model_file=str(DEMO))
    X = np.random.default_rng(2).normal(size=(50, 30)).astype(np.float32)
    np.testing.assert_array_equal(timber.compile(booster).predict(X), booster.predict(xgb.DMatrix(X)))
    lgb = pytest.importorskip("lightgbm")
    Xl = np.random.default_rng(3).normal(size=(300, 4))
    bst = lgb.train(
        {"objective": "regression", "verbose": -1, "num_leaves": 7, "num_threads": 1}, lgb.Dataset(Xl, Xl[:, 0] * 2 + Xl[:, 1]), 5
    )
    np.testing.assert_array_equal(timber.compile(bst).predict(Xl), bst.predict(Xl))


def test_passes_are_run_before_lowering(rows):
    pytest.importorskip("passes.manager")
    cm = timber.compile(DEMO, passes="canonicalize")
    np.testing.assert_array_equal(cm.predict(rows), timber.compile(DEMO).predict(rows))
    with pytest.raises(TimberError):
        timber.compile(DEMO, passes="no-such-pass")


def test_user_errors(demo):
    with pytest.raises(TimberError, match="expected 30 features, got 29"):
        demo.predict(np.zeros((4, 29)))
    with pytest.raises(TimberError, match="expected 30 features, got 31"):
        demo.predict(np.zeros(31))
    with pytest.raises(TimberError, match="2-D array"):
        demo.predict(np.zeros((2, 3, 30)))
    with pytest.raises(TimberError, match="expected numbers"):
        demo.predict(np.array([["a"] * 30]))
    with pytest.raises(TimberError, match="model file path"):
        timber.compile(42)
    with pytest.raises(TimberError):
        timber.compile(Path(DEMO).with_name("no_such_model.json"))
    only_predict = builtin.ModuleOp.build({})
    f = func.FuncOp.build("predict", [tensor(2, f32)], [tensor(1, f32)], arg_names=["x"])
    only_predict.body.add_op(f)
    e = f.body.add_op(tree.EnsembleOp.build(f.args[0], 1, f32, f32, f32))
    f.body.add_op(func.ReturnOp(operands=[e.result]))
    cm = timber.compile(only_predict)
    np.testing.assert_array_equal(cm.predict(np.zeros((2, 2))), [0.0, 0.0])
    with pytest.raises(TimberError, match="no @margin"):
        cm.predict(np.zeros((2, 2)), output_margin=True)


def test_catboost_model_object_compiles_and_matches():
    catboost = pytest.importorskip("catboost")
    rng = np.random.default_rng(5)
    X = rng.normal(size=(300, 4))
    y = X[:, 0] - 2 * X[:, 1] + rng.normal(size=300) * 0.1
    m = catboost.CatBoostRegressor(iterations=20, depth=3, verbose=False, allow_writing_files=False, thread_count=1, random_seed=0).fit(
        X, y
    )
    compiled = timber.compile(m)
    np.testing.assert_array_equal(compiled.predict(X), m.predict(X))


@needs_xgboost
def test_default_pipeline_runs_and_changes_no_prediction(tmp_path):
    rng = np.random.default_rng(6)
    X = rng.normal(size=(400, 5)).astype(np.float32)
    y = (X[:, 0] > 0).astype(int)
    b = xgb.train({"objective": "binary:logistic", "max_depth": 4, "nthread": 1}, xgb.DMatrix(X, y), 10)
    path = tmp_path / "m.json"
    b.save_model(str(path))
    optimized = timber.compile(str(path))
    plain = timber.compile(str(path), passes="")
    assert "tree.shape_group" in optimized.ir and "tree.shape_group" not in plain.ir
    Xa = np.vstack([X, np.full((1, 5), np.nan, np.float32)])
    assert optimized.predict(Xa).tobytes() == plain.predict(Xa).tobytes()


def test_status_codes_of_the_compiled_code_are_checked(demo, monkeypatch):
    """A non-zero status from an entry point is an error, not silently uninitialised output."""
    import timber.api as api

    with pytest.raises(TimberError, match=r"timber_infer returned status -3 \(ERR_BOUNDS"):
        api._check_status(-3, "timber_infer")
    X = np.zeros((5000, 30), np.float32)
    real = demo.jit.function("timber_infer")
    monkeypatch.setattr(demo.jit, "function", lambda symbol: (lambda *a: -1) if symbol == "timber_infer" else real)
    with pytest.raises(TimberError, match="returned status -1"):
        demo.predict(X, n_jobs=1)


def test_concurrent_predictions_with_growing_thread_counts(demo, rows):
    """Calls from many threads asking for more and more workers: a pool being grown is never shut
    down under a call that is using it (that raised 'cannot schedule new futures after shutdown')."""
    import concurrent.futures as cf

    X = np.resize(rows, (80_000, rows.shape[1]))  # enough work per row for 8 threads
    want = demo.predict(X, n_jobs=1)
    with cf.ThreadPoolExecutor(8) as ex:
        results = list(ex.map(lambda j: demo.predict(X, n_jobs=j), [1 + i % 8 for i in range(32)]))
    for got in results:
        np.testing.assert_array_equal(got, want)


def test_a_pool_in_use_is_not_shut_down_when_another_call_grows_it(demo):
    """The deterministic form of the race above: a caller holding the 2-worker pool can still
    submit after another call replaced it by a bigger one."""
    small = demo._executor(2)
    big = demo._executor(16)
    assert big is not small and big._max_workers >= 16
    assert small.submit(lambda: 42).result() == 42
