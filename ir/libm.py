"""The C library's math functions, as this process calls them.

XGBoost and LightGBM call the C library's `exp`/`expf`/`log1p`, so the host JIT calls them too by
default (`timber.compile(math="libm")`): then probabilities are the framework's bits on whatever
machine and libm this is.  This is the one place Timber finds that library: the JIT binds its
symbols from here, and the interpreter's "libm" mode calls it.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from functools import cache

import numpy as np

# f64 names; each has an f32 variant with an `f` suffix
FUNCTIONS = ("exp", "exp2", "log1p", "log", "sin", "cos", "tanh")
# Functions the library computes with another one: exp2(x) is pow(2, x), which is what numpy's
# `2 ** x` calls (glibc's own exp2 differs from pow in the last bit on ~0.1% of inputs).
VIA_POW2 = ("exp2",)
UNARY_SYMBOLS = tuple(n + s for n in FUNCTIONS if n not in VIA_POW2 for s in ("", "f"))
BINARY_SYMBOLS = ("pow", "powf")
# sincos(x, &s, &c): one reduction for both (glibc's gives sin's and cos's bits; the host JIT
# calls it for the sin and cos of one double)
SINCOS_SYMBOLS = ("sincos",)
SYMBOLS = UNARY_SYMBOLS + BINARY_SYMBOLS + SINCOS_SYMBOLS  # every symbol generated code may call


@cache
def c_math_library() -> ctypes.CDLL:
    """The C math library of this process (the one XGBoost and LightGBM call), with the
    functions Timber may call typed."""
    lib = None
    for name in (ctypes.util.find_library("m"), "libm.so.6", "ucrtbase", "msvcrt"):
        if not name:
            continue
        try:
            lib = ctypes.CDLL(name)
            break
        except OSError:
            continue
    lib = lib if lib is not None else ctypes.CDLL(None)
    for fname in UNARY_SYMBOLS:
        fn = getattr(lib, fname)
        t = ctypes.c_float if fname.endswith("f") else ctypes.c_double
        fn.restype, fn.argtypes = t, [t]
    for fname in BINARY_SYMBOLS:
        fn = getattr(lib, fname)
        t = ctypes.c_float if fname.endswith("f") else ctypes.c_double
        fn.restype, fn.argtypes = t, [t, t]
    return lib


def call(fname: str, x: np.ndarray) -> np.ndarray:
    """The C library's `fname` (f64) or `fname`+f (f32) on every element of x."""
    x = np.asarray(x)
    f32 = x.dtype == np.float32
    suffix = "f" if f32 else ""
    if fname in VIA_POW2:
        pw = getattr(c_math_library(), "pow" + suffix)
        flat = [pw(2.0, v) for v in x.ravel().tolist()]
    else:
        fn = getattr(c_math_library(), fname + suffix)
        flat = [fn(v) for v in x.ravel().tolist()]
    return np.array(flat, np.float32 if f32 else np.float64).reshape(x.shape)
