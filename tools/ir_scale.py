"""Measure how the IR scales: build, verify, print and parse a forest of complete trees.

    python tools/ir_scale.py --trees 1000 --depth 8

Prints seconds per phase and peak memory (the design target: a 1000-tree depth-8
ensemble parses, verifies and prints in seconds, in well under 2 GB)."""

from __future__ import annotations

import argparse
import resource
import time

import numpy as np

from ir.dialects import builtin, func, tree
from ir.dialects.tree import Missing, NodeTable, Pred
from ir.parser import parse_module
from ir.printer import print_op
from ir.types import f32, tensor
from ir.verifier import verify


def complete_tree(rng: np.random.Generator, depth: int, n_features: int) -> NodeTable:
    """A complete binary tree in heap order (children of i at 2i+1, 2i+2)."""
    n_split = 2**depth - 1
    n = 2 ** (depth + 1) - 1
    idx = np.arange(n)
    split = idx < n_split
    feature = np.where(split, rng.integers(0, n_features, n), -1)
    pred = np.where(split, Pred.LT, Pred.LEAF)
    thr = np.where(split, rng.normal(size=n), 0).astype(np.float32)
    yes = np.where(split, 2 * idx + 1, -1)
    no = np.where(split, 2 * idx + 2, -1)
    missing = np.where(split, Missing.NAN, Missing.NONE)
    default = np.where(split, np.where(rng.random(n) < 0.5, yes, no), -1)
    leaf = np.where(split, 0, rng.normal(size=n) * 0.1).astype(np.float32)
    return NodeTable(feature, pred, thr, yes, no, missing, default, leaf)


def build(n_trees: int, depth: int, n_features: int = 100) -> builtin.ModuleOp:
    rng = np.random.default_rng(0)
    m = builtin.ModuleOp.build()
    f = func.FuncOp.build("margin", [tensor(n_features, f32)], [tensor(1, f32)], arg_names=["x"])
    m.body.add_op(f)
    e = f.body.add_op(tree.EnsembleOp.build(f.args[0], 1, f32, f32, f32, name="margin"))
    for _ in range(n_trees):
        e.add_tree(complete_tree(rng, depth, n_features))
    f.body.add_op(func.ReturnOp(operands=[e.result]))
    return m


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--trees", type=int, default=1000)
    ap.add_argument("--depth", type=int, default=8)
    a = ap.parse_args()
    t0 = time.perf_counter()
    m = build(a.trees, a.depth)
    t1 = time.perf_counter()
    verify(m)
    t2 = time.perf_counter()
    text = print_op(m)
    t3 = time.perf_counter()
    m2 = parse_module(text, "scale.tir")
    t4 = time.perf_counter()
    verify(m2)
    t5 = time.perf_counter()
    same = print_op(m2) == text
    nodes = a.trees * (2 ** (a.depth + 1) - 1)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{a.trees} trees, depth {a.depth}, {nodes} nodes, {len(text) / 1e6:.1f} MB of text")
    print(f"build {t1 - t0:.2f}s  verify {t2 - t1:.2f}s  print {t3 - t2:.2f}s  parse {t4 - t3:.2f}s  verify {t5 - t4:.2f}s  round-trip {'identical' if same else 'DIFFERS'}")
    print(f"peak memory {peak:.0f} MB")


if __name__ == "__main__":
    main()
