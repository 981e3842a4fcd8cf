"""The public hypothesis strategies do what they promise."""

import numpy as np
import pytest
from hypothesis import given

import minigrad as mg
from minigrad import testing as mt
from minigrad.ops import op


@given(mt.arrays(mt.SHAPE, low=-1.0, high=1.0, avoid=(0.0, 0.5)))
def test_values_stay_in_range_and_away_from_avoided_points(x):
    assert np.all((x >= -1.0) & (x <= 1.0))
    assert np.all(np.abs(x) >= mt.MARGIN) and np.all(np.abs(x - 0.5) >= mt.MARGIN)


@given(mt.arrays(mt.shapes(min_dims=1), distinct=True))
def test_distinct_values_have_no_near_ties(x):
    flat = np.sort(x.ravel())
    assert flat.size < 2 or np.min(np.diff(flat)) > 1e-3


def test_distinct_with_avoided_points_is_refused_not_ignored():
    with pytest.raises(ValueError, match="distinct=True cannot also avoid points"):
        mt.arrays((3,), distinct=True, avoid=(0.0,))  # the grid held an exact 0.0


@given(mt.broadcastable_shapes(3))
def test_broadcastable_shapes_broadcast(shapes):
    np.broadcast_shapes(*shapes)


@given(mt.tensors((2, 3)))
def test_tensors_require_grad(t):
    assert t.requires_grad and t.shape == (2, 3) and t.dtype == np.float64


def test_a_users_op_is_checked_with_the_spec_it_passes():
    # An op of one's own, not in SPECS: check_op and cases take its spec.
    @op(lambda g, y, x: g / x)
    def my_log(x):
        return np.log(x)

    @op(lambda g, y, x: g / (2 * x))  # wrong: the derivative of log is 1 / x
    def my_bad_log(x):
        return np.log(x)

    try:
        spec = mt.Spec(low=0.5, high=3.0)
        assert mt.check_op(my_log, examples=5, spec=spec).failure is None
        assert mt.check_op(my_bad_log, examples=5, spec=spec).failure is not None
        assert mt.check_op(my_log, order=2, examples=5, spec=spec).failure is None
        with pytest.raises(KeyError, match="no Spec for 'my_log'.*spec=Spec"):
            mt.cases(my_log)
    finally:
        mg.OPS.pop("my_log")
        mg.OPS.pop("my_bad_log")


@given(mt.cases("a_users_op", spec=mt.Spec(low=0.5, high=2.0, arity=2)))
def test_cases_draw_from_a_given_spec(case):
    args, kwargs = case
    assert len(args) == 2 and kwargs == {}
    np.broadcast_shapes(*(a.shape for a in args))
    assert all(np.all((a >= 0.5) & (a <= 2.0)) for a in args)


def test_specs_come_from_the_table_by_op_name():
    assert mt.spec_of(mg.OPS["sigmoid"]) is mt.SPECS["sigmoid"]
    assert mt.spec_of(mg.functional.concat) is mt.SPECS["concat"]  # a wrapper of an op
    args = (np.ones(2, bool), np.ones(2), np.ones(2))
    assert mt.differentiable_positions("where", args) == (1, 2)  # the spec's wrt
