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


def test_the_fast_decoder_gives_json_modules_values():
    """When orjson is installed `jsonread.loads` decodes with it: the same floats, bit for bit
    (shortest reprs, 17-25 significant digits, subnormals, overflow to the largest finite), key
    order and duplicates as the json module; what orjson refuses (NaN, Infinity, huge integers)
    still decodes through json."""
    import json
    import struct

    import numpy as np

    rng = np.random.default_rng(5)
    bits = rng.integers(0, 2**64, size=4000, dtype=np.uint64).view(np.float64)
    bits = bits[np.isfinite(bits)]
    digits = [f"{m}e{e}" for m, e in zip(rng.integers(1, 10**18, 2000), rng.integers(-340, 310, 2000))]
    texts = [
        "[" + ",".join(repr(float(x)) for x in bits) + "]",
        "[" + ",".join(f"{x:.24e}" for x in bits[:1000]) + "]",
        "[" + ",".join(digits) + ", 4.9e-324, 2.4703282292062328e-324, 1.7976931348623157e308]",
        '{"b": 1, "a": [0.1, -0.0, 1e-7], "b": 2.5}',
        '{"x": NaN, "y": Infinity, "z": 123456789012345678901234567890}',
    ]
    for text in texts:
        got, want = jsonread.loads(text, "<test>"), json.loads(text)
        assert json.dumps(got) == json.dumps(want)
        flat = got if isinstance(got, list) else list(got.values())
        ref = want if isinstance(want, list) else list(want.values())
        assert [struct.pack("<d", v) if isinstance(v, float) else v for v in flat] == [
            struct.pack("<d", v) if isinstance(v, float) else v for v in ref
        ]


def test_the_callers_utf8_bytes_decide_like_the_text():
    """`loads(text, utf8=...)` (the file's bytes, BOM and all, spared from encoding again) picks
    the decoder and reports nesting exactly as `loads(text)`."""
    for text in ('{"é": [[1]], "b": "[[[["}', _deep(300, '{"learner": {"x": ') + "}", _deep(250, '{"a": ')):
        raw = "\ufeff".encode() + text.encode()
        for utf8 in (text.encode(), raw):
            try:
                want = ("ok", jsonread.loads(text, "<t>"))
            except TimberError as e:
                want = ("error", e.render())
            try:
                got = ("ok", jsonread.loads(text, "<t>", utf8=utf8))
            except TimberError as e:
                got = ("error", e.render())
            assert got == want


def test_xgboost_sniffs_json_past_any_whitespace():
    body = b'"learner": 1}'
    for pad in (0, 1, 5000, 70_000):
        assert xgboost._sniff(b"{" + b" \n" * pad + body, "model.ubj") == "json"
    assert xgboost._sniff(b"\xef\xbb\xbf {" + b" " * 9000 + b"}", "m.json") == "json"
