"""`kin-specialize-axes`: a joint axis that is exactly ±x, ±y or ±z becomes the aligned name.

`kin.revolute {axis = dense<[0.0, 0.0, 1.0]>}` computes Rodrigues' full matrix (every entry, 27
products with its origin); `{axis = "z"}` a rotation touching two columns (12 products, the third
column is the origin's).  Likewise for `kin.prismatic` (one column of the origin scales q) and
`kin.jacobian_column` (z is a column of the joint's rotation).

For finite inputs the aligned form differs from the dense one by rounding only (Rodrigues'
`u_k²·(1 − c) + c` is 1 up to an ulp; the aligned form has 1 exactly, as Pinocchio's specialised
joints do), hence not `exact`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ir.attributes import DenseElementsAttr, StringAttr
from ir.dialects import kin

from .base import Pass, PassContext
from .dce import function_ops
from .registry import register_pass


def aligned_name(axis) -> str | None:
    """ "z", "-x", ... for an axis that is exactly ±e_k, else None."""
    if not isinstance(axis, DenseElementsAttr):
        return None
    v = np.asarray(axis.values, np.float64)
    nz = np.flatnonzero(v)
    if len(nz) != 1 or abs(v[nz[0]]) != 1.0:
        return None
    return ("-" if v[nz[0]] < 0 else "") + "xyz"[nz[0]]


@register_pass
@dataclass
class KinSpecializeAxes(Pass):
    """Specialise axis-aligned joints."""

    name = "kin-specialize-axes"
    summary = "joints about/along ±x, ±y, ±z compute two columns instead of Rodrigues' full matrix"
    exact = False

    def apply(self, module, ctx: PassContext) -> None:
        for op in function_ops(module):
            if not isinstance(op, (kin.RevoluteOp, kin.PrismaticOp, kin.JacobianColumnOp)):
                continue
            name = aligned_name(op.attributes["axis"])
            if name is None:
                continue
            ctx.rewriter.set_attr(op, "axis", StringAttr(name), f"axis {name}")
            ctx.stat("axes-specialized")
