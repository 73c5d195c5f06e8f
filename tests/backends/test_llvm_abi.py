"""LLVM back-end: batch sizes and tails, wide rows, exported symbols and prefixes, random
modules from tests/irgen.py, and the diagnostics of what cannot be lowered or exported."""

from __future__ import annotations

import numpy as np
import pytest

from backends.llvm.lower import lower_module
from ir.core import Operation
from ir.diagnostics import TimberError
from ir.dialects import arith, func
from ir.dialects.tree import Missing
from ir.interpreter import run as interpret
from ir.types import f32, f64, tensor
from tests import rows as adv
from tests.backends.test_llvm import HOST, add_func, assert_same_bits, call, check, forest, jit, new_module, ret
from tests.irgen import random_module


@pytest.mark.parametrize("n", [0, 1, 7, 8, 9, 63, 64, 65, 127, 200])
def test_batch_sizes_and_tails(n):
    """Full blocks, masked partial blocks and row-by-row tails give the same bits as the interpreter."""
    m = random_module(12, n_features=11, n_outputs=3, transform="softmax")
    j = jit(m)
    X = adv.adversarial_rows(m, n_mixed=300)[:n]
    assert_same_bits(call(j, X), interpret(m, X) if n else np.zeros((0, 3), np.float32))


def test_wide_inputs_use_loops():
    """Many features: the transposition and the missing-value scan are loops, not unrolled."""
    rng = np.random.default_rng(13)
    m = forest(rng, 20, 300, [6, 8], missing=(Missing.NAN,))
    X = rng.normal(size=(150, 300))
    X[rng.random(X.shape) < 0.01] = np.nan
    check(m, X)


def test_exports_prefix_and_two_models_side_by_side():
    m1, m2 = random_module(14, transform="none"), random_module(15, transform="sigmoid")
    j1, j2 = jit(m1, prefix="a_"), jit(m2, prefix="b_")
    assert set(j1.functions) == {"a_infer", "a_infer_single", "a_infer_margin"}
    X = adv.adversarial_rows(m1, n_mixed=50)
    assert_same_bits(call(j1, X, "a_infer"), interpret(m1, X))
    assert_same_bits(call(j2, X, "b_infer"), interpret(m2, X))
    assert "define i32 @a_infer_single(ptr noalias %x, ptr noalias %out, ptr %ctx)" in j1.lowered.text


def test_bad_prefix_and_unexportable_function():
    with pytest.raises(TimberError, match="prefix"):
        lower_module(random_module(16), HOST, prefix="bad prefix")
    m = new_module()
    f = func.FuncOp.build("predict", [tensor(2, f32), tensor(2, f32)], [tensor(2, f32)], arg_names=["a", "b"])
    m.body.add_op(f)
    ret(f, f.body.add_op(arith.AddFOp.build(f.args[0], f.args[1])).result)
    with pytest.raises(TimberError, match="cannot export @predict"):
        lower_module(m, HOST)


@pytest.mark.parametrize("seed", range(6))
def test_random_modules(seed):
    """Random modules (tests/irgen.py): every predicate, missing kind, categorical set, vector
    and linear leaves, oblivious trees, in random precisions."""
    rng = np.random.default_rng(seed)
    types = [f32, f64]
    kw = dict(
        input_type=types[rng.integers(2)],
        compare=types[rng.integers(2)],
        leaves=types[rng.integers(2)],
        acc=types[rng.integers(2)],
        oblivious=bool(rng.integers(2)),
        linear=seed % 3 == 0,
        n_outputs=int(rng.integers(1, 4)),
        cat_negative=["value", "code"][seed % 2],
    )
    kw["transform"] = (
        ["none", "sigmoid", "softmax", "argmax", "exp"][seed % 5] if kw["n_outputs"] > 1 else ["none", "sigmoid", "exp"][seed % 3]
    )
    kw["vector_leaves"] = kw["n_outputs"] > 1 and seed % 2 == 0
    m = random_module(100 + seed, n_trees=16, **kw)
    check(m, adv.adversarial_rows(m, n_mixed=200))


def test_lowering_reports_ops_it_does_not_know():
    m = new_module()
    f = add_func(m, "predict", 2, f32, tensor(2, f32))
    unknown = f.body.add_op(Operation(operands=[f.args[0]], result_types=[tensor(2, f32)]))
    ret(f, unknown.results[0])
    with pytest.raises(TimberError, match="cannot lower 'builtin.unregistered'"):
        lower_module(m, HOST)
