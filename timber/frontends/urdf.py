"""URDF robot descriptions → forward kinematics as a `kin` module (`@predict`: the pose of the
end-effector; `@jacobian`: its geometric Jacobian).

The contract (README, "Robot forward kinematics"):

- Input row q: the independent movable joints (revolute, continuous, prismatic) that move the
  end-effector (or any of `frames`), in order from the root; a mimic joint contributes its ultimate
  source joint (through chains of mimics) where it first appears.  `joints="all"`: every
  independent movable joint in document order; or a list of joint names.  The module publishes
  them as `timber.feature_names`.
- Output row: T_base_ee, the row-major 4×4 pose of the end-effector link frame in the base link
  frame (16 values; one block of 16 per link of `frames`).
- base: the unique root link, or `base=` (an ancestor).  ee: `ee=`; else the only leaf; else the
  leaf with the most non-fixed joints on its path, ties broken by more joints, then document order
  (with a warning naming the tied leaves).
- A joint: child = parent · Trans(xyz) · Rz(yaw)·Ry(pitch)·Rx(roll) · M(q), M the rotation by q
  about the normalised axis or the translation q·axis; axis (1, 0, 0) and identity origin by
  default; mimic q = multiplier·q_src + offset.  Only direct `<joint>`/`<link>` children of
  `<robot>` count.

Parsing refuses DTDs with entities and external references (defusedxml) and files over
`MAX_BYTES`; every error names the file and the element.
"""

from __future__ import annotations

import math
import os
import warnings
from dataclasses import dataclass, field

import numpy as np

import ir.dialects  # noqa: F401  (registers every op)
from ir.attributes import ArrayAttr, FloatAttr, StringAttr
from ir.diagnostics import NameLoc, TimberError
from ir.dialects import arith, func, kin
from ir.dialects.builtin import ModuleOp
from ir.types import FloatType, TensorType
from ir.verifier import verify

MAX_BYTES = 32 * 1024 * 1024  # no real robot description comes near this
MOVABLE = ("revolute", "continuous", "prismatic")
JOINT_TYPES = (*MOVABLE, "fixed", "floating", "planar")
DTYPES = {"f64": FloatType(64), "f32": FloatType(32)}


@dataclass
class Joint:
    name: str
    type: str
    parent: str
    child: str
    xyz: tuple = (0.0, 0.0, 0.0)
    rpy: tuple = (0.0, 0.0, 0.0)
    axis: tuple = (1.0, 0.0, 0.0)  # normalised
    mimic: tuple | None = None  # (source joint, multiplier, offset)
    lower: float | None = None
    upper: float | None = None
    index: int = 0  # document order among joints


@dataclass
class Robot:
    """A parsed URDF: its links in document order and its joints by name."""

    name: str
    source: str
    links: list[str]
    joints: dict[str, Joint]
    parent_joint: dict[str, Joint] = field(default_factory=dict)  # child link -> joint
    root: str = ""

    def where(self, elem: str) -> NameLoc:
        return NameLoc(self.source, elem)

    def path(self, link: str, base: str | None = None) -> list[Joint]:
        """The joints from `base` (default the root) down to `link`, in order."""
        out = []
        while link != (base or self.root):
            j = self.parent_joint.get(link)
            if j is None:
                raise TimberError(
                    f"base '{base}' is not an ancestor of link '{out[0].child if out else link}'", self.where(f'<link name="{base}">')
                )
            out.append(j)
            link = j.parent
        return out[::-1]

    def leaves(self) -> list[str]:
        parents = {j.parent for j in self.joints.values()}
        return [link for link in self.links if link not in parents]

    def source_of(self, j: Joint) -> tuple[Joint, list[Joint]]:
        """The ultimate (non-mimic) source of joint j and the chain of mimics from it to j."""
        chain = []
        while j.mimic is not None:
            chain.append(j)
            j = self.joints[j.mimic[0]]
        return j, chain[::-1]


# ----- parsing ---------------------------------------------------------------------------------------


def _read(model, source_name: str | None) -> tuple[bytes, str]:
    if isinstance(model, bytes):
        data, name = model, source_name or "<urdf>"
    elif isinstance(model, str) and model.lstrip().startswith("<"):
        data, name = model.encode("utf-8"), source_name or "<urdf>"
    elif isinstance(model, (str, os.PathLike)):
        path = os.fspath(model)
        name = source_name or os.path.basename(path)
        try:
            size = os.path.getsize(path)
            if size > MAX_BYTES:
                raise TimberError(f"the file is {size} bytes; URDF files over {MAX_BYTES} bytes are refused", NameLoc(name, ""))
            with open(path, "rb") as fh:
                data = fh.read(MAX_BYTES + 1)
        except OSError as e:
            raise TimberError(f"cannot read {path}: {e.strerror}", NameLoc(name, "")) from None
    else:
        raise TimberError(f"a URDF model is a path, XML text or bytes; found {type(model).__name__}")
    if len(data) > MAX_BYTES:
        raise TimberError(f"the file is over {MAX_BYTES} bytes; larger URDF files are refused", NameLoc(name, ""))
    return data, name


def _parse_xml(data: bytes, name: str):
    import xml.etree.ElementTree as ET

    try:
        import defusedxml.ElementTree as DET
        from defusedxml import DefusedXmlException
    except ImportError:  # pragma: no cover - defusedxml is a dependency
        raise TimberError("reading URDF needs the defusedxml package (pip install defusedxml)", NameLoc(name, "")) from None
    try:
        return DET.fromstring(data, forbid_dtd=False, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as e:
        raise TimberError(f"XML entity declarations and external references are not supported ({e})", NameLoc(name, "")) from None
    except ET.ParseError as e:
        line, col = getattr(e, "position", (0, 0))
        raise TimberError(
            f"malformed XML at line {line}, column {col + 1}: {e.msg if hasattr(e, 'msg') else e}", NameLoc(name, "")
        ) from None


def _elem_name(tag: str, e) -> str:
    n = e.get("name")
    return f'<{tag} name="{n}">' if n is not None else f"<{tag}>"


def _vector(robot_src: str, where: str, e, attr: str, default: tuple, n: int = 3) -> tuple:
    if e is None or e.get(attr) is None:
        return default
    text = e.get(attr)
    parts = text.split()
    if len(parts) != n:
        raise TimberError(f"{e.tag} {attr} has {len(parts)} components, expected {n} (found '{text}')", NameLoc(robot_src, where))
    try:
        vals = tuple(float(x) for x in parts)
    except ValueError:
        raise TimberError(f"{e.tag} {attr} is not {n} numbers: '{text}'", NameLoc(robot_src, where)) from None
    if not all(math.isfinite(v) for v in vals):
        raise TimberError(f"{e.tag} {attr} must be finite, found '{text}'", NameLoc(robot_src, where))
    return vals


def _number(src: str, where: str, e, attr: str, default: float | None) -> float | None:
    if e is None or e.get(attr) is None:
        return default
    try:
        v = float(e.get(attr))
    except ValueError:
        raise TimberError(f"{e.tag} {attr} is not a number: '{e.get(attr)}'", NameLoc(src, where)) from None
    if not math.isfinite(v):
        raise TimberError(f"{e.tag} {attr} must be finite, found '{e.get(attr)}'", NameLoc(src, where))
    return v


def parse(data: bytes, source: str) -> Robot:
    """Parse and check a URDF document (the structure; the path checks come with the options)."""
    root = _parse_xml(data, source)
    if root.tag != "robot":
        raise TimberError(f"the root element is <{root.tag}>, expected <robot>", NameLoc(source, ""))
    links: list[str] = []
    for e in root.findall("link"):
        n = e.get("name")
        if not n:
            raise TimberError("a <link> has no name", NameLoc(source, "<link>"))
        if n in links:
            raise TimberError("link name declared twice", NameLoc(source, f'<link name="{n}">'))
        links.append(n)
    joints: dict[str, Joint] = {}
    for i, e in enumerate(root.findall("joint")):
        where = _elem_name("joint", e)
        n = e.get("name")
        if not n:
            raise TimberError("a <joint> has no name", NameLoc(source, where))
        if n in joints:
            raise TimberError("joint name declared twice", NameLoc(source, where))
        t = e.get("type")
        if t not in JOINT_TYPES:
            raise TimberError(f"joint type '{t}' is not a URDF joint type; known: {', '.join(JOINT_TYPES)}", NameLoc(source, where))
        ends = {}
        for k in ("parent", "child"):
            el = e.find(k)
            if el is None or not el.get("link"):
                raise TimberError(f"joint has no <{k} link=...>", NameLoc(source, where))
            if el.get("link") not in links:
                raise TimberError(f"{k} link '{el.get('link')}' is not a <link> of the robot", NameLoc(source, where))
            ends[k] = el.get("link")
        o = e.find("origin")
        xyz = _vector(source, where, o, "xyz", (0.0, 0.0, 0.0))
        rpy = _vector(source, where, o, "rpy", (0.0, 0.0, 0.0))
        axis = _vector(source, where, e.find("axis"), "xyz", (1.0, 0.0, 0.0))
        if t in MOVABLE or t == "planar":
            norm = math.sqrt(sum(a * a for a in axis))
            if norm == 0.0:
                raise TimberError("axis is zero; a joint axis must have a direction", NameLoc(source, where))
            axis = tuple(a / norm for a in axis)
        mimic = None
        m = e.find("mimic")
        if m is not None:
            if not m.get("joint"):
                raise TimberError("mimic has no joint attribute", NameLoc(source, where))
            mimic = (m.get("joint"), _number(source, where, m, "multiplier", 1.0), _number(source, where, m, "offset", 0.0))
        lim = e.find("limit")
        lower = _number(source, where, lim, "lower", None)
        upper = _number(source, where, lim, "upper", None)
        joints[n] = Joint(n, t, ends["parent"], ends["child"], xyz, rpy, axis, mimic, lower, upper, i)
    robot = Robot(root.get("name") or "", source, links, joints)
    for j in joints.values():
        other = robot.parent_joint.get(j.child)
        if other is not None:
            raise TimberError(
                f"link '{j.child}' is the child of joints '{other.name}' and '{j.name}'", robot.where(_elem_name("joint", _Named(j.name)))
            )
        robot.parent_joint[j.child] = j
    roots = [link for link in links if link not in robot.parent_joint]
    if not links:
        raise TimberError("the robot has no links", NameLoc(source, "<robot>"))
    if len(roots) > 1:
        raise TimberError(
            f"the robot has {len(roots)} root links (no joint's child): {', '.join(roots)}; expected one", NameLoc(source, "<robot>")
        )
    if not roots:
        raise TimberError("the joints form a cycle: every link is some joint's child", NameLoc(source, "<robot>"))
    robot.root = roots[0]
    for link in links:  # every link must reach the root: otherwise it sits on a cycle
        seen, cur = [], link
        while cur != robot.root:
            if cur in seen:
                cyc = [robot.parent_joint[x].name for x in seen[seen.index(cur) :]]
                raise TimberError(f"the joints form a cycle: {' -> '.join(cyc)}", robot.where(f'<joint name="{cyc[0]}">'))
            seen.append(cur)
            cur = robot.parent_joint[cur].parent
    for j in joints.values():
        if j.mimic is None:
            continue
        seen = [j.name]
        cur = j
        while cur.mimic is not None:
            src = joints.get(cur.mimic[0])
            where = robot.where(f'<joint name="{cur.name}">')
            if src is None:
                raise TimberError(f"mimic of unknown joint '{cur.mimic[0]}'", where)
            if src.type not in MOVABLE:
                raise TimberError(
                    f"mimic of joint '{src.name}', a {src.type} joint; a mimic follows a revolute, continuous or prismatic joint", where
                )
            if src.name in seen:
                raise TimberError(f"mimic joints form a cycle: {' -> '.join(seen + [src.name])}", robot.where(f'<joint name="{j.name}">'))
            seen.append(src.name)
            cur = src
    return robot


class _Named:
    def __init__(self, name: str):
        self.name = name

    def get(self, key: str):
        return self.name if key == "name" else None


# ----- what to compute ---------------------------------------------------------------------------------


def choose_ee(robot: Robot) -> str:
    """The default end-effector: the only leaf, else the leaf with the most non-fixed joints on its
    path (ties: more joints, then document order; a warning names the tied leaves)."""
    leaves = robot.leaves()
    if len(leaves) == 1:
        return leaves[0]

    def score(link):
        path = robot.path(link)
        return (sum(j.type != "fixed" for j in path), len(path))

    best = max(score(link) for link in leaves)
    tied = [link for link in leaves if score(link) == best]
    if len(tied) > 1:
        warnings.warn(
            f"{robot.source}: {len(tied)} leaf links tie as the end-effector ({', '.join(tied)}); using '{tied[0]}' (pass ee= to choose)",
            stacklevel=3,
        )
    return tied[0]


def _check_link(robot: Robot, link, what: str) -> str:
    if not isinstance(link, str) or link not in robot.links:
        leaves = ", ".join(robot.leaves())
        raise TimberError(f"{what} '{link}' is not a link of the robot (its leaf links: {leaves})", robot.where(f"{what}={link!r}"))
    return link


def _independent(robot: Robot) -> list[Joint]:
    return [j for j in robot.joints.values() if j.type in MOVABLE and j.mimic is None]


def input_joints(robot: Robot, paths: list[list[Joint]], joints) -> list[str]:
    """The input joints' names (see the module docstring)."""
    needed: list[str] = []
    for path in paths:
        for j in path:
            if j.type in ("floating", "planar"):
                raise TimberError(
                    f"a {j.type} joint is on the path from the base to the end-effector; supported: revolute, continuous, prismatic, fixed",
                    robot.where(f'<joint name="{j.name}">'),
                )
            if j.type in MOVABLE:
                src = robot.source_of(j)[0].name
                if src not in needed:
                    needed.append(src)
    if joints is None:
        return needed
    if isinstance(joints, str):
        if joints != "all":
            raise TimberError(f"joints must be None, \"all\" or a list of joint names; found '{joints}'", robot.where("joints="))
        return [j.name for j in _independent(robot)]
    names = list(joints)
    indep = {j.name for j in _independent(robot)}
    for n in names:
        if n not in indep:
            kind = robot.joints[n].type if n in robot.joints else None
            why = (
                "not a joint of the robot"
                if kind is None
                else ("a mimic joint" if n in robot.joints and robot.joints[n].mimic else f"a {kind} joint")
            )
            raise TimberError(
                f"joints lists '{n}', {why}; inputs are independent revolute, continuous or prismatic joints", robot.where("joints=")
            )
    if len(set(names)) != len(names):
        raise TimberError("joints lists a joint twice", robot.where("joints="))
    missing = [n for n in needed if n not in names]
    if missing:
        raise TimberError(f"joints leaves out {', '.join(missing)}, which move the end-effector", robot.where("joints="))
    return names


def origin_pose(xyz, rpy) -> np.ndarray:
    """Trans(xyz)·Rz(yaw)·Ry(pitch)·Rx(roll) as 12 doubles (rows of R and p)."""
    r, p, y = rpy
    sr, cr, sp, cp, sy, cy = math.sin(r), math.cos(r), math.sin(p), math.cos(p), math.sin(y), math.cos(y)
    R = [
        [cy * cp, cy * sp * sr - sy * cr, cy * sp * cr + sy * sr],
        [sy * cp, sy * sp * sr + cy * cr, sy * sp * cr - cy * sr],
        [-sp, cp * sr, cp * cr],
    ]
    return np.array([*R[0], xyz[0], *R[1], xyz[1], *R[2], xyz[2]], np.float64)


# ----- the module ----------------------------------------------------------------------------------------


class _Builder:
    """Emits the kin ops of one function: the pose of every link asked for, each joint once."""

    def __init__(self, robot: Robot, block, inputs: list[str], el):
        self.robot, self.block, self.el = robot, block, el
        self.q = block.args[0]
        self.inputs = inputs
        self.pose: dict[str, object] = {}  # link -> value (None: the base itself)
        self.qval: dict[str, object] = {}  # joint -> its position value
        self.sincos: dict[str, object] = {}  # joint -> (sin, cos) value
        self.joint_pose: dict[str, object] = {}  # joint -> its child link's pose

    def add(self, op):
        self.block.add_op(op)
        return op.results[0]

    def position(self, j: Joint):
        """The value of joint j's position (an input, or its mimic formula)."""
        if j.name in self.qval:
            return self.qval[j.name]
        one = TensorType((1,), self.el)
        if j.mimic is None:
            k = self.inputs.index(j.name)
            v = self.add(arith.ExtractOp.build(self.q, k, name=f"q_{_ident(j.name)}"))
        else:
            src = self.position(self.robot.joints[j.mimic[0]])
            attrs = {"multiplier": FloatAttr(j.mimic[1], self.el), "offset": FloatAttr(j.mimic[2], self.el), "joint": StringAttr(j.name)}
            v = self.add(kin.MimicOp.make([src], one, name=f"q_{_ident(j.name)}", **attrs))
        self.qval[j.name] = v
        return v

    def link_pose(self, link: str, base: str):
        """The value of `link`'s pose in the base frame (None for the base itself)."""
        if link == base:
            return None
        if link in self.pose:
            return self.pose[link]
        j = self.robot.parent_joint[link]
        parent = self.link_pose(j.parent, base)
        origin = kin.dense_pose(origin_pose(j.xyz, j.rpy), self.el)
        pt = kin.pose_type(self.el)
        name = _ident(link)
        attrs = {"origin": origin, "joint": StringAttr(j.name)}
        if j.type == "fixed":
            if parent is None:
                v = self.add(arith.ConstantOp.build(origin.values, pt, name=name))
            else:
                v = self.add(kin.FixedOp.make([parent], pt, name=name, **attrs))
        else:
            attrs["axis"] = kin.axis_attr(j.axis)
            q = self.position(j)
            if j.type == "prismatic":
                local = self.add(kin.PrismaticOp.make([q], pt, name=f"{name}_local", **attrs))
            else:
                sc = self.sincos.get(j.name)
                if sc is None:
                    sc = self.sincos[j.name] = self.add(kin.SinCosOp.make([q], TensorType((2,), self.el), name=f"sc_{_ident(j.name)}"))
                local = self.add(kin.RevoluteOp.make([sc], pt, name=f"{name}_local", **attrs))
            v = local if parent is None else self.add(kin.ComposeOp.make([parent, local], pt, name=name))
            self.joint_pose[j.name] = v
        self.pose[link] = v
        return v

    def identity(self):
        return self.add(arith.ConstantOp.build(origin_pose((0, 0, 0), (0, 0, 0)), kin.pose_type(self.el), name="identity"))


def _ident(name: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in name)


def _predict(module, robot, inputs, frames, base, el):
    n = len(inputs)
    f = func.FuncOp.build("predict", [TensorType((n,), el)], [TensorType((16 * len(frames),), el)], arg_names=["q"])
    module.body.add_op(f)
    b = _Builder(robot, f.body, inputs, el)
    outs = []
    for link in frames:
        T = b.link_pose(link, base)
        T = b.identity() if T is None else T
        outs.append(b.add(kin.PoseOp.make([T], TensorType((16,), el), name=f"T_{_ident(link)}")))
    out = outs[0] if len(outs) == 1 else b.add(arith.ConcatOp.build(outs, name="poses"))
    f.body.add_op(func.ReturnOp(operands=[out]))


def _jacobian(module, robot, inputs, frames, base, el):
    n = len(inputs)
    f = func.FuncOp.build("jacobian", [TensorType((n,), el)], [TensorType((6 * n * len(frames),), el)], arg_names=["q"])
    module.body.add_op(f)
    b = _Builder(robot, f.body, inputs, el)
    col_t = TensorType((6,), el)
    blocks = []
    for link in frames:
        Tf = b.link_pose(link, base)
        cols: dict[str, object] = {}
        for j in robot.path(link, base):
            if j.type not in MOVABLE:
                continue
            Tj = b.joint_pose[j.name]
            c = b.add(
                kin.JacobianColumnOp.make(
                    [Tj, Tf],
                    col_t,
                    name=f"J_{_ident(j.name)}",
                    axis=kin.axis_attr(j.axis),
                    kind=StringAttr("prismatic" if j.type == "prismatic" else "revolute"),
                    joint=StringAttr(j.name),
                )
            )
            src, chain = robot.source_of(j)
            scale = 1.0
            for m in chain:  # d q_j / d q_src through the chain of mimics
                scale *= m.mimic[1]
            if scale != 1.0:
                k = b.add(arith.ConstantOp.build(np.full(6, scale), col_t))
                c = b.add(arith.MulFOp.build(c, k))
            cols[src.name] = c if src.name not in cols else b.add(arith.AddFOp.build(cols[src.name], c))
        zero = None
        ordered = []
        for name in inputs:
            if name not in cols:
                zero = zero or b.add(arith.ConstantOp.build(np.zeros(6), col_t, name="zero_column"))
            ordered.append(cols.get(name, zero))
        blocks.append(b.add(kin.ColumnsOp.make(ordered, TensorType((6 * n,), el), name=f"J_{_ident(link)}")))
    out = blocks[0] if len(blocks) == 1 else b.add(arith.ConcatOp.build(blocks, name="jacobians"))
    f.body.add_op(func.ReturnOp(operands=[out]))


def load(
    model,
    *,
    ee: str | None = None,
    base: str | None = None,
    joints=None,
    frames=None,
    jacobian: bool = True,
    dtype: str = "f64",
    source_name: str | None = None,
) -> ModuleOp:
    """Compile a URDF robot description to a verified Timber module.

    `@predict(q)` returns the pose of the end-effector link in the base link frame (row-major 4×4,
    16 values; with `frames=[link, ...]`, 16 per frame); `@jacobian(q)` (unless `jacobian=False`)
    its geometric Jacobian in the base frame at the frame's origin, row-major 6×n per frame.
    Options: `ee`, `base` (link names), `joints` (None: those moving the end-effector; "all"; or a
    list of names), `frames`, `dtype` ("f64" or "f32": compute in float32 for FPU-less targets).
    Raises `TimberError` naming the file and the element for anything malformed or unsupported."""
    data, name = _read(model, source_name)
    if dtype not in DTYPES:
        raise TimberError(f"dtype must be one of {', '.join(DTYPES)}, found {dtype!r}", NameLoc(name, "dtype="))
    el = DTYPES[dtype]
    robot = parse(data, name)
    base = robot.root if base is None else _check_link(robot, base, "base")
    if frames is not None:
        if isinstance(frames, str) or not frames:
            raise TimberError("frames must be a non-empty list of link names", NameLoc(name, "frames="))
        if ee is not None:
            raise TimberError("give ee= or frames=, not both", NameLoc(name, "frames="))
        frames = [_check_link(robot, f, "frame") for f in frames]
    else:
        ee = choose_ee(robot) if ee is None else _check_link(robot, ee, "ee")
        frames = [ee]
    paths = [robot.path(f, base) for f in frames]
    inputs = input_joints(robot, paths, joints)
    if not inputs and jacobian:
        jacobian = False  # nothing moves the frames: the Jacobian has no columns
    module = ModuleOp.build(
        {
            "timber.format": StringAttr("urdf"),
            "timber.source": StringAttr(name),
            "timber.robot": StringAttr(robot.name),
            "timber.base": StringAttr(base),
            "timber.frames": ArrayAttr([StringAttr(f) for f in frames]),
            "timber.feature_names": ArrayAttr([StringAttr(j) for j in inputs]),
        }
    )
    if not inputs:
        raise TimberError(f"nothing moves {', '.join(frames)} relative to '{base}': no movable joint on the path", NameLoc(name, ""))
    _predict(module, robot, inputs, frames, base, el)
    if jacobian:
        _jacobian(module, robot, inputs, frames, base, el)
    verify(module)
    return module


def joint_names(module: ModuleOp) -> list[str]:
    """The input joints of a URDF module, in input order."""
    return [a.value for a in module.attributes["timber.feature_names"]]


def jacobian(model, Q, n_jobs: int | None = None) -> np.ndarray:
    """The geometric Jacobian(s) of a compiled URDF model (`timber.compile(..., jacobian=True)`)
    at configurations Q (n, n_joints): shape (n, 6, n_joints), or (n, k, 6, n_joints) for k frames."""
    entry = model.lowered.export(f"{model.prefix}infer_jacobian")
    if entry is None:
        raise TimberError("this model has no @jacobian function (compile the URDF with jacobian=True)")
    X = model._rows(Q, entry)
    out = np.empty((X.shape[0], entry.n_outputs), entry.out_dtype)
    if X.shape[0]:
        model._run(entry, X, out, n_jobs if n_jobs is not None else model.n_jobs)
    nq = entry.n_inputs
    k = entry.n_outputs // (6 * nq)
    return out.reshape(X.shape[0], 6, nq) if k == 1 else out.reshape(X.shape[0], k, 6, nq)
