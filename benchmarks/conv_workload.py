"""W6: one training step of the book's SimpleConvNet (chapter 7), batch 100, float32.

conv 5x5 (30 filters) - ReLU - 2x2 max pool - affine 100 - ReLU - affine 10,
softmax cross-entropy, plain SGD. Every implementation starts from the same
weights and steps through the same MNIST batches. Besides the time, the
step's peak memory (tracemalloc) is compared with the arrays the step must
hold (`must_hold`).
"""

from __future__ import annotations

import gc
import tracemalloc

import numpy as np
from hand_conv import HandSimpleConvNet
from hand_numpy import aligned
from harness import interleave, summarize
from workloads import LR, Workload, _import_dezero, make_batches

import minigrad.functional as F
from minigrad import nn, optim

TITLE = "W6 SimpleConvNet (conv 30x5x5, pool, 100, 10), MNIST, batch 100"
TARGET = 1.2  # minigrad's goal, as a ratio to hand NumPy float32
BATCH = 100
# make_batches draws from the images for a workload like this one (only data and batch count)
_DRAW = Workload("W6", (784, 100, 10), "relu", BATCH, "mnist", TARGET)


def make_params(seed: int = 0) -> dict[str, np.ndarray]:
    """The book's initial weights (0.01 * randn, zero biases), float32, by the book's names."""
    rng = np.random.default_rng(seed)
    shapes = {"W1": (30, 1, 5, 5), "W2": (4320, 100), "W3": (100, 10)}
    params = {}
    for i, (name, shape) in enumerate(shapes.items(), start=1):
        params[name] = (0.01 * rng.standard_normal(shape)).astype(np.float32)
        params[f"b{i}"] = np.zeros(shape[0] if i == 1 else shape[1], np.float32)
    return params


def make_image_batches(mnist, n_batches: int, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """Batches of MNIST images as (100, 1, 28, 28) float32, with integer labels."""
    return [(x.reshape(-1, 1, 28, 28), t) for x, t in make_batches(_DRAW, n_batches, mnist, seed)]


def hand_step(params, batches):
    net = HandSimpleConvNet(params, np.float32)
    return lambda i: net.step(*batches[i % len(batches)], LR)


def minigrad_model(params) -> nn.SimpleConvNet:
    """An `nn.SimpleConvNet` holding a copy of `params` (the book's names, as from_book_params)."""
    return nn.SimpleConvNet.from_book_params(params)


def minigrad_step(params, batches):
    """The step as a minigrad user writes it: model, loss, zero_grad, backward, step."""
    model = minigrad_model(params)
    opt = optim.SGD(model.parameters(), lr=LR)

    def step(i: int):
        x, t = batches[i % len(batches)]
        loss = F.softmax_cross_entropy(model(x), t)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss

    step.model = model
    step.opt = opt
    return step


def torch_step(params, batches):
    """The same step in PyTorch eager mode."""
    import torch

    tnn = torch.nn
    model = tnn.Sequential(
        tnn.Conv2d(1, 30, 5), tnn.ReLU(), tnn.MaxPool2d(2), tnn.Flatten(),
        tnn.Linear(4320, 100), tnn.ReLU(), tnn.Linear(100, 10),
    )  # fmt: skip
    pairs = ((model[0], params["W1"]), (model[4], params["W2"].T), (model[6], params["W3"].T))
    with torch.no_grad():
        for i, (layer, weight) in enumerate(pairs, start=1):  # Linear's weight is (out, in)
            layer.weight.copy_(torch.from_numpy(np.ascontiguousarray(weight)))
            layer.bias.copy_(torch.from_numpy(params[f"b{i}"]))
    opt = torch.optim.SGD(model.parameters(), lr=LR)
    data = [(torch.from_numpy(x), torch.from_numpy(t)) for x, t in batches]
    cross_entropy = torch.nn.functional.cross_entropy

    def step(i: int):
        x, t = data[i % len(data)]
        loss = cross_entropy(model(x), t)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss

    return step


def dezero_step(params, batches):
    """The same step in DeZero (its conv2d and pooling are im2col-based too)."""
    dezero, DF = _import_dezero()
    from dezero.optimizers import SGD

    class Net(dezero.Model):
        def __init__(self):
            super().__init__()
            for name, value in params.items():
                setattr(self, name, dezero.Parameter(aligned(value)))

        def forward(self, x):
            y = DF.pooling(DF.relu(DF.conv2d(x, self.W1, self.b1)), 2, 2)
            y = DF.relu(DF.linear(DF.reshape(y, (len(x), -1)), self.W2, self.b2))
            return DF.linear(y, self.W3, self.b3)

    model = Net()
    opt = SGD(LR).setup(model)

    def step(i: int):
        x, t = batches[i % len(batches)]
        loss = DF.softmax_cross_entropy(model(x), t)
        model.cleargrads()
        loss.backward()
        opt.update()
        return loss

    return step


def bench(mode, mnist, others: set[str]) -> dict:
    """Median ms per step for each implementation, with ratios to hand NumPy float32.

    A step takes tens of milliseconds, so a turn is shorter than W1-W4's: two
    samples and two settling steps, in as many rounds as the mode's (fewer left
    the ratio to the machine's slow spells: BENCHMARKS.md, W6).
    """
    batches = make_image_batches(mnist, max(4, mode.n_batches // 5))
    params = make_params()
    runners = {"hand_f32": hand_step(params, batches), "minigrad": minigrad_step(params, batches)}
    if "torch" in others:
        runners["torch"] = torch_step(params, batches)
    if "dezero" in others:
        runners["dezero"] = dezero_step(params, batches)
    counters = {k: iter(range(10**9)) for k in runners}
    rounds, per_turn, settle = mode.reps, min(2, mode.per_turn), min(2, mode.settle)
    times = interleave(
        {k: (lambda k=k, s=s: s(next(counters[k]))) for k, s in runners.items()},
        rounds,
        per_turn,
        mode.pause,
        warmup=min(2, mode.warmup),
        settle=settle,
    )
    stats = {k: summarize(v, 1e3) for k, v in times.items()}
    base = stats["hand_f32"]["median"]
    for s in stats.values():
        s["ratio"] = s["median"] / base
    sampling = (
        f"{rounds} rounds x {per_turn} steps per implementation, {settle} untimed steps a turn"
    )
    return {"key": "W6", "title": TITLE, "target": TARGET, "ms": stats, "sampling": sampling,
            "memory_kib": memory(batches, params)}  # fmt: skip


def must_hold(batch: int, itemsize: int) -> int:
    """Bytes a SimpleConvNet step cannot do without, beyond the weights and the input batch.

    The im2col columns (dW1 needs them), the convolution's output (the ReLU
    and pooling gradients need it), the pooled and hidden activations (dW2
    and dW3 need them), the softmax, and one gradient per parameter.
    """
    columns = batch * 25 * 24 * 24
    activations = batch * (30 * 24 * 24 + 4320 + 100 + 10)
    grads = 30 * 25 + 30 + 4320 * 100 + 100 + 100 * 10 + 10
    return (columns + activations + grads) * itemsize


def _peak(step, i: int) -> float:
    gc.collect()
    tracemalloc.start()
    try:
        start = tracemalloc.get_traced_memory()[0]
        result = step(i)
        del result
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return (peak - start) / 1024


def memory(batches, params) -> dict[str, float]:
    """Peak KiB of one step above what existed before it (the best of three), by tracemalloc."""
    hand, mine = hand_step(params, batches), minigrad_step(params, batches)
    mine(0)

    def fresh(i: int):  # as in a training loop: last step's gradients dropped first
        mine.opt.zero_grad()
        return mine(i)

    return {
        "minigrad": min(_peak(fresh, i) for i in range(3)),
        "hand_f32": min(_peak(hand, i) for i in range(3)),
        "must_hold": must_hold(BATCH, 4) / 1024,
    }


def markdown(r: dict, columns: dict[str, str]) -> list[str]:
    """W6's table and memory line."""
    keys = [k for k in columns if k in r["ms"]]
    cells = " | ".join(f"{r['ms'][k]['median']:.2f} ({r['ms'][k]['ratio']:.2f}x)" for k in keys)
    met = "yes" if r["ms"]["minigrad"]["ratio"] <= r["target"] else "no"
    m = r["memory_kib"]
    return [
        "",
        "### W6: a SimpleConvNet training step, float32",
        "",
        f"Median ms per step (ratio to hand NumPy f32 with im2col, same run; {r['sampling']}).",
        "",
        "| workload | " + " | ".join(columns[k] for k in keys) + " | minigrad target | met |",
        "|---" * (len(keys) + 3) + "|",
        f"| {r['title']} | {cells} | <= {r['target']:.2f}x | {met} |",
        "",
        f"W6 peak memory of one step (tracemalloc, KiB): minigrad {m['minigrad']:.0f}, hand NumPy "
        f"f32 {m['hand_f32']:.0f}, arrays the step must hold {m['must_hold']:.0f}.",
    ]
