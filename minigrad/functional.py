"""The op set: each op is its NumPy forward with its gradient rules beside it.

Read an op as `@op(vjp for input 0, vjp for input 1, ..., spec=...)` over
its forward. A VJP `(g, y, *inputs, **attrs)` maps the upstream gradient g
(and the output y) to the gradient for one input. VJPs use only operators
and the ops of this module, which work on plain arrays (first-order
backprop, no graph) and on tensors (`create_graph=True`, so the backward
pass is differentiable again).

The `Spec` under each op tells the gradient checker how to draw valid
inputs; `tests/test_ops.py` checks every op registered here.
"""

from __future__ import annotations

import builtins
import functools
import math
from functools import partial
from typing import Any

import numpy as np

from minigrad.engine import Spec, Tensor, TensorLike, VariadicVJP, no_grad, op, register, unwrap

__all__ = [
    "add", "sub", "mul", "div", "neg", "pow", "matmul", "dot",
    "exp", "log", "sqrt", "sin", "cos", "tanh", "abs",
    "maximum", "minimum", "where", "clip",
    "sigmoid", "relu", "leaky_relu", "step",
    "softmax", "log_softmax", "logsumexp",
    "sum", "mean", "max", "min",
    "reshape", "transpose", "astype", "broadcast_to", "sum_to", "getitem", "concat", "stack",
    "linear", "dropout",
    "mean_squared_error", "cross_entropy_error", "softmax_cross_entropy",
    "sigmoid_cross_entropy", "accuracy",
    "im2col", "col2im", "conv2d", "max_pool2d", "avg_pool2d", "batch_norm", "flatten",
]  # fmt: skip


def _keepdims_shape(shape: tuple, axis) -> tuple:
    """`shape` with the reduced axes kept as 1 (so a reduced gradient broadcasts back)."""
    if axis is None or not shape:  # NumPy takes axis 0 or -1 of a 0-d array
        return (1,) * len(shape)
    axes = axis if isinstance(axis, tuple) else (axis,)
    axes = {a % len(shape) for a in axes}
    return tuple(1 if i in axes else n for i, n in enumerate(shape))


def _unreduce(g, x_shape: tuple, axis, keepdims: bool):
    """Broadcast the gradient of a reduction back to the input's shape."""
    if not keepdims:
        g = g.reshape(_keepdims_shape(x_shape, axis))
    return broadcast_to(g, x_shape)


# ================================================================ broadcasting


def _sum_to_vjp(g, y, x, shape):
    return broadcast_to(g, x.shape)


def _broadcast_to_vjp(g, y, x, shape):
    return sum_to(g, x.shape)


def _shape_case(draw, t):
    shape = draw(t.shapes())
    target = draw(t.broadcast_targets(shape))
    return (draw(t.arrays(shape)), target), {}


def _reduce_case(draw, t):
    shape = draw(t.shapes())
    target = draw(t.reduce_targets(shape))
    return (draw(t.arrays(shape)), target), {}


def _sum_to_ref(x, shape):
    lead = x.reshape((-1,) + x.shape[x.ndim - len(shape) :]).sum(axis=0)
    return lead.sum(axis=tuple(i for i, n in enumerate(shape) if n == 1), keepdims=True)


@op(_sum_to_vjp, spec=Spec(case=_reduce_case, wrt=(0,), ref=_sum_to_ref))
def sum_to(x, shape):
    """Sum x down to `shape`: the reverse of broadcasting (DeZero's sum_to)."""
    shape = tuple(shape)
    if x.shape == shape:
        return x
    lead = x.ndim - len(shape)
    if lead < 0 or any(n not in (1, x.shape[i + lead]) for i, n in enumerate(shape)):
        raise ValueError(f"cannot sum shape {x.shape} down to {shape}: it does not broadcast to it")
    axes = tuple(range(lead)) + tuple(
        i + lead for i, n in enumerate(shape) if n == 1 and x.shape[i + lead] != 1
    )
    y = x.sum(axis=axes, keepdims=True)
    return y.reshape(shape) if lead else y


@op(
    _broadcast_to_vjp,
    spec=Spec(case=_shape_case, wrt=(0,), ref=lambda x, shape: x + np.zeros(shape)),
)
def broadcast_to(x, shape):
    """Repeat x along new or length-1 axes to `shape` (a read-only view)."""
    return x if x.shape == tuple(shape) else np.broadcast_to(x, shape)


def _unbroadcast(g, x):
    """g summed down to x's shape; skips the op call when nothing was broadcast (the hot path)."""
    return g if g.shape == x.shape else sum_to(g, x.shape)


# ================================================================ arithmetic


@op(lambda g, y, a, b: _unbroadcast(g, a),
    lambda g, y, a, b: _unbroadcast(g, b),
    spec=Spec(arity=2, ref=lambda a, b: a + b))  # fmt: skip
def add(a, b):
    """a + b, broadcasting."""
    return np.add(a, b)


@op(lambda g, y, a, b: _unbroadcast(g, a),
    lambda g, y, a, b: _unbroadcast(-g, b),
    spec=Spec(arity=2, ref=lambda a, b: a - b))  # fmt: skip
def sub(a, b):
    """a - b, broadcasting."""
    return np.subtract(a, b)


@op(lambda g, y, a, b: _unbroadcast(g * b, a),
    lambda g, y, a, b: _unbroadcast(g * a, b),
    spec=Spec(arity=2, ref=lambda a, b: a * b))  # fmt: skip
def mul(a, b):
    """a * b, broadcasting."""
    return np.multiply(a, b)


@op(lambda g, y, a, b: _unbroadcast(g / b, a),
    lambda g, y, a, b: _unbroadcast(-(g * y) / b, b),
    spec=Spec(arity=2, avoid=(0.0,), ref=lambda a, b: a / b))  # fmt: skip
def div(a, b):
    """a / b, broadcasting."""
    return np.divide(a, b)


@op(lambda g, y, x: -g, spec=Spec(ref=lambda x: 0 - x))
def neg(x):
    """-x."""
    return np.negative(x)


def _pow_vjp_a(g, y, a, b):
    # b a^(b-1); where b = 0 that is 0 (a^0 is 1), but at a = 0 the formula gives
    # 0 * inf = NaN. For an array b, a is taken as 1 at those points only, which leaves
    # every derivative elsewhere (the second one in b included) as the formula has it.
    if isinstance(b, int | float | np.generic):
        return g * 0 if b == 0 else _unbroadcast(g * b * a ** (b - 1), a)
    both_zero = (unwrap(a) == 0) & (unwrap(b) == 0)
    base = where(both_zero, 1, a) if both_zero.any() else a
    return _unbroadcast(g * b * base ** (b - 1), a)


def _pow_vjp_b(g, y, a, b):
    # a^b log a. Where a = 0 and b >= 0, a^b does not change with b (it is 0, or 1 at
    # b = 0; PyTorch's gradient is 0 there too), but the formula gives 0 * -inf = NaN:
    # log 1 = 0 is taken instead.
    if isinstance(a, int | float):  # a number base (2 ** x): its log as a Python float, as
        # a NumPy float64 scalar would turn a float32 gradient float64 under create_graph
        return _unbroadcast(g * y * float(np.log(a if a != 0 else 1)), b)
    zero_base = (unwrap(a) == 0) & (unwrap(b) >= 0)
    base = where(zero_base, 1, a) if zero_base.any() else a
    return _unbroadcast(g * y * log(base), b)


def _pow_case(draw, t):
    a_shape, b_shape = draw(t.broadcastable_shapes(2))
    return (
        draw(t.arrays(a_shape, low=0.2, high=2.0)),
        draw(t.arrays(b_shape, low=-2.0, high=2.0)),
    ), {}


@op(_pow_vjp_a, _pow_vjp_b,
    spec=Spec(case=_pow_case, ref=lambda a, b: np.exp(b * np.log(a))))  # fmt: skip
def pow(a, b):
    """a ** b, broadcasting (for a gradient with respect to b, a must be positive)."""
    return np.power(a, b)


# ================================================================ matrix products


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


def _matmul_case(draw, t):
    n, k, m = draw(t.sides(3))
    batch = draw(t.shapes(max_dims=2))
    a_shape = draw(t.sampled([(k,), batch + (n, k), (n, k)]))
    b_shape = draw(t.sampled([(k,), (k, m), batch + (k, m)]))
    return (draw(t.arrays(a_shape)), draw(t.arrays(b_shape))), {}


def _check_matmul(a, b):
    _refuse_lists("matmul", a, b)
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError("matmul needs operands with at least one dimension; use mul for scalars")
    ka, kb = a.shape[-1], b.shape[0] if b.ndim == 1 else b.shape[-2]
    if ka != kb:
        raise ValueError(
            f"shapes {a.shape} and {b.shape} are not aligned: {ka} (last dim of the first) "
            f"!= {kb} (the second's {'only' if b.ndim == 1 else 'second-to-last'} dim)"
        )


@op(partial(_matmul_vjp, 0), partial(_matmul_vjp, 1),
    spec=Spec(case=_matmul_case, ref=np.matmul), check=_check_matmul)  # fmt: skip
def matmul(a, b):
    """a @ b with NumPy's rules (batched, 1-D operands as vectors)."""
    return np.matmul(a, b)


def _refuse_lists(name: str, *operands: Any) -> None:
    # Their VJPs need arrays; as in torch.matmul, a list is an error rather than converted.
    for v in operands:
        if isinstance(v, list | tuple):
            raise TypeError(
                f"{name} takes arrays or tensors, got a {type(v).__name__}: convert it first "
                "(np.asarray(...) or mg.tensor(...))"
            )


def _dot_case(draw, t):
    n, k, m = draw(t.sides(3))
    a_shape = draw(t.sampled([(k,), (n, k)]))
    b_shape = draw(t.sampled([(k,), (k, m)]))
    return (draw(t.arrays(a_shape)), draw(t.arrays(b_shape))), {}


@register(Spec(case=_dot_case, ref=np.dot))
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
    return g.sum(axis=0)


def _linear_case(draw, t):
    n, k, m = draw(t.sides(3))
    batch = draw(t.shapes(max_dims=1))
    w_shape = draw(t.sampled([(k, m), (k,)]))
    args = (
        draw(t.arrays(draw(t.sampled([(k,), (n, k), batch + (n, k)])))),
        draw(t.arrays(w_shape)),
    )
    if draw(t.booleans()):
        args += (draw(t.arrays(w_shape[1:])),)
    return args, {}


def _check_linear(x, w, b=None):
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


@op(_linear_vjp_x, _linear_vjp_w, _linear_vjp_b,
    spec=Spec(case=_linear_case, ref=lambda x, w, b=None: x @ w + (0 if b is None else b)),
    check=_check_linear)  # fmt: skip
def linear(x, w, b=None):
    """x W + b, fused (one node instead of two): the affine layer of the book.

    w is (in, out), or (in,) for one output (y = x . w + b, the book's perceptron).
    """
    y = np.matmul(x, w)
    if b is None:
        return y
    if y.dtype.kind != "f" or (
        isinstance(b, np.ndarray | np.generic)
        and b.dtype != y.dtype
        and np.result_type(y, b) != y.dtype
    ):
        return y + b  # integer products, or a float64 bias for float32 weights: NumPy promotes
    y += b  # y is our own fresh array
    return y


# ================================================================ elementwise math


@op(lambda g, y, x: g * y, spec=Spec(ref=lambda x: np.e**x))
def exp(x):
    """e^x."""
    return np.exp(x)


@op(lambda g, y, x: g / x, spec=Spec(low=0.1, high=3.0, ref=lambda x: np.log2(x) / np.log2(np.e)))
def log(x):
    """Natural logarithm (x > 0)."""
    return np.log(x)


@op(lambda g, y, x: g / (y * 2), spec=Spec(low=0.1, high=3.0, ref=lambda x: x**0.5))
def sqrt(x):
    """Square root (x > 0 for a finite gradient)."""
    return np.sqrt(x)


@op(lambda g, y, x: g * cos(x), spec=Spec(low=-3.0, high=3.0, ref=lambda x: np.cos(x - np.pi / 2)))
def sin(x):
    """sin x."""
    return np.sin(x)


@op(
    lambda g, y, x: -(g * sin(x)),
    spec=Spec(low=-3.0, high=3.0, ref=lambda x: np.sin(x + np.pi / 2)),
)
def cos(x):
    """cos x."""
    return np.cos(x)


@op(
    lambda g, y, x: g * (1 - y * y),
    spec=Spec(ref=lambda x: (np.exp(2 * x) - 1) / (np.exp(2 * x) + 1)),
)
def tanh(x):
    """tanh x; its derivative is 1 - tanh^2 x."""
    return np.tanh(x)


@op(lambda g, y, x: g * np.sign(unwrap(x)), spec=Spec(avoid=(0.0,), ref=lambda x: np.sqrt(x * x)))
def abs(x):
    """|x|; the gradient at 0 is taken as 0."""
    return np.abs(x)


# ================================================================ selection


def _select_vjp(winner, i, g, y, a, b):
    # This input's share: 1 where it wins, 1/2 at a tie, 0 where the other wins.
    mine, other = (unwrap(a), unwrap(b)) if i == 0 else (unwrap(b), unwrap(a))
    share = (winner(mine, other) + (mine == other) * 0.5).astype(unwrap(g).dtype)
    return _unbroadcast(g * share, (a, b)[i])


def _select_case(draw, t):
    a_shape, b_shape = draw(t.broadcastable_shapes(2))
    a = draw(t.arrays(a_shape))
    return (a, draw(t.arrays(b_shape, avoid=tuple(a.ravel())))), {}


@op(partial(_select_vjp, np.greater, 0), partial(_select_vjp, np.greater, 1),
    spec=Spec(case=_select_case, ref=lambda a, b: np.where(a >= b, a, b)))  # fmt: skip
def maximum(a, b):
    """Elementwise max; at a tie the gradient is split evenly between a and b."""
    return np.maximum(a, b)


@op(partial(_select_vjp, np.less, 0), partial(_select_vjp, np.less, 1),
    spec=Spec(case=_select_case, ref=lambda a, b: np.where(a <= b, a, b)))  # fmt: skip
def minimum(a, b):
    """Elementwise min; at a tie the gradient is split evenly between a and b."""
    return np.minimum(a, b)


def _where_case(draw, t):
    c_shape, a_shape, b_shape = draw(t.broadcastable_shapes(3))
    cond = draw(t.arrays(c_shape, dtype=bool))
    return (cond, draw(t.arrays(a_shape)), draw(t.arrays(b_shape))), {}


@op(None,
    lambda g, y, c, a, b: _unbroadcast(where(c, g, 0), a),
    lambda g, y, c, a, b: _unbroadcast(where(c, 0, g), b),
    spec=Spec(case=_where_case, wrt=(1, 2), ref=lambda c, a, b: c * a + ~c * b))  # fmt: skip
def where(cond, a, b):
    """a where cond is true, else b; the branch not taken gets no gradient.

    The classic trap: `where(x > 0, sqrt(x), 0)` still computes sqrt at negative
    x, and backward multiplies its NaN gradient by zero, which is NaN. Mask the
    input before the op instead: `sqrt(where(x > 0, x, 1))`.
    """
    return np.where(cond, a, b)


def _clip_case(draw, t):
    shape = draw(t.shapes())
    lo, hi = sorted(draw(t.sampled([(-1.0, 1.0), (-0.5, 0.7), (0.0, 2.5)])))
    return (draw(t.arrays(shape, avoid=(lo, hi))), lo, hi), {}


@op(lambda g, y, x, lo=None, hi=None: _unbroadcast(g * _inside(unwrap(x), lo, hi), x), None, None,
    spec=Spec(case=_clip_case, wrt=(0,), ref=lambda x, lo, hi: np.minimum(np.maximum(x, lo), hi)))  # fmt: skip
def clip(x, lo=None, hi=None):
    """x limited to [lo, hi]; the gradient passes inside the bounds and at them, as in
    PyTorch and DeZero (so a value that starts at a bound can still move away)."""
    return np.clip(x, lo, hi)


def _inside(x, lo, hi):
    mask = np.ones(x.shape, dtype=bool)
    if lo is not None:
        mask = mask & (x >= lo)  # not &=: array bounds may broadcast x to a larger shape
    if hi is not None:
        mask = mask & (x <= hi)
    return mask


# ================================================================ activations


def _sigmoid_ref(x):
    with np.errstate(over="ignore"):
        return 1 / (1 + np.exp(-x))


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


@op(_sigmoid_vjp, spec=Spec(low=-6.0, high=6.0, ref=_sigmoid_ref))
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


@op(_relu_vjp, spec=Spec(avoid=(0.0,), ref=lambda x: x * (x > 0)))
def relu(x):
    """max(x, 0); relu'(0) is taken as 0."""
    x = np.asarray(x)
    return np.maximum(x, _scalar(0, x.dtype))


def _leaky_slope(x, slope):
    x = np.asarray(unwrap(x))
    dtype = x.dtype if x.dtype.kind == "f" else np.float64  # integers go to float64, as in exp
    return np.where(x > 0, 1, slope).astype(dtype)


def _leaky_case(draw, t):
    shape = draw(t.shapes())
    return (draw(t.arrays(shape, avoid=(0.0,))),), {"slope": draw(t.sampled([0.01, 0.2]))}


@op(lambda g, y, x, slope=0.01: g * _leaky_slope(x, slope),
    spec=Spec(case=_leaky_case, ref=lambda x, slope=0.01: np.maximum(x, slope * x)))  # fmt: skip
def leaky_relu(x, slope=0.01):
    """x for x > 0, slope * x otherwise; the gradient at 0 is taken as slope."""
    return x * _leaky_slope(x, slope)


@op(lambda g, y, x: g * 0, spec=Spec(avoid=(0.0,), ref=lambda x: np.heaviside(x, 0.0)))
def step(x):
    """The step function of the perceptron: 1 for x > 0, else 0.

    Its gradient is zero wherever it exists (everywhere but 0, where it is
    taken as 0 too), which is why learning needs sigmoid or ReLU instead.
    """
    x = np.asarray(x)
    return (x > 0).astype(x.dtype)


# ================================================================ softmax family


def _axis_case(draw, t):
    shape = draw(t.shapes(min_dims=1))
    return (draw(t.arrays(shape, low=-5.0, high=5.0)),), {"axis": draw(t.axes(len(shape)))}


def _softmax_ref(x, axis=-1):
    e = np.exp(x)
    return e / e.sum(axis=axis, keepdims=True)


@op(lambda g, y, x, axis=-1: y * (g - (g * y).sum(axis=axis, keepdims=True)),
    spec=Spec(case=_axis_case, ref=_softmax_ref))  # fmt: skip
def softmax(x, axis=-1):
    """exp(x_k) / sum_i exp(x_i) along axis, shifted by the max so it cannot overflow."""
    e = np.exp(x - _shift(x, axis))
    e /= e.sum(axis=axis, keepdims=True)
    return e


@op(lambda g, y, x, axis=-1: g - exp(y) * g.sum(axis=axis, keepdims=True),
    spec=Spec(case=_axis_case, ref=lambda x, axis=-1: np.log(_softmax_ref(x, axis))))  # fmt: skip
def log_softmax(x, axis=-1):
    """log(softmax(x)) computed as x - logsumexp(x), stable for any x."""
    return x - _logsumexp(x, axis, keepdims=True)


def _shift(x, axis):
    """x's max along axis, kept as a length-1 axis: what exp's argument is shifted by."""
    if x.size == 0:  # NumPy's max has no identity; over nothing, it is -inf
        dtype = x.dtype if x.dtype.kind == "f" else np.float64
        return np.full(_keepdims_shape(x.shape, axis), -np.inf, dtype)
    return x.max(axis=axis, keepdims=True)


def _logsumexp(x, axis, keepdims):
    m = _shift(x, axis)
    finite = np.isfinite(m)
    if not finite.all():  # shift such rows by 0: all -inf gives log 0 = -inf, not -inf - -inf
        m = np.where(finite, m, 0)
    out = np.log(np.exp(x - m).sum(axis=axis, keepdims=True)) + m
    return out if keepdims else out.squeeze(axis)


def _logsumexp_case(draw, t):
    (x,), kw = _axis_case(draw, t)
    return (x,), {**kw, "keepdims": draw(t.booleans())}


@op(lambda g, y, x, axis=-1, keepdims=False:
        _unreduce(g, x.shape, axis, keepdims) * exp(x - _unreduce(y, x.shape, axis, keepdims)),
    spec=Spec(case=_logsumexp_case, ref=lambda x, axis=-1, keepdims=False: np.log(np.exp(x).sum(axis=axis, keepdims=keepdims))))  # fmt: skip
def logsumexp(x, axis=-1, keepdims=False):
    """log(sum(exp(x))) along axis, without overflow."""
    return _logsumexp(x, axis, keepdims)


# ================================================================ reductions


def _reduction_case(draw, t, **kw):
    shape = draw(t.shapes())
    x = draw(t.arrays(shape, **kw))
    return (x,), {
        "axis": draw(t.axes(len(shape), allow_none=True, allow_tuple=True)),
        "keepdims": draw(t.booleans()),
    }


def _max_vjp(g, y, x, axis=None, keepdims=False):
    # Tied maxima share the gradient evenly.
    y_kept = unwrap(y) if keepdims else unwrap(y).reshape(_keepdims_shape(x.shape, axis))
    mask = unwrap(x) == y_kept
    share = (mask / mask.sum(axis=axis, keepdims=True)).astype(unwrap(x).dtype)
    return _unreduce(g, x.shape, axis, keepdims) * share


@op(lambda g, y, x, axis=None, keepdims=False: _unreduce(g, x.shape, axis, keepdims),
    spec=Spec(case=_reduction_case, ref=lambda x, axis=None, keepdims=False: np.add.reduce(x, axis=axis, keepdims=keepdims)))  # fmt: skip
def sum(x, axis=None, keepdims=False):
    """Sum over axis (int, tuple or None for all)."""
    return np.sum(x, axis=axis, keepdims=keepdims)


@op(lambda g, y, x, axis=None, keepdims=False: _unreduce(g, x.shape, axis, keepdims) * (y.size / builtins.max(x.size, 1)),
    spec=Spec(case=_reduction_case, ref=lambda x, axis=None, keepdims=False: np.sum(x, axis=axis, keepdims=keepdims) * (np.sum(x, axis=axis, keepdims=keepdims).size / x.size)))  # fmt: skip
def mean(x, axis=None, keepdims=False):
    """Mean over axis (int, tuple or None for all)."""
    if np.ndim(x) == 0 and axis is not None:  # np.mean refuses the axis 0 that np.sum takes
        return np.mean(np.sum(x, axis=axis, keepdims=keepdims))
    return np.mean(x, axis=axis, keepdims=keepdims)


@op(_max_vjp, spec=Spec(case=partial(_reduction_case, distinct=True), ref=lambda x, axis=None, keepdims=False: -np.min(-x, axis=axis, keepdims=keepdims)))  # fmt: skip
def max(x, axis=None, keepdims=False):
    """Maximum over axis; tied maxima split the gradient evenly."""
    return np.max(x, axis=axis, keepdims=keepdims)


@op(_max_vjp, spec=Spec(case=partial(_reduction_case, distinct=True), ref=lambda x, axis=None, keepdims=False: -np.max(-x, axis=axis, keepdims=keepdims)))  # fmt: skip
def min(x, axis=None, keepdims=False):
    """Minimum over axis; tied minima split the gradient evenly."""
    return np.min(x, axis=axis, keepdims=keepdims)


# ================================================================ shapes and indexing


def _reshape_case(draw, t):
    shape = draw(t.shapes())
    return (draw(t.arrays(shape)), draw(t.reshape_targets(shape))), {}


@op(lambda g, y, x, shape: g.reshape(x.shape), None,
    spec=Spec(case=_reshape_case, wrt=(0,), ref=lambda x, shape: x.ravel().reshape(shape)))  # fmt: skip
def reshape(x, shape):
    """The same elements in a new shape (one entry may be -1)."""
    return np.reshape(x, shape)


def _astype_case(draw, t):
    # float64 to float64: central differences cannot check a rounding cast. The float32
    # cases have their own tests.
    return (draw(t.arrays(draw(t.shapes()))),), {"dtype": np.float64}


@op(lambda g, y, x, dtype: astype(g, unwrap(x).dtype), None, name="astype",
    spec=Spec(case=_astype_case, wrt=(0,), ref=lambda x, dtype: x.astype(dtype), keeps_dtype=False))  # fmt: skip
def _astype(x, dtype):
    return np.asarray(x).astype(dtype)


def astype(x: TensorLike, dtype: Any) -> Any:
    """x converted to dtype (np.ndarray.astype); the gradient is converted back.

    An integer or bool result has no gradient (as in PyTorch): it is not recorded.
    """
    if np.dtype(dtype).kind == "f":
        return _astype(x, dtype)
    with no_grad():
        return _astype(x, dtype)


def _transpose_vjp(g, y, x, axes=None):
    if axes is None:
        return g.transpose()
    inverse = np.argsort([a % x.ndim for a in axes])  # -1 is the last axis, not the first
    return g.transpose(tuple(int(i) for i in inverse))


def _transpose_case(draw, t):
    shape = draw(t.shapes())
    n, axes = len(shape), draw(t.permutations(len(shape)))
    if axes is not None:  # some counted from the end, as -1 for the last
        axes = tuple(a - n if draw(t.booleans()) else a for a in axes)
    return (draw(t.arrays(shape)),), {"axes": axes}


@op(_transpose_vjp, spec=Spec(case=_transpose_case, ref=np.transpose))  # fmt: skip
def transpose(x, axes=None):
    """Permute axes; with no axes, reverse them (NumPy's rule)."""
    return np.transpose(x, axes)


@op(lambda g, y, x, index: _scatter(g, x.shape, index),
    spec=Spec(case=lambda draw, t: t.index_case(draw), ref=lambda x, index: np.take(x.ravel(), np.arange(x.size).reshape(x.shape)[index])))  # fmt: skip
def getitem(x, index):
    """x[index], basic or integer-array indexing; repeated indices sum their gradients."""
    return x[index]


@op(lambda g, y, x, shape, index: getitem(g, index),
    spec=Spec(case=lambda draw, t: t.scatter_case(draw), ref=lambda x, shape, index: _scatter_ref(x, shape, index)), name="getitem_grad")  # fmt: skip
def _scatter(x, shape, index):
    """The gradient of getitem: zeros of `shape` with x added at `index`."""
    out = np.zeros(shape, dtype=x.dtype)
    np.add.at(out, index, x)
    return out


def _scatter_ref(x, shape, index):
    out = np.zeros(shape, dtype=x.dtype)
    flat = np.arange(out.size).reshape(shape)[index]
    np.add.at(out.reshape(-1), np.broadcast_to(flat, x.shape).ravel(), x.ravel())
    return out


def _concat_vjp(i, g, y, *xs, axis=0):
    shapes = [np.shape(x) for x in xs]  # an input may be a list
    if axis is None:  # np.concatenate flattened every input first
        start = builtins.sum(math.prod(shape) for shape in shapes[:i])
        return g[start : start + math.prod(shapes[i])].reshape(shapes[i])
    axis = axis % y.ndim
    start = builtins.sum(shape[axis] for shape in shapes[:i])
    return g[(slice(None),) * axis + (slice(start, start + shapes[i][axis]),)]


def _stack_vjp(i, g, y, *xs, axis=0):
    return g[(slice(None),) * (axis % y.ndim) + (i,)]


@op(VariadicVJP(_concat_vjp), spec=Spec(case=lambda draw, t: t.concat_case(draw, same_shape=False), ref=lambda *xs, axis=0: np.concatenate(xs, axis)), name="concat")  # fmt: skip
def _concat(*xs, axis=0):
    return np.concatenate(xs, axis=axis)


@op(VariadicVJP(_stack_vjp), spec=Spec(case=lambda draw, t: t.concat_case(draw, same_shape=True), ref=lambda *xs, axis=0: np.stack(xs, axis)), name="stack")  # fmt: skip
def _stack(*xs, axis=0):
    return np.stack(xs, axis=axis)


def concat(xs: list[TensorLike], axis: int = 0) -> Tensor:
    """Join tensors along an existing axis (np.concatenate)."""
    return _concat(*xs, axis=axis)


def stack(xs: list[TensorLike], axis: int = 0) -> Tensor:
    """Join same-shaped tensors along a new axis (np.stack)."""
    return _stack(*xs, axis=axis)


# ================================================================ losses and layers


def _dropout_case(draw, t):
    shape = draw(t.shapes())
    return (draw(t.arrays(shape)),), {"p": draw(t.sampled([0.2, 0.5])), "rng": draw(t.sides(1))[0]}


@register(
    Spec(
        case=_dropout_case,
        ref=lambda x, p, rng: x * (np.random.default_rng(rng).random(x.shape) >= p) / (1 - p),
    )
)
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
        # C order, so that reshape gives a view (transposed logits give F-ordered arrays)
        p = np.multiply(probabilities, scale, order="C")
        p.reshape(-1)[picked] -= scale
    return p


def _sce_case(draw, t):
    n, c = draw(t.sides(2))
    x = draw(t.arrays((n, c), low=-4.0, high=4.0))
    kind = draw(t.sampled(["index", "one-hot", "rows"]))
    labels = draw(t.class_labels(n, c))
    if kind == "one-hot":
        labels = np.eye(c)[labels]
    elif kind == "rows":  # soft or masked labels: rows of any weights, not summing to 1
        labels = draw(t.arrays((n, c), low=0.0, high=1.0))
    return (x, labels), {}


def _sce_ref(x, t):
    p = _softmax_ref(x)
    n = x.shape[0] if x.ndim == 2 else 1
    return -np.sum(_one_hot_of(t, x) * np.log(p)) / n


@op(_sce_vjp, None, spec=Spec(case=_sce_case, wrt=(0,), ref=_sce_ref), saves=True,
    check=partial(_check_labels, "softmax_cross_entropy"))  # fmt: skip
def softmax_cross_entropy(x, t):
    """Cross-entropy of softmax(x) against labels t, averaged over the batch.

    x holds scores (logits) of shape (N, C); t holds class indices (N,) or
    rows (N, C): one-hot, or class weights such as smoothed labels (the loss
    is then -sum_k t_k log softmax(x)_k per row). Fused: -log softmax(x)_t =
    log(sum_k exp(a_k)) - a_t with a = x - max(x) (no overflow), and the
    gradient is the book's (softmax(x) - onehot(t)) / N from the softmax (and
    the label positions) the forward saves; for rows, softmax(x) sum_k t_k - t.
    """
    n = x.shape[0] if x.ndim == 2 else 1
    a = x - x.max(axis=-1, keepdims=True)
    p = np.exp(a)
    total = p.sum(axis=-1, keepdims=True)
    if np.shape(t) == x.shape:
        picked = None
        loss = -(t * (a - np.log(total))).sum()
    else:
        picked = _label_index("softmax_cross_entropy", x, t)
        loss = np.log(total).sum() - a.take(picked).sum()
    p /= total
    return np.asarray(loss / n, dtype=p.dtype), (p, picked)


def _probabilities_case(draw, t):
    n, c = draw(t.sides(2))
    y = draw(t.arrays((n, c), low=0.05, high=1.0))
    labels = draw(t.class_labels(n, c))
    return (y, np.eye(c)[labels] if draw(t.booleans()) else labels), {}


@register(Spec(case=_probabilities_case, wrt=(0,),
               ref=lambda y, t: -np.sum(_one_hot_of(t, y) * np.log(y + 1e-7)) / (y.shape[0] if y.ndim == 2 else 1)))  # fmt: skip
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


def _pair_case(draw, t):
    shape = draw(t.shapes(min_dims=1))
    return (draw(t.arrays(shape)), draw(t.arrays(shape))), {}


@register(
    Spec(
        case=_pair_case,
        ref=lambda y, t: 0.5 * np.sum((y - t) ** 2) / (y.shape[0] if y.ndim >= 2 else 1),
    )
)
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


def _binary_case(draw, t):
    shape = draw(t.shapes(min_dims=1))
    x = draw(t.arrays(shape, low=-4.0, high=4.0))
    labels = draw(t.arrays(shape, dtype=bool)).astype(np.float64)
    return (x, labels), {}


@register(Spec(case=_binary_case, wrt=(0,),
               ref=lambda x, t: -np.sum(t * np.log(_sigmoid_ref(x)) + (1 - t) * np.log(1 - _sigmoid_ref(x))) / x.shape[0]))  # fmt: skip
def sigmoid_cross_entropy(x: TensorLike, t: TensorLike) -> Tensor:
    """Binary cross-entropy of sigmoid(x) against 0/1 labels t, averaged over axis 0.

    Computed as softplus(x) - x t, with softplus(x) = log(exp(0) + exp(x)) as a
    logsumexp, which never overflows and whose gradient, sigmoid(x), is right at
    x = 0 (relu(x) + log(1 + exp(-|x|)) has two kinks there, and gave 0, not 1/2).
    """
    data = unwrap(x)
    if data.shape != np.shape(unwrap(t)):
        raise ValueError(
            f"sigmoid_cross_entropy: x has shape {data.shape} but t has shape {np.shape(unwrap(t))}"
        )
    loss = logsumexp(stack([np.zeros_like(data), x]), axis=0) - x * _labels_like(t, data)
    return sum(loss) / (data.shape[0] if data.ndim else 1)


def _accuracy_case(draw, t):
    n, c = draw(t.sides(2))
    labels = draw(t.class_labels(n, c))
    return (draw(t.arrays((n, c))), labels), {}


@register(Spec(case=_accuracy_case, differentiable=False,
               ref=lambda y, t: np.count_nonzero(np.argmax(y, axis=1) == t) / len(t)))  # fmt: skip
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


from minigrad.conv import avg_pool2d, batch_norm, col2im, conv2d, flatten, im2col, max_pool2d  # noqa: E402, F401
