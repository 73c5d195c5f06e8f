"""`arith` dialect: constants and elementwise arithmetic on row tensors.

Float ops compute in their operands' element type with IEEE round-to-nearest and no
contraction (no fused multiply-add), so back-ends agree bit for bit.  Integer ops are
two's-complement on i32/i64 and wrap; every op is defined on every input (shift amounts are
taken modulo the width, `fptosi` saturates, `lookup` indexes modulo its table), so no input
reaches undefined behaviour in any back-end.  These are the ops function approximations are
written in (`ir/dialects/mathimpl/`): math ops expand into them (the `math-expand` pass).
"""

from __future__ import annotations

from ..attributes import DenseElementsAttr, IntegerAttr, StringAttr
from ..opdef import (
    AttrDef,
    BoolTensor,
    Constraint,
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
        p.write(f"{self.name} {self.attributes['predicate'].value}, {p.name_of(a)}, {p.name_of(b)} : {a.type}")

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
    """`%r = arith.select %c, %a, %b : tensor<1xf32>`: elementwise `c ? a : b` (any element type)."""

    name = "arith.select"
    operand_defs = (OperandDef("cond", BoolTensor), OperandDef("true_value", NumericTensor), OperandDef("false_value", NumericTensor))
    result_defs = (ResultDef("out", NumericTensor),)
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


def _is_int(t, widths=(32, 64)) -> bool:
    return isinstance(t, TensorType) and isinstance(t.element, IntegerType) and t.element.width in widths


IntArithTensor = Constraint("tensor of i32 or i64", lambda t: _is_int(t))
BitsTensor = Constraint("tensor of i1, i32 or i64", lambda t: _is_int(t, (1, 32, 64)))


def _int_binary(op_name: str, doc: str, constraint=IntArithTensor):
    cls = type(
        "".join(w.title() for w in op_name.split(".")[1].split("_")) + "Op",
        (SameTypeOp,),
        {
            "__doc__": doc,
            "name": op_name,
            "operand_defs": (OperandDef("lhs", constraint), OperandDef("rhs", constraint)),
            "result_defs": (ResultDef("out", constraint),),
            "traits": (Pure, SameOperandsAndResultType),
        },
    )
    return register(cls)


AddIOp = _int_binary("arith.addi", "`%r = arith.addi %a, %b : tensor<1xi64>`: a + b, wrapping (two's complement).")
SubIOp = _int_binary("arith.subi", "`%r = arith.subi %a, %b : tensor<1xi64>`: a - b, wrapping.")
MulIOp = _int_binary("arith.muli", "`%r = arith.muli %a, %b : tensor<1xi64>`: a * b, wrapping (the low bits of the product).")
AndIOp = _int_binary("arith.andi", "`%r = arith.andi %a, %b : tensor<1xi64>`: bitwise and (i1: logical and).", BitsTensor)
OrIOp = _int_binary("arith.ori", "`%r = arith.ori %a, %b : tensor<1xi64>`: bitwise or (i1: logical or).", BitsTensor)
XOrIOp = _int_binary("arith.xori", "`%r = arith.xori %a, %b : tensor<1xi1>`: bitwise exclusive or (i1: logical xor).", BitsTensor)
ShLIOp = _int_binary("arith.shli", "`%r = arith.shli %a, %b : tensor<1xi64>`: a << (b mod width), wrapping.")
ShRSIOp = _int_binary("arith.shrsi", "`%r = arith.shrsi %a, %b : tensor<1xi64>`: a >> (b mod width), arithmetic (floor division by 2^b).")
ShRUIOp = _int_binary("arith.shrui", "`%r = arith.shrui %a, %b : tensor<1xi64>`: a >> (b mod width), logical (zeros shifted in).")

CMPI_PREDICATES = ("eq", "ne", "slt", "sle", "sgt", "sge", "ult", "ule", "ugt", "uge")


@register
class CmpIOp(OpDef):
    """`%r = arith.cmpi slt, %a, %b : tensor<1xi64>`: elementwise integer comparison to i1;
    `s*` predicates compare as signed, `u*` as unsigned."""

    name = "arith.cmpi"
    operand_defs = (OperandDef("lhs", IntArithTensor), OperandDef("rhs", IntArithTensor))
    result_defs = (ResultDef("out", BoolTensor),)
    attr_defs = (AttrDef("predicate", StringAttr),)
    traits = (Pure,)
    custom_print = True

    @classmethod
    def build(cls, predicate: str, lhs, rhs, name=None) -> "CmpIOp":
        t = TensorType(lhs.type.shape, IntegerType(1))
        return cls(operands=[lhs, rhs], result_types=[t], attributes={"predicate": StringAttr(predicate)}, result_names=[name])

    def verify_(self) -> None:
        pred = self.attributes["predicate"].value
        if pred not in CMPI_PREDICATES:
            self.error(f"unknown predicate '{pred}'; expected one of {', '.join(CMPI_PREDICATES)}")
        if self.operands[0].type != self.operands[1].type:
            self.error(f"operand types differ: {self.operands[0].type} and {self.operands[1].type}")
        if self.results[0].type.shape != self.operands[0].type.shape:
            self.error(f"result shape must be {self.operands[0].type.shape}")

    print_custom = CmpFOp.print_custom
    parse_custom = classmethod(CmpFOp.parse_custom.__func__)


def _bitcast(a, r):
    kinds = {type(a), type(r)}
    if kinds != {FloatType, IntegerType} or a.width != r.width or a.width not in (32, 64):
        return f"reinterprets f32 as i32 or f64 as i64 (or back), found {a} to {r}"
    return None


def _fptosi(a, r):
    if not (isinstance(a, FloatType) and isinstance(r, IntegerType) and r.width in (32, 64)):
        return f"converts floats to i32 or i64, found {a} to {r}"
    return None


def _extsi(a, r):
    if not (isinstance(a, IntegerType) and isinstance(r, IntegerType) and 1 < a.width < r.width):
        return f"must widen a signed integer type, found {a} to {r}"
    return None


def _trunci(a, r):
    if not (isinstance(a, IntegerType) and isinstance(r, IntegerType) and a.width > r.width > 1):
        return f"must narrow an integer type, found {a} to {r}"
    return None


BitcastOp = _cast(
    "arith.bitcast",
    "`%r = arith.bitcast %a : tensor<1xf64> to tensor<1xi64>`: the same bits read as the other type (f32 <-> i32, f64 <-> i64).",
    NumericTensor,
    NumericTensor,
    _bitcast,
)
FPToSIOp = _cast(
    "arith.fptosi",
    "`%r = arith.fptosi %a : tensor<1xf64> to tensor<1xi64>`: rounds toward zero; saturates at the integer type's "
    "limits and gives 0 for NaN.",
    FloatTensor,
    IntArithTensor,
    _fptosi,
)
ExtSIOp = _cast("arith.extsi", "`%r = arith.extsi %a : tensor<1xi32> to tensor<1xi64>`: sign extension.", IntArithTensor, IntArithTensor, _extsi)
TruncIOp = _cast("arith.trunci", "`%r = arith.trunci %a : tensor<1xi64> to tensor<1xi32>`: keeps the low bits.", IntArithTensor, IntArithTensor, _trunci)


@register
class LookupOp(OpDef):
    """`%r = arith.lookup %i {table = dense<[...]> : tensor<128xf64>} : tensor<4xi64> -> tensor<4xf64>`

    Elementwise `table[i mod N]` (N, the table's length, is a power of two; `mod` on the
    two's-complement bits, i.e. `i & (N - 1)`): a constant table read that no index can take out
    of bounds."""

    name = "arith.lookup"
    operand_defs = (OperandDef("index", IntArithTensor),)
    result_defs = (ResultDef("out", NumericTensor),)
    attr_defs = (AttrDef("table", DenseElementsAttr),)
    traits = (Pure,)
    custom_print = True

    @classmethod
    def build(cls, index, table: DenseElementsAttr, name=None) -> "LookupOp":
        t = TensorType(index.type.shape, table.type.element)
        return cls(operands=[index], result_types=[t], attributes={"table": table}, result_names=[name])

    def verify_(self) -> None:
        tab = self.attributes["table"].type
        n = tab.size
        if len(tab.shape) != 1 or n < 1 or n & (n - 1):
            self.error(f"table must be a 1-D tensor whose length is a power of two, found {tab}")
        r, i = self.results[0].type, self.operands[0].type
        if r.shape != i.shape or r.element != tab.element:
            self.error(f"result must be {TensorType(i.shape, tab.element)}, found {r}")

    def print_custom(self, p) -> None:
        p.write(f"arith.lookup {p.name_of(self.operands[0])} ")
        p.print_attr_dict(self.attributes)
        p.write(f" : {self.operands[0].type} -> {self.results[0].type}")

    @classmethod
    def parse_custom(cls, p, result_names, loc):
        i = p.parse_value_use_name()
        attrs = p.parse_attr_dict()
        p.expect(":")
        t = p.parse_type()
        p.expect("->")
        rt = p.parse_type()
        return cls(operands=[p.resolve(i, t)], result_types=[rt], attributes=attrs, result_names=result_names, location=loc)


@register
class ExtractOp(CastOp):
    """`%r = arith.extract %a {index = 2 : i64} : tensor<4xf32> to tensor<1xf32>`: one element of a 1-D tensor."""

    name = "arith.extract"
    operand_defs = (OperandDef("input", NumericTensor),)
    result_defs = (ResultDef("out", NumericTensor),)
    attr_defs = (AttrDef("index", IntegerAttr),)
    traits = (Pure,)

    @classmethod
    def build(cls, a, index: int, name=None) -> "ExtractOp":
        return cls(operands=[a], result_types=[TensorType((1,), a.type.element)], attributes={"index": IntegerAttr(index)}, result_names=[name])

    def verify_(self) -> None:
        a, r = self.operands[0].type, self.results[0].type
        k = self.attributes["index"].value
        if len(a.shape) != 1 or r != TensorType((1,), a.element):
            self.error(f"extracts from a 1-D tensor into tensor<1x{a.element}>, found {a} to {r}")
        if not 0 <= k < a.shape[0]:
            self.error(f"index {k} is out of range for {a}")


@register
class BroadcastOp(CastOp):
    """`%r = arith.broadcast %a : tensor<1xf32> to tensor<4xf32>`: the one element, repeated."""

    name = "arith.broadcast"
    operand_defs = (OperandDef("input", NumericTensor),)
    result_defs = (ResultDef("out", NumericTensor),)
    traits = (Pure,)

    def verify_(self) -> None:
        a, r = self.operands[0].type, self.results[0].type
        if a.shape != (1,) or len(r.shape) != 1 or r.element != a.element:
            self.error(f"broadcasts tensor<1xT> to a 1-D tensor of T, found {a} to {r}")


@register
class ConcatOp(OpDef):
    """`%r = arith.concat %a, %b : tensor<2xf64>, tensor<3xf64> -> tensor<5xf64>`: the elements
    of the operands, in order, as one 1-D tensor (all of one element type)."""

    name = "arith.concat"
    operand_defs = (OperandDef("inputs", NumericTensor, variadic=True),)
    result_defs = (ResultDef("out", NumericTensor),)
    traits = (Pure,)
    custom_print = True

    @classmethod
    def build(cls, values, name=None) -> "ConcatOp":
        values = list(values)
        if not values:
            raise ValueError("arith.concat needs at least one operand")
        n = sum(v.type.shape[0] for v in values)
        return cls(operands=values, result_types=[TensorType((n,), values[0].type.element)], result_names=[name])

    def verify_(self) -> None:
        r = self.results[0].type
        if not self.operands:
            self.error("needs at least one operand")
        if len(r.shape) != 1:
            self.error(f"result must be a 1-D tensor, found {r}")
        for i, v in enumerate(self.operands):
            t = v.type
            if len(t.shape) != 1 or t.element != r.element:
                self.error(f"operand {i} must be a 1-D tensor of {r.element}, found {t}")
        n = sum(v.type.shape[0] for v in self.operands)
        if r.shape[0] != n:
            self.error(f"result has {r.shape[0]} elements, the operands {n}")

    def print_custom(self, p) -> None:
        p.write("arith.concat " + ", ".join(p.name_of(v) for v in self.operands))
        if self.attributes:
            p.write(" ")
            p.print_attr_dict(self.attributes)
        p.write(" : " + ", ".join(str(v.type) for v in self.operands) + f" -> {self.results[0].type}")

    @classmethod
    def parse_custom(cls, p, result_names, loc):
        names = [p.parse_value_use_name()]
        while p.accept(","):
            names.append(p.parse_value_use_name())
        attrs = p.parse_attr_dict() if p.peek_char() == "{" else {}
        p.expect(":")
        types = [p.parse_type()]
        while p.accept(","):
            types.append(p.parse_type())
        if len(types) != len(names):
            p.error(f"expected {len(names)} operand types, found {len(types)}")
        p.expect("->")
        rt = p.parse_type()
        operands = [p.resolve(n, t) for n, t in zip(names, types)]
        return cls(operands=operands, result_types=[rt], attributes=attrs, result_names=result_names, location=loc)


# ----- semantics (the interpreter) ----------------------------------------------------------------

import numpy as np  # noqa: E402

from ..interpreter import interprets  # noqa: E402


@interprets(ConstantOp)
def _constant(op, args, it):
    return [np.broadcast_to(op.value.reshape(1, -1), (it.rows(args), op.value.size)).copy()]


_NUMPY_BINARY = {
    AddFOp: np.add,
    SubFOp: np.subtract,
    MulFOp: np.multiply,
    DivFOp: np.divide,
    AddIOp: np.add,
    SubIOp: np.subtract,
    MulIOp: np.multiply,
    AndIOp: np.bitwise_and,
    OrIOp: np.bitwise_or,
    XOrIOp: np.bitwise_xor,
}


@interprets(*_NUMPY_BINARY)
def _binary(op, args, it):
    return [_NUMPY_BINARY[type(op)](args[0], args[1])]


@interprets(MaximumFOp, MinimumFOp)
def _extremum(op, args, it):
    a, b = args
    wins = a > b if isinstance(op, MaximumFOp) else a < b
    return [np.where(np.isnan(a), a, np.where(np.isnan(b), b, np.where(wins, a, b)))]


@interprets(NegFOp)
def _negf(op, args, it):
    return [-args[0]]


def _unsigned(a: np.ndarray) -> np.ndarray:
    return a.view(np.dtype(f"uint{a.dtype.itemsize * 8}"))


@interprets(ShLIOp, ShRSIOp, ShRUIOp)
def _shift(op, args, it):
    a, b = args
    amount = (b & (a.dtype.itemsize * 8 - 1)).astype(a.dtype)
    if isinstance(op, ShLIOp):
        return [np.left_shift(a, amount)]
    if isinstance(op, ShRSIOp):
        return [np.right_shift(a, amount)]
    return [np.right_shift(_unsigned(a), amount.astype(_unsigned(a).dtype)).view(a.dtype)]


def _cmpf(pred: str, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    unordered = np.isnan(a) | np.isnan(b)
    kind, rel = pred[0], pred[1:]
    if rel == "rd":
        return ~unordered
    if rel == "no":
        return unordered
    r = {"eq": a == b, "gt": a > b, "ge": a >= b, "lt": a < b, "le": a <= b, "ne": (a != b) & ~unordered}[rel]
    return (r & ~unordered) if kind == "o" else (r | unordered)


@interprets(CmpFOp)
def _cmpf_op(op, args, it):
    return [_cmpf(op.attributes["predicate"].value, args[0], args[1])]


@interprets(CmpIOp)
def _cmpi(op, args, it):
    pred = op.attributes["predicate"].value
    a, b = args
    if pred[0] == "u":
        a, b = _unsigned(np.ascontiguousarray(a)), _unsigned(np.ascontiguousarray(b))
    rel = pred[1:] if pred[0] in "su" else pred
    return [{"eq": np.equal, "ne": np.not_equal, "lt": np.less, "le": np.less_equal, "gt": np.greater, "ge": np.greater_equal}[rel](a, b)]


@interprets(SelectOp)
def _select(op, args, it):
    return [np.where(args[0], args[1], args[2])]


@interprets(ExtFOp, TruncFOp, SIToFPOp, ExtSIOp, TruncIOp)
def _convert(op, args, it):
    return [args[0].astype(it.dtype(op.results[0]))]


@interprets(BitcastOp)
def _bitcast_op(op, args, it):
    return [np.ascontiguousarray(args[0]).view(it.dtype(op.results[0]))]


@interprets(FPToSIOp)
def _fptosi(op, args, it):
    dt = it.dtype(op.results[0])
    info = np.iinfo(dt)
    a = np.trunc(args[0].astype(np.float64))
    inside = (a >= float(info.min)) & (a < -float(info.min))  # [-2^(w-1), 2^(w-1)): exact bounds in f64
    out = np.where(inside, np.where(inside, a, 0.0).astype(dt), np.where(a < 0, info.min, info.max).astype(dt))
    return [np.where(np.isnan(a), dt.type(0), out)]


@interprets(LookupOp)
def _lookup(op, args, it):
    table = op.attributes["table"].values
    return [table[args[0] & (len(table) - 1)]]


@interprets(ExtractOp)
def _extract(op, args, it):
    k = op.attributes["index"].value
    return [args[0][:, k : k + 1].copy()]


@interprets(BroadcastOp)
def _broadcast(op, args, it):
    return [np.repeat(args[0], op.results[0].type.shape[0], axis=1)]


@interprets(ConcatOp)
def _concat(op, args, it):
    # Constants are one row; the others have a row per input row.
    rows = max(np.asarray(a).shape[0] for a in args)
    return [np.concatenate([np.broadcast_to(np.asarray(a), (rows, np.asarray(a).shape[1])) for a in args], axis=1)]
