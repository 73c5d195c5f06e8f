"""Every CatBoost model in ../shared/corpus: the ones Timber supports compile and match CatBoost
1.2 (RawFormulaVal bit for bit; probabilities/exponents to 8·2^-52, see test_catboost.py), on
the rows shipped with them and on rows synthesised from their borders and categories; the
ones it does not (text features) are rejected with the feature and the reason.
Skips when the corpus is absent."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

catboost = pytest.importorskip("catboost")

from ir.diagnostics import TimberError  # noqa: E402
from ir.interpreter import run  # noqa: E402
from timber.frontends import catboost as tc  # noqa: E402

CORPUS = Path(__file__).resolve().parents[2].parent / "shared" / "corpus"
pytestmark = pytest.mark.skipif(not CORPUS.is_dir(), reason="../shared/corpus is absent")

PROBABILITY = ("Logloss", "CrossEntropy", "MultiClass", "MultiClassOneVsAll", "MultiLogloss", "MultiCrossEntropy")
TOL = 8 * 2.0**-52  # CatBoost's FastExp vs Timber's exp: see test_catboost.py


def reference(path: Path, rows, loss: str, raw: bool):
    m = catboost.CatBoost()
    m.load_model(str(path), format="json" if path.suffix == ".json" else "cbm")
    cat = m.get_cat_feature_indices()
    pool = catboost.Pool(rows, cat_features=cat) if cat else catboost.Pool(np.asarray(rows, np.float32))
    if raw:
        kind = "RawFormulaVal"
    elif loss in PROBABILITY:
        kind = "Probability"
    elif loss in ("Poisson", "Tweedie"):
        kind = "Exponent"
    elif loss == "RMSEWithUncertainty":
        kind = "RMSEWithUncertainty"
    else:
        kind = "RawFormulaVal"
    return m.predict(pool, prediction_type=kind)


def synthesise(module, rng, vocab: dict, n=150, limit=800) -> list[list]:
    """Rows mixing random values, every border and its float32 neighbours, NaN/±inf, and for
    categorical columns every vocabulary word, unseen words and odd codes."""
    n_features = module.lookup("margin").function_type.inputs[0].shape[0]
    types = [a.value for a in module.attributes["timber.feature_types"].items]
    ens = next(op for op in module.lookup("margin").walk() if op.name == "tree.ensemble")
    borders: dict[int, set[float]] = {}
    for t in ens.trees:
        for f, thr in zip(t.table.feature.tolist(), t.table.threshold.tolist()):
            if f >= 0 and types[f] == "q":
                v = np.float32(thr)
                with np.errstate(over="ignore"):
                    borders.setdefault(f, set()).update(
                        [float(v), float(np.nextafter(v, np.float32(-np.inf))), float(np.nextafter(v, np.float32(np.inf)))]
                    )

    def cat_value(f):
        words = vocab.get(f)
        if words:
            return words[rng.integers(len(words))] if rng.random() < 0.85 else "never-seen"
        return str(int(rng.integers(-2, 4))) if rng.random() < 0.9 else "12345678"

    def row():
        r = []
        for f in range(n_features):
            if types[f] == "c":
                r.append(cat_value(f))
            else:
                vals = sorted(borders.get(f, {0.0}))
                r.append(float(vals[rng.integers(len(vals))]) + float(rng.normal()) * (rng.random() < 0.5))
        return r

    rows = [row() for _ in range(n)]
    edges = [(f, v) for f in range(n_features) if types[f] == "q" for v in sorted(borders.get(f, set())) + [np.nan, np.inf, -np.inf, -0.0]]
    if len(edges) > limit:  # wide models: a random sample of the edge values keeps this file fast
        edges = [edges[i] for i in sorted(rng.choice(len(edges), limit, replace=False))]
    for f, v in edges:
        r = row()
        r[f] = v
        rows.append(r)
    return rows


def compare(path: Path, rows, vocab=None):
    module = tc.load(path, cat_vocab=vocab)
    loss = module.attributes["timber.loss"].value
    X = tc.encode_rows(module, rows)
    raw = reference(path, rows, loss, raw=True)
    np.testing.assert_array_equal(run(module, X, "margin").reshape(raw.shape), raw)
    pred = reference(path, rows, loss, raw=False)
    got = run(module, X, "predict").reshape(pred.shape)
    if loss in PROBABILITY:
        np.testing.assert_allclose(got, pred, rtol=0, atol=TOL)
    elif loss in ("Poisson", "Tweedie", "RMSEWithUncertainty"):
        np.testing.assert_allclose(got, pred, rtol=TOL, atol=0)
    else:
        np.testing.assert_array_equal(got, pred)
    return module


def _tsv(name: str) -> list[list]:
    return np.loadtxt(CORPUS / name)[:, 1:].tolist()  # column 0 is the label


def _shipped(name: str) -> list[list]:
    return json.loads((CORPUS / name).read_text())["rows"]


LETTERS = ["a", "b", "c", "d", "e"]
SEASONS = ["winter", "spring", "summer", "autumn"]
META = {10: ["A", "B", "C", "D", "E"], 11: ["some", "random", "categorical", "feature", "values", "testing"]}

CASES = [
    ("catboost-cxx/xor-model.json", None, None),
    ("catboost-cxx/regression-model.json", None, None),
    ("catboost-cxx/creditgermany.json", "creditgermany_test.tsv", None),
    ("catboost-cxx/creditgermany.cbm", "creditgermany_test.tsv", None),
    ("catboost-cxx/codrna.cbm", "codrna_test.first2000.tsv", None),
    ("catboost-cgo/regressor.cbm", "regressor.inputs.json", None),
    ("catboost-cgo/ranker.cbm", "ranker.inputs.json", None),
    ("catboost-cgo/classifier.cbm", "classifier.inputs.json", {0: LETTERS, 1: LETTERS}),
    ("catboost-cgo/multiclassification.cbm", "multiclassification.inputs.json", {0: SEASONS}),
    ("catboost-cgo/survival.cbm", "survival.inputs.json", None),
    ("catboost-cgo/metadata.cbm", None, META),
]


@pytest.mark.parametrize("name,rows,vocab", CASES, ids=[c[0] for c in CASES])
def test_corpus_model(name, rows, vocab):
    path = CORPUS / name
    module = tc.load(path, cat_vocab=vocab)
    rng = np.random.default_rng(11)
    data = synthesise(module, rng, vocab or {})
    if rows is not None:
        folder = Path(name).parent
        shipped = _tsv(f"{folder}/{rows}") if rows.endswith(".tsv") else _shipped(f"{folder}/{rows}")
        data = shipped[:500] + data
    compare(path, data, vocab)


def test_shipped_outputs_still_hold():
    """kiwicom's xor/regression models ship the outputs CatBoost gave in 2019: still exact."""
    for model, data in (("xor-model.json", "xor.json"), ("regression-model.json", "regression.json")):
        d = json.loads((CORPUS / "catboost-cxx" / data).read_text())
        module = tc.load(CORPUS / "catboost-cxx" / model)
        got = run(module, np.asarray(d["x"], np.float32), "predict").ravel()
        np.testing.assert_array_equal(got, np.asarray(d["y"], np.float64))


def test_string_categories_need_a_vocabulary():
    with pytest.raises(TimberError, match=r"categorical feature 0: a one-hot split tests a category \(CatBoost hash -1883343840\)"):
        tc.load(CORPUS / "catboost-cgo/classifier.cbm")


@pytest.mark.parametrize(
    "name,pattern",
    [
        ("catboost-cgo/text.cbm", r"text.cbm: error: text feature 0: text features are not supported"),
    ],
)
def test_unsupported_corpus_models_are_rejected(name, pattern):
    with pytest.raises(TimberError, match=pattern):
        tc.load(CORPUS / name)
