"""The one rewrite toolkit every pass shares: a rewriter that records changes, guard-first
patterns, and a deterministic worklist driver that runs patterns to a fixpoint under a bound.

Two kinds of things get rewritten:

* ops in a block (dataflow rewrites: folding, CSE, fusing a scaler into an ensemble) —
  `OpPattern` + `Rewriter` + `apply_patterns`;
* nodes of one tree, on its networkx view — `TreePattern` + `TreeRewriter` +
  `apply_tree_patterns`, in `passes/tree_rewrite.py` (this file names no dialect).

All mutation goes through a rewriter, so the audit log, `--print-ir-after-change` and the worklist
(and any `OpGraph` view listening) all see the same changes.  A pattern's `match_and_rewrite`
returns False without touching anything when it does not match.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import ClassVar

from ir.attributes import Attribute
from ir.core import Operation, Value
from ir.diagnostics import TimberError


@dataclass
class Change:
    """One recorded mutation: what kind, on which op, in words, and tree nodes removed (if any)."""

    kind: str  # insert | erase | replace | modify | tree
    op: str
    detail: str
    nodes_removed: int = 0


def _derived_attributes() -> dict[str, tuple[str, ...]]:
    """Per op name, the attributes passes declare they derive (`Pass.derives`, via the registry)."""
    from .registry import derived_attributes

    return derived_attributes()


class RewriteListener:
    """Receives every mutation a `Rewriter` makes (the worklist driver and graph views listen)."""

    def op_inserted(self, op: Operation) -> None: ...
    def op_erased(self, op: Operation) -> None: ...
    def op_modified(self, op: Operation) -> None: ...
    def uses_replaced(self, old: Value, new: Value) -> None: ...


class Rewriter:
    """Mutates the IR and records what changed."""

    def __init__(self):
        self.changes: list[Change] = []
        self.listeners: list[RewriteListener] = []

    def _record(self, kind: str, op: Operation, detail: str = "", nodes_removed: int = 0) -> None:
        self.changes.append(Change(kind, op.name, detail, nodes_removed))

    # ----- ops --------------------------------------------------------------------------
    def insert_before(self, anchor: Operation, op: Operation) -> Operation:
        block = anchor.parent
        block.insert_op(block.ops.index(anchor), op)
        self._record("insert", op)
        for listener in self.listeners:
            listener.op_inserted(op)
        return op

    def erase_op(self, op: Operation, detail: str = "") -> None:
        """Erase an op whose results are unused."""
        self._invalidate(op, ())
        for listener in self.listeners:
            listener.op_erased(op)
        producers = [v for v in op.operands]
        op.erase()
        self._record("erase", op, detail)
        for listener in self.listeners:
            for v in producers:
                if isinstance(v.owner, Operation):
                    listener.op_modified(v.owner)

    def replace_all_uses(self, old: Value, new: Value) -> None:
        if old is new or not old.uses:
            return
        old.replace_all_uses_with(new)
        for listener in self.listeners:
            listener.uses_replaced(old, new)

    def replace_op(self, op: Operation, new_values: Sequence[Value], detail: str = "") -> None:
        """Replace every use of `op`'s results by `new_values`, then erase `op`."""
        if len(new_values) != len(op.results):
            raise ValueError(f"replacing {op.name}: {len(op.results)} results, {len(new_values)} new values")
        for r, v in zip(op.results, new_values):
            if r.type != v.type:
                raise ValueError(f"replacing {op.name}: type {r.type} by {v.type}")
            self.replace_all_uses(r, v)
        self._record("replace", op, detail)
        for listener in self.listeners:
            listener.op_erased(op)
        producers = list(op.operands)
        op.erase()
        for listener in self.listeners:
            for v in producers:
                if isinstance(v.owner, Operation):
                    listener.op_modified(v.owner)

    def set_operand(self, op: Operation, i: int, v: Value, detail: str = "") -> None:
        old = op.operands[i]
        if old is v:
            return
        op.set_operand(i, v)
        self._record("modify", op, detail or f"operand #{i}")
        for listener in self.listeners:
            listener.op_modified(op)
            if isinstance(old.owner, Operation):
                listener.op_modified(old.owner)

    def set_attr(self, op: Operation, key: str, value: Attribute, detail: str = "") -> None:
        """Set an attribute; setting an equal value is not a change."""
        if op.attributes.get(key) == value:
            return
        op.attributes[key] = value
        self._record("modify", op, detail or f"set {key}")
        for listener in self.listeners:
            listener.op_modified(op)

    def remove_attr(self, op: Operation, key: str, detail: str = "") -> None:
        if key not in op.attributes:
            return
        del op.attributes[key]
        self._record("modify", op, detail or f"removed {key}")
        for listener in self.listeners:
            listener.op_modified(op)

    def set_table(self, op: Operation, table, detail: str, nodes_removed: int = 0, preserves: tuple[str, ...] = ()) -> None:
        """Replace an op's node table (a tree's); derived attributes not in `preserves` are dropped."""
        op.table = table
        dropped = self._invalidate(op, preserves)
        self._record("tree", op, detail + (f" (dropped stale {', '.join(dropped)})" if dropped else ""), nodes_removed)
        for listener in self.listeners:
            listener.op_modified(op)

    def _invalidate(self, op: Operation, preserves: tuple[str, ...]) -> list[str]:
        """`op` (or something inside it) changed: drop the derived attributes (`Pass.derives`)
        of `op` and of every op enclosing it, except `preserves`; returns the dropped names."""
        derived = _derived_attributes()
        dropped = []
        o = op
        while o is not None:
            for k in derived.get(o.name, ()):
                if k in o.attributes and k not in preserves:
                    del o.attributes[k]
                    dropped.append(k)
            o = o.parent_op
        return dropped

    # ----- summaries ----------------------------------------------------------------------
    def summary(self) -> str:
        """`3 tree, 1 erase` — the kinds of change, for the audit log."""
        counts: dict[str, int] = {}
        for c in self.changes:
            counts[c.kind] = counts.get(c.kind, 0) + 1
        return ", ".join(f"{n} {k}" for k, n in counts.items()) or "no change"


# ----- op patterns and the worklist driver ---------------------------------------------------


class OpPattern:
    """A guard-first rewrite of one op.  `root` restricts it to ops of that name (None: any op)."""

    root: ClassVar[str | None] = None

    def match_and_rewrite(self, op: Operation, rewriter: Rewriter) -> bool:  # pragma: no cover - abstract
        raise NotImplementedError

    @property
    def label(self) -> str:
        return type(self).__name__


class _Worklist(RewriteListener):
    """Deterministic FIFO of ops: initial ops in pre-order, then ops touched by rewrites in the
    order they were touched.  Erased ops leave it."""

    def __init__(self, ops: Iterable[Operation]):
        self.queue: deque[Operation] = deque()
        self.members: set[int] = set()
        self.erased: set[int] = set()
        for op in ops:
            self.push(op)

    def push(self, op: Operation) -> None:
        if id(op) not in self.members and id(op) not in self.erased:
            self.members.add(id(op))
            self.queue.append(op)

    def pop(self) -> Operation | None:
        while self.queue:
            op = self.queue.popleft()
            self.members.discard(id(op))
            if id(op) not in self.erased:
                return op
        return None

    def op_inserted(self, op):
        self.erased.discard(id(op))
        self.push(op)

    def op_erased(self, op):
        for o in op.walk():
            self.erased.add(id(o))

    def op_modified(self, op):
        self.push(op)
        for r in op.results:
            for user, _ in r.uses:
                self.push(user)

    def uses_replaced(self, old, new):
        for user, _ in new.uses:
            self.push(user)


def apply_patterns(
    ops: Iterable[Operation], patterns: Sequence[OpPattern], rewriter: Rewriter, *, max_rewrites: int | None = None, what: str = "patterns"
) -> int:
    """Apply `patterns` to `ops` (and whatever the rewrites touch) until none matches.

    Patterns are tried in the order given; the first that matches wins and its op's neighbours
    go back on the worklist.  More than `max_rewrites` rewrites (default: 10 per op + 100) means
    the patterns oscillate: that is a bug, reported as a diagnostic rather than a hang."""
    ops = list(ops)
    bound = max_rewrites if max_rewrites is not None else 10 * len(ops) + 100
    by_root: dict[str | None, list[OpPattern]] = {}
    for p in patterns:
        by_root.setdefault(p.root, []).append(p)
    work = _Worklist(ops)
    rewriter.listeners.append(work)
    count = 0
    try:
        while (op := work.pop()) is not None:
            for p in by_root.get(op.name, []) + by_root.get(None, []):
                if p.match_and_rewrite(op, rewriter):
                    count += 1
                    if count > bound:
                        raise TimberError(f"{what} did not converge after {bound} rewrites (last: {p.label} on '{op.name}')")
                    break
    finally:
        rewriter.listeners.remove(work)
    return count
