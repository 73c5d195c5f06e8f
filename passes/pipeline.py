"""Pipeline text: `name{opt=value,...},name,...` → pass instances, with located errors.

    canonicalize,tree-prune-leaves{tolerance=1e-3},tree-sort-branches{calibration="rows 1.npy"}

A value is a bare word (anything but `,{}"` and spaces) or a double-quoted string with `\\"`
and `\\\\` escapes.  A named pipeline (`default`) expands in place.  Errors read like the IR
parser's: `pipeline:1:15: error: unknown option 'bitz' for pass 'tree-narrow-thresholds'; known: ...`
with the text and a caret.
"""

from __future__ import annotations

import difflib
import re

from ir.diagnostics import Location, ParseError

from .base import OptionSpec, Pass
from .registry import PIPELINES, all_passes, lookup_pass

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]*")
_BARE_VALUE = re.compile(r'[^,{}"\s]+')


class _Lexer:
    def __init__(self, text: str, source: str):
        self.text, self.source, self.pos = text, source, 0

    def error(self, message: str, pos: int | None = None):
        pos = self.pos if pos is None else pos
        line = self.text.count("\n", 0, pos) + 1
        start = self.text.rfind("\n", 0, pos) + 1
        end = self.text.find("\n", pos)
        src = self.text[start : end if end >= 0 else len(self.text)]
        raise ParseError(message, Location(self.source, line, pos - start + 1), src)

    def skip_ws(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos].isspace():
            self.pos += 1

    def peek(self) -> str:
        self.skip_ws()
        return self.text[self.pos : self.pos + 1]

    def accept(self, c: str) -> bool:
        if self.peek() == c:
            self.pos += 1
            return True
        return False

    def found(self) -> str:
        c = self.peek()
        return f"'{c}'" if c else "end of pipeline"

    def name(self, what: str) -> tuple[str, int]:
        self.skip_ws()
        m = _NAME.match(self.text, self.pos)
        if m is None:
            self.error(f"expected {what}, found {self.found()}")
        self.pos = m.end()
        return m.group(0), m.start()

    def value(self) -> tuple[str, int]:
        self.skip_ws()
        start = self.pos
        if self.text.startswith('"', start):
            out, i = [], start + 1
            while i < len(self.text) and self.text[i] != '"':
                if self.text[i] == "\\" and i + 1 < len(self.text):
                    i += 1
                out.append(self.text[i])
                i += 1
            if i >= len(self.text):
                self.error("unterminated string in option value", start)
            self.pos = i + 1
            return "".join(out), start
        m = _BARE_VALUE.match(self.text, start)
        if m is None:
            self.error(f"expected an option value, found {self.found()}")
        self.pos = m.end()
        return m.group(0), start


def _convert(spec: OptionSpec, raw: str, pass_name: str, lex: _Lexer, pos: int):
    where = f"option '{spec.name}' of pass '{pass_name}'"
    if spec.type is bool:
        low = raw.lower()
        if low in ("true", "1", "yes", "on"):
            return True
        if low in ("false", "0", "no", "off"):
            return False
        lex.error(f"{where} expects true or false, found '{raw}'", pos)
    if spec.type is int:
        try:
            return int(raw, 0)
        except ValueError:
            lex.error(f"{where} expects an integer, found '{raw}'", pos)
    if spec.type is float:
        try:
            return float(raw)
        except ValueError:
            lex.error(f"{where} expects a number, found '{raw}'", pos)
    if spec.choices and raw not in spec.choices:
        lex.error(f"{where} expects one of {', '.join(spec.choices)}; found '{raw}'", pos)
    return raw


def _unknown_pass_message(name: str) -> str:
    names = [p.name for p in all_passes()] + sorted(PIPELINES)
    close = difflib.get_close_matches(name, names, n=1)
    hint = f"; did you mean '{close[0]}'?" if close else ""
    return f"unknown pass '{name}'{hint} (see --list-passes for the {len(names)} known passes and pipelines)"


def parse_pipeline(text: str, source: str = "pipeline") -> list[Pass]:
    """Pass instances for pipeline `text`; `ParseError` located at `source:line:col` otherwise."""
    lex = _Lexer(text, source)
    out: list[Pass] = []
    if lex.peek() == "":
        return out
    while True:
        name, name_pos = lex.name("a pass name")
        if name in PIPELINES:
            if lex.peek() == "{":
                lex.error(f"'{name}' is a named pipeline; it takes no options")
            out.extend(parse_pipeline(PIPELINES[name], f"pipeline '{name}'"))
        else:
            cls = lookup_pass(name)
            if cls is None:
                lex.error(_unknown_pass_message(name), name_pos)
            out.append(_parse_options(lex, cls, name_pos))
        if lex.peek() == "":
            return out
        if not lex.accept(","):
            lex.error(f"expected ',' or the end of the pipeline, found {lex.found()}")


def _parse_options(lex: _Lexer, cls: type[Pass], name_pos: int) -> Pass:
    specs = {s.name: s for s in cls.option_specs()}
    values: dict[str, object] = {}
    positions: dict[str, int] = {}
    if lex.accept("{"):
        while not lex.accept("}"):
            if values and not lex.accept(","):
                lex.error(f"expected ',' or '}}' in the options of pass '{cls.name}', found {lex.found()}")
            key, key_pos = lex.name(f"an option name for pass '{cls.name}'")
            spec = specs.get(key) or specs.get(key.replace("_", "-"))
            if spec is None:
                known = ", ".join(specs) or "none"
                lex.error(f"unknown option '{key}' for pass '{cls.name}'; known: {known}", key_pos)
            if spec.attr in values:
                lex.error(f"option '{spec.name}' of pass '{cls.name}' given twice", key_pos)
            if not lex.accept("="):
                lex.error(f"expected '=' after option '{key}', found {lex.found()}")
            raw, vpos = lex.value()
            values[spec.attr] = _convert(spec, raw, cls.name, lex, vpos)
            positions[spec.attr] = vpos
    for s in specs.values():
        if s.required and s.attr not in values:
            lex.error(f"pass '{cls.name}' needs option '{s.name}' ({s.doc})", name_pos)
    p = cls(**values)
    problem = p.check_options() if hasattr(p, "check_options") else None
    if problem is not None:
        attr, message = problem
        lex.error(f"option '{attr.replace('_', '-')}' of pass '{cls.name}': {message}", positions.get(attr, name_pos))
    return p


def pipeline_text(passes: list[Pass]) -> str:
    """The canonical text of a pass list (parses back to equal passes)."""
    return ",".join(p.pipeline_text() for p in passes)
