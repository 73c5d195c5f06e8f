"""Every exact pass, and the default pipeline, on random IR with every tree-dialect feature:
predictions bit-identical after it (adversarial + random rows), the result verifying and
round-tripping, and a second run changing nothing (idempotence).  Front-end models:
test_exact_frontends.py."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from passes.registry import all_passes
from tests.passes.models import VARIANTS, check_exact, random_module

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


def test_every_pass_is_covered():
    names = {c.name for c in all_passes()}
    exact = {c.name for c in all_passes() if c.exact}
    assert exact - {"tree-sort-branches"} <= set(EXACT)
    # the lossy passes, each with its own error-bound tests: tests/passes/test_prune.py,
    # tests/backends/test_objects_accumulate_f32.py, and tests/kin (within 1e-12 of Pinocchio)
    assert names - exact == {"tree-prune-leaves", "tree-accumulate-f32", "kin-fold-fixed", "kin-specialize-axes"}
