"""Timing and reporting helpers shared by the benchmark scripts."""

from __future__ import annotations

import os
import platform
import subprocess
import time
from collections.abc import Callable

import numpy as np


def interleave(
    runners: dict[str, Callable[[], object]],
    reps: int,
    per_turn: int,
    pause: float,
    warmup: int,
    inner: int = 1,
    settle: int = 0,
) -> dict[str, np.ndarray]:
    """Time implementations in turns, round robin; returns seconds per call for each.

    Each repetition gives every implementation one turn of `per_turn` timed
    samples of `inner` calls. The order rotates every repetition so none
    always follows the same neighbour, and a `pause` before each turn lets
    the previous library's BLAS or OpenMP threads stop spinning. The pause
    spins rather than sleeps: a process that sleeps lets the machine idle,
    and its steps then ran in slow spells that caught some turns and not
    others. After the pause the caches are cold, and after a switch a step
    takes several steps to come down to its steady time, which a training
    loop never sees: each turn first runs `settle` untimed samples.
    BENCHMARKS.md ("How it measures") explains this; its git history has the measurements.
    """
    for fn in runners.values():
        for _ in range(warmup):
            fn()
    names = list(runners)
    samples: dict[str, list[float]] = {name: [] for name in names}
    clock = time.perf_counter
    for r in range(reps):
        shift = r % len(names)
        for name in names[shift:] + names[:shift]:
            fn = runners[name]
            if pause:
                _spin(pause)
            for _ in range(settle * inner):
                fn()
            for _ in range(per_turn):
                start = clock()
                for _ in range(inner):
                    fn()
                samples[name].append((clock() - start) / inner)
    return {name: np.array(times) for name, times in samples.items()}


def _spin(seconds: float) -> None:
    """Wait without letting the CPU idle (see `interleave`)."""
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def summarize(seconds: np.ndarray, scale: float) -> dict[str, float]:
    """Median and quartiles of the samples, multiplied by `scale` (1e3 for ms, 1e6 for us)."""
    q1, median, q3 = np.percentile(seconds * scale, [25, 50, 75])
    return {"median": float(median), "q1": float(q1), "q3": float(q3), "n": len(seconds)}


class OtherLoad:
    """How much CPU other processes took while a run went on (Linux /proc/stat).

    Other jobs on the machine distort timings badly: a BLAS call whose worker
    thread has to share a core with someone else's process can stall for a
    whole scheduler slice. The figure tells a reader how far to trust a run.
    """

    def __init__(self) -> None:
        self.start = self._sample()

    @staticmethod
    def _sample() -> tuple[float, float, float] | None:
        try:
            with open("/proc/stat") as f:
                fields = [int(v) for v in f.readline().split()[1:]]
        except (OSError, ValueError):
            return None
        tick = os.sysconf("SC_CLK_TCK")
        busy = (sum(fields[:8]) - fields[3] - fields[4]) / tick  # all but idle and iowait
        own = sum(os.times()[:4])
        return busy, own, time.monotonic()

    def fraction(self) -> float | None:
        """Share of the machine's cores that other processes kept busy since creation."""
        end = self._sample()
        if self.start is None or end is None:
            return None
        busy, own, wall = (e - s for e, s in zip(end, self.start, strict=True))
        return max(0.0, (busy - own) / (wall * (os.cpu_count() or 1)))


def _cpu_model() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return platform.processor() or "unknown"
    for line in out.splitlines():
        if line.startswith("Model name:"):
            return line.split(":", 1)[1].strip()
    return "unknown"


def blas_info() -> dict[str, object]:
    """Which BLAS NumPy runs: the kernel and threads from threadpoolctl if present, else the build."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        return {
            "library": blas.get("name"),
            "version": blas.get("version"),
            "source": "numpy build config (pip install threadpoolctl for the running kernel)",
        }
    for pool in threadpool_info():
        if pool.get("user_api") == "blas" and "numpy" in pool.get("filepath", ""):
            return {
                "library": pool.get("internal_api"),
                "version": pool.get("version"),
                "kernel": pool.get("architecture"),
                "threads": pool.get("num_threads"),
                "source": "threadpoolctl",
            }
    return {"library": "unknown", "source": "threadpoolctl found no BLAS in numpy"}


def source_version() -> str:
    """The minigrad commit measured, with "+changes" when the work tree differs from it."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=True)
        return done.stdout.strip()

    try:
        commit = git("rev-parse", "--short", "HEAD")
        dirty = git("status", "--porcelain", "--", "minigrad")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return commit + ("+changes" if dirty else "")


def machine_info() -> dict[str, object]:
    """The machine and software a run measured, for the report."""
    return {
        "minigrad": source_version(),
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "blas": blas_info(),
        # Set on some processors to dodge old OpenBLAS bugs; they slow a current one.
        "OPENBLAS_CORETYPE": os.environ.get("OPENBLAS_CORETYPE", "unset"),
        "OPENBLAS_L2_SIZE": os.environ.get("OPENBLAS_L2_SIZE", "unset"),
    }


def describe_machine(info: dict) -> str:
    """One Markdown line naming the machine."""
    blas = info["blas"]
    kernel = f", {blas['kernel']} kernel" if blas.get("kernel") else ""
    threads = f", {blas['threads']} threads" if blas.get("threads") else ""
    env = ""
    if info["OPENBLAS_CORETYPE"] != "unset" or info["OPENBLAS_L2_SIZE"] != "unset":
        env = (
            f"; OPENBLAS_CORETYPE={info['OPENBLAS_CORETYPE']}, "
            f"OPENBLAS_L2_SIZE={info['OPENBLAS_L2_SIZE']}"
        )
    return (
        f"{info['cpu']}, {info['cores']} cores; Python {info['python']}, NumPy {info['numpy']}, "
        f"BLAS {blas.get('library')} {blas.get('version')}{kernel}{threads}{env}; "
        f"minigrad {info['minigrad']}"
    )
