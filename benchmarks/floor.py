"""How fast can an eager step of minigrad's design be? W1-W4 and W5b under a bare engine.

minigrad records one node per op, and its backward pops nodes off a heap,
newest first, calling one VJP per input. This script runs the same steps
under a bare engine of exactly that design, with the same op forwards and
VJPs (`F.linear.op.forward`, `F.linear.op.vjps`, ...), and nothing else: no
grad modes, no anomaly detection, no in-place check, no rule for who owns a
gradient's memory, no argument checks, no dtype fixes, no error messages.
It is not a second engine to use: it gives wrong gradients where minigrad's
checks refuse, and exists only to measure.

The bare step's ratio to hand NumPy is what no amount of trimming of
minigrad's engine can beat: whatever an eager step costs above it is the
price of minigrad's checks (and of `nn` and `optim`, in the step that uses
them), and whatever the bare `linear` step costs above the kernels (the
same arithmetic with no graph at all) is the price of the design itself. BENCHMARKS.md ("Where an eager step's work goes") has a run.
"""

from __future__ import annotations

import argparse
import itertools
from heapq import heappop, heappush

import numpy as np
from harness import describe_machine, interleave, machine_info, summarize
from workloads import (
    LR,
    WORKLOADS,
    add_case_runners,
    aligned,
    hand_step,
    kernels_step,
    load_images,
    make_batches,
    make_weights,
    minigrad_plain_step,
    minigrad_step,
)

from minigrad import functional as F

_sequence = itertools.count()


class BareTensor:
    """An array, its gradient, and the node that made it: nothing else."""

    __slots__ = ("data", "grad", "requires_grad", "node")
    __array_ufunc__ = None  # so `ndarray @ tensor` calls __rmatmul__

    def __init__(self, data: np.ndarray, requires_grad: bool = False) -> None:
        self.data, self.grad, self.requires_grad, self.node = data, None, requires_grad, None

    def __add__(self, other):
        return bare_add(self, other)

    def __matmul__(self, other):
        return bare_matmul(self, other)

    def __rmatmul__(self, other):
        return bare_matmul(other, self)


class BareNode:
    __slots__ = ("vjps", "inputs", "arrays", "saved", "seq")


def bare(fn):
    """The minigrad op `fn` (positional inputs only) recorded by the bare engine."""
    forward, vjps, saves = fn.op.forward, fn.op.vjps, fn.op.saves

    def apply(*args):
        arrays = [a.data if type(a) is BareTensor else a for a in args]
        y = forward(*arrays)
        node = BareNode()
        node.saved = None
        if saves:
            y, node.saved = y
        node.vjps, node.inputs, node.arrays, node.seq = vjps, args, arrays, next(_sequence)
        out = BareTensor(y, True)
        out.node = node
        return out

    return apply


bare_add, bare_matmul, bare_linear, bare_sigmoid, bare_relu, bare_loss = map(
    bare, (F.add, F.matmul, F.linear, F.sigmoid, F.relu, F.softmax_cross_entropy)
)


def bare_backward(root: BareTensor, seed: np.ndarray | None = None) -> None:
    """Add d(root)/d(leaf) into each leaf's .grad: minigrad's sweep, without its checks."""
    grads = {root: np.ones((), root.data.dtype) if seed is None else np.array(seed)}
    queue = [(-root.node.seq, root)]
    while queue:
        t = heappop(queue)[1]
        node, g = t.node, grads.pop(t)
        y, args = t.data, node.arrays
        for x, vjp in zip(node.inputs, node.vjps, strict=False):
            if type(x) is not BareTensor or not x.requires_grad:
                continue
            if node.saved is None:
                gx = vjp(g, y, *args)
            else:
                gx = vjp(g, y, *args, saved=node.saved)
            if x in grads:
                grads[x] = grads[x] + gx
            else:
                grads[x] = gx
                if x.node is not None:
                    heappush(queue, (-x.node.seq, x))
        node.inputs = node.arrays = node.saved = None
    for x, g in grads.items():
        if x.grad is None:
            x.grad = BareTensor(g)
        else:
            x.grad.data = x.grad.data + g


def bare_step(w, weights, batches, fused: bool):
    """The eager step under the bare engine: `linear` per layer as nn records it
    (fused=True), or `h @ W + b` as minigrad's no-nn step writes it; hand SGD."""
    activation = bare_sigmoid if w.activation == "sigmoid" else bare_relu
    layers = [(BareTensor(aligned(W), True), BareTensor(aligned(b), True)) for W, b in weights]
    *hidden, (W_out, b_out) = layers
    params = [p for layer in layers for p in layer]

    def step(i: int) -> BareTensor:
        x, t = batches[i % len(batches)]
        h = x
        for W, b in hidden:
            h = activation(bare_linear(h, W, b) if fused else h @ W + b)
        loss = bare_loss(bare_linear(h, W_out, b_out) if fused else h @ W_out + b_out, t)
        bare_backward(loss)
        for p in params:
            p.data -= LR * p.grad.data
            p.grad = None
        return loss

    step.params = params  # for tests that compare the trained weights
    return step


def add_runners() -> dict:
    """W5b's runners (`workloads.add_case_runners`: NumPy, minigrad) and the bare engine's,
    on the same operands and seed."""
    runners = add_case_runners(with_torch=False)
    bx = BareTensor(np.array([0.5], np.float32), True)
    by = BareTensor(np.array([1.5], np.float32), True)
    seed = np.array([1.25], np.float32)

    def bare_run():
        out = bx + by
        bare_backward(out, seed)
        grads = bx.grad, by.grad
        bx.grad = by.grad = None
        return out, *grads

    runners["bare"] = bare_run
    return runners


def _counted(step):
    batch = itertools.count()
    return lambda: step(next(batch))


COLUMNS = {
    "hand": "hand NumPy f32",
    "kernels": "kernels",
    "minigrad": "minigrad",
    "bare_linear": "bare, linear",
    "minigrad_plain": "minigrad, no nn",
    "bare_plain": "bare, no nn",
}
MODES = {  # rounds, timed steps a turn, untimed steps a turn, pause (s), W5b calls a sample
    "full": (40, 10, 10, 0.075, 1000),
    "quick": (10, 5, 5, 0.05, 300),
    "tiny": (2, 2, 0, 0.0, 10),
}


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="a short run")
    size.add_argument("--tiny", action="store_true", help="a few steps only, to test the script")
    parser.add_argument("--data", choices=("auto", "mnist", "subset"), default="auto")
    parser.add_argument("--only", default="W1,W2,W3,W4,W5b", help="comma-separated workloads")
    args = parser.parse_args(argv)
    mode = "tiny" if args.tiny else "quick" if args.quick else "full"
    reps, per_turn, settle, pause, inner = MODES[mode]
    keys = {k.strip().upper() for k in args.only.split(",")}
    unknown = keys - {w.key for w in WORKLOADS} - {"W5B"}
    if unknown:
        parser.error(f"unknown workloads {sorted(unknown)}; choose from W1-W4 and W5b")

    lines = [
        describe_machine(machine_info()),
        "",
        f"mode {mode}: {reps} rounds x {per_turn} steps",
        "",
    ]
    lines += [
        "| workload | " + " | ".join(COLUMNS.values()) + " | target |",
        "|---" * (len(COLUMNS) + 2) + "|",
    ]
    mnist = None
    for w in WORKLOADS:
        if w.key not in keys:
            continue
        if w.data == "mnist" and mnist is None:
            x, t, _ = load_images(args.data)
            mnist = (x, t)
        batches = make_batches(w, 50 if mode == "full" else 4, mnist)
        weights = make_weights(w.sizes)
        steps = {
            "hand": hand_step(w, weights, batches, np.float32),
            "kernels": kernels_step(w, weights, batches),
            "minigrad": minigrad_step(w, weights, batches),
            "bare_linear": bare_step(w, weights, batches, fused=True),
            "minigrad_plain": minigrad_plain_step(w, weights, batches),
            "bare_plain": bare_step(w, weights, batches, fused=False),
        }
        runners = {k: _counted(s) for k, s in steps.items()}
        times = interleave(runners, reps, per_turn, pause, warmup=per_turn, settle=settle)
        ms = {k: summarize(v, 1e3)["median"] for k, v in times.items()}
        cells = [f"{ms[k]:.3f} ({ms[k] / ms['hand']:.2f}x)" for k in COLUMNS]
        lines.append(f"| {w.title} | " + " | ".join(cells) + f" | <= {w.target:.2f}x |")
    if "W5B" in keys:
        times = interleave(add_runners(), reps, 1, pause, warmup=inner, inner=inner, settle=1)
        us = {k: summarize(v, 1e6)["median"] for k, v in times.items()}
        lines += ["", "| W5b: a + b, backward(seed) | NumPy us | minigrad overhead us | "
                  "bare overhead us |", "|---|---|---|---|",
                  f"| median | {us['numpy']:.2f} | +{us['minigrad'] - us['numpy']:.2f} | "
                  f"+{us['bare'] - us['numpy']:.2f} |"]  # fmt: skip
    report = "\n".join(lines)
    print(report)
    return report


if __name__ == "__main__":
    main()
