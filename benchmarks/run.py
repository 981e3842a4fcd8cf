"""Benchmark minigrad side by side with hand-written NumPy (and PyTorch, DeZero when installed).

    python benchmarks/run.py --tiny             # seconds: checks that everything runs
    python benchmarks/run.py --quick            # under a minute
    python benchmarks/run.py --json out.json    # the full run, also as JSON

W1-W4 time whole training steps (forward, loss, backward, SGD update) in
float32 and report the median ms per step with its ratio to hand NumPy in
float32 from the same run. Hand NumPy also runs with its update moved after
the backward ("update after"), where an optimizer's step() must put it;
minigrad runs as a user writes it with `nn` and `optim`, without them
("no nn": tensors, ops and a hand SGD update), replayed (`Replay`), and
replayed with the optimizer step fused in (`Replay(..., optimizer=opt)`).
W5 times one recorded op on one element, forward and backward, against
NumPy doing the same arithmetic; W5b does the same for `a + b` with
`backward(seed)` (see `workloads.add_case_runners` for how it differs).
W6 times a SimpleConvNet step (the book's chapter 7) against hand-written
NumPy im2col (`conv_workload.py`). Implementations take turns in one process
(see `harness.interleave`). Prints Markdown that drops into BENCHMARKS.md's
results section as it is.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

import conv_workload
import numpy as np
from harness import OtherLoad, describe_machine, interleave, machine_info, summarize
from workloads import (
    ADD_CASE,
    OP_NAMES,
    WORKLOADS,
    add_case_runners,
    dezero_available,
    dezero_step,
    hand_step,
    load_images,
    make_batches,
    make_weights,
    minigrad_fused_step,
    minigrad_plain_step,
    minigrad_replay_step,
    minigrad_step,
    op_runners,
    torch_available,
    torch_step,
)

OP_TARGET_US = 5.0  # W5, the mean over its ops
ADD_TARGET_US = 4.0  # W5b
COLUMNS = {  # implementation key -> column title
    "hand_f32": "hand NumPy f32",
    "hand_f64": "hand NumPy f64",
    "hand_f32_after": "hand NumPy f32, update after",
    "minigrad": "minigrad",
    "minigrad_plain": "minigrad, no nn",
    "minigrad_replay": "minigrad replay",
    "minigrad_fused": "minigrad replay, fused step",
    "torch": "PyTorch",
    "dezero": "DeZero",
}
MET = {  # the minigrad columns held to the target, and their names in the "met" column
    "minigrad": "eager",
    "minigrad_plain": "no nn",
    "minigrad_replay": "replay",
    "minigrad_fused": "fused",
}
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
    op_inner: int  # calls per W5 and W5b sample


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
            "minigrad_plain": minigrad_plain_step(w, weights, batches),
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


def _time_op(mode: Mode, runners: dict[str, Callable[[], object]]) -> dict[str, dict]:
    """Microseconds per call of each runner, with its overhead over the "numpy" runner."""
    times = interleave(
        runners,
        mode.op_reps,
        1,
        mode.pause,
        warmup=mode.op_inner // 10 + 1,
        inner=mode.op_inner,
        settle=1,  # one sample is op_inner calls: more than a step needs to settle
    )
    stats = {k: summarize(v, 1e6) for k, v in times.items()}
    base = stats["numpy"]["median"]
    for s in stats.values():
        s["overhead"] = s["median"] - base
    return stats


def bench_ops(mode: Mode, others: set[str]) -> list[dict]:
    """W5: microseconds per one-element forward+backward of each op, and the overhead."""
    return [
        {"op": name, "us": _time_op(mode, op_runners(name, "torch" in others, "dezero" in others))}
        for name in OP_NAMES
    ]


def bench_add(mode: Mode, others: set[str]) -> dict:
    """W5b: microseconds per `a + b` with `backward(seed)`, and the overhead."""
    runners = add_case_runners("torch" in others, "dezero" in others)
    return {"case": ADD_CASE, "us": _time_op(mode, runners)}


def _cell(stats: dict | None) -> str:
    if stats is None:
        return "-"
    return f"{stats['median']:.3f} ({stats['ratio']:.2f}x)"


def _met(ms: dict, target: float) -> str:
    """The minigrad columns within the target: "all", "none", or their names."""
    measured = [label for key, label in MET.items() if key in ms]
    met = [label for key, label in MET.items() if key in ms and ms[key]["ratio"] <= target]
    if not met:
        return "none"
    return "all" if met == measured else ", ".join(met)


def _op_head(first: str, keys: list[str]) -> list[str]:
    """The header rows of a W5 or W5b table: NumPy, then time and overhead per framework."""
    cells = [first, "NumPy us"]
    for k in keys:
        cells += [f"{COLUMNS[k]} us", f"{COLUMNS[k]} overhead us"]
    return ["| " + " | ".join(cells) + " |", "|---" * len(cells) + "|"]


def _op_row(first: str, us: dict, keys: list[str]) -> str:
    cells = [first, f"{us['numpy']['median']:.2f}"]
    for k in keys:
        cells += [f"{us[k]['median']:.2f}", f"{us[k]['overhead']:+.2f}"]
    return "| " + " | ".join(cells) + " |"


def markdown(report: dict) -> str:
    """The report as Markdown: the machine, the notes, then one table per benchmark."""
    lines = [f"Machine: {describe_machine(report['machine'])}", ""]
    for note in report["notes"]:
        lines.append(f"- {note}")
    if report["steps"]:
        keys = [k for k in COLUMNS if any(k in r["ms"] for r in report["steps"])]
        lines += [
            "",
            "### W1-W4: training step, float32",
            "",
            "Median ms per step (ratio to hand NumPy f32 in the same run).",
            "",
            "| workload | " + " | ".join(COLUMNS[k] for k in keys) + " | minigrad target | met |",
            "|---" * (len(keys) + 3) + "|",
        ]
        for r in report["steps"]:
            cells = " | ".join(_cell(r["ms"].get(k)) for k in keys)
            met = _met(r["ms"], r["target"])
            lines.append(f"| {r['title']} | {cells} | <= {r['target']:.2f}x | {met} |")
    if report["ops"]:
        keys = ["minigrad"] + [k for k in OTHERS if k in report["ops"][0]["us"]]
        lines += [
            "",
            "### W5: one recorded op on one element, forward + backward",
            "",
            "Median us per call; overhead = minus NumPy doing the same arithmetic "
            f"(target: minigrad's mean < {OP_TARGET_US:g} us).",
            "",
            *_op_head("op", keys),
        ]
        lines += [_op_row(r["op"], r["us"], keys) for r in report["ops"]]
        means = [np.mean([r["us"][k]["overhead"] for r in report["ops"]]) for k in keys]
        lines.append("| mean | | " + " | ".join(f"| {m:+.2f}" for m in means) + " |")
    if report.get("add"):
        us = report["add"]["us"]
        keys = ["minigrad"] + [k for k in OTHERS if k in us]
        lines += [
            "",
            "### W5b: `a + b` on one-element float32 tensors, forward + `backward(seed)`",
            "",
            "Median us per call, grads reset each call; overhead = minus NumPy computing the sum "
            f"and both gradients (target: minigrad < {ADD_TARGET_US:g} us).",
            "",
            *_op_head("case", keys),
            _op_row(report["add"]["case"], us, keys),
        ]
    if report.get("conv"):
        lines += conv_workload.markdown(report["conv"], COLUMNS)
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
        default="W1,W2,W3,W4,W5,W5b,W6",
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
    unknown = set(keys) - {w.key for w in WORKLOADS} - {"W5", "W5B", "W6"}
    if unknown:
        parser.error(f"unknown workloads {sorted(unknown)}; choose from W1-W6 and W5b")

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
    if "W6" in keys or any(w.data == "mnist" and w.key in keys for w in WORKLOADS):
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
        "add": bench_add(mode, others) if "W5B" in keys else None,
        "conv": conv_workload.bench(mode, mnist, others) if "W6" in keys else None,
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
