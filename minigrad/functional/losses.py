"""Losses (the book's mean squared error and cross-entropy, and their fused, stable
forms on scores), accuracy, and dropout."""

from __future__ import annotations

from functools import partial
from typing import Any

import numpy as np

from minigrad.engine import Tensor, TensorLike, unwrap
from minigrad.functional.activations import exp_shifted, log_sigmoid
from minigrad.functional.elementwise import log
from minigrad.functional.reductions import sum
from minigrad.functional.shapes import astype, getitem
from minigrad.functional.softmax_family import softmax
from minigrad.ops import op, register


@register
def dropout(x: TensorLike, p: float = 0.5, training: bool = True, rng: Any = None) -> Tensor:
    """Inverted dropout: zero each element with probability p, scale the rest by 1/(1-p).

    Identity when not training. `rng` is a numpy Generator or a seed (a seed
    gives the same mask on every call, which is what gradient checks need).
    """
    if not 0 <= p < 1:
        raise ValueError(f"dropout probability must be in [0, 1), got {p}")
    if not training or p == 0:
        return x
    rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    data = unwrap(x)
    keep = rng.random(data.shape) >= p
    return x * (keep / (1 - p)).astype(data.dtype)


def _check_labels(name: str, x: np.ndarray, t: Any) -> None:
    """Scores x are (N, C) or (C,); labels t are class indices (N,) or () or one-hot like x."""
    if x.ndim not in (1, 2):
        raise ValueError(f"{name}: expected scores of shape (N, C) or (C,), got shape {x.shape}")
    if type(t) is not np.ndarray:  # most calls pass an array: no conversion to pay for
        t = np.asarray(t)
    if t.shape == x.shape or (t.shape == x.shape[:-1] and t.dtype.kind in "iu"):
        return
    raise ValueError(
        f"{name}: labels must be integer class indices of shape {x.shape[:-1]} or one-hot of "
        f"shape {x.shape}, got {t.dtype} labels of shape {t.shape}"
    )


def _label_index(name: str, x: np.ndarray, t: Any) -> np.ndarray:
    """Flat indices of x[i, t_i] for each row i (x[t] for 1-D x).

    A label out of range is an error, not wrapped around from the end.
    """
    t = np.asarray(t)
    try:
        rows = (np.arange(x.shape[0]),) if x.ndim == 2 else ()
        return np.ravel_multi_index((*rows, t.astype(np.intp, copy=False)), x.shape)
    except ValueError:  # NumPy's "invalid entry in coordinates array"
        bad = t[(t < 0) | (t >= x.shape[-1])].flat[0]
        raise ValueError(f"{name}: labels must be in [0, {x.shape[-1]}), got {bad}") from None


def _labels_like(t, x):
    """Labels in the scores' float dtype: float64 or integer labels (np.eye(10)[t], or a
    DataLoader's tensors) would make a float32 loss float64. A tensor is cast by the op."""
    if x.dtype.kind != "f":
        return t
    if isinstance(t, Tensor):
        return t if t.dtype == x.dtype else astype(t, x.dtype)
    return np.asarray(t, dtype=x.dtype)


def _one_hot_of(t, x):
    """t as a one-hot array shaped like x (t may already be one-hot)."""
    t = np.asarray(t)
    if t.shape == x.shape:
        return t.astype(x.dtype, copy=False)
    onehot = np.zeros(x.shape, dtype=x.dtype)
    if x.ndim == 1:
        onehot[t] = 1
    else:
        onehot[np.arange(x.shape[0]), t] = 1
    return onehot


def _sce_vjp(g, y, x, t, saved):
    n = x.shape[0] if x.ndim == 2 else 1
    # Label rows need not sum to 1 (soft or masked labels): d/dx of -sum_k t_k log softmax_k
    # is softmax * sum_k t_k - t, which is the book's softmax - t for one-hot rows.
    if isinstance(x, Tensor):  # create_graph: the formula, recorded
        t = _one_hot_of(unwrap(t), x.data)
        return (softmax(x) * t.sum(axis=-1, keepdims=True) - t) * (g / n)
    # The same formula on arrays, from the forward's softmax (left intact for another
    # backward): one fresh array changed in place.
    probabilities, picked = saved
    scale = g / n
    if picked is None:  # label rows
        p = probabilities * t.sum(axis=-1, keepdims=True)
        p -= t
        p *= scale
    else:
        p = probabilities * scale
        if not p.flags.c_contiguous:  # transposed logits: picked indexes the C-order flat view
            p = np.ascontiguousarray(p)
        p.reshape(-1)[picked] -= scale
    return p


@op(_sce_vjp, None, saves=True, check=partial(_check_labels, "softmax_cross_entropy"))
def softmax_cross_entropy(x, t):
    """Cross-entropy of softmax(x) against labels t, averaged over the batch.

    x holds scores (logits) of shape (N, C); t holds class indices (N,) or
    rows (N, C): one-hot, or class weights such as smoothed labels (the loss
    is then -sum_k t_k log softmax(x)_k per row). Fused: -log softmax(x)_t =
    log(sum_k exp(a_k)) - a_t with a = x - max(x) (no overflow), and the
    gradient is the book's (softmax(x) - onehot(t)) / N from the softmax (and
    the label positions) the forward saves; for rows, softmax(x) sum_k t_k - t.
    """
    # The reductions are the ufuncs' own, without the array methods' Python wrappers.
    n = x.shape[0] if x.ndim == 2 else 1
    a = x - np.maximum.reduce(x, -1, keepdims=True)
    p = exp_shifted(a)
    total = np.add.reduce(p, -1, keepdims=True)
    t = np.asarray(t)
    if t.shape == x.shape:
        picked = None
        loss = -np.add.reduce(t * (a - np.log(total)), None)
    else:
        picked = _label_index("softmax_cross_entropy", x, t)
        loss = np.add.reduce(np.log(total), None) - np.add.reduce(a.take(picked))
    p /= total
    return np.asarray(loss / n, dtype=p.dtype), (p, picked)


@register
def cross_entropy_error(y: TensorLike, t: Any) -> Tensor:
    """The book's E = -sum(t_k log(y_k + 1e-7)) / N on probabilities y (eq. 4.3).

    t holds class indices or one-hot rows; 1e-7 keeps log away from log(0).
    """
    data = unwrap(y)
    _check_labels("cross_entropy_error", data, t)
    n = data.shape[0] if data.ndim == 2 else 1
    if np.shape(t) == data.shape:
        return -sum(_labels_like(t, data) * log(y + 1e-7)) / n
    _label_index("cross_entropy_error", data, t)  # checks the labels' range
    index = (np.arange(n), t) if data.ndim == 2 else t
    return -sum(log(getitem(y, index) + 1e-7)) / n


@register
def mean_squared_error(y: TensorLike, t: TensorLike) -> Tensor:
    """The book's E = 1/2 sum (y_k - t_k)^2 (eq. 4.1); a batch (N, ...) is divided by N."""
    data = unwrap(y)
    if data.shape != np.shape(unwrap(t)):
        raise ValueError(
            f"mean_squared_error: y has shape {data.shape} but t has shape {np.shape(unwrap(t))}"
        )
    d = y - _labels_like(t, data)
    n = data.shape[0] if data.ndim >= 2 else 1
    return sum(d * d) * (0.5 / n if n else np.nan)  # an empty batch: NaN, as the other losses


@register
def sigmoid_cross_entropy(x: TensorLike, t: TensorLike) -> Tensor:
    """Binary cross-entropy of sigmoid(x) against 0/1 labels t, averaged over axis 0.

    -(t log sigmoid(x) + (1 - t) log(1 - sigmoid(x))), and as log(1 - sigmoid(x))
    = log_sigmoid(x) - x, that is (1 - t) x - log_sigmoid(x): finite for any x, with
    the gradient sigmoid(x) - t (1/2 - t at x = 0).
    """
    data = unwrap(x)
    if data.shape != np.shape(unwrap(t)):
        raise ValueError(
            f"sigmoid_cross_entropy: x has shape {data.shape} but t has shape {np.shape(unwrap(t))}"
        )
    loss = (1 - _labels_like(t, data)) * x - log_sigmoid(x)
    return sum(loss) / (data.shape[0] if data.ndim else 1)


@register
def accuracy(y: TensorLike, t: Any) -> float:
    """Fraction of rows whose argmax matches the label (indices or one-hot). No gradient.

    Labels are checked as the losses check them: a label out of range would
    otherwise only show as a low accuracy.
    """
    y, t = np.asarray(unwrap(y)), np.asarray(unwrap(t))
    _check_labels("accuracy", y, t)
    if t.shape == y.shape:
        t = t.argmax(axis=-1)
    else:
        _label_index("accuracy", y, t)  # refuses a label out of range, as the losses do
    return float(np.mean(y.argmax(axis=-1) == t))
