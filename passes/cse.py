"""`cse`: common-subexpression elimination within each function body.

Two pure ops are the same expression when they have the same name, operands, attributes
(compared by value, tree tables bit for bit), result types and — for ops with regions such as
`tree.ensemble` — the same nested ops.  The later one is replaced by the earlier one, which
dominates it (same block, earlier)."""

from __future__ import annotations

from dataclasses import dataclass

from ir.dialects import func
from ir.opdef import OpDef, Pure

from .base import Pass, PassContext
from .graph import OpGraph
from .registry import register_pass


def _region_key(op):
    """A hashable description of an op's regions, or None when they are too rich to compare."""
    out = []
    for r in op.regions:
        for b in r.blocks:
            if b.args:
                return None
            for inner in b.ops:
                if inner.operands or inner.regions or inner.results:
                    return None
                out.append((inner.name, tuple(sorted(inner.attributes.items()))))
        out.append("|")
    return tuple(out)


def _key(op, regions_key):
    """(name, operands, attributes, result types, regions_key(op)) of a pure op, or None."""
    if not isinstance(op, OpDef) or not op.has_trait(Pure):
        return None
    regions = regions_key(op)
    if regions is None:
        return None
    return (
        op.name,
        tuple(id(v) for v in op.operands),
        tuple(sorted(op.attributes.items())),
        tuple(str(r.type) for r in op.results),
        regions,
    )


def expression_key(op):
    """Key under which equivalent pure ops collide, or None if the op may not be merged."""
    return _key(op, _region_key)


def _outline_key(op):
    """What `expression_key` compares, minus the nested ops' attributes (tree tables), or None
    for ops that are never merged.  Equal expression keys have equal outline keys, so ops whose
    outline keys all differ have nothing to merge, without hashing their tree tables."""
    return _key(op, lambda o: tuple(tuple(inner.name for b in r.blocks for inner in b.ops) for r in o.regions))


def may_merge(ops) -> bool:
    """False when no two of `ops` can be the same expression (their outline keys all differ):
    then no merge happens, since keys change only after a merge."""
    seen = set()
    for op in ops:
        key = _outline_key(op)
        if key is None:
            continue
        if key in seen:
            return True
        seen.add(key)
    return False


@register_pass
@dataclass
class CommonSubexpressionElimination(Pass):
    """Merge identical pure ops."""

    name = "cse"
    summary = "merge identical side-effect-free ops (same operands, attributes and nested trees)"

    def apply(self, module, ctx: PassContext) -> None:
        for f in [o for o in module.walk() if isinstance(o, func.FuncOp)]:
            if not may_merge(f.body.ops):
                continue  # nothing to merge: no op graph to build
            view = OpGraph(f.body)
            ctx.rewriter.listeners.append(view)
            try:
                seen = {}
                # The op graph's deterministic topological order: producers are keyed before users,
                # so merging a producer makes its users' keys collide in the same sweep.
                for op in view.ops_in_order():
                    if op.parent is None:
                        continue
                    key = expression_key(op)
                    if key is None:
                        continue
                    first = seen.get(key)
                    if first is None:
                        seen[key] = op
                        continue
                    ctx.rewriter.replace_op(op, list(first.results), "same as an earlier op")
                    ctx.stat("ops-merged")
            finally:
                ctx.rewriter.listeners.remove(view)
