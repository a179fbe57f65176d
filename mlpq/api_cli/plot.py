"""``mlpq plot``'s renderer: any figure description (``mlpq.figures``) drawn with matplotlib on the Agg canvas.

The layout is fixed in inches, never fitted to the text: each panel's axes have the same size and place
whatever the labels; the legend goes under its panel and the caption under all of them, so more entries or
caption lines make the image taller, never the axes smaller. Only ``mlpq plot`` imports this module.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure as Canvas
from matplotlib.ticker import MaxNLocator, PercentFormatter

from mlpq import figures
from mlpq.api_cli import figure_of

if TYPE_CHECKING:
    from mlpq.api_cli.api import JobView

DPI = 100
AXES_IN = {False: (4.8, 3.4), True: (5.0, 5.0)}
"""Width and height of a panel's axes, in inches: plain panels, and square ones."""
LEFT_IN, RIGHT_IN, TOP_IN, BOTTOM_IN = 0.9, 0.35, 0.45, 0.6
"""Around each axes: tick labels and the y label, a gap, the title, tick labels and the x label."""
COLORBAR_GAP_IN, COLORBAR_IN, COLORBAR_LABELS_IN = 0.15, 0.2, 0.8
LEGEND_ROW_IN, LEGEND_PAD_IN = 0.19, 0.12
CAPTION_LINE_IN, CAPTION_PAD_IN, CAPTION_CHAR_IN = 0.16, 0.15, 0.062
SMALL = 8
MARKERS: dict[str, tuple[str, float]] = {"none": ("", 0), "circle": ("o", 3), "open-circle": ("o", 4.5),
                                         "square": ("s", 3), "cross": ("x", 6), "star": ("*", 15)}
"""matplotlib's marker and its size for each of ``figures.Marker``."""
LINES = {"solid": "-", "dashed": "--", "none": "none"}


def literal(text: str) -> str:
    """Text matplotlib prints as it is: a pair of ``$`` in a stored value would start mathtext."""
    return text.replace("$", r"\$")


def colour(group: int | None) -> str:
    return "black" if group is None else f"C{group % 10}"


def width_of(panel: figures.Panel) -> float:
    extra = COLORBAR_GAP_IN + COLORBAR_IN + COLORBAR_LABELS_IN if panel.contours else 0.0
    return LEFT_IN + AXES_IN[panel.square][0] + extra + RIGHT_IN


def legend_rows(panel: figures.Panel) -> int:
    return sum(1 for series in panel.series if series.legend)


def draw_series(axes: Axes, series: figures.Series) -> None:
    marker, size = MARKERS[series.marker]
    style: dict[str, Any] = {"color": colour(series.group), "linestyle": LINES[series.line], "marker": marker,
                             "markersize": size, "linewidth": 1.2}
    if series.legend:
        style["label"] = literal(series.label)
    if series.marker == "open-circle":
        style["markerfacecolor"] = "none"
    if series.group is None:  # marks that belong to no job stand out: white with a black edge, on top
        style.update(markerfacecolor="white", markeredgecolor="black", zorder=5)
    xs, ys = zip(*series.points) if series.points else ((), ())
    axes.plot(xs, ys, **style)


def draw_axis(axes: Axes, axis: figures.Axis, which: str) -> None:
    getattr(axes, f"set_{which}label")(literal(axis.label))
    if axis.scale == "log":
        getattr(axes, f"set_{which}scale")("log")
    if axis.limits is not None:
        getattr(axes, f"set_{which}lim")(axis.limits)
    ticks = getattr(axes, f"{which}axis")
    if axis.ticks == "integer":
        ticks.set_major_locator(MaxNLocator(integer=True))
    elif axis.ticks == "percent":
        ticks.set_major_formatter(PercentFormatter(1.0))


def draw_panel(canvas: Canvas, panel: figures.Panel, left_in: float, top_in: float) -> Axes:
    """The panel in the cell whose top-left corner is ``left_in``, ``top_in`` inches from the figure's; its
    legend under it."""
    width, height = canvas.get_size_inches()
    axes_w, axes_h = AXES_IN[panel.square]
    left, bottom = left_in + LEFT_IN, top_in + TOP_IN + axes_h
    axes = canvas.add_axes((left / width, 1 - bottom / height, axes_w / width, axes_h / height))
    if panel.contours:
        grid = panel.contours
        filled = axes.contourf(grid.x, grid.y, grid.z, levels=grid.levels, cmap="viridis")
        bar = canvas.add_axes(((left + axes_w + COLORBAR_GAP_IN) / width, 1 - bottom / height, COLORBAR_IN / width,
                               axes_h / height))
        canvas.colorbar(filled, cax=bar, label=literal(grid.label))
    else:
        axes.grid(alpha=0.3)
    for series in panel.series:
        draw_series(axes, series)
    axes.set_title(literal(panel.title))
    draw_axis(axes, panel.x, "x")
    draw_axis(axes, panel.y, "y")
    handles, labels = axes.get_legend_handles_labels()
    if handles:
        canvas.legend(handles, labels, loc="upper left", fontsize=SMALL, frameon=False, borderaxespad=0,
                      bbox_to_anchor=(left / width, 1 - (bottom + BOTTOM_IN) / height))
    return axes


def caption_lines(text: str, width_in: float) -> list[str]:
    chars = max(20, int((width_in - 2 * CAPTION_PAD_IN) / CAPTION_CHAR_IN))
    return [wrapped for line in text.splitlines() for wrapped in textwrap.wrap(line, chars) or [""]]


def render(figure: figures.Figure) -> Canvas:
    """The description as a matplotlib figure: panels in rows of ``figure.columns``, the caption under them."""
    panels = figure.panels or (figures.Panel("nothing recorded yet", figures.Axis(""), figures.Axis(""), ()),)
    columns = max(1, min(figure.columns, len(panels)))
    rows = [panels[start:start + columns] for start in range(0, len(panels), columns)]
    widths = [max(width_of(row[i]) for row in rows if i < len(row)) for i in range(columns)]
    entries = [max(legend_rows(panel) for panel in row) for row in rows]
    legend_in = [count * LEGEND_ROW_IN + LEGEND_PAD_IN if count else 0.0 for count in entries]
    heights = [TOP_IN + max(AXES_IN[panel.square][1] for panel in row) + BOTTOM_IN + extra
               for row, extra in zip(rows, legend_in)]
    width = sum(widths)
    caption = caption_lines(figure.caption, width)
    caption_in = len(caption) * CAPTION_LINE_IN + CAPTION_PAD_IN if caption else 0.0
    canvas = Canvas(figsize=(width, sum(heights) + caption_in), dpi=DPI)
    top = 0.0
    for row, height in zip(rows, heights):
        for panel, left in zip(row, [sum(widths[:i]) for i in range(len(row))]):
            draw_panel(canvas, panel, left, top)
        top += height
    if caption:
        canvas.text(CAPTION_PAD_IN / width, caption_in / canvas.get_size_inches()[1], literal("\n".join(caption)),
                    fontsize=SMALL, color="dimgray", va="top", linespacing=1.4)
    return canvas


def draw(views: Sequence[JobView], path: Path) -> tuple[int, int]:
    """Draw jobs of one kind into ``path`` (PNG, SVG or PDF by its suffix); returns the size in pixels."""
    canvas = render(figure_of.figure(views))
    FigureCanvasAgg(canvas)
    canvas.savefig(path)
    width, height = canvas.get_size_inches() * canvas.dpi
    return round(width), round(height)
