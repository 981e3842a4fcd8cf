"""Chapter 2: the perceptron, its logic gates, XOR's two layers, and the gates learned.

A perceptron outputs 1 when w1*x1 + w2*x2 > θ, else 0 (eq. 2.1), or, with the
bias b = -θ, when w1*x1 + w2*x2 + b > 0: the step of a linear function
(eq. 2.2). With the book's weights it is AND, NAND or OR; no single one is
XOR, which needs two layers (section 2.5). The perceptron and the XOR net are
drawn as computational graphs with minigrad.viz (with Graphviz's `dot`
installed; else their DOT source is written), the XOR one labelled with the
book's naming: two layers of weights, three layers of units. The last part
learns the same gates from their truth tables: a sigmoid unit (a perceptron
with a smooth step) for AND, NAND and OR, a two-layer net for XOR, trained
by gradient descent through minigrad's graph.

    python examples/ch2_perceptron.py [--out DIR] [--show]
"""

import shutil

import numpy as np
from _common import parse, parser, plot_path, save

import minigrad as mg
import minigrad.functional as F
from minigrad import data, nn, optim, viz

# The book's weights and biases (sections 2.3.2-2.3.3): w1, w2, b.
BOOK = {
    "AND": (0.5, 0.5, -0.7),
    "NAND": (-0.5, -0.5, 0.7),
    "OR": (0.5, 0.5, -0.2),
}


def and_threshold(x1, x2):
    """Section 2.3.1's AND: compare the weighted sum with a threshold θ (eq. 2.1)."""
    w1, w2, theta = 0.5, 0.5, 0.7
    tmp = x1 * w1 + x2 * w2
    return 0 if tmp <= theta else 1


def and_bias(x1, x2):
    """Section 2.3.3's AND: the same with the bias b = -θ (eq. 2.2)."""
    x, w, b = np.array([x1, x2]), np.array([0.5, 0.5]), -0.7
    return 0 if np.sum(w * x) + b <= 0 else 1


class Perceptron(nn.Module):
    """Perceptrons side by side as a module: y = step(x W + b), one column of W per unit."""

    def __init__(self, W, b):
        self.W = nn.Parameter(np.array(W, dtype=np.float64))  # parameters, so the graph records
        self.b = nn.Parameter(np.array(b, dtype=np.float64))

    def forward(self, x):
        return F.step(F.linear(x, self.W, self.b))


class XORNet(nn.Module):
    """Section 2.5.2's XOR as two layers of weights: (NAND, OR), then AND."""

    def __init__(self):
        columns = [BOOK["NAND"], BOOK["OR"]]
        self.layer1 = Perceptron([[c[0] for c in columns], [c[1] for c in columns]],
                                 [c[2] for c in columns])  # fmt: skip
        self.layer2 = Perceptron([[BOOK["AND"][0]], [BOOK["AND"][1]]], [BOOK["AND"][2]])

    def forward(self, x):
        s = self.layer1(x)
        s.name = "s: layer 1 (NAND, OR)"
        y = self.layer2(s)
        y.name = "y: layer 2 (AND)"
        return y


def draw_graph(args, name, y, model, label):
    """Render y's graph with minigrad.viz, titled `label`; DOT source if `dot` is missing."""
    dot = viz.to_dot(y, modules=model, show_data=True, rankdir="LR")
    dot.attr(label=label, labelloc="t", fontsize="12")
    if shutil.which("dot") is None:
        print("  (Graphviz's dot is not installed: writing the DOT source instead)")
        name = name.replace(".png", ".dot")
    viz.render(dot, path=plot_path(args, name))


def perceptron(w1, w2, b):
    """The gate y = step(x w + b) on a batch x of shape (N, 2) (eq. 2.2)."""
    return lambda x: F.step(F.linear(x, np.array([w1, w2]), b))


def xor(x):
    """Section 2.5.2: XOR = AND(NAND(x1, x2), OR(x1, x2)), a two-layer perceptron."""
    s = np.stack([perceptron(*BOOK["NAND"])(x), perceptron(*BOOK["OR"])(x)], axis=1)
    return perceptron(*BOOK["AND"])(s)


def draw(ax, name, predict):
    """The region where predict(x) > 0.5 shaded, its boundary, and the four inputs."""
    x, t = data.gate(name)
    g = np.linspace(-0.5, 1.5, 201)
    grid = np.stack(np.meshgrid(g, g), axis=-1).reshape(-1, 2)
    y = np.asarray(predict(grid)).reshape(len(g), len(g))
    ax.contourf(g, g, y, levels=[0.5, np.inf], colors=["#c7dcef"])
    ax.contour(g, g, y, levels=[0.5], colors="#4c72b0")
    # The book's markers: circles for output 0, triangles for output 1.
    ax.scatter(*x[t == 0].T, marker="o", s=90, facecolors="white", edgecolors="k", label="0")
    ax.scatter(*x[t == 1].T, marker="^", s=90, color="#c44e52", label="1")
    ax.set(xlabel="$x_1$", ylabel="$x_2$", title=name, aspect="equal")
    ax.set(xlim=(-0.5, 1.5), ylim=(-0.5, 1.5))


def learn(model, name, steps, lr):
    """Gradient descent on the sigmoid cross-entropy of the gate's truth table."""
    x, t = data.gate(name)
    opt = optim.SGD(model.parameters(), lr=lr)
    for _ in range(steps):
        loss = F.sigmoid_cross_entropy(model(x).reshape(-1), t)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return loss.item()


def main():
    args = parse(parser(__doc__))
    import matplotlib.pyplot as plt

    print("== 2.3.2 Weights and bias: AND at x = (0, 1), by hand")
    x, w, b = np.array([0, 1]), np.array([0.5, 0.5]), -0.7
    print(f"w * x = {w * x}, np.sum(w * x) = {np.sum(w * x)}")
    print(f"np.sum(w * x) + b = {float(np.sum(w * x) + b)!r} (about -0.2: below 0, so 0)")

    print("\n== 2.3.1 / 2.3.3 AND with a threshold θ = 0.7, and with a bias b = -θ = -0.7")
    print("x1 x2 | θ form: x1 w1 + x2 w2 > θ | bias form: x1 w1 + x2 w2 + b > 0")
    for x1, x2 in ((0, 0), (1, 0), (0, 1), (1, 1)):
        print(f" {x1}  {x2} | {and_threshold(x1, x2):>25} | {and_bias(x1, x2):>34}")
        assert and_threshold(x1, x2) == and_bias(x1, x2)

    print("\n== 2.3 / 2.5 The perceptron and the XOR net as computational graphs")
    x = mg.Tensor(data.gate("AND")[0], name="x: inputs (x1, x2)")
    gate_and = Perceptron([[BOOK["AND"][0]], [BOOK["AND"][1]]], [BOOK["AND"][2]])
    y = gate_and(x)
    y.name = "y: AND"
    draw_graph(args, "ch2_perceptron_graph.png", y, gate_and,
               "A perceptron: y = step(x W + b), here AND on its four inputs")  # fmt: skip
    x = mg.Tensor(data.gate("XOR")[0], name="x: layer 0 (inputs)")
    xor_net = XORNet()
    y = xor_net(x)
    print(f"the XOR net's graph: outputs {np.asarray(y).ravel().astype(int)} on 00, 10, 01, 11")
    draw_graph(
        args, "ch2_xor_graph.png", y, xor_net,
        "XOR = AND(NAND, OR). The book calls it a 2-layer perceptron: it counts the layers\n"
        "of weights (layer1, layer2). Counting the layers of units (x, s, y: layers 0, 1, 2)\n"
        "some call it a 3-layer perceptron. Same network, two names.",
    )  # fmt: skip
    print(
        "naming: 2 layers of weights (layer1.W, layer2.W) between 3 layers of units "
        "(x, s, y): the book's '2-layer perceptron', which some call 3-layer"
    )

    print("\n== 2.3 / 2.5 Truth tables with the book's weights (Tables 2-2 to 2-5)")
    x, _ = data.gate("AND")  # the four inputs 00, 10, 01, 11
    gates = {name: perceptron(*wb) for name, wb in BOOK.items()} | {"XOR": xor}
    print("x1 x2 | " + " ".join(f"{name:>4}" for name in gates))
    columns = [np.asarray(gate(x), dtype=int) for gate in gates.values()]
    for i, (x1, x2) in enumerate(x.astype(int)):
        print(f" {x1}  {x2} | " + " ".join(f"{col[i]:>4}" for col in columns))
    for name, gate in gates.items():
        assert np.array_equal(gate(x), data.gate(name)[1]), name

    print("\n== 2.4 XOR is out of reach of one perceptron")
    # Eq. 2.2 with outputs 0, 1, 1, 0 needs b <= 0, w1 + b > 0, w2 + b > 0, w1 + w2 + b <= 0;
    # the middle two add up to w1 + w2 + b > -b >= 0, against the last. A search agrees:
    grid = np.linspace(-1, 1, 41)
    w1, w2, b = (a.reshape(-1, 1) for a in np.meshgrid(grid, grid, grid))
    outputs = (w1 * x[:, 0] + w2 * x[:, 1] + b > 0).astype(np.float32)  # (41**3, 4)
    correct = (outputs == data.gate("XOR")[1]).sum(axis=1)
    print(
        f"of {len(correct):,} weight settings on a grid over [-1, 1]^3, the best gets "
        f"{correct.max()} of 4 XOR outputs right"
    )

    fig, axes = plt.subplots(1, 4, figsize=(14, 3.8), layout="constrained")
    for ax, (name, gate) in zip(axes, gates.items(), strict=True):
        draw(ax, name, gate)
    axes[-1].set_title("XOR = AND(NAND, OR): two lines")
    axes[0].legend(title="output", loc="upper left", fontsize=8)
    fig.suptitle(
        "The book's perceptrons: the shaded side of each line outputs 1 (Figs. 2-6 to 2-8)"
    )
    save(fig, args, "ch2_gates_book.png")

    print("\n== Learning the gates by gradient descent (a sigmoid unit: a smooth perceptron)")
    models = {}
    for name in ("AND", "NAND", "OR", "XOR"):
        models[name] = nn.Linear(2, 1, rng=0)
        loss = learn(models[name], name, steps=1000, lr=2.0)
        W, b = models[name].W.data.ravel(), models[name].b.data[0]
        x, t = data.gate(name)
        y = np.asarray(F.sigmoid(models[name](x))).ravel()
        print(
            f"{name:>4}: w = ({W[0]:6.2f}, {W[1]:6.2f}), b = {b:6.2f}, loss {loss:.4f}, "
            f"outputs {np.round(y, 2)} -> {(y > 0.5).astype(int)}, target {t.astype(int)}"
        )
    print("      (XOR: one unit can only settle near 0.5 and miss at least one row)")

    print(
        "\n== XOR learned by a two-layer net: 2 sigmoid units, then 1 (the shape of NAND/OR, then AND)"
    )
    models["XOR"] = nn.MLP([2, 2, 1], activation="sigmoid", rng=0)
    loss = learn(models["XOR"], "XOR", steps=2000, lr=2.0)
    x, t = data.gate("XOR")
    y = np.asarray(F.sigmoid(models["XOR"](x))).ravel()
    print(
        f" XOR: loss {loss:.4f}, outputs {np.round(y, 3)} -> {(y > 0.5).astype(int)}, "
        f"target {t.astype(int)}"
    )

    fig, axes = plt.subplots(1, 4, figsize=(14, 3.8), layout="constrained")
    for ax, (name, model) in zip(axes, models.items(), strict=True):
        draw(ax, name, lambda x, model=model: F.sigmoid(model(x)))
    axes[-1].set_title("XOR (two-layer net)")
    fig.suptitle("Learned by gradient descent: the line (curve) where the output is 0.5")
    save(fig, args, "ch2_gates_learned.png")


if __name__ == "__main__":
    main()
