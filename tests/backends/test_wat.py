"""The WAT back-end: modules run in wasmtime and compared with the IR interpreter bit for bit on
adversarial rows; ABI, memory layout and the JS loader (under Node.js when installed)."""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from backends.common.plan import elem_size, plan_module
from backends.wat import emit_wat, emit_wat_bundle, write_wat
from ir.diagnostics import TimberError
from ir.interpreter import run
from ir.types import f32, f64, tensor

wasmtime = pytest.importorskip("wasmtime")

_spec = importlib.util.spec_from_file_location("timber_backend_models", Path(__file__).with_name("test_c99_wat_models.py"))
models = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(models)


class WasmModel:
    """An instantiated WAT module, callable per export through its exported memory."""

    def __init__(self, module, prefix: str = "timber_", **kw):
        self.module = module
        self.prefix = prefix
        self.wat = emit_wat(module, prefix, **kw)
        engine = wasmtime.Engine()
        self.store = wasmtime.Store(engine)
        self.instance = wasmtime.Instance(self.store, wasmtime.Module(engine, self.wat), [])
        self.ex = self.instance.exports(self.store)
        self.memory = self.ex["memory"]
        self.exports = {e.func.sym_name: e for e in plan_module(module, prefix, "wat").exports}

    def g(self, name: str) -> int:
        return self.ex[self.prefix + name].value(self.store)

    def __call__(self, X, name: str = "predict") -> np.ndarray:
        e = self.exports[name]
        X = np.ascontiguousarray(X, e.in_elem.numpy)
        in_ptr, out_ptr, rows = self.g("input_ptr"), self.g("output_ptr"), self.g("batch_rows")
        out_dt = np.dtype(e.out_elem.numpy).newbyteorder("<")
        outs = []
        fn = self.ex[e.batch_symbol]
        for s in range(0, len(X), rows):
            chunk = X[s : s + rows]
            self.memory.write(self.store, chunk.astype(chunk.dtype.newbyteorder("<")).tobytes(), in_ptr)
            self.memory.write(self.store, b"\x7b" * (len(chunk) * e.n_out * out_dt.itemsize), out_ptr)  # canary
            assert fn(self.store, in_ptr, len(chunk), out_ptr, 0) == 0
            raw = self.memory.read(self.store, out_ptr, out_ptr + len(chunk) * e.n_out * out_dt.itemsize)
            outs.append(np.frombuffer(bytes(raw), out_dt).reshape(len(chunk), e.n_out))
        return np.concatenate(outs).astype(e.out_elem.numpy) if outs else np.zeros((0, e.n_out), e.out_elem.numpy)


_built: dict[str, WasmModel] = {}


def built(name: str) -> WasmModel:
    if name not in _built:
        _built[name] = WasmModel(models.MODELS[name]())
    return _built[name]


@pytest.mark.parametrize("name", sorted(models.MODELS))
def test_every_export_matches_the_interpreter(name):
    wm = built(name)
    for fname in wm.exports:
        X = models.adversarial_rows(wm.module, func_name=fname)
        models.assert_same_bits(wm(X, fname), run(wm.module, X, fname))


@pytest.mark.parametrize("el", [f64, f32], ids=["f64", "f32"])
def test_exp_is_timbers_exp_bit_for_bit(el):
    from ir.dialects.mathimpl import exp as mathfn  # the exp expansion's constants

    rng = np.random.default_rng(8)
    dt = el.numpy.type
    edges = [mathfn.OVERFLOW, mathfn.UNDERFLOW, -708.4, -709.1, 0.0, -0.0, 88.72, -87.33, -103.97, np.nan, np.inf, -np.inf]
    with np.errstate(over="ignore"):
        vals = [np.array(edges).astype(dt), rng.uniform(-750, 712, 30000).astype(dt), rng.uniform(-745.2, -708, 5000).astype(dt)]
    vals += [np.nextafter(np.array(e, dt), np.array(s, dt)) for e in edges[:4] for s in (-np.inf, np.inf)]
    X = np.concatenate([np.atleast_1d(v) for v in vals]).reshape(-1, 1)
    m = models.math_module("exp", el)
    models.assert_same_bits(WasmModel(m, batch_rows=4096)(X), run(m, X))


@pytest.mark.parametrize("el", [f64, f32], ids=["f64", "f32"])
def test_fmath_exp_and_softmax_are_timbers_bit_for_bit(el):
    m = models.math_module("fmath", el)
    X = np.random.default_rng(5).uniform(-720, 720, 30000).astype(el.numpy.type)
    X[:4] = [np.nan, np.inf, -np.inf, -0.0]
    cm = WasmModel(m, batch_rows=4096)
    models.assert_same_bits(cm(X.reshape(-1, 1)), run(m, X.reshape(-1, 1)))
    X3 = (np.random.default_rng(6).normal(size=(3000, 3)) * 20).astype(el.numpy.type)
    models.assert_same_bits(cm(X3, "softmax"), run(m, X3, "softmax"))


@pytest.mark.parametrize("el", [f64, f32], ids=["f64", "f32"])
def test_log1p_is_timbers_log1p_bit_for_bit(el):
    from tests.rows import log1p_inputs

    m = models.math_module("log1p", el)
    X = log1p_inputs(el.numpy.type).reshape(-1, 1)
    models.assert_same_bits(WasmModel(m, batch_rows=4096)(X), run(m, X))


@pytest.mark.parametrize("fname", models.arith_functions(models.int_zoo()))
def test_int_ops_match_the_interpreter(fname):
    """Each integer/bit op (wrapping i32/i64 arithmetic, shifts by >= width and by negative
    amounts, signed and unsigned compares, bit casts of NaN payloads, saturating fptosi of NaN,
    ±inf and huge values, lookups at negative and huge indices, i1 logic, extract/broadcast)."""
    if "int_zoo" not in _built:
        _built["int_zoo"] = WasmModel(models.int_zoo(), batch_rows=4096)
    wm = _built["int_zoo"]
    for X in (models.int_rows(wm.module, fname), models.adversarial_rows(wm.module, func_name=fname)):
        models.assert_same_bits(wm(X, fname), run(wm.module, X, fname))


@pytest.mark.parametrize("el", [f64, f32], ids=["f64", "f32"])
@pytest.mark.parametrize("spec", models.MATH_OPS)
def test_math_expansion_is_the_interpreters_bit_for_bit(spec, el):
    """Every math function with an arith expansion (mathimpl.EXPANSIONS; names not registered yet
    are skipped) on 10^5 adversarial inputs, one element per call and 12 per call."""
    from ir.dialects import mathimpl

    if spec.partition(":")[0] not in mathimpl.EXPANSIONS:
        pytest.skip(f"{spec} has no arith expansion yet")
    m = models.math_op_module(spec, el)
    X = models.math_inputs(el.numpy.type)
    assert X.size >= 100_000
    wm = WasmModel(m, batch_rows=8192)
    models.assert_same_bits(wm(X.reshape(-1, 1)), run(m, X.reshape(-1, 1), math="timber"))
    models.assert_same_bits(wm(X.reshape(-1, 12), "wide"), run(m, X.reshape(-1, 12), "wide", math="timber"))


def test_every_registered_op_is_lowered_or_refused_by_name():
    """Walk ir.opdef.OP_REGISTRY: every op has a table entry or an arith expansion, or emitting a
    module that uses it fails naming the op and the back-end."""
    from backends.wat.emit import LOWERINGS, lowering_of
    from ir.dialects import math, mathimpl
    from ir.opdef import OP_REGISTRY

    structure = {"builtin.module", "func.func", "tree.tree", "tree.oblivious"}  # never an op of a function body
    refused = []
    for name, cls in sorted(OP_REGISTRY.items()):
        kind = lowering_of(cls)
        if kind == "table":
            assert cls in LOWERINGS
        elif kind == "expansion":
            assert name in mathimpl.EXPANSIONS and cls not in LOWERINGS
        else:
            assert kind is None
            refused.append(name)
            m = models.new_module(source=f"hand/{name}.tir")
            f, x = models.add_func(m, "predict", tensor(1, f32), tensor(1, f32))
            models.ret(f, models.add(f, cls(operands=[x] if cls.operand_defs else [], result_types=[tensor(1, f32)])))
            with pytest.raises(TimberError, match=f"the WAT back-end cannot lower '{re.escape(name)}'"):
                emit_wat(m)
    assert all(n in structure or n.startswith("math.") for n in refused), refused
    for cls in (math.ExpOp, math.Log1pOp, math.SigmoidOp, math.SoftmaxOp):
        assert lowering_of(cls) == "expansion"
    for name, cls in OP_REGISTRY.items():
        if name.startswith("arith."):
            assert lowering_of(cls) == "table", name


def test_multiclass_large_model_and_batches_larger_than_the_buffer():
    """500 trees (round-robin over 4 classes, depth 5) with softmax; 3.5 input buffers of rows."""
    module = models.random_forest(500, 12, 4, 5, seed=5, missings=("nan", None), cat_p=0.05)
    wm = WasmModel(module, batch_rows=64)
    X = models.adversarial_rows(module, n_random=150)[:224]
    models.assert_same_bits(wm(X), run(module, X))
    models.assert_same_bits(wm(X, "margin"), run(module, X, "margin"))


def test_abi_globals_and_memory_layout():
    wm = built("catboost_like")
    assert wm.g("n_features") == 4 and wm.g("n_outputs") == 2 and wm.g("abi_version") == 1
    assert wm.g("margin_n_outputs") == 2
    in_ptr, out_ptr, rows, heap = wm.g("input_ptr"), wm.g("output_ptr"), wm.g("batch_rows"), wm.g("heap_base")
    assert in_ptr % 8 == 0 and out_ptr % 8 == 0 and in_ptr > 16
    assert out_ptr >= in_ptr + rows * 4 * 4 and heap >= out_ptr + rows * 2 * 8
    assert wm.memory.data_len(wm.store) >= heap
    # The module imports nothing.
    assert not re.search(r"\(import\b", wm.wat)
    assert len(wasmtime.Module(wasmtime.Engine(), wm.wat).imports) == 0


def test_error_codes_instead_of_traps():
    wm = built("xgb_binary")
    e = wm.exports["predict"]
    infer, single = wm.ex[e.batch_symbol], wm.ex[e.single_symbol]
    in_ptr, out_ptr = wm.g("input_ptr"), wm.g("output_ptr")
    size = wm.memory.data_len(wm.store)
    assert infer(wm.store, in_ptr, -1, out_ptr, 0) == -3
    assert infer(wm.store, 0, 1, out_ptr, 0) == -1
    assert infer(wm.store, in_ptr, 1, 0, 0) == -1
    assert infer(wm.store, 0, 0, 0, 0) == 0
    assert infer(wm.store, size - 8, 1, out_ptr, 0) == -3  # the row would run past the end of memory
    assert infer(wm.store, in_ptr, 2**30, out_ptr, 0) == -3
    assert single(wm.store, in_ptr, size - 2, 0) == -3
    assert single(wm.store, 0, out_ptr, 0) == -1
    # Memory grown by the host is usable for buffers past heap_base.
    base = wm.memory.data_len(wm.store)
    wm.memory.grow(wm.store, 1)
    X = models.adversarial_rows(wm.module, n_random=10)
    wm.memory.write(wm.store, X.tobytes(), base)
    assert infer(wm.store, base, len(X), base + X.nbytes, 0) == 0
    got = np.frombuffer(bytes(wm.memory.read(wm.store, base + X.nbytes, base + X.nbytes + 4 * len(X))), np.float32).reshape(-1, 1)
    models.assert_same_bits(got, run(wm.module, X))


def test_single_row_entry_point():
    wm = built("lgb_binary")
    e = wm.exports["predict"]
    X = models.adversarial_rows(wm.module, n_random=10)
    batch = wm(X)
    in_ptr, out_ptr = wm.g("input_ptr"), wm.g("output_ptr")
    for i in range(len(X)):
        wm.memory.write(wm.store, X[i].tobytes(), in_ptr)
        assert wm.ex[e.single_symbol](wm.store, in_ptr, out_ptr, 0) == 0
        got = np.frombuffer(bytes(wm.memory.read(wm.store, out_ptr, out_ptr + 8)), np.float64)
        models.assert_same_bits(got, batch[i])


def test_text_uses_hex_floats_saturating_conversions_and_prefix():
    wat = emit_wat(models.lgb_binary(), "gbm_")
    assert '(export "gbm_infer")' in wat and '(export "gbm_infer_single")' in wat and '(export "gbm_infer_margin")' in wat
    assert "(f64.const 0x1.62e42fefa39efp+9)" in wat  # exp's overflow bound, exactly
    assert "(f32.const -0x1p-2)" in emit_wat(models.xgb_binary())  # the ensemble's init, -0.25
    assert "trunc_sat" in wat and not re.search(r"trunc_f(32|64)_[su]", wat)
    assert not re.search(r"const -?\d+\.\d*e", wat)  # no decimal float literals
    # An exact NaN payload survives as a constant.
    from backends.wat.emit import wat_float

    nan = np.array(0x7FC00123, np.uint32).view(np.float32)
    assert wat_float(nan, f32) == "(f32.const nan:0x400123)"
    assert wat_float(-np.float64(np.inf), f64) == "(f64.const -inf)"


def test_memory_is_sized_to_the_model():
    small = emit_wat(models.xgb_binary())
    big = emit_wat(models.random_forest(300, 8, 1, 6, seed=9))
    pages = lambda w: int(re.search(r'\(memory \(export "memory"\) (\d+)\)', w).group(1))  # noqa: E731
    assert pages(small) == 1 and pages(big) > pages(small)


def test_write_wat_and_refusal(tmp_path):
    paths = write_wat(models.xgb_binary(), tmp_path, wasm=True)
    assert sorted(Path(p).name for p in paths) == ["model.js", "model.wasm", "model.wat"]
    assert (tmp_path / "model.wasm").read_bytes()[:4] == b"\0asm"
    with pytest.raises(TimberError, match=r"model\.(js|wat|wasm)"):
        write_wat(models.lgb_binary(), tmp_path)
    write_wat(models.lgb_binary(), tmp_path, force=True)


def test_unsupported_module_is_reported():
    m = models.new_module(source="hand/none.tir")
    models.ensemble_func(m, "margin", 2, 1, [])
    with pytest.raises(TimberError, match="no @predict"):
        emit_wat(m)


@pytest.mark.skipif(shutil.which("node") is None, reason="Node.js not installed")
@pytest.mark.parametrize("name", ["multiclass_softmax", "lgb_binary", "arith_zoo"])
def test_js_loader_under_node(name, tmp_path):
    module = models.MODELS[name]()
    bundle = emit_wat_bundle(module, batch_rows=16)  # rows below are several buffers long
    (tmp_path / "model.js").write_text(bundle["model.js"])
    (tmp_path / "model.wasm").write_bytes(bytes(wasmtime.wat2wasm(bundle["model.wat"])))
    exports = plan_module(module, "timber_", "wat").exports
    fn = "argmax" if name == "arith_zoo" else "margin"
    X = models.adversarial_rows(module, n_random=40)
    (tmp_path / "rows.bin").write_bytes(X.tobytes())
    script = """
const fs = require("fs");
const { load } = require("./model.js");
(async () => {
  const model = await load(fs.readFileSync("model.wasm"));
  const b = fs.readFileSync("rows.bin");
  const ab = b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength);
  const In = INPUT === "f32" ? Float32Array : Float64Array;
  for (const name of ["predict", FN]) {
    const y = model.predict(new In(ab), name);
    fs.writeFileSync(name + ".bin", Buffer.from(y.buffer, y.byteOffset, y.byteLength));
  }
  // Rows as arrays of numbers give the same result.
  const rows = Array.from({ length: 3 }, (_, i) => Array.from(new In(ab, i * NF * In.BYTES_PER_ELEMENT, NF)));
  const a = model.predict(rows), b2 = model.predict(new In(ab, 0, 3 * NF));
  if (Buffer.compare(Buffer.from(a.buffer), Buffer.from(b2.buffer)) !== 0) throw new Error("array rows differ");
})().catch((e) => { console.error(e); process.exit(1); });
"""
    pr = exports[0]
    script = (
        script.replace("INPUT", json.dumps("f32" if pr.in_elem == f32 else "f64")).replace("FN", json.dumps(fn)).replace("NF", str(pr.n_in))
    )
    (tmp_path / "run.js").write_text(script)
    r = subprocess.run(["node", "run.js"], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    for e in exports:
        if e.func.sym_name not in ("predict", fn):
            continue
        got = np.frombuffer((tmp_path / f"{e.func.sym_name}.bin").read_bytes(), e.out_elem.numpy).reshape(len(X), e.n_out)
        models.assert_same_bits(got, run(module, X, e.func.sym_name))


@pytest.mark.parametrize("rel", models.CORPUS_FAST)
def test_corpus_model(rel):
    module = models.corpus_module(rel)
    wm = WasmModel(module)
    for fname in wm.exports:
        X = models.adversarial_rows(module, func_name=fname, max_rows=3000)
        models.assert_same_bits(wm(X, fname), run(module, X, fname))


@pytest.mark.slow
@pytest.mark.parametrize("rel", models.corpus_files())
def test_corpus_sweep(rel):
    """Every XGBoost/LightGBM file of the corpus (the large ones too)."""
    module = models.corpus_module(rel)
    wm = WasmModel(module)
    X = models.adversarial_rows(module, max_rows=20000)
    models.assert_same_bits(wm(X), run(module, X))


def test_frontend_models_when_available(tmp_path):
    xgbfe = pytest.importorskip("timber.frontends.xgboost")
    xgb = pytest.importorskip("xgboost")
    if not hasattr(xgbfe, "load"):
        pytest.skip("timber.frontends.xgboost has no load() yet")
    rng = np.random.default_rng(4)
    X = rng.normal(size=(300, 5)).astype(np.float32)
    y = rng.integers(0, 3, 300)
    booster = xgb.train({"objective": "multi:softprob", "num_class": 3, "max_depth": 3, "seed": 0, "nthread": 1}, xgb.DMatrix(X, y), 5)
    path = tmp_path / "m.json"
    booster.save_model(str(path))
    module = xgbfe.load(str(path))
    wm = WasmModel(module)
    rows = models.adversarial_rows(module)
    models.assert_same_bits(wm(rows), run(module, rows))
    finite = rows[~np.isinf(rows).any(axis=1)]
    # Against XGBoost itself: margins are exact, but XGBoost's softmax calls the C library's expf
    # while math.softmax uses Timber's exp (f64 exp rounded once), so probabilities may differ by
    # 1 ulp where glibc's expf is not correctly rounded (a front-end matter, reported).
    np.testing.assert_array_equal(wm(finite, "margin"), booster.predict(xgb.DMatrix(finite, missing=np.nan), output_margin=True))
    np.testing.assert_array_max_ulp(wm(finite), booster.predict(xgb.DMatrix(finite, missing=np.nan)), maxulp=1)


def test_elem_sizes_used_by_the_layout():
    from ir.types import IntegerType

    assert [elem_size(t) for t in (f32, f64, IntegerType(1), IntegerType(64))] == [4, 8, 1, 8]


@pytest.mark.parametrize("seed,options", models.IRGEN_CONFIGS, ids=[str(s) for s, _ in models.IRGEN_CONFIGS])
def test_random_modules_from_irgen(seed, options):
    module = models.irgen_module(seed, options)
    wm = WasmModel(module)
    for fname in wm.exports:
        X = models.adversarial_rows(module, func_name=fname, seed=seed)
        models.assert_same_bits(wm(X, fname), run(module, X, fname))


# ----- property ---------------------------------------------------------------------------------------

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from hypothesis.extra import numpy as hnp  # noqa: E402


@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_random_rows_property(data):
    """Any rows at all (every float bit pattern class) give the interpreter's bits."""
    wm = built(data.draw(st.sampled_from(["xgb_binary", "lgb_binary", "predicate_zoo", "catboost_like"])))
    ex = wm.exports["predict"]
    dt = ex.in_elem.numpy
    X = data.draw(hnp.arrays(dt, (data.draw(st.integers(1, 40)), ex.n_in), elements=st.floats(width=8 * np.dtype(dt).itemsize)))
    models.assert_same_bits(wm(X), run(wm.module, X))
