"""Lowering a verified Timber module to LLVM IR text.

IR functions describe one row; the back-end adds the batch.  Each `func.func @f` becomes
block functions `@f_b{B}` that compute B rows at once: a tensor<K x T> value is K LLVM
vectors of B lanes (or a [K][B] buffer in memory), so elementwise ops are plain vector
instructions and `tree.ensemble` calls the table-driven kernels of `kernels.py`.  Two block
sizes are emitted: B for batches (64 rows, or one f32 vector of rows — 8 on AVX2 — for modules of
straight-line arithmetic) and B = 1 for single rows and short tails.

Exported, per the ABI of `backends/common/abi.py` (prefix default `timber_`):

    int <prefix>infer(const T *X, int n, OUT *out, const void *ctx)       @predict, n rows
    int <prefix>infer_single(const T *x, OUT *out, const void *ctx)       @predict, one row
    int <prefix>infer_<name>(const T *X, int n, OUT *out, const void *ctx) every other public function

They return 0, or the ABI's error codes (`backends/common/abi.py`): ERR_BOUNDS (-3) for n < 0, ERR_NULL (-1)
for a NULL row or output pointer (n = 0 accepts NULL).

Lowering reads only the module and a `TargetInfo`; it knows nothing of the JIT, so objects
for other targets can be emitted from the same text.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ir import libm
from ir.core import Block, Operation, Value
from ir.diagnostics import TimberError
from ir.dialects import arith, builtin, func, linear, math, mathimpl, tree
from ir.dialects.tree import ZERO_THRESHOLD
from ir.opdef import OP_REGISTRY, Elementwise
from ir.types import FloatType, IntegerType, TensorType

from ..common.abi import ERR_BOUNDS, ERR_NULL
from ..common.lowering import lowering_of as common_lowering_of
from ..common.plan import check_prefix
from . import kernels
from .emit import Function, Module, byte_size, gather, iota, numpy_scalar_type, scalar_type, scatter, splat, vec
from .kernels import KernelContext
from .plan import BitvectorSegment, BranchSegment, EnsemblePlan, GeneralSegment, HeapSegment, ObliviousSegment, WalkSegment, plan_ensemble
from .target import TargetInfo

BLOCK_ROWS = 64
STRAIGHT_LINE_WORK = 256  # arith/math result elements past which a module runs in one-vector blocks
BLOCK_BYTES = 256 * 1024  # largest [N][B] row block kept on the stack
# Forests whose tables are far larger than the caches and that only walk (deep trees: random
# forests) run in big blocks, so each tree's hot nodes serve many rows before the next tree
# evicts them.  sklearn RandomForest, 100 trees of depth 20 (15 MB of tables), AMD EPYC (Zen 3),
# 100k rows, one process: 64-row blocks 16-21k rows/s, 256 rows 30-32k, 1024 rows 59-74k (a
# second run: 155-199k, 2048 rows 175-222k, 4096 rows 189-219k).  Up to BLOCK_BYTES of rows.
BIG_BLOCK_ROWS = (2048, 1024, 512, 256)
BIG_TABLE_BYTES = 4 << 20
PARTIAL_MIN = 8  # a tail of at least this many rows runs as a masked block, shorter ones row by row
AFFINE_UNROLL = 64  # linear.affine with more inputs than this loops over them


@dataclass
class Export:
    """One exported entry point and the shapes/types its caller must use."""

    symbol: str
    func: str
    n_inputs: int
    n_outputs: int
    in_dtype: np.dtype
    out_dtype: np.dtype
    single: bool = False


@dataclass
class Lowered:
    """A lowered module: LLVM text plus what the JIT and the API need to call it."""

    module: Module
    exports: list[Export]
    block_rows: int
    plans: list[EnsemblePlan] = field(default_factory=list)

    @property
    def text(self) -> str:
        return self.module.text()

    def export(self, symbol: str) -> Export | None:
        return next((e for e in self.exports if e.symbol == symbol), None)

    @property
    def cost_per_row(self) -> int:
        """Tree levels visited per row over all ensembles (a work estimate for threading)."""
        return sum(p.cost_per_row for p in self.plans)

    @property
    def kernels(self) -> str:
        """Which kernels the code runs: the block size, then per tree ensemble `EnsemblePlan.describe`."""
        lines = [f"blocks of {self.block_rows} rows"]
        lines += [f"ensemble {i}: {p.describe()}" for i, p in enumerate(self.plans)]
        return "\n".join(lines)


@dataclass
class Val:
    """A block value: `n` components of B lanes each, held in registers (`regs`, one LLVM
    value or constant per component) or in memory (`ptr` to a [n][B] buffer)."""

    elem: str
    n: int
    ptr: str | None = None
    regs: list[str] | None = None


def _elem(t) -> str:
    return scalar_type(t.element if isinstance(t, TensorType) else t)


def lower_module(module: builtin.ModuleOp, target: TargetInfo, prefix: str = "timber_") -> Lowered:
    """Lower a verified module for `target`; exported symbols start with `prefix`."""
    return ModuleLowering(module, target, prefix).run()


class ModuleLowering:
    """Lowers every function of a module at each block size, then the exported wrappers."""

    def __init__(self, module: builtin.ModuleOp, target: TargetInfo, prefix: str):
        check_prefix(prefix)  # the one validator every back-end uses
        self.module = module
        self.target = target
        self.prefix = prefix
        # scalar kernels (one lane) never read past a table's end: no padding for vector loads
        self.mod = Module(
            "timber",
            f"{prefix}tbl_",
            small=target.small,
            table_pad=64 if target.lanes > 1 else 0,
            libm=target.libm,
            gathers_as_loads=target.split_gathers,
            stack_align=target.stack_align,
        )
        self.funcs = [op for op in module.body.ops if isinstance(op, func.FuncOp)]
        self._plans: dict[int, EnsemblePlan] = {}
        self._tables: dict[int, dict[str, str]] = {}
        self._branch_tags: dict[int, str] = {}
        self.const_tables: dict[tuple, str] = {}  # arith.lookup tables, by content
        self.block_rows = self._choose_block_rows()

    def _choose_block_rows(self) -> int:
        """B for batches: the target's own choice when it has one (1 on microcontrollers); for
        straight-line arithmetic, the rows of one f32 vector; else 64 rows, fewer when a row is
        very wide (the [N][B] blocks live on the stack), 1 (row by row) for extremely wide inputs."""
        if self.target.block_rows is not None:
            return self.target.block_rows
        # every op `arith`, `math`, `kin` or `func` (no tree kernels, no loops over tables): code
        # whose cost is its arithmetic, not a block's memory traffic
        dialects = ("arith", "math", "kin", "func")
        if all(op.name.split(".")[0] in dialects for f in self.funcs for op in f.walk() if op is not f):
            # arithmetic only (a robot's kinematics, elementwise formulas): one f32 vector of rows
            # (8 on AVX2: two f64 vectors per value) spills far less than 64 rows (16 vectors per
            # value); iiwa FK, math="timber": 197 -> 151 ns per row, codegen 28 s -> 2.4 s
            # (4 rows measured slower: 100 vs 82 ns)
            return max(self.target.lanes, 1)
        # Much straight-line arithmetic beside the ensembles (CatBoost CTRs: hashing and table
        # searches per categorical column) costs far more to generate and run at 64 rows than at
        # one vector: a CatBoost model with 5146 such elements, 100 trees: codegen 212 s -> 5 s,
        # 1114 -> 920 ns per row.  Output transforms (sigmoid, softmax: tens of elements) stay at 64.
        work = sum(
            r.type.size
            for f in self.funcs
            for op in f.walk()
            if op.name.split(".")[0] in ("arith", "math") and not isinstance(op, arith.ConstantOp)
            for r in op.results
            if isinstance(r.type, TensorType)
        )
        if work >= STRAIGHT_LINE_WORK:
            return max(self.target.lanes, 1)
        widest = 1
        for f in self.funcs:
            for op in f.walk():
                for v in list(op.operands) + list(op.results):
                    if isinstance(v.type, TensorType) and v.type.element in (FloatType(32), FloatType(64), IntegerType(64)):
                        widest = max(widest, v.type.size * 8)
        big = BIG_BLOCK_ROWS if self._walks_big_tables() else ()
        for rows in (*big, BLOCK_ROWS, 16):
            if widest * rows <= BLOCK_BYTES and rows % max(self.target.lanes, 1) == 0:
                return rows
        return 1

    def _walks_big_tables(self) -> bool:
        """Every op a tree ensemble run by walk kernels or cheap glue, and their tables larger
        than BIG_TABLE_BYTES (see BIG_BLOCK_ROWS)."""
        if self.target.lanes <= 1 or self.target.small:
            return False
        nbytes = 0
        for f in self.funcs:
            for op in f.walk():
                if isinstance(op, tree.EnsembleOp):
                    p = self.plan(op)
                    if not all(isinstance(s, WalkSegment) for s in p.segments):
                        return False
                    nbytes += sum(getattr(s, c).nbytes for s in p.segments for c in ("words", "thresholds", "left", "leaves"))
                elif op is not f and op.name.split(".")[0] not in ("arith", "math", "func", "tree"):
                    return False
        return nbytes >= BIG_TABLE_BYTES

    def plan(self, op: tree.EnsembleOp) -> EnsemblePlan:
        p = self._plans.get(id(op))
        if p is None:
            p = self._plans[id(op)] = plan_ensemble(op, small=self.target.small, bitvectors=self.target.bitvectors)
        return p

    def tables(self, s) -> dict[str, str]:
        """Global names of a segment's tables (added to the module once, shared by all B)."""
        key = id(s)  # segments live as long as their plan, which `_plans` keeps
        if key not in self._tables:
            pool = self.mod.pool
            if isinstance(s, BranchSegment):
                # branch code holds the tree shapes as code; thresholds, leaves and category sets stay tables
                cols = {"T": s.thresholds, "LV": s.leaves}
                if s.cats is not None:
                    cols.update(WD=s.cats["words"])  # each set's start and length are constants in the code
                self._tables[key] = {k: pool.add(k.lower() + "_", v) for k, v in cols.items()}
            elif isinstance(s, BitvectorSegment):
                S = kernels.bitvector_stride(self.target, numpy_scalar_type(s.thresholds.dtype))  # tree offsets in the kernels' buffers
                cols = (s.fstart, s.thresholds, s.masks, s.tree_of * S, s.nstart, s.nmasks, s.ntree_of * S, s.leaves, s.outs)
                self._tables[key] = {k: pool.add("qs_" + k.lower() + "_", v) for k, v in zip(kernels.BITVECTOR_COLUMNS, cols)}
            elif isinstance(s, (HeapSegment, WalkSegment, ObliviousSegment)):
                if isinstance(s, (HeapSegment, ObliviousSegment)):
                    cols = {"W": s.words, "T": s.thresholds, "LV": s.leaves, "O": s.outs}
                else:
                    cols = {"W": s.words, "T": s.thresholds, "Lf": s.left, "LV": s.leaves, "R": s.roots, "O": s.outs}
                if s.cats is not None:
                    cols.update(CS=s.cats["start"], CL=s.cats["len"], WD=s.cats["words"])
                self._tables[key] = {k: pool.add(k.lower() + "_", v) for k, v in cols.items()}
            else:
                self._tables[key] = {c: pool.add(c, s.arrays[c]) for c in kernels.node_columns(s.linear)}
        return self._tables[key]

    def branch_tag(self, s: BranchSegment) -> str:
        """The name stem of a branch segment's functions (numbered in lowering order)."""
        return self._branch_tags.setdefault(id(s), f"branch{len(self._branch_tags)}")

    def run(self) -> Lowered:
        sizes = [1] if self.block_rows == 1 else [self.block_rows, 1]
        for f in self.funcs:
            for b in sizes:
                FunctionLowering(self, f, b).run()
        exports = []
        for f in self.funcs:  # every function of a module is public
            exports.extend(self._export(f))
        plans = list(self._plans.values())
        return Lowered(self.mod, exports, self.block_rows, plans)

    def _export(self, f: func.FuncOp) -> list[Export]:
        ft = f.function_type
        ok = len(ft.inputs) == 1 and len(ft.results) == 1
        ok = ok and all(isinstance(t, TensorType) and len(t.shape) == 1 for t in (*ft.inputs, *ft.results))
        if not ok:
            raise TimberError(
                f"cannot export @{f.sym_name}: the ABI needs one rank-1 tensor in and one out, found {ft}",
                f.location,
            )
        tin, tout = ft.inputs[0], ft.results[0]
        name = f.sym_name
        n_in, n_out = tin.shape[0], tout.shape[0]
        in_t, out_t = _elem(tin), _elem(tout)
        symbol = f"{self.prefix}infer" if name == "predict" else f"{self.prefix}infer_{name}"
        self._batch_wrapper(symbol, name, n_in, n_out, in_t, out_t)
        exports = [Export(symbol, name, n_in, n_out, tin.element.numpy, tout.element.numpy)]
        if name == "predict":
            single = f"{self.prefix}infer_single"
            fn = self.mod.add(
                Function(single, "i32", [("ptr noalias", "%x"), ("ptr noalias", "%out"), ("ptr", "%ctx")], linkage="external")
            )
            _check_pointers(fn, ["%x", "%out"], None)
            fn.emit(f"call void @{_block_name(name, 1)}(ptr %x, ptr %out)")
            fn.emit("ret i32 0")
            exports.append(Export(single, name, n_in, n_out, tin.element.numpy, tout.element.numpy, single=True))
        return exports

    def _batch_wrapper(self, symbol: str, name: str, N: int, K: int, T: str, R: str) -> None:
        """`symbol(X, n, out, ctx)`: full blocks of B rows (transposed to [N][B], computed,
        written back row-major), then the tail as one masked block or row by row."""
        B = self.block_rows
        fn = self.mod.add(
            Function(symbol, "i32", [("ptr noalias", "%X"), ("i32", "%n"), ("ptr noalias", "%out"), ("ptr", "%ctx")], linkage="external")
        )
        neg = fn.op("neg", "icmp slt i32 %n, 0")
        bad, ok = fn.label("bad_n"), fn.label("n_ok")
        fn.emit(f"br i1 {neg}, label %{bad}, label %{ok}")
        fn.block(bad)
        fn.emit(f"ret i32 {ERR_BOUNDS}")
        fn.block(ok)
        _check_pointers(fn, ["%X", "%out"], fn.op("some", "icmp sgt i32 %n, 0"))
        n64 = fn.op("rows", "zext i32 %n to i64")
        L = {k: fn.label(k) for k in ("blocks", "block", "tail", "partial", "singles", "single", "single_body", "done")}
        if B == 1:
            fn.emit(f"br label %{L['singles']}")
            self._single_rows(fn, L, name, N, K, T, R, n64, "0")
            return
        xb = fn.alloca("xb", T, N * B)
        ob = fn.alloca("ob", R, K * B)
        if B > BLOCK_ROWS:
            self.mod.declare("llvm.memset.p0.i64", "declare void {name}(ptr, i8, i64, i1)")
            fn.emit(f"call void @llvm.memset.p0.i64(ptr {xb}, i8 0, i64 {N * B * byte_size(T)}, i1 false)")
        nfull = fn.op("nfull", f"udiv i64 {n64}, {B}")
        pre = fn.current_block()
        fn.emit(f"br label %{L['blocks']}")
        fn.block(L["blocks"])
        b, b_next = fn.tmp("b"), fn.tmp("b.next")
        phi_line = len(fn.lines)
        fn.emit("")  # the back edge comes from the block body's last block: filled in below
        more = fn.op("more", f"icmp ult i64 {b}, {nfull}")
        fn.emit(f"br i1 {more}, label %{L['block']}, label %{L['tail']}")
        fn.block(L["block"])
        r0 = fn.op("r0", f"mul i64 {b}, {B}")
        self._transpose(fn, xb, r0, N, T, B, None)
        fn.emit(f"call void @{_block_name(name, B)}(ptr {xb}, ptr {ob})")
        self._write_back(fn, ob, r0, K, R, B, None)
        fn.emit(f"{b_next} = add i64 {b}, 1")
        fn.lines[phi_line] = f"  {b} = phi i64 [0, %{pre}], [{b_next}, %{fn.current_block()}]"
        fn.emit(f"br label %{L['blocks']}")
        fn.block(L["tail"])
        start = fn.op("tail.start", f"mul i64 {nfull}, {B}")
        rem = fn.op("rem", f"sub i64 {n64}, {start}")
        big = fn.op("big", f"icmp uge i64 {rem}, {PARTIAL_MIN}")
        fn.emit(f"br i1 {big}, label %{L['partial']}, label %{L['singles']}")
        fn.block(L["partial"])
        if B > BLOCK_ROWS:
            # the rows past the tail hold the last full block's values (or the zeros written
            # at entry): defined numbers, whose results are not written back
            self._transpose(fn, xb, start, N, T, B, None, rem)
            fn.emit(f"call void @{_block_name(name, B)}(ptr {xb}, ptr {ob})")
            self._write_back(fn, ob, start, K, R, B, None, rem)
            fn.emit(f"br label %{L['done']}")
            self._single_rows(fn, L, name, N, K, T, R, n64, start)
            return
        remv = fn.op("remv", f"trunc i64 {rem} to i32")
        remi = fn.op("remi", f"insertelement <{B} x i32> poison, i32 {remv}, i64 0")
        rems = fn.op("rems", f"shufflevector <{B} x i32> {remi}, <{B} x i32> poison, <{B} x i32> zeroinitializer")
        mask = fn.op("mask", f"icmp ult <{B} x i32> {iota(B)}, {rems}")
        self._transpose(fn, xb, start, N, T, B, mask)
        fn.emit(f"call void @{_block_name(name, B)}(ptr {xb}, ptr {ob})")
        self._write_back(fn, ob, start, K, R, B, mask)
        fn.emit(f"br label %{L['done']}")
        self._single_rows(fn, L, name, N, K, T, R, n64, start)

    def _single_rows(self, fn: Function, L: dict, name: str, N: int, K: int, T: str, R: str, end: str, start: str) -> None:
        fn.block(L["singles"])
        fn.emit(f"br label %{L['single']}")
        fn.block(L["single"])
        i, i_next = fn.tmp("i"), fn.tmp("i.next")
        fn.emit(f"{i} = phi i64 [{start}, %{L['singles']}], [{i_next}, %{L['single_body']}]")
        more = fn.op("more", f"icmp ult i64 {i}, {end}")
        fn.emit(f"br i1 {more}, label %{L['single_body']}, label %{L['done']}")
        fn.block(L["single_body"])
        xo = fn.op("xo", f"mul i64 {i}, {N}")
        xp = fn.op("xp", f"getelementptr {T}, ptr %X, i64 {xo}")
        oo = fn.op("oo", f"mul i64 {i}, {K}")
        op = fn.op("outp", f"getelementptr {R}, ptr %out, i64 {oo}")
        fn.emit(f"call void @{_block_name(name, 1)}(ptr {xp}, ptr {op})")
        fn.emit(f"{i_next} = add i64 {i}, 1")
        fn.emit(f"br label %{L['single']}")
        fn.block(L["done"])
        fn.emit("ret i32 0")

    def _transpose(self, fn: Function, xb: str, r0: str, N: int, T: str, B: int, mask: str | None, count: str | None = None) -> None:
        """xb[k*B + r] = X[(r0 + r)*N + k]: one strided gather per feature (masked rows read as 0);
        big blocks: a loop over the first `count` (default B) rows, copying each row's values."""
        if B > BLOCK_ROWS:
            _copy_rows(fn, "%X", r0, N, xb, B, T, count or B, to_block=True)
            return
        base = fn.op("xrow", f"mul i64 {r0}, {N}")
        base = fn.op("xbase", f"getelementptr {T}, ptr %X, i64 {base}")
        offsets = iota(B, N)

        def one(k: str) -> None:
            col = fn.op("xk", f"getelementptr {T}, ptr {base}, i64 {k}")
            v = gather(fn, self.mod, T, col, offsets, B, mask=mask, hint="col", loads=True)
            dst = fn.op("dst", f"getelementptr {T}, ptr {xb}, i64 {fn.op('dk', f'mul i64 {k}, {B}')}")
            fn.emit(f"store {vec(B, T)} {v}, ptr {dst}, align 4")

        for_each(fn, N, "tk", one)

    def _write_back(self, fn: Function, ob: str, r0: str, K: int, R: str, B: int, mask: str | None, count: str | None = None) -> None:
        """out[(r0 + r)*K + k] = ob[k*B + r] for the rows in `mask` (all when None); big blocks:
        a loop over the first `count` (default B) rows."""
        if B > BLOCK_ROWS:
            _copy_rows(fn, "%out", r0, K, ob, B, R, count or B, to_block=False)
            return
        base = fn.op("orow", f"mul i64 {r0}, {K}")
        base = fn.op("obase", f"getelementptr {R}, ptr %out, i64 {base}")
        if mask is None and B <= 16 and 1 < K <= 32:
            # small blocks (straight-line arithmetic): one contiguous <K x R> store per row, built
            # from the K column vectors (LLVM transposes with shuffles) instead of K scatters of
            # B scalar stores each: KUKA iiwa FK (K = 16, B = 8) 47.8 -> 39.5 ns per row, Zen 3
            cols = [fn.op("ov", f"load {vec(B, R)}, ptr {fn.op('src', f'getelementptr {R}, ptr {ob}, i64 {k * B}')}, align 4") for k in range(K)]
            for r in range(B):
                row = "poison"
                for k in range(K):
                    e = fn.op("oe", f"extractelement {vec(B, R)} {cols[k]}, i64 {r}")
                    row = fn.op("orv", f"insertelement {vec(K, R)} {row}, {R} {e}, i64 {k}")
                fn.emit(f"store {vec(K, R)} {row}, ptr {fn.op('odst', f'getelementptr {R}, ptr {base}, i64 {r * K}')}, align 4")
            return
        offsets = iota(B, K)

        def one(k: str) -> None:
            src = fn.op("src", f"getelementptr {R}, ptr {ob}, i64 {fn.op('ok', f'mul i64 {k}, {B}')}")
            v = fn.op("ov", f"load {vec(B, R)}, ptr {src}, align 4")
            dst = fn.op("okp", f"getelementptr {R}, ptr {base}, i64 {k}")
            if K == 1 and mask is None:
                fn.emit(f"store {vec(B, R)} {v}, ptr {dst}, align 4")
            else:
                scatter(fn, self.mod, R, v, dst, offsets, B, mask=mask)

        for_each(fn, K, "ok", one)


def _copy_rows(fn: Function, rows: str, r0: str, n: int, block: str, B: int, t: str, count, to_block: bool) -> None:
    """Big blocks: for the first `count` rows r, block[k*B + r] = rows[(r0 + r)*n + k] (or back
    when not `to_block`): a loop over rows copying each row's n values."""
    base = fn.op("rbase", f"getelementptr {t}, ptr {rows}, i64 {fn.op('rrow', f'mul i64 {r0}, {n}')}")

    def row(r: str) -> None:
        at = fn.op("at", f"getelementptr {t}, ptr {base}, i64 {fn.op('ro', f'mul i64 {r}, {n}')}")

        def one(k: str) -> None:
            kb = fn.op("kb", f"mul i64 {k}, {B}")
            inner = fn.op("bp", f"getelementptr {t}, ptr {block}, i64 {fn.op('bk', f'add i64 {kb}, {r}')}")
            outer = fn.op("rp", f"getelementptr {t}, ptr {at}, i64 {k}")
            src, dst = (outer, inner) if to_block else (inner, outer)
            fn.emit(f"store {t} {fn.op('cv', f'load {t}, ptr {src}')}, ptr {dst}")

        for_each(fn, n, "ck", one)

    for_each(fn, count, "cr", row)


def _check_pointers(fn: Function, ptrs: list[str], when: str | None) -> None:
    """Return ERR_NULL if any of `ptrs` is NULL (only where the i1 `when` holds, when given);
    the code that follows runs in a new block."""
    bad = "false"
    for p in ptrs:
        bad = fn.op("null", f"or i1 {bad}, {fn.op('isnull', f'icmp eq ptr {p}, null')}")
    if when is not None:
        bad = fn.op("null", f"and i1 {bad}, {when}")
    err, ok = fn.label("null_ptr"), fn.label("ptrs_ok")
    fn.emit(f"br i1 {bad}, label %{err}, label %{ok}")
    fn.block(err)
    fn.emit(f"ret i32 {ERR_NULL}")
    fn.block(ok)


def for_each(fn: Function, n: int | str, hint: str, body) -> None:
    """Run `body(k)` for k in 0..n-1: unrolled for a few, as a loop otherwise (k is an i64
    value; `n` an i64 value >= 1, or a constant)."""
    if isinstance(n, int) and n <= 8:
        for k in range(n):
            body(str(k))
        return
    head, loop, latch, done = (fn.label(hint + s) for s in ("_head", "_loop", "_latch", "_done"))
    pre = fn.current_block()
    k, k_next = fn.tmp(hint), fn.tmp(hint + ".next")
    fn.emit(f"br label %{head}")
    fn.block(head)
    fn.emit(f"{k} = phi i64 [0, %{pre}], [{k_next}, %{latch}]")
    fn.emit(f"br label %{loop}")
    fn.block(loop)
    body(k)  # may open blocks of its own: the latch is a separate block
    fn.emit(f"br label %{latch}")
    fn.block(latch)
    fn.emit(f"{k_next} = add i64 {k}, 1")
    more = fn.op(hint + ".more", f"icmp ult i64 {k_next}, {n}")
    fn.emit(f"br i1 {more}, label %{head}, label %{done}")
    fn.block(done)


def _block_name(func_name: str, rows: int) -> str:
    return f"f_{func_name}_b{rows}"


class FunctionLowering:
    """Lowers one `func.func` for one block size B."""

    def __init__(self, ml: ModuleLowering, f: func.FuncOp, rows: int):
        self.ml, self.f, self.B = ml, f, rows
        self.mod = ml.mod
        ft = f.function_type
        params = [("ptr noalias", f"%arg{i}") for i in range(len(ft.inputs))] + [
            ("ptr noalias", f"%res{i}") for i in range(len(ft.results))
        ]
        self.fn = self.mod.add(Function(_block_name(f.sym_name, rows), "void", params))
        self.env: dict[int, Val] = {}
        for i, a in enumerate(f.body.args):
            self.env[id(a)] = Val(_elem(a.type), a.type.shape[0] if isinstance(a.type, TensorType) else 1, ptr=f"%arg{i}")

    # ----- values --------------------------------------------------------------------------
    def vt(self, t: str) -> str:
        return vec(self.B, t)

    def value(self, v: Value) -> Val:
        return self.env[id(v)]

    def component(self, v: Val, k: int) -> str:
        if v.regs is not None:
            return v.regs[k]
        p = self.fn.op("cp", f"getelementptr {v.elem}, ptr {v.ptr}, i64 {k * self.B}")
        return self.fn.op("c", f"load {self.vt(v.elem)}, ptr {p}, align 4")

    def components(self, v: Val) -> list[str]:
        return [self.component(v, k) for k in range(v.n)]

    def convert(self, x: str, src: str, dst: str, lanes: int | None = None, hint: str = "cv") -> str:
        """x (a vector of the block's B lanes, or of `lanes`) converted from `src` to `dst`."""
        if src == dst:
            return x
        s, d = vec(lanes or self.B, src), vec(lanes or self.B, dst)
        if src in ("float", "double") and dst in ("float", "double"):
            return self.fn.op(hint, f"{'fpext' if dst == 'double' else 'fptrunc'} {s} {x} to {d}")
        if dst in ("float", "double"):
            return self.fn.op(hint, f"{'uitofp' if src == 'i1' else 'sitofp'} {s} {x} to {d}")
        raise TimberError(f"cannot convert {src} to {dst} in the LLVM back-end")

    def in_memory(self, v: Val, elem: str) -> str:
        """A [n][B] buffer of `elem` holding v (v's own buffer when it already is one)."""
        if v.ptr is not None and v.elem == elem:
            return v.ptr
        fn, B = self.fn, self.B
        buf = fn.alloca("buf", elem, v.n * B)
        if v.regs is not None:
            for k, r in enumerate(v.regs):
                p = fn.op("bp", f"getelementptr {elem}, ptr {buf}, i64 {k * B}")
                fn.emit(f"store {self.vt(elem)} {self.convert(r, v.elem, elem)}, ptr {p}, align 4")
            return buf

        C = min(B, BLOCK_ROWS)  # big blocks: converted BLOCK_ROWS lanes at a time

        def one(k: str) -> None:
            off = fn.op("bo", f"mul i64 {k}, {C}")
            src = fn.op("bs", f"getelementptr {v.elem}, ptr {v.ptr}, i64 {off}")
            x = fn.op("bx", f"load {vec(C, v.elem)}, ptr {src}, align 4")
            dst = fn.op("bd", f"getelementptr {elem}, ptr {buf}, i64 {off}")
            fn.emit(f"store {vec(C, elem)} {self.convert(x, v.elem, elem, C)}, ptr {dst}, align 4")

        for_each(fn, v.n * (B // C), "bk", one)
        return buf

    # ----- driver ------------------------------------------------------------------------------
    def run(self) -> None:
        done = self._pack_sin_cos() if self.B == 1 else set()
        for op in self.f.body.ops:
            if isinstance(op, func.ReturnOp):
                for i, v in enumerate(op.operands):
                    self._store_result(self.value(v), f"%res{i}")
                self.fn.emit("ret void")
                return
            if id(op) not in done:
                self.lower_op(op)

    def _pack_sin_cos(self) -> set[int]:
        """One row (B = 1) with Timber's math: the sines and cosines of single doubles (a robot's
        joint angles) computed together, W per vector, instead of one scalar expansion each.  The
        ops that compute their arguments are lowered first (all pure; none depends on a packed
        op), then each vector of distinct arguments gets one sin and one cos (`_helper`'s pair:
        the same operations per lane as the scalar expansion, so the same bits).  Returns the ops
        lowered here.  KUKA iiwa, one call from C (tools/bench_fk.py, Zen 3): 234 -> 126 ns."""
        target = self.ml.target
        W = {16: 8, 8: 4}.get(target.lanes, 0)
        if target.libm or target.small or not W:
            return set()
        f64 = TensorType((1,), FloatType(64))
        ops = list(self.f.body.ops)
        packed = [o for o in ops if o.name in ("math.sin", "math.cos") and "impl" not in o.attributes and o.operands[0].type == f64]
        if len(packed) < 2:
            return set()
        is_packed = {id(o) for o in packed}
        order = {id(o): i for i, o in enumerate(ops)}
        needed: set[int] = set()

        def need(v: Value) -> bool:
            """Add v's computation to `needed`; False if it depends on a packed op."""
            stack = [v]
            while stack:
                owner = stack.pop().owner
                if not isinstance(owner, Operation) or id(owner) in needed or id(owner) not in order:
                    continue
                if id(owner) in is_packed or owner.regions:
                    return False
                needed.add(id(owner))
                stack.extend(owner.operands)
            return True

        packed = [o for o in packed if need(o.operands[0])]
        if len(packed) < 2:
            return set()
        for o in ops:
            if id(o) in needed:
                self.lower_op(o)
        args: dict[int, Value] = {}
        for o in packed:
            args.setdefault(id(o.operands[0]), o.operands[0])
        kinds = {o.name: o for o in packed}
        fn, et = self.fn, "double"
        vt = vec(W, et)
        results: dict[tuple[str, int], str] = {}
        values = list(args.values())
        for c in range(0, len(values), W):
            chunk = values[c : c + W]
            x = "zeroinitializer"
            for k, v in enumerate(chunk):
                s_ = fn.op("q", f"extractelement <1 x double> {self.component(self.value(v), 0)}, i64 0")
                x = fn.op("qv", f"insertelement {vt} {x}, double {s_}, i64 {k}")
            for name, rep in kinds.items():
                arg = Block([f64]).args[0]
                scalar = type(rep)(operands=[arg], result_types=[f64], attributes=dict(rep.attributes))
                y = _scalar_ops(self, arg, [scalar], scalar.results[0], x, et, lanes=W)
                scalar.drop_uses()
                for k, v in enumerate(chunk):
                    results[name, id(v)] = fn.op(name[5:], f"shufflevector {vt} {y}, {vt} poison, <1 x i32> <i32 {k}>")
        for o in packed:
            self.env[id(o.results[0])] = Val(et, 1, regs=[results[o.name, id(o.operands[0])]])
        return needed | is_packed

    def lower_op(self, op: Operation) -> None:
        lower = LOWERINGS.get(type(op))
        if lower is None:
            if not mathimpl.expandable(op):
                raise TimberError(f"the LLVM back-end cannot lower '{op.name}'", op.location)
            lower = FunctionLowering.expansion
        for r, val in zip(op.results, lower(self, op)):
            self.env[id(r)] = val

    def expansion(self, op: Operation) -> list[Val]:
        """An op with an `arith` expansion (`ir/dialects/mathimpl`): an elementwise algorithm made
        of arith ops only (exp, log, sin, ...) becomes a helper function on one component
        (inlined, or kept out of line in small code, where its soft-float temporaries would
        otherwise join every caller's frame), called per component; a formula over other math ops
        (sigmoid, softmax) is lowered in place, its math ops becoming such calls."""
        args, ops, out = mathimpl.expansion(op)
        if op.has_trait(Elementwise) and not any(mathimpl.expandable(o) for o in ops):
            a = self.value(op.operands[0])
            name = self._helper(op, a.elem)
            t = self.vt(a.elem)
            hint = op.name.split(".")[1]
            return [Val(a.elem, a.n, regs=[self.fn.op(hint, f"call {t} @{name}({t} {x})") for x in self.components(a)])]
        for a, v in zip(args, op.operands):
            self.env[id(a)] = self.value(v)
        for o in ops:
            self.lower_op(o)
        return [self.env[id(out)]]

    def _store_result(self, v: Val, dst: str) -> None:
        fn, B = self.fn, self.B
        if v.regs is None:
            src = v.ptr
            nbytes = v.n * B * byte_size(v.elem)
            fn.emit(f"call void @llvm.memcpy.p0.p0.i64(ptr align 4 {dst}, ptr align 4 {src}, i64 {nbytes}, i1 false)")
            self.mod.declare("llvm.memcpy.p0.p0.i64", "declare void {name}(ptr, ptr, i64, i1)")
            return
        for k, r in enumerate(v.regs):
            p = fn.op("rp", f"getelementptr {v.elem}, ptr {dst}, i64 {k * B}")
            fn.emit(f"store {self.vt(v.elem)} {r}, ptr {p}, align 4")

    # ----- elementwise ops -----------------------------------------------------------------------
    def binary(self, op: Operation, instr: str) -> list[Val]:
        """One LLVM instruction per component (float or integer, by the op)."""
        a, b = self.value(op.operands[0]), self.value(op.operands[1])
        t = self.vt(a.elem)
        regs = [self.fn.op(op.results[0].name_hint or "v", f"{instr} {t} {x}, {y}") for x, y in zip(self.components(a), self.components(b))]
        return [Val(a.elem, a.n, regs=regs)]

    def extremum(self, op: Operation) -> list[Val]:
        """maximumf/minimumf as numpy computes them: `a` if a is NaN or beats b, else b."""
        a, b = self.value(op.operands[0]), self.value(op.operands[1])
        cmp = "ogt" if isinstance(op, arith.MaximumFOp) else "olt"
        t, tb = self.vt(a.elem), self.vt("i1")
        regs = []
        for x, y in zip(self.components(a), self.components(b)):
            nan = self.fn.op("nan", f"fcmp uno {t} {x}, {x}")
            wins = self.fn.op("wins", f"fcmp {cmp} {t} {x}, {y}")
            take = self.fn.op("take", f"or {tb} {nan}, {wins}")
            regs.append(self.fn.op(op.results[0].name_hint or "m", f"select {tb} {take}, {t} {x}, {t} {y}"))
        return [Val(a.elem, a.n, regs=regs)]

    def negf(self, op: Operation) -> list[Val]:
        a = self.value(op.operands[0])
        t = self.vt(a.elem)
        return [Val(a.elem, a.n, regs=[self.fn.op("neg", f"fneg {t} {x}") for x in self.components(a)])]

    def cmpf(self, op: Operation) -> list[Val]:
        a, b = self.value(op.operands[0]), self.value(op.operands[1])
        pred = op.attributes["predicate"].value
        t = self.vt(a.elem)
        regs = [self.fn.op("cmp", f"fcmp {pred} {t} {x}, {y}") for x, y in zip(self.components(a), self.components(b))]
        return [Val("i1", a.n, regs=regs)]

    def select(self, op: Operation) -> list[Val]:
        c, a, b = (self.value(v) for v in op.operands)
        t, tb = self.vt(a.elem), self.vt("i1")
        regs = [
            self.fn.op("sel", f"select {tb} {x}, {t} {y}, {t} {z}")
            for x, y, z in zip(self.components(c), self.components(a), self.components(b))
        ]
        return [Val(a.elem, a.n, regs=regs)]

    def cast(self, op: Operation) -> list[Val]:
        a = self.value(op.operands[0])
        dst = _elem(op.results[0].type)
        return [Val(dst, a.n, regs=[self.convert(x, a.elem, dst) for x in self.components(a)])]

    def constant(self, op: arith.ConstantOp) -> list[Val]:
        t = _elem(op.results[0].type)
        values = np.asarray(op.value).reshape(-1)
        return [Val(t, len(values), regs=[splat(v, t, self.B) for v in values.tolist()])]

    def _helper(self, op: Operation, elem: str) -> str:
        """`<B x elem> @name(<B x elem>)`: op's expansion on one component, defined once per module.

        `math.sin` and `math.cos` call one `{sin, cos} @x_sincos_<elem>_v<B>(x)` (out of line and
        `memory(none)`, so LLVM merges the sin and the cos of one value into one call: one
        argument reduction, one pair of kernels).  It computes `trig.sincos_f64`, the same
        operations as the two expansions, so the same bits; and when no lane has 2^22 ≤ |x| < inf
        it branches to the reduction without table reads (`reduce_pio2(fast=True)`, equal on those
        inputs).  Not in one-row code (B = 1), where the two expansions inlined run faster (LLVM
        merges their common scalar reduction itself; iiwa single calls 230-250 vs 270-310 ns)."""
        if op.name in ("math.sin", "math.cos") and "impl" not in op.attributes and self.B > 1:
            from ir.dialects.mathimpl import trig
            from ir.dialects.mathimpl.dsl import Emitter

            B, t = self.B, self.vt(elem)
            name = f"x_{op.name[5:]}_{elem}_v{B}"
            if self.mod.has(name):
                return name
            td, pair = self.vt("double"), f"x_sincos_{elem}_v{B}"
            st = f"{{{t}, {t}}}"
            if not self.mod.has(pair):
                fn = self.mod.add(Function(pair, st, [(t, "%x")], attrs="nounwind willreturn memory(none) noinline"))
                x = "%x" if elem == "double" else fn.op("xd", f"fpext {t} %x to {td}")
                ti = self.vt("i64")
                ab = fn.op("ab", f"and {ti} {fn.op('xb', f'bitcast {td} {x} to {ti}')}, {splat(0x7FFFFFFFFFFFFFFF, 'i64', B)}")
                below = fn.op("below", f"icmp ult {ti} {ab}, {splat(trig.FAST_LIMIT_BITS, 'i64', B)}")
                nonfinite = fn.op("nonfinite", f"icmp uge {ti} {ab}, {splat(0x7FF0000000000000, 'i64', B)}")
                ok = fn.op("ok", f"or {self.vt('i1')} {below}, {nonfinite}")
                red = f"llvm.vector.reduce.and.v{B}i1"
                self.mod.declare(red, f"declare i1 {{name}}({self.vt('i1')})")
                allfast = fn.op("allfast", f"call i1 @{red}({self.vt('i1')} {ok})")
                L = {k: fn.label(k) for k in ("fast", "full", "done")}
                fn.emit(f"br i1 {allfast}, label %{L['fast']}, label %{L['full']}")
                outs = []
                for label in ("fast", "full"):
                    fn.block(L[label])
                    em = Emitter((1,), op.location)
                    arg = Block([TensorType((1,), FloatType(64))]).args[0]
                    s_, c_ = trig.sincos_f64(em.wrap(arg), fast=label == "fast")
                    sub = FunctionLowering.__new__(FunctionLowering)
                    sub.ml, sub.f, sub.B, sub.mod, sub.fn = self.ml, None, B, self.mod, fn
                    sub.env = {id(arg): Val("double", 1, regs=[x])}
                    for o in em.ops:
                        sub.lower_op(o)
                    rs, rc = (sub.component(sub.env[id(v.v)], 0) for v in (s_, c_))
                    if elem != "double":
                        rs, rc = (fn.op("r", f"fptrunc {td} {v} to {t}") for v in (rs, rc))
                    outs.append((rs, rc, fn.current_block()))
                    fn.emit(f"br label %{L['done']}")
                fn.block(L["done"])
                vs = [fn.op("v", f"phi {t} " + ", ".join(f"[{o[k]}, %{o[2]}]" for o in outs)) for k in range(2)]
                res = "poison"
                for k, v in enumerate(vs):
                    res = fn.op("res", f"insertvalue {st} {res}, {t} {v}, {k}")
                fn.emit(f"ret {st} {res}")
            fn = self.mod.add(Function(name, t, [(t, "%x")], attrs="nounwind alwaysinline"))
            both = fn.op("sc", f"call {st} @{pair}({t} %x)")
            k = 0 if op.name == "math.sin" else 1
            fn.emit(f"ret {t} {fn.op('r', f'extractvalue {st} {both}, {k}')}")
            return name
        impl = op.attributes.get("impl")
        name = f"x_{op.name.split('.')[1]}{'_' + impl.value if impl is not None else ''}_{elem}_v{self.B}"
        if self.mod.has(name):
            return name
        one = TensorType((1,), op.operands[0].type.element)
        scalar = type(op)(operands=[Block([one]).args[0]], result_types=[one], attributes=dict(op.attributes))
        (arg,), ops, out = mathimpl.expansion(scalar)
        scalar.drop_uses()
        t = self.vt(elem)
        fn = self.mod.add(Function(name, t, [(t, "%x")], attrs="nounwind alwaysinline"))
        sub = FunctionLowering.__new__(FunctionLowering)
        sub.ml, sub.f, sub.B, sub.mod, sub.fn = self.ml, None, self.B, self.mod, fn
        sub.env = {id(arg): Val(elem, 1, regs=["%x"])}
        for o in ops:
            sub.lower_op(o)
        fn.emit(f"ret {t} {sub.component(sub.env[id(out)], 0)}")
        return name

    def math_function(self, op: Operation) -> list[Val]:
        """A function the C library has (`math.LIBM`): called there when the target says so (the
        host JIT's math="libm", what the frameworks call), else Timber's own expansion."""
        name = math.libm_function(op)
        if not self.ml.target.libm or name is None:
            return self.expansion(op)
        a = self.value(op.operands[0])
        if name in ("sin", "cos") and a.elem == "double" and self.B > 1:
            pair = self._libm_sincos()
            st = f"{{{self.vt('double')}, {self.vt('double')}}}"
            k = 0 if name == "sin" else 1
            regs = [
                self.fn.op(name, f"extractvalue {st} {self.fn.op('sc', f'call {st} @{pair}({self.vt(a.elem)} {x})')}, {k}")
                for x in self.components(a)
            ]
            return [Val(a.elem, a.n, regs=regs)]
        return [Val(a.elem, a.n, regs=[self._libm_call(name, x, a.elem) for x in self.components(a)])]

    def _libm_sincos(self) -> str:
        """`{sin, cos} @x_sincos_libm_v<B>(<B x double>)`: the C library's sincos per lane, out of
        line and `memory(none)`, so LLVM merges the sin and the cos of one value into one call
        (glibc's sincos gives the bits of its sin and cos; it is what Pinocchio calls)."""
        B = self.B
        pair = f"x_sincos_libm_v{B}"
        if self.mod.has(pair):
            return pair
        t, st = self.vt("double"), f"{{{self.vt('double')}, {self.vt('double')}}}"
        self.mod.declare("sincos", "declare void {name}(double, ptr, ptr) nounwind")
        fn = self.mod.add(Function(pair, st, [(t, "%x")], attrs="nounwind willreturn memory(none) noinline"))
        sp, cp = fn.alloca("s", "double", 1), fn.alloca("c", "double", 1)
        vs, vc = "poison", "poison"
        for i in range(B):
            e = fn.op("x", f"extractelement {t} %x, i64 {i}")
            fn.emit(f"call void @sincos(double {e}, ptr {sp}, ptr {cp})")
            vs = fn.op("vs", f"insertelement {t} {vs}, double {fn.op('s', f'load double, ptr {sp}')}, i64 {i}")
            vc = fn.op("vc", f"insertelement {t} {vc}, double {fn.op('c', f'load double, ptr {cp}')}, i64 {i}")
        res = fn.op("r", f"insertvalue {st} poison, {t} {vs}, 0")
        fn.emit(f"ret {st} {fn.op('r', f'insertvalue {st} {res}, {t} {vc}, 1')}")
        return pair

    def _libm_call(self, func: str, x: str, t: str) -> str:
        """`func` of every lane of `x` by the C library: exp/expf through LLVM's intrinsic (which
        becomes those calls: no fast-math flags, no vector library), the others lane by lane."""
        fn, mod, lanes = self.fn, self.mod, self.B
        vt, suffix = vec(lanes, t), "f" if t == "float" else ""
        if func == "exp":
            intrinsic = f"llvm.exp.v{lanes}{'f32' if t == 'float' else 'f64'}"
            mod.declare(intrinsic, f"declare {vt} {{name}}({vt})")
            return fn.op(func, f"call {vt} @{intrinsic}({vt} {x})")
        if func in libm.VIA_POW2:  # exp2(x) as pow(2, x): what numpy's `2 ** x` calls
            mod.declare("pow" + suffix, f"declare {t} {{name}}({t}, {t}) nounwind")
            # nobuiltin: else LLVM rewrites pow(2, x) into exp2(x), whose last bit differs
            call = lambda e: f"call {t} @pow{suffix}({t} 2.0, {t} {e}) nobuiltin"  # noqa: E731
        else:
            mod.declare(func + suffix, f"declare {t} {{name}}({t}) nounwind")
            call = lambda e: f"call {t} @{func}{suffix}({t} {e})"  # noqa: E731
        v = "poison"
        for i in range(lanes):
            e = fn.op(func + ".in", f"extractelement {vt} {x}, i64 {i}")
            r = fn.op(func + ".out", call(e))
            v = fn.op(func, f"insertelement {vt} {v}, {t} {r}, i64 {i}")
        return v

    # ----- integer and bit ops ------------------------------------------------------------------
    def shift(self, op: Operation, instr: str) -> list[Val]:
        """Shift by the amount mod the width (the op's definition; LLVM's own shift is poison past it)."""
        a, b = self.value(op.operands[0]), self.value(op.operands[1])
        t = self.vt(a.elem)
        mask = splat(int(a.elem[1:]) - 1, a.elem, self.B)
        regs = []
        for x, y in zip(self.components(a), self.components(b)):
            amount = self.fn.op("amt", f"and {t} {y}, {mask}")
            regs.append(self.fn.op(op.results[0].name_hint or "sh", f"{instr} {t} {x}, {amount}"))
        return [Val(a.elem, a.n, regs=regs)]

    def cmpi(self, op: Operation) -> list[Val]:
        a, b = self.value(op.operands[0]), self.value(op.operands[1])
        pred = op.attributes["predicate"].value
        t = self.vt(a.elem)
        regs = [self.fn.op("cmp", f"icmp {pred} {t} {x}, {y}") for x, y in zip(self.components(a), self.components(b))]
        return [Val("i1", a.n, regs=regs)]

    def convert_op(self, op: Operation, instr: str) -> list[Val]:
        """bitcast / sext / trunc / sitofp: one instruction per component."""
        a = self.value(op.operands[0])
        dst = _elem(op.results[0].type)
        s, d = self.vt(a.elem), self.vt(dst)
        return [Val(dst, a.n, regs=[self.fn.op("cv", f"{instr} {s} {x} to {d}") for x in self.components(a)])]

    def fptosi(self, op: Operation) -> list[Val]:
        """Toward zero, saturating, NaN -> 0: LLVM's fptosi.sat, exactly the op's definition."""
        a = self.value(op.operands[0])
        dst = _elem(op.results[0].type)
        s, d = self.vt(a.elem), self.vt(dst)
        name = f"llvm.fptosi.sat.v{self.B}{dst}.v{self.B}{'f32' if a.elem == 'float' else 'f64'}"
        self.mod.declare(name, f"declare {d} {{name}}({s})")
        return [Val(dst, a.n, regs=[self.fn.op("fi", f"call {d} @{name}({s} {x})") for x in self.components(a)])]

    def lookup(self, op: arith.LookupOp) -> list[Val]:
        """table[i & (N - 1)]: a gather from a constant table (shared by every use of equal tables)."""
        a = self.value(op.operands[0])
        table = np.ascontiguousarray(op.attributes["table"].values)
        dst = _elem(op.results[0].type)
        key = ("lookup", dst, table.tobytes())
        sym = self.ml.const_tables.get(key)
        if sym is None:
            sym = self.ml.const_tables[key] = self.mod.pool.add("lut", table)
        t = self.vt(a.elem)
        regs = []
        for x in self.components(a):
            idx = self.fn.op("li", f"and {t} {x}, {splat(len(table) - 1, a.elem, self.B)}")
            regs.append(gather(self.fn, self.mod, dst, sym, idx, self.B, a.elem, hint="lv"))
        return [Val(dst, a.n, regs=regs)]

    def extract(self, op: arith.ExtractOp) -> list[Val]:
        a = self.value(op.operands[0])
        return [Val(a.elem, 1, regs=[self.component(a, op.attributes["index"].value)])]

    def broadcast(self, op: arith.BroadcastOp) -> list[Val]:
        a = self.value(op.operands[0])
        x = self.component(a, 0)
        return [Val(a.elem, op.results[0].type.shape[0], regs=[x] * op.results[0].type.shape[0])]

    def concat(self, op: arith.ConcatOp) -> list[Val]:
        """The operands' components, in order: nothing is computed."""
        vals = [self.value(v) for v in op.operands]
        regs = [r for v in vals for r in self.components(v)]
        return [Val(vals[0].elem, len(regs), regs=regs)]

    def argmax(self, op: Operation) -> list[Val]:
        """First index of the largest value: replace the best only when `a_i > best`."""
        a = self.value(op.operands[0])
        fn, t, ti, tb = self.fn, self.vt(a.elem), self.vt("i64"), self.vt("i1")
        xs = self.components(a)
        best, idx = xs[0], splat(0, "i64", self.B)
        for i, x in enumerate(xs[1:], start=1):
            upd = fn.op("upd", f"fcmp ogt {t} {x}, {best}")
            best = fn.op("best", f"select {tb} {upd}, {t} {x}, {t} {best}")
            idx = fn.op("idx", f"select {tb} {upd}, {ti} {splat(i, 'i64', self.B)}, {ti} {idx}")
        return [Val("i64", 1, regs=[idx])]

    def call(self, op: func.CallOp) -> list[Val]:
        callee = self.ml.module.lookup(op.callee)
        args = [self.in_memory(self.value(v), _elem(v.type)) for v in op.operands]
        outs = []
        for r in op.results:
            n = r.type.shape[0] if isinstance(r.type, TensorType) else 1
            outs.append(Val(_elem(r.type), n, ptr=self.fn.alloca(r.name_hint or "res", _elem(r.type), n * self.B)))
        params = ", ".join(f"ptr {p}" for p in args + [o.ptr for o in outs])
        self.fn.emit(f"call void @{_block_name(callee.sym_name, self.B)}({params})")
        return outs

    # ----- linear ------------------------------------------------------------------------------
    def affine(self, op: linear.AffineOp) -> list[Val]:
        """acc_k = bias_k, then acc_k += x_j * w_kj for j in order (a NaN x_j adds nothing
        with missing = "skip")."""
        x = self.value(op.operands[0])
        w = np.asarray(op.attributes["weights"].values)
        bias = np.asarray(op.attributes["bias"].values)
        skip = op.attributes["missing"].value == "skip"
        et = _elem(op.results[0].type)
        fn, t, tb = self.fn, self.vt(et), self.vt("i1")
        K, N = w.shape

        def step(accs: list[str], xj: str, wj: list[str]) -> list[str]:
            xv = self.convert(xj, x.elem, et, hint="xv")
            nan = fn.op("nan", f"fcmp uno {t} {xv}, {xv}") if skip else None
            out = []
            for a, wk in zip(accs, wj):
                term = fn.op("term", f"fmul {t} {xv}, {wk}")
                s = fn.op("acc", f"fadd {t} {a}, {term}")
                out.append(fn.op("acc", f"select {tb} {nan}, {t} {a}, {t} {s}") if skip else s)
            return out

        accs = [splat(b, et, self.B) for b in bias.tolist()]
        if N <= AFFINE_UNROLL:
            for j in range(N):
                accs = step(accs, self.component(x, j), [splat(w[k, j], et, self.B) for k in range(K)])
            return [Val(et, K, regs=accs)]
        # many inputs: loop over j with the weights in a table [N][K]
        table = self.mod.pool.add("affine", np.ascontiguousarray(w.T))
        xp = self.in_memory(x, x.elem)
        pre = fn.current_block()
        head, body, done = fn.label("aff_head"), fn.label("aff_body"), fn.label("aff_done")
        j, j_next = fn.tmp("j"), fn.tmp("j.next")
        phis = [fn.tmp("acc") for _ in range(K)]
        fn.emit(f"br label %{head}")
        fn.block(head)
        fn.emit(f"{j} = phi i64 [0, %{pre}], [{j_next}, %{body}]")
        phi_lines = []
        for _ in phis:
            phi_lines.append(len(fn.lines))
            fn.emit("")  # filled in below, once the loop body's values exist
        more = fn.op("more", f"icmp ult i64 {j}, {N}")
        fn.emit(f"br i1 {more}, label %{body}, label %{done}")
        fn.block(body)
        off = fn.op("xo", f"mul i64 {j}, {self.B}")
        xj = fn.op("xj", f"load {self.vt(x.elem)}, ptr {fn.op('xjp', f'getelementptr {x.elem}, ptr {xp}, i64 {off}')}, align 4")
        wrow = fn.op("wrow", f"mul i64 {j}, {K}")
        wj = []
        for k in range(K):
            wi = fn.op("wi", f"add i64 {wrow}, {k}")
            ws = fn.op("w", f"load {et}, ptr {fn.op('wp', f'getelementptr {et}, ptr {table}, i64 {wi}')}")
            ins = fn.op("wv", f"insertelement {t} poison, {et} {ws}, i64 0")
            wj.append(fn.op("wv", f"shufflevector {t} {ins}, {t} poison, {self.vt('i32')} zeroinitializer"))
        new = step(phis, xj, wj)
        for line, a, a0, an in zip(phi_lines, phis, accs, new):
            fn.lines[line] = f"  {a} = phi {t} [{a0}, %{pre}], [{an}, %{body}]"
        fn.emit(f"{j_next} = add i64 {j}, 1")
        fn.emit(f"br label %{head}")
        fn.block(done)
        return [Val(et, K, regs=phis)]

    # ----- trees ---------------------------------------------------------------------------------
    def ensemble(self, op: tree.EnsembleOp) -> list[Val]:
        p = self.ml.plan(op)
        fn, B = self.fn, self.B
        segs = p.segments_for(B)
        x = self.value(op.operands[0])
        xt = self.in_memory(x, p.compare)
        xr = self.in_memory(x, x.elem) if any(isinstance(s, GeneralSegment) and s.linear for s in segs) else xt
        acc = fn.alloca(op.results[0].name_hint or "acc", p.acc, p.n_outputs * B)
        C = min(B, BLOCK_ROWS)  # big blocks: BLOCK_ROWS lanes at a time
        for k, v in enumerate(p.init.tolist()):

            def init(j: str, k=k, v=v) -> None:
                at = fn.op("io", f"add i64 {fn.op('ij', f'mul i64 {j}, {C}')}, {k * B}")
                ptr = fn.op("ip", f"getelementptr {p.acc}, ptr {acc}, i64 {at}")
                fn.emit(f"store {vec(C, p.acc)} {splat(v, p.acc, C)}, ptr {ptr}, align 4")

            for_each(fn, B // C, "ik", init)
        kc = KernelContext(self.mod, B, self.ml.target)
        raw = x.elem if xr != xt else p.compare
        aware = p.aware_for(segs)
        if not aware or self.ml.target.small:
            # small code: the missing-aware kernels alone (they are exact on every row)
            self._segments(kc, p, segs, xt, xr, raw, acc, aware=aware)
            return [Val(p.acc, p.n_outputs, ptr=acc)]
        # blocks with a missing value anywhere need the aware heap kernels
        anymiss = self._scan_missing(p, xt)
        L = {k: fn.label(k) for k in ("aware", "plain", "trees_done")}
        fn.emit(f"br i1 {anymiss}, label %{L['aware']}, label %{L['plain']}")
        for variant in ("aware", "plain"):
            fn.block(L[variant])
            self._segments(kc, p, segs, xt, xr, raw, acc, aware=variant == "aware")
            fn.emit(f"br label %{L['trees_done']}")
        fn.block(L["trees_done"])
        return [Val(p.acc, p.n_outputs, ptr=acc)]

    def _segments(self, kc: KernelContext, p: EnsemblePlan, segs: list, xt: str, xr: str, raw: str, acc: str, aware: bool) -> None:
        """Call the kernels of every segment, in tree order (`raw`: element type of `xr`)."""
        for s in segs:
            tabs = self.ml.tables(s)
            n = len(s.trees)
            if isinstance(s, BranchSegment):
                for name in kernels.branch_kernels(kc, p, s, self.ml.branch_tag(s)):
                    self.mod.call(self.fn, name, [xt, acc, tabs["T"], tabs["LV"], tabs.get("WD", "null")])
                continue
            if isinstance(s, BitvectorSegment):
                name = kernels.bitvector_kernel(kc, p, aware and s.needs_nr)
                args = [xt, acc] + [tabs[k] for k in kernels.BITVECTOR_COLUMNS]
            elif isinstance(s, (HeapSegment, WalkSegment, ObliviousSegment)):
                flags = (s.has_eq, s.cats is not None)
                seg_aware = aware and (s.needs_nr or s.needs_zero)
                cats = [tabs.get(k, "null") for k in ("CS", "CL", "WD")]
                if isinstance(s, (HeapSegment, ObliviousSegment)):
                    make = kernels.heap_kernel if isinstance(s, HeapSegment) else kernels.oblivious_kernel
                    name = make(kc, p, s.depth, s.dim, seg_aware, flags)
                    args = [xt, acc, tabs["W"], tabs["T"], tabs["LV"], tabs["O"], *cats]
                else:
                    name = kernels.walk_kernel(kc, p, s.dim, seg_aware, flags)
                    args = [xt, acc] + [tabs[k] for k in ("W", "T", "Lf", "LV", "R", "O")] + cats
            else:
                name = kernels.general_kernel(kc, p, s.dim, s.linear, raw)
                args = [xt, xr, acc] + [tabs[c] for c in kernels.node_columns(s.linear)]
            self.mod.call(self.fn, name, args + [str(n)])

    def _scan_missing(self, p: EnsemblePlan, xt: str) -> str:
        """i1: does the block hold a NaN (or, with zero-as-missing splits, a |v| <= 1e-35)?"""
        fn = self.fn
        B = min(self.B, BLOCK_ROWS)  # big blocks: scanned as more features of BLOCK_ROWS lanes
        t, tb = vec(B, p.compare), vec(B, "i1")
        pre = fn.current_block()
        head, body, done = fn.label("scan_head"), fn.label("scan_body"), fn.label("scan_done")
        k, k_next, seen, seen_next = fn.tmp("sk"), fn.tmp("sk.next"), fn.tmp("seen"), fn.tmp("seen.next")
        fn.emit(f"br label %{head}")
        fn.block(head)
        fn.emit(f"{k} = phi i64 [0, %{pre}], [{k_next}, %{body}]")
        fn.emit(f"{seen} = phi {tb} [zeroinitializer, %{pre}], [{seen_next}, %{body}]")
        more = fn.op("more", f"icmp ult i64 {k}, {p.n_features * (self.B // B)}")
        fn.emit(f"br i1 {more}, label %{body}, label %{done}")
        fn.block(body)
        off = fn.op("so", f"mul i64 {k}, {B}")
        x = fn.op("sx", f"load {t}, ptr {fn.op('sp', f'getelementptr {p.compare}, ptr {xt}, i64 {off}')}, align 4")
        m = fn.op("nan", f"fcmp uno {t} {x}, {x}")
        if p.zero:
            fabs = kernels.declare_unary(self.mod, "fabs", p.compare, B)
            ax = fn.op("ax", f"call {t} @{fabs}({t} {x})")
            small = fn.op("small", f"fcmp ole {t} {ax}, {splat(ZERO_THRESHOLD, p.compare, B)}")
            m = fn.op("m", f"or {tb} {m}, {small}")
        fn.emit(f"{seen_next} = or {tb} {seen}, {m}")
        fn.emit(f"{k_next} = add i64 {k}, 1")
        fn.emit(f"br label %{head}")
        fn.block(done)
        red = f"llvm.vector.reduce.or.v{B}i1"
        self.mod.declare(red, f"declare i1 {{name}}({tb})")
        return fn.op("anymiss", f"call i1 @{red}({tb} {seen})")


def _binary(instr: str):
    return lambda fl, op: fl.binary(op, instr)


# The dispatch table: one entry per op the back-end lowers.
LOWERINGS = {
    arith.ConstantOp: FunctionLowering.constant,
    arith.AddFOp: _binary("fadd"),
    arith.SubFOp: _binary("fsub"),
    arith.MulFOp: _binary("fmul"),
    arith.DivFOp: _binary("fdiv"),
    arith.MaximumFOp: FunctionLowering.extremum,
    arith.MinimumFOp: FunctionLowering.extremum,
    arith.NegFOp: FunctionLowering.negf,
    arith.CmpFOp: FunctionLowering.cmpf,
    arith.SelectOp: FunctionLowering.select,
    arith.ExtFOp: FunctionLowering.cast,
    arith.TruncFOp: FunctionLowering.cast,
    arith.SIToFPOp: FunctionLowering.cast,
    arith.AddIOp: _binary("add"),
    arith.SubIOp: _binary("sub"),
    arith.MulIOp: _binary("mul"),
    arith.AndIOp: _binary("and"),
    arith.OrIOp: _binary("or"),
    arith.XOrIOp: _binary("xor"),
    arith.ShLIOp: lambda fl, op: fl.shift(op, "shl"),
    arith.ShRSIOp: lambda fl, op: fl.shift(op, "ashr"),
    arith.ShRUIOp: lambda fl, op: fl.shift(op, "lshr"),
    arith.CmpIOp: FunctionLowering.cmpi,
    arith.BitcastOp: lambda fl, op: fl.convert_op(op, "bitcast"),
    arith.ExtSIOp: lambda fl, op: fl.convert_op(op, "sext"),
    arith.TruncIOp: lambda fl, op: fl.convert_op(op, "trunc"),
    arith.FPToSIOp: FunctionLowering.fptosi,
    arith.LookupOp: FunctionLowering.lookup,
    arith.ExtractOp: FunctionLowering.extract,
    arith.BroadcastOp: FunctionLowering.broadcast,
    arith.ConcatOp: FunctionLowering.concat,
    # the C library's functions where the target calls it (host JIT, math="libm"); else expanded
    **{OP_REGISTRY[name]: FunctionLowering.math_function for name in math.LIBM},
    math.ArgmaxOp: FunctionLowering.argmax,
    linear.AffineOp: FunctionLowering.affine,
    func.CallOp: FunctionLowering.call,
    tree.EnsembleOp: FunctionLowering.ensemble,
}


def lowering_of(op_class: type) -> str | None:
    """How this back-end lowers an op kind: "table", "expansion" (its `arith` expansion), or None
    (lowering it raises "the LLVM back-end cannot lower ...")."""
    return common_lowering_of(LOWERINGS, op_class)


# ----- kernel dialect (ir/dialects/kernel.py): loops over stored vectors --------------------------

from ir.dialects import kernel as _kernel  # noqa: E402


def _kernel_sqrt(fl: FunctionLowering, op: Operation) -> list[Val]:
    """IEEE sqrt of each lane (`llvm.sqrt`, one instruction)."""
    a = fl.value(op.operands[0])
    name = kernels.declare_unary(fl.mod, "sqrt", a.elem, fl.B)
    t = fl.vt(a.elem)
    return [Val(a.elem, a.n, regs=[fl.fn.op("sqrt", f"call {t} @{name}({t} {x})") for x in fl.components(a)])]


def _term(fn: Function, t: str, term: str, x: str, v: str, fabs: str | None) -> str:
    """x·v ("dot"), (x − v)² ("sq") or |x − v| ("abs"): one term of a table loop's sum."""
    if term == "dot":
        return fn.op("xv", f"fmul {t} {x}, {v}")
    d = fn.op("d", f"fsub {t} {x}, {v}")
    return fn.op("dd", f"fmul {t} {d}, {d}") if term == "sq" else fn.op("ad", f"call {t} @{fabs}({t} {d})")


def _accumulate_term(fn: Function, t: str, term: str, x: str, v: str, accp: str, fabs: str | None) -> None:
    """acc += the term (`_term`) at accp: one step of a table loop, in order."""
    acc = fn.op("acc", f"load {t}, ptr {accp}, align 8")
    fn.emit(f"store {t} {fn.op('acc', f'fadd {t} {acc}, {_term(fn, t, term, x, v, fabs)}')}, ptr {accp}, align 8")


def _kernel_distances(fl: FunctionLowering, op: Operation) -> list[Val]:
    """out[i] = Σ_j (x_j - v_ij)² (or |x_j - v_ij|), j in order from 0.0: a loop over the stored
    vectors (a table [M][N]), each step a vector over the block's rows."""
    term = "sq" if op.attributes["metric"].value == "sqeuclidean" else "abs"
    return _table_loop(fl, op, term, None)


def _kernel_gram(fl: FunctionLowering, op: Operation) -> list[Val]:
    """libsvm's kernel values: the sum of kernel.distances' loop (squares for rbf, products
    otherwise), then the kernel's formula (`gram_transform`: exp/tanh as math.exp/math.tanh lower
    here, the C library's under math="libm") on the sum, inside the loop: one copy of the code
    however many support vectors."""
    return _table_loop(fl, op, "sq" if op.squared else "dot", _kernel.gram_transform(op), op.bias, _kernel.activation_transform(op))


def _scalar_ops(fl: FunctionLowering, arg, ops, out, x: str, et: str, lanes: int | None = None) -> str:
    """Lower `ops` (elementwise, on tensor<1>) on the vector `x` (of the block's B lanes, or of
    `lanes`) in place; their result."""
    sub = FunctionLowering.__new__(FunctionLowering)
    sub.ml, sub.f, sub.B, sub.mod, sub.fn = fl.ml, None, lanes or fl.B, fl.mod, fl.fn
    sub.env = {id(arg): Val(et, 1, regs=[x])}
    for o in ops:
        sub.lower_op(o)
    return sub.component(sub.env[id(out)], 0)


SV_GROUP = 8  # one row (B = 1): this many stored vectors side by side in one vector
TABLE_LOOP_CHUNK_BYTES = 256  # lanes of a table loop's sums: 8 AVX2 registers (see `_table_loop`)


def _table_loop(fl: FunctionLowering, op: Operation, term: str, transform, bias=None, activation=None) -> list[Val]:
    if fl.B == 1 and op.attributes["vectors"].type.shape[0] > SV_GROUP:
        return _table_loop_one_row(fl, op, term, transform, bias, activation)
    x = fl.value(op.operands[0])
    v = np.ascontiguousarray(np.asarray(op.attributes["vectors"].values))
    et = _elem(op.results[0].type)
    fn, B = fl.fn, fl.B
    # The block's rows in chunks of C lanes (8 AVX2 registers), whose sums stay in registers
    # through the loop over features (at 64 f64 lanes they lived on the stack: a load and a
    # store per term); each lane's sum is still over j in order from 0.0: the same bits.
    C = B
    while C * byte_size(et) > TABLE_LOOP_CHUNK_BYTES and C % 2 == 0 and C > 1:
        C //= 2
    t = vec(C, et)
    M, N = v.shape
    table = fl.mod.pool.add("vectors", v)
    btable = fl.mod.pool.add("bias", np.ascontiguousarray(bias)) if bias is not None else None
    xp = fl.in_memory(x, et)
    out = fn.alloca(op.results[0].name_hint or "dist", et, M * B)
    fabs = kernels.declare_unary(fl.mod, "fabs", et, C) if term == "abs" else None

    def broadcast(p: str, hint: str) -> str:
        return kernels._broadcast(fn, et, C, fn.op(hint, f"load {et}, ptr {p}"), hint)

    def one_chunk(c: str) -> None:
        lane0 = fn.op("lane0", f"mul i64 {c}, {C}")

        def one_vector(i: str) -> None:
            row = fn.op("vrow", f"mul i64 {i}, {N}")
            pre = fn.current_block()
            head, body, done = fn.label("dj_head"), fn.label("dj_body"), fn.label("dj_done")
            j, j_next, acc, acc_next = fn.tmp("dj"), fn.tmp("dj.next"), fn.tmp("acc"), fn.tmp("acc.next")
            fn.emit(f"br label %{head}")
            fn.block(head)
            fn.emit(f"{j} = phi i64 [0, %{pre}], [{j_next}, %{body}]")
            fn.emit(f"{acc} = phi {t} [zeroinitializer, %{pre}], [{acc_next}, %{body}]")
            fn.emit(f"br i1 {fn.op('more', f'icmp ult i64 {j}, {N}')}, label %{body}, label %{done}")
            fn.block(body)
            xo = fn.op("xo", f"add i64 {fn.op('xo', f'mul i64 {j}, {B}')}, {lane0}")
            xj = fn.op("xj", f"load {t}, ptr {fn.op('xjp', f'getelementptr {et}, ptr {xp}, i64 {xo}')}, align 8")
            vb = broadcast(fn.op("vp", f"getelementptr {et}, ptr {table}, i64 {fn.op('vi', f'add i64 {row}, {j}')}"), "vv")
            fn.emit(f"{acc_next} = fadd {t} {acc}, {_term(fn, t, term, xj, vb, fabs)}")
            fn.emit(f"{j_next} = add i64 {j}, 1")
            fn.emit(f"br label %{head}")
            fn.block(done)
            res = acc
            if transform is not None:
                res = _scalar_ops(fl, *transform, res, et, lanes=C)
            if bias is not None:
                bv = broadcast(fn.op("bp", f"getelementptr {et}, ptr {btable}, i64 {i}"), "bv")
                res = fn.op("biased", f"fadd {t} {res}, {bv}")
            if activation is not None:
                res = _scalar_ops(fl, *activation, res, et, lanes=C)
            do = fn.op("do", f"add i64 {fn.op('do', f'mul i64 {i}, {B}')}, {lane0}")
            fn.emit(f"store {t} {res}, ptr {fn.op('dst', f'getelementptr {et}, ptr {out}, i64 {do}')}, align 8")

        if M <= 8:
            for i in range(M):
                one_vector(str(i))
        else:
            _loop(fn, M, "di", one_vector)

    if B // C == 1:
        one_chunk("0")
    else:
        _loop(fn, B // C, "dc", one_chunk)
    return [Val(et, M, ptr=out)]


def _table_loop_one_row(fl: FunctionLowering, op: Operation, term: str, transform, bias, activation) -> list[Val]:
    """One row: SV_GROUP stored vectors at a time, side by side in the lanes of one vector (the
    table regrouped [M/G][N][G], zero-padded), so that G independent sums advance together (each
    still summed over j in order: the same bits) instead of one chain of dependent adds."""
    G = SV_GROUP
    x = fl.value(op.operands[0])
    v = np.asarray(op.attributes["vectors"].values)
    et = _elem(op.results[0].type)
    fn, t, ti = fl.fn, vec(G, et), vec(G, "i32")
    M, N = v.shape
    ng = -(-M // G)
    grouped = np.zeros((ng * G, N), v.dtype)
    grouped[:M] = v
    table = fl.mod.pool.add("vgroups", np.ascontiguousarray(grouped.reshape(ng, G, N).transpose(0, 2, 1)))
    btable = None
    if bias is not None:
        b = np.zeros(ng * G, np.asarray(bias).dtype)
        b[:M] = bias
        btable = fl.mod.pool.add("bias", b)
    xp = fl.in_memory(x, et)
    out = fn.alloca(op.results[0].name_hint or "dist", et, ng * G)
    accp = fn.alloca("gacc", et, G)
    fabs = kernels.declare_unary(fl.mod, "fabs", et, G) if term == "abs" else None

    def one_group(g: str) -> None:
        fn.emit(f"store {t} zeroinitializer, ptr {accp}, align 8")
        base = fn.op("gbase", f"mul i64 {g}, {N * G}")

        def one_feature(j: str) -> None:
            xs = fn.op("xj", f"load {et}, ptr {fn.op('xjp', f'getelementptr {et}, ptr {xp}, i64 {j}')}")
            xi = fn.op("xv", f"insertelement {t} poison, {et} {xs}, i64 0")
            xb = fn.op("xv", f"shufflevector {t} {xi}, {t} poison, {ti} zeroinitializer")
            off = fn.op("vo", f"add i64 {base}, {fn.op('vj', f'mul i64 {j}, {G}')}")
            vv = fn.op("v", f"load {t}, ptr {fn.op('vp', f'getelementptr {et}, ptr {table}, i64 {off}')}, align 8")
            _accumulate_term(fn, t, term, xb, vv, accp, fabs)

        for_each(fn, N, "gj", one_feature)
        res = fn.op("acc", f"load {t}, ptr {accp}, align 8")
        if transform is not None:
            res = _scalar_ops(fl, *transform, res, et, lanes=G)
        o = fn.op("go", f"mul i64 {g}, {G}")
        if btable is not None:
            bv = fn.op("b", f"load {t}, ptr {fn.op('bp', f'getelementptr {et}, ptr {btable}, i64 {o}')}, align 8")
            res = fn.op("biased", f"fadd {t} {res}, {bv}")
        if activation is not None:
            res = _scalar_ops(fl, *activation, res, et, lanes=G)
        fn.emit(f"store {t} {res}, ptr {fn.op('dst', f'getelementptr {et}, ptr {out}, i64 {o}')}, align 8")

    _loop(fn, ng, "dg", one_group)
    return [Val(et, M, ptr=out)]


def _loop(fn: Function, n: int, hint: str, body) -> None:
    """`for_each` that always loops (its body may be large: a kernel formula, a helper call)."""
    head, loop, latch, done = (fn.label(hint + s) for s in ("_head", "_loop", "_latch", "_done"))
    pre = fn.current_block()
    k, k_next = fn.tmp(hint), fn.tmp(hint + ".next")
    fn.emit(f"br label %{head}")
    fn.block(head)
    fn.emit(f"{k} = phi i64 [0, %{pre}], [{k_next}, %{latch}]")
    fn.emit(f"br label %{loop}")
    fn.block(loop)
    body(k)
    fn.emit(f"br label %{latch}")
    fn.block(latch)
    fn.emit(f"{k_next} = add i64 {k}, 1")
    more = fn.op(hint + ".more", f"icmp ult i64 {k_next}, {n}")
    fn.emit(f"br i1 {more}, label %{head}, label %{done}")
    fn.block(done)


def _per_lane(fl: FunctionLowering, name: str, define, ins: list[tuple[Val, str]], out_elem: str, n_out: int) -> list[Val]:
    """Call the scalar function `name(ptr in..., ptr out, i64 stride)` (made by `define(fn)` once per
    module) on each lane of the block: element i of an operand is at `ptr + i * stride`.  For
    ops whose work per row branches (a data-dependent loop, an insertion): scalar code compiles
    in a fraction of the time of B-lane vector code with masks and runs as fast."""
    mod, fn, B = fl.mod, fl.fn, fl.B
    if not mod.has(name):
        params = [("ptr noalias", f"%in{i}") for i in range(len(ins))] + [("ptr noalias", "%out"), ("i64", "%stride")]
        define(mod.add(Function(name, "void", params)))
    ptrs = [fl.in_memory(v, t) for v, t in ins]
    out = fn.alloca("lanes", out_elem, n_out * B)

    def lane(j: str) -> None:
        args = [fn.op("lp", f"getelementptr {t}, ptr {p}, i64 {j}") for p, (_, t) in zip(ptrs, ins)]
        o = fn.op("lo", f"getelementptr {out_elem}, ptr {out}, i64 {j}")
        fn.emit(f"call void @{name}({', '.join(f'ptr {a}' for a in args)}, ptr {o}, i64 {B})")

    if B == 1:
        lane("0")
    else:
        _loop(fn, B, "lane", lane)
    return [Val(out_elem, n_out, ptr=out)]


def _kernel_topk(fl: FunctionLowering, op: Operation) -> list[Val]:
    """The k smallest, stable, NaN last, row by row: one pass over the M values keeping a sorted
    list of k (value, index) pairs in registers; a value enters before slot s when the slot is
    still empty (index M) or the value sorts strictly before the slot's (later equal values stay
    behind earlier ones); the slots shift by selects."""
    d = fl.value(op.operands[0])
    k = op.attributes["k"].value
    M = op.operands[0].type.shape[0]
    et = d.elem

    def define(fn: Function) -> None:
        head, body, done = fn.label("head"), fn.label("body"), fn.label("done")
        fn.emit("br label %entry.loop")
        fn.block("entry.loop")
        fn.emit(f"br label %{head}")
        i, i_next = fn.tmp("i"), fn.tmp("i.next")
        bv = [fn.tmp("bv") for _ in range(k)]
        bi = [fn.tmp("bi") for _ in range(k)]
        fn.block(head)
        fn.emit(f"{i} = phi i64 [0, %entry.loop], [{i_next}, %{body}]")
        phi_lines = []
        for _ in range(2 * k):
            phi_lines.append(len(fn.lines))
            fn.emit("")
        more = fn.op("more", f"icmp ult i64 {i}, {M}")
        fn.emit(f"br i1 {more}, label %{body}, label %{done}")
        fn.block(body)
        off = fn.op("off", f"mul i64 {i}, %stride")
        v = fn.op("v", f"load {et}, ptr {fn.op('vp', f'getelementptr {et}, ptr %in0, i64 {off}')}")
        vnum = fn.op("num", f"fcmp ord {et} {v}, {v}")
        ins = []
        for s in range(k):
            empty = fn.op("empty", f"icmp eq i64 {bi[s]}, {M}")
            lt = fn.op("lt", f"fcmp olt {et} {v}, {bv[s]}")
            bnan = fn.op("bnan", f"fcmp uno {et} {bv[s]}, {bv[s]}")
            before = fn.op("before", f"or i1 {lt}, {fn.op('nanlt', f'and i1 {bnan}, {vnum}')}")
            ins.append(fn.op("ins", f"or i1 {empty}, {before}"))
        nv, ni = [], []
        for s in range(k):
            cv = v if s == 0 else fn.op("cv", f"select i1 {ins[s - 1]}, {et} {bv[s - 1]}, {et} {v}")
            ci = i if s == 0 else fn.op("ci", f"select i1 {ins[s - 1]}, i64 {bi[s - 1]}, i64 {i}")
            nv.append(fn.op("nv", f"select i1 {ins[s]}, {et} {cv}, {et} {bv[s]}"))
            ni.append(fn.op("ni", f"select i1 {ins[s]}, i64 {ci}, i64 {bi[s]}"))
        fn.emit(f"{i_next} = add i64 {i}, 1")
        fn.emit(f"br label %{head}")
        for s in range(k):
            fn.lines[phi_lines[2 * s]] = f"  {bv[s]} = phi {et} [{splat(0.0, et, 0)}, %entry.loop], [{nv[s]}, %{body}]"
            fn.lines[phi_lines[2 * s + 1]] = f"  {bi[s]} = phi i64 [{M}, %entry.loop], [{ni[s]}, %{body}]"
        fn.block(done)
        for s in range(k):
            o = fn.op("o", f"mul i64 %stride, {s}")
            fn.emit(f"store i64 {bi[s]}, ptr {fn.op('op', f'getelementptr i64, ptr %out, i64 {o}')}")
        fn.emit("ret void")

    return _per_lane(fl, f"kernel_topk_{et}_{M}_{k}", define, [(d, et)], "i64", k)


def _kernel_couple(fl: FunctionLowering, op: Operation) -> list[Val]:
    """libsvm's multiclass_probability row by row (`kernel.coupling_program`): the setup, then at
    most max(100, k) rounds, left as soon as the error is below eps."""
    r = fl.value(op.operands[0])
    prog = _kernel.coupling_program(op.attributes["classes"].value)
    t = "double"

    def define(fn: Function) -> None:
        fabs = kernels.declare_unary(fl.mod, "fabs", t, 0)
        env = {}
        for i, name in enumerate(prog.inputs()):
            o = fn.op("o", f"mul i64 %stride, {i}")
            env[name] = fn.op(name, f"load {t}, ptr {fn.op('ip', f'getelementptr {t}, ptr %in0, i64 {o}')}")

        def run(statements):
            for dst, o, a, b in statements:
                x = env[a] if isinstance(a, str) else splat(a, t, 0)
                y = (env[b] if isinstance(b, str) else splat(b, t, 0)) if b is not None else None
                if o in ("add", "sub", "mul", "div"):
                    env[dst] = fn.op(dst, f"f{o} {t} {x}, {y}")
                elif o == "neg":
                    env[dst] = fn.op(dst, f"fneg {t} {x}")
                elif o == "abs":
                    env[dst] = fn.op(dst, f"call {t} @{fabs}({t} {x})")
                elif o == "set":
                    env[dst] = x
                else:  # maxgt
                    gt = fn.op("gt", f"fcmp ogt {t} {x}, {y}")
                    env[dst] = fn.op(dst, f"select i1 {gt}, {t} {x}, {t} {y}")

        run(prog.setup)
        ps = [f"p{j}" for j in range(prog.k)]
        p0 = [env[p] for p in ps]
        pre = fn.current_block()
        head, check, upd, done = fn.label("head"), fn.label("check"), fn.label("update"), fn.label("done")
        it, it_next = fn.tmp("it"), fn.tmp("it.next")
        phis = [fn.tmp("p") for _ in ps]
        fn.emit(f"br label %{head}")
        fn.block(head)
        fn.emit(f"{it} = phi i64 [0, %{pre}], [{it_next}, %{upd}]")
        phi_lines = []
        for _ in ps:
            phi_lines.append(len(fn.lines))
            fn.emit("")
        fn.emit(f"br i1 {fn.op('in', f'icmp ult i64 {it}, {prog.iters}')}, label %{check}, label %{done}")
        fn.block(check)
        env.update(zip(ps, phis))
        run(prog.check)
        conv = fn.op("conv", f"fcmp olt {t} {env['max_error']}, {splat(prog.eps, t, 0)}")
        fn.emit(f"br i1 {conv}, label %{done}, label %{upd}")
        fn.block(upd)
        run(prog.update)
        fn.emit(f"{it_next} = add i64 {it}, 1")
        fn.emit(f"br label %{head}")
        for line, ph, a0, p in zip(phi_lines, phis, p0, ps):
            fn.lines[line] = f"  {ph} = phi {t} [{a0}, %{pre}], [{env[p]}, %{upd}]"
        fn.block(done)
        for j, ph in enumerate(phis):
            o = fn.op("o", f"mul i64 %stride, {j}")
            fn.emit(f"store {t} {ph}, ptr {fn.op('op', f'getelementptr {t}, ptr %out, i64 {o}')}")
        fn.emit("ret void")

    return _per_lane(fl, f"kernel_couple_{prog.k}", define, [(r, t)], t, prog.k)


def _kernel_take(fl: FunctionLowering, op: Operation) -> list[Val]:
    """v[s] = d[clamp(i[s])] per lane: a gather from the [M][B] block of d at i*B + lane."""
    d, idx = fl.value(op.operands[0]), fl.value(op.operands[1])
    M = op.operands[0].type.shape[0]
    fn, B, ti = fl.fn, fl.B, fl.vt("i64")
    dp = fl.in_memory(d, d.elem)
    lanes = fn.op("lanes", f"zext {fl.vt('i32')} {iota(B)} to {ti}")
    regs = []
    zero, last, rows = splat(0, "i64", B), splat(M - 1, "i64", B), splat(B, "i64", B)
    tb = fl.vt("i1")
    for i in fl.components(idx):
        neg = fn.op("neg", f"icmp slt {ti} {i}, {zero}")
        lo = fn.op("ilo", f"select {tb} {neg}, {ti} {zero}, {ti} {i}")
        big = fn.op("big", f"icmp sgt {ti} {lo}, {last}")
        c = fn.op("ic", f"select {tb} {big}, {ti} {last}, {ti} {lo}")
        off = fn.op("off", f"add {ti} {fn.op('row', f'mul {ti} {c}, {rows}')}, {lanes}")
        regs.append(gather(fn, fl.mod, d.elem, dp, off, B, "i64", hint="take"))
    return [Val(d.elem, len(regs), regs=regs)]


LOWERINGS.update(
    {
        _kernel.TakeOp: _kernel_take,
        _kernel.SqrtOp: _kernel_sqrt,
        _kernel.DistancesOp: _kernel_distances,
        _kernel.GramOp: _kernel_gram,
        _kernel.TopKOp: _kernel_topk,
        _kernel.CoupleOp: _kernel_couple,
    }
)
