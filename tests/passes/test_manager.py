"""The pass manager: verification after each pass, the instruments, the audit log, and that
pass bodies never print."""

import io
from dataclasses import dataclass

import numpy as np
import pytest

from ir.attributes import StringAttr
from ir.diagnostics import TimberError
from ir.dialects.tree import EnsembleOp, TreeOp
from ir.parser import parse_module
from passes.base import Pass
from passes.manager import PassManager, PrintIR, Statistics, Timing, dump_header, run_pipeline
from passes.pipeline import parse_pipeline
from passes.registry import PIPELINES
from tests.passes.models import random_module


@dataclass
class BreakIR(Pass):
    """A deliberately buggy pass: points a tree at a feature the input does not have."""

    name = "test-break-ir"
    summary = "corrupts the IR"

    def apply(self, module, ctx):
        op = next(o for o in module.walk() if isinstance(o, TreeOp))
        t = op.table
        t.feature[t.pred != 0] = 99
        ctx.rewriter.set_table(op, t, "broken")


def test_verify_each_catches_the_pass_that_broke_the_ir():
    m = random_module("f32", 0)
    with pytest.raises(TimberError) as e:
        PassManager([BreakIR()]).run(m)
    assert "feature index 99 out of range" in e.value.diagnostic.message
    assert any("after pass 'test-break-ir'" in n for n in e.value.diagnostic.notes)
    m = random_module("f32", 0)
    PassManager([BreakIR()], verify_each=False).run(m)  # the user asked for no verification


def test_dumps_have_mlir_headers_and_parse_back():
    m = random_module("softmax", 1)
    out = io.StringIO()
    passes = parse_pipeline("canonicalize,tree-remove-unreachable,tree-vectorize-analysis")
    PassManager(passes, instruments=[PrintIR(out, before=["tree-remove-unreachable"], after_all=True)]).run(m)
    text = out.getvalue()
    headers = [line for line in text.splitlines() if line.startswith("// -----// IR Dump")]
    assert headers == [
        "// -----// IR Dump After Canonicalize (canonicalize) //----- //",
        "// -----// IR Dump Before RemoveUnreachable (tree-remove-unreachable) //----- //",
        "// -----// IR Dump After RemoveUnreachable (tree-remove-unreachable) //----- //",
        "// -----// IR Dump After VectorizeAnalysis (tree-vectorize-analysis) //----- //",
    ]
    for chunk in text.split("// -----// IR Dump")[1:]:
        parse_module("//" + chunk, "dump.tir")  # each dump is a module under a comment line


def test_after_change_prints_only_changed_passes():
    m = random_module("f32", 2)
    out = io.StringIO()
    entries = PassManager(
        parse_pipeline("tree-remove-unreachable,tree-remove-unreachable,cse"), instruments=[PrintIR(out, after_change=True)]
    ).run(m)
    changed = [e.name for e in entries if e.changed]
    assert changed == ["tree-remove-unreachable"]
    assert out.getvalue().count("IR Dump After") == 1


def test_audit_log_entries():
    m = random_module("f32", 2)
    entries = run_pipeline(m, "tree-remove-unreachable,tree-prune-leaves{tolerance=0.5},tree-vectorize-analysis")
    unreach, prune, vec = entries
    assert unreach.exact and not prune.exact
    assert unreach.nodes_after == unreach.nodes_before - unreach.stats["nodes-removed"]
    assert sum(c.nodes_removed for c in unreach.changes) == unreach.stats["nodes-removed"]
    assert prune.nodes_before == unreach.nodes_after
    assert any("moves by at most" in n for n in prune.notes)
    assert vec.nodes_after == vec.nodes_before and vec.changed  # attributes only
    d = prune.to_dict()
    assert d["pass"] == "tree-prune-leaves{tolerance=0.5}" and d["exact"] is False
    assert "ms" in unreach.render() and "tree nodes" in unreach.render()


def test_timing_and_statistics_reports():
    m = random_module("f32", 3)
    out = io.StringIO()
    entries = PassManager(parse_pipeline("default"), instruments=[Statistics(out)]).run(m)
    report = Timing(out).report(entries)
    for name in PIPELINES["default"].split(","):
        assert f"  {name}" in report
    assert "Total Execution Time" in report and "(100.0%)  Total" in report
    assert "Pass statistics report" in out.getvalue() and "(S)" in out.getvalue()


def test_pass_bodies_never_print(capsys, tmp_path):
    m = random_module("oblivious", 4)
    np.save(tmp_path / "rows.npy", np.random.default_rng(0).normal(size=(50, 5)))
    run_pipeline(m, f"default,tree-prune-leaves{{tolerance=0.1}},tree-sort-branches{{calibration={tmp_path}/rows.npy}}")
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""


def test_dump_header_format():
    (p,) = parse_pipeline("cse")
    assert dump_header("After", p) == "// -----// IR Dump After CommonSubexpressionElimination (cse) //----- //"


def test_attributes_added_by_passes_are_dialect_prefixed(tmp_path):
    m = random_module("cat-code", 5)
    before = {id(o): set(o.attributes) for o in m.walk()}
    np.save(tmp_path / "rows.npy", np.random.default_rng(0).normal(size=(50, 5)))
    run_pipeline(m, f"default,tree-prune-leaves{{tolerance=0.1}},tree-sort-branches{{calibration={tmp_path}/rows.npy}}")
    for o in m.walk():
        for k in set(o.attributes) - before.get(id(o), set()):
            assert k.startswith("tree."), (o.name, k)
    ens = next(o for o in m.walk() if isinstance(o, EnsembleOp))
    assert all(isinstance(a, StringAttr) for a in ens.attributes["tree.narrow"])


def test_rewrites_drop_stale_analysis_attributes():
    """Analyses describe the trees they saw: a pass that rewrites a tree drops them (unless it
    declares them preserved), and running the analyses again restores them."""
    from passes.registry import derived_attributes

    DERIVED_ENSEMBLE_ATTRS = derived_attributes()["tree.ensemble"]

    m = random_module("f32", 2)
    run_pipeline(m, "tree-vectorize-analysis,tree-narrow-thresholds")
    ens = next(o for o in m.walk() if isinstance(o, EnsembleOp))
    assert all(k in ens.attributes for k in DERIVED_ENSEMBLE_ATTRS)
    (e,) = run_pipeline(m, "tree-remove-unreachable")
    assert e.changed
    assert not any(k in ens.attributes for k in DERIVED_ENSEMBLE_ATTRS)
    changed = [c for c in e.changes if c.kind == "tree"]
    assert changed and all("dropped stale" in c.detail for c in changed)
    trees = [o for o in ens.trees if isinstance(o, TreeOp)]
    assert any("tree.shape_group" not in t.attributes for t in trees)
    fresh = random_module("f32", 2)
    run_pipeline(fresh, "tree-remove-unreachable,tree-vectorize-analysis,tree-narrow-thresholds")
    run_pipeline(m, "tree-vectorize-analysis,tree-narrow-thresholds")
    from ir.printer import print_op

    assert print_op(m) == print_op(fresh)
