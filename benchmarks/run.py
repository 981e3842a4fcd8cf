"""Benchmark minigrad side by side with hand-written NumPy (and PyTorch, DeZero when installed).

    python benchmarks/run.py --quick            # under a minute
    python benchmarks/run.py --json out.json    # the full run, also as JSON

W1-W4 time whole training steps (forward, loss, backward, SGD update) in
float32 and report the median ms per step with its ratio to hand NumPy in
float32 from the same run. Hand NumPy also runs with its update moved after
the backward ("update after"), where an optimizer's step() must put it;
minigrad runs eager, replayed (`Replay`), and replayed with the optimizer
step fused in (`Replay(..., optimizer=opt)`, see `minigrad/replay.py`). W5
times one recorded op on one element, forward and backward, against NumPy
doing the same arithmetic. Implementations take turns in one process (see
`harness.interleave`). Prints Markdown.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import sys
import time
from pathlib import Path

import numpy as np
from harness import OtherLoad, describe_machine, interleave, machine_info, summarize
from workloads import (
    OP_NAMES,
    WORKLOADS,
    dezero_available,
    dezero_step,
    hand_step,
    load_images,
    make_batches,
    make_weights,
    minigrad_fused_step,
    minigrad_replay_step,
    minigrad_step,
    op_runners,
    torch_available,
    torch_step,
)

OP_TARGET_US = 5.0
COLUMNS = {  # implementation key -> column title
    "hand_f32": "hand NumPy f32",
    "hand_f64": "hand NumPy f64",
    "hand_f32_after": "hand NumPy f32, update after",
    "minigrad": "minigrad",
    "minigrad_replay": "minigrad replay",
    "minigrad_fused": "minigrad replay, fused step",
    "torch": "PyTorch",
    "dezero": "DeZero",
}
MET = {"minigrad": "eager", "minigrad_replay": "replay", "minigrad_fused": "fused"}
OTHERS = ("torch", "dezero")  # optional frameworks, timed when installed


@dataclasses.dataclass(frozen=True)
class Mode:
    """How much to measure: repetitions, samples per turn, pause between turns."""

    reps: int
    per_turn: int
    warmup: int
    pause: float  # seconds
    settle: int  # untimed steps at the start of each W1-W4 turn, after the pause
    n_batches: int
    op_reps: int
    op_inner: int  # calls per W5 sample


MODES = {
    "tiny": Mode(
        reps=2, per_turn=2, warmup=1, pause=0.0, settle=0, n_batches=4, op_reps=2, op_inner=10
    ),
    "quick": Mode(
        reps=10, per_turn=5, warmup=5, pause=0.05, settle=10, n_batches=20, op_reps=5, op_inner=300
    ),
    "full": Mode(
        reps=40,
        per_turn=10,
        warmup=20,
        pause=0.075,
        settle=10,
        n_batches=50,
        op_reps=15,
        op_inner=1000,
    ),
}


def _counted(step):
    batch = itertools.count()
    return lambda: step(next(batch))


def bench_steps(
    mode: Mode, keys: list[str], mnist: tuple[np.ndarray, np.ndarray] | None, others: set[str]
) -> list[dict]:
    """W1-W4: median ms per training step for each implementation, with ratios."""
    results = []
    for w in WORKLOADS:
        if w.key not in keys:
            continue
        batches = make_batches(w, mode.n_batches, mnist)
        weights = make_weights(w.sizes)
        runners = {
            "hand_f32": hand_step(w, weights, batches, np.float32),
            "hand_f64": hand_step(w, weights, batches, np.float64),
            "hand_f32_after": hand_step(w, weights, batches, np.float32, separate_update=True),
            "minigrad": minigrad_step(w, weights, batches),
            "minigrad_replay": minigrad_replay_step(w, weights, batches),
            "minigrad_fused": minigrad_fused_step(w, weights, batches),
        }
        if "torch" in others:
            runners["torch"] = torch_step(w, weights, batches)
        if "dezero" in others:
            runners["dezero"] = dezero_step(w, weights, batches)
        times = interleave(
            {k: _counted(s) for k, s in runners.items()},
            mode.reps,
            mode.per_turn,
            mode.pause,
            mode.warmup,
            settle=mode.settle,
        )
        stats = {k: summarize(v, 1e3) for k, v in times.items()}
        base = stats["hand_f32"]["median"]
        for s in stats.values():
            s["ratio"] = s["median"] / base
        results.append({"key": w.key, "title": w.title, "target": w.target, "ms": stats})
    return results


def bench_ops(mode: Mode, others: set[str]) -> list[dict]:
    """W5: microseconds per one-element forward+backward, and the overhead over NumPy."""
    results = []
    for name in OP_NAMES:
        times = interleave(
            op_runners(name, "torch" in others, "dezero" in others),
            mode.op_reps,
            1,
            mode.pause,
            warmup=mode.op_inner // 10 + 1,
            inner=mode.op_inner,
            settle=1,  # one sample is op_inner calls: more than a step needs to settle
        )
        stats = {k: summarize(v, 1e6) for k, v in times.items()}
        base = stats["numpy"]["median"]
        for k, s in stats.items():
            s["overhead"] = s["median"] - base if k != "numpy" else 0.0
        results.append({"op": name, "us": stats})
    return results


def _cell(stats: dict | None) -> str:
    if stats is None:
        return "-"
    return f"{stats['median']:.3f} ({stats['ratio']:.2f}x)"


def markdown(report: dict) -> str:
    """The report as Markdown tables."""
    lines = [f"Machine: {describe_machine(report['machine'])}", ""]
    for note in report["notes"]:
        lines.append(f"- {note}")
    if report["steps"]:
        keys = [k for k in COLUMNS if any(k in r["ms"] for r in report["steps"])]
        lines += [
            "",
            "Training step, float32: median ms (ratio to hand NumPy f32, same run)",
            "",
            "| workload | " + " | ".join(COLUMNS[k] for k in keys) + " | minigrad target | met |",
            "|---" * (len(keys) + 3) + "|",
        ]
        for r in report["steps"]:
            met = [
                label
                for key, label in MET.items()
                if key in r["ms"] and r["ms"][key]["ratio"] <= r["target"]
            ]
            met = "yes" if "eager" in met else ", ".join(met) or "no"
            cells = " | ".join(_cell(r["ms"].get(k)) for k in keys)
            lines.append(f"| {r['title']} | {cells} | <= {r['target']:.2f}x | {met} |")
    if report["ops"]:
        keys = ["minigrad"] + [k for k in OTHERS if k in report["ops"][0]["us"]]
        head = "| op | NumPy us | " + " | ".join(
            f"{COLUMNS[k]} us | {COLUMNS[k]} overhead us" for k in keys
        )
        lines += [
            "",
            "W5, one recorded op on one element, forward + backward: median us "
            f"(overhead = minus NumPy; target < {OP_TARGET_US:g} us)",
            "",
            head + " |",
            "|---" * (2 + 2 * len(keys)) + "|",
        ]
        for r in report["ops"]:
            us = r["us"]
            cells = [f"{us[k]['median']:.2f} | {us[k]['overhead']:+.2f}" for k in keys]
            lines.append(f"| {r['op']} | {us['numpy']['median']:.2f} | " + " | ".join(cells) + " |")
        means = [np.mean([r["us"][k]["overhead"] for r in report["ops"]]) for k in keys]
        lines.append("| mean | | " + " | ".join(f"| {m:+.2f}" for m in means) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    """Run the benchmarks the arguments ask for, print Markdown, return the report."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="a short run (under a minute)")
    size.add_argument("--tiny", action="store_true", help="a few steps only, to test the scripts")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    parser.add_argument("--no-torch", action="store_true", help="leave PyTorch out")
    parser.add_argument("--no-dezero", action="store_true", help="leave DeZero out")
    parser.add_argument(
        "--data",
        choices=("auto", "mnist", "subset"),
        default="auto",
        help="MNIST beside the project (auto: when present) or the embedded subset",
    )
    parser.add_argument(
        "--only",
        default="W1,W2,W3,W4,W5",
        help="comma-separated workloads to run (default: all)",
    )
    parser.add_argument(
        "--pause", type=float, metavar="MS", help="pause between turns (default: the mode's)"
    )
    parser.add_argument(
        "--settle",
        type=int,
        metavar="N",
        help="untimed steps at the start of each turn (default: the mode's)",
    )
    args = parser.parse_args(argv)
    mode_name = "tiny" if args.tiny else "quick" if args.quick else "full"
    mode = MODES[mode_name]
    if args.pause is not None:
        mode = dataclasses.replace(mode, pause=args.pause / 1e3)
    if args.settle is not None:
        if args.settle < 0:
            parser.error(f"--settle takes a count >= 0, got {args.settle}")
        mode = dataclasses.replace(mode, settle=args.settle)
    keys = [k.strip().upper() for k in args.only.split(",")]
    unknown = set(keys) - {w.key for w in WORKLOADS} - {"W5"}
    if unknown:
        parser.error(f"unknown workloads {sorted(unknown)}; choose from W1-W5")

    notes = []
    others = set()
    for key, left_out, available in (
        ("torch", args.no_torch, torch_available),
        ("dezero", args.no_dezero, dezero_available),
    ):
        if left_out:
            notes.append(f"{COLUMNS[key]} left out (--no-{key})")
            continue
        found, note = available()
        notes.append(note)
        if found:
            others.add(key)
    mnist = None
    if any(w.data == "mnist" and w.key in keys for w in WORKLOADS):
        x, t, source = load_images(args.data)
        mnist = (x, t)
        notes.append("data: " + source)
    notes.append(
        f"mode {mode_name}: {mode.reps} rounds x {mode.per_turn} steps per implementation, "
        f"{mode.pause * 1e3:g} ms pause between turns, then {mode.settle} untimed steps"
    )

    started = time.perf_counter()
    load = OtherLoad()
    report = {
        "mode": mode_name,
        "machine": machine_info(),
        "notes": notes,
        "steps": bench_steps(mode, keys, mnist, others),
        "ops": bench_ops(mode, others) if "W5" in keys else [],
    }
    report["seconds"] = round(time.perf_counter() - started, 1)
    other = load.fraction()
    report["machine"]["other_load"] = other
    if other is not None:
        warn = " - timings are unreliable, rerun on a quiet machine" if other > 0.1 else ""
        notes.append(f"other processes used {other:.0%} of the CPUs during the run{warn}")
    if "torch" in others:
        import torch

        report["machine"]["torch"] = torch.__version__
    print(markdown(report))
    print(f"\n({report['seconds']} s; command: python benchmarks/run.py {' '.join(argv or [])})")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    return report


if __name__ == "__main__":
    main(sys.argv[1:])
