"""Every registered op, from its Spec: forward vs reference, gradients vs central differences.

One description per op (in `minigrad.testing.SPECS`) drives all of these tests, so a new
op is covered as soon as it is registered and given a spec, and an op without one fails
`test_every_registered_op_has_a_spec`.
"""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minigrad as mg
import minigrad.functional as F
from minigrad import testing as mt
from minigrad.gradcheck import compare, second_order
from minigrad.testing import SPECS

ALL = sorted(mg.OPS)
DIFFERENTIABLE = [n for n in ALL if n in SPECS and SPECS[n].differentiable]
SECOND_ORDER = [n for n in DIFFERENTIABLE if SPECS[n].second_order]


def test_every_public_function_is_registered():
    missing = [name for name in F.__all__ if name not in mg.OPS]
    assert not missing, f"functions of minigrad.functional not in minigrad.OPS: {missing}"


def test_every_registered_op_has_a_spec():
    missing = sorted(set(mg.OPS) - set(SPECS))
    assert not missing, f"registered ops without an entry in minigrad.testing.SPECS: {missing}"


def test_every_spec_names_a_registered_op():
    stray = sorted(set(SPECS) - set(mg.OPS))
    assert not stray, f"entries of minigrad.testing.SPECS that name no registered op: {stray}"


def test_every_spec_has_a_reference():
    no_ref = [name for name, spec in SPECS.items() if spec.ref is None]
    assert not no_ref, f"specs without a NumPy reference: {no_ref}"


def _tensors(fn, args, dtype=np.float64):
    """Tensors (requiring grad) at the differentiated positions, constants elsewhere.

    Float constants (one-hot labels) take `dtype` too, as NumPy would promote
    a float32 op with a float64 constant.
    """
    wrt = mt.differentiable_positions(fn, args)
    cast = [
        a.astype(dtype) if isinstance(a, np.ndarray) and a.dtype.kind == "f" else a for a in args
    ]
    return [mg.Tensor(a, requires_grad=True) if i in wrt else a for i, a in enumerate(cast)]


@pytest.mark.parametrize("name", ALL)
@given(data=st.data())
def test_forward_matches_reference(name, data, count_example):
    fn = mg.OPS[name]
    args, kwargs = data.draw(mt.cases(fn))
    count_example("forward")
    out = fn(*_tensors(fn, args), **kwargs)
    expected = SPECS[name].ref(*args, **kwargs)
    np.testing.assert_allclose(np.asarray(out, dtype=np.float64), expected, rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize("name", DIFFERENTIABLE)
@given(data=st.data())
def test_gradient_matches_central_differences(name, data, count_example):
    fn = mg.OPS[name]
    args, kwargs = data.draw(mt.cases(fn))
    count_example("first order")
    result = compare(lambda *a: fn(*a, **kwargs), *mt.call_args(fn, args))
    assert result.failure is None, result.failure


@pytest.mark.parametrize("name", SECOND_ORDER)
@given(data=st.data())
def test_second_derivatives_match_central_differences(name, data, count_example):
    fn = mg.OPS[name]
    args, kwargs = data.draw(mt.cases(fn))
    count_example("second order")
    f, inputs = second_order(lambda *a: fn(*a, **kwargs), mt.call_args(fn, args))
    result = compare(f, *inputs)
    assert result.failure is None, result.failure


@pytest.mark.parametrize("name", SECOND_ORDER)
@given(data=st.data())
def test_the_recorded_backward_gives_the_same_gradient(name, data, count_example):
    """create_graph runs the VJPs on tensors: they must give what the checked array path gives.

    Central differences of the recorded gradient check only its derivatives, not its value.
    """
    fn = mg.OPS[name]
    args, kwargs = data.draw(mt.cases(fn))
    count_example("recorded first order")
    inputs = _tensors(fn, args)
    wanted = [x for x in inputs if isinstance(x, mg.Tensor)]
    out = fn(*inputs, **kwargs)
    seed = np.random.default_rng(0).standard_normal(out.shape)
    plain = mg.grad(out, wanted, seed, retain_graph=True)
    recorded = mg.grad(out, wanted, seed, create_graph=True)
    for i, (a, b) in enumerate(zip(plain, recorded, strict=True)):
        np.testing.assert_allclose(b.data, a.data, rtol=1e-7, atol=1e-12, err_msg=f"input {i}")


@pytest.mark.parametrize("name", DIFFERENTIABLE)
@given(data=st.data())
def test_backward_keeps_the_invariants(name, data, count_example):
    """float32 stays float32; nothing is mutated; the graph is released after backward;
    no gradient shares memory with a value of the call.

    The last is what lets Replay's fused step scale a gradient of minigrad's own ops in place
    without looking for it among the call's values.
    """
    fn = mg.OPS[name]
    args, kwargs = data.draw(mt.cases(fn))
    count_example("invariants")
    inputs = _tensors(fn, args, np.float32)
    before = [np.copy(x.data) if isinstance(x, mg.Tensor) else None for x in inputs]
    out = fn(*inputs, **kwargs)
    if SPECS[name].keeps_dtype:
        assert out.dtype == np.float32, f"{name} turned float32 into {out.dtype}"
    seed = np.ones(out.shape, dtype=np.float32) * np.float32(0.5)
    seed_before = seed.copy()
    node = out._node
    saved = () if node is None or node.saved is None else node.saved
    values = [out.data, *(x.data if isinstance(x, mg.Tensor) else x for x in inputs)]
    values += list(saved) if isinstance(saved, tuple) else [saved]
    out.backward(seed)
    np.testing.assert_array_equal(
        seed, seed_before, err_msg="backward mutated the upstream gradient"
    )
    assert node is None or (node.inputs is None and node.saved is None), (
        "backward without retain_graph kept the saved inputs"
    )
    for x, copy in zip(inputs, before, strict=True):
        if isinstance(x, mg.Tensor):
            np.testing.assert_array_equal(x.data, copy, err_msg="backward mutated an input")
            assert x.grad is not None and x.grad.shape == x.shape
            assert x.grad.dtype == np.float32, f"{name} gave a {x.grad.dtype} gradient for float32"
            for v in values:
                assert not np.shares_memory(x.grad.data, v), (
                    f"{name}'s gradient is a value's memory"
                )


ELEMENTWISE = [n for n in ALL if n in SPECS and SPECS[n].case is None]


@pytest.mark.parametrize("name", ELEMENTWISE)
def test_elementwise_ops_take_python_lists_and_numbers_as_numpy_does(name):
    fn, spec = mg.OPS[name], SPECS[name]
    values = [
        v
        for v in np.linspace(spec.low, spec.high, 7)
        if all(abs(v - point) > 0.1 for point in spec.avoid)
    ]
    args = [values] * spec.arity
    expected = np.asarray(fn(*[np.array(a) for a in args]))
    np.testing.assert_allclose(fn(*args), expected)
    np.testing.assert_allclose(fn(*[a[0] for a in args]), expected[0])
