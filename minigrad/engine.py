"""The engine: `Tensor`, the graph it records, and reverse-mode backprop.

An op (declared with `minigrad.ops.op`; the set is `minigrad.functional`) is
a NumPy forward plus one vector-Jacobian product (VJP) per input. Calling an
op on tensors that require grad records a `Node` (the op, its inputs and
attributes) on the output tensor, so an ordinary Python expression builds
the graph. `Tensor.backward` walks that graph once, outputs before inputs,
feeding each node's gradient to its VJPs.

The VJPs are written with operators and ops that work on NumPy arrays and on
tensors alike. For a first-order backward they get plain arrays (no graph, no
overhead); with `create_graph=True` they get tensors, so the backward pass is
itself recorded and can be differentiated again.

Ownership, to keep memory flat: a tensor holds its node, a node holds its
inputs, and nothing points back from a node to its output, so a graph is
freed by reference counting as soon as its output is dropped.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import os
import sys
from collections.abc import Iterable, Iterator, Sequence
from heapq import heappop, heappush
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from minigrad.ops import Op

TensorLike = Any  # a Tensor, an ndarray, or a Python number / nested list


class _State:
    grad_enabled = True
    anomaly = False
    default_dtype: type = np.float32
    last_change = -1  # the node count when an array was last changed in place (mark_changed)
    sweeps = 0  # backward sweeps run so far (sweep_count)


def set_default_dtype(dtype: Any) -> None:
    """Set the float dtype that Python scalars and lists become (float32 by default)."""
    dtype = np.dtype(dtype)
    if dtype.kind != "f":
        raise TypeError(f"the default dtype must be a float dtype, got {dtype}")
    _State.default_dtype = dtype.type


def get_default_dtype() -> np.dtype:
    return np.dtype(_State.default_dtype)


# ---------------------------------------------------------------- grad modes


@contextlib.contextmanager
def _grad_mode(enabled: bool) -> Iterator[None]:
    previous = _State.grad_enabled
    _State.grad_enabled = enabled
    try:
        yield
    finally:
        _State.grad_enabled = previous


def no_grad() -> contextlib.AbstractContextManager[None]:
    """`with no_grad():` ops record nothing (inference, optimizer updates)."""
    return _grad_mode(False)


def enable_grad() -> contextlib.AbstractContextManager[None]:
    """`with enable_grad():` ops record again, even inside `no_grad`."""
    return _grad_mode(True)


def is_grad_enabled() -> bool:
    return _State.grad_enabled


class AnomalyError(FloatingPointError):
    """A NaN or inf appeared inside `detect_anomaly()`."""


@contextlib.contextmanager
def detect_anomaly() -> Iterator[None]:
    """Raise `AnomalyError` as soon as any op's forward or backward makes NaN or inf.

    The error names the op and the line of user code that created its node.
    Outside this context the only cost is one flag test per op.
    """
    previous = _State.anomaly
    _State.anomaly = True
    try:
        with np.errstate(all="ignore"):
            yield
    finally:
        _State.anomaly = previous


_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))


def _user_line() -> str:
    """The innermost stack frame outside minigrad, as 'file:line in function'."""
    frame = sys._getframe(1)
    while frame is not None and frame.f_code.co_filename.startswith(_PACKAGE_DIR):
        frame = frame.f_back
    if frame is None:
        return "<unknown>"
    return f"{frame.f_code.co_filename}:{frame.f_lineno} in {frame.f_code.co_name}"


def _check_finite(array: np.ndarray, what: str, node: Node | None, op: Op) -> None:
    if np.issubdtype(array.dtype, np.floating) and not np.isfinite(array).all():
        kind = "NaN" if np.isnan(array).any() else "inf"
        where = node.where if node is not None and node.where else _user_line()
        raise AnomalyError(
            f"{op.name} produced {kind} in its {what}; the op was created at {where}"
        )


# ---------------------------------------------------------------- recording an op


def apply(op_: Op, args: tuple, attrs: dict) -> Any:
    """Run `op_` (see `minigrad.ops.op`) on `args` and keyword `attrs`: plain arrays in give
    a plain array out; tensors in give a tensor, and record a node if one requires grad."""
    if attrs and any(isinstance(v, Tensor) for v in attrs.values()):
        args, attrs = op_.bind(args, attrs)
    arrays = []
    has_tensor = record = False
    for a in args:
        if isinstance(a, Tensor):
            has_tensor = True
            record = record or a._requires_grad
            arrays.append(a.data)
        else:
            arrays.append(a)
    try:
        if op_.check is not None:
            op_.check(*arrays, **attrs)
        # Most ops take no attributes: the plain call skips building keyword arguments.
        y = op_.forward(*arrays, **attrs) if attrs else op_.forward(*arrays)
    except ValueError as e:
        shapes = ", ".join(str(a.shape) for a in arrays if isinstance(a, np.ndarray))
        message = str(e) if str(e).startswith(f"{op_.name}: ") else f"{op_.name}: {e}"
        raise ValueError(f"{message} (input shapes: {shapes})") from None
    except FloatingPointError as e:  # NumPy's own, under np.seterr(...="raise"): name the op
        if isinstance(e, AnomalyError) or str(e).startswith(f"{op_.name}: "):
            raise
        raise FloatingPointError(f"{op_.name}: {e} (in its forward)") from None
    saved = None
    if op_.saves:
        y, saved = y
    if not has_tensor:
        return y
    out = _wrap(y if type(y) is np.ndarray else np.asarray(y))
    if record and _State.grad_enabled:
        if op_.without_vjp:
            op_.refuse_grad(args)
        out._requires_grad = True
        out._node = Node(op_, args, arrays, attrs, saved)
    if _State.anomaly:
        _check_finite(out.data, "forward output", out._node, op_)
    return out


class Node:
    """What one recorded op keeps for backward: the op, its inputs and attributes.

    `inputs` are the op's arguments as given (tensors, arrays, numbers);
    `arrays` the same with tensors unwrapped, as the forward got them and the
    VJPs get them; `saved` is the forward's extra work (see `minigrad.ops.op`).
    `seq` counts up over all nodes, so a node's inputs come before it.
    Backward without `retain_graph` sets `inputs`, `arrays` and `saved` to
    None: the graph's memory is freed, the node itself stays on its output.
    """

    __slots__ = ("op", "inputs", "arrays", "attrs", "saved", "seq", "where")

    def __init__(
        self, op_: Op, inputs: tuple, arrays: list, attrs: dict, saved: Any = None
    ) -> None:
        self.op, self.inputs, self.arrays = op_, inputs, arrays
        self.attrs, self.saved = attrs, saved
        self.seq = next(_node_count)
        self.where = _user_line() if _State.anomaly else None

    @property
    def freed(self) -> bool:
        """Whether backward has released what this node kept."""
        return self.inputs is None


_node_count = itertools.count()


# ---------------------------------------------------------------- Tensor


def _as_array(data: Any, dtype: Any) -> np.ndarray:
    if isinstance(data, Tensor):
        data = data.data
    if dtype is not None:
        return np.asarray(data, dtype=dtype)
    if isinstance(data, (np.ndarray, np.generic)):
        return np.asarray(data)
    array = np.asarray(data)
    if array.dtype.kind in "iuf":  # Python numbers and lists take the default float dtype
        array = array.astype(_State.default_dtype)
    return array


class Tensor:
    """An ndarray that remembers how it was computed, for backprop.

    NumPy float arrays keep their dtype (and are not copied); Python scalars
    and lists become the default float dtype (float32).
    """

    __slots__ = (
        "data", "grad", "_requires_grad", "name", "_node", "_retain_grad", "_changed_at",
        "__weakref__",
    )  # fmt: skip
    __array_ufunc__ = None  # so `ndarray + tensor` calls Tensor.__radd__
    __hash__ = object.__hash__  # backward keys its dicts by tensor; == (methods.py) is elementwise

    def __init__(
        self, data: TensorLike, requires_grad: bool = False, name: str | None = None, dtype=None
    ) -> None:
        self.data = _as_array(data, dtype)
        self.grad: Tensor | None = None
        self.name = name
        self._node: Node | None = None
        self._retain_grad = False
        self.requires_grad = requires_grad

    @property
    def requires_grad(self) -> bool:
        """Whether backward computes a gradient for this tensor (always True for an op's output)."""
        return self._requires_grad

    @requires_grad.setter
    def requires_grad(self, value: bool) -> None:
        if value and self.data.dtype.kind != "f":
            raise TypeError(
                f"only floating-point tensors can require gradients, got dtype {self.data.dtype}; "
                "convert first, e.g. Tensor(data.astype(np.float32), requires_grad=True)"
            )
        if not value and self._node is not None:  # its inputs would silently get no gradient
            raise RuntimeError(
                "requires_grad can only be turned off on a leaf tensor, not on the output of "
                f"{self._node.op.name}; use .detach() for a copy cut from the graph"
            )
        self._requires_grad = bool(value)

    # --- array-like attributes
    shape = property(lambda self: self.data.shape)
    ndim = property(lambda self: self.data.ndim)
    size = property(lambda self: self.data.size)
    dtype = property(lambda self: self.data.dtype)
    is_leaf = property(lambda self: self._node is None, doc="True unless an op made this tensor.")
    creator = property(
        lambda self: self._node,
        doc="The `Node` of the op that made this tensor (None for a leaf): the graph, for tools.",
    )

    def requires_grad_(self, requires_grad: bool = True) -> Tensor:
        """Set `requires_grad` in place and return this tensor, as PyTorch's method does."""
        self.requires_grad = requires_grad
        return self

    def detach(self) -> Tensor:
        """The same data, cut from the graph."""
        return _wrap(self.data)

    def zero_grad(self) -> None:
        self.grad = None

    def retain_grad(self) -> None:
        """Keep this non-leaf tensor's gradient in `.grad` after backward."""
        self._retain_grad = True

    def backward(
        self, grad: TensorLike | None = None, retain_graph: bool = False, create_graph: bool = False
    ) -> None:
        """Accumulate d(self)/d(leaf) into every leaf's `.grad` that requires grad.

        `grad` is the upstream gradient, needed unless self holds one element.
        The graph's saved values are freed afterwards unless `retain_graph`.
        `create_graph` records the backward pass for higher-order gradients.
        """
        if not self._requires_grad:
            raise RuntimeError(
                "backward() on a tensor that does not require grad: no input of the "
                "expression had requires_grad=True (or it was computed under no_grad())"
            )
        _backprop([self], [grad], retain_graph, create_graph, None)


def tensor(
    data: TensorLike, requires_grad: bool = False, name: str | None = None, dtype=None
) -> Tensor:
    """Make a Tensor (same as `Tensor(...)`)."""
    return Tensor(data, requires_grad=requires_grad, name=name, dtype=dtype)


def _wrap(data: np.ndarray) -> Tensor:
    """A tensor around `data` as it is, with no checks: the engine's own constructor,
    for the two or three tensors it makes per op (Tensor() converts and checks)."""
    t = _new(Tensor)
    t.data = data
    t.grad = None
    t._requires_grad = False
    t.name = None
    t._node = None
    t._retain_grad = False
    return t


_new = object.__new__


def unwrap(x: Any) -> Any:
    """x's array if x is a Tensor, else x itself (for code that takes both)."""
    return x.data if isinstance(x, Tensor) else x


# ---------------------------------------------------------------- backprop


def mark_changed(tensors: Iterable[Tensor]) -> None:
    """Note that these tensors' arrays were just changed in place (an in-place operator,
    an optimizer step), on the node count, so backward can tell it from a later change."""
    stamp = _State.last_change = next(_node_count)
    for t in tensors:
        t._changed_at = stamp


def _check_unchanged(out: Tensor, node: Node) -> None:
    """Refuse to backprop through a node whose input or output array changed in place
    after it was recorded: its gradient rule would read the new values."""
    for x in (out, *node.inputs):
        if isinstance(x, Tensor) and getattr(x, "_changed_at", -1) > node.seq:
            role = "output" if x is out else "input"
            raise RuntimeError(
                f"an {role} of {node.op.name} (shape {x.shape}) was changed in place after "
                "the op used it, so its gradient would be wrong; call backward() before "
                "changing it (an optimizer's step() comes after loss.backward()), or compute "
                "the graph again"
            )


_FREED = (
    "trying to backward through the graph a second time: its saved values were freed "
    "after the first backward(). Pass retain_graph=True to the first backward() call "
    "if you need to backward through the same graph again."
)


@functools.cache
def _ones(shape: tuple, dtype: np.dtype) -> np.ndarray:
    """A shared read-only seed of ones (no VJP writes to its upstream gradient)."""
    ones = np.ones(shape, dtype)
    ones.flags.writeable = False
    return ones


def _seed(root: Tensor, grad: TensorLike | None) -> np.ndarray:
    if grad is None:
        if root.data.size != 1:
            raise RuntimeError(
                f"without an upstream gradient the output must have one element, but this tensor "
                f"has shape {root.shape}; pass backward's grad= (grad()'s grad_outputs=) an array "
                "of that shape, or reduce the output (e.g. .sum())"
            )
        return _ones(root.data.shape, root.data.dtype)
    seed = np.array(unwrap(grad), dtype=root.data.dtype)  # a copy: it may become a .grad
    if seed.shape != root.data.shape:
        raise ValueError(f"grad has shape {seed.shape} but the output has shape {root.shape}")
    return seed


def accumulate_grad(t: Tensor, g: Any, create_graph: bool, taken: set[int]) -> None:
    """Add the gradient `g` into `t.grad`, as backward does for a leaf (or a retained non-leaf).

    `taken` holds, by id, the arrays already given to a `.grad` in this sweep
    (see `claim`); `create_graph` says whether `g` is a recorded tensor.
    """
    if t.grad is not None:
        # asarray: NumPy adds two 0-d arrays into a scalar, which in-place updates cannot change
        t.grad = t.grad + g if create_graph else _wrap(np.asarray(t.grad.data + g))
    elif create_graph:  # a recorded copy (g * 1) where a plain one would cut the graph
        t.grad = g if claim(unwrap(g), taken) else g * 1
    else:
        t.grad = _wrap(_own(g, taken))


def _own(g: np.ndarray, taken: set[int]) -> np.ndarray:
    """g, or a copy of it if it is read-only or its memory is already another gradient's."""
    return g if claim(g, taken) else np.array(g)


def claim(g: np.ndarray, taken: set[int]) -> bool:
    """Whether g may become a `.grad` as it is, which then claims its memory in `taken`.

    The engine's one rule for owning gradient memory: g must be writable (not
    a broadcast view or a NumPy scalar) and share no memory with an array
    already claimed. `add` hands one array to both its inputs, and `reshape`
    a view of its upstream gradient; without this rule, scaling one `.grad` in
    place (clipping by hand) would change another.
    """
    base = g if g.base is None else g.base  # a view's base is the array that owns the memory
    if not g.flags.writeable or id(base) in taken:
        return False
    taken.add(id(base))
    return True


def _seed_roots(
    roots: list[Tensor], grads_out: Sequence, create_graph: bool, taken: set[int]
) -> tuple[dict[Tensor, Any], list[tuple[int, Tensor]]]:
    """Where a sweep starts: each root's seed gradient, and the heap of roots with a node."""
    grads: dict[Tensor, Any] = {}
    queue: list[tuple[int, Tensor]] = []
    for root, g in zip(roots, grads_out, strict=True):
        seed = _seed(root, g)  # for a tensor g under create_graph: checks its shape only
        if create_graph:
            seed = g if isinstance(g, Tensor) else _wrap(seed)
            claim(seed.data, taken)  # the caller's tensor: a leaf's .grad gets a copy
        if root in grads:  # a root listed twice
            grads[root] = grads[root] + seed
        else:
            grads[root] = seed
            if root._node is not None:
                heappush(queue, (-root._node.seq, root))
    return grads, queue


def _finish_leaves(
    grads: dict[Tensor, Any], create_graph: bool, taken: set[int], write: bool
) -> None:
    """Give the leaves' gradients (what is left in `grads`) their leaf's dtype, and unless
    `grad()` only wants them returned, add each into its leaf's `.grad`."""
    for x, g in grads.items():
        if g.dtype is not x.data.dtype:
            g = grads[x] = g.astype(x.data.dtype)
        if not write:
            continue
        if create_graph or x.grad is not None:
            accumulate_grad(x, g, create_graph, taken)
        else:  # the usual case, inlined: a leaf's first gradient
            x.grad = _wrap(g if claim(g, taken) else np.array(g))


def _backprop(
    roots: list[Tensor],
    grads_out: Sequence[TensorLike | None],
    retain_graph: bool,
    create_graph: bool,
    wanted: Sequence[Tensor] | None,
) -> list | None:
    """Reverse-mode sweep. Writes `.grad` of leaves, or returns the grads of `wanted`.

    Nodes run newest first: every consumer of a tensor was recorded after it,
    so by the time a tensor comes off the heap all its gradient has arrived.
    That needs no separate topological sort and no recursion. Leaf gradients
    are written at the end, so an error part-way leaves every `.grad` as it was.
    """
    _State.sweeps += 1
    retain_graph = retain_graph or create_graph  # the new graph refers to the old one
    taken: set[int] = set()  # arrays already given to a .grad (see claim)
    found: dict[Tensor, Any] = {}  # the wanted non-leaves' gradients (grad())
    anomaly = _State.anomaly
    previous_mode = _State.grad_enabled
    _State.grad_enabled = create_graph  # record the backward pass only when asked to
    try:
        # grads: the gradient flowing into each tensor reached, summed over its uses;
        # queue: (-seq, tensor) for the non-leaves among them, newest node first.
        grads, queue = _seed_roots(roots, grads_out, create_graph, taken)
        while queue:
            t = heappop(queue)[1]
            node, g = t._node, grads.pop(t)
            if node.inputs is None:
                raise RuntimeError(_FREED)
            if _State.last_change > node.seq:  # something changed in place since the forward
                _check_unchanged(t, node)
            if g.dtype is not t.data.dtype:  # from ops on mixed dtypes: float32 gets float32
                g = g.astype(t.data.dtype)
            if wanted is not None:
                found[t] = g
            elif t._retain_grad:
                accumulate_grad(t, g, create_graph, taken)
            attrs = node.attrs if node.saved is None else {**node.attrs, "saved": node.saved}
            args, y = (node.inputs, t) if create_graph else (node.arrays, t.data)
            for i, x in enumerate(node.inputs):
                if not (isinstance(x, Tensor) and x._requires_grad):
                    continue
                vjp = node.op.vjps[i]
                if vjp is None:  # requires_grad turned on after the forward
                    raise RuntimeError(f"{node.op.name} has no gradient for its input {i}")
                try:
                    gx = vjp(g, y, *args, **attrs) if attrs else vjp(g, y, *args)
                except FloatingPointError as e:  # as in apply: name the op
                    if isinstance(e, AnomalyError):
                        raise
                    raise FloatingPointError(
                        f"{node.op.name}: {e} (in its gradient for input {i})"
                    ) from None
                if anomaly:
                    _check_finite(unwrap(gx), f"gradient for input {i}", node, node.op)
                prev = grads.get(x)
                if prev is None:
                    grads[x] = gx
                    if x._node is not None:
                        heappush(queue, (-x._node.seq, x))
                else:
                    grads[x] = prev + gx
            if not retain_graph:
                node.inputs = node.arrays = node.saved = None
        _finish_leaves(grads, create_graph, taken, write=wanted is None)
    finally:
        _State.grad_enabled = previous_mode
    if wanted is not None:
        found.update(grads)
        return [found.get(t) for t in wanted]  # an input listed twice gets its gradient twice
    return None


def sweep_count() -> int:
    """How many backward sweeps (`backward()`, `grad()`) have run in this process.

    A tool that runs user code, such as `Replay` tracing a step, tells from it
    whether that code took a gradient.
    """
    return _State.sweeps


def grad(
    outputs: Tensor | Sequence[Tensor],
    inputs: Tensor | Sequence[Tensor],
    grad_outputs: TensorLike | Sequence[TensorLike] | None = None,
    retain_graph: bool = False,
    create_graph: bool = False,
) -> tuple:
    """Gradients of `outputs` with respect to `inputs`, as a tuple; `.grad` is untouched.

    Like `torch.autograd.grad`. An input that the outputs do not depend on
    gets None. With `create_graph=True` the gradients are tensors in a graph of
    their own, so they can be differentiated again (Hessian-vector products).
    """
    # Anything but a list or tuple is one item, so a float gets "grad() takes tensors" below.
    outputs = list(outputs) if isinstance(outputs, list | tuple) else [outputs]
    inputs = list(inputs) if isinstance(inputs, list | tuple) else [inputs]
    if grad_outputs is None:
        grad_outputs = [None] * len(outputs)
    elif isinstance(grad_outputs, (Tensor, np.ndarray, np.generic, int, float)):
        grad_outputs = [grad_outputs]
    grad_outputs = list(grad_outputs)
    if len(grad_outputs) != len(outputs):
        raise ValueError(
            f"grad_outputs has {len(grad_outputs)} entries for {len(outputs)} outputs; give one "
            "per output, in a list (an array alone is the gradient of a single output)"
        )
    for t in (*outputs, *inputs):
        if not isinstance(t, Tensor):
            raise TypeError(f"grad() takes tensors, got {type(t).__name__}")
    for k, t in enumerate(outputs):
        if not t.requires_grad:  # else its inputs would get None, as if unrelated
            raise RuntimeError(
                f"grad(): output {k} does not require grad: no input of its expression had "
                "requires_grad=True (or it was computed under no_grad())"
            )
    results = _backprop(outputs, grad_outputs, retain_graph, create_graph, inputs)
    if create_graph:
        return tuple(results)
    taken: set[int] = set()
    return tuple(None if r is None else _wrap(_own(r, taken)) for r in results)
