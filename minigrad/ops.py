"""Declaring an op: a NumPy forward with one vector-Jacobian product (VJP) per input.

`@op(vjp_a, vjp_b)` over `def add(a, b): return np.add(a, b)` makes `add` a
function that runs on arrays and on tensors alike; on tensors the engine
(`minigrad.engine.apply`) records a node, and backward calls the VJPs.
`OPS` lists every op and composite by name, for the checkers.
docs/architecture.md has the checklist for writing one.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Sequence
from typing import Any

from minigrad.engine import Tensor, apply


class Op:
    """A primitive: a forward on arrays and one VJP per input (None: no gradient)."""

    __slots__ = ("name", "forward", "vjps", "saves", "check", "without_vjp", "_signature")

    def __init__(
        self,
        name: str,
        forward: Callable,
        vjps: Sequence,
        saves: bool = False,
        check: Callable | None = None,
    ) -> None:
        self.name, self.forward, self.vjps = name, forward, vjps
        self.saves, self.check = saves, check
        # The inputs with no VJP (labels, a condition, a shape); a variadic op has none.
        rules = () if isinstance(vjps, VariadicVJP) else vjps
        self.without_vjp = tuple(i for i, vjp in enumerate(rules) if vjp is None)
        self._signature: inspect.Signature | None = None

    @property
    def signature(self) -> inspect.Signature:
        """The forward's signature: the inputs' names, for messages and graph drawings."""
        if self._signature is None:
            self._signature = inspect.signature(self.forward)
        return self._signature

    def bind(self, args: tuple, attrs: dict) -> tuple[tuple, dict]:
        """`linear(x, w, b=bias)` as `linear(x, w, bias)`: only positional inputs are recorded."""
        bound = self.signature.bind(*args, **attrs)
        if any(isinstance(v, Tensor) for v in bound.kwargs.values()):
            raise TypeError(f"{self.name}: a keyword-only argument cannot be a tensor")
        return bound.args, bound.kwargs

    def refuse_grad(self, args: tuple) -> None:
        """Stop at the call, not at backward, if an input with no VJP requires grad."""
        for i in self.without_vjp:
            if i < len(args) and isinstance(args[i], Tensor) and args[i].requires_grad:
                name = list(self.signature.parameters)[i]
                raise NoGradientError(
                    f"{self.name} has no gradient for its input {i} ({name}), but that tensor "
                    f"requires grad; pass {name} as an array, or as {name}.detach()",
                    args[i],
                )

    def __repr__(self) -> str:
        return f"<op {self.name}>"


class NoGradientError(RuntimeError):
    """An input that requires grad went where its op has no gradient (labels, a condition).

    `tensor` is that input, so code that made it can tell which one it was.
    """

    def __init__(self, message: str, tensor: Tensor) -> None:
        super().__init__(message)
        self.tensor = tensor


OPS: dict[str, Callable] = {}  # every public op and composite, by name, for the checkers


def register(fn: Callable) -> Callable:
    """Register a composite function (built from ops) in `OPS`, beside the ops."""
    OPS[fn.__name__] = fn
    return fn


class VariadicVJP:
    """The VJPs of a variadic op (concat, stack): one rule, told which input it serves."""

    def __init__(self, rule: Callable) -> None:
        self.rule = rule

    def __getitem__(self, i: int) -> Callable:
        return functools.partial(self.rule, i)


def op(
    *vjps: Callable | None | VariadicVJP,
    name: str | None = None,
    saves: bool = False,
    check: Callable | None = None,
) -> Callable:
    """Turn a NumPy forward into a recorded op with the given VJPs, one per input.

    A VJP is called as `vjp(g, y, *inputs, **attrs)` with the upstream gradient
    `g`, the output `y` and the op's inputs, and returns the gradient for its
    input, already reduced to that input's shape.

    With `saves=True` the forward returns `(y, saved)`: `saved` is work the
    VJPs would otherwise redo (softmax-cross-entropy's probabilities). The
    node keeps it until backward frees the graph, and the VJPs get it as the
    keyword `saved`; they must not write into it.

    `check(*inputs, **attrs)`, run before the forward, raises for inputs the op
    cannot take, judging by their types, shapes and dtypes alone. `Replay`,
    whose inputs keep the shapes and dtypes they were traced with, skips it.
    """
    rules = vjps[0] if len(vjps) == 1 and isinstance(vjps[0], VariadicVJP) else vjps

    def decorate(forward: Callable) -> Callable:
        the_op = Op(name or forward.__name__, forward, rules, saves, check)

        @functools.wraps(forward)
        def public(*args: Any, **attrs: Any) -> Any:
            return apply(the_op, args, attrs)

        public.op = the_op
        OPS[the_op.name] = public
        return public

    return decorate
