"""Checkpoints and resume (fit and `minigrad train`), interrupts, and divergence."""

import os

import numpy as np
import pytest

from minigrad import data, nn, optim, train

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
