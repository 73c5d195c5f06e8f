"""Typed attributes: compile-time constants attached to ops.

Every attribute prints to text that the parser reads back to an equal attribute, so the
printed IR is a pure function of the IR (floats bit-exact in their own width).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .floats import format_float, format_floats
from .types import FloatType, IndexType, IntegerType, TensorType, Type


class Attribute:
    """Base of all attributes."""

    def __eq__(self, other) -> bool:
        return type(self) is type(other) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash((type(self), self._key()))

    def _key(self):  # pragma: no cover - overridden
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self})"

    def print(self, p) -> None:
        """Write this attribute's text through printer `p` (`p.write`, `p.indent_text`).

        The default is `str(self)`; an attribute whose text spans several lines (a dialect
        attribute such as `#tree.nodes<...> {...}`) overrides this and indents by `p.indent_text`."""
        p.write(str(self))


class IntegerAttr(Attribute):
    """`7 : i64` (the type defaults to i64 and is then printed anyway for clarity)."""

    def __init__(self, value: int, type: Type = IntegerType(64)):
        self.value = int(value)
        self.type = type

    def _key(self):
        return (self.value, self.type)

    def __str__(self) -> str:
        return f"{self.value} : {self.type}"


class FloatAttr(Attribute):
    """`0.5 : f32`: a float held exactly in its own width."""

    def __init__(self, value: float, type: FloatType = FloatType(64)):
        self.type = type
        # Held as a numpy scalar of its width: exact, signalling-NaN payloads included.
        self.bits = np.array(value, type.numpy)
        self.value = float(self.bits)

    def _key(self):
        return (self.bits.tobytes(), self.type)

    def __str__(self) -> str:
        return f"{format_float(self.bits[()], self.type.width)} : {self.type}"


class BoolAttr(Attribute):
    """`true` / `false`."""

    def __init__(self, value: bool):
        self.value = bool(value)

    def _key(self):
        return self.value

    def __str__(self) -> str:
        return "true" if self.value else "false"


class StringAttr(Attribute):
    """`"text"` with C-style escapes."""

    def __init__(self, value: str):
        self.value = str(value)

    def _key(self):
        return self.value

    def __str__(self) -> str:
        return quote(self.value)


class UnitAttr(Attribute):
    """A present-or-absent flag: printed as the bare name in an attribute dictionary."""

    def _key(self):
        return ()

    def __str__(self) -> str:
        return "unit"


class TypeAttr(Attribute):
    """A type used as a value, e.g. `compare = f32`."""

    def __init__(self, type: Type):
        self.type = type

    def _key(self):
        return self.type

    def __str__(self) -> str:
        return str(self.type)


class SymbolRefAttr(Attribute):
    """`@name`."""

    def __init__(self, name: str):
        self.name = name

    def _key(self):
        return self.name

    def __str__(self) -> str:
        return "@" + (self.name if is_bare_identifier(self.name) else quote(self.name))


class ArrayAttr(Attribute):
    """`[a, b, c]`: an ordered list of attributes."""

    def __init__(self, items):
        self.items = tuple(items)

    def _key(self):
        return self.items

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self):
        return iter(self.items)

    def __getitem__(self, i):
        return self.items[i]

    def __str__(self) -> str:
        return "[" + ", ".join(str(a) for a in self.items) + "]"

    def print(self, p) -> None:
        p.write("[")
        for i, a in enumerate(self.items):
            if i:
                p.write(", ")
            a.print(p)
        p.write("]")


class DictAttr(Attribute):
    """`{a = 1 : i64, b = "x"}` with keys printed in sorted order."""

    def __init__(self, entries: dict):
        self.entries = dict(entries)

    def _key(self):
        return tuple(sorted(self.entries.items(), key=lambda kv: kv[0]))

    def __getitem__(self, k):
        return self.entries[k]

    def get(self, k, default=None):
        return self.entries.get(k, default)

    def __str__(self) -> str:
        return format_attr_dict(self.entries, empty="{}")

    def print(self, p) -> None:
        print_attr_dict(p, self.entries)


class DenseArrayAttr(Attribute):
    """`array<i32: 1, 2, 3>`: a 1-D numpy array of scalars of one type."""

    def __init__(self, values, element: Type):
        self.element = element
        self.values = np.ascontiguousarray(np.asarray(values, dtype=element.numpy).reshape(-1))
        self.values.setflags(write=False)

    def _key(self):
        return (self.element, self.values.tobytes())

    def __len__(self) -> int:
        return len(self.values)

    def __str__(self) -> str:
        if len(self.values) == 0:
            return f"array<{self.element}>"
        return f"array<{self.element}: {', '.join(format_scalars(self.values, self.element))}>"


class DenseElementsAttr(Attribute):
    """`dense<[[1.0, 2.0]]> : tensor<1x2xf32>`: a constant tensor."""

    def __init__(self, values, type: TensorType):
        self.type = type
        arr = np.asarray(values, dtype=type.element.numpy)
        if arr.shape != type.shape:
            arr = arr.reshape(type.shape)
        self.values = np.ascontiguousarray(arr)
        self.values.setflags(write=False)

    def _key(self):
        return (self.type, self.values.tobytes())

    def __str__(self) -> str:
        flat = format_scalars(self.values.reshape(-1), self.type.element)
        return f"dense<{_nest(flat, self.type.shape)}> : {self.type}"


def _nest(flat: list[str], shape: tuple[int, ...]) -> str:
    if not shape:
        return flat[0]
    if len(shape) == 1:
        return "[" + ", ".join(flat) + "]"
    step = len(flat) // shape[0] if shape[0] else 0
    return "[" + ", ".join(_nest(flat[i * step : (i + 1) * step], shape[1:]) for i in range(shape[0])) + "]"


def format_scalars(values: np.ndarray, element: Type) -> list[str]:
    """Print scalars of an IR element type, floats bit-exact."""
    if isinstance(element, FloatType):
        return format_floats(np.asarray(values, element.numpy))
    if isinstance(element, IntegerType) and element.width == 1:
        return ["true" if v else "false" for v in values.tolist()]
    if isinstance(element, (IntegerType, IndexType)):
        return [str(v) for v in values.tolist()]
    raise ValueError(f"cannot print scalars of type {element}")


def is_bare_identifier(s: str) -> bool:
    return bool(s) and (s[0].isalpha() or s[0] == "_") and all(c.isalnum() or c in "_$." for c in s)


_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\t": "\\t"}


def quote(s: str) -> str:
    """A double-quoted string literal; non-printable characters as `\\XX` hex escapes."""
    out = []
    for ch in s:
        if ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif ch.isprintable():
            out.append(ch)
        else:
            out.extend("\\%02X" % b for b in ch.encode("utf-8"))
    return '"' + "".join(out) + '"'


def format_attr_dict(entries: dict, empty: str = "") -> str:
    if not entries:
        return empty
    parts = []
    for k in sorted(entries):
        v = entries[k]
        name = k if is_bare_identifier(k) else quote(k)
        parts.append(name if isinstance(v, UnitAttr) else f"{name} = {v}")
    return "{" + ", ".join(parts) + "}"


def print_attr_dict(p, entries: dict) -> None:
    """`{a = 1 : i64, flag, t = #d.x<...>}` through printer `p`, keys sorted, each value printed
    by its own `print` (so multi-line dialect attributes nest); `{}` when empty."""
    if not entries:
        p.write("{}")
        return
    p.write("{")
    for i, k in enumerate(sorted(entries)):
        if i:
            p.write(", ")
        p.write(k if is_bare_identifier(k) else quote(k))
        v = entries[k]
        if not isinstance(v, UnitAttr):
            p.write(" = ")
            v.print(p)
    p.write("}")


def to_attr(value) -> Attribute:
    """Wrap a plain Python value as an attribute (ints → i64, floats → f64, str, bool, list, dict)."""
    if isinstance(value, Attribute):
        return value
    if isinstance(value, bool):
        return BoolAttr(value)
    if isinstance(value, (int, np.integer)):
        return IntegerAttr(int(value))
    if isinstance(value, (float, np.floating)):
        return FloatAttr(float(value))
    if isinstance(value, str):
        return StringAttr(value)
    if isinstance(value, Type):
        return TypeAttr(value)
    if isinstance(value, (list, tuple)):
        return ArrayAttr([to_attr(v) for v in value])
    if isinstance(value, dict):
        return DictAttr({k: to_attr(v) for k, v in value.items()})
    raise TypeError(f"cannot make an attribute of {type(value).__name__}")


def from_attr(attr: Attribute):
    """The plain Python value of an attribute (inverse of `to_attr` for simple kinds)."""
    if isinstance(attr, (IntegerAttr, FloatAttr, BoolAttr, StringAttr)):
        return attr.value
    if isinstance(attr, TypeAttr):
        return attr.type
    if isinstance(attr, ArrayAttr):
        return [from_attr(a) for a in attr.items]
    if isinstance(attr, DictAttr):
        return {k: from_attr(v) for k, v in attr.entries.items()}
    if isinstance(attr, (DenseArrayAttr, DenseElementsAttr)):
        return attr.values
    if isinstance(attr, UnitAttr):
        return True
    return attr


# ----- dialect attributes: `#dialect.name ...`, each parsing and printing itself ----------------


@dataclass(frozen=True)
class AttrSyntax:
    """Registry entry for a dialect attribute written `#dialect.name...`.

    `parse(parser, start)` is called with the parser just past `#dialect.name` and returns the
    attribute; `start` is the offset of the `#`, for errors about the whole attribute (the
    parser's `error`, `error_at_line`, `expect`, `parse_type`, `take_raw_block`, ... keep every
    error located at `file:line:col`).  Printing is the attribute's own `print(printer)`, which
    must write text that `parse` reads back to an equal attribute."""

    name: str
    cls: type
    parse: Callable


_DIALECT_ATTRS: dict[str, AttrSyntax] = {}


def register_attr(name: str, cls: type, parse: Callable) -> AttrSyntax:
    """Make `#name` (e.g. `#tree.nodes`) parse with `parse(parser, start)` into a `cls`.

    Called by the dialect that defines the attribute, at import (`ir/dialects/__init__.py`
    imports every dialect, so the parser sees all of them)."""
    if "." not in name:
        raise ValueError(f"dialect attribute '{name}' must be named 'dialect.name'")
    old = _DIALECT_ATTRS.get(name)
    if old is not None and (old.cls is not cls or old.parse is not parse):
        raise ValueError(f"attribute '#{name}' registered twice")
    entry = AttrSyntax(name, cls, parse)
    _DIALECT_ATTRS[name] = entry
    return entry


def lookup_attr(name: str) -> AttrSyntax | None:
    """The registry entry of `#name`, or None."""
    return _DIALECT_ATTRS.get(name)


def registered_attrs() -> list[str]:
    """Names of the registered dialect attributes, sorted (without the `#`)."""
    return sorted(_DIALECT_ATTRS)
