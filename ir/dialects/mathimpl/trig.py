"""`sin` and `cos` as `arith` IR: an exact argument reduction over the whole double range
(Cody–Waite's in floating point below 2^10, Payne–Hanek's in integers beyond), then fdlibm's kernels.

Range: every finite double (no argument is refused or loses accuracy).  sin(±0) = ±0,
sin/cos(±inf) = NaN, NaN → NaN.  Within one ulp of glibc's sin/cos on 1.2·10^6 inputs of every
magnitude (equal on 97.7%), and within one ulp of the correctly rounded value on the hardest
arguments (6381956970095103·2^797, the double nearest a multiple of π/2, where glibc 2.36's cos
is 8 ulps off, DBL_MAX, doubles next to k·π/2 for k up to 2^60); tests/ir/test_mathimpl.py.
f32 is the f64 result rounded once (within one f32 ulp of glibc's sinf/cosf).

Two reductions of a = |x| to a = n·π/2 + y, |y| ≤ π/4 (n mod 4 and y = y_hi + y_lo), selected per
lane (no branch): a < 2^10 (CW_LIMIT: joint angles) takes Cody–Waite's, the rest Payne–Hanek's.

Cody–Waite (`reduce_cw`, a < 2^10, floating point only):
    fn = n = round(a·2/π) (by adding 1.5·2^52: n is also the low bits of that sum, and n < 2^10);
    π/2 = C1 + C2 + C3 with C1 and C2 of 43 bits (so fn·C1 and fn·C2 are exact) and C3 rounded;
    r = a − fn·C1 is exact (Sterbenz), r − fn·C2 one exact two-sum, its rounding error and fn·C3
    go into y_lo.  y is good to 2^-126 absolute (fn·C3's rounding and π/2's tail past C3), while
    |y| ≥ 2^-60.5 for every double a in [π/4, 2^10) (the closest, next to 29·π/2): about 2^-66
    relative at worst, 2^-100 typically, far below what sin and cos need.  For a < π/4, fn = 0 and
    (y_hi, y_lo) = (a, 0) exactly.

Payne–Hanek (`reduce_pio2`, any finite a ≥ π/4), in integers (i64):
    a = M·2^E (M the 53-bit significand), E = 30·s + r, 0 ≤ r < 30 (s = floor((E + 1080)/30) − 36
        by a multiply-shift, exact on the exponent range);  M·2^r = a0·2^60 + a1·2^30 + a2 (30-bit limbs)
    2/π = Σ_i P[i]·2^(-30(i+1)), P a table of 30-bit integers (40 limbs, 1200 bits; zero past them
        and, read modulo 64, at negative indices; one rotated copy per offset, all read at s + 36)
    a·2/π ≡ Σ_{n=0..5} Q[n]·2^(-30n)  (mod 2^30), Q[n] = a0·P[n+s+1] + a1·P[n+s] + a2·P[n+s−1]:
        products of limbs that are multiples of 2^30 (n < 0) are dropped; each Q[n] < 2^62
    carries propagate from Q[5] to Q[0]: fraction limbs L1..L4 (30 bits) and the integer part I;
        n = (I + round) mod 4, and the fraction f ∈ [−1/2, 1/2) (L1 − 2^30 when L1 ≥ 2^29)
    f as a double-double from L1·2^-30 + L2·2^-60 + L3·2^-90 + L4·2^-120 (exact fast two-sums),
        y = f·π/2 with Dekker's product (π/2 = C1 + C2, C1 of 26 bits)
The truncated tail is below 2^-118 in f, and |f| ≥ 2^-62 for every double (the closest a double
comes to a multiple of π/2 is about 2^-61·π/2), so y is good to about 2^-56 relative even there
and to 2^-100 typically.

Kernels on y = y_hi + y_lo (|y| ≤ π/4), fdlibm's k_sin.c and FreeBSD's k_cos.c:
    sin: z = y², v = z·y_hi, R = S2 + z(S3 + z(S4 + z(S5 + z·S6))),
         sin = y_hi − ((z(y_lo/2 − v·R) − y_lo) − v·S1)
    cos: w = z², R = z(C1 + z(C2 + z·C3)) + w²(C4 + z(C5 + z·C6)), h = z/2, t = 1 − h,
         cos = t + (((1 − t) − h) + (z·R − y_hi·y_lo))
and by quadrant n: sin x = (sin y, cos y, −sin y, −cos y)[n], cos x = (cos y, −sin y, −cos y, sin y)[n],
with sin(−x) = −sin x.

`sincos_f64` computes both from one reduction (the same operations, so the same bits); the LLVM
back-end uses it for the sin and cos of one value, with `fast=True` (Cody–Waite's reduction only:
the same bits wherever |x| < 2^10 or x is not finite) when every lane of a block is such a value:
joint angles take a fraction of Payne–Hanek's integer work.
"""

from __future__ import annotations

from .dsl import E, i64, in_f64, where
from .tanh import fast_two_sum, split

# 2/π, its first 1200 bits after the binary point (tests/ir/test_mathimpl.py checks them against mpmath)
TWO_OVER_PI_HEX = (
    "A2F9836E4E441529FC2757D1F534DDC0DB6295993C439041FE5163ABDEBBC561B7246E3A424DD2E006492EEA09D1921CFE1DEB1CB"
    "129A73EE88235F52EBB4484E99C7026B45F7E413991D639835339F49C845F8BBDF9283B1FF897FFDE05980FEF2F118B5A0A6D1F6D"
    "367ECF27CB09B74F463F669E5FEA2D7527BAC7EBE5F17B3D0739F78A5292EA6BFB5FB11F8D5D0856033046FC7B"
)
LIMB = 30
MASK = (1 << LIMB) - 1


def _limbs() -> list[int]:
    v = int(TWO_OVER_PI_HEX, 16)
    nbits = 4 * len(TWO_OVER_PI_HEX)
    n = nbits // LIMB
    out = [(v >> (nbits - LIMB * (i + 1))) & MASK for i in range(n)]
    return out + [0] * (64 - n)


P_TABLE = _limbs()
# P_ROTATED[c][i] = P[(i + c + 1 - S_BIAS) mod 64]: the limb P[c + s + 1] read at index s + S_BIAS
E_BIAS = 5  # t = biased exponent + 5 = E + 1080 = E + 30·36 >= 0
DIV30_MUL, DIV30_SHIFT = 2185, 16  # floor(t/30) = (t·2185) >> 16 for 0 <= t < 4690
S_BIAS = 36
P_ROTATED = {c: [P_TABLE[(i + c + 1 - S_BIAS) % 64] for i in range(64)] for c in range(-2, 6)}
PIO2_1 = 1.5707963109016418  # π/2 to 26 bits
PIO2_2 = 1.5893254773528196e-08  # π/2 − PIO2_1, rounded

# Cody–Waite: |x| below CW_LIMIT is reduced by `reduce_cw`; the LLVM back-end's `fast` branch is
# taken when every lane is below it (or not finite): compare the bits of |x| with FAST_LIMIT_BITS
CW_LIMIT = 2.0**10
FAST_LIMIT_BITS = 0x4090000000000000  # the bits of CW_LIMIT
TO_INT = 6755399441055744.0  # 1.5·2^52: t + TO_INT rounds t (|t| < 2^51) to an integer, kept in the low bits
INV_PIO2 = 0.6366197723675814  # 2/π rounded
CW_C1 = 1.5707963267948344  # 0x1.921fb54442c00p+0: the first 43 bits of π/2
CW_C2 = 6.223372171896261e-14  # 0x1.18469898cc400p-44: the next 43 bits
CW_C3 = 3.5215598651832e-27  # 0x1.1701b839a2520p-88: π/2 − C1 − C2, rounded

S1, S2, S3 = -1.66666666666666324348e-01, 8.33333333332248946124e-03, -1.98412698298579493134e-04
S4, S5, S6 = 2.75573137070700676789e-06, -2.50507602534068634195e-08, 1.58969099521155010221e-10
C1, C2, C3 = 4.16666666666666019037e-02, -1.38888888888741095749e-03, 2.48015872894767294178e-05
C4, C5, C6 = -2.75573143513906633035e-07, 2.08757232129817482790e-09, -1.13596475577881948265e-11


def reduce_pio2(ab: E) -> tuple[E, E, E]:
    """Payne–Hanek: (n mod 4, y_hi, y_lo) with |x| = n·π/2 + y, from the bits `ab` of |x| (finite,
    ≥ π/4; other lanes get values that are never used)."""
    e = ab >> 52
    m = (ab & ((1 << 52) - 1)) | (1 << 52)
    t = e + E_BIAS
    sp = (t * DIV30_MUL) >> DIV30_SHIFT  # s + 36
    r = t - sp * LIMB
    a0 = m >> (2 * LIMB - r)
    # P[c + s + 1] for c = n - j in [-2, 5]: table P_c (P rotated) read at sp = s + 36
    p = {c: sp.lookup(P_ROTATED[c], i64) for c in range(-2, 6)}
    a1 = (m >> (LIMB - r)) & MASK
    a2 = (m << r) & MASK
    q = [a0 * p[n] + a1 * p[n - 1] + a2 * p[n - 2] for n in range(6)]
    carry = q[5] >> LIMB
    limbs = {}
    for n in (4, 3, 2, 1):
        v = q[n] + carry
        limbs[n] = v & MASK
        carry = v >> LIMB
    whole = q[0] + carry
    up = limbs[1] >> (LIMB - 1)  # fraction >= 1/2: round to the next quadrant
    quadrant = (whole + up) & 3
    l1 = limbs[1] - (up << LIMB)
    f1 = l1.to_float() * 2.0**-30
    f2 = limbs[2].to_float() * 2.0**-60
    f3 = limbs[3].to_float() * 2.0**-90
    f4 = limbs[4].to_float() * 2.0**-120
    h, lo = fast_two_sum(f1, f2)  # |f1| >= 2^-30 > f2 unless l1 = 0
    h, e3 = fast_two_sum(h, f3)  # h is a multiple of 2^-60: |h| >= 2^-60 > f3 unless h = 0
    hi, lo = fast_two_sum(h, (lo + e3) + f4)
    # y = (hi + lo)·π/2
    hh, hl = split(hi)
    p1 = hh * PIO2_1
    s = hl * PIO2_1 + (hi * PIO2_2 + lo * PIO2_1)
    yh, yl = fast_two_sum(p1, s)
    return quadrant, yh, yl


def two_sum(a: E, b: E) -> tuple[E, E]:
    """Knuth's two-sum: a + b = s + e exactly, whatever the magnitudes (s the rounded sum)."""
    s = a + b
    bb = s - a
    return s, (a - (s - bb)) + (b - bb)


def reduce_cw(ax: E) -> tuple[E, E, E]:
    """Cody–Waite: (n mod 4, y_hi, y_lo) with ax = n·π/2 + y for 0 <= ax < CW_LIMIT (other lanes
    get values that are never used; ±0 and subnormals give (0, ax, 0))."""
    k = ax * INV_PIO2 + TO_INT
    fn = k - TO_INT
    r = ax - fn * CW_C1  # exact
    s, e = two_sum(r, fn * -CW_C2)
    return (k.bits() & 3, *fast_two_sum(s, e - fn * CW_C3))


def _reduce(x: E, fast: bool) -> tuple[E, E, E, E]:
    """(|x|, n mod 4, y_hi, y_lo): Cody–Waite's reduction where |x| < CW_LIMIT, else Payne–Hanek's;
    `fast`: Cody–Waite's on every lane (right where |x| < CW_LIMIT; the caller makes sure that no
    other finite value is there)."""
    ab = x.bits() & 0x7FFFFFFFFFFFFFFF
    ax = ab.as_float()
    n, yh, yl = reduce_cw(ax)
    if not fast:
        near = ab.lt(FAST_LIMIT_BITS)
        pn, pyh, pyl = reduce_pio2(ab)
        n, yh, yl = where(near, n, pn), where(near, yh, pyh), where(near, yl, pyl)
    return ax, n, yh, yl


def _sin_kernel(x: E, y: E) -> E:
    z = x * x
    v = z * x
    r = S2 + z * (S3 + z * (S4 + z * (S5 + z * S6)))
    return x - ((z * (0.5 * y - v * r) - y) - v * S1)


def _cos_kernel(x: E, y: E) -> E:
    z = x * x
    w = z * z
    r = z * (C1 + z * (C2 + z * C3)) + w * w * (C4 + z * (C5 + z * C6))
    hz = 0.5 * z
    t = 1.0 - hz
    return t + (((1.0 - t) - hz) + (z * r - x * y))


def _sincos(x: E, cos: bool) -> E:
    ax, n, yh, yl = _reduce(x, fast=False)
    s = _sin_kernel(yh, yl)
    c = _cos_kernel(yh, yl)
    odd = (n & 1).ne(0)
    if cos:
        r = where(odd, s, c)
        neg = ((n + 1) & 2).ne(0)
    else:
        r = where(odd, c, s)
        neg = (n & 2).ne(0) ^ x.bits().lt(0)
    out = where(neg, -r, r)
    return where(ax.lt(float("inf")), out, x - x)  # ±inf, NaN → NaN


def sincos_f64(x: E, fast: bool = False) -> tuple[E, E]:
    """(sin x, cos x) from one reduction and one pair of kernels: the very operations `_sincos`
    performs for each, so the same bits as `sin_f64(x)` and `cos_f64(x)`.  `fast`: Cody–Waite's
    reduction alone (`_reduce`); lanes with |x| ≥ 2^10 (finite) get wrong values, so a caller
    takes it only when no lane has one (the LLVM back-end branches on that)."""
    ax, n, yh, yl = _reduce(x, fast)
    s = _sin_kernel(yh, yl)
    c = _cos_kernel(yh, yl)
    odd = (n & 1).ne(0)
    rs = where(odd, c, s)
    rc = where(odd, s, c)
    neg_s = (n & 2).ne(0) ^ x.bits().lt(0)
    neg_c = ((n + 1) & 2).ne(0)
    finite = ax.lt(float("inf"))
    nan = x - x
    return where(finite, where(neg_s, -rs, rs), nan), where(finite, where(neg_c, -rc, rc), nan)


def sin_f64(x: E) -> E:
    return _sincos(x, cos=False)


def cos_f64(x: E) -> E:
    return _sincos(x, cos=True)


sin = in_f64(sin_f64)
cos = in_f64(cos_f64)
