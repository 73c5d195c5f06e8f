"""Where the ONNX front-end writes IR: the body of `@predict`, each op located at the ONNX node
being converted, and the small formulas ONNX Runtime applies to scores (its `ml_common.h`),
written with `arith`/`math`/`kernel` ops so every back-end computes them with the same bits.

A graph value is a `Val`: either a row tensor (`row`: an IR value of type `tensor<K x T>`
standing for ONNX's `[N, K]`) or a compile-time constant (`const`: a numpy array).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NoReturn

import numpy as np

import ir.dialects  # noqa: F401  (registers every op)
from ir.core import Block, Value
from ir.diagnostics import NameLoc, TimberError
from ir.dialects import arith, kernel, math
from ir.types import FloatType, IntegerType, TensorType, f32, f64, i64


class OnnxError(TimberError):
    """An ONNX model Timber cannot compile (malformed, unsupported op/attribute/shape)."""


@dataclass
class Val:
    """A graph value: `row` (IR value, one row of an [N, K] tensor) or `const` (numpy array)."""

    row: Value | None = None
    const: np.ndarray | None = None
    zipmap: bool = False  # a ZipMap's output: the probabilities it wraps
    label: bool = False  # a class label (int64 in ONNX Runtime), held as f64: returned only on request

    @property
    def is_const(self) -> bool:
        return self.const is not None

    @property
    def width(self) -> int:
        return self.row.type.shape[0]

    @property
    def element(self):
        return self.row.type.element


def np_dtype(t) -> type:
    return {f32: np.float32, f64: np.float64, i64: np.int64}[t]


class Builder:
    """Appends ops to `block`; `where` names the ONNX node being converted (set by the walker)."""

    def __init__(self, block: Block, source: str):
        self.block = block
        self.source = source
        self.where = ""

    # ----- diagnostics -----------------------------------------------------------------------
    def loc(self) -> NameLoc:
        return NameLoc(self.source, self.where)

    def fail(self, message: str) -> NoReturn:
        raise OnnxError(message, self.loc())

    # ----- building ----------------------------------------------------------------------------
    def op(self, op) -> Value:
        if op.location is None:
            op.location = self.loc()
        self.block.add_op(op)
        return op.results[0] if op.results else None

    def const(self, values, element=f32, name: str | None = None) -> Value:
        v = np.asarray(values).reshape(-1).astype(np_dtype(element))
        return self.op(arith.ConstantOp.build(v, TensorType((len(v),), element), name=name))

    def splat(self, value: float, like: Value, name: str | None = None) -> Value:
        """A constant of `like`'s type holding `value` everywhere."""
        t = like.type
        return self.const(np.full(t.shape[0], value), t.element, name)

    def bin(self, cls, a: Value, b: Value, name: str | None = None) -> Value:
        return self.op(cls.build(a, b, name=name))

    def add(self, a, b, name=None):
        return self.bin(arith.AddFOp, a, b, name)

    def sub(self, a, b, name=None):
        return self.bin(arith.SubFOp, a, b, name)

    def mul(self, a, b, name=None):
        return self.bin(arith.MulFOp, a, b, name)

    def div(self, a, b, name=None):
        return self.bin(arith.DivFOp, a, b, name)

    def neg(self, a, name=None):
        return self.op(arith.NegFOp.build(a, name=name))

    def cmp(self, pred: str, a, b, name=None):
        return self.op(arith.CmpFOp.build(pred, a, b, name=name))

    def select(self, c, a, b, name=None):
        return self.op(arith.SelectOp.build(c, a, b, name=name))

    def exp(self, a, name=None):
        return self.op(math.ExpOp.build(a, name=name))

    def log(self, a, name=None):
        return self.op(math.LogOp.build(a, name=name))

    def sqrt(self, a, name=None):
        return self.op(kernel.SqrtOp.build(a, name=name))

    def extract(self, a, k: int, name=None):
        return self.op(arith.ExtractOp.build(a, k, name=name))

    def concat(self, values, name=None):
        values = list(values)
        if len(values) == 1:
            return values[0]
        return self.op(arith.ConcatOp.build(values, name=name))

    def convert(self, a: Value, element, name=None) -> Value:
        """`a` in another float type (exact widening or round-to-nearest narrowing)."""
        t = a.type
        if t.element == element:
            return a
        rt = TensorType(t.shape, element)
        if isinstance(t.element, FloatType) and isinstance(element, FloatType):
            cls = arith.ExtFOp if element.width > t.element.width else arith.TruncFOp
            return self.op(cls.build(a, rt, name=name))
        if isinstance(t.element, IntegerType) and isinstance(element, FloatType):
            return self.op(arith.SIToFPOp.build(a, rt, name=name))
        self.fail(f"cannot convert {t} to {element}")

    def abs(self, a, name=None):
        zero = self.splat(0.0, a)
        return self.select(self.cmp("olt", a, zero), self.neg(a), a, name=name)

    # ----- ONNX Runtime's score transforms (ml_common.h), all in float32 ------------------------
    def logistic(self, v: Value, name="proba") -> Value:
        """ComputeLogistic: `e = 1 / (1 + exp(-|v|))`, then `v < 0 ? 1 - e : e`, in float."""
        one = self.splat(1.0, v)
        zero = self.splat(0.0, v)
        e = self.div(one, self.add(one, self.exp(self.neg(self.abs(v)))))
        return self.select(self.cmp("olt", v, zero), self.sub(one, e), e, name=name)

    def probit(self, v: Value, name="probit") -> Value:
        """ComputeProbit: `sqrt(2) * ErfInv(2 v - 1)` with ONNX Runtime's float approximation of
        erfinv (Winitzki's formula with a = 0.147), not the true inverse error function."""
        F = np.float32
        c1 = F(2) / (F(np.pi) * F(0.147))
        c2 = F(1) / F(0.147)
        x = self.sub(self.mul(self.splat(2.0, v), v), self.splat(1.0, v))
        sgn = self.select(self.cmp("olt", x, self.splat(0.0, v)), self.splat(-1.0, v), self.splat(1.0, v))
        one = self.splat(1.0, v)
        x2 = self.mul(self.sub(one, x), self.add(one, x))
        lg = self.log(x2)
        a = self.add(self.splat(float(c1), v), self.mul(self.splat(0.5, v), lg))
        b = self.mul(self.splat(float(c2), v), lg)
        v3 = self.add(self.neg(a), self.sqrt(self.sub(self.mul(a, a), b)))
        r = self.mul(sgn, self.sqrt(v3))
        return self.mul(self.splat(float(F(np.sqrt(2.0))), v), r, name=name)

    def softmax(self, v: Value, name="proba") -> Value:
        """ComputeSoftmax: max, exp(v - max), sum left to right, divide, all in float."""
        return self.op(math.SoftmaxOp.build(v, name=name))

    def softmax_zero(self, v: Value, name="proba") -> Value:
        """ComputeSoftmaxZero: max, then exp(v - max) for values beyond 1e-7f of zero (summed
        left to right), v * exp(-max) for the others, each divided by the sum — all in float32.
        For a double v (TreeEnsemble on doubles) ONNX Runtime keeps the scores double: the tests
        and exps are float32, `v * exp(-max)` and the final division are double."""
        F = np.float32
        el = v.type.element
        vf = self.convert(v, f32)
        k = v.type.shape[0]
        cols = [self.extract(vf, i) for i in range(k)]
        wide = [self.extract(v, i) for i in range(k)]
        m = self.const([-np.finfo(F).max], f32)
        for c in cols:
            m = self.select(self.cmp("ogt", c, m), c, m)
        e_neg = self.exp(self.neg(m))
        s = self.const([0.0], f32)
        eps, neps = self.const([F(1e-7)], f32), self.const([-F(1e-7)], f32)
        outs = []
        for c, w in zip(cols, wide):
            big = self.op(arith.OrIOp.build(self.cmp("ogt", c, eps), self.cmp("olt", c, neps)))
            e = self.exp(self.sub(c, m))
            s = self.select(big, self.add(s, e), s)
            outs.append(self.select(big, self.convert(e, el), self.mul(w, self.convert(e_neg, el))))
        s = self.convert(s, el)
        return self.concat([self.div(o, s) for o in outs], name=name)

    def transform(self, post: str, v: Value) -> Value:
        """write_scores' transform of two or more scores (float32 in, float32 out)."""
        if post == "NONE":
            return v
        if post == "LOGISTIC":
            return self.logistic(v)
        if post == "SOFTMAX":
            return self.softmax(v)
        if post == "SOFTMAX_ZERO":
            return self.softmax_zero(v)
        if post == "PROBIT":
            return self.probit(v)
        self.fail(f"unknown post_transform '{post}'; supported: NONE, LOGISTIC, SOFTMAX, SOFTMAX_ZERO, PROBIT")


__all__ = ["Builder", "OnnxError", "Val", "np_dtype"]
