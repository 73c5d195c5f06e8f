"""Bad IR text gets `file:line:col: error: ...`, the source line and a caret, like MLIR."""

import pytest

from ir.diagnostics import ParseError
from ir.parser import parse_module

CASES = [
    (
        "module {\n  func.func @f(%x: tensor<2xf32>) -> tensor<2xf32> {\n    func.return %y : tensor<2xf32>\n  }\n}\n",
        3,
        17,
        "use of undeclared SSA value name '%y'",
    ),
    (
        "module {\n  func.func @f(%x: tensor<2xf32>) -> tensor<2xf32> {\n    %a = arith.addf %x, %x : tensor<2xf64>\n    func.return %a : tensor<2xf32>\n  }\n}\n",
        3,
        21,
        "use of value '%x' expects different type than prior uses: 'tensor<2xf64>' vs 'tensor<2xf32>'",
    ),
    ("module {\n  foo.bar\n}\n", 2, 3, "unregistered operation 'foo.bar'"),
    (
        "module {\n  func.func @f(%x: tensor<2xf32>) -> tensor<2xf32> {\n    %x = arith.addf %x, %x : tensor<2xf32>\n  }\n}\n",
        3,
        5,
        "redefinition of SSA value '%x'",
    ),
    ("module {\n  func.func @f(%x: tensor<2xf32> -> tensor<2xf32> {\n  }\n}\n", 2, 34, "expected ',' or ')', found '-'"),
    ("module {\n  func.func @f(%x: tensor<2xq32>) {\n  }\n}\n", 2, 29, "expected a type, found 'q32'"),
    (
        "module {\n  func.func @f(%x: tensor<2xf32>) -> tensor<2xf32> {\n    %c = arith.constant dense<[1.0, 2.0, 3.0]> : tensor<2xf32>\n",
        3,
        31,
        "dense literal has 3 elements but type tensor<2xf32> holds 2",
    ),
    (
        "module {\n  func.func @f(%x: tensor<2xf32>) -> tensor<1xf32> {\n    %m = tree.ensemble %x {compare = f32, init = dense<[0.0]> : tensor<1xf32>, leaves = f32} : tensor<2xf32> -> tensor<1xf32> {\n"
        "      tree.tree out 0 {\n        0: x[0] lt 1.5 ? 1 2\n        1: leaf 0.5\n      }\n    }\n  }\n}\n",
        5,
        9,
        "expected a node: 'N: leaf V' or 'N: x[F] PRED T ? YES : NO [missing(...)]'",
    ),
    (
        "module {\n  func.func @f(%x: tensor<2xf32>) -> tensor<1xf32> {\n    %m = tree.ensemble %x {compare = f32, init = dense<[0.0]> : tensor<1xf32>, leaves = f32} : tensor<2xf32> -> tensor<1xf32> {\n"
        "      tree.tree out 0 {\n        0: leaf 0.5\n        2: leaf 0.5\n      }\n    }\n  }\n}\n",
        6,
        9,
        "node 2 out of order; expected node 1",
    ),
    (
        "module {\n  func.func @f(%x: tensor<2xf32>) -> tensor<1xf32> {\n    %m = tree.ensemble %x {compare = f32, init = dense<[0.0]> : tensor<1xf32>, leaves = f32} : tensor<2xf32> -> tensor<1xf32> {\n"
        "      tree.tree out 0 {\n        0: x[0] lt 1.5 ? 1 : 2 missing(nan)\n        1: leaf 0.5\n        2: leaf 1.0\n      }\n    }\n  }\n}\n",
        5,
        32,
        "missing(nan) needs '-> child'",
    ),
    ("module attributes {a = 1, a = 2} {\n}\n", 1, 27, "duplicate key 'a' in dictionary attribute"),
    ("module {\n", 2, 1, "expected '}' to close the region"),
]


@pytest.mark.parametrize("text,line,col,message", CASES, ids=[c[3][:40] for c in CASES])
def test_parse_error_is_located(text, line, col, message):
    with pytest.raises(ParseError) as e:
        parse_module(text, "bad.tir")
    rendered = e.value.render()
    first = rendered.splitlines()[0]
    assert first == f"bad.tir:{line}:{col}: error: {message}", rendered
    lines = rendered.splitlines()
    if len(lines) >= 3:
        assert lines[2] == " " * (col - 1) + "^"
