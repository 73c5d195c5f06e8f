"""`linear` dialect: affine maps over the input row (linear models, scalers)."""

from __future__ import annotations

import numpy as np

from ..attributes import DenseElementsAttr, StringAttr
from ..opdef import AttrDef, FloatTensor, OpDef, OperandDef, Pure, Rank1FloatTensor, ResultDef, register
from ..types import FloatType, TensorType

MISSING_MODES = ("skip", "propagate")


@register
class AffineOp(OpDef):
    """`%y = linear.affine %x {weights = dense<...> : tensor<KxNxf32>, bias = dense<...> : tensor<Kxf32>, missing = "skip"} : tensor<Nxf32> -> tensor<Kxf32>`

    For each output k, in the result's element type: `acc = bias[k]`, then for j = 0..N-1 in
    order `acc = acc + x[j] * weights[k, j]` (x converted to the element type; no fused
    multiply-add).  With `missing = "skip"` a NaN x[j] adds nothing (it is absent, as in a
    sparse matrix); with `"propagate"` it makes the output NaN."""

    name = "linear.affine"
    operand_defs = (OperandDef("input", Rank1FloatTensor),)
    result_defs = (ResultDef("out", FloatTensor),)
    attr_defs = (
        AttrDef("weights", DenseElementsAttr),
        AttrDef("bias", DenseElementsAttr),
        AttrDef("missing", StringAttr),
    )
    traits = (Pure,)
    custom_print = True

    @classmethod
    def build(cls, x, weights: np.ndarray, bias: np.ndarray, element: FloatType, missing: str = "skip", name=None):
        k, n = weights.shape
        out = TensorType((k,), element)
        return cls(
            operands=[x],
            result_types=[out],
            attributes={
                "weights": DenseElementsAttr(weights, TensorType((k, n), element)),
                "bias": DenseElementsAttr(bias, out),
                "missing": StringAttr(missing),
            },
            result_names=[name],
        )

    def verify_(self) -> None:
        x, y = self.operands[0].type, self.results[0].type
        w, b = self.attributes["weights"].type, self.attributes["bias"].type
        if len(y.shape) != 1:
            self.error(f"result must be a 1-D tensor, found {y}")
        if w.shape != (y.shape[0], x.shape[0]):
            self.error(f"weights shape {w.shape} must be (outputs, inputs) = {(y.shape[0], x.shape[0])}")
        if b != y or w.element != y.element:
            self.error(f"weights and bias must have the result element type {y.element}")
        if self.attributes["missing"].value not in MISSING_MODES:
            self.error(f"missing must be one of {', '.join(MISSING_MODES)}, found '{self.attributes['missing'].value}'")

    def print_custom(self, p) -> None:
        x = self.operands[0]
        p.write(f"linear.affine {p.name_of(x)} ")
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


# ----- semantics (the interpreter) ----------------------------------------------------------------

from ..interpreter import interprets  # noqa: E402


@interprets(AffineOp)
def _affine(op, args, it):
    x = args[0]
    w = op.attributes["weights"].values
    b = op.attributes["bias"].values
    dt = w.dtype
    skip = op.attributes["missing"].value == "skip"
    xv = x.astype(dt)
    acc = np.broadcast_to(b, (x.shape[0], len(b))).copy()
    for j in range(w.shape[1]):
        term = xv[:, j : j + 1] * w[None, :, j]
        if skip:
            term = np.where(np.isnan(xv[:, j : j + 1]), dt.type(0), term)
            acc = np.where(np.isnan(xv[:, j : j + 1]), acc, acc + term)
        else:
            acc = acc + term
    return [acc]
