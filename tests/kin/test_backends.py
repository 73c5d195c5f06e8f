"""Forward kinematics in every back-end: equal to Pinocchio within 1e-12 (poses and Jacobians) and
equal to the IR interpreter bit for bit (JIT, C99, WebAssembly, objects for Cortex-M4F, AArch64
and RISC-V run under emulation).

One compile per robot and back-end, checked on many configurations: random within the joint
limits, far beyond them (±1e3), and exact multiples of π/2, ±0.0.  The default run covers the
iiwa in the JIT (7-dof chain, truncated π/2 origins), the edge-case robot (mimics, unaligned and
negative axes) in C99 and WebAssembly, the cartpole as Cortex-M4F and RV32 objects; `-m slow`
runs every corpus robot in the JIT with both math modes, and the AArch64 object."""

from __future__ import annotations

import functools
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pytest

import timber
from ir.interpreter import run
from passes.manager import run_pipeline
from tests.kin import pinref
from timber.frontends import urdf

pytest.importorskip("defusedxml")
CORPUS = Path(__file__).resolve().parents[3] / "shared" / "corpus" / "urdf"
pytestmark = pytest.mark.skipif(not CORPUS.is_dir(), reason="../shared/corpus/urdf is absent")
ROBOTS = sorted(p.stem for p in CORPUS.glob("*.urdf") if "floating" not in p.stem) if CORPUS.is_dir() else []
DEFAULT = ["kuka_iiwa"]  # the edge-case robot runs in C99 and WAT by default, in the JIT in the sweep
TOL = 1e-12  # absolute, vs Pinocchio (double): its rounding order differs from ours


def path(name: str) -> str:
    return str(CORPUS / f"{name}.urdf")


@functools.cache
def lowered(name: str, dtype: str = "f64"):
    """The module after the default pipeline (what every back-end compiles)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = urdf.load(path(name), dtype=dtype)
    run_pipeline(m, "default")
    return m


@functools.cache
def configurations(name: str) -> np.ndarray:
    m = lowered(name)
    names = urdf.joint_names(m)
    lo, hi = pinref.limits(path(name), names)
    rng = np.random.default_rng(12)
    n = len(names)
    Q = [
        rng.uniform(lo, hi, (300, n)),
        rng.uniform(-1e3, 1e3, (60, n)),
        np.pi / 2 * rng.integers(-8, 9, (30, n)),
        np.zeros((1, n)),
        -np.zeros((1, n)),
        np.tile(lo, (1, 1)),
        np.tile(hi, (1, 1)),
    ]
    return np.concatenate(Q)


@functools.cache
def reference(name: str):
    m = lowered(name)
    ref = pinref.Reference(path(name), urdf.joint_names(m), [a.value for a in m.attributes["timber.frames"]])
    Q = configurations(name)
    return ref.poses(Q), ref.jacobians(Q)


@functools.cache
def jit(name: str, math: str):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return timber.compile(path(name), n_jobs=1, math=math)


def check_pinocchio(name: str, P, J) -> None:
    if not pinref.available():
        pytest.skip("pinocchio is not installed (pip install pin)")
    want_P, want_J = reference(name)
    np.testing.assert_allclose(P, want_P, rtol=0, atol=TOL)
    np.testing.assert_allclose(J, want_J, rtol=0, atol=TOL)


# ----- the JIT ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", DEFAULT)
@pytest.mark.parametrize("math", ["libm", "timber"])
def test_jit_equals_pinocchio_and_the_interpreter(name, math):
    """math="libm" (the default): sin/cos are the C library's, as Pinocchio's are; math="timber":
    Timber's (one reduction for a joint's sin and cos: Cody–Waite's alone in blocks whose angles
    are all below 2^10, both Cody–Waite's and Payne–Hanek's in blocks of ±1e9 angles; the same
    branch in one-row code, whose joints' angles go 4 per AVX2 vector)."""
    cm = jit(name, math)
    Q = configurations(name)
    P, J = cm.predict(Q), urdf.jacobian(cm, Q).reshape(len(Q), -1)
    check_pinocchio(name, P, J)
    np.testing.assert_array_equal(P, run(lowered(name), Q, math=math))
    np.testing.assert_array_equal(J, run(lowered(name), Q, "jacobian", math=math))
    huge = np.random.default_rng(3).uniform(-1e9, 1e9, (20, Q.shape[1]))  # no reference but the interpreter
    want = run(lowered(name), huge, math=math)
    np.testing.assert_array_equal(cm.predict(huge), want)
    # one configuration from Python takes the single-row entry point
    np.testing.assert_array_equal(cm.predict(Q[7]), P[7:8])
    np.testing.assert_array_equal(cm.predict(huge[3]), want[3:4])


@pytest.mark.slow
@pytest.mark.parametrize("name", ROBOTS)
@pytest.mark.parametrize("math", ["libm", "timber"])
def test_jit_corpus_sweep(name, math):
    cm = jit(name, math)
    Q = configurations(name)
    P, J = cm.predict(Q), urdf.jacobian(cm, Q).reshape(len(Q), -1)
    check_pinocchio(name, P, J)
    np.testing.assert_array_equal(P, run(lowered(name), Q, math=math))


@pytest.mark.slow
@pytest.mark.parametrize("name", ROBOTS)
def test_interpreter_without_passes_is_within_the_bound_too(name):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = urdf.load(path(name))
    Q = configurations(name)
    check_pinocchio(name, run(m, Q), run(m, Q, "jacobian"))


def test_nan_and_inf_configurations_give_nan_where_they_reach():
    cm = jit("kuka_iiwa", "libm")
    q = configurations("kuka_iiwa")[:1].copy()
    q[0, 3] = np.nan
    T = cm.predict(q).reshape(4, 4)
    assert np.isnan(T[:3, :]).any() and np.array_equal(T[3], [0, 0, 0, 1])
    q[0, 3] = np.inf
    assert np.isnan(cm.predict(q).reshape(4, 4)[:3]).any()


def test_float32_option_error_against_pinocchio():
    """dtype="f32": everything in float32 (for FPU-less targets).  Measured error stated here."""
    m = lowered("kuka_iiwa", "f32")
    Q = configurations("kuka_iiwa")[:360]  # within limits and ±1e3 rad
    P = run(m, Q.astype(np.float32), math="timber")
    assert P.dtype == np.float32
    if not pinref.available():
        pytest.skip("pinocchio is not installed")
    want_P = reference("kuka_iiwa")[0][:360]
    within = np.abs(P[:300] - want_P[:300]).max()
    assert within < 1e-6, within  # measured 2.3e-7 within the limits (iiwa, AMD EPYC)
    # beyond them (|q| up to 1e3 rad) rounding q to float32 moves the angle by up to 3e-5 rad:
    # measured 6.5e-5 against Pinocchio at q, 1.4e-7 against Pinocchio at the rounded q
    ref = pinref.Reference(path("kuka_iiwa"), urdf.joint_names(m), ["lbr_iiwa_link_7"])
    Qr = Q[300:360].astype(np.float32).astype(np.float64)
    assert np.abs(P[300:360] - ref.poses(Qr)).max() < 1e-6
    J = run(m, Q[:300].astype(np.float32), "jacobian", math="timber")
    assert np.abs(J - reference("kuka_iiwa")[1][:300]).max() < 1e-6  # measured 2.3e-7


# ----- C99, WebAssembly, objects: bit for bit with the interpreter --------------------------------


def test_c99_equals_the_interpreter():
    c99 = pytest.importorskip("tests.backends.test_c99")
    if c99.CC is None:
        pytest.skip("no C compiler")
    m = lowered("synthetic_edge_cases")
    cm = c99.CModel(m, Path(tempfile.mkdtemp(prefix="timber-kin-c99-")))
    Q = configurations("synthetic_edge_cases")
    P, J = cm(Q), cm(Q, "jacobian")
    np.testing.assert_array_equal(P, run(m, Q, math="timber"))
    np.testing.assert_array_equal(J, run(m, Q, "jacobian", math="timber"))
    check_pinocchio("synthetic_edge_cases", P, J)


def test_wat_equals_the_interpreter():
    wat = pytest.importorskip("tests.backends.test_wat")
    m = lowered("synthetic_edge_cases")
    wm = wat.WasmModel(m)
    Q = configurations("synthetic_edge_cases")
    P, J = wm(Q), wm(Q, "jacobian")
    np.testing.assert_array_equal(P, run(m, Q, math="timber"))
    np.testing.assert_array_equal(J, run(m, Q, "jacobian", math="timber"))
    check_pinocchio("synthetic_edge_cases", P, J)


@pytest.mark.parametrize(
    "target", ["thumbv7em-none-eabihf", "riscv32-unknown-elf", pytest.param("aarch64-none-elf", marks=pytest.mark.slow)]
)
def test_object_equals_the_interpreter_under_emulation(target):
    from backends.llvm.objfile import emit_object
    from tests.backends.xtarget.emulator import Emulator
    from tests.backends.xtarget.toolchain import link_image, require

    require("unicorn")
    require("ziglang")
    m = lowered("cartpole")
    r = emit_object(m, target)
    image = link_image([r.object], r.target, r.exports, Path(tempfile.mkdtemp(prefix="timber-kin-obj-")))
    emu = Emulator(image, r.target)
    Q = configurations("cartpole")[::4]
    for e in r.lowered.exports:
        if e.single:
            continue
        rc, got = emu.infer(e.symbol, Q, e.n_outputs, e.out_dtype)
        assert rc == 0
        np.testing.assert_array_equal(got, run(m, Q, e.func, math="timber"))


def test_kin_ops_lower_in_the_backends_without_the_kin_passes(tmp_path):
    """Every kin op has an arith expansion the back-ends lower themselves: with no passes at all
    the JIT computes exactly what the interpreter computes (same sin/cos: math="timber")."""
    from tests.test_op_coverage import _URDF

    path = tmp_path / "r.urdf"
    path.write_text(_URDF)
    module = urdf.load(str(path))
    Q = np.random.default_rng(3).normal(size=(40, 2)) * 3
    model = timber.compile(str(path), passes="", math="timber")
    np.testing.assert_array_equal(model.predict(Q), run(module, Q))


def test_one_row_packs_sines_and_cosines_and_keeps_their_bits(tmp_path):
    """One configuration (B = 1) with math="timber": the joints' sines and cosines are computed
    W per vector (`FunctionLowering._pack_sin_cos`), Cody–Waite's reduction alone when the W
    angles are below 2^10 or not finite, both reductions otherwise; every row, huge, NaN, ±inf and
    -0.0 angles included, equals the batch's bits and the interpreter's."""
    from backends.llvm.target import host_target

    links = "".join(f'<link name="l{i}"/>' for i in range(7))
    axes = ["0 0 1", "0 1 0", "1 0 0", "0 0.6 0.8", "0 0 1", "1 1 0"]
    joints = "".join(
        f'<joint name="j{i}" type="revolute"><parent link="l{i}"/><child link="l{i + 1}"/>'
        f'<origin xyz="0.1 0 {0.2 * i}" rpy="0.1 0 0.2"/><axis xyz="{a}"/></joint>'
        for i, a in enumerate(axes)
    )
    path = tmp_path / "arm.urdf"
    path.write_text(f'<robot name="arm">{links}{joints}</robot>')
    model = timber.compile(str(path), math="timber", n_jobs=1)
    rng = np.random.default_rng(11)
    Q = np.vstack([rng.normal(size=(40, 6)) * 3, rng.uniform(-1e9, 1e9, (10, 6)), rng.uniform(-1e300, 1e300, (4, 6))])
    Q[::7, 2] = np.nan
    Q[1::9, 4] = np.inf
    Q[2::9, 0] = -np.inf
    Q[3::5, 5] = -0.0
    single = np.vstack([model.predict(q) for q in Q])
    np.testing.assert_array_equal(single, model.predict(Q))
    np.testing.assert_array_equal(single, run(model.module, Q, math="timber"))  # the module as compiled
    if host_target().lanes in (8, 16):
        one_row = model.llvm_ir[model.llvm_ir.index("@f_predict_b1(") :]
        body = one_row.split("\n}\n")[0]
        W = {8: 4, 16: 8}[host_target().lanes]
        # 6 joints: ceil(6/W) vectors of W angles, each through the W-lane sin/cos helper (whose
        # branch takes Cody–Waite's reduction alone when the W angles allow it)
        assert body.count(f"x double> @x_sin_double_v{W}(") == -(-6 // W)
