"""The engine: backprop's algebra, graph lifetime, higher order, grad modes, errors."""

import gc
import re
import weakref

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minigrad as mg
import minigrad.functional as F
from minigrad import testing as mt


def leaf(values, dtype=np.float64):
    return mg.Tensor(np.array(values, dtype=dtype), requires_grad=True)


# ---------------------------------------------------------------- algebra of backprop


@given(mt.arrays(mt.SHAPE))
def test_gradient_of_x_plus_x_is_two(x):
    t = mg.Tensor(x, requires_grad=True)
    (t + t).sum().backward()
    np.testing.assert_array_equal(t.grad.data, np.full(x.shape, 2.0))


@given(mt.broadcastable_shapes(2).flatmap(lambda s: st.tuples(mt.arrays(s[0]), mt.arrays(s[1]))))
def test_gradient_of_sum_x_times_y_is_y_summed_to_x(xy):
    x, y = xy
    tx, ty = mg.Tensor(x, requires_grad=True), mg.Tensor(y, requires_grad=True)
    (tx * ty).sum().backward()
    full = np.broadcast_shapes(x.shape, y.shape)
    np.testing.assert_allclose(tx.grad.data, F.sum_to(np.broadcast_to(y, full), x.shape))
    np.testing.assert_allclose(ty.grad.data, F.sum_to(np.broadcast_to(x, full), y.shape))


def test_reused_non_leaf_accumulates_from_every_use():
    x = leaf(3.0)
    h = x * x  # used three times below
    y = h * h + h
    y.backward()
    # y = x^4 + x^2, dy/dx = 4x^3 + 2x
    assert x.grad.item() == pytest.approx(4 * 27 + 6)


@given(mt.arrays((3, 2)), mt.arrays((3, 2)), st.floats(-3, 3), st.floats(-3, 3))
def test_backward_is_linear_in_the_seed(x, u, a, b):
    def vjp(seed):
        t = mg.Tensor(x, requires_grad=True)
        F.tanh(t * t).backward(seed)
        return t.grad.data

    np.testing.assert_allclose(vjp(a * u + b * u * u), a * vjp(u) + b * vjp(u * u), atol=1e-12)


def test_gradients_accumulate_across_backward_calls():
    x = leaf([1.0, 2.0])
    (x * x).sum().backward()
    (x * 3).sum().backward()
    np.testing.assert_allclose(x.grad.data, 2 * np.array([1.0, 2.0]) + 3)
    x.zero_grad()
    assert x.grad is None


def test_sibling_leaf_gradients_do_not_share_memory():
    a, b = leaf([1.0, 2.0]), leaf([3.0, 4.0])
    (a + b).sum().backward()
    a.grad.data[0] = 100.0
    assert b.grad.data[0] == 1.0


def test_no_two_gradients_share_memory_even_when_the_vjps_share_an_array():
    # add hands one writable array to both its inputs, reshape a view of it: scaling
    # one .grad in place (clipping by hand) changed the others.
    a, b, c, h = leaf([1.0, 2.0]), leaf([3.0, 4.0]), leaf([1.0, 2.0]), leaf([[5.0, 6.0]])
    m = a + b
    m.retain_grad()
    F.sum((m + h.reshape(2)) * c).backward()
    a.grad.data *= 0.5
    for g in (b.grad, m.grad, h.grad):
        np.testing.assert_array_equal(g.data.ravel(), c.data)
    ga, gb = mg.grad(F.sum((a + b) * c), [a, b])
    ga.data *= 0.5
    np.testing.assert_array_equal(gb.data, c.data)
    a.grad = b.grad = None
    mg.Replay(lambda x: F.sum((a + b) * x), c.data)(c.data)
    a.grad.data *= 0.5
    np.testing.assert_array_equal(b.grad.data, c.data)


def test_grad_of_an_input_listed_twice_gives_it_twice():
    x = leaf([1.0, 2.0])
    g1, g2 = mg.grad(F.sum(x * x), [x, x])  # an IndexError, after freeing the graph
    np.testing.assert_array_equal(g1.data, [2.0, 4.0])
    np.testing.assert_array_equal(g2.data, [2.0, 4.0])
    g1.data[0] = 0.0
    assert g2.data[0] == 2.0


def test_a_tensor_passed_by_keyword_is_an_input_like_any_other():
    # It went to the forward unrecorded: where() lost its gradient, linear() failed in NumPy.
    x, y = leaf([1.0, -2.0]), leaf([3.0, 4.0])
    F.where(np.array([True, False]), x, b=y).sum().backward()
    np.testing.assert_array_equal(y.grad.data, [0.0, 1.0])
    w, b = leaf(np.ones((2, 3))), leaf(np.zeros(3))
    F.linear(x, w, b=b).sum().backward()
    np.testing.assert_array_equal(b.grad.data, [1.0, 1.0, 1.0])


def test_no_gradient_under_no_grad_or_through_detach():
    x = leaf([1.0, 2.0])
    with mg.no_grad():
        y = x * 2
        with mg.enable_grad():
            z = x * 2
    assert not y.requires_grad and y.is_leaf
    assert z.requires_grad
    w = (x.detach() * x).sum()
    w.backward()
    np.testing.assert_array_equal(x.grad.data, [1.0, 2.0])  # only the non-detached factor


def test_only_leaves_keep_grad_unless_retained():
    x = leaf(2.0)
    h = x * 3
    k = h * 1
    k.retain_grad()
    (k * k).backward()
    assert h.grad is None
    assert k.grad.item() == pytest.approx(12.0)
    assert x.grad.item() == pytest.approx(36.0)


def test_reflected_operators_with_scalars_and_arrays():
    x = leaf([1.0, 2.0])
    y = 2 - x + np.array([1.0, 1.0]) * x / 4 + 1 / x + 2**x
    assert isinstance(y, mg.Tensor)
    y.sum().backward()
    expected = -1 + 0.25 - 1 / np.array([1.0, 4.0]) + np.log(2) * 2.0 ** np.array([1.0, 2.0])
    np.testing.assert_allclose(x.grad.data, expected)


def test_comparisons_return_boolean_arrays():
    x = leaf([1.0, 2.0, 3.0])
    assert isinstance(x > 2, np.ndarray) and (x > 2).dtype == bool
    np.testing.assert_array_equal(x == np.array([1.0, 0.0, 3.0]), [True, False, True])


# ---------------------------------------------------------------- dtypes


def test_dtype_rules():
    assert mg.tensor([1, 2]).dtype == np.float32  # Python lists become the default float
    assert mg.tensor(np.arange(3)).dtype == np.int64  # NumPy arrays keep theirs
    x32 = leaf([1.0], np.float32)
    assert (x32 * 2.5).dtype == np.float32  # a Python scalar never promotes
    x64 = leaf([1.0], np.float64)
    assert (x64 * 2.5).dtype == np.float64
    assert (x32 + np.ones(1, np.float64)).dtype == np.float64  # NumPy's promotion
    y = (x32 * np.ones(1, np.float64)).sum()
    y.backward()
    assert x32.grad.dtype == np.float32  # but a gradient always has its input's dtype


def test_create_graph_keeps_a_float32_leafs_gradient_float32():
    # The first-order path cast a float64 gradient (float64 data meeting float32 weights)
    # back to the weights' dtype; under create_graph it stayed float64.
    w = mg.tensor(np.ones((3, 2), np.float32), requires_grad=True)
    loss = F.linear(np.ones((4, 3)), w).sum()
    (g,) = mg.grad(loss, w, create_graph=True)
    loss.backward(create_graph=True)
    assert g.dtype == w.grad.dtype == np.float32
    np.testing.assert_array_equal(w.grad.data, np.full((3, 2), 4.0))


def test_set_default_dtype():
    try:
        mg.set_default_dtype(np.float64)
        assert mg.tensor(1.0).dtype == np.float64
        with pytest.raises(TypeError, match="float dtype"):
            mg.set_default_dtype(np.int32)
    finally:
        mg.set_default_dtype(np.float32)


# ---------------------------------------------------------------- graph lifetime


def test_a_100000_op_chain_backprops_without_recursion():
    x = leaf(0.0)
    y = x
    for _ in range(100_000):
        y = y + 1.0
    y.backward()
    assert x.grad.item() == 1.0


def test_graph_is_freed_when_the_output_is_dropped():
    x = leaf(np.ones(3))
    y = F.tanh(x * 2).sum()
    inner = weakref.ref(y._node.inputs[0])
    deeper = weakref.ref(y._node.inputs[0]._node.inputs[0])
    gc.disable()
    try:
        del y
        assert inner() is None and deeper() is None  # freed by reference counting: no cycles
    finally:
        gc.enable()


def test_backward_releases_saved_values_and_a_second_backward_explains():
    x = leaf(np.ones(3))
    h = x * 2
    y = (h * h).sum()
    big = weakref.ref(h)
    y.backward()
    assert y._node.inputs is None
    del h
    assert big() is None  # the intermediate was only kept alive by the graph
    with pytest.raises(RuntimeError, match="retain_graph=True"):
        y.backward()


def test_retain_graph_allows_a_second_backward():
    x = leaf(2.0)
    y = x * x
    y.backward(retain_graph=True)
    y.backward()
    assert x.grad.item() == 8.0


def test_a_backward_that_fails_part_way_leaves_every_grad_as_it_was():
    a, b = leaf([1.0, 2.0]), leaf([3.0])
    a.grad = mg.Tensor(np.array([10.0, 10.0]))
    root = F.sqrt(leaf([0.0])).sum()  # sqrt'(0) is inf: anomaly mode stops backward there
    loss = (a * a).sum() + b.sum() + root  # recorded after root, so backprop reaches a and b first
    with mg.detect_anomaly(), pytest.raises(mg.AnomalyError, match="sqrt"):
        loss.backward()
    np.testing.assert_array_equal(a.grad.data, [10.0, 10.0])
    assert b.grad is None


@pytest.mark.parametrize(
    "call, name",
    [
        (lambda x, c: F.where(c, x, 0.0), "input 0 (cond)"),
        (lambda x, c: F.clip(x, lo=c), "input 1 (lo)"),
        (lambda x, c: F.softmax_cross_entropy(x.reshape((1, 2)), c.reshape((1, 2))), "input 1 (t)"),
    ],
)
def test_an_input_with_no_gradient_that_requires_grad_is_refused_at_the_forward(call, name):
    # Not at backward, after the whole forward pass and maybe a long training step.
    x, c = leaf([0.5, -0.5]), leaf([1.0, 0.0])
    with pytest.raises(RuntimeError, match=rf"no gradient for its {re.escape(name)}.*detach"):
        call(x, c)
    call(x, c.detach()).sum().backward()  # as the message says
    assert x.grad is not None


def test_backprop_order_follows_recording_not_input_position():
    # y is used by a node recorded before z and by z itself: y must wait for both.
    x = leaf([1.0, -2.0])
    y = x * 3
    u = y.sum()
    z = (y * y).sum()
    (z + u).backward()
    np.testing.assert_allclose(x.grad.data, 3 * (2 * 3 * np.array([1.0, -2.0]) + 1))


# ---------------------------------------------------------------- higher order


def test_derivatives_of_tanh_to_several_orders():
    x = leaf(0.5)
    t = np.tanh(0.5)
    expected = [1 - t**2, -2 * t * (1 - t**2), (1 - t**2) * (6 * t**2 - 2)]
    g = F.tanh(x)
    for want in expected:
        (g,) = mg.grad(g, x, create_graph=True)
        assert g.item() == pytest.approx(want, rel=1e-12)


def test_newtons_method_with_second_derivatives():
    # f(x) = x^4 - 2x^2 has minima at +-1; from x = 2 Newton converges to 1.
    x = leaf(2.0)
    for _ in range(10):
        y = x**4 - 2 * x**2
        y.backward(create_graph=True)
        gx = x.grad
        x.zero_grad()
        gx.backward()
        x = leaf(x.data - gx.data / x.grad.data)
    assert x.item() == pytest.approx(1.0, abs=1e-10)


def test_create_graph_gives_each_leaf_a_grad_of_its_own():
    # add hands one gradient to both inputs: x.grad and y.grad were one tensor, and after a
    # one-element root it was the read-only seed, so neither could be changed in place.
    x, y, z = leaf([1.0, 2.0]), leaf([3.0, 4.0]), leaf([2.0, 5.0])
    (x + y).sum().backward(create_graph=True)
    x.grad.data *= 3
    np.testing.assert_array_equal(y.grad.data, [1.0, 1.0])
    x.grad = y.grad = None
    ((x + y) * z).sum().backward(create_graph=True)
    assert not np.shares_memory(x.grad.data, y.grad.data)
    for g in (x.grad, y.grad):  # each still in the graph: d/dz sum(g^2) = 2 z
        (dz,) = mg.grad((g * g).sum(), z, retain_graph=True)
        np.testing.assert_allclose(dz.data, 2 * z.data)


def test_create_graph_does_not_make_the_callers_upstream_tensor_a_grad():
    x = leaf([1.0, 2.0])
    upstream = mg.tensor(np.ones(2, x.dtype))
    (x + 0).backward(upstream, create_graph=True)  # add passes the upstream tensor through
    assert x.grad is not upstream
    x.grad.data *= 0
    np.testing.assert_array_equal(upstream.data, [1.0, 1.0])


def test_in_place_operators_under_no_grad_change_the_tensor_itself():
    # There were none: `p -= lr * p.grad` rebound p to a new tensor and the model never moved.
    from minigrad import nn

    model = nn.Linear(2, 1, rng=0)
    W, data = model.W, model.W.data
    x, t = np.array([[1.0, 2.0]], np.float32), np.array([[3.0]], np.float32)
    losses = []
    for _ in range(3):
        loss = F.mean_squared_error(model(x), t)
        losses.append(loss.item())
        model.zero_grad()
        loss.backward()
        with mg.no_grad():
            for p in model.parameters():
                p -= 0.1 * p.grad
    assert losses[2] < losses[1] < losses[0]
    assert model.W is W and model.W.data is data and W.dtype == np.float32
    with mg.no_grad():
        W *= 2
        W /= 4
        W += 1
    np.testing.assert_allclose(W.data, data)  # the same array throughout


def test_in_place_on_a_leaf_that_requires_grad_while_recording_is_refused():
    w = leaf([1.0, 2.0])
    before = w
    with pytest.raises(RuntimeError, match="cannot change in place while gradients are recorded"):
        w += 1
    assert w is before
    np.testing.assert_array_equal(w.data, [1.0, 2.0])


def test_in_place_on_a_computed_tensor_while_recording_is_recorded():
    x = leaf([1.0, 2.0])
    h = x * 2
    h += x  # a new tensor, as in h = h + x: the gradient flows through both
    h *= 3
    h.sum().backward()
    np.testing.assert_array_equal(x.grad.data, [9.0, 9.0])


def test_in_place_on_a_tensor_nothing_records_changes_it_in_place():
    # With grad mode on, `g *= 0.5` on a parameter's .grad gave a new tensor, so the
    # .grad itself (scaling gradients by hand) never changed.
    w = leaf([1.0, 2.0])
    (w * 3).sum().backward()
    g = w.grad
    g *= 0.5
    assert g is w.grad
    np.testing.assert_array_equal(w.grad.data, [1.5, 1.5])


@pytest.mark.parametrize(
    "other, error, message",
    [
        (np.ones((3, 2), np.float32), ValueError, r"shape \(3, 2\) does not fit.*\(2,\)"),
        (mg.tensor([[1.0], [2.0]], requires_grad=True), ValueError, r"does not fit"),
    ],
)
def test_a_recorded_in_place_result_must_keep_the_tensor_shape(other, error, message):
    # While recording, h += other became h + other, which could take any broadcast shape;
    # NumPy (and no_grad) refuse that.
    h = leaf([1.0, 2.0]) * 2
    with pytest.raises(error, match=message):
        h += other


def test_a_recorded_in_place_result_keeps_the_tensor_dtype():
    x = leaf([1.0, 2.0], np.float32)
    h = x * 2
    h += np.array([0.5, 0.5])  # float64, cast back as NumPy's h += ... would
    assert h.dtype == np.float32
    h.sum().backward()
    np.testing.assert_array_equal(x.grad.data, [2.0, 2.0])
    n = mg.Tensor(np.array([1, 2]))
    with pytest.raises(TypeError, match="dtype float64 cannot be stored as int64"):
        n += x


def test_a_tensor_changed_in_place_between_forward_and_backward_is_refused():
    # backward read the new values: w * w gave w.grad = [0, 2] for w = [1, 2] after w -= 1.
    w = leaf([1.0, 2.0])
    loss = (w * w).sum()
    with mg.no_grad():
        w -= 1.0
    with pytest.raises(
        RuntimeError, match=r"an input of mul \(shape \(2,\)\) was changed in place"
    ):
        loss.backward()
    assert w.grad is None
    x = leaf([1.0, 2.0])
    h = F.sigmoid(x)  # its gradient rule reads its output
    with mg.no_grad():
        h *= 2
    with pytest.raises(RuntimeError, match="an output of sigmoid"):
        h.sum().backward()


def test_an_optimizer_step_before_backward_is_refused():
    from minigrad import nn, optim

    model = nn.Linear(2, 1, rng=0)
    opt = optim.Adam(model.parameters())
    loss = model(np.ones((1, 2))).sum()
    loss.backward(retain_graph=True)
    opt.step()
    with pytest.raises(RuntimeError, match="optimizer's step"):
        loss.backward()


def test_a_change_before_the_op_or_to_another_tensor_is_fine():
    from minigrad import optim

    w, q = leaf([1.0, 2.0]), leaf([3.0])
    with mg.no_grad():
        w -= 1.0  # before the op: the op saw the new value
    other = (q * q).sum()  # recorded before the step below, which leaves q alone
    (w * w).sum().backward()
    np.testing.assert_array_equal(w.grad.data, [0.0, 2.0])
    optim.SGD([w, q], lr=0.1).step()  # q has no gradient: not updated, not marked
    other.backward()
    np.testing.assert_array_equal(q.grad.data, [6.0])


def test_a_0d_gradient_stays_an_array_when_it_accumulates():
    # The second backward added two 0-d arrays into a NumPy scalar: .grad.data was
    # np.float32, and scaling the gradient in place failed.
    x = mg.tensor(2.0, requires_grad=True)
    (x * 3).backward()
    (x * 3).backward()
    assert type(x.grad.data) is np.ndarray and x.grad.item() == 6.0
    with mg.no_grad():
        x.grad *= 0.5
    assert x.grad.item() == 3.0


def test_hessian_vector_product():
    a = np.array([[2.0, 1.0], [1.0, 3.0]])
    x = leaf([1.0, -1.0])
    f = 0.5 * (x @ mg.tensor(a) @ x)  # Hessian is a
    (g,) = mg.grad(f, x, create_graph=True)
    v = np.array([1.0, 2.0])
    (hv,) = mg.grad((g * v).sum(), x)
    np.testing.assert_allclose(hv.data, a @ v)


def test_grad_leaves_dot_grad_alone_and_returns_none_for_unused_inputs():
    x, unused = leaf([1.0, 2.0]), leaf(1.0)
    y = (x * x).sum()
    gx, gu = mg.grad(y, [x, unused])
    np.testing.assert_array_equal(gx.data, [2.0, 4.0])
    assert gu is None and x.grad is None


def test_grad_with_respect_to_an_intermediate():
    x = leaf(3.0)
    h = x * 2
    y = h * h
    gh, gx = mg.grad(y, [h, x])
    assert gh.item() == 12.0 and gx.item() == 24.0


def test_grad_of_several_outputs_where_one_feeds_the_other():
    x = leaf(2.0)
    h = x * x
    y = h * 3
    (gx,) = mg.grad([y, h], x)  # d(y + h)/dx = 6x + 2x
    assert gx.item() == 16.0


# ---------------------------------------------------------------- anomaly detection


def test_detect_anomaly_names_the_op_and_the_user_line():
    x = leaf([-1.0, 1.0])
    with (
        mg.detect_anomaly(),
        pytest.raises(mg.AnomalyError, match=r"log produced NaN.*test_engine.py"),
    ):
        F.log(x)


def test_detect_anomaly_in_backward_names_where_the_node_was_made():
    x = leaf([0.0, 1.0])
    with mg.detect_anomaly():
        y = F.sqrt(x).sum()  # forward is finite; sqrt's gradient at 0 is inf
        with pytest.raises(
            mg.AnomalyError, match=r"sqrt produced inf in its gradient.*test_engine.py:\d+"
        ):
            y.backward()


def test_without_detect_anomaly_nan_passes_silently():
    with np.errstate(invalid="ignore"):
        assert np.isnan(F.log(leaf([-1.0])).item())


# ---------------------------------------------------------------- errors


def test_grad_outputs_one_per_output_or_a_clear_error():
    x = leaf([1.0, 2.0])
    (g,) = mg.grad(F.sum(x * 3), x, grad_outputs=np.float32(2.0))  # was "not iterable"
    np.testing.assert_array_equal(g.data, [6.0, 6.0])
    with pytest.raises(ValueError, match="grad_outputs has 1 entries for 2 outputs"):
        mg.grad([F.sum(x), F.sum(x * x)], x, grad_outputs=[1.0])
    with pytest.raises(RuntimeError, match="grad_outputs="):  # it said to pass grad=
        mg.grad(x * 2, x)


def test_grad_of_an_output_that_does_not_require_grad_is_an_error():
    # It returned (None,), as if x were unrelated; backward() raises here.
    x = leaf([1.0, 2.0])
    with mg.no_grad():
        z = F.sum(x * x)
    with pytest.raises(RuntimeError, match="output 0 does not require grad"):
        mg.grad(z, x)


def test_broadcast_failure_names_the_shapes():
    with pytest.raises(ValueError, match=r"add:.*\(2, 3\).*\(4,\)"):
        mg.tensor(np.ones((2, 3))) + mg.tensor(np.ones(4))


def test_backward_on_non_scalar_needs_grad():
    with pytest.raises(RuntimeError, match=r"shape \(2,\).*grad="):
        (leaf([1.0, 2.0]) * 2).backward()


def test_backward_seed_shape_is_checked():
    with pytest.raises(ValueError, match=r"grad has shape \(3,\) but the output has shape \(2,\)"):
        (leaf([1.0, 2.0]) * 2).backward(np.ones(3))


def test_integer_tensors_cannot_require_grad():
    with pytest.raises(TypeError, match="floating-point"):
        mg.Tensor(np.arange(3), requires_grad=True)
    t = mg.Tensor(np.arange(3))
    with pytest.raises(TypeError, match="floating-point"):
        t.requires_grad = True
    assert not t.requires_grad


def test_requires_grad_cannot_be_turned_off_on_an_op_output():
    # As in PyTorch: turning it off would cut the gradient to x without a word.
    x = leaf([1.0, 2.0])
    h = x * 2
    with pytest.raises(RuntimeError, match=r"only be turned off on a leaf.*mul.*detach"):
        h.requires_grad = False
    h.requires_grad = True  # already so: allowed
    (h * x).sum().backward()
    np.testing.assert_array_equal(x.grad.data, [4.0, 8.0])  # d/dx 2x^2


def test_a_leaf_can_be_frozen_and_unfrozen():
    w = leaf([1.0, 2.0])
    w.requires_grad = False
    assert not (w * 2).requires_grad
    w.requires_grad = True
    (w * 3).sum().backward()
    np.testing.assert_array_equal(w.grad.data, [3.0, 3.0])


def test_backward_without_requires_grad_explains():
    with pytest.raises(RuntimeError, match="requires_grad=True"):
        (mg.tensor([1.0]) * 2).sum().backward()


# ---------------------------------------------------------------- the Tensor surface


def test_tensor_attributes_and_conversions():
    t = mg.tensor([[1.0, 2.0], [3.0, 4.0]], name="w")
    assert t.shape == (2, 2) and t.ndim == 2 and t.size == 4 and len(t) == 2
    assert t.T.data[0, 1] == 3.0 and t.is_leaf and t.name == "w"
    np.testing.assert_array_equal(np.asarray(t), t.data)
    assert t.numpy() is t.data and t.sum().item() == 10.0
    assert repr(mg.tensor(1.0, requires_grad=True)) == "tensor(1., requires_grad=True)"
    assert "op=mul" in repr(mg.tensor(1.0, requires_grad=True) * 2)
    assert t.reshape(4).shape == (4,) and t.reshape((1, 4)).shape == (1, 4)
    assert t.flatten().shape == (4,)
    assert mg.tensor(np.zeros((2, 3, 4))).transpose().shape == (4, 3, 2)
    assert mg.tensor(np.zeros((2, 3, 4))).transpose(1, 0, 2).shape == (3, 2, 4)


def test_truth_value_numbers_and_iteration_follow_numpy():
    # Without __bool__, bool() fell back to len(): tensor([0.]) was True, tensor(0.) a TypeError.
    assert not mg.tensor([0.0]) and mg.tensor(2.0) and not mg.tensor(0.0)
    with pytest.raises(ValueError, match="ambiguous"):
        bool(mg.tensor([1.0, 2.0]))
    assert float(mg.tensor(2.5)) == 2.5 and int(mg.tensor(3.0)) == 3
    x = leaf([-1.0, 2.0])
    abs(x).sum().backward()
    np.testing.assert_array_equal(x.grad.data, [-1.0, 1.0])
    rows = list(mg.tensor([[1.0, 2.0], [3.0, 4.0]]))
    assert len(rows) == 2 and rows[1].data.tolist() == [3.0, 4.0]
    with pytest.raises(TypeError, match="iteration over a 0-d tensor"):
        list(mg.tensor(5.0))  # it was [], silently


def test_the_methods_a_numpy_or_pytorch_user_reaches_for_first():
    t = mg.tensor([[1.0, 5.0, 2.0], [7.0, 0.0, 3.0]])
    assert t.tolist() == [[1.0, 5.0, 2.0], [7.0, 0.0, 3.0]]
    assert mg.tensor(2.5).tolist() == 2.5
    # NumPy's axis= (not PyTorch's dim=); plain integer arrays, as comparisons give.
    assert t.argmax() == 3 and t.argmin() == 4
    assert t.argmax(axis=1).tolist() == [1, 0] and t.argmin(axis=0).tolist() == [0, 1, 0]
    assert t.argmax(axis=1, keepdims=True).shape == (2, 1)
    assert isinstance(t.argmax(axis=0), np.ndarray)
    w = mg.tensor([1.0, 2.0])
    assert w.requires_grad_() is w and w.requires_grad  # in place, returns the tensor
    assert w.requires_grad_(False) is w and not w.requires_grad
    with pytest.raises(TypeError, match="only floating-point tensors"):
        mg.Tensor(np.arange(3)).requires_grad_()


@pytest.mark.parametrize("outer", [True, False])
def test_grad_modes_restore_the_previous_mode_when_the_body_raises(outer):
    # Without try/finally, an exception in the body left grad off for the rest of the program.
    with mg.enable_grad() if outer else mg.no_grad():
        for mode in (mg.no_grad, mg.enable_grad):
            with pytest.raises(KeyError):
                with mode():
                    raise KeyError("in the body")
            assert mg.is_grad_enabled() is outer
    assert mg.is_grad_enabled()


def test_numpys_floating_point_errors_name_the_op_forward_and_backward():
    # Under np.seterr(all="raise") NumPy's own error said only "divide by zero encountered".
    x = mg.tensor([-1.0, 0.0], requires_grad=True)
    with np.errstate(all="raise"), pytest.raises(FloatingPointError, match=r"^log: .*forward"):
        F.log(x)
    y = F.sqrt(mg.tensor([0.0, 4.0], requires_grad=True)).sum()
    with (
        np.errstate(all="raise"),
        pytest.raises(FloatingPointError, match=r"^sqrt: divide by zero.*gradient for input 0"),
    ):
        y.backward()
    with mg.detect_anomaly(), pytest.raises(mg.AnomalyError, match="sqrt"):
        F.sqrt(mg.tensor([0.0], requires_grad=True)).sum().backward()  # still an AnomalyError
