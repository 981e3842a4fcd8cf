"""Replay a recorded training step: trace once, re-run the same ops on new data.

Eager mode pays Python overhead on every op of every step (tensors, nodes,
the backward's heap, dispatch), which dominates on small nets. `Replay`
records the step once and keeps only the op sequence; each call then runs
the ops' NumPy forwards and VJPs on plain arrays:

    replay = Replay(lambda x, t: F.softmax_cross_entropy(model(x), t), x0, t0)
    for x, t in batches:
        opt.zero_grad()
        loss = replay(x, t)  # forward and backward; fills every parameter's .grad
        opt.step()

Given the optimizer, a call is the whole training step, with the update
fused in (`loss = step(x, t)` for the three lines above):

    step = Replay(lambda x, t: F.softmax_cross_entropy(model(x), t), x0, t0, optimizer=opt)

It updates the weights exactly as `replay(x, t); opt.step(); opt.zero_grad()`
would, bit for bit, and leaves the optimizer's parameters with no `.grad`.
No one sees those gradients, so plain SGD scales each in place and
subtracts it, as hand-written NumPy does, rather than making a scaled copy
the size of the weights (a gradient whose memory something else holds, such
as one array `add` gave to two parameters, is left intact).

What is fixed at trace time, and what is not:

- The example inputs are placeholders: each call replaces them with new
  arrays, which must have the same shapes and dtypes (else ValueError).
- Tensors are read live on every call, so in-place optimizer updates and
  `load_state_dict` are seen, frozen (requires_grad=False) parameters too.
  Trainable leaves get their `.grad` accumulated exactly as
  `loss.backward()` would, bit for bit (call `zero_grad()` yourself). Which
  leaves those are is fixed at trace time: a call after freezing or
  unfreezing a parameter raises RuntimeError; trace a new Replay. So does a
  call after a parameter or sub-module of a model that `fn` names (a
  variable it closes over, or a global) is replaced by another object
  (`model.fc.W = nn.Parameter(...)`): the replay would train the old one.
- Everything else is frozen: array constants, op attributes, Python control
  flow, shapes, and random ops. A dropout mask is drawn once and reused forever, so
  do not replay steps with dropout (or `training=True` randomness); use eager
  mode for those. Inside `fn`, compute with ops only: reading `x.data`,
  calling NumPy on an input, `detach()` and comparisons (`x > 0` gives a
  plain array) escape the trace and freeze that value. Labels (indices or
  one-hot rows) are inputs as they are: a value computed from them inside
  `fn`, where an op takes it with no gradient, is refused (TypeError). `x.detach()` on an
  input itself raises TypeError; the same on a value computed from an input
  cannot be told from a constant and is frozen silently. A gradient taken
  inside `fn` (`backward`, `grad`, a gradient penalty) is refused at trace
  time: its rules compute masks in NumPy, which would be frozen too.
"""

from __future__ import annotations

import functools
import inspect
import operator
from collections.abc import Callable
from typing import Any

import numpy as np

from minigrad import nn, optim
from minigrad.engine import (
    Node,
    Tensor,
    accumulate_grad,
    claim,
    enable_grad,
    mark_changed,
    sweep_count,
)
from minigrad.ops import NoGradientError


class Replay:
    """`fn(*example_inputs)`, a scalar loss built from ops, recorded for replay.

    Call with new arrays of the example inputs' shapes and dtypes: runs the
    recorded forward and backward, accumulates into the `.grad` of every
    trainable leaf, and returns the loss as a float. With `optimizer`, a call
    also runs `optimizer.step()` and `optimizer.zero_grad()`, fused (see the
    module's docstring).
    """

    def __init__(
        self,
        fn: Callable[..., Tensor],
        *example_inputs: Any,
        optimizer: optim.Optimizer | None = None,
    ) -> None:
        if optimizer is not None and not isinstance(optimizer, optim.Optimizer):
            raise TypeError(
                f"Replay: optimizer must be a minigrad optimizer, such as optim.SGD(...), got "
                f"{type(optimizer).__name__}"
            )
        arrays = [np.asarray(a.data if isinstance(a, Tensor) else a) for a in example_inputs]
        self.shapes = [(a.shape, a.dtype) for a in arrays]
        placeholders, loss = _trace(fn, arrays)
        if not isinstance(loss, Tensor) or loss.creator is None or loss.data.size != 1:
            raise TypeError("Replay: fn must return a one-element Tensor computed by ops")

        self._links = _links(fn)
        slots: dict[int, int] = {id(p): k for k, p in enumerate(placeholders)}
        # One value per slot; consts stay, the rest change. After the inputs, a slot that
        # always stays None: what a node that saves no work, or a parameter fn does not
        # reach, reads.
        self._env: list[Any] = [*arrays, None]
        nothing = len(arrays)
        # (slot, tensor, its requires_grad at trace time): every tensor leaf, read live
        self._live: list[tuple[int, Tensor, bool]] = []
        needs_grad = [False] * len(self._env)
        # Forward: (forward, its input values picked from the slots, whether it also returns
        # saved work (kept in the slot after its output's), output slot).
        # Backward, newest first: (input values' pick, output slot, saved work's slot,
        # ((vjp, input slot), ...)). Functions have the op's attributes bound.
        self._nodes: list[tuple[Callable, Callable, bool, int]] = []
        self._backward: list[tuple[Callable, int, int, tuple[tuple[Callable, int], ...]]] = []

        def slot_of(x: Any) -> int:
            if id(x) in slots:
                return slots[id(x)]
            _check_not_escaped(x, placeholders)
            slots[id(x)] = len(self._env)
            if isinstance(x, Tensor):
                self._live.append((len(self._env), x, x.requires_grad))
            self._env.append(x.data if isinstance(x, Tensor) else x)
            needs_grad.append(isinstance(x, Tensor) and x.requires_grad)
            return slots[id(x)]

        # Whether some op is the user's: its VJP might return a value of the call (an input,
        # its output) as a gradient, which the fused step must then not scale in place.
        # minigrad's own ops never do (tests/test_ops.py checks).
        self._foreign_ops = False
        # In creation order, so that the backward below runs newest first, as backward()
        # does: a gradient summed from several uses is then added up in the same order.
        for t in _recorded(loss):
            node = t.creator
            self._foreign_ops |= not node.op.forward.__module__.startswith("minigrad.")
            ins = tuple(slot_of(x) for x in node.inputs)
            _check_not_escaped(tuple(node.attrs.values()), placeholders)
            back = tuple((node.op.vjps[i], s) for i, s in enumerate(ins) if needs_grad[s])
            if any(vjp is None for vjp, _ in back):
                raise RuntimeError(f"Replay: {node.op.name} has no gradient for an input")
            out = slots[id(t)] = len(self._env)
            pick = _picker(ins)
            if back:
                back = tuple((_bind(vjp, node.attrs), s) for vjp, s in back)
                work = out + 1 if node.op.saves else nothing
                self._backward.append((pick, out, work, back))
            forward = _bind(node.op.forward, node.attrs)
            self._nodes.append((forward, pick, node.op.saves, out))
            self._env.append(None)
            needs_grad.append(bool(back))
            if node.op.saves:
                self._env.append(None)
                needs_grad.append(False)
        self._backward.reverse()
        # (slot, trainable leaf): the tensors whose .grad a call fills
        self.params = [(slot, x) for slot, x, _ in self._live if needs_grad[slot]]
        self._root = slots[id(loss)]
        self._seed = np.ones(loss.shape, loss.dtype)
        self._seed.flags.writeable = False  # no VJP writes into its upstream gradient
        self.optimizer = optimizer
        if optimizer is None:
            return
        slot_of_param = {id(p): slot for slot, p in self.params}
        if not any(id(p) in slot_of_param for p in optimizer.params):
            raise ValueError(
                "Replay: none of the optimizer's parameters gets a gradient from fn; pass the "
                "optimizer of the parameters fn trains"
            )
        held = {id(p) for p in optimizer.params}
        # (slot, trainable leaf) for those the optimizer does not hold: they get a .grad
        self._outsiders = [(slot, p) for slot, p in self.params if id(p) not in held]
        # A call's gradient for each of the optimizer's parameters, in its order, in one
        # C call; one that fn does not reach reads a slot that always stays None.
        self._step_grads = _picker([slot_of_param.get(id(p), nothing) for p in optimizer.params])
        # (lr, dtype, lr as a 0-d array of that dtype): SGD's scale, remade only when the
        # optimizer's lr (which the user may set between calls) or the dtype is another object
        self._scale: tuple[Any, Any, Any] = (None, None, None)

    def __call__(self, *arrays: Any) -> float:
        if len(arrays) != len(self.shapes):
            raise TypeError(f"Replay: expected {len(self.shapes)} inputs, got {len(arrays)}")
        env = self._env.copy()
        for k, a in enumerate(arrays):
            if type(a) is not np.ndarray:  # an array as it is, the usual case, needs no asarray
                a = np.asarray(a.data if isinstance(a, Tensor) else a)
            shape, dtype = self.shapes[k]
            if a.shape != shape or a.dtype != dtype:
                raise ValueError(
                    f"Replay: input {k} was traced with shape {shape} and dtype {dtype}, "
                    f"got shape {a.shape} and dtype {a.dtype}; trace a new Replay for it"
                )
            env[k] = a
        for container, key, member, path in self._links:
            if container[key] is not member:
                raise RuntimeError(
                    f"Replay: {path} was replaced by another object after tracing; the replay "
                    "would train the old one. Trace a new Replay after replacing a parameter"
                )
        for slot, x, traced in self._live:
            if x.requires_grad is not traced:  # the trace decided who gets a gradient
                raise RuntimeError(
                    f"Replay: a tensor of shape {x.shape} had requires_grad={traced} when traced "
                    f"and now has {not traced}; trace a new Replay after freezing or unfreezing"
                )
            env[slot] = x.data
        for forward, pick, saves, out in self._nodes:
            y = forward(*pick(env))
            if saves:
                y, env[out + 1] = y  # and its saved work, for its VJPs
            env[out] = y if type(y) is np.ndarray else np.asarray(y)

        grads: list[Any] = [None] * len(env)
        grads[self._root] = self._seed
        for pick, out, saved_at, back in self._backward:
            g = grads[out]
            if g is None:
                continue
            work = env[saved_at]
            args = (g, env[out], *pick(env))  # built once for all of the node's VJPs
            for vjp, i in back:
                gx = vjp(*args) if work is None else vjp(*args, saved=work)
                dtype = env[i].dtype
                if gx.dtype is not dtype:
                    gx = gx.astype(dtype)  # as the engine does: float32 stays float32
                prev = grads[i]
                grads[i] = gx if prev is None else prev + gx
            grads[out] = None  # used up: free it now, as backward() does
        loss = env[self._root].item()
        if self.optimizer is not None:
            self._fused_step(grads, env)
            return loss
        taken: set[int] = set()
        for slot, p in self.params:
            if grads[slot] is not None:
                accumulate_grad(p, grads[slot], False, taken)
        return loss

    def _fused_step(self, grads: list[Any], env: list[Any]) -> None:
        """`opt.step(); opt.zero_grad()` on this call's gradients plus any `.grad` already
        there; trainable leaves the optimizer does not hold get their `.grad` as usual."""
        opt = self.optimizer
        step_grads = list(self._step_grads(grads))
        # .grads to add in, then drop as zero_grad() would (a list: quicker than a generator)
        drop = any([p.grad is not None for p in opt.params])
        # Memory that is not ours to overwrite goes in `taken` (see engine.claim): the .grads
        # set by hand and, when a user's VJP might have returned one as a gradient, the
        # call's values.
        if not drop:  # the usual case
            opt.check_grads(step_grads)
            taken: set[int] = set()
        else:
            held = [None if p.grad is None else p.grad.data for p in opt.params]
            # Refuse, before anything changes, what would stop the update part-way: a .grad
            # set by hand is checked before NumPy could broadcast it into the sum.
            opt.check_grads([g if h is None else h for h, g in zip(held, step_grads, strict=True)])
            taken = {id(h if h.base is None else h.base) for h in held if h is not None}
            step_grads = [
                g if h is None else h if g is None else h + g
                for h, g in zip(held, step_grads, strict=True)
            ]
        if self._foreign_ops:
            for value in env:  # the saved work among them
                for a in value if isinstance(value, tuple) else (value,):
                    if isinstance(a, np.ndarray):
                        taken.add(id(a if a.base is None else a.base))
        for slot, p in self._outsiders:  # their .grad, before any gradient is scaled
            if grads[slot] is not None:
                accumulate_grad(p, grads[slot], False, taken)
        if _is_plain_sgd(opt):
            self._sgd_in_place(opt, step_grads, taken)
        else:
            for p, g in zip(opt.params, step_grads, strict=True):
                if g is not None:
                    p.grad = Tensor(g)
            opt.step()
            drop = True
        if drop:
            opt.zero_grad()

    def _sgd_in_place(self, opt: optim.SGD, grads: list[Any], taken: set[int]) -> None:
        """SGD's W <- W - lr g, scaling in place each gradient that no one else holds.

        Hand-written NumPy does the same; it saves a temporary the size of the
        weights. `g * lr` is `lr * g` bit for bit, so the result is `opt.step()`'s.
        """
        lr = opt.lr
        spare = [g is not None and claim(g, taken) for g in grads]
        changed = []
        # Shared gradients first: they must be read before a spare one that shares memory
        # with them (a view, say) is scaled in place.
        if not all(spare):
            for p, g, own in zip(opt.params, grads, spare, strict=True):
                if g is not None and not own:
                    w = p.data
                    w -= lr * g
                    changed.append(p)
        scale_lr, scale_dtype, scale = self._scale
        for p, g, own in zip(opt.params, grads, spare, strict=True):
            if own:
                w = p.data
                if w.dtype is not scale_dtype or lr is not scale_lr:
                    scale_lr, scale_dtype, scale = lr, w.dtype, np.asarray(lr, w.dtype)
                g *= scale
                w -= g
                changed.append(p)
        self._scale = scale_lr, scale_dtype, scale
        mark_changed(changed)


def _links(fn: Callable) -> list[tuple[Any, Any, Any, str]]:
    """(container, key, member, path) for every parameter and sub-module, and every list or
    tuple of them, of the modules `fn` names: what must still hold the same objects."""
    try:
        names = inspect.getclosurevars(fn)
    except TypeError:  # not a Python function (a partial, a callable object): nothing to check
        return []
    roots = [
        (name, value)
        for name, value in {**names.globals, **names.nonlocals}.items()
        if isinstance(value, nn.Module)
    ]
    if isinstance(getattr(fn, "__self__", None), nn.Module):
        roots.append(("self", fn.__self__))
    links: list[tuple[Any, Any, Any, str]] = []
    seen: set[int] = set()
    stack = roots
    while stack:
        prefix, module = stack.pop()
        if id(module) in seen:
            continue
        seen.add(id(module))
        attributes = vars(module)
        for name, value in attributes.items():
            path = f"{prefix}.{name}"
            if isinstance(value, list | tuple):
                members = [
                    (value, i, item, f"{path}[{i}]")
                    for i, item in enumerate(value)
                    if isinstance(item, nn.Parameter | nn.Module)
                ]
                if members:
                    links.append((attributes, name, value, path))
            elif isinstance(value, nn.Parameter | nn.Module):
                members = [(attributes, name, value, path)]
            else:
                continue
            links += members
            stack += [(p, m) for _, _, m, p in members if isinstance(m, nn.Module)]
    return links


def _trace(fn: Callable[..., Tensor], arrays: list[np.ndarray]) -> tuple[list[Tensor], Any]:
    """Run fn on placeholder tensors for the arrays, recording every op on them.

    A float input requires grad so that every op on it is recorded, even an op
    on the inputs alone (Replay never computes its gradient). An input that
    meets an op where it has no gradient (one-hot labels, say) cannot require
    grad: the trace runs again with that input as plain data. Integer and
    boolean inputs (labels, indices, masks) are plain data from the start.
    """
    recorded = {k for k, a in enumerate(arrays) if a.dtype.kind == "f"}
    while True:
        placeholders = [Tensor(a, requires_grad=k in recorded) for k, a in enumerate(arrays)]
        sweeps = sweep_count()
        try:
            with enable_grad():
                loss = fn(*placeholders)
        except NoGradientError as e:
            k = next((k for k, p in enumerate(placeholders) if p is e.tensor), None)
            if k is None:
                raise TypeError(
                    f"Replay: {e}. Here that value was computed from fn's inputs inside fn, "
                    "which a replay cannot record; compute it outside fn and pass it as an input"
                ) from None
            recorded.discard(k)
            continue
        if sweep_count() != sweeps:
            raise TypeError(
                "Replay cannot trace a step that takes a gradient inside it (backward or grad): "
                "the gradient rules compute masks in NumPy, which a replay would freeze; "
                "run such a step in eager mode"
            )
        return placeholders, loss


def _is_plain_sgd(opt: optim.Optimizer) -> bool:
    return type(opt) is optim.SGD and not opt.momentum and not opt.weight_decay


def _picker(indices: list[int]) -> Callable[[list[Any]], Any]:
    """A function giving the items of a list at `indices`, as a sequence, in one C call."""
    if len(indices) == 1:  # itemgetter of one index gives the item itself; of a slice, a list
        return operator.itemgetter(slice(indices[0], indices[0] + 1))
    return operator.itemgetter(*indices)


def _recorded(loss: Tensor) -> list[Tensor]:
    """The tensors an op made on the way to loss, in the order the ops ran (no recursion)."""
    found: dict[int, Tensor] = {}
    stack = [loss]
    while stack:
        t = stack.pop()
        if id(t) in found:  # reached again through another consumer
            continue
        node: Node = t.creator
        if node.freed:
            raise RuntimeError(
                "Replay: part of fn's graph was freed by a backward; trace fn without it"
            )
        found[id(t)] = t
        for x in node.inputs:
            if isinstance(x, Tensor) and x.creator is not None and id(x) not in found:
                stack.append(x)
    return sorted(found.values(), key=lambda t: t.creator.seq)


def _bind(fn: Callable, attrs: dict) -> Callable:
    """fn with the op's attributes (keyword arguments) bound."""
    return functools.partial(fn, **attrs) if attrs else fn


def _check_not_escaped(value: Any, placeholders: list[Tensor]) -> None:
    """Refuse an input that reaches an op other than itself or through ops: it would be frozen.

    That is an input hidden in a constant (a tuple index such as `x[rows, t]`,
    an attribute), or its array under another name: `x.detach()` or
    `Tensor(x)` wrap x's array (or a view of it) in a new tensor.
    """
    items = value if isinstance(value, (tuple, list)) else (value,)
    inputs = {id(p.data) for p in placeholders}
    for x in items:
        a = x.data if isinstance(x, Tensor) else x
        while isinstance(a, np.ndarray):  # the array, then what it is a view of
            if id(a) in inputs:
                raise TypeError(
                    "Replay: an input is used other than through ops, so its value would be "
                    "frozen: inside a constant or an op's attribute (a tuple index such as "
                    "y[rows, t], as cross_entropy_error makes from index labels), or as a "
                    "detached copy. Index with y[t] alone, or give the labels one-hot or to "
                    "softmax_cross_entropy"
                )
            a = a.base
