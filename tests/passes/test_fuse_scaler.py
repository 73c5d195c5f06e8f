"""tree-fuse-scaler: an elementwise scaler moves into the thresholds exactly, or not at all."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ir.dialects import arith, builtin, func, tree
from ir.dialects.tree import EnsembleOp, Missing, Pred
from ir.interpreter import run
from ir.parser import parse_module
from ir.printer import print_op
from ir.types import f32, f64, tensor
from ir.verifier import verify
from passes import run_pipeline
from tests import irgen, rows

pytestmark = pytest.mark.filterwarnings("ignore:overflow encountered in cast:RuntimeWarning")

ORDER = (Pred.LT, Pred.LE, Pred.GT, Pred.GE)
KINDS = ("add", "sub", "rsub", "mul", "div", "neg")


def build(
    seed,
    *,
    xt=f32,
    st_=None,
    ct=f32,
    kinds=("sub", "div"),
    preds=ORDER,
    missing=(Missing.NONE, Missing.NAN, Missing.NAN_AS_ZERO),
    oblivious=False,
    linear=False,
    categorical=False,
):
    """@margin: x → cast? → chain of elementwise constant ops → ensemble."""
    rng = np.random.default_rng(seed)
    st_ = st_ or xt
    n = 4
    m = builtin.ModuleOp.build()
    fn = func.FuncOp.build("margin", [tensor(n, xt)], [tensor(1, f64)], arg_names=["x"])
    m.body.add_op(fn)
    v = fn.args[0]
    if st_ != xt:
        cast = arith.ExtFOp if st_.width > xt.width else arith.TruncFOp
        v = fn.body.add_op(cast.build(v, tensor(n, st_))).result
    for k in kinds:
        if k == "neg":
            v = fn.body.add_op(arith.NegFOp.build(v)).result
            continue
        c = rng.normal(size=n) * 3
        if k in ("mul", "div"):
            c = np.where(np.abs(c) < 0.1, 0.5, c)
        c = fn.body.add_op(arith.ConstantOp.build(c, tensor(n, st_))).result
        cls = {"add": arith.AddFOp, "sub": arith.SubFOp, "rsub": arith.SubFOp, "mul": arith.MulFOp, "div": arith.DivFOp}[k]
        v = fn.body.add_op(cls.build(c, v) if k == "rsub" else cls.build(v, c)).result
    ens = fn.body.add_op(tree.EnsembleOp.build(v, 1, f64, ct, f64, init=[0.5]))
    for i in range(5):
        if oblivious and i % 2:
            ob = irgen.random_oblivious(rng, n, 3, ct.numpy, np.float64)
            if Pred.EQ not in preds:
                ob.pred[:] = Pred.GT  # random_oblivious mixes in eq levels
            ens.add_tree(ob)
        else:
            table = irgen.random_table(
                rng, n, 4, ct.numpy, np.float64, categorical=categorical, linear=linear, preds=preds, missing_kinds=missing
            )
            ens.add_tree(table)
    fn.body.add_op(func.ReturnOp(operands=[ens.result]))
    verify(m)
    return m


def _check(m, expect_fused: bool | None = None):
    """Fuse; compare on rows around the thresholds of both the original and the fused module."""
    original = parse_module(print_op(m), "orig.tir")
    (e,) = run_pipeline(m, "tree-fuse-scaler")
    fused = e.stats.get("ensembles-fused", 0) > 0
    if expect_fused is not None:
        assert fused == expect_fused
    rng = np.random.default_rng(0)
    n = m.lookup("margin").function_type.inputs[0].shape[0]
    X = np.vstack([rows.adversarial_rows(m, n_mixed=64), rows.adversarial_rows(original, n_mixed=64), rng.normal(size=(200, n)) * 10])
    np.testing.assert_array_equal(run(original, X, "margin"), run(m, X, "margin"))
    again = run_pipeline(m, "tree-fuse-scaler")
    assert not again[0].changed
    return fused


CONFIGS = {
    "f32": dict(),
    "f32-input-f64-compare": dict(ct=f64),
    "mul-add": dict(kinds=("mul", "add")),
    "negative-steps": dict(kinds=("rsub", "neg", "div")),
    "extf-then-f64": dict(xt=f32, st_=f64, ct=f64),
    "f64": dict(xt=f64, ct=f64),
    "truncf-then-f32": dict(xt=f64, st_=f32, ct=f32),
    "oblivious": dict(oblivious=True, kinds=("sub", "mul")),
}


@pytest.mark.parametrize("config", sorted(CONFIGS))
@settings(max_examples=6, deadline=None)
@given(seed=st.integers(0, 100_000))
def test_fusion_is_exact(config, seed):
    assert _check(build(seed, **CONFIGS[config]), expect_fused=True)
    # With eq/ne splits fusion may be impossible (several inputs scale to one value): either way exact.
    _check(build(seed, preds=ORDER + (Pred.EQ, Pred.NE), **CONFIGS[config]))


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 100_000), kinds=st.lists(st.sampled_from(KINDS), min_size=1, max_size=4))
def test_any_chain(seed, kinds):
    assert _check(build(seed, kinds=tuple(kinds)), expect_fused=True)


def test_scaler_ops_disappear_unless_used_elsewhere():
    m = build(1)
    fn = m.lookup("margin")
    run_pipeline(m, "tree-fuse-scaler")
    assert [op.name for op in fn.body.ops] == ["tree.ensemble", "func.return"]
    assert next(op for op in m.walk() if isinstance(op, EnsembleOp)).operands[0] is fn.args[0]


@pytest.mark.parametrize(
    "why, kwargs",
    [
        ("zero-as-missing band", dict(missing=(Missing.ZERO,))),
        ("f64 input, f32 compare", dict(xt=f64, ct=f32)),
    ],
)
def test_not_fused(why, kwargs):
    _check(build(3, **kwargs), expect_fused=False)


def test_not_fused_through_unsafe_constants():
    for text in (
        "%c = arith.constant dense<[0.0, 1.0]> : tensor<2xf32>\n    %s = arith.mulf %x, %c : tensor<2xf32>",  # x * 0
        "%c = arith.constant dense<[2.0, 1.0]> : tensor<2xf32>\n    %s = arith.divf %c, %x : tensor<2xf32>",  # c / x
        "%c = arith.constant dense<[0x7F800000, 1.0]> : tensor<2xf32>\n    %s = arith.addf %x, %c : tensor<2xf32>",  # x + inf
    ):
        m = parse_module(
            f"""module {{
  func.func @margin(%x: tensor<2xf32>) -> tensor<1xf32> {{
    {text}
    %m = tree.ensemble %s {{compare = f32, init = dense<[0.0]> : tensor<1xf32>, leaves = f32}} : tensor<2xf32> -> tensor<1xf32> {{
      tree.tree out 0 {{
        0: x[0] lt 1.0 ? 1 : 2
        1: leaf 1.0
        2: leaf 2.0
      }}
    }}
    func.return %m : tensor<1xf32>
  }}
}}"""
        )
        (e,) = run_pipeline(m, "tree-fuse-scaler")
        assert not e.changed


@pytest.mark.parametrize("kind", ["categorical", "linear"])
def test_categorical_and_linear_trees_block_fusion(kind):
    """Categorical sets test trunc(scaled x); linear leaves read the scaled row itself."""
    for seed in range(5):
        m = build(seed, **{kind: True})
        ens = next(op for op in m.walk() if isinstance(op, EnsembleOp))
        present = any(np.any(op.table.pred == Pred.IN) for op in ens.trees) if kind == "categorical" else True
        assert _check(m) == (not present)
        assert _check(build(seed)) is True  # the same model without them fuses
