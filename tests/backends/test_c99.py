"""The C99 back-end: generated C compiled with gcc (-Werror), called through ctypes, compared with the
IR interpreter bit for bit on adversarial rows; the Makefile and CMake builds; ABI details."""

from __future__ import annotations

import ctypes
import hashlib
import importlib.util
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from backends.c99 import emit_c99, write_c99
from backends.common.plan import plan_module
from ir.diagnostics import TimberError
from ir.interpreter import run
from ir.types import f32, f64, tensor

_spec = importlib.util.spec_from_file_location("timber_backend_models", Path(__file__).with_name("test_c99_wat_models.py"))
models = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(models)

CC = shutil.which("gcc") or shutil.which("cc")
pytestmark = pytest.mark.skipif(CC is None, reason="no C compiler (gcc/cc) on PATH")
# Exactly the flags the Makefile uses (warnings as errors, no FMA contraction).
CFLAGS = ["-std=c99", "-Wall", "-Wextra", "-Wpedantic", "-Werror", "-ffp-contract=off", "-O2"]


# ----- building and calling ----------------------------------------------------------------------


class CModel:
    """A module's C99 output built as a shared library, callable per export."""

    def __init__(self, module, workdir: Path, prefix: str = "timber_", cc: str | None = None, flags: tuple = ()):
        self.module = module
        self.files = emit_c99(module, prefix)
        self.plan = plan_module(module, prefix, "c99")
        key = hashlib.sha256("".join([self.files[k] for k in sorted(self.files)] + [cc or CC, *flags]).encode()).hexdigest()[:16]
        d = workdir / key
        d.mkdir(parents=True, exist_ok=True)
        for name, text in self.files.items():
            (d / name).write_text(text)
        so = d / "libmodel.so"
        if not so.exists():
            r = subprocess.run(
                [cc or CC, *CFLAGS, *flags, "-fPIC", "-shared", "-o", str(so), "model.c", "model_data.c"], cwd=d, capture_output=True, text=True
            )
            assert r.returncode == 0 and not r.stderr.strip(), r.stderr
        self.dir = d
        self.lib = ctypes.CDLL(str(so))
        self.exports = {ex.func.sym_name: ex for ex in self.plan.exports}

    def fn(self, symbol: str, single: bool = False):
        f = getattr(self.lib, symbol)
        f.restype = ctypes.c_int
        f.argtypes = (
            [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p]
            if single
            else [ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p]
        )
        return f

    def __call__(self, X, name: str = "predict") -> np.ndarray:
        ex = self.exports[name]
        X = np.ascontiguousarray(X, ex.in_elem.numpy)
        out = np.full((len(X), ex.n_out), 0x7B, ex.out_elem.numpy)  # a canary: every slot must be written
        rc = self.fn(ex.batch_symbol)(X.ctypes.data, len(X), out.ctypes.data, None)
        assert rc == 0
        return out


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("c99")


_built: dict[str, CModel] = {}


def built(name: str, workdir: Path) -> CModel:
    if name not in _built:
        _built[name] = CModel(models.MODELS[name](), workdir)
    return _built[name]


# ----- parity with the interpreter ---------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(models.MODELS))
def test_every_export_matches_the_interpreter(name, workdir):
    cm = built(name, workdir)
    for fname in cm.exports:
        X = models.adversarial_rows(cm.module, func_name=fname)
        want = run(cm.module, X, fname)
        models.assert_same_bits(cm(X, fname), want)


def test_single_row_entry_point_agrees_with_batch(workdir):
    cm = built("multiclass_softmax", workdir)
    ex = cm.exports["predict"]
    X = models.adversarial_rows(cm.module, n_random=20)
    batch = cm(X)
    single = cm.fn(ex.single_symbol, single=True)
    for i in range(len(X)):
        row = np.ascontiguousarray(X[i])
        out = np.zeros(ex.n_out, np.float32)
        assert single(row.ctypes.data, out.ctypes.data, None) == 0
        models.assert_same_bits(out, batch[i])


def test_error_codes(workdir):
    cm = built("xgb_binary", workdir)
    ex = cm.exports["predict"]
    infer, single = cm.fn(ex.batch_symbol), cm.fn(ex.single_symbol, single=True)
    X = np.zeros((2, 4), np.float32)
    out = np.zeros(2, np.float32)
    assert infer(X.ctypes.data, -1, out.ctypes.data, None) == -3
    assert infer(None, 2, out.ctypes.data, None) == -1
    assert infer(X.ctypes.data, 2, None, None) == -1
    assert infer(None, 0, None, None) == 0
    assert single(None, out.ctypes.data, None) == -1
    # ctx is ignored (any pointer, NULL included).
    assert infer(X.ctypes.data, 2, out.ctypes.data, ctypes.c_void_p(12345)) == 0


def exp_inputs(dt) -> np.ndarray:
    """Values across exp's whole domain: each range edge with its neighbours, subnormal results,
    tiny arguments, huge ones, and random bit patterns."""
    from ir.dialects.mathimpl import exp as mathfn  # the exp expansion's constants

    rng = np.random.default_rng(7)
    edges = [mathfn.OVERFLOW, mathfn.UNDERFLOW, -708.4, -709.1, 0.0, -0.0, 88.72, -87.33, -103.97, 709.0, -745.0]
    near = [np.nextafter(np.array(e, dt), np.array(s, dt)) for e in edges for s in (-np.inf, np.inf)]
    vals = [
        np.array(edges, dt),
        np.array(near, dt),
        rng.uniform(-750, 712, 40000).astype(dt),
        rng.uniform(-745.2, -708, 10000).astype(dt),
        rng.uniform(-1, 1, 10000).astype(dt) * np.array(10.0, dt) ** rng.integers(-30, 1, 10000).astype(dt),
        np.array([np.nan, np.inf, -np.inf, 1e-320, -1e-320, 1e300, -1e300]).astype(dt)
        if dt == np.float64
        else np.array([np.nan, 3e38, -3e38], dt),
    ]
    bits = rng.integers(0, 2**63, 20000, dtype=np.int64) * rng.choice([1, -1], 20000)
    vals.append(bits.astype(np.int64).view(np.float64).astype(dt) if dt == np.float64 else bits.astype(np.int32).view(np.float32))
    return np.concatenate(vals).reshape(-1, 1)


@pytest.mark.parametrize("el", [f64, f32], ids=["f64", "f32"])
def test_exp_is_timbers_exp_bit_for_bit(el, workdir):
    m = models.math_module("exp", el)
    cm = CModel(m, workdir)
    X = exp_inputs(el.numpy.type)
    models.assert_same_bits(cm(X), run(m, X))


@pytest.mark.parametrize("el", [f64, f32], ids=["f64", "f32"])
def test_fmath_exp_and_softmax_are_timbers_bit_for_bit(el, workdir):
    m = models.math_module("fmath", el)
    X = np.random.default_rng(5).uniform(-720, 720, 30000).astype(el.numpy.type)
    X[:4] = [np.nan, np.inf, -np.inf, -0.0]
    cm = CModel(m, workdir)
    models.assert_same_bits(cm(X.reshape(-1, 1)), run(m, X.reshape(-1, 1)))
    X3 = (np.random.default_rng(6).normal(size=(3000, 3)) * 20).astype(el.numpy.type)
    models.assert_same_bits(cm(X3, "softmax"), run(m, X3, "softmax"))


@pytest.mark.parametrize("el", [f64, f32], ids=["f64", "f32"])
def test_log1p_is_timbers_log1p_bit_for_bit(el, workdir):
    from tests.rows import log1p_inputs

    m = models.math_module("log1p", el)
    X = log1p_inputs(el.numpy.type).reshape(-1, 1)
    models.assert_same_bits(CModel(m, workdir)(X), run(m, X))


@pytest.mark.parametrize("flags", [("-O0",), ("-O3", "-march=native")], ids=["O0", "O3-native"])
def test_optimisation_level_does_not_change_bits(flags, workdir):
    """-march=native may enable FMA; -ffp-contract=off (in CFLAGS, as in the Makefile) keeps it out."""
    for module in (models.lgb_binary(), models.math_module("exp", f64)):
        cm = CModel(module, workdir, flags=flags)
        X = exp_inputs(np.float64)[::7] if module.lookup("margin") is None else models.adversarial_rows(module)
        models.assert_same_bits(cm(X), run(module, X))
    cm = CModel(models.int_zoo(), workdir, flags=flags)  # the integer ops: no optimiser may exploit UB
    for fname in cm.exports:
        X = models.int_rows(cm.module, fname, n_random=500)
        models.assert_same_bits(cm(X, fname), run(cm.module, X, fname))


# ----- integer and bit ops, math expansions --------------------------------------------------------


@pytest.mark.parametrize("fname", models.arith_functions(models.int_zoo()))
def test_int_ops_match_the_interpreter(fname, workdir):
    """Each integer/bit op (wrapping i32/i64 arithmetic, shifts by >= width and by negative
    amounts, signed and unsigned compares, bit casts of NaN payloads, saturating fptosi of NaN,
    ±inf and huge values, lookups at negative and huge indices, i1 logic, extract/broadcast)."""
    if "int_zoo" not in _built:
        _built["int_zoo"] = CModel(models.int_zoo(), workdir)
    cm = _built["int_zoo"]
    for X in (models.int_rows(cm.module, fname), models.adversarial_rows(cm.module, func_name=fname)):
        models.assert_same_bits(cm(X, fname), run(cm.module, X, fname))


@pytest.mark.parametrize("el", [f64, f32], ids=["f64", "f32"])
@pytest.mark.parametrize("spec", models.MATH_OPS)
def test_math_expansion_is_the_interpreters_bit_for_bit(spec, el, workdir):
    """Every math function with an arith expansion (mathimpl.EXPANSIONS; names not registered yet
    are skipped) on 10^5 adversarial inputs, one element per call and 12 per call."""
    from ir.dialects import mathimpl

    if spec.partition(":")[0] not in mathimpl.EXPANSIONS:
        pytest.skip(f"{spec} has no arith expansion yet")
    m = models.math_op_module(spec, el)
    X = models.math_inputs(el.numpy.type)
    assert X.size >= 100_000
    cm = CModel(m, workdir)
    models.assert_same_bits(cm(X.reshape(-1, 1)), run(m, X.reshape(-1, 1), math="timber"))
    models.assert_same_bits(cm(X.reshape(-1, 12), "wide"), run(m, X.reshape(-1, 12), "wide", math="timber"))
    assert not re.search(r"\bunion\b", cm.files["model.c"])


def test_float_literals_keep_nan_payloads():
    """Splat constants of expansions become C literals: C's NAN and -NAN where they are the
    same bits, the bit pattern through float_i64/float_i32 otherwise."""
    from types import SimpleNamespace

    from backends.c99.emit import c_literal

    cm = SimpleNamespace(small=set())
    assert c_literal(cm, np.float64(np.nan), f64) == "(double)NAN" and c_literal(cm, -np.float64(np.nan), f64) == "-(double)NAN"
    assert c_literal(cm, np.float32(np.nan), f32) == "NAN" and not cm.small
    odd = np.array(0x7FF8000000000123, np.int64).view(np.float64)
    assert c_literal(cm, odd, f64) == "float_i64(INT64_C(9221120237041090851))" and cm.small == {"float_i64"}
    assert c_literal(cm, np.array(-0x7FFFFF, np.int32).view(np.float32), f32) == "float_i32(-8388607)"
    assert c_literal(cm, -(2**63), models.i64) == "INT64_MIN" and c_literal(cm, -5, models.i64) == "(-INT64_C(5))"
    assert c_literal(cm, True, models.i1) == "1" and c_literal(cm, -(2**31), models.i32) == "INT32_MIN"


_STRUCTURE = {"builtin.module", "func.func", "tree.tree", "tree.oblivious"}  # never an op of a function body


def op_alone(cls):
    """@predict(x: tensor<1xf32>) -> tensor<1xf32> = one generic op of class `cls` (on x if it takes operands)."""
    m = models.new_module(source=f"hand/{cls.name}.tir")
    f, x = models.add_func(m, "predict", tensor(1, f32), tensor(1, f32))
    models.ret(f, models.add(f, cls(operands=[x] if cls.operand_defs else [], result_types=[tensor(1, f32)])))
    return m


def test_every_registered_op_is_lowered_or_refused_by_name():
    """Walk ir.opdef.OP_REGISTRY: every op has a table entry or an arith expansion, or emitting a
    module that uses it fails naming the op and the back-end."""
    from backends.c99.emit import LOWERINGS, lowering_of
    from ir.dialects import arith, math, mathimpl
    from ir.opdef import OP_REGISTRY

    refused = []
    for name, cls in sorted(OP_REGISTRY.items()):
        kind = lowering_of(cls)
        if kind == "table":
            assert cls in LOWERINGS
        elif kind == "expansion":
            assert name in mathimpl.EXPANSIONS and cls not in LOWERINGS
        else:
            assert kind is None
            refused.append(name)
            with pytest.raises(TimberError, match=f"the C99 back-end cannot lower '{re.escape(name)}'"):
                emit_c99(op_alone(cls))
    # only structure and math functions still waiting for their expansion are refused
    assert all(n in _STRUCTURE or n.startswith("math.") for n in refused), refused
    # exp, log1p, fmath exp, sigmoid and softmax have no lowering of their own: only their expansion
    for cls in (math.ExpOp, math.Log1pOp, math.SigmoidOp, math.SoftmaxOp):
        assert lowering_of(cls) == "expansion"
    for name, cls in OP_REGISTRY.items():
        if name.startswith("arith."):
            assert lowering_of(cls) == "table", name
    assert lowering_of(arith.LookupOp) == "table"


def test_an_expansion_with_an_unlowerable_op_is_refused(monkeypatch):
    """The check looks inside expansions: an op there that the back-end cannot lower is named."""
    from ir.dialects import mathimpl
    from ir.opdef import OpDef, OperandDef, ResultDef

    class Gadget(OpDef):
        name = "test.gadget"
        operand_defs = (OperandDef("input"),)
        result_defs = (ResultDef("out"),)

    class Widget(OpDef):
        name = "test.widget"
        operand_defs = (OperandDef("input"),)
        result_defs = (ResultDef("out"),)

    monkeypatch.setitem(mathimpl.EXPANSIONS, "test.widget", lambda op, x: x.em.emit(Gadget(operands=[x.v], result_types=[x.v.type])))
    m = models.new_module(source="hand/widget.tir")
    f, x = models.add_func(m, "predict", tensor(1, f32), tensor(1, f32))
    models.ret(f, models.add(f, Widget(operands=[x], result_types=[tensor(1, f32)])))
    with pytest.raises(TimberError, match=r"cannot lower 'test\.gadget'.*in the expansion of 'test\.widget'") as e:
        emit_c99(m)
    assert "@predict" in str(e.value)


def _ubsan_modules():
    from ir.dialects import mathimpl

    out = {
        "int_zoo": (models.int_zoo(), models.int_rows),
        "arith_zoo": (models.arith_zoo(), None),
        "lgb_binary": (models.lgb_binary(), None),
    }
    for spec in models.MATH_OPS:
        if spec.partition(":")[0] in mathimpl.EXPANSIONS:
            out[spec] = (models.math_op_module(spec, f64), "math")
    return out


_UBSAN_CHILD = """
import ctypes, json, sys
import numpy as np
spec = json.load(open(sys.argv[2]))
lib = ctypes.CDLL(sys.argv[1])
data = np.load(sys.argv[3])
outs = {}
for name, (sym, n_out, out_dt) in spec.items():
    X = np.ascontiguousarray(data[name])
    f = getattr(lib, sym)
    f.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p]
    out = np.zeros((len(X), n_out), out_dt)
    assert f(X.ctypes.data, len(X), out.ctypes.data, None) == 0
    outs[name] = out
np.savez(sys.argv[4], **outs)
"""


@pytest.mark.skipif(
    subprocess.run(
        [CC or "cc", "-fsanitize=undefined", "-x", "c", "-", "-o", os.devnull],
        input="int main(void){return 0;}",
        capture_output=True,
        text=True,
    ).returncode
    != 0,
    reason="the compiler has no -fsanitize=undefined",
)
@pytest.mark.parametrize("name", list(_ubsan_modules()))
def test_no_undefined_behaviour_for_any_input(name, tmp_path):
    """Built with UBSan (shifts, signed overflow, float-to-int casts out of range, ...), every
    export runs its adversarial rows without a single report, and still gives the interpreter's bits."""
    import json
    import sys

    module, rows = _ubsan_modules()[name]
    files = emit_c99(module)
    for k, v in files.items():
        (tmp_path / k).write_text(v)
    so = tmp_path / "libub.so"
    flags = [f for f in CFLAGS if f != "-O2"] + ["-O1", "-fsanitize=undefined,float-cast-overflow", "-fno-sanitize-recover=all"]
    r = subprocess.run(
        [CC, *flags, "-fPIC", "-shared", "-o", str(so), "model.c", "model_data.c"], cwd=tmp_path, capture_output=True, text=True
    )
    assert r.returncode == 0, r.stderr
    plan = plan_module(module, "timber_", "c99")
    spec, data = {}, {}
    for ex in plan.exports:
        fname = ex.func.sym_name
        if rows == "math":
            X = models.math_inputs(ex.in_elem.numpy.type).reshape(-1, ex.n_in)
        elif rows is not None:
            X = rows(module, fname)
        else:
            X = models.adversarial_rows(module, func_name=fname)
        data[fname] = X
        spec[fname] = (ex.batch_symbol, ex.n_out, np.dtype(ex.out_elem.numpy).str)
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    np.savez(tmp_path / "rows.npz", **data)
    (tmp_path / "child.py").write_text(_UBSAN_CHILD)
    env = dict(os.environ, UBSAN_OPTIONS=f"log_path={tmp_path / 'ubsan'}:halt_on_error=1")
    r = subprocess.run(
        [sys.executable, "child.py", str(so), "spec.json", "rows.npz", "outs.npz"], cwd=tmp_path, capture_output=True, text=True, env=env
    )
    logs = "".join(p.read_text() for p in tmp_path.glob("ubsan*"))
    assert r.returncode == 0 and not logs, logs + r.stderr
    outs = np.load(tmp_path / "outs.npz")
    for fname, X in data.items():
        models.assert_same_bits(outs[fname], run(module, X, fname))


# ----- build files ------------------------------------------------------------------------------


def _nm(path: Path) -> list[tuple[str, str]]:
    r = subprocess.run(["nm", str(path)], capture_output=True, text=True, check=True)
    return [(parts[-2], parts[-1]) for parts in (line.split() for line in r.stdout.splitlines()) if len(parts) >= 2]


@pytest.mark.skipif(shutil.which("make") is None, reason="make not installed")
def test_makefile_builds_warning_free_without_libm_or_mutable_globals(tmp_path):
    module = models.lgb_binary()  # exp, linear leaves, categorical splits, every missing kind
    paths = write_c99(module, tmp_path, "lgb_")
    assert sorted(os.path.basename(p) for p in paths) == ["CMakeLists.txt", "Makefile", "model.c", "model.h", "model_data.c"]
    r = subprocess.run(["make", f"CC={CC}"], cwd=tmp_path, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "warning" not in (r.stdout + r.stderr).lower()
    assert (tmp_path / "liblgb_model.a").exists()
    syms = _nm(tmp_path / "model.o") + _nm(tmp_path / "model_data.o")
    # The only undefined symbols are the tables model_data.o defines: no libm, no libc, no helper library.
    defined = {s for t, s in syms if t != "U"}
    assert [s for t, s in syms if t == "U" and s not in defined] == []
    assert any(t == "U" for t, _ in syms)  # (the check above did look at model.c's references)
    # Nothing writable: no .data/.bss symbols, only code and read-only data.
    assert [s for t, s in syms if t in "DdBbCGgSs"] == []
    r = subprocess.run(["make", f"CC={CC}", "shared"], cwd=tmp_path, capture_output=True, text=True)
    assert r.returncode == 0 and "warning" not in (r.stdout + r.stderr).lower(), r.stderr
    lib = ctypes.CDLL(str(tmp_path / "liblgb_model.so"))
    f = lib.lgb_infer
    f.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p]
    X = models.adversarial_rows(module, n_random=50)
    out = np.zeros((len(X), 1), np.float64)
    assert f(X.ctypes.data, len(X), out.ctypes.data, None) == 0
    models.assert_same_bits(out, run(module, X))


@pytest.mark.parametrize("name", ["int_zoo", "arith_zoo"] + [f"{s}/{w}" for s in models.MATH_OPS for w in ("f32", "f64")])
def test_integer_ops_and_math_need_no_library_and_no_writable_data(name, workdir):
    """memcpy (bit casts) is inlined, math is arith: the objects reference nothing but their own
    tables (no libm, no libc), and hold no writable data."""
    from ir.dialects import mathimpl

    if "/" in name:
        spec, w = name.split("/")
        if spec.partition(":")[0] not in mathimpl.EXPANSIONS:
            pytest.skip(f"{spec} has no arith expansion yet")
        module = models.math_op_module(spec, f32 if w == "f32" else f64)
    else:
        module = models.MODELS[name]() if name in models.MODELS else models.int_zoo()
    d = CModel(module, workdir).dir
    for src in ("model.c", "model_data.c"):
        r = subprocess.run([CC, *CFLAGS, "-c", "-o", src[:-2] + ".o", src], cwd=d, capture_output=True, text=True)
        assert r.returncode == 0 and not r.stderr.strip(), r.stderr
    syms = _nm(d / "model.o") + _nm(d / "model_data.o")
    defined = {s for t, s in syms if t != "U"}
    assert [s for t, s in syms if t == "U" and s not in defined] == []
    assert [s for t, s in syms if t in "DdBbCGgSs"] == []
    text = (d / "model.c").read_text()
    assert not re.search(r"\bunion\b", text) and "malloc(" not in text


@pytest.mark.skipif(shutil.which("cmake") is None, reason="cmake not installed")
def test_cmake_builds_warning_free(tmp_path):
    module = models.catboost_like()
    write_c99(module, tmp_path / "src")
    build = tmp_path / "build"
    env = dict(os.environ, CC=CC)
    r = subprocess.run(
        ["cmake", "-S", str(tmp_path / "src"), "-B", str(build), "-DBUILD_SHARED_LIBS=ON"], capture_output=True, text=True, env=env
    )
    assert r.returncode == 0, r.stdout + r.stderr
    r = subprocess.run(["cmake", "--build", str(build)], capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "warning" not in (r.stdout + r.stderr).lower()
    cache = (build / "CMakeCache.txt").read_text()
    assert "TIMBER_WERROR:BOOL=ON" in cache
    so = next(build.glob("libtimber_model.so*"))
    lib = ctypes.CDLL(str(so))
    f = lib.timber_infer
    f.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p]
    X = models.adversarial_rows(module, n_random=50)
    out = np.zeros((len(X), 2), np.float64)
    assert f(X.ctypes.data, len(X), out.ctypes.data, None) == 0
    models.assert_same_bits(out, run(module, X))


CLANG = shutil.which("clang") or next(filter(None, (shutil.which(f"clang-{v}") for v in range(30, 9, -1))), None)


@pytest.mark.skipif(CLANG is None, reason="clang not installed")
def test_clang_builds_warning_free(tmp_path):
    from ir.dialects import mathimpl

    for name in ("lgb_binary", "catboost_like", "arith_zoo"):
        cm = CModel(models.MODELS[name](), tmp_path / name, cc=CLANG)
        X = models.adversarial_rows(cm.module, n_random=30)
        models.assert_same_bits(cm(X), run(cm.module, X))
    cm = CModel(models.int_zoo(), tmp_path / "int_zoo", cc=CLANG)
    for fname in cm.exports:
        X = models.int_rows(cm.module, fname, n_random=300)
        models.assert_same_bits(cm(X, fname), run(cm.module, X, fname))
    for spec in models.MATH_OPS:
        if spec.partition(":")[0] in mathimpl.EXPANSIONS:
            for el in (f32, f64):
                m = models.math_op_module(spec, el)
                X = models.math_inputs(el.numpy.type)[::10].reshape(-1, 1)
                models.assert_same_bits(CModel(m, tmp_path / "math", cc=CLANG)(X), run(m, X))


def test_two_models_link_into_one_library(tmp_path):
    a, b = models.xgb_binary(), models.multiclass_softmax()
    fa, fb = emit_c99(a, "fan_"), emit_c99(b, "pump_")
    srcs = []
    for tag, files in (("a", fa), ("b", fb)):
        d = tmp_path / tag
        d.mkdir()
        for k, v in files.items():
            (d / k).write_text(v)
        srcs += [str(d / "model.c"), str(d / "model_data.c")]
    so = tmp_path / "both.so"
    r = subprocess.run([CC, *CFLAGS, "-fPIC", "-shared", "-o", str(so), *srcs], capture_output=True, text=True)
    assert r.returncode == 0 and not r.stderr.strip(), r.stderr
    lib = ctypes.CDLL(str(so))
    for module, sym, k in ((a, "fan_infer", 1), (b, "pump_infer", 3)):
        f = getattr(lib, sym)
        f.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p]
        X = models.adversarial_rows(module, n_random=40)
        out = np.zeros((len(X), k), np.float32)
        assert f(X.ctypes.data, len(X), out.ctypes.data, None) == 0
        models.assert_same_bits(out, run(module, X))


# ----- the text itself ----------------------------------------------------------------------------


def test_header_and_text_follow_the_abi():
    files = emit_c99(models.lgb_binary(), "m2_")
    h, c, data = files["model.h"], files["model.c"], files["model_data.c"]
    assert "#define M2_N_FEATURES 5" in h and "#define M2_N_OUTPUTS 1" in h and "#define M2_ABI_VERSION 1" in h
    assert "typedef double m2_input_t;" in h and "typedef double m2_output_t;" in h
    assert "int m2_infer_single(const m2_input_t *inputs, m2_output_t *outputs, const void *ctx);" in h
    assert "int m2_infer(const m2_input_t *inputs, int n_samples, m2_output_t *outputs, const void *ctx);" in h
    assert "int m2_infer_margin(const double *inputs, int n_samples, double *outputs, const void *ctx);" in h
    assert "malloc(" not in c and "alloca(" not in c and "0x1.6666666666666p-1" in c + data  # 0.7 as an exact hex literal
    assert "-ffp-contract=off" in files["Makefile"] and "-ffp-contract=off" in files["CMakeLists.txt"]
    # Deterministic: the same module gives the same text.
    assert emit_c99(models.lgb_binary(), "m2_") == files


def test_f32_literals_are_hex_with_suffix():
    data = emit_c99(models.xgb_binary())["model_data.c"]
    assert "0x1.39999ap+1f" in data  # 2.45f
    assert "e+" not in data and "e-" not in data  # no decimal exponents anywhere


# ----- what the back-end refuses ------------------------------------------------------------------


def test_recursion_is_rejected():
    from ir.dialects import func

    m = models.new_module(source="hand/rec.tir")
    t = tensor(1, f32)
    fa = func.FuncOp.build("predict", [t], [t], arg_names=["x"])
    fb = func.FuncOp.build("helper", [t], [t], arg_names=["x"])
    m.body.add_op(fa)
    m.body.add_op(fb)
    models.ret(fa, models.add(fa, func.CallOp.build(fb, [fa.body.args[0]])))
    models.ret(fb, models.add(fb, func.CallOp.build(fa, [fb.body.args[0]])))
    with pytest.raises(TimberError, match="recursive"):
        emit_c99(m)


def test_unknown_op_is_named():
    from ir.opdef import OpDef, ResultDef

    class Mystery(OpDef):
        name = "test.mystery"
        result_defs = (ResultDef("out"),)

    m = models.new_module(source="hand/mystery.tir")
    f, x = models.add_func(m, "predict", tensor(1, f32), tensor(1, f32))
    v = models.add(f, Mystery(result_types=[tensor(1, f32)]))
    models.ret(f, v)
    with pytest.raises(TimberError, match=r"test\.mystery.*not supported") as e:
        emit_c99(m)
    assert "hand/mystery.tir" in str(e.value) and "@predict" in str(e.value)


def test_missing_predict_and_bad_prefix_and_bad_signature():
    m = models.new_module(source="hand/none.tir")
    models.ensemble_func(m, "margin", 2, 1, [])
    with pytest.raises(TimberError, match="no @predict"):
        emit_c99(m)
    with pytest.raises(TimberError, match="not a C identifier"):
        emit_c99(models.xgb_binary(), prefix="9lives")
    m = models.new_module(source="hand/sig.tir")
    f, x = models.add_func(m, "predict", tensor(2, 2, f32), tensor(1, f32))
    models.ret(f, models.add(f, models.arith.ConstantOp.build([1.0], tensor(1, f32))))
    with pytest.raises(TimberError, match="1-D tensor"):
        emit_c99(m)


def test_write_refuses_to_overwrite_a_different_file(tmp_path):
    a = write_c99(models.xgb_binary(), tmp_path)
    assert write_c99(models.xgb_binary(), tmp_path) == a  # identical content: fine
    with pytest.raises(TimberError, match=r"model\.h"):
        write_c99(models.lgb_binary(), tmp_path)
    assert "N_FEATURES 4" in (tmp_path / "model.h").read_text()  # nothing was written
    write_c99(models.lgb_binary(), tmp_path, force=True)
    assert "N_FEATURES 5" in (tmp_path / "model.h").read_text()


# ----- models from the real front-ends (when they exist) -----------------------------------------


def _frontend(name: str):
    mod = pytest.importorskip(f"timber.frontends.{name}")
    if not hasattr(mod, "load"):
        pytest.skip(f"timber.frontends.{name} has no load() yet")
    return mod.load


def test_xgboost_frontend_model(tmp_path, workdir):
    load = _frontend("xgboost")
    xgb = pytest.importorskip("xgboost")
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 5)).astype(np.float32)
    X[rng.random(X.shape) < 0.1] = np.nan
    y = (np.nan_to_num(X[:, 0]) + rng.normal(size=300) > 0).astype(int)
    booster = xgb.train({"objective": "binary:logistic", "max_depth": 3, "seed": 0, "nthread": 1}, xgb.DMatrix(X, y), 8)
    path = tmp_path / "model.json"
    booster.save_model(str(path))
    module = load(str(path))
    cm = CModel(module, workdir)
    rows = models.adversarial_rows(module)
    models.assert_same_bits(cm(rows), run(module, rows))
    finite = rows[~np.isinf(rows).any(axis=1)]  # DMatrix refuses inf unless it is the missing value
    d = xgb.DMatrix(finite, missing=np.nan)
    np.testing.assert_array_equal(cm(finite, "margin"), booster.predict(d, output_margin=True).reshape(-1, 1))
    # XGBoost's sigmoid calls the C library's expf, math.sigmoid Timber's exp (f64 exp rounded
    # once): where glibc's expf is not correctly rounded the two may differ by 1 ulp.
    np.testing.assert_array_max_ulp(cm(finite), booster.predict(d).reshape(-1, 1), maxulp=1)


def test_lightgbm_frontend_model(tmp_path, workdir):
    load = _frontend("lightgbm")
    lgb = pytest.importorskip("lightgbm")
    rng = np.random.default_rng(1)
    X = rng.normal(size=(400, 4))
    X[rng.random(X.shape) < 0.1] = np.nan
    y = np.nan_to_num(X[:, 0]) * 2 + rng.normal(size=400)
    booster = lgb.train({"objective": "regression", "num_leaves": 7, "verbose": -1, "seed": 0, "num_threads": 1}, lgb.Dataset(X, y), 6)
    path = tmp_path / "model.txt"
    booster.save_model(str(path))
    module = load(str(path))
    cm = CModel(module, workdir)
    rows = models.adversarial_rows(module)
    models.assert_same_bits(cm(rows), run(module, rows))
    np.testing.assert_array_equal(cm(rows).reshape(-1), booster.predict(rows))


def test_catboost_frontend_model(tmp_path, workdir):
    load = _frontend("catboost")
    catboost = pytest.importorskip("catboost")
    rng = np.random.default_rng(2)
    X = rng.normal(size=(300, 4)).astype(np.float32)
    y = (X[:, 0] + X[:, 1] > 0).astype(int)
    model = catboost.CatBoostClassifier(iterations=10, depth=3, verbose=False, random_seed=0, thread_count=1)
    model.fit(X, y)
    path = tmp_path / "model.cbm"
    model.save_model(str(path))
    module = load(str(path))
    cm = CModel(module, workdir)
    rows = models.adversarial_rows(module)
    models.assert_same_bits(cm(rows), run(module, rows))


@pytest.mark.parametrize("rel", models.CORPUS_FAST)
def test_corpus_model(rel, workdir):
    module = models.corpus_module(rel)
    cm = CModel(module, workdir)
    for fname in cm.exports:
        X = models.adversarial_rows(module, func_name=fname, max_rows=3000)
        models.assert_same_bits(cm(X, fname), run(module, X, fname))


@pytest.mark.slow
@pytest.mark.parametrize("rel", models.corpus_files())
def test_corpus_sweep(rel, workdir):
    """Every XGBoost/LightGBM file of the corpus (the large ones too)."""
    module = models.corpus_module(rel)
    cm = CModel(module, workdir)
    X = models.adversarial_rows(module, max_rows=20000)
    models.assert_same_bits(cm(X), run(module, X))


# ----- scale ----------------------------------------------------------------------------------------


@pytest.mark.slow
def test_large_multiclass_model(workdir):
    """500 trees of depth 7 over 5 classes, softmax: table sizes, index widths and time stay sane."""
    import time

    module = models.random_forest(500, 20, 5, 7, seed=11, missings=("nan", None), cat_p=0.05)
    t0 = time.perf_counter()
    cm = CModel(module, workdir)
    elapsed = time.perf_counter() - t0
    X = models.adversarial_rows(module, n_random=2000, max_rows=8000)
    models.assert_same_bits(cm(X), run(module, X))
    assert elapsed < 60, f"emit + gcc took {elapsed:.1f} s"


@pytest.mark.parametrize("seed,options", models.IRGEN_CONFIGS, ids=[str(s) for s, _ in models.IRGEN_CONFIGS])
def test_random_modules_from_irgen(seed, options, workdir):
    module = models.irgen_module(seed, options)
    cm = CModel(module, workdir)
    for fname in cm.exports:
        X = models.adversarial_rows(module, func_name=fname, seed=seed)
        models.assert_same_bits(cm(X, fname), run(module, X, fname))


# ----- property ---------------------------------------------------------------------------------------

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from hypothesis.extra import numpy as hnp  # noqa: E402


@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_random_rows_property(data, tmp_path_factory):
    """Any rows at all (every float bit pattern class) give the interpreter's bits."""
    name = data.draw(st.sampled_from(["xgb_binary", "lgb_binary", "predicate_zoo", "catboost_like"]))
    cm = built(name, tmp_path_factory.getbasetemp() / "c99-property")
    ex = cm.exports["predict"]
    dt = ex.in_elem.numpy
    X = data.draw(hnp.arrays(dt, (data.draw(st.integers(1, 40)), ex.n_in), elements=st.floats(width=8 * np.dtype(dt).itemsize)))
    models.assert_same_bits(cm(X), run(cm.module, X))
