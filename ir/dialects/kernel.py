"""`kernel` dialect: a row against a stored table of vectors (SVM support vectors, KNN training
rows), nearest-neighbour selection, and the square root they need.

These ops stand for loops over hundreds or thousands of stored vectors, which an `arith`
expansion would unroll: each back-end lowers them as loops (vectorised across rows where the
back-end computes blocks of rows).
"""

from __future__ import annotations

import numpy as np

from ..attributes import DenseElementsAttr, IntegerAttr, StringAttr
from ..opdef import (
    AttrDef,
    Elementwise,
    FloatTensor,
    OpDef,
    OperandDef,
    Pure,
    Rank1FloatTensor,
    ResultDef,
    SameOperandsAndResultType,
    register,
)
from ..types import FloatType, IntegerType, TensorType
from .formats import SameTypeOp

METRICS = ("sqeuclidean", "manhattan")


@register
class SqrtOp(SameTypeOp):
    """`%r = kernel.sqrt %a : tensor<4xf64>`: the IEEE square root (correctly rounded; sqrt(-0.0)
    is -0.0, a negative operand gives NaN), elementwise."""

    name = "kernel.sqrt"
    operand_defs = (OperandDef("input", FloatTensor),)
    result_defs = (ResultDef("out", FloatTensor),)
    traits = (Pure, SameOperandsAndResultType, Elementwise)


class _TableOp(OpDef):
    custom_print = True

    def print_custom(self, p) -> None:
        x = self.operands[0]
        p.write(f"{self.name} {p.name_of(x)} ")
        p.print_attr_dict(self.attributes)
        p.write(f" : {x.type} -> {self.results[0].type}")

    @classmethod
    def parse_custom(cls, p, result_names, loc):
        x = p.parse_value_use_name()
        attrs = p.parse_attr_dict()
        p.expect(":")
        t = p.parse_type()
        p.expect("->")
        rt = p.parse_type()
        return cls(operands=[p.resolve(x, t)], result_types=[rt], attributes=attrs, result_names=result_names, location=loc)


@register
class DistancesOp(_TableOp):
    """`%d = kernel.distances %x {vectors = dense<...> : tensor<MxNxf64>, metric = "sqeuclidean"} : tensor<Nxf64> -> tensor<Mxf64>`

    For each stored vector v_i (i = 0..M-1), in the element type: `acc = 0.0`, then for
    j = 0..N-1 in order `d = x[j] - v_i[j]` and `acc = acc + d * d` ("sqeuclidean", libsvm's
    dense RBF sum) or `acc = acc + |d|` ("manhattan"); `out[i] = acc`.  No fused multiply-add."""

    name = "kernel.distances"
    operand_defs = (OperandDef("input", Rank1FloatTensor),)
    result_defs = (ResultDef("out", Rank1FloatTensor),)
    attr_defs = (AttrDef("vectors", DenseElementsAttr), AttrDef("metric", StringAttr))
    traits = (Pure,)

    @classmethod
    def build(cls, x, vectors: np.ndarray, metric: str, name=None) -> "DistancesOp":
        m, n = vectors.shape
        el = x.type.element
        return cls(
            operands=[x],
            result_types=[TensorType((m,), el)],
            attributes={"vectors": DenseElementsAttr(vectors, TensorType((m, n), el)), "metric": StringAttr(metric)},
            result_names=[name],
        )

    def verify_(self) -> None:
        x, y, v = self.operands[0].type, self.results[0].type, self.attributes["vectors"].type
        if len(v.shape) != 2 or v.shape != (y.shape[0], x.shape[0]):
            self.error(f"vectors shape {v.shape} must be (outputs, inputs) = {(y.shape[0], x.shape[0])}")
        if v.element != x.element or y.element != x.element:
            self.error(f"vectors, input and result must share one element type, found {v.element}, {x.element}, {y.element}")
        if self.attributes["metric"].value not in METRICS:
            self.error(f"metric must be one of {', '.join(METRICS)}, found '{self.attributes['metric'].value}'")


@register
class TopKOp(_TableOp):
    """`%i = kernel.topk %d {k = 5 : i64} : tensor<Mxf64> -> tensor<5xi64>`

    The indices of the k smallest values, smallest first; equal values in index order (a stable
    sort's first k).  NaN sorts after every number (then by index)."""

    name = "kernel.topk"
    operand_defs = (OperandDef("input", Rank1FloatTensor),)
    result_defs = (ResultDef("out"),)
    attr_defs = (AttrDef("k", IntegerAttr),)
    traits = (Pure,)

    @classmethod
    def build(cls, d, k: int, name=None) -> "TopKOp":
        return cls(operands=[d], result_types=[TensorType((k,), IntegerType(64))], attributes={"k": IntegerAttr(k)}, result_names=[name])

    def verify_(self) -> None:
        k = self.attributes["k"].value
        m = self.operands[0].type.shape[0]
        if not 1 <= k <= m:
            self.error(f"k = {k} must be between 1 and the input's {m} values")
        if self.results[0].type != TensorType((k,), IntegerType(64)):
            self.error(f"result must be tensor<{k}xi64>, found {self.results[0].type}")


# ----- semantics (the interpreter) ----------------------------------------------------------------

from ..interpreter import interprets  # noqa: E402


@interprets(SqrtOp)
def _sqrt(op, args, it):
    with np.errstate(invalid="ignore"):
        return [np.sqrt(args[0])]


@interprets(DistancesOp)
def _distances(op, args, it):
    x = args[0]
    v = op.attributes["vectors"].values
    sq = op.attributes["metric"].value == "sqeuclidean"
    acc = np.zeros((x.shape[0], v.shape[0]), x.dtype)
    with np.errstate(invalid="ignore", over="ignore"):
        for j in range(v.shape[1]):
            d = x[:, j : j + 1] - v[None, :, j]
            acc = acc + (d * d if sq else np.abs(d))
    return [acc]


@interprets(TopKOp)
def _topk(op, args, it):
    k = op.attributes["k"].value
    d = args[0]
    # numpy's stable argsort: ascending, NaN last, equal values in index order
    order = np.argsort(d, axis=1, kind="stable")
    return [order[:, :k].astype(np.int64)]


__all__ = ["DistancesOp", "FloatType", "METRICS", "SqrtOp", "TopKOp"]
