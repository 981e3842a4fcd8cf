"""What the chapter scripts ch1_... to ch4_... share: the command line, saving plots,
timing, and where the data beside the project lives."""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import matplotlib

from minigrad import data

T = TypeVar("T")

# ../shared/datasets beside the project: real MNIST and the book's sample weights.
# Nothing requires it; the scripts say what they skip when it is absent.
SHARED = Path(__file__).resolve().parents[2] / "shared" / "datasets"


def parser(doc: str) -> argparse.ArgumentParser:
    """A command line with --out and --show; a script adds its own options."""
    p = argparse.ArgumentParser(
        description=doc, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--out", type=Path, default=Path("out"), help="where plots go (out/)")
    p.add_argument("--show", action="store_true", help="also open each plot in a window")
    return p


def parse(p: argparse.ArgumentParser) -> argparse.Namespace:
    """Parse the command line, pick the file-only backend unless --show, make --out."""
    args = p.parse_args()
    if not args.show:
        matplotlib.use("Agg")  # files only: no window, no display needed
    try:
        args.out.mkdir(parents=True, exist_ok=True)
    except OSError as e:  # a file of that name, or no permission
        p.error(f"--out {args.out}: cannot make a directory there ({e.strerror})")
    if not os.access(args.out, os.W_OK):  # else found at the first plot, after the work
        p.error(f"--out {args.out}: the directory is not writable")
    return args


def load_full_mnist(data_dir: str | os.PathLike | None):
    """The full MNIST as `minigrad.data.load_mnist` gives it, or exit with its message."""
    try:
        return data.load_mnist(data_dir=data_dir)
    except (OSError, ValueError) as e:  # no files and no network, or a damaged file
        sys.exit(f"{Path(sys.argv[0]).name}: error: {e}")


def save(fig, args: argparse.Namespace, name: str) -> None:
    """Write a matplotlib figure to args.out/name; with --show, open it too."""
    import matplotlib.pyplot as plt

    path = args.out / name
    fig.savefig(path, dpi=110)
    print(f"  [plot saved: {path}]")
    if args.show:
        plt.show()
    plt.close(fig)


def plot_path(args: argparse.Namespace, name: str) -> Path:
    """Where a minigrad.viz helper should write the plot `name` (announced on stdout)."""
    path = args.out / name
    print(f"  [plot saved: {path}]")
    return path


def median_time(fn: Callable[[], T], repeat: int = 5) -> tuple[float, T]:
    """The median wall time of `repeat` calls of fn, in seconds, and fn's (last) result."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result
