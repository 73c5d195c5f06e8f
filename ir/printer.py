"""Textual IR: custom (pretty) form by default, MLIR's generic form on request.

Output is a pure function of the IR: SSA names come from name hints (made unique by suffixes
in definition order) or are numbered `%0, %1, ...`; attribute dictionaries are sorted.
"""

from __future__ import annotations

import io

from .attributes import Attribute, print_attr_dict, quote
from .core import Block, Operation, Region, Value
from .opdef import IsolatedFromAbove


class Printer:
    def __init__(self, generic: bool = False):
        self.generic = generic
        self.out = io.StringIO()
        self.indent = 0
        self.names: dict[int, str] = {}
        self.used: set[str] = set()
        self.counter = 0

    # ----- low level --------------------------------------------------------------------
    @property
    def indent_text(self) -> str:
        return "  " * self.indent

    def write(self, s: str) -> None:
        self.out.write(s)

    def newline(self) -> None:
        self.out.write("\n" + self.indent_text)

    def write_lines(self, lines: list[str]) -> None:
        """Write pre-indented lines, each on a new line."""
        if lines:
            self.out.write("\n")
            self.out.write("\n".join(lines))

    # ----- names ----------------------------------------------------------------------
    def _assign(self, v: Value) -> str:
        hint = v.name_hint
        if hint and _valid_hint(hint):
            name = hint
            k = 1
            while name in self.used:
                name = f"{hint}_{k}"
                k += 1
        else:
            while str(self.counter) in self.used:
                self.counter += 1
            name = str(self.counter)
            self.counter += 1
        self.used.add(name)
        self.names[id(v)] = name
        return "%" + name

    def name_of(self, v: Value) -> str:
        n = self.names.get(id(v))
        if n is None:
            return "%<<UNKNOWN SSA VALUE>>"
        return "%" + n

    # ----- attributes -----------------------------------------------------------------
    def print_attr_dict(self, attrs: dict[str, Attribute]) -> None:
        """`{k = v, ...}` (or `{}`), keys sorted; each value prints itself (`Attribute.print`),
        so a dialect attribute may span lines indented from here."""
        print_attr_dict(self, attrs)

    # ----- structure ------------------------------------------------------------------
    def print_op(self, op: Operation) -> None:
        if op.results:
            self.write(", ".join(self._assign(r) for r in op.results) + " = ")
        # Names restart inside ops isolated from above (functions), as in MLIR.
        isolated = getattr(op, "has_trait", None) is not None and op.has_trait(IsolatedFromAbove)
        if isolated:
            saved = (self.used, self.counter)
            self.used, self.counter = set(), 0
        if not self.generic and getattr(op, "custom_print", False):
            if op.regions and op.regions[0].blocks:
                # custom forms print entry-block arguments in their own syntax (a function's signature)
                self.print_block_arg_names(op.regions[0].blocks[0])
            op.print_custom(self)
        else:
            self.print_generic(op)
        if isolated:
            self.used, self.counter = saved

    def print_generic(self, op: Operation) -> None:
        self.write(quote(op.name) + "(" + ", ".join(self.name_of(v) for v in op.operands) + ")")
        if op.regions:
            self.write(" (")
            for i, r in enumerate(op.regions):
                if i:
                    self.write(", ")
                self.print_region(r, print_block_args=True, generic=True)
            self.write(")")
        if op.attributes:
            self.write(" ")
            self.print_attr_dict(op.attributes)
        ins = ", ".join(str(v.type) for v in op.operands)
        outs = ", ".join(str(r.type) for r in op.results)
        self.write(f" : ({ins}) -> " + (outs if len(op.results) == 1 else f"({outs})"))

    def print_region(self, region: Region, print_block_args: bool = True, generic: bool = False) -> None:
        self.write("{")
        self.indent += 1
        for bi, block in enumerate(region.blocks):
            for a in block.args:
                if id(a) not in self.names:
                    self._assign(a)
            show_header = bi > 0 or (block.args and (print_block_args or generic))
            if show_header:
                self.out.write("\n" + "  " * (self.indent - 1))
                args = ", ".join(f"{self.name_of(a)}: {a.type}" for a in block.args)
                self.write(f"^bb{bi}" + (f"({args})" if args else "") + ":")
            for op in block.ops:
                self.newline()
                self.print_op(op)
        self.indent -= 1
        self.newline()
        self.write("}")

    def print_block_arg_names(self, block: Block) -> None:
        for a in block.args:
            self._assign(a)


def _valid_hint(h: str) -> bool:
    return (h[0].isalpha() or h[0] == "_") and all(c.isalnum() or c in "_$." for c in h) and not h[0].isdigit()


def print_op(op: Operation, generic: bool = False) -> str:
    """The text of an op (usually a module), ending with a newline."""
    p = Printer(generic=generic)
    p.print_op(op)
    p.write("\n")
    return p.out.getvalue()
