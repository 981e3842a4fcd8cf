"""Check that a float32 training step stays float32: `python benchmarks/dtypes.py`.

Under NumPy 2's promotion rules one float64 constant in a gradient formula
turns float32 work into float64 (DeZero loses a factor of two on BLAS-bound
steps this way). This records one minigrad step of each workload and lists
the dtype of every array in its graph, every gradient (leaves and, through
`retain_grad`, every intermediate), what each VJP returned before the
engine's own cast, the loss, and the parameters after the update.
"""

from __future__ import annotations

import contextlib
import functools
import sys
from collections.abc import Iterator

import numpy as np
from workloads import (
    LR,
    WORKLOADS,
    Workload,
    load_images,
    make_batches,
    make_weights,
    minigrad_model,
)

import minigrad as mg
from minigrad import functional as F
from minigrad import optim
from minigrad.ops import VariadicVJP


@contextlib.contextmanager
def watch_vjps(seen: list[tuple[str, int, np.dtype]]) -> Iterator[None]:
    """Record (op, input, dtype) of every gradient a VJP returns, while inside."""
    saved = []
    for fn in mg.OPS.values():
        op = getattr(fn, "op", None)
        if op is None:
            continue
        saved.append((op, op.vjps))
        if isinstance(op.vjps, VariadicVJP):  # concat, stack: one rule told its input
            op.vjps = VariadicVJP(_watched_each(op.name, op.vjps.rule, seen))
        else:
            op.vjps = tuple(
                None if vjp is None else _watched(op.name, i, vjp, seen)
                for i, vjp in enumerate(op.vjps)
            )
    try:
        yield
    finally:
        for op, vjps in saved:
            op.vjps = vjps


def _watched(name: str, i: int, vjp, seen: list):
    def call(*args, **kwargs):
        g = vjp(*args, **kwargs)
        seen.append((name, i, np.asarray(getattr(g, "data", g)).dtype))
        return g

    return call


def _watched_each(name: str, rule, seen: list):
    def call(i, *args, **kwargs):
        return _watched(name, i, functools.partial(rule, i), seen)(*args, **kwargs)

    return call


def step_dtypes(w: Workload, mnist: tuple[np.ndarray, np.ndarray] | None) -> dict[str, set]:
    """The float dtypes met in one float32 training step of `w`, by where they were met."""
    model = minigrad_model(w, make_weights(w.sizes))
    opt = optim.SGD(model.parameters(), lr=LR)
    x, t = make_batches(w, 1, mnist)[0]
    loss = F.softmax_cross_entropy(model(x), t)

    graph_arrays, tensors = [], []
    stack, seen_ids = [loss], set()
    while stack:
        tensor = stack.pop()
        if id(tensor) in seen_ids:
            continue
        seen_ids.add(id(tensor))
        tensors.append(tensor)
        node = tensor.creator
        for item in node.inputs if node is not None else ():
            if isinstance(item, mg.Tensor):
                stack.append(item)
            elif isinstance(item, np.ndarray):
                graph_arrays.append(item)
    for tensor in tensors:
        if not tensor.is_leaf:
            tensor.retain_grad()

    vjp_out: list = []
    opt.zero_grad()
    with watch_vjps(vjp_out):
        loss.backward()
    opt.step()

    floats = lambda arrays: {a.dtype for a in arrays if a.dtype.kind == "f"}  # noqa: E731
    return {
        "graph tensors": floats(t.data for t in tensors),
        "graph arrays (not tensors)": floats(graph_arrays),
        "gradients": floats(t.grad.data for t in tensors if t.grad is not None),
        "VJP outputs": {d for _, _, d in vjp_out if d.kind == "f"},
        "loss": floats([loss.data]),
        "parameters after the update": floats(p.data for p in model.parameters()),
    }


# Expressions over a (3, 4) float32 tensor a and a (4,) float32 tensor b (broadcast),
# with Python scalars mixed in, as user code writes them.
EXPRESSIONS = {
    "a + b, a - b, a * b, a / b": lambda a, b: (a + b) * (a - b) / (b * b + 1.0),
    "scalars: 2.5 * a - 1, 1 / (a*a + 1), a ** 2": lambda a, b: (
        2.5 * a - 1 + 1 / (a * a + 1) + a**2
    ),
    "exp, log, sqrt, tanh": lambda a, b: (
        F.exp(a) + F.log(a * a + 1) + F.sqrt(b * b + 1) + F.tanh(a)
    ),
    "sigmoid, relu, leaky_relu": lambda a, b: F.sigmoid(a) + F.relu(a) + F.leaky_relu(a, 0.1),
    "softmax, log_softmax, logsumexp": lambda a, b: (
        F.softmax(a) * F.log_softmax(a) + F.logsumexp(a, axis=1, keepdims=True)
    ),
    "sum, mean, max, min": lambda a, b: (
        a.sum(axis=0) + a.mean(axis=0) + a.max(axis=0) + a.min(axis=0)
    ),
    "reshape, transpose, getitem": lambda a, b: a.reshape(4, 3).T[1:, :].sum(axis=0) * a[[0, 2, 2]],
    "concat, stack": lambda a, b: F.concat([a, a], axis=0).sum() + F.stack([b, b]).sum(),
    "maximum, minimum, where, clip": lambda a, b: (
        F.maximum(a, b) + F.minimum(a, b) + F.where(a.data > 0, a, b) + F.clip(a, -0.5, 0.5)
    ),
    "matmul, linear": lambda a, b: (a @ a.T).sum() + F.linear(a, a.T, b[:3]).sum(),
    "mean_squared_error, sigmoid_cross_entropy": lambda a, b: (
        F.mean_squared_error(a, a * 0.5)
        + F.sigmoid_cross_entropy(a, (a.data > 0).astype(np.float32))
    ),
    "softmax_cross_entropy (one-hot), cross_entropy_error": lambda a, b: (
        F.softmax_cross_entropy(a, np.eye(4, dtype=np.float32)[[0, 1, 3]])
        + F.cross_entropy_error(F.softmax(a), np.array([0, 1, 3]))
    ),
    "dropout": lambda a, b: F.dropout(a, 0.5, rng=0),
}


def expression_dtypes() -> dict[str, set]:
    """Float dtypes of each expression's output, gradients and VJP outputs, on float32 inputs."""
    rng = np.random.default_rng(0)
    found = {}
    for name, fn in EXPRESSIONS.items():
        a = mg.Tensor(rng.uniform(0.2, 1.0, (3, 4)).astype(np.float32), requires_grad=True)
        b = mg.Tensor(rng.uniform(0.2, 1.0, 4).astype(np.float32), requires_grad=True)
        vjp_out: list = []
        out = fn(a, b).sum()
        with watch_vjps(vjp_out):
            out.backward()
        grads = {x.grad.dtype for x in (a, b) if x.grad is not None}
        found[name] = {out.dtype} | grads | {d for _, _, d in vjp_out}
    return found


def main() -> int:
    """Print the dtypes per workload and expression; exit 1 if anything is not float32."""
    mnist = load_images("auto")[:2]
    rows = [
        (w.key, where, dtypes) for w in WORKLOADS for where, dtypes in step_dtypes(w, mnist).items()
    ]
    rows += [("ops", name, dtypes) for name, dtypes in expression_dtypes().items()]
    bad = 0
    print("| step | where | float dtypes |\n|---|---|---|")
    for key, where, dtypes in rows:
        names = ", ".join(sorted(str(d) for d in dtypes if d.kind == "f")) or "-"
        bad += bool({d for d in dtypes if d.kind == "f"} - {np.dtype(np.float32)})
        print(f"| {key} | {where} | {names} |")
    print("\nall float32" if not bad else f"\n{bad} rows are not pure float32")
    return int(bad > 0)


if __name__ == "__main__":
    sys.exit(main())
