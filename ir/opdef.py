"""Declarative op definitions (after xDSL's IRDL): an op class lists its operands, results,
attributes, regions and traits; the generic verifier checks them, and `verify_` adds what
declarations cannot say."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

from .attributes import Attribute
from .core import Operation
from .types import FloatType, IndexType, IntegerType, TensorType, Type


@dataclass(frozen=True)
class Constraint:
    """A predicate on types with the words used in diagnostics."""

    description: str
    check: Callable[[Type], bool]

    def __call__(self, t: Type) -> bool:
        return self.check(t)


def _elem(t: Type) -> Type:
    return t.element if isinstance(t, TensorType) else t


AnyType = Constraint("any type", lambda t: True)
FloatTensor = Constraint(
    "tensor of f32 or f64", lambda t: isinstance(t, TensorType) and isinstance(t.element, FloatType) and t.element.width in (32, 64)
)
Rank1FloatTensor = Constraint(
    "1-D tensor of f32 or f64",
    lambda t: isinstance(t, TensorType) and len(t.shape) == 1 and isinstance(t.element, FloatType) and t.element.width in (32, 64),
)
BoolTensor = Constraint("tensor of i1", lambda t: isinstance(t, TensorType) and _elem(t) == IntegerType(1))
IntTensor = Constraint("tensor of integers", lambda t: isinstance(t, TensorType) and isinstance(t.element, (IntegerType, IndexType)))
NumericTensor = Constraint(
    "tensor of integers or floats", lambda t: isinstance(t, TensorType) and isinstance(t.element, (IntegerType, IndexType, FloatType))
)


@dataclass(frozen=True)
class OperandDef:
    name: str
    constraint: Constraint = AnyType
    variadic: bool = False


@dataclass(frozen=True)
class ResultDef:
    name: str
    constraint: Constraint = AnyType
    variadic: bool = False


@dataclass(frozen=True)
class AttrDef:
    """An attribute the op takes: its name, the attribute class(es) allowed, and whether optional."""

    name: str
    kind: type | tuple[type, ...] = Attribute
    optional: bool = False
    doc: str = ""


@dataclass(frozen=True)
class RegionDef:
    name: str


class Trait:
    """Marker base for op traits."""


class Pure(Trait):
    """No side effects: may be CSE'd, folded or deleted when unused."""


class Terminator(Trait):
    """Must be the last op of its block."""


class IsolatedFromAbove(Trait):
    """Its regions may not use values defined outside the op."""


class SameOperandsAndResultType(Trait):
    """All operands and results have one type."""


class Elementwise(Trait):
    """One operand and one result of the same shape; result element i depends only on operand
    element i (back-ends may compute it one element at a time)."""


class NoTerminator(Trait):
    """Its blocks need no terminator."""


class SymbolTable(Trait):
    """Its ops' `sym_name`s are unique."""


@dataclass(frozen=True)
class HasParent(Trait):
    parent: str


OP_REGISTRY: dict[str, type["OpDef"]] = {}


class OpDef(Operation):
    """An op kind.  Subclass, declare, and decorate with `@register`."""

    operand_defs: ClassVar[tuple[OperandDef, ...]] = ()
    result_defs: ClassVar[tuple[ResultDef, ...]] = ()
    attr_defs: ClassVar[tuple[AttrDef, ...]] = ()
    region_defs: ClassVar[tuple[RegionDef, ...]] = ()
    traits: ClassVar[tuple] = ()

    @classmethod
    def has_trait(cls, trait) -> bool:
        for t in cls.traits:
            if t is trait or (isinstance(trait, type) and (t is trait or isinstance(t, trait))):
                return True
        return False

    def verify_(self) -> None:
        """Op-specific invariants; raise `VerifyError` via `self.error(...)`."""

    def error(self, message: str):
        from .diagnostics import VerifyError

        raise VerifyError(f"'{self.name}' op {message}", self.location)

    # Custom assembly: subclasses override both or neither.
    custom_print: ClassVar[bool] = False

    def print_custom(self, p) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    @classmethod
    def parse_custom(cls, p, result_names, loc):  # pragma: no cover - overridden
        raise NotImplementedError


def register(cls: type[OpDef]) -> type[OpDef]:
    """Register an op class and give it named accessors for its operands, results and regions."""
    if cls.name in OP_REGISTRY and OP_REGISTRY[cls.name] is not cls:
        raise ValueError(f"op {cls.name} registered twice")
    OP_REGISTRY[cls.name] = cls
    variadic = any(d.variadic for d in cls.operand_defs)
    for i, d in enumerate(cls.operand_defs):
        if d.variadic:
            setattr(cls, d.name, property(lambda self, i=i: self.operands[i:]))
        elif not variadic:
            setattr(cls, d.name, property(lambda self, i=i: self.operands[i]))
    for i, d in enumerate(cls.result_defs):
        if d.variadic:
            setattr(cls, d.name, property(lambda self, i=i: self.results[i:]))
        else:
            setattr(cls, d.name, property(lambda self, i=i: self.results[i]))
    for i, d in enumerate(cls.region_defs):
        setattr(cls, d.name, property(lambda self, i=i: self.regions[i]))
    return cls


def lookup_op(name: str) -> type[OpDef] | None:
    return OP_REGISTRY.get(name)
