"""The `minigrad` command: `train`, `graph` and `gradcheck`, each with --help."""

from __future__ import annotations

import argparse
import importlib
import sys

# subcommand -> module with `add_arguments(parser)` and `run(args) -> int`
COMMANDS = {
    "train": (
        "minigrad.train",
        "train a network (default: the book's two-layer net on embedded MNIST)",
    ),
    "graph": ("minigrad.viz.cli", "render a computational graph with graphviz"),
    "gradcheck": ("minigrad.gradcheck", "check every registered op's gradients numerically"),
}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = argparse.ArgumentParser(prog="minigrad", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    parsers = {
        name: sub.add_parser(name, help=h, description=h) for name, (_, h) in COMMANDS.items()
    }
    # Only the chosen command's module is imported (train needs matplotlib, graph graphviz),
    # before parsing, so that `minigrad train --help` lists train's options.
    chosen = next((a for a in argv if not a.startswith("-")), None)
    if chosen in COMMANDS:
        module = importlib.import_module(COMMANDS[chosen][0])
        module.add_arguments(parsers[chosen])
    args = parser.parse_args(argv)
    return module.run(args)


if __name__ == "__main__":
    sys.exit(main())
