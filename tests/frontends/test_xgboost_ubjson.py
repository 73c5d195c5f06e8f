"""The UBJSON decoder: every value type, optimized containers, and errors that name the byte.

Values are encoded here by a small writer that follows the UBJSON spec independently of the
decoder; XGBoost's own `.ubj` output is checked against its JSON twin."""

from __future__ import annotations

import json
import math
import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ir.diagnostics import TimberError
from timber.frontends.ubjson import decode

INT_MARKERS = [
    (b"i", ">b", -(2**7), 2**7),
    (b"U", ">B", 0, 2**8),
    (b"I", ">h", -(2**15), 2**15),
    (b"l", ">i", -(2**31), 2**31),
    (b"L", ">q", -(2**63), 2**63),
]


def enc_int(v: int) -> bytes:
    for m, fmt, lo, hi in INT_MARKERS:
        if lo <= v < hi:
            return m + struct.pack(fmt, v)
    raise ValueError(v)


def enc_str_body(s: str) -> bytes:
    raw = s.encode()
    return enc_int(len(raw)) + raw


def enc(v, f64: bool = True) -> bytes:
    """A plain (unoptimized) UBJSON encoding of a JSON-like value."""
    if v is None:
        return b"Z"
    if v is True:
        return b"T"
    if v is False:
        return b"F"
    if isinstance(v, int):
        return enc_int(v)
    if isinstance(v, float):
        return b"D" + struct.pack(">d", v) if f64 else b"d" + struct.pack(">f", v)
    if isinstance(v, str):
        return b"S" + enc_str_body(v)
    if isinstance(v, list):
        return b"[" + b"".join(enc(x, f64) for x in v) + b"]"
    if isinstance(v, dict):
        return b"{" + b"".join(enc_str_body(k) + enc(x, f64) for k, x in v.items()) + b"}"
    raise TypeError(type(v))


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4),
    max_leaves=20,
)


@settings(max_examples=200, deadline=None)
@given(json_values)
def test_decodes_what_a_spec_encoder_writes(v):
    assert decode(enc(v)) == v


@pytest.mark.parametrize("marker,fmt,lo,hi", INT_MARKERS)
def test_integer_types_and_their_limits(marker, fmt, lo, hi):
    for v in (lo, -1 if lo < 0 else 0, hi - 1):
        assert decode(marker + struct.pack(fmt, v)) == v


def test_floats_keep_their_bits():
    for v in (0.1, -0.0, 1e-45, 3.4028234663852886e38, math.inf, -math.inf):
        got = decode(b"d" + struct.pack(">f", v))
        assert struct.pack(">f", got) == struct.pack(">f", v)
        assert struct.pack(">d", decode(b"D" + struct.pack(">d", v))) == struct.pack(">d", v)
    assert math.isnan(decode(b"d" + struct.pack(">f", math.nan)))


def test_char_high_precision_noop():
    assert decode(b"Ca") == "a"
    assert decode(b"H" + enc_int(5) + b"12345") == 12345
    assert decode(b"H" + enc_int(4) + b"1.25") == 1.25
    assert decode(b"[NN" + enc_int(1) + b"N]") == [1]
    assert decode(b"N" + enc_int(3) + b"NN") == 3
    assert decode(b"S" + enc_str_body("héllo ✓")) == "héllo ✓"


@pytest.mark.parametrize(
    "marker,dtype", [(b"d", ">f4"), (b"D", ">f8"), (b"i", ">i1"), (b"U", ">u1"), (b"I", ">i2"), (b"l", ">i4"), (b"L", ">i8")]
)
def test_typed_numeric_arrays_become_numpy(marker, dtype):
    vals = np.array([0, 1, 2, 100, 7, 0], dtype)
    raw = b"[$" + marker + b"#" + enc_int(len(vals)) + vals.tobytes()
    out = decode(raw)
    assert isinstance(out, np.ndarray) and out.dtype == np.dtype(dtype).newbyteorder("=")
    np.testing.assert_array_equal(out, vals.astype(out.dtype))
    assert not out.flags.writeable


def test_counted_and_typed_containers():
    assert decode(b"[#" + enc_int(3) + enc_int(1) + b"Z" + b"T") == [1, None, True]
    assert decode(b"[$S#" + enc_int(2) + enc_str_body("a") + enc_str_body("bc")) == ["a", "bc"]
    assert decode(b"[$Z#" + enc_int(3)) == [None, None, None]
    assert decode(b"{#" + enc_int(2) + enc_str_body("a") + enc_int(1) + enc_str_body("b") + b"F") == {"a": 1, "b": False}
    assert decode(b"{$i#" + enc_int(2) + enc_str_body("x") + b"\x05" + enc_str_body("y") + b"\xff") == {"x": 5, "y": -1}
    assert decode(b"[$[#" + enc_int(2) + b"]" + enc_int(1) + b"]") == [[], [1]]
    assert decode(b"{}") == {} and decode(b"[]") == [] and decode(b"[#" + enc_int(0)) == []


def test_xgboost_ubj_equals_its_json():
    xgb = pytest.importorskip("xgboost")
    rng = np.random.default_rng(0)
    X = rng.normal(size=(100, 3)).astype(np.float32)
    b = xgb.train({"max_depth": 2, "nthread": 1}, xgb.DMatrix(X, X[:, 0] * 2), 3)
    from_ubj = decode(bytes(b.save_raw("ubj")))
    from_json = json.loads(bytes(b.save_raw("json")))

    def same(a, j, path="$"):
        if isinstance(j, dict):
            assert isinstance(a, dict) and set(a) == set(j), path
            for k in j:
                same(a[k], j[k], f"{path}.{k}")
        elif isinstance(j, list):
            assert len(a) == len(j), path
            for i, (x, y) in enumerate(zip(list(a), j)):
                same(x, y, f"{path}[{i}]")
        elif isinstance(j, float):
            assert np.float32(a) == np.float32(j), path
        else:
            assert a == j, path

    same(from_ubj, from_json)


# ----- errors --------------------------------------------------------------------------------


def _error(raw: bytes) -> str:
    with pytest.raises(TimberError) as e:
        decode(raw, "m.ubj")
    return str(e.value)


def test_every_truncation_is_an_error_naming_a_byte():
    doc = {"learner": {"a": [1, 2.5, "x"], "b": {"c": None}}, "v": [3, 2, 0]}
    raw = enc(doc, f64=False)
    typed = b"{" + enc_str_body("w") + b"[$d#" + enc_int(4) + np.arange(4, dtype=">f4").tobytes() + b"}"
    for data in (raw, typed):
        for cut in range(len(data)):
            msg = _error(data[:cut])
            assert "m.ubj: byte " in msg and "UBJSON" in msg


@pytest.mark.parametrize(
    "raw,where,what",
    [
        (b"X", "byte 0", "unknown type marker 'X'"),
        (b"[" + enc_int(1) + b"\x01]", "byte 3", "unknown type marker byte 0x01"),
        (b"[#i\xff", "byte 2", "the element count is negative (-1)"),
        (b"S" + enc_int(2) + b"\xff\xfe", "byte 3", "not valid UTF-8"),
        (enc_int(1) + enc_int(2), "byte 2", "trailing data"),
        (b"[$d" + enc_int(1), "byte 3", "must give a '#' count"),
        (b"[$q#" + enc_int(1), "byte 2", "unknown element type 'q'"),
        (b"{" + b"S" + enc_str_body("k") + b"Z}", "byte 1", "integer marker"),
        (b"[" * 600, "byte 128", "nested more than"),
        (b"H" + enc_int(3) + b"1x2", "byte 0", "not a number"),
    ],
)
def test_corrupt_input_names_the_byte(raw, where, what):
    msg = _error(raw)
    assert f"m.ubj: {where}:" in msg and what in msg, msg
