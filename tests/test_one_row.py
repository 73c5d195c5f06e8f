"""The one-row path of `CompiledModel.predict` (`_one_row_path`) and the CPython entry point it is
built on (`backends/llvm/pyentry.py`): for every input it takes it must return exactly what the
general path returns (values, dtype, shape), leave everything else to that path (same errors),
be thread-safe, keep reference counts right, and apply to models loaded from artifacts."""

from __future__ import annotations

import ctypes
import gc
import json
import pickle
import subprocess
import sys
import threading
import tracemalloc
import warnings
import weakref
from pathlib import Path

import numpy as np
import pytest

import timber
from backends.llvm import pyentry
from ir.attributes import IntegerAttr
from ir.diagnostics import TimberError
from ir.types import f64
from tests.irgen import random_module
from timber import api
from timber.api import CompiledModel

DEMO = Path(timber.__file__).parent / "examples" / "breast_cancer_xgb.json"
URDF = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "urdf" / "kuka_iiwa.urdf"
NATIVE = pyentry.available() is None
needs_native = pytest.mark.skipif(not NATIVE, reason=f"no CPython entry point here: {pyentry.available()}")


@pytest.fixture(scope="module")
def demo() -> CompiledModel:
    return timber.compile(DEMO)


def _models():
    """Models covering the entry's cases: float32 / float64 inputs, one output (flat), several
    outputs, integer outputs (argmax), a matrix result of one column, a URDF pose (1, 16)."""
    yield "demo", lambda: timber.compile(DEMO)
    yield "f64-in", lambda: timber.compile(random_module(1, n_features=7, input_type=f64, compare=f64, leaves=f64, acc=f64))
    yield "softmax-3", lambda: timber.compile(random_module(2, n_features=6, n_outputs=3, transform="softmax", vector_leaves=True))
    yield "argmax", lambda: timber.compile(random_module(3, n_features=4, n_outputs=3, transform="argmax", vector_leaves=True))

    def matrix():
        m = random_module(4, n_features=5, transform="none")
        m.attributes["timber.output_rank"] = IntegerAttr(2)
        return timber.compile(m)

    yield "matrix", matrix
    if URDF.exists():
        yield "urdf", lambda: timber.compile(URDF, n_jobs=1, jacobian=False)


MODELS = dict(_models())


@pytest.fixture(scope="module", params=list(MODELS))
def model(request) -> CompiledModel:
    return MODELS[request.param]()


def general(model: CompiledModel, X, **kw):
    """`predict` without the one-row path: the general path's answer (or its exception)."""
    saved = model._one
    model._one = api._no_row
    try:
        return model.predict(X, **kw)
    except Exception as e:  # noqa: BLE001 - compared with the one-row path's
        return e
    finally:
        model._one = saved


def one_row(model: CompiledModel):
    """The model's one-row function (built at its first use)."""
    return model._one or model._first_row()


def lean(model: CompiledModel, X, **kw):
    try:
        return model.predict(X, **kw)
    except Exception as e:  # noqa: BLE001
        return e


def assert_same(got, want, what=""):
    """Same exception (type and message), or same dtype, shape and bytes."""
    if isinstance(want, Exception):
        assert type(got) is type(want) and str(got) == str(want), what
        return
    assert not isinstance(got, Exception), f"{what}: {got}"
    assert type(got) is np.ndarray and got.dtype == want.dtype and got.shape == want.shape, what
    assert got.tobytes() == want.tobytes(), what


def special_rows(n_in: int, rng, thresholds=()) -> np.ndarray:
    """Rows of float64 values a cast or a split can get wrong: NaN, ±0.0, ±inf, beyond float32,
    float32 and float64 subnormals, the model's thresholds and their float32/float64 neighbours,
    and doubles that round to a threshold in float32."""
    specials = [np.nan, -0.0, 0.0, np.inf, -np.inf, 1e300, -1e300, 3.4028235e38, 3.4028236e38, 1e-320, -1e-40, 1e-45, 0.5, -1.0]
    t = np.asarray(thresholds, np.float64)
    t32 = t.astype(np.float32)
    near = [
        t,
        np.nextafter(t, np.inf),
        np.nextafter(t, -np.inf),
        np.nextafter(t32, np.float32(np.inf)).astype(np.float64),
        np.nextafter(t32, np.float32(-np.inf)).astype(np.float64),
        t32.astype(np.float64) + np.abs(t32.astype(np.float64)) * 2.0**-30,  # rounds to t32 in float32
    ]
    pool = np.concatenate([np.asarray(specials, np.float64), *near, rng.normal(size=64) * 100])
    rows = rng.choice(pool, size=(200, n_in))
    rows[:50] = rng.normal(size=(50, n_in)) * rng.uniform(0.1, 50, size=n_in)
    return rows


def demo_thresholds() -> list[float]:
    trees = json.loads(DEMO.read_text())["learner"]["gradient_booster"]["model"]["trees"]
    return [c for t in trees for c, left in zip(t["split_conditions"], t["left_children"], strict=True) if left != -1]


def layouts(row: np.ndarray):
    """One row (float64) in every layout the entry point reads: (n,) and (1, n), float32 and
    float64, C and Fortran order, strided, reversed, misaligned, read-only."""
    n = row.size
    for dt in (np.float64, np.float32):
        with np.errstate(over="ignore"):
            r = row.astype(dt)
        yield f"{dt.__name__} (n,)", r
        yield f"{dt.__name__} (1, n)", r[None, :]
        yield f"{dt.__name__} F (1, n)", np.asfortranarray(r[None, :])
        yield f"{dt.__name__} column of a (n, 2)", np.stack([r, r], 1)[:, 0]
        yield f"{dt.__name__} every other", np.repeat(r, 2)[::2]
        yield f"{dt.__name__} negative strides", np.ascontiguousarray(r[::-1])[::-1]
        yield f"{dt.__name__} (1, n) of a (3, n) slice", np.stack([r, r, r])[1:2]
        raw = np.zeros(n * r.itemsize + 1, np.uint8)
        mis = raw[1:].view(dt)  # misaligned by one byte
        mis[:] = r
        assert mis.ctypes.data % r.itemsize != 0
        yield f"{dt.__name__} misaligned", mis
        ro = r.copy()
        ro.flags.writeable = False
        yield f"{dt.__name__} read-only", ro[None, :]


# ----- parity with the general path -------------------------------------------------------------


def test_one_row_equals_the_general_path_in_every_layout(model):
    rng = np.random.default_rng(5)
    thresholds = demo_thresholds() if model.n_features == 30 else ()
    for i, row in enumerate(special_rows(model.n_features, rng, thresholds)):
        for what, x in layouts(row):
            with np.errstate(all="ignore"):
                want = general(model, x)
                got = lean(model, x)
            assert_same(got, want, f"row {i}, {what}")


def test_lists_equal_the_general_path(model):
    """Lists of floats (one row, or a list holding one row) take the entry point; lists with
    ints, bools, numpy scalars or the wrong length are converted by numpy as before."""
    rng = np.random.default_rng(6)
    rows = special_rows(model.n_features, rng)
    n = model.n_features
    for i, row in enumerate(rows[:60]):
        r = row.tolist()
        cases = [
            r,
            [r],
            [r, r],
            r[:-1],
            [r[:-1]],
            r + [1.0],
            [1] * n,
            [True] + r[1:],
            [np.float64(v) for v in r],
            [r[0]] + [1] * (n - 1),
        ]
        if n > 1:
            cases += [[r[0], [r[1]]] + r[2:], tuple(r), [tuple(r)]]
        for j, x in enumerate(cases):
            with np.errstate(all="ignore"):
                assert_same(lean(model, x), general(model, x), f"row {i}, case {j}")


@pytest.mark.filterwarnings("ignore:the matrix subclass:PendingDeprecationWarning")
def test_inputs_the_entry_point_leaves_to_the_general_path(demo):
    """Other number types, other shapes, subclasses, frames: the general path's answer or error."""
    pd = pytest.importorskip("pandas")
    r = np.random.default_rng(7).normal(size=30) * 10
    cases = {
        "float16": r.astype(np.float16),
        "int32": r.astype(np.int32),
        "int64 (1, n)": r.astype(np.int64)[None, :],
        "uint8": np.abs(r).astype(np.uint8),
        "bool": r > 0,
        "big-endian float64": r.astype(">f8"),
        "big-endian float32 (1, n)": r.astype(">f4")[None, :],
        "float64 with metadata": r.astype(np.dtype(np.float64, metadata={"a": 1})),
        "longdouble": r.astype(np.longdouble),
        "complex": r.astype(np.complex128),
        "strings": np.array(["1.0"] * 30),
        "objects": r.astype(object),
        "0-d": np.array(1.0),
        "scalar": 1.0,
        "(29,)": r[:29],
        "(31,)": np.append(r, 1.0),
        "(1, 29)": r[None, :29],
        "(2, 30)": np.stack([r, r]),
        "(30, 1)": r[:, None],
        "(1, 1, 30)": r[None, None, :],
        "(0, 30)": np.zeros((0, 30)),
        "(1, 0)": np.zeros((1, 0)),
        "matrix": np.asmatrix(r),
        "masked": np.ma.masked_array(r[None, :], mask=r[None, :] > 5),
        "frame": pd.DataFrame(r[None, :], columns=[f"f{i}" for i in range(30)]),
        "float32 frame": pd.DataFrame(r[None, :].astype(np.float32)),
        "memoryview": memoryview(r),
        "None": None,
    }
    for what, x in cases.items():
        with np.errstate(all="ignore"):
            want = general(demo, x)
            got = lean(demo, x)
        assert_same(got, want, what)
        if what in ("(29,)", "(31,)", "(1, 29)", "(30, 1)", "(1, 1, 30)", "(1, 0)", "complex", "strings"):
            assert isinstance(got, TimberError), what
    assert_same(lean(demo, r, output_margin=True), general(demo, r, output_margin=True), "margin")


def test_floating_point_flags_are_reported_as_numpy_does(model):
    """Where numpy's cast reports overflow, underflow or an invalid (signalling NaN) value
    (a warning, an error or nothing, per np.errstate), predict does the same on one row."""
    snan64 = np.array([0x7FF0000000000001], np.uint64).view(np.float64)[0]
    snan32 = np.array([0x7F800001], np.uint32).view(np.float32)[0]
    values = [1e300, -1e300, 3.4028235677973366e38, 3.4028235e38, 1e-40, 1e-50, -1e-46, 2.0**-126, 2.0**-149]
    values += [float(np.float32(1e-40)), float(np.nextafter(np.float32(2.0**-126), np.float32(0))), 1.1754942e-38, np.nan, -0.0, snan64]
    rng = np.random.default_rng(17)

    def run(x, errstate, path):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            with np.errstate(**errstate):
                got = path(model, x)
        return (got if isinstance(got, Exception) else got.tobytes()), [str(w.message) for w in caught]

    for v in values:
        for kind in ("float64", "float32", "list"):
            x = rng.normal(size=model.n_features)
            x[-1] = v
            if kind == "float32":
                with np.errstate(all="ignore"):
                    x = x.astype(np.float32)
                if v is snan64:
                    x[-1] = snan32
            if kind == "list":
                x = x.tolist()
            for errstate in ({}, {"all": "raise"}, {"under": "warn"}, {"all": "ignore"}):
                (a, wa), (b, wb) = run(x, errstate, lean), run(x, errstate, general)
                assert wa == wb, (v, kind, errstate)
                if isinstance(b, Exception):
                    assert type(a) is type(b) and str(a) == str(b), (v, kind, errstate)
                else:
                    assert a == b, (v, kind, errstate)


def test_the_one_row_path_is_built_at_its_first_use():
    """Compiling and loading do not build it (nor compile the entry code), `predict` does;
    a model is freed without the garbage collector (no reference cycle) before and after."""
    m = timber.compile(DEMO)
    jit = weakref.ref(m.jit)
    m.predict(np.zeros((1, 30)), output_margin=True)
    assert m._one is None
    gc.disable()
    try:
        del m
        assert jit() is None
    finally:
        gc.enable()
    m = timber.compile(DEMO)
    want = general(m, np.zeros(30))
    assert_same(m.predict(np.zeros(30)), want)
    assert m._one is not None and (type(m._one).__name__ == "builtin_function_or_method") == NATIVE
    jit = weakref.ref(m.jit)
    gc.disable()
    try:
        del m
        assert jit() is None
    finally:
        gc.enable()


@needs_native
@pytest.mark.filterwarnings("ignore:the matrix subclass:PendingDeprecationWarning")
def test_the_entry_point_takes_float_rows_and_declines_the_rest(demo):
    """What the builtin itself answers (an array) and leaves (None), so that the fast path is
    really taken where it should be."""
    one = one_row(demo)
    assert type(one).__name__ == "builtin_function_or_method"
    r = np.random.default_rng(8).normal(size=30)
    for what, x in layouts(r):
        assert isinstance(one(x), np.ndarray), what
    assert isinstance(one(r.tolist()), np.ndarray) and isinstance(one([r.tolist()]), np.ndarray)
    for x in (
        r.astype(np.float16),
        r.astype(np.int64),
        r.astype(">f8"),
        r[:29],
        np.stack([r, r]),
        [1] * 30,
        None,
        1.0,
        np.asmatrix(r),
        r.tolist() + [1.0],
    ):
        assert one(x) is None


def test_results_are_fresh_arrays(demo):
    r = np.random.default_rng(9).normal(size=(1, 30))
    a, b = demo.predict(r), demo.predict(r)
    assert a is not b and not np.shares_memory(a, b)
    assert a.flags.c_contiguous and a.flags.writeable and a.flags.owndata
    a[0] = -1.0
    assert b[0] != -1.0 and demo.predict(r)[0] == b[0]
    assert sys.getrefcount(demo.predict(r)) <= 2  # the call's argument at most: nobody else holds it


def test_python_one_row_path_equals_the_general_path(model):
    """The Python version of the path (where the entry point cannot be built) gives the same
    answers, numbers of any type included."""
    saved = model._one
    model._one = model._one_row_path(native=False)
    try:
        rng = np.random.default_rng(10)
        for row in special_rows(model.n_features, rng)[:40]:
            for what, x in [*layouts(row), ("int32", np.nan_to_num(row).clip(-1e6, 1e6).astype(np.int32)), ("list", row.tolist())]:
                with np.errstate(all="ignore"):
                    assert_same(lean(model, x), general(model, x), what)
    finally:
        model._one = saved


def test_without_the_entry_point_predict_uses_the_python_path(monkeypatch):
    monkeypatch.setattr(pyentry, "available", lambda: "not here")
    m = timber.compile(DEMO)
    r = np.random.default_rng(18).normal(size=30)
    assert_same(m.predict(r), general(m, r))
    assert type(m._one).__name__ == "function"


# ----- the entry point on its own: conversions, status, stack limit ------------------------------

SINGLE = ctypes.CFUNCTYPE(ctypes.c_int32, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p)


class Recorder:
    """A fake `infer_single` (a ctypes callback): records the input it is given, writes
    `out_value` to each output, returns `status`."""

    def __init__(self, n_in: int, in_dtype, k: int, out_dtype, status: int = 0):
        self.n_in, self.in_dtype, self.k, self.out_dtype, self.status = n_in, np.dtype(in_dtype), k, np.dtype(out_dtype), status
        self.seen: list[np.ndarray] = []
        self.fn = SINGLE(self._call)
        self.address = ctypes.cast(self.fn, ctypes.c_void_p).value

    def _call(self, x, out, ctx):
        assert ctx is None
        buf = (ctypes.c_char * (self.n_in * self.in_dtype.itemsize)).from_address(x)
        self.seen.append(np.frombuffer(bytes(buf), self.in_dtype))
        o = np.frombuffer((ctypes.c_char * (self.k * self.out_dtype.itemsize)).from_address(out), self.out_dtype)
        o[:] = np.arange(self.k) + 0.5 if self.out_dtype.kind == "f" else np.arange(self.k)
        return self.status


@needs_native
@pytest.mark.parametrize("in_dtype", [np.float32, np.float64])
def test_entry_point_converts_exactly_as_numpy_casts(in_dtype):
    rng = np.random.default_rng(11)
    rec = Recorder(9, in_dtype, 2, np.float64)
    one = pyentry.one_row_function(rec.address, 9, in_dtype, np.float64, (1, 2), keep=(rec,))
    taken = 0
    for row in special_rows(9, rng, thresholds=rng.normal(size=20) * 50):
        for what, x in [*layouts(row), ("list", row.tolist()), ("nested list", [row.tolist()])]:
            rec.seen.clear()
            got = one(x)
            try:
                with np.errstate(over="raise", under="raise", invalid="raise"):
                    want = np.ascontiguousarray(np.asarray(x), in_dtype).reshape(-1)
            except FloatingPointError:  # numpy reports something: left to the general path
                assert got is None and not rec.seen, what
                continue
            assert got.shape == (1, 2) and got.dtype == np.float64 and got.tolist() == [[0.5, 1.5]], what
            assert len(rec.seen) == 1 and rec.seen[0].tobytes() == want.tobytes(), what
            taken += 1
    assert taken > 1000


@needs_native
def test_entry_point_status_and_outputs():
    """A status other than OK gives None (the general path then calls again and raises); the
    result has the declared dtype and shape."""
    bad = Recorder(3, np.float32, 1, np.float32, status=-3)
    one = pyentry.one_row_function(bad.address, 3, np.float32, np.float32, (1,), keep=(bad,))
    x = np.ones(3)
    assert one(x) is None and len(bad.seen) == 1
    for out_dtype in (np.float32, np.float64, np.int32, np.int64, np.bool_):
        for shape in ((1,), (4,), (1, 4)):
            rec = Recorder(3, np.float64, shape[-1], out_dtype)
            got = pyentry.one_row_function(rec.address, 3, np.float64, out_dtype, shape, keep=(rec,))(x)
            assert got.dtype == out_dtype and got.shape == shape and got.flags.owndata
    with pytest.raises(ValueError, match="not supported"):
        pyentry.one_row_function(rec.address, 3, np.float16, np.float32, (1,))
    with pytest.raises(ValueError, match="unsupported entry"):
        pyentry.one_row_function(rec.address, 3, np.float32, np.float32, (2, 1))


@needs_native
def test_wide_rows_convert_on_the_stack_up_to_the_limit():
    """Rows that need a conversion are converted on the stack up to MAX_STACK_ELEMENTS values;
    wider ones are left to the general path, except when they need no conversion."""
    limit = pyentry.MAX_STACK_ELEMENTS
    for n, takes_f64 in ((limit, True), (limit + 1, False)):
        rec = Recorder(n, np.float32, 1, np.float32)
        one = pyentry.one_row_function(rec.address, n, np.float32, np.float32, (1,), keep=(rec,))
        x = np.random.default_rng(n).normal(size=n)
        assert (one(x) is not None) == takes_f64
        assert (one(x.tolist()) is not None) == takes_f64
        assert one(x.astype(np.float32)) is not None  # passed as is
        assert (one(x.astype(np.float32)[::-1]) is not None) == takes_f64  # strided: copied


@needs_native
def test_released_gil_path(monkeypatch):
    """Models whose row takes long run it without the GIL: same answers, from several threads."""
    monkeypatch.setattr(api, "RELEASE_GIL_WORK", 0)
    m = timber.compile(DEMO)
    ref = timber.compile(DEMO)
    rows = np.random.default_rng(12).normal(size=(64, 30)) * 20
    want = [general(ref, r) for r in rows]
    errors = []

    def work():
        for _ in range(20):
            for r, w in zip(rows, want, strict=True):
                if m.predict(r).tobytes() != w.tobytes():
                    errors.append(r)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors


# ----- threads, reference counts, leaks, lifetime ------------------------------------------------


def test_threads_share_one_model(demo):
    rows = np.random.default_rng(13).normal(size=(100, 30)) * 20
    want = [general(demo, r[None, :]) for r in rows]
    errors = []
    barrier = threading.Barrier(4)

    def work(seed):
        barrier.wait()
        order = np.random.default_rng(seed).permutation(len(rows))
        for _ in range(30):
            for i in order:
                x = rows[i] if seed % 2 else rows[i].astype(np.float32)[None, :]
                if demo.predict(x).tobytes() != want[i].tobytes() or demo.predict(rows[i].tolist()).tobytes() != want[i].tobytes():
                    errors.append(i)

    threads = [threading.Thread(target=work, args=(s,)) for s in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors


def test_reference_counts_and_memory_stay_flat(demo):
    r = np.random.default_rng(14).normal(size=(1, 30))
    rl = r[0].tolist()
    f32 = r.astype(np.float32)
    bad = r[:, :29]
    probes = [r, f32, rl, bad, np.dtype(np.float32), np.dtype(np.float64), rl[0], one_row(demo)]
    for _ in range(100):  # warm every path (numpy caches, ctypes, exceptions)
        demo.predict(r), demo.predict(rl), demo.predict(f32[0]), lean(demo, bad)
    gc.collect()
    before = [sys.getrefcount(p) for p in probes]
    tracemalloc.start()
    try:
        snap0 = tracemalloc.take_snapshot()
        for _ in range(20_000):
            demo.predict(r)
            demo.predict(rl)
            demo.predict(f32[0])
            one_row(demo)(None)
        for _ in range(500):
            lean(demo, bad)
        gc.collect()
        snap1 = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    assert [sys.getrefcount(p) for p in probes] == before
    grown = sum(s.size_diff for s in snap1.compare_to(snap0, "filename"))
    assert grown < 64 * 1024, grown


def test_the_function_keeps_the_model_code_alive_and_is_freed_with_it():
    m = timber.compile(DEMO)
    one, jit = one_row(m), weakref.ref(m.jit)
    x = np.random.default_rng(15).normal(size=30)
    want = m.predict(x)
    del m
    gc.collect()
    assert jit() is not None  # the function still owns the machine code it calls
    assert one(x).tobytes() == want.tobytes()
    del one
    gc.collect()
    assert jit() is None


@needs_native
def test_under_python_dev_mode():
    """Many calls of every path in a `python -X dev` interpreter (debug allocator hooks, all
    warnings): no crash, no warning, the same answers as the general path."""
    code = f"""
import sys, warnings, numpy as np
sys.path.insert(0, {str(Path(__file__).resolve().parents[1])!r})
warnings.simplefilter("error")
import timber
from ir.diagnostics import TimberError
from timber import api
m = timber.compile({str(DEMO)!r})
m.predict(np.zeros(30))
assert type(m._one).__name__ == "builtin_function_or_method"
rng = np.random.default_rng(0)
for i in range(3000):
    r = rng.normal(size=30) * 20
    r[rng.random(30) < 0.1] = np.nan
    xs = [r, r[None, :], r.astype(np.float32), r.tolist(), [r.tolist()], np.nan_to_num(r).astype(np.int64), np.repeat(r, 2)[::2]]
    got = [m.predict(x) for x in xs]
    m._one = api._no_row
    want = [m.predict(x) for x in xs]
    m._one = m._one_row_path()
    assert all(g.tobytes() == w.tobytes() and g.shape == w.shape for g, w in zip(got, want))
    try:
        m.predict(r[:29])
    except TimberError:
        pass
print("ok")
"""
    res = subprocess.run([sys.executable, "-X", "dev", "-c", code], capture_output=True, text=True, timeout=600)
    assert res.returncode == 0 and res.stdout.strip() == "ok", res.stderr[-3000:]


# ----- models from artifacts ----------------------------------------------------------------------


def test_models_from_artifacts_and_pickles_take_the_entry_point(demo):
    from timber.artifact import from_artifact, to_artifact

    rows = special_rows(30, np.random.default_rng(16), demo_thresholds())[:80]
    data = to_artifact(demo)
    for loaded in (from_artifact(data), from_artifact(data, trust_code=False), pickle.loads(pickle.dumps(demo))):
        assert type(one_row(loaded)).__name__ == type(one_row(demo)).__name__
        for row in rows:
            for what, x in [*layouts(row), ("list", row.tolist())]:
                with np.errstate(all="ignore"):
                    assert_same(lean(loaded, x), general(demo, x), what)
