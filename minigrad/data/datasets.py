"""Datasets: the `Dataset` protocol, `TensorDataset`, and small generated sets."""

from __future__ import annotations

from typing import Any

import numpy as np

from minigrad.engine import get_default_dtype


class Dataset:
    """A sized, indexable collection of samples; subclasses define both methods.

    `__getitem__(i)` returns one sample, usually a tuple such as `(x, t)`.
    """

    def __getitem__(self, index: int) -> Any:
        raise NotImplementedError(f"{type(self).__name__} must define __getitem__")

    def __len__(self) -> int:
        raise NotImplementedError(f"{type(self).__name__} must define __len__")


class TensorDataset(Dataset):
    """Arrays that share their first dimension, sample i being `(a[i] for a in arrays)`.

    Indexing with an integer array returns a whole batch in one fancy-index per
    array, which is how `DataLoader` gathers batches from it. Arrays keep their
    dtype; Python lists of floats take the default float dtype, as in
    `mg.tensor` (lists of ints stay integer labels).
    """

    def __init__(self, *arrays: np.ndarray) -> None:
        if not arrays:
            raise ValueError("TensorDataset needs at least one array")
        arrays = tuple(_column(a) for a in arrays)
        lengths = [len(a) if a.ndim else None for a in arrays]
        if None in lengths or len(set(lengths)) != 1:
            shapes = ", ".join(str(a.shape) for a in arrays)
            raise ValueError(
                f"TensorDataset arrays must share their first dimension, got shapes {shapes}"
            )
        self.arrays = arrays

    def __getitem__(self, index: int | np.ndarray) -> tuple[np.ndarray, ...]:
        return tuple(a[index] for a in self.arrays)

    def __len__(self) -> int:
        return len(self.arrays[0])


def _column(a: Any) -> np.ndarray:
    """An array as it is; a list of floats in the default dtype. Not the engine's _as_array,
    which makes integer lists float too: here they are labels."""
    if isinstance(a, np.ndarray):
        return a
    array = np.asarray(a)
    return array.astype(get_default_dtype()) if array.dtype.kind == "f" else array


def spiral(
    n_per_class: int = 100, n_classes: int = 3, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Interleaved spiral arms in the plane, one class per arm (the cs231n / DeZero toy set).

    Returns `x` float32 (N, 2) and `t` int64 (N,), N = n_per_class * n_classes,
    ordered class by class. Point i of an arm sits at radius i / (n_per_class - 1) and
    an angle that grows with the radius, plus Gaussian noise (std 0.2) drawn
    from `numpy.random.default_rng(seed)`, so the same seed gives the same set.
    """
    if n_per_class < 1 or n_classes < 1:
        raise ValueError(
            f"spiral needs n_per_class >= 1 and n_classes >= 1, got {n_per_class} and {n_classes}"
        )
    rng = np.random.default_rng(seed)
    radius = np.linspace(0.0, 1.0, n_per_class)
    xs, ts = [], []
    for c in range(n_classes):
        # Each arm sweeps 4 radians, starting 4 radians after the previous one.
        angle = 4.0 * c + 4.0 * radius + 0.2 * rng.standard_normal(n_per_class)
        xs.append(np.stack([radius * np.sin(angle), radius * np.cos(angle)], axis=1))
        ts.append(np.full(n_per_class, c, dtype=np.int64))
    return np.concatenate(xs).astype(np.float32), np.concatenate(ts)


# Inputs in the order the book lists them: (x1, x2) = 00, 10, 01, 11.
_GATE_INPUTS = ((0, 0), (1, 0), (0, 1), (1, 1))
_GATE_OUTPUTS = {
    "AND": (0, 0, 0, 1),
    "NAND": (1, 1, 1, 0),
    "OR": (0, 1, 1, 1),
    "XOR": (0, 1, 1, 0),
}
GATES: tuple[str, ...] = tuple(_GATE_OUTPUTS)


def gate(name: str) -> tuple[np.ndarray, np.ndarray]:
    """Truth table of a logic gate: `x` float32 (4, 2) and `t` float32 (4,).

    `name` is one of `GATES` ("AND", "NAND", "OR", "XOR"), in any case.
    """
    key = name.upper() if isinstance(name, str) else None
    if key not in _GATE_OUTPUTS:
        raise ValueError(f"unknown gate {name!r}; expected one of {', '.join(GATES)}")
    x = np.array(_GATE_INPUTS, dtype=np.float32)
    t = np.array(_GATE_OUTPUTS[key], dtype=np.float32)
    return x, t
