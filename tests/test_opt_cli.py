"""`timber-opt`: textual IR prints back identically, model files go through their front-end and
the default pipeline, errors are one located diagnostic with exit status 1, `-o` is written only
on success, and every flag does what `--help` says."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ir.parser import parse_module
from ir.printer import print_op
from passes.registry import PIPELINES
from tests import irgen
from timber.opt import main

DEMO = Path(__file__).resolve().parents[1] / "timber" / "examples" / "breast_cancer_xgb.json"


def opt(capsys, *args, stdin: str | None = None, monkeypatch=None):
    if stdin is not None:
        import io

        monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    rc = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return rc, out, err


@pytest.fixture
def model_tir(tmp_path):
    m = irgen.random_module(5, n_outputs=3, transform="softmax", oblivious=True)
    path = tmp_path / "model.tir"
    path.write_text(print_op(m))
    return path


def test_textual_ir_prints_back_identically(capsys, model_tir):
    rc, out, err = opt(capsys, model_tir)
    assert rc == 0 and err == ""
    assert out == model_tir.read_text()
    rc, out, _ = opt(capsys, model_tir, "--print-generic")
    assert rc == 0 and out == print_op(parse_module(model_tir.read_text()), generic=True)


def test_stdin(capsys, model_tir, monkeypatch):
    rc, out, _ = opt(capsys, "-", stdin=model_tir.read_text(), monkeypatch=monkeypatch)
    assert rc == 0 and out == model_tir.read_text()


def test_bad_ir_is_one_located_diagnostic(capsys, tmp_path):
    bad = tmp_path / "bad.tir"
    bad.write_text("module {\n  func.func @f(%x: tensor<2xf32>) -> tensor<2xf32> {\n    func.return %y : tensor<2xf32>\n  }\n}\n")
    rc, out, err = opt(capsys, bad)
    assert rc == 1 and out == ""
    lines = err.splitlines()
    assert lines[0] == f"{bad}:3:17: error: use of undeclared SSA value name '%y'"
    assert lines[1] == "    func.return %y : tensor<2xf32>" and lines[2] == " " * 16 + "^"
    assert "Traceback" not in err


def test_verifier_errors_show_the_source_line(capsys, tmp_path):
    bad = tmp_path / "bad.tir"
    bad.write_text("module {\n  func.func @f(%x: tensor<2xf32>) -> tensor<3xf32> {\n    func.return %x : tensor<2xf32>\n  }\n}\n")
    rc, _, err = opt(capsys, bad)
    assert rc == 1
    first, src, caret = err.splitlines()[:3]
    assert first.startswith(f"{bad}:2:3: error: 'func.func' op returns (tensor<2xf32>) but the function type says")
    assert src == "  func.func @f(%x: tensor<2xf32>) -> tensor<3xf32> {" and caret == "  ^"


def test_bad_pipeline_is_located_and_checked_before_reading(capsys, tmp_path):
    rc, out, err = opt(capsys, tmp_path / "does-not-exist.json", "-p", "cse,tree-narrow-thresholds{bitz=8}")
    assert rc == 1 and out == ""
    assert err.splitlines()[0] == "pipeline:1:28: error: unknown option 'bitz' for pass 'tree-narrow-thresholds'; known: input, rewrite"


def test_missing_file(capsys, tmp_path):
    rc, _, err = opt(capsys, tmp_path / "nope.tir")
    assert rc == 1 and "no such file" in err and "Traceback" not in err
    rc, _, err = opt(capsys, tmp_path / "nope.json")
    assert rc == 1 and "nope.json" in err and "Traceback" not in err


def test_output_file_only_on_success(capsys, tmp_path, model_tir):
    dest = tmp_path / "out.tir"
    rc, out, _ = opt(capsys, model_tir, "-p", "canonicalize", "-o", dest)
    assert rc == 0 and out == "" and dest.read_text() == model_tir.read_text()
    dest2 = tmp_path / "out2.tir"
    rc, _, _ = opt(capsys, model_tir, "-p", "tree-prune-leaves{tolerance=x}", "-o", dest2)
    assert rc == 1 and not dest2.exists()


def test_demo_model_shows_every_default_pass(capsys):
    if not DEMO.exists():
        pytest.skip("demo model not built")
    rc, out, err = opt(capsys, DEMO, "--print-ir-after-all")
    assert rc == 0
    headers = [line for line in err.splitlines() if line.startswith("// -----// IR Dump After")]
    assert [h.split("(")[1].split(")")[0] for h in headers] == PIPELINES["default"].split(",")
    # Every dump, and the final IR, parses back; the final IR equals the last dump.
    dumps = err.split("// -----// IR Dump After")[1:]
    for d in dumps:
        parse_module("//" + d, "dump.tir")
    assert dumps[-1].split("\n", 1)[1].strip() == out.strip()
    assert "tree.narrow" in out and "tree.shape_groups" in out


def test_model_file_with_explicit_pipeline(capsys):
    if not DEMO.exists():
        pytest.skip("demo model not built")
    rc, out, _ = opt(capsys, DEMO, "-p", "")
    assert rc == 0 and "tree.narrow" not in out  # an empty pipeline runs nothing
    rc, out, _ = opt(capsys, DEMO, "-p", "tree-prune-leaves{tolerance=0.01}", "--audit-log=-")
    assert rc == 0


def test_print_ir_before_after_and_unknown_names(capsys, model_tir):
    rc, _, err = opt(capsys, model_tir, "-p", "canonicalize,cse,dce", "--print-ir-before=cse", "--print-ir-after=dce")
    assert rc == 0
    assert [line for line in err.splitlines() if "IR Dump" in line] == [
        "// -----// IR Dump Before CommonSubexpressionElimination (cse) //----- //",
        "// -----// IR Dump After DeadCodeElimination (dce) //----- //",
    ]
    rc, _, err = opt(capsys, model_tir, "-p", "cse", "--print-ir-after=csee")
    assert rc == 1 and "unknown pass 'csee' in --print-ir-after" in err


def test_timing_statistics_and_audit_log(capsys, model_tir, tmp_path):
    log = tmp_path / "audit.jsonl"
    rc, _, err = opt(capsys, model_tir, "-p", "default", "--timing", "--pass-statistics", f"--audit-log={log}")
    assert rc == 0
    assert "Execution time report" in err and "parse and verify input" in err and "Pass statistics report" in err
    entries = [json.loads(line) for line in log.read_text().splitlines()]
    assert [e["pass"] for e in entries] == PIPELINES["default"].split(",")
    assert all({"changed", "tree_nodes", "seconds", "stats"} <= e.keys() for e in entries)


def test_no_verify_each_lets_a_broken_pipeline_through(capsys, model_tir):
    rc, _, _ = opt(capsys, model_tir, "-p", "default", "--no-verify-each")
    assert rc == 0


def test_list_passes(capsys):
    rc, out, _ = opt(capsys, "--list-passes")
    assert rc == 0
    for name in ("canonicalize", "tree-prune-leaves  [lossy]", "tolerance=<float>", "calibration=<str>", "default:"):
        assert name in out


def test_split_input_file(capsys, tmp_path):
    f = tmp_path / "cases.tir"
    f.write_text(
        "module {\n}\n// -----\nmodule {\n  func.func @f(%x: tensor<1xf32>) -> tensor<1xf32> {\n"
        "    func.return %nope : tensor<1xf32>\n  }\n}\n// -----\nmodule attributes {a.b = 1 : i64} {\n}\n"
    )
    rc, out, err = opt(capsys, f, "--split-input-file")
    assert rc == 1
    assert err.splitlines()[0] == f"{f}:6:17: error: use of undeclared SSA value name '%nope'"
    rc, out, err = opt(capsys, f, "--split-input-file", "-p", "")
    assert "a.b = 1" not in out  # failures print nothing
    f.write_text("module {\n}\n// -----\nmodule attributes {a.b = 1 : i64} {\n}\n")
    rc, out, err = opt(capsys, f, "--split-input-file")
    assert rc == 0 and out == "module {\n}\n// -----\nmodule attributes {a.b = 1 : i64} {\n}\n"


def test_verify_diagnostics(capsys, tmp_path):
    f = tmp_path / "v.tir"
    body = "module {\n  func.func @f(%x: tensor<1xf32>) -> tensor<1xf32> {\n    // expected-error@+1 {{undeclared SSA value name}}\n    func.return %y : tensor<1xf32>\n  }\n}\n"
    f.write_text(body)
    rc, _, err = opt(capsys, f, "--verify-diagnostics")
    assert rc == 0 and err == ""
    f.write_text(body.replace("@+1", "@+2"))
    rc, _, err = opt(capsys, f, "--verify-diagnostics")
    assert rc == 1 and "unexpected error" in err and 'expected error "undeclared SSA value name" was not produced' in err


def test_emit_llvm(capsys, tmp_path):
    pytest.importorskip("llvmlite")
    m = irgen.random_module(1, n_trees=3, depth=2)
    f = tmp_path / "m.tir"
    f.write_text(print_op(m))
    rc, out, err = opt(capsys, f, "--emit=llvm")
    assert rc == 0, err
    assert "define" in out and "timber_infer" in out


def test_console_script_runs_without_traceback(tmp_path):
    bad = tmp_path / "bad.tir"
    bad.write_text("module {\n  tree.ensemble\n}\n")
    r = subprocess.run([sys.executable, "-m", "timber.opt", str(bad)], capture_output=True, text=True)
    assert r.returncode == 1 and r.stdout == "" and "Traceback" not in r.stderr
    assert r.stderr.startswith(f"{bad}:3:1: error: expected an SSA value name")


def test_rows_are_untouched_by_textual_round_trip(model_tir):
    from ir.interpreter import run

    m = parse_module(model_tir.read_text())
    X = np.random.default_rng(0).normal(size=(20, 5))
    a = run(m, X)
    b = run(parse_module(print_op(m)), X)
    np.testing.assert_array_equal(a, b)
