"""Every scikit-learn-made file (pickle, joblib) in the shared model corpus compiles and equals
scikit-learn's own call; skipped when the corpus is absent or holds none (it held none when this
was written: its models are XGBoost, LightGBM, CatBoost and ONNX)."""

from __future__ import annotations

import glob
import os

import numpy as np
import pytest

CORPUS = os.path.join(os.path.dirname(__file__), "..", "..", "..", "..", "shared", "corpus")
FILES = sorted(p for ext in ("pkl", "pickle", "joblib") for p in glob.glob(os.path.join(CORPUS, "**", f"*.{ext}"), recursive=True))


@pytest.mark.skipif(not FILES, reason="no scikit-learn files in ../shared/corpus")
@pytest.mark.parametrize("path", FILES, ids=[os.path.relpath(p, CORPUS) for p in FILES])
def test_corpus_file(path):
    joblib = pytest.importorskip("joblib")
    from timber.frontends import sklearn as sk

    from .helpers import default_method, parity_rows, predict, reference

    est = joblib.load(path)  # the reference needs the real object; the corpus is trusted input
    module = sk.load(path)
    X, ref = reference(est, default_method(est), parity_rows(module))
    np.testing.assert_array_equal(predict(module, X), np.hstack(ref) if isinstance(ref, list) else ref)
