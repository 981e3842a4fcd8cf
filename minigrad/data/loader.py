"""`DataLoader`: batches of a dataset as tuples of tensors."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np

from minigrad.data.datasets import Dataset, TensorDataset
from minigrad.engine import Tensor


class DataLoader:
    """Iterate over a dataset in batches, each a tuple of `Tensor`s.

    A `TensorDataset` (and so `MNIST`) is gathered with one integer-array index
    per batch; any other `Dataset` is read sample by sample and each field of
    its samples (a tuple or list such as `(x, t)`, or one array) is stacked
    with `np.stack`. With `shuffle=True` every epoch (every `iter()`)
    draws a fresh permutation from a NumPy Generator: pass a seed (or a
    `numpy.random.Generator`) as `generator` for reproducible runs; with None
    the order differs from run to run.
    """

    def __init__(
        self,
        dataset: Dataset,
        batch_size: int = 1,
        shuffle: bool = False,
        drop_last: bool = False,
        generator: int | np.random.Generator | None = None,
    ) -> None:
        if isinstance(batch_size, bool) or not isinstance(batch_size, int | np.integer):
            raise TypeError(f"batch_size must be an int, got {type(batch_size).__name__}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        if len(dataset) == 0:
            raise ValueError("DataLoader got an empty dataset: there is nothing to batch")
        self.dataset = dataset
        self.batch_size = int(batch_size)
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.generator = np.random.default_rng(generator)

    def __len__(self) -> int:
        n = len(self.dataset)
        if self.drop_last:
            return n // self.batch_size
        return -(-n // self.batch_size)

    def __iter__(self) -> Iterator[tuple[Tensor, ...]]:
        n = len(self.dataset)
        order = self.generator.permutation(n) if self.shuffle else np.arange(n)
        for b in range(len(self)):
            index = order[b * self.batch_size : (b + 1) * self.batch_size]
            yield tuple(Tensor(a) for a in self._gather(index))

    def state_dict(self) -> dict[str, np.ndarray]:
        """The shuffling generator's state, as an array (`np.savez`-ready): with
        `load_state_dict` the next epochs come in the same order as they would have."""
        return {"generator": np.array(json.dumps(self.generator.bit_generator.state))}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore the generator's state from `state_dict`; nothing changes on a bad state."""
        try:
            saved = json.loads(str(np.asarray(state["generator"])))
            bits = type(self.generator.bit_generator)()
            bits.state = saved  # checks the name and every field
        except (KeyError, TypeError, ValueError) as e:
            raise ValueError(
                f"cannot load the DataLoader's state: expected {{'generator': the JSON "
                f"string state_dict() gives}} for a {type(self.generator.bit_generator).__name__} "
                f"generator ({type(e).__name__}: {e})"
            ) from None
        self.generator = np.random.Generator(bits)

    def _gather(self, index: np.ndarray) -> tuple[np.ndarray, ...]:
        if isinstance(self.dataset, TensorDataset):
            return self.dataset[index]
        samples = [self.dataset[int(i)] for i in index]
        if not isinstance(samples[0], tuple | list):  # a sample of one field
            return (_stack(samples, 0),)
        if len({len(s) for s in samples}) != 1:
            raise ValueError(
                f"{type(self.dataset).__name__} returned samples with different numbers of "
                f"fields ({sorted({len(s) for s in samples})}); expected the same tuple, "
                "such as (x, t), from every index"
            )
        return tuple(_stack(field, k) for k, field in enumerate(zip(*samples, strict=True)))


def _stack(values: list | tuple, field: int) -> np.ndarray:
    try:
        batch = np.stack(values)
    except ValueError as e:
        shapes = sorted({np.shape(v) for v in values})
        raise ValueError(
            f"cannot batch field {field} of the samples: they have shapes {shapes}, expected "
            "one shape for every sample"
        ) from e
    if batch.dtype == object:  # dicts, strings of objects...: a tensor cannot hold them
        raise TypeError(
            f"cannot batch field {field} of the samples: it holds {type(values[0]).__name__} "
            "values; a sample must be arrays or numbers (a tuple such as (x, t) for several)"
        )
    return batch
