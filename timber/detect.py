"""Which framework wrote a model file, and loading it with the matching front-end.

`detect_format(path)` looks at the file's first bytes (content wins) and then at its extension;
`load_model(path, **opts)` calls `timber.frontends.<format>.load(path, **opts)`.

Each format is one `Format` row in `FORMATS`; a front-end for it is the module
`timber/frontends/<name>.py` with a `load(path, **opts)` function, found by name.  Adding a
format is one row here (and a sniffer if its content is recognisable); adding its front-end
needs no edit here at all.

Timber's own textual IR (`.tir`/`.mlir`, or any text starting with `module` / `func.func` after
comments) is a format too: its row carries its loader, the IR parser and verifier, whose errors
are `file:line:col: error: ...` diagnostics like any front-end's.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import re
from collections.abc import Callable
from dataclasses import dataclass

from ir.diagnostics import NameLoc, TimberError, VerifyError, source_line_of

_HEAD = 64 * 1024  # how much of the file the sniffers see


@dataclass(frozen=True)
class Format:
    """A model format: its front-end module name, what to call it, its usual file
    extensions, and a test on the file's first bytes (None: recognised by extension only)."""

    name: str
    title: str
    extensions: tuple[str, ...]
    sniff: Callable[[bytes], bool] | None
    # `load(path, **opts)` for formats Timber reads itself (textual IR); None: the front-end
    # module `timber.frontends.<name>`.
    load: Callable | None = None


def _text(head: bytes) -> str | None:
    """The head as text if it looks like text (a cut multi-byte character at the end is fine)."""
    if b"\x00" in head:
        return None
    try:
        return head.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        if e.start >= len(head) - 4:
            return head[: e.start].decode("utf-8-sig", errors="strict")
        return None


def _json_keys_head(head: bytes) -> str | None:
    t = _text(head)
    if t is None:
        return None
    t = t.lstrip()
    return t if t.startswith("{") else None


def _sniff_xgboost(head: bytes) -> bool:
    if len(head) > 2 and head[:1] == b"{" and head[1:2] in (b"i", b"U", b"I", b"l", b"L") and b"learner" in head[:64]:
        return True  # UBJSON: `{` then the length-prefixed key "learner"
    if head.startswith(b"binf"):
        return True  # a legacy binary model; the front-end explains how to convert it
    t = _json_keys_head(head)
    if t is None:
        return False
    first_key = t[1:].lstrip().startswith('"learner"')  # XGBoost writes its keys sorted: "learner", "version"
    return first_key or ('"learner"' in t and ('"gradient_booster"' in t or '"learner_model_param"' in t))


def _sniff_lightgbm(head: bytes) -> bool:
    t = _text(head)
    if t is None:
        return False
    lines = t.lstrip().splitlines()
    return (
        bool(lines)
        and lines[0].strip() == "tree"
        and any(ln.startswith(("version=", "num_class=", "max_feature_idx=")) for ln in lines[1:8])
    )


def _sniff_catboost(head: bytes) -> bool:
    if head.startswith(b"CBM1"):
        return True
    t = _json_keys_head(head)
    if t is None:
        return False
    if t[1:].lstrip().startswith('"ctr_data"'):
        return True  # CatBoost writes its keys sorted: a model with CTRs starts with its tables
    return any(k in t for k in ('"oblivious_trees"', '"features_info"', '"model_info"', '"scale_and_bias"'))


def _sniff_onnx(head: bytes) -> bool:
    # ModelProto: field 1 (ir_version, varint) comes first, then producer/graph/opset fields.
    return len(head) > 3 and head[0] == 0x08 and 1 <= head[1] <= 64 and head[2] in (0x12, 0x1A, 0x22, 0x28, 0x32, 0x3A, 0x42)


def _sniff_sklearn(head: bytes) -> bool:
    """A pickle (protocol 2..5), a compressed joblib file whose content starts as one, or a
    skops zip (it holds a `schema.json`)."""
    if len(head) > 2 and head[0] == 0x80 and 2 <= head[1] <= 5:
        return True
    if head.startswith(b"PK\x03\x04"):
        return b"schema.json" in head
    if head.startswith(b"ZF0x"):
        return True  # joblib < 0.10's zlib container (refused with advice by the front-end)
    try:
        start = _decompressed_start(head)
    except Exception:  # noqa: BLE001  (corrupt data: not recognisably ours)
        return False
    return start is not None and len(start) > 2 and start[0] == 0x80 and 2 <= start[1] <= 5


def _decompressed_start(head: bytes) -> bytes | None:
    """The first bytes of a zlib, gzip, bz2, xz or lzma stream (joblib's compressors); None if
    `head` starts with none of their magic numbers."""
    import bz2
    import lzma
    import zlib

    if head[:1] == b"\x78" and head[1:2] in (b"\x01", b"\x5e", b"\x9c", b"\xda"):
        return zlib.decompressobj().decompress(head, 16)
    if head.startswith(b"\x1f\x8b"):
        return zlib.decompressobj(wbits=31).decompress(head, 16)
    if head.startswith(b"\xfd7zXZ\x00") or head.startswith(b"\x5d\x00\x00"):
        return lzma.LZMADecompressor().decompress(head, 16)
    if head.startswith(b"BZh"):
        return bz2.BZ2Decompressor().decompress(head)[:16] or b"\x80\x02"  # bz2 emits nothing before a whole block
    if head.startswith(b"\x04\x22\x4d\x18"):
        return b"\x80\x02"  # lz4 frame (joblib's lz4 compressor)
    return None


def _sniff_urdf(head: bytes) -> bool:
    t = _text(head)
    return t is not None and t.lstrip().startswith("<") and "<robot" in t


IR_SUFFIXES = (".tir", ".mlir")
# Textual IR starts (after comments and blank lines) with a module or a function, in the custom
# or the generic form.
_IR_START = re.compile(r'(?:(?:module|builtin\.module|func\.func)(?![\w.$-])|"(?:builtin\.module|func\.func)")')


def _sniff_ir(head: bytes) -> bool:
    t = _text(head)
    if t is None:
        return False
    pos = 0
    while True:
        while pos < len(t) and t[pos].isspace():
            pos += 1
        if not t.startswith("//", pos):
            return _IR_START.match(t, pos) is not None
        nl = t.find("\n", pos)
        if nl < 0:
            return False
        pos = nl + 1


def load_ir(path, **opts):
    """Parse and verify a textual IR file (`ir.parser.parse_module`, `ir.verifier.verify`).

    The module is taken as written: its attributes (or their absence: a hand-written module
    needs no `timber.format`) are kept.  Errors are located `path:line:col` with the source line."""
    path = os.fspath(path)
    where = NameLoc(path, "")
    if opts:
        raise TimberError(f"textual IR takes no load options, found: {', '.join(sorted(opts))}", where)
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError as e:
        raise TimberError(f"cannot read {path}: {e.strerror}", where) from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise TimberError(f"{path} is not UTF-8 text (byte {e.start}); textual IR is UTF-8", where) from None
    from ir.parser import parse_module
    from ir.verifier import verify

    module = parse_module(text, path)
    try:
        verify(module)
    except VerifyError as e:
        d = e.diagnostic
        line = getattr(d.location, "line", None)
        if d.source_line is not None or line is None:
            raise
        raise VerifyError(d.message, d.location, source_line_of(text, line), d.notes) from None
    return module


FORMATS: tuple[Format, ...] = (
    Format("xgboost", "XGBoost", (".json", ".ubj", ".model", ".bin", ".bst", ".xgb"), _sniff_xgboost),
    Format("lightgbm", "LightGBM", (".txt", ".model", ".lgb", ".lgbm"), _sniff_lightgbm),
    Format("catboost", "CatBoost", (".cbm", ".json"), _sniff_catboost),
    Format("onnx", "ONNX", (".onnx",), _sniff_onnx),
    Format("sklearn", "scikit-learn", (".pkl", ".pickle", ".joblib", ".skops"), _sniff_sklearn),
    Format("urdf", "URDF", (".urdf",), _sniff_urdf),
    Format("tir", "Timber IR (text)", IR_SUFFIXES, _sniff_ir, load_ir),
)


def supported_formats() -> list[str]:
    """Formats whose front-end module is present in this installation (textual IR, read by
    Timber itself, is always readable and not listed)."""
    return [f.name for f in FORMATS if importlib.util.find_spec(f"timber.frontends.{f.name}") is not None]


def detect_format(path) -> str:
    """The format name (`xgboost`, `lightgbm`, `catboost`, `onnx`, `sklearn`, `urdf`, `tir`) of a model file.

    The file's content decides; the extension only breaks ties and names files no sniffer
    recognises (e.g. a legacy XGBoost `.model`, or a `.tir` file that the IR parser will then
    report on).  Raises `TimberError` naming the file when it is missing, unreadable, or
    matches no format or several."""
    path = os.fspath(path)
    where = NameLoc(path, "")
    if not os.path.exists(path):
        raise TimberError(f"no such file: {path}", where)
    if os.path.isdir(path):
        raise TimberError(f"{path} is a directory, not a model file", where)
    try:
        with open(path, "rb") as fh:
            head = fh.read(_HEAD)
    except OSError as e:
        raise TimberError(f"cannot read {path}: {e.strerror}", where) from None
    if not head.strip():
        raise TimberError(f"{path} is empty", where)
    ext = os.path.splitext(path)[1].lower()
    hits = [f for f in FORMATS if f.sniff is not None and f.sniff(head)]
    if len(hits) > 1:
        by_ext = [f for f in hits if ext in f.extensions]
        hits = by_ext if len(by_ext) == 1 else hits
    if len(hits) == 1:
        return hits[0].name
    if len(hits) > 1:
        raise TimberError(f"cannot tell the format of {path}: it looks like {' and '.join(f.title for f in hits)}", where)
    if ext in (".model", ".bin", ".bst", ".xgb") and _text(head) is None:
        return "xgboost"  # unrecognised binary with an XGBoost extension: legacy binary, rejected with advice
    if ext in IR_SUFFIXES:
        return "tir"  # not recognisably IR: the parser says where and why
    known = ", ".join(f"{f.title} ({' '.join(f.extensions)})" for f in FORMATS)
    raise TimberError(f"cannot tell which framework wrote {path}; recognised formats: {known}", where)


def load_model(path, **opts):
    """Detect the format of `path` and load it with its front-end into a verified module."""
    name = detect_format(path)
    fmt = next(f for f in FORMATS if f.name == name)
    if fmt.load is not None:
        return fmt.load(os.fspath(path), **opts)
    if importlib.util.find_spec(f"timber.frontends.{name}") is None:
        have = ", ".join(supported_formats()) or "none"
        raise TimberError(f"{fmt.title} models are not supported yet; supported: {have}", NameLoc(os.fspath(path), ""))
    module = importlib.import_module(f"timber.frontends.{name}")
    check_options(module.load, fmt.title, opts, NameLoc(os.fspath(path), ""))
    return module.load(os.fspath(path), **opts)


def check_options(load: Callable, title: str, opts: dict, where=None) -> None:
    """Refuse front-end options `load` does not take, naming the ones it does (a front-end
    taking `**options` checks its own)."""
    import inspect

    params = inspect.signature(load).parameters.values()
    if any(p.kind is p.VAR_KEYWORD for p in params):
        return
    known = [p.name for p in params if p.kind is p.KEYWORD_ONLY and p.name != "source_name"]
    unknown = sorted(set(opts) - set(known) - {"source_name"})
    if unknown:
        takes = f"it takes: {', '.join(known)}" if known else "it takes none"
        raise TimberError(f"{title} models take no option {', '.join(repr(u) for u in unknown)}; {takes}", where)


__all__ = ["FORMATS", "IR_SUFFIXES", "Format", "check_options", "detect_format", "load_ir", "load_model", "supported_formats"]
