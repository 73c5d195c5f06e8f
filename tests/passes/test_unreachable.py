"""tree-remove-unreachable: the analysis is sound (a side it calls dead is taken by no row), it
finds what it should, and the rewrite keeps every prediction (see also test_exact.py)."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ir.dialects.tree import ObliviousOp, Pred, TreeOp
from ir.parser import parse_module
from passes import run_pipeline
from passes.forest import Forest, ensembles
from passes.tree_sort import node_hits
from passes.tree_unreachable import decided_splits
from tests import irgen
from tests.passes.models import VARIANTS, check_exact, random_module, rows_for

pytestmark = pytest.mark.filterwarnings("ignore:overflow encountered in cast:RuntimeWarning")


@settings(max_examples=30, deadline=None)
@given(variant=st.sampled_from(sorted(VARIANTS)), seed=st.integers(0, 100_000))
def test_decided_sides_are_never_taken(variant, seed):
    """Route adversarial rows through the original trees: a side the analysis proved dead
    receives none of them."""
    m = random_module(variant, seed)
    X = rows_for(m, seed)
    for ens in ensembles(m):
        f = Forest(ens)
        decided = decided_splits(f)
        neg = ens.attributes.get("cat_negative")
        xs = X.astype(ens.operands[0].type.element.numpy).astype(ens.compare_type.numpy)
        for t, op in enumerate(f.ops):
            hits = node_hits(op.table, xs, neg.value if neg else "value")
            local = decided[f.offsets[t] : f.offsets[t + 1]]
            for i in np.flatnonzero(local):
                dead = op.table.no[i] if local[i] == 1 else op.table.yes[i]
                assert hits[dead] == 0, f"tree {t} node {i}: side {dead} declared dead but taken"


def _one_feature_tree(lines: str, compare="f32", missing_input="f32"):
    text = f"""
module {{
  func.func @margin(%x: tensor<1x{missing_input}>) -> tensor<1xf64> {{
    %m = tree.ensemble %x {{compare = {compare}, init = dense<[0.0]> : tensor<1xf64>, leaves = f64}} : tensor<1x{missing_input}> -> tensor<1xf64> {{
      tree.tree out 0 {{
{lines}
      }}
    }}
    func.return %m : tensor<1xf64>
  }}
}}"""
    return parse_module(text, "case.tir")


def _all_values(module) -> np.ndarray:
    """Every threshold, its neighbours, the zero band, NaN and the infinities."""
    vals = [np.nan, np.inf, -np.inf, 0.0, -0.0, 1e-35, -1e-35, 1e-36, 2e-35]
    for op in module.walk():
        if isinstance(op, TreeOp):
            for t in op.table.threshold[op.table.pred != Pred.LEAF]:
                vals += [float(t), float(np.nextafter(t, t.dtype.type(np.inf))), float(np.nextafter(t, t.dtype.type(-np.inf)))]
    return np.array(vals).reshape(-1, 1)


CASES = {
    # (tree lines, splits removed)
    "lt-then-lt": ("0: x[0] lt 5.0 ? 1 : 2\n1: x[0] lt 7.0 ? 3 : 4\n2: leaf 1.0\n3: leaf 2.0\n4: leaf 3.0", 1),
    "lt-then-ge-nan-reaches": ("0: x[0] lt 5.0 ? 1 : 2\n1: leaf 1.0\n2: x[0] ge 5.0 ? 3 : 4\n3: leaf 2.0\n4: leaf 3.0", 0),
    "lt-then-ge-nan-routed": ("0: x[0] lt 5.0 ? 1 : 2 missing(nan) -> 1\n1: leaf 1.0\n2: x[0] ge 5.0 ? 3 : 4\n3: leaf 2.0\n4: leaf 3.0", 1),
    "le-boundary-ulp": ("0: x[0] le 5.0 ? 1 : 2\n1: leaf 1.0\n2: x[0] gt 5.0 ? 3 : 4 missing(nan) -> 3\n3: leaf 2.0\n4: leaf 3.0", 1),
    "lt-next-ulp-not-decided": ("0: x[0] lt 5.0 ? 1 : 2\n1: x[0] lt 4.9999995 ? 3 : 4\n2: leaf 1.0\n3: leaf 2.0\n4: leaf 3.0", 0),
    "eq-inside": ("0: x[0] eq 2.0 ? 1 : 2\n1: x[0] lt 3.0 ? 3 : 4\n2: leaf 1.0\n3: leaf 2.0\n4: leaf 3.0", 1),
    "ne-nan-true": ("0: x[0] ne 2.0 ? 1 : 2\n1: leaf 1.0\n2: x[0] eq 2.0 ? 3 : 4\n3: leaf 2.0\n4: leaf 3.0", 1),
    "nan-as-zero": ("0: x[0] gt 0.0 ? 1 : 2 missing(nan-as-zero)\n1: leaf 1.0\n2: x[0] le 0.0 ? 3 : 4\n3: leaf 2.0\n4: leaf 3.0", 0),
    "zero-band": ("0: x[0] gt 1.0 ? 1 : 2 missing(zero) -> 1\n1: x[0] gt 0.5 ? 3 : 4\n2: leaf 1.0\n3: leaf 2.0\n4: leaf 3.0", 0),
    "lt-minus-inf": ("0: x[0] lt -INF ? 1 : 2\n1: leaf 1.0\n2: leaf 2.0", 1),
    "eq-point-nan-routed": ("0: x[0] eq 2.0 ? 1 : 2 missing(nan) -> 2\n1: x[0] eq 2.0 ? 3 : 4\n2: leaf 1.0\n3: leaf 2.0\n4: leaf 3.0", 1),
    "eq-zero-band-kept": ("0: x[0] eq 0.0 ? 1 : 2\n1: x[0] eq 0.0 ? 3 : 4 missing(zero) -> 4\n2: leaf 1.0\n3: leaf 2.0\n4: leaf 3.0", 0),
    "categorical-never-removed": ("0: x[0] in {1, 2} ? 1 : 2\n1: x[0] in {1, 2} ? 3 : 4\n2: leaf 1.0\n3: leaf 2.0\n4: leaf 3.0", 0),
}


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("compare", ["f32", "f64"])
def test_cases(name, compare):
    lines, removed = CASES[name]
    lines = lines.replace("-INF", "0xFF800000" if compare == "f32" else "0xFFF0000000000000")
    if compare == "f64":
        lines = lines.replace("4.9999995", "4.999999999999999")
    m = _one_feature_tree(lines, compare, compare)
    entries = check_exact(m, "tree-remove-unreachable", _all_values(m))
    assert entries[0].stats.get("splits-removed", 0) == removed


def test_untouched_trees_are_not_rebuilt():
    m = irgen.random_module(3, depth=3, n_trees=6, categorical=False)
    tables = {id(op): op.table for op in m.walk() if isinstance(op, (TreeOp, ObliviousOp))}
    (e,) = run_pipeline(m, "tree-remove-unreachable")
    changed = {c.detail for c in e.changes}
    same = [op for op in m.walk() if isinstance(op, TreeOp) and op.table is tables[id(op)]]
    assert len(same) + int(e.stats.get("trees-changed", 0)) == 6
    assert all("decided" in d for d in changed)
