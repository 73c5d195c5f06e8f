"""CatBoost CTR features (timber/frontends/catboost_ctr.py): models trained here with every CTR
type CatBoost 1.2 writes on CPU (Borders, Buckets, Counter, BinarizedTargetMeanValue; FeatureFreq
is GPU-only and shares Counter's formula), combinations of categorical features with binarized
float features (AsIs, AsFalse, AsTrue) and one-hot values (max_ctr_complexity 2 and 3), binary,
multiclass and regression, oblivious and Depthwise trees; compiled from .cbm, from the JSON export and from the model
object, and compared with `model.predict` bit for bit (RawFormulaVal) on rows holding training
categories, unseen categories of every string length 1..9 ("-16777216"), float features on
their borders and one ulp either side, NaN/±inf; input codes no string is made of (NaN,
fractions, out of range) against CatBoost given a string it never saw.  Also the CTR corpus
models, the C99 and WAT back-ends and the JIT on CTR models, and the errors for broken CTR data."""

from __future__ import annotations

import ctypes
import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

catboost = pytest.importorskip("catboost")

from ir.diagnostics import TimberError  # noqa: E402
from ir.interpreter import run  # noqa: E402
from timber.frontends import catboost as tc  # noqa: E402
from timber.frontends import catboost_ctr as cc  # noqa: E402

F32 = np.float32
BOUND = 2**24  # codes up to 8 digits: every CityHash short-string length, 1..9 bytes
UNSEEN = "never seen!"  # what CatBoost gets where Timber's input holds a code no string is made of
PROBA_TOL = 8 * 2.0**-52  # the sigmoid/softmax of an exact margin: see test_catboost.py
CORPUS = Path(__file__).resolve().parents[2].parent / "shared" / "corpus" / "catboost-cgo"

# Category codes: small, negative, and long ones whose strings take every CityHash length class.
CODES = {
    1: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11],
    2: [-6, -5, -3, -1, 0, 2, 4, 42, 100, -100],
    3: [1234, -1234, 99999, 10000000, -16777216, 16777216, -9999999, 123456, -1000000, 7],
    4: [5, 6],  # two values: one-hot (one_hot_max_size=2), and one-hot elements in combinations
}
CAT = [1, 2, 3, 4]
N_COLS = 6


def _frame(rng, n: int):
    """(CatBoost rows: object array with category strings, their codes as float32)."""
    codes = np.zeros((n, N_COLS), np.float64)
    codes[:, 0] = rng.normal(size=n)
    codes[:, 5] = np.where(rng.random(n) < 0.1, np.nan, rng.normal(size=n))
    for f in CAT:
        codes[:, f] = rng.choice(CODES[f], n)
    return _objects(codes), codes.astype(F32)


def _objects(codes) -> np.ndarray:
    X = np.empty(codes.shape, object)
    for i, row in enumerate(codes):
        for f, v in enumerate(row):
            X[i, f] = (str(int(v)) if float(v).is_integer() and abs(v) <= BOUND else UNSEEN) if f in CAT else float(v)
    return X


def _train(kind: str, rng, **params):
    X, _ = _frame(rng, 400)
    c1, c2, c3 = (np.array([int(v) for v in X[:, f]]) for f in (1, 2, 3))
    signal = (c1 % 3) + (c2 > 0) + (c3 % 2) + X[:, 0].astype(float) + (X[:, 4] == "5")
    common = dict(iterations=12, depth=3, one_hot_max_size=2, verbose=0, cat_features=CAT, random_seed=0, thread_count=1)
    common.update(params)
    if kind in ("binary", "binary-nan"):
        m = catboost.CatBoostClassifier(**common)
        if kind == "binary":  # a CTR feature against the one-hot one: combinations with one-hot elements
            y = (c1 % 3 == 0) ^ (X[:, 4] == "5")
        else:  # against a float feature holding NaN: binarized float elements, NaN as nan_mode says
            y = (c1 % 3 == 0) ^ ~(X[:, 5].astype(float) < 0.3)
        m.fit(X, (y ^ (rng.random(len(X)) < 0.1 * (c2 > 0))).astype(int))
    elif kind == "multiclass":
        m = catboost.CatBoostClassifier(loss_function="MultiClass", **common)
        m.fit(X, np.digitize(signal + rng.normal(size=len(X)) * 0.5, [2.0, 3.0]))
    else:
        m = catboost.CatBoostRegressor(**common)
        m.fit(X, signal + rng.normal(size=len(X)) * 0.3)
    return m


MODELS = {  # name: (kind, seed, parameters)
    "binary-combinations": ("binary", 0, dict(depth=4, max_ctr_complexity=2, simple_ctr=["Borders", "Counter", "Buckets"])),
    "binary-nan-as-true": ("binary-nan", 0, dict(depth=4, max_ctr_complexity=2, nan_mode="Max")),
    "binary-nan-as-false": ("binary-nan", 0, dict(depth=4, max_ctr_complexity=2, nan_mode="Min")),
    "multiclass-depthwise": (
        "multiclass",
        2,
        dict(max_ctr_complexity=2, simple_ctr=["Borders", "Buckets", "Counter"], grow_policy="Depthwise"),
    ),
    "regression": (
        "regression",
        3,
        dict(
            max_ctr_complexity=3,
            simple_ctr=["Borders", "Buckets", "Counter", "BinarizedTargetMeanValue"],
            combinations_ctr=["Borders", "Counter", "BinarizedTargetMeanValue"],
        ),
    ),
}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """{name: (model, .cbm path, .json path)}, trained once for the module."""
    d = tmp_path_factory.mktemp("ctr")
    out = {}
    for name, (kind, seed, params) in MODELS.items():
        m = _train(kind, np.random.default_rng(seed), **params)
        cbm, js = d / f"{name}.cbm", d / f"{name}.json"
        m.save_model(str(cbm))
        m.save_model(str(js), format="json")
        out[name] = (m, cbm, js)
    return out


def _borders(doc) -> dict[int, list[float]]:
    """Float column -> every border of that feature and its float32 neighbours."""
    out = {}
    for f in doc["features_info"].get("float_features", []):
        vals = set()
        for b in f["borders"]:
            b = F32(b)
            vals.update([float(b), float(np.nextafter(b, F32(-np.inf))), float(np.nextafter(b, F32(np.inf)))])
        out[f["flat_feature_index"]] = sorted(vals)
    return out


def _rows(doc, rng, n: int = 300) -> np.ndarray:
    """Codes: training categories, unseen valid codes of every length, codes no string is made of,
    float features on and around their borders and NaN/±inf."""
    _, codes = _frame(rng, n)
    codes = codes.astype(np.float64)
    borders = _borders(doc)
    for f in CAT:
        r = rng.random(n)
        unseen = rng.choice([-1, 1], n) * np.floor(10 ** rng.uniform(0, np.log10(BOUND), n))
        odd = rng.choice([np.nan, 0.5, -2.25, np.inf, -np.inf, BOUND + 2.0, -1e9, 3e9], n)
        codes[:, f] = np.where(r < 0.25, unseen, np.where(r < 0.35, odd, codes[:, f]))
    codes[:2, 3] = [-16777216, 16777216]  # "-16777216": the 9-byte string
    codes[2, 1] = -0.0  # -0.0 is the code 0
    for f, vals in borders.items():
        pick = rng.random(n) < 0.5
        codes[:, f] = np.where(pick, rng.choice(vals + [np.nan, np.inf, -np.inf, -0.0], n), codes[:, f])
    return codes.astype(F32)


def _reference(model, codes, kind: str):
    return model.predict(catboost.Pool(_objects(codes.astype(np.float64)), cat_features=CAT), prediction_type=kind)


def _check(module, model, codes, proba: bool):
    raw = _reference(model, codes, "RawFormulaVal")
    np.testing.assert_array_equal(run(module, codes, "margin").reshape(raw.shape), raw)
    if proba:
        p = _reference(model, codes, "Probability")
        np.testing.assert_allclose(run(module, codes, "predict").reshape(p.shape), p, rtol=0, atol=PROBA_TOL)


@pytest.mark.parametrize("name", list(MODELS))
def test_ctr_model_matches_catboost_from_cbm_and_json(trained, name):
    model, cbm, js = trained[name]
    doc = json.loads(js.read_text())
    types = {c["ctr_type"] for c in doc["features_info"]["ctrs"]}
    assert types, "the model must use CTRs"
    codes = _rows(doc, np.random.default_rng(100))
    proba = MODELS[name][0] != "regression"
    module = tc.load(cbm, cat_code_bound=BOUND)
    _check(module, model, codes, proba)
    # The JSON export, as CatBoost itself reads it back
    from_json = catboost.CatBoost()
    from_json.load_model(str(js), format="json")
    _check(tc.load(js, cat_code_bound=BOUND), from_json, codes, proba)


def test_every_cpu_ctr_type_and_combination_kind_is_exercised(trained):
    """The models above hold every CTR type CatBoost trains on CPU, with projections mixing
    categorical values, binarized float features and one-hot values; and the trees test them."""
    types, elements = set(), set()
    for _, _, js in trained.values():
        doc = json.loads(js.read_text())
        plan = cc.CtrPlan(tc._Model(doc, "m"), tc._Features(tc._Model(doc, "m")), exact_sums=True)
        for path, split in tc._all_splits(
            plan.m, ("oblivious", doc["oblivious_trees"]) if "oblivious_trees" in doc else ("trees", doc["trees"])
        ):
            if split.get("split_type") == "OnlineCtr":
                ctr, _ = plan.use(split, path)
                types.add(ctr.type)
                treatment = {f["feature_index"]: f["nan_value_treatment"] for f in doc["features_info"]["float_features"]}
                for e in doc["features_info"]["ctrs"][ctr.j]["elements"]:
                    kind = e["combination_element"]
                    elements.add((kind, treatment[e["float_feature_index"]]) if kind == "float_feature" else kind)
    assert {"Borders", "Buckets", "Counter", "BinarizedTargetMeanValue"} <= types
    assert elements == {
        "cat_feature_value",
        ("float_feature", "AsIs"),
        ("float_feature", "AsFalse"),
        ("float_feature", "AsTrue"),
        "cat_feature_exact_value",
    }


def test_training_categories_no_code_can_name_are_refused(trained):
    """A CTR table over one feature gives back its training categories' hashes: one that is not
    the string of a code in range is refused (as for one-hot splits), naming the way out."""
    with pytest.raises(
        TimberError,
        match=r"categorical feature 3: the CTR statistics hold 4 of 10 training categories .* "
        r"not the decimal string of any integer code in \[-1048576, 1048576\]",
    ) as e:
        tc.load(trained["binary-combinations"][1])  # ±16777216, 10000000, -9999999: past the default bound 2^20
    assert "cat_code_bound" in str(e.value)


def test_string_categories_through_a_vocabulary(rng):
    n = 500
    shops = rng.integers(0, 40, n)
    rows = [[f"shop {c}", float(v)] for c, v in zip(shops, rng.normal(size=n))]
    y = ((shops % 3 == 0) ^ (rng.random(n) < 0.1)).astype(int)
    model = catboost.CatBoostClassifier(iterations=8, depth=3, one_hot_max_size=2, verbose=0, random_seed=0, thread_count=1)
    model.fit(catboost.Pool(rows, y, cat_features=[0], feature_names=["shop", "x"]))
    with pytest.raises(TimberError, match=r"ctr.cbm: .*categorical feature 0 \('shop'\): the CTR statistics hold 40 of 40") as e:
        tc.load(model, source_name="ctr.cbm")
    assert "cat_vocab={0: [...]}" in str(e.value)
    words = [f"shop {c}" for c in range(45)]  # five words training never saw
    module = tc.load(model, cat_vocab={"shop": words})
    test = [[words[rng.integers(45)], float(v)] for v in rng.normal(size=200)] + [["shop 999", 0.0]]
    X = tc.encode_rows(module, test)
    assert np.isnan(X[-1, 0])  # outside the vocabulary: unseen, as CatBoost sees "shop 999"
    raw = model.predict(catboost.Pool(test, cat_features=[0]), prediction_type="RawFormulaVal")
    np.testing.assert_array_equal(run(module, X, "margin").ravel(), raw)


@pytest.fixture
def rng():
    return np.random.default_rng(42)


def test_catboost_model_object_and_a_vocabulary(trained):
    """A fitted model passed directly; cat_vocab maps codes to strings (hashed at compile time)."""
    model, _, js = trained["multiclass-depthwise"]
    doc = json.loads(js.read_text())
    vocab = {f: [str(c) for c in CODES[f]] + ["-77"] for f in (1, 3)}  # "-77": an unseen category
    module = tc.load(model, cat_vocab=vocab, cat_code_bound=BOUND)
    codes = _rows(doc, np.random.default_rng(3), 200)
    inputs = codes.copy()
    for f in (1, 3):
        index = {float(w): i for i, w in enumerate(vocab[f])}
        inputs[:, f] = [index.get(float(v), np.nan) for v in codes[:, f].astype(np.float64)]
        codes[:, f] = np.where(np.isnan(inputs[:, f]), np.nan, codes[:, f])  # not in the vocabulary: unseen
    raw = _reference(model, codes, "RawFormulaVal")
    np.testing.assert_array_equal(run(module, inputs, "margin").reshape(raw.shape), raw)
    # -O cat_vocab='{"1": [...]}' on the command line: JSON keys are strings, digits mean the column
    from ir.printer import print_op

    assert print_op(tc.load(model, cat_vocab={str(k): v for k, v in vocab.items()}, cat_code_bound=BOUND)) == print_op(module)


def test_ir_names_each_ctr_and_round_trips(trained):
    from ir.parser import parse_module
    from ir.printer import print_op

    module = tc.load(trained["binary-combinations"][1], cat_code_bound=BOUND)
    text = print_op(module)
    for name in ("%x_ctr = arith.concat %x, %ctr :", "%cat1_hash", "%ctr0_hash", "%ctr_found", "%ctr_stat"):
        assert name in text
    assert print_op(parse_module(text)) == text


# ----- CatBoost's hashing, checked directly -----------------------------------------------------


def test_runtime_category_hash_is_catboosts_for_every_length():
    """The IR's hash of str(c) equals CityHash64's low 32 bits (tc.cat_hash: the one-hot hashes
    CatBoost writes, see test_catboost.py) for codes of 1..9 characters, two columns at a time as
    the models hash them, and the validity flag rejects what no string is made of."""
    from ir.dialects import func
    from ir.dialects.builtin import ModuleOp
    from ir.dialects.mathimpl.dsl import Emitter, where
    from ir.types import TensorType, f32, i64
    from ir.verifier import verify

    fn = func.FuncOp.build("h", [TensorType((2,), f32)], [TensorType((2,), i64)], arg_names=["x"])
    em = Emitter((2,))
    h, ok = cc._decimal_hash(em, em.wrap(fn.args[0]), BOUND)
    out = where(ok, h, em.const(2**40, i64))  # 2^40: "no string" (a hash is 32 bits)
    for op in em.ops:
        fn.body.add_op(op)
    fn.body.add_op(func.ReturnOp(operands=[out.v]))
    module = ModuleOp.build({})
    module.body.add_op(fn)
    verify(module)
    rng = np.random.default_rng(0)
    codes = [0, -0.0, 7, -7, 10, -10, 99, -99, 999, -999, 1000, 12345678, -12345678, 16777216, -16777216, 1048576]
    codes += rng.integers(-(2**24), 2**24, 300).tolist() + (rng.choice([-1, 1], 300) * 10 ** rng.integers(0, 8, 300)).tolist()
    bad = [np.nan, np.inf, -np.inf, 0.5, -2.5, 2.0**24 + 2, -(2.0**25), 1e10, 3e38, -3e38, 2.0**31, -(2.0**31)]
    values = codes + bad
    X = np.array(values + values[::-1], F32).reshape(2, -1).T
    want = [tc.cat_hash(str(int(c))) for c in codes] + [2**40] * len(bad)
    want = np.array(want + want[::-1], np.int64).reshape(2, -1).T
    np.testing.assert_array_equal(run(module, X, "h"), want)


# ----- back-ends ------------------------------------------------------------------------------------


@pytest.mark.skipif(shutil.which("gcc") is None and shutil.which("cc") is None, reason="no C compiler")
def test_c99_output_of_a_ctr_model_matches_catboost(trained, tmp_path):
    """The integer hashing (wrapping 64-bit multiplies, logical shifts) in generated C."""
    from backends.c99 import emit_c99
    from backends.common.plan import plan_module

    model, cbm, js = trained["binary-combinations"]
    module = tc.load(cbm, cat_code_bound=BOUND)
    for name, text in emit_c99(module, "timber_").items():
        (tmp_path / name).write_text(text)
    cc_ = shutil.which("gcc") or shutil.which("cc")
    flags = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-ffp-contract=off", "-O2", "-fPIC", "-shared"]
    r = subprocess.run([cc_, *flags, "-o", "libm.so", "model.c", "model_data.c"], cwd=tmp_path, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    lib = ctypes.CDLL(str(tmp_path / "libm.so"))
    ex = {e.func.sym_name: e for e in plan_module(module, "timber_", "c99").exports}["margin"]
    fn = getattr(lib, ex.batch_symbol)
    fn.restype, fn.argtypes = ctypes.c_int, [ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p]
    codes = np.ascontiguousarray(_rows(json.loads(js.read_text()), np.random.default_rng(5), 300))
    out = np.zeros((len(codes), ex.n_out), np.float64)
    assert fn(codes.ctypes.data, len(codes), out.ctypes.data, None) == 0
    np.testing.assert_array_equal(out.ravel(), _reference(model, codes, "RawFormulaVal"))


def test_wat_output_of_a_ctr_model_matches_catboost(trained):
    """The same integer hashing in WebAssembly (i64 ops, wrapping), run by wasmtime."""
    wasmtime = pytest.importorskip("wasmtime")
    from backends.common.plan import plan_module
    from backends.wat import emit_wat

    model, cbm, js = trained["multiclass-depthwise"]
    module = tc.load(cbm, cat_code_bound=BOUND)
    engine = wasmtime.Engine()
    store = wasmtime.Store(engine)
    ex = wasmtime.Instance(store, wasmtime.Module(engine, emit_wat(module, "timber_")), []).exports(store)
    e = {x.func.sym_name: x for x in plan_module(module, "timber_", "wat").exports}["margin"]
    codes = np.ascontiguousarray(_rows(json.loads(js.read_text()), np.random.default_rng(6), 200), "<f4")
    in_ptr, out_ptr, rows = (ex["timber_" + g].value(store) for g in ("input_ptr", "output_ptr", "batch_rows"))
    outs = []
    for start in range(0, len(codes), rows):
        chunk = codes[start : start + rows]
        ex["memory"].write(store, chunk.tobytes(), in_ptr)
        assert ex[e.batch_symbol](store, in_ptr, len(chunk), out_ptr, 0) == 0
        raw = ex["memory"].read(store, out_ptr, out_ptr + len(chunk) * e.n_out * 8)
        outs.append(np.frombuffer(bytes(raw), "<f8").reshape(len(chunk), e.n_out))
    np.testing.assert_array_equal(np.concatenate(outs), _reference(model, codes, "RawFormulaVal"))


def test_jit_of_a_ctr_model_matches_catboost(tmp_path):
    """A small CTR model (LLVM's code generation of the hashing is what costs here: keep it small)."""
    import timber

    rng = np.random.default_rng(4)
    model = _train("regression", rng, iterations=4, depth=2, max_ctr_complexity=2, simple_ctr=["Borders", "Counter"])
    model.save_model(str(tmp_path / "small.cbm"))
    model.save_model(str(tmp_path / "small.json"), format="json")
    compiled = timber.compile(str(tmp_path / "small.cbm"), cat_code_bound=BOUND)
    codes = _rows(json.loads((tmp_path / "small.json").read_text()), rng, 300)
    np.testing.assert_array_equal(compiled.predict(codes), _reference(model, codes, "RawFormulaVal"))


# ----- the corpus -----------------------------------------------------------------------------------


@pytest.mark.skipif(not CORPUS.is_dir(), reason="../shared/corpus is absent")
@pytest.mark.parametrize("name", ["titanic", "uncertainty"])
def test_corpus_ctr_models(name):
    """titanic.cbm (Borders CTRs over string and integer columns, combinations) and
    uncertainty.cbm (Counter CTRs): string columns through cat_vocab, integer ones as codes."""
    shipped = json.loads((CORPUS / f"{name}.inputs.json").read_text())
    model = catboost.CatBoost()
    model.load_model(str(CORPUS / f"{name}.cbm"))
    cat = list(model.get_cat_feature_indices())
    rows = shipped["rows"]
    # Name, Sex, Ticket, Cabin, Embarked held words in training (Timber refuses decimal codes for
    # them: test_string_categories_through_a_vocabulary); PassengerId, Pclass, SibSp, Parch integers.
    words = {2, 3, 7, 9, 10} if name == "titanic" else set()
    vocab = {f: sorted({str(r[f]) for r in rows}) + ["never seen"] for f in cat if f in words}
    module = tc.load(CORPUS / f"{name}.cbm", cat_vocab=vocab, cat_code_bound=BOUND)
    rng = np.random.default_rng(1)
    data = [list(r) for r in rows]
    for _ in range(300):
        r = list(rows[rng.integers(len(rows))])
        for f in range(len(r)):
            if f in vocab:
                r[f] = vocab[f][rng.integers(len(vocab[f]))]
            elif f in cat:
                r[f] = str(int(rng.integers(-50, 5000))) if rng.random() < 0.5 else r[f]
            elif rng.random() < 0.5:
                r[f] = float(rng.choice([np.nan, 0.0, float(rng.normal() * 30)]))
        data.append(r)
    X = tc.encode_rows(module, data)
    raw = model.predict(catboost.Pool(data, cat_features=cat), prediction_type="RawFormulaVal")
    np.testing.assert_array_equal(run(module, X, "margin").reshape(raw.shape), raw)


# ----- errors ---------------------------------------------------------------------------------------


def _doc(trained):
    return json.loads(trained["binary-combinations"][2].read_text())


def test_missing_ctr_table_is_named(trained):
    doc = _doc(trained)
    doc["ctr_data"] = {}
    with pytest.raises(
        TimberError, match=r"m.json: features_info.ctrs\[\d+\]: error: the \w+ CTR over categorical feature.* has no table in ctr_data"
    ):
        tc.load(doc, source_name="m.json")


def test_unknown_ctr_type_and_element_are_named(trained):
    doc = _doc(trained)
    doc["features_info"]["ctrs"][0]["ctr_type"] = "Magic"
    with pytest.raises(TimberError, match=r"features_info.ctrs\[0\].ctr_type: error: unknown ctr_type 'Magic'; supported: Borders"):
        tc.load(doc, source_name="m.json")
    doc = _doc(trained)
    doc["features_info"]["ctrs"][0]["elements"][0]["combination_element"] = "text"
    with pytest.raises(
        TimberError, match=r"features_info.ctrs\[0\].elements\[0\].combination_element: error: unknown combination_element 'text'"
    ):
        tc.load(doc, source_name="m.json")


def test_bad_hash_map_and_split_index_are_named(trained):
    doc = _doc(trained)
    key = next(iter(doc["ctr_data"]))
    doc["ctr_data"][key]["hash_map"][0] = "-5"
    with pytest.raises(TimberError, match=r"hash_map\[0\]: error: a hash must be a string holding an unsigned 64-bit integer, found '-5'"):
        tc.load(doc, source_name="m.json")
    doc = _doc(trained)
    for tree in doc["oblivious_trees"]:
        for s in tree["splits"]:
            if s["split_type"] == "OnlineCtr":
                s["split_index"] = 10**6
    with pytest.raises(TimberError, match=r"split_index: error: split_index 1000000 names no CTR border"):
        tc.load(doc, source_name="m.json")


def test_feature_freq_and_mean_sums_as_catboost_reads_json(trained, tmp_path):
    """FeatureFreq (GPU-trained only) takes Counter's formula; a mean history's fractional sum
    reads as 0 from JSON (NJson's GetInteger), which CatBoost's own JSON loading shows: the
    regression model with Counter renamed FeatureFreq and half its sums made fractional."""
    text = trained["regression"][2].read_text()
    doc = json.loads(text.replace('"Counter"', '"FeatureFreq"').replace('\\"Counter\\"', '\\"FeatureFreq\\"'))
    assert any("FeatureFreq" in k for k in doc["ctr_data"])
    changed = 0
    for key, table in doc["ctr_data"].items():
        if "MeanValue" in key:
            for r in range(0, len(table["hash_map"]), 6):
                table["hash_map"][r + 1] += 0.5
                changed += 1
    assert changed
    path = tmp_path / "edited.json"
    path.write_text(json.dumps(doc))
    reference = catboost.CatBoost()
    reference.load_model(str(path), format="json")
    codes = _rows(doc, np.random.default_rng(8), 300)
    raw = _reference(reference, codes, "RawFormulaVal")
    np.testing.assert_array_equal(run(tc.load(path, cat_code_bound=BOUND), codes, "margin").ravel(), raw)
