"""The pass manager and its instruments.

`PassManager(passes).run(module)` runs each pass with a fresh `PassContext`, verifies the module
after every pass (on by default: a pass that emits invalid IR is the bug, and it is caught at
the pass that made it), and keeps an audit log: one `AuditEntry` per pass saying what changed,
how many tree nodes there were before and after, the pass's statistics and notes, and how long
it took.  Printing IR, timing and statistics reports are instruments around passes; pass bodies
never print.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import IO

from ir.core import Operation
from ir.diagnostics import TimberError, VerifyError
from ir.printer import print_op
from ir.verifier import verify

from .base import Pass, PassContext
from .rewrite import Change


@dataclass
class AuditEntry:
    """What one pass did."""

    pass_text: str  # `name{options}` as it ran
    name: str
    exact: bool
    changes: list[Change]
    summary: str
    stats: dict[str, float]
    notes: list[str]
    seconds: float
    verify_seconds: float
    nodes_before: int
    nodes_after: int
    ops_before: int
    ops_after: int
    class_name: str = ""

    @property
    def changed(self) -> bool:
        return bool(self.changes)

    def render(self) -> str:
        """One line (plus notes) for humans."""
        nodes = f"tree nodes {self.nodes_before} -> {self.nodes_after}"
        if self.nodes_after != self.nodes_before:
            nodes += f" ({self.nodes_after - self.nodes_before:+d})"
        stats = "".join(f"; {k}={_num(v)}" for k, v in sorted(self.stats.items()))
        head = f"{self.pass_text}: {self.summary}; {nodes}; ops {self.ops_before} -> {self.ops_after}; {self.seconds * 1e3:.1f} ms{stats}"
        return "\n".join([head] + [f"  note: {n}" for n in self.notes])

    def to_dict(self) -> dict:
        return {
            "pass": self.pass_text,
            "exact": self.exact,
            "changed": self.changed,
            "summary": self.summary,
            "changes": [{"kind": c.kind, "op": c.op, "detail": c.detail, "nodes_removed": c.nodes_removed} for c in self.changes],
            "stats": dict(self.stats),
            "notes": list(self.notes),
            "seconds": self.seconds,
            "tree_nodes": [self.nodes_before, self.nodes_after],
            "ops": [self.ops_before, self.ops_after],
        }


def _num(v) -> str:
    return str(int(v)) if float(v).is_integer() else f"{v:.6g}"


def module_size(module: Operation) -> int:
    """The "tree nodes" of the audit log: the sum of what every op reports through its optional
    `size_for_statistics()` method (`tree.tree`: node-table rows; `tree.oblivious`: levels plus
    leaves; ops without the method count 0).  A dialect whose ops have a natural size to watch
    across passes defines the method; the manager names no dialect."""
    n = 0
    for op in module.walk():
        size = getattr(op, "size_for_statistics", None)
        if size is not None:
            n += size()
    return n


count_tree_nodes = module_size  # the name tools/bench.py uses


def count_ops(module: Operation) -> int:
    return sum(1 for _ in module.walk())


class Instrument:
    """Hooks around passes.  Override what you need."""

    def before_pass(self, p: Pass, module: Operation) -> None: ...
    def after_pass(self, p: Pass, module: Operation, entry: AuditEntry) -> None: ...
    def after_pipeline(self, module: Operation, entries: list[AuditEntry]) -> None: ...


def dump_header(when: str, p: Pass) -> str:
    """MLIR's dump header; a `//` comment, so a dump parses back as IR."""
    return f"// -----// IR Dump {when} {type(p).__name__} ({p.name}) //----- //"


class PrintIR(Instrument):
    """`--print-ir-before=`, `--print-ir-after=`, `--print-ir-before-all`, `--print-ir-after-all`,
    `--print-ir-after-change`: dumps of the whole module under MLIR's header."""

    def __init__(
        self,
        stream: IO[str] | None = None,
        *,
        before: Sequence[str] = (),
        after: Sequence[str] = (),
        before_all: bool = False,
        after_all: bool = False,
        after_change: bool = False,
        generic: bool = False,
    ):
        self.stream = stream or sys.stderr
        self.before, self.after = set(before), set(after)
        self.before_all, self.after_all, self.after_change = before_all, after_all, after_change
        self.generic = generic

    def _dump(self, header: str, module: Operation) -> None:
        self.stream.write(header + "\n" + print_op(module, generic=self.generic) + "\n")

    def before_pass(self, p, module):
        if self.before_all or p.name in self.before:
            self._dump(dump_header("Before", p), module)

    def after_pass(self, p, module, entry):
        selected = self.after_all or p.name in self.after
        if self.after_change:
            # Alone it means "after every pass that changed the IR"; with a selection, it filters it.
            selected = entry.changed and (selected or not (self.after_all or self.after))
        if selected:
            self._dump(dump_header("After", p), module)


_RULE = "===" + "-" * 73 + "==="


class Timing(Instrument):
    """`--timing`: a wall-time report per pass (and for the verifier), MLIR's layout."""

    def __init__(self, stream: IO[str] | None = None, extra: dict[str, float] | None = None):
        self.stream = stream or sys.stderr
        self.extra = extra if extra is not None else {}  # e.g. parse / output times from the driver

    def report(self, entries: list[AuditEntry]) -> str:
        rows = [(e.pass_text, e.seconds) for e in entries]
        verify_total = sum(e.verify_seconds for e in entries)
        if entries:
            rows.append(("(verifier, after each pass)", verify_total))
        rows = (
            [(k, v) for k, v in self.extra.items() if k.startswith("<")]
            + rows
            + [(k, v) for k, v in self.extra.items() if not k.startswith("<")]
        )
        total = sum(v for _, v in rows)
        out = [_RULE, "                         ... Execution time report ...", _RULE, f"  Total Execution Time: {total:.4f} seconds", ""]
        out.append("  ----Wall Time----  ----Name----")
        for name, v in rows:
            pct = 100.0 * v / total if total > 0 else 0.0
            out.append(f"  {v:8.4f} ({pct:5.1f}%)  {name.strip('<>')}")
        out.append(f"  {total:8.4f} (100.0%)  Total")
        return "\n".join(out) + "\n"

    def after_pipeline(self, module, entries):
        self.stream.write(self.report(entries))


class Statistics(Instrument):
    """`--pass-statistics`: each pass's counters."""

    def __init__(self, stream: IO[str] | None = None):
        self.stream = stream or sys.stderr

    def after_pipeline(self, module, entries):
        out = [_RULE, "                         ... Pass statistics report ...", _RULE]
        for e in entries:
            out.append(e.pass_text)
            for k, v in sorted(e.stats.items()):
                out.append(f"  (S) {_num(v)} {k}")
        self.stream.write("\n".join(out) + "\n")


class PassManager:
    """Runs passes in order over a module, verifying after each, feeding instruments."""

    def __init__(self, passes: Sequence[Pass], *, verify_each: bool = True, instruments: Sequence[Instrument] = ()):
        self.passes = list(passes)
        self.verify_each = verify_each
        self.instruments = list(instruments)
        self.audit: list[AuditEntry] = []

    def run(self, module: Operation) -> list[AuditEntry]:
        entries = []
        analyses: dict = {}  # shared between passes while none changes the IR (PassContext.analysis)
        after = None  # (nodes, ops) after the previous pass: the next one's "before"
        for p in self.passes:
            for ins in self.instruments:
                ins.before_pass(p, module)
            # An instrument may print, never rewrite, so the previous pass's counts still hold.
            nodes_before, ops_before = after if after is not None else (module_size(module), count_ops(module))
            ctx = PassContext(p.name, analyses)
            t0 = time.perf_counter()
            p.apply(module, ctx)
            seconds = time.perf_counter() - t0
            t1 = time.perf_counter()
            if self.verify_each:
                try:
                    verify(module)
                except VerifyError as e:
                    d = e.diagnostic
                    raise TimberError(
                        d.message, d.location, d.source_line, d.notes + [f"the IR is invalid after pass '{p.name}' (a bug in that pass)"]
                    ) from e
            verify_seconds = time.perf_counter() - t1
            entry = AuditEntry(
                pass_text=p.pipeline_text(),
                name=p.name,
                exact=p.exact,
                changes=list(ctx.rewriter.changes),
                summary=ctx.rewriter.summary(),
                stats=dict(ctx.stats),
                notes=list(ctx.notes),
                seconds=seconds,
                verify_seconds=verify_seconds,
                nodes_before=nodes_before,
                nodes_after=module_size(module),
                ops_before=ops_before,
                ops_after=count_ops(module),
                class_name=type(p).__name__,
            )
            after = (entry.nodes_after, entry.ops_after)
            if entry.changed:
                analyses.clear()
            entries.append(entry)
            self.audit.append(entry)
            for ins in self.instruments:
                ins.after_pass(p, module, entry)
        for ins in self.instruments:
            ins.after_pipeline(module, entries)
        return entries


def run_pipeline(
    module: Operation, pipeline: str | Sequence[Pass] | None = None, *, verify_each: bool = True, instruments: Sequence[Instrument] = ()
) -> list[AuditEntry]:
    """Run a pipeline (text, pass list, or None for the default exact pipeline) over `module` in place.

    This is what `timber.compile(..., passes=...)` and `timber compile -p` call."""
    from .pipeline import parse_pipeline
    from .registry import PIPELINES

    if pipeline is None:
        pipeline = PIPELINES["default"]
    passes = parse_pipeline(pipeline) if isinstance(pipeline, str) else list(pipeline)
    return PassManager(passes, verify_each=verify_each, instruments=instruments).run(module)
