"""One look for every figure of the report: readable in colour and in grey-scale print.

Every series gets a colour from the Okabe-Ito palette (distinguishable with the common
colour-vision deficiencies) AND its own line style and marker, so that a black-and-white
copy of the page still tells the lines apart.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import matplotlib

matplotlib.use("Agg")

from matplotlib import pyplot as plt  # noqa: E402  (after choosing the Agg backend)
from matplotlib.figure import Figure  # noqa: E402

# Okabe & Ito (2008), "Color Universal Design": 8 colours safe for colour-blind readers.
COLOURS = (
    "#0072B2",
    "#D55E00",
    "#009E73",
    "#CC79A7",
    "#E69F00",
    "#56B4E9",
    "#000000",
    "#F0E442",
)
LINESTYLES = ("-", "--", ":", "-.")
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*", "<", ">")

RC: dict[str, Any] = {
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.labelsize": 9,
    "legend.fontsize": 8,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "lines.linewidth": 1.5,
    "lines.markersize": 4.5,
    "svg.fonttype": "none",
    "svg.hashsalt": "losslab",
    "path.simplify": True,
}

DPI = 110


def series_style(i: int) -> dict[str, Any]:
    """Matplotlib keyword arguments of the i-th series (i >= 0): colour, dashes, marker.

    Line style and marker cycle with coprime periods (4 and 10), so the first 20 series
    differ in the (line style, marker) pair alone, which is what survives grey-scale print.
    """
    return {
        "color": COLOURS[i % len(COLOURS)],
        "linestyle": LINESTYLES[i % len(LINESTYLES)],
        "marker": MARKERS[i % len(MARKERS)],
    }


def hatch(i: int) -> str:
    """A hatch pattern for the i-th bar series (bars have no line style)."""
    return ("", "//", "..", "xx", "\\\\", "++", "oo", "--")[i % 8]


@contextmanager
def style() -> Iterator[None]:
    """Apply the report's matplotlib settings while drawing."""
    with plt.rc_context(RC):  # type: ignore[arg-type]  # stubs take only literal rc keys
        yield


def new_figure(nrows: int = 1, ncols: int = 1, *, width: float = 6.4, height: float = 3.6,
               **kwargs: Any) -> tuple[Figure, Any]:
    """A figure (not registered with pyplot, so nothing leaks) and its axes array.

    The figure's size is ``width`` x ``height`` inches per panel; ``kwargs`` go to
    :meth:`Figure.subplots` (e.g. ``sharey``). Returns ``(fig, axes)`` with ``axes`` always a
    2-D array (nrows, ncols).
    """
    fig = Figure(figsize=(width * ncols, height * nrows), layout="constrained", dpi=DPI)
    axes = fig.subplots(nrows, ncols, squeeze=False, **kwargs)
    return fig, axes

