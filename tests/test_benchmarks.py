"""The benchmark scripts run (run.py in its quick mode) and report what they promise; float32
stays float32.

No timings are checked: only the structure of the reports, that the hand
NumPy baseline computes the same step as minigrad, and dtypes.
"""

import importlib.metadata
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "benchmarks"
sys.path.insert(0, str(BENCH))

import conv_workload  # noqa: E402
import dtypes  # noqa: E402
import floor  # noqa: E402
import instructions  # noqa: E402
import workloads  # noqa: E402
from hand_numpy import HandMLP  # noqa: E402

# Runs a benchmark script as `python benchmarks/<script>` would, with PyTorch and DeZero
# made unimportable, so the tests are quick and always take the "not installed" path.
WITHOUT_OTHERS = (
    "import runpy, sys; sys.modules['torch'] = sys.modules['dezero'] = None; "
    "script = sys.argv[1]; "
    "sys.path.insert(0, script.rsplit('/', 1)[0]); sys.argv = sys.argv[1:]; "
    "runpy.run_path(script, run_name='__main__')"
)


def run_script(name: str, *args: str) -> str:
    # One BLAS thread: no timing is checked, and on a busy machine a second thread that
    # waits for a core taken by another job made the quick run many times slower.
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, "-c", WITHOUT_OTHERS, str(BENCH / name), *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    # The quick mode a user runs, not just the tiny one; most of its time is the spinning
    # pause between turns, which a test has no use for, so it is shortened.
    out = tmp_path_factory.mktemp("bench") / "out.json"
    stdout = run_script("run.py", "--quick", "--pause", "5", "--data", "subset", "--json", str(out))
    return stdout, json.loads(out.read_text())


def test_run_prints_the_tables(quick_run):
    stdout, _ = quick_run
    assert (
        "| workload | hand NumPy f32 | hand NumPy f64 | hand NumPy f32, update after | minigrad "
        "| minigrad, no nn | minigrad replay | minigrad replay, fused step | minigrad target | met |"
        in stdout
    )
    for w in workloads.WORKLOADS:
        assert f"| {w.title} |" in stdout
    for op in workloads.OP_NAMES:
        assert f"| {op} |" in stdout
    assert "| case | NumPy us | minigrad us | minigrad overhead us |" in stdout
    assert f"| {workloads.ADD_CASE} |" in stdout
    assert "PyTorch not installed: its column is skipped" in stdout
    assert "DeZero not installed: its column is skipped" in stdout
    assert "| PyTorch" not in stdout and "| DeZero" not in stdout
    assert "5 ms pause between turns" in stdout  # --pause reaches the mode


def test_run_json_structure(quick_run):
    _, report = quick_run
    assert report["mode"] == "quick"
    assert {"cpu", "cores", "numpy", "blas"} <= set(report["machine"])
    assert [r["key"] for r in report["steps"]] == ["W1", "W2", "W3", "W4"]
    for r in report["steps"]:
        assert set(r["ms"]) == {
            "hand_f32", "hand_f64", "hand_f32_after", "minigrad", "minigrad_plain",
            "minigrad_replay", "minigrad_fused",
        }  # fmt: skip
        hand = r["ms"]["hand_f32"]["median"]
        for stats in r["ms"].values():
            assert {"median", "q1", "q3", "n", "ratio"} <= set(stats)
            assert 0 < stats["q1"] <= stats["median"] <= stats["q3"] < 1e4 and stats["n"] >= 1
            assert stats["ratio"] == pytest.approx(stats["median"] / hand, rel=1e-9)
    assert [r["op"] for r in report["ops"]] == list(workloads.OP_NAMES)
    for r in [*report["ops"], report["add"]]:
        assert set(r["us"]) == {"numpy", "minigrad"}
        assert r["us"]["numpy"]["overhead"] == 0.0
        mg_us = r["us"]["minigrad"]
        assert mg_us["overhead"] == pytest.approx(mg_us["median"] - r["us"]["numpy"]["median"])
    assert report["add"]["case"] == workloads.ADD_CASE


def test_only_selects_workloads(tmp_path):
    out = tmp_path / "w4.json"
    stdout = run_script("run.py", "--tiny", "--only", "W4", "--json", str(out))
    report = json.loads(out.read_text())
    assert [r["key"] for r in report["steps"]] == ["W4"] and report["ops"] == []
    assert report["add"] is None
    assert "W5" not in stdout and "data:" not in stdout  # W4 needs no MNIST


def test_only_runs_the_add_case_alone(tmp_path):
    out = tmp_path / "w5b.json"
    stdout = run_script("run.py", "--tiny", "--only", "w5b", "--json", str(out))
    report = json.loads(out.read_text())
    assert report["steps"] == [] and report["ops"] == []
    assert report["add"]["case"] == workloads.ADD_CASE
    assert "### W5b" in stdout and "### W5:" not in stdout


def test_plot_writes_a_png(quick_run, tmp_path):
    _, report = quick_run
    results = tmp_path / "r.json"
    results.write_text(json.dumps(report))
    png = tmp_path / "ratios.png"
    run_script("plot.py", str(results), "-o", str(png))
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_memory_report(tmp_path):
    out = tmp_path / "mem.json"
    stdout = run_script("memory.py", "--steps", "20", "--data", "subset", "--json", str(out))
    report = json.loads(out.read_text())
    assert "Resident memory over 20 minigrad steps" in stdout
    assert len(report["rss_series"]) >= 2
    peak = report["step_peak_kib"]
    assert set(peak) == {"minigrad", "minigrad_fused", "hand_numpy_f32", "must_hold"}
    # The fused step makes no lr * grad temporary (153 KiB for W1's first weight) and frees
    # each intermediate gradient once used; what it leaves behind is no .grad at all.
    assert peak["minigrad_fused"] < peak["minigrad"] - 64
    assert report["step_left_kib"]["minigrad_fused"] < 8
    # The design's memory promise: a step's graph goes with its last reference, no cycles.
    assert report["graph_freed_by_refcount"] is True
    assert report["objects_in_cycles_after_100_steps"] == 0


def test_profile_script(tmp_path):
    stdout = run_script("profile_steps.py", "W4", "--steps", "20")
    assert "| phase | us |" in stdout and "| backward |" in stdout
    assert "cProfile, W4, 20 steps" in stdout


def small_workload(key):
    """Workload `key`, three of its batches (the embedded MNIST subset) and its weights."""
    w = {wl.key: wl for wl in workloads.WORKLOADS}[key]
    data = workloads.load_images("subset")[:2] if w.data == "mnist" else None
    return w, workloads.make_batches(w, 3, data), workloads.make_weights(w.sizes)


STEPS_AND_PARAMETERS = {  # a minigrad step maker, and where its trained parameters are
    "nn": (workloads.minigrad_step, lambda step: list(step.model.parameters())),
    "no nn": (workloads.minigrad_plain_step, lambda step: step.params),
    "kernels only": (workloads.kernels_step, lambda step: step.params),  # arrays
}


@pytest.mark.parametrize("form", STEPS_AND_PARAMETERS)
@pytest.mark.parametrize("key", ["W1", "W2", "W4"])
def test_hand_numpy_computes_the_minigrad_step(key, form):
    # The baseline is only fair if it does the same arithmetic: same losses, same updates.
    make, parameters = STEPS_AND_PARAMETERS[form]
    w, batches, weights = small_workload(key)
    hand = HandMLP(weights, w.activation, np.float64)
    step = make(w, weights, batches)
    for i, (x, t) in enumerate(batches):
        hand_loss = hand.step(x.astype(np.float64), t, workloads.LR)
        assert float(step(i)) == pytest.approx(hand_loss, rel=1e-4)
    params = [np.asarray(p) for p in parameters(step)]
    for got, want in zip(params, [a for pair in hand.params for a in pair], strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-5)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_every_implementation_gets_its_weights_on_a_cache_line(dtype):
    # Where NumPy puts W1 changes a step by several percent; the baseline must not be
    # left to chance while minigrad's parameters are aligned (DeZero's are set alike).
    w, batches, weights = small_workload("W2")
    hand = HandMLP(weights, w.activation, dtype)
    model = workloads.minigrad_step(w, weights, batches).model
    plain = workloads.minigrad_plain_step(w, weights, batches).params
    arrays = [a for pair in hand.params for a in pair]
    arrays += [p.data for p in [*model.parameters(), *plain]]
    assert [a.ctypes.data % 64 for a in arrays] == [0] * 18
    for got, want in zip(hand.params, weights, strict=True):
        assert got[0].dtype == dtype
        np.testing.assert_array_equal(got[0], want[0].astype(dtype))


@pytest.mark.parametrize("key", ["W1", "W4"])
def test_hand_numpy_updates_the_same_after_the_backward(key):
    # The "update after" reference must differ only in when it updates and how it
    # scales: the same loss and the same weights after each step.
    w, batches, weights = small_workload(key)
    inline = HandMLP(weights, w.activation, np.float64)
    after = HandMLP(weights, w.activation, np.float64, separate_update=True)
    for x, t in batches:
        x = x.astype(np.float64)
        assert after.step(x, t, workloads.LR) == inline.step(x, t, workloads.LR)
        for got, want in zip(after.params, inline.params, strict=True):
            np.testing.assert_array_equal(got[0], want[0])  # lr * dW either way: bit for bit
            np.testing.assert_array_equal(got[1], want[1])


@pytest.mark.parametrize("key", ["W1", "W4"])
def test_replayed_and_fused_steps_train_as_the_eager_step(key):
    w, batches, weights = small_workload(key)
    eager = workloads.minigrad_step(w, weights, batches)
    others = [workloads.minigrad_replay_step(w, weights, batches),
              workloads.minigrad_fused_step(w, weights, batches)]  # fmt: skip
    for i in range(len(batches) + 1):
        loss = eager(i).item()
        assert [step(i) for step in others] == [loss, loss]
    for step in others:
        for got, want in zip(step.model.parameters(), eager.model.parameters(), strict=True):
            np.testing.assert_array_equal(got.data, want.data)


@pytest.mark.parametrize("key", ["W1", "W4"])
@pytest.mark.parametrize("fused", [True, False], ids=["linear", "no nn"])
def test_the_bare_engine_trains_as_minigrad(key, fused):
    # floor.py's figure is only a floor for minigrad's step if it does the same arithmetic.
    w, batches, weights = small_workload(key)
    bare = floor.bare_step(w, weights, batches, fused)
    if fused:
        step = workloads.minigrad_step(w, weights, batches)
        params = list(step.model.parameters())
    else:
        step = workloads.minigrad_plain_step(w, weights, batches)
        params = step.params
    for i in range(len(batches) + 1):
        assert bare(i).data.item() == step(i).item()
    for got, want in zip(bare.params, params, strict=True):
        np.testing.assert_array_equal(got.data, want.data)


def test_the_bare_add_computes_the_sum_and_both_gradients():
    run = floor.add_runners()["bare"]
    for _ in range(2):  # the second call must find the gradients reset
        assert [np.asarray(getattr(v, "data", v)).tolist() for v in run()] == [
            [2.0],
            [1.25],
            [1.25],
        ]


def test_floor_prints_its_tables():
    stdout = run_script("floor.py", "--tiny", "--data", "subset")
    assert "| workload | " + " | ".join(floor.COLUMNS.values()) + " | target |" in stdout
    for w in workloads.WORKLOADS:
        assert f"| {w.title} |" in stdout
    assert re.search(r"\| median \| [0-9.]+ \| \+[0-9.]+ \| \+[0-9.]+ \|", stdout)


MACHINE = dict(cpu="cpu", cores=2, python="3", numpy="2", minigrad="x",
               blas={"library": "b", "version": "1"}, OPENBLAS_CORETYPE="unset",
               OPENBLAS_L2_SIZE="unset")  # fmt: skip


def test_the_met_column_names_the_modes_that_meet_the_target():
    import run

    def row(key, *ratios):
        keys = ("minigrad", "minigrad_plain", "minigrad_replay", "minigrad_fused")
        ms = {k: {"median": r, "ratio": r} for k, r in zip(keys, ratios, strict=True)}
        ms["hand_f32"] = {"median": 1.0, "ratio": 1.0}
        return {"key": key, "title": key, "target": 1.15, "ms": ms}

    ratios = {
        "A": (1.1, 1.1, 1.1, 1.15),
        "B": (1.1, 1.2, 1.1, 1.1),
        "C": (1.2, 1.2, 1.1, 1.1),
        "D": (1.2, 1.2, 1.2, 1.1),
        "E": (1.2,) * 4,
    }
    steps = [row(key, *r) for key, r in ratios.items()]
    report = {"machine": MACHINE, "notes": [], "steps": steps, "ops": [], "add": None}
    met = [line.rsplit("|", 2)[1].strip() for line in run.markdown(report).splitlines()[-5:]]
    assert met == ["all", "eager, replay, fused", "replay, fused", "fused", "none"]


def full_report() -> dict:
    """A report as run.py makes it with PyTorch and DeZero installed (made-up figures)."""
    import run

    stats = {"median": 1.0, "ratio": 1.0, "overhead": 0.5}
    steps = [
        {
            "key": w.key,
            "title": w.title,
            "target": w.target,
            "ms": dict.fromkeys(run.COLUMNS, stats),
        }
        for w in workloads.WORKLOADS
    ]
    us = dict.fromkeys(["numpy", "minigrad", *run.OTHERS], stats)
    ops = [{"op": name, "us": us} for name in workloads.OP_NAMES]
    add = {"case": workloads.ADD_CASE, "us": us}
    conv = {
        "key": "W6",
        "title": conv_workload.TITLE,
        "target": conv_workload.TARGET,
        "ms": dict.fromkeys(["hand_f32", "minigrad", *run.OTHERS], stats),
        "sampling": "a note",
        "memory_kib": {"minigrad": 1.0, "hand_f32": 1.0, "must_hold": 1.0},
    }
    return {
        "machine": MACHINE,
        "notes": ["a note"],
        "steps": steps,
        "ops": ops,
        "add": add,
        "conv": conv,
    }


def test_benchmarks_md_has_the_tables_run_prints():
    # The lead pastes run.py's output into the results section: same headings and columns.
    import run

    def structure(lines: list[str]) -> list[str]:
        """The subheadings and the tables' header rows."""
        return [line for line in lines if re.match(r"### |\| (workload|op|case) \|", line)]

    printed = run.markdown(full_report()).splitlines()
    text = (ROOT / "BENCHMARKS.md").read_text()
    section = text.split("<!-- results: begin", 1)[1].split("<!-- results: end -->", 1)[0]
    section = section.splitlines()
    assert len(structure(printed)) == 8
    assert structure(section) == structure(printed)
    titles = [w.title for w in workloads.WORKLOADS] + [*workloads.OP_NAMES, workloads.ADD_CASE]
    for title in [*titles, conv_workload.TITLE]:
        assert any(line.startswith(f"| {title} |") for line in section), title


def test_float32_stays_float32_through_a_training_step():
    mnist = workloads.load_images("subset")[:2]
    for w in workloads.WORKLOADS:
        found = dtypes.step_dtypes(w, mnist)
        assert set(found) >= {"graph tensors", "gradients", "loss", "parameters after the update"}
        for where, kinds in found.items():
            assert kinds == {np.dtype(np.float32)}, (w.key, where, kinds)


def test_float32_stays_float32_through_every_common_op():
    for name, kinds in dtypes.expression_dtypes().items():
        assert kinds == {np.dtype(np.float32)}, (name, kinds)


def test_the_dtype_check_sees_a_promoting_gradient(monkeypatch):
    import minigrad.functional as F

    promoting = lambda g, y, x: (g * y * (1 - y)).astype(np.float64)  # noqa: E731
    monkeypatch.setattr(F.sigmoid.op, "vjps", (promoting,))
    found = dtypes.step_dtypes(workloads.WORKLOADS[0], workloads.load_images("subset")[:2])
    assert np.dtype(np.float64) in found["VJP outputs"]


def test_compare_runs_an_earlier_commit_beside_this_tree():
    if not (ROOT / ".git").exists():
        pytest.skip("not a git checkout: compare.py exports the earlier commit with git archive")
    stdout = run_script("compare.py", "HEAD", "--only", "W4,W5", "--steps", "20")
    head = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    assert stdout.startswith(f"minigrad {head} (old) against this tree (new)")
    (row,) = [line for line in stdout.splitlines() if line.startswith("| W4 |")]
    cells = row.strip("|").split("|")[1:]
    assert len(cells) == 5 and cells[0].strip().endswith("(1.00x)")
    w5 = [line.split("|")[1:-1] for line in stdout.splitlines()[-8:]]
    assert [row[0].strip() for row in w5] == [*workloads.OP_NAMES, "mean"]
    assert all(cell.strip().startswith("+") for row in w5 for cell in row[2:])


@pytest.mark.parametrize(
    "args, message",
    [(["nosuchrev"], "'nosuchrev' is not a commit"), (["HEAD", "--steps", "0"], "count >= 1")],
)
def test_compare_refuses_a_bad_revision_or_step_count(args, message):
    # A bad revision was a CalledProcessError traceback; --steps 0 printed NaN cells.
    done = subprocess.run(
        [sys.executable, str(BENCH / "compare.py"), *args], capture_output=True, text=True, cwd=ROOT
    )
    assert done.returncode == 2 and message in done.stderr


def test_dezero_runs_when_importable_without_a_version(monkeypatch):
    # From PYTHONPATH DeZero imports but has no distribution: run.py stopped with
    # PackageNotFoundError. Whether its column runs must follow from the import alone.
    fake = types.ModuleType("dezero")
    fake.functions = types.ModuleType("dezero.functions")
    monkeypatch.setitem(sys.modules, "dezero", fake)
    monkeypatch.setitem(sys.modules, "dezero.functions", fake.functions)

    def no_distribution(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "version", no_distribution)
    found, note = workloads.dezero_available()
    assert found is True and "version unknown" in note
    monkeypatch.setattr(importlib.metadata, "version", lambda name: "0.0.13")
    assert workloads.dezero_available() == (True, "DeZero 0.0.13")
    monkeypatch.setitem(sys.modules, "dezero", None)  # not importable at all
    assert workloads.dezero_available() == (False, "DeZero not installed: its column is skipped")


def test_the_add_case_computes_the_sum_and_both_gradients():
    # Every runner, twice: the second call must find the gradients reset, not accumulated.
    installed = lambda name: importlib.util.find_spec(name) is not None  # noqa: E731
    runners = workloads.add_case_runners(installed("torch"), installed("dezero"))
    assert {"numpy", "minigrad"} <= set(runners)
    for name, run in runners.items():
        for _ in range(2):
            got = [np.asarray(getattr(v, "data", v)) for v in run()]
            assert [g.tolist() for g in got] == [[2.0], [1.25], [1.25]], name
            assert all(g.dtype == np.float32 for g in got), name


def test_instructions_refuses_unknown_names():
    result = subprocess.run(
        [sys.executable, str(BENCH / "instructions.py"), "--only", "W9", "--impl", "eager"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2 and "unknown workload or implementation: W9" in result.stderr


@pytest.mark.skipif(shutil.which("valgrind") is None, reason="needs valgrind")
def test_instructions_counts_the_steps_and_not_the_start():
    # A W4 step of the kernels is about half a million instructions, start-up many
    # millions: the difference of the two counts must be the steps' alone.
    assert 200e3 < instructions.per_step("W4", "kernels", 3, jobs=2) < 2e6
