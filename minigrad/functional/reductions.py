"""Reductions over `axis` (an int, a tuple, or None for all) with NumPy's `keepdims`:
sum, mean, max, min."""

from __future__ import annotations

import builtins

import numpy as np

from minigrad.engine import unwrap
from minigrad.functional.broadcasting import keepdims_shape, unreduce
from minigrad.ops import op


def _max_vjp(g, y, x, axis=None, keepdims=False):
    # Tied maxima share the gradient evenly.
    y_kept = unwrap(y) if keepdims else unwrap(y).reshape(keepdims_shape(x.shape, axis))
    mask = unwrap(x) == y_kept
    share = (mask / mask.sum(axis=axis, keepdims=True)).astype(unwrap(x).dtype)
    return unreduce(g, x.shape, axis, keepdims) * share


def _mean_vjp(g, y, x, axis=None, keepdims=False):
    # Each input's share is 1/n, n = x.size / y.size (an empty x: no share to give).
    return unreduce(g, x.shape, axis, keepdims) * (y.size / builtins.max(x.size, 1))


@op(lambda g, y, x, axis=None, keepdims=False: unreduce(g, x.shape, axis, keepdims))
def sum(x, axis=None, keepdims=False):
    """Sum over axis (int, tuple or None for all)."""
    return np.sum(x, axis=axis, keepdims=keepdims)


@op(_mean_vjp)
def mean(x, axis=None, keepdims=False):
    """Mean over axis (int, tuple or None for all)."""
    if np.ndim(x) == 0 and axis is not None:  # np.mean refuses the axis 0 that np.sum takes
        return np.mean(np.sum(x, axis=axis, keepdims=keepdims))
    return np.mean(x, axis=axis, keepdims=keepdims)


@op(_max_vjp)
def max(x, axis=None, keepdims=False):
    """Maximum over axis; tied maxima split the gradient evenly."""
    return np.max(x, axis=axis, keepdims=keepdims)


@op(_max_vjp)
def min(x, axis=None, keepdims=False):
    """Minimum over axis; tied minima split the gradient evenly."""
    return np.min(x, axis=axis, keepdims=keepdims)
