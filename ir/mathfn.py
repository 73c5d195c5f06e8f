"""Timber's own `exp` and `log1p`: one algorithm each, the same bits in every back-end.

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

import ctypes
import ctypes.util
from decimal import Decimal, getcontext
from functools import cache

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


def _in_own_precision(f64_fn, x) -> np.ndarray:
    """`f64_fn` applied in the array's own precision: f32 is the f64 result rounded once."""
    x = np.asarray(x)
    if x.dtype == np.float32:
        with np.errstate(over="ignore", invalid="ignore"):
            return f64_fn(x.astype(np.float64)).astype(np.float32)
    return f64_fn(x)


def exp(x: np.ndarray) -> np.ndarray:
    """Timber's exp in the array's own precision (f32: the f64 result rounded once)."""
    return _in_own_precision(exp_f64, x)


# ---- log1p -------------------------------------------------------------------------------------
# The classic fdlibm algorithm as glibc's generic `dbl-64/s_log1p.c` evaluates it (the polynomial
# in Estrin form), so a glibc built without FMA gives the same bits; glibc's FMA build (x86-64
# with FMA, which contracts five multiply-adds) differs by one ulp on about 0.01% of inputs.
#   1+x = 2^k (1+f) with sqrt(2)/2 < 1+f < sqrt(2), found from the exponent and top mantissa bits
#   of u = fl(1+x); c = ((1+x) - u)/u corrects the rounding of u (k > 0: 1-(u-x), else x-(u-1)).
#   s = f/(2+f), z = s^2, R = z·LP1 + z^2(LP2 + z·LP3) + z^4(LP4 + z·LP5) + z^6(LP6 + z·LP7)
#   log1p(x) = k·ln2_hi − ((hfsq − (s(hfsq + R) + (k·ln2_lo + c))) − f),  hfsq = f²/2
# with the small cases (|x| < 2^-29, |f| < 2^-20, -0.2929 < x < 0.41422: k = 0) as fdlibm has them.
LP1, LP2, LP3, LP4 = 6.666666666666735130e-01, 3.999999999940941908e-01, 2.857142874366239149e-01, 2.222219843214978396e-01
LP5, LP6, LP7 = 1.818357216161805012e-01, 1.531383769920937332e-01, 1.479819860511658591e-01
LOG_LN2_HI, LOG_LN2_LO = 6.93147180369123816490e-01, 1.90821492927058770002e-10  # ln2_hi has 32 trailing zero bits
TWO_THIRDS = 0.66666666666666666
# thresholds on the high 32 bits of x (as a signed int32)
HX_K0_HIGH = 0x3FDA827A  # x < 0.41422 (sqrt(2) - 1)
HX_K0_LOW = 0xBFD2BEC3 - 2**32  # x > -0.2929 (sqrt(2)/2 - 1)
AX_MINUS_ONE = 0x3FF00000  # |x| >= 1 (with x < 0.41: x <= -1)
AX_TINY = 0x3E200000  # |x| < 2^-29
AX_TINIER = 0x3C900000  # |x| < 2^-54
HX_BIG = 0x43400000  # x >= 2^53: 1+x is x
HU_SQRT2 = 0x6A09E  # top 20 mantissa bits of sqrt(2)


def log1p_f64(x) -> np.ndarray:
    """Timber's double-precision log1p, elementwise (the reference for every back-end).  Every
    lane computes every path and the right one is selected, as the vector back-ends do."""
    x = np.asarray(x, np.float64)
    hx = x.view(np.int64) >> 32  # the high word, sign-extended
    ax = hx & 0x7FFFFFFF
    low = hx < HX_K0_HIGH
    le_minus_one = low & (ax >= AX_MINUS_ONE)
    tiny = low & ~le_minus_one & (ax < AX_TINY)
    k0 = low & ~le_minus_one & ~tiny & ((hx > 0) | (hx <= HX_K0_LOW))
    with np.errstate(all="ignore"):
        # argument reduction (lanes that do not need it compute garbage that is never selected)
        big = hx >= HX_BIG
        u = np.where(big, x, 1.0 + x)
        ub = u.view(np.int64)
        hu = ub >> 32
        k = (hu >> 20) - 1023
        c = np.where(big, 0.0, np.where(k > 0, 1.0 - (u - x), x - (u - 1.0)) / u)
        hu = hu & 0xFFFFF
        up = hu < HU_SQRT2
        top = np.where(up, hu | 0x3FF00000, hu | 0x3FE00000)
        k = np.where(up, k, k + 1)
        hu = np.where(up, hu, (0x00100000 - hu) >> 2)
        f = ((top << 32) | (ub & 0xFFFFFFFF)).view(np.float64) - 1.0
        f = np.where(k0, x, f)
        k = np.where(k0, 0, k)
        hu = np.where(k0, 1, hu)
        kd = k.astype(np.float64)
        hfsq = 0.5 * f * f
        # |f| < 2^-20
        rs = hfsq * (1.0 - TWO_THIRDS * f)
        small = np.where(k == 0, f - rs, kd * LOG_LN2_HI - ((rs - (kd * LOG_LN2_LO + c)) - f))
        small = np.where(f == 0.0, np.where(k == 0, 0.0, kd * LOG_LN2_HI + (c + kd * LOG_LN2_LO)), small)
        # the general case
        s = f / (2.0 + f)
        z = s * s
        z2 = z * z
        z4 = z2 * z2
        z6 = z4 * z2
        r = ((z * LP1 + z2 * (LP2 + z * LP3)) + z4 * (LP4 + z * LP5)) + z6 * (LP6 + z * LP7)
        t = s * (hfsq + r)
        main = np.where(k == 0, f - (hfsq - t), kd * LOG_LN2_HI - ((hfsq - (t + (kd * LOG_LN2_LO + c))) - f))
        out = np.where(hu == 0, small, main)
        out = np.where(tiny, np.where(ax < AX_TINIER, x, x - x * x * 0.5), out)
        out = np.where(le_minus_one, np.where(x == -1.0, -np.inf, np.nan), out)
        out = np.where(~low & (hx >= 0x7FF00000), x + x, out)  # +inf, NaN
    return np.where(np.isnan(x), x, out)


def log1p(x: np.ndarray) -> np.ndarray:
    """Timber's log1p in the array's own precision (f32: the f64 result rounded once)."""
    return _in_own_precision(log1p_f64, x)


# ---- fmath's exp (CatBoost) -------------------------------------------------------------------
# CatBoost's softmax (MultiClass) and exp links (Poisson, Tweedie) call FastExpInplace, which is
# herumi's fmath `expd_v`: x clamped to [-708.39641853226408, 709.78272569338397] (NaN becomes
# the upper bound, as x86 `minpd` does), then with a = 2048/ln2 and b = 3·2^51
#   d = x·a + b;  j = bits(d) & 2047;  t = (d − b)·(1/a) − x
#   y = ((C3 − t)·(t·t))·C2 − t + C1;   exp(x) = y · double(((bits(d) + ADJ) >> 11) << 52 | T[j])
# with T[j] the mantissa bits of 2^(j/2048) and ADJ = 2^21 − 2^11.  Up to 1e-13 relative from the
# true exp — not the C library's — so compiling CatBoost exactly needs this very sequence.  (fmath
# runs the elements past the last multiple of 4 through its scalar `expd`, which returns 0 below
# -708.396 and inf above 709.783 instead of clamping: only |x| > 708 differs, which softmax
# differences and exp links of real models do not reach.)
FMATH_BITS = 11
FMATH_A = float(2**FMATH_BITS / Decimal(2).ln())  # fmath computes s / ::log(2.0): the same double (tested)
FMATH_RA = 1.0 / FMATH_A
FMATH_B = float(3 << 51)
FMATH_ADJ = (1 << (FMATH_BITS + 10)) - (1 << FMATH_BITS)
FMATH_C1, FMATH_C2, FMATH_C3 = 1.0, 0.16666666685227835064, 3.0000000027955394
FMATH_HI, FMATH_LO = 709.78272569338397, -708.39641853226408


def _fmath_table() -> np.ndarray:
    getcontext().prec = 60
    vals = [float((Decimal(j) / 2**FMATH_BITS * Decimal(2).ln()).exp()) for j in range(2**FMATH_BITS)]
    return np.array(vals).view(np.int64) & ((1 << 52) - 1)


FMATH_T = _fmath_table()


def fmath_exp_f64(x) -> np.ndarray:
    """fmath's expd (CatBoost's FastExp), elementwise, in double."""
    x = np.asarray(x, np.float64)
    with np.errstate(all="ignore"):
        x = np.where(x < FMATH_HI, x, FMATH_HI)
        x = np.where(x > FMATH_LO, x, FMATH_LO)
        d = x * FMATH_A + FMATH_B
        di = d.view(np.int64)
        t = (d - FMATH_B) * FMATH_RA - x
        y = (((FMATH_C3 - t) * (t * t)) * FMATH_C2 - t) + FMATH_C1
        u = (((di + FMATH_ADJ) >> FMATH_BITS) << 52) | FMATH_T[di & ((1 << FMATH_BITS) - 1)]
        return y * u.view(np.float64)


def fmath_exp(x: np.ndarray) -> np.ndarray:
    """fmath's exp in the array's own precision (f32: the f64 result rounded once)."""
    return _in_own_precision(fmath_exp_f64, x)


# ---- the C library's functions -----------------------------------------------------------------
# The frameworks call the C library's exp/expf/log1p, so the host JIT calls them too by default
# (`timber.compile(math="libm")`): then probabilities are the framework's bits on whatever machine
# and libm this is.  These are the interpreter's statement of that mode.
LIBM_FUNCTIONS = ("exp", "expf", "log1p", "log1pf")


@cache
def c_math_library() -> ctypes.CDLL:
    """The C math library of this process (the one XGBoost and LightGBM call), with the
    functions Timber may call typed."""
    name = ctypes.util.find_library("m")
    lib = ctypes.CDLL(name) if name else ctypes.CDLL(None)
    for fname in LIBM_FUNCTIONS:
        fn = getattr(lib, fname)
        t = ctypes.c_float if fname.endswith("f") else ctypes.c_double
        fn.restype, fn.argtypes = t, [t]
    return lib


def _elementwise(fname: str, x: np.ndarray) -> np.ndarray:
    x = np.asarray(x)
    f32 = x.dtype == np.float32
    fn = getattr(c_math_library(), fname + ("f" if f32 else ""))
    flat = [fn(float(v)) for v in x.ravel().tolist()]
    return np.array(flat, np.float32 if f32 else np.float64).reshape(x.shape)


def libm_exp(x: np.ndarray) -> np.ndarray:
    """The C library's exp (f64) or expf (f32), elementwise."""
    return _elementwise("exp", x)


def libm_log1p(x: np.ndarray) -> np.ndarray:
    """The C library's log1p (f64) or log1pf (f32), elementwise."""
    return _elementwise("log1p", x)
