"""Floats print as the shortest text that reads back to the same bits, in their own width."""

import struct

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from ir.floats import format_float, parse_float


@settings(max_examples=3000)
@given(st.integers(0, 2**32 - 1))
def test_every_f32_bit_pattern_round_trips(bits):
    v = np.array(bits, np.uint32).view(np.float32)
    text = format_float(v, 32)
    back = np.float32(parse_float(text, 32))
    assert np.array(back).view(np.uint32) == bits


@settings(max_examples=3000)
@given(st.integers(0, 2**64 - 1))
def test_every_f64_bit_pattern_round_trips(bits):
    v = struct.unpack("<d", struct.pack("<Q", bits))[0]
    text = format_float(v, 64)
    assert struct.unpack("<Q", struct.pack("<d", parse_float(text, 64)))[0] == bits


def test_shortest_decimal_in_own_width():
    assert format_float(np.float32(0.1), 32) == "0.1"
    assert format_float(0.1, 64) == "0.1"
    assert format_float(np.float32(2.0), 32) == "2.0"
    assert format_float(-0.0, 64) == "-0.0"


def test_nan_and_infinities_print_as_bit_patterns():
    assert format_float(float("nan"), 32) == "0x7FC00000"
    assert format_float(float("inf"), 64) == "0x7FF0000000000000"
    assert format_float(float("-inf"), 32) == "0xFF800000"


def test_f32_decimal_parse_is_correctly_rounded_at_midpoints():
    # 1 + 2^-24 is exactly halfway between two f32s: ties-to-even gives 1.0; a hair above must round up.
    assert parse_float("1.000000059604644775390625", 32) == 1.0
    assert parse_float("1.0000000596046447753906250000001", 32) == float(np.nextafter(np.float32(1), np.float32(2)))
