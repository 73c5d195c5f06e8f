"""Lower a verified module to portable C99: `model.h`, `model_data.c`, `model.c`, and build files.

Shape of the output:

* `model_data.c` holds every table as a `const` array with a prefixed name (node arrays of each
  ensemble, leaf values, weights, constants, `arith.lookup` tables): read-only data, nothing mutable.
* `model.c` holds one `static` routine per IR function (callees first, so no prototypes and no
  recursion), one `static` table-driven loop per `tree.ensemble`, one `static` routine per math
  function the module uses (its `arith` expansion, `ir/dialects/mathimpl/`), and the exported ABI
  wrappers.  Tensors are local arrays of their static size: no malloc.
* Every float constant is a hex literal (`0x1.8p-1f`), so the text is the exact value.

Dispatch is one table, `LOWERINGS` (op class -> lowering); an op without an entry that has an
`arith` expansion (exp, log1p, sigmoid, softmax, ...) is lowered through the ops of its
expansion; anything else is refused naming the op.  An expansion whose ops all work element by
element becomes a scalar routine (`static double math_exp_f64(double x)`) called per element; any
other (softmax) a routine over arrays.

Semantics follow the op docstrings and `ir/interpreter.py` step for step, with no undefined
behaviour for any input: float arithmetic in the element type in the reference's order; compares
are C's ordered operators; NaN tests are `v != v`; integer add/sub/mul/shift wrap through
`uint64_t`/`uint32_t`; signed right shifts of negatives are written without `>>` on them; bitcasts
go through `memcpy`; float-to-int conversions check NaN and the range before casting.  No `<math.h>`
function is called (no libm).
"""

from __future__ import annotations

import re
import threading

import numpy as np

from backends.common import lowering as L
from backends.common.abi import c_type as _abi_c_type
from backends.common.abi import comment_safe, model_h
from backends.common.lowering import Elementwise
from backends.common.plan import EnsembleTables, ModulePlan, hex_float, pack_ensemble, plan_module
from ir.diagnostics import TimberError
from ir.dialects import arith, func, linear, math, mathimpl, tree
from ir.dialects.tree import ZERO_THRESHOLD, Missing, Pred
from ir.opdef import Elementwise as ElementwiseOp
from ir.types import FloatType, IndexType, IntegerType, f32, f64

from . import misra as _misra_profile

TARGET = "C99"
UNROLL = 8  # elementwise ops on at most this many elements are written out, longer ones loop

_CMP = {
    "oeq": "{a} == {b}",
    "ogt": "{a} > {b}",
    "oge": "{a} >= {b}",
    "olt": "{a} < {b}",
    "ole": "{a} <= {b}",
    "one": "({a} < {b} || {a} > {b})",
    "ord": "({a} == {a} && {b} == {b})",
    "ueq": "!({a} < {b} || {a} > {b})",
    "ugt": "!({a} <= {b})",
    "uge": "!({a} < {b})",
    "ult": "!({a} >= {b})",
    "ule": "!({a} > {b})",
    "une": "{a} != {b}",
    "uno": "({a} != {a} || {b} != {b})",
}
_CMPI = {"eq": "==", "ne": "!=", "lt": "<", "le": "<=", "gt": ">", "ge": ">="}
_PRED_C = {Pred.LT: "<", Pred.LE: "<=", Pred.GT: ">", Pred.GE: ">=", Pred.EQ: "==", Pred.NE: "!="}


# The MISRA profile (`misra.py`) is chosen per call of `emit_c99`; the lowerings read it here.
_MODE = threading.local()


def _misra() -> bool:
    return getattr(_MODE, "misra", False)


def c_type(t) -> str:
    """C spelling of an IR scalar type: the ABI's (`backends/common/abi.py`), except that i1 is
    `bool` in the MISRA profile (essentially Boolean) rather than a byte."""
    if _misra() and isinstance(t, IntegerType) and t.width == 1:
        return "bool"
    return _abi_c_type(t)


def _bool(b: bool) -> str:
    if _misra():
        return "true" if b else "false"
    return "1" if b else "0"


def c_float(v, t: FloatType) -> str:
    """An exact C constant expression for a float of type t (hex literal; math.h macros for inf/NaN)."""
    v = float(v)
    suffix = "f" if t == f32 else ""
    cast = "" if t == f32 else "(double)"
    pre = "TIMBER_" if _misra() else ""  # the MISRA profile's own names: see _nonfinite
    if v != v:
        return f"{'-' if np.signbit(v) else ''}{cast}{pre}NAN"
    if v in (float("inf"), float("-inf")):
        return f"{'-' if v < 0 else ''}{cast}{pre}INFINITY"
    return hex_float(v) + suffix


def _c_int_type(dtype) -> str:
    return {np.uint8: "uint8_t", np.uint16: "uint16_t", np.uint32: "uint32_t", np.int32: "int32_t", np.int64: "int64_t"}[
        np.dtype(dtype).type
    ]


def _width(t) -> int:
    return 64 if isinstance(t, IndexType) else t.width


_SIMPLE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\[[A-Za-z0-9_]+\])?|[0-9][A-Za-z0-9_.+-]*")


def _p(x: str) -> str:
    """`x` as an operand: parenthesised unless it is one name, array element or positive literal."""
    return x if _SIMPLE.fullmatch(x) else f"({x})"


# Small routines the lowerings call; each is emitted only when used.
_SMALL = {
    # Two's-complement wrap of an unsigned result, with no implementation-defined conversion.
    "wrap_i64": [
        "static int64_t wrap_i64(uint64_t u)",
        "{",
        "    return u <= (uint64_t)INT64_MAX ? (int64_t)u : (int64_t)(u - (uint64_t)INT64_MIN) + INT64_MIN;",
        "}",
    ],
    "wrap_i32": [
        "static int32_t wrap_i32(uint32_t u)",
        "{",
        "    return u <= (uint32_t)INT32_MAX ? (int32_t)u : (int32_t)(u - (uint32_t)INT32_MIN) + INT32_MIN;",
        "}",
    ],
    # Arithmetic shift right (floor division by 2^s), never shifting a negative number.
    "shrs_i64": [
        "static int64_t shrs_i64(int64_t a, int64_t b)",
        "{",
        "    const int s = (int)((uint64_t)b & 63u);",
        "    return a < 0 ? ~(~a >> s) : a >> s;",
        "}",
    ],
    "shrs_i32": [
        "static int32_t shrs_i32(int32_t a, int32_t b)",
        "{",
        "    const int s = (int)((uint32_t)b & 31u);",
        "    return (int32_t)(a < 0 ? ~(~a >> s) : a >> s);",
        "}",
    ],
    # The same bits read as the other type.
    "bits_f64": ["static int64_t bits_f64(double x)", "{", "    int64_t u;", "    memcpy(&u, &x, sizeof u);", "    return u;", "}"],
    "float_i64": ["static double float_i64(int64_t u)", "{", "    double x;", "    memcpy(&x, &u, sizeof x);", "    return x;", "}"],
    "bits_f32": ["static int32_t bits_f32(float x)", "{", "    int32_t u;", "    memcpy(&u, &x, sizeof u);", "    return u;", "}"],
    "float_i32": ["static float float_i32(int32_t u)", "{", "    float x;", "    memcpy(&x, &u, sizeof x);", "    return x;", "}"],
    # Toward zero, saturating, NaN -> 0: the range is checked before the (then defined) cast.
    "fptosi_i64": [
        "static int64_t fptosi_i64(double x)",
        "{",
        "    return x != x ? 0 : x >= 0x1p+63 ? INT64_MAX : x < -0x1p+63 ? INT64_MIN : (int64_t)x;",
        "}",
    ],
    "fptosi_i32": [
        "static int32_t fptosi_i32(double x)",
        "{",
        "    return x != x ? 0 : x >= 0x1p+31 ? INT32_MAX : x < -0x1p+31 ? INT32_MIN : (int32_t)x;",
        "}",
    ],
}
for _w in (32, 64):
    _t = "float" if _w == 32 else "double"
    # numpy's maximum/minimum: NaN if either is NaN; on a tie (including -0.0 vs +0.0) the second operand.
    _SMALL[f"max_f{_w}"] = [f"static {_t} max_f{_w}({_t} a, {_t} b) {{ return a != a ? a : b != b ? b : a > b ? a : b; }}"]
    _SMALL[f"min_f{_w}"] = [f"static {_t} min_f{_w}({_t} a, {_t} b) {{ return a != a ? a : b != b ? b : a < b ? a : b; }}"]


class _Data:
    """The tables destined for `model_data.c` (definitions) and `model.c` (extern declarations)."""

    def __init__(self, prefix: str):
        self.prefix = prefix
        self.tables: list[tuple[str, str, list[str], str]] = []  # (C type, name, items, comment)
        self.needs_math_h = False
        self.shared: dict[tuple, str] = {}

    def add(self, name: str, values: np.ndarray, elem=None, comment: str = "") -> str:
        """Register a table; returns its C symbol.  `elem` is the IR float type for float arrays."""
        values = np.asarray(values).reshape(-1)
        if elem is not None:
            ctype = c_type(elem)
            items = [c_float(v, elem) for v in values.tolist()]
            self.needs_math_h |= any(("NAN" in s or "INFINITY" in s) for s in items)
        elif values.dtype == np.bool_:
            if _misra():
                ctype, items = "bool", [_bool(v) for v in values.tolist()]
            else:
                ctype, items = "unsigned char", [str(int(v)) for v in values.tolist()]
        else:
            ctype = _c_int_type(values.dtype)
            # Unsigned tables: every literal carries U (MISRA C:2012 Rule 7.2 for those above INT_MAX).
            u = "U" if values.dtype.kind == "u" else ""
            items = [f"{int(v)}{u}" for v in values.tolist()]
            if values.dtype == np.int64:
                # INT64_MIN has no literal form; values beyond 32 bits are INT64_C(...) (a plain
                # literal's type would depend on the width of long); the others are plain decimals.
                items = [s if -(2**31) <= int(s) < 2**31 else c_int(int(s), 64) for s in items]
            elif values.dtype == np.int32:
                items = [s if s != str(-(2**31)) else "INT32_MIN" for s in items]
        sym = f"{self.prefix}{name}"
        self.tables.append((ctype, sym, items, comment))
        return sym

    def add_shared(self, stem: str, values: np.ndarray, elem=None, comment: str = "") -> str:
        """`add`, once per distinct content (tables of shared expansions are emitted once)."""
        values = np.ascontiguousarray(values).reshape(-1)
        key = (str(values.dtype), str(elem), values.tobytes())
        sym = self.shared.get(key)
        if sym is None:
            sym = self.shared[key] = self.add(f"{stem}{len(self.shared)}", values, elem, comment)
        return sym

    def declarations(self) -> list[str]:
        return [f"extern const {ctype} {sym}[{len(items)}];" for ctype, sym, items, _ in self.tables]

    def definitions(self) -> list[str]:
        out = []
        for ctype, sym, items, comment in self.tables:
            if comment:
                out.append(f"/* {comment} */")
            per_line = 6 if items and ("0x" in items[0] or "NAN" in items[0] or "INF" in items[0]) else 16
            rows = [", ".join(items[i : i + per_line]) for i in range(0, len(items), per_line)]
            out.append(f"const {ctype} {sym}[{len(items)}] = {{")
            out.extend(f"    {r}," for r in rows)
            out.append("};")
            out.append("")
        return out


# ----- values -------------------------------------------------------------------------------------


class _Arr:
    """A tensor held in a C array (a local, a parameter or a table)."""

    __slots__ = ("name",)

    def __init__(self, name: str):
        self.name = name

    def at(self, i) -> str:
        return f"{self.name}[{i}]"


class _Val:
    """A tensor whose every element is one C expression: a literal, or a scalar variable."""

    __slots__ = ("expr",)

    def __init__(self, expr: str):
        self.expr = expr

    def at(self, i) -> str:
        return self.expr


class _Bits:
    """A float table kept as its bit patterns (`int64_t`/`int32_t`), read through `float_i64` /
    `float_i32`: NaN payloads, which no C float constant can spell, come out exactly."""

    __slots__ = ("name", "conv")

    def __init__(self, name: str, conv: str):
        self.name, self.conv = name, conv

    def at(self, i) -> str:
        return f"{self.conv}({self.name}[{i}])"


def _odd_nans(values: np.ndarray, t) -> bool:
    """Does a float array hold a NaN other than the ones C's `NAN` / `-NAN` give?"""
    v = np.asarray(values, t.numpy).reshape(-1)
    nan = np.isnan(v)
    if not nan.any():
        return False
    it = np.int64 if t == f64 else np.int32
    quiet = np.array([np.nan, -np.nan], t.numpy)
    quiet[1] = np.copysign(quiet[1], -1.0)
    return bool(np.any(~np.isin(v[nan].view(it), quiet.view(it))))


def _each(n: int, stmt) -> list[str]:
    """`stmt(i)` for i in 0..n-1: unrolled when short, a loop otherwise."""
    if n <= UNROLL:
        return [stmt(str(i)) for i in range(n)]
    return [f"for ({'int32_t' if _misra() else 'int'} i = 0; i < {n}; ++i) {{", "    " + stmt("i"), "}"]


class _Routine:
    """The statements of one C routine being lowered: an IR function (`top`: constants become
    tables, results are arrays `v<k>`), or an expansion's routine (constants that are splats become
    literals; `scalar`: one element, every value a `const` scalar `t<k>`)."""

    def __init__(self, cm: "_CModule", top: bool, scalar: bool = False):
        self.cm = cm
        self.top = top
        self.scalar = scalar
        self.stem = "v" if top else "t"
        self.lines: list[str] = []
        self.env: dict[int, _Arr | _Val] = {}
        self.pre: list[str] = []  # routines this one needs emitted before it (ensembles)
        self.where = ""  # for table comments: "@name"
        self.n_tmp = 0

    def lower(self, op, k: int) -> None:
        low = LOWERINGS.get(type(op))
        if low is None:
            if not mathimpl.expandable(op):
                raise TimberError(L.cannot_lower(TARGET, op), op.location)
            low = self.cm.expansion_lowering(op)
        if isinstance(low, Elementwise):
            self.elementwise(op, k, low)
        else:
            low(self.cm, self, op, k)

    def args(self, op) -> list:
        return [self.env[id(v)] for v in op.operands]

    def declare(self, op, k: int) -> list[str]:
        """Arrays for op's results (`T v<k>[n];`), bound in the environment."""
        outs = []
        for j, r in enumerate(op.results):
            var = f"{self.stem}{k}_{j}" if len(op.results) > 1 else f"{self.stem}{k}"
            hint = f"  /* %{r.name_hint} */" if r.name_hint and self.top else ""
            self.lines.append(f"{c_type(r.type.element)} {var}[{r.type.size}];{hint}")
            self.env[id(r)] = _Arr(var)
            outs.append(var)
        return outs

    def elementwise(self, op, k: int, low: Elementwise) -> None:
        args = self.args(op)
        r = op.results[0]
        if self.scalar:
            var = f"{self.stem}{k}"
            self.lines.append(f"const {c_type(r.type.element)} {var} = {low.expr(self.cm, op, [a.at(0) for a in args])};")
            self.env[id(r)] = _Val(var)
            return
        out = self.declare(op, k)[0]
        self.lines += _each(r.type.size, lambda i: f"{out}[{i}] = {low.expr(self.cm, op, [a.at(i) for a in args])};")

    def array(self, ref, t) -> str:
        """The name of an array holding `ref` (anything else is copied into a fresh local first)."""
        if isinstance(ref, _Arr):
            return ref.name
        self.n_tmp += 1
        var = f"s{self.n_tmp}"
        self.lines.append(f"{c_type(t.element)} {var}[{t.size}];")
        self.lines += _each(t.size, lambda i: f"{var}[{i}] = {ref.at(i)};")
        return var


def _array_op(fn):
    """A lowering over whole arrays: `fn(cm, rt, op, a: [array names], r: [result names]) -> lines`."""

    def low(cm, rt: _Routine, op, k: int) -> None:
        a = [rt.array(rt.env[id(v)], v.type) for v in op.operands]
        r = rt.declare(op, k)
        rt.lines += fn(cm, rt, op, a, r)

    low.__name__ = fn.__name__
    return low


# ----- literals --------------------------------------------------------------------------------------


def c_literal(cm: "_CModule", v, t) -> str:
    """A C expression for the scalar `v` of IR type `t`, exact (a NaN keeps its payload)."""
    if isinstance(t, FloatType):
        arr = np.array(v, t.numpy)
        if np.isnan(arr):
            bits = int(arr.view(np.int64 if t == f64 else np.int32))
            default = int(np.array(np.copysign(np.nan, -1.0 if np.signbit(arr) else 1.0), t.numpy).view(np.int64 if t == f64 else np.int32))
            if bits != default:
                h = "float_i64" if t == f64 else "float_i32"
                cm.small.add(h)
                return f"{h}({c_int(bits, _width(t))})"
        return c_float(float(arr), t)
    if t.width == 1:
        return _bool(bool(v))
    return c_int(int(v), _width(t))


def c_int(v: int, width: int) -> str:
    if width == 64:
        if v == -(2**63):
            # cppcheck's MISRA addon mistypes <stdint.h>'s INT64_MIN (Rule 7.2); the same value spelt out
            return "(-INT64_C(9223372036854775807) - 1)" if _misra() else "INT64_MIN"
        return f"INT64_C({v})" if v >= 0 else f"(-INT64_C({-v}))"
    if v == -(2**31):
        return "INT32_MIN"
    return str(v)


# ----- the lowerings ------------------------------------------------------------------------------


def _constant(cm: "_CModule", rt: _Routine, op, k: int) -> None:
    r = op.results[0]
    t = r.type
    one = L.splat(op)
    if one is not None and not rt.top:
        rt.env[id(r)] = _Val(c_literal(cm, one, t.element))
        return
    if rt.top:
        rt.env[id(r)] = cm.table(f"c{cm.n_const}", op.value, t.element, f"constant {_hint(r)} of {rt.where}", shared=False)
        cm.n_const += 1
    else:
        rt.env[id(r)] = cm.table("k", op.value, t.element, f"constant {t}")


def _hint(v) -> str:
    return f"%{v.name_hint}" if v.name_hint else "(unnamed)"


def _return(cm: "_CModule", rt: _Routine, op, k: int) -> None:
    for i, v in enumerate(op.operands):
        src = rt.env[id(v)]
        rt.lines += _each(v.type.size, lambda j, i=i, src=src: f"r{i}[{j}] = {src.at(j)};")


def _el(op, i: int = 0):
    return op.operands[i].type.element


def _out(op):
    return op.results[0].type.element


def _float_binary(sym: str):
    return Elementwise(lambda cm, op, x: f"{_p(x[0])} {sym} {_p(x[1])}")


def _extremum(cm, op, x) -> str:
    h = f"{'max' if isinstance(op, arith.MaximumFOp) else 'min'}_f{_out(op).width}"
    cm.small.add(h)
    return f"{h}({x[0]}, {x[1]})"


def _cmpf(cm, op, x) -> str:
    fmt = _CMP[op.attributes["predicate"].value]
    if _misra():
        return f"({fmt.format(a=_p(x[0]), b=_p(x[1]))})"
    return f"(unsigned char)({fmt.format(a=_p(x[0]), b=_p(x[1]))})"


def _cast(cm, op, x) -> str:
    src = _el(op)
    if _misra() and isinstance(src, IntegerType) and src.width == 1:
        # A Boolean is not cast to a number (Rule 10.5): it selects 1 or 0.
        return f"({_p(x[0])} ? {c_literal(cm, 1, _out(op))} : {c_literal(cm, 0, _out(op))})"
    return f"({c_type(_out(op))}){_p(x[0])}"


def _wrapped(sym: str):
    """Integer +, -, * modulo 2^width: computed unsigned, converted back without overflow."""

    def expr(cm, op, x) -> str:
        w = _width(_out(op))
        cm.small.add(f"wrap_i{w}")
        if w == 64:
            return f"wrap_i64((uint64_t){_p(x[0])} {sym} (uint64_t){_p(x[1])})"
        if sym == "*":  # in 64 bits: a 32-bit unsigned product may promote to a (too narrow) signed int
            return f"wrap_i32((uint32_t)((uint64_t)(uint32_t){_p(x[0])} * (uint32_t){_p(x[1])}))"
        return f"wrap_i32((uint32_t){_p(x[0])} {sym} (uint32_t){_p(x[1])})"

    expr.__name__ = f"wrapped_{sym}"
    return Elementwise(expr)


def _bitwise(sym: str):
    def expr(cm, op, x) -> str:
        t = _out(op)
        if not _misra():
            return f"({c_type(t)})({_p(x[0])} {sym} {_p(x[1])})"
        if t.width == 1:  # Booleans: the logical operators (Rule 10.1)
            return f"({_p(x[0])} {dict(zip('&|^', ('&&', '||', '!=')))[sym]} {_p(x[1])})"
        w = _width(t)  # no bitwise operator on a signed operand (Rule 10.1): on the unsigned bits
        cm.small.add(f"wrap_i{w}")
        return f"wrap_i{w}((uint{w}_t){_p(x[0])} {sym} (uint{w}_t){_p(x[1])})"

    expr.__name__ = f"bitwise_{sym}"
    return Elementwise(expr)


def _unsigned_shift(sym: str):
    """`<<` or logical `>>` on the unsigned type, the amount mod the width, wrapped back to signed."""

    def expr(cm, op, x) -> str:
        w = _width(_out(op))
        cm.small.add(f"wrap_i{w}")
        u = f"uint{w}_t"
        return f"wrap_i{w}(({u}){_p(x[0])} {sym} (({u}){_p(x[1])} & {w - 1}u))"

    return Elementwise(expr)


def _shrs(cm, op, x) -> str:
    h = f"shrs_i{_width(_out(op))}"
    cm.small.add(h)
    return f"{h}({x[0]}, {x[1]})"


def _cmpi(cm, op, x) -> str:
    pred = op.attributes["predicate"].value
    rel = _CMPI[pred[1:] if pred[0] in "su" else pred]
    a, b = _p(x[0]), _p(x[1])
    if pred[0] == "u":
        u = f"uint{_width(_el(op))}_t"
        a, b = f"({u}){a}", f"({u}){b}"
    if _misra():
        return f"({a} {rel} {b})"
    return f"(unsigned char)({a} {rel} {b})"


def _bitcast(cm, op, x) -> str:
    src = _el(op)
    h = f"bits_f{src.width}" if isinstance(src, FloatType) else f"float_i{src.width}"
    cm.small.add(h)
    cm.needs_string_h = True
    return f"{h}({x[0]})"


def _fptosi(cm, op, x) -> str:
    h = f"fptosi_i{_width(_out(op))}"
    cm.small.add(h)
    a = x[0] if _el(op) == f64 else f"(double){_p(x[0])}"
    return f"{h}({a})"


def _trunci(cm, op, x) -> str:
    cm.small.add("wrap_i32")
    return f"wrap_i32((uint32_t){_p(x[0])})"


def _lookup(cm, op, x) -> str:
    table = np.asarray(op.attributes["table"].values).reshape(-1)
    el = _out(op)
    ref = cm.table("lut", table, el, f"arith.lookup table ({len(table)} x {el})")
    u = f"uint{_width(_el(op))}_t"
    return ref.at(f"({u}){_p(x[0])} & {len(table) - 1}u")


def _select(cm, op, x) -> str:
    return f"{_p(x[0])} ? {_p(x[1])} : {_p(x[2])}"


def _extract(cm, rt: _Routine, op, k: int) -> None:
    # Values never change once computed, so the element itself stands for the result.
    rt.env[id(op.results[0])] = _Val(rt.env[id(op.operands[0])].at(op.attributes["index"].value))


def _broadcast(cm, rt: _Routine, op, k: int) -> None:
    rt.env[id(op.results[0])] = _Val(rt.env[id(op.operands[0])].at(0))


def _concat(cm, rt: _Routine, op, k: int) -> None:
    # Values never change once computed: the result is the operands' elements, side by side.
    parts = [(rt.env[id(v)], v.type.size) for v in op.operands]
    out = rt.declare(op, k)[0]
    i = 0
    for ref, n in parts:
        for j in range(n):
            rt.lines.append(f"{out}[{i}] = {ref.at(j)};")
            i += 1


@_array_op
def _argmax(cm, rt, op, a, r) -> list[str]:
    t = op.operands[0].type
    ct, n = c_type(t.element), t.size
    return [
        "{",
        f"    {ct} best = {a[0]}[0];",
        "    int64_t idx = 0;",
        f"    for ({'int32_t' if _misra() else 'int'} i = 1; i < {n}; ++i) {{",
        f"        if ({a[0]}[i] > best) {{ best = {a[0]}[i]; idx = i; }}",
        "    }",
        f"    {r[0]}[0] = idx;",
        "}",
    ]


@_array_op
def _affine(cm, rt, op, a, r) -> list[str]:
    w = np.asarray(op.attributes["weights"].values)
    b = np.asarray(op.attributes["bias"].values)
    el = op.results[0].type.element
    k_out, n_in = w.shape
    wsym = cm.data.add(f"affine{cm.n_aff}_w", w, el, f"linear.affine #{cm.n_aff}: weights ({k_out} x {n_in}), row-major")
    bsym = cm.data.add(f"affine{cm.n_aff}_b", b, el, f"linear.affine #{cm.n_aff}: bias")
    cm.n_aff += 1
    ct = c_type(el)
    skip = op.attributes["missing"].value == "skip"
    # "skip": a NaN input is absent and adds nothing (the accumulator keeps its value).
    add = f"acc = acc + xv * {wsym}[k * {n_in} + j];"
    it = "int32_t" if _misra() else "int"
    return [
        f"for ({it} k = 0; k < {k_out}; ++k) {{",
        f"    {ct} acc = {bsym}[k];",
        f"    for ({it} j = 0; j < {n_in}; ++j) {{",
        f"        const {ct} xv = ({ct}){a[0]}[j];",
        f"        if (xv == xv) {{ {add} }}" if skip else f"        {add}",
        "    }",
        f"    {r[0]}[k] = acc;",
        "}",
    ]


@_array_op
def _ensemble_op(cm, rt, op, a, r) -> list[str]:
    name = f"ensemble_{cm.n_ens}"
    rt.pre += cm._ensemble(pack_ensemble(op), name, cm.n_ens)
    cm.n_ens += 1
    return [f"{name}({a[0]}, {r[0]});"]


@_array_op
def _call(cm, rt, op, a, r) -> list[str]:
    return [f"{cm.fn_names[op.callee]}({', '.join(a + r)});"]


# The dispatch table: one entry per op class the back-end lowers itself.  Ops with an `arith`
# expansion (math.exp, math.log1p, math.sigmoid, math.softmax, ...) have no entry: they are
# lowered through their expansion (`_CModule.expansion_lowering`).
LOWERINGS: dict[type, object] = {
    arith.ConstantOp: _constant,
    arith.AddFOp: _float_binary("+"),
    arith.SubFOp: _float_binary("-"),
    arith.MulFOp: _float_binary("*"),
    arith.DivFOp: _float_binary("/"),
    arith.MaximumFOp: Elementwise(_extremum),
    arith.MinimumFOp: Elementwise(_extremum),
    arith.NegFOp: Elementwise(lambda cm, op, x: f"-{_p(x[0])}"),
    arith.CmpFOp: Elementwise(_cmpf),
    arith.SelectOp: Elementwise(_select),
    arith.ExtFOp: Elementwise(_cast),
    arith.TruncFOp: Elementwise(_cast),
    arith.SIToFPOp: Elementwise(_cast),
    arith.AddIOp: _wrapped("+"),
    arith.SubIOp: _wrapped("-"),
    arith.MulIOp: _wrapped("*"),
    arith.AndIOp: _bitwise("&"),
    arith.OrIOp: _bitwise("|"),
    arith.XOrIOp: _bitwise("^"),
    arith.ShLIOp: _unsigned_shift("<<"),
    arith.ShRSIOp: Elementwise(_shrs),
    arith.ShRUIOp: _unsigned_shift(">>"),
    arith.CmpIOp: Elementwise(_cmpi),
    arith.BitcastOp: Elementwise(_bitcast),
    arith.FPToSIOp: Elementwise(_fptosi),
    arith.ExtSIOp: Elementwise(_cast),
    arith.TruncIOp: Elementwise(_trunci),
    arith.LookupOp: Elementwise(_lookup),
    arith.ExtractOp: _extract,
    arith.BroadcastOp: _broadcast,
    arith.ConcatOp: _concat,
    math.ArgmaxOp: _argmax,
    linear.AffineOp: _affine,
    tree.EnsembleOp: _ensemble_op,
    func.CallOp: _call,
    func.ReturnOp: _return,
}


def lowering_of(op_class) -> str | None:
    """How the C99 back-end lowers ops of `op_class`: "table" (an entry of `LOWERINGS`),
    "expansion" (through its `arith` expansion), or None (it cannot: such a module is refused
    with "the C99 back-end cannot lower '<op>'")."""
    return L.lowering_of(LOWERINGS, op_class)


def check(op, expand: bool = True) -> str | None:
    """None when the C99 back-end can lower `op`, else the message refusing it."""
    return L.unsupported(LOWERINGS, TARGET, op, expand)


class _CModule:
    """Generates the three C files of one module."""

    def __init__(self, plan: ModulePlan):
        self.plan = plan
        self.P = plan.prefix
        self.M = plan.macro_prefix
        self.data = _Data(plan.prefix)
        self.helpers: set[str] = set()  # categorical membership tests
        self.small: set[str] = set()  # routines of _SMALL
        self.needs_string_h = False
        self.fn_names = {f.sym_name: f"fn_{i}" for i, f in enumerate(plan.funcs)}
        self.routines: list[list[str]] = []
        self.math_routines: list[list[str]] = []  # expansions' routines, callees first
        self.math_names: dict[int, tuple] = {}  # id(expansion ops) -> (ops, routine, scalar?)
        self.math_texts: dict[tuple, str] = {}  # routine text -> its name (identical routines merge)
        self.n_const = 0
        self.n_ens = 0
        self.n_aff = 0

    # ----- functions ------------------------------------------------------------------
    def lower_all(self) -> None:
        for f in self.plan.funcs:
            self.routines.append(self.lower_func(f))

    def lower_func(self, f: func.FuncOp) -> list[str]:
        name = self.fn_names[f.sym_name]
        ft = f.function_type
        params = [f"const {c_type(t.element)} *a{i}" for i, t in enumerate(ft.inputs)]
        params += [f"{c_type(t.element)} *r{i}" for i, t in enumerate(ft.results)]
        rt = _Routine(self, top=True)
        rt.where = f"@{f.sym_name}"
        rt.env = {id(a): _Arr(f"a{i}") for i, a in enumerate(f.body.args)}
        for k, op in enumerate(f.body.ops):
            rt.lower(op, k)
        lines = [f"/* @{f.sym_name}: {ft} */", f"static void {name}({', '.join(params)})", "{"]
        lines += ["    " + s if s else "" for s in rt.lines]
        lines.append("}")
        return rt.pre + ([""] if rt.pre else []) + lines

    def table(self, stem: str, values, el, comment: str, shared: bool = True) -> "_Arr | _Bits":
        """A read-only table in model_data.c holding `values` of IR element type `el` (`shared`:
        once per distinct content, named `<stem><n>`; else named `<stem>`)."""
        values = np.asarray(values).reshape(-1)
        add = self.data.add_shared if shared else self.data.add
        if isinstance(el, FloatType) and _odd_nans(values, el):
            conv = f"float_i{el.width}"
            self.small.add(conv)
            self.needs_string_h = True
            bits = np.ascontiguousarray(values, el.numpy).view(np.int64 if el == f64 else np.int32)
            return _Bits(add(stem, bits, None, comment + " (bit patterns: NaN payloads exactly)"), conv)
        return _Arr(add(stem, values, el if isinstance(el, FloatType) else None, comment))

    # ----- expansions -----------------------------------------------------------------
    def expansion_lowering(self, op):
        """The lowering of an op through its `arith` expansion: a call per element of a scalar
        routine when the expansion is elementwise, else one call of a routine over arrays."""
        args, ops, out = mathimpl.expansion(op)
        hit = self.math_names.get(id(ops))
        if hit is None or hit[0] is not ops:
            hit = self.math_names[id(ops)] = (ops, *self._math_routine(op, args, ops, out))
        _, name, scalar = hit
        if scalar:
            return Elementwise(lambda cm, o, x: f"{name}({x[0]})")
        return _array_op(lambda cm, rt, o, a, r: [f"{name}({', '.join(a)}, {r[0]});"])

    def _math_routine(self, op, args, ops, out) -> tuple[str, bool]:
        scalar = op.has_trait(ElementwiseOp)  # one element at a time (one operand): a scalar routine
        names = ["x"] if len(args) == 1 else [f"x{i}" for i in range(len(args))]
        rt = _Routine(self, top=False, scalar=scalar)
        for a, n in zip(args, names):
            rt.env[id(a)] = _Val(n) if scalar else _Arr(n)
        for k, o in enumerate(L.live_ops(ops, out)):
            rt.lower(o, k)
        to = c_type(out.type.element)
        res = rt.env[id(out)]
        if scalar:
            head = f"static {to} @NAME@({c_type(args[0].type.element)} x)"
            body = rt.lines + [f"return {res.at(0)};"]
            base = L.helper_name(op)
        else:
            params = ", ".join(f"const {c_type(a.type.element)} *{n}" for a, n in zip(args, names))
            head = f"static void @NAME@({params}, {to} *r)"
            body = rt.lines + _each(out.type.size, lambda i: f"r[{i}] = {res.at(i)};")
            base = L.helper_name(op, "_".join(str(a.type.size) for a in args))
        for n in reversed(names):
            if not any(re.search(rf"\b{n}\b", s) for s in body):
                body.insert(0, f"(void){n};")
        key = (head, tuple(body))
        name = self.math_texts.get(key)
        if name is None:
            taken = set(self.math_texts.values())
            name, n = base, 1
            while name in taken:
                n += 1
                name = f"{base}_{n}"
            self.math_texts[key] = name
            what = "element by element" if scalar else "on " + ", ".join(str(a.type) for a in args)
            self.math_routines.append(
                [f"/* {op.name} {what}: its arith expansion (ir/dialects/mathimpl/), op by op */", head.replace("@NAME@", name), "{"]
                + ["    " + s for s in body]
                + ["}"]
            )
        return name, scalar

    # ----- ensembles --------------------------------------------------------------------
    def _ensemble(self, tb: EnsembleTables, name: str, k: int) -> list[str]:
        """A static routine `name(x, out)` evaluating one packed ensemble."""
        syms = {}
        for key, arr in tb.arrays.items():
            # Arrays the loops never read (uniform columns, empty pools) are not emitted.
            if len(arr) == 0 or (key == "out" and tb.uniform_out is not None) or (key == "dim" and tb.uniform_dim is not None):
                continue
            elem = None
            if key in ("thr", "lthr"):
                elem = tb.cmp
            elif key in ("leaf", "lconst", "lterm_coef"):
                elem = tb.leaf_type
            syms[key] = self.data.add(f"e{k}_{key}", arr, elem, f"ensemble {k}: {key}" if key in ("feat", "lfeat", "leaf", "root") else "")
        cmp_c, leaf_c, acc_c, in_c = c_type(tb.cmp), c_type(tb.leaf_type), c_type(tb.acc), c_type(tb.in_elem)
        ctx = dict(cmp_c=cmp_c, tb=tb, syms=syms)
        lines = [
            f"/* tree.ensemble #{k}: {tb.n_trees} trees, compare in {tb.cmp}, leaves {tb.leaf_type}, "
            f"accumulate in {tb.acc}; trees are added in order, each sum rounded to {tb.acc}. */",
            f"static void {name}(const {in_c} *x, {acc_c} *out)",
            "{",
            "    (void)x;",
        ]
        init = tb.init
        for i, v in enumerate(init.tolist()):
            lines.append(f"    out[{i}] = {c_float(v, tb.acc)};")
        for kind, start, stop in tb.runs:
            if kind == "node":
                lines += self._node_run(start, stop, ctx, leaf_c, acc_c)
            else:
                lines += self._oblivious_run(start, stop, ctx, acc_c)
        lines.append("}")
        return lines

    def _decide(self, combos, prefix: str, ctx) -> list[str]:
        """Statements setting `yes` for split/level `n` with compare value `v` (see tree.py)."""
        syms, tb = ctx["syms"], ctx["tb"]
        thr, words = syms.get(prefix + "thr"), syms.get("words")
        cstart, clen = syms.get(prefix + "cstart"), syms.get(prefix + "clen")

        misra = _misra()

        def pred_expr(p: int, w: str) -> str:
            if p == Pred.IN:
                if words is None or cstart is None:
                    return _bool(False)  # every set is empty: nothing is a member
                self.helpers.add(f"cat_{tb.cat_negative}")
                return f"cat_{tb.cat_negative}({words}, {cstart}[n], {clen}[n], (double){w})"
            return f"{w} {_PRED_C[Pred(p)]} {thr}[n]"

        # The default direction of a missing value: bit 5 of the op code.
        default = "((op >> 5U) != 0U)" if misra else "(int)(op >> 5)"

        def combo(p: int, m: int) -> str:
            if m == Missing.NAN:
                return f"yes = (v != v) ? {default} : ({pred_expr(p, 'v')});"
            if m == Missing.ZERO:
                z = hex_float(ZERO_THRESHOLD)
                miss = f"v != v || ((double)v <= {z} && (double)v >= -{z})"
                return f"yes = ({miss}) ? {default} : ({pred_expr(p, 'v')});"
            if m == Missing.NAN_AS_ZERO:
                return f"yes = {pred_expr(p, f'((v != v) ? {c_float(0.0, tb.cmp)} : v)')};"
            return f"yes = {pred_expr(p, 'v')};"

        need_op = len(combos) > 1 or any(m in (Missing.NAN, Missing.ZERO) for _, m in combos)
        out = [f"const uint32_t op = {syms[prefix + 'op']}[n];"] if need_op else []
        out.append("bool yes;" if misra else "int yes;")
        if len(combos) == 1:
            out.append(combo(*combos[0]))
        else:
            out.append("switch (op & 31U) {")
            for p, m in combos[:-1]:
                out.append(f"case {int(p) | int(m) << 3}u: {combo(p, m)} break;")
            out.append(f"default: {combo(*combos[-1])} break;")
            out.append("}")
        if not any(re.search(r"\bv\b", s) for s in out):
            out.append("(void)v; /* only empty category sets: the value decides nothing */")
        return out

    def _accumulate(self, tb: EnsembleTables, syms, off: str, val: str | None, acc_c: str) -> list[str]:
        """Add the leaf at pool offset `off` (or the single value `val`) to out[k..k+dim)."""
        k = str(tb.uniform_out) + "u" if tb.uniform_out is not None else f"{syms['out']}[t]"
        if val is not None:
            return [f"out[{k}] = out[{k}] + ({acc_c}){val};"]
        if tb.uniform_dim == 1:
            return [f"out[{k}] = out[{k}] + ({acc_c}){syms['leaf']}[{off}];"]
        d = f"{tb.uniform_dim}u" if tb.uniform_dim is not None else f"{syms['dim']}[t]"
        return [
            f"{{ const uint32_t k = {k}, d = {d};",
            f"  for (uint32_t j = 0U; j < d; ++j) {{ out[k + j] = out[k + j] + ({acc_c}){syms['leaf']}[{off} + j]; }} }}",
        ]

    def _node_run(self, start: int, stop: int, ctx, leaf_c: str, acc_c: str) -> list[str]:
        tb, syms, cmp_c = ctx["tb"], ctx["syms"], ctx["cmp_c"]
        S = tb.n_splits
        body = [f"uint32_t n = {syms['root']}[t];"]
        if S:
            body += [f"while (n < {S}u) {{", f"    const {cmp_c} v = ({cmp_c})x[{syms['feat']}[n]];"]
            body += ["    " + s for s in self._decide(tb.node_combos, "", ctx)]
            body += [f"    n = yes ? {syms['yes']}[n] : {syms['no']}[n];", "}", f"n -= {S}u;"]
        plain = self._accumulate(tb, syms, "n", None, acc_c)
        if tb.linear == "none":
            body += plain
        else:
            # Linear leaf (width 1): const + sum(coeff * x) in the leaf type, unless one of its x is NaN.
            misra = _misra()
            lin = [
                f"{leaf_c} val = {syms['leaf']}[n];",
                f"{leaf_c} a = {syms['lconst']}[n];",
                "bool nan = false;" if misra else "int nan = 0;",
                f"const uint32_t s0 = {syms['lstart']}[n], s1 = s0 + {syms['llen']}[n];",
                "for (uint32_t j = s0; j < s1; ++j) {",
                f"    const {leaf_c} xv = ({leaf_c})x[{syms['lterm_feat']}[j]];",
                "    if (xv != xv) { nan = true; }" if misra else "    nan |= (xv != xv);",
                f"    a = a + {syms['lterm_coef']}[j] * xv;",
                "}",
                "if (!nan) { val = a; }",
            ] + self._accumulate(tb, syms, "n", "val", acc_c)
            if tb.linear == "all":
                body += ["{"] + ["    " + s for s in lin] + ["}"]
            else:
                body += [f"if ({syms['linear']}[t] != 0U) {{", *["    " + s for s in lin], "} else {", *["    " + s for s in plain], "}"]
        return _tree_loop(start, stop, body)

    def _oblivious_run(self, start: int, stop: int, ctx, acc_c: str) -> list[str]:
        tb, syms, cmp_c = ctx["tb"], ctx["syms"], ctx["cmp_c"]
        dim = f"{tb.uniform_dim}u" if tb.uniform_dim is not None else f"{syms['dim']}[t]"
        body = ["uint32_t idx = 0U;"]
        if "lop" in syms:
            body += [
                f"const uint32_t l0 = {syms['root']}[t], depth = {syms['depth']}[t];",
                "for (uint32_t d = 0U; d < depth; ++d) {",
                "    const uint32_t n = l0 + d;",
                f"    const {cmp_c} v = ({cmp_c})x[{syms['lfeat']}[n]];",
            ]
            body += ["    " + s for s in self._decide(tb.level_combos, "l", ctx)]
            body += ["    idx |= (yes ? (uint32_t)1U : (uint32_t)0U) << d;" if _misra() else "    idx |= (uint32_t)yes << d;", "}"]
        body.append(f"const uint32_t off = {syms['lbase']}[t] + idx * {dim};")
        body += self._accumulate(tb, syms, "off", None, acc_c)
        return _tree_loop(start, stop, body)

    # ----- files ------------------------------------------------------------------------
    def model_h(self) -> str:
        return model_h(self.plan)

    def model_data_c(self) -> str:
        lines = [
            f"/* model_data.c: generated by Timber from {comment_safe(self.plan.source)}.  Do not edit.",
            "   Read-only tables; every float is a hex literal holding the exact value. */",
        ]
        if _misra():
            if not self.data.tables:
                # ISO C forbids an empty translation unit; a declared object is used instead of an
                # unused typedef (Rule 2.3).
                self.data.add("no_tables", np.zeros(1, np.uint8), None, "no tables: ISO C forbids an empty translation unit")
            lines.append('#include "model_data.h"')
        else:
            lines.append("#include <stdint.h>")
        if self.data.needs_math_h:
            if _misra():
                lines += _nonfinite(self.data.definitions())
            else:
                lines.append("#include <math.h> /* NAN and INFINITY macros only; no libm function is used */")
        lines.append("")
        lines += self.data.definitions()
        if not self.data.tables:
            # ISO C forbids an empty translation unit.
            lines.append(f"typedef int {self.P}no_tables;")
        return "\n".join(lines) + "\n"

    def model_data_h(self) -> str:
        """MISRA profile: the tables' declarations, once, for model.c and model_data.c (Rules 8.4, 8.5)."""
        guard = f"{self.M}MODEL_DATA_H"
        lines = [
            f"/* model_data.h: generated by Timber from {comment_safe(self.plan.source)}.  Do not edit.",
            "   The read-only tables model_data.c defines and model.c reads. */",
            f"#ifndef {guard}",
            f"#define {guard}",
            "",
            "#include <stdbool.h>",
            "#include <stdint.h>",
            "",
        ]
        lines += self.data.declarations()
        lines += ["", f"#endif /* {guard} */", ""]
        return "\n".join(lines)

    def model_c(self) -> str:
        lines = [
            f"/* model.c: generated by Timber from {comment_safe(self.plan.source)}.  Do not edit.",
            "   No malloc, no recursion, no mutable globals, no libm.  Build with -ffp-contract=off:",
            "   a fused multiply-add would change the last bit of sums and of exp. */",
            '#include "model.h"',
        ]
        if _misra():
            lines.append('#include "model_data.h"')
        lines += [
            "",
            "#include <float.h>",
            "#include <stddef.h>",
            "#include <stdint.h>",
        ]
        if _misra():
            lines.append("#include <stdbool.h>")
        code = self._helpers()
        for r in self.math_routines:
            code += r + [""]
        for r in self.routines:
            code += r + [""]
        # Every body braced, int32_t/uint32_t locals (free, so in both outputs); the wrappers keep the ABI's int.
        code = _misra_profile.shape(code)
        code += self._wrappers()
        if self.needs_string_h and any("memcpy" in s for s in code):
            lines.append("#include <string.h> /* memcpy, for bit casts */")
        if any("NAN" in s or "INFINITY" in s for s in code):
            if _misra():
                lines += _nonfinite(code)
            else:
                lines.append("#include <math.h> /* the NAN and INFINITY macros only; no libm function is used */")
        lines += [
            "",
            "#if !defined(FLT_EVAL_METHOD) || FLT_EVAL_METHOD != 0",
            '#error "Timber needs float and double arithmetic without excess precision (FLT_EVAL_METHOD == 0; on 32-bit x86 use -msse2 -mfpmath=sse)"',
            "#endif",
            "",
        ]
        if not _misra():
            lines += self.data.declarations()
            lines.append("")
        lines += code
        return "\n".join(lines) + "\n"

    def _wrappers(self) -> list[str]:
        M = self.M
        out = []
        for ex in self.plan.exports:
            fn = self.fn_names[ex.func.sym_name]
            ti, to = c_type(ex.in_elem), c_type(ex.out_elem)
            if ex is self.plan.predict:
                ti, to = f"{self.P}input_t", f"{self.P}output_t"
            if _misra():
                out += self._misra_wrappers(ex, fn, ti, to)
                continue
            if ex.single_symbol is not None:
                out += [
                    f"int {ex.single_symbol}(const {ti} *inputs, {to} *outputs, const void *ctx)",
                    "{",
                    "    (void)ctx;",
                    f"    if (inputs == NULL || outputs == NULL) return {M}ERR_NULL;",
                    f"    {fn}(inputs, outputs);",
                    f"    return {M}OK;",
                    "}",
                    "",
                ]
            out += [
                f"int {ex.batch_symbol}(const {ti} *inputs, int n_samples, {to} *outputs, const void *ctx)",
                "{",
                "    (void)ctx;",
                f"    if (n_samples < 0) return {M}ERR_BOUNDS;",
                f"    if (n_samples > 0 && (inputs == NULL || outputs == NULL)) return {M}ERR_NULL;",
                "    for (int i = 0; i < n_samples; ++i)",
                f"        {fn}(inputs + (size_t)i * {ex.n_in}u, outputs + (size_t)i * {ex.n_out}u);",
                f"    return {M}OK;",
                "}",
                "",
            ]
        return out

    def _misra_wrappers(self, ex, fn: str, ti: str, to: str) -> list[str]:
        """The exported entry points with one exit each (Rule 15.5) and rows addressed by index."""
        M = self.M
        out = []
        if ex.single_symbol is not None:
            out += [
                f"int {ex.single_symbol}(const {ti} *inputs, {to} *outputs, const void *ctx)",
                "{",
                f"    int rc = {M}OK;",
                "    (void)ctx;",
                "    if ((inputs == NULL) || (outputs == NULL)) {",
                f"        rc = {M}ERR_NULL;",
                "    } else {",
                f"        {fn}(inputs, outputs);",
                "    }",
                "    return rc;",
                "}",
                "",
            ]
        out += [
            f"int {ex.batch_symbol}(const {ti} *inputs, int n_samples, {to} *outputs, const void *ctx)",
            "{",
            f"    int rc = {M}OK;",
            "    (void)ctx;",
            "    if (n_samples < 0) {",
            f"        rc = {M}ERR_BOUNDS;",
            "    } else if ((n_samples > 0) && ((inputs == NULL) || (outputs == NULL))) {",
            f"        rc = {M}ERR_NULL;",
            "    } else {",
            "        for (int i = 0; i < n_samples; ++i) {",
            "            const size_t row = (size_t)i;",
            f"            {fn}(&inputs[row * {ex.n_in}U], &outputs[row * {ex.n_out}U]);",
            "        }",
            "    }",
            "    return rc;",
            "}",
            "",
        ]
        return out

    def _helpers(self) -> list[str]:
        out: list[str] = []
        if _misra():
            for name in _misra_profile.helper_order(self.small, list(_SMALL)):
                out += _misra_profile.SMALL.get(name, _SMALL.get(name)) + [""]
        else:
            for name, text in _SMALL.items():
                if name in self.small:
                    out += text + [""]
        for mode in ("value", "code"):
            if f"cat_{mode}" not in self.helpers:
                continue
            # A category is trunc(v); it is invalid (not a member) if v is NaN or +-inf, negative, or
            # not below 2^31.  "value": negative means v < 0; "code": trunc(v) < 0, i.e. v <= -1.
            # Both ranges lie inside (-1, 2^32), where C's float-to-unsigned conversion is defined.
            # The set is words[start .. start + n_words).
            low = "v >= 0.0" if mode == "value" else "v > -1.0"
            if _misra():
                out += [
                    f"static bool cat_{mode}(const uint32_t *words, uint32_t start, uint32_t n_words, double v)",
                    "{",
                    "    bool member = false;",
                    f"    if (({low}) && (v < 0x1p+31)) {{",
                    "        const uint32_t c = (uint32_t)v;",
                    "        if ((c >> 5U) < n_words) {",
                    "            member = ((words[start + (c >> 5U)] >> (c & 31U)) & 1U) != 0U;",
                    "        }",
                    "    }",
                    "    return member;",
                    "}",
                    "",
                ]
                continue
            out += [
                f"static int32_t cat_{mode}(const uint32_t *words, uint32_t start, uint32_t n_words, double v)",
                "{",
                f"    if (!({low} && v < 0x1p+31)) {{ return 0; }}",
                "    const uint32_t c = (uint32_t)v;",
                "    if ((c >> 5) >= n_words) { return 0; }",
                "    return (int32_t)((words[start + (c >> 5)] >> (c & 31u)) & 1u);",
                "}",
                "",
            ]
        return out

    def files(self) -> dict[str, str]:
        self.lower_all()
        if not _misra():
            return {
                "model.h": self.model_h(),
                "model_data.c": self.model_data_c(),
                "model.c": self.model_c(),
                "CMakeLists.txt": _cmake(self.P),
                "Makefile": _makefile(self.P),
            }
        model_c = self.model_c()
        data_c = self.model_data_c()  # before model_data.h: it may add the placeholder table
        files = {
            "model.h": self.model_h(),
            "model_data.h": self.model_data_h(),
            "model_data.c": data_c,
            "model.c": model_c,
            "CMakeLists.txt": _cmake(self.P),
            "Makefile": _makefile(self.P, "model.h model_data.h"),
        }
        helpers = [n for n in _misra_profile.helper_order(self.small, list(_SMALL))]
        files["DEVIATIONS.md"] = _misra_profile.deviations(self.plan.source, self.P, helpers, sorted(files))
        return files


# The MISRA profile's spelling of infinity and NaN: <math.h>'s macros where the library is there,
# the compiler's built-in constants (the same values) in a freestanding GCC/Clang build, which has
# no <math.h>.  Our own names: a standard macro name may not be defined (Rule 21.1).
def _nonfinite(text: list[str]) -> list[str]:
    """The definitions of the ones of TIMBER_NAN / TIMBER_INFINITY that `text` uses (an unused macro
    would break Rule 2.5)."""
    used = [n for n in ("NAN", "INFINITY") if any(f"TIMBER_{n}" in s for s in text)]
    builtin = {"NAN": '(__builtin_nanf(""))', "INFINITY": "(__builtin_inff())"}
    return [
        "#if defined(__STDC_HOSTED__) && (__STDC_HOSTED__ == 0) && defined(__GNUC__)",
        *[f"#define TIMBER_{n} {builtin[n]} /* freestanding: no <math.h> */" for n in used],
        "#else",
        "#include <math.h> /* the NAN and INFINITY macros only; no libm function is used */",
        *[f"#define TIMBER_{n} {n}" for n in used],
        "#endif",
    ]


def _tree_loop(start: int, stop: int, body: list[str]) -> list[str]:
    """`body` once per tree t in [start, stop)."""
    return [f"    for ({'int32_t' if _misra() else 'int'} t = {start}; t < {stop}; ++t) {{", *["        " + s for s in body], "    }"]


def _makefile(prefix: str, headers: str = "model.h") -> str:
    lib = f"lib{prefix}model"
    return f"""# Makefile: generated by Timber.  `make` builds {lib}.a, `make shared` {lib}.so.
CC ?= cc
AR ?= ar
OPT ?= -O2
# The warning set the generated code is checked against; `make WERROR=` to drop -Werror.
WERROR ?= -Werror
WARN = -std=c99 -Wall -Wextra -Wpedantic $(WERROR)
# -ffp-contract=off: no fused multiply-add.  Timber's results are defined as separately rounded
# IEEE operations (same bits as the JIT, the WAT module and the framework); an FMA would change them.
FPFLAGS = -ffp-contract=off
ALL_CFLAGS = $(WARN) $(FPFLAGS) $(OPT) $(CFLAGS)
OBJS = model.o model_data.o

all: {lib}.a

{lib}.a: $(OBJS)
\t$(AR) rcs $@ $(OBJS)

shared: {lib}.so

{lib}.so: model.c model_data.c {headers}
\t$(CC) $(ALL_CFLAGS) -fPIC -shared -o $@ model.c model_data.c $(LDFLAGS)

%.o: %.c {headers}
\t$(CC) $(ALL_CFLAGS) -c -o $@ $<

clean:
\trm -f $(OBJS) {lib}.a {lib}.so

.PHONY: all shared clean
"""


def _cmake(prefix: str) -> str:
    lib = f"{prefix}model"
    return f"""# CMakeLists.txt: generated by Timber.  Builds the static library `{lib}`
# (-DBUILD_SHARED_LIBS=ON for a shared one).  No libm, no other dependency.
cmake_minimum_required(VERSION 3.10)
project({lib} C)

option(TIMBER_WERROR "Treat warnings as errors" ON)

add_library({lib} model.c model_data.c)
target_include_directories({lib} PUBLIC ${{CMAKE_CURRENT_SOURCE_DIR}})
set_target_properties({lib} PROPERTIES C_STANDARD 99 C_STANDARD_REQUIRED ON C_EXTENSIONS OFF POSITION_INDEPENDENT_CODE ON)

if(CMAKE_C_COMPILER_ID MATCHES "GNU|Clang")
  target_compile_options({lib} PRIVATE -Wall -Wextra -Wpedantic)
  # No fused multiply-add: results are defined as separately rounded IEEE operations
  # (the same bits as the JIT, the WAT module and the framework); an FMA would change them.
  target_compile_options({lib} PRIVATE -ffp-contract=off)
  if(TIMBER_WERROR)
    target_compile_options({lib} PRIVATE -Werror)
  endif()
elseif(MSVC)
  # /fp:precise keeps IEEE semantics; /fp:contract (which would allow FMA) stays off.
  target_compile_options({lib} PRIVATE /W4 /fp:precise)
endif()
"""


def emit_c99(module, prefix: str = "timber_", misra: bool = False) -> dict[str, str]:
    """C99 sources for a verified module: {"model.h", "model_data.c", "model.c", "CMakeLists.txt", "Makefile"}.

    `@predict` is exported as `<prefix>infer` / `<prefix>infer_single`, every other function `@f`
    as `<prefix>infer_f` (the ABI of `backends/common/abi.py`).  Raises `TimberError`
    for modules outside what the back-end supports (the message names the function and op).

    `misra=True`: the MISRA C:2012 profile (`backends/c99/misra.py`), with the same results bit
    for bit; adds `model_data.h` and `DEVIATIONS.md` to the files."""
    previous = _misra()
    _MODE.misra = bool(misra)
    try:
        return _CModule(plan_module(module, prefix, "c99", check)).files()
    finally:
        _MODE.misra = previous


def write_c99(module, out_dir, prefix: str = "timber_", force: bool = False, misra: bool = False) -> list[str]:
    """Write `emit_c99(module, prefix, misra)` into `out_dir`; returns the paths written.

    Refuses (TimberError naming the file) to replace an existing file with different content
    unless `force=True`."""
    from backends.common.plan import write_files

    return write_files(emit_c99(module, prefix, misra), out_dir, force)


# ----- kernel dialect (ir/dialects/kernel.py): loops over stored vectors --------------------------

from ir.dialects import kernel as _kernel  # noqa: E402

# IEEE square root without libm: the root of the 53-bit significand digit by digit (two bits of
# the radicand per step, the remainder kept), rounded to nearest (a square root is never exactly
# half-way); float goes through double (correctly rounded: 53 >= 2 * 24 + 2).
_SMALL["ksqrt_f64"] = [
    "static double ksqrt_f64(double x)",
    "{",
    "    uint64_t u, m, rem = 0, root = 0;",
    "    int e, i;",
    "    memcpy(&u, &x, sizeof u);",
    "    if (x != x || x == 0.0 || u == UINT64_C(0x7FF0000000000000)) return x;",
    "    if (u >> 63) return (x - x) / (x - x);",
    "    e = (int)(u >> 52);",
    "    m = u & ((UINT64_C(1) << 52) - 1u);",
    "    if (e == 0) {",
    "        e = 1;",
    "        while (!(m & (UINT64_C(1) << 52))) { m <<= 1; --e; }",
    "    } else {",
    "        m |= UINT64_C(1) << 52;",
    "    }",
    "    e -= 1075;  /* x = m * 2^e, 2^52 <= m < 2^53 */",
    "    if (e & 1) { m <<= 1; --e; }",
    "    /* root = floor(sqrt(m * 2^52)): 53 steps over the radicand's 106 bits, two at a time */",
    "    for (i = 0; i < 53; ++i) {",
    "        const int hi = 53 - 2 * i;",
    "        const uint64_t two = hi >= 1 ? (m >> (hi - 1)) & 3u : hi == 0 ? (m << 1) & 2u : 0u;",
    "        const uint64_t trial = (root << 2) | 1u;",
    "        rem = (rem << 2) | two;",
    "        root <<= 1;",
    "        if (rem >= trial) { rem -= trial; root |= 1u; }",
    "    }",
    "    if (rem > root) root += 1u;",
    "    u = ((uint64_t)(e / 2 - 26 + 1074) << 52) + root;",
    "    memcpy(&x, &u, sizeof x);",
    "    return x;",
    "}",
]
_SMALL["ksqrt_f32"] = ["static float ksqrt_f32(float x) { return (float)ksqrt_f64((double)x); }"]
# |x| by clearing the sign bit (a NaN keeps its payload, as numpy's abs does)
_SMALL["kabs_f64"] = [
    "static double kabs_f64(double x)",
    "{",
    "    uint64_t u;",
    "    memcpy(&u, &x, sizeof u);",
    "    u &= ~(UINT64_C(1) << 63);",
    "    memcpy(&x, &u, sizeof x);",
    "    return x;",
    "}",
]
_SMALL["kabs_f32"] = [
    "static float kabs_f32(float x)",
    "{",
    "    uint32_t u;",
    "    memcpy(&u, &x, sizeof u);",
    "    u &= ~(UINT32_C(1) << 31);",
    "    memcpy(&x, &u, sizeof x);",
    "    return x;",
    "}",
]


def _ksmall(cm, name: str) -> str:
    cm.small.add(name)
    if name.startswith("ksqrt_f32"):
        cm.small.add("ksqrt_f64")
    cm.needs_string_h = True
    return name


def _kernel_sqrt_expr(cm, op, x) -> str:
    return f"{_ksmall(cm, f'ksqrt_f{_out(op).width}')}({x[0]})"


def _kernel_count(cm) -> int:
    n = getattr(cm, "n_kernel", 0)
    cm.n_kernel = n + 1
    return n


def _kernel_scalar(cm, arg, ops, out, x: str) -> tuple[list[str], str]:
    """`ops` (elementwise, on tensor<1>) as C statements on the scalar `x`; (lines, result)."""
    sub = _Routine(cm, top=False, scalar=True)
    sub.env[id(arg)] = _Val(x)
    for k, o in enumerate(L.live_ops(ops, out)):
        sub.lower(o, k)
    return sub.lines, sub.env[id(out)].at(0)


def _kernel_table(cm, rt, op, a, r, term: str, transform, bias=None, activation=None) -> list[str]:
    v = np.asarray(op.attributes["vectors"].values)
    el = op.results[0].type.element
    ct = c_type(el)
    M, N = v.shape
    n = _kernel_count(cm)
    vsym = cm.data.add(f"kernel{n}_v", v, el, f"{op.name} #{n}: stored vectors ({M} x {N}), row-major")
    if term == "dot":
        step = f"acc = acc + {a[0]}[j] * {vsym}[i * {N} + j];"
    else:
        d = f"const {ct} d = {a[0]}[j] - {vsym}[i * {N} + j];"
        step = d + (" acc = acc + d * d;" if term == "sq" else f" acc = acc + {_ksmall(cm, f'kabs_f{el.width}')}(d);")
    body, res = ([], "acc") if transform is None else _kernel_scalar(cm, *transform, "acc")
    if bias is not None or activation is not None:
        body = ["{"] + ["    " + s for s in body] + [f"    {ct} kval = {res};"]
        if bias is not None:
            bsym = cm.data.add(f"kernel{n}_b", bias, el, f"{op.name} #{n}: bias")
            body.append(f"    kval = kval + {bsym}[i];")
        res = "kval"
        if activation is not None:
            more, res = _kernel_scalar(cm, *activation, "kval")
            body += ["    " + s for s in more]
        body += [f"    {r[0]}[i] = {res};", "}"]
        res = None
    return (
        [
            f"for (int i = 0; i < {M}; ++i) {{",
            f"    {ct} acc = {c_float(0.0, el)};",
            f"    for (int j = 0; j < {N}; ++j) {{",
            f"        {step}",
            "    }",
        ]
        + ["    " + s for s in body]
        + ([f"    {r[0]}[i] = {res};"] if res is not None else [])
        + ["}"]
    )


@_array_op
def _kernel_distances(cm, rt, op, a, r) -> list[str]:
    return _kernel_table(cm, rt, op, a, r, "sq" if op.attributes["metric"].value == "sqeuclidean" else "abs", None)


@_array_op
def _kernel_gram(cm, rt, op, a, r) -> list[str]:
    return _kernel_table(
        cm, rt, op, a, r, "sq" if op.squared else "dot", _kernel.gram_transform(op), op.bias, _kernel.activation_transform(op)
    )


@_array_op
def _kernel_topk(cm, rt, op, a, r) -> list[str]:
    """Insertion into a sorted list of k: a value goes before the first slot that is empty or
    holds a value it sorts strictly before (NaN after every number; equal values keep index order)."""
    k = op.attributes["k"].value
    t = op.operands[0].type
    ct, M = c_type(t.element), t.shape[0]
    return [
        "{",
        f"    {ct} bv[{k}];",
        f"    int64_t bi[{k}];",
        f"    for (int s = 0; s < {k}; ++s) {{ bv[s] = {c_float(0.0, t.element)}; bi[s] = {M}; }}",
        f"    for (int i = 0; i < {M}; ++i) {{",
        f"        const {ct} v = {a[0]}[i];",
        "        int pos = 0;",
        f"        while (pos < {k} && !(bi[pos] == {M} || v < bv[pos] || (bv[pos] != bv[pos] && v == v))) ++pos;",
        f"        if (pos == {k}) continue;",
        f"        for (int s = {k - 1}; s > pos; --s) {{ bv[s] = bv[s - 1]; bi[s] = bi[s - 1]; }}",
        "        bv[pos] = v;",
        "        bi[pos] = i;",
        "    }",
        f"    for (int s = 0; s < {k}; ++s) {r[0]}[s] = bi[s];",
        "}",
    ]


@_array_op
def _kernel_couple(cm, rt, op, a, r) -> list[str]:
    """libsvm's multiclass_probability, statement by statement (`kernel.coupling_program`)."""
    prog = _kernel.coupling_program(op.attributes["classes"].value)

    def ref(v):
        return f"c_{v}" if isinstance(v, str) else c_float(v, f64)

    def stmts(statements) -> list[str]:
        out = []
        for dst, o, x, y in statements:
            x = ref(x)
            y = ref(y) if y is not None else None
            if o in ("add", "sub", "mul", "div"):
                e = f"{x} {dict(add='+', sub='-', mul='*', div='/')[o]} {y}"
            elif o == "neg":
                e = f"-{x}"
            elif o == "abs":
                e = f"{_ksmall(cm, 'kabs_f64')}({x})"
            elif o == "set":
                e = x
            else:  # maxgt
                e = f"{x} > {y} ? {x} : {y}"
            out.append(f"c_{dst} = {e};")
        return out

    names = prog.variables()
    lines = ["{"]
    lines += [f"    double {', '.join('c_' + n for n in names[i : i + 8])};" for i in range(0, len(names), 8)]
    lines += [f"    c_{n} = {a[0]}[{i}];" for i, n in enumerate(prog.inputs())]
    lines += ["    " + s for s in stmts(prog.setup)]
    lines += [f"    for (int it = 0; it < {prog.iters}; ++it) {{"]
    lines += ["        " + s for s in stmts(prog.check)]
    lines += [f"        if (c_max_error < {c_float(prog.eps, f64)}) break;"]
    lines += ["        " + s for s in stmts(prog.update)]
    lines += ["    }"]
    lines += [f"    {r[0]}[{t}] = c_p{t};" for t in range(prog.k)]
    return lines + ["}"]


@_array_op
def _kernel_take(cm, rt, op, a, r) -> list[str]:
    M = op.operands[0].type.shape[0]
    n = op.operands[1].type.shape[0]
    return [
        f"for (int s = 0; s < {n}; ++s) {{",
        f"    const int64_t i = {a[1]}[s];",
        f"    {r[0]}[s] = {a[0]}[i < 0 ? 0 : i > {M - 1} ? {M - 1} : i];",
        "}",
    ]


LOWERINGS.update(
    {
        _kernel.TakeOp: _kernel_take,
        _kernel.SqrtOp: Elementwise(_kernel_sqrt_expr),
        _kernel.DistancesOp: _kernel_distances,
        _kernel.GramOp: _kernel_gram,
        _kernel.TopKOp: _kernel_topk,
        _kernel.CoupleOp: _kernel_couple,
    }
)
