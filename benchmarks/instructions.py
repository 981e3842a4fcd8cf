"""Instructions per training step, counted by valgrind, for each implementation.

    python benchmarks/instructions.py                  # W1 and W4, every implementation
    python benchmarks/instructions.py --only W4 --impl hand,eager --steps 50

Timings on a shared machine swing by tens of percent from run to run; the
number of instructions a step executes does not (valgrind's callgrind counts
the same on a busy machine). Each count runs the step in a child process
under callgrind twice, with N steps and with none after the same warm-up,
and divides the difference by N, so start-up and set-up cancel out.

Instructions are not time: NumPy's and BLAS's loops run more instructions
per cycle than Python's interpreter does, so a ratio of instructions
understates the ratio of time where Python's share is large. Use it to
see what a change saves, and where a step's work goes:

- `kernels` is the eager step's arithmetic with no graph (minigrad's op
  forwards and VJPs called on arrays): above `hand_after` is the ops' NumPy
  code, above `kernels` the engine's, nn's and optim's Python.
- `eager`, `no_nn`, `replay`, `fused` are run.py's minigrad columns.

Needs valgrind (Debian's `valgrind` package). BLAS runs on one thread here,
so that every count is of the same code path.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent

IMPLEMENTATIONS = {  # name -> the expression in workloads that makes its step
    "hand": "hand_step(w, weights, batches, np.float32)",
    "hand_after": "hand_step(w, weights, batches, np.float32, separate_update=True)",
    "kernels": "kernels_step(w, weights, batches)",
    "eager": "minigrad_step(w, weights, batches)",
    "no_nn": "minigrad_plain_step(w, weights, batches)",
    "replay": "minigrad_replay_step(w, weights, batches)",
    "fused": "minigrad_fused_step(w, weights, batches)",
}
WARMUP = 20

CHILD = """
import sys
sys.path.insert(0, {here!r})
import numpy as np
from workloads import *
w = next(w for w in WORKLOADS if w.key == {key!r})
mnist = load_images("subset")[:2] if w.data == "mnist" else None
batches = make_batches(w, 10, mnist)
weights = make_weights(w.sizes)
step = {make}
for i in range({warmup} + {steps}):
    step(i)
"""


def count(key: str, impl: str, steps: int) -> int:
    """Instructions that callgrind counts for a child running `steps` steps after warm-up."""
    code = CHILD.format(
        here=str(HERE), key=key, make=IMPLEMENTATIONS[impl], warmup=WARMUP, steps=steps
    )
    env = {**os.environ, "PYTHONHASHSEED": "0", "OPENBLAS_NUM_THREADS": "1"}
    result = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null"]
        + [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    found = re.search(r"Collected : (\d+)", result.stderr)
    if result.returncode != 0 or found is None:
        raise RuntimeError(f"{key} {impl}: the child failed:\n{result.stderr[-2000:]}")
    return int(found[1])


def per_step(key: str, impl: str, steps: int, jobs: int = 1) -> float:
    """Instructions per step: the count with `steps` steps minus the count with none."""
    with ThreadPoolExecutor(jobs) as pool:
        with_steps, without = pool.map(lambda n: count(key, impl, n), (steps, 0))
    return (with_steps - without) / steps


def main(argv: list[str] | None = None) -> dict[str, dict[str, float]]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default="W1,W4", help="workloads, comma-separated (W1-W4)")
    parser.add_argument(
        "--impl",
        default=",".join(IMPLEMENTATIONS),
        help=f"implementations, comma-separated, from {', '.join(IMPLEMENTATIONS)}",
    )
    parser.add_argument("--steps", type=int, default=50, help="steps counted (default 50)")
    parser.add_argument(
        "--jobs", type=int, default=os.cpu_count(), help="children at once (default: CPUs)"
    )
    args = parser.parse_args(argv)
    keys = [k.strip().upper() for k in args.only.split(",")]
    impls = [i.strip() for i in args.impl.split(",")]
    unknown = [k for k in keys if k not in ("W1", "W2", "W3", "W4")]
    unknown += [i for i in impls if i not in IMPLEMENTATIONS]
    if unknown:
        parser.error(f"unknown workload or implementation: {', '.join(unknown)}")
    if args.steps < 1 or args.jobs < 1:
        parser.error(f"--steps and --jobs take counts >= 1, got {args.steps} and {args.jobs}")
    if shutil.which("valgrind") is None:
        parser.error("valgrind is not installed (Debian: apt-get install valgrind)")

    results: dict[str, dict[str, float]] = {}
    head = ["workload", *impls]
    print("Instructions per step, thousands (ratio to hand NumPy f32 where measured).\n")
    print("| " + " | ".join(head) + " |")
    print("|---" * len(head) + "|")
    for key in keys:
        # counts of different implementations run side by side: valgrind's counts do not
        # depend on what else the machine is doing
        with ThreadPoolExecutor(max(1, args.jobs // 2)) as pool:
            counts = pool.map(
                per_step, [key] * len(impls), impls, [args.steps] * len(impls), [2] * len(impls)
            )
        results[key] = dict(zip(impls, counts, strict=True))
        base = results[key].get("hand")
        cells = [
            f"{n / 1e3:,.0f}" + (f" ({n / base:.2f}x)" if base else "")
            for n in results[key].values()
        ]
        print("| " + " | ".join([key, *cells]) + " |", flush=True)
    return results


if __name__ == "__main__":
    main()
