"""Particular ops' behaviour: conventions at kinks, stable forms, losses, errors, dtypes.

The property tests of every op (tests/test_ops.py) keep away from kinks and
edge cases; these pin what happens there, one op or a few at a time.
"""

import re

import numpy as np
import pytest

import minigrad as mg
import minigrad.functional as F
from minigrad.gradcheck import gradcheck, gradgradcheck


def leaf(values, dtype=np.float64):
    return mg.Tensor(np.array(values, dtype=dtype), requires_grad=True)


# ---------------------------------------------------------------- conventions at non-differentiable points


@pytest.mark.parametrize(
    "fn, x, expected",
    [
        (F.relu, 0.0, 0.0),
        (F.abs, 0.0, 0.0),
        (F.step, 0.0, 0.0),
        (F.step, 1.0, 0.0),
        (lambda t: F.clip(t, 0.0, 1.0), 0.0, 1.0),  # at the bounds, as PyTorch's clamp
        (lambda t: F.clip(t, 0.0, 1.0), 1.0, 1.0),
        (lambda t: F.clip(t, 0.0, 1.0), 0.5, 1.0),
        (lambda t: F.clip(t, 0.0, 1.0), 1.5, 0.0),
        (lambda t: F.maximum(t, mg.tensor(2.0, dtype=np.float64)), 2.0, 0.5),
        (lambda t: F.minimum(t, 2.0), 2.0, 0.5),
        (lambda t: F.leaky_relu(t, 0.1), 0.0, 0.1),
    ],
)
def test_gradient_at_non_differentiable_points(fn, x, expected):
    t = leaf(x)
    fn(t).sum().backward()
    assert t.grad.item() == expected


def test_tied_maxima_split_the_gradient_evenly():
    x = leaf([[1.0, 3.0, 3.0], [2.0, 2.0, 2.0]])
    x.max(axis=1).sum().backward()
    np.testing.assert_allclose(x.grad.data, [[0, 0.5, 0.5], [1 / 3, 1 / 3, 1 / 3]])


def test_where_sends_nothing_to_the_branch_not_taken_and_the_masking_fix_works():
    x = leaf([-1.0, 4.0])
    with np.errstate(invalid="ignore", divide="ignore"):
        F.where(x > 0, F.sqrt(x), 0.0).sum().backward()
    assert np.isnan(x.grad.data[0])  # the documented trap: sqrt's own gradient is NaN at -1
    x.zero_grad()
    F.where(x > 0, F.sqrt(F.where(x > 0, x, 1.0)), 0.0).sum().backward()
    np.testing.assert_allclose(x.grad.data, [0.0, 0.25])


def test_clip_with_bounds_that_broadcast_the_input():
    x = leaf([0.5, 1.5])
    F.clip(x, np.array([[0.0], [1.0]]), 2.0).sum().backward()  # output (2, 2)
    np.testing.assert_array_equal(x.grad.data, [1.0, 2.0])


# ---------------------------------------------------------------- arithmetic


@pytest.mark.parametrize("zero", [0, 0.0, np.float32(0)])  # a NumPy scalar gave NaN
def test_the_gradient_of_x_to_the_zero_is_zero_even_at_zero(zero):
    # b a^(b-1) gave 0 * inf = NaN at a = 0, with NumPy's divide-by-zero warning.
    x = leaf([0.0, 2.0])
    with np.errstate(all="raise"):
        F.sum(x**zero).backward()
    np.testing.assert_array_equal(x.grad.data, [0.0, 0.0])


def test_pow_gradients_at_a_zero_base_are_zero_not_nan():
    # d/db a^b = a^b log a gave 0 * -inf = NaN at a = 0, and through a broadcast exponent
    # that NaN spread to the whole gradient. PyTorch gives 0 there (for b >= 0).
    x, p = leaf([-1.0, 0.5, 2.0]), leaf(2.0)
    with np.errstate(all="raise"):
        (F.relu(x) ** p).sum().backward()
    assert p.grad.item() == pytest.approx(0.25 * np.log(0.5) + 4 * np.log(2))
    t = leaf([2.0, 0.0])
    with np.errstate(all="raise"):
        (0.0**t).sum().backward()
    np.testing.assert_array_equal(t.grad.data, [0.0, 0.0])
    # d/da a^0 at a = 0 with an array exponent: b a^(b-1) = 0 * inf.
    a, b = leaf([0.0, 3.0, 0.0]), leaf([0.0, 0.0, 2.0])
    with np.errstate(divide="ignore"):  # a^(b-1) is still computed where it is not used
        (a**b).sum().backward()
    np.testing.assert_array_equal(a.grad.data, [0.0, 0.0, 0.0])
    np.testing.assert_array_equal(b.grad.data, [0.0, np.log(3.0), 0.0])


def test_pow_second_derivatives_away_from_a_zero_base_are_the_formulas():
    # The zero-base fixes must not change d2/da db where a != 0, b = 0: there it is 1 / a.
    a, b = leaf([2.0, 0.0]), leaf([0.0, 0.0])
    (ga,) = mg.grad((a**b).sum(), a, create_graph=True)
    (gab,) = mg.grad(ga.sum(), b)
    assert gab.data[0] == pytest.approx(0.5)


def test_create_graph_keeps_float32_with_a_number_base():
    # 2 ** x's gradient took log(2) as a NumPy float64 scalar and came out float64.
    x = mg.tensor([0.5, 1.0], requires_grad=True)
    (g,) = mg.grad(F.sum(2**x), x, create_graph=True)
    assert g.dtype == np.float32
    np.testing.assert_allclose(g.data, np.log(2) * 2**x.data, rtol=1e-6)


# ---------------------------------------------------------------- linear algebra


def test_matmul_shape_mismatch_names_both_shapes():
    with pytest.raises(ValueError, match=r"\(2, 3\) and \(4, 5\)"):
        mg.tensor(np.ones((2, 3))) @ mg.tensor(np.ones((4, 5)))


def test_matmul_and_linear_refuse_lists_clearly():
    # They failed with AttributeError: 'list' object has no attribute 'ndim'.
    w = leaf(np.ones((2, 3)))
    with pytest.raises(TypeError, match="matmul takes arrays or tensors, got a list"):
        leaf([[1.0, 2.0]]) @ [[1.0], [1.0]]
    with pytest.raises(TypeError, match="linear takes arrays or tensors, got a list"):
        F.linear([[1.0, 1.0]], w)
    b = [0.5, 0.5, 0.5]  # a bias may be a list: it takes the weights' dtype, as a number does
    F.linear(leaf([[1.0, 1.0]]), w, b).sum().backward()
    np.testing.assert_array_equal(w.grad.data, np.ones((2, 3)))


@pytest.mark.parametrize(
    "w, b, message",
    [
        (
            np.ones((3, 2, 1)),
            None,
            "x must have shape (..., in) and w shape (in, out) or (in,), got (2, 3) and (3, 2, 1)",
        ),
        (np.ones((3, 2)), np.ones((1, 2)), "the bias must have shape (2,), got (1, 2)"),
    ],
)
def test_linear_checks_the_weight_and_bias_shapes(w, b, message):
    # A (1, 2) bias got a (2,) gradient; a 1-D w (one output) is fine, see test_ops.
    with pytest.raises(ValueError, match=re.escape(message)):
        F.linear(leaf(np.ones((2, 3))), leaf(w), None if b is None else leaf(b))


def test_linear_follows_numpy_promotion_for_the_bias():
    x, w = np.ones((1, 2), np.float32), np.ones((2, 1), np.float32)
    y = F.linear(x, w, np.array([1e-9]))  # float64 bias: was rounded into float32
    assert y.dtype == np.float64 and y[0, 0] - 2 == pytest.approx(1e-9)
    y = F.linear(np.array([[1, 2]]), np.array([[1], [1]]), leaf([0.5]))  # was a casting error
    assert y.dtype == np.float64 and y.item() == 3.5
    y = F.linear(np.array([[1, 2]]), np.array([[1], [1]]), [0.5])  # so was a list or a number
    assert y.dtype == np.float64 and y.item() == 3.5
    assert F.linear(np.array([1, 2]), np.array([1, 1]), 0.5) == 3.5
    y = F.linear(x, np.ones(2, np.float32), np.float64(0.5))  # a NumPy float64 promotes too
    assert y.dtype == (x @ np.ones(2, np.float32) + np.float64(0.5)).dtype == np.float64


@pytest.mark.parametrize("x_shape", [(4,), (3, 4), (2, 3, 4)])
def test_linear_with_a_1d_weight_has_the_right_gradients(x_shape):
    # y = x . w + b, one output per row (the book's perceptron); a (2, 3, 4) x gave the
    # scalar bias a (3,) gradient.
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal(x_shape), rng.standard_normal(4)
    assert gradcheck(F.linear, x, w, np.array(0.5))
    assert gradgradcheck(F.linear, x, w, np.array(0.5))


@pytest.mark.parametrize(
    "x_shape, w_shape", [((2, 5, 0), (0, 3)), ((2, 5, 3), (3, 0)), ((0,), (0, 3))]
)
def test_linear_with_a_zero_size_side_has_zero_gradients(x_shape, w_shape):
    # Backward reshaped with -1, which NumPy cannot infer when a side is 0.
    x, w = leaf(np.ones(x_shape)), leaf(np.ones(w_shape))
    b = leaf(np.ones(w_shape[1:]))
    F.linear(x, w, b).sum().backward()
    for t in (x, w):
        assert t.grad.shape == t.shape and not t.grad.data.any()
    np.testing.assert_array_equal(b.grad.data, np.full(w_shape[1:], np.prod(x_shape[:-1])))


# ---------------------------------------------------------------- activations


def test_float16_sigmoid_of_a_very_negative_input():
    # exp(12) overflows float16 (and a cap on exp's argument gave 4.1e-5 instead of 6.1e-6).
    for n in (1, 5000):
        y = F.sigmoid(mg.tensor(np.full(n, -12.0, np.float16))).data
        assert y.dtype == np.float16
        assert y[0] == pytest.approx(1 / (1 + np.exp(12.0)), rel=1e-3)


EXTREMES = [-1000.0, -100.0, -88.0, -30.0, -1.5, 0.0, 1.5, 30.0, 88.0, 100.0, 1000.0]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sigmoid_gives_the_same_value_and_gradient_whatever_the_arrays_size(dtype):
    # float32 sigmoid(-1000) was 7.99e-39 in arrays under 4,096 elements (a cap on exp's
    # argument) and 0 from 4,096 up, so log(sigmoid(x)) was -87.7 or -inf by batch size.
    points = np.array(EXTREMES, dtype)
    values = {}
    for n in (1, 4095, 4096, 10**5):
        v = np.resize(points, n)  # each point at least once, in every size
        x = leaf(v, dtype)
        with np.errstate(all="raise", under="ignore"):  # underflow: see the next test
            y = F.sigmoid(x)
        (y * 2.0).sum().backward()
        assert y.dtype == x.grad.dtype == dtype
        for i, p in enumerate(points[:n]):
            values.setdefault(p, set()).add((y.data[i].item(), x.grad.data[i].item()))
    for p, seen in values.items():
        assert len(seen) == 1, f"sigmoid({p}) in {np.dtype(dtype)} depends on the size: {seen}"
    y = F.sigmoid(points.astype(np.float64)).data
    expected = [1 / (1 + np.exp(-p)) if p >= 0 else np.exp(p) / (1 + np.exp(p)) for p in EXTREMES]
    with np.errstate(over="ignore", under="ignore"):
        np.testing.assert_allclose(y, expected, rtol=1e-15, atol=0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sigmoid_raises_nothing_for_any_input(dtype):
    # No overflow, invalid value or division for any input (the old formula's exp(-x)
    # overflowed), and, under np.errstate(all="raise"), not the underflow of exp(-|x|) either:
    # 0 is the right answer there (it raised, so the common debugging setting stopped on it).
    edge = 80.0 if dtype == np.float32 else 700.0  # exp(-edge) is still a normal number
    with np.errstate(all="raise"):
        y = F.sigmoid(mg.tensor(np.array([-edge, -1.0, 0.0, 1.0, edge], dtype))).data
        assert y[2] == 0.5 and y[4] == 1.0 and 0 < y[0] < 1e-30
        y = F.sigmoid(mg.tensor(np.array([-1000.0, 1000.0], dtype))).data
    np.testing.assert_array_equal(y, [0.0, 1.0])


def raises_nothing(fn, *args):
    with np.errstate(all="raise"):
        out = fn(*args)
        out.sum().backward()
    return out


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_stable_ops_do_not_raise_on_harmless_underflow(dtype):
    # Under np.seterr(all="raise") each of these raised "underflow encountered in exp".
    def x(*values):
        return mg.Tensor(np.array(values, dtype), requires_grad=True)

    big = [[1000.0, 0.0]]
    assert raises_nothing(F.sigmoid, x(-1000.0, 1000.0)).data.tolist() == [0.0, 1.0]
    assert raises_nothing(F.log_sigmoid, x(-1000.0, 1000.0)).data.tolist() == [-1000.0, 0.0]
    assert raises_nothing(F.softmax, x(*big[0])).data.tolist() == [1.0, 0.0]
    assert raises_nothing(F.log_softmax, x(*big[0])).data.tolist() == [0.0, -1000.0]
    assert raises_nothing(F.logsumexp, x(*big[0])).item() == 1000.0
    labels = np.array([1])
    assert raises_nothing(F.softmax_cross_entropy, x(*big), labels).item() == 1000.0
    assert (
        raises_nothing(F.sigmoid_cross_entropy, x(1000.0, -1000.0), np.array([1.0, 0.0])).item()
        == 0.0
    )
    probabilities = F.softmax(x(*big))
    raises_nothing(lambda p: F.cross_entropy_error(p, np.array([0])), probabilities)


def test_an_overflow_in_a_stable_op_still_raises_when_asked():
    with np.errstate(all="raise"), pytest.raises(FloatingPointError, match="invalid"):
        F.softmax(mg.tensor([np.inf, 0.0]))


def test_sigmoid_takes_integers_to_float64_and_keeps_float16():
    assert F.sigmoid(np.array([-3, 0, 3])).dtype == np.float64  # as np.exp takes int64
    np.testing.assert_allclose(F.sigmoid(np.array([-3, 0, 3])), 1 / (1 + np.exp([3, 0, -3])))
    assert F.sigmoid(mg.tensor(np.zeros(3, np.float16))).dtype == np.float16
    assert F.sigmoid(2.0) == pytest.approx(1 / (1 + np.exp(-2.0)))  # a number, as ufuncs take


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_log_of_sigmoid_is_finite_wherever_sigmoid_is_not_zero(dtype):
    # Where sigmoid's true value is a number of the dtype, log(sigmoid(x)) is finite. Below
    # the dtype's smallest number (about -745 in float64, -104 in float32) sigmoid rounds to
    # 0, as np.exp does, and log(sigmoid(x)) is -inf: that is what log_sigmoid is for. In
    # float32, sigmoid is subnormal from about -87 (fewer digits), and below about -88.7 the
    # gradient of log, 1 / sigmoid(x), overflows.
    low = np.array([-700.0 if dtype == np.float64 else -100.0], dtype)
    with np.errstate(all="raise", under="ignore"):
        assert F.log(F.sigmoid(mg.tensor(low))).item() == pytest.approx(low[0], rel=1e-3)
    x = leaf([-88.0, -30.0, 0.0], dtype)
    with np.errstate(all="raise", under="ignore"):
        y = F.log(F.sigmoid(x))
        y.sum().backward()
    np.testing.assert_allclose(y.data, [-88.0, -30.0, -np.log(2.0)], rtol=1e-6)
    np.testing.assert_allclose(x.grad.data, [1.0, 1.0, 0.5], rtol=1e-6)  # 1 - sigmoid(x)
    with np.errstate(divide="ignore"):
        assert F.log(F.sigmoid(mg.tensor(np.array([-1000.0], dtype)))).item() == -np.inf


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_log_sigmoid_is_finite_for_any_input(dtype):
    x = leaf(EXTREMES, dtype)
    with np.errstate(all="raise", under="ignore"):
        y = F.log_sigmoid(x)
        y.sum().backward()
    assert y.dtype == x.grad.dtype == dtype
    # log sigmoid(x) = x - log(1 + e^x) ~ x for very negative x, -e^-x ~ 0 for large x
    np.testing.assert_allclose(y.data[:3], EXTREMES[:3], rtol=1e-6)
    assert y.data[-1] == 0.0 and y.data[5] == pytest.approx(-np.log(2.0))
    # the gradient, 1 - sigmoid(x) = sigmoid(-x), each side in a form that does not overflow
    expected = [1 / (1 + np.exp(p)) if p < 0 else np.exp(-p) / (1 + np.exp(-p)) for p in EXTREMES]
    np.testing.assert_allclose(x.grad.data, expected, rtol=1e-6, atol=1e-30)


def test_leaky_relu_of_integers_keeps_the_slope():
    np.testing.assert_array_equal(F.leaky_relu(np.array([-100, 5])), [-1.0, 5.0])


# ---------------------------------------------------------------- softmax family and stable forms


def test_stable_forms_do_not_overflow():
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        x = mg.tensor([1010.0, 1000.0, 990.0])
        assert np.all(np.isfinite(F.softmax(x).data))
        assert np.all(np.isfinite(F.log_softmax(x).data))
        assert 0.0 <= F.sigmoid(mg.tensor([-1000.0])).item() < 1e-37
        assert F.sigmoid(mg.tensor([1000.0])).item() == 1.0
        big = F.sigmoid(mg.tensor(np.tile([-1000.0, 0.0, 1000.0], 5000))).data
        np.testing.assert_array_equal(big[:3], [0.0, 0.5, 1.0])
        loss = F.softmax_cross_entropy(mg.tensor([[1000.0, -1000.0]]), np.array([1]))
        assert loss.item() == pytest.approx(2000.0)


def test_book_softmax_values():
    y = F.softmax(mg.tensor([0.3, 2.9, 4.0], dtype=np.float64))
    np.testing.assert_allclose(y.data, [0.01821127, 0.24519181, 0.73659691], atol=5e-9)


def test_softmax_family_over_an_empty_axis():
    # NumPy's max has no identity: they raised ValueError. logsumexp of nothing is -inf.
    x = leaf(np.zeros((0, 3)))
    with np.errstate(divide="ignore"):  # log 0
        y = F.logsumexp(x, axis=0)
        np.testing.assert_array_equal(y.data, [-np.inf] * 3)
        y.sum().backward()
        assert x.grad.shape == (0, 3)
        assert F.softmax(x, axis=0).shape == F.log_softmax(x, axis=0).shape == (0, 3)


def test_logsumexp_of_infinite_rows_is_infinite_not_nan():
    x = mg.tensor([[-np.inf, -np.inf], [np.inf, 1.0], [0.0, 0.0]])
    with np.errstate(divide="ignore"):  # log 0, as NumPy says
        out = F.logsumexp(x, axis=1).data
    np.testing.assert_allclose(out, [-np.inf, np.inf, np.log(2)])  # the first two were NaN


# ---------------------------------------------------------------- reductions


@pytest.mark.parametrize("reduce", [
    lambda s: s.sum(axis=0), lambda s: s.max(axis=-1), lambda s: F.logsumexp(s),
])  # fmt: skip
def test_reducing_a_0d_tensor_over_its_only_axis(reduce):
    # NumPy takes axis 0 or -1 of a 0-d array; backward divided by its zero dimensions.
    s = leaf(2.0)
    reduce(s).backward()
    assert s.grad.item() == 1.0


@pytest.mark.parametrize("axis", [0, -1, ()])
def test_mean_of_a_0d_tensor_over_its_axis_is_itself_as_sum_is(axis):
    x = leaf(2.0)  # np.mean raised an AxisError here, where np.sum takes the axis
    y = F.mean(x, axis=axis)
    assert y.item() == F.sum(x, axis=axis).item() == 2.0
    y.backward()
    assert x.grad.item() == 1.0


def test_mean_of_an_empty_array_backpropagates():
    x = leaf(np.zeros((0, 3)))
    with pytest.warns(RuntimeWarning, match="Mean of empty slice"), np.errstate(invalid="ignore"):
        y = F.mean(x, axis=0)  # NaN, with NumPy's warning, as np.mean gives
    y.backward(np.ones(3))
    assert x.grad.shape == (0, 3)  # it was a ZeroDivisionError


# ---------------------------------------------------------------- shapes, indexing and casts


def test_sum_to_a_shape_x_does_not_broadcast_to_is_an_error():
    with pytest.raises(ValueError, match=re.escape("cannot sum shape (3, 4) down to (2, 4)")):
        F.sum_to(np.ones((3, 4)), (2, 4))  # it returned the (3, 4) array unchanged
    with pytest.raises(ValueError, match="cannot sum shape"):
        F.sum_to(np.ones(4), (2, 4))


def test_indexing_scatters_gradient_and_sums_repeats():
    x = leaf(np.arange(12.0).reshape(3, 4))
    x[np.array([0, 2, 0]), 1:3].sum().backward()
    expected = np.zeros((3, 4))
    expected[0, 1:3] = 2
    expected[2, 1:3] = 1
    np.testing.assert_array_equal(x.grad.data, expected)


def test_concat_of_a_list_and_a_tensor_and_with_axis_none():
    # Backward read .shape off every input (a list has none) and took axis None % ndim.
    x = leaf(np.ones((2, 3)))
    F.concat([[[0.0, 0.0, 0.0]], x]).sum().backward()
    np.testing.assert_array_equal(x.grad.data, np.ones((2, 3)))
    x.grad = None
    y = F.concat([x, x * 2], axis=None)  # np.concatenate flattens first
    assert y.shape == (12,)
    (y * np.arange(12.0)).sum().backward()
    np.testing.assert_array_equal(
        x.grad.data, np.arange(6.0).reshape(2, 3) + 2 * np.arange(6.0, 12.0).reshape(2, 3)
    )


def test_astype_converts_and_its_gradient_converts_back():
    x = mg.tensor([1.0, 2.0], requires_grad=True)  # float32
    y = x.astype(np.float64) ** 3
    assert y.dtype == np.float64
    (g,) = mg.grad(y.sum(), x, create_graph=True)
    assert g.dtype == np.float32
    np.testing.assert_array_equal(g.data, [3.0, 12.0])
    (h,) = mg.grad(g.sum(), x)
    np.testing.assert_array_equal(h.data, [6.0, 12.0])


@pytest.mark.parametrize("dtype", [np.int32, bool])
def test_a_cast_to_int_or_bool_has_no_gradient(dtype):
    # It kept requires_grad: d/dx of (cast * 3) came out 3, and 0.5 was truncated to 0.
    x = leaf([1.7, 2.2])
    q = x.astype(dtype)
    assert not q.requires_grad
    (g,) = mg.grad((q * 3.0 + x).sum(), x)
    np.testing.assert_array_equal(g.data, [1.0, 1.0])


# ---------------------------------------------------------------- losses


def test_softmax_cross_entropy_gradient_is_the_books_formula():
    x = leaf([[0.1, 2.0, -1.0], [0.5, 0.5, 3.0]])
    t = np.array([1, 2])
    F.softmax_cross_entropy(x, t).backward()
    p = np.exp(x.data) / np.exp(x.data).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(x.grad.data, (p - np.eye(3)[t]) / 2)
    x.zero_grad()
    F.softmax_cross_entropy(x, np.eye(3)[t]).backward()  # one-hot labels agree
    np.testing.assert_allclose(x.grad.data, (p - np.eye(3)[t]) / 2)


@pytest.mark.parametrize("labels", ["indices", "one-hot"])
def test_softmax_cross_entropy_saved_probabilities_survive_and_are_freed(labels):
    x = leaf([[0.1, 2.0, -1.0], [0.5, 0.5, 3.0]])
    t = np.array([1, 2]) if labels == "indices" else np.eye(3)[[1, 2]]
    loss = F.softmax_cross_entropy(x, t)
    saved = loss._node.saved[0].copy()
    loss.backward(retain_graph=True)
    first = x.grad.data.copy()
    np.testing.assert_array_equal(loss._node.saved[0], saved)  # the VJP did not write into it
    loss.backward()
    np.testing.assert_allclose(x.grad.data, 2 * first)  # the second backward saw the same
    assert loss._node.saved is None  # freed with the rest of the graph


def test_softmax_cross_entropy_on_transposed_logits():
    # The label entries' -1/N went into a copy for F-ordered probabilities.
    logits = np.random.default_rng(0).standard_normal((3, 4))
    labels = np.array([0, 2, 1, 1])
    a, b = leaf(logits), leaf(logits.T.copy())
    F.softmax_cross_entropy(a.T, labels).backward()
    F.softmax_cross_entropy(b, labels).backward()
    np.testing.assert_allclose(a.grad.data.T, b.grad.data)


def test_sigmoid_cross_entropy_gradient_at_a_zero_logit():
    # sigmoid(x) - t over N: relu'(0) = abs'(0) = 0 in the old formula gave -t / N.
    x = leaf([0.0, 0.0, 0.0])
    F.sigmoid_cross_entropy(x, np.array([0.0, 1.0, 1.0])).backward()
    np.testing.assert_allclose(x.grad.data, [0.5 / 3, -0.5 / 3, -0.5 / 3])


def test_mean_squared_error_divides_any_batch_by_n():
    # The docstring says a batch (N, ...); (2, 3, 4) data was divided by 1, (2, 12) by 2.
    rng = np.random.default_rng(0)
    y, t = rng.standard_normal((2, 3, 4)), rng.standard_normal((2, 3, 4))
    flat = F.mean_squared_error(y.reshape(2, 12), t.reshape(2, 12)).item()
    assert F.mean_squared_error(y, t).item() == pytest.approx(flat)


def test_mean_squared_error_of_an_empty_batch_is_nan():
    # It raised ZeroDivisionError; the other losses and PyTorch's mse_loss give NaN.
    with np.errstate(invalid="ignore"):
        out = F.mean_squared_error(leaf(np.zeros((0, 3)), np.float32), np.zeros((0, 3)))
    assert np.isnan(out.item()) and out.dtype == np.float32


@pytest.mark.parametrize(
    "loss, labels",
    [
        (F.cross_entropy_error, np.eye(3)[[0, 2]]),  # float64 one-hot, as np.eye gives
        (F.softmax_cross_entropy, np.eye(3)[[0, 2]]),
        (F.mean_squared_error, np.ones((2, 3))),
        (F.sigmoid_cross_entropy, np.array([[0, 1, 1], [1, 0, 0]])),  # integer 0/1 labels
    ],
)
@pytest.mark.parametrize("as_tensor", [False, True], ids=["array", "tensor"])
def test_float64_or_integer_labels_keep_a_float32_loss_float32(loss, labels, as_tensor):
    # The labels are data: three of these losses came out float64 from float32 scores,
    # and with labels as tensors (a DataLoader's batches) after that was fixed for arrays.
    y = leaf([[0.2, 0.3, 0.5], [0.1, 0.1, 0.8]], np.float32)
    out = loss(y, mg.Tensor(labels) if as_tensor else labels)
    assert out.dtype == np.float32
    out.backward()
    assert y.grad.dtype == np.float32


def test_a_float64_target_that_requires_grad_gets_a_float64_gradient():
    y = leaf([[0.5, 1.5]], np.float32)
    t = leaf([[1.0, 1.0]])
    F.mean_squared_error(y, t).backward()
    assert t.grad.dtype == np.float64
    np.testing.assert_array_equal(t.grad.data, [[0.5, -0.5]])


@pytest.mark.parametrize(
    "x, t, message",
    [
        (np.zeros((2, 3)), np.array([0, 1, 2]), r"shape \(2,\).*got int64 labels of shape \(3,\)"),
        (np.zeros((2, 3)), np.array([0, 3]), r"labels must be in \[0, 3\)"),
        (np.zeros((2, 3)), np.array([0.0, 1.0]), r"integer class indices"),
        (np.zeros((2, 3, 4)), np.array([0, 1]), r"\(N, C\)"),
    ],
)
@pytest.mark.parametrize(
    "loss", [F.softmax_cross_entropy, F.cross_entropy_error, F.accuracy]
)  # accuracy took any label
def test_loss_label_errors(x, t, message, loss):
    with pytest.raises(ValueError, match=message) as error:
        loss(mg.Tensor(x, requires_grad=True), t)
    assert not re.search(r"(\w+): \1:", str(error.value)), "the op's name is given twice"


@pytest.mark.parametrize(
    "loss", [F.softmax_cross_entropy, F.cross_entropy_error, F.accuracy]
)  # accuracy took any label
@pytest.mark.parametrize("scores", [np.full((2, 3), 0.3), np.full(3, 0.3)])
def test_a_negative_label_is_an_error_not_the_last_class(loss, scores):
    t = np.array([0, -1]) if scores.ndim == 2 else np.array(-1)
    with pytest.raises(ValueError, match=r"labels must be in \[0, 3\), got -1"):
        loss(mg.Tensor(scores, requires_grad=True), t)
