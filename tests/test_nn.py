"""minigrad.nn: registration, modes, state dicts and files, layers, initializers."""

import io
import os
import re
import stat
import zipfile

import numpy as np
import pytest

import minigrad as mg
import minigrad.functional as F
from minigrad import nn


class Block(nn.Module):
    def __init__(self):
        self.fc = nn.Linear(2, 3, rng=0)
        self.drop = nn.Dropout(0.5, rng=0)

    def forward(self, x):
        return self.drop(self.fc(x))


class Net(nn.Module):
    def __init__(self):
        self.block = Block()
        self.heads = [nn.Linear(3, 2, rng=1), nn.ReLU(), nn.Linear(2, 2, bias=False, rng=2)]
        self.scale = nn.Parameter(np.ones(1, dtype=np.float32))
        self.tied = self.block.fc  # the same module twice: its parameters count once
        self.note = "not a parameter"
        self.buffer = mg.tensor([1.0, 2.0])  # a plain tensor is not a parameter

    def forward(self, x):
        h = self.block(x)
        for layer in self.heads:
            h = layer(h)
        return h * self.scale


def make_input(n=4, k=2, seed=0):
    return mg.tensor(np.random.default_rng(seed).standard_normal((n, k)).astype(np.float32))


# ---------------------------------------------------------------- Parameter


def test_parameter_is_a_tensor_that_requires_grad():
    p = nn.Parameter([1.0, 2.0], name="w")
    assert isinstance(p, mg.Tensor) and p.requires_grad and p.is_leaf
    assert p.dtype == np.float32 and p.name == "w"
    assert not hasattr(p, "__dict__")  # keeps Tensor's __slots__


def test_parameter_rejects_integer_data():
    with pytest.raises(TypeError, match="floating-point"):
        nn.Parameter(np.arange(3))


# ---------------------------------------------------------------- registration


def test_named_parameters_follow_attributes_lists_and_submodules():
    net = Net()
    names = [name for name, _ in net.named_parameters()]
    assert names == ["block.fc.W", "block.fc.b", "heads.0.W", "heads.0.b", "heads.2.W", "scale"]
    assert [p for p in net.parameters()] == [p for _, p in net.named_parameters()]
    assert all(isinstance(p, nn.Parameter) for p in net.parameters())


def test_parameters_are_found_when_assigned_later():
    net = Net()
    net.extra = nn.Linear(2, 2)
    net.heads.append(nn.Linear(2, 2))
    names = [name for name, _ in net.named_parameters()]
    assert names[5:] == ["heads.3.W", "heads.3.b", "scale", "extra.W", "extra.b"]


def test_a_shared_parameter_counts_once():
    a = nn.Linear(3, 3)
    seq = nn.Sequential(a, nn.Tanh(), a)
    assert len(list(seq.parameters())) == 2


def test_call_runs_forward_and_base_forward_is_abstract():
    x = make_input()
    lin = nn.Linear(2, 3, rng=0)
    np.testing.assert_allclose(lin(x).data, x.data @ lin.W.data + lin.b.data, rtol=1e-6)
    with pytest.raises(NotImplementedError, match="forward"):
        nn.Module()(x)


def test_zero_grad_clears_every_parameter():
    net = Net()
    net(make_input()).sum().backward()
    assert all(p.grad is not None for p in net.parameters())
    net.zero_grad()
    assert all(p.grad is None for p in net.parameters())


def test_train_and_eval_reach_every_submodule():
    net = Net()
    assert all(m.training for m in net.modules())
    assert net.eval() is net
    assert not any(m.training for m in net.modules())
    assert not net.block.drop.training and not net.heads[1].training
    net.train()
    assert all(m.training for m in net.modules())


def test_modules_lists_each_module_once():
    net = Net()
    kinds = [type(m).__name__ for m in net.modules()]
    assert kinds == ["Net", "Block", "Linear", "Dropout", "Linear", "ReLU", "Linear"]


# ---------------------------------------------------------------- state dicts


def test_state_dict_holds_copies():
    net = Net()
    state = net.state_dict()
    assert list(state) == [name for name, _ in net.named_parameters()]
    state["scale"][...] = 5.0
    assert net.scale.data[0] == 1.0


def test_load_state_dict_round_trip_and_dtype():
    src, dst = nn.MLP([3, 4, 2], rng=0), nn.MLP([3, 4, 2], rng=1)
    state = {k: v.astype(np.float64) for k, v in src.state_dict().items()}
    assert dst.load_state_dict(state) == ([], [])
    for (name, p), (_, q) in zip(src.named_parameters(), dst.named_parameters(), strict=True):
        assert q.dtype == np.float32, name  # the model's dtype is kept
        np.testing.assert_array_equal(p.data, q.data)
    state["layers.0.W"][...] = 7.0
    assert not (dst.layers[0].W.data == 7).any()  # loaded arrays are copies


def test_load_state_dict_names_missing_unexpected_and_misshaped_keys():
    net = nn.MLP([3, 4, 2], rng=0)
    state = net.state_dict()
    del state["layers.0.b"]
    state["layers.9.W"] = np.zeros(2)
    state["layers.2.W"] = np.zeros((5, 2))
    before = net.state_dict()
    with pytest.raises(ValueError) as info:
        net.load_state_dict(state)
    message = str(info.value)
    assert "missing key 'layers.0.b'" in message
    assert "unexpected key 'layers.9.W'" in message
    assert "layers.2.W: expected shape (4, 2), got (5, 2)" in message
    for k, v in net.state_dict().items():  # a failed load changes nothing
        np.testing.assert_array_equal(v, before[k])


def test_load_state_dict_of_a_path_points_to_load():
    # A path was read as a dict of its characters: "unexpected key 'm'", and so on.
    net = nn.MLP([3, 2], rng=0)
    with pytest.raises(TypeError, match=r"got str; to read a saved file, use \.load\(path\)"):
        net.load_state_dict("model.npz")
    with pytest.raises(TypeError, match="takes a dict of arrays by name.*got NoneType$"):
        net.load_state_dict(None)


def test_load_state_dict_refuses_values_too_large_for_the_parameter_dtype():
    # 1e300 as float32 became inf, with only NumPy's overflow warning, and was loaded.
    net = nn.MLP([3, 4, 2], rng=0)
    before = net.state_dict()
    state = {k: v.astype(np.float64) for k, v in before.items()}
    state["layers.2.W"][0, 0] = 1e300
    state["layers.2.b"][0] = np.inf  # an inf stays an inf: that is no overflow
    with pytest.raises(ValueError, match=r"layers.2.W: values too large for float32$"):
        net.load_state_dict(state)
    for k, v in net.state_dict().items():
        np.testing.assert_array_equal(v, before[k])
    state["layers.2.W"][0, 0] = 1.0
    net.load_state_dict(state)
    assert np.isinf(net.layers[2].b.data[0])


def test_load_state_dict_not_strict_reports_what_it_skipped():
    net = nn.MLP([3, 4, 2], rng=0)
    state = nn.MLP([3, 4, 2], rng=1).state_dict()
    del state["layers.2.b"]
    state["other"] = np.zeros(1)
    result = net.load_state_dict(state, strict=False)
    assert result.missing_keys == ["layers.2.b"] and result.unexpected_keys == ["other"]
    np.testing.assert_array_equal(net.layers[0].W.data, state["layers.0.W"])
    state["layers.0.W"] = np.zeros((1, 1))
    with pytest.raises(ValueError, match="layers.0.W: expected shape"):  # shapes always count
        net.load_state_dict(state, strict=False)


# ---------------------------------------------------------------- files


def test_save_load_round_trip(tmp_path):
    path = tmp_path / "model.npz"
    src = nn.MLP([3, 5, 2], activation="tanh", rng=0)
    src.save(path)
    assert os.listdir(tmp_path) == ["model.npz"]  # no temporary file left behind
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask  # not a private temp file's 0600
    with np.load(path, allow_pickle=False) as archive:
        assert sorted(archive.files) == sorted(src.state_dict())
    dst = nn.MLP([3, 5, 2], activation="tanh", rng=1)
    dst.load(path)
    x = make_input(k=3)
    np.testing.assert_array_equal(dst(x).data, src(x).data)


@pytest.mark.parametrize("name", ["file", "allow_pickle", "args"])
def test_save_load_round_trip_whatever_the_parameter_names(tmp_path, name):
    # np.savez takes keys as keywords: "file" clashed with its argument, "allow_pickle"
    # was swallowed as one.
    model = nn.Module()
    setattr(model, name, nn.Parameter(np.arange(3.0, dtype=np.float32)))
    model.fc = nn.Linear(3, 2, rng=0)
    model.save(tmp_path / "m.npz")
    other = nn.Module()
    setattr(other, name, nn.Parameter(np.zeros(3, dtype=np.float32)))
    other.fc = nn.Linear(3, 2, rng=1)
    other.load(tmp_path / "m.npz")
    assert sorted(other.state_dict()) == sorted(model.state_dict())
    for key, value in model.state_dict().items():
        np.testing.assert_array_equal(other.state_dict()[key], value)


def test_save_to_the_longest_file_name_the_system_takes(tmp_path):
    # The temporary name added 19 characters, too many for a name near the 255 limit.
    path = tmp_path / ("m" * 251 + ".npz")
    nn.Linear(2, 2, rng=0).save(path)
    assert os.listdir(tmp_path) == [path.name]


def test_save_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "model.npz"
    nn.Linear(2, 2, rng=0).save(path)
    good = path.read_bytes()

    def fail(file, *args, **kwargs):
        file.write(b"half an array")
        raise OSError("disk full")

    monkeypatch.setattr(np.lib.format, "write_array", fail)
    with pytest.raises(OSError, match="disk full"):
        nn.Linear(2, 2, rng=1).save(path)
    assert path.read_bytes() == good and os.listdir(tmp_path) == ["model.npz"]


def test_save_through_a_symlink_writes_its_target_and_keeps_permissions(tmp_path):
    # The rename replaced the link with a plain file (the target kept the old model), and a
    # private file came back readable by all, where np.savez writes through and keeps both.
    target, link = tmp_path / "model.npz", tmp_path / "latest.npz"
    nn.Linear(2, 2, rng=0).save(target)
    os.chmod(target, 0o600)
    link.symlink_to(target.name)
    model = nn.Linear(2, 2, rng=1)
    model.save(link)
    assert link.is_symlink() and os.readlink(link) == target.name
    assert (target.stat().st_mode & 0o777) == 0o600
    loaded = nn.Linear(2, 2, rng=2)
    loaded.load(target)
    np.testing.assert_array_equal(loaded.W.data, model.W.data)
    assert sorted(os.listdir(tmp_path)) == ["latest.npz", "model.npz"]


def test_save_under_a_long_non_ascii_name(tmp_path):
    # 244 bytes is a valid name; the temporary file's, cut at 200 characters, was 379 bytes.
    path = tmp_path / ("é" * 120 + ".npz")
    nn.Linear(2, 2, rng=0).save(path)
    assert os.listdir(tmp_path) == [path.name]
    nn.Linear(2, 2).load(path)


def test_save_into_a_missing_directory_names_it(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"no directory .*nodir'"):
        nn.Linear(2, 2).save(tmp_path / "nodir" / "model.npz")
    assert os.listdir(tmp_path) == []


def test_save_where_no_file_can_be_made_names_the_path_given(tmp_path, monkeypatch):
    # The error named the hidden temporary file beside it.
    def refuse(*args):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(os, "open", refuse)
    with pytest.raises(PermissionError, match=r"Permission denied: '.*/model.npz'$"):
        nn.Linear(2, 2).save(tmp_path / "model.npz")


def test_save_onto_a_directory_says_so(tmp_path):
    (tmp_path / "model.npz").mkdir()
    with pytest.raises(IsADirectoryError, match="model.npz': it is a directory"):
        nn.Linear(2, 2).save(tmp_path / "model.npz")
    assert os.listdir(tmp_path) == ["model.npz"]


def test_load_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="no saved model at .*nothere.npz"):
        nn.Linear(2, 2).load(tmp_path / "nothere.npz")
    with pytest.raises(IsADirectoryError, match="it is a directory, not a saved model"):
        nn.Linear(2, 2).load(tmp_path)


@pytest.mark.parametrize("kind", ["garbage", "npy", "truncated", "pickled"])
def test_load_rejects_files_that_are_not_saved_models(tmp_path, kind):
    path = tmp_path / "bad.npz"
    if kind == "garbage":
        path.write_bytes(b"not a zip at all")
    elif kind == "npy":
        with open(path, "wb") as f:
            np.save(f, np.zeros(3))
    elif kind == "truncated":
        nn.Linear(2, 2).save(path)
        path.write_bytes(path.read_bytes()[:-30])
    else:
        np.savez(path, W=np.array([{"a": 1}], dtype=object))
    with pytest.raises(ValueError, match=r"bad\.npz.* is not a model saved by Module\.save"):
        nn.Linear(2, 2).load(path)


def test_load_rejects_a_model_of_another_shape(tmp_path):
    path = tmp_path / "m.npz"
    nn.MLP([3, 5, 2]).save(path)
    with pytest.raises(ValueError, match=r"layers\.0\.W: expected shape \(3, 4\), got \(3, 5\)"):
        nn.MLP([3, 4, 2]).load(path)


# ---------------------------------------------------------------- layers


def test_linear_shapes_dtype_and_bias():
    lin = nn.Linear(4, 3, rng=0)
    assert lin.W.shape == (4, 3) and lin.b.shape == (3,)
    assert lin.W.dtype == lin.b.dtype == np.float32 and not lin.b.data.any()
    no_bias = nn.Linear(4, 3, bias=False, rng=0)
    assert [n for n, _ in no_bias.named_parameters()] == ["W"]
    x = make_input(k=4)
    np.testing.assert_allclose(no_bias(x).data, x.data @ no_bias.W.data, rtol=1e-6)


def test_linear_init_choices_are_seeded():
    np.testing.assert_array_equal(nn.Linear(5, 5, rng=3).W.data, nn.Linear(5, 5, rng=3).W.data)
    assert not np.array_equal(nn.Linear(5, 5, rng=3).W.data, nn.Linear(5, 5, rng=4).W.data)
    assert not nn.Linear(5, 5, init=0.0).W.data.any()
    for bad in ["glorot", -1.0, True, None, np.inf, np.nan]:  # inf gave inf and NaN weights
        with pytest.raises(ValueError, match="init must be one of"):
            nn.Linear(2, 2, init=bad)
    assert nn.Linear(400, 300, init=np.float32(0.5), rng=0).W.data.std() > 0.4  # NumPy scalars


@pytest.mark.parametrize("n_in, n_out", [(0, 2), (2, -1), (2.0, 2), (True, 2)])
def test_linear_rejects_sizes_that_are_not_positive_ints(n_in, n_out):
    with pytest.raises(ValueError, match="Linear (in|out)_features must be a positive int"):
        nn.Linear(n_in, n_out)


@pytest.mark.parametrize(
    "args, message",
    [
        ((784, 0, 10), "hidden_size must be a positive int, got 0"),
        ((-1, 5, 2), "input_size must be a positive int, got -1"),
        ((4, 5, 2.0), "output_size must be a positive int, got 2.0"),
        ((784, 50, 10, -1.0), "weight_init_std must be a finite number >= 0, got -1.0"),
        ((784, 50, 10, "book"), "weight_init_std must be a finite number >= 0, got 'book'"),
        ((784, 50, 10, np.inf), "weight_init_std must be a finite number >= 0, got inf"),
    ],
)
def test_two_layer_net_rejects_bad_sizes_and_std(args, message):
    # (784, 0, 10) built a net that always output zeros, and a negative std was taken.
    with pytest.raises(ValueError, match=re.escape(message)):
        nn.TwoLayerNet(*args)


@pytest.mark.parametrize(
    "make, std",
    [
        (lambda: nn.xavier((400, 300), rng=0), 1 / np.sqrt(400)),
        (lambda: nn.he((400, 300), rng=0), np.sqrt(2 / 400)),
        (lambda: nn.normal((400, 300), rng=0), 0.01),
        (lambda: nn.Linear(400, 300, init="book", rng=0).W.data, 0.01),
        (lambda: nn.Linear(400, 300, init="he", rng=0).W.data, np.sqrt(2 / 400)),
        (lambda: nn.Linear(400, 300, init=0.3, rng=0).W.data, 0.3),
    ],
)
def test_initializer_statistics(make, std):
    w = make()
    assert w.shape == (400, 300) and w.dtype == np.float32
    assert abs(w.std() / std - 1) < 0.02  # 120,000 draws: the std is known to ~0.2%
    assert abs(w.mean()) < 0.02 * std


def test_initializers_follow_the_default_dtype():
    mg.set_default_dtype(np.float64)
    try:
        assert nn.he((3, 3), rng=0).dtype == np.float64
        assert nn.Linear(2, 2).b.dtype == np.float64
    finally:
        mg.set_default_dtype(np.float32)


def starts_on_a_cache_line(a: np.ndarray) -> bool:
    return a.ctypes.data % 64 == 0


def test_parameters_start_on_a_cache_line():
    # NumPy promises 16 bytes, so 14 arrays would all start on 64 by chance about once in 4**14.
    sizes = [5, 7, 3, 6, 2, 4, 3, 2]
    models = [nn.MLP(sizes, rng=0), nn.TwoLayerNet(4, 5, 3), nn.Linear(3, 2, init=0.1)]
    for model in models:
        for name, p in model.named_parameters():
            assert starts_on_a_cache_line(p.data), name
    state = models[0].state_dict()
    for loaded in (state, {k: v.astype(np.float64) for k, v in state.items()}):
        dst = nn.MLP(sizes, rng=1)
        dst.load_state_dict(loaded)
        for name, p in dst.named_parameters():
            assert starts_on_a_cache_line(p.data), name
            np.testing.assert_array_equal(p.data, state[name])


@pytest.mark.parametrize(
    "a",
    [
        np.arange(12.0).reshape(3, 4),
        np.arange(12.0, dtype=np.float32).reshape(3, 4)[:, ::2],  # not contiguous
        np.asarray(np.float32(2.5)),
        np.zeros((0, 3), np.float32),
        np.arange(5, dtype=np.int8),
    ],
)
def test_aligned_is_a_writable_copy_on_a_cache_line(a):
    b = nn.aligned(a)
    assert starts_on_a_cache_line(b) and b.flags.c_contiguous and b.flags.writeable
    assert b.shape == a.shape and b.dtype == a.dtype
    np.testing.assert_array_equal(b, a)
    assert not np.shares_memory(a, b)


@pytest.mark.parametrize(
    "module, fn",
    [
        (nn.ReLU(), F.relu),
        (nn.Sigmoid(), F.sigmoid),
        (nn.Tanh(), F.tanh),
        (nn.LeakyReLU(0.2), lambda x: F.leaky_relu(x, 0.2)),
        (nn.Softmax(axis=0), lambda x: F.softmax(x, axis=0)),
    ],
)
def test_activation_modules_apply_their_function(module, fn):
    x = make_input()
    np.testing.assert_array_equal(module(x).data, fn(x).data)
    assert list(module.parameters()) == []


def test_sequential_applies_layers_in_order():
    seq = nn.Sequential(nn.Linear(2, 3, rng=0), nn.ReLU(), nn.Linear(3, 1, rng=1))
    x = make_input()
    expected = np.maximum(x.data @ seq[0].W.data, 0) @ seq[2].W.data
    np.testing.assert_allclose(seq(x).data, expected, rtol=1e-5)
    assert len(seq) == 3 and list(seq) == seq.layers
    tail = seq[1:]  # a Sequential, as in PyTorch (it was a plain list)
    assert isinstance(tail, nn.Sequential) and tail.layers == seq.layers[1:]
    np.testing.assert_allclose(tail(seq[0](x)).data, seq(x).data, rtol=1e-6)


def test_mlp_structure():
    mlp = nn.MLP([784, 100, 100, 10], activation="relu", init="he", rng=0)
    kinds = [type(layer).__name__ for layer in mlp]
    assert kinds == ["Linear", "ReLU", "Linear", "ReLU", "Linear"]
    shapes = {name: p.shape for name, p in mlp.named_parameters()}
    assert shapes == {
        "layers.0.W": (784, 100), "layers.0.b": (100,),
        "layers.2.W": (100, 100), "layers.2.b": (100,),
        "layers.4.W": (100, 10), "layers.4.b": (10,),
    }  # fmt: skip
    assert mlp(make_input(k=784)).shape == (4, 10)
    # One generator for all layers: the layers differ, the whole net is reproducible.
    again = nn.MLP([784, 100, 100, 10], activation="relu", init="he", rng=0)
    np.testing.assert_array_equal(mlp[2].W.data, again[2].W.data)


def test_mlp_takes_an_activation_module():
    act = nn.LeakyReLU(0.1)
    mlp = nn.MLP([2, 3, 3, 1], activation=act)
    assert mlp[1] is act and mlp[3] is act


@pytest.mark.parametrize("sizes", [[3], [3, 0, 2], [3, 2.5, 2], []])
def test_mlp_rejects_bad_sizes(sizes):
    with pytest.raises(ValueError, match="MLP sizes"):
        nn.MLP(sizes)


def test_mlp_rejects_unknown_activation():
    with pytest.raises(ValueError, match="unknown activation 'swish'"):
        nn.MLP([2, 2], activation="swish")


# ---------------------------------------------------------------- Dropout


def test_dropout_is_identity_in_eval_mode():
    drop = nn.Dropout(0.5, rng=0).eval()
    x = make_input(100, 10)
    assert drop(x) is x


def test_dropout_in_training_keeps_the_expected_scale():
    p = 0.3
    drop = nn.Dropout(p, rng=0)
    x = mg.tensor(np.ones((200, 500), dtype=np.float32))
    y = drop(x).data
    kept = y != 0
    assert abs(kept.mean() - (1 - p)) < 0.01  # 100,000 draws
    np.testing.assert_allclose(y[kept], 1 / (1 - p), rtol=1e-6)
    assert abs(y.mean() - 1) < 0.02
    assert y.dtype == np.float32
    assert not np.array_equal(drop(x).data, y)  # a new mask on every call


def test_dropout_gradient_uses_the_same_mask():
    x = mg.tensor(np.ones((5, 8), dtype=np.float32), requires_grad=True)
    y = nn.Dropout(0.5, rng=1)(x)
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.data, y.data)


@pytest.mark.parametrize("p", [-0.1, 1.0, 1.5])
def test_dropout_rejects_bad_probability(p):
    with pytest.raises(ValueError, match="dropout probability"):
        nn.Dropout(p)


# ---------------------------------------------------------------- TwoLayerNet


def test_two_layer_net_matches_the_book():
    net = nn.TwoLayerNet(784, 50, 10, rng=0)
    shapes = {name: p.shape for name, p in net.named_parameters()}
    assert shapes == {"W1": (784, 50), "b1": (50,), "W2": (50, 10), "b2": (10,)}
    assert abs(net.W1.data.std() / 0.01 - 1) < 0.02
    rng = np.random.default_rng(0)
    x = mg.tensor(rng.random((6, 784), dtype=np.float32))
    t = rng.integers(0, 10, 6)
    h = 1 / (1 + np.exp(-(x.data @ net.W1.data + net.b1.data)))
    scores = h @ net.W2.data + net.b2.data
    np.testing.assert_allclose(net.predict(x).data, scores, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(net.loss(x, t).item(), F.softmax_cross_entropy(scores, t), rtol=1e-6)
    assert net.accuracy(x, t) == F.accuracy(scores, t)


def test_two_layer_net_gradients_match_central_differences():
    mg.set_default_dtype(np.float64)
    try:
        net = nn.TwoLayerNet(4, 3, 2, weight_init_std=0.5, activation="relu", rng=0)
    finally:
        mg.set_default_dtype(np.float32)
    rng = np.random.default_rng(1)
    x, t = rng.standard_normal((5, 4)), rng.integers(0, 2, 5)
    net.loss(x, t).backward()
    for name, p in net.named_parameters():
        numeric = np.zeros_like(p.data)
        for i in np.ndindex(p.shape):
            keep = p.data[i]
            p.data[i] = keep + 1e-6
            up = net.loss(x, t).item()
            p.data[i] = keep - 1e-6
            down = net.loss(x, t).item()
            p.data[i] = keep
            numeric[i] = (up - down) / 2e-6
        np.testing.assert_allclose(p.grad.data, numeric, atol=1e-7, rtol=1e-5, err_msg=name)


# ---------------------------------------------------------------- what a PyTorch user tries


def test_a_module_prints_its_structure_shapes_and_parameter_count():
    # It printed <minigrad.nn.MLP object at 0x...>.
    mlp = nn.MLP([784, 50, 10], activation="sigmoid", rng=0)
    assert repr(mlp) == (
        "MLP(\n"
        "  (layers.0): Linear(W=(784, 50), b=(50,))\n"
        "  (layers.1): Sigmoid()\n"
        "  (layers.2): Linear(W=(50, 10), b=(10,))\n"
        ")  # 39,760 parameters"
    )
    assert repr(nn.Dropout(0.3)) == "Dropout(p=0.3)"  # settings by value, no count of 0
    assert repr(nn.Linear(2, 3, bias=False)) == "Linear(W=(2, 3))  # 6 parameters"


def test_the_repr_is_derived_from_any_module_s_attributes():
    """A module written later (or by a user) gets the repr without writing one."""
    assert repr(Net()) == (
        "Net(\n"
        "  scale=(1,), note='not a parameter'\n"
        "  (block): Block(\n"
        "    (fc): Linear(W=(2, 3), b=(3,))\n"
        "    (drop): Dropout(p=0.5)\n"
        "  )\n"
        "  (heads.0): Linear(W=(3, 2), b=(2,))\n"
        "  (heads.1): ReLU()\n"
        "  (heads.2): Linear(W=(2, 2))\n"
        "  (tied): Linear(W=(2, 3), b=(3,))\n"
        ")  # 22 parameters"  # the tied Linear is shown where it is, but counted once
    )


def test_the_repr_of_a_module_that_contains_itself_ends():
    loop = nn.Sequential(nn.ReLU())
    loop.layers.append(loop)
    assert repr(loop) == "Sequential(\n  (layers.0): ReLU()\n  (layers.1): Sequential(...)\n)"


def test_mlp_with_pytorch_style_sizes_names_the_fix():
    # It failed with "object of type 'int' has no len()".
    with pytest.raises(TypeError, match=re.escape("nn.MLP([2, 8, 3]), not nn.MLP(2, 8, 3)")):
        nn.MLP(2, 8, 3)
    with pytest.raises(TypeError, match=re.escape("nn.MLP([784]), not nn.MLP(784)")):
        nn.MLP(784)


@pytest.mark.parametrize(
    "make", [lambda: nn.MLP([3, 4, 2], rng=0), lambda: nn.TwoLayerNet(3, 4, 2, rng=0)]
)
def test_a_float64_batch_into_a_float32_model_runs_in_float32(make):
    # NumPy's promotion ran the whole forward in float64, without a word.
    model = make()
    x = np.random.default_rng(0).standard_normal((5, 3))  # float64, as the book's arrays
    y = model(x)
    assert y.dtype == np.float32
    np.testing.assert_allclose(y.data, model(x.astype(np.float32)).data, rtol=1e-6)
    assert model(np.arange(6).reshape(2, 3)).dtype == np.float32  # int64 would give float64 too
    xt = mg.Tensor(x, requires_grad=True)
    model(xt).sum().backward()
    assert xt.grad.dtype == np.float64  # its gradient comes back in its own dtype
    assert all(p.grad.dtype == np.float32 for p in model.parameters())


def test_a_float32_batch_into_a_float64_model_runs_in_float64():
    old = mg.get_default_dtype()
    mg.set_default_dtype(np.float64)
    try:
        model = nn.Linear(3, 2, rng=0)
    finally:
        mg.set_default_dtype(old)
    assert model.W.dtype == np.float64
    assert model(np.ones((1, 3), np.float32)).dtype == np.float64


def test_load_state_dict_checks_the_shape_not_only_the_size():
    # A transposed weight has the right size: loading it silently would scramble the model.
    model = nn.MLP([784, 50, 10], rng=0)
    state = model.state_dict()
    before = model.layers[0].W.data.copy()
    state["layers.0.W"] = state["layers.0.W"].T.copy()  # 50x784 for 784x50
    with pytest.raises(
        ValueError, match=r"layers.0.W: expected shape \(784, 50\), got \(50, 784\)"
    ):
        model.load_state_dict(state)
    np.testing.assert_array_equal(model.layers[0].W.data, before)


def npz_with(path, model, **extra_headers):
    """model's saved state plus members whose .npy headers claim `shape` with no data behind."""
    model.save(path)
    with zipfile.ZipFile(path, "a") as archive:
        for key, shape in extra_headers.items():
            header = io.BytesIO()
            np.lib.format.write_array_header_2_0(
                header, {"descr": "<f8", "fortran_order": False, "shape": shape}
            )
            archive.writestr(key + ".npy", header.getvalue() + bytes(64))


def test_load_checks_members_from_their_headers_before_reading_any_data(tmp_path):
    # Every member was decompressed first: one extra 1 GiB member cost 1 GiB and 6.7 s,
    # and a header claiming a huge shape ended in a MemoryError.
    path = tmp_path / "m.npz"
    npz_with(path, nn.Linear(2, 2, rng=0), extra=(2**40,))
    with pytest.raises(
        ValueError, match=r"cannot load '.*m\.npz' into Linear: unexpected key 'extra'$"
    ):
        nn.Linear(2, 2).load(path)
    model = nn.Linear(2, 2)
    assert model.load(path, strict=False) == nn.LoadResult([], ["extra"])
    np.testing.assert_array_equal(model.W.data, nn.Linear(2, 2, rng=0).W.data)


def test_a_member_claiming_a_huge_shape_is_an_error_naming_the_file(tmp_path):
    path = tmp_path / "m.npz"
    model = nn.Linear(2, 2, bias=False)
    with zipfile.ZipFile(path, "w") as archive:
        header = io.BytesIO()
        np.lib.format.write_array_header_1_0(
            header, {"descr": "<f4", "fortran_order": False, "shape": (2**31, 2**31)}
        )
        archive.writestr("W.npy", header.getvalue())
    with pytest.raises(
        ValueError, match=r"'.*m\.npz' into Linear: W: expected shape \(2, 2\), got \(2147483648, 2"
    ):
        model.load(path)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_load_of_a_device_or_a_fifo_says_it_is_not_a_regular_file(tmp_path):
    # /dev/zero said "no saved model at '/dev/zero'"; a FIFO could block for ever.
    os.mkfifo(tmp_path / "fifo")
    for path in ("/dev/zero", tmp_path / "fifo"):
        with pytest.raises(
            ValueError, match=r"it is not a regular file \(a device, pipe or socket\)"
        ):
            nn.Linear(2, 2).load(path)


def test_save_and_load_of_an_empty_path_say_it_is_empty():
    # save("") said "cannot write '': it is a directory".
    with pytest.raises(ValueError, match="cannot save to '': the path is empty"):
        nn.Linear(2, 2).save("")
    with pytest.raises(ValueError, match="cannot load '': the path is empty"):
        nn.Linear(2, 2).load("")


def test_load_state_dict_names_the_key_of_a_ragged_list():
    # NumPy's "inhomogeneous shape" error named no key.
    with pytest.raises(
        ValueError, match=r"cannot load the state into Linear: W: expected an array, got a ragged"
    ):
        nn.Linear(2, 2).load_state_dict({"W": [[1.0, 2.0], [3.0]], "b": [0.0, 0.0]})
