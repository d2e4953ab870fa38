"""Run-to-run comparison: two sets of safety cases → a `DiffReport`, rendered as text, JSON or Markdown.

Each side is a `DiffSide`: the safety cases of a store (what the report shows) or the
ones a git ref's specs resolve to. Safety cases are paired by Method name (and by
system under test when a Method has several). For every score the report gives the
old and new value and their difference; where both runs stored per-instance values
(`instances/<score>.parquet`), it pairs them on `_index_` and adds a paired bootstrap
interval of the change in the mean per-instance value, which is significant when the
interval excludes 0. It also says which nodes changed and why, from their manifests:
spec fields, upstream ids, input file hashes, model revision.

Pure except for reading per-instance Parquet from the stores.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Literal

from pydantic import BaseModel, ConfigDict

from schemas import INDEX_COLUMN, Issue, Manifest, ScoreValue, Store, UsageError

from ._results import SafetyCase, StoreResults, read_instances

if TYPE_CHECKING:
    import numpy as np

__all__ = [
    "DEFAULT_CONFIDENCE",
    "DEFAULT_RESAMPLES",
    "DEFAULT_SEED",
    "DIFF_SCHEMA_VERSION",
    "BootstrapOptions",
    "CaseDiff",
    "DiffReport",
    "DiffSide",
    "Interval",
    "NodeChange",
    "ScoreDiff",
    "diff_results",
    "paired_bootstrap",
    "render_diff",
]

logger = logging.getLogger(__name__)

DIFF_SCHEMA_VERSION: Final = 1
DEFAULT_RESAMPLES = 2000
DEFAULT_SEED = 0
DEFAULT_CONFIDENCE = 0.95
MAX_RESAMPLE_CELLS = 4_000_000
"""Resampled indexes held in memory at once (32 MB of int64); larger problems run in chunks."""
ZERO = 1e-12
"""Differences smaller than this are floating-point noise, shown as 0."""

Direction = Literal["better", "worse", "up", "down", "same"]


@dataclass(frozen=True)
class BootstrapOptions:
    """How the paired bootstrap resamples.

    Example:
        >>> BootstrapOptions(resamples=5000, seed=7, confidence=0.99)
        BootstrapOptions(resamples=5000, seed=7, confidence=0.99)
    """

    resamples: int = DEFAULT_RESAMPLES
    seed: int = DEFAULT_SEED
    confidence: float = DEFAULT_CONFIDENCE

    def __post_init__(self) -> None:
        if self.resamples < 100:
            raise UsageError(f"--resamples must be at least 100, got {self.resamples}")
        if not 0.5 <= self.confidence < 1:
            raise UsageError(f"--confidence must be in [0.5, 1), got {self.confidence}")


@dataclass(frozen=True)
class DiffSide:
    """One side of a comparison: what it is called and its safety cases."""

    label: str
    """A store URI or a git ref, as the user gave it."""
    store: Store
    cases: tuple[SafetyCase, ...]
    missing: tuple[str, ...] = ()
    """Safety cases that side defines but the store holds no complete run of (git refs)."""

    @classmethod
    def of_results(cls, label: str, results: StoreResults) -> DiffSide:
        """The safety cases a store's report shows."""
        return cls(label, results.store, tuple(results.cases))


# ----------------------------------------------------------------- the report


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Interval(_Model):
    """A paired bootstrap interval of the change in the mean per-instance value."""

    low: float
    high: float
    mean_delta: float
    """Observed mean of the paired differences (head − base)."""
    paired: int
    """Instances present in both runs."""
    unpaired: int
    """Instances present in one run only (left out)."""


class ScoreDiff(_Model):
    """One score of one pair of safety cases."""

    name: str
    title: str
    primary: bool
    valence: Literal["positive", "negative", "neutral"]
    format: str
    unit: str | None
    base: float | None
    head: float | None
    delta: float | None
    direction: Direction | None
    """`better`/`worse` by the score's valence; `up`/`down` when it has none; None if one side lacks it."""
    interval: Interval | None
    significant: bool | None
    """Whether the interval excludes 0; None without per-instance values on both sides."""
    note: str | None = None
    """Why there is no interval."""
    base_passed: bool | None = None
    head_passed: bool | None = None

    def show(self, value: float | None, *, signed: bool = False) -> str:
        """A value in the score's format and unit."""
        if value is None:
            return "—"
        if abs(value) < ZERO:
            value = 0.0
        try:
            text = self.format.format(value=abs(value) if signed else value)
        except (ValueError, KeyError, IndexError, TypeError):  # a format that does not fit
            text = f"{abs(value) if signed else value:.4g}"
        if signed:
            text = ("+" if value > 0 else "-" if value < 0 else "") + text
        return f"{text} {self.unit}" if self.unit else text

    @property
    def verdict(self) -> str:
        """A few words: `better (significant)`, `no significant change`, `worse`, …"""
        if self.delta is None:
            return "only in head" if self.base is None else "only in base"
        if self.significant:
            what = self.direction if self.direction in ("better", "worse") else "changed"
            return f"{what} (significant)"
        if self.significant is False:
            return "no significant change"
        if self.direction == "same":
            return "unchanged"
        return str(self.direction)  # `note` says why there is no interval


class NodeChange(_Model):
    """A node whose id differs between the sides, and why."""

    key: str
    change: Literal["added", "removed", "changed"]
    base_id: str | None
    head_id: str | None
    reasons: list[str]


class CaseDiff(_Model):
    """A pair of safety cases of the same Method (and system)."""

    method: str
    system: str
    base_id: str | None
    head_id: str | None
    status: Literal["added", "removed", "changed", "unchanged"]
    """`unchanged`: the same run (same id) on both sides."""
    scores: list[ScoreDiff]


class DiffReport(_Model):
    """`auditc diff`'s result; its JSON form carries `schema_version`."""

    schema_version: Literal[1] = DIFF_SCHEMA_VERSION
    base: str
    head: str
    resamples: int
    seed: int
    confidence: float
    cases: list[CaseDiff]
    nodes: list[NodeChange]
    missing: list[str]
    """Safety cases a git ref defines that the store has no complete run of."""

    @property
    def significant(self) -> list[tuple[CaseDiff, ScoreDiff]]:
        """Every score whose change is significant."""
        return [(c, s) for c in self.cases for s in c.scores if s.significant]


# ------------------------------------------------------------------ compute


def diff_results(
    base: DiffSide, head: DiffSide, options: BootstrapOptions | None = None
) -> DiffReport:
    """Compare two sides score by score, with paired bootstrap intervals where possible.

    Args:
        base: The old side (e.g. the main branch's store).
        head: The new side (e.g. the pull request's store).
        options: Resamples, seed and confidence of the bootstrap.

    Returns:
        Every pair of safety cases with its score differences, and the nodes that changed.

    Raises:
        StoreError: a per-instance file is unreadable.
    """
    options = options or BootstrapOptions()
    pairs = list(_pair(base.cases, head.cases))
    cases = [_case_diff(b, h, base.store, head.store, options) for b, h in pairs]
    return DiffReport(
        base=base.label,
        head=head.label,
        resamples=options.resamples,
        seed=options.seed,
        confidence=options.confidence,
        cases=cases,
        nodes=_node_changes(pairs),
        missing=[f"{base.label}: {m}" for m in base.missing]
        + [f"{head.label}: {m}" for m in head.missing],
    )


def _pair(
    base: Sequence[SafetyCase], head: Sequence[SafetyCase]
) -> Iterator[tuple[SafetyCase | None, SafetyCase | None]]:
    """Pairs by Method; by system too when a side has several runs of one Method."""
    methods = sorted({c.method for c in (*base, *head)})
    for method in methods:
        old = [c for c in base if c.method == method]
        new = [c for c in head if c.method == method]
        if len(old) == 1 and len(new) == 1:
            yield old[0], new[0]
            continue
        old_by = {c.system_label: c for c in old}
        new_by = {c.system_label: c for c in new}
        for system in sorted(old_by.keys() | new_by.keys()):
            yield old_by.get(system), new_by.get(system)


def _case_diff(
    base: SafetyCase | None,
    head: SafetyCase | None,
    base_store: Store,
    head_store: Store,
    options: BootstrapOptions,
) -> CaseDiff:
    either = head or base
    assert either is not None
    names = _score_names(base, head)
    scores = [_score_diff(n, base, head, base_store, head_store, options) for n in names]
    if base is None or head is None:
        status: Literal["added", "removed", "changed", "unchanged"] = (
            "added" if base is None else "removed"
        )
    else:
        status = "unchanged" if base.id == head.id else "changed"
    return CaseDiff(
        method=either.method,
        system=either.system_label
        if base is None or head is None or base.system_label == head.system_label
        else f"{base.system_label} → {head.system_label}",
        base_id=base.id if base else None,
        head_id=head.id if head else None,
        status=status,
        scores=scores,
    )


def _score_names(*cases: SafetyCase | None) -> list[str]:
    primary: list[str] = []
    other: list[str] = []
    for case in cases:
        for score in case.scores.scores if case else []:
            if score.name not in primary and score.name not in other:
                (primary if score.primary else other).append(score.name)
    return primary + other


def _score_diff(
    name: str,
    base: SafetyCase | None,
    head: SafetyCase | None,
    base_store: Store,
    head_store: Store,
    options: BootstrapOptions,
) -> ScoreDiff:
    old = base.score(name) if base else None
    new = head.score(name) if head else None
    spec = new or old
    assert spec is not None
    delta = new.value - old.value if old and new else None
    interval, note = None, None
    if old and new and base and head:
        interval, note = _interval(name, base, head, base_store, head_store, options)
    significant = None if interval is None else not interval.low <= 0.0 <= interval.high
    return ScoreDiff(
        name=name,
        title=spec.title or name,
        primary=spec.primary,
        valence=spec.valence,
        format=spec.format,
        unit=spec.unit,
        base=old.value if old else None,
        head=new.value if new else None,
        delta=delta,
        direction=_direction(delta, spec),
        interval=interval,
        significant=significant,
        note=note,
        base_passed=old.passed() if old else None,
        head_passed=new.passed() if new else None,
    )


def _direction(delta: float | None, spec: ScoreValue) -> Direction | None:
    if delta is None:
        return None
    if abs(delta) < ZERO:
        return "same"
    if spec.valence == "neutral":
        return "up" if delta > 0 else "down"
    return "better" if (delta > 0) == (spec.valence == "positive") else "worse"


def _interval(
    name: str,
    base: SafetyCase,
    head: SafetyCase,
    base_store: Store,
    head_store: Store,
    options: BootstrapOptions,
) -> tuple[Interval | None, str | None]:
    old = read_instances(base_store, base, name)
    new = read_instances(head_store, head, name)
    if old is None or new is None:
        side = (
            "either run"
            if old is None and new is None
            else "the base run"
            if old is None
            else "the head run"
        )
        return None, f"no per-instance values in {side}"
    joined = old.join(
        new, INDEX_COLUMN, join_type="inner", left_suffix="_base", right_suffix="_head"
    )
    paired = joined.num_rows
    if paired < 2:
        return None, f"only {paired} instance(s) in both runs"
    import numpy as np

    diffs = np.asarray(joined.column("value_head"), dtype=np.float64) - np.asarray(
        joined.column("value_base"), dtype=np.float64
    )
    low, high = paired_bootstrap(diffs, options)
    unpaired = old.num_rows + new.num_rows - 2 * paired
    return Interval(
        low=low, high=high, mean_delta=float(diffs.mean()), paired=paired, unpaired=unpaired
    ), None


def paired_bootstrap(
    diffs: np.ndarray, options: BootstrapOptions | None = None
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of paired differences.

    Resamples instances with replacement (the same instances for both runs, hence
    paired), vectorised with numpy in chunks of at most `MAX_RESAMPLE_CELLS` indexes.

    Args:
        diffs: head − base per instance.
        options: Resamples, seed and confidence level.

    Returns:
        The interval's (low, high).
    """
    import numpy as np

    options = options or BootstrapOptions()
    n = len(diffs)
    rng = np.random.default_rng(options.seed)
    means = np.empty(options.resamples, dtype=np.float64)
    chunk = max(1, MAX_RESAMPLE_CELLS // max(n, 1))
    for start in range(0, options.resamples, chunk):
        stop = min(options.resamples, start + chunk)
        picks = rng.integers(0, n, size=(stop - start, n))
        means[start:stop] = diffs[picks].mean(axis=1)
    tail = (1.0 - options.confidence) / 2.0
    low, high = np.quantile(means, [tail, 1.0 - tail])
    return float(low), float(high)


# ------------------------------------------------------------ node changes


def _node_changes(pairs: Iterable[tuple[SafetyCase | None, SafetyCase | None]]) -> list[NodeChange]:
    changes: dict[tuple[str, str | None, str | None], NodeChange] = {}
    for base, head in pairs:
        old, new = _nodes(base), _nodes(head)
        for key in sorted(old.keys() | new.keys()):
            a, b = old.get(key), new.get(key)
            ids = (key, a.id if a else None, b.id if b else None)
            if (a and b and a.id == b.id) or ids in changes:
                continue
            if a is None or b is None:
                kind: Literal["added", "removed", "changed"] = "added" if a is None else "removed"
                changes[ids] = NodeChange(
                    key=key, change=kind, base_id=ids[1], head_id=ids[2], reasons=[]
                )
            else:
                changes[ids] = NodeChange(
                    key=key, change="changed", base_id=a.id, head_id=b.id, reasons=_reasons(a, b)
                )
    return sorted(changes.values(), key=lambda c: (c.key, c.change))


def _nodes(case: SafetyCase | None) -> dict[str, Manifest]:
    if case is None:
        return {}
    found: dict[str, Manifest] = {}
    for manifest in (case.manifest, *case.lineage):
        found.setdefault(f"{manifest.kind}/{manifest.name}", manifest)
    return found


def _reasons(old: Manifest, new: Manifest) -> list[str]:
    """What differs between two runs of the same node, as the manifests record it."""
    reasons = [_field_change(path, a, b) for path, a, b in _dict_changes(old.spec, new.spec)]
    for key in sorted(old.upstream.keys() | new.upstream.keys()):
        a, b = old.upstream.get(key), new.upstream.get(key)
        if a != b:
            reasons.append(f"upstream {key}: {_short(a)} → {_short(b)}")
    for path in sorted(old.input_files.keys() | new.input_files.keys()):
        a, b = old.input_files.get(path), new.input_files.get(path)
        if a != b:
            reasons.append(f"file {path}: sha256 {_short(a, 12)} → {_short(b, 12)}")
    for label, a, b in (
        ("model revision", old.model_revision, new.model_revision),
        ("image", old.image, new.image),
        ("auditc", old.auditc_version, new.auditc_version),
    ):
        if a != b:
            reasons.append(f"{label} {a or '—'} → {b or '—'}")
    if not reasons:
        reasons.append("id changed, but the manifests record no difference (another id scheme?)")
    return reasons


def _dict_changes(old: Any, new: Any, path: str = "") -> Iterator[tuple[str, Any, Any]]:
    """(dotted path, old, new) of every leaf that differs; a missing side is `_MISSING`."""
    if isinstance(old, dict) and isinstance(new, dict):
        for key in sorted(old.keys() | new.keys(), key=str):
            child = f"{path}.{key}" if path else str(key)
            yield from _dict_changes(old.get(key, _MISSING), new.get(key, _MISSING), child)
    elif isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        for i, (a, b) in enumerate(zip(old, new, strict=True)):
            yield from _dict_changes(a, b, f"{path}.{i}")
    elif old != new:
        yield path, old, new


class _Missing:
    def __repr__(self) -> str:
        return "(absent)"


_MISSING: Any = _Missing()


def _field_change(path: str, old: Any, new: Any) -> str:
    return f"{path}: {Issue.echo(old)} → {Issue.echo(new)}"


def _short(value: str | None, n: int = 10) -> str:
    return value[:n] if value else "(absent)"


# ------------------------------------------------------------------- render


def render_diff(report: DiffReport, fmt: Literal["text", "json", "markdown"] = "text") -> str:
    """The comparison as text (terminal), JSON (with `schema_version`) or Markdown (a PR comment)."""
    if fmt == "json":
        return report.model_dump_json(indent=2)
    if fmt == "markdown":
        return _markdown(report)
    return _text(report)


def _method_note(report: DiffReport) -> str:
    level = f"{report.confidence:.0%}"
    return (
        f"paired bootstrap: {report.resamples} resamples, seed {report.seed}; "
        f"{level} intervals of the change in the mean per-instance value, "
        "significant when they exclude 0"
    )


def _interval_text(score: ScoreDiff) -> str:
    if score.interval is None:
        return "—"
    return f"[{score.show(score.interval.low)}, {score.show(score.interval.high)}]"


def _text(report: DiffReport) -> str:
    lines = [f"auditc diff: {report.base} → {report.head}", _method_note(report), ""]
    if not report.cases:
        lines.append("no safety cases on either side: nothing to compare")
    for case in report.cases:
        lines.append(f"{case.method} · {case.system}  ({_case_ids(case)}, {case.status})")
        table = [["score", "base", "head", "delta", f"{report.confidence:.0%} CI", ""]]
        for s in case.scores:
            label = s.name + (" *" if s.primary else "")
            table.append(
                [
                    label,
                    s.show(s.base),
                    s.show(s.head),
                    s.show(s.delta, signed=True),
                    _interval_text(s),
                    s.verdict,
                ]
            )
        lines.extend("  " + row for row in _align(table))
        lines.extend(
            f"    {s.name}: no interval: {s.note}"
            for s in case.scores
            if s.note and s.direction not in (None, "same")
        )
        lines.append("")
    lines.extend(_node_lines(report))
    lines.extend(f"not in the store: {m}" for m in report.missing)
    lines.append(_summary(report))
    return "\n".join(lines)


def _case_ids(case: CaseDiff) -> str:
    return f"run {_short(case.base_id)} → {_short(case.head_id)}"


def _align(rows: list[list[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return [
        "  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip() for r in rows
    ]


_SIGN = {"added": "+", "removed": "-", "changed": "~"}


def _node_lines(report: DiffReport) -> list[str]:
    if not report.nodes:
        return ["no node changed"]
    lines = [f"changed nodes ({len(report.nodes)}):"]
    for node in report.nodes:
        where = {"added": "only in head", "removed": "only in base"}.get(node.change)
        ids = (
            f"{_short(node.base_id)} → {_short(node.head_id)}"
            if node.change == "changed"
            else where
        )
        lines.append(f"  {_SIGN[node.change]} {node.key}  {ids}")
        lines.extend(f"      {reason}" for reason in node.reasons)
    return lines


def _summary(report: DiffReport) -> str:
    found = report.significant
    better = sum(1 for _, s in found if s.direction == "better")
    worse = sum(1 for _, s in found if s.direction == "worse")
    scores = sum(len(c.scores) for c in report.cases)
    return (
        f"{len(found)} significant change{'s' if len(found) != 1 else ''} "
        f"({better} better, {worse} worse) in {scores} score{'s' if scores != 1 else ''} "
        f"of {len(report.cases)} safety case{'s' if len(report.cases) != 1 else ''}"
    )


_ICON = {"better": "🟢", "worse": "🔴"}


def _markdown(report: DiffReport) -> str:
    lines = [
        f"### auditc diff: `{_md(report.base)}` → `{_md(report.head)}`",
        "",
        f"**{_summary(report)}**",
        "",
    ]
    for case in report.cases:
        lines.append(f"#### {case.method} · {_md(case.system)}")
        lines.append(f"{_case_ids(case)}: {case.status}")
        lines.append("")
        lines.append(f"| score | base | head | Δ | {report.confidence:.0%} CI | |")
        lines.append("|---|---:|---:|---:|---|---|")
        for s in case.scores:
            title = f"**{s.name}**" if s.primary else s.name
            icon = _ICON.get(s.direction or "", "") if s.significant else ""
            verdict = f"{icon} {s.verdict}".strip()
            if s.note and s.direction not in (None, "same"):
                verdict = f"{verdict}; no interval: {s.note}"
            cells = [
                title,
                s.show(s.base),
                s.show(s.head),
                s.show(s.delta, signed=True),
                _interval_text(s),
                verdict,
            ]
            lines.append("| " + " | ".join(_md(c) for c in cells) + " |")
        lines.append("")
    if report.nodes:
        lines.append(f"<details><summary>{len(report.nodes)} node(s) changed</summary>")
        lines.append("")
        for node in report.nodes:
            reasons = "; ".join(f"`{_md(r)}`" for r in node.reasons)
            ids = f"`{_short(node.base_id)}` → `{_short(node.head_id)}`"
            lines.append(
                f"- {node.change} `{node.key}` {ids}" + (f": {reasons}" if reasons else "")
            )
        lines.append("")
        lines.append("</details>")
        lines.append("")
    lines.extend(f"> not in the store: `{_md(m)}`" for m in report.missing)
    lines.append(f"<sub>{_method_note(report)}.</sub>")
    return "\n".join(lines)


def _md(text: str) -> str:
    """Text safe inside a Markdown table cell or code span."""
    return text.replace("|", "\\|").replace("`", "'").replace("\n", " ")
