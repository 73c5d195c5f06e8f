"""Dialect attributes (`#dialect.name...`) parse and print themselves through the registry in
`ir/attributes.py`; the printer and the parser name no dialect.  A new attribute — here a
multi-line one defined by this test — round-trips in every position an attribute can take,
and its parse errors stay located."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from ir.attributes import ArrayAttr, Attribute, DictAttr, StringAttr, lookup_attr, register_attr, registered_attrs
from ir.diagnostics import ParseError
from ir.dialects.tree import TableAttr
from ir.parser import parse_module
from ir.printer import print_op
from ir.verifier import verify

ROOT = Path(__file__).resolve().parents[2]


class LinesAttr(Attribute):
    """`#testattr.lines<N> {` N lines `}`: text lines, printed one per line under the printer's indent."""

    def __init__(self, lines):
        self.lines = tuple(lines)

    def _key(self):
        return self.lines

    def __str__(self) -> str:
        return f"#testattr.lines<{len(self.lines)}>"

    def print(self, p) -> None:
        inner = p.indent_text + "  "
        body = "".join(f"{inner}{line}\n" for line in self.lines)
        p.write(f"#testattr.lines<{len(self.lines)}> {{\n{body}{p.indent_text}}}")


def _parse_lines(p, start: int) -> LinesAttr:
    p.expect("<")
    n = p.parse_integer()
    p.expect(">")
    lines = p.take_raw_block()
    if len(lines) != n:
        line_no, text = lines[-1] if lines else (p.location(start).line, "")
        p.error_at_line(line_no, 1, f"#testattr.lines<{n}> holds {len(lines)} lines")
    return LinesAttr(text.strip() for _, text in lines)


register_attr("testattr.lines", LinesAttr, _parse_lines)


MODULE = """\
module attributes {testattr.doc = #testattr.lines<2> {
  first line
  second line
}} {
  func.func @predict(%x: tensor<1xf32>) -> tensor<1xf32> attributes {testattr.list = [1 : i64, #testattr.lines<1> {
    nested in an array
  }], testattr.dict = {a = #testattr.lines<1> {
    nested in a dictionary
  }}} {
    func.return %x : tensor<1xf32>
  }
}
"""


def test_a_registered_attribute_round_trips_in_every_position():
    m = parse_module(MODULE, "lines.tir")
    verify(m)
    assert m.attributes["testattr.doc"] == LinesAttr(["first line", "second line"])
    f = m.body.ops[0]
    assert isinstance(f.attributes["testattr.list"], ArrayAttr) and f.attributes["testattr.list"][1] == LinesAttr(["nested in an array"])
    assert isinstance(f.attributes["testattr.dict"], DictAttr)
    text = print_op(m)
    m2 = parse_module(text, "again.tir")
    assert print_op(m2) == text
    assert m2.attributes == m.attributes and m2.body.ops[0].attributes == f.attributes
    generic = print_op(m, generic=True)
    m3 = parse_module(generic, "generic.tir")
    assert print_op(m3, generic=True) == generic and print_op(m3) == text


def test_multi_line_attributes_indent_with_the_op():
    m = parse_module(MODULE, "lines.tir")
    # On the function (one level deep) the body and the closing brace follow the op's own
    # indentation, in both forms; on the module they start at the margin.
    for text in (print_op(m), print_op(m, generic=True)):
        assert "\n    nested in an array\n  }]" in text and "\n    nested in a dictionary\n  }}" in text
        assert "#testattr.lines<2> {\n  first line\n  second line\n}}" in text


def test_the_registry_lists_and_finds_attributes():
    names = registered_attrs()
    assert {"tree.nodes", "tree.levels", "testattr.lines"} <= set(names) and names == sorted(names)
    assert lookup_attr("tree.nodes").cls is TableAttr and lookup_attr("testattr.lines").cls is LinesAttr
    assert lookup_attr("nope.nothing") is None


def test_registering_twice_or_without_a_dialect_is_refused():
    with pytest.raises(ValueError, match="registered twice"):
        register_attr("testattr.lines", LinesAttr, lambda p, start: None)
    register_attr("testattr.lines", LinesAttr, _parse_lines)  # the same entry again is fine
    with pytest.raises(ValueError, match="dialect.name"):
        register_attr("nodialect", LinesAttr, _parse_lines)


def _error(text: str) -> str:
    with pytest.raises(ParseError) as e:
        parse_module(text, "bad.tir")
    return str(e.value)


def test_unknown_attribute_is_located_and_lists_the_registered_ones():
    msg = _error('module attributes {x.y = [1 : i64, #foo.bar<1>]} {\n}\n')
    first = msg.splitlines()[0]
    assert first.startswith("bad.tir:1:36: error: unknown attribute '#foo.bar'; registered attributes: ")
    assert all(f"#{n}" in first for n in registered_attrs())
    assert msg.splitlines()[2] == " " * 35 + "^"


def test_errors_inside_a_registered_attribute_keep_their_location():
    msg = _error("module attributes {x.y = #testattr.lines<3> {\n  one\n  two\n}} {\n}\n")
    assert msg.splitlines()[0] == "bad.tir:3:1: error: #testattr.lines<3> holds 2 lines"
    msg = _error("module attributes {x.y = #testattr.lines<x> {\n}} {\n}\n")
    assert msg.splitlines()[0] == "bad.tir:1:42: error: expected an integer, found 'x'"


def test_tree_table_errors_keep_their_locations():
    head = '"builtin.module"() ({\n  "tree.tree"() {out = 0 : i64, table = '
    msg = _error(head + "#tree.nodes<i32, f64> {\n    0: leaf 1.0\n  }} : () -> ()\n}) : () -> ()\n")
    assert msg.splitlines()[0] == "bad.tir:2:41: error: node tables hold f32 or f64 thresholds and leaves"
    msg = _error(head + "#tree.nodes<f32, f64> {\n    0: x[0] lt 1.0 ? 1\n  }} : () -> ()\n}) : () -> ()\n")
    assert msg.splitlines()[0].startswith("bad.tir:3:5: error: expected a node")


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            out.add("." * node.level + (node.module or ""))
            out.update("." * node.level + (node.module + "." if node.module else "") + a.name for a in node.names)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
    return out


def test_printer_and_parser_name_no_dialect():
    for name in ("printer.py", "parser.py"):
        path = ROOT / "ir" / name
        dialect_imports = {i for i in _imports(path) if "dialects" in i}
        # parse_module wraps top-level ops in a builtin.module: the one op the core knows.
        assert dialect_imports <= {".dialects", ".dialects.builtin", ".dialects.builtin.ModuleOp"}, (name, dialect_imports)
        assert "tree" not in path.read_text(), name


def test_tree_tables_still_print_in_the_generic_form():
    from tests.irgen import random_module

    m = random_module(3, oblivious=True)
    text = print_op(m, generic=True)
    assert "table = #tree.nodes<f" in text and "table = #tree.levels<f" in text
    assert print_op(parse_module(text, "g.tir"), generic=True) == text
    assert StringAttr("x") == StringAttr("x")  # plain attributes are untouched by the registry
