"""Shared custom assembly formats for simple ops."""

from __future__ import annotations

from ..opdef import OpDef


class SameTypeOp(OpDef):
    """`%r = dialect.op %a, %b {attrs} : T` where every operand and the result have type T."""

    custom_print = True

    def print_custom(self, p) -> None:
        p.write(self.name)
        if self.operands:
            p.write(" " + ", ".join(p.name_of(v) for v in self.operands))
        if self.attributes:
            p.write(" ")
            p.print_attr_dict(self.attributes)
        p.write(f" : {self.results[0].type}")

    @classmethod
    def parse_custom(cls, p, result_names, loc):
        names = [p.parse_value_use_name()]
        while p.accept(","):
            names.append(p.parse_value_use_name())
        attrs = p.parse_optional_attr_dict()
        p.expect(":")
        t = p.parse_type()
        operands = [p.resolve(n, t) for n in names]
        return cls(operands=operands, result_types=[t], attributes=attrs, result_names=result_names, location=loc)

    @classmethod
    def build(cls, *operands, name: str | None = None, **attrs):
        return cls(operands=list(operands), result_types=[operands[0].type], attributes=attrs, result_names=[name])


class CastOp(OpDef):
    """`%r = dialect.op %a {attrs} : T1 to T2`."""

    custom_print = True

    def print_custom(self, p) -> None:
        p.write(f"{self.name} {p.name_of(self.operands[0])}")
        if self.attributes:
            p.write(" ")
            p.print_attr_dict(self.attributes)
        p.write(f" : {self.operands[0].type} to {self.results[0].type}")

    @classmethod
    def parse_custom(cls, p, result_names, loc):
        name = p.parse_value_use_name()
        attrs = p.parse_optional_attr_dict()
        p.expect(":")
        t_in = p.parse_type()
        p.expect_keyword("to")
        t_out = p.parse_type()
        return cls(operands=[p.resolve(name, t_in)], result_types=[t_out], attributes=attrs, result_names=result_names, location=loc)

    @classmethod
    def build(cls, operand, result_type, name: str | None = None, **attrs):
        return cls(operands=[operand], result_types=[result_type], attributes=attrs, result_names=[name])
