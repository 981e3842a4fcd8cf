"""Where a minigrad training step spends its time: phases, and a function-level profile.

    python benchmarks/profile_steps.py W1             # phases + cProfile, per step
    python benchmarks/profile_steps.py W5 --op matmul  # one-element op, forward+backward
    python benchmarks/profile_steps.py W4 --tool pyinstrument

Phases time forward, loss, zero_grad, backward and the optimizer step
separately (median us) next to the hand NumPy step. The profile lists the
functions with the most own time, in microseconds per step (cProfile's own
overhead inflates Python-heavy code, so read it for ranking, and the phase
timings for absolute figures).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import sys
import time

import numpy as np
from workloads import (
    LR,
    OP_NAMES,
    WORKLOADS,
    hand_step,
    load_images,
    make_batches,
    make_weights,
    minigrad_model,
    op_runners,
)

from minigrad import functional as F
from minigrad import optim


def phases(key: str, steps: int, data: str) -> str:
    """Median us of each phase of a minigrad step, and of the hand NumPy step, as Markdown."""
    w = {wl.key: wl for wl in WORKLOADS}[key]
    mnist = load_images(data)[:2] if w.data == "mnist" else None
    batches = make_batches(w, 20, mnist)
    weights = make_weights(w.sizes)
    model = minigrad_model(w, weights)
    opt = optim.SGD(model.parameters(), lr=LR)
    hand = hand_step(w, weights, batches, np.float32)
    names = ("forward", "loss", "zero_grad", "backward", "optimizer step")
    times: dict[str, list[float]] = {name: [] for name in (*names, "total", "hand NumPy f32")}
    clock = time.perf_counter
    for i in range(steps + steps // 10):  # the first tenth warms up
        x, t = batches[i % len(batches)]
        t0 = clock()
        scores = model(x)
        t1 = clock()
        loss = F.softmax_cross_entropy(scores, t)
        t2 = clock()
        opt.zero_grad()
        t3 = clock()
        loss.backward()
        t4 = clock()
        opt.step()
        t5 = clock()
        hand(i)
        t6 = clock()
        if i >= steps // 10:
            marks = (t0, t1, t2, t3, t4, t5)
            for name, a, b in zip(names, marks, marks[1:], strict=False):
                times[name].append(b - a)
            times["total"].append(t5 - t0)
            times["hand NumPy f32"].append(t6 - t5)
    lines = [f"{w.title}: median us per step over {steps} steps", "", "| phase | us |", "|---|---|"]
    lines += [f"| {name} | {np.median(v) * 1e6:.1f} |" for name, v in times.items()]
    return "\n".join(lines)


def profile(key: str, op: str, steps: int, data: str, tool: str) -> str:
    """The function-level profile of `steps` minigrad steps (or W5 op calls)."""
    if key == "W5":
        run = op_runners(op, with_torch=False)["minigrad"]

        def step(i: int) -> None:
            run()

    else:
        w = {wl.key: wl for wl in WORKLOADS}[key]
        mnist = load_images(data)[:2] if w.data == "mnist" else None
        batches = make_batches(w, 20, mnist)
        model = minigrad_model(w, make_weights(w.sizes))
        opt = optim.SGD(model.parameters(), lr=LR)

        def step(i: int) -> None:
            x, t = batches[i % len(batches)]
            loss = F.softmax_cross_entropy(model(x), t)
            opt.zero_grad()
            loss.backward()
            opt.step()

    for i in range(steps // 10):
        step(i)
    if tool == "pyinstrument":
        from pyinstrument import Profiler

        profiler = Profiler(interval=0.0001)
        profiler.start()
        for i in range(steps):
            step(i)
        profiler.stop()
        return profiler.output_text(unicode=True, color=False, show_all=False)
    prof = cProfile.Profile()
    prof.enable()
    for i in range(steps):
        step(i)
    prof.disable()
    stats = pstats.Stats(prof, stream=io.StringIO())
    rows = []
    for (path, line, func), (_, calls, own, cum, _) in stats.stats.items():
        rows.append((own, cum, calls, f"{path.split('/minigrad/')[-1]}:{line}({func})"))
    rows.sort(reverse=True)
    what = f"W5 {op}" if key == "W5" else key
    lines = [
        f"cProfile, {what}, {steps} steps: own and cumulative us per step (profiled, inflated)",
        "",
        "| function | own us | cum us | calls/step |",
        "|---|---|---|---|",
    ]
    for own, cum, calls, name in rows[:25]:
        lines.append(
            f"| {name} | {own / steps * 1e6:.1f} | {cum / steps * 1e6:.1f} | {calls / steps:g} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    """Print the phase table (W1-W4) and the profile."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("workload", choices=[w.key for w in WORKLOADS] + ["W5"])
    parser.add_argument("--op", choices=OP_NAMES, default="add", help="the op for W5")
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--data", choices=("auto", "mnist", "subset"), default="auto")
    parser.add_argument("--tool", choices=("cprofile", "pyinstrument"), default="cprofile")
    args = parser.parse_args(argv)
    if args.workload != "W5":
        print(phases(args.workload, args.steps, args.data), end="\n\n")
    print(profile(args.workload, args.op, args.steps, args.data, args.tool))


if __name__ == "__main__":
    main(sys.argv[1:])
