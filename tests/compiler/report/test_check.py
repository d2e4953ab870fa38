"""Score gates of the latest safety cases: which pass, which fail, and how they are listed."""

from __future__ import annotations

import json
from pathlib import Path

from report_store import SyntheticStore

from compiler.report import check_gates, load_results, render_check
from schemas import ScoreInterval, ScoreValue


def test_failed_gates_are_listed_first_with_value_and_bound(
    synthetic_store: SyntheticStore,
) -> None:
    result = check_gates(load_results(synthetic_store.store))

    assert not result.ok and result.cases == 5
    assert [(g.system, g.score.name) for g in result.failed] == [
        ("filter-b", "max_fpr_gap"),
        ("filter-c", "max_fpr_gap"),
    ]
    lines = render_check(result).splitlines()
    assert lines[0].startswith("FAIL  filter-safety-case · filter-b  max_fpr_gap = 23.2% (0.232")
    assert lines[0].endswith("[gate max 0.1]: above the maximum 0.1")
    assert sum(line.startswith("PASS") for line in lines) == 4
    assert lines[-1] == "6 gates: 2 failed, 0 inconclusive, 4 passed (5 safety cases)"
    assert result.exit_code() == 1


def test_json_form(synthetic_store: SyntheticStore) -> None:
    data = json.loads(render_check(check_gates(load_results(synthetic_store.store)), "json"))

    assert data["schema_version"] == 2 and data["ok"] is False and data["failed"] == 2
    first = data["gates"][0]
    assert first["passed"] is False and first["gate_max"] == 0.1 and first["score"] == "max_fpr_gap"
    assert first["outcome"] == "fail" and first["reason"] == "above the maximum 0.1"
    assert data["inconclusive"] == 0 and data["not_run"] == []


def _one_case(root: Path, value: float, **gate: object) -> SyntheticStore:
    synthetic = SyntheticStore(root)
    score = ScoreValue(name="acc", value=value, primary=True, **gate)  # type: ignore[arg-type]
    synthetic.safety_case("sc", [score], {})
    return synthetic


def test_bounds_are_inclusive(tmp_path: Path) -> None:
    at_min = check_gates(load_results(_one_case(tmp_path / "a", 0.8, gate_min=0.8).store))
    below = check_gates(
        load_results(_one_case(tmp_path / "b", 0.79, gate_min=0.8, gate_max=0.9).store)
    )

    assert at_min.ok
    assert render_check(at_min).splitlines() == [
        "PASS  sc · (no system under test)  acc = 0.8  [gate min 0.8]",
        "1 gate: 0 failed, 0 inconclusive, 1 passed (1 safety case)",
    ]
    assert below.failed[0].reason == "below the minimum 0.8"
    assert below.failed[0].bound == "min 0.8, max 0.9"


def test_nothing_to_check_is_said_clearly(tmp_path: Path) -> None:
    empty = check_gates(load_results(SyntheticStore(tmp_path / "empty").store))
    ungated = check_gates(load_results(_one_case(tmp_path / "ungated", 0.5).store))

    assert empty.ok and ungated.ok
    assert render_check(empty).startswith("no complete safety cases in ")
    assert render_check(ungated).startswith("no gates: none of the 1 safety case(s) in ")


def _interval(low: float, high: float) -> ScoreInterval:
    return ScoreInterval(low=low, high=high, confidence=0.95, method="wilson")


def test_a_confidence_gate_is_pass_fail_or_inconclusive(tmp_path: Path) -> None:
    cases = {
        "pass": _interval(0.02, 0.08),
        "fail": _interval(0.12, 0.2),
        "inconclusive": _interval(0.05, 0.15),
    }
    results = {
        outcome: check_gates(
            load_results(
                _one_case(
                    tmp_path / outcome,
                    (interval.low + interval.high) / 2,
                    gate_max=0.1,
                    gate_confidence=0.95,
                    interval=interval,
                    format="{value:.0%}",
                ).store
            )
        )
        for outcome, interval in cases.items()
    }

    assert {k: r.gates[0].outcome for k, r in results.items()} == {
        "pass": "pass",
        "fail": "fail",
        "inconclusive": "inconclusive",
    }
    assert [r.exit_code() for r in results.values()] == [0, 1, 4]
    assert results["inconclusive"].exit_code(allow_inconclusive=True) == 0
    assert render_check(results["inconclusive"]).splitlines()[0] == (
        "INCONCLUSIVE  sc · (no system under test)  acc = 10% (0.1) [5%, 15%]  "
        "[gate max 0.1, confidence 0.95]: the 95% interval [5%, 15%] straddles the maximum 0.1: "
        "more instances would decide"
    )
    assert (
        render_check(results["fail"])
        .splitlines()[0]
        .endswith("the 95% interval [12%, 20%] lies above the maximum 0.1")
    )
    # The value alone (16%, above the maximum) would fail; so would 10% on a point gate.
    assert ScoreValue(name="acc", value=0.1, gate_max=0.1).gate() == "pass"


def test_a_confidence_gate_without_an_interval_is_inconclusive() -> None:
    score = ScoreValue(name="acc", value=0.01, gate_max=0.1, gate_confidence=0.95)

    assert score.gate() == "inconclusive" and score.passed() is False
