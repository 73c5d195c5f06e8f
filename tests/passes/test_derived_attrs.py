"""Derived attributes are declared by the passes that write them (`Pass.derives`, collected by
the registry), not listed by the rewriter; the pass manager's size measure is what ops report
(`size_for_statistics`), not a dialect it knows."""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

from ir.attributes import IntegerAttr
from ir.dialects.func import FuncOp
from ir.dialects.tree import EnsembleOp, ObliviousOp, TreeOp
from passes import registry
from passes.base import Pass
from passes.manager import PassManager, module_size, run_pipeline
from passes.registry import all_passes, derived_attributes, register_pass
from passes.rewrite import Rewriter
from tests.passes.models import random_module

ROOT = Path(__file__).resolve().parents[2]

ENSEMBLE_FACTS = (
    "tree.depth_profile",
    "tree.perfect_trees",
    "tree.feature_splits",
    "tree.features_used",
    "tree.shape_groups",
    "tree.narrow",
    "tree.narrow_round",
    "tree.narrow_input",
)


def test_the_registry_collects_what_the_analyses_declare():
    d = derived_attributes()
    assert d["tree.ensemble"] == ENSEMBLE_FACTS  # in this order: the audit lists dropped ones so
    assert d["tree.tree"] == d["tree.oblivious"] == ("tree.shape_group",)
    declaring = {p.name for p in all_passes() if p.derives}
    assert {"tree-vectorize-analysis", "tree-narrow-thresholds"} <= declaring


@pytest.mark.parametrize("variant", ["f32", "oblivious"])
def test_each_analysis_writes_exactly_what_it_declares(variant):
    for cls in all_passes():
        if not cls.derives:
            continue
        m = random_module(variant, 4)
        before = {id(o): set(o.attributes) for o in m.walk()}
        run_pipeline(m, [cls()])
        written: dict[str, set[str]] = {}
        for o in m.walk():
            new = set(o.attributes) - before.get(id(o), set())
            if new:
                written.setdefault(o.name, set()).update(new)
        assert written, cls.name
        for op_name, names in written.items():
            assert names <= set(cls.derives.get(op_name, ())), (cls.name, op_name, names)
        for op_name, names in cls.derives.items():
            if any(o.name == op_name for o in m.walk()):
                assert set(names) <= written.get(op_name, set()), (cls.name, op_name)


@pytest.fixture
def fn_fact(monkeypatch):
    """A pass, registered for this test only, that derives `testfact.trees` on each function."""
    registry._load()
    monkeypatch.setattr(registry, "_PASSES", dict(registry._PASSES))
    monkeypatch.setattr(registry, "_derived", None)

    @register_pass
    @dataclass
    class FnFact(Pass):
        name = "test-fn-fact"
        summary = "count the trees under each function"
        derives = {"func.func": ("testfact.trees",)}

        def apply(self, module, ctx):
            for f in module.body.ops:
                if isinstance(f, FuncOp):
                    n = sum(isinstance(o, (TreeOp, ObliviousOp)) for o in f.walk())
                    ctx.rewriter.set_attr(f, "testfact.trees", IntegerAttr(n))

    return FnFact


def _funcs_with_fact(m):
    return [f for f in m.body.ops if isinstance(f, FuncOp) and "testfact.trees" in f.attributes]


def test_a_new_pass_declares_its_facts_and_rewrites_drop_them(fn_fact):
    assert derived_attributes()["func.func"] == ("testfact.trees",)
    m = random_module("f32", 2)
    run_pipeline(m, [fn_fact()])
    assert _funcs_with_fact(m)
    (e,) = run_pipeline(m, "tree-remove-unreachable")
    assert e.changed
    # The rewritten tree is nested in the function: its facts are stale too.
    ens = next(o for o in m.walk() if isinstance(o, EnsembleOp))
    f = ens.parent_op
    assert "testfact.trees" not in f.attributes
    trees = [c for c in e.changes if c.kind == "tree"]
    assert trees[0].detail.endswith("(dropped stale testfact.trees)")


def test_preserved_facts_survive_a_rewrite(fn_fact):
    m = random_module("f32", 2)
    run_pipeline(m, [fn_fact()])
    run_pipeline(m, "tree-vectorize-analysis")
    op = next(o for o in m.walk() if isinstance(o, TreeOp))
    r = Rewriter()
    r.set_table(op, op.table, "same table", preserves=("testfact.trees", "tree.depth_profile"))
    ens, f = op.parent_op, op.parent_op.parent_op
    assert "testfact.trees" in f.attributes and "tree.depth_profile" in ens.attributes
    assert "tree.shape_group" not in op.attributes and "tree.shape_groups" not in ens.attributes
    dropped = "tree.shape_group, tree.perfect_trees, tree.feature_splits, tree.features_used, tree.shape_groups"
    assert r.changes[0].detail == f"same table (dropped stale {dropped})"


def test_erasing_an_op_drops_the_facts_of_everything_around_it(fn_fact):
    m = random_module("f32", 2)
    run_pipeline(m, [fn_fact()])
    run_pipeline(m, "tree-vectorize-analysis")
    op = next(o for o in m.walk() if isinstance(o, TreeOp))
    ens, f = op.parent_op, op.parent_op.parent_op
    Rewriter().erase_op(op, "test")
    assert "testfact.trees" not in f.attributes
    assert not any(k in ens.attributes for k in ENSEMBLE_FACTS)


def test_bad_declarations_are_refused(monkeypatch):
    registry._load()
    monkeypatch.setattr(registry, "_PASSES", dict(registry._PASSES))
    monkeypatch.setattr(registry, "_derived", None)
    for derives, msg in [({"func.func": "testfact.x"}, "tuples of attribute names"), ({"func.func": ("nodot",)}, "dialect.name")]:

        @dataclass
        class Bad(Pass):
            name = "test-bad-derives"

        Bad.derives = derives
        with pytest.raises(ValueError, match=msg):
            register_pass(Bad)


def test_the_rewriter_names_no_derived_attribute():
    import passes.rewrite as rewrite

    for gone in ("DERIVED_TREE_ATTRS", "DERIVED_ENSEMBLE_ATTRS", "STRUCTURE_ATTRS"):
        assert not hasattr(rewrite, gone)
    source = (ROOT / "passes" / "rewrite.py").read_text()
    assert not any(f'"{a}"' in source for a in ENSEMBLE_FACTS + ("tree.shape_group",))


# ----- the size the audit log reports -------------------------------------------------------------


def test_size_is_what_ops_report(monkeypatch):
    m = random_module("oblivious", 1)
    nodes = sum(o.table.n_nodes for o in m.walk() if isinstance(o, TreeOp))
    levels = sum(o.table.depth + o.table.leaf.shape[0] for o in m.walk() if isinstance(o, ObliviousOp))
    assert module_size(m) == nodes + levels > 0
    monkeypatch.setattr(FuncOp, "size_for_statistics", lambda self: 1000, raising=False)
    n_funcs = sum(isinstance(o, FuncOp) for o in m.body.ops)
    assert module_size(m) == nodes + levels + 1000 * n_funcs
    (e,) = PassManager([registry.lookup_pass("cse")()]).run(m)
    assert e.nodes_before == e.nodes_after == nodes + levels + 1000 * n_funcs
    assert f"tree nodes {e.nodes_before} -> {e.nodes_after};" in e.render()


def test_the_manager_imports_no_dialect():
    tree = ast.parse((ROOT / "passes" / "manager.py").read_text())
    mods = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)} | {
        a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names
    }
    assert not any("dialects" in (m or "") for m in mods), mods


def test_ops_without_a_size_count_nothing():
    m = random_module("f32", 0)
    for o in m.walk():
        if not isinstance(o, (TreeOp, ObliviousOp)):
            assert getattr(o, "size_for_statistics", None) is None, o.name
