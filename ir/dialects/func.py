"""`func` dialect: functions and returns."""

from __future__ import annotations

from ..attributes import StringAttr, SymbolRefAttr, TypeAttr
from ..core import Block, Region
from ..opdef import AnyType, AttrDef, HasParent, IsolatedFromAbove, OpDef, OperandDef, RegionDef, ResultDef, Terminator, register
from ..types import FunctionType


@register
class FuncOp(OpDef):
    """`func.func @predict(%x: tensor<4xf32>) -> tensor<1xf32> { ... }`: one row in, one row out."""

    name = "func.func"
    attr_defs = (
        AttrDef("sym_name", StringAttr),
        AttrDef("function_type", TypeAttr),
    )
    region_defs = (RegionDef("body_region"),)
    traits = (IsolatedFromAbove,)
    custom_print = True

    @classmethod
    def build(cls, sym_name: str, inputs, results, arg_names=(), attributes=None) -> "FuncOp":
        ftype = FunctionType(tuple(inputs), tuple(results))
        attrs = {"sym_name": StringAttr(sym_name), "function_type": TypeAttr(ftype)}
        attrs.update(attributes or {})
        return cls(attributes=attrs, regions=[Region([Block(inputs, arg_names)])])

    @property
    def sym_name(self) -> str:
        return self.attributes["sym_name"].value

    @property
    def function_type(self) -> FunctionType:
        return self.attributes["function_type"].type

    @property
    def args(self):
        return self.body.args

    def verify_(self) -> None:
        ft = self.attributes["function_type"].type
        if not isinstance(ft, FunctionType):
            self.error(f"function_type must be a function type, found {ft}")
        if len(self.regions[0].blocks) != 1:
            self.error("expects exactly one block")
        args = self.body.args
        if tuple(a.type for a in args) != ft.inputs:
            found = ", ".join(str(a.type) for a in args)
            self.error(f"entry block argument types ({found}) do not match the function type {ft}")
        if not self.body.ops or not isinstance(self.body.ops[-1], ReturnOp):
            self.error("body must end with 'func.return'")
        ret = self.body.ops[-1]
        got = tuple(v.type for v in ret.operands)
        if got != ft.results:
            self.error(f"returns ({', '.join(map(str, got))}) but the function type says {ft}")

    def print_custom(self, p) -> None:
        ft = self.function_type
        p.write(f"func.func @{self.sym_name}(")
        for i, a in enumerate(self.body.args):
            if i:
                p.write(", ")
            p.write(f"{p.name_of(a)}: {a.type}")
        p.write(")")
        if ft.results:
            outs = ", ".join(str(t) for t in ft.results)
            p.write(f" -> {outs}" if len(ft.results) == 1 else f" -> ({outs})")
        rest = {k: v for k, v in self.attributes.items() if k not in ("sym_name", "function_type")}
        if rest:
            p.write(" attributes ")
            p.print_attr_dict(rest)
        p.write(" ")
        p.print_region(self.regions[0], print_block_args=False)

    @classmethod
    def parse_custom(cls, p, result_names, loc):
        name = p.parse_symbol_name()
        p.expect("(")
        arg_names, arg_types = [], []
        if not p.accept(")"):
            while True:
                arg_names.append(p.parse_value_def_name())
                p.expect(":")
                arg_types.append(p.parse_type())
                if p.accept(")"):
                    break
                if not p.accept(","):
                    p.error(f"expected ',' or ')'{p._found()}")
        results = []
        if p.accept("->"):
            if p.accept("("):
                if not p.accept(")"):
                    results.append(p.parse_type())
                    while p.accept(","):
                        results.append(p.parse_type())
                    p.expect(")")
            else:
                results.append(p.parse_type())
        attrs = {}
        if p.accept_keyword("attributes"):
            attrs = p.parse_attr_dict()
        attrs["sym_name"] = StringAttr(name)
        attrs["function_type"] = TypeAttr(FunctionType(tuple(arg_types), tuple(results)))
        region = p.parse_region(arg_types_known=list(zip(arg_names, arg_types)))
        return cls(attributes=attrs, regions=[region], location=loc)


@register
class ReturnOp(OpDef):
    """`func.return %p : tensor<1xf32>`."""

    name = "func.return"
    operand_defs = (OperandDef("values", AnyType, variadic=True),)
    traits = (Terminator, HasParent("func.func"))
    custom_print = True

    def print_custom(self, p) -> None:
        p.write("func.return")
        if self.operands:
            p.write(" " + ", ".join(p.name_of(v) for v in self.operands))
            p.write(" : " + ", ".join(str(v.type) for v in self.operands))

    @classmethod
    def parse_custom(cls, p, result_names, loc):
        names = []
        if p.peek_kind() == "value":
            names.append(p.parse_value_use_name())
            while p.accept(","):
                names.append(p.parse_value_use_name())
            p.expect(":")
            types = [p.parse_type()]
            while p.accept(","):
                types.append(p.parse_type())
            if len(types) != len(names):
                p.error(f"expected {len(names)} types, found {len(types)}")
        else:
            types = []
        operands = [p.resolve(n, t) for n, t in zip(names, types)]
        return cls(operands=operands, location=loc)


@register
class CallOp(OpDef):
    """`%m = func.call @margin(%x) : (tensor<4xf32>) -> tensor<1xf32>`: calls a function of the module."""

    name = "func.call"
    operand_defs = (OperandDef("args", AnyType, variadic=True),)
    result_defs = (ResultDef("outs", AnyType, variadic=True),)
    attr_defs = (AttrDef("callee", SymbolRefAttr),)
    custom_print = True

    @classmethod
    def build(cls, callee: "FuncOp", args, name: str | None = None) -> "CallOp":
        ft = callee.function_type
        return cls(
            operands=list(args), result_types=list(ft.results), attributes={"callee": SymbolRefAttr(callee.sym_name)}, result_names=[name]
        )

    @property
    def callee(self) -> str:
        return self.attributes["callee"].name

    def verify_(self) -> None:
        module = self.parent_op
        while module is not None and module.name != "builtin.module":
            module = module.parent_op
        target = module.lookup(self.callee) if module is not None else None
        if target is None:
            self.error(f"calls @{self.callee}, which is not a function of the module")
        ft = target.function_type
        got = FunctionType(tuple(v.type for v in self.operands), tuple(r.type for r in self.results))
        if got != ft:
            self.error(f"has type {got} but @{self.callee} has type {ft}")

    def print_custom(self, p) -> None:
        args = ", ".join(p.name_of(v) for v in self.operands)
        ft = FunctionType(tuple(v.type for v in self.operands), tuple(r.type for r in self.results))
        p.write(f"func.call {self.attributes['callee']}({args}) : {ft}")

    @classmethod
    def parse_custom(cls, p, result_names, loc):
        callee = p.parse_symbol_name()
        p.expect("(")
        names = []
        if not p.accept(")"):
            names.append(p.parse_value_use_name())
            while p.accept(","):
                names.append(p.parse_value_use_name())
            p.expect(")")
        p.expect(":")
        pos = p.pos
        ft = p.parse_type()
        if not isinstance(ft, FunctionType) or len(ft.inputs) != len(names):
            p.error(f"expected a function type with {len(names)} inputs", pos)
        operands = [p.resolve(n, t) for n, t in zip(names, ft.inputs)]
        return cls(
            operands=operands,
            result_types=list(ft.results),
            attributes={"callee": SymbolRefAttr(callee)},
            result_names=result_names,
            location=loc,
        )


# ----- semantics (the interpreter) ----------------------------------------------------------------

from ..interpreter import interprets  # noqa: E402


@interprets(CallOp)
def _call(op, args, it):
    return it.call(op.callee, args)
