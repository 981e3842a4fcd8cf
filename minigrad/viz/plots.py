"""The book's figures with matplotlib: activations, gradient fields, descent paths,
training curves, decision boundaries and digit grids.

Every helper returns a `matplotlib.figure.Figure`, writes it to `path` when
given (format from the extension, written whole or not at all), and calls
`plt.show()` only with `show=True`. Without `show` the figure is made without
pyplot, so nothing piles up in pyplot's list of open figures (and Jupyter
shows it once, as the cell's value). So save the figure returned, or pass
`path=`; `plt.savefig` saves pyplot's current figure, which this is not, and
writes a blank picture:

>>> from minigrad import viz
>>> import minigrad.functional as F
>>> fig = viz.plot_function(F.sigmoid, F.relu)
>>> fig.savefig("activations.png")
"""

from __future__ import annotations

import io
import math
import os
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure

from minigrad._files import write_atomically
from minigrad.engine import Tensor, grad, no_grad

if TYPE_CHECKING:
    from minigrad.nn import Module

__all__ = [
    "plot_function",
    "plot_gradient_field",
    "plot_descent_path",
    "plot_history",
    "plot_decision_boundary",
    "show_images",
]

PathLike = str | os.PathLike | None
_CLASS_COLOURS = ("#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3", "#937860", "#da8bc3")
_MARKERS = ("o", "^", "s", "D", "v", "P", "X")


def _figure(show: bool, **kwargs: Any) -> Figure:
    if show:
        import matplotlib.pyplot as plt

        return plt.figure(layout="constrained", **kwargs)
    return Figure(layout="constrained", **kwargs)


def _finish(fig: Figure, path: PathLike, show: bool) -> Figure:
    if path is not None:
        path = os.fspath(path)
        buffer = io.BytesIO()
        fig.savefig(buffer, format=os.path.splitext(path)[1][1:].lower() or "png", dpi=120)
        write_atomically(path, lambda f: f.write(buffer.getvalue()))
    if show:
        import matplotlib.pyplot as plt

        plt.show()
    return fig


def _axis_lines(ax: Any) -> None:
    ax.axhline(0, color="#bbbbbb", lw=0.8, zorder=0)
    ax.axvline(0, color="#bbbbbb", lw=0.8, zorder=0)


def plot_function(
    *fns: Callable[[np.ndarray], Any],
    x: np.ndarray | None = None,
    labels: Sequence[str] | None = None,
    ylim: tuple[float, float] | None = None,
    title: str | None = None,
    path: PathLike = None,
    show: bool = False,
) -> Figure:
    """Curves of one-argument functions (sigmoid, step, ReLU ...) over x (default -5..5).

    Each function gets the array x (minigrad ops accept plain arrays) and
    is labelled with `labels` or its `__name__`.

    Returns the figure: save it with `fig.savefig(...)` (not `plt.savefig`) or `path=`.
    """
    if not fns:
        raise TypeError("plot_function() needs at least one function")
    x = np.linspace(-5.0, 5.0, 501) if x is None else np.asarray(x)
    labels = labels or [getattr(f, "__name__", f"f{i}") for i, f in enumerate(fns)]
    if len(labels) != len(fns):
        raise ValueError(f"got {len(labels)} labels for {len(fns)} functions")
    fig = _figure(show, figsize=(6, 4))
    ax = fig.add_subplot()
    _axis_lines(ax)
    styles = ("-", "--", "-.", ":")
    for i, (f, label) in enumerate(zip(fns, labels, strict=True)):
        ax.plot(x, np.asarray(f(x)), styles[i % len(styles)], lw=2, label=label)
    ax.set(xlabel="x", ylabel="y", ylim=ylim, title=title)
    ax.legend()
    return _finish(fig, path, show)


def _on_grid(
    f: Callable[[Tensor], Tensor], xs: np.ndarray, ys: np.ndarray, need_grad: bool
) -> tuple[np.ndarray, np.ndarray | None]:
    """f and (optionally) its gradient at every grid point, in one forward and one backward."""
    xx, yy = np.meshgrid(xs, ys)
    points = Tensor(np.stack([xx.ravel(), yy.ravel()]), requires_grad=need_grad)
    values = f(points)
    if not isinstance(values, Tensor) or values.shape != (xx.size,):
        shape = values.shape if isinstance(values, Tensor) else type(values).__name__
        raise ValueError(
            "f must map x of shape (2, N) (x[0], x[1]: the coordinates of N points) to N values, "
            f"one per point, e.g. lambda x: x[0] ** 2 + x[1] ** 2; got {shape}"
        )
    z = values.data.reshape(xx.shape)
    if not need_grad:
        return z, None
    if not values.requires_grad:  # f does not depend on x
        return z, np.zeros((2, *xx.shape), values.dtype)
    # Points are independent, so the gradient of the sum is every point's gradient.
    (g,) = grad(values.sum(), points)
    return z, g.data.reshape((2, *xx.shape))


def plot_gradient_field(
    f: Callable[[Tensor], Tensor],
    xlim: tuple[float, float] = (-2.0, 2.0),
    ylim: tuple[float, float] = (-2.0, 2.0),
    num: int = 17,
    title: str | None = None,
    path: PathLike = None,
    show: bool = False,
) -> Figure:
    """Arrows of -grad f on a num x num grid over contour lines of f (the book's figure 4-9).

    `f` takes x of shape (2, N), the coordinates of N points, and returns N
    values: write it with x[0] and x[1], like `lambda x: x[0]**2 + x[1]**2`
    (the same f works with `gradient_descent` on one point). The gradients
    come from one backward pass, not from numerical differences.

    Returns the figure: save it with `fig.savefig(...)` (not `plt.savefig`) or `path=`.
    """
    xs, ys = np.linspace(*xlim, num), np.linspace(*ylim, num)
    _, g = _on_grid(f, xs, ys, need_grad=True)
    # The contour lines get their own finer grid: on the arrows' grid they look polygonal.
    fine_x, fine_y = np.linspace(*xlim, 200), np.linspace(*ylim, 200)
    z, _ = _on_grid(f, fine_x, fine_y, need_grad=False)
    fig = _figure(show, figsize=(5.5, 5))
    ax = fig.add_subplot()
    ax.contour(fine_x, fine_y, z, levels=12, colors="#cccccc", linewidths=0.8, zorder=0)
    xx, yy = np.meshgrid(xs, ys)
    ax.quiver(xx, yy, -g[0], -g[1], angles="xy", color="#555555", width=0.004)
    ax.set(xlabel="$x_0$", ylabel="$x_1$", xlim=xlim, ylim=ylim, aspect="equal", title=title)
    return _finish(fig, path, show)


def plot_descent_path(
    f: Callable[[Tensor], Tensor],
    path_points: np.ndarray,
    xlim: tuple[float, float] | None = None,
    ylim: tuple[float, float] | None = None,
    title: str | None = None,
    path: PathLike = None,
    show: bool = False,
) -> Figure:
    """The points visited by gradient descent over contour lines of f (the book's figure 4-10).

    `path_points` has shape (steps, 2), as returned by
    `gradient_descent(..., history=True)`; f is as for `plot_gradient_field`.
    Limits default to the path's extent with a margin.

    Returns the figure: save it with `fig.savefig(...)` (not `plt.savefig`) or `path=`.
    """
    p = np.asarray(path_points, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] != 2:
        raise ValueError(f"path_points must have shape (steps, 2), got {p.shape}")
    pad = 0.15 * max(float(np.ptp(p)), 1.0)
    xlim = xlim or (p[:, 0].min() - pad, p[:, 0].max() + pad)
    ylim = ylim or (p[:, 1].min() - pad, p[:, 1].max() + pad)
    xs, ys = np.linspace(*xlim, 200), np.linspace(*ylim, 200)
    z, _ = _on_grid(f, xs, ys, need_grad=False)
    fig = _figure(show, figsize=(5.5, 5))
    ax = fig.add_subplot()
    ax.contour(xs, ys, z, levels=15, colors="#cccccc", linewidths=0.8, zorder=0)
    _axis_lines(ax)
    ax.plot(p[:, 0], p[:, 1], "o-", color="#4c72b0", ms=3.5, lw=1, label="path")
    ax.plot(*p[0], "s", color="#c44e52", ms=8, label="start")
    ax.plot(*p[-1], "*", color="#2ca02c", ms=13, label=f"end after {len(p) - 1} steps")
    ax.set(xlabel="$x_0$", ylabel="$x_1$", xlim=xlim, ylim=ylim, aspect="equal", title=title)
    ax.legend(loc="upper right")
    return _finish(fig, path, show)


def plot_history(
    history: Mapping[str, Sequence[float]],
    title: str | None = None,
    path: PathLike = None,
    show: bool = False,
) -> Figure:
    """Training curves: losses on the left, accuracies (keys with 'acc') on the right.

    Takes the history of `minigrad.train.fit` or any dict of lists. Series as
    long as "epoch" are drawn against it: accuracies at the end of each epoch,
    losses (means over the epoch, as `fit` records them) at its middle.
    Longer series (per-batch losses) are spread evenly over the same epochs,
    thin and faint, with a moving average. Without "epoch" the x axis counts
    entries.

    Returns the figure: save it with `fig.savefig(...)` (not `plt.savefig`) or `path=`.
    """
    epochs = list(history.get("epoch", []))
    series = {k: np.asarray(v, dtype=np.float64) for k, v in history.items() if k != "epoch"}
    series = {k: v for k, v in series.items() if v.size}
    if not series:
        raise ValueError("history has nothing to plot (no non-empty series besides 'epoch')")
    accuracy = [k for k in series if "acc" in k]
    losses = [k for k in series if k not in accuracy]
    panels = [group for group in (losses, accuracy) if group]
    fig = _figure(show, figsize=(5 * len(panels), 3.8))
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, keys in zip(axes, panels, strict=True):
        for key in keys:
            y = series[key]
            if epochs and len(y) == len(epochs):
                x = np.asarray(epochs, dtype=np.float64)
                if keys is losses:  # a mean over the epoch: drawn at the epoch's middle
                    x = x - 0.5 * np.diff(x, prepend=0.0)
                ax.plot(x, y, "o-", ms=3, lw=1.5, label=key)
                continue
            x = np.linspace(0, epochs[-1], len(y) + 1)[1:] if epochs else np.arange(1, len(y) + 1)
            if len(y) < 50:
                ax.plot(x, y, lw=1.5, label=key)
                continue
            window = max(len(y) // 50, 5)
            smooth = np.convolve(y, np.ones(window) / window, mode="valid")
            (line,) = ax.plot(x, y, lw=0.6, alpha=0.3)
            start = (window - 1) // 2  # centred, so the average does not lag behind the data
            ax.plot(
                x[start : start + len(smooth)], smooth, lw=1.5, color=line.get_color(),
                label=f"{key} (mean of {window})",
            )  # fmt: skip
        ax.set(
            xlabel="epoch" if epochs else "step", ylabel="accuracy" if keys is accuracy else "loss"
        )
        ax.grid(alpha=0.3)
        ax.legend()
    if title:
        fig.suptitle(title)
    return _finish(fig, path, show)


def plot_decision_boundary(
    model: Module | Callable[[Tensor], Tensor],
    X: np.ndarray,
    y: np.ndarray,
    resolution: int = 200,
    title: str | None = None,
    path: PathLike = None,
    show: bool = False,
) -> Figure:
    """The class a 2-D classifier picks at every point, with the data on top (spiral data).

    `model` maps a (N, 2) tensor to (N, classes) scores; X is (N, 2), y the
    integer labels.

    Returns the figure: save it with `fig.savefig(...)` (not `plt.savefig`) or `path=`.
    """
    X, y = np.asarray(X), np.asarray(y)
    if X.ndim != 2 or X.shape[1] != 2 or len(X) == 0:
        raise ValueError(f"X must have shape (N, 2) with N >= 1, got {X.shape}")
    if y.shape != (len(X),) or y.dtype.kind not in "iu":
        raise ValueError(
            f"y must be {len(X)} integer labels, one per row of X, got {y.dtype} {y.shape}"
        )
    pad = 0.1 * float(np.ptp(X))
    xs = np.linspace(X[:, 0].min() - pad, X[:, 0].max() + pad, resolution)
    ys = np.linspace(X[:, 1].min() - pad, X[:, 1].max() + pad, resolution)
    xx, yy = np.meshgrid(xs, ys)
    grid = np.stack([xx.ravel(), yy.ravel()], axis=1).astype(
        X.dtype if X.dtype.kind == "f" else np.float32
    )
    with no_grad():
        scores = np.asarray(model(Tensor(grid)))
    predicted = scores.argmax(axis=1).reshape(xx.shape)
    n_classes = int(max(scores.shape[1], y.max() + 1))
    colours = [_CLASS_COLOURS[i % len(_CLASS_COLOURS)] for i in range(n_classes)]
    fig = _figure(show, figsize=(5.5, 5))
    ax = fig.add_subplot()
    ax.contourf(
        xx,
        yy,
        predicted,
        levels=np.arange(n_classes + 1) - 0.5,
        cmap=ListedColormap(colours),
        alpha=0.25,
    )
    for c in range(n_classes):
        mask = y == c
        ax.scatter(
            X[mask, 0], X[mask, 1], s=18, color=colours[c], marker=_MARKERS[c % len(_MARKERS)],
            edgecolors="white", linewidths=0.5, label=f"class {c}",
        )  # fmt: skip
    ax.set(xlabel="$x_0$", ylabel="$x_1$", aspect="equal", title=title)
    ax.legend(loc="upper right", fontsize=8)
    return _finish(fig, path, show)


def show_images(
    images: np.ndarray,
    labels: Sequence[int] | None = None,
    predictions: Sequence[int] | None = None,
    ncols: int = 10,
    title: str | None = None,
    path: PathLike = None,
    show: bool = False,
) -> Figure:
    """A grid of images (MNIST rows of 784, or (N, H, W) / (N, 1, H, W)), captioned.

    Captions give the label, and the prediction when there is one; a wrong
    prediction is shown in red as "label -> prediction".

    Returns the figure: save it with `fig.savefig(...)` (not `plt.savefig`) or `path=`.
    """
    images = np.asarray(images)
    n = len(images)
    if n == 0:
        raise ValueError("no images to show: got an empty array")
    if images.ndim == 2:
        side = math.isqrt(images.shape[1])
        if side * side != images.shape[1]:
            raise ValueError(
                f"cannot make square images of {images.shape[1]} pixels; pass (N, H, W)"
            )
        images = images.reshape(n, side, side)
    elif images.ndim == 4 and images.shape[1] == 1:
        images = images[:, 0]
    if images.ndim != 3:
        raise ValueError(f"images must be (N, H*W), (N, H, W) or (N, 1, H, W), got {images.shape}")
    for name, values in (("labels", labels), ("predictions", predictions)):
        if values is not None and len(values) != n:
            raise ValueError(f"{n} images but {len(values)} {name}")
    ncols = max(1, min(ncols, n))
    nrows = math.ceil(n / ncols)
    fig = _figure(show, figsize=(1.1 * ncols, 1.25 * nrows + (0.3 if title else 0)))
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for i, ax in enumerate(axes):
        ax.axis("off")
        if i >= n:
            continue
        ax.imshow(images[i], cmap="gray_r")
        if labels is not None and predictions is not None:
            right = int(labels[i]) == int(predictions[i])
            caption = str(labels[i]) if right else f"{labels[i]} -> {predictions[i]}"
            ax.set_title(caption, fontsize=9, color="black" if right else "#c0392b")
        elif labels is not None or predictions is not None:
            ax.set_title(str((labels if labels is not None else predictions)[i]), fontsize=9)
    if title:
        fig.suptitle(title)
    return _finish(fig, path, show)
