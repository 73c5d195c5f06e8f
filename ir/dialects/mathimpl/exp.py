"""`exp`: Timber's own, and herumi fmath's (CatBoost's FastExp), as `arith` IR.

Timber's exp (Tang's table-driven method, N = 128), in double:
    z  = x · (N/ln2);  kd = (z + S) − S            (S = 1.5·2^52: kd = round-half-even(z))
    r  = (x − kd·L1) − kd·L2                        (L1 + L2 = ln2/N, L1 with 35 significant bits)
    p  = r + r·r·(C2 + r·(C3 + r·(C4 + r·C5)))      (Taylor: 1/2, 1/6, 1/24, 1/120)
    k  = bits(z + S) − bits(S) (= int(kd));  j = k & (N−1);  e = k >> 7   (arithmetic shift)
    y  = T_hi[j] + (T_lo[j] + T_hi[j]·p)            (T = 2^(j/N) as a double-double)
    exp(x) = y · 2^e1 · 2^e2,  e1 = e >> 1, e2 = e − e1  (two steps so that 2^e1, 2^e2 are normal)
with x > 709.79 → +inf, x < −745.2 → +0, NaN → NaN.  Within one ulp of glibc's exp everywhere
(tests/ir/test_mathimpl.py).  f32 is the f64 result rounded once.

fmath's expd (what CatBoost's softmax and exp links call): x clamped to
[-708.39641853226408, 709.78272569338397] (NaN becomes the upper bound, as x86 `minpd` does), then
with a = 2048/ln2 and b = 3·2^51
    d = x·a + b;  j = bits(d) & 2047;  t = (d − b)·(1/a) − x
    y = ((C3 − t)·(t·t))·C2 − t + C1;   exp(x) = y · double(((bits(d) + ADJ) >> 11) << 52 | T[j])
with T[j] the mantissa bits of 2^(j/2048) and ADJ = 2^21 − 2^11.  About 1e-13 from the true exp,
so compiling CatBoost exactly needs this very sequence.  (fmath's scalar tail returns 0 below
-708.396 and inf above 709.783 instead of clamping: only |x| > 708 differs, which softmax
differences and exp links of real models do not reach.)
"""

from __future__ import annotations

from decimal import Decimal, getcontext
from functools import cache

import numpy as np

from .dsl import E, in_f64, where

N = 128
LOG2N = 7
SHIFT = 6755399441055744.0  # 1.5 * 2**52
SHIFT_BITS = int(np.array(SHIFT).view(np.int64))
OVERFLOW = 709.7827128933840
UNDERFLOW = -745.1332191019412


def _tables():
    getcontext().prec = 60
    ln2 = Decimal(2).ln()
    inv = float(N / ln2)
    step = ln2 / N
    # L1: ln2/N truncated to 35 significant bits so kd·L1 is exact for |kd| < 2^18.
    m, e = np.frexp(float(step))
    l1 = float(np.ldexp(np.floor(np.ldexp(m, 35)), int(e) - 35))
    l2 = float(step - Decimal(l1))
    hi, lo = [], []
    for j in range(N):
        t = (Decimal(j) / N * ln2).exp()
        h = float(t)
        hi.append(h)
        lo.append(float(t - Decimal(h)))
    return inv, l1, l2, np.array(hi), np.array(lo)


INV_LN2_N, LN2_HI_N, LN2_LO_N, T_HI, T_LO = _tables()
C2, C3, C4, C5 = 0.5, float(Decimal(1) / 6), float(Decimal(1) / 24), float(Decimal(1) / 120)


def pow2(e: E) -> E:
    """2.0**e (f64) for integer e (i64) in [-1022, 1023], built from exponent bits."""
    return ((e + 1023) << 52).as_float()


def _poly(r: E) -> E:
    """e^r - 1 for |r| <= ln2/2N (Taylor to r^5, Horner)."""
    return r + r * r * (C2 + r * (C3 + r * (C4 + r * C5)))


def _clamp(x: E, under: float, over: float) -> tuple[E, E]:
    """(isnan, x with NaN as 0 and clamped one past [under, over]): the reduction's argument."""
    isnan = x.isnan()
    x0 = where(isnan, 0.0, x)
    x1 = where(x0.lt(under - 1.0), under - 1.0, x0)
    return isnan, where(x1.gt(over + 1.0), over + 1.0, x1)


def _reconstruct(k: E, p: E) -> E:
    """2^(k >> 7) · T[k mod N] · (1 + p), the scaling in two steps so both factors are normal."""
    e = k >> LOG2N
    th = k.lookup(T_HI)  # lookup reads T[k mod N]: j = k & (N - 1)
    y = th + (k.lookup(T_LO) + th * p)
    e1 = e >> 1
    e2 = e - e1
    return (y * pow2(e1)) * pow2(e2)


def tang(x: E, xl: E | None = None) -> tuple[E, E]:
    """Tang's reduction, shared by exp and `tanh.exp_parts`: (k, p) with
    e^(x + xl) = 2^(k >> 7) · T[k mod N] · (1 + p), T = T_hi + T_lo, for |x| below about 2^44."""
    zs = x * INV_LN2_N + SHIFT
    kd = zs - SHIFT
    r = (x - kd * LN2_HI_N) - kd * LN2_LO_N
    if xl is not None:
        r = r + xl
    p = _poly(r)
    k = zs.bits() - SHIFT_BITS  # = int(kd): zs has ulp 1, so its low bits count kd from SHIFT
    return k, p


def exp_f64(x: E) -> E:
    isnan, xc = _clamp(x, UNDERFLOW, OVERFLOW)
    k, p = tang(xc)
    out = _reconstruct(k, p)
    out = where(x.gt(OVERFLOW), float("inf"), out)
    out = where(x.lt(UNDERFLOW), 0.0, out)
    return where(isnan, x, out)


exp = in_f64(exp_f64)


# exp2 (2**x, what numpy's `2 ** x` and C's pow(2, x) compute): Tang's method in base 2.
#   zs = x·N + S;  kd = zs − S  (x·N is exact: N is a power of two);  t = x − kd/N  (exact)
#   r = t·ln2  (|r| <= ln2/2N: one rounding costs ~1e-3 ulp of the result)
# then p, T[k mod N] and the scaling 2^e as in exp.  x >= 1024 → +inf, x < −1075 → +0.
EXP2_OVERFLOW = 1024.0
EXP2_UNDERFLOW = -1075.0
LN2 = float(Decimal(2).ln())


def exp2_f64(x: E) -> E:
    isnan, xc = _clamp(x, EXP2_UNDERFLOW, EXP2_OVERFLOW)
    zs = xc * float(N) + SHIFT
    kd = zs - SHIFT
    p = _poly((xc - kd * (1.0 / N)) * LN2)
    k = zs.bits() - SHIFT_BITS
    out = _reconstruct(k, p)
    out = where(x.ge(EXP2_OVERFLOW), float("inf"), out)
    out = where(x.lt(EXP2_UNDERFLOW), 0.0, out)
    return where(isnan, x, out)


exp2 = in_f64(exp2_f64)


FMATH_BITS = 11
FMATH_A = float(2**FMATH_BITS / Decimal(2).ln())  # fmath computes s / ::log(2.0): the same double (tested)
FMATH_RA = 1.0 / FMATH_A
FMATH_B = float(3 << 51)
FMATH_ADJ = (1 << (FMATH_BITS + 10)) - (1 << FMATH_BITS)
FMATH_C1, FMATH_C2, FMATH_C3 = 1.0, 0.16666666685227835064, 3.0000000027955394
FMATH_HI, FMATH_LO = 709.78272569338397, -708.39641853226408


@cache
def _fmath_table() -> np.ndarray:
    getcontext().prec = 60
    vals = [float((Decimal(j) / 2**FMATH_BITS * Decimal(2).ln()).exp()) for j in range(2**FMATH_BITS)]
    t = np.array(vals).view(np.int64) & ((1 << 52) - 1)
    t.flags.writeable = False
    return t


def __getattr__(name: str):
    # FMATH_T is computed when first used: its 2048 high-precision exps took 0.35 s of every
    # `import timber` (the module-level __getattr__ of PEP 562)
    if name == "FMATH_T":
        return _fmath_table()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def fmath_exp_f64(x: E) -> E:
    # NaN becomes the upper bound (x86 `minpd`).  Said separately: a `x < HI ? x : HI` alone may
    # become AArch64's fminnm, which answers NaN for a signalling NaN.
    x = where(x.isnan(), FMATH_HI, x)
    x = where(x.lt(FMATH_HI), x, FMATH_HI)
    x = where(x.gt(FMATH_LO), x, FMATH_LO)
    d = x * FMATH_A + FMATH_B
    di = d.bits()
    t = (d - FMATH_B) * FMATH_RA - x
    y = (((FMATH_C3 - t) * (t * t)) * FMATH_C2 - t) + FMATH_C1
    u = (((di + FMATH_ADJ) >> FMATH_BITS) << 52) | di.lookup(_fmath_table(), di.elem)
    return y * u.as_float()


fmath_exp = in_f64(fmath_exp_f64)
