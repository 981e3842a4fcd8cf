"""Plot a benchmark run's ratios: `python benchmarks/plot.py results.json [-o ratios.png]`.

Left: each implementation's median step time over hand NumPy float32 for
W1-W4, with minigrad's target marked. Right: W5's overhead per recorded op
over plain NumPy, with the 5 us target.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from matplotlib.figure import Figure  # a bare Figure: no pyplot state, no display needed

HERE = Path(__file__).resolve().parent
SERIES = {  # key -> (label, colour)
    "hand_f64": ("hand NumPy f64", "#9e9e9e"),
    "hand_f32_after": ("hand NumPy f32, update after", "#cfcfcf"),
    "minigrad": ("minigrad", "#1f77b4"),
    "minigrad_plain": ("minigrad, no nn", "#9467bd"),
    "minigrad_replay": ("minigrad replay", "#7fb3de"),
    "minigrad_fused": ("minigrad replay, fused step", "#0b3d6b"),
    "torch": ("PyTorch", "#ff7f0e"),
    "dezero": ("DeZero", "#2ca02c"),
}


def plot(report: dict, out: Path) -> Path:
    """Draw the run in `report` (run.py's JSON) to `out`; returns the path."""
    steps, ops = report["steps"], report["ops"]
    panels = int(bool(steps)) + int(bool(ops))
    if not panels:
        raise ValueError("the report holds no results to plot")
    fig = Figure(figsize=(6.5 * panels, 4.2))
    axes = list(fig.subplots(1, panels, squeeze=False)[0])
    if steps:
        ax = axes.pop(0)
        keys = [k for k in SERIES if any(k in r["ms"] for r in steps)]
        width = 0.8 / len(keys)
        for j, key in enumerate(keys):
            label, colour = SERIES[key]
            xs = [i + (j - (len(keys) - 1) / 2) * width for i in range(len(steps))]
            ratios = [r["ms"][key]["ratio"] if key in r["ms"] else 0 for r in steps]
            ax.bar(xs, ratios, width, label=label, color=colour)
        for i, r in enumerate(steps):
            ax.hlines(r["target"], i - 0.45, i + 0.45, colors="#1f77b4", linestyles="dashed")
        ax.axhline(1.0, color="black", linewidth=0.8)
        ax.set_xticks(range(len(steps)), [r["key"] for r in steps])
        ax.set_yscale("log")
        top = max(s["ratio"] for r in steps for s in r["ms"].values())
        ticks = [v for v in (0.5, 1, 1.5, 2, 3, 5, 10, 20, 50) if v <= top * 1.2]
        ax.set_yticks(ticks, [f"{v:g}x" for v in ticks])
        ax.minorticks_off()
        ax.set_ylabel("time per step / hand NumPy f32")
        ax.set_title("Training step (dashed: minigrad target)")
        ax.legend(fontsize="small", loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=3)
    if ops:
        ax = axes.pop(0)
        keys = [k for k in ("minigrad", "torch", "dezero") if k in ops[0]["us"]]
        width = 0.8 / len(keys)
        for j, key in enumerate(keys):
            label, colour = SERIES[key]
            xs = [i + (j - (len(keys) - 1) / 2) * width for i in range(len(ops))]
            ax.bar(
                xs,
                [max(r["us"][key]["overhead"], 0.01) for r in ops],
                width,
                label=label,
                color=colour,
            )
        ax.axhline(5.0, color="#1f77b4", linestyle="dashed", label="target 5 us")
        ax.set_xticks(range(len(ops)), [r["op"] for r in ops])
        ax.set_yscale("log")
        ax.set_ylabel("us over plain NumPy")
        ax.set_title("W5: overhead per recorded op\n(1 element, forward + backward)")
        ax.legend(fontsize="small", loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=4)
    fig.suptitle(f"minigrad benchmarks ({report['mode']} run)", fontsize="medium")
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    return out


def main(argv: list[str] | None = None) -> None:
    """Read the JSON, write the PNG."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("results", help="JSON written by `run.py --json`")
    parser.add_argument("-o", "--out", default=str(HERE / "ratios.png"), help="PNG to write")
    args = parser.parse_args(argv)
    report = json.loads(Path(args.results).read_text())
    print(plot(report, Path(args.out)))


if __name__ == "__main__":
    main(sys.argv[1:])
