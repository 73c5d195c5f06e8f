"""The converter of each supported ONNX op: `fn(builder, node, args, opset) -> [Val per output]`.

`args` are the node's inputs as `Val`s (None for an omitted optional input).  An output Timber
does not compute (a string or integer label) is `Val()`: it may feed nothing that is returned.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ir.core import Value
from ir.dialects import arith, math
from ir.dialects.linear import AffineOp
from ir.types import IntegerType, TensorType, f32, f64

from . import trees
from .builder import Builder, Val, np_dtype

ML_DOMAIN = "ai.onnx.ml"
# the newest opset of each domain whose ops this front-end knows
OPSET_LIMITS = {"ai.onnx": 23, ML_DOMAIN: 5}

CONVERTERS: dict[tuple[str, str], Callable] = {}


def converts(domain: str, *ops: str):
    def deco(fn):
        for op in ops:
            CONVERTERS[(domain, op)] = fn
        return fn

    return deco


def supported() -> str:
    """The supported ops, as `domain: Op, Op, ...; domain: ...`."""
    by: dict[str, list[str]] = {}
    for d, op in sorted(CONVERTERS):
        by.setdefault(d, []).append(op)
    return "; ".join(f"{d}: {', '.join(ops)}" for d, ops in by.items())


def attrs(b: Builder, node) -> dict:
    """The node's attributes as Python values (tensors as numpy arrays, strings decoded)."""
    from onnx import AttributeProto, helper, numpy_helper

    out = {}
    for a in node.attribute:
        try:
            if a.type == AttributeProto.TENSOR:
                if a.t.data_location == 1 or len(a.t.external_data):
                    b.fail(f"attribute '{a.name}' stores its data in an external file; Timber reads self-contained ONNX files only")
                v = numpy_helper.to_array(a.t)
            else:
                v = helper.get_attribute_value(a)
        except Exception as e:  # noqa: BLE001
            b.fail(f"attribute '{a.name}' is malformed ({e})")
        if isinstance(v, bytes):
            v = v.decode("utf-8", "replace")
        elif isinstance(v, list) and v and isinstance(v[0], bytes):
            v = [s.decode("utf-8", "replace") for s in v]
        out[a.name] = v
    return out


def _row(b: Builder, v: Val | None, what="input") -> Val:
    if v is None or v.row is None:
        if v is not None and v.is_const:
            b.fail(f"the {what} is a constant; Timber compiles ops on the input row")
        b.fail(f"the {what} is not a number tensor computed from the input row (a label or map?)")
    return v


def _float_row(b: Builder, v: Val | None) -> Val:
    v = _row(b, v)
    if v.element not in (f32, f64):
        b.fail(f"the input holds {v.element} values; this op takes float or double")
    return v


# ----- glue (ai.onnx) ----------------------------------------------------------------------------


@converts("ai.onnx", "Identity")
def _identity(b, node, args, opset):
    return [args[0]]


@converts(ML_DOMAIN, "ZipMap")
def _zipmap(b, node, args, opset):
    v = _row(b, args[0])
    return [Val(row=v.row, zipmap=True)]


@converts(ML_DOMAIN, "CastMap", "LabelEncoder")
def _passthrough_map(b, node, args, opset):
    v = args[0]
    if v is not None and v.row is not None and node.op_type == "LabelEncoder":
        b.fail("LabelEncoder on a computed tensor changes values; Timber compiles it only where its result is not returned")
    return [Val()]


@converts("ai.onnx", "Cast")
def _cast(b, node, args, opset):
    from onnx import TensorProto

    to = attrs(b, node).get("to")
    v = args[0]
    if v is not None and v.is_const:
        np_t = {TensorProto.FLOAT: np.float32, TensorProto.DOUBLE: np.float64, TensorProto.INT64: np.int64, TensorProto.INT32: np.int32}
        if to not in np_t:
            b.fail(f"Cast of a constant to ONNX type {to} is not supported")
        return [Val(const=np.asarray(v.const).astype(np_t[to]))]
    if v is None or v.row is None:
        return [Val()]  # a cast of a label: not computed
    if v.label:
        return [v]  # a label cast to int64/float/string: the same numbers (held as f64)
    if v.row.type.element == IntegerType(1) and to in (TensorProto.FLOAT, TensorProto.DOUBLE):
        el = f32 if to == TensorProto.FLOAT else f64
        t = TensorType(v.row.type.shape, el)
        one, zero = b.const(np.ones(t.shape[0]), el), b.const(np.zeros(t.shape[0]), el)
        return [Val(row=b.select(v.row, one, zero))]
    if to == TensorProto.FLOAT:
        return [Val(row=b.convert(v.row, f32))]
    if to == TensorProto.DOUBLE:
        return [Val(row=b.convert(v.row, f64))]
    return [Val()]  # to integers, strings, booleans: a label, not computed


@converts("ai.onnx", "Reshape", "Flatten")
def _reshape(b, node, args, opset):
    v = args[0]
    a = attrs(b, node)
    if v is not None and v.is_const:
        if node.op_type == "Flatten":
            axis = a.get("axis", 1)
            c = v.const
            return [Val(const=c.reshape(int(np.prod(c.shape[:axis])) if axis else 1, -1))]
        shape = args[1].const if len(args) > 1 and args[1] is not None and args[1].is_const else None
        if shape is None:
            b.fail("Reshape of a constant needs a constant shape")
        shape = [d if d != 0 else v.const.shape[i] for i, d in enumerate(shape.tolist())]
        return [Val(const=v.const.reshape(shape))]
    v = _row(b, v)
    if node.op_type == "Flatten":
        if a.get("axis", 1) != 1:
            b.fail(f"Flatten with axis {a.get('axis')} of the [N, F] row; axis 1 is supported")
        return [v]
    shape = args[1].const if len(args) > 1 and args[1] is not None and args[1].is_const else None
    if shape is None:
        b.fail("Reshape needs a constant shape")
    shape = [int(d) for d in shape.reshape(-1)]
    ok = len(shape) == 2 and shape[1] in (v.width, -1 if shape[0] not in (-1,) else v.width) and shape[0] in (-1, 0)
    if not ok and not (len(shape) == 2 and shape[1] == v.width):
        b.fail(f"Reshape of the [N, {v.width}] row to {shape}: only [-1, {v.width}] (rows kept) is supported")
    return [v]


@converts("ai.onnx", "Concat")
def _concat(b, node, args, opset):
    axis = attrs(b, node).get("axis")
    vals = [a for a in args if a is not None]
    if all(v.is_const for v in vals):
        return [Val(const=np.concatenate([v.const for v in vals], axis=axis))]
    if axis not in (1, -1):
        b.fail(f"Concat along axis {axis} of rows; axis 1 (features) is supported")
    rows = [_row(b, v) for v in vals]
    el = rows[0].element
    return [Val(row=b.concat([b.convert(r.row, el) for r in rows], name="concat"))]


@converts(ML_DOMAIN, "ArrayFeatureExtractor")
def _array_feature_extractor(b, node, args, opset):
    x, idx = args[0], args[1]
    if idx is not None and not idx.is_const and (x is None or x.row is None):
        return [Val()]  # class labels picked by computed indices: a label, not computed
    if idx is None or not idx.is_const:
        b.fail("ArrayFeatureExtractor needs constant indices")
    if x is not None and x.is_const:
        return [Val(const=np.take(x.const, idx.const.reshape(-1), axis=-1))]
    if x is None or x.row is None:
        return [Val()]  # e.g. labels picked from a class list: not computed
    ind = [int(i) for i in idx.const.reshape(-1)]
    if not ind:
        b.fail("ArrayFeatureExtractor with no indices")
    for i in ind:
        if not 0 <= i < x.width:
            b.fail(f"index {i} out of range for a row of {x.width}")
    return [Val(row=b.concat([b.extract(x.row, i) for i in ind], name="features"))]


# ----- ai.onnx.ml preprocessing ------------------------------------------------------------------


@converts(ML_DOMAIN, "Scaler")
def _scaler(b, node, args, opset):
    """`(x - offset) * scale` in the input type (float32 attributes widened for doubles),
    float32 out (measured on ONNX Runtime 1.32)."""
    x = _float_row(b, args[0])
    a = attrs(b, node)
    offset = np.asarray(a.get("offset", [0.0]), np.float32)
    scale = np.asarray(a.get("scale", [1.0]), np.float32)
    n = x.width
    for name, v in (("offset", offset), ("scale", scale)):
        if len(v) not in (1, n):
            b.fail(f"'{name}' has {len(v)} values; expected 1 or {n}")
    el = x.element
    off = b.const(np.broadcast_to(offset, n), el)
    sc = b.const(np.broadcast_to(scale, n), el)
    return [Val(row=b.convert(b.mul(b.sub(x.row, off), sc), f32, name="scaled"))]


@converts(ML_DOMAIN, "Binarizer")
def _binarizer(b, node, args, opset):
    x = _float_row(b, args[0])
    thr = float(attrs(b, node).get("threshold", 0.0))
    t = b.splat(np.float32(thr) if x.element == f32 else thr, x.row)
    gt = b.cmp("ogt", x.row, t)
    return [Val(row=b.select(gt, b.splat(1.0, x.row), b.splat(0.0, x.row), name="binary"))]


@converts(ML_DOMAIN, "Imputer")
def _imputer(b, node, args, opset):
    x = _float_row(b, args[0])
    a = attrs(b, node)
    vals = np.asarray(a.get("imputed_value_floats", []), np.float32)
    replaced = np.float32(a.get("replaced_value_float", 0.0))
    n = x.width
    if len(vals) not in (1, n):
        b.fail(f"'imputed_value_floats' has {len(vals)} values; expected 1 or {n}")
    xr = x.row
    if np.isnan(replaced):
        hit = b.cmp("uno", xr, xr)
    else:
        hit = b.cmp("oeq", xr, b.splat(float(replaced), xr))
    fill = b.const(np.broadcast_to(vals, n), xr.type.element)
    return [Val(row=b.select(hit, fill, xr, name="imputed"))]


@converts(ML_DOMAIN, "Normalizer")
def _normalizer(b, node, args, opset):
    """ONNX Runtime's normalizer.cc, float32 out: MAX divides by the largest value (NaN
    ignored: `std::max` from the lowest float), L1 by Σ|x|, L2 gives sign(x)·sqrt(x²/Σx²)
    (squares formed in the input type); a zero norm leaves the row as is."""
    x = _float_row(b, args[0])
    norm = attrs(b, node).get("norm", "MAX")
    xf = b.convert(x.row, f32)
    n = x.width
    cols = [b.extract(x.row, j) for j in range(n)]
    zero = b.const([0.0], f32)
    if norm == "MAX":
        d = b.const([np.finfo(np.float32).min], f32)
        for c in cols:
            cf = b.convert(c, f32)
            d = b.select(b.cmp("olt", d, cf), cf, d)
        out = b.div(xf, b.op(arith.BroadcastOp.build(d, xf.type)))
    elif norm == "L1":
        d = zero
        for c in cols:
            d = b.add(d, b.convert(b.abs(c), f32))
        out = b.div(xf, b.op(arith.BroadcastOp.build(d, xf.type)))
    elif norm == "L2":
        sq = b.convert(b.mul(x.row, x.row), f32)
        d = zero
        for j in range(n):
            d = b.add(d, b.extract(sq, j))
        r = b.sqrt(b.div(sq, b.op(arith.BroadcastOp.build(d, xf.type))))
        neg = b.cmp("olt", x.row, b.splat(0.0, x.row))
        out = b.select(neg, b.neg(r), r)
    else:
        b.fail(f"norm '{norm}' is not one of MAX, L1, L2")
    nonzero = b.cmp("une", d, zero)
    return [Val(row=b.select(b.op(arith.BroadcastOp.build(nonzero, TensorType((n,), IntegerType(1)))), out, xf, name="normalized"))]


# ----- linear models -----------------------------------------------------------------------------


def _linear_scores(b: Builder, x: Val, coef, intercepts, k: int):
    coef = np.asarray(coef, np.float32)
    n = x.width
    if coef.size < k * n:
        b.fail(f"'coefficients' has {coef.size} values; expected {k} x {n}")
    # ONNX Runtime's GEMM reads the first k x n (a model with more, e.g. onnxruntime's own
    # logreg_iris.onnx, is computed on those)
    coef = coef.reshape(-1)[: k * n]
    inter = np.asarray(intercepts if intercepts is not None and len(intercepts) else np.zeros(k), np.float32)
    if len(inter) != k:
        b.fail(f"'intercepts' has {len(inter)} values; expected {k}")
    xf = b.convert(x.row, f32)
    return b.op(AffineOp.build(xf, coef.reshape(k, n), inter, f32, missing="propagate", name="scores"))


@converts(ML_DOMAIN, "LinearRegressor")
def _linear_regressor(b, node, args, opset):
    x = _row(b, args[0])
    a = attrs(b, node)
    k = int(a.get("targets", 1))
    s = _linear_scores(b, x, a.get("coefficients", []), a.get("intercepts"), k)
    post = a.get("post_transform", "NONE")
    if post != "NONE" and k == 1 and post != "PROBIT":
        return [Val(row=s)]
    return [Val(row=b.transform(post, s))]


@converts(ML_DOMAIN, "LinearClassifier")
def _linear_classifier(b, node, args, opset):
    x = _row(b, args[0])
    a = attrs(b, node)
    inter = a.get("intercepts", [])
    k = len(inter)
    labels = a.get("classlabels_strings") or a.get("classlabels_ints") or []
    s = _linear_scores(b, x, a.get("coefficients", []), inter, k)
    post = a.get("post_transform", "NONE")
    label = None
    if labels and not a.get("classlabels_strings"):
        if k == 1 and len(labels) == 2:
            gt = b.cmp("ogt", s, b.const([0.0], f32))
            label = b.select(gt, b.const([float(labels[1])], f64), b.const([float(labels[0])], f64), name="label")
        elif k > 1 and len(labels) == k:
            label = trees._lookup(b, b.op(math.ArgmaxOp.build(s)), [float(v) for v in labels])
    if k == 1:
        if len(labels) != 2:
            b.fail(f"one score and {len(labels)} class labels: ONNX Runtime takes exactly 2 for a binary LinearClassifier")
        # one score, two columns (measured on ONNX Runtime 1.32): LOGISTIC gives
        # [logistic(-s), logistic(s)], the other transforms [1 - s, s] untransformed
        if post == "PROBIT":
            b.fail("PROBIT on a binary LinearClassifier with one score: ONNX Runtime writes one column of two")
        if post == "LOGISTIC":
            return [Val(row=label, label=True), Val(row=b.concat([b.logistic(b.neg(s)), b.logistic(s)], name="proba"))]
        one = b.const([1.0], f32)
        return [Val(row=label, label=True), Val(row=b.concat([b.sub(one, s), s], name="proba"))]
    return [Val(row=label, label=True), Val(row=b.transform(post, s))]


# ----- tree ensembles ----------------------------------------------------------------------------


def _types(b: Builder, x: Val, double: bool):
    """(compare type, accumulation type): ONNX Runtime's threshold type is the input type
    (float attributes of a double model are widened; double `*_as_tensor` attributes on a
    float input are refused, as ONNX Runtime refuses them)."""
    if x.element == f64:
        return f64, f64
    if double:
        b.fail("double '*_as_tensor' attributes on a float input: ONNX Runtime refuses this model (make the input double)")
    return f32, f32


@converts(ML_DOMAIN, "TreeEnsembleRegressor")
def _tree_regressor(b, node, args, opset):
    x = _float_row(b, args[0])
    a = attrs(b, node)
    ts, _, double = trees.trees_v1(b, a, "target", x.width)
    base, _ = trees._attr_floats(b, a, "base_values")
    k = int(a.get("n_targets", 1))
    compare, acc = _types(b, x, double)
    y = trees.regressor(b, x.row, ts, k, a.get("aggregate_function", "SUM"), a.get("post_transform", "NONE"), base, compare, acc)
    return [Val(row=y)]


@converts(ML_DOMAIN, "TreeEnsembleClassifier")
def _tree_classifier(b, node, args, opset):
    x = _float_row(b, args[0])
    a = attrs(b, node)
    ts, _, double = trees.trees_v1(b, a, "class", x.width)
    base, _ = trees._attr_floats(b, a, "base_values")
    labels = a.get("classlabels_strings") or a.get("classlabels_int64s") or []
    if not labels:
        b.fail("the classifier has no class labels (classlabels_strings or classlabels_int64s)")
    compare, acc = _types(b, x, double)
    ints = [float(v) for v in labels] if not a.get("classlabels_strings") else None
    proba, label = trees.classifier(b, x.row, ts, len(labels), a.get("post_transform", "NONE"), base, compare, acc, ints)
    return [Val(row=label, label=True), Val(row=proba)]


@converts(ML_DOMAIN, "TreeEnsemble")
def _tree_ensemble(b, node, args, opset):
    x = _float_row(b, args[0])
    a = attrs(b, node)
    ts, ttype, member = trees.trees_v5(b, a, x.width)
    aggs = {0: "AVERAGE", 1: "SUM", 2: "MIN", 3: "MAX"}
    posts = {0: "NONE", 1: "LOGISTIC", 2: "SOFTMAX", 3: "SOFTMAX_ZERO", 4: "PROBIT"}
    agg, post = aggs.get(int(a.get("aggregate_function", 1))), posts.get(int(a.get("post_transform", 0)))
    if agg is None or post is None:
        b.fail("aggregate_function must be 0..3 and post_transform 0..4")
    t = x.element
    compare = f64 if member else t  # MEMBER edges (m + 1, 2^31) need doubles
    y = trees.regressor(b, x.row, ts, int(a.get("n_targets", 1)), agg, post, np.zeros(0), compare, t, out=t)
    return [Val(row=y)]


# ----- arithmetic glue (ai.onnx) -------------------------------------------------------------------


def _as_row(b: Builder, v: Val, width: int, el) -> Value:
    """A row operand of `width`: a row as is, a constant broadcast along the batch ([k], [1, k] or a scalar)."""
    if v.row is not None:
        if v.width != width:
            if v.width == 1:
                return b.op(arith.BroadcastOp.build(b.convert(v.row, el), TensorType((width,), el)))
            b.fail(f"operand widths {v.width} and {width} do not broadcast")
        return b.convert(v.row, el)
    c = np.asarray(v.const)
    if c.ndim == 2 and c.shape[0] != 1:
        b.fail(f"a constant of shape {c.shape} does not broadcast against [N, {width}] rows")
    c = c.reshape(-1)
    if c.size == 1:
        c = np.repeat(c, width)
    if c.size != width:
        b.fail(f"a constant of {c.size} values does not broadcast against [N, {width}] rows")
    return b.const(c, el)


def _operands(b: Builder, args) -> tuple[list, int, object]:
    rows = [a for a in args if a is not None and a.row is not None]
    if not rows:
        b.fail("no operand is computed from the input row")
    width = max(r.width for r in rows)
    el = rows[0].element
    if el not in (f32, f64):
        b.fail(f"operands hold {el} values; float and double are supported")
    return [_as_row(b, a, width, el) for a in args], width, el


_BINARY = {
    "Add": arith.AddFOp,
    "Sub": arith.SubFOp,
    "Mul": arith.MulFOp,
    "Div": arith.DivFOp,
    "Max": arith.MaximumFOp,
    "Min": arith.MinimumFOp,
}


@converts("ai.onnx", *_BINARY, "Sum")
def _binary(b, node, args, opset):
    if all(a is not None and a.is_const for a in args):
        fn = {"Add": np.add, "Sub": np.subtract, "Mul": np.multiply, "Div": np.divide, "Max": np.maximum, "Min": np.minimum, "Sum": np.add}[
            node.op_type
        ]
        out = args[0].const
        for a in args[1:]:
            out = fn(out, a.const)
        return [Val(const=out)]
    ops, _, _ = _operands(b, args)
    cls = arith.AddFOp if node.op_type == "Sum" else _BINARY[node.op_type]
    acc = ops[0]
    for o in ops[1:]:
        acc = b.bin(cls, acc, o)
    return [Val(row=acc)]


@converts("ai.onnx", "Neg", "Abs", "Sqrt", "Exp", "Log", "Sigmoid", "Tanh", "Relu", "Reciprocal", "Sign")
def _unary(b, node, args, opset):
    x = _float_row(b, args[0])
    r, op = x.row, node.op_type
    if op == "Neg":
        y = b.neg(r)
    elif op == "Abs":
        y = b.abs(r)
    elif op == "Sqrt":
        y = b.sqrt(r)
    elif op == "Exp":
        y = b.exp(r)
    elif op == "Log":
        y = b.log(r)
    elif op == "Sigmoid":
        y = b.op(math.SigmoidOp.build(r))
    elif op == "Tanh":
        y = b.op(math.TanhOp.build(r))
    elif op == "Reciprocal":
        y = b.div(b.splat(1.0, r), r)
    elif op == "Sign":  # 1, -1, else 0 (NaN and ±0 included)
        zero = b.splat(0.0, r)
        y = b.select(b.cmp("ogt", r, zero), b.splat(1.0, r), b.select(b.cmp("olt", r, zero), b.splat(-1.0, r), zero))
    else:  # Relu: max(x, 0); NaN stays NaN
        zero = b.splat(0.0, r)
        y = b.select(b.cmp("olt", r, zero), zero, r)
    return [Val(row=y)]


@converts("ai.onnx", "Pow")
def _pow(b, node, args, opset):
    x = _float_row(b, args[0])
    e = args[1]
    if e is None or not e.is_const or np.asarray(e.const).size != 1:
        b.fail("Pow with a non-constant or non-scalar exponent is not supported")
    p = float(np.asarray(e.const).reshape(-1)[0])
    if p == 1.0:
        return [x]
    if p == 2.0:
        return [Val(row=b.mul(x.row, x.row))]
    if p == 0.5:
        return [Val(row=b.sqrt(x.row))]
    b.fail(f"Pow with exponent {p}: exponents 0.5, 1 and 2 are supported")


@converts("ai.onnx", "Clip")
def _clip(b, node, args, opset):
    x = _float_row(b, args[0])
    a = attrs(b, node)
    lo = args[1].const if len(args) > 1 and args[1] is not None else a.get("min")
    hi = args[2].const if len(args) > 2 and args[2] is not None else a.get("max")
    r = x.row
    if lo is not None:
        c = b.splat(float(np.asarray(lo).reshape(-1)[0]), r)
        r = b.select(b.cmp("olt", r, c), c, r)
    if hi is not None:
        c = b.splat(float(np.asarray(hi).reshape(-1)[0]), r)
        r = b.select(b.cmp("ogt", r, c), c, r)
    return [Val(row=r)]


def _matmul(b: Builder, x: Val, w: np.ndarray, bias, name="matmul") -> Value:
    """x [N, k] · w [k, m] (+ bias [m]) in x's type: linear.affine (products added in order)."""
    el = x.element
    w = np.asarray(w, np_dtype(el))
    if w.ndim != 2 or w.shape[0] != x.width:
        b.fail(f"a [N, {x.width}] row times a constant of shape {w.shape}: expected ({x.width}, M)")
    m = w.shape[1]
    bias = np.zeros(m) if bias is None else np.broadcast_to(np.asarray(bias).reshape(-1), (m,))
    return b.op(AffineOp.build(x.row, w.T.copy(), np.asarray(bias, np_dtype(el)), el, missing="propagate", name=name))


@converts("ai.onnx", "MatMul")
def _matmul_op(b, node, args, opset):
    x, w = args
    if w is None or not w.is_const:
        b.fail("MatMul with a non-constant right-hand side is not supported")
    return [Val(row=_matmul(b, _float_row(b, x), w.const, None))]


@converts("ai.onnx", "Gemm")
def _gemm(b, node, args, opset):
    a = attrs(b, node)
    x, w = _float_row(b, args[0]), args[1]
    c = args[2] if len(args) > 2 else None
    if a.get("transA", 0):
        b.fail("Gemm with transA = 1 on the row is not supported")
    if w is None or not w.is_const or (c is not None and not c.is_const):
        b.fail("Gemm with a non-constant B or C is not supported")
    wm = np.asarray(w.const)
    wm = wm.T if a.get("transB", 0) else wm
    alpha, beta = float(a.get("alpha", 1.0)), float(a.get("beta", 1.0))
    if alpha != 1.0:
        wm = wm * alpha
    bias = None if c is None else np.asarray(c.const) * beta
    return [Val(row=_matmul(b, x, wm, bias, name="gemm"))]


@converts("ai.onnx", "Softmax")
def _softmax(b, node, args, opset):
    x = _float_row(b, args[0])
    if attrs(b, node).get("axis", -1) not in (-1, 1):
        b.fail("Softmax over an axis other than the features is not supported")
    return [Val(row=b.softmax(x.row))]


@converts("ai.onnx", "ReduceSum", "ReduceMax", "ReduceLogSumExp")
def _reduce(b, node, args, opset):
    x = _float_row(b, args[0])
    a = attrs(b, node)
    axes = a.get("axes")
    if axes is None and len(args) > 1 and args[1] is not None and args[1].is_const:
        axes = args[1].const.reshape(-1).tolist()
    if axes not in ([1], [-1]):
        b.fail(f"{node.op_type} over axes {axes}: the feature axis (1) is supported")
    cols = [b.extract(x.row, j) for j in range(x.width)]
    if node.op_type == "ReduceMax":
        r = cols[0]
        for c in cols[1:]:
            r = b.op(arith.MaximumFOp.build(r, c))
        return [Val(row=r)]
    if node.op_type == "ReduceLogSumExp":
        cols = [b.exp(c) for c in cols]
    r = cols[0]
    for c in cols[1:]:
        r = b.add(r, c)
    return [Val(row=b.log(r) if node.op_type == "ReduceLogSumExp" else r)]


@converts("ai.onnx", "Squeeze", "Unsqueeze")
def _squeeze(b, node, args, opset):
    v = args[0]
    if v is not None and v.is_const:
        axes = attrs(b, node).get("axes")
        if axes is None and len(args) > 1 and args[1] is not None:
            axes = args[1].const.reshape(-1).tolist()
        c = v.const
        return [Val(const=np.squeeze(c, axis=tuple(axes)) if node.op_type == "Squeeze" else np.expand_dims(c, tuple(axes)))]
    return [v]  # [N, 1] and [N] are the same row of width 1


@converts("ai.onnx", "ArgMax")
def _argmax(b, node, args, opset):
    return [Val()]  # a label: not computed


@converts("ai.onnx", "Less", "Greater", "Equal", "LessOrEqual", "GreaterOrEqual")
def _compare(b, node, args, opset):
    ops, _, _ = _operands(b, args)
    pred = {"Less": "olt", "Greater": "ogt", "Equal": "oeq", "LessOrEqual": "ole", "GreaterOrEqual": "oge"}[node.op_type]
    return [Val(row=b.cmp(pred, ops[0], ops[1]))]


@converts("ai.onnx", "Where")
def _where(b, node, args, opset):
    c = _row(b, args[0], "condition")
    ops, _, _ = _operands(b, args[1:])
    return [Val(row=b.select(c.row, ops[0], ops[1]))]


# ----- support vector machines -------------------------------------------------------------------


@converts(ML_DOMAIN, "SVMClassifier")
def _svm_classifier(b, node, args, opset):
    from .svm import svm_classifier

    return [Val(), svm_classifier(b, _float_row(b, args[0]), attrs(b, node))]


@converts(ML_DOMAIN, "SVMRegressor")
def _svm_regressor(b, node, args, opset):
    from .svm import svm_regressor

    return [svm_regressor(b, _float_row(b, args[0]), attrs(b, node))]


@converts("ai.onnx", "Gather")
def _gather(b, node, args, opset):
    """Columns of the row at constant indices (axis 1); constants gathered at compile time."""
    x, idx = args[0], args[1]
    axis = attrs(b, node).get("axis", 0)
    if idx is None or not idx.is_const:
        if x is not None and x.is_const:
            return [Val()]  # e.g. class labels picked by computed indices
        b.fail("Gather needs constant indices")
    if x is not None and x.is_const:
        return [Val(const=np.take(x.const, idx.const, axis=axis))]
    x = _row(b, x)
    if axis not in (1, -1):
        b.fail(f"Gather along axis {axis} of the [N, F] row: axis 1 is supported")
    ind = [int(i) + (x.width if int(i) < 0 else 0) for i in np.asarray(idx.const).reshape(-1)]
    if not ind or any(not 0 <= i < x.width for i in ind):
        b.fail(f"Gather indices {ind} out of range for a row of {x.width}")
    return [Val(row=b.concat([b.extract(x.row, i) for i in ind], name="gathered"))]


@converts("ai.onnx", "Slice")
def _slice(b, node, args, opset):
    """A constant slice of the row's features (axis 1)."""
    x = args[0]
    consts = [a.const if a is not None and a.is_const else None for a in args[1:]]
    if any(c is None for c, a in zip(consts, args[1:]) if a is not None):
        b.fail("Slice needs constant starts, ends, axes and steps")
    starts, ends = (np.asarray(c).reshape(-1).tolist() for c in consts[:2])
    axes = np.asarray(consts[2]).reshape(-1).tolist() if len(consts) > 2 and consts[2] is not None else list(range(len(starts)))
    steps = np.asarray(consts[3]).reshape(-1).tolist() if len(consts) > 3 and consts[3] is not None else [1] * len(starts)
    if x is not None and x.is_const:
        sl = [slice(None)] * x.const.ndim
        for s0, e0, ax, st in zip(starts, ends, axes, steps):
            sl[ax] = slice(s0, e0, st)
        return [Val(const=x.const[tuple(sl)])]
    x = _row(b, x)
    cols = list(range(x.width))
    for s0, e0, ax, st in zip(starts, ends, axes, steps):
        if ax in (1, -1):
            cols = cols[slice(s0, e0, st)]
        elif ax == 0 and s0 == 0 and e0 >= 2**62 and st == 1:
            continue  # all rows
        else:
            b.fail(f"Slice along axis {ax}: only the feature axis (1) is supported")
    if not cols:
        b.fail("Slice selects no feature")
    if cols == list(range(x.width)):
        return [x]
    return [Val(row=b.concat([b.extract(x.row, i) for i in cols], name="sliced"))]
