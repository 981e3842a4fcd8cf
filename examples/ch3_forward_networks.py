"""Chapter 3: activation functions, the forward pass, softmax, and MNIST inference.

Sections 3.2-3.5 run on the book's small examples: the matrix-product rules
(order matters, shapes must line up, and the error when they do not), the
three-layer network, drawn as a graph with its shapes, and its output through
the identity function (regression) beside softmax (classification). Section
3.6 prints the shapes of a batch of 100 images through the network (100x784
in, 100x10 out), then classifies the
10,000 MNIST test images with the book's pre-trained weights (accuracy
0.9352), one image at a time and in batches of 100, and measures how much
faster batches are. The weights and the full test set are read from
../shared/datasets beside the project (or --weights / --data-dir); without
the weights that part is skipped, and without the MNIST files it uses the
1,000 test images embedded in minigrad.

    python examples/ch3_forward_networks.py [--out DIR] [--show] [--weights NPZ] [--data-dir DIR]
"""

import shutil
import zipfile
from pathlib import Path

import numpy as np
from _common import SHARED, median_time, parse, parser, plot_path

import minigrad as mg
import minigrad.functional as F
from minigrad import data, viz


def three_layer_network(x, network):
    """Section 3.4.3's forward pass: two sigmoid layers, then the identity (eqs. 3.8-3.9)."""
    z1 = F.sigmoid(F.linear(x, network["W1"], network["b1"]))
    z2 = F.sigmoid(F.linear(z1, network["W2"], network["b2"]))
    return F.linear(z2, network["W3"], network["b3"])


BOOK_SHAPES = {
    "W1": (784, 50), "b1": (50,), "W2": (50, 100), "b2": (100,), "W3": (100, 10), "b3": (10,),
}  # fmt: skip
BOOK_KEYS = tuple(BOOK_SHAPES)

# The book's code ships the weights as a pickle; minigrad loads no pickle (unpickling a file
# can run any code in it), so the reader converts a copy they trust, once, knowingly.
CONVERT = f"""\
  The book's code ships them as a pickle, sample_weight.pkl, which minigrad does not
  unpickle: unpickling can run any code the file holds. Convert a copy you trust, once:

      import pickle, numpy as np
      with open("sample_weight.pkl", "rb") as f:
          params = pickle.load(f)  # runs the file's code: only for a file you trust
      np.savez("sample_weight.npz", **{{k: params[k] for k in {BOOK_KEYS}}})

  The .npz must hold {", ".join(f"{k} {s}" for k, s in BOOK_SHAPES.items())}
  (float32 in the book's file). Then pass --weights sample_weight.npz."""


def read_weights(path):
    """The book's sample weights, W1 (784, 50), W2 (50, 100), W3 (100, 10) and biases, or None
    (having said why) if the file is not such an .npz."""
    if not zipfile.is_zipfile(path):  # np.load would call any other bytes "pickled data"
        print(
            f"skipped: {path} is not an .npz (zip) archive of the book's sample weights\n{CONVERT}"
        )
        return None
    with np.load(path, allow_pickle=False) as npz:
        missing = [k for k in BOOK_KEYS if k not in npz.files]
        if missing:
            print(
                f"skipped: {path} holds {', '.join(npz.files)}, not the book's sample weights "
                f"(missing {', '.join(missing)}; a model saved by minigrad train has other names)"
            )
            return None
        wrong = [f"{k} {npz[k].shape}" for k, s in BOOK_SHAPES.items() if npz[k].shape != s]
        if wrong:
            print(
                f"skipped: {path} has {', '.join(wrong)}; the book's sample weights are "
                + ", ".join(f"{k} {s}" for k, s in BOOK_SHAPES.items())
            )
            return None
        return {k: mg.Tensor(npz[k]) for k in BOOK_KEYS}


def draw_network(args, network):
    """Section 3.4's network as a computational graph, each tensor with its shape."""
    # Parameters that require grad, so that the ops are recorded into a graph to draw.
    p = {k: mg.Tensor(v, requires_grad=True, name=k) for k, v in network.items()}
    z = mg.Tensor(np.array([1.0, 0.5]), name="X")
    for i in (1, 2, 3):  # the book's names: A1 = X W1 + B1, Z1 = sigmoid(A1), ...
        a = F.linear(z, p[f"W{i}"], p[f"b{i}"])
        a.name = f"A{i}"
        if i < 3:
            z = F.sigmoid(a)
            z.name = f"Z{i}"
    y = a  # the identity output function: Y = A3
    y.name = "Y = A3 (identity)"
    dot = viz.to_dot(y, rankdir="LR")
    dot.attr(label="The three-layer network of section 3.4, with its shapes", labelloc="t")
    name = "ch3_network_graph.png"
    if shutil.which("dot") is None:
        print("  (Graphviz's dot is not installed: writing the DOT source instead)")
        name = "ch3_network_graph.dot"
    viz.render(dot, path=plot_path(args, name))


def batch_shapes():
    """Section 3.6.3: 100 images at once through weights of the book's shapes (784-50-100-10).

    The shapes are those of the sample weights; the values here are random, since only
    the shapes matter and the weights may be absent.
    """
    (_, _), (x_test, _) = data.load_mnist_subset()
    rng = np.random.default_rng(0)
    weights = {k: 0.01 * rng.standard_normal(s).astype(np.float32) for k, s in BOOK_SHAPES.items()}
    x = x_test[:100]
    a1 = F.linear(x, weights["W1"], weights["b1"])
    a2 = F.linear(F.sigmoid(a1), weights["W2"], weights["b2"])
    y = F.softmax(F.linear(F.sigmoid(a2), weights["W3"], weights["b3"]))
    print(
        f"x {x.shape} @ W1 {weights['W1'].shape} -> {a1.shape} @ W2 {weights['W2'].shape} -> "
        f"{a2.shape} @ W3 {weights['W3'].shape} -> y {y.shape}"
    )
    print(f"one image: x[0] {x[0].shape} -> y[0] {y[0].shape}; a batch of 100: y {y.shape}")


def mnist_inference(args):
    """Section 3.6.2-3.6.3: the book's sample weights on the MNIST test set."""
    if not args.weights.is_file():
        print(f"skipped: the book's sample weights are not at {args.weights}\n{CONVERT}")
        return
    network = read_weights(args.weights)
    if network is None:
        return
    try:
        (x_train, t_train), (x_test, t_test) = data.load_mnist(
            normalize=True, flatten=True, data_dir=args.data_dir, download=False
        )
        print(
            f"x_train {x_train.shape}, t_train {t_train.shape}, "
            f"x_test {x_test.shape}, t_test {t_test.shape}"
        )
    except data.CorruptFileError as e:  # files that are there but wrong: say so, use no others
        print(f"skipped: {e}")
        return
    except FileNotFoundError:
        (_, _), (x_test, t_test) = data.load_mnist_subset()
        print(
            f"MNIST files not found (looked in {args.data_dir}, $MINIGRAD_DATA_DIR and the "
            f"cache): using the {len(x_test):,} test images embedded in minigrad; the book's "
            "0.9352 needs all 10,000"
        )

    def predict(x):  # a1 = x W1 + b1 ... y = softmax(a3), as in section 3.6.2
        with mg.no_grad():
            return F.softmax(three_layer_network(mg.Tensor(x), network))

    def one_at_a_time():
        return sum(int(np.argmax(predict(x)) == t) for x, t in zip(x_test, t_test, strict=True))

    def in_batches(batch_size=100):  # section 3.6.3
        correct = 0
        for i in range(0, len(x_test), batch_size):
            y = predict(x_test[i : i + batch_size])  # a (100, 784) input, a (100, 10) output
            correct += int(np.sum(y.data.argmax(axis=1) == t_test[i : i + batch_size]))
        return correct

    n = len(x_test)
    single, correct = median_time(one_at_a_time, 3)
    print(f"Accuracy, one image at a time:  {correct / n}")
    batched, correct = median_time(in_batches, 3)
    print(f"Accuracy, in batches of 100:    {correct / n}")
    print(
        f"time for {n:,} images (median of 3): one at a time {single * 1e3:.0f} ms, "
        f"batches of 100 {batched * 1e3:.1f} ms: batched is {single / batched:.0f}x faster"
    )

    predicted = predict(x_test[:20]).data.argmax(axis=1)
    viz.show_images(
        x_test[:20],
        t_test[:20],
        predicted,
        title="First MNIST test images: label (-> prediction)",
        path=plot_path(args, "ch3_mnist_predictions.png"),
        show=args.show,
    )


def main():
    p = parser(__doc__)
    p.add_argument(
        "--weights",
        type=Path,
        default=SHARED / "book-sample-weights" / "sample_weight.npz",
        help="the book's sample weights as .npz (default: ../shared/datasets/...)",
    )
    p.add_argument(
        "--data-dir",
        type=Path,
        default=SHARED / "mnist",
        help="directory with the MNIST IDX files (default: ../shared/datasets/mnist)",
    )
    args = parse(p)

    print("== 3.2 Activation functions on x = [-1.0, 1.0, 2.0]")
    x = np.array([-1.0, 1.0, 2.0])
    print(f"step(x)    = {F.step(x).astype(int)}")
    print(f"sigmoid(x) = {F.sigmoid(x)}")
    print(f"relu(x)    = {F.relu(x)}")
    x = np.arange(-5.0, 5.0, 0.1)
    viz.plot_function(
        F.step,
        F.sigmoid,
        x=x,
        labels=["step", "sigmoid"],
        ylim=(-0.1, 1.1),
        title="Step and sigmoid (Fig. 3-8)",
        path=plot_path(args, "ch3_step_sigmoid.png"),
        show=args.show,
    )
    viz.plot_function(
        F.relu,
        x=x,
        labels=["ReLU"],
        ylim=(-1.0, 5.5),
        title="ReLU (Fig. 3-9)",
        path=plot_path(args, "ch3_relu.png"),
        show=args.show,
    )

    print("\n== 3.3 Matrix products (np.dot and minigrad's @ give the same)")
    A, B = mg.tensor([[1, 2], [3, 4]]), mg.tensor([[5, 6], [7, 8]])
    print(f"A @ B =\n{(A @ B).data}")
    print(f"B @ A =\n{(B @ A).data}\n(the order matters: A @ B != B @ A)")
    A = mg.tensor([[1, 2, 3], [4, 5, 6]])
    B = mg.tensor([[1, 2], [3, 4], [5, 6]])
    print(f"a (2, 3) by a (3, 2): A @ B =\n{(A @ B).data}, shape {(A @ B).shape}")
    C = np.array([[1, 2], [3, 4]])
    print("a (2, 3) by a (2, 2): A's columns (3) must match C's rows (2), so it is an error:")
    try:
        np.dot(A.data, C)
    except ValueError as e:
        print(f"  numpy:    ValueError: {e}")
    try:
        A @ mg.tensor(C)
    except ValueError as e:
        print(f"  minigrad: ValueError: {e}")
    A, B = mg.tensor([[1, 2], [3, 4], [5, 6]]), mg.tensor([7, 8])
    print(f"a (3, 2) by a (2,): A @ B = {(A @ B).data}, shape {(A @ B).shape}")
    X, W = mg.tensor([1, 2]), mg.tensor([[1, 3, 5], [2, 4, 6]])
    print(f"a neuron layer, X @ W = {(X @ W).data}")

    print("\n== 3.4 A three-layer network with the book's weights")
    network = {
        "W1": np.array([[0.1, 0.3, 0.5], [0.2, 0.4, 0.6]]),
        "b1": np.array([0.1, 0.2, 0.3]),
        "W2": np.array([[0.1, 0.4], [0.2, 0.5], [0.3, 0.6]]),
        "b2": np.array([0.1, 0.2]),
        "W3": np.array([[0.1, 0.3], [0.2, 0.4]]),
        "b3": np.array([0.1, 0.2]),
    }
    x = mg.Tensor(np.array([1.0, 0.5]))
    a1 = F.linear(x, network["W1"], network["b1"])
    print(f"A1 = {a1.data}, Z1 = sigmoid(A1) = {F.sigmoid(a1).data}")
    y = three_layer_network(x, network)
    print(f"y = {y.data}")
    draw_network(args, network)

    print("\n== 3.5 The output layer: identity for regression, softmax for classification")
    print(f"on the network's last sums a3 = {y.data}:")
    print(f"  identity_function(a3) = {y.data} (regression: the values as they are)")
    print(f"  softmax(a3)           = {F.softmax(y).data} (classification: probabilities)")

    print("\n== 3.5.1 Softmax (eq. 3.10)")
    a = np.array([0.3, 2.9, 4.0])
    print(f"exp(a) = {np.exp(a)}, sum = {np.sum(np.exp(a)):.10f}")
    y = F.softmax(mg.Tensor(a))
    print(f"softmax([0.3, 2.9, 4.0]) = {y.data}, sum = {y.data.sum()}")
    a = np.array([1010.0, 1000.0, 990.0])
    with np.errstate(over="ignore", invalid="ignore"):  # the book shows the RuntimeWarning
        naive = np.exp(a) / np.sum(np.exp(a))
    print(f"naive exp(a) / sum(exp(a)) for a = [1010, 1000, 990]: {naive} (exp(1010) overflows)")
    print(f"minigrad (exp(a - max(a)), eq. 3.11):                 {F.softmax(mg.Tensor(a)).data}")

    print("\n== 3.6.3 A batch through the network: the shapes")
    batch_shapes()

    print("\n== 3.6 MNIST inference with the book's sample weights")
    mnist_inference(args)


if __name__ == "__main__":
    main()
