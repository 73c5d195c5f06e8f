"""Test oracle: Timber's `exp`, `log1p` and fmath's `exp` in numpy, step for step.

The algorithms live once, as `arith` IR, in `ir/dialects/mathimpl/`; every back-end and the
interpreter run that IR.  This numpy statement of the same operation sequences (with the same
constants, imported from there) pins their bits: a change to an expansion that alters any result
fails `tests/ir/test_mathfn.py`.
"""

from __future__ import annotations

import numpy as np

from ir.dialects.mathimpl.exp import (  # noqa: F401
    C2,
    C3,
    C4,
    C5,
    FMATH_A,
    FMATH_ADJ,
    FMATH_B,
    FMATH_BITS,
    FMATH_C1,
    FMATH_C2,
    FMATH_C3,
    FMATH_HI,
    FMATH_LO,
    FMATH_RA,
    FMATH_T,
    INV_LN2_N,
    LN2_HI_N,
    LN2_LO_N,
    LOG2N,
    OVERFLOW,
    SHIFT,
    T_HI,
    T_LO,
    UNDERFLOW,
    N,
)
from ir.dialects.mathimpl.log import (  # noqa: F401
    AX_MINUS_ONE,
    AX_TINIER,
    AX_TINY,
    HU_SQRT2,
    HX_BIG,
    HX_K0_HIGH,
    HX_K0_LOW,
    LP1,
    LP2,
    LP3,
    LP4,
    LP5,
    LP6,
    LP7,
    TWO_THIRDS,
)
from ir.dialects.mathimpl.log import LN2_HI as LOG_LN2_HI
from ir.dialects.mathimpl.log import LN2_LO as LOG_LN2_LO


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


def unary_module(op: str, t: str, attrs: str = "", n: int = 1):
    """`@predict(x: tensor<n x t>) = op x {attrs}`: a module of one elementwise op."""
    from ir.parser import parse_module

    ty = f"tensor<{n}x{t}>"
    return parse_module(f"func.func @predict(%x: {ty}) -> {ty} {{\n  %r = {op} %x {attrs} : {ty}\n  func.return %r : {ty}\n}}")


def ir_function(op: str, attrs: str = "", math: str = "timber"):
    """`op` (e.g. "math.exp") as the interpreter runs it — the IR expansion every back-end
    lowers — applied elementwise to a float32 or float64 array of any shape."""
    from ir.interpreter import run

    def apply(x) -> np.ndarray:
        x = np.asarray(x)
        t = "f32" if x.dtype == np.float32 else "f64"
        flat = np.ascontiguousarray(x.astype(np.float32 if t == "f32" else np.float64)).reshape(-1, 1)
        return run(unary_module(op, t, attrs), flat, math=math).reshape(x.shape)

    return apply
