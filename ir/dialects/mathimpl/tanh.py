"""`tanh` as `arith` IR, nearly correctly rounded, and `exp_parts`, the exponential as an
unevaluated sum that it (and `erfinv`) build on.

exp_parts(x, xl) (Tang's method: `exp.tang`, the reduction exp uses, and its N = 128 tables): e^(x+xl) = S + B with
    kd = round(x·N/ln2), r = ((x − kd·L1) − kd·L2) + xl, p = r + r²(1/2 + r(1/6 + r(1/24 + r/120))),
    k = int(kd), S = 2^(k>>7)·T_hi[k mod N] (exact), B = 2^(k>>7)·(T_lo[k mod N] + T_hi[k mod N]·p)
accurate to about 2^-60 relative (no rounding of S + B), for −708 < x < 709.

tanh(x) = sign(x)·z, a = |x|:
    a < 1/16:   z = a + a³·P(a²), the Taylor series to a^13 (remainder below 2^-65 relative)
    a < 22:     u = e^(−2a) = S + B (exp_parts, renormalised), z = (1 − u)/(1 + u) with numerator and denominator
                as double-doubles, q = n_hi/d_hi and one correction z = q + ((n_hi − q·d_hi) +
                (n_lo − q·d_lo))/d_hi, q·d_hi exact (Dekker's product)
    a ≥ 22:     z = 1 (±inf → ±1);  ±0 → ±0, NaN → NaN
The result is rounded once at the end from a value good to about 2^-58, so it is the correctly
rounded tanh nearly always; glibc's tanh (fdlibm's s_tanh.c: −t/(t+2), t = expm1(−2a), error up
to about 2 ulps) differs from it by at most two ulps (tests/ir/test_mathimpl.py).  f32 is the f64
result rounded once (glibc's tanhf, fdlibm's float algorithm, is up to two f32 ulps from it).
"""

from __future__ import annotations

from .dsl import E, in_f64, where
from .exp import LOG2N, T_HI, T_LO, pow2, tang

# Taylor coefficients of tanh(a)/a − 1 in a²: −1/3, 2/15, −17/315, 62/2835, −1382/155925, 21844/6081075
T1, T2, T3 = -0.3333333333333333, 0.13333333333333333, -0.05396825396825397
T4, T5, T6 = 0.021869488536155203, -0.008863235529902197, 0.003592128036572481
SMALL = 0.0625
ONE_AT = 22.0  # tanh(22) rounds to 1
SPLIT = 134217729.0  # 2^27 + 1: Veltkamp's splitter


def exp_parts(x: E, xl: E | None = None) -> tuple[E, E]:
    """(S, B) with e^(x + xl) ≈ S + B to about 2^-60 relative; S is a table value times a power
    of two (exact), B the small rest.  For −708 < x < 709 (2^(k>>7) is built in one step)."""
    k, p = tang(x, xl)
    scale = pow2(k >> LOG2N)
    th = k.lookup(T_HI)
    return th * scale, (k.lookup(T_LO) + th * p) * scale


def split(a: E) -> tuple[E, E]:
    """Veltkamp's split: a = hi + lo exactly, each with at most 26 significant bits."""
    c = a * SPLIT
    hi = c - (c - a)
    return hi, a - hi


def fast_two_sum(a: E, b: E) -> tuple[E, E]:
    """a + b = s + e exactly, for |a| >= |b| (or a = 0): s the rounded sum."""
    s = a + b
    return s, b - (s - a)


def two_prod(a: E, b: E) -> tuple[E, E]:
    """Dekker's product: a·b = p + e exactly (no overflow or underflow assumed)."""
    p = a * b
    ah, al = split(a)
    bh, bl = split(b)
    return p, ((ah * bh - p) + ah * bl + al * bh) + al * bl


def tanh_f64(x: E) -> E:
    a = (x.bits() & 0x7FFFFFFFFFFFFFFF).as_float()
    # small: the odd Taylor series
    w = a * a
    z_small = a + a * w * (T1 + w * (T2 + w * (T3 + w * (T4 + w * (T5 + w * T6)))))
    # (1 - u)/(1 + u), u = e^(-2a)
    ac = where(a.lt(ONE_AT), a, ONE_AT)
    s, b = exp_parts(-(ac + ac))
    s, b = fast_two_sum(s, b)
    nh = 1.0 - s
    nl = ((1.0 - nh) - s) - b  # 1 >= s: (1 - nh) - s is the exact rounding error of nh
    dh = 1.0 + s
    dl = ((1.0 - dh) + s) + b
    q = nh / dh
    ph, pl = two_prod(q, dh)
    z = q + (((nh - ph) - pl) + (nl - q * dl)) / dh
    z = where(a.lt(SMALL), z_small, where(a.lt(ONE_AT), z, 1.0))
    out = where(x.bits().lt(0), -z, z)
    return where(x.isnan(), x, out)


tanh = in_f64(tanh_f64)
