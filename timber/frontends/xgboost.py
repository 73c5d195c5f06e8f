"""XGBoost front-end: JSON and UBJSON model files → a verified Timber module.

Reads the files XGBoost ≥ 1.0 writes with `Booster.save_model` (`.json`, `.ubj`) without
importing xgboost, and states in IR exactly what XGBoost 3.2's CPU predictor computes:

* The input row is float32 (XGBoost casts every input to float first); splits compare in
  float32: `x < split_condition` → left child, so a numerical split is `lt` with yes = left.
  NaN is the missing value and follows `default_left`; ±inf is an ordinary value.
* Categorical splits (`split_type` 1): the category `(int)x` **in the node's set goes right**,
  so the split is `in` with yes = right; negative, ≥ 2^24 (XGBoost's `InvalidCat`) and
  past-the-set codes go left; NaN takes the default child (`src/common/categorical.h`).
  In IR: `cat_negative = "value"` (a negative value, e.g. -0.5, is invalid; -0.0 is code 0).
* Tree outputs are added to a float32 buffer that starts at the base margin, one tree at a
  time in file order (`PredictByAllTrees` in `src/predictor/cpu_predictor.cc`): that is
  `tree.ensemble` with compare = leaves = accumulation = f32 and `init` = base margin.
  Tree k adds to output `tree_info[k]` (classes, or targets of one-tree-per-target models);
  a vector-leaf tree (`size_leaf_vector` > 1) adds its whole leaf to outputs 0..K-1.
* DART adds `leaf * weight_drop[k]` in float32 (`Dart::PredictBatchImpl`, `src/gbm/gbtree.cc`),
  so each tree's leaves are replaced by that float32 product.
* gblinear: `psum = bias[k] + base_margin[0]` (the first base margin for every output, even
  when 3.1+ stores one per class), then `psum += x[j] * w[j][k]` over present features in
  index order (`GBLinear::Pred`): `linear.affine` with bias = that first sum, missing = "skip".
* `base_score` is stored in the objective's output space, as a scalar string (`"5E-1"`,
  1.x/2.x), a one-element list (`"[6.2857145E-1]"`, 3.0) or one value per output (3.1+).
  XGBoost 3.2 converts it to a margin when it loads the file, whatever version wrote it:
  logistic objectives clamp it to [1e-6, 1 - 1e-6] and take `-logf(1/p - 1)`; exp-link
  objectives take `logf(p)`; all others use it as is.  A model with no trees (or a gblinear
  model boosted 0 rounds) whose `boost_from_average` is on keeps base_score unconverted, as
  XGBoost 3.2 does (its intercept was never estimated).  It is computed here the same way in
  float32, with the C library's `logf` (glibc's is not correctly rounded on ~0.6% of inputs).
* `@predict` applies the objective's transform with XGBoost's formula and precision
  (`src/common/math.h`, `src/objective/*`): sigmoid `1 / (1 + expf(min(-m, 88.7)))`,
  `expf`, hinge `m > 0 ? 1 : 0`, softmax with the sum of exponentials in double, and the
  first index of the largest margin as a float.

Anything unsupported or malformed raises `TimberError` naming the file, the JSON path and
what is supported.  Legacy binary models are rejected with a recipe to convert them.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from itertools import chain

import numpy as np

from ir import libm
from ir.attributes import ArrayAttr, StringAttr
from ir.diagnostics import NameLoc, TimberError
from ir.dialects import arith, func
from ir.dialects import math as mathd
from ir.dialects.builtin import ModuleOp
from ir.dialects.linear import AffineOp
from ir.dialects.tree import EnsembleOp, Missing, NodeTable, Pred, bitset_from_members
from ir.floats import round_to_f32
from ir.types import TensorType, f32, f64
from ir.verifier import verify

from . import jsonread, ubjson

# objective -> (how base_score becomes a margin, output transform of @predict)
OBJECTIVES: dict[str, tuple[str, str]] = {
    "reg:squarederror": ("identity", "identity"),
    "reg:linear": ("identity", "identity"),  # the pre-1.0 name of reg:squarederror, still accepted by XGBoost
    "reg:squaredlogerror": ("identity", "identity"),
    "reg:pseudohubererror": ("identity", "identity"),
    "reg:absoluteerror": ("identity", "identity"),
    "reg:quantileerror": ("identity", "identity"),
    "reg:logistic": ("logit", "sigmoid"),
    "binary:logistic": ("logit", "sigmoid"),
    "binary:logitraw": ("identity", "identity"),
    "binary:hinge": ("identity", "hinge"),
    "count:poisson": ("log", "exp"),
    "reg:gamma": ("log", "exp"),
    "reg:tweedie": ("log", "exp"),
    "survival:cox": ("log", "exp"),
    "survival:aft": ("log", "exp"),
    "rank:pairwise": ("identity", "identity"),
    "rank:ndcg": ("identity", "identity"),
    "rank:map": ("identity", "identity"),
    "multi:softprob": ("identity", "softmax"),
    "multi:softmax": ("identity", "argmax"),
}
BOOSTERS = ("gbtree", "dart", "gblinear")

_RT_EPS = np.float32(1e-6)  # XGBoost's kRtEps: logistic base scores are clamped to [kRtEps, 1 - kRtEps]
_SIGMOID_CLAMP = np.float32(88.7)  # common::Sigmoid computes expf(min(-x, 88.7f))
_INVALID_NODE = -1
_MAX_CAT = 2**24  # categories at or above this are invalid in XGBoost (src/common/categorical.h)
_LEAF, _LT, _IN = int(Pred.LEAF), int(Pred.LT), int(Pred.IN)  # plain ints: enum lookups cost per tree
_NAN, _NONE = int(Missing.NAN), int(Missing.NONE)


def load(path_or_bytes, *, source_name: str | None = None) -> ModuleOp:
    """Read an XGBoost JSON or UBJSON model (a path, or the file's bytes) into a verified module.

    `source_name` names the model in diagnostics and in `timber.source` (default: the file
    name, or `<bytes>`)."""
    data, source, name = _read(path_or_bytes, source_name)
    kind = _sniff(data, source)
    if kind == "ubj":
        return _Builder(ubjson.decode(data, source), source, name, from_decimal=False).build()
    text = _decode_text(data, source)
    doc = _parse_json(text, source, exact=False, utf8=data)
    try:
        return _Builder(doc, source, name, from_decimal=True).build()
    except _NeedExactFloats:
        # A float's nearest double sits exactly between two floats: re-read every number
        # straight from its decimal text (XGBoost rounds decimal → float32 once, too).
        return _Builder(_parse_json(text, source, exact=True), source, name, from_decimal=False).build()


# ----- reading and sniffing ---------------------------------------------------------------


def _read(path_or_bytes, source_name: str | None) -> tuple[bytes, str, str]:
    """(the bytes, the name diagnostics use, the name `timber.source` records)."""
    if isinstance(path_or_bytes, (bytes, bytearray, memoryview)):
        return bytes(path_or_bytes), source_name or "<bytes>", source_name or "<bytes>"
    path = os.fspath(path_or_bytes)
    source = source_name or path
    if not os.path.exists(path):
        raise TimberError(f"no such file: {path}", NameLoc(source, ""))
    if os.path.isdir(path):
        raise TimberError(f"{path} is a directory, not an XGBoost model file", NameLoc(source, ""))
    try:
        with open(path, "rb") as fh:
            return fh.read(), source, source_name or os.path.basename(path)
    except OSError as e:
        raise TimberError(f"cannot read {path}: {e.strerror}", NameLoc(source, "")) from None


def _sniff(data: bytes, source: str) -> str:
    """'json' or 'ubj'; anything else is rejected here with a reason."""
    body = data.lstrip(b" \t\r\n")
    if body.startswith(b"\xef\xbb\xbf"):
        body = body[3:].lstrip(b" \t\r\n")
    if not body:
        raise TimberError("empty file: expected an XGBoost JSON or UBJSON model", NameLoc(source, ""))
    if body[:1] == b"{":
        after = _NOT_SPACE.search(body, 1)  # (not body[1:].lstrip(): that copies the whole file)
        if after is not None and after.group() in (b'"', b"}"):
            return "json"
        if body[1:2] in (b"i", b"U", b"I", b"l", b"L", b"$", b"#", b"N") or source.lower().endswith(".ubj"):
            return "ubj"  # an object key starts with its length's integer marker
        return "json"  # let the JSON reader say what is wrong
    if _looks_binary(data):
        raise TimberError(
            "this is a legacy binary XGBoost model (the format before JSON/UBJSON); XGBoost 3.2 cannot read it either. "
            "Timber reads JSON and UBJSON models: load it with XGBoost 1.x or 2.x, "
            "`xgboost.Booster(model_file='model.model')`, and convert it with `save_model('model.json')`",
            NameLoc(source, "byte 0"),
        )
    raise TimberError(
        "not an XGBoost model: expected a JSON object (`{...}`) or UBJSON, as written by Booster.save_model", NameLoc(source, "byte 0")
    )


_NOT_SPACE = re.compile(rb"[^ \t\r\n]")


def _looks_binary(data: bytes) -> bool:
    head = data[:4096]
    if head.startswith(b"binf"):
        return True
    if b"\x00" in head:
        return True
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as e:
        return e.start < len(head) - 4  # a multi-byte character cut at the end is still text
    return False


def _decode_text(data: bytes, source: str) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise TimberError(f"the JSON model is not valid UTF-8 (byte 0x{data[e.start]:02X})", NameLoc(source, f"byte {e.start}")) from None


def _exact_f32(text: str) -> float:
    return float(round_to_f32(float(text), text))


def _parse_json(text: str, source: str, exact: bool, utf8: bytes | None = None):
    try:
        return jsonread.loads(text, source, "JSON", utf8=utf8, **({"parse_float": _exact_f32} if exact else {}))
    except json.JSONDecodeError as e:
        raise TimberError(f"corrupt JSON: {e.msg}", NameLoc(source, f"line {e.lineno} column {e.colno}")) from None


class _NeedExactFloats(Exception):
    """Internal: a JSON float needs exact decimal → float32 rounding (see `load`)."""


# ----- float32 math that matches XGBoost's C library ---------------------------------------


def logf(x: np.float32) -> np.float32:
    """float32 natural log as XGBoost computes it: the C library's `logf` (`ir/libm.py`, the one
    place Timber finds it, the library the host JIT calls too)."""
    return np.float32(libm.call("log", np.asarray(x, np.float32)))


def base_margin(objective: str, scores: np.ndarray) -> np.ndarray:
    """XGBoost's `ProbToMargin` of each stored base score, in float32."""
    link = OBJECTIVES[objective][0]
    out = np.asarray(scores, np.float32).copy()
    for i, p in enumerate(out):
        if link == "logit":
            p = min(max(p, _RT_EPS), np.float32(1) - _RT_EPS)
            out[i] = -logf(np.float32(np.float32(1) / p) - np.float32(1))
        elif link == "log":
            out[i] = logf(p)
    return out


# ----- the document walker -----------------------------------------------------------------


@dataclass
class _Tree:
    table: NodeTable
    out: int
    has_categorical: bool


class _Builder:
    """Walks the parsed document (dicts, lists, numpy arrays) and builds the module."""

    def __init__(self, doc, source: str, name: str, from_decimal: bool):
        self.doc = doc
        self.source = source
        self.name = name
        # JSON floats were parsed to the nearest double, which may have to be redone (see `load`);
        # binary doubles (UBJ 'D') or exactly parsed text round to float32 correctly as they are.
        self.from_decimal = from_decimal

    # -- diagnostics and typed access --
    def fail(self, path: str, message: str):
        raise TimberError(message, NameLoc(self.source, path))

    def get(self, obj, key: str, path: str, kind=None, default=...):
        if not isinstance(obj, dict):
            self.fail(path, f"expected a JSON object at '{path}', found {_kind(obj)}")
        where = f"{path}.{key}" if path else key
        if key not in obj:
            if default is not ...:
                return default
            self.fail(where, f"missing key '{key}' in '{path or 'the document'}'")
        value = obj[key]
        if kind == "object" and not isinstance(value, dict):
            self.fail(where, f"expected a JSON object, found {_kind(value)}")
        if kind == "string" and not isinstance(value, str):
            self.fail(where, f"expected a string, found {_kind(value)}")
        if kind == "array" and not isinstance(value, (list, np.ndarray)):
            self.fail(where, f"expected an array, found {_kind(value)}")
        return value

    def int_param(self, obj, key: str, path: str, default: int | None = None) -> int:
        """An integer stored as a string (XGBoost parameters) or a number."""
        v = self.get(obj, key, path, default=None if default is not None else ...)
        if v is None:
            return default
        try:
            if isinstance(v, str):
                return int(v.strip())
            if isinstance(v, (int, np.integer)) and not isinstance(v, bool):
                return int(v)
            if isinstance(v, float) and v.is_integer():
                return int(v)
        except ValueError:
            pass
        self.fail(f"{path}.{key}", f"expected an integer, found {v!r}")

    def numbers(self, value, path: str) -> np.ndarray:
        """A numeric JSON array (or UBJ typed array) as a numpy array (ints stay ints)."""
        if isinstance(value, np.ndarray):
            return value
        if not isinstance(value, list):
            self.fail(path, f"expected an array of numbers, found {_kind(value)}")
        try:
            arr = np.asarray(value)
        except (ValueError, TypeError):
            arr = np.asarray(value, dtype=object)
        if arr.ndim != 1 or arr.dtype.kind not in "biuf":
            for i, v in enumerate(value):
                if isinstance(v, bool) or not isinstance(v, (int, float)):
                    self.fail(f"{path}[{i}]", f"expected a number, found {_kind(v)}")
            self.fail(path, "expected a flat array of numbers")
        return arr

    def ints(self, value, path: str) -> np.ndarray:
        arr = self.numbers(value, path)
        if arr.dtype.kind == "f":
            bad = ~np.isfinite(arr) | (arr != np.round(arr))
            if bad.any():
                i = int(np.argmax(bad))
                self.fail(f"{path}[{i}]", f"expected an integer, found {arr[i].item()!r}")
        if arr.dtype.kind in "fu":  # (a JSON integer of 2**63 or more makes the array float64 or uint64)
            bad = arr >= 2**63 if arr.dtype.kind == "u" else np.abs(arr) >= 2.0**63
            if bad.any():
                i = int(np.argmax(bad))
                self.fail(f"{path}[{i}]", f"integer {arr[i].item():.0f} out of range: at most 2**63 - 1")
        return arr.astype(np.int64)

    def floats(self, value, path: str) -> np.ndarray:
        """A float array rounded to float32 exactly as XGBoost's JSON reader does."""
        arr = self.numbers(value, path)
        if arr.dtype == np.float32:
            return arr
        a64 = arr.astype(np.float64)
        with np.errstate(over="ignore"):
            r = a64.astype(np.float32)
        if self.from_decimal:
            _check_midpoints(a64, r)
        return r

    def float_scalars(self, text: str, path: str) -> np.ndarray:
        """`"5E-1"`, `"[6.2857145E-1]"` or `"[a,b,c]"` → float32 values, correctly rounded."""
        body = text.strip()
        if body.startswith("[") and body.endswith("]"):
            body = body[1:-1]
        parts = [s.strip() for s in body.split(",")] if body.strip() else []
        out = []
        for i, s in enumerate(parts):
            try:
                out.append(round_to_f32(float(s), s))
            except ValueError:
                self.fail(path, f"base_score entry {i} is not a number: '{s}'")
        if not out:
            self.fail(path, f"base_score '{text}' holds no number")
        return np.array(out, np.float32)

    # -- the model --
    def build(self) -> ModuleOp:
        doc = self.doc
        if not isinstance(doc, dict):
            self.fail("", f"expected a JSON object at the top level, found {_kind(doc)}")
        if "learner" not in doc:
            self.fail(
                "learner", "not an XGBoost model: the document has no 'learner' object (is it a model saved with Booster.save_model?)"
            )
        learner = self.get(doc, "learner", "", "object")
        version = self.version()
        lmp = self.get(learner, "learner_model_param", "learner", "object")
        n_features = self.int_param(lmp, "num_feature", "learner.learner_model_param")
        if n_features <= 0:
            self.fail("learner.learner_model_param.num_feature", f"num_feature must be positive, found {n_features}")
        num_class = self.int_param(lmp, "num_class", "learner.learner_model_param", default=0)
        num_target = self.int_param(lmp, "num_target", "learner.learner_model_param", default=1)
        if num_class < 0 or num_target < 1:
            self.fail("learner.learner_model_param", f"invalid num_class {num_class} / num_target {num_target}")
        n_outputs = num_class if num_class > 0 else num_target

        objective = self.get(self.get(learner, "objective", "learner", "object"), "name", "learner.objective", "string")
        if objective not in OBJECTIVES:
            self.fail(
                "learner.objective.name",
                f"unsupported objective '{objective}'; supported: {', '.join(sorted(OBJECTIVES))}",
            )
        bs_path = "learner.learner_model_param.base_score"
        scores = self.float_scalars(self.get(lmp, "base_score", "learner.learner_model_param", "string"), bs_path)
        if len(scores) == 1:
            scores = np.repeat(scores, n_outputs)
        elif len(scores) != n_outputs:
            self.fail(bs_path, f"base_score has {len(scores)} values but the model has {n_outputs} outputs")

        attrs = {
            "timber.format": StringAttr("xgboost"),
            "timber.source": StringAttr(self.name),
            "timber.objective": StringAttr(objective),
        }
        if version:
            attrs["timber.xgboost_version"] = StringAttr(version)
        for key in ("feature_names", "feature_types"):
            names = learner.get(key)
            if names is None:
                continue
            if not isinstance(names, list) or not all(isinstance(s, str) for s in names):
                self.fail(f"learner.{key}", f"expected an array of strings, found {_kind(names)}")
            if names and len(names) != n_features:
                self.fail(f"learner.{key}", f"{len(names)} entries but the model has {n_features} features")
            if names:
                attrs[f"timber.{key}"] = ArrayAttr([StringAttr(s) for s in names])

        gb = self.get(learner, "gradient_booster", "learner", "object")
        booster = self.get(gb, "name", "learner.gradient_booster", "string")
        if booster not in BOOSTERS:
            self.fail("learner.gradient_booster.name", f"unsupported booster '{booster}'; supported: {', '.join(BOOSTERS)}")
        attrs["timber.booster"] = StringAttr(booster)
        # A model never boosted (no trees, or gblinear with 0 rounds) whose intercept was still to
        # be estimated (boost_from_average) predicts base_score unconverted in XGBoost 3.2.
        pending = self.int_param(lmp, "boost_from_average", "learner.learner_model_param", default=1) != 0
        init = scores if pending and not self.fitted(gb, booster) else base_margin(objective, scores)

        module = ModuleOp.build(attrs)
        xt = TensorType((n_features,), f32)
        mt = TensorType((n_outputs,), f32)
        margin = func.FuncOp.build("margin", [xt], [mt], arg_names=["x"])
        module.body.add_op(margin)
        if booster == "gblinear":
            value = self.gblinear(gb, margin, n_features, n_outputs, init)
        else:
            value = self.gbtree(gb, booster, margin, n_features, n_outputs, init)
        margin.body.add_op(func.ReturnOp(operands=[value]))
        self.predict(module, margin, objective, n_outputs)
        verify(module)
        return module

    def fitted(self, gb, booster: str) -> bool:
        model = gb.get("gbtree", {}) if booster == "dart" else gb
        model = model.get("model") if isinstance(model, dict) else None
        if not isinstance(model, dict):
            return True  # let the booster readers report the missing pieces
        if booster == "gblinear":
            return model.get("boosted_rounds", 1) != 0  # files before 1.6 do not record it
        trees = model.get("trees")
        return not isinstance(trees, (list, np.ndarray)) or len(trees) > 0

    def version(self) -> str | None:
        v = self.doc.get("version")
        if isinstance(v, (list, np.ndarray)) and len(v) == 3:
            try:
                return ".".join(str(int(x)) for x in v)
            except (TypeError, ValueError):
                return None
        return None

    # -- gbtree / dart --
    def gbtree(self, gb, booster: str, margin: func.FuncOp, n_features: int, n_outputs: int, init: np.ndarray):
        path = "learner.gradient_booster"
        weights = None
        if booster == "dart":
            weights = self.floats(self.get(gb, "weight_drop", path, "array"), f"{path}.weight_drop")
            gb = self.get(gb, "gbtree", path, "object")
            path += ".gbtree"
        model = self.get(gb, "model", path, "object")
        path += ".model"
        trees = self.get(model, "trees", path, "array")
        n_trees = len(trees)
        declared = self.int_param(self.get(model, "gbtree_model_param", path, "object"), "num_trees", f"{path}.gbtree_model_param")
        if declared != n_trees:
            self.fail(f"{path}.gbtree_model_param.num_trees", f"says {declared} trees but 'trees' holds {n_trees}")
        tree_info = self.ints(self.get(model, "tree_info", path, "array"), f"{path}.tree_info")
        if len(tree_info) != n_trees:
            self.fail(f"{path}.tree_info", f"has {len(tree_info)} entries for {n_trees} trees")
        if weights is not None and len(weights) != n_trees:
            self.fail("learner.gradient_booster.weight_drop", f"has {len(weights)} weights for {n_trees} trees")
        built = self.trees_at_once(trees, path, tree_info, n_features, n_outputs, weights)
        if built is None:  # a problem somewhere: read tree by tree, which reports the first one in file order
            built = []
            for k in range(n_trees):
                tpath = f"{path}.trees[{k}]"
                w = None if weights is None else weights[k]
                built.append(self.tree(trees[k], tpath, int(tree_info[k]), n_features, n_outputs, w))
        has_cat = any(t.has_categorical for t in built)
        ens = EnsembleOp.build(
            margin.args[0], n_outputs, f32, f32, f32, init=init, cat_negative="value" if has_cat else None, name="margin"
        )
        margin.body.add_op(ens)
        for t in built:
            ens.add_tree(t.table, t.out)
        return ens.result

    def trees_at_once(self, trees, path: str, tree_info, n_features: int, n_outputs: int, weights) -> list[_Tree] | None:
        """Every tree read as `tree` reads it, with one numpy pass per column and per check over all
        trees (node ids made global by offsetting each tree after the previous ones): 86 ms instead
        of 280 ms of CPU for 1000 trees of depth 8 (AMD EPYC).

        Returns None when any tree breaks a rule `tree` checks up to its reachability walk, or holds
        something this path leaves to `tree` (floats in an integer column, float32 next to float64
        columns): `tree`, run tree by tree, then raises the first problem in file order with its
        exact location.  The steps `tree` takes after that (leaf vectors, `tree_info`, categories)
        and a JSON float that needs exact rounding are handled tree by tree in file order here, so
        the first problem raised is the one `tree` would raise."""
        if not trees:
            return []
        sizes, dims = [], []
        for t in trees:
            if not isinstance(t, dict) or not isinstance(t.get("tree_param"), dict):
                return None
            try:
                n = self.int_param(t["tree_param"], "num_nodes", "")
                dims.append(max(self.int_param(t["tree_param"], "size_leaf_vector", "", default=1), 1))
            except TimberError:
                return None
            if n <= 0:
                return None
            sizes.append(n)
        int_cols = {}
        for key in ("left_children", "right_children", "split_indices", "default_left", "split_type"):
            arrs = _column_arrays(trees, key, sizes, "iub", optional=key == "split_type")
            if arrs is None:
                return None
            int_cols[key] = np.concatenate(arrs, dtype=np.int64, casting="unsafe")
        arrs = _column_arrays(trees, "split_conditions", sizes, "iubf")
        if arrs is None:
            return None
        first_mid = -1  # the first tree whose split_conditions need exact decimal → float32 rounding
        widths = {a.dtype == np.float32 for a in arrs}
        if widths == {True}:
            cond = np.concatenate(arrs)  # float32 already (UBJ): `floats` keeps such arrays as they are
        elif widths == {False}:
            a64 = np.concatenate(arrs, dtype=np.float64, casting="unsafe")
            with np.errstate(over="ignore"):
                cond = a64.astype(np.float32)
            mid = _midpoints(a64, cond) if self.from_decimal else None
            if mid is not None:
                first_mid = int(np.searchsorted(np.cumsum(sizes), int(np.argmax(mid)), side="right"))
        else:
            return None

        sizes_a = np.array(sizes, np.int64)
        offsets = np.concatenate([[0], np.cumsum(sizes_a)])
        total, roots = int(offsets[-1]), offsets[:-1]
        n_local, base = np.repeat(sizes_a, sizes_a), np.repeat(roots, sizes_a)
        left, right, fidx = int_cols["left_children"], int_cols["right_children"], int_cols["split_indices"]
        dleft, stype = int_cols["default_left"] != 0, int_cols["split_type"]
        # The checks of `tree`, for all nodes at once (the first failing one is found by `tree`).
        is_leaf = left == _INVALID_NODE
        split = ~is_leaf
        if np.any(split & ((left <= 0) | (left >= n_local) | (right <= 0) | (right >= n_local))):
            return None
        if np.any(split & ((fidx < 0) | (fidx >= n_features))):
            return None
        if np.any(split & (stype != 0) & (stype != 1)):
            return None
        cat = split & (stype == 1)
        num = split & (stype == 0)
        if np.any(num & np.isnan(cond)):
            return None
        # `reachable` for all trees: one walk down from every root at once, level by level.
        gleft, gright = np.where(split, left + base, -1), np.where(split, right + base, -1)
        seen = np.zeros(total, bool)
        seen[roots] = True
        frontier = roots
        while frontier.size:
            inner = frontier[split[frontier]]
            kids = np.concatenate([gleft[inner], gright[inner]])
            if kids.size and (seen[kids].any() or (np.bincount(kids, minlength=total)[kids] > 1).any()):
                return None  # a node reached twice
            seen[kids] = True
            frontier = kids
        all_seen = np.add.reduceat(seen, roots) == sizes_a  # per tree: no deleted nodes

        nodes = _node_columns(split, cat, num, fidx, cond, left, right, dleft)
        leaves = np.where(is_leaf, cond, np.float32(0)).astype(np.float32).reshape(total, 1)
        has_cat = np.logical_or.reduceat(cat, roots)

        built = []
        for k, t in enumerate(trees):
            if k == first_mid:
                raise _NeedExactFloats
            n, dim, tpath = sizes[k], dims[k], f"{path}.trees[{k}]"
            s = slice(int(roots[k]), int(roots[k]) + n)
            if dim == 1:
                leaf = leaves[s]
            else:
                leaf = self.leaf_values(t, tpath, n, dim, cond[s], is_leaf[s], right[s], n_outputs)
            if weights is not None:
                leaf = (leaf * np.float32(weights[k])).astype(np.float32)  # Dart: out += leaf * w, in float
            group = int(tree_info[k])
            if dim == 1 and not 0 <= group < n_outputs:
                self.fail(f"{path}.tree_info", f"tree writes output {group}, but the model has {n_outputs} outputs")
            if dim > 1 and dim != n_outputs:
                self.fail(f"{tpath}.tree_param.size_leaf_vector", f"leaf vectors of {dim} values, but the model has {n_outputs} outputs")
            if has_cat[k]:
                cat_start, cat_len, words = self.categories(t, tpath, n, cat[s])
            else:  # what `categories` returns for a tree without categorical splits
                cat_start, cat_len, words = np.zeros(n, np.int32), np.zeros(n, np.int32), np.zeros(0, np.uint32)
            cols = (*(c[s] for c in nodes), leaf, cat_start, cat_len)
            if not all_seen[k]:
                cols = _renumber(np.flatnonzero(seen[s]), n, *cols)
            built.append(_Tree(NodeTable(*cols, words), 0 if dim > 1 else group, bool(has_cat[k])))
        return built

    def tree(self, t, path: str, group: int, n_features: int, n_outputs: int, weight) -> _Tree:
        if not isinstance(t, dict):
            self.fail(path, f"expected a tree object, found {_kind(t)}")
        tp = self.get(t, "tree_param", path, "object")
        n = self.int_param(tp, "num_nodes", f"{path}.tree_param")
        dim = max(self.int_param(tp, "size_leaf_vector", f"{path}.tree_param", default=1), 1)
        if n <= 0:
            self.fail(f"{path}.tree_param.num_nodes", f"a tree needs at least one node, found {n}")
        left = self.column(t, "left_children", path, n, self.ints)
        right = self.column(t, "right_children", path, n, self.ints)
        fidx = self.column(t, "split_indices", path, n, self.ints)
        cond = self.column(t, "split_conditions", path, n, self.floats)
        dleft = self.column(t, "default_left", path, n, self.ints) != 0
        stype = self.column(t, "split_type", path, n, self.ints) if "split_type" in t else np.zeros(n, np.int64)

        is_leaf = left == _INVALID_NODE
        split = ~is_leaf
        for name, kids in (("left_children", left), ("right_children", right)):
            bad = split & ((kids <= 0) | (kids >= n))
            if bad.any():
                i = int(np.argmax(bad))
                self.fail(f"{path}.{name}[{i}]", f"child index {int(kids[i])} out of range for a tree of {n} nodes")
        bad = split & ((fidx < 0) | (fidx >= n_features))
        if bad.any():
            i = int(np.argmax(bad))
            self.fail(f"{path}.split_indices[{i}]", f"feature index {int(fidx[i])} out of range: the model has {n_features} features")
        bad = split & (stype != 0) & (stype != 1)
        if bad.any():
            i = int(np.argmax(bad))
            self.fail(f"{path}.split_type[{i}]", f"unknown split type {int(stype[i])}; supported: 0 (numerical), 1 (categorical)")
        cat = split & (stype == 1)
        num = split & (stype == 0)
        bad = num & np.isnan(cond)
        if bad.any():
            i = int(np.argmax(bad))
            self.fail(f"{path}.split_conditions[{i}]", "a numerical split has a NaN threshold")

        leaf = self.leaf_values(t, path, n, dim, cond, is_leaf, right, n_outputs)
        if weight is not None:
            leaf = (leaf * np.float32(weight)).astype(np.float32)  # Dart: out += leaf * w, in float
        if dim == 1 and not 0 <= group < n_outputs:
            self.fail(f"{path[: path.rfind('.trees')]}.tree_info", f"tree writes output {group}, but the model has {n_outputs} outputs")
        if dim > 1 and dim != n_outputs:
            self.fail(f"{path}.tree_param.size_leaf_vector", f"leaf vectors of {dim} values, but the model has {n_outputs} outputs")

        keep = self.reachable(path, left, right, is_leaf)
        cat_start, cat_len, words = self.categories(t, path, n, cat)
        cols = (*_node_columns(split, cat, num, fidx, cond, left, right, dleft), leaf, cat_start, cat_len)
        if keep is not None:
            cols = _renumber(keep, n, *cols)
        table = NodeTable(*cols, words)
        return _Tree(table, 0 if dim > 1 else group, bool(cat.any()))

    def column(self, t, key: str, path: str, n: int, conv) -> np.ndarray:
        arr = conv(self.get(t, key, path, "array"), f"{path}.{key}")
        if len(arr) != n:
            self.fail(f"{path}.{key}", f"has {len(arr)} entries for a tree of {n} nodes (tree_param.num_nodes)")
        return arr

    def leaf_values(self, t, path, n, dim, cond, is_leaf, right, n_outputs) -> np.ndarray:
        """(n, dim) float32 leaf values (zeros at split nodes)."""
        if dim == 1:
            return np.where(is_leaf, cond, np.float32(0)).astype(np.float32).reshape(n, 1)
        # Vector leaves.  XGBoost ≥ 3.1 stores them in `leaf_weights`, one row per leaf, and
        # reuses a leaf's right child as its row; 2.x keeps them in `base_weights`, one row per node.
        out = np.zeros((n, dim), np.float32)
        if "leaf_weights" in t:
            lw = self.floats(self.get(t, "leaf_weights", path, "array"), f"{path}.leaf_weights")
            if len(lw) % dim:
                self.fail(f"{path}.leaf_weights", f"{len(lw)} values is not a multiple of size_leaf_vector {dim}")
            rows = lw.reshape(-1, dim)
            idx = right[is_leaf]
            bad = (idx < 0) | (idx >= len(rows))
            if bad.any():
                i = int(np.flatnonzero(is_leaf)[np.argmax(bad)])
                self.fail(f"{path}.right_children[{i}]", f"leaf {i} points at leaf_weights row {int(right[i])}, but there are {len(rows)}")
            out[is_leaf] = rows[idx]
            return out
        bw = self.floats(self.get(t, "base_weights", path, "array"), f"{path}.base_weights")
        if len(bw) != n * dim:
            self.fail(f"{path}.base_weights", f"{len(bw)} values, expected num_nodes × size_leaf_vector = {n * dim}")
        out[is_leaf] = bw.reshape(n, dim)[is_leaf]
        return out

    def categories(self, t, path: str, n: int, cat: np.ndarray):
        """Per-node slices of one uint32 bitset pool for the categorical splits."""
        cat_start, cat_len = np.zeros(n, np.int32), np.zeros(n, np.int32)
        if not cat.any():
            return cat_start, cat_len, np.zeros(0, np.uint32)
        values = self.ints(self.get(t, "categories", path, "array"), f"{path}.categories")
        nodes = self.ints(self.get(t, "categories_nodes", path, "array"), f"{path}.categories_nodes")
        segs = self.ints(self.get(t, "categories_segments", path, "array"), f"{path}.categories_segments")
        if "categories_sizes" in t:
            sizes = self.ints(self.get(t, "categories_sizes", path, "array"), f"{path}.categories_sizes")
        else:  # derive the sizes from consecutive segments
            sizes = np.diff(np.append(segs, len(values)))
        if not (len(nodes) == len(segs) == len(sizes)):
            self.fail(f"{path}.categories_nodes", f"categories_nodes/segments/sizes have {len(nodes)}/{len(segs)}/{len(sizes)} entries")
        members: dict[int, np.ndarray] = {}
        for j, (node, s, m) in enumerate(zip(nodes.tolist(), segs.tolist(), sizes.tolist())):
            if not (0 <= node < n and cat[node]):
                self.fail(f"{path}.categories_nodes[{j}]", f"node {node} is not a categorical split of this tree")
            if s < 0 or m < 0 or s + m > len(values):
                self.fail(f"{path}.categories_segments[{j}]", f"segment [{s}, {s + m}) lies outside 'categories' ({len(values)} values)")
            vals = values[s : s + m]
            if (vals < 0).any():
                self.fail(f"{path}.categories[{s + int(np.argmax(vals < 0))}]", "negative category in a split's set")
            # XGBoost's InvalidCat sends every value >= 2^24 left before looking at the set, so a
            # member that large can never match: leave it out (and keep the bitset small).
            members[node] = vals[vals < _MAX_CAT]
        pool, used = [], 0
        for node in np.flatnonzero(cat).tolist():
            words = bitset_from_members(members.get(node, ()))  # a split without a set sends everything left
            cat_start[node], cat_len[node] = used, len(words)
            pool.append(words)
            used += len(words)
        return cat_start, cat_len, (np.concatenate(pool) if pool else np.zeros(0, np.uint32))

    def reachable(self, path: str, left, right, is_leaf) -> np.ndarray | None:
        """None when every node hangs off the root exactly once; else the reachable nodes.

        Walks level by level with numpy; a node reached twice (a cycle or a shared child)
        is a corrupt tree."""
        n = len(left)
        seen = np.zeros(n, bool)
        seen[0] = True
        frontier = np.zeros(1, np.int64)
        while frontier.size:
            inner = frontier[~is_leaf[frontier]]
            kids = np.concatenate([left[inner], right[inner]])
            dup = seen[kids] | (np.bincount(kids, minlength=n)[kids] > 1)
            if dup.any():
                self.fail(f"{path}.left_children", f"node {int(kids[np.argmax(dup)])} is reached twice: the nodes do not form a tree")
            seen[kids] = True
            frontier = kids
        return None if seen.all() else np.flatnonzero(seen)

    # -- gblinear --
    def gblinear(self, gb, margin: func.FuncOp, n_features: int, n_outputs: int, init: np.ndarray):
        path = "learner.gradient_booster.model"
        model = self.get(gb, "model", "learner.gradient_booster", "object")
        w = self.floats(self.get(model, "weights", path, "array"), f"{path}.weights")
        if len(w) == 0:  # never boosted: XGBoost allocates the weights, all zero, on first use
            w = np.zeros((n_features + 1) * n_outputs, np.float32)
        if len(w) != (n_features + 1) * n_outputs:
            self.fail(f"{path}.weights", f"{len(w)} weights, expected (num_feature + 1) × outputs = {(n_features + 1) * n_outputs}")
        table = w.reshape(n_features + 1, n_outputs)  # row j = feature j, last row = bias
        # psum = bias[k] + base margin, in float; GBLinear takes base_score(0) for every output
        # (a per-class base_score vector is used by gbtree only).
        bias = (table[-1] + init[0]).astype(np.float32)
        op = AffineOp.build(margin.args[0], np.ascontiguousarray(table[:-1].T), bias, f32, missing="skip", name="margin")
        margin.body.add_op(op)
        return op.result

    # -- @predict --
    def predict(self, module: ModuleOp, margin: func.FuncOp, objective: str, k: int) -> None:
        transform = OBJECTIVES[objective][1]
        mt = TensorType((k,), f32)
        out_t = TensorType((1,), f32) if transform == "argmax" else mt
        fn = func.FuncOp.build("predict", [margin.function_type.inputs[0]], [out_t], arg_names=["x"])
        module.body.add_op(fn)
        body = fn.body
        m = body.add_op(func.CallOp.build(margin, [fn.args[0]], name="margin")).result

        def const(value, name):
            return body.add_op(arith.ConstantOp.build(np.full(k, value, np.float32), mt, name=name)).result

        if transform == "sigmoid":
            lo = const(-_SIGMOID_CLAMP, "lo")
            clamped = body.add_op(arith.MaximumFOp.build(m, lo, name="clamped")).result
            v = body.add_op(mathd.SigmoidOp.build(clamped, name="proba")).result
        elif transform == "exp":
            v = body.add_op(mathd.ExpOp.build(m, name="pred")).result
        elif transform == "hinge":
            zero, one = const(0.0, "zero"), const(1.0, "one")
            pos = body.add_op(arith.CmpFOp.build("ogt", m, zero, name="pos")).result
            v = body.add_op(arith.SelectOp.build(pos, one, zero, name="label")).result
        elif transform == "softmax":
            v = body.add_op(mathd.SoftmaxOp.build(m, name="proba", acc=f64)).result
        elif transform == "argmax":
            i = body.add_op(mathd.ArgmaxOp.build(m, name="index")).result
            v = body.add_op(arith.SIToFPOp.build(i, out_t, name="label")).result
        else:
            v = m
        body.add_op(func.ReturnOp(operands=[v]))


def _node_columns(split, cat, num, fidx, cond, left, right, dleft) -> tuple:
    """NodeTable's feature, pred, threshold, yes, no, missing and default columns (in the dtypes
    it keeps) from XGBoost's: numerical splits go left (`yes`) when x < t, categorical ones go
    right (`yes`) for members; missing values follow `default_left`."""
    is_leaf = ~split
    return (
        np.where(split, fidx, -1).astype(np.int32),
        np.where(is_leaf, _LEAF, np.where(cat, _IN, _LT)).astype(np.uint8),
        np.where(num, cond, np.float32(0)).astype(np.float32),
        np.where(is_leaf, -1, np.where(cat, right, left)).astype(np.int32),
        np.where(is_leaf, -1, np.where(cat, left, right)).astype(np.int32),
        np.where(split, _NAN, _NONE).astype(np.uint8),
        np.where(split, np.where(dleft, left, right), -1).astype(np.int32),
    )


def _check_midpoints(a64: np.ndarray, r: np.ndarray) -> None:
    """Raise `_NeedExactFloats` if a double lies exactly halfway between two float32s.

    Only then can rounding the JSON text to double first and to float second differ from
    rounding it to float once, as XGBoost's reader does."""
    if _midpoints(a64, r) is not None:
        raise _NeedExactFloats


def _midpoints(a64: np.ndarray, r: np.ndarray) -> np.ndarray | None:
    """Where the doubles `a64` lie exactly halfway between two float32s (`r` = `a64` rounded to
    float32), as a mask; None when nowhere."""
    with np.errstate(invalid="ignore", over="ignore"):
        back = r.astype(np.float64)
        if (back == a64).all():  # the common case: every value is a float32 already
            return None
        off = np.isfinite(a64) & np.isfinite(r) & (back != a64)
        if not off.any():
            return None
        ro, ao = r[off], a64[off]
        nb = np.nextafter(ro, np.where(ao > ro.astype(np.float64), np.float32(np.inf), np.float32(-np.inf)).astype(np.float32))
        mid = (ro.astype(np.float64) + nb.astype(np.float64)) / 2
    hit = mid == ao
    if not hit.any():
        return None
    mask = np.zeros(len(a64), bool)
    mask[np.flatnonzero(off)[hit]] = True
    return mask


_ABSENT = object()


def _column_arrays(trees: list, key: str, sizes: list[int], kinds: str, optional: bool = False) -> list[np.ndarray] | None:
    """Each tree's column `key` as the numpy array `_Builder.numbers` makes of it, when every one
    is a flat array of `sizes[k]` values of a dtype kind in `kinds`; else None.  An absent
    optional column is zeros."""
    if kinds == "iub" and all(type(t.get(key)) is list for t in trees) and [len(t[key]) for t in trees] == sizes:
        # Integer columns of JSON lists convert 1.5x faster as one list.  When all of it comes
        # out int64 (or bool), every element was a Python int in range (or a bool), and so it
        # would have come out of each tree's list alone: the same values.
        try:
            flat = np.asarray(list(chain.from_iterable(t[key] for t in trees)))
        except (ValueError, TypeError):  # e.g. ragged nested lists: the per-tree reading below decides
            flat = None
        if flat is not None and flat.dtype in (np.int64, np.bool_) and flat.ndim == 1:
            return [flat]
    out = []
    for t, n in zip(trees, sizes):
        v = t.get(key, _ABSENT)
        if v is _ABSENT and optional:
            out.append(np.zeros(n, np.int64))
            continue
        if isinstance(v, list):
            try:
                v = np.asarray(v)
            except (ValueError, TypeError):
                return None
        if not isinstance(v, np.ndarray) or v.ndim != 1 or len(v) != n or v.dtype.kind not in kinds:
            return None
        if v.dtype.kind == "u" and v.dtype.itemsize == 8:
            return None  # (uint64: a JSON integer of 2**63 or more, which `ints` refuses)
        out.append(v)
    return out


def _renumber(keep: np.ndarray, n: int, feature, pred, threshold, yes, no, missing, default, leaf, cat_start, cat_len) -> tuple:
    """A tree's node columns with only the nodes `keep` (the reachable ones, in order), children
    renumbered: XGBoost leaves deleted nodes in its arrays."""
    remap = np.full(n, -1, np.int64)
    remap[keep] = np.arange(len(keep))
    yes, no, default = (np.where(c[keep] >= 0, remap[np.maximum(c[keep], 0)], -1) for c in (yes, no, default))
    return feature[keep], pred[keep], threshold[keep], yes, no, missing[keep], default, leaf[keep], cat_start[keep], cat_len[keep]


def _kind(v) -> str:
    if isinstance(v, dict):
        return "an object"
    if isinstance(v, (list, np.ndarray)):
        return "an array"
    if isinstance(v, str):
        return f"the string {v!r}" if len(v) < 40 else "a string"
    if isinstance(v, bool):
        return f"the boolean {str(v).lower()}"
    if v is None:
        return "null"
    return f"the number {v!r}"


__all__ = ["BOOSTERS", "OBJECTIVES", "base_margin", "load", "logf"]
