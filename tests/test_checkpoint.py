"""Checkpoints and resume (fit and `minigrad train`), interrupts, and divergence."""

import importlib.util
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from minigrad import cli, data, nn, optim, train

SPIRAL_ARGS = [
    "--data", "spiral", "--hidden", "10", "--activation", "relu", "--init", "he",
    "--batch-size", "30", "--quiet",
]  # fmt: skip
MAKE = {
    "momentum": lambda p: optim.SGD(p, lr=0.05, momentum=0.9),
    "adam": lambda p: optim.Adam(p, lr=0.01),
}


def setup(name):
    model = nn.MLP([2, 10, 3], activation="relu", init="he", rng=0)
    loader = data.DataLoader(data.TensorDataset(*data.spiral()), 30, shuffle=True, generator=0)
    return model, MAKE[name](model.parameters()), loader


def run_fit(name, directory, stop_at=None, resume=False, epochs=4, every=None):
    model, opt, loader = setup(name)
    steps = []

    def stop():
        steps.append(1)
        return len(steps) == stop_at

    history = train.fit(
        model, opt, loader, epochs, eval_sets={"test": data.spiral(seed=1)}, progress=False,
        checkpoint=train.Checkpoint(directory, every=every), resume=resume, stop=stop,
    )  # fmt: skip
    return model, history


@pytest.mark.parametrize("name", MAKE)
@pytest.mark.parametrize("stop_at", [17, 20])  # inside the second epoch, at its end
def test_fit_resumed_after_a_stop_ends_bit_for_bit_as_the_straight_run(name, stop_at, tmp_path):
    straight, expected = run_fit(name, tmp_path / "a")
    stopped, partial = run_fit(name, tmp_path / "b", stop_at=stop_at)
    assert len(partial["loss"]) == stop_at // 10  # the finished epochs only
    resumed, history = run_fit(name, tmp_path / "b", resume=True)
    assert history == expected
    b_state = resumed.state_dict()
    for k, a in straight.state_dict().items():
        b = b_state[k]
        np.testing.assert_array_equal(a, b, err_msg=k)
        assert a.tobytes() == b.tobytes()


def test_fit_with_iters_resumes_to_the_same_step_count(tmp_path):
    model, opt, loader = setup("adam")
    straight = train.fit(model, opt, loader, iters=25, progress=False)
    directory = tmp_path / "c"
    model2, opt2, loader2 = setup("adam")
    calls = []
    train.fit(model2, opt2, loader2, iters=25, progress=False, checkpoint=train.Checkpoint(
        directory), stop=lambda: calls.append(1) or len(calls) == 13)  # fmt: skip
    model3, opt3, loader3 = setup("adam")
    history = train.fit(model3, opt3, loader3, iters=25, progress=False,
                        checkpoint=train.Checkpoint(directory), resume=True)  # fmt: skip
    assert history == straight and len(history["batch_loss"]) == 25
    np.testing.assert_array_equal(model.layers[0].W.data, model3.layers[0].W.data)


def test_a_run_cut_short_by_iters_resumes_with_more_iters_as_the_longer_run(tmp_path):
    # --iters 12 then --resume --iters 25 ran nothing more: the partial epoch was saved as done.
    model, opt, loader = setup("adam")
    straight = train.fit(model, opt, loader, iters=25, progress=False)
    for iters, resume in ((12, False), (25, True)):
        model2, opt2, loader2 = setup("adam")
        history = train.fit(model2, opt2, loader2, iters=iters, progress=False, resume=resume,
                            checkpoint=train.Checkpoint(tmp_path))  # fmt: skip
    assert history == straight
    assert model.layers[0].W.data.tobytes() == model2.layers[0].W.data.tobytes()
    again = train.fit(*setup("adam"), iters=25, progress=False, resume=True,
                      checkpoint=train.Checkpoint(tmp_path))  # fmt: skip
    assert again == straight  # nothing left to do: no step more


def test_checkpoint_every_n_steps_is_written_atomically_and_is_plain_arrays(tmp_path):
    model, opt, loader = setup("adam")
    saved = []
    checkpoint = train.Checkpoint(tmp_path, every=3, options={"data": "spiral"})
    save = checkpoint.save
    checkpoint.save = lambda arrays: (saved.append(int(arrays["step"])), save(arrays))
    train.fit(model, opt, loader, 1, progress=False, checkpoint=checkpoint)
    assert saved == [3, 6, 9, 10]  # every 3 steps and the epoch's end
    assert os.listdir(tmp_path) == ["checkpoint.npz"]  # no temporary files left
    with np.load(tmp_path / "checkpoint.npz", allow_pickle=False) as archive:
        assert archive["options.data"] == "spiral" and archive["epoch"] == 2
        assert all(archive[k].dtype != object for k in archive.files)
    assert checkpoint.saved_options() == {"data": "spiral"}


def test_resume_refuses_a_checkpoint_of_another_model_and_changes_nothing(tmp_path):
    run_fit("adam", tmp_path, epochs=1)
    model = nn.MLP([2, 20, 3], rng=0)
    before = model.state_dict()
    loader = data.DataLoader(data.TensorDataset(*data.spiral()), 30, shuffle=True, generator=0)
    with pytest.raises(ValueError, match=r"cannot resume from .*checkpoint.npz.*expected shape"):
        train.fit(model, optim.Adam(model.parameters()), loader, 2, progress=False,
                  checkpoint=train.Checkpoint(tmp_path), resume=True, eval_sets={
                  "test": data.spiral(seed=1)})  # fmt: skip
    for k, a in model.state_dict().items():
        np.testing.assert_array_equal(a, before[k])


def test_a_checkpoint_that_is_not_an_npz_is_named(tmp_path):
    (tmp_path / "checkpoint.npz").write_bytes(b"\x80\x04pickled?")
    with pytest.raises(ValueError, match=r"cannot read the checkpoint .*not an .npz"):
        train.Checkpoint(tmp_path).load()


# ---------------------------------------------------------------- minigrad train


def saved(path):
    with np.load(path, allow_pickle=False) as archive:
        return {k: archive[k] for k in archive.files}


@pytest.mark.parametrize("optimizer", ["momentum", "adam"])
def test_cli_resume_ends_bit_for_bit_as_the_straight_run(optimizer, tmp_path, capsys):
    args = ["train", *SPIRAL_ARGS, "--optimizer", optimizer]
    assert cli.main([*args, "--epochs", "4", "--save", str(tmp_path / "a.npz")]) == 0
    straight = capsys.readouterr().out
    ck = ["--checkpoint", str(tmp_path / "ck")]
    assert cli.main([*args, "--epochs", "2", *ck]) == 0
    assert (
        cli.main([*args, "--epochs", "4", *ck, "--resume", "--save", str(tmp_path / "b.npz")]) == 0
    )
    resumed = capsys.readouterr().out.splitlines()[-2]
    assert resumed.split("(")[0] == straight.splitlines()[-2].split("(")[0]  # the accuracies
    a, b = saved(tmp_path / "a.npz"), saved(tmp_path / "b.npz")
    assert a.keys() == b.keys() and all(a[k].tobytes() == b[k].tobytes() for k in a)


def test_cli_refuses_to_resume_with_other_options_naming_them(tmp_path, capsys):
    ck = ["--checkpoint", str(tmp_path)]
    assert cli.main(["train", *SPIRAL_ARGS, "--iters", "3", *ck]) == 0
    status = cli.main(
        ["train", *SPIRAL_ARGS, "--hidden", "20", "--optimizer", "adam", "--iters", "6", *ck,
         "--resume"]
    )  # fmt: skip
    err = capsys.readouterr().err
    assert status == 2
    assert (
        "--hidden 20 (the checkpoint has 10)" in err
        and "--optimizer adam (the checkpoint has sgd)" in err
    )
    assert "--data" not in err


@pytest.mark.parametrize(
    "options, message",
    [
        (["--resume"], "--resume needs --checkpoint DIR"),
        (["--checkpoint-every", "3"], "--checkpoint-every needs --checkpoint DIR"),
    ],
)
def test_cli_resume_options_need_a_checkpoint(options, message, capsys):
    assert cli.main(["train", *SPIRAL_ARGS, *options]) == 2
    assert message in capsys.readouterr().err


def test_cli_does_not_overwrite_a_checkpoint_without_resume(tmp_path, capsys):
    assert cli.main(["train", *SPIRAL_ARGS, "--iters", "3", "--checkpoint", str(tmp_path)]) == 0
    before = (tmp_path / "checkpoint.npz").read_bytes()
    assert cli.main(["train", *SPIRAL_ARGS, "--iters", "3", "--checkpoint", str(tmp_path)]) == 1
    assert "already holds a checkpoint; pass --resume" in capsys.readouterr().err
    assert (tmp_path / "checkpoint.npz").read_bytes() == before


def test_cli_resume_without_a_checkpoint_says_where_it_looked(tmp_path, capsys):
    argv = ["train", *SPIRAL_ARGS, "--checkpoint", str(tmp_path), "--resume"]
    assert cli.main(argv) == 1
    assert (
        f"cannot resume: no checkpoint at '{tmp_path / 'checkpoint.npz'}'"
        in capsys.readouterr().err
    )


def test_cli_stops_on_a_diverging_loss_and_keeps_the_earlier_save(tmp_path, capsys):
    # --lr 1e6 ran 50 epochs to chance accuracy with losses up to 6e20, exited 0, saved.
    model = tmp_path / "m.npz"
    assert cli.main(["train", "--iters", "2", "--quiet", "--save", str(model)]) == 0
    before = model.read_bytes()
    assert cli.main(["train", "--lr", "1e6", "--quiet", "--save", str(model)]) == 1
    out, err = capsys.readouterr()
    assert "error: training diverged: the mean loss of epoch 1 so far is" in err
    assert "over 1000 times the first step's" in err and "test accuracy" not in out.splitlines()[-1]
    assert model.read_bytes() == before


def start_training(tmp_path, *extra):
    argv = [sys.executable, "-m", "minigrad", "train", *SPIRAL_ARGS, "--epochs", "5000",
            "--checkpoint", str(tmp_path / "ck"), "--checkpoint-every", "1", *extra]  # fmt: skip
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1"}
    child = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             env=env)  # fmt: skip
    deadline = time.monotonic() + 60
    while not (tmp_path / "ck" / "checkpoint.npz").exists():  # training has started
        assert child.poll() is None and time.monotonic() < deadline, child.communicate()
        time.sleep(0.02)
    return child


@pytest.mark.parametrize("signum, status", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_finishes_the_step_saves_and_exits_without_a_traceback(signum, status, tmp_path):
    child = start_training(tmp_path, "--save", str(tmp_path / "m.npz"))
    child.send_signal(signum)
    out, err = child.communicate(timeout=60)
    assert child.returncode == status, err
    assert "Traceback" not in err
    name = signal.Signals(signum).name
    assert (
        f"interrupted by {name}; saved the checkpoint to {tmp_path / 'ck' / 'checkpoint.npz'}"
        in err
    )
    assert f"the model as of the last finished step to {tmp_path / 'm.npz'}" in err
    state = train.Checkpoint(tmp_path / "ck").load()
    model = nn.MLP([2, 10, 3], "relu")
    model.load(tmp_path / "m.npz")
    for k, a in model.state_dict().items():  # the saved model is the checkpoint's
        assert a.tobytes() == state[f"model.{k}"].tobytes()
    assert sorted(os.listdir(tmp_path / "ck")) == ["checkpoint.npz"]


def test_a_second_signal_stops_at_once():
    interrupts = train._Interrupts()
    with interrupts:
        os.kill(os.getpid(), signal.SIGINT)
        assert interrupts.requested() and interrupts.name == "SIGINT"
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


KILLED_WRITER = """
import os, sys, time
import numpy as np
from minigrad import train
from minigrad._files import write_atomically
checkpoint = train.Checkpoint(sys.argv[1])
checkpoint.save({"step": np.array(1)})

def slow(arrays):
    def write(f):
        f.write(b"PK" + bytes(1 << 20))  # a first megabyte, then the writer hangs
        f.flush()
        open(os.path.join(sys.argv[1], "writing"), "w").close()
        time.sleep(60)
    write_atomically(checkpoint.path, write)

slow({})
"""


def test_a_writer_killed_mid_write_leaves_the_previous_checkpoint_loadable(tmp_path):
    child = subprocess.Popen([sys.executable, "-c", KILLED_WRITER, str(tmp_path)])
    deadline = time.monotonic() + 60
    while not (tmp_path / "writing").exists():
        assert child.poll() is None and time.monotonic() < deadline
        time.sleep(0.02)
    child.kill()
    child.wait(timeout=10)
    leftovers = [n for n in os.listdir(tmp_path) if n.endswith(".part")]
    assert len(leftovers) == 1  # what SIGKILL leaves: nothing can clean up after it
    checkpoint = train.Checkpoint(tmp_path)
    assert checkpoint.load()["step"] == 1
    checkpoint.save({"step": np.array(2)})  # the next save clears the litter
    assert sorted(os.listdir(tmp_path)) == ["checkpoint.npz", "writing"]
    assert checkpoint.load()["step"] == 2


def test_a_resumed_run_with_dropout_draws_the_same_masks(tmp_path):
    # Dropout's generator is part of the training state: without it the masks after the
    # resume differ from the straight run's.
    def run(directory, stop_at=None, resume=False):
        model = nn.Sequential(
            nn.Linear(2, 20, rng=0), nn.ReLU(), nn.Dropout(0.5, rng=1), nn.Linear(20, 3, rng=2)
        )
        loader = data.DataLoader(data.TensorDataset(*data.spiral()), 30, shuffle=True, generator=0)
        calls = []
        train.fit(
            model, optim.Adam(model.parameters(), lr=0.01), loader, 3, progress=False,
            checkpoint=train.Checkpoint(directory), resume=resume,
            stop=lambda: calls.append(1) or len(calls) == stop_at,
        )  # fmt: skip
        return model.state_dict()

    straight = run(tmp_path / "a")
    run(tmp_path / "b", stop_at=15)
    resumed = run(tmp_path / "b", resume=True)
    assert all(straight[k].tobytes() == resumed[k].tobytes() for k in straight)


def test_ctrl_c_outside_training_exits_130_without_a_traceback(monkeypatch, capsys):
    # During a download or the data's loading it ended in a KeyboardInterrupt traceback.
    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(train, "_load", interrupted)
    assert cli.main(["train", "--quiet"]) == 130
    assert capsys.readouterr().err == "minigrad train: interrupted\n"


@pytest.mark.skipif(
    importlib.util.find_spec("mpi4py") is None, reason="needs the distributed extra"
)
def test_checkpoints_over_mpi_are_refused_not_written_by_every_rank(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "minigrad", "train", *SPIRAL_ARGS, "--distributed",
         "--checkpoint", str(tmp_path / "ck")],
        capture_output=True, text=True, timeout=120,
        env={**os.environ, "OPENBLAS_NUM_THREADS": "1"},
    )  # fmt: skip
    assert result.returncode != 0
    assert "--checkpoint and --resume are not yet supported with --distributed" in result.stderr
    assert not (tmp_path / "ck").exists()
