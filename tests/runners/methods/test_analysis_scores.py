"""Scores that declare how they aggregate, their intervals, confidence gates, and safe display."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from statsmodels.stats.proportion import proportion_confint

from runners import analysis
from schemas import MethodError, ScoreSpec

SPECS = [
    ScoreSpec(
        name="gap",
        primary=True,
        minimum=0,
        maximum=1,
        format="{value:.1%}",
        gate={"max": 0.1},
        aggregate={"kind": "max_gap", "group": "identity"},
    ),
    ScoreSpec(name="fpr", minimum=0, maximum=1, gate={"max": 0.2, "confidence": 0.95}),
    ScoreSpec(
        name="precision",
        minimum=0,
        maximum=1,
        aggregate={"kind": "ratio", "denominator": "predicted"},
    ),
    ScoreSpec(name="hostile", format="<img src=x onerror=alert(1)>{value:.1%}", gate={"min": 0.5}),
]


@pytest.fixture
def run_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    out = tmp_path / "out"
    out.mkdir()
    config = analysis.AnalysisConfig(
        method="case",
        node_id="n1",
        output_kind="SafetyCase",
        inputs={},
        scores=SPECS,
        output_dir=str(out),
    )
    path = tmp_path / "analysis.json"
    path.write_text(config.model_dump_json(), encoding="utf-8")
    monkeypatch.setenv(analysis.ANALYSIS_CONFIG_ENV, str(path))
    analysis._config._load.cache_clear()
    return out


def _flags(groups: dict[str, list[float]]) -> pa.Table:
    rows = [(g, v) for g, values in groups.items() for v in values]
    return pa.table(
        {
            "_index_": pa.array(range(len(rows)), pa.int64()),
            "value": [v for _, v in rows],
            "identity": [g for g, _ in rows],
        }
    )


def test_a_max_gap_is_stored_with_its_groups_and_a_recomputed_interval(run_dir: Path) -> None:
    table = _flags({"a": [1, 0, 0, 0] * 10, "b": [0] * 40, "c": [1, 0] * 20})

    gap = analysis.score("gap", 0.5, instances=table)

    stored = pq.read_table(run_dir / "instances" / "gap.parquet")
    assert stored.column_names == ["_index_", "value", "identity"]
    assert gap.aggregate is not None and gap.aggregate.kind == "max_gap"
    assert gap.interval is not None and gap.interval.method.startswith("bootstrap")
    assert gap.interval.low < 0.5 < gap.interval.high


def test_instances_must_reproduce_the_score(run_dir: Path) -> None:
    table = _flags({"a": [1, 0] * 10, "b": [0] * 20})

    with pytest.raises(MethodError, match=r"score 'gap' is 0.3, but the max gap over identity"):
        analysis.score("gap", 0.3, instances=table)
    with pytest.raises(
        MethodError, match=r"pass a table with columns '_index_', 'value' and 'identity'"
    ):
        analysis.score("gap", 0.5, instances={0: 1.0})


def test_a_proportion_gets_wilsons_interval(run_dir: Path) -> None:
    values = {i: float(i % 10 == 0) for i in range(200)}

    fpr = analysis.score("fpr", 0.1, instances=values)

    low, high = proportion_confint(20, 200, alpha=0.05, method="wilson")
    assert fpr.interval is not None and fpr.interval.method == "wilson"
    assert (fpr.interval.low, fpr.interval.high) == pytest.approx((low, high))
    assert fpr.gate() == "pass"  # [6.6%, 14.9%] lies under the maximum 0.2


def test_an_interval_across_the_bound_is_inconclusive(run_dir: Path) -> None:
    values = {i: float(i % 50 < 9) for i in range(100)}  # 18 %, close to the maximum 20 %

    fpr = analysis.score("fpr", 0.18, instances=values)

    assert fpr.interval is not None and fpr.interval.low < 0.2 < fpr.interval.high
    assert fpr.gate() == "inconclusive" and fpr.passed() is False
    assert "INCONCLUSIVE" in analysis.score_card(fpr).data


def test_a_ratio_is_recomputed_from_its_denominator(run_dir: Path) -> None:
    predicted = np.array([1, 1, 1, 0, 0, 1, 1, 0] * 25, dtype=float)
    correct = np.array([1, 0, 1, 1, 0, 1, 1, 1] * 25, dtype=float)
    table = pa.table(
        {
            "_index_": pa.array(range(200), pa.int64()),
            "value": predicted * correct,
            "predicted": predicted,
        }
    )

    precision = analysis.score("precision", 0.8, instances=table)

    assert precision.interval is not None and precision.interval.low < 0.8 < precision.interval.high


def test_a_confidence_gate_needs_an_interval(run_dir: Path) -> None:
    with pytest.raises(MethodError, match=r"gate with confidence 0.95, which needs an interval"):
        analysis.score("fpr", 0.1)

    given = analysis.score("fpr", 0.1, interval=(0.05, 0.15))

    assert given.interval is not None and given.interval.method == "given by the method"
    assert given.gate() == "pass"


def test_score_cards_escape_what_specs_and_data_bring(run_dir: Path) -> None:
    """Issue 10, defect 1: a score's format was inserted into the card unescaped."""
    hostile = analysis.score("hostile", 0.25, text="<script>alert(2)</script>")

    card = analysis.score_card(hostile).data

    assert "<img" not in card and "<script" not in card
    assert "&lt;img src=x onerror=alert(1)&gt;25.0%" in card
    assert "FAIL" in card and "&lt;img src=x onerror=alert(1)&gt;50.0%" in card


def test_examples_show_the_most_flagged_rows_of_the_most_flagged_groups() -> None:
    rows = pa.table(
        {
            "identity": ["a", "a", "a", "b", "b", "<i>c</i>", "<i>c</i>"],
            "text": ["a1", "a2", "a3", "b1", "b2", "c1", "c2"],
            "predicted": [1, 0, 1, 0, 0, 1, 1],
            "score": [0.9, 0.1, 0.6, 0.2, 0.3, 0.7, 0.99],
        }
    )

    html = analysis.examples(
        rows, "identity", ["predicted", "score"], columns=["text", "score"], per_group=2, groups=2
    ).data

    assert html.index("&lt;i&gt;c&lt;/i&gt;") < html.index(">a <")
    assert ">b <" not in html  # only the two most-flagged groups
    assert html.index("c2") < html.index("c1") and html.index("a1") < html.index("a3")
    assert "a2" not in html
    with pytest.raises(ValueError, match="no column 'label'"):
        analysis.examples(rows, "identity", "label")
