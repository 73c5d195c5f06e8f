"""`log1p` and `log` as `arith` IR.

`log1p`: the classic fdlibm algorithm as glibc's generic `dbl-64/s_log1p.c`
evaluates it (the polynomial in Estrin form), so a glibc built without FMA gives the same bits;
glibc's FMA build (x86-64 with FMA, which contracts five multiply-adds) differs by one ulp on
about 0.01% of inputs.

    1+x = 2^k (1+f) with sqrt(2)/2 < 1+f < sqrt(2), found from the exponent and top mantissa bits
    of u = fl(1+x); c = ((1+x) - u)/u corrects the rounding of u (k > 0: 1-(u-x), else x-(u-1)).
    s = f/(2+f), z = s^2, R = z·LP1 + z^2(LP2 + z·LP3) + z^4(LP4 + z·LP5) + z^6(LP6 + z·LP7)
    log1p(x) = k·ln2_hi − ((hfsq − (s(hfsq + R) + (k·ln2_lo + c))) − f),  hfsq = f²/2

with the small cases (|x| < 2^-29, |f| < 2^-20, -0.2929 < x < 0.41422: k = 0) as fdlibm has them.
Every lane computes every case and the right one is selected.

`log` is fdlibm's e_log.c with the same k/f reduction and polynomial (Lg1..Lg7 = LP1..LP7):

    subnormal x is scaled by 2^54 first (k = -54);  x = 2^k (1+f), sqrt(2)/2 < 1+f < sqrt(2)
    |f| < 2^-20:  R = f²(1/2 − f/3),  log(x) = k·ln2_hi − ((R − k·ln2_lo) − f)
    else s = f/(2+f), z = s², w = z², R = z(Lg1 + w(Lg3 + w(Lg5 + w·Lg7))) + w(Lg2 + w(Lg4 + w·Lg6))
         f in the middle of its range: log(x) = k·ln2_hi − ((hfsq − (s(hfsq+R) + k·ln2_lo)) − f), hfsq = f²/2
         otherwise:                    log(x) = k·ln2_hi − ((s(f−R) − k·ln2_lo) − f)

(fdlibm's k = 0 forms are these with k = 0, bit for bit.)  log(±0) = −inf, log(x < 0) = NaN,
log(+inf) = +inf, NaN → NaN.  fdlibm bounds the error below 1 ulp, so it is within one ulp of
glibc's (nearly correctly rounded) log; measured in tests/ir/test_mathimpl.py.
"""

from __future__ import annotations

from .dsl import E, in_f64, where

LP1, LP2, LP3, LP4 = 6.666666666666735130e-01, 3.999999999940941908e-01, 2.857142874366239149e-01, 2.222219843214978396e-01
LP5, LP6, LP7 = 1.818357216161805012e-01, 1.531383769920937332e-01, 1.479819860511658591e-01
LN2_HI, LN2_LO = 6.93147180369123816490e-01, 1.90821492927058770002e-10  # ln2_hi has 32 trailing zero bits
TWO_THIRDS = 0.66666666666666666
# thresholds on the high 32 bits of x (as a signed int32)
HX_K0_HIGH = 0x3FDA827A  # x < 0.41422 (sqrt(2) - 1)
HX_K0_LOW = 0xBFD2BEC3 - 2**32  # x > -0.2929 (sqrt(2)/2 - 1)
AX_MINUS_ONE = 0x3FF00000  # |x| >= 1 (with x < 0.41: x <= -1)
AX_TINY = 0x3E200000  # |x| < 2^-29
AX_TINIER = 0x3C900000  # |x| < 2^-54
HX_BIG = 0x43400000  # x >= 2^53: 1+x is x
HU_SQRT2 = 0x6A09E  # top 20 mantissa bits of sqrt(2)


def log1p_f64(x: E) -> E:
    hx = x.bits() >> 32  # the high word, sign-extended
    ax = hx & 0x7FFFFFFF
    low = hx.lt(HX_K0_HIGH)
    le_minus_one = low & ax.ge(AX_MINUS_ONE)
    not_m1 = low & ~le_minus_one
    tiny = not_m1 & ax.lt(AX_TINY)
    k0 = (not_m1 & ~tiny) & (hx.gt(0) | hx.le(HX_K0_LOW))
    # argument reduction (lanes that do not need it compute values that are never selected)
    big = hx.ge(HX_BIG)
    u = where(big, x, 1.0 + x)
    ub = u.bits()
    hu = ub >> 32
    k = (hu >> 20) - 1023
    c = where(big, 0.0, where(k.gt(0), 1.0 - (u - x), x - (u - 1.0)) / u)
    hu = hu & 0xFFFFF
    up = hu.lt(HU_SQRT2)
    top = where(up, hu | 0x3FF00000, hu | 0x3FE00000)
    k = where(up, k, k + 1)
    hu = where(up, hu, (0x00100000 - hu) >> 2)
    f = ((top << 32) | (ub & 0xFFFFFFFF)).as_float() - 1.0
    f = where(k0, x, f)
    k = where(k0, 0, k)
    hu = where(k0, 1, hu)
    kd = k.to_float()
    kzero = k.eq(0)
    hfsq = 0.5 * f * f
    khi, klo = kd * LN2_HI, kd * LN2_LO
    # |f| < 2^-20
    rs = hfsq * (1.0 - TWO_THIRDS * f)
    small = where(kzero, f - rs, khi - ((rs - (klo + c)) - f))
    small = where(f.eq(0.0), where(kzero, 0.0, khi + (c + klo)), small)
    # the general case
    s = f / (2.0 + f)
    z = s * s
    z2 = z * z
    z4 = z2 * z2
    z6 = z4 * z2
    r = ((z * LP1 + z2 * (LP2 + z * LP3)) + z4 * (LP4 + z * LP5)) + z6 * (LP6 + z * LP7)
    t = s * (hfsq + r)
    main = where(kzero, f - (hfsq - t), khi - ((hfsq - (t + (klo + c))) - f))
    out = where(hu.eq(0), small, main)
    out = where(tiny, where(ax.lt(AX_TINIER), x, x - x * x * 0.5), out)
    out = where(le_minus_one, where(x.eq(-1.0), x.const(float("-inf")), float("nan")), out)
    out = where(~low & hx.ge(0x7FF00000), x + x, out)  # +inf, NaN
    return where(x.isnan(), x, out)


log1p = in_f64(log1p_f64)


TWO54 = 18014398509481984.0  # 2^54
THIRD = 0.33333333333333333


def log_f64(x: E) -> E:
    b = x.bits()
    sub = b.gt(0) & b.lt(0x0010000000000000)  # positive subnormal: scale into the normal range
    xs = where(sub, x * TWO54, x)
    bs = xs.bits()
    hx = bs >> 32
    k = (hx >> 20) - where(sub, hx.const(1023 + 54), 1023)
    hx = hx & 0xFFFFF
    i = (hx + 0x95F64) & 0x100000  # 1+f would exceed sqrt(2): halve it (k + 1)
    xn = (((hx | (i ^ 0x3FF00000)) << 32) | (bs & 0xFFFFFFFF)).as_float()
    k = k + (i >> 20)
    f = xn - 1.0
    dk = k.to_float()
    khi, klo = dk * LN2_HI, dk * LN2_LO
    # -2^-20 <= f < 2^-20
    small = ((hx + 2) & 0xFFFFF).lt(3)
    rs = f * f * (0.5 - THIRD * f)
    v_small = khi - ((rs - klo) - f)
    # the general case
    s = f / (2.0 + f)
    z = s * s
    w = z * z
    t1 = w * (LP2 + w * (LP4 + w * LP6))
    t2 = z * (LP1 + w * (LP3 + w * (LP5 + w * LP7)))
    r = t2 + t1
    mid = ((hx - 0x6147A) | (0x6B851 - hx)).gt(0)
    hfsq = 0.5 * f * f
    v_mid = khi - ((hfsq - (s * (hfsq + r) + klo)) - f)
    v_edge = khi - ((s * (f - r) - klo) - f)
    out = where(small, v_small, where(mid, v_mid, v_edge))
    # x = ±0: -inf; x < 0: NaN; +inf and NaN: themselves
    special = where(x.eq(0.0), x.const(float("-inf")), where(x.lt(0.0), float("nan"), x + x))
    return where(x.gt(0.0) & x.lt(float("inf")), out, special)


log = in_f64(log_f64)
