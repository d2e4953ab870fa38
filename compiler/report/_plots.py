"""Charts of the report as inline SVG: scores per system, and per-group breakdowns.

matplotlib draws them through its object API (`Figure` + the SVG canvas), so no
pyplot state is shared and no display backend is needed. Text stays text in the
SVG (`svg.fonttype: none`), the output is deterministic (fixed hash salt, no date),
and element ids are prefixed per chart so that several charts can share one page.
"""

from __future__ import annotations

import html
import io
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["Bar", "GroupSeries", "group_chart", "score_chart"]

PALETTE = ("#4269d0", "#efb118", "#ff725c", "#6cc5b0", "#a463f2", "#ff8ab7", "#97bbf5", "#9c6b4e")
"""Categorical colours (Observable 10), distinguishable for the common colour-vision deficiencies."""
GOOD = "#1a7f37"
BAD = "#cf222e"
PLAIN = "#8c959f"
GATE = "#cf222e"
RC = {
    "svg.fonttype": "none",
    "svg.hashsalt": "auditc-report",
    "font.size": 9,
    "font.family": "sans-serif",
    "axes.spines.top": False,
    "axes.spines.right": False,
}
BAR_HEIGHT_IN = 0.32
MAX_LABEL = 28


@dataclass(frozen=True)
class Bar:
    """One system's value of a score, and how it compares with the others."""

    label: str
    value: float
    text: str
    """The value as the score's format renders it."""
    rank: str | None = None
    """`best`, `worst`, or None (no comparison, or in between)."""


@dataclass(frozen=True)
class GroupSeries:
    """One system's values of a measurement column, per group."""

    label: str
    values: dict[str, float]
    low: dict[str, float] | None = None
    high: dict[str, float] | None = None


def score_chart(
    title: str,
    bars: Sequence[Bar],
    *,
    limits: tuple[float | None, float | None] = (None, None),
    gate: tuple[float | None, float | None] = (None, None),
    chart_id: str,
) -> str:
    """A horizontal bar per system, the best green and the worst red, gate bounds dashed.

    Args:
        title: What the chart shows, for screen readers (the page prints it above the chart).
        bars: One per system.
        limits: The score's declared minimum and maximum, used as the axis range.
        gate: The gate's min and max, drawn as dashed lines.
        chart_id: Unique on the page; prefixes the SVG's element ids.

    Returns:
        An `<svg>` element.
    """
    from matplotlib.figure import Figure

    with _style():
        fig = Figure(figsize=(5.2, 0.9 + BAR_HEIGHT_IN * len(bars)), layout="constrained")
        ax = fig.add_subplot()
        positions = list(range(len(bars)))[::-1]
        colours = [GOOD if b.rank == "best" else BAD if b.rank == "worst" else PLAIN for b in bars]
        ax.barh(positions, [b.value for b in bars], color=colours, height=0.6)
        ax.set_yticks(positions, [_short(b.label) for b in bars])
        _set_limits(ax, [b.value for b in bars], limits, gate)
        for pos, bar in zip(positions, bars, strict=True):
            ax.annotate(
                bar.text,
                (bar.value, pos),
                xytext=(3, 0),
                textcoords="offset points",
                va="center",
                fontsize=8,
            )
        _draw_gate(ax, gate)
        return _svg(fig, chart_id, title)


def group_chart(
    title: str, groups: Sequence[str], series: Sequence[GroupSeries], *, chart_id: str
) -> str:
    """Grouped horizontal bars: one row per group, one colour per system, with intervals.

    Args:
        title: What the chart shows, for screen readers (the page prints it above the chart).
        groups: Group labels, top to bottom.
        series: One per system.
        chart_id: Unique on the page; prefixes the SVG's element ids.

    Returns:
        An `<svg>` element.
    """
    from matplotlib.figure import Figure

    n = max(len(series), 1)
    height = 0.8 / n
    with _style():
        fig = Figure(
            figsize=(5.2, 1.0 + len(groups) * max(BAR_HEIGHT_IN, 0.16 * n)), layout="constrained"
        )
        ax = fig.add_subplot()
        rows = list(range(len(groups)))[::-1]
        for i, one in enumerate(series):
            offset = (n - 1) / 2 * height - i * height
            ys = [r + offset for r in rows]
            values = [one.values.get(g, float("nan")) for g in groups]
            ax.barh(
                ys, values, height=height * 0.92, color=PALETTE[i % len(PALETTE)], label=one.label
            )
            if one.low is not None and one.high is not None:
                _error_bars(ax, ys, values, groups, one)
        ax.set_yticks(rows, [_short(g) for g in groups])
        if len(series) > 1:
            ax.legend(loc="lower right", fontsize=8, frameon=False)
        return _svg(fig, chart_id, title)


def _error_bars(
    ax: Axes, ys: list[float], values: list[float], groups: Sequence[str], one: GroupSeries
) -> None:
    assert one.low is not None and one.high is not None
    below = [max(v - one.low.get(g, v), 0.0) for v, g in zip(values, groups, strict=True)]
    above = [max(one.high.get(g, v) - v, 0.0) for v, g in zip(values, groups, strict=True)]
    ax.errorbar(
        values, ys, xerr=[below, above], fmt="none", ecolor="#24292f", elinewidth=0.8, capsize=2
    )


def _set_limits(
    ax: Axes,
    values: list[float],
    limits: tuple[float | None, float | None],
    gate: tuple[float | None, float | None],
) -> None:
    seen = [v for v in (*values, *gate) if v is not None]
    low = limits[0] if limits[0] is not None else min([0.0, *seen])
    high = limits[1] if limits[1] is not None else max([0.0, *seen])
    if high <= low:
        high = low + 1.0
    # Room on the right for the value labels.
    ax.set_xlim(low, high + (high - low) * 0.18)


def _draw_gate(ax: Axes, gate: tuple[float | None, float | None]) -> None:
    drawn = False
    for bound in gate:
        if bound is not None:
            ax.axvline(
                bound, color=GATE, linestyle="--", linewidth=1, label=None if drawn else "gate"
            )
            drawn = True
    if drawn:
        # Above the plot, right-aligned, so that it never covers a bar or its label.
        ax.legend(
            loc="lower right",
            bbox_to_anchor=(1.0, 1.0),
            fontsize=7,
            frameon=False,
            borderaxespad=0.2,
        )


def _short(label: str) -> str:
    return label if len(label) <= MAX_LABEL else label[: MAX_LABEL - 1] + "…"


@contextmanager
def _style() -> Iterator[None]:
    """matplotlib's rc_context, with matplotlib imported only when a chart is drawn."""
    import matplotlib

    with matplotlib.rc_context(cast(Any, RC)):
        yield


_ID = re.compile(r'\bid="([^"]+)"')
_REF = re.compile(r'(url\(#|href="#)([^")]+)')


def _svg(fig: Figure, chart_id: str, title: str) -> str:
    """The figure as an `<svg>` element with ids made unique on the page."""
    buffer = io.StringIO()
    # No date in the metadata: the same results draw the same bytes.
    fig.savefig(buffer, format="svg", metadata={"Date": None})
    text = buffer.getvalue()
    text = text[text.index("<svg") :]
    text = _ID.sub(lambda m: f'id="{chart_id}-{m.group(1)}"', text)
    text = _REF.sub(lambda m: f"{m.group(1)}{chart_id}-{m.group(2)}", text)
    label = html.escape(title, quote=True)
    return text.replace("<svg ", f'<svg role="img" aria-label="{label}" ', 1)
