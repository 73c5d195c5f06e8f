"""Optimizer passes over the IR: registry, pipeline text, pass manager, graph rewrites.

`run_pipeline(module, "canonicalize,tree-fold-redundant-splits")` runs passes in place;
`run_pipeline(module)` runs the default exact pipeline (`passes.registry.PIPELINES["default"]`).
"""

from .manager import run_pipeline  # noqa: F401
