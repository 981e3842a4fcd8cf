"""Chapter 8: the book's deeper convolutional network, and the digits it gets wrong.

DeepConvNet: six 3x3 convolutions (16, 16, 32, 32, 64, 64 filters) with ReLU,
a 2x2 max pool after every second one, affine 50, ReLU, dropout 0.5, affine
10, dropout 0.5; He initialization, Adam (lr 0.001), batch 100. The script
prints the layers and trains the net, then draws misclassified test digits
(Fig. 8-3: "label -> prediction").

    python examples/ch8_deep_network.py [--fast | --full [--epochs N]] [--load MODEL.npz] [--out DIR] [--show] [--data-dir DIR]

By default it trains 2 epochs of the embedded 5,000-image subset (about a
minute); --fast trains 20 steps (the tests). Only --full trains on the 60,000
MNIST training images: the book's 20 epochs take over an hour on one core,
and --epochs sets fewer (0.992 was passed at epoch 7; see examples/README.md).
--save keeps the trained model, and --load evaluates a saved one instead of
training.
"""

import time
from pathlib import Path

import numpy as np
from _common import SHARED, load_full_mnist, parse, parser, plot_path

from minigrad import data, nn, optim, train, viz
from minigrad.engine import Tensor, no_grad


def main():
    p = parser(__doc__)
    length = p.add_mutually_exclusive_group()
    length.add_argument("--fast", action="store_true", help="train 20 steps only (the tests)")
    length.add_argument("--full", action="store_true", help="train on the full MNIST")
    length.add_argument("--load", type=Path, metavar="MODEL.npz", help="evaluate a saved model")
    p.add_argument("--epochs", type=int, default=20, help="epochs with --full (default 20)")
    p.add_argument("--save", type=Path, metavar="MODEL.npz", help="save the trained model there")
    p.add_argument(
        "--data-dir",
        type=Path,
        default=SHARED / "mnist",
        help="directory with the MNIST IDX files (default: ../shared/datasets/mnist)",
    )
    args = parse(p)
    if args.epochs < 1:
        p.error(f"--epochs must be at least 1, got {args.epochs}")

    model = nn.DeepConvNet(rng=0)
    print("== 8.1 DeepConvNet")
    x = Tensor(np.zeros((1, 1, 28, 28), np.float32))
    with no_grad():
        for layer in model:
            x = layer(x)
            print(f"  {type(layer).__name__:10} -> {x.shape[1:]}")
    print(f"  {sum(p.size for p in model.parameters()):,} parameters")

    if args.full or args.load:
        (x_train, t_train), (x_test, t_test) = load_full_mnist(args.data_dir)
        x_train, x_test = x_train.reshape(-1, 1, 28, 28), x_test.reshape(-1, 1, 28, 28)
    else:
        (x_train, t_train), (x_test, t_test) = data.load_mnist_subset(flatten=False)

    if args.load:
        model.load(args.load)
        print(f"\nloaded {args.load}")
    else:
        epochs, iters = (args.epochs, None) if args.full else ((1, 20) if args.fast else (2, None))
        what = f"{len(x_train):,} images, " + (f"{iters} steps" if iters else f"{epochs} epochs")
        print(f"\n== 8.1.1 Training on {what} (He init, Adam lr 0.001, batch 100)")
        loader = data.DataLoader(data.TensorDataset(x_train, t_train), 100, shuffle=True, generator=0)  # fmt: skip
        opt = optim.Adam(model.parameters(), lr=0.001)
        start = time.perf_counter()
        for epoch in range(1, epochs + 1):
            history = train.fit(
                model, opt, loader, 1, iters=iters, eval_sets={"test": (x_test, t_test)},
                progress=False,
            )  # fmt: skip
            print(
                f"  epoch {epoch}: loss {history['loss'][-1]:.4f}, test accuracy "
                f"{history['test_acc'][-1]:.4f} ({time.perf_counter() - start:.0f} s)"
            )
        if args.save:
            model.save(args.save)
            print(f"saved to {args.save}")

    model.eval()
    with no_grad():
        predicted = np.concatenate(
            [model(x_test[i : i + 500]).data.argmax(axis=1) for i in range(0, len(x_test), 500)]
        )
    wrong = np.flatnonzero(predicted != t_test)
    print(
        f"\ntest accuracy {1 - len(wrong) / len(t_test):.4f}: {len(wrong)} of {len(t_test):,} wrong"
    )
    if len(wrong):
        shown = wrong[:20]
        viz.show_images(
            x_test[shown], t_test[shown], predicted[shown],
            title="Misclassified test digits: label -> prediction (Fig. 8-3)",
            path=plot_path(args, "ch8_misclassified.png"), show=args.show,
        )  # fmt: skip


if __name__ == "__main__":
    main()
