"""The public hypothesis strategies do what they promise."""

import numpy as np
import pytest
from hypothesis import given

from minigrad import testing as mt


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
