"""The op set: each op is its NumPy forward with its gradient rules beside it.

Read an op as `@op(vjp for input 0, vjp for input 1, ...)` over its forward.
A VJP `(g, y, *inputs, **attrs)` maps the upstream gradient g (and the output
y) to the gradient for one input. VJPs use only operators and the ops of this
package, which work on plain arrays (first-order backprop, no graph) and on
tensors (`create_graph=True`, so the backward pass is differentiable again).

One module per concern; each imports only the ones listed before it:

    broadcasting     broadcast_to, sum_to (and the helpers VJPs share)
    elementwise      exp, log, sqrt, sin, cos, tanh, abs
    selection        maximum, minimum, where, clip
    arithmetic       add, sub, mul, div, neg, pow
    linalg           matmul, dot, linear
    activations      sigmoid, log_sigmoid, relu, leaky_relu, step
    softmax_family   softmax, log_softmax, logsumexp
    reductions       sum, mean, max, min
    shapes           reshape, transpose, astype, getitem, concat, stack
    losses           dropout, the losses, accuracy
    conv             im2col, col2im, conv2d, max/avg pooling, batch_norm, flatten
    methods          Tensor's operators, op methods and NumPy-style conveniences, set on the class

How the gradient checker draws inputs for each op, and its NumPy reference,
are in `minigrad.testing.specs`; `tests/test_ops.py` checks every op
registered here.
"""

from minigrad.functional import methods  # noqa: F401  (sets Tensor's operators)
from minigrad.functional.activations import leaky_relu, log_sigmoid, relu, sigmoid, step
from minigrad.functional.arithmetic import add, div, mul, neg, pow, sub
from minigrad.functional.broadcasting import broadcast_to, sum_to
from minigrad.functional.conv import (
    avg_pool2d,
    batch_norm,
    col2im,
    conv2d,
    flatten,
    im2col,
    max_pool2d,
)
from minigrad.functional.elementwise import abs, cos, exp, log, sin, sqrt, tanh
from minigrad.functional.linalg import dot, linear, matmul
from minigrad.functional.losses import (
    accuracy,
    cross_entropy_error,
    dropout,
    mean_squared_error,
    sigmoid_cross_entropy,
    softmax_cross_entropy,
)
from minigrad.functional.reductions import max, mean, min, sum
from minigrad.functional.selection import clip, maximum, minimum, where
from minigrad.functional.shapes import astype, concat, getitem, reshape, stack, transpose
from minigrad.functional.softmax_family import log_softmax, logsumexp, softmax

__all__ = [
    "add", "sub", "mul", "div", "neg", "pow", "matmul", "dot",
    "exp", "log", "sqrt", "sin", "cos", "tanh", "abs",
    "maximum", "minimum", "where", "clip",
    "sigmoid", "log_sigmoid", "relu", "leaky_relu", "step",
    "softmax", "log_softmax", "logsumexp",
    "sum", "mean", "max", "min",
    "reshape", "transpose", "astype", "broadcast_to", "sum_to", "getitem", "concat", "stack",
    "linear", "dropout",
    "mean_squared_error", "cross_entropy_error", "softmax_cross_entropy",
    "sigmoid_cross_entropy", "accuracy",
    "im2col", "col2im", "conv2d", "max_pool2d", "avg_pool2d", "batch_norm", "flatten",
]  # fmt: skip
