"""Tensor's methods for users: operators and op methods (`a + b`, `x @ w`, `t.sum()`,
`t.T`), each one op, and what a NumPy or PyTorch user reaches for first (`len`, `repr`,
`item`, `tolist`, `argmax`, ...).

The engine defines `Tensor` with only the graph and backward, so that it needs
nothing from this package; importing `minigrad.functional` sets these on the class.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from minigrad.engine import Tensor, get_default_dtype, is_grad_enabled, mark_changed, unwrap
from minigrad.functional.activations import relu, sigmoid
from minigrad.functional.arithmetic import add, div, mul, neg, pow, sub
from minigrad.functional.elementwise import abs, exp, log, sqrt, tanh
from minigrad.functional.linalg import matmul
from minigrad.functional.reductions import max, mean, min, sum
from minigrad.functional.selection import clip
from minigrad.functional.shapes import astype, getitem, reshape, transpose
from minigrad.functional.softmax_family import log_softmax, softmax


def _in_place(t: Tensor, other: Any, ufunc: np.ufunc, op_: Callable) -> Tensor:
    """`t op= other`, as in PyTorch: under no_grad (or with nothing to record) the array
    itself changes; while recording, a new tensor `t op other` of t's shape and dtype."""
    recorded = is_grad_enabled() and (
        t.requires_grad or (isinstance(other, Tensor) and other.requires_grad)
    )
    if not recorded:
        ufunc(t.data, unwrap(other), out=t.data)
        mark_changed((t,))
        return t
    if t.requires_grad and t.is_leaf:
        raise RuntimeError(
            "a leaf tensor that requires grad cannot change in place while gradients are "
            "recorded (the graph may need its old value); update it under "
            "`with minigrad.no_grad():`, or write `t = t + ...` for a new tensor"
        )
    out = op_(t, other)
    if out.shape != t.shape:
        raise ValueError(
            f"an in-place result of shape {out.shape} does not fit the tensor's shape {t.shape}; "
            "write `t = t + ...` for a new tensor"
        )
    if out.dtype != t.dtype:
        if not np.can_cast(out.dtype, t.dtype, "same_kind"):
            raise TypeError(
                f"an in-place result of dtype {out.dtype} cannot be stored as {t.dtype}; "
                "write `t = t + ...` for a new tensor"
            )
        out = astype(out, t.dtype)
    return out


def _one_tuple(args: tuple) -> tuple:
    """`t.reshape(2, 3)` as `t.reshape((2, 3))`, as NumPy takes both."""
    return args[0] if len(args) == 1 and not isinstance(args[0], int) else args


# The unreflected operators are the ops themselves: one call less on the hot path.
Tensor.__add__ = add
Tensor.__radd__ = lambda self, other: add(other, self)
Tensor.__sub__ = sub
Tensor.__rsub__ = lambda self, other: sub(other, self)
Tensor.__mul__ = mul
Tensor.__rmul__ = lambda self, other: mul(other, self)
Tensor.__truediv__ = div
Tensor.__rtruediv__ = lambda self, other: div(other, self)
Tensor.__pow__ = pow
Tensor.__rpow__ = lambda self, other: pow(other, self)
Tensor.__matmul__ = matmul
Tensor.__rmatmul__ = lambda self, other: matmul(other, self)
Tensor.__neg__ = neg
Tensor.__pos__ = lambda self: self
Tensor.__abs__ = abs
Tensor.__iadd__ = lambda self, other: _in_place(self, other, np.add, add)
Tensor.__isub__ = lambda self, other: _in_place(self, other, np.subtract, sub)
Tensor.__imul__ = lambda self, other: _in_place(self, other, np.multiply, mul)
Tensor.__itruediv__ = lambda self, other: _in_place(self, other, np.divide, div)
Tensor.__getitem__ = getitem  # a tensor index is an input of the op
Tensor.T = property(lambda self: transpose(self), doc="The axes reversed (x.transpose()).")

# Reductions take NumPy's axis (int, tuple or None) and keepdims.
Tensor.sum = lambda self, axis=None, keepdims=False: sum(self, axis=axis, keepdims=keepdims)
Tensor.mean = lambda self, axis=None, keepdims=False: mean(self, axis=axis, keepdims=keepdims)
Tensor.max = lambda self, axis=None, keepdims=False: max(self, axis=axis, keepdims=keepdims)
Tensor.min = lambda self, axis=None, keepdims=False: min(self, axis=axis, keepdims=keepdims)
Tensor.reshape = lambda self, *shape: reshape(self, _one_tuple(shape))
Tensor.transpose = lambda self, *axes: transpose(self, _one_tuple(axes) or None)
Tensor.flatten = lambda self: reshape(self, (-1,))
Tensor.astype = astype
Tensor.exp = exp
Tensor.log = log
Tensor.sqrt = sqrt
Tensor.abs = abs
Tensor.tanh = tanh
Tensor.sigmoid = sigmoid
Tensor.relu = relu
Tensor.softmax = lambda self, axis=-1: softmax(self, axis=axis)
Tensor.log_softmax = lambda self, axis=-1: log_softmax(self, axis=axis)
Tensor.clip = lambda self, lo=None, hi=None: clip(self, lo, hi)


# ---------------------------------------------------------------- as NumPy and PyTorch users expect


def _iter(self: Tensor) -> Iterator[Tensor]:
    if self.data.ndim == 0:  # else Python would index it, get IndexError, and see nothing
        raise TypeError("iteration over a 0-d tensor")
    return (self[i] for i in range(len(self.data)))


def _repr(self: Tensor) -> str:
    body = np.array2string(self.data, separator=", ", prefix="tensor(")
    extras = [f"dtype={self.dtype}"] if self.dtype != get_default_dtype() else []
    if self.creator is not None:
        extras.append(f"op={self.creator.op.name}")
    elif self.requires_grad:
        extras.append("requires_grad=True")
    if self.name:
        extras.append(f"name={self.name!r}")
    return "tensor(" + ", ".join([body, *extras]) + ")"


def _array(self: Tensor, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
    if copy:
        return np.array(self.data, dtype=dtype)
    return self.data if dtype is None else self.data.astype(dtype, copy=False)


def _repr_mimebundle(self: Tensor, include: Any = None, exclude: Any = None) -> dict:
    """Jupyter shows a tensor as the graph that made it."""
    from minigrad.viz import mimebundle  # graphviz is imported only when a notebook asks

    return mimebundle(self, include, exclude)


def argmax(self: Tensor, axis: int | None = None, keepdims: bool = False) -> Any:
    """Indices of the maxima along `axis` (NumPy's name; None: into the flattened tensor).

    A plain NumPy integer array (or integer for axis=None), as comparisons give
    plain arrays: an index has no gradient.
    """
    return self.data.argmax(axis=axis, keepdims=keepdims)


def argmin(self: Tensor, axis: int | None = None, keepdims: bool = False) -> Any:
    """Indices of the minima along `axis`; a plain NumPy array, as `argmax`."""
    return self.data.argmin(axis=axis, keepdims=keepdims)


# Comparisons give plain boolean arrays: they have no gradient.
Tensor.__eq__ = lambda self, other: self.data == unwrap(other)
Tensor.__ne__ = lambda self, other: self.data != unwrap(other)
Tensor.__lt__ = lambda self, other: self.data < unwrap(other)
Tensor.__le__ = lambda self, other: self.data <= unwrap(other)
Tensor.__gt__ = lambda self, other: self.data > unwrap(other)
Tensor.__ge__ = lambda self, other: self.data >= unwrap(other)
Tensor.__len__ = lambda self: len(self.data)
Tensor.__iter__ = _iter
# As NumPy's: one element converts, more are ambiguous (not "true because len > 0").
Tensor.__bool__ = lambda self: bool(self.data)
Tensor.__float__ = lambda self: float(self.data)
Tensor.__int__ = lambda self: int(self.data)
Tensor.__repr__ = _repr
Tensor.__array__ = _array
Tensor._repr_mimebundle_ = _repr_mimebundle
Tensor.numpy = lambda self: self.data
Tensor.item = lambda self: self.data.item()
Tensor.tolist = lambda self: self.data.tolist()  # nested Python lists of numbers, as NumPy's
Tensor.argmax = argmax
Tensor.argmin = argmin
