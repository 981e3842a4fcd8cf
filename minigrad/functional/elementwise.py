"""Elementwise math: exp, log, sqrt, sin, cos, tanh, abs."""

from __future__ import annotations

import numpy as np

from minigrad.engine import unwrap
from minigrad.ops import op


@op(lambda g, y, x: g * y)
def exp(x):
    """e^x."""
    return np.exp(x)


@op(lambda g, y, x: g / x)
def log(x):
    """Natural logarithm (x > 0)."""
    return np.log(x)


@op(lambda g, y, x: g / (y * 2))
def sqrt(x):
    """Square root (x > 0 for a finite gradient)."""
    return np.sqrt(x)


@op(lambda g, y, x: g * cos(x))
def sin(x):
    """sin x."""
    return np.sin(x)


@op(lambda g, y, x: -(g * sin(x)))
def cos(x):
    """cos x."""
    return np.cos(x)


@op(lambda g, y, x: g * (1 - y * y))
def tanh(x):
    """tanh x; its derivative is 1 - tanh^2 x."""
    return np.tanh(x)


@op(lambda g, y, x: g * np.sign(unwrap(x)))
def abs(x):
    """|x|; the gradient at 0 is taken as 0."""
    return np.abs(x)
