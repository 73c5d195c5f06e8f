"""Pinocchio as the reference for forward kinematics (tests only; `pip install pin`).

`Reference(path, inputs, frames)` builds Pinocchio's model of a URDF and evaluates, for rows of
Timber's input vector q (the joints named `inputs`, in order), the link poses (`oMf[frame]`) and
frame Jacobians (`LOCAL_WORLD_ALIGNED`).  Mimic joints get `multiplier·q_src + offset` explicitly
(through chains of mimics); a mimic joint's Jacobian column is added, times d q_mimic / d q_src,
to its source's column, as Timber's input has one entry per independent joint.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET

import numpy as np

pin = None


def available() -> bool:
    global pin
    try:
        import pinocchio

        pin = pinocchio
        return True
    except ImportError:
        return False


class Reference:
    def __init__(self, path: str, inputs: list[str], frames: list[str]):
        available()
        root = ET.parse(path).getroot()  # re-serialised: urdfdom rejects tabs that XML normalises
        self.model = pin.buildModelFromXML(ET.tostring(root, encoding="unicode"))
        self.data = self.model.createData()
        self.inputs = inputs
        self.frames = [self.model.getFrameId(f, pin.BODY) for f in frames]
        self.mimic = {}
        for j in root.findall("joint"):
            m = j.find("mimic")
            if m is not None:
                self.mimic[j.get("name")] = (m.get("joint"), float(m.get("multiplier", "1")), float(m.get("offset", "0")))
        self.jid = {name: i for i, name in enumerate(self.model.names)}

    def _value(self, name: str, given: dict) -> float:
        if name in given:
            return given[name]
        src, m, o = self.mimic[name]
        return m * self._value(src, given) + o

    def _scale(self, name: str) -> tuple[str, float]:
        s = 1.0
        while name in self.mimic:
            src, m, _ = self.mimic[name]
            s *= m
            name = src
        return name, s

    def configuration(self, row) -> np.ndarray:
        given = {n: float(v) for n, v in zip(self.inputs, row)}
        q = pin.neutral(self.model)
        for i in range(1, self.model.njoints):
            name = self.model.names[i]
            jm = self.model.joints[i]
            if jm.nq == 0:
                continue
            try:
                v = self._value(name, given)
            except KeyError:
                continue  # a joint that moves none of the frames
            if jm.nq == 2:  # continuous: (cos, sin)
                q[jm.idx_q], q[jm.idx_q + 1] = math.cos(v), math.sin(v)
            else:
                q[jm.idx_q] = v
        return q

    def poses(self, Q) -> np.ndarray:
        """(n, 16·k): the row-major 4×4 pose of every frame."""
        out = []
        for row in np.asarray(Q, np.float64):
            pin.forwardKinematics(self.model, self.data, self.configuration(row))
            blocks = []
            for f in self.frames:
                pin.updateFramePlacement(self.model, self.data, f)
                blocks.append(self.data.oMf[f].homogeneous.reshape(-1))
            out.append(np.concatenate(blocks))
        return np.array(out)

    def jacobians(self, Q) -> np.ndarray:
        """(n, 6·nq·k): the row-major 6×nq Jacobian of every frame, one column per input."""
        nq = len(self.inputs)
        out = []
        for row in np.asarray(Q, np.float64):
            q = self.configuration(row)
            pin.computeJointJacobians(self.model, self.data, q)
            pin.updateFramePlacements(self.model, self.data)
            blocks = []
            for f in self.frames:
                J = pin.getFrameJacobian(self.model, self.data, f, pin.LOCAL_WORLD_ALIGNED)
                mine = np.zeros((6, nq))
                for i in range(1, self.model.njoints):
                    jm = self.model.joints[i]
                    if jm.nv != 1:
                        continue
                    src, s = self._scale(self.model.names[i])
                    if src in self.inputs:
                        mine[:, self.inputs.index(src)] += s * J[:, jm.idx_v]
                blocks.append(mine.reshape(-1))
            out.append(np.concatenate(blocks))
        return np.array(out)


def limits(path: str, inputs: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Each input joint's (lower, upper), ±π for joints without limits."""
    root = ET.parse(path).getroot()
    lo, hi = [], []
    by = {j.get("name"): j for j in root.findall("joint")}
    for n in inputs:
        lim = by[n].find("limit")
        a = float(lim.get("lower", "nan")) if lim is not None else math.nan
        b = float(lim.get("upper", "nan")) if lim is not None else math.nan
        if not (math.isfinite(a) and math.isfinite(b)) or a >= b:
            a, b = -math.pi, math.pi
        lo.append(a)
        hi.append(b)
    return np.array(lo), np.array(hi)
