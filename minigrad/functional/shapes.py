"""Shapes and indexing: reshape, transpose, astype, getitem, concat, stack."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from minigrad.engine import Tensor, TensorLike, no_grad, unwrap
from minigrad.ops import VariadicVJP, op


@op(lambda g, y, x, shape: g.reshape(x.shape), None)
def reshape(x, shape):
    """The same elements in a new shape (one entry may be -1)."""
    return np.reshape(x, shape)


@op(lambda g, y, x, dtype: astype(g, unwrap(x).dtype), None, name="astype")
def _astype(x, dtype):
    return np.asarray(x).astype(dtype)


def astype(x: TensorLike, dtype: Any) -> Any:
    """x converted to dtype (np.ndarray.astype); the gradient is converted back.

    An integer or bool result has no gradient (as in PyTorch): it is not recorded.
    """
    if np.dtype(dtype).kind == "f":
        return _astype(x, dtype)
    with no_grad():
        return _astype(x, dtype)


def _transpose_vjp(g, y, x, axes=None):
    if axes is None:
        return g.transpose()
    inverse = np.argsort([a % x.ndim for a in axes])  # -1 is the last axis, not the first
    return g.transpose(tuple(int(i) for i in inverse))


@op(_transpose_vjp)
def transpose(x, axes=None):
    """Permute axes; with no axes, reverse them (NumPy's rule)."""
    return np.transpose(x, axes)


@op(lambda g, y, x, index: _scatter(g, x.shape, index))
def getitem(x, index):
    """x[index], basic or integer-array indexing; repeated indices sum their gradients."""
    return x[index]


@op(lambda g, y, x, shape, index: getitem(g, index), name="getitem_grad")
def _scatter(x, shape, index):
    """The gradient of getitem: zeros of `shape` with x added at `index`."""
    out = np.zeros(shape, dtype=x.dtype)
    np.add.at(out, index, x)
    return out


def _concat_vjp(i, g, y, *xs, axis=0):
    shapes = [np.shape(x) for x in xs]  # an input may be a list
    if axis is None:  # np.concatenate flattened every input first
        start = sum(math.prod(shape) for shape in shapes[:i])
        return g[start : start + math.prod(shapes[i])].reshape(shapes[i])
    axis = axis % y.ndim
    start = sum(shape[axis] for shape in shapes[:i])
    return g[(slice(None),) * axis + (slice(start, start + shapes[i][axis]),)]


def _stack_vjp(i, g, y, *xs, axis=0):
    return g[(slice(None),) * (axis % y.ndim) + (i,)]


@op(VariadicVJP(_concat_vjp), name="concat")
def _concat(*xs, axis=0):
    return np.concatenate(xs, axis=axis)


@op(VariadicVJP(_stack_vjp), name="stack")
def _stack(*xs, axis=0):
    return np.stack(xs, axis=axis)


def concat(xs: list[TensorLike], axis: int = 0) -> Tensor:
    """Join tensors along an existing axis (np.concatenate)."""
    return _concat(*xs, axis=axis)


def stack(xs: list[TensorLike], axis: int = 0) -> Tensor:
    """Join same-shaped tensors along a new axis (np.stack)."""
    return _stack(*xs, axis=axis)
