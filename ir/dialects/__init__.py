"""Dialects: importing this package registers every op."""

from . import arith, builtin, func, linear, math, tree  # noqa: F401
