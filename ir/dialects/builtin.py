"""`builtin.module`: the top-level container."""

from __future__ import annotations

from ..attributes import StringAttr
from ..core import Block, Region
from ..opdef import AttrDef, IsolatedFromAbove, NoTerminator, OpDef, RegionDef, SymbolTable, register


@register
class ModuleOp(OpDef):
    """A list of top-level ops (functions), printed as `module attributes {...} { ... }`."""

    name = "builtin.module"
    attr_defs = (AttrDef("sym_name", StringAttr, optional=True),)
    region_defs = (RegionDef("body_region"),)
    traits = (NoTerminator, SymbolTable, IsolatedFromAbove)
    custom_print = True

    @classmethod
    def build(cls, attributes=None) -> "ModuleOp":
        return cls(attributes=attributes or {}, regions=[Region([Block()])])

    def lookup(self, sym_name: str):
        for op in self.body.ops:
            a = op.attributes.get("sym_name")
            if a is not None and a.value == sym_name:
                return op
        return None

    def print_custom(self, p) -> None:
        p.write("module")
        if self.attributes:
            p.write(" attributes ")
            p.print_attr_dict(self.attributes)
        p.write(" ")
        p.print_region(self.regions[0], print_block_args=False)

    @classmethod
    def parse_custom(cls, p, result_names, loc):
        attrs = {}
        if p.accept_keyword("attributes"):
            attrs = p.parse_attr_dict()
        region = p.parse_region(arg_types_known=())
        if not region.blocks:
            region.add_block(Block())
        return cls(attributes=attrs, regions=[region], location=loc)
