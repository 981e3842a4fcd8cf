"""Datasets and batching: `Dataset`, `TensorDataset`, `DataLoader`, MNIST, spiral, logic gates."""

from minigrad.data.datasets import GATES, Dataset, TensorDataset, gate, spiral
from minigrad.data.loader import DataLoader
from minigrad.data.mnist import (
    MNIST,
    CorruptFileError,
    DownloadError,
    load_mnist,
    load_mnist_subset,
)

__all__ = [
    "GATES",
    "MNIST",
    "CorruptFileError",
    "DataLoader",
    "Dataset",
    "DownloadError",
    "TensorDataset",
    "gate",
    "load_mnist",
    "load_mnist_subset",
    "spiral",
]
