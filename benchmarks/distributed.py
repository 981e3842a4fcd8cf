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
# The chapter-7 SimpleConvNet: conv 30x1x5x5, affine 4320-100, affine 100-10.
CONVNET_PARAMS = 30 * 25 + 30 + 4320 * 100 + 100 + 100 * 10 + 10
# Multiply-adds per sample, forward: the convolution (24x24 outputs x 30 filters x 25) and
# the two affine layers; backward costs about twice the forward.
CONVNET_MACS = 24 * 24 * 30 * 25 + 4320 * 100 + 100 * 10


def mlp_macs(sizes: tuple[int, ...]) -> int:
    return sum(a * b for a, b in zip(sizes[:-1], sizes[1:], strict=True))


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


def worker_steps(args: argparse.Namespace) -> dict:
    """Every variant in rotating turns in one 2-rank job, so that one stretch of the
    machine's load falls on all of them; "alone" variants run on rank 0 while rank 1 sleeps."""
    from mpi4py import MPI

    from minigrad import distributed as dist

    comm = MPI.COMM_WORLD
    rank, size = dist.rank(), dist.size()
    if size != 2:
        sys.exit("the steps benchmark runs on 2 ranks")
    images = load_images(args.data)
    out: dict = {"data": images[2], "workloads": {}}
    for w in WORKLOADS[:2]:
        w = dataclasses.replace(w, batch=GLOBAL_BATCH)
        batches = make_batches(w, 20, images[:2])
        weights = make_weights(w.sizes)
        runners = {}  # name -> (step, whether rank 0 runs it alone)

        def plain(share: int, r: int, w=w, weights=weights, batches=batches):
            model = minigrad_model(w, weights)
            return _step(model, optim.SGD(model.parameters(), lr=LR), batches, r, share)

        for b in SWEEP:  # one process: batch 200 and the sweep of the cost model
            runners[f"1 rank, batch {b}"] = (plain(b, 0) if rank == 0 else None, True)
        share = GLOBAL_BATCH // size
        runners["2 ranks: no all-reduce"] = (plain(share, rank), False)
        for name, overlap, bucket in (
            ("step-end, one bucket", False, dist.DEFAULT_BUCKET_BYTES),
            ("step-end, 64 KB buckets", False, SMALL_BUCKETS),
            ("overlapped, 64 KB buckets", True, SMALL_BUCKETS),
        ):
            model = minigrad_model(w, weights)
            opt = dist.DistributedOptimizer(
                optim.SGD(model.parameters(), lr=LR), overlap=overlap, bucket_bytes=bucket
            )
            runners[f"2 ranks: {name}"] = (_step(model, opt, batches, rank, share), False)
        for run, _ in runners.values():
            if run is not None:
                for i in range(args.warmup):
                    run(i)
        times: dict[str, list[float]] = {name: [] for name in runners}
        names = list(runners)
        for r in range(args.reps):  # turns in rotating order, as harness.interleave does
            for name in names[r % len(names) :] + names[: r % len(names)]:
                run, alone = runners[name]
                _idle_barrier(comm)
                if alone and rank != 0:
                    continue
                start = time.perf_counter()
                for i in range(args.steps):
                    run(i)
                times[name].append((time.perf_counter() - start) / args.steps)
        out["workloads"][w.key] = {
            "title": w.title,
            "params": sum(a.size + b.size for a, b in weights),
            "macs": mlp_macs(w.sizes),
            "ms": {name: 1e3 * float(np.median(t)) for name, t in times.items() if t},
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


def compute_model(ms_by_batch: dict[int, float]) -> tuple[float, float]:
    """Least-squares fit of step time = fixed + per_sample * batch (ms), over the sweep."""
    b = np.array(list(ms_by_batch), float)
    t = np.array(list(ms_by_batch.values()))
    per_sample, fixed = np.polyfit(b, t, 1)
    return float(fixed), float(per_sample)


def predictions(fixed: float, per_sample: float, nbytes: int) -> list[dict]:
    """Predicted step times and speed-ups at global batch 200 (and at 200 per machine)."""
    rows = []
    for n in MACHINES:
        compute = fixed + per_sample * GLOBAL_BATCH / n
        alone = fixed + per_sample * GLOBAL_BATCH
        row = {"machines": n, "compute_ms": compute}
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
        cells += [f"{1e3 / w['ms'][name]:.0f} ({alone / w['ms'][name]:.2f}x)" for name in names]
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
    for key, fit in sweep_fit.items():
        lines.append(
            f"- {key}: one process's step = {fit['fixed']:.2f} ms + {1e3 * fit['per_sample']:.1f} "
            f"us x batch (fit over batches {', '.join(map(str, SWEEP))}); gradient "
            f"{fit['nbytes'] / 1e6:.2f} MB"
        )
    for fit in sweep_fit.values():
        rows = fit["rows"]
        peaks = "; ".join(
            f"{g} Gb/s peaks at {max(rows, key=lambda r: r[f'speedup_{g}'])['machines']} "
            f"machines ({max(r[f'speedup_{g}'] for r in rows):.2f}x)"
            for g in (10, 100)
        )
        ceiling = rows[0]["compute_ms"] / fit["fixed"]
        lines += ["", f"{fit['title']}: {peaks}; no network could pass {ceiling:.1f}x", ""]
        lines += [
            "| machines | compute ms | all-reduce ms 10 Gb/s | speed-up 10 Gb/s | all-reduce ms "
            "100 Gb/s | speed-up 100 Gb/s | 200 per machine: speed-up 10 / 100 Gb/s |",
            "|---|---|---|---|---|---|---|",
        ]
        for r in fit["rows"]:
            lines.append(
                f"| {r['machines']} | {r['compute_ms']:.2f} | {r['comm_ms_10']:.3f} | "
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
        sweep = {b: w["ms"][f"1 rank, batch {b}"] for b in SWEEP}
        fixed, per_sample = compute_model(sweep)
        nbytes = 4 * w["params"]
        sweep_fit[key] = {
            "title": f"{w['title'].split(',')[0]}, {nbytes / 1e6:.2f} MB of gradients",
            "fixed": fixed,
            "per_sample": per_sample,
            "nbytes": nbytes,
            "rows": predictions(fixed, per_sample, nbytes),
        }
    # The convnet is not measured: its per-sample time is W2's scaled by multiply-adds
    # (im2col makes the convolution a matrix product as fast per operation as W2's), its
    # fixed cost taken as W2's.
    w2 = sweep_fit["W2"]
    conv_per_sample = w2["per_sample"] * CONVNET_MACS / steps["workloads"]["W2"]["macs"]
    sweep_fit["SimpleConvNet"] = {
        "title": f"chapter-7 SimpleConvNet (estimated from W2 by multiply-adds), "
        f"{4 * CONVNET_PARAMS / 1e6:.2f} MB of gradients",
        "fixed": w2["fixed"],
        "per_sample": conv_per_sample,
        "nbytes": 4 * CONVNET_PARAMS,
        "rows": predictions(w2["fixed"], conv_per_sample, 4 * CONVNET_PARAMS),
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
