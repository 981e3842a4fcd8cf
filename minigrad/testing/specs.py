"""How to test each op: the `Spec` type and `SPECS`, one entry per registered op.

A spec says how to draw valid calls of its op with hypothesis (a case
generator, or the elementwise default: `arity` broadcastable arrays in
[low, high], kept away from `avoid`) and gives an independent NumPy reference
for the forward. `tests/test_ops.py` runs every op in `minigrad.OPS` against
its entry here (forward against `ref`, first and second derivatives against
central differences, the invariants), and fails for an op without one.

A case generator takes hypothesis's `draw` and returns one call as
`(args, kwargs)`. The sections below follow the modules of
`minigrad.functional`; the table at the end has the same sections.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np
from hypothesis import strategies as st

from minigrad.testing.strategies import (
    MAX_SIDE,
    arrays,
    axes,
    booleans,
    broadcast_targets,
    broadcastable_shapes,
    class_labels,
    indices,
    permutations,
    reduce_targets,
    reshape_targets,
    sampled,
    shapes,
    sides,
)


@dataclass(frozen=True)
class Spec:
    """What the gradient checker needs to test one op.

    `case(draw)` draws one valid call as `(args, kwargs)`; without it the op is
    elementwise over `arity` broadcastable arrays with values in [low, high]
    kept away from the points in `avoid`. `wrt` lists the argument positions to
    differentiate (default: every float array). `ref` is an independent NumPy
    reference for the forward. `second_order` is False for an op whose second
    derivatives are not to be checked, `differentiable` False for one with no
    gradient at all (accuracy), and `keeps_dtype` False for an op whose output
    dtype is an argument (astype).
    """

    arity: int = 1
    low: float = -2.0
    high: float = 2.0
    avoid: tuple[float, ...] = ()
    case: Callable[[Callable], tuple[tuple, dict]] | None = None
    wrt: tuple[int, ...] | None = None
    ref: Callable[..., Any] | None = None
    second_order: bool = True
    differentiable: bool = True
    keeps_dtype: bool = True


# ================================================================ broadcasting


def _broadcast_case(draw):
    shape = draw(shapes())
    return (draw(arrays(shape)), draw(broadcast_targets(shape))), {}


def _sum_to_case(draw):
    shape = draw(shapes())
    return (draw(arrays(shape)), draw(reduce_targets(shape))), {}


def _sum_to_ref(x, shape):
    lead = x.reshape((-1,) + x.shape[x.ndim - len(shape) :]).sum(axis=0)
    return lead.sum(axis=tuple(i for i, n in enumerate(shape) if n == 1), keepdims=True)


# ================================================================ selection


def _select_case(draw):
    a_shape, b_shape = draw(broadcastable_shapes(2))
    a = draw(arrays(a_shape))
    return (a, draw(arrays(b_shape, avoid=tuple(a.ravel())))), {}


def _where_case(draw):
    c_shape, a_shape, b_shape = draw(broadcastable_shapes(3))
    cond = draw(arrays(c_shape, dtype=bool))
    return (cond, draw(arrays(a_shape)), draw(arrays(b_shape))), {}


def _clip_case(draw):
    shape = draw(shapes())
    lo, hi = sorted(draw(sampled([(-1.0, 1.0), (-0.5, 0.7), (0.0, 2.5)])))
    return (draw(arrays(shape, avoid=(lo, hi))), lo, hi), {}


# ================================================================ arithmetic


def _pow_case(draw):
    a_shape, b_shape = draw(broadcastable_shapes(2))
    return (draw(arrays(a_shape, low=0.2, high=2.0)), draw(arrays(b_shape))), {}


# ================================================================ linear algebra


def _matmul_case(draw):
    n, k, m = draw(sides(3))
    batch = draw(shapes(max_dims=2))
    a_shape = draw(sampled([(k,), batch + (n, k), (n, k)]))
    b_shape = draw(sampled([(k,), (k, m), batch + (k, m)]))
    return (draw(arrays(a_shape)), draw(arrays(b_shape))), {}


def _dot_case(draw):
    n, k, m = draw(sides(3))
    a_shape = draw(sampled([(k,), (n, k)]))
    b_shape = draw(sampled([(k,), (k, m)]))
    return (draw(arrays(a_shape)), draw(arrays(b_shape))), {}


def _linear_case(draw):
    n, k, m = draw(sides(3))
    batch = draw(shapes(max_dims=1))
    w_shape = draw(sampled([(k, m), (k,)]))
    x_shape = draw(sampled([(k,), (n, k), batch + (n, k)]))
    args = (draw(arrays(x_shape)), draw(arrays(w_shape)))
    if draw(booleans()):
        args += (draw(arrays(w_shape[1:])),)
    return args, {}


# ================================================================ activations


def _sigmoid_ref(x):
    with np.errstate(over="ignore"):
        return 1 / (1 + np.exp(-x))


def _leaky_relu_case(draw):
    x = draw(arrays(draw(shapes()), avoid=(0.0,)))
    return (x,), {"slope": draw(sampled([0.01, 0.2]))}


# ================================================================ softmax family


def _axis_case(draw):
    shape = draw(shapes(min_dims=1))
    return (draw(arrays(shape, low=-5.0, high=5.0)),), {"axis": draw(axes(len(shape)))}


def _logsumexp_case(draw):
    args, kwargs = _axis_case(draw)
    return args, {**kwargs, "keepdims": draw(booleans())}


def _softmax_ref(x, axis=-1):
    e = np.exp(x)
    return e / e.sum(axis=axis, keepdims=True)


def _logsumexp_ref(x, axis=-1, keepdims=False):
    return np.log(np.exp(x).sum(axis=axis, keepdims=keepdims))


# ================================================================ reductions


def _reduction_case(draw, distinct=False):
    shape = draw(shapes())
    x = draw(arrays(shape, distinct=distinct))
    axis = draw(axes(len(shape), allow_none=True, allow_tuple=True))
    return (x,), {"axis": axis, "keepdims": draw(booleans())}


def _mean_ref(x, axis=None, keepdims=False):
    total = np.sum(x, axis=axis, keepdims=keepdims)
    return total * (total.size / x.size)


# ================================================================ shapes and indexing


def _reshape_case(draw):
    shape = draw(shapes())
    return (draw(arrays(shape)), draw(reshape_targets(shape))), {}


def _astype_case(draw):
    # float64 to float64: central differences cannot check a rounding cast. The float32
    # cases have their own tests.
    return (draw(arrays(draw(shapes()))),), {"dtype": np.float64}


def _transpose_case(draw):
    shape = draw(shapes())
    n, order = len(shape), draw(permutations(len(shape)))
    if order is not None:  # some counted from the end, as -1 for the last
        order = tuple(a - n if draw(booleans()) else a for a in order)
    return (draw(arrays(shape)),), {"axes": order}


def _getitem_case(draw):
    shape = draw(shapes(min_dims=1))
    return (draw(arrays(shape)), draw(indices(shape))), {}


def _getitem_ref(x, index):
    return np.take(x.ravel(), np.arange(x.size).reshape(x.shape)[index])


def _scatter_case(draw):
    shape = draw(shapes(min_dims=1))
    index = draw(indices(shape))
    picked = np.zeros(shape)[index].shape
    return (draw(arrays(picked)), shape, index), {}


def _scatter_ref(x, shape, index):
    out = np.zeros(shape, dtype=x.dtype)
    flat = np.arange(out.size).reshape(shape)[index]
    np.add.at(out.reshape(-1), np.broadcast_to(flat, x.shape).ravel(), x.ravel())
    return out


def _join_case(draw, same_shape):
    shape = draw(shapes(min_dims=1, max_dims=3))
    axis = draw(st.integers(-len(shape), len(shape) - 1))
    parts = []
    for _ in range(draw(st.integers(1, 3))):
        part = list(shape)
        if not same_shape:
            part[axis] = draw(st.integers(1, MAX_SIDE))
        parts.append(draw(arrays(tuple(part))))
    if same_shape:  # stack's new axis may also go after the last
        axis = draw(st.integers(-len(shape) - 1, len(shape)))
    return tuple(parts), {"axis": axis}


# ================================================================ losses and layers


def _dropout_case(draw):
    x = draw(arrays(draw(shapes())))
    return (x,), {"p": draw(sampled([0.2, 0.5])), "rng": draw(sides(1))[0]}


def _dropout_ref(x, p, rng):
    return x * (np.random.default_rng(rng).random(x.shape) >= p) / (1 - p)


def _one_hot_ref(t, x):
    """Labels t as rows shaped like x: class indices become one-hot, rows stay."""
    return t if np.shape(t) == x.shape else np.eye(x.shape[-1])[t]


def _batch_size(x):
    return x.shape[0] if x.ndim == 2 else 1


def _softmax_cross_entropy_case(draw):
    n, c = draw(sides(2))
    x = draw(arrays((n, c), low=-4.0, high=4.0))
    kind = draw(sampled(["index", "one-hot", "rows"]))
    labels = draw(class_labels(n, c))
    if kind == "one-hot":
        labels = np.eye(c)[labels]
    elif kind == "rows":  # soft or masked labels: rows of any weights, not summing to 1
        labels = draw(arrays((n, c), low=0.0, high=1.0))
    return (x, labels), {}


def _softmax_cross_entropy_ref(x, t):
    return -np.sum(_one_hot_ref(t, x) * np.log(_softmax_ref(x))) / _batch_size(x)


def _cross_entropy_error_case(draw):
    n, c = draw(sides(2))
    y = draw(arrays((n, c), low=0.05, high=1.0))
    labels = draw(class_labels(n, c))
    return (y, np.eye(c)[labels] if draw(booleans()) else labels), {}


def _cross_entropy_error_ref(y, t):
    return -np.sum(_one_hot_ref(t, y) * np.log(y + 1e-7)) / _batch_size(y)


def _mean_squared_error_case(draw):
    shape = draw(shapes(min_dims=1))
    return (draw(arrays(shape)), draw(arrays(shape))), {}


def _mean_squared_error_ref(y, t):
    return 0.5 * np.sum((y - t) ** 2) / (y.shape[0] if y.ndim >= 2 else 1)


def _sigmoid_cross_entropy_case(draw):
    shape = draw(shapes(min_dims=1))
    x = draw(arrays(shape, low=-4.0, high=4.0))
    labels = draw(arrays(shape, dtype=bool)).astype(np.float64)
    return (x, labels), {}


def _sigmoid_cross_entropy_ref(x, t):
    p = _sigmoid_ref(x)
    return -np.sum(t * np.log(p) + (1 - t) * np.log(1 - p)) / x.shape[0]


def _accuracy_case(draw):
    n, c = draw(sides(2))
    labels = draw(class_labels(n, c))
    return (draw(arrays((n, c))), labels), {}


def _accuracy_ref(y, t):
    return np.count_nonzero(np.argmax(y, axis=1) == t) / len(t)


# ================================================================ convolutional networks
#
# NumPy references written without im2col: loops over output positions. Sizes are small,
# so that full Jacobians, second order included, stay quick.


def _side(draw, pair: tuple[int, int]) -> Any:
    """A pair, or sometimes the int it repeats (both forms are accepted)."""
    return pair[0] if pair[0] == pair[1] and draw(booleans()) else pair


def _window_case(draw, pool: bool) -> tuple[tuple, Any, Any, Any]:
    """An image shape (N, C, H, W) and a kernel, stride and pad: kernels 1-3 (1x1 and
    non-square too), strides 1-3 (larger than the kernel too), padding 0-2 (smaller than
    the kernel for pooling), images 1-4 high and wide but not smaller than the kernel."""
    kernel = (draw(sampled([1, 2, 3])), draw(sampled([1, 2, 3])))
    stride = (draw(sampled([1, 2, 3])), draw(sampled([1, 2, 3])))
    pad = tuple(draw(sampled(range(min(2, k - 1) + 1 if pool else 3))) for k in kernel)
    h, w = (draw(sampled(range(max(1, k - 2 * p), 5))) for k, p in zip(kernel, pad, strict=True))
    shape = (draw(sampled([1, 2])), draw(sampled([1, 2])), h, w)
    return shape, _side(draw, kernel), _side(draw, stride), _side(draw, pad)


def _ref_windows(x, kernel, stride, pad, fill=0.0):
    """{(i, j): the window at output position (i, j), all images and channels}."""
    (kh, kw), (sh, sw), (ph, pw) = (np.broadcast_to(v, 2).tolist() for v in (kernel, stride, pad))
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=fill)
    oh, ow = (xp.shape[2] - kh) // sh + 1, (xp.shape[3] - kw) // sw + 1
    return {
        (i, j): xp[:, :, i * sh : i * sh + kh, j * sw : j * sw + kw]
        for i in range(oh)
        for j in range(ow)
    }, (oh, ow)


def _im2col_case(draw):
    shape, kernel, stride, pad = _window_case(draw, pool=False)
    return (draw(arrays(shape)), kernel), {"stride": stride, "pad": pad}


def _im2col_ref(x, kernel_size, stride=1, pad=0):
    windows, _ = _ref_windows(x, kernel_size, stride, pad)
    return np.array([windows[ij][n].ravel() for n in range(len(x)) for ij in windows])


def _col2im_case(draw):
    shape, kernel, stride, pad = _window_case(draw, pool=False)
    windows, _ = _ref_windows(np.zeros(shape), kernel, stride, pad)
    rows = shape[0] * len(windows)
    size = next(iter(windows.values()))[0].size
    return (draw(arrays((rows, size))), shape, kernel), {"stride": stride, "pad": pad}


def _col2im_ref(col, input_shape, kernel_size, stride=1, pad=0):
    (sh, sw), (ph, pw) = (np.broadcast_to(v, 2).tolist() for v in (stride, pad))
    n, c, h, w = input_shape
    windows, (oh, ow) = _ref_windows(np.zeros(input_shape), kernel_size, stride, pad)
    kh, kw = next(iter(windows.values())).shape[2:]
    xp = np.zeros((n, c, h + 2 * ph, w + 2 * pw))
    for row, (image, i, j) in enumerate(np.ndindex(n, oh, ow)):
        xp[image, :, i * sh : i * sh + kh, j * sw : j * sw + kw] += col[row].reshape(c, kh, kw)
    return xp[:, :, ph : ph + h, pw : pw + w]


def _conv2d_case(draw):
    (n, c, h, w), kernel, stride, pad = _window_case(draw, pool=False)
    kh, kw = np.broadcast_to(kernel, 2).tolist()
    filters = draw(sampled([1, 2]))
    args = (draw(arrays((n, c, h, w))), draw(arrays((filters, c, kh, kw))))
    if draw(booleans()):
        args += (draw(arrays((filters,))),)
    return args, {"stride": stride, "pad": pad}


def _conv2d_ref(x, W, b=None, stride=1, pad=0):
    windows, (oh, ow) = _ref_windows(x, W.shape[2:], stride, pad)
    out = np.zeros((len(x), len(W), oh, ow))
    for (i, j), window in windows.items():
        out[:, :, i, j] = np.einsum("nchw,fchw->nf", window, W)
    return out if b is None else out + b[:, None, None]


def _pool_case(draw, distinct: bool):
    shape, kernel, stride, pad = _window_case(draw, pool=True)
    if draw(booleans()):  # the default: stride = kernel_size
        stride = None
    x = draw(arrays(shape, distinct=distinct))  # distinct: no ties, where max has a kink
    return (x, kernel), {"stride": stride, "pad": pad}


def _max_pool2d_case(draw):
    return _pool_case(draw, distinct=True)


def _max_pool2d_ref(x, kernel_size, stride=None, pad=0):
    stride = kernel_size if stride is None else stride
    windows, (oh, ow) = _ref_windows(x, kernel_size, stride, pad, fill=-np.inf)
    out = np.zeros((*x.shape[:2], oh, ow))
    for (i, j), window in windows.items():
        out[:, :, i, j] = window.max(axis=(2, 3))
    return out


def _avg_pool2d_case(draw):
    return _pool_case(draw, distinct=False)


def _avg_pool2d_ref(x, kernel_size, stride=None, pad=0):
    stride = kernel_size if stride is None else stride
    windows, (oh, ow) = _ref_windows(x, kernel_size, stride, pad)
    out = np.zeros((*x.shape[:2], oh, ow))
    for (i, j), window in windows.items():
        out[:, :, i, j] = window.sum(axis=(2, 3)) / (window.shape[2] * window.shape[3])
    return out


def _batch_norm_case(draw):
    if draw(booleans()):
        shape = (draw(sampled([2, 3])), draw(sampled([1, 2, 3])))
    else:
        shape = (draw(sampled([1, 2])), draw(sampled([1, 2])), 2, draw(sampled([1, 2])))
    d = shape[1]
    # distinct: every feature's values spread out, so var + eps is far from 0
    x = draw(arrays(shape, distinct=True))
    gamma, beta = draw(arrays((d,), low=0.5, high=2.0)), draw(arrays((d,)))
    running = (draw(arrays((d,))), draw(arrays((d,), low=0.5, high=2.0)))
    return (x, gamma, beta, *running), {"training": draw(booleans())}


def _batch_norm_ref(x, gamma, beta, running_mean, running_var, training=True, momentum=0.9,
                    eps=1e-5):  # fmt: skip
    axes = (0,) if x.ndim == 2 else (0, 2, 3)
    shape = [1] * x.ndim
    shape[1] = x.shape[1]
    if training:
        m, v = x.mean(axis=axes, keepdims=True), x.var(axis=axes, keepdims=True)
    else:
        m, v = running_mean.reshape(shape), running_var.reshape(shape)
    return gamma.reshape(shape) * (x - m) / np.sqrt(v + eps) + beta.reshape(shape)


def _flatten_case(draw):
    return (draw(arrays(draw(shapes(min_dims=1)))),), {}


def _flatten_ref(x):
    return np.array([sample.ravel() for sample in x]).reshape(len(x), -1)


# ================================================================ the table

SPECS: dict[str, Spec] = {
    # ---------------------------------------------------------------- broadcasting
    "sum_to": Spec(case=_sum_to_case, wrt=(0,), ref=_sum_to_ref),
    "broadcast_to": Spec(case=_broadcast_case, wrt=(0,), ref=lambda x, shape: x + np.zeros(shape)),
    # ---------------------------------------------------------------- elementwise math
    "exp": Spec(ref=lambda x: np.e**x),
    "log": Spec(low=0.1, high=3.0, ref=lambda x: np.log2(x) / np.log2(np.e)),
    "sqrt": Spec(low=0.1, high=3.0, ref=lambda x: x**0.5),
    "sin": Spec(low=-3.0, high=3.0, ref=lambda x: np.cos(x - np.pi / 2)),
    "cos": Spec(low=-3.0, high=3.0, ref=lambda x: np.sin(x + np.pi / 2)),
    "tanh": Spec(ref=lambda x: (np.exp(2 * x) - 1) / (np.exp(2 * x) + 1)),
    "abs": Spec(avoid=(0.0,), ref=lambda x: np.sqrt(x * x)),
    # ---------------------------------------------------------------- selection
    "maximum": Spec(case=_select_case, ref=lambda a, b: np.where(a >= b, a, b)),
    "minimum": Spec(case=_select_case, ref=lambda a, b: np.where(a <= b, a, b)),
    "where": Spec(case=_where_case, wrt=(1, 2), ref=lambda c, a, b: c * a + ~c * b),
    "clip": Spec(
        case=_clip_case, wrt=(0,), ref=lambda x, lo, hi: np.minimum(np.maximum(x, lo), hi)
    ),
    # ---------------------------------------------------------------- arithmetic
    "add": Spec(arity=2, ref=lambda a, b: a + b),
    "sub": Spec(arity=2, ref=lambda a, b: a - b),
    "mul": Spec(arity=2, ref=lambda a, b: a * b),
    "div": Spec(arity=2, avoid=(0.0,), ref=lambda a, b: a / b),
    "neg": Spec(ref=lambda x: 0 - x),
    "pow": Spec(case=_pow_case, ref=lambda a, b: np.exp(b * np.log(a))),
    # ---------------------------------------------------------------- linear algebra
    "matmul": Spec(case=_matmul_case, ref=np.matmul),
    "dot": Spec(case=_dot_case, ref=np.dot),
    "linear": Spec(case=_linear_case, ref=lambda x, w, b=None: x @ w + (0 if b is None else b)),
    # ---------------------------------------------------------------- activations
    "sigmoid": Spec(low=-6.0, high=6.0, ref=_sigmoid_ref),
    "log_sigmoid": Spec(low=-6.0, high=6.0, ref=lambda x: -np.log(1 + np.exp(-x))),
    "relu": Spec(avoid=(0.0,), ref=lambda x: x * (x > 0)),
    "leaky_relu": Spec(case=_leaky_relu_case, ref=lambda x, slope: np.maximum(x, slope * x)),
    "step": Spec(avoid=(0.0,), ref=lambda x: np.heaviside(x, 0.0)),
    # ---------------------------------------------------------------- softmax family
    "softmax": Spec(case=_axis_case, ref=_softmax_ref),
    "log_softmax": Spec(case=_axis_case, ref=lambda x, axis: np.log(_softmax_ref(x, axis))),
    "logsumexp": Spec(case=_logsumexp_case, ref=_logsumexp_ref),
    # ---------------------------------------------------------------- reductions
    "sum": Spec(case=_reduction_case, ref=np.add.reduce),
    "mean": Spec(case=_reduction_case, ref=_mean_ref),
    "max": Spec(
        case=partial(_reduction_case, distinct=True),
        ref=lambda x, axis, keepdims: -np.min(-x, axis=axis, keepdims=keepdims),
    ),
    "min": Spec(
        case=partial(_reduction_case, distinct=True),
        ref=lambda x, axis, keepdims: -np.max(-x, axis=axis, keepdims=keepdims),
    ),
    # ---------------------------------------------------------------- shapes and indexing
    "reshape": Spec(case=_reshape_case, wrt=(0,), ref=lambda x, shape: x.ravel().reshape(shape)),
    "astype": Spec(
        case=_astype_case, wrt=(0,), ref=lambda x, dtype: x.astype(dtype), keeps_dtype=False
    ),
    "transpose": Spec(case=_transpose_case, ref=np.transpose),
    "getitem": Spec(case=_getitem_case, ref=_getitem_ref),
    "getitem_grad": Spec(case=_scatter_case, ref=_scatter_ref),
    "concat": Spec(
        case=partial(_join_case, same_shape=False),
        ref=lambda *xs, axis: np.concatenate(xs, axis),
    ),
    "stack": Spec(
        case=partial(_join_case, same_shape=True), ref=lambda *xs, axis: np.stack(xs, axis)
    ),
    # ---------------------------------------------------------------- losses and layers
    "dropout": Spec(case=_dropout_case, ref=_dropout_ref),
    "softmax_cross_entropy": Spec(
        case=_softmax_cross_entropy_case, wrt=(0,), ref=_softmax_cross_entropy_ref
    ),
    "cross_entropy_error": Spec(
        case=_cross_entropy_error_case, wrt=(0,), ref=_cross_entropy_error_ref
    ),
    "mean_squared_error": Spec(case=_mean_squared_error_case, ref=_mean_squared_error_ref),
    "sigmoid_cross_entropy": Spec(
        case=_sigmoid_cross_entropy_case, wrt=(0,), ref=_sigmoid_cross_entropy_ref
    ),
    "accuracy": Spec(case=_accuracy_case, differentiable=False, ref=_accuracy_ref),
    # ---------------------------------------------------------------- convolutional networks
    "im2col": Spec(case=_im2col_case, ref=_im2col_ref),
    "col2im": Spec(case=_col2im_case, ref=_col2im_ref),
    "conv2d": Spec(case=_conv2d_case, ref=_conv2d_ref),
    "max_pool2d": Spec(case=_max_pool2d_case, ref=_max_pool2d_ref),
    "avg_pool2d": Spec(case=_avg_pool2d_case, ref=_avg_pool2d_ref),
    "batch_norm": Spec(case=_batch_norm_case, wrt=(0, 1, 2), ref=_batch_norm_ref),
    "flatten": Spec(case=_flatten_case, ref=_flatten_ref),
}
