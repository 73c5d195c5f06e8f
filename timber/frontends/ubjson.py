"""A UBJSON decoder (Universal Binary JSON, draft 12): the subset XGBoost's `.ubj` models use.

Values decode to Python objects (dict, list, str, int, float, bool, None).  Containers may
carry the optimized `$` (element type) and `#` (count) markers; an optimized array of a
numeric type decodes to a read-only numpy array in native byte order, which is what makes a
1000-tree model load fast (XGBoost writes every tree column that way).  Numbers are
big-endian.  Truncated or corrupt input raises `TimberError` naming the byte offset.
"""

from __future__ import annotations

import struct

import numpy as np

from ir.diagnostics import NameLoc, TimberError

# Fixed-size scalars: marker -> (struct format, numpy dtype of an optimized array of them).
_NUMERIC = {
    b"i": (">b", np.dtype(">i1")),
    b"U": (">B", np.dtype(">u1")),
    b"I": (">h", np.dtype(">i2")),
    b"l": (">i", np.dtype(">i4")),
    b"L": (">q", np.dtype(">i8")),
    b"d": (">f", np.dtype(">f4")),
    b"D": (">d", np.dtype(">f8")),
}
_INT_MARKERS = (b"i", b"U", b"I", b"l", b"L")
_NO_PAYLOAD = {b"Z": None, b"T": True, b"F": False}
_MAX_DEPTH = 128  # XGBoost documents nest ~6 deep; a deeper one is corrupt, not a model


def decode(data: bytes, source: str = "<bytes>"):
    """Decode one UBJSON value that spans all of `data` (trailing no-op `N` markers allowed)."""
    r = _Reader(memoryview(data).cast("B"), source)
    value = r.value(0)
    while r.pos < len(r.buf) and r.buf[r.pos] == ord("N"):
        r.pos += 1
    if r.pos != len(r.buf):
        r.fail(r.pos, f"{len(r.buf) - r.pos} bytes of trailing data after the top-level value")
    return value


class _Reader:
    """Recursive-descent decoder over a byte buffer; `pos` is the next byte to read."""

    def __init__(self, buf: memoryview, source: str):
        self.buf = buf
        self.pos = 0
        self.source = source

    def fail(self, offset: int, message: str):
        raise TimberError(f"corrupt UBJSON: {message}", NameLoc(self.source, f"byte {offset}"))

    def take(self, n: int, what: str) -> memoryview:
        start = self.pos
        if n < 0 or start + n > len(self.buf):
            self.fail(start, f"truncated: {what} needs {n} bytes, {len(self.buf) - start} left")
        self.pos = start + n
        return self.buf[start : start + n]

    def marker(self, what: str) -> bytes:
        """The next type marker, skipping no-op `N` markers."""
        while True:
            if self.pos >= len(self.buf):
                self.fail(self.pos, f"truncated: expected {what}, found end of data")
            m = bytes(self.buf[self.pos : self.pos + 1])
            self.pos += 1
            if m != b"N":
                return m

    def scalar(self, m: bytes, at: int):
        fmt, _ = _NUMERIC[m]
        return struct.unpack(fmt, self.take(struct.calcsize(fmt), f"a '{m.decode()}' number at byte {at}"))[0]

    def integer(self, what: str) -> int:
        at = self.pos
        m = self.marker(what)
        if m not in _INT_MARKERS:
            self.fail(at, f"expected an integer marker (i, U, I, l, L) for {what}, found {_show(m)}")
        return self.scalar(m, at)

    def count(self, what: str) -> int:
        at = self.pos
        n = self.integer(what)
        if n < 0:
            self.fail(at, f"{what} is negative ({n})")
        return n

    def string_body(self, what: str) -> str:
        n = self.count(f"the length of {what}")
        at = self.pos
        raw = self.take(n, what)
        try:
            return str(raw, "utf-8")
        except UnicodeDecodeError as e:
            self.fail(at + e.start, f"{what} is not valid UTF-8")

    def value(self, depth: int, m: bytes | None = None):
        at = self.pos
        if m is None:  # elements of a '$'-typed container have no marker of their own
            m = self.marker("a value")
        if m in _NUMERIC:
            return self.scalar(m, at)
        if m in _NO_PAYLOAD:
            return _NO_PAYLOAD[m]
        if m == b"S":
            return self.string_body("a string")
        if m == b"C":
            return chr(self.take(1, "a char")[0])
        if m == b"H":
            text = self.string_body("a high-precision number")
            try:
                return int(text) if text.lstrip("+-").isdigit() else float(text)
            except ValueError:
                self.fail(at, f"high-precision number '{text}' is not a number")
        if m == b"[":
            return self.array(depth + 1, at)
        if m == b"{":
            return self.object(depth + 1, at)
        self.fail(at, f"unknown type marker {_show(m)}")

    def container_header(self, at: int):
        """The optional `$type` and `#count` of a container that starts at `at`."""
        typ, n = None, None
        if self.pos < len(self.buf) and self.buf[self.pos] == ord("$"):
            self.pos += 1
            typ = self.marker("the element type after '$'")
            if typ not in _NUMERIC and typ not in _NO_PAYLOAD and typ not in (b"S", b"C", b"H", b"[", b"{"):
                self.fail(self.pos - 1, f"unknown element type {_show(typ)}")
            if self.pos >= len(self.buf) or self.buf[self.pos] != ord("#"):
                self.fail(self.pos, "a container with a '$' type must give a '#' count")
        if self.pos < len(self.buf) and self.buf[self.pos] == ord("#"):
            self.pos += 1
            n = self.count("the element count")
        return typ, n

    def array(self, depth: int, at: int):
        if depth > _MAX_DEPTH:
            self.fail(at, f"containers nested more than {_MAX_DEPTH} deep")
        typ, n = self.container_header(at)
        if typ in _NUMERIC:
            dt = _NUMERIC[typ][1]
            raw = self.take(n * dt.itemsize, f"an array of {n} '{typ.decode()}' numbers starting at byte {at}")
            arr = np.frombuffer(raw, dtype=dt).astype(dt.newbyteorder("="))
            arr.setflags(write=False)
            return arr
        if n is not None:
            return [self.value(depth, typ) for _ in range(n)]
        out = []
        while True:
            if self.pos >= len(self.buf):
                self.fail(self.pos, f"truncated: the array starting at byte {at} has no closing ']'")
            if self.buf[self.pos] == ord("]"):
                self.pos += 1
                return out
            if self.buf[self.pos] == ord("N"):
                self.pos += 1
                continue
            out.append(self.value(depth))

    def object(self, depth: int, at: int):
        if depth > _MAX_DEPTH:
            self.fail(at, f"containers nested more than {_MAX_DEPTH} deep")
        typ, n = self.container_header(at)
        out = {}
        if n is not None:
            for _ in range(n):
                key = self.string_body("an object key")
                out[key] = self.value(depth, typ)
            return out
        while True:
            if self.pos >= len(self.buf):
                self.fail(self.pos, f"truncated: the object starting at byte {at} has no closing '}}'")
            if self.buf[self.pos] == ord("}"):
                self.pos += 1
                return out
            if self.buf[self.pos] == ord("N"):
                self.pos += 1
                continue
            key = self.string_body("an object key")
            out[key] = self.value(depth)


def _show(m: bytes) -> str:
    c = m[0]
    return f"'{chr(c)}'" if 32 < c < 127 else f"byte 0x{c:02X}"
