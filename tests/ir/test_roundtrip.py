"""print → parse → print is the identity, in the custom and the generic form, and parsing
keeps every bit of every table."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ir.interpreter import run
from ir.parser import parse_module
from ir.printer import print_op
from ir.verifier import verify
from tests.irgen import VARIANTS, adversarial_rows, random_module


@pytest.mark.parametrize("variant", sorted(VARIANTS))
@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 10_000))
def test_print_parse_print_is_identity(variant, seed):
    m = random_module(seed, **VARIANTS[variant])
    text = print_op(m)
    m2 = parse_module(text, "roundtrip.tir")
    verify(m2)
    assert print_op(m2) == text
    generic = print_op(m, generic=True)
    m3 = parse_module(generic, "generic.tir")
    verify(m3)
    assert print_op(m3, generic=True) == generic
    assert print_op(m3) == text


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_parsed_module_predicts_identically(variant):
    m = random_module(7, **VARIANTS[variant])
    m2 = parse_module(print_op(m))
    X = adversarial_rows(m)
    for fn in ("margin", "predict"):
        assert run(m, X, fn).tobytes() == run(m2, X, fn).tobytes()


def test_thresholds_keep_every_bit():
    rng = np.random.default_rng(3)
    m = random_module(3, depth=3)
    ens = m.lookup("margin").body.ops[0]
    t = ens.trees[0].table
    split = t.pred != 0
    bits = rng.integers(0, 2**32, size=int(split.sum()), dtype=np.uint64).astype(np.uint32).view(np.float32)
    bits[np.isnan(bits)] = np.float32(1.5)
    t.threshold[split] = bits
    text = print_op(m)
    t2 = parse_module(text).lookup("margin").body.ops[0].trees[0].table
    assert t2.threshold.tobytes() == t.threshold.tobytes()


def test_dense_constants_with_special_values_round_trip():
    text = """module {
  func.func @predict(%x: tensor<2xf32>) -> tensor<3xf64> {
    %c = arith.constant dense<[0x7FF8000000000001, -0.0, 0xFFF0000000000000]> : tensor<3xf64>
    func.return %c : tensor<3xf64>
  }
}
"""
    m = parse_module(text)
    verify(m)
    assert print_op(m) == text
    c = m.lookup("predict").body.ops[0].value
    assert c.view(np.uint64)[0] == 0x7FF8000000000001
    assert np.signbit(c[1])


def test_attribute_kinds_round_trip():
    text = """module attributes {a = [1 : i64, "s", true, @sym], b = {c = 2.5 : f32}, d = array<i32: 1, 2, 3>, e = tensor<2x3xf64>, f, g = 0x7FC00000 : f32} {
}
"""
    m = parse_module(text)
    assert print_op(m) == text.replace("0x7FC00000 : f32", "0x7FC00000 : f32")
