"""A small language for writing function approximations as `arith` IR.

`Emitter` collects ops on one tensor shape; `E` wraps an SSA value so an algorithm reads like
its formula: `r = (x - kd * L1) - kd * L2` emits `arith.mulf`, `arith.subf`, ... in exactly
that order (Python evaluates left to right, as IEEE arithmetic must be written).  Python
numbers next to an `E` become constants of its element type.

    +  -  *  /  unary -     addf/subf/mulf/divf/negf on floats, addi/subi/muli on integers
    &  |  ^  <<  >>         andi/ori/xori/shli/shrsi (>> is arithmetic; `lshr` is logical)
    lt le gt ge eq ne       cmpf (ordered) on floats, cmpi (signed) on integers; `cmp(pred, b)` for any other
    where(c, a, b)          select
    concat(a, b, ...)       arith.concat: 1-D tensors joined (also `a.concat(b, ...)`)
    bits() / as_float()     bitcast f64 <-> i64, f32 <-> i32
    to_int() / to_float()   fptosi (toward zero, saturating) / sitofp
    lookup(values)          a constant table read at (index mod len)

Nothing here evaluates anything: the interpreter runs the emitted IR, and each back-end lowers it.
"""

from __future__ import annotations

import numpy as np

from ...attributes import DenseElementsAttr
from ...core import Value
from ...types import FloatType, IntegerType, TensorType
from .. import arith

f64 = FloatType(64)
f32 = FloatType(32)
i64 = IntegerType(64)
i32 = IntegerType(32)
i1 = IntegerType(1)


class Emitter:
    """Ops of one expansion, in order, all on tensors of `shape`."""

    def __init__(self, shape: tuple[int, ...], location=None):
        self.shape = tuple(shape)
        self.ops: list = []
        self.location = location
        self._consts: dict = {}

    def tensor(self, elem, shape=None) -> TensorType:
        return TensorType(self.shape if shape is None else tuple(shape), elem)

    def emit(self, op) -> "E":
        op.location = self.location
        self.ops.append(op)
        return E(self, op.results[0])

    def wrap(self, v: Value) -> "E":
        return E(self, v)

    def const(self, value, elem, shape=None) -> "E":
        """A constant of `elem` splatted over `shape` (default: the emitter's; one op per distinct value)."""
        shape = self.shape if shape is None else tuple(shape)
        arr = np.full(shape, value, dtype=elem.numpy)
        key = (str(elem), shape, arr.tobytes()[: elem.numpy.itemsize])
        e = self._consts.get(key)
        if e is None:
            e = self._consts[key] = self.emit(arith.ConstantOp.build(arr, self.tensor(elem, shape)))
        return e


def _elem(v: Value):
    return v.type.element


class E:
    """An SSA value in an expansion, with arithmetic operators that emit ops."""

    __slots__ = ("em", "v")

    def __init__(self, em: Emitter, v: Value):
        self.em, self.v = em, v

    @property
    def elem(self):
        return _elem(self.v)

    @property
    def is_float(self) -> bool:
        return isinstance(self.elem, FloatType)

    def _lift(self, other) -> "E":
        if isinstance(other, E):
            return other
        shape = self.v.type.shape
        if self.is_float:
            return self.em.const(float(other), self.elem, shape)
        if self.elem == i1:
            return self.em.const(bool(other), i1, shape)
        return self.em.const(int(other), self.elem, shape)

    def const(self, value) -> "E":
        """A constant of this value's type."""
        return self._lift(value)

    def _bin(self, fop, iop, other, swap=False) -> "E":
        a, b = self, self._lift(other)
        if swap:
            a, b = b, a
        cls = fop if self.is_float else iop
        if cls is None:
            raise TypeError(f"no such operation on {self.elem}")
        return self.em.emit(cls.build(a.v, b.v))

    # arithmetic
    def __add__(self, o):
        return self._bin(arith.AddFOp, arith.AddIOp, o)

    def __radd__(self, o):
        return self._bin(arith.AddFOp, arith.AddIOp, o, swap=True)

    def __sub__(self, o):
        return self._bin(arith.SubFOp, arith.SubIOp, o)

    def __rsub__(self, o):
        return self._bin(arith.SubFOp, arith.SubIOp, o, swap=True)

    def __mul__(self, o):
        return self._bin(arith.MulFOp, arith.MulIOp, o)

    def __rmul__(self, o):
        return self._bin(arith.MulFOp, arith.MulIOp, o, swap=True)

    def __truediv__(self, o):
        return self._bin(arith.DivFOp, None, o)

    def __rtruediv__(self, o):
        return self._bin(arith.DivFOp, None, o, swap=True)

    def __neg__(self):
        if not self.is_float:
            return self._lift(0) - self
        return self.em.emit(arith.NegFOp.build(self.v))

    # bits
    def __and__(self, o):
        return self._bin(None, arith.AndIOp, o)

    def __or__(self, o):
        return self._bin(None, arith.OrIOp, o)

    def __xor__(self, o):
        return self._bin(None, arith.XOrIOp, o)

    def __invert__(self):
        return self ^ (True if self.elem == i1 else -1)

    def __lshift__(self, o):
        return self._bin(None, arith.ShLIOp, o)

    def __rshift__(self, o):
        return self._bin(None, arith.ShRSIOp, o)

    def lshr(self, o) -> "E":
        return self._bin(None, arith.ShRUIOp, o)

    # comparisons (to i1)
    def cmp(self, pred: str, o) -> "E":
        b = self._lift(o)
        cls = arith.CmpFOp if self.is_float else arith.CmpIOp
        return self.em.emit(cls.build(pred, self.v, b.v))

    def lt(self, o):
        return self.cmp("olt" if self.is_float else "slt", o)

    def le(self, o):
        return self.cmp("ole" if self.is_float else "sle", o)

    def gt(self, o):
        return self.cmp("ogt" if self.is_float else "sgt", o)

    def ge(self, o):
        return self.cmp("oge" if self.is_float else "sge", o)

    def eq(self, o):
        return self.cmp("oeq" if self.is_float else "eq", o)

    def ne(self, o):
        return self.cmp("une" if self.is_float else "ne", o)

    def isnan(self) -> "E":
        return self.cmp("uno", self)

    # conversions
    def _cast(self, cls, elem) -> "E":
        return self.em.emit(cls.build(self.v, TensorType(self.v.type.shape, elem)))

    def bits(self) -> "E":
        """The float's bits as an integer of its width."""
        return self._cast(arith.BitcastOp, IntegerType(self.elem.width))

    def as_float(self) -> "E":
        """The integer's bits as a float of its width."""
        return self._cast(arith.BitcastOp, FloatType(self.elem.width))

    def to_int(self, elem=i64) -> "E":
        return self._cast(arith.FPToSIOp, elem)

    def to_float(self, elem=f64) -> "E":
        return self._cast(arith.SIToFPOp, elem)

    def ext(self, elem=f64) -> "E":
        return self._cast(arith.ExtFOp if self.is_float else arith.ExtSIOp, elem)

    def trunc(self, elem) -> "E":
        return self._cast(arith.TruncFOp if self.is_float else arith.TruncIOp, elem)

    def lookup(self, values, elem=f64) -> "E":
        """values[self mod len(values)]: len a power of two."""
        arr = np.asarray(values, dtype=elem.numpy)
        table = DenseElementsAttr(arr, TensorType((len(arr),), elem))
        return self.em.emit(arith.LookupOp.build(self.v, table))

    def extract(self, k: int) -> "E":
        return self.em.emit(arith.ExtractOp.build(self.v, k))

    def broadcast(self, n: int) -> "E":
        return self.em.emit(arith.BroadcastOp.build(self.v, TensorType((n,), self.elem)))

    def concat(self, *others: "E") -> "E":
        """This tensor's elements, then each of `others`' (`arith.concat`)."""
        return concat(self, *others)


def concat(*es: E) -> E:
    """The elements of `es`, in order, as one 1-D tensor (`arith.concat`)."""
    return es[0].em.emit(arith.ConcatOp.build([e.v for e in es]))


def where(c: E, a, b) -> E:
    """`c ? a : b` elementwise (a Python number takes the other side's type)."""
    if not isinstance(a, E):
        a = b._lift(a)
    if not isinstance(b, E):
        b = a._lift(b)
    return c.em.emit(arith.SelectOp.build(c.v, a.v, b.v))


def in_f64(fn):
    """Run a double-precision algorithm on a float of any width: f32 is widened, computed in
    f64 and rounded once at the end."""

    def run(x: E) -> E:
        if x.elem == f64:
            return fn(x)
        return fn(x.ext(f64)).trunc(x.elem)

    run.__name__ = fn.__name__
    run.__doc__ = fn.__doc__
    return run


__all__ = ["E", "Emitter", "f32", "f64", "i1", "i32", "i64", "in_f64", "where"]
