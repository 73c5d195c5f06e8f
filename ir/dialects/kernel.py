"""`kernel` dialect: a row against a stored table of vectors (SVM support vectors, KNN training
rows), nearest-neighbour selection, the square root they need, libsvm's kernel values and its
pairwise-coupling iteration.

These ops stand for loops over hundreds or thousands of stored vectors (or a data-dependent
iteration), which an `arith` expansion would unroll: each back-end lowers them as loops
(vectorised across rows where the back-end computes blocks of rows).

`kernel.gram` applies a per-value formula (`gram_transform`) inside its loop: a few `arith` ops and
at most one `math.exp`/`math.tanh` on one element, which every back-end lowers with its own
machinery for those ops (the C library's exp in the JIT's math="libm", Timber's own elsewhere),
so the values are those of the equivalent elementwise ops.  `coupling_program` writes libsvm's
`multiclass_probability` as a straight-line scalar program that each back-end renders.
"""

from __future__ import annotations

import numpy as np

from ..attributes import DenseElementsAttr, FloatAttr, IntegerAttr, StringAttr
from ..opdef import (
    AttrDef,
    Elementwise,
    FloatTensor,
    OpDef,
    OperandDef,
    Pure,
    Rank1FloatTensor,
    ResultDef,
    SameOperandsAndResultType,
    register,
)
from ..types import FloatType, IntegerType, TensorType
from .formats import SameTypeOp

METRICS = ("sqeuclidean", "manhattan")
GRAM_KERNELS = ("linear", "poly", "rbf", "sigmoid")
ACTIVATIONS = ("identity", "relu", "tanh", "logistic")


@register
class SqrtOp(SameTypeOp):
    """`%r = kernel.sqrt %a : tensor<4xf64>`: the IEEE square root (correctly rounded; sqrt(-0.0)
    is -0.0, a negative operand gives NaN), elementwise."""

    name = "kernel.sqrt"
    operand_defs = (OperandDef("input", FloatTensor),)
    result_defs = (ResultDef("out", FloatTensor),)
    traits = (Pure, SameOperandsAndResultType, Elementwise)


class _TableOp(OpDef):
    custom_print = True

    def print_custom(self, p) -> None:
        x = self.operands[0]
        p.write(f"{self.name} {p.name_of(x)} ")
        p.print_attr_dict(self.attributes)
        p.write(f" : {x.type} -> {self.results[0].type}")

    @classmethod
    def parse_custom(cls, p, result_names, loc):
        x = p.parse_value_use_name()
        attrs = p.parse_attr_dict()
        p.expect(":")
        t = p.parse_type()
        p.expect("->")
        rt = p.parse_type()
        return cls(operands=[p.resolve(x, t)], result_types=[rt], attributes=attrs, result_names=result_names, location=loc)


@register
class DistancesOp(_TableOp):
    """`%d = kernel.distances %x {vectors = dense<...> : tensor<MxNxf64>, metric = "sqeuclidean"} : tensor<Nxf64> -> tensor<Mxf64>`

    For each stored vector v_i (i = 0..M-1), in the element type: `acc = 0.0`, then for
    j = 0..N-1 in order `d = x[j] - v_i[j]` and `acc = acc + d * d` ("sqeuclidean", libsvm's
    dense RBF sum) or `acc = acc + |d|` ("manhattan"); `out[i] = acc`.  No fused multiply-add."""

    name = "kernel.distances"
    operand_defs = (OperandDef("input", Rank1FloatTensor),)
    result_defs = (ResultDef("out", Rank1FloatTensor),)
    attr_defs = (AttrDef("vectors", DenseElementsAttr), AttrDef("metric", StringAttr))
    traits = (Pure,)

    @classmethod
    def build(cls, x, vectors: np.ndarray, metric: str, name=None) -> "DistancesOp":
        m, n = vectors.shape
        el = x.type.element
        return cls(
            operands=[x],
            result_types=[TensorType((m,), el)],
            attributes={"vectors": DenseElementsAttr(vectors, TensorType((m, n), el)), "metric": StringAttr(metric)},
            result_names=[name],
        )

    def verify_(self) -> None:
        x, y, v = self.operands[0].type, self.results[0].type, self.attributes["vectors"].type
        if len(v.shape) != 2 or v.shape != (y.shape[0], x.shape[0]):
            self.error(f"vectors shape {v.shape} must be (outputs, inputs) = {(y.shape[0], x.shape[0])}")
        if v.element != x.element or y.element != x.element:
            self.error(f"vectors, input and result must share one element type, found {v.element}, {x.element}, {y.element}")
        if self.attributes["metric"].value not in METRICS:
            self.error(f"metric must be one of {', '.join(METRICS)}, found '{self.attributes['metric'].value}'")


@register
class TopKOp(_TableOp):
    """`%i = kernel.topk %d {k = 5 : i64} : tensor<Mxf64> -> tensor<5xi64>`

    The indices of the k smallest values, smallest first; equal values in index order (a stable
    sort's first k).  NaN sorts after every number (then by index)."""

    name = "kernel.topk"
    operand_defs = (OperandDef("input", Rank1FloatTensor),)
    result_defs = (ResultDef("out"),)
    attr_defs = (AttrDef("k", IntegerAttr),)
    traits = (Pure,)

    @classmethod
    def build(cls, d, k: int, name=None) -> "TopKOp":
        return cls(operands=[d], result_types=[TensorType((k,), IntegerType(64))], attributes={"k": IntegerAttr(k)}, result_names=[name])

    def verify_(self) -> None:
        k = self.attributes["k"].value
        m = self.operands[0].type.shape[0]
        if not 1 <= k <= m:
            self.error(f"k = {k} must be between 1 and the input's {m} values")
        if self.results[0].type != TensorType((k,), IntegerType(64)):
            self.error(f"result must be tensor<{k}xi64>, found {self.results[0].type}")


@register
class GramOp(_TableOp):
    """`%k = kernel.gram %x {coef0 = 0.0 : f64, degree = 3 : i64, gamma = 0.5 : f64, kernel = "rbf", vectors = dense<...> : tensor<MxNxf64>} : tensor<Nxf64> -> tensor<Mxf64>`

    libsvm's kernel value of the row with each stored vector v_i, in the element type, no fused
    multiply-add: `s = 0.0`, then for j = 0..N-1 in order `s = s + (x[j] - v_i[j])²` ("rbf",
    written `d = x[j] - v_i[j]; s = s + d * d`) or `s = s + x[j] * v_i[j]` (the others); then
    "linear": `s`; "rbf": `exp((-gamma) * s)`; "sigmoid": `tanh(gamma * s + coef0)`; "poly":
    libsvm's `powi(gamma * s + coef0, degree)` (square and multiply: `r = 1; t = base; for
    n = degree; n > 0; n /= 2 { if n odd: r = r * t; t = t * t }`, the first `1 * t` kept).
    exp and tanh are `math.exp` / `math.tanh` (the same bits as those ops in every back-end and
    math mode); the formula is `gram_transform(op)`.

    Optional, for a dense neural-network layer: `bias = dense<...> : tensor<Mxf64>` adds `b_i`
    to the kernel value (`k + b_i`), then `activation` ("identity", "relu": `t < 0 ? 0 : t`,
    keeping -0.0 and NaN as numpy's maximum(t, 0) does, "tanh": `math.tanh`, "logistic":
    `math.sigmoid`) is applied (`activation_transform(op)`)."""

    name = "kernel.gram"
    operand_defs = (OperandDef("input", Rank1FloatTensor),)
    result_defs = (ResultDef("out", Rank1FloatTensor),)
    attr_defs = (
        AttrDef("vectors", DenseElementsAttr),
        AttrDef("kernel", StringAttr),
        AttrDef("gamma", FloatAttr),
        AttrDef("coef0", FloatAttr),
        AttrDef("degree", IntegerAttr),
        AttrDef("bias", DenseElementsAttr, optional=True),
        AttrDef("activation", StringAttr, optional=True),
    )
    traits = (Pure,)

    @classmethod
    def build(
        cls, x, vectors: np.ndarray, kernel: str, gamma: float, coef0: float = 0.0, degree: int = 3, name=None, bias=None, activation=None
    ) -> "GramOp":
        m, n = vectors.shape
        el = x.type.element
        attrs = {
            "vectors": DenseElementsAttr(vectors, TensorType((m, n), el)),
            "kernel": StringAttr(kernel),
            "gamma": FloatAttr(gamma, el),
            "coef0": FloatAttr(coef0, el),
            "degree": IntegerAttr(degree),
        }
        if bias is not None:
            attrs["bias"] = DenseElementsAttr(np.asarray(bias), TensorType((m,), el))
        if activation is not None:
            attrs["activation"] = StringAttr(activation)
        return cls(operands=[x], result_types=[TensorType((m,), el)], attributes=attrs, result_names=[name])

    def verify_(self) -> None:
        x, y, v = self.operands[0].type, self.results[0].type, self.attributes["vectors"].type
        if len(v.shape) != 2 or v.shape != (y.shape[0], x.shape[0]):
            self.error(f"vectors shape {v.shape} must be (outputs, inputs) = {(y.shape[0], x.shape[0])}")
        if v.element != x.element or y.element != x.element:
            self.error(f"vectors, input and result must share one element type, found {v.element}, {x.element}, {y.element}")
        for a in ("gamma", "coef0"):
            if self.attributes[a].type != x.element:
                self.error(f"{a} must be of the element type {x.element}, found {self.attributes[a].type}")
        if self.attributes["kernel"].value not in GRAM_KERNELS:
            self.error(f"kernel must be one of {', '.join(GRAM_KERNELS)}, found '{self.attributes['kernel'].value}'")
        if not 0 <= self.attributes["degree"].value <= 64:
            self.error(f"degree must be between 0 and 64, found {self.attributes['degree'].value}")
        b = self.attributes.get("bias")
        if b is not None and b.type != TensorType(y.shape, y.element):
            self.error(f"bias must be {TensorType(y.shape, y.element)}, found {b.type}")
        a = self.attributes.get("activation")
        if a is not None and a.value not in ACTIVATIONS:
            self.error(f"activation must be one of {', '.join(ACTIVATIONS)}, found '{a.value}'")

    @property
    def bias(self):
        b = self.attributes.get("bias")
        return None if b is None else np.asarray(b.values).reshape(-1)

    @property
    def squared(self) -> bool:
        """The accumulated term: (x - v)² ("rbf") or x·v."""
        return self.attributes["kernel"].value == "rbf"


@register
class TakeOp(OpDef):
    """`%v = kernel.take %d, %i : tensor<100xf64>, tensor<5xi64> -> tensor<5xf64>`: `v[s] = d[i[s]]`
    (an index is clamped into [0, M - 1]: no read out of bounds), e.g. the distances of the
    neighbours `kernel.topk` chose."""

    name = "kernel.take"
    operand_defs = (OperandDef("input", Rank1FloatTensor), OperandDef("index"))
    result_defs = (ResultDef("out", Rank1FloatTensor),)
    traits = (Pure,)
    custom_print = True

    def print_custom(self, p) -> None:
        d, i = self.operands
        p.write(f"{self.name} {p.name_of(d)}, {p.name_of(i)}")
        if self.attributes:
            p.write(" ")
            p.print_attr_dict(self.attributes)
        p.write(f" : {d.type}, {i.type} -> {self.results[0].type}")

    @classmethod
    def parse_custom(cls, p, result_names, loc):
        d = p.parse_value_use_name()
        p.expect(",")
        i = p.parse_value_use_name()
        attrs = p.parse_optional_attr_dict()
        p.expect(":")
        dt = p.parse_type()
        p.expect(",")
        it = p.parse_type()
        p.expect("->")
        rt = p.parse_type()
        return cls(
            operands=[p.resolve(d, dt), p.resolve(i, it)], result_types=[rt], attributes=attrs, result_names=result_names, location=loc
        )

    @classmethod
    def build(cls, d, i, name=None) -> "TakeOp":
        return cls(operands=[d, i], result_types=[TensorType(i.type.shape, d.type.element)], result_names=[name])

    def verify_(self) -> None:
        d, i, r = self.operands[0].type, self.operands[1].type, self.results[0].type
        if not isinstance(i, TensorType) or i.element != IntegerType(64) or len(i.shape) != 1:
            self.error(f"index must be a rank-1 tensor of i64, found {i}")
        if r != TensorType(i.shape, d.element):
            self.error(f"result must be {TensorType(i.shape, d.element)}, found {r}")


_TRANSFORMS: dict = {}


def gram_transform(op: GramOp):
    """`(arg, ops, out)`: the formula turning one accumulated sum (arg, a tensor<1xT> placeholder)
    into the kernel value, as `arith`/`math` ops (built once per kernel, constants and type)."""
    from ..core import Block
    from .math import ExpOp, TanhOp
    from .mathimpl.dsl import Emitter

    el = op.operands[0].type.element
    a = op.attributes
    kind, gamma, coef0, degree = a["kernel"].value, a["gamma"].value, a["coef0"].value, a["degree"].value
    key = (kind, a["gamma"].bits.tobytes(), a["coef0"].bits.tobytes(), degree, str(el))
    hit = _TRANSFORMS.get(key)
    if hit is not None:
        return hit
    t1 = TensorType((1,), el)
    arg = Block([t1]).args[0]
    em = Emitter((1,), op.location)
    s = em.wrap(arg)
    if kind == "linear":
        out = s
    elif kind == "rbf":
        out = em.emit(ExpOp(operands=[(em.const(-gamma, el) * s).v], result_types=[t1]))
    else:
        base = em.const(gamma, el) * s + em.const(coef0, el)
        if kind == "sigmoid":
            out = em.emit(TanhOp(operands=[base.v], result_types=[t1]))
        else:
            ret, tmp, n = em.const(1.0, el), base, degree
            while n > 0:
                if n % 2 == 1:
                    ret = ret * tmp
                n //= 2
                if n > 0:  # libsvm squares once more after the last bit: a value nothing reads
                    tmp = tmp * tmp
            out = ret
    hit = _TRANSFORMS[key] = (arg, em.ops, out.v)
    return hit


def activation_transform(op: GramOp):
    """`(arg, ops, out)` of the layer activation on one value, or None (no activation / identity)."""
    from ..core import Block
    from .math import SigmoidOp, TanhOp
    from .mathimpl.dsl import Emitter, where

    a = op.attributes.get("activation")
    if a is None or a.value == "identity":
        return None
    el = op.operands[0].type.element
    key = ("act", a.value, str(el))
    hit = _TRANSFORMS.get(key)
    if hit is not None:
        return hit
    t1 = TensorType((1,), el)
    arg = Block([t1]).args[0]
    em = Emitter((1,), op.location)
    t = em.wrap(arg)
    if a.value == "relu":
        out = where(t.lt(0.0), em.const(0.0, el), t)
    elif a.value == "tanh":
        out = em.emit(TanhOp(operands=[arg], result_types=[t1]))
    else:
        out = em.emit(SigmoidOp(operands=[arg], result_types=[t1]))
    hit = _TRANSFORMS[key] = (arg, em.ops, out.v)
    return hit


@register
class CoupleOp(_TableOp):
    """`%p = kernel.couple %r {classes = 3 : i64} : tensor<3xf64> -> tensor<3xf64>`

    libsvm's `multiclass_probability` (pairwise coupling, method 2 of Wu, Lin and Weng) on one
    row, exactly as its C code runs in float64: the operand holds r[i][j] for every pair i < j in
    the order (0,1), (0,2), ..., (1,2), ... (r[j][i] = 1 - r[i][j]); the result is p[0..k-1].
    Q from r, p = 1/k, then at most max(100, k) rounds of: Qp and pQp recomputed, stop when
    max_t |Qp[t] - pQp| < 0.005/k (a NaN error never raises the maximum), else the sequential
    update of every p[t].  `coupling_program(k)` is the statement-by-statement definition."""

    name = "kernel.couple"
    operand_defs = (OperandDef("input", Rank1FloatTensor),)
    result_defs = (ResultDef("out", Rank1FloatTensor),)
    attr_defs = (AttrDef("classes", IntegerAttr),)
    traits = (Pure,)

    @classmethod
    def build(cls, r, k: int, name=None) -> "CoupleOp":
        return cls(
            operands=[r], result_types=[TensorType((k,), r.type.element)], attributes={"classes": IntegerAttr(k)}, result_names=[name]
        )

    def verify_(self) -> None:
        k = self.attributes["classes"].value
        if k < 2:
            self.error(f"classes must be at least 2, found {k}")
        x, y = self.operands[0].type, self.results[0].type
        if x.element != FloatType(64) or y.element != FloatType(64):
            self.error(f"operand and result must be f64 tensors (libsvm's doubles), found {x}, {y}")
        if x.shape != (k * (k - 1) // 2,) or y.shape != (k,):
            self.error(f"{k} classes take tensor<{k * (k - 1) // 2}xf64> and give tensor<{k}xf64>, found {x} -> {y}")


class Coupling:
    """libsvm's `multiclass_probability` for k classes as three straight-line scalar programs:
    `setup` (Q and p from the inputs `r<i>_<j>`, i < j), `check` (Qp, pQp and `max_error`) and
    `update` (one round of the p updates), run as: setup; repeat `iters` times { check; stop
    when `max_error < eps`; update }.  Statements are `(dst, op, a, b)` with op one of add, sub,
    mul, div, neg, abs, set ("a"), maxgt ("a if a > b else b"); operands are variable names or
    Python floats.  Variables `p<t>` hold the result."""

    def __init__(self, k: int):
        self.k = k
        self.iters = max(100, k)
        self.eps = 0.005 / k
        self.setup: list[tuple] = []
        self.check: list[tuple] = []
        self.update: list[tuple] = []

        def r(i, j):
            return f"r{i}_{j}"

        st = self.setup
        for i in range(k):
            for j in range(i + 1, k):
                st.append((f"r{j}_{i}", "sub", 1.0, f"r{i}_{j}"))
        for t in range(k):
            st.append((f"p{t}", "set", 1.0 / k, None))
            st.append((f"q{t}_{t}", "set", 0.0, None))
            for j in range(t):
                st.append(("tmp", "mul", r(j, t), r(j, t)))
                st.append((f"q{t}_{t}", "add", f"q{t}_{t}", "tmp"))
                st.append((f"q{t}_{j}", "set", f"q{j}_{t}", None))
            for j in range(t + 1, k):
                st.append(("tmp", "mul", r(j, t), r(j, t)))
                st.append((f"q{t}_{t}", "add", f"q{t}_{t}", "tmp"))
                st.append(("tmp", "neg", r(j, t), None))
                st.append((f"q{t}_{j}", "mul", "tmp", r(t, j)))
        ck = self.check
        ck.append(("pqp", "set", 0.0, None))
        for t in range(k):
            ck.append((f"qp{t}", "set", 0.0, None))
            for j in range(k):
                ck.append(("tmp", "mul", f"q{t}_{j}", f"p{j}"))
                ck.append((f"qp{t}", "add", f"qp{t}", "tmp"))
            ck.append(("tmp", "mul", f"p{t}", f"qp{t}"))
            ck.append(("pqp", "add", "pqp", "tmp"))
        ck.append(("max_error", "set", 0.0, None))
        for t in range(k):
            ck.append(("tmp", "sub", f"qp{t}", "pqp"))
            ck.append(("tmp", "abs", "tmp", None))
            ck.append(("max_error", "maxgt", "tmp", "max_error"))
        up = self.update
        for t in range(k):
            up.append(("tmp", "neg", f"qp{t}", None))
            up.append(("tmp", "add", "tmp", "pqp"))
            up.append(("diff", "div", "tmp", f"q{t}_{t}"))
            up.append((f"p{t}", "add", f"p{t}", "diff"))
            up.append(("tmp", "mul", "diff", f"q{t}_{t}"))
            up.append(("tmp2", "mul", 2.0, f"qp{t}"))
            up.append(("tmp", "add", "tmp", "tmp2"))
            up.append(("tmp", "mul", "diff", "tmp"))
            up.append(("tmp", "add", "pqp", "tmp"))
            up.append(("onep", "add", 1.0, "diff"))
            up.append(("tmp", "div", "tmp", "onep"))
            up.append(("pqp", "div", "tmp", "onep"))
            for j in range(k):
                up.append(("tmp", "mul", "diff", f"q{t}_{j}"))
                up.append(("tmp", "add", f"qp{j}", "tmp"))
                up.append((f"qp{j}", "div", "tmp", "onep"))
                up.append((f"p{j}", "div", f"p{j}", "onep"))

    def inputs(self) -> list[str]:
        return [f"r{i}_{j}" for i in range(self.k) for j in range(i + 1, self.k)]

    def variables(self) -> list[str]:
        """Every variable a statement assigns, inputs first (each used with one meaning)."""
        seen = dict.fromkeys(self.inputs())
        for st in self.setup + self.check + self.update:
            seen.setdefault(st[0])
        return list(seen)


def coupling_program(k: int) -> Coupling:
    return Coupling(k)


# ----- semantics (the interpreter) ----------------------------------------------------------------

from ..interpreter import interprets  # noqa: E402


@interprets(SqrtOp)
def _sqrt(op, args, it):
    with np.errstate(invalid="ignore"):
        return [np.sqrt(args[0])]


@interprets(DistancesOp)
def _distances(op, args, it):
    x = args[0]
    v = op.attributes["vectors"].values
    sq = op.attributes["metric"].value == "sqeuclidean"
    acc = np.zeros((x.shape[0], v.shape[0]), x.dtype)
    with np.errstate(invalid="ignore", over="ignore"):
        for j in range(v.shape[1]):
            d = x[:, j : j + 1] - v[None, :, j]
            acc = acc + (d * d if sq else np.abs(d))
    return [acc]


@interprets(TopKOp)
def _topk(op, args, it):
    k = op.attributes["k"].value
    d = args[0]
    # numpy's stable argsort: ascending, NaN last, equal values in index order
    order = np.argsort(d, axis=1, kind="stable")
    return [order[:, :k].astype(np.int64)]


@interprets(GramOp)
def _gram(op, args, it):
    x = args[0]
    v = op.attributes["vectors"].values
    acc = np.zeros((x.shape[0], v.shape[0]), x.dtype)
    with np.errstate(all="ignore"):
        for j in range(v.shape[1]):
            if op.squared:
                d = x[:, j : j + 1] - v[None, :, j]
                acc = acc + d * d
            else:
                acc = acc + x[:, j : j + 1] * v[None, :, j]
        arg, ops, out = gram_transform(op)
        n, m = acc.shape
        res = np.broadcast_to(it.run_ops(ops, {id(arg): acc.reshape(-1, 1)}, out), (n * m, 1)).reshape(n, m)
        if op.bias is not None:
            res = res + op.bias[None, :]
        act = activation_transform(op)
        if act is not None:
            arg, ops, out = act
            res = np.broadcast_to(it.run_ops(ops, {id(arg): res.reshape(-1, 1)}, out), (n * m, 1)).reshape(n, m)
    return [res.copy()]


def run_scalar(statements, env: dict) -> None:
    """Run `Coupling` statements on numpy arrays (one lane per row), in place in `env`."""
    for dst, o, a, b in statements:
        x = env[a] if isinstance(a, str) else a
        y = env[b] if isinstance(b, str) else b
        if o == "add":
            r = x + y
        elif o == "sub":
            r = x - y
        elif o == "mul":
            r = x * y
        elif o == "div":
            r = x / y
        elif o == "neg":
            r = -x
        elif o == "abs":
            r = np.abs(x)
        elif o == "set":
            r = x
        elif o == "maxgt":
            r = np.where(x > y, x, y)
        else:  # pragma: no cover
            raise AssertionError(o)
        env[dst] = np.array(r, np.float64) if np.ndim(r) == 0 else r


@interprets(TakeOp)
def _take(op, args, it):
    d, i = args
    i = np.clip(np.broadcast_to(i, (d.shape[0], i.shape[1])), 0, d.shape[1] - 1)
    return [np.take_along_axis(d, i, axis=1)]


@interprets(CoupleOp)
def _couple(op, args, it):
    r = args[0].astype(np.float64)
    n = r.shape[0]
    prog = coupling_program(op.attributes["classes"].value)
    env = {name: r[:, i].copy() for i, name in enumerate(prog.inputs())}
    with np.errstate(all="ignore"):
        run_scalar(prog.setup, env)
        env = {k: np.broadcast_to(v, (n,)).copy() for k, v in env.items()}
        active = np.ones(n, bool)
        for _ in range(prog.iters):
            run_scalar(prog.check, env)
            active &= ~(env["max_error"] < prog.eps)
            if not active.any():
                break
            before = {f"p{t}": env[f"p{t}"].copy() for t in range(prog.k)}
            run_scalar(prog.update, env)
            for name, old in before.items():  # finished rows keep their p (their Q, Qp are recomputed)
                env[name] = np.where(active, env[name], old)
    return [np.stack([env[f"p{t}"] for t in range(prog.k)], axis=1)]


__all__ = [
    "CoupleOp",
    "DistancesOp",
    "FloatType",
    "GramOp",
    "METRICS",
    "SqrtOp",
    "TakeOp",
    "TopKOp",
    "activation_transform",
    "coupling_program",
    "gram_transform",
]
