"""What every back-end's op dispatch shares: its lowering table, the expansion fallback, and the
words for an op it cannot lower.

A back-end keeps one dict `LOWERINGS: {op class: lowering}`.  An op whose class is not in it but
has an `arith` expansion (`ir.dialects.mathimpl`: math functions, sigmoid, softmax) is lowered
by lowering the ops of its expansion with the same table (`math.exp` nested in a sigmoid
expands again).  Anything else is refused with a message naming the op and the target.

`Elementwise(expr)` marks a lowering that computes each element of the result from the same
element of every operand, as one expression of the target language (`expr(ctx, op, operands)`).
An op with the `Elementwise` trait (`ir.opdef`) expands into such ops and splat constants only,
so a back-end computes its expansion one element at a time, as a scalar routine.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ir.core import Operation
from ir.dialects import arith, mathimpl


class Elementwise:
    """A lowering entry for an op computed element by element: `expr(ctx, op, xs)` is the
    target-language expression of one result element, given the same element of each operand."""

    __slots__ = ("expr",)

    def __init__(self, expr: Callable):
        self.expr = expr

    def __repr__(self) -> str:
        return f"Elementwise({getattr(self.expr, '__name__', self.expr)!r})"


def lowering_of(table: dict, op_class) -> str | None:
    """`"table"` when `table` has an entry for the class, "expansion" when the op has an `arith`
    expansion (`mathimpl.EXPANSIONS`), else None."""
    if op_class in table:
        return "table"
    if getattr(op_class, "name", None) in mathimpl.EXPANSIONS:
        return "expansion"
    return None


def cannot_lower(target: str, op: Operation) -> str:
    return f"the {target} back-end cannot lower '{op.name}': not supported (no lowering and no arith expansion)"


def unsupported(table: dict, target: str, op: Operation, expand: bool = True) -> str | None:
    """None when the back-end can lower `op`; else why not (naming the op and the target).
    With `expand`, the ops of an expansion are checked too, recursively."""
    kind = lowering_of(table, type(op))
    if kind is None:
        return cannot_lower(target, op)
    if kind == "expansion" and expand:
        if not mathimpl.expandable(op):
            return cannot_lower(target, op)
        _, ops, _ = mathimpl.expansion(op)
        for sub in ops:
            msg = unsupported(table, target, sub, True)
            if msg:
                return f"{msg}, in the expansion of '{op.name}'"
    return None


def splat(op: Operation):
    """The one value of an `arith.constant` whose elements are all the same bits, else None."""
    if not isinstance(op, arith.ConstantOp):
        return None
    v = np.ascontiguousarray(np.asarray(op.value)).reshape(-1)
    if v.size == 0:
        return None
    u = v.view(f"u{v.dtype.itemsize}")
    return v[0] if bool(np.all(u == u[0])) else None


def live_ops(ops: list, out) -> list:
    """The ops of `ops` that `out` depends on, in order (expansions compute nothing else that
    matters; dropping the rest keeps generated code free of unused values)."""
    need = {id(out)}
    keep = []
    for op in reversed(ops):
        if any(id(r) in need for r in op.results):
            keep.append(op)
            need.update(id(v) for v in op.operands)
    return keep[::-1]


def helper_name(op: Operation, extra: str = "") -> str:
    """A C/WAT identifier for a routine computing `op`'s expansion: `math_exp_fmath_f64`."""
    parts = ["math", op.name.split(".")[-1]]
    for k in sorted(op.attributes):
        a = op.attributes[k]
        v = getattr(a, "value", None)
        if v is None:
            v = getattr(a, "type", None)
        parts.append(f"{k}_{v}" if k != "impl" else str(v))
    t = op.operands[0].type
    parts.append(str(getattr(t, "element", t)))
    if extra:
        parts.append(extra)
    return "_".join("".join(c if c.isalnum() else "_" for c in p) for p in parts)
