"""Every math function is the same bits in the interpreter, the host JIT (math="timber") and
cross-target objects run under emulation (AArch64, and the Cortex-M3's soft-float code), on
>= 10^5 adversarial inputs each (10^4 on the slower Cortex-M3 emulation in the default run).
The C99 and WebAssembly back-ends are checked the same way in test_c99.py / test_wat.py.

All of them lower the one `arith` expansion of each function (`ir/dialects/mathimpl/`), so this
proves the lowerings of the arith ops, not five copies of each algorithm."""

from __future__ import annotations

import dataclasses
import functools
import tempfile
from pathlib import Path

import numpy as np
import pytest

from backends.llvm.jit import compile_lowered
from backends.llvm.lower import lower_module
from backends.llvm.objfile import emit_object
from backends.llvm.target import host_target
from ir import libm
from ir.dialects import math as math_dialect
from ir.dialects import mathimpl
from ir.interpreter import run
from tests.backends.test_llvm import assert_same_bits
from tests.mathref import unary_module
from tests.rows import log1p_inputs

FUNCTIONS = [(name, "") for name in sorted(mathimpl.EXPANSIONS) if name.startswith("math.") and name != "math.softmax"] + [("math.exp", '{impl = "fmath"}')]
IDS = [n + ("-fmath" if a else "") for n, a in FUNCTIONS]


def math_inputs(n: int = 100_000, seed: int = 0) -> np.ndarray:
    """Doubles of every kind: random bit patterns (every exponent, NaN payloads, subnormals),
    specials, the neighbourhoods of 0 and ±1, multiples of pi/2 and their neighbours, the exp
    and log1p thresholds, huge values."""
    rng = np.random.default_rng(seed)
    k = n // 8
    specials = np.array(
        [np.nan, -np.nan, np.inf, -np.inf, 0.0, -0.0, 5e-324, -5e-324, 2.2250738585072014e-308, 1.0, -1.0, 0.5, -0.5,
         709.782712893384, -745.1332191019412, 708.39641853226408, 1e308, -1e308, 2.0**53, 2.0**20 * np.pi / 2, 0.999999999, -0.99999999999]
    )
    near_one = 1.0 - rng.uniform(0, 1, k) * 10.0 ** rng.uniform(-16, 0, k)
    pi2 = np.pi / 2 * rng.integers(-(2**20), 2**20, k)
    parts = [
        rng.integers(0, 2**64, k, dtype=np.uint64).view(np.float64),
        rng.normal(0, 1, k) * 10.0 ** rng.uniform(-300, 300, k),
        rng.uniform(-20, 20, k),
        rng.uniform(-1, 1, k),
        np.concatenate([near_one, -near_one]),
        np.concatenate([pi2, np.nextafter(pi2, np.inf)]),
        log1p_inputs()[:k],
        specials,
    ]
    x = np.concatenate(parts)
    return x[:n] if len(x) >= n else np.concatenate([x, rng.uniform(-800, 800, n - len(x))])


def module(op: str, attrs: str, t: str):
    return unary_module(op, t, attrs)


def inputs(t: str, n: int) -> np.ndarray:
    with np.errstate(over="ignore"):
        return math_inputs(n).astype(np.float32 if t == "f32" else np.float64).reshape(-1, 1)


@functools.cache
def reference(op: str, attrs: str, t: str, n: int) -> np.ndarray:
    return run(module(op, attrs, t), inputs(t, n))


@pytest.mark.parametrize("t", ["f64", "f32"])
@pytest.mark.parametrize("op, attrs", FUNCTIONS, ids=IDS)
def test_host_jit_is_the_expansion_bit_for_bit(op, attrs, t):
    m = module(op, attrs, t)
    target = dataclasses.replace(host_target(), libm=False)
    j = compile_lowered(lower_module(m, target), target)
    X = inputs(t, 100_000)
    out = np.zeros_like(X)
    assert j.function("timber_infer")(X.ctypes.data, len(X), out.ctypes.data, None) == 0
    assert_same_bits(out, reference(op, attrs, t, 100_000))


def _emulated(m, target: str):
    from tests.backends.xtarget.emulator import Emulator
    from tests.backends.xtarget.toolchain import link_image, require

    require("unicorn")
    require("ziglang")
    r = emit_object(m, target)
    image = link_image([r.object], r.target, r.exports, Path(tempfile.mkdtemp(prefix="timber-math-")))
    return Emulator(image, r.target)


def _check_object(op, attrs, t, target, n):
    emu = _emulated(module(op, attrs, t), target)
    X = inputs(t, n)
    rc, got = emu.infer("timber_infer", X, 1, X.dtype)
    assert rc == 0
    assert_same_bits(got, reference(op, attrs, t, n))


@pytest.mark.parametrize("t", ["f64", "f32"])
@pytest.mark.parametrize("op, attrs", FUNCTIONS, ids=IDS)
def test_aarch64_object_is_the_expansion_bit_for_bit(op, attrs, t):
    _check_object(op, attrs, t, "aarch64-none-elf", 100_000)


@pytest.mark.parametrize("op, attrs", FUNCTIONS, ids=IDS)
def test_cortex_m3_object_is_the_expansion_bit_for_bit(op, attrs):
    _check_object(op, attrs, "f64", "thumbv7m-none-eabi", 10_000)


@pytest.mark.slow
@pytest.mark.parametrize("t", ["f64", "f32"])
@pytest.mark.parametrize("op, attrs", FUNCTIONS, ids=IDS)
def test_cortex_m3_object_is_the_expansion_bit_for_bit_sweep(op, attrs, t):
    _check_object(op, attrs, t, "thumbv7m-none-eabi", 100_000)


@pytest.mark.parametrize("t", ["f64", "f32"])
@pytest.mark.parametrize("op", sorted(math_dialect.LIBM))
def test_host_jit_with_libm_calls_the_c_library(op, t):
    """math="libm": the functions a C library has are its calls (the interpreter's libm mode, bit
    for bit); the others (erfinv, fmath's exp) are still the expansions."""
    m = module(op, "", t)
    target = dataclasses.replace(host_target(), libm=True)
    lowered = lower_module(m, target)
    j = compile_lowered(lowered, target)
    X = inputs(t, 20_000)
    out = np.zeros_like(X)
    assert j.function("timber_infer")(X.ctypes.data, len(X), out.ctypes.data, None) == 0
    assert_same_bits(out, run(m, X, math="libm"))
    fname = math_dialect.LIBM[op]
    name = ("pow" if fname in libm.VIA_POW2 else fname) + ("f" if t == "f32" else "")  # exp2(x) is pow(2, x)
    assert f"@{name}(" in lowered.text or f"@llvm.{fname}." in lowered.text
