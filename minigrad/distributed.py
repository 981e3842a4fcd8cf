"""Data-parallel training over MPI: every rank holds the whole model and its share of each batch.

Launched as `mpiexec -n N python script.py`, each of the N processes (ranks)
runs the same script:

    from minigrad import distributed as dist
    dist.init()                                    # optional: the first call below does it
    model = nn.MLP([784, 50, 10], rng=0)
    dist.broadcast_parameters(model)               # every rank starts from rank 0's weights
    opt = dist.DistributedOptimizer(optim.SGD(model.parameters(), lr=0.1))
    loader = dist.DistributedLoader(dataset, batch_size=100, shuffle=True, generator=0)
    train.fit(model, opt, loader, epochs=5, progress=dist.rank() == 0)
    accuracy = dist.evaluate(model, x_test, t_test)  # the same figure on every rank

N ranks with batch B take exactly the global batches of N*B that one process
with `DataLoader(dataset, N*B, shuffle=True, generator=seed, drop_last=True)`
takes, and their averaged gradient is that process's gradient up to float
rounding (the sums run in another order). mpi4py (the `distributed` extra)
is imported on first use, never by `import minigrad`.

An exception on any rank aborts the whole job (MPI_Abort) after printing that
rank's traceback, so a failed rank never leaves the others waiting forever.
"""

from __future__ import annotations

import json
import sys
import time
import traceback
from collections.abc import Iterable, Iterator
from types import TracebackType
from typing import Any

import numpy as np

from minigrad import nn, optim, train
from minigrad.data import DataLoader, Dataset, TensorDataset
from minigrad.engine import Tensor, mark_changed

__all__ = [
    "init",
    "rank",
    "size",
    "barrier",
    "abort",
    "broadcast_parameters",
    "broadcast_optimizer_state",
    "DistributedOptimizer",
    "DistributedLoader",
    "evaluate",
    "average",
]

DEFAULT_TIMEOUT = 60.0  # seconds for all ranks to meet at init(): mpiexec starts them at once
DEFAULT_BUCKET_BYTES = 1 << 20

_MPI: Any = None  # the mpi4py.MPI module, once init() has run


def _mpi() -> Any:
    global _MPI
    if _MPI is None:
        init()
    return _MPI


def init(timeout: float = DEFAULT_TIMEOUT) -> None:
    """Start MPI, check that all ranks can reach each other, and make an exception abort the job.

    Every rank must call it (or any function of this module, which calls it).
    A rank that has not met all the others within `timeout` seconds prints
    which rank it is and how many it waited for, and aborts the job. With
    more than one rank, an uncaught exception prints the rank's traceback
    and calls MPI_Abort, which ends every rank (the default would leave
    the others blocked in their next all-reduce). Calling it again does nothing.
    """
    global _MPI
    if isinstance(timeout, bool) or not (isinstance(timeout, int | float) and timeout > 0):
        raise ValueError(f"timeout must be a number of seconds > 0, got {timeout!r}")
    if _MPI is not None:
        return
    try:
        from mpi4py import MPI
    except ModuleNotFoundError as e:
        raise ModuleNotFoundError(
            "minigrad.distributed needs mpi4py and an MPI library: "
            "pip install 'minigrad[distributed]'",
            name="mpi4py",
        ) from e
    comm = MPI.COMM_WORLD
    if comm.Get_size() > 1:
        sys.excepthook = _abort_on_exception
        # A non-blocking barrier polled against a clock: a blocking one would wait forever
        # for a rank that never comes.
        request = comm.Ibarrier()
        deadline = time.monotonic() + timeout
        while not request.Test():
            if time.monotonic() > deadline:
                _say(
                    f"rank {comm.Get_rank()} of {comm.Get_size()} could not reach the other "
                    f"ranks within {timeout:g} s (one has not started, is stuck, or the hosts "
                    "cannot connect); aborting the job"
                )
                _abort(comm, 1)
            time.sleep(0.001)
    _MPI = MPI


def _say(message: str) -> None:
    sys.stderr.write(f"minigrad.distributed: {message}\n")
    sys.stderr.flush()


def _abort(comm: Any, code: int) -> None:
    sys.stdout.flush()
    sys.stderr.flush()
    # The launcher tears the job down as soon as it hears of the abort,
    # sometimes before it has passed on what this rank just wrote: give it a moment.
    time.sleep(0.2)
    comm.Abort(code)


def _abort_on_exception(
    kind: type[BaseException], error: BaseException, tb: TracebackType | None
) -> None:
    comm = _MPI.COMM_WORLD
    text = "".join(traceback.format_exception(kind, error, tb))
    _say(f"rank {comm.Get_rank()} of {comm.Get_size()} failed; aborting the job:\n{text}")
    _abort(comm, 1)


def rank() -> int:
    """This process's rank in MPI_COMM_WORLD, 0 to size() - 1."""
    return _mpi().COMM_WORLD.Get_rank()


def size() -> int:
    """The number of ranks (processes) in the job."""
    return _mpi().COMM_WORLD.Get_size()


def barrier() -> None:
    """Wait until every rank has called it (rank 0 downloads MNIST while the others wait)."""
    _mpi().COMM_WORLD.Barrier()


def abort(code: int = 1) -> None:
    """End every rank of the job now, with exit status `code` (after flushing this rank's output).

    For an error that one rank finds and handles itself: returning would leave
    the other ranks waiting for it in their next all-reduce.
    """
    _abort(_mpi().COMM_WORLD, code)


def _tensors(params: nn.Module | Iterable[Tensor]) -> list[Tensor]:
    if isinstance(params, Tensor):
        raise TypeError("pass a Module or a list of tensors, not a single Tensor")
    tensors = list(params.parameters() if isinstance(params, nn.Module) else params)
    for p in tensors:
        if not isinstance(p, Tensor):
            raise TypeError(f"expected tensors, got {type(p).__name__}")
    return tensors


def broadcast_parameters(params: nn.Module | Iterable[Tensor], root: int = 0) -> None:
    """Overwrite every rank's parameters with rank `root`'s, in place."""
    MPI = _mpi()
    tensors = _tensors(params)
    for p in tensors:
        if not p.data.flags.c_contiguous or not p.data.flags.writeable:
            raise ValueError(
                f"a parameter of shape {p.shape} is not a writable contiguous array; "
                "give it a copy (np.array(a))"
            )
        MPI.COMM_WORLD.Bcast(p.data, root=root)  # one message each: this happens once
    mark_changed(tensors)


def broadcast_optimizer_state(optimizer: optim.Optimizer, root: int = 0) -> None:
    """Give every rank rank `root`'s optimizer state (momentum, Adam's moments and step count).

    Needed when rank `root` resumed from saved state; on a fresh start all
    states are empty and this only checks that. The layout travels as JSON
    text in a byte buffer, the arrays as themselves: nothing is pickled.
    """
    if not isinstance(optimizer, optim.Optimizer):
        raise TypeError(f"expected a minigrad optimizer, got {type(optimizer).__name__}")
    comm = _mpi().COMM_WORLD
    state = optimizer.state
    layout = []
    for k, entry in enumerate(state):
        for key, value in sorted(entry.items()):
            if isinstance(value, np.ndarray):
                layout.append([k, key, "array", list(value.shape), value.dtype.str])
            elif isinstance(value, int | float) and not isinstance(value, bool):
                layout.append([k, key, type(value).__name__, value])
            else:
                raise TypeError(
                    f"optimizer state {key!r} of parameter {k} is a {type(value).__name__}; "
                    "only arrays and numbers can be broadcast"
                )
    text = np.frombuffer(json.dumps([len(state), layout]).encode(), np.uint8)
    length = np.array([text.size], np.int64)
    comm.Bcast(length, root=root)
    buffer = text.copy() if comm.Get_rank() == root else np.empty(length[0], np.uint8)
    comm.Bcast(buffer, root=root)
    count, layout = json.loads(buffer.tobytes())
    if count != len(state):
        raise ValueError(
            f"rank {root}'s optimizer holds {count} parameters, this rank's {len(state)}"
        )
    for k, key, kind, *rest in layout:
        if kind == "array":
            shape, dtype = tuple(rest[0]), np.dtype(rest[1])
            value = state[k].get(key)
            if not (
                isinstance(value, np.ndarray) and value.shape == shape and value.dtype == dtype
            ):
                value = state[k][key] = np.empty(shape, dtype)
            comm.Bcast(value, root=root)
        else:
            state[k][key] = int(rest[0]) if kind == "int" else float(rest[0])


class _Bucket:
    """Gradients of several parameters of one dtype, packed into one contiguous array."""

    def __init__(self, members: list[tuple[int, Tensor]], dtype: np.dtype) -> None:
        self.members = []  # (index in the optimizer's list, parameter, offset)
        offset = 0
        for k, p in members:
            self.members.append((k, p, offset))
            offset += p.size
        self.buffer = np.empty(offset, dtype)

    def pack(self) -> list[bool]:
        """Copy the gradients in; a missing one counts as zeros. Returns which were there."""
        present = []
        for _, p, offset in self.members:
            view = self.buffer[offset : offset + p.size]
            if p.grad is None:
                view[...] = 0
            elif p.grad.shape != p.shape:
                raise ValueError(
                    f"a parameter of shape {p.shape} has a .grad of shape {p.grad.shape}; "
                    "a gradient must have its parameter's shape"
                )
            else:
                view[...] = p.grad.data.reshape(-1)
            present.append(p.grad is not None)
        return present

    def unpack(self, present: list[bool], scale: float) -> None:
        """Scale the reduced sum into the mean and hand each parameter a view of it as .grad."""
        self.buffer *= self.buffer.dtype.type(scale)
        for (_, p, offset), there in zip(self.members, present, strict=True):
            if there:
                p.grad = Tensor(self.buffer[offset : offset + p.size].reshape(p.shape))


def _make_buckets(params: list[Tensor], bucket_bytes: int) -> list[_Bucket]:
    """Last parameters first (the order a backward finishes them), at most bucket_bytes each
    unless one parameter alone is bigger; a new bucket wherever the dtype changes."""
    buckets: list[_Bucket] = []
    members: list[tuple[int, Tensor]] = []
    nbytes = 0
    for k in reversed(range(len(params))):
        p = params[k]
        if p.dtype.kind != "f":
            raise TypeError(f"a parameter of dtype {p.dtype} cannot be averaged; expected floats")
        if members and (p.dtype != members[0][1].dtype or nbytes + p.data.nbytes > bucket_bytes):
            buckets.append(_Bucket(members, members[0][1].dtype))
            members, nbytes = [], 0
        members.append((k, p))
        nbytes += p.data.nbytes
    if members:
        buckets.append(_Bucket(members, members[0][1].dtype))
    return buckets


class DistributedOptimizer(optim.Optimizer):
    """Wraps any minigrad optimizer so that `step()` first averages the gradients over all ranks.

    The gradients travel in contiguous buckets of at most `bucket_bytes`
    (the last layers' first), each all-reduced in place as one buffer. With
    `overlap=False` each bucket is reduced in turn (blocking) and then the
    wrapped optimizer steps once. With `overlap=True` each bucket's
    non-blocking all-reduce starts as soon as the bucket is packed, and each
    bucket's parameters are updated (the wrapped optimizer stepping on them
    alone) as soon as their bucket is done, while later ones are in flight. BENCHMARKS.md ("More than one process") measures both; the
    faster, blocking one is the default. After `step()`, each `.grad` holds
    the averaged gradient, a view of a bucket valid until the next step.

    It is an `optim.Optimizer`, so `mg.Replay(..., optimizer=opt)` takes it:
    the fused step hands its gradients to `step()` and so to the all-reduce.
    """

    def __init__(
        self,
        optimizer: optim.Optimizer,
        *,
        overlap: bool = False,
        bucket_bytes: int = DEFAULT_BUCKET_BYTES,
    ) -> None:
        # No super().__init__(): the wrapped optimizer keeps the parameters, state and lr.
        if isinstance(optimizer, DistributedOptimizer):
            raise TypeError("the optimizer is already a DistributedOptimizer")
        if not isinstance(optimizer, optim.Optimizer):
            raise TypeError(
                f"DistributedOptimizer wraps a minigrad optimizer, such as optim.SGD(...), got "
                f"{type(optimizer).__name__}"
            )
        if isinstance(bucket_bytes, bool) or not isinstance(bucket_bytes, int) or bucket_bytes < 1:
            raise ValueError(f"bucket_bytes must be an int >= 1, got {bucket_bytes!r}")
        self.optimizer = optimizer
        self.params = optimizer.params
        self.overlap = bool(overlap)
        self._comm = _mpi().COMM_WORLD
        self._buckets = _make_buckets(self.params, bucket_bytes)

    @property
    def lr(self) -> float:
        """The wrapped optimizer's learning rate."""
        return self.optimizer.lr

    @lr.setter
    def lr(self, value: float) -> None:
        self.optimizer.lr = value

    @property
    def state(self) -> list[dict[str, Any]]:  # type: ignore[override]
        """The wrapped optimizer's per-parameter state."""
        return self.optimizer.state

    def zero_grad(self) -> None:
        self.optimizer.zero_grad()

    def step(self) -> None:
        """Average every gradient over the ranks, then update as the wrapped optimizer does."""
        scale = 1.0 / self._comm.Get_size()
        if not self.overlap:
            for bucket in self._buckets:
                present = bucket.pack()
                self._comm.Allreduce(_MPI.IN_PLACE, bucket.buffer, op=_MPI.SUM)
                bucket.unpack(present, scale)
            self.optimizer.step()
            return
        presents, requests = [], []
        for bucket in self._buckets:  # each bucket leaves while the next is being packed
            presents.append(bucket.pack())
            requests.append(self._comm.Iallreduce(_MPI.IN_PLACE, bucket.buffer, op=_MPI.SUM))
        # The wrapped step skips a parameter whose .grad is None: clear all, and give each
        # bucket's parameters their averaged gradient only for that bucket's update.
        for p in self.params:
            p.grad = None
        done = []
        for bucket, present, request in zip(self._buckets, presents, requests, strict=True):
            request.Wait()
            bucket.unpack(present, scale)
            self.optimizer.step()
            for _, p, _ in bucket.members:
                done.append((p, p.grad))
                p.grad = None
        for p, g in done:
            p.grad = g


class _Picked(Dataset):
    """The samples of `dataset` at `index`, in that order."""

    def __init__(self, dataset: Dataset, index: np.ndarray) -> None:
        self.dataset, self.index = dataset, index

    def __getitem__(self, i: int) -> Any:
        return self.dataset[int(self.index[i])]

    def __len__(self) -> int:
        return len(self.index)


class DistributedLoader:
    """This rank's share of every global batch: batches of `batch_size` from the global order.

    Each epoch draws one permutation of the whole dataset from `generator`
    (the same seed on every rank gives the same order everywhere, the order
    `DataLoader(dataset, size() * batch_size, shuffle=True, generator=seed)`
    draws; with None, rank 0 picks a seed for all; a Generator of your own must
    be seeded alike on every rank); global batch b is that order's samples
    b*N*B to (b+1)*N*B, and
    rank r takes its r-th slice of B. The last global batch, if incomplete,
    is left out (drop_last), so that every rank takes the same number of
    steps and every step averages equal shares.
    """

    def __init__(
        self,
        dataset: Dataset,
        batch_size: int,
        shuffle: bool = False,
        generator: int | np.random.Generator | None = None,
    ) -> None:
        # DataLoader checks batch_size and the dataset as it always does
        DataLoader(dataset, batch_size)
        self.dataset = dataset
        self.batch_size = int(batch_size)
        self.global_batch = self.batch_size * size()
        if len(dataset) < self.global_batch:
            raise ValueError(
                f"the dataset has {len(dataset)} samples, fewer than one global batch of "
                f"{self.global_batch} ({size()} ranks x batch {self.batch_size})"
            )
        self.shuffle = shuffle
        if generator is None:  # a fresh seed, but the same on every rank: rank 0's
            seed = np.random.default_rng().integers(2**63, size=2, dtype=np.uint64)
            _mpi().COMM_WORLD.Bcast(seed, root=0)
            generator = np.random.default_rng(seed)
        self.generator = np.random.default_rng(generator)

    def __len__(self) -> int:
        return len(self.dataset) // self.global_batch

    def share(self, order: np.ndarray) -> np.ndarray:
        """This rank's samples of an epoch's global order, batch after batch."""
        B, start = self.batch_size, rank() * self.batch_size
        steps = order[: len(self) * self.global_batch].reshape(len(self), self.global_batch)
        return steps[:, start : start + B].reshape(-1)

    def __iter__(self) -> Iterator[tuple[Tensor, ...]]:
        n = len(self.dataset)
        order = self.generator.permutation(n) if self.shuffle else np.arange(n)
        index = self.share(order)
        if isinstance(self.dataset, TensorDataset):  # gathered in one fancy index per array
            picked: Dataset = TensorDataset(*self.dataset[index])
        else:
            picked = _Picked(self.dataset, index)
        yield from DataLoader(picked, self.batch_size)


def average(values: np.ndarray | list[float]) -> np.ndarray:
    """The element-wise mean over the ranks of equal-shaped arrays, as float64."""
    MPI = _mpi()
    total = np.array(values, np.float64)
    MPI.COMM_WORLD.Allreduce(MPI.IN_PLACE, total, op=MPI.SUM)
    return total / size()


def evaluate(model: nn.Module, x: np.ndarray, t: np.ndarray, batch_size: int = 1000) -> float:
    """Accuracy of `model` on (x, t), each rank scoring its slice; the same value on every rank.

    The correct answers are counted on each slice and summed over the ranks,
    so the figure equals `train.evaluate` in one process.
    """
    MPI = _mpi()
    if len(x) == 0 or len(x) != len(t):
        raise ValueError(f"cannot evaluate on {len(x)} samples with {len(t)} labels")
    r, n = rank(), size()
    lo, hi = len(x) * r // n, len(x) * (r + 1) // n
    counts = np.zeros(2, np.float64)  # correct answers, samples
    if hi > lo:
        accuracy = train.evaluate(model, x[lo:hi], t[lo:hi], batch_size)
        counts[:] = round(accuracy * (hi - lo)), hi - lo
    MPI.COMM_WORLD.Allreduce(MPI.IN_PLACE, counts, op=MPI.SUM)
    return float(counts[0] / counts[1])
