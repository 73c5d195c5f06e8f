"""`linear-fuse-scaler`: fold an elementwise scaler feeding a `linear.affine` into its weights and bias.

    %e = arith.extf %x : tensor<50xf32> to tensor<50xf64>
    %s = arith.subf %e, %mean : tensor<50xf64>                   acc = b'
    %z = arith.divf %s, %scale : tensor<50xf64>          →       acc += x[j] * w'[j]
    %y = linear.affine %z {weights = w, bias = b, ...}           (w' = w / scale, b' = b - Σ w·mean/scale)

The chain is what `tree-fuse-scaler` folds into thresholds (`scaler_chain`): addf/subf/mulf/divf
by finite constants (nonzero for mul/div), negf, extf, truncf.  In exact arithmetic it is
z_j = a_j·x_j + o_j.  The chain is fused only when the op feeding the affine goes away with it.

**Exact mode** (no option; this is what makes the pass exact): the rewrite is made only when, for
every value x of the input's element type (±inf, ±0, subnormals and NaN included), each step
computes a_j·x exactly: every scale is dyadic and a·x fits the step's type for all x (its
significand bits plus the input's fit the precision, its exponent keeps the smallest subnormal
and the largest finite value in range — e.g. f32 input, extf, then a power of two in f64), the
affine's conversion to its element type is exact too, and a_j·w_kj is a value of that type.
Then the original term `fl(z_j·w_kj)` and the fused `fl(x_j·w'_kj)` round the same real number
(the same infinity on overflow, the same zero sign, NaN for ±inf·0 in both), so every partial
sum is bit-identical, and x_j is NaN exactly when z_j is, so `missing = "skip"` skips the same
terms.  Offsets are fused only when they are zero: `x - 0.0` and `x + -0.0` are the identity;
`x + 0.0` turns -0.0 into +0.0, which changes a zero term's sign, harmless unless a partial sum
can be -0.0 — in round-to-nearest that needs the bias itself to be -0.0, so such a chain is fused
only when no bias is -0.0.  Any other offset rounds (x + o is not exact for every x), so it is
left alone.  A truncf to the affine's own type goes too: it is the conversion the affine makes.

**Tolerance mode** (`{tolerance=T}`, lossy): the chain's exact affine form is moved into the
weights, w'_kj = rn(a_j·w_kj), and the bias, b'_k = rn(b_k + Σ_j o_j·w_kj), each rounded once.
For a row x on which no operation of either computation overflows, every output k obeys

    |fused_k(x) - original_k(x)| <= E·S_k(x) + F_k,   S_k(x) = |b_k| + Σ_j |w_kj|·(|a_j·x_j| + ō_j)

with ō_j the sum of the magnitudes of the chain's offsets (scaled like x) — for (x - m)/s that
is |m/s|, so S = |b| + Σ|w|·(|x| + |m|)/|s|.  Derivation (u: unit roundoff of the affine's type,
γ_n = n·u/(1 - n·u), N inputs; rounding modelled as fl(a∘b) = (a∘b)(1+δ) + η, |δ| <= u, η only
for products/quotients in the subnormal range, |η| <= half the smallest subnormal):
* the chain: by induction over its steps, |z_j - (a_j·x_j + o_j)| <= ε·(|a_j·x_j| + ō_j) + ζ_j,
  ε = Π(1 + u_step) - 1 over the rounding steps (every add/sub/mul/div, narrowing casts), ζ_j the
  underflow slack carried through the later scales;
* each affine (bias plus N products, summed left to right) is within γ_{N+1}·(|b| + Σ|w·x|) +
  N·η of its exact value (Higham, recursive summation); the original's magnitudes are at most
  (1+ε)·S + Z, the fused one's (1+u)·S + η, Z_k = Σ_j |w_kj|·ζ_j;
* the fused weights and bias are one rounding away from exact: at most u·S;
so E = u + ε + γ_{N+1}·(2 + ε + u) and F = (1 + γ_{N+1})·(Z + (2N+1)·η).  The pass fuses only
when E <= T (F is a fixed underflow allowance: some hundreds of the type's smallest subnormal
plus the chain's own underflow slack) and writes E and F to the audit log.  The affine records E
as `linear.fuse_error`; it is not fused lossily again (a second bound would be relative to a
different S), only exactly.  On ±inf inputs both give the same infinities (or NaN); NaN inputs
give NaN in both with `missing = "propagate"`.  With `missing = "skip"` a NaN x_j drops its
term, offset included, in the original but not from a fused bias: a chain whose offsets reach
the bias is never fused there (that is no rounding error).  Fused weights must stay normal numbers (a weight flushed to
a subnormal or zero would turn ±inf rows into other values).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from ir.attributes import DenseElementsAttr, FloatAttr
from ir.core import Operation
from ir.dialects import arith
from ir.dialects.linear import AffineOp
from ir.types import f64

from .base import Pass, PassContext, option
from .fuse_scaler import erase_if_dead, scaler_chain
from .registry import register_pass
from .rewrite import OpPattern, Rewriter, apply_patterns

FUSE_ERROR = "linear.fuse_error"  # E of a lossy fusion, on the affine it changed


@dataclass(frozen=True)
class Format:
    """What the error analysis needs of a float type, as exact rationals."""

    p: int  # significand bits, the implicit one included
    qmin: int  # exponent of the smallest subnormal
    max: Fraction
    tiny: Fraction  # smallest normal
    dtype: np.dtype

    @staticmethod
    def of(dtype) -> Format:
        fi = np.finfo(dtype)
        return Format(
            fi.nmant + 1, int(math.log2(float(fi.smallest_subnormal))), Fraction(float(fi.max)), Fraction(float(fi.tiny)), fi.dtype
        )

    @property
    def u(self) -> Fraction:
        return Fraction(1, 2**self.p)

    @property
    def eta(self) -> Fraction:
        return Fraction(1, 2 ** (1 - self.qmin))

    def holds(self, other: Format) -> bool:
        """Every value of `other` is a value of this format."""
        return self.p >= other.p and self.qmin <= other.qmin and self.max >= other.max


def _odd_part(r: Fraction) -> tuple[int, int] | None:
    """(m, e) with |r| = m·2^e, m odd; None when r is not dyadic (or zero)."""
    den = r.denominator
    if r == 0 or den & (den - 1):
        return None
    num = abs(r.numerator)
    tz = (num & -num).bit_length() - 1
    return num >> tz, tz - (den.bit_length() - 1)


def scaled_fits(a: Fraction, src: Format, dst: Format) -> bool:
    """a·x is a value of `dst` for every finite x of `src` (x = n·2^q, n < 2^p_src, q >= qmin_src:
    a·x = (m·n)·2^(e+q) is one when m·n has at most p_dst bits, e + q >= qmin_dst and |a·x| <= max)."""
    me = _odd_part(a)
    if me is None:
        return False
    m, e = me
    # the widest a·n is m·(2^p_src - 1); the lowest bit of a·x is 2^(e + qmin_src)
    return (m * (2**src.p - 1)).bit_length() <= dst.p and e + src.qmin >= dst.qmin and abs(a) * src.max <= dst.max


def round_to(r: Fraction, f: Format):
    """r rounded to the nearest value of `f` (±inf past its range), without double rounding."""
    with np.errstate(over="ignore"):
        v = np.array(float(r)).astype(f.dtype)[()]
    if not np.isfinite(v):
        return v
    cands = [c for c in (v, np.nextafter(v, f.dtype.type(np.inf)), np.nextafter(v, f.dtype.type(-np.inf))) if np.isfinite(c)]
    return min(cands, key=lambda c: abs(Fraction(float(c)) - r))


def _round_up(x: Fraction) -> float:
    v = float(x)
    return v if Fraction(v) >= x else math.nextafter(v, math.inf)


def _upper(v: float) -> str:
    """v in 3 significant digits, rounded up (a printed bound must not be below the real one)."""
    if v <= 0:
        return "0"
    e = math.floor(math.log10(v))
    m = math.ceil(Fraction(v) / Fraction(10) ** (e - 2))
    if m >= 1000:
        m, e = math.ceil(Fraction(m, 10)), e + 1
    digits = str(m)
    return f"{digits[0]}.{digits[1:]}e{e}"


def _ops(n: int) -> str:
    return f"{n} scaler op{'s' if n != 1 else ''}"


def _fractions(values: np.ndarray) -> list[Fraction]:
    return [Fraction(v) for v in values.astype(np.float64).tolist()]


def _step_format(op: Operation) -> Format:
    return Format.of(op.results[0].type.element.numpy)


def exact_scales(chain, x0: Format, dt: Format, n: int) -> tuple[list[Fraction], bool] | str:
    """(a_j, whether a +0.0 offset may have turned -0.0 into +0.0) when every step computes a_j·x
    exactly for every x of `x0`, and so does the conversion to `dt`; else why not."""
    a = [Fraction(1)] * n
    zero_sign = False
    for kind, c, _, op in reversed(chain):
        f = _step_format(op)
        if kind == "neg":
            a = [-v for v in a]
            continue
        if kind in ("add", "sub", "rsub"):
            if np.any(c != 0):
                return "a nonzero offset rounds for some inputs"
            plus = ~np.signbit(c)  # x + 0.0, x - (-0.0), 0.0 - x: -0.0 becomes +0.0
            zero_sign |= bool(np.any(plus if kind != "sub" else ~plus))
            if kind == "rsub":
                a = [-v for v in a]
            continue
        if kind in ("mul", "div"):
            cs = _fractions(c)
            a = [v * k if kind == "mul" else v / k for v, k in zip(a, cs)]
        if not all(scaled_fits(v, x0, f) for v in a):
            return f"a scaled value does not fit {f.dtype.name} exactly for every {x0.dtype.name} input"
    if not all(scaled_fits(v, x0, dt) for v in a):
        return f"a scaled value does not convert to {dt.dtype.name} exactly for every {x0.dtype.name} input"
    return a, zero_sign


@dataclass
class Rounded:
    """The chain in exact arithmetic, z_j = a_j·x_j + o_j, and its rounding-error bound
    |z_j - (a_j·x_j + o_j)| <= eps·(|a_j·x_j| + o_abs_j) + zeta_j."""

    a: list[Fraction]
    o: list[Fraction]
    o_abs: list[Fraction]
    eps: Fraction
    zeta: list[Fraction]


def rounded_scales(chain, x0: Format, dt: Format, n: int) -> Rounded:
    """The exact affine form of the chain (converted to `dt`) and its error bound (module docstring)."""
    r = Rounded([Fraction(1)] * n, [Fraction(0)] * n, [Fraction(0)] * n, Fraction(0), [Fraction(0)] * n)
    src = x0

    def rounding(f: Format, scale: list[Fraction] | None, underflow: bool) -> None:
        r.eps = (1 + r.eps) * (1 + f.u) - 1
        s = scale or [Fraction(1)] * n
        r.zeta = [z * abs(k) * (1 + f.u) + (f.eta if underflow else 0) for z, k in zip(r.zeta, s)]

    for kind, c, _, op in reversed(chain):
        f = _step_format(op)
        if kind == "cast":
            if not f.holds(src):
                rounding(f, None, True)
        elif kind == "neg":
            r.a, r.o = [-v for v in r.a], [-v for v in r.o]
        elif kind in ("mul", "div"):
            k = _fractions(c) if kind == "mul" else [1 / v for v in _fractions(c)]
            r.a = [v * s for v, s in zip(r.a, k)]
            r.o = [v * s for v, s in zip(r.o, k)]
            r.o_abs = [v * abs(s) for v, s in zip(r.o_abs, k)]
            rounding(f, k, True)
        else:  # add, sub, rsub: sums are exact in the subnormal range, so no underflow term
            cs = _fractions(c)
            if kind == "rsub":  # c - z
                r.a = [-v for v in r.a]
                r.o = [cj - v for v, cj in zip(r.o, cs)]
            else:
                r.o = [v + cj if kind == "add" else v - cj for v, cj in zip(r.o, cs)]
            r.o_abs = [v + abs(cj) for v, cj in zip(r.o_abs, cs)]
            rounding(f, None, False)
        src = f
    if not dt.holds(src):
        rounding(dt, None, True)
    return r


@dataclass
class Plan:
    """New weights and bias for one affine, and the error bound (0 when exact)."""

    weights: np.ndarray
    bias: np.ndarray
    rel: float = 0.0  # E
    abs: float = 0.0  # F, the largest over outputs


class FuseScalerIntoAffine(OpPattern):
    """linear.affine(scaler(x)) → linear.affine(x) with moved weights and bias, when exact or
    (with a tolerance) within a stated bound."""

    root = "linear.affine"

    def __init__(self, tolerance: float | None):
        self.tolerance = tolerance
        self.fused: list[tuple[str, int, Plan, str]] = []  # (result name, ops fused, plan, why not more)
        self.refused: dict[int, tuple[str, str]] = {}  # id(op) → (result name, first reason)
        self.touched: set[int] = set()  # id(op) of affines fused in this run

    def match_and_rewrite(self, op: AffineOp, rewriter: Rewriter) -> bool:
        chain = scaler_chain(op.operands[0])
        if not chain or len(op.operands[0].uses) != 1:
            return False  # nothing to fuse, or the scaled row stays alive for another user anyway
        why = ""
        for length in range(len(chain), 0, -1):  # the whole chain, then the part nearest the affine
            plan = self._plan(op, chain[:length])
            if isinstance(plan, str):
                why = why or plan
                continue
            w, b = op.attributes["weights"], op.attributes["bias"]
            rewriter.set_attr(op, "weights", DenseElementsAttr(plan.weights, w.type), f"weights scaled by {length} scaler ops")
            rewriter.set_attr(op, "bias", DenseElementsAttr(plan.bias, b.type), "scaler offsets moved into the bias")
            rewriter.set_operand(op, 0, chain[length - 1][2], f"fused {length} elementwise ops into the weights")
            if plan.rel:
                rewriter.set_attr(op, FUSE_ERROR, FloatAttr(plan.rel, f64))
            for _, _, _, step in chain[:length]:
                erase_if_dead(step, rewriter)
            self.fused.append((op.results[0].name_hint or "", length, plan, why))
            self.refused.pop(id(op), None)
            self.touched.add(id(op))
            return True
        if id(op) not in self.touched:  # a fused affine's note already says why no more was fused
            self.refused.setdefault(id(op), (op.results[0].name_hint or "", why))
        return False

    def _plan(self, op: AffineOp, chain) -> Plan | str:
        w = np.asarray(op.attributes["weights"].values)
        b = np.asarray(op.attributes["bias"].values)
        if not (np.all(np.isfinite(w)) and np.all(np.isfinite(b))):
            return "weights or bias are not finite"
        dt = Format.of(w.dtype)
        if len(chain) == 1 and isinstance(chain[0][3], arith.TruncFOp) and chain[0][1] == dt.dtype:
            return Plan(np.array(w, copy=True), np.array(b, copy=True))  # the affine's own conversion rounds the same way
        x0 = Format.of(chain[-1][2].type.element.numpy)
        if not dt.holds(x0):
            return f"the affine would have to round its {x0.dtype.name} input to {dt.dtype.name}"
        scales = exact_scales(chain, x0, dt, w.shape[1])
        if not isinstance(scales, str):
            plan = _exact_plan(w, b, *scales, dt)
            if plan is not None:
                return plan
            scales = "a fused weight is not exactly a value of the weight type, or a -0.0 bias makes zero signs matter"
        if self.tolerance is None:
            return scales
        if FUSE_ERROR in op.attributes:
            return f"{scales}; and this affine was already fused within a tolerance ({FUSE_ERROR})"
        return _lossy_plan(w, b, rounded_scales(chain, x0, dt, w.shape[1]), dt, op.attributes["missing"].value, self.tolerance)


def _exact_plan(w, b, a: list[Fraction], zero_sign: bool, dt: Format) -> Plan | None:
    if zero_sign and np.any((b == 0) & np.signbit(b)):
        return None  # a -0.0 bias keeps partial sums -0.0 while every term is -0.0: zero signs matter
    out = np.array(w, copy=True)
    for j, aj in enumerate(a):
        if aj == 1:
            continue
        for k in range(w.shape[0]):
            exact = aj * Fraction(float(w[k, j]))
            v = round_to(exact, dt)
            if Fraction(float(v)) != exact:
                return None
            # a·w rounds to the same zero as the IEEE product: its sign is the XOR of the signs
            out[k, j] = v if exact != 0 else np.copysign(dt.dtype.type(0), -1.0 if np.signbit(w[k, j]) != (aj < 0) else 1.0)
    return Plan(out, np.array(b, copy=True))


def _lossy_plan(w, b, r: Rounded, dt: Format, missing: str, tolerance: float) -> Plan | str:
    K, N = w.shape
    wf = [[Fraction(v) for v in row] for row in w.astype(np.float64).tolist()]
    if missing == "skip" and any(r.o[j] != 0 and any(wf[k][j] != 0 for k in range(K)) for j in range(N)):
        return 'with missing = "skip" a NaN input drops its offset term, which a fused bias would keep'
    if N * dt.u >= Fraction(1, 2):
        return "too many inputs for the error analysis"
    g = N + 1
    gamma = g * dt.u / (1 - g * dt.u)
    big_e = dt.u + r.eps + gamma * (2 + r.eps + dt.u)
    if big_e > Fraction(tolerance):
        return f"the error bound {float(big_e):.3g}·S exceeds the tolerance {tolerance:g}"
    out = np.empty_like(w)
    bias = np.array(b, copy=True)
    worst_f = Fraction(0)
    for k in range(K):
        for j in range(N):
            exact = r.a[j] * wf[k][j]
            v = round_to(exact, dt)
            if exact == 0:
                v = np.copysign(dt.dtype.type(0), -1.0 if np.signbit(w[k, j]) != (r.a[j] < 0) else 1.0)
            elif not np.isfinite(v) or abs(Fraction(float(v))) < dt.tiny:
                return "a fused weight overflows or leaves the normal range"
            out[k, j] = v
        shift = sum((r.o[j] * wf[k][j] for j in range(N)), Fraction(0))
        if shift != 0:
            bias[k] = round_to(Fraction(float(b[k])) + shift, dt)
            if not np.isfinite(bias[k]):
                return "the fused bias overflows"
        z = sum((abs(wf[k][j]) * r.zeta[j] for j in range(N)), Fraction(0))
        worst_f = max(worst_f, (1 + gamma) * (z + (2 * N + 1) * dt.eta))
    return Plan(out, bias, _round_up(big_e), _round_up(worst_f))


@register_pass
@dataclass
class LinearFuseScaler(Pass):
    """Fold an elementwise scaler feeding a `linear.affine` into its weights and bias: exactly,
    or with `tolerance` within a stated error bound."""

    name = "linear-fuse-scaler"
    summary = (
        "fold addf/subf/mulf/divf-by-constant, negf, extf, truncf feeding a linear.affine into its weights and bias "
        "(exact; with tolerance=T lossy, relative bound E <= T reported)"
    )
    tolerance: float | None = option(
        "lossy mode: largest relative error coefficient E allowed (see the pass docs); none = exact only", None
    )

    def __post_init__(self):
        self.exact = self.tolerance is None  # the audit log reads this per instance

    def check_options(self):
        if self.tolerance is not None and not (self.tolerance >= 0 and math.isfinite(self.tolerance)):
            return "tolerance", f"must be a finite number >= 0, found {self.tolerance!r}"
        return None

    def apply(self, module, ctx: PassContext) -> None:
        affines = [op for op in module.walk() if isinstance(op, AffineOp)]
        pattern = FuseScalerIntoAffine(self.tolerance)
        n = apply_patterns(affines, [pattern], ctx.rewriter, what=self.name)
        ctx.stat("affines-fused", n)
        worst, worst_abs = 0.0, 0.0
        for name, length, plan, why in pattern.fused:
            ctx.stat("scaler-ops-fused", length)
            if why:
                ctx.note(f"%{name}: only the {_ops(length)} nearest the affine fused: {why}")
            if plan.rel == 0:
                ctx.note(f"%{name}: {_ops(length)} fused exactly")
                continue
            worst, worst_abs = max(worst, plan.rel), max(worst_abs, plan.abs)
            ctx.note(
                f"%{name}: {_ops(length)} fused within tolerance {self.tolerance:g}: every output moves by at most "
                f"{_upper(plan.rel)}·S + {_upper(plan.abs)}, S = |bias_k| + Σ_j |w_kj|·(|a_j·x_j| + |o_j|) for the scaler a·x + o "
                "in exact arithmetic (|o_j|: its offsets' magnitudes), on rows where nothing overflows"
            )
        if self.tolerance is not None:
            ctx.stat("max-relative-error", worst)  # E and F of the worst fused affine, exact values
            ctx.stat("max-absolute-error", worst_abs)
        for name, why in pattern.refused.values():
            ctx.stat("affines-left")
            ctx.note(f"%{name}: scaler not fused: {why}")
