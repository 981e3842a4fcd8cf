"""Chapter 7: convolution, pooling, im2col, and the book's SimpleConvNet.

Section 7.2's convolution of a 4x4 input with a 3x3 filter (with bias and
padding, Figs. 7-7 to 7-10), the same kind of filter run over an MNIST digit
(drawn), im2col's shapes for section 7.4.3's cases, pooling (Fig. 7-14),
the book's trained chapter-7 weights evaluated on the MNIST test set
(0.9600, from ../shared/datasets or --weights; skipped without them), and a
SimpleConvNet trained here, with its 30 first-layer filters drawn before and
after training (Fig. 7-24).

    python examples/ch7_convolution.py [--fast | --full] [--out DIR] [--show] [--weights NPZ] [--data-dir DIR]

The training takes 5 epochs of the embedded 5,000-image subset by default
(about 25 s), 60 steps with --fast, and the book's run with --full: 20
epochs of the 60,000 training images with Adam (lr 0.001), about half an
hour on one core, reaching 0.989 (examples/README.md).
"""

import time
import zipfile
from pathlib import Path

import numpy as np
from _common import SHARED, load_full_mnist, parse, parser, save

import minigrad.functional as F
from minigrad import data, nn, optim, train


def filter_grid(fig, row, rows, filters, title):
    """One row of a figure: each filter (C = 1) as a small grey image, as in Fig. 7-24."""
    for i, w in enumerate(filters):
        ax = fig.add_subplot(rows, len(filters), row * len(filters) + i + 1)
        ax.imshow(w[0], cmap="gray_r", interpolation="nearest")
        ax.axis("off")
        if i == 0:
            ax.set_title(title, loc="left", fontsize=9)


def convolution_by_hand(args):
    print("== 7.2 Convolution: a 4x4 input and a 3x3 filter (Figs. 7-7 to 7-10)")
    x = np.array([[1, 2, 3, 0], [0, 1, 2, 3], [3, 0, 1, 2], [2, 3, 0, 1]], float)[None, None]
    w = np.array([[2, 0, 1], [0, 1, 2], [1, 0, 2]], float)[None, None]
    print(f"conv(x, W) =\n{F.conv2d(x, w)[0, 0]}")
    print(f"conv(x, W) + 3 =\n{F.conv2d(x, w, np.array([3.0]))[0, 0]}")
    print(f"conv(x, W, pad=1), shape {F.conv2d(x, w, pad=1).shape}:\n{F.conv2d(x, w, pad=1)[0, 0]}")
    print(f"conv(7x7 input, 3x3 filter, stride=2) shape: {F.conv2d(np.ones((1, 1, 7, 7)), w, stride=2).shape}")  # fmt: skip

    import matplotlib.pyplot as plt

    (_, _), (images, labels) = data.load_mnist_subset(flatten=False)
    digit = images[:1]
    edges = {  # a vertical and a horizontal edge detector (Sobel)
        "vertical edges": np.array([[1, 0, -1], [2, 0, -2], [1, 0, -1]], np.float32),
        "horizontal edges": np.array([[1, 2, 1], [0, 0, 0], [-1, -2, -1]], np.float32),
    }
    fig, axes = plt.subplots(1, 3, figsize=(8, 3))
    axes[0].imshow(digit[0, 0], cmap="gray_r")
    axes[0].set_title(f"an MNIST {labels[0]}, 28x28")
    for ax, (name, kernel) in zip(axes[1:], edges.items(), strict=True):
        out = F.conv2d(digit, kernel[None, None], pad=1)
        ax.imshow(out[0, 0], cmap="RdBu_r", vmin=-3, vmax=3)
        ax.set_title(f"{name}, {out.shape[2]}x{out.shape[3]}")
    for ax in axes:
        ax.axis("off")
    save(fig, args, "ch7_filter.png")


def im2col_and_pooling():
    print("\n== 7.4.3 im2col: every window of the input as one row")
    rng = np.random.default_rng(0)
    for shape in ((1, 3, 7, 7), (10, 3, 7, 7)):
        col = F.im2col(rng.random(shape), kernel_size=5, stride=1, pad=0)
        print(f"im2col(x of shape {shape}, 5x5 kernel).shape = {col.shape}")
    print("\n== 7.3 Pooling: 2x2 max pooling, stride 2 (Fig. 7-14)")
    x = np.array([[1, 2, 1, 0], [0, 1, 2, 3], [3, 0, 1, 2], [2, 4, 0, 1]], float)[None, None]
    print(f"max_pool2d(x, 2) =\n{F.max_pool2d(x, 2)[0, 0]}")
    print(f"avg_pool2d(x, 2) =\n{F.avg_pool2d(x, 2)[0, 0]}")


def test_images(args):
    """The MNIST test images as (N, 1, 28, 28), or the embedded 1,000 (having said so)."""
    try:
        _, (x, t) = data.load_mnist(data_dir=args.data_dir, flatten=False, download=False)
    except FileNotFoundError:
        _, (x, t) = data.load_mnist_subset(flatten=False)
        print(
            f"MNIST files not found in {args.data_dir}: using the {len(x):,} embedded test images"
        )
    return x, t


def book_weights(args):
    print("\n== 7.5 The book's trained SimpleConvNet (params.pkl, as simple_convnet.npz)")
    if not args.weights.is_file() or not zipfile.is_zipfile(args.weights):
        print(
            f"skipped: the book's chapter-7 weights are not at {args.weights} as an .npz\n"
            "  (they come with the book's code; pass --weights simple_convnet.npz)"
        )
        return None
    try:
        model = nn.SimpleConvNet.from_book_params(args.weights)
    except ValueError as e:
        print(f"skipped: {args.weights}: {e}")
        return None
    x, t = test_images(args)
    start = time.perf_counter()
    accuracy = train.evaluate(model, x, t, batch_size=500)
    print(
        f"test accuracy on {len(x):,} images, float64 as the book: {accuracy:.4f} "
        f"({time.perf_counter() - start:.1f} s)"
    )
    return model


def training(args):
    print("\n== 7.5-7.6 Training a SimpleConvNet (Adam, lr 0.001, batch 100, 0.01 * randn)")
    if args.full:
        (x, t), (x_test, t_test) = load_full_mnist(args.data_dir)
        x, x_test = x.reshape(-1, 1, 28, 28), x_test.reshape(-1, 1, 28, 28)
        epochs, iters, what = 20, None, "the full MNIST, 20 epochs (the book's run)"
    else:
        (x, t), (x_test, t_test) = data.load_mnist_subset(flatten=False)
        epochs, iters = 5, (60 if args.fast else None)
        what = "the embedded subset, " + ("60 steps" if args.fast else "5 epochs")
    model = nn.SimpleConvNet(rng=0)
    before = model.layers[0].W.data.copy()
    loader = data.DataLoader(data.TensorDataset(x, t), 100, shuffle=True, generator=0)
    start = time.perf_counter()
    history = train.fit(
        model, optim.Adam(model.parameters(), lr=0.001), loader, epochs, iters=iters,
        eval_sets={"test": (x_test, t_test)}, progress=False,
    )  # fmt: skip
    print(
        f"trained on {what}: final test accuracy {history['test_acc'][-1]:.4f} "
        f"({time.perf_counter() - start:.0f} s)"
    )
    return before, model.layers[0].W.data


def main():
    p = parser(__doc__)
    length = p.add_mutually_exclusive_group()
    length.add_argument("--fast", action="store_true", help="train 60 steps only (the tests)")
    length.add_argument("--full", action="store_true", help="the book's 20 epochs on full MNIST")
    p.add_argument(
        "--weights",
        type=Path,
        default=SHARED / "book-sample-weights" / "simple_convnet.npz",
        help="the book's chapter-7 weights as .npz (default: ../shared/datasets/...)",
    )
    p.add_argument(
        "--data-dir",
        type=Path,
        default=SHARED / "mnist",
        help="directory with the MNIST IDX files (default: ../shared/datasets/mnist)",
    )
    args = parse(p)

    convolution_by_hand(args)
    im2col_and_pooling()
    book = book_weights(args)
    before, after = training(args)

    import matplotlib.pyplot as plt

    rows = [(before, "before training (0.01 * randn)"), (after, "after training here")]
    if book is not None:
        rows.append((book.layers[0].W.data, "the book's trained weights"))
    fig = plt.figure(figsize=(12, 1.0 * len(rows)))
    for row, (filters, title) in enumerate(rows):
        filter_grid(fig, row, len(rows), filters, title)
    save(fig, args, "ch7_filters.png")


if __name__ == "__main__":
    main()
