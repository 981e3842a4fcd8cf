"""minigrad.distributed: 2 MPI ranks (mpiexec from the distributed extra) against one process."""

import importlib.util
import os
import re
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

import minigrad as mg
from minigrad import cli, data, nn, optim, train

MPIEXEC = shutil.which("mpiexec", path=str(Path(sys.executable).parent)) or shutil.which("mpiexec")
needs_mpi = pytest.mark.skipif(
    MPIEXEC is None or importlib.util.find_spec("mpi4py") is None,
    reason="needs mpi4py and mpiexec: pip install 'minigrad[distributed]'",
)
# One BLAS thread per rank (2 ranks on a 2-core machine); the fork launcher runs every rank
# on this host without ssh or a hostname lookup.
ENV = {**os.environ, "OPENBLAS_NUM_THREADS": "1"}


def mpirun(tmp_path, script, *args, n=2, timeout=60):
    path = tmp_path / "script.py"
    path.write_text(textwrap.dedent(script))
    command = [MPIEXEC, "-launcher", "fork", "-n", str(n), sys.executable, str(path), *args]
    return subprocess.run(
        command, capture_output=True, text=True, timeout=timeout, env=ENV, cwd=tmp_path
    )


TRAIN = """
    import sys
    import numpy as np
    import minigrad as mg
    from minigrad import data, nn, optim, train
    from minigrad import distributed as dist
    from minigrad import functional as F

    mode, dtype, out = sys.argv[1:]
    mg.set_default_dtype(dtype)
    x, t = data.spiral()
    x = x.astype(dtype)
    # different weights on each rank: the broadcast must make them rank 0's
    model = nn.MLP([2, 16, 16, 3], activation="relu", init="he", rng=dist.rank())
    dist.broadcast_parameters(model)
    opt = dist.DistributedOptimizer(
        optim.SGD(model.parameters(), lr=0.1, momentum=0.9),
        overlap=mode == "overlap",
        bucket_bytes=256,  # several buckets, parameters grouped and alone
    )
    loader = dist.DistributedLoader(data.TensorDataset(x, t), 30, shuffle=True, generator=0)
    loss = lambda x, t: F.softmax_cross_entropy(model(x), t)
    example = x[:30], t[:30]  # not a batch of the loader: that would draw an epoch's order
    if mode == "replay":
        replay = mg.Replay(loss, *example)
        for _ in range(4):
            for xb, tb in loader:
                opt.zero_grad()
                replay(xb, tb)
                opt.step()
    elif mode == "fused":
        step = mg.Replay(loss, *example, optimizer=opt)
        for _ in range(4):
            for xb, tb in loader:
                step(xb, tb)
    else:
        train.fit(model, opt, loader, epochs=4, progress=False)
    if dist.rank() == 0:
        model.save(out)
"""


def one_process(dtype):
    """The same training in one process: batches of 2 x 30 from the same seed, 20 steps."""
    mg.set_default_dtype(dtype)
    try:
        x, t = data.spiral()
        model = nn.MLP([2, 16, 16, 3], activation="relu", init="he", rng=0)
        opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        loader = data.DataLoader(
            data.TensorDataset(x.astype(dtype), t), 60, shuffle=True, generator=0, drop_last=True
        )
        train.fit(model, opt, loader, epochs=4, progress=False)
    finally:
        mg.set_default_dtype("float32")
    return model.state_dict()


@needs_mpi
@pytest.mark.parametrize("mode", ["step-end", "overlap", "replay", "fused"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_two_ranks_train_the_weights_one_process_trains(tmp_path, mode, dtype):
    done = mpirun(tmp_path, TRAIN, mode, dtype, str(tmp_path / "w.npz"))
    assert done.returncode == 0, done.stderr
    with np.load(tmp_path / "w.npz") as saved:
        got = dict(saved)
    want = one_process(dtype)
    assert got.keys() == want.keys()
    # The two runs add the same products in another order: each rank sums its 30 samples
    # and the all-reduce adds the two sums, where one process sums all 60 (and scales by
    # 1/30 and then 1/2, not 1/60). A gradient entry then differs by an ulp or so, and 20
    # SGD steps with momentum carry that into the weights (scale 1-2.5) without amplifying
    # it much: measured, the weights differ by at most 1.2e-7 in float32 (one ulp at 1) and
    # 2.2e-16 in float64. The tolerance allows ten ulps; a real bug (a sum in place of the
    # mean, a wrong share of a batch, a lost update) moves them far more: a mean scaled by
    # 0.999 fails it.
    tol = {"float32": 1e-6, "float64": 2e-15}[dtype]
    for name in want:
        assert got[name].dtype == want[name].dtype
        np.testing.assert_allclose(got[name], want[name], rtol=tol, atol=tol, err_msg=name)


SHARES = """
    import sys
    import numpy as np
    from minigrad import data
    from minigrad import distributed as dist

    n, out, seed = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    loader = dist.DistributedLoader(
        data.TensorDataset(np.arange(n, dtype=np.float32), np.arange(n)), 30, shuffle=True,
        generator=None if seed == "none" else int(seed),
    )
    epochs = [np.stack([t.data for _, t in loader]) for _ in range(2)]
    np.save(f"{out}.{dist.rank()}.npy", np.stack(epochs))  # (epoch, step, sample)
"""


@needs_mpi
def test_ranks_take_disjoint_shares_of_the_global_batches(tmp_path):
    n = 250  # 4 global batches of 60 and 10 samples left out
    done = mpirun(tmp_path, SHARES, str(n), str(tmp_path / "seen"), "3")
    assert done.returncode == 0, done.stderr
    ranks = [np.load(tmp_path / f"seen.{r}.npy") for r in range(2)]
    assert ranks[0].shape == ranks[1].shape == (2, 4, 30)
    single = data.DataLoader(
        data.TensorDataset(np.arange(n)), 60, shuffle=True, generator=3, drop_last=True
    )
    for epoch in range(2):
        want = [b.data for (b,) in single]  # one process, batch 60, the same seed
        for step in range(4):
            got = np.concatenate([ranks[0][epoch, step], ranks[1][epoch, step]])
            np.testing.assert_array_equal(got, want[step])
        seen = np.concatenate([r[epoch].ravel() for r in ranks])
        assert len(np.unique(seen)) == 240  # disjoint: no sample twice in an epoch
    assert not np.array_equal(ranks[0][0], ranks[0][1])  # a new order every epoch


@needs_mpi
def test_without_a_seed_the_ranks_still_share_one_order(tmp_path):
    done = mpirun(tmp_path, SHARES, "240", str(tmp_path / "seen"), "none")
    assert done.returncode == 0, done.stderr
    seen = np.concatenate([np.load(tmp_path / f"seen.{r}.npy")[0].ravel() for r in range(2)])
    assert sorted(seen) == list(range(240))


FAIL = """
    import time
    from minigrad import distributed as dist

    dist.init()
    if dist.rank() == 1:
        time.sleep(0.2)
        raise RuntimeError("rank one cannot go on")
    dist.average([1.0])  # rank 0 waits for rank 1 here, for ever without the abort
"""


@needs_mpi
def test_an_exception_on_one_rank_ends_the_job_with_its_message(tmp_path):
    start = time.monotonic()
    done = mpirun(tmp_path, FAIL, timeout=30)
    assert time.monotonic() - start < 10
    assert done.returncode != 0
    assert "rank 1 of 2 failed" in done.stderr, done.stderr
    assert "RuntimeError: rank one cannot go on" in done.stderr


LATE = """
    import time
    from minigrad import distributed as dist
    from mpi4py import MPI

    if MPI.COMM_WORLD.Get_rank() == 1:
        time.sleep(30)  # stuck before it ever meets the others
    dist.init(timeout=1)
"""


@needs_mpi
def test_a_rank_that_cannot_reach_the_others_says_so(tmp_path):
    start = time.monotonic()
    done = mpirun(tmp_path, LATE, timeout=30)
    assert time.monotonic() - start < 10
    assert done.returncode != 0
    assert "rank 0 of 2 could not reach the other ranks within 1 s" in done.stderr, done.stderr


STATE = """
    import numpy as np
    from minigrad import distributed as dist, nn, optim
    from minigrad import functional as F

    model = nn.MLP([2, 4, 3], rng=0)
    opt = optim.Adam(model.parameters(), lr=0.01)
    if dist.rank() == 0:  # rank 0 alone has taken a step: it has moments and a step count
        F.softmax_cross_entropy(model(np.ones((5, 2), np.float32)), np.zeros(5, int)).backward()
        opt.step()
    dist.broadcast_optimizer_state(opt)
    dist.broadcast_parameters(model)
    m = [s["m"] for s in opt.state]
    steps = [s["step"] for s in opt.state]
    total = dist.average([float(np.abs(a).sum()) for a in m])
    assert steps == [1] * 4, steps
    assert all(float(np.abs(a).sum()) == t for a, t in zip(m, total)), "states differ"
    assert min(total) > 0
"""


@needs_mpi
def test_optimizer_state_comes_from_rank_0(tmp_path):
    done = mpirun(tmp_path, STATE)
    assert done.returncode == 0, done.stderr


FINAL = re.compile(r"train accuracy (\d\.\d{4})  test accuracy (\d\.\d{4})  \(\d+\.\d s\)(.*)")


@needs_mpi
def test_distributed_train_command_matches_one_process_on_the_global_batch(tmp_path, capsys):
    common = ["--epochs", "2", "--seed", "1", "--optimizer", "momentum"]
    path = tmp_path / "model.npz"
    done = subprocess.run(
        [MPIEXEC, "-launcher", "fork", "-n", "2", sys.executable, "-m", "minigrad", "train",
         "--distributed", "--batch-size", "50", "--save", str(path), *common],
        capture_output=True, text=True, timeout=120, env=ENV,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert cli.main(["train", "--batch-size", "100", "--quiet", *common]) == 0
    alone = FINAL.search(capsys.readouterr().out)
    lines = done.stdout.splitlines()
    # rank 0 alone prints: one summary, one line per epoch, one final line
    assert sum(line.startswith("data subset") for line in lines) == 1
    assert "distributed: 2 ranks x batch 50 = global batch 100" in lines
    assert sum(line.startswith("epoch ") for line in lines) == 2
    final = [m for m in map(FINAL.search, lines) if m]
    assert len(final) == 1
    assert final[0].group(1, 2) == alone.group(1, 2)
    assert final[0].group(3) == " on 2 ranks"
    assert path.exists()


def test_import_minigrad_does_not_import_mpi4py():
    code = (
        "import sys, minigrad, minigrad.train, minigrad.distributed; print('mpi4py' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.stdout.strip() == "False", done.stderr


def test_without_mpi4py_the_command_says_which_extra_to_install():
    code = (
        "import sys; sys.modules['mpi4py'] = None; from minigrad import cli; "
        "sys.exit(cli.main(['train', '--distributed', '--iters', '1']))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 1
    assert "pip install 'minigrad[distributed]'" in done.stderr


@needs_mpi
def test_the_benchmark_runs_and_prints_its_tables(tmp_path):
    script = Path(__file__).resolve().parents[1] / "benchmarks" / "distributed.py"
    done = subprocess.run(
        [sys.executable, str(script), "--quick", "--data", "subset", "--json", str(tmp_path / "r.json")],
        capture_output=True, text=True, timeout=120, env=ENV,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    for heading in ["Steps per second, global batch 200", "Allreduce on 2 ranks", "Cost model"]:
        assert heading in done.stdout
    assert "| 64 MB |" in done.stdout and "| 64 |" in done.stdout
    assert (tmp_path / "r.json").exists()


@needs_mpi
def test_bad_input_is_refused_with_a_clear_error():
    from minigrad import distributed as dist  # one rank: this process alone

    model = nn.MLP([2, 3], rng=0)
    with pytest.raises(TypeError, match="wraps a minigrad optimizer"):
        dist.DistributedOptimizer(model)
    opt = dist.DistributedOptimizer(optim.SGD(model.parameters(), lr=0.1))
    with pytest.raises(TypeError, match="already a DistributedOptimizer"):
        dist.DistributedOptimizer(opt)
    with pytest.raises(ValueError, match="bucket_bytes"):
        dist.DistributedOptimizer(optim.SGD(model.parameters(), lr=0.1), bucket_bytes=0)
    model.layers[0].W.grad = mg.Tensor(np.zeros((3, 2), np.float32))
    with pytest.raises(ValueError, match=r"shape \(2, 3\) has a .grad of shape \(3, 2\)"):
        opt.step()
    with pytest.raises(ValueError, match="fewer than one global batch"):
        dist.DistributedLoader(data.TensorDataset(np.zeros((5, 2))), 10)
    with pytest.raises(ValueError, match="timeout must be a number of seconds > 0, got -1"):
        dist.init(timeout=-1)
