"""A numpy interpreter of the IR: the executable statement of every op's semantics.

Slow but exact (vectorised over rows; every arithmetic step in the op's own precision), it is
the reference that back-ends are tested against bit for bit, and what passes use to prove that
a rewrite changed no prediction.

This file knows no dialect: each op registers its implementation with `@interprets(OpClass)`
next to its definition (`ir/dialects/*`).  An implementation takes the op, its operands as
arrays of shape (rows, ...) and the `Interpreter`, and returns the results.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .core import Block, Operation
from .diagnostics import TimberError
from .opdef import Terminator
from .types import TensorType

MATH_MODES = ("timber", "libm")

IMPLEMENTATIONS: dict[type, Callable] = {}


def interprets(*op_classes):
    """Register `fn(op, args, interp) -> list[np.ndarray]` as the semantics of `op_classes`."""

    def deco(fn):
        for c in op_classes:
            IMPLEMENTATIONS[c] = fn
        return fn

    return deco


class Interpreter:
    """Runs ops of `module` (for calls); `math`: "timber" (math ops run their `arith` expansion,
    the same bits as every back-end) or "libm" (the C library's, as the host JIT by default)."""

    def __init__(self, module: Operation | None = None, math: str = "timber"):
        if math not in MATH_MODES:
            raise TimberError(f"unknown math '{math}'; known: {', '.join(MATH_MODES)}")
        from . import dialects  # noqa: F401  (registers every op's semantics)

        self.module = module
        self.math = math

    def call(self, func_name: str, args: list[np.ndarray]) -> list[np.ndarray]:
        f = self.module.lookup(func_name) if hasattr(self.module, "lookup") else None
        if f is None:
            raise TimberError(f"module has no function @{func_name}")
        return self.run_block(f.body, args)

    def run_block(self, block: Block, args: list[np.ndarray]) -> list[np.ndarray]:
        """Run a block on its arguments' arrays; returns its terminator's operands."""
        env: dict[int, np.ndarray] = {id(a): v for a, v in zip(block.args, args)}
        for op in block.ops:
            if op.has_trait(Terminator):
                return [env[id(v)] for v in op.operands]
            for r, v in zip(op.results, self.eval(op, [env[id(v)] for v in op.operands])):
                env[id(r)] = v
        raise TimberError("block has no terminator")

    def run_ops(self, ops: list[Operation], env: dict[int, np.ndarray], result) -> np.ndarray:
        """Run a list of ops whose free operands are in `env` (by value id); returns `result`'s array."""
        env = dict(env)
        for op in ops:
            for r, v in zip(op.results, self.eval(op, [env[id(v)] for v in op.operands])):
                env[id(r)] = v
        return env[id(result)]

    def eval(self, op: Operation, args: list[np.ndarray]) -> list[np.ndarray]:
        impl = IMPLEMENTATIONS.get(type(op))
        if impl is None:
            raise TimberError(f"the interpreter does not know '{op.name}'", op.location)
        with np.errstate(all="ignore"):
            return impl(op, args, self)

    @staticmethod
    def rows(args: list[np.ndarray]) -> int:
        return args[0].shape[0] if args else 1

    @staticmethod
    def dtype(v) -> np.dtype:
        t = v.type
        return (t.element if isinstance(t, TensorType) else t).numpy


def run(module: Operation, X, func_name: str = "predict", math: str = "timber") -> np.ndarray:
    """Evaluate function `@func_name` of `module` on rows X (n, n_features) → (n, K).

    X is converted to the function's input element type first (as the API does).  `math`:
    "timber" (Timber's own functions) or "libm" (the C library's, as the host JIT by default)."""
    interp = Interpreter(module, math)
    f = module.lookup(func_name) if hasattr(module, "lookup") else None
    if f is None:
        raise TimberError(f"module has no function @{func_name}")
    in_type = f.function_type.inputs[0]
    X = np.asarray(X)
    if X.ndim == 1:
        X = X.reshape(1, -1)
    if X.shape[1] != in_type.shape[0]:
        raise TimberError(f"expected {in_type.shape[0]} features, got {X.shape[1]}")
    X = X.astype(in_type.element.numpy)
    return interp.run_block(f.body, [X])[0]


def evaluate_op(op: Operation, args: list[np.ndarray], module: Operation | None = None, math: str = "timber") -> list[np.ndarray]:
    """Evaluate one op on per-row operand arrays (each (n, ...)); `module` is needed for calls.

    Passes use this to fold constants with exactly the reference semantics."""
    return Interpreter(module, math).eval(op, list(args))
