"""Linear algebra: matmul, dot, and linear (the book's affine layer, x W + b, fused)."""

from __future__ import annotations

import math
from functools import partial
from typing import Any

import numpy as np

from minigrad.engine import Tensor, TensorLike, unwrap
from minigrad.functional.broadcasting import sum_to
from minigrad.ops import op, register


def _swap_last(m):
    axes = list(range(m.ndim))
    axes[-2], axes[-1] = axes[-1], axes[-2]
    return m.transpose(axes)


def _matmul_vjp(i, g, y, a, b):
    if a.ndim == 2 and b.ndim == 2:  # the common case, without the general bookkeeping
        return g @ b.T if i == 0 else a.T @ g
    # Treat 1-D operands as matrices (a row, b a column), as np.matmul does.
    a2 = a.reshape((1,) + a.shape) if a.ndim == 1 else a
    b2 = b.reshape(b.shape + (1,)) if b.ndim == 1 else b
    batch = np.broadcast_shapes(a2.shape[:-2], b2.shape[:-2])
    g2 = g.reshape(batch + (a2.shape[-2], b2.shape[-1]))
    if i == 0:
        return sum_to(g2 @ _swap_last(b2), a2.shape).reshape(a.shape)
    return sum_to(_swap_last(a2) @ g2, b2.shape).reshape(b.shape)


def _refuse_lists(name: str, *operands: Any) -> None:
    # Their VJPs need arrays; as in torch.matmul, a list is an error rather than converted.
    for v in operands:
        if isinstance(v, list | tuple):
            raise TypeError(
                f"{name} takes arrays or tensors, got a {type(v).__name__}: convert it first "
                "(np.asarray(...) or mg.tensor(...))"
            )


def _check_matmul(a, b):
    try:  # the usual case, arrays that fit, checked first and cheaply: this runs every call
        if a.shape[-1] == (b.shape[0] if b.ndim == 1 else b.shape[-2]):
            return
    except (AttributeError, IndexError):  # a list, a number, a 0-d array: said below
        pass
    _refuse_lists("matmul", a, b)
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError("matmul needs operands with at least one dimension; use mul for scalars")
    ka, kb = a.shape[-1], b.shape[0] if b.ndim == 1 else b.shape[-2]
    raise ValueError(
        f"shapes {a.shape} and {b.shape} are not aligned: {ka} (last dim of the first) "
        f"!= {kb} (the second's {'only' if b.ndim == 1 else 'second-to-last'} dim)"
    )


@op(partial(_matmul_vjp, 0), partial(_matmul_vjp, 1), check=_check_matmul)
def matmul(a, b):
    """a @ b with NumPy's rules (batched, 1-D operands as vectors)."""
    return np.matmul(a, b)


@register
def dot(a: TensorLike, b: TensorLike) -> Tensor:
    """np.dot for 1-D and 2-D operands (the book's `np.dot(x, W)`); matmul for batches."""
    if not (1 <= np.ndim(unwrap(a)) <= 2 and 1 <= np.ndim(unwrap(b)) <= 2):
        raise ValueError(
            f"dot takes 1-D or 2-D operands, got shapes {np.shape(unwrap(a))} and {np.shape(unwrap(b))}; "
            "use matmul for batched products"
        )
    return matmul(a, b)


def _linear_vjp_x(g, y, x, w, b=None):
    if w.ndim == 1:  # y = x . w, one output per row (the book's perceptron)
        return g.reshape(g.shape + (1,)) * w
    return g @ w.T


def _linear_vjp_w(g, y, x, w, b=None):
    if x.ndim == 2:  # the usual (batch, features) input: no reshapes to pay for
        return x.T @ g
    rows = math.prod(x.shape[:-1])  # not -1: NumPy cannot infer it when a side is 0
    return x.reshape((rows, w.shape[0])).T @ g.reshape((rows,) + w.shape[1:])


def _linear_vjp_b(g, y, x, w, b):
    if g.ndim != b.ndim + 1:  # not the usual one batch axis: make it one
        g = g.reshape((math.prod(g.shape[: g.ndim - b.ndim]),) + b.shape)
    # An array's sum by the ufunc itself, without the method's Python wrapper; a tensor's
    # (under create_graph) by its method, recorded.
    return np.add.reduce(g, 0) if type(g) is np.ndarray else g.sum(axis=0)


def _check_linear(x, w, b=None):
    try:  # the usual case, arrays that fit, checked first and cheaply: this runs every call
        w_shape = w.shape
        if (
            len(w_shape) in (1, 2)
            and x.shape[-1] == w_shape[0]
            and (b is None or b.shape == w_shape[1:])
        ):
            return
    except (AttributeError, IndexError):  # a list, a number, a 0-d array: said below
        pass
    _refuse_lists("linear", x, w)
    if x.ndim == 0 or w.ndim not in (1, 2):
        raise ValueError(
            f"x must have shape (..., in) and w shape (in, out) or (in,), got {x.shape} "
            f"and {w.shape}"
        )
    if x.shape[-1] != w.shape[0]:
        raise ValueError(
            f"shapes {x.shape} and {w.shape} are not aligned: {x.shape[-1]} != {w.shape[0]}"
        )
    if b is not None and np.shape(b) != w.shape[1:]:  # a (1, out) bias would get an (out,) grad
        raise ValueError(f"the bias must have shape {w.shape[1:]}, got {np.shape(b)}")


@op(_linear_vjp_x, _linear_vjp_w, _linear_vjp_b, check=_check_linear)
def linear(x, w, b=None):
    """x W + b, fused (one node instead of two): the affine layer of the book.

    w is (in, out), or (in,) for one output (y = x . w + b, the book's perceptron).
    """
    y = np.matmul(x, w)
    if b is None:
        return y
    # In place into y, our own fresh array, unless NumPy would give y + b another dtype:
    # integer products, or a float64 bias for float32 weights. The usual bias, an array of
    # y's own dtype, is recognised first and cheaply.
    usual = type(b) is np.ndarray and b.dtype is y.dtype
    if not usual and (
        y.dtype.kind != "f"
        or (
            isinstance(b, np.ndarray | np.generic)
            and b.dtype != y.dtype
            and np.result_type(y, b) != y.dtype
        )
    ):
        return y + b
    y += b
    return y
