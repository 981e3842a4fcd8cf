"""Arithmetic with NumPy's broadcasting: add, sub, mul, div, neg, pow.

A VJP sums its gradient back down to its input's shape (`unbroadcast`), as
broadcasting repeated the input along the axes it added or stretched.
"""

from __future__ import annotations

import numpy as np

from minigrad.engine import unwrap
from minigrad.functional.broadcasting import unbroadcast
from minigrad.functional.elementwise import log
from minigrad.functional.selection import where
from minigrad.ops import op


@op(lambda g, y, a, b: unbroadcast(g, a), lambda g, y, a, b: unbroadcast(g, b))
def add(a, b):
    """a + b, broadcasting."""
    return np.add(a, b)


@op(lambda g, y, a, b: unbroadcast(g, a), lambda g, y, a, b: unbroadcast(-g, b))
def sub(a, b):
    """a - b, broadcasting."""
    return np.subtract(a, b)


@op(lambda g, y, a, b: unbroadcast(g * b, a), lambda g, y, a, b: unbroadcast(g * a, b))
def mul(a, b):
    """a * b, broadcasting."""
    return np.multiply(a, b)


@op(lambda g, y, a, b: unbroadcast(g / b, a), lambda g, y, a, b: unbroadcast(-(g * y) / b, b))
def div(a, b):
    """a / b, broadcasting."""
    return np.divide(a, b)


@op(lambda g, y, x: -g)
def neg(x):
    """-x."""
    return np.negative(x)


def _pow_vjp_a(g, y, a, b):
    # b a^(b-1); where b = 0 that is 0 (a^0 is 1), but at a = 0 the formula gives
    # 0 * inf = NaN. For an array b, a is taken as 1 at those points only, which leaves
    # every derivative elsewhere (the second one in b included) as the formula has it.
    if isinstance(b, int | float | np.generic):
        return g * 0 if b == 0 else unbroadcast(g * b * a ** (b - 1), a)
    both_zero = (unwrap(a) == 0) & (unwrap(b) == 0)
    base = where(both_zero, 1, a) if both_zero.any() else a
    return unbroadcast(g * b * base ** (b - 1), a)


def _pow_vjp_b(g, y, a, b):
    # a^b log a. Where a = 0 and b >= 0, a^b does not change with b (it is 0, or 1 at
    # b = 0; PyTorch's gradient is 0 there too), but the formula gives 0 * -inf = NaN:
    # log 1 = 0 is taken instead.
    if isinstance(a, int | float):  # a number base (2 ** x): its log as a Python float, as
        # a NumPy float64 scalar would turn a float32 gradient float64 under create_graph
        return unbroadcast(g * y * float(np.log(a if a != 0 else 1)), b)
    zero_base = (unwrap(a) == 0) & (unwrap(b) >= 0)
    base = where(zero_base, 1, a) if zero_base.any() else a
    return unbroadcast(g * y * log(base), b)


@op(_pow_vjp_a, _pow_vjp_b)
def pow(a, b):
    """a ** b, broadcasting (for a gradient with respect to b, a must be positive)."""
    return np.power(a, b)
