"""Random, valid IR modules for tests: every tree-dialect feature, in any precision.

`random_module(seed, ...)` builds a module shaped as ir/CONVENTIONS.md says (`@margin` and
`@predict`), using splits of every predicate and missing kind, categorical sets, vector and
linear leaves, oblivious trees and an output transform, so that back-ends and passes can be
compared with the interpreter on models no front-end happens to produce.
"""

from __future__ import annotations

import numpy as np

from ir.dialects import arith, builtin, func, math, tree
from ir.dialects.tree import CategorySets, LinearLeaves, Missing, NodeTable, ObliviousTable, Pred
from ir.types import FloatType, TensorType, f32, f64, tensor
from ir.verifier import verify

# Keyword sets for `random_module` that between them use every dialect feature.
VARIANTS = {
    "f32": dict(),
    "f64": dict(compare=f64, leaves=f64, acc=f64, input_type=f64),
    "f64-compare-f32-input": dict(compare=f64, leaves=f64, acc=f64),
    "softmax": dict(n_outputs=3, transform="softmax"),
    "vector-argmax": dict(n_outputs=3, vector_leaves=True, transform="argmax"),
    "oblivious": dict(oblivious=True, transform="none"),
    "linear-exp": dict(linear=True, compare=f64, leaves=f64, acc=f64, transform="log1p-exp"),
    "cat-code": dict(cat_negative="code", n_outputs=2, oblivious=True, vector_leaves=True),
}


def random_table(
    rng: np.random.Generator,
    n_features: int,
    depth: int,
    tdt,
    ldt,
    leaf_dim: int = 1,
    categorical: bool = True,
    linear: bool = False,
    preds=(Pred.LT, Pred.LE, Pred.GT, Pred.GE, Pred.EQ, Pred.NE),
    missing_kinds=(Missing.NONE, Missing.NAN, Missing.ZERO, Missing.NAN_AS_ZERO),
) -> NodeTable:
    """A random tree of at most `depth` splits per path, nodes numbered in pre-order."""
    rows: list[dict] = []

    def grow(d: int) -> int:
        i = len(rows)
        row: dict = {}
        rows.append(row)
        if d == depth or (d > 0 and rng.random() < 0.25):
            row.update(pred=Pred.LEAF, leaf=rng.normal(size=leaf_dim).round(3))
            return i
        f = int(rng.integers(n_features))
        if categorical and rng.random() < 0.2:
            row.update(pred=Pred.IN, feature=f, cats=sorted(set(rng.integers(0, 40, size=int(rng.integers(1, 6))).tolist())))
        else:
            p = preds[int(rng.integers(len(preds)))]
            thr = float(rng.choice([0.0, -0.0, 1e-36, float(rng.normal()), float(rng.normal() * 100), float(rng.integers(-3, 4))]))
            row.update(pred=p, feature=f, threshold=thr)
        row["missing"] = missing_kinds[int(rng.integers(len(missing_kinds)))]
        row["yes"] = grow(d + 1)
        row["no"] = grow(d + 1)
        if row["missing"] in (Missing.NAN, Missing.ZERO):
            row["default"] = row["yes"] if rng.random() < 0.5 else row["no"]
        return i

    grow(0)
    return _table(rows, rng, n_features, tdt, ldt, leaf_dim, linear)


def _table(rows: list[dict], rng, n_features: int, tdt, ldt, leaf_dim: int, linear: bool) -> NodeTable:
    """A NodeTable from node dicts (pred, feature, threshold or cats, yes/no/default, missing, leaf)."""
    n = len(rows)
    feature = np.full(n, -1, np.int32)
    pred = np.zeros(n, np.uint8)
    thr = np.zeros(n, tdt)
    yes, no, default = (np.full(n, -1, np.int32) for _ in range(3))
    missing = np.zeros(n, np.uint8)
    leaf = np.zeros((n, leaf_dim), ldt)
    cats = CategorySets(n)
    for i, r in enumerate(rows):
        pred[i] = r["pred"]
        if r["pred"] == Pred.LEAF:
            leaf[i] = r["leaf"]
            continue
        feature[i], yes[i], no[i], missing[i] = r["feature"], r["yes"], r["no"], r["missing"]
        default[i] = r.get("default", -1)
        if r["pred"] == Pred.IN:
            cats.add(i, r["cats"])
        else:
            thr[i] = r["threshold"]
    lin = {}
    if linear:
        leaves = LinearLeaves(n, ldt)
        for i in np.flatnonzero(pred == Pred.LEAF):
            k = int(rng.integers(0, 3))
            const = round(float(rng.normal()), 3)
            feats, coeffs = rng.integers(n_features, size=k).tolist(), rng.normal(size=k).round(4).tolist()
            leaves.add(int(i), const, list(zip(feats, coeffs)))
        lin = leaves.columns()
    return NodeTable(feature, pred, thr, yes, no, missing, default, leaf, *cats.columns(), **lin)


def random_leafwise_table(
    rng: np.random.Generator,
    n_features: int,
    n_leaves: int,
    tdt,
    ldt,
    preds=(Pred.LT, Pred.LE, Pred.GT, Pred.GE),
    missing_kinds=(Missing.NONE, Missing.NAN, Missing.NAN_AS_ZERO),
) -> NodeTable:
    """A random tree grown leaf-wise, as LightGBM grows them: a leaf (the deeper, the likelier)
    is split until there are `n_leaves`; numeric splits only, nodes numbered in creation order."""
    rows: list[dict] = [{}]
    depth = {0: 0}
    leaves = [0]
    while len(leaves) < n_leaves:
        w = np.array([1.5 ** depth[i] for i in leaves])
        i = leaves.pop(int(rng.choice(len(leaves), p=w / w.sum())))
        p = preds[int(rng.integers(len(preds)))]
        thr = float(rng.choice([0.0, -0.0, 1e-36, float(rng.normal()), float(rng.normal() * 100), float(rng.integers(-3, 4)), float("inf")]))
        yes, no = len(rows), len(rows) + 1
        rows += [{}, {}]
        depth[yes] = depth[no] = depth[i] + 1
        leaves += [yes, no]
        miss = missing_kinds[int(rng.integers(len(missing_kinds)))]
        rows[i] = dict(pred=p, feature=int(rng.integers(n_features)), threshold=thr, yes=yes, no=no, missing=miss)
        if miss in (Missing.NAN, Missing.ZERO):
            rows[i]["default"] = yes if rng.random() < 0.5 else no
    for i in leaves:
        rows[i] = dict(pred=Pred.LEAF, leaf=rng.normal(size=1).round(3))
    return _table(rows, rng, n_features, tdt, ldt, 1, False)


def random_oblivious(rng: np.random.Generator, n_features: int, depth: int, tdt, ldt, leaf_dim: int = 1) -> ObliviousTable:
    preds = [Pred.GT if rng.random() < 0.8 else Pred.EQ for _ in range(depth)]
    thr = [float(rng.normal()) if p == Pred.GT else float(rng.integers(0, 4)) for p in preds]
    miss = [int(rng.choice([Missing.NONE, Missing.NAN])) for _ in range(depth)]
    return ObliviousTable(
        feature=rng.integers(n_features, size=depth),
        pred=preds,
        threshold=np.array(thr, tdt),
        missing=miss,
        default_true=rng.random(depth) < 0.5,
        leaf=rng.normal(size=(2**depth, leaf_dim)).round(3).astype(ldt),
    )


def random_module(
    seed: int = 0,
    *,
    n_features: int = 5,
    n_trees: int = 8,
    depth: int = 4,
    n_outputs: int = 1,
    input_type: FloatType = f32,
    compare: FloatType = f32,
    leaves: FloatType = f32,
    acc: FloatType = f32,
    categorical: bool = True,
    vector_leaves: bool = False,
    oblivious: bool = False,
    linear: bool = False,
    transform: str = "sigmoid",
    cat_negative: str = "value",
) -> builtin.ModuleOp:
    """A verified random module; `transform` is one of none, sigmoid, softmax, argmax, exp, log1p-exp."""
    rng = np.random.default_rng(seed)
    module = builtin.ModuleOp.build({"timber.format": "random"})
    xt = tensor(n_features, input_type)
    out_t = tensor(n_outputs, acc)
    margin = func.FuncOp.build("margin", [xt], [out_t], arg_names=["x"])
    module.body.add_op(margin)
    ens = tree.EnsembleOp.build(
        margin.args[0], n_outputs, acc, compare, leaves, init=rng.normal(size=n_outputs).round(2), cat_negative=cat_negative, name="margin"
    )
    margin.body.add_op(ens)
    tdt, ldt = compare.numpy, leaves.numpy
    for i in range(n_trees):
        if oblivious and i % 2 == 1:
            dim = n_outputs if vector_leaves else 1
            ens.add_tree(random_oblivious(rng, n_features, int(rng.integers(0, depth + 1)), tdt, ldt, dim), 0 if dim > 1 else i % n_outputs)
            continue
        dim = n_outputs if vector_leaves else 1
        table = random_table(rng, n_features, depth, tdt, ldt, dim, categorical, linear and dim == 1)
        ens.add_tree(table, 0 if dim > 1 else i % n_outputs)
    margin.body.add_op(func.ReturnOp(operands=[ens.result]))

    predict_out = tensor(1, acc) if transform == "argmax" else out_t
    predict = func.FuncOp.build("predict", [xt], [predict_out], arg_names=["x"])
    module.body.add_op(predict)
    call = predict.body.add_op(func.CallOp.build(margin, [predict.args[0]], name="margin"))
    v = call.result
    if transform == "sigmoid":
        v = predict.body.add_op(math.SigmoidOp.build(v, name="proba")).result
    elif transform == "softmax":
        v = predict.body.add_op(math.SoftmaxOp.build(v, name="proba", acc=f64)).result
    elif transform in ("exp", "log1p-exp"):
        v = predict.body.add_op(math.ExpOp.build(v, name="mean")).result
        if transform == "log1p-exp":  # LightGBM cross_entropy_lambda
            v = predict.body.add_op(math.Log1pOp.build(v, name="lambda")).result
    elif transform == "argmax":
        i = predict.body.add_op(math.ArgmaxOp.build(v, name="index")).result
        v = predict.body.add_op(arith.SIToFPOp.build(i, TensorType((1,), acc), name="label")).result
    predict.body.add_op(func.ReturnOp(operands=[v]))
    verify(module)
    return module


def adversarial_rows(module, rng: np.random.Generator | None = None, n_random: int = 64) -> np.ndarray:
    """Rows that sit on every threshold and category of the module's trees, their float
    neighbours in the compare type, and NaN, ±inf, ±0.0, ±1e-35, mixed with random values."""
    rng = rng or np.random.default_rng(0)
    f = module.lookup("margin") or module.lookup("predict")
    n_features = f.function_type.inputs[0].shape[0]
    specials = [np.nan, np.inf, -np.inf, 0.0, -0.0, 1e-35, -1e-35, 1e-36, 2.0**31, -1.0, -0.5, 0.5, 1.5, 39.0, 40.0, 1e30]
    per_feature: list[list[float]] = [list(specials) for _ in range(n_features)]
    for op in module.walk():
        if not isinstance(op, tree.EnsembleOp):
            continue
        for t_op in op.trees:
            t = t_op.table
            for i in range(len(t.feature)):
                p = int(t.pred[i])
                if p == Pred.LEAF:
                    continue
                fi = int(t.feature[i])
                if p == Pred.IN:
                    per_feature[fi].extend(float(c) for c in t.category_set(i))
                    continue
                th = t.threshold[i]
                per_feature[fi].extend(
                    [float(th), float(np.nextafter(th, th.dtype.type(np.inf))), float(np.nextafter(th, th.dtype.type(-np.inf)))]
                )
    rows = []
    for _ in range(n_random * 4):
        rows.append([rng.choice(per_feature[j]) if rng.random() < 0.8 else rng.normal() for j in range(n_features)])
    for _ in range(n_random):
        rows.append(rng.normal(size=n_features).tolist())
    rows.append([np.nan] * n_features)
    return np.array(rows, np.float64)
