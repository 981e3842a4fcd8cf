"""Hypothesis strategies for property tests of ops, minigrad's own and yours.

    from hypothesis import given
    from minigrad import testing as mt

    @given(mt.arrays(mt.SHAPE, low=0.1, high=3.0))   # keep log's input positive
    def test_my_log(x): ...

Values are float64 by default (gradient checks need it) and can be kept a
margin away from kinks and poles with `avoid`. The op specs in `specs.py`
build their inputs from these.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from math import prod
from typing import Any

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from minigrad.engine import Tensor

MARGIN = 1e-2  # distance kept from `avoid` points: far beyond a gradcheck step of 1e-6
MAX_SIDE = 3  # small sides keep full-Jacobian checks fast even in 4-D


def shapes(min_dims: int = 0, max_dims: int = 4, max_side: int = MAX_SIDE) -> st.SearchStrategy:
    """Array shapes from 0-d to 4-d (sides 1..max_side)."""
    return hnp.array_shapes(min_dims=min_dims, max_dims=max_dims, min_side=1, max_side=max_side)


SHAPE = shapes()


def sides(n: int, max_side: int = 4) -> st.SearchStrategy:
    """n independent sizes in 1..max_side (e.g. n, k, m of a matrix product)."""
    return st.tuples(*[st.integers(1, max_side)] * n)


def broadcastable_shapes(n: int, max_dims: int = 4) -> st.SearchStrategy:
    """n shapes that broadcast together (as a tuple of shapes)."""
    return hnp.mutually_broadcastable_shapes(
        num_shapes=n, min_dims=0, max_dims=max_dims, max_side=MAX_SIDE
    ).map(lambda s: s.input_shapes)


def values(low: float = -2.0, high: float = 2.0, avoid: Sequence[float] = ()) -> st.SearchStrategy:
    """Finite floats in [low, high], at least MARGIN away from every point in `avoid`."""
    floats = st.floats(low, high, allow_nan=False, allow_infinity=False, allow_subnormal=False)
    if not avoid:
        return floats
    points = np.asarray(avoid, dtype=np.float64)
    return floats.filter(lambda v: bool(np.all(np.abs(points - v) >= MARGIN)))


def arrays(
    shape: tuple | st.SearchStrategy,
    dtype: Any = np.float64,
    low: float = -2.0,
    high: float = 2.0,
    avoid: Sequence[float] = (),
    distinct: bool = False,
) -> st.SearchStrategy:
    """Arrays of `shape` (a tuple or a strategy) with values from `values(...)`.

    `distinct` spaces all entries at least (high - low) / size apart, for ops
    whose gradient jumps at ties (max, min).
    """
    if isinstance(shape, st.SearchStrategy):
        return shape.flatmap(lambda s: arrays(s, dtype, low, high, avoid, distinct))
    if np.dtype(dtype) == np.bool_:
        return hnp.arrays(np.bool_, shape)
    if distinct:
        if avoid:  # the evenly spaced grid below would ignore them
            raise ValueError(
                "arrays(): distinct=True cannot also avoid points; use one or the other"
            )
        size = prod(shape)
        grid = np.linspace(low, high, size) if size > 1 else np.array([(low + high) / 2])
        return st.permutations(list(range(size))).map(
            lambda perm: grid[np.array(perm, dtype=np.int64)].reshape(shape).astype(dtype)
        )
    return hnp.arrays(dtype, shape, elements=values(low, high, avoid))


def tensors(
    shape: tuple | st.SearchStrategy = SHAPE, requires_grad: bool = True, **kwargs: Any
) -> st.SearchStrategy:
    """Tensors wrapping `arrays(shape, **kwargs)`."""
    return arrays(shape, **kwargs).map(lambda a: Tensor(a, requires_grad=requires_grad))


def sampled(options: Sequence) -> st.SearchStrategy:
    return st.sampled_from(list(options))


def booleans() -> st.SearchStrategy:
    return st.booleans()


def class_labels(n: int, n_classes: int) -> st.SearchStrategy:
    """n integer class indices in [0, n_classes)."""
    return hnp.arrays(np.int64, (n,), elements=st.integers(0, n_classes - 1))


def axes(ndim: int, allow_none: bool = False, allow_tuple: bool = False) -> st.SearchStrategy:
    """A valid `axis` argument for an array of `ndim` dims (negative ones too)."""
    options: list[st.SearchStrategy] = []
    if ndim:
        options.append(st.integers(-ndim, ndim - 1))
        if allow_tuple:
            options.append(hnp.valid_tuple_axes(ndim, min_size=1))
    if allow_none or not ndim:
        options.append(st.none())
    return st.one_of(options)


def permutations(ndim: int) -> st.SearchStrategy:
    """An axes permutation for transpose, or None (reverse)."""
    return st.one_of(st.none(), st.permutations(list(range(ndim))).map(tuple))


@st.composite
def broadcast_targets(draw: Callable, shape: tuple) -> tuple:
    """A shape that `shape` broadcasts to (new leading axes, length-1 axes grown)."""
    lead = draw(st.lists(st.integers(1, MAX_SIDE), max_size=max(0, 3 - len(shape))))
    grown = tuple(draw(st.integers(1, MAX_SIDE)) if n == 1 else n for n in shape)
    return tuple(lead) + grown


@st.composite
def reduce_targets(draw: Callable, shape: tuple) -> tuple:
    """A shape that `shape` sums down to (leading axes dropped, others kept or set to 1)."""
    keep = draw(st.integers(0, len(shape)))
    tail = shape[len(shape) - keep :]
    return tuple(1 if draw(st.booleans()) else n for n in tail)


@st.composite
def reshape_targets(draw: Callable, shape: tuple) -> tuple:
    """Another shape with the same number of elements, sometimes with a -1."""
    size = prod(shape)
    dims, rest = [], size
    for _ in range(draw(st.integers(0, 3))):
        divisor = draw(st.sampled_from([d for d in range(1, rest + 1) if rest % d == 0]))
        dims.append(divisor)
        rest //= divisor
    dims.append(rest)
    if draw(st.booleans()):
        dims[draw(st.integers(0, len(dims) - 1))] = -1
    return tuple(dims)


@st.composite
def indices(draw: Callable, shape: tuple) -> Any:
    """An index for an array of `shape`: an int, slices, or integer arrays (with repeats)."""
    if not shape:
        return ()
    kind = draw(st.sampled_from(["int", "slices", "array", "arrays"]))
    if kind == "int":
        return draw(st.integers(-shape[0], shape[0] - 1))
    if kind == "slices":
        parts = []
        for n in shape[: draw(st.integers(1, len(shape)))]:
            start = draw(st.integers(0, n - 1))
            parts.append(slice(start, draw(st.integers(start + 1, n)), draw(st.integers(1, 2))))
        return tuple(parts)
    size = draw(st.integers(1, 5))
    first = draw(hnp.arrays(np.int64, (size,), elements=st.integers(0, shape[0] - 1)))
    if kind == "array" or len(shape) == 1:
        return first
    second = draw(hnp.arrays(np.int64, (size,), elements=st.integers(0, shape[1] - 1)))
    return (first, second)
