"""Timber's own `exp`: one algorithm, the same bits in every back-end.

libm `exp` differs by an ulp between C libraries, and bare-metal targets have none, so Timber
computes exp itself with an operation sequence every back-end can reproduce exactly: IEEE
double `+ - * /`, round-to-nearest-even of a double to an integer done with the 1.5·2^52 shift
trick, integer and/shift, and building a power of two from exponent bits.  No fused
multiply-add anywhere.  This module is the reference (numpy, vectorised); back-ends emit the
same sequence.

Algorithm (Tang's table-driven method, N = 128):
    z  = x · (N/ln2);  kd = (z + S) − S            (S = 1.5·2^52: kd = round-half-even(z))
    r  = (x − kd·L1) − kd·L2                        (L1 + L2 = ln2/N, L1 with 35 significant bits)
    p  = r + r·r·(C2 + r·(C3 + r·(C4 + r·C5)))      (Taylor: 1/2, 1/6, 1/24, 1/120)
    k  = int(kd);  j = k & (N−1);  e = k >> 7       (arithmetic shift: floor division)
    y  = T_hi[j] + (T_lo[j] + T_hi[j]·p)            (T = 2^(j/N) as a double-double)
    exp(x) = y · 2^e1 · 2^e2,  e1 = e >> 1, e2 = e − e1  (two steps so that 2^e1, 2^e2 are normal)
with x > 709.79 → +inf, x < −745.2 → +0, NaN → NaN.  Measured against glibc: see tests/ir/test_mathfn.py.
f32 `exp(x)` is the f64 result rounded to f32.
"""

from __future__ import annotations

from decimal import Decimal, getcontext

import numpy as np

N = 128
LOG2N = 7
SHIFT = 6755399441055744.0  # 1.5 * 2**52
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


def _pow2(e: np.ndarray) -> np.ndarray:
    """2.0**e for integer e in [-1022, 1023], built from exponent bits."""
    return ((e.astype(np.int64) + 1023) << 52).view(np.float64)


def exp_f64(x) -> np.ndarray:
    """Timber's double-precision exp, elementwise (the reference for every back-end)."""
    x = np.asarray(x, np.float64)
    xc = np.clip(np.where(np.isnan(x), 0.0, x), UNDERFLOW - 1.0, OVERFLOW + 1.0)
    z = xc * INV_LN2_N
    kd = (z + SHIFT) - SHIFT
    r = (xc - kd * LN2_HI_N) - kd * LN2_LO_N
    p = r + r * r * (C2 + r * (C3 + r * (C4 + r * C5)))
    k = kd.astype(np.int64)
    j = k & (N - 1)
    e = k >> LOG2N
    th = T_HI[j]
    y = th + (T_LO[j] + th * p)
    e1 = e >> 1
    e2 = e - e1
    with np.errstate(over="ignore", under="ignore"):
        out = (y * _pow2(e1)) * _pow2(e2)
    out = np.where(x > OVERFLOW, np.inf, out)
    out = np.where(x < UNDERFLOW, 0.0, out)
    return np.where(np.isnan(x), x, out)


def exp(x: np.ndarray) -> np.ndarray:
    """Timber's exp in the array's own precision (f32: the f64 result rounded once)."""
    x = np.asarray(x)
    if x.dtype == np.float32:
        with np.errstate(over="ignore"):
            return exp_f64(x.astype(np.float64)).astype(np.float32)
    return exp_f64(x)
