"""Activations: sigmoid, log_sigmoid, relu, leaky_relu, and the perceptron's step."""

from __future__ import annotations

import functools

import numpy as np

from minigrad.engine import unwrap
from minigrad.ops import op


@functools.cache
def _scalar(value: float, dtype: np.dtype) -> np.ndarray:
    """A read-only 0-d array of dtype: NumPy converts a Python number on every call, and
    for a small array that conversion costs as much as the arithmetic."""
    a = np.array(value, dtype)
    a.flags.writeable = False
    return a


def _floats(x) -> np.ndarray:
    """x as a float array: integers go to float64, as in np.exp."""
    x = np.asarray(x)  # a list or a Python number, as NumPy's own ufuncs take them
    return x if x.dtype.kind == "f" else x.astype(np.float64)


def exp_shifted(a: np.ndarray) -> np.ndarray:
    """np.exp(a) for an argument shifted to be <= 0 (so it cannot overflow), as the stable
    ops compute it: there an underflow to 0 is the right answer, not an error, even under
    np.seterr(under="raise"). Free unless that setting raises, where an errstate around
    every call would cost more than the exp itself on a small array."""
    try:
        return np.exp(a)
    except FloatingPointError:  # an overflow or invalid error is raised again below
        with np.errstate(under="ignore"):
            return np.exp(a)


def _sigmoid_vjp(g, y, x):
    d = g * y  # our own array (or tensor), so the second product goes in place
    d *= _scalar(1, y.dtype) - y
    return d


@op(_sigmoid_vjp)
def sigmoid(x):
    """1 / (1 + exp(-x)) (the book's eq. 3.6), without overflow for any x.

    With e = exp(-|x|), which lies in (0, 1] and so never overflows: 1 / (1 + e)
    for x >= 0, and e / (1 + e), that is exp(x) / (1 + exp(x)), for x < 0.

    For very negative x the result is subnormal (x below about -708 in float64,
    -87 in float32) or, below the dtype's smallest number (about -745 and
    -104), 0, rounded as np.exp rounds, with the underflow flag that NumPy
    ignores unless asked (`np.errstate(under=...)`); log(sigmoid(x)) is then
    -inf: use log_sigmoid.
    """
    x = _floats(x)
    a = np.abs(x)
    # The numerator, 1 for x > 0 and e otherwise (e is 1 at 0). As e <= 1, the maximum of e
    # and (|x| == x), 1 for x >= 0 and 0 below, picks it with no branch per element (np.where
    # costs several times as much, and so does np.sign on a large x: it has no vector loop).
    y = (a == x).astype(a.dtype)
    e = exp_shifted(-a)
    y = np.maximum(e, y)
    e += _scalar(1, e.dtype)  # in place, but for a 0-d x: NumPy gives scalars then
    y /= e
    return y


@op(lambda g, y, x: g * sigmoid(-x))  # 1 - sigmoid(x), which cancels to 0 for large x
def log_sigmoid(x):
    """log(sigmoid(x)) = -softplus(-x) = min(x, 0) - log(1 + exp(-|x|)), finite for any x."""
    x = _floats(x)
    return np.minimum(x, _scalar(0, x.dtype)) - np.log1p(exp_shifted(-np.abs(x)))


def _relu_vjp(g, y, x):
    x = unwrap(x)
    return g * (x > _scalar(0, x.dtype))


@op(_relu_vjp)
def relu(x):
    """max(x, 0); relu'(0) is taken as 0."""
    x = np.asarray(x)
    return np.maximum(x, _scalar(0, x.dtype))


def _leaky_slope(x, slope):
    x = np.asarray(unwrap(x))
    dtype = x.dtype if x.dtype.kind == "f" else np.float64  # integers go to float64, as in exp
    return np.where(x > 0, 1, slope).astype(dtype)


@op(lambda g, y, x, slope=0.01: g * _leaky_slope(x, slope))
def leaky_relu(x, slope=0.01):
    """x for x > 0, slope * x otherwise; the gradient at 0 is taken as slope."""
    return x * _leaky_slope(x, slope)


@op(lambda g, y, x: g * 0)
def step(x):
    """The step function of the perceptron: 1 for x > 0, else 0.

    Its gradient is zero wherever it exists (everywhere but 0, where it is
    taken as 0 too), which is why learning needs sigmoid or ReLU instead.
    """
    x = np.asarray(x)
    return (x > 0).astype(x.dtype)
