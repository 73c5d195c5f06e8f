"""Reading scikit-learn model files without executing anything in them.

`read_file(path_or_bytes)` returns the pickled (or skops-saved) estimator as inert `Obj` records
(see `registry.py`); `from_estimator(est)` does the same for a live estimator.

A pickle is a program: its `GLOBAL`/`STACK_GLOBAL` opcodes import any name and `REDUCE` calls
it, which is how `__reduce__` payloads run `os.system`.  This unpickler (the pure-Python one of
the standard library, with its name lookup and its `BUILD` replaced) resolves names as follows:

* `sklearn.*`: an inert record class per name.  Calling it, `NEWOBJ` on it and `BUILD` on the
  instance only store the arguments and the state; no scikit-learn code runs (scikit-learn need
  not even be installed).  Whether the class is one Timber compiles is decided later, by the
  converter registry, which names the supported classes.
* numpy: array and scalar reconstruction (`_reconstruct` with a tiny shape, `ndarray.__setstate__`
  on what it made, `_frombuffer`, `scalar`), `dtype`, and the scalar types; every argument is
  checked before numpy sees it.  `numpy.random` generator state (a `random_state` parameter)
  becomes inert records too.
* joblib's `NumpyArrayWrapper`: the array bytes that follow it in the stream are read here,
  laid out as joblib writes them (`joblib/numpy_pickle.py`: an optional padding-length byte and
  padding, then the raw C- or Fortran-order data; object arrays as a nested pickle read by this
  same unpickler).
* `functools.partial` (HistGradientBoosting's preprocessor holds one) is an inert record too.
* builtins: only the container and number types (`slice`, `set`, `frozenset`, `bytearray`, ...),
  `copyreg._reconstructor` on records, `_codecs.encode` to latin-1 (how protocol 2 spells bytes),
  `collections.OrderedDict`.

Every other name is refused with an error naming it (`os.system`, `builtins.eval`,
`subprocess.Popen`, ...), before anything is called.  `known_global` is this allowlist, and the
one `read_skops` checks a skops file's untrusted types against (skops constructs what it loads,
so there only scikit-learn names the front-end knows and the harmless non-guarded names pass).  `BUILD` is allowed only on records,
arrays and dtypes.  File size, decompressed size, array sizes against the bytes left, and the
nesting of the result are bounded.
"""

from __future__ import annotations

import _compat_pickle
import bz2
import collections
import io
import lzma
import pickle
import struct
import zlib

import numpy as np

from ir.diagnostics import NameLoc, TimberError

from .registry import Obj

MAX_FILE_BYTES = 4 << 30  # a model file larger than this is refused
MAX_DECOMPRESSED_BYTES = 8 << 30  # a compressed joblib file may expand to at most this
MAX_DEPTH = 400  # nesting of records, containers and object arrays

# Names numpy has used for its pickle helpers across 1.x and 2.x.
_NP_RECONSTRUCT = {"numpy.core.multiarray._reconstruct", "numpy._core.multiarray._reconstruct"}
_NP_SCALAR = {"numpy.core.multiarray.scalar", "numpy._core.multiarray.scalar"}
_NP_FROMBUFFER = {"numpy.core.numeric._frombuffer", "numpy._core.numeric._frombuffer"}
_NP_UMATH = {"numpy.core._multiarray_umath", "numpy._core._multiarray_umath", "numpy.core.umath", "numpy._core.umath"}
_NP_ARRAY_TYPES = {"numpy.ndarray", "numpy.memmap", "numpy.core.memmap.memmap", "numpy._core.memmap.memmap"}
_BUILTIN_TYPES = {
    name: getattr(__import__("builtins"), name)
    for name in (
        "int",
        "float",
        "complex",
        "bool",
        "str",
        "bytes",
        "bytearray",
        "list",
        "tuple",
        "dict",
        "set",
        "frozenset",
        "slice",
        "object",
        "range",
    )
}
_OLD_JOBLIB = ("joblib.numpy_pickle.NDArrayWrapper", "joblib.numpy_pickle.ZNDArrayWrapper", "joblib.numpy_pickle_compat.NDArrayWrapper",
               "joblib.numpy_pickle_compat.ZNDArrayWrapper")  # fmt: skip


def sklearn_alias(full: str) -> str:
    """The scikit-learn name of a global some scikit-learn builds write under a bare module name:
    1.5's Cython losses (`sklearn._loss._loss.CyHalfGammaLoss`, held by GLMs, GradientBoosting and
    HistGradientBoosting) report `__module__ == "_loss"`, so their pickles say
    `_loss.__pyx_unpickle_CyHalfGammaLoss` and `_loss.CyHalfGammaLoss` (scikit-learn reads them
    back because importing it puts `_loss` in `sys.modules`).  Only those names; others unchanged."""
    module, _, name = full.rpartition(".")
    if module == "_loss" and (name.startswith("Cy") or name.startswith("__pyx_unpickle_Cy")):
        return f"sklearn._loss._loss.{name}"
    return full


# scikit-learn classes (and one function) that fitted estimators hold besides estimators, by
# short name: tree structures, HGB predictors and binners, neighbour trees and their metrics, MLP
# optimisers, label encoders, gradient-boosting and SGD losses of every version, GB `init_`.
SKLEARN_INTERNALS = frozenset(
    "Tree TreePredictor _BinMapper KDTree BallTree newObj EuclideanDistance EuclideanDistance64 ManhattanDistance "
    "ManhattanDistance64 MinkowskiDistance MinkowskiDistance64 ChebyshevDistance ChebyshevDistance64 AdamOptimizer "
    "SGDOptimizer LabelBinarizer LabelEncoder MissingIndicator OrdinalEncoder DummyClassifier DummyRegressor Bunch "
    "_RemainderColsList check_array LeastSquaresError LeastAbsoluteError HuberLossFunction QuantileLossFunction "
    "BinomialDeviance MultinomialDeviance ExponentialLoss Hinge SquaredHinge ModifiedHuber Log SquaredLoss Huber "
    "EpsilonInsensitive SquaredEpsilonInsensitive".split()
)
# what a skops file may name (beyond what skops trusts itself): see `read_skops`
SKOPS_TRUSTED_KINDS = ("estimator", "internal", "record", "value")


def known_global(full: str) -> str | None:
    """The allowlist of this front-end: what a global name in a model file is, or None when it
    is refused.  One list for both file formats:

    * "estimator": a scikit-learn class with a converter; "internal": one of `SKLEARN_INTERNALS`
      or of `sklearn._loss`; "sklearn": any other scikit-learn name — the unpickler keeps it as an
      inert record (never called) so that the converter registry names it, with its pipeline
      step, and lists what is supported; a skops file may not name it (skops would construct it).
    * "record": numpy ufuncs (`FunctionTransformer(func=np.log1p)`; numpy 1.x names them in
      `numpy.core._multiarray_umath`, read as `numpy.<name>`), `numpy.random` state,
      `functools.partial`: inert records in a pickle, names only.
    * "value": the builtin container and number types, numpy's scalar types and `dtype`,
      `OrderedDict`: harmless to call.
    * "guarded": numpy's array reconstruction (`ndarray`, `memmap`, `_reconstruct`,
      `_frombuffer`, `scalar`) and the protocol-0/2 helpers (`_codecs.encode`,
      `copyreg._reconstructor`): the unpickler replaces each by a stand-in that checks its
      arguments; a skops file may not name them (skops would call numpy's own).
    * "joblib": joblib's array wrappers (read by the unpickler itself)."""
    full = sklearn_alias(full)
    module, _, name = full.rpartition(".")
    if module == "sklearn" or module.startswith("sklearn."):
        from .registry import CONVERTERS

        if name in CONVERTERS:
            return "estimator"
        if name in SKLEARN_INTERNALS or module.startswith("sklearn._loss"):
            return "internal"
        return "sklearn"
    if full in _NP_RECONSTRUCT or full in _NP_ARRAY_TYPES or full in _NP_SCALAR or full in _NP_FROMBUFFER:
        return "guarded"
    if full in ("_codecs.encode", "copyreg._reconstructor"):
        return "guarded"
    if full == "numpy.dtype" or (module == "numpy.dtypes" and name.endswith("DType")):
        return "value"
    if module == "numpy" and "." not in name:
        t = getattr(np, name, None)
        if isinstance(t, type) and issubclass(t, np.generic):
            return "value"
        if isinstance(t, np.ufunc):
            return "record"
    if module in _NP_UMATH and isinstance(getattr(np, name, None), np.ufunc):
        return "record"  # numpy 1.x pickles a ufunc under its C module: `numpy.core._multiarray_umath.log1p`
    if module.startswith("numpy.random") or full == "functools.partial":
        return "record"
    if full == "joblib.numpy_pickle.NumpyArrayWrapper" or full in _OLD_JOBLIB:
        return "joblib"
    if (module == "builtins" and name in _BUILTIN_TYPES) or full == "collections.OrderedDict":
        return "value"
    return None


def _resolve(module: str, name: str):
    """What the unpickler gives for a "value" or "guarded" name (the checked stand-ins)."""
    full = f"{module}.{name}"
    if full in _NP_RECONSTRUCT:
        return _np_reconstruct
    if full in _NP_ARRAY_TYPES:
        return _NDArrayType
    if full in _NP_SCALAR:
        return _np_scalar
    if full in _NP_FROMBUFFER:
        return _np_frombuffer
    if full == "_codecs.encode":
        return _codecs_encode
    if full == "copyreg._reconstructor":
        return _copyreg_reconstructor
    if full == "numpy.dtype" or module == "numpy.dtypes":
        return _np_dtype
    if module == "numpy":
        return getattr(np, name)
    if full == "collections.OrderedDict":
        return collections.OrderedDict
    return _BUILTIN_TYPES[name]


class LoadError(TimberError):
    """A model file that cannot be read: refused globals, corrupt or truncated data."""


# ----- inert records --------------------------------------------------------------------------


class Record:
    """An instance of a pickled class, inert: it keeps what the pickle gave it and nothing else."""

    _cls = ""

    def __new__(cls, *args, **kwargs):
        self = object.__new__(cls)
        self._args = args + ((kwargs,) if kwargs else ())
        self._state = None
        self._items: list = []
        return self

    def __init__(self, *args, **kwargs):
        pass

    def __setstate__(self, state):
        self._state = state

    # SETITEMS / APPENDS on a dict or list subclass (e.g. sklearn's Bunch)
    def __setitem__(self, key, value):
        self._items.append((key, value))

    def append(self, value):
        self._items.append(value)

    def extend(self, values):
        self._items.extend(values)


class _ArrayWrapper(Record):
    """joblib's NumpyArrayWrapper: the array's metadata; its bytes follow in the stream."""

    _cls = "joblib.numpy_pickle.NumpyArrayWrapper"


class _NDArrayType:
    """Stands for `numpy.ndarray` in a pickle: only `_reconstruct` may use it."""

    def __new__(cls, *args, **kwargs):
        raise pickle.UnpicklingError("numpy.ndarray may only be rebuilt through numpy's _reconstruct")


def _int_shape(shape, what: str) -> tuple[int, ...]:
    if not isinstance(shape, tuple) or not all(isinstance(d, (int, np.integer)) and d >= 0 for d in shape) or len(shape) > 32:
        raise pickle.UnpicklingError(f"{what}: bad array shape {shape!r}")
    return tuple(int(d) for d in shape)


def _dtype_arg(dt, what: str) -> np.dtype:
    if not isinstance(dt, np.dtype):
        raise pickle.UnpicklingError(f"{what}: expected a numpy dtype, found {type(dt).__name__}")
    return dt


def _np_reconstruct(subtype, shape, typecode):
    """numpy's `_reconstruct(ndarray, (0,), b'b')`: an empty array that BUILD then fills."""
    if subtype is not _NDArrayType:
        raise pickle.UnpicklingError("numpy _reconstruct of something that is not an ndarray")
    if int(np.prod(_int_shape(shape, "_reconstruct"), dtype=np.int64)) > 16:
        raise pickle.UnpicklingError("numpy _reconstruct with a non-empty shape")
    if not isinstance(typecode, (str, bytes)) or len(typecode) != 1:
        raise pickle.UnpicklingError("numpy _reconstruct with a bad type code")
    return np.ndarray(shape, dtype=np.dtype(typecode if isinstance(typecode, str) else typecode.decode("latin-1")))


def _np_dtype(spec, align=False, copy=False):
    if not isinstance(spec, str) or len(spec) > 16:
        raise pickle.UnpicklingError(f"numpy dtype from {type(spec).__name__} {spec!r:.40}")
    return np.dtype(spec, align=bool(align), copy=bool(copy))


def _np_scalar(dtype, data=None):
    dtype = _dtype_arg(dtype, "numpy scalar")
    if dtype.hasobject:
        return data
    if not isinstance(data, (bytes, bytearray)) or len(data) != dtype.itemsize:
        raise pickle.UnpicklingError("numpy scalar with data of the wrong size")
    return np.frombuffer(bytes(data), dtype=dtype, count=1)[0]


def _np_frombuffer(buf, dtype, shape, order):
    dtype = _dtype_arg(dtype, "numpy _frombuffer")
    shape = _int_shape(shape, "_frombuffer")
    if not isinstance(buf, (bytes, bytearray, memoryview, pickle.PickleBuffer)) or order not in ("C", "F", "A", "K"):
        raise pickle.UnpicklingError("numpy _frombuffer with a bad buffer or order")
    if dtype.hasobject:
        raise pickle.UnpicklingError("numpy _frombuffer of an object array")
    mv = memoryview(buf)
    count = int(np.prod(shape, dtype=np.int64))
    if count * dtype.itemsize != mv.nbytes:
        raise pickle.UnpicklingError(f"array of shape {shape} and {dtype} needs {count * dtype.itemsize} bytes, found {mv.nbytes}")
    return np.frombuffer(mv, dtype=dtype).reshape(shape, order="F" if order == "F" else "C")


def _codecs_encode(text, encoding="utf-8"):
    """Protocol 2 writes `bytes` as `_codecs.encode(str, 'latin1')`."""
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise pickle.UnpicklingError("_codecs.encode is only allowed to make bytes from latin-1 text")
    return text.encode("latin-1")


def _copyreg_reconstructor(cls, base, state):
    """Protocol 0/1's `copyreg._reconstructor(cls, object, None)`, for records only."""
    if not (isinstance(cls, type) and issubclass(cls, Record)):
        raise pickle.UnpicklingError("copyreg._reconstructor is only allowed on scikit-learn classes")
    return cls() if base is object else cls(state)


class _SafeUnpickler(pickle._Unpickler):
    """The pure-Python unpickler with the name policy of this module's docstring."""

    dispatch = dict(pickle._Unpickler.dispatch)

    def __init__(self, file, source: str, size: int, buffers=None):
        super().__init__(file, buffers=buffers)
        self._raw = file  # joblib writes array bytes straight into the file, outside pickle frames
        self.source = source
        self.size = size
        self.records: dict[str, type] = {}

    def refuse(self, full: str):
        raise LoadError(
            f"refused to load global '{full}': a scikit-learn model file holds only scikit-learn estimators, numpy arrays "
            "and plain Python data; this file would import and may run other code",
            NameLoc(self.source, ""),
        )

    def record_class(self, full: str, base=Record) -> type:
        cls = self.records.get(full)
        if cls is None:
            cls = self.records[full] = type(full.rsplit(".", 1)[-1], (base,), {"_cls": full, "__module__": __name__})
        return cls

    def find_class(self, module: str, name: str):
        if self.proto < 3:  # Python 2 names (copy_reg, __builtin__, ...)
            if (module, name) in _compat_pickle.NAME_MAPPING:
                module, name = _compat_pickle.NAME_MAPPING[(module, name)]
            elif module in _compat_pickle.IMPORT_MAPPING:
                module = _compat_pickle.IMPORT_MAPPING[module]
        if not isinstance(module, str) or not isinstance(name, str):
            raise pickle.UnpicklingError("a global's module and name must be strings")
        full = sklearn_alias(f"{module}.{name}")
        module, name = full.rsplit(".", 1)
        kind = known_global(full)
        if kind is None:
            self.refuse(full)
        if kind == "record" and module in _NP_UMATH:
            full = f"numpy.{name}"  # one name for a ufunc whichever numpy wrote the file
        if kind in ("estimator", "internal", "sklearn", "record"):
            return self.record_class(full)
        if full == "joblib.numpy_pickle.NumpyArrayWrapper":
            return self.record_class(full, _ArrayWrapper)
        if full in _OLD_JOBLIB:
            raise LoadError(
                "this joblib file was written by joblib < 0.10 (arrays in separate files); load it with that joblib and save it "
                "again with joblib.dump", NameLoc(self.source, "")
            )  # fmt: skip
        return _resolve(module, name)

    def load_build(self):
        inst = self.stack[-2] if len(self.stack) >= 2 else None
        if not isinstance(inst, (Record, np.ndarray, np.dtype)):
            raise pickle.UnpicklingError(f"BUILD (setting the state) of a {type(inst).__name__} is not allowed")
        super().load_build()
        top = self.stack[-1]
        if isinstance(top, _ArrayWrapper):
            self.stack[-1] = self.read_wrapped_array(top)

    dispatch[pickle.BUILD[0]] = load_build

    def read_wrapped_array(self, w: _ArrayWrapper) -> np.ndarray:
        """The array whose bytes follow a joblib NumpyArrayWrapper in the stream."""
        st = w._state
        if not isinstance(st, dict):
            raise pickle.UnpicklingError("joblib array wrapper without its state")
        shape = _int_shape(st.get("shape"), "joblib array")
        dtype = _dtype_arg(st.get("dtype"), "joblib array")
        order = st.get("order", "C")
        if st.get("subclass") is not _NDArrayType:
            raise pickle.UnpicklingError("joblib array of a numpy subclass")
        if dtype.hasobject:
            # A nested pickle; read by the same rules (joblib pickles it with protocol 5).
            inner = _SafeUnpickler(self._raw, self.source, self.size)
            inner.records = self.records
            arr = inner.load()
            if not isinstance(arr, np.ndarray):
                raise pickle.UnpicklingError("joblib object array is not an array")
            return arr
        if st.get("numpy_array_alignment_bytes") is not None:
            pad = self._raw.read(1)
            if len(pad) != 1:
                raise EOFError("array padding")
            if pad[0] and len(self._raw.read(pad[0])) != pad[0]:
                raise EOFError("array padding")
        count = int(np.prod(shape, dtype=np.int64))
        nbytes = count * dtype.itemsize
        left = self.size - self._raw.tell()
        if nbytes > left:
            raise EOFError(f"an array of {nbytes} bytes with {left} bytes left in the file")
        data = self._raw.read(nbytes)
        if len(data) != nbytes:
            raise EOFError("array data")
        arr = np.frombuffer(data, dtype=dtype, count=count)
        arr = arr.reshape(shape[::-1]).T if order == "F" else arr.reshape(shape)
        return arr.astype(arr.dtype.newbyteorder("=")) if not arr.dtype.isnative else arr


# ----- reading files ----------------------------------------------------------------------------


def _decompress(data: bytes, source: str) -> bytes:
    """joblib's compressed containers (zlib, gzip, bz2, xz, lzma, lz4) → the pickle stream."""
    where = NameLoc(source, "")
    if data[:1] == b"\x78" and data[1:2] in (b"\x01", b"\x5e", b"\x9c", b"\xda"):
        d = zlib.decompressobj()
    elif data.startswith(b"\x1f\x8b"):
        d = zlib.decompressobj(wbits=31)
    elif data.startswith(b"BZh"):
        d = bz2.BZ2Decompressor()
    elif data.startswith(b"\xfd7zXZ\x00"):
        d = lzma.LZMADecompressor(format=lzma.FORMAT_XZ)
    elif data.startswith(b"\x5d\x00"):
        d = lzma.LZMADecompressor(format=lzma.FORMAT_ALONE)
    elif data.startswith(b"\x04\x22\x4d\x18"):
        try:
            import lz4.frame
        except ImportError:
            raise LoadError("the file is lz4-compressed; install the 'lz4' package to read it", where) from None
        d = lz4.frame.LZ4FrameDecompressor()
    elif data.startswith(b"ZF"):
        raise LoadError(
            "the file was written by joblib < 0.10 (its 'ZF' container); load it with that joblib and save it again", where
        )  # fmt: skip
    else:
        return data
    try:
        out = d.decompress(data, MAX_DECOMPRESSED_BYTES + 1)
    except (OSError, EOFError, ValueError, zlib.error, lzma.LZMAError, RuntimeError) as e:
        raise LoadError(f"corrupt compressed data ({e})", where) from None
    if len(out) > MAX_DECOMPRESSED_BYTES:
        raise LoadError(f"the file decompresses to more than {MAX_DECOMPRESSED_BYTES >> 30} GiB; refused", where)
    if not getattr(d, "eof", True):
        raise LoadError("the compressed data is truncated", where)
    return out


def _read_bytes(path_or_bytes, source_name: str | None) -> tuple[bytes, str]:
    from ..files import read_bounded

    return read_bounded(path_or_bytes, source_name, MAX_FILE_BYTES, LoadError)


def unpickle(data: bytes, source: str, buffers=None):
    """The objects of a pickle stream (joblib's included), with records for scikit-learn classes."""
    where = NameLoc(source, "")
    if not data:
        raise LoadError("the file is empty", where)
    f = io.BytesIO(data)
    u = _SafeUnpickler(f, source, len(data), buffers=buffers)
    try:
        return u.load()
    except TimberError:
        raise
    except (EOFError, pickle.UnpicklingError, ValueError, TypeError, KeyError, IndexError, AttributeError, OverflowError,
            UnicodeDecodeError, MemoryError, RecursionError, ImportError, LookupError, struct.error) as e:  # fmt: skip
        kind = "truncated" if isinstance(e, EOFError) else "corrupt or not a pickle"
        raise LoadError(f"{kind} ({type(e).__name__}: {e})", where) from None
    except Exception as e:  # noqa: BLE001  (any other failure of hostile bytes is a bad file, never a traceback)
        raise LoadError(f"corrupt or not a pickle ({type(e).__name__}: {e})", where) from None


def read_file(path_or_bytes, source_name: str | None = None):
    """(estimator record, source name) of a .pkl/.pickle/.joblib/.skops file or its bytes."""
    data, source = _read_bytes(path_or_bytes, source_name)
    if data.startswith(b"PK\x03\x04"):
        return from_estimator(read_skops(data, source), source), source
    data = _decompress(data, source)
    return to_records(unpickle(data, source), source), source


def read_skops(data: bytes, source: str):
    """The estimator of a skops zip, loaded by skops with exactly the types it does not trust
    itself (`skops.io.get_untrusted_types`) trusted, and only when each of those is on this
    front-end's allowlist (`known_global`, kinds `SKOPS_TRUSTED_KINDS`): anything else is refused,
    named, before skops constructs anything.  Never `trusted=True`."""
    where = NameLoc(source, "")
    try:
        import skops.io as sio
    except ImportError:
        raise LoadError("this is a skops file; reading it needs skops: pip install skops", where) from None
    import zipfile

    try:
        with zipfile.ZipFile(io.BytesIO(data)) as z:  # its members, unpacked, are bounded as a compressed joblib file is
            unpacked = sum(i.file_size for i in z.infolist())
        if unpacked > MAX_DECOMPRESSED_BYTES:
            raise LoadError(f"the skops file unpacks to {unpacked >> 20} MiB, more than {MAX_DECOMPRESSED_BYTES >> 20} MiB; refused", where)
        untrusted = sio.get_untrusted_types(data=data)
        refused = [t for t in untrusted if known_global(t) not in SKOPS_TRUSTED_KINDS]
        if refused:
            raise LoadError(
                f"refused to load type{'s' if len(refused) > 1 else ''} {', '.join(repr(t) for t in refused)}: a scikit-learn "
                "model file holds only scikit-learn estimators, numpy arrays and plain Python data; loading would construct "
                "or call other code",
                where,
            )
        return sio.loads(data, trusted=list(untrusted))
    except TimberError:
        raise
    except zipfile.BadZipFile as e:
        raise LoadError(f"truncated or corrupt skops file ({e})", where) from None
    except Exception as e:  # noqa: BLE001  (whatever skops raises on a damaged or hostile file)
        raise LoadError(f"corrupt skops file ({type(e).__name__}: {e})", where) from None


def from_estimator(est, source: str = "<estimator>"):
    """A live estimator as records: pickled in memory (arrays out of band, not copied) and read
    back with the same restricted unpickler as a file, so both take one path."""
    buffers: list = []
    try:
        data = pickle.dumps(est, protocol=5, buffer_callback=buffers.append)
    except Exception as e:  # noqa: BLE001  (whatever the object's own __reduce__ raises)
        raise LoadError(
            f"cannot read the {type(est).__name__} object: it does not pickle ({type(e).__name__}: {e})", NameLoc(source, "")
        ) from None
    return to_records(unpickle(data, source, buffers=buffers), source)


# ----- records → Obj ------------------------------------------------------------------------------


def to_records(value, source: str):
    """Replace every `Record` in `value` (recursively through containers and object arrays) by
    an `Obj`; shared and cyclic references stay shared."""
    memo: dict[int, object] = {}

    def conv(v, depth: int):
        if depth > MAX_DEPTH:
            raise LoadError(f"objects nested more than {MAX_DEPTH} deep", NameLoc(source, ""))
        if isinstance(v, (str, bytes, int, float, bool, type(None), np.generic, np.dtype, slice, range)):
            return v
        key = id(v)
        if key in memo:
            return memo[key]
        if isinstance(v, Record):
            o = Obj(v._cls, {}, (), source)
            memo[key] = o
            state = v._state
            if (
                isinstance(state, tuple)
                and len(state) == 2
                and isinstance(state[1], dict)
                and (state[0] is None or isinstance(state[0], dict))
            ):
                state = {**(state[0] or {}), **state[1]}  # (dict, slots) state
            if v._items:
                items = v._items
                extra = dict(items) if all(isinstance(i, tuple) and len(i) == 2 for i in items) else list(items)
                state = {**(state if isinstance(state, dict) else {}), "__items__": extra}
            if state is None:
                state = {}
            if not isinstance(state, dict):
                state = {"__state__": state}
            o.state = {k: conv(s, depth + 1) for k, s in state.items()}
            o.args = tuple(conv(a, depth + 1) for a in v._args)
            return o
        if isinstance(v, dict):
            out = type(v)() if type(v) in (dict, collections.OrderedDict) else {}
            memo[key] = out
            for k, s in v.items():
                out[conv(k, depth + 1)] = conv(s, depth + 1)
            return out
        if isinstance(v, list):
            out = []
            memo[key] = out
            out.extend(conv(s, depth + 1) for s in v)
            return out
        if isinstance(v, tuple):
            out = tuple(conv(s, depth + 1) for s in v)
            memo[key] = out
            return out
        if isinstance(v, (set, frozenset)):
            out = type(v)(conv(s, depth + 1) for s in v)
            memo[key] = out
            return out
        if isinstance(v, np.ndarray):
            if v.dtype.hasobject:
                out = np.empty(v.shape, object)
                memo[key] = out
                flat = out.reshape(-1)
                for i, s in enumerate(v.reshape(-1).tolist()):
                    flat[i] = conv(s, depth + 1)
                return out
            return v
        if isinstance(v, (bytearray, complex)):
            return v
        if isinstance(v, type) and issubclass(v, Record):
            return Obj(v._cls, {}, (), source)  # a class or function referenced by name (func=np.log1p)
        if isinstance(v, type):
            return v  # a builtin or numpy type used as a parameter value (dtype=np.float64)
        raise LoadError(f"unexpected {type(v).__name__} object in the model", NameLoc(source, ""))

    return conv(value, 0)


__all__ = ["SKLEARN_INTERNALS", "LoadError", "from_estimator", "known_global", "read_file", "read_skops", "to_records", "unpickle"]
