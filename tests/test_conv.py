"""Convolutional networks beyond the registry's property tests (tests/test_ops.py covers each
op's forward, first and second derivatives): adjointness, conventions at ties, errors, the
modules, the book's chapter-7 weights, and a short training run."""

import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minigrad as mg
import minigrad.functional as F
from minigrad import cli, data, nn, optim
from minigrad import testing as mt
from minigrad.viz import to_dot
from minigrad.viz.cli import _model_loss

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "datasets"
# The book's chapter-7 weights and the full MNIST, beside the checkout or where these say
BOOK_WEIGHTS = Path(
    os.environ.get("MINIGRAD_TEST_CONVNET_WEIGHTS")
    or SHARED / "book-sample-weights" / "simple_convnet.npz"
)
MNIST_DIR = Path(os.environ.get("MINIGRAD_TEST_MNIST") or SHARED / "mnist")


# ---------------------------------------------------------------- im2col and col2im


@given(data=st.data())
def test_col2im_is_the_adjoint_of_im2col(data):
    """<im2col(x), c> = <x, col2im(c)> for every x and c: col2im is im2col's transpose,
    which is what makes it im2col's gradient."""
    (x, kernel), kwargs = data.draw(mt.cases(F.im2col))
    col = F.im2col(x, kernel, **kwargs)
    c = data.draw(mt.arrays(col.shape))
    back = F.col2im(c, x.shape, kernel, **kwargs)
    assert back.shape == x.shape
    np.testing.assert_allclose(np.vdot(col, c), np.vdot(x, back), rtol=1e-12, atol=1e-12)


def test_im2col_gives_the_books_shapes_and_rows():
    rng = np.random.default_rng(0)
    assert F.im2col(rng.random((1, 3, 7, 7)), 5).shape == (9, 75)  # the book's section 7.4.3
    assert F.im2col(rng.random((10, 3, 7, 7)), 5).shape == (90, 75)
    x = np.arange(9.0).reshape(1, 1, 3, 3)
    np.testing.assert_array_equal(
        F.im2col(x, 2), [[0, 1, 3, 4], [1, 2, 4, 5], [3, 4, 6, 7], [4, 5, 7, 8]]
    )
    # padding is zeros; stride 2 takes every other window; a pair gives a non-square kernel
    np.testing.assert_array_equal(F.im2col(x, 2, stride=2, pad=1)[0], [0, 0, 0, 0])
    np.testing.assert_array_equal(F.im2col(x, (1, 3)), [[0, 1, 2], [3, 4, 5], [6, 7, 8]])
    # overlapping windows add up on the way back: the centre is in all four 2x2 windows
    np.testing.assert_array_equal(F.col2im(np.ones((4, 4)), x.shape, 2)[0, 0], [[1, 2, 1], [2, 4, 2], [1, 2, 1]])  # fmt: skip


def test_float32_stays_float32_without_float64_temporaries():
    x = mg.Tensor(np.random.default_rng(0).random((2, 3, 6, 6), dtype=np.float32), requires_grad=True)  # fmt: skip
    W = mg.Tensor(np.ones((4, 3, 3, 3), np.float32), requires_grad=True)
    y = F.max_pool2d(F.conv2d(x, W, np.zeros(4, np.float32), pad=1), 2)
    y = F.avg_pool2d(y, 3, stride=1, pad=1)
    assert y.dtype == np.float32
    y.sum().backward()
    assert x.grad.dtype == W.grad.dtype == np.float32
    assert F.im2col(x.data, 3).dtype == F.col2im(np.ones((32, 27), np.float32), x.shape, 3).dtype == np.float32  # fmt: skip


# ---------------------------------------------------------------- convolution


def test_conv2d_takes_ints_or_pairs_and_matches_a_loop():
    rng = np.random.default_rng(1)
    x, W, b = rng.random((2, 3, 5, 6)), rng.random((4, 3, 2, 3)), rng.random(4)
    y = F.conv2d(x, W, b, stride=(2, 1), pad=(1, 0))
    assert y.shape == (2, 4, (5 + 2 - 2) // 2 + 1, 6 - 3 + 1)
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (0, 0)))
    expected = np.array(
        [[[[np.sum(xp[n, :, 2 * i : 2 * i + 2, j : j + 3] * W[f]) + b[f]
            for j in range(4)] for i in range(3)] for f in range(4)] for n in range(2)]
    )  # fmt: skip
    np.testing.assert_allclose(y, expected, rtol=1e-12)
    np.testing.assert_array_equal(F.conv2d(x, W, b, 1, 1), F.conv2d(x, W, b, (1, 1), (1, 1)))


def test_conv2d_second_derivative_through_a_net():
    """Hessian-vector products need conv2d's VJPs to be differentiable (create_graph)."""
    from minigrad.gradcheck import gradgradcheck

    rng = np.random.default_rng(2)
    x, W = rng.standard_normal((2, 2, 5, 5)), rng.standard_normal((3, 2, 3, 3))
    assert gradgradcheck(lambda x, W: F.tanh(F.max_pool2d(F.conv2d(x, W, pad=1), 2)), x, W)


# ---------------------------------------------------------------- pooling


def test_max_pool_splits_the_gradient_of_tied_entries_evenly():
    """The convention `max` follows, pinned at exact values (the property tests avoid ties)."""
    x = mg.Tensor(np.array([[[[1.0, 1.0, 3.0, 0.0], [0.0, 0.0, 2.0, 2.0]]]]), requires_grad=True)
    y = F.max_pool2d(x, 2)
    np.testing.assert_array_equal(y.data, [[[[1.0, 3.0]]]])
    y.backward(np.array([[[[1.0, 4.0]]]]))
    np.testing.assert_array_equal(x.grad.data, [[[[0.5, 0.5, 4.0, 0.0], [0.0, 0.0, 0.0, 0.0]]]])
    # a window of four equal entries gives each a quarter; overlapping windows add up
    x = mg.Tensor(np.zeros((1, 1, 3, 3)), requires_grad=True)
    F.max_pool2d(x, 2, stride=1).sum().backward()
    np.testing.assert_array_equal(x.grad.data[0, 0], [[0.25, 0.5, 0.25], [0.5, 1, 0.5], [0.25, 0.5, 0.25]])  # fmt: skip
    # create_graph's gradient, written with ops, keeps the same convention
    (g,) = mg.grad(F.max_pool2d(x, 2, stride=1).sum(), x, create_graph=True)
    np.testing.assert_array_equal(g.data, x.grad.data)


def test_pool_padding():
    x = -np.arange(1.0, 5.0).reshape(1, 1, 2, 2)  # all negative: zero padding would win a max
    np.testing.assert_array_equal(F.max_pool2d(x, 2, stride=1, pad=1)[0, 0], [[-1, -1, -2], [-1, -1, -2], [-3, -3, -4]])  # fmt: skip
    # average pooling counts the padding as zeros and divides by the whole window
    np.testing.assert_array_equal(F.avg_pool2d(-x, 2, stride=1, pad=1)[0, 0], [[0.25, 0.75, 0.5], [1, 2.5, 1.5], [0.75, 1.75, 1]])  # fmt: skip


# ---------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: F.conv2d(np.ones((3, 5, 5)), np.ones((2, 3, 3, 3))), r"x must be images of shape \(N, C, H, W\), got 3-d shape \(3, 5, 5\)"),
        (lambda: F.conv2d(np.ones((1, 3, 5, 5)), np.ones((2, 3, 3))), r"W must be filters of shape \(FN, C, FH, FW\), got shape \(2, 3, 3\)"),
        (lambda: F.conv2d(np.ones((1, 3, 5, 5)), np.ones((2, 1, 3, 3))), "x has 3 channels .* but the filters expect 1"),
        (lambda: F.conv2d(np.ones((1, 1, 5, 5)), np.ones((2, 1, 3, 3)), np.ones(3)), r"b must have shape \(2,\), one per filter, got \(3,\)"),
        (lambda: F.conv2d(np.ones((1, 1, 2, 5)), np.ones((2, 1, 3, 3))), "the 3x3 kernel is larger than the padded input, 2x5"),
        (lambda: F.conv2d(np.ones((1, 1, 5, 5)), np.ones((2, 1, 3, 3)), stride=0), "conv2d: stride must be at least 1, got 0"),
        (lambda: F.im2col(np.ones((1, 1, 5, 5)), 3, pad=-1), "im2col: pad must be at least 0"),
        (lambda: F.col2im(np.ones((5, 9)), (1, 1, 4, 4), 3), r"col must have shape \(4, 9\) .* got \(5, 9\)"),
        (lambda: F.max_pool2d(np.ones((1, 1, 4, 4)), 2, pad=2), "pad 2 must be smaller than the kernel 2"),
        (lambda: F.avg_pool2d(np.ones((4, 4)), 2), "x must be images of shape"),
        (lambda: F.batch_norm(np.ones((2, 3, 4)), np.ones(3), np.ones(3)), r"x must be \(N, D\) or \(N, C, H, W\)"),
        (lambda: F.batch_norm(np.ones((2, 3)), np.ones(4), np.ones(3)), r"gamma must have shape \(3,\), one per feature"),
        (lambda: F.batch_norm(np.ones((1, 3)), np.ones(3), np.ones(3)), "more than one value per feature"),
        (lambda: F.batch_norm(np.ones((2, 3)), np.ones(3), np.ones(3), training=False), "running_mean and running_var are needed"),
        (lambda: F.flatten(np.float64(1.0)), "flatten: x must have a batch axis"),
    ],
)  # fmt: skip
def test_bad_input_says_what_was_expected(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_bad_window_sizes_are_type_errors():
    with pytest.raises(TypeError, match=r"kernel_size must be an int or a pair of ints \(height, width\), got 2.5"):  # fmt: skip
        F.max_pool2d(np.ones((1, 1, 4, 4)), 2.5)
    with pytest.raises(TypeError, match="conv2d takes arrays or tensors, got a list"):
        F.conv2d([[[[1.0]]]], np.ones((1, 1, 1, 1)))
    with pytest.raises(ValueError, match="Conv2d kernel_size must be an int >= 1 or a pair"):
        nn.Conv2d(1, 2, (3, 0))


# ---------------------------------------------------------------- batch normalization


def test_batch_norm_normalizes_per_channel_and_updates_running_statistics_in_training_only():
    rng = np.random.default_rng(3)
    x = rng.normal(2.0, 3.0, (8, 2, 3, 3))
    mean, var = np.zeros(2), np.ones(2)
    y = F.batch_norm(x, np.ones(2), np.zeros(2), mean, var, training=True, momentum=0.9)
    np.testing.assert_allclose(y.mean(axis=(0, 2, 3)), 0, atol=1e-12)
    np.testing.assert_allclose(y.var(axis=(0, 2, 3)), 1, rtol=1e-4)  # eps = 1e-5
    # the book's momentum: keep 0.9 of the old value (PyTorch's momentum=0.1); biased variance
    np.testing.assert_allclose(mean, 0.1 * x.mean(axis=(0, 2, 3)), rtol=1e-12)
    np.testing.assert_allclose(var, 0.9 + 0.1 * x.var(axis=(0, 2, 3)), rtol=1e-12)
    before = mean.copy(), var.copy()
    y = F.batch_norm(x, np.full(2, 2.0), np.ones(2), mean, var, training=False, eps=0.0)
    np.testing.assert_array_equal(mean, before[0])  # eval: used, not updated
    np.testing.assert_allclose(y, 2 * (x - mean[:, None, None]) / np.sqrt(var[:, None, None]) + 1)


def test_batch_norm_modules_train_and_eval_differ_and_save_their_running_statistics(tmp_path):
    rng = np.random.default_rng(4)
    model = nn.Sequential(nn.Conv2d(1, 3, 3, rng=0), nn.BatchNorm2d(3), nn.Flatten(),
                          nn.Linear(12, 4, rng=0), nn.BatchNorm1d(4))  # fmt: skip
    x = rng.normal(1.0, 2.0, (5, 1, 4, 4))
    # parameters are gamma and beta; the running statistics are buffers, saved with them
    assert [n for n, _ in model.named_parameters()][2:4] == ["layers.1.gamma", "layers.1.beta"]
    assert [n for n, _ in model.named_buffers()] == [
        "layers.1.running_mean", "layers.1.running_var",
        "layers.4.running_mean", "layers.4.running_var",
    ]  # fmt: skip
    first = model(x).data
    assert not np.allclose(model(x[:3]).data, first[:3])  # training: the batch's statistics
    assert not np.array_equal(model.layers[1].running_mean.data, np.zeros(3))
    model.eval()
    evaluated = model(x).data
    np.testing.assert_allclose(model(x[:3]).data, evaluated[:3], rtol=1e-12)  # eval: per sample
    state = model.state_dict()
    assert set(state) >= {"layers.1.running_var", "layers.4.running_mean"}
    model.save(tmp_path / "bn.npz")
    copy = nn.Sequential(nn.Conv2d(1, 3, 3, rng=1), nn.BatchNorm2d(3), nn.Flatten(),
                         nn.Linear(12, 4, rng=1), nn.BatchNorm1d(4)).eval()  # fmt: skip
    copy.load(tmp_path / "bn.npz")
    for (name, a), b in zip(state.items(), copy.state_dict().values(), strict=True):
        np.testing.assert_array_equal(a, b, err_msg=name)
    np.testing.assert_array_equal(copy(x).data, evaluated)
    del state["layers.4.running_var"]
    with pytest.raises(ValueError, match="missing key 'layers.4.running_var'"):
        copy.load_state_dict(state)
    with pytest.raises(ValueError, match=r"BatchNorm2d takes inputs of shape \(N, num_features, H, W\)"):  # fmt: skip
        nn.BatchNorm2d(3)(np.ones((2, 3)))


def test_batch_norm_running_statistics_are_not_trained():
    bn = nn.BatchNorm1d(3)
    assert len(list(bn.parameters())) == 2
    opt = optim.SGD(bn.parameters(), lr=0.1)
    F.sum(bn(np.random.default_rng(5).random((4, 3))) ** 2).backward()
    opt.step()
    assert bn.running_mean.grad is None and not bn.running_mean.requires_grad


# ---------------------------------------------------------------- modules and models


def test_conv_modules_shapes_and_he_init_by_fan_in():
    conv = nn.Conv2d(3, 64, (3, 5), stride=2, pad=1, rng=0)
    assert conv.W.shape == (64, 3, 3, 5) and conv.b.shape == (64,)
    assert abs(conv.W.data.std() / math.sqrt(2 / (3 * 3 * 5)) - 1) < 0.05  # fan-in C * FH * FW
    assert nn.Conv2d(3, 4, 3, bias=False).b is None
    x = np.zeros((2, 3, 9, 8), np.float32)
    assert conv(x).shape == (2, 64, 5, 3)
    assert nn.MaxPool2d(2)(x).shape == nn.AvgPool2d(2)(x).shape == (2, 3, 4, 4)
    assert nn.MaxPool2d(3, stride=1, pad=1)(x).shape == (2, 3, 9, 8)
    assert nn.Flatten()(x).shape == (2, 216)


def test_simple_conv_net_is_the_books():
    model = nn.SimpleConvNet(rng=0)
    shapes = [p.shape for p in model.parameters()]
    assert shapes == [(30, 1, 5, 5), (30,), (4320, 100), (100,), (100, 10), (10,)]
    assert abs(model.layers[4].W.data.std() - 0.01) < 0.001  # the book's 0.01 * randn
    assert model(np.zeros((2, 1, 28, 28), np.float32)).shape == (2, 10)
    assert [type(m).__name__ for m in model.layers] == [
        "Conv2d", "ReLU", "MaxPool2d", "Flatten", "Linear", "ReLU", "Linear"
    ]  # fmt: skip


def test_deep_conv_net_is_the_books_and_drops_out_only_in_training():
    model = nn.DeepConvNet(rng=0)
    convs = [m for m in model.layers if isinstance(m, nn.Conv2d)]
    assert [c.W.shape[0] for c in convs] == [16, 16, 32, 32, 64, 64]
    assert [c.pad for c in convs] == [(1, 1)] * 3 + [(2, 2)] + [(1, 1)] * 2
    assert sum(isinstance(m, nn.MaxPool2d) for m in model.layers) == 3
    assert model.layers[-5].W.shape == (64 * 4 * 4, 50) and model.layers[-2].W.shape == (50, 10)
    assert abs(convs[5].W.data.std() / math.sqrt(2 / (64 * 9)) - 1) < 0.05  # He
    x = np.random.default_rng(6).random((4, 1, 28, 28)).astype(np.float32)
    assert not np.array_equal(model(x).data, model(x).data)  # a new mask each call
    model.eval()
    np.testing.assert_array_equal(model(x).data, model(x).data)


def _book_network_by_hand(params, x):
    """The book's SimpleConvNet (shared/datasets/README.md) written with np.einsum over
    windows: no im2col, nothing of minigrad's."""
    windows = np.lib.stride_tricks.sliding_window_view(x, (5, 5), axis=(2, 3))
    y = np.einsum("nchwkl,fckl->nfhw", windows, params["W1"]) + params["b1"][:, None, None]
    y = np.maximum(y, 0)
    n, f, h, w = y.shape
    y = y.reshape(n, f, h // 2, 2, w // 2, 2).max(axis=(3, 5)).reshape(n, -1)
    y = np.maximum(y @ params["W2"] + params["b2"], 0)
    return y @ params["W3"] + params["b3"]


@pytest.mark.skipif(
    not (BOOK_WEIGHTS.is_file() and MNIST_DIR.is_dir()),
    reason=f"the book's chapter-7 weights and MNIST are not at {BOOK_WEIGHTS} and {MNIST_DIR} "
    "(set MINIGRAD_TEST_CONVNET_WEIGHTS and MINIGRAD_TEST_MNIST to a copy)",
)
def test_the_books_chapter_7_weights_give_the_books_predictions():
    """On the first 300 test images; all 10,000 give 0.9600 (examples/ch7_convolution.py)."""
    _, (x, t) = data.load_mnist(data_dir=MNIST_DIR, flatten=False, download=False)
    x, t = x[:300], t[:300]
    model = nn.SimpleConvNet.from_book_params(BOOK_WEIGHTS)
    assert model.layers[0].W.dtype == np.float64  # the book's dtype: float64 all through
    with np.load(BOOK_WEIGHTS, allow_pickle=False) as archive:
        params = {k: archive[k] for k in archive.files}
    with mg.no_grad():
        scores = model(x).data
    expected = _book_network_by_hand(params, x)
    np.testing.assert_allclose(scores, expected, rtol=1e-10, atol=1e-10)
    np.testing.assert_array_equal(scores.argmax(axis=1), expected.argmax(axis=1))
    assert np.count_nonzero(scores.argmax(axis=1) == t) == 294  # measured, and by hand above
    missing = {k: v for k, v in params.items() if k != "b2"}
    with pytest.raises(ValueError, match="missing b2"):
        nn.SimpleConvNet.from_book_params(missing)


# ---------------------------------------------------------------- training and the commands


def test_a_short_training_run_lowers_the_loss():
    (x, t), _ = data.load_mnist_subset(flatten=False)
    model = nn.SimpleConvNet(rng=0)
    opt = optim.Adam(model.parameters(), lr=0.001)
    losses = []
    for i in range(30):
        batch = slice(50 * (i % 10), 50 * (i % 10) + 50)
        loss = F.softmax_cross_entropy(model(x[batch]), t[batch])
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert np.mean(losses[-5:]) < 0.6 * np.mean(losses[:5]), losses


def test_train_command_trains_the_convnets(capsys):
    assert cli.main(["train", "--model", "simple-cnn", "--iters", "20", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert float(out.split("test accuracy ")[1].split()[0]) > 0.5
    assert cli.main(["train", "--model", "deep-cnn", "--data", "spiral"]) == 2
    assert "--model deep-cnn takes MNIST images" in capsys.readouterr().err
    assert cli.main(["train", "--model", "simple-cnn", "--hidden", "100"]) == 2
    assert "--hidden and --activation are for --model mlp" in capsys.readouterr().err


def test_graph_command_draws_the_convnet_with_its_modules_as_clusters(tmp_path):
    loss, model = _model_loss("simple-cnn", None)
    source = to_dot(loss, modules=model).source
    assert "layers.0: Conv2d" in source and source.count("subgraph cluster_") == 3
    done = subprocess.run(
        [sys.executable, "-m", "minigrad", "graph", "--model", "deep-cnn", "--sizes", "4,3"],
        capture_output=True, text=True, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 2 and "--sizes is for the fully connected models" in done.stderr
