"""Compiled-model artifacts: a compiled model as bytes that load back without recompiling.

An artifact holds the verified IR (text), the host object code MCJIT produced for it (with the
target triple, CPU name and features it was compiled for), the exported entry points, the
options (`n_jobs`, `math`, `prefix`) and metadata (format, objective, features, source file
checksum, Timber version).  It is what the model store keeps on disk (`timber/store.py`), what
`pickle` carries to Dask/Ray/Spark workers (`CompiledModel.__reduce__`), and what the server
loads at start.

    data = to_artifact(model)          # bytes
    model = from_artifact(data)        # object code straight into the JIT: milliseconds

Loading checks, in order: the magic bytes, the format version, the SHA-256 of the whole
container, then every header field.  Damaged, truncated or foreign bytes raise a `TimberError`
saying what is wrong; nothing in them is run.  The object code is then loaded when this CPU has
every feature it was compiled for; otherwise the model is recompiled from the IR (once per
process: `_JIT_CACHE`).

The checksum detects damage, not forgery: object code is native code, so an artifact is trusted
as much as a shared library.  `from_artifact(data, trust_code=False)` never loads the object
code: it recompiles from the IR, which is parsed and verified like any model file.

Container layout (all integers little-endian):

    magic    8 bytes   b"\\x89TIMBER\\n"
    version  u32       FORMAT_VERSION
    hlen     u32       length of the header
    header   hlen      UTF-8 JSON (below)
    payload  ...       the sections, each compressed as the header says
    digest   32 bytes  SHA-256 of everything before it

The header's "sections" maps a name ("ir", "object") to [offset into the payload, stored
length, codec ("zlib" or "raw"), length once decoded].

Pickles: `loads(data)` / `timber.load_pickle(path_or_bytes)` unpickle with an `Unpickler` that
allows one global, `timber.artifact.from_artifact`; a pickle naming anything else is refused
before it is run.  (Plain `pickle.loads` of a model pickle calls only `from_artifact` too, but it
cannot stop a tampered pickle from naming other globals: use `loads` for bytes you did not make.)
"""

from __future__ import annotations

import hashlib
import io
import json
import pickle
import struct
import threading
import time
import zlib
from collections import OrderedDict
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from ir.diagnostics import TimberError
from timber.api import CompiledModel

MAGIC = b"\x89TIMBER\n"
FORMAT_VERSION = 1
DIGEST_BYTES = 32
MAX_DECODED = 4 << 30  # no section of a real model is near 4 GiB: refuse to inflate past it
DTYPES = {"float32": np.float32, "float64": np.float64}
CODECS = ("zlib", "raw")
_PREFIX = struct.Struct("<8sII")

# Compiled code shared by every model loaded from the same artifact bytes in this process (a
# Dask task unpickles its model again and again): "digest:object|ir" -> (artifact, lowered, jit).  Recompiling from
# the IR when this CPU lacks the object code's features therefore happens once per process.
_JIT_CACHE: OrderedDict[str, tuple] = OrderedDict()
_JIT_CACHE_SIZE = 8
_JIT_LOCK = threading.Lock()


class ArtifactError(TimberError):
    """Bytes that are not a loadable artifact (damaged, truncated, foreign, or too new)."""


# ----- writing --------------------------------------------------------------------------------


def to_artifact(model, *, source: str | Path | None = None, codec: str = "zlib", level: int = 6) -> bytes:
    """The artifact bytes of a `CompiledModel`.  `source`: the model file it was compiled from
    (its SHA-256 is recorded; default: the checksum a loaded artifact already carries)."""
    if codec not in CODECS:
        raise TimberError(f"unknown artifact codec '{codec}'; choose one of: {', '.join(CODECS)}")
    # Pickling a model again (every Dask graph that uses it) gives the same bytes, made once:
    # printing a 1000-tree forest's IR takes a second.
    key = (model.n_jobs, str(source) if source is not None else None, codec, level)
    cached = model.__dict__.get("_artifact_cache")
    if cached is not None and cached[0] == key:
        return cached[1]
    data = _to_artifact(model, source, codec, level)
    model.__dict__["_artifact_cache"] = (key, data)
    return data


def _to_artifact(model, source, codec: str, level: int) -> bytes:
    from ir.printer import print_op

    stored = getattr(model, "_artifact_header", None)
    ir_text = model._ir_text if isinstance(model, StoredModel) else print_op(model.module)
    obj = model.jit.object_code
    if obj is None:
        obj = _emit_object(model)
    target = model.jit.target
    meta = dict(stored["metadata"]) if stored else _metadata(model.module)
    if source is not None:
        meta["source"] = Path(source).name
        meta["source_path"] = str(Path(source).resolve())
        meta["source_sha256"] = _file_sha256(source)
    from timber import __version__

    header = {
        "timber_version": __version__,
        # when the model was compiled: a re-pickled loaded model keeps its artifact's date
        "created": stored["created"] if stored else time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "metadata": meta,
        "options": {"n_jobs": model.n_jobs, "math": "libm" if target.libm else "timber", "prefix": model.prefix},
        "target": {
            "triple": target.triple,
            "cpu": target.cpu,
            "features": target.features,
            "lanes": target.lanes,
            "permute": target.permute,
            "block_rows": target.block_rows,
            "small": target.small,
            "libm": target.libm,
            "split_gathers": target.split_gathers,
            "bitvectors": target.bitvectors,
        },
        "opt": model.jit.opt,
        "exports": [
            {
                "symbol": e.symbol,
                "func": e.func,
                "n_inputs": e.n_inputs,
                "n_outputs": e.n_outputs,
                "in_dtype": np.dtype(e.in_dtype).name,
                "out_dtype": np.dtype(e.out_dtype).name,
                "single": e.single,
            }
            for e in model.lowered.exports
        ],
        "block_rows": model.lowered.block_rows,
        "cost_per_row": model.lowered.cost_per_row,
        "kernels": model.lowered.kernels,
    }
    sections, payload = {}, io.BytesIO()
    for name, raw in (("ir", ir_text.encode("utf-8")), ("object", obj)):
        data = zlib.compress(raw, level) if codec == "zlib" else bytes(raw)
        sections[name] = [payload.tell(), len(data), codec, len(raw)]
        payload.write(data)
    header["sections"] = sections
    head = json.dumps(header, sort_keys=True, separators=(",", ":")).encode("utf-8")
    body = _PREFIX.pack(MAGIC, FORMAT_VERSION, len(head)) + head + payload.getvalue()
    return body + hashlib.sha256(body).digest()


def _metadata(module) -> dict:
    """What a store lists about a model, from the module's discardable `timber.*` attributes."""
    meta = {}
    for key, attr in module.attributes.items():
        if key.startswith("timber."):
            meta[key[len("timber.") :]] = _attr_json(attr)
    return meta


def _attr_json(a):
    from ir.attributes import ArrayAttr, BoolAttr, DictAttr, FloatAttr, IntegerAttr, StringAttr

    if isinstance(a, (StringAttr, IntegerAttr, BoolAttr)):
        return a.value
    if isinstance(a, FloatAttr):
        return a.value if np.isfinite(a.value) else str(a)
    if isinstance(a, ArrayAttr):
        return [_attr_json(x) for x in a]
    if isinstance(a, DictAttr):
        return {k: _attr_json(v) for k, v in sorted(a.entries.items())}
    return str(a)


def _file_sha256(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _emit_object(model) -> bytes:
    """Object code for a model whose engine did not report one: codegen again from its LLVM IR."""
    from backends.llvm.jit import optimize
    from backends.llvm.target import target_machine

    tm = target_machine(model.jit.target, model.jit.opt)
    return tm.emit_object(optimize(model.lowered.text, tm, model.jit.opt))


# ----- reading --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Artifact:
    """A checked artifact: its header, its sections decoded, and its digest (hex)."""

    header: dict
    ir_text: str
    object_code: bytes
    digest: str

    @property
    def metadata(self) -> dict:
        return self.header["metadata"]

    def summary(self) -> dict:
        """What `timber inspect` prints: metadata, options, target, entry points, sizes."""
        h = self.header
        predict = next(e for e in h["exports"] if e["symbol"] == h["options"]["prefix"] + "infer")
        return {
            **{k: v for k, v in h["metadata"].items()},
            "n_features": predict["n_inputs"],
            "n_outputs": predict["n_outputs"],
            "input_dtype": predict["in_dtype"],
            "output_dtype": predict["out_dtype"],
            "functions": sorted({e["func"] for e in h["exports"]}),
            "timber_version": h["timber_version"],
            "created": h["created"],
            "options": h["options"],
            "target": {k: h["target"][k] for k in ("triple", "cpu")},
            "ir_bytes": len(self.ir_text.encode("utf-8")),
            "object_bytes": len(self.object_code),
            "sha256": self.digest,
        }


def read_artifact(data: bytes, what: str = "artifact") -> Artifact:
    """Check and decode artifact bytes.  `what` names them in errors (a store entry's name)."""
    data = memoryview(data).cast("B") if not isinstance(data, bytes) else data
    if len(data) < _PREFIX.size + DIGEST_BYTES:
        raise ArtifactError(f"{what}: not a Timber artifact (only {len(data)} bytes)")
    magic, version, hlen = _PREFIX.unpack_from(data, 0)
    if magic != MAGIC:
        raise ArtifactError(f"{what}: not a Timber artifact (it does not start with Timber's magic bytes)")
    if version != FORMAT_VERSION:
        newer = "a newer" if version > FORMAT_VERSION else "an older"
        raise ArtifactError(
            f"{what}: artifact format version {version}, made by {newer} Timber; this Timber reads version {FORMAT_VERSION}",
            notes=["compile the model again with this Timber"],
        )
    body = data[:-DIGEST_BYTES]
    digest = hashlib.sha256(body)
    if digest.digest() != bytes(data[-DIGEST_BYTES:]):
        raise ArtifactError(f"{what}: checksum mismatch: the artifact is damaged or truncated")
    start = _PREFIX.size + hlen
    if start > len(body):
        raise ArtifactError(f"{what}: header length {hlen} runs past the end of the artifact")
    try:
        header = json.loads(bytes(body[_PREFIX.size : start]).decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise ArtifactError(f"{what}: unreadable header ({e})") from None
    _check_header(header, what)
    payload = memoryview(body)[start:]
    decoded = {name: _section(payload, header["sections"][name], name, what) for name in ("ir", "object")}
    try:
        ir_text = decoded["ir"].decode("utf-8")
    except UnicodeDecodeError:
        raise ArtifactError(f"{what}: the IR section is not UTF-8 text") from None
    return Artifact(header, ir_text, decoded["object"], digest.hexdigest())


def _section(payload: memoryview, entry, name: str, what: str) -> bytes:
    offset, length, codec, size = entry
    if offset + length > len(payload):
        raise ArtifactError(f"{what}: section '{name}' runs past the end of the artifact")
    raw = payload[offset : offset + length]
    if codec == "raw":
        out = bytes(raw)
    else:
        d = zlib.decompressobj()
        try:
            out = d.decompress(raw, size + 1)
        except zlib.error as e:
            raise ArtifactError(f"{what}: section '{name}' does not decompress ({e})") from None
    if len(out) != size:
        raise ArtifactError(f"{what}: section '{name}' holds {len(out)} bytes, its header says {size}")
    return out


def _check_header(h, what: str) -> None:
    """Every field a loader relies on, with its type: a header that passes cannot crash loading."""

    def bad(field: str, expected: str):
        return ArtifactError(f"{what}: header field '{field}' is missing or not {expected}")

    def need(obj, key: str, kind, expected: str, path: str):
        v = obj.get(key) if isinstance(obj, dict) else None
        # bool is an int in Python; in a header it is only ever a boolean
        if not isinstance(v, kind) or (isinstance(v, bool) and kind is not bool):
            raise bad(path + key, expected)
        return v

    if not isinstance(h, dict):
        raise bad("(header)", "an object")
    need(h, "timber_version", str, "a string", "")
    need(h, "created", str, "a string", "")
    need(h, "metadata", dict, "an object", "")
    opts = need(h, "options", dict, "an object", "")
    if opts.get("n_jobs") is not None and (not isinstance(opts["n_jobs"], int) or isinstance(opts["n_jobs"], bool)):
        raise bad("options.n_jobs", "an integer or null")
    if opts.get("math") not in ("libm", "timber"):
        raise bad("options.math", "'libm' or 'timber'")
    prefix = need(opts, "prefix", str, "a string", "options.")
    t = need(h, "target", dict, "an object", "")
    for key in ("triple", "cpu", "features"):
        need(t, key, str, "a string", "target.")
    need(t, "lanes", int, "an integer", "target.")
    for key in ("small", "libm"):
        need(t, key, bool, "a boolean", "target.")
    if t.get("permute") not in (None, "avx2", "avx512"):
        raise bad("target.permute", "null, 'avx2' or 'avx512'")
    if t.get("block_rows") is not None and not isinstance(t["block_rows"], int):
        raise bad("target.block_rows", "an integer or null")
    need(h, "opt", int, "an integer", "")
    need(h, "block_rows", int, "an integer", "")
    need(h, "cost_per_row", int, "an integer", "")
    if h["block_rows"] < 1:
        raise bad("block_rows", "a positive integer")
    exports = need(h, "exports", list, "a list", "")
    for i, e in enumerate(exports):
        p = f"exports[{i}]."
        need(e, "symbol", str, "a string", p)
        need(e, "func", str, "a string", p)
        for key in ("n_inputs", "n_outputs"):
            if need(e, key, int, "an integer", p) < 0:
                raise bad(p + key, "a count")
        for key in ("in_dtype", "out_dtype"):
            if need(e, key, str, "a string", p) not in DTYPES:
                raise bad(p + key, "'float32' or 'float64'")
        need(e, "single", bool, "a boolean", p)
    if not any(e["symbol"] == prefix + "infer" for e in exports):
        raise ArtifactError(f"{what}: the artifact exports no {prefix}infer entry point")
    sections = need(h, "sections", dict, "an object", "")
    for name in ("ir", "object"):
        s = sections.get(name)
        ok = isinstance(s, list) and len(s) == 4 and s[2] in CODECS
        ok = ok and all(isinstance(s[i], int) and not isinstance(s[i], bool) and s[i] >= 0 for i in (0, 1, 3))
        if not ok or s[3] > MAX_DECODED:
            raise bad(f"sections.{name}", "[offset, length, codec, size]")


# ----- loading into the JIT -------------------------------------------------------------------


def from_artifact(data: bytes, *, trust_code: bool = True, what: str = "artifact", n_jobs="stored"):
    """A `CompiledModel` from artifact bytes.  The object code is loaded into the JIT when this
    CPU has every feature it was compiled for (and `trust_code`); otherwise the model is
    recompiled from the stored IR, once per process.  `n_jobs`: threads for `predict`
    (default: the stored option)."""
    art = data if isinstance(data, Artifact) else _cached_artifact(data) or read_artifact(data, what)
    lowered, jit = _jit_for(art, trust_code, what)
    h = art.header
    model = StoredModel(art, lowered, jit, h["options"]["n_jobs"] if n_jobs == "stored" else n_jobs)
    if n_jobs == "stored" and isinstance(data, (bytes, bytearray)):
        # pickled again (a worker forwarding it, Ray, Spark): these very bytes, not a re-encoding
        model.__dict__["_loaded_bytes"] = (model.n_jobs, bytes(data))
    return model


def _cached_artifact(data) -> Artifact | None:
    """The decoded artifact of bytes already loaded in this process (a Dask task unpickles the
    same model again and again): their checksum is all that is recomputed."""
    if not isinstance(data, (bytes, bytearray)) or len(data) < _PREFIX.size + DIGEST_BYTES:
        return None
    digest = hashlib.sha256(memoryview(data)[:-DIGEST_BYTES]).digest()
    if digest != bytes(data[-DIGEST_BYTES:]):
        return None  # read_artifact says what is wrong
    with _JIT_LOCK:
        for key, (art, _lowered, _jit) in _JIT_CACHE.items():
            if key.startswith(digest.hex() + ":"):
                return art
    return None


def runs_here(target: dict) -> bool:
    """Whether object code for `target` (an artifact's target field) runs on this CPU: the same
    triple, and every feature it was compiled with enabled here.  (The CPU name only tunes
    scheduling; the features are what the code may use.)"""
    from backends.llvm.target import host_target

    host = host_target()
    if target["triple"] != host.triple:
        return False
    have = {f[1:] for f in host.features.split(",") if f.startswith("+")}
    need = {f[1:] for f in target["features"].split(",") if f.startswith("+")}
    return need <= have


def _jit_for(art: Artifact, trust_code: bool, what: str):
    key = f"{art.digest}:{'object' if trust_code else 'ir'}"
    with _JIT_LOCK:
        hit = _JIT_CACHE.get(key)
        if hit is not None:
            _JIT_CACHE.move_to_end(key)
            return hit[1:]
    if trust_code and runs_here(art.header["target"]):
        built = _load_object(art, what)
    else:
        built = _recompile(art, what)
    with _JIT_LOCK:
        _JIT_CACHE[key] = (art, *built)
        while len(_JIT_CACHE) > _JIT_CACHE_SIZE:
            _JIT_CACHE.popitem(last=False)
    return built


def _stored_target(t: dict):
    from backends.llvm.target import TargetInfo

    return TargetInfo(
        t["triple"],
        t["cpu"],
        t["features"],
        t["lanes"],
        t["permute"],
        t["block_rows"],
        t["small"],
        t["libm"],
        t.get("split_gathers", False),
        t.get("bitvectors", False),
    )


def _load_object(art: Artifact, what: str):
    from backends.llvm.jit import load_object

    h = art.header
    t = h["target"]
    target = _stored_target(t)
    lowered = StoredLowered(h, art)
    try:
        jit = load_object(art.object_code, lowered, target, h["opt"])
    except (RuntimeError, ValueError, OSError) as e:
        raise ArtifactError(f"{what}: the object code does not load ({e})") from None
    return lowered, jit


def _recompile(art: Artifact, what: str):
    """Lower and JIT the stored IR for this CPU (its triple or features differ from the object's)."""
    from backends.llvm.jit import compile_lowered
    from backends.llvm.lower import lower_module
    from backends.llvm.target import host_target

    module = _parse(art, what)
    opts = art.header["options"]
    target = replace(host_target(), libm=opts["math"] == "libm")
    t0 = time.perf_counter()
    lowered = lower_module(module, target, opts["prefix"])
    jit = compile_lowered(lowered, target)
    jit.timings["recompile"] = time.perf_counter() - t0
    _check_exports(art.header, lowered, what)
    return lowered, jit


def _parse(art: Artifact, what: str):
    from ir.parser import parse_module
    from ir.verifier import verify

    try:
        module = parse_module(art.ir_text, f"{what}:ir")
        verify(module)
    except TimberError as e:
        raise ArtifactError(f"{what}: the stored IR does not parse and verify: {e.render()}") from None
    return module


def _check_exports(h: dict, lowered, what: str) -> None:
    stored = {(e["symbol"], e["n_inputs"], e["n_outputs"], e["in_dtype"], e["out_dtype"]) for e in h["exports"]}
    built = {(e.symbol, e.n_inputs, e.n_outputs, np.dtype(e.in_dtype).name, np.dtype(e.out_dtype).name) for e in lowered.exports}
    if stored != built:
        raise ArtifactError(f"{what}: the stored IR does not match the artifact's entry points")


class StoredLowered:
    """Stands in for `backends.llvm.lower.Lowered` for a model loaded from an artifact: the
    entry points and threading figures come from the header; the LLVM text is produced (by
    lowering the stored IR again) only if someone asks for it."""

    def __init__(self, header: dict, art: Artifact):
        from backends.llvm.lower import Export

        self.exports = [
            Export(
                e["symbol"],
                e["func"],
                e["n_inputs"],
                e["n_outputs"],
                np.dtype(DTYPES[e["in_dtype"]]),
                np.dtype(DTYPES[e["out_dtype"]]),
                e["single"],
            )
            for e in header["exports"]
        ]
        self.block_rows = header["block_rows"]
        self.cost_per_row = header["cost_per_row"]
        kernels = header.get("kernels")  # artifacts written before the field existed lack it
        self.kernels = kernels if isinstance(kernels, str) else "not recorded in this artifact"
        self.plans = []
        self._art = art
        self._text = None

    def export(self, symbol: str):
        return next((e for e in self.exports if e.symbol == symbol), None)

    @property
    def text(self) -> str:
        if self._text is None:
            from backends.llvm.lower import lower_module

            t = self._art.header["target"]
            target = _stored_target(t)
            self._text = lower_module(_parse(self._art, "artifact"), target, self._art.header["options"]["prefix"]).text
        return self._text


class _ModuleHead:
    """The module attributes of a stored model (`timber.*`, rebuilt from the artifact's
    metadata), standing in for the module until its IR is parsed."""

    def __init__(self, metadata: dict):
        self.attributes = {"timber." + k: _json_attr(v) for k, v in metadata.items() if not k.startswith("source_")}


def _json_attr(v):
    from ir.attributes import ArrayAttr, BoolAttr, FloatAttr, IntegerAttr, StringAttr

    if isinstance(v, bool):
        return BoolAttr(v)
    if isinstance(v, int):
        return IntegerAttr(v)
    if isinstance(v, float):
        return FloatAttr(v)
    if isinstance(v, list):
        return ArrayAttr([_json_attr(x) for x in v])
    return StringAttr(str(v))


class StoredModel(CompiledModel):
    """A `CompiledModel` loaded from an artifact.  Its IR is parsed only when `module` is first
    used (a 1000-tree forest takes seconds to parse; predicting needs none of it)."""

    def __init__(self, art: Artifact, lowered, jit, n_jobs):
        self._artifact_header = art.header
        self._ir_text = art.ir_text
        self._art = art
        self._module = None
        # CompiledModel.__init__ reads the module's attributes; the IR itself is parsed only if asked for
        head = _ModuleHead(art.header["metadata"])
        super().__init__(head, lowered, jit, n_jobs=n_jobs, timings=dict(jit.timings), prefix=art.header["options"]["prefix"])

    @property
    def module(self):
        if self._module is None:
            self._module = _parse(self._art, "artifact")
        return self._module

    @module.setter
    def module(self, value):
        if not isinstance(value, _ModuleHead):
            self._module = value

    @property
    def feature_names(self) -> list[str] | None:
        names = self.metadata.get("feature_names")
        return list(names) if isinstance(names, list) else None

    @property
    def ir(self) -> str:
        return self._ir_text

    @property
    def metadata(self) -> dict:
        """The artifact's metadata (format, objective, features, source checksum, ...)."""
        return self._artifact_header["metadata"]

    def __repr__(self) -> str:
        fmt = self.metadata.get("format")
        kind = f"{fmt} " if isinstance(fmt, str) else ""
        return f"<CompiledModel {kind}model: {self.n_features} features -> {self.n_outputs} outputs>"

    def __reduce__(self):
        return reduce_compiled_model(self)


# ----- pickles --------------------------------------------------------------------------------


def reduce_compiled_model(model):
    """`CompiledModel.__reduce__`: unpickling calls `from_artifact(bytes)` and nothing else.  A
    model loaded from artifact bytes (and its options unchanged) pickles as those bytes."""
    loaded = model.__dict__.get("_loaded_bytes")
    if loaded is not None and loaded[0] == model.n_jobs:
        return (from_artifact, (loaded[1],))
    return (from_artifact, (to_artifact(model),))


_ALLOWED_GLOBALS = {
    ("timber.artifact", "from_artifact"),
    # protocols 0-2 write bytes objects as `_codecs.encode(text, "latin1")`
    ("_codecs", "encode"),
}


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickles Timber model pickles (and plain containers of them), nothing else."""

    def find_class(self, module: str, name: str):
        if (module, name) not in _ALLOWED_GLOBALS:
            raise TimberError(
                f"refusing to unpickle: the pickle names {module}.{name}; a Timber model pickle may only name timber.artifact.from_artifact"
            )
        return super().find_class(module, name)


def loads(data: bytes):
    """Unpickle bytes made by `pickle.dumps(model)` through `RestrictedUnpickler`: a pickle that
    names any other global is refused without running it; damaged artifact bytes inside fail
    their checksum."""
    try:
        return RestrictedUnpickler(io.BytesIO(data)).load()
    except TimberError:
        raise
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, IndexError, KeyError, struct.error) as e:
        raise TimberError(f"not a Timber model pickle ({type(e).__name__}: {e})") from None


def load_pickle(path_or_bytes):
    """`loads` for bytes, or for the contents of a file path."""
    if isinstance(path_or_bytes, (bytes, bytearray, memoryview)):
        return loads(bytes(path_or_bytes))
    p = Path(path_or_bytes)
    if not p.exists():
        raise TimberError(f"{p}: no such file")
    try:
        return loads(p.read_bytes())
    except TimberError as e:
        raise TimberError(f"{p}: {e.render()}") from None


def dumps(model, protocol: int = pickle.HIGHEST_PROTOCOL) -> bytes:
    """`pickle.dumps` of a compiled model (the artifact inside it, nothing else)."""
    return pickle.dumps(model, protocol=protocol)


def load_file(path, **kw):
    """A model from an artifact file (what the store writes)."""
    p = Path(path)
    return from_artifact(p.read_bytes(), what=kw.pop("what", str(p)), **kw)


def save_file(model, path, **kw) -> int:
    """Write `model`'s artifact to `path` atomically (a temporary file, then rename); returns its size."""
    from timber.store import atomic_write

    data = to_artifact(model, **kw)
    atomic_write(Path(path), data)
    return len(data)


__all__ = ["Artifact", "ArtifactError", "from_artifact", "load_pickle", "loads", "read_artifact", "to_artifact"]
