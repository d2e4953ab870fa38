"""Score gates: `StoreResults` → `CheckResult`, the pass/fail of every gated score.

A score spec may declare `gate: {min, max}`; the method runner stores the bounds with
the value (`ScoreValue.gate_min`/`gate_max`). `check_gates` evaluates them on the
safety cases the report shows (the latest complete run per Method and system), and
`render_check` lists them as text or JSON. `auditc check` exits 1 when one fails.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Literal

from schemas import ScoreValue

from ._results import StoreResults, format_score

__all__ = ["CHECK_SCHEMA_VERSION", "CheckResult", "GateResult", "check_gates", "render_check"]

CHECK_SCHEMA_VERSION = 1


@dataclass(frozen=True)
class GateResult:
    """One gated score of one safety case."""

    method: str
    system: str
    case_id: str
    score: ScoreValue

    @property
    def passed(self) -> bool:
        """Whether the value meets the gate."""
        return self.score.passed() is True

    @property
    def bound(self) -> str:
        """The gate as written in the spec: `min 0.8`, `max 0.1`, `min 0.2, max 0.9`."""
        parts = []
        if self.score.gate_min is not None:
            parts.append(f"min {self.score.gate_min:g}")
        if self.score.gate_max is not None:
            parts.append(f"max {self.score.gate_max:g}")
        return ", ".join(parts)

    @property
    def violation(self) -> str | None:
        """Which bound the value breaks, or None when it passes."""
        value, low, high = self.score.value, self.score.gate_min, self.score.gate_max
        if low is not None and value < low:
            return f"below the minimum {low:g}"
        if high is not None and value > high:
            return f"above the maximum {high:g}"
        return None


@dataclass(frozen=True)
class CheckResult:
    """Every gate of the shown safety cases."""

    store: str
    cases: int
    """Safety cases evaluated (with or without gates)."""
    gates: tuple[GateResult, ...]

    @property
    def failed(self) -> list[GateResult]:
        """The gates whose value is out of bounds."""
        return [g for g in self.gates if not g.passed]

    @property
    def ok(self) -> bool:
        """Whether every gate passed (also true when there are none)."""
        return not self.failed


def check_gates(results: StoreResults) -> CheckResult:
    """Evaluate every gate of the latest complete safety cases.

    Args:
        results: What `load_results` read from the store.

    Returns:
        The outcome of every gate, failures first, then by method, system and score.
    """
    gates = [
        GateResult(case.method, case.system_label, case.id, score)
        for case in results.cases
        for score in case.scores.scores
        if score.passed() is not None
    ]
    gates.sort(key=lambda g: (g.passed, g.method, g.system, g.score.name))
    return CheckResult(results.store.uri, len(results.cases), tuple(gates))


def render_check(result: CheckResult, fmt: Literal["text", "json"] = "text") -> str:
    """The check as text (one line per gate and a summary) or JSON (with `schema_version`)."""
    if fmt == "json":
        return json.dumps(_as_json(result), indent=2)
    if result.cases == 0:
        return f"no complete safety cases in {result.store}: nothing to check (run an audit first)"
    if not result.gates:
        return (
            f"no gates: none of the {result.cases} safety case(s) in {result.store} "
            "declares a gate on a score (`gate: {min: …, max: …}` in a score spec)"
        )
    lines = [_line(g) for g in result.gates]
    failed = len(result.failed)
    total = len(result.gates)
    verdict = f"{failed} of {total} gates failed" if failed else f"all {total} gates passed"
    lines.append(f"{verdict} ({result.cases} safety case{'s' if result.cases != 1 else ''})")
    return "\n".join(lines)


def _line(gate: GateResult) -> str:
    status = "PASS" if gate.passed else "FAIL"
    value = format_score(gate.score)
    raw = f"{gate.score.value:g}"
    shown = value if value == raw else f"{value} ({raw})"
    why = f": {gate.violation}" if gate.violation else ""
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
        "gates": [
            {
                "method": g.method,
                "system": g.system,
                "case_id": g.case_id,
                "score": g.score.name,
                "value": g.score.value,
                "formatted": format_score(g.score),
                "gate_min": g.score.gate_min,
                "gate_max": g.score.gate_max,
                "passed": g.passed,
            }
            for g in result.gates
        ],
    }
