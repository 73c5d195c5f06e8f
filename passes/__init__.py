"""Optimizer passes over the IR (registry, pass manager, graph rewrites)."""
