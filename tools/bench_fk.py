"""Forward-kinematics benchmark: Timber against Pinocchio and a hand-written C reference.

    python tools/bench_fk.py [--rows 100000] [--robots kuka_iiwa,panda] [--rounds 7] [--markdown]

Per robot (URDFs from ../shared/corpus/urdf): Timber's compiled FK (`timber.compile(urdf,
n_jobs=1)`, math="libm" and math="timber") on 100k configurations at one thread — one call of
`timber_infer` on a preallocated output ("batched, C") and `predict(Q)` (which also allocates and
returns the array) — one configuration from Python (`predict(q)`), and single calls of
`timber_infer_single` from C (a C loop calling the JIT's function pointer); Pinocchio's
`forwardKinematics` + `updateFramePlacement` per configuration from Python and in a C++ loop
(`tools/fk_pinocchio.cpp`, built with g++ against the `pin` wheel when Eigen's headers are there:
`pip install cmeel-eigen`); and, for chains of z-revolute joints (the iiwa),
`tools/fk_reference.c` (straight-line C, libm sin/cos, gcc -O3 -march=native) batched and
single, and its 4-rows-per-AVX2-vector version with a cheap vector sin/cos, batched.  Every engine's poses are checked against Pinocchio's (max abs difference printed).
Times are CPU time of this process (`time.process_time`; the C++ loop reports its own wall time,
best of 3): every engine and measure is timed once per round, the rounds interleaving them (A, B,
..., A, B, ...), and the table gives the best and the median over the rounds ("best / median"):
on a shared machine one engine's run does not get all the quiet moments.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import timber  # noqa: E402
from timber.frontends import urdf  # noqa: E402

CORPUS = ROOT.parent / "shared" / "corpus" / "urdf"
SINGLE_CALLS = 200_000  # single calls from C per timing


class Engine:
    """One engine of one robot: its timed measures (name -> (run once, number of configurations
    per run)), the samples of each (seconds per configuration, one per round), fixed figures
    (the C++ loop's own), its max abs difference from Pinocchio and a note."""

    def __init__(self, robot: str, name: str, err: str, note: str):
        self.robot, self.name, self.err, self.note = robot, name, err, note
        self.measures: dict[str, tuple] = {}
        self.samples: dict[str, list[float]] = {}
        self.fixed: dict[str, float] = {}

    def measure(self, key: str, run, per: int) -> None:
        run()  # warm-up
        self.measures[key] = (run, per)
        self.samples[key] = []

    def time_once(self) -> None:
        for key, (run, per) in self.measures.items():
            t0 = time.process_time()
            run()
            self.samples[key].append((time.process_time() - t0) / per)

    def cell(self, key: str) -> str:
        if key in self.fixed:
            return fmt(self.fixed[key])
        xs = self.samples.get(key)
        if not xs:
            return ""
        return f"{fmt(min(xs))} / {fmt(float(np.median(xs)))}"


def pinocchio_cpp(ref, Qpin: np.ndarray, iters: int) -> tuple[float, float, np.ndarray] | None:
    """(batched ns, single-call ns, poses) of tools/fk_pinocchio.cpp on Pinocchio-layout rows Qpin,
    or None when it cannot be built (no g++, no Eigen headers, an unsupported joint kind)."""
    cxx = shutil.which("g++")
    # the pin wheel's cmeel prefix (site-packages/cmeel.prefix), with Eigen's headers (cmeel-eigen)
    prefix = next((p / "cmeel.prefix" for p in map(Path, sys.path) if (p / "cmeel.prefix" / "include" / "eigen3").is_dir()), None)
    if cxx is None or prefix is None:
        return None
    model = ref.model
    lines = [f"{model.nq} {model.njoints - 1}"]
    for i in range(1, model.njoints):
        kind = model.joints[i].shortname().removeprefix("JointModel")
        if kind in ("RX", "RY", "RZ", "RUBX", "RUBY", "RUBZ", "PX", "PY", "PZ"):
            axis = {"X": (1, 0, 0), "Y": (0, 1, 0), "Z": (0, 0, 1)}[kind[-1]]
            kind = kind[:-1] if kind[0] == "R" else "P"
        elif kind in ("RevoluteUnaligned", "RevoluteUnboundedUnaligned", "PrismaticUnaligned"):
            axis = tuple(model.joints[i].extract().axis)
            kind = {"RevoluteUnaligned": "R", "RevoluteUnboundedUnaligned": "RUB", "PrismaticUnaligned": "P"}[kind]
        else:
            return None
        kind = {"R": "R", "RUB": "RU", "P": "P"}[kind]
        M = model.jointPlacements[i]
        lines.append(f"{kind} {model.parents[i]} " + " ".join(repr(float(v)) for v in (*axis, *M.rotation.reshape(-1), *M.translation)))
    fr = model.frames[ref.frames[0]]
    parent = fr.parentJoint if hasattr(fr, "parentJoint") else fr.parent
    lines.append(f"{parent} " + " ".join(repr(float(v)) for v in (*fr.placement.rotation.reshape(-1), *fr.placement.translation)))
    d = Path(tempfile.mkdtemp(prefix="timber-fk-pin-"))
    (d / "model.txt").write_text("\n".join(lines) + "\n")
    exe = d / "fk_pinocchio"
    defs = ["-DBOOST_MPL_LIMIT_LIST_SIZE=30", "-DBOOST_MPL_LIMIT_VECTOR_SIZE=30", "-DBOOST_MPL_CFG_NO_PREPROCESSED_HEADERS"]
    cmd = [cxx, "-O3", "-DNDEBUG", "-std=c++17", *defs, "-DPINOCCHIO_ENABLE_TEMPLATE_INSTANTIATION", f"-I{prefix / 'include'}"]
    cmd += [f"-I{prefix / 'include' / 'eigen3'}", str(ROOT / "tools" / "fk_pinocchio.cpp"), "-o", str(exe)]
    cmd += [f"-L{prefix / 'lib'}", "-lpinocchio_default", f"-Wl,-rpath,{prefix / 'lib'}"]
    if subprocess.run(cmd, capture_output=True).returncode != 0:
        return None
    Q = np.ascontiguousarray(Qpin, np.float64)
    Q.tofile(d / "q.bin")
    r = subprocess.run(
        [str(exe), str(d / "model.txt"), str(d / "q.bin"), str(len(Q)), str(d / "out.bin"), str(iters)], capture_output=True, text=True
    )
    if r.returncode != 0:
        return None
    tb, ts = (float(x) * 1e-9 for x in r.stdout.split())
    return tb, ts, np.fromfile(d / "out.bin").reshape(len(Q), 16)


def reference_lib() -> ctypes.CDLL | None:
    cc = shutil.which("gcc") or shutil.which("cc")
    if cc is None:
        return None
    out = Path(tempfile.mkdtemp(prefix="timber-fk-")) / "libfk_reference.so"
    cmd = [
        cc,
        "-O3",
        "-march=native",
        "-ffp-contract=off",
        "-shared",
        "-fPIC",
        str(ROOT / "tools" / "fk_reference.c"),
        "-o",
        str(out),
        "-lm",
    ]
    subprocess.run(cmd, check=True)
    lib = ctypes.CDLL(str(out))
    P = ctypes.c_void_p
    lib.fk_chain_z_batch.argtypes = [P, ctypes.c_int, P, ctypes.c_int, P]
    lib.fk_chain_z_batch_avx2.argtypes = [P, ctypes.c_int, P, ctypes.c_int, P]
    lib.call_single.argtypes = [P, P, ctypes.c_int, ctypes.c_int, P, ctypes.c_long]
    lib.call_single.restype = ctypes.c_int
    lib.call_reference_single.argtypes = [P, ctypes.c_int, P, ctypes.c_int, P, ctypes.c_long]
    return lib


def z_chain_origins(path: Path, ee: str) -> np.ndarray | None:
    """The chain's origins (n x 12) if every joint to ee is a z-revolute one (fixed joints folded
    into the next origin), else None."""
    robot = urdf.parse(path.read_bytes(), path.name)
    out, pending = [], None
    for j in robot.path(ee):
        C = urdf.origin_pose(j.xyz, j.rpy)
        if pending is not None:
            A, B = pending.reshape(3, 4), C.reshape(3, 4)
            R = A[:, :3] @ B[:, :3]
            p = A[:, :3] @ B[:, 3] + A[:, 3]
            C = np.concatenate([R, p[:, None]], axis=1).reshape(12)
            pending = None
        if j.type == "fixed":
            pending = C
            continue
        if j.type not in ("revolute", "continuous") or tuple(j.axis) != (0.0, 0.0, 1.0) or j.mimic:
            return None
        out.append(C)
    return None if pending is not None else np.ascontiguousarray(out)


def bench_robot(name: str, rows: int, lib) -> list[Engine]:
    """The engines of one robot, compiled and checked against Pinocchio, their measures set up."""
    path = CORPUS / f"{name}.urdf"
    from tests.kin import pinref

    engines: list[Engine] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        base = timber.compile(str(path), n_jobs=1, jacobian=False)
    names = urdf.joint_names(base.module)
    frames = [a.value for a in base.module.attributes["timber.frames"]]
    n = len(names)
    lo, hi = pinref.limits(str(path), names)
    Q = np.random.default_rng(0).uniform(lo, hi, (rows, n))
    check = Q[:2000]
    have_pin = pinref.available()
    ref = pinref.Reference(str(path), names, frames) if have_pin else None
    want = ref.poses(check) if have_pin else None

    def err(P):
        return f"{np.abs(P[: len(check)] - want).max():.1e}" if have_pin else "n/a"

    for math in ("libm", "timber"):
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            cm = base if math == "libm" else timber.compile(str(path), n_jobs=1, jacobian=False, math=math)
        compile_s = time.perf_counter() - t0 if math != "libm" else cm.timings["total"]
        P = cm.predict(Q)
        e = Engine(name, f"timber (math={math})", err(P), f"compile {compile_s:.1f} s")
        infer = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p)(
            ctypes.cast(cm.jit.function(f"{cm.prefix}infer"), ctypes.c_void_p).value
        )
        Qc, Pc = np.ascontiguousarray(Q), np.empty_like(P)
        infer(Qc.ctypes.data, rows, Pc.ctypes.data, None)
        assert np.array_equal(Pc, P)
        e.measure("batched", lambda infer=infer, Qc=Qc, Pc=Pc: infer(Qc.ctypes.data, rows, Pc.ctypes.data, None), rows)
        e.measure("predict", lambda cm=cm: cm.predict(Q), rows)
        e.measure("python1", lambda cm=cm, q1=Q[:1].copy(): [cm.predict(q1) for _ in range(2000)], 2000)
        if lib is not None:
            addr = ctypes.cast(cm.jit.function(f"{cm.prefix}infer_single"), ctypes.c_void_p).value
            out, Qs, iters = np.zeros(16), np.ascontiguousarray(Q[:1024]), SINGLE_CALLS
            e.measure(
                "c1",
                lambda addr=addr, out=out, Qs=Qs: lib.call_single(addr, Qs.ctypes.data, n, len(Qs), out.ctypes.data, SINGLE_CALLS),
                iters,
            )
        engines.append(e)

    if have_pin:
        pin = pinref.pin
        fid = ref.frames[0]
        qs = [ref.configuration(row) for row in Q[:5000]]

        def pin_loop():
            for q in qs:
                pin.forwardKinematics(ref.model, ref.data, q)
                pin.updateFramePlacement(ref.model, ref.data, fid)

        e = Engine(name, "pinocchio (per call from Python)", "0 (reference)", f"pin {pin.__version__}")
        e.measure("python1", pin_loop, len(qs))
        engines.append(e)
        cpp = pinocchio_cpp(ref, np.array([ref.configuration(row) for row in Q]), 200_000)
        if cpp is None:
            engines.append(Engine(name, "pinocchio (C++ loop)", "", "not built: needs g++ and Eigen headers (pip install cmeel-eigen)"))
        else:
            e = Engine(name, "pinocchio (C++ loop)", err(cpp[2]), "g++ -O3, libpinocchio_default; wall time, best of 3")
            e.fixed.update(batched=cpp[0], c1=cpp[1])
            engines.append(e)

    origins = z_chain_origins(path, frames[0]) if lib is not None else None
    if origins is not None:
        Qc = np.ascontiguousarray(Q)
        out = np.zeros((rows, 16))
        lib.fk_chain_z_batch(origins.ctypes.data, n, Qc.ctypes.data, rows, out.ctypes.data)
        e = Engine(name, "hand-written C (tools/fk_reference.c)", err(out), "gcc -O3 -march=native, libm sin/cos")
        e.measure("batched", lambda: lib.fk_chain_z_batch(origins.ctypes.data, n, Qc.ctypes.data, rows, out.ctypes.data), rows)
        o1, iters = np.zeros(16), 200_000
        e.measure("c1", lambda: lib.call_reference_single(origins.ctypes.data, n, Qc.ctypes.data, 1024, o1.ctypes.data, iters), iters)
        engines.append(e)
        ov = np.zeros((rows, 16))
        lib.fk_chain_z_batch_avx2(origins.ctypes.data, n, Qc.ctypes.data, rows, ov.ctypes.data)
        note = "4 rows per AVX2 vector, Cody-Waite sin/cos (about 1 ulp for q below 2^20), no FMA"
        e = Engine(name, "hand-written vector C (tools/fk_reference.c)", err(ov), note)
        e.measure("batched", lambda: lib.fk_chain_z_batch_avx2(origins.ctypes.data, n, Qc.ctypes.data, rows, ov.ctypes.data), rows)
        engines.append(e)
    return engines


def fmt(t):
    return "" if t is None else (f"{t * 1e9:.0f} ns" if t < 1e-6 else f"{t * 1e6:.2f} µs")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--robots", default="kuka_iiwa,panda")
    ap.add_argument("--rounds", type=int, default=7, help="interleaved timing rounds (best and median reported)")
    ap.add_argument("--markdown", action="store_true")
    a = ap.parse_args(argv)
    if a.rounds < 1:
        ap.error("--rounds must be at least 1")
    lib = reference_lib()
    engines: list[Engine] = []
    for name in a.robots.split(","):
        engines.extend(bench_robot(name, a.rows, lib))
    for _ in range(a.rounds):
        for e in engines:
            e.time_once()
    cpu = platform.processor() or platform.machine()
    try:
        cpu = next(ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo") if ln.startswith("model name"))
    except (OSError, StopIteration):
        pass
    print(f"CPU: {cpu}, {os.cpu_count()} logical cores; one thread; {a.rows} configurations per batch; best / median of {a.rounds} rounds")
    head = [
        "robot",
        "engine",
        "batched, C",
        "batched, predict()",
        "1 config from Python",
        "1 call from C",
        "max abs diff vs Pinocchio",
        "note",
    ]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for e in engines:
        cells = [e.cell(k) for k in ("batched", "predict", "python1", "c1")]
        print("| " + " | ".join([e.robot, e.name, *cells, e.err, e.note]) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
