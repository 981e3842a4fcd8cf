"""The `minigrad` command: `train`, `graph` and `gradcheck`, each with --help."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Callable

# subcommand -> module with `add_arguments(parser)` and `run(args) -> int`
COMMANDS = {
    "train": (
        "minigrad.train",
        "train a network (default: the book's two-layer net on embedded MNIST)",
    ),
    "graph": ("minigrad.viz.cli", "render a computational graph with graphviz"),
    "gradcheck": (
        "minigrad.commands.gradcheck",
        "check every registered op's gradients numerically",
    ),
}

# A module an optional part of minigrad needs -> the extra that installs it
EXTRAS = {"hypothesis": "test", "matplotlib": "plot", "mpi4py": "distributed"}


def output_path(extensions: tuple[str, ...]) -> Callable[[str], str]:
    """An argparse type for a file a command will write: checked before any work is done."""

    def parse(path: str) -> str:
        directory = os.path.dirname(path) or "."
        if not os.path.isdir(directory):
            raise argparse.ArgumentTypeError(f"directory {directory!r} does not exist")
        if os.path.isdir(path):
            raise argparse.ArgumentTypeError(f"{path!r} is a directory; give a file name in it")
        if not os.access(directory, os.W_OK):
            raise argparse.ArgumentTypeError(f"directory {directory!r} is not writable")
        name, extension = os.path.splitext(os.path.basename(path))
        if extension.lower() not in extensions:
            expected = f"expected a file name ending in {' or '.join(extensions)}"
            if name.lower() in extensions:  # splitext takes ".svg" alone for a name
                raise argparse.ArgumentTypeError(f"{expected}; {path!r} has no name before it")
            raise argparse.ArgumentTypeError(f"{expected}, got {path!r}")
        return path

    return parse


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = argparse.ArgumentParser(prog="minigrad", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    parsers = {
        name: sub.add_parser(name, help=h, description=h) for name, (_, h) in COMMANDS.items()
    }
    # Only the chosen command's module is imported (graph needs graphviz, gradcheck
    # hypothesis), before parsing, so that `minigrad train --help` lists train's options.
    chosen = next((a for a in argv if not a.startswith("-")), None)
    try:
        if chosen in COMMANDS:
            module = importlib.import_module(COMMANDS[chosen][0])
            module.add_arguments(parsers[chosen])
        args = parser.parse_args(argv)
        return module.run(args)
    except KeyboardInterrupt:  # Ctrl-C outside training (a download, dot): no traceback
        print(f"minigrad {chosen}: interrupted", file=sys.stderr)
        return 130
    except ModuleNotFoundError as e:
        extra = EXTRAS.get((e.name or "").partition(".")[0])
        if extra is None:
            raise
        print(
            f"minigrad {chosen}: error: this needs {e.name}, which is not installed; "
            f"install it with: pip install 'minigrad[{extra}]'",
            file=sys.stderr,
        )
        return 1


if __name__ == "__main__":
    sys.exit(main())
