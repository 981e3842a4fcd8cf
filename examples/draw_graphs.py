"""Make the README's pictures in docs/: graphs drawn from real code, and the book's plots.

    python examples/draw_graphs.py            # needs Graphviz's `dot` for the graph

docs/two_layer_net.svg   the book's two-layer net (784-50-10, sigmoid) on one
                         MNIST batch, coloured by gradient norm after backward
docs/activations.png     sigmoid, step and ReLU (chapter 3)
docs/gradient_field.png  -grad of x0^2 + x1^2 from backprop (figure 4-9)
docs/descent_path.png    gradient descent on the same function (figure 4-10)
docs/training_curves.png `minigrad train`'s default run (the two-layer net, 50
                         epochs on the embedded MNIST subset)
docs/predictions.png     test digits with the trained net's answers
docs/spiral.png          an MLP's decision regions on the spiral set

Everything is seeded, so a rerun gives the same pictures (a few seconds).
"""

from __future__ import annotations

import argparse
import os

import numpy as np

import minigrad.functional as F
from minigrad import data, nn, optim, viz
from minigrad.engine import Tensor, no_grad
from minigrad.train import DEFAULT_EPOCHS, DEFAULT_LR, fit

DOCS = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "docs")
_out_dir = DOCS  # set by --out


def out(name: str) -> str:
    path = os.path.normpath(os.path.join(_out_dir, name))
    print("writing", path)
    return path


def graph_of_two_layer_net(x: np.ndarray, t: np.ndarray) -> None:
    net = nn.TwoLayerNet(784, 50, 10, rng=0)
    loss = net.loss(Tensor(x[:100], name="x"), t[:100])
    graph = viz.trace(loss)  # holds the intermediates, so their gradients can be kept
    for tensor in graph.tensors:
        if not tensor.is_leaf:
            tensor.retain_grad()  # so intermediate tensors get a colour too
    loss.backward()
    viz.render(graph, path=out("two_layer_net.svg"), show_grad=True, modules=net)


def book_plots() -> None:
    viz.plot_function(
        F.sigmoid, F.step, F.relu, ylim=(-0.2, 1.6), title="activation functions",
        path=out("activations.png"),
    )  # fmt: skip

    def f(x: Tensor) -> Tensor:
        return x[0] ** 2 + x[1] ** 2

    viz.plot_gradient_field(
        f, title="$-\\nabla f$ for $f = x_0^2 + x_1^2$", path=out("gradient_field.png")
    )
    _, path = optim.gradient_descent(f, [-3.0, 4.0], lr=0.1, step_num=20, history=True)
    viz.plot_descent_path(f, path, title="gradient descent, lr 0.1", path=out("descent_path.png"))


def train_on_mnist(train: tuple, test: tuple) -> None:
    """The run `minigrad train` makes with no options, which the README describes."""
    (x_train, t_train), (x_test, t_test) = train, test
    net = nn.MLP([784, 50, 10], "sigmoid", "book", rng=0)
    loader = data.DataLoader(data.TensorDataset(x_train, t_train), 100, shuffle=True, generator=0)
    lr = DEFAULT_LR["sgd"]
    history = fit(
        net,
        optim.SGD(net.parameters(), lr=lr),
        loader,
        epochs=DEFAULT_EPOCHS,
        eval_sets={"train": train, "test": test},
        progress=False,
    )
    viz.plot_history(
        history,
        title=f"minigrad train: 784-50-10 sigmoid on 5,000 MNIST images, SGD lr {lr:g}, "
        f"batch 100, {DEFAULT_EPOCHS} epochs",
        path=out("training_curves.png"),
    )
    with no_grad():
        predictions = net(Tensor(x_test[:30])).data.argmax(axis=1)
    viz.show_images(
        x_test[:30], t_test[:30], predictions, title="test digits: label, or label -> wrong answer",
        path=out("predictions.png"),
    )  # fmt: skip


def train_on_spiral() -> None:
    x, t = data.spiral(seed=0)
    model = nn.MLP([2, 30, 30, 3], activation="relu", rng=0)
    optimizer = optim.Adam(model.parameters(), lr=0.01)
    for _ in range(1000):
        loss = F.softmax_cross_entropy(model(Tensor(x)), t)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    viz.plot_decision_boundary(
        model, x, t, title=f"MLP 2-30-30-3 on spiral data (loss {loss.item():.3f})",
        path=out("spiral.png"),
    )  # fmt: skip


def main() -> None:
    global _out_dir
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", default=DOCS, help="where to write the pictures (default: docs/)")
    _out_dir = parser.parse_args().out
    os.makedirs(_out_dir, exist_ok=True)
    train, test = data.load_mnist_subset()
    graph_of_two_layer_net(*train)
    book_plots()
    train_on_mnist(train, test)
    train_on_spiral()


if __name__ == "__main__":
    main()
