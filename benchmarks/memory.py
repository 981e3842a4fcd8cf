"""Memory of W1 training: resident memory over many steps, and the peak of one step.

    python benchmarks/memory.py            # 10,000 steps
    python benchmarks/memory.py --quick    # 2,000 steps

Resident memory (RSS, from /proc/self/statm) is sampled while minigrad
trains W1; it should level off after the first steps, since each step's
graph is freed when the step ends. The peak of one step comes from
tracemalloc (NumPy reports its array buffers to it): the most memory a
step holds above what existed before it, for minigrad eager, for its
fused replayed step (`Replay(..., optimizer=opt)`) and for the hand NumPy
step, next to the arrays the step must hold (see `must_hold`).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import sys
import tracemalloc
import weakref
from pathlib import Path

import numpy as np
from workloads import (
    WORKLOADS,
    hand_step,
    load_images,
    make_batches,
    make_weights,
    minigrad_fused_step,
    minigrad_step,
)

W1 = WORKLOADS[0]


def rss_bytes() -> int:
    """Resident set size of this process now (peak RSS where /proc is missing)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def must_hold(sizes: tuple[int, ...], batch: int, itemsize: int) -> int:
    """Bytes a training step cannot do without, beyond the weights and the input batch.

    The activation of every hidden layer (their derivative needs it), the
    softmax of the scores (the loss gradient is softmax - onehot), and one
    gradient per parameter (the framework keeps them in `.grad` until the
    optimizer has used them).
    """
    activations = batch * sum(sizes[1:])
    grads = sum(n_in * n_out + n_out for n_in, n_out in zip(sizes[:-1], sizes[1:], strict=True))
    return (activations + grads) * itemsize


def step_peak(step, i: int, before=None) -> tuple[int, int]:
    """(peak above the start, what is left above the start) of step(i), in bytes, by tracemalloc."""
    if before is not None:
        before()
    gc.collect()
    tracemalloc.start()
    try:
        start = tracemalloc.get_traced_memory()[0]
        result = step(i)
        del result
        current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak - start, current - start


def run(steps: int, samples: int, data: str) -> dict:
    """Measure everything; returns the report as a dict."""
    x, t, source = load_images(data)
    batches = make_batches(W1, 50, (x, t))
    del x, t  # so resident memory shows the training, not the data set
    weights = make_weights(W1.sizes)
    step = minigrad_step(W1, weights, batches)
    model = step.model
    for i in range(100):  # let allocator pools and caches settle
        step(i)

    # Cycles: with the collector off, a step's graph must still be freed by reference counts.
    gc.collect()
    gc.disable()
    try:
        loss = step(0)
        alive = weakref.ref(loss)
        del loss
        freed_by_refcount = alive() is None
        for i in range(100):
            step(i)
        cyclic = gc.collect()
    finally:
        gc.enable()

    every = max(1, steps // samples)
    series = [(0, rss_bytes())]
    for i in range(steps):
        step(i)
        if (i + 1) % every == 0 or i == steps - 1:
            series.append((i + 1, rss_bytes()))
    first, last = series[0][1], series[-1][1]

    hand = hand_step(W1, weights, batches, np.float32)
    fused = minigrad_fused_step(W1, weights, batches)
    fused(0)  # the first call sets up what later calls reuse
    mg_peaks = [step_peak(step, i, before=model.zero_grad) for i in range(5)]
    fused_peaks = [step_peak(fused, i) for i in range(5)]
    hand_peaks = [step_peak(hand, i) for i in range(5)]
    itemsize = np.dtype(np.float32).itemsize
    return {
        "workload": W1.title,
        "data": source,
        "steps": steps,
        "rss_series": series,
        "rss_start_mib": first / 2**20,
        "rss_last_mib": last / 2**20,
        "rss_max_mib": max(r for _, r in series) / 2**20,
        "rss_growth_kib": (last - first) / 1024,
        "rss_growth_last_half_kib": (last - series[len(series) // 2][1]) / 1024,
        "graph_freed_by_refcount": freed_by_refcount,
        "objects_in_cycles_after_100_steps": cyclic,
        "step_peak_kib": {
            "minigrad": min(p for p, _ in mg_peaks) / 1024,
            "minigrad_fused": min(p for p, _ in fused_peaks) / 1024,
            "hand_numpy_f32": min(p for p, _ in hand_peaks) / 1024,
            "must_hold": must_hold(W1.sizes, W1.batch, itemsize) / 1024,
        },
        "step_left_kib": {
            "minigrad": min(r for _, r in mg_peaks) / 1024,
            "minigrad_fused": min(r for _, r in fused_peaks) / 1024,
            "hand_numpy_f32": min(r for _, r in hand_peaks) / 1024,
        },
    }


def markdown(r: dict) -> str:
    """The memory report as Markdown."""
    peak = r["step_peak_kib"]
    left = r["step_left_kib"]
    return "\n".join(
        [
            f"Memory, {r['workload']} ({r['data']})",
            "",
            f"Resident memory over {r['steps']:,} minigrad steps (after 100 warm-up steps): "
            f"{r['rss_start_mib']:.1f} MiB at the start, {r['rss_last_mib']:.1f} MiB at the end, "
            f"max {r['rss_max_mib']:.1f} MiB (growth {r['rss_growth_kib']:+.0f} KiB, "
            f"{r['rss_growth_last_half_kib']:+.0f} KiB over the last half).",
            f"Graph freed by reference counting alone: {'yes' if r['graph_freed_by_refcount'] else 'NO'}; "
            f"objects found in reference cycles after 100 steps with gc off: "
            f"{r['objects_in_cycles_after_100_steps']}.",
            "",
            "Peak memory of one step above what existed before it (tracemalloc, KiB):",
            "",
            "| | peak | left after the step |",
            "|---|---|---|",
            f"| minigrad | {peak['minigrad']:.1f} | {left['minigrad']:.1f} |",
            f"| minigrad replay, fused step | {peak['minigrad_fused']:.1f} | "
            f"{left['minigrad_fused']:.1f} |",
            f"| hand NumPy f32 | {peak['hand_numpy_f32']:.1f} | {left['hand_numpy_f32']:.1f} |",
            f"| arrays the step must hold | {peak['must_hold']:.1f} | |",
        ]
    )


def main(argv: list[str] | None = None) -> dict:
    """Run, print Markdown, optionally write JSON."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="2,000 steps instead of 10,000")
    size.add_argument(
        "--steps", type=int, default=10_000, help="how many W1 steps (default 10,000)"
    )
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    parser.add_argument("--data", choices=("auto", "mnist", "subset"), default="auto")
    args = parser.parse_args(argv)
    steps = 2_000 if args.quick else args.steps
    report = run(steps, samples=20, data=args.data)
    print(markdown(report))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    return report


if __name__ == "__main__":
    main(sys.argv[1:])
