"""Broadcasting and its reverse: `broadcast_to`, `sum_to`, and the helpers VJPs use to
bring a gradient back to an input's shape."""

from __future__ import annotations

import numpy as np

from minigrad.ops import op


def keepdims_shape(shape: tuple, axis) -> tuple:
    """`shape` with the reduced axes kept as 1 (so a reduced gradient broadcasts back)."""
    if axis is None or not shape:  # NumPy takes axis 0 or -1 of a 0-d array
        return (1,) * len(shape)
    axes = axis if isinstance(axis, tuple) else (axis,)
    axes = {a % len(shape) for a in axes}
    return tuple(1 if i in axes else n for i, n in enumerate(shape))


def unreduce(g, x_shape: tuple, axis, keepdims: bool):
    """Broadcast the gradient of a reduction back to the input's shape."""
    if not keepdims:
        g = g.reshape(keepdims_shape(x_shape, axis))
    return broadcast_to(g, x_shape)


def unbroadcast(g, x):
    """g summed down to x's shape, skipping the op call on the hot paths: nothing broadcast,
    or (for an array g) a bias added to every row, whose gradient is the sum over axis 0."""
    if g.shape == x.shape:
        return g
    if type(g) is np.ndarray and x.shape and g.shape[1:] == x.shape:
        return np.add.reduce(g, 0)
    return sum_to(g, x.shape)


def _sum_to_vjp(g, y, x, shape):
    return broadcast_to(g, x.shape)


def _broadcast_to_vjp(g, y, x, shape):
    return sum_to(g, x.shape)


@op(_sum_to_vjp)
def sum_to(x, shape):
    """Sum x down to `shape`: the reverse of broadcasting (DeZero's sum_to)."""
    shape = tuple(shape)
    if x.shape == shape:
        return x
    lead = x.ndim - len(shape)
    if lead < 0 or any(n not in (1, x.shape[i + lead]) for i, n in enumerate(shape)):
        raise ValueError(f"cannot sum shape {x.shape} down to {shape}: it does not broadcast to it")
    axes = tuple(range(lead)) + tuple(
        i + lead for i, n in enumerate(shape) if n == 1 and x.shape[i + lead] != 1
    )
    y = x.sum(axis=axes, keepdims=True)
    return y.reshape(shape) if lead else y


@op(_broadcast_to_vjp)
def broadcast_to(x, shape):
    """Repeat x along new or length-1 axes to `shape` (a read-only view)."""
    return x if x.shape == tuple(shape) else np.broadcast_to(x, shape)
