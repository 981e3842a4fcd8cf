"""Pictures: computational graphs with Graphviz, and the book's plots with matplotlib.

    from minigrad import viz
    viz.render(loss, path="graph.svg")
    viz.plot_gradient_field(lambda x: x[0] ** 2 + x[1] ** 2)

The plot helpers import matplotlib on first use, so `import minigrad.viz`
does not need it.
"""

from typing import Any

from minigrad.viz.graph import Trace, mimebundle, render, to_dot, trace

_PLOTS = (
    "plot_function",
    "plot_gradient_field",
    "plot_descent_path",
    "plot_history",
    "plot_decision_boundary",
    "show_images",
)

__all__ = ["Trace", "mimebundle", "render", "to_dot", "trace", *_PLOTS]


def __getattr__(name: str) -> Any:
    if name in _PLOTS:
        from minigrad.viz import plots

        return getattr(plots, name)
    raise AttributeError(f"module 'minigrad.viz' has no attribute {name!r}")
