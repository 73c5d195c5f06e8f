"""Parser for the textual IR (custom and generic forms).

Errors are `ParseError`s located at `file:line:col` with the source line and a caret, in
MLIR's words where MLIR has words for them.
"""

from __future__ import annotations

import bisect
import contextlib
import re

import numpy as np

from .attributes import (
    ArrayAttr,
    Attribute,
    BoolAttr,
    DenseArrayAttr,
    DenseElementsAttr,
    DictAttr,
    FloatAttr,
    IntegerAttr,
    StringAttr,
    SymbolRefAttr,
    TypeAttr,
    UnitAttr,
    lookup_attr,
    registered_attrs,
)
from .core import Block, Operation, Region, Value
from .diagnostics import Location, ParseError
from .floats import parse_float
from .opdef import lookup_op
from .types import FloatType, FunctionType, IndexType, IntegerType, NoneType, TensorType, Type

_WS = re.compile(r"(?:\s+|//[^\n]*)+")
_NUMBER = re.compile(r"-?(?:0x[0-9A-Fa-f]+|\d+(?:\.\d*)?(?:[eE][-+]?\d+)?)")
_BARE = re.compile(r"[A-Za-z_][A-Za-z0-9_$.\-]*")
_BARE_NODASH = re.compile(r"[A-Za-z_][A-Za-z0-9_$.]*")
_SUFFIX = re.compile(r"[A-Za-z0-9_$.]+")
_STRING = re.compile(r'"(?:[^"\\\n]|\\.)*"')
_DIMS = re.compile(r"((?:\d+x)*)")
_SCALAR_TYPE = re.compile(r"(f16|f32|f64|i1|i8|i16|i32|i64|index|none)(?![A-Za-z0-9_])")
_PUNCT = ("->", "(", ")", "{", "}", "[", "]", "<", ">", ",", ":", "=", "?", "*", "^")


class Parser:
    def __init__(self, text: str, filename: str = "<string>"):
        self.text = text
        self.filename = filename
        self.pos = 0
        self.line_starts = [0] + [m.end() for m in re.finditer("\n", text)]
        self.scopes: list[dict[str, Value]] = [{}]
        self._context: dict = {}

    # ----- positions and errors ---------------------------------------------------------
    def location(self, pos: int | None = None) -> Location:
        pos = self.pos if pos is None else pos
        line = bisect.bisect_right(self.line_starts, pos)
        return Location(self.filename, line, pos - self.line_starts[line - 1] + 1)

    def _line_text(self, line: int) -> str:
        start = self.line_starts[line - 1]
        end = self.text.find("\n", start)
        return self.text[start : end if end >= 0 else len(self.text)]

    def error(self, message: str, pos: int | None = None):
        self.skip_ws() if pos is None else None
        loc = self.location(pos)
        raise ParseError(message, loc, self._line_text(loc.line))

    def error_at_line(self, line: int, col: int, message: str):
        raise ParseError(message, Location(self.filename, line, col), self._line_text(line))

    # ----- context (what an enclosing op's syntax tells nested ops, e.g. element types) -------
    @contextlib.contextmanager
    def context(self, **kv):
        saved = dict(self._context)
        self._context.update(kv)
        try:
            yield
        finally:
            self._context = saved

    def context_value(self, key: str):
        return self._context.get(key)

    # ----- lexing -----------------------------------------------------------------------
    def skip_ws(self) -> None:
        m = _WS.match(self.text, self.pos)
        if m:
            self.pos = m.end()

    def at_end(self) -> bool:
        self.skip_ws()
        return self.pos >= len(self.text)

    def peek_char(self) -> str:
        self.skip_ws()
        return self.text[self.pos : self.pos + 1]

    def peek_kind(self) -> str:
        c = self.peek_char()
        return {"%": "value", "@": "symbol", "^": "block", '"': "string", "#": "hash"}.get(c, "other")

    def accept(self, punct: str) -> bool:
        self.skip_ws()
        if self.text.startswith(punct, self.pos):
            if punct == "-" and self.text.startswith("->", self.pos):
                return False
            self.pos += len(punct)
            return True
        return False

    def expect(self, punct: str) -> None:
        if not self.accept(punct):
            self.error(f"expected '{punct}'{self._found()}")

    def _found(self) -> str:
        self.skip_ws()
        if self.pos >= len(self.text):
            return ", found end of input"
        m = _BARE.match(self.text, self.pos) or _NUMBER.match(self.text, self.pos)
        tok = m.group(0) if m else self.text[self.pos]
        return f", found '{tok}'"

    def accept_keyword(self, word: str) -> bool:
        self.skip_ws()
        m = _BARE_NODASH.match(self.text, self.pos)
        if m and m.group(0) == word:
            self.pos = m.end()
            return True
        return False

    def expect_keyword(self, word: str) -> None:
        if not self.accept_keyword(word):
            self.error(f"expected '{word}'{self._found()}")

    def parse_bare_identifier(self) -> str:
        self.skip_ws()
        m = _BARE_NODASH.match(self.text, self.pos)
        if not m:
            self.error(f"expected an identifier{self._found()}")
        self.pos = m.end()
        return m.group(0)

    def parse_integer(self) -> int:
        self.skip_ws()
        m = _NUMBER.match(self.text, self.pos)
        if not m or any(c in m.group(0) for c in ".eE") and not m.group(0).lower().startswith(("0x", "-0x")):
            self.error(f"expected an integer{self._found()}")
        self.pos = m.end()
        return int(m.group(0), 0)

    def parse_string(self) -> str:
        self.skip_ws()
        m = _STRING.match(self.text, self.pos)
        if not m:
            self.error(f"expected a string{self._found()}")
        self.pos = m.end()
        return _unescape(m.group(0)[1:-1])

    def take_raw_block(self) -> list[tuple[int, str]]:
        """`{` newline, lines, a line starting with `}`: returns the inner lines with their numbers."""
        self.expect("{")
        nl = self.text.find("\n", self.pos)
        if nl < 0 or self.text[self.pos : nl].strip():
            self.error("expected a new line after '{'")
        lines = []
        start = nl + 1
        line_no = bisect.bisect_right(self.line_starts, start)
        while True:
            if start >= len(self.text):
                self.error("unterminated block: expected a line starting with '}'", len(self.text))
            end = self.text.find("\n", start)
            end = len(self.text) if end < 0 else end
            line = self.text[start:end]
            if line.lstrip().startswith("}"):
                self.pos = start + line.index("}") + 1
                return lines
            if line.strip():
                lines.append((line_no, line))
            start = end + 1
            line_no += 1

    # ----- SSA names --------------------------------------------------------------------
    def parse_value_def_name(self) -> str:
        self.skip_ws()
        if not self.accept("%"):
            self.error(f"expected an SSA value name{self._found()}")
        m = _SUFFIX.match(self.text, self.pos)
        if not m:
            self.error("expected an SSA value name after '%'")
        self.pos = m.end()
        return m.group(0)

    def parse_value_use_name(self) -> tuple[str, int]:
        self.skip_ws()
        pos = self.pos
        return (self.parse_value_def_name(), pos)

    def resolve(self, name_pos, type: Type) -> Value:
        name, pos = name_pos
        for scope in reversed(self.scopes):
            v = scope.get(name)
            if v is not None:
                if v.type != type:
                    self.error(f"use of value '%{name}' expects different type than prior uses: '{type}' vs '{v.type}'", pos)
                return v
        self.error(f"use of undeclared SSA value name '%{name}'", pos)

    def define(self, name: str, value: Value, pos: int) -> None:
        scope = self.scopes[-1]
        if name in scope:
            self.error(f"redefinition of SSA value '%{name}'", pos)
        scope[name] = value
        value.name_hint = None if name.isdigit() else name

    # ----- types ------------------------------------------------------------------------
    def parse_type(self) -> Type:
        self.skip_ws()
        start = self.pos
        m = _SCALAR_TYPE.match(self.text, self.pos)
        if m:
            self.pos = m.end()
            w = m.group(1)
            if w == "index":
                return IndexType()
            if w == "none":
                return NoneType()
            return FloatType(int(w[1:])) if w[0] == "f" else IntegerType(int(w[1:]))
        if self.accept_keyword("tensor"):
            self.expect("<")
            m = _DIMS.match(self.text, self.pos)
            dims = tuple(int(d) for d in m.group(1).split("x") if d)
            self.pos = m.end()
            elem = self.parse_type()
            if isinstance(elem, TensorType):
                self.error("tensor element type cannot be a tensor", start)
            self.expect(">")
            return TensorType(dims, elem)
        if self.peek_char() == "(":
            self.expect("(")
            ins = []
            if not self.accept(")"):
                ins.append(self.parse_type())
                while self.accept(","):
                    ins.append(self.parse_type())
                self.expect(")")
            self.expect("->")
            if self.accept("("):
                outs = []
                if not self.accept(")"):
                    outs.append(self.parse_type())
                    while self.accept(","):
                        outs.append(self.parse_type())
                    self.expect(")")
            else:
                outs = [self.parse_type()]
            return FunctionType(tuple(ins), tuple(outs))
        self.error(f"expected a type{self._found()}")

    # ----- attributes -------------------------------------------------------------------
    def parse_optional_attr_dict(self) -> dict[str, Attribute]:
        if self.peek_char() == "{":
            return self.parse_attr_dict()
        return {}

    def parse_attr_dict(self) -> dict[str, Attribute]:
        self.expect("{")
        out: dict[str, Attribute] = {}
        if self.accept("}"):
            return out
        while True:
            self.skip_ws()
            pos = self.pos
            key = self.parse_string() if self.peek_char() == '"' else self.parse_bare_identifier()
            if key in out:
                self.error(f"duplicate key '{key}' in dictionary attribute", pos)
            out[key] = self.parse_attribute() if self.accept("=") else UnitAttr()
            if self.accept("}"):
                return out
            self.expect(",")

    def parse_attribute(self) -> Attribute:
        self.skip_ws()
        c = self.peek_char()
        start = self.pos
        if c == '"':
            return StringAttr(self.parse_string())
        if c == "@":
            self.pos += 1
            return SymbolRefAttr(self.parse_string() if self.peek_char() == '"' else self.parse_bare_identifier())
        if c == "[":
            self.expect("[")
            items = []
            if not self.accept("]"):
                items.append(self.parse_attribute())
                while self.accept(","):
                    items.append(self.parse_attribute())
                self.expect("]")
            return ArrayAttr(items)
        if c == "{":
            return DictAttr(self.parse_attr_dict())
        if c == "#":
            return self._parse_hash_attribute()
        if c and (c.isdigit() or c == "-"):
            m = _NUMBER.match(self.text, self.pos)
            if not m:
                self.error(f"expected an attribute value{self._found()}")
            self.pos = m.end()
            lit = m.group(0)
            typ = self.parse_type() if self.accept(":") else None
            return self._number_attr(lit, typ, start)
        if self.accept_keyword("true"):
            return BoolAttr(True)
        if self.accept_keyword("false"):
            return BoolAttr(False)
        if self.accept_keyword("unit"):
            return UnitAttr()
        if self.accept_keyword("dense"):
            return self._parse_dense(start)
        if self.accept_keyword("array"):
            return self._parse_dense_array(start)
        m = _SCALAR_TYPE.match(self.text, self.pos)
        if m or self.text.startswith(("tensor<", "("), self.pos):
            return TypeAttr(self.parse_type())
        self.error(f"expected an attribute value{self._found()}")

    def _number_attr(self, lit: str, typ: Type | None, pos: int) -> Attribute:
        is_float_text = not lit.lower().lstrip("-").startswith("0x") and any(ch in lit for ch in ".eE")
        if typ is None:
            typ = FloatType(64) if is_float_text else IntegerType(64)
        if isinstance(typ, FloatType):
            return FloatAttr(parse_float(lit, typ.width), typ)
        if isinstance(typ, (IntegerType, IndexType)):
            if is_float_text:
                self.error(f"expected an integer for type {typ}, found '{lit}'", pos)
            return IntegerAttr(int(lit, 0), typ)
        self.error(f"a number cannot have type {typ}", pos)

    def _scalar_list(self) -> list[str]:
        """Nested `[...]` of literals, flattened; also returns the nesting shape check later."""
        out: list[str] = []

        def rec(depth):
            self.skip_ws()
            if self.accept("["):
                if self.accept("]"):
                    return 0
                n = 1
                rec(depth + 1)
                while self.accept(","):
                    rec(depth + 1)
                    n += 1
                self.expect("]")
                return n
            m = _NUMBER.match(self.text, self.pos) or re.compile(r"true|false").match(self.text, self.pos)
            if not m:
                self.error(f"expected a number{self._found()}")
            self.pos = m.end()
            out.append(m.group(0))
            return 0

        rec(0)
        return out

    def _convert_scalars(self, lits: list[str], elem: Type, pos: int) -> np.ndarray:
        if isinstance(elem, FloatType):
            try:
                return np.array([parse_float(x, elem.width) for x in lits], dtype=elem.numpy)
            except ValueError:
                self.error(f"invalid float literal for {elem}", pos)
        if isinstance(elem, IntegerType) and elem.width == 1:
            return np.array([x == "true" or x == "1" for x in lits], dtype=np.bool_)
        try:
            vals = [int(x, 0) for x in lits]
        except ValueError:
            self.error(f"expected integers for element type {elem}", pos)
        info = np.iinfo(elem.numpy)
        if vals and (min(vals) < info.min or max(vals) > info.max):
            self.error(f"integer value out of range for {elem}", pos)
        return np.array(vals, dtype=elem.numpy)

    def _parse_dense(self, start: int) -> DenseElementsAttr:
        self.expect("<")
        lpos = self.pos
        lits = self._scalar_list()
        self.expect(">")
        self.expect(":")
        tpos = self.pos
        typ = self.parse_type()
        if not isinstance(typ, TensorType):
            self.error(f"dense elements need a tensor type, found {typ}", tpos)
        vals = self._convert_scalars(lits, typ.element, lpos)
        if len(vals) == 1 and typ.size != 1:
            vals = np.full(typ.size, vals[0], dtype=vals.dtype)
        if len(vals) != typ.size:
            self.error(f"dense literal has {len(vals)} elements but type {typ} holds {typ.size}", lpos)
        return DenseElementsAttr(vals, typ)

    def _parse_dense_array(self, start: int) -> DenseArrayAttr:
        self.expect("<")
        elem = self.parse_type()
        lits = []
        if self.accept(":"):
            while True:
                self.skip_ws()
                m = _NUMBER.match(self.text, self.pos) or re.compile(r"true|false").match(self.text, self.pos)
                if not m:
                    self.error(f"expected a number{self._found()}")
                self.pos = m.end()
                lits.append(m.group(0))
                if not self.accept(","):
                    break
        self.expect(">")
        return DenseArrayAttr(self._convert_scalars(lits, elem, start), elem)

    def _parse_hash_attribute(self) -> Attribute:
        """`#dialect.name...`: the registered dialect attribute parses the rest itself."""
        start = self.pos
        self.expect("#")
        name = self.parse_bare_identifier()
        syntax = lookup_attr(name)
        if syntax is None:
            known = ", ".join("#" + n for n in registered_attrs()) or "none"
            self.error(f"unknown attribute '#{name}'; registered attributes: {known}", start)
        return syntax.parse(self, start)

    def parse_symbol_name(self) -> str:
        self.skip_ws()
        if not self.accept("@"):
            self.error(f"expected a symbol name '@...'{self._found()}")
        return self.parse_string() if self.peek_char() == '"' else self.parse_bare_identifier()

    # ----- ops, blocks, regions --------------------------------------------------------
    def parse_op(self) -> Operation:
        self.skip_ws()
        op_pos = start = self.pos
        result_names: list[tuple[str, int]] = []
        if self.peek_kind() == "value":
            result_names.append(self.parse_value_use_name())
            while self.accept(","):
                result_names.append(self.parse_value_use_name())
            self.expect("=")
            self.skip_ws()
            op_pos = self.pos
        loc = self.location(start)  # like MLIR: an op is located where its text starts
        hints = [n if not n.isdigit() else None for n, _ in result_names]
        if self.peek_kind() == "string":
            op = self._parse_generic(hints, loc)
        else:
            m = _BARE_NODASH.match(self.text, self.pos)
            if not m:
                self.error(f"expected an operation{self._found()}")
            name = m.group(0)
            cls = lookup_op(name) or (lookup_op("builtin." + name) if "." not in name else None)
            if cls is None or not getattr(cls, "custom_print", False):
                self.error(
                    f"unregistered operation '{name}'" if cls is None else f"'{name}' has no custom form; write it as \"{name}\"(...)"
                )
            self.pos = m.end()
            op = cls.parse_custom(self, hints, loc)
        if len(result_names) != len(op.results):
            self.error(f"operation defines {len(op.results)} results but was given {len(result_names)} names", op_pos)
        for (n, pos), r in zip(result_names, op.results):
            self.define(n, r, pos)
        return op

    def _parse_generic(self, hints, loc) -> Operation:
        name_pos = self.pos
        name = self.parse_string()
        cls = lookup_op(name)
        if cls is None:
            self.error(f"unregistered operation '{name}'", name_pos)
        self.expect("(")
        uses = []
        if not self.accept(")"):
            uses.append(self.parse_value_use_name())
            while self.accept(","):
                uses.append(self.parse_value_use_name())
            self.expect(")")
        regions_pos = self.pos
        self.skip_ws()
        has_regions = self.text.startswith("(", self.pos) and self.text[self.pos + 1 :].lstrip().startswith("{")
        regions_text_pos = self.pos
        if has_regions:
            # Parse attributes first when possible would need lookahead; regions come first in
            # MLIR's generic form, and dialect attributes carry their own types, so no context needed.
            self.expect("(")
            regions = [self.parse_region(arg_types_known=None)]
            while self.accept(","):
                regions.append(self.parse_region(arg_types_known=None))
            self.expect(")")
        else:
            regions = []
        del regions_pos, regions_text_pos
        attrs = self.parse_optional_attr_dict()
        self.expect(":")
        tpos = self.pos
        ftype = self.parse_type()
        if not isinstance(ftype, FunctionType):
            self.error(f"expected a function type '(...) -> ...', found {ftype}", tpos)
        if len(ftype.inputs) != len(uses):
            self.error(f"{len(uses)} operands but the type lists {len(ftype.inputs)}", tpos)
        operands = [self.resolve(u, t) for u, t in zip(uses, ftype.inputs)]
        return cls(operands=operands, result_types=list(ftype.results), attributes=attrs, regions=regions, result_names=hints, location=loc)

    def parse_region(self, arg_types_known) -> Region:
        """`{ ops }` or `{ ^bb0(%a: T): ops }`.  `arg_types_known`: (name, type) pairs of the entry
        block's arguments when the op's syntax gave them outside (e.g. `func.func`)."""
        self.expect("{")
        self.scopes.append({})
        region = Region()
        block = None
        if arg_types_known:
            block = Block([t for _, t in arg_types_known])
            for (n, _), a in zip(arg_types_known, block.args):
                self.define(n, a, self.pos)
            region.add_block(block)
        while not self.accept("}"):
            if self.at_end():
                self.error("expected '}' to close the region")
            if self.peek_kind() == "block":
                block = self._parse_block_header()
                region.add_block(block)
                continue
            if block is None:
                block = Block()
                region.add_block(block)
            block.add_op(self.parse_op())
        self.scopes.pop()
        return region

    def _parse_block_header(self) -> Block:
        self.expect("^")
        self.parse_bare_identifier()
        names, types = [], []
        if self.accept("("):
            while True:
                self.skip_ws()
                pos = self.pos
                names.append((self.parse_value_def_name(), pos))
                self.expect(":")
                types.append(self.parse_type())
                if self.accept(")"):
                    break
                self.expect(",")
        self.expect(":")
        block = Block(types)
        for (n, pos), a in zip(names, block.args):
            self.define(n, a, pos)
        return block


def _unescape(s: str) -> str:
    out = bytearray()
    i = 0
    while i < len(s):
        c = s[i]
        if c != "\\":
            out.extend(c.encode("utf-8"))
            i += 1
            continue
        nxt = s[i + 1]
        simple = {"\\": "\\", '"': '"', "n": "\n", "t": "\t"}
        if nxt in simple:
            out.extend(simple[nxt].encode())
            i += 2
        else:
            out.append(int(s[i + 1 : i + 3], 16))
            i += 3
    return out.decode("utf-8")


def parse_module(text: str, filename: str = "<string>") -> Operation:
    """Parse IR text into a `builtin.module` (top-level ops without a module are wrapped in one)."""
    from .dialects import builtin  # noqa: F401  (registers ops)
    from .dialects.builtin import ModuleOp

    p = Parser(text, filename)
    ops = []
    while not p.at_end():
        ops.append(p.parse_op())
    if len(ops) == 1 and isinstance(ops[0], ModuleOp):
        return ops[0]
    if not ops:
        p.error("expected an operation, found end of input")
    module = ModuleOp.build()
    for op in ops:
        module.body.add_op(op)
    return module
