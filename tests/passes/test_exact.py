"""Every exact pass, and the default pipeline: predictions bit-identical after it, on random IR
with every tree-dialect feature and on models of every front-end (adversarial + random rows),
the result verifying and round-tripping, and a second run changing nothing (idempotence)."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from passes.registry import PIPELINES, all_passes
from tests.passes.models import CORPUS_MODELS, FRAMEWORK_MODELS, VARIANTS, check_exact, corpus_module, framework_module, random_module

# Rows far outside float32 range overflow to inf when cast for an f32 model: intended.
pytestmark = pytest.mark.filterwarnings("ignore:overflow encountered in cast:RuntimeWarning")

CALIBRATION = "tree-sort-branches{calibration=%s}"


def _pipelines() -> dict[str, str]:
    """Pipeline text per exact pass and option variant (sort-branches needs calibration rows:
    tested separately), plus the default pipeline."""
    out = {cls.name: cls.name for cls in all_passes() if cls.exact and cls.name != "tree-sort-branches"}
    out["default"] = "default"
    out["narrow-input-f32"] = "tree-narrow-thresholds{input=f32}"
    out["narrow-no-rewrite"] = "tree-narrow-thresholds{rewrite=false}"
    out["vectorize-wl"] = "tree-vectorize-analysis{method=wl}"
    return out


PIPES = _pipelines()
EXACT = sorted(PIPES)


def _with_calibration(tmp_path, module, seed=0):
    n = module.lookup("margin").function_type.inputs[0].shape[0]
    rows = np.random.default_rng(seed).normal(size=(200, n)) * 3
    rows[rows > 4] = np.nan
    path = tmp_path / f"cal{seed}.npy"
    np.save(path, rows)
    return CALIBRATION % path


@pytest.mark.parametrize("name", EXACT)
@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(variant=st.sampled_from(sorted(VARIANTS)), seed=st.integers(0, 100_000))
def test_exact_on_random_ir(name, variant, seed):
    m = random_module(variant, seed)
    check_exact(m, PIPES[name])


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(variant=st.sampled_from(sorted(VARIANTS)), seed=st.integers(0, 100_000))
def test_sort_branches_exact_on_random_ir(tmp_path, variant, seed):
    m = random_module(variant, seed)
    check_exact(m, _with_calibration(tmp_path, m, seed))


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


def test_every_pass_is_covered():
    names = {c.name for c in all_passes()}
    exact = {c.name for c in all_passes() if c.exact}
    assert exact - {"tree-sort-branches"} <= set(EXACT)
    assert names - exact == {"tree-prune-leaves"}  # the one lossy pass: tests/passes/test_prune.py
