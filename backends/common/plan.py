"""What the back-ends share: a module's ABI, its call graph, and ensembles packed into flat tables.

The text back-ends (C99, WAT) lower a verified module the same way: every function becomes a
routine over flat element arrays, every `tree.ensemble` becomes a table-driven loop over packed
node arrays (built here, once), and every exported function gets the ABI of `backends/common/abi.py` (README: "C99 and WebAssembly")
(`backends/common/abi.py` writes its C header, which the LLVM object-file writer ships too).
The packing is the part that must be right for bit-exact results, so it lives in one place.

Packed node trees (`EnsembleTables`): all split nodes of all `tree.tree` ops of an ensemble are
numbered 0..S-1 in tree order; a child reference `c < S` is a split node, `c >= S` is a leaf whose
values start at `leaf[c - S]`.  A split's `op` byte is `pred | missing << 3 | default_yes << 5`.
Oblivious levels are numbered the same way in their own arrays.  Leaves of both kinds share one
flat pool in the leaf type.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from ir.core import Operation
from ir.diagnostics import NameLoc, TimberError
from ir.dialects import func, tree
from ir.dialects.tree import Missing, Pred
from ir.types import FloatType, IndexType, IntegerType, TensorType, f32, f64

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def source_of(module: Operation) -> str:
    """The model file a module came from (for diagnostics), or '<module>'."""
    a = module.attributes.get("timber.source")
    return getattr(a, "value", None) or "<module>"


def check_prefix(prefix: str) -> str:
    """A symbol prefix must itself be a C identifier (it starts every exported name)."""
    if not isinstance(prefix, str) or not _IDENT.match(prefix):
        raise TimberError(f"symbol prefix {prefix!r} is not a C identifier; use letters, digits and '_' (e.g. 'timber_', 'fan_model_')")
    return prefix


def elem_of(t) -> FloatType | IntegerType | IndexType:
    """Element type of a tensor value."""
    return t.element if isinstance(t, TensorType) else t


def elem_size(t) -> int:
    """Bytes one element of this scalar type occupies in memory (i1 takes a byte)."""
    if isinstance(t, FloatType):
        return t.width // 8
    if isinstance(t, IndexType):
        return 8
    return max(1, t.width // 8)


@dataclass
class Export:
    """One exported function: `<prefix>infer_<name>` for `@name`, or `<prefix>infer` plus the
    one-row `<prefix>infer_single` for `@predict` (the only function with a single-row entry)."""

    func: func.FuncOp
    batch_symbol: str
    single_symbol: str | None
    in_elem: FloatType
    n_in: int
    out_elem: FloatType | IntegerType
    n_out: int


@dataclass
class ModulePlan:
    """The functions of a module in an order where callees come first, and their exports."""

    module: Operation
    prefix: str
    source: str
    funcs: list  # callees before callers
    exports: list  # Export, predict first
    predict: Export

    @property
    def macro_prefix(self) -> str:
        return self.prefix.upper()


def _floc(source: str, f) -> NameLoc:
    return NameLoc(source, f"func @{f.sym_name}")


def plan_module(module: Operation, prefix: str, backend: str, check: Callable | None = None) -> ModulePlan:
    """Check that `module` can be lowered by `backend` and order its functions.

    `check(op, expand)` is the back-end's word on one op: None when it can lower it, else a
    message naming the op and the target.  It is asked once before verification with
    `expand=False` (does the op have a lowering or an expansion at all?) and once after with
    `expand=True` (can every op of its expansion be lowered too?).  Without `check` every op is
    accepted (the ABI header needs only the exports).

    Raises `TimberError` naming the function/op for anything outside the supported set: an
    op the back-end cannot lower, recursion, a non-tensor value, or an exported signature the
    ABI cannot carry."""
    from ir.verifier import verify

    check_prefix(prefix)
    source = source_of(module)
    if not hasattr(module, "lookup") or module.name != "builtin.module":
        raise TimberError(f"{backend}: expected a builtin.module, found '{module.name}'")
    funcs = [op for op in module.body.ops if isinstance(op, func.FuncOp)]
    others = [op for op in module.body.ops if not isinstance(op, func.FuncOp)]
    if others:
        raise TimberError(
            f"{backend}: top-level op '{others[0].name}' is not supported; a module holds func.func ops only", NameLoc(source, "module")
        )
    if check is not None:
        _check_ops(funcs, check, False, source)
    verify(module)
    by_name = {f.sym_name: f for f in funcs}
    for f in funcs:
        for op in f.body.ops:
            for v in list(op.operands) + list(op.results):
                if not isinstance(v.type, TensorType):
                    raise TimberError(
                        f"{backend}: op '{op.name}' uses a value of type {v.type}; only tensors are supported", _floc(source, f)
                    )
        for a in f.body.args:
            if not isinstance(a.type, TensorType):
                raise TimberError(f"{backend}: argument of type {a.type} is not supported; only tensors", _floc(source, f))
    if check is not None:
        _check_ops(funcs, check, True, source)
    order = _callee_first(funcs, by_name, source, backend)
    if "predict" not in by_name:
        raise TimberError(f"{backend}: the module has no @predict function (the ABI's infer entry point)", NameLoc(source, "module"))
    exports = []
    taken: dict[str, str] = {}
    for f in [by_name["predict"]] + [g for g in funcs if g.sym_name != "predict"]:
        ex = _export_of(f, prefix, source, backend)
        for sym in (ex.batch_symbol, ex.single_symbol):
            if sym is None:
                continue
            if sym in taken:
                raise TimberError(f"{backend}: exported symbol '{sym}' of @{f.sym_name} clashes with @{taken[sym]}'s", _floc(source, f))
            taken[sym] = f.sym_name
        exports.append(ex)
    return ModulePlan(module, prefix, source, order, exports, exports[0])


def _check_ops(funcs, check: Callable, expand: bool, source: str) -> None:
    for f in funcs:
        for op in f.body.ops:
            msg = check(op, expand)
            if msg:
                raise TimberError(msg, _floc(source, f))


def _callee_first(funcs, by_name, source: str, backend: str) -> list:
    """Depth-first post-order over the call graph; a cycle is recursion, which C99 output may not have."""
    state: dict[str, int] = {}
    order = []
    for root in funcs:
        if root.sym_name in state:
            continue
        stack = [(root, iter(_callees(root)))]
        state[root.sym_name] = 1
        while stack:
            f, it = stack[-1]
            nxt = next(it, None)
            if nxt is None:
                stack.pop()
                state[f.sym_name] = 2
                order.append(f)
                continue
            g = by_name.get(nxt)
            if g is None:
                raise TimberError(f"{backend}: calls @{nxt}, which is not in the module", _floc(source, f))
            if state.get(nxt) == 1:
                raise TimberError(f"{backend}: @{nxt} is called recursively; generated code has no recursion", _floc(source, f))
            if nxt not in state:
                state[nxt] = 1
                stack.append((g, iter(_callees(g))))
    return order


def _callees(f) -> list[str]:
    return [op.callee for op in f.body.ops if isinstance(op, func.CallOp)]


def _export_of(f, prefix: str, source: str, backend: str) -> Export:
    ft = f.function_type
    loc = _floc(source, f)
    if len(ft.inputs) != 1 or len(ft.results) != 1:
        raise TimberError(
            f"{backend}: @{f.sym_name} takes {len(ft.inputs)} inputs and returns {len(ft.results)} results; "
            "an exported function takes one row tensor and returns one tensor",
            loc,
        )
    t_in, t_out = ft.inputs[0], ft.results[0]
    if not (isinstance(t_in, TensorType) and len(t_in.shape) == 1 and t_in.element in (f32, f64)):
        raise TimberError(f"{backend}: @{f.sym_name} takes {t_in}; the ABI input is a 1-D tensor of f32 or f64", loc)
    out_el = elem_of(t_out)
    if not isinstance(t_out, TensorType) or not (out_el in (f32, f64) or (isinstance(out_el, IntegerType) and out_el.width == 64)):
        raise TimberError(f"{backend}: @{f.sym_name} returns {t_out}; the ABI output is a tensor of f32, f64 or i64", loc)
    if f.sym_name == "predict":
        batch, single = f"{prefix}infer", f"{prefix}infer_single"
    else:
        if not _IDENT.match(f.sym_name):
            raise TimberError(f"{backend}: function name @{f.sym_name} cannot be part of a C symbol name", loc)
        batch, single = f"{prefix}infer_{f.sym_name}", None
    return Export(f, batch, single, t_in.element, t_in.shape[0], out_el, t_out.size)


# ----- ensembles as flat tables ----------------------------------------------------------------


def index_dtype(max_value: int):
    """The narrowest unsigned integer type holding 0..max_value (tables are read-only data, so
    narrow indices shrink flash directly)."""
    if max_value < 2**8:
        return np.uint8
    if max_value < 2**16:
        return np.uint16
    return np.uint32


def op_code(pred: int, missing: int, default_yes: bool) -> int:
    """A split's op byte: predicate (bits 0-2), missing kind (bits 3-4), missing goes "yes" (bit 5)."""
    return int(pred) | int(missing) << 3 | (int(bool(default_yes)) << 5)


@dataclass
class EnsembleTables:
    """One `tree.ensemble` packed into flat numpy arrays (see the module docstring).

    `arrays` maps a short name to its array; names present depend on the ensemble:
    node trees: feat, thr, op, yes, no (+ cstart, clen for `in` splits);
    oblivious levels: lfeat, lthr, lop (+ lcstart, lclen);
    per tree: root (child code of the root, or first level), out, dim, depth, lbase, linear;
    leaves: leaf; linear leaves (indexed like leaf): lconst, lstart, llen, lterm_feat, lterm_coef;
    categorical words: words.
    `runs` are (kind, first tree, end tree) with kind "node" or "oblivious", in tree order."""

    op: tree.EnsembleOp
    n_splits: int
    runs: list[tuple[str, int, int]]
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    node_combos: list[tuple[int, int]] = field(default_factory=list)
    level_combos: list[tuple[int, int]] = field(default_factory=list)
    uniform_out: int | None = None
    uniform_dim: int | None = None
    linear: str = "none"  # "none", "all" or "some" of the node trees have linear leaves
    cat_negative: str = "value"

    @property
    def cmp(self) -> FloatType:
        return self.op.compare_type

    @property
    def leaf_type(self) -> FloatType:
        return self.op.leaf_type

    @property
    def acc(self) -> FloatType:
        return self.op.results[0].type.element

    @property
    def in_elem(self) -> FloatType:
        return self.op.operands[0].type.element

    @property
    def init(self) -> np.ndarray:
        return np.asarray(self.op.attributes["init"].values).reshape(-1)

    @property
    def n_trees(self) -> int:
        return len(self.op.trees)


def pack_ensemble(op: tree.EnsembleOp) -> EnsembleTables:
    """Flatten an ensemble's trees into the shared table layout (vectorised per tree)."""
    trees = op.trees
    tdt = op.compare_type.numpy
    ldt = op.leaf_type.numpy
    neg = op.attributes.get("cat_negative")
    node_trees = [t for t in trees if isinstance(t, tree.TreeOp)]
    n_splits = int(sum(int(np.count_nonzero(t.table.pred != Pred.LEAF)) for t in node_trees))

    feat, thr, ops, yes, no, cstart, clen = [], [], [], [], [], [], []
    lfeat, lthr, lops, lcstart, lclen = [], [], [], [], []
    leaf, words = [], []
    lconst, lstart, llen, lterm_feat, lterm_coef, leaf_lin = [], [], [], [], [], []
    root, outs, dims, depth, lbase, tlinear = [], [], [], [], [], []
    split_base = leaf_base = word_base = level_base = term_base = 0
    any_linear = all_linear = None

    for t_op in trees:
        t = t_op.table
        dim = t.leaf_dim
        outs.append(t_op.out)
        dims.append(dim)
        if isinstance(t_op, tree.TreeOp):
            is_split = t.pred != Pred.LEAF
            n_split = int(np.count_nonzero(is_split))
            n_leaf = t.n_nodes - n_split
            # Child code of every node of this tree: its split number, or S + its leaf offset.
            rank_split = np.cumsum(is_split) - 1
            rank_leaf = np.cumsum(~is_split) - 1
            code = np.where(is_split, split_base + rank_split, n_splits + leaf_base + rank_leaf * dim).astype(np.int64)
            root.append(int(code[0]))
            depth.append(0)
            lbase.append(0)
            idx = np.flatnonzero(is_split)
            feat.append(t.feature[idx])
            thr.append(t.threshold[idx].astype(tdt))
            needs_default = (t.missing[idx] == Missing.NAN) | (t.missing[idx] == Missing.ZERO)
            dflt_yes = needs_default & (t.default[idx] == t.yes[idx])
            ops.append(t.pred[idx].astype(np.int64) | (t.missing[idx].astype(np.int64) << 3) | (dflt_yes.astype(np.int64) << 5))
            yes.append(code[t.yes[idx]])
            no.append(code[t.no[idx]])
            is_cat = t.pred[idx] == Pred.IN
            cstart.append(np.where(is_cat, word_base + t.cat_start[idx], 0))
            clen.append(np.where(is_cat, t.cat_len[idx], 0))
            words.append(t.cat_words)
            word_base += len(t.cat_words)
            lidx = np.flatnonzero(~is_split)
            leaf.append(t.leaf[lidx].reshape(-1).astype(ldt))
            lin = t.is_linear
            tlinear.append(int(lin))
            any_linear = bool(any_linear) or lin
            all_linear = lin if all_linear is None else (all_linear and lin)
            if lin:
                lconst.append(t.lin_const[lidx].astype(ldt))
                lstart.append(term_base + t.lin_start[lidx].astype(np.int64))
                llen.append(t.lin_len[lidx].astype(np.int64))
                lterm_feat.append(t.lin_feature)
                lterm_coef.append(t.lin_coeff.astype(ldt))
                term_base += len(t.lin_feature)
            else:
                lconst.append(np.zeros(n_leaf * dim, ldt))
                lstart.append(np.zeros(n_leaf * dim, np.int64))
                llen.append(np.zeros(n_leaf * dim, np.int64))
            leaf_lin.append(n_leaf * dim)
            split_base += n_split
            leaf_base += n_leaf * dim
        else:
            d = t.depth
            root.append(level_base)
            depth.append(d)
            lbase.append(leaf_base)
            tlinear.append(0)
            lfeat.append(t.feature)
            lthr.append(t.threshold.astype(tdt))
            needs_default = (t.missing == Missing.NAN) | (t.missing == Missing.ZERO)
            lops.append(
                t.pred.astype(np.int64) | (t.missing.astype(np.int64) << 3) | ((needs_default & t.default_true).astype(np.int64) << 5)
            )
            is_cat = t.pred == Pred.IN
            lcstart.append(np.where(is_cat, word_base + t.cat_start, 0))
            lclen.append(np.where(is_cat, t.cat_len, 0))
            words.append(t.cat_words)
            word_base += len(t.cat_words)
            n = t.leaf.shape[0] * dim
            leaf.append(t.leaf.reshape(-1).astype(ldt))
            # Oblivious leaves share the pool; give them inert linear slots so indices line up.
            lconst.append(np.zeros(n, ldt))
            lstart.append(np.zeros(n, np.int64))
            llen.append(np.zeros(n, np.int64))
            level_base += d
            leaf_base += n

    def cat(parts, dtype):
        return np.concatenate([np.asarray(p) for p in parts]).astype(dtype) if parts else np.zeros(0, dtype)

    arrays: dict[str, np.ndarray] = {}
    n_leaf_total = leaf_base
    code_max = max(n_splits + n_leaf_total, 1)
    n_features = op.n_features
    if n_splits:
        arrays["feat"] = cat(feat, index_dtype(n_features - 1))
        arrays["thr"] = cat(thr, tdt)
        arrays["op"] = cat(ops, np.uint8)
        arrays["yes"] = cat(yes, index_dtype(code_max))
        arrays["no"] = cat(no, index_dtype(code_max))
    if level_base:
        arrays["lfeat"] = cat(lfeat, index_dtype(n_features - 1))
        arrays["lthr"] = cat(lthr, tdt)
        arrays["lop"] = cat(lops, np.uint8)
    all_words = cat(words, np.uint32)
    if len(all_words):
        wmax = max(len(all_words), 1)
        arrays["words"] = all_words
        if n_splits and np.any((arrays["op"] & 7) == Pred.IN):
            arrays["cstart"] = cat(cstart, index_dtype(wmax))
            arrays["clen"] = cat(clen, index_dtype(wmax))
        if level_base and np.any((arrays["lop"] & 7) == Pred.IN):
            arrays["lcstart"] = cat(lcstart, index_dtype(wmax))
            arrays["lclen"] = cat(lclen, index_dtype(wmax))
    arrays["leaf"] = cat(leaf, ldt)
    n_trees = len(trees)
    arrays["root"] = np.asarray(root, index_dtype(max(max(root, default=0), 1)))
    arrays["out"] = np.asarray(outs, index_dtype(max(max(outs, default=0), 1)))
    arrays["dim"] = np.asarray(dims, index_dtype(max(max(dims, default=1), 1)))
    if level_base or any(isinstance(t, tree.ObliviousOp) for t in trees):
        arrays["depth"] = np.asarray(depth, np.uint8)
        arrays["lbase"] = np.asarray(lbase, index_dtype(max(max(lbase, default=0), 1)))
    linear_kind = "none"
    if any_linear:
        # Only node trees have linear leaves; oblivious runs never look at these arrays.
        linear_kind = "all" if all_linear else "some"
        arrays["lconst"] = cat(lconst, ldt)
        terms = max(term_base, 1)
        arrays["lstart"] = cat(lstart, index_dtype(terms))
        arrays["llen"] = cat(llen, index_dtype(terms))
        arrays["lterm_feat"] = cat(lterm_feat, index_dtype(n_features - 1))
        arrays["lterm_coef"] = cat(lterm_coef, ldt)
        if linear_kind == "some":
            arrays["linear"] = np.asarray(tlinear, np.uint8)

    runs = []
    for i, t in enumerate(trees):
        kind = "node" if isinstance(t, tree.TreeOp) else "oblivious"
        if runs and runs[-1][0] == kind:
            runs[-1] = (kind, runs[-1][1], i + 1)
        else:
            runs.append((kind, i, i + 1))

    def combos(op_arr):
        if op_arr is None or not len(op_arr):
            return []
        return sorted({(int(c) & 7, (int(c) >> 3) & 3) for c in np.unique(op_arr)})

    tables = EnsembleTables(
        op=op,
        n_splits=n_splits,
        runs=runs,
        arrays=arrays,
        node_combos=combos(arrays.get("op")),
        level_combos=combos(arrays.get("lop")),
        uniform_out=outs[0] if n_trees and all(o == outs[0] for o in outs) else None,
        uniform_dim=dims[0] if n_trees and all(d == dims[0] for d in dims) else None,
        linear=linear_kind,
        cat_negative=neg.value if neg is not None else "value",
    )
    return tables


# ----- writing files ----------------------------------------------------------------------------


def write_files(files: dict[str, str | bytes], out_dir, force: bool = False) -> list[str]:
    """Write `files` into `out_dir` (created if needed) and return their paths.

    An existing file with different content is never overwritten silently: without `force`
    a `TimberError` names it, and nothing is written at all."""
    out_dir = os.fspath(out_dir)
    if os.path.exists(out_dir) and not os.path.isdir(out_dir):
        raise TimberError(f"output path {out_dir} exists and is not a directory")
    plans = []
    for name, content in files.items():
        data = content.encode("utf-8") if isinstance(content, str) else bytes(content)
        path = os.path.join(out_dir, name)
        if os.path.isdir(path):
            raise TimberError(f"cannot write {path}: a directory of that name exists")
        same = False
        if os.path.exists(path):
            with open(path, "rb") as fh:
                same = fh.read() == data
            if not same and not force:
                raise TimberError(
                    f"refusing to overwrite {path}, which differs from the new output; pass force=True (--force) to replace it"
                )
        plans.append((path, data, same))
    os.makedirs(out_dir, exist_ok=True)
    for path, data, same in plans:
        if same:
            continue
        tmp = path + ".tmp"
        with open(tmp, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    return [p for p, _, _ in plans]


# ----- float literals ----------------------------------------------------------------------------


def hex_float(v: float) -> str:
    """Exact hexadecimal text of a finite float, as both C99 and WAT read it (`-0x1.8p-1`).

    Python's `float.hex()` is exact; trailing zero hex digits are dropped for readability."""
    s = float(v).hex()
    sign = "-" if s.startswith("-") else ""
    mant, exp = s.lstrip("-")[2:].split("p")
    if "." in mant:
        whole, frac = mant.split(".")
        frac = frac.rstrip("0")
        mant = whole + ("." + frac if frac else "")
    return f"{sign}0x{mant}p{exp}"
