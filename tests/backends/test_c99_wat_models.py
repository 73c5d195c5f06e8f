"""Hand-built modules and adversarial rows shared by the C99 and WAT back-end tests.

test_c99.py and test_wat.py load this file by path (it is not a package import, so it works
whether or not tests/ is a package).  The tests at the bottom check that every model here is a
valid module that prints and parses back identically, and that the row generator really hits
thresholds, NaN and the categorical edge cases.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ir.attributes import DenseElementsAttr, StringAttr, TypeAttr
from ir.dialects import arith, func, linear, math, tree
from ir.dialects.builtin import ModuleOp
from ir.dialects.tree import CAT_LIMIT, ZERO_THRESHOLD, Missing, NodeTable, ObliviousTable, Pred, bitset_from_members
from ir.types import IntegerType, f32, f64, tensor

i64 = IntegerType(64)
PRED = {"lt": Pred.LT, "le": Pred.LE, "gt": Pred.GT, "ge": Pred.GE, "eq": Pred.EQ, "ne": Pred.NE}
MISS = {None: Missing.NONE, "nan": Missing.NAN, "zero": Missing.ZERO, "nan-as-zero": Missing.NAN_AS_ZERO}


# ----- building blocks --------------------------------------------------------------------------


def node_table(rows, tdt=np.float32, ldt=np.float32) -> NodeTable:
    """A NodeTable from node specs in node order:
    ("leaf", v) / ("leaf", [v0, v1]) / ("leaf", v, const, [(feature, coeff), ...]) for a linear leaf;
    ("split", feature, "lt", threshold, yes, no[, missing[, default]]);
    ("in", feature, members, yes, no[, missing[, default]])."""
    n = len(rows)
    dim = max(len(np.atleast_1d(r[1])) for r in rows if r[0] == "leaf")
    feature, pred, thr = np.full(n, -1), np.zeros(n, np.uint8), np.zeros(n, tdt)
    yes, no, missing, default = np.full(n, -1), np.full(n, -1), np.zeros(n, np.uint8), np.full(n, -1)
    leaf = np.zeros((n, dim), ldt)
    cat_start, cat_len, words = np.zeros(n, np.int32), np.zeros(n, np.int32), []
    linear = any(r[0] == "leaf" and len(r) > 2 for r in rows)
    lin_const, lin_start, lin_len, lin_feature, lin_coeff = np.zeros(n, ldt), np.zeros(n), np.zeros(n), [], []
    nwords = 0
    for i, r in enumerate(rows):
        if r[0] == "leaf":
            leaf[i] = np.atleast_1d(r[1])
            if linear:
                lin_const[i], lin_start[i], lin_len[i] = r[2], len(lin_feature), len(r[3])
                lin_feature += [f for f, _ in r[3]]
                lin_coeff += [c for _, c in r[3]]
            continue
        if r[0] == "split":
            _, f, p, t, y, nn, *rest = r
            pred[i], thr[i] = PRED[p], t
        else:
            _, f, members, y, nn, *rest = r
            pred[i] = Pred.IN
            w = bitset_from_members(members)
            cat_start[i], cat_len[i] = nwords, len(w)
            words.append(w)
            nwords += len(w)
        feature[i], yes[i], no[i] = f, y, nn
        m = rest[0] if rest else None
        missing[i] = MISS[m]
        if m in ("nan", "zero"):
            default[i] = rest[1]
    lin = {}
    if linear:
        lin = dict(lin_const=lin_const, lin_start=lin_start, lin_len=lin_len, lin_feature=lin_feature, lin_coeff=np.array(lin_coeff, ldt))
    cat_words = np.concatenate(words) if words else None
    return NodeTable(feature, pred, thr, yes, no, missing, default, leaf, cat_start, cat_len, cat_words, **lin)


def oblivious_table(levels, leaves, tdt=np.float32, ldt=np.float32) -> ObliviousTable:
    """levels: (feature, "gt", threshold[, missing[, default_true]]) or (feature, "in", members[, ...])."""
    feats, preds, thrs, miss, dflt, cs, cl, words = [], [], [], [], [], [], [], []
    nwords = 0
    for lv in levels:
        f, p, t, *rest = lv
        feats.append(f)
        if p == "in":
            preds.append(Pred.IN)
            thrs.append(0.0)
            w = bitset_from_members(t)
            cs.append(nwords)
            cl.append(len(w))
            words.append(w)
            nwords += len(w)
        else:
            preds.append(PRED[p])
            thrs.append(t)
            cs.append(0)
            cl.append(0)
        miss.append(MISS[rest[0] if rest else None])
        dflt.append(bool(rest[1]) if len(rest) > 1 else False)
    return ObliviousTable(
        np.array(feats, np.int32),
        np.array(preds, np.uint8),
        np.array(thrs, tdt),
        np.array(miss, np.uint8),
        np.array(dflt, bool),
        np.asarray(leaves, ldt),
        np.array(cs, np.int32),
        np.array(cl, np.int32),
        np.concatenate(words) if words else None,
    )


def new_module(**attrs) -> ModuleOp:
    from ir.attributes import StringAttr

    return ModuleOp.build({f"timber.{k}": StringAttr(v) for k, v in attrs.items()})


def add_func(m: ModuleOp, name: str, in_t, out_t):
    f = func.FuncOp.build(name, [in_t], [out_t], arg_names=["x"])
    m.body.add_op(f)
    return f, f.body.args[0]


def ret(f, v) -> None:
    f.body.add_op(func.ReturnOp(operands=[v]))


def add(f, op):
    f.body.add_op(op)
    return op.results[0]


def ensemble_func(m, name, n_features, n_out, tables, acc=f32, compare=f32, leaves=f32, init=None, in_el=None, cat_negative=None):
    """`@name(x) = tree.ensemble x` with the given (table, out) pairs."""
    in_el = in_el or compare
    f, x = add_func(m, name, tensor(n_features, in_el), tensor(n_out, acc))
    ens = tree.EnsembleOp.build(x, n_out, acc, compare, leaves, init=init, cat_negative=cat_negative, name="margin")
    f.body.add_op(ens)
    for t, out in tables:
        ens.add_tree(t, out)
    ret(f, ens.results[0])
    return f


def predict_from(m, margin_f, transform):
    """`@predict(x) = transform(call @margin(x))`; transform(f, v) returns the result value."""
    t_in = margin_f.function_type.inputs[0]
    t_out = None
    f = func.FuncOp.build("predict", [t_in], [margin_f.function_type.results[0]], arg_names=["x"])
    m.body.add_op(f)
    v = add(f, func.CallOp.build(margin_f, [f.body.args[0]], name="margin"))
    r = transform(f, v)
    t_out = r.type
    if t_out != margin_f.function_type.results[0]:
        from ir.types import FunctionType

        f.attributes["function_type"] = TypeAttr(FunctionType((t_in,), (t_out,)))
    ret(f, r)
    return f


def sigmoid(f, v):
    return add(f, math.SigmoidOp.build(v, name="proba"))


def identity(f, v):
    return v


# ----- the models ---------------------------------------------------------------------------------


def xgb_binary():
    """XGBoost-like: f32 everywhere, `lt` with learned NaN direction, a categorical split, sigmoid."""
    m = new_module(format="xgboost", source="hand/xgb_binary.json")
    t0 = node_table(
        [
            ("split", 2, "lt", 2.45, 1, 2, "nan", 1),
            ("leaf", 0.43),
            ("in", 3, [1, 4, 40], 3, 4, "nan", 4),
            ("leaf", -0.2),
            ("split", 0, "lt", -1.5, 5, 6, "nan", 6),
            ("leaf", 0.1),
            ("leaf", -0.375),
        ]
    )
    t1 = node_table([("split", 1, "lt", 0.0, 1, 2, "nan", 2), ("leaf", -0.0625), ("leaf", 0.03125)])
    t2 = node_table([("leaf", 0.0078125)])
    margin = ensemble_func(m, "margin", 4, 1, [(t0, 0), (t1, 0), (t2, 0)], init=[-0.25])
    predict_from(m, margin, sigmoid)
    return m


def lgb_binary():
    """LightGBM-like: f64 input/compare/leaves, `le`, the three missing types, categorical "code"
    negatives with in-set going "yes", a linear-leaf tree, sigmoid with a scale (arith.mulf)."""
    m = new_module(format="lightgbm", source="hand/lgb_binary.txt")
    d = np.float64
    t0 = node_table(
        [
            ("split", 0, "le", 0.5, 1, 2, "nan-as-zero"),
            ("split", 1, "le", 1e-35, 3, 4, "zero", 4),
            ("in", 2, [0, 2, 3, 33, 70], 5, 6),
            ("leaf", 0.1),
            ("leaf", -0.2),
            ("leaf", 0.3),
            ("split", 3, "le", 1.0000000000000002, 7, 8, "nan", 7),
            ("leaf", -0.4),
            ("leaf", 0.5),
        ],
        d,
        d,
    )
    t1 = node_table(
        [
            ("split", 4, "le", -0.25, 1, 2, "nan", 2),
            ("leaf", 0.25, 0.125, [(0, 0.5), (4, -1.25)]),
            ("leaf", -0.125, 0.0625, [(1, 2.0)]),
        ],
        d,
        d,
    )
    margin = ensemble_func(m, "margin", 5, 1, [(t0, 0), (t1, 0)], acc=f64, compare=f64, leaves=f64, cat_negative="code")

    def scaled_sigmoid(f, v):
        c = add(f, arith.ConstantOp.build([0.7], tensor(1, f64), name="alpha"))
        s = add(f, arith.MulFOp.build(c, v, name="scaled"))
        return add(f, math.SigmoidOp.build(s, name="proba"))

    predict_from(m, margin, scaled_sigmoid)
    return m


def multiclass_softmax():
    """3 classes, trees round-robin, f32 softmax summed in f64 (multi:softprob)."""
    m = new_module(format="xgboost", source="hand/multiclass.json")
    tables = []
    rng = np.random.default_rng(3)
    for r in range(4):
        for k in range(3):
            a, b, c = (float(np.float32(v)) for v in rng.normal(size=3))
            t = node_table(
                [
                    ("split", (r + k) % 4, "lt", a, 1, 2, "nan", 2 if k else 1),
                    ("split", (r + 2 * k + 1) % 4, "lt", b, 3, 4, "nan", 3),
                    ("leaf", c),
                    ("leaf", -c / 2),
                    ("leaf", c / 4),
                ]
            )
            tables.append((t, k))
    margin = ensemble_func(m, "margin", 4, 3, tables, init=[0.5, -0.5, 0.25])
    predict_from(m, margin, lambda f, v: add(f, math.SoftmaxOp.build(v, name="proba", acc=TypeAttr(f64))))
    return m


def multiclass_argmax():
    """multi:softmax: the class index as a float, through math.argmax and arith.sitofp."""
    m = multiclass_softmax()
    pred = m.lookup("predict")
    m.body.remove_op(pred)
    margin = m.lookup("margin")

    def argmax(f, v):
        i = add(f, math.ArgmaxOp.build(v, name="class"))
        return add(f, arith.SIToFPOp.build(i, tensor(1, f32), name="label"))

    predict_from(m, margin, argmax)
    return m


def catboost_like():
    """Oblivious trees (f32 compare, f64 leaves and sums), vector leaves leaf-major, a depth-0 tree,
    one-hot `eq` and a categorical level, NaN as -inf/+inf (missing -> false/true); node trees
    interleaved so that the accumulation order crosses the two kinds."""
    m = new_module(format="catboost", source="hand/catboost.cbm")
    d = np.float64
    o1 = oblivious_table(
        [(0, "gt", 0.5, "nan", False), (1, "gt", -1.25, "nan", True)], [[0.1, -0.1], [0.2, -0.2], [0.3, -0.3], [0.4, -0.4]], ldt=d
    )
    o2 = oblivious_table([], [[0.015625, 0.03125]], ldt=d)
    o3 = oblivious_table(
        [(2, "eq", 3.0), (3, "in", [0, 5, 64]), (0, "gt", 1e-20, "nan", False)],
        [[float(i) / 8, -float(i) / 16] for i in range(8)],
        ldt=d,
    )
    n1 = node_table([("split", 1, "gt", 0.75, 1, 2, "nan", 1), ("leaf", [0.5, 0.25]), ("leaf", [-0.5, 0.125])], ldt=d)
    margin = ensemble_func(m, "margin", 4, 2, [(o1, 0), (n1, 0), (o2, 0), (o3, 0)], acc=f64, compare=f32, leaves=f64, init=[0.125, -0.125])
    predict_from(m, margin, lambda f, v: add(f, math.SoftmaxOp.build(v, name="proba")))
    return m


def predicate_zoo():
    """Every predicate and missing kind in one ensemble (the back-ends dispatch on the op byte),
    f64 input rounded to an f32 compare, f32 leaves summed into f64, per-tree outputs."""
    m = new_module(format="hand", source="hand/zoo.tir")
    tables = []
    for i, (p, miss) in enumerate(
        [
            ("lt", "nan"),
            ("le", "zero"),
            ("gt", None),
            ("ge", "nan-as-zero"),
            ("eq", "nan"),
            ("ne", None),
            ("ne", "zero"),
            ("eq", "nan-as-zero"),
        ]
    ):
        f = i % 4
        thr = [0.5, -0.0, 1e-35, 3.0000001][i % 4]
        rest = (miss, 2 if i % 2 else 1) if miss in ("nan", "zero") else ((miss,) if miss else ())
        t = node_table([("split", f, p, thr, 1, 2, *rest), ("leaf", 0.25 * (i + 1)), ("leaf", -0.125 * (i + 1))])
        tables.append((t, i % 2))
    cat = node_table(
        [("in", 1, [0, 1, 31, 32, 95], 1, 2, "nan-as-zero"), ("in", 2, [], 3, 4, "nan", 3), ("leaf", 1.5), ("leaf", 2.5), ("leaf", -3.5)]
    )
    tables.append((cat, 1))
    obl = oblivious_table([(0, "le", 0.5, "zero", True), (3, "ne", 2.0), (1, "in", [2, 7], "nan-as-zero")], np.arange(8) / 64)
    tables.append((obl, 0))
    margin = ensemble_func(m, "margin", 4, 2, tables, acc=f64, compare=f32, leaves=f32, in_el=f64, init=[1.0, -1.0])
    predict_from(m, margin, identity)
    return m


def arith_zoo():
    """Every arith/math op and linear.affine outside trees, in f32 and f64, each in its own exported
    function (`@<name>`), so one failing op is named by the test; @predict is one of them."""
    m = new_module(format="hand", source="hand/arith.tir")
    t3, d3 = tensor(3, f32), tensor(3, f64)

    def fn(name, build, out_t=t3):
        f, x = add_func(m, name, t3, out_t)
        ret(f, build(f, x))

    def const(f, vals, t=t3):
        return add(f, arith.ConstantOp.build(vals, t))

    c_vals = [0.5, -0.0, np.inf]
    for cls in (arith.AddFOp, arith.SubFOp, arith.MulFOp, arith.DivFOp, arith.MaximumFOp, arith.MinimumFOp):
        short = cls.name.split(".")[1]
        fn(f"{short}_xc", lambda f, x, cls=cls: add(f, cls.build(x, const(f, c_vals))))
        fn(f"{short}_cx", lambda f, x, cls=cls: add(f, cls.build(const(f, c_vals), x)))
        fn(
            f"{short}_f64",
            lambda f, x, cls=cls: add(f, cls.build(add(f, arith.ExtFOp.build(x, d3)), const(f, [1e300, -1e-320, 0.1], d3))),
            d3,
        )
    fn("negf", lambda f, x: add(f, arith.NegFOp.build(x)))
    fn("exp", lambda f, x: add(f, math.ExpOp.build(x)))
    fn("sigmoid", lambda f, x: add(f, math.SigmoidOp.build(x)))
    fn("exp_f64", lambda f, x: add(f, math.ExpOp.build(add(f, arith.ExtFOp.build(x, d3)))), d3)
    fn("log1p", lambda f, x: add(f, math.Log1pOp.build(x)))
    fn("fmath_exp_f64", lambda f, x: add(f, math.ExpOp.build(add(f, arith.ExtFOp.build(x, d3)), impl=StringAttr("fmath"))), d3)
    fn("fmath_softmax", lambda f, x: add(f, math.SoftmaxOp.build(x, impl=StringAttr("fmath"))))
    fn("log1p_exp_f64", lambda f, x: add(f, math.Log1pOp.build(add(f, math.ExpOp.build(add(f, arith.ExtFOp.build(x, d3)))))), d3)
    fn("sigmoid_f64", lambda f, x: add(f, math.SigmoidOp.build(add(f, arith.ExtFOp.build(x, d3)))), d3)
    fn(
        "truncf",
        lambda f, x: add(
            f, arith.TruncFOp.build(add(f, arith.MulFOp.build(add(f, arith.ExtFOp.build(x, d3)), const(f, [1e300, -1e-320, 0.1], d3))), t3)
        ),
    )
    for p in arith.CMPF_PREDICATES:

        def cmp(f, x, p=p):
            cond = add(f, arith.CmpFOp.build(p, x, const(f, [0.5, -0.0, np.nan])))
            return add(f, arith.SelectOp.build(cond, x, const(f, [7.0, 8.0, 9.0])))

        fn(f"cmp_{p}", cmp)
    fn("softmax", lambda f, x: add(f, math.SoftmaxOp.build(x)))
    fn("softmax_f64_acc32", lambda f, x: add(f, math.SoftmaxOp.build(add(f, arith.ExtFOp.build(x, d3)), acc=TypeAttr(f32))), d3)
    fn("argmax", lambda f, x: add(f, math.ArgmaxOp.build(x)), tensor(1, i64))
    fn("argmax_f", lambda f, x: add(f, arith.SIToFPOp.build(add(f, math.ArgmaxOp.build(x)), tensor(1, f32))), tensor(1, f32))
    w = np.array([[0.5, -2.0, 0.25], [1e30, 1e30, -1e30]], np.float32)
    b = np.array([0.125, -3.0], np.float32)
    fn("affine_skip", lambda f, x: add(f, linear.AffineOp.build(x, w, b, f32, "skip")), tensor(2, f32))
    fn("affine_propagate", lambda f, x: add(f, linear.AffineOp.build(x, w, b, f32, "propagate")), tensor(2, f32))
    fn(
        "affine_f64",
        lambda f, x: add(f, linear.AffineOp.build(x, np.array([[0.1, 0.2, 0.3]]), np.array([0.7]), f64, "skip")),
        tensor(1, f64),
    )
    big = np.arange(12 * 3, dtype=np.float32).reshape(12, 3) / 7
    fn("affine_wide", lambda f, x: add(f, linear.AffineOp.build(x, big, np.zeros(12, np.float32), f32, "skip")), tensor(12, f32))
    # Long elementwise chains (looped rather than unrolled code in the back-ends).
    fn(
        "wide_chain",
        lambda f, x: add(
            f,
            math.SoftmaxOp.build(
                add(
                    f,
                    arith.MaximumFOp.build(
                        add(f, linear.AffineOp.build(x, big, np.zeros(12, np.float32), f32, "propagate")),
                        const(f, np.linspace(-3, 3, 12), tensor(12, f32)),
                    ),
                )
            ),
        ),
        tensor(12, f32),
    )
    fn(
        "concat",
        lambda f, x: add(
            f,
            arith.ConcatOp.build(
                [add(f, arith.ExtractOp.build(x, 2)), x, add(f, math.ExpOp.build(x)), add(f, arith.ExtractOp.build(x, 0))]
            ),
        ),
        tensor(8, f32),
    )
    fn("predict", lambda f, x: add(f, math.SigmoidOp.build(add(f, arith.AddFOp.build(x, const(f, c_vals))))))
    return m


def math_module(kind: str, el) -> ModuleOp:
    """@predict = one math function of a 1-element tensor: "exp", "log1p" or "fmath" (fmath's exp,
    which also gets @softmax over three elements) — what the C99 and WAT tests check bit for bit."""
    m = new_module(format="hand", source=f"hand/{kind}.tir")
    f, x = add_func(m, "predict", tensor(1, el), tensor(1, el))
    if kind == "log1p":
        ret(f, add(f, math.Log1pOp.build(x)))
    elif kind == "exp":
        ret(f, add(f, math.ExpOp.build(x)))
    else:
        ret(f, add(f, math.ExpOp.build(x, impl=StringAttr("fmath"))))
        g, y = add_func(m, "softmax", tensor(3, el), tensor(3, el))
        ret(g, add(g, math.SoftmaxOp.build(y, impl=StringAttr("fmath"))))
    return m


# ----- integer and bit ops, math expansions -------------------------------------------------------

i32 = IntegerType(32)
i1 = IntegerType(1)
INT_OPS = (
    arith.AddIOp,
    arith.SubIOp,
    arith.MulIOp,
    arith.AndIOp,
    arith.OrIOp,
    arith.XOrIOp,
    arith.ShLIOp,
    arith.ShRSIOp,
    arith.ShRUIOp,
)


def int_zoo():
    """Every integer/bit arith op in its own exported function (`@<op>_i64`, `@cmpi_ult_i32`, ...).

    The ABI carries floats in and f32/f64/i64 out, so i64 operands are the bits of f64 inputs and
    i32 operands the bits of f32 inputs (`arith.bitcast`, split with `arith.extract`), and i32
    results are sign-extended (`arith.extsi`) to i64.  Rows from `int_rows` hit the edges."""
    m = new_module(format="hand", source="hand/int.tir")

    def fn(name, in_t, out_t, build):
        f, x = add_func(m, name, in_t, out_t)
        ret(f, build(f, x))

    def bits(f, x, it):
        return add(f, arith.BitcastOp.build(x, tensor(x.type.shape[0], it)))

    def const(f, vals, el, n=None):
        vals = np.broadcast_to(np.asarray(vals, el.numpy), (n,) if n else np.shape(vals))
        return add(f, arith.ConstantOp.build(np.array(vals), tensor(len(vals), el)))

    for w, fl, it in ((64, f64, i64), (32, f32, i32)):

        def widen(f, v, w=w):
            return v if w == 64 else add(f, arith.ExtSIOp.build(v, tensor(v.type.shape[0], i64)))

        def pair(f, x, it=it):
            b = bits(f, x, it)
            return add(f, arith.ExtractOp.build(b, 0)), add(f, arith.ExtractOp.build(b, 1))

        for cls in INT_OPS:
            short = cls.name.split(".")[1]
            fn(
                f"{short}_i{w}",
                tensor(2, fl),
                tensor(1, i64),
                lambda f, x, cls=cls, pair=pair, widen=widen: widen(f, add(f, cls.build(*pair(f, x)))),
            )
        for p in arith.CMPI_PREDICATES:

            def cmpi(f, x, p=p, pair=pair, widen=widen):
                a, b = pair(f, x)
                return widen(f, add(f, arith.SelectOp.build(add(f, arith.CmpIOp.build(p, a, b)), a, b)))

            fn(f"cmpi_{p}_i{w}", tensor(2, fl), tensor(1, i64), cmpi)
        # bit casts both ways: the NaN payloads of the inputs must come back unchanged
        fn(f"bits_f{w}", tensor(3, fl), tensor(3, i64), lambda f, x, it=it, widen=widen: widen(f, bits(f, x, it)))

        def roundtrip(f, x, it=it, fl=fl, widen=widen):
            b = add(f, arith.XOrIOp.build(bits(f, x, it), const(f, [5, -1], it)))
            back = add(f, arith.BitcastOp.build(b, tensor(2, fl)))
            return widen(f, bits(f, add(f, arith.ExtractOp.build(back, 0)), it))

        fn(f"roundtrip_f{w}", tensor(2, fl), tensor(1, i64), roundtrip)
        for fw, src in ((64, f64), (32, f32)):
            if src is fl:
                fn(
                    f"fptosi_f{fw}_i{w}",
                    tensor(2, src),
                    tensor(2, i64),
                    lambda f, x, it=it, widen=widen: widen(f, add(f, arith.FPToSIOp.build(x, tensor(2, it)))),
                )
            else:
                # the other float width: through arith.extf/truncf first
                conv = arith.ExtFOp if fw == 64 else arith.TruncFOp

                def fptosi(f, x, it=it, widen=widen, conv=conv, src=src):
                    y = add(f, conv.build(x, tensor(2, src)))
                    return widen(f, add(f, arith.FPToSIOp.build(y, tensor(2, it))))

                fn(f"fptosi_f{fw}_i{w}_from_f{fl.width}", tensor(2, fl), tensor(2, i64), fptosi)
        fn(f"sitofp_i{w}", tensor(2, fl), tensor(2, f64), lambda f, x, it=it: add(f, arith.SIToFPOp.build(bits(f, x, it), tensor(2, f64))))
        fn(
            f"sitofp_i{w}_f32",
            tensor(2, fl),
            tensor(2, f32),
            lambda f, x, it=it: add(f, arith.SIToFPOp.build(bits(f, x, it), tensor(2, f32))),
        )
        tables = {
            "f64": (np.array([-0.0, np.inf, 1.5, np.nan, -3.25, 1e-310, -np.inf, 7.0]), f64),
            "i64": (np.array([-(2**63), 2**63 - 1, 0, -1, 12345678901, 5, -7, 2**31, 3, 1, 2, 4, 8, 16, 32, 64]), i64),
            "f32": (np.array([0.5, -2.0, np.nan, 3e38], np.float32), f32),
            "one": (np.array([42.0]), f64),
        }
        for tname, (vals, el) in tables.items():
            attr = DenseElementsAttr(vals.astype(el.numpy), tensor(len(vals), el))
            fn(
                f"lookup_{tname}_i{w}",
                tensor(2, fl),
                tensor(2, el),
                lambda f, x, it=it, attr=attr: add(f, arith.LookupOp.build(bits(f, x, it), attr)),
            )
        # NaN payloads in constants and tables survive exactly (C writes such tables as bit patterns)
        nans = (
            (
                np.array([0x7FF8000000000123, -0x000FFFFFFFFFFFFF, 0x7FF0000000000001, 0x3FF8000000000000])
                if w == 64
                else np.array([0x7FC00123, -0x7FFFFF, 0x7F800001, 0x3FC00000])
            )
            .astype(it.numpy)
            .view(fl.numpy)
        )

        def nan_consts(f, x, it=it, fl=fl, nans=nans, widen=widen):
            c = add(f, arith.ConstantOp.build(nans, tensor(4, fl)))
            return widen(f, add(f, arith.AddIOp.build(bits(f, x, it), bits(f, c, it))))

        fn(f"nan_consts_f{w}", tensor(4, fl), tensor(4, i64), nan_consts)
        attr = DenseElementsAttr(nans, tensor(4, fl))
        fn(
            f"lookup_nans_f{w}",
            tensor(2, fl),
            tensor(2, i64),
            lambda f, x, it=it, attr=attr, widen=widen: widen(f, bits(f, add(f, arith.LookupOp.build(bits(f, x, it), attr)), it)),
        )
    fn(
        "trunci",
        tensor(2, f64),
        tensor(2, i64),
        lambda f, x: add(f, arith.ExtSIOp.build(add(f, arith.TruncIOp.build(bits(f, x, i64), tensor(2, i32))), tensor(2, i64))),
    )
    for cls in (arith.AndIOp, arith.OrIOp, arith.XOrIOp):

        def logic(f, x, cls=cls):
            a = add(f, arith.CmpFOp.build("olt", x, const(f, [0.5, -1.0], f64)))
            b = add(f, arith.CmpFOp.build("uno", x, x))
            return add(f, arith.SelectOp.build(add(f, cls.build(a, b)), const(f, [1, 2], i64), const(f, [-3, 2**62], i64)))

        fn(f"{cls.name.split('.')[1]}_i1", tensor(2, f64), tensor(2, i64), logic)

    def spread(f, x):
        one = add(f, arith.ExtractOp.build(x, 2))
        wide = add(f, arith.BroadcastOp.build(one, tensor(12, f64)))
        return add(f, arith.MulFOp.build(wide, const(f, np.arange(12) - 5.5, f64)))

    fn("broadcast", tensor(3, f64), tensor(12, f64), spread)

    def wide_ints(f, x):
        # 12 elements: loops, not unrolled code; non-splat integer constants become tables
        b = bits(f, x, i64)
        s = add(f, arith.ShLIOp.build(b, const(f, [0, 1, 63, 64, 65, -1, -64, 200, 31, 32, 7, -(2**63)], i64)))
        t = add(f, arith.ShRSIOp.build(s, const(f, [1, 0, 3, 64, -1, 127, 5, 6, 2**62, 33, 9, 65], i64)))
        return add(f, arith.MulIOp.build(t, const(f, [3, -(2**63), 2**63 - 1, -1, 7, 5, 11, 13, 1, 0, 2**40, -(2**31)], i64)))

    fn("wide_ints", tensor(12, f64), tensor(12, i64), wide_ints)

    def wide_i32(f, x):
        b = add(f, arith.BitcastOp.build(x, tensor(12, i32)))
        s = add(f, arith.AddIOp.build(b, const(f, [2**31 - 1, -(2**31), 1, -1, 0, 5, 2**30, 31, 32, 33, -32, 7], i32)))
        return add(
            f,
            arith.ExtSIOp.build(add(f, arith.ShRUIOp.build(s, const(f, [0, 1, 31, 32, 33, -1, 40, 2, 3, 4, 5, 6], i32))), tensor(12, i64)),
        )

    fn("wide_i32", tensor(12, f32), tensor(12, i64), wide_i32)
    # @predict: one of them, so the module has the ABI's entry point
    fn(
        "predict",
        tensor(2, f64),
        tensor(1, i64),
        lambda f, x: add(f, arith.AddIOp.build(*[add(f, arith.ExtractOp.build(bits(f, x, i64), k)) for k in (0, 1)])),
    )
    return m


INT_EDGES = [0, 1, -1, 2, 3, 7, 31, 32, 33, 63, 64, 65, 127, 128, -2, -31, -32, -33, -63, -64, -65, -128, 255, 1000]
INT_EDGES += [2**31 - 1, -(2**31), 2**31, -(2**31) - 1, 2**32 - 1, 2**32, -(2**32), 2**62, -(2**62), 2**63 - 1, -(2**63), -(2**63) + 1]


def int_rows(module, func_name: str = "predict", n_random: int = 3000, seed: int = 0) -> np.ndarray:
    """Rows for `int_zoo`'s functions: the inputs' bit patterns are interesting integers (edges of
    both widths, shift amounts past the width and negative, random bits, NaN payloads) and the
    inputs' values interesting floats (NaN, ±inf, ±0, -0.5, the conversion limits ± one ulp)."""
    f = module.lookup(func_name)
    t = f.function_type.inputs[0]
    n, dt = t.shape[0], t.element.numpy
    it = np.int64 if dt == np.float64 else np.int32
    info = np.iinfo(it)
    rng = np.random.default_rng(seed)
    edges = np.array([v for v in INT_EDGES if info.min <= v <= info.max], it)
    nan_bits = (
        [0x7FF8000000000001, 0x7FF0000000000001, -0x7FFFFFFFFFFFF, 0x7FF4000000000000]
        if it is np.int64
        else [0x7FC00001, 0x7F800001, -0x3FFFFF, 0x7FA00000]
    )
    edges = np.concatenate([edges, np.array(nan_bits, it)])
    fl = [
        np.nan,
        -np.nan,
        np.inf,
        -np.inf,
        0.0,
        -0.0,
        0.5,
        -0.5,
        0.99999,
        -0.99999,
        1.5,
        -1.5,
        1e300,
        -1e300,
        1e-310,
        3e38,
        -3e38,
        1e10,
        -1e10,
    ]
    for lim in (2.0**63, -(2.0**63), 2.0**31, -(2.0**31), 2.0**31 - 1, -(2.0**31) - 1, 2.0**32, 2.0**62):
        for d in (np.float64, np.float32):
            x = d(lim)
            fl += [float(np.nextafter(x, d(-np.inf))), float(x), float(np.nextafter(x, d(np.inf)))]
    with np.errstate(over="ignore"):
        floats = np.array(fl, np.float64).astype(dt).view(it)
    pool = np.concatenate([edges, floats])
    # every pair of edges in the first two columns, the rest random picks from the pool
    a, b = np.meshgrid(pool, pool, indexing="ij")
    cols = [a.reshape(-1), b.reshape(-1)] + [rng.choice(pool, a.size) for _ in range(max(0, n - 2))]
    grid = np.stack(cols[:n], axis=1)
    randbits = rng.integers(info.min, info.max, size=(n_random, n), dtype=it, endpoint=True)
    small = rng.integers(-70, 71, size=(n_random // 3, n)).astype(it)
    mixed = np.where(rng.random((n_random, n)) < 0.5, rng.choice(pool, (n_random, n)), randbits)
    X = np.concatenate([grid, randbits, small, mixed]).astype(it)
    return X.view(dt)


MATH_OPS = ["math.exp", "math.exp:fmath", "math.exp2", "math.log1p", "math.log", "math.sin", "math.cos", "math.tanh", "math.erfinv", "math.sigmoid"]


def math_op_module(spec: str, el) -> ModuleOp:
    """@predict = the math op `spec` ("math.exp", or "math.exp:fmath" for an `impl`) on one element,
    and @wide the same on 12 elements (loops rather than unrolled code)."""
    from ir.opdef import OP_REGISTRY

    name, _, impl = spec.partition(":")
    cls = OP_REGISTRY[name]
    attrs = {"impl": StringAttr(impl)} if impl else {}
    m = new_module(format="hand", source=f"hand/{spec}.tir")
    for fname, n in (("predict", 1), ("wide", 12)):
        f, x = add_func(m, fname, tensor(n, el), tensor(n, el))
        ret(f, add(f, cls.build(x, **attrs)))
    return m


def math_inputs(dt, n_random: int = 60000, seed: int = 13) -> np.ndarray:
    """At least 10^5 values (1-D, dtype `dt`) that matter to some math function: NaN, ±inf, ±0,
    subnormals, the largest values, exp's and fmath's overflow/underflow limits, ±1 and around,
    multiples of pi/4, each with its neighbours; uniform samples over the useful ranges; random
    bit patterns."""
    from ir.dialects.mathimpl import exp as expimpl

    rng = np.random.default_rng(seed)
    fi = np.finfo(dt)
    special = [0.0, -0.0, np.inf, -np.inf, np.nan, -np.nan, 1.0, -1.0, 0.5, -0.5, 2.0, -2.0, 10.0, -10.0, 20.0, -20.0]
    special += [float(fi.max), -float(fi.max), float(fi.tiny), -float(fi.tiny), float(fi.smallest_subnormal), -float(fi.smallest_subnormal)]
    special += [
        expimpl.OVERFLOW,
        expimpl.UNDERFLOW,
        expimpl.FMATH_HI,
        expimpl.FMATH_LO,
        88.72283,
        -87.33654,
        -103.97208,
        709.0,
        -708.4,
        -745.0,
    ]
    special += [k * np.pi / 4 for k in range(-16, 17)] + [1e6, -1e6, 1e15, 1e22, 1e300, -1e300, 2.0**52, 2.0**53, 2.0**-29, 2.0**-54]
    special += [0.41421356, -0.29289321, 1 - 2.0**-24, -1 + 2.0**-24, 0.999999, -0.999999, 1e-300, -1e-300, 1e-320, -1e-320]
    with np.errstate(over="ignore"):
        s = np.array(special, np.float64).astype(dt)
        near = [np.nextafter(s, np.array(d, dt)) for d in (-np.inf, np.inf)]
        near += [np.nextafter(near[0], np.array(-np.inf, dt)), np.nextafter(near[1], np.array(np.inf, dt))]
        vals = [s, *near]
        vals.append(rng.uniform(-750, 750, n_random // 4).astype(dt))
        vals.append(rng.uniform(-1.0, 1.0, n_random // 4).astype(dt))
        vals.append(rng.uniform(-20, 20, n_random // 8).astype(dt))
        mag = 10.0 ** rng.uniform(-320, 308, n_random // 8)
        vals.append((mag * rng.choice([-1.0, 1.0], mag.size)).astype(dt))
        ui = np.uint64 if dt == np.float64 else np.uint32
        bits = rng.integers(0, np.iinfo(ui).max, n_random // 4, dtype=ui, endpoint=True)
        vals.append(bits.view(dt))
        sub = rng.integers(1, 2 ** (52 if dt == np.float64 else 23), 2000, dtype=np.int64).astype(ui)
        vals.append(sub.view(dt))
        vals.append((-(sub.view(dt))).astype(dt))
    out = np.concatenate([np.asarray(v, dt).reshape(-1) for v in vals])
    reps = -(-100_000 // len(out))
    if reps > 1:  # top up with more random bits rather than repeating
        extra = rng.integers(0, np.iinfo(ui).max, 100_000 - len(out) + 12, dtype=ui, endpoint=True).view(dt)
        out = np.concatenate([out, extra])
    return out[: len(out) - len(out) % 12]


def arith_functions(module) -> list[str]:
    """Names of the functions of a module (each exported by the back-ends)."""
    return [op.sym_name for op in module.body.ops if isinstance(op, func.FuncOp)]


def empty_and_constant():
    """An ensemble without trees (just init) and one of single-leaf trees; an extra exported function."""
    m = new_module(format="hand", source="hand/empty.tir")
    margin = ensemble_func(m, "margin", 2, 2, [], init=[0.5, -1.5])
    ensemble_func(m, "leaves", 2, 1, [(node_table([("leaf", 0.25)]), 0), (node_table([("leaf", -1.0)]), 0)])
    # Non-finite constants in init and leaves must come out exactly (C has no literal for them).
    nan_leaf = node_table([("split", 0, "lt", 0.0, 1, 2), ("leaf", np.nan), ("leaf", np.inf)])
    ensemble_func(m, "special", 2, 3, [(nan_leaf, 0), (nan_leaf, 1)], init=[np.inf, -np.nan, 1.0])
    predict_from(m, margin, identity)
    return m


# ----- random forests ------------------------------------------------------------------------------


def random_tree(rng, n_features, depth, tdt, ldt, dim=1, preds=("lt",), missings=("nan",), cat_p=0.0, thresholds=None):
    """A random (not necessarily full) tree; thresholds come from `thresholds[f]` so rows can hit them."""
    rows: list = []

    def grow(d):
        i = len(rows)
        rows.append(None)
        if d == depth or (d > 1 and rng.random() < 0.15):
            v = rng.normal(size=dim).astype(ldt)
            rows[i] = ("leaf", v.tolist() if dim > 1 else float(v[0]))
            return i
        f = int(rng.integers(n_features))
        y = grow(d + 1)
        n = grow(d + 1)
        m = missings[int(rng.integers(len(missings)))]
        rest = (m, y if rng.random() < 0.5 else n) if m in ("nan", "zero") else ((m,) if m else ())
        if rng.random() < cat_p:
            members = sorted(set(int(c) for c in rng.integers(0, 70, size=int(rng.integers(0, 6)))))
            rows[i] = ("in", f, members, y, n, *rest)
        else:
            thr = thresholds[f][int(rng.integers(len(thresholds[f])))] if thresholds else float(rng.normal())
            rows[i] = ("split", f, preds[int(rng.integers(len(preds)))], thr, y, n, *rest)
        return i

    grow(0)
    return node_table(rows, tdt, ldt)


def random_forest(n_trees=20, n_features=6, n_classes=1, depth=4, seed=0, compare=f32, leaves=f32, acc=f32, in_el=None, **kw):
    """A random ensemble (round-robin classes) with sigmoid (1 class) or softmax (several) on top."""
    rng = np.random.default_rng(seed)
    tdt = compare.numpy.type
    thresholds = [np.unique(rng.normal(size=5).astype(tdt)).tolist() for _ in range(n_features)]
    m = new_module(format="hand", source=f"hand/forest_{n_trees}x{n_classes}.json")
    tables = [
        (random_tree(rng, n_features, depth, tdt, leaves.numpy.type, thresholds=thresholds, **kw), t % n_classes) for t in range(n_trees)
    ]
    init = rng.normal(size=n_classes)
    margin = ensemble_func(m, "margin", n_features, n_classes, tables, acc=acc, compare=compare, leaves=leaves, init=init, in_el=in_el)
    if n_classes == 1:
        predict_from(m, margin, sigmoid)
    else:
        predict_from(m, margin, lambda f, v: add(f, math.SoftmaxOp.build(v, name="proba")))
    return m


MODELS = {
    "xgb_binary": xgb_binary,
    "lgb_binary": lgb_binary,
    "multiclass_softmax": multiclass_softmax,
    "multiclass_argmax": multiclass_argmax,
    "catboost_like": catboost_like,
    "predicate_zoo": predicate_zoo,
    "arith_zoo": arith_zoo,
    "empty_and_constant": empty_and_constant,
    "forest_mixed": lambda: random_forest(
        30,
        6,
        3,
        5,
        seed=1,
        compare=f64,
        leaves=f64,
        acc=f64,
        preds=("le", "lt", "ge"),
        missings=("nan", "zero", "nan-as-zero", None),
        cat_p=0.2,
    ),
    "forest_f32_from_f64": lambda: random_forest(25, 5, 1, 5, seed=2, in_el=f64, missings=("nan", None), cat_p=0.1),
}


# ----- random modules from the IR's own generator (tests/irgen.py) -----------------------------------

# (seed, options) for tests/irgen.random_module: every precision mix, categorical "value"/"code",
# vector, oblivious and linear leaves, and each output transform.
IRGEN_CONFIGS = [
    (1, dict()),
    (2, dict(input_type=f64, compare=f64, leaves=f64, acc=f64, transform="exp", cat_negative="code")),
    (3, dict(input_type=f64, compare=f32, leaves=f32, acc=f64, n_outputs=3, transform="softmax")),
    (4, dict(n_outputs=3, vector_leaves=True, oblivious=True, transform="argmax")),
    (5, dict(input_type=f64, compare=f64, leaves=f64, acc=f64, linear=True, transform="none")),
    (6, dict(compare=f64, leaves=f64, acc=f32, oblivious=True, n_outputs=2, transform="softmax", cat_negative="code")),
    (7, dict(leaves=f64, acc=f64, n_trees=40, depth=6, linear=True)),
    (8, dict(input_type=f64, n_outputs=4, transform="none", vector_leaves=True)),
]


def irgen_module(seed: int, options: dict):
    """`tests/irgen.random_module(seed, **options)`, loaded by path; skips when the generator is absent."""
    import importlib.util

    import pytest

    path = Path(__file__).resolve().parents[1] / "irgen.py"
    if not path.exists():
        pytest.skip("tests/irgen.py is not present")
    spec = importlib.util.spec_from_file_location("timber_irgen", path)
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    return gen.random_module(seed, **options)


# ----- real model files ----------------------------------------------------------------------------

CORPUS = Path(__file__).resolve().parents[2] / ".." / "shared" / "corpus"
# Small corpus files covering both front-ends: categorical sets, linear leaves, dart, gblinear,
# missing types, multiclass, a constant tree, rf averaging.
CORPUS_FAST = [
    "timber/breast_cancer_model.json",
    "tl2cgen/xgb_toy_categorical/xgb_toy_categorical_model.json",
    "boosters/xgboost/dart_regression.model.json",
    "boosters/xgboost/gblinear_multiclass.model.json",
    "boosters/xgboost/gbtree_multiclass_missing.model.json",
    "timber/lgb_breast_cancer.txt",
    "treelite/toy_categorical/toy_categorical_model.txt",
    "boosters/lightgbm/linear_tree/model.txt",
    "lleaves/mixed_categorical/model.txt",
    "tl2cgen/lightgbm_constant_tree/model_with_constant_tree.txt",
    "leaves/lg_rf_iris.model",
    "boosters/lightgbm/multiclass/model.txt",
]


def corpus_files() -> list[str]:
    """Every XGBoost/LightGBM model file of the corpus (relative paths), for the slow sweep."""
    if not CORPUS.is_dir():
        return []
    skip = ("expected", "input", "pred", "_data", "features", "test", "README", "legacy")
    out = []
    for p in sorted(CORPUS.rglob("*")):
        if p.suffix in (".json", ".txt", ".model", ".ubj") and not any(s in str(p.relative_to(CORPUS)) for s in skip):
            out.append(str(p.relative_to(CORPUS)))
    return out


def corpus_module(rel: str):
    """Load a corpus model with Timber's own front-ends; skip when the corpus or the front-end is absent."""
    import pytest

    path = CORPUS / rel
    if not path.exists():
        pytest.skip(f"{rel}: ../shared/corpus is not present")
    detect = pytest.importorskip("timber.detect")
    from ir.diagnostics import TimberError

    try:
        return detect.load_model(str(path))
    except TimberError as e:
        if "not supported yet" in str(e) or "cannot tell" in str(e):
            pytest.skip(f"{rel}: {e}")
        raise


# ----- rows ---------------------------------------------------------------------------------------


def _neighbours(v: float, dt) -> list[float]:
    x = dt(v)
    return [float(np.nextafter(x, dt(-np.inf))), float(x), float(np.nextafter(x, dt(np.inf)))]


def special_values(module) -> dict[int, list[float]]:
    """Per feature: every threshold and its neighbours in the compare type and in f32/f64, category
    members and their neighbours, plus the values every model must survive."""
    base = [np.nan, -np.nan, np.inf, -np.inf, 0.0, -0.0, 1.0, -1.0, 0.5, -0.5, 2.5, 1e-36, -1e-36, 1e30, -1e30, 3e-39, -3e-39]
    base += _neighbours(ZERO_THRESHOLD, np.float32) + _neighbours(-ZERO_THRESHOLD, np.float32) + _neighbours(ZERO_THRESHOLD, np.float64)
    base += [
        float(CAT_LIMIT),
        float(CAT_LIMIT - 1),
        float(CAT_LIMIT) + 0.5,
        float(CAT_LIMIT - 128),
        2.0**32,
        -(2.0**31),
        1e10,
        -0.999,
        -1.0000001,
    ]
    vals: dict[int, list[float]] = {}
    for op in module.walk():
        if not isinstance(op, tree.EnsembleOp):
            continue
        for t_op in op.trees:
            t = t_op.table
            n = t.n_nodes if isinstance(t, NodeTable) else t.depth
            for i in range(n):
                p = int(t.pred[i])
                if p == Pred.LEAF:
                    continue
                f = int(t.feature[i])
                out = vals.setdefault(f, [])
                if p == Pred.IN:
                    for c in t.category_set(i):
                        out += [c, c + 0.5, c - 0.5, c + 1, c - 1, -c]
                    out += [31, 32, 33, 63, 64, 95, 96, 127, 128]
                else:
                    thr = float(t.threshold[i])
                    for dt in (np.float32, np.float64):
                        out += _neighbours(thr, dt)
    return {f: base + v for f, v in vals.items()} | {"*": base}


def adversarial_rows(module, n_random=300, seed=0, func_name="predict", max_rows=None, max_cells=4_000_000) -> np.ndarray:
    """Rows in the function's input dtype mixing special values per feature with random ones
    (at most `max_rows`, and at most `max_cells` values in all, when given: the per-feature sweep is
    then sampled, so very wide models stay cheap)."""
    f = module.lookup(func_name)
    t = f.function_type.inputs[0]
    n_features, dt = t.shape[0], t.element.numpy
    if max_cells is not None and n_features:
        cap = max(5 + min(n_random, 100), max_cells // n_features)
        max_rows = cap if max_rows is None else min(max_rows, cap)
        n_random = min(n_random, max_rows - 5)
    sv = special_values(module)
    rng = np.random.default_rng(seed)
    pools = [np.asarray(sv.get(j, sv["*"]), np.float64) for j in range(n_features)]
    fixed = np.array([np.full(n_features, v) for v in (np.nan, 0.0, -0.0, np.inf, -np.inf)])
    # Random rows: each entry a special value of its feature (80%) or a random normal.
    mixed = rng.normal(size=(n_random, n_features)) * 3
    pick = rng.random((n_random, n_features)) < 0.8
    for j, pool in enumerate(pools):
        idx = rng.integers(len(pool), size=n_random)
        mixed[:, j] = np.where(pick[:, j], pool[idx], mixed[:, j])
    # Sweep: each feature alone through its whole pool, the others random, so every special value is seen.
    feat = np.concatenate([np.full(len(p), j) for j, p in enumerate(pools)])
    vals = np.concatenate(pools)
    if max_rows is not None:
        keep = max(0, max_rows - len(fixed) - n_random)
        if len(vals) > keep:
            sel = np.sort(rng.choice(len(vals), keep, replace=False))
            feat, vals = feat[sel], vals[sel]
    sweep = rng.normal(size=(len(vals), n_features))
    sweep[np.arange(len(vals)), feat] = vals
    X = np.concatenate([fixed, mixed, sweep])
    if max_rows is not None:
        X = X[:max_rows]
    return X.astype(dt)


def assert_same_bits(got: np.ndarray, want: np.ndarray) -> None:
    """Equal bit for bit, with every NaN equal to every NaN (payloads are not part of the semantics).

    Unlike `assert_array_equal` this tells -0.0 from +0.0."""
    got, want = np.asarray(got), np.asarray(want)
    assert got.shape == want.shape, (got.shape, want.shape)
    assert got.dtype == want.dtype, (got.dtype, want.dtype)
    if got.dtype.kind == "f":
        both_nan = np.isnan(got) & np.isnan(want)
        ui = np.uint32 if got.dtype == np.float32 else np.uint64
        bad = ~both_nan & (got.view(ui) != want.view(ui))
    else:
        bad = got != want
    if bad.any():
        idx = np.argwhere(bad)[:5]
        lines = [f"  at {tuple(int(i) for i in ix)}: got {got[tuple(ix)]!r}, want {want[tuple(ix)]!r}" for ix in idx]
        raise AssertionError(f"{int(bad.sum())} of {bad.size} values differ:\n" + "\n".join(lines))


# ----- the models themselves are valid -----------------------------------------------------------


def test_models_verify_and_round_trip():
    from ir.parser import parse_module
    from ir.printer import print_op
    from ir.verifier import verify

    for name, build in MODELS.items():
        m = build()
        verify(m)
        text = print_op(m)
        assert print_op(parse_module(text)) == text, name


def test_rows_hit_the_edges():
    m = xgb_binary()
    X = adversarial_rows(m)
    assert X.dtype == np.float32
    col2 = X[:, 2]
    assert (col2 == np.float32(2.45)).any() and (col2 == np.nextafter(np.float32(2.45), np.float32(3))).any()
    assert np.isnan(X).any() and np.isinf(X).any() and (np.signbit(X) & (X == 0)).any()
    col3 = X[:, 3]
    assert (col3 == 40).any() and (col3 == 40.5).any() and (col3 == -1).any() and (col3 == 2.0**31).any()


def test_assert_same_bits_tells_zeros_apart():
    import pytest

    assert_same_bits(np.array([np.nan, 1.0]), np.array([-np.nan, 1.0]))
    with pytest.raises(AssertionError):
        assert_same_bits(np.array([0.0]), np.array([-0.0]))


def test_int_and_math_modules_verify_and_round_trip():
    from ir.dialects import mathimpl
    from ir.parser import parse_module
    from ir.printer import print_op
    from ir.verifier import verify

    mods = [int_zoo()] + [math_op_module(s, el) for s in MATH_OPS if s.partition(":")[0] in mathimpl.EXPANSIONS for el in (f32, f64)]
    for m in mods:
        verify(m)
        text = print_op(m)
        assert print_op(parse_module(text)) == text


def test_int_rows_and_math_inputs_hit_the_edges():
    m = int_zoo()
    b = int_rows(m, "shli_i64").view(np.int64)
    amounts = b[:, 1]
    assert {64, 65, 127, -1, -64, 2**63 - 1, -(2**63)} <= set(amounts.tolist())
    assert (b[:, 0] == -(2**63)).any() and (b[:, 0] == 0x7FF0000000000001).any()  # INT64_MIN, a signalling NaN's bits
    w = int_rows(m, "addi_i32").view(np.int32)
    assert {2**31 - 1, -(2**31), 32, 33, -1} <= set(w[:, 1].tolist())
    x = int_rows(m, "fptosi_f64_i64")
    assert np.isnan(x).any() and np.isinf(x).any() and (x == -0.5).any() and (x == 2.0**63).any() and (x == np.nextafter(2.0**63, 0)).any()
    for dt in (np.float64, np.float32):
        v = math_inputs(dt)
        assert v.size >= 100_000 and v.dtype == dt
        tiny = np.finfo(dt).tiny
        assert np.isnan(v).any() and np.isposinf(v).any() and np.isneginf(v).any()
        assert ((v == 0) & np.signbit(v)).any() and ((v == 0) & ~np.signbit(v)).any()
        assert ((np.abs(v) < tiny) & (v != 0)).sum() > 1000  # subnormals
        assert (np.abs(v) == np.finfo(dt).max).any()
    from ir.dialects.mathimpl import exp as expimpl

    v = math_inputs(np.float64)
    for edge in (expimpl.OVERFLOW, expimpl.UNDERFLOW, expimpl.FMATH_HI, expimpl.FMATH_LO):
        assert (v == edge).any() and (v == np.nextafter(edge, np.inf)).any() and (v == np.nextafter(edge, -np.inf)).any()
