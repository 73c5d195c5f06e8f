"""The host JIT: parse the lowered text, verify, optimise with the new pass manager, MCJIT,
and hand out ctypes entry points (which release the GIL while they run).

`compile_lowered` keeps the object code MCJIT produced (`JitModule.object_code`), and
`load_object` puts such object code back into a fresh engine without running LLVM's optimiser
or code generator: a stored or pickled model loads in milliseconds (`timber/artifact.py`)."""

from __future__ import annotations

import ctypes
import time
from dataclasses import dataclass, field

import llvmlite.binding as llvm

from ir import libm

from .lower import Export, Lowered
from .target import TargetInfo, host_target, target_machine

BATCH_PROTO = ctypes.CFUNCTYPE(ctypes.c_int32, ctypes.c_void_p, ctypes.c_int32, ctypes.c_void_p, ctypes.c_void_p)
SINGLE_PROTO = ctypes.CFUNCTYPE(ctypes.c_int32, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p)


@dataclass
class JitModule:
    """Machine code for a lowered module, loaded in this process."""

    lowered: Lowered
    target: TargetInfo
    opt: int
    engine: object
    functions: dict[str, object]
    timings: dict[str, float] = field(default_factory=dict)
    # the relocatable host object MCJIT compiled (None if the engine did not report one)
    object_code: bytes | None = None

    def function(self, symbol: str):
        """The ctypes function of an exported symbol (see `backends.llvm.lower.Export`)."""
        return self.functions[symbol]

    def assembly(self) -> str:
        """Host assembly of the module, optimised as the JIT compiled it (for debugging and tests)."""
        tm = target_machine(self.target, self.opt)
        return tm.emit_assembly(optimize(self.lowered.text, tm, self.opt))


def optimize(text: str, tm, opt: int):
    """Parse and verify LLVM text, then run the new pass manager's O`opt` pipeline on it."""
    mod = llvm.parse_assembly(text)
    mod.verify()
    pb = llvm.create_pass_builder(tm, llvm.create_pipeline_tuning_options(speed_level=opt))
    pb.getModulePassManager().run(mod, pb)
    return mod


def _bind_c_math_library() -> None:
    """Resolve the C library functions `libm` code calls to this process's math library (the one
    the frameworks call), whatever MCJIT's own symbol search would find."""
    lib = libm.c_math_library()
    for name in libm.SYMBOLS:
        llvm.add_symbol(name, ctypes.cast(getattr(lib, name), ctypes.c_void_p).value)


def compile_lowered(lowered: Lowered, target: TargetInfo | None = None, opt: int = 3) -> JitModule:
    """JIT-compile `lowered` for the host.  `timings` records each phase in seconds."""
    target = target or host_target()
    if target.libm:
        _bind_c_math_library()
    timings = {}
    t = time.perf_counter()
    text = lowered.text
    timings["text"] = time.perf_counter() - t
    t = time.perf_counter()
    tm = target_machine(target, opt)
    mod = optimize(text, tm, opt)
    timings["optimize"] = time.perf_counter() - t
    t = time.perf_counter()
    engine = llvm.create_mcjit_compiler(mod, tm)
    objects: list[bytes] = []
    # MCJIT hands the object it generates to the cache: kept, it is what an artifact stores.
    engine.set_object_cache(notify_func=lambda _module, data: objects.append(bytes(data)))
    engine.finalize_object()
    timings["codegen"] = time.perf_counter() - t
    functions = {e.symbol: _prototype(e)(engine.get_function_address(e.symbol)) for e in lowered.exports}
    return JitModule(lowered, target, opt, engine, functions, timings, objects[0] if len(objects) == 1 else None)


def load_object(object_code: bytes, lowered, target: TargetInfo, opt: int = 3) -> JitModule:
    """Load object code made by `compile_lowered` (for a CPU whose features `target` has) into
    a new engine: no LLVM optimisation or code generation, only relocation.  `lowered` gives the
    exports (an object with `exports`, as `Lowered`).  Raises `ValueError` if the engine cannot
    find an exported symbol in the object."""
    if target.libm:
        _bind_c_math_library()
    t = time.perf_counter()
    tm = target_machine(target, opt)
    stub = llvm.parse_assembly(f'target triple = "{target.triple}"\n')
    engine = llvm.create_mcjit_compiler(stub, tm)
    engine.add_object_file(llvm.ObjectFileRef.from_data(object_code))
    engine.finalize_object()
    functions = {}
    for e in lowered.exports:
        address = engine.get_function_address(e.symbol)
        if not address:
            raise ValueError(f"the object code has no symbol {e.symbol}")
        functions[e.symbol] = _prototype(e)(address)
    timings = {"load_object": time.perf_counter() - t}
    return JitModule(lowered, target, opt, engine, functions, timings, object_code)


def _prototype(e: Export):
    return SINGLE_PROTO if e.single else BATCH_PROTO
