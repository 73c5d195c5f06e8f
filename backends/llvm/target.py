"""Targets: what the kernels may use (vector width, in-register table permutes) and the LLVM
target machine that compiles for it.

Lowering reads only a `TargetInfo`, so the same lowering serves the host JIT and, later,
object files for other triples.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import llvmlite.binding as llvm


@dataclass(frozen=True)
class TargetInfo:
    """What generated code may assume about the machine.

    `lanes`: rows per SIMD vector in the tree kernels (1 = scalar code).  `permute`: which
    in-register table lookups exist: "avx512" (vpermps/vpermi2ps on 16 lanes), "avx2"
    (vpermps on 8 lanes) or None (tables are read with gathers or loads).  `block_rows`:
    rows per block of the batch entry point; None lets the lowering choose (64 on hosts), 1
    gives row-by-row code whose stack holds one row (microcontrollers).  `small`: optimise
    for code size (microcontrollers): one kernel variant per tree segment instead of a fast
    path for rows without missing values, and every function `optsize minsize`.
    `split_gathers`: x86 with AVX2 but not AVX-512 (see `host_target`): gathers of 32-bit
    elements are hardware gathers, those of 64-bit elements and the strided row transposes
    scalar loads.  `bitvectors`: walked trees of up to 64 leaves run as bitvector (QuickScorer)
    segments (`plan._bitvector_segments`); measured on x86-64 hosts only, so only the host
    JIT turns it on.  `stack_align`: alignment of stack buffers; objects ask for the ABI's 16
    bytes, whose frames LLVM's call-frame information bounds exactly (`--size`); the host JIT
    keeps cache lines (a larger alignment makes LLVM re-align the stack through the frame
    pointer)."""

    triple: str
    cpu: str
    features: str
    lanes: int
    permute: str | None
    block_rows: int | None = None
    small: bool = False
    libm: bool = False
    split_gathers: bool = False
    bitvectors: bool = False
    stack_align: int = 64

    @property
    def is_x86(self) -> bool:
        return self.triple.startswith(("x86_64", "i386", "i686"))


@cache
def init_llvm() -> None:
    """Initialise LLVM's native target once (`llvm.initialize()` raises in llvmlite 0.50)."""
    llvm.initialize_native_target()
    llvm.initialize_native_asmprinter()


def _capabilities(triple: str, features: str) -> tuple[int, str | None]:
    flags = set(features.split(","))
    if triple.startswith("x86_64"):
        if "+avx512f" in flags:
            return 16, "avx512"
        if "+avx2" in flags:
            return 8, "avx2"
        return 4, None
    if triple.startswith("aarch64"):
        return 4, None
    return 1, None


@cache
def host_target() -> TargetInfo:
    """The machine this process runs on: its triple, CPU name and feature string.

    Without AVX-512, LLVM turns every vector gather into scalar loads unless the CPU model
    is known for fast gathers (recent Intel cores), and a masked gather into a branch per lane.
    On an AVX2 host Timber asks for hardware gathers (`+fast-gather`) and writes the gathers
    that are faster as loads as loads itself (`split_gathers`).  Measured on AMD EPYC (Zen 3),
    one process, 20k rows, rows/s: LightGBM 500 trees x 63 leaves (walk kernel) 25k -> 50k;
    the XGBoost demo 6.0M -> 6.5-6.9M; CatBoost 500 oblivious trees 2.57M -> 2.65M (with
    hardware gathers of its 64-bit leaves too: 1.66M); XGBoost 1000 trees depth 8 unchanged."""
    init_llvm()
    triple = llvm.get_process_triple()
    cpu = llvm.get_host_cpu_name()
    features = llvm.get_host_cpu_features().flatten()
    lanes, permute = _capabilities(triple, features)
    split = permute == "avx2"
    if split and "+fast-gather" not in features.split(","):
        features += ",+fast-gather"
    return TargetInfo(triple, cpu, features, lanes, permute, split_gathers=split, bitvectors=triple.startswith("x86_64"))


def target_machine(info: TargetInfo, opt: int = 3, jit: bool = True):
    """An LLVM TargetMachine for `info`.  The JIT uses the default JIT code model (large on
    x86-64), so big forests' tables can never be out of reach of a 32-bit relocation."""
    init_llvm()
    target = llvm.Target.from_triple(info.triple)
    return target.create_target_machine(cpu=info.cpu, features=info.features, opt=opt, codemodel="jitdefault" if jit else "small", jit=jit)
