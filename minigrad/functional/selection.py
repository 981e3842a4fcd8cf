"""Selection: maximum, minimum, where, clip. Each sends gradient only to what it picked."""

from __future__ import annotations

from functools import partial

import numpy as np

from minigrad.engine import unwrap
from minigrad.functional.broadcasting import unbroadcast
from minigrad.ops import op


def _select_vjp(winner, i, g, y, a, b):
    # This input's share: 1 where it wins, 1/2 at a tie, 0 where the other wins.
    mine, other = (unwrap(a), unwrap(b)) if i == 0 else (unwrap(b), unwrap(a))
    share = (winner(mine, other) + (mine == other) * 0.5).astype(unwrap(g).dtype)
    return unbroadcast(g * share, (a, b)[i])


@op(partial(_select_vjp, np.greater, 0), partial(_select_vjp, np.greater, 1))
def maximum(a, b):
    """Elementwise max; at a tie the gradient is split evenly between a and b."""
    return np.maximum(a, b)


@op(partial(_select_vjp, np.less, 0), partial(_select_vjp, np.less, 1))
def minimum(a, b):
    """Elementwise min; at a tie the gradient is split evenly between a and b."""
    return np.minimum(a, b)


@op(
    None,
    lambda g, y, c, a, b: unbroadcast(where(c, g, 0), a),
    lambda g, y, c, a, b: unbroadcast(where(c, 0, g), b),
)
def where(cond, a, b):
    """a where cond is true, else b; the branch not taken gets no gradient.

    The classic trap: `where(x > 0, sqrt(x), 0)` still computes sqrt at negative
    x, and backward multiplies its NaN gradient by zero, which is NaN. Mask the
    input before the op instead: `sqrt(where(x > 0, x, 1))`.
    """
    return np.where(cond, a, b)


def _inside(x, lo, hi):
    mask = np.ones(x.shape, dtype=bool)
    if lo is not None:
        mask = mask & (x >= lo)  # not &=: array bounds may broadcast x to a larger shape
    if hi is not None:
        mask = mask & (x <= hi)
    return mask


@op(lambda g, y, x, lo=None, hi=None: unbroadcast(g * _inside(unwrap(x), lo, hi), x), None, None)
def clip(x, lo=None, hi=None):
    """x limited to [lo, hi]; the gradient passes inside the bounds and at them, as in
    PyTorch and DeZero (so a value that starts at a bound can still move away)."""
    return np.clip(x, lo, hi)
