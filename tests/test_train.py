"""minigrad.train: the fit loop and the `minigrad train` command."""

import argparse
import gc
import os
import re
import subprocess
import sys
import weakref

import numpy as np
import pytest

import minigrad.functional as F
from minigrad import cli, data, nn, optim, train

SPIRAL_ARGS = [
    "--data", "spiral", "--hidden", "30", "--activation", "relu", "--init", "he",
    "--optimizer", "adam", "--lr", "0.05", "--batch-size", "30",
]  # fmt: skip
FINAL_LINE = re.compile(r"train accuracy (\d\.\d{4})  test accuracy (\d\.\d{4})  \(\d+\.\d s\)")


def spiral_loader(batch_size=30):
    return data.DataLoader(
        data.TensorDataset(*data.spiral()), batch_size, shuffle=True, generator=0
    )


def test_fit_learns_the_spiral():
    model = nn.MLP([2, 30, 3], activation="relu", init="he", rng=0)
    history = train.fit(
        model, optim.Adam(model.parameters(), lr=0.05), spiral_loader(), epochs=30,
        eval_sets={"train": data.spiral(), "test": data.spiral(seed=1)}, progress=False,
    )  # fmt: skip
    assert set(history) == {"epoch", "loss", "batch_loss", "train_acc", "test_acc"}
    assert history["epoch"] == list(range(1, 31))
    assert len(history["loss"]) == len(history["test_acc"]) == 30
    assert len(history["batch_loss"]) == 300
    assert history["loss"][-1] < history["loss"][0] / 5
    assert history["train_acc"][-1] >= 0.95 and history["test_acc"][-1] >= 0.95
    assert history["test_acc"][0] < 0.8  # it was learned, not given


def test_fit_with_iters_stops_in_the_middle_of_an_epoch():
    model = nn.MLP([2, 5, 3], rng=0)
    opt = optim.SGD(model.parameters(), lr=0.1)
    steps = []
    step = opt.step
    opt.step = lambda: (steps.append(1), step())
    history = train.fit(model, opt, spiral_loader(), epochs=100, iters=25, progress=False)
    assert len(steps) == len(history["batch_loss"]) == 25
    assert history["epoch"] == [1.0, 2.0, 2.5]
    np.testing.assert_allclose(history["loss"][2], np.mean(history["batch_loss"][20:]))


def test_fit_stops_when_the_loss_is_no_longer_finite():
    # It trained on with NaN weights and printed "loss nan"; `train --save` saved them.
    model = nn.MLP([2, 30, 3], activation="relu", init="he", rng=0)
    opt = optim.SGD(model.parameters(), lr=1e30)
    with pytest.raises(FloatingPointError, match=r"diverged: the loss is (nan|inf) at step \d"):
        with np.errstate(all="ignore"):
            train.fit(model, opt, spiral_loader(), epochs=5, progress=False)


def test_cli_reports_divergence_and_saves_nothing(tmp_path, capsys):
    args = ["train", *SPIRAL_ARGS, "--lr", "1e30", "--optimizer", "sgd", "--quiet"]
    assert cli.main([*args, "--save", str(tmp_path / "m.npz")]) == 1
    out, err = capsys.readouterr()
    assert "error: training diverged" in err and "smaller learning rate (--lr 1e+30)" in err
    assert "Warning" not in err and os.listdir(tmp_path) == []


def test_fit_rejects_a_loader_without_batches():
    loader = data.DataLoader(data.TensorDataset(*data.spiral(2)), 10, drop_last=True)
    model = nn.MLP([2, 3])
    with pytest.raises(ValueError, match="no batches"):
        train.fit(model, optim.SGD(model.parameters()), loader, progress=False)


@pytest.mark.parametrize(
    "length, message",
    [
        ({"epochs": 0}, "epochs must be an int >= 1, got 0"),
        ({"epochs": 2.5}, "epochs must be an int >= 1"),
        ({"iters": 0}, "iters must be an int >= 1, got 0"),
        ({"epochs": True}, "epochs must be an int >= 1, got True"),  # it trained one epoch
    ],
)
def test_fit_rejects_a_length_that_trains_nothing(length, message):
    model = nn.MLP([2, 3], rng=0)
    with pytest.raises(ValueError, match=message):
        train.fit(model, optim.SGD(model.parameters()), spiral_loader(), **length, progress=False)


def test_fit_takes_numpy_integers():
    # np.int64(2) was refused while DataLoader took NumPy integers for batch_size.
    model = nn.MLP([2, 3], rng=0)
    history = train.fit(
        model, optim.SGD(model.parameters()), spiral_loader(), np.int64(2), progress=False
    )
    assert history["epoch"] == [1, 2]


@pytest.mark.parametrize("batch_size", [0, -100, 2.5])
def test_evaluate_rejects_a_batch_size_below_one(batch_size):
    # -100 gave accuracy 0.0 (an empty loop), 0 a bare range() error.
    x, t = data.spiral()
    with pytest.raises(ValueError, match="batch_size must be an int >= 1"):
        train.evaluate(nn.MLP([2, 3], rng=0), x, t, batch_size=batch_size)


def test_evaluate_rejects_an_empty_set():
    with pytest.raises(ValueError, match="empty set"):
        train.evaluate(nn.MLP([2, 3], rng=0), np.zeros((0, 2)), np.zeros(0, dtype=int))


def test_samples_and_labels_of_different_lengths_are_refused_before_training():
    # evaluate ignored extra labels; fit found out only after its first epoch.
    model = nn.MLP([2, 3], rng=0)
    x, t = data.spiral()
    with pytest.raises(ValueError, match="x has 300 samples but 299 labels"):
        train.evaluate(model, x, t[:-1])
    before = model.state_dict()
    with pytest.raises(ValueError, match="eval set 'test' has 300 samples but 299 labels"):
        train.fit(model, optim.SGD(model.parameters()), spiral_loader(), 1,
                  eval_sets={"test": (x, t[:-1])}, progress=False)  # fmt: skip
    for name, array in model.state_dict().items():
        np.testing.assert_array_equal(array, before[name])


def test_each_steps_graph_is_freed_by_reference_counting():
    model = nn.MLP([2, 8, 3], activation="tanh", rng=0)
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    refs = []

    def loss_fn(y, t):
        assert all(r() is None for r in refs), "a tensor of an earlier step is still alive"
        loss = F.softmax_cross_entropy(y, t)
        refs.extend([weakref.ref(y), weakref.ref(loss)])
        return loss

    gc.disable()  # no cycle collector: the graph must die by reference counting alone
    try:
        train.fit(model, opt, spiral_loader(), epochs=2, loss_fn=loss_fn, progress=False)
        assert len(refs) == 40 and all(r() is None for r in refs)
    finally:
        gc.enable()


@pytest.mark.parametrize(
    "make",
    [
        lambda p: optim.SGD(p, lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-4),
        lambda p: optim.AdaGrad(p),
        lambda p: optim.RMSProp(p),
        lambda p: optim.Adam(p, weight_decay=1e-4),
    ],
)
def test_float32_stays_float32_through_a_training_step(make):
    model = nn.MLP([2, 8, 3], activation="sigmoid", init="book", rng=0)
    opt = make(model.parameters())
    x, t = next(iter(spiral_loader()))
    assert x.dtype == np.float32
    for _ in range(2):
        loss = train.train_step(model, opt, x, t)
    assert isinstance(loss, float)
    for name, p in model.named_parameters():
        assert p.dtype == np.float32 and p.grad.dtype == np.float32, name
    arrays = [v for state in opt.state for v in state.values() if isinstance(v, np.ndarray)]
    assert arrays and all(a.dtype == np.float32 for a in arrays)
    assert F.softmax_cross_entropy(model(x), t).dtype == np.float32


def test_evaluate_uses_eval_mode_and_restores_the_mode():
    model = nn.Sequential(nn.Linear(2, 3, rng=0), nn.Dropout(0.9, rng=0))
    x, t = data.spiral()
    first = train.evaluate(model, x, t, batch_size=64)
    assert model.training
    assert train.evaluate(model, x, t) == first  # no dropout, any batch size
    model.eval()
    train.evaluate(model, x, t)
    assert not model.training
    expected = F.accuracy(x @ model[0].W.data + model[0].b.data, t)
    assert first == pytest.approx(expected)
    model.train()
    model[1].eval()  # a Dropout the user turned off stays off (train(True) turned it on)
    train.evaluate(model, x, t)
    assert model.training and model[0].training and not model[1].training


# ---------------------------------------------------------------- the command


def final_accuracies(stdout):
    match = FINAL_LINE.search(stdout)
    assert match, stdout
    return float(match[1]), float(match[2])


def test_cli_trains_saves_and_plots(tmp_path, capsys):
    model_path, plot_path = tmp_path / "model.npz", tmp_path / "curves.png"
    argv = ["train", *SPIRAL_ARGS, "--epochs", "30", "--quiet"]
    assert cli.main([*argv, "--save", str(model_path), "--plot", str(plot_path)]) == 0
    out, err = capsys.readouterr()
    train_acc, test_acc = final_accuracies(out)
    assert train_acc >= 0.95 and test_acc >= 0.95
    assert out.count("\n") == 2 and err == ""  # --quiet: the accuracies and the saved model
    # The printed call rebuilds the trained network (the help once said MLP(...).load,
    # and MLP's default activation is not train's: that model loaded without a word).
    call = re.search(
        r"saved to .*model\.npz; load with (model = nn\.MLP\(.*\)); model\.load\(path\)", out
    )
    assert call, out
    scope = {"nn": nn}
    exec(call[1], scope)
    model = scope["model"]
    model.load(model_path)
    x, t = data.spiral(seed=1)
    assert train.evaluate(model, x, t) == pytest.approx(test_acc, abs=1e-4)
    assert plot_path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["curves.png", "model.npz"]


def test_cli_is_deterministic_for_a_seed(capsys):
    runs = []
    for _ in range(2):
        cli.main(["train", *SPIRAL_ARGS, "--epochs", "3", "--quiet", "--seed", "5"])
        runs.append(final_accuracies(capsys.readouterr().out))
    assert runs[0] == runs[1]


def test_cli_reports_each_epoch_unless_quiet(capsys):
    assert cli.main(["train", *SPIRAL_ARGS, "--iters", "15"]) == 0
    out, err = capsys.readouterr()
    assert re.search(r"epoch 1/2  loss \d\.\d{4}  train acc \d\.\d{4}  test acc \d\.\d{4}", out)
    assert "epoch 2/2" in out
    final_accuracies(out)
    assert "epoch 1/2:" in err and "batch/s" in err  # the progress bar, on stderr


def test_cli_says_what_it_trains_before_the_first_epoch(capsys):
    # It went straight to "epoch 1/50".
    assert cli.main(["train", "--iters", "1"]) == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert first == (
        "data subset: 5,000 training and 1,000 test samples of 784 features; model MLP "
        "784-50-10 sigmoid, 39,760 parameters; optimizer sgd, lr 0.5, batch 100, 1 step"
    )


def test_cli_default_data_learns_digits(capsys):
    # The embedded MNIST subset with the default net, cut to 3 epochs.
    assert cli.main(["train", "--epochs", "3", "--quiet"]) == 0
    train_acc, test_acc = final_accuracies(capsys.readouterr().out)
    assert train_acc > 0.6 and test_acc > 0.6  # chance is 0.1


def test_python_dash_m_minigrad_train():
    result = subprocess.run(
        [sys.executable, "-m", "minigrad", "train", *SPIRAL_ARGS, "--epochs", "2", "--quiet"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    final_accuracies(result.stdout)


@pytest.mark.parametrize(
    "options, message",
    [
        (["--lr", "0"], "argument --lr: must be a finite number > 0"),
        (["--lr", "-0.1"], "argument --lr: must be a finite number > 0"),
        (["--lr", "inf"], "argument --lr: must be a finite number > 0"),
        (["--lr", "fast"], "argument --lr: expected a number"),
        (["--batch-size", "0"], "argument --batch-size: must be > 0"),
        (["--batch-size", "2.5"], "argument --batch-size: expected an integer"),
        (["--epochs", "0"], "argument --epochs: must be > 0"),
        (["--epochs", "2", "--iters", "5"], "not allowed with argument"),
        (["--hidden", "50,,10"], "argument --hidden: expected positive layer sizes"),
        (["--hidden", "0"], "argument --hidden: expected positive layer sizes"),
        (["--hidden", "fifty"], "argument --hidden: expected positive layer sizes"),
        (["--seed", "-1"], "argument --seed: expected an integer >= 0"),
        (["--activation", "swish"], "argument --activation: invalid choice"),
        (["--optimizer", "lbfgs"], "argument --optimizer: invalid choice"),
        (["--data", "cifar"], "argument --data: invalid choice"),
        (["--save", "/no/such/dir/m.npz"], "argument --save: directory '/no/such/dir'"),
        (["--save", "model.pt"], "argument --save: expected a file name ending in .npz"),
        (["--plot", "curves.txt"], "argument --plot: expected a file name ending in .png"),
    ],
)
def test_bad_options_exit_with_status_2(options, message, capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(["train", *options])
    assert info.value.code == 2
    assert message in capsys.readouterr().err


def test_save_to_a_directory_is_refused_before_training(tmp_path, capsys):
    # It failed with a traceback after the whole run had trained.
    (tmp_path / "m.npz").mkdir()
    with pytest.raises(SystemExit) as info:
        cli.main(["train", "--save", str(tmp_path / "m.npz")])
    assert info.value.code == 2
    assert "is a directory; give a file name in it" in capsys.readouterr().err


def test_a_failed_save_after_training_is_an_error_message(tmp_path, monkeypatch, capsys):
    # It ended in a traceback, and the accuracies were never printed.
    def full(self, path):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(nn.Module, "save", full)
    argv = ["train", *SPIRAL_ARGS, "--iters", "2", "--quiet", "--save", str(tmp_path / "m.npz")]
    assert cli.main([*argv, "--plot", str(tmp_path / "c.png")]) == 1
    out, err = capsys.readouterr()
    final_accuracies(out)
    assert err.startswith("minigrad train: error:") and "No space left on device" in err
    assert (tmp_path / "c.png").exists()  # the failed save did not cost the plot


def test_an_empty_data_set_is_an_error_message(monkeypatch, capsys):
    empty = (np.zeros((0, 784), np.float32), np.zeros(0, np.uint8))
    monkeypatch.setattr(train, "_load", lambda args: (empty, data.load_mnist_subset()[1]))
    assert cli.main(["train", "--quiet"]) == 1
    assert "minigrad train: error: the training set is empty" in capsys.readouterr().err


def test_data_dir_without_data_mnist_is_an_error_not_ignored(capsys):
    assert cli.main(["train", "--data", "spiral", "--data-dir", "/somewhere"]) == 2
    assert "--data-dir is for --data mnist, not spiral" in capsys.readouterr().err


def test_train_without_mnist_files_names_the_option(tmp_path, monkeypatch, capsys):
    # The loader's advice, "pass data_dir=...", is the library's argument, not the command's.
    from minigrad.data import mnist

    monkeypatch.setattr(mnist, "MIRRORS", ())
    monkeypatch.setenv("MINIGRAD_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("MINIGRAD_DATA_DIR", raising=False)
    args = ["train", "--data", "mnist", "--data-dir", str(tmp_path), "--quiet"]
    assert cli.main(args) == 1
    err = capsys.readouterr().err
    assert "MNIST files not found" in err and "pass --data-dir" in err and "data_dir=" not in err
    assert "Without them, --data subset loads" in err and "load_mnist_subset" not in err


def test_help_lists_the_options_and_defaults():
    parser = argparse.ArgumentParser(prog="minigrad train")
    train.add_arguments(parser)
    text = parser.format_help()
    for option in ["--data", "--data-dir", "--hidden", "--activation", "--init", "--optimizer",
                   "--lr", "--batch-size", "--epochs", "--iters", "--seed", "--save", "--plot",
                   "--quiet"]:  # fmt: skip
        assert option in text
    args = parser.parse_args([])
    assert train.resolve_defaults(args) is None  # the defaults that depend on --model
    assert (args.model, args.data, args.hidden, args.activation, args.init) == (
        "mlp",
        "subset",
        (50,),
        "sigmoid",
        "book",
    )
    assert (args.optimizer, args.lr, args.batch_size, args.epochs) == ("sgd", None, 100, 50)
    for model, init in (("simple-cnn", "book"), ("deep-cnn", "he")):
        args = parser.parse_args(["--model", model])
        assert train.resolve_defaults(args) is None
        assert (args.init, args.optimizer, args.epochs) == (init, "adam", 20)  # the book's
    # ArgumentDefaultsHelpFormatter showed "(default: None)" and "(default: (50,))".
    assert "(default: None)" not in text and "(default: 50)" in text


def test_a_plot_without_matplotlib_says_which_extra_before_training(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # as if it were not installed
    plot = tmp_path / "curves.png"
    argv = ["train", "--data", "spiral", "--epochs", "1", "--quiet", "--plot", str(plot)]
    assert cli.main(argv) == 1
    out, err = capsys.readouterr()
    assert err == (
        "minigrad train: error: this needs matplotlib, which is not installed; "
        "install it with: pip install 'minigrad[plot]'\n"
    )
    assert out == "" and not plot.exists()  # stopped before training, no traceback
