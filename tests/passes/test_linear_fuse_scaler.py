"""linear-fuse-scaler: a scaler moves into linear.affine weights exactly (bit for bit, interpreter
and LLVM JIT), or with a tolerance within the bound it reports, or not at all."""

from __future__ import annotations

import time
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import timber
from ir.dialects import arith, builtin, func
from ir.dialects.linear import AffineOp
from ir.interpreter import run
from ir.parser import parse_module
from ir.printer import print_op
from ir.types import f32, f64, tensor
from ir.verifier import verify
from passes import run_pipeline

pytestmark = pytest.mark.filterwarnings("ignore:overflow encountered in cast:RuntimeWarning")

NAME = "linear-fuse-scaler"
CLS = {"add": arith.AddFOp, "sub": arith.SubFOp, "rsub": arith.SubFOp, "mul": arith.MulFOp, "div": arith.DivFOp}


def build(steps, *, n, xt=f32, dt=f64, k=1, missing="propagate", weights=None, bias=None, seed=0):
    """@predict: x → steps → linear.affine.  steps: ("ext"/"trunc", type), ("neg", None) or
    (add|sub|rsub|mul|div, per-feature constants); rsub is c - v."""
    rng = np.random.default_rng(seed)
    m = builtin.ModuleOp.build()
    fn = func.FuncOp.build("predict", [tensor(n, xt)], [tensor(k, dt)], arg_names=["x"])
    m.body.add_op(fn)
    v, t = fn.args[0], xt
    for kind, c in steps:
        if kind in ("ext", "trunc"):
            t = c
            v = fn.body.add_op((arith.ExtFOp if kind == "ext" else arith.TruncFOp).build(v, tensor(n, t))).result
        elif kind == "neg":
            v = fn.body.add_op(arith.NegFOp.build(v)).result
        else:
            cv = fn.body.add_op(arith.ConstantOp.build(np.asarray(c), tensor(n, t))).result
            v = fn.body.add_op(CLS[kind].build(cv, v) if kind == "rsub" else CLS[kind].build(v, cv)).result
    w = rng.normal(size=(k, n)) * 2 if weights is None else np.asarray(weights)
    b = rng.normal(size=k) if bias is None else np.asarray(bias)
    y = fn.body.add_op(AffineOp.build(v, w.astype(dt.numpy), b.astype(dt.numpy), dt, missing, name="y")).result
    fn.body.add_op(func.ReturnOp(operands=[y]))
    verify(m)
    return m


def clone(m):
    return parse_module(print_op(m), "orig.tir")


def fuse(m, pipeline=NAME):
    """Run the pass in place: (original copy, audit entry); checks verification and idempotence."""
    original = clone(m)
    (e,) = run_pipeline(m, pipeline)
    verify(m)
    text = print_op(m)
    assert print_op(parse_module(text, "after.tir")) == text
    (again,) = run_pipeline(m, pipeline)
    assert not again.changed, "not idempotent"
    assert print_op(m) == text
    return original, e


def n_ops(m) -> int:
    return len(m.lookup("predict").body.ops)


def assert_bits(a: np.ndarray, b: np.ndarray) -> None:
    """Bit-identical results (zero signs included); NaN in the same places (payloads aside)."""
    a, b = np.asarray(a), np.asarray(b)
    assert a.dtype == b.dtype and a.shape == b.shape
    nan = np.isnan(a)
    np.testing.assert_array_equal(nan, np.isnan(b))
    np.testing.assert_array_equal(a[~nan].view(f"u{a.itemsize}"), b[~nan].view(f"u{b.itemsize}"))


def special_values(dt) -> list[float]:
    fi = np.finfo(dt)
    vals = [np.nan, np.inf, -np.inf, 0.0, -0.0, 1.0, -1.0, 0.5, 3.0, float(fi.max), -float(fi.max), float(fi.tiny), -float(fi.tiny)]
    vals += [float(fi.smallest_subnormal), -float(fi.smallest_subnormal), 3 * float(fi.smallest_subnormal), float(fi.max) / 3, 1e-30, -1e30]
    return vals


def adversarial(n: int, dt, seed: int = 0) -> np.ndarray:
    """Rows of one special value each, rows mixing specials per feature, and random rows."""
    rng = np.random.default_rng(seed)
    sv = np.array(special_values(dt), dt)
    rows = [np.full(n, v, dt) for v in sv]
    rows += [rng.choice(sv, size=n) for _ in range(64)]
    rows += [(rng.normal(size=n) * 10.0 ** rng.integers(-3, 4)).astype(dt) for _ in range(64)]
    return np.vstack(rows)


# ----- exact mode --------------------------------------------------------------------------------


def exact_steps(draw_kinds, n: int, rng) -> list:
    """Steps whose every intermediate is a·x exactly once x is f32 widened to f64."""
    out = []
    for kind in draw_kinds:
        if kind == "neg":
            out.append(("neg", None))
        elif kind in ("mul", "div"):
            out.append((kind, rng.choice([-1.0, 1.0], size=n) * 2.0 ** rng.integers(-30, 31, size=n)))
        else:  # a zero offset of either sign
            out.append((kind[:-1], rng.choice([-0.0, 0.0], size=n)))
    return out


EXACT_KINDS = ("mul", "div", "neg", "add0", "sub0", "rsub0")
EXACT_CONFIGS = {
    # f32 rows widened first: every power-of-two scale keeps every value exact → always fused
    "f32-extf-f64": dict(xt=f32, prefix=[("ext", f64)], dt=f64, fusable=True),
    # scales in f32 itself: x * 2 overflows, x / 2 loses subnormal bits → only ±1 scales fuse
    "f32-chain-f64-affine": dict(xt=f32, prefix=[], dt=f64, fusable=None),
    "f64": dict(xt=f64, prefix=[], dt=f64, fusable=None),
    "f32": dict(xt=f32, prefix=[], dt=f32, fusable=None),
}


def _flips_zero(kind, c) -> bool:
    """x + 0.0, x - (-0.0) and 0.0 - x turn -0.0 into +0.0."""
    if kind not in ("add", "sub", "rsub"):
        return False
    zero = np.asarray(c) == 0
    return bool(np.any(zero & (np.signbit(c) if kind == "sub" else ~np.signbit(c))))


def _expect_fused(steps, bias) -> bool:
    """With a -0.0 bias a zero-sign flip must stay.  Then only a part of the chain nearest the
    affine, above the flip, can fuse, reading an f64 value: exact for every f64 only with scales
    of ±1 (negations, zero offsets), so it fuses when the top step is one of those."""
    flips = [i for i, (kind, c) in enumerate(steps) if _flips_zero(kind, c)]
    if not flips or not np.any((bias == 0) & np.signbit(bias)):
        return True
    kind, c = steps[-1]
    unit = kind == "neg" or kind in ("add", "sub", "rsub") or bool(np.all(np.abs(np.asarray(c)) == 1))
    return unit and not _flips_zero(kind, c)


@pytest.mark.parametrize("config", sorted(EXACT_CONFIGS))
@settings(max_examples=12, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    kinds=st.lists(st.sampled_from(EXACT_KINDS), min_size=1, max_size=4),
    missing=st.sampled_from(["skip", "propagate"]),
    neg_zero_bias=st.booleans(),
    data=st.data(),
)
def test_exact_mode_is_bit_identical(config, seed, kinds, missing, neg_zero_bias, data):
    cfg = EXACT_CONFIGS[config]
    n, k = 6, 2
    rng = np.random.default_rng(seed)
    steps = cfg["prefix"] + exact_steps(kinds, n, rng)
    w = rng.normal(size=(k, n)) * 3
    w[:, 0] = [0.0, -0.0]  # zero weights: ±inf inputs give NaN in both
    bias = np.array([-0.0, 1.5]) if neg_zero_bias else rng.normal(size=k)
    m = build(steps, n=n, xt=cfg["xt"], dt=cfg["dt"], k=k, missing=missing, weights=w, bias=bias)
    original, e = fuse(m)
    fused = e.stats.get("affines-fused", 0) == 1
    if cfg["fusable"]:
        assert fused == _expect_fused(steps, bias.astype(cfg["dt"].numpy))
    if fused:
        assert e.exact and n_ops(m) < n_ops(original)
    xdt = cfg["xt"].numpy
    X = np.vstack([adversarial(n, xdt, seed), data.draw(hnp.arrays(xdt, (24, n), elements=st.floats(width=8 * xdt.itemsize)))])
    assert_bits(run(original, X), run(m, X))


def test_exact_mode_through_the_llvm_jit():
    """The same on compiled code: JIT(original) = JIT(fused) = interpreter, bit for bit."""
    n = 50
    rng = np.random.default_rng(3)
    cases = [
        (build([("ext", f64), ("mul", 2.0 ** rng.integers(-8, 9, size=n)), ("neg", None)], n=n, k=3, missing="skip"), f32),
        (build([("ext", f64), ("div", np.full(n, 4.0)), ("sub", np.zeros(n))], n=n, k=1), f32),
        (build([("neg", None), ("add", np.full(n, -0.0))], n=n, xt=f32, dt=f32, k=2, missing="skip"), f32),
        # a truncf to the affine's own type is the conversion the affine makes anyway
        (build([("trunc", f32)], n=n, xt=f64, dt=f32, k=2), f64),
        # more than 64 inputs: the lowering loops over a weight table instead of unrolling
        (build([("ext", f64), ("mul", np.full(80, 0.125))], n=80, k=2), f32),
    ]
    for m, xdt in cases:
        original, e = fuse(m)
        assert e.stats["affines-fused"] == 1
        X = adversarial(m.lookup("predict").function_type.inputs[0].shape[0], xdt.numpy, 1)
        X[-1, :3] = [1.5 * TINY32, 1e300, 1 + 2.0**-40]  # values the f64 → f32 conversion rounds
        before = timber.compile(original, passes=None).predict(X)
        after = timber.compile(m, passes=None).predict(X)
        interp = run(m, X).reshape(before.shape)
        assert_bits(before, after)
        assert_bits(after, interp)


def _naive(m, weights, bias=None):
    """m with its affine reading x directly and the given weights: what an unchecked fusion makes."""
    naive = clone(m)
    fn = naive.lookup("predict")
    aff = next(op for op in fn.body.ops if isinstance(op, AffineOp))
    aff.set_operand(0, fn.args[0])
    w, b = aff.attributes["weights"], aff.attributes["bias"]
    from ir.attributes import DenseElementsAttr

    aff.attributes["weights"] = DenseElementsAttr(np.asarray(weights), w.type)
    if bias is not None:
        aff.attributes["bias"] = DenseElementsAttr(np.asarray(bias), b.type)
    return naive


TINY32 = float(np.finfo(np.float32).smallest_subnormal)
REFUSED = {
    # x * 2 in f32 overflows for |x| > max/2; the fused x * 2w in f64 would not
    "f32-overflow": (dict(steps=[("mul", [2.0, 2.0])], xt=f32, dt=f64), [2.0, 2.0], None, [3e38, 1.0]),
    # x * 0.5 in f64 rounds the smallest subnormal to zero; x * 1.5 does not
    "f64-subnormal": (dict(steps=[("mul", [0.5, 0.5])], xt=f64, dt=f64, weights=[[3.0, 1.0]]), [1.5, 0.5], None, [5e-324, 0.0]),
    # x / 3 rounds; x * (w/3) rounds differently
    "non-dyadic": (dict(steps=[("ext", f64), ("div", [3.0, 3.0])], xt=f32, dt=f64), [1 / 3, 1 / 3], None, [0.12573022, 0.0]),
    # an offset: 2^-60 + 1 rounds to 1; the fused bias + x·w keeps 2^-60
    "offset": (dict(steps=[("ext", f64), ("add", [1.0, 1.0])], xt=f32, dt=f64, bias=[-2.0]), [1.0, 1.0], [0.0], [2.0**-60, 0.0]),
    # -0.0 + 0.0 = +0.0: with a -0.0 bias an all -0.0 row gives +0.0 instead of -0.0
    "zero-sign": (dict(steps=[("add", [0.0, 0.0])], xt=f32, dt=f32, bias=[-0.0]), [1.0, 1.0], None, [-0.0, -0.0]),
    # f64 rows, f32 affine: 2x is exact in f64 and then converted; 1.5·2^-149 converts to 2·2^-149 first
    "f64-input-f32-affine": (dict(steps=[("mul", [2.0, 2.0])], xt=f64, dt=f32), [2.0, 2.0], None, [1.5 * TINY32, 0.0]),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_exact_mode_refuses_what_is_not_exact(case):
    """Left unchanged; and the row given shows the naive fusion would change the result."""
    kw, naive_w, naive_b, row = REFUSED[case]
    kw = {"weights": [[1.0, 1.0]], "bias": [0.0], **kw}
    m = build(kw.pop("steps"), n=2, **kw)
    text = print_op(m)
    (e,) = run_pipeline(m, NAME)
    assert not e.changed and print_op(m) == text
    assert e.stats["affines-left"] == 1 and any("not fused" in note for note in e.notes)
    naive = _naive(m, [naive_w], naive_b)
    with pytest.raises(AssertionError):
        assert_bits(run(m, [row]), run(naive, [row]))


def test_unfusable_ir_is_unchanged():
    """No chain, a chain whose value has another user, a non-constant operand: nothing to do."""
    text = """module {
  func.func @predict(%x: tensor<2xf32>) -> tensor<1xf64> {
    %c = arith.constant dense<[2.0, 4.0]> : tensor<2xf32>
    %e = arith.extf %x : tensor<2xf32> to tensor<2xf64>
    %s = arith.mulf %e, %e : tensor<2xf64>
    %a = linear.affine %s {bias = dense<[0.5]> : tensor<1xf64>, missing = "skip", weights = dense<[[1.0, 2.0]]> : tensor<1x2xf64>} : tensor<2xf64> -> tensor<1xf64>
    %t = arith.mulf %x, %c : tensor<2xf32>
    %b = linear.affine %t {bias = dense<[0.5]> : tensor<1xf64>, missing = "skip", weights = dense<[[1.0, 2.0]]> : tensor<1x2xf64>} : tensor<2xf32> -> tensor<1xf64>
    %d = linear.affine %t {bias = dense<[0.5]> : tensor<1xf64>, missing = "skip", weights = dense<[[1.0, 2.0]]> : tensor<1x2xf64>} : tensor<2xf32> -> tensor<1xf64>
    %r = arith.addf %a, %b : tensor<1xf64>
    %q = arith.addf %r, %d : tensor<1xf64>
    func.return %q : tensor<1xf64>
  }
}"""
    m = parse_module(text, "t.tir")
    before = print_op(m)
    for pipeline in (NAME, NAME + "{tolerance=0.1}"):
        (e,) = run_pipeline(m, pipeline)
        assert not e.changed and print_op(m) == before


def test_options_and_exactness_flag():
    (e,) = run_pipeline(build([("ext", f64)], n=2), NAME + "{tolerance=1e-9}")
    assert not e.exact and e.pass_text == NAME + "{tolerance=1e-09}"
    from ir.diagnostics import TimberError

    with pytest.raises(TimberError, match="tolerance"):
        run_pipeline(build([("ext", f64)], n=2), NAME + "{tolerance=-1}")


# ----- tolerance mode ----------------------------------------------------------------------------


def exact_form(steps, n):
    """(a_j, ō_j) of the chain in exact arithmetic: z = a·x + o, ō the offsets' magnitudes."""
    a, oabs = [Fraction(1)] * n, [Fraction(0)] * n
    for kind, c in steps:
        if kind == "neg":
            a = [-v for v in a]
        elif kind in ("mul", "div"):
            cs = [Fraction(float(v)) for v in np.asarray(c, np.float64)]
            s = cs if kind == "mul" else [1 / v for v in cs]
            a, oabs = [v * k for v, k in zip(a, s)], [v * abs(k) for v, k in zip(oabs, s)]
        elif kind in ("add", "sub", "rsub"):
            oabs = [v + abs(Fraction(float(cj))) for v, cj in zip(oabs, np.asarray(c, np.float64))]
            if kind == "rsub":
                a = [-v for v in a]
    return a, oabs


def check_bound(m_orig, m_fused, steps, e, X):
    """|fused - original| <= E·S + F on every row where both are finite (S exact, in rationals);
    rows with ±inf/NaN inputs and no overflow: the same infinities or NaN.  Returns the largest
    observed error as a fraction of the bound."""
    E, F = Fraction(e.stats["max-relative-error"]), Fraction(e.stats["max-absolute-error"])
    aff = next(op for op in m_orig.walk() if isinstance(op, AffineOp))
    w, b = aff.attributes["weights"].values, aff.attributes["bias"].values
    skip = aff.attributes["missing"].value == "skip"
    n = w.shape[1]
    a, oabs = exact_form(steps, n)
    xdt = m_orig.lookup("predict").function_type.inputs[0].element.numpy
    Xc = X.astype(xdt)
    yo, yf = run(m_orig, Xc), run(m_fused, Xc)
    worst = Fraction(0)
    for i in range(len(Xc)):
        for k in range(w.shape[0]):
            o, f = yo[i, k], yf[i, k]
            if not (np.isfinite(o) and np.isfinite(f)):
                continue
            s = abs(Fraction(float(b[k])))
            for j in range(n):
                xj = float(Xc[i, j])
                if np.isnan(xj) and skip:
                    continue
                s += abs(Fraction(float(w[k, j]))) * (abs(a[j] * Fraction(xj)) + oabs[j])
            diff, bound = abs(Fraction(float(f)) - Fraction(float(o))), E * s + F
            assert diff <= bound, f"row {i} output {k}: |{f!r} - {o!r}| > {float(bound)!r}"
            worst = max(worst, diff / bound)
    return float(worst)


def lossy_rows(n, xdt, centre, seed=0) -> np.ndarray:
    """Random rows around the scaler's offsets (where z cancels to ~0, the worst relative case),
    wide random rows, and special values."""
    rng = np.random.default_rng(seed)
    near = centre + rng.normal(size=(150, n)) * np.abs(centre) * 10.0 ** rng.integers(-9, 1, size=(150, 1))
    wide = rng.normal(size=(60, n)) * 10.0 ** rng.integers(-20, 20, size=(60, 1))
    return np.vstack([near, wide, adversarial(n, xdt, seed)[:40]]).astype(xdt)


LOSSY = {
    "standard-scaler-f64": dict(xt=f32, prefix=[("ext", f64)], dt=f64, make="standard", tol=1e-12),
    "standard-scaler-in-f32": dict(xt=f32, prefix=[], dt=f64, make="standard", tol=1e-6),
    "f32-affine": dict(xt=f32, prefix=[], dt=f32, make="standard", tol=1e-4),
    "minmax-mul-then-add": dict(xt=f32, prefix=[("ext", f64)], dt=f64, make="minmax", tol=1e-12),
    "rsub-neg-f64": dict(xt=f64, prefix=[], dt=f64, make="rsub", tol=1e-12),
}


def lossy_steps(make, n, rng):
    if make == "standard":
        mean, scale = rng.normal(size=n) * 5, rng.uniform(0.1, 10, size=n)
        return [("sub", mean), ("div", scale)], mean
    if make == "minmax":
        s, o = rng.uniform(0.01, 3, size=n), rng.normal(size=n)
        return [("mul", s), ("add", o)], -o / s
    c = rng.normal(size=n) * 100
    return [("rsub", c), ("neg", None), ("mul", rng.uniform(0.5, 3, size=n))], c


@pytest.mark.parametrize("config", sorted(LOSSY))
@settings(max_examples=4, deadline=None)
@given(seed=st.integers(0, 10_000))
def test_tolerance_mode_stays_within_its_bound(config, seed):
    cfg = LOSSY[config]
    n, k = 50, 2
    rng = np.random.default_rng(seed)
    chain, centre = lossy_steps(cfg["make"], n, rng)
    steps = cfg["prefix"] + chain
    m = build(steps, n=n, xt=cfg["xt"], dt=cfg["dt"], k=k, seed=seed)
    original, e = fuse(m, f"{NAME}{{tolerance={cfg['tol']}}}")
    assert e.stats["affines-fused"] == 1 and not e.exact
    assert n_ops(m) == 1 + 1  # the affine and the return
    assert 0 < e.stats["max-relative-error"] <= cfg["tol"]
    assert any("moves by at most" in note for note in e.notes)
    X = lossy_rows(n, cfg["xt"].numpy, centre, seed)
    check_bound(original, m, steps, e, X)
    # ±inf inputs (the rest moderate): the same infinities or NaN; NaN inputs: NaN (propagate)
    special = np.tile(np.asarray(centre, cfg["xt"].numpy), (6, 1))
    special[0, 3], special[1, 3], special[2, [3, 7]], special[3, 5] = np.inf, -np.inf, [np.inf, -np.inf], np.nan
    special[4, :] = np.inf
    special[5, :] = np.nan
    assert_bits(run(original, special), run(m, special))


def test_tolerance_mode_errors_are_real_and_bounded():
    """The StandardScaler case really changes some results (it is lossy), and the worst error
    seen stays below its bound, through the JIT too."""
    n = 50
    rng = np.random.default_rng(11)
    chain, centre = lossy_steps("standard", n, rng)
    steps = [("ext", f64)] + chain
    m = build(steps, n=n, k=1)
    original, e = fuse(m, NAME + "{tolerance=1e-12}")
    X = lossy_rows(n, np.float32, centre, 5)
    ratio = check_bound(original, m, steps, e, X)
    assert 0 < ratio <= 1
    yo, yf = timber.compile(original, passes=None).predict(X), timber.compile(m, passes=None).predict(X)
    assert np.any(yo != yf)
    finite = np.isfinite(yo) & np.isfinite(yf)
    assert_bits(yo[finite], run(original, X).reshape(-1)[finite])  # the JIT computes what the IR says
    assert_bits(yf[finite], run(m, X).reshape(-1)[finite])


def test_tolerance_too_small_is_refused():
    rng = np.random.default_rng(0)
    chain, _ = lossy_steps("standard", 8, rng)
    m = build([("ext", f64)] + chain, n=8)
    text = print_op(m)
    (e,) = run_pipeline(m, NAME + "{tolerance=1e-17}")
    assert not e.changed and print_op(m) == text
    assert any("exceeds the tolerance" in note for note in e.notes)


def test_one_lossy_fusion_per_affine():
    """Two f32 roundings exceed the tolerance, one does not: the scale nearest the affine fuses,
    and the next one, though within the tolerance alone, does not add a second bound on top."""
    rng = np.random.default_rng(8)
    steps = [("mul", rng.uniform(1, 2, size=4)), ("mul", rng.uniform(1, 2, size=4))]
    m = build(steps, n=4, xt=f32, dt=f64)
    original, e = fuse(m, NAME + "{tolerance=9e-8}")
    assert e.stats["scaler-ops-fused"] == 1 and e.stats["max-relative-error"] <= 9e-8
    aff = next(op for op in m.walk() if isinstance(op, AffineOp))
    assert aff.attributes["linear.fuse_error"].value == e.stats["max-relative-error"]
    assert isinstance(aff.operands[0].owner, arith.MulFOp)
    assert any("only the 1 scaler op nearest" in note for note in e.notes)
    # a later run sees the record and leaves the second scale alone (fuse() checked: no change)
    (again,) = run_pipeline(m, NAME + "{tolerance=9e-8}")
    assert any("already fused within a tolerance" in note for note in again.notes)


def test_skip_with_offsets_is_refused():
    """A NaN x_j drops its whole term, offset included, under missing = "skip": a fused bias
    would keep the offset.  That is no rounding error, so no tolerance allows it."""
    n = 4
    rng = np.random.default_rng(2)
    chain, _ = lossy_steps("standard", n, rng)
    m = build([("ext", f64)] + chain, n=n, missing="skip")
    bias = next(op for op in m.walk() if isinstance(op, AffineOp)).attributes["bias"]
    (e,) = run_pipeline(m, NAME + "{tolerance=1.0}")
    # only the division (no offset) moves into the weights; the subtraction stays, the bias too
    aff = next(op for op in m.walk() if isinstance(op, AffineOp))
    assert isinstance(aff.operands[0].owner, arith.SubFOp) and aff.attributes["bias"] == bias
    assert e.stats["scaler-ops-fused"] == 1
    assert any('missing = "skip"' in note for note in e.notes)
    # the same chain with propagate fuses, and would be wrong under skip on a NaN row
    fused = build([("ext", f64)] + chain, n=n, missing="propagate")
    run_pipeline(fused, NAME + "{tolerance=1.0}")
    aff = next(op for op in fused.walk() if isinstance(op, AffineOp))
    naive = _naive(m, aff.attributes["weights"].values, aff.attributes["bias"].values)
    row = np.array([[np.nan, 1.0, 2.0, 3.0]], np.float32)
    assert abs(run(naive, row)[0, 0] - run(m, row)[0, 0]) > 1e-3


def test_skip_with_pure_scales_fuses_within_bound():
    """No offsets reach the bias (zero offsets, or offsets on features whose weights are all
    zero): skip mode fuses, NaN inputs are skipped alike."""
    n = 6
    rng = np.random.default_rng(4)
    scale = rng.uniform(0.1, 10, size=n)
    offset = np.zeros(n)
    offset[2] = 7.0
    w = rng.normal(size=(2, n))
    w[:, 2] = 0.0
    steps = [("ext", f64), ("sub", offset), ("div", scale)]
    m = build(steps, n=n, k=2, missing="skip", weights=w)
    original, e = fuse(m, NAME + "{tolerance=1e-12}")
    assert e.stats["affines-fused"] == 1
    X = adversarial(n, np.float32, 3)
    X[::3, 1] = np.nan
    check_bound(original, m, steps, e, X)


def test_partial_chain_above_a_rounding_cast():
    """f64 rows, x - c in f64, truncf, * s in f32, f32 affine: the subtraction cannot move (the
    affine would have to read the f64 row and round it before the offset); the scale moves
    (lossy, within its bound), and then the truncf goes too (exact: it is the conversion the
    affine makes anyway)."""
    n = 5
    rng = np.random.default_rng(5)
    c, s = rng.normal(size=n), rng.uniform(0.5, 2, size=n)
    w, b = rng.normal(size=(1, n)), rng.normal(size=1)
    m = build([("sub", c), ("trunc", f32), ("mul", s)], n=n, xt=f64, dt=f32, weights=w, bias=b)
    original, e = fuse(m, NAME + "{tolerance=1e-4}")
    assert e.stats["scaler-ops-fused"] == 2
    assert [op.name for op in m.lookup("predict").body.ops] == ["arith.constant", "arith.subf", "linear.affine", "func.return"]
    # the same as the f32 part alone, fused, fed the rounded x - c; and that is within its bound
    inner = build([("mul", s)], n=n, xt=f32, dt=f32, weights=w, bias=b)
    inner_original, inner_e = fuse(inner, NAME + "{tolerance=1e-4}")
    X = adversarial(n, np.float64, 2)
    with np.errstate(all="ignore"):
        Z = (X - c.astype(np.float64)).astype(np.float32)
    assert_bits(run(original, X), run(inner_original, Z))
    assert_bits(run(m, X), run(inner, Z))
    check_bound(inner_original, inner, [("mul", s)], inner_e, Z)


# ----- measured effect ---------------------------------------------------------------------------


@pytest.mark.slow
def test_measured_effect(capsys):
    """Ops removed and JIT rows/s before/after on a StandardScaler-like chain (f32 rows widened to
    f64, (x - mean) / scale) feeding a 50-feature linear.affine, and on an exact power-of-two one."""
    n, rows = 50, 1_000_000
    rng = np.random.default_rng(0)
    X = rng.normal(size=(rows, n)).astype(np.float32)
    chain, _ = lossy_steps("standard", n, rng)
    cases = {
        "standard-scaler{tolerance=1e-12}": (build([("ext", f64)] + chain, n=n), NAME + "{tolerance=1e-12}"),
        "power-of-two (exact)": (build([("ext", f64), ("mul", 2.0 ** rng.integers(-4, 5, size=n))], n=n), NAME),
    }
    for label, (m, pipeline) in cases.items():
        original, e = fuse(m, pipeline)
        assert n_ops(m) == 2 < n_ops(original)
        speed = []
        for mod in (original, m):
            cm = timber.compile(mod, passes=None, n_jobs=1)
            cm.predict(X[:1000])
            best = min(_timed(cm, X) for _ in range(3))
            speed.append(rows / best)
        with capsys.disabled():
            print(
                f"\n{label}: ops {n_ops(original)} -> {n_ops(m)}; JIT rows/s {speed[0] / 1e6:.1f}M -> {speed[1] / 1e6:.1f}M "
                f"({speed[1] / speed[0]:.2f}x); E = {e.stats.get('max-relative-error', 0):.3g}"
            )


def _timed(cm, X) -> float:
    t0 = time.perf_counter()
    cm.predict(X)
    return time.perf_counter() - t0
