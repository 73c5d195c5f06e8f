"""tree-narrow-thresholds: every type the analysis records really decides every split exactly
(brute force over the values around each boundary), and the f64 → f32 rewrite is exact."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ir.dialects.tree import EnsembleOp, Pred
from passes import run_pipeline
from passes.tree_narrow import _INT_RANGE, GRIDS, round_down, round_up, valid_grids
from tests import irgen
from tests.passes.models import check_exact

pytestmark = pytest.mark.filterwarnings("ignore:overflow encountered in cast:RuntimeWarning")

ORDERED = (Pred.LT, Pred.LE, Pred.GT, Pred.GE)


def _convert(v: np.ndarray, g: str, direction: str) -> np.ndarray:
    """v rounded toward -inf ("down") or +inf ("up") onto grid g (integers saturate)."""
    if g in _INT_RANGE:
        lo, hi = _INT_RANGE[g]
        with np.errstate(invalid="ignore"):
            r = np.floor(v) if direction == "down" else np.ceil(v)
        return np.clip(r, lo, hi)
    gdt = {"f16": np.float16, "f32": np.float32, "f64": np.float64}[g]
    with np.errstate(over="ignore"):
        return (round_down if direction == "down" else round_up)(v, np.dtype(gdt)).astype(np.float64)


def _decide(p, v, t):
    return {Pred.LT: v < t, Pred.LE: v <= t, Pred.GT: v > t, Pred.GE: v >= t, Pred.EQ: v == t, Pred.NE: v != t}[Pred(p)]


@np.errstate(over="ignore")
def _probes(t: float, rdt) -> np.ndarray:
    """Input values (in the input type) on and around t, and the extremes."""
    r = np.array([t], np.float64).astype(rdt)
    vals = [r, np.nextafter(r, rdt.type(np.inf)), np.nextafter(r, rdt.type(-np.inf))]
    for _ in range(2):  # two and three ulps away too
        vals += [np.nextafter(vals[-2], rdt.type(np.inf)), np.nextafter(vals[-1], rdt.type(-np.inf))]
    for c in (np.floor(t), np.ceil(t), np.floor(t) + 0.5):
        if np.isfinite(c):
            vals.append(np.array([c], rdt))
    vals.append(np.array([np.inf, -np.inf, 0.0, -0.0, 127.0, 128.0, -128.0, -129.0, 65504.0, 70000.0], rdt))
    return np.concatenate(vals).astype(np.float64)


THRESHOLDS = st.one_of(
    st.integers(-300, 300).map(float),
    st.integers(-300, 300).map(lambda k: k + 0.5),
    st.floats(allow_nan=False, width=32),
    st.floats(allow_nan=False, allow_infinity=True),
    st.integers(-200, 200).map(lambda k: float(np.nextafter(float(k), np.inf))),
    st.integers(-200, 200).map(lambda k: float(np.nextafter(float(k), -np.inf))),
)


@settings(max_examples=400, deadline=None)
@given(
    t=THRESHOLDS,
    pred=st.sampled_from(list(ORDERED) + [Pred.EQ, Pred.NE]),
    ct=st.sampled_from([np.float32, np.float64]),
    rt=st.sampled_from([np.float32, np.float64]),
)
def test_recorded_types_decide_exactly(t, pred, ct, rt):
    ct, rt = np.dtype(ct), np.dtype(rt)
    rdt = min(ct, rt, key=lambda d: d.itemsize)
    tc = np.array([t], ct)
    if np.isnan(tc[0]):
        return
    grids = valid_grids(np.array([pred], np.uint8), tc, rdt, ct)
    v = _probes(float(tc[0]), rdt)
    want = _decide(pred, v.astype(rdt).astype(ct), tc[0])
    for (g, direction), ok in grids.items():
        if not ok[0] or g == "f64" and ct.itemsize < 8:
            continue
        conv = _convert(v, g, direction)
        lower = pred in (Pred.LT, Pred.LE)
        if pred in (Pred.EQ, Pred.NE):
            got = _decide(pred, conv, float(tc[0]))
        elif (pred in (Pred.LE, Pred.GT) and tc[0] == np.inf) or (pred in (Pred.LT, Pred.GE) and tc[0] == -np.inf):
            # `le +inf` / `lt -inf` and their negations hold for every input or for none.
            got = np.full(len(v), (pred in (Pred.LE, Pred.GE)))
        elif direction == "down":
            # `v < s`: s is the value the threshold narrows to (the least input value past it).
            with np.errstate(over="ignore"):
                s = round_up(tc, rdt) if pred in (Pred.LT, Pred.GE) else np.nextafter(round_down(tc, rdt), rdt.type(np.inf))
            below = conv < float(s[0])
            got = below if lower else ~below
        else:
            with np.errstate(over="ignore"):
                u = round_down(tc, rdt) if pred in (Pred.LE, Pred.GT) else np.nextafter(round_up(tc, rdt), rdt.type(-np.inf))
            at_most = conv <= float(u[0])
            got = at_most if lower else ~at_most
        np.testing.assert_array_equal(got, want, err_msg=f"{g}/{direction} for {Pred(pred).name} {t!r}")


def test_grids_listed_narrowest_first():
    assert GRIDS == ("i8", "i16", "f16", "f32", "f64")


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 100_000))
def test_f64_to_f32_rewrite_is_exact(seed):
    m = irgen.random_module(seed, compare=irgen.f64, leaves=irgen.f64, acc=irgen.f64, depth=4)
    ens = next(op for op in m.walk() if isinstance(op, EnsembleOp))
    has_eq = any(np.isin(op.table.pred, (Pred.EQ, Pred.NE)).any() for op in ens.trees)
    check_exact(m, "tree-narrow-thresholds")
    if not has_eq:
        assert str(ens.compare_type) == "f32"


def test_f64_input_is_never_rewritten():
    m = irgen.random_module(1, compare=irgen.f64, leaves=irgen.f64, acc=irgen.f64, input_type=irgen.f64)
    run_pipeline(m, "tree-narrow-thresholds")
    ens = next(op for op in m.walk() if isinstance(op, EnsembleOp))
    assert str(ens.compare_type) == "f64" and str(ens.attributes["tree.narrow_input"]) == "f64"
    run_pipeline(m, "tree-narrow-thresholds{input=f32}")
    assert str(ens.compare_type) == "f64" and str(ens.attributes["tree.narrow_input"]) == "f32"
