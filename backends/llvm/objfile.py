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

Stack sizes are LLVM's own account of each frame: the call-frame information it writes for
unwinders (`.cfi_def_cfa_offset`), read from a second compile of the same optimised module that
carries it (the shipped object carries none; the instructions are the same), and the call
graph inside the object gives the deepest chain below each exported entry point.  A frame the
CFI does not bound (the CFA moves to a frame pointer: a dynamic alloca or a re-aligned stack)
makes its callers' figures "unknown".  Library calls add their own frames on top (zig's
compiler-rt soft-float helpers: 80 to 150 bytes, measured under emulation); the report names
them.
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
        """Assembly of the object, from the same optimised LLVM module it was emitted from
        (a copy: code generation rewrites the module it compiles)."""
        return self.target.machine(self._opt).emit_assembly(self._mod.clone())

    @cached_property
    def frames(self) -> dict[str, Frame]:
        """Every function's frame and callees, from LLVM's call-frame information."""
        return read_frames(frame_assembly(self._mod, self.target, self._opt), self.target.family)

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
        stack = {sym: max_stack(self.frames, sym) for sym in self.exports}
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
        lines.append(
            "max stack per entry point (LLVM's frame information; libcalls add theirs, e.g. 80-150 B for compiler-rt's soft float):"
        )
        width = max((len(s) for s in self.stack), default=0)
        for sym, n in self.stack.items():
            lines.append(f"  {sym:<{width}}  {'unknown' if n is None else f'{n} B'}")
        if None in self.stack.values():
            lines.append("  unknown: a frame whose stack pointer LLVM's call-frame information does not follow (it moves")
            lines.append("  the frame address to a frame pointer: a dynamic alloca or a re-aligned stack), or recursion")
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
    obj = tm.emit_object(mod.clone())  # code generation rewrites the module: keep the optimised one
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
#
# Frames are LLVM's own account: the call-frame information (CFI) it writes for unwinders and
# debuggers, which says at every instruction where the canonical frame address (CFA, the
# caller's stack pointer at the call) is.  While the CFA is "stack pointer + N", N is exactly
# how far below its caller's stack pointer the function's code has moved it.  The objects
# Timber ships carry no CFI (`nounwind`, no unwind tables), so the analysis compiles the same
# optimised module once more with a debug compile unit (`with_frame_info`): LLVM then writes
# `.cfi_*` directives for every function, and lays out the same frames.  The instructions are
# the same too (tests/backends/test_stack_sizes.py compares the .text for every target), but
# for two passes that run after the frames are fixed: on RISC-V the machine outliner moves
# size-optimised prologues out of line only when they carry no CFI (a t0-linked call that
# touches no stack), and the post-RA scheduler treats CFI as a boundary (a few instructions
# in another order).

_SP = {
    "arm": {"sp", "r13", "13"},
    "aarch64": {"sp", "wsp", "31"},
    "riscv32": {"sp", "x2", "2"},
    "riscv64": {"sp", "x2", "2"},
    "x86_64": {"%rsp", "rsp", "7"},
}
# Branches through a register that are not returns: blx/bx r4 (Thumb code calls a function it
# calls often through a register), blr/br, jalr/jr (t0 links the RISC-V machine outliner's
# calls), call/jmp *%reg.
_INDIRECT = {
    "arm": re.compile(r"(?:blx|bx)(?:\.\w+)?\s+(?!lr\b)(?:r\d+|ip)\b"),
    "aarch64": re.compile(r"(?:blr|br)\s+x(?!30\b)\d+"),
    "riscv32": re.compile(r"jalr\b|jr\s+(?!(?:ra|t0|x1|x5)\b)"),
    "riscv64": re.compile(r"jalr\b|jr\s+(?!(?:ra|t0|x1|x5)\b)"),
    "x86_64": re.compile(r"(?:call|jmp)q?\s+\*"),
}
# Mnemonics whose symbol operand is a branch target (b, bl, bne.w, cbz, tbnz; j, jal, call,
# tail, beq; call, jmp, jne): any other mention of a function (movw/movt, adrp, lea, la, a
# literal pool entry) takes its address.
_BRANCH = {
    "arm": re.compile(r"c?b"),
    "aarch64": re.compile(r"[ct]?b"),
    "riscv32": re.compile(r"j|call|tail|b"),
    "riscv64": re.compile(r"j|call|tail|b"),
    "x86_64": re.compile(r"call|j"),
}
_COMMENT = {"arm": "@", "aarch64": "//", "riscv32": "#", "riscv64": "#", "x86_64": "#"}
_DATA = (".long", ".word", ".quad", ".xword", ".4byte", ".8byte")  # literal pool entries


def with_frame_info(ir: str) -> str:
    """LLVM IR text `ir` with a debug compile unit (line tables only, no function is given a
    DISubprogram): LLVM then writes call-frame information for every function (`.cfi_*`, for
    a .debug_frame section) without changing an instruction (no unwind tables, so nothing that
    could change code generation, such as `uwtable`, is added)."""
    if "!llvm.dbg.cu" in ir:
        return ir  # already has debug info, hence frame information
    ids = [int(n) for n in re.findall(r"^!(\d+) = ", ir, re.M)]
    cu = max(ids, default=-1) + 1
    meta = [
        f"!llvm.dbg.cu = !{{!{cu}}}",
        f"!{cu} = distinct !DICompileUnit(language: DW_LANG_C99, file: !{cu + 1}, producer: "
        '"timber", isOptimized: true, runtimeVersion: 0, emissionKind: LineTablesOnly)',
        f'!{cu + 1} = !DIFile(filename: "model.ll", directory: "")',
        f'!{cu + 2} = !{{i32 2, !"Debug Info Version", i32 3}}',
    ]
    flags = re.search(r"^!llvm\.module\.flags = !\{(.*)\}$", ir, re.M)
    if flags:
        ir = f"{ir[: flags.start()]}!llvm.module.flags = !{{{flags.group(1)}, !{cu + 2}}}{ir[flags.end() :]}"
    else:
        meta.append(f"!llvm.module.flags = !{{!{cu + 2}}}")
    return ir.rstrip("\n") + "\n\n" + "\n".join(meta) + "\n"


def frame_assembly(mod, t: CrossTarget, opt: int) -> str:
    """Assembly of the optimised module `mod` (left unchanged) for target `t`, with LLVM's
    call-frame information for every function."""
    return t.machine(opt).emit_assembly(llvm.parse_assembly(with_frame_info(str(mod))))


@dataclass
class Frame:
    """One function as LLVM's call-frame information describes it.

    `size`: the most bytes its own code keeps below its caller's stack pointer (on x86-64 the
    return address its call pushed included), or None once the CFA is defined from a frame
    pointer: a dynamic alloca or a re-aligned stack moves the stack pointer by amounts the CFI
    does not describe.  `calls`: the functions of the object it names (the generated code has
    no function pointers: a function whose address it takes is one it calls through a
    register); `addresses`: those it names outside a branch (movw/movt, its literal pool).
    `indirect`: it branches through a register (size-optimised Thumb code calls a function it
    calls often that way; an outlined sequence may continue to a callee its caller chose)."""

    size: int | None = 0
    calls: list[str] = field(default_factory=list)
    addresses: list[str] = field(default_factory=list)
    indirect: bool = False


def read_frames(asm: str, family: str) -> dict[str, Frame]:
    """The `Frame` of every function of `asm`, LLVM's assembly for `family` written with
    call-frame information (`frame_assembly`).  A function without `.cfi_startproc` has no
    known frame."""
    sp, indirect, branch, comment = _SP[family], _INDIRECT[family], _BRANCH[family], _COMMENT[family]
    funcs = set(re.findall(r"^\s*\.type\s+([\w.$]+)\s*,\s*[%@]function", asm, re.M))
    frames: dict[str, Frame] = {}
    cur: _Reading | None = None
    for line in asm.splitlines():
        s = line.split(comment, 1)[0].strip()
        if not s:
            continue
        if not line[:1].isspace() and s.endswith(":"):  # a label
            if s[:-1] in funcs or s.startswith(".Lfunc_end"):
                if cur is not None:
                    frames[cur.name] = cur.frame(funcs)
                cur = _Reading(s[:-1], family) if s[:-1] in funcs else None
            continue
        if cur is None:
            continue
        op, _, args = s.replace("\t", " ").partition(" ")
        args = args.strip()
        if op.startswith(".cfi_"):
            cur.cfi(op, args, sp)
        elif op in _DATA or not op.startswith("."):
            names = re.findall(r"[A-Za-z_.$][\w.$]*", args)  # a callee's name, or its address
            cur.refs += names
            if not branch.match(op):
                cur.addresses += names
            cur.indirect = cur.indirect or indirect.match(s) is not None
    if cur is not None:
        frames[cur.name] = cur.frame(funcs)
    return frames


class _Reading:
    """The CFA rule of one function while its assembly is read: (register, offset), "sp" for
    the stack pointer; None before `.cfi_startproc`."""

    def __init__(self, name: str, family: str):
        self.name = name
        self.entry = 8 if family == "x86_64" else 0  # x86-64: the call pushed the return address
        self.cfa: tuple[str, int] | None = None
        self.size: int | None = None
        self.saved: list[tuple[str, int]] = []
        self.refs: list[str] = []
        self.addresses: list[str] = []
        self.indirect = False

    def cfi(self, op: str, args: str, sp: set[str]) -> None:
        if op == ".cfi_startproc":
            self.cfa, self.size = ("sp", self.entry), self.entry
            return
        if self.cfa is None:
            return
        reg, off = self.cfa
        if op == ".cfi_def_cfa_offset":
            off = int(args)
        elif op == ".cfi_adjust_cfa_offset":
            off += int(args)
        elif op == ".cfi_def_cfa":
            r, n = (x.strip() for x in args.split(","))
            reg, off = ("sp" if r in sp else r), int(n)
        elif op == ".cfi_def_cfa_register":
            reg = "sp" if args in sp else args
        elif op == ".cfi_remember_state":
            self.saved.append(self.cfa)
        elif op == ".cfi_restore_state":
            reg, off = self.saved.pop()
        self.cfa = (reg, off)
        if reg != "sp":
            self.cfa = None  # the stack pointer is no longer described: the frame is unknown
            self.size = None
        elif self.size is not None:
            self.size = max(self.size, off)

    def frame(self, funcs: set[str]) -> Frame:
        calls = [r for r in dict.fromkeys(self.refs) if r in funcs]
        return Frame(self.size, calls, [r for r in dict.fromkeys(self.addresses) if r in funcs], self.indirect)


class _Cycle(Exception):
    """A call chain that comes back to a function already on it."""


def max_stack(frames: dict[str, Frame], symbol: str) -> int | None:
    """Deepest stack use below `symbol`'s caller: its frame plus the deepest chain of callees
    inside the object (library functions count 0 here).  A branch through a register may reach
    any function whose address the function or one of its callers on the path takes (the
    generated code never stores a function's address: a register holding one was loaded on
    the way down).  None if a frame on the way is unknown or calls recurse."""

    def need(name: str, path: tuple[str, ...]) -> int | None:
        if name in path:
            raise _Cycle(name)
        f = frames.get(name)
        if f is None:
            return 0  # a library function
        if f.size is None:
            return None
        own = list(f.calls)
        if f.indirect:  # through a register: a function whose address was taken on the way
            own += [g for p in path for g in frames[p].addresses if g not in path and g != name and g not in own]
        deepest = 0
        for c in own:
            try:
                n = need(c, path + (name,))
            except _Cycle:
                if c in f.calls:
                    raise  # a call it makes itself: recursion
                continue  # a register could hold it, but the code never recurses
            if n is None:
                return None
            deepest = max(deepest, n)
        return f.size + deepest

    try:
        return need(symbol, ())
    except _Cycle:
        return None
