"""Small display helpers for safety-case notebooks: a title card, score cards, tables.

Each returns an `IPython.display.HTML` object (display it, or leave it last in a cell).
The HTML is self-contained: inline styles, no scripts, fonts or CDNs, so a rendered
safety case reads the same offline.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

import pyarrow as pa

from ._tables import as_table

if TYPE_CHECKING:
    from IPython.display import HTML

    from schemas import ScoreValue

__all__ = ["conclusion", "examples", "score_card", "table", "title_card"]

_CARD = (
    "border:1px solid #d0d7de;border-radius:8px;padding:14px 18px;margin:8px 0;"
    "font-family:system-ui,-apple-system,'Segoe UI',sans-serif;"
)
_OUTCOME_COLOURS = {
    "pass": "#1a7f37",
    "fail": "#cf222e",
    "inconclusive": "#9a6700",
    None: "#57606a",
}
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
    """A heading card: the title, a summary sentence and a few `label: value` facts.

    It shows no date: the same results render to the same bytes (bit-for-bit re-runs,
    docs/store.md); when the run happened is in the node's manifest and the report.

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
    return _html(
        f'<div style="{_CARD}border-left:6px solid #0969da">'
        f"<div style='font-size:1.6em;font-weight:600'>{html.escape(title)}</div>"
        + (f"<p style='font-size:1.1em;margin:6px 0'>{html.escape(summary)}</p>" if summary else "")
        + (f"<table style='margin-top:6px'>{rows}</table>" if rows else "")
        + "</div>"
    )


def score_card(score: ScoreValue) -> HTML:
    """A card showing one exported score: value, interval, title, text, valence and gate.

    A gate shows as PASS, FAIL or — for a confidence gate whose interval straddles a
    bound — INCONCLUSIVE. Every text is escaped: titles, formats and units come from specs.
    """
    verdict = score.gate()
    colour = _OUTCOME_COLOURS[verdict]
    gate = ""
    if verdict is not None:
        bounds = []
        if score.gate_min is not None:
            bounds.append(f"≥ {score.format.format(value=score.gate_min)}")
        if score.gate_max is not None:
            bounds.append(f"≤ {score.format.format(value=score.gate_max)}")
        level = (
            f" at {score.gate_confidence:.0%} confidence"
            if score.gate_confidence is not None
            else ""
        )
        gate = (
            f"<span style='color:{colour};font-weight:600'>{verdict.upper()}</span> "
            f"(gate {html.escape(' and '.join(bounds))}{level})"
        )
    interval = ""
    if score.interval is not None:
        low = score.format.format(value=score.interval.low)
        high = score.format.format(value=score.interval.high)
        interval = (
            f"<span style='font-size:.5em;color:#57606a;margin-left:8px'>"
            f"[{html.escape(low)}, {html.escape(high)}] {score.interval.confidence:.0%} CI</span>"
        )
    direction = {"positive": "higher is better", "negative": "lower is better"}.get(score.valence)
    meta = " · ".join(x for x in (html.escape(score.name), direction, gate) if x)
    return _html(
        f'<div style="{_CARD}border-left:6px solid {colour}">'
        f"<div style='font-size:.95em;color:#57606a'>{html.escape(score.title or score.name)}</div>"
        f"<div style='font-size:2em;font-weight:600'>{html.escape(score.formatted())}{interval}</div>"
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
    found = _tabular(data)
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
    return _html_table(head, body, caption)


def _cell(value: Any, fmt: str | None) -> str:
    if value is None:
        return "—"
    if fmt is not None:
        return fmt.format(value=value)
    return str(value)


def examples(
    data: Any,
    group: str,
    by: str | Sequence[str],
    columns: Sequence[str] | None = None,
    per_group: int = 3,
    groups: int | None = 5,
    formats: Mapping[str, str] | None = None,
    caption: str | None = None,
    flagged_only: bool = True,
) -> HTML:
    """Example instances: the most-flagged rows of the most-flagged groups.

    Groups are ranked by the mean of the first `by` column (e.g. `predicted`, so the
    groups flagged most often come first); within each group the rows with the highest
    `by` values are shown (e.g. `["predicted", "score"]`: flagged rows first, the most
    confident first). A reader sees what the numbers are made of.

    Args:
        data: the rows (pyarrow, pandas, polars, or a list of row dicts).
        group: the column naming each row's group.
        by: the column, or columns in order, to rank rows by (highest first).
        columns: the columns to show (default: all).
        per_group: rows shown per group.
        groups: groups shown (None: all).
        formats: column → format string over `value`.
        caption: shown above the table.
        flagged_only: show only rows whose first `by` value is above 0 (and groups
            that have one).
    """
    import pyarrow.compute as pc

    found = _tabular(data)
    keys = [by] if isinstance(by, str) else list(by)
    missing = [c for c in (group, *keys, *(columns or [])) if c not in found.column_names]
    if missing:
        raise ValueError(
            f"examples(): no column {missing[0]!r} (columns: {', '.join(found.column_names)})"
        )
    rates = found.group_by(group).aggregate([(keys[0], "mean"), (keys[0], "count")])
    order = rates.sort_by([(f"{keys[0]}_mean", "descending"), (group, "ascending")])
    shown_groups = order.slice(0, groups) if groups is not None else order
    ranked = found.sort_by([(k, "descending") for k in keys])
    if flagged_only:
        ranked = ranked.filter(pc.greater(ranked[keys[0]], 0))
        shown_groups = shown_groups.filter(pc.greater(shown_groups[f"{keys[0]}_mean"], 0))
    shown = list(columns) if columns else [c for c in found.column_names if c != group]
    head = "".join(f"<th style='padding:4px 10px'>{html.escape(c)}</th>" for c in shown)
    body = []
    for row in shown_groups.to_pylist():
        name = row[group]
        rows = ranked.filter(pc.equal(ranked[group], name)).slice(0, per_group)
        mean = row[f"{keys[0]}_mean"]
        summary = f"{keys[0]} mean {mean:.1%}" if mean is not None else ""
        body.append(
            f"<tr style='background:#f6f8fa'><th colspan='{len(shown)}' style='text-align:left;"
            f"padding:4px 10px'>{html.escape(str(name))} "
            f"<span style='font-weight:400;color:#57606a'>({row[f'{keys[0]}_count']} rows, "
            f"{html.escape(summary)})</span></th></tr>"
        )
        body.extend(
            "<tr>"
            + "".join(
                f"<td style='padding:2px 10px;text-align:{_align(r[c])}'>"
                f"{html.escape(_cell(r[c], (formats or {}).get(c)))}</td>"
                for c in shown
            )
            + "</tr>"
            for r in rows.select(shown).to_pylist()
        )
    return _html_table(head, "".join(body), caption)


def _html_table(head: str, body: str, caption: str | None) -> HTML:
    """A table of already escaped header and body rows, with an escaped caption."""
    cap = (
        f"<caption style='text-align:left;font-weight:600'>{html.escape(caption)}</caption>"
        if caption
        else ""
    )
    return _html(
        "<table style='border-collapse:collapse;font-family:system-ui,sans-serif'>"
        f"{cap}<thead><tr style='border-bottom:1px solid #d0d7de'>{head}</tr></thead>"
        f"<tbody>{body}</tbody></table>"
    )


def _align(value: Any) -> str:
    return "right" if isinstance(value, int | float) and not isinstance(value, bool) else "left"


def _tabular(data: Any) -> pa.Table:
    found = as_table(data)
    if found is None and isinstance(data, Sequence) and all(isinstance(r, Mapping) for r in data):
        found = pa.Table.from_pylist(list(data))
    if found is None:
        raise TypeError(f"needs tabular data, got {type(data).__name__}")
    return found
