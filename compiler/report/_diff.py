"""Run-to-run comparison: two sets of safety cases → a `DiffReport`, rendered as text, JSON or Markdown.

Each side is a `DiffSide`: the safety cases of a store (what the report shows) or the
ones a git ref's specs resolve to. Safety cases are paired by Method name (and by
system under test when a Method has several). The report reads like a reviewer would:

1. **gate flips** first: a gate that went PASS → FAIL (or PASS → INCONCLUSIVE,
   INCONCLUSIVE → FAIL) is a regression, the other way an improvement;
2. then every score: old and new value, their difference and — where both runs stored
   per-instance values — a paired test and interval (`_statistics.py`: exact McNemar
   for 0/1 values, a paired permutation test otherwise; a paired bootstrap interval of
   the change in the score as it aggregates), with Holm's correction over the tests of
   the whole diff. The verdict never contradicts the interval: a change is significant
   only when its adjusted p-value is below 1 − confidence *and* the interval excludes 0,
   and a change the paired instances cannot explain (rows added or removed) is "not
   comparable", never "no significant change";
3. how the instances paired (paired, changed, only in one run), with a warning when a
   dataset changed and its rows are paired by position (no `spec.index`);
4. which nodes changed and why, from their manifests.

Pure except for reading per-instance Parquet from the stores.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict

from schemas import GateOutcome, Issue, Manifest, ScoreValue, Store, UsageError

from ._results import SafetyCase, StoreResults, gate_text, read_instances
from ._statistics import PairedStatistics, holm, paired_statistics

__all__ = [
    "DEFAULT_CONFIDENCE",
    "DEFAULT_RESAMPLES",
    "DEFAULT_SEED",
    "DIFF_SCHEMA_VERSION",
    "BootstrapOptions",
    "CaseDiff",
    "Comparison",
    "DiffReport",
    "DiffSide",
    "GateFlip",
    "NodeChange",
    "ScoreDiff",
    "diff_results",
    "render_diff",
]

logger = logging.getLogger(__name__)

DIFF_SCHEMA_VERSION: Final = 2
DEFAULT_RESAMPLES = 2000
DEFAULT_SEED = 0
DEFAULT_CONFIDENCE = 0.95
MAX_RESAMPLES = 100_000
ZERO = 1e-12
"""Differences smaller than this are floating-point noise, shown as 0."""
SAME = 1e-9
"""Two computations of one score that differ less than this agree."""

Direction = Literal["better", "worse", "up", "down", "same"]
GateChange = Literal["regression", "improvement"]
_GATE_RANK: dict[str, int] = {"fail": 0, "inconclusive": 1, "pass": 2}


@dataclass(frozen=True)
class BootstrapOptions:
    """How the paired statistics resample: bootstrap resamples, permutations, seed, confidence.

    Example:
        >>> BootstrapOptions(resamples=5000, seed=7, confidence=0.99)
        BootstrapOptions(resamples=5000, seed=7, confidence=0.99)
    """

    resamples: int = DEFAULT_RESAMPLES
    seed: int = DEFAULT_SEED
    confidence: float = DEFAULT_CONFIDENCE

    def __post_init__(self) -> None:
        if not 100 <= self.resamples <= MAX_RESAMPLES:
            raise UsageError(
                f"--resamples must be between 100 and {MAX_RESAMPLES}, got {self.resamples}"
            )
        if self.seed < 0:
            raise UsageError(f"--seed must be 0 or more, got {self.seed}")
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


class Comparison(_Model):
    """The paired comparison of one score: instances, test, interval."""

    paired: int
    """Instances present in both runs."""
    changed: int
    """Paired instances whose per-instance value differs between the runs."""
    only_base: int
    only_head: int
    delta: float
    """The change of the score recomputed over the paired instances (head − base)."""
    low: float | None
    high: float | None
    """The paired bootstrap interval of that change (None when undefined)."""
    interval_method: str | None
    test: Literal["mcnemar", "permutation"]
    p_value: float
    p_adjusted: float
    """Holm-adjusted over every test of the diff."""

    @property
    def unpaired(self) -> int:
        """Instances in one run only."""
        return self.only_base + self.only_head

    def excludes_zero(self) -> bool:
        """Whether the interval lies wholly on one side of 0."""
        return self.low is not None and self.high is not None and not self.low <= 0 <= self.high


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
    base_gate: GateOutcome | None = None
    head_gate: GateOutcome | None = None
    gate_change: GateChange | None = None
    """A gate that got worse (PASS → INCONCLUSIVE → FAIL) is a regression."""
    gate: str | None = None
    """The gate as the head (else the base) declares it: `≤ 10.0%`."""
    comparison: Comparison | None = None
    significant: bool | None = None
    """Adjusted p below 1 − confidence and the interval excludes 0; None without a test."""
    verdict: str = ""
    note: str | None = None
    """Why there is no comparison."""

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
    def gate_flip(self) -> str:
        """`PASS → FAIL`, `pass` (unchanged), or `—` without a gate."""
        if self.base_gate is None and self.head_gate is None:
            return "—"
        if self.base_gate == self.head_gate:
            return str(self.head_gate).lower()
        old = (self.base_gate or "—").upper()
        return f"{old} → {(self.head_gate or '—').upper()}"


class NodeChange(_Model):
    """A node whose id (or run of the same id) differs between the sides, and why."""

    key: str
    change: Literal["added", "removed", "changed", "re-run"]
    base_id: str | None
    head_id: str | None
    reasons: list[str]


class CaseDiff(_Model):
    """A pair of safety cases of the same Method (and system)."""

    method: str
    system: str
    base_id: str | None
    head_id: str | None
    status: Literal["added", "removed", "changed", "re-run", "unchanged"]
    """`unchanged`: the same run on both sides; `re-run`: two runs of the same node id."""
    scores: list[ScoreDiff]
    base_run: int | None = None
    head_run: int | None = None
    """Which recorded run of its node id each side is (1 for the first)."""
    warnings: list[str] = []
    """How the instances paired, when the pairing may be wrong."""


class GateFlip(_Model):
    """A gate whose outcome changed between the runs."""

    method: str
    system: str
    score: str
    change: GateChange
    base: GateOutcome
    head: GateOutcome
    text: str
    """`max_fpr_gap 8.0% → 31.7% (gate ≤ 10.0%)`."""


class DiffReport(_Model):
    """`auditc diff`'s result; its JSON form carries `schema_version`."""

    schema_version: Literal[2] = DIFF_SCHEMA_VERSION
    base: str
    head: str
    resamples: int
    seed: int
    confidence: float
    tests: int
    """Paired tests run (the family Holm's correction adjusts over)."""
    gates: list[GateFlip]
    cases: list[CaseDiff]
    nodes: list[NodeChange]
    missing: list[str]
    """Safety cases a git ref defines that the store has no complete run of."""

    @property
    def significant(self) -> list[tuple[CaseDiff, ScoreDiff]]:
        """Every score whose change is significant."""
        return [(c, s) for c in self.cases for s in c.scores if s.significant]

    @property
    def regressions(self) -> list[GateFlip]:
        """Gates that got worse."""
        return [g for g in self.gates if g.change == "regression"]

    @property
    def worse(self) -> list[tuple[CaseDiff, ScoreDiff]]:
        """Significant changes for the worse."""
        return [(c, s) for c, s in self.significant if s.direction == "worse"]


# ------------------------------------------------------------------ compute


def diff_results(
    base: DiffSide, head: DiffSide, options: BootstrapOptions | None = None
) -> DiffReport:
    """Compare two sides: gate flips, then every score with a paired test and interval.

    Args:
        base: The old side (e.g. the main branch's store).
        head: The new side (e.g. the pull request's store).
        options: Resamples, seed and confidence of the paired statistics.

    Returns:
        The gate flips, every pair of safety cases with its score differences, and the
        nodes that changed.

    Raises:
        StoreError: a per-instance file is unreadable.
    """
    options = options or BootstrapOptions()
    pairs = list(_pair(base.cases, head.cases))
    measured = [
        (b, h, [_measure(n, b, h, base.store, head.store, options) for n in _score_names(b, h)])
        for b, h in pairs
    ]
    adjusted = iter(holm([m.stats.p_value for _, _, ms in measured for m in ms if m.stats]))
    alpha = 1.0 - options.confidence
    cases = []
    for b, h, found in measured:
        scores = [_score_diff(m, adjusted, alpha) for m in found]
        cases.append(_case_diff(b, h, scores))
    return DiffReport(
        base=base.label,
        head=head.label,
        resamples=options.resamples,
        seed=options.seed,
        confidence=options.confidence,
        tests=sum(1 for c in cases for s in c.scores if s.comparison),
        gates=[flip for c in cases for flip in _gate_flips(c)],
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
    base: SafetyCase | None, head: SafetyCase | None, scores: list[ScoreDiff]
) -> CaseDiff:
    either = head or base
    assert either is not None
    status: Literal["added", "removed", "changed", "re-run", "unchanged"]
    if base is None or head is None:
        status = "added" if base is None else "removed"
    elif base.id != head.id:
        status = "changed"
    else:
        status = "unchanged" if base.run == head.run else "re-run"
    return CaseDiff(
        method=either.method,
        system=either.system_label
        if base is None or head is None or base.system_label == head.system_label
        else f"{base.system_label} → {head.system_label}",
        base_id=base.id if base else None,
        head_id=head.id if head else None,
        status=status,
        scores=scores,
        warnings=_pairing_warnings(base, head, scores) if base and head else [],
        base_run=base.run if base else None,
        head_run=head.run if head else None,
    )


def _score_names(*cases: SafetyCase | None) -> list[str]:
    primary: list[str] = []
    other: list[str] = []
    for case in cases:
        for score in case.scores.scores if case else []:
            if score.name not in primary and score.name not in other:
                (primary if score.primary else other).append(score.name)
    return primary + other


@dataclass(frozen=True)
class _Measured:
    """One score of a pair before Holm's correction."""

    old: ScoreValue | None
    new: ScoreValue | None
    stats: PairedStatistics | None
    note: str | None


def _measure(
    name: str,
    base: SafetyCase | None,
    head: SafetyCase | None,
    base_store: Store,
    head_store: Store,
    options: BootstrapOptions,
) -> _Measured:
    old = base.score(name) if base else None
    new = head.score(name) if head else None
    if not (old and new and base and head):
        return _Measured(old, new, None, None)
    if old.aggregate != new.aggregate:
        what = [(a.describe() if a else "the mean") for a in (old.aggregate, new.aggregate)]
        return _Measured(old, new, None, f"the score's aggregate changed ({what[0]} → {what[1]})")
    before = read_instances(base_store, base, name, old.aggregate)
    after = read_instances(head_store, head, name, new.aggregate)
    if before is None or after is None:
        side = (
            "either run"
            if before is None and after is None
            else "the base run"
            if before is None
            else "the head run"
        )
        return _Measured(old, new, None, f"no per-instance values in {side}")
    found = paired_statistics(
        before, after, new.aggregate, options.confidence, options.resamples, options.seed
    )
    if isinstance(found, str):
        return _Measured(old, new, None, found)
    return _Measured(old, new, found, None)


def _score_diff(measured: _Measured, adjusted: Iterator[float], alpha: float) -> ScoreDiff:
    old, new = measured.old, measured.new
    spec = new or old
    assert spec is not None
    delta = new.value - old.value if old and new else None
    comparison = None
    if measured.stats is not None:
        found = measured.stats
        comparison = Comparison(
            paired=found.paired,
            changed=found.changed,
            only_base=found.only_base,
            only_head=found.only_head,
            delta=found.delta,
            low=found.low,
            high=found.high,
            interval_method=found.interval_method,
            test=found.test,
            p_value=found.p_value,
            p_adjusted=next(adjusted),
        )
    base_gate = old.gate() if old else None
    head_gate = new.gate() if new else None
    direction = _direction(delta, spec)
    verdict, significant = _verdict(old, new, delta, direction, comparison, alpha)
    return ScoreDiff(
        name=spec.name,
        title=spec.title or spec.name,
        primary=spec.primary,
        valence=spec.valence,
        format=spec.format,
        unit=spec.unit,
        base=old.value if old else None,
        head=new.value if new else None,
        delta=delta,
        direction=direction,
        base_gate=base_gate,
        head_gate=head_gate,
        gate_change=_gate_change(base_gate, head_gate),
        gate=gate_text(spec),
        comparison=comparison,
        significant=significant,
        verdict=verdict,
        note=measured.note,
    )


def _direction(delta: float | None, spec: ScoreValue) -> Direction | None:
    if delta is None:
        return None
    if abs(delta) < ZERO:
        return "same"
    if spec.valence == "neutral":
        return "up" if delta > 0 else "down"
    return "better" if (delta > 0) == (spec.valence == "positive") else "worse"


def _gate_change(base: GateOutcome | None, head: GateOutcome | None) -> GateChange | None:
    if base is None or head is None or base == head:
        return None
    return "regression" if _GATE_RANK[head] < _GATE_RANK[base] else "improvement"


def _verdict(
    old: ScoreValue | None,
    new: ScoreValue | None,
    delta: float | None,
    direction: Direction | None,
    comparison: Comparison | None,
    alpha: float,
) -> tuple[str, bool | None]:
    """A few words, and whether the change is significant (None: not decided)."""
    if delta is None or direction is None:
        return ("only in head" if old is None else "only in base"), None
    if comparison is None:
        return ("unchanged" if direction == "same" else f"{direction}, not tested"), None
    low, high = comparison.low, comparison.high
    inside = low is not None and high is not None and low - SAME <= delta <= high + SAME
    if not inside and not math.isclose(comparison.delta, delta, rel_tol=1e-6, abs_tol=SAME):
        # The instances both runs have do not account for the change of the score.
        if comparison.unpaired:
            return f"not comparable: {comparison.unpaired} instances in one run only", None
        return "not comparable: the per-instance values do not reproduce the scores", None
    if comparison.changed == 0:
        return "unchanged", False
    what = direction if direction in ("better", "worse") else f"changed ({direction})"
    if comparison.low is None or comparison.high is None:
        # The score is undefined in some resamples (an empty group, a zero denominator).
        if comparison.p_adjusted < alpha:
            return f"{what} (significant; no interval)", True
        return "no significant change (no interval)", False
    if comparison.excludes_zero() and comparison.p_adjusted < alpha:
        return f"{what} (significant)", True
    if comparison.excludes_zero():
        return f"{what}, not significant after Holm (adjusted p {_p(comparison.p_adjusted)})", False
    return "no significant change", False


def _gate_flips(case: CaseDiff) -> list[GateFlip]:
    flips = []
    for s in case.scores:
        if s.gate_change is None or s.base_gate is None or s.head_gate is None:
            continue
        flips.append(
            GateFlip(
                method=case.method,
                system=case.system,
                score=s.name,
                change=s.gate_change,
                base=s.base_gate,
                head=s.head_gate,
                text=f"{s.name} {s.show(s.base)} → {s.show(s.head)}"
                + (f" (gate {s.gate})" if s.gate else ""),
            )
        )
    return flips


def _pairing_warnings(base: SafetyCase, head: SafetyCase, scores: list[ScoreDiff]) -> list[str]:
    """Datasets that changed while their rows are paired by position."""
    if not any(s.comparison for s in scores):
        return []
    old = {m.name: m for m in base.lineage if m.kind == "Dataset"}
    warnings = []
    for manifest in head.lineage:
        before = old.get(manifest.name)
        if manifest.kind != "Dataset" or before is None or before.id == manifest.id:
            continue
        if _index_column(manifest) is None or _index_column(before) is None:
            warnings.append(
                f"Dataset/{manifest.name} changed ({_short(before.id)} → {_short(manifest.id)}) "
                "and its instances are paired by row position (_index_ is the row number): "
                "a reordered or edited file pairs different rows; declare `spec.index` "
                "(a column of unique ids) on the Dataset to pair by id"
            )
    return warnings


def _index_column(manifest: Manifest) -> str | None:
    spec: Any = manifest.spec
    body = spec.get("spec") if isinstance(spec.get("spec"), dict) else spec
    found = body.get("index") if isinstance(body, dict) else None
    return found if isinstance(found, str) else None


def _p(value: float) -> str:
    return "< 0.001" if value < 0.001 else f"{value:.3f}"


# ------------------------------------------------------------ node changes


def _node_changes(pairs: Iterable[tuple[SafetyCase | None, SafetyCase | None]]) -> list[NodeChange]:
    changes: dict[tuple[str, str | None, str | None], NodeChange] = {}
    for base, head in pairs:
        old, new = _nodes(base), _nodes(head)
        for key in sorted(old.keys() | new.keys()):
            a, b = old.get(key), new.get(key)
            ids = (key, a.id if a else None, b.id if b else None)
            if a and b and a.id == b.id and a.run != b.run and ids not in changes:
                changes[ids] = NodeChange(
                    key=key, change="re-run", base_id=a.id, head_id=b.id, reasons=_rerun(a, b)
                )
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


def _rerun(old: Manifest, new: Manifest) -> list[str]:
    """What two runs of one node id record differently (their inputs are the same)."""
    reasons = [f"run {old.run} → {new.run}"]
    for label, a, b in (
        ("model revision", old.model_revision, new.model_revision),
        ("image", old.image, new.image),
        ("auditc", old.auditc_version, new.auditc_version),
        ("git commit", old.git_commit, new.git_commit),
        (
            "service version",
            getattr(old, "service_version", None),
            getattr(new, "service_version", None),
        ),
        (
            "service fingerprint",
            getattr(old, "service_fingerprint", None),
            getattr(new, "service_fingerprint", None),
        ),
    ):
        if a != b:
            reasons.append(f"{label} {a or '—'} → {b or '—'}")
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
        f"tests: exact McNemar for 0/1 values, else a paired permutation test "
        f"({report.resamples} permutations); {level} intervals: paired bootstrap of the change "
        f"in the score as it aggregates ({report.resamples} resamples, seed {report.seed}); "
        f"p-values Holm-adjusted over {report.tests} test{'s' if report.tests != 1 else ''}; "
        f"significant when the adjusted p < {1 - report.confidence:.2g} and the interval excludes 0"
    )


def _interval_text(score: ScoreDiff) -> str:
    c = score.comparison
    if c is None or c.low is None or c.high is None:
        return "—"
    return f"[{score.show(c.low, signed=True)}, {score.show(c.high, signed=True)}]"


def _p_text(score: ScoreDiff) -> str:
    return "—" if score.comparison is None else _p(score.comparison.p_adjusted)


def _instances_line(score: ScoreDiff) -> str | None:
    """`accuracy: 240 paired, 31 changed, 12 only in head; exact McNemar, p 0.004`."""
    c = score.comparison
    if c is None:
        if score.note and score.direction not in (None, "same"):
            return f"{score.name}: no test: {score.note}"
        return None
    parts = [f"{c.paired} paired", f"{c.changed} changed"]
    if c.only_base:
        parts.append(f"{c.only_base} only in base")
    if c.only_head:
        parts.append(f"{c.only_head} only in head")
    test = "exact McNemar" if c.test == "mcnemar" else "paired permutation"
    line = f"{score.name}: {', '.join(parts)}; {test}, p {_p(c.p_value)}"
    if c.low is None:
        line += "; no interval: the score is undefined in some resamples"
    if c.unpaired and score.delta is not None and abs(c.delta - score.delta) > SAME:
        line += f"; over the paired instances the change is {score.show(c.delta, signed=True)}"
    return line


def _count(n: int, word: str, plural: str | None = None) -> str:
    return f"{n} {word if n == 1 else plural or word + 's'}"


def _summary(report: DiffReport) -> str:
    found = report.significant
    better = sum(1 for _, s in found if s.direction == "better")
    worse = sum(1 for _, s in found if s.direction == "worse")
    scores = sum(len(c.scores) for c in report.cases)
    improvements = len(report.gates) - len(report.regressions)
    return (
        f"{_count(len(report.regressions), 'gate regression')}, "
        f"{_count(improvements, 'gate improvement')}; "
        f"{_count(len(found), 'significant change')} ({better} better, {worse} worse) "
        f"in {_count(scores, 'score')} of {_count(len(report.cases), 'safety case')}"
    )


def _gate_lines(report: DiffReport) -> list[str]:
    if not report.gates:
        gated = any(s.head_gate or s.base_gate for c in report.cases for s in c.scores)
        return ["gates: no gate changed" if gated else "gates: none declared"]
    lines = [
        f"gates: {len(report.regressions)} regressed, {len(report.gates) - len(report.regressions)} improved"
    ]
    for flip in sorted(report.gates, key=lambda g: g.change != "regression"):
        lines.append(
            f"  {flip.change.upper():<11}  {flip.method} · {flip.system}  "
            f"{flip.base.upper()} → {flip.head.upper()}  {flip.text}"
        )
    return lines


def _text(report: DiffReport) -> str:
    lines = [f"auditc diff: {report.base} → {report.head}", _method_note(report), ""]
    lines.extend(_gate_lines(report))
    lines.append("")
    if not report.cases:
        lines.append("no safety cases on either side: nothing to compare")
    for case in report.cases:
        lines.append(f"{case.method} · {case.system}  ({_case_ids(case)}, {case.status})")
        table = [
            [
                "score",
                "base",
                "head",
                "delta",
                f"{report.confidence:.0%} CI",
                "p (Holm)",
                "gate",
                "",
            ]
        ]
        for s in case.scores:
            table.append(
                [
                    s.name + (" *" if s.primary else ""),
                    s.show(s.base),
                    s.show(s.head),
                    s.show(s.delta, signed=True),
                    _interval_text(s),
                    _p_text(s),
                    s.gate_flip,
                    s.verdict,
                ]
            )
        lines.extend("  " + row for row in _align(table))
        lines.extend(f"    {line}" for s in case.scores if (line := _instances_line(s)))
        lines.extend(f"  warning: {w}" for w in case.warnings)
        lines.append("")
    lines.extend(_node_lines(report))
    lines.extend(f"not in the store: {m}" for m in report.missing)
    lines.append(_summary(report))
    return "\n".join(lines)


def _case_ids(case: CaseDiff) -> str:
    if case.status == "re-run":
        return f"run {_short(case.base_id)} #{case.base_run} → #{case.head_run}"
    return f"run {_short(case.base_id)} → {_short(case.head_id)}"


def _align(rows: list[list[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return [
        "  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip() for r in rows
    ]


_SIGN = {"added": "+", "removed": "-", "changed": "~", "re-run": "↻"}


def _node_lines(report: DiffReport) -> list[str]:
    if not report.nodes:
        return ["no node changed"]
    lines = [f"changed nodes ({len(report.nodes)}):"]
    for node in report.nodes:
        where = {"added": "only in head", "removed": "only in base"}.get(node.change)
        ids = (
            f"{_short(node.base_id)} → {_short(node.head_id)}"
            if node.change in ("changed", "re-run")
            else where
        )
        lines.append(f"  {_SIGN[node.change]} {node.key}  {ids}")
        lines.extend(f"      {reason}" for reason in node.reasons)
    return lines


_ICON = {"better": "🟢", "worse": "🔴"}


def _markdown(report: DiffReport) -> str:
    lines = [
        f"### auditc diff: `{_md(report.base)}` → `{_md(report.head)}`",
        "",
        f"**{_summary(report)}**",
        "",
    ]
    if report.gates:
        lines += ["| gate | safety case | score | base | head |", "|---|---|---|---|---|"]
        for flip in sorted(report.gates, key=lambda g: g.change != "regression"):
            icon = "🔴" if flip.change == "regression" else "🟢"
            lines.append(
                f"| {icon} {flip.change} | {_md(flip.method)} · {_md(flip.system)} | "
                f"{_md(flip.text)} | {flip.base.upper()} | {flip.head.upper()} |"
            )
        lines.append("")
    for case in report.cases:
        lines.append(f"#### {case.method} · {_md(case.system)}")
        lines.append(f"{_case_ids(case)}: {case.status}")
        lines.append("")
        lines.append(
            f"| score | base | head | Δ | {report.confidence:.0%} CI | p (Holm) | gate | |"
        )
        lines.append("|---|---:|---:|---:|---|---:|---|---|")
        for s in case.scores:
            title = f"**{s.name}**" if s.primary else s.name
            icon = _ICON.get(s.direction or "", "") if s.significant else ""
            cells = [
                title,
                s.show(s.base),
                s.show(s.head),
                s.show(s.delta, signed=True),
                _interval_text(s),
                _p_text(s),
                s.gate_flip,
                f"{icon} {s.verdict}".strip(),
            ]
            lines.append("| " + " | ".join(_md(c) for c in cells) + " |")
        lines.append("")
        details = [line for s in case.scores if (line := _instances_line(s))]
        lines.extend(f"- {_md(line)}" for line in details)
        lines.extend(f"- ⚠️ {_md(w)}" for w in case.warnings)
        if details or case.warnings:
            lines.append("")
    if report.nodes:
        lines.append(f"<details><summary>{len(report.nodes)} node(s) changed</summary>")
        lines.append("")
        for node in report.nodes:
            reasons = "; ".join(f"`{_code(r)}`" for r in node.reasons)
            ids = f"`{_short(node.base_id)}` → `{_short(node.head_id)}`"
            lines.append(
                f"- {node.change} `{node.key}` {ids}" + (f": {reasons}" if reasons else "")
            )
        lines.append("")
        lines.append("</details>")
        lines.append("")
    lines.extend(f"> not in the store: `{_md(m)}`" for m in report.missing)
    lines.append(f"<sub>{_md(_method_note(report))}.</sub>")
    return "\n".join(lines)


def _md(text: str) -> str:
    """Text safe inside a Markdown table cell or code span (no HTML: a PR comment renders it)."""
    return (
        text.replace("&", "&amp;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace("|", "\\|")
        .replace("`", "'")
        .replace("\n", " ")
    )


def _code(text: str) -> str:
    """Text inside a Markdown code span, where entities are shown as typed."""
    return text.replace("`", "'").replace("\n", " ")
