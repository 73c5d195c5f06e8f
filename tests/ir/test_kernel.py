"""The `kernel` dialect (ir/dialects/kernel.py): round trip in both textual forms, the verifier's
diagnostics, the interpreter's semantics, and the LLVM back-end against the interpreter."""

import numpy as np
import pytest

import ir.dialects.kernel  # noqa: F401  (registers the dialect)
from ir.diagnostics import VerifyError
from ir.interpreter import run
from ir.parser import parse_module
from ir.printer import print_op
from ir.verifier import verify

V = "dense<[[1.0, 2.0, 3.0], [-0.5, 0.0, 4.0]]> : tensor<2x3xf64>"
TEXT = f"""module {{
  func.func @predict(%x: tensor<3xf64>) -> tensor<2xf64> {{
    %d = kernel.distances %x {{metric = "sqeuclidean", vectors = {V}}} : tensor<3xf64> -> tensor<2xf64>
    %m = kernel.distances %x {{metric = "manhattan", vectors = {V}}} : tensor<3xf64> -> tensor<2xf64>
    %s = kernel.sqrt %d : tensor<2xf64>
    %i = kernel.topk %m {{k = 1 : i64}} : tensor<2xf64> -> tensor<1xi64>
    %r = arith.addf %s, %m : tensor<2xf64>
    func.return %r : tensor<2xf64>
  }}
}}
"""


def test_print_parse_print_is_identity_in_both_forms():
    m = parse_module(TEXT)
    verify(m)
    text = print_op(m)
    assert text == TEXT
    generic = print_op(m, generic=True)
    assert '"kernel.distances"' in generic and '"kernel.topk"' in generic
    assert print_op(parse_module(generic)) == TEXT


def test_semantics():
    m = parse_module(TEXT)
    X = np.array([[1.0, 2.0, 3.0], [0.0, -0.0, 1e300], [np.nan, 0.0, 0.0]])
    got = run(m, X)
    v = np.array([[1.0, 2.0, 3.0], [-0.5, 0.0, 4.0]])
    d = np.array([[((r - w) ** 2).sum() for w in v] for r in X])  # three terms: left to right == numpy here
    man = np.array([[np.abs(r - w).sum() for w in v] for r in X])
    with np.errstate(over="ignore"):
        np.testing.assert_array_equal(got, np.sqrt(d) + man)


def test_topk_is_a_stable_sort_with_nan_last():
    text = """module {
  func.func @predict(%x: tensor<5xf64>) -> tensor<3xf64> {
    %i = kernel.topk %x {k = 3 : i64} : tensor<5xf64> -> tensor<3xi64>
    %f = arith.sitofp %i : tensor<3xi64> to tensor<3xf64>
    func.return %f : tensor<3xf64>
  }
}
"""
    m = parse_module(text)
    verify(m)
    assert print_op(m) == text
    rows = np.array([[3.0, 1.0, 1.0, np.nan, 0.5], [np.nan, np.nan, 2.0, 2.0, np.inf]])
    np.testing.assert_array_equal(run(m, rows), [[4, 1, 2], [2, 3, 4]])


@pytest.mark.parametrize(
    "body,message",
    [
        (
            f'%d = kernel.distances %x {{metric = "cosine", vectors = {V}}} : tensor<3xf64> -> tensor<2xf64>',
            "'kernel.distances' op metric must be one of sqeuclidean, manhattan, found 'cosine'",
        ),
        (
            f'%d = kernel.distances %x {{metric = "manhattan", vectors = {V}}} : tensor<3xf64> -> tensor<3xf64>',
            "'kernel.distances' op vectors shape (2, 3) must be (outputs, inputs) = (3, 3)",
        ),
        (
            "%i = kernel.topk %x {k = 4 : i64} : tensor<3xf64> -> tensor<4xi64>",
            "'kernel.topk' op k = 4 must be between 1 and the input's 3 values",
        ),
        (
            "%i = kernel.topk %x {k = 2 : i64} : tensor<3xf64> -> tensor<3xi64>",
            "'kernel.topk' op result must be tensor<2xi64>, found tensor<3xi64>",
        ),
    ],
)
def test_verifier_rejects(body, message):
    text = f"module {{\n  func.func @predict(%x: tensor<3xf64>) -> tensor<3xf64> {{\n    {body}\n    func.return %x : tensor<3xf64>\n  }}\n}}\n"
    with pytest.raises(VerifyError, match=message.replace("(", r"\(").replace(")", r"\)")):
        verify(parse_module(text))


def test_llvm_equals_the_interpreter():
    import timber

    m = parse_module(TEXT.replace("    %i = kernel.topk %m {k = 1 : i64} : tensor<2xf64> -> tensor<1xi64>\n", ""))
    rng = np.random.default_rng(0)
    X = np.vstack([rng.standard_normal((150, 3)) * 10, [[np.nan, 0, 0], [np.inf, 0, 0], [-0.0, -0.0, -0.0], [1e200, -1e200, 0]]])
    want = run(m, X)
    model = timber.compile(m)
    np.testing.assert_array_equal(model.predict(X), want)
    np.testing.assert_array_equal(model.predict(X[3]).reshape(-1), want[3])
