"""Dialects: importing this package registers every op (and its interpreter semantics)."""

from . import arith, builtin, func, kernel, kin, linear, math, tree, tree_eval  # noqa: F401
