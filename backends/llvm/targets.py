"""The cross targets Timber emits object files for, and how a target the user types becomes
what LLVM needs.

Users type short triples (`thumbv7m-none-eabi`, Rust's `riscv32imac-unknown-none-elf`, ...).
LLVM must get a full 4-part triple: `thumbv7em-none-eabihf` read as it stands has OS =
"eabihf" and silently gets the soft-float calling convention.  `resolve_target` turns any of
the accepted spellings into a `CrossTarget`: the full triple, CPU, features, RISC-V ABI name,
relocation model, and how the lowering should shape code for it (`TargetInfo`).

What the CPU computes in hardware is asked of LLVM itself (a probe compiles `fadd float` and
`fadd double` and looks for a library call), so the float ABI check, the allowed libcalls and
the size report never disagree with the code LLVM actually emits.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from dataclasses import dataclass, replace
from functools import cache

import llvmlite.binding as llvm

from ir.diagnostics import TimberError

from .target import TargetInfo, host_target


@dataclass(frozen=True)
class Preset:
    """A target Timber knows by name: every spelling users type for it, and its defaults."""

    names: tuple[str, ...]  # the first one is the canonical name
    triple: str  # the full triple handed to LLVM
    cpu: str
    features: str
    description: str


PRESETS = (
    Preset(
        ("thumbv7m-none-eabi", "thumbv7m-unknown-none-eabi", "cortex-m3"),
        "thumbv7m-unknown-none-eabi",
        "cortex-m3",
        "",
        "Cortex-M3: Thumb-2, no FPU (soft float), EABI",
    ),
    Preset(
        ("thumbv7em-none-eabihf", "thumbv7em-unknown-none-eabihf", "cortex-m4f"),
        "thumbv7em-unknown-none-eabihf",
        "cortex-m4",
        "",
        "Cortex-M4F: single-precision FPU, hard-float ABI (float arguments in VFP registers)",
    ),
    Preset(
        ("thumbv6m-none-eabi", "thumbv6m-unknown-none-eabi", "cortex-m0"),
        "thumbv6m-unknown-none-eabi",
        "cortex-m0plus",
        "",
        "Cortex-M0/M0+: ARMv6-M, no FPU, no divide",
    ),
    Preset(
        ("aarch64-none-elf", "aarch64-unknown-none-elf", "aarch64-unknown-none"),
        "aarch64-unknown-none-elf",
        "generic",
        # bare metal runs with the MMU off until the firmware sets it up: no unaligned accesses
        "+neon,+fp-armv8,+strict-align",
        "AArch64 bare metal (ARMv8-A, NEON)",
    ),
    Preset(
        ("aarch64-linux-gnu", "aarch64-unknown-linux-gnu"),
        "aarch64-unknown-linux-gnu",
        "generic",
        "+neon,+fp-armv8",
        "AArch64 Linux (position-independent)",
    ),
    Preset(
        ("riscv32-unknown-elf", "riscv32-unknown-none-elf", "riscv32imac-unknown-none-elf", "riscv32imac"),
        "riscv32-unknown-none-elf",
        "generic-rv32",
        "+m,+a,+c",
        "RISC-V RV32IMAC, ilp32 (soft float)",
    ),
    Preset(
        ("riscv32imafc-unknown-none-elf", "riscv32-unknown-elf+f", "riscv32imafc"),
        "riscv32-unknown-none-elf",
        "generic-rv32",
        "+m,+a,+f,+c",
        "RISC-V RV32IMAFC, ilp32f (single-precision FPU)",
    ),
    Preset(
        ("x86_64-linux-gnu", "x86_64-unknown-linux-gnu", "x86_64"),
        "x86_64-unknown-linux-gnu",
        "x86-64",
        "",
        "x86-64 Linux, baseline CPU (SSE2), position-independent",
    ),
)
_BY_NAME = {n: p for p in PRESETS for n in p.names}

# Library functions generated code may call, per architecture family.  Soft-float helpers are
# allowed only for the precisions the CPU lacks (see `CrossTarget.hardware_float`).
_MEM = frozenset({"memcpy", "memmove", "memset"})
_AEABI_OPS = ("add", "sub", "rsub", "mul", "div", "cmpeq", "cmplt", "cmple", "cmpge", "cmpgt", "cmpun", "2iz", "2uiz", "2lz", "2ulz")
_AEABI_FROM_INT = ("i2", "ui2", "l2", "ul2")
_LIBGCC_CONV = (
    "__fix{t}fsi",
    "__fixuns{t}fsi",
    "__fix{t}fdi",
    "__fixuns{t}fdi",
    "__floatsi{t}f",
    "__floatunsi{t}f",
    "__floatdi{t}f",
    "__floatundi{t}f",
)


def _aeabi(p: str) -> set[str]:
    """ARM run-time ABI helpers of one precision (p = "f" or "d")."""
    names = {f"__aeabi_{p}{op}" for op in _AEABI_OPS} | {f"__aeabi_{i}{p}" for i in _AEABI_FROM_INT}
    return names | {f"__aeabi_c{p}cmpeq", f"__aeabi_c{p}cmple", f"__aeabi_c{p}rcmple"}


def _libgcc(p: str) -> set[str]:
    """libgcc / compiler-rt soft-float helpers of one precision (p = "s" or "d")."""
    names = {f"__{op}{p}f3" for op in ("add", "sub", "mul", "div")}
    names |= {f"__{op}{p}f2" for op in ("neg", "eq", "ne", "lt", "le", "gt", "ge", "unord", "cmp")}
    return names | {c.format(t=p) for c in _LIBGCC_CONV}


_ARM_INT = {"__aeabi_idiv", "__aeabi_uidiv", "__aeabi_idivmod", "__aeabi_uidivmod", "__aeabi_ldivmod", "__aeabi_uldivmod"}
_ARM_INT |= {"__aeabi_llsl", "__aeabi_llsr", "__aeabi_lasr", "__aeabi_lmul"}
_ARM_MEM = {f"__aeabi_{op}{w}" for op in ("memcpy", "memmove", "memset", "memclr") for w in ("", "4", "8")}
_RV_INT = {"__mulsi3", "__divsi3", "__udivsi3", "__modsi3", "__umodsi3", "__muldi3", "__divdi3", "__udivdi3", "__moddi3", "__umoddi3"}
_RV_INT |= {"__ashldi3", "__ashrdi3", "__lshrdi3"}

_SOFT = {
    "arm": ({"f32": _aeabi("f"), "f64": _aeabi("d"), "conv": {"__aeabi_f2d", "__aeabi_d2f"}}, _ARM_INT | _ARM_MEM),
    "riscv32": ({"f32": _libgcc("s"), "f64": _libgcc("d"), "conv": {"__extendsfdf2", "__truncdfsf2"}}, _RV_INT),
    "riscv64": ({"f32": _libgcc("s"), "f64": _libgcc("d"), "conv": {"__extendsfdf2", "__truncdfsf2"}}, set()),
    "aarch64": ({"f32": set(), "f64": set(), "conv": set()}, set()),
    "x86_64": ({"f32": set(), "f64": set(), "conv": set()}, set()),
}


@dataclass(frozen=True)
class CrossTarget:
    """Everything needed to emit an object for one target.

    `triple`, `cpu`, `features`, `abiname`, `reloc` go to LLVM's TargetMachine (code model
    small).  `small`: a microcontroller, which gets single-row, size-optimised code (see
    `TargetInfo.small`); otherwise the host-style 64-row blocks with `lanes`-wide vectors."""

    name: str
    triple: str
    cpu: str
    features: str
    abiname: str
    reloc: str
    small: bool
    lanes: int
    description: str

    @property
    def family(self) -> str:
        """The architecture family: arm (and Thumb), aarch64, riscv32, riscv64 or x86_64."""
        return _family(self.triple.split("-")[0])

    def target_info(self) -> TargetInfo:
        """What the lowering may assume about this target."""
        if self.small:
            return TargetInfo(self.triple, self.cpu, self.features, 1, None, block_rows=1, small=True)
        return TargetInfo(self.triple, self.cpu, self.features, self.lanes, None, stack_align=16)

    def machine(self, opt: int = 2):
        """LLVM's TargetMachine: small code model, static relocation on bare metal, PIC on Linux."""
        return _machine(self.triple, self.cpu, self.features, self.abiname, self.reloc, opt)

    @property
    def hardware_float(self) -> frozenset[str]:
        """The precisions ("f32", "f64") whose arithmetic LLVM emits as instructions here."""
        return _probe_float(self.triple, self.cpu, self.features, self.abiname, self.reloc)

    @property
    def allowed_libcalls(self) -> frozenset[str]:
        """Symbols the object may leave undefined: soft-float helpers for the precisions the
        CPU lacks, integer helpers of the architecture's run-time ABI, and memcpy/memset."""
        soft, ints = _SOFT[self.family]
        names = set(_MEM) | ints
        hw = self.hardware_float
        for p in ("f32", "f64"):
            if p not in hw:
                names |= soft[p] | soft["conv"]
        return frozenset(names)


def _family(arch: str) -> str:
    if arch.startswith(("thumb", "arm")):
        return "arm"
    if arch.startswith(("aarch64", "arm64")):
        return "aarch64"
    for fam in ("riscv32", "riscv64", "x86_64"):
        if arch.startswith(fam):
            return fam
    return ""


def target_names() -> list[tuple[str, str]]:
    """(canonical name, description) of every preset, for help texts and the README."""
    return [(p.names[0], p.description) for p in PRESETS]


def resolve_target(text: str, cpu: str | None = None, features: str | None = None) -> CrossTarget:
    """The `CrossTarget` for what a user typed: a preset name (`thumbv7m-none-eabi`,
    `riscv32imafc-unknown-none-elf`, ...), `native` (this machine), or any triple of a supported
    architecture (ARM/Thumb, AArch64, RISC-V, x86-64), normalised to a full 4-part triple.
    `cpu` replaces the CPU; `features` ("+f,-c") is appended to the target's own features.

    Raises `TimberError` for an unknown architecture, a CPU or feature LLVM does not know, or a
    hard-float ABI on a CPU without the FPU it needs."""
    raw = text.strip()
    key = raw.lower()
    if key in ("native", "host"):
        h = host_target()
        base = CrossTarget(raw, _full_triple(h.triple), h.cpu, h.features, "", "pic", False, h.lanes, "this machine")
    elif key in _BY_NAME:
        p = _BY_NAME[key]
        base = _from_triple(raw, p.triple, p.cpu, p.features, p.description)
    else:
        base = _generic(raw)
    if cpu:
        base = replace(base, cpu=cpu)
    if features:
        extra = ",".join(f.strip() for f in features.split(",") if f.strip())
        bad = [f for f in extra.split(",") if f[:1] not in "+-"]
        if bad:
            raise TimberError(f"target feature '{bad[0]}' must start with '+' (enable) or '-' (disable), e.g. '+f,-c'")
        base = replace(base, features=",".join(f for f in (base.features, extra) if f))
    if base.family == "x86_64" and key not in ("native", "host"):
        base = replace(base, lanes=_x86_lanes(base.features))
    if base.family.startswith("riscv"):
        base = replace(base, abiname=_riscv_abi(base.family, base.features))
    _validate(base, trusted=key in _BY_NAME and not cpu and not features)
    return base


def _full_triple(t: str) -> str:
    parts = t.split("-")
    if len(parts) == 3 and parts[1] in ("linux", "none"):
        parts.insert(1, "unknown")
    return "-".join(parts)


def _from_triple(name: str, triple: str, cpu: str, features: str, description: str) -> CrossTarget:
    fam = _family(triple.split("-")[0])
    bare = "-none" in triple
    small = bare and (fam in ("riscv32",) or bool(re.match(r"thumbv(6m|7m|7em|8m|8\.1m)", triple)))
    lanes = 1 if small else {"aarch64": 4, "x86_64": 4}.get(fam, 1)
    reloc = "static" if bare else "pic"
    return CrossTarget(name, triple, cpu, features, "", reloc, small, lanes, description)


_M_PROFILE_CPU = {"v6m": "cortex-m0plus", "v7m": "cortex-m3", "v7em": "cortex-m4", "v8m.base": "cortex-m23", "v8m.main": "cortex-m33"}
_M_PROFILE_CPU["v8.1m.main"] = "cortex-m55"


def _generic(text: str) -> CrossTarget:
    """A triple that is not a preset: arch[-vendor][-os][-env], normalised."""
    parts = text.lower().split("-")
    arch = parts[0]
    fam = _family(arch)
    if not fam:
        names = ", ".join(p.names[0] for p in PRESETS)
        raise TimberError(f"unknown target '{text}': supported are {names}, native, or another ARM/AArch64/RISC-V/x86-64 triple")
    rest = parts[1:]
    linux = "linux" in rest
    env = next((p for p in rest if p.startswith(("eabi", "gnu", "musl", "elf"))), "")
    features = ""
    cpu = "generic"
    if fam == "arm":
        m = re.match(r"(thumb|arm)(v[0-9.]+[a-z.]*)?$", arch)
        sub = m.group(2) if m else None
        if m is None or not sub:
            raise TimberError(f"target '{text}': name the ARM architecture version, e.g. thumbv7m-none-eabi")
        env = env if env.startswith("eabi") else ("gnueabihf" if linux and "hf" in text else "eabi")
        cpu = _M_PROFILE_CPU.get(sub, "generic")
    elif fam.startswith("riscv"):
        letters = arch[len(fam) :]
        if letters:
            if not re.fullmatch(r"[imafdcg]+", letters) or not letters.startswith(("i", "g")):
                raise TimberError(f"target '{text}': '{letters}' is not a RISC-V ISA string Timber reads (letters from i, m, a, f, d, c)")
            letters = letters.replace("g", "imafd")
            features = ",".join(f"+{c}" for c in "mafdc" if c in letters)
        else:
            features = "+m,+a,+c"
        arch = fam
        cpu = f"generic-rv{fam[5:]}"
        env = env or "elf"
    elif fam == "aarch64":
        features = "+neon,+fp-armv8" + ("" if linux else ",+strict-align")
        env = env or ("gnu" if linux else "elf")
    else:  # x86_64
        cpu = "x86-64"
        env = env or ("gnu" if linux else "elf")
    triple = f"{arch}-unknown-{'linux' if linux else 'none'}-{env or 'elf'}"
    return _from_triple(text, triple, cpu, features, f"{triple} (generic {fam})")


def _enabled(features: str, name: str) -> bool:
    """Whether the last mention of `name` in a feature string enables it."""
    state = False
    for f in features.split(","):
        if f[1:] == name:
            state = f[0] == "+"
    return state


def _riscv_abi(fam: str, features: str) -> str:
    base = "ilp32" if fam == "riscv32" else "lp64"
    if _enabled(features, "d"):
        return base + "d"
    return base + "f" if _enabled(features, "f") else base


def _x86_lanes(features: str) -> int:
    return 16 if _enabled(features, "avx512f") else 8 if _enabled(features, "avx2") else 4


def _validate(t: CrossTarget, trusted: bool) -> None:
    """Check a target before anything is compiled for it.

    LLVM reports an unknown CPU or feature only as a warning on stderr (and ignores it), and
    aborts the whole process on some invalid combinations (an unknown RISC-V CPU, for one).
    So a target that is not an unmodified preset is first tried in a child process; its
    warnings become errors.  A hard-float ABI the CPU cannot honour is an error too (LLVM would
    pass floats in core registers while the ABI says VFP registers)."""
    if not trusted:
        warnings = _try_in_child(t)
        for line in warnings.splitlines():
            m = re.search(r"'([^']*)' is not a recognized (processor|feature)", line)
            if m:
                what = "CPU" if m.group(2) == "processor" else "feature"
                raise TimberError(f"LLVM does not know the {what} '{m.group(1)}' for target {t.triple}")
            if line.strip():
                raise TimberError(f"target {t.triple} (cpu '{t.cpu}', features '{t.features}'): LLVM says: {line.strip()}")
    if t.triple.endswith("hf") and "f32" not in t.hardware_float:
        raise TimberError(
            f"target {t.triple} uses the hard-float ABI, but CPU '{t.cpu}' (features '{t.features}') has no FPU: "
            "choose an FPU-less triple (e.g. thumbv7m-none-eabi) or a CPU with an FPU (e.g. --cpu cortex-m4)"
        )


_CHILD = """
import sys
from backends.llvm.targets import _probe_float
print(sorted(_probe_float(*sys.argv[1:6])))
"""


def _try_in_child(t: CrossTarget) -> str:
    """Create the target machine and compile a probe in a child process; return its stderr
    (LLVM's warnings), or raise TimberError with LLVM's message if the child died."""
    args = [t.triple, t.cpu, t.features, t.abiname, t.reloc]
    root = str(__import__("pathlib").Path(__file__).resolve().parents[2])
    env = {**__import__("os").environ, "PYTHONPATH": root}
    r = subprocess.run([sys.executable, "-c", _CHILD, *args], capture_output=True, text=True, env=env, timeout=120)
    if r.returncode != 0:
        msg = " ".join(line.strip() for line in r.stderr.splitlines() if "LLVM ERROR" in line or "rror" in line) or r.stderr.strip()[-300:]
        raise TimberError(f"LLVM cannot compile for target {t.triple} (cpu '{t.cpu}', features '{t.features}'): {msg}")
    json.loads(r.stdout.strip().replace("'", '"'))  # the child got as far as the probe result
    return r.stderr


@cache
def init_cross() -> None:
    """Initialise every LLVM target and its assembly printer (once)."""
    llvm.initialize_all_targets()
    llvm.initialize_all_asmprinters()


@cache
def _machine(triple: str, cpu: str, features: str, abiname: str, reloc: str, opt: int):
    init_cross()
    target = llvm.Target.from_triple(triple)
    return target.create_target_machine(cpu=cpu, features=features, opt=opt, reloc=reloc, codemodel="small", abiname=abiname)


_CALL = re.compile(r"\b(?:bl|blx|call|jal|b|callq|jmp|tail)\s+(?:ra,\s*)?([A-Za-z_][\w.$]*)")


@cache
def _probe_float(triple: str, cpu: str, features: str, abiname: str, reloc: str) -> frozenset[str]:
    tm = _machine(triple, cpu, features, abiname, reloc, 2)
    hw = set()
    for ty, name in (("float", "f32"), ("double", "f64")):
        text = f'target triple = "{triple}"\ndefine {ty} @probe({ty} %x, {ty} %y) {{\n  %z = fadd {ty} %x, %y\n  ret {ty} %z\n}}\n'
        mod = llvm.parse_assembly(text)
        mod.data_layout = str(tm.target_data)
        if not _CALL.search(tm.emit_assembly(mod).split("probe:", 1)[-1]):
            hw.add(name)
    return frozenset(hw)
