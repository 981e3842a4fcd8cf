"""W6, the SimpleConvNet step of benchmarks/run.py: the hand NumPy baseline computes the same
step as minigrad, and the run reports it. No timings are checked."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "benchmarks"
sys.path.insert(0, str(BENCH))

import conv_workload  # noqa: E402
from hand_conv import HandSimpleConvNet  # noqa: E402

from minigrad.data import load_mnist_subset  # noqa: E402


def test_hand_numpy_computes_the_minigrad_step():
    # The baseline is only fair if it does the same arithmetic: same losses, same updates.
    (x, t), _ = load_mnist_subset()
    batches = conv_workload.make_image_batches((x, t), 3)
    params = conv_workload.make_params()
    params = {k: v * 30 for k, v in params.items()}  # larger weights: more of the net is active
    hand = HandSimpleConvNet(params, np.float64)
    step = conv_workload.minigrad_step(params, batches)
    for i, (xb, tb) in enumerate(batches):
        hand_loss = hand.step(xb.astype(np.float64), tb, conv_workload.LR)
        assert step(i).item() == pytest.approx(hand_loss, rel=1e-4)
    state = step.model.state_dict()
    for book, name in step.model.BOOK_NAMES.items():
        assert not np.array_equal(hand.p[book], params[book]), book  # every weight moved
        np.testing.assert_allclose(state[name], hand.p[book], rtol=1e-3, atol=1e-5, err_msg=book)


def test_run_reports_w6(tmp_path):
    out = tmp_path / "w6.json"
    done = subprocess.run(
        [sys.executable, "-c",
         "import runpy, sys; sys.modules['torch'] = sys.modules['dezero'] = None; "
         "sys.path.insert(0, sys.argv[1]); sys.argv = sys.argv[1:]; "
         "runpy.run_path(sys.argv[0] + '/run.py', run_name='__main__')",
         str(BENCH), "--tiny", "--only", "W6", "--data", "subset", "--json", str(out)],
        capture_output=True, text=True, timeout=300, cwd=ROOT,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "| W6 SimpleConvNet" in done.stdout and "W6 peak memory of one step" in done.stdout
    report = json.loads(out.read_text())["conv"]
    assert set(report["ms"]) == {"hand_f32", "minigrad"}
    assert report["ms"]["hand_f32"]["ratio"] == 1.0
    memory = report["memory_kib"]
    # minigrad holds at least what the step needs
    assert memory["minigrad"] >= memory["must_hold"] > 0
