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
    parser = argparse.ArgumentParser(prog="minigrad", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    modules = {}
    for name, (module_name, help_text) in COMMANDS.items():
        sub_parser = sub.add_parser(name, help=help_text, description=help_text)
        modules[name] = module_name
        sub_parser.set_defaults(_module=module_name)
    # Only the chosen command's module is imported (train needs matplotlib, graph graphviz).
    args, _ = parser.parse_known_args(argv)
    module = importlib.import_module(args._module)
    chosen = sub.choices[args.command]
    module.add_arguments(chosen)
    args = parser.parse_args(argv)
    return module.run(args)


if __name__ == "__main__":
    sys.exit(main())
