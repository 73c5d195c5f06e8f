"""CatBoost front-end: the JSON model export read directly (and `.cbm` through the catboost
package), to a Timber module whose oblivious trees stay `tree.oblivious`.

    module = load("model.json")
    module = load("model.cbm")                         # needs `pip install catboost`
    module = load(model, cat_vocab={0: ["a", "b"]})    # a fitted catboost.CatBoost works too

`@margin` is `model.predict(X, prediction_type="RawFormulaVal")`; `@predict` is what
`CatBoostClassifier.predict_proba` / `CatBoostRegressor.predict` return: `[1-p, p]` for Logloss
and CrossEntropy, softmax for MultiClass, a sigmoid per output for MultiClassOneVsAll /
MultiLogloss / MultiCrossEntropy, `exp` for Poisson and Tweedie, `[mean, exp(2·s)]` for
RMSEWithUncertainty, and the raw value for every other loss.  What CatBoost 1.2 computes (read
from `catboost/libs/model/`: `cpu/evaluator_impl.cpp`, `eval_processing.h`, `scale_and_bias.cpp`):

* Input: float32 (CatBoost converts every float feature to float32 first).
* Float split: bit = `x > border`, both float32.  `nan_value_treatment`: AsIs and AsFalse give a
  NaN bit 0 (AsIs by the comparison, AsFalse explicitly: `missing(nan) -> false`), AsTrue bit 1.
  Level d of a tree (the d-th entry of `splits`) sets bit d of the leaf index; leaf values are
  leaf-major, `leaf_values[leaf * dim + k]`.
* Sum: per output, 0.0 plus each tree's leaf in order, in double; then `scale * sum + bias`
  exactly as `ApplyScaleAndBias` does it (nothing when identity, `sum * scale` when the bias is
  zero, `sum + bias` when the scale is 1).  The 2019 JSON layout without `scale_and_bias` is the
  identity.
* One-hot categorical split: bit = (the category's hash == value), where CatBoost hashes the
  category's string with CityHash64 (v1.0.2) and keeps the low 32 bits.

Categorical inputs.  Timber's input row is numeric, so each categorical column holds a code:

* by default a code c means the category `str(c)` — what CatBoost itself does with an integer
  category value.  c must be an integer with |c| <= `cat_code_bound` (default 2^20, at most
  2^24 so that float32 holds it exactly);
* with `cat_vocab={feature: [s0, s1, ...]}` (feature = flat column index or feature name) a code
  i means the category string `s_i`.
Any other value — NaN, ±inf, a fraction, a code outside the range or vocabulary — is a category
the model never saw, which is what CatBoost does with an unseen category (every one-hot test is
false).  The hashing happens at compile time: each one-hot split becomes `x[f] eq code`, with
the code whose string hashes to the split's value.  When two codes collide on one 32-bit hash
(CatBoost cannot tell them apart either), that tree is compiled as a `tree.tree` that tests
each code in turn.  `encode_rows` turns rows of strings and numbers into this numeric form.

CTR features (`OnlineCtr` splits: statistics per category, or per combination of categories,
binarized float features and one-hot values, looked up by a hash) compile too, exactly: each CTR
becomes an extra input column computed in the IR — the category hashes at run time from the
codes, CatBoost's projection hash, a binary search of the model's table, the value CatBoost's
`Calc` gives — see `catboost_ctr.py`.  A CTR over one feature reveals its training categories'
hashes; a decimal-coded column whose training categories are not all strings of codes in range
is refused with a note to pass `cat_vocab` (or a larger `cat_code_bound`).

Not compiled (each rejected with the feature named and the reason): text and embedding features.
Non-symmetric trees (grow_policy Depthwise / Lossguide) compile to
`tree.tree`.  Sigmoids use `math.exp` as CatBoost uses the C library's exp; softmax, Exponent
and RMSEWithUncertainty's variance use `impl = "fmath"`: CatBoost's FastExp, which is herumi
fmath's expd (`ir/dialects/mathimpl/exp.py`), so every output is CatBoost's bits.
"""

from __future__ import annotations

import functools
import json
import os
import tempfile

import numpy as np

import ir.dialects  # noqa: F401  (registers every op)
from ir.attributes import StringAttr
from ir.diagnostics import NameLoc, TimberError
from ir.dialects import arith, func, linear, math
from ir.dialects.builtin import ModuleOp
from ir.dialects.tree import EnsembleOp, Missing, NodeTable, ObliviousTable, Pred
from ir.types import TensorType, f32, f64, i1
from ir.verifier import verify

from . import jsonread
from .catboost_ctr import CtrPlan

# Losses by what `@predict` returns.
BINARY_LOSSES = ("Logloss", "CrossEntropy")
SOFTMAX_LOSSES = ("MultiClass",)
SIGMOID_LOSSES = ("MultiClassOneVsAll", "MultiLogloss", "MultiCrossEntropy")
EXP_LOSSES = ("Poisson", "Tweedie")
UNCERTAINTY_LOSSES = ("RMSEWithUncertainty",)
DEFAULT_CAT_CODE_BOUND = 2**20
MAX_CAT_CODE_BOUND = 2**24  # float32 holds every integer up to here exactly


# ----- CityHash64 v1.0.2, as CatBoost hashes category strings ------------------------------

_M64 = (1 << 64) - 1
_K0, _K1, _K2, _K3 = 0xC3A5C85C97CB3127, 0xB492B66FBE98F273, 0x9AE16A3B2F90404F, 0xC949D7C7509E6557
_KMUL = 0x9DDFEA08EB382D69


def _rot(v: int, s: int) -> int:
    return v if s == 0 else ((v >> s) | (v << (64 - s))) & _M64


def _hash16(u: int, v: int) -> int:
    a = ((u ^ v) * _KMUL) & _M64
    a ^= a >> 47
    b = ((v ^ a) * _KMUL) & _M64
    b ^= b >> 47
    return (b * _KMUL) & _M64


def _f64(s: bytes, i: int) -> int:
    return int.from_bytes(s[i : i + 8], "little")


def _f32(s: bytes, i: int) -> int:
    return int.from_bytes(s[i : i + 4], "little")


def _city_0to16(s: bytes) -> int:
    n = len(s)
    if n > 8:
        a, b = _f64(s, 0), _f64(s, n - 8)
        return _hash16(a, _rot((b + n) & _M64, n)) ^ b
    if n >= 4:
        return _hash16((n + (_f32(s, 0) << 3)) & _M64, _f32(s, n - 4))
    if n > 0:
        y = (s[0] + (s[n >> 1] << 8)) & 0xFFFFFFFF
        z = (n + (s[n - 1] << 2)) & 0xFFFFFFFF
        h = ((y * _K2) ^ (z * _K3)) & _M64
        return ((h ^ (h >> 47)) * _K2) & _M64
    return _K2


def _city_17to32(s: bytes) -> int:
    n = len(s)
    a, b = (_f64(s, 0) * _K1) & _M64, _f64(s, 8)
    c, d = (_f64(s, n - 8) * _K2) & _M64, (_f64(s, n - 16) * _K0) & _M64
    return _hash16((_rot((a - b) & _M64, 43) + _rot(c, 30) + d) & _M64, (a + _rot(b ^ _K3, 20) - c + n) & _M64)


def _city_33to64(s: bytes) -> int:
    n = len(s)
    z = _f64(s, 24)
    a = (_f64(s, 0) + (n + _f64(s, n - 16)) * _K0) & _M64
    b, c = _rot((a + z) & _M64, 52), _rot(a, 37)
    a = (a + _f64(s, 8)) & _M64
    c = (c + _rot(a, 7)) & _M64
    a = (a + _f64(s, 16)) & _M64
    vf, vs = (a + z) & _M64, (b + _rot(a, 31) + c) & _M64
    a = (_f64(s, 16) + _f64(s, n - 32)) & _M64
    z = _f64(s, n - 8)
    b, c = _rot((a + z) & _M64, 52), _rot(a, 37)
    a = (a + _f64(s, n - 24)) & _M64
    c = (c + _rot(a, 7)) & _M64
    a = (a + _f64(s, n - 16)) & _M64
    wf, ws = (a + z) & _M64, (b + _rot(a, 31) + c) & _M64
    r = ((vf + ws) * _K2 + (wf + vs) * _K0) & _M64
    r ^= r >> 47
    r = (r * _K0 + vs) & _M64
    return ((r ^ (r >> 47)) * _K2) & _M64


def _weak32(s: bytes, i: int, a: int, b: int) -> tuple[int, int]:
    w, x, y, z = _f64(s, i), _f64(s, i + 8), _f64(s, i + 16), _f64(s, i + 24)
    a = (a + w) & _M64
    b = _rot((b + a + z) & _M64, 21)
    c = a
    a = (a + x + y) & _M64
    b = (b + _rot(a, 44)) & _M64
    return (a + z) & _M64, (b + c) & _M64


def city_hash64(s: bytes) -> int:
    """Google's CityHash64 v1.0.2 (the version in CatBoost's util/digest/city)."""
    n = len(s)
    if n <= 16:
        return _city_0to16(s)
    if n <= 32:
        return _city_17to32(s)
    if n <= 64:
        return _city_33to64(s)
    x = _f64(s, 0)
    y = _f64(s, n - 16) ^ _K1
    z = _f64(s, n - 56) ^ _K0
    v = _weak32(s, n - 64, n, y)
    w = _weak32(s, n - 32, (n * _K1) & _M64, _K0)
    z = (z + (v[1] ^ (v[1] >> 47)) * _K1) & _M64
    x = (_rot((z + x) & _M64, 39) * _K1) & _M64
    y = (_rot(y, 33) * _K1) & _M64
    left, i = (n - 1) & ~63, 0
    while left:
        x = (_rot((x + y + v[0] + _f64(s, i + 16)) & _M64, 37) * _K1) & _M64
        y = (_rot((y + v[1] + _f64(s, i + 48)) & _M64, 42) * _K1) & _M64
        x ^= w[1]
        y ^= v[0]
        z = _rot(z ^ w[0], 33)
        v = _weak32(s, i, (v[1] * _K1) & _M64, (x + w[0]) & _M64)
        w = _weak32(s, i + 32, (z + w[1]) & _M64, y)
        z, x = x, z
        i += 64
        left -= 64
    return _hash16((_hash16(v[0], w[0]) + (y ^ (y >> 47)) * _K1 + z) & _M64, (_hash16(v[1], w[1]) + x) & _M64)


def cat_hash(value: str) -> int:
    """CatBoost's hash of a category string, as the signed 32-bit value its JSON export prints."""
    h = city_hash64(value.encode("utf-8")) & 0xFFFFFFFF
    return h - (1 << 32) if h >= 1 << 31 else h


# The same hash of `str(c)` for every integer c with 10^4 <= |c| <= bound, vectorised: c is
# split as hi·10^4 + lo so the digit bytes come from tables, never from per-element division.
_U = np.uint64


@functools.lru_cache(maxsize=1)
def _digit_tables() -> tuple[np.ndarray, np.ndarray]:
    def packed(width: int) -> np.ndarray:
        x = np.arange(10**width)
        out = np.zeros(10**width, _U)
        for j in range(width):
            out |= (48 + (x // 10 ** (width - 1 - j)) % 10).astype(_U) << _U(8 * j)
        return out

    return packed(3), packed(4)


def _hash16_np(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    a = (u ^ v) * _U(_KMUL)
    a ^= a >> _U(47)
    b = (v ^ a) * _U(_KMUL)
    b ^= b >> _U(47)
    return b * _U(_KMUL)


def _low32(h: np.ndarray) -> np.ndarray:
    return (h & _U(0xFFFFFFFF)).astype(np.uint32).view(np.int32)


def decimal_preimages(targets, bound: int) -> dict[int, list[int]]:
    """{hash: sorted codes c with |c| <= bound and cat_hash(str(c)) == hash} for the given hashes."""
    want = np.unique(np.asarray(sorted(targets), np.int64).astype(np.int32))
    wanted = set(want.tolist())
    found: dict[int, list[int]] = {}
    for c in range(-min(bound, 9999), min(bound, 9999) + 1):
        h = cat_hash(str(c))
        if h in wanted:
            found.setdefault(h, []).append(c)
    t3, t4 = _digit_tables()
    lo = np.arange(10**4, dtype=np.int64)[None, :]
    b4 = t4[lo]
    top = bound // 10**4
    with np.errstate(over="ignore"):
        blocks = []
        for nh in range(1, len(str(max(top, 1))) + 1):
            his = np.arange(10 ** (nh - 1), min(top, 10**nh - 1) + 1, dtype=np.int64)
            blocks += [(nh, his[k : k + 32, None]) for k in range(0, len(his), 32)]  # 32×10^4 codes: cache-sized
        for nh, hi in blocks:
            nd = nh + 4  # digits of c
            # c >= 10^4: the first 4 and the last 4 characters are digits (4 <= nd <= 8).
            first4 = hi if nh == 4 else hi * 10 ** (4 - nh) + lo // 10**nh
            pos = _low32(_hash16_np(_U(nd) + (t4[first4] << _U(3)), b4))
            if nd + 1 <= 8:  # -c: '-' and 3 digits, then the last 4 digits
                first3 = hi if nh == 3 else hi * 10 ** (3 - nh) + lo // 10 ** (nh + 1)
                a = _U(45) | (t3[first3] << _U(8))
                neg = _low32(_hash16_np(_U(nd + 1) + (a << _U(3)), b4))
            else:  # 9 characters: the first 8 ('-' and 7 digits) and the last 8 (all digits)
                a8 = _U(45) | ((t3[hi // 10] | (t4[(hi % 10) * 1000 + lo // 10] << _U(24))) << _U(8))
                b8 = t4[hi] | (b4 << _U(32))
                s = b8 + _U(9)
                neg = _low32(_hash16_np(a8, (s >> _U(9)) | (s << _U(55))) ^ b8)
            for sign, h in ((1, pos), (-1, neg)):
                rows, cols = np.nonzero(np.isin(h, want))
                for i, j in zip(rows.tolist(), cols.tolist()):
                    c = int(hi[i, 0]) * 10**4 + j
                    if c <= bound:
                        found.setdefault(int(h[i, j]), []).append(sign * c)
    return {h: sorted(v) for h, v in found.items()}


@functools.lru_cache(maxsize=4)
def _preimages(targets: frozenset, bound: int) -> dict[int, list[int]]:
    """decimal_preimages, remembered for the last few models (scanning 2^25 codes takes a second)."""
    return decimal_preimages(targets, bound)


# ----- CatBoost's JSON number parsing ------------------------------------------------------
#
# CatBoost reads JSON models with RapidJSON's default number parser, which is not correctly
# rounded: a 17-digit decimal is accumulated as an integer (exactly up to 2^53, then in double)
# and divided by a power of ten, so it can land one ulp away from Python's `float()`.  A JSON
# model means what CatBoost reads from it, so Timber parses its numbers the same way.

_POW10 = [float(f"1e{k}") for k in range(309)]  # RapidJSON's Pow10 table: correctly rounded


def _fast_path(d: float, e: int) -> float:
    if e < -308:
        return 0.0
    return d * _POW10[e] if e >= 0 else d / _POW10[-e]


def rapidjson_number(s: str) -> float:
    """The double RapidJSON's Reader::ParseNumber (default flags, 64-bit) makes of JSON number `s`."""
    n = len(s)
    minus = s.startswith("-")
    pos = 1 if minus else 0

    def digit(k: int) -> bool:
        return k < n and "0" <= s[k] <= "9"

    i = i64 = sig = 0
    use64 = False
    if s[pos] == "0":
        pos += 1
    else:
        i = ord(s[pos]) - 48
        pos += 1
        lim, last = (214748364, "8") if minus else (429496729, "5")  # fits in 32 bits?
        while digit(pos):
            if i >= lim and (i != lim or s[pos] > last):
                i64, use64 = i, True
                break
            i = i * 10 + ord(s[pos]) - 48
            pos += 1
            sig += 1
    use_double, d = False, 0.0
    if use64:
        lim, last = (0x0CCCCCCCCCCCCCCC, "8") if minus else (0x1999999999999999, "5")  # fits in 64 bits?
        while digit(pos):
            if i64 >= lim and (i64 != lim or s[pos] > last):
                d, use_double = float(i64), True
                break
            i64 = i64 * 10 + ord(s[pos]) - 48
            pos += 1
            sig += 1
    if use_double:
        while digit(pos):
            d = d * 10 + (ord(s[pos]) - 48)
            pos += 1
    exp_frac = 0
    if pos < n and s[pos] == ".":
        pos += 1
        if not use_double:
            if not use64:
                i64 = i
            while digit(pos) and i64 <= 0x1FFFFFFFFFFFFF:  # exact integer significand up to 2^53 - 1
                i64 = i64 * 10 + ord(s[pos]) - 48
                pos += 1
                exp_frac -= 1
                if i64 != 0:
                    sig += 1
            d, use_double = float(i64), True
        while digit(pos):
            if sig < 17:  # then digits accumulate in double; past 17 significant digits they are dropped
                d = d * 10.0 + (ord(s[pos]) - 48)
                exp_frac -= 1
                if d > 0.0:
                    sig += 1
            pos += 1
    exp = 0
    if pos < n and s[pos] in "eE":
        pos += 1
        if not use_double:
            d, use_double = float(i64 if use64 else i), True
        exp_minus = s[pos] == "-"
        pos += 1 if s[pos] in "+-" else 0
        exp = ord(s[pos]) - 48
        pos += 1
        max_exp = (exp_frac + 2147483639) // 10 if exp_minus else 308 - exp_frac
        while digit(pos):
            if not (exp_minus and exp > max_exp):  # a huge negative exponent: the rest is skipped
                exp = exp * 10 + ord(s[pos]) - 48
            if not exp_minus and exp > max_exp:
                raise ValueError(f"number too big: {s}")  # RapidJSON's kParseErrorNumberTooBig
            pos += 1
        exp = -exp if exp_minus else exp
    if not use_double:
        v = float(i64 if use64 else i)
        return -v if minus else v
    p = exp + exp_frac
    d = _fast_path(_fast_path(d, -308), p + 308) if p < -308 else _fast_path(d, p)
    if d > 1.7976931348623157e308:
        raise ValueError(f"number too big: {s}")
    return -d if minus else d


def _rapidjson_integer(s: str):
    """A JSON integer: beyond 64 bits RapidJSON makes a double of it; within, it stays an integer
    (CatBoost turns it into a double only when it is exact, see `_Model.num`)."""
    v = int(s)
    return v if -(2**63) <= v < 2**64 else rapidjson_number(s)


def parse_json(text: str, source: str = "<json>"):
    """Parse a CatBoost JSON model with CatBoost's own number semantics (see above), within the
    bounds of `jsonread` (too deep or too large: a located error)."""
    return jsonread.loads(text, source, "CatBoost JSON", parse_float=rapidjson_number, parse_int=_rapidjson_integer)


# ----- reading the model -------------------------------------------------------------------


def _is_cbm(data: bytes) -> bool:
    return data[:4] == b"CBM1"


def _json_of_catboost(model, name: str) -> dict:
    """Export a loaded catboost model to JSON in a temporary directory and read it back."""
    for kind, getter in (("text", "get_text_feature_indices"), ("embedding", "get_embedding_feature_indices")):
        used = list(getattr(model, getter)()) if hasattr(model, getter) else []
        if used:
            where = ", ".join(str(i) for i in used)
            raise TimberError(f"{kind} feature{'s' if len(used) > 1 else ''} {where}: {kind} features are not supported", NameLoc(name, ""))
    with tempfile.TemporaryDirectory(prefix="timber-cb-") as d:
        path = os.path.join(d, "model.json")
        try:
            model.save_model(path, format="json")
        except Exception as e:  # CatBoostError; the catboost package is optional
            raise TimberError(f"CatBoost cannot export this model to JSON: {str(e).strip()}", NameLoc(name, "")) from None
        with open(path, encoding="utf-8") as f:
            # exported from the model in memory: correctly rounded parsing recovers its doubles
            return json.load(f)


def _from_cbm(data: bytes, name: str) -> dict:
    try:
        import catboost
    except ImportError:
        raise TimberError(
            "reading a .cbm model needs the catboost package (pip install catboost); "
            "or export it to JSON with model.save_model(path, format='json')",
            NameLoc(name, ""),
        ) from None
    m = catboost.CatBoost()
    try:
        m.load_model(blob=data)
    except Exception as e:
        raise TimberError(f"corrupt CatBoost model: {str(e).strip()}", NameLoc(name, "")) from None
    return _json_of_catboost(m, name)


def _read(model, source_name: str | None) -> tuple[dict, str, bool]:
    """(JSON document, name, whether it was exported from a model in memory rather than read as JSON text)."""
    if isinstance(model, dict):  # already parsed: its numbers are taken as they are
        return model, source_name or "<dict>", False
    if isinstance(model, (bytes, bytearray)):
        data, name = bytes(model), source_name or "<bytes>"
    elif isinstance(model, (str, os.PathLike)):
        name = source_name or os.fspath(model)
        try:
            with open(os.fspath(model), "rb") as f:
                data = f.read()
        except OSError as e:
            raise TimberError(f"cannot read CatBoost model '{os.fspath(model)}': {e.strerror or e}") from None
    elif hasattr(model, "save_model") and hasattr(model, "get_cat_feature_indices"):
        return _json_of_catboost(model, source_name or "<catboost model>"), source_name or "<catboost model>", True
    else:
        raise TimberError(
            f"cannot load a {type(model).__name__} as a CatBoost model: pass a path (.json or .cbm), bytes or a CatBoost model"
        )
    if _is_cbm(data):
        return _from_cbm(data, name), name, True
    try:
        doc = parse_json(data.decode("utf-8"), name)
    except json.JSONDecodeError as e:
        raise TimberError(
            f"not a CatBoost model: neither a .cbm file nor valid JSON ({e.msg})", NameLoc(name, f"line {e.lineno} column {e.colno}")
        ) from None
    except (UnicodeDecodeError, ValueError) as e:
        raise TimberError(f"not a CatBoost model: neither a .cbm file nor valid JSON ({e})", NameLoc(name, "")) from None
    if not isinstance(doc, dict):
        raise TimberError("not a CatBoost JSON model: the top level is not an object", NameLoc(name, ""))
    return doc, name, False


class _Model:
    """The parts of a CatBoost JSON model Timber needs, checked, with located errors."""

    def __init__(self, doc: dict, name: str):
        self.doc = doc
        self.name = name

    def fail(self, path: str, message: str, notes=()):
        raise TimberError(message, NameLoc(self.name, path), notes=notes)

    def num(self, v, path: str) -> float:
        """A model number as a double, as CatBoost's JSON value gives it."""
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            self.fail(path, f"expected a number, found {type(v).__name__}")
        if isinstance(v, int) and abs(v) > 2**53:
            self.fail(path, f"integer {v} has no exact double; CatBoost does not read it as a number")
        return float(v)

    def get(self, obj, key: str, path: str, kind, default=...):
        if not isinstance(obj, dict) or key not in obj:
            if default is not ...:
                return default
            self.fail(path, f"missing '{key}'")
        v = obj[key]
        if not isinstance(v, kind) or (isinstance(v, bool) and kind is not bool):
            names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
            self.fail(f"{path}.{key}" if path else key, f"'{key}' must be a {names}, found {type(v).__name__}")
        return v


# ----- features ------------------------------------------------------------------------------


class _Features:
    """Flat column layout: float and categorical features by their flat_feature_index."""

    def __init__(self, m: _Model):
        info = m.get(m.doc, "features_info", "", dict)
        self.float_flat: dict[int, int] = {}  # float_feature_index -> flat index
        self.nan_treatment: dict[int, str] = {}
        self.cat_flat: dict[int, int] = {}  # cat_feature_index -> flat index
        self.names: dict[int, str] = {}
        self.types: dict[int, str] = {}
        for i, f in enumerate(m.get(info, "float_features", "features_info", list, [])):
            path = f"features_info.float_features[{i}]"
            idx = m.get(f, "feature_index", path, int)
            flat = m.get(f, "flat_feature_index", path, int, idx)
            treat = m.get(f, "nan_value_treatment", path, str, "AsIs")
            if treat not in ("AsIs", "AsFalse", "AsTrue"):
                m.fail(f"{path}.nan_value_treatment", f"unknown nan_value_treatment '{treat}'; supported: AsIs, AsFalse, AsTrue")
            self._add(m, path, flat, "q", f.get("feature_id", ""))
            self.float_flat[idx] = flat
            self.nan_treatment[idx] = treat
        for i, f in enumerate(m.get(info, "categorical_features", "features_info", list, [])):
            path = f"features_info.categorical_features[{i}]"
            idx = m.get(f, "feature_index", path, int)
            flat = m.get(f, "flat_feature_index", path, int, idx)
            self._add(m, path, flat, "c", f.get("feature_id", ""))
            self.cat_flat[idx] = flat
        for kind, letter in (("text_features", "t"), ("embedding_features", "e")):
            for i, f in enumerate(info.get(kind) or []):
                path = f"features_info.{kind}[{i}]"
                flat = m.get(f, "flat_feature_index", path, int)
                self._add(m, path, flat, letter, f.get("feature_id", ""))
                m.fail(path, f"{kind.replace('_', ' ')[:-1]} {self.describe(flat)}: text and embedding features are not supported")
        self.ctrs = info.get("ctrs") or []
        self.n = max(self.types, default=-1) + 1
        if self.n == 0:
            m.fail("features_info", "the model has no features")

    def _add(self, m, path, flat, letter, name):
        if flat < 0 or flat in self.types:
            m.fail(f"{path}.flat_feature_index", f"flat_feature_index {flat} is negative or used twice")
        self.types[flat] = letter
        if name:
            self.names[flat] = name

    def describe(self, flat: int) -> str:
        name = self.names.get(flat)
        return f"{flat} ('{name}')" if name else str(flat)


# ----- splits --------------------------------------------------------------------------------


class _Split:
    """One test of a level: alternatives OR-ed together (several codes for a colliding hash);
    an empty list means the test can never be true for a representable input."""

    def __init__(self, tests):
        self.tests = tests  # list of (flat feature, Pred, threshold, Missing, default bit)


class _Categories:
    """How categorical codes map to category strings, and the code(s) for each split hash."""

    def __init__(self, m: _Model, feats: _Features, vocab, bound: int, hashes: dict[int, set[int]], also=None):
        """`hashes`: the one-hot split values per column; `also`: more hashes per column whose
        decimal codes are wanted (the training categories CTR tables reveal), in `preimages`."""
        if not 0 < bound <= MAX_CAT_CODE_BOUND:
            raise TimberError(f"cat_code_bound must be in 1..2^24 (float32 holds codes exactly up to 2^24), found {bound}")
        self.codes: dict[tuple[int, int], list[int]] = {}
        self.encoding: dict[int, object] = {}
        by_name = {n: f for f, n in feats.names.items()}
        vocab = dict(vocab or {})
        resolved: dict[int, list[str]] = {}
        for key, words in vocab.items():
            flat = by_name.get(key, key) if isinstance(key, str) else key
            if isinstance(flat, str) and flat.isdigit():  # a JSON object's key (`-O cat_vocab={"3": [...]}`)
                flat = int(flat)
            if not isinstance(flat, int) or feats.types.get(flat) != "c":
                cats = ", ".join(feats.describe(f) for f in sorted(feats.cat_flat.values())) or "none"
                raise TimberError(f"cat_vocab names {key!r}, which is not a categorical feature of the model (categorical: {cats})")
            resolved[flat] = [str(w) for w in words]
        decimal = {}
        for flat in sorted(feats.cat_flat.values()):
            if flat in resolved:
                self.encoding[flat] = resolved[flat]
                table: dict[int, list[int]] = {}
                for i, w in enumerate(resolved[flat]):
                    table.setdefault(cat_hash(w), []).append(i)
                for h in hashes.get(flat, ()):
                    self.codes[(flat, h)] = table.get(h, [])
            else:
                self.encoding[flat] = "decimal"
                decimal[flat] = hashes.get(flat, set())
        wanted = set().union(*decimal.values()) if decimal else set()
        wanted |= {h for flat, hs in (also or {}).items() if flat in decimal for h in hs}
        pre = _preimages(frozenset(wanted), bound) if wanted else {}
        self.preimages = pre
        for flat, hs in decimal.items():
            for h in sorted(hs):
                if h not in pre:
                    m.fail(
                        f"features_info.categorical_features (flat feature {feats.describe(flat)})",
                        f"categorical feature {feats.describe(flat)}: a one-hot split tests a category (CatBoost hash {h}) that is not "
                        f"the decimal string of any integer code in [-{bound}, {bound}]",
                        notes=[f"pass cat_vocab={{{flat}: [...]}} listing the category strings; code i then means the i-th string"],
                    )
                self.codes[(flat, h)] = pre[h]
        self.bound = bound


def _collect_onehot_hashes(m: _Model, feats: _Features, trees) -> dict[int, set[int]]:
    """Every one-hot split value, per flat categorical feature."""
    out: dict[int, set[int]] = {}

    def visit(split, path):
        if isinstance(split, dict) and split.get("split_type") == "OneHotFeature":
            idx = m.get(split, "cat_feature_index", path, int)
            if idx not in feats.cat_flat:
                m.fail(f"{path}.cat_feature_index", f"cat_feature_index {idx} names no categorical feature")
            out.setdefault(feats.cat_flat[idx], set()).add(m.get(split, "value", path, int))

    for path, split in _all_splits(m, trees):
        visit(split, path)
    return out


def _all_splits(m: _Model, trees):
    kind, items = trees
    if kind == "oblivious":
        for t, tree in enumerate(items):
            for d, s in enumerate(tree.get("splits") or []):
                yield f"oblivious_trees[{t}].splits[{d}]", s
    else:
        for t, tree in enumerate(items):
            stack = [(tree, f"trees[{t}]")]
            while stack:
                node, path = stack.pop()
                if isinstance(node, dict) and "split" in node:
                    yield f"{path}.split", node["split"]
                    stack.append((node.get("left"), path + ".left"))
                    stack.append((node.get("right"), path + ".right"))


def _split(m: _Model, feats: _Features, cats: _Categories, s, path: str) -> _Split:
    kind = m.get(s, "split_type", path, str)
    if kind == "FloatFeature":
        idx = m.get(s, "float_feature_index", path, int)
        if idx not in feats.float_flat:
            m.fail(f"{path}.float_feature_index", f"float_feature_index {idx} names no float feature")
        border = m.num(m.get(s, "border", path, (int, float)), f"{path}.border")
        treat = feats.nan_treatment[idx]
        missing = Missing.NONE if treat == "AsIs" else Missing.NAN  # AsIs: NaN > border is false anyway
        return _Split([(feats.float_flat[idx], Pred.GT, np.float32(border), missing, treat == "AsTrue")])
    if kind == "OneHotFeature":
        flat = feats.cat_flat[m.get(s, "cat_feature_index", path, int)]
        codes = cats.codes[(flat, m.get(s, "value", path, int))]
        return _Split([(flat, Pred.EQ, np.float32(c), Missing.NONE, False) for c in codes])
    if kind == "OnlineCtr":
        ctr, border = cats.ctr_plan.use(s, path)
        return _Split([(ctr.column, Pred.GT, border, Missing.NONE, False)])
    m.fail(f"{path}.split_type", f"unknown split_type '{kind}'; supported: FloatFeature, OneHotFeature")


# ----- trees -------------------------------------------------------------------------------


def _leaf_matrix(m: _Model, values, n_leaves: int, dim: int, path: str) -> np.ndarray:
    if not isinstance(values, list) or len(values) != n_leaves * dim:
        found = len(values) if isinstance(values, list) else type(values).__name__
        m.fail(path, f"expected {n_leaves} leaves × {dim} outputs = {n_leaves * dim} leaf values, found {found}")
    return np.array([m.num(v, f"{path}[{i}]") for i, v in enumerate(values)], np.float64).reshape(n_leaves, dim)


def _oblivious(m, feats, cats, tree, t: int, dim: int):
    """A `tree.oblivious` table (or a node table when a one-hot hash has several codes)."""
    path = f"oblivious_trees[{t}]"
    if not isinstance(tree, dict):
        m.fail(path, "a tree must be an object")
    raw = tree.get("splits") or []
    if not isinstance(raw, list):
        m.fail(f"{path}.splits", "'splits' must be a list")
    splits = [_split(m, feats, cats, s, f"{path}.splits[{d}]") for d, s in enumerate(raw)]
    leaves = _leaf_matrix(m, tree.get("leaf_values"), 2 ** len(splits), dim, f"{path}.leaf_values")
    # A test no representable input can pass fixes its bit at 0: keep only those leaves.
    for d in reversed(range(len(splits))):
        if not splits[d].tests:
            keep = np.flatnonzero(((np.arange(len(leaves)) >> d) & 1) == 0)
            leaves = leaves[keep]
            del splits[d]
    if any(len(s.tests) > 1 for s in splits):
        return _expand(splits, leaves)
    tests = [s.tests[0] for s in splits]
    return ObliviousTable(
        np.array([f for f, *_ in tests], np.int32),
        np.array([p for _, p, *_ in tests], np.uint8),
        np.array([thr for _, _, thr, *_ in tests], np.float32),
        np.array([mk for *_, mk, _ in tests], np.uint8),
        np.array([dt for *_, dt in tests], np.bool_),
        leaves,
    )


class _Nodes:
    """Grows a NodeTable row by row (pre-order), for trees that are not oblivious levels."""

    def __init__(self, dim: int):
        self.rows: list[tuple] = []
        self.leaf: list[np.ndarray] = []
        self.dim = dim

    def add_leaf(self, value: np.ndarray) -> int:
        self.rows.append((-1, Pred.LEAF, 0.0, -1, -1, Missing.NONE, -1))
        self.leaf.append(value)
        return len(self.rows) - 1

    def add_split(self, feature, pred, thr, missing) -> int:
        self.rows.append([feature, pred, thr, -1, -1, missing, -1])
        self.leaf.append(np.zeros(self.dim))
        return len(self.rows) - 1

    def link(self, i: int, yes: int, no: int, default: int) -> None:
        self.rows[i][3], self.rows[i][4], self.rows[i][6] = yes, no, default

    def table(self) -> NodeTable:
        cols = list(zip(*self.rows))
        return NodeTable(
            np.array(cols[0], np.int32),
            np.array(cols[1], np.uint8),
            np.array(cols[2], np.float32),
            np.array(cols[3], np.int32),
            np.array(cols[4], np.int32),
            np.array(cols[5], np.uint8),
            np.array(cols[6], np.int32),
            np.array(self.leaf, np.float64).reshape(len(self.rows), self.dim),
        )


def _emit_test(nodes: _Nodes, tests, true_branch, false_branch) -> int:
    """Nodes for `test_0 or test_1 or ...`; the branches are callables that emit a subtree."""
    f, pred, thr, missing, default_true = tests[0]
    i = nodes.add_split(f, pred, thr, missing)
    yes = true_branch()
    no = _emit_test(nodes, tests[1:], true_branch, false_branch) if len(tests) > 1 else false_branch()
    default = -1 if missing in (Missing.NONE, Missing.NAN_AS_ZERO) else (yes if default_true else no)
    nodes.link(i, yes, no, default)
    return i


def _expand(splits: list[_Split], leaves: np.ndarray) -> NodeTable:
    """An oblivious tree as a plain decision tree (leaf index = Σ bit_d << d)."""
    nodes = _Nodes(leaves.shape[1])

    def grow(d: int, index: int) -> int:
        if d == len(splits):
            return nodes.add_leaf(leaves[index])
        return _emit_test(nodes, splits[d].tests, lambda: grow(d + 1, index | (1 << d)), lambda: grow(d + 1, index))

    grow(0, 0)
    return nodes.table()


def _non_symmetric(m, feats, cats, tree, t: int, dim: int) -> NodeTable:
    """A `trees[t]` entry ({split, left, right} / {value}): right is the split's true side."""
    nodes = _Nodes(dim)

    def grow(node, path: str) -> int:
        if not isinstance(node, dict):
            m.fail(path, "a tree node must be an object")
        if "split" not in node:
            value = node.get("value")
            return nodes.add_leaf(_leaf_matrix(m, value if isinstance(value, list) else [value], 1, dim, f"{path}.value")[0])
        split = _split(m, feats, cats, node["split"], f"{path}.split")
        if not split.tests:
            return grow(node.get("left"), path + ".left")
        return _emit_test(
            nodes, split.tests, lambda: grow(node.get("right"), path + ".right"), lambda: grow(node.get("left"), path + ".left")
        )

    grow(tree, f"trees[{t}]")
    return nodes.table()


# ----- the module --------------------------------------------------------------------------


def _loss(m: _Model) -> str:
    params = m.doc.get("model_info", {}).get("params", {}) if isinstance(m.doc.get("model_info"), dict) else {}
    lf = params.get("loss_function") if isinstance(params, dict) else None
    if isinstance(lf, dict) and isinstance(lf.get("type"), str):
        return lf["type"]
    return "RMSE"  # CatBoost's default loss; exports that omit it are regressors


def _scale_and_bias(m: _Model, dim: int) -> tuple[float, np.ndarray]:
    sb = m.doc.get("scale_and_bias")
    if sb is None:
        return 1.0, np.zeros(dim)  # the 2019 layout: no scale_and_bias, the identity
    if not (isinstance(sb, list) and len(sb) == 2 and isinstance(sb[0], (int, float)) and isinstance(sb[1], list)):
        m.fail("scale_and_bias", "expected [scale, [bias, ...]]")
    bias = np.array([m.num(v, f"scale_and_bias[1][{i}]") for i, v in enumerate(sb[1])], np.float64)
    if len(bias) == 1 and dim > 1 and bias[0] == 0:
        bias = np.zeros(dim)
    if len(bias) != dim:
        m.fail("scale_and_bias", f"{len(bias)} bias values for a model with {dim} outputs")
    return m.num(sb[0], "scale_and_bias[0]"), bias


def _dimension(m: _Model, kind: str, items) -> int:
    if not items:
        m.fail("oblivious_trees" if kind == "oblivious" else "trees", "the model has no trees")
    if kind == "oblivious":
        t = items[0]
        depth = len(t.get("splits") or []) if isinstance(t, dict) else 0
        n = len(t.get("leaf_values") or []) if isinstance(t, dict) else 0
        if n == 0 or n % 2**depth:
            m.fail("oblivious_trees[0].leaf_values", f"{n} leaf values for a tree of depth {depth}")
        return n // 2**depth
    node = items[0]
    while isinstance(node, dict) and "split" in node:
        node = node.get("left")
    value = node.get("value") if isinstance(node, dict) else None
    return len(value) if isinstance(value, list) else 1


def _const(block, values, type_: TensorType, name: str):
    return block.add_op(arith.ConstantOp.build(np.asarray(values).reshape(type_.shape), type_, name=name)).result


def _build(m: _Model, feats: _Features, tables, dim: int, loss: str, vocab_meta: dict, cats: _Categories) -> ModuleOp:
    scale, bias = _scale_and_bias(m, dim)
    x_t, out_t = TensorType((feats.n,), f32), TensorType((dim,), f64)
    attrs = {"timber.format": "catboost", "timber.source": m.name, "timber.loss": loss}
    attrs["timber.feature_types"] = [feats.types.get(i, "q") for i in range(feats.n)]
    if feats.names:
        attrs["timber.feature_names"] = [feats.names.get(i, "") for i in range(feats.n)]
    cp = m.doc.get("model_info", {}).get("class_params") if isinstance(m.doc.get("model_info"), dict) else None
    if isinstance(cp, dict) and isinstance(cp.get("class_names"), list) and cp["class_names"]:
        attrs["timber.class_names"] = [str(c) for c in cp["class_names"]]
    if vocab_meta:
        attrs["timber.categorical"] = {str(k): v for k, v in vocab_meta.items()}
    module = ModuleOp.build(attrs)

    mf = func.FuncOp.build("margin", [x_t], [out_t], arg_names=["x"])
    body = mf.body
    zero_bias = not np.any(bias)
    x = mf.args[0]
    if cats.ctr_plan.used:  # CTR values as extra columns: x' = concat(x, ctr_0, ...)
        x = cats.ctr_plan.emit(body, x, cats, m.name)
    ens = EnsembleOp.build(x, dim, f64, f32, f64, init=np.zeros(dim), name="sum" if (scale != 1 or not zero_bias) else "margin")
    for t in tables:
        ens.add_tree(t, out=0)
    result = body.add_op(ens).result
    # ApplyScaleAndBias: identity → nothing; zero bias → sum·scale; scale 1 → sum + bias; else scale·sum + bias.
    if scale != 1.0:
        name = "margin" if zero_bias else "scaled"
        result = body.add_op(arith.MulFOp.build(result, _const(body, np.full(dim, scale), out_t, "scale"), name=name)).result
    if not zero_bias:
        result = body.add_op(arith.AddFOp.build(result, _const(body, bias, out_t, "bias"), name="margin")).result
    body.add_op(func.ReturnOp(operands=[result]))
    module.body.add_op(mf)

    pf_out = TensorType((2,), f64) if loss in BINARY_LOSSES and dim == 1 else out_t
    pf = func.FuncOp.build("predict", [x_t], [pf_out], arg_names=["x"])
    pb = pf.body
    s = pb.add_op(func.CallOp.build(mf, [pf.args[0]], name="margin")).result
    pb.add_op(func.ReturnOp(operands=[_transform(pb, loss, s, dim)]))
    module.body.add_op(pf)
    return module


def _transform(block, loss: str, s, dim: int):
    if loss in BINARY_LOSSES and dim == 1:
        p = block.add_op(math.SigmoidOp.build(s, name="p")).result
        # predict_proba: [1 - p, p] — as 1 + (-1)·p and 0 + 1·p, both exact.
        return block.add_op(
            linear.AffineOp.build(p, np.array([[-1.0], [1.0]]), np.array([1.0, 0.0]), f64, "propagate", name="proba")
        ).result
    if loss in SOFTMAX_LOSSES:
        # CatBoost's softmax calls FastExpInplace: fmath's exp (ir/dialects/mathimpl/exp.py), not the C library's
        return block.add_op(math.SoftmaxOp.build(s, name="proba", acc=f64, impl=StringAttr("fmath"))).result
    if loss in SIGMOID_LOSSES or loss in BINARY_LOSSES:
        return block.add_op(math.SigmoidOp.build(s, name="proba")).result
    if loss in EXP_LOSSES:
        return block.add_op(math.ExpOp.build(s, name="pred", impl=StringAttr("fmath"))).result
    if loss in UNCERTAINTY_LOSSES and dim == 2:
        # [mean, exp(2·log_std)] (CalcSquaredExponentInplace): exp of 2·s on the second output only.
        t = TensorType((dim,), f64)
        two = block.add_op(arith.MulFOp.build(s, _const(block, [1.0, 2.0], t, "times"), name="doubled")).result
        e = block.add_op(math.ExpOp.build(two, name="variance", impl=StringAttr("fmath"))).result
        mask = block.add_op(arith.ConstantOp.build([True, False], TensorType((2,), i1), name="is_mean")).result
        return block.add_op(arith.SelectOp.build(mask, s, e, name="pred")).result
    return s


def load(model, *, source_name: str | None = None, cat_vocab: dict | None = None, cat_code_bound: int = DEFAULT_CAT_CODE_BOUND) -> ModuleOp:
    """Compile a CatBoost model (JSON export, `.cbm`, or a fitted catboost model) to a verified module.

    `cat_vocab`: {categorical feature (flat index or name): [category strings]}; code i in that
    column then means the i-th string.  Other categorical columns take integer codes c meaning
    `str(c)`, for |c| <= `cat_code_bound`.  See the module docstring for the full contract.
    """
    doc, name, exported = _read(model, source_name)
    m = _Model(doc, name)
    feats = _Features(m)
    if "oblivious_trees" in doc:
        kind, items = "oblivious", m.get(doc, "oblivious_trees", "", list)
    elif "trees" in doc:
        kind, items = "trees", m.get(doc, "trees", "", list)
    else:
        m.fail("", "not a CatBoost JSON model: no 'oblivious_trees' or 'trees'")
    dim = _dimension(m, kind, items)
    ctr_plan = CtrPlan(m, feats, exact_sums=exported)
    for path, split in _all_splits(m, (kind, items)):  # the CTRs the trees test, each becomes a column
        if isinstance(split, dict) and split.get("split_type") == "OnlineCtr":
            ctr_plan.use(split, path)
    ctr_plan.assign_columns(feats.n)
    hashes = _collect_onehot_hashes(m, feats, (kind, items))
    trained = ctr_plan.training_hashes()
    cats = _Categories(m, feats, cat_vocab, cat_code_bound, hashes, trained)
    cats.ctr_plan = ctr_plan
    ctr_plan.check_categories(cats, trained)
    if kind == "oblivious":
        tables = [_oblivious(m, feats, cats, t, i, dim) for i, t in enumerate(items)]
    else:
        tables = [_non_symmetric(m, feats, cats, t, i, dim) for i, t in enumerate(items)]
    loss = _loss(m)
    meta = {flat: enc for flat, enc in cats.encoding.items()}
    module = _build(m, feats, tables, dim, loss, meta, cats)
    verify(module)
    return module


def encode_rows(module: ModuleOp, rows) -> np.ndarray:
    """Rows of numbers and category values (str or int) → the float32 matrix the module takes.

    Categorical columns follow the module's encoding (`timber.categorical`): a string found in
    the column's vocabulary becomes its index; with the decimal encoding an int (or a string
    holding a canonical integer) becomes that number.  Anything else becomes NaN, which the
    module treats as a category unseen in training — as CatBoost does."""
    n = module.lookup("margin").function_type.inputs[0].shape[0]
    enc_attr = module.attributes.get("timber.categorical")
    enc = {int(k): v for k, v in (enc_attr.entries.items() if enc_attr is not None else [])}
    out = np.full((len(rows), n), np.nan, np.float32)
    for i, row in enumerate(rows):
        if len(row) != n:
            raise TimberError(f"row {i} has {len(row)} values, the model takes {n}")
        for j, v in enumerate(row):
            if j not in enc:
                out[i, j] = np.nan if v is None else float(v)
                continue
            e = enc[j]
            if hasattr(e, "items"):  # vocabulary (ArrayAttr of strings)
                words = [w.value for w in e.items]
                key = str(v)
                out[i, j] = words.index(key) if key in words else np.nan
            else:
                text = str(int(v)) if isinstance(v, (int, np.integer)) and not isinstance(v, bool) else str(v)
                ok = text.lstrip("-").isdigit() and text == str(int(text))
                out[i, j] = float(int(text)) if ok and abs(int(text)) <= MAX_CAT_CODE_BOUND else np.nan
    return out
