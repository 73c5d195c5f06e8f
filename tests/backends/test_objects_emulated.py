"""Cross-target objects, executed: each object is linked with zig's ld.lld and compiler-rt built
for its target, loaded into unicorn (Cortex-M0/M3/M4F, RV32IMAC/IMAFC, Cortex-A53), called
through the ABI like firmware would, and compared bit for bit with the host JIT on adversarial
rows (thresholds and their neighbours, NaN, ±inf, ±0, category edges) for every model kind the
front-ends produce: XGBoost binary/multiclass/categorical, LightGBM categorical (NaN and zero
missing types) and linear trees, CatBoost oblivious trees (one-hot, multiclass), plus the
hand-built modules that exercise every op.  The x86-64 object is linked into a shared library
and called through ctypes.

Needs unicorn and ziglang (pip install '.[test]'): skipped without them, a failure under
TIMBER_REQUIRE_TEST_TOOLS=1.  The default run covers a few models per target; `-m slow` runs
every model (and the corpus) on every target.
"""

from __future__ import annotations

import ctypes
import functools
from pathlib import Path

import numpy as np
import pytest

from backends.llvm.jit import compile_lowered
from backends.llvm.lower import lower_module
from backends.llvm.objfile import emit_object
from backends.llvm.target import host_target
from backends.llvm.targets import resolve_target
from ir.dialects import func
from tests import rows as adv
from tests.backends import test_c99_wat_models as hand
from tests.backends.test_llvm import assert_same_bits
from tests.backends.xtarget import models
from tests.backends.xtarget.emulator import Emulator
from tests.backends.xtarget.toolchain import link_image, link_shared, require

EMULATED = [
    "thumbv7m-none-eabi",
    "thumbv7em-none-eabihf",
    "thumbv6m-none-eabi",
    "riscv32-unknown-elf",
    "riscv32imafc-unknown-none-elf",
    "aarch64-none-elf",
    "aarch64-linux-gnu",
]

TRAINED = {
    "demo": models.demo,
    "xgb_multiclass_categorical": models.xgb_multiclass_categorical,
    "lgb_categorical": models.lgb_categorical,
    "lgb_linear": models.lgb_linear,
    "catboost_onehot": lambda: models.catboost_models()["catboost_onehot"],
    "catboost_multiclass": lambda: models.catboost_models()["catboost_multiclass"],
}
HAND = {name: (lambda b=build: models._default(b())) for name, build in hand.MODELS.items()}
ALL = {**TRAINED, **HAND}
# The default run: a few models per target, every model kind on two or more targets, all of
# them on the Cortex-M3, whose soft-float code is the most intricate.  The hand-built arith/math
# zoo on the M3 (45 s of emulation) is in the slow sweep; tests/backends/test_math_objects.py
# covers every math function on the M3 by default.
DEFAULT_MODELS = {
    "thumbv7m-none-eabi": [*TRAINED, "predicate_zoo", "forest_mixed", "catboost_like"],
    "thumbv7em-none-eabihf": ["xgb_multiclass_categorical", "lgb_linear", "catboost_onehot"],
    "thumbv6m-none-eabi": ["demo", "lgb_categorical"],
    "riscv32-unknown-elf": ["lgb_categorical", "catboost_multiclass", "forest_mixed"],
    "riscv32imafc-unknown-none-elf": ["xgb_multiclass_categorical", "lgb_linear", "catboost_onehot"],
    "aarch64-linux-gnu": ["demo"],
}
DEFAULT = [(t, m) for t, names in DEFAULT_MODELS.items() for m in names]
SWEEP = [(t, m) for t in EMULATED for m in ALL if (t, m) not in DEFAULT]


@pytest.fixture(scope="module", autouse=True)
def tools():
    require("unicorn")
    require("ziglang")


@functools.cache
def module(name: str):
    return ALL[name]()


@functools.cache
def host(name: str):
    """The host JIT of the same module: the reference every object must equal bit for bit."""
    return compile_lowered(lower_module(module(name), host_target()))


def rows(name: str, fname: str) -> np.ndarray:
    """Adversarial rows for one function, in its input type: the C99/WAT tests' generator, plus
    tests/rows.py's rows for the model's own input."""
    m = module(name)
    X = hand.adversarial_rows(m, func_name=fname, max_rows=1500)
    f = m.lookup(fname)
    n_in = f.function_type.inputs[0].shape[0]
    if f.body.ops and any(op.name == "tree.ensemble" or op.name == "func.call" for op in f.body.ops) and n_in == adv.n_features(m):
        with np.errstate(over="ignore"):
            X = np.concatenate([X, adv.adversarial_rows(m, n_mixed=100).astype(X.dtype)])
    return X


def reference(name: str, symbol: str, X: np.ndarray) -> np.ndarray:
    j = host(name)
    e = j.lowered.export(symbol)
    out = np.zeros((len(X), e.n_outputs), e.out_dtype)
    assert j.function(symbol)(X.ctypes.data, len(X), out.ctypes.data, None) == 0
    return out


@functools.cache
def emulated(name: str, target: str, prefix: str = "timber_"):
    """(ObjectResult, Emulator) of a model's object linked for its target."""
    r = emit_object(module(name), target, prefix=prefix)
    work = Path(pytest.importorskip("tempfile").mkdtemp(prefix="timber-obj-"))
    image = link_image([r.object], r.target, r.exports, work)
    return r, Emulator(image, r.target)


def check(name: str, target: str) -> None:
    r, emu = emulated(name, target)
    for e in r.lowered.exports:
        X = rows(name, e.func)
        want = reference(name, e.symbol if not e.single else e.symbol.removesuffix("_single"), X)
        if e.single:
            X, want = X[:200], want[:200]
        rc, got = emu.infer(e.symbol, X, e.n_outputs, e.out_dtype, single=e.single)
        assert rc == 0, f"{e.symbol} returned {rc}"
        assert_same_bits(got, want)


@pytest.mark.parametrize("target, name", DEFAULT, ids=[f"{t}-{m}" for t, m in DEFAULT])
def test_object_matches_the_host_jit(target, name):
    check(name, target)


@pytest.mark.slow
@pytest.mark.parametrize("target, name", SWEEP, ids=[f"{t}-{m}" for t, m in SWEEP])
def test_object_matches_the_host_jit_sweep(target, name):
    check(name, target)


@pytest.mark.slow
@pytest.mark.parametrize("rel", hand.CORPUS_FAST)
@pytest.mark.parametrize("target", ["thumbv7m-none-eabi", "riscv32imafc-unknown-none-elf"])
def test_corpus_models_on_microcontrollers(rel, target):
    name = f"corpus:{rel}"
    ALL.setdefault(name, lambda: models._default(hand.corpus_module(rel)))
    check(name, target)


@pytest.mark.parametrize("target", ["thumbv7m-none-eabi", "riscv32-unknown-elf", "aarch64-none-elf"])
def test_error_codes_and_empty_batches(target):
    """The C99 back-end's codes: n < 0 is ERR_BOUNDS (-3), a NULL pointer ERR_NULL (-1), and
    n = 0 is fine with NULL pointers."""
    r, emu = emulated("demo", target)
    io = 0x1000_0000
    emu.infer("timber_infer", np.zeros((1, 30), np.float32), 1, np.float32)  # maps the I/O area
    assert emu.call("timber_infer", [io, -1, io + 256, 0]) == -3
    assert emu.call("timber_infer", [0, 1, io + 256, 0]) == -1
    assert emu.call("timber_infer", [io, 1, 0, 0]) == -1
    assert emu.call("timber_infer", [0, 0, 0, 0]) == 0
    assert emu.call("timber_infer_single", [0, io + 256, 0]) == -1
    assert emu.call("timber_infer_single", [io, 0, 0]) == -1


def test_two_prefixed_models_link_into_one_firmware():
    t = "thumbv7m-none-eabi"
    a = emit_object(module("demo"), t, prefix="cancer_")
    b = emit_object(module("lgb_categorical"), t, prefix="churn_")
    work = Path(pytest.importorskip("tempfile").mkdtemp(prefix="timber-two-"))
    emu = Emulator(link_image([a.object, b.object], a.target, a.exports + b.exports, work), a.target)
    for name, r, prefix in (("demo", a, "cancer_"), ("lgb_categorical", b, "churn_")):
        X = rows(name, "predict")
        e = r.lowered.export(prefix + "infer")
        rc, got = emu.infer(e.symbol, X, e.n_outputs, e.out_dtype)
        assert rc == 0
        assert_same_bits(got, reference(name, "timber_infer", X))


@pytest.mark.parametrize(
    "target", ["thumbv7m-none-eabi", "thumbv7em-none-eabihf", "riscv32-unknown-elf", "riscv32imafc-unknown-none-elf", "aarch64-none-elf"]
)
def test_stack_use_stays_within_the_report(target):
    """The deepest stack byte each entry point writes (the stack is filled with a pattern before
    the call) against `--size`'s static figure.  Our own frames can never go deeper than the
    report says; soft-float helpers from compiler-rt add theirs on top (measured for the demo:
    84 B on the M3, 108 B on the M4F, 80 B on both RV32 cores, none on AArch64)."""
    r, emu = emulated("demo", target)
    report = r.sizes().stack
    libcall_frames = 160 if r.undefined_symbols else 0
    X = rows("demo", "predict")[:100]
    for sym in r.exports:
        e = r.lowered.export(sym)
        emu.infer(sym, X, e.n_outputs, e.out_dtype, single=e.single, measure_stack=True)
        used = emu.stack_used
        assert report[sym] is not None
        assert used <= report[sym] + libcall_frames, (sym, used, report[sym])
        # and not a wild over-estimate: an unwritten part of a frame, or re-alignment padding
        # that happened not to be needed, is all it may add
        assert report[sym] <= used + max(64, report[sym] // 20), (sym, used, report[sym])


@pytest.mark.parametrize(
    "target, small",
    [("aarch64-none-elf", True), pytest.param("thumbv7m-none-eabi", False, marks=pytest.mark.slow)],  # 64-row soft-float blocks: 10 s
)
def test_code_shape_override(target, small, tmp_path):
    """`small=` overrides the target's default: single-row code on AArch64 (a few hundred bytes
    of stack), 64-row blocks with masked tails on a Cortex-M3 (kilobytes of stack)."""
    r = emit_object(module("lgb_categorical"), target, small=small)
    assert r.target.small == small
    stack = r.sizes().stack["timber_infer"]
    assert (stack < 512) if small else (stack > 64 * 5 * 8)
    emu = Emulator(link_image([r.object], r.target, r.exports, tmp_path), r.target)
    X = rows("lgb_categorical", "predict")
    for n in (len(X), 64 + 9, 5):  # full blocks, a masked partial block, single rows
        rc, got = emu.infer("timber_infer", X[:n], 1, np.float64)
        assert rc == 0
        assert_same_bits(got, reference("lgb_categorical", "timber_infer", X[:n]))


def test_x86_64_object_through_ctypes(tmp_path):
    """The x86-64 object (baseline CPU, PIC) as a shared library in this process."""
    if not host_target().triple.startswith("x86_64") or "linux" not in host_target().triple:
        pytest.skip("needs an x86-64 Linux host")
    for name in ("demo", "catboost_multiclass"):
        r = emit_object(module(name), "x86_64")
        lib = ctypes.CDLL(str(link_shared(r.object, tmp_path / name)))
        for e in r.lowered.exports:
            if e.single:
                continue
            X = np.ascontiguousarray(rows(name, e.func))
            out = np.full((len(X), e.n_outputs), -1, e.out_dtype)
            fn = getattr(lib, e.symbol)
            fn.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p]
            assert fn(X.ctypes.data, len(X), out.ctypes.data, None) == 0
            assert_same_bits(out, reference(name, e.symbol, X))


def test_every_public_function_is_exported():
    r, _ = emulated("demo", "thumbv7m-none-eabi")
    names = [f.sym_name for f in module("demo").body.ops if isinstance(f, func.FuncOp)]
    assert sorted(r.exports) == sorted(["timber_infer", "timber_infer_single"] + [f"timber_infer_{n}" for n in names if n != "predict"])
    assert resolve_target("thumbv7m-none-eabi").small
