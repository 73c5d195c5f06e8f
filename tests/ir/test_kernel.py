"""The `kernel` dialect (ir/dialects/kernel.py): round trip in both textual forms, the verifier's
diagnostics, the interpreter's semantics (kernel.couple against a plain transcription of libsvm's
multiclass_probability), and every back-end (LLVM JIT in both math modes, C99, WAT) against the
interpreter bit for bit on one module holding every kernel op."""

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
        (
            f'%g = kernel.gram %x {{coef0 = 0.0 : f64, degree = 3 : i64, gamma = 1.0 : f64, kernel = "laplace", vectors = {V}}} : tensor<3xf64> -> tensor<2xf64>',
            "'kernel.gram' op kernel must be one of linear, poly, rbf, sigmoid, found 'laplace'",
        ),
        (
            f'%g = kernel.gram %x {{coef0 = 0.0 : f64, degree = 3 : i64, gamma = 1.0 : f32, kernel = "rbf", vectors = {V}}} : tensor<3xf64> -> tensor<2xf64>',
            "'kernel.gram' op gamma must be of the element type f64, found f32",
        ),
        (
            "%p = kernel.couple %x {classes = 4 : i64} : tensor<3xf64> -> tensor<4xf64>",
            "'kernel.couple' op 4 classes take tensor<6xf64> and give tensor<4xf64>, found tensor<3xf64> -> tensor<4xf64>",
        ),
    ],
)
def test_verifier_rejects(body, message):
    text = f"module {{\n  func.func @predict(%x: tensor<3xf64>) -> tensor<3xf64> {{\n    {body}\n    func.return %x : tensor<3xf64>\n  }}\n}}\n"
    with pytest.raises(VerifyError, match=message.replace("(", r"\(").replace(")", r"\)")):
        verify(parse_module(text))


def libsvm_multiclass_probability(k: int, pairs) -> list[float]:
    """libsvm's multiclass_probability transcribed loop for loop on Python floats (IEEE doubles):
    the reference kernel.couple must equal (numpy float64 scalars: a division by zero gives inf as in C)."""
    with np.errstate(all="ignore"):
        return _multiclass_probability(k, [np.float64(v) for v in pairs])


def _multiclass_probability(k: int, pairs) -> list[float]:
    r = [[np.float64(0.0)] * k for _ in range(k)]
    it = iter(pairs)
    for i in range(k):
        for j in range(i + 1, k):
            r[i][j] = next(it)
            r[j][i] = 1 - r[i][j]
    p, Q, Qp = [np.float64(1.0) / k] * k, [[np.float64(0.0)] * k for _ in range(k)], [np.float64(0.0)] * k
    for t in range(k):
        Q[t][t] = 0.0
        for j in range(t):
            Q[t][t] += r[j][t] * r[j][t]
            Q[t][j] = Q[j][t]
        for j in range(t + 1, k):
            Q[t][t] += r[j][t] * r[j][t]
            Q[t][j] = -r[j][t] * r[t][j]
    for _ in range(max(100, k)):
        pQp = np.float64(0.0)
        for t in range(k):
            Qp[t] = np.float64(0.0)
            for j in range(k):
                Qp[t] += Q[t][j] * p[j]
            pQp += p[t] * Qp[t]
        max_error = np.float64(0.0)
        for t in range(k):
            error = abs(Qp[t] - pQp)
            if error > max_error:
                max_error = error
        if max_error < 0.005 / k:
            break
        for t in range(k):
            diff = (-Qp[t] + pQp) / Q[t][t]
            p[t] += diff
            pQp = (pQp + diff * (diff * Q[t][t] + 2 * Qp[t])) / (1 + diff) / (1 + diff)
            for j in range(k):
                Qp[j] = (Qp[j] + diff * Q[t][j]) / (1 + diff)
                p[j] /= 1 + diff
    return p


def pair_rows(k: int, n: int, seed: int = 0) -> np.ndarray:
    """Pairwise probabilities as libsvm feeds them: random, the clamp's ends, ties at 0.5 and
    rows that take every round (near-contradictory pairs)."""
    rng = np.random.default_rng(seed)
    P = k * (k - 1) // 2
    R = rng.uniform(1e-7, 1 - 1e-7, (n, P))
    R[: n // 4] = rng.choice([1e-7, 1 - 1e-7, 0.5], (n // 4, P))
    R[n // 4 : n // 2] = np.round(R[n // 4 : n // 2], 1)
    return R


@pytest.mark.parametrize("k", [2, 3, 5])
def test_couple_is_libsvms_loop(k):
    P = k * (k - 1) // 2
    text = f"""module {{
  func.func @predict(%r: tensor<{P}xf64>) -> tensor<{k}xf64> {{
    %p = kernel.couple %r {{classes = {k} : i64}} : tensor<{P}xf64> -> tensor<{k}xf64>
    func.return %p : tensor<{k}xf64>
  }}
}}
"""
    m = parse_module(text)
    verify(m)
    assert print_op(m) == text
    R = pair_rows(k, 200)
    want = np.array([libsvm_multiclass_probability(k, row) for row in R])
    np.testing.assert_array_equal(run(m, R), want)


def dense(a: np.ndarray) -> str:
    return f"dense<{a.tolist()}> : tensor<{a.shape[0]}x{a.shape[1]}xf64>"


def every_op_module():
    """One module using every kernel op (each gram kernel, with bias and each activation, both
    metrics, sqrt, topk with ties, take, couple) and summing what they give into 3 outputs."""
    rng = np.random.default_rng(0)
    W = rng.standard_normal((12, 3)).round(2)
    W[3] = W[1]  # equal distances: topk keeps index order
    g = 'coef0 = 0.5 : f64, degree = 3 : i64, gamma = 0.25 : f64, kernel = "{}", vectors = ' + dense(W)
    bias = f"dense<{(np.arange(12) * 0.25 - 1.5).tolist()}> : tensor<12xf64>"
    text = f"""module {{
  func.func @predict(%x: tensor<3xf64>) -> tensor<3xf64> {{
    %d = kernel.distances %x {{metric = "sqeuclidean", vectors = {dense(W)}}} : tensor<3xf64> -> tensor<12xf64>
    %m = kernel.distances %x {{metric = "manhattan", vectors = {dense(W)}}} : tensor<3xf64> -> tensor<12xf64>
    %s = kernel.sqrt %d : tensor<12xf64>
    %i = kernel.topk %m {{k = 4 : i64}} : tensor<12xf64> -> tensor<4xi64>
    %f0 = arith.sitofp %i : tensor<4xi64> to tensor<4xf64>
    %tk = kernel.take %s, %i : tensor<12xf64>, tensor<4xi64> -> tensor<4xf64>
    %f = arith.addf %f0, %tk : tensor<4xf64>
    %g = kernel.gram %x {{{g.format("rbf")}}} : tensor<3xf64> -> tensor<12xf64>
    %h = kernel.gram %x {{{g.format("poly")}}} : tensor<3xf64> -> tensor<12xf64>
    %t = kernel.gram %x {{{g.format("sigmoid")}}} : tensor<3xf64> -> tensor<12xf64>
    %l0 = kernel.gram %x {{{g.format("linear")}}} : tensor<3xf64> -> tensor<12xf64>
    %l1 = kernel.gram %x {{activation = "relu", bias = {bias}, {g.format("linear")}}} : tensor<3xf64> -> tensor<12xf64>
    %l2 = kernel.gram %x {{activation = "tanh", bias = {bias}, {g.format("poly")}}} : tensor<3xf64> -> tensor<12xf64>
    %l3 = kernel.gram %x {{activation = "logistic", {g.format("linear")}}} : tensor<3xf64> -> tensor<12xf64>
    %l4 = arith.addf %l0, %l1 : tensor<12xf64>
    %l5 = arith.addf %l2, %l3 : tensor<12xf64>
    %l = arith.addf %l4, %l5 : tensor<12xf64>
    %a = arith.addf %s, %g : tensor<12xf64>
    %b = arith.addf %h, %t : tensor<12xf64>
    %c = arith.addf %a, %b : tensor<12xf64>
    %c2 = arith.addf %c, %l : tensor<12xf64>
    %w = arith.constant dense<[0.5, 0.2, 0.9]> : tensor<3xf64>
    %r = arith.mulf %x, %w : tensor<3xf64>
    %r2 = arith.addf %r, %w : tensor<3xf64>
    %p = kernel.couple %r2 {{classes = 3 : i64}} : tensor<3xf64> -> tensor<3xf64>
    %z = arith.extract %c2 {{index = 5 : i64}} : tensor<12xf64> to tensor<1xf64>
    %z2 = arith.extract %f {{index = 1 : i64}} : tensor<4xf64> to tensor<1xf64>
    %z3 = arith.extract %m {{index = 11 : i64}} : tensor<12xf64> to tensor<1xf64>
    %o = arith.concat %z, %z2, %z3 : tensor<1xf64>, tensor<1xf64>, tensor<1xf64> -> tensor<3xf64>
    %o2 = arith.addf %o, %p : tensor<3xf64>
    func.return %o2 : tensor<3xf64>
  }}
}}
"""
    m = parse_module(text)
    verify(m)
    X = np.vstack([rng.standard_normal((200, 3)), W[:5], [[np.nan, 0, 0], [np.inf, 0, 0], [-0.0, 0.0, 1e300], [0.3, 0.4, 0.5]]])
    return m, np.vstack([X, np.clip(X, -0.9, 0.9)])  # the clipped rows give couple probabilities in (0, 1)


def _load_backend_tests(name: str):
    import importlib.util
    from pathlib import Path

    path = Path(__file__).parents[1] / "backends" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"timber_kernel_{name}", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_llvm_equals_the_interpreter():
    import timber

    m, X = every_op_module()
    for math in ("timber", "libm"):
        want = run(m, X, math=math)
        model = timber.compile(m, math=math)
        np.testing.assert_array_equal(model.predict(X), want)
        np.testing.assert_array_equal(model.predict(X[3]).reshape(-1), want[3])


def test_c99_equals_the_interpreter(tmp_path):
    import shutil

    if not (shutil.which("gcc") or shutil.which("cc")):
        pytest.skip("no C compiler")
    c99 = _load_backend_tests("test_c99")
    m, X = every_op_module()
    np.testing.assert_array_equal(c99.CModel(m, tmp_path)(X), run(m, X))


def test_c99_sqrt_is_correctly_rounded(tmp_path):
    """The C99 back-end's own square root (no libm) on subnormals, powers of two, odd and even
    exponents, the largest double, ±0, ±inf, NaN, negatives and random bit patterns."""
    import shutil

    if not (shutil.which("gcc") or shutil.which("cc")):
        pytest.skip("no C compiler")
    c99 = _load_backend_tests("test_c99")
    text = """module {
  func.func @predict(%x: tensor<1xf64>) -> tensor<1xf64> {
    %s = kernel.sqrt %x : tensor<1xf64>
    func.return %s : tensor<1xf64>
  }
}
"""
    rng = np.random.default_rng(1)
    bits = rng.integers(0, 0x7FF0000000000000, 20000, dtype=np.int64)
    special = [0.0, -0.0, np.inf, -np.inf, np.nan, -1.0, -5e-324, 5e-324, 1e-310, 2.0, 0.5, 4.0, np.finfo(float).max]
    X = np.concatenate([bits.view(np.float64), special, np.nextafter(np.array([1.0, 4.0, 2.0]), 0)]).reshape(-1, 1)
    got = c99.CModel(parse_module(text), tmp_path)(X)
    with np.errstate(invalid="ignore"):
        want = np.sqrt(X)
    fin = ~np.isnan(want)
    np.testing.assert_array_equal(got[fin], want[fin])
    assert np.isnan(got[~fin]).all()


def test_wat_equals_the_interpreter():
    pytest.importorskip("wasmtime")
    wat = _load_backend_tests("test_wat")
    m, X = every_op_module()
    np.testing.assert_array_equal(wat.WasmModel(m)(X), run(m, X))
