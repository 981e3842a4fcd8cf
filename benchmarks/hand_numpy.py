"""Hand-written NumPy training steps: the no-framework limit the benchmarks compare against.

Forward, softmax cross-entropy, backward by formula (the book's chapter 5
layers written out) and an SGD update, for a fully connected net with
sigmoid or ReLU between its layers. No graph, no objects per op: this is
what a careful person writes by hand, in whatever float dtype it is given.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def aligned(a: np.ndarray) -> np.ndarray:
    """A copy of `a` that starts on a 64-byte boundary (minigrad.nn.aligned does the same;
    this one is here so that the benchmarks also run against minigrads without it)."""
    memory = np.empty(a.nbytes + 64, np.uint8)
    out = np.ndarray(a.shape, a.dtype, buffer=memory, offset=-memory.ctypes.data % 64)
    out[...] = a
    return out


class HandMLP:
    """A fully connected net whose `step` trains it on one batch by hand-derived formulas.

    `weights` holds one `(W, b)` pair per layer, W of shape (in, out); they
    are copied into `dtype`, in 64-byte-aligned memory as minigrad's and
    PyTorch's parameters are (an update into a misaligned W1 is slower, and
    where NumPy happens to put an array would decide the comparison). The
    activation ("sigmoid" or "relu") sits between layers; the last layer
    gives the scores for softmax-CE.

    By default each layer is updated as soon as its gradient is computed, by
    scaling the gradient in place: the fastest form by hand. With
    `separate_update`, the update runs after the whole backward and leaves
    the gradients intact (W -= lr * dW, a temporary the size of W), as any
    framework's `optimizer.step()` must, since the user may still read `.grad`.
    """

    def __init__(
        self,
        weights: Sequence[tuple[np.ndarray, np.ndarray]],
        activation: str,
        dtype: type,
        separate_update: bool = False,
    ) -> None:
        if activation not in ("sigmoid", "relu"):
            raise ValueError(f"activation must be 'sigmoid' or 'relu', got {activation!r}")
        self.params = [(aligned(W.astype(dtype)), aligned(b.astype(dtype))) for W, b in weights]
        self.sigmoid = activation == "sigmoid"
        self.separate_update = separate_update

    def step(self, x: np.ndarray, t: np.ndarray, lr: float) -> float:
        """One SGD step on the batch (x, integer labels t); returns the loss before the update."""
        n = len(x)
        rows = np.arange(n)
        last = len(self.params) - 1
        # Forward, keeping each layer's input for the weight gradient.
        inputs = []
        h = x
        # exp(-a) may overflow to inf for very negative a; 1 / (1 + inf) = 0 is the right limit.
        with np.errstate(over="ignore"):
            for i, (W, b) in enumerate(self.params):
                inputs.append(h)
                a = h @ W
                a += b
                if i < last:
                    h = 1.0 / (1.0 + np.exp(-a)) if self.sigmoid else np.maximum(a, 0)
        # Softmax cross-entropy on the scores a, shifted by the row max.
        a -= a.max(axis=1, keepdims=True)
        e = np.exp(a)
        s = e.sum(axis=1, keepdims=True)
        loss = float(np.log(s[:, 0]).sum() - a[rows, t].sum()) / n
        g = e
        g /= s
        g[rows, t] -= 1
        g /= n
        # Backward: dW = h^T g, db = sum g, dh = g W^T through the activation.
        grads = []
        for i in range(last, -1, -1):
            W, b = self.params[i]
            h = inputs[i]
            gW = h.T @ g
            gb = g.sum(axis=0)
            if i > 0:
                g = g @ W.T
                g *= h * (1.0 - h) if self.sigmoid else h > 0
            if self.separate_update:
                grads.append((W, b, gW, gb))
                continue
            gW *= lr  # in place: no temporary the size of W
            gb *= lr
            W -= gW
            b -= gb
        for W, b, gW, gb in reversed(grads):  # first layer first, as an optimizer's list
            W -= lr * gW
            b -= lr * gb
        return loss
