"""LLVM back-end: every non-tree op (arith, math, linear, func.call) and Timber's exp, bit for
bit against the interpreter and `tests/mathref.py`; no FMA contraction in the generated code."""

from __future__ import annotations

import numpy as np
import pytest

from ir.dialects import arith, builtin, func, linear, math
from ir.interpreter import run as interpret
from ir.types import FloatType, f32, f64, tensor
from tests import mathref as mathfn
from tests import rows as adv
from tests.backends.test_llvm import TARGETS, add_func, assert_same_bits, call, call_single, check, forest, jit, new_module, ret

CMP_PREDICATES = ["oeq", "ogt", "oge", "olt", "ole", "one", "ord", "ueq", "ugt", "uge", "ult", "ule", "une", "uno"]


def op_zoo(el: FloatType, n: int = 4) -> builtin.ModuleOp:
    """One function per op (or op group) over x: tensor<n x el>."""
    m = new_module()
    t = tensor(n, el)
    rng = np.random.default_rng(7)
    cvals = np.array([0.5, -0.0, np.nan, 2.0] * n)[:n]

    def unary(name, build):
        f = add_func(m, name, n, el, t)
        x = f.args[0]
        ret(f, f.body.add_op(build(f, x)).results[0])

    def const(f, values, ty=t):
        return f.body.add_op(arith.ConstantOp.build(np.asarray(values), ty)).result

    for name, cls in (
        ("add", arith.AddFOp),
        ("sub", arith.SubFOp),
        ("mul", arith.MulFOp),
        ("div", arith.DivFOp),
        ("max", arith.MaximumFOp),
        ("min", arith.MinimumFOp),
    ):
        unary(name, lambda f, x, cls=cls: cls.build(x, const(f, cvals)))
        unary(name + "_rev", lambda f, x, cls=cls: cls.build(const(f, cvals), x))
    unary("neg", lambda f, x: arith.NegFOp.build(x))
    unary("exp", lambda f, x: math.ExpOp.build(x))
    unary("sigmoid", lambda f, x: math.SigmoidOp.build(x))
    unary("softmax", lambda f, x: math.SoftmaxOp.build(x))
    unary("softmax_acc64", lambda f, x: math.SoftmaxOp.build(x, acc=f64))
    for p in CMP_PREDICATES:
        unary(
            "select_" + p,
            lambda f, x, p=p: arith.SelectOp.build(f.body.add_op(arith.CmpFOp.build(p, x, const(f, cvals))).result, x, const(f, cvals)),
        )
    other = f64 if el == f32 else f32
    f = add_func(m, "roundtrip", n, el, t)
    cast = arith.ExtFOp if el == f32 else arith.TruncFOp
    y = f.body.add_op(cast.build(f.args[0], tensor(n, other))).result
    z = f.body.add_op(arith.AddFOp.build(y, const(f, rng.normal(size=n), tensor(n, other)))).result
    back = arith.TruncFOp if el == f32 else arith.ExtFOp
    ret(f, f.body.add_op(back.build(z, t)).result)
    f = add_func(m, "argmax", n, el, tensor(1, el))
    i = f.body.add_op(math.ArgmaxOp.build(f.args[0])).result
    ret(f, f.body.add_op(arith.SIToFPOp.build(i, tensor(1, el))).result)
    for name, miss in (("affine_skip", "skip"), ("affine_nan", "propagate")):
        f = add_func(m, name, n, el, tensor(3, el))
        w, b = rng.normal(size=(3, n)), rng.normal(size=3)
        ret(f, f.body.add_op(linear.AffineOp.build(f.args[0], w.astype(el.numpy), b.astype(el.numpy), el, miss)).result)
    return m


# The scalar (no-SIMD) lowering of the whole zoo costs ~30 s of codegen per type: -m slow (the
# scalar target stays covered by the tree tests in test_llvm.py).
@pytest.mark.parametrize("target", ["host", pytest.param("scalar", marks=pytest.mark.slow)])
@pytest.mark.parametrize("el", [f32, f64], ids=["f32", "f64"])
def test_arith_math_linear_ops(el, target):
    m = op_zoo(el)
    rng = np.random.default_rng(8)
    specials = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1.0, -1.0, 1e-40, 700.0, -700.0, 89.0, -104.0, 1e30, -1e30, 0.5, 2.0])
    X = np.concatenate([rng.choice(specials, size=(200, 4)), rng.normal(scale=30, size=(200, 4))])
    check(m, X, TARGETS[target])


def test_affine_many_inputs_loops_and_mixed_types():
    """More inputs than AFFINE_UNROLL: the loop over j with a weight table; f32 input into f64 weights."""
    rng = np.random.default_rng(9)
    n = 150
    m = new_module()
    for name, miss in (("predict", "skip"), ("prop", "propagate")):
        f = add_func(m, name, n, f32, tensor(4, f64))
        ret(f, f.body.add_op(linear.AffineOp.build(f.args[0], rng.normal(size=(4, n)), rng.normal(size=4), f64, miss)).result)
    X = rng.normal(size=(100, n))
    X[rng.random(X.shape) < 0.02] = np.nan
    check(m, X)


def test_call_chain_and_private_functions():
    """predict -> margin -> helper: callees are lowered at every block size and exported too."""
    rng = np.random.default_rng(10)
    m = forest(rng, 10, 5, [3], n_out=3, name="margin")
    margin = m.lookup("margin")
    helper = add_func(m, "helper", 3, f32, tensor(3, f32))
    ret(helper, helper.body.add_op(math.SoftmaxOp.build(helper.args[0], acc=f64)).result)
    p = add_func(m, "predict", 5, f32, tensor(3, f32))
    mv = p.body.add_op(func.CallOp.build(margin, [p.args[0]])).result
    ret(p, p.body.add_op(func.CallOp.build(helper, [mv])).result)
    j = jit(m)
    assert set(j.functions) == {"timber_infer", "timber_infer_single", "timber_infer_margin", "timber_infer_helper"}
    X = adv.adversarial_rows(m, n_mixed=100)
    assert_same_bits(call(j, X), interpret(m, X))
    assert_same_bits(call_single(j, X), interpret(m, X))
    assert_same_bits(call(j, X, "timber_infer_margin"), interpret(m, X, "margin"))


# ----- exp --------------------------------------------------------------------------------------


def _exp_inputs() -> np.ndarray:
    rng = np.random.default_rng(11)
    bits = rng.integers(0, 2**64, size=4000, dtype=np.uint64).view(np.float64)
    edges = [
        mathfn.OVERFLOW,
        mathfn.UNDERFLOW,
        709.78,
        709.79,
        -745.13,
        -708.4,
        -708.39,
        0.0,
        -0.0,
        np.nan,
        np.inf,
        -np.inf,
        1e-300,
        -1e-300,
    ]
    near = np.concatenate([np.nextafter(np.array(edges), np.inf), np.nextafter(np.array(edges), -np.inf)])
    ramp = np.linspace(-760, 720, 3000)
    f32ish = rng.normal(scale=40, size=2000).astype(np.float32).astype(np.float64)
    return np.concatenate([bits, edges, near, ramp, f32ish, rng.normal(size=1000)])


@pytest.mark.parametrize("el", [f32, f64], ids=["f32", "f64"])
def test_exp_is_mathfn_exp_bit_for_bit(el):
    m = new_module()
    f = add_func(m, "predict", 1, el, tensor(1, el))
    ret(f, f.body.add_op(math.ExpOp.build(f.args[0])).result)
    x = _exp_inputs().astype(el.numpy)
    for target in ("host", "scalar"):
        got = call(jit(m, TARGETS[target]), x[:, None])[:, 0]
        assert_same_bits(got, mathfn.exp(x))


@pytest.mark.parametrize("el", [f32, f64], ids=["f32", "f64"])
def test_log1p_is_mathfn_log1p_bit_for_bit(el):
    m = new_module()
    f = add_func(m, "predict", 1, el, tensor(1, el))
    ret(f, f.body.add_op(math.Log1pOp.build(f.args[0])).result)
    x = adv.log1p_inputs(el.numpy)
    for target in ("host", "scalar"):
        got = call(jit(m, TARGETS[target]), x[:, None])[:, 0]
        assert_same_bits(got, mathfn.log1p(x))


@pytest.mark.parametrize("el", [f32, f64], ids=["f32", "f64"])
def test_fmath_exp_is_mathfn_fmath_exp_bit_for_bit(el):
    from ir.attributes import StringAttr

    m = new_module()
    f = add_func(m, "predict", 1, el, tensor(1, el))
    ret(f, f.body.add_op(math.ExpOp.build(f.args[0], impl=StringAttr("fmath"))).result)
    x = _exp_inputs().astype(el.numpy)
    for target in ("host", "scalar"):
        got = call(jit(m, TARGETS[target]), x[:, None])[:, 0]
        assert_same_bits(got, mathfn.fmath_exp(x))


def test_no_fused_multiply_add_in_generated_code():
    """x*y + z must stay two roundings (the host has FMA; LLVM may only fuse when told to)."""
    m = new_module()
    rng = np.random.default_rng(12)
    f = add_func(m, "predict", 8, f64, tensor(3, f64))
    a = f.body.add_op(linear.AffineOp.build(f.args[0], rng.normal(size=(3, 8)), rng.normal(size=3), f64, "propagate")).result
    ret(f, f.body.add_op(math.SoftmaxOp.build(f.body.add_op(math.SigmoidOp.build(a)).result)).result)
    asm = jit(m).assembly().lower()
    assert "vfmadd" not in asm and "vfmsub" not in asm and "vfnmadd" not in asm
