"""Property testing of ops, minigrad's own and yours (needs the `test` extra: hypothesis).

    from hypothesis import given
    from minigrad import testing as mt

    @given(mt.arrays(mt.SHAPE, low=0.1, high=3.0))   # keep log's input positive
    def test_my_log(x): ...

`strategies`: hypothesis strategies for arrays, tensors and shapes, with
values kept in a range and a margin away from kinks and poles.
`specs`: `Spec`, and `SPECS`, how to test each op of `minigrad.functional`.
`checks`: `cases(fn)` draws valid calls of an op from its spec, and
`check_op(fn)` gradient-checks it on them. For an op of your own that is not
in `SPECS`, pass its spec: `cases(fn, spec=Spec(...))`,
`check_op(fn, spec=Spec(...))` (as do `differentiable_positions` and `call_args`).
"""

from minigrad.testing.checks import (
    OpCheck,
    call_args,
    cases,
    check_op,
    differentiable_positions,
    elementwise_case,
    op_name,
    spec_of,
)
from minigrad.testing.specs import SPECS, Spec
from minigrad.testing.strategies import (
    MARGIN,
    MAX_SIDE,
    SHAPE,
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
    tensors,
    values,
)

__all__ = [
    "MARGIN",
    "MAX_SIDE",
    "SHAPE",
    "SPECS",
    "OpCheck",
    "Spec",
    "arrays",
    "axes",
    "booleans",
    "broadcast_targets",
    "broadcastable_shapes",
    "call_args",
    "cases",
    "check_op",
    "class_labels",
    "differentiable_positions",
    "elementwise_case",
    "indices",
    "op_name",
    "permutations",
    "reduce_targets",
    "reshape_targets",
    "sampled",
    "shapes",
    "sides",
    "spec_of",
    "tensors",
    "values",
]
