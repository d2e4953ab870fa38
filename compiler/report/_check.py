"""Score gates: `StoreResults` → `CheckResult`, the PASS / FAIL / INCONCLUSIVE of every gate.

A score spec may declare `gate: {min, max}` and, optionally, a `confidence`; the
method runner stores them with the value and, with per-instance values, the score's
interval (`ScoreValue.gate()` decides). Without `confidence` a gate compares the value
with its bounds: PASS or FAIL. With it, the interval decides: PASS when it lies within
the bounds, FAIL when it lies wholly outside them, INCONCLUSIVE otherwise.

`check_gates` evaluates the safety cases `load_results` selected (the current specs'
nodes by default) and counts the gated safety cases of the specs that have not run;
`render_check` lists everything as text or JSON. `auditc check` maps the result to its
exit code (`CheckResult.exit_code`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Literal

from schemas import GateOutcome, ScoreValue

from ._results import StoreResults

__all__ = [
    "CHECK_SCHEMA_VERSION",
    "EXIT_GATE_FAILED",
    "EXIT_INCONCLUSIVE",
    "EXIT_PASSED",
    "CheckResult",
    "GateResult",
    "NotRun",
    "check_gates",
    "render_check",
]

CHECK_SCHEMA_VERSION = 2
EXIT_PASSED = 0
"""Every gate passed (or there is nothing to check)."""
EXIT_GATE_FAILED = 1
"""A gate failed, or a gated safety case of the specs has not run."""
EXIT_INCONCLUSIVE = 4
"""No gate failed, but a confidence gate is inconclusive (unless allowed)."""


@dataclass(frozen=True)
class GateResult:
    """One gated score of one safety case."""

    method: str
    system: str
    case_id: str
    score: ScoreValue

    @property
    def outcome(self) -> GateOutcome:
        """`pass`, `fail` or `inconclusive`."""
        found = self.score.gate()
        assert found is not None, "only gated scores are checked"
        return found

    @property
    def passed(self) -> bool:
        """Whether the gate passes."""
        return self.outcome == "pass"

    @property
    def bound(self) -> str:
        """The gate as written in the spec: `min 0.8`, `max 0.1, confidence 0.95`."""
        parts = []
        if self.score.gate_min is not None:
            parts.append(f"min {self.score.gate_min:g}")
        if self.score.gate_max is not None:
            parts.append(f"max {self.score.gate_max:g}")
        if self.score.gate_confidence is not None:
            parts.append(f"confidence {self.score.gate_confidence:g}")
        return ", ".join(parts)

    @property
    def reason(self) -> str | None:
        """Why a gate did not pass, or None when it passed."""
        if self.outcome == "pass":
            return None
        low, high = self.score.gate_min, self.score.gate_max
        interval = self.score.interval
        if self.score.gate_confidence is None or interval is None:
            if self.score.gate_confidence is not None:
                return "no interval to judge the confidence gate"
            if low is not None and self.score.value < low:
                return f"below the minimum {low:g}"
            return f"above the maximum {high:g}"
        shown = (
            f"the {interval.confidence:.0%} interval "
            f"[{self.score.formatted(interval.low)}, {self.score.formatted(interval.high)}]"
        )
        if self.outcome == "fail":
            side = (
                "below the minimum"
                if low is not None and interval.high < low
                else "above the maximum"
            )
            bound = low if side.startswith("below") else high
            return f"{shown} lies {side} {bound:g}"
        crossed = [
            f"{name} {bound:g}"
            for name, bound in (("minimum", low), ("maximum", high))
            if bound is not None and interval.low <= bound <= interval.high
        ]
        what = " and ".join(crossed) or "a bound"
        return f"{shown} straddles the {what}: more instances would decide"


@dataclass(frozen=True)
class NotRun:
    """A safety case of the specs with gates that the store has no complete run of."""

    method: str
    id: str
    gates: tuple[str, ...]


@dataclass(frozen=True)
class CheckResult:
    """Every gate of the checked safety cases."""

    store: str
    cases: int
    """Safety cases evaluated (with or without gates)."""
    gates: tuple[GateResult, ...]
    not_run: tuple[NotRun, ...] = ()

    @property
    def failed(self) -> list[GateResult]:
        """The gates that fail."""
        return [g for g in self.gates if g.outcome == "fail"]

    @property
    def inconclusive(self) -> list[GateResult]:
        """The confidence gates whose interval straddles a bound."""
        return [g for g in self.gates if g.outcome == "inconclusive"]

    @property
    def ok(self) -> bool:
        """Whether every gate passed (also true when there are none) and none is missing."""
        return not self.failed and not self.inconclusive and not self.not_run

    def exit_code(self, *, allow_inconclusive: bool = False) -> int:
        """0 all pass; 1 a gate failed or a gated safety case has not run; 4 inconclusive."""
        if self.failed or self.not_run:
            return EXIT_GATE_FAILED
        if self.inconclusive and not allow_inconclusive:
            return EXIT_INCONCLUSIVE
        return EXIT_PASSED


_ORDER = {"fail": 0, "inconclusive": 1, "pass": 2}


def check_gates(results: StoreResults) -> CheckResult:
    """Evaluate every gate of the selected safety cases.

    Args:
        results: What `load_results` read from the store.

    Returns:
        The outcome of every gate — failures first, then inconclusive, then passes,
        each by method, system and score — and the gated safety cases that have not run.
    """
    gates = [
        GateResult(case.method, case.system_label, case.id, score)
        for case in results.cases
        for score in case.scores.scores
        if score.gate() is not None
    ]
    gates.sort(key=lambda g: (_ORDER[g.outcome], g.method, g.system, g.score.name))
    scope = results.scope
    not_run = tuple(
        NotRun(ref.name, ref.id, scope.cases[ref])
        for ref in results.not_run
        if scope is not None and scope.cases.get(ref)
    )
    return CheckResult(results.store.uri, len(results.cases), tuple(gates), not_run)


def render_check(result: CheckResult, fmt: Literal["text", "json"] = "text") -> str:
    """The check as text (one line per gate and a summary) or JSON (with `schema_version`)."""
    if fmt == "json":
        return json.dumps(_as_json(result), indent=2)
    lines = [_line(g) for g in result.gates]
    lines += [
        f"NOT RUN  {n.method}  (id {n.id[:10]}): gates {', '.join(n.gates)} cannot pass "
        "before it runs (`auditc run`)"
        for n in result.not_run
    ]
    if not lines:
        if result.cases == 0:
            return (
                f"no complete safety cases in {result.store}: nothing to check (run an audit first)"
            )
        return (
            f"no gates: none of the {result.cases} safety case(s) in {result.store} "
            "declares a gate on a score (`gate: {min: …, max: …}` in a score spec)"
        )
    lines.append(_summary(result))
    return "\n".join(lines)


def _summary(result: CheckResult) -> str:
    total = len(result.gates)
    counts = [
        f"{len(result.failed)} failed",
        f"{len(result.inconclusive)} inconclusive",
        f"{total - len(result.failed) - len(result.inconclusive)} passed",
    ]
    text = f"{total} gate{'s' if total != 1 else ''}: {', '.join(counts)}"
    if result.not_run:
        text += f"; {len(result.not_run)} gated safety case(s) not run"
    return f"{text} ({result.cases} safety case{'s' if result.cases != 1 else ''})"


def _line(gate: GateResult) -> str:
    status = gate.outcome.upper()
    value = gate.score.formatted()
    raw = f"{gate.score.value:g}"
    shown = value if value == raw else f"{value} ({raw})"
    interval = gate.score.interval
    if interval is not None and gate.score.gate_confidence is not None:
        shown += f" [{gate.score.formatted(interval.low)}, {gate.score.formatted(interval.high)}]"
    why = f": {gate.reason}" if gate.reason else ""
    return (
        f"{status}  {gate.method} · {gate.system}  {gate.score.name} = {shown}"
        f"  [gate {gate.bound}]{why}"
    )


def _as_json(result: CheckResult) -> dict[str, object]:
    return {
        "schema_version": CHECK_SCHEMA_VERSION,
        "store": result.store,
        "cases": result.cases,
        "ok": result.ok,
        "failed": len(result.failed),
        "inconclusive": len(result.inconclusive),
        "gates": [
            {
                "method": g.method,
                "system": g.system,
                "case_id": g.case_id,
                "score": g.score.name,
                "value": g.score.value,
                "formatted": g.score.formatted(),
                "gate_min": g.score.gate_min,
                "gate_max": g.score.gate_max,
                "gate_confidence": g.score.gate_confidence,
                "interval": g.score.interval.model_dump() if g.score.interval else None,
                "outcome": g.outcome,
                "passed": g.passed,
                "reason": g.reason,
            }
            for g in result.gates
        ],
        "not_run": [
            {"method": n.method, "id": n.id, "gates": list(n.gates)} for n in result.not_run
        ],
    }
