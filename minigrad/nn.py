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

import numbers
import os
import zipfile
from collections.abc import Callable, Iterator, Mapping
from typing import Any, BinaryIO, NamedTuple

import numpy as np

from minigrad import functional as F
from minigrad._files import write_atomically
from minigrad.engine import Tensor, TensorLike, get_default_dtype, no_grad

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
                isinstance(value, bool | int | float | str)
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
            if isinstance(value, Parameter | Module):
                yield name, value
            elif isinstance(value, list | tuple):
                for i, item in enumerate(value):
                    if isinstance(item, Parameter | Module):
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
        """Copies of the parameters' arrays, by dotted name."""
        return {name: p.data.copy() for name, p in self.named_parameters()}

    def load_state_dict(self, state: dict[str, Any], strict: bool = True) -> LoadResult:
        """Copy arrays into the parameters with the same names, cast to each parameter's dtype.

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
        params = dict(self.named_parameters())
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
