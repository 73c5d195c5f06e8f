"""SSA values, operations, blocks and regions.

An `Operation` subclass per op kind declares its operands, results, attributes, regions and
traits (see `ir.opdef`); this module holds the generic structure they share.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import ClassVar

from .attributes import Attribute, to_attr
from .types import Type


class Value:
    """An SSA value: defined once (op result or block argument), typed, with a printing hint."""

    __slots__ = ("type", "name_hint", "uses")

    def __init__(self, type: Type, name_hint: str | None = None):
        self.type = type
        self.name_hint = name_hint
        self.uses: list[tuple[Operation, int]] = []

    def replace_all_uses_with(self, new: "Value") -> None:
        for op, i in list(self.uses):
            op.set_operand(i, new)

    @property
    def owner(self):  # pragma: no cover - overridden
        raise NotImplementedError


class OpResult(Value):
    __slots__ = ("op", "index")

    def __init__(self, type: Type, op: "Operation", index: int, name_hint: str | None = None):
        super().__init__(type, name_hint)
        self.op = op
        self.index = index

    @property
    def owner(self) -> "Operation":
        return self.op

    def __repr__(self) -> str:
        return f"<result {self.index} of {self.op.name}: {self.type}>"


class BlockArgument(Value):
    __slots__ = ("block", "index")

    def __init__(self, type: Type, block: "Block", index: int, name_hint: str | None = None):
        super().__init__(type, name_hint)
        self.block = block
        self.index = index

    @property
    def owner(self) -> "Block":
        return self.block

    def __repr__(self) -> str:
        return f"<block argument {self.index}: {self.type}>"


class Block:
    """A list of ops with typed arguments, inside a region."""

    def __init__(self, arg_types=(), arg_names=()):
        names = list(arg_names) + [None] * (len(arg_types) - len(arg_names))
        self.args = [BlockArgument(t, self, i, n) for i, (t, n) in enumerate(zip(arg_types, names))]
        self.ops: list[Operation] = []
        self.parent: Region | None = None

    def add_op(self, op: "Operation") -> "Operation":
        op.parent = self
        self.ops.append(op)
        return op

    def insert_op(self, index: int, op: "Operation") -> "Operation":
        op.parent = self
        self.ops.insert(index, op)
        return op

    def remove_op(self, op: "Operation") -> None:
        self.ops.remove(op)
        op.parent = None

    def __iter__(self) -> Iterator["Operation"]:
        return iter(self.ops)


class Region:
    """An ordered list of blocks owned by an op."""

    def __init__(self, blocks=()):
        self.blocks: list[Block] = []
        self.parent: Operation | None = None
        for b in blocks:
            self.add_block(b)

    def add_block(self, block: Block) -> Block:
        block.parent = self
        self.blocks.append(block)
        return block

    @property
    def block(self) -> Block:
        """The single block of a single-block region."""
        return self.blocks[0]


class Operation:
    """Base of every op.  Subclasses set `name` and the declarations read by `ir.opdef`."""

    name: ClassVar[str] = "builtin.unregistered"

    def __init__(self, operands=(), result_types=(), attributes=None, regions=(), result_names=(), location=None):
        self.operands: list[Value] = []
        for v in operands:
            self._add_use(v, len(self.operands))
            self.operands.append(v)
        names = list(result_names) + [None] * (len(result_types) - len(result_names))
        self.results = [OpResult(t, self, i, n) for i, (t, n) in enumerate(zip(result_types, names))]
        self.attributes: dict[str, Attribute] = {k: to_attr(v) for k, v in (attributes or {}).items()}
        self.regions: list[Region] = []
        for r in regions:
            r.parent = self
            self.regions.append(r)
        self.parent: Block | None = None
        self.location = location

    # ----- operands -------------------------------------------------------------------
    def _add_use(self, v: Value, i: int) -> None:
        if not isinstance(v, Value):
            raise TypeError(f"operand {i} of {self.name} is a {type(v).__name__}, not an SSA value")
        v.uses.append((self, i))

    def set_operand(self, i: int, v: Value) -> None:
        old = self.operands[i]
        old.uses.remove((self, i))
        self.operands[i] = v
        self._add_use(v, i)

    def drop_uses(self) -> None:
        """Detach this op from the values it uses (before erasing it)."""
        for i, v in enumerate(self.operands):
            v.uses.remove((self, i))
        for r in self.regions:
            for b in r.blocks:
                for op in b.ops:
                    op.drop_uses()

    def erase(self) -> None:
        if any(r.uses for r in self.results):
            raise ValueError(f"cannot erase {self.name}: its results still have uses")
        self.drop_uses()
        if self.parent is not None:
            self.parent.remove_op(self)

    # ----- results and attributes -------------------------------------------------------
    @property
    def result(self) -> OpResult:
        if len(self.results) != 1:
            raise ValueError(f"{self.name} has {len(self.results)} results, not one")
        return self.results[0]

    def attr(self, key: str, default=None):
        return self.attributes.get(key, default)

    # ----- structure ------------------------------------------------------------------
    @property
    def parent_op(self) -> "Operation | None":
        if self.parent is None or self.parent.parent is None:
            return None
        return self.parent.parent.parent

    def walk(self) -> Iterator["Operation"]:
        """This op and every op nested in it, in pre-order."""
        yield self
        for r in self.regions:
            for b in r.blocks:
                for op in b.ops:
                    yield from op.walk()

    @property
    def body(self) -> Block:
        """The single block of the op's first region."""
        return self.regions[0].blocks[0]

    def __repr__(self) -> str:
        return f"<{self.name} op>"
