"""Drawing calls of an op from its spec, and gradient-checking it on them.

The functions here look an op's spec up in `SPECS` by the op's name; for an
op of your own, registered with `minigrad.ops.op` but not in `SPECS`,
pass its spec:

    spec = mt.Spec(low=0.1, high=3.0)
    mt.check_op(my_log, spec=spec)              # an OpCheck; .failure is None if right
    @given(mt.cases(my_log, spec=spec)) ...     # (args, kwargs) for your own tests
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st

from minigrad.engine import Tensor
from minigrad.gradcheck import GradcheckError, compare, second_order
from minigrad.ops import OPS
from minigrad.testing.specs import SPECS, Spec
from minigrad.testing.strategies import SHAPE, arrays, broadcastable_shapes


def op_name(fn: Callable) -> str:
    """The name an op or composite is registered under in `OPS` (and `SPECS`)."""
    return fn.op.name if hasattr(fn, "op") else fn.__name__


def spec_of(fn: Callable | str, spec: Spec | None = None) -> Spec:
    """`spec` if given, else the op's entry in `SPECS` (an error naming the op if none)."""
    if spec is not None:
        return spec
    name = fn if isinstance(fn, str) else op_name(fn)
    if name not in SPECS:
        raise KeyError(
            f"no Spec for {name!r} in minigrad.testing.SPECS; for an op of your own, pass "
            "spec=Spec(...)"
        )
    return SPECS[name]


def elementwise_case(draw: Callable, spec: Spec) -> tuple[tuple, dict]:
    """The default: `spec.arity` broadcastable arrays in [low, high], away from `avoid`."""
    arg_shapes = draw(broadcastable_shapes(spec.arity)) if spec.arity > 1 else (draw(SHAPE),)
    return tuple(
        draw(arrays(s, low=spec.low, high=spec.high, avoid=spec.avoid)) for s in arg_shapes
    ), {}


def cases(fn: Callable | str, spec: Spec | None = None) -> st.SearchStrategy:
    """Valid calls `(args, kwargs)` of an op, drawn as its spec says."""
    spec = spec_of(fn, spec)

    @st.composite
    def draw_case(draw: Callable) -> tuple[tuple, dict]:
        if spec.case is not None:
            return spec.case(draw)
        return elementwise_case(draw, spec)

    return draw_case()


def differentiable_positions(
    fn: Callable | str, args: tuple, spec: Spec | None = None
) -> tuple[int, ...]:
    """The argument positions a gradient check should differentiate."""
    spec = spec_of(fn, spec)
    if spec.wrt is not None:
        return spec.wrt
    return tuple(i for i, a in enumerate(args) if isinstance(a, np.ndarray) and a.dtype.kind == "f")


def call_args(fn: Callable | str, args: tuple, spec: Spec | None = None) -> tuple:
    """The drawn args as a gradient check takes them: other float arrays become constants."""
    wrt = differentiable_positions(fn, args, spec)
    return tuple(
        a if i in wrt or not (isinstance(a, np.ndarray) and a.dtype.kind == "f") else Tensor(a)
        for i, a in enumerate(args)
    )


@dataclass
class OpCheck:
    """What `check_op` saw over all drawn inputs."""

    shapes: int = 0
    max_abs: float = 0.0
    max_rel: float = 0.0
    failure: str | None = None


def check_op(
    fn: Callable | str, order: int = 1, examples: int = 20, seed: int = 0, spec: Spec | None = None
) -> OpCheck:
    """Gradient-check an op (order 1 or 2) on `examples` calls drawn from its spec."""
    fn = OPS[fn] if isinstance(fn, str) else fn
    spec = spec_of(fn, spec)
    summary = OpCheck()
    seen: set = set()

    @hypothesis_seed(seed)
    @settings(
        max_examples=examples, database=None, deadline=None, suppress_health_check=list(HealthCheck)
    )
    @given(cases(fn, spec))
    def check(case: tuple[tuple, dict]) -> None:
        args, kwargs = case
        f = lambda *a: fn(*a, **kwargs)
        inputs = call_args(fn, args, spec)
        if order == 2:
            f, inputs = second_order(f, inputs)
        seen.add(tuple(np.shape(a) for a in args if isinstance(a, np.ndarray)))
        result = compare(f, *inputs)
        summary.max_abs = max(summary.max_abs, result.max_abs)
        summary.max_rel = max(summary.max_rel, result.max_rel)
        if result.failure:
            raise GradcheckError(result.failure)

    try:
        check()
    except GradcheckError as e:
        summary.failure = str(e)
    summary.shapes = len(seen)
    return summary
