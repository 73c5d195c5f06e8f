"""One symbol-prefix rule for every back-end, and the compiled model keeps the prefix it was given."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import timber
from backends.c99.emit import emit_c99
from backends.llvm.objfile import emit_object
from backends.wat.emit import emit_wat
from ir.diagnostics import TimberError
from timber.detect import load_model

DEMO = Path(timber.__file__).parent / "examples" / "breast_cancer_xgb.json"


@pytest.mark.parametrize("prefix", ["inference_", "infer_", "x", "fan_model_2_"])
def test_any_identifier_prefix_compiles_and_predicts(prefix):
    """Prefixes containing 'infer' used to confuse the API (it recovered the prefix by splitting)."""
    X = np.random.default_rng(0).normal(size=(20, 30)).astype(np.float32)
    m = timber.compile(DEMO, prefix=prefix)
    assert m.prefix == prefix
    np.testing.assert_array_equal(m.predict(X), timber.compile(DEMO).predict(X))
    assert {e.symbol for e in m.lowered.exports} >= {f"{prefix}infer", f"{prefix}infer_single", f"{prefix}infer_margin"}


@pytest.mark.parametrize("prefix", ["9x_", "has space", "dash-", "", "ünï_"])
def test_a_prefix_that_is_not_a_c_identifier_is_refused_the_same_way_everywhere(prefix):
    module = load_model(DEMO)
    calls = [
        lambda: timber.compile(DEMO, prefix=prefix),
        lambda: emit_c99(module, prefix=prefix),
        lambda: emit_wat(module, prefix=prefix),
        lambda: emit_object(module, "thumbv7m-none-eabi", prefix=prefix),
    ]
    for call in calls:
        with pytest.raises(TimberError, match="is not a C identifier"):
            call()
