"""The generic verifier: structure, declared operand/result/attribute/region shapes, traits,
dominance; then each op's own `verify_`."""

from __future__ import annotations

from .core import Operation, Value
from .diagnostics import VerifyError
from .opdef import HasParent, IsolatedFromAbove, NoTerminator, OpDef, SameOperandsAndResultType, Terminator


def verify(op: Operation) -> None:
    """Raise `VerifyError` (naming the op and its location) at the first broken invariant."""
    _verify_op(op, visible=set())


def _err(op: Operation, message: str):
    raise VerifyError(f"'{op.name}' op {message}", op.location)


def _verify_op(op: Operation, visible: set[int]) -> None:
    if not isinstance(op, OpDef):
        _err(op, "is not a registered operation")
    cls = type(op)
    # Operands: count, types, dominance.
    fixed = [d for d in cls.operand_defs if not d.variadic]
    variadic = [d for d in cls.operand_defs if d.variadic]
    n = len(op.operands)
    if (not variadic and n != len(fixed)) or (variadic and n < len(fixed)):
        _err(op, f"expects {len(fixed)}{' or more' if variadic else ''} operands, found {n}")
    for i, v in enumerate(op.operands):
        d = cls.operand_defs[min(i, len(cls.operand_defs) - 1)]
        if not d.constraint(v.type):
            _err(op, f"operand #{i} ('{d.name}') must be {d.constraint.description}, found {v.type}")
        if id(v) not in visible:
            _err(op, f"operand #{i} does not dominate this use (defined later, in another function, or erased)")
    # Results.
    rfixed = [d for d in cls.result_defs if not d.variadic]
    rvariadic = any(d.variadic for d in cls.result_defs)
    if (not rvariadic and len(op.results) != len(rfixed)) or (rvariadic and len(op.results) < len(rfixed)):
        _err(op, f"expects {len(rfixed)}{' or more' if rvariadic else ''} results, found {len(op.results)}")
    for i, r in enumerate(op.results):
        d = cls.result_defs[min(i, len(cls.result_defs) - 1)]
        if not d.constraint(r.type):
            _err(op, f"result #{i} ('{d.name}') must be {d.constraint.description}, found {r.type}")
    # Attributes.
    declared = {d.name: d for d in cls.attr_defs}
    for d in cls.attr_defs:
        a = op.attributes.get(d.name)
        if a is None:
            if not d.optional:
                _err(op, f"requires attribute '{d.name}'")
            continue
        if not isinstance(a, d.kind):
            kinds = d.kind if isinstance(d.kind, tuple) else (d.kind,)
            want = " or ".join(k.__name__ for k in kinds)
            _err(op, f"attribute '{d.name}' must be a {want}, found {type(a).__name__} {a}")
    for k in op.attributes:
        if k not in declared and "." not in k:
            known = ", ".join(sorted(declared)) or "none"
            _err(op, f"has unknown attribute '{k}' (known: {known}; dialect attributes are written 'dialect.name')")
    # Regions.
    if len(op.regions) != len(cls.region_defs):
        _err(op, f"expects {len(cls.region_defs)} regions, found {len(op.regions)}")
    # Traits.
    if cls.has_trait(SameOperandsAndResultType):
        types = {str(v.type) for v in op.operands} | {str(r.type) for r in op.results}
        if len(types) > 1:
            _err(op, f"requires the same type for all operands and results, found {', '.join(sorted(types))}")
    for t in cls.traits:
        if isinstance(t, HasParent):
            parent = op.parent_op
            if parent is None or parent.name != t.parent:
                found = parent.name if parent is not None else "no parent"
                _err(op, f"expects parent op '{t.parent}', found {found}")
    if cls.has_trait(Terminator):
        if op.parent is None or op.parent.ops[-1] is not op:
            _err(op, "must be the last operation in its block")
    # Nested regions, with dominance: values visible in a block are those defined before.
    inner_visible = set() if cls.has_trait(IsolatedFromAbove) else visible
    for region in op.regions:
        for block in region.blocks:
            if block.parent is not region:
                _err(op, "has a block whose parent link is broken")
            seen = set(inner_visible)
            seen.update(id(a) for a in block.args)
            for child in block.ops:
                if child.parent is not block:
                    _err(child, "has a broken parent link")
                _verify_op(child, seen)
                seen.update(id(r) for r in child.results)
            if not cls.has_trait(NoTerminator) and block.ops:
                last = block.ops[-1]
                if not (isinstance(last, OpDef) and last.has_trait(Terminator)):
                    _err(op, f"block must end with a terminator, found '{last.name}'")
    # Use lists must agree with operand lists.
    for i, v in enumerate(op.operands):
        if (op, i) not in v.uses:
            _err(op, f"operand #{i} use list is out of date")
    op.verify_()


def defining_ops_in_order(values: list[Value]) -> list:
    return [v.owner for v in values]
