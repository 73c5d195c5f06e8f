"""Object files for other machines (Cortex-M, AArch64, RISC-V, x86-64), with no C compiler.

    r = emit_object(module, "thumbv7m-none-eabi")
    r.object          # ELF relocatable object bytes (model.o)
    r.header          # model.h: the ABI, the same file the C99 back-end writes
    r.asm, r.llvm_ir  # for inspection
    print(r.size_report())   # .text/.rodata/.data/.bss, max stack per entry point, libcalls

The module is lowered exactly as for the host JIT (`lower.py`), for the `TargetInfo` of the
target (`targets.py`): microcontrollers get single-row, size-optimised code whose stack holds
one row; AArch64 and x86-64 get the host's 64-row blocks.  LLVM's TargetMachine then emits the
object in this process: small code model, static relocation on bare metal, PIC on Linux, no
inline assembly, no libm (Timber's own `exp`).  What the object needs from the firmware
(soft-float helpers on FPU-less cores) is read back from its undefined symbols.

Stack sizes come from the object's own assembly: each function's prologue (pushes, stack
pointer subtractions, re-alignment) gives its frame, and the call graph inside the object gives
the deepest chain below each exported entry point.  Library calls add their own frames on top
(zig's compiler-rt soft-float helpers: 80 to 150 bytes, measured under emulation); the report
names them.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass, field, replace
from functools import cached_property

import llvmlite.binding as llvm

from ir.diagnostics import TimberError
from ir.verifier import verify

from .lower import Lowered, lower_module
from .targets import CrossTarget, resolve_target

OBJECT_FILES = {"obj": "model.o", "asm": "model.s", "llvm": "model.ll"}


@dataclass
class ObjectResult:
    """An emitted object and everything about it.  `asm` and `llvm_ir` are produced on first use."""

    target: CrossTarget
    prefix: str
    object: bytes
    header: str
    lowered: Lowered
    _mod: object = field(repr=False, default=None)
    _opt: int = 2

    @cached_property
    def llvm_ir(self) -> str:
        """The optimised LLVM IR the object was generated from."""
        return str(self._mod)

    @cached_property
    def asm(self) -> str:
        """Assembly of the object, from the same optimised LLVM module it was emitted from."""
        return self.target.machine(self._opt).emit_assembly(self._mod)

    @cached_property
    def elf(self) -> ElfFile:
        return ElfFile(self.object)

    @property
    def exports(self) -> list[str]:
        """The exported entry points (`<prefix>infer`, `<prefix>infer_single`, `<prefix>infer_<name>`)."""
        return [e.symbol for e in self.lowered.exports]

    @property
    def undefined_symbols(self) -> list[str]:
        """Symbols the object needs from elsewhere: the libcalls the firmware must provide."""
        return sorted({s.name for s in self.elf.symbols if s.undefined})

    def sizes(self) -> SizeReport:
        """Section sizes, max stack per entry point and libcalls, as numbers."""
        sec: dict[str, int] = {"text": 0, "rodata": 0, "data": 0, "bss": 0, "other": 0}
        others: dict[str, int] = {}
        for s in self.elf.sections:
            if not s.alloc or s.size == 0:
                continue
            kind = s.kind
            sec[kind] += s.size
            if kind == "other":
                others[s.name] = others.get(s.name, 0) + s.size
        frames = analyse_stack(self.asm, self.target.family)
        stack = {sym: max_stack(frames, sym, frozenset(self.exports)) for sym in self.exports}
        return SizeReport(self.target, sec["text"], sec["rodata"], sec["data"], sec["bss"], others, stack, self.undefined_symbols)

    def size_report(self) -> str:
        """A human-readable `--size` report."""
        return str(self.sizes())


@dataclass
class SizeReport:
    """What `--size` prints.  `stack[symbol]` is None when a frame could not be bounded."""

    target: CrossTarget
    text: int
    rodata: int
    data: int
    bss: int
    other: dict[str, int]
    stack: dict[str, int | None]
    libcalls: list[str]

    @property
    def flash(self) -> int:
        """Bytes in read-only memory: code, tables, the initial image of .data, and any other
        allocated section (the ARM unwind index `.ARM.exidx`)."""
        return self.text + self.rodata + self.data + sum(self.other.values())

    @property
    def ram(self) -> int:
        """Static RAM (.data + .bss); the stack comes on top."""
        return self.data + self.bss

    def __str__(self) -> str:
        t = self.target
        lines = [f"target {t.triple} (cpu {t.cpu}{', features ' + t.features if t.features else ''})"]
        rows = [
            (".text", self.text, "code"),
            (".rodata", self.rodata, "tables and constants"),
            (".data", self.data, ""),
            (".bss", self.bss, ""),
        ]
        rows += [(name, n, "unwind index (droppable)" if "exidx" in name else "") for name, n in sorted(self.other.items())]
        for name, n, what in rows:
            lines.append(f"  {name:<16}{n:>9} B  {what}".rstrip())
        extra = " + ".join(sorted(self.other)) if self.other else ""
        lines.append(f"  {'flash':<16}{self.flash:>9} B  .text + .rodata + .data{(' + ' + extra) if extra else ''}")
        lines.append(f"  {'RAM':<16}{self.ram:>9} B  .data + .bss (static), stack below")
        lines.append("max stack per entry point (this object's frames; libcalls add theirs, e.g. 80-150 B for compiler-rt's soft float):")
        width = max((len(s) for s in self.stack), default=0)
        for sym, n in self.stack.items():
            lines.append(f"  {sym:<{width}}  {'unknown' if n is None else f'{n} B'}")
        if self.libcalls:
            lines.append(f"libcalls the firmware must provide ({_provider(t)}):")
            lines += _wrap(self.libcalls)
        else:
            lines.append("libcalls: none")
        return "\n".join(lines)


def _provider(t: CrossTarget) -> str:
    if t.family == "arm" and any(n.startswith("__aeabi_") for n in t.allowed_libcalls):
        return "ARM run-time ABI helpers: link libgcc or compiler-rt"
    if t.family in ("riscv32", "riscv64"):
        return "soft-float helpers: link libgcc or compiler-rt"
    return "link libc"


def _wrap(names: list[str], width: int = 100) -> list[str]:
    lines, cur = [], "  "
    for n in names:
        if len(cur) + len(n) + 1 > width and cur.strip():
            lines.append(cur.rstrip())
            cur = "  "
        cur += n + " "
    cur = cur.rstrip()
    if cur.strip():
        lines.append(cur.rstrip())
    return lines


# ----- emission ---------------------------------------------------------------------------------


def emit_object(
    module,
    target: str | CrossTarget,
    *,
    cpu: str | None = None,
    features: str | None = None,
    prefix: str = "timber_",
    small: bool | None = None,
) -> ObjectResult:
    """Lower a verified module and emit an ELF object for `target` (a name `resolve_target`
    accepts, or a `CrossTarget`), exporting the ABI of `backends/common/abi.py` (README: "C99 and WebAssembly") with `prefix`.
    `small` overrides the target's choice between single-row, size-optimised code (True:
    microcontrollers' default) and 64-row vector blocks (False: AArch64 and x86-64's).

    Raises `TimberError` for an unknown target, CPU or feature, or a module the back-end
    cannot lower."""
    t = target if isinstance(target, CrossTarget) else resolve_target(target, cpu, features)
    if small is not None and small != t.small:
        t = replace(t, small=small, lanes=1 if small else max(t.lanes, 1))
    verify(module)
    lowered = lower_module(module, t.target_info(), prefix)
    from backends.common.abi import header as abi_header  # model.h: one header for every back-end

    header = abi_header(module, prefix, "llvm")
    opt = 2 if t.small else 3
    tm = t.machine(opt)
    mod = compile_for(lowered.text, t, opt)
    obj = tm.emit_object(mod)
    return ObjectResult(t, prefix, obj, header, lowered, mod, opt)


def compile_for(text: str, t: CrossTarget, opt: int):
    """Parse LLVM text, give it the target's triple and data layout (before any pass runs:
    the optimiser must see 32-bit pointers on 32-bit targets), verify, and optimise."""
    tm = t.machine(opt)
    mod = llvm.parse_assembly(text)
    mod.triple = t.triple
    mod.data_layout = str(tm.target_data)
    mod.verify()
    pto = llvm.create_pipeline_tuning_options(speed_level=opt)
    if t.small:
        # unrolled loops and vector code only cost flash on a microcontroller
        pto.loop_unrolling = False
        pto.loop_vectorization = False
        pto.slp_vectorization = False
    pb = llvm.create_pass_builder(tm, pto)
    pb.getModulePassManager().run(mod, pb)
    return mod


def write_object(
    module,
    out_dir,
    target: str | CrossTarget,
    *,
    cpu: str | None = None,
    features: str | None = None,
    prefix: str = "timber_",
    emit: str = "obj",
    small: bool | None = None,
    force: bool = False,
) -> tuple[list[str], ObjectResult]:
    """Write model.o (`emit="obj"`), model.s ("asm") or model.ll ("llvm"), plus model.h, into
    `out_dir` (arguments as for `emit_object`); returns (paths written, the ObjectResult).

    Refuses (TimberError naming the file) to replace an existing file with different content
    unless `force`."""
    if emit not in OBJECT_FILES:
        raise TimberError(f"--emit {emit}: an object target can emit {', '.join(OBJECT_FILES)}")
    r = emit_object(module, target, cpu=cpu, features=features, prefix=prefix, small=small)
    content = {"obj": r.object, "asm": r.asm, "llvm": r.llvm_ir}[emit]
    from backends.common.plan import write_files

    return write_files({OBJECT_FILES[emit]: content, "model.h": r.header}, out_dir, force), r


# ----- ELF --------------------------------------------------------------------------------------


@dataclass
class ElfSection:
    name: str
    type: int
    flags: int
    addr: int
    offset: int
    size: int

    SHF_WRITE, SHF_ALLOC, SHF_EXECINSTR = 1, 2, 4
    SHT_NOBITS = 8

    @property
    def alloc(self) -> bool:
        return bool(self.flags & self.SHF_ALLOC)

    @property
    def kind(self) -> str:
        """ "text", "rodata", "data", "bss", or "other" (allocated, e.g. .ARM.exidx)."""
        if self.flags & self.SHF_EXECINSTR:
            return "text"
        if self.type == self.SHT_NOBITS:
            return "bss"
        if self.flags & self.SHF_WRITE:
            return "data"
        if self.name.startswith((".rodata", ".srodata")):
            return "rodata"
        return "other"


@dataclass
class ElfSymbol:
    name: str
    value: int
    size: int
    bind: int  # 0 local, 1 global, 2 weak
    type: int  # 0 none, 1 object, 2 func, 3 section, 4 file
    shndx: int

    @property
    def undefined(self) -> bool:
        return self.shndx == 0 and bool(self.name)


@dataclass
class ElfSegment:
    vaddr: int
    offset: int
    filesz: int
    memsz: int
    flags: int


class ElfFile:
    """The parts of an ELF file (32/64-bit, either byte order) that the size report and the
    emulation tests need: sections, symbols, loadable segments."""

    def __init__(self, data: bytes):
        if data[:4] != b"\x7fELF":
            raise ValueError("not an ELF file")
        self.data = data
        self.is64 = data[4] == 2
        self.endian = "<" if data[5] == 1 else ">"
        e = self.endian
        if self.is64:
            (self.type, self.machine, _, self.entry, phoff, shoff, _, _, phentsize, phnum, shentsize, shnum, shstrndx) = struct.unpack_from(
                e + "HHIQQQIHHHHHH", data, 16
            )
        else:
            (self.type, self.machine, _, self.entry, phoff, shoff, _, _, phentsize, phnum, shentsize, shnum, shstrndx) = struct.unpack_from(
                e + "HHIIIIIHHHHHH", data, 16
            )
        raw = []
        for i in range(shnum):
            off = shoff + i * shentsize
            if self.is64:
                name, typ, flags, addr, offset, size, link, info, _, entsize = struct.unpack_from(e + "IIQQQQIIQQ", data, off)
            else:
                name, typ, flags, addr, offset, size, link, info, _, entsize = struct.unpack_from(e + "IIIIIIIIII", data, off)
            raw.append((name, typ, flags, addr, offset, size, link, entsize))
        names = raw[shstrndx] if shnum else None
        self.sections = [ElfSection(self._str(names, r[0]) if names else "", r[1], r[2], r[3], r[4], r[5]) for r in raw]
        self.symbols: list[ElfSymbol] = []
        for r in raw:
            if r[1] == 2:  # SHT_SYMTAB
                self.symbols = self._symbols(r, raw[r[6]])
        self.segments = []
        for i in range(phnum):
            off = phoff + i * phentsize
            if self.is64:
                typ, flags, offset, vaddr, _, filesz, memsz, _ = struct.unpack_from(e + "IIQQQQQQ", data, off)
            else:
                typ, offset, vaddr, _, filesz, memsz, flags, _ = struct.unpack_from(e + "IIIIIIII", data, off)
            if typ == 1:  # PT_LOAD
                self.segments.append(ElfSegment(vaddr, offset, filesz, memsz, flags))

    def _str(self, strtab, off: int) -> str:
        start = strtab[4] + off
        end = self.data.index(b"\x00", start)
        return self.data[start:end].decode("utf-8", "replace")

    def _symbols(self, symtab, strtab) -> list[ElfSymbol]:
        e, out = self.endian, []
        entsize = symtab[7] or (24 if self.is64 else 16)
        for off in range(symtab[4], symtab[4] + symtab[5], entsize):
            if self.is64:
                name, info, _, shndx, value, size = struct.unpack_from(e + "IBBHQQ", self.data, off)
            else:
                name, value, size, info, _, shndx = struct.unpack_from(e + "IIIBBH", self.data, off)
            out.append(ElfSymbol(self._str(strtab, name), value, size, info >> 4, info & 15, shndx))
        return out

    def symbol(self, name: str) -> ElfSymbol:
        for s in self.symbols:
            if s.name == name and not s.undefined:
                return s
        raise KeyError(name)


# ----- stack analysis -------------------------------------------------------------------------------


@dataclass
class Frame:
    """One function of the assembly: bytes its own code takes from the stack (pushes, stack
    pointer subtractions, re-alignment; None: not statically known), whether it also gives
    stack back (a function that only takes is an outlined prologue: its frame is its caller's),
    and whom it calls."""

    decrement: int | None = 0
    increments: bool = False
    calls: list[str] = field(default_factory=list)

    def grow(self, n: int | None) -> None:
        self.decrement = None if n is None or self.decrement is None else self.decrement + n


def _reglist_count(text: str) -> int:
    """Registers in an ARM register list, ranges included ("r4-r7, lr" is 5)."""
    n = 0
    for part in text.split(","):
        m = re.fullmatch(r"([a-z]+)(\d+)-[a-z]+(\d+)", part.strip())
        n += int(m.group(3)) - int(m.group(2)) + 1 if m else 1
    return n


def _imm(s: str) -> int | None:
    """A numeric immediate (`#16`, `$-64`, `-2032`); None for a symbol expression."""
    try:
        return int(s.strip().lstrip("#$"), 0)
    except ValueError:
        return None


def _realign(mask: int | None, guaranteed: int) -> int | None:
    """Worst-case bytes an `and sp, mask` re-alignment takes, when sp is already aligned to
    `guaranteed` bytes (mask = -align, as a signed or a 64-bit unsigned immediate)."""
    if mask is None:
        return None
    align = (-mask) & ((1 << 64) - 1)
    return max(align - guaranteed, 0)


def _shifted(a: list[str]) -> int | None:
    """An AArch64 immediate operand `#n` with an optional `lsl #12`; None for a register."""
    if not a[2].startswith("#"):
        return None
    return _imm(a[2]) << (12 if len(a) > 3 and "lsl #12" in a[3] else 0)


def _call(f: Frame, target: str) -> None:
    if target.startswith(("*", "%")) or not target:
        f.calls.append("<indirect>")
    elif not target.startswith(".") and re.fullmatch(r"[A-Za-z_][\w.$@]*", target):
        f.calls.append(target.split("@")[0])


def _arm(op: str, a: list[str], args: str, f: Frame, regs: dict) -> None:
    base = op.split(".")[0]
    if base == "push" or (base == "stmdb" and a[0] == "sp!"):
        f.grow(4 * _reglist_count(re.search(r"\{([^}]*)\}", args).group(1)))
    elif base == "vpush":
        lst = re.search(r"\{([^}]*)\}", args).group(1)
        f.grow((8 if "d" in lst else 4) * _reglist_count(lst))
    elif base in ("pop", "vpop") or (base == "ldm" and a[0] == "sp!"):
        f.increments = True
    elif base in ("sub", "subw") and a[0] == "sp":
        src, val = (a[1], a[2]) if len(a) == 3 else ("sp", a[1])
        known = regs.get(val)
        amount = _imm(val) if val.startswith("#") else known[1] if isinstance(known, tuple) and known[0] == "const" else None
        f.grow(amount if src == "sp" else None)
    elif base in ("add", "addw") and a[0] == "sp":
        f.increments = True
    elif base == "str" and re.search(r"\[sp, #-(\d+)\]!", args):
        f.grow(int(re.search(r"\[sp, #-(\d+)\]!", args).group(1)))
    elif base == "mov" and len(a) == 2 and a[1] == "sp" and f.decrement is not None:
        regs[a[0]] = ("below", f.decrement)  # r = sp, for a re-alignment: bfc r, #0, #k; mov sp, r
    elif base in ("sub", "subw") and len(a) == 3 and a[1] == "sp" and a[2].startswith("#") and f.decrement is not None:
        regs[a[0]] = ("below", f.decrement + _imm(a[2]))
    elif base == "bfc" and isinstance(regs.get(a[0]), tuple) and regs[a[0]][0] == "below" and a[1] == "#0":
        regs[a[0]] = ("below", regs[a[0]][1] + max(2 ** _imm(a[2]) - 8, 0))  # sp is 8-aligned (AAPCS)
    elif base in ("movw", "movt") and len(a) == 2 and a[1].startswith("#"):
        low = regs.get(a[0])[1] if base == "movt" and isinstance(regs.get(a[0]), tuple) else 0
        regs[a[0]] = ("const", (_imm(a[1]) << 16 | low) if base == "movt" else _imm(a[1]))
    elif base == "mov" and a[0] == "sp":
        known = regs.get(a[1])
        if isinstance(known, tuple) and known[0] == "below" and f.decrement is not None:
            f.decrement = max(f.decrement, known[1])
        else:
            f.increments = True  # sp restored from the frame pointer (the code never allocates dynamically)
    elif base in ("bic", "bfc", "and") and a[0] == "sp":
        f.grow(None)  # re-alignment of sp itself: not followed
    # a callee's address in a register, for `blx reg` (how size-optimised code calls a
    # function it calls often): from movw/movt or from the literal pool
    if base == "movw" and len(a) == 2 and a[1].startswith(":lower16:"):
        regs[a[0]] = a[1][len(":lower16:") :]
    elif base == "ldr" and len(a) == 2 and a[1] in regs.get("<pool>", {}):
        regs[a[0]] = regs["<pool>"][a[1]]
    register = re.fullmatch(r"r\d+|lr|ip|sp|pc", a[0]) is not None
    if base in ("bl", "blx", "b") and not register:
        _call(f, a[0])
    elif base in ("blx", "bx") and a[0] != "lr":
        target = regs.get(a[0])
        f.calls.append(target if isinstance(target, str) else "<indirect>")


def _aarch64(op: str, a: list[str], args: str, f: Frame, regs: dict) -> None:
    pre = re.search(r"\[sp, #-(\d+)\]!", args)
    if op in ("stp", "str") and pre:
        f.grow(int(pre.group(1)))
    elif op in ("ldp", "ldr") and re.search(r"\[sp\], #\d+", args):
        f.increments = True
    elif op == "sub" and len(a) >= 3 and a[1] in ("sp", *regs):
        amount = _shifted(a)
        if a[0] == "sp":
            f.grow(None if amount is None or a[1] != "sp" else amount)
        elif amount is not None and f.decrement is not None:
            # x = (entry sp) - depth, for a re-alignment `and sp, x, #mask` below
            regs[a[0]] = (f.decrement if a[1] == "sp" else regs[a[1]]) + amount
    elif op == "and" and a[0] == "sp":
        if a[1] in regs and f.decrement is not None:
            # sp = x rounded down: at most align - 16 below x
            f.decrement = max(f.decrement, regs[a[1]] + _realign(_imm(a[2]), 16))
        else:
            f.grow(None)
    elif op == "add" and a[0] == "sp":
        f.increments = True
    elif op == "mov" and a[0] == "sp" and a[1] != "x29":
        f.grow(None)
    if op in ("bl", "b"):
        _call(f, a[0])
    elif op in ("blr", "br"):
        f.calls.append("<indirect>")


def _riscv(op: str, a: list[str], args: str, f: Frame, regs: dict) -> None:
    if op == "addi" and a[:2] == ["sp", "sp"]:
        v = _imm(a[2])
        if v is None or v < 0:
            f.grow(None if v is None else -v)
        else:
            f.increments = True
    elif op == "lui" and len(a) == 2 and _imm(a[1]) is not None:
        regs[a[0]] = _imm(a[1]) << 12
    elif op == "addi" and len(a) == 3 and a[1] in regs and _imm(a[2]) is not None:
        regs[a[0]] = regs[a[1]] + _imm(a[2])
    elif op == "sub" and a[:2] == ["sp", "sp"]:
        f.grow(regs.get(a[2]))
    elif op == "add" and a[:2] == ["sp", "sp"]:
        f.increments = True
    elif op == "andi" and a[0] == "sp":
        f.grow(_realign(_imm(a[2]), 16))
    elif op in ("mv", "add", "sub") and a[0] == "sp":
        pass  # sp restored from the frame pointer (an epilogue)
    if op in ("call", "tail", "jal"):
        _call(f, a[-1])
    elif op == "jalr" and a[0] != "zero":
        f.calls.append("<indirect>")


def _x86_64(op: str, a: list[str], args: str, f: Frame, regs: dict) -> None:
    if op in ("pushq", "push"):
        f.grow(8)
    elif op in ("popq", "pop"):
        f.increments = True
    elif op in ("subq", "sub") and a[-1] == "%rsp":
        f.grow(_imm(a[0]) if a[0].startswith("$") else None)
    elif op in ("andq", "and") and a[-1] == "%rsp":
        f.grow(_realign(_imm(a[0]), 8))
    elif op in ("addq", "add") and a[-1] == "%rsp":
        f.increments = True
    if op in ("call", "callq", "jmp", "jmpq"):
        _call(f, a[0])


_PARSERS = {"arm": _arm, "aarch64": _aarch64, "riscv32": _riscv, "riscv64": _riscv, "x86_64": _x86_64}
_COMMENT = {"arm": "@", "aarch64": "//", "riscv32": "#", "riscv64": "#", "x86_64": "#"}
_RETURN_ADDRESS = {"x86_64": 8}  # pushed by the call instruction; the other ISAs link through a register


def analyse_stack(asm: str, family: str) -> dict[str, Frame]:
    """Per function of `asm` (LLVM's assembly for `family`): its frame and its callees."""
    parse, comment = _PARSERS[family], _COMMENT[family]
    funcs = set(re.findall(r"^\s*\.type\s+([\w.$]+)\s*,\s*[%@]function", asm, re.M))
    # literal pool entries holding a symbol's address (`.LCPI0_5:` then `.long f`)
    pool = dict(re.findall(r"^(\.LCPI[\w]+):\s*\n\s*\.(?:long|word|quad)\s+([A-Za-z_][\w.$]*)\s*$", asm, re.M))
    frames: dict[str, Frame] = {}
    cur, regs = None, {}
    for line in asm.splitlines():
        s = line.split(comment, 1)[0].strip() if not line.lstrip().startswith(".") else line.strip()
        if not s:
            continue
        if not line[:1].isspace() and s.endswith(":"):
            label = s[:-1]
            if label in funcs:
                cur, regs = Frame(_RETURN_ADDRESS.get(family, 0)), {"<pool>": pool}
                frames[label] = cur
            elif label.startswith(".Lfunc_end"):
                cur = None
            continue
        if cur is None or s.startswith("."):
            continue
        op, _, args = s.replace("\t", " ").partition(" ")
        args = args.strip()
        a = [x.strip() for x in re.split(r",(?![^{]*\})", args)] if args else [""]
        parse(op, a, args, cur, regs)
    return frames


class _Cycle(Exception):
    """A call chain that comes back to a function already on it."""


def max_stack(frames: dict[str, Frame], symbol: str, entries: frozenset[str] = frozenset()) -> int | None:
    """Deepest stack use below `symbol`'s caller: its frame plus the deepest chain of callees
    inside the object (library functions count 0 here).  A call through a register whose value
    is not known here (the code never takes a function's address: it is a callee the caller
    loaded) may reach any function of the object but the exported `entries` and those that
    would call back into the chain.  None if a frame is not statically known or calls recurse."""
    memo: dict[str, int | None] = {}

    def need(name: str, path: tuple[str, ...]) -> int | None:
        if name in path:
            raise _Cycle(name)
        if name == "<indirect>":
            worst = 0
            for g in frames:
                if g in entries or g in path:
                    continue
                try:
                    n = need(g, path)
                except _Cycle:
                    continue  # calling g here would be recursion, which the code never does
                if n is None:
                    return None
                worst = max(worst, n)
            return worst
        if name not in frames:
            return 0  # a library function
        if name not in memo:
            f = frames[name]
            own, deepest = f.decrement, 0
            for c in f.calls:
                cf = frames.get(c)
                if cf is not None and cf.decrement and not cf.increments and not cf.calls:
                    own = None if own is None else own + cf.decrement  # an outlined prologue
                    continue
                n = need(c, path + (name,))
                deepest = None if n is None or deepest is None else max(deepest, n)
            memo[name] = None if own is None or deepest is None else own + deepest
        return memo[name]

    try:
        return need(symbol, ())
    except _Cycle:
        return None
