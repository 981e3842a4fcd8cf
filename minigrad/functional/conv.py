"""Convolutional networks' ops (the book's chapters 7 and 8): im2col and col2im, conv2d,
max and average pooling, batch normalization, flatten.

Images are (N, C, H, W) and filters (FN, C, FH, FW), as the book and PyTorch
lay them out; `kernel_size`, `stride` and `pad` take an int or a (height,
width) pair. The output's side is the book's eq. 7.1:

    OH = (H + 2 * pad - FH) // stride + 1

Speed comes from three things: a window view of the input
(`sliding_window_view`, nothing copied until the windows are laid out), one
matrix product per convolution, and gradients that go back to the input by
a loop over the FH * FW kernel offsets (each a strided slice of the whole
batch), never over pixels; at stride 1, a convolution's input gradient is
itself one window layout and one product (see `_conv2d_vjp_x`).

The VJPs have two paths, as `softmax_cross_entropy`'s does: on arrays (a
first-order backward) they use that fast layout and what the forward saved;
on tensors (`create_graph=True`) they are the same gradient written with ops
(`im2col`, `col2im`, `matmul`, ...), so it can be differentiated again. The
registry's test that the recorded gradient equals the plain one keeps the
two paths together.

How the gradient checker draws these ops' inputs, and their NumPy
references (loops over output positions, not im2col), are in
`minigrad.testing.specs`.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any, NamedTuple

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from minigrad.engine import Tensor, TensorLike, unwrap
from minigrad.functional.elementwise import sqrt
from minigrad.functional.reductions import mean
from minigrad.functional.shapes import reshape
from minigrad.ops import op, register

Pair = int | tuple[int, int]


# ================================================================ window geometry


class _Geometry(NamedTuple):
    kernel: tuple[int, int]
    stride: tuple[int, int]
    pad: tuple[int, int]
    out: tuple[int, int]  # OH, OW


def _is_int(v: Any) -> bool:
    return isinstance(v, int | np.integer) and not isinstance(v, bool | np.bool_)


def _pair(value: Any, what: str, minimum: int) -> tuple[int, int]:
    if _is_int(value):
        pair = (int(value), int(value))
    elif isinstance(value, tuple | list) and len(value) == 2 and all(map(_is_int, value)):
        pair = (int(value[0]), int(value[1]))
    else:
        raise TypeError(f"{what} must be an int or a pair of ints (height, width), got {value!r}")
    if min(pair) < minimum:
        raise ValueError(f"{what} must be at least {minimum}, got {value!r}")
    return pair


def _images(name: str, x: Any, what: str = "x") -> None:
    if not isinstance(x, np.ndarray):  # the VJPs need arrays, as matmul's do
        raise TypeError(
            f"{name} takes arrays or tensors, got a {type(x).__name__}: convert it first "
            "(np.asarray(...) or mg.tensor(...))"
        )
    if x.ndim != 4:
        raise ValueError(
            f"{name}: {what} must be images of shape (N, C, H, W), got {x.ndim}-d shape {x.shape}"
        )


def _geometry(name: str, shape: tuple, kernel_size: Any, stride: Any, pad: Any) -> _Geometry:
    """Kernel, stride and padding as pairs, and the output's height and width (eq. 7.1)."""
    kernel = _pair(kernel_size, f"{name}: kernel_size", 1)
    steps = _pair(stride, f"{name}: stride", 1)
    padding = _pair(pad, f"{name}: pad", 0)
    padded = (shape[2] + 2 * padding[0], shape[3] + 2 * padding[1])
    if kernel[0] > padded[0] or kernel[1] > padded[1]:
        raise ValueError(
            f"{name}: the {kernel[0]}x{kernel[1]} kernel is larger than the padded input, "
            f"{padded[0]}x{padded[1]} (H + 2 * pad by W + 2 * pad); pad more or use a smaller kernel"
        )
    out = ((padded[0] - kernel[0]) // steps[0] + 1, (padded[1] - kernel[1]) // steps[1] + 1)
    return _Geometry(kernel, steps, padding, out)


def _pad(x: np.ndarray, pad: tuple[int, int], value: float = 0) -> np.ndarray:
    ph, pw = pad
    if not (ph or pw):
        return x
    n, c, h, w = x.shape
    xp = np.full((n, c, h + 2 * ph, w + 2 * pw), value, dtype=x.dtype)
    xp[:, :, ph : ph + h, pw : pw + w] = x
    return xp


def _crop(xp: np.ndarray, pad: tuple[int, int]) -> np.ndarray:
    ph, pw = pad
    if not (ph or pw):
        return xp
    return xp[:, :, ph : xp.shape[2] - ph, pw : xp.shape[3] - pw]


def _offsets(g: _Geometry) -> Iterator[tuple[int, int, tuple]]:
    """(i, j, index) for each kernel offset: xp[index] is the (N, C, OH, OW) array of the
    entries that every window has at its row i, column j."""
    (kh, kw), (sh, sw), (oh, ow) = g.kernel, g.stride, g.out
    for i in range(kh):
        for j in range(kw):
            rows = slice(i, i + sh * (oh - 1) + 1, sh)
            yield i, j, (slice(None), slice(None), rows, slice(j, j + sw * (ow - 1) + 1, sw))


def _windows(x: np.ndarray, g: _Geometry, value: float = 0) -> np.ndarray:
    """A read-only (N, C, OH, OW, FH, FW) view of every window of x padded with `value`."""
    view = sliding_window_view(_pad(x, g.pad, value), g.kernel, axis=(2, 3))
    return view[:, :, :: g.stride[0], :: g.stride[1]]


def _fold(cols: np.ndarray, shape: tuple, g: _Geometry) -> np.ndarray:
    """The adjoint of laying out windows: each window's entries added back where they came
    from. `cols[:, :, i, j]` is the (N, C, OH, OW) array of offset (i, j)."""
    n, c, h, w = shape
    xp = np.zeros((n, c, h + 2 * g.pad[0], w + 2 * g.pad[1]), cols.dtype)
    for i, j, index in _offsets(g):
        xp[index] += cols[:, :, i, j]
    return _crop(xp, g.pad)


def _float(dtype: np.dtype) -> np.dtype:
    return dtype if dtype.kind == "f" else np.dtype(np.float64)


# ================================================================ im2col and col2im


def _im2col_vjp(g, y, x, kernel_size, stride=1, pad=0):
    return col2im(g, x.shape, kernel_size, stride, pad)


@op(_im2col_vjp)
def im2col(x, kernel_size, stride=1, pad=0):
    """Every window of images x as one row: (N, C, H, W) -> (N * OH * OW, C * FH * FW).

    The book's layout (section 7.4.3): row n * OH * OW + i * OW + j holds the
    window at output position (i, j) of image n, channels first, each
    channel's FH x FW entries row by row; padding is zeros. A convolution is
    then one matrix product with the filters as columns. The gradient is
    `col2im`, its adjoint.
    """
    _images("im2col", x)
    g = _geometry("im2col", x.shape, kernel_size, stride, pad)
    n, c = x.shape[:2]
    rows = n * g.out[0] * g.out[1]
    return _windows(x, g).transpose(0, 2, 3, 1, 4, 5).reshape(rows, c * math.prod(g.kernel))


def _col2im_vjp(g, y, col, input_shape, kernel_size, stride=1, pad=0):
    return im2col(g, kernel_size, stride, pad)


@op(_col2im_vjp)
def col2im(col, input_shape, kernel_size, stride=1, pad=0):
    """The adjoint of `im2col`: each row's entries added back into images of `input_shape`.

    Where windows overlap, their entries add up (so this is not im2col's
    inverse: it is its transpose, what backprop needs). Padding is cropped.
    """
    if not isinstance(col, np.ndarray):
        raise TypeError(f"col2im takes an array or a tensor, got a {type(col).__name__}")
    shape = tuple(input_shape)
    if len(shape) != 4 or not all(_is_int(n) and n >= 0 for n in shape):
        raise ValueError(f"col2im: input_shape must be (N, C, H, W), got {input_shape!r}")
    g = _geometry("col2im", shape, kernel_size, stride, pad)
    (n, c, _, _), (kh, kw), (oh, ow) = shape, g.kernel, g.out
    if col.shape != (n * oh * ow, c * kh * kw):
        raise ValueError(
            f"col2im: col must have shape {(n * oh * ow, c * kh * kw)} (N * OH * OW, C * FH * FW) "
            f"for input_shape {shape}, got {col.shape}"
        )
    return _fold(col.reshape(n, oh, ow, c, kh, kw).transpose(0, 3, 4, 5, 1, 2), shape, g)


# ================================================================ convolution


def _check_conv2d(x, W, b) -> None:
    _images("conv2d", x)
    if not isinstance(W, np.ndarray) or W.ndim != 4:
        raise ValueError(
            f"conv2d: W must be filters of shape (FN, C, FH, FW), got shape {np.shape(W)}"
        )
    if x.shape[1] != W.shape[1]:
        raise ValueError(
            f"conv2d: x has {x.shape[1]} channels (shape {x.shape}, (N, C, H, W)) but the "
            f"filters expect {W.shape[1]} (W shape {W.shape}, (FN, C, FH, FW))"
        )
    if b is not None and np.shape(b) != W.shape[:1]:
        raise ValueError(
            f"conv2d: b must have shape {W.shape[:1]}, one per filter, got {np.shape(b)}"
        )


def _unfold(x: np.ndarray, g: _Geometry) -> np.ndarray:
    """im2col per image, windows as columns: (N, C * FH * FW, OH * OW).

    Then the filters (FN, C * FH * FW) times it is (N, FN, OH * OW), which is
    already NCHW: the book's layout needs a transpose of the output.
    """
    n, c = x.shape[:2]
    cols = _windows(x, g).transpose(0, 1, 4, 5, 2, 3)
    return cols.reshape(n, c * math.prod(g.kernel), math.prod(g.out))


def _conv2d_vjp_x(g, y, x, W, b=None, stride=1, pad=0, saved=None):
    fn, c, kh, kw = W.shape
    n = x.shape[0]
    if isinstance(g, Tensor):  # create_graph: the product with the filters, then col2im, as ops
        rows = g.reshape(n, fn, -1).transpose(0, 2, 1) @ W.reshape(fn, c * kh * kw)
        return col2im(rows.reshape(-1, c * kh * kw), x.shape, (kh, kw), stride, pad)
    geometry = _geometry("conv2d", x.shape, (kh, kw), stride, pad)
    (ph, pw), h, w = geometry.pad, x.shape[2], x.shape[3]
    if geometry.stride == (1, 1) and ph < kh and pw < kw:
        # With stride 1, x's gradient is g padded by FH - 1 - pad and correlated with the
        # flipped filters, their two channel axes swapped: one window layout and one product,
        # half the time of the product and scatter below.
        flipped = W[:, :, ::-1, ::-1].transpose(1, 0, 2, 3).reshape(c, fn * kh * kw)
        full = _Geometry((kh, kw), (1, 1), (kh - 1 - ph, kw - 1 - pw), (h, w))
        return np.matmul(flipped, _unfold(g, full)).reshape(x.shape)
    cols = np.matmul(W.reshape(fn, c * kh * kw).T, g.reshape(n, fn, -1))  # (N, C*FH*FW, OH*OW)
    return _fold(cols.reshape(n, c, kh, kw, *geometry.out), x.shape, geometry)


def _conv2d_vjp_w(g, y, x, W, b=None, stride=1, pad=0, saved=None):
    fn, n = W.shape[0], x.shape[0]
    if isinstance(g, Tensor):  # create_graph: im2col of x as an op, so dW depends on x
        col = im2col(x, W.shape[2:], stride, pad)
        return (
            (g.reshape(n, fn, -1) @ col.reshape(n, -1, col.shape[1])).sum(axis=0).reshape(W.shape)
        )
    # sum over images of dY_n (FN, OH*OW) @ col_n^T: the columns the forward saved
    return np.matmul(g.reshape(n, fn, -1), saved.transpose(0, 2, 1)).sum(axis=0).reshape(W.shape)


def _conv2d_vjp_b(g, y, x, W, b, stride=1, pad=0, saved=None):
    return g.sum(axis=(0, 2, 3))


@op(_conv2d_vjp_x, _conv2d_vjp_w, _conv2d_vjp_b, saves=True)
def conv2d(x, W, b=None, stride=1, pad=0):
    """Convolution of images x (N, C, H, W) with filters W (FN, C, FH, FW), plus b (FN,)
    per filter: (N, FN, OH, OW).

    As in the book and PyTorch it is a cross-correlation (the filter is not
    flipped): y[n, f, i, j] = sum_{c, k, l} x_pad[n, c, i * stride + k, j * stride + l]
    W[f, c, k, l] + b[f]. Computed as the book does, by im2col and one
    matrix product, with the windows kept per image as columns so that the
    product comes out in NCHW order. The forward keeps those columns for W's
    gradient; x's gradient adds the product of the filters with the output's
    gradient back into place, as col2im does.
    """
    _check_conv2d(x, W, b)
    fn, c, kh, kw = W.shape
    geometry = _geometry("conv2d", x.shape, (kh, kw), stride, pad)
    col = _unfold(x, geometry)
    y = np.matmul(W.reshape(fn, c * kh * kw), col)
    if b is not None:
        bias = b.reshape(fn, 1)
        if y.dtype.kind == "f" and np.result_type(y, bias) == y.dtype:
            y += bias  # y is our own fresh array
        else:
            y = y + bias  # integers, or a float64 bias for float32 filters: NumPy promotes
    return y.reshape(x.shape[0], fn, *geometry.out), col


# ================================================================ pooling


def _pool_geometry(name: str, x: Any, kernel_size: Any, stride: Any, pad: Any) -> _Geometry:
    _images(name, x)
    g = _geometry(name, x.shape, kernel_size, kernel_size if stride is None else stride, pad)
    if g.pad[0] >= g.kernel[0] or g.pad[1] >= g.kernel[1]:
        raise ValueError(
            f"{name}: pad {pad!r} must be smaller than the kernel {kernel_size!r} (each side), "
            "so that every window holds part of the input"
        )
    return g


def _spread(g: Tensor, shares: np.ndarray, shape: tuple, geometry: _Geometry) -> Tensor:
    """x's gradient from each window's g times its entries' shares (N, C, OH, OW, FH * FW),
    written with ops (col2im) for create_graph."""
    n, c = shape[:2]
    oh, ow = geometry.out
    k = math.prod(geometry.kernel)
    shares = shares.astype(g.dtype).transpose(0, 2, 3, 1, 4)
    rows = g.transpose(0, 2, 3, 1).reshape(n, oh, ow, c, 1) * shares  # (N, OH, OW, C, FH*FW)
    return col2im(rows.reshape(n * oh * ow, c * k), shape, geometry.kernel, geometry.stride, geometry.pad)  # fmt: skip


def _lowest(dtype: np.dtype) -> Any:
    return -np.inf if dtype.kind == "f" else np.iinfo(dtype).min


def _max_pool2d_vjp(g, y, x, kernel_size, stride=None, pad=0):
    x, y = unwrap(x), unwrap(y)
    geometry = _pool_geometry("max_pool2d", x, kernel_size, stride, pad)
    xp = _pad(x, geometry.pad, _lowest(x.dtype))
    masks = [xp[index] == y for _, _, index in _offsets(geometry)]
    count = np.zeros(y.shape, _float(y.dtype))  # how many entries tie for each window's max
    for mask in masks:
        count += mask
    if isinstance(g, Tensor):
        return _spread(g, np.stack(masks, axis=-1) / count[..., None], x.shape, geometry)
    share = g / count
    dxp = np.zeros(xp.shape, share.dtype)
    for mask, (_, _, index) in zip(masks, _offsets(geometry), strict=True):
        dxp[index] += share * mask  # not np.add(..., where=mask): slow into a strided view
    return _crop(dxp, geometry.pad)


@op(_max_pool2d_vjp)
def max_pool2d(x, kernel_size, stride=None, pad=0):
    """The largest entry of each FH x FW window of images x (N, C, H, W): (N, C, OH, OW).

    stride defaults to kernel_size (windows side by side, as the book's 2x2
    pooling with stride 2). Padding counts as -inf, so it is never the max;
    pad must be smaller than the kernel. Where entries of a window tie for
    its max, they split the window's gradient evenly, as `max` does.
    """
    geometry = _pool_geometry("max_pool2d", x, kernel_size, stride, pad)
    xp = _pad(x, geometry.pad, _lowest(x.dtype))
    y = None
    for _, _, index in _offsets(geometry):  # max over the offsets: a few whole-batch passes
        if y is None:
            y = xp[index].copy()
        else:
            np.maximum(y, xp[index], out=y)
    return y


def _avg_pool2d_vjp(g, y, x, kernel_size, stride=None, pad=0):
    geometry = _pool_geometry("avg_pool2d", unwrap(x), kernel_size, stride, pad)
    k = math.prod(geometry.kernel)
    if isinstance(g, Tensor):
        return _spread(g, np.full((1, 1, 1, 1, k), 1 / k), x.shape, geometry)
    share = g / k
    n, c, h, w = x.shape
    dxp = np.zeros((n, c, h + 2 * geometry.pad[0], w + 2 * geometry.pad[1]), share.dtype)
    for _, _, index in _offsets(geometry):
        dxp[index] += share
    return _crop(dxp, geometry.pad)


@op(_avg_pool2d_vjp)
def avg_pool2d(x, kernel_size, stride=None, pad=0):
    """The mean of each FH x FW window of images x (N, C, H, W): (N, C, OH, OW).

    stride defaults to kernel_size. Padding counts as zeros and every window
    divides by FH * FW (PyTorch's default, count_include_pad=True); pad must
    be smaller than the kernel. Each entry gets 1 / (FH * FW) of the
    gradient of every window it is in.
    """
    geometry = _pool_geometry("avg_pool2d", x, kernel_size, stride, pad)
    xp = _pad(x, geometry.pad)
    y = np.zeros((*x.shape[:2], *geometry.out), _float(x.dtype))
    for _, _, index in _offsets(geometry):
        y += xp[index]
    y /= math.prod(geometry.kernel)
    return y


# ================================================================ batch normalization, flatten


def _update(running: Any, statistic: np.ndarray, momentum: float) -> None:
    r = unwrap(running)  # in place: a module's buffer keeps its array
    r *= momentum
    r += (1 - momentum) * statistic.reshape(r.shape)


@register
def batch_norm(
    x: TensorLike,
    gamma: TensorLike,
    beta: TensorLike,
    running_mean: TensorLike | None = None,
    running_var: TensorLike | None = None,
    training: bool = True,
    momentum: float = 0.9,
    eps: float = 1e-5,
) -> Tensor:
    """Batch normalization (the book's section 6.3), per feature over the batch:

        mu = mean(x), var = mean((x - mu)^2), y = gamma (x - mu) / sqrt(var + eps) + beta

    x is (N, D), normalized per feature over N, or (N, C, H, W), per channel
    over N, H and W; gamma, beta and the running statistics have shape (D,)
    or (C,). In training the batch's statistics are used, and running_mean
    and running_var (arrays or tensors, if given) are updated in place:

        running = momentum * running + (1 - momentum) * the batch's statistic

    momentum is the share of the old value kept, as in the book and DeZero
    (0.9); PyTorch's momentum=0.1 is the share of the new value, the same
    update. The variance is the biased one (dividing by the count, as the
    book does; PyTorch's running variance divides by the count less one).
    Out of training x is normalized with the running statistics, which are
    then required, and nothing is updated. The update is NumPy's, not an op:
    a `Replay` of a training step does not repeat it.
    """
    data = unwrap(x)
    if np.ndim(data) not in (2, 4):
        raise ValueError(
            f"batch_norm: x must be (N, D) or (N, C, H, W), got shape {np.shape(data)}"
        )
    d = data.shape[1]
    for name, v in (("gamma", gamma), ("beta", beta), ("running_mean", running_mean),
                    ("running_var", running_var)):  # fmt: skip
        if v is not None and np.shape(unwrap(v)) != (d,):
            raise ValueError(
                f"batch_norm: {name} must have shape ({d},), one per "
                f"{'feature' if data.ndim == 2 else 'channel'} of x {data.shape}, got "
                f"{np.shape(unwrap(v))}"
            )
    if (running_mean is None) != (running_var is None):
        raise ValueError("batch_norm: give both running_mean and running_var, or neither")
    axes, shape = ((0,), (1, d)) if data.ndim == 2 else ((0, 2, 3), (1, d, 1, 1))
    if training:
        if data.size <= d:
            raise ValueError(
                f"batch_norm: training needs more than one value per "
                f"{'feature' if data.ndim == 2 else 'channel'} to take a variance, got x of "
                f"shape {data.shape}"
            )
        mu = mean(x, axis=axes, keepdims=True)
        xc = x - mu
        var = mean(xc * xc, axis=axes, keepdims=True)
        if running_mean is not None:
            _update(running_mean, unwrap(mu), momentum)
            _update(running_var, unwrap(var), momentum)
    else:
        if running_mean is None:
            raise ValueError("batch_norm: out of training, running_mean and running_var are needed")
        xc = x - unwrap(running_mean).reshape(shape)
        var = unwrap(running_var).reshape(shape)
    return xc / sqrt(var + eps) * reshape(gamma, shape) + reshape(beta, shape)


@register
def flatten(x: TensorLike) -> Tensor:
    """x as (N, everything else): one row per sample, the batch axis kept (what the book's
    Affine layer does to images). `Tensor.flatten()` is NumPy's, to one axis."""
    shape = np.shape(unwrap(x))
    if not shape:
        raise ValueError("flatten: x must have a batch axis, got a 0-d value")
    return reshape(x, (shape[0], math.prod(shape[1:])))
