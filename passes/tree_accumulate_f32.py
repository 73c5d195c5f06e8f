"""`tree-accumulate-f32`: lossy: leaf values and the sum of tree outputs in float32.

LightGBM and CatBoost sum their trees in double.  On a core without a double-precision FPU
(Cortex-M3/M4F, RV32IMAC/IMAFC) every one of those additions is a soft-float library call, and
the leaf tables are twice the size.  This pass rewrites every `tree.ensemble` that stores
leaves or accumulates in f64 to do both in f32:

    %margin = tree.ensemble %x {compare = f64, init = dense<[0.5]> : tensor<1xf64>, leaves = f64} ... -> tensor<1xf64>
  becomes
    %margin = tree.ensemble %x {compare = f64, init = dense<[0.5]> : tensor<1xf32>, leaves = f32} ... -> tensor<1xf32>
    %margin_1 = arith.extf %margin : tensor<1xf32> to tensor<1xf64>

so the function's types (and the ABI) stay as they were.  Splits are untouched: comparisons
keep their precision.  Constant leaf values and `init` are rounded to the nearest float32.
Linear leaves (LightGBM `linear_tree`) keep computing `const + Σ coeff·x` in their own
precision (in float32 a large x would overflow); each such leaf value is rounded once as it is
added.  An ensemble already in f32 is left alone; one whose only f64 part is the storage of
constant leaves summed in f32 is narrowed, which is exact (each leaf was rounded to f32 before
its addition anyway).

The audit log states, per ensemble, a bound on how far any output can move against summing the
original leaves in double: the leaf rounding errors, plus half an f32 ulp of the largest
possible partial sum per addition, plus double's own rounding.  Linear leaves depend on the
row's values, so no static bound is stated for them.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np

from ir.attributes import DenseElementsAttr, TypeAttr
from ir.core import Block, Region
from ir.dialects.arith import ExtFOp
from ir.dialects.tree import EnsembleOp, NodeTable
from ir.types import TensorType, f32, f64

from .base import Pass, PassContext
from .forest import ensembles
from .registry import register_pass

F32_EPS, F64_EPS = 2.0**-24, 2.0**-53  # unit roundoff: a rounded result is within |x| * u


def narrowed(table):
    """A copy of `table` whose leaf values are rounded to float32."""
    t = copy.copy(table)
    with np.errstate(over="ignore"):
        t.leaf = np.ascontiguousarray(table.leaf.astype(np.float32))
    return t


def _linear(ens: EnsembleOp) -> bool:
    return any(isinstance(t.table, NodeTable) and t.table.is_linear for t in ens.trees)


def error_bound(ens: EnsembleOp) -> float | None:
    """Largest change of any output of `ens` when its leaves and sums go to float32 (against
    the double sum of the original leaves); None when the trees have linear leaves."""
    init = np.asarray(ens.attributes["init"].values, np.float64)
    reach = np.abs(init)  # the largest |partial sum| any row can reach, per output
    leaf_err = np.abs(init - init.astype(np.float32).astype(np.float64))
    adds = np.zeros(len(init))
    for t_op in ens.trees:
        t = t_op.table
        if isinstance(t, NodeTable) and t.is_linear:
            return None
        k = slice(t_op.out, t_op.out + t.leaf_dim)
        leaf = t.leaf.astype(np.float64)
        with np.errstate(over="ignore", invalid="ignore"):
            reach[k] += np.abs(leaf).max(axis=0)
            leaf_err[k] += np.abs(leaf - leaf.astype(np.float32).astype(np.float64)).max(axis=0)
        adds[k] += 1
    bound = leaf_err + adds * (F32_EPS + F64_EPS) * reach
    return float(bound.max()) if len(bound) else 0.0


@register_pass
@dataclass
class AccumulateF32(Pass):
    """Store leaves and sum tree outputs in float32; the ensemble's result is widened back."""

    name = "tree-accumulate-f32"
    summary = "lossy: tree leaves and their sum in float32 (for cores without a double FPU); the stated bound says how far outputs may move"
    exact = False

    def apply(self, module, ctx: PassContext) -> None:
        for ens in ensembles(module):
            acc = ens.results[0].type.element
            if acc == f32 and (ens.leaf_type == f32 or _linear(ens)):
                continue
            bound = error_bound(ens)
            self._rewrite(ens, ctx)
            ctx.stat("ensembles-rewritten")
            if bound is None:
                ctx.note("an ensemble with linear leaves is now summed in float32: each leaf's value is rounded once; no static bound")
            else:
                ctx.stat("max-output-error-bound", bound)
                ctx.note(
                    f"ensemble summed in float32: every output moves by at most {bound:.6g} against the double sum "
                    "(leaf rounding + half an f32 ulp of the largest partial sum per addition)"
                )

    def _rewrite(self, ens: EnsembleOp, ctx: PassContext) -> None:
        rw = ctx.rewriter
        old_t = ens.results[0].type
        hint = ens.results[0].name_hint
        init = np.asarray(ens.attributes["init"].values)
        with np.errstate(over="ignore"):
            init32 = init.astype(np.float32)
        new = EnsembleOp(
            operands=[ens.operands[0]],
            result_types=[TensorType(old_t.shape, f32)],
            attributes=dict(ens.attributes),
            regions=[Region([Block()])],
            result_names=[hint],
            location=ens.location,
        )
        keep = _linear(ens)  # linear leaves keep their precision (see the module docstring)
        new.attributes["leaves"] = TypeAttr(ens.leaf_type if keep else f32)
        new.attributes["init"] = DenseElementsAttr(init32, new.results[0].type)
        for t_op in ens.trees:
            added = new.add_tree(t_op.table if keep else narrowed(t_op.table), t_op.out)
            for k, v in t_op.attributes.items():
                added.attributes.setdefault(k, v)
            added.location = t_op.location
        rw.insert_before(ens, new)
        result = new.results[0]
        if old_t.element == f64:
            ext = ExtFOp(operands=[result], result_types=[old_t], result_names=[hint], location=ens.location)
            rw.insert_before(ens, ext)
            result = ext.results[0]
        rw.replace_op(ens, [result], "leaves and accumulation in f32")
