"""Reading model JSON within bounds: every front-end's JSON goes through `loads`, so a file nested
thousands of levels deep (or absurdly large) is a located error, never a RecursionError traceback."""

from __future__ import annotations

import bisect
import json
import re
from functools import cache

from ir.diagnostics import NameLoc, TimberError

MAX_DEPTH = 256  # where a too-deep file is reported (models nest a dozen levels; Python's decoder stops near 1000)
MAX_CHARS = 2**31  # 2 GiB of text

_TOKENS = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]')


def too_deep(text: str, limit: int = MAX_DEPTH) -> tuple[int, int] | None:
    """(line, column) where the nesting of arrays and objects first exceeds `limit`, or None."""
    depth = 0
    for m in _TOKENS.finditer(text):
        c = m.group(0)
        if c in "[{":
            depth += 1
            if depth > limit:
                starts = [0] + [k.end() for k in re.finditer("\n", text[: m.start()])]
                line = bisect.bisect_right(starts, m.start())
                return line, m.start() - starts[line - 1] + 1
        elif c in "]}":
            depth -= 1
    return None


_NOT_BRACKETS = bytes(c for c in range(256) if c not in b"[]{}")


def _nesting_at_most(text: str, limit: int, utf8: bytes | None = None) -> bool:
    """The brackets' nesting stays within `limit` (brackets inside strings counted too: a bound
    for choosing the decoder, not a verdict).  15 ms for a 14 MB model, plus 20 ms to encode
    `text` unless its UTF-8 bytes `utf8` are given."""
    import numpy as np

    raw = text.encode("utf-8", "surrogatepass") if utf8 is None else utf8
    br = np.frombuffer(raw.translate(None, _NOT_BRACKETS), np.uint8)
    return not len(br) or int(np.cumsum(np.where((br == 91) | (br == 123), 1, -1), dtype=np.int64).max()) <= limit


@cache
def _orjson():
    try:
        import orjson
    except ImportError:
        return None
    return orjson


def loads(text: str, source: str, what: str = "JSON", *, utf8: bytes | None = None, **kwargs):
    """`json.loads(text, **kwargs)`; nesting too deep for the decoder and text longer than
    MAX_CHARS are refused as located `TimberError`s naming `what` (decode errors propagate as
    `json.JSONDecodeError` for the caller to word).  `utf8`, when the caller has it, is the
    file's bytes that `text` was decoded from (a UTF-8 BOM allowed): it spares encoding again."""
    if len(text) > MAX_CHARS:
        raise TimberError(f"{what} is {len(text) / 2**30:.1f} GiB: larger than the 2 GiB Timber reads", NameLoc(source, ""))
    if not kwargs and _orjson() is not None and _nesting_at_most(text, MAX_DEPTH, utf8):
        # orjson, when installed, decodes 4-5x faster (1 s -> 0.2 s for a 1000-tree XGBoost
        # model) to the same values (floats correctly rounded either way; tested on the corpus);
        # whatever it refuses (NaN literals, huge integers, bad text), and text nested deeper than
        # MAX_DEPTH (which orjson would read), goes to json, whose answer or error is the one given
        try:
            return _orjson().loads(text)
        except Exception:  # noqa: BLE001 - any refusal: json decides
            pass
    try:
        return json.loads(text, **kwargs)
    except RecursionError:
        where = too_deep(text) or (1, 1)
    raise TimberError(f"corrupt {what}: nested more than {MAX_DEPTH} levels deep", NameLoc(source, f"line {where[0]} column {where[1]}"))
