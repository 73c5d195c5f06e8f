"""Locations and MLIR-style diagnostics: `file:line:col: error: message`, the source line and
a caret, then `note:` lines."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Location:
    """A point in a text file (1-based line and column)."""

    file: str
    line: int
    col: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"


@dataclass(frozen=True)
class NameLoc:
    """A place in a model file that is not text with lines, e.g. `model.json: trees[12].split_conditions[7]`."""

    file: str
    path: str

    def __str__(self) -> str:
        return f"{self.file}: {self.path}" if self.path else self.file


@dataclass
class Diagnostic:
    severity: str
    message: str
    location: Location | NameLoc | None = None
    source_line: str | None = None
    notes: list[str] = field(default_factory=list)

    def render(self) -> str:
        head = f"{self.location}: " if self.location is not None else ""
        out = [f"{head}{self.severity}: {self.message}"]
        if self.source_line is not None and isinstance(self.location, Location):
            out.append(self.source_line.rstrip("\n"))
            out.append(" " * (self.location.col - 1) + "^")
        out.extend(f"note: {n}" for n in self.notes)
        return "\n".join(out)


class TimberError(Exception):
    """A user-facing error: the CLI prints `render()` and exits 1 with no traceback."""

    def __init__(self, message: str, location=None, source_line=None, notes=()):
        self.diagnostic = Diagnostic("error", message, location, source_line, list(notes))
        super().__init__(self.diagnostic.render())

    def render(self) -> str:
        return self.diagnostic.render()


class ParseError(TimberError):
    """Bad IR text (or bad pipeline text)."""


class VerifyError(TimberError):
    """IR that breaks an invariant."""


def source_line_of(text: str, line: int) -> str | None:
    lines = text.splitlines()
    return lines[line - 1] if 0 < line <= len(lines) else None
