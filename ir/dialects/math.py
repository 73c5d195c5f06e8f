"""`math` dialect: elementary functions and the output transforms of classical models.

All ops compute in their operand's element type.  Each function has one algorithm, written as
`arith` IR in `ir/dialects/mathimpl/`: the `math-expand` pass replaces the op by it (and
`sigmoid`/`softmax` by their formulas), so every back-end runs the same operations and gives the
same bits.  Where a framework calls the C library (exp, log1p, ...), the host JIT may keep the op
and call the process's libm instead (`timber.compile(math="libm")`): `LIBM` names those ops.
"""

from __future__ import annotations

from .. import libm
from ..attributes import StringAttr, TypeAttr
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


def _unary(op_name: str, doc: str, constraint=FloatTensor, cls_name: str | None = None):
    cls = type(
        cls_name or op_name.split(".")[1].title() + "Op",
        (SameTypeOp,),
        {
            "__doc__": doc,
            "name": op_name,
            "operand_defs": (OperandDef("input", constraint),),
            "result_defs": (ResultDef("out", constraint),),
            "traits": (Pure, SameOperandsAndResultType, Elementwise),
        },
    )
    return register(cls)


# `impl` on exp and softmax: which exp computes e**a.  Absent: Timber's own (`mathimpl/exp.py`), or
# the C library's in the host JIT with math="libm"; "fmath": herumi fmath's expd, which CatBoost
# calls (`mathimpl/exp.py` `fmath_exp`), the same bits in every back-end.
EXP_IMPLS = ("fmath",)


def _verify_impl(op) -> None:
    impl = op.attributes.get("impl")
    if impl is not None and (not isinstance(impl, StringAttr) or impl.value not in EXP_IMPLS):
        op.error(f"impl must be one of: {', '.join(EXP_IMPLS)}, found {impl}")


@register
class ExpOp(SameTypeOp):
    """`%r = math.exp %a {impl = "fmath"}? : tensor<1xf64>`: e**a, elementwise (see `EXP_IMPLS`)."""

    name = "math.exp"
    operand_defs = (OperandDef("input", FloatTensor),)
    result_defs = (ResultDef("out", FloatTensor),)
    attr_defs = (AttrDef("impl", StringAttr, optional=True, doc="which exp: absent (the back-end's) or fmath (CatBoost's)"),)
    traits = (Pure, SameOperandsAndResultType, Elementwise)

    def verify_(self) -> None:
        _verify_impl(self)


Exp2Op = _unary("math.exp2", "`%r = math.exp2 %a : tensor<1xf64>`: 2**a, elementwise (C's pow(2, a), numpy's `2 ** a`).", cls_name="Exp2Op")
Log1pOp = _unary("math.log1p", "`%r = math.log1p %a : tensor<1xf64>`: log(1 + a), elementwise.", cls_name="Log1pOp")
LogOp = _unary("math.log", "`%r = math.log %a : tensor<1xf64>`: the natural logarithm, elementwise (log(0) = -inf, log(<0) = NaN).")
SinOp = _unary("math.sin", "`%r = math.sin %a : tensor<8xf64>`: sine of a in radians, elementwise.")
CosOp = _unary("math.cos", "`%r = math.cos %a : tensor<8xf64>`: cosine of a in radians, elementwise.")
TanhOp = _unary("math.tanh", "`%r = math.tanh %a : tensor<1xf64>`: hyperbolic tangent, elementwise.")
ErfinvOp = _unary(
    "math.erfinv", "`%r = math.erfinv %a : tensor<1xf64>`: the inverse error function on [-1, 1] (±1 → ±inf, outside: NaN).", cls_name="ErfinvOp"
)
SigmoidOp = _unary("math.sigmoid", "`%r = math.sigmoid %a : tensor<1xf32>`: `1 / (1 + exp(-a))`, elementwise, in the element type.")

# The ops a C library provides (`ir/libm.py`), by C function name (f64; the f32 variant adds `f`):
# the host JIT with math="libm" keeps these (exp only without `impl`) and calls the process's libm.
LIBM = {f"math.{name}": name for name in libm.FUNCTIONS}


def libm_function(op) -> str | None:
    """The C library function computing `op` (None: no libm equivalent, or a specific `impl`)."""
    if op.attributes.get("impl") is not None:
        return None
    return LIBM.get(op.name)


@register
class SoftmaxOp(SameTypeOp):
    """`%p = math.softmax %m {acc = f64} : tensor<3xf32>`.

    Exactly: `m = a_0`, then `m = a_i if a_i > m` left to right; `e_i = exp(a_i - m)` in the element
    type, `s = e_0 + e_1 + ...` summed left to right in `acc` (default: the element type),
    `p_i = e_i / s` with `s` rounded to the element type first."""

    name = "math.softmax"
    operand_defs = (OperandDef("input", Rank1FloatTensor),)
    result_defs = (ResultDef("out", Rank1FloatTensor),)
    attr_defs = (
        AttrDef("acc", TypeAttr, optional=True, doc="type the sum of exponentials is accumulated in"),
        AttrDef("impl", StringAttr, optional=True, doc="which exp: absent (the back-end's) or fmath (CatBoost's)"),
    )
    traits = (Pure, SameOperandsAndResultType)

    def verify_(self) -> None:
        _verify_impl(self)
        acc = self.attributes.get("acc")
        if acc is not None and not (isinstance(acc.type, FloatType) and acc.type.width in (32, 64)):
            self.error(f"acc must be f32 or f64, found {acc.type}")


@register
class ArgmaxOp(OpDef):
    """`%i = math.argmax %a : tensor<3xf32> -> tensor<1xi64>`: the first index holding the largest
    value, scanning left to right and replacing the best only when `a_i > best`."""

    name = "math.argmax"
    operand_defs = (OperandDef("input", Rank1FloatTensor),)
    result_defs = (ResultDef("out"),)
    traits = (Pure,)
    custom_print = True

    @classmethod
    def build(cls, a, name=None) -> "ArgmaxOp":
        return cls(operands=[a], result_types=[TensorType((1,), IntegerType(64))], result_names=[name])

    def verify_(self) -> None:
        if self.results[0].type != TensorType((1,), IntegerType(64)):
            self.error(f"result must be tensor<1xi64>, found {self.results[0].type}")

    def print_custom(self, p) -> None:
        a = self.operands[0]
        p.write(f"math.argmax {p.name_of(a)} : {a.type} -> {self.results[0].type}")

    @classmethod
    def parse_custom(cls, p, result_names, loc):
        a = p.parse_value_use_name()
        p.expect(":")
        t = p.parse_type()
        p.expect("->")
        rt = p.parse_type()
        return cls(operands=[p.resolve(a, t)], result_types=[rt], result_names=result_names, location=loc)


# ----- semantics (the interpreter) ----------------------------------------------------------------

import numpy as np  # noqa: E402

from ..interpreter import interprets  # noqa: E402
from . import mathimpl  # noqa: E402


@interprets(ExpOp, Exp2Op, Log1pOp, LogOp, SinOp, CosOp, TanhOp, ErfinvOp, SigmoidOp, SoftmaxOp)
def _math(op, args, it):
    name = libm_function(op)
    if it.math == "libm" and name is not None:
        return [libm.call(name, args[0])]
    ph, ops, out = mathimpl.expansion(op)
    return [it.run_ops(ops, {id(p): a for p, a in zip(ph, args)}, out)]


@interprets(ArgmaxOp)
def _argmax(op, args, it):
    a = args[0]
    best = a[:, 0].copy()
    idx = np.zeros(a.shape[0], np.int64)
    for i in range(1, a.shape[1]):
        upd = a[:, i] > best
        best = np.where(upd, a[:, i], best)
        idx = np.where(upd, i, idx)
    return [idx[:, None]]
