"""`arith` dialect: constants and elementwise float arithmetic on row tensors.

Every op computes in its operands' element type with IEEE round-to-nearest and no
contraction (no fused multiply-add), so back-ends agree bit for bit.
"""

from __future__ import annotations

from ..attributes import DenseElementsAttr, StringAttr
from ..opdef import (
    AttrDef,
    BoolTensor,
    FloatTensor,
    NumericTensor,
    OpDef,
    OperandDef,
    Pure,
    ResultDef,
    SameOperandsAndResultType,
    register,
)
from ..types import FloatType, IntegerType, TensorType
from .formats import CastOp, SameTypeOp


@register
class ConstantOp(OpDef):
    """`%c = arith.constant dense<[0.5]> : tensor<1xf32>`."""

    name = "arith.constant"
    attr_defs = (AttrDef("value", DenseElementsAttr),)
    result_defs = (ResultDef("out", NumericTensor),)
    traits = (Pure,)
    custom_print = True

    @classmethod
    def build(cls, values, type: TensorType, name: str | None = None) -> "ConstantOp":
        return cls(result_types=[type], attributes={"value": DenseElementsAttr(values, type)}, result_names=[name])

    @property
    def value(self):
        return self.attributes["value"].values

    def verify_(self) -> None:
        if self.attributes["value"].type != self.results[0].type:
            self.error(f"value type {self.attributes['value'].type} does not match result type {self.results[0].type}")

    def print_custom(self, p) -> None:
        p.write(f"arith.constant {self.attributes['value']}")

    @classmethod
    def parse_custom(cls, p, result_names, loc):
        attr = p.parse_attribute()
        if not isinstance(attr, DenseElementsAttr):
            p.error("expected a dense<...> : tensor<...> value")
        return cls(result_types=[attr.type], attributes={"value": attr}, result_names=result_names, location=loc)


def _binary(op_name: str, doc: str):
    cls = type(
        op_name.split(".")[1].title().replace("f", "F") + "Op",
        (SameTypeOp,),
        {
            "__doc__": doc,
            "name": op_name,
            "operand_defs": (OperandDef("lhs", FloatTensor), OperandDef("rhs", FloatTensor)),
            "result_defs": (ResultDef("out", FloatTensor),),
            "traits": (Pure, SameOperandsAndResultType),
        },
    )
    return register(cls)


AddFOp = _binary("arith.addf", "`%r = arith.addf %a, %b : tensor<1xf32>`: elementwise a + b.")
SubFOp = _binary("arith.subf", "`%r = arith.subf %a, %b : tensor<1xf32>`: elementwise a - b.")
MulFOp = _binary("arith.mulf", "`%r = arith.mulf %a, %b : tensor<1xf32>`: elementwise a * b.")
DivFOp = _binary("arith.divf", "`%r = arith.divf %a, %b : tensor<1xf32>`: elementwise a / b.")
MaximumFOp = _binary(
    "arith.maximumf",
    "`%r = arith.maximumf %a, %b : T`: elementwise `isnan(a) ? a : isnan(b) ? b : a > b ? a : b` (ties, ±0 included, give b).",
)
MinimumFOp = _binary(
    "arith.minimumf",
    "`%r = arith.minimumf %a, %b : T`: elementwise `isnan(a) ? a : isnan(b) ? b : a < b ? a : b` (ties, ±0 included, give b).",
)


@register
class NegFOp(SameTypeOp):
    """`%r = arith.negf %a : tensor<1xf32>`: flips the sign bit."""

    name = "arith.negf"
    operand_defs = (OperandDef("input", FloatTensor),)
    result_defs = (ResultDef("out", FloatTensor),)
    traits = (Pure, SameOperandsAndResultType)


CMPF_PREDICATES = ("oeq", "ogt", "oge", "olt", "ole", "one", "ord", "ueq", "ugt", "uge", "ult", "ule", "une", "uno")


@register
class CmpFOp(OpDef):
    """`%r = arith.cmpf ogt, %a, %b : tensor<1xf32>`: elementwise comparison to i1.

    `o*` predicates are false when either side is NaN, `u*` predicates true."""

    name = "arith.cmpf"
    operand_defs = (OperandDef("lhs", FloatTensor), OperandDef("rhs", FloatTensor))
    result_defs = (ResultDef("out", BoolTensor),)
    attr_defs = (AttrDef("predicate", StringAttr),)
    traits = (Pure,)
    custom_print = True

    @classmethod
    def build(cls, predicate: str, lhs, rhs, name=None) -> "CmpFOp":
        t = TensorType(lhs.type.shape, IntegerType(1))
        return cls(operands=[lhs, rhs], result_types=[t], attributes={"predicate": StringAttr(predicate)}, result_names=[name])

    def verify_(self) -> None:
        pred = self.attributes["predicate"].value
        if pred not in CMPF_PREDICATES:
            self.error(f"unknown predicate '{pred}'; expected one of {', '.join(CMPF_PREDICATES)}")
        if self.operands[0].type != self.operands[1].type:
            self.error(f"operand types differ: {self.operands[0].type} and {self.operands[1].type}")
        if self.results[0].type.shape != self.operands[0].type.shape:
            self.error(f"result shape must be {self.operands[0].type.shape}")

    def print_custom(self, p) -> None:
        a, b = self.operands
        p.write(f"arith.cmpf {self.attributes['predicate'].value}, {p.name_of(a)}, {p.name_of(b)} : {a.type}")

    @classmethod
    def parse_custom(cls, p, result_names, loc):
        pred = p.parse_bare_identifier()
        p.expect(",")
        a = p.parse_value_use_name()
        p.expect(",")
        b = p.parse_value_use_name()
        p.expect(":")
        t = p.parse_type()
        rt = TensorType(t.shape, IntegerType(1)) if isinstance(t, TensorType) else IntegerType(1)
        return cls(
            operands=[p.resolve(a, t), p.resolve(b, t)],
            result_types=[rt],
            attributes={"predicate": StringAttr(pred)},
            result_names=result_names,
            location=loc,
        )


@register
class SelectOp(OpDef):
    """`%r = arith.select %c, %a, %b : tensor<1xf32>`: elementwise `c ? a : b`."""

    name = "arith.select"
    operand_defs = (OperandDef("cond", BoolTensor), OperandDef("true_value", FloatTensor), OperandDef("false_value", FloatTensor))
    result_defs = (ResultDef("out", FloatTensor),)
    traits = (Pure,)
    custom_print = True

    @classmethod
    def build(cls, cond, a, b, name=None) -> "SelectOp":
        return cls(operands=[cond, a, b], result_types=[a.type], result_names=[name])

    def verify_(self) -> None:
        c, a, b = self.operands
        if a.type != b.type or self.results[0].type != a.type:
            self.error(f"value and result types must match, found {a.type}, {b.type} -> {self.results[0].type}")
        if c.type.shape != a.type.shape:
            self.error(f"condition shape {c.type.shape} differs from value shape {a.type.shape}")

    def print_custom(self, p) -> None:
        c, a, b = self.operands
        p.write(f"arith.select {p.name_of(c)}, {p.name_of(a)}, {p.name_of(b)} : {a.type}")

    @classmethod
    def parse_custom(cls, p, result_names, loc):
        c = p.parse_value_use_name()
        p.expect(",")
        a = p.parse_value_use_name()
        p.expect(",")
        b = p.parse_value_use_name()
        p.expect(":")
        t = p.parse_type()
        ct = TensorType(t.shape, IntegerType(1))
        return cls(operands=[p.resolve(c, ct), p.resolve(a, t), p.resolve(b, t)], result_types=[t], result_names=result_names, location=loc)


def _cast(op_name: str, doc: str, src, dst, check):
    def verify_(self):
        a, r = self.operands[0].type, self.results[0].type
        if a.shape != r.shape:
            self.error(f"shape changes from {a} to {r}")
        msg = check(a.element, r.element)
        if msg:
            self.error(msg)

    cls = type(
        op_name.split(".")[1].title() + "Op",
        (CastOp,),
        {
            "__doc__": doc,
            "name": op_name,
            "operand_defs": (OperandDef("input", src),),
            "result_defs": (ResultDef("out", dst),),
            "traits": (Pure,),
            "verify_": verify_,
        },
    )
    return register(cls)


def _widen(a, r):
    if not (isinstance(a, FloatType) and isinstance(r, FloatType) and a.width < r.width):
        return f"must widen a float type, found {a} to {r}"
    return None


def _narrow(a, r):
    if not (isinstance(a, FloatType) and isinstance(r, FloatType) and a.width > r.width):
        return f"must narrow a float type, found {a} to {r}"
    return None


def _int_to_float(a, r):
    if not (isinstance(a, IntegerType) and a.width > 1 and isinstance(r, FloatType)):
        return f"converts signed integers (i8 to i64) to floats, found {a} to {r}"
    return None


ExtFOp = _cast("arith.extf", "`%r = arith.extf %a : tensor<1xf32> to tensor<1xf64>`: exact widening.", FloatTensor, FloatTensor, _widen)
TruncFOp = _cast(
    "arith.truncf", "`%r = arith.truncf %a : tensor<1xf64> to tensor<1xf32>`: round to nearest even.", FloatTensor, FloatTensor, _narrow
)
SIToFPOp = _cast(
    "arith.sitofp",
    "`%r = arith.sitofp %i : tensor<1xi64> to tensor<1xf32>`: signed int to float.",
    NumericTensor,
    FloatTensor,
    _int_to_float,
)
