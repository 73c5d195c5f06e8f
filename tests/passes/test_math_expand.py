"""`math-expand`: math ops become their arith algorithms, computing the very bits the
interpreter and every back-end compute for the unexpanded op."""

from __future__ import annotations

import numpy as np
import pytest

from ir.dialects import mathimpl
from ir.interpreter import run
from ir.parser import parse_module
from ir.printer import print_op
from ir.verifier import verify
from passes.manager import run_pipeline
from tests.backends.test_llvm import assert_same_bits
from tests.mathref import unary_module

OPS = [
    ("math.sigmoid", ""),
    ("math.softmax", "{acc = f64}"),
    ("math.softmax", '{impl = "fmath"}'),
    *[(name, "") for name in sorted(mathimpl.EXPANSIONS) if name.startswith("math.") and name not in ("math.sigmoid", "math.softmax")],
    ("math.exp", '{impl = "fmath"}'),
]


def module(op: str, attrs: str, t: str, n: int = 3):
    return unary_module(op, t, attrs, n)


def rows(t: str) -> np.ndarray:
    rng = np.random.default_rng(5)
    specials = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 5e-324, 1e-300, 0.5, -0.5, 1.0, -1.0, 710.0, -746.0, 1e300, 1e-8])
    X = np.concatenate([rng.choice(specials, (300, 3)), rng.normal(0, 5, (300, 3)), rng.uniform(-1, 1, (300, 3))])
    with np.errstate(over="ignore"):
        return X.astype(np.float32 if t == "f32" else np.float64)


@pytest.mark.parametrize("t", ["f64", "f32"])
@pytest.mark.parametrize("op, attrs", OPS, ids=[f"{o}{a}" for o, a in OPS])
def test_expanded_module_computes_the_same_bits(op, attrs, t):
    m = module(op, attrs, t)
    X = rows(t)
    want = run(m, X)
    run_pipeline(m, "math-expand")
    verify(m)
    text = print_op(m)
    assert "math." not in text, text
    assert_same_bits(run(m, X), want)
    # and it is a fixpoint
    run_pipeline(m, "math-expand")
    assert print_op(m) == text


def test_keep_leaves_the_libm_functions_as_ops():
    m = module("math.softmax", "{acc = f64}", "f32")
    X = rows("f32")
    want = run(m, X, math="libm")
    run_pipeline(m, "math-expand{keep=exp}")
    text = print_op(m)
    assert text.count("math.exp") == 1 and "math.softmax" not in text
    assert_same_bits(run(m, X, math="libm"), want)


def test_keep_does_not_keep_catboosts_exp():
    """`impl = "fmath"` is not the C library's exp: it expands whatever `keep` says."""
    m = module("math.exp", '{impl = "fmath"}', "f64")
    run_pipeline(m, "math-expand{keep=exp}")
    assert "math.exp" not in print_op(m)


def test_expanded_text_parses_back_identically():
    m = module("math.log1p", "", "f64")
    run_pipeline(m, "math-expand")
    text = print_op(m)
    assert print_op(parse_module(text)) == text
