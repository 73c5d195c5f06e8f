"""Every JSON reader gives a located error for a file nested too deeply, never a RecursionError."""

from __future__ import annotations

import pytest

from ir.diagnostics import TimberError
from timber.detect import load_model
from timber.frontends import catboost, jsonread, xgboost


def _deep(n: int, head: str) -> str:
    return head + "[" * n + "]" * n + "}"


@pytest.mark.parametrize("reader", ["xgboost", "catboost"])
def test_deeply_nested_json_is_a_located_error(tmp_path, reader):
    head = '{"learner": {"x": ' if reader == "xgboost" else '{"oblivious_trees": '
    text = _deep(100_000, head) + ("}" if reader == "xgboost" else "")
    path = tmp_path / "model.json"
    path.write_text(text)
    load = xgboost.load if reader == "xgboost" else catboost.load
    with pytest.raises(TimberError) as e:
        load(str(path))
    msg = e.value.render()
    assert f"nested more than {jsonread.MAX_DEPTH} levels deep" in msg
    first_too_deep = len(head) + jsonread.MAX_DEPTH - head.count("{") + 1  # the bracket that opens level MAX_DEPTH + 1
    assert str(path) in msg and f"line 1 column {first_too_deep}:" in msg


def test_cli_path_reports_it_too(tmp_path):
    path = tmp_path / "deep.json"
    path.write_text('{"oblivious_trees": ' + "[" * 5000 + "]" * 5000 + ', "features_info": {}}')
    with pytest.raises(TimberError, match="levels deep"):
        load_model(path)


def test_too_deep_locates_the_first_bracket_past_the_limit():
    text = '{"a": "[[[[[[[[", "b":\n  [[[[1]]]]}'
    assert jsonread.too_deep(text, 3) == (2, 5)  # the brackets in the string do not count
    assert jsonread.too_deep(text, 5) is None
