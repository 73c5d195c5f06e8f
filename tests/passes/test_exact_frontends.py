"""Every exact pass on models of every front-end (XGBoost, LightGBM, CatBoost trained here) and
on corpus files: predictions bit-identical after it on adversarial + random rows, verified,
round-tripping, idempotent."""

import pytest

from passes.registry import PIPELINES
from tests.passes.models import CORPUS_MODELS, FRAMEWORK_MODELS, check_exact, corpus_module, framework_module
from tests.passes.test_exact import EXACT, PIPES, _with_calibration

pytestmark = pytest.mark.filterwarnings("ignore:overflow encountered in cast:RuntimeWarning")


@pytest.mark.parametrize("model", FRAMEWORK_MODELS)
@pytest.mark.parametrize("name", EXACT + ["tree-sort-branches"])
def test_exact_on_framework_models(name, model, tmp_path, tmp_path_factory):
    m = framework_module(model, tmp_path_factory)
    pipe = _with_calibration(tmp_path, m) if name == "tree-sort-branches" else PIPES[name]
    check_exact(m, pipe)


@pytest.mark.parametrize("rel", CORPUS_MODELS)
def test_default_pipeline_exact_on_corpus(rel, tmp_path):
    m = corpus_module(rel)
    check_exact(m, PIPELINES["default"])
    # Sorting invalidates the shape analysis of the default pipeline, so it is checked on its own.
    check_exact(m, _with_calibration(tmp_path, m))
