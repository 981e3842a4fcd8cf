"""Train on MNIST the way the book does, and with a modern MLP, to re-measure the figures.

Setups (all with softmax cross-entropy and batches of 100):
  book   the book's chapter-4 two-layer net: 784-50-10, sigmoid, 0.01*randn init,
         SGD lr 0.1, 10,000 iterations (book: about 0.946 test accuracy)
  relu   the same with ReLU, as in chapter 5 (book: about 0.97)
  adam   784-100-100-10 ReLU MLP, He init, Adam lr 1e-3, 10 epochs (about 0.975+)

Without --full it runs on the 5,000/1,000-image subset shipped with minigrad
(a quick check; the figures above need the full set). With --full it reads
the real MNIST files from --data-dir, $MINIGRAD_DATA_DIR or the cache
(downloading them if they are nowhere to be found).

The book draws each batch at random with replacement; here every epoch is a
shuffled pass, so 10,000 iterations are 16 2/3 epochs of 600 batches.

    python examples/train_mnist.py book --full --data-dir ../shared/datasets/mnist
"""

from __future__ import annotations

import argparse
import time

from _common import load_full_mnist

from minigrad import data, nn, optim
from minigrad.train import fit

SETUPS = ("book", "relu", "adam")


def build(setup: str, seed: int) -> tuple[nn.Module, optim.Optimizer, dict]:
    """The model, optimizer and training length (fit's keywords) of one setup."""
    if setup == "adam":
        model = nn.MLP([784, 100, 100, 10], activation="relu", init="he", rng=seed)
        return model, optim.Adam(model.parameters(), lr=1e-3), {"epochs": 10}
    activation = "sigmoid" if setup == "book" else "relu"
    model = nn.TwoLayerNet(784, 50, 10, weight_init_std=0.01, activation=activation, rng=seed)
    return model, optim.SGD(model.parameters(), lr=0.1), {"iters": 10_000}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    # Checked by hand: Python 3.11's argparse checks an empty nargs="*" against `choices`.
    parser.add_argument(
        "setup", nargs="*", metavar="SETUP", help=f"any of {', '.join(SETUPS)} (default: all)"
    )
    parser.add_argument("--full", action="store_true", help="use the full MNIST (60,000/10,000)")
    parser.add_argument("--data-dir", help="directory holding the MNIST IDX files (with --full)")
    parser.add_argument(
        "--seed", type=int, default=0, help="seed of the weights and the batch order (>= 0)"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bars or epoch lines")
    args = parser.parse_args(argv)
    if args.seed < 0:
        parser.error(f"--seed must be >= 0, got {args.seed}")
    for setup in args.setup:
        if setup not in SETUPS:
            parser.error(f"unknown setup {setup!r}; choose from {', '.join(SETUPS)}")
    args.setup = args.setup or list(SETUPS)
    return args


def main() -> None:
    args = parse_args()

    if args.full:
        (x_train, t_train), (x_test, t_test) = load_full_mnist(args.data_dir)
    else:
        (x_train, t_train), (x_test, t_test) = data.load_mnist_subset()
    for setup in args.setup:
        model, optimizer, length = build(setup, args.seed)
        loader = data.DataLoader(
            data.TensorDataset(x_train, t_train), 100, shuffle=True, generator=args.seed
        )
        start = time.perf_counter()
        history = fit(
            model,
            optimizer,
            loader,
            eval_sets={"train": (x_train, t_train), "test": (x_test, t_test)},
            progress=not args.quiet,
            **length,
        )
        print(
            f"{setup}: train accuracy {history['train_acc'][-1]:.4f}  "
            f"test accuracy {history['test_acc'][-1]:.4f}  "
            f"({len(history['batch_loss'])} steps, {time.perf_counter() - start:.1f} s)"
        )


if __name__ == "__main__":
    main()
