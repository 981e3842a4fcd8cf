"""Activations: sigmoid, relu, leaky_relu, and the perceptron's step."""

from __future__ import annotations

import functools

import numpy as np

from minigrad.engine import Tensor, op, unwrap


def _sigmoid_vjp(g, y, x):
    if isinstance(y, Tensor):  # create_graph: the formula, recorded
        return g * y * (1 - y)
    one = _scalar(1, y.dtype)
    if y.size == 1:  # see sigmoid: on one element, fresh arrays are faster
        return (one - y) * y * g
    d = one - y  # the same formula on arrays, in one fresh array
    d *= y
    d *= g
    return d


@op(_sigmoid_vjp)
def sigmoid(x):
    """1 / (1 + exp(-x)) (the book's eq. 3.6), without overflow for any x."""
    # A fresh array changed in place (asarray: NumPy gives 0-d results as scalars; integers
    # go to float64 as in exp). exp(-x) overflows to inf for very negative x, and 1 / inf
    # is the right limit, but NumPy warns. Below a few thousand elements, capping exp's
    # argument at log(largest float) less a margin (where sigmoid is 0 to the dtype's
    # precision anyway) costs less than np.errstate's 2.5 us; above, the cap costs more
    # (75 us, a quarter of exp's own time, at 100x1000).
    x = np.asarray(x)  # a list or a Python number, as NumPy's own ufuncs take them
    if x.dtype == np.float16:  # exp(-x) overflows float16 below x = -11, where sigmoid is 1.7e-5
        return sigmoid.op.forward(x.astype(np.float32)).astype(np.float16)
    z = np.asarray(np.negative(x) if x.dtype.kind == "f" else np.negative(x, dtype=np.float64))
    one = _scalar(1, z.dtype)
    if z.size == 1:  # NumPy 2.4 takes ~0.5 us longer for an in-place ufunc on one element
        return one / (one + np.exp(np.minimum(z, _exp_cap(z.dtype))))
    if z.size < _CAP_BELOW:
        np.minimum(z, _exp_cap(z.dtype), out=z)
        np.exp(z, out=z)
    else:
        with np.errstate(over="ignore"):
            np.exp(z, out=z)
    z += one
    return np.divide(one, z, out=z)  # not np.reciprocal: NumPy 2.4 runs it at half the speed


_CAP_BELOW = 4096  # where the cap's cost per element reaches np.errstate's fixed cost


@functools.cache
def _scalar(value: float, dtype: np.dtype) -> np.ndarray:
    """A read-only 0-d array: NumPy 2 converts a Python number on every call (~1 us)."""
    a = np.array(value, dtype)
    a.flags.writeable = False
    return a


@functools.cache
def _exp_cap(dtype: np.dtype) -> np.ndarray:
    return _scalar(np.log(np.finfo(dtype).max) - 1, dtype)


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
