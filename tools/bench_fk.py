"""Forward-kinematics benchmark: Timber against Pinocchio and a hand-written C reference.

    python tools/bench_fk.py [--rows 100000] [--robots kuka_iiwa,panda] [--markdown]

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
Times are CPU time of this process (`time.process_time`, best of several runs; the C++ loop
reports its own wall time): on a shared machine wall time mostly measures the neighbours.
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


def best_of(fn, reps: int = 5) -> float:
    """Least CPU time of `reps` runs (after a warm-up run)."""
    fn()
    t = []
    for _ in range(reps):
        t0 = time.process_time()
        fn()
        t.append(time.process_time() - t0)
    return min(t)


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


def bench_robot(name: str, rows: int, lib, results: list) -> None:
    path = CORPUS / f"{name}.urdf"
    from tests.kin import pinref

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
        tb = best_of(lambda: cm.predict(Q), 3) / rows  # noqa: B023 (called in this iteration)
        infer = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p)(
            ctypes.cast(cm.jit.function(f"{cm.prefix}infer"), ctypes.c_void_p).value
        )
        Qc, Pc = np.ascontiguousarray(Q), np.empty_like(P)
        traw = best_of(lambda: infer(Qc.ctypes.data, rows, Pc.ctypes.data, None), 5) / rows  # noqa: B023
        assert np.array_equal(Pc, P)
        q1 = Q[:1].copy()
        tp = best_of(lambda: [cm.predict(q1) for _ in range(2000)], 3) / 2000  # noqa: B023
        tc = None
        if lib is not None:
            fn = cm.jit.function(f"{cm.prefix}infer_single")
            addr = ctypes.cast(fn, ctypes.c_void_p).value
            out = np.zeros(16)
            Qc = np.ascontiguousarray(Q[:1024])
            iters = 200_000
            tc = best_of(lambda: lib.call_single(addr, Qc.ctypes.data, n, len(Qc), out.ctypes.data, iters), 3) / iters  # noqa: B023
        results.append((name, f"timber (math={math})", traw, tb, tp, tc, err(P), f"compile {compile_s:.1f} s"))

    if have_pin:
        pin = pinref.pin
        fid = ref.frames[0]
        qs = [ref.configuration(row) for row in Q[:5000]]

        def pin_loop():
            for q in qs:
                pin.forwardKinematics(ref.model, ref.data, q)
                pin.updateFramePlacement(ref.model, ref.data, fid)

        tpin = best_of(pin_loop, 3) / len(qs)
        results.append((name, "pinocchio (per call from Python)", None, None, tpin, None, "0 (reference)", f"pin {pin.__version__}"))
        cpp = pinocchio_cpp(ref, np.array([ref.configuration(row) for row in Q]), 200_000)
        if cpp is None:
            results.append(
                (
                    name,
                    "pinocchio (C++ loop)",
                    None,
                    None,
                    None,
                    None,
                    "",
                    "not built: needs g++ and Eigen headers (pip install cmeel-eigen)",
                )
            )
        else:
            results.append(
                (name, "pinocchio (C++ loop)", cpp[0], None, None, cpp[1], err(cpp[2]), "g++ -O3, libpinocchio_default; wall time")
            )

    origins = z_chain_origins(path, frames[0]) if lib is not None else None
    if origins is not None:
        out = np.zeros((rows, 16))
        Qc = np.ascontiguousarray(Q)
        tb = best_of(lambda: lib.fk_chain_z_batch(origins.ctypes.data, n, Qc.ctypes.data, rows, out.ctypes.data), 3) / rows
        o1 = np.zeros(16)
        iters = 200_000
        ts = best_of(lambda: lib.call_reference_single(origins.ctypes.data, n, Qc.ctypes.data, 1024, o1.ctypes.data, iters), 3) / iters
        results.append((name, "hand-written C (tools/fk_reference.c)", tb, None, None, ts, err(out), "gcc -O3 -march=native, libm sin/cos"))
        ov = np.zeros((rows, 16))
        tv = best_of(lambda: lib.fk_chain_z_batch_avx2(origins.ctypes.data, n, Qc.ctypes.data, rows, ov.ctypes.data), 3) / rows
        note = "4 rows per AVX2 vector, Cody-Waite sin/cos (about 1 ulp for q below 2^20), no FMA"
        results.append((name, "hand-written vector C (tools/fk_reference.c)", tv, None, None, None, err(ov), note))


def fmt(t):
    return "" if t is None else (f"{t * 1e9:.0f} ns" if t < 1e-6 else f"{t * 1e6:.2f} µs")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--robots", default="kuka_iiwa,panda")
    ap.add_argument("--markdown", action="store_true")
    a = ap.parse_args(argv)
    lib = reference_lib()
    results: list = []
    for name in a.robots.split(","):
        bench_robot(name, a.rows, lib, results)
    cpu = platform.processor() or platform.machine()
    try:
        cpu = next(ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo") if ln.startswith("model name"))
    except (OSError, StopIteration):
        pass
    print(f"CPU: {cpu}, {os.cpu_count()} logical cores; one thread; {a.rows} configurations per batch")
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
    for r in results:
        print("| " + " | ".join([r[0], r[1], fmt(r[2]), fmt(r[3]), fmt(r[4]), fmt(r[5]), r[6], r[7]]) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
