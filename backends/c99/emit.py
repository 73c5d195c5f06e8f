"""Lower a verified module to portable C99: `model.h`, `model_data.c`, `model.c`, and build files.

Shape of the output:

* `model_data.c` holds every table as a `const` array with a prefixed name (node arrays of each
  ensemble, leaf values, weights, constants): read-only data, nothing mutable.
* `model.c` holds one `static` routine per IR function (callees first, so no prototypes and no
  recursion), one `static` table-driven loop per `tree.ensemble`, Timber's own `exp`, and the
  exported ABI wrappers.  Tensors are local arrays of their static size: no malloc.
* Every float constant is a hex literal (`0x1.8p-1f`), so the text is the exact value.

Semantics follow the op docstrings and `ir/interpreter.py` step for step: each arithmetic
operation is written once, in the element type, in the reference's order; compares are C's
ordered operators; NaN tests are `v != v` (no `<math.h>` functions, no libm).
"""

from __future__ import annotations

import re

import numpy as np

from ir import mathfn
from ir.dialects import arith, func, linear, math, tree
from ir.dialects.tree import ZERO_THRESHOLD, Missing, Pred
from ir.types import FloatType, IndexType, IntegerType, f32, f64

from .plan import ABI_VERSION, EnsembleTables, ModulePlan, hex_float, pack_ensemble, plan_module

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
_PRED_C = {Pred.LT: "<", Pred.LE: "<=", Pred.GT: ">", Pred.GE: ">=", Pred.EQ: "==", Pred.NE: "!="}
_BINARY = {arith.AddFOp: "+", arith.SubFOp: "-", arith.MulFOp: "*", arith.DivFOp: "/"}


def c_type(t) -> str:
    """C spelling of an IR scalar type."""
    if t == f32:
        return "float"
    if t == f64:
        return "double"
    if isinstance(t, IndexType):
        return "int64_t"
    if isinstance(t, IntegerType):
        return "unsigned char" if t.width == 1 else f"int{t.width}_t"
    raise TypeError(f"no C type for {t}")


def c_float(v, t: FloatType) -> str:
    """An exact C constant expression for a float of type t (hex literal; math.h macros for inf/NaN)."""
    v = float(v)
    suffix = "f" if t == f32 else ""
    cast = "" if t == f32 else "(double)"
    if v != v:
        return f"{'-' if np.signbit(v) else ''}{cast}NAN"
    if v in (float("inf"), float("-inf")):
        return f"{'-' if v < 0 else ''}{cast}INFINITY"
    return hex_float(v) + suffix


def _c_int_type(dtype) -> str:
    return {np.uint8: "uint8_t", np.uint16: "uint16_t", np.uint32: "uint32_t", np.int32: "int32_t", np.int64: "int64_t"}[
        np.dtype(dtype).type
    ]


class _Data:
    """The tables destined for `model_data.c` (definitions) and `model.c` (extern declarations)."""

    def __init__(self, prefix: str):
        self.prefix = prefix
        self.tables: list[tuple[str, str, list[str], str]] = []  # (C type, name, items, comment)
        self.needs_math_h = False

    def add(self, name: str, values: np.ndarray, elem=None, comment: str = "") -> str:
        """Register a table; returns its C symbol.  `elem` is the IR float type for float arrays."""
        values = np.asarray(values).reshape(-1)
        if elem is not None:
            ctype = c_type(elem)
            items = [c_float(v, elem) for v in values.tolist()]
            self.needs_math_h |= any(("NAN" in s or "INFINITY" in s) for s in items)
        elif values.dtype == np.bool_:
            ctype, items = "unsigned char", [str(int(v)) for v in values.tolist()]
        else:
            ctype = _c_int_type(values.dtype)
            items = [str(int(v)) for v in values.tolist()]
            if values.dtype == np.int64:
                # INT64_MIN has no literal form; the other values are plain decimals.
                items = [s if s != str(-(2**63)) else "INT64_MIN" for s in items]
        sym = f"{self.prefix}{name}"
        self.tables.append((ctype, sym, items, comment))
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


class _CModule:
    """Generates the three C files of one module."""

    def __init__(self, plan: ModulePlan):
        self.plan = plan
        self.P = plan.prefix
        self.M = plan.macro_prefix
        self.data = _Data(plan.prefix)
        self.helpers: set[str] = set()
        self.fn_names = {f.sym_name: f"fn_{i}" for i, f in enumerate(plan.funcs)}
        self.routines: list[list[str]] = []
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
        body: list[str] = []
        env: dict[int, str] = {id(a): f"a{i}" for i, a in enumerate(f.body.args)}
        pre: list[str] = []  # routines this function needs (ensembles), emitted before it
        for k, op in enumerate(f.body.ops):
            if isinstance(op, func.ReturnOp):
                for i, v in enumerate(op.operands):
                    body += self._each(v.type.size, lambda j, i=i, v=v: f"r{i}[{j}] = {env[id(v)]}[{j}];")
                continue
            if isinstance(op, arith.ConstantOp):
                t = op.results[0].type
                elem = t.element if isinstance(t.element, FloatType) else None
                vals = np.asarray(op.value)
                env[id(op.results[0])] = self.data.add(
                    f"c{self.n_const}", vals, elem, f"constant {self._hint(op.results[0])} of @{f.sym_name}"
                )
                self.n_const += 1
                continue
            outs = []
            for j, r in enumerate(op.results):
                var = f"v{k}_{j}" if len(op.results) > 1 else f"v{k}"
                hint = f"  /* %{r.name_hint} */" if r.name_hint else ""
                body.append(f"{c_type(r.type.element)} {var}[{r.type.size}];{hint}")
                env[id(r)] = var
                outs.append(var)
            args = [env[id(v)] for v in op.operands]
            body += self.lower_op(op, args, outs, pre)
        lines = [f"/* @{f.sym_name}: {ft} */", f"static void {name}({', '.join(params)})", "{"]
        lines += ["    " + s if s else "" for s in body]
        lines.append("}")
        return pre + ([""] if pre else []) + lines

    @staticmethod
    def _hint(v) -> str:
        return f"%{v.name_hint}" if v.name_hint else "(unnamed)"

    @staticmethod
    def _each(n: int, stmt) -> list[str]:
        """`stmt(i)` for i in 0..n-1: unrolled when short, a loop otherwise."""
        if n <= UNROLL:
            return [stmt(str(i)) for i in range(n)]
        return [f"for (int i = 0; i < {n}; ++i) {{", "    " + stmt("i"), "}"]

    def lower_op(self, op, a: list[str], r: list[str], pre: list[str]) -> list[str]:
        out = op.results[0].type if op.results else None
        n = out.size if out is not None else 0
        el = out.element if out is not None else None
        if type(op) in _BINARY:
            sym = _BINARY[type(op)]
            return self._each(n, lambda i: f"{r[0]}[{i}] = {a[0]}[{i}] {sym} {a[1]}[{i}];")
        if isinstance(op, (arith.MaximumFOp, arith.MinimumFOp)):
            h = f"{'max' if isinstance(op, arith.MaximumFOp) else 'min'}_f{el.width}"
            self.helpers.add(h)
            return self._each(n, lambda i: f"{r[0]}[{i}] = {h}({a[0]}[{i}], {a[1]}[{i}]);")
        if isinstance(op, arith.NegFOp):
            return self._each(n, lambda i: f"{r[0]}[{i}] = -{a[0]}[{i}];")
        if isinstance(op, arith.CmpFOp):
            fmt = _CMP[op.attributes["predicate"].value]
            return self._each(n, lambda i: f"{r[0]}[{i}] = (unsigned char)({fmt.format(a=f'{a[0]}[{i}]', b=f'{a[1]}[{i}]')});")
        if isinstance(op, arith.SelectOp):
            return self._each(n, lambda i: f"{r[0]}[{i}] = {a[0]}[{i}] ? {a[1]}[{i}] : {a[2]}[{i}];")
        if isinstance(op, (arith.ExtFOp, arith.TruncFOp, arith.SIToFPOp)):
            ct = c_type(el)
            return self._each(n, lambda i: f"{r[0]}[{i}] = ({ct}){a[0]}[{i}];")
        if isinstance(op, math.ExpOp):
            h = self._exp(el, op)
            return self._each(n, lambda i: f"{r[0]}[{i}] = {h}({a[0]}[{i}]);")
        if isinstance(op, math.Log1pOp):
            self.helpers.add("log1p_f64")
            h = "log1p_f64"
            if el == f32:
                self.helpers.add("log1p_f32")
                h = "log1p_f32"
            return self._each(n, lambda i: f"{r[0]}[{i}] = {h}({a[0]}[{i}]);")
        if isinstance(op, math.SigmoidOp):
            h = self._exp(el)
            one = c_float(1.0, el)
            return self._each(n, lambda i: f"{r[0]}[{i}] = {one} / ({one} + {h}(-{a[0]}[{i}]));")
        if isinstance(op, math.SoftmaxOp):
            return self._softmax(op, a[0], r[0])
        if isinstance(op, math.ArgmaxOp):
            return self._argmax(op, a[0], r[0])
        if isinstance(op, linear.AffineOp):
            return self._affine(op, a[0], r[0])
        if isinstance(op, tree.EnsembleOp):
            name = f"ensemble_{self.n_ens}"
            pre += self._ensemble(pack_ensemble(op), name, self.n_ens)
            self.n_ens += 1
            return [f"{name}({a[0]}, {r[0]});"]
        if isinstance(op, func.CallOp):
            return [f"{self.fn_names[op.callee]}({', '.join(a + r)});"]
        raise AssertionError(f"plan_module let through '{op.name}'")  # pragma: no cover

    def _exp(self, el: FloatType, op=None) -> str:
        impl = op.attributes.get("impl") if op is not None else None
        if impl is not None and impl.value == "fmath":
            self.helpers.add("fmath_exp_f64")
            if el == f32:
                self.helpers.add("fmath_exp_f32")
                return "fmath_exp_f32"
            return "fmath_exp_f64"
        self.helpers.add("exp_f64")
        if el == f32:
            self.helpers.add("exp_f32")
            return "exp_f32"
        return "exp_f64"

    def _softmax(self, op, a: str, r: str) -> list[str]:
        t = op.results[0].type
        el, n = t.element, t.size
        acc_attr = op.attributes.get("acc")
        acc = acc_attr.type if acc_attr is not None else el
        ct, cs, h = c_type(el), c_type(acc), self._exp(el, op)
        # Max scan, exponentials, left-to-right sum in `acc`, then divide by the sum rounded to
        # the element type: exactly math.softmax's docstring.
        return [
            "{",
            f"    {ct} m = {a}[0];",
            f"    {cs} s = {c_float(0.0, acc)};",
            f"    for (int i = 1; i < {n}; ++i) if ({a}[i] > m) m = {a}[i];",
            f"    for (int i = 0; i < {n}; ++i) {{ {r}[i] = {h}({a}[i] - m); s = s + ({cs}){r}[i]; }}",
            f"    {{ const {ct} st = ({ct})s; for (int i = 0; i < {n}; ++i) {r}[i] = {r}[i] / st; }}",
            "}",
        ]

    def _argmax(self, op, a: str, r: str) -> list[str]:
        t = op.operands[0].type
        ct, n = c_type(t.element), t.size
        return [
            "{",
            f"    {ct} best = {a}[0];",
            "    int64_t idx = 0;",
            f"    for (int i = 1; i < {n}; ++i) if ({a}[i] > best) {{ best = {a}[i]; idx = i; }}",
            f"    {r}[0] = idx;",
            "}",
        ]

    def _affine(self, op, a: str, r: str) -> list[str]:
        w = np.asarray(op.attributes["weights"].values)
        b = np.asarray(op.attributes["bias"].values)
        el = op.results[0].type.element
        k_out, n_in = w.shape
        wsym = self.data.add(f"affine{self.n_aff}_w", w, el, f"linear.affine #{self.n_aff}: weights ({k_out} x {n_in}), row-major")
        bsym = self.data.add(f"affine{self.n_aff}_b", b, el, f"linear.affine #{self.n_aff}: bias")
        self.n_aff += 1
        ct = c_type(el)
        skip = op.attributes["missing"].value == "skip"
        # "skip": a NaN input is absent and adds nothing (the accumulator keeps its value).
        add = "if (xv == xv) acc = acc + xv * " if skip else "acc = acc + xv * "
        return [
            f"for (int k = 0; k < {k_out}; ++k) {{",
            f"    {ct} acc = {bsym}[k];",
            f"    for (int j = 0; j < {n_in}; ++j) {{",
            f"        const {ct} xv = ({ct}){a}[j];",
            f"        {add}{wsym}[k * {n_in} + j];",
            "    }",
            f"    {r}[k] = acc;",
            "}",
        ]

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
        syms, cmp_c, tb = ctx["syms"], ctx["cmp_c"], ctx["tb"]
        thr, words = syms.get(prefix + "thr"), syms.get("words")
        cstart, clen = syms.get(prefix + "cstart"), syms.get(prefix + "clen")

        def pred_expr(p: int, w: str) -> str:
            if p == Pred.IN:
                if words is None or cstart is None:
                    return "0"  # every set is empty: nothing is a member
                self.helpers.add(f"cat_{tb.cat_negative}")
                return f"cat_{tb.cat_negative}({words} + {cstart}[n], {clen}[n], (double){w})"
            return f"{w} {_PRED_C[Pred(p)]} {thr}[n]"

        def combo(p: int, m: int) -> str:
            if m == Missing.NAN:
                return f"yes = (v != v) ? (int)(op >> 5) : ({pred_expr(p, 'v')});"
            if m == Missing.ZERO:
                z = hex_float(ZERO_THRESHOLD)
                miss = f"v != v || ((double)v <= {z} && (double)v >= -{z})"
                return f"yes = ({miss}) ? (int)(op >> 5) : ({pred_expr(p, 'v')});"
            if m == Missing.NAN_AS_ZERO:
                return f"yes = {pred_expr(p, f'(v != v ? ({cmp_c})0 : v)')};"
            return f"yes = {pred_expr(p, 'v')};"

        need_op = len(combos) > 1 or any(m in (Missing.NAN, Missing.ZERO) for _, m in combos)
        out = [f"const unsigned op = {syms[prefix + 'op']}[n];"] if need_op else []
        out.append("int yes;")
        if len(combos) == 1:
            out.append(combo(*combos[0]))
        else:
            out.append("switch (op & 31u) {")
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
            f"  for (uint32_t j = 0; j < d; ++j) out[k + j] = out[k + j] + ({acc_c}){syms['leaf']}[{off} + j]; }}",
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
            lin = [
                f"{leaf_c} val = {syms['leaf']}[n];",
                f"{leaf_c} a = {syms['lconst']}[n];",
                "int nan = 0;",
                f"const uint32_t s0 = {syms['lstart']}[n], s1 = s0 + {syms['llen']}[n];",
                "for (uint32_t j = s0; j < s1; ++j) {",
                f"    const {leaf_c} xv = ({leaf_c})x[{syms['lterm_feat']}[j]];",
                "    nan |= (xv != xv);",
                f"    a = a + {syms['lterm_coef']}[j] * xv;",
                "}",
                "if (!nan) val = a;",
            ] + self._accumulate(tb, syms, "n", "val", acc_c)
            if tb.linear == "all":
                body += ["{"] + ["    " + s for s in lin] + ["}"]
            else:
                body += [f"if ({syms['linear']}[t]) {{"] + ["    " + s for s in lin] + ["} else {"] + ["    " + s for s in plain] + ["}"]
        return [f"    for (int t = {start}; t < {stop}; ++t) {{"] + ["        " + s for s in body] + ["    }"]

    def _oblivious_run(self, start: int, stop: int, ctx, acc_c: str) -> list[str]:
        tb, syms, cmp_c = ctx["tb"], ctx["syms"], ctx["cmp_c"]
        dim = f"{tb.uniform_dim}u" if tb.uniform_dim is not None else f"{syms['dim']}[t]"
        body = ["uint32_t idx = 0;"]
        if "lop" in syms:
            body += [
                f"const uint32_t l0 = {syms['root']}[t], depth = {syms['depth']}[t];",
                "for (uint32_t d = 0; d < depth; ++d) {",
                "    const uint32_t n = l0 + d;",
                f"    const {cmp_c} v = ({cmp_c})x[{syms['lfeat']}[n]];",
            ]
            body += ["    " + s for s in self._decide(tb.level_combos, "l", ctx)]
            body += ["    idx |= (uint32_t)yes << d;", "}"]
        body.append(f"const uint32_t off = {syms['lbase']}[t] + idx * {dim};")
        body += self._accumulate(tb, syms, "off", None, acc_c)
        return [f"    for (int t = {start}; t < {stop}; ++t) {{"] + ["        " + s for s in body] + ["    }"]

    # ----- files ------------------------------------------------------------------------
    def model_h(self) -> str:
        P, M, pr = self.P, self.M, self.plan.predict
        guard = f"{M}MODEL_H"
        lines = [
            f"/* model.h: generated by Timber from {_comment_safe(self.plan.source)}.  Do not edit. */",
            f"#ifndef {guard}",
            f"#define {guard}",
            "",
            "#include <stdint.h>",
            "",
            "#ifdef __cplusplus",
            'extern "C" {',
            "#endif",
            "",
            f"#define {M}ABI_VERSION {ABI_VERSION}",
            f"#define {M}N_FEATURES {pr.n_in}",
            f"#define {M}N_OUTPUTS {pr.n_out}",
            "",
            f"#define {M}OK 0",
            f"#define {M}ERR_NULL (-1)   /* inputs or outputs is NULL */",
            f"#define {M}ERR_BOUNDS (-3) /* n_samples < 0 */",
            "",
            f"typedef {c_type(pr.in_elem)} {P}input_t;   /* T: the input precision */",
            f"typedef {c_type(pr.out_elem)} {P}output_t; /* OUT: @predict's result type */",
            "",
            "/* One row: inputs[N_FEATURES] -> outputs[N_OUTPUTS].  ctx may be NULL.  Returns 0 on success.",
            "   Reentrant and thread-safe: no globals are written, tables are const. */",
            f"int {pr.single_symbol}(const {P}input_t *inputs, {P}output_t *outputs, const void *ctx);",
            "/* n_samples rows, row-major: inputs[n_samples][N_FEATURES] -> outputs[n_samples][N_OUTPUTS]. */",
            f"int {pr.batch_symbol}(const {P}input_t *inputs, int n_samples, {P}output_t *outputs, const void *ctx);",
        ]
        for ex in self.plan.exports[1:]:
            name = ex.func.sym_name
            ti, to = c_type(ex.in_elem), c_type(ex.out_elem)
            lines += [
                "",
                f"/* @{name}: {ex.func.function_type} */",
                f"#define {M}{name.upper()}_N_FEATURES {ex.n_in}",
                f"#define {M}{name.upper()}_N_OUTPUTS {ex.n_out}",
                f"int {ex.batch_symbol}(const {ti} *inputs, int n_samples, {to} *outputs, const void *ctx);",
            ]
        lines += ["", "#ifdef __cplusplus", "}", "#endif", "", f"#endif /* {guard} */", ""]
        return "\n".join(lines)

    def model_data_c(self) -> str:
        lines = [
            f"/* model_data.c: generated by Timber from {_comment_safe(self.plan.source)}.  Do not edit.",
            "   Read-only tables; every float is a hex literal holding the exact value. */",
            "#include <stdint.h>",
        ]
        if self.data.needs_math_h:
            lines.append("#include <math.h> /* NAN and INFINITY macros only; no libm function is used */")
        lines.append("")
        lines += self.data.definitions()
        if not self.data.tables:
            # ISO C forbids an empty translation unit.
            lines.append(f"typedef int {self.P}no_tables;")
        return "\n".join(lines) + "\n"

    def model_c(self) -> str:
        lines = [
            f"/* model.c: generated by Timber from {_comment_safe(self.plan.source)}.  Do not edit.",
            "   No malloc, no recursion, no mutable globals, no libm.  Build with -ffp-contract=off:",
            "   a fused multiply-add would change the last bit of sums and of exp. */",
            '#include "model.h"',
            "",
            "#include <float.h>",
            "#include <stddef.h>",
            "#include <stdint.h>",
        ]
        code = "\n".join(line for r in self.routines for line in r)
        if "exp_f64" in self.helpers or "log1p_f64" in self.helpers or "NAN" in code or "INFINITY" in code:
            lines.append("#include <math.h> /* the NAN and INFINITY macros only; no libm function is used */")
        lines += [
            "",
            "#if !defined(FLT_EVAL_METHOD) || FLT_EVAL_METHOD != 0",
            '#error "Timber needs float and double arithmetic without excess precision (FLT_EVAL_METHOD == 0; on 32-bit x86 use -msse2 -mfpmath=sse)"',
            "#endif",
            "",
        ]
        lines += self.data.declarations()
        lines.append("")
        lines += self._helpers()
        for r in self.routines:
            lines += r
            lines.append("")
        lines += self._wrappers()
        return "\n".join(lines) + "\n"

    def _wrappers(self) -> list[str]:
        M = self.M
        out = []
        for ex in self.plan.exports:
            fn = self.fn_names[ex.func.sym_name]
            ti, to = c_type(ex.in_elem), c_type(ex.out_elem)
            if ex is self.plan.predict:
                ti, to = f"{self.P}input_t", f"{self.P}output_t"
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

    def _helpers(self) -> list[str]:
        h = self.helpers
        out: list[str] = []
        for w in (32, 64):
            t = "float" if w == 32 else "double"
            # numpy's maximum/minimum: NaN if either is NaN; on a tie (including -0.0 vs +0.0) the second operand.
            if f"max_f{w}" in h:
                out += [f"static {t} max_f{w}({t} a, {t} b) {{ return a != a ? a : b != b ? b : a > b ? a : b; }}", ""]
            if f"min_f{w}" in h:
                out += [f"static {t} min_f{w}({t} a, {t} b) {{ return a != a ? a : b != b ? b : a < b ? a : b; }}", ""]
        for mode in ("value", "code"):
            if f"cat_{mode}" not in h:
                continue
            # A category is trunc(v); it is invalid (not a member) if v is NaN or +-inf, negative, or
            # not below 2^31.  "value": negative means v < 0; "code": trunc(v) < 0, i.e. v <= -1.
            # Both ranges lie inside (-1, 2^32), where C's float-to-unsigned conversion is defined.
            low = "v >= 0.0" if mode == "value" else "v > -1.0"
            out += [
                f"static int cat_{mode}(const uint32_t *words, uint32_t n_words, double v)",
                "{",
                f"    if (!({low} && v < 0x1p+31)) return 0;",
                "    const uint32_t c = (uint32_t)v;",
                "    if ((c >> 5) >= n_words) return 0;",
                "    return (int)((words[c >> 5] >> (c & 31u)) & 1u);",
                "}",
                "",
            ]
        if "exp_f64" in h:
            out += _exp_c()
        if "exp_f32" in h:
            out += [
                "/* f32 exp: the f64 result rounded once (ir/mathfn.py). */",
                "static float exp_f32(float x) { return (float)exp_f64((double)x); }",
                "",
            ]
        if "fmath_exp_f64" in h:
            out += _fmath_exp_c()
        if "fmath_exp_f32" in h:
            out += ["static float fmath_exp_f32(float x) { return (float)fmath_exp_f64((double)x); }", ""]
        if "log1p_f64" in h:
            out += _log1p_c()
        if "log1p_f32" in h:
            out += ["static float log1p_f32(float x) { return (float)log1p_f64((double)x); }", ""]
        return out

    def files(self) -> dict[str, str]:
        self.lower_all()
        return {
            "model.h": self.model_h(),
            "model_data.c": self.model_data_c(),
            "model.c": self.model_c(),
            "CMakeLists.txt": _cmake(self.P),
            "Makefile": _makefile(self.P),
        }


def _comment_safe(s: str) -> str:
    return s.replace("*/", "* /").replace("\n", " ")


def _exp_c() -> list[str]:
    """Timber's exp in C: the operation sequence of ir/mathfn.py, constants as hex doubles."""
    m, d = mathfn, hex_float

    def table(name: str, vals: list[float]) -> list[str]:
        rows = ["    " + ", ".join(d(v) for v in vals[i : i + 4]) + "," for i in range(0, len(vals), 4)]
        return [f"static const double {name}[{len(vals)}] = {{"] + rows + ["};"]

    return (
        [
            "/* Timber's exp (ir/mathfn.py): Tang's table method with N = 128, the same IEEE double",
            "   operations in the same order in every back-end, so every target gets the same bits. */",
        ]
        + table("exp_t_hi", m.T_HI.tolist())
        + table("exp_t_lo", m.T_LO.tolist())
        + [
            "",
            "/* 2^e for -1022 <= e <= 1023, built from exponent bits. */",
            "static double exp_pow2(int32_t e)",
            "{",
            "    union { uint64_t u; double d; } b;",
            "    b.u = (uint64_t)(uint32_t)(e + 1023) << 52;",
            "    return b.d;",
            "}",
            "",
            "static double exp_f64(double x)",
            "{",
            "    if (x != x) return x;",
            f"    if (x > {d(m.OVERFLOW)}) return (double)INFINITY;",
            f"    if (x < {d(m.UNDERFLOW)}) return 0.0;",
            f"    const double z = x * {d(m.INV_LN2_N)};",
            "    /* Adding and subtracting 1.5*2^52 rounds z to an integer, ties to even. */",
            f"    const double kd = (z + {d(m.SHIFT)}) - {d(m.SHIFT)};",
            f"    const double r = (x - kd * {d(m.LN2_HI_N)}) - kd * {d(m.LN2_LO_N)};",
            f"    const double p = r + r * r * ({d(m.C2)} + r * ({d(m.C3)} + r * ({d(m.C4)} + r * {d(m.C5)})));",
            "    const int32_t k = (int32_t)kd;",
            "    /* e = floor(k / 128) and j = k mod 128, without relying on >> of negative numbers. */",
            "    const int32_t e = k >= 0 ? k / 128 : -((127 - k) / 128);",
            "    const int32_t j = k - e * 128;",
            "    const double th = exp_t_hi[j];",
            "    const double y = th + (exp_t_lo[j] + th * p);",
            "    /* Scale in two steps so each power of two is a normal number. */",
            "    const int32_t e1 = e >= 0 ? e / 2 : -((1 - e) / 2);",
            "    return (y * exp_pow2(e1)) * exp_pow2(e - e1);",
            "}",
            "",
        ]
    )


def _fmath_exp_c() -> list[str]:
    """fmath's exp (CatBoost's FastExp) in C: the operation sequence of ir/mathfn.py."""
    m, d = mathfn, hex_float
    rows = ["    " + ", ".join(f"{int(v):#x}u" for v in m.FMATH_T[i : i + 4].tolist()) + "," for i in range(0, len(m.FMATH_T), 4)]
    return (
        ["/* fmath's exp (ir/mathfn.py), which CatBoost calls: 2^(j/2048) mantissas and a cubic. */"]
        + [f"static const uint64_t fmath_t[{len(m.FMATH_T)}] = {{"]
        + rows
        + [
            "};",
            "",
            "static double fmath_exp_f64(double x)",
            "{",
            "    union { uint64_t u; double d; } b;",
            "    double d, t, y;",
            "    uint64_t di;",
            f"    x = x < {d(m.FMATH_HI)} ? x : {d(m.FMATH_HI)}; /* NaN becomes the bound, as x86 minpd does */",
            f"    x = x > {d(m.FMATH_LO)} ? x : {d(m.FMATH_LO)};",
            f"    d = x * {d(m.FMATH_A)} + {d(m.FMATH_B)};",
            "    b.d = d;",
            "    di = b.u;",
            f"    t = (d - {d(m.FMATH_B)}) * {d(m.FMATH_RA)} - x;",
            f"    y = (({d(m.FMATH_C3)} - t) * (t * t)) * {d(m.FMATH_C2)} - t + {d(m.FMATH_C1)};",
            f"    b.u = (((di + {m.FMATH_ADJ}u) >> {m.FMATH_BITS}) << 52) | fmath_t[di & {(1 << m.FMATH_BITS) - 1}u];",
            "    return y * b.d;",
            "}",
            "",
        ]
    )


def _log1p_c() -> list[str]:
    """Timber's log1p in C: the operation sequence of ir/mathfn.py (fdlibm's algorithm), one path
    per case instead of the reference's selects (each path computes the same operations)."""
    m, d = mathfn, hex_float
    return [
        "/* Timber's log1p (ir/mathfn.py): 1+x = 2^k (1+f), log(1+f) by fdlibm's polynomial in s = f/(2+f). */",
        "static double log1p_f64(double x)",
        "{",
        "    union { uint64_t u; double d; } b;",
        "    int64_t hx, ax, hu = 1, k = 1;",
        "    double f = x, c = 0.0;",
        "    if (x != x) return x;",
        "    b.d = x;",
        "    hx = (int64_t)(b.u >> 32) - (int64_t)((b.u >> 63) << 32); /* the high word, signed */",
        "    ax = hx & 0x7fffffff;",
        f"    if (hx < {m.HX_K0_HIGH:#x}) {{",
        f"        if (ax >= {m.AX_MINUS_ONE:#x}) return x == -1.0 ? -(double)INFINITY : (double)NAN;",
        f"        if (ax < {m.AX_TINY:#x}) return ax < {m.AX_TINIER:#x} ? x : x - x * x * 0.5;",
        f"        if (hx > 0 || hx <= {m.HX_K0_LOW}) k = 0;",
        "    } else if (hx >= 0x7ff00000) {",
        "        return x + x;",
        "    }",
        "    if (k != 0) {",
        f"        if (hx < {m.HX_BIG:#x}) {{",
        "            const double u = 1.0 + x;",
        "            b.d = u;",
        "            k = (int64_t)(b.u >> 52) - 1023;",
        "            /* c = ((1+x) - u) / u corrects the rounding of u */",
        "            c = (k > 0 ? 1.0 - (u - x) : x - (u - 1.0)) / u;",
        "        } else {",
        "            k = (int64_t)(b.u >> 52) - 1023;",
        "        }",
        "        hu = (int64_t)(b.u >> 32) & 0xfffff;",
        f"        if (hu < {m.HU_SQRT2:#x}) {{",
        "            b.u = ((uint64_t)(hu | 0x3ff00000) << 32) | (b.u & 0xffffffffu);",
        "        } else {",
        "            k += 1;",
        "            b.u = ((uint64_t)(hu | 0x3fe00000) << 32) | (b.u & 0xffffffffu);",
        "            hu = (0x100000 - hu) >> 2;",
        "        }",
        "        f = b.d - 1.0;",
        "    }",
        "    {",
        "        const double kd = (double)k;",
        "        const double hfsq = 0.5 * f * f;",
        "        if (hu == 0) {",
        f"            if (f == 0.0) return k == 0 ? 0.0 : kd * {d(m.LOG_LN2_HI)} + (c + kd * {d(m.LOG_LN2_LO)});",
        "            {",
        f"                const double rs = hfsq * (1.0 - {d(m.TWO_THIRDS)} * f);",
        f"                return k == 0 ? f - rs : kd * {d(m.LOG_LN2_HI)} - ((rs - (kd * {d(m.LOG_LN2_LO)} + c)) - f);",
        "            }",
        "        }",
        "        {",
        "            const double s = f / (2.0 + f);",
        "            const double z = s * s;",
        "            const double z2 = z * z;",
        "            const double z4 = z2 * z2;",
        "            const double z6 = z4 * z2;",
        f"            const double r = ((z * {d(m.LP1)} + z2 * ({d(m.LP2)} + z * {d(m.LP3)})) + z4 * ({d(m.LP4)} + z * {d(m.LP5)}))"
        f" + z6 * ({d(m.LP6)} + z * {d(m.LP7)});",
        "            const double t = s * (hfsq + r);",
        f"            return k == 0 ? f - (hfsq - t) : kd * {d(m.LOG_LN2_HI)} - ((hfsq - (t + (kd * {d(m.LOG_LN2_LO)} + c))) - f);",
        "        }",
        "    }",
        "}",
        "",
    ]


def _makefile(prefix: str) -> str:
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

{lib}.so: model.c model_data.c model.h
\t$(CC) $(ALL_CFLAGS) -fPIC -shared -o $@ model.c model_data.c $(LDFLAGS)

%.o: %.c model.h
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


def emit_c99(module, prefix: str = "timber_") -> dict[str, str]:
    """C99 sources for a verified module: {"model.h", "model_data.c", "model.c", "CMakeLists.txt", "Makefile"}.

    `@predict` is exported as `<prefix>infer` / `<prefix>infer_single`, every other function `@f`
    as `<prefix>infer_f` (DESIGN.md section 4).  Raises `TimberError`
    for modules outside what the back-end supports (the message names the function and op)."""
    return _CModule(plan_module(module, prefix, "c99")).files()


def write_c99(module, out_dir, prefix: str = "timber_", force: bool = False) -> list[str]:
    """Write `emit_c99(module, prefix)` into `out_dir`; returns the paths written.

    Refuses (TimberError naming the file) to replace an existing file with different content
    unless `force=True`."""
    from .plan import write_files

    return write_files(emit_c99(module, prefix), out_dir, force)
