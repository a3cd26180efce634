"""The axes a figure draws on: the caller's (``ax=``) or a new figure's, for the figures
that accept an ``ax`` (``dynafit.plot.inclusion``, ``dynafit.plot.r2_vs_dim``)."""

from __future__ import annotations

import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.figure import Figure


def figure_and_axes(ax: Axes | None, figsize: tuple[float, float]) -> tuple[Figure, Axes]:
    """``ax`` and the figure that holds it (the top-level figure when ``ax`` sits in a
    subfigure), or a new ``figsize`` figure with one axes."""
    if ax is None:
        fig, new = plt.subplots(figsize=figsize)
        return fig, new
    if not isinstance(ax, Axes):
        raise ValueError(f"ax must be a matplotlib Axes or None, got {type(ax).__name__}")
    fig = ax.figure
    return (fig if isinstance(fig, Figure) else fig.figure), ax
