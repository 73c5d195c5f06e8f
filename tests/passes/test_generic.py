"""canonicalize, cse and dce: folds compute the interpreter's bits, identities are IEEE-exact,
and the three leave the module's functions computing exactly what they did."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ir.dialects import arith, builtin, func
from ir.interpreter import run
from ir.types import f32, f64, i1, i64, tensor
from ir.verifier import verify
from passes import run_pipeline
from tests.passes.models import assert_same, outputs

SPECIAL = [0.0, -0.0, 1.0, -1.0, 0.5, np.inf, -np.inf, np.nan, 1e-45, 3.4e38, 1e308]
BINARY = [arith.AddFOp, arith.SubFOp, arith.MulFOp, arith.DivFOp, arith.MaximumFOp, arith.MinimumFOp]
CMP = ["oeq", "ogt", "oge", "olt", "ole", "one", "ord", "ueq", "ugt", "uge", "ult", "ule", "une", "uno"]


def _values(draw_list, t):
    with np.errstate(over="ignore"):  # f64 specials beyond the f32 range become inf on purpose
        return np.array(draw_list, dtype=t.numpy)


def _module(build_body, in_type, out_type):
    m = builtin.ModuleOp.build()
    fn = func.FuncOp.build("predict", [in_type], [out_type], arg_names=["x"])
    m.body.add_op(fn)
    fn.body.add_op(func.ReturnOp(operands=[build_body(fn)]))
    verify(m)
    return m


@settings(max_examples=60, deadline=None)
@given(
    op=st.sampled_from(BINARY + ["cmpf", "select", "negf", "extf", "truncf", "sitofp"]),
    elem=st.sampled_from([f32, f64]),
    a=st.lists(st.sampled_from(SPECIAL) | st.floats(width=32), min_size=3, max_size=3),
    b=st.lists(st.sampled_from(SPECIAL) | st.floats(width=32), min_size=3, max_size=3),
    pred=st.sampled_from(CMP),
)
def test_constant_folding_matches_the_interpreter(op, elem, a, b, pred):
    t = tensor(3, elem)

    def body(fn):
        blk = fn.body
        ca = blk.add_op(arith.ConstantOp.build(_values(a, elem), t)).result
        cb = blk.add_op(arith.ConstantOp.build(_values(b, elem), t)).result
        if op in BINARY:
            r = blk.add_op(op.build(ca, cb)).result
        elif op == "cmpf":
            c = blk.add_op(arith.CmpFOp.build(pred, ca, cb)).result
            r = blk.add_op(arith.SelectOp.build(c, ca, cb)).result
        elif op == "select":
            c = blk.add_op(arith.ConstantOp.build(np.array([True, False, True]), tensor(3, i1))).result
            r = blk.add_op(arith.SelectOp.build(c, ca, cb)).result
        elif op == "negf":
            r = blk.add_op(arith.NegFOp.build(ca)).result
        elif op == "extf":
            lo = blk.add_op(arith.TruncFOp.build(ca, tensor(3, f32))).result if elem == f64 else ca
            r = blk.add_op(arith.ExtFOp.build(lo, tensor(3, f64))).result
            r = blk.add_op(arith.TruncFOp.build(r, tensor(3, f32))).result if elem == f32 else r
        elif op == "truncf":
            wide = blk.add_op(arith.ExtFOp.build(ca, tensor(3, f64))).result if elem == f32 else ca
            r = blk.add_op(arith.TruncFOp.build(wide, tensor(3, f32))).result
            r = blk.add_op(arith.ExtFOp.build(r, tensor(3, f64))).result if elem == f64 else r
        else:
            ints = blk.add_op(arith.ConstantOp.build(np.array([3, -7, 2**40]), tensor(3, i64))).result
            r = blk.add_op(arith.SIToFPOp.build(ints, t)).result
        return blk.add_op(arith.AddFOp.build(r, fn.args[0])).result

    m = _module(body, t, t)
    X = np.array([[0.0, -0.0, 1.0], [np.nan, np.inf, -1.0]])
    before = outputs(m, X)
    run_pipeline(m, "canonicalize")
    verify(m)
    assert_same(before, outputs(m, X))
    # Everything folds into one constant added to x (or into nothing, when it is -0.0).
    names = [o.name for o in m.lookup("predict").body.ops]
    assert names in (["arith.constant", "arith.addf", "func.return"], ["func.return"]), names


@pytest.mark.parametrize("op", [arith.MaximumFOp, arith.MinimumFOp])
def test_max_min_fold_ties_and_nans_as_defined(op):
    """maximumf/minimumf: a NaN operand wins (the first one), ties of +0/-0 give the second."""
    t = tensor(4, f64)
    a = np.array([0.0, -0.0, np.nan, 1.0])
    b = np.array([-0.0, 0.0, -np.nan, np.nan])

    def body(fn):
        ca = fn.body.add_op(arith.ConstantOp.build(a, t)).result
        cb = fn.body.add_op(arith.ConstantOp.build(b, t)).result
        r = fn.body.add_op(op.build(ca, cb)).result
        return fn.body.add_op(arith.AddFOp.build(r, fn.args[0])).result

    m = _module(body, t, t)
    X = np.array([[-0.0, -0.0, 0.0, 0.0]])
    before = run(m, X)
    run_pipeline(m, "canonicalize")
    after = run(m, X)
    assert before.tobytes() == after.tobytes()
    folded = next(o for o in m.lookup("predict").body.ops if o.name == "arith.constant").value
    assert folded[:2].tobytes() == b[:2].tobytes()  # ties give b, sign of zero included
    assert folded[2:3].tobytes() == a[2:3].tobytes() and folded[3:4].tobytes() == b[3:4].tobytes()  # that NaN's bits


@pytest.mark.parametrize(
    "op, const, kept",
    [
        (arith.AddFOp, -0.0, True),
        (arith.AddFOp, 0.0, False),  # -0.0 + 0.0 = 0.0: not an identity
        (arith.SubFOp, 0.0, True),
        (arith.SubFOp, -0.0, False),
        (arith.MulFOp, 1.0, True),
        (arith.MulFOp, -1.0, False),
        (arith.DivFOp, 1.0, True),
    ],
)
def test_identities_only_when_exact(op, const, kept):
    t = tensor(2, f32)

    def body(fn):
        c = fn.body.add_op(arith.ConstantOp.build(np.full(2, const), t)).result
        return fn.body.add_op(op.build(fn.args[0], c)).result

    m = _module(body, t, t)
    X = np.array([[-0.0, np.nan], [np.inf, 1e-45]])
    before = outputs(m, X)
    run_pipeline(m, "canonicalize")
    assert_same(before, outputs(m, X))
    ops = [o.name for o in m.lookup("predict").body.ops]
    assert (ops == ["func.return"]) == kept


def test_cse_merges_and_dce_erases():
    t = tensor(2, f64)

    def body(fn):
        blk = fn.body
        c1 = blk.add_op(arith.ConstantOp.build([1.0, 2.0], t)).result
        c2 = blk.add_op(arith.ConstantOp.build([1.0, 2.0], t)).result
        a = blk.add_op(arith.MulFOp.build(fn.args[0], c1)).result
        b = blk.add_op(arith.MulFOp.build(fn.args[0], c2)).result
        blk.add_op(arith.NegFOp.build(a))  # dead
        return blk.add_op(arith.SubFOp.build(a, b)).result

    m = _module(body, t, t)
    X = np.array([[1.0, np.nan], [np.inf, -3.0]])
    before = run(m, X)
    (cse,) = run_pipeline(m, "cse")
    assert cse.stats["ops-merged"] == 2
    (dce,) = run_pipeline(m, "dce")
    assert dce.stats["ops-erased"] == 1
    assert [o.name for o in m.lookup("predict").body.ops] == ["arith.constant", "arith.mulf", "arith.subf", "func.return"]
    np.testing.assert_array_equal(run(m, X), before)
