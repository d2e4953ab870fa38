"""Score gates of the latest safety cases: which pass, which fail, and how they are listed."""

from __future__ import annotations

import json
from pathlib import Path

from report_store import SyntheticStore

from compiler.report import check_gates, load_results, render_check
from schemas import ScoreValue


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
    assert lines[-1] == "2 of 6 gates failed (5 safety cases)"


def test_json_form(synthetic_store: SyntheticStore) -> None:
    data = json.loads(render_check(check_gates(load_results(synthetic_store.store)), "json"))

    assert data["schema_version"] == 1 and data["ok"] is False and data["failed"] == 2
    first = data["gates"][0]
    assert first["passed"] is False and first["gate_max"] == 0.1 and first["score"] == "max_fpr_gap"


def _one_case(root: Path, value: float, **gate: float) -> SyntheticStore:
    synthetic = SyntheticStore(root)
    score = ScoreValue(name="acc", value=value, primary=True, **gate)
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
        "all 1 gates passed (1 safety case)",
    ]
    assert below.failed[0].violation == "below the minimum 0.8"
    assert below.failed[0].bound == "min 0.8, max 0.9"


def test_nothing_to_check_is_said_clearly(tmp_path: Path) -> None:
    empty = check_gates(load_results(SyntheticStore(tmp_path / "empty").store))
    ungated = check_gates(load_results(_one_case(tmp_path / "ungated", 0.5).store))

    assert empty.ok and ungated.ok
    assert render_check(empty).startswith("no complete safety cases in ")
    assert render_check(ungated).startswith("no gates: none of the 1 safety case(s) in ")
