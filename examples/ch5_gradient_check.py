"""Chapter 5's gradient check: backprop against numerical gradients, parameter by parameter.

Numerical differentiation is slow but simple to get right, so it checks the
fast backprop (section 5.7.3): the book's two-layer net (784-50-10, ReLU as
in chapter 5, weights 0.01 * randn) on the first 3 MNIST training images,
in float64. The mean absolute differences come out around 1e-10 to 1e-13,
as the book prints. minigrad.gradcheck automates the same comparison for
any function.

The default run differentiates all 39,760 parameters numerically (two
forward passes each: several seconds); --fast spot-checks 100 random
entries of each parameter instead.

    python examples/ch5_gradient_check.py [--fast]
"""

import argparse
import time

import numpy as np

import minigrad as mg
import minigrad.functional as F
from minigrad import data, nn
from minigrad.gradcheck import gradcheck, numerical_gradient

mg.set_default_dtype(np.float64)


def numerical_gradient_at(loss, p, index):
    """Central differences of loss() for the entries p.data[index] only (a spot check)."""
    values = p.data[index]  # a copy: fancy indexing

    def loss_at(v):
        p.data[index] = v
        return loss()

    g = numerical_gradient(loss_at, values)  # perturbs `values` in place, one at a time
    p.data[index] = values  # undo the last perturbation
    return g


def main():
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--fast", action="store_true", help="check 100 random entries per parameter")
    args = p.parse_args()

    (x_train, t_train), _ = data.load_mnist_subset(one_hot_label=True)
    x, t = x_train[:3], t_train[:3]  # the first 3 images, as in the book
    net = nn.TwoLayerNet(784, 50, 10, weight_init_std=0.01, activation="relu", rng=0)

    def loss():
        with mg.no_grad():
            return net.loss(x, t)

    net.loss(x, t).backward()  # backprop: every gradient in one backward pass
    rng = np.random.default_rng(0)
    print("mean |backprop - numerical| per parameter (the book: about 1e-10 to 1e-13)")
    start = time.perf_counter()
    for name, param in net.named_parameters():
        if args.fast and param.size > 100:
            index = np.unravel_index(rng.choice(param.size, 100, replace=False), param.shape)
            numerical, backprop = numerical_gradient_at(loss, param, index), param.grad.data[index]
        else:  # the book's way: perturb the parameter in place, entry by entry
            numerical, backprop = numerical_gradient(lambda _: loss(), param), param.grad.data
        diff = np.mean(np.abs(backprop - numerical))
        print(f"{name}:{diff:.6e}  ({numerical.size:,} of {param.size:,} entries)")
    print(f"(numerical gradients took {time.perf_counter() - start:.1f} s)")

    # The same check, automated: gradcheck compares backprop with central differences
    # for a function of tensors; fast=True checks one random projection u^T J v.
    def loss_of(W1, b1, W2, b2):
        return F.softmax_cross_entropy(F.linear(F.relu(F.linear(x, W1, b1)), W2, b2), t)

    ok = gradcheck(loss_of, *net.parameters(), fast=True)
    print(f"gradcheck(loss of W1, b1, W2, b2, fast=True): {ok}")


if __name__ == "__main__":
    main()
