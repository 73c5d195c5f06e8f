"""Writing LLVM IR as text: types, exact constants, functions with fresh names, data tables.

The back-end emits LLVM assembly text directly instead of building it with `llvmlite.ir`:
the kernels are a few hundred instructions whatever the model size, and model data goes into
tables, so text is both the fastest to produce and the easiest to read in a dump.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass, field

import numpy as np

from ir.types import FloatType, IndexType, IntegerType, Type

# ----- types ------------------------------------------------------------------------------


def scalar_type(t: Type) -> str:
    """The LLVM scalar type of an IR element type."""
    if isinstance(t, FloatType):
        return {32: "float", 64: "double"}[t.width]
    if isinstance(t, IntegerType):
        return f"i{t.width}"
    if isinstance(t, IndexType):
        return "i64"
    raise TypeError(f"no LLVM type for {t}")


def numpy_scalar_type(dtype) -> str:
    dt = np.dtype(dtype)
    if dt == np.float32:
        return "float"
    if dt == np.float64:
        return "double"
    if dt == np.bool_:
        return "i1"
    if dt.kind in "iu":
        return f"i{dt.itemsize * 8}"
    raise TypeError(f"no LLVM type for {dt}")


def vec(lanes: int, t: str) -> str:
    """`<lanes x t>`, or `t` itself for one lane of a scalar kernel (lanes == 0 means scalar)."""
    return t if lanes == 0 else f"<{lanes} x {t}>"


def byte_size(t: str) -> int:
    return {"float": 4, "double": 8, "i1": 1, "i8": 1, "i16": 2, "i32": 4, "i64": 8}[t]


# ----- constants --------------------------------------------------------------------------


def float_const(value, t: str) -> str:
    """An exact LLVM float literal: the hex form of the value as a double (LLVM's syntax for
    both `float` and `double`), so NaN payloads, infinities and -0.0 survive."""
    if t == "float":
        value = np.float64(np.float32(value))
    bits = struct.unpack("<Q", struct.pack("<d", float(value)))[0]
    return f"0x{bits:016X}"


def const(value, t: str) -> str:
    if t in ("float", "double"):
        return float_const(value, t)
    if t == "i1":
        return "true" if value else "false"
    return str(int(value))


def splat(value, t: str, lanes: int) -> str:
    """A constant broadcast to `lanes` lanes (a plain constant for a scalar)."""
    c = const(value, t)
    return c if lanes == 0 else f"splat ({t} {c})"


def vector_const(values, t: str) -> str:
    return "<" + ", ".join(f"{t} {const(v, t)}" for v in values) + ">"


# ----- data tables ------------------------------------------------------------------------


@dataclass
class Table:
    """A constant array the generated code reads (node tables, leaf values, weights), emitted
    as an initialised byte array (LLVM parses megabytes of `c"..."` text in milliseconds)."""

    name: str
    data: np.ndarray

    @property
    def nbytes(self) -> int:
        return self.data.nbytes


@dataclass
class TablePool:
    """All tables of one lowered module.  `pad` trailing zero elements let a kernel load a full
    vector register of entries starting at the last tree's first entry."""

    prefix: str
    tables: list[Table] = field(default_factory=list)
    pad: int = 64
    align: int = 64

    def add(self, hint: str, data: np.ndarray) -> str:
        data = np.ascontiguousarray(data).reshape(-1)
        padded = np.zeros(len(data) + self.pad, data.dtype)
        padded[: len(data)] = data
        name = f"{self.prefix}{hint}{len(self.tables)}"
        self.tables.append(Table(name, padded))
        return "@" + name

    def definitions(self) -> str:
        return "\n".join(
            f'@{t.name} = internal constant [{t.nbytes} x i8] c"{_bytes_literal(t.data.tobytes())}", align {self.align}'
            for t in self.tables
        )


_HEXDIGITS = np.frombuffer(b"0123456789ABCDEF", np.uint8)


def _bytes_literal(data: bytes) -> str:
    """Bytes as the body of an LLVM `c"..."` string: every byte as `\\XX` (vectorised: a
    3000-tree model has megabytes of tables)."""
    b = np.frombuffer(data, np.uint8)
    out = np.empty(3 * len(b), np.uint8)
    out[0::3] = ord("\\")
    out[1::3] = _HEXDIGITS[b >> 4]
    out[2::3] = _HEXDIGITS[b & 15]
    return out.tobytes().decode("ascii")


# ----- vector helpers -------------------------------------------------------------------------

_SUFFIX = {"float": "f32", "double": "f64", "i1": "i1", "i8": "i8", "i32": "i32", "i64": "i64"}


def gather(
    fn: "Function",
    mod: "Module",
    t: str,
    base: str,
    idx: str,
    lanes: int,
    ity: str = "i32",
    mask: str | None = None,
    hint="g",
    loads: bool = False,
) -> str:
    """`base[idx]` per lane (`lanes` 0: one scalar load).  Masked-off lanes read nothing and give 0.

    On a module whose target prefers it (`Module.gathers_as_loads`), an unmasked gather of
    64-bit elements, or one marked `loads` (the strided row transposes), is one scalar load per
    lane instead of a hardware gather."""
    if lanes == 0:
        p = fn.op(hint + "p", f"getelementptr {t}, ptr {base}, {ity} {idx}")
        return fn.op(hint, f"load {t}, ptr {p}, align {byte_size(t)}")
    vt, pt = vec(lanes, t), vec(lanes, "ptr")
    if mask is None and mod.gathers_as_loads and (loads or byte_size(t) == 8):
        return _gather_by_loads(fn, t, base, idx, lanes, ity, hint)
    name = f"llvm.masked.gather.v{lanes}{_SUFFIX[t]}.v{lanes}p0"
    mod.declare(name, f"declare {vt} {{name}}({pt}, {vec(lanes, 'i1')}, {vt})")
    p = fn.op(hint + "p", f"getelementptr {t}, ptr {base}, {vec(lanes, ity)} {idx}")
    m = mask or "splat (i1 true)"
    passthru = "zeroinitializer" if mask else "poison"
    return fn.op(hint, f"call {vt} @{name}({pt} align {byte_size(t)} {p}, {vec(lanes, 'i1')} {m}, {vt} {passthru})")


def _gather_by_loads(fn: "Function", t: str, base: str, idx: str, lanes: int, ity: str, hint: str) -> str:
    v = "poison"
    for i in range(lanes):
        ii = fn.op("gi", f"extractelement {vec(lanes, ity)} {idx}, i32 {i}")
        e = fn.op(hint, f"load {t}, ptr {fn.op(hint + 'p', f'getelementptr {t}, ptr {base}, {ity} {ii}')}, align {byte_size(t)}")
        v = fn.op(hint, f"insertelement {vec(lanes, t)} {v}, {t} {e}, i32 {i}")
    return v


def scatter(
    fn: "Function", mod: "Module", t: str, value: str, base: str, idx: str, lanes: int, ity: str = "i32", mask: str | None = None
) -> None:
    """`base[idx] = value` per lane (masked-off lanes write nothing)."""
    vt, pt = vec(lanes, t), vec(lanes, "ptr")
    name = f"llvm.masked.scatter.v{lanes}{_SUFFIX[t]}.v{lanes}p0"
    mod.declare(name, f"declare void {{name}}({vt}, {pt}, {vec(lanes, 'i1')})")
    p = fn.op("sp", f"getelementptr {t}, ptr {base}, {vec(lanes, ity)} {idx}")
    m = mask or "splat (i1 true)"
    fn.emit(f"call void @{name}({vt} {value}, {pt} align {byte_size(t)} {p}, {vec(lanes, 'i1')} {m})")


def iota(lanes: int, scale: int = 1, offset: int = 0, t: str = "i32") -> str:
    """The constant vector `<offset, offset+scale, offset+2*scale, ...>`."""
    return vector_const([offset + i * scale for i in range(lanes)], t)


# ----- functions ----------------------------------------------------------------------------


class Function:
    """One LLVM function under construction: fresh SSA names from hints, blocks, text.

    Names follow the IR (`%margin.3`, `tree_loop`) so dumps of the generated code read like
    the model."""

    def __init__(self, name: str, ret: str, params: list[tuple[str, str]], linkage: str = "internal", attrs: str = "nounwind"):
        self.name = name
        self.align = 64  # of stack buffers (cache lines); `Module.add` lowers it for small code
        self.ret = ret
        self.params = params
        self.linkage = linkage
        self.attrs = attrs
        self.lines: list[str] = []
        self.allocas: list[str] = []
        self._counts: dict[str, int] = {}
        for _, p in params:
            self._counts[p.lstrip("%")] = 1

    def tmp(self, hint: str = "t") -> str:
        hint = "".join(c if c.isalnum() or c in "._" else "_" for c in hint) or "t"
        n = self._counts.get(hint, 0)
        self._counts[hint] = n + 1
        return f"%{hint}" if n == 0 else f"%{hint}.{n}"

    def label(self, hint: str) -> str:
        return self.tmp(hint)[1:]

    def emit(self, line: str) -> None:
        self.lines.append("  " + line)

    def op(self, hint: str, rhs: str) -> str:
        """Emit `%name = rhs` and return the name."""
        r = self.tmp(hint)
        self.lines.append(f"  {r} = {rhs}")
        return r

    def alloca(self, hint: str, t: str, count: int) -> str:
        """A stack buffer of `count` elements (64-byte aligned, or 8 in small code), allocated
        in the entry block (where LLVM treats it as a fixed frame slot, also after inlining)."""
        r = self.tmp(hint)
        self.allocas.append(f"  {r} = alloca [{max(count, 1)} x {t}], align {self.align}")
        return r

    def block(self, label: str) -> None:
        self.lines.append(f"{label}:")

    def current_block(self) -> str:
        """Label of the block being filled (phis name it as the predecessor of a back edge)."""
        for line in reversed(self.lines):
            if not line.startswith("  "):
                return line[:-1]
        return "entry"

    def text(self, extra_attrs: str = "") -> str:
        params = ", ".join(f"{t} {n}" for t, n in self.params)
        linkage = "" if self.linkage == "external" else self.linkage + " "
        attrs = f"{self.attrs} {extra_attrs}" if extra_attrs else self.attrs
        head = f"define {linkage}{self.ret} @{self.name}({params}) {attrs} {{"
        return "\n".join([head, "entry:", *self.allocas, *self.lines, "}"])


class Module:
    """Collects functions, declarations and tables into one LLVM module text."""

    def __init__(
        self,
        name: str,
        table_prefix: str,
        small: bool = False,
        table_pad: int = 64,
        libm: bool = False,
        gathers_as_loads: bool = False,
        stack_align: int = 64,
    ):
        self.name = name
        # see `gather` and `TargetInfo.split_gathers`
        self.gathers_as_loads = gathers_as_loads
        # math ops call the C library (host JIT) instead of their expansions (ir/dialects/mathimpl)
        self.libm = libm
        # small code (microcontrollers): every function optimised for size, helpers kept out of line
        self.small = small
        self.fn_attrs = "optsize minsize" if small else ""
        self.functions: list[Function] = []
        self.declares: dict[str, str] = {}
        self.globals: list[str] = []
        self.used: list[str] = []  # functions listed in @llvm.compiler.used (see `keep_opaque`)
        self._metadata: dict[str, int] = {}  # numbered metadata nodes, by their text
        self.align = 8 if small else 64  # of tables and stack buffers: cache lines, or no padding in small code
        self.pool = TablePool(table_prefix, pad=table_pad, align=self.align)
        self.stack_align = stack_align  # of stack buffers (see `TargetInfo.stack_align`)
        self._fn_names: set[str] = set()
        self._once: set[str] = set()

    def declare(self, name: str, signature: str) -> None:
        """`declare` an intrinsic once (signature written with `{name}` for the symbol)."""
        self.declares.setdefault(name, signature.format(name="@" + name))

    def add(self, fn: Function) -> Function:
        if fn.name in self._fn_names:
            raise ValueError(f"function @{fn.name} emitted twice")
        self._fn_names.add(fn.name)
        fn.align = min(self.align, self.stack_align)
        if self.small:
            # A helper (Timber's exp) inlined into its callers would add its spilled soft-float
            # temporaries to their frames; out of line, its frame is live only during the call.
            fn.attrs = fn.attrs.replace("alwaysinline", "noinline")
        self.functions.append(fn)
        return fn

    def has(self, name: str) -> bool:
        return name in self._fn_names

    def call(self, fn: "Function", callee: str, args: list[str], ret: str = "void") -> str:
        """Emit a call to a function of this module, checking the argument count (LLVM accepts
        a call whose signature differs from the callee's, and the mistake shows only at run time)."""
        target = next(f for f in self.functions if f.name == callee)
        if len(args) != len(target.params):
            raise AssertionError(f"@{callee} takes {len(target.params)} arguments, called with {len(args)}")
        text = ", ".join(f"{t.split()[0]} {a}" for (t, _), a in zip(target.params, args))
        if ret == "void":
            fn.emit(f"call void @{callee}({text})")
            return ""
        return fn.op("call", f"call {ret} @{callee}({text})")

    def metadata(self, node: str) -> str:
        """`!N`, the module's numbered metadata node `node` (added once)."""
        n = self._metadata.get(node)
        if n is None:
            n = self._metadata[node] = len(self._metadata)
            self.globals.append(f"!{n} = {node}")
        return f"!{n}"

    def keep_opaque(self, name: str) -> None:
        """List function `name` in `@llvm.compiler.used`: its address counts as taken, so the
        optimiser cannot specialise it for the arguments it is called with.  The symbol stays local."""
        self.used.append(name)

    def once(self, key: str) -> bool:
        """True the first time `key` is asked for (for globals emitted once per module)."""
        if key in self._once:
            return False
        self._once.add(key)
        return True

    def text(self) -> str:
        parts = [f"; ModuleID = '{self.name}'", f'source_filename = "{self.name}"', ""]
        parts.extend(self.declares.values())
        parts.append("")
        # small code: no cache-line alignment (and its padding) for constant arrays either
        parts.extend(re.sub(r", align 64$", f", align {self.align}", g) for g in self.globals)
        if self.used:
            refs = ", ".join(f"ptr @{n}" for n in self.used)
            parts.append(f'@llvm.compiler.used = appending global [{len(self.used)} x ptr] [{refs}], section "llvm.metadata"')
        if self.pool.tables:
            parts.append(self.pool.definitions())
        parts.append("")
        parts.extend(fn.text(self.fn_attrs) + "\n" for fn in self.functions)
        return "\n".join(parts)
