"""Dialects: importing this package registers every op (and its interpreter semantics)."""

from . import arith, builtin, func, kernel, linear, math, tree, tree_eval  # noqa: F401
