"""A hand-written NumPy training step of the book's SimpleConvNet: the no-framework limit W6
compares against.

conv 5x5 (30 filters) - ReLU - 2x2 max pool - affine 100 - ReLU - affine 10 -
softmax cross-entropy, forward and backward by formula, then an SGD update.
The convolution is im2col and one matrix product, with the windows laid out
per image as columns (N, C*FH*FW, OH*OW), so the product comes out NCHW; the
pooling and its gradient loop over the 2x2 window offsets. These are the
formulas minigrad's ops use, written out once for this net: no graph, no
checks, no objects per op. Max pooling splits a tied maximum's gradient
evenly, as minigrad does, so both compute the same step.
"""

from __future__ import annotations

import numpy as np
from hand_numpy import aligned
from numpy.lib.stride_tricks import sliding_window_view

POOL = 2  # 2x2 windows, stride 2


class HandSimpleConvNet:
    """The net's parameters (W1, b1, W2, b2, W3, b3 as the book names them) and its `step`."""

    def __init__(self, params: dict[str, np.ndarray], dtype: type) -> None:
        self.p = {k: aligned(np.asarray(v, dtype)) for k, v in params.items()}

    def step(self, x: np.ndarray, t: np.ndarray, lr: float) -> float:
        """One SGD step on images x (N, 1, 28, 28) with integer labels t; returns the loss."""
        p = self.p
        n = len(x)
        fn, c, fh, fw = p["W1"].shape
        # conv: every 5x5 window as a column of its image, then one product with the filters
        windows = sliding_window_view(x, (fh, fw), axis=(2, 3))  # (N, C, OH, OW, FH, FW)
        oh, ow = windows.shape[2:4]
        col = windows.transpose(0, 1, 4, 5, 2, 3).reshape(n, c * fh * fw, oh * ow)
        a1 = np.matmul(p["W1"].reshape(fn, -1), col)
        a1 += p["b1"][:, None]
        h1 = np.maximum(a1, 0, out=a1).reshape(n, fn, oh, ow)  # ReLU in place: h1 > 0 is its mask
        # 2x2 max pool: the max over the four offsets of the window
        offsets = [(slice(None), slice(None), slice(i, None, POOL), slice(j, None, POOL))
                   for i in range(POOL) for j in range(POOL)]  # fmt: skip
        pooled = h1[offsets[0]].copy()
        for index in offsets[1:]:
            np.maximum(pooled, h1[index], out=pooled)
        f = pooled.reshape(n, -1)
        a2 = f @ p["W2"]
        a2 += p["b2"]
        h2 = np.maximum(a2, 0, out=a2)
        s = h2 @ p["W3"]
        s += p["b3"]
        # softmax cross-entropy and its gradient (softmax - onehot) / N
        s -= s.max(axis=1, keepdims=True)
        e = np.exp(s)
        total = e.sum(axis=1, keepdims=True)
        rows = np.arange(n)
        loss = float(np.log(total[:, 0]).sum() - s[rows, t].sum()) / n
        g = e
        g /= total
        g[rows, t] -= 1
        g /= n
        # backward through the affine layers
        grads = {"W3": h2.T @ g, "b3": g.sum(axis=0)}
        g = g @ p["W3"].T
        g *= h2 > 0
        grads["W2"], grads["b2"] = f.T @ g, g.sum(axis=0)
        g = (g @ p["W2"].T).reshape(pooled.shape)
        # the pool's gradient goes to each window's maximum (split among ties), then ReLU's mask
        masks = [h1[index] == pooled for index in offsets]
        count = np.zeros(pooled.shape, g.dtype)
        for mask in masks:
            count += mask
        g /= count
        dh1 = np.zeros(h1.shape, g.dtype)
        for mask, index in zip(masks, offsets, strict=True):
            dh1[index] = g * mask  # the windows do not overlap
        dh1 *= h1 > 0
        g1 = dh1.reshape(n, fn, oh * ow)
        # dW1 = sum over images of dA1_n @ col_n^T; the input needs no gradient
        grads["W1"] = np.matmul(g1, col.transpose(0, 2, 1)).sum(axis=0).reshape(p["W1"].shape)
        grads["b1"] = g1.sum(axis=(0, 2))
        for k, grad in grads.items():
            grad *= lr  # in place, as the hand MLP step: no temporary the size of the weight
            p[k] -= grad
        return loss
