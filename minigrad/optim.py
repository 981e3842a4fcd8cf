"""Optimizers that update parameters in place from their `.grad`, and the book's gradient descent.

Updates are plain NumPy on `p.data` (no graph), with Python-float
hyperparameters so a float32 parameter and its state stay float32. The
rules are PyTorch's; a parameter whose grad is None is left alone.
"""

from __future__ import annotations

import numbers
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import numpy as np

from minigrad.engine import Tensor, get_default_dtype, mark_changed
from minigrad.engine import grad as _grad

__all__ = ["Optimizer", "SGD", "AdaGrad", "RMSProp", "Adam", "gradient_descent"]


class Optimizer:
    """Holds the parameters and per-parameter state; subclasses define `_update`.

    `weight_decay` adds the L2 term weight_decay * p to each gradient first
    (as `torch.optim` does; for Adam this is not AdamW).

    Subclasses name their constructor's hyperparameters in `_hyperparameters`,
    the per-parameter arrays they keep (shaped like the parameter) in `_buffers`
    and their per-parameter step counters in `_counters`: `state_dict` and
    `load_state_dict` need nothing more.
    """

    _hyperparameters: tuple[str, ...] = ("weight_decay",)
    _buffers: tuple[str, ...] = ()
    _counters: tuple[str, ...] = ()

    def __init__(self, params: Iterable[Tensor], lr: float, weight_decay: float = 0.0) -> None:
        if isinstance(params, Tensor):  # iterating it would give its rows
            raise TypeError(
                "an optimizer takes an iterable of tensors (model.parameters(), or [w] for one), "
                "got a single Tensor"
            )
        if callable(getattr(params, "parameters", None)):  # a Module: PyTorch's habit, optim(model)
            raise TypeError(
                f"an optimizer takes the model's parameters, not the model: "
                f"{type(self).__name__}(model.parameters(), ...)"
            )
        self.params = list(params)
        if not self.params:
            raise ValueError("the optimizer got an empty parameter list")
        for p in self.params:
            # A frozen parameter (requires_grad=False) is taken, as in PyTorch: with no .grad,
            # step() leaves it alone until it is unfrozen.
            if not (isinstance(p, Tensor) and p.is_leaf):
                raise TypeError(
                    "an optimizer takes leaf tensors, such as model.parameters(), not the result "
                    f"of an op; got {p!r:.80}"
                )
        if len({id(p) for p in self.params}) != len(self.params):
            raise ValueError("a parameter appears twice in the optimizer's list; pass each once")
        _check(weight_decay=weight_decay)
        self.lr = lr
        self.weight_decay = float(weight_decay)
        self.state: list[dict[str, Any]] = [{} for _ in self.params]

    @property
    def lr(self) -> float:
        """The learning rate; set it between steps to schedule it."""
        return self._lr

    @lr.setter
    def lr(self, value: float) -> None:
        _check(lr=value)
        self._lr = float(value)  # a NumPy float64 would promote float32 updates to float64

    def zero_grad(self) -> None:
        """Drop every parameter's gradient (set it to None)."""
        for p in self.params:
            p.grad = None

    def step(self) -> None:
        """Apply one update to every parameter that has a gradient."""
        grads = [None if p.grad is None else p.grad.data for p in self.params]
        self.check_grads(grads)
        changed = []
        for p, g, state in zip(self.params, grads, self.state, strict=True):
            if g is None:
                continue
            if self.weight_decay:
                g = g + self.weight_decay * p.data
            self._update(p.data, g, state)
            changed.append(p)
        mark_changed(changed)  # a graph recorded before the step can no longer backprop

    def _update(self, w: np.ndarray, g: np.ndarray, state: dict[str, Any]) -> None:
        """Change w in place; never write into g (it may be shared)."""
        raise NotImplementedError

    def state_dict(self) -> dict[str, np.ndarray]:
        """Copies of everything the next step depends on, as arrays by name (`np.savez`-ready).

        "lr" and each hyperparameter by its constructor name, and each
        parameter's state as "state.<i>.<name>", i its place in the list.
        """
        out = {"lr": np.array(self.lr)}
        out.update({name: np.array(getattr(self, name)) for name in self._hyperparameters})
        for i, state in enumerate(self.state):
            out.update({f"state.{i}.{key}": np.array(value) for key, value in state.items()})
        return out

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore what `state_dict` gave, into an optimizer over parameters of the same shapes.

        Every name must be there and nothing else; buffers must have their
        parameter's shape and are cast to its dtype. Nothing changes unless
        every check passes.
        """
        if not isinstance(state, Mapping):
            raise TypeError(
                f"load_state_dict takes a dict of arrays by name (as state_dict() gives), got "
                f"{type(state).__name__}"
            )
        problems: list[str] = []
        arrays: dict[str, np.ndarray] = {}
        for key, value in state.items():
            try:
                arrays[str(key)] = np.asarray(value)
            except ValueError:  # a ragged list
                problems.append(f"{key}: expected an array, got a ragged sequence")
        names = ("lr", *self._hyperparameters)
        problems += [f"missing key {k!r}" for k in names if k not in state]
        settings = {k: arrays[k].tolist() for k in names if k in arrays}
        per_param: list[dict[str, Any]] = [{} for _ in self.params]
        slots = self._buffers + self._counters
        for key, a in arrays.items():
            if key in names:
                continue
            match = re.fullmatch(r"state\.(\d+)\.(\w+)", key)
            if not (match and int(match[1]) < len(self.params) and match[2] in slots):
                problems.append(f"unexpected key {key!r}")
                continue
            i, name = int(match[1]), match[2]
            p = self.params[i].data
            if name in self._counters:
                if a.shape != () or a.dtype.kind not in "iu" or a < 0:
                    problems.append(f"{key}: expected an integer >= 0, got {a!r:.80}")
                    continue
                per_param[i][name] = int(a)
            elif a.shape != p.shape or a.dtype.kind not in "iuf":
                problems.append(
                    f"{key}: expected a numeric array of shape {p.shape}, got {a.dtype} {a.shape}"
                )
            else:
                per_param[i][name] = np.array(a, dtype=p.dtype)  # a copy: the caller's stays put
        for i, entry in enumerate(per_param):
            if entry and set(entry) != set(slots):
                lacking = ", ".join(sorted(set(slots) - set(entry)))
                problems.append(f"state.{i}: has {', '.join(sorted(entry))} but not {lacking}")
        if not problems:
            try:  # the constructor's own checks, on a throwaway optimizer
                type(self)(self.params, **settings)
            except (TypeError, ValueError) as e:
                problems.append(str(e))
        if problems:
            raise ValueError(
                f"cannot load the state into {type(self).__name__}: " + "; ".join(problems)
            )
        for name, value in settings.items():
            setattr(self, name, tuple(value) if isinstance(value, list) else value)
        self.state = per_param

    def check_grads(self, grads: list[np.ndarray | None]) -> None:
        """Refuse, before any parameter changes, what would stop the update part-way.

        `grads` holds one gradient array (or None) per parameter, in order; `step()`
        checks the `.grad`s, and code that updates from gradients of its own (Replay's
        fused step) checks those.

        backward always gives a parameter's own shape; a .grad set by hand may
        not, and NumPy would broadcast it into the update without a word. A
        parameter made from a read-only array (np.load with mmap_mode="r") cannot
        be updated in place.
        """
        for p, g in zip(self.params, grads, strict=True):
            if g is None:
                continue
            if g.shape != p.data.shape:
                raise ValueError(
                    f"a parameter of shape {p.data.shape} has a .grad of shape "
                    f"{g.shape}; a gradient must have its parameter's shape"
                )
            if not p.data.flags.writeable:
                raise ValueError(
                    f"a parameter of shape {p.data.shape} holds a read-only array, which the "
                    "update cannot change in place; give the parameter a copy (np.array(a))"
                )


def _check(**values: float) -> None:
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise TypeError(f"{name} must be a number, got {value!r}")
        if not 0 <= value < np.inf:  # also rejects NaN
            raise ValueError(f"{name} must be a finite number >= 0, got {value}")


class SGD(Optimizer):
    """Stochastic gradient descent, W <- W - lr * dL/dW (the book's eq. 4.7).

    With momentum mu: v <- mu v + g, W <- W - lr v (the book's Momentum,
    v <- mu v - lr g, W <- W + v, is the same for a constant lr). Nesterov
    steps with g + mu v instead of v.
    """

    _hyperparameters = ("momentum", "nesterov", "weight_decay")
    _buffers = ("velocity",)

    def __init__(
        self,
        params: Iterable[Tensor],
        lr: float = 0.01,
        momentum: float = 0.0,
        nesterov: bool = False,
        weight_decay: float = 0.0,
    ) -> None:
        super().__init__(params, lr, weight_decay)
        _check(momentum=momentum)
        if nesterov and momentum == 0:
            raise ValueError("Nesterov momentum needs momentum > 0")
        self.momentum = float(momentum)
        self.nesterov = nesterov

    def _update(self, w: np.ndarray, g: np.ndarray, state: dict[str, Any]) -> None:
        if self.momentum:
            v = state.get("velocity")
            if v is None:
                # a copy in the parameter's dtype, and an array even for a 0-d parameter (whose
                # g + weight_decay * w is a NumPy scalar, which `v *= ...` would only rebind)
                v = state["velocity"] = np.array(g, dtype=w.dtype)
            else:
                v *= self.momentum
                v += g
            g = g + self.momentum * v if self.nesterov else v
        w -= self._lr * g


class AdaGrad(Optimizer):
    """h <- h + g*g, W <- W - lr g / (sqrt(h) + eps): each weight's step shrinks
    with the gradient it has already seen (the book's AdaGrad, PyTorch's eps)."""

    _hyperparameters = ("eps", "weight_decay")
    _buffers = ("sum_sq",)

    def __init__(
        self,
        params: Iterable[Tensor],
        lr: float = 0.01,
        eps: float = 1e-10,
        weight_decay: float = 0.0,
    ) -> None:
        super().__init__(params, lr, weight_decay)
        _check(eps=eps)
        self.eps = float(eps)

    def _update(self, w: np.ndarray, g: np.ndarray, state: dict[str, Any]) -> None:
        h = state.setdefault("sum_sq", np.zeros_like(w))
        h += g * g
        w -= self._lr * g / (np.sqrt(h) + self.eps)


class RMSProp(Optimizer):
    """h <- alpha h + (1 - alpha) g*g, W <- W - lr g / (sqrt(h) + eps):
    AdaGrad with an exponentially decaying memory."""

    _hyperparameters = ("alpha", "eps", "weight_decay")
    _buffers = ("mean_sq",)

    def __init__(
        self,
        params: Iterable[Tensor],
        lr: float = 0.01,
        alpha: float = 0.99,
        eps: float = 1e-8,
        weight_decay: float = 0.0,
    ) -> None:
        super().__init__(params, lr, weight_decay)
        _check(eps=eps)
        if not 0 <= alpha < 1:
            raise ValueError(f"alpha must be in [0, 1), got {alpha}")
        self.alpha, self.eps = float(alpha), float(eps)

    def _update(self, w: np.ndarray, g: np.ndarray, state: dict[str, Any]) -> None:
        h = state.setdefault("mean_sq", np.zeros_like(w))
        h *= self.alpha
        h += (1 - self.alpha) * g * g
        w -= self._lr * g / (np.sqrt(h) + self.eps)


class Adam(Optimizer):
    """Adam (Kingma and Ba): running means of g and g*g with bias correction.

    m <- b1 m + (1 - b1) g,  v <- b2 v + (1 - b2) g*g,
    W <- W - lr (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps), t the step count.
    """

    _hyperparameters = ("betas", "eps", "weight_decay")
    _buffers = ("m", "v")
    _counters = ("step",)

    def __init__(
        self,
        params: Iterable[Tensor],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
    ) -> None:
        super().__init__(params, lr, weight_decay)
        _check(eps=eps)
        if not (
            isinstance(betas, tuple | list)
            and len(betas) == 2
            and all(isinstance(b, numbers.Real) and 0 <= b < 1 for b in betas)
        ):
            raise ValueError(f"betas must be two numbers in [0, 1), got {betas!r}")
        self.betas = (float(betas[0]), float(betas[1]))
        self.eps = float(eps)

    def _update(self, w: np.ndarray, g: np.ndarray, state: dict[str, Any]) -> None:
        b1, b2 = self.betas
        if not state:
            state.update(step=0, m=np.zeros_like(w), v=np.zeros_like(w))
        state["step"] += 1
        t, m, v = state["step"], state["m"], state["v"]
        m *= b1
        m += (1 - b1) * g
        v *= b2
        v += (1 - b2) * g * g
        m_hat = m / (1 - b1**t)
        v_hat = v / (1 - b2**t)
        w -= self._lr * m_hat / (np.sqrt(v_hat) + self.eps)


def gradient_descent(
    f: Callable[[Tensor], Tensor],
    init_x: Any,
    lr: float = 0.01,
    step_num: int = 100,
    history: bool = False,
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """The book's gradient descent, x <- x - lr * df/dx repeated step_num times.

    `f` takes x as a Tensor and returns a one-element Tensor; the gradient
    comes from backprop (exact) instead of the book's central differences.
    Returns the final x as an array; with `history=True`, also the path: an
    array of shape (step_num + 1, *x.shape) from init_x to the final x.
    A float array init_x keeps its dtype; lists and ints get the default dtype.

    On the book's f = x0^2 + x1^2 from (-3, 4) each step multiplies x by
    1 - 2 lr: lr 0.1 ends near (0, 0), lr 1e-10 barely moves, and lr 10
    diverges to 19^100 (-3, 4), about (-2.3e128, 3.0e128) in float64. The
    book prints about (-2.6e13, -1.3e12) there because its central
    difference (h = 1e-4) returns 0 once x is so large that x + h rounds to x.
    """
    x = np.array(Tensor(init_x).data)  # a copy, with the framework's dtype rules
    if x.dtype.kind != "f":
        x = x.astype(get_default_dtype())
    lr = float(lr)  # a NumPy float64 lr would promote a float32 x
    path = [x]
    for _ in range(step_num):
        xt = Tensor(x, requires_grad=True)
        y = f(xt)
        constant = isinstance(y, Tensor) and not y.requires_grad  # not a Tensor: grad() raises
        (g,) = (None,) if constant else _grad(y, xt)
        if g is not None:  # else f does not depend on x: the gradient is zero
            x = x - lr * g.data
        path.append(x)
    return (x, np.stack(path)) if history else x
