"""Numerical differentiation, and checking backprop against it.

`numerical_diff` and `numerical_gradient` are the book's central differences
(section 4.3-4.4). `gradcheck` compares every entry of the Jacobian that
backprop gives with central differences in float64; `gradgradcheck` does
the same for the backward pass itself (second derivatives). `fast=True`
compares one random projection u^T J v instead, for large inputs.

Numerics only: `minigrad.testing` draws inputs for these checks, and the
`minigrad gradcheck` command (`minigrad.commands.gradcheck`) runs them on
every registered op.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from minigrad.engine import Tensor, grad, unwrap


def numerical_diff(f: Callable[[float], float], x: float, h: float = 1e-4) -> float:
    """(f(x + h) - f(x - h)) / 2h: the book's central difference (eq. 4.5)."""
    return (f(x + h) - f(x - h)) / (2 * h)


def numerical_gradient(f: Callable[[Any], Any], x: Any, h: float = 1e-4) -> np.ndarray:
    """The gradient of scalar f at x by central differences, one element at a time.

    As in the book, x is perturbed in place, so `f` may ignore its argument
    and read the same array (or Tensor) through a closure (`lambda w:
    net.loss(x, t)`). Integer input, which the book's version gets wrong
    (x + h truncates), is first converted to a float64 copy, so then f must
    use its argument: through a closure it would see no steps, and give 0.
    """
    array = x.data if isinstance(x, Tensor) else x
    if not isinstance(array, np.ndarray) or array.dtype.kind != "f":
        x = array = np.array(array, dtype=np.float64)
    if array.dtype.itemsize < 4:  # a copy would hide the steps from an f that reads x itself
        raise TypeError(
            f"numerical_gradient needs float32 or float64, got {array.dtype}: in it x + {h} "
            "rounds back to x, and every difference would be 0"
        )
    result = np.zeros(array.shape, dtype=np.float64)
    for index in np.ndindex(array.shape):
        original = array[index]
        try:
            array[index] = original + h
            up = _one_number(f(x))
            array[index] = original - h
            down = _one_number(f(x))
        finally:  # x is the caller's: leave it as it was, even when f raises
            array[index] = original
        result[index] = (up - down) / (2 * h)
    return result.astype(array.dtype)


def _one_number(value: Any) -> float:
    value = np.asarray(unwrap(value))
    if value.size != 1:
        raise ValueError(f"numerical_gradient: f must return one number, got shape {value.shape}")
    return float(value.reshape(()))


class GradcheckError(AssertionError):
    """Backprop and central differences disagree."""


@dataclass
class Comparison:
    """The worst disagreement found between backprop and central differences."""

    max_abs: float = 0.0
    max_rel: float = 0.0
    failure: str | None = None
    excess: float = 0.0  # how far the failure is beyond its tolerance


def _prepare(inputs: tuple) -> tuple[list, list[int]]:
    """float64 copies of the inputs; float arrays and grad-requiring tensors are differentiated."""
    args, wrt = [], []
    for i, x in enumerate(inputs):
        differentiable = (isinstance(x, Tensor) and x.requires_grad) or (
            isinstance(x, np.ndarray) and x.dtype.kind == "f"
        )
        if differentiable:
            array = np.array(x.data if isinstance(x, Tensor) else x, dtype=np.float64)
            bad = ~np.isfinite(array)
            if bad.any():
                where = tuple(int(k) for k in np.argwhere(bad)[0])
                raise ValueError(f"gradcheck: input {i} has a NaN or inf at index {where}")
            args.append(array)
            wrt.append(i)
        else:
            args.append(x)
    if not wrt:
        raise ValueError(
            "gradcheck: no input to differentiate; pass float NumPy arrays or tensors with "
            f"requires_grad=True (got {', '.join(type(x).__name__ for x in inputs) or 'none'})"
        )
    return args, wrt


def _outputs(fn: Callable, args: list, wrt: list[int]) -> tuple[list[Tensor], list]:
    """fn's outputs as a list of tensors, and the arguments it was called with."""
    call = [Tensor(a, requires_grad=True) if i in wrt else a for i, a in enumerate(args)]
    try:
        out = fn(*call)
    except RuntimeError as e:
        if "has no gradient for its input" not in str(e):
            raise
        raise RuntimeError(  # the op's advice (pass an array) is what led here
            f"{e}. gradcheck differentiates every float array it is given: pass an input "
            "that has no gradient (labels, masks) as mg.Tensor(...) instead"
        ) from None
    outs = list(out) if isinstance(out, (tuple, list)) else [out]
    if any(o is None for o in outs):
        raise TypeError("gradcheck: fn returned None; it must return a tensor or a tuple of them")
    return [
        o if isinstance(o, Tensor) else Tensor(np.asarray(o, dtype=np.float64)) for o in outs
    ], call


def _flat_outputs(fn: Callable, args: list, wrt: list[int]) -> np.ndarray:
    outs, _ = _outputs(fn, args, wrt)
    return np.concatenate([np.asarray(o.data, dtype=np.float64).ravel() for o in outs] or [[]])


class _WrongShape(Exception):
    """Backprop gave an input a gradient of another shape: no Jacobian to compare."""


def _backprop_rows(
    outs: list[Tensor], tensors: list[Tensor], seeds: list[np.ndarray]
) -> list[np.ndarray]:
    """J^T u for the given output seeds u, one flat array per differentiated input."""
    live = [(o, s) for o, s in zip(outs, seeds, strict=True) if o.requires_grad]
    if not live:
        return [np.zeros(t.size) for t in tensors]
    grads = grad([o for o, _ in live], tensors, [s for _, s in live], retain_graph=True)
    for k, (g, t) in enumerate(zip(grads, tensors, strict=True)):
        if g is not None and g.shape != t.shape:  # flattened, it could pass unnoticed
            raise _WrongShape(
                f"differentiated input {k}: backprop gave a gradient of shape {g.shape} for an "
                f"input of shape {t.shape}"
            )
    return [
        np.zeros(t.size) if g is None else np.asarray(g.data, np.float64).ravel()
        for g, t in zip(grads, tensors, strict=True)
    ]


def compare(
    fn: Callable, *inputs: Any, eps: float = 1e-6, atol: float = 1e-5, rtol: float = 1e-3,
    fast: bool = False, seed: int = 0,
) -> Comparison:  # fmt: skip
    """Compare backprop's Jacobian of fn with central differences; report the worst entry."""
    if not (eps > 0 and atol >= 0 and rtol >= 0):  # also refuses NaN
        raise ValueError(
            f"gradcheck needs eps > 0, atol >= 0, rtol >= 0; got {eps}, {atol}, {rtol}"
        )
    try:
        return _compare(fn, inputs, eps, atol, rtol, fast, seed)
    except _WrongShape as e:
        return Comparison(np.inf, np.inf, str(e), np.inf)


def _compare(
    fn: Callable, inputs: tuple, eps: float, atol: float, rtol: float, fast: bool, seed: int
) -> Comparison:
    args, wrt = _prepare(inputs)
    outs, call = _outputs(fn, args, wrt)
    tensors = [call[i] for i in wrt]
    sizes = [o.size for o in outs]
    n_out = sum(sizes)
    rng = np.random.default_rng(seed)

    def split(flat: np.ndarray) -> list[np.ndarray]:
        return [
            p.reshape(o.shape)
            for p, o in zip(np.split(flat, np.cumsum(sizes)[:-1]), outs, strict=True)
        ]

    def perturbed(i: int, delta: np.ndarray) -> np.ndarray:
        moved = list(args)
        moved[i] = args[i] + delta
        return _flat_outputs(fn, moved, wrt)

    result = Comparison()
    if fast:
        u = rng.standard_normal(n_out)
        vs = [rng.standard_normal(args[i].shape) for i in wrt]
        rows = _backprop_rows(outs, tensors, split(u))
        analytic = sum(float(r @ v.ravel()) for r, v in zip(rows, vs, strict=True))
        up = [args[i] + eps * v for i, v in zip(wrt, vs, strict=True)]
        down = [args[i] - eps * v for i, v in zip(wrt, vs, strict=True)]
        numeric = float(u @ (_flat_outputs(fn, _replace(args, wrt, up), wrt) - _flat_outputs(fn, _replace(args, wrt, down), wrt))) / (2 * eps)  # fmt: skip
        where = "a random projection of all inputs and outputs (fast mode)"
        _judge(result, np.array([[analytic]]), np.array([[numeric]]), atol, rtol, where, None)
        return result

    jac_rows = [np.zeros((n_out, args[i].size)) for i in wrt]
    for k in range(n_out):
        onehot = np.zeros(n_out)
        onehot[k] = 1.0
        for j, row in enumerate(_backprop_rows(outs, tensors, split(onehot))):
            jac_rows[j][k] = row
    for j, i in enumerate(wrt):
        numeric = np.zeros((n_out, args[i].size))
        for e in range(args[i].size):
            delta = np.zeros(args[i].size)
            delta[e] = eps
            delta = delta.reshape(args[i].shape)
            numeric[:, e] = (perturbed(i, delta) - perturbed(i, -delta)) / (2 * eps)
        _judge(result, jac_rows[j], numeric, atol, rtol, f"input {i}", args[i].shape)
    return result


def _replace(args: list, wrt: list[int], new: list) -> list:
    moved = list(args)
    for i, value in zip(wrt, new, strict=True):
        moved[i] = value
    return moved


def _judge(
    result: Comparison, analytic, numeric, atol, rtol, what: str, in_shape: tuple | None
) -> None:
    """Fold one input's Jacobian comparison into `result`, keeping the worst failure.

    `in_shape` is the input's shape, to name the failing element; None when
    the comparison is of one projected number (fast mode).
    """
    if analytic.size == 0:
        return
    err = np.abs(analytic - numeric)
    # np.maximum, not max(): it keeps a NaN, where max(0.0, nan) would report 0.
    result.max_abs = float(np.maximum(result.max_abs, err.max()))
    rel = err / np.maximum(np.abs(numeric), 1e-12)
    result.max_rel = float(np.maximum(result.max_rel, rel.max()))
    excess = err - (atol + rtol * np.abs(numeric))
    excess[np.isnan(excess)] = np.inf  # a NaN on either side is a failure, never a pass
    k, e = np.unravel_index(int(np.argmax(excess)), excess.shape)
    if excess[k, e] > result.excess:
        if in_shape is not None:
            in_index = tuple(int(v) for v in np.unravel_index(e, in_shape)) if in_shape else ()
            what += f" (shape {tuple(in_shape)}), element {in_index}, output element {int(k)}"
        result.excess = float(excess[k, e])
        result.failure = (
            f"{what}: backprop {analytic[k, e]:.10g}, numerical {numeric[k, e]:.10g}, "
            f"abs error {err[k, e]:.3g} > tolerance {atol + rtol * abs(numeric[k, e]):.3g} "
            f"(atol {atol} + rtol {rtol} * |numerical|)"
        )


def gradcheck(
    fn: Callable, *inputs: Any, eps: float = 1e-6, atol: float = 1e-5, rtol: float = 1e-3,
    fast: bool = False, seed: int = 0,
) -> bool:  # fmt: skip
    """Check fn's backprop gradients against central differences in float64.

    Float arrays and tensors with requires_grad among `inputs` are
    differentiated; everything else is passed through unchanged. Returns True,
    or raises GradcheckError naming the input, the worst element, both values
    and the tolerance.
    """
    result = compare(fn, *inputs, eps=eps, atol=atol, rtol=rtol, fast=fast, seed=seed)
    if result.failure:
        raise GradcheckError("gradcheck failed for " + result.failure)
    return True


def second_order(fn: Callable, inputs: tuple, seed: int = 0) -> tuple[Callable, tuple]:
    """The function (inputs, u) -> J(inputs)^T u and the arguments to check it at.

    Checking its gradients checks the recorded backward pass, i.e. second derivatives.
    """
    args, wrt = _prepare(inputs)
    outs, _ = _outputs(fn, args, wrt)
    rng = np.random.default_rng(seed)
    seeds = [rng.standard_normal(o.shape) for o in outs]
    n = len(args)

    def backward_of_fn(*all_args: Any) -> tuple:
        xs, us = all_args[:n], all_args[n:]
        out = fn(*xs)
        out = list(out) if isinstance(out, (tuple, list)) else [out]
        live = [
            (o, u)
            for o, u in zip(out, us, strict=True)
            if isinstance(o, Tensor) and o.requires_grad
        ]
        if not live:
            return ()
        wanted = [xs[i] for i in wrt]
        grads = grad([o for o, _ in live], wanted, [u for _, u in live], create_graph=True)
        return tuple(g for g in grads if g is not None)

    return backward_of_fn, (
        *[Tensor(a, requires_grad=True) if i in wrt else a for i, a in enumerate(args)],
        *seeds,
    )


def gradgradcheck(
    fn: Callable, *inputs: Any, eps: float = 1e-6, atol: float = 1e-5, rtol: float = 1e-3,
    fast: bool = False, seed: int = 0,
) -> bool:  # fmt: skip
    """gradcheck of the backward pass (with create_graph=True): second derivatives.

    The first derivatives are checked first: if they are wrong (an output cut
    from the graph has none at all), there is nothing right to differentiate.
    """
    first = compare(fn, *inputs, eps=eps, atol=atol, rtol=rtol, fast=fast, seed=seed)
    if first.failure:
        raise GradcheckError("gradgradcheck: the first derivatives are wrong: " + first.failure)
    backward_of_fn, args = second_order(fn, inputs, seed)
    result = compare(backward_of_fn, *args, eps=eps, atol=atol, rtol=rtol, fast=fast, seed=seed)
    if result.failure:
        raise GradcheckError("gradgradcheck failed for " + result.failure)
    return True
