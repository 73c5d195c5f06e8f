"""Reading model JSON within bounds: every front-end's JSON goes through `loads`, so a file nested
thousands of levels deep (or absurdly large) is a located error, never a RecursionError traceback."""

from __future__ import annotations

import bisect
import json
import re

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


def loads(text: str, source: str, what: str = "JSON", **kwargs):
    """`json.loads(text, **kwargs)`; nesting too deep for the decoder and text longer than
    MAX_CHARS are refused as located `TimberError`s naming `what` (decode errors propagate as
    `json.JSONDecodeError` for the caller to word)."""
    if len(text) > MAX_CHARS:
        raise TimberError(f"{what} is {len(text) / 2**30:.1f} GiB: larger than the 2 GiB Timber reads", NameLoc(source, ""))
    try:
        return json.loads(text, **kwargs)
    except RecursionError:
        where = too_deep(text) or (1, 1)
    raise TimberError(f"corrupt {what}: nested more than {MAX_DEPTH} levels deep", NameLoc(source, f"line {where[0]} column {where[1]}"))
