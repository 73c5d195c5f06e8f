"""`kin` dialect: rigid-body forward kinematics (robot joints and the composition of their transforms).

A pose is a `tensor<12xT>` (T = f64 or f32): the top three rows of the 4×4 homogeneous matrix, row
major, `[R00 R01 R02 p0 R10 R11 R12 p1 R20 R21 R22 p2]`, so a pose is the first 12 values of the
row-major 4×4 it stands for.  Constant poses (a joint's `origin`) are `dense<...> : tensor<12xT>`
attributes in the same layout.

Every op computes with IEEE operations in its element type, in the order its docstring states
(no fused multiply-add), through its `arith` expansion at the bottom of this file: the interpreter
runs that expansion, and the `convert-kin-to-arith` pass (or a back-end) lowers the same ops, so
every back-end gives the same bits.  Products with a constant exactly 0 are not computed and a
constant 1 multiplies as the identity (a joint's sparse structure, as in Pinocchio's specialised
joints); a NaN reaches fewer entries than a dense product would.

    sincos      (sin a, cos a)
    mimic       multiplier·q + offset (a mimic joint's position)
    revolute    origin · Rot(axis, angle), from (sin, cos) of the angle
    prismatic   origin · Trans(q·axis)
    fixed       T · origin
    compose     A · B
    pose        the 4×4 matrix (16 values) of a pose
    jacobian_column, columns   the geometric Jacobian (base frame, at a frame's origin)
"""

from __future__ import annotations

import numpy as np

from ..attributes import DenseElementsAttr, FloatAttr, StringAttr
from ..core import Block, Value
from ..opdef import AttrDef, OpDef, OperandDef, Pure, Rank1FloatTensor, ResultDef, register
from ..types import TensorType

POSE = 12
ALIGNED_AXES = ("x", "y", "z", "-x", "-y", "-z")
JACOBIAN_KINDS = ("revolute", "prismatic")


def _shape_error(op, what: str, value, n: int) -> None:
    t = value.type
    if t.shape != (n,):
        op.error(f"{what} must be tensor<{n}x{t.element}>, found {t}")


def _same_element(op) -> None:
    els = {str(v.type.element) for v in (*op.operands, *op.results)}
    if len(els) > 1:
        op.error(f"operands and results must have one element type, found {', '.join(sorted(els))}")


def _verify_origin(op, key: str = "origin") -> None:
    a = op.attributes[key]
    el = op.results[0].type.element
    if a.type != TensorType((POSE,), el):
        op.error(f"{key} must be dense<...> : tensor<{POSE}x{el}> (a pose: rows of R and p), found {a.type}")
    if not np.all(np.isfinite(a.values)):
        op.error(f"{key} must be finite")


def _verify_axis(op) -> None:
    a = op.attributes["axis"]
    if isinstance(a, StringAttr):
        if a.value not in ALIGNED_AXES:
            op.error(f"axis must be a dense<[x, y, z]> unit vector or one of {', '.join(ALIGNED_AXES)}, found '{a.value}'")
        return
    if not isinstance(a, DenseElementsAttr) or a.type.shape != (3,):
        op.error(f"axis must be a dense<[x, y, z]> : tensor<3xf64> or one of {', '.join(ALIGNED_AXES)}, found {a}")
    v = np.asarray(a.values, np.float64)
    n = float(np.sqrt(np.dot(v, v)))
    if not np.isfinite(n) or abs(n - 1.0) > 1e-6:
        op.error(f"axis must be a unit vector (the front-end normalises it), found length {n!r}")


class _KinOp(OpDef):
    """Custom form `kin.op %a, %b {attrs} : T1, T2 -> R` (`-> R` left out when R is T1 and
    there is one operand... never: always printed, so the form is one rule)."""

    custom_print = True
    traits = (Pure,)

    def print_custom(self, p) -> None:
        p.write(self.name)
        if self.operands:
            p.write(" " + ", ".join(p.name_of(v) for v in self.operands))
        if self.attributes:
            p.write(" ")
            p.print_attr_dict(self.attributes)
        ins = ", ".join(str(v.type) for v in self.operands)
        p.write(f" : {ins} -> {self.results[0].type}" if ins else f" : {self.results[0].type}")

    @classmethod
    def parse_custom(cls, p, result_names, loc):
        names = []
        if p.peek_kind() == "value":
            names.append(p.parse_value_use_name())
            while p.accept(","):
                names.append(p.parse_value_use_name())
        attrs = p.parse_optional_attr_dict()
        p.expect(":")
        types = []
        if names:
            types.append(p.parse_type())
            while p.accept(","):
                types.append(p.parse_type())
            if len(types) != len(names):
                p.error(f"expected {len(names)} operand types, found {len(types)}")
            p.expect("->")
        rt = p.parse_type()
        operands = [p.resolve(n, t) for n, t in zip(names, types)]
        return cls(operands=operands, result_types=[rt], attributes=attrs, result_names=result_names, location=loc)

    @classmethod
    def make(cls, operands, result_type, name=None, **attrs):
        attrs = {k: v for k, v in attrs.items() if v is not None}
        return cls(operands=list(operands), result_types=[result_type], attributes=attrs, result_names=[name])


def pose_type(el) -> TensorType:
    return TensorType((POSE,), el)


def dense_pose(values, el) -> DenseElementsAttr:
    return DenseElementsAttr(np.asarray(values, el.numpy).reshape(POSE), pose_type(el))


def axis_attr(axis):
    """The `axis` attribute: an aligned name ("z", "-x", ...) or a unit vector (f64)."""
    if isinstance(axis, str):
        return StringAttr(axis)
    return DenseElementsAttr(np.asarray(axis, np.float64), TensorType((3,), _F64))


@register
class SinCosOp(_KinOp):
    """`%sc = kin.sincos %a : tensor<1xf64> -> tensor<2xf64>`: `[sin a, cos a]` (`math.sin`,
    `math.cos` of the element type: the C library's in the host JIT with math="libm", else
    Timber's own; the LLVM back-end computes the two with one argument reduction in batches,
    `trig.sincos_f64`, the same bits)."""

    name = "kin.sincos"
    operand_defs = (OperandDef("angle", Rank1FloatTensor),)
    result_defs = (ResultDef("out", Rank1FloatTensor),)

    def verify_(self) -> None:
        _shape_error(self, "operand", self.operands[0], 1)
        _shape_error(self, "result", self.results[0], 2)
        _same_element(self)


@register
class MimicOp(_KinOp):
    """`%a = kin.mimic %q {multiplier = -2.0 : f64, offset = 0.3 : f64} : tensor<1xf64> -> tensor<1xf64>`:
    a mimic joint's position `multiplier·q + offset` (the product rounded, then the sum), the
    attributes rounded to the element type first."""

    name = "kin.mimic"
    operand_defs = (OperandDef("source", Rank1FloatTensor),)
    result_defs = (ResultDef("out", Rank1FloatTensor),)
    attr_defs = (AttrDef("multiplier", FloatAttr), AttrDef("offset", FloatAttr), AttrDef("joint", StringAttr, optional=True))

    def verify_(self) -> None:
        _shape_error(self, "operand", self.operands[0], 1)
        _shape_error(self, "result", self.results[0], 1)
        _same_element(self)
        for k in ("multiplier", "offset"):
            if not np.isfinite(self.attributes[k].value):
                self.error(f"{k} must be finite")


@register
class RevoluteOp(_KinOp):
    """`%L = kin.revolute %sc {axis = dense<[0.0, 0.0, 1.0]> : tensor<3xf64>, origin = dense<[...]> : tensor<12xf64>, joint = "j1"} : tensor<2xf64> -> tensor<12xf64>`

    A revolute joint's transform from its parent link to its child link: `origin · Rot(u, θ)`,
    `(sin θ, cos θ)` the operand, u the unit `axis`.  With a vector axis Rot is Rodrigues'
    matrix, every entry computed: `Rot_ij = u_i·u_j·(1 − c) + [i = j]·c − ε_ijk·u_k·s`; with
    an aligned axis (`"x"`, `"-z"`, ...) Rot has the two sin/cos columns of a rotation about
    that axis only (`kin-specialize-axes` makes the rewrite).  The rotation part is the 3×3
    product `R_origin · Rot` (each entry `(a0·b0 + a1·b1) + a2·b2`); p = origin's p."""

    name = "kin.revolute"
    operand_defs = (OperandDef("sincos", Rank1FloatTensor),)
    result_defs = (ResultDef("pose", Rank1FloatTensor),)
    attr_defs = (
        AttrDef("axis", (DenseElementsAttr, StringAttr)),
        AttrDef("origin", DenseElementsAttr),
        AttrDef("joint", StringAttr, optional=True),
    )

    def verify_(self) -> None:
        _shape_error(self, "operand", self.operands[0], 2)
        _shape_error(self, "result", self.results[0], POSE)
        _same_element(self)
        _verify_axis(self)
        _verify_origin(self)


@register
class PrismaticOp(_KinOp):
    """`%L = kin.prismatic %q {axis = "z", origin = dense<[...]> : tensor<12xf64>} : tensor<1xf64> -> tensor<12xf64>`

    A prismatic joint's transform: `origin · Trans(q·u)`: R = origin's R, `p_i = p_origin_i +
    ((R_i0·v0 + R_i1·v1) + R_i2·v2)` with `v = q·u` (aligned axis: v has one entry, ±q)."""

    name = "kin.prismatic"
    operand_defs = (OperandDef("position", Rank1FloatTensor),)
    result_defs = (ResultDef("pose", Rank1FloatTensor),)
    attr_defs = RevoluteOp.attr_defs

    def verify_(self) -> None:
        _shape_error(self, "operand", self.operands[0], 1)
        _shape_error(self, "result", self.results[0], POSE)
        _same_element(self)
        _verify_axis(self)
        _verify_origin(self)


@register
class FixedOp(_KinOp):
    """`%T2 = kin.fixed %T {origin = dense<[...]> : tensor<12xf64>, joint = "tool0_joint"} : tensor<12xf64> -> tensor<12xf64>`:
    `T · origin` (a fixed joint after the pose T), computed as `kin.compose` does."""

    name = "kin.fixed"
    operand_defs = (OperandDef("base", Rank1FloatTensor),)
    result_defs = (ResultDef("pose", Rank1FloatTensor),)
    attr_defs = (AttrDef("origin", DenseElementsAttr), AttrDef("joint", StringAttr, optional=True))

    def verify_(self) -> None:
        _shape_error(self, "operand", self.operands[0], POSE)
        _shape_error(self, "result", self.results[0], POSE)
        _same_element(self)
        _verify_origin(self)


@register
class ComposeOp(_KinOp):
    """`%T = kin.compose %A, %B : tensor<12xf64>, tensor<12xf64> -> tensor<12xf64>`: the pose
    `A · B`: `R = R_A·R_B` (each entry `(a_i0·b_0j + a_i1·b_1j) + a_i2·b_2j`) and
    `p = ((a_i0·p_B0 + a_i1·p_B1) + a_i2·p_B2) + p_A_i`."""

    name = "kin.compose"
    operand_defs = (OperandDef("lhs", Rank1FloatTensor), OperandDef("rhs", Rank1FloatTensor))
    result_defs = (ResultDef("pose", Rank1FloatTensor),)

    def verify_(self) -> None:
        for i, v in enumerate(self.operands):
            _shape_error(self, f"operand #{i}", v, POSE)
        _shape_error(self, "result", self.results[0], POSE)
        _same_element(self)


@register
class PoseOp(_KinOp):
    """`%M = kin.pose %T : tensor<12xf64> -> tensor<16xf64>`: the row-major 4×4 homogeneous matrix
    of the pose T (its 12 values, then `0 0 0 1`)."""

    name = "kin.pose"
    operand_defs = (OperandDef("pose", Rank1FloatTensor),)
    result_defs = (ResultDef("matrix", Rank1FloatTensor),)

    def verify_(self) -> None:
        _shape_error(self, "operand", self.operands[0], POSE)
        _shape_error(self, "result", self.results[0], 16)
        _same_element(self)


@register
class JacobianColumnOp(_KinOp):
    """`%c = kin.jacobian_column %Tj, %Tf {axis = "z", kind = "revolute"} : tensor<12xf64>, tensor<12xf64> -> tensor<6xf64>`

    One column of the geometric Jacobian of frame pose `Tf`, in the base frame at the frame's
    origin (Pinocchio's `LOCAL_WORLD_ALIGNED`), for a joint whose child pose is `Tj` and whose
    axis (in the child frame) is `axis`: `z = R_j·u`; revolute: `[z × (p_f − p_j), z]`;
    prismatic: `[z, 0 0 0]`.  Each entry of `R_j·u` is `(r0·u0 + r1·u1) + r2·u2`; the cross
    product's entries are `a_y·b_z − a_z·b_y` (and cyclically)."""

    name = "kin.jacobian_column"
    operand_defs = (OperandDef("joint_pose", Rank1FloatTensor), OperandDef("frame_pose", Rank1FloatTensor))
    result_defs = (ResultDef("column", Rank1FloatTensor),)
    attr_defs = (AttrDef("axis", (DenseElementsAttr, StringAttr)), AttrDef("kind", StringAttr), AttrDef("joint", StringAttr, optional=True))

    def verify_(self) -> None:
        for i, v in enumerate(self.operands):
            _shape_error(self, f"operand #{i}", v, POSE)
        _shape_error(self, "result", self.results[0], 6)
        _same_element(self)
        _verify_axis(self)
        if self.attributes["kind"].value not in JACOBIAN_KINDS:
            self.error(f"kind must be one of {', '.join(JACOBIAN_KINDS)}, found '{self.attributes['kind'].value}'")


@register
class ColumnsOp(_KinOp):
    """`%J = kin.columns %c0, %c1 : tensor<6xf64>, tensor<6xf64> -> tensor<12xf64>`: the 6×n matrix
    whose columns are the operands, row major (`J[r, j]` at `r·n + j`)."""

    name = "kin.columns"
    operand_defs = (OperandDef("columns", Rank1FloatTensor, variadic=True),)
    result_defs = (ResultDef("matrix", Rank1FloatTensor),)

    def verify_(self) -> None:
        if not self.operands:
            self.error("needs at least one column")
        for i, v in enumerate(self.operands):
            _shape_error(self, f"operand #{i}", v, 6)
        _shape_error(self, "result", self.results[0], 6 * len(self.operands))
        _same_element(self)


# ----- the arithmetic, as `arith` IR ------------------------------------------------------------------
#
# A "symbolic scalar" is either an `E` (a tensor<1xT> value of the expansion) or a Python float
# known at compile time (an entry of an attribute, or a structural 0/1 of a joint's matrix).  The
# helpers below emit an op only when an operand is unknown, skip products with an exact 0 and
# multiply by ±1 as the identity/negation: a joint's sparse structure costs nothing at run time.

from ..types import FloatType  # noqa: E402
from . import arith  # noqa: E402
from . import mathimpl  # noqa: E402
from .mathimpl.dsl import E, Emitter  # noqa: E402

_F64 = FloatType(64)


class _Scalars:
    """Arithmetic on symbolic scalars of one element type (`el`), emitting into `em`."""

    def __init__(self, em: Emitter, el):
        self.em, self.el = em, el
        self.np = el.numpy

    def const(self, x) -> float:
        return float(self.np.type(x))

    def lift(self, a) -> E:
        return a if isinstance(a, E) else self.em.const(self.const(a), self.el, (1,))

    def mul(self, a, b, dense: bool = False):
        """a·b; `dense`: emit the product even when a constant factor is 0 or ±1."""
        if not isinstance(a, E) and not isinstance(b, E):
            return float(self.np.type(a) * self.np.type(b))
        if not dense:
            for k, other in ((a, b), (b, a)):
                if not isinstance(k, E):
                    if k == 0.0:
                        return 0.0
                    if k == 1.0:
                        return other
                    if k == -1.0:
                        return -other
        return self.lift(a) * self.lift(b)

    def add(self, a, b, dense: bool = False):
        if not isinstance(a, E) and not isinstance(b, E):
            return float(self.np.type(a) + self.np.type(b))
        if not dense:
            if not isinstance(a, E) and a == 0.0:
                return b
            if not isinstance(b, E) and b == 0.0:
                return a
        return self.lift(a) + self.lift(b)

    def sub(self, a, b, dense: bool = False):
        if not isinstance(a, E) and not isinstance(b, E):
            return float(self.np.type(a) - self.np.type(b))
        if not dense and not isinstance(b, E) and b == 0.0:
            return a
        if not dense and not isinstance(a, E) and a == 0.0:
            return -b
        return self.lift(a) - self.lift(b)

    def neg(self, a):
        return -a if isinstance(a, E) else -a

    def dot3(self, a, b, dense: bool = False):
        """(a0·b0 + a1·b1) + a2·b2, zero terms left out."""
        acc = None
        for x, y in zip(a, b):
            t = self.mul(x, y, dense)
            acc = t if acc is None else self.add(acc, t, dense)
        return acc

    def entries(self, v, n: int) -> list:
        """The n symbolic scalars of an operand: given as a list (values or constants, known to the
        caller), else extracted from the tensor value."""
        if isinstance(v, (list, tuple)):
            return [x if not isinstance(x, Value) else self.em.wrap(x) for x in v]
        return [v.extract(k) for k in range(n)] if n > 1 else [v]

    def join(self, xs: list) -> E:
        """One tensor<len(xs)xT> from symbolic scalars (constants become one constant op each)."""
        vals = [self.lift(x) for x in xs]
        if len(vals) == 1:
            return vals[0]
        return self.em.emit(arith.ConcatOp.build([x.v for x in vals]))


def _attr_pose(op, key: str = "origin"):
    a = op.attributes[key].values
    return [float(x) for x in np.asarray(a).reshape(POSE)]


def _rot(T):
    return [T[0:3], T[4:7], T[8:11]]


def _trans(T):
    return [T[3], T[7], T[11]]


def _pack(R, p):
    return [*R[0], p[0], *R[1], p[1], *R[2], p[2]]


def _matmul(S: _Scalars, A, B, dense: bool = False):
    return [[S.dot3(A[i], [B[0][j], B[1][j], B[2][j]], dense) for j in range(3)] for i in range(3)]


def compose_pose(S: _Scalars, A: list, B: list, dense: bool = False) -> list:
    """A·B on poses as 12 symbolic scalars (kin.compose's order)."""
    RA, RB = _rot(A), _rot(B)
    R = _matmul(S, RA, RB, dense)
    pB, pA = _trans(B), _trans(A)
    p = [S.add(S.dot3(RA[i], pB, dense), pA[i], dense) for i in range(3)]
    return _pack(R, p)


def _axis_vector(op) -> tuple[list[float], bool]:
    """(u, aligned): the unit axis and whether it is an aligned name."""
    a = op.attributes["axis"]
    if isinstance(a, StringAttr):
        k = "xyz".index(a.value[-1])
        u = [0.0, 0.0, 0.0]
        u[k] = -1.0 if a.value.startswith("-") else 1.0
        return u, True
    return [float(x) for x in a.values], False


def rotation_matrix(S: _Scalars, u: list[float], aligned: bool, s, c):
    """Rot(u, θ) from s = sin θ, c = cos θ: Rodrigues' matrix, every entry computed for a vector
    axis; for an aligned axis the constant row/column and the two sin/cos columns only."""
    ux, uy, uz = (S.const(x) for x in u)
    if aligned:
        k = [abs(x) for x in u].index(1.0)
        sign = u[k]
        ss = s if sign > 0 else S.neg(s)
        i, j = [(1, 2), (2, 0), (0, 1)][k]  # the plane of rotation: e_i -> e_j
        R = [[0.0] * 3 for _ in range(3)]
        R[k][k] = 1.0
        R[i][i], R[j][j] = c, c
        R[j][i], R[i][j] = ss, S.neg(ss)
        return R
    t = S.sub(1.0, c, dense=True)  # 1 - c
    uu = [[S.const(S.np.type(a) * S.np.type(b)) for b in (ux, uy, uz)] for a in (ux, uy, uz)]
    us = [S.mul(s, x, dense=True) for x in (ux, uy, uz)]
    R = [[None] * 3 for _ in range(3)]
    for i in range(3):
        for j in range(3):
            base = S.mul(uu[i][j], t, dense=True)
            if i == j:
                R[i][j] = S.add(base, c, dense=True)
                continue
            k = 3 - i - j
            # e_ijk = +1 for (i, j, k) cyclic: R_ij = u_i u_j t - e_ijk u_k s
            cyclic = (i, j, k) in ((0, 1, 2), (1, 2, 0), (2, 0, 1))
            R[i][j] = S.sub(base, us[k], dense=True) if cyclic else S.add(base, us[k], dense=True)
    return R


def _revolute(op, S: _Scalars, sc) -> list:
    s, c = S.entries(sc, 2)
    u, aligned = _axis_vector(op)
    M = rotation_matrix(S, u, aligned, s, c)
    C = _attr_pose(op)
    RC = [[S.const(x) for x in row] for row in _rot(C)]
    R = _matmul(S, RC, M)
    return _pack(R, [S.const(x) for x in _trans(C)])


def _prismatic(op, S: _Scalars, q: E) -> list:
    u, aligned = _axis_vector(op)
    v = [S.mul(q, S.const(x), dense=not aligned) for x in u]
    C = [S.const(x) for x in _attr_pose(op)]
    RC, pC = _rot(C), _trans(C)
    p = [S.add(pC[i], S.dot3(RC[i], v)) for i in range(3)]
    return _pack(RC, p)


def _jacobian_column(op, S: _Scalars, Tj: list, Tf: list) -> list:
    u, aligned = _axis_vector(op)
    Rj = _rot(Tj)
    z = [S.dot3(Rj[i], [S.const(x) for x in u], dense=not aligned) for i in range(3)]
    if op.attributes["kind"].value == "prismatic":
        return [*z, 0.0, 0.0, 0.0]
    pj, pf = _trans(Tj), _trans(Tf)
    d = [S.sub(pf[i], pj[i]) for i in range(3)]
    v = [S.sub(S.mul(z[(i + 1) % 3], d[(i + 2) % 3]), S.mul(z[(i + 2) % 3], d[(i + 1) % 3])) for i in range(3)]
    return [*v, *z]


def expand_kin(op, *xs, em: Emitter | None = None, entries: bool = False, dense: bool = True):
    """The `arith` ops computing kin op `op` on `xs` (per operand: an `E`, or a list of its
    symbolic scalars).  Returns an `E`, or with `entries` the result's symbolic scalars.
    `dense=False` (the lowering pass, which knows constant entries across ops) leaves out
    products with a constant 0 in `kin.compose` too."""
    from .math import CosOp, SinOp

    el = op.results[0].type.element
    em = em or (xs[0].em if xs and isinstance(xs[0], E) else Emitter((1,), op.location))
    S = _Scalars(em, el)
    result = _expand_entries(op, S, xs, CosOp, SinOp, dense)
    if entries:
        return result if isinstance(result, list) else S.entries(result, op.results[0].type.shape[0])
    return result if isinstance(result, E) else S.join(result)


def _expand_entries(op, S, xs, CosOp, SinOp, dense):
    em = S.em
    name = op.name
    if name == "kin.sincos":
        (a,) = S.entries(xs[0], 1)
        a = S.lift(a)
        s = em.emit(SinOp(operands=[a.v], result_types=[a.v.type]))
        c = em.emit(CosOp(operands=[a.v], result_types=[a.v.type]))
        return [s, c]
    if name == "kin.mimic":
        m, o = op.attributes["multiplier"].value, op.attributes["offset"].value
        (q,) = S.entries(xs[0], 1)
        return [S.lift(S.add(S.mul(S.lift(q), S.const(m), dense=True), S.const(o), dense=True))]
    if name == "kin.revolute":
        return _revolute(op, S, xs[0])
    if name == "kin.prismatic":
        (q,) = S.entries(xs[0], 1)
        return _prismatic(op, S, q)
    if name == "kin.fixed":
        C = [S.const(x) for x in _attr_pose(op)]
        return compose_pose(S, S.entries(xs[0], POSE), C)
    if name == "kin.compose":
        return compose_pose(S, S.entries(xs[0], POSE), S.entries(xs[1], POSE), dense=dense)
    if name == "kin.pose":
        return [*S.entries(xs[0], POSE), 0.0, 0.0, 0.0, 1.0]
    if name == "kin.jacobian_column":
        return _jacobian_column(op, S, S.entries(xs[0], POSE), S.entries(xs[1], POSE))
    if name == "kin.columns":
        cols = [S.entries(x, 6) for x in xs]
        return [cols[j][r] for r in range(6) for j in range(len(cols))]
    raise KeyError(name)


KIN_OPS = (SinCosOp, MimicOp, RevoluteOp, PrismaticOp, FixedOp, ComposeOp, PoseOp, JacobianColumnOp, ColumnsOp)


def expand(op, operands=None) -> tuple[list, object]:
    """(ops, result): the arith expansion of kin op `op` on `operands` (default: its own), as
    the `convert-kin-to-arith` pass inserts it."""
    operands = list(op.operands) if operands is None else list(operands)
    return mathimpl.expand(op, *operands)


# Every kin op expands into arith/math ops (registered with mathimpl, so every back-end lowers a
# kin op it is handed, and the interpreter runs the same ops).
for _cls in KIN_OPS:
    mathimpl.EXPANSIONS[_cls.name] = lambda op, *xs: expand_kin(op, *xs)


# ----- semantics (the interpreter) ----------------------------------------------------------------

from ..interpreter import interprets  # noqa: E402


@interprets(*KIN_OPS)
def _kin(op, args, it):
    ph, ops, out = mathimpl.expansion(op)
    return [it.run_ops(ops, {id(p): a for p, a in zip(ph, args)}, out)]
