"""IR types: scalar floats and integers, `index`, and statically shaped tensors.

A tensor type describes one row of data; back-ends add the batch dimension.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


class Type:
    """Base of all IR types.  Types are immutable values compared by equality."""

    def __str__(self) -> str:  # pragma: no cover - every subclass overrides
        raise NotImplementedError


@dataclass(frozen=True)
class FloatType(Type):
    """`f16`, `f32` or `f64`."""

    width: int

    def __str__(self) -> str:
        return f"f{self.width}"

    @property
    def numpy(self) -> np.dtype:
        return np.dtype({16: np.float16, 32: np.float32, 64: np.float64}[self.width])


@dataclass(frozen=True)
class IntegerType(Type):
    """Signless `iN` integers (`i1` is the boolean type)."""

    width: int

    def __str__(self) -> str:
        return f"i{self.width}"

    @property
    def numpy(self) -> np.dtype:
        if self.width == 1:
            return np.dtype(np.bool_)
        return np.dtype(f"int{self.width}")


@dataclass(frozen=True)
class IndexType(Type):
    """Target-sized integer used for counts and positions."""

    def __str__(self) -> str:
        return "index"

    @property
    def numpy(self) -> np.dtype:
        return np.dtype(np.int64)


@dataclass(frozen=True)
class NoneType(Type):
    """The type of nothing (used by ops that exist only for their regions)."""

    def __str__(self) -> str:
        return "none"


@dataclass(frozen=True)
class TensorType(Type):
    """`tensor<4x3xf32>`: a static shape and a scalar element type."""

    shape: tuple[int, ...]
    element: Type

    def __str__(self) -> str:
        dims = "".join(f"{d}x" for d in self.shape)
        return f"tensor<{dims}{self.element}>"

    @property
    def size(self) -> int:
        n = 1
        for d in self.shape:
            n *= d
        return n


@dataclass(frozen=True)
class FunctionType(Type):
    """`(tensor<4xf32>) -> tensor<1xf32>`."""

    inputs: tuple[Type, ...]
    results: tuple[Type, ...]

    def __str__(self) -> str:
        ins = ", ".join(str(t) for t in self.inputs)
        if len(self.results) == 1 and not isinstance(self.results[0], FunctionType):
            return f"({ins}) -> {self.results[0]}"
        outs = ", ".join(str(t) for t in self.results)
        return f"({ins}) -> ({outs})"


f16 = FloatType(16)
f32 = FloatType(32)
f64 = FloatType(64)
i1 = IntegerType(1)
i8 = IntegerType(8)
i16 = IntegerType(16)
i32 = IntegerType(32)
i64 = IntegerType(64)
index = IndexType()
none = NoneType()


def tensor(*dims_and_element) -> TensorType:
    """`tensor(4, f32)` is `tensor<4xf32>`."""
    *dims, element = dims_and_element
    return TensorType(tuple(int(d) for d in dims), element)


def element_type(t: Type) -> Type:
    """The scalar type of a tensor, or the type itself for a scalar."""
    return t.element if isinstance(t, TensorType) else t


def float_type_of(dtype) -> FloatType:
    """The IR float type of a numpy float dtype."""
    dt = np.dtype(dtype)
    if dt == np.float32:
        return f32
    if dt == np.float64:
        return f64
    if dt == np.float16:
        return f16
    raise ValueError(f"no IR float type for numpy dtype {dt}")
