"""Chapter 4: learning from data with loss functions and gradients.

4.2 the losses, and why neither accuracy nor a step activation can be learned
from (their gradient, by backprop, is zero almost everywhere; sigmoid's is
not), 4.3 numerical differentiation, 4.4 gradients and gradient descent
(numerically, as the book computes them, and by backprop next to them), a
saddle point and a plateau that stop or slow it, gradient ascent, the
simple net's dW, and 4.5 the two-layer net on MNIST: numerical gradients
against backprop (they agree; backprop is thousands of times faster), then
the book's training run with its learning curves, and a mini-batch's loss
next to the whole training set's.

Everything is in float64, like the book's NumPy code. Without --full the
training uses the 5,000/1,000-image MNIST subset embedded in minigrad; with
--full, the real 60,000/10,000 (from --data-dir, $MINIGRAD_DATA_DIR or the
cache, downloaded if found nowhere).

    python examples/ch4_learning.py [--out DIR] [--show] [--fast] [--full] [--data-dir DIR]
"""

import time
from pathlib import Path

import numpy as np
from _common import SHARED, load_full_mnist, median_time, parse, parser, plot_path, save

import minigrad as mg
import minigrad.functional as F
from minigrad import data, nn, optim, viz
from minigrad.gradcheck import numerical_diff, numerical_gradient
from minigrad.train import evaluate

mg.set_default_dtype(np.float64)


def losses():
    print("== 4.2.1-4.2.2 Mean squared error and cross-entropy (eqs. 4.1, 4.2)")
    t = np.array([0, 0, 1, 0, 0, 0, 0, 0, 0, 0])  # the answer is "2"
    y_2 = np.array([0.1, 0.05, 0.6, 0.0, 0.05, 0.1, 0.0, 0.1, 0.0, 0.0])  # most likely "2"
    y_7 = np.array([0.1, 0.05, 0.1, 0.0, 0.05, 0.1, 0.0, 0.6, 0.0, 0.0])  # most likely "7"
    for label, y in (('"2" most likely', y_2), ('"7" most likely', y_7)):
        mse = F.mean_squared_error(mg.tensor(y), t).item()
        cee = F.cross_entropy_error(mg.tensor(y), t).item()
        print(f"{label}: mean squared error {mse!r}, cross-entropy {cee!r}")


def minibatch(x_train, t_train, net, rng):
    print("\n== 4.2.3-4.2.4 Mini-batches: a loss estimated on a random sample")
    batch = rng.choice(len(x_train), 10)  # as np.random.choice(60000, 10) in the book
    x_batch, t_batch = x_train[batch], t_train[batch]
    print(f"x_train {x_train.shape}; 10 random indices {batch}: x_batch {x_batch.shape}")
    with mg.no_grad():
        y = F.softmax(net.predict(x_batch))
    # An untrained net gives each digit about 0.1, so the loss is about -log 0.1 = 2.3026.
    print(
        f"an untrained net's batch cross-entropy (sum / batch size), labels as indices: "
        f"{F.cross_entropy_error(y, t_batch).item():.6f}, as one-hot rows: "
        f"{F.cross_entropy_error(y, np.eye(10)[t_batch]).item():.6f}"
    )


class Step(nn.Module):
    """The perceptron's step as an activation module (for the comparison in 4.2.5)."""

    def forward(self, x):
        return F.step(x)


def why_a_loss(x_train, t_train):
    """Section 4.2.5: accuracy, and a step activation, give backprop nothing to follow."""
    print("\n== 4.2.5 Why not accuracy as the loss, and why not a step: gradients by backprop")
    x, t = x_train[:100], t_train[:100]
    rng = np.random.default_rng(0)
    W = mg.Tensor(0.01 * rng.standard_normal((784, 10)), requires_grad=True)
    scores = x @ W
    # Accuracy written with ops: a sample counts when its label's score beats every other.
    others = scores - 1e9 * np.eye(10)[t]  # the label's own score pushed out of the max
    accuracy = F.step(scores[np.arange(len(t)), t] - others.max(axis=1)).mean()
    (g_acc,) = mg.grad(accuracy, W)
    (g_loss,) = mg.grad(F.softmax_cross_entropy(x @ W, t), W)
    print(
        f"a linear classifier on 100 images: accuracy {accuracy.item():.2f}, "
        f"max |d accuracy / dW| = {np.abs(g_acc.data).max()}; "
        f"cross-entropy's max |dL/dW| = {np.abs(g_loss.data).max():.3g}"
    )
    print(
        "  (a small change of W changes no prediction, so accuracy stays put: its gradient is 0\n"
        "   almost everywhere, and where a prediction flips it jumps; the loss moves smoothly)"
    )
    for name, activation in (("step", Step()), ("sigmoid", nn.Sigmoid())):
        net = nn.TwoLayerNet(784, 50, 10, weight_init_std=0.01, activation=activation, rng=0)
        net.loss(x, t).backward()
        print(
            f"hidden activation {name:>7}: max |dL/dW1| = {np.abs(net.W1.grad.data).max():.3g}, "
            f"max |dL/dW2| = {np.abs(net.W2.grad.data).max():.3g}"
        )
    print("  (step' = 0: no gradient reaches W1, so the first layer never learns)")


def derivatives(args):
    print("\n== 4.3.1 Numerical differentiation: rounding and the central difference")
    print(f"np.float32(1e-50) = {np.float32(1e-50)} (h too small vanishes; the book uses 1e-4)")

    def function_1(x):  # eq. 4.5: y = 0.01 x^2 + 0.1 x
        return 0.01 * x**2 + 0.1 * x

    for x in (5.0, 10.0):
        xt = mg.Tensor(np.array(x), requires_grad=True)
        (exact,) = mg.grad(function_1(xt), xt)
        print(
            f"df/dx at x = {x:g}: numerical {numerical_diff(function_1, x)!r}, "
            f"backprop {exact.item()!r}"
        )

    def tangent(x0):
        slope = numerical_diff(function_1, x0)
        return lambda x: slope * (x - x0) + function_1(x0)

    viz.plot_function(
        function_1,
        tangent(5.0),
        tangent(10.0),
        x=np.arange(0.0, 20.0, 0.1),
        labels=["0.01x² + 0.1x", "tangent at x = 5", "tangent at x = 10"],
        title="Numerical derivative as a tangent (Fig. 4-7)",
        path=plot_path(args, "ch4_tangent.png"),
        show=args.show,
    )

    print("\n== 4.3.3 Partial derivatives of f(x0, x1) = x0^2 + x1^2 (eq. 4.6) at (3, 4)")
    print(f"df/dx0 = {numerical_diff(lambda x0: x0 * x0 + 4.0**2, 3.0)!r}")
    print(f"df/dx1 = {numerical_diff(lambda x1: 3.0**2 + x1 * x1, 4.0)!r}")


def function_2(x):
    """f(x0, x1) = x0^2 + x1^2 on an array or tensor whose first axis is (x0, x1)."""
    return x[0] ** 2 + x[1] ** 2


def gradients(args):
    print("\n== 4.4 The gradient: numerically (book) and by backprop")
    for point in ([3.0, 4.0], [0.0, 2.0], [3.0, 0.0]):
        x = np.array(point)
        xt = mg.Tensor(x, requires_grad=True)
        (g,) = mg.grad(function_2(xt), xt)
        print(
            f"at {tuple(point)}: numerical {numerical_gradient(function_2, x)}, backprop {g.data}"
        )
    viz.plot_gradient_field(
        function_2,
        xlim=(-2, 2),
        ylim=(-2, 2),
        title="-grad f points to the minimum (Fig. 4-9)",
        path=plot_path(args, "ch4_gradient_field.png"),
        show=args.show,
    )

    print("\n== 4.4.1 Gradient descent from (-3, 4), 100 steps (eq. 4.7)")

    def book_gradient_descent(f, init_x, lr, step_num=100):
        x = np.array(init_x)
        for _ in range(step_num):
            x -= lr * numerical_gradient(f, x)
        return x

    for lr in (0.1, 10.0, 1e-10):
        numerical = book_gradient_descent(function_2, [-3.0, 4.0], lr)
        backprop = optim.gradient_descent(function_2, np.array([-3.0, 4.0]), lr=lr, step_num=100)
        print(f"lr = {lr:g}: numerical {numerical}, backprop {backprop}")
    print(
        "(lr = 10 diverges: each exact step multiplies x by 1 - 2 lr = -19, as backprop shows;\n"
        " the book's numerical gradient stops it near 1e13, where x + 1e-4 rounds to x and\n"
        " (f(x+h) - f(x-h)) / 2h becomes 0. lr = 1e-10 barely moves.)"
    )
    _, path = optim.gradient_descent(
        function_2, np.array([-3.0, 4.0]), lr=0.1, step_num=20, history=True
    )
    viz.plot_descent_path(
        function_2,
        path,
        xlim=(-3.5, 3.5),
        ylim=(-4.5, 4.5),
        title="Gradient descent, lr = 0.1, 20 steps (Fig. 4-10)",
        path=plot_path(args, "ch4_descent_path.png"),
        show=args.show,
    )


def saddle_and_plateau(args):
    """Section 4.4.1's warning: a saddle point can stop gradient descent, a plateau slow it."""
    print("\n== 4.4.1 A saddle point and a plateau: f(x0, x1) = tanh(x0)^2 + (x1^2 - 1)^2")
    print(
        "   minima at (0, 1) and (0, -1), f = 0; a saddle point at (0, 0), f = 1; flat for large |x0|"
    )

    def f(x):
        return F.tanh(x[0]) ** 2 + (x[1] ** 2 - 1) ** 2

    starts = {
        "(2, 0), on the ridge": [2.0, 0.0],
        "(2, 0.001), just off it": [2.0, 0.001],
        "(3.5, 0.5), on the plateau": [3.5, 0.5],
    }
    steps, lr = 200, 0.1
    paths = {}
    for label, start in starts.items():
        _, path = optim.gradient_descent(f, np.array(start), lr=lr, step_num=steps, history=True)
        values = [f(mg.Tensor(p)).item() for p in path]
        reached = next((i for i, v in enumerate(values) if v < 0.01), None)
        paths[label] = path
        print(
            f"from {label}: after {steps} steps at ({path[-1][0]:.4f}, {path[-1][1]:.4f}), "
            f"f = {values[-1]:.4f}; "
            + (f"f < 0.01 after {reached} steps" if reached is not None else "never f < 0.01")
        )
    print(
        "  (on the ridge the gradient never points off it: stuck at the saddle, where it is 0;\n"
        "   just off it, escaping takes dozens of steps; on the plateau tanh' is about 0.004:\n"
        "   200 steps move x0 by less than 0.2)"
    )
    import matplotlib.pyplot as plt

    g0, g1 = np.linspace(-1.0, 4.0, 300), np.linspace(-1.6, 1.6, 200)
    xx = np.stack(np.meshgrid(g0, g1))
    fig, ax = plt.subplots(figsize=(7, 4.5), layout="constrained")
    contours = ax.contour(g0, g1, np.asarray(f(xx)), levels=[0.05, 0.2, 0.5, 0.9, 1.1, 2, 4],
                          colors="#bbbbbb", linewidths=0.8)  # fmt: skip
    ax.clabel(contours, fontsize=7)
    for (label, path), colour in zip(paths.items(), ("#c44e52", "#4c72b0", "#55a868"), strict=True):
        ax.plot(path[:, 0], path[:, 1], ".-", ms=3, lw=1, color=colour, label=f"from {label}")
        ax.plot(*path[-1], "*", ms=12, color=colour)
    ax.plot(0, 0, "kx", ms=9, mew=2, label="saddle point (0, 0)")
    ax.set(xlabel="$x_0$", ylabel="$x_1$", title=f"Gradient descent, lr {lr}, {steps} steps "
           "(stars: where each ends)")  # fmt: skip
    ax.legend(loc="lower right", fontsize=8)
    save(fig, args, "ch4_saddle_plateau.png")

    print("\n== Gradient ascent, in one line: descend on -g to climb g")
    print("   g(x) = -(x0^2 + x1^2), largest at (0, 0):")

    def g(x):
        return -function_2(x)

    top = optim.gradient_descent(lambda x: -g(x), np.array([-3.0, 4.0]), lr=0.1, step_num=100)
    print(f"   optim.gradient_descent(lambda x: -g(x), [-3.0, 4.0], lr=0.1, step_num=100) -> {top}")


def simple_net():
    print("\n== 4.4.2 The gradient of a network: simpleNet with the weights the book printed")
    W = mg.Tensor(
        np.array([[0.47355232, 0.9977393, 0.84668094], [0.85557411, 0.03563661, 0.69422093]]),
        requires_grad=True,
    )
    x, t = np.array([0.6, 0.9]), np.array([0, 0, 1])

    def loss(W):
        # The book prints the loss and dW of softmax then cross-entropy without the
        # 1e-7 inside the log (with it they would differ in the 7th digit), i.e. this:
        return F.softmax_cross_entropy(x @ W, t)

    p = x @ W.data
    print(f"p = x W = {p}, argmax {np.argmax(p)}, loss {loss(W).item()!r}")
    loss(W).backward()
    # The book's `f = lambda w: net.loss(x, t)`: numerical_gradient moves W in place.
    print(f"dW numerical =\n{numerical_gradient(loss, W)}\ndW backprop =\n{W.grad.data}")


def numerical_vs_backprop(net, x, t, fast):
    """Section 4.5.1: the two-layer net's gradient both ways, on a few images, timed."""
    print("\n== 4.5.1 The two-layer net's gradient on 3 images: numerical vs backprop")
    params = dict(net.named_parameters())
    print("  parameters: " + ", ".join(f"{k} {p.shape}" for k, p in params.items()))
    checked = {k: p for k, p in params.items() if not (fast and k == "W1")}
    if fast:
        print(
            f"  (--fast: W1's {params['W1'].size:,} entries are left out of the numerical gradient)"
        )

    def backprop():
        net.zero_grad()
        net.loss(x, t).backward()

    def numerical():
        with mg.no_grad():  # the forward passes record no graph
            return {k: numerical_gradient(lambda _: net.loss(x, t), p) for k, p in checked.items()}

    start = time.perf_counter()
    numeric = numerical()
    numeric_time = time.perf_counter() - start
    backprop_time, _ = median_time(backprop, 5)
    n = sum(p.size for p in checked.values())
    print(
        f"  max |numerical - backprop| over {n:,} parameters: "
        f"{max(np.abs(numeric[k] - p.grad.data).max() for k, p in checked.items()):.2e}"
    )
    total = sum(p.size for p in params.values())
    # Each parameter costs the numerical gradient two forward passes, so scale its time to
    # all of them: backprop's time is for all of them too.
    ratio = numeric_time * total / n / backprop_time
    print(
        f"  time: numerical {numeric_time:.2f} s for {n:,} parameters (2 forward passes each); "
        f"backprop {backprop_time * 1e3:.2f} ms for all {total:,} (median of 5): "
        f"{ratio:,.0f}x faster" + ("" if n == total else f" (numerical scaled to {total:,})")
    )


def train(args, x_train, t_train, x_test, t_test):
    print("\n== 4.5.2-4.5.3 Mini-batch training (784-50-10, sigmoid, lr 0.1, batches of 100)")
    iters = 500 if args.fast else 10_000
    batch_size, lr = 100, 0.1
    net = nn.TwoLayerNet(784, 50, 10, weight_init_std=0.01, rng=0)
    optimizer = optim.SGD(net.parameters(), lr=lr)
    rng = np.random.default_rng(0)
    iter_per_epoch = max(len(x_train) // batch_size, 1)
    # A line every epoch, or every few epochs so a long run prints 10 to 20 lines.
    print_every = max(1, iters // iter_per_epoch // 10)
    history = {"epoch": [], "loss": [], "train acc": [], "test acc": []}
    start = time.perf_counter()
    for i in range(iters + 1):
        if i % iter_per_epoch == 0 or i == iters:  # accuracy at every epoch, and at the end
            history["epoch"].append(i / iter_per_epoch)
            history["train acc"].append(evaluate(net, x_train, t_train))
            history["test acc"].append(evaluate(net, x_test, t_test))
            if (i // iter_per_epoch) % print_every == 0 or i == iters:
                print(
                    f"iteration {i:>6,}  train acc, test acc | "
                    f"{history['train acc'][-1]:.4f}, {history['test acc'][-1]:.4f}"
                )
        if i == iters:
            break
        batch = rng.choice(len(x_train), batch_size)  # 1. a random mini-batch
        loss = net.loss(x_train[batch], t_train[batch])
        optimizer.zero_grad()
        loss.backward()  # 2. the gradient, by backprop
        optimizer.step()  # 3. W <- W - lr dL/dW, then 4. repeat
        history["loss"].append(loss.item())
    print(
        f"{iters:,} iterations in {time.perf_counter() - start:.1f} s; final test accuracy "
        f"{history['test acc'][-1]:.4f}"
    )
    print("\n== 4.2.3 A mini-batch's loss estimates the whole set's (the trained net)")
    with mg.no_grad():
        whole = net.loss(x_train, t_train).item()
        batches = [net.loss(x_train[b], t_train[b]).item()
                   for b in (rng.choice(len(x_train), batch_size) for _ in range(5))]  # fmt: skip
    print(f"loss on all {len(x_train):,} training images: {whole:.4f}")
    print(
        f"on 5 random batches of {batch_size}: {', '.join(f'{v:.4f}' for v in batches)}; "
        f"mean {np.mean(batches):.4f}, spread (std) {np.std(batches):.4f}"
    )
    viz.plot_history(
        history,
        title=f"Training the two-layer net on {len(x_train):,} MNIST images (Figs. 4-11, 4-12)",
        path=plot_path(args, "ch4_learning_curve.png"),
        show=args.show,
    )


def main():
    p = parser(__doc__)
    p.add_argument(
        "--fast", action="store_true", help="a quick run: 500 iterations, no W1 numerics"
    )
    p.add_argument("--full", action="store_true", help="train on the full MNIST (60,000 images)")
    p.add_argument(
        "--data-dir", type=Path, default=SHARED / "mnist", help="MNIST files, with --full"
    )
    args = parse(p)

    losses()
    if args.full:
        (x_train, t_train), (x_test, t_test) = load_full_mnist(args.data_dir)
    else:
        (x_train, t_train), (x_test, t_test) = data.load_mnist_subset()
    net = nn.TwoLayerNet(784, 50, 10, weight_init_std=0.01, rng=0)
    minibatch(x_train, t_train, net, np.random.default_rng(0))
    why_a_loss(x_train, t_train)
    derivatives(args)
    gradients(args)
    saddle_and_plateau(args)
    simple_net()
    numerical_vs_backprop(net, x_train[:3], t_train[:3], args.fast)
    train(args, x_train, t_train, x_test, t_test)


if __name__ == "__main__":
    main()
