"""The softmax family along one axis: softmax, log_softmax, logsumexp, each shifted by
the max so that exp cannot overflow."""

from __future__ import annotations

import numpy as np

from minigrad.functional.activations import exp_shifted
from minigrad.functional.broadcasting import keepdims_shape, unreduce
from minigrad.ops import op


def _shift(x, axis):
    """x's max along axis, kept as a length-1 axis: what exp's argument is shifted by."""
    if x.size == 0:  # NumPy's max has no identity; over nothing, it is -inf
        dtype = x.dtype if x.dtype.kind == "f" else np.float64
        return np.full(keepdims_shape(x.shape, axis), -np.inf, dtype)
    return x.max(axis=axis, keepdims=True)


def _logsumexp(x, axis, keepdims):
    m = _shift(x, axis)
    finite = np.isfinite(m)
    if not finite.all():  # shift such rows by 0: all -inf gives log 0 = -inf, not -inf - -inf
        m = np.where(finite, m, 0)
    out = np.log(exp_shifted(x - m).sum(axis=axis, keepdims=True)) + m
    return out if keepdims else out.squeeze(axis)


@op(lambda g, y, x, axis=-1: y * (g - (g * y).sum(axis=axis, keepdims=True)))
def softmax(x, axis=-1):
    """exp(x_k) / sum_i exp(x_i) along axis, shifted by the max so it cannot overflow."""
    e = exp_shifted(x - _shift(x, axis))
    e /= e.sum(axis=axis, keepdims=True)
    return e


# softmax(x), not exp(y): the same, and an exp that underflows is no error inside softmax
@op(lambda g, y, x, axis=-1: g - softmax(x, axis) * g.sum(axis=axis, keepdims=True))
def log_softmax(x, axis=-1):
    """log(softmax(x)) computed as x - logsumexp(x), stable for any x."""
    return x - _logsumexp(x, axis, keepdims=True)


def _logsumexp_vjp(g, y, x, axis=-1, keepdims=False):
    # d/dx_k log sum_i exp(x_i) = exp(x_k - y): the softmax.
    return unreduce(g, x.shape, axis, keepdims) * softmax(x, axis)


@op(_logsumexp_vjp)
def logsumexp(x, axis=-1, keepdims=False):
    """log(sum(exp(x))) along axis, without overflow."""
    return _logsumexp(x, axis, keepdims)
