"""The benchmark workloads and one training-step function per implementation.

W1-W4 train a fully connected net with softmax cross-entropy and plain SGD.
Every implementation starts from the same weights and steps through the
same batches, so they do the same arithmetic; only the framework differs.
W5 and W5b time single recorded ops on one element against NumPy.
"""

from __future__ import annotations

import importlib.metadata
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # measure the minigrad of this tree, installed or not
    sys.path.insert(0, str(ROOT))

from hand_numpy import HandMLP, aligned  # noqa: E402

import minigrad as mg  # noqa: E402
from minigrad import functional as F  # noqa: E402
from minigrad import nn, optim  # noqa: E402
from minigrad.data import load_mnist, load_mnist_subset, spiral  # noqa: E402
from minigrad.replay import Replay  # noqa: E402

SHARED_MNIST = ROOT.parent / "shared" / "datasets" / "mnist"
LR = 0.1

Step = Callable[[int], object]  # runs the training step on batch number i


@dataclass(frozen=True)
class Workload:
    """A training-step benchmark: layer sizes, activation, batch size, data, target ratio."""

    key: str
    sizes: tuple[int, ...]
    activation: str
    batch: int
    data: str  # "mnist" or "spiral"
    target: float  # minigrad's goal, as a ratio to hand NumPy float32

    @property
    def title(self) -> str:
        net = "-".join(map(str, self.sizes))
        on = "MNIST" if self.data == "mnist" else "spiral"
        return f"{self.key} {net} {self.activation}, {on}, batch {self.batch}"


WORKLOADS = (
    Workload("W1", (784, 50, 10), "sigmoid", 100, "mnist", 1.15),
    Workload("W2", (784, 100, 100, 10), "relu", 100, "mnist", 1.15),
    Workload("W3", (784, 1000, 10), "sigmoid", 100, "mnist", 1.05),
    Workload("W4", (2, 16, 16, 3), "sigmoid", 30, "spiral", 1.6),
)


def load_images(source: str = "auto") -> tuple[np.ndarray, np.ndarray, str]:
    """MNIST training images (float32, flat) and labels, and a note of where they came from.

    "auto" takes the full set beside the project when it is there, else the
    subset embedded in minigrad; "mnist" and "subset" force one of them.
    """
    if source == "mnist" or (source == "auto" and SHARED_MNIST.is_dir()):
        (x, t), _ = load_mnist(data_dir=SHARED_MNIST, download=False)
        return x, t, f"MNIST training set ({len(x)} images) from {SHARED_MNIST}"
    (x, t), _ = load_mnist_subset()
    return x, t, f"embedded MNIST subset ({len(x)} images)"


def make_batches(
    w: Workload, n_batches: int, mnist: tuple[np.ndarray, np.ndarray] | None, seed: int = 0
) -> list[tuple[np.ndarray, np.ndarray]]:
    """`n_batches` random float32 batches (x, integer labels) for the workload."""
    rng = np.random.default_rng(seed)
    x, t = mnist if w.data == "mnist" else spiral(100, 3, seed=seed)
    picks = [rng.choice(len(x), w.batch, replace=False) for _ in range(n_batches)]
    return [(np.ascontiguousarray(x[i]), t[i]) for i in picks]


def make_weights(sizes: tuple[int, ...], seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """Xavier-initialized float32 weights and zero biases, one (W, b) per layer."""
    rng = np.random.default_rng(seed)
    return [
        (
            (rng.standard_normal((n_in, n_out)) / np.sqrt(n_in)).astype(np.float32),
            np.zeros(n_out, np.float32),
        )
        for n_in, n_out in zip(sizes[:-1], sizes[1:], strict=True)
    ]


# ---------------------------------------------------------------- implementations


def hand_step(w: Workload, weights, batches, dtype: type, separate_update: bool = False) -> Step:
    """Hand-written NumPy in `dtype` (its own copy of the batches in that dtype)."""
    net = HandMLP(weights, w.activation, dtype, separate_update)
    data = [(x.astype(dtype), t) for x, t in batches]

    def step(i: int) -> float:
        x, t = data[i % len(data)]
        return net.step(x, t, LR)

    return step


def minigrad_model(w: Workload, weights) -> nn.MLP:
    """An `nn.MLP` of the workload's shape holding a copy of `weights`."""
    model = nn.MLP(list(w.sizes), activation=w.activation)
    names = [name for name, _ in model.named_parameters()]
    model.load_state_dict(dict(zip(names, [a for pair in weights for a in pair], strict=True)))
    return model


def minigrad_step(w: Workload, weights, batches) -> Step:
    """A training step as a minigrad user writes it: model, loss, zero_grad, backward, step."""
    model = minigrad_model(w, weights)
    opt = optim.SGD(model.parameters(), lr=LR)

    def step(i: int) -> mg.Tensor:
        x, t = batches[i % len(batches)]
        loss = F.softmax_cross_entropy(model(x), t)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss

    step.model = model  # for tests that compare the trained weights
    return step


def minigrad_plain_step(w: Workload, weights, batches) -> Step:
    """The step as a user writes it without nn or optim: tensors, ops, backward, hand SGD.

    Per layer `h @ W + b` and the activation (none after the last layer),
    `F.softmax_cross_entropy`, `loss.backward()`, then `W.data -= lr * W.grad.data`
    and `W.grad = None` for each parameter.
    """
    activation = F.sigmoid if w.activation == "sigmoid" else F.relu
    # Aligned copies, as nn's parameters and the hand step's weights are: where an array
    # starts must not decide the comparison (see hand_numpy.aligned).
    layers = [
        (mg.Tensor(aligned(W), requires_grad=True), mg.Tensor(aligned(b), requires_grad=True))
        for W, b in weights
    ]
    *hidden, (W_out, b_out) = layers
    params = [p for layer in layers for p in layer]

    def step(i: int) -> mg.Tensor:
        x, t = batches[i % len(batches)]
        h = x
        for W, b in hidden:
            h = activation(h @ W + b)
        loss = F.softmax_cross_entropy(h @ W_out + b_out, t)
        loss.backward()
        for p in params:
            p.data -= LR * p.grad.data
            p.grad = None
        return loss

    step.params = params  # for tests that compare the trained weights
    return step


def kernels_step(w: Workload, weights, batches) -> Step:
    """The eager step's arithmetic with no graph: minigrad's own op forwards and VJPs
    (`F.linear.op.forward`, `.op.vjps`, ...) called directly on arrays, then SGD.

    The floor for an eager or replayed step: whatever it costs above hand NumPy
    is in the ops' NumPy code, and whatever the eager step costs above it is
    the engine's, nn's and optim's Python.
    """
    params = [(aligned(W), aligned(b)) for W, b in weights]
    linear, loss_op = F.linear.op, F.softmax_cross_entropy.op
    activation = (F.sigmoid if w.activation == "sigmoid" else F.relu).op
    last = len(params) - 1

    def step(i: int) -> float:
        x, t = batches[i % len(batches)]
        inputs, outputs = [], []  # each layer's input; each activation's (input, output)
        h = x
        for k, (W, b) in enumerate(params):
            inputs.append(h)
            a = linear.forward(h, W, b)
            if k < last:
                h = activation.forward(a)
                outputs.append((a, h))
        loss, saved = loss_op.forward(a, t)
        g = loss_op.vjps[0](np.ones((), a.dtype), loss, a, t, saved=saved)
        grads = []
        for k in range(last, -1, -1):
            W, b = params[k]
            grads.append(
                (linear.vjps[1](g, None, inputs[k], W, b), linear.vjps[2](g, None, inputs[k], W, b))
            )
            if k > 0:
                g = linear.vjps[0](g, None, inputs[k], W, b)
                a, h = outputs[k - 1]
                g = activation.vjps[0](g, h, a)
        for (W, b), (gW, gb) in zip(params, reversed(grads), strict=True):
            W -= LR * gW
            b -= LR * gb
        return float(loss)

    step.params = [p for layer in params for p in layer]  # for tests that compare the weights
    return step


def minigrad_replay_step(w: Workload, weights, batches) -> Step:
    """The same step replayed: traced once on the first batch, then re-run on each batch."""
    model = minigrad_model(w, weights)
    opt = optim.SGD(model.parameters(), lr=LR)
    replay = Replay(lambda x, t: F.softmax_cross_entropy(model(x), t), *batches[0])

    def step(i: int) -> float:
        x, t = batches[i % len(batches)]
        opt.zero_grad()
        loss = replay(x, t)
        opt.step()
        return loss

    step.model = model
    return step


def minigrad_fused_step(w: Workload, weights, batches) -> Step:
    """The replayed step with the optimizer fused in: one call per step."""
    model = minigrad_model(w, weights)
    opt = optim.SGD(model.parameters(), lr=LR)
    step_fn = Replay(lambda x, t: F.softmax_cross_entropy(model(x), t), *batches[0], optimizer=opt)

    def step(i: int) -> float:
        return step_fn(*batches[i % len(batches)])

    step.model = model
    return step


def torch_step(w: Workload, weights, batches) -> Step:
    """The same step in PyTorch eager mode (nn.Sequential, cross_entropy, optim.SGD)."""
    import torch

    layers: list = []
    for W, b in weights:
        linear = torch.nn.Linear(*W.shape)
        with torch.no_grad():
            linear.weight.copy_(torch.from_numpy(W.T))
            linear.bias.copy_(torch.from_numpy(b))
        layers += [linear, torch.nn.Sigmoid() if w.activation == "sigmoid" else torch.nn.ReLU()]
    model = torch.nn.Sequential(*layers[:-1])
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


def torch_available() -> tuple[bool, str]:
    """Whether PyTorch imports, and a note saying which version or why not."""
    try:
        import torch
    except ImportError:
        return False, "PyTorch not installed: its column is skipped"
    return True, f"PyTorch {torch.__version__}, {torch.get_num_threads()} threads"


def _import_dezero():
    """DeZero and its functions. Its latest release on PyPI, 0.0.13, still uses the alias
    np.int that NumPy 2 removed; it is defined (as int, what it meant) for the import."""
    if not hasattr(np, "int"):
        np.int = int
    import dezero
    import dezero.functions

    return dezero, dezero.functions


def dezero_step(w: Workload, weights, batches) -> Step:
    """The same step in DeZero, the book series' framework (MLP, softmax_cross_entropy, SGD)."""
    dezero, DF = _import_dezero()
    from dezero.models import MLP
    from dezero.optimizers import SGD

    activation = DF.sigmoid if w.activation == "sigmoid" else DF.relu
    model = MLP([W.shape[1] for W, _ in weights], activation=activation)
    for layer, (W, b) in zip(model.layers, weights, strict=True):
        # set before the first call (no init), in aligned memory as the other implementations'
        layer.W.data, layer.b.data = aligned(W), aligned(b)
    opt = SGD(LR).setup(model)

    def step(i: int):
        x, t = batches[i % len(batches)]
        loss = DF.softmax_cross_entropy(model(x), t)
        model.cleargrads()
        loss.backward()
        opt.update()
        return loss

    return step


def dezero_available() -> tuple[bool, str]:
    """Whether DeZero imports, and a note saying which version or why not."""
    try:
        _import_dezero()
    except ImportError:
        return False, "DeZero not installed: its column is skipped"
    # Importable is enough to run it: from PYTHONPATH it has no distribution to name a version.
    try:
        return True, f"DeZero {importlib.metadata.version('dezero')}"
    except importlib.metadata.PackageNotFoundError:
        return True, "DeZero version unknown (imported, but not installed as a distribution)"


# ---------------------------------------------------------------- W5: per-op overhead

# Each op on one-element (1, 1) operands. Binary ops differentiate both inputs.
OP_NAMES = ("add", "mul", "matmul", "exp", "sigmoid", "relu", "sum")


def _numpy_op(name: str, a: np.ndarray, b: np.ndarray) -> Callable[[], object]:
    """The op's forward and its gradient formula in plain NumPy, seeded with ones."""
    if name == "add":

        def run():
            y = a + b
            g = np.ones_like(y)
            return g, g

    elif name == "mul":

        def run():
            y = a * b
            g = np.ones_like(y)
            return g * b, g * a

    elif name == "matmul":

        def run():
            y = a @ b
            g = np.ones_like(y)
            return g @ b.T, a.T @ g

    elif name == "exp":

        def run():
            y = np.exp(a)
            return np.ones_like(y) * y

    elif name == "sigmoid":

        def run():
            y = 1.0 / (1.0 + np.exp(-a))
            return np.ones_like(y) * y * (1.0 - y)

    elif name == "relu":

        def run():
            y = np.maximum(a, 0)
            return np.ones_like(y) * (a > 0)

    else:  # sum

        def run():
            y = a.sum()
            return np.full_like(a, np.ones_like(y))

    return run


def op_runners(
    name: str, with_torch: bool, with_dezero: bool = False
) -> dict[str, Callable[[], object]]:
    """One forward+backward of op `name` on one element, per implementation."""
    a = np.array([[0.5]], np.float32)
    b = np.array([[1.5]], np.float32)
    x = mg.Tensor(a.copy(), requires_grad=True)
    y = mg.Tensor(b.copy(), requires_grad=True)
    binary = name in ("add", "mul", "matmul")
    fn = getattr(F, name)

    def minigrad_run():
        out = fn(x, y) if binary else fn(x)
        out.backward()
        x.grad = y.grad = None

    runners = {"numpy": _numpy_op(name, a, b), "minigrad": minigrad_run}
    if with_torch:
        import torch

        tx = torch.tensor(a, requires_grad=True)
        ty = torch.tensor(b, requires_grad=True)
        tfn = getattr(torch, name)

        def torch_run():
            out = tfn(tx, ty) if binary else tfn(tx)
            out.backward()
            tx.grad = ty.grad = None

        runners["torch"] = torch_run
    if with_dezero:
        dezero, DF = _import_dezero()
        dx, dy = dezero.Variable(a.copy()), dezero.Variable(b.copy())
        dfn = getattr(DF, name)  # add and mul too: dezero.functions re-exports them

        def dezero_run():
            out = dfn(dx, dy) if binary else dfn(dx)
            out.backward()
            dx.cleargrad()
            dy.cleargrad()

        runners["dezero"] = dezero_run
    return runners


# ---------------------------------------------------------------- W5b: a + b with a seed

ADD_CASE = "a + b, backward(seed)"


def add_case_runners(with_torch: bool, with_dezero: bool = False) -> dict[str, Callable[[], tuple]]:
    """One `a + b` on one-element float32 tensors, forward and `backward(seed)`, grads reset.

    Each runner returns the sum and the two gradients it computed, so a test
    can check them. How this differs from W5's add: the operands have shape
    (1,), not (1, 1); the sum is written with the operator, as user code
    writes it, not `F.add`; and the caller hands backward a fixed seed array
    instead of letting the framework make ones. NumPy's counterpart computes
    the sum and both gradients: d(a + b)/da = 1, so each is the seed, copied
    because each input owns its gradient (W5's NumPy add returns one array
    of ones for both).
    """
    a = np.array([0.5], np.float32)
    b = np.array([1.5], np.float32)
    seed = np.array([1.25], np.float32)

    def numpy_run():
        return a + b, seed.copy(), seed.copy()

    x = mg.Tensor(a.copy(), requires_grad=True)
    y = mg.Tensor(b.copy(), requires_grad=True)

    def minigrad_run():
        out = x + y
        out.backward(seed)
        grads = x.grad, y.grad
        x.grad = y.grad = None
        return out, *grads

    runners = {"numpy": numpy_run, "minigrad": minigrad_run}
    if with_torch:
        import torch

        tx = torch.tensor(a, requires_grad=True)
        ty = torch.tensor(b, requires_grad=True)
        tseed = torch.from_numpy(seed)

        def torch_run():
            out = tx + ty
            out.backward(tseed)
            grads = tx.grad, ty.grad
            tx.grad = ty.grad = None
            return out, *grads

        runners["torch"] = torch_run
    if with_dezero:
        dezero, _ = _import_dezero()
        dx, dy = dezero.Variable(a.copy()), dezero.Variable(b.copy())

        def dezero_run():
            out = dx + dy
            out.grad = dezero.Variable(seed)  # DeZero's backward() takes no seed: it reads .grad
            out.backward()
            grads = dx.grad, dy.grad
            dx.cleargrad()
            dy.cleargrad()
            return out, *grads

        runners["dezero"] = dezero_run
    return runners
