"""Timber's sin and cos as kinematics uses them: one reduction for both, and the reduction without
table reads for |x| < 2^22 (`trig.sincos_f64`, `reduce_pio2(fast=True)`), give the very bits of
`math.sin` / `math.cos` (the full-range Payne–Hanek expansion the interpreter runs).

The fast reduction computes the same integers as the full one on every lane it is used for: the
full one reads 2/π's limbs at sp = floor((e + 5)/30), which is 34 for every biased exponent e of
[π/4, 2^22) (1022..1044, all checked below), and the fast one uses those limbs as constants; its
other changes (a0 masked to 30 bits, limbs converted through i32) hold because a0 < 2^23 and the
limbs are below 2^30 there.  The tests check the reductions' outputs (quadrant, y_hi, y_lo) and
the final bits on ~5·10^5 inputs: every exponent with random significands, multiples of π/2 and
their neighbours (where the fraction cancels), the bounds.  The LLVM back-end computes sin and cos
of one value with one call (checked in the assembly) and branches to the fast reduction when no
lane of a block needs the full one; both branches equal the interpreter bit for bit."""

from __future__ import annotations

import math

import numpy as np
import pytest

import timber
from ir.core import Block
from ir.dialects.mathimpl import trig
from ir.dialects.mathimpl.dsl import Emitter
from ir.interpreter import Interpreter, run
from ir.parser import parse_module
from ir.types import FloatType, TensorType

BOUND = 2.0**22
assert np.float64(BOUND).view(np.int64) == trig.FAST_LIMIT_BITS


def _eval(build, x: np.ndarray) -> list[np.ndarray]:
    """Run the ops `build(E)` emits (on a tensor<1xf64> placeholder) on every element of x; the
    arrays of the E values it returns."""
    em = Emitter((1,))
    arg = Block([TensorType((1,), FloatType(64))]).args[0]
    outs = build(em.wrap(arg))
    it = Interpreter()
    return [it.run_ops(em.ops, {id(arg): x.reshape(-1, 1)}, o.v)[:, 0] for o in outs]


def _reduced(x: np.ndarray, fast: bool) -> list[np.ndarray]:
    return _eval(lambda e: trig.reduce_pio2(e.bits() & 0x7FFFFFFFFFFFFFFF, fast), x)


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    return a.dtype == b.dtype and np.array_equal(a.view(np.uint8), b.view(np.uint8))


def inputs(rng) -> np.ndarray:
    """|x| in [π/4, 2^22): every biased exponent with random significands, near multiples of π/2."""
    per = 8192
    exps = np.arange(1022, 1045)
    sig = rng.integers(0, 2**52, (len(exps), per))
    x = ((exps[:, None].astype(np.int64) << 52) | sig).reshape(-1).view(np.float64)
    k = rng.integers(1, int(BOUND / (math.pi / 2)), 40_000)
    m = k * (math.pi / 2)
    edges = [math.pi / 4, 0.5, 1.0, 2.0**21, np.nextafter(BOUND, 0), 4194303.5, 2.0**21 + 0.5]
    x = np.concatenate([x, m, np.nextafter(m, 0), np.nextafter(m, np.inf), edges])
    x = x[(np.abs(x) >= math.pi / 4) & (np.abs(x) < BOUND)]
    return x * rng.choice([-1.0, 1.0], len(x))


@pytest.fixture(scope="module")
def xs():
    return inputs(np.random.default_rng(5))


def test_fast_path_reads_2_over_pi_where_the_full_one_does():
    """sp = floor((e + 5)/30) by the full reduction's multiply-shift is 34 for every exponent of
    [π/4, 2^22), and only there (the bound is where the fast path stops)."""
    e = np.arange(0, 2047)
    sp = ((e + trig.E_BIAS) * trig.DIV30_MUL) >> trig.DIV30_SHIFT
    assert set(sp[1022:1045]) == {trig.FAST_SP}
    assert sp[1045] != trig.FAST_SP
    assert np.float64(math.pi / 4).view(np.int64) >> 52 == 1022


def test_fast_reduction_equals_the_full_one(xs):
    fast, full = _reduced(xs, True), _reduced(xs, False)
    for a, b, what in zip(fast, full, ("quadrant", "y_hi", "y_lo")):
        assert _same(a, b), f"{what} differs at x = {xs[np.flatnonzero(a.view(np.uint8).reshape(len(xs), -1).any(1) != 0)[:1]]}"


def test_sincos_pair_is_math_sin_and_cos_bit_for_bit(xs):
    """The pair (both reductions) against the math.sin / math.cos expansions, on these inputs and on
    small, huge and special ones (where the fast pair's reduction is unused or selected away)."""
    rng = np.random.default_rng(6)
    specials = np.array([0.0, -0.0, 5e-324, -1e-300, 1e-8, np.inf, -np.inf, np.nan, 2.0**1023, -1e300, BOUND, -(2.0**30)])
    small = rng.uniform(-math.pi / 4, math.pi / 4, 20_000)
    x = np.concatenate([xs[::4], specials, small])
    want_s, want_c = _eval(lambda e: (trig.sin_f64(e), trig.cos_f64(e)), x)
    s, c = _eval(lambda e: trig.sincos_f64(e), x)
    assert _same(s, want_s) and _same(c, want_c)
    ok = (np.abs(x) < BOUND) | ~np.isfinite(x)
    s, c = _eval(lambda e: trig.sincos_f64(e, fast=True), x[ok])
    assert _same(s, want_s[ok]) and _same(c, want_c[ok])


SINCOS = """func.func @predict(%x: tensor<1x{t}>) -> tensor<2x{t}> {{
  %s = math.sin %x : tensor<1x{t}>
  %c = math.cos %x : tensor<1x{t}>
  %r = arith.concat %s, %c : tensor<1x{t}>, tensor<1x{t}> -> tensor<2x{t}>
  func.return %r : tensor<2x{t}>
}}"""


@pytest.mark.parametrize("t", ["f64", "f32"])
def test_jit_sincos_equals_the_interpreter_in_both_branches(t, xs):
    """Blocks whose lanes are all below 2^22 (fast branch), blocks with one huge or non-finite lane
    (full branch, or fast: ±inf/NaN lanes do not need the full one), short tails; one sin/cos call."""
    m = parse_module(SINCOS.format(t=t))
    cm = timber.compile(m, n_jobs=1, math="timber")
    rng = np.random.default_rng(7)
    dt = np.float64 if t == "f64" else np.float32
    x = np.concatenate([xs[:4000], rng.uniform(-4, 4, 4000)]).astype(dt)
    rng.shuffle(x)
    x[::37] = rng.choice(np.array([1e30, -3e7, 2.0**22, np.inf, np.nan, -0.0, 7e22], dt), len(x[::37]))
    x = np.concatenate([x, [np.float32(2.0**22 - 0.5)], xs[:5].astype(dt)])  # a tail shorter than a block
    got = cm.predict(x.reshape(-1, 1))
    want = run(m, x.reshape(-1, 1), math="timber")
    np.testing.assert_array_equal(got.view(np.uint8), want.view(np.uint8))
    asm = cm.jit.assembly()
    body = asm.split(f"{cm.prefix}infer:")[1].split(".Lfunc_end")[0]
    elem = "double" if t == "f64" else "float"
    assert body.count(f"x_sincos_{elem}_v{cm.lowered.block_rows}") == 1  # sin and cos of %x: one call per block


def test_libm_mode_calls_sincos_once_per_value_with_sin_and_cos_bits(tmp_path):
    """math="libm" (the default): the sin and cos of one joint angle are one call of the C
    library's sincos per lane, giving exactly the bits of its sin and cos (the interpreter's libm
    mode calls those separately)."""
    from tests.test_op_coverage import _URDF

    path = tmp_path / "r.urdf"
    path.write_text(_URDF)
    model = timber.compile(str(path), math="libm")
    assert "call void @sincos(" in model.llvm_ir
    module = timber.load(str(path))
    from passes.manager import run_pipeline

    run_pipeline(module, "default")
    rng = np.random.default_rng(4)
    Q = np.concatenate([rng.uniform(-4, 4, (300, 2)), rng.uniform(-1e6, 1e6, (100, 2)), [[np.nan, np.inf], [0.0, -0.0]]])
    np.testing.assert_array_equal(model.predict(Q), run(module, Q, math="libm"))
