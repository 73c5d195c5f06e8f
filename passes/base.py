"""The pass base class, its declared options, and the context a pass runs in.

A pass is a small dataclass with a kebab-case `name`, options as dataclass fields (declared with
`option(...)`, so the pipeline parser, `--list-passes` and the docs read one declaration) and one
`apply(module, ctx)`.  A pass never prints: it mutates the IR through `ctx.rewriter` (which records
every change for the audit log and `--print-ir-after-change`), counts what it did with
`ctx.stat(...)` and explains what the numbers mean with `ctx.note(...)`.
"""

from __future__ import annotations

import dataclasses
import typing
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from ir.core import Operation

from .rewrite import Rewriter

_NO_DEFAULT = dataclasses.MISSING


def option(doc: str, default: Any = _NO_DEFAULT, *, choices: tuple[str, ...] | None = None):
    """Declare a pass option: a dataclass field with its help text.  No default = required."""
    meta = {"doc": doc, "choices": choices}
    if default is _NO_DEFAULT:
        return field(metadata=meta)
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class OptionSpec:
    """One declared option, as the pipeline parser and `--list-passes` see it."""

    name: str  # as written in pipeline text (kebab-case)
    attr: str  # the dataclass field
    type: type  # float, int, bool or str
    doc: str
    required: bool
    default: Any
    choices: tuple[str, ...] | None


class PassContext:
    """What a running pass may touch: the rewriter, its statistics and its audit notes, and the
    analyses it shares with the passes around it (`analysis`)."""

    def __init__(self, pass_name: str, analyses: dict | None = None):
        self.pass_name = pass_name
        self.rewriter = Rewriter()
        self.stats: Counter[str] = Counter()
        self.notes: list[str] = []
        # Shared by the pass manager between passes and dropped when a pass changes the IR.
        self._analyses: dict = {} if analyses is None else analyses

    def analysis(self, key, build: Callable[[], Any]) -> Any:
        """The analysis result under `key` (e.g. `("forest", ensemble op)`): `build()` once, then
        the same object for later passes as long as the IR does not change (the pass manager
        drops every result after a pass that changed something).  Once this pass has changed
        the IR itself, results are built afresh and not kept.  Results are read-only."""
        if self.changed:
            return build()
        if key not in self._analyses:
            self._analyses[key] = build()
        return self._analyses[key]

    def stat(self, key: str, n: int | float = 1) -> None:
        """Add `n` to the statistic `key` (e.g. `nodes-removed`)."""
        self.stats[key] += n

    def note(self, message: str) -> None:
        """A sentence for the audit log (e.g. the maximum output error of a lossy pass)."""
        self.notes.append(message)

    @property
    def changed(self) -> bool:
        return bool(self.rewriter.changes)


@dataclass
class Pass:
    """Base of every pass.  Subclasses are dataclasses, set `name` and `summary`, and implement `apply`."""

    name: ClassVar[str] = ""
    summary: ClassVar[str] = ""
    # False for passes that may change predictions (they run only when asked for, with a tolerance).
    exact: ClassVar[bool] = True
    # The attributes this pass derives from the IR (analysis results), by the name of the op that
    # carries them, e.g. {"tree.ensemble": ("tree.depth_profile", ...), "tree.tree": ("tree.shape_group",)}.
    # A derived attribute describes its op and everything nested in it, so when the rewriter
    # changes or erases an op it drops the derived attributes of that op and of every op
    # enclosing it, unless the rewriting pass says it preserves them (`set_table(..., preserves=)`).
    # The pass registry collects these (`passes.registry.derived_attributes()`).
    derives: ClassVar[Mapping[str, tuple[str, ...]]] = {}

    def apply(self, module: Operation, ctx: PassContext) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def check_options(self) -> tuple[str, str] | None:
        """(option attribute, problem) when option values are out of range; None when fine."""
        return None

    @classmethod
    def option_specs(cls) -> list[OptionSpec]:
        """The declared options, in declaration order."""
        hints = typing.get_type_hints(cls)
        specs = []
        for f in dataclasses.fields(cls):
            if not f.init:
                continue
            t = _base_type(hints.get(f.name, str))
            required = f.default is _NO_DEFAULT and f.default_factory is _NO_DEFAULT
            default = None if required else (f.default if f.default is not _NO_DEFAULT else f.default_factory())
            specs.append(
                OptionSpec(f.name.replace("_", "-"), f.name, t, f.metadata.get("doc", ""), required, default, f.metadata.get("choices"))
            )
        return specs

    def pipeline_text(self) -> str:
        """`name{opt=value,...}` listing the options that differ from their defaults."""
        parts = []
        for s in self.option_specs():
            v = getattr(self, s.attr)
            if s.required or v != s.default:
                parts.append(f"{s.name}={format_option_value(v)}")
        return self.name + ("{" + ",".join(parts) + "}" if parts else "")


def _base_type(t) -> type:
    """`float | None` → float; `str` → str."""
    if t in (float, int, bool, str):
        return t
    for a in typing.get_args(t):
        if a in (float, int, bool, str):
            return a
    return str


def format_option_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return repr(v)
    if hasattr(v, "shape") and hasattr(v, "dtype"):
        return '"<array ' + "x".join(map(str, v.shape)) + '>"'  # given from Python, not from text
    s = str(v)
    if any(c in s for c in ',{}" ') or not s:
        return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return s
