"""Bit-exact float text: the shortest decimal that reads back to the same value in its own
width, and hex bit patterns for NaN and infinities (as MLIR prints them)."""

from __future__ import annotations

import struct
from decimal import Decimal

import numpy as np


def format_float(value: float, width: int = 64) -> str:
    """Shortest text that `parse_float(text, width)` turns back into the same bits."""
    if width == 32:
        v = np.float32(value)
        if not np.isfinite(v):
            return "0x%08X" % int(np.array(v, np.float32).view(np.uint32))
        text = np.format_float_positional(v, unique=True, trim="0") if 1e-4 <= abs(v) < 1e16 else str(v)
    elif width == 64:
        v = float(value)
        if v != v or v in (float("inf"), float("-inf")):
            return "0x%016X" % struct.unpack("<Q", struct.pack("<d", v))[0]
        text = repr(v)
    elif width == 16:
        v = np.float16(value)
        if not np.isfinite(v):
            return "0x%04X" % int(np.array(v).view(np.uint16))
        text = str(v)
    else:
        raise ValueError(f"no float of width {width}")
    # Always show that it is a float (MLIR accepts `1.0`, not `1` in float position).
    if not any(c in text for c in ".eEn"):
        text += ".0"
    if text.endswith("."):
        text += "0"
    return text


def format_floats(values: np.ndarray) -> list[str]:
    """`format_float` over an f32 or f64 array (fast path for large tables)."""
    width = values.dtype.itemsize * 8
    if width == 64:
        out = [repr(v) for v in values.tolist()]
        bad = ~np.isfinite(values)
        if bad.any():
            for i in np.flatnonzero(bad):
                out[i] = format_float(values[i], 64)
        return out
    if width == 32:
        # numpy prints the shortest f32 text that reads back ("0.1", "1e-05", "2.0").
        out = [str(v) for v in values]
        bad = ~np.isfinite(values)
        for i in np.flatnonzero(bad):
            out[i] = format_float(values[i], 32)
        return out
    return [format_float(v, width) for v in values]


def parse_float(text: str, width: int = 64) -> float:
    """Read a decimal or hex-bit-pattern float literal into a value of the given width.

    Decimal text is rounded once, correctly, into the target width (no double rounding
    through f64 for f32 values)."""
    if text.startswith(("0x", "0X", "-0x")):
        # A bit pattern; returned as a numpy scalar of the width so signalling NaNs keep their bits.
        bits = int(text, 16)
        if width == 64:
            return np.array(bits & (2**64 - 1), dtype=np.uint64).view(np.float64)[()]
        if width == 32:
            return np.array(bits & 0xFFFFFFFF, dtype=np.uint32).view(np.float32)[()]
        return np.array(bits & 0xFFFF, dtype=np.uint16).view(np.float16)[()]
    v = float(text)
    if width == 64:
        return v
    if width == 32:
        return float(round_to_f32(v, text))
    return float(np.float16(v))


def round_to_f32(v: float, text: str) -> np.float32:
    """Round decimal `text` (whose nearest f64 is `v`) to the nearest f32, correctly.

    f64 → f32 is wrong only when the f64 landed exactly on an f32 rounding midpoint;
    then the exact decimal decides."""
    r = np.float32(v)
    # Compare as Python floats: numpy would round v to f32 first (NEP 50) and always agree.
    if not np.isfinite(r) or float(r) == v:
        return r
    with np.errstate(over="ignore"):
        lo, hi = (np.nextafter(r, np.float32(-np.inf)), r) if float(r) > v else (r, np.nextafter(r, np.float32(np.inf)))
    mid = (float(lo) + float(hi)) / 2
    if mid != v:
        return r
    exact = Decimal(text)
    dmid = Decimal(mid)
    if exact > dmid:
        return hi
    if exact < dmid:
        return lo
    return lo if int(np.array(lo).view(np.uint32)) % 2 == 0 else hi


def parse_floats(texts: list[str], width: int) -> np.ndarray:
    """`parse_float` over many literals at once (the fast path for node tables)."""
    dtype = np.float32 if width == 32 else np.float64 if width == 64 else np.float16
    if not texts:
        return np.zeros(0, dtype)
    hexes = [i for i, t in enumerate(texts) if "x" in t or "X" in t]
    dec = list(texts)
    for i in hexes:
        dec[i] = "0"
    a = np.array(dec, dtype=np.float64)
    if width == 64:
        out = a
    elif width == 32:
        out = a.astype(np.float32)
        r64 = out.astype(np.float64)
        with np.errstate(over="ignore", invalid="ignore"):
            up = r64 < a
            below = np.where(up, out, np.nextafter(out, np.float32(-np.inf))).astype(np.float64)
            above = np.where(up, np.nextafter(out, np.float32(np.inf)), out).astype(np.float64)
            suspicious = np.isfinite(out) & (r64 != a) & ((below + above) / 2 == a)
        for i in np.flatnonzero(suspicious):
            out[i] = round_to_f32(float(a[i]), texts[i])
    else:
        out = a.astype(np.float16)
    for i in hexes:
        out[i] = parse_float(texts[i], width)
    return out
