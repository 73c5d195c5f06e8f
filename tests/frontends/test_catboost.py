"""CatBoost front-end parity: models trained here with the real CatBoost (seconds in all),
compiled with `timber.frontends.catboost.load`, run with the IR interpreter, compared with
`model.predict` on random and adversarial rows.

`@margin` (RawFormulaVal) and `@predict` are compared bit for bit.  CatBoost computes sigmoids
(Logloss, CrossEntropy, MultiClassOneVsAll...) with the C library's exp, and softmax (MultiClass),
Exponent (Poisson, Tweedie) and RMSEWithUncertainty's variance with its FastExp, which is
fmath's expd: the front-end marks those `impl = "fmath"` (`ir/dialects/mathimpl/exp.py`), and the
interpreter runs with `math="libm"` as the host JIT does by default.
"""

from __future__ import annotations

import json
import math
import sys

import numpy as np
import pytest

from tests.mathref import fmath_exp

catboost = pytest.importorskip("catboost")

from ir.diagnostics import TimberError  # noqa: E402
from ir.interpreter import run  # noqa: E402
from ir.parser import parse_module  # noqa: E402
from ir.printer import print_op  # noqa: E402
from tests.rows import adversarial_rows as shared_rows  # noqa: E402
from tests.rows import rows_strategy  # noqa: E402
from timber.frontends import catboost as tc  # noqa: E402


def ulps(a, b) -> np.ndarray:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    with np.errstate(invalid="ignore"):
        same = (a == b) | (np.isnan(a) & np.isnan(b))
        return np.where(same, 0.0, np.abs(a - b) / np.spacing(np.abs(b)))


def reference(model, rows, cat_features=None):
    """(RawFormulaVal, what predict_proba / the regressor's predict returns) from CatBoost."""
    pool = catboost.Pool(rows, cat_features=cat_features) if cat_features else catboost.Pool(np.asarray(rows, np.float32))
    raw = model.predict(pool, prediction_type="RawFormulaVal")
    if isinstance(model, catboost.CatBoostClassifier):
        return raw, model.predict_proba(pool)
    return raw, model.predict(pool)


def check(module, model, rows, cat_features=None, X=None):
    raw, pred = reference(model, rows, cat_features)
    X = np.asarray(rows, np.float32) if X is None else X
    m = run(module, X, "margin")
    p = run(module, X, "predict", math="libm")
    np.testing.assert_array_equal(m.reshape(raw.shape), raw)
    np.testing.assert_array_equal(p.reshape(pred.shape), pred)


def edge_rows(module, base: np.ndarray, rng, limit=3000) -> np.ndarray:
    """`base` plus rows putting one feature on each border and its float32 neighbours, and on
    NaN, ±inf, ±0 and tiny values."""
    ens = next(op for op in module.lookup("margin").walk() if op.name == "tree.ensemble")
    special: dict[int, set[float]] = {}
    for t in ens.trees:
        tab = t.table
        for f, thr in zip(tab.feature.tolist(), tab.threshold.tolist()):
            if f < 0:
                continue
            v = np.float32(thr)
            with np.errstate(over="ignore"):
                special.setdefault(f, set()).update(
                    [float(v), float(np.nextafter(v, np.float32(-np.inf))), float(np.nextafter(v, np.float32(np.inf)))]
                )
    rows = []
    for f, vals in sorted(special.items()):
        for v in sorted(vals) + [np.nan, np.inf, -np.inf, 0.0, -0.0, 1e-40, -1e-40]:
            r = base[rng.integers(len(base))].copy()
            r[f] = v
            rows.append(r)
    out = np.array(rows, np.float32) if rows else np.zeros((0, base.shape[1]), np.float32)
    # tests/rows.py: specials and extremes (one row per value per feature: skipped for wide models)
    shared = shared_rows(module, n_mixed=64, dtype=np.float32) if base.shape[1] <= 300 else np.zeros((0, base.shape[1]), np.float32)
    out = np.vstack([out, shared])
    if len(out) > limit:
        out = out[rng.choice(len(out), limit, replace=False)]
    return np.vstack([base.astype(np.float32), out, np.full((1, base.shape[1]), np.nan, np.float32)])


def roundtrip(module):
    text = print_op(module)
    assert print_op(parse_module(text)) == text


@pytest.fixture
def rng():
    return np.random.default_rng(2024)


def _float_data(rng, n=500, f=4, nan=0.15):
    X = rng.normal(size=(n, f)).astype(np.float32)
    X[rng.random(n) < nan, 0] = np.nan
    y = np.nan_to_num(X[:, 0], nan=2.0) + X[:, 1] - 0.5 * X[:, 2] + rng.normal(size=n) * 0.1
    return X, y


def _fit(cls, X, y, **kw):
    params = dict(iterations=15, depth=4, verbose=0, random_seed=0, thread_count=1, allow_writing_files=False)
    params.update(kw)
    return cls(**params).fit(X, y)


# ----- losses ---------------------------------------------------------------------------------

LOSSES = [
    ("RMSE", catboost.CatBoostRegressor, lambda y: y, {}),
    ("MAE", catboost.CatBoostRegressor, lambda y: y, {}),
    ("Quantile:alpha=0.3", catboost.CatBoostRegressor, lambda y: y, {}),
    ("Poisson", catboost.CatBoostRegressor, lambda y: np.round(np.abs(y)), {}),
    ("Tweedie:variance_power=1.5", catboost.CatBoostRegressor, lambda y: np.abs(y), {}),
    ("RMSEWithUncertainty", catboost.CatBoostRegressor, lambda y: y, {}),
    ("MultiRMSE", catboost.CatBoostRegressor, lambda y: np.stack([y, -2 * y, y * y], 1), {}),
    ("Logloss", catboost.CatBoostClassifier, lambda y: (y > 0).astype(int), {}),
    ("CrossEntropy", catboost.CatBoostClassifier, lambda y: 1 / (1 + np.exp(-y)), {}),
    ("MultiClass", catboost.CatBoostClassifier, lambda y: np.digitize(y, [-0.5, 0.5, 1.5]), {}),
    ("MultiClassOneVsAll", catboost.CatBoostClassifier, lambda y: np.digitize(y, [-0.5, 0.5]), {}),
    ("MultiLogloss", catboost.CatBoostClassifier, lambda y: np.stack([y > 0, y > 1], 1).astype(int), {}),
]


@pytest.mark.parametrize("loss,cls,target,extra", LOSSES, ids=[x[0] for x in LOSSES])
def test_loss(loss, cls, target, extra, rng):
    X, y = _float_data(rng)
    model = _fit(cls, X, target(y), loss_function=loss, **extra)
    module = tc.load(model)
    assert module.attributes["timber.loss"].value == loss.split(":")[0]
    check(module, model, edge_rows(module, rng.normal(size=(150, X.shape[1])) * 2, rng))
    roundtrip(module)


def test_binary_predict_is_one_minus_p_then_p(rng):
    """predict_proba's first column is exactly 1 - p (an affine map of the sigmoid)."""
    X, y = _float_data(rng)
    model = _fit(catboost.CatBoostClassifier, X, (y > 0).astype(int))
    module = tc.load(model)
    p = run(module, X, "predict")
    assert p.shape == (len(X), 2)
    np.testing.assert_array_equal(p[:, 0], 1.0 - p[:, 1])
    assert "linear.affine" in print_op(module)


# ----- float splits, NaN treatment, scale and bias, tree kinds ------------------------------


@pytest.mark.parametrize("nan_mode,treatment", [("Min", "AsFalse"), ("Max", "AsTrue")])
def test_nan_value_treatment(nan_mode, treatment, rng):
    X, y = _float_data(rng, nan=0.3)
    model = _fit(catboost.CatBoostRegressor, X, y, nan_mode=nan_mode)
    module = tc.load(model)
    text = print_op(module)
    assert f"missing(nan) -> {'true' if treatment == 'AsTrue' else 'false'}" in text
    check(module, model, edge_rows(module, X[:100], rng))


def test_as_is_with_nan_inputs(rng):
    """Features that saw no NaN in training (AsIs): NaN > border is false, bit 0."""
    X, y = _float_data(rng, nan=0.0)
    model = _fit(catboost.CatBoostRegressor, X, y)
    module = tc.load(model)
    doc = json.loads(_export(model))
    assert {f["nan_value_treatment"] for f in doc["features_info"]["float_features"]} == {"AsIs"}
    Xt = edge_rows(module, X[:100], rng)
    Xt[::3, 1] = np.nan
    check(module, model, Xt)


def test_levels_keep_oblivious_structure(rng):
    X, y = _float_data(rng)
    model = _fit(catboost.CatBoostRegressor, X, y, depth=6)
    module = tc.load(model)
    ens = next(op for op in module.lookup("margin").walk() if op.name == "tree.ensemble")
    assert {t.name for t in ens.trees} == {"tree.oblivious"}
    assert max(t.table.depth for t in ens.trees) == 6
    assert ens.attributes["compare"].type.width == 32
    roundtrip(module)


@pytest.mark.parametrize("scale,bias", [(1.0, 0.0), (1.0, 0.375), (0.5, 0.0), (-1.7, 2.25)])
def test_scale_and_bias(scale, bias, rng):
    X, y = _float_data(rng)
    model = _fit(catboost.CatBoostRegressor, X, y, boost_from_average=False)
    model.set_scale_and_bias(scale, bias)
    module = tc.load(model)
    check(module, model, edge_rows(module, X[:100], rng))


def test_multi_dimensional_bias(rng):
    X, y = _float_data(rng)
    model = _fit(catboost.CatBoostRegressor, X, np.stack([y, 3 * y + 5], 1), loss_function="MultiRMSE", boost_from_average=True)
    s, b = model.get_scale_and_bias()
    assert np.any(np.asarray(b) != 0)
    module = tc.load(model)
    check(module, model, edge_rows(module, X[:100], rng))


@pytest.mark.parametrize("policy", ["Depthwise", "Lossguide"])
def test_non_symmetric_trees(policy, rng):
    X, y = _float_data(rng, nan=0.2)
    model = _fit(catboost.CatBoostRegressor, X, y, grow_policy=policy, nan_mode="Max")
    module = tc.load(model)
    ens = next(op for op in module.lookup("margin").walk() if op.name == "tree.ensemble")
    assert {t.name for t in ens.trees} == {"tree.tree"}
    check(module, model, edge_rows(module, X[:100], rng))
    roundtrip(module)


def _export(model) -> str:
    import os
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        p = os.path.join(d, "m.json")
        model.save_model(p, format="json")
        return open(p).read()


def test_json_file_2019_layout_and_depth_zero(rng, tmp_path):
    """No `scale_and_bias` key (the 2019 export) and a depth-0 tree (`splits: null`), read by
    CatBoost and by Timber from the same JSON file."""
    X, y = _float_data(rng)
    model = _fit(catboost.CatBoostRegressor, X, y, boost_from_average=False)
    doc = json.loads(_export(model))
    del doc["scale_and_bias"]
    doc["oblivious_trees"].insert(3, {"leaf_values": [0.123456789012345678], "leaf_weights": [1], "splits": None})
    path = tmp_path / "m.json"
    path.write_text(json.dumps(doc))
    ref = catboost.CatBoost().load_model(str(path), format="json")
    module = tc.load(path)
    rows = edge_rows(module, X[:100], rng)
    np.testing.assert_array_equal(run(module, rows, "margin").ravel(), ref.predict(rows, prediction_type="RawFormulaVal"))


def test_json_numbers_parse_like_catboost(tmp_path, rng):
    """CatBoost's JSON reader (RapidJSON, default precision) turns some 17-digit decimals into the
    neighbouring double; Timber reads the file the same way.  Leaf values are written with 17
    significant digits that such a parser gets wrong, and CatBoost's own reading is the judge."""
    X, y = _float_data(rng)
    model = _fit(catboost.CatBoostRegressor, X, y, iterations=30)
    doc = json.loads(_export(model))
    text = json.dumps(doc)
    # rewrite every leaf value with 17 significant digits, and add exponent forms
    for t in doc["oblivious_trees"]:
        t["leaf_values"] = [float(f"{v:.16e}") * 1e-7 for v in t["leaf_values"]]
    text = json.dumps(doc)
    text = text.replace('"leaf_values": [', '"leaf_values": [ ')
    path = tmp_path / "digits.json"
    path.write_text(text)
    ref = catboost.CatBoost().load_model(str(path), format="json")
    want = np.asarray(ref.get_leaf_values())
    ours = np.concatenate([tc.parse_json(text)["oblivious_trees"][i]["leaf_values"] for i in range(30)])
    python = np.concatenate([json.loads(text)["oblivious_trees"][i]["leaf_values"] for i in range(30)])
    np.testing.assert_array_equal(ours, want)
    assert np.any(python != want), "the test needs decimals that a correctly rounded parser reads differently"
    module = tc.load(path)
    rows = edge_rows(module, X[:100], rng)
    np.testing.assert_array_equal(run(module, rows, "margin").ravel(), ref.predict(rows, prediction_type="RawFormulaVal"))


@pytest.mark.parametrize(
    "text",
    ["0", "-0", "1", "-1", "0.1", "-0.30000000000000004", "0.19669079618070862", "1.3146174521563905e-10", "123456789012345678901234",
     "-9223372036854775809", "18446744073709551616", "1e308", "2.2250738585072014e-308", "4.9e-324", "1E+2",
     "0.000000000000000000000000123456789",
     "12345678901234567.89e-3", "9007199254740993", "9007199254740993.5", "1.7976931348623157e308"],
)  # fmt: skip
def test_rapidjson_number_against_catboost(text, tmp_path):
    """Single numbers through CatBoost's JSON reader (as a scale) and through ours."""
    doc = {
        "features_info": {
            "float_features": [
                {"borders": [0.5], "feature_index": 0, "flat_feature_index": 0, "has_nans": False, "nan_value_treatment": "AsIs"}
            ]
        },
        "oblivious_trees": [
            {
                "leaf_values": [0, 0],
                "leaf_weights": [1, 1],
                "splits": [{"border": 0.5, "float_feature_index": 0, "split_index": 0, "split_type": "FloatFeature"}],
            }
        ],
        "scale_and_bias": [1, ["BIAS"]],
    }
    path = tmp_path / "n.json"
    path.write_text(json.dumps(doc).replace('"BIAS"', text))
    ref = catboost.CatBoost().load_model(str(path), format="json")
    want = ref.get_scale_and_bias()[1]
    got = tc.parse_json(path.read_text())["scale_and_bias"][1][0]
    if isinstance(got, int) and abs(got) > 2**53:
        # an integer literal beyond 2^53: CatBoost's JSON value has no double for it (it reads 0);
        # Timber refuses the model rather than guess
        assert want == 0.0
        with pytest.raises(TimberError, match=r"scale_and_bias\[1\]\[0\]: error: integer \d+ has no exact double"):
            tc.load(path)
        return
    assert float(got) == want


# ----- categorical features ----------------------------------------------------------------


def _cat_data(rng, n=800):
    X = rng.normal(size=(n, 2)).astype(np.float32)
    ints = rng.integers(-4, 6, n)
    words = rng.choice(["red", "green", "blue", "a much longer category name than sixty-four bytes, to use CityHash's long path"], n)
    y = X[:, 0] + 2 * (ints == 3) - 1.5 * (ints == -2) + 1.2 * (words == "blue") - (words == "red") + rng.normal(size=n) * 0.1
    rows = [[float(a), int(i), str(w), float(b)] for a, i, w, b in zip(X[:, 0], ints, words, X[:, 1])]
    return rows, y


VOCAB = {2: ["red", "green", "blue", "a much longer category name than sixty-four bytes, to use CityHash's long path"]}


def test_one_hot_categories(rng):
    rows, y = _cat_data(rng)
    model = catboost.CatBoostRegressor(iterations=20, depth=4, one_hot_max_size=16, verbose=0, random_seed=0, thread_count=1)
    model.fit(catboost.Pool(rows, y, cat_features=[1, 2]))
    module = tc.load(model, cat_vocab=VOCAB)
    text = print_op(module)
    assert "eq 3" in text and "eq -2" in text  # decimal codes, negative ones included
    probe = [
        [0.1, 3, "blue", 0.0],
        [0.1, -2, "red", 0.0],
        [0.1, 99, "purple", 0.0],  # unseen in both columns
        [0.1, 1048577, "green", 0.0],  # beyond cat_code_bound: unseen for Timber, and for CatBoost too (never trained)
        [np.nan, 0, "green", np.nan],
    ]
    all_rows = rows[:200] + probe
    X = tc.encode_rows(module, all_rows)
    assert np.isnan(X[-3, 2]) and X[-5, 1] == 3
    check(module, model, all_rows, cat_features=[1, 2], X=X)
    # non-integral, NaN and infinite codes mean "a category never seen in training"
    weird = np.array(
        [[0.1, 3.5, 2.5, 0.0], [0.1, np.nan, np.nan, 0.0], [0.1, np.inf, -np.inf, 0.0], [0.1, -2.0000002, 1.9999999, 0.0]], np.float32
    )
    unseen = [[0.1, "unseen-a", "unseen-b", 0.0]] * 4
    raw = model.predict(catboost.Pool(unseen, cat_features=[1, 2]), prediction_type="RawFormulaVal")
    np.testing.assert_array_equal(run(module, weird, "margin").ravel(), raw)


def test_one_hot_binary_and_multiclass(rng):
    rows, y = _cat_data(rng)
    for loss, target in (("Logloss", (y > 0.5).astype(int)), ("MultiClass", np.digitize(y, [0.0, 1.0]))):
        model = catboost.CatBoostClassifier(
            iterations=15, depth=3, one_hot_max_size=16, loss_function=loss, verbose=0, random_seed=0, thread_count=1
        )
        model.fit(catboost.Pool(rows, target, cat_features=[1, 2]))
        module = tc.load(model, cat_vocab=VOCAB)
        check(module, model, rows[:300], cat_features=[1, 2], X=tc.encode_rows(module, rows[:300]))


def test_string_category_without_vocab_is_a_located_error(rng):
    rows, y = _cat_data(rng)
    model = catboost.CatBoostRegressor(iterations=10, depth=3, one_hot_max_size=16, verbose=0, random_seed=0, thread_count=1)
    model.fit(catboost.Pool(rows, y, cat_features=[1, 2]))
    with pytest.raises(
        TimberError, match=r"categorical feature 2: a one-hot split tests a category .* not the decimal string of any integer code"
    ) as e:
        tc.load(model, source_name="m.cbm")
    assert "note: pass cat_vocab={2: [...]}" in str(e.value)


def test_hash_collision_compiles_to_a_decision_tree():
    """Codes 47220 and 111524 have the same 32-bit CatBoost hash: CatBoost cannot tell them
    apart, so neither may Timber.  The tree holding that split becomes a `tree.tree`."""
    assert tc.cat_hash("47220") == tc.cat_hash("111524")
    rng = np.random.default_rng(5)
    n = 600
    codes = rng.choice([47220, 5, 6, 7], n)
    xs = rng.normal(size=n)
    y = 3.0 * (codes == 47220) + xs + rng.normal(size=n) * 0.05
    rows = [[int(c), float(v)] for c, v in zip(codes, xs)]
    model = catboost.CatBoostRegressor(iterations=8, depth=2, one_hot_max_size=8, verbose=0, random_seed=0, thread_count=1)
    model.fit(catboost.Pool(rows, y, cat_features=[0]))
    module = tc.load(model, cat_code_bound=2**17)
    names = {t.name for t in next(op for op in module.lookup("margin").walk() if op.name == "tree.ensemble").trees}
    assert "tree.tree" in names
    probe = [[47220, 0.3], [111524, 0.3], [5, 0.3], [111525, 0.3]]
    raw = model.predict(catboost.Pool(probe, cat_features=[0]), prediction_type="RawFormulaVal")
    np.testing.assert_array_equal(run(module, tc.encode_rows(module, probe), "margin").ravel(), raw)
    assert raw[0] == raw[1] != raw[3]
    roundtrip(module)
    # with a bound that excludes 111524 it is simply an unseen code
    small = tc.load(model, cat_code_bound=100_000)
    assert run(small, np.array([[111524, 0.3]], np.float32), "margin")[0, 0] == raw[3]


def test_city_hash_matches_catboost_on_every_length_path():
    """One-hot values CatBoost exported for strings of 1..200 bytes (all of CityHash64's paths)."""
    rng = np.random.default_rng(1)
    lengths = [1, 2, 3, 4, 7, 8, 9, 16, 17, 31, 32, 33, 64, 65, 127, 128, 129, 200]
    cats = ["".join(chr(97 + (i * 7 + j) % 26) for j in range(n)) for i, n in enumerate(lengths)]
    idx = rng.integers(0, len(cats), 3000)
    effect = rng.normal(size=len(cats)) * 3
    rows = [[cats[k]] for k in idx]
    model = catboost.CatBoostRegressor(iterations=80, depth=5, one_hot_max_size=255, verbose=0, random_seed=0, thread_count=1)
    model.fit(catboost.Pool(rows, effect[idx], cat_features=[0]))
    doc = json.loads(_export(model))
    values = {s["value"] for t in doc["oblivious_trees"] for s in t["splits"] if s["split_type"] == "OneHotFeature"}
    ours = {tc.cat_hash(c) for c in cats}
    assert len(values) >= len(cats) - 2 and values <= ours


def _preimages_agree(bound: int, codes: list[int]) -> None:
    targets = {tc.cat_hash(str(c)): c for c in codes}
    found = tc.decimal_preimages(targets, bound)
    for h, c in targets.items():
        assert c in found[h]
        assert all(tc.cat_hash(str(o)) == h and abs(o) <= bound for o in found[h])


def test_decimal_preimages_agree_with_the_scalar_hash():
    rng = np.random.default_rng(9)
    codes = [0, 7, -7, 9999, -9999, 10000, -10000, 99999, -99999, 123456, -123456, 47220, 111524, 2**17, -(2**17)]
    _preimages_agree(2**17, codes + rng.integers(-(2**17), 2**17, 40).tolist())


@pytest.mark.slow
def test_decimal_preimages_full_float32_range():
    """Up to 2^24, including the 9-character strings of -10^7..-2^24 (CityHash's 9..16-byte path)."""
    rng = np.random.default_rng(9)
    codes = [1234567, -1234567, 10**7, -(10**7), 12345678, -12345678, 16777216, -16777216]
    _preimages_agree(2**24, codes + rng.integers(-(2**24), 2**24, 40).tolist())


def test_encode_rows(rng):
    rows, y = _cat_data(rng, n=300)
    model = catboost.CatBoostRegressor(iterations=5, depth=3, one_hot_max_size=16, verbose=0, random_seed=0, thread_count=1)
    model.fit(catboost.Pool(rows, y, cat_features=[1, 2]))
    module = tc.load(model, cat_vocab=VOCAB)
    X = tc.encode_rows(module, [[1.5, "3", "blue", None], [1.5, 3, "nope", 2.0], [1.5, "03", "red", 2.0], [1.5, True, "green", 2.0]])
    assert X.dtype == np.float32
    assert X[0].tolist()[:3] == [1.5, 3.0, 2.0] and np.isnan(X[0, 3])
    assert np.isnan(X[1, 2]) and np.isnan(X[2, 1]) and X[2, 2] == 0.0  # "03" is not how CatBoost writes 3


# ----- rejected models, corrupt input ------------------------------------------------------


def test_text_features_are_rejected(rng):
    rows = [["good value", 1.0], ["poor quality", 2.0], ["good good", 0.5], ["bad", 3.0]] * 20
    y = [1, 0, 1, 0] * 20
    model = catboost.CatBoostClassifier(iterations=3, verbose=0, thread_count=1)
    model.fit(catboost.Pool(rows, y, text_features=[0]))
    with pytest.raises(TimberError, match=r"text feature 0: text features are not supported"):
        tc.load(model)


def test_cbm_without_catboost_package(tmp_path, monkeypatch, rng):
    X, y = _float_data(rng)
    path = tmp_path / "m.cbm"
    _fit(catboost.CatBoostRegressor, X, y).save_model(str(path))
    monkeypatch.setitem(sys.modules, "catboost", None)  # `import catboost` now raises ImportError
    with pytest.raises(TimberError, match=r"m.cbm: error: reading a .cbm model needs the catboost package"):
        tc.load(path)


def test_cbm_and_json_files(tmp_path, rng):
    X, y = _float_data(rng)
    model = _fit(catboost.CatBoostRegressor, X, y)
    model.save_model(str(tmp_path / "m.cbm"))
    model.save_model(str(tmp_path / "m.json"), format="json")
    rows = edge_rows(tc.load(model), X[:100], rng)
    for name in ("m.cbm", "m.json"):
        ref = catboost.CatBoost().load_model(str(tmp_path / name), format="cbm" if name.endswith("cbm") else "json")
        module = tc.load(tmp_path / name)
        np.testing.assert_array_equal(run(module, rows, "margin").ravel(), ref.predict(rows, prediction_type="RawFormulaVal"))


@pytest.fixture(scope="module")
def doc() -> dict:
    rng = np.random.default_rng(0)
    X, y = _float_data(rng, n=200)
    return json.loads(_export(_fit(catboost.CatBoostRegressor, X, y, iterations=3, depth=2)))


def _expect(doc_or_bytes, pattern):
    data = doc_or_bytes if isinstance(doc_or_bytes, bytes) else json.dumps(doc_or_bytes).encode()
    with pytest.raises(TimberError) as e:
        tc.load(data, source_name="bad.json")
    assert __import__("re").search(pattern, str(e.value)), str(e.value)


def test_corrupt_inputs(doc, tmp_path):
    import copy

    _expect(b"\x00\x01garbage", r"bad.json: line 1 column 1: error: not a CatBoost model: neither a .cbm file nor valid JSON")
    _expect(b"\xff\xfe{}", r"bad.json: error: not a CatBoost model: neither a .cbm file nor valid JSON")
    _expect(b'{"oblivious_trees": [', r"bad.json: line 1 column \d+: error: not a CatBoost model")
    _expect(b"[1, 2]", r"the top level is not an object")
    _expect(b"CBM1\x00\x00\x00garbage", r"bad.json: error: corrupt CatBoost model")
    d = copy.deepcopy(doc)
    del d["oblivious_trees"]
    _expect(d, r"not a CatBoost JSON model: no 'oblivious_trees' or 'trees'")
    d = copy.deepcopy(doc)
    d["oblivious_trees"][1]["leaf_values"] = [1.0, 2.0]
    _expect(d, r"bad.json: oblivious_trees\[1\].leaf_values: error: expected 4 leaves × 1 outputs = 4 leaf values, found 2")
    d = copy.deepcopy(doc)
    d["oblivious_trees"][2]["splits"][0]["split_type"] = "Quantized"
    _expect(
        d, r"oblivious_trees\[2\].splits\[0\].split_type: error: unknown split_type 'Quantized'; supported: FloatFeature, OneHotFeature"
    )
    d = copy.deepcopy(doc)
    d["oblivious_trees"][0]["splits"][1]["float_feature_index"] = 42
    _expect(d, r"oblivious_trees\[0\].splits\[1\].float_feature_index: error: float_feature_index 42 names no float feature")
    d = copy.deepcopy(doc)
    d["oblivious_trees"][0]["splits"][0]["border"] = "high"
    _expect(d, r"oblivious_trees\[0\].splits\[0\].border: error: 'border' must be a int or float, found str")
    d = copy.deepcopy(doc)
    d["features_info"]["float_features"][0]["nan_value_treatment"] = "AsMean"
    _expect(d, r"features_info.float_features\[0\].nan_value_treatment: error: unknown nan_value_treatment 'AsMean'")
    d = copy.deepcopy(doc)
    d["scale_and_bias"] = [1, [0, 0]]
    _expect(d, r"scale_and_bias: error: 2 bias values for a model with 1 outputs")
    with pytest.raises(TimberError, match=r"cannot read CatBoost model '.*absent.json'"):
        tc.load(tmp_path / "absent.json")
    with pytest.raises(TimberError, match=r"cannot load a list as a CatBoost model"):
        tc.load([1, 2, 3])


def test_cat_vocab_must_name_a_categorical_feature(doc):
    with pytest.raises(TimberError, match=r"cat_vocab names 0, which is not a categorical feature of the model \(categorical: none\)"):
        tc.load(doc, cat_vocab={0: ["a"]})
    with pytest.raises(TimberError, match=r"cat_code_bound must be in 1..2\^24"):
        tc.load(doc, cat_code_bound=2**25)


def test_catboost_fast_exp_is_fmath_not_libm(rng):
    """Why exp links carry `impl = "fmath"`: CatBoost's Exponent is fmath's expd, not libm's exp."""
    X, y = _float_data(rng)
    model = _fit(catboost.CatBoostRegressor, X, np.round(np.abs(y)), loss_function="Poisson")
    Xq = (rng.normal(size=(5000, X.shape[1])) * 3).astype(np.float32)
    raw = model.predict(Xq, prediction_type="RawFormulaVal")
    e = model.predict(Xq)
    libm = np.array([math.exp(v) for v in raw])
    assert (libm != e).mean() > 0.05 and ulps(libm, e).max() <= 2
    np.testing.assert_array_equal(fmath_exp(raw), e)


def test_hypothesis_rows(rng):
    """Property: RawFormulaVal equals Timber's margin bit for bit on any float32 rows drawn from
    the model's borders, their neighbours, specials and arbitrary floats (AsTrue and AsIs features)."""
    from hypothesis import HealthCheck, given, settings

    X, y = _float_data(rng, nan=0.3)
    model = _fit(catboost.CatBoostClassifier, X, (y > 0).astype(int), nan_mode="Max")
    module = tc.load(model)

    @settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(rows_strategy(module, dtype=np.float32, max_rows=16))
    def prop(rows):
        check(module, model, rows)

    prop()
