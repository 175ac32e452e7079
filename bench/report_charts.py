"""The report's charts as inline SVG strings (matplotlib, no display, no pyplot state).

Text stays text in the SVG (smaller, selectable), math parsing is off (a `$` in a model name is
just a dollar), and ids are salted with a constant, so the same data always gives the same bytes.
"""

from __future__ import annotations

import io
import math

import matplotlib
from matplotlib.figure import Figure

STYLE = {"svg.fonttype": "none", "svg.hashsalt": "slmbench-report", "text.parse_math": False,
         "font.size": 9, "axes.titlesize": 9}
PANEL_WIDTH_IN = 3.6
ROW_HEIGHT_IN = 0.28


def interval_panels(panels: list[dict], columns: int = 2) -> str:
    """Point estimates with their 95% CIs as horizontal interval bars, one panel per metric.

    Args:
        panels: ``{"title", "threshold" (or None), "rows": [(label, value, low, high), ...]}``;
            a value of None draws nothing for that row, a low of None draws the point alone.
        columns: panels per row of the figure.
    """
    if not panels:
        return ""
    columns = min(columns, len(panels))
    rows_of_panels = math.ceil(len(panels) / columns)
    labels = max(len(panel["rows"]) for panel in panels)
    height = rows_of_panels * (0.7 + ROW_HEIGHT_IN * labels)
    with matplotlib.rc_context(STYLE):
        figure = Figure(figsize=(PANEL_WIDTH_IN * columns + 1.6, height))
        for index, panel in enumerate(panels):
            _interval_axes(figure.add_subplot(rows_of_panels, columns, index + 1), panel, show_labels=index % columns == 0)
        figure.tight_layout()
        return _svg(figure)


def _interval_axes(axes, panel: dict, show_labels: bool) -> None:
    rows = panel["rows"]
    positions = list(range(len(rows)))[::-1]
    for y, (_, value, low, high) in zip(positions, rows):
        if value is None:
            continue
        if low is not None and high is not None:
            axes.hlines(y, low, high, color="#4a78b5", linewidth=3, alpha=0.55)
        axes.plot([value], [y], "o", color="#1f3f73", markersize=4)
    if panel.get("threshold") is not None:
        axes.axvline(panel["threshold"], color="#c0392b", linestyle=":", linewidth=1)
    axes.set_yticks(positions, [label for label, *_ in rows] if show_labels else [""] * len(rows))
    axes.set_ylim(-0.6, len(rows) - 0.4)
    axes.set_title(panel["title"])
    axes.grid(axis="x", alpha=0.3)


def loss_curve(history: dict, title: str) -> str:
    """Train loss per step and val loss per epoch (``loss_history.json`` of an adapter), as SVG."""
    with matplotlib.rc_context(STYLE):
        figure = Figure(figsize=(5.5, 3))
        axes = figure.add_subplot()
        train, val = history.get("train") or [], history.get("val") or []
        axes.plot([e["epoch"] for e in train], [e["loss"] for e in train], linewidth=1, label="train (per step)")
        if val:
            axes.plot([e["epoch"] for e in val], [e["loss"] for e in val], "o-", label="val (per epoch)")
        best = history.get("best")
        if best:
            axes.axvline(best["epoch"], color="grey", linestyle=":", label=f"kept: epoch {best['epoch']:g}")
        axes.set(xlabel="epoch", ylabel="loss", title=title)
        axes.grid(alpha=0.3)
        axes.legend()
        figure.tight_layout()
        return _svg(figure)


def _svg(figure: Figure) -> str:
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", metadata={"Date": None, "Creator": None, "Format": None, "Type": None})
    text = buffer.getvalue()
    return text[text.index("<svg"):]  # drop the XML declaration and doctype: it is inlined in HTML
