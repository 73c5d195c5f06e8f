"""Lower a verified module to a self-contained WebAssembly text module (no imports).

Memory layout (byte offsets into the exported `memory`; every region 8-byte aligned):

    0 .. 16          reserved: offset 0 is never a valid buffer, so it plays the role of NULL
    16 .. D          frames: one static scratch area per IR function for its intermediate
                     tensors, and one per math routine over arrays (the call graph has no cycles
                     and an instance runs one call at a time, so static frames are safe and no
                     stack pointer is needed)
    D .. IN          read-only tables, as data segments: constants, affine weights, the packed
                     node arrays of every ensemble (backends/common/plan.py), `arith.lookup` tables
    IN .. OUT        input buffer: `batch_rows` rows of n_features values of T
    OUT .. END       output buffer: `batch_rows` rows of the widest exported result
    END ..           free: the memory is ceil(END / 64 KiB) pages; a host may grow it and put
                     its own buffers anywhere at or past `heap_base`

Exported immutable i32 globals describe it: `<prefix>input_ptr`, `<prefix>output_ptr`,
`<prefix>batch_rows`, `<prefix>heap_base`, `<prefix>n_features`, `<prefix>n_outputs`,
`<prefix>abi_version`.  Exported functions follow the ABI of `backends/common/abi.py` with pointers as offsets:
`<prefix>infer(in, n_samples, out, ctx) -> i32`, `<prefix>infer_single(in, out, ctx) -> i32`,
and `<prefix>infer_<name>(in, n_samples, out, ctx)` for every other function.  They return 0, -1 for a zero
pointer, -3 when n_samples < 0 or a buffer runs past the end of memory (instead of trapping).

Dispatch is one table, `LOWERINGS` (op class -> lowering); an op without an entry that has an
`arith` expansion (exp, log1p, sigmoid, softmax, ...) is lowered through the ops of its expansion
(`ir/dialects/mathimpl/`): a function over one element (`$math_exp_f64`, values in locals) when
every op of it is elementwise, else a function over arrays in its own frame.  Anything else is
refused naming the op.

Semantics are those of the op docstrings and `ir/interpreter.py`: ordered compares are false on
NaN (NaN-goes-left is `(i32.eqz (f32.ge x t))`, so missing handling is always explicit);
float-to-int conversions are `trunc_sat` (the plain ones trap on NaN); integers are i32/i64
(i1 a byte in memory, an i32 0/1 in locals); shifts take their amount modulo the width, as wasm's
do; constants are hex floats or exact NaN bit patterns.
"""

from __future__ import annotations

import numpy as np

from backends.common import lowering as L
from backends.common.abi import ABI_VERSION, ERR_BOUNDS, ERR_NULL
from backends.common.lowering import Elementwise
from backends.common.plan import EnsembleTables, ModulePlan, elem_size, hex_float, pack_ensemble, plan_module, write_files
from ir.diagnostics import TimberError
from ir.dialects import arith, func, linear, math, mathimpl, tree
from ir.dialects.tree import ZERO_THRESHOLD, Missing, Pred
from ir.opdef import Elementwise as ElementwiseOp
from ir.types import FloatType, IndexType, IntegerType, f32, f64

TARGET = "WAT"
RESERVED = 16
DEFAULT_BATCH_ROWS = 256
UNROLL = 8

_LOAD = {np.uint8: "i32.load8_u", np.uint16: "i32.load16_u", np.uint32: "i32.load", np.float32: "f32.load", np.float64: "f64.load"}
_CMP_T = {"oeq": "eq", "ogt": "gt", "oge": "ge", "olt": "lt", "ole": "le", "une": "ne"}
_CMPI_T = {
    "eq": "eq",
    "ne": "ne",
    "slt": "lt_s",
    "sle": "le_s",
    "sgt": "gt_s",
    "sge": "ge_s",
    "ult": "lt_u",
    "ule": "le_u",
    "ugt": "gt_u",
    "uge": "ge_u",
}
_PRED_W = {Pred.LT: "lt", Pred.LE: "le", Pred.GT: "gt", Pred.GE: "ge", Pred.EQ: "eq", Pred.NE: "ne"}


def wat_float(v, t: FloatType) -> str:
    """`(f32.const ...)` with an exact hex literal, `inf`, or the NaN's exact payload."""
    name = "f32" if t == f32 else "f64"
    v = np.float32(v) if t == f32 else np.float64(v)
    if np.isnan(v):
        if t == f32:
            bits = int(np.array(v).view(np.uint32))
            sign, payload = bits >> 31, bits & 0x7FFFFF
        else:
            bits = int(np.array(v).view(np.uint64))
            sign, payload = bits >> 63, bits & 0xFFFFFFFFFFFFF
        return f"({name}.const {'-' if sign else ''}nan:0x{payload:x})"
    if np.isinf(v):
        return f"({name}.const {'-' if v < 0 else ''}inf)"
    return f"({name}.const {hex_float(float(v))})"


def _vt(t) -> str:
    """Wasm value type holding an IR scalar."""
    if t == f32:
        return "f32"
    if t == f64:
        return "f64"
    if isinstance(t, IndexType) or (isinstance(t, IntegerType) and t.width == 64):
        return "i64"
    return "i32"


def _load_op(t) -> str:
    if isinstance(t, FloatType):
        return f"{_vt(t)}.load"
    if isinstance(t, IndexType) or t.width == 64:
        return "i64.load"
    return {1: "i32.load8_u", 8: "i32.load8_s", 16: "i32.load16_s", 32: "i32.load"}[t.width]


def _store_op(t) -> str:
    if isinstance(t, FloatType):
        return f"{_vt(t)}.store"
    if isinstance(t, IndexType) or t.width == 64:
        return "i64.store"
    return {1: "i32.store8", 8: "i32.store8", 16: "i32.store16", 32: "i32.store"}[t.width]


def _convert(expr: str, src: FloatType, dst: FloatType) -> str:
    """Exact widening or round-to-nearest narrowing between f32 and f64."""
    if src == dst:
        return expr
    return f"(f64.promote_f32 {expr})" if dst == f64 else f"(f32.demote_f64 {expr})"


def _align(n: int, a: int = 8) -> int:
    return (n + a - 1) // a * a


class _Loc:
    """Where a tensor lives: a fixed address, or a pointer held in a parameter/local."""

    def __init__(self, addr: int | None = None, ptr: str | None = None):
        self.addr, self.ptr = addr, ptr

    def at(self, index, size: int) -> tuple[str, int]:
        """(base expression, static offset) of element `index` (an int or a wasm i32 expression)."""
        if isinstance(index, int):
            if self.ptr is not None:
                return f"(local.get {self.ptr})", index * size
            return "(i32.const 0)", self.addr + index * size
        scaled = index if size == 1 else f"(i32.mul {index} (i32.const {size}))"
        base = f"(local.get {self.ptr})" if self.ptr is not None else f"(i32.const {self.addr})"
        return f"(i32.add {base} {scaled})", 0


class _Body:
    """Instruction lines and locals of one wasm function."""

    def __init__(self):
        self.lines: list[str] = []
        self.locals: dict[str, str] = {}
        self.n_labels = 0

    def local(self, name: str, vt: str) -> str:
        key = f"${name}"
        if self.locals.setdefault(key, vt) != vt:
            raise AssertionError(f"local {key} used with two types")  # pragma: no cover
        return key

    def label(self, stem: str) -> str:
        self.n_labels += 1
        return f"${stem}{self.n_labels}"

    def emit(self, *lines: str) -> None:
        self.lines.extend(lines)

    def loop(self, counter: str, start: int, stop: int, body) -> None:
        """`for (counter = start; counter < stop; ++counter) body()` (emits nothing when empty)."""
        if stop <= start:
            return
        lab = self.label("loop")
        self.emit(f"(local.set {counter} (i32.const {start}))", f"(loop {lab}")
        body()
        self.emit(
            f"  (local.set {counter} (i32.add (local.get {counter}) (i32.const 1)))",
            f"  (br_if {lab} (i32.lt_u (local.get {counter}) (i32.const {stop}))))",
        )


class _Data:
    """Read-only tables placed after the frames."""

    def __init__(self, base: int):
        self.base = base
        self.end = base
        self.segments: list[tuple[int, bytes, str]] = []
        self.shared: dict[bytes, int] = {}

    def add(self, data: bytes, comment: str) -> int:
        addr = _align(self.end)
        self.segments.append((addr, data, comment))
        self.end = addr + len(data)
        return addr

    def add_array(self, arr: np.ndarray, comment: str) -> int:
        return self.add(np.ascontiguousarray(arr).astype(arr.dtype.newbyteorder("<")).tobytes(), comment)

    def add_shared(self, arr: np.ndarray, comment: str) -> int:
        """`add_array`, once per distinct content (tables of shared expansions are placed once)."""
        data = np.ascontiguousarray(arr).astype(arr.dtype.newbyteorder("<")).tobytes()
        addr = self.shared.get(data)
        if addr is None:
            addr = self.shared[data] = self.add(data, comment)
        return addr

    def text(self) -> list[str]:
        out = []
        for addr, data, comment in self.segments:
            if not data:
                continue
            body = "\\" + data.hex("\\")  # every byte as \hh, at C speed
            out.append(f"  ;; {comment}")
            out.append(f'  (data (i32.const {addr}) "{body}")')
        return out


class _Val:
    """A tensor whose every element is one wasm expression: a constant, or a local."""

    __slots__ = ("expr",)

    def __init__(self, expr: str):
        self.expr = expr


def wat_literal(v, t) -> str:
    """`(T.const v)` for a scalar of IR type t (floats exact, NaN payloads included)."""
    if isinstance(t, FloatType):
        return wat_float(v, t)
    return f"({_vt(t)}.const {int(bool(v)) if t.width == 1 else int(v)})"


class _Routine:
    """One wasm function being lowered: an IR function (`top`: constants become data, results
    live in its frame), or an expansion's function (splat constants are literals; `scalar`: one
    element, every value a local `$t<k>`)."""

    def __init__(self, wm: "_WatModule", b: _Body, top: bool, scalar: bool = False):
        self.wm, self.b, self.top, self.scalar = wm, b, top, scalar
        self.env: dict[int, _Loc | _Val] = {}
        self.where = ""

    def lower(self, op, k: int) -> None:
        low = LOWERINGS.get(type(op))
        if low is None:
            if not mathimpl.expandable(op):
                raise TimberError(L.cannot_lower(TARGET, op), op.location)
            low = self.wm.expansion_lowering(op)
        if isinstance(low, Elementwise):
            self.elementwise(op, k, low)
        else:
            low(self.wm, self, op, k)

    def result(self, r) -> _Loc:
        loc = self.env[id(r)] = _Loc(addr=self.wm.frames[id(r)])
        return loc

    def elementwise(self, op, k: int, low: Elementwise) -> None:
        wm = self.wm
        args = [(self.env[id(v)], v.type.element) for v in op.operands]
        r = op.results[0]
        el = r.type.element
        if self.scalar:
            var = self.b.local(f"t{k}", _vt(el))
            self.b.emit(f"(local.set {var} {low.expr(wm, op, [wm._ld(a, 0, t) for a, t in args])})")
            self.env[id(r)] = _Val(f"(local.get {var})")
            return
        dst = self.result(r)
        wm._each(self.b, r.type.size, lambda i: wm._st(dst, i, el, low.expr(wm, op, [wm._ld(a, i, t) for a, t in args])))

    def memory(self, v) -> _Loc:
        """Where value `v` is in memory (a splat constant of an expansion is put in the data)."""
        ref = self.env[id(v)]
        if isinstance(ref, _Loc):
            return ref
        op = v.owner
        if not isinstance(op, arith.ConstantOp):  # pragma: no cover - only constants are literals
            raise AssertionError(f"no memory for a value of '{op.name}'")
        return _Loc(addr=self.wm.data.add_shared(_bytes_of(op.value), f"constant {v.type}"))


def _bytes_of(vals) -> np.ndarray:
    vals = np.asarray(vals).reshape(-1)
    return vals.astype(np.uint8) if vals.dtype == np.bool_ else vals  # i1 is a byte in memory


def _array_op(fn):
    """A lowering over whole tensors in memory: `fn(wm, rt, op, a: [_Loc], r: [_Loc])`."""

    def low(wm, rt: _Routine, op, k: int) -> None:
        a = [rt.memory(v) for v in op.operands]
        r = [rt.result(x) for x in op.results]
        fn(wm, rt, op, a, r)

    low.__name__ = fn.__name__
    return low


def _el(op, i: int = 0):
    return op.operands[i].type.element


def _out(op):
    return op.results[0].type.element


def _constant(wm, rt: _Routine, op, k: int) -> None:
    r = op.results[0]
    one = L.splat(op)
    if one is not None and not rt.top:
        rt.env[id(r)] = _Val(wat_literal(one, r.type.element))
        return
    vals = _bytes_of(op.value)
    if rt.top:
        rt.env[id(r)] = _Loc(addr=wm.data.add_array(vals, f"constant of {rt.where}: {r.type}"))
    else:
        rt.env[id(r)] = _Loc(addr=wm.data.add_shared(vals, f"constant {r.type}"))


def _return(wm, rt: _Routine, op, k: int) -> None:
    for i, v in enumerate(op.operands):
        wm._copy(rt.b, rt.env[id(v)], _Loc(ptr=f"$r{i}"), v.type)


def _binary(w: str):
    return Elementwise(lambda wm, op, x: f"({_vt(_out(op))}.{w} {x[0]} {x[1]})")


def _extremum(wm, op, x) -> str:
    # numpy's maximum/minimum: NaN if either is NaN; on a tie (-0.0 vs +0.0 too) the second
    # operand.  wasm's own f32.max orders -0 below +0, so it is not used.
    h = wm._helper_minmax("max" if isinstance(op, arith.MaximumFOp) else "min", _vt(_out(op)))
    return f"(call {h} {x[0]} {x[1]})"


def _cmpf(wm, op, x) -> str:
    h = wm._helper_cmp(op.attributes["predicate"].value, _vt(_el(op)))
    return f"(call {h} {x[0]} {x[1]})"


def _cmpi(wm, op, x) -> str:
    return f"({_vt(_el(op))}.{_CMPI_T[op.attributes['predicate'].value]} {x[0]} {x[1]})"


def _select(wm, op, x) -> str:
    return f"(select {x[1]} {x[2]} {x[0]})"


def _fconvert(wm, op, x) -> str:
    return _convert(x[0], _el(op), _out(op))


def _sitofp(wm, op, x) -> str:
    return f"({_vt(_out(op))}.convert_{_vt(_el(op))}_s {x[0]})"


def _bitcast(wm, op, x) -> str:
    src, dst = _vt(_el(op)), _vt(_out(op))
    return f"({dst}.reinterpret_{src} {x[0]})"


def _fptosi(wm, op, x) -> str:
    # toward zero, saturating, NaN -> 0: exactly the saturating conversion
    return f"({_vt(_out(op))}.trunc_sat_{_vt(_el(op))}_s {x[0]})"


def _lookup(wm, op, x) -> str:
    table = np.asarray(op.attributes["table"].values).reshape(-1)
    el = _out(op)
    addr = wm.data.add_shared(_bytes_of(table), f"arith.lookup table ({len(table)} x {el})")
    i = x[0] if _vt(_el(op)) == "i32" else f"(i32.wrap_i64 {x[0]})"
    size = elem_size(el)
    idx = f"(i32.and {i} (i32.const {len(table) - 1}))"
    if size > 1:
        idx = f"(i32.shl {idx} (i32.const {size.bit_length() - 1}))"
    return f"({_load_op(el)} offset={addr} {idx})"


def _extract(wm, rt: _Routine, op, k: int) -> None:
    a, r = rt.env[id(op.operands[0])], op.results[0]
    el = r.type.element
    dst = rt.result(r)
    rt.b.emit(wm._st(dst, 0, el, wm._ld(a, op.attributes["index"].value, el)))


def _broadcast(wm, rt: _Routine, op, k: int) -> None:
    a, r = rt.env[id(op.operands[0])], op.results[0]
    el = r.type.element
    dst = rt.result(r)
    wm._each(rt.b, r.type.size, lambda i: wm._st(dst, i, el, wm._ld(a, 0, el)))


def _concat(wm, rt: _Routine, op, k: int) -> None:
    r = op.results[0]
    el = r.type.element
    dst = rt.result(r)
    i = 0
    for v in op.operands:
        src = rt.env[id(v)]
        for j in range(v.type.size):
            rt.b.emit(wm._st(dst, i, el, wm._ld(src, j, el)))
            i += 1


@_array_op
def _argmax(wm, rt, op, a, r) -> None:
    wm._argmax(rt.b, op, a[0], r[0])


@_array_op
def _affine(wm, rt, op, a, r) -> None:
    wm._affine(rt.b, op, a[0], r[0])


@_array_op
def _ensemble_op(wm, rt, op, a, r) -> None:
    name = f"$ensemble_{wm.n_ens}"
    wm._ensemble(pack_ensemble(op), name, wm.n_ens)
    wm.n_ens += 1
    rt.b.emit(f"(call {name} {wm._ptr(a[0])} {wm._ptr(r[0])})")


@_array_op
def _call(wm, rt, op, a, r) -> None:
    args = " ".join(wm._ptr(x) for x in a + r)
    rt.b.emit(f"(call {wm.fn_names[op.callee]} {args})")


# The dispatch table: one entry per op class the back-end lowers itself.  Ops with an `arith`
# expansion (math.exp, math.log1p, math.sigmoid, math.softmax, ...) have no entry: they are
# lowered through their expansion (`_WatModule.expansion_lowering`).
LOWERINGS: dict[type, object] = {
    arith.ConstantOp: _constant,
    arith.AddFOp: _binary("add"),
    arith.SubFOp: _binary("sub"),
    arith.MulFOp: _binary("mul"),
    arith.DivFOp: _binary("div"),
    arith.MaximumFOp: Elementwise(_extremum),
    arith.MinimumFOp: Elementwise(_extremum),
    arith.NegFOp: Elementwise(lambda wm, op, x: f"({_vt(_out(op))}.neg {x[0]})"),
    arith.CmpFOp: Elementwise(_cmpf),
    arith.SelectOp: Elementwise(_select),
    arith.ExtFOp: Elementwise(_fconvert),
    arith.TruncFOp: Elementwise(_fconvert),
    arith.SIToFPOp: Elementwise(_sitofp),
    arith.AddIOp: _binary("add"),
    arith.SubIOp: _binary("sub"),
    arith.MulIOp: _binary("mul"),
    arith.AndIOp: _binary("and"),
    arith.OrIOp: _binary("or"),
    arith.XOrIOp: _binary("xor"),
    arith.ShLIOp: _binary("shl"),  # wasm takes shift amounts modulo the width, as the IR does
    arith.ShRSIOp: _binary("shr_s"),
    arith.ShRUIOp: _binary("shr_u"),
    arith.CmpIOp: Elementwise(_cmpi),
    arith.BitcastOp: Elementwise(_bitcast),
    arith.FPToSIOp: Elementwise(_fptosi),
    arith.ExtSIOp: Elementwise(lambda wm, op, x: f"(i64.extend_i32_s {x[0]})"),
    arith.TruncIOp: Elementwise(lambda wm, op, x: f"(i32.wrap_i64 {x[0]})"),
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
    """How the WAT back-end lowers ops of `op_class`: "table" (an entry of `LOWERINGS`),
    "expansion" (through its `arith` expansion), or None (it cannot: such a module is refused
    with "the WAT back-end cannot lower '<op>'")."""
    return L.lowering_of(LOWERINGS, op_class)


def check(op, expand: bool = True) -> str | None:
    """None when the WAT back-end can lower `op`, else the message refusing it."""
    return L.unsupported(LOWERINGS, TARGET, op, expand)


class _WatModule:
    def __init__(self, plan: ModulePlan, batch_rows: int):
        self.plan = plan
        self.P = plan.prefix
        self.batch_rows = batch_rows
        self.fn_names = {f.sym_name: f"$fn_{i}" for i, f in enumerate(plan.funcs)}
        # Frames first: their sizes follow from the value types alone.
        self.frames: dict[int, int] = {}
        self._frame_end = RESERVED
        self._framed: dict[int, list] = {}  # id(expansion ops) -> ops, framed once
        for f in plan.funcs:
            for op in f.body.ops:
                if isinstance(op, (arith.ConstantOp, func.ReturnOp)):
                    continue
                self._frame(op)
                self._expansion_frames(op)
        self.data = _Data(_align(self._frame_end))
        self.funcs: list[str] = []
        self.helpers: dict[str, list[str]] = {}
        self.math_funcs: list[str] = []  # expansions' functions, callees first
        self.math_names: dict[int, tuple] = {}  # id(expansion ops) -> (ops, function, scalar?)
        self.math_texts: dict[tuple, str] = {}  # function text -> its name (identical ones merge)
        self.n_ens = 0

    def _frame(self, op) -> None:
        for r in op.results:
            self._frame_end = _align(self._frame_end)
            self.frames[id(r)] = self._frame_end
            self._frame_end += r.type.size * elem_size(r.type.element)

    def _expansion_frames(self, op) -> None:
        """Frames for the values of the expansion routines over arrays that `op` needs (once per
        expansion: a routine's frame is only live while it runs, and none calls itself)."""
        if type(op) in LOWERINGS or not mathimpl.expandable(op):
            return
        _, ops, out = mathimpl.expansion(op)
        if id(ops) in self._framed:
            return
        self._framed[id(ops)] = ops
        scalar = op.has_trait(ElementwiseOp)  # one element at a time: a scalar routine
        for o in L.live_ops(ops, out):
            if not scalar and not isinstance(o, arith.ConstantOp):
                self._frame(o)
            self._expansion_frames(o)

    # ----- functions --------------------------------------------------------------------
    def lower_func(self, f: func.FuncOp) -> None:
        ft = f.function_type
        b = _Body()
        rt = _Routine(self, b, top=True)
        rt.where = f"@{f.sym_name}"
        rt.env = {id(a): _Loc(ptr=f"$a{i}") for i, a in enumerate(f.body.args)}
        for k, op in enumerate(f.body.ops):
            rt.lower(op, k)
        params = " ".join([f"(param $a{i} i32)" for i in range(len(ft.inputs))] + [f"(param $r{i} i32)" for i in range(len(ft.results))])
        self.funcs.append(self._func_text(f";; @{f.sym_name}: {ft}", f"(func {self.fn_names[f.sym_name]} {params}", b))

    @staticmethod
    def _func_text(comment: str, head: str, b: _Body, tail: str = "") -> str:
        loc = [f"    (local {name} {vt})" for name, vt in b.locals.items()]
        body = ["    " + s for s in b.lines]
        return "\n".join([f"  {comment}", f"  {head}"] + loc + body + ([f"    {tail}"] if tail else [])) + ")"

    def _each(self, b: _Body, n: int, stmt) -> None:
        """stmt(index) for every element: constant indices when short, an $i loop otherwise."""
        if n <= UNROLL:
            for i in range(n):
                b.emit(stmt(i))
            return
        i = b.local("i", "i32")
        b.loop(i, 0, n, lambda: b.emit("  " + stmt(f"(local.get {i})")))

    @staticmethod
    def _ld(loc, i, t) -> str:
        if isinstance(loc, _Val):
            return loc.expr
        base, off = loc.at(i, elem_size(t))
        return f"({_load_op(t)} offset={off} {base})"

    @staticmethod
    def _st(loc: _Loc, i, t, value: str) -> str:
        base, off = loc.at(i, elem_size(t))
        return f"({_store_op(t)} offset={off} {base} {value})"

    def _copy(self, b: _Body, src, dst: _Loc, t) -> None:
        el = t.element
        self._each(b, t.size, lambda i: self._st(dst, i, el, self._ld(src, i, el)))

    @staticmethod
    def _ptr(loc: _Loc) -> str:
        return f"(local.get {loc.ptr})" if loc.ptr is not None else f"(i32.const {loc.addr})"

    # ----- expansions -------------------------------------------------------------------
    def expansion_lowering(self, op):
        """The lowering of an op through its `arith` expansion: a call per element of a scalar
        function when the expansion is elementwise, else one call of a function over arrays."""
        args, ops, out = mathimpl.expansion(op)
        hit = self.math_names.get(id(ops))
        if hit is None or hit[0] is not ops:
            hit = self.math_names[id(ops)] = (ops, *self._math_func(op, args, ops, out))
        _, name, scalar = hit
        if scalar:
            return Elementwise(lambda wm, o, x: f"(call {name} {x[0]})")
        return _array_op(lambda wm, rt, o, a, r: rt.b.emit(f"(call {name} {' '.join(wm._ptr(p) for p in a)} {wm._ptr(r[0])})"))

    def _math_func(self, op, args, ops, out) -> tuple[str, bool]:
        scalar = op.has_trait(ElementwiseOp)  # one element at a time (one operand): a scalar routine
        names = ["$x"] if len(args) == 1 else [f"$x{i}" for i in range(len(args))]
        b = _Body()
        rt = _Routine(self, b, top=False, scalar=scalar)
        ti, to = _vt(args[0].type.element), _vt(out.type.element)
        for a, n in zip(args, names):
            rt.env[id(a)] = _Val(f"(local.get {n})") if scalar else _Loc(ptr=n)
        for k, o in enumerate(L.live_ops(ops, out)):
            rt.lower(o, k)
        res = rt.env[id(out)]
        if scalar:
            head = f"(func @NAME@ (param $x {ti}) (result {to})"
            tail = self._ld(res, 0, out.type.element)
            base = L.helper_name(op)
        else:
            head = "(func @NAME@ " + " ".join(f"(param {n} i32)" for n in names) + " (param $r i32)"
            self._copy(b, res, _Loc(ptr="$r"), out.type)
            tail = ""
            base = L.helper_name(op, "_".join(str(a.type.size) for a in args))
        key = (head, tuple(b.locals.items()), tuple(b.lines), tail)
        name = self.math_texts.get(key)
        if name is None:
            taken = set(self.math_texts.values())
            name, n = f"${base}", 1
            while name in taken:
                n += 1
                name = f"${base}_{n}"
            self.math_texts[key] = name
            what = "element by element" if scalar else "on " + ", ".join(str(a.type) for a in args)
            comment = f";; {op.name} {what}: its arith expansion (ir/dialects/mathimpl/), op by op"
            self.math_funcs.append(self._func_text(comment, head.replace("@NAME@", name), b, tail))
        return name, scalar

    def _argmax(self, b: _Body, op, a: _Loc, r: _Loc) -> None:
        t = op.operands[0].type
        el, n, vt = t.element, t.size, _vt(t.element)
        best, idx, i = b.local(f"am_best_{vt}", vt), b.local("am_idx", "i32"), b.local("i", "i32")
        li = f"(local.get {i})"
        b.emit(f"(local.set {best} {self._ld(a, 0, el)})", f"(local.set {idx} (i32.const 0))")
        b.loop(
            i,
            1,
            n,
            lambda: b.emit(
                f"  (if ({vt}.gt {self._ld(a, li, el)} (local.get {best}))",
                f"    (then (local.set {best} {self._ld(a, li, el)}) (local.set {idx} {li})))",
            ),
        )
        b.emit(self._st(r, 0, op.results[0].type.element, f"(i64.extend_i32_u (local.get {idx}))"))

    def _affine(self, b: _Body, op, a: _Loc, r: _Loc) -> None:
        w = np.asarray(op.attributes["weights"].values)
        bias = np.asarray(op.attributes["bias"].values)
        el = op.results[0].type.element
        vt, in_el, sz = _vt(el), op.operands[0].type.element, elem_size(el)
        k_out, n_in = w.shape
        wa = self.data.add_array(w.reshape(-1), f"linear.affine weights ({k_out} x {n_in}, {el})")
        ba = self.data.add_array(bias.reshape(-1), f"linear.affine bias ({el})")
        k, j = b.local("k", "i32"), b.local("j", "i32")
        acc, xv = b.local(f"aff_acc_{vt}", vt), b.local(f"aff_x_{vt}", vt)
        skip = op.attributes["missing"].value == "skip"
        lk, lj = f"(local.get {k})", f"(local.get {j})"
        w_ij = f"({vt}.load (i32.add (i32.const {wa}) (i32.mul (i32.add (i32.mul {lk} (i32.const {n_in})) {lj}) (i32.const {sz}))))"
        add = f"(local.set {acc} ({vt}.add (local.get {acc}) ({vt}.mul (local.get {xv}) {w_ij})))"

        def inner():
            b.emit(f"    (local.set {xv} {_convert(self._ld(a, lj, in_el), in_el, el)})")
            # "skip": a NaN input is absent and adds nothing.
            b.emit(f"    (if ({vt}.eq (local.get {xv}) (local.get {xv})) (then {add}))" if skip else f"    {add}")

        def outer():
            b.emit(f"  (local.set {acc} ({vt}.load (i32.add (i32.const {ba}) (i32.mul {lk} (i32.const {sz})))))")
            b.loop(j, 0, n_in, inner)  # nested: its lines land inside the outer loop's body
            b.emit("  " + self._st(r, lk, el, f"(local.get {acc})"))

        b.loop(k, 0, k_out, outer)

    # ----- ensembles --------------------------------------------------------------------
    def _ensemble(self, tb: EnsembleTables, name: str, k: int) -> None:
        addr: dict[str, tuple[int, np.dtype]] = {}
        for key, arr in tb.arrays.items():
            if len(arr) == 0 or (key == "out" and tb.uniform_out is not None) or (key == "dim" and tb.uniform_dim is not None):
                continue
            addr[key] = (self.data.add_array(arr, f"ensemble {k}: {key} ({len(arr)} x {arr.dtype})"), arr.dtype)
        b = _Body()
        ctx = dict(tb=tb, addr=addr, b=b)
        out = _Loc(ptr="$out")
        for i, v in enumerate(tb.init.tolist()):
            b.emit(self._st(out, i, tb.acc, wat_float(v, tb.acc)))
        for kind, start, stop in tb.runs:
            if kind == "node":
                self._node_run(start, stop, ctx)
            else:
                self._oblivious_run(start, stop, ctx)
        comment = f";; tree.ensemble #{k}: {tb.n_trees} trees, compare {tb.cmp}, leaves {tb.leaf_type}, sums in {tb.acc} in tree order"
        self.funcs.append(self._func_text(comment, f"(func {name} (param $x i32) (param $out i32)", b))

    @staticmethod
    def _arr(addr, key: str, index: str) -> str:
        """Load element `index` (an i32 expression) of a packed table."""
        a, dt = addr[key]
        size = np.dtype(dt).itemsize
        off = index if size == 1 else f"(i32.mul {index} (i32.const {size}))"
        return f"({_LOAD[np.dtype(dt).type]} (i32.add (i32.const {a}) {off}))"

    def _decide(self, combos, prefix: str, ctx) -> str:
        """An i32 expression: does split/level `$n` with compare value `$v` go "yes"?"""
        tb, addr, b = ctx["tb"], ctx["addr"], ctx["b"]
        ct = _vt(tb.cmp)
        n, v = "(local.get $n)", f"(local.get $v_{ct})"
        op = "(local.get $op)"

        def pred(p: int, w: str) -> str:
            if p == Pred.IN:
                if "words" not in addr or prefix + "cstart" not in addr:
                    return "(i32.const 0)"  # every set is empty
                h = self._helper_cat(tb.cat_negative)
                words = f"(i32.add (i32.const {addr['words'][0]}) (i32.shl {self._arr(addr, prefix + 'cstart', n)} (i32.const 2)))"
                return f"(call {h} {words} {self._arr(addr, prefix + 'clen', n)} {_convert(w, tb.cmp, f64)})"
            return f"({ct}.{_PRED_W[Pred(p)]} {w} {self._arr(addr, prefix + 'thr', n)})"

        def combo(p: int, m: int) -> str:
            dflt = f"(i32.and (i32.shr_u {op} (i32.const 5)) (i32.const 1))"
            if m == Missing.NAN:
                return f"(if (result i32) ({ct}.ne {v} {v}) (then {dflt}) (else {pred(p, v)}))"
            if m == Missing.ZERO:
                vd = _convert(v, tb.cmp, f64)
                z = hex_float(ZERO_THRESHOLD)
                miss = f"(i32.or ({ct}.ne {v} {v}) (i32.and (f64.le {vd} (f64.const {z})) (f64.ge {vd} (f64.const -{z}))))"
                return f"(if (result i32) {miss} (then {dflt}) (else {pred(p, v)}))"
            if m == Missing.NAN_AS_ZERO:
                return pred(p, f"(select ({ct}.const 0) {v} ({ct}.ne {v} {v}))")
            return pred(p, v)

        b.local("op", "i32")
        b.local(f"v_{ct}", ct)
        if len(combos) == 1:
            return combo(*combos[0])
        b.local("c", "i32")
        expr = combo(*combos[-1])
        for p, m in reversed(combos[:-1]):
            expr = f"(if (result i32) (i32.eq (local.get $c) (i32.const {int(p) | int(m) << 3})) (then {combo(p, m)}) (else {expr}))"
        return expr

    def _accumulate(self, ctx, off: str, val: str | None, indent: str) -> list[str]:
        """Statements adding the leaf at pool offset `off` (or the scalar `val`) to out[k..k+dim)."""
        tb, addr, b = ctx["tb"], ctx["addr"], ctx["b"]
        acc, asz, lt = tb.acc, elem_size(tb.acc), tb.leaf_type
        av = _vt(acc)
        k = f"(i32.const {tb.uniform_out})" if tb.uniform_out is not None else self._arr(addr, "out", "(local.get $t)")
        slot = f"(i32.add (local.get $out) (i32.mul {k} (i32.const {asz})))" if tb.uniform_out is None else "(local.get $out)"
        koff = 0 if tb.uniform_out is None else tb.uniform_out * asz
        if val is not None or tb.uniform_dim == 1:
            x = val if val is not None else self._arr(addr, "leaf", off)
            return [f"{indent}({av}.store offset={koff} {slot} ({av}.add ({av}.load offset={koff} {slot}) {_convert(x, lt, acc)}))"]
        j, d = b.local("j", "i32"), b.local("d", "i32")
        dim = f"(i32.const {tb.uniform_dim})" if tb.uniform_dim is not None else self._arr(addr, "dim", "(local.get $t)")
        lab = b.label("leafdim")
        at = f"(i32.add {slot} (i32.mul (local.get {j}) (i32.const {asz})))"
        leaf = self._arr(addr, "leaf", f"(i32.add {off} (local.get {j}))")
        return [
            f"{indent}(local.set {d} {dim})",
            f"{indent}(local.set {j} (i32.const 0))",
            f"{indent}(loop {lab}",
            f"{indent}  ({av}.store offset={koff} {at} ({av}.add ({av}.load offset={koff} {at}) {_convert(leaf, lt, acc)}))",
            f"{indent}  (local.set {j} (i32.add (local.get {j}) (i32.const 1)))",
            f"{indent}  (br_if {lab} (i32.lt_u (local.get {j}) (local.get {d}))))",
        ]

    def _x(self, ctx, feat_expr: str, to: FloatType) -> str:
        """x[feature] converted to `to`."""
        el = ctx["tb"].in_elem
        sz = elem_size(el)
        return _convert(f"({_vt(el)}.load (i32.add (local.get $x) (i32.mul {feat_expr} (i32.const {sz}))))", el, to)

    def _node_run(self, start: int, stop: int, ctx) -> None:
        tb, addr, b = ctx["tb"], ctx["addr"], ctx["b"]
        S, ct = tb.n_splits, _vt(tb.cmp)
        t, nn = b.local("t", "i32"), b.local("n", "i32")

        def body():
            b.emit(f"  (local.set {nn} {self._arr(addr, 'root', '(local.get $t)')})")
            if S:
                walk, leaf = b.label("walk"), b.label("leaf")
                decide = self._decide(tb.node_combos, "", ctx)
                b.emit(
                    f"  (block {leaf} (loop {walk}",
                    f"    (br_if {leaf} (i32.ge_u (local.get $n) (i32.const {S})))",
                    f"    (local.set $v_{ct} {self._x(ctx, self._arr(addr, 'feat', '(local.get $n)'), tb.cmp)})",
                    f"    (local.set $op {self._arr(addr, 'op', '(local.get $n)')})",
                )
                if len(tb.node_combos) > 1:
                    b.emit("    (local.set $c (i32.and (local.get $op) (i32.const 31)))")
                b.emit(
                    f"    (local.set $n (if (result i32) {decide} (then {self._arr(addr, 'yes', '(local.get $n)')}) "
                    f"(else {self._arr(addr, 'no', '(local.get $n)')})))",
                    f"    (br {walk})))",
                    f"  (local.set $n (i32.sub (local.get $n) (i32.const {S})))",
                )
            plain = self._accumulate(ctx, "(local.get $n)", None, "  ")
            if tb.linear == "none":
                b.emit(*plain)
                return
            lt = _vt(tb.leaf_type)
            val, a, nan = b.local(f"lin_val_{lt}", lt), b.local(f"lin_a_{lt}", lt), b.local("lin_nan", "i32")
            j, s1, xv = b.local("lj", "i32"), b.local("ls1", "i32"), b.local(f"lin_x_{lt}", lt)
            lab, done = b.label("terms"), b.label("termsdone")
            # Linear leaf: const + sum(coeff * x) in the leaf type, unless one of its x is NaN.
            lin = [
                f"(local.set {val} {self._arr(addr, 'leaf', '(local.get $n)')})",
                f"(local.set {a} {self._arr(addr, 'lconst', '(local.get $n)')})",
                f"(local.set {nan} (i32.const 0))",
                f"(local.set {j} {self._arr(addr, 'lstart', '(local.get $n)')})",
                f"(local.set {s1} (i32.add (local.get {j}) {self._arr(addr, 'llen', '(local.get $n)')}))",
                f"(block {done} (loop {lab}",
                f"  (br_if {done} (i32.ge_u (local.get {j}) (local.get {s1})))",
                f"  (local.set {xv} {self._x(ctx, self._arr(addr, 'lterm_feat', f'(local.get {j})'), tb.leaf_type)})",
                f"  (local.set {nan} (i32.or (local.get {nan}) ({lt}.ne (local.get {xv}) (local.get {xv}))))",
                f"  (local.set {a} ({lt}.add (local.get {a}) ({lt}.mul {self._arr(addr, 'lterm_coef', f'(local.get {j})')} (local.get {xv}))))",
                f"  (local.set {j} (i32.add (local.get {j}) (i32.const 1)))",
                f"  (br {lab})))",
                f"(if (i32.eqz (local.get {nan})) (then (local.set {val} (local.get {a}))))",
            ] + [s.strip() for s in self._accumulate(ctx, "(local.get $n)", f"(local.get {val})", "")]
            if tb.linear == "all":
                b.emit(*["  " + s for s in lin])
            else:
                b.emit(f"  (if {self._arr(addr, 'linear', '(local.get $t)')}", "    (then")
                b.emit(*["      " + s for s in lin])
                b.emit("    )", "    (else")
                b.emit(*["    " + s for s in plain])
                b.emit("    ))")

        b.loop(t, start, stop, body)

    def _oblivious_run(self, start: int, stop: int, ctx) -> None:
        tb, addr, b = ctx["tb"], ctx["addr"], ctx["b"]
        ct = _vt(tb.cmp)
        t, idx = b.local("t", "i32"), b.local("idx", "i32")
        dim = f"(i32.const {tb.uniform_dim})" if tb.uniform_dim is not None else self._arr(addr, "dim", "(local.get $t)")

        def body():
            b.emit(f"  (local.set {idx} (i32.const 0))")
            if "lop" in addr:
                d, depth, l0 = b.local("d", "i32"), b.local("depth", "i32"), b.local("l0", "i32")
                b.local("n", "i32")
                lab, done = b.label("level"), b.label("levels")
                decide = self._decide(tb.level_combos, "l", ctx)
                b.emit(
                    f"  (local.set {l0} {self._arr(addr, 'root', '(local.get $t)')})",
                    f"  (local.set {depth} {self._arr(addr, 'depth', '(local.get $t)')})",
                    f"  (local.set {d} (i32.const 0))",
                    f"  (block {done} (loop {lab}",
                    f"    (br_if {done} (i32.ge_u (local.get {d}) (local.get {depth})))",
                    f"    (local.set $n (i32.add (local.get {l0}) (local.get {d})))",
                    f"    (local.set $v_{ct} {self._x(ctx, self._arr(addr, 'lfeat', '(local.get $n)'), tb.cmp)})",
                    f"    (local.set $op {self._arr(addr, 'lop', '(local.get $n)')})",
                )
                if len(tb.level_combos) > 1:
                    b.emit("    (local.set $c (i32.and (local.get $op) (i32.const 31)))")
                b.emit(
                    f"    (local.set {idx} (i32.or (local.get {idx}) (i32.shl {decide} (local.get {d}))))",
                    f"    (local.set {d} (i32.add (local.get {d}) (i32.const 1)))",
                    f"    (br {lab})))",
                )
            off = b.local("off", "i32")
            b.emit(f"  (local.set {off} (i32.add {self._arr(addr, 'lbase', '(local.get $t)')} (i32.mul (local.get {idx}) {dim})))")
            b.emit(*self._accumulate(ctx, f"(local.get {off})", None, "  "))

        b.loop(t, start, stop, body)

    # ----- helpers ----------------------------------------------------------------------
    def _helper_minmax(self, kind: str, vt: str) -> str:
        name = f"${kind}_{vt}"
        if name not in self.helpers:
            rel = "gt" if kind == "max" else "lt"
            self.helpers[name] = [
                f"  (func {name} (param $a {vt}) (param $b {vt}) (result {vt})",
                "    (if (" + vt + ".ne (local.get $a) (local.get $a)) (then (return (local.get $a))))",
                "    (if (" + vt + ".ne (local.get $b) (local.get $b)) (then (return (local.get $b))))",
                f"    (select (local.get $a) (local.get $b) ({vt}.{rel} (local.get $a) (local.get $b))))",
            ]
        return name

    def _helper_cmp(self, pred: str, vt: str) -> str:
        name = f"$cmp_{pred}_{vt}"
        if name in self.helpers:
            return name
        a, b = "(local.get $a)", "(local.get $b)"

        def rel(r: str) -> str:
            return f"({vt}.{r} {a} {b})"

        one = f"(i32.or {rel('lt')} {rel('gt')})"
        ordered = f"(i32.and ({vt}.eq {a} {a}) ({vt}.eq {b} {b}))"
        expr = {
            "one": one,
            "ord": ordered,
            "ueq": f"(i32.eqz {one})",
            "ugt": f"(i32.eqz {rel('le')})",
            "uge": f"(i32.eqz {rel('lt')})",
            "ult": f"(i32.eqz {rel('ge')})",
            "ule": f"(i32.eqz {rel('gt')})",
            "uno": f"(i32.eqz {ordered})",
        }.get(pred) or rel(_CMP_T[pred])
        self.helpers[name] = [f"  (func {name} (param $a {vt}) (param $b {vt}) (result i32)", f"    {expr})"]
        return name

    def _helper_cat(self, mode: str) -> str:
        name = f"$cat_{mode}"
        if name not in self.helpers:
            # A category is trunc(v); invalid (not a member) if NaN, +-inf, negative or >= 2^31.
            # "value": negative means v < 0; "code": trunc(v) < 0, i.e. v <= -1.
            low = "(f64.ge (local.get $v) (f64.const 0))" if mode == "value" else "(f64.gt (local.get $v) (f64.const -1))"
            self.helpers[name] = [
                f"  (func {name} (param $w i32) (param $n i32) (param $v f64) (result i32)",
                "    (local $c i32)",
                f"    (if (i32.eqz (i32.and {low} (f64.lt (local.get $v) (f64.const 0x1p+31)))) (then (return (i32.const 0))))",
                "    (local.set $c (i32.trunc_sat_f64_u (local.get $v)))",
                "    (if (i32.ge_u (i32.shr_u (local.get $c) (i32.const 5)) (local.get $n)) (then (return (i32.const 0))))",
                "    (i32.and (i32.shr_u (i32.load (i32.add (local.get $w) (i32.shl (i32.shr_u (local.get $c) (i32.const 5)) (i32.const 2))))",
                "                        (i32.and (local.get $c) (i32.const 31))) (i32.const 1)))",
            ]
        return name

    def _wrappers(self) -> list[str]:
        out = []
        for ex in self.plan.exports:
            fn = self.fn_names[ex.func.sym_name]
            in_row, out_row = ex.n_in * elem_size(ex.in_elem), ex.n_out * elem_size(ex.out_elem)

            def past_end(ptr: str, count: str, row: int) -> str:
                # ptr + count*row > memory bytes, in i64 so that nothing wraps.
                end = f"(i64.add (i64.extend_i32_u (local.get {ptr})) (i64.mul (i64.extend_i32_u {count}) (i64.const {row})))"
                return f"(i64.gt_u {end} (i64.shl (i64.extend_i32_u (memory.size)) (i64.const 16)))"

            if ex.single_symbol is not None:
                out += [
                    f'  (func (export "{ex.single_symbol}") (param $in i32) (param $out i32) (param $ctx i32) (result i32)',
                    f"    (if (i32.or (i32.eqz (local.get $in)) (i32.eqz (local.get $out))) (then (return (i32.const {ERR_NULL}))))",
                    f"    (if (i32.or {past_end('$in', '(i32.const 1)', in_row)} {past_end('$out', '(i32.const 1)', out_row)}) (then (return (i32.const {ERR_BOUNDS}))))",
                    f"    (call {fn} (local.get $in) (local.get $out))",
                    "    (i32.const 0))",
                ]
            out += [
                f'  (func (export "{ex.batch_symbol}") (param $in i32) (param $n i32) (param $out i32) (param $ctx i32) (result i32)',
                "    (local $i i32)",
                f"    (if (i32.lt_s (local.get $n) (i32.const 0)) (then (return (i32.const {ERR_BOUNDS}))))",
                "    (if (i32.eqz (local.get $n)) (then (return (i32.const 0))))",
                f"    (if (i32.or (i32.eqz (local.get $in)) (i32.eqz (local.get $out))) (then (return (i32.const {ERR_NULL}))))",
                f"    (if (i32.or {past_end('$in', '(local.get $n)', in_row)} {past_end('$out', '(local.get $n)', out_row)}) (then (return (i32.const {ERR_BOUNDS}))))",
                "    (loop $rows",
                f"      (call {fn} (local.get $in) (local.get $out))",
                f"      (local.set $in (i32.add (local.get $in) (i32.const {in_row})))",
                f"      (local.set $out (i32.add (local.get $out) (i32.const {out_row})))",
                "      (local.set $i (i32.add (local.get $i) (i32.const 1)))",
                "      (br_if $rows (i32.lt_u (local.get $i) (local.get $n))))",
                "    (i32.const 0))",
            ]
        return out

    def text(self) -> tuple[str, dict]:
        for f in self.plan.funcs:
            self.lower_func(f)
        exports = self.plan.exports
        in_row = max(ex.n_in * elem_size(ex.in_elem) for ex in exports)
        out_row = max(ex.n_out * elem_size(ex.out_elem) for ex in exports)
        in_ptr = _align(self.data.end)
        out_ptr = _align(in_ptr + self.batch_rows * in_row)
        end = _align(out_ptr + self.batch_rows * out_row)
        pages = max(1, -(-end // 65536))
        pr, P = self.plan.predict, self.P
        layout = {
            "frames": RESERVED,
            "data": self.data.base,
            "input_ptr": in_ptr,
            "output_ptr": out_ptr,
            "heap_base": end,
            "batch_rows": self.batch_rows,
            "pages": pages,
        }
        head = [
            f";; Generated by Timber from {self.plan.source}.  Self-contained: no imports.",
            ";; Memory layout (bytes):",
            f";;   0 .. {RESERVED}: reserved (offset 0 acts as NULL)",
            f";;   {RESERVED} .. {self.data.base}: static frames for intermediate tensors",
            f";;   {self.data.base} .. {self.data.end}: read-only tables",
            f";;   {in_ptr} .. {out_ptr}: input buffer, {self.batch_rows} rows x {pr.n_in} x {pr.in_elem}",
            f";;   {out_ptr} .. {end}: output buffer, {self.batch_rows} rows x {out_row} bytes",
            f";;   {end} ..: free ({pages} pages of 64 KiB; the host may grow memory and use it)",
            "(module",
            f'  (memory (export "memory") {pages})',
        ]
        glob = {
            "abi_version": ABI_VERSION,
            "n_features": pr.n_in,
            "n_outputs": pr.n_out,
            "input_ptr": in_ptr,
            "output_ptr": out_ptr,
            "batch_rows": self.batch_rows,
            "heap_base": end,
        }
        for ex in exports[1:]:
            glob[f"{ex.func.sym_name}_n_outputs"] = ex.n_out
        head += [f'  (global (export "{P}{k}") i32 (i32.const {v}))' for k, v in glob.items()]
        body = self.data.text()
        for lines in self.helpers.values():
            body += lines
        body += self.math_funcs
        body += self.funcs
        body += self._wrappers()
        return "\n".join(head + body) + "\n)\n", layout


def emit_wat(module, prefix: str = "timber_", batch_rows: int = DEFAULT_BATCH_ROWS) -> str:
    """A WebAssembly text module for a verified module (see the module docstring for the ABI and layout)."""
    return _WatModule(plan_module(module, prefix, "wat", check), batch_rows).text()[0]


def emit_wat_bundle(module, prefix: str = "timber_", batch_rows: int = DEFAULT_BATCH_ROWS) -> dict[str, str]:
    """{"model.wat": the module, "model.js": a loader for its assembled `model.wasm`}."""
    from .loader import loader_js

    plan = plan_module(module, prefix, "wat", check)
    wat, layout = _WatModule(plan, batch_rows).text()
    return {"model.wat": wat, "model.js": loader_js(plan, layout)}


def write_wat(
    module, out_dir, prefix: str = "timber_", force: bool = False, wasm: bool = False, batch_rows: int = DEFAULT_BATCH_ROWS
) -> list[str]:
    """Write model.wat and model.js (and model.wasm with `wasm=True`, assembled by the `wasmtime`
    package) into `out_dir`; refuses to replace different existing files unless `force=True`."""
    from ir.diagnostics import TimberError

    files: dict[str, str | bytes] = dict(emit_wat_bundle(module, prefix, batch_rows))
    if wasm:
        try:
            import wasmtime
        except ImportError as e:
            raise TimberError(
                "writing model.wasm needs the 'wasmtime' package (pip install wasmtime), or assemble model.wat with wat2wasm"
            ) from e
        files["model.wasm"] = bytes(wasmtime.wat2wasm(files["model.wat"]))
    return write_files(files, out_dir, force)


# ----- kernel dialect (ir/dialects/kernel.py): loops over stored vectors --------------------------

from ir.dialects import kernel as _kernel  # noqa: E402


def _kernel_scalar(wm, b: _Body, arg, ops, out, x: str, base: int):
    """`ops` (elementwise, on tensor<1>) lowered into body `b` on the scalar expression `x`, their
    locals `$t<base + k>`; the result's expression."""
    sub = _Routine(wm, b, top=False, scalar=True)
    sub.env[id(arg)] = _Val(x)
    for k, o in enumerate(L.live_ops(ops, out)):
        sub.lower(o, base + k)
    return wm._ld(sub.env[id(out)], 0, out.type.element)


def _kernel_table(wm, rt, op, a, r, term: str, transform, bias=None, activation=None) -> None:
    """out[i] = formula(Σ_j term(x_j, v_ij)) for every stored vector i: two nested loops."""
    b = rt.b
    v = np.ascontiguousarray(np.asarray(op.attributes["vectors"].values))
    el = op.results[0].type.element
    vt, sz = _vt(el), elem_size(el)
    M, N = v.shape
    va = wm.data.add_array(v.reshape(-1), f"{op.name}: stored vectors ({M} x {N}, {el})")
    ba = wm.data.add_array(np.asarray(bias, el.numpy), f"{op.name}: bias ({el})") if bias is not None else None
    i, j = b.local("ki", "i32"), b.local("kj", "i32")
    acc, d = b.local(f"kacc_{vt}", vt), b.local(f"kd_{vt}", vt)
    li, lj = f"(local.get {i})", f"(local.get {j})"
    vij = f"({vt}.load (i32.add (i32.const {va}) (i32.mul (i32.add (i32.mul {li} (i32.const {N})) {lj}) (i32.const {sz}))))"
    xj = wm._ld(a[0], lj, el)

    def inner():
        if term == "dot":
            b.emit(f"    (local.set {acc} ({vt}.add (local.get {acc}) ({vt}.mul {xj} {vij})))")
            return
        b.emit(f"    (local.set {d} ({vt}.sub {xj} {vij}))")
        t = f"({vt}.mul (local.get {d}) (local.get {d}))" if term == "sq" else f"({vt}.abs (local.get {d}))"
        b.emit(f"    (local.set {acc} ({vt}.add (local.get {acc}) {t}))")

    def outer():
        b.emit(f"  (local.set {acc} {wat_float(0.0, el)})")
        b.loop(j, 0, N, inner)
        res = f"(local.get {acc})"
        if transform is not None:
            res = _kernel_scalar(wm, b, *transform, res, 9000 if el == f64 else 9500)
        if ba is not None:
            res = f"({vt}.add {res} ({vt}.load (i32.add (i32.const {ba}) (i32.mul {li} (i32.const {sz})))))"
        if activation is not None:
            kv = b.local(f"kval_{vt}", vt)
            b.emit(f"  (local.set {kv} {res})")
            res = _kernel_scalar(wm, b, *activation, f"(local.get {kv})", 9200 if el == f64 else 9700)
        b.emit("  " + wm._st(r[0], li, el, res))

    b.loop(i, 0, M, outer)


@_array_op
def _kernel_distances(wm, rt, op, a, r) -> None:
    _kernel_table(wm, rt, op, a, r, "sq" if op.attributes["metric"].value == "sqeuclidean" else "abs", None)


@_array_op
def _kernel_gram(wm, rt, op, a, r) -> None:
    _kernel_table(wm, rt, op, a, r, "sq" if op.squared else "dot", _kernel.gram_transform(op), op.bias, _kernel.activation_transform(op))


@_array_op
def _kernel_topk(wm, rt, op, a, r) -> None:
    """One pass keeping k (value, index) pairs sorted in locals: a value enters before slot s when
    the slot is empty (index M) or the value sorts strictly before it (NaN after every number;
    equal values stay in index order); slots shift down by selects, highest first."""
    b = rt.b
    k = op.attributes["k"].value
    t = op.operands[0].type
    el, M = t.element, t.shape[0]
    vt = _vt(el)
    i, v = b.local("ki", "i32"), b.local(f"kv_{vt}", vt)
    bv = [b.local(f"kbv{s}_{vt}", vt) for s in range(k)]
    bi = [b.local(f"kbi{s}", "i32") for s in range(k)]
    ins = [b.local(f"kins{s}", "i32") for s in range(k)]
    for s in range(k):
        b.emit(f"(local.set {bv[s]} {wat_float(0.0, el)})", f"(local.set {bi[s]} (i32.const {M}))")
    gv = "(local.get {})".format

    def body():
        b.emit(f"  (local.set {v} {wm._ld(a[0], gv(i), el)})")
        for s in range(k):
            empty = f"(i32.eq {gv(bi[s])} (i32.const {M}))"
            lt = f"({vt}.lt {gv(v)} {gv(bv[s])})"
            nanlt = f"(i32.and ({vt}.ne {gv(bv[s])} {gv(bv[s])}) ({vt}.eq {gv(v)} {gv(v)}))"
            b.emit(f"  (local.set {ins[s]} (i32.or {empty} (i32.or {lt} {nanlt})))")
        for s in range(k - 1, -1, -1):
            cv = gv(v) if s == 0 else f"(select {gv(bv[s - 1])} {gv(v)} {gv(ins[s - 1])})"
            ci = gv(i) if s == 0 else f"(select {gv(bi[s - 1])} {gv(i)} {gv(ins[s - 1])})"
            b.emit(f"  (local.set {bv[s]} (select {cv} {gv(bv[s])} {gv(ins[s])}))")
            b.emit(f"  (local.set {bi[s]} (select {ci} {gv(bi[s])} {gv(ins[s])}))")

    b.loop(i, 0, M, body)
    for s in range(k):
        b.emit(wm._st(r[0], s, op.results[0].type.element, f"(i64.extend_i32_u {gv(bi[s])})"))


@_array_op
def _kernel_couple(wm, rt, op, a, r) -> None:
    """libsvm's multiclass_probability, statement by statement (`kernel.coupling_program`), every
    variable a local; the rounds a loop left when the error is below eps or after max(100, k)."""
    b = rt.b
    prog = _kernel.coupling_program(op.attributes["classes"].value)
    loc = {n: b.local(f"c_{n}", "f64") for n in prog.variables()}

    def ref(x):
        return f"(local.get {loc[x]})" if isinstance(x, str) else wat_float(x, f64)

    def stmts(statements, indent: str) -> None:
        for dst, o, x, y in statements:
            if o in ("add", "sub", "mul", "div"):
                e = f"(f64.{o} {ref(x)} {ref(y)})"
            elif o in ("neg", "abs"):
                e = f"(f64.{o} {ref(x)})"
            elif o == "set":
                e = ref(x)
            else:  # maxgt
                e = f"(select {ref(x)} {ref(y)} (f64.gt {ref(x)} {ref(y)}))"
            b.emit(f"{indent}(local.set {loc[dst]} {e})")

    for idx, n in enumerate(prog.inputs()):
        b.emit(f"(local.set {loc[n]} {wm._ld(a[0], idx, f64)})")
    stmts(prog.setup, "")
    it = b.local("c_iter", "i32")
    done, again = b.label("cdone"), b.label("cloop")
    b.emit(f"(local.set {it} (i32.const 0))", f"(block {done}", f"  (loop {again}")
    b.emit(f"    (br_if {done} (i32.ge_u (local.get {it}) (i32.const {prog.iters})))")
    stmts(prog.check, "    ")
    b.emit(f"    (br_if {done} (f64.lt (local.get {loc['max_error']}) {wat_float(prog.eps, f64)}))")
    stmts(prog.update, "    ")
    b.emit(f"    (local.set {it} (i32.add (local.get {it}) (i32.const 1)))", f"    (br {again})))")
    for t in range(prog.k):
        b.emit(wm._st(r[0], t, f64, f"(local.get {loc[f'p{t}']})"))


@_array_op
def _kernel_take(wm, rt, op, a, r) -> None:
    b = rt.b
    M = op.operands[0].type.shape[0]
    el = op.results[0].type.element
    i = b.local("kti", "i64")
    for s in range(op.operands[1].type.shape[0]):
        b.emit(f"(local.set {i} {wm._ld(a[1], s, op.operands[1].type.element)})")
        clamped = f"(select (i64.const 0) (select (i64.const {M - 1}) (local.get {i}) (i64.gt_s (local.get {i}) (i64.const {M - 1}))) (i64.lt_s (local.get {i}) (i64.const 0)))"
        b.emit(wm._st(r[0], s, el, wm._ld(a[0], f"(i32.wrap_i64 {clamped})", el)))


LOWERINGS.update(
    {
        _kernel.TakeOp: _kernel_take,
        _kernel.SqrtOp: Elementwise(lambda wm, op, x: f"({_vt(_out(op))}.sqrt {x[0]})"),
        _kernel.DistancesOp: _kernel_distances,
        _kernel.GramOp: _kernel_gram,
        _kernel.TopKOp: _kernel_topk,
        _kernel.CoupleOp: _kernel_couple,
    }
)
