"""The interpreter pins down each split semantic with rows chosen to tell the rules apart."""

import numpy as np
import pytest

from ir.dialects import builtin, func, math, tree
from ir.dialects.tree import Missing, NodeTable, ObliviousTable, Pred, bitset_from_members
from ir.interpreter import run
from ir.types import f32, f64, tensor
from ir.verifier import verify


def stump(pred, threshold, missing=Missing.NONE, default="none", cats=None, dtype=np.float64, cat_negative=None, n_features=1):
    """One split on x[0]: yes → leaf 1.0, no → leaf 2.0."""
    t_in = f64 if dtype == np.float64 else f32
    m = builtin.ModuleOp.build()
    f = m.body.add_op(func.FuncOp.build("predict", [tensor(n_features, t_in)], [tensor(1, t_in)], arg_names=["x"]))
    e = f.body.add_op(tree.EnsembleOp.build(f.args[0], 1, t_in, t_in, t_in, cat_negative=cat_negative))
    d = {"yes": 1, "no": 2, "none": -1}[default]
    kw = {}
    if cats is not None:
        w = bitset_from_members(cats)
        kw = dict(cat_start=[0, 0, 0], cat_len=[len(w), 0, 0], cat_words=w)
    e.add_tree(
        NodeTable(
            [0, -1, -1],
            [pred, 0, 0],
            np.array([threshold, 0, 0], dtype),
            [1, -1, -1],
            [2, -1, -1],
            [missing, 0, 0],
            [d, -1, -1],
            np.array([0, 1.0, 2.0], dtype),
            **kw,
        )
    )
    f.body.add_op(func.ReturnOp(operands=[e.result]))
    verify(m)
    return m


def outcome(m, values):
    return ["yes" if v == 1.0 else "no" for v in run(m, np.array(values, dtype=np.float64).reshape(-1, 1))[:, 0]]


def test_comparisons_follow_c_and_nan_is_false_except_ne():
    x = [0.5, 1.0, 1.5, np.nan]
    assert outcome(stump(Pred.LT, 1.0), x) == ["yes", "no", "no", "no"]
    assert outcome(stump(Pred.LE, 1.0), x) == ["yes", "yes", "no", "no"]
    assert outcome(stump(Pred.GT, 1.0), x) == ["no", "no", "yes", "no"]
    assert outcome(stump(Pred.GE, 1.0), x) == ["no", "yes", "yes", "no"]
    assert outcome(stump(Pred.EQ, 1.0), x) == ["no", "yes", "no", "no"]
    assert outcome(stump(Pred.NE, 1.0), x) == ["yes", "no", "yes", "yes"]


def test_missing_kinds():
    x = [np.nan, 0.0, -0.0, 1e-36, -1e-35, 2e-35, 5.0]
    # nan: only NaN takes the default child.
    assert outcome(stump(Pred.LE, 1.0, Missing.NAN, "no"), x) == ["no", "yes", "yes", "yes", "yes", "yes", "no"]
    # zero (LightGBM MissingType::Zero): NaN and |x| <= 1e-35f take the default.
    assert outcome(stump(Pred.LE, 1.0, Missing.ZERO, "no"), x) == ["no", "no", "no", "no", "no", "yes", "no"]
    # nan-as-zero (MissingType::None): NaN becomes 0.0 and is compared.
    assert outcome(stump(Pred.LE, -1.0, Missing.NAN_AS_ZERO), x) == ["no", "no", "no", "no", "no", "no", "no"]
    assert outcome(stump(Pred.LE, 0.0, Missing.NAN_AS_ZERO), x) == ["yes", "yes", "yes", "no", "yes", "no", "no"]


def test_compare_precision_f32_vs_f64():
    t = 0.1  # not representable: the f32 and f64 thresholds differ
    x32 = float(np.float32(0.1))  # slightly above 0.1
    assert outcome(stump(Pred.LE, t, dtype=np.float64), [x32]) == ["no"]
    assert outcome(stump(Pred.LE, np.float32(t), dtype=np.float32), [x32]) == ["yes"]


def test_categorical_membership():
    cats = [1, 3, 40]
    x = [1.0, 3.0, 40.0, 2.0, 1.9, 0.0, 41.0, 1000.0, -0.5, -1.0, np.nan, np.inf, 2.0**31, 3e9]
    expect = ["yes", "yes", "yes", "no", "yes", "no", "no", "no", "no", "no", "no", "no", "no", "no"]
    assert outcome(stump(Pred.IN, 0.0, cats=cats), x) == expect
    # "code": only trunc(v) < 0 is negative, so -0.5 is category 0 (LightGBM's int cast).
    assert outcome(stump(Pred.IN, 0.0, cats=[0], cat_negative="code"), [-0.5, -1.0]) == ["yes", "no"]
    assert outcome(stump(Pred.IN, 0.0, cats=[0], cat_negative="value"), [-0.5, -1.0]) == ["no", "no"]
    # missing(nan) sends NaN to its default, before membership.
    assert outcome(stump(Pred.IN, 0.0, Missing.NAN, "yes", cats=cats), [np.nan]) == ["yes"]
    assert outcome(stump(Pred.IN, 0.0, Missing.NAN_AS_ZERO, cats=[0]), [np.nan]) == ["yes"]


def _module_with(table, n_features=3, oblivious=False):
    m = builtin.ModuleOp.build()
    f = m.body.add_op(func.FuncOp.build("predict", [tensor(n_features, f64)], [tensor(1, f64)], arg_names=["x"]))
    e = f.body.add_op(tree.EnsembleOp.build(f.args[0], 1, f64, f64, f64, init=[0.5]))
    e.add_tree(table)
    f.body.add_op(func.ReturnOp(operands=[e.result]))
    verify(m)
    return m


def test_linear_leaves_fall_back_to_the_constant_leaf_on_nan():
    t = NodeTable(
        [0, -1, -1],
        [Pred.LE, 0, 0],
        np.array([0.0, 0, 0]),
        [1, -1, -1],
        [2, -1, -1],
        [0, 0, 0],
        [-1, -1, -1],
        np.array([0, 10.0, 20.0]),
        lin_const=[0, 1.0, 2.0],
        lin_start=[0, 0, 2],
        lin_len=[0, 2, 0],
        lin_feature=[1, 2],
        lin_coeff=[0.5, -2.0],
    )
    m = _module_with(t)
    X = np.array([[-1, 2, 3], [-1, np.nan, 3], [1, np.nan, np.nan]])
    np.testing.assert_array_equal(run(m, X)[:, 0], [0.5 + (1.0 + 0.5 * 2 + -2.0 * 3), 0.5 + 10.0, 0.5 + 2.0])


def test_oblivious_leaf_index_uses_level_d_as_bit_d():
    t = ObliviousTable(
        feature=[0, 1],
        pred=[Pred.GT, Pred.GT],
        threshold=np.array([0.0, 0.0]),
        missing=[Missing.NAN, Missing.NONE],
        default_true=[True, False],
        leaf=np.array([1.0, 2.0, 3.0, 4.0]),
    )
    m = _module_with(t, n_features=2)
    X = np.array([[-1, -1], [1, -1], [-1, 1], [1, 1], [np.nan, -1], [-1, np.nan]])
    np.testing.assert_array_equal(run(m, X)[:, 0] - 0.5, [1.0, 2.0, 3.0, 4.0, 2.0, 1.0])


def test_accumulation_is_in_tree_order_in_the_result_type():
    m = builtin.ModuleOp.build()
    f = m.body.add_op(func.FuncOp.build("predict", [tensor(1, f32)], [tensor(1, f32)], arg_names=["x"]))
    e = f.body.add_op(tree.EnsembleOp.build(f.args[0], 1, f32, f32, f32, init=[1e8]))
    for v in (1.0, 1.0, 1.0, 1.0):  # each +1 is lost to f32 rounding at 1e8
        e.add_tree(NodeTable.single_leaf(v))
    f.body.add_op(func.ReturnOp(operands=[e.result]))
    assert run(m, np.zeros((1, 1)))[0, 0] == np.float32(1e8)


def test_softmax_and_argmax():
    m = builtin.ModuleOp.build()
    f = m.body.add_op(func.FuncOp.build("predict", [tensor(3, f32)], [tensor(3, f32)], arg_names=["x"]))
    s = f.body.add_op(math.SoftmaxOp.build(f.args[0], acc=f64))
    f.body.add_op(func.ReturnOp(operands=[s.result]))
    X = np.array([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0], [1000.0, 0.0, -1000.0]], np.float32)
    p = run(m, X)
    assert p.dtype == np.float32
    np.testing.assert_allclose(p[0], np.exp([1, 2, 3]) / np.exp([1, 2, 3]).sum(), rtol=1e-6)
    np.testing.assert_array_equal(p[2], [1.0, 0.0, 0.0])


@pytest.mark.parametrize("values,index", [([1.0, 3.0, 3.0], 1), ([np.nan, 1.0, 2.0], 0), ([0.0, np.nan, 2.0], 2)])
def test_argmax_first_strictly_greater(values, index):
    m = builtin.ModuleOp.build()
    f = m.body.add_op(func.FuncOp.build("predict", [tensor(3, f32)], [tensor(1, f32)], arg_names=["x"]))
    i = f.body.add_op(math.ArgmaxOp.build(f.args[0]))
    from ir.dialects import arith

    c = f.body.add_op(arith.SIToFPOp.build(i.result, tensor(1, f32)))
    f.body.add_op(func.ReturnOp(operands=[c.result]))
    assert run(m, np.array([values]))[0, 0] == index
