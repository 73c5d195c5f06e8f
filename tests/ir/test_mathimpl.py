"""Timber's own math functions (`ir/dialects/mathimpl/`), run by the interpreter as every back-end
lowers them: log, sin, cos and tanh against this process's glibc, erfinv against mpmath, the
special values exactly, and exp and log1p unchanged.

The default tests use a few hundred thousand inputs per function; the `slow` ones sweep more than
10^6 (`pytest -m slow tests/ir/test_mathimpl.py -s` prints the measured figures quoted below).
"""

from __future__ import annotations

import math
from functools import cache

import mpmath as mp
import numpy as np
import pytest

from ir import libm
from ir.interpreter import run
from tests import mathref
from tests.mathref import unary_module

F64, F32 = np.float64, np.float32


@cache
def _module(op: str, t: str):
    return unary_module(op, t)


def ours(name: str, x: np.ndarray) -> np.ndarray:
    """math.<name> on every element of x (f32 or f64) as the interpreter runs its expansion."""
    t = "f32" if x.dtype == F32 else "f64"
    return run(_module(f"math.{name}", t), x.reshape(-1, 1))[:, 0]


def ulps(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Distance in ulps (units in the last place of a's type) between a and b, counting the
    representable values between them (−0 and +0 are one apart); NaN and NaN are 0 apart, NaN and
    a number 2^62."""
    it = np.int64 if a.dtype == F64 else np.int32
    ia, ib = a.view(it).astype(np.int64), b.astype(a.dtype).view(it).astype(np.int64)
    lo = np.int64(np.iinfo(it).min)
    ia = np.where(ia < 0, lo - ia - 1, ia)  # order the bit patterns: −0 just below +0
    ib = np.where(ib < 0, lo - ib - 1, ib)
    d = np.abs(ia - ib)
    na, nb = np.isnan(a), np.isnan(b)
    return np.where(na & nb, 0, np.where(na | nb, 2**62, d))


def same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    return bool(np.all((a.view(np.uint8) == b.view(np.uint8)).reshape(len(a), -1).all(axis=1) | (np.isnan(a) & np.isnan(b))))


def glibc(name: str, x: np.ndarray) -> np.ndarray:
    return libm.call(name, x)


def _cr(fn, x: np.ndarray, prec: int = 160) -> np.ndarray:
    """The correctly rounded fn (an mpmath function) at each element, in x's type."""
    with mp.workprec(prec):
        return np.array([float(fn(mp.mpf(float(v)))) for v in x]).astype(x.dtype)


def _finite_bits(rng, n, dt=F64) -> np.ndarray:
    """n finite values of type dt with uniformly random bit patterns (either sign)."""
    u, top = (np.uint64, 0x7FF0000000000000) if dt == F64 else (np.uint32, 0x7F800000)
    width = 8 * np.dtype(u).itemsize
    bits = rng.integers(0, top, n, dtype=u) | (rng.integers(0, 2, n, dtype=u) << u(width - 1))
    return bits.view(dt)


def _report(name, d, n):
    print(f"{name}: {n} inputs, max {int(d.max())} ulp, {100 * np.mean(d != 0):.4f}% differ")


# ----- inputs -------------------------------------------------------------------------------------


def log_inputs(rng, n: int) -> np.ndarray:
    k = n // 6
    edges = np.array(
        [
            1.0,
            2.0,
            0.5,
            math.sqrt(2),
            math.sqrt(0.5),
            1 + 2**-20,
            1 - 2**-20,
            1 + 2**-52,
            1 - 2**-53,
            5e-324,
            2.2250738585072014e-308,
            1.7976931348623157e308,
        ]
    )
    near = np.concatenate([np.nextafter(edges, 0), np.nextafter(edges[:-1], np.inf)])
    return np.concatenate(
        [
            np.abs(_finite_bits(rng, k)),
            np.exp(rng.uniform(-745, 709.7, k)),
            rng.uniform(0.5, 2.0, k),
            1 + rng.normal(0, 2**-18, k),
            rng.uniform(0, 2.2250738585072014e-308, k // 4),
            rng.uniform(0.7, 1.45, k),
            edges,
            near,
        ]
    )


def trig_inputs(rng, n: int) -> np.ndarray:
    k = n // 7
    sign = rng.choice([-1.0, 1.0], k)
    multiples = rng.integers(1, 2**40, k // 4) * (math.pi / 2)  # near multiples of π/2: cancellation
    return np.concatenate(
        [
            rng.uniform(-4, 4, k),
            rng.uniform(-100, 100, k),
            rng.uniform(-(2**20) * math.pi, 2**20 * math.pi, k),
            sign * np.exp(rng.uniform(-20, 709.7, k)),
            _finite_bits(rng, k),
            multiples,
            np.nextafter(multiples, 0),
            np.nextafter(multiples, np.inf),
            sign[: k // 4] * np.exp(rng.uniform(-745, -20, k // 4)),
            np.array(
                [math.pi / 4, np.nextafter(math.pi / 4, 1), np.nextafter(math.pi / 4, 0), 2.0**1023, 1.7976931348623157e308, 1e22, 1e300]
            ),
        ]
    )


def tanh_inputs(rng, n: int) -> np.ndarray:
    k = n // 6
    edges = np.array([1 / 16, 1.0, 22.0, 2.0**-28, 0.5])
    return np.concatenate(
        [
            rng.uniform(-1.2, 1.2, 2 * k),
            rng.uniform(-25, 25, k),
            rng.uniform(-0.1, 0.1, k),
            rng.choice([-1.0, 1.0], k) * np.exp(rng.uniform(-745, 0, k)),
            _finite_bits(rng, k),
            edges,
            -edges,
            np.nextafter(edges, 0),
            np.nextafter(edges, 2 * edges),
        ]
    )


def erfinv_inputs(rng, n: int) -> np.ndarray:
    k = n // 5
    near_one = 1 - rng.integers(1, 2**20, k // 4) * 2.0**-53
    return np.concatenate(
        [
            rng.uniform(-1, 1, k),
            rng.choice([-1.0, 1.0], k) * (1 - np.exp(rng.uniform(-36.7, -0.69, k))),
            rng.uniform(0.45, 0.55, k),
            rng.choice([-1.0, 1.0], k) * np.exp(rng.uniform(-745, -0.7, k)),
            near_one,
            -near_one,
            np.array([0.5, np.nextafter(0.5, 1), np.nextafter(0.5, 0), np.nextafter(1, 0), 2.0**-1074]),
        ]
    )


# ----- log ----------------------------------------------------------------------------------------


def test_log_f64_within_one_ulp_of_glibc():
    x = log_inputs(np.random.default_rng(1), 300_000)
    d = ulps(ours("log", x), glibc("log", x))
    assert d.max() <= 1
    assert np.mean(d != 0) < 0.04  # measured 2.6% (glibc 2.36's log is nearly correctly rounded; fdlibm's is < 1 ulp)


def test_log_f32_within_one_ulp_of_glibc_logf():
    rng = np.random.default_rng(2)
    x = np.concatenate([np.abs(_finite_bits(rng, 100_000, F32)), rng.uniform(0.5, 2, 50_000).astype(F32)])
    y = ours("log", x)
    assert y.dtype == F32
    assert ulps(y, glibc("log", x)).max() <= 1


def test_log_special_values():
    x = np.array([0.0, -0.0, 1.0, -1.0, np.inf, -np.inf, np.nan, -5e-324, 5e-324, 2.0, 0.5])
    for dt in (F64, F32):
        y = ours("log", x.astype(dt))
        assert y[0] == -np.inf and y[1] == -np.inf
        assert y[2] == 0.0 and not np.signbit(y[2])
        assert np.isnan(y[3]) and np.isnan(y[5]) and np.isnan(y[6])
        assert y[4] == np.inf
    y = ours("log", x)
    assert np.isnan(y[7])  # -5e-324 (in f32 it is -0)
    assert y[8] == math.log(5e-324) and y[9] == math.log(2.0) and y[10] == -math.log(2.0)


# ----- sin, cos -----------------------------------------------------------------------------------


def _check_trig_against_glibc(name, x, bound_frac):
    y = ours(name, x)
    g = glibc(name, x)
    d = ulps(y, g)
    far = np.nonzero(d > 1)[0]
    if len(far):  # glibc itself off (e.g. cos(6381956970095103·2^797)): we must be the one within an ulp
        fn = mp.sin if name == "sin" else mp.cos
        cr = _cr(fn, x[far], 2400)
        assert ulps(y[far], cr).max() <= 1, x[far]
    assert len(far) <= 2
    assert np.mean(d != 0) < bound_frac
    return d


def test_sin_cos_f64_within_one_ulp_of_glibc():
    x = trig_inputs(np.random.default_rng(3), 300_000)
    for name in ("sin", "cos"):
        _check_trig_against_glibc(name, x, 0.04)  # measured 2.3% (glibc's are IBM's, nearly correctly rounded)


def test_sin_cos_f32_within_one_ulp_of_glibc():
    rng = np.random.default_rng(4)
    x = np.concatenate([rng.uniform(-10, 10, 60_000).astype(F32), _finite_bits(rng, 60_000, F32)])
    for name in ("sin", "cos"):
        y = ours(name, x)
        assert y.dtype == F32
        assert ulps(y, glibc(name, x)).max() <= 1


def test_sin_cos_hard_arguments_against_mpmath():
    """The double closest to a multiple of π/2 (6381956970095103·2^797, |f| ≈ 2^-61), the largest
    doubles, and arguments next to multiples of π/2 up to 2^60: within one ulp of the correctly
    rounded value (mpmath at 2400 bits)."""
    rng = np.random.default_rng(5)
    with mp.workprec(300):
        k = [int(v) for v in rng.integers(1, 2**60, 200, dtype=np.int64)]
        near = np.array([float(j * mp.pi / 2) for j in k])
    x = np.concatenate(
        [
            [
                6381956970095103 * 2.0**797,
                -6381956970095103 * 2.0**797,
                1.7976931348623157e308,
                2.0**1023,
                1e22,
                1e300,
                2.0**60,
                math.pi,
                math.pi / 2,
            ],
            near,
            np.nextafter(near, 0),
            2.0 ** np.arange(-10, 1024, 7),
        ]
    )
    for name, fn in (("sin", mp.sin), ("cos", mp.cos)):
        assert ulps(ours(name, x), _cr(fn, x, 2400)).max() <= 1, name


def test_sin_cos_special_values():
    for dt in (F64, F32):
        x = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 5e-324 if dt == F64 else 1e-45], dt)
        s, c = ours("sin", x), ours("cos", x)
        assert s[0] == 0 and not np.signbit(s[0]) and s[1] == 0 and np.signbit(s[1])
        assert c[0] == 1 and c[1] == 1
        assert np.isnan(s[2:5]).all() and np.isnan(c[2:5]).all()
        assert s[5] == x[5] and c[5] == 1
        assert ours("sin", -x[5:])[0] == -x[5]


def test_two_over_pi_table_and_exponent_split():
    from ir.dialects.mathimpl import trig

    with mp.workprec(1300):
        assert int(trig.TWO_OVER_PI_HEX, 16) == int(mp.floor(2 / mp.pi * mp.mpf(2) ** 1200))
    assert all(trig.P_TABLE[i] == 0 for i in range(40, 64))
    # s = floor(E / 30) by a multiply-shift over the whole exponent range
    for t in range(trig.E_BIAS, 2047 + trig.E_BIAS + 1):
        assert (t * trig.DIV30_MUL) >> trig.DIV30_SHIFT == t // 30
    assert trig.PIO2_1 + trig.PIO2_2 == math.pi / 2 and float.hex(trig.PIO2_1).endswith("50000000p+0")


# ----- tanh ---------------------------------------------------------------------------------------


def test_tanh_f64_within_two_ulps_of_glibc():
    x = tanh_inputs(np.random.default_rng(6), 300_000)
    d = ulps(ours("tanh", x), glibc("tanh", x))
    assert d.max() <= 2
    assert np.mean(d != 0) < 0.3  # measured 19%: glibc's (fdlibm's) tanh is up to 2 ulps off for |x| < 1


def test_tanh_nearly_correctly_rounded():
    rng = np.random.default_rng(7)
    x = np.concatenate([rng.uniform(-1.5, 1.5, 3000), rng.uniform(-0.1, 0.1, 1000), rng.uniform(-23, 23, 1000)])
    d = ulps(ours("tanh", x), _cr(mp.tanh, x))
    assert d.max() <= 1
    assert np.mean(d != 0) < 0.005  # measured 0.1%
    xf = np.concatenate([rng.uniform(-10, 10, 5000), rng.uniform(-0.2, 0.2, 2000)]).astype(F32)
    yf = ours("tanh", xf)
    assert yf.dtype == F32
    assert ulps(yf, _cr(mp.tanh, xf)).max() <= 1  # measured 0: the f64 result rounded once


def test_tanh_f32_within_two_ulps_of_glibc_tanhf():
    """glibc's tanhf is fdlibm's float algorithm, up to 2 f32 ulps from the correctly rounded
    value; Timber's f32 tanh is the (nearly correctly rounded) f64 one rounded once."""
    rng = np.random.default_rng(8)
    x = np.concatenate([rng.uniform(-10, 10, 60_000).astype(F32), _finite_bits(rng, 60_000, F32)])
    assert ulps(ours("tanh", x), glibc("tanh", x)).max() <= 2


def test_tanh_special_values():
    for dt in (F64, F32):
        x = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 22.0, -22.0, 1e300 if dt == F64 else 1e30, 5e-324 if dt == F64 else 1e-45], dt)
        y = ours("tanh", x)
        assert y[0] == 0 and not np.signbit(y[0]) and y[1] == 0 and np.signbit(y[1])
        assert y[2] == 1 and y[3] == -1 and np.isnan(y[4])
        assert y[5] == 1 and y[6] == -1 and y[7] == 1
        assert y[8] == x[8]


# ----- erfinv -------------------------------------------------------------------------------------


def erfinv_error_ulps(p: np.ndarray, y: np.ndarray, prec: int = 128) -> np.ndarray:
    """ulps (of y's type) between y and the correctly rounded erfinv(p), for |p| < 1, decided by
    evaluating erf (erfc near ±1) at the midpoints between neighbouring floats — mpmath's erfinv
    is 50 times slower.  A result of the wrong sign counts as 2^62."""
    dt = y.dtype.type
    out = np.zeros(len(p), np.int64)
    with mp.workprec(prec):
        for i, (pv, yv) in enumerate(zip(p.tolist(), y.tolist())):
            if math.copysign(1, pv) != math.copysign(1, yv) or not math.isfinite(yv):
                out[i] = 2**62
                continue
            a, v = abs(pv), dt(abs(yv))
            if a > 0.5:
                qa = mp.mpf(1) - mp.mpf(a)  # exact

                def g(t, qa=qa):
                    return qa - mp.erfc(t)
            else:
                ma = mp.mpf(a)

                def g(t, ma=ma):
                    return mp.erf(t) - ma

            def mid(u, w):
                return (mp.mpf(float(u)) + mp.mpf(float(w))) / 2

            steps = 0
            up = np.nextafter(v, dt(np.inf))
            if g(mid(v, up)) < 0:  # the true value is above v's rounding interval
                while g(mid(v, up)) < 0 and steps < 8:
                    v, up, steps = up, np.nextafter(up, dt(np.inf)), steps + 1
            else:
                down = np.nextafter(v, dt(0))
                while v > 0 and g(mid(down, v)) > 0 and steps < 8:
                    v, down, steps = down, np.nextafter(down, dt(0)), steps + 1
            out[i] = steps
    return out


def test_erfinv_f64_against_mpmath():
    x = erfinv_inputs(np.random.default_rng(9), 5_000)
    y = ours("erfinv", x)
    d = erfinv_error_ulps(x, y)
    assert d.max() <= 1  # the requirement is 4; measured 1
    assert np.mean(d != 0) < 0.05  # measured 2.7% here, 2.5% over the slow sweep
    # spot-check the bracketing against mpmath's own erfinv
    with mp.workprec(160):
        ref = np.array([float(mp.erfinv(mp.mpf(v))) for v in x[::50]])
    assert np.array_equal(ulps(y[::50], ref), d[::50])


def test_erfinv_f32_against_mpmath():
    rng = np.random.default_rng(10)
    x = np.concatenate([rng.uniform(-1, 1, 3000), 1 - np.exp(rng.uniform(-16, -1, 1000))]).astype(F32)
    x = x[np.abs(x) < 1]
    y = ours("erfinv", x)
    assert y.dtype == F32
    assert erfinv_error_ulps(x, y).max() <= 1  # measured 0
    assert np.array_equal(ulps(y[::40], _cr(mp.erfinv, x[::40])), np.zeros(len(x[::40])))


def test_erfinv_special_values():
    for dt in (F64, F32):
        x = np.array(
            [0.0, -0.0, 1.0, -1.0, 1.5, -2.0, np.inf, -np.inf, np.nan, np.nextafter(dt(1), dt(2)), 5e-324 if dt == F64 else 1e-45], dt
        )
        y = ours("erfinv", x)
        assert y[0] == 0 and not np.signbit(y[0]) and y[1] == 0 and np.signbit(y[1])
        assert y[2] == np.inf and y[3] == -np.inf
        assert np.isnan(y[4:10]).all()
        assert y[10] == x[10]  # erfinv(tiny) = (√π/2)·tiny rounds back to tiny
    y = ours("erfinv", np.array([0.5, np.nextafter(1.0, 0), -np.nextafter(1.0, 0)]))
    assert y[0] == 0.4769362762044699 and y[1] == 5.8635847487551676 and y[2] == -y[1]


# ----- exp and log1p unchanged; sizes ---------------------------------------------------------------


def test_exp_and_log1p_unchanged():
    """The expansions of exp and log1p give the bits of their numpy statement (tests/mathref.py)."""
    rng = np.random.default_rng(11)
    x = np.concatenate(
        [rng.uniform(-750, 712, 50_000), rng.uniform(-3, 3, 50_000), _finite_bits(rng, 20_000), [0.0, -0.0, np.inf, -np.inf, np.nan]]
    )
    xl = np.concatenate([x, rng.uniform(-1, 1, 20_000), -1 + np.exp(rng.uniform(-36, -1, 5_000))])
    for dt in (F64, F32):
        with np.errstate(over="ignore"):
            xd, xld = x.astype(dt), xl.astype(dt)
        assert same_bits(ours("exp", xd), mathref.exp(xd))
        assert same_bits(ours("log1p", xld), mathref.log1p(xld))


def test_exp2_within_one_ulp_of_pow_and_libm_mode_is_pow():
    """math.exp2 is numpy's `2 ** x`, i.e. C's pow(2, x): Timber's expansion within one ulp (its
    result and its special values: overflow at 1024, underflow below -1075, NaN, ±inf), and the
    interpreter's libm mode calls pow itself (glibc's exp2 would differ in the last bit)."""
    rng = np.random.default_rng(12)
    x = np.concatenate([rng.uniform(-1080, 1030, 60_000), -rng.uniform(0, 2, 60_000), [0.0, -0.0, np.inf, -np.inf, np.nan, 1024.0,
                        np.nextafter(1024.0, 0), -1074.0, -1075.0, np.nextafter(-1075.0, 0), -1076.0, 5e-324, -5e-324]])
    for dt in (F64, F32):
        xd = x.astype(dt)
        with np.errstate(over="ignore"):
            want = np.power(dt(2), xd)
        got = ours("exp2", xd)
        assert ulps(got, want).max() <= 1
        assert same_bits(got[np.isinf(want) | (want == 0) | np.isnan(want)], want[np.isinf(want) | (want == 0) | np.isnan(want)])
        assert same_bits(run(_module("math.exp2", "f32" if dt == F32 else "f64"), xd[:3000].reshape(-1, 1), math="libm")[:, 0], want[:3000])
    # The JIT's libm mode too (LLVM must not turn pow(2, x) into exp2(x)).
    import timber

    jit = timber.compile(_module("math.exp2", "f64"), math="libm")
    with np.errstate(over="ignore"):
        assert same_bits(jit.predict(x.reshape(-1, 1)), np.power(2.0, x))


EXPANSION_BUDGET = {"math.log": 120, "math.sin": 230, "math.cos": 230, "math.tanh": 125, "math.erfinv": 210}


@pytest.mark.parametrize("name", sorted(EXPANSION_BUDGET))
def test_expansion_sizes(name):
    """Op counts (constants included) of each expansion: every op is emitted in C99 and WAT too."""
    from ir.dialects import mathimpl

    for t in ("f64", "f32"):
        op = next(iter(_module(name, t).lookup("predict").body.ops))
        assert len(mathimpl.expansion(op)[1]) <= EXPANSION_BUDGET[name], (name, t)


# ----- the >= 10^6 sweeps ---------------------------------------------------------------------------


@pytest.mark.slow
def test_sweep_log():
    x = log_inputs(np.random.default_rng(101), 1_200_000)
    d = ulps(ours("log", x), glibc("log", x))
    _report("log f64 vs glibc", d, len(x))
    assert d.max() <= 1
    rng = np.random.default_rng(102)
    xf = np.concatenate([np.abs(_finite_bits(rng, 1_000_000, F32)), rng.uniform(0.5, 2, 200_000).astype(F32)])
    d = ulps(ours("log", xf), glibc("log", xf))
    _report("log f32 vs glibc logf", d, len(xf))
    assert d.max() <= 1


@pytest.mark.slow
@pytest.mark.parametrize("name", ["sin", "cos"])
def test_sweep_sin_cos(name):
    x = trig_inputs(np.random.default_rng(103), 1_400_000)
    d = _check_trig_against_glibc(name, x, 0.04)
    _report(f"{name} f64 vs glibc", d, len(x))
    rng = np.random.default_rng(104)
    xf = np.concatenate([rng.uniform(-100, 100, 600_000).astype(F32), _finite_bits(rng, 600_000, F32)])
    d = ulps(ours(name, xf), glibc(name, xf))
    _report(f"{name} f32 vs glibc {name}f", d, len(xf))
    assert d.max() <= 1


@pytest.mark.slow
def test_sweep_tanh():
    x = tanh_inputs(np.random.default_rng(105), 1_200_000)
    d = ulps(ours("tanh", x), glibc("tanh", x))
    _report("tanh f64 vs glibc", d, len(x))
    assert d.max() <= 2
    rng = np.random.default_rng(106)
    xf = np.concatenate([rng.uniform(-10, 10, 600_000).astype(F32), _finite_bits(rng, 600_000, F32)])
    d = ulps(ours("tanh", xf), glibc("tanh", xf))
    _report("tanh f32 vs glibc tanhf", d, len(xf))
    assert d.max() <= 2
    # against the correctly rounded value, a sample
    xs = x[:: len(x) // 50_000]
    d = ulps(ours("tanh", xs), _cr(mp.tanh, xs, 120))
    _report("tanh f64 vs mpmath", d, len(xs))
    assert d.max() <= 1


@pytest.mark.slow
def test_sweep_erfinv():
    x = erfinv_inputs(np.random.default_rng(107), 1_120_000)
    d = erfinv_error_ulps(x, ours("erfinv", x))
    _report("erfinv f64 vs mpmath", d, len(x))
    assert d.max() <= 1
    rng = np.random.default_rng(108)
    xf = np.concatenate([rng.uniform(-1, 1, 300_000), 1 - np.exp(rng.uniform(-16, -1, 100_000))]).astype(F32)
    xf = xf[np.abs(xf) < 1]
    d = erfinv_error_ulps(xf, ours("erfinv", xf))
    _report("erfinv f32 vs mpmath", d, len(xf))
    assert d.max() <= 1


@pytest.mark.slow
def test_erfinv_tables_are_reproducible():
    from ir.dialects.mathimpl import erfinv

    init, res, res_lo = erfinv.fit()
    assert [erfinv._pad(r, 64) for r in init] == erfinv.INIT
    assert [erfinv._pad(r, 32) for r in res] == erfinv.RES
    assert erfinv._pad(res_lo, 32) == erfinv.RES_LO
