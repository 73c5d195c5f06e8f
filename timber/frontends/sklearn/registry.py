"""The converter registry of the scikit-learn front-end: inert estimator records, the IR emitter
converters write into, and the table of converters by class name.

A fitted estimator reaches a converter as an `Obj` record (never the sklearn object itself):
its full class name as pickled, its instance state (`__getstate__` / what `BUILD` set) and, for
Cython objects such as `sklearn.tree._tree.Tree`, its constructor arguments.  Nested estimators
(`estimators_`, pipeline steps, `init_`) are `Obj` records too; arrays are numpy arrays.

A converter is a function `fn(emit, est, x, method) -> Value` registered with

    @converts("StandardScaler", kind="transformer", methods=("transform",))
    def standard_scaler(emit, est, x, method): ...

It receives `x`, the row as a rank-1 f64 tensor, appends ops computing `method` through `emit`
and returns the result (a rank-1 f64 tensor).  `method` is the one the user asked for, or None
when they did not: the converter then computes its default (`methods[0]`, or for a classifier
`predict_proba` when the fitted estimator has it, else `decision_function`).  A method not in
`methods` never reaches the converter (the dispatcher refuses it, naming the supported ones).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, NoReturn

import numpy as np

import ir.dialects  # noqa: F401  (registers every op)
from ir.attributes import DenseElementsAttr
from ir.core import Block, Value
from ir.diagnostics import NameLoc, TimberError
from ir.dialects import arith, math
from ir.types import TensorType, f32, f64, i64

METHODS = ("predict", "predict_proba", "predict_log_proba", "decision_function", "score_samples", "transform")
KINDS = ("classifier", "regressor", "transformer", "outlier", "meta")


class ConvertError(TimberError):
    """A fitted estimator Timber cannot compile (unsupported class, option, layout, or not fitted)."""


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


@dataclass
class Obj:
    """An inert record of a pickled (or live) Python object: what a converter reads.

    `cls`: the full dotted class name as pickled ("sklearn.ensemble._forest.RandomForestClassifier");
    `state`: the instance dict (or the state given to `__setstate__`); `args`: constructor
    arguments (Cython extension types such as `Tree`), else ().  `source` names the file (or
    "<estimator>") for diagnostics."""

    cls: str
    state: dict
    args: tuple = ()
    source: str = field(default="<estimator>", compare=False, repr=False)

    @property
    def name(self) -> str:
        """The short class name, e.g. "RandomForestClassifier"."""
        return self.cls.rsplit(".", 1)[-1]

    def has(self, key: str) -> bool:
        return isinstance(self.state, dict) and key in self.state

    def attr(self, key: str, default=MISSING):
        """`state[key]`; absent: `default` if given, else a ConvertError naming `ClassName.key`
        (and saying the estimator may not be fitted when the name ends in `_`)."""
        if isinstance(self.state, dict) and key in self.state:
            return self.state[key]
        if default is not MISSING:
            return default
        hint = " (is the estimator fitted?)" if key.endswith("_") else ""
        raise ConvertError(f"{self.name}.{key} is missing{hint}; this {self.name} cannot be compiled", NameLoc(self.source, self.name))

    def array(self, key: str, dtype=np.float64, ndim: int | None = None, finite: bool = False) -> np.ndarray:
        """`state[key]` as a numeric numpy array of `dtype` (checked: numeric, `ndim` if given,
        every value finite if `finite`)."""
        v = self.attr(key)
        where = NameLoc(self.source, f"{self.name}.{key}")
        try:
            a = np.asarray(v)
        except Exception:  # noqa: BLE001  (anything not array-like)
            raise ConvertError(f"{self.name}.{key} is a {type(v).__name__}, expected a numeric array", where) from None
        if a.dtype.kind not in "fiub":
            raise ConvertError(f"{self.name}.{key} holds {a.dtype} values, expected numbers", where)
        if ndim is not None and a.ndim != ndim:
            raise ConvertError(f"{self.name}.{key} has shape {a.shape}, expected {ndim} dimension(s)", where)
        a = a.astype(dtype)
        if finite and a.dtype.kind == "f" and not np.all(np.isfinite(a)):
            raise ConvertError(f"{self.name}.{key} holds NaN or infinite values", where)
        return a

    def floats(self, key: str, ndim: int | None = None) -> np.ndarray:
        """`state[key]` as a float array in the precision it was stored in: float32 stays float32
        (an estimator fitted on float32 data keeps float32 attributes, and scikit-learn derives
        constants from them in float32), anything else becomes float64."""
        a = np.asarray(self.attr(key))
        return self.array(key, np.float32 if a.dtype == np.float32 else np.float64, ndim)

    def param(self, key: str, default=MISSING):
        """A constructor parameter (no trailing `_`): like `attr`, but its absence reads as an
        unknown version layout rather than an unfitted estimator."""
        if isinstance(self.state, dict) and key in self.state:
            return self.state[key]
        if default is not MISSING:
            return default
        raise ConvertError(
            f"{self.name} has no parameter '{key}': a layout this front-end does not know (another scikit-learn version?)",
            NameLoc(self.source, self.name),
        )


@dataclass
class Converter:
    """How to compile one estimator class: `fn(emit, est, x, method) -> Value`, what kind of
    estimator it is, and the methods it compiles (`methods[0]`: the default)."""

    fn: Callable[..., Value]
    kind: str
    methods: tuple[str, ...]


CONVERTERS: dict[str, Converter] = {}


def converts(*class_names: str, kind: str, methods: tuple[str, ...]):
    """Register the decorated function as the converter of each short class name."""
    if kind not in KINDS:
        raise ValueError(f"unknown converter kind {kind!r}")
    bad = [m for m in methods if m not in METHODS]
    if bad or not methods:
        raise ValueError(f"unknown methods {bad}")

    def deco(fn):
        for name in class_names:
            if name in CONVERTERS and CONVERTERS[name].fn is not fn:
                raise ValueError(f"two converters for {name}")
            CONVERTERS[name] = Converter(fn, kind, tuple(methods))
        return fn

    return deco


def supported() -> list[str]:
    """The estimator classes with a converter, sorted."""
    return sorted(CONVERTERS)


class Emit:
    """Where converters write IR: the body of the module's public `func.func @predict`.

    `op(o)` appends an op (located at the estimator or pipeline step being converted),
    `const(values)` a rank-1 constant, `fail(est, msg)` raises the front-end's error, and
    `labels(scores, classes)` turns class scores into `predict`'s labels."""

    def __init__(self, block: Block, source: str, rows_f32: bool = False):
        self.block = block
        self.source = source
        self._where: list[str] = []
        # dtype="float32": the rows are float32, and scikit-learn then computes some steps in
        # float32.  Values are still f64 tensors; those holding a float32 result of scikit-learn's
        # are in `f32` (made by `round32`, or the row itself).
        self.rows_f32 = rows_f32
        self.f32: set[Value] = set()
        self.weak: set[Value] = set()  # constants of Python floats: they take the other operand's dtype

    # ----- float32 rows ----------------------------------------------------------------------------
    def is32(self, v: Value) -> bool:
        """Whether `v` holds what scikit-learn holds as float32 (only ever with dtype="float32")."""
        return v in self.f32

    def round32(self, v: Value, name: str | None = None) -> Value:
        """`v` rounded to float32 (and widened back: exact), marked float32.  One f64 operation
        on float32 operands rounded so is the float32 operation (+ - * / sqrt: 53 ≥ 2·24 + 2)."""
        if v in self.f32:
            return v
        n = v.type.shape
        r = self.op(arith.ExtFOp.build(self.op(arith.TruncFOp.build(v, TensorType(n, f32))), TensorType(n, f64), name=name))
        self.f32.add(r)
        return r

    def round_if32(self, v: Value, *operands, name: str | None = None) -> Value:
        """numpy's promotion (NEP 50) for an elementwise op on `operands` that gave `v`: float32
        when at least one operand is float32 and the others are float32 or weak Python scalars
        (constants made from Python floats), else float64 as computed."""
        if any(o in self.f32 for o in operands) and all(o in self.f32 or o in self.weak for o in operands):
            return self.round32(v, name)
        return v

    # ----- location --------------------------------------------------------------------------
    @contextlib.contextmanager
    def at(self, part: str) -> Iterator[None]:
        """Ops appended and errors raised inside name `part` (e.g. "steps[2] (PCA)") in their location."""
        self._where.append(part)
        try:
            yield
        finally:
            self._where.pop()

    @property
    def where(self) -> str:
        return ".".join(self._where)

    def loc(self, est: Obj | None = None) -> NameLoc:
        path = self.where
        if est is not None and not path.endswith(f"({est.name})"):
            path = f"{path} ({est.name})" if path else est.name
        return NameLoc(self.source, path)

    # ----- building ------------------------------------------------------------------------------
    def op(self, op) -> Value:
        """Append `op` and return its first result (None for ops without results)."""
        if op.location is None:
            op.location = NameLoc(self.source, self.where)
        self.block.add_op(op)
        return op.results[0] if op.results else None

    def const(self, values, name: str | None = None, dtype=np.float64) -> Value:
        """A rank-1 tensor constant (f64 by default; `dtype=np.int64` for i64).  With float32
        rows, a float32 array gives a float32 constant and Python floats a weak one (numpy's
        promotion, `round_if32`)."""
        v = np.asarray(values, dtype).reshape(-1)
        elem = i64 if np.dtype(dtype) == np.int64 else f64
        c = self.op(arith.ConstantOp.build(v, TensorType((len(v),), elem), name=name))
        if self.rows_f32:
            if getattr(values, "dtype", None) == np.float32:
                self.f32.add(c)
            elif type(values) in (float, int) or (isinstance(values, (list, tuple)) and all(type(e) in (float, int) for e in values)):
                self.weak.add(c)
        return c

    def fail(self, est: Obj, message: str) -> NoReturn:
        """Raise a ConvertError `<source>: <where> (<ClassName>): error: <ClassName>: message`."""
        raise ConvertError(f"{est.name}: {message}", self.loc(est))

    # ----- outputs -----------------------------------------------------------------------------
    def labels(self, scores: Value, classes) -> Value:
        """`predict` from class scores: the column of the first largest score (numpy's argmax)
        looked up in `classes` (as f64); one column of scores (a binary decision function)
        gives `classes[1]` where the score is > 0, else `classes[0]`.  Classes that are not
        numbers are an error (Timber's outputs are f64)."""
        cls = np.asarray(classes)
        if cls.dtype.kind not in "iufb":
            try:
                cls = cls.astype(np.float64)
            except (TypeError, ValueError):
                raise ConvertError(
                    f"class labels {list(cls[:4])!r}... are not numbers; method='predict' compiles numeric labels only "
                    "(use predict_proba and classes_ instead)",
                    self.loc(),
                ) from None
        cls = cls.astype(np.float64).reshape(-1)
        k = scores.type.shape[0]
        if k == 1:
            if len(cls) != 2:
                raise ConvertError(f"one decision column but {len(cls)} classes", self.loc())
            zero = self.const([0.0], "zero")
            pos = self.op(arith.CmpFOp.build("ogt", scores, zero, name="positive"))
            return self.op(arith.SelectOp.build(pos, self.const(cls[1:], "class1"), self.const(cls[:1], "class0"), name="label"))
        if len(cls) != k:
            raise ConvertError(f"{k} score columns but {len(cls)} classes", self.loc())
        idx = self.op(math.ArgmaxOp.build(scores, name="argmax"))
        size = 1 << max(0, (k - 1).bit_length())
        table = np.zeros(size)
        table[:k] = cls
        return self.op(arith.LookupOp.build(idx, DenseElementsAttr(table, TensorType((size,), f64)), name="label"))


def convert(emit: Emit, est: Obj, x: Value, method: str | None) -> Value:
    """Compile `est` on row `x` with its registered converter (errors name the class and, for
    an unknown class, every supported one)."""
    if not isinstance(est, Obj):
        raise ConvertError(f"expected a fitted scikit-learn estimator, found {_describe(est)}", emit.loc())
    conv = CONVERTERS.get(est.name)
    if conv is None or not est.cls.startswith("sklearn."):
        raise ConvertError(f"{est.cls} is not a scikit-learn estimator Timber compiles; supported: {', '.join(supported())}", emit.loc(est))
    if method is not None and method not in conv.methods:
        raise ConvertError(f"{est.name} has no method '{method}' that Timber compiles; it has: {', '.join(conv.methods)}", emit.loc(est))
    out = conv.fn(emit, est, x, method)
    t = getattr(out, "type", None)
    if not (isinstance(t, TensorType) and len(t.shape) == 1 and t.element == f64):
        raise ConvertError(f"{est.name}: the converter produced {t}, expected a rank-1 f64 tensor (internal error)", emit.loc(est))
    return out


def _describe(v) -> str:
    if isinstance(v, np.ndarray):
        return f"a numpy array of shape {v.shape}"
    return f"a {type(v).__name__}"


__all__ = ["CONVERTERS", "KINDS", "METHODS", "MISSING", "ConvertError", "Converter", "Emit", "Obj", "convert", "converts", "supported"]


def numpy_sum(emit: Emit, values: list) -> Value:
    """The sum of rank-1 values as numpy's `add.reduce` computes it over a contiguous float64 row
    (its pairwise summation): fewer than 8 terms left to right from +0.0 (so a sum of -0.0s is
    +0.0, as numpy gives); up to 128 with eight interleaved partial sums; beyond, two halves.
    float32 values (with float32 rows) are summed in float32, as numpy sums a float32 row."""
    from ir.dialects import arith

    def add(p, q):  # float32 values sum in float32 (numpy's float32 pairwise sum): each add rounded
        return emit.round_if32(emit.op(arith.AddFOp.build(p, q)), p, q)

    def pairwise(part: list) -> Value:
        n = len(part)
        if n < 8:
            s = emit.const([0.0], "zero")
            for v in part:
                s = add(s, v)
            return s
        if n <= 128:
            r = list(part[:8])
            i = 8
            while i < n - n % 8:
                r = [add(r[j], part[i + j]) for j in range(8)]
                i += 8
            s = add(add(add(r[0], r[1]), add(r[2], r[3])), add(add(r[4], r[5]), add(r[6], r[7])))
            for v in part[i:]:
                s = add(s, v)
            return s
        n2 = n // 2
        n2 -= n2 % 8
        return add(pairwise(part[:n2]), pairwise(part[n2:]))

    return pairwise(list(values))
