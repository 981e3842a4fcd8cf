"""minigrad.viz: DOT structure, rendering with the real `dot`, the expression parser,
the `minigrad graph` command and the plot helpers."""

from __future__ import annotations

import argparse
import os
import re
import shutil
import struct
import subprocess
import sys
import time
import weakref
import xml.etree.ElementTree as ET

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.quiver import Quiver  # noqa: E402

import minigrad as mg  # noqa: E402
import minigrad.functional as F  # noqa: E402
from minigrad import nn, optim, viz  # noqa: E402
from minigrad.cli import main  # noqa: E402
from minigrad.viz import cli as viz_cli  # noqa: E402
from minigrad.viz.expr import ExpressionError, parse  # noqa: E402

needs_dot = pytest.mark.skipif(
    shutil.which("dot") is None,
    reason="Graphviz's dot is not installed (apt-get install graphviz)",
)

NODE = re.compile(r'^\t+(\w+) \[label=(?:"((?:[^"\\]|\\.)*)"|(\w+))')
EDGE = re.compile(r"^\t+(\w+) -> (\w+)")


def parse_dot(dot) -> tuple[dict[str, str], list[tuple[str, str]]]:
    """{node id: label} and [(tail, head)] from DOT source, labels unescaped."""
    nodes, edges = {}, []
    for line in dot.source.splitlines():
        if m := EDGE.match(line):
            edges.append(m.groups())
        elif m := NODE.match(line):
            label = m.group(2) if m.group(2) is not None else m.group(3)
            nodes[m.group(1)] = label.replace("\\n", "\n")
    return nodes, edges


def leaf(shape=(), name=None, seed=0):
    data = np.random.default_rng(seed).standard_normal(shape).astype(np.float32)
    return mg.Tensor(data, requires_grad=True, name=name)


# ---------------------------------------------------------------- DOT structure


def test_single_op_has_two_inputs_one_op_one_output():
    a, b = leaf(name="a"), leaf(name="b", seed=1)
    nodes, edges = parse_dot(viz.to_dot(a * b))
    assert nodes == {
        "t0": "a\nscalar float32",
        "t1": "b\nscalar float32",
        "op0": "mul",
        "t2": "scalar float32",
    }
    assert edges == [("t0", "op0"), ("t1", "op0"), ("op0", "t2")]


def test_shared_subexpression_is_one_node_with_two_out_edges():
    x = leaf((3,), name="x")
    h = F.tanh(x)
    y = h * 2 + h
    nodes, edges = parse_dot(viz.to_dot(y))
    vector = "(3,) float32"
    assert nodes == {
        "t0": "x\n" + vector,
        "op0": "tanh",
        "t1": vector,  # h
        "c0": "2",
        "op1": "mul",
        "t2": vector,  # h * 2
        "op2": "add",
        "t3": vector,  # y
    }
    assert edges == [
        ("t0", "op0"),
        ("op0", "t1"),
        ("t1", "op1"),
        ("c0", "op1"),
        ("op1", "t2"),
        ("t2", "op2"),
        ("t1", "op2"),
        ("op2", "t3"),
    ]
    assert [b for a, b in edges if a == "t1"] == ["op1", "op2"]  # h: one node, two out-edges


def test_a_tensor_used_twice_by_one_op_has_two_edges():
    x = leaf(name="x")
    nodes, edges = parse_dot(viz.to_dot(x * x))
    assert edges == [("t0", "op0"), ("t0", "op0"), ("op0", "t1")]


def test_broadcasting_shapes_appear_on_the_nodes():
    x, y = leaf((3, 1), name="x"), leaf((4,), name="y", seed=1)
    nodes, edges = parse_dot(viz.to_dot(x + y))
    assert nodes == {
        "t0": "x\n(3, 1) float32",
        "t1": "y\n(4,) float32",
        "op0": "add",
        "t2": "(3, 4) float32",
    }
    assert len(edges) == 3


def test_op_attributes_show_only_non_defaults():
    x = leaf((2, 3), name="x")
    nodes, _ = parse_dot(viz.to_dot(x.sum(axis=1), x.mean(), x.reshape(3, 2)))
    ops = sorted(label for key, label in nodes.items() if key.startswith("op"))
    assert ops == ["mean", "reshape\nshape=(3, 2)", "sum\naxis=1"]


def two_layer_net_loss():
    net = nn.TwoLayerNet(4, 3, 2, rng=0)
    x = mg.Tensor(np.ones((5, 4), dtype=np.float32), name="x")
    return net, net.loss(x, np.array([0, 1, 0, 1, 1]))


def test_two_layer_net_graph():
    net, loss = two_layer_net_loss()
    dot = viz.to_dot(loss, modules=net)
    nodes, edges = parse_dot(dot)
    # x, W1, b1, linear, h, sigmoid, a, W2, b2, linear, scores, labels, loss op, loss
    assert len(nodes) == 14
    assert len(edges) == 13
    labels = sorted(nodes.values())
    params = ["W1\n(4, 3) float32", "b1\n(3,) float32", "W2\n(3, 2) float32", "b2\n(2,) float32"]
    assert set(params) <= set(labels)
    assert labels.count("linear") == 2 and labels.count("sigmoid") == 1
    assert "[0, 1, 0, 1, 1]" in labels  # the labels, a small constant, by value
    assert "softmax_cross_entropy" in labels
    # one cluster holds the whole net (it owns W1..b2 itself); the loss stays outside
    cluster = dot.source.split("subgraph cluster_0 {")[1].split("}")[0]
    assert "label=TwoLayerNet" in cluster
    assert cluster.count("[label=") == 9  # W1, b1, linear, h, sigmoid, a, W2, b2, linear


def test_mlp_has_one_cluster_per_linear_and_activations_between():
    mlp = nn.MLP([4, 3, 3, 2], rng=0)
    x = mg.Tensor(np.ones((5, 4), dtype=np.float32), name="x")
    dot = viz.to_dot(mlp(x), modules=mlp)
    clusters = re.findall(r"subgraph (cluster_\d+) \{\n\t\t[^\n]*label=\"([^\"]+)\"", dot.source)
    assert [label for _, label in clusters] == [f"layers.{i}: Linear" for i in (0, 2, 4)]
    for part in dot.source.split("subgraph")[1:]:
        assert "relu" not in part.split("}")[0]

    collapsed = viz.to_dot(mlp(x), modules=mlp, collapse=True)
    nodes, edges = parse_dot(collapsed)
    assert [k for k in nodes if k.startswith("m")] == ["m0", "m1", "m2"]
    assert nodes["m0"].startswith("layers.0: Linear\nW (4, 3)\nb (3,)")
    # a chain: x -> m0 -> h -> relu -> a -> m1 -> h -> relu -> a -> m2 -> out
    assert len(nodes) == 11
    assert edges == [
        ("t0", "m0"), ("m0", "t3"), ("t3", "op1"), ("op1", "t4"), ("t4", "m1"), ("m1", "t7"),
        ("t7", "op3"), ("op3", "t8"), ("t8", "m2"), ("m2", "t11"),
    ]  # fmt: skip


def test_dot_source_is_deterministic():
    sources = []
    for _ in range(2):
        _, loss = two_layer_net_loss()
        sources.append(viz.to_dot(loss).source)
    assert sources[0] == sources[1]


def test_a_trace_taken_before_backward_draws_the_same_graph_after_it_with_gradients():
    x, y = leaf((3,), name="x"), leaf(name="y", seed=1)
    loss = (F.tanh(x) * y).sum()
    before = viz.to_dot(loss).source
    graph = viz.trace(loss)
    loss.backward()
    assert loss.creator.freed  # backward freed the graph; the trace holds its tensors
    assert viz.to_dot(graph).source == before
    nodes, edges = parse_dot(viz.to_dot(graph, show_grad=True))
    assert len(nodes) == 8 and len(edges) == 7
    norm_x = np.linalg.norm(x.grad.data.astype(np.float64))
    assert nodes["t0"] == f"x\n(3,) float32\n|grad| {norm_x:.2e}"


def test_drawing_a_graph_that_backward_freed_says_how_to_draw_it():
    x = leaf((3,), name="x")
    loss = F.exp(x).sum()
    loss.backward()
    with pytest.raises(ValueError, match=r"freed by backward\(\).*viz\.trace\(loss\)"):
        viz.to_dot(loss)
    kept = F.exp(x).sum()
    before = viz.to_dot(kept).source
    kept.backward(retain_graph=True)
    assert viz.to_dot(kept).source == before


def test_backward_keeps_nothing_of_a_graph_for_drawing():
    # Drawing after backward goes through a trace, so a step's intermediates die with it.
    x = leaf((3,), name="x")
    h = F.tanh(x)
    inner = weakref.ref(h)
    loss = (h * 2).sum()
    del h
    loss.backward()
    assert inner() is None
    assert loss.creator.inputs is None and loss.creator.arrays is None


def test_trace_before_backward_draws_whole_graph_with_gradients():
    x, y = leaf((3,), name="x"), leaf(name="y", seed=1)
    loss = (F.tanh(x) * y).sum()
    before = viz.to_dot(loss).source
    graph = viz.trace(loss)
    loss.backward()
    nodes, edges = parse_dot(viz.to_dot(graph))
    assert viz.to_dot(graph).source == before
    assert len(nodes) == 8 and len(edges) == 7  # x, tanh, h, y, mul, h*y, sum, loss

    dot = viz.to_dot(graph, show_grad=True)
    nodes, _ = parse_dot(dot)
    norm_x = np.linalg.norm(x.grad.data.astype(np.float64))
    assert nodes["t0"] == f"x\n(3,) float32\n|grad| {norm_x:.2e}"
    assert "|grad|" not in nodes["t1"]  # an intermediate without retain_grad has none
    assert "gradient norm (log scale)" in dot.source


def test_grad_colours_follow_the_log_norm():
    # Three leaves whose gradients differ by powers of ten.
    a, b, c = (leaf((2,), name=n, seed=i) for i, n in enumerate("abc"))
    loss = (a * 1e-4).sum() + (b * 1e-2).sum() + (c * 1.0).sum()
    graph = viz.trace(loss)
    loss.backward()
    source = viz.to_dot(graph, show_grad=True).source
    fill = {
        name: re.search(rf'\[label="{name}\\n[^\]]*fillcolor="(#\w+)"', source).group(1)
        for name in "abc"
    }
    assert len(set(fill.values())) == 3
    blue = {k: int(v[5:7], 16) - int(v[1:3], 16) for k, v in fill.items()}  # blue minus red
    assert blue["a"] > blue["b"] > blue["c"]  # small norms cool, large ones warm
    legend = re.findall(r">1e(-?\d+)<", source)
    assert int(legend[0]) <= -4 and int(legend[-1]) >= 0


def test_show_data_and_constants():
    x = mg.Tensor(np.array([1.0, 2.0], dtype=np.float32), requires_grad=True, name="x")
    nodes, _ = parse_dot(viz.to_dot(x * 3, show_data=True))
    assert nodes["t0"] == "x\n(2,) float32\n[1., 2.]"
    assert nodes["c0"] == "3"


def test_bad_arguments():
    x = leaf(name="x")
    with pytest.raises(ValueError, match="rankdir"):
        viz.to_dot(x * 2, rankdir="up")
    with pytest.raises(ValueError, match="collapse=True needs modules"):
        viz.to_dot(x * 2, collapse=True)
    with pytest.raises(TypeError, match="takes tensors"):
        viz.to_dot(np.ones(3))


# ---------------------------------------------------------------- rendering


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


@needs_dot
def test_render_svg_is_valid_and_has_every_node(tmp_path):
    _, loss = two_layer_net_loss()
    path = viz.render(loss, path=tmp_path / "net.svg")
    root = ET.parse(path).getroot()
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    groups = root.iter("{http://www.w3.org/2000/svg}g")
    assert sum(g.get("class") == "node" for g in groups) == 14
    assert os.listdir(tmp_path) == ["net.svg"]


@needs_dot
def test_render_png_and_pdf(tmp_path):
    _, loss = two_layer_net_loss()
    png = viz.render(loss, path=tmp_path / "net.png", rankdir="LR")
    width, height = png_size(open(png, "rb").read())
    assert width > height > 50  # left to right: wider than tall
    pdf = viz.render(viz.to_dot(loss), path=tmp_path / "x.out", format="pdf")
    assert open(pdf, "rb").read(5) == b"%PDF-"


@needs_dot
def test_a_long_index_or_name_is_cut_short_and_an_ampersand_drawn_as_itself(tmp_path):
    # dot refused labels over 16 KiB (a list index of 5,000 entries); "&amp;" was drawn as "&".
    x = mg.Tensor(np.arange(5.0), requires_grad=True, name="a&amp;b" + "z" * 100)
    y = x[list(range(5)) * 1000].sum()
    path = viz.render(y, path=tmp_path / "long.svg")
    texts = [t.text for t in ET.parse(path).getroot().iter("{http://www.w3.org/2000/svg}text")]
    assert max(len(t) for t in texts) <= 80
    assert any(t.startswith("a&amp;bzzz") and t.endswith("...") for t in texts)


def test_missing_dot_says_how_to_install(tmp_path, monkeypatch):
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    x = leaf(name="x")
    with pytest.raises(RuntimeError, match="apt-get install graphviz") as error:
        viz.render(x * 2, path=tmp_path / "g.png")
    assert "brew install graphviz" in str(error.value)
    assert sorted(os.listdir(tmp_path)) == ["bin"]  # nothing half-written
    # DOT source needs no program
    viz.render(x * 2, path=tmp_path / "g.dot")
    assert open(tmp_path / "g.dot").read().startswith("digraph minigrad {")
    assert viz.mimebundle(F.exp(x)) == {"text/plain": repr(F.exp(x))}


def test_render_into_a_missing_directory_names_it_and_writes_nothing(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"no directory .*nodir'"):
        viz.render(leaf() * 2, path=tmp_path / "nodir" / "g.dot")
    assert os.listdir(tmp_path) == []


def test_render_rejects_unknown_format(tmp_path):
    with pytest.raises(ValueError, match="cannot tell the format"):
        viz.render(leaf() * 2, path=tmp_path / "g.jpeg")


@needs_dot
def test_jupyter_display():
    x = leaf((2,), name="x")
    bundle = viz.mimebundle(F.exp(x))
    assert bundle["image/svg+xml"].lstrip().startswith("<?xml")
    assert bundle["text/plain"].startswith("tensor(")
    assert set(viz.mimebundle(x)) == {"text/plain"}  # a leaf has no graph to show
    loss = F.exp(x).sum()
    loss.backward()
    assert set(viz.mimebundle(loss)) == {"text/plain"}  # nor one whose graph backward freed
    assert "TwoLayerNet" in viz.mimebundle(nn.TwoLayerNet(4, 3, 2))["image/svg+xml"]


class _Pair(nn.Module):
    def __init__(self):
        self.fc = nn.Linear(3, 2, rng=0)

    def forward(self, x):
        y = self.fc(x)
        return y, y * 2


def test_displaying_a_module_that_returns_a_tuple_falls_back_to_text():
    model = _Pair()
    assert viz.mimebundle(model) == {"text/plain": repr(model)}  # it raised TypeError


def test_displaying_a_module_leaves_its_dropout_masks_as_they_were():
    def make():
        return nn.Sequential(nn.Linear(4, 50, rng=0), nn.Dropout(0.5, rng=0))

    shown, unseen = make(), make()
    viz.mimebundle(shown)  # runs a forward pass to draw the graph
    x = np.ones((1, 4), np.float32)
    np.testing.assert_array_equal(shown(x).data, unseen(x).data)


# ---------------------------------------------------------------- expressions


def test_expression_builds_the_graph():
    expr = parse("tanh(x) * y + x")
    assert expr.variables == ("x", "y")
    x, y = leaf(name="x"), leaf(name="y", seed=1)
    out = expr(x=x, y=y)
    np.testing.assert_allclose(out.data, np.tanh(x.data) * y.data + x.data, rtol=1e-6)
    ops = sorted(v for k, v in parse_dot(viz.to_dot(out))[0].items() if k.startswith("op"))
    assert ops == ["add", "mul", "tanh"]
    z = parse("-sum(x ** 2, axis=0, keepdims=True) / 2 @ y")
    assert z.variables == ("x", "y")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("x.grad", "attribute access is not allowed"),
        ("tanh(x).__class__", "attribute access is not allowed"),
        ("__import__('os')", "names starting with '_' are not allowed"),
        ("_x + 1", "names starting with '_' are not allowed"),
        ("system(x)", "unknown function 'system'"),
        ("np.exp(x)", "only calls of the functions by name"),
        ("x(1)", "unknown function 'x'"),
        ("x[0]", "indexing is not allowed"),
        ("(lambda: 1)()", "only calls of the functions by name"),
        ("lambda: 1", "lambda is not allowed"),
        ("'text'", "only numbers are allowed"),
        ("x if y else x", "conditional expression is not allowed"),
        ("x < y", "comparison is not allowed"),
        ("[x for x in y]", "comprehension is not allowed"),
        ("x // y", "operator FloorDiv is not allowed"),
        ("~x", "unary Invert is not allowed"),
        ("tanh", "tanh is a function; call it"),
        ("sum(x, axis=y)", "keyword values must be numbers"),
        ("sum(x, **k)", "**-unpacking is not allowed"),
        ("exp(*x)", "*-unpacking is not allowed"),
        ("x +", "incomplete expression 'x +': something is missing at its end (column 4)"),
        ("x = 1", "invalid syntax"),
        ("x + " * 200 + "x", "expression too long"),
    ],
)
def test_expression_parser_rejects(text, message):
    with pytest.raises(ExpressionError, match=re.escape(message)):
        parse(text)


@pytest.mark.parametrize(
    ("text", "column"),
    [
        ("x + ", 4),  # was column 0: the parser ran out of text
        ("-", 2),
        ("x +* y", 4),
        ("  x +* y", 6),  # leading spaces count (they were dropped before counting)
        ("  x.y", 3),
        ("x + foo(y)", 5),
        ("   sum(x, **k)", 11),
    ],
)
def test_expression_errors_give_the_column_in_the_text_as_typed(text, column):
    with pytest.raises(ExpressionError, match=rf"\(?column {column}\b"):
        parse(text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("2**64 * x", 2.0**64), ("3**40 * x", 3.0**40), ("-2 * x", -2.0), ("(1 + 1) / 4 * x", 0.5)],
)
def test_number_arithmetic_is_pythons_and_keeps_float32(text, expected):
    # Through the ops, 2**64 went through NumPy's int64 (giving 0), and -2 became a
    # NumPy int64 scalar that turned the float32 result into float64.
    out = parse(text)(x=mg.tensor([1.0], requires_grad=True))
    assert out.dtype == np.float32
    np.testing.assert_allclose(out.data, [expected], rtol=1e-6)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("9**9**9 * x", "math range error"),
        ("(-8)**(1/3) * x", "math domain error"),
        ("x + 1/0", "division by zero"),
        ("sum(x, axis=99999999999999999999999)", "in sum(...)"),
    ],
)
def test_expression_number_errors_are_expression_errors(text, message):
    with pytest.raises(ExpressionError, match=re.escape(message)):
        parse(text)(x=mg.tensor([1.0], requires_grad=True))


def test_expression_without_variables_has_no_graph():
    with pytest.raises(ExpressionError, match="uses no variables"):
        parse("exp(1) + 2")()


# ---------------------------------------------------------------- minigrad graph


def test_cli_expression_to_dot(tmp_path, capsys):
    out = tmp_path / "g.dot"
    assert main(["graph", "tanh(x) * y + x", "--show-grad", "--out", str(out)]) == 0
    nodes, edges = parse_dot(type("D", (), {"source": out.read_text()}))
    assert len(nodes) == 8 and len(edges) == 8
    assert all("|grad|" in label for key, label in nodes.items() if key.startswith("t"))
    assert f"wrote {out}" in capsys.readouterr().out


def test_cli_expression_variables_are_drawn_unless_set(tmp_path, capsys):
    # The help did not say the variables get random values, and nothing could set them.
    parser = argparse.ArgumentParser()
    viz_cli.add_arguments(parser)
    assert "drawn from a standard normal distribution (seed 0) unless given with --set" in (
        " ".join(parser.format_help().split())
    )
    out = tmp_path / "g.dot"
    args = ["graph", "x * y", "--show-data", "--out", str(out)]
    assert main([*args, "--set", "x=0.5", "--set", "y=-2"]) == 0
    labels = sorted(parse_dot(type("D", (), {"source": out.read_text()}))[0].values())
    assert labels == ["mul", "scalar float32\n-1.", "x\nscalar float32\n0.5",
                      "y\nscalar float32\n-2."]  # fmt: skip
    assert main([*args, "--set", "x=0.5"]) == 0
    drawn_y = np.random.default_rng(0).standard_normal(2)[1]  # y's draw, whether x is set or not
    assert f"y\\nscalar float32\\n{drawn_y:.3g}" in out.read_text()
    assert main([*args, "--set", "z=1"]) == 2
    assert "--set z: no such variable in 'x * y'; its variables are x, y" in (
        capsys.readouterr().err
    )
    for bad in ("x", "x=nan", "1x=2", "x=two"):
        with pytest.raises(SystemExit):
            main([*args, "--set", bad])
        assert "expected NAME=VALUE with a finite number" in capsys.readouterr().err
    assert main(["graph", "--model", "mlp", "--set", "x=1", "--out", str(out)]) == 2
    assert "--model has none" in capsys.readouterr().err


def test_every_function_the_graph_help_lists_works_on_its_scalar_variables(tmp_path, capsys):
    # The help listed matmul and dot, which need arrays: on scalars they only gave errors.
    parser = argparse.ArgumentParser()
    viz_cli.add_arguments(parser)
    listed = parser.description.split("Functions: ")[1].rstrip(".").split(", ")
    assert "matmul" not in listed and "dot" not in listed and len(listed) > 20
    for name in listed:
        out = tmp_path / f"{name}.dot"
        if main(["graph", f"{name}(x)", "--out", str(out)]) != 0:  # a binary function
            assert main(["graph", f"{name}(x, y)", "--out", str(out)]) == 0, name
        assert out.read_text().startswith("digraph"), name
    capsys.readouterr()


@needs_dot
def test_cli_model_to_svg(tmp_path):
    out = tmp_path / "net.svg"
    args = ["graph", "--model", "mlp", "--sizes", "6,5,4,3", "--collapse", "--out", str(out)]
    assert main(args) == 0
    text = out.read_text()
    ET.fromstring(text)
    assert "layers.4: Linear" in text


def test_cli_errors(tmp_path, capsys):
    assert main(["graph", "x.y", "--out", str(tmp_path / "g.dot")]) == 2
    assert "attribute access is not allowed" in capsys.readouterr().err
    assert main(["graph", "--out", str(tmp_path / "g.dot")]) == 2
    assert "exactly one" in capsys.readouterr().err
    args = ["graph", "--model", "two-layer-net", "--sizes", "4,3", "--out", str(tmp_path / "g.dot")]
    assert main(args) == 2
    assert "three sizes" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["graph", "x", "--out", str(tmp_path / "g.jpeg")])
    assert "expected a file name ending in .svg or .png" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # was a traceback from render: ".svg" has no extension
        main(["graph", "x", "--out", str(tmp_path / ".svg")])
    assert "'.svg' has no name before it" in capsys.readouterr().err.replace(
        str(tmp_path) + "/", ""
    )
    (tmp_path / "dir.svg").mkdir()
    with pytest.raises(SystemExit):  # was a traceback from the rename, after the drawing
        main(["graph", "x", "--out", str(tmp_path / "dir.svg")])
    assert "is a directory; give a file name in it" in capsys.readouterr().err
    assert os.listdir(tmp_path) == ["dir.svg"]


def test_cli_model_too_large_for_memory_says_so(tmp_path, capsys, monkeypatch):
    # --sizes 100000,100000,10 ended in a 74.5 GiB _ArrayMemoryError traceback.
    def no_memory(*args, **kwargs):
        raise MemoryError

    monkeypatch.setattr(nn, "MLP", no_memory)
    args = [
        "graph",
        "--model",
        "mlp",
        "--sizes",
        "100000,100000,10",
        "--out",
        str(tmp_path / "g.dot"),
    ]
    assert main(args) == 2
    assert "not enough memory for a net of sizes (100000, 100000, 10)" in capsys.readouterr().err
    assert os.listdir(tmp_path) == []


def test_cli_reports_a_file_it_cannot_write(tmp_path, monkeypatch, capsys):
    def refuse(*args):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(os, "open", refuse)
    assert main(["graph", "x", "--out", str(tmp_path / "g.dot")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("minigrad graph: error:") and "Permission denied" in err
    assert str(tmp_path / "g.dot") in err


# ---------------------------------------------------------------- plots


@pytest.fixture
def no_pyplot_leak():
    before = plt.get_fignums()
    yield
    assert plt.get_fignums() == before  # no helper left a figure open in pyplot


def read_png(path) -> tuple[int, int]:
    return png_size(open(path, "rb").read())


def test_plot_function(tmp_path, no_pyplot_leak):
    fig = viz.plot_function(F.sigmoid, F.step, F.relu, path=tmp_path / "act.png")
    names = ("sigmoid", "step", "relu")
    lines = [line for line in fig.axes[0].get_lines() if line.get_label() in names]
    assert [line.get_label() for line in lines] == list(names)
    x, y = lines[0].get_data()
    np.testing.assert_allclose(y, 1 / (1 + np.exp(-x)), atol=1e-6)
    assert min(read_png(tmp_path / "act.png")) > 100


def test_gradient_field_arrows_point_to_the_minimum(tmp_path, no_pyplot_leak):
    minimum = np.array([0.5, -0.25])

    def f(x):  # an off-centre, stretched bowl, so the arrows are not just -position
        return (x[0] - minimum[0]) ** 2 + 3 * (x[1] - minimum[1]) ** 2

    fig = viz.plot_gradient_field(f, num=9, path=tmp_path / "field.png")
    (quiver,) = [c for c in fig.axes[0].collections if isinstance(c, Quiver)]
    points = np.column_stack([quiver.X, quiver.Y])
    arrows = np.column_stack([quiver.U, quiver.V])
    assert len(points) == 81
    toward = np.einsum("ij,ij->i", arrows, minimum - points)
    away = np.linalg.norm(minimum - points, axis=1) > 1e-9
    assert (toward[away] > 0).all()
    # the arrows are -grad f exactly (from backprop)
    expected = -np.column_stack([2 * (points[:, 0] - 0.5), 6 * (points[:, 1] + 0.25)])
    np.testing.assert_allclose(arrows, expected, rtol=1e-6, atol=1e-9)
    assert min(read_png(tmp_path / "field.png")) > 100


def test_gradient_field_of_a_constant_function_is_zero(no_pyplot_leak):
    fig = viz.plot_gradient_field(lambda x: mg.tensor(np.ones(x.shape[1])), num=3)
    (quiver,) = [c for c in fig.axes[0].collections if isinstance(c, Quiver)]
    assert not np.any(quiver.U) and not np.any(quiver.V)


def test_gradient_field_rejects_a_function_that_mixes_points():
    with pytest.raises(ValueError, match="one per point"):
        viz.plot_gradient_field(lambda x: (x**2).sum())


def test_plot_descent_path(tmp_path, no_pyplot_leak):
    def f(x):
        return x[0] ** 2 + x[1] ** 2

    _, path = optim.gradient_descent(f, [-3.0, 4.0], lr=0.1, step_num=20, history=True)
    fig = viz.plot_descent_path(f, path, path=tmp_path / "descent.png")
    drawn = next(line for line in fig.axes[0].get_lines() if line.get_label() == "path")
    np.testing.assert_allclose(np.column_stack(drawn.get_data()), path)
    assert min(read_png(tmp_path / "descent.png")) > 100


def test_plot_history(tmp_path, no_pyplot_leak):
    history = {
        "epoch": [1.0, 2.0, 3.0],
        "loss": [2.0, 1.0, 0.5],
        "batch_loss": list(np.linspace(2.3, 0.4, 60)),
        "train_acc": [0.5, 0.8, 0.9],
        "test_acc": [0.45, 0.75, 0.85],
    }
    fig = viz.plot_history(history, path=tmp_path / "curves.png")
    loss_ax, acc_ax = fig.axes
    assert [line.get_label() for line in acc_ax.get_lines()] == ["train_acc", "test_acc"]
    np.testing.assert_allclose(acc_ax.get_lines()[0].get_xdata(), [1, 2, 3])
    labels = [line.get_label() for line in loss_ax.get_lines()]
    assert "loss" in labels and any(label.startswith("batch_loss (mean of") for label in labels)
    loss_line = loss_ax.get_lines()[labels.index("loss")]
    np.testing.assert_allclose(loss_line.get_xdata(), [0.5, 1.5, 2.5])  # epoch means at mid-epoch
    assert read_png(tmp_path / "curves.png")[0] > 500


def test_plot_decision_boundary(tmp_path, no_pyplot_leak):
    X = np.array([[-1.0, 0.0], [1.0, 0.0], [0.5, 0.2], [-0.5, -0.2]], dtype=np.float32)
    y = np.array([0, 1, 1, 0])

    def model(points):  # class 1 right of the x1 axis
        return F.concat([-points[:, :1], points[:, :1]], axis=1)

    fig = viz.plot_decision_boundary(model, X, y, resolution=50, path=tmp_path / "b.png")
    scatter = [c for c in fig.axes[0].collections if c.get_label().startswith("class")]
    assert [c.get_label() for c in scatter] == ["class 0", "class 1"]
    assert min(read_png(tmp_path / "b.png")) > 100
    # Bad input is named, not met by a boolean-index or empty-reduction error.
    with pytest.raises(ValueError, match=r"y must be 4 integer labels, one per row of X"):
        viz.plot_decision_boundary(model, X, y[:2])
    with pytest.raises(ValueError, match=r"y must be 4 integer labels"):
        viz.plot_decision_boundary(model, X, np.eye(2)[y])  # one-hot
    with pytest.raises(ValueError, match=r"X must have shape \(N, 2\) with N >= 1"):
        viz.plot_decision_boundary(model, X[:0], y[:0])


def test_a_plot_saves_the_way_the_docstring_shows(tmp_path, monkeypatch, no_pyplot_leak):
    """`viz.plot_decision_boundary(...)` then `plt.savefig()` wrote a blank picture: the
    helpers return a figure pyplot never saw. The module docstring says to save the figure
    returned; its example runs here, and so does that advice on a decision boundary."""
    import doctest

    from matplotlib.image import imread

    from minigrad.viz import plots

    monkeypatch.chdir(tmp_path)
    assert doctest.testmod(plots, raise_on_error=True).attempted == 4
    X = np.array([[-1.0, 0.0], [1.0, 0.0]], dtype=np.float32)
    fig = viz.plot_decision_boundary(lambda p: F.concat([-p, p], axis=1)[:, ::2], X, [0, 1])
    fig.savefig("regions.png")
    for name in ("activations.png", "regions.png"):
        pixels = imread(tmp_path / name)[..., :3]
        colours = np.unique(pixels.reshape(-1, 3), axis=0)
        assert len(colours) > 50, name  # curves, regions, text: not one blank colour
    for helper in viz.__all__:
        if helper.startswith(("plot_", "show_")):
            assert "fig.savefig(...)` (not `plt.savefig`)" in getattr(viz, helper).__doc__


def test_show_images(tmp_path, no_pyplot_leak):
    images = np.random.default_rng(0).random((7, 784))
    labels, predictions = [1, 2, 3, 4, 5, 6, 7], [1, 2, 0, 4, 5, 6, 7]
    fig = viz.show_images(images, labels, predictions, ncols=4, path=tmp_path / "digits.png")
    shown = [ax for ax in fig.axes if ax.images]
    assert len(shown) == 7 and len(fig.axes) == 8
    assert shown[2].get_title() == "3 -> 0"
    assert shown[2].title.get_color() != shown[0].title.get_color()
    assert shown[0].images[0].get_array().shape == (28, 28)
    assert min(read_png(tmp_path / "digits.png")) > 100
    with pytest.raises(ValueError, match="7 images but 2 labels"):
        viz.show_images(images, [1, 2])
    with pytest.raises(ValueError, match="no images to show"):
        viz.show_images(images[:0])


def test_importing_viz_does_not_import_matplotlib():
    code = "import sys, minigrad, minigrad.viz; print('matplotlib' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "False", result.stderr


# ---------------------------------------------------------------- dot's time and lifetime


@needs_dot
def test_one_variable_used_a_hundred_times_draws_fast(tmp_path):
    # "x+x+...+x" with 100 terms kept dot busy for over 5 minutes (50 terms: 2.6 s).
    expression = "+".join(["x"] * 100)
    start = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "minigrad", "graph", expression, "--out", str(tmp_path / "g.svg")],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert time.monotonic() - start < 30
    source = viz.to_dot(parse(expression)(x=mg.Tensor(1.0, requires_grad=True, name="x"))).source
    assert source.count("t0 ->") == 3  # the first uses; the later ones from dashed copies
    assert source.count('"x\\nscalar float32"') == 100 - 3 + 1


def fake_dot(tmp_path, monkeypatch):
    """A `dot` on PATH that records its pid and never finishes."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "dot"
    script.write_text(f"#!/bin/sh\necho $$ > {tmp_path / 'dot.pid'}\nexec sleep 60\n")
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return tmp_path / "dot.pid"


def gone(pid, within=10.0):
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.02)
    return False


def test_dot_is_given_a_time_limit_and_a_graph_too_large_says_what_to_do(tmp_path, monkeypatch):
    pid_file = fake_dot(tmp_path, monkeypatch)
    monkeypatch.setattr(viz.graph, "DOT_TIMEOUT", 0.5)
    with pytest.raises(
        RuntimeError, match=r"did not lay out the graph \(\d+ nodes\) within 0.5 s; draw a smaller"
    ):
        viz.render(leaf(name="x") * 2, path=tmp_path / "g.svg")
    assert gone(int(pid_file.read_text()))
    assert not (tmp_path / "g.svg").exists()


@pytest.mark.skipif(sys.platform != "linux", reason="the parent-death signal is Linux's")
def test_dot_dies_with_minigrad_even_by_sigkill(tmp_path, monkeypatch):
    # Killing `minigrad graph` left dot running.
    pid_file = fake_dot(tmp_path, monkeypatch)
    child = subprocess.Popen(
        [sys.executable, "-m", "minigrad", "graph", "x * 2", "--out", str(tmp_path / "g.svg")]
    )
    deadline = time.monotonic() + 30
    while not (pid_file.exists() and pid_file.read_text().strip()):
        assert child.poll() is None and time.monotonic() < deadline
        time.sleep(0.02)
    child.kill()
    child.wait(timeout=10)
    assert gone(int(pid_file.read_text()))


@pytest.mark.parametrize(
    "expression, message",
    [
        ("x * " + "9" * 400, r"the number 9999999999\.\.\.99999 \(400 digits\) is too large"),
        ("x / 0", r"in x / 0: div: divide by zero"),
        ("log(-x * x - 1)", r"in log\(-x \* x - 1\): log: invalid value"),
        ("x * 1e39", r"in x \* 1e\+39: mul: overflow"),
    ],
)
def test_cli_expression_with_no_finite_value_is_a_clear_error(expression, message, tmp_path):
    # A 400-digit literal ended in an OverflowError traceback; the others exited 0 with raw
    # NumPy RuntimeWarnings on stderr.
    result = subprocess.run(
        [sys.executable, "-W", "default", "-m", "minigrad", "graph", "--out",
         str(tmp_path / "g.dot"), "--", expression],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 2
    assert re.search(f"^minigrad graph: error: {message}", result.stderr), result.stderr
    assert "Warning" not in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "g.dot").exists()


def test_cli_gradient_that_is_not_finite_names_the_op(tmp_path, capsys):
    assert main(["graph", "--show-grad", "--out", str(tmp_path / "g.dot"), "sqrt(x - x)"]) == 2
    assert "computing the gradients: sqrt produced inf in its gradient" in capsys.readouterr().err


def test_an_expression_that_underflows_is_drawn(tmp_path):
    assert main(["graph", "--out", str(tmp_path / "g.dot"), "exp(-x * x * 1e4)"]) == 0
