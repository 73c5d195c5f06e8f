"""Timber's own exp and log1p (the `arith` expansions of `math.exp` / `math.log1p`, as the
interpreter and every back-end run them): within one ulp of glibc everywhere, equal to it almost
always, the special values right, and the bits of the numpy statement in `tests/mathref.py`."""

import ctypes
import math

import numpy as np

from tests import mathref as mathfn
from tests.mathref import ir_function
from tests.rows import log1p_inputs

exp = exp_f64 = ir_function("math.exp")
log1p = log1p_f64 = ir_function("math.log1p")
fmath_exp_f64 = ir_function("math.exp", '{impl = "fmath"}')


def test_exp_f64_within_one_ulp_of_libm():
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.uniform(-745, 709.7, 200_000), rng.uniform(-5, 5, 200_000), rng.normal(0, 1e-3, 20_000)])
    ours = exp_f64(x)
    ref = np.array([math.exp(v) for v in x])
    ulps = np.abs(ours.view(np.int64) - ref.view(np.int64))
    assert ulps.max() <= 1
    assert np.mean(ulps != 0) < 0.005  # measured 0.12% here


def test_exp_f32_within_one_ulp_of_libm_expf():
    libm = ctypes.CDLL("libm.so.6")
    libm.expf.restype, libm.expf.argtypes = ctypes.c_float, [ctypes.c_float]
    rng = np.random.default_rng(1)
    x = rng.uniform(-104, 89, 100_000).astype(np.float32)
    ours = exp(x)
    ref = np.array([libm.expf(float(v)) for v in x], np.float32)
    ulps = np.abs(ours.view(np.int32).astype(np.int64) - ref.view(np.int32))
    assert ulps.max() <= 1
    assert np.mean(ulps != 0) < 0.005  # measured 0.06% here
    assert ours.dtype == np.float32


def test_exp_special_values():
    x = np.array([0.0, -0.0, 1.0, np.nan, np.inf, -np.inf, 709.79, -745.2, 709.78, -745.13])
    y = exp_f64(x)
    assert y[0] == 1.0 and y[1] == 1.0
    assert y[2] == math.e
    assert np.isnan(y[3])
    assert y[4] == np.inf and y[5] == 0.0
    assert y[6] == np.inf and y[7] == 0.0
    assert y[8] == math.exp(709.78)
    assert y[9] == 5e-324


def test_log1p_f64_within_one_ulp_of_glibc():
    """glibc's x86-64 log1p is fdlibm's algorithm compiled with FMA where the CPU has it: Timber's
    (the same algorithm, no FMA, so every target agrees) differs from it by one ulp, rarely."""
    x = log1p_inputs(np.float64)
    ours = log1p_f64(x)
    ref = np.array([math.log1p(v) if v > -1 else (-math.inf if v == -1 else math.nan) for v in x])
    same = (ours.view(np.int64) == ref.view(np.int64)) | (np.isnan(ours) & np.isnan(ref))
    finite = np.isfinite(ref)
    ulps = np.abs(ours[finite].view(np.int64) - ref[finite].view(np.int64))
    assert ulps.max() <= 1
    assert np.mean(~same) < 0.002  # measured 0.01% against glibc 2.36 with FMA; 0 without


def test_log1p_special_values():
    x = np.array([0.0, -0.0, -1.0, -1.5, np.inf, -np.inf, np.nan, 5e-324, 1e-300, 2.0**-30, 2.0**60, np.finfo(np.float64).max])
    y = log1p_f64(x)
    assert y[0] == 0.0 and not np.signbit(y[0]) and y[1] == 0.0 and np.signbit(y[1])
    assert y[2] == -np.inf and np.isnan(y[3]) and y[4] == np.inf and np.isnan(y[5]) and np.isnan(y[6])
    assert y[7] == 5e-324 and y[8] == 1e-300
    assert y[9] == math.log1p(2.0**-30) and y[10] == math.log1p(2.0**60) and y[11] == math.log1p(np.finfo(np.float64).max)


def test_log1p_f32_is_the_f64_result_rounded():
    x = log1p_inputs(np.float32)
    with np.errstate(invalid="ignore"):
        want = log1p_f64(x.astype(np.float64)).astype(np.float32)
    got = log1p(x)
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, want)


def test_fmath_constants_are_fmaths_own():
    """fmath builds its table with ::pow(2.0, j·(1/2048)) and a = 2048/::log(2.0) at start-up;
    Timber's exactly-rounded values are the same doubles."""
    table = np.array([np.float64(math.pow(2.0, j * (1.0 / 2048))).view(np.int64) & ((1 << 52) - 1) for j in range(2048)])
    np.testing.assert_array_equal(mathfn.FMATH_T, table)
    assert mathfn.FMATH_A == 2048 / math.log(2.0) and mathfn.FMATH_RA == 1 / (2048 / math.log(2.0))


def test_fmath_exp_is_close_to_exp_and_clamps():
    x = np.random.default_rng(4).uniform(-700, 700, 100_000)
    rel = np.abs(fmath_exp_f64(x) / np.exp(x) - 1)
    assert rel.max() < 2e-13  # a cubic on 2^-11-wide intervals: measured 8e-14
    y = fmath_exp_f64(np.array([np.nan, 1e9, -1e9, -np.inf]))
    top = fmath_exp_f64(np.array([mathfn.FMATH_HI]))[0]
    assert y[0] == top and y[1] == top  # NaN becomes the upper bound, as x86 minpd does
    assert y[2] == y[3] == fmath_exp_f64(np.array([mathfn.FMATH_LO]))[0] > 0


def test_expansions_are_the_reference_algorithms_bit_for_bit():
    """The IR expansions compute exactly the operation sequences of tests/mathref.py (the bits
    Timber has always given), on every kind of input, f64 and f32."""
    rng = np.random.default_rng(11)
    bits = rng.integers(0, 2**64, 200_000, dtype=np.uint64).view(np.float64)
    x = np.concatenate([bits, rng.uniform(-800, 800, 100_000), rng.normal(0, 1, 50_000), log1p_inputs()])
    x = np.concatenate([x, [np.nan, np.inf, -np.inf, 0.0, -0.0, 5e-324, -5e-324, mathfn.OVERFLOW, mathfn.UNDERFLOW, -1.0]])
    for dt in (np.float64, np.float32):
        xs = x.astype(dt)
        view = np.int64 if dt == np.float64 else np.int32
        for ours, ref in ((exp, mathfn.exp), (log1p, mathfn.log1p), (ir_function("math.exp", '{impl = "fmath"}'), mathfn.fmath_exp)):
            np.testing.assert_array_equal(ours(xs).view(view), ref(xs).view(view))
