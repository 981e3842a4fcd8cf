"""Compare this tree's minigrad with an earlier commit's, step by step in one process.

    python benchmarks/compare.py HEAD~1              # W1 and W4, eager and replayed
    python benchmarks/compare.py 5aee5e3 --only W3 --steps 500
    python benchmarks/compare.py HEAD~1 --only W5     # per-op overhead, with timeit

Run-to-run noise on a shared machine hides the few percent one
optimization gains. Here both versions train side by side: every step, each
implementation (hand NumPy, then each minigrad version eager and replayed)
takes one turn, back to back and warm, and the table gives the median and
its ratio to hand NumPy from the same steps. The earlier commit's package is
exported with `git archive` and imported next to this one; it needs
`minigrad.replay` (commit 5aee5e3 or later). W5, the per-op overhead, is
timed with timeit instead, NumPy and the two versions taking turns.

Run it against HEAD with a clean tree first, to see how far two copies of
the same code differ. Against a commit before `a9e07e7`, where minigrad
did not yet align its parameters, the old copy's W1 weight may land at an
offset from a cache line that slows its update, and W1 then favours the
new copy by that much.
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import subprocess
import sys
import tempfile
import time
import timeit
from pathlib import Path
from types import ModuleType

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def load_workloads(root: Path, tag: str) -> ModuleType:
    """This tree's `workloads.py`, imported against the minigrad package found in `root`."""
    for name in [m for m in sys.modules if m == "minigrad" or m.startswith("minigrad.")]:
        del sys.modules[name]  # the loaded steps keep their own module objects alive
    if str(ROOT) not in sys.path:
        sys.path.append(str(ROOT))  # else workloads.py would put this tree first
    sys.path.insert(0, str(root))
    try:
        spec = importlib.util.spec_from_file_location(f"workloads_{tag}", HERE / "workloads.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module  # dataclasses look their module up while defining
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(root))
    if Path(module.mg.__file__).resolve().parent != (root / "minigrad").resolve():
        raise RuntimeError(f"imported minigrad from {module.mg.__file__}, not from {root}")
    return module


def compare(rev: str, keys: list[str], steps: int) -> str:
    """Median us per step of hand NumPy and both minigrads on each workload, as Markdown."""
    sha = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", rev],
        check=True, capture_output=True, text=True,
    ).stdout.strip()  # fmt: skip
    lines = [f"minigrad {sha} (old) against this tree (new)"]
    with tempfile.TemporaryDirectory() as tmp:
        archive = subprocess.run(
            ["git", "-C", str(ROOT), "archive", sha, "minigrad"], check=True, capture_output=True
        ).stdout
        subprocess.run(["tar", "-x", "-C", tmp], input=archive, check=True)
        old, new = load_workloads(Path(tmp), "old"), load_workloads(ROOT, "new")
        chosen = [w for w in new.WORKLOADS if w.key in keys]
        mnist = new.load_images()[:2] if any(w.data == "mnist" for w in chosen) else None
        if chosen:
            lines += [
                "",
                f"Training steps: median us per step over {steps} interleaved steps, ratio to "
                "hand NumPy f32",
                "",
                "| workload | hand NumPy | old | new | old replay | new replay |",
                "|---|---|---|---|---|---|",
            ]
        for w in chosen:
            batches = new.make_batches(w, 20, mnist)
            weights = new.make_weights(w.sizes)
            runs = {
                "hand": new.hand_step(w, weights, batches, np.float32),
                "old": old.minigrad_step(w, weights, batches),
                "new": new.minigrad_step(w, weights, batches),
                "old replay": old.minigrad_replay_step(w, weights, batches),
                "new replay": new.minigrad_replay_step(w, weights, batches),
            }
            times: dict[str, list[float]] = {name: [] for name in runs}
            names = list(runs)
            for i in range(steps + steps // 10):  # the first tenth warms up
                # Rotate who goes first: a turn right after another runs faster or slower.
                for name in names[i % len(names) :] + names[: i % len(names)]:
                    step = runs[name]
                    t0 = time.perf_counter()
                    step(i)
                    if i >= steps // 10:
                        times[name].append(time.perf_counter() - t0)
            hand = np.median(times["hand"])
            cells = [
                f"{np.median(t) * 1e6:.0f} ({np.median(t) / hand:.2f}x)" for t in times.values()
            ]
            lines.append(f"| {w.key} | " + " | ".join(cells) + " |")
        if "W5" in keys:
            lines += op_overheads(old, new, steps)
    return "\n".join(lines)


def op_overheads(old: ModuleType, new: ModuleType, steps: int) -> list[str]:
    """W5's per-op overhead over NumPy, old against new, as a Markdown table.

    Steps on MNIST-sized arrays can depend on where the allocator put each
    copy's arrays (module docstring); one-element ops barely do; timeit's best of
    a few repeats, NumPy, old and new in turns, resolves a tenth of a
    microsecond.
    """
    calls = max(1, steps // 3)  # --steps 3000: 1,000 calls per sample
    mean = {"old": [], "new": []}
    rows = [
        "",
        "W5, one op on one element, forward + backward: NumPy's us per call and each "
        f"version's overhead over it (timeit: best of 3 x {calls} calls, median of 9 "
        "samples taken in turn)",
        "",
        "| op | NumPy | old | new |",
        "|---|---|---|---|",
    ]
    for name in new.OP_NAMES:
        runners = {
            "numpy": new.op_runners(name, False)["numpy"],
            "old": old.op_runners(name, False)["minigrad"],
            "new": new.op_runners(name, False)["minigrad"],
        }
        samples: dict[str, list[float]] = {k: [] for k in runners}
        for i in range(9):
            for k in list(runners)[i % 3 :] + list(runners)[: i % 3]:
                best = min(timeit.repeat(runners[k], number=calls, repeat=3))
                samples[k].append(best / calls * 1e6)
        us = {k: statistics.median(v) for k, v in samples.items()}
        for k in mean:
            mean[k].append(us[k] - us["numpy"])
        rows.append(
            f"| {name} | {us['numpy']:.2f} | +{us['old'] - us['numpy']:.2f} "
            f"| +{us['new'] - us['numpy']:.2f} |"
        )
    rows.append(
        f"| mean | | +{statistics.mean(mean['old']):.2f} | +{statistics.mean(mean['new']):.2f} |"
    )
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("rev", help="the earlier commit (anything `git rev-parse` takes)")
    parser.add_argument(
        "--only",
        default="W1,W4",
        help="comma-separated workloads (default W1,W4; W5: per-op overhead)",
    )
    parser.add_argument(
        "--steps",
        type=int,
        default=3000,
        help="timed steps (default 3000); W5 times steps/3 calls a sample",
    )
    args = parser.parse_args(argv)
    if args.steps < 1:
        parser.error(f"--steps takes a count >= 1, got {args.steps}")
    found = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--verify", "--quiet", f"{args.rev}^{{commit}}"],
        capture_output=True,
    )
    if found.returncode != 0:
        parser.error(f"{args.rev!r} is not a commit in {ROOT}")
    keys = [k.strip().upper() for k in args.only.split(",")]
    known = {"W1", "W2", "W3", "W4", "W5"}
    if not set(keys) <= known:
        parser.error(f"--only takes workloads from {sorted(known)}, got {args.only!r}")
    print(compare(args.rev, keys, args.steps))


if __name__ == "__main__":
    main(sys.argv[1:])
