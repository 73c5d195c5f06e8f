"""Every verifier diagnostic, each proven by a piece of invalid IR.

The parser accepts these texts (they are well formed); the verifier rejects them with a
message naming the op, at the op's location."""

import numpy as np
import pytest

from ir.diagnostics import VerifyError
from ir.dialects import tree
from ir.dialects.tree import Missing, NodeTable, ObliviousTable, Pred
from ir.parser import parse_module
from ir.verifier import verify
from tests.irgen import random_module


def fn(body: str, inputs="tensor<2xf32>", result="tensor<1xf32>") -> str:
    lines = "\n".join("    " + b for b in body.strip("\n").splitlines())
    return f"module {{\n  func.func @f(%x: {inputs}) -> {result} {{\n{lines}\n  }}\n}}\n"


ENS = "%m = tree.ensemble %x {compare = f32, init = dense<[0.0]> : tensor<1xf32>, leaves = f32} : tensor<2xf32> -> tensor<1xf32> {"


def ens(tree_lines: str, attrs: str = "compare = f32, init = dense<[0.0]> : tensor<1xf32>, leaves = f32", result="tensor<1xf32>") -> str:
    return fn(
        f"%m = tree.ensemble %x {{{attrs}}} : tensor<2xf32> -> {result} {{\n{tree_lines.strip(chr(10))}\n}}\nfunc.return %m : {result}",
        result=result,
    )


CASES = {
    "operand count": (
        fn('%a = "arith.addf"(%x) : (tensor<2xf32>) -> tensor<2xf32>\nfunc.return %a : tensor<2xf32>', result="tensor<2xf32>"),
        "'arith.addf' op expects 2 operands, found 1",
    ),
    "operand type": (
        fn("%a = arith.addf %x, %x : tensor<2xi32>\nfunc.return %a : tensor<2xi32>", inputs="tensor<2xi32>", result="tensor<2xi32>"),
        "'arith.addf' op operand #0 ('lhs') must be tensor of f32 or f64, found tensor<2xi32>",
    ),
    "result count": (
        fn(
            '%a, %b = "math.exp"(%x) : (tensor<2xf32>) -> (tensor<2xf32>, tensor<2xf32>)\nfunc.return %a : tensor<2xf32>',
            result="tensor<2xf32>",
        ),
        "'math.exp' op expects 1 results, found 2",
    ),
    "result type": (
        fn('%a = "math.exp"(%x) : (tensor<2xf32>) -> tensor<2xi1>\nfunc.return %x : tensor<2xf32>', result="tensor<2xf32>"),
        "'math.exp' op result #0 ('out') must be tensor of f32 or f64, found tensor<2xi1>",
    ),
    "same type": (
        fn('%a = "math.exp"(%x) : (tensor<2xf32>) -> tensor<2xf64>\nfunc.return %x : tensor<2xf32>', result="tensor<2xf32>"),
        "'math.exp' op requires the same type for all operands and results, found tensor<2xf32>, tensor<2xf64>",
    ),
    "required attribute": (
        fn(
            '%a = "arith.cmpf"(%x, %x) : (tensor<2xf32>, tensor<2xf32>) -> tensor<2xi1>\nfunc.return %x : tensor<2xf32>',
            result="tensor<2xf32>",
        ),
        "'arith.cmpf' op requires attribute 'predicate'",
    ),
    "attribute kind": (
        fn(
            '%a = "arith.cmpf"(%x, %x) {predicate = 3 : i64} : (tensor<2xf32>, tensor<2xf32>) -> tensor<2xi1>\nfunc.return %x : tensor<2xf32>',
            result="tensor<2xf32>",
        ),
        "'arith.cmpf' op attribute 'predicate' must be a StringAttr, found IntegerAttr 3 : i64",
    ),
    "unknown attribute": (
        fn("%a = math.exp %x {bogus = 1 : i64} : tensor<2xf32>\nfunc.return %a : tensor<2xf32>", result="tensor<2xf32>"),
        "'math.exp' op has unknown attribute 'bogus' (known: impl; dialect attributes are written 'dialect.name')",
    ),
    "region count": (
        fn('%a = "math.exp"(%x) ({\n}) : (tensor<2xf32>) -> tensor<2xf32>\nfunc.return %a : tensor<2xf32>', result="tensor<2xf32>"),
        "'math.exp' op expects 0 regions, found 1",
    ),
    "terminator last": (
        fn("func.return %x : tensor<2xf32>\n%a = math.exp %x : tensor<2xf32>", result="tensor<2xf32>"),
        "'func.return' op must be the last operation in its block",
    ),
    "has parent": ('module {\n  "func.return"() : () -> ()\n}\n', "'func.return' op expects parent op 'func.func', found builtin.module"),
    "return types": (
        fn("func.return %x : tensor<2xf32>"),
        "'func.func' op returns (tensor<2xf32>) but the function type says (tensor<2xf32>) -> tensor<1xf32>",
    ),
    "missing return": (
        fn("%a = math.exp %x : tensor<2xf32>", result="tensor<2xf32>"),
        "'func.func' op block must end with a terminator, found 'math.exp'",
    ),
    "call unknown": (
        fn("%a = func.call @nope(%x) : (tensor<2xf32>) -> tensor<2xf32>\nfunc.return %a : tensor<2xf32>", result="tensor<2xf32>"),
        "'func.call' op calls @nope, which is not a function of the module",
    ),
    "call type": (
        fn("%a = func.call @f(%x) : (tensor<2xf32>) -> tensor<2xf32>\nfunc.return %a : tensor<2xf32>"),
        "'func.call' op has type (tensor<2xf32>) -> tensor<2xf32> but @f has type (tensor<2xf32>) -> tensor<1xf32>",
    ),
    "constant type": (
        fn('%c = "arith.constant"() {value = dense<[1.0]> : tensor<1xf64>} : () -> tensor<1xf32>\nfunc.return %c : tensor<1xf32>'),
        "'arith.constant' op value type tensor<1xf64> does not match result type tensor<1xf32>",
    ),
    "cmpf predicate": (
        fn("%c = arith.cmpf bogus, %x, %x : tensor<2xf32>\nfunc.return %x : tensor<2xf32>", result="tensor<2xf32>"),
        "'arith.cmpf' op unknown predicate 'bogus'; expected one of oeq, ogt, oge, olt, ole, one, ord, ueq, ugt, uge, ult, ule, une, uno",
    ),
    "widen": (
        fn("%c = arith.extf %x : tensor<2xf32> to tensor<2xf32>\nfunc.return %c : tensor<2xf32>", result="tensor<2xf32>"),
        "'arith.extf' op must widen a float type, found f32 to f32",
    ),
    "cast shape": (
        fn("%c = arith.extf %x : tensor<2xf32> to tensor<3xf64>\nfunc.return %x : tensor<2xf32>", result="tensor<2xf32>"),
        "'arith.extf' op shape changes from tensor<2xf32> to tensor<3xf64>",
    ),
    "softmax acc": (
        fn("%c = math.softmax %x {acc = i32} : tensor<2xf32>\nfunc.return %c : tensor<2xf32>", result="tensor<2xf32>"),
        "'math.softmax' op acc must be f32 or f64, found i32",
    ),
    "argmax result": (
        fn("%c = math.argmax %x : tensor<2xf32> -> tensor<2xi64>\nfunc.return %x : tensor<2xf32>", result="tensor<2xf32>"),
        "'math.argmax' op result must be tensor<1xi64>, found tensor<2xi64>",
    ),
    "affine shape": (
        fn(
            '%y = linear.affine %x {bias = dense<[0.0]> : tensor<1xf32>, missing = "skip", weights = dense<[[1.0, 2.0, 3.0]]> : tensor<1x3xf32>} : tensor<2xf32> -> tensor<1xf32>\nfunc.return %y : tensor<1xf32>'
        ),
        "'linear.affine' op weights shape (1, 3) must be (outputs, inputs) = (1, 2)",
    ),
    "affine missing": (
        fn(
            '%y = linear.affine %x {bias = dense<[0.0]> : tensor<1xf32>, missing = "zero", weights = dense<[[1.0, 2.0]]> : tensor<1x2xf32>} : tensor<2xf32> -> tensor<1xf32>\nfunc.return %y : tensor<1xf32>'
        ),
        "'linear.affine' op missing must be one of skip, propagate, found 'zero'",
    ),
    "ensemble compare": (
        ens("", attrs="compare = f16, init = dense<[0.0]> : tensor<1xf32>, leaves = f32"),
        "'tree.ensemble' op compare must be f32 or f64, found f16",
    ),
    "ensemble init": (
        ens("", attrs="compare = f32, init = dense<[0.0]> : tensor<1xf64>, leaves = f32"),
        "'tree.ensemble' op init has type tensor<1xf64>, expected the result type tensor<1xf32>",
    ),
    "cat_negative": (
        ens("", attrs='cat_negative = "maybe", compare = f32, init = dense<[0.0]> : tensor<1xf32>, leaves = f32'),
        '\'tree.ensemble\' op cat_negative must be "value" or "code", found "maybe"',
    ),
    "feature range": (
        ens("tree.tree out 0 {\n  0: x[5] lt 1.0 ? 1 : 2\n  1: leaf 1.0\n  2: leaf 2.0\n}"),
        "'tree.tree' op tree 0: node 0: feature index 5 out of range for input with 2 features",
    ),
    "child range": (
        ens("tree.tree out 0 {\n  0: x[1] lt 1.0 ? 1 : 7\n  1: leaf 1.0\n  2: leaf 2.0\n}"),
        "'tree.tree' op tree 0: node 0: child index out of range (yes 1, no 7, 3 nodes)",
    ),
    "unreachable": (
        ens("tree.tree out 0 {\n  0: x[1] lt 1.0 ? 1 : 1\n  1: leaf 1.0\n  2: leaf 2.0\n}"),
        "'tree.tree' op tree 0: node 1 has 2 parents: nodes must form one tree rooted at node 0",
    ),
    "default not child": (
        ens("tree.tree out 0 {\n  0: x[1] lt 1.0 ? 1 : 2 missing(nan) -> 0\n  1: leaf 1.0\n  2: leaf 2.0\n}"),
        "'tree.tree' op tree 0: node 0: missing values go to node 0, which is not a child of it",
    ),
    "tree out range": (ens("tree.tree out 1 {\n  0: leaf 1.0\n}"), "'tree.tree' op tree 0 writes outputs 1..1, but the ensemble has 1"),
    "oblivious leaves": (
        ens("tree.oblivious out 0 {\n  level 0: x[0] gt 0.5\n  leaves [1.0, 2.0, 3.0]\n}"),
        "'tree.oblivious' op tree 0: 3 leaves, expected 2**1 = 2",
    ),
    "oblivious feature": (
        ens("tree.oblivious out 0 {\n  level 0: x[9] gt 0.5\n  leaves [1.0, 2.0]\n}"),
        "'tree.oblivious' op tree 0: level 0: feature index 9 out of range for input with 2 features",
    ),
    "not a tree": (
        "module {\n  func.func @f(%x: tensor<2xf32>) -> tensor<1xf32> {\n    %m = tree.ensemble %x {compare = f32, init = dense<[0.0]> : tensor<1xf32>, leaves = f32} : tensor<2xf32> -> tensor<1xf32> {\n"
        "      %y = math.exp %x : tensor<2xf32>\n    }\n    func.return %m : tensor<1xf32>\n  }\n}\n",
        "'tree.ensemble' op tree 0 is a 'math.exp' op; only 'tree.tree' and 'tree.oblivious' may appear",
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_verifier_rejects(name):
    text, message = CASES[name]
    m = parse_module(text, "bad.tir")
    with pytest.raises(VerifyError) as e:
        verify(m)
    first = e.value.render().splitlines()[0]
    assert first.startswith("bad.tir:"), first
    assert first.split(": error: ", 1)[1] == message


def _table(**over):
    cols = dict(
        feature=[0, -1, -1],
        pred=[Pred.LT, 0, 0],
        threshold=np.array([0.5, 0, 0], np.float32),
        yes=[1, -1, -1],
        no=[2, -1, -1],
        missing=[Missing.NONE, 0, 0],
        default=[-1, -1, -1],
        leaf=np.array([0, 1, 2], np.float32),
    )
    cols.update(over)
    return NodeTable(**cols)


@pytest.mark.parametrize(
    "over,message",
    [
        (dict(threshold=np.array([np.nan, 0, 0], np.float32)), "node 0: threshold is NaN"),
        (dict(default=[1, -1, -1]), "node 0: a default child is set but missing kind has none"),
        (dict(pred=[9, 0, 0]), "node 0: unknown predicate 9"),
        (dict(missing=[7, 0, 0]), "node 0: unknown missing kind"),
        (
            dict(pred=[Pred.IN, 0, 0], cat_start=[0, 0, 0], cat_len=[3, 0, 0], cat_words=np.zeros(1, np.uint32)),
            "node 0: category set [0, +3) outside the bitset pool of 1 words",
        ),
        (
            dict(threshold=np.array([0.5, 0, 0], np.float64)),
            "tree 0 stores thresholds as float64 and leaves as float32; the ensemble says compare = f32, leaves = f32",
        ),
    ],
)
def test_table_invariants(over, message):
    m = random_module(0, n_trees=1, n_features=2)
    ens_op = m.lookup("margin").body.ops[0]
    ens_op.trees[0].table = _table(**over)
    with pytest.raises(VerifyError) as e:
        verify(m)
    assert message in e.value.render()


def test_linear_leaf_invariants():
    t = _table(lin_const=[0, 0, 0], lin_start=[0, 0, 0], lin_len=[0, 1, 0], lin_feature=[4], lin_coeff=[1.0])
    assert t.check(2) == "linear leaf feature index 4 out of range for input with 2 features"
    t = _table(lin_const=[0, 0, 0], lin_start=[0, 0, 0], lin_len=[0, 2, 0], lin_feature=[1], lin_coeff=[1.0])
    assert t.check(2) == "a linear leaf's terms lie outside the term arrays"


def test_dominance_violation_is_reported():
    text = fn("%a = math.exp %x : tensor<2xf32>\n%b = math.exp %a : tensor<2xf32>\nfunc.return %b : tensor<2xf32>", result="tensor<2xf32>")
    m = parse_module(text, "dom.tir")
    verify(m)
    ops = m.lookup("f").body.ops
    ops[0], ops[1] = ops[1], ops[0]  # %b = exp %a now comes before %a is defined
    with pytest.raises(VerifyError) as e:
        verify(m)
    assert (
        e.value.render().splitlines()[0]
        == "dom.tir:4:5: error: 'math.exp' op operand #0 does not dominate this use (defined later, in another function, or erased)"
    )


def test_verifier_accepts_random_modules():
    for seed in range(20):
        m = random_module(seed, oblivious=seed % 2 == 0, n_outputs=1 + seed % 3, vector_leaves=seed % 3 == 0)
        verify(m)  # raises on any violation
        ensembles = [op for op in m.walk() if isinstance(op, tree.EnsembleOp)]
        assert ensembles and all(e.results[0].type.shape == (e.n_outputs,) for e in ensembles)


def test_detached_cycle_is_unreachable():
    n = 7
    t = NodeTable(
        [0, -1, -1, 1, 1, -1, -1],
        [Pred.LT, 0, 0, Pred.LT, Pred.LT, 0, 0],
        np.zeros(n, np.float32),
        [1, -1, -1, 4, 3, -1, -1],
        [2, -1, -1, 5, 6, -1, -1],
        [0] * n,
        [-1] * n,
        np.zeros(n, np.float32),
    )
    assert t.check(2) == "node 3 is unreachable: nodes must form one tree rooted at node 0"


def test_the_bad_category_set_is_the_one_named():
    """Two categorical splits, only the second reads past the pool: the error names node 1's parent
    split (node 2 here), not the first categorical node."""
    t = NodeTable(
        [0, -1, 1, -1, -1],
        [Pred.IN, 0, Pred.IN, 0, 0],
        np.zeros(5, np.float32),
        [1, -1, 3, -1, -1],
        [2, -1, 4, -1, -1],
        [0] * 5,
        [-1] * 5,
        np.zeros(5, np.float32),
        cat_start=[0, 0, 1, 0, 0],
        cat_len=[1, 0, 5, 0, 0],
        cat_words=np.ones(2, np.uint32),
    )
    assert t.check(2) == "node 2: category set [1, +5) outside the bitset pool of 2 words"


def test_oblivious_tables_have_the_node_tables_split_invariants():
    """Category sets outside the pool (the generated code would read out of bounds) and NaN
    thresholds are refused for oblivious trees too, naming the level."""

    def table(**over):
        cols = dict(
            feature=[0, 1],
            pred=[Pred.LT, Pred.IN],
            threshold=np.array([0.5, 0], np.float32),
            missing=[Missing.NONE, Missing.NONE],
            default_true=[False, False],
            leaf=np.zeros(4, np.float32),
            cat_start=[0, 0],
            cat_len=[0, 1],
            cat_words=np.ones(1, np.uint32),
        )
        cols.update(over)
        return ObliviousTable(**cols)

    assert table().check(2) is None
    assert table(cat_len=[0, 2]).check(2) == "level 1: category set [0, +2) outside the bitset pool of 1 words"
    assert table(cat_start=[0, -1]).check(2) == "level 1: category set [-1, +1) outside the bitset pool of 1 words"
    assert table(threshold=np.array([np.nan, 0], np.float32)).check(2) == "level 0: threshold is NaN"
