"""Draw the computational graph behind tensors with Graphviz.

`to_dot(loss)` returns a `graphviz.Digraph`: tensors are boxes (name, shape,
dtype), ops are ellipses (op name and the attributes that differ from their
defaults), edges follow the data. Trainable leaves are blue, data leaves
grey and dashed, the outputs drawn with a double border. Node ids come from
the traversal order (inputs before the ops that use them), so the same code
gives the same DOT source on every run.

After `backward()`. Backward frees the graph as it goes (nothing of it is
kept for drawing, so a training step pays nothing for this module). To draw
a graph after backward, with its gradients, take `trace(loss)` before
backward: the trace holds the graph's tensors, and `to_dot(trace)` draws
them as they are when it is called. `to_dot(loss)` on a graph that backward
has freed says so. `backward(retain_graph=True)` also keeps the graph whole.

Module clusters. Given `modules=model`, each module that owns parameters
directly (a `Linear`, or a network like `TwoLayerNet` that holds W1, b1, ...
itself) becomes one cluster. Its ops are found from parameter identity: the
ops that take one of its parameters as input, plus every op on a path
between two of those (so the activation inside `TwoLayerNet` belongs to it,
while the ReLU between two `Linear`s of an `MLP` belongs to neither). A
tensor is inside a cluster when its op is and every op using it is too. An
op claimed by two modules (shared weights) goes to the first one in
`named_parameters` order. `collapse=True` draws each cluster as one node.

A tensor that feeds many ops (`x` in "x + x + ... + x") is drawn again, with
a dashed border, beside each use after the first few: edges from one node to
ranks far apart make Graphviz's layout time grow steeply (100 uses took over
5 minutes; drawn this way, a tenth of a second). Rendering stops with an
error after `DOT_TIMEOUT` seconds rather than hang.
"""

from __future__ import annotations

import ctypes
import inspect
import math
import os
import signal
import subprocess
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import graphviz
import numpy as np

from minigrad._files import write_atomically
from minigrad.engine import Tensor
from minigrad.ops import Op

if TYPE_CHECKING:
    from minigrad.nn import Module

__all__ = ["Trace", "trace", "to_dot", "render", "mimebundle"]

FORMATS = ("svg", "png", "pdf", "dot")

NO_DOT = (
    "the Graphviz 'dot' program was not found on PATH; it is needed to render {fmt}. "
    "Install Graphviz (Debian/Ubuntu: apt-get install graphviz; macOS: brew install graphviz; "
    "other systems: https://graphviz.org/download/), or write the DOT source instead "
    "(a .dot path, or to_dot(...).source)."
)

DOT_TIMEOUT = 60.0  # seconds dot may take to lay a graph out
_SHARED_EDGES = 3  # edges drawn from one tensor node; later uses get a copy of the node

# Cool (vanishing) to warm (exploding): a light middle keeps black text readable.
_MIN_DECADES = 3
_RAMP = ("#3a6fb0", "#92bbe0", "#f1f1f1", "#f3a683", "#c0392b")

_STYLE = {
    "param": {"fillcolor": "#cfe2f3", "color": "#1f4e79", "penwidth": "1.4"},
    "data": {"fillcolor": "#f3f3f3", "color": "#7f7f7f", "style": "rounded,filled,dashed"},
    "inner": {"fillcolor": "white", "color": "#404040"},
    "output": {"fillcolor": "#fff2cc", "color": "#7f6000", "peripheries": "2"},
}


# ---------------------------------------------------------------- tracing


@dataclass(eq=False)
class _TensorVertex:
    key: str
    tensor: Tensor
    kind: str  # "param" (leaf that requires grad), "data" (other leaf), "inner", "output"


@dataclass(eq=False)
class _OpVertex:
    key: str
    name: str
    attrs: list[str]
    inputs: list[str]  # keys of tensor and constant vertices, in argument order
    output: str


@dataclass(eq=False)
class _ConstVertex:
    key: str
    label: str


@dataclass(eq=False)
class Trace:
    """The structure of the graph behind some outputs, as it was when traced.

    It holds the graph's tensors, so gradients and values are read when it is
    drawn: trace, retain_grad() the intermediates, backward, then draw.
    """

    outputs: list[Tensor]
    vertices: list[_TensorVertex | _OpVertex | _ConstVertex] = field(default_factory=list)

    @property
    def tensors(self) -> list[Tensor]:
        """Every tensor in the graph, inputs before the ops that use them."""
        return [v.tensor for v in self.vertices if isinstance(v, _TensorVertex)]


def trace(*outputs: Tensor) -> Trace:
    """Record the graph behind `outputs` now, to draw it later (e.g. after backward)."""
    if not outputs:
        raise TypeError("trace() needs at least one tensor")
    for t in outputs:
        if not isinstance(t, Tensor):
            raise TypeError(f"trace() takes tensors, got {type(t).__name__}")
    result = Trace(list(outputs))
    output_ids = {id(t) for t in outputs}
    drawn: dict[int, _TensorVertex] = {}  # by tensor id, valid while the trace holds them
    counts = {"t": 0, "op": 0, "c": 0}

    def new_key(prefix: str) -> str:
        counts[prefix] += 1
        return f"{prefix}{counts[prefix] - 1}"

    # Iterative post-order (inputs first), so deep graphs cannot hit the recursion limit.
    stack = [(t, False) for t in reversed(outputs)]
    while stack:
        t, expanded = stack.pop()
        node = t.creator
        if not expanded:
            if id(t) in drawn:
                continue
            if node is not None and node.freed:
                raise ValueError(
                    f"the graph behind this tensor (made by {node.op.name}) was freed by "
                    "backward(); to draw a graph after backward, take viz.trace(loss) before "
                    "it and draw the trace, or call backward(retain_graph=True)"
                )
            stack.append((t, True))
            if node is not None:
                stack.extend((x, False) for x in reversed(node.inputs) if isinstance(x, Tensor))
            continue
        op_vertex = None
        if node is not None:
            op_vertex = _OpVertex(new_key("op"), node.op.name, [], [], "")
            names = _parameter_names(node.op)
            for i, x in enumerate(node.inputs):
                if isinstance(x, Tensor):
                    op_vertex.inputs.append(drawn[id(x)].key)
                elif _is_operand(x):
                    const = _ConstVertex(new_key("c"), _format_constant(x, _name_at(names, i)))
                    result.vertices.append(const)
                    op_vertex.inputs.append(const.key)
                elif x is not None:
                    op_vertex.attrs.append(f"{_name_at(names, i)}={_format_value(x)}")
            op_vertex.attrs += [
                f"{k}={_format_value(v)}"
                for k, v in node.attrs.items()
                if not _is_default(v, names.get(k, inspect.Parameter.empty))
            ]
            result.vertices.append(op_vertex)
        if id(t) in output_ids:
            kind = "output"
        elif node is not None:
            kind = "inner"
        else:
            kind = "param" if t.requires_grad else "data"
        vertex = _TensorVertex(new_key("t"), t, kind)
        drawn[id(t)] = vertex
        if op_vertex is not None:
            op_vertex.output = vertex.key
        result.vertices.append(vertex)
    return result


_SIGNATURES: dict[Op, dict[str, Any]] = {}


def _parameter_names(op: Op) -> dict[str, Any]:
    """The forward's parameters in order, name -> default (inspect.Parameter.empty if none)."""
    if op not in _SIGNATURES:
        params = op.signature.parameters.values()
        _SIGNATURES[op] = {
            ("*" if p.kind is p.VAR_POSITIONAL else "") + p.name: p.default for p in params
        }
    return _SIGNATURES[op]


def _name_at(names: dict[str, Any], i: int) -> str:
    ordered = list(names)
    if i < len(ordered) and not ordered[i].startswith("*"):
        return ordered[i]
    variadic = [n for n in ordered if n.startswith("*")]
    return f"{variadic[0][1:]}[{i}]" if variadic else f"arg{i}"


def _is_operand(x: Any) -> bool:
    """Numbers and arrays are drawn as constant inputs; shapes, slices and flags as attributes."""
    if isinstance(x, bool | np.bool_):
        return False
    return isinstance(x, int | float | np.number | np.ndarray)


def _is_default(value: Any, default: Any) -> bool:
    simple = (type(None), bool, int, float, str, tuple)
    return isinstance(value, simple) and type(value) is type(default) and value == default


def _format_value(v: Any) -> str:
    if isinstance(v, slice):
        parts = ["" if p is None else str(p) for p in (v.start, v.stop, v.step)]
        return ":".join(parts[:2] if v.step is None else parts)
    if v is Ellipsis:
        return "..."
    if isinstance(v, tuple):
        inner = ", ".join(_format_value(x) for x in v)
        return f"({inner},)" if len(v) == 1 else f"({inner})"
    if isinstance(v, list):
        return "[" + ", ".join(_format_value(x) for x in v) + "]"
    if isinstance(v, np.ndarray):
        return _format_constant(v)
    if isinstance(v, float | np.floating):
        return f"{v:.4g}"
    text = str(v)
    return text if len(text) <= 40 else text[:37] + "..."


def _format_constant(x: Any, name: str = "array") -> str:
    """Small constants by value; larger arrays by the parameter they fill, shape and dtype."""
    a = np.asarray(x)
    if a.size <= 6:
        return np.array2string(a, precision=4, separator=", ") if a.ndim else f"{a.item():.4g}"
    return f"{name} {_format_shape(a.shape)} {a.dtype}"


def _format_shape(shape: tuple[int, ...]) -> str:
    return "scalar" if shape == () else str(tuple(shape))


# ---------------------------------------------------------------- gradient colours


def _grad_norm(t: Tensor) -> float | None:
    if t.grad is None:
        return None
    return float(np.linalg.norm(np.asarray(t.grad.data, dtype=np.float64).ravel()))


@dataclass
class _Scale:
    """Maps gradient norms to colours on a log scale: [10^lo, 10^hi] spans the ramp."""

    lo: int
    hi: int

    @classmethod
    def fit(cls, norms: Iterable[float]) -> _Scale | None:
        logs = [math.log10(n) for n in norms if n > 0 and math.isfinite(n)]
        if not logs:
            return None
        lo, hi = math.floor(min(logs)), math.ceil(max(logs))
        # At least three decades, so a factor of two never looks like vanishing vs exploding.
        extra = max(0, _MIN_DECADES - (hi - lo))
        return cls(lo - extra // 2, hi + extra - extra // 2)

    def colour(self, norm: float) -> str:
        if not math.isfinite(norm):
            return _RAMP[-1]  # inf or nan: as bad as exploding gets
        x = (math.log10(norm) - self.lo) / (self.hi - self.lo) if norm > 0 else 0.0
        return _interpolate(min(max(x, 0.0), 1.0))

    def legend(self) -> str:
        """An HTML-like table: one swatch per decade, the graph's colour bar."""
        step = max(1, math.ceil((self.hi - self.lo) / 8))
        cells = []
        for e in range(self.lo, self.hi + 1, step):
            bg = self.colour(10.0**e)
            cells.append(f'<TD BGCOLOR="{bg}"><FONT COLOR="{_text_colour(bg)}">1e{e}</FONT></TD>')
        return (
            '<TABLE BORDER="0" CELLBORDER="1" CELLSPACING="0" CELLPADDING="4"><TR>'
            '<TD BORDER="0">gradient norm (log scale):</TD>' + "".join(cells) + "</TR></TABLE>"
        )


def _interpolate(x: float) -> str:
    pos = x * (len(_RAMP) - 1)
    i = min(int(pos), len(_RAMP) - 2)
    a, b = _rgb(_RAMP[i]), _rgb(_RAMP[i + 1])
    f = pos - i
    return "#" + "".join(f"{round(p + (q - p) * f):02x}" for p, q in zip(a, b, strict=True))


def _rgb(colour: str) -> tuple[int, int, int]:
    return int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16)


def _text_colour(background: str) -> str:
    r, g, b = _rgb(background)
    return "white" if 0.299 * r + 0.587 * g + 0.114 * b < 115 else "black"


# ---------------------------------------------------------------- drawing


_LINE = 80  # characters a label line keeps: dot refuses a label over 16 KiB


def _label(lines: list[str]) -> str:
    # Backslashes in names are literal, and so is "&" (dot reads "&amp;" as "&"); "\n"
    # between lines is DOT's line break.
    lines = [line if len(line) <= _LINE else line[: _LINE - 3] + "..." for line in lines]
    return graphviz.nohtml(
        "\\n".join(line.replace("\\", "\\\\").replace("&", "&amp;") for line in lines)
    )


def _format_norm(norm: float) -> str:
    return f"|grad| {norm:.2e}" if norm and math.isfinite(norm) else f"|grad| {norm:g}"


def _format_data(t: Tensor) -> str:
    a = t.data
    if a.size <= 6:
        return np.array2string(a, precision=3, separator=", ", suppress_small=True)
    if a.dtype.kind in "iufb":
        return f"min {a.min():.3g}  max {a.max():.3g}"
    return f"{a.size} values"


@dataclass
class _Cluster:
    label: str
    members: list[str]  # vertex keys, in drawing order
    params: list[tuple[str, Tensor]]


def to_dot(
    *outputs: Tensor | Trace,
    show_data: bool = False,
    show_grad: bool = False,
    rankdir: str = "TB",
    modules: Module | None = None,
    collapse: bool = False,
) -> graphviz.Digraph:
    """A `graphviz.Digraph` of the graph behind `outputs` (tensors, or one `Trace`).

    `show_data` adds small tensors' values (ranges for large ones);
    `show_grad` adds each gradient's norm and colours the nodes by it on a
    log scale, with a colour bar below the graph. `modules` groups each
    parameter-owning module's ops into a cluster, one node each with
    `collapse`. `rankdir` is Graphviz's: TB, LR, BT or RL. In Jupyter the
    returned Digraph displays itself.
    """
    if rankdir not in ("TB", "LR", "BT", "RL"):
        raise ValueError(f"rankdir must be one of TB, LR, BT, RL, got {rankdir!r}")
    if collapse and modules is None:
        raise ValueError("collapse=True needs modules= (the model whose modules to collapse)")
    if len(outputs) == 1 and isinstance(outputs[0], Trace):
        tr = outputs[0]
    elif any(isinstance(o, Trace) for o in outputs):
        raise TypeError("pass either tensors or a single Trace to to_dot(), not both")
    else:
        tr = trace(*outputs)

    tensors = {v.key: v for v in tr.vertices if isinstance(v, _TensorVertex)}
    norms = {k: _grad_norm(v.tensor) for k, v in tensors.items()} if show_grad else {}
    clusters = _clusters(tr, modules) if modules is not None else []
    param_names = {id(p): name.rpartition(".")[2] for c in clusters for name, p in c.params}
    scale = _Scale.fit(n for n in norms.values() if n is not None)

    dot = graphviz.Digraph(name="minigrad")
    dot.attr(rankdir=rankdir, nodesep="0.25", ranksep="0.3", fontname="Helvetica", ordering="in")
    dot.attr("node", fontname="Helvetica", fontsize="10", margin="0.12,0.04", height="0.3")
    dot.attr("edge", color="#4d4d4d", arrowsize="0.6")

    def tensor_node(graph: graphviz.Digraph, v: _TensorVertex, key: str | None = None) -> None:
        t = v.tensor
        name = t.name or param_names.get(id(t))
        lines = ([name] if name else []) + [f"{_format_shape(t.shape)} {t.dtype}"]
        style = {"shape": "box", "style": "rounded,filled", **_STYLE[v.kind]}
        if show_data:
            lines.append(_format_data(t))
        norm = norms.get(v.key)
        if norm is not None:
            lines.append(_format_norm(norm))
            if scale is not None:
                style["fillcolor"] = scale.colour(norm)
                style["fontcolor"] = _text_colour(style["fillcolor"])
        if key is not None:  # a copy of the node, beside one more use of the tensor
            style["style"] += ",dashed"
        graph.node(key or v.key, _label(lines), **style)

    def draw(graph: graphviz.Digraph, v: Any) -> None:
        if isinstance(v, _TensorVertex):
            tensor_node(graph, v)
        elif isinstance(v, _OpVertex):
            style = {"shape": "ellipse", "style": "filled", "fillcolor": "#e8e8e8"}
            graph.node(v.key, _label([v.name, *v.attrs]), color="#595959", **style)
        else:
            graph.node(v.key, _label([v.label]), shape="plaintext", fontcolor="#595959")

    # Members of a collapsed cluster all map to the cluster's one node.
    owner = {key: i for i, c in enumerate(clusters) for key in c.members}
    by_key = {v.key: v for v in tr.vertices}
    drawn: set[int] = set()
    for v in tr.vertices:
        i = owner.get(v.key)
        if i is None:
            draw(dot, v)
        elif collapse:
            if i not in drawn:
                drawn.add(i)
                _module_node(dot, f"m{i}", clusters[i], show_grad, scale)
        elif i not in drawn:
            drawn.add(i)
            with dot.subgraph(name=f"cluster_{i}") as sub:
                sub.attr(label=clusters[i].label, style="rounded", color="#1f4e79")
                sub.attr(fontsize="10", fontcolor="#1f4e79", margin="10")
                for key in clusters[i].members:
                    draw(sub, by_key[key])

    def end(key: str) -> str:
        return f"m{owner[key]}" if collapse and key in owner else key

    edges: list[tuple[str, str]] = []
    for v in tr.vertices:
        if isinstance(v, _OpVertex):
            edges += [(end(k), end(v.key)) for k in v.inputs] + [(end(v.key), end(v.output))]
    if collapse:  # many edges now join the same two nodes: keep one, in order
        edges = [(a, b) for a, b in dict.fromkeys(edges) if a != b]
    uses: dict[str, int] = {}
    for a, b in edges:
        if a in tensors:  # a tensor drawn on its own (not inside a collapsed cluster)
            uses[a] = uses.get(a, 0) + 1
            if uses[a] > _SHARED_EDGES:  # see the module docstring
                copy = f"{a}_{uses[a]}"
                tensor_node(dot, tensors[a], copy)
                a = copy
        dot.edge(a, b)

    notes = []
    if scale is not None:
        notes.append(f"<TR><TD>{scale.legend()}</TD></TR>")
    if notes:
        dot.attr(label=f'<<TABLE BORDER="0">{"".join(notes)}</TABLE>>', labelloc="b")
        dot.attr(fontsize="10")
    return dot


def _module_node(
    dot: graphviz.Digraph, key: str, cluster: _Cluster, show_grad: bool, scale: _Scale | None
) -> None:
    lines = [cluster.label]
    total = 0.0
    have_grad = False
    for name, p in cluster.params:
        line = f"{name.rpartition('.')[2]} {_format_shape(p.shape)}"
        norm = _grad_norm(p) if show_grad else None
        if norm is not None:
            line += f"  {_format_norm(norm)}"
            total += norm * norm
            have_grad = True
        lines.append(line)
    style = {
        "shape": "box3d",
        "style": "filled",
        "margin": "0.15,0.08",
        **{k: _STYLE["param"][k] for k in ("fillcolor", "color")},
    }
    if have_grad and scale is not None:
        style["fillcolor"] = scale.colour(math.sqrt(total))
        style["fontcolor"] = _text_colour(style["fillcolor"])
    dot.node(key, _label(lines), **style)


def _clusters(tr: Trace, model: Module) -> list[_Cluster]:
    """One cluster per module that owns parameters directly (see the module docstring)."""
    groups: dict[str, list[tuple[str, Tensor]]] = {}
    for name, p in model.named_parameters():
        groups.setdefault(name.rpartition(".")[0], []).append((name, p))

    ops = [v for v in tr.vertices if isinstance(v, _OpVertex)]
    producer = {v.output: v for v in ops}
    consumers: dict[str, list[_OpVertex]] = {}
    for v in ops:
        for k in v.inputs:
            consumers.setdefault(k, []).append(v)
    key_of = {id(v.tensor): v.key for v in tr.vertices if isinstance(v, _TensorVertex)}
    outputs = {key_of[id(t)] for t in tr.outputs}
    order = {v.key: i for i, v in enumerate(tr.vertices)}

    claimed: set[str] = set()
    clusters = []
    for prefix, params in groups.items():
        param_keys = {key_of[id(p)] for _, p in params if id(p) in key_of}
        seeds = [v for v in ops if param_keys.intersection(v.inputs)]
        if not seeds:
            continue
        after = _reach(seeds, lambda v: consumers.get(v.output, []))
        before = _reach(seeds, lambda v: [producer[k] for k in v.inputs if k in producer])
        inside = {v.key for v in after if v in before and v.key not in claimed}
        claimed |= inside
        members = set(inside) | param_keys
        for v in ops:
            if v.key not in inside:
                continue
            members.update(k for k in v.inputs if k.startswith("c"))  # its constants
            uses = consumers.get(v.output, [])
            if v.output not in outputs and uses and all(u.key in inside for u in uses):
                members.add(v.output)
        clusters.append(
            _Cluster(_module_label(model, prefix), sorted(members, key=order.__getitem__), params)
        )
    return clusters


def _reach(start: list[_OpVertex], step: Any) -> set[_OpVertex]:
    seen = set(start)
    todo = list(start)
    while todo:
        for w in step(todo.pop()):
            if w not in seen:
                seen.add(w)
                todo.append(w)
    return seen


def _module_label(model: Module, prefix: str) -> str:
    """'fc1: Linear' for the module at attribute path `prefix` ('layers.0' indexes a list)."""
    obj: Any = model
    for part in prefix.split(".") if prefix else ():
        obj = obj[int(part)] if part.isdigit() else getattr(obj, part)
    return f"{prefix}: {type(obj).__name__}" if prefix else type(obj).__name__


# ---------------------------------------------------------------- files and notebooks


def render(
    *outputs: Tensor | Trace | graphviz.Digraph,
    path: str | os.PathLike,
    format: str | None = None,
    **options: Any,
) -> str:
    """Write the graph to `path` as SVG, PNG, PDF or DOT source; returns the path.

    `outputs` are tensors or a Trace (drawn with `to_dot(*outputs, **options)`)
    or one ready Digraph. The format defaults to the path's extension. The
    file appears complete or not at all (written beside it, then renamed).
    """
    path = os.fspath(path)
    fmt = (format or os.path.splitext(path)[1][1:]).lower()
    if fmt not in FORMATS:
        raise ValueError(
            f"cannot tell the format of {path!r}: use a path ending in "
            f"{', '.join('.' + f for f in FORMATS)} or pass format="
        )
    if len(outputs) == 1 and isinstance(outputs[0], graphviz.Digraph):
        if options:
            raise TypeError(f"options {sorted(options)} apply to tensors, not to a ready Digraph")
        dot = outputs[0]
    else:
        dot = to_dot(*outputs, **options)
    if fmt == "dot":
        content = dot.source.encode()
    else:
        content = _run_dot(dot.source, fmt)
    write_atomically(path, lambda f: f.write(content))
    return path


def _run_dot(source: str, fmt: str) -> bytes:
    """dot's output in `fmt`; dot is stopped after DOT_TIMEOUT seconds, and dies with us."""
    try:
        child = subprocess.Popen(
            ["dot", f"-T{fmt}"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            preexec_fn=_die_with_parent if sys.platform == "linux" else None,
        )
    except FileNotFoundError:
        raise RuntimeError(NO_DOT.format(fmt=fmt.upper())) from None
    try:
        out, err = child.communicate(source.encode(), timeout=DOT_TIMEOUT)
    except subprocess.TimeoutExpired:
        child.kill()
        child.communicate()
        nodes = sum(1 for line in source.splitlines() if "[label=" in line)
        raise RuntimeError(
            f"Graphviz's dot did not lay out the graph ({nodes} nodes) within {DOT_TIMEOUT:g} s; "
            "draw a smaller graph (fewer terms, smaller --sizes, --collapse), or write the DOT "
            "source (a .dot path) and run dot on it without a time limit"
        ) from None
    except BaseException:  # Ctrl-C or an error here: dot must not run on
        child.kill()
        child.wait()
        raise
    if child.returncode:
        raise RuntimeError(f"Graphviz's dot failed: {err.decode(errors='replace').strip()}")
    return out


def _die_with_parent() -> None:
    """In the child, before dot starts: the kernel kills it when minigrad dies, even by SIGKILL."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGKILL)  # 1 is PR_SET_PDEATHSIG


def mimebundle(obj: Tensor | Module, include: Any = None, exclude: Any = None) -> dict[str, Any]:
    """Jupyter's rich display for a tensor (its graph) or a module (its graph on a zero batch).

    Falls back to plain text for a leaf tensor, a tensor whose graph backward
    freed, a module whose input size cannot be inferred, and when Graphviz's
    `dot` is not installed.
    """
    text = {"text/plain": repr(obj)}
    try:
        if isinstance(obj, Tensor):
            if obj.is_leaf or obj.creator.freed:
                return text
            dot = to_dot(obj)
        else:
            dot = _module_graph(obj)
        return {**dot._repr_mimebundle_(include, exclude), **text}
    except (graphviz.ExecutableNotFound, _NoGraph):
        return text


class _NoGraph(Exception):
    """The module's graph cannot be drawn: no input size to guess, or no tensor out."""


def _module_graph(model: Module) -> graphviz.Digraph:
    # Book layout: the first weight is (in_features, out_features).
    first = next(model.parameters(), None)
    if first is None or first.ndim != 2:
        raise _NoGraph
    x = Tensor(np.zeros((1, first.shape[0]), dtype=first.dtype), name="x")
    # Showing a model must not change its training: put back the random streams
    # (Dropout's) that this forward draws from.
    streams = [
        v for m in model.modules() for v in vars(m).values() if isinstance(v, np.random.Generator)
    ]
    states = [g.bit_generator.state for g in streams]
    try:
        y = model(x)
    except Exception as e:  # a display must not raise: the guess of the input was wrong
        raise _NoGraph from e
    finally:
        for g, state in zip(streams, states, strict=True):
            g.bit_generator.state = state
    if not isinstance(y, Tensor):  # a tuple or an array: nothing to_dot can draw
        raise _NoGraph
    return to_dot(y, modules=model)
