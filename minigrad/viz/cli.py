"""`minigrad graph`: render the graph of a built-in model or of an expression, e.g.

    minigrad graph --model two-layer-net --out net.svg
    minigrad graph --model mlp --sizes 784,100,100,10 --collapse --out mlp.png
    minigrad graph --model simple-cnn --out convnet.svg
    minigrad graph "tanh(x) * y + x" --show-grad --out graph.pdf
    minigrad graph "x * y" --set x=0.5 --set y=2 --show-data --out xy.svg

The format comes from the extension of --out. An expression's variables are
scalars drawn from a standard normal distribution (seed 0), except those
given with --set.
"""

from __future__ import annotations

import argparse
import math
import sys

import numpy as np

from minigrad import functional as F
from minigrad import nn
from minigrad.cli import output_path
from minigrad.engine import Tensor
from minigrad.viz.expr import FUNCTIONS, ExpressionError, parse
from minigrad.viz.graph import FORMATS, render, trace

DEFAULT_SIZES = {"two-layer-net": (784, 50, 10), "mlp": (784, 100, 10)}
CONVNETS = {"simple-cnn": nn.SimpleConvNet, "deep-cnn": nn.DeepConvNet}  # on (N, 1, 28, 28)
BATCH = 100  # the book's mini-batch, so the shapes read as in chapter 4


def _sizes(text: str) -> tuple[int, ...]:
    try:
        sizes = tuple(int(n) for n in text.split(","))
    except ValueError:
        sizes = ()
    if len(sizes) < 2 or min(sizes) < 1:
        raise argparse.ArgumentTypeError(
            f"expected at least two positive layer sizes separated by commas, got {text!r}"
        )
    return sizes


def _assignment(text: str) -> tuple[str, float]:
    name, equals, value = text.partition("=")
    try:
        number = float(value)
    except ValueError:
        number = math.nan
    if not (equals and name.strip().isidentifier() and math.isfinite(number)):
        raise argparse.ArgumentTypeError(
            f"expected NAME=VALUE with a finite number, e.g. x=0.5, got {text!r}"
        )
    return name.strip(), number


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of `minigrad graph`."""
    # Matrix products need arrays; the command line's variables are scalars.
    scalar_functions = [name for name in FUNCTIONS if name not in ("matmul", "dot")]
    parser.description = (
        "Render a computational graph with Graphviz: a built-in model's loss on a batch of "
        f"{BATCH} random inputs, or an expression over scalar variables, e.g. "
        '"tanh(x) * y + x". Functions: ' + ", ".join(scalar_functions) + "."
    )
    parser.add_argument(
        "expression",
        nargs="?",
        help="an expression to draw (instead of --model); its variables are scalars drawn "
        "from a standard normal distribution (seed 0) unless given with --set. One that "
        "starts with a minus sign goes last, after --: minigrad graph --out g.svg -- '-x * y'",
    )
    parser.add_argument(
        "--set",
        type=_assignment,
        action="append",
        metavar="NAME=VALUE",
        help="the value of an expression's variable, e.g. --set x=0.5 (repeat for more)",
    )
    parser.add_argument(
        "--model", choices=(*DEFAULT_SIZES, *CONVNETS), help="a built-in model to draw"
    )
    parser.add_argument(
        "--sizes",
        type=_sizes,
        metavar="N,N[,N...]",
        help="layer sizes (default: two-layer-net 784,50,10; mlp 784,100,10)",
    )
    parser.add_argument(
        "--out",
        type=output_path(tuple("." + f for f in FORMATS)),
        default="graph.svg",
        metavar="PATH",
        help=f"output file (default graph.svg); the format comes from the extension: "
        f"{', '.join(FORMATS)}",
    )
    parser.add_argument(
        "--show-grad",
        action="store_true",
        help="run backward first; show gradient norms and colour nodes by them (log scale)",
    )
    parser.add_argument("--show-data", action="store_true", help="show values (ranges if large)")
    parser.add_argument(
        "--collapse", action="store_true", help="draw each module of a --model as one node"
    )
    parser.add_argument(
        "--rankdir",
        choices=("TB", "LR", "BT", "RL"),
        default="TB",
        help="direction of the data flow: top to bottom (default), left to right, ...",
    )


def _model_loss(kind: str, sizes: tuple[int, ...] | None) -> tuple[Tensor, nn.Module]:
    rng = np.random.default_rng(0)
    if kind in CONVNETS:
        if sizes:
            raise ValueError(f"--sizes is for the fully connected models, not {kind}")
        model = CONVNETS[kind](rng=0)
        x = Tensor(rng.random((BATCH, 1, 28, 28), dtype=np.float32), name="x")
        return F.softmax_cross_entropy(model(x), rng.integers(0, 10, BATCH)), model
    sizes = sizes or DEFAULT_SIZES[kind]
    if kind == "two-layer-net":
        if len(sizes) != 3:
            raise ValueError(
                f"two-layer-net takes three sizes (input, hidden, output), got {sizes}"
            )
        model: nn.Module = nn.TwoLayerNet(*sizes, rng=0)
    else:
        model = nn.MLP(list(sizes), rng=0)
    x = Tensor(rng.random((BATCH, sizes[0]), dtype=np.float32), name="x")
    t = rng.integers(0, sizes[-1], BATCH)
    return F.softmax_cross_entropy(model(x), t), model


def _expression_output(text: str, given: dict[str, float]) -> Tensor:
    """The expression's output, its variables set from `given` or drawn (seeded)."""
    expression = parse(text)
    unknown = [name for name in given if name not in expression.variables]
    if unknown:
        raise ValueError(
            f"--set {', '.join(unknown)}: no such variable in {text!r}; its variables are "
            f"{', '.join(expression.variables) or 'none'}"
        )
    rng = np.random.default_rng(0)
    draws = {name: rng.standard_normal() for name in expression.variables}  # the same, set or not
    values = {
        name: Tensor(given.get(name, draw), requires_grad=True, name=name)
        for name, draw in draws.items()
    }
    return expression(**values)


def run(args: argparse.Namespace) -> int:
    """`minigrad graph`: write the picture to --out."""
    if (args.expression is None) == (args.model is None):
        print(
            "minigrad graph: error: give either an expression or --model (exactly one)",
            file=sys.stderr,
        )
        return 2
    try:
        if args.model:
            if args.set:
                raise ValueError("--set gives an expression's variables; --model has none")
            out, model = _model_loss(args.model, args.sizes)
        else:
            if args.sizes or args.collapse:
                raise ValueError("--sizes and --collapse apply to --model only")
            out, model = _expression_output(args.expression, dict(args.set or ())), None
    except (ExpressionError, ValueError) as e:
        print(f"minigrad graph: error: {e}", file=sys.stderr)
        return 2
    except MemoryError:  # the picture needs no such sizes: its shapes read the same
        print(
            f"minigrad graph: error: not enough memory for a net of sizes {args.sizes}; "
            "smaller ones draw the same graph",
            file=sys.stderr,
        )
        return 2
    graph = trace(out)
    if args.show_grad:
        # Keep every intermediate gradient so every node gets a colour.
        for t in graph.tensors:
            if not t.is_leaf:
                t.retain_grad()
        out.backward(np.ones_like(out.data))
    try:
        render(
            graph,
            path=args.out,
            show_grad=args.show_grad,
            show_data=args.show_data,
            rankdir=args.rankdir,
            modules=model,
            collapse=args.collapse,
        )
    except (RuntimeError, OSError) as e:  # dot is missing (the message says how to install it),
        print(f"minigrad graph: error: {e}", file=sys.stderr)  # or the file cannot be written
        return 1
    print(f"wrote {args.out}")
    return 0
