"""Every registered op has interpreter semantics and a lowering in every back-end (an entry in
its table, or an `arith` expansion whose ops all have one), or an explicit, tested refusal.

Adding an op without its semantics or a lowering fails here, naming the op and the back-end."""

from __future__ import annotations

import pytest

import ir.dialects  # noqa: F401  (registers every op)
from backends.c99 import emit as c99
from backends.llvm import lower as llvm
from backends.wat import emit as wat
from ir.core import Block
from ir.dialects import mathimpl
from ir.interpreter import IMPLEMENTATIONS
from ir.opdef import OP_REGISTRY, HasParent, Terminator
from ir.types import FloatType, TensorType

BACKENDS = {"llvm": llvm.lowering_of, "c99": c99.lowering_of, "wat": wat.lowering_of}

# Ops a back-end refuses on purpose: (back-end, op name) -> the words of its error.  Empty today.
NOT_SUPPORTED: dict[tuple[str, str], str] = {}


def structural(cls) -> bool:
    """Ops that compute no value — containers (module, function), terminators (return) and ops
    that live only inside another op (a tree inside its ensemble): a back-end's driver or the
    parent op's lowering handles them."""
    if cls.result_defs:
        return False
    assert cls.region_defs or cls.has_trait(Terminator) or any(isinstance(t, HasParent) for t in cls.traits), cls.name
    return True


COMPUTING = sorted(name for name, cls in OP_REGISTRY.items() if not structural(cls))


def test_the_walk_sees_every_dialect():
    dialects = {name.split(".")[0] for name in COMPUTING}
    assert {"arith", "math", "linear", "tree", "func"} <= dialects


@pytest.mark.parametrize("name", COMPUTING)
def test_op_has_interpreter_semantics(name):
    assert OP_REGISTRY[name] in IMPLEMENTATIONS, f"'{name}' has no @interprets implementation"


# A robot with every kind of kin op: revolute (z and a skew axis), prismatic, fixed, a mimic.
_URDF = """<robot name="r">
<link name="a"/><link name="b"/><link name="c"/><link name="d"/><link name="e"/>
<joint name="j1" type="revolute"><parent link="a"/><child link="b"/><axis xyz="0 0 1"/><origin xyz="0 0 0.1" rpy="0 0.2 0"/></joint>
<joint name="j2" type="prismatic"><parent link="b"/><child link="c"/><axis xyz="1 1 0"/></joint>
<joint name="j3" type="fixed"><parent link="c"/><child link="d"/><origin xyz="0 0 0.1" rpy="0.1 0 0"/></joint>
<joint name="j4" type="revolute"><parent link="d"/><child link="e"/><axis xyz="0.3 0 1"/><mimic joint="j1" multiplier="2"/></joint>
</robot>"""


def _module_samples(tmp_dir) -> dict:
    """Ops as front-ends write them (with their real operand types and attributes), by name."""
    from timber.frontends import urdf

    path = tmp_dir / "r.urdf"
    path.write_text(_URDF)
    return {op.name: op for op in urdf.load(str(path)).walk()}


_SAMPLES: dict = {}


def _sample(cls, tmp_path_factory=None):
    """An instance of an expandable op: one a front-end writes when there is one (kin), else the
    op on tensor<2xf64> (its attributes at their defaults)."""
    if cls.name.startswith("kin."):
        if not _SAMPLES:
            _SAMPLES.update(_module_samples(tmp_path_factory.mktemp("urdf")))
        return _SAMPLES[cls.name]
    t = TensorType((2,), FloatType(64))
    return cls(operands=[Block([t]).args[0]], result_types=[t])


def test_kin_samples_cover_the_dialect(tmp_path_factory):
    _sample(OP_REGISTRY["kin.pose"], tmp_path_factory)
    assert {n for n in COMPUTING if n.startswith("kin.")} <= set(_SAMPLES)


def _expansion_ops(op) -> list:
    """Every op an expansion lowers to, nested expansions (math.exp in a sigmoid) included."""
    _, ops, _ = mathimpl.expansion(op)
    out = []
    for o in ops:
        out.append(o)
        if mathimpl.expandable(o):
            out.extend(_expansion_ops(o))
    return out


@pytest.mark.parametrize("backend", sorted(BACKENDS))
@pytest.mark.parametrize("name", COMPUTING)
def test_op_has_a_lowering_in_every_backend(name, backend, tmp_path_factory):
    cls = OP_REGISTRY[name]
    kind = BACKENDS[backend](cls)
    if (backend, name) in NOT_SUPPORTED:
        assert kind is None
        return
    assert kind in ("table", "expansion"), f"the {backend} back-end has no lowering for '{name}'"
    if kind == "expansion":
        for o in _expansion_ops(_sample(cls, tmp_path_factory)):
            assert BACKENDS[backend](type(o)) is not None, f"'{name}' expands into '{o.name}', which {backend} cannot lower"
