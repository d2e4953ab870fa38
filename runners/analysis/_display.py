"""Small display helpers for safety-case notebooks: a title card, score cards, tables.

Each returns an `IPython.display.HTML` object (display it, or leave it last in a cell).
The HTML is self-contained: inline styles, no scripts, fonts or CDNs, so a rendered
safety case reads the same offline.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

import pyarrow as pa

from ._tables import as_table

if TYPE_CHECKING:
    from IPython.display import HTML

    from schemas import ScoreValue

__all__ = ["conclusion", "score_card", "table", "title_card"]

_CARD = (
    "border:1px solid #d0d7de;border-radius:8px;padding:14px 18px;margin:8px 0;"
    "font-family:system-ui,-apple-system,'Segoe UI',sans-serif;"
)
_INDICATORS = {
    "information": ("#0969da", "ℹ", "Information"),
    "hazard": ("#cf222e", "⚠", "Hazard"),
    "question": ("#9a6700", "?", "Open question"),
    "pass": ("#1a7f37", "✓", "Passes"),
}


def _html(markup: str) -> HTML:
    from IPython.display import HTML

    return HTML(markup)


def title_card(
    title: str, summary: str | None = None, details: Mapping[str, str] | None = None
) -> HTML:
    """A heading card: the title, a summary sentence, a few `label: value` facts and the date.

    Args:
        title: what is audited, in a few words.
        summary: one or two sentences on what the safety case shows.
        details: facts such as the system under test or the dataset, in display order.
    """
    rows = "".join(
        f"<tr><th style='text-align:left;padding-right:12px;color:#57606a'>{html.escape(k)}</th>"
        f"<td>{html.escape(v)}</td></tr>"
        for k, v in (details or {}).items()
    )
    date = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return _html(
        f'<div style="{_CARD}border-left:6px solid #0969da">'
        f"<div style='font-size:1.6em;font-weight:600'>{html.escape(title)}</div>"
        + (f"<p style='font-size:1.1em;margin:6px 0'>{html.escape(summary)}</p>" if summary else "")
        + (f"<table style='margin-top:6px'>{rows}</table>" if rows else "")
        + f"<div style='color:#57606a;font-size:.85em;margin-top:6px'>Generated {date}</div></div>"
    )


def score_card(score: ScoreValue) -> HTML:
    """A card showing one exported score: its value, title, text, valence and gate."""
    verdict = score.passed()
    colour = {True: "#1a7f37", False: "#cf222e", None: "#57606a"}[verdict]
    gate = ""
    if verdict is not None:
        bounds = []
        if score.gate_min is not None:
            bounds.append(f"≥ {score.format.format(value=score.gate_min)}")
        if score.gate_max is not None:
            bounds.append(f"≤ {score.format.format(value=score.gate_max)}")
        gate = (
            f"<span style='color:{colour};font-weight:600'>"
            f"{'PASS' if verdict else 'FAIL'}</span> (gate {' and '.join(bounds)})"
        )
    direction = {"positive": "higher is better", "negative": "lower is better"}.get(score.valence)
    meta = " · ".join(x for x in (score.name, direction, gate) if x)
    return _html(
        f'<div style="{_CARD}border-left:6px solid {colour}">'
        f"<div style='font-size:.95em;color:#57606a'>{html.escape(score.title or score.name)}</div>"
        f"<div style='font-size:2em;font-weight:600'>{html.escape(score.formatted())}</div>"
        + (f"<div>{html.escape(score.text)}</div>" if score.text else "")
        + f"<div style='font-size:.85em;color:#57606a;margin-top:4px'>{meta}</div></div>"
    )


def conclusion(
    text: str, indicator: Literal["information", "hazard", "question", "pass"] = "information"
) -> HTML:
    """A one-paragraph finding with an indicator (information, hazard, question, pass)."""
    colour, symbol, label = _INDICATORS[indicator]
    return _html(
        f'<div style="{_CARD}border-left:6px solid {colour}">'
        f"<span style='color:{colour};font-weight:600'>{symbol} {label}:</span> "
        f"{html.escape(text)}</div>"
    )


def table(
    data: Any,
    formats: Mapping[str, str] | None = None,
    caption: str | None = None,
    columns: Sequence[str] | None = None,
) -> HTML:
    """An HTML table of tabular data (pyarrow, pandas or polars).

    Args:
        data: the rows to show: a table, or a list of row mappings.
        formats: column → format string over `value` (`{value:.1%}`); others use str().
        caption: shown above the table.
        columns: the columns to show, in order (default: all).
    """
    found = as_table(data)
    if found is None and isinstance(data, Sequence) and all(isinstance(r, Mapping) for r in data):
        found = pa.Table.from_pylist(list(data))
    if found is None:
        raise TypeError(f"table() needs tabular data, got {type(data).__name__}")
    shown = found.select(list(columns)) if columns else found
    head = "".join(
        f"<th style='padding:4px 10px'>{html.escape(n)}</th>" for n in shown.column_names
    )
    body = "".join(
        "<tr>"
        + "".join(
            f"<td style='padding:2px 10px;text-align:right'>{html.escape(_cell(row[n], (formats or {}).get(n)))}</td>"
            for n in shown.column_names
        )
        + "</tr>"
        for row in shown.to_pylist()
    )
    cap = (
        f"<caption style='text-align:left;font-weight:600'>{html.escape(caption)}</caption>"
        if caption
        else ""
    )
    return _html(
        "<table style='border-collapse:collapse;font-family:system-ui,sans-serif'>"
        f"{cap}<thead><tr style='border-bottom:1px solid #d0d7de'>{head}</tr>"
        f"</thead><tbody>{body}</tbody></table>"
    )


def _cell(value: Any, fmt: str | None) -> str:
    if value is None:
        return "—"
    if fmt is not None:
        return fmt.format(value=value)
    return str(value)
