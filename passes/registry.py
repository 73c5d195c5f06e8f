"""The pass registry and the named pipelines.

Adding a pass: its file in `passes/`, decorated with `@register_pass`, and one line in
`PASS_MODULES` below.
"""

from __future__ import annotations

import importlib

from .base import Pass

# One line per pass file.
PASS_MODULES = (
    "passes.canonicalize",
    "passes.cse",
    "passes.dce",
    "passes.tree_unreachable",
    "passes.tree_fold",
    "passes.tree_prune",
    "passes.tree_narrow",
    "passes.tree_sort",
    "passes.fuse_scaler",
    "passes.linear_fuse_scaler",
    "passes.tree_analysis",
    "passes.tree_accumulate_f32",
    "passes.math_expand",
)

# Named pipelines usable in pipeline text.  `default` holds only exact passes: it is what
# `timber.compile` and `timber compile` run unless told otherwise.
PIPELINES = {
    "default": (
        "canonicalize,tree-fuse-scaler,cse,dce,tree-remove-unreachable,tree-fold-redundant-splits,"
        "canonicalize,tree-narrow-thresholds,tree-vectorize-analysis"
    ),
}

_PASSES: dict[str, type[Pass]] = {}
_loaded = False


def register_pass(cls: type[Pass]) -> type[Pass]:
    """Class decorator: make a pass known by its name."""
    if not cls.name:
        raise ValueError(f"{cls.__name__} has no name")
    if cls.name in _PASSES and _PASSES[cls.name] is not cls:
        raise ValueError(f"pass '{cls.name}' registered twice")
    _PASSES[cls.name] = cls
    return cls


def _load() -> None:
    global _loaded
    if not _loaded:
        for m in PASS_MODULES:
            importlib.import_module(m)
        _loaded = True


def lookup_pass(name: str) -> type[Pass] | None:
    _load()
    return _PASSES.get(name)


def all_passes() -> list[type[Pass]]:
    """Every registered pass, sorted by name."""
    _load()
    return [_PASSES[k] for k in sorted(_PASSES)]
