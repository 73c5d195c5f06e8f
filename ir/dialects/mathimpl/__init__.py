"""The algorithms of the `math` dialect, written once as `arith` IR.

`expand(op, *xs)` returns the ops that compute `op` on the values `xs` (one per operand) and the
value they produce.  Other dialects register expansions of their own ops here too (`expands`,
e.g. the `kin` dialect's joint transforms): every back-end then lowers them with no code of its own.
Transcendental functions expand into `arith` only; `sigmoid` and `softmax` decompose into their
formulas, which use `math.exp` (expanded in turn unless the target keeps it, see `math.LIBM`).
The `math-expand` pass applies this; the interpreter runs the same ops; back-ends see only `arith`.
"""

from __future__ import annotations

from collections.abc import Callable

from ...core import Block, Operation, Value
from ...types import TensorType
from . import erfinv as _erfinv
from . import exp as _exp
from . import log as _log
from . import tanh as _tanh
from . import trig as _trig
from .dsl import E, Emitter, where

# op name -> fn(op, *operands: E) -> E
EXPANSIONS: dict[str, Callable[..., E]] = {}


def expands(name: str):
    def deco(fn):
        EXPANSIONS[name] = fn
        return fn

    return deco


def expand(op: Operation, *xs: Value) -> tuple[list[Operation], Value]:
    """The ops computing `op` with `xs` in place of its operands, and their result."""
    fn = EXPANSIONS.get(op.name)
    if fn is None:
        raise KeyError(op.name)
    em = Emitter(xs[0].type.shape, op.location)
    out = fn(op, *(em.wrap(x) for x in xs))
    hint = op.results[0].name_hint
    if hint and out.v.name_hint is None:
        out.v.name_hint = hint
    return em.ops, out.v


_CACHE: dict = {}


def expansion(op: Operation) -> tuple[tuple[Value, ...], list[Operation], Value]:
    """`(placeholders, ops, result)`: `op`'s expansion computed on placeholder block arguments
    (one per operand, of its type), built once per op kind (name, attributes, operand types).
    Back-ends and the interpreter map the placeholders to the operands and run or lower `ops` in
    order; the module's own values gain no uses."""
    key = (op.name, tuple(sorted((k, str(v)) for k, v in op.attributes.items())), tuple(str(v.type) for v in op.operands))
    hit = _CACHE.get(key)
    if hit is None:
        args = tuple(Block([v.type for v in op.operands]).args)
        ops, out = expand(op, *args)
        hit = _CACHE[key] = (args, ops, out)
    return hit


def unary(fn: Callable[[E], E]):  # an elementwise function of the op's one operand
    return lambda op, x: fn(x)


@expands("math.exp")
def _exp_op(op, x: E) -> E:
    impl = op.attributes.get("impl")
    return (_exp.fmath_exp if impl is not None and impl.value == "fmath" else _exp.exp)(x)


EXPANSIONS["math.exp2"] = unary(_exp.exp2)
EXPANSIONS["math.log1p"] = unary(_log.log1p)
EXPANSIONS["math.log"] = unary(_log.log)
EXPANSIONS["math.tanh"] = unary(_tanh.tanh)
EXPANSIONS["math.sin"] = unary(_trig.sin)
EXPANSIONS["math.cos"] = unary(_trig.cos)
EXPANSIONS["math.erfinv"] = unary(_erfinv.erfinv)


def _exp_of(op, x: E) -> E:
    """`math.exp` of x with op's `impl`: an op, expanded later or kept for the C library."""
    from ..math import ExpOp

    attrs = {"impl": op.attributes["impl"]} if "impl" in op.attributes else {}
    return x.em.emit(ExpOp.build(x.v, **attrs))


@expands("math.sigmoid")
def _sigmoid(op, x: E) -> E:
    """1 / (1 + exp(-a)), each step in the element type."""
    return 1.0 / (1.0 + _exp_of(op, -x))


@expands("math.softmax")
def _softmax(op, a: E) -> E:
    """m = a_0, then m = a_i if a_i > m; e = exp(a - m); s = 0 + e_0 + e_1 + ... in `acc`;
    p = e / s, s rounded to the element type first (math.softmax's docstring)."""
    n = a.v.type.shape[0]
    el = a.elem
    acc = op.attributes["acc"].type if "acc" in op.attributes else el
    xs = [a.extract(i) for i in range(n)] if n > 1 else [a]
    m = xs[0]
    for xi in xs[1:]:
        m = where(xi.gt(m), xi, m)
    e = _exp_of(op, a - (m.broadcast(n) if n > 1 else m))
    s = a.em.const(0.0, acc, (1,))
    for i in range(n):
        ei = e.extract(i) if n > 1 else e
        s = s + (ei.ext(acc) if acc != el else ei)
    if acc != el:
        s = s.trunc(el)
    return e / (s.broadcast(n) if n > 1 else s)


def expandable(op: Operation) -> bool:
    return op.name in EXPANSIONS and bool(op.results) and bool(op.operands) and isinstance(op.results[0].type, TensorType)
