"""Reading a model file's bytes with a size bound, for every front-end that takes paths or bytes."""

from __future__ import annotations

import os

from ir.diagnostics import NameLoc, TimberError


def read_bounded(path_or_bytes, source_name: str | None, limit: int, error=TimberError) -> tuple[bytes, str]:
    """(data, source name) of a path or of bytes given directly (named `source_name`, else
    "<bytes>").  A file larger than `limit` bytes, or one that cannot be read, is an `error`
    located at the file and saying why."""
    if isinstance(path_or_bytes, (bytes, bytearray)):
        return bytes(path_or_bytes), source_name or "<bytes>"
    path = os.fspath(path_or_bytes)
    source = source_name or path
    where = NameLoc(source, "")
    try:
        size = os.path.getsize(path)
        if size > limit:
            raise error(f"the file is {size >> 20} MiB; model files over {limit >> 20} MiB are refused", where)
        with open(path, "rb") as fh:
            return fh.read(), source
    except OSError as e:
        raise error(f"cannot read {source}: {e.strerror or e}", where) from None
