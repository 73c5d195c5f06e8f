"""The URDF front-end's contract (README, "Robot forward kinematics"): input order, defaults,
options, and every construct it refuses, each with a clear error naming the element.

These run the front-end and the IR interpreter only (no compilation): cheap."""

from __future__ import annotations

import time
import warnings
from pathlib import Path

import numpy as np
import pytest

from ir.diagnostics import TimberError
from ir.interpreter import run
from ir.parser import parse_module
from ir.printer import print_op
from ir.verifier import verify
from timber.frontends import urdf

pytest.importorskip("defusedxml")

CORPUS = Path(__file__).resolve().parents[3] / "shared" / "corpus" / "urdf"
needs_corpus = pytest.mark.skipif(not CORPUS.is_dir(), reason="../shared/corpus/urdf is absent")


def robot(joints: str, links=("base", "a", "b", "c")) -> bytes:
    body = "".join(f'<link name="{n}"/>' for n in links)
    return f'<?xml version="1.0"?><robot name="t">{body}{joints}</robot>'.encode()


def joint(name, parent, child, type="revolute", axis="0 0 1", extra="") -> str:
    ax = f'<axis xyz="{axis}"/>' if axis is not None else ""
    return f'<joint name="{name}" type="{type}"><parent link="{parent}"/><child link="{child}"/>{ax}{extra}</joint>'


CHAIN = joint("j1", "base", "a") + joint("j2", "a", "b", "prismatic", "1 0 0") + joint("j3", "b", "c", "fixed")


def error_of(data, **options) -> str:
    with pytest.raises(TimberError) as e:
        urdf.load(data, source_name="robot.urdf", **options)
    return str(e.value)


# ----- what is computed ---------------------------------------------------------------------------


def test_pose_is_the_row_major_matrix_of_parent_origin_times_motion():
    """child = parent · Trans(xyz)·Rz·Ry·Rx · M(q): checked against matrices written out here."""
    xml = robot(
        joint("j1", "base", "a", extra='<origin xyz="0.1 0.2 0.3" rpy="0.4 -0.5 0.6"/>')
        + joint("j2", "a", "b", "prismatic", "0 2 0", extra='<origin xyz="0 0 1"/>'),
        links=("base", "a", "b"),
    )
    m = urdf.load(xml)

    def rx(t):
        c, s = np.cos(t), np.sin(t)
        return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])

    def rz(t):
        c, s = np.cos(t), np.sin(t)
        return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])

    def ry(t):
        c, s = np.cos(t), np.sin(t)
        return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])

    def h(R=np.eye(3), p=(0, 0, 0)):
        M = np.eye(4)
        M[:3, :3], M[:3, 3] = R, p
        return M

    for q1, q2 in [(0.3, -0.2), (-2.0, 0.7), (1e3, 5.0)]:
        want = h(rz(0.6) @ ry(-0.5) @ rx(0.4), (0.1, 0.2, 0.3)) @ h(rz(q1)) @ h(p=(0, 0, 1)) @ h(p=(0, q2, 0))
        got = run(m, np.array([[q1, q2]])).reshape(4, 4)
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)
    assert urdf.joint_names(m) == ["j1", "j2"]


def test_defaults_axis_x_and_identity_origin():
    m = urdf.load(robot(joint("j1", "base", "a", axis=None), links=("base", "a")))
    q = 0.7
    got = run(m, np.array([[q]])).reshape(4, 4)
    want = np.array([[1, 0, 0, 0], [0, np.cos(q), -np.sin(q), 0], [0, np.sin(q), np.cos(q), 0], [0, 0, 0, 1]])
    np.testing.assert_allclose(got, want, atol=1e-15)


def test_axis_is_normalised():
    a = urdf.load(robot(joint("j1", "base", "a", axis="0 0 7"), links=("base", "a")))
    b = urdf.load(robot(joint("j1", "base", "a", axis="0 0 1"), links=("base", "a")))
    q = np.array([[0.3], [-2.5]])
    np.testing.assert_array_equal(run(a, q), run(b, q))


def test_mimic_contributes_its_ultimate_source_where_it_first_appears():
    # j_m2 mimics j_m1, which mimics j_src (off the path): j_src enters at j_m2's place
    xml = robot(
        joint("j_src", "base", "side")
        + joint("j1", "base", "a")
        + joint("j_m1", "a", "b", extra='<mimic joint="j_src" multiplier="2" offset="0.1"/>')
        + joint("j_m2", "b", "c", extra='<mimic joint="j_m1" multiplier="-0.5" offset="0.3"/>'),
        links=("base", "a", "b", "c", "side"),
    )
    m = urdf.load(xml, ee="c")
    assert urdf.joint_names(m) == ["j1", "j_src"]
    s = 0.4
    plain = urdf.load(robot(joint("j1", "base", "a") + joint("x", "a", "b") + joint("y", "b", "c")), ee="c")
    qm1 = 2 * s + 0.1
    got = run(m, np.array([[0.25, s]]))
    want = run(plain, np.array([[0.25, qm1, -0.5 * qm1 + 0.3]]))
    np.testing.assert_array_equal(got, want)


def test_joints_all_and_explicit_lists():
    xml = robot(joint("j1", "base", "a") + joint("jside", "base", "b") + joint("j2", "a", "c"))
    assert urdf.joint_names(urdf.load(xml, ee="c")) == ["j1", "j2"]
    m = urdf.load(xml, ee="c", joints="all")
    assert urdf.joint_names(m) == ["j1", "jside", "j2"]  # document order
    m2 = urdf.load(xml, ee="c", joints=["j2", "jside", "j1"])
    q = np.array([[0.1, 0.2, 0.3]])
    np.testing.assert_array_equal(run(m, q), run(m2, q[:, [2, 1, 0]]))
    J = run(m, q, "jacobian").reshape(6, 3)
    assert not J[:, 1].any()  # a joint that does not move the end-effector: a zero column
    assert "leaves out j2" in error_of(xml, ee="c", joints=["j1"])
    assert "'j9', not a joint" in error_of(xml, ee="c", joints=["j1", "j2", "j9"])


def test_default_ee_only_leaf_then_most_movable_joints_then_document_order():
    # leaves: c (2 movable), b (1 movable + 1 fixed): c wins
    xml = robot(
        joint("j1", "base", "a") + joint("j2", "a", "c") + joint("f", "base", "x", "fixed") + joint("j3", "x", "b"),
        links=("base", "a", "b", "c", "x"),
    )
    assert [a.value for a in urdf.load(xml).attributes["timber.frames"]] == ["c"]
    # a tie on both counts: document order, with a warning naming the tied leaves
    tie = robot(joint("j1", "base", "a") + joint("j2", "base", "b"), links=("base", "b", "a"))
    with pytest.warns(UserWarning, match="tie as the end-effector .*b, a"):
        m = urdf.load(tie)
    assert [a.value for a in m.attributes["timber.frames"]] == ["b"]


def test_base_option_gives_the_pose_relative_to_an_ancestor():
    m_root = urdf.load(robot(CHAIN), ee="c")
    m_a = urdf.load(robot(CHAIN), ee="c", base="a")
    assert urdf.joint_names(m_a) == ["j2"]
    q1, q2 = 0.4, 0.25
    T_root = run(m_root, np.array([[q1, q2]])).reshape(4, 4)
    T_a = run(m_a, np.array([[q2]])).reshape(4, 4)
    T_root_a = run(urdf.load(robot(CHAIN), ee="a", jacobian=False), np.array([[q1]])).reshape(4, 4)
    np.testing.assert_allclose(T_root_a @ T_a, T_root, atol=1e-15)
    assert "not an ancestor" in error_of(robot(CHAIN), ee="a", base="c")


def test_frames_give_one_block_of_16_per_link():
    m = urdf.load(robot(CHAIN), frames=["a", "c", "base"])
    q = np.array([[0.4, 0.25]])
    out = run(m, q)
    assert out.shape == (1, 48)
    for k, link in enumerate(["a", "c"]):
        one = urdf.load(robot(CHAIN), ee=link, jacobian=False)
        np.testing.assert_array_equal(out[:, 16 * k : 16 * k + 16], run(one, q[:, : len(urdf.joint_names(one))]))
    np.testing.assert_array_equal(out[0, 32:], np.eye(4).reshape(-1))  # the base in its own frame
    assert run(m, q, "jacobian").shape == (1, 3 * 6 * 2)


def test_transmission_joints_are_not_joints():
    xml = robot(CHAIN + '<transmission name="t"><joint name="j1"><hardwareInterface>x</hardwareInterface></joint></transmission>')
    assert urdf.joint_names(urdf.load(xml, ee="c")) == ["j1", "j2"]


def test_module_round_trips_and_publishes_joint_names():
    m = urdf.load(robot(CHAIN), ee="c")
    text = print_op(m)
    again = parse_module(text, "<kin>")
    verify(again)
    assert print_op(again) == text
    assert print_op(parse_module(print_op(m, generic=True), "<kin>")) == text
    assert "kin.revolute" in text and "kin.prismatic" in text and "kin.jacobian_column" in text


def test_options_are_checked():
    assert "dtype must be one of f64, f32" in error_of(robot(CHAIN), dtype="f16")
    assert "ee 'nope' is not a link" in error_of(robot(CHAIN), ee="nope")
    assert "base 'nope' is not a link" in error_of(robot(CHAIN), base="nope")
    assert "ee= or frames=" in error_of(robot(CHAIN), ee="c", frames=["a"])


# ----- what is refused ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "joints, links, message",
    [
        (joint("j1", "base", "a", axis="0 0 0"), ("base", "a"), 'robot.urdf: <joint name="j1">: error: axis is zero'),
        (
            joint("j1", "base", "a", axis="0 1"),
            ("base", "a"),
            'robot.urdf: <joint name="j1">: error: axis xyz has 2 components, expected 3',
        ),
        (joint("j1", "base", "a", extra='<origin xyz="0 0" />'), ("base", "a"), "origin xyz has 2 components, expected 3"),
        (joint("j1", "base", "a", extra='<origin rpy="0 0 1 2"/>'), ("base", "a"), "origin rpy has 4 components, expected 3"),
        (joint("j1", "base", "a", extra='<origin xyz="0 nan 0"/>'), ("base", "a"), "must be finite"),
        (joint("j1", "base", "a", "floating"), ("base", "a"), 'robot.urdf: <joint name="j1">: error: a floating joint is on the path'),
        (joint("j1", "base", "a", "planar"), ("base", "a"), "a planar joint is on the path"),
        (joint("j1", "base", "a", "ball"), ("base", "a"), "joint type 'ball' is not a URDF joint type"),
        (joint("j1", "base", "a") + joint("j2", "b", "c"), ("base", "a", "b", "c"), "2 root links (no joint's child): base, b"),
        (
            joint("j1", "base", "a") + joint("j2", "a", "b") + joint("j3", "b", "a"),
            ("base", "a", "b"),
            "is the child of joints 'j1' and 'j3'",
        ),
        (joint("j1", "a", "b") + joint("j2", "b", "a"), ("a", "b"), "the joints form a cycle"),
        (joint("j1", "base", "a", extra='<mimic joint="ghost"/>'), ("base", "a"), "mimic of unknown joint 'ghost'"),
        (
            joint("j1", "base", "a", extra='<mimic joint="j2"/>') + joint("j2", "a", "b", extra='<mimic joint="j1"/>'),
            ("base", "a", "b"),
            "mimic joints form a cycle: j1 -> j2 -> j1",
        ),
        (
            joint("j1", "base", "a", extra='<mimic joint="j0"/>') + joint("j0", "base", "z", "fixed"),
            ("base", "a", "z"),
            "a mimic follows a revolute",
        ),
        (joint("j1", "base", "ghost"), ("base",), "child link 'ghost' is not a <link> of the robot"),
        (joint("j1", "base", "a") + joint("j1", "a", "b"), ("base", "a", "b"), "joint name declared twice"),
    ],
)
def test_rejected_constructs_name_the_element(joints, links, message):
    assert message in error_of(robot(joints, links=links))


def test_floating_joint_off_the_path_is_fine():
    xml = robot(joint("j1", "base", "a") + joint("free", "base", "b", "floating"), links=("base", "a", "b"))
    assert urdf.joint_names(urdf.load(xml, ee="a")) == ["j1"]


def test_not_a_robot_and_malformed_xml():
    assert "root element is <foo>, expected <robot>" in error_of(b"<foo/>")
    assert "malformed XML at line 1" in error_of(b"<robot><link name='a'></robot>")


def test_entity_bomb_is_refused_in_milliseconds():
    lol = "".join(f'<!ENTITY l{i} "{"&l%d;" % (i - 1) * 10}">' for i in range(1, 10))
    bomb = f'<?xml version="1.0"?><!DOCTYPE robot [<!ENTITY l0 "lol">{lol}]><robot name="&l9;"><link name="a"/></robot>'
    t = time.perf_counter()
    assert "entity declarations and external references are not supported" in error_of(bomb.encode())
    assert time.perf_counter() - t < 0.5


def test_external_entity_is_refused(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("x")
    xml = f'<?xml version="1.0"?><!DOCTYPE robot [<!ENTITY e SYSTEM "file://{secret}">]><robot name="&e;"><link name="a"/></robot>'
    assert "not supported" in error_of(xml.encode())


def test_file_size_is_bounded(tmp_path, monkeypatch):
    monkeypatch.setattr(urdf, "MAX_BYTES", 100)
    p = tmp_path / "big.urdf"
    p.write_bytes(robot(CHAIN))
    with pytest.raises(TimberError, match="URDF files over 100 bytes are refused"):
        urdf.load(p)


@needs_corpus
def test_corpus_floating_planar_file_is_refused_naming_the_joint():
    with pytest.raises(
        TimberError, match=r'synthetic_floating_planar.urdf: <joint name="\w+">: error: a (floating|planar) joint is on the path'
    ):
        urdf.load(CORPUS / "synthetic_floating_planar.urdf")


@needs_corpus
def test_corpus_defaults():
    """The corpus README's traps: a truncated π/2, a world root, mimic fingers, a 4-way tie."""
    with pytest.warns(UserWarning, match=r"2 leaf links tie as the end-effector \(ee_link, tool0\); using 'ee_link'"):
        ur5 = urdf.load(CORPUS / "ur5.urdf", jacobian=False)
    assert ur5.attributes["timber.base"].value == "world"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        urdf.load(CORPUS / "kuka_iiwa.urdf", jacobian=False)  # one leaf: no warning
    with pytest.warns(UserWarning, match="4 leaf links tie"):
        urdf.load(CORPUS / "allegro_right_hand.urdf", jacobian=False)
    edge = urdf.load(CORPUS / "synthetic_edge_cases.urdf", jacobian=False)
    assert urdf.joint_names(edge) == ["j_noorigin", "j_rpy", "j_noaxis", "j_prism"]
    kinova = urdf.load(CORPUS / "kinova_jaco2_j2s6s200.urdf", jacobian=False)
    assert len(urdf.joint_names(kinova)) == 6
