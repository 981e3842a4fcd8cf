"""Networks as modules: `Parameter`, `Module`, layers, initializers and the book's `TwoLayerNet`.

A `Module` finds its parameters by looking at its attributes: a `Parameter`,
a sub-module, or a list or tuple of them (named `layers.0`, `layers.1`, ...),
so assigning `self.fc = Linear(784, 50)` is all the registration there is.
Weights follow the book's layout: `Linear` computes x W + b with W of shape
(in, out).

Dtype at the module boundary: a layer with weights converts a numeric input of
another dtype to its weights' dtype, so a float64 NumPy batch (the book's
arrays) into a float32 model runs in float32, as the model was made for, and
a float32 batch into a float64 model runs in float64. NumPy's promotion would
instead run a float32 model in float64 without a word, at twice the memory and
time. The conversion is an op (`F.astype`), so an input that requires grad gets
its gradient back in its own dtype. A new layer does the same with
`_input_like(x, weight)`.
"""

from __future__ import annotations

import math
import numbers
import os
import zipfile
from collections.abc import Callable, Iterator, Mapping
from typing import Any, BinaryIO, NamedTuple

import numpy as np

from minigrad import functional as F
from minigrad._files import write_atomically
from minigrad.engine import Tensor, TensorLike, get_default_dtype, no_grad, unwrap

__all__ = [
    "Parameter", "Module", "Linear", "Sequential", "MLP",
    "ReLU", "Sigmoid", "Tanh", "LeakyReLU", "Softmax", "Dropout",
    "xavier", "he", "normal", "aligned", "TwoLayerNet", "LoadResult",
]  # fmt: skip

Generator = np.random.Generator | int | None  # a numpy Generator or a seed for one


class Parameter(Tensor):
    """A tensor that a `Module` owns and an optimizer updates: always requires grad."""

    __slots__ = ()

    def __init__(self, data: TensorLike, name: str | None = None) -> None:
        super().__init__(data, requires_grad=True, name=name)


class Buffer(Tensor):
    """A tensor a `Module` saves and loads with its parameters but that no optimizer updates
    (batch norm's running statistics): never requires grad."""

    __slots__ = ()

    def __init__(self, data: TensorLike, name: str | None = None) -> None:
        super().__init__(data, requires_grad=False, name=name)


# ---------------------------------------------------------------- initializers


def aligned(a: np.ndarray) -> np.ndarray:
    """A copy of `a` whose data starts on a 64-byte boundary (a cache line).

    NumPy only promises 16 bytes. A weight is updated in place on every
    step, and inside a W1 training step (a 784x50 float32 weight, on an
    AVX-512 machine) that update took 1.6x as long, 6% of the step, when the
    weight started 16 or 48 bytes past a cache line. So initializers and
    `load_state_dict` give aligned arrays, as PyTorch's CPU allocator does.
    """
    a = np.asarray(a)
    memory = np.empty(a.nbytes + 64, np.uint8)
    out = np.ndarray(a.shape, a.dtype, buffer=memory, offset=-memory.ctypes.data % 64)
    out[...] = a
    return out


def normal(shape: tuple[int, ...], std: float = 0.01, rng: Generator = None) -> np.ndarray:
    """std * randn(shape) in the default float dtype, 64-byte aligned; std 0.01 is the book's
    chapter-4 init."""
    rng = np.random.default_rng(rng)
    return aligned((std * rng.standard_normal(shape)).astype(get_default_dtype()))


def _zeros(shape: tuple[int, ...] | int) -> np.ndarray:
    """Zeros in the default float dtype, 64-byte aligned: the book's bias init."""
    return aligned(np.zeros(shape, dtype=get_default_dtype()))


def xavier(shape: tuple[int, ...], rng: Generator = None) -> np.ndarray:
    """Xavier init as the book gives it: std = 1/sqrt(n), n = shape[0] (the inputs per unit).

    Suited to sigmoid and tanh. (Glorot's paper uses sqrt(2/(n_in + n_out));
    the book and Caffe use this simpler form.)
    """
    return normal(shape, 1.0 / np.sqrt(shape[0]), rng)


def he(shape: tuple[int, ...], rng: Generator = None) -> np.ndarray:
    """He init: std = sqrt(2/n), n = shape[0]; suited to ReLU."""
    return normal(shape, np.sqrt(2.0 / shape[0]), rng)


_INITS: dict[str, Callable[..., np.ndarray]] = {
    "xavier": xavier,
    "he": he,
    "book": lambda shape, rng: normal(shape, 0.01, rng),
}


def _weights(init: str | float, shape: tuple[int, ...], rng: Generator) -> np.ndarray:
    if isinstance(init, str) and init in _INITS:
        return _INITS[init](shape, rng)
    if _is_std(init):
        return normal(shape, float(init), rng)
    raise ValueError(f"init must be one of {sorted(_INITS)} or a finite std >= 0, got {init!r}")


def _is_std(x: Any) -> bool:
    return isinstance(x, numbers.Real) and not isinstance(x, bool | np.bool_) and 0 <= x < np.inf


def _is_positive_int(n: Any) -> bool:
    return isinstance(n, int | np.integer) and not isinstance(n, bool) and n >= 1


def _input_like(x: TensorLike, weight: Tensor) -> TensorLike:
    """x in weight's dtype, if x is a numeric array or tensor of another dtype (see the
    module docstring); anything else (a list, a number) is left to the op."""
    dtype = getattr(x.data if isinstance(x, Tensor) else x, "dtype", None)
    # `is` first: NumPy's built-in dtypes are singletons, and this runs on every layer call
    if dtype is weight.data.dtype or dtype is None or dtype == weight.data.dtype:
        return x
    if dtype.kind not in "biuf":
        return x
    if isinstance(x, Tensor):
        return F.astype(x, weight.dtype)  # recorded: the gradient goes back in x's dtype
    return np.asarray(x, dtype=weight.dtype)


# ---------------------------------------------------------------- Module


class LoadResult(NamedTuple):
    """What `load_state_dict` or `load` skipped: keys the model has and the state lacks,
    and keys the state has and the model lacks (both empty unless strict=False)."""

    missing_keys: list[str]
    unexpected_keys: list[str]


class Module:
    """Base class of layers and networks: subclasses define `forward`.

    Parameters are the attributes that hold a `Parameter`, a sub-module, or a
    list or tuple of those; `named_parameters` names them by their attribute
    path (`fc1.W`, `layers.0.b`). There is nothing to register and no need to
    call `super().__init__()`.
    """

    training: bool = True  # instances set their own with train()/eval()

    def __repr__(self) -> str:
        n = sum(p.size for p in self.parameters())
        count = f"  # {n:,} parameter{'s' * (n != 1)}" if n else ""
        return self._describe({id(self)}) + count

    def _describe(self, path: set[int]) -> str:
        """The structure, derived from the attributes: parameters by shape, plain settings
        (numbers, strings) by value, sub-modules one per line and indented."""
        settings = []
        for name, value in vars(self).items():
            if isinstance(value, Parameter):
                settings.append(f"{name}={value.shape}")
            elif (
                (
                    isinstance(value, bool | int | float | str)
                    or (isinstance(value, tuple) and all(isinstance(v, int) for v in value))
                )
                and not name.startswith("_")
                and name != "training"
            ):
                settings.append(f"{name}={value!r}")
        children = []
        for name, value in self._members():
            if isinstance(value, Module):
                # `path` holds the modules being described: a module that contains
                # itself (directly or not) is named, not described forever.
                inner = (
                    f"{type(value).__name__}(...)"
                    if id(value) in path
                    else (value._describe(path | {id(value)}))
                )
                children.append(f"({name}): " + inner.replace("\n", "\n  "))
        if not children:
            return f"{type(self).__name__}({', '.join(settings)})"
        lines = ([", ".join(settings)] if settings else []) + children
        return f"{type(self).__name__}(\n  " + "\n  ".join(lines) + "\n)"

    def _repr_mimebundle_(self, include=None, exclude=None) -> dict:
        """Jupyter shows a module as the graph of its forward pass."""
        from minigrad.viz import mimebundle  # graphviz is imported only when a notebook asks

        return mimebundle(self, include, exclude)

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} must define forward()")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.forward(*args, **kwargs)

    def _members(self) -> Iterator[tuple[str, Parameter | Module]]:
        for name, value in vars(self).items():
            if isinstance(value, Parameter | Buffer | Module):
                yield name, value
            elif isinstance(value, list | tuple):
                for i, item in enumerate(value):
                    if isinstance(item, Parameter | Buffer | Module):
                        yield f"{name}.{i}", item

    def _walk(self, prefix: str, seen: set[int]) -> Iterator[tuple[str, Parameter | Module]]:
        # `seen` makes a shared parameter or module count once (tied weights, cycles).
        for name, value in self._members():
            if id(value) in seen:
                continue
            seen.add(id(value))
            yield prefix + name, value
            if isinstance(value, Module):
                yield from value._walk(prefix + name + ".", seen)

    def named_parameters(self) -> Iterator[tuple[str, Parameter]]:
        """(dotted name, parameter) pairs, each parameter once, in attribute order."""
        for name, value in self._walk("", {id(self)}):
            if isinstance(value, Parameter):
                yield name, value

    def named_buffers(self) -> Iterator[tuple[str, Buffer]]:
        """(dotted name, buffer) pairs: the state that is not a parameter, each once."""
        for name, value in self._walk("", {id(self)}):
            if isinstance(value, Buffer):
                yield name, value

    def parameters(self) -> Iterator[Parameter]:
        """Every parameter of this module and its sub-modules, each once."""
        for _, p in self.named_parameters():
            yield p

    def modules(self) -> Iterator[Module]:
        """This module and every sub-module, each once."""
        yield self
        for _, value in self._walk("", {id(self)}):
            if isinstance(value, Module):
                yield value

    def zero_grad(self) -> None:
        """Drop every parameter's gradient (set it to None)."""
        for p in self.parameters():
            p.grad = None

    def train(self, mode: bool = True) -> Module:
        """Set training mode here and in every sub-module (Dropout cares); returns self."""
        for m in self.modules():
            m.training = mode
        return self

    def eval(self) -> Module:
        """Evaluation mode: `train(False)`."""
        return self.train(False)

    def state_dict(self) -> dict[str, np.ndarray]:
        """Copies of the parameters' and buffers' arrays, by dotted name."""
        return {name: p.data.copy() for name, p in self._state()}

    def _state(self) -> Iterator[tuple[str, Parameter | Buffer]]:
        yield from self.named_parameters()
        yield from self.named_buffers()

    def load_state_dict(self, state: dict[str, Any], strict: bool = True) -> LoadResult:
        """Copy arrays into the parameters (and buffers) with the same names, cast to each
        one's dtype.

        Mis-shaped arrays are always an error; missing and unexpected names are
        an error when `strict`, and returned otherwise. Nothing is changed
        unless every check passes.
        """
        if not isinstance(state, Mapping):
            hint = (
                "; to read a saved file, use .load(path)"
                if isinstance(state, str | os.PathLike)
                else ""
            )
            raise TypeError(
                f"load_state_dict takes a dict of arrays by name (as state_dict() gives), got "
                f"{type(state).__name__}{hint}"
            )
        params = dict(self._state())
        missing = [k for k in params if k not in state]
        unexpected = [k for k in state if k not in params]
        arrays = {k: np.asarray(state[k]) for k in params if k in state}
        problems = [
            f"{k}: expected shape {params[k].shape}, got {a.shape}"
            for k, a in arrays.items()
            if a.shape != params[k].shape
        ]
        problems += [
            f"{k}: expected a numeric array, got dtype {a.dtype}"
            for k, a in arrays.items()
            if a.dtype.kind not in "iuf"
        ]
        if strict:
            problems += [f"missing key {k!r}" for k in missing]
            problems += [f"unexpected key {k!r}" for k in unexpected]
        if not problems:
            with np.errstate(over="ignore"):  # an overflow is reported just below, by key
                cast = {
                    k: aligned(a.astype(params[k].dtype, copy=False)) for k, a in arrays.items()
                }
            problems += [
                f"{k}: values too large for {params[k].dtype}"
                for k, a in arrays.items()
                if np.count_nonzero(np.isinf(cast[k])) != np.count_nonzero(np.isinf(a))
            ]
        if problems:
            raise ValueError(
                f"cannot load the state into {type(self).__name__}: " + "; ".join(problems)
            )
        for k, a in cast.items():
            params[k].data = a
        return LoadResult(missing, unexpected)

    def save(self, path: str | os.PathLike) -> None:
        """Write the state dict to `path` as an `.npz` archive (no pickle).

        The file is written under a temporary name beside `path` and renamed
        when complete, so a crash never leaves a half-written model.
        """
        state = self.state_dict()
        write_atomically(path, lambda f: _write_npz(f, state))

    def load(self, path: str | os.PathLike, strict: bool = True) -> LoadResult:
        """Load parameters saved by `save` (see `load_state_dict` for the checks)."""
        path = os.fspath(path)
        if os.path.isdir(path):
            raise IsADirectoryError(f"cannot load {path!r}: it is a directory, not a saved model")
        if not os.path.isfile(path):
            raise FileNotFoundError(f"no saved model at {path!r}")
        try:
            if not zipfile.is_zipfile(path):  # np.load would call any other bytes "pickled data"
                raise ValueError("it is not an .npz (zip) archive")
            with np.load(path, allow_pickle=False) as archive:
                state = {k: archive[k] for k in archive.files}
        except (ValueError, OSError, EOFError, zipfile.BadZipFile) as e:
            raise ValueError(
                f"{path!r} is not a model saved by Module.save (an .npz of parameter arrays): {e}"
            ) from None
        return self.load_state_dict(state, strict)


def _write_npz(f: BinaryIO, arrays: dict[str, np.ndarray]) -> None:
    """The archive `np.savez` writes (one `<key>.npy` per array), for any key.

    `np.savez` takes the keys as keyword arguments, so a parameter named
    `file` or `allow_pickle` would clash with its own arguments.
    """
    with zipfile.ZipFile(f, "w", allowZip64=True) as archive:
        for key, a in arrays.items():
            with archive.open(key + ".npy", "w", force_zip64=True) as entry:
                np.lib.format.write_array(entry, a, allow_pickle=False)


# ---------------------------------------------------------------- layers


class Linear(Module):
    """The affine layer y = x W + b, W of shape (in_features, out_features).

    `init` picks W's initializer: "xavier", "he", "book" (0.01 * randn) or a
    std as a float; b starts at zero. `rng` is a numpy Generator or a seed.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        init: str | float = "xavier",
        rng: Generator = None,
    ) -> None:
        for what, n in (("in_features", in_features), ("out_features", out_features)):
            if not _is_positive_int(n):
                raise ValueError(f"Linear {what} must be a positive int, got {n!r}")
        self.W = Parameter(_weights(init, (in_features, out_features), rng))
        self.b = Parameter(_zeros(out_features)) if bias else None

    def forward(self, x: TensorLike) -> Tensor:
        return F.linear(_input_like(x, self.W), self.W, self.b)


class Sequential(Module):
    """Modules applied in order; `layers.i` is the i-th one."""

    def __init__(self, *layers: Module) -> None:
        self.layers = list(layers)

    def forward(self, x: TensorLike) -> Any:
        for layer in self.layers:
            x = layer(x)
        return x

    def __len__(self) -> int:
        return len(self.layers)

    def __getitem__(self, i: int | slice) -> Module:
        """The i-th layer; a slice is a Sequential of those layers (sharing them)."""
        if isinstance(i, slice):
            return Sequential(*self.layers[i])
        return self.layers[i]

    def __iter__(self) -> Iterator[Module]:
        return iter(self.layers)


class ReLU(Module):
    """max(x, 0)."""

    def forward(self, x: TensorLike) -> Tensor:
        return F.relu(x)


class Sigmoid(Module):
    """1 / (1 + exp(-x))."""

    def forward(self, x: TensorLike) -> Tensor:
        return F.sigmoid(x)


class Tanh(Module):
    """tanh x."""

    def forward(self, x: TensorLike) -> Tensor:
        return F.tanh(x)


class LeakyReLU(Module):
    """x for x > 0, slope * x otherwise."""

    def __init__(self, slope: float = 0.01) -> None:
        self.slope = slope

    def forward(self, x: TensorLike) -> Tensor:
        return F.leaky_relu(x, self.slope)


class Softmax(Module):
    """exp(x_k) / sum_i exp(x_i) along `axis`."""

    def __init__(self, axis: int = -1) -> None:
        self.axis = axis

    def forward(self, x: TensorLike) -> Tensor:
        return F.softmax(x, axis=self.axis)


class Dropout(Module):
    """Inverted dropout: in training, zero each element with probability p and scale
    the rest by 1/(1-p), so eval mode (the identity) needs no rescaling."""

    def __init__(self, p: float = 0.5, rng: Generator = None) -> None:
        if not 0 <= p < 1:
            raise ValueError(f"dropout probability must be in [0, 1), got {p}")
        self.p = p
        self.rng = np.random.default_rng(rng)  # one stream, so each call draws a new mask

    def forward(self, x: TensorLike) -> Tensor:
        return F.dropout(x, self.p, self.training, self.rng)


_ACTIVATIONS: dict[str, type[Module]] = {"relu": ReLU, "sigmoid": Sigmoid, "tanh": Tanh}


def _activation(activation: str | Module) -> Module:
    if isinstance(activation, Module):
        return activation
    if activation not in _ACTIVATIONS:
        raise ValueError(
            f"unknown activation {activation!r}; expected one of {sorted(_ACTIVATIONS)} or a Module"
        )
    return _ACTIVATIONS[activation]()


class MLP(Sequential):
    """Fully connected layers of the given sizes with an activation between them.

    `MLP([784, 100, 100, 10])` is Linear(784, 100), act, Linear(100, 100), act,
    Linear(100, 10); the output is the scores (logits), with no activation.
    `activation` is "relu", "sigmoid", "tanh" or a Module (shared by every
    layer); `init` and `rng` go to each `Linear` (one Generator for all).
    """

    def __init__(
        self,
        sizes: list[int] | tuple[int, ...],
        activation: str | Module = "relu",
        init: str | float = "xavier",
        rng: Generator = None,
    ) -> None:
        if isinstance(sizes, int | np.integer):  # PyTorch-style positional sizes
            given = [sizes]
            for arg in (activation, init, rng):
                if not _is_positive_int(arg):
                    break
                given.append(arg)
            raise TypeError(
                f"nn.MLP takes the layer sizes as one list: nn.MLP({given}), not "
                f"nn.MLP({', '.join(map(str, given))}); the arguments after it are "
                "activation, init and rng"
            )
        if len(sizes) < 2 or not all(_is_positive_int(n) for n in sizes):
            raise ValueError(f"MLP sizes must be at least two positive ints, got {sizes!r}")
        rng = np.random.default_rng(rng)
        act = _activation(activation)
        layers: list[Module] = []
        for n_in, n_out in zip(sizes[:-1], sizes[1:], strict=True):
            layers += [Linear(n_in, n_out, init=init, rng=rng), act]
        super().__init__(*layers[:-1])


class TwoLayerNet(Module):
    """The book's two-layer net (chapters 4 and 5): affine, activation, affine.

    Parameters W1, b1, W2, b2 as in the book's `params` dict, weights drawn as
    weight_init_std * randn and biases zero. As in chapter 5, `predict` returns
    the scores and `loss` applies softmax with cross-entropy in one stable op.
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        output_size: int,
        weight_init_std: float = 0.01,
        activation: str | Module = "sigmoid",
        rng: Generator = None,
    ) -> None:
        for what, n in (("input_size", input_size), ("hidden_size", hidden_size),
                        ("output_size", output_size)):  # fmt: skip
            if not _is_positive_int(n):
                raise ValueError(f"TwoLayerNet {what} must be a positive int, got {n!r}")
        if not _is_std(weight_init_std):
            raise ValueError(
                f"weight_init_std must be a finite number >= 0, got {weight_init_std!r}"
            )
        rng = np.random.default_rng(rng)
        self.W1 = Parameter(normal((input_size, hidden_size), weight_init_std, rng))
        self.b1 = Parameter(_zeros(hidden_size))
        self.W2 = Parameter(normal((hidden_size, output_size), weight_init_std, rng))
        self.b2 = Parameter(_zeros(output_size))
        self.activation = _activation(activation)

    def forward(self, x: TensorLike) -> Tensor:
        h = self.activation(F.linear(_input_like(x, self.W1), self.W1, self.b1))
        return F.linear(h, self.W2, self.b2)

    def predict(self, x: TensorLike) -> Tensor:
        return self(x)

    def loss(self, x: TensorLike, t: Any) -> Tensor:
        """Cross-entropy of softmax(scores) against labels (indices or one-hot)."""
        return F.softmax_cross_entropy(self(x), t)

    def accuracy(self, x: TensorLike, t: Any) -> float:
        with no_grad():
            return F.accuracy(self(x), t)


# ---------------------------------------------------------------- convolutional networks

__all__ += [
    "Buffer", "Conv2d", "MaxPool2d", "AvgPool2d", "Flatten", "BatchNorm1d", "BatchNorm2d",
    "SimpleConvNet", "DeepConvNet",
]  # fmt: skip


def _window_pair(value: Any, what: str, minimum: int) -> tuple[int, int]:
    """A kernel size, stride or padding as (height, width), checked when the layer is made."""
    pair = (value, value) if not isinstance(value, tuple | list) else tuple(value)
    if len(pair) != 2 or not all(
        isinstance(n, int | np.integer) and not isinstance(n, bool) and n >= minimum for n in pair
    ):
        raise ValueError(f"{what} must be an int >= {minimum} or a pair of them, got {value!r}")
    return pair


def _filters(init: str | float, shape: tuple[int, ...], rng: Generator) -> np.ndarray:
    """Filters (FN, C, FH, FW); He and Xavier count fan-in as C * FH * FW, the inputs of
    one output (a (in, out) weight's shape[0] is the same count)."""
    fan_in = math.prod(shape[1:])
    if init == "he":
        return normal(shape, np.sqrt(2.0 / fan_in), rng)
    if init == "xavier":
        return normal(shape, 1.0 / np.sqrt(fan_in), rng)
    return _weights(init, shape, rng)


class Conv2d(Module):
    """Convolution layer: images (N, in_channels, H, W) -> (N, out_channels, OH, OW).

    W has shape (out_channels, in_channels, FH, FW) and b (out_channels,),
    as in the book and PyTorch; kernel_size, stride and pad are an int or a
    (height, width) pair. `init`: "he" (the default, std sqrt(2 / fan_in)
    with fan_in = in_channels * FH * FW), "xavier", "book" (0.01 * randn)
    or a std; b starts at zero.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int],
        stride: int | tuple[int, int] = 1,
        pad: int | tuple[int, int] = 0,
        bias: bool = True,
        init: str | float = "he",
        rng: Generator = None,
    ) -> None:
        for what, n in (("in_channels", in_channels), ("out_channels", out_channels)):
            if not _is_positive_int(n):
                raise ValueError(f"Conv2d {what} must be a positive int, got {n!r}")
        kernel = _window_pair(kernel_size, "Conv2d kernel_size", 1)
        stride, pad = _window_pair(stride, "Conv2d stride", 1), _window_pair(pad, "Conv2d pad", 0)
        self.W = Parameter(_filters(init, (out_channels, in_channels, *kernel), rng))
        self.b = Parameter(_zeros(out_channels)) if bias else None
        self.stride, self.pad = stride, pad

    def forward(self, x: TensorLike) -> Tensor:
        return F.conv2d(_input_like(x, self.W), self.W, self.b, self.stride, self.pad)


class MaxPool2d(Module):
    """The max of each window (`F.max_pool2d`); stride defaults to kernel_size."""

    def __init__(
        self,
        kernel_size: int | tuple[int, int],
        stride: int | tuple[int, int] | None = None,
        pad: int | tuple[int, int] = 0,
    ) -> None:
        name = type(self).__name__
        self.kernel_size = _window_pair(kernel_size, f"{name} kernel_size", 1)
        self.stride = None if stride is None else _window_pair(stride, f"{name} stride", 1)
        self.pad = _window_pair(pad, f"{name} pad", 0)

    def forward(self, x: TensorLike) -> Tensor:
        return F.max_pool2d(x, self.kernel_size, self.stride, self.pad)


class AvgPool2d(MaxPool2d):
    """The mean of each window (`F.avg_pool2d`); stride defaults to kernel_size."""

    def forward(self, x: TensorLike) -> Tensor:
        return F.avg_pool2d(x, self.kernel_size, self.stride, self.pad)


class Flatten(Module):
    """(N, ...) -> (N, everything else): images to rows for a `Linear`."""

    def forward(self, x: TensorLike) -> Tensor:
        return F.flatten(x)


class BatchNorm1d(Module):
    """Batch normalization of (N, num_features) inputs (`F.batch_norm`).

    gamma (ones) and beta (zeros) are parameters; the running mean (zeros)
    and variance (ones) are buffers: saved and loaded with the state dict,
    updated in training mode only, used in eval mode. `momentum` is the
    share of the old running value kept at each update (the book's 0.9,
    PyTorch's momentum=0.1).
    """

    ndim = 2  # the inputs' number of axes
    shape = "(N, num_features)"

    def __init__(self, num_features: int, momentum: float = 0.9, eps: float = 1e-5) -> None:
        name = type(self).__name__
        if not _is_positive_int(num_features):
            raise ValueError(f"{name} num_features must be a positive int, got {num_features!r}")
        if not (isinstance(momentum, numbers.Real) and 0 <= momentum <= 1):
            raise ValueError(f"{name} momentum must be in [0, 1], got {momentum!r}")
        if not (isinstance(eps, numbers.Real) and 0 < eps < np.inf):
            raise ValueError(f"{name} eps must be a finite number > 0, got {eps!r}")
        self.gamma = Parameter(aligned(np.ones(num_features, get_default_dtype())))
        self.beta = Parameter(_zeros(num_features))
        self.running_mean = Buffer(_zeros(num_features))
        self.running_var = Buffer(aligned(np.ones(num_features, get_default_dtype())))
        self.momentum, self.eps = momentum, eps

    def forward(self, x: TensorLike) -> Tensor:
        if np.ndim(unwrap(x)) != self.ndim:
            raise ValueError(
                f"{type(self).__name__} takes inputs of shape {self.shape}, got shape "
                f"{np.shape(unwrap(x))}"
            )
        return F.batch_norm(
            _input_like(x, self.gamma), self.gamma, self.beta, self.running_mean, self.running_var,
            self.training, self.momentum, self.eps,
        )  # fmt: skip


class BatchNorm2d(BatchNorm1d):
    """Batch normalization of images (N, num_features, H, W), per channel over N, H and W."""

    ndim = 4
    shape = "(N, num_features, H, W)"


class SimpleConvNet(Sequential):
    """The book's chapter-7 network: conv (30 filters 5x5) - ReLU - 2x2 max pool - affine
    (100) - ReLU - affine (10), giving scores (logits).

    Weights are 0.01 * randn by default, as the book's (`init` as for
    `Linear`: "book", "he", "xavier" or a std). `from_book_params` loads the
    book's trained parameters.
    """

    def __init__(
        self,
        input_dim: tuple[int, int, int] = (1, 28, 28),
        filter_num: int = 30,
        filter_size: int = 5,
        hidden_size: int = 100,
        output_size: int = 10,
        init: str | float = "book",
        rng: Generator = None,
    ) -> None:
        c, h, w = input_dim
        rng = np.random.default_rng(rng)
        pooled = filter_num * ((h - filter_size + 1) // 2) * ((w - filter_size + 1) // 2)
        super().__init__(
            Conv2d(c, filter_num, filter_size, init=init, rng=rng), ReLU(), MaxPool2d(2),
            Flatten(), Linear(pooled, hidden_size, init=init, rng=rng), ReLU(),
            Linear(hidden_size, output_size, init=init, rng=rng),
        )  # fmt: skip

    # the book's parameter names -> this model's
    BOOK_NAMES = {"W1": "layers.0.W", "b1": "layers.0.b", "W2": "layers.4.W",
                  "b2": "layers.4.b", "W3": "layers.6.W", "b3": "layers.6.b"}  # fmt: skip

    @classmethod
    def from_book_params(
        cls,
        params: Mapping[str, Any] | str | os.PathLike,
        input_dim: tuple[int, int, int] = (1, 28, 28),
    ) -> SimpleConvNet:
        """The book's trained network from its parameters W1 (30, 1, 5, 5), b1, W2 (4320, 100),
        b2, W3 (100, 10), b3: a mapping (the book's `network.params`) or an `.npz` of them.

        The model takes the arrays' dtype (float64 for the book's), so it
        computes what the book's code computes.
        """
        if not isinstance(params, Mapping):
            with np.load(os.fspath(params), allow_pickle=False) as archive:
                params = {k: archive[k] for k in archive.files}
        missing = [k for k in cls.BOOK_NAMES if k not in params]
        if missing:
            raise ValueError(
                f"the book's SimpleConvNet parameters are {', '.join(cls.BOOK_NAMES)}; missing "
                f"{', '.join(missing)} (got {', '.join(sorted(params)) or 'nothing'})"
            )
        arrays = {k: np.asarray(params[k]) for k in cls.BOOK_NAMES}
        W1, W2, W3 = arrays["W1"], arrays["W2"], arrays["W3"]
        if W1.ndim != 4 or W2.ndim != 2 or W3.ndim != 2:
            raise ValueError(
                f"expected W1 (FN, C, FH, FW), W2 and W3 matrices, got shapes {W1.shape}, "
                f"{W2.shape}, {W3.shape}"
            )
        model = cls(input_dim, W1.shape[0], W1.shape[2], W2.shape[1], W3.shape[1], rng=0)
        dtype = np.result_type(*arrays.values())
        for p in model.parameters():
            p.data = p.data.astype(dtype)
        model.load_state_dict({cls.BOOK_NAMES[k]: a for k, a in arrays.items()})
        return model


class DeepConvNet(Sequential):
    """The book's chapter-8 network: six 3x3 convolutions (16, 16, 32, 32, 64, 64 filters)
    with ReLU, a 2x2 max pool after every second one, affine (50) - ReLU - dropout 0.5 -
    affine (10) - dropout 0.5, giving scores (logits).

    The convolutions pad by 1, except the fourth, which pads by 2 as the
    book's code does (28x28 images end as 64 x 4 x 4). Weights are He by
    default (`init` as for `Linear`); `rng` also seeds the dropout masks.
    """

    def __init__(
        self,
        input_dim: tuple[int, int, int] = (1, 28, 28),
        hidden_size: int = 50,
        output_size: int = 10,
        init: str | float = "he",
        rng: Generator = None,
    ) -> None:
        c, h, w = input_dim
        rng = np.random.default_rng(rng)
        layers: list[Module] = []
        for i, (n_out, pad) in enumerate([(16, 1), (16, 1), (32, 1), (32, 2), (64, 1), (64, 1)]):
            layers += [Conv2d(c, n_out, 3, pad=pad, init=init, rng=rng), ReLU()]
            c, h, w = n_out, h + 2 * pad - 2, w + 2 * pad - 2
            if i % 2:
                layers.append(MaxPool2d(2))
                h, w = h // 2, w // 2
        super().__init__(
            *layers, Flatten(), Linear(c * h * w, hidden_size, init=init, rng=rng), ReLU(),
            Dropout(0.5, rng), Linear(hidden_size, output_size, init=init, rng=rng),
            Dropout(0.5, rng),
        )  # fmt: skip
