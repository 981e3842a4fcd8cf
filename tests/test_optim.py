"""minigrad.optim: each update rule against its formula, dtypes, and the book's gradient descent."""

import numpy as np
import pytest

import minigrad as mg
from minigrad import nn, optim

W0 = np.array([[0.5, -1.0], [2.0, 0.25]])
GRADS = [
    np.array([[0.1, -0.2], [0.3, 0.0]]),
    np.array([[-0.4, 0.5], [0.05, 0.2]]),
    np.array([[0.2, 0.1], [-0.3, -0.6]]),
]


def run_steps(make_optimizer, dtype=np.float64):
    """Apply GRADS to a fresh parameter and return its value after each step."""
    w = nn.Parameter(W0.astype(dtype))
    opt = make_optimizer([w])
    values = []
    for g in GRADS:
        opt.zero_grad()
        assert w.grad is None
        w.grad = mg.Tensor(g.astype(dtype))
        opt.step()
        values.append(w.data.copy())
    return values


def reference(update):
    """The same steps computed by hand from the formula `update(w, g, state, t) -> new w`."""
    w, state, values = W0.copy(), {}, []
    for t, g in enumerate(GRADS, start=1):
        w = update(w, g, state, t)
        values.append(w)
    return values


def assert_steps(actual, expected):
    for step, (a, e) in enumerate(zip(actual, expected, strict=True), start=1):
        np.testing.assert_allclose(a, e, rtol=1e-12, atol=1e-15, err_msg=f"step {step}")


def test_sgd():
    assert_steps(
        run_steps(lambda p: optim.SGD(p, lr=0.1)), reference(lambda w, g, s, t: w - 0.1 * g)
    )


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sgd_takes_a_learning_rate_set_between_steps(dtype):
    # as a schedule does; SGD keeps lr as an array of each dtype, which must follow
    w, g = nn.Parameter(np.ones(3, dtype)), np.array([1.0, 2.0, 4.0], dtype)
    opt = optim.SGD([w], lr=0.5)
    for lr in (0.5, 0.25):
        opt.lr = lr
        w.grad = mg.Tensor(g)
        opt.step()
    np.testing.assert_array_equal(w.data, 1 - 0.5 * g - 0.25 * g)


@pytest.mark.parametrize(
    "shape, transposed",
    [((700, 300), False), ((300, 700), True), ((100_003,), False), ((3, 40_000), False)],
)
def test_sgd_updates_large_and_non_contiguous_parameters_exactly(shape, transposed):
    # Every element gets exactly w - lr * g, and the gradient is left as it was.
    rng = np.random.default_rng(0)
    w0 = rng.standard_normal(shape).astype(np.float32)
    g = rng.standard_normal(shape).astype(np.float32)
    w = nn.Parameter(w0.T.copy().T if transposed else w0.copy())
    w.grad = mg.Tensor(g.T.copy().T if transposed else g.copy())
    optim.SGD([w], lr=0.1).step()
    np.testing.assert_array_equal(w.data, w0 - np.float32(0.1) * g)
    np.testing.assert_array_equal(w.grad.data, g)


def test_sgd_momentum():
    def update(w, g, s, t):
        s["v"] = g if t == 1 else 0.9 * s["v"] + g
        return w - 0.1 * s["v"]

    assert_steps(run_steps(lambda p: optim.SGD(p, lr=0.1, momentum=0.9)), reference(update))


def test_sgd_momentum_is_the_books_momentum():
    # The book: v <- a v - lr g; W <- W + v (v starts at zero).
    def update(w, g, s, t):
        s["v"] = 0.9 * s.get("v", 0) - 0.1 * g
        return w + s["v"]

    assert_steps(run_steps(lambda p: optim.SGD(p, lr=0.1, momentum=0.9)), reference(update))


def test_sgd_nesterov():
    def update(w, g, s, t):
        s["v"] = g if t == 1 else 0.9 * s["v"] + g
        return w - 0.1 * (g + 0.9 * s["v"])

    opt = lambda p: optim.SGD(p, lr=0.1, momentum=0.9, nesterov=True)
    assert_steps(run_steps(opt), reference(update))


def test_sgd_weight_decay_with_momentum():
    def update(w, g, s, t):
        d = g + 0.01 * w
        s["v"] = d if t == 1 else 0.5 * s["v"] + d
        return w - 0.1 * s["v"]

    opt = lambda p: optim.SGD(p, lr=0.1, momentum=0.5, weight_decay=0.01)
    assert_steps(run_steps(opt), reference(update))


def test_adagrad():
    def update(w, g, s, t):
        s["h"] = s.get("h", 0) + g * g
        return w - 0.5 * g / (np.sqrt(s["h"]) + 1e-10)

    assert_steps(run_steps(lambda p: optim.AdaGrad(p, lr=0.5)), reference(update))


def test_rmsprop():
    def update(w, g, s, t):
        s["h"] = 0.9 * s.get("h", 0) + 0.1 * g * g
        return w - 0.01 * g / (np.sqrt(s["h"]) + 1e-8)

    assert_steps(run_steps(lambda p: optim.RMSProp(p, lr=0.01, alpha=0.9)), reference(update))


def test_adam_with_bias_correction():
    b1, b2, lr, eps = 0.8, 0.9, 0.01, 1e-8

    def update(w, g, s, t):
        s["m"] = b1 * s.get("m", 0) + (1 - b1) * g
        s["v"] = b2 * s.get("v", 0) + (1 - b2) * g * g
        m_hat, v_hat = s["m"] / (1 - b1**t), s["v"] / (1 - b2**t)
        return w - lr * m_hat / (np.sqrt(v_hat) + eps)

    opt = lambda p: optim.Adam(p, lr=lr, betas=(b1, b2), eps=eps)
    assert_steps(run_steps(opt), reference(update))


def test_adam_first_step_moves_each_weight_by_lr():
    # With bias correction, m_hat / sqrt(v_hat) = g / |g| on the first step.
    first = run_steps(lambda p: optim.Adam(p, lr=0.01))[0]
    expected = W0 - 0.01 * np.sign(GRADS[0])
    np.testing.assert_allclose(first, expected, atol=1e-8)


def test_adam_weight_decay_is_l2_not_adamw():
    def update(w, g, s, t):
        d = g + 0.1 * w
        s["m"] = 0.9 * s.get("m", 0) + 0.1 * d
        s["v"] = 0.999 * s.get("v", 0) + 0.001 * d * d
        return w - 1e-3 * (s["m"] / (1 - 0.9**t)) / (np.sqrt(s["v"] / (1 - 0.999**t)) + 1e-8)

    assert_steps(run_steps(lambda p: optim.Adam(p, weight_decay=0.1)), reference(update))


OPTIMIZERS = {
    "sgd": lambda p: optim.SGD(p, lr=0.1),
    "momentum": lambda p: optim.SGD(p, lr=0.1, momentum=0.9, weight_decay=1e-4),
    "nesterov": lambda p: optim.SGD(p, lr=0.1, momentum=0.9, nesterov=True),
    "adagrad": lambda p: optim.AdaGrad(p, lr=0.5),
    "rmsprop": lambda p: optim.RMSProp(p, lr=0.05),
    "adam": lambda p: optim.Adam(p, lr=0.1),
}


@pytest.mark.parametrize("name", OPTIMIZERS)
@pytest.mark.parametrize("grad_shape", [(2,), (1, 2), (3, 2)])
def test_a_grad_of_another_shape_is_an_error_not_a_broadcast(name, grad_shape):
    w = nn.Parameter(W0.copy())
    w.grad = mg.Tensor(np.ones(grad_shape))
    with pytest.raises(ValueError, match=r"shape \(2, 2\) has a \.grad of shape"):
        OPTIMIZERS[name]([w]).step()
    np.testing.assert_array_equal(w.data, W0)  # nothing was changed


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_a_read_only_parameter_is_refused_before_any_update(name):
    # e.g. weights from np.load(..., mmap_mode="r"): NumPy's "output array is read-only"
    # came after the parameters before it had been updated.
    frozen = W0.copy()
    frozen.flags.writeable = False
    a, b = nn.Parameter(W0.copy()), nn.Parameter(frozen)
    a.grad, b.grad = mg.Tensor(np.ones((2, 2))), mg.Tensor(np.ones((2, 2)))
    opt = OPTIMIZERS[name]([a, b])
    with pytest.raises(ValueError, match=r"shape \(2, 2\) holds a read-only array.*np\.array"):
        opt.step()
    np.testing.assert_array_equal(a.data, W0)
    assert opt.state == [{}, {}]


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_a_bad_grad_later_in_the_list_leaves_every_parameter_and_state_as_it_was(name):
    # The check ran inside the update loop: the parameters before the bad one were updated.
    a, b = nn.Parameter(W0.copy()), nn.Parameter(W0.copy())
    a.grad, b.grad = mg.Tensor(np.ones((2, 2))), mg.Tensor(np.ones(3))
    opt = OPTIMIZERS[name]([a, b])
    with pytest.raises(ValueError, match="has a .grad of shape"):
        opt.step()
    np.testing.assert_array_equal(a.data, W0)
    assert opt.state == [{}, {}]


def test_momentum_keeps_the_parameter_dtype_for_a_grad_of_another_dtype():
    w = nn.Parameter(np.ones(3, np.float32))
    w.grad = mg.Tensor(np.full(3, 0.5))  # float64, set by hand
    opt = optim.SGD([w], lr=0.1, momentum=0.9)
    opt.step()
    assert opt.state[0]["velocity"].dtype == np.float32 and w.dtype == np.float32


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_a_0d_parameter_takes_the_same_steps_as_an_element_of_an_array(name):
    # Every rule is elementwise. On 0-d arrays NumPy gives scalars, which an in-place
    # `v *= momentum` only rebinds: SGD's velocity with weight decay stayed at its first value.
    whole = run_steps(OPTIMIZERS[name])
    for index in np.ndindex(W0.shape):
        w = nn.Parameter(W0[index].copy())
        opt = OPTIMIZERS[name]([w])
        for step, g in enumerate(GRADS):
            w.grad = mg.Tensor(g[index].copy())
            opt.step()
            np.testing.assert_allclose(w.data, whole[step][index], rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_parameters_without_grad_are_left_alone(name):
    a, b = nn.Parameter([1.0, 2.0]), nn.Parameter([3.0])
    opt = OPTIMIZERS[name]([a, b])
    a.grad = mg.tensor([0.5, -0.5])
    opt.step()
    assert not np.array_equal(a.data, [1.0, 2.0])
    np.testing.assert_array_equal(b.data, [3.0])
    assert opt.state[1] == {}


class DtypeWatch(np.ndarray):
    """An array that records the dtype of every ufunc result computed from it."""

    seen: set[np.dtype] = set()

    def __array_ufunc__(self, ufunc, method, *inputs, out=None, **kwargs):
        plain = [np.asarray(x) if isinstance(x, DtypeWatch) else x for x in inputs]
        if out is not None:
            kwargs["out"] = tuple(np.asarray(o) for o in out)
        result = getattr(ufunc, method)(*plain, **kwargs)
        DtypeWatch.seen.add(np.asarray(result).dtype)
        if out is not None:
            return out[0] if len(out) == 1 else out
        return result.view(DtypeWatch) if isinstance(result, np.ndarray) else result


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_float32_updates_compute_in_float32(name):
    w = nn.Parameter(W0.astype(np.float32))
    opt = OPTIMIZERS[name]([w])
    # NumPy 2 promotes float32 by a float64 scalar: a scheduler that sets a
    # NumPy lr must not turn the update into float64 work.
    opt.lr = np.float64(opt.lr)
    w.data = w.data.view(DtypeWatch)
    DtypeWatch.seen = set()
    for g in GRADS:
        w.grad = mg.Tensor(g.astype(np.float32))
        w.grad.data = w.grad.data.view(DtypeWatch)
        opt.step()
    assert DtypeWatch.seen == {np.dtype(np.float32)}
    for value in opt.state[0].values():
        if isinstance(value, np.ndarray):
            assert value.dtype == np.float32


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_updates_in_place_and_minimizes(name):
    w = nn.Parameter(np.array([3.0, -2.0]))
    data = w.data
    opt = OPTIMIZERS[name]([w])
    for _ in range(200):
        opt.zero_grad()
        ((w - mg.tensor(np.array([1.0, 1.0]))) ** 2).sum().backward()
        opt.step()
    assert w.data is data  # the same array: no copies, no graph
    assert w.is_leaf
    np.testing.assert_allclose(w.data, [1.0, 1.0], atol=0.05)


def test_step_does_not_write_into_the_gradient():
    w = nn.Parameter(W0.copy())
    g = GRADS[0].copy()
    opt = optim.SGD([w], lr=0.1, momentum=0.9, weight_decay=0.1)
    for _ in range(2):
        w.grad = mg.Tensor(g)
        opt.step()
    np.testing.assert_array_equal(g, GRADS[0])


def test_zero_grad_clears_gradients():
    w = nn.Parameter([1.0])
    w.grad = mg.tensor([1.0])
    optim.Adam([w]).zero_grad()
    assert w.grad is None


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda p: optim.SGD(p, lr=-0.1), "lr must be a finite number >= 0"),
        (lambda p: optim.SGD(p, lr=float("nan")), "lr must be a finite number >= 0"),
        (lambda p: optim.SGD(p, momentum=-1), "momentum must be a finite number >= 0"),
        (lambda p: optim.SGD(p, nesterov=True), "Nesterov momentum needs momentum > 0"),
        (lambda p: optim.SGD(p, weight_decay=-1), "weight_decay must be a finite number >= 0"),
        (lambda p: optim.RMSProp(p, alpha=1.0), "alpha must be in"),
        (lambda p: optim.Adam(p, betas=(0.9, 1.0)), "betas must be"),
        (lambda p: optim.Adam(p, betas=0.9), "betas must be two numbers"),
        (lambda p: optim.Adam(p, betas=(0.9, 0.99, 0.999)), "betas must be two numbers"),
        (lambda p: optim.SGD(p * 2), "a parameter appears twice"),
        (lambda p: optim.Adam(p, eps=-1), "eps must be a finite number >= 0"),
        (lambda p: optim.SGD(p, lr=float("inf")), "lr must be a finite number >= 0"),
        (lambda p: optim.SGD(p, momentum=float("inf")), "momentum must be a finite number"),
        (lambda p: optim.SGD([]), "empty parameter list"),
    ],
)
def test_bad_hyperparameters(make, message):
    with pytest.raises(ValueError, match=message):
        make([nn.Parameter([1.0])])


@pytest.mark.parametrize("value", [True, "0.1", None])
def test_a_hyperparameter_that_is_not_a_number_is_a_type_error(value):
    # lr=True trained with lr 1.0 without a word.
    with pytest.raises(TypeError, match="lr must be a number"):
        optim.SGD([nn.Parameter([1.0])], lr=value)


def test_a_negative_lr_set_later_is_rejected():
    opt = optim.SGD([nn.Parameter([1.0])], lr=0.1)
    with pytest.raises(ValueError, match="lr must be a finite number >= 0"):
        opt.lr = -1.0
    assert opt.lr == 0.1


def test_optimizer_given_one_tensor_instead_of_a_list_says_so():
    # It iterated the tensor and complained about an empty list or non-leaf rows.
    for w in (nn.Parameter(1.0), nn.Parameter([1.0, 2.0])):
        with pytest.raises(TypeError, match=r"iterable of tensors .*got a single Tensor"):
            optim.SGD(w, lr=0.1)


@pytest.mark.parametrize("params", [[np.zeros(2)], [mg.tensor([1.0], requires_grad=True) * 2]])
def test_optimizer_takes_only_leaf_tensors(params):
    with pytest.raises(TypeError, match="leaf tensors, such as model.parameters()"):
        optim.SGD(params)


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_a_frozen_parameter_is_taken_and_left_alone_until_unfrozen(name):
    # model.parameters() with one parameter frozen was refused; PyTorch takes it.
    model = nn.Linear(2, 1, rng=0)
    model.W.requires_grad = False
    W = model.W.data.copy()
    opt = OPTIMIZERS[name](model.parameters())
    model(np.ones((1, 2))).sum().backward()
    opt.step()
    np.testing.assert_array_equal(model.W.data, W)
    model.W.requires_grad = True
    model(np.ones((1, 2))).sum().backward()
    opt.step()
    assert not np.array_equal(model.W.data, W)


# ---------------------------------------------------------------- gradient_descent


def book_function(x):
    return x[0] ** 2 + x[1] ** 2


INIT = np.array([-3.0, 4.0])


def test_gradient_descent_reaches_the_minimum():
    x = optim.gradient_descent(book_function, INIT, lr=0.1, step_num=100)
    # Each step multiplies x by 1 - 2 lr; the book prints [-6.1e-10, 8.1e-10].
    np.testing.assert_allclose(x, 0.8**100 * INIT, rtol=1e-9)
    assert np.abs(x).max() < 1e-9


def test_gradient_descent_with_a_huge_lr_diverges():
    x = optim.gradient_descent(book_function, INIT, lr=10.0, step_num=100)
    # Exact gradients give 19^100 (-3, 4). The book's -2.6e13 is where its
    # central difference stops seeing any slope (see the docstring).
    np.testing.assert_allclose(x, 19.0**100 * INIT, rtol=1e-9)
    assert np.abs(x).min() > 1e13


def test_gradient_descent_with_a_tiny_lr_barely_moves():
    x = optim.gradient_descent(book_function, INIT, lr=1e-10, step_num=100)
    np.testing.assert_allclose(x, [-2.99999994, 3.99999992], rtol=1e-9)  # the book's figures
    assert not np.array_equal(x, INIT)


def test_gradient_descent_history_and_input_untouched():
    init = INIT.copy()
    x, path = optim.gradient_descent(
        lambda x: (x * x).sum(), init, lr=0.1, step_num=5, history=True
    )
    assert path.shape == (6, 2)
    np.testing.assert_array_equal(path[0], INIT)
    np.testing.assert_array_equal(path[-1], x)
    np.testing.assert_allclose(path[1], 0.8 * INIT)
    np.testing.assert_array_equal(init, INIT)


def test_gradient_descent_dtypes_and_constant_function():
    assert optim.gradient_descent(book_function, [-3.0, 4.0], step_num=3).dtype == np.float32
    assert optim.gradient_descent(book_function, INIT, step_num=3).dtype == np.float64
    x = optim.gradient_descent(lambda x: mg.tensor(1.0), INIT, step_num=3)
    np.testing.assert_array_equal(x, INIT)
    with pytest.raises(TypeError, match="grad\\(\\) takes tensors, got float"):
        optim.gradient_descent(lambda x: 1.0, INIT, step_num=3)


def test_an_optimizer_given_the_model_names_the_fix():
    # It said "not the result of an op" (iterating an MLP gives its layers).
    for model in (nn.MLP([2, 3, 1]), nn.TwoLayerNet(2, 3, 1)):
        with pytest.raises(TypeError, match=r"not the model: Adam\(model.parameters\(\), ...\)"):
            optim.Adam(model)


# ---------------------------------------------------------------- state_dict

STATEFUL = {
    "momentum": lambda p: optim.SGD(p, lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01),
    "adagrad": lambda p: optim.AdaGrad(p, lr=0.1, eps=1e-6),
    "rmsprop": lambda p: optim.RMSProp(p, lr=0.1, alpha=0.9),
    "adam": lambda p: optim.Adam(p, lr=0.1, betas=(0.8, 0.95), weight_decay=0.1),
}


@pytest.mark.parametrize("name", STATEFUL)
def test_state_dict_round_trip_continues_exactly(name, tmp_path):
    # Two steps, save, a third step: a fresh optimizer loaded from the save takes the same third.
    make = STATEFUL[name]
    w = nn.Parameter(W0.astype(np.float32))
    opt = make([w])
    for g in GRADS[:2]:
        w.grad = mg.Tensor(g.astype(np.float32))
        opt.step()
    np.savez(tmp_path / "opt.npz", **opt.state_dict())
    saved_w = w.data.copy()
    w.grad = mg.Tensor(GRADS[2].astype(np.float32))
    opt.step()

    w2 = nn.Parameter(saved_w)
    fresh = make([w2])
    fresh.lr = 5.0  # overwritten by the state, as every hyperparameter is
    with np.load(tmp_path / "opt.npz", allow_pickle=False) as archive:
        fresh.load_state_dict(dict(archive))
    assert fresh.lr == 0.1
    w2.grad = mg.Tensor(GRADS[2].astype(np.float32))
    fresh.step()
    np.testing.assert_array_equal(w2.data, w.data)
    assert all(
        a.dtype == np.float32 for s in fresh.state for a in s.values() if hasattr(a, "dtype")
    )


def test_state_dict_holds_hyperparameters_and_buffers_as_arrays():
    w = nn.Parameter([1.0, 2.0])
    opt = optim.Adam([w], lr=0.5, betas=(0.8, 0.9))
    w.grad = mg.tensor([0.1, 0.2])
    opt.step()
    state = opt.state_dict()
    assert set(state) == {"lr", "betas", "eps", "weight_decay", "state.0.step", "state.0.m",
                          "state.0.v"}  # fmt: skip
    assert all(isinstance(a, np.ndarray) for a in state.values())
    assert state["betas"].tolist() == [0.8, 0.9] and state["state.0.step"] == 1
    state["state.0.m"][0] = 99.0  # a copy, not the optimizer's own buffer
    assert opt.state[0]["m"][0] != 99.0


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda s: s.pop("betas"), "missing key 'betas'"),
        (lambda s: s.update(extra=np.zeros(1)), "unexpected key 'extra'"),
        (lambda s: s.update({"state.5.m": np.zeros(2)}), "unexpected key 'state.5.m'"),
        (lambda s: s.update({"state.0.m": np.zeros((2, 1))}), r"state.0.m: expected .*\(2,\)"),
        (lambda s: s.pop("state.0.v"), "state.0: has m, step but not v"),
        (lambda s: s.update({"state.0.step": np.array(-1)}), "an integer >= 0"),
        (lambda s: s.update(lr=np.array(-1.0)), "lr must be a finite number >= 0"),
        (lambda s: s.update(betas=np.array([0.9, 1.5])), "betas must be"),
        (lambda s: s.update(eps=[[1.0], [1.0, 2.0]]), "eps: expected an array, got a ragged"),
    ],
)
def test_load_state_dict_checks_everything_before_changing_anything(change, message):
    w = nn.Parameter([1.0, 2.0])
    opt = optim.Adam([w], lr=0.5)
    w.grad = mg.tensor([0.1, 0.2])
    opt.step()
    state = opt.state_dict()
    change(state)
    other = optim.Adam([nn.Parameter([0.0, 0.0])], lr=0.25, betas=(0.5, 0.5))
    with pytest.raises(ValueError, match=message):
        other.load_state_dict(state)
    assert other.lr == 0.25 and other.betas == (0.5, 0.5) and other.state == [{}]
