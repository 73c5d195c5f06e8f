"""Pipeline text: options parse by their declared types, bad text fails at the right column."""

import pytest

from ir.diagnostics import ParseError
from passes.pipeline import parse_pipeline, pipeline_text
from passes.registry import PIPELINES, all_passes, lookup_pass


def test_options_by_declared_type():
    (narrow, prune, sort, vec) = parse_pipeline(
        " tree-narrow-thresholds{input=f32, rewrite=false} , tree-prune-leaves{tolerance=1e-3},"
        'tree-sort-branches{calibration="a b,{c}.npy"},tree-vectorize-analysis'
    )
    assert (narrow.input, narrow.rewrite) == ("f32", False)
    assert prune.tolerance == 1e-3 and isinstance(prune.tolerance, float)
    assert sort.calibration == "a b,{c}.npy"
    assert vec.method == "signature"


def test_text_round_trips():
    text = 'tree-narrow-thresholds{rewrite=false},tree-prune-leaves{tolerance=0.25},tree-sort-branches{calibration="x y.npy"},cse'
    passes = parse_pipeline(text)
    assert pipeline_text(passes) == text
    assert pipeline_text(parse_pipeline(pipeline_text(passes))) == text


def test_named_pipeline_expands_and_is_exact():
    passes = parse_pipeline("default")
    assert [p.name for p in passes] == PIPELINES["default"].split(",")
    # exact, but for the kin passes that re-associate a robot's transforms (their bound against
    # Pinocchio is tested in tests/kin); they touch only kin ops
    assert all(p.exact or p.name in ("kin-fold-fixed", "kin-specialize-axes") for p in passes)
    assert parse_pipeline("") == [] and parse_pipeline("   ") == []


def test_registry():
    names = [p.name for p in all_passes()]
    assert names == sorted(names) and len(set(names)) == len(names)
    for p in all_passes():
        assert lookup_pass(p.name) is p and p.summary and p.__doc__
        for o in p.option_specs():
            assert o.doc, f"{p.name}: option {o.name} has no help"
    assert lookup_pass("nope") is None


@pytest.mark.parametrize(
    "text, col, message",
    [
        ("cse,tree-narrow-thresholds{bitz=8}", 28, "unknown option 'bitz' for pass 'tree-narrow-thresholds'; known: input, rewrite"),
        ("cse,,dce", 5, "expected a pass name, found ','"),
        ("cse,tree-prune-leaf", 5, "unknown pass 'tree-prune-leaf'; did you mean 'tree-prune-leaves'?"),
        ("tree-prune-leaves", 1, "pass 'tree-prune-leaves' needs option 'tolerance'"),
        ("tree-prune-leaves{tolerance=1,tolerance=2}", 31, "option 'tolerance' of pass 'tree-prune-leaves' given twice"),
        ("tree-prune-leaves{tolerance=nan}", 29, "must be a finite number >= 0"),
        ("tree-narrow-thresholds{rewrite=maybe}", 32, "expects true or false, found 'maybe'"),
        ("tree-narrow-thresholds{rewrite}", 31, "expected '=' after option 'rewrite', found '}'"),
        (
            "tree-narrow-thresholds{rewrite=true",
            36,
            "expected ',' or '}' in the options of pass 'tree-narrow-thresholds', found end of pipeline",
        ),
        ('tree-sort-branches{calibration="x}', 32, "unterminated string in option value"),
        ("cse dce", 5, "expected ',' or the end of the pipeline, found 'd'"),
        ("default{a=1}", 8, "'default' is a named pipeline; it takes no options"),
    ],
)
def test_errors_point_at_the_column(text, col, message):
    with pytest.raises(ParseError) as e:
        parse_pipeline(text)
    d = e.value.diagnostic
    assert (d.location.file, d.location.line, d.location.col) == ("pipeline", 1, col)
    assert message in d.message
    rendered = e.value.render().splitlines()
    assert rendered[0].startswith(f"pipeline:1:{col}: error: ")
    assert rendered[1] == text and rendered[2] == " " * (col - 1) + "^"


def test_multiline_pipeline_errors_name_the_line():
    with pytest.raises(ParseError) as e:
        parse_pipeline("cse,\n  dce,\n  nope")
    assert str(e.value.diagnostic.location) == "pipeline:3:3"
