"""The pass registry and the named pipelines.

Adding a pass: its file in `passes/`, decorated with `@register_pass`, and one line in
`PASS_MODULES` below.  A pass that records analysis results as attributes declares them in its
`derives` class attribute (`{op name: (attribute, ...)}`); `derived_attributes()` collects them
for the rewriter, which drops them when the IR they describe changes.
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
    "passes.tree_analysis",
    "passes.tree_narrow",
    "passes.tree_sort",
    "passes.fuse_scaler",
    "passes.linear_fuse_scaler",
    "passes.tree_accumulate_f32",
    "passes.math_expand",
    "passes.kin_fold_fixed",
    "passes.kin_share_sincos",
    "passes.kin_specialize_axes",
    "passes.kin_lower",
)

# Named pipelines usable in pipeline text.  `default` is what `timber.compile` and `timber compile`
# run unless told otherwise.  It holds only exact passes (predictions do not change), with one
# stated exception: kin-fold-fixed and kin-specialize-axes re-associate a robot's transforms,
# which moves results by rounding only (a kinematic chain's reference is Pinocchio, not the
# unoptimised IR; tests/kin checks every corpus robot within 1e-12 of it).  They touch only `kin` ops.
PIPELINES = {
    "default": (
        "kin-fold-fixed,kin-share-sincos,kin-specialize-axes,cse,convert-kin-to-arith,"
        "canonicalize,tree-fuse-scaler,cse,dce,tree-remove-unreachable,tree-fold-redundant-splits,"
        "canonicalize,tree-narrow-thresholds,tree-vectorize-analysis"
    ),
}

_PASSES: dict[str, type[Pass]] = {}
_loaded = False
_derived: dict[str, tuple[str, ...]] | None = None


def register_pass(cls: type[Pass]) -> type[Pass]:
    """Class decorator: make a pass known by its name."""
    global _derived
    if not cls.name:
        raise ValueError(f"{cls.__name__} has no name")
    if cls.name in _PASSES and _PASSES[cls.name] is not cls:
        raise ValueError(f"pass '{cls.name}' registered twice")
    for op_name, attrs in dict(cls.derives).items():
        if not isinstance(op_name, str) or isinstance(attrs, str) or not all(isinstance(a, str) for a in attrs):
            raise ValueError(f"pass '{cls.name}': derives must map op names to tuples of attribute names, found {op_name!r}: {attrs!r}")
        for a in attrs:
            if "." not in a:
                raise ValueError(f"pass '{cls.name}' derives '{a}': derived attributes are dialect attributes, 'dialect.name'")
    _PASSES[cls.name] = cls
    _derived = None
    return cls


def derived_attributes() -> dict[str, tuple[str, ...]]:
    """Per op name, every attribute some registered pass derives (its `derives`), each once.

    Ordered by pass file (`PASS_MODULES` order; passes registered from elsewhere last), then as
    each pass declares them: this is the order in which the rewriter's audit lists dropped ones."""
    global _derived
    _load()
    if _derived is None:
        rank = {m: i for i, m in enumerate(PASS_MODULES)}
        order = sorted(enumerate(_PASSES.values()), key=lambda ic: (rank.get(ic[1].__module__, len(rank)), ic[0]))
        out: dict[str, list[str]] = {}
        for _, cls in order:
            for op_name, attrs in cls.derives.items():
                names = out.setdefault(op_name, [])
                names.extend(a for a in attrs if a not in names)
        _derived = {k: tuple(v) for k, v in out.items()}
    return _derived


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
