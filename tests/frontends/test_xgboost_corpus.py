"""Every XGBoost model file in ../shared/corpus (models written by other projects, XGBoost
1.4 to 3.1) against the installed XGBoost, called as the corpus README says, on the rows the
source project shipped plus adversarial rows; and its legacy binary models must be rejected
with advice.  Skipped when the corpus is absent."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from ir.diagnostics import TimberError
from tests.frontends.test_xgboost import F32, check_parity, xgb_predict
from tests.rows import adversarial_rows
from timber.detect import detect_format, load_model
from timber.frontends import xgboost as xf

xgb = pytest.importorskip("xgboost")
pytestmark = pytest.mark.filterwarnings("ignore:.*Found JSON model saved before:UserWarning")

CORPUS = Path(__file__).resolve().parents[2].parent / "shared" / "corpus"
if not CORPUS.is_dir():
    pytest.skip(f"model corpus not found at {CORPUS}", allow_module_level=True)


def _libsvm(path: Path, n_features: int) -> np.ndarray:
    """Rows of a zero-based libsvm file; an absent entry is missing (NaN) for XGBoost."""
    rows = []
    for line in path.read_text().splitlines():
        parts = line.split()[1:]
        r = np.full(n_features, np.nan)
        for p in parts:
            k, v = p.split(":")
            r[int(k)] = float(v)
        rows.append(r)
    return np.array(rows)


def _boosters_input(path: Path) -> np.ndarray:
    feats = json.loads(path.read_text())["features"]
    return np.array([[np.nan if v is None else v for v in r] for r in feats], np.float64)


# model file (relative to the corpus) -> shipped input rows (None: synthesise only)
SHIPPED = {
    "timber/breast_cancer_model.json": lambda n: np.loadtxt(CORPUS / "timber/test_samples.csv", delimiter=",", skiprows=1),
    "tl2cgen/xgb_toy_categorical/xgb_toy_categorical_model.json": lambda n: _libsvm(
        CORPUS / "tl2cgen/xgb_toy_categorical/xgb_toy_categorical.test", n
    ),
    "treebeard/xgb_models/higgs_xgb_model_save.json": lambda n: np.loadtxt(
        CORPUS / "treebeard/xgb_models/higgs_xgb_model_save.json.test.sampled.csv", delimiter=",", max_rows=400
    )[:, :-1],
    "treebeard/xgb_models/year_prediction_msd_xgb_model_save.json": lambda n: np.loadtxt(
        CORPUS / "treebeard/xgb_models/year_prediction_msd_xgb_model_save.json.first500.csv", delimiter=",", max_rows=200
    )[:, :-1],
}
MODELS = sorted(str(p.relative_to(CORPUS)) for p in CORPUS.rglob("*.json") if b'"learner"' in p.open("rb").read(4096))


def _rows(rel: str, module) -> np.ndarray:
    n = module.lookup("margin").function_type.inputs[0].shape[0]
    parts = []
    if rel in SHIPPED:
        parts.append(SHIPPED[rel](n))
    shipped = CORPUS / rel.replace(".model.json", ".input.json")
    if rel.startswith("boosters/") and shipped.exists():
        parts.append(_boosters_input(shipped))
    adv = adversarial_rows(module, n_mixed=96, seed=1)
    rng = np.random.default_rng(0)
    if len(adv) > 600:  # wide models (bosch: 968 features) have thousands of single-value rows
        adv = adv[np.sort(rng.choice(len(adv), 600, replace=False))]
    parts.append(adv)
    with np.errstate(over="ignore"):
        return np.concatenate(parts).astype(F32)


@pytest.mark.parametrize("rel", MODELS)
def test_corpus_model_matches_xgboost(rel):
    path = CORPUS / rel
    assert detect_format(path) == "xgboost"
    module = load_model(path)
    booster = xgb.Booster(model_file=str(path))
    check_parity(module, booster, _rows(rel, module))


def test_corpus_has_the_variants_it_claims():
    """The corpus README lists these XGBoost files; losing one would silently shrink the test."""
    names = set(MODELS)
    for rel in (
        "boosters/xgboost/dart_regression.model.json",
        "boosters/xgboost/gblinear_multiclass.model.json",
        "boosters/xgboost/gbtree_categorical.model.json",
        "tl2cgen/xgb_toy_categorical/xgb_toy_categorical_model.json",
        "treebeard/xgb_models/bosch_xgb_model_save.json",
        "timber/breast_cancer_model.json",
    ):
        assert rel in names


@pytest.mark.parametrize("rel", ["boosters/xgboost/gbtree_multiclass.model.json", "boosters/xgboost/gbtree_categorical.model.json"])
def test_shipped_expected_outputs(rel):
    """The source project's own expected outputs (XGBoost 3.1.1) agree with Timber too."""
    path = CORPUS / rel
    expected = json.loads((CORPUS / rel.replace(".model.json", ".expected.json")).read_text())
    X = _boosters_input(CORPUS / rel.replace(".model.json", ".input.json")).astype(F32)
    module = xf.load(path)
    from ir.interpreter import run

    margin = np.asarray(expected["predictions"], np.float64)
    np.testing.assert_array_equal(run(module, X, "margin").astype(np.float64).reshape(margin.shape), margin)
    np.testing.assert_array_equal(xgb_predict(xgb.Booster(model_file=str(path)), X, margin=True).reshape(margin.shape), margin)


LEGACY = sorted((CORPUS / "leaves" / "legacy_xgboost_binary").glob("*.model"))


@pytest.mark.parametrize("path", LEGACY, ids=[p.name for p in LEGACY])
def test_legacy_binary_models_are_rejected_with_advice(path):
    assert detect_format(path) == "xgboost"
    with pytest.raises(TimberError) as e:
        load_model(path)
    msg = str(e.value)
    assert path.name in msg and "legacy binary" in msg and "save_model('model.json')" in msg
    with pytest.raises(xgb.core.XGBoostError):  # and XGBoost 3.2 itself cannot read them
        xgb.Booster(model_file=str(path))
