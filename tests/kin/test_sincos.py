"""Timber's sin and cos as kinematics uses them: Cody–Waite's reduction for |x| < 2^10 (joint
angles), Payne–Hanek's beyond, one reduction for both sin and cos (`trig.sincos_f64`), and the
LLVM back-end's branch to Cody–Waite's reduction alone when every lane of a block is below 2^10
(or not finite), all giving the very bits of `math.sin` / `math.cos` (the expansion the
interpreter, C99 and WebAssembly run).

The tests check the Cody–Waite reduction against mpmath (every exponent below 2^10 with random
significands, the doubles next to multiples of π/2, where y cancels down to 2^-60.5), its
agreement with Payne–Hanek's where both apply, sin/cos within an ulp of the correctly rounded
value there, and the final bits of the pair, the fast pair and the JIT's two branches against
the interpreter."""

from __future__ import annotations

import math

import mpmath as mp
import numpy as np
import pytest

import timber
from ir.core import Block
from ir.dialects.mathimpl import trig
from ir.dialects.mathimpl.dsl import Emitter
from ir.interpreter import Interpreter, run
from ir.parser import parse_module
from ir.types import FloatType, TensorType

BOUND = trig.CW_LIMIT
assert BOUND == 2.0**10 and np.float64(BOUND).view(np.int64) == trig.FAST_LIMIT_BITS
TOP_EXP = int(np.float64(BOUND).view(np.int64) >> 52)  # the biased exponent of BOUND


def _eval(build, x: np.ndarray) -> list[np.ndarray]:
    """Run the ops `build(E)` emits (on a tensor<1xf64> placeholder) on every element of x; the
    arrays of the E values it returns."""
    em = Emitter((1,))
    arg = Block([TensorType((1,), FloatType(64))]).args[0]
    outs = build(em.wrap(arg))
    it = Interpreter()
    return [it.run_ops(em.ops, {id(arg): x.reshape(-1, 1)}, o.v)[:, 0] for o in outs]


def _cody_waite(x: np.ndarray) -> list[np.ndarray]:
    return _eval(lambda e: trig.reduce_cw((e.bits() & 0x7FFFFFFFFFFFFFFF).as_float()), x)


def _payne_hanek(x: np.ndarray) -> list[np.ndarray]:
    return _eval(lambda e: trig.reduce_pio2(e.bits() & 0x7FFFFFFFFFFFFFFF), x)


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    return a.dtype == b.dtype and np.array_equal(a.view(np.uint8), b.view(np.uint8))


def _near_multiples(rng, n: int, top: float, every: bool = False) -> np.ndarray:
    """The doubles nearest k·π/2 (k random below top·2/π, or `every` such k) and their neighbours."""
    kmax = int(top / (math.pi / 2))
    k = np.arange(1, kmax + 1) if every else rng.integers(1, kmax + 1, n)
    with mp.workprec(200):
        m = np.array([float(int(j) * mp.pi / 2) for j in k])
    m = m[m < top]
    return np.concatenate([m, np.nextafter(m, 0), np.nextafter(m, np.inf)])


def inputs(rng) -> np.ndarray:
    """|x| in [π/4, 2^10): every biased exponent with random significands, near multiples of π/2."""
    per = 8192
    exps = np.arange(1022, TOP_EXP)
    sig = rng.integers(0, 2**52, (len(exps), per))
    x = ((exps[:, None].astype(np.int64) << 52) | sig).reshape(-1).view(np.float64)
    edges = [math.pi / 4, 0.5, 1.0, BOUND / 2, np.nextafter(BOUND, 0), BOUND - 0.5, BOUND / 2 + 0.5, 29 * math.pi / 2]
    x = np.concatenate([x, _near_multiples(rng, 4000, BOUND), edges])
    x = x[(np.abs(x) >= math.pi / 4) & (np.abs(x) < BOUND)]
    return x * rng.choice([-1.0, 1.0], len(x))


@pytest.fixture(scope="module")
def xs():
    return inputs(np.random.default_rng(5))


def test_cody_waite_reduction_against_mpmath():
    """|x| = n·π/2 + y_hi + y_lo with |y| ≤ π/4 (+ an ulp), n mod 4 right, and y_hi + y_lo within
    2^-100·|y| + 2^-126 of the exact y (fn·C3's rounding and π/2's tail past C3, fn < 2^10), on
    random |x| below 2^10 of every exponent and next to every multiple of π/2 there (where y is
    as small as 2^-60.5): 2^-66 relative at worst."""
    rng = np.random.default_rng(11)
    x = np.abs(inputs(rng))
    every = np.abs(_near_multiples(rng, 0, BOUND, every=True))
    x = np.concatenate([x[rng.choice(len(x), 3000, replace=False)], every])
    n, yh, yl = _cody_waite(x)
    assert np.all(np.abs(yh) <= math.pi / 4 * (1 + 2**-40))
    with mp.workprec(400):
        pio2 = mp.pi / 2
        for xi, ni, h, lo in zip(x, n, yh, yl):
            k = int(mp.nint(mp.mpf(float(xi)) / pio2 - mp.mpf(float(h)) / pio2))
            assert k % 4 == ni, xi
            exact = mp.mpf(float(xi)) - k * pio2
            err = abs(mp.mpf(float(h)) + mp.mpf(float(lo)) - exact)
            assert err <= abs(exact) * mp.mpf(2) ** -100 + mp.mpf(2) ** -126, (xi, float(err / abs(exact)))
            assert err <= abs(exact) * mp.mpf(2) ** -65, (xi, float(err / abs(exact)))


def test_cody_waite_small_arguments_are_exact():
    """|x| < π/4 (zeros and subnormals too): n = 0, y_hi = |x|, y_lo = 0 (no reduction)."""
    rng = np.random.default_rng(12)
    x = np.concatenate([[0.0, -0.0, 5e-324, 2.2e-308, 1e-300, 1e-8, np.nextafter(math.pi / 4, 0)], rng.uniform(0, math.pi / 4, 5000)])
    n, yh, yl = _cody_waite(x)
    assert np.all(n == 0) and _same(yh, np.abs(x)) and np.all(yl == 0)


def test_cody_waite_agrees_with_payne_hanek(xs):
    """Where both reductions apply (π/4 ≤ |x| < 2^10): the same quadrant and y_hi, and y_lo within
    2^-77·|y| + 2^-116 (Payne–Hanek's y = f·π/2 uses π/2 to about 2^-80 relative and f to 2^-120;
    Cody–Waite's is better: both far beyond what sin and cos need)."""
    cw, ph = _cody_waite(xs), _payne_hanek(xs)
    assert _same(cw[0], ph[0]) and _same(cw[1], ph[1])
    assert np.all(np.abs(cw[2] - ph[2]) <= np.abs(cw[1]) * 2.0**-77 + 2.0**-116)


def test_sin_cos_below_the_limit_within_an_ulp_of_mpmath():
    """Next to multiples of π/2 below 2^10, where the reduction cancels most: within one ulp of the
    correctly rounded sin and cos (mpmath)."""
    from tests.ir.test_mathimpl import _cr, ulps

    x = _near_multiples(np.random.default_rng(13), 300, BOUND)
    s, c = _eval(lambda e: trig.sincos_f64(e), x)
    assert ulps(s, _cr(mp.sin, x, 400)).max() <= 1 and ulps(c, _cr(mp.cos, x, 400)).max() <= 1


def test_sincos_pair_is_math_sin_and_cos_bit_for_bit(xs):
    """The pair (both reductions) against the math.sin / math.cos expansions, on these inputs and on
    small, huge and special ones; the fast pair (Cody–Waite's alone) where it is taken."""
    rng = np.random.default_rng(6)
    specials = np.array(
        [0.0, -0.0, 5e-324, -1e-300, 1e-8, np.inf, -np.inf, np.nan, 2.0**1023, -1e300, BOUND, -(2.0**30), np.nextafter(BOUND, 0)]
    )
    small = rng.uniform(-math.pi / 4, math.pi / 4, 20_000)
    big = rng.uniform(-1e9, 1e9, 5000)
    x = np.concatenate([xs[::4], specials, small, big])
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
    """Blocks whose lanes are all below 2^10 (fast branch), blocks with one huge or non-finite lane
    (full branch, or fast: ±inf/NaN lanes do not need the full one), short tails; one sin/cos call."""
    m = parse_module(SINCOS.format(t=t))
    cm = timber.compile(m, n_jobs=1, math="timber")
    rng = np.random.default_rng(7)
    dt = np.float64 if t == "f64" else np.float32
    x = np.concatenate([xs[:4000], rng.uniform(-4, 4, 4000)]).astype(dt)
    rng.shuffle(x)
    x[::37] = rng.choice(np.array([1e30, -3e7, BOUND, np.inf, np.nan, -0.0, 7e22, 1500.0], dt), len(x[::37]))
    x = np.concatenate([x, [np.float32(BOUND - 0.5)], xs[:5].astype(dt)])  # a tail shorter than a block
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
