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
FUNCTIONS = ("exp", "log1p", "log", "sin", "cos", "tanh")
SYMBOLS = tuple(n + s for n in FUNCTIONS for s in ("", "f"))


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
    for fname in SYMBOLS:
        fn = getattr(lib, fname)
        t = ctypes.c_float if fname.endswith("f") else ctypes.c_double
        fn.restype, fn.argtypes = t, [t]
    return lib


def call(fname: str, x: np.ndarray) -> np.ndarray:
    """The C library's `fname` (f64) or `fname`+f (f32) on every element of x."""
    x = np.asarray(x)
    f32 = x.dtype == np.float32
    fn = getattr(c_math_library(), fname + ("f" if f32 else ""))
    flat = [fn(v) for v in x.ravel().tolist()]
    return np.array(flat, np.float32 if f32 else np.float64).reshape(x.shape)
