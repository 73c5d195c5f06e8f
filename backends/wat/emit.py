"""Lower a verified module to a self-contained WebAssembly text module (no imports).

Memory layout (byte offsets into the exported `memory`; every region 8-byte aligned):

    0 .. 16          reserved: offset 0 is never a valid buffer, so it plays the role of NULL
    16 .. D          frames: one static scratch area per IR function for its intermediate
                     tensors (the call graph has no cycles and an instance runs one call at a
                     time, so static frames are safe and no stack pointer is needed)
    D .. IN          read-only tables, as data segments: constants, affine weights, the packed
                     node arrays of every ensemble (backends/c99/plan.py), exp's tables
    IN .. OUT        input buffer: `batch_rows` rows of n_features values of T
    OUT .. END       output buffer: `batch_rows` rows of the widest exported result
    END ..           free: the memory is ceil(END / 64 KiB) pages; a host may grow it and put
                     its own buffers anywhere at or past `heap_base`

Exported immutable i32 globals describe it: `<prefix>input_ptr`, `<prefix>output_ptr`,
`<prefix>batch_rows`, `<prefix>heap_base`, `<prefix>n_features`, `<prefix>n_outputs`,
`<prefix>abi_version`.  Exported functions follow DESIGN.md section 4 with pointers as offsets:
`<prefix>infer(in, n_samples, out, ctx) -> i32`, `<prefix>infer_single(in, out, ctx) -> i32`,
and `<prefix>infer_<name>(in, n_samples, out, ctx)` for every other function.  They return 0, -1 for a zero
pointer, -3 when n_samples < 0 or a buffer runs past the end of memory (instead of trapping).

Semantics are those of the op docstrings and `ir/interpreter.py`: ordered compares are false on
NaN (NaN-goes-left is `(i32.eqz (f32.ge x t))`, so missing handling is always explicit);
float-to-int conversions are `trunc_sat` (the plain ones trap on NaN); `exp` is Timber's own;
constants are hex floats or exact NaN bit patterns.
"""

from __future__ import annotations

import numpy as np

from backends.c99.plan import ABI_VERSION, EnsembleTables, ModulePlan, elem_size, hex_float, pack_ensemble, plan_module, write_files
from ir import mathfn
from ir.dialects import arith, func, linear, math, tree
from ir.dialects.tree import ZERO_THRESHOLD, Missing, Pred
from ir.types import FloatType, IndexType, IntegerType, f32, f64

RESERVED = 16
DEFAULT_BATCH_ROWS = 256
UNROLL = 8

_LOAD = {np.uint8: "i32.load8_u", np.uint16: "i32.load16_u", np.uint32: "i32.load", np.float32: "f32.load", np.float64: "f64.load"}
_CMP_T = {"oeq": "eq", "ogt": "gt", "oge": "ge", "olt": "lt", "ole": "le", "une": "ne"}
_PRED_W = {Pred.LT: "lt", Pred.LE: "le", Pred.GT: "gt", Pred.GE: "ge", Pred.EQ: "eq", Pred.NE: "ne"}
_BINARY = {arith.AddFOp: "add", arith.SubFOp: "sub", arith.MulFOp: "mul", arith.DivFOp: "div"}


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

    def add(self, data: bytes, comment: str) -> int:
        addr = _align(self.end)
        self.segments.append((addr, data, comment))
        self.end = addr + len(data)
        return addr

    def add_array(self, arr: np.ndarray, comment: str) -> int:
        return self.add(np.ascontiguousarray(arr).astype(arr.dtype.newbyteorder("<")).tobytes(), comment)

    def text(self) -> list[str]:
        out = []
        for addr, data, comment in self.segments:
            if not data:
                continue
            body = "\\" + data.hex("\\")  # every byte as \hh, at C speed
            out.append(f"  ;; {comment}")
            out.append(f'  (data (i32.const {addr}) "{body}")')
        return out


class _WatModule:
    def __init__(self, plan: ModulePlan, batch_rows: int):
        self.plan = plan
        self.P = plan.prefix
        self.batch_rows = batch_rows
        self.fn_names = {f.sym_name: f"$fn_{i}" for i, f in enumerate(plan.funcs)}
        # Frames first: their sizes follow from the value types alone.
        self.frames: dict[int, int] = {}
        addr = RESERVED
        for f in plan.funcs:
            for op in f.body.ops:
                if isinstance(op, (arith.ConstantOp, func.ReturnOp)):
                    continue
                for r in op.results:
                    addr = _align(addr)
                    self.frames[id(r)] = addr
                    addr += r.type.size * elem_size(r.type.element)
        self.data = _Data(_align(addr))
        self.funcs: list[str] = []
        self.helpers: dict[str, list[str]] = {}
        self.n_ens = 0

    # ----- functions --------------------------------------------------------------------
    def lower_func(self, f: func.FuncOp) -> None:
        ft = f.function_type
        b = _Body()
        env: dict[int, _Loc] = {id(a): _Loc(ptr=f"$a{i}") for i, a in enumerate(f.body.args)}
        for op in f.body.ops:
            if isinstance(op, func.ReturnOp):
                for i, v in enumerate(op.operands):
                    self._copy(b, env[id(v)], _Loc(ptr=f"$r{i}"), v.type)
                continue
            if isinstance(op, arith.ConstantOp):
                t = op.results[0].type
                vals = np.asarray(op.value).reshape(-1)
                if vals.dtype == np.bool_:
                    vals = vals.astype(np.uint8)  # i1 is a byte in memory
                env[id(op.results[0])] = _Loc(addr=self.data.add_array(vals, f"constant of @{f.sym_name}: {t}"))
                continue
            for r in op.results:
                env[id(r)] = _Loc(addr=self.frames[id(r)])
            self.lower_op(b, op, [env[id(v)] for v in op.operands], [env[id(r)] for r in op.results])
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
    def _ld(loc: _Loc, i, t) -> str:
        base, off = loc.at(i, elem_size(t))
        return f"({_load_op(t)} offset={off} {base})"

    @staticmethod
    def _st(loc: _Loc, i, t, value: str) -> str:
        base, off = loc.at(i, elem_size(t))
        return f"({_store_op(t)} offset={off} {base} {value})"

    def _copy(self, b: _Body, src: _Loc, dst: _Loc, t) -> None:
        el = t.element
        self._each(b, t.size, lambda i: self._st(dst, i, el, self._ld(src, i, el)))

    def lower_op(self, b: _Body, op, a: list[_Loc], r: list[_Loc]) -> None:
        out = op.results[0].type
        n, el = out.size, out.element
        vt = _vt(el)
        if type(op) in _BINARY:
            w = _BINARY[type(op)]
            return self._each(b, n, lambda i: self._st(r[0], i, el, f"({vt}.{w} {self._ld(a[0], i, el)} {self._ld(a[1], i, el)})"))
        if isinstance(op, (arith.MaximumFOp, arith.MinimumFOp)):
            # numpy's maximum/minimum: NaN if either is NaN; on a tie (-0.0 vs +0.0 too) the second
            # operand.  wasm's own f32.max orders -0 below +0, so it is not used.
            h = self._helper_minmax("max" if isinstance(op, arith.MaximumFOp) else "min", vt)
            return self._each(b, n, lambda i: self._st(r[0], i, el, f"(call {h} {self._ld(a[0], i, el)} {self._ld(a[1], i, el)})"))
        if isinstance(op, arith.NegFOp):
            return self._each(b, n, lambda i: self._st(r[0], i, el, f"({vt}.neg {self._ld(a[0], i, el)})"))
        if isinstance(op, arith.CmpFOp):
            t = op.operands[0].type.element
            h = self._helper_cmp(op.attributes["predicate"].value, _vt(t))
            return self._each(b, n, lambda i: self._st(r[0], i, el, f"(call {h} {self._ld(a[0], i, t)} {self._ld(a[1], i, t)})"))
        if isinstance(op, arith.SelectOp):
            ct = op.operands[0].type.element
            return self._each(
                b, n, lambda i: self._st(r[0], i, el, f"(select {self._ld(a[1], i, el)} {self._ld(a[2], i, el)} {self._ld(a[0], i, ct)})")
            )
        if isinstance(op, (arith.ExtFOp, arith.TruncFOp)):
            src = op.operands[0].type.element
            return self._each(b, n, lambda i: self._st(r[0], i, el, _convert(self._ld(a[0], i, src), src, el)))
        if isinstance(op, arith.SIToFPOp):
            src = op.operands[0].type.element
            conv = f"{vt}.convert_{_vt(src)}_s"
            return self._each(b, n, lambda i: self._st(r[0], i, el, f"({conv} {self._ld(a[0], i, src)})"))
        if isinstance(op, math.ExpOp):
            return self._each(b, n, lambda i: self._st(r[0], i, el, self._exp(self._ld(a[0], i, el), el, op)))
        if isinstance(op, math.Log1pOp):
            return self._each(b, n, lambda i: self._st(r[0], i, el, self._log1p(self._ld(a[0], i, el), el)))
        if isinstance(op, math.SigmoidOp):
            one = wat_float(1.0, el)
            return self._each(
                b,
                n,
                lambda i: self._st(
                    r[0], i, el, f"({vt}.div {one} ({vt}.add {one} {self._exp(f'({vt}.neg {self._ld(a[0], i, el)})', el)}))"
                ),
            )
        if isinstance(op, math.SoftmaxOp):
            return self._softmax(b, op, a[0], r[0])
        if isinstance(op, math.ArgmaxOp):
            return self._argmax(b, op, a[0], r[0])
        if isinstance(op, linear.AffineOp):
            return self._affine(b, op, a[0], r[0])
        if isinstance(op, tree.EnsembleOp):
            name = f"$ensemble_{self.n_ens}"
            self._ensemble(pack_ensemble(op), name, self.n_ens)
            self.n_ens += 1
            b.emit(f"(call {name} {self._ptr(a[0])} {self._ptr(r[0])})")
            return None
        if isinstance(op, func.CallOp):
            args = " ".join(self._ptr(x) for x in a + r)
            b.emit(f"(call {self.fn_names[op.callee]} {args})")
            return None
        raise AssertionError(f"plan_module let through '{op.name}'")  # pragma: no cover

    @staticmethod
    def _ptr(loc: _Loc) -> str:
        return f"(local.get {loc.ptr})" if loc.ptr is not None else f"(i32.const {loc.addr})"

    def _exp(self, x: str, el: FloatType, op=None) -> str:
        impl = op.attributes.get("impl") if op is not None else None
        name = "$exp_f64"
        if impl is not None and impl.value == "fmath":
            self._helper_fmath_exp()
            name = "$fmath_exp_f64"
        else:
            self._helper_exp()
        if el == f32:
            return f"(f32.demote_f64 (call {name} (f64.promote_f32 {x})))"
        return f"(call {name} {x})"

    def _helper_fmath_exp(self) -> None:
        if "$fmath_exp_f64" in self.helpers:
            return
        m = mathfn
        tbl = self.data.add_array(m.FMATH_T.astype(np.int64), "fmath exp: mantissa bits of 2^(j/2048)")

        def c(v):
            return f"(f64.const {hex_float(v)})"

        def g(name):
            return f"(local.get ${name})"

        y = f"(f64.add (f64.sub (f64.mul (f64.mul (f64.sub {c(m.FMATH_C3)} {g('t')}) (f64.mul {g('t')} {g('t')})) {c(m.FMATH_C2)}) {g('t')}) {c(m.FMATH_C1)})"
        j = f"(i32.wrap_i64 (i64.and {g('di')} (i64.const {(1 << m.FMATH_BITS) - 1})))"
        u = f"(i64.shl (i64.shr_s (i64.add {g('di')} (i64.const {m.FMATH_ADJ})) (i64.const {m.FMATH_BITS})) (i64.const 52))"
        self.helpers["$fmath_exp_f64"] = [
            "  ;; fmath's exp (ir/mathfn.py), which CatBoost calls: 2^(j/2048) mantissas and a cubic.",
            "  (func $fmath_exp_f64 (param $x f64) (result f64)",
            "    (local $d f64) (local $t f64) (local $di i64)",
            "    ;; NaN becomes the upper bound, as x86 minpd does",
            f"    (local.set $x (select {g('x')} {c(m.FMATH_HI)} (f64.lt {g('x')} {c(m.FMATH_HI)})))",
            f"    (local.set $x (select {g('x')} {c(m.FMATH_LO)} (f64.gt {g('x')} {c(m.FMATH_LO)})))",
            f"    (local.set $d (f64.add (f64.mul {g('x')} {c(m.FMATH_A)}) {c(m.FMATH_B)}))",
            f"    (local.set $di (i64.reinterpret_f64 {g('d')}))",
            f"    (local.set $t (f64.sub (f64.mul (f64.sub {g('d')} {c(m.FMATH_B)}) {c(m.FMATH_RA)}) {g('x')}))",
            f"    (f64.mul {y} (f64.reinterpret_i64 (i64.or {u} (i64.load (i32.add (i32.const {tbl}) (i32.shl {j} (i32.const 3))))))))",
        ]

    def _log1p(self, x: str, el: FloatType) -> str:
        self._helper_log1p()
        if el == f32:
            return f"(f32.demote_f64 (call $log1p_f64 (f64.promote_f32 {x})))"
        return f"(call $log1p_f64 {x})"

    def _softmax(self, b: _Body, op, a: _Loc, r: _Loc) -> None:
        t = op.results[0].type
        el, n, vt = t.element, t.size, _vt(t.element)
        acc_attr = op.attributes.get("acc")
        acc = acc_attr.type if acc_attr is not None else el
        m, s, e, i = b.local(f"sm_m_{vt}", vt), b.local(f"sm_s_{_vt(acc)}", _vt(acc)), b.local(f"sm_e_{vt}", vt), b.local("i", "i32")
        li = f"(local.get {i})"
        b.emit(f"(local.set {m} {self._ld(a, 0, el)})")
        # m = a_i when a_i > m, left to right (NaN never replaces).
        b.loop(
            i,
            1,
            n,
            lambda: b.emit(
                f"  (local.set {m} (select {self._ld(a, li, el)} (local.get {m}) ({vt}.gt {self._ld(a, li, el)} (local.get {m}))))"
            ),
        )
        b.emit(f"(local.set {s} {wat_float(0.0, acc)})")

        def exps():
            b.emit(f"  (local.set {e} {self._exp(f'({vt}.sub {self._ld(a, li, el)} (local.get {m}))', el, op)})")
            b.emit("  " + self._st(r, li, el, f"(local.get {e})"))
            b.emit(f"  (local.set {s} ({_vt(acc)}.add (local.get {s}) {_convert(f'(local.get {e})', el, acc)}))")

        b.loop(i, 0, n, exps)
        st = b.local(f"sm_st_{vt}", vt)
        b.emit(f"(local.set {st} {_convert(f'(local.get {s})', acc, el)})")
        b.loop(i, 0, n, lambda: b.emit("  " + self._st(r, li, el, f"({vt}.div {self._ld(r, li, el)} (local.get {st}))")))

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

    def _helper_exp(self) -> None:
        if "$exp_f64" in self.helpers:
            return
        m = mathfn
        hi = self.data.add_array(m.T_HI.astype(np.float64), "exp: T_hi[j] = 2^(j/128), high part")
        lo = self.data.add_array(m.T_LO.astype(np.float64), "exp: T_lo[j], low part")

        def c(v):
            return f"(f64.const {hex_float(v)})"

        def g(name):
            return f"(local.get ${name})"

        def pow2(e):
            return f"(f64.reinterpret_i64 (i64.shl (i64.extend_i32_u (i32.add {e} (i32.const 1023))) (i64.const 52)))"

        e2 = f"(i32.sub {g('e')} {g('e1')})"
        poly = f"(f64.add {c(m.C2)} (f64.mul {g('r')} (f64.add {c(m.C3)} (f64.mul {g('r')} (f64.add {c(m.C4)} (f64.mul {g('r')} {c(m.C5)}))))))"
        self.helpers["$exp_f64"] = [
            "  ;; Timber's exp (ir/mathfn.py): Tang's table method, N = 128, the same double operations in",
            "  ;; the same order as every other back-end.",
            "  (func $exp_f64 (param $x f64) (result f64)",
            "    (local $kd f64) (local $r f64) (local $p f64) (local $th f64) (local $y f64)",
            "    (local $k i32) (local $e i32) (local $j i32) (local $e1 i32)",
            f"    (if (f64.ne {g('x')} {g('x')}) (then (return {g('x')})))",
            f"    (if (f64.gt {g('x')} {c(m.OVERFLOW)}) (then (return (f64.const inf))))",
            f"    (if (f64.lt {g('x')} {c(m.UNDERFLOW)}) (then (return (f64.const 0))))",
            "    ;; adding and subtracting 1.5*2^52 rounds to an integer, ties to even",
            f"    (local.set $kd (f64.sub (f64.add (f64.mul {g('x')} {c(m.INV_LN2_N)}) {c(m.SHIFT)}) {c(m.SHIFT)}))",
            f"    (local.set $r (f64.sub (f64.sub {g('x')} (f64.mul {g('kd')} {c(m.LN2_HI_N)})) (f64.mul {g('kd')} {c(m.LN2_LO_N)})))",
            f"    (local.set $p (f64.add {g('r')} (f64.mul (f64.mul {g('r')} {g('r')}) {poly})))",
            f"    (local.set $k (i32.trunc_sat_f64_s {g('kd')}))",
            f"    (local.set $j (i32.and {g('k')} (i32.const 127)))",
            f"    (local.set $e (i32.shr_s {g('k')} (i32.const 7)))",
            f"    (local.set $th (f64.load (i32.add (i32.const {hi}) (i32.shl {g('j')} (i32.const 3)))))",
            f"    (local.set $y (f64.add {g('th')} (f64.add (f64.load (i32.add (i32.const {lo}) (i32.shl {g('j')} (i32.const 3)))) (f64.mul {g('th')} {g('p')}))))",
            "    ;; scale in two steps so each power of two is a normal number",
            f"    (local.set $e1 (i32.shr_s {g('e')} (i32.const 1)))",
            f"    (f64.mul (f64.mul {g('y')} {pow2(g('e1'))}) {pow2(e2)}))",
        ]

    def _helper_log1p(self) -> None:
        if "$log1p_f64" in self.helpers:
            return
        m = mathfn

        def c(v):
            return f"(f64.const {hex_float(v)})"

        def g(name):
            return f"(local.get ${name})"

        def i64(v):
            return f"(i64.const {v})"

        ln2hi, ln2lo = c(m.LOG_LN2_HI), c(m.LOG_LN2_LO)
        kd = f"(f64.convert_i64_s {g('k')})"
        # k*ln2_hi - ((hfsq - (t + (k*ln2_lo + c))) - f), and the |f| < 2^-20 variants
        big_k = f"(f64.sub (f64.mul {kd} {ln2hi}) (f64.sub (f64.sub {g('hfsq')} (f64.add {g('t')} (f64.add (f64.mul {kd} {ln2lo}) {g('c')}))) {g('f')}))"
        small_k = f"(f64.sub (f64.mul {kd} {ln2hi}) (f64.sub (f64.sub {g('rs')} (f64.add (f64.mul {kd} {ln2lo}) {g('c')})) {g('f')}))"
        zero_k = f"(f64.add (f64.mul {kd} {ln2hi}) (f64.add {g('c')} (f64.mul {kd} {ln2lo})))"
        z, z2, z4, z6 = g("z"), g("z2"), g("z4"), g("z6")
        r = (
            f"(f64.add (f64.add (f64.add (f64.mul {z} {c(m.LP1)}) (f64.mul {z2} (f64.add {c(m.LP2)} (f64.mul {z} {c(m.LP3)}))))"
            f" (f64.mul {z4} (f64.add {c(m.LP4)} (f64.mul {z} {c(m.LP5)})))) (f64.mul {z6} (f64.add {c(m.LP6)} (f64.mul {z} {c(m.LP7)}))))"
        )
        lo32 = f"(i64.and {g('b')} {i64(0xFFFFFFFF)})"
        self.helpers["$log1p_f64"] = [
            "  ;; Timber's log1p (ir/mathfn.py): 1+x = 2^k (1+f), log(1+f) by fdlibm's polynomial in s = f/(2+f);",
            "  ;; the same double operations in the same order as every other back-end.",
            "  (func $log1p_f64 (param $x f64) (result f64)",
            "    (local $b i64) (local $hx i64) (local $ax i64) (local $hu i64) (local $k i64)",
            "    (local $u f64) (local $f f64) (local $c f64) (local $hfsq f64) (local $rs f64) (local $s f64)",
            "    (local $z f64) (local $z2 f64) (local $z4 f64) (local $z6 f64) (local $t f64)",
            f"    (if (f64.ne {g('x')} {g('x')}) (then (return {g('x')})))",
            f"    (local.set $b (i64.reinterpret_f64 {g('x')}))",
            f"    (local.set $hx (i64.shr_s {g('b')} {i64(32)}))",
            f"    (local.set $ax (i64.and {g('hx')} {i64(0x7FFFFFFF)}))",
            f"    (local.set $f {g('x')}) (local.set $hu {i64(1)}) (local.set $k {i64(1)})",
            f"    (if (i64.lt_s {g('hx')} {i64(m.HX_K0_HIGH)})",
            "      (then",
            f"        (if (i64.ge_s {g('ax')} {i64(m.AX_MINUS_ONE)})",
            f"          (then (return (select (f64.const -inf) (f64.const nan) (f64.eq {g('x')} (f64.const -1))))))",
            f"        (if (i64.lt_s {g('ax')} {i64(m.AX_TINY)})",
            f"          (then (return (select {g('x')} (f64.sub {g('x')} (f64.mul (f64.mul {g('x')} {g('x')}) (f64.const 0.5)))"
            f" (i64.lt_s {g('ax')} {i64(m.AX_TINIER)})))))",
            f"        (if (i32.or (i64.gt_s {g('hx')} {i64(0)}) (i64.le_s {g('hx')} {i64(m.HX_K0_LOW)})) (then (local.set $k {i64(0)}))))",
            "      (else",
            f"        (if (i64.ge_s {g('hx')} {i64(0x7FF00000)}) (then (return (f64.add {g('x')} {g('x')}))))))",
            f"    (if (i64.ne {g('k')} {i64(0)})",
            "      (then",
            f"        (if (i64.lt_s {g('hx')} {i64(m.HX_BIG)})",
            "          (then",
            f"            (local.set $u (f64.add (f64.const 1) {g('x')}))",
            f"            (local.set $b (i64.reinterpret_f64 {g('u')}))",
            f"            (local.set $k (i64.sub (i64.shr_u {g('b')} {i64(52)}) {i64(1023)}))",
            "            ;; c = ((1+x) - u) / u corrects the rounding of u",
            f"            (local.set $c (f64.div (select (f64.sub (f64.const 1) (f64.sub {g('u')} {g('x')})) (f64.sub {g('x')} (f64.sub {g('u')} (f64.const 1)))"
            f" (i64.gt_s {g('k')} {i64(0)})) {g('u')})))",
            "          (else",
            f"            (local.set $k (i64.sub (i64.shr_u {g('b')} {i64(52)}) {i64(1023)}))))",
            f"        (local.set $hu (i64.and (i64.shr_u {g('b')} {i64(32)}) {i64(0xFFFFF)}))",
            f"        (if (i64.lt_s {g('hu')} {i64(m.HU_SQRT2)})",
            f"          (then (local.set $b (i64.or (i64.shl (i64.or {g('hu')} {i64(0x3FF00000)}) {i64(32)}) {lo32})))",
            "          (else",
            f"            (local.set $k (i64.add {g('k')} {i64(1)}))",
            f"            (local.set $b (i64.or (i64.shl (i64.or {g('hu')} {i64(0x3FE00000)}) {i64(32)}) {lo32}))",
            f"            (local.set $hu (i64.shr_s (i64.sub {i64(0x100000)} {g('hu')}) {i64(2)}))))",
            f"        (local.set $f (f64.sub (f64.reinterpret_i64 {g('b')}) (f64.const 1)))))",
            f"    (local.set $hfsq (f64.mul (f64.mul (f64.const 0.5) {g('f')}) {g('f')}))",
            f"    (if (i64.eqz {g('hu')})",
            "      (then",
            f"        (if (f64.eq {g('f')} (f64.const 0))",
            f"          (then (return (select (f64.const 0) {zero_k} (i64.eqz {g('k')})))))",
            f"        (local.set $rs (f64.mul {g('hfsq')} (f64.sub (f64.const 1) (f64.mul {c(m.TWO_THIRDS)} {g('f')}))))",
            f"        (return (select (f64.sub {g('f')} {g('rs')}) {small_k} (i64.eqz {g('k')})))))",
            f"    (local.set $s (f64.div {g('f')} (f64.add (f64.const 2) {g('f')})))",
            f"    (local.set $z (f64.mul {g('s')} {g('s')}))",
            f"    (local.set $z2 (f64.mul {z} {z}))",
            f"    (local.set $z4 (f64.mul {z2} {z2}))",
            f"    (local.set $z6 (f64.mul {z4} {z2}))",
            f"    (local.set $t (f64.mul {g('s')} (f64.add {g('hfsq')} {r})))",
            f"    (select (f64.sub {g('f')} (f64.sub {g('hfsq')} {g('t')})) {big_k} (i64.eqz {g('k')})))",
        ]

    # ----- module -----------------------------------------------------------------------
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
                    "    (if (i32.or (i32.eqz (local.get $in)) (i32.eqz (local.get $out))) (then (return (i32.const -1))))",
                    f"    (if (i32.or {past_end('$in', '(i32.const 1)', in_row)} {past_end('$out', '(i32.const 1)', out_row)}) (then (return (i32.const -3))))",
                    f"    (call {fn} (local.get $in) (local.get $out))",
                    "    (i32.const 0))",
                ]
            out += [
                f'  (func (export "{ex.batch_symbol}") (param $in i32) (param $n i32) (param $out i32) (param $ctx i32) (result i32)',
                "    (local $i i32)",
                "    (if (i32.lt_s (local.get $n) (i32.const 0)) (then (return (i32.const -3))))",
                "    (if (i32.eqz (local.get $n)) (then (return (i32.const 0))))",
                "    (if (i32.or (i32.eqz (local.get $in)) (i32.eqz (local.get $out))) (then (return (i32.const -1))))",
                f"    (if (i32.or {past_end('$in', '(local.get $n)', in_row)} {past_end('$out', '(local.get $n)', out_row)}) (then (return (i32.const -3))))",
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
        body += self.funcs
        body += self._wrappers()
        return "\n".join(head + body) + "\n)\n", layout


def emit_wat(module, prefix: str = "timber_", batch_rows: int = DEFAULT_BATCH_ROWS) -> str:
    """A WebAssembly text module for a verified module (see the module docstring for the ABI and layout)."""
    return _WatModule(plan_module(module, prefix, "wat"), batch_rows).text()[0]


def emit_wat_bundle(module, prefix: str = "timber_", batch_rows: int = DEFAULT_BATCH_ROWS) -> dict[str, str]:
    """{"model.wat": the module, "model.js": a loader for its assembled `model.wasm`}."""
    from .loader import loader_js

    plan = plan_module(module, prefix, "wat")
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
