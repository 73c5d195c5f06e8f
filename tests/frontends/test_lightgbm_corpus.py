"""Every LightGBM model in ../shared/corpus (written by other projects, LightGBM v2-v4) compiles
and matches LightGBM 4.7, on the rows shipped with it and on rows synthesised from the model's
own feature ranges and split thresholds.  Skips when the corpus is absent."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

lgb = pytest.importorskip("lightgbm")

from ir.interpreter import run  # noqa: E402
from ir.parser import parse_module  # noqa: E402
from ir.printer import print_op  # noqa: E402
from timber.frontends import lightgbm as tl  # noqa: E402

try:  # the helpers live beside this file; import them whether or not tests/frontends is a package
    from .test_lightgbm import adversarial_rows, check
except ImportError:
    from test_lightgbm import adversarial_rows, check

CORPUS = Path(__file__).resolve().parents[2].parent / "shared" / "corpus"
pytestmark = pytest.mark.skipif(not CORPUS.is_dir(), reason="../shared/corpus is absent")


def _lightgbm_files() -> list[str]:
    if not CORPUS.is_dir():
        return []
    out = []
    for p in sorted(CORPUS.rglob("*")):
        if p.is_file() and p.suffix in (".txt", ".model"):
            with open(p, "rb") as f:
                if f.read(5) == b"tree\n":
                    out.append(str(p.relative_to(CORPUS)))
    return out


FILES = _lightgbm_files()


def _synthesise(module, rng, n=120) -> np.ndarray:
    """Rows drawn from each feature's `feature_infos` range or category list."""
    infos = module.attributes["timber.feature_types"].items if "timber.feature_types" in module.attributes else None
    text = _header_infos(module)
    n_features = module.lookup("margin").function_type.inputs[0].shape[0]
    X = rng.normal(size=(n, n_features))
    for j, info in enumerate(text[:n_features]):
        if info.startswith("[") and ":" in info:
            lo, hi = (float(v) for v in info[1:-1].split(":"))
            X[:, j] = rng.uniform(lo - 0.1 * abs(hi - lo), hi + 0.1 * abs(hi - lo), n)
        elif info != "none":
            cats = [int(c) for c in info.split(":")]
            X[:, j] = rng.choice(cats + [max(cats) + 1, -1], n)
    assert infos is None or len(infos) == n_features
    X[rng.random(X.shape) < 0.05] = np.nan
    return X


_INFOS: dict[str, list[str]] = {}


def _header_infos(module) -> list[str]:
    src = module.attributes["timber.source"].value
    if src not in _INFOS:
        head = Path(src).read_text(errors="replace").split("\nTree=", 1)[0]
        line = next((s for s in head.splitlines() if s.startswith("feature_infos=")), "feature_infos=")
        _INFOS[src] = line[len("feature_infos=") :].split()
    return _INFOS[src]


@pytest.mark.parametrize("name", FILES)
def test_corpus_model_matches_lightgbm(name):
    path = CORPUS / name
    module = tl.load(path)
    booster = lgb.Booster(model_file=str(path))
    rng = np.random.default_rng(7)
    base = _synthesise(module, rng)
    limit = 300 if booster.num_trees() > 300 else 1500
    check(module, booster, adversarial_rows(module, base, rng, limit=limit))


@pytest.mark.parametrize("name", [f for f in FILES if (CORPUS / f).stat().st_size < 400_000])
def test_corpus_model_roundtrips(name):
    text = print_op(tl.load(CORPUS / name))
    assert print_op(parse_module(text)) == text


def _libsvm(path: Path, n_features: int, absent: float) -> np.ndarray:
    X = np.full((0, n_features), absent)
    rows = []
    for line in path.read_text().splitlines():
        if not line.strip():
            continue
        r = np.full(n_features, absent)
        for item in line.split()[1:]:
            k, v = item.split(":")
            r[int(k)] = float(v)
        rows.append(r)
    return np.array(rows) if rows else X


# (model, rows, reference file, raw?, exact-to-shipped?) — shipped values the README says still hold
SHIPPED = [
    ("leaves/lg_dart_breast_cancer.model", "leaves/breast_cancer_test.tsv", "leaves/lg_dart_breast_cancer_true_predictions.txt", False),
    ("leaves/lg_kddcup99.model", "leaves/kddcup99_test.tsv", "leaves/lg_kddcup99_true_predictions.txt", True),
    ("leaves/lgmulticlass.model", "leaves/multiclass_test.tsv#label", "leaves/lgmulticlass_true_raw_predictions.txt", True),
    ("leaves/lgmulticlass.model", "leaves/multiclass_test.tsv#label", "leaves/lgmulticlass_true_predictions.txt", False),
    (
        "leaves/genlin_fmtp_gamma_AvgClaimAmount.model",
        "leaves/genlin_fmtp_gamma_AvgClaimAmount_features.tsv",
        "leaves/genlin_fmtp_gamma_AvgClaimAmount_true_predictions.txt",
        False,
    ),
    (
        "leaves/genlin_fmtp_poisson_Frequency.model",
        "leaves/genlin_fmtp_poisson_Frequency_features.tsv",
        "leaves/genlin_fmtp_poisson_Frequency_true_predictions.txt",
        False,
    ),
    (
        "leaves/genlin_fmtp_tweedie_PurePremium.model",
        "leaves/genlin_fmtp_tweedie_PurePremium_features.tsv",
        "leaves/genlin_fmtp_tweedie_PurePremium_true_predictions.txt",
        False,
    ),
    (
        "treelite/toy_categorical/toy_categorical_model.txt",
        "treelite/toy_categorical/toy_categorical.test#libsvm0",
        "treelite/toy_categorical/toy_categorical.test.pred",
        False,
    ),
    (
        "treelite/sparse_categorical/sparse_categorical_model.txt",
        "treelite/sparse_categorical/sparse_categorical.test#libsvmnan",
        "treelite/sparse_categorical/sparse_categorical.test.margin",
        True,
    ),
    (
        "boosters/lightgbm/linear_tree/model.txt",
        "boosters/lightgbm/linear_tree/input.json",
        "boosters/lightgbm/linear_tree/expected.json",
        True,
    ),
    (
        "boosters/lightgbm/regression_missing/model.txt",
        "boosters/lightgbm/regression_missing/input.json",
        "boosters/lightgbm/regression_missing/expected.json",
        True,
    ),
    (
        "boosters/lightgbm/multiclass/model.txt",
        "boosters/lightgbm/multiclass/input.json",
        "boosters/lightgbm/multiclass/expected.json",
        True,
    ),
    ("leaves/lg_rf_iris.model", "leaves/iris_test.libsvm#libsvm0", "leaves/lg_rf_iris_true_predictions.txt", None),
    ("leaves/lg_breast_cancer.txt", "leaves/lg_breast_cancer_data.txt", None, False),
    ("timber/lgb_breast_cancer.txt", "timber/test_samples.csv", None, False),
]


def _rows(spec: str, n_features: int) -> np.ndarray:
    path, _, kind = spec.partition("#")
    p = CORPUS / path
    if kind.startswith("libsvm"):
        return _libsvm(p, n_features, np.nan if kind == "libsvmnan" else 0.0)
    if p.suffix == ".json":
        return np.array([[np.nan if v is None else v for v in r] for r in json.loads(p.read_text())["data"]], float)
    if p.suffix == ".csv":
        return np.loadtxt(p, delimiter=",", skiprows=1)
    X = np.loadtxt(p)
    return X[:, 1:] if kind == "label" else X


def _expected(path: str, n: int) -> np.ndarray:
    p = CORPUS / path
    if p.suffix == ".json":
        return np.array(json.loads(p.read_text())["raw"], float)
    return np.loadtxt(p).reshape(n, -1)


@pytest.mark.parametrize("model,rows,expected,raw", SHIPPED, ids=[f"{m}:{Path(e).name if e else 'rows'}" for m, _, e, _ in SHIPPED])
def test_shipped_rows(model, rows, expected, raw):
    path = CORPUS / model
    module = tl.load(path)
    booster = lgb.Booster(model_file=str(path))
    X = _rows(rows, booster.num_feature())
    check(module, booster, X)
    if expected is None:
        return
    want = _expected(expected, len(X))
    if raw is None:
        # lg_rf_iris: LightGBM 2.x shipped the plain average; 4.7 returns that average only
        # inside predict() (before the sigmoid).  Our margin / iterations equals it.
        got = run(module, X, "margin") / module.attributes["timber.num_iteration"].value
        np.testing.assert_allclose(got.reshape(want.shape), want, rtol=1e-15, atol=0)
        return
    got = run(module, X, "margin" if raw else "predict").reshape(want.shape)
    # The README records these shipped files as reproduced by LightGBM 4.7 to <= 3e-14 (most
    # bit for bit); text files print 16-18 digits, so compare to 1e-15 relative.
    np.testing.assert_allclose(got, want, rtol=1e-15, atol=1e-17)
