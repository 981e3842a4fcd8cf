"""Data-parallel training on MPI ranks: steps per second, all-reduce times, and a cost model.

    python benchmarks/distributed.py              # a few minutes; prints Markdown
    python benchmarks/distributed.py --quick      # seconds: checks that everything runs

Launches itself under `mpiexec -n 2` (one BLAS thread per rank) and
measures, with global batch 200, every variant in rotating turns in the
same job (so that the machine's other load falls on all alike):

- W1 and W2 (benchmarks/workloads.py) training steps per second: one rank
  with batch 200 (rank 0 alone while rank 1 sleeps), and two ranks with
  batch 100 each, their gradients averaged by `DistributedOptimizer` at the
  step's end in one bucket, at the step's end in 64 KB buckets, and
  overlapped (each 64 KB bucket's non-blocking all-reduce started as soon
  as it is packed, its update as soon as it is reduced); beside them two
  ranks with batch 100 that do not communicate, which separates the
  all-reduce's share of the step from the two ranks' share of the cores;
- the same for the chapter-7 SimpleConvNet with fewer steps, and only the
  step-end all-reduce;
- one process's step time against its batch size (for the cost model);
- the time of an in-place `Allreduce` of float32 messages of 4 KB to 64 MB
  on two ranks.

From these it predicts, on paper, the speed-up of 2 to 64 machines joined by
10 and 100 Gb/s networks (see BENCHMARKS.md, "More than one process").
Nothing multi-host is measured here.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from harness import OtherLoad, describe_machine, machine_info
from workloads import WORKLOADS, load_images, make_batches, make_weights, minigrad_model

from minigrad import functional as F
from minigrad import optim

GLOBAL_BATCH = 200
LR = 0.1
SMALL_BUCKETS = 64 * 1024
SIZES = [4 << 10 << 2 * k for k in range(8)]  # 4 KB, 16 KB, ..., 64 MB
SWEEP = (200, 100, 50, 25, 12, 6, 3)  # batch sizes of the compute-time sweep
MACHINES = (1, 2, 4, 8, 16, 32, 64)
# Latency of one message between two machines (one hop of the ring): an assumption,
# typical of TCP over Ethernet and of RDMA, not a measurement.
HOP_LATENCY = {10: 30e-6, 100: 5e-6}  # Gb/s -> seconds
CONVNET = "SimpleConvNet"  # the chapter-7 net, timed like W1 and W2 with fewer steps
CONVNET_TITLE = "SimpleConvNet (conv 30x5x5, pool, 100, 10), MNIST, batch 200"


# ---------------------------------------------------------------- the ranks' side


def _step(model, opt, batches, rank: int, share: int):
    """A training step on this rank's share of global batch i."""
    parts = [
        (x[rank * share : (rank + 1) * share], t[rank * share : (rank + 1) * share])
        for x, t in batches
    ]

    def step(i: int) -> None:
        x, t = parts[i % len(parts)]
        loss = F.softmax_cross_entropy(model(x), t)
        opt.zero_grad()
        loss.backward()
        opt.step()

    return step


def _idle_barrier(comm) -> None:
    """A barrier that sleeps while it waits: MPI's own spins, taking a core from the rank
    that is still working (and a 2-core machine has none to spare)."""
    request = comm.Ibarrier()
    while not request.Test():
        time.sleep(0.0002)


def _turns(comm, runners: dict, args: argparse.Namespace, steps: int) -> dict[str, float]:
    """Median ms per step of each runner, timed in rotating turns, as harness.interleave does.

    `runners` maps a name to (step, alone): an "alone" one runs on rank 0 while the
    other ranks sleep in the barrier (their step is None).
    """
    for run, _ in runners.values():
        if run is not None:
            for i in range(args.warmup):
                run(i)
    times: dict[str, list[float]] = {name: [] for name in runners}
    names = list(runners)
    for r in range(args.reps):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            run, alone = runners[name]
            _idle_barrier(comm)
            if alone and comm.Get_rank() != 0:
                continue
            start = time.perf_counter()
            for i in range(steps):
                run(i)
            times[name].append((time.perf_counter() - start) / steps)
    return {name: 1e3 * float(np.median(t)) for name, t in times.items() if t}


def worker_steps(args: argparse.Namespace) -> dict:
    """Every variant in rotating turns in one 2-rank job, so that one stretch of the
    machine's load falls on all of them; "alone" variants run on rank 0 while rank 1 sleeps."""
    from mpi4py import MPI

    from minigrad import distributed as dist
    from minigrad import nn

    comm = MPI.COMM_WORLD
    rank, size = dist.rank(), dist.size()
    if size != 2:
        sys.exit("the steps benchmark runs on 2 ranks")
    images = load_images(args.data)
    out: dict = {"data": images[2], "workloads": {}}
    share = GLOBAL_BATCH // size
    variants = (
        ("step-end, one bucket", False, dist.DEFAULT_BUCKET_BYTES),
        ("step-end, 64 KB buckets", False, SMALL_BUCKETS),
        ("overlapped, 64 KB buckets", True, SMALL_BUCKETS),
    )
    w1w2 = [dataclasses.replace(w, batch=GLOBAL_BATCH) for w in WORKLOADS[:2]]
    for w in [*w1w2, CONVNET]:
        if w == CONVNET:
            # the MLPs' batches as images; SimpleConvNet's own init (the book's), seed 0
            batches = [
                (x.reshape(-1, 1, 28, 28), t) for x, t in make_batches(w1w2[0], 8, images[:2])
            ]

            def model():
                return nn.SimpleConvNet(rng=0)

            title, steps, chosen = CONVNET_TITLE, max(2, args.steps // 10), variants[:1]
        else:
            batches = make_batches(w, 20, images[:2])
            weights = make_weights(w.sizes)

            def model(w=w, weights=weights):
                return minigrad_model(w, weights)

            title, steps, chosen = w.title, args.steps, variants

        def plain(share: int, r: int, model=model, batches=batches):
            m = model()
            return _step(m, optim.SGD(m.parameters(), lr=LR), batches, r, share)

        runners = {}  # name -> (step, whether rank 0 runs it alone)
        for b in SWEEP:  # one process: batch 200 and the sweep of the cost model
            runners[f"1 rank, batch {b}"] = (plain(b, 0) if rank == 0 else None, True)
        runners["2 ranks: no all-reduce"] = (plain(share, rank), False)
        for name, overlap, bucket in chosen:
            m = model()
            opt = dist.DistributedOptimizer(
                optim.SGD(m.parameters(), lr=LR), overlap=overlap, bucket_bytes=bucket
            )
            runners[f"2 ranks: {name}"] = (_step(m, opt, batches, rank, share), False)
        params = sum(p.size for p in model().parameters())
        key = w if w == CONVNET else w.key
        out["workloads"][key] = {
            "title": title,
            "params": params,
            "ms": _turns(comm, runners, args, steps),
        }
    return out


def worker_allreduce(args: argparse.Namespace) -> dict:
    from mpi4py import MPI

    from minigrad import distributed as dist

    dist.init()
    comm = MPI.COMM_WORLD
    result = {}
    for nbytes in SIZES:
        buffer = np.ones(nbytes // 4, np.float32)
        calls = max(3, min(500, int(args.budget * 2e8 / nbytes)))
        for _ in range(2):
            comm.Allreduce(MPI.IN_PLACE, buffer, op=MPI.SUM)
        samples = []
        for _ in range(calls):
            comm.Barrier()
            start = time.perf_counter()
            comm.Allreduce(MPI.IN_PLACE, buffer, op=MPI.SUM)
            samples.append(time.perf_counter() - start)
        result[nbytes] = 1e6 * float(np.median(samples))
    return {"us": result}


# ---------------------------------------------------------------- the driver's side


def launch(n: int, mode: str, args: argparse.Namespace) -> dict:
    mpiexec = shutil.which("mpiexec", path=str(Path(sys.executable).parent)) or shutil.which(
        "mpiexec"
    )
    if mpiexec is None:
        sys.exit("mpiexec not found: pip install 'minigrad[distributed]'")
    command = [mpiexec, "-launcher", "fork", "-n", str(n), sys.executable, __file__]
    command += ["--worker", mode, "--data", args.data, "--reps", str(args.reps)]
    command += ["--steps", str(args.steps), "--warmup", str(args.warmup)]
    command += ["--budget", str(args.budget)]
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    if done.returncode:
        sys.exit(f"{' '.join(command)} failed:\n{done.stderr}")
    return json.loads(done.stdout.splitlines()[-1])


def ring_seconds(nbytes: float, machines: int, gbits: int) -> float:
    """Ring all-reduce: 2(N-1)/N of the message over each link, 2(N-1) hops of latency."""
    if machines == 1:
        return 0.0
    n = machines
    return 2 * (n - 1) / n * nbytes * 8 / (gbits * 1e9) + 2 * (n - 1) * HOP_LATENCY[gbits]


def predictions(ms_by_batch: dict[int, float], nbytes: int) -> list[dict]:
    """Predicted step times and speed-ups at global batch 200 (and at 200 per machine).

    The compute of N machines is one process's measured step at batch 200/N (the
    sweep's sizes are 200/N rounded down for N = 1, 2, 4, ..., 64).
    """
    rows = []
    alone = ms_by_batch[GLOBAL_BATCH]
    for n, batch in zip(MACHINES, SWEEP, strict=True):
        compute = ms_by_batch[batch]
        row = {"machines": n, "batch": batch, "compute_ms": compute}
        for g in (10, 100):
            comm = 1e3 * ring_seconds(nbytes, n, g)
            row[f"comm_ms_{g}"] = comm
            row[f"speedup_{g}"] = alone / (compute + comm)
            row[f"weak_{g}"] = n * alone / (alone + comm)  # 200 per machine: N x the samples
        rows.append(row)
    return rows


def markdown(steps: dict, sweep_fit: dict, ar: dict, info: dict, load) -> str:
    lines = [f"Machine: {describe_machine(info)}", ""]
    lines.append(
        f"- data: {steps['data']}; one BLAS thread per rank; other processes kept "
        + (f"{100 * load:.0f}% of the cores busy" if load is not None else "an unknown share")
    )
    lines += ["", "#### Steps per second, global batch 200", ""]
    names = [n for n in next(iter(steps["workloads"].values()))["ms"] if n.startswith("2 ranks")]
    head = ["workload", "1 rank, batch 200", *names]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for w in steps["workloads"].values():
        alone = w["ms"]["1 rank, batch 200"]
        cells = [w["title"].replace("batch 200", "global batch 200"), f"{1e3 / alone:.0f}"]
        cells += [
            f"{1e3 / w['ms'][n]:.0f} ({alone / w['ms'][n]:.2f}x)" if n in w["ms"] else "-"
            for n in names
        ]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "Steps per second (speed-up over one rank). Median ms per step:", ""]
    for key, w in steps["workloads"].items():
        lines.append(f"- {key}: " + ", ".join(f"{k} {v:.2f}" for k, v in w["ms"].items()))
    lines += ["", "#### In-place float32 Allreduce on 2 ranks (this machine, shared memory)", ""]
    lines += ["| message | median us | GB/s (message / time) |", "|---|---|---|"]
    for nbytes, us in ar["us"].items():
        nbytes = int(nbytes)
        size = f"{nbytes >> 20} MB" if nbytes >= 1 << 20 else f"{nbytes >> 10} KB"
        lines.append(f"| {size} | {us:.1f} | {nbytes / us / 1e3:.2f} |")
    lines += ["", "#### Cost model: predicted, not measured", ""]
    lines.append(
        "Compute on N machines: one process's measured step at batch 200/N; all-reduce: "
        "the ring formula with the assumed bandwidth and latency (see below)."
    )
    for fit in sweep_fit.values():
        rows = fit["rows"]
        peaks = "; ".join(
            f"{g} Gb/s peaks at {max(rows, key=lambda r: r[f'speedup_{g}'])['machines']} "
            f"machines ({max(r[f'speedup_{g}'] for r in rows):.2f}x)"
            for g in (10, 100)
        )
        ceiling = rows[0]["compute_ms"] / min(r["compute_ms"] for r in rows)
        lines += ["", f"{fit['title']}: {peaks}; no network could pass {ceiling:.1f}x", ""]
        lines += [
            "| machines | batch each | compute ms | all-reduce ms 10 Gb/s | speed-up 10 Gb/s | all-reduce ms "
            "100 Gb/s | speed-up 100 Gb/s | 200 per machine: speed-up 10 / 100 Gb/s |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for r in fit["rows"]:
            lines.append(
                f"| {r['machines']} | {r['batch']} | {r['compute_ms']:.2f} | {r['comm_ms_10']:.3f} | "
                f"{r['speedup_10']:.2f} | {r['comm_ms_100']:.3f} | {r['speedup_100']:.2f} | "
                f"{r['weak_10']:.1f} / {r['weak_100']:.1f} |"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few steps: checks that it runs")
    parser.add_argument("--data", default="auto", choices=("auto", "mnist", "subset"))
    parser.add_argument("--json", type=Path, help="also write the measurements here")
    parser.add_argument("--worker", choices=("steps", "allreduce"), help=argparse.SUPPRESS)
    parser.add_argument("--reps", type=int, default=7, help=argparse.SUPPRESS)
    parser.add_argument("--steps", type=int, default=60, help=argparse.SUPPRESS)
    parser.add_argument("--warmup", type=int, default=10, help=argparse.SUPPRESS)
    parser.add_argument("--budget", type=float, default=1.0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        result = worker_steps(args) if args.worker == "steps" else worker_allreduce(args)
        from minigrad import distributed as dist

        if dist.rank() == 0:
            print(json.dumps(result))
        return
    if args.quick:
        args.reps, args.steps, args.warmup, args.budget = 1, 3, 1, 0.01
    load = OtherLoad()
    steps = launch(2, "steps", args)
    ar = launch(2, "allreduce", args)
    sweep_fit = {}
    for key, w in steps["workloads"].items():
        nbytes = 4 * w["params"]
        sweep = {b: w["ms"][f"1 rank, batch {b}"] for b in SWEEP}
        sweep_fit[key] = {
            "title": f"{w['title'].split(', MNIST')[0]}, {nbytes / 1e6:.2f} MB of gradients",
            "nbytes": nbytes,
            "rows": predictions(sweep, nbytes),
        }
    info = machine_info()
    fraction = load.fraction()
    print(markdown(steps, sweep_fit, ar, info, fraction))
    if args.json:
        report = {"machine": info, "other_load": fraction, "steps": steps}
        report.update(allreduce=ar, model=sweep_fit)
        args.json.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
